//! The evaluator: selectors, subqueries and the walk over the expression at one instant.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{
    AtModifier, Expr, MatrixSelector, Offset, SubqueryExpr, UnaryExpr, VectorSelector,
};

use super::value::{Matrix, Metric, Points, Range, Sample, Series, Value, drop_name};
use super::{Error, Source, aggregate, binary, functions};

/// How far back an instant selector looks for a sample: Prometheus's default
/// `--query.lookback-delta`.
pub const LOOKBACK_MS: i64 = 5 * 60_000;
/// Most samples one query may read: Prometheus's default `--query.max-samples`.
pub const MAX_SAMPLES: usize = 50_000_000;
/// A subquery's step when it names none: Prometheus's default evaluation interval.
pub const SUBQUERY_STEP_MS: i64 = 60_000;

/// The samples of the series one selector selects, read once per query for the window the
/// query needs.
#[derive(Debug)]
struct Selected {
    series: Vec<(Arc<Metric>, i64)>,
    // The points read so far, per series, and the window `(after, to]` they cover.
    points: Vec<Points>,
    // Per series, whether its points hold a staleness marker (rarely): only those are filtered
    // for each range cut from them.
    stale: Vec<bool>,
    covered: Option<(i64, i64)>,
}

/// What the selectors of several queries over the same [`Source`] at the same times read,
/// shared between them: the alert engine evaluates every rule of one evaluation at the same
/// instant, and rules often select the same series (`rate(x[5m])` in one, `x` in another).
/// Each selector is then read once per evaluation, not once per rule.
///
/// The values of function calls, aggregations and binary operations are kept too, by their text
/// and time: rules often share them (`rate(x[5m]) > 10` and `rate(x[5m]) > 100`, one alert in
/// several groups), and each is then computed once per evaluation.
///
/// A query answered from these counts against [`MAX_SAMPLES`] what it would have read alone:
/// a kept value charges the selections it was computed from, so whether a query fails never
/// depends on what other queries read before it.
///
/// Only valid while the source does not change: [`clear`](Self::clear) it when it does (a
/// recording rule's results added).
#[derive(Debug, Default)]
pub struct Selections(
    RefCell<HashMap<String, Arc<Selected>>>,
    // By time, then by the expression's text: looked up by a borrowed text.
    RefCell<HashMap<i64, HashMap<String, Kept>>>,
);

/// A value kept for the queries that ask for the same expression at the same time, with the
/// selector reads it took; both shared, so that handing them out copies nothing.
#[derive(Debug, Clone)]
struct Kept {
    value: Arc<Value>,
    requests: Arc<[Arc<Request>]>,
}

/// One selector's read as a query asked for it: the selection's key and matchers, the window
/// `(after, to]` asked, and the window for every step of the query.
#[derive(Debug)]
struct Request {
    key: String,
    matchers: Vec<Matcher>,
    asked: (i64, i64),
    steps: (i64, i64),
}

/// Whether `s` holds the points of `(after, to]`.
fn covers(s: &Selected, (after, to): (i64, i64)) -> bool {
    s.covered.is_some_and(|(a, b)| a <= after && to <= b)
}

impl Selections {
    /// Forgets what was read and computed.
    pub fn clear(&self) {
        self.0.borrow_mut().clear();
        self.1.borrow_mut().clear();
    }
}

/// Evaluates expressions over a [`Source`] for one query (an instant, or a range of steps).
///
/// Each selector's series and samples are read once for the whole query, then cut per step.
pub struct Evaluator<'s, S: Source + ?Sized> {
    source: &'s S,
    start_ms: i64,
    end_ms: i64,
    own: Selections,
    // Where selections are kept: `own`, or one shared with other queries.
    shared: Option<&'s Selections>,
    // Samples read so far, against [`MAX_SAMPLES`]: what this query would have read alone,
    // whatever the shared selections already held.
    samples: std::cell::Cell<usize>,
    max_samples: usize,
    // The window of each selection this query read (or would have read alone): as its own
    // cache would cover it.
    charged: RefCell<HashMap<String, (i64, i64)>>,
    // With shared selections, every selector read in order: a value kept for other queries
    // keeps the reads it took, and they are charged again when it is reused.
    requests: RefCell<Vec<Arc<Request>>>,
}

