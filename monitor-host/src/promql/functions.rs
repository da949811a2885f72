//! Functions: over range vectors (`rate`, `*_over_time`, ...) and over instant vectors (`abs`,
//! `histogram_quantile`, `label_replace`, ...), each as Prometheus's `promql/functions.go`.

use promql_parser::label::MatchOp;
use promql_parser::parser::{Call, Expr};

use super::value::{
    Metric, NAME, Range, Sample, Value, check_unique, drop_name, go_max, go_min, kahan_inc,
    quantile, without_name,
};
use super::{Error, Evaluator, Source};

/// Every function the evaluator implements; any other is refused by name.
pub const SUPPORTED_FUNCTIONS: &[&str] = &[
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "predict_linear",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "quantile_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "last_over_time",
    "present_over_time",
    "absent",
    "absent_over_time",
    "changes",
    "resets",
    "histogram_quantile",
    "abs",
    "ceil",
    "floor",
    "round",
    "sqrt",
    "exp",
    "ln",
    "log2",
    "log10",
    "clamp",
    "clamp_min",
    "clamp_max",
    "time",
    "timestamp",
    "vector",
    "scalar",
    "label_replace",
    "label_join",
    "sort",
    "sort_desc",
];

/// Evaluates `call` at `t`.
pub(super) fn call<S: Source + ?Sized>(
    ev: &Evaluator<'_, S>,
    call: &Call,
    t: i64,
) -> Result<Value, Error> {
    let args: Vec<&Expr> = call.args.args.iter().map(|a| &**a).collect();
    let name = call.func.name;
    let out = match name {
        "time" => return Ok(Value::Scalar(t as f64 / 1000.0)),
        "vector" => {
            return Ok(Value::Vector(vec![Sample {
                metric: Metric::new(),
                value: ev.scalar(args[0], t)?,
                ts: t,
            }]));
        }
        "scalar" => {
            let v = ev.vector(args[0], t)?;
            return Ok(Value::Scalar(if v.len() == 1 {
                v[0].value
            } else {
                f64::NAN
            }));
        }
        "absent" => absent(&ev.vector(args[0], t)?, args[0], t),
        "absent_over_time" => {
            if ev.matrix(args[0], t)?.series.is_empty() {
                absent(&[], args[0], t)
            } else {
                Vec::new()
            }
        }
        "timestamp" => timestamp(ev, args[0], t)?,
        "histogram_quantile" => {
            histogram_quantile(ev.scalar(args[0], t)?, ev.vector(args[1], t)?, t)
        }
        "label_replace" => label_replace(ev, &args, t)?,
        "label_join" => label_join(ev, &args, t)?,
        "sort" | "sort_desc" => {
            let mut v = ev.vector(args[0], t)?;
            sort(&mut v, name == "sort_desc");
            return Ok(Value::Vector(v));
        }
        "predict_linear" => {
            let r = ev.matrix(args[0], t)?;
            let by = ev.scalar(args[1], t)?;
            over_range(&r, t, true, |p, _| {
                (p.len() >= 2).then(|| {
                    let (slope, intercept) = linear_regression(p, t);
                    intercept + slope * by
                })
            })
        }
        "quantile_over_time" => {
            let q = ev.scalar(args[0], t)?;
            let r = ev.matrix(args[1], t)?;
            over_range(&r, t, true, |p, _| {
                Some(quantile(q, &mut p.iter().map(|x| x.1).collect::<Vec<_>>()))
            })
        }
        "anomaly_score" | "forecast" | "forecast_seasonal" => {
            super::extension::call(ev, name, &args, t)?
        }
        _ if args.len() == 1 && is_range_function(name) => {
            let r = ev.matrix(args[0], t)?;
            range_function(name, &r, t)
        }
        _ => instant_function(ev, name, &args, t)?,
    };
    check_unique(&out).map_err(Error::Execution)?;
    Ok(Value::Vector(out))
}

