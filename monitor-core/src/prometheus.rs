//! The Prometheus text exposition format 0.0.4: one writer for every
//! exposition of the workspace (a registry's, the host's).
//!
//! [`Families`] gathers samples by metric family and writes each family's
//! `# HELP` and `# TYPE` once, followed by its samples. Names are sanitised
//! with [`metric_name`] and [`label_name`], label values escaped with
//! [`escape_label_value`], values written with [`format_value`].
//!
//! ```
//! use monitor_core::prometheus::{Families, MetricType};
//!
//! let mut families = Families::new();
//! families.add("jobs_total", MetricType::Counter, "Jobs run.", [("queue", "a\"b")], 3.0);
//! families.add("jobs_total", MetricType::Counter, "Jobs run.", [("queue", "c")], f64::NAN);
//! assert_eq!(
//!     families.to_string(),
//!     "# HELP jobs_total Jobs run.\n# TYPE jobs_total counter\n\
//!      jobs_total{queue=\"a\\\"b\"} 3\njobs_total{queue=\"c\"} NaN\n"
//! );
//! ```

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::io::{self, Write};

use crate::histogram::Histogram;
use crate::snapshot::{FunctionStats, Snapshot};
use crate::trend::Trend;

/// The type of a metric family, as written on its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// A value that only goes up (reset on restart).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Cumulative `_bucket{le=..}` counts with `_sum` and `_count`.
    Histogram,
    /// `{quantile=..}` values with `_sum` and `_count`.
    Summary,
    /// No type given.
    Untyped,
}

impl MetricType {
    /// The lowercase name of the format: `counter`, `gauge`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
        }
    }
}

/// A name as a valid metric name: every character outside `[a-zA-Z0-9_:]`
/// becomes `_` (`system.cpu.usage` is `system_cpu_usage`), and a name that is
/// empty or starts with a digit gets a leading `_`.
pub fn metric_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A name as a valid label name: as [`metric_name`], and `:` becomes `_` too.
pub fn label_name(name: &str) -> String {
    metric_name(name).replace(':', "_")
}

/// Escapes a label value: backslash, double quote and line feed.
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a `# HELP` text: backslash and line feed.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: `NaN`, `+Inf`, `-Inf`, or the shortest decimal that reads
/// back as the same `f64` (integers without a fraction: `3`, not `3.0`).
pub fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{value}")
    }
}

struct Family {
    name: String,
    kind: MetricType,
    help: String,
    /// The family's sample lines, each ending with a line feed.
    samples: String,
}

/// Metric families being gathered, written as one exposition.
///
/// A family's type and help are those of its first declaration or sample.
/// Families are written in the order they were first declared, or sorted by
/// name for [`Families::sorted`].
#[derive(Default)]
pub struct Families {
    families: Vec<Family>,
    index: HashMap<String, usize>,
    sorted: bool,
}

impl fmt::Debug for Families {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Families")
            .field("families", &self.families.len())
            .field("sorted", &self.sorted)
            .finish()
    }
}

impl Families {
    /// No families yet; written in the order they are declared.
    pub fn new() -> Self {
        Self::default()
    }

    /// No families yet; written sorted by name.
    pub fn sorted() -> Self {
        Self {
            sorted: true,
            ..Self::default()
        }
    }

    /// Declares family `name` (written with its `# HELP` and `# TYPE` lines
    /// even without samples); nothing changes if it exists.
    pub fn declare(&mut self, name: &str, kind: MetricType, help: &str) {
        self.family(name, kind, help);
    }

