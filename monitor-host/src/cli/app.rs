//! `app report|export|dashboard`: an instrumented application's figures, from its exposition
//! (`monitor_core::exposition`) or from a JSON snapshot file it exported.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use monitor_core::prometheus::{Families, MetricType};
use serde::{Deserialize, Serialize};

use super::format::{nanos, sparkline, table, utc};
use super::report::Format;
use super::top::{self, Model, Pane};
use super::{Client, Output};

/// What to do with the application's figures.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// The report: the slowest and the most called functions, and the warnings.
    Report(ReportArgs),
    /// The snapshot JSON or the Prometheus text exposition.
    Export(ExportArgs),
    /// A live terminal view of the application's functions.
    Dashboard(DashboardArgs),
}

/// Where the figures come from.
#[derive(Debug, Clone, Args)]
pub struct Source {
    /// The application's exposition, e.g. http://127.0.0.1:9465.
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "file",
        required_unless_present = "file"
    )]
    url: Option<String>,
    /// A snapshot JSON file the application exported.
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
}

/// `app report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    source: Source,
    /// How many functions in the slowest and most-called sections.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Human tables or JSON.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
}

/// `app export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    source: Source,
    /// JSON snapshot or Prometheus text.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
}

/// `app dashboard`.
#[derive(Debug, Args)]
pub struct DashboardArgs {
    #[command(flatten)]
    source: Source,
    /// Time between refreshes, e.g. `1s`, `500ms`.
    #[arg(long, default_value = "1s", value_parser = top::parse_interval)]
    interval: Duration,
}

