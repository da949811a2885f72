//! The `query` and `match[]` parameters: a PromQL series selector, parsed with `promql-parser`.

use std::collections::BTreeMap;

use monitor_core::prometheus::label_name;
use monitor_plugin::{Labels, SampleKind};
use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{self, Expr};

use crate::render::family_name;

/// A series as the API shows it: `__name__` and labels, by name.
pub type Metric = BTreeMap<String, String>;

/// A stored series' name and labels as the API shows and matches them, the same as `/metrics`
/// and remote write: `__name__` is [`family_name`] (`system.cpu.usage` is `system_cpu_usage`, a
/// counter gets `_total`), label names are valid Prometheus names, and empty values are left out
/// (Prometheus treats an empty label as no label).
pub fn metric(name: &str, labels: &Labels, kind: SampleKind) -> Metric {
    let mut out: Metric = labels
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (label_name(k), v.clone()))
        .collect();
    out.insert("__name__".to_owned(), family_name(name, kind));
    out
}

/// A vector selector: `name{label="v", other=~"re.*"}`. Regexes are fully anchored, as in
/// Prometheus.
#[derive(Debug, Clone)]
pub struct Selector {
    matchers: Vec<Matcher>,
}

impl Selector {
    /// Parses `query`.
    ///
    /// # Errors
    ///
    /// `query` is not valid PromQL, or is PromQL this API does not evaluate yet (anything but a
    /// vector selector: functions, operators, range selectors, `offset`, `@`...); the message
    /// says which.
    pub fn parse(query: &str) -> Result<Self, String> {
        let expr = parser::parse(query).map_err(|e| format!("invalid parameter \"query\": {e}"))?;
        let mut expr = &expr;
        while let Expr::Paren(p) = expr {
            expr = &p.expr;
        }
        let Expr::VectorSelector(vs) = expr else {
            return Err(format!(
                "{} not supported yet: only a series selector such as \
                 name{{label=\"value\"}} is evaluated",
                what(expr)
            ));
        };
        if vs.offset.is_some() || vs.at.is_some() {
            return Err("the offset and @ modifiers are not supported yet: \
                        use a plain series selector and the time parameters"
                .into());
        }
        if !vs.matchers.or_matchers.is_empty() {
            return Err("`or` between label matchers is not supported: \
                        ask one selector per match[] parameter instead"
                .into());
        }
        let mut matchers = vs.matchers.matchers.clone();
        if let Some(name) = &vs.name {
            matchers.push(Matcher::new(MatchOp::Equal, "__name__", name));
        }
        Ok(Self { matchers })
    }

    /// Whether `metric` is selected; a label it lacks counts as empty, as in Prometheus.
    pub fn matches(&self, metric: &Metric) -> bool {
        self.matchers
            .iter()
            .all(|m| m.is_match(metric.get(&m.name).map_or("", String::as_str)))
    }
}

/// The value of `query` when it is arithmetic on numbers alone (`1+1`: the query a Grafana data
/// source's "Save & test" sends), else `None`.
pub fn constant(query: &str) -> Option<f64> {
    fn eval(expr: &Expr) -> Option<f64> {
        match expr {
            Expr::NumberLiteral(n) => Some(n.val),
            Expr::Paren(p) => eval(&p.expr),
            Expr::Unary(u) => Some(-eval(&u.expr)?),
            Expr::Binary(b) => {
                let (l, r) = (eval(&b.lhs)?, eval(&b.rhs)?);
                match b.op.to_string().as_str() {
                    "+" => Some(l + r),
                    "-" => Some(l - r),
                    "*" => Some(l * r),
                    "/" => Some(l / r),
                    // Go's math.Mod, as Prometheus: the sign of the dividend.
                    "%" => Some(l % r),
                    "^" => Some(l.powf(r)),
                    _ => None,
                }
            }
            _ => None,
        }
    }
    eval(&parser::parse(query).ok()?)
}

/// What kind of expression `expr` is, for the error message.
fn what(expr: &Expr) -> String {
    match expr {
        Expr::Aggregate(a) => format!("aggregation `{}`", a.op),
        Expr::Unary(_) => "unary minus".into(),
        Expr::Binary(b) => format!("binary operator `{}`", b.op),
        Expr::Subquery(_) => "subquery".into(),
        Expr::NumberLiteral(_) => "number literal".into(),
        Expr::StringLiteral(_) => "string literal".into(),
        Expr::MatrixSelector(_) => "range selector".into(),
        Expr::Call(c) => format!("function `{}`", c.func.name),
        _ => "this expression".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, &str)]) -> Metric {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_api_name_is_the_metrics_name() {
        let labels = Labels::from([
            ("cpu.core".to_owned(), "0".to_owned()),
            ("empty".to_owned(), String::new()),
        ]);
        assert_eq!(
            metric("system.cpu.usage", &labels, SampleKind::Gauge),
            m(&[("__name__", "system_cpu_usage"), ("cpu_core", "0")])
        );
        assert_eq!(
            metric("http.requests", &Labels::new(), SampleKind::Counter)["__name__"],
            "http_requests_total"
        );
    }

    #[test]
    fn all_four_matchers_with_anchored_regexes() {
        let cpu = m(&[("__name__", "system_cpu_usage"), ("core", "10")]);
        let mem = m(&[("__name__", "system_memory_used"), ("core", "1")]);
        let cases = [
            ("system_cpu_usage", true, false),
            (r#"{__name__=~"system_.*"}"#, true, true),
            (r#"{__name__=~"system"}"#, false, false), // anchored: no partial match
            (r#"{__name__=~"system_.*", core="1"}"#, false, true),
            (r#"{__name__=~"system_.*", core!="1"}"#, true, false),
            (r#"{__name__=~"system_.*", core=~"1"}"#, false, true),
            (r#"{__name__=~"system_.*", core!~"1.+"}"#, false, true),
            (r#"system_cpu_usage{missing=""}"#, true, false), // absent is empty
            (r#"(system_cpu_usage{core="10"})"#, true, false),
        ];
        for (q, want_cpu, want_mem) in cases {
            let s = Selector::parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
            assert_eq!(
                (s.matches(&cpu), s.matches(&mem)),
                (want_cpu, want_mem),
                "{q}"
            );
        }
    }

    #[test]
    fn arithmetic_on_numbers_is_a_constant() {
        assert_eq!(constant("1+1"), Some(2.0));
        assert_eq!(constant("-(2 * 3) ^ 2 % 5"), Some(-1.0));
        assert_eq!(constant("1 == bool 1"), None);
        assert_eq!(constant("x + 1"), None);
        assert_eq!(constant("x"), None);
    }

    #[test]
    fn anything_but_a_selector_is_refused_by_name() {
        for (q, says) in [
            ("rate(x[5m])", "function `rate`"),
            ("sum(x)", "aggregation `sum`"),
            ("x + 1", "binary operator `+`"),
            ("x[5m]", "range selector"),
            ("1", "number literal"),
            ("x offset 5m", "offset"),
            ("x @ 100", "@"),
            ("x{", "invalid parameter \"query\""),
        ] {
            let e = Selector::parse(q).unwrap_err();
            assert!(e.contains(says), "{q}: {e}");
        }
    }
}