impl<S: Source + ?Sized> std::fmt::Debug for Evaluator<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evaluator")
            .field("start_ms", &self.start_ms)
            .field("end_ms", &self.end_ms)
            .finish_non_exhaustive()
    }
}

fn millis(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

fn system_ms(t: &SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => millis(&d),
        Err(e) => -millis(&e.duration()),
    }
}

fn offset_ms(offset: Option<&Offset>) -> i64 {
    match offset {
        None => 0,
        Some(Offset::Pos(d)) => millis(d),
        Some(Offset::Neg(d)) => -millis(d),
    }
}

/// Whether `v` is Prometheus's staleness marker.
fn is_stale(v: f64) -> bool {
    v.to_bits() == 0x7ff0_0000_0000_0002
}

impl<'s, S: Source + ?Sized> Evaluator<'s, S> {
    /// An evaluator for a query from `start_ms` to `end_ms` (the same for an instant query): what
    /// `@ start()` and `@ end()` mean, and the window samples are read for.
    pub fn new(source: &'s S, start_ms: i64, end_ms: i64) -> Self {
        Self {
            source,
            start_ms,
            end_ms,
            own: Selections::default(),
            shared: None,
            samples: std::cell::Cell::new(0),
            max_samples: MAX_SAMPLES,
            charged: RefCell::new(HashMap::new()),
            requests: RefCell::new(Vec::new()),
        }
    }

    /// An evaluator like [`new`](Self::new) whose selectors' reads are kept in `selections`,
    /// shared with the other evaluators over the same source with the same `start_ms` and
    /// `end_ms`.
    pub fn with_selections(
        source: &'s S,
        start_ms: i64,
        end_ms: i64,
        selections: &'s Selections,
    ) -> Self {
        Self {
            shared: Some(selections),
            ..Self::new(source, start_ms, end_ms)
        }
    }

    /// The same evaluator with a lower limit than [`MAX_SAMPLES`].
    #[cfg(test)]
    pub(super) fn with_max_samples(self, max_samples: usize) -> Self {
        Self {
            max_samples,
            ..self
        }
    }

    /// The samples counted so far against the limit.
    #[cfg(test)]
    pub(super) fn samples_read(&self) -> usize {
        self.samples.get()
    }

    fn selections(&self) -> &RefCell<HashMap<String, Arc<Selected>>> {
        &self.shared.unwrap_or(&self.own).0
    }

    /// `expr` at `t_ms`, as an instant query answers it.
    ///
    /// # Errors
    ///
    /// See [`Error`].
    pub fn instant(&self, expr: &Expr, t_ms: i64) -> Result<Value, Error> {
        self.eval(expr, t_ms)
    }

    /// `expr` at `t_ms` as [`instant`](Self::instant) answers it, shared: with shared
    /// selections, a function call, aggregation or binary operation another query asked for at
    /// the same time is handed out as it was kept, not copied (and kept without a copy when
    /// computed here). `text` is `expr.to_string()`, known beforehand.
    ///
    /// # Errors
    ///
    /// See [`Error`].
    pub fn instant_shared(&self, expr: &Expr, text: &str, t_ms: i64) -> Result<Arc<Value>, Error> {
        match expr {
            Expr::Call(_) | Expr::Aggregate(_) | Expr::Binary(_) => {
                self.kept_or(expr, Some(text), t_ms)
            }
            _ => self.eval(expr, t_ms).map(Arc::new),
        }
    }

    /// `expr` at each step from the start to the end: each series' points, series in label order.
    ///
    /// # Errors
    ///
    /// See [`Error`].
    pub fn range(&self, expr: &Expr, step_ms: i64) -> Result<Matrix, Error> {
        let mut out: BTreeMap<Metric, Vec<(i64, f64)>> = BTreeMap::new();
        let mut t = self.start_ms;
        while t <= self.end_ms {
            match self.eval(expr, t)? {
                Value::Scalar(v) => out.entry(Metric::new()).or_default().push((t, v)),
                Value::Vector(samples) => {
                    for s in samples {
                        out.entry(s.metric).or_default().push((t, s.value));
                    }
                }
                other => {
                    return Err(Error::BadData(format!(
                        "invalid expression type \"{}\" for range query, must be Scalar or \
                         instant Vector",
                        other.type_name()
                    )));
                }
            }
            t += step_ms;
        }
        Ok(out.into_iter().collect())
    }

