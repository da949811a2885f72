//! The query API in Prometheus's shape, read from the store: `/api/v1/query`, `/api/v1/query_range`,
//! `/api/v1/series`, `/api/v1/labels` and `/api/v1/label/<name>/values`, so the dashboard, the CLI
//! and Grafana (as a Prometheus data source) can read the host's history.
//!
//! Answers are Prometheus's JSON envelopes: `{"status":"success","data":...}`, or
//! `{"status":"error","errorType":"bad_data","error":"..."}` with status 400. Names are the ones
//! `/metrics` shows ([`metric`]). `query` is PromQL, evaluated by [`crate::promql`] with
//! Prometheus's semantics; what it does not support is refused with a 400 naming it, and
//! evaluation errors (many-to-many matching...) answer `execution` with status 422. Requests are
//! `GET` or `HEAD`; `query`, `query_range`, `series` and `labels` also take a `POST` whose
//! `application/x-www-form-urlencoded` body holds the parameters (Grafana's default), as Prometheus
//! does. Other methods are answered 405 with `Allow`.
//!
//! Evaluation follows Prometheus: an instant query answers, per series, the latest sample at or
//! before `time` within 5 minutes ([`LOOKBACK_MS`]), stamped `time`; a range query the same at
//! each step. Prometheus reads raw samples only; this store also keeps rollups, and a range query
//! of a bare selector over a long range is answered from them (see [`Source`]): each value is then
//! the mean (`sum / count`) of the points of a minute or an hour, stamped with the start of that
//! minute or hour. Every other expression reads raw points.
//!
//! The store is read through a read-only connection of its own: a query never takes the write
//! lock, and the engine never waits for it. With no store, or before the host created it, every
//! query answers an empty result.

mod range;
mod selector;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use monitor_core::http::{Request, Response};
use monitor_core::prometheus::format_value;

pub use self::range::{LOOKBACK_MS, MAX_POINTS, Steps, parse_duration, parse_time};
pub use self::selector::{Metric, Selector, constant, metric};
use crate::history::{Reader, RollupStep};
use crate::promql;

/// Step widths from which a range query may read rollups instead of raw points, in ms.
const ROLLUP_MIN_STEP_MS: i64 = 60_000;
/// Most raw points a range query reads per series before it turns to rollups.
pub const RAW_POINTS_LIMIT: i64 = 5_000;
/// Most per-minute buckets a range query reads per series before it turns to hourly ones.
pub const MINUTE_BUCKETS_LIMIT: i64 = 5_000;

const JSON: &str = "application/json";

/// Where a range query reads a series from.
///
/// Raw points when the step is under a minute (no rollup is finer), or when the raw points
/// cover the whole range and number at most [`RAW_POINTS_LIMIT`]. Otherwise the per-hour
/// rollups when the step is an hour or more or the range spans more than
/// [`MINUTE_BUCKETS_LIMIT`] minutes, else the per-minute ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `points`.
    Raw,
    /// `rollup_1m` or `rollup_1h`: bucket means.
    Rollup(RollupStep),
}

/// A failed request: Prometheus's `errorType` and the HTTP status that goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ApiError {
    BadData(String),
    Execution(String),
    NotFound(String),
    Method(&'static str),
    Internal(String),
}

impl ApiError {
    fn response(&self) -> Response {
        let (status, kind, message) = match self {
            Self::BadData(m) => (400, "bad_data", m.as_str()),
            Self::Execution(m) => (422, "execution", m.as_str()),
            Self::NotFound(m) => (404, "not_found", m.as_str()),
            Self::Method(allowed) => (405, "bad_data", *allowed),
            Self::Internal(m) => (500, "internal", m.as_str()),
        };
        let body = format!(
            "{{\"status\":\"error\",\"errorType\":\"{kind}\",\"error\":{}}}",
            json_string(message)
        );
        let response = Response::new(status, JSON, body);
        match self {
            Self::Method(allowed) => response.with_header("Allow", *allowed),
            _ => response,
        }
    }
}

