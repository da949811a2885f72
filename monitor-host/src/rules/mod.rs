//! Alerting and recording rules in PromQL: the typed model of Prometheus rule files
//! (`[host] rule_files`) and of the config's `[[alert]]` tables, checked at load.
//!
//! A rule file is a Prometheus rule file as it is: `groups`, each with a `name`, an optional
//! `interval` and `limit`, and `rules`, each either an alerting rule (`alert`, `expr`, `for`,
//! `keep_firing_for`, `labels`, `annotations`) or a recording rule (`record`, `expr`, `labels`).
//! Every problem is reported as `file:line:column: ...`, all at once, as for the TOML config:
//! YAML syntax, unknown keys, wrong types, expressions that do not parse (with the parser's
//! message), an alerting rule whose expression is not an instant vector, invalid label, annotation
//! and metric names, durations that do not parse, repeated group names, rules repeated with the
//! same name and labels, and templates outside the supported subset ([`template`]).
//!
//! The config's `[[alert]]`s come in two forms, both made [`AlertingRule`]s: the expression form
//! (`expr = "rate(x[5m]) > 5"`) and the simple form (`metric`, `condition`, `threshold`), whose
//! expression is [`simple_expr`].

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{self, Expr};

use crate::config::{AlertRule, Condition, ConfigError, Location};

mod file;
pub mod template;

pub use file::parse_rule_file;
pub use template::{Template, TemplateData, TemplateError};

/// A checked PromQL expression and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleExpr {
    /// The expression as written.
    pub text: String,
    /// What `promql-parser` made of it.
    pub parsed: Expr,
    /// Where the expression's value is.
    pub at: Location,
}

/// An alerting rule: `alert` in a rule file, or a config `[[alert]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertingRule {
    /// `alert`: the alert's name.
    pub name: String,
    /// `expr`: an instant vector; every series it returns is an active alert.
    pub expr: RuleExpr,
    /// `for`: how long an alert stays pending before it fires (zero: fires at once).
    pub for_: Duration,
    /// `keep_firing_for`: how long an alert keeps firing after its expression stops returning it.
    pub keep_firing_for: Duration,
    /// `labels`: added to (or replacing) the series' labels; the values are templates.
    pub labels: BTreeMap<String, Template>,
    /// `annotations`: templates rendered for notifications.
    pub annotations: BTreeMap<String, Template>,
    /// Where the rule starts.
    pub at: Location,
}

/// A recording rule: `record` in a rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingRule {
    /// `record`: the metric name the result is stored under.
    pub name: String,
    /// `expr`: an instant vector or a scalar.
    pub expr: RuleExpr,
    /// `labels`: added to (or replacing) the result's labels; not templates.
    pub labels: BTreeMap<String, String>,
    /// Where the rule starts.
    pub at: Location,
}

/// One rule of a group.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// `alert: ...`
    Alerting(AlertingRule),
    /// `record: ...`
    Recording(RecordingRule),
}

impl Rule {
    /// The alert's or the recorded metric's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Alerting(r) => &r.name,
            Self::Recording(r) => &r.name,
        }
    }

    /// The rule's expression.
    pub fn expr(&self) -> &RuleExpr {
        match self {
            Self::Alerting(r) => &r.expr,
            Self::Recording(r) => &r.expr,
        }
    }

    /// Where the rule starts.
    pub fn at(&self) -> &Location {
        match self {
            Self::Alerting(r) => &r.at,
            Self::Recording(r) => &r.at,
        }
    }
}

/// A group of a rule file: its rules are evaluated in order, every `interval`.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroup {
    /// `name`, unique in its file.
    pub name: String,
    /// The file, as messages name it.
    pub file: String,
    /// `interval`; `None` (absent or zero) is the host's `interval`.
    pub interval: Option<Duration>,
    /// `limit`: most alerts (or series) one rule may produce; 0 is no limit.
    pub limit: u64,
    /// `rules`, in file order.
    pub rules: Vec<Rule>,
    /// Where the group starts.
    pub at: Location,
}

/// Every rule the config names: its `[[alert]]`s and the groups of its `rule_files`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleSet {
    /// The config's `[[alert]]`s of both forms, in file order.
    pub alerts: Vec<AlertingRule>,
    /// The groups of the files `rule_files` matches: pattern by pattern, files in name order,
    /// groups in file order.
    pub groups: Vec<RuleGroup>,
}