    pub(super) fn eval(&self, expr: &Expr, t: i64) -> Result<Value, Error> {
        match expr {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Value::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::Unary(u) => self.unary(u, t),
            Expr::VectorSelector(vs) => Ok(Value::Vector(self.instant_selector(vs, t)?)),
            Expr::MatrixSelector(ms) => Ok(Value::Range(self.range_selector(ms, t)?)),
            Expr::Subquery(sq) => Ok(Value::Range(self.subquery(sq, t)?)),
            Expr::Call(_) | Expr::Aggregate(_) | Expr::Binary(_) => {
                if self.shared.is_none() {
                    return self.compute(expr, t);
                }
                self.kept_or(expr, None, t).map(Arc::unwrap_or_clone)
            }
            Expr::Extension(_) => Err(Error::BadData(super::validate(expr).unwrap_err())),
        }
    }

    /// The value of a function call, aggregation or binary operation, computed.
    fn compute(&self, expr: &Expr, t: i64) -> Result<Value, Error> {
        match expr {
            Expr::Call(call) => functions::call(self, call, t),
            Expr::Aggregate(a) => aggregate::eval(self, a, t),
            Expr::Binary(b) => binary::eval(self, b, t),
            _ => self.eval(expr, t),
        }
    }

    /// The computed value of `expr` at `t` (its text `text`, else formatted here); with shared
    /// selections, kept for the other queries that ask for the same `expr` at the same `t`.
    fn kept_or(&self, expr: &Expr, text: Option<&str>, t: i64) -> Result<Arc<Value>, Error> {
        let Some(shared) = self.shared else {
            return self.compute(expr, t).map(Arc::new);
        };
        let formatted;
        let text = match text {
            Some(text) => text,
            None => {
                formatted = expr.to_string();
                &formatted
            }
        };
        let kept = (shared.1.borrow().get(&t)).and_then(|by_text| by_text.get(text).cloned());
        if let Some(kept) = kept {
            // Answered as if computed: its reads count against `MAX_SAMPLES` as they would have.
            for r in kept.requests.iter() {
                self.selection(r)?;
            }
            return Ok(kept.value);
        }
        let first = self.requests.borrow().len();
        let value = Arc::new(self.compute(expr, t)?);
        let requests = self.requests.borrow()[first..].into();
        (shared.1.borrow_mut().entry(t).or_default()).insert(
            text.to_owned(),
            Kept {
                value: Arc::clone(&value),
                requests,
            },
        );
        Ok(value)
    }

    /// `expr` as an instant vector.
    pub(super) fn vector(&self, expr: &Expr, t: i64) -> Result<Vec<Sample>, Error> {
        match self.eval(expr, t)? {
            Value::Vector(v) => Ok(v),
            other => Err(Error::Execution(format!(
                "expected an instant vector, got {}",
                other.type_name()
            ))),
        }
    }

    /// `expr` as a scalar.
    pub(super) fn scalar(&self, expr: &Expr, t: i64) -> Result<f64, Error> {
        match self.eval(expr, t)? {
            Value::Scalar(v) => Ok(v),
            other => Err(Error::Execution(format!(
                "expected a scalar, got {}",
                other.type_name()
            ))),
        }
    }

    /// `expr` as a range vector.
    pub(super) fn matrix(&self, expr: &Expr, t: i64) -> Result<Range, Error> {
        match self.eval(expr, t)? {
            Value::Range(r) => Ok(r),
            other => Err(Error::Execution(format!(
                "expected a range vector, got {}",
                other.type_name()
            ))),
        }
    }

    fn unary(&self, u: &UnaryExpr, t: i64) -> Result<Value, Error> {
        Ok(match self.eval(&u.expr, t)? {
            Value::Scalar(v) => Value::Scalar(-v),
            Value::Vector(samples) => Value::Vector(
                samples
                    .into_iter()
                    .map(|s| Sample {
                        metric: drop_name(s.metric),
                        value: -s.value,
                        ts: s.ts,
                    })
                    .collect(),
            ),
            other => {
                return Err(Error::BadData(format!(
                    "unary expression only allowed on expressions of type scalar or vector, \
                     got: {}",
                    other.type_name()
                )));
            }
        })
    }

