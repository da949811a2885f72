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
/// every rule expression at load, after it parsed.
///
/// # Errors
///
/// What is not supported, by name.
// The evaluator's check plugs in here. Until it does, nothing beyond what `promql-parser`
// refuses is refused.
pub fn supported(expr: &Expr) -> Result<(), String> {
    let _ = expr;
    Ok(())
}

/// The PromQL expression equivalent to a simple `[[alert]]` (`metric`, `condition`,
/// `threshold`, `labels`): `system.cpu.usage` above 80 with `labels = { cpu = "0" }` is
/// `system_cpu_usage{cpu="0"} > 80`.
///
/// The metric and label names are those of `/metrics` (dots and other characters outside
/// `[a-zA-Z0-9_:]` become `_`). `equals` and `not_equals` become `==` and `!=`, which compare
/// exactly, where the simple form allows a relative difference of one `f64::EPSILON`. A counter
/// is exposed as `NAME_total`: a simple rule on a counter selects the plain name, as it always has.
pub fn simple_expr(rule: &AlertRule) -> String {
    use monitor_core::prometheus::{escape_label_value, label_name, metric_name};
    let mut out = metric_name(&rule.metric);
    if !rule.labels.is_empty() {
        let matchers: Vec<String> = (rule.labels.iter())
            .map(|(k, v)| format!("{}=\"{}\"", label_name(k), escape_label_value(v)))
            .collect();
        out.push('{');
        out.push_str(&matchers.join(", "));
        out.push('}');
    }
    let op = match rule.condition {
        Condition::Above => ">",
        Condition::Below => "<",
        Condition::Equals => "==",
        Condition::NotEquals => "!=",
    };
    // `{:?}` of an f64 always reads back exactly and is valid PromQL (`80.0`, `1e-7`).
    format!("{out} {op} {:?}", rule.threshold)
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
    let full = joined.to_string_lossy();
    if !pattern.contains(['*', '?', '[']) {
        return if joined.is_file() {
            Ok(vec![joined])
        } else {
            Err(format!("no rule file `{}`", joined.display()))
        };
    }
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
