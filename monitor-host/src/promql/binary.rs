//! Binary operators: arithmetic, comparisons (filtering, or `bool`), `and` / `or` / `unless`,
//! with vector matching (`on`, `ignoring`, `group_left`, `group_right`) as Prometheus's
//! `VectorBinop` and `VectorAnd` / `VectorOr` / `VectorUnless`.

use std::collections::{HashMap, HashSet};

use promql_parser::parser::{BinaryExpr, Expr, LabelModifier, VectorMatchCardinality};

use super::value::{Metric, NAME, Sample, Value, check_unique, describe, drop_name};
use super::{Error, Evaluator, Source};

const ARITHMETIC: &[&str] = &["+", "-", "*", "/", "%", "^", "atan2"];
const COMPARISON: &[&str] = &["==", "!=", ">", "<", ">=", "<="];
const SET: &[&str] = &["and", "or", "unless"];

/// Whether the operator and its modifiers are ones this evaluator implements.
pub(super) fn check(b: &BinaryExpr) -> Result<(), String> {
    let op = b.op.to_string();
    if ![ARITHMETIC, COMPARISON, SET]
        .iter()
        .any(|l| l.contains(&op.as_str()))
    {
        return Err(format!("unsupported PromQL operator {op:?}"));
    }
    if let Some(m) = &b.modifier
        && (m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some())
    {
        return Err("unsupported PromQL feature \"fill\" modifiers".into());
    }
    Ok(())
}

/// `l op r` on numbers: the value, and whether a comparison holds (always true otherwise).
fn apply(op: &str, l: f64, r: f64) -> (f64, bool) {
    match op {
        "+" => (l + r, true),
        "-" => (l - r, true),
        "*" => (l * r, true),
        "/" => (l / r, true),
        // Go's math.Mod, as Prometheus: the sign of the dividend, as Rust's `%`.
        "%" => (l % r, true),
        "^" => (l.powf(r), true),
        "atan2" => (l.atan2(r), true),
        "==" => (l, l == r),
        "!=" => (l, l != r),
        ">" => (l, l > r),
        "<" => (l, l < r),
        ">=" => (l, l >= r),
        "<=" => (l, l <= r),
        _ => (f64::NAN, false),
    }
}

fn drops_name(op: &str) -> bool {
    ARITHMETIC.contains(&op)
}

/// Evaluates `b` at `t`.
pub(super) fn eval<S: Source + ?Sized>(
    ev: &Evaluator<'_, S>,
    b: &BinaryExpr,
    t: i64,
) -> Result<Value, Error> {
    let op = b.op.to_string();
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    if let Some(out) = selector_filter(ev, b, &op, return_bool, t)? {
        check_unique(&out).map_err(Error::Execution)?;
        return Ok(Value::Vector(out));
    }
    let lhs = ev.eval(&b.lhs, t)?;
    let rhs = ev.eval(&b.rhs, t)?;
    let out = match (lhs, rhs) {
        (Value::Scalar(l), Value::Scalar(r)) => {
            let (v, keep) = apply(&op, l, r);
            let comparison = COMPARISON.contains(&op.as_str());
            return Ok(Value::Scalar(if comparison {
                f64::from(u8::from(keep))
            } else {
                v
            }));
        }
        (Value::Vector(v), Value::Scalar(s)) => vector_scalar(&op, v, s, false, return_bool, t),
        (Value::Scalar(s), Value::Vector(v)) => vector_scalar(&op, v, s, true, return_bool, t),
        (Value::Vector(l), Value::Vector(r)) => {
            let (on, names) = matching(b);
            if SET.contains(&op.as_str()) {
                set_operation(&op, l, r, on, &names)
            } else {
                let card = b
                    .modifier
                    .as_ref()
                    .map_or(VectorMatchCardinality::OneToOne, |m| m.card.clone());
                vector_vector(&op, l, r, &Matching { card, on, names }, return_bool, t)?
            }
        }
        (l, r) => {
            return Err(Error::BadData(format!(
                "binary expression must contain only scalar and instant vector types, got {} \
                 and {}",
                l.type_name(),
                r.type_name()
            )));
        }
    };
    check_unique(&out).map_err(Error::Execution)?;
    Ok(Value::Vector(out))
}

/// A selector filtered by a comparison with a number (`up == 0`, `90 < x`), as
/// [`vector_scalar`] answers it, when `b` is one: only the samples kept have their labels copied
/// out of the selection.
fn selector_filter<S: Source + ?Sized>(
    ev: &Evaluator<'_, S>,
    b: &BinaryExpr,
    op: &str,
    return_bool: bool,
    t: i64,
) -> Result<Option<Vec<Sample>>, Error> {
    if return_bool || !COMPARISON.contains(&op) {
        return Ok(None);
    }
    let (vs, n, scalar_left) = match (b.lhs.as_ref(), b.rhs.as_ref()) {
        (Expr::VectorSelector(vs), Expr::NumberLiteral(n)) => (vs, n.val, false),
        (Expr::NumberLiteral(n), Expr::VectorSelector(vs)) => (vs, n.val, true),
        _ => return Ok(None),
    };
    let kept = ev.instant_selector_where(vs, t, |v| {
        let (l, r) = if scalar_left { (n, v) } else { (v, n) };
        apply(op, l, r).1
    })?;
    // A comparison keeps the vector's value and labels, stamped with the evaluation's time.
    Ok(Some(
        kept.into_iter().map(|s| Sample { ts: t, ..s }).collect(),
    ))
}