/// The methods a path under `/api/v1/` takes.
fn allowed_methods(path: &str) -> &'static str {
    match path {
        "/api/v1/query" | "/api/v1/query_range" | "/api/v1/series" | "/api/v1/labels" => {
            "GET, HEAD, POST"
        }
        _ => "GET, HEAD",
    }
}

impl From<promql::Error> for ApiError {
    fn from(e: promql::Error) -> Self {
        match e {
            promql::Error::BadData(m) => Self::BadData(m),
            promql::Error::Execution(m) => Self::Execution(m),
            promql::Error::Storage(_) => Self::Internal(format!("{e}; try again")),
        }
    }
}

fn internal(e: rusqlite::Error) -> ApiError {
    ApiError::Internal(format!("reading the store failed: {e}; try again"))
}

/// A stored series as the API shows it.
#[derive(Debug, Clone)]
struct Exposed {
    id: i64,
    metric: Metric,
}

#[derive(Debug, Default)]
struct State {
    reader: Option<Reader>,
    // The series table as of `generation`: reread when a series is added.
    generation: (i64, i64),
    series: Vec<Exposed>,
}

/// The `/api/v1/...` handlers over the store at one path.
#[derive(Debug)]
pub struct QueryApi {
    database: PathBuf,
    state: Mutex<State>,
}

impl QueryApi {
    /// Serves the store at `database` (the host's `data_dir/monitor.db`); it need not exist yet.
    pub fn new(database: PathBuf) -> Self {
        Self {
            database,
            state: Mutex::new(State::default()),
        }
    }

    /// Answers a request for a path under `/api/v1/`, at `now_ms` when it names no time.
    pub fn handle(&self, request: &Request<'_>, now_ms: i64) -> Response {
        let allowed = allowed_methods(request.path);
        let answer = if allowed.split(", ").any(|m| m == request.method) {
            let mut params = Params::parse(request.query);
            if request.method == "POST"
                && request
                    .header("content-type")
                    .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"))
            {
                // The form's parameters join the URL's, as in Prometheus.
                params
                    .0
                    .extend(Params::parse(&String::from_utf8_lossy(request.body)).0);
            }
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let answer = self.route(&mut state, request.path, &params, now_ms);
            if matches!(answer, Err(ApiError::Internal(_))) {
                // Reopened on the next request: the file may have been replaced.
                *state = State::default();
            }
            answer
        } else {
            Err(ApiError::Method(allowed))
        };
        match answer {
            Ok(data) => Response::new(
                200,
                JSON,
                format!("{{\"status\":\"success\",\"data\":{data}}}"),
            ),
            Err(e) => e.response(),
        }
    }

    fn route(
        &self,
        state: &mut State,
        path: &str,
        params: &Params,
        now_ms: i64,
    ) -> Result<String, ApiError> {
        match path {
            "/api/v1/query" => {
                let expr = params.expr()?;
                let at = params.time("time")?.unwrap_or(now_ms);
                let stored = self.select_all(state)?;
                let value = promql::Evaluator::new(&stored, at, at)
                    .instant(&expr, at)
                    .map_err(ApiError::from)?;
                Ok(instant_json(value, at, keeps_order(&expr)))
            }
            "/api/v1/query_range" => {
                let expr = params.expr()?;
                let steps = params.steps()?;
                if let Ok(selector) = Selector::parse(params.get("query").unwrap_or("")) {
                    // A bare selector: the rollups may answer long ranges (see `Source`).
                    return range_query(self.select(state, &[selector])?, params);
                }
                let stored = self.select_all(state)?;
                let matrix = promql::Evaluator::new(&stored, steps.start, steps.end)
                    .range(&expr, steps.step)
                    .map_err(ApiError::from)?;
                Ok(matrix_json(&matrix))
            }
            _ => self.metadata(state, path, params),
        }
    }