/// The snapshot JSON of `monitor_core::Registry::snapshot`, as far as the commands read it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct AppSnapshot {
    pub generated_at: f64,
    pub allocator: bool,
    pub functions: Vec<Function>,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Function {
    pub name: String,
    pub calls: u64,
    pub successes: u64,
    pub failures: u64,
    pub success_rate: f64,
    pub duration_ns: Quantiles,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alloc_bytes: Option<Quantiles>,
    pub cancelled: u64,
    pub calls_24h: u64,
    pub trend: String,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Quantiles {
    pub min: u64,
    pub max: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p95: u64,
    pub p99: u64,
    pub p999: u64,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Warning {
    pub function: String,
    pub kind: String,
    pub message: String,
}

impl Source {
    fn describe(&self) -> String {
        match (&self.url, &self.file) {
            (Some(url), _) => Client::new(url).base().to_owned(),
            (None, Some(file)) => file.display().to_string(),
            (None, None) => unreachable!("clap requires --url or --file"),
        }
    }

    /// The snapshot's text and its parsed form.
    fn load(&self) -> anyhow::Result<(String, AppSnapshot)> {
        let (text, from) = match (&self.url, &self.file) {
            (Some(url), _) => {
                let client = Client::new(url);
                let text = client.text("/api/snapshot")?;
                (text, format!("{}/api/snapshot", client.base()))
            }
            (None, Some(file)) => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                (text, file.display().to_string())
            }
            (None, None) => unreachable!("clap requires --url or --file"),
        };
        let snapshot = parse(&text).with_context(|| from.clone())?;
        Ok((text, snapshot))
    }
}

/// A snapshot, refusing JSON that is not one (no `functions` array).
fn parse(text: &str) -> anyhow::Result<AppSnapshot> {
    let value: serde_json::Value =
        serde_json::from_str(text).context("not JSON: expected a monitor-core snapshot")?;
    if !value
        .get("functions")
        .is_some_and(serde_json::Value::is_array)
    {
        anyhow::bail!("not a monitor-core snapshot: no \"functions\" array");
    }
    serde_json::from_value(value).context("not a monitor-core snapshot")
}

/// Runs one `app` command.
pub fn run(command: AppCommand) -> anyhow::Result<()> {
    match command {
        AppCommand::Report(a) => {
            let (_, snapshot) = a.source.load()?;
            match a.output {
                Output::Human => print!("{}", report(&snapshot, &a.source.describe(), a.top)),
                Output::Json => println!("{}", report_json(&snapshot, a.top)),
            }
        }
        AppCommand::Export(a) => match (a.format, &a.source.url) {
            (Format::Json, _) => {
                let (text, _) = a.source.load()?;
                println!("{}", text.trim_end());
            }
            (Format::Prometheus, Some(url)) => print!("{}", Client::new(url).text("/metrics")?),
            (Format::Prometheus, None) => print!("{}", prometheus(&a.source.load()?.1)),
        },
        AppCommand::Dashboard(a) => {
            let title = format!("application at {}", a.source.describe());
            let mut activity = Activity::default();
            let source = a.source.clone();
            top::live(a.interval, move || {
                let (_, snapshot) = source.load()?;
                activity.record(&snapshot);
                Ok(dashboard(&title, &snapshot, &activity))
            })?;
        }
    }
    Ok(())
}

/// Functions called at least once, slowest (p99) first.
fn slowest(s: &AppSnapshot) -> Vec<&Function> {
    let mut f: Vec<&Function> = s.functions.iter().filter(|f| f.calls > 0).collect();
    f.sort_by(|a, b| {
        b.duration_ns
            .p99
            .cmp(&a.duration_ns.p99)
            .then(a.name.cmp(&b.name))
    });
    f
}

/// Functions called at least once, most calls first.
fn most_called(s: &AppSnapshot) -> Vec<&Function> {
    let mut f: Vec<&Function> = s.functions.iter().filter(|f| f.calls > 0).collect();
    f.sort_by(|a, b| b.calls.cmp(&a.calls).then(a.name.cmp(&b.name)));
    f
}

fn row(f: &Function) -> Vec<String> {
    let d = &f.duration_ns;
    vec![
        f.name.clone(),
        f.calls.to_string(),
        format!("{:.1}%", f.success_rate * 100.0),
        nanos(d.mean),
        nanos(d.p50 as f64),
        nanos(d.p99 as f64),
        nanos(d.max as f64),
        f.trend.clone(),
    ]
}

const HEADER: [&str; 8] = [
    "FUNCTION", "CALLS", "SUCCESS", "MEAN", "P50", "P99", "MAX", "TREND",
];

/// The human report: a summary line, the slowest and the most called (`top` each), warnings.
pub fn report(s: &AppSnapshot, from: &str, top: usize) -> String {
    let called = s.functions.iter().filter(|f| f.calls > 0).count();
    let mut out = format!(
        "application at {from}: {} function(s), {called} called; snapshot of {} UTC\n",
        s.functions.len(),
        utc((s.generated_at * 1e3) as u64)
    );
    let sections = [
        ("slowest (by p99)", slowest(s)),
        ("most called", most_called(s)),
    ];
    for (title, functions) in sections {
        out += &format!("\n{title}:\n");
        if functions.is_empty() {
            out += "  (no calls recorded)\n";
            continue;
        }
        let rows: Vec<Vec<String>> = functions.into_iter().take(top).map(row).collect();
        out += &table(&HEADER, &rows);
    }
    if s.warnings.is_empty() {
        out += "\nno warnings\n";
    } else {
        out += "\nwarnings:\n";
        for w in &s.warnings {
            out += &format!("  [{}] {}: {}\n", w.kind, w.function, w.message);
        }
    }
    out
}

fn report_json(s: &AppSnapshot, top: usize) -> serde_json::Value {
    let names = |f: Vec<&Function>| -> Vec<Function> { f.into_iter().take(top).cloned().collect() };
    serde_json::json!({
        "generated_at": s.generated_at,
        "functions": s.functions.len(),
        "slowest": names(slowest(s)),
        "most_called": names(most_called(s)),
        "warnings": s.warnings,
    })
}

/// The Prometheus text of a snapshot file, with the names of `monitor_core`'s exposition. A
/// snapshot holds quantiles, not histogram buckets: the latency is a summary only.
pub fn prometheus(s: &AppSnapshot) -> String {
    use MetricType::{Counter, Gauge, Summary};
    let mut fam = Families::new();
    let each = |fam: &mut Families,
                (name, kind, help): (&str, MetricType, &str),
                v: &dyn Fn(&Function) -> f64| {
        fam.declare(name, kind, help);
        for f in &s.functions {
            fam.add(name, kind, help, [("function", f.name.as_str())], v(f));
        }
    };
    each(
        &mut fam,
        (
            "monitor_function_calls_total",
            Counter,
            "Completed calls of an instrumented function.",
        ),
        &|f| f.calls as f64,
    );
    each(
        &mut fam,
        (
            "monitor_function_failures_total",
            Counter,
            "Calls that panicked, returned Err or were failed by hand.",
        ),
        &|f| f.failures as f64,
    );
    each(
        &mut fam,
        (
            "monitor_function_cancelled_total",
            Counter,
            "Futures dropped before completion.",
        ),
        &|f| f.cancelled as f64,
    );
    each(
        &mut fam,
        (
            "monitor_function_success_ratio",
            Gauge,
            "Successes over calls (1 when never called).",
        ),
        &|f| f.success_rate,
    );
    let (name, help) = (
        "monitor_function_latency_seconds",
        "Latency quantiles of completed calls (within 1.6%).",
    );
    fam.declare(name, Summary, help);
    for f in s.functions.iter().filter(|f| f.calls > 0) {
        let d = &f.duration_ns;
        for (q, v) in [
            ("0.5", d.p50),
            ("0.9", d.p90),
            ("0.95", d.p95),
            ("0.99", d.p99),
            ("0.999", d.p999),
        ] {
            fam.add(
                name,
                Summary,
                help,
                [("function", f.name.as_str()), ("quantile", q)],
                v as f64 * 1e-9,
            );
        }
        let labels = [("function", f.name.as_str())];
        fam.add_suffixed(
            name,
            Summary,
            help,
            "_sum",
            labels,
            d.mean * f.calls as f64 * 1e-9,
        );
        fam.add_suffixed(name, Summary, help, "_count", labels, f.calls as f64);
    }
    each(
        &mut fam,
        (
            "monitor_function_calls_24h",
            Gauge,
            "Calls in the current hour and the 23 before it.",
        ),
        &|f| f.calls_24h as f64,
    );
    fam.to_string()
}

/// Calls per refresh of each function, for the dashboard's sparklines.
#[derive(Debug, Default)]
struct Activity {
    last: BTreeMap<String, u64>,
    deltas: BTreeMap<String, VecDeque<f64>>,
}

impl Activity {
    const KEPT: usize = 60;

    fn record(&mut self, s: &AppSnapshot) {
        for f in &s.functions {
            let delta = self
                .last
                .insert(f.name.clone(), f.calls)
                .map_or(0, |before| f.calls.saturating_sub(before));
            let d = self.deltas.entry(f.name.clone()).or_default();
            d.push_back(delta as f64);
            if d.len() > Self::KEPT {
                d.pop_front();
            }
        }
    }

    fn of(&self, name: &str) -> Vec<f64> {
        self.deltas
            .get(name)
            .map(|d| d.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// The dashboard's panes: the most called functions with their activity, the slowest.
fn dashboard(title: &str, s: &AppSnapshot, activity: &Activity) -> Model {
    let busy = most_called(s);
    let functions = Pane {
        title: format!("functions, most called first ({})", busy.len()),
        header: vec![
            "FUNCTION",
            "CALLS",
            "SUCCESS",
            "MEAN",
            "P99",
            "TREND",
            "CALLS/REFRESH",
        ],
        rows: busy
            .iter()
            .map(|f| {
                let a = activity.of(&f.name);
                vec![
                    f.name.clone(),
                    f.calls.to_string(),
                    format!("{:.1}%", f.success_rate * 100.0),
                    nanos(f.duration_ns.mean),
                    nanos(f.duration_ns.p99 as f64),
                    f.trend.clone(),
                    sparkline(&a),
                ]
            })
            .collect(),
        series: busy.iter().map(|f| activity.of(&f.name)).collect(),
        weight: 3,
    };
    let slow = slowest(s);
    let slowest = Pane {
        title: "slowest (by p99)".into(),
        header: HEADER.to_vec(),
        rows: slow.into_iter().map(row).collect(),
        series: Vec::new(),
        weight: 2,
    };
    Model {
        title: format!("{title}: {} function(s)", s.functions.len()),
        panes: vec![functions, slowest],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> AppSnapshot {
        let f = |name: &str, calls, p99| Function {
            name: name.into(),
            calls,
            successes: calls,
            success_rate: 1.0,
            duration_ns: Quantiles {
                p99,
                p50: p99 / 2,
                mean: p99 as f64 / 2.0,
                max: p99,
                ..Quantiles::default()
            },
            trend: "stable".into(),
            ..Function::default()
        };
        AppSnapshot {
            functions: vec![f("a", 10, 5_000_000), f("b", 1000, 1_000), f("idle", 0, 0)],
            ..AppSnapshot::default()
        }
    }

    #[test]
    fn sections_order_by_p99_and_by_calls() {
        let text = report(&snapshot(), "x", 10);
        let slow = text.find("slowest").unwrap();
        let most = text.find("most called").unwrap();
        let (s, m) = (&text[slow..most], &text[most..]);
        assert!(s.find("\na ").unwrap() < s.find("\nb ").unwrap(), "{text}");
        assert!(m.find("\nb ").unwrap() < m.find("\na ").unwrap(), "{text}");
        assert!(
            !text.contains("idle"),
            "never-called functions stay out: {text}"
        );
    }

    #[test]
    fn not_a_snapshot_is_refused() {
        assert!(
            parse("{\"series\": []}")
                .unwrap_err()
                .to_string()
                .contains("no \"functions\"")
        );
        assert!(
            parse("<html>")
                .unwrap_err()
                .to_string()
                .contains("not JSON")
        );
        assert_eq!(parse("{\"functions\": []}").unwrap().functions.len(), 0);
    }

    #[test]
    fn prometheus_text_of_a_file() {
        let text = prometheus(&snapshot());
        assert!(
            text.contains("monitor_function_calls_total{function=\"b\"} 1000\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "monitor_function_latency_seconds{function=\"a\",quantile=\"0.99\"} 0.005\n"
            ),
            "{text}"
        );
        assert!(
            !text.contains("latency_seconds{function=\"idle\""),
            "{text}"
        );
    }

    #[test]
    fn the_dashboard_lists_the_busiest_functions_with_their_activity() {
        let mut a = Activity::default();
        let mut s = snapshot();
        a.record(&s);
        s.functions[0].calls += 3;
        s.functions[1].calls += 9;
        a.record(&s);
        let model = dashboard("application at x", &s, &a);
        assert_eq!(model.title, "application at x: 3 function(s)");
        let busy = &model.panes[0];
        assert_eq!(busy.rows[0][0], "b", "most called first");
        assert_eq!(busy.rows[0].last().unwrap(), "▁█");
        assert_eq!(busy.series[0], vec![0.0, 9.0]);
        assert_eq!(model.panes[1].rows[0][0], "a", "slowest first");
        assert_eq!(busy.rows.len(), 2, "never-called functions are left out");
    }

    #[test]
    fn activity_counts_calls_between_refreshes() {
        let mut a = Activity::default();
        let mut s = snapshot();
        a.record(&s);
        s.functions[1].calls += 7;
        a.record(&s);
        assert_eq!(a.of("b"), vec![0.0, 7.0]);
    }
}