impl RuleSet {
    /// Rules in rule files (the config's `[[alert]]`s not counted).
    pub fn file_rules(&self) -> usize {
        self.groups.iter().map(|g| g.rules.len()).sum()
    }
}

/// Which kind of rule an expression belongs to: they accept different result types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExprUse {
    /// An alerting rule: an instant vector.
    Alerting,
    /// A recording rule: an instant vector or a scalar.
    Recording,
}

/// Parses and checks a rule's expression: it must parse, have the type its rule needs, and pass
/// [`supported`].
///
/// # Errors
///
/// The parser's message, or what is wrong with the result type, lowercase.
pub fn check_expr(text: &str, at: Location, usage: ExprUse) -> Result<RuleExpr, String> {
    crate::promql::register_extensions();
    let parsed = parser::parse(text).map_err(|e| format!("could not parse expression: {e}"))?;
    let ty = parsed.value_type();
    let ok = match usage {
        ExprUse::Alerting => ty == ValueType::Vector,
        ExprUse::Recording => matches!(ty, ValueType::Vector | ValueType::Scalar),
    };
    if !ok {
        let needs = match usage {
            ExprUse::Alerting => "an alerting rule's expression must be an instant vector",
            ExprUse::Recording => {
                "a recording rule's expression must be an instant vector or a scalar"
            }
        };
        let hint = if ty == ValueType::Scalar {
            "; write `vector(...)` to make a vector of a scalar"
        } else {
            ""
        };
        return Err(format!("{needs}, not a {}{hint}", type_name(ty)));
    }
    supported(&parsed)?;
    Ok(RuleExpr {
        text: text.to_owned(),
        parsed,
        at,
    })
}

fn type_name(ty: ValueType) -> &'static str {
    match ty {
        ValueType::Vector => "instant vector",
        ValueType::Scalar => "scalar",
        ValueType::Matrix => "range vector",
        ValueType::String => "string",
    }
}

/// Whether the evaluator supports every function, operator and modifier of `expr`; called on
/// every rule expression at load, after it parsed: what [`crate::promql::validate`] refuses.
///
/// # Errors
///
/// What is not supported, by name.
pub fn supported(expr: &Expr) -> Result<(), String> {
    crate::promql::validate(expr)
}

/// How far back from the evaluation time `expr` reads samples: the longest range plus offset of
/// its range selectors, offsets of its instant selectors, and subqueries' ranges and offsets
/// added to those of what they contain. `@` modifiers are not counted.
pub fn lookback(expr: &Expr) -> Duration {
    reach(expr, Duration::ZERO)
}

/// As [`lookback`], with `instant` added to every instant selector's offset: what an instant
/// selector reads before its time (Prometheus's lookback delta), so the result is how old the
/// oldest sample `expr` may read is.
pub fn reach(expr: &Expr, instant: Duration) -> Duration {
    use promql_parser::parser::Offset;
    let offset = |o: Option<&Offset>| match o {
        Some(Offset::Pos(d)) => *d,
        _ => Duration::ZERO,
    };
    let reach = |e: &Expr| reach(e, instant);
    match expr {
        Expr::Aggregate(a) => {
            let p = a.param.as_deref().map_or(Duration::ZERO, reach);
            reach(&a.expr).max(p)
        }
        Expr::Unary(u) => reach(&u.expr),
        Expr::Binary(b) => reach(&b.lhs).max(reach(&b.rhs)),
        Expr::Paren(p) => reach(&p.expr),
        Expr::Subquery(s) => s.range + offset(s.offset.as_ref()) + reach(&s.expr),
        Expr::VectorSelector(vs) => offset(vs.offset.as_ref()) + instant,
        Expr::MatrixSelector(ms) => ms.range + offset(ms.vs.offset.as_ref()),
        Expr::Call(c) => (c.args.args.iter())
            .map(|a| reach(a))
            .max()
            .unwrap_or_default(),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Duration::ZERO,
    }
}