    /// Evaluates `query` at each step of `steps` over the store, as `/api/v1/query_range` does
    /// (a bare selector over a long range reads the rollups): per series, its labels and values;
    /// series without any are left out.
    ///
    /// # Errors
    ///
    /// The expression does not parse or cannot be evaluated, or reading the store failed.
    pub fn range(&self, query: &str, steps: &Steps) -> Result<promql::Matrix, String> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let answer = self.range_in(&mut state, query, steps);
        if matches!(answer, Err(ApiError::Internal(_))) {
            *state = State::default();
        }
        answer.map_err(|e| match e {
            ApiError::BadData(m)
            | ApiError::Execution(m)
            | ApiError::NotFound(m)
            | ApiError::Internal(m) => m,
            ApiError::Method(m) => m.to_owned(),
        })
    }

    fn range_in(
        &self,
        state: &mut State,
        query: &str,
        steps: &Steps,
    ) -> Result<promql::Matrix, ApiError> {
        if let Ok(selector) = Selector::parse(query) {
            let (series, reader) = self.select(state, &[selector])?;
            let mut out = Vec::new();
            for s in series {
                let Some(reader) = reader else { break };
                let values = evaluate(reader, s.id, steps).map_err(internal)?;
                if !values.is_empty() {
                    out.push((s.metric.clone(), values));
                }
            }
            return Ok(out);
        }
        let expr = promql::parse(query)?;
        let stored = self.select_all(state)?;
        Ok(promql::Evaluator::new(&stored, steps.start, steps.end).range(&expr, steps.step)?)
    }

    /// `/api/v1/series`, `/api/v1/labels` and `/api/v1/label/<name>/values`.
    fn metadata(&self, state: &mut State, path: &str, params: &Params) -> Result<String, ApiError> {
        match path {
            "/api/v1/series" => {
                let selectors = params.matches()?;
                if selectors.is_empty() {
                    return Err(ApiError::BadData("no match[] parameter provided".into()));
                }
                let series = in_range(self.select(state, &selectors)?, params)?;
                let mut out = String::from("[");
                for (i, s) in series.iter().enumerate() {
                    comma(&mut out, i);
                    out.push_str(&json_metric(&s.metric));
                }
                out.push(']');
                Ok(out)
            }
            "/api/v1/labels" => {
                let names: BTreeSet<&str> = in_range(self.select_or_all(state, params)?, params)?
                    .into_iter()
                    .flat_map(|s| s.metric.keys().map(String::as_str))
                    .collect();
                Ok(json_strings(names))
            }
            _ => match label_values_path(path) {
                Some(name) => {
                    let values: BTreeSet<&str> =
                        in_range(self.select_or_all(state, params)?, params)?
                            .into_iter()
                            .filter_map(|s| s.metric.get(&name).map(String::as_str))
                            .collect();
                    Ok(json_strings(values))
                }
                None => Err(ApiError::NotFound(format!(
                    "not found: {path}; try /api/v1/query, /api/v1/query_range, /api/v1/series, \
                     /api/v1/labels or /api/v1/label/<name>/values"
                ))),
            },
        }
    }

    /// Opens the store if it exists now and rereads its series when one was added.
    fn refresh(&self, state: &mut State) -> Result<(), ApiError> {
        if state.reader.is_none() {
            state.reader = Reader::open(&self.database).map_err(internal)?;
        }
        let Some(reader) = &state.reader else {
            return Ok(());
        };
        let generation = reader.generation().map_err(internal)?;
        if generation != state.generation {
            let mut series: Vec<Exposed> = reader
                .series()
                .map_err(internal)?
                .into_iter()
                .map(|s| Exposed {
                    id: s.id,
                    metric: metric(&s.name, &s.labels, s.kind),
                })
                .collect();
            series.sort_by(|a, b| a.metric.cmp(&b.metric));
            state.series = series;
            state.generation = generation;
        }
        Ok(())
    }

    /// Every series, in label order, and the reader they were read with (`None`: no store yet).
    fn select_all<'s>(&self, state: &'s mut State) -> Result<Stored<'s>, ApiError> {
        self.refresh(state)?;
        Ok(Stored {
            reader: state.reader.as_ref(),
            series: &state.series,
        })
    }

    /// The series any of `selectors` selects, in label order, and the reader they were read
    /// with (`None`: no store yet, and no series).
    fn select<'s>(
        &self,
        state: &'s mut State,
        selectors: &[Selector],
    ) -> Result<(Vec<&'s Exposed>, Option<&'s Reader>), ApiError> {
        self.refresh(state)?;
        let selected = state
            .series
            .iter()
            .filter(|s| selectors.iter().any(|sel| sel.matches(&s.metric)))
            .collect();
        Ok((selected, state.reader.as_ref()))
    }

    /// [`select`](Self::select) with the `match[]` selectors, or every series without one.
    fn select_or_all<'s>(
        &self,
        state: &'s mut State,
        params: &Params,
    ) -> Result<(Vec<&'s Exposed>, Option<&'s Reader>), ApiError> {
        let mut selectors = params.matches()?;
        if selectors.is_empty() {
            selectors.push(Selector::parse(r#"{__name__=~".+"}"#).map_err(ApiError::BadData)?);
        }
        self.select(state, &selectors)
    }
}

type Selected<'s> = (Vec<&'s Exposed>, Option<&'s Reader>);

/// The store's series as the evaluator reads them: the API's cached list and its reader.
struct Stored<'s> {
    reader: Option<&'s Reader>,
    series: &'s [Exposed],
}

