//! The values an expression evaluates to: scalars, strings, instant vectors and range vectors.

use std::sync::Arc;

/// A series' labels, `__name__` included, by name.
pub type Metric = std::collections::BTreeMap<String, String>;

/// A range query's answer: each series' labels and its value at each step, series in label order.
pub type Matrix = Vec<(Metric, Vec<(i64, f64)>)>;

/// The label that holds a series' name.
pub const NAME: &str = "__name__";

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Its labels.
    pub metric: Metric,
    /// Its value.
    pub value: f64,
    /// When the sample was taken, in ms (what `timestamp()` answers for a selector).
    pub ts: i64,
}

/// A run of points shared with the cache it was cut from: `data[from..to]`.
#[derive(Debug, Clone)]
pub struct Points {
    data: Arc<[(i64, f64)]>,
    from: usize,
    to: usize,
}

impl Points {
    /// All of `data`.
    pub fn new(data: Arc<[(i64, f64)]>) -> Self {
        let to = data.len();
        Self { data, from: 0, to }
    }

    /// The points in `(after_ms, to_ms]`.
    ///
    /// Windows mostly end at the newest point and start near it or before the oldest, and each
    /// probe into a large store's points is a cache miss: the ends are looked at first, and the
    /// start is searched for backwards from the end.
    pub fn window(&self, after_ms: i64, to_ms: i64) -> Self {
        let all = &self.data[self.from..self.to];
        let to = match all.last() {
            Some(p) if p.0 <= to_ms => all.len(),
            _ => all.partition_point(|p| p.0 <= to_ms),
        };
        let head = &all[..to];
        let from = match head.first() {
            Some(p) if p.0 > after_ms => 0,
            _ => first_after(head, after_ms),
        };
        Self {
            data: Arc::clone(&self.data),
            from: self.from + from,
            to: self.from + to,
        }
    }
}

/// The index of the first point of `points` (oldest first) later than `after_ms`: an exponential
/// search from the newest point.
fn first_after(points: &[(i64, f64)], after_ms: i64) -> usize {
    // Every point from `hi` on is later than `after_ms`.
    let mut hi = points.len();
    let mut step = 1;
    loop {
        let lo = hi.saturating_sub(step);
        if lo == 0 || points[lo].0 <= after_ms {
            return lo + points[lo..hi].partition_point(|p| p.0 <= after_ms);
        }
        hi = lo;
        step *= 2;
    }
}

impl std::ops::Deref for Points {
    type Target = [(i64, f64)];
    fn deref(&self) -> &[(i64, f64)] {
        &self.data[self.from..self.to]
    }
}

/// One element of a range vector: a series and its points in the range, oldest first.
#[derive(Debug, Clone)]
pub struct Series {
    /// Its labels, shared with the selection it was cut from.
    pub metric: Arc<Metric>,
    /// Its points.
    pub points: Points,
}

/// A range vector and the range it covers, `(start_ms, end_ms]` (what `rate` extrapolates to).
#[derive(Debug, Clone)]
pub struct Range {
    /// The series with at least one point in the range.
    pub series: Vec<Series>,
    /// The range's open start, in ms.
    pub start_ms: i64,
    /// The range's end, in ms.
    pub end_ms: i64,
}

/// What an expression evaluates to at one instant.
#[derive(Debug, Clone)]
pub enum Value {
    /// A number.
    Scalar(f64),
    /// A string literal.
    String(String),
    /// An instant vector.
    Vector(Vec<Sample>),
    /// A range vector (only as a function's argument, or a query's whole answer).
    Range(Range),
}

impl Value {
    /// Its PromQL type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Scalar(_) => "scalar",
            Self::String(_) => "string",
            Self::Vector(_) => "vector",
            Self::Range(_) => "matrix",
        }
    }
}

/// `metric` without `__name__`.
pub fn drop_name(mut metric: Metric) -> Metric {
    metric.remove(NAME);
    metric
}

/// A copy of `metric` without `__name__` (rather than a copy, then the name removed).
pub fn without_name(metric: &Metric) -> Metric {
    (metric.iter())
        .filter(|(k, _)| *k != NAME)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Prometheus's text form of a label set, `{a="1", b="2"}`, for error messages.
pub fn describe(metric: &Metric) -> String {
    let pairs: Vec<String> = metric.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

/// A hash of `metric`'s labels: equal label sets hash alike.
pub fn hash_metric(metric: &Metric) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = std::hash::BuildHasherDefault::<std::hash::DefaultHasher>::default().build_hasher();
    for (k, v) in metric {
        k.hash(&mut h);
        v.hash(&mut h);
    }
    h.finish()
}

/// The error for a vector holding two samples with the same labels, if it does.
///
/// The samples are told apart by a hash of their labels; only those whose hashes are equal are
/// compared label by label.
pub fn check_unique(samples: &[Sample]) -> Result<(), String> {
    if samples.len() < 2 {
        return Ok(());
    }
    let mut seen: Vec<(u64, usize)> = (samples.iter().enumerate())
        .map(|(i, s)| (hash_metric(&s.metric), i))
        .collect();
    seen.sort_unstable();
    for run in seen.chunk_by(|a, b| a.0 == b.0).filter(|r| r.len() > 1) {
        for (k, a) in run.iter().enumerate() {
            if (run[k + 1..].iter()).any(|b| samples[a.1].metric == samples[b.1].metric) {
                return Err("vector cannot contain metrics with the same labelset".into());
            }
        }
    }
    Ok(())
}

/// Neumaier's compensated sum step, as Prometheus's `kahanSumInc`: adds `inc` to `sum` with the
/// running compensation `c`.
pub fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Go's `math.Max`: NaN when either is NaN.
pub fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN when either is NaN.
pub fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// Prometheus's `quantile`: `q` of `values` with linear interpolation between the closest ranks;
/// `-Inf` below 0, `+Inf` above 1, NaN for NaN or no values.
pub fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_hold_the_points_in_their_range_wherever_it_falls() {
        // Repeated times too: a window's edges fall on either side of them as on the others.
        let data: Vec<(i64, f64)> = [1, 3, 3, 4, 7, 9, 9, 12, 20, 21]
            .iter()
            .map(|&t| (t, t as f64))
            .collect();
        let all = Points::new(data.clone().into());
        for after in -1..23 {
            for to in -1..23 {
                let want: Vec<(i64, f64)> = (data.iter())
                    .filter(|p| p.0 > after && p.0 <= to)
                    .copied()
                    .collect();
                assert_eq!(&*all.window(after, to), &want[..], "({after}, {to}]");
                // And cut from a window already cut.
                let cut = all.window(2, 20);
                let want: Vec<(i64, f64)> = (want.iter())
                    .filter(|p| p.0 > 2 && p.0 <= 20)
                    .copied()
                    .collect();
                assert_eq!(
                    &*cut.window(after, to),
                    &want[..],
                    "({after}, {to}] of (2, 20]"
                );
            }
        }
        assert!(Points::new(Vec::new().into()).window(0, 10).is_empty());
    }
}