/// Refuses the host's extension functions (`anomaly_score`, `forecast`, `forecast_seasonal`) in a
/// rule file: Prometheus (and `promtool`) refuse them, and a rule file is meant to load in both.
///
/// # Errors
///
/// The first extension function, by name, and where it may be used instead.
pub fn no_extensions(expr: &Expr) -> Result<(), String> {
    let inner: Vec<&Expr> = match expr {
        Expr::Call(c) => {
            if crate::promql::EXTENSION_FUNCTIONS.contains(&c.func.name) {
                return Err(format!(
                    "function \"{}\" is an extension of this host that Prometheus refuses: use it \
                     in an `[[alert]]` of the config (`expr = \"...\"`), not in a rule file",
                    c.func.name
                ));
            }
            c.args.args.iter().map(|a| &**a).collect()
        }
        Expr::Aggregate(a) => std::iter::once(&*a.expr)
            .chain(a.param.as_deref())
            .collect(),
        Expr::Unary(u) => vec![&*u.expr],
        Expr::Binary(b) => vec![&*b.lhs, &*b.rhs],
        Expr::Paren(p) => vec![&*p.expr],
        Expr::Subquery(s) => vec![&*s.expr],
        _ => Vec::new(),
    };
    inner.into_iter().try_for_each(no_extensions)
}

/// The series a simple `[[alert]]` watches, as PromQL: its metric's name as `/metrics` shows it
/// and its label matchers. A counter is exposed as `NAME_total`, so a name that does not end in
/// `_total` selects both `NAME` and `NAME_total`: `system.cpu.usage` with `labels = { cpu = "0" }`
/// is `{__name__=~"system_cpu_usage(_total)?", cpu="0"}`.
pub fn simple_selector(rule: &AlertRule) -> String {
    use monitor_core::prometheus::{escape_label_value, label_name, metric_name};
    let name = metric_name(&rule.metric);
    let mut matchers: Vec<String> = Vec::new();
    let mut out = String::new();
    if name.ends_with("_total") {
        out.push_str(&name);
    } else {
        matchers.push(format!("__name__=~\"{name}(_total)?\""));
    }
    matchers.extend(
        (rule.labels.iter())
            .map(|(k, v)| format!("{}=\"{}\"", label_name(k), escape_label_value(v))),
    );
    if !matchers.is_empty() {
        out.push('{');
        out.push_str(&matchers.join(", "));
        out.push('}');
    }
    out
}

/// The PromQL expression equivalent to a simple `[[alert]]` (`metric`, `condition`,
/// `threshold`, `labels`): [`simple_selector`] compared with the threshold, so
/// `system.cpu.usage` above 80 with `labels = { cpu = "0" }` is
/// `{__name__=~"system_cpu_usage(_total)?", cpu="0"} > 80.0`.
///
/// The metric and label names are those of `/metrics` (dots and other characters outside
/// `[a-zA-Z0-9_:]` become `_`). `equals` and `not_equals` become `==` and `!=`, which compare
/// exactly, where the simple form allows a relative difference of one `f64::EPSILON`: the alert
/// engine evaluates the selector with PromQL and applies the simple form's condition to each
/// sample, so a simple rule keeps its own comparison and its instances the series' own labels.
///
/// The analytics conditions use the extension functions (see [`crate::promql`]) and are evaluated
/// as expressions: `condition = "anomaly"` is `abs(anomaly_score(m[1h])) > 4.0` (the `window` and
/// the z `threshold`), with `season = "1d"` `abs(anomaly_score(m[4d], 86400.0)) > 4.0`;
/// `forecast_above` is `forecast(m[1h], 14400.0) > threshold` (the `window` and the `horizon` in
/// seconds), `forecast_below` the same with `<`.
pub fn simple_expr(rule: &AlertRule) -> String {
    let out = simple_selector(rule);
    let op = match rule.condition {
        Condition::Above => ">",
        Condition::Below => "<",
        Condition::Equals => "==",
        Condition::NotEquals => "!=",
        Condition::Anomaly { window, season } => {
            let season = season.map_or_else(String::new, |s| format!(", {:?}", s.as_secs_f64()));
            return format!(
                "abs(anomaly_score({out}[{}]{season})) > {:?}",
                promql_duration(window),
                rule.threshold
            );
        }
        Condition::ForecastAbove { window, horizon }
        | Condition::ForecastBelow { window, horizon } => {
            let op = if matches!(rule.condition, Condition::ForecastAbove { .. }) {
                ">"
            } else {
                "<"
            };
            return format!(
                "forecast({out}[{}], {:?}) {op} {:?}",
                promql_duration(window),
                horizon.as_secs_f64(),
                rule.threshold
            );
        }
    };
    // `{:?}` of an f64 always reads back exactly and is valid PromQL (`80.0`, `1e-7`).
    format!("{out} {op} {:?}", rule.threshold)
}