impl promql::Source for Stored<'_> {
    fn series(
        &self,
        matchers: &[promql_parser::label::Matcher],
    ) -> Result<Vec<promql::SourceSeries>, String> {
        if self.reader.is_none() {
            return Ok(Vec::new());
        }
        Ok(self
            .series
            .iter()
            .filter(|s| promql::matches(matchers, &s.metric))
            .map(|s| promql::SourceSeries {
                id: s.id,
                metric: s.metric.clone(),
            })
            .collect())
    }

    fn points(&self, id: i64, after_ms: i64, to_ms: i64) -> Result<Vec<(i64, f64)>, String> {
        match self.reader {
            Some(r) => r.points(id, after_ms, to_ms).map_err(|e| e.to_string()),
            None => Ok(Vec::new()),
        }
    }
}

/// Whether an instant vector answer keeps the evaluator's order (`sort`, `topk`...) rather than
/// label order.
fn keeps_order(expr: &promql_parser::parser::Expr) -> bool {
    use promql_parser::parser::Expr;
    match expr {
        Expr::Paren(p) => keeps_order(&p.expr),
        Expr::Call(c) => matches!(c.func.name, "sort" | "sort_desc"),
        Expr::Aggregate(a) => matches!(a.op.to_string().as_str(), "topk" | "bottomk"),
        _ => false,
    }
}

/// An instant query's answer: `scalar`, `string`, `vector` (stamped `at`) or `matrix`.
fn instant_json(value: promql::Value, at: i64, keep_order: bool) -> String {
    match value {
        promql::Value::Scalar(v) => format!(
            "{{\"resultType\":\"scalar\",\"result\":[{},\"{}\"]}}",
            seconds(at),
            format_value(v)
        ),
        promql::Value::String(text) => format!(
            "{{\"resultType\":\"string\",\"result\":[{},{}]}}",
            seconds(at),
            json_string(&text)
        ),
        promql::Value::Vector(mut samples) => {
            if !keep_order {
                samples.sort_by(|a, b| a.metric.cmp(&b.metric));
            }
            let mut out = String::from("{\"resultType\":\"vector\",\"result\":[");
            for (i, s) in samples.iter().enumerate() {
                comma(&mut out, i);
                let _ = write!(
                    out,
                    "{{\"metric\":{},\"value\":[{},\"{}\"]}}",
                    json_metric(&s.metric),
                    seconds(at),
                    format_value(s.value)
                );
            }
            out.push_str("]}");
            out
        }
        promql::Value::Range(range) => {
            let mut series: promql::Matrix = range
                .series
                .into_iter()
                .map(|s| (std::sync::Arc::unwrap_or_clone(s.metric), s.points.to_vec()))
                .collect();
            series.sort_by(|a, b| a.0.cmp(&b.0));
            matrix_json(&series)
        }
    }
}

