//! Aggregations: `sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`, `stdvar`, `quantile`,
//! `topk`, `bottomk`, `count_values`, with `by` / `without`.

use std::collections::HashMap;

use monitor_core::prometheus::format_value;
use promql_parser::parser::{AggregateExpr, LabelModifier};

use super::functions::{avg, sum, variance};
use super::value::{Metric, NAME, Sample, Value, quantile};
use super::{Error, Evaluator, Source};

const SUPPORTED: &[&str] = &[
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "group",
    "stddev",
    "stdvar",
    "quantile",
    "topk",
    "bottomk",
    "count_values",
];

/// Whether the aggregation is one this evaluator implements.
pub(super) fn check(a: &AggregateExpr) -> Result<(), String> {
    let op = a.op.to_string();
    if SUPPORTED.contains(&op.as_str()) {
        Ok(())
    } else {
        Err(format!("unsupported PromQL aggregation {op:?}"))
    }
}

/// The labels of `metric` that the grouping keeps.
fn group_key(metric: &Metric, modifier: Option<&LabelModifier>) -> Metric {
    match modifier {
        None => Metric::new(),
        Some(LabelModifier::Include(by)) => metric
            .iter()
            .filter(|(k, _)| by.labels.iter().any(|l| l == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Some(LabelModifier::Exclude(without)) => metric
            .iter()
            .filter(|(k, _)| *k != NAME && !without.labels.iter().any(|l| l == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// Evaluates the aggregation `a` at `t`.
pub(super) fn eval<S: Source + ?Sized>(
    ev: &Evaluator<'_, S>,
    a: &AggregateExpr,
    t: i64,
) -> Result<Value, Error> {
    let op = a.op.to_string();
    let input = ev.vector(&a.expr, t)?;
    let param = a.param.as_deref().map(|p| ev.eval(p, t)).transpose()?;
    let number = || match &param {
        Some(Value::Scalar(v)) => Ok(*v),
        _ => Err(Error::Execution(format!(
            "{op}: expected a scalar parameter"
        ))),
    };
    // Groups in the order they first appear, as Prometheus answers them.
    let mut index: HashMap<Metric, usize> = HashMap::new();
    let mut groups: Vec<(Metric, Vec<Sample>)> = Vec::new();
    for s in input {
        let key = group_key(&s.metric, a.modifier.as_ref());
        let i = match index.get(&key) {
            Some(&i) => i,
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, Vec::new()));
                groups.len() - 1
            }
        };
        groups[i].1.push(s);
    }
    let mut out = Vec::new();
    match op.as_str() {
        "topk" | "bottomk" => {
            let k = number()?;
            if k < 1.0 {
                return Ok(Value::Vector(Vec::new()));
            }
            for (_, mut members) in groups {
                top(&mut members, op == "topk");
                members.truncate(k.min(members.len() as f64) as usize);
                out.extend(members.into_iter().map(|s| Sample { ts: t, ..s }));
            }
        }
        "count_values" => {
            let Some(Value::String(label)) = &param else {
                return Err(Error::Execution("count_values: expected a string".into()));
            };
            if label.is_empty()
                || label.starts_with(|c: char| c.is_ascii_digit())
                || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(Error::Execution(format!("invalid label name {label:?}")));
            }
            for (key, members) in groups {
                let mut counts: Vec<(String, f64)> = Vec::new();
                for s in members {
                    let value = format_value(s.value);
                    match counts.iter_mut().find(|(v, _)| *v == value) {
                        Some(c) => c.1 += 1.0,
                        None => counts.push((value, 1.0)),
                    }
                }
                for (value, count) in counts {
                    let mut metric = key.clone();
                    metric.insert(label.clone(), value);
                    out.push(Sample {
                        metric,
                        value: count,
                        ts: t,
                    });
                }
            }
        }
        _ => {
            let q = if op == "quantile" { number()? } else { 0.0 };
            for (metric, members) in groups {
                let values = members.iter().map(|s| s.value);
                let value = reduce(&op, values, q);
                out.push(Sample {
                    metric,
                    value,
                    ts: t,
                });
            }
        }
    }
    Ok(Value::Vector(out))
}

/// One group's value for the aggregations that reduce it to a number.
fn reduce(op: &str, values: impl Iterator<Item = f64> + Clone, q: f64) -> f64 {
    let first = values.clone().next().unwrap_or(f64::NAN);
    match op {
        "sum" => sum(values),
        "avg" => avg(values),
        "count" => values.count() as f64,
        "group" => 1.0,
        "min" => values.fold(first, |m, v| if m > v || m.is_nan() { v } else { m }),
        "max" => values.fold(first, |m, v| if m < v || m.is_nan() { v } else { m }),
        "stdvar" => welford(values),
        "stddev" => welford(values).sqrt(),
        "quantile" => quantile(q, &mut values.collect::<Vec<_>>()),
        _ => variance(values),
    }
}

/// The population variance as the `stdvar` aggregation computes it.
fn welford(values: impl Iterator<Item = f64>) -> f64 {
    let (mut n, mut mean, mut m2) = (0.0, 0.0, 0.0);
    for v in values {
        n += 1.0;
        let delta = v - mean;
        mean += delta / n;
        m2 += delta * (v - mean);
    }
    m2 / n
}

/// Orders a group best first: largest first for `topk`, smallest for `bottomk`; NaN last.
fn top(members: &mut [Sample], largest: bool) {
    members.sort_by(|a, b| match (a.value.is_nan(), b.value.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ if largest => b.value.total_cmp(&a.value),
        _ => a.value.total_cmp(&b.value),
    });
}