/// `on(...)` (true) or `ignoring(...)` (false), and the labels named.
fn matching(b: &BinaryExpr) -> (bool, Vec<String>) {
    match b.modifier.as_ref().and_then(|m| m.matching.as_ref()) {
        Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
        Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
        None => (false, Vec::new()),
    }
}

/// The labels two samples are matched by.
fn signature(metric: &Metric, on: bool, names: &[String]) -> Vec<(String, String)> {
    metric
        .iter()
        .filter(|(k, _)| {
            let named = names.iter().any(|n| n == *k);
            if on { named } else { !named && *k != NAME }
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn vector_scalar(
    op: &str,
    v: Vec<Sample>,
    s: f64,
    scalar_left: bool,
    return_bool: bool,
    t: i64,
) -> Vec<Sample> {
    let comparison = COMPARISON.contains(&op);
    v.into_iter()
        .filter_map(|x| {
            let (l, r) = if scalar_left {
                (s, x.value)
            } else {
                (x.value, s)
            };
            let (mut value, mut keep) = apply(op, l, r);
            // A comparison keeps the vector's value, whichever side it is on.
            if comparison && scalar_left {
                value = r;
            }
            if return_bool {
                value = f64::from(u8::from(keep));
                keep = true;
            }
            keep.then(|| Sample {
                metric: if drops_name(op) || return_bool {
                    drop_name(x.metric)
                } else {
                    x.metric
                },
                value,
                ts: t,
            })
        })
        .collect()
}

fn set_operation(
    op: &str,
    l: Vec<Sample>,
    r: Vec<Sample>,
    on: bool,
    names: &[String],
) -> Vec<Sample> {
    let right: HashSet<_> = r.iter().map(|s| signature(&s.metric, on, names)).collect();
    match op {
        "and" => l
            .into_iter()
            .filter(|s| right.contains(&signature(&s.metric, on, names)))
            .collect(),
        "unless" => l
            .into_iter()
            .filter(|s| !right.contains(&signature(&s.metric, on, names)))
            .collect(),
        _ => {
            let left: HashSet<_> = l.iter().map(|s| signature(&s.metric, on, names)).collect();
            let mut out = l;
            out.extend(
                r.into_iter()
                    .filter(|s| !left.contains(&signature(&s.metric, on, names))),
            );
            out
        }
    }
}

struct Matching {
    card: VectorMatchCardinality,
    on: bool,
    names: Vec<String>,
}

/// Arithmetic and comparisons between two vectors, as Prometheus's `VectorBinop`.
fn vector_vector(
    op: &str,
    mut lhs: Vec<Sample>,
    mut rhs: Vec<Sample>,
    m: &Matching,
    return_bool: bool,
    t: i64,
) -> Result<Vec<Sample>, Error> {
    let one_to_many = matches!(m.card, VectorMatchCardinality::OneToMany(_));
    if one_to_many {
        std::mem::swap(&mut lhs, &mut rhs);
    }
    let mut right: HashMap<Vec<(String, String)>, Sample> = HashMap::new();
    for s in rhs {
        let sig = signature(&s.metric, m.on, &m.names);
        if let Some(dup) = right.get(&sig) {
            let side = if one_to_many { "left" } else { "right" };
            let group: Metric = sig.into_iter().collect();
            return Err(Error::Execution(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the \
                 operation: [{}, {}];many-to-many matching not allowed: matching labels must be \
                 unique on one side",
                describe(&group),
                describe(&s.metric),
                describe(&dup.metric)
            )));
        }
        right.insert(sig, s);
    }
    let include: &[String] = m.card.labels().map_or(&[], |l| &l.labels);
    let mut matched: HashMap<Vec<(String, String)>, HashSet<Metric>> = HashMap::new();
    let mut out = Vec::new();
    for ls in lhs {
        let sig = signature(&ls.metric, m.on, &m.names);
        let Some(rs) = right.get(&sig) else {
            continue;
        };
        let (vl, vr) = if one_to_many {
            (rs.value, ls.value)
        } else {
            (ls.value, rs.value)
        };
        let (mut value, keep) = apply(op, vl, vr);
        if return_bool {
            value = f64::from(u8::from(keep));
        } else if !keep {
            continue;
        }
        let mut metric = result_metric(&ls.metric, &rs.metric, op, m, include);
        if return_bool {
            metric.remove(NAME);
        }
        let seen = matched.entry(sig);
        match (&m.card, seen) {
            (VectorMatchCardinality::OneToOne, std::collections::hash_map::Entry::Occupied(_)) => {
                return Err(Error::Execution(
                    "multiple matches for labels: many-to-one matching must be explicit \
                     (group_left/group_right)"
                        .into(),
                ));
            }
            (_, entry) => {
                if !entry.or_default().insert(metric.clone()) {
                    return Err(Error::Execution(
                        "multiple matches for labels: grouping labels must ensure unique matches"
                            .into(),
                    ));
                }
            }
        }
        out.push(Sample {
            metric,
            value,
            ts: t,
        });
    }
    Ok(out)
}

/// The labels of a result: the many side's (the left's for one-to-one), less `__name__` for
/// arithmetic, restricted to the matching labels for one-to-one, plus the `group_x` labels from
/// the one side.
fn result_metric(l: &Metric, r: &Metric, op: &str, m: &Matching, include: &[String]) -> Metric {
    let mut metric = l.clone();
    if drops_name(op) {
        metric.remove(NAME);
    }
    if matches!(m.card, VectorMatchCardinality::OneToOne) {
        if m.on {
            metric.retain(|k, _| m.names.iter().any(|n| n == k));
        } else {
            metric.retain(|k, _| !m.names.iter().any(|n| n == k));
        }
    }
    for name in include {
        match r.get(name) {
            Some(v) if !v.is_empty() => {
                metric.insert(name.clone(), v.clone());
            }
            _ => {
                metric.remove(name);
            }
        }
    }
    metric
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pairs: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            metric: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            value,
            ts: 0,
        }
    }

    fn one_to_one() -> Matching {
        Matching {
            card: VectorMatchCardinality::OneToOne,
            on: false,
            names: Vec::new(),
        }
    }

    #[test]
    fn arithmetic_matches_all_labels_but_the_name_and_drops_it() {
        let l = vec![
            sample(&[(NAME, "a"), ("x", "1")], 2.0),
            sample(&[(NAME, "a"), ("x", "2")], 3.0),
        ];
        let r = vec![sample(&[(NAME, "b"), ("x", "1")], 5.0)];
        let out = vector_vector("*", l, r, &one_to_one(), false, 0).unwrap();
        assert_eq!(out, vec![sample(&[("x", "1")], 10.0)]);
    }

    #[test]
    fn comparisons_filter_and_keep_the_name_unless_bool() {
        let l = vec![
            sample(&[(NAME, "a"), ("x", "1")], 2.0),
            sample(&[(NAME, "a"), ("x", "2")], 3.0),
        ];
        let out = vector_scalar(">", l.clone(), 2.5, false, false, 0);
        assert_eq!(out, vec![sample(&[(NAME, "a"), ("x", "2")], 3.0)]);
        // `2.5 < a` keeps a's values too.
        assert_eq!(vector_scalar("<", l.clone(), 2.5, true, false, 0), out);
        let out = vector_scalar(">", l, 2.5, false, true, 0);
        assert_eq!(
            out,
            vec![sample(&[("x", "1")], 0.0), sample(&[("x", "2")], 1.0)]
        );
    }

    #[test]
    fn many_to_many_and_implicit_many_to_one_are_errors() {
        let many = vec![
            sample(&[("x", "1"), ("y", "a")], 1.0),
            sample(&[("x", "1"), ("y", "b")], 2.0),
        ];
        let on_x = |card| Matching {
            card,
            on: true,
            names: vec!["x".into()],
        };
        let e = vector_vector(
            "+",
            many.clone(),
            many.clone(),
            &on_x(VectorMatchCardinality::OneToOne),
            false,
            0,
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::Execution(m) if m.contains("many-to-many matching not allowed")),
            "{e:?}"
        );
        let one = vec![sample(&[("x", "1")], 10.0)];
        let e = vector_vector(
            "+",
            many.clone(),
            one.clone(),
            &on_x(VectorMatchCardinality::OneToOne),
            false,
            0,
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::Execution(m) if m.contains("group_left/group_right")),
            "{e:?}"
        );
        // group_left: each of the many keeps its labels.
        let card = VectorMatchCardinality::ManyToOne(promql_parser::label::Labels::new(vec![]));
        let out = vector_vector("+", many, one, &on_x(card), false, 0).unwrap();
        assert_eq!(
            out,
            vec![
                sample(&[("x", "1"), ("y", "a")], 11.0),
                sample(&[("x", "1"), ("y", "b")], 12.0)
            ]
        );
    }

    #[test]
    fn set_operators_match_on_labels_without_the_name() {
        let l = vec![
            sample(&[(NAME, "a"), ("x", "1")], 1.0),
            sample(&[(NAME, "a"), ("x", "2")], 2.0),
        ];
        let r = vec![
            sample(&[(NAME, "b"), ("x", "2")], 9.0),
            sample(&[(NAME, "b"), ("x", "3")], 8.0),
        ];
        let and = set_operation("and", l.clone(), r.clone(), false, &[]);
        assert_eq!(and, vec![l[1].clone()]);
        let unless = set_operation("unless", l.clone(), r.clone(), false, &[]);
        assert_eq!(unless, vec![l[0].clone()]);
        let or = set_operation("or", l.clone(), r.clone(), false, &[]);
        assert_eq!(or, vec![l[0].clone(), l[1].clone(), r[1].clone()]);
    }
}