/// A `matrix` answer.
fn matrix_json(series: &[(Metric, Vec<(i64, f64)>)]) -> String {
    let mut out = String::from("{\"resultType\":\"matrix\",\"result\":[");
    for (n, (metric, points)) in series.iter().enumerate() {
        comma(&mut out, n);
        let _ = write!(out, "{{\"metric\":{},\"values\":[", json_metric(metric));
        for (i, (t, v)) in points.iter().enumerate() {
            comma(&mut out, i);
            let _ = write!(out, "[{},\"{}\"]", seconds(*t), format_value(*v));
        }
        out.push_str("]}");
    }
    out.push_str("]}");
    out
}

/// `/api/v1/query_range`: a matrix, one value per step; series without any are left out.
fn range_query((series, reader): Selected<'_>, params: &Params) -> Result<String, ApiError> {
    let steps = params.steps()?;
    let mut out = String::from("{\"resultType\":\"matrix\",\"result\":[");
    let mut n = 0;
    for s in series {
        let Some(reader) = reader else { break };
        let values = evaluate(reader, s.id, &steps).map_err(internal)?;
        if values.is_empty() {
            continue;
        }
        comma(&mut out, n);
        n += 1;
        let _ = write!(out, "{{\"metric\":{},\"values\":[", json_metric(&s.metric));
        for (i, (t, v)) in values.iter().enumerate() {
            comma(&mut out, i);
            let _ = write!(out, "[{},\"{}\"]", seconds(*t), format_value(*v));
        }
        out.push_str("]}");
    }
    out.push_str("]}");
    Ok(out)
}

/// Where a range query over `steps` reads series `id` from.
///
/// # Errors
///
/// SQLite failed.
pub fn source(reader: &Reader, id: i64, steps: &Steps) -> rusqlite::Result<Source> {
    if steps.step < ROLLUP_MIN_STEP_MS {
        return Ok(Source::Raw);
    }
    let from = steps.start - LOOKBACK_MS;
    let raw_covers = reader.oldest_point(id)?.is_some_and(|t| t <= from);
    if raw_covers && reader.points_in_hours(id, from, steps.end)? <= RAW_POINTS_LIMIT {
        return Ok(Source::Raw);
    }
    let minutes = (steps.end - from) / 60_000;
    Ok(
        if steps.step >= 3_600_000 || minutes > MINUTE_BUCKETS_LIMIT {
            Source::Rollup(RollupStep::Hour)
        } else {
            Source::Rollup(RollupStep::Minute)
        },
    )
}

/// The values of series `id` at each step, from the [`source`] that suits the range.
///
/// # Errors
///
/// SQLite failed.
pub fn evaluate(reader: &Reader, id: i64, steps: &Steps) -> rusqlite::Result<Vec<(i64, f64)>> {
    match source(reader, id, steps)? {
        Source::Raw => {
            let points = reader.points(id, steps.start - LOOKBACK_MS, steps.end)?;
            Ok(steps.evaluate(&points, LOOKBACK_MS))
        }
        Source::Rollup(size) => {
            // A bucket is stamped with its start; a step takes the latest bucket that started
            // within the lookback, or within the bucket's length for hours.
            let bucket = match size {
                RollupStep::Minute => 60_000,
                RollupStep::Hour => 3_600_000,
            };
            let lookback = LOOKBACK_MS.max(bucket);
            let means = reader.rollup_means(id, size, steps.start - lookback, steps.end)?;
            Ok(steps.evaluate(&means, lookback))
        }
    }
}

/// Keeps the series with points between the `start` and `end` parameters (to the hour, from the
/// hourly rollups, as Prometheus answers by block); all of them when neither is given.
fn in_range<'s>(
    (series, reader): Selected<'s>,
    params: &Params,
) -> Result<Vec<&'s Exposed>, ApiError> {
    let (start, end) = (params.time("start")?, params.time("end")?);
    let (Some(reader), true) = (reader, start.is_some() || end.is_some()) else {
        return Ok(series);
    };
    let (start, end) = (start.unwrap_or(i64::MIN / 2), end.unwrap_or(i64::MAX / 2));
    let mut kept = Vec::new();
    for s in series {
        if reader
            .points_in_hours(s.id, start - 1, end)
            .map_err(internal)?
            > 0
        {
            kept.push(s);
        }
    }
    Ok(kept)
}