fn is_range_function(name: &str) -> bool {
    matches!(
        name,
        "rate"
            | "irate"
            | "increase"
            | "delta"
            | "idelta"
            | "deriv"
            | "avg_over_time"
            | "min_over_time"
            | "max_over_time"
            | "sum_over_time"
            | "count_over_time"
            | "stddev_over_time"
            | "stdvar_over_time"
            | "last_over_time"
            | "present_over_time"
            | "changes"
            | "resets"
    )
}

/// One sample per series of `r` for which `f` (given the points and the range) has a value;
/// `__name__` dropped unless `keep_name`.
fn over_range(
    r: &Range,
    t: i64,
    drop: bool,
    f: impl Fn(&[(i64, f64)], &Range) -> Option<f64>,
) -> Vec<Sample> {
    r.series
        .iter()
        .filter_map(|s| {
            f(&s.points, r).map(|value| Sample {
                metric: if drop {
                    without_name(&s.metric)
                } else {
                    Metric::clone(&s.metric)
                },
                value,
                ts: t,
            })
        })
        .collect()
}

fn range_function(name: &str, r: &Range, t: i64) -> Vec<Sample> {
    let keep_name = name == "last_over_time";
    over_range(r, t, !keep_name, |p, r| {
        let values = || p.iter().map(|x| x.1);
        match name {
            "rate" => extrapolated_rate(p, r.start_ms, r.end_ms, true, true),
            "increase" => extrapolated_rate(p, r.start_ms, r.end_ms, true, false),
            "delta" => extrapolated_rate(p, r.start_ms, r.end_ms, false, false),
            "irate" => instant_value(p, true),
            "idelta" => instant_value(p, false),
            "deriv" => (p.len() >= 2).then(|| linear_regression(p, p[0].0).0),
            "avg_over_time" => Some(avg(values())),
            "min_over_time" => {
                Some(values().fold(p[0].1, |m, v| if v < m || m.is_nan() { v } else { m }))
            }
            "max_over_time" => {
                Some(values().fold(p[0].1, |m, v| if v > m || m.is_nan() { v } else { m }))
            }
            "sum_over_time" => Some(sum(values())),
            "count_over_time" => Some(p.len() as f64),
            "stddev_over_time" => Some(variance(values()).sqrt()),
            "stdvar_over_time" => Some(variance(values())),
            "last_over_time" => p.last().map(|x| x.1),
            "present_over_time" => Some(1.0),
            "changes" => Some(
                p.windows(2)
                    .filter(|w| w[0].1 != w[1].1 && !(w[0].1.is_nan() && w[1].1.is_nan()))
                    .count() as f64,
            ),
            "resets" => Some(p.windows(2).filter(|w| w[1].1 < w[0].1).count() as f64),
            _ => None,
        }
    })
}

/// A compensated sum, as `sum_over_time`.
pub(super) fn sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut c) = (0.0, 0.0);
    for v in values {
        (s, c) = kahan_inc(v, s, c);
    }
    if s.is_infinite() { s } else { s + c }
}

/// The mean as `avg_over_time`: a compensated sum divided by the count, turning to an
/// incremental mean if the sum overflows.
pub(super) fn avg(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let (mut s, mut c, mut n) = (0.0, 0.0, 0.0);
    for v in values.clone() {
        n += 1.0;
        (s, c) = kahan_inc(v, s, c);
    }
    if !s.is_infinite() {
        return (s + c) / n;
    }
    let (mut mean, mut cm, mut count) = (0.0_f64, 0.0, 0.0);
    for v in values {
        count += 1.0;
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        (mean, cm) = kahan_inc(v / count - mean / count, mean, cm);
    }
    if mean.is_infinite() { mean } else { mean + cm }
}

/// The population variance, as `stdvar_over_time` (Welford, compensated).
pub(super) fn variance(values: impl Iterator<Item = f64>) -> f64 {
    let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for v in values {
        count += 1.0;
        let delta = v - (mean + cmean);
        (mean, cmean) = kahan_inc(delta / count, mean, cmean);
        (aux, caux) = kahan_inc(delta * (v - (mean + cmean)), aux, caux);
    }
    (aux + caux) / count
}