    /// The time a selector or subquery reads at: `@` if given, else `t`, less the offset.
    fn reference(&self, at: Option<&AtModifier>, offset: Option<&Offset>, t: i64) -> i64 {
        let base = match at {
            None => t,
            Some(AtModifier::Start) => self.start_ms,
            Some(AtModifier::End) => self.end_ms,
            Some(AtModifier::At(time)) => system_ms(time),
        };
        base - offset_ms(offset)
    }

    /// Each selected series' latest sample in `(t - 5m, t]`, stamped with its own time.
    pub(super) fn instant_selector(
        &self,
        vs: &VectorSelector,
        t: i64,
    ) -> Result<Vec<Sample>, Error> {
        self.instant_selector_where(vs, t, |_| true)
    }

    /// The samples of [`instant_selector`](Self::instant_selector) whose value `keep` keeps: the
    /// labels of the others are not copied.
    pub(super) fn instant_selector_where(
        &self,
        vs: &VectorSelector,
        t: i64,
        keep: impl Fn(f64) -> bool,
    ) -> Result<Vec<Sample>, Error> {
        let r = self.reference(vs.at.as_ref(), vs.offset.as_ref(), t);
        let selected = self.select(vs, r - LOOKBACK_MS, r, t)?;
        let mut out = Vec::new();
        for ((metric, _), points) in selected.series.iter().zip(&selected.points) {
            let window = points.window(r - LOOKBACK_MS, r);
            if let Some(&(ts, value)) = window.last()
                && !is_stale(value)
                && keep(value)
            {
                out.push(Sample {
                    metric: Metric::clone(metric),
                    value,
                    ts,
                });
            }
        }
        Ok(out)
    }

    fn range_selector(&self, ms: &MatrixSelector, t: i64) -> Result<Range, Error> {
        let vs = &ms.vs;
        let r = self.reference(vs.at.as_ref(), vs.offset.as_ref(), t);
        let start = r - millis(&ms.range);
        let selected = self.select(vs, start, r, t)?;
        let series = selected
            .series
            .iter()
            .zip(&selected.points)
            .zip(&selected.stale)
            .filter_map(|(((metric, _), points), &stale)| {
                let mut points = points.window(start, r);
                if stale && points.iter().any(|p| is_stale(p.1)) {
                    let fresh: Vec<(i64, f64)> =
                        points.iter().copied().filter(|p| !is_stale(p.1)).collect();
                    points = Points::new(fresh.into());
                }
                if points.is_empty() {
                    return None;
                }
                Some(Series {
                    metric: Arc::clone(metric),
                    points,
                })
            })
            .collect();
        Ok(Range {
            series,
            start_ms: start,
            end_ms: r,
        })
    }

    /// `expr[range:step]`: the inner expression at each multiple of the step in
    /// `(t - range, t]`.
    fn subquery(&self, sq: &SubqueryExpr, t: i64) -> Result<Range, Error> {
        let r = self.reference(sq.at.as_ref(), sq.offset.as_ref(), t);
        let step = sq.step.as_ref().map_or(SUBQUERY_STEP_MS, millis).max(1);
        let start = r - millis(&sq.range);
        let mut ti = start.div_euclid(step) * step;
        if ti <= start {
            ti += step;
        }
        let mut by_metric: BTreeMap<Metric, Vec<(i64, f64)>> = BTreeMap::new();
        while ti <= r {
            match self.eval(&sq.expr, ti)? {
                Value::Vector(samples) => {
                    for s in samples {
                        by_metric.entry(s.metric).or_default().push((ti, s.value));
                    }
                }
                Value::Scalar(v) => by_metric.entry(Metric::new()).or_default().push((ti, v)),
                other => {
                    return Err(Error::BadData(format!(
                        "subquery is only allowed on instant vector, got {}",
                        other.type_name()
                    )));
                }
            }
            ti += step;
        }
        Ok(Range {
            series: by_metric
                .into_iter()
                .map(|(metric, points)| Series {
                    metric: Arc::new(metric),
                    points: Points::new(points.into()),
                })
                .collect(),
            start_ms: start,
            end_ms: r,
        })
    }