/// `/api/v1/label/<name>/values` -> `name`.
fn label_values_path(path: &str) -> Option<String> {
    let name = path
        .strip_prefix("/api/v1/label/")?
        .strip_suffix("/values")?;
    (!name.is_empty() && !name.contains('/')).then(|| decode(name))
}

/// The decoded query string.
#[derive(Debug, Default)]
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Self {
        Self(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn time(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|v| {
                parse_time(v)
                    .map_err(|e| ApiError::BadData(format!("invalid parameter \"{name}\": {e}")))
            })
            .transpose()
    }

    /// `start`, `end` and `step`.
    fn steps(&self) -> Result<Steps, ApiError> {
        let start = self.time("start")?;
        let end = self.time("end")?;
        let step = self.get("step").map(parse_duration).transpose();
        let step =
            step.map_err(|e| ApiError::BadData(format!("invalid parameter \"step\": {e}")))?;
        let (Some(start), Some(end), Some(step)) = (start, end, step) else {
            return Err(ApiError::BadData(
                "query_range needs the parameters start, end and step".into(),
            ));
        };
        Steps::new(start, end, step).map_err(ApiError::BadData)
    }

    /// The `query` parameter, parsed and checked.
    fn expr(&self) -> Result<promql_parser::parser::Expr, ApiError> {
        promql::parse(self.get("query").unwrap_or("")).map_err(|e| match e {
            promql::Error::BadData(m) => {
                ApiError::BadData(format!("invalid parameter \"query\": {m}"))
            }
            other => other.into(),
        })
    }

    fn matches(&self) -> Result<Vec<Selector>, ApiError> {
        self.0
            .iter()
            .filter(|(k, _)| k == "match[]")
            .map(|(_, v)| Selector::parse(v).map_err(ApiError::BadData))
            .collect()
    }
}