    fn family(&mut self, name: &str, kind: MetricType, help: &str) -> &mut Family {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.families.push(Family {
                    name: name.to_owned(),
                    kind,
                    help: help.to_owned(),
                    samples: String::new(),
                });
                self.index.insert(name.to_owned(), self.families.len() - 1);
                self.families.len() - 1
            }
        };
        &mut self.families[i]
    }

    /// Adds a sample named like its family, `name{labels} value`.
    pub fn add<K, V>(
        &mut self,
        name: &str,
        kind: MetricType,
        help: &str,
        labels: impl IntoIterator<Item = (K, V)>,
        value: f64,
    ) where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        self.add_suffixed(name, kind, help, "", labels, value);
    }

    /// Adds a sample of family `name` named `name` + `suffix` (`_bucket`,
    /// `_sum`, `_count` of histograms and summaries).
    pub fn add_suffixed<K, V>(
        &mut self,
        name: &str,
        kind: MetricType,
        help: &str,
        suffix: &str,
        labels: impl IntoIterator<Item = (K, V)>,
        value: f64,
    ) where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let family = self.family(name, kind, help);
        let out = &mut family.samples;
        out.push_str(name);
        out.push_str(suffix);
        let mut first = true;
        for (key, value) in labels {
            out.push(if first { '{' } else { ',' });
            first = false;
            let _ = write!(
                out,
                "{}=\"{}\"",
                label_name(key.as_ref()),
                escape_label_value(value.as_ref())
            );
        }
        if !first {
            out.push('}');
        }
        out.push(' ');
        out.push_str(&format_value(value));
        out.push('\n');
    }

    /// Writes the exposition.
    ///
    /// # Errors
    /// Whatever `out` returns.
    pub fn write_to<W: Write + ?Sized>(&self, out: &mut W) -> io::Result<()> {
        out.write_all(self.to_string().as_bytes())
    }
}

impl fmt::Display for Families {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut order: Vec<&Family> = self.families.iter().collect();
        if self.sorted {
            order.sort_by(|a, b| a.name.cmp(&b.name));
        }
        for family in order {
            writeln!(f, "# HELP {} {}", family.name, escape_help(&family.help))?;
            writeln!(f, "# TYPE {} {}", family.name, family.kind.as_str())?;
            f.write_str(&family.samples)?;
        }
        Ok(())
    }
}

