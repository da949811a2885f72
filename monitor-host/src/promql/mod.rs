//! PromQL over the host's history, with Prometheus's semantics: what `/api/v1/query` and
//! `/api/v1/query_range` answer, and what alert rules evaluate.
//!
//! Expressions are parsed with `promql-parser`; [`validate`] refuses whatever this evaluator does
//! not implement, naming it (`unsupported PromQL function "holt_winters"`), so nothing is ever
//! evaluated differently from Prometheus. Series are read through a [`Source`], implemented for
//! the store's [`Reader`] and, for the alert and recording rules, the in-memory store
//! ([`MemorySource`]).
//!
//! Semantics follow Prometheus 3: an instant selector takes each series' latest sample in
//! `(t - 5m, t]`; a range selector `x[r]` the samples in `(t - r, t]`; `rate`, `increase` and
//! `delta` extrapolate as Prometheus's `extrapolatedRate` does, counters reset when they
//! decrease; functions and arithmetic drop `__name__`; one-to-one matching with several matches,
//! and many-to-many matching, are errors. The store writes no staleness markers: a series that
//! stops is seen for 5 minutes after its last sample, as Prometheus sees samples imported without
//! markers.
//!
//! Beyond Prometheus, three extension functions come from the project's analytics:
//! `anomaly_score(v[r])` (the latest sample's robust z-score in its window; `anomaly_score(v[r],
//! season_seconds)` against a Holt-Winters model), `forecast(v[r], horizon_seconds)` (Holt) and
//! `forecast_seasonal(v[r], horizon_seconds, season_seconds)` (Holt-Winters). Prometheus refuses
//! them: they belong in the config's `[[alert]]`s, not in rule files shared with Prometheus.

mod aggregate;
mod binary;
mod eval;
mod extension;
mod functions;
mod memory;
mod stored;
mod value;

use promql_parser::label::Matcher;
use promql_parser::parser::{self, Expr};

pub use self::eval::{Evaluator, LOOKBACK_MS, MAX_SAMPLES, SUBQUERY_STEP_MS, Selections};
pub use self::extension::{EXTENSION_FUNCTIONS, register as register_extensions};
pub use self::functions::SUPPORTED_FUNCTIONS;
pub use self::memory::{MemoryIndex, MemorySource};
pub use self::stored::{HistoryCache, StoredSource};
pub use self::value::{Matrix, Metric, NAME, Points, Range, Sample, Series, Value, without_name};
use crate::history::Reader;
use crate::query::metric;

/// Why an expression was not answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The expression does not parse, or uses what this evaluator does not support (Prometheus's
    /// `bad_data`).
    #[error("{0}")]
    BadData(String),
    /// Evaluation failed: many-to-many matching, duplicate series... (Prometheus's `execution`).
    #[error("{0}")]
    Execution(String),
    /// The store could not be read.
    #[error("reading the store failed: {0}")]
    Storage(String),
}

/// A stored series as the evaluator sees it.
#[derive(Debug, Clone)]
pub struct SourceSeries {
    /// Its id, handed back to [`Source::points`].
    pub id: i64,
    /// Its labels, `__name__` included, as `/metrics` shows them.
    pub metric: Metric,
}

/// Where the evaluator reads series and their samples.
pub trait Source {
    /// The series every one of `matchers` selects (a label a series lacks counts as empty).
    ///
    /// # Errors
    ///
    /// The storage failed; the message says how.
    fn series(&self, matchers: &[Matcher]) -> Result<Vec<SourceSeries>, String>;

    /// The samples of series `id` with `after_ms < ts <= to_ms`, oldest first.
    ///
    /// # Errors
    ///
    /// The storage failed; the message says how.
    fn points(&self, id: i64, after_ms: i64, to_ms: i64) -> Result<Vec<(i64, f64)>, String>;

    /// The same samples as [`points`](Self::points), possibly shared with the source's own
    /// copy rather than copied (what the evaluator reads).
    ///
    /// # Errors
    ///
    /// The storage failed; the message says how.
    fn shared_points(&self, id: i64, after_ms: i64, to_ms: i64) -> Result<Points, String> {
        Ok(Points::new(self.points(id, after_ms, to_ms)?.into()))
    }
}