/// `d` as a PromQL duration in its largest whole unit: `4d`, `1h`, `90s`, `1500ms`.
fn promql_duration(d: Duration) -> String {
    let ms = d.as_millis();
    [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
    ]
    .into_iter()
    .find(|(unit, _)| ms.is_multiple_of(*unit))
    .map_or_else(
        || format!("{ms}ms"),
        |(unit, name)| format!("{}{name}", ms / unit),
    )
}

/// Loads every rule file the `rule_files` patterns match; each pattern is a glob, relative to
/// `base` (the config's directory). A pattern without glob characters must name a file; a glob
/// that matches nothing is no error, as in Prometheus.
///
/// # Errors
///
/// Every problem of every file, with its position; a bad pattern at `at` of that pattern.
pub fn load_rule_files(
    patterns: &[(String, Location)],
    base: &Path,
) -> Result<Vec<RuleGroup>, Vec<ConfigError>> {
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (pattern, at) in patterns {
        let files = match matching_files(pattern, base) {
            Ok(f) => f,
            Err(message) => {
                errors.push(ConfigError {
                    location: at.clone(),
                    message: format!("`rule_files`: {message}"),
                });
                continue;
            }
        };
        for path in files {
            if !seen.insert(path.clone()) {
                continue;
            }
            match file::load_rule_file(&path) {
                Ok(g) => groups.extend(g),
                Err(e) => errors.extend(e),
            }
        }
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

fn matching_files(pattern: &str, base: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    let joined = base.join(pattern);
    if !pattern.contains(['*', '?', '[']) {
        return if joined.is_file() {
            Ok(vec![joined])
        } else {
            Err(format!("no rule file `{}`", joined.display()))
        };
    }
    // The directory is taken literally: only the pattern's own characters are glob syntax.
    let full = if Path::new(pattern).is_absolute() {
        pattern.to_owned()
    } else {
        let base = glob::Pattern::escape(&base.to_string_lossy());
        format!("{}/{pattern}", base.trim_end_matches('/'))
    };
    let paths = glob::glob(&full).map_err(|e| format!("`{pattern}` is not a valid glob: {e}"))?;
    let mut files: Vec<_> = paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// A Prometheus duration: a sequence of whole numbers with units `ms`, `s`, `m`, `h`, `d`, `w`,
/// `y` (365 days), largest first, each at most once (`1h30m`, `90s`, `2w`), or `0`.
///
/// # Errors
///
/// `text` is not such a duration (a negative one included).
pub fn parse_prometheus_duration(text: &str) -> Result<Duration, String> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let invalid = || format!("not a valid duration string: \"{text}\"");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut ms: u64 = 0;
    let mut last_unit = 0;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        // `ms` before `m`: the longest unit that matches.
        let (i, (unit, scale)) = UNITS
            .iter()
            .enumerate()
            .filter(|(_, (u, _))| rest.starts_with(u))
            .max_by_key(|(_, (u, _))| u.len())
            .ok_or_else(invalid)?;
        if i < last_unit {
            return Err(invalid());
        }
        last_unit = i + 1;
        ms = n
            .checked_mul(*scale)
            .and_then(|v| ms.checked_add(v))
            .ok_or_else(invalid)?;
        rest = &rest[unit.len()..];
    }
    Ok(Duration::from_millis(ms))
}

/// A label name as Prometheus checks it in rule files: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use monitor_plugin::Severity;

    use super::*;

    fn simple(
        metric: &str,
        condition: Condition,
        threshold: f64,
        labels: &[(&str, &str)],
    ) -> AlertRule {
        AlertRule {
            name: "a".into(),
            metric: metric.into(),
            condition,
            threshold,
            for_: Duration::ZERO,
            severity: Severity::Warning,
            description: String::new(),
            labels: (labels.iter())
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn a_simple_rule_is_the_metrics_name_compared_with_the_threshold() {
        let cases = [
            (
                simple("system.cpu.usage", Condition::Above, 80.0, &[]),
                r#"{__name__=~"system_cpu_usage(_total)?"} > 80.0"#,
            ),
            (
                simple("process.up", Condition::Below, 1.0, &[]),
                r#"{__name__=~"process_up(_total)?"} < 1.0"#,
            ),
            (
                simple("q.depth", Condition::Equals, -2.5, &[]),
                r#"{__name__=~"q_depth(_total)?"} == -2.5"#,
            ),
            (
                simple("requests_total", Condition::NotEquals, 1e-7, &[]),
                "requests_total != 1e-7",
            ),
            (
                simple(
                    "disk.used",
                    Condition::Above,
                    0.9,
                    &[("mount.point", "/"), ("dev", "a\"b")],
                ),
                r#"{__name__=~"disk_used(_total)?", dev="a\"b", mount_point="/"} > 0.9"#,
            ),
        ];
        for (rule, expected) in cases {
            let text = simple_expr(&rule);
            assert_eq!(text, expected);
            // It is valid PromQL, and an instant vector.
            check_expr(&text, Location::default(), ExprUse::Alerting).unwrap();
        }
    }

    #[test]
    fn an_expression_must_parse_and_have_the_rules_type() {
        let at = Location::default;
        assert!(check_expr("rate(x[5m]) > 5", at(), ExprUse::Alerting).is_ok());
        let e = check_expr("rate(x[5m]", at(), ExprUse::Alerting).unwrap_err();
        assert!(e.starts_with("could not parse expression: "), "{e}");
        let e = check_expr("1 + 1", at(), ExprUse::Alerting).unwrap_err();
        assert!(e.contains("must be an instant vector, not a scalar"), "{e}");
        assert!(e.contains("vector(...)"), "{e}");
        let e = check_expr("up[5m]", at(), ExprUse::Alerting).unwrap_err();
        assert!(e.contains("not a range vector"), "{e}");
        let e = check_expr("\"text\"", at(), ExprUse::Recording).unwrap_err();
        assert!(e.contains("not a string"), "{e}");
        assert!(check_expr("scalar(up)", at(), ExprUse::Recording).is_ok());
    }

    #[test]
    fn what_the_evaluator_does_not_support_is_refused_by_name() {
        let at = Location::default;
        let e = check_expr("sgn(x) > 0", at(), ExprUse::Alerting).unwrap_err();
        assert_eq!(e, "unsupported PromQL function \"sgn\"");
        let e = check_expr("max_over_time(deg(x)[5m:]) > 0", at(), ExprUse::Alerting).unwrap_err();
        assert!(e.contains("\"deg\""), "{e}");
        assert!(check_expr("rate(x[5m]) > 0", at(), ExprUse::Alerting).is_ok());
    }

    #[test]
    fn lookback_adds_ranges_offsets_and_subqueries() {
        let l = |t: &str| lookback(&parser::parse(t).unwrap()).as_secs();
        assert_eq!(l("x"), 0);
        assert_eq!(l("x offset 1m"), 60);
        assert_eq!(l("rate(x[5m]) / avg_over_time(y[1h] offset 10m)"), 4200);
        assert_eq!(l("max_over_time(rate(x[5m])[30m:1m] offset 5m)"), 2400);
        let r = |t: &str| reach(&parser::parse(t).unwrap(), Duration::from_secs(300)).as_secs();
        assert_eq!(r("x"), 300);
        assert_eq!(r("x offset 1m"), 360);
        assert_eq!(r("avg_over_time(y[1h])"), 3600);
        assert_eq!(r("max_over_time(x[30m:1m])"), 2100);
    }

    #[test]
    fn prometheus_durations() {
        let ms = |t: &str| parse_prometheus_duration(t).map(|d| d.as_millis());
        assert_eq!(ms("0"), Ok(0));
        assert_eq!(ms("5m"), Ok(300_000));
        assert_eq!(ms("1h30m"), Ok(5_400_000));
        assert_eq!(ms("1d"), Ok(86_400_000));
        assert_eq!(ms("2w"), Ok(14 * 86_400_000));
        assert_eq!(ms("1y"), Ok(365 * 86_400_000));
        assert_eq!(ms("1s500ms"), Ok(1500));
        for bad in ["", "-5m", "5", "1x", "30m1h", "5m5m", "1.5h", " 5m", "5m "] {
            let e = parse_prometheus_duration(bad).unwrap_err();
            assert_eq!(e, format!("not a valid duration string: \"{bad}\""));
        }
    }

    #[test]
    fn names() {
        assert!(is_label_name("severity") && is_label_name("_x1"));
        assert!(!is_label_name("bad-name") && !is_label_name("1x") && !is_label_name(""));
        assert!(is_metric_name("job:http:rate5m") && !is_metric_name("a b"));
    }

    fn errors(text: &str) -> Vec<String> {
        match parse_rule_file(text, "r.yml") {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_rule_file_loads_into_the_model_with_positions() {
        let groups = parse_rule_file(
            "groups:\n  - name: g\n    interval: 1m\n    limit: 5\n    rules:\n      - alert: A\n        expr: up == 0\n        for: 5m\n        keep_firing_for: 1m\n        labels:\n          severity: page\n        annotations:\n          summary: \"{{ $labels.job }} down\"\n      - record: job:up:sum\n        expr: sum by (job) (up)\n        labels:\n          kind: x\n",
            "r.yml",
        )
        .unwrap();
        assert_eq!(groups.len(), 1);
        let g = &groups[0];
        assert_eq!(
            (g.name.as_str(), g.interval, g.limit),
            ("g", Some(Duration::from_secs(60)), 5)
        );
        assert_eq!((g.at.line, g.at.column), (2, 5));
        let Rule::Alerting(a) = &g.rules[0] else {
            panic!("an alerting rule")
        };
        assert_eq!(a.name, "A");
        assert_eq!(a.expr.text, "up == 0");
        assert_eq!((a.expr.at.line, a.expr.at.column), (7, 15));
        assert_eq!(a.for_, Duration::from_secs(300));
        assert_eq!(a.keep_firing_for, Duration::from_secs(60));
        assert_eq!(a.labels["severity"].source(), "page");
        assert_eq!(a.annotations["summary"].source(), "{{ $labels.job }} down");
        assert_eq!(
            (a.at.file.as_str(), a.at.line, a.at.column),
            ("r.yml", 6, 9)
        );
        let Rule::Recording(r) = &g.rules[1] else {
            panic!("a recording rule")
        };
        assert_eq!(
            (r.name.as_str(), r.labels["kind"].as_str()),
            ("job:up:sum", "x")
        );
        assert_eq!(g.rules[1].at().line, 14);
    }

    #[test]
    fn an_empty_file_has_no_groups() {
        assert_eq!(parse_rule_file("", "r.yml").unwrap(), Vec::new());
        assert_eq!(parse_rule_file("groups:\n", "r.yml").unwrap(), Vec::new());
    }

    #[test]
    fn every_problem_of_a_file_is_reported_at_once_with_its_position() {
        let e = errors(
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: rate(x[5m]\n        for: soon\n        labels:\n          bad-name: x\n        annotations:\n          s: \"ok {{ nope }}\"\n      - record: a b\n        expr: up\n        for: 1m\n      - alert: B\n        expr: up\n        bogus: 1\n",
        );
        let expected = [
            "r.yml:5:15: group \"g\", rule 1, \"A\": could not parse expression: ",
            "r.yml:6:14: group \"g\", rule 1, \"A\": `for`: not a valid duration string: \"soon\"",
            "r.yml:8:11: group \"g\", rule 1, \"A\": invalid label name: bad-name",
            // At the action, in the value.
            "r.yml:10:18: group \"g\", rule 1, \"A\": annotation \"s\": template: `nope` is not supported",
            "r.yml:11:17: group \"g\", rule 2, \"a b\": invalid recording rule name: a b",
            "r.yml:13:9: group \"g\", rule 2, \"a b\": invalid field 'for' in recording rule",
            "r.yml:16:9: rule: unknown field `bogus`",
        ];
        assert_eq!(e.len(), expected.len(), "{e:#?}");
        for (got, want) in e.iter().zip(expected) {
            assert!(got.starts_with(want), "{got}\n  expected {want}");
        }
    }

    #[test]
    fn extension_functions_are_refused_in_rule_files_as_promtool_refuses_them() {
        for (expr, name) in [
            ("sum(abs(anomaly_score(x[1h]))) > 4", "anomaly_score"),
            ("forecast(x[1h], 3600) > 1 and on() vector(1)", "forecast"),
            (
                "max_over_time(forecast_seasonal(x[1w], 60, 86400)[5m:])",
                "forecast_seasonal",
            ),
        ] {
            let e = errors(&format!(
                "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: {expr}\n"
            ));
            let want = format!(
                "r.yml:5:15: group \"g\", rule 1, \"r\": function \"{name}\" is an extension of \
                 this host that Prometheus refuses"
            );
            assert!(e.len() == 1 && e[0].starts_with(&want), "{expr}: {e:?}");
        }
        // In the config, they are fine.
        let at = Location::default();
        assert!(check_expr("abs(anomaly_score(x[1h])) > 4", at, ExprUse::Alerting).is_ok());
    }

    #[test]
    fn an_unsupported_function_is_refused_at_its_file_and_line() {
        let e = errors(
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sgn(x) > 0\n",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("r.yml:5:15: group \"g\", rule 1, \"A\": ")
                && e[0].ends_with("unsupported PromQL function \"sgn\""),
            "{e:?}"
        );
    }

    #[test]
    fn a_template_error_points_at_its_action_when_the_value_is_the_files_own_text() {
        let file = |value: &str| {
            format!(
                "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        annotations:\n          s: {value}\n"
            )
        };
        let at = |value: &str| {
            let e = errors(&file(value));
            assert_eq!(e.len(), 1, "{e:?}");
            e[0].split(": ").next().unwrap().to_owned()
        };
        assert_eq!(at("ok {{ nope }}"), "r.yml:7:17");
        assert_eq!(at("'ok {{ nope }}'"), "r.yml:7:18");
        // An escape before the action: the value's start.
        assert_eq!(at("\"\\t {{ nope }}\""), "r.yml:7:14");
        // A block scalar: the start of its text.
        assert_eq!(at("|\n            ok {{ nope }}"), "r.yml:8:13");
    }

    #[test]
    fn yaml_errors_and_wrong_shapes_are_located() {
        let e = errors("groups:\n  - name: g\n    rules: [\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("r.yml:4:1: yaml: "), "{e:?}");
        let e = errors("groups:\n  - name: g\n    name: h\n");
        assert!(e[0].starts_with("r.yml:3:5: yaml: duplicated key"), "{e:?}");
        let e = errors("groups: 5\n");
        assert_eq!(e, ["r.yml:1:9: `groups` must be a list"]);
        let e = errors("rules: []\n");
        assert!(
            e[0].starts_with("r.yml:1:1: rule file: unknown field `rules`"),
            "{e:?}"
        );
        let e = errors("groups:\n  - rules: []\n");
        assert_eq!(e, ["r.yml:2:5: group: missing field `name`"]);
        let e = errors("groups:\n  - name: g\n    limit: -1\n");
        assert_eq!(e, ["r.yml:3:12: `limit` must be a whole number, 0 or more"]);
        let e = errors("groups: []\n---\ngroups: []\n");
        assert!(e[0].contains("one YAML document"), "{e:?}");
    }

    #[test]
    fn same_name_with_other_labels_is_allowed_but_not_the_same_labels() {
        let rules = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        labels: {severity: warning}\n      - alert: A\n        expr: up == 0\n        labels: {severity: critical}\n";
        assert_eq!(errors(rules), Vec::<String>::new());
        let e = errors(&format!(
            "{rules}  - name: h\n    rules:\n      - alert: A\n        expr: up\n        labels: {{severity: critical}}\n"
        ));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("r.yml:12:9: group \"h\", rule 1, \"A\": duplicate rule: same name and labels as the rule at line 7"),
            "{e:?}"
        );
    }

    #[test]
    fn a_missing_rule_file_and_a_bad_glob_are_reported_at_the_pattern() {
        let at = Location {
            file: "monitor.toml".into(),
            line: 3,
            column: 15,
        };
        let dir = std::env::temp_dir();
        let e = load_rule_files(&[("no-such-rules.yml".into(), at.clone())], &dir).unwrap_err();
        assert!(
            e[0].to_string()
                .starts_with("monitor.toml:3:15: `rule_files`: no rule file"),
            "{e:?}"
        );
        let e = load_rule_files(&[("[".into(), at.clone())], &dir).unwrap_err();
        assert!(e[0].message.contains("not a valid glob"), "{e:?}");
        // The config's directory is no glob, whatever its name.
        let odd = dir.join(format!("monitor-rules-[{}]", std::process::id()));
        std::fs::create_dir_all(&odd).unwrap();
        std::fs::write(odd.join("a.yml"), "groups:\n  - name: g\n    rules: []\n").unwrap();
        let found = load_rule_files(&[("*.yml".into(), at.clone())], &odd);
        let _ = std::fs::remove_dir_all(&odd);
        assert_eq!(found.unwrap().len(), 1);
        // A glob that matches nothing is no error, as in Prometheus.
        assert_eq!(
            load_rule_files(&[("no-such-*.yml".into(), at)], &dir).unwrap(),
            Vec::new()
        );
    }
}