/// Percent-decoding of a query string part, `+` as a space.
pub(crate) fn decode(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A time in ms as Prometheus writes it: unix seconds, a number with 3 decimals when they are
/// not all zero (`1700000000`, `1700000000.050`).
fn seconds(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let (whole, fraction) = (ms.unsigned_abs() / 1000, ms.unsigned_abs() % 1000);
    if fraction == 0 {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{fraction:03}")
    }
}

fn comma(out: &mut String, i: usize) {
    if i > 0 {
        out.push(',');
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("strings always serialise")
}

fn json_metric(m: &Metric) -> String {
    serde_json::to_string(m).expect("string maps always serialise")
}

fn json_strings<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    serde_json::to_string(&items.into_iter().collect::<Vec<_>>()).expect("strings always serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_decoded() {
        let p = Params::parse("query=up%7Bjob%3D%22a+b%22%7D&match%5B%5D=x&match[]=y&bad=%zz%");
        assert_eq!(p.get("query"), Some(r#"up{job="a b"}"#));
        assert_eq!(p.get("bad"), Some("%zz%"));
        assert_eq!(p.matches().unwrap().len(), 2);
    }

    #[test]
    fn times_are_written_as_prometheus_does() {
        assert_eq!(seconds(1_700_000_000_000), "1700000000");
        assert_eq!(seconds(1_700_000_000_123), "1700000000.123");
        assert_eq!(seconds(1_700_000_000_050), "1700000000.050");
        assert_eq!(seconds(-1_500), "-1.500");
    }

    #[test]
    fn label_values_paths() {
        assert_eq!(
            label_values_path("/api/v1/label/job/values").as_deref(),
            Some("job")
        );
        assert_eq!(label_values_path("/api/v1/label//values"), None);
        assert_eq!(label_values_path("/api/v1/label/a/b/values"), None);
    }

    const DAY_MS: u64 = 86_400_000;
    const T0: u64 = 1_800_000_000_000 - 1_800_000_000_000 % DAY_MS;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("monitor-query-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// A store holding 3 days of `app.load{host="a"}` every 10 s (value: minutes since T0, so
    /// every minute has its own mean) and raw points kept for `retention_days`.
    fn store(name: &str, retention_days: u64) -> (PathBuf, Reader) {
        use crate::history::Persistence;
        use std::time::Duration;
        let dir = scratch(name);
        let day = Duration::from_millis(DAY_MS);
        let end = T0 + 3 * DAY_MS;
        let (mut p, _) =
            Persistence::open(&dir, retention_days as u32 * day, 30 * day, day, T0).unwrap();
        let key = crate::store::SeriesKey {
            name: "app.load".into(),
            labels: monitor_plugin::Labels::from([("host".to_owned(), "a".to_owned())]),
        };
        for ts in (T0..end).step_by(10_000) {
            let v = ((ts - T0) / 60_000) as f64;
            p.batch()
                .point(&key, monitor_plugin::SampleKind::Gauge, "c", ts, v);
        }
        p.commit(end);
        let reader = Reader::open(&dir.join(crate::history::DATABASE_FILE))
            .unwrap()
            .unwrap();
        (dir, reader)
    }

    #[test]
    fn short_or_fine_ranges_read_raw_points_and_long_ones_rollups() {
        let (dir, reader) = store("sources", 30);
        let t = |ms: u64| ms as i64;
        let end = t(T0 + 3 * DAY_MS) - 10_000;
        let one_hour = Steps::new(end - 3_600_000, end, 10_000).unwrap();
        assert_eq!(source(&reader, 1, &one_hour).unwrap(), Source::Raw);
        let values = evaluate(&reader, 1, &one_hour).unwrap();
        assert_eq!(values.len(), 361);
        // Raw: each step has the point at that time.
        assert!(
            values
                .iter()
                .all(|&(ts, v)| v == ((ts - t(T0)) / 60_000) as f64)
        );
        let hour_by_minute = Steps::new(end - 3_600_000, end, 60_000).unwrap();
        assert_eq!(source(&reader, 1, &hour_by_minute).unwrap(), Source::Raw);
        // Two days by 5 minutes: too many raw points, few enough minutes.
        let two_days = Steps::new(end - 2 * t(DAY_MS), end, 300_000).unwrap();
        assert_eq!(
            source(&reader, 1, &two_days).unwrap(),
            Source::Rollup(RollupStep::Minute)
        );
        // Minute means: the value of the minute that starts at the step.
        let values = evaluate(&reader, 1, &two_days).unwrap();
        assert_eq!(values.len(), 577);
        assert!(
            values
                .iter()
                .all(|&(ts, v)| v == ((ts - t(T0)) / 60_000) as f64)
        );
        let three_days = Steps::new(t(T0), end, 3_600_000).unwrap();
        assert_eq!(
            source(&reader, 1, &three_days).unwrap(),
            Source::Rollup(RollupStep::Hour)
        );
        // Hour means: the mean of the minutes of the hour, 0..59 in the first.
        let values = evaluate(&reader, 1, &three_days).unwrap();
        assert_eq!(values[0], (t(T0), 29.5));
        assert_eq!(values[1], (t(T0) + 3_600_000, 89.5));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn ranges_older_than_the_raw_points_read_rollups() {
        let (dir, reader) = store("retention", 1);
        let end = (T0 + 3 * DAY_MS) as i64 - 10_000;
        let last_hour = Steps::new(end - 3_600_000, end, 60_000).unwrap();
        assert_eq!(source(&reader, 1, &last_hour).unwrap(), Source::Raw);
        // Raw points are gone two days back: the minute rollups answer, with no gap.
        let two_hours_back = Steps::new(
            end - 2 * 86_400_000,
            end - 2 * 86_400_000 + 3_600_000,
            60_000,
        )
        .unwrap();
        assert_eq!(
            source(&reader, 1, &two_hours_back).unwrap(),
            Source::Rollup(RollupStep::Minute)
        );
        assert_eq!(evaluate(&reader, 1, &two_hours_back).unwrap().len(), 61);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn without_a_store_every_query_is_empty() {
        let api = QueryApi::new(std::env::temp_dir().join("monitor-query-absent/monitor.db"));
        let get = |path: &str, query: &str| {
            let r = api.handle(
                &Request {
                    method: "GET",
                    path,
                    query,
                    ..Request::default()
                },
                1_000_000,
            );
            (r.status, String::from_utf8(r.body.to_vec()).unwrap())
        };
        assert_eq!(
            get("/api/v1/query", "query=up"),
            (
                200,
                r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#.into()
            )
        );
        assert_eq!(
            get("/api/v1/query_range", "query=up&start=0&end=60&step=15"),
            (
                200,
                r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#.into()
            )
        );
        assert_eq!(
            get("/api/v1/labels", ""),
            (200, r#"{"status":"success","data":[]}"#.into())
        );
        assert_eq!(
            get("/api/v1/query", "query=sum(rate(up[5m]))%2B1&time=60"),
            (
                200,
                r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#.into()
            )
        );
        assert_eq!(
            get("/api/v1/query", "query=1%2B1&time=60"),
            (
                200,
                r#"{"status":"success","data":{"resultType":"scalar","result":[60,"2"]}}"#.into()
            )
        );
        assert_eq!(
            get("/api/v1/query", "query=%22text%22&time=60"),
            (
                200,
                r#"{"status":"success","data":{"resultType":"string","result":[60,"text"]}}"#
                    .into()
            )
        );
        // Evaluation errors are Prometheus's `execution`, 422: many-to-many matching here.
        let (status, body) = get(
            "/api/v1/query",
            "query=vector(1)%2Bon()(vector(2)%20or%20\
             label_replace(vector(3)%2C%22a%22%2C%22b%22%2C%22%22%2C%22%22))",
        );
        assert_eq!(status, 422, "{body}");
        assert!(body.contains(r#""errorType":"execution""#), "{body}");
        assert!(body.contains("many-to-many matching not allowed"), "{body}");
        let (status, body) = get("/api/v1/query", "query=sgn(up)");
        assert_eq!(status, 400);
        assert!(body.starts_with(r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": unsupported PromQL function \"sgn\""#), "{body}");
        let (status, body) = get(
            "/api/v1/query_range",
            "query=%22text%22&start=0&end=60&step=15",
        );
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("for range query"), "{body}");
        // Grafana's default: a POST with a form body answers as the GET would.
        let form = [("content-type", "application/x-www-form-urlencoded")];
        let r = api.handle(
            &Request {
                method: "POST",
                path: "/api/v1/query",
                headers: &form,
                body: b"query=sgn(up)",
                ..Request::default()
            },
            0,
        );
        assert_eq!(r.status, 400, "the form was read: {:?}", r.body);
        assert!(
            String::from_utf8_lossy(&r.body).contains("unsupported PromQL function \\\"sgn\\\"")
        );
        let r = api.handle(
            &Request {
                method: "POST",
                path: "/api/v1/query_range",
                headers: &form,
                body: b"query=1%2B1&start=0&end=60&step=30",
                ..Request::default()
            },
            0,
        );
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert!(String::from_utf8_lossy(&r.body).contains(r#"[[0,"2"],[30,"2"],[60,"2"]]"#));
        for (method, path, allow) in [
            ("DELETE", "/api/v1/query", "GET, HEAD, POST"),
            ("POST", "/api/v1/label/job/values", "GET, HEAD"),
        ] {
            let r = api.handle(
                &Request {
                    method,
                    path,
                    ..Request::default()
                },
                0,
            );
            assert_eq!(r.status, 405, "{method} {path}");
            assert_eq!(
                r.headers,
                vec![("Allow", allow.to_owned())],
                "{method} {path}"
            );
        }
    }

    #[test]
    fn a_store_created_after_the_api_is_read_once_it_exists() {
        let dir = scratch("later");
        let api = QueryApi::new(dir.join(crate::history::DATABASE_FILE));
        let query = format!("query=app_load&time={}", (T0 + 3 * DAY_MS) / 1000);
        let get = || {
            let r = api.handle(
                &Request {
                    method: "GET",
                    path: "/api/v1/query",
                    query: &query,
                    ..Request::default()
                },
                0,
            );
            serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()
        };
        assert_eq!(get()["data"]["result"], serde_json::json!([]));
        let (dir, _reader) = store("later", 30);
        let result = &get()["data"]["result"];
        assert_eq!(
            result[0]["metric"],
            serde_json::json!({"__name__": "app_load", "host": "a"})
        );
        assert_eq!(result[0]["value"][1], "4319");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