/// Whether `metric` is selected by every one of `matchers`.
pub fn matches(matchers: &[Matcher], metric: &Metric) -> bool {
    matchers
        .iter()
        .all(|m| m.is_match(metric.get(&m.name).map_or("", String::as_str)))
}

impl Source for Reader {
    fn series(&self, matchers: &[Matcher]) -> Result<Vec<SourceSeries>, String> {
        let all = Reader::series(self).map_err(|e| e.to_string())?;
        Ok(all
            .into_iter()
            .map(|s| SourceSeries {
                id: s.id,
                metric: metric(&s.name, &s.labels, s.kind),
            })
            .filter(|s| matches(matchers, &s.metric))
            .collect())
    }

    fn points(&self, id: i64, after_ms: i64, to_ms: i64) -> Result<Vec<(i64, f64)>, String> {
        Reader::points(self, id, after_ms, to_ms).map_err(|e| e.to_string())
    }
}

/// Parses `query` and checks that every part of it is supported.
///
/// # Errors
///
/// [`Error::BadData`] with the parser's message, or naming the unsupported function or feature.
pub fn parse(query: &str) -> Result<Expr, Error> {
    register_extensions();
    let expr = parser::parse(query).map_err(Error::BadData)?;
    validate(&expr).map_err(Error::BadData)?;
    Ok(expr)
}

/// Checks that every part of `expr` is something this evaluator implements.
///
/// # Errors
///
/// The first unsupported part, by name: `unsupported PromQL function "holt_winters"`,
/// `unsupported PromQL aggregation "limitk"`, ...
pub fn validate(expr: &Expr) -> Result<(), String> {
    match expr {
        Expr::Aggregate(a) => {
            aggregate::check(a)?;
            validate(&a.expr)?;
            a.param.as_deref().map_or(Ok(()), validate)
        }
        Expr::Unary(u) => validate(&u.expr),
        Expr::Binary(b) => {
            binary::check(b)?;
            validate(&b.lhs)?;
            validate(&b.rhs)
        }
        Expr::Paren(p) => validate(&p.expr),
        Expr::Subquery(s) => validate(&s.expr),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::VectorSelector(vs) => check_selector(vs),
        Expr::MatrixSelector(ms) => check_selector(&ms.vs),
        Expr::Call(c) => {
            if !SUPPORTED_FUNCTIONS.contains(&c.func.name)
                && !EXTENSION_FUNCTIONS.contains(&c.func.name)
            {
                return Err(format!("unsupported PromQL function {:?}", c.func.name));
            }
            c.args.args.iter().try_for_each(|a| validate(a))
        }
        Expr::Extension(e) => Err(format!("unsupported PromQL expression {:?}", e.expr.name())),
    }
}

fn check_selector(vs: &parser::VectorSelector) -> Result<(), String> {
    if vs.matchers.or_matchers.is_empty() {
        Ok(())
    } else {
        Err("unsupported PromQL feature \"or\" between label matchers".into())
    }
}

/// Evaluates `query` at `at_ms` over `source`, as `/api/v1/query` does.
///
/// # Errors
///
/// See [`Error`].
pub fn instant_query<S: Source + ?Sized>(
    source: &S,
    query: &str,
    at_ms: i64,
) -> Result<Value, Error> {
    let expr = parse(query)?;
    Evaluator::new(source, at_ms, at_ms).instant(&expr, at_ms)
}