    /// The series `vs` selects with their samples in at least `(after, to]`; `t` is the step
    /// asking, so that the first read covers the same window at every step of the query.
    fn select(
        &self,
        vs: &VectorSelector,
        after: i64,
        to: i64,
        t: i64,
    ) -> Result<Arc<Selected>, Error> {
        let mut matchers: Vec<Matcher> = vs.matchers.matchers.clone();
        if let Some(name) = &vs.name {
            matchers.push(Matcher::new(MatchOp::Equal, super::NAME, name));
        }
        let key: Vec<String> = matchers.iter().map(ToString::to_string).collect();
        let request = Arc::new(Request {
            key: key.join(","),
            matchers,
            asked: (after, to),
            // The window for every step of the query: the asked one shifted back to the start
            // and forward to the end.
            steps: (
                after.min(after - (t - self.start_ms).max(0)),
                to.max(to + (self.end_ms - t).max(0)),
            ),
        });
        self.selection(&request)
    }

    /// The selection `r` asks for, read unless the selections hold it; charged against
    /// [`MAX_SAMPLES`] with what this query would have read alone: nothing when it read
    /// `r.asked` before, else the window for every step joined with what it read before.
    fn selection(&self, r: &Arc<Request>) -> Result<Arc<Selected>, Error> {
        let key = &r.key;
        let (after, to) = r.asked;
        if self.shared.is_some() {
            self.requests.borrow_mut().push(Arc::clone(r));
        }
        let charge = match self.charged.borrow().get(key) {
            Some(&(a, b)) if a <= after && to <= b => None,
            Some(&(a, b)) => Some((a.min(r.steps.0), b.max(r.steps.1))),
            None => Some(r.steps),
        };
        let cache = self.selections();
        let found = cache.borrow().get(key).cloned();
        if let Some(w) = charge {
            self.charged.borrow_mut().insert(key.clone(), w);
        }
        match found {
            Some(f) if covers(&f, r.asked) && charge.is_none_or(|w| covers(&f, w)) => {
                if let Some((a, b)) = charge {
                    for p in &f.points {
                        self.count(p.window(a, b).len())?;
                    }
                }
                Ok(f)
            }
            previous => self.read(r, previous, charge),
        }
    }

    /// Counts `n` more samples read against [`MAX_SAMPLES`].
    fn count(&self, n: usize) -> Result<(), Error> {
        self.samples.set(self.samples.get() + n);
        if self.samples.get() > self.max_samples {
            return Err(Error::Execution(
                "query processing would load too many samples into memory in query execution"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Reads the selection `r` asks for over the window for every step, joined with what
    /// `previous` held and with `charge`, and keeps it; counts the points of `charge` as it goes,
    /// so a query that reads too much stops early.
    fn read(
        &self,
        r: &Request,
        previous: Option<Arc<Selected>>,
        charge: Option<(i64, i64)>,
    ) -> Result<Arc<Selected>, Error> {
        let (mut from, mut until) = r.steps;
        for (a, b) in [previous.as_ref().and_then(|p| p.covered), charge]
            .into_iter()
            .flatten()
        {
            from = from.min(a);
            until = until.max(b);
        }
        let series = match previous {
            Some(p) => p.series.clone(),
            None => self
                .source
                .series(&r.matchers)
                .map_err(Error::Storage)?
                .into_iter()
                .map(|s| (Arc::new(s.metric), s.id))
                .collect(),
        };
        let mut points = Vec::with_capacity(series.len());
        let mut stale = Vec::with_capacity(series.len());
        for (_, id) in &series {
            let read = self
                .source
                .shared_points(*id, from, until)
                .map_err(Error::Storage)?;
            if let Some((a, b)) = charge {
                self.count(read.window(a, b).len())?;
            }
            stale.push(read.iter().any(|p| is_stale(p.1)));
            points.push(read);
        }
        let selected = Arc::new(Selected {
            series,
            points,
            stale,
            covered: Some((from, until)),
        });
        (self.selections().borrow_mut()).insert(r.key.clone(), Arc::clone(&selected));
        Ok(selected)
    }
}