/// Latency bucket bounds, seconds.
const LATENCY_LE: [f64; 25] = [
    1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3,
    5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Allocation bucket bounds, bytes.
const ALLOC_LE: [f64; 13] = [
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262144.0,
    1048576.0,
    4194304.0,
    16777216.0,
    67108864.0,
    268435456.0,
    1073741824.0,
];

/// Writes the exposition of a registry's snapshot.
pub(crate) fn write<W: Write>(snapshot: &Snapshot, out: &mut W) -> io::Result<()> {
    let mut families = Families::new();
    counters(&mut families, &snapshot.functions);
    latency(&mut families, &snapshot.functions);
    if snapshot.allocator {
        allocations(&mut families, &snapshot.functions);
    }
    windows(&mut families, &snapshot.functions);
    families.write_to(out)
}

/// One gauge or counter family with a sample per function.
fn per_function(
    families: &mut Families,
    functions: &[FunctionStats],
    (name, kind, help): (&str, MetricType, &str),
    value: impl Fn(&FunctionStats) -> f64,
) {
    families.declare(name, kind, help);
    for f in functions {
        families.add(name, kind, help, [("function", &f.name)], value(f));
    }
}

fn counters(families: &mut Families, functions: &[FunctionStats]) {
    use MetricType::{Counter, Gauge};
    let calls = "Completed calls of an instrumented function.";
    per_function(
        families,
        functions,
        ("monitor_function_calls_total", Counter, calls),
        |f| f.calls as f64,
    );
    let failures = "Calls that panicked, returned Err or were failed by hand.";
    let name = "monitor_function_failures_total";
    per_function(families, functions, (name, Counter, failures), |f| {
        f.failures as f64
    });
    let cancelled = "Futures dropped before completion.";
    let name = "monitor_function_cancelled_total";
    per_function(families, functions, (name, Counter, cancelled), |f| {
        f.cancelled as f64
    });
    let ratio = "Successes over calls (1 when never called).";
    let name = "monitor_function_success_ratio";
    per_function(families, functions, (name, Gauge, ratio), |f| {
        f.success_rate
    });
}

fn latency(families: &mut Families, functions: &[FunctionStats]) {
    let name = "monitor_function_duration_seconds";
    let help = "Latency of completed calls.";
    families.declare(name, MetricType::Histogram, help);
    for f in functions {
        let family = (name, help, f.name.as_str());
        histogram(families, family, &f.latency, &LATENCY_LE, 1e-9);
    }
    let name = "monitor_function_latency_seconds";
    let help = "Latency quantiles of completed calls (within 1.6%).";
    let kind = MetricType::Summary;
    families.declare(name, kind, help);
    for f in functions.iter().filter(|f| f.calls > 0) {
        let d = &f.duration_ns;
        for (q, v) in [
            ("0.5", d.p50),
            ("0.9", d.p90),
            ("0.95", d.p95),
            ("0.99", d.p99),
            ("0.999", d.p999),
        ] {
            let labels = [("function", f.name.as_str()), ("quantile", q)];
            families.add(name, kind, help, labels, v as f64 * 1e-9);
        }
        let labels = [("function", &f.name)];
        let sum = f.latency.sum() as f64 * 1e-9;
        families.add_suffixed(name, kind, help, "_sum", labels, sum);
        families.add_suffixed(name, kind, help, "_count", labels, f.calls as f64);
    }
}

fn allocations(families: &mut Families, functions: &[FunctionStats]) {
    let name = "monitor_function_alloc_bytes";
    let help = "Bytes allocated per call, callees included.";
    families.declare(name, MetricType::Histogram, help);
    let empty = Histogram::new();
    for f in functions {
        let h = f.alloc.as_ref().unwrap_or(&empty);
        histogram(families, (name, help, &f.name), h, &ALLOC_LE, 1.0);
    }
}

fn windows(families: &mut Families, functions: &[FunctionStats]) {
    let calls = "Calls in the current hour and the 23 before it.";
    let name = "monitor_function_calls_24h";
    per_function(families, functions, (name, MetricType::Gauge, calls), |f| {
        f.calls_24h as f64
    });
    let trend = "Latency trend: -1 improving, 0 stable, 1 degrading.";
    let name = "monitor_function_trend";
    per_function(
        families,
        functions,
        (name, MetricType::Gauge, trend),
        |f| match f.trend {
            Trend::Improving => -1.0,
            Trend::Stable => 0.0,
            Trend::Degrading => 1.0,
        },
    );
}

/// One function's histogram samples; `bounds` in the exposed unit, `scale`
/// the exposed unit per recorded unit.
fn histogram(
    families: &mut Families,
    (name, help, function): (&str, &str, &str),
    h: &Histogram,
    bounds: &[f64],
    scale: f64,
) {
    let kind = MetricType::Histogram;
    for &le in bounds.iter().chain(&[f64::INFINITY]) {
        let count = if le.is_finite() {
            h.count_at_or_below((le / scale).round() as u64)
        } else {
            h.count()
        };
        let le = format_value(le);
        let labels = [("function", function), ("le", le.as_str())];
        families.add_suffixed(name, kind, help, "_bucket", labels, count as f64);
    }
    let labels = [("function", function)];
    let sum = h.sum() as f64 * scale;
    families.add_suffixed(name, kind, help, "_sum", labels, sum);
    families.add_suffixed(name, kind, help, "_count", labels, h.count() as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_values_and_escapes() {
        assert_eq!(metric_name("system.cpu.usage"), "system_cpu_usage");
        assert_eq!(metric_name("1st"), "_1st");
        assert_eq!(metric_name(""), "_");
        assert_eq!(metric_name("a:b-c"), "a:b_c");
        assert_eq!(label_name("a:b"), "a_b");
        assert_eq!(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(0.25), "0.25");
    }

    #[test]
    fn families_write_help_and_type_once_in_their_order() {
        let mut f = Families::new();
        f.declare("z_empty", MetricType::Gauge, "Nothing yet.");
        f.add("b", MetricType::Counter, "B.", [("k", "1")], 1.0);
        f.add(
            "a",
            MetricType::Gauge,
            "A\nline.",
            Vec::<(&str, &str)>::new(),
            -2.5,
        );
        f.add("b", MetricType::Counter, "ignored", [("k.x", "2")], 2.0);
        let text = f.to_string();
        assert_eq!(
            text,
            "# HELP z_empty Nothing yet.\n# TYPE z_empty gauge\n\
             # HELP b B.\n# TYPE b counter\nb{k=\"1\"} 1\nb{k_x=\"2\"} 2\n\
             # HELP a A\\nline.\n# TYPE a gauge\na -2.5\n"
        );
        let mut sorted = Families::sorted();
        sorted.add("b", MetricType::Gauge, "B.", [("k", "v")], 1.0);
        sorted.add("a", MetricType::Gauge, "A.", [("k", "v")], 1.0);
        assert!(sorted.to_string().starts_with("# HELP a A.\n"));
    }
}