/// Evaluates `query` at each step from `start_ms` to `end_ms`, as `/api/v1/query_range` does:
/// a range vector (`Value::Range`) with one point per step per series, series in label order.
///
/// # Errors
///
/// See [`Error`]; a string expression is [`Error::BadData`], as in Prometheus.
pub fn range_query<S: Source + ?Sized>(
    source: &S,
    query: &str,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
) -> Result<Matrix, Error> {
    let expr = parse(query)?;
    Evaluator::new(source, start_ms, end_ms).range(&expr, step_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Series held in memory: `(labels, points)`.
    struct Memory(Vec<(Metric, Vec<(i64, f64)>)>);

    impl Source for Memory {
        fn series(&self, matchers: &[Matcher]) -> Result<Vec<SourceSeries>, String> {
            Ok(self
                .0
                .iter()
                .enumerate()
                .filter(|(_, (m, _))| matches(matchers, m))
                .map(|(i, (m, _))| SourceSeries {
                    id: i as i64,
                    metric: m.clone(),
                })
                .collect())
        }

        fn points(&self, id: i64, after_ms: i64, to_ms: i64) -> Result<Vec<(i64, f64)>, String> {
            Ok(self.0[id as usize]
                .1
                .iter()
                .copied()
                .filter(|p| p.0 > after_ms && p.0 <= to_ms)
                .collect())
        }
    }

    fn metric(pairs: &[(&str, &str)]) -> Metric {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn memory() -> Memory {
        Memory(vec![
            (
                metric(&[(NAME, "c_total"), ("job", "a")]),
                (0..=10).map(|i| (i * 60_000, i as f64 * 60.0)).collect(),
            ),
            (
                metric(&[(NAME, "g"), ("job", "a")]),
                vec![(0, 1.0), (600_000, 2.0)],
            ),
        ])
    }

    fn vector(query: &str, t: i64) -> Vec<Sample> {
        match instant_query(&memory(), query, t).unwrap() {
            Value::Vector(v) => v,
            other => panic!("{query}: {other:?}"),
        }
    }

    #[test]
    fn windows_are_open_on_the_left() {
        // A sample exactly 5 minutes old is out of the lookback; one a millisecond younger is in.
        assert_eq!(vector("g", 299_999).len(), 1);
        assert!(vector("g", 300_000).is_empty());
        // c_total[2m] at 6 min holds the samples at 5 and 6 min, not the one at 4.
        let v = vector("count_over_time(c_total[2m])", 360_000);
        assert_eq!(v[0].value, 2.0);
        assert_eq!(v[0].metric, metric(&[("job", "a")]));
        // Points on both edges: no extrapolation beyond them, 1 per second.
        let v = vector("rate(c_total[2m])", 360_000);
        assert!((v[0].value - 1.0).abs() < 1e-12, "{v:?}");
    }

    #[test]
    fn offsets_and_at_move_the_reference_time() {
        assert_eq!(vector("g offset 10m", 600_000)[0].value, 1.0);
        assert_eq!(vector("g @ 600", 0)[0].value, 2.0);
        assert_eq!(
            vector("last_over_time(g[1m])", 600_000)[0].metric[NAME],
            "g"
        );
        assert_eq!(vector("timestamp(g)", 700_000)[0].value, 600.0);
    }

    #[test]
    fn range_queries_evaluate_each_step() {
        let m = range_query(&memory(), "g * 2", 0, 600_000, 300_000).unwrap();
        assert_eq!(
            m,
            vec![(metric(&[("job", "a")]), vec![(0, 2.0), (600_000, 4.0)])]
        );
        let m = range_query(&memory(), "time()", 0, 120_000, 60_000).unwrap();
        assert_eq!(m[0].1, [(0, 0.0), (60_000, 60.0), (120_000, 120.0)]);
    }

    #[test]
    fn duplicate_series_after_dropping_the_name_are_an_execution_error() {
        let e = instant_query(&memory(), r#"abs({job="a"})"#, 600_000).unwrap_err();
        assert_eq!(
            e,
            Error::Execution("vector cannot contain metrics with the same labelset".into())
        );
        // Arithmetic between them: one-to-one on `job`, several matches on the left.
        let e = instant_query(&memory(), r#"{job="a"} + on(job) g"#, 600_000).unwrap_err();
        assert!(
            matches!(e, Error::Execution(ref m) if m.contains("group_left")),
            "{e:?}"
        );
    }

    #[test]
    fn queries_sharing_selections_share_only_identical_expressions() {
        let m = memory();
        let shared = Selections::default();
        let queries = [
            "max_over_time(c_total[2m])",
            "max_over_time(c_total[2m] offset 1m)",
            "max_over_time(c_total[2m] @ 300)",
            "max_over_time(c_total[3m:1m])",
            "sum by (job) (c_total) > 100",
            "sum by (job) (c_total) > bool 100",
            "sum without (job) (c_total) > 100",
            "rate(c_total[2m]) * on(job) group_left g",
        ];
        // Twice: the second round answers from what the first kept.
        for q in queries.iter().chain(&queries) {
            let t = 500_000;
            let alone = instant_query(&m, q, t).unwrap();
            let with = Evaluator::with_selections(&m, t, t, &shared)
                .instant(&parse(q).unwrap(), t)
                .unwrap();
            assert_eq!(format!("{with:?}"), format!("{alone:?}"), "{q}");
            // Handed out as kept, the same answer.
            let expr = parse(q).unwrap();
            let kept = Evaluator::with_selections(&m, t, t, &shared)
                .instant_shared(&expr, &expr.to_string(), t)
                .unwrap();
            assert_eq!(format!("{kept:?}"), format!("{alone:?}"), "{q}");
        }
    }

    #[test]
    fn a_selector_compared_with_a_number_filters_as_any_comparison() {
        let t = 600_000;
        let g = |v: f64| Sample {
            metric: metric(&[(NAME, "g"), ("job", "a")]),
            value: v,
            ts: t,
        };
        for (q, want) in [
            ("g > 1.5", vec![g(2.0)]),
            ("1.5 < g", vec![g(2.0)]),
            ("g == 2", vec![g(2.0)]),
            ("g != 2", vec![]),
            ("g < 1.5", vec![]),
        ] {
            assert_eq!(vector(q, t), want, "{q}");
            // As the general comparison answers (a parenthesised selector is evaluated first).
            let general = q.replace("g", "(g)");
            assert_eq!(vector(&general, t), want, "{general}");
        }
        // With `bool`, every sample, without its name.
        let v = vector("g > bool 1.5", t);
        assert_eq!((v.len(), v[0].value), (1, 1.0));
        assert_eq!(v[0].metric, metric(&[("job", "a")]));
    }

    #[test]
    fn a_query_answered_from_shared_selections_counts_the_samples_it_would_have_read() {
        let m = memory();
        let queries = [
            "max_over_time(c_total[2m])",
            "max_over_time(c_total[5m])",
            "c_total",
            "c_total + c_total",
            "sum by (job) (c_total) > 100",
            "sum by (job) (c_total) > 200",
            "max_over_time(c_total[3m:1m])",
            "rate(c_total[2m]) * on(job) group_left g",
            "g offset 10m",
        ];
        let t = 600_000;
        let alone: Vec<usize> = (queries.iter())
            .map(|q| {
                let e = Evaluator::new(&m, t, t);
                e.instant(&parse(q).unwrap(), t).unwrap();
                e.samples_read()
            })
            .collect();
        assert!(alone.iter().all(|&n| n > 0), "{alone:?}");
        // Forwards, backwards, then again: whatever the others kept, each counts as alone.
        let shared = Selections::default();
        let order = (0..queries.len()).chain((0..queries.len()).rev());
        for i in order.clone().chain(order) {
            let e = Evaluator::with_selections(&m, t, t, &shared);
            e.instant(&parse(queries[i]).unwrap(), t).unwrap();
            assert_eq!(e.samples_read(), alone[i], "{}", queries[i]);
        }
        // So a query over the limit fails with the selections kept as alone.
        let q = parse("sum by (job) (c_total) > 100").unwrap();
        let limit = alone[4] - 1;
        let fails = |e: Evaluator<'_, Memory>| matches!(e.with_max_samples(limit).instant(&q, t), Err(Error::Execution(m)) if m.contains("too many samples"));
        assert!(fails(Evaluator::new(&m, t, t)));
        assert!(fails(Evaluator::with_selections(&m, t, t, &shared)));
    }

    #[test]
    fn what_is_not_supported_is_refused_by_name() {
        for (query, says) in [
            ("sgn(g)", "unsupported PromQL function \"sgn\""),
            (
                "sum(rate(g[5m])) / day_of_week()",
                "unsupported PromQL function \"day_of_week\"",
            ),
            (
                "max_over_time(deg(g)[5m:])",
                "unsupported PromQL function \"deg\"",
            ),
        ] {
            let e = parse(query).unwrap_err();
            assert!(
                matches!(&e, Error::BadData(m) if m.contains(says)),
                "{query}: {e:?}"
            );
        }
        assert!(matches!(parse("rate(x[5m]"), Err(Error::BadData(_))));
        assert!(parse("histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))").is_ok());
    }
}