/// Prometheus's `extrapolatedRate`: the increase (with counter resets when `counter`) between
/// the first and last points, extrapolated towards the range's edges `(start, end]` when the
/// points come close to them (within 1.1 average intervals; else by half an interval), never
/// extrapolating a counter below zero; per second when `per_second`. `None` under two points.
pub(super) fn extrapolated_rate(
    p: &[(i64, f64)],
    start: i64,
    end: i64,
    counter: bool,
    per_second: bool,
) -> Option<f64> {
    if p.len() < 2 {
        return None;
    }
    let (first, last) = (p[0], p[p.len() - 1]);
    let mut result = last.1 - first.1;
    if counter {
        let mut previous = first.1;
        for &(_, v) in &p[1..] {
            if v < previous {
                result += previous;
            }
            previous = v;
        }
    }
    let mut to_start = (first.0 - start) as f64 / 1000.0;
    let mut to_end = (end - last.0) as f64 / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let average = sampled / (p.len() - 1) as f64;
    let threshold = average * 1.1;
    if to_start >= threshold {
        to_start = average / 2.0;
    }
    if counter && result > 0.0 && first.1 >= 0.0 {
        // A counter is never below zero: extrapolate at most to where it would have been zero.
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = average / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if per_second {
        factor /= (end - start) as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate` (`per_second`) and `idelta`: from the last two points.
fn instant_value(p: &[(i64, f64)], per_second: bool) -> Option<f64> {
    let [.., previous, last] = p else {
        return None;
    };
    let mut result = if per_second && last.1 < previous.1 {
        last.1
    } else {
        last.1 - previous.1
    };
    let interval = last.0 - previous.0;
    if interval == 0 {
        return None;
    }
    if per_second {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// Least-squares slope (per second) and intercept at `intercept_ms`, as Prometheus's
/// `linearRegression`.
pub(super) fn linear_regression(p: &[(i64, f64)], intercept_ms: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sxy, mut cxy, mut sx2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    let init = p[0].1;
    let mut constant = true;
    for (i, &(ts, v)) in p.iter().enumerate() {
        if constant && i > 0 && v != init {
            constant = false;
        }
        n += 1.0;
        let x = (ts - intercept_ms) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(v, sy, cy);
        (sxy, cxy) = kahan_inc(x * v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if constant {
        if init.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

/// `absent` and `absent_over_time`: nothing when `v` has samples, else one sample of 1 labelled
/// with the selector's equality matchers.
fn absent(v: &[Sample], arg: &Expr, t: i64) -> Vec<Sample> {
    if !v.is_empty() {
        return Vec::new();
    }
    let matchers = match arg {
        Expr::VectorSelector(vs) => &vs.matchers.matchers,
        Expr::MatrixSelector(ms) => &ms.vs.matchers.matchers,
        _ => {
            return vec![Sample {
                metric: Metric::new(),
                value: 1.0,
                ts: t,
            }];
        }
    };
    let mut metric = Metric::new();
    let mut ambiguous = Vec::new();
    for m in matchers.iter().filter(|m| m.name != NAME) {
        if matches!(m.op, MatchOp::Equal) && !metric.contains_key(&m.name) {
            if !m.value.is_empty() {
                metric.insert(m.name.clone(), m.value.clone());
            }
        } else {
            ambiguous.push(&m.name);
        }
    }
    for name in ambiguous {
        metric.remove(name);
    }
    vec![Sample {
        metric,
        value: 1.0,
        ts: t,
    }]
}

/// `timestamp(v)`: the time of each sample, in seconds (the sample's own time for a selector).
fn timestamp<S: Source + ?Sized>(
    ev: &Evaluator<'_, S>,
    arg: &Expr,
    t: i64,
) -> Result<Vec<Sample>, Error> {
    let mut inner = arg;
    while let Expr::Paren(p) = inner {
        inner = &p.expr;
    }
    let samples = match inner {
        Expr::VectorSelector(vs) => ev.instant_selector(vs, t)?,
        _ => ev
            .vector(arg, t)?
            .into_iter()
            .map(|s| Sample { ts: t, ..s })
            .collect(),
    };
    Ok(samples
        .into_iter()
        .map(|s| Sample {
            metric: drop_name(s.metric),
            value: s.ts as f64 / 1000.0,
            ts: t,
        })
        .collect())
}

/// Sorts by value, ascending or descending, NaN first as Prometheus's heaps order them.
fn sort(v: &mut [Sample], descending: bool) {
    v.sort_by(|a, b| match (a.value.is_nan(), b.value.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ if descending => b.value.total_cmp(&a.value),
        _ => a.value.total_cmp(&b.value),
    });
}

/// The functions of an instant vector and scalars: math, `clamp*`, `round`.
fn instant_function<S: Source + ?Sized>(
    ev: &Evaluator<'_, S>,
    name: &str,
    args: &[&Expr],
    t: i64,
) -> Result<Vec<Sample>, Error> {
    let v = ev.vector(args[0], t)?;
    let scalar = |i: usize| -> Result<Option<f64>, Error> {
        args.get(i).map(|a| ev.scalar(a, t)).transpose()
    };
    let f: Box<dyn Fn(f64) -> f64> = match name {
        "abs" => Box::new(f64::abs),
        "ceil" => Box::new(f64::ceil),
        "floor" => Box::new(f64::floor),
        "sqrt" => Box::new(f64::sqrt),
        "exp" => Box::new(f64::exp),
        "ln" => Box::new(f64::ln),
        "log2" => Box::new(f64::log2),
        "log10" => Box::new(f64::log10),
        "round" => {
            let inverse = 1.0 / scalar(1)?.unwrap_or(1.0);
            Box::new(move |x: f64| (x * inverse + 0.5).floor() / inverse)
        }
        "clamp" => {
            let (min, max) = (
                scalar(1)?.unwrap_or(f64::NAN),
                scalar(2)?.unwrap_or(f64::NAN),
            );
            if max < min {
                return Ok(Vec::new());
            }
            Box::new(move |x| go_max(min, go_min(max, x)))
        }
        "clamp_min" => {
            let min = scalar(1)?.unwrap_or(f64::NAN);
            Box::new(move |x| go_max(min, x))
        }
        "clamp_max" => {
            let max = scalar(1)?.unwrap_or(f64::NAN);
            Box::new(move |x| go_min(max, x))
        }
        other => {
            return Err(Error::BadData(format!(
                "unsupported PromQL function {other:?}"
            )));
        }
    };
    Ok(v.into_iter()
        .map(|s| Sample {
            metric: drop_name(s.metric),
            value: f(s.value),
            ts: t,
        })
        .collect())
}

fn string_arg<S: Source + ?Sized>(
    ev: &Evaluator<'_, S>,
    arg: &Expr,
    t: i64,
) -> Result<String, Error> {
    match ev.eval(arg, t)? {
        Value::String(s) => Ok(s),
        other => Err(Error::Execution(format!(
            "expected a string, got {}",
            other.type_name()
        ))),
    }
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `label_replace(v, dst, replacement, src, regex)`.
fn label_replace<S: Source + ?Sized>(
    ev: &Evaluator<'_, S>,
    args: &[&Expr],
    t: i64,
) -> Result<Vec<Sample>, Error> {
    let v = ev.vector(args[0], t)?;
    let dst = string_arg(ev, args[1], t)?;
    let replacement = string_arg(ev, args[2], t)?;
    let src = string_arg(ev, args[3], t)?;
    let pattern = string_arg(ev, args[4], t)?;
    let regex = regex::Regex::new(&format!("^(?s:{pattern})$")).map_err(|e| {
        Error::BadData(format!(
            "invalid regular expression in label_replace(): {e}"
        ))
    })?;
    if !valid_label_name(&dst) {
        return Err(Error::BadData(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    Ok(v.into_iter()
        .map(|mut s| {
            let value = s.metric.get(&src).map_or("", String::as_str);
            if let Some(caps) = regex.captures(value) {
                let mut out = String::new();
                caps.expand(&replacement, &mut out);
                set_label(&mut s.metric, &dst, out);
            }
            Sample { ts: t, ..s }
        })
        .collect())
}

/// `label_join(v, dst, separator, src...)`.
fn label_join<S: Source + ?Sized>(
    ev: &Evaluator<'_, S>,
    args: &[&Expr],
    t: i64,
) -> Result<Vec<Sample>, Error> {
    let v = ev.vector(args[0], t)?;
    let dst = string_arg(ev, args[1], t)?;
    let separator = string_arg(ev, args[2], t)?;
    let sources: Vec<String> = args[3..]
        .iter()
        .map(|a| string_arg(ev, a, t))
        .collect::<Result<_, _>>()?;
    if !valid_label_name(&dst) {
        return Err(Error::BadData(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    Ok(v.into_iter()
        .map(|mut s| {
            let joined: Vec<&str> = sources
                .iter()
                .map(|l| s.metric.get(l).map_or("", String::as_str))
                .collect();
            let joined = joined.join(&separator);
            set_label(&mut s.metric, &dst, joined);
            Sample { ts: t, ..s }
        })
        .collect())
}

fn set_label(metric: &mut Metric, name: &str, value: String) {
    if value.is_empty() {
        metric.remove(name);
    } else {
        metric.insert(name.to_owned(), value);
    }
}

/// `histogram_quantile(q, buckets)` over classic buckets: the series of each label set (without
/// `le` and `__name__`) are one histogram.
fn histogram_quantile(q: f64, v: Vec<Sample>, t: i64) -> Vec<Sample> {
    let mut groups: std::collections::BTreeMap<Metric, Vec<(f64, f64)>> =
        std::collections::BTreeMap::new();
    for s in v {
        let Some(upper) = s.metric.get("le").and_then(|le| parse_go_float(le)) else {
            continue;
        };
        let mut metric = drop_name(s.metric);
        metric.remove("le");
        groups.entry(metric).or_default().push((upper, s.value));
    }
    groups
        .into_iter()
        .map(|(metric, mut buckets)| Sample {
            metric,
            value: bucket_quantile(q, &mut buckets),
            ts: t,
        })
        .collect()
}

/// Go's `strconv.ParseFloat` for the forms a `le` label takes (`+Inf`, `0.5`, `1e3`).
fn parse_go_float(text: &str) -> Option<f64> {
    match text.to_ascii_lowercase().as_str() {
        "+inf" | "inf" | "+infinity" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

/// Prometheus's `bucketQuantile` over `(upper bound, cumulative count)` pairs.
pub(super) fn bucket_quantile(q: f64, buckets: &mut Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    // Buckets with the same bound are one.
    buckets.dedup_by(|b, a| {
        if a.0 == b.0 {
            a.1 += b.1;
            true
        } else {
            false
        }
    });
    // Counts are cumulative: never let one fall below the one before.
    let mut max = f64::NEG_INFINITY;
    for b in buckets.iter_mut() {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = buckets[..buckets.len() - 1].partition_point(|b| b.1 < rank);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, buckets[b].1);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn rate_extrapolates_to_the_range_edges_when_points_come_close() {
        // Points every 10 s from 5 s to 55 s in (0, 60]: 5 s to each edge, under 1.1 intervals.
        let p: Vec<(i64, f64)> = (0..6)
            .map(|i| (5_000 + i * 10_000, 100.0 + i as f64 * 10.0))
            .collect();
        let increase = extrapolated_rate(&p, 0, 60_000, true, false).unwrap();
        assert!(close(increase, 50.0 * 60.0 / 50.0), "{increase}");
        let rate = extrapolated_rate(&p, 0, 60_000, true, true).unwrap();
        assert!(close(rate, 1.0), "{rate}");
    }

    #[test]
    fn rate_extrapolates_half_an_interval_when_points_stop_short() {
        // Points from 30 s to 50 s in (0, 60]: 30 s to the start (over 1.1 x 10 s), so half an
        // interval (5 s) on that side; 10 s to the end, under 11 s, so all of it.
        let p = [(30_000, 100.0), (40_000, 110.0), (50_000, 120.0)];
        let delta = extrapolated_rate(&p, 0, 60_000, false, false).unwrap();
        assert!(close(delta, 20.0 * (20.0 + 5.0 + 10.0) / 20.0), "{delta}");
    }

    #[test]
    fn counters_are_not_extrapolated_below_zero() {
        // Starts at 1 and grows 10 per 10 s: zero was 1 s before the first point, not 5.
        let p = [(5_000, 1.0), (15_000, 11.0), (25_000, 21.0)];
        let increase = extrapolated_rate(&p, 0, 25_000, true, false).unwrap();
        assert!(close(increase, 20.0 * (20.0 + 1.0) / 20.0), "{increase}");
        // delta is no counter: extrapolated the full 5 s.
        let delta = extrapolated_rate(&p, 0, 25_000, false, false).unwrap();
        assert!(close(delta, 20.0 * 25.0 / 20.0), "{delta}");
    }

    #[test]
    fn counter_resets_add_the_value_before_the_reset() {
        let p = [(10_000, 5.0), (20_000, 8.0), (30_000, 2.0), (40_000, 4.0)];
        let increase = extrapolated_rate(&p, 10_000, 40_000, true, false).unwrap();
        // 4 - 5 + 8 (the reset), no extrapolation: the points sit on the edges.
        assert!(close(increase, 7.0), "{increase}");
        assert!(extrapolated_rate(&p[..1], 0, 40_000, true, true).is_none());
        assert_eq!(instant_value(&p, true), Some(2.0 / 10.0));
        assert_eq!(instant_value(&p[..3], true), Some(2.0 / 10.0)); // reset: the last value
        assert_eq!(instant_value(&p[..3], false), Some(-6.0));
    }

    #[test]
    fn classic_histogram_quantiles() {
        let mut b = vec![(0.1, 10.0), (0.5, 30.0), (f64::INFINITY, 40.0), (1.0, 35.0)];
        // rank 20 falls in (0.1, 0.5]: 10 of its 20.
        assert!(close(bucket_quantile(0.5, &mut b), 0.3));
        // rank 39.6: in the +Inf bucket, answered by the largest finite bound.
        assert_eq!(bucket_quantile(0.99, &mut b.clone()), 1.0);
        assert!(bucket_quantile(0.5, &mut vec![(1.0, 3.0)]).is_nan());
        assert_eq!(bucket_quantile(-1.0, &mut b.clone()), f64::NEG_INFINITY);
        // A count below its predecessor is raised to it.
        let mut bumpy = vec![(1.0, 10.0), (2.0, 8.0), (f64::INFINITY, 10.0)];
        assert_eq!(bucket_quantile(1.0, &mut bumpy), 1.0);
    }

    #[test]
    fn regression_and_variance() {
        let p = [(0, 1.0), (1_000, 3.0), (2_000, 5.0)];
        let (slope, intercept) = linear_regression(&p, 2_000);
        assert!(close(slope, 2.0) && close(intercept, 5.0));
        assert_eq!(linear_regression(&[(0, 4.0), (1_000, 4.0)], 0), (0.0, 4.0));
        assert!(close(variance([1.0, 2.0, 3.0, 4.0].into_iter()), 1.25));
        assert!(close(avg([1.0, 2.0, 4.0].into_iter()), 7.0 / 3.0));
        assert_eq!(avg([f64::MAX, f64::MAX].into_iter()), f64::MAX);
    }
}
