//! What the engine knows, as Prometheus text, a JSON snapshot, the dashboard's overview and a
//! human report.

use std::fmt::Write as _;

use std::time::Duration;

use monitor_core::prometheus::MetricType::{self, Counter, Gauge, Summary};
use monitor_core::prometheus::{Families, format_value as number, metric_name};
use monitor_plugin::{Labels, NotificationStatus, SampleKind};
use serde::Serialize;

use crate::alert::{AlertState, AlertStatus};
use crate::engine::{CycleStats, DryRun, Engine, PluginStatus};
use crate::history::{EventRecord, HealRecord};
use crate::remote_write::RemoteWriteStatus;

mod overview;

pub use overview::{OVERVIEW_HISTORY, Overview, OverviewAlert, overview, overview_json};

/// Points of history per series in the snapshot.
pub const SNAPSHOT_POINTS: usize = 60;

/// A collected metric name as a Prometheus name: `system.cpu.usage` becomes `system_cpu_usage`
/// (counters also get a `_total` suffix when they lack one, in [`prometheus`]).
pub fn prometheus_name(name: &str) -> String {
    metric_name(name)
}

/// The name a collected metric has on `/metrics` and in remote write: [`prometheus_name`], with
/// `_total` added to a counter whose name lacks it, as Prometheus names counters.
pub fn family_name(name: &str, kind: SampleKind) -> String {
    let mut out = prometheus_name(name);
    if kind == SampleKind::Counter && !out.ends_with("_total") {
        out.push_str("_total");
    }
    out
}

fn plugin_labels(p: &PluginStatus) -> Labels {
    Labels::from([
        ("kind".to_owned(), p.kind.to_owned()),
        ("instance".to_owned(), p.name.clone()),
        ("plugin".to_owned(), p.plugin.clone()),
    ])
}

/// Renders `/metrics`: collected series (latest values), the host's own health, plugin health and
/// alert states, in the Prometheus text format 0.0.4.
pub fn prometheus(engine: &Engine) -> String {
    let mut fam = Families::sorted();
    collected(&mut fam, engine);
    host_health(&mut fam, engine);
    for p in engine.plugins() {
        plugin_health(&mut fam, &p);
    }
    alert_states(&mut fam, engine);
    incidents(&mut fam, engine);
    healing_attempts(&mut fam, engine);
    for r in engine.remote_write() {
        remote_write(&mut fam, &r);
    }
    store_writes(&mut fam, engine);
    series_counts(&mut fam, engine);
    process(&mut fam, &ProcessFigures::read());
    fam.to_string()
}

/// Cycles in a row whose write to the store failed after which `/healthz` answers 503.
pub const UNHEALTHY_WRITE_FAILURES: u32 = 3;

/// Why the host is unhealthy although its cycles run, for `/healthz`: the store could not be
/// written for the last [`UNHEALTHY_WRITE_FAILURES`] cycles or more. `None` when healthy.
pub fn trouble(engine: &Engine) -> Option<String> {
    let failures = engine.store_write_failures();
    if failures < UNHEALTHY_WRITE_FAILURES {
        return None;
    }
    let file = engine
        .store_path()
        .map_or_else(String::new, |p| format!(" {}", p.display()));
    let pending = engine.store_writes().map_or(0, |w| w.pending);
    Some(format!(
        "persistence failing: the last {failures} cycles could not be written to the store{file} \
         ({pending} waiting in memory; see monitor_host_store_write_errors_total)"
    ))
}

/// Series held and refused per collector instance (`host`: the host's own).
fn series_counts(fam: &mut Families, engine: &Engine) {
    for (collector, c) in engine.store().counts() {
        let l = [("collector", collector.as_str())];
        let help = "series held in memory, per collector instance";
        fam.add(
            "monitor_host_collector_series",
            Gauge,
            help,
            l,
            c.series as f64,
        );
        let help = "new series refused because a `max_series` limit was reached";
        let name = "monitor_host_series_limit_hits_total";
        fam.add(name, Counter, help, l, c.refused as f64);
    }
    let none = Labels::new();
    let help = "most series held from all collectors together (`[host] max_series`)";
    let limit = engine.host().max_series as f64;
    fam.add("monitor_host_series_limit", Gauge, help, &none, limit);
    let help = "alert instances held (an instance whose series is gone is forgotten once resolved)";
    let instances = engine.alerts().len() as f64;
    fam.add(
        "monitor_host_alert_instances",
        Gauge,
        help,
        &none,
        instances,
    );
    rule_groups(fam, engine);
}

/// Rule evaluation time, as Prometheus's `prometheus_rule_group_*` families show it.
fn rule_groups(fam: &mut Families, engine: &Engine) {
    let help = "wall time of each rule group's last evaluation";
    for (group, took) in engine.alerts().group_durations() {
        let name = "monitor_host_rule_group_last_duration_seconds";
        let labels = Labels::from([("rule_group".to_owned(), group.to_owned())]);
        fam.add(name, Gauge, help, &labels, took.as_secs_f64());
    }
    for (group, due, missed) in engine.alerts().group_iterations() {
        let labels = Labels::from([("rule_group".to_owned(), group.to_owned())]);
        let name = "monitor_host_rule_group_iterations_total";
        let help = "rule group iterations due (evaluated or missed)";
        fam.add(name, Counter, help, &labels, due as f64);
        let name = "monitor_host_rule_group_iterations_missed_total";
        let help =
            "rule group iterations missed because an evaluation came an interval late or more";
        fam.add(name, Counter, help, &labels, missed as f64);
    }
    let (sum, count) = engine.alerts().evaluation_time();
    let name = "monitor_host_rule_group_duration_seconds";
    let help = "wall time of rule group evaluations";
    let none = Labels::new();
    fam.add_suffixed(name, Summary, help, "_sum", &none, sum.as_secs_f64());
    fam.add_suffixed(name, Summary, help, "_count", &none, count as f64);
}

/// The host process's own figures, from `/proc/self` (absent where there is none).
#[derive(Debug, Default, PartialEq)]
struct ProcessFigures {
    resident_bytes: Option<u64>,
    threads: Option<u64>,
    open_fds: Option<u64>,
}

impl ProcessFigures {
    fn read() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let mut figures = Self::from_status(&status);
        // The listing's own descriptor is one of them.
        figures.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count().saturating_sub(1) as u64);
        figures
    }

    /// `VmRSS` and `Threads` from the text of `/proc/self/status`.
    fn from_status(status: &str) -> Self {
        let field = |name: &str| {
            status.lines().find_map(|l| {
                let rest = l.strip_prefix(name)?.strip_prefix(':')?;
                rest.split_whitespace().next()?.parse::<u64>().ok()
            })
        };
        Self {
            resident_bytes: field("VmRSS").map(|kb| kb * 1024),
            threads: field("Threads"),
            open_fds: None,
        }
    }
}

fn process(fam: &mut Families, p: &ProcessFigures) {
    let none = Labels::new();
    let figures = [
        (
            "monitor_host_resident_memory_bytes",
            "resident memory of the host process, plugins included",
            p.resident_bytes,
        ),
        (
            "monitor_host_threads",
            "threads of the host process, plugin workers and threads plugins started included",
            p.threads,
        ),
        (
            "monitor_host_open_fds",
            "open file descriptors of the host process",
            p.open_fds,
        ),
    ];
    for (name, help, value) in figures {
        if let Some(v) = value {
            fam.add(name, Gauge, help, &none, v as f64);
        }
    }
}

/// How writing to the store in `data_dir` has gone, when there is one.
fn store_writes(fam: &mut Families, engine: &Engine) {
    let Some(w) = engine.store_writes() else {
        return;
    };
    let none = Labels::new();
    let help = "cycles whose write to the store failed (each retry counts)";
    let errors = w.errors_total as f64;
    fam.add(
        "monitor_host_store_write_errors_total",
        Counter,
        help,
        &none,
        errors,
    );
    let help = "cycles dropped unwritten while the store could not be written";
    let dropped = w.dropped_total as f64;
    fam.add(
        "monitor_host_store_dropped_cycles_total",
        Counter,
        help,
        &none,
        dropped,
    );
    let help = "cycles waiting to be written to the store";
    let pending = w.pending as f64;
    fam.add(
        "monitor_host_store_pending_cycles",
        Gauge,
        help,
        &none,
        pending,
    );
    let help = "cycles in a row, up to the last one, whose write to the store failed";
    let failing = f64::from(engine.store_write_failures());
    let name = "monitor_host_store_consecutive_write_failures";
    fam.add(name, Gauge, help, &none, failing);
    if let Some(ms) = w.last_success_ms {
        let name = "monitor_host_store_last_write_success_timestamp_seconds";
        let help = "when a write to the store last succeeded";
        fam.add(name, Gauge, help, &none, ms as f64 / 1000.0);
    }
}

/// The latest value of every collected series.
fn collected(fam: &mut Families, engine: &Engine) {
    for (key, series) in engine.store().iter() {
        if key.name.starts_with("monitor.host.") || key.name.starts_with("monitor.plugin.") {
            continue; // exported under their own names
        }
        let Some((_, value)) = series.latest() else {
            continue;
        };
        let name = family_name(&key.name, series.kind);
        let (kind, help) = match series.kind {
            SampleKind::Gauge => (Gauge, format!("collected metric {}", key.name)),
            SampleKind::Counter => (Counter, format!("collected counter {}", key.name)),
        };
        fam.add(&name, kind, &help, &key.labels, value);
    }
}

fn host_health(fam: &mut Families, engine: &Engine) {
    let none = Labels::new();
    let cycles = engine.cycles() as f64;
    fam.add(
        "monitor_host_cycles_total",
        Counter,
        "collection cycles run",
        &none,
        cycles,
    );
    if let Some(c) = engine.last_cycle() {
        let help = "wall time of the last cycle";
        let name = "monitor_host_cycle_duration_seconds";
        fam.add(name, Gauge, help, &none, c.duration_seconds);
        let name = "monitor_host_last_cycle_timestamp_seconds";
        let at = c.at_ms as f64 / 1000.0;
        fam.add(name, Gauge, "when the last cycle started", &none, at);
        let name = "monitor_host_last_cycle_end_timestamp_seconds";
        let at = c.ended_ms as f64 / 1000.0;
        fam.add(name, Gauge, "when the last cycle ended", &none, at);
    }
    let series = engine.store().len() as f64;
    fam.add(
        "monitor_host_series",
        Gauge,
        "series held in memory",
        &none,
        series,
    );
    let name = "monitor_host_start_timestamp_seconds";
    let started = engine.started_ms() as f64 / 1000.0;
    fam.add(name, Gauge, "when the host started", &none, started);
    let reload = engine.last_reload();
    let name = "monitor_host_config_last_reload_successful";
    let ok = f64::from(u8::from(reload.successful));
    fam.add(
        name,
        Gauge,
        "whether the last config reload succeeded",
        &none,
        ok,
    );
    let name = "monitor_host_config_last_reload_success_timestamp_seconds";
    let at = reload.success_ms as f64 / 1000.0;
    fam.add(name, Gauge, "when the config was last loaded", &none, at);
}

fn plugin_health(fam: &mut Families, p: &PluginStatus) {
    let l = plugin_labels(p);
    let s = &p.stats;
    let mut add = |name: &str, kind: MetricType, help: &str, value: f64| {
        fam.add(name, kind, help, &l, value);
    };
    let counters = [
        (
            "monitor_plugin_calls_total",
            "calls made to the plugin instance",
            s.calls,
        ),
        (
            "monitor_plugin_errors_total",
            "calls that returned an error or unreadable output",
            s.errors,
        ),
        (
            "monitor_plugin_timeouts_total",
            "calls abandoned after the timeout",
            s.timeouts,
        ),
        (
            "monitor_plugin_panics_total",
            "calls that panicked inside the plugin",
            s.panics,
        ),
        (
            "monitor_plugin_skipped_total",
            "calls skipped because the previous call was still running",
            s.skipped,
        ),
    ];
    for (name, help, value) in counters {
        add(name, Counter, help, value as f64);
    }
    if p.isolation == "process" {
        let help = "times the isolated instance's process died (segfault, abort, exit, killed)";
        add(
            "monitor_plugin_crashes_total",
            Counter,
            help,
            s.crashes as f64,
        );
        let help = "times a new process was started for the isolated instance";
        add(
            "monitor_plugin_restarts_total",
            Counter,
            help,
            s.restarts as f64,
        );
    }
    let failures = f64::from(s.consecutive_failures);
    add(
        "monitor_plugin_consecutive_failures",
        Gauge,
        "failures in a row",
        failures,
    );
    let backoff = if s.consecutive_failures > 1 { 1.0 } else { 0.0 };
    let help = "1 while the instance is backed off after repeated failures";
    add("monitor_plugin_backoff", Gauge, help, backoff);
    let busy = f64::from(u8::from(s.busy));
    add(
        "monitor_plugin_busy",
        Gauge,
        "1 while a call is running",
        busy,
    );
    let help = "1 while a call has been running longer than the timeout";
    add(
        "monitor_plugin_stuck",
        Gauge,
        help,
        f64::from(u8::from(s.stuck)),
    );
    if let Some(t) = s.last_success_ms {
        let name = "monitor_plugin_last_success_timestamp_seconds";
        add(name, Gauge, "last successful call", t as f64 / 1000.0);
    }
    if let Some(d) = s.last_call_seconds {
        let name = "monitor_plugin_last_call_duration_seconds";
        add(name, Gauge, "duration of the last finished call", d);
    }
    if let Some(n) = s.last_samples {
        let help = "samples returned by the last collect (0: quiet)";
        add("monitor_plugin_last_samples", Gauge, help, n as f64);
    }
    samples_rejected(fam, p);
}

/// Samples a collector returned that the host refused, by reason (see `engine::ingest`).
fn samples_rejected(fam: &mut Families, p: &PluginStatus) {
    if p.kind != "collector" {
        return;
    }
    let name = "monitor_host_samples_rejected_total";
    let help = "samples refused at ingest (the rest of their collection was kept), by reason";
    fam.declare(name, Counter, help);
    for (reason, n) in &p.stats.rejected {
        let labels = [("collector", p.name.as_str()), ("reason", reason)];
        fam.add(name, Counter, help, labels, *n as f64);
    }
}

fn remote_write(fam: &mut Families, r: &RemoteWriteStatus) {
    let l = [("remote", r.remote.as_str())];
    let counters = [
        (
            "monitor_remote_write_samples_sent_total",
            "samples the remote-write backend accepted",
            r.samples_sent,
        ),
        (
            "monitor_remote_write_samples_failed_total",
            "samples in requests the backend refused for good (4xx other than 429)",
            r.samples_failed,
        ),
        (
            "monitor_remote_write_samples_dropped_total",
            "samples dropped unsent: queue full, or still queued at shutdown",
            r.samples_dropped,
        ),
        (
            "monitor_remote_write_retries_total",
            "requests sent again after a connection error, timeout, 5xx or 429",
            r.retries,
        ),
    ];
    for (name, help, value) in counters {
        fam.add(name, Counter, help, l, value as f64);
    }
    let name = "monitor_remote_write_queue_length";
    let help = "samples waiting to be sent, including the request in flight";
    fam.add(name, Gauge, help, l, r.queue_length as f64);
    if let Some(t) = r.last_send_ms {
        let name = "monitor_remote_write_last_send_timestamp_seconds";
        let help = "when the backend last accepted a request";
        fam.add(name, Gauge, help, l, t as f64 / 1000.0);
    }
}

/// Open incidents, and the times to recover and to acknowledge of those closed or acknowledged
/// since the start (summaries without quantiles: `_sum` and `_count`).
fn incidents(fam: &mut Families, engine: &Engine) {
    let none: [(&str, &str); 0] = [];
    let book = engine.incidents();
    let help = "incidents not resolved (open or acknowledged)";
    fam.add(
        "monitor_incidents_open",
        Gauge,
        help,
        none,
        book.open_count() as f64,
    );
    let help = "alert firings that got no incident because too many were open";
    let name = "monitor_incidents_refused_total";
    fam.add(name, Counter, help, none, book.refused() as f64);
    for (name, help, (count, sum)) in [
        (
            "monitor_incident_time_to_recover_seconds",
            "from an incident's first firing to its resolution, for those resolved since the start",
            book.recovered(),
        ),
        (
            "monitor_incident_time_to_acknowledge_seconds",
            "from an incident's first firing to its acknowledgement, since the start",
            book.acknowledged(),
        ),
    ] {
        fam.add_suffixed(name, Summary, help, "_sum", none, sum.as_secs_f64());
        fam.add_suffixed(name, Summary, help, "_count", none, count as f64);
    }
    if let Some(last) = book.last_recovered() {
        let name = "monitor_incident_last_time_to_recover_seconds";
        let help = "the time to recover of the last incident resolved";
        fam.add(name, Gauge, help, none, last.as_secs_f64());
    }
}

fn alert_states(fam: &mut Families, engine: &Engine) {
    let help = "alert notifications withheld because the alert was silenced or inhibited";
    let withheld = engine.withheld_notifications() as f64;
    let none: [(&str, &str); 0] = [];
    fam.add(
        "monitor_host_notifications_withheld_total",
        Counter,
        help,
        none,
        withheld,
    );
    for a in engine.alerts().statuses() {
        let mut l = a.labels.clone();
        l.insert("alertname".into(), a.alert.clone());
        if let Some(r) = engine.alerts().rules().iter().find(|r| r.name == a.alert) {
            l.insert("severity".into(), r.severity.as_str().into());
        }
        let help = "alert state: 0 inactive, 1 pending, 2 firing";
        let state = f64::from(a.state.as_number());
        fam.add("monitor_alert_state", Gauge, help, &l, state);
        let help = "state changes of the alert (inactive, pending, firing) in the last hour";
        let flaps = f64::from(a.flaps_per_hour);
        fam.add("monitor_alert_flaps_per_hour", Gauge, help, &l, flaps);
        let mute = engine.mute(&(a.alert.clone(), a.labels.clone()));
        let help = "1 when a silence or a [[silence]] window mutes the firing alert";
        let silenced = mute.is_some_and(|m| !m.silenced_by.is_empty());
        fam.add(
            "monitor_alert_silenced",
            Gauge,
            help,
            &l,
            f64::from(u8::from(silenced)),
        );
        let help = "1 when a firing alert matching an [[inhibit]] source mutes the firing alert";
        let inhibited = mute.is_some_and(|m| !m.inhibited_by.is_empty());
        fam.add(
            "monitor_alert_inhibited",
            Gauge,
            help,
            &l,
            f64::from(u8::from(inhibited)),
        );
    }
}

fn healing_attempts(fam: &mut Families, engine: &Engine) {
    for (k, n) in engine.history().attempts_total() {
        let result = if k.success { "success" } else { "failure" };
        // In label-name order, as the other families' (sorted) label maps.
        let l = [
            ("alertname", k.alert.as_str()),
            ("result", result),
            ("strategy", k.strategy.as_str()),
        ];
        let help = "healing attempts by outcome";
        fam.add(
            "monitor_healing_attempts_total",
            Counter,
            help,
            l,
            *n as f64,
        );
    }
}

/// One series in the snapshot.
#[derive(Debug, Serialize)]
pub struct SeriesView {
    /// Metric name.
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// Gauge or counter.
    pub kind: SampleKind,
    /// Latest value.
    pub value: f64,
    /// Latest timestamp, ms since epoch.
    pub timestamp_ms: u64,
    /// Recent `(ms, value)` points, oldest first.
    pub points: Vec<(u64, f64)>,
}

/// An alert instance in the snapshot: its status, and why it is muted.
#[derive(Debug, Serialize)]
pub struct AlertView<'a> {
    /// State, value and times.
    #[serde(flatten)]
    pub status: &'a AlertStatus,
    /// The silences and `[[silence]]` windows that mute it (firing instances only).
    pub silenced_by: &'a [String],
    /// The firing alerts that inhibit it, as `name{labels}`.
    pub inhibited_by: &'a [String],
}

/// The JSON served at `/api/snapshot`.
#[derive(Debug, Serialize)]
pub struct Snapshot<'a> {
    /// Host name.
    pub host: &'a str,
    /// Cycles run.
    pub cycles: u64,
    /// Last cycle.
    pub last_cycle: Option<&'a CycleStats>,
    /// Series.
    pub series: Vec<SeriesView>,
    /// Alert instances.
    pub alerts: Vec<AlertView<'a>>,
    /// Healing attempts.
    pub healing: Vec<&'a HealRecord>,
    /// Plugin instances and their health.
    pub plugins: Vec<PluginStatus>,
    /// Recent events.
    pub events: Vec<&'a EventRecord>,
}

/// Builds the snapshot.
pub fn snapshot(engine: &Engine) -> Snapshot<'_> {
    Snapshot {
        host: &engine.host().name,
        cycles: engine.cycles(),
        last_cycle: engine.last_cycle(),
        series: engine
            .store()
            .iter()
            .filter_map(|(k, s)| {
                let (timestamp_ms, value) = s.latest()?;
                Some(SeriesView {
                    name: k.name.clone(),
                    labels: k.labels.clone(),
                    kind: s.kind,
                    value,
                    timestamp_ms,
                    points: s.points.last_n(SNAPSHOT_POINTS).collect(),
                })
            })
            .collect(),
        alerts: (engine.alerts().statuses())
            .map(|status| {
                let key = (status.alert.clone(), status.labels.clone());
                let mute = engine.mute(&key);
                AlertView {
                    status,
                    silenced_by: mute.map_or(&[], |m| &m.silenced_by),
                    inhibited_by: mute.map_or(&[], |m| &m.inhibited_by),
                }
            })
            .collect(),
        healing: engine.healing().collect(),
        plugins: engine.plugins(),
        events: engine.events().collect(),
    }
}

/// The snapshot as JSON text.
pub fn snapshot_json(engine: &Engine) -> String {
    serde_json::to_string(&snapshot(engine)).expect("snapshots always serialise")
}

/// A human report: plugins, latest values, alerts, healing.
pub fn report(engine: &Engine) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "monitor-host on {}: {} cycle(s)",
        engine.host().name,
        engine.cycles()
    );
    if let Some(c) = engine.last_cycle() {
        let _ = writeln!(
            out,
            "last cycle: {:.1} ms, {} collector(s) called, {} failed",
            c.duration_seconds * 1e3,
            c.collected,
            c.failed
        );
    }
    let _ = writeln!(out, "\nplugins:");
    for p in engine.plugins() {
        let s = &p.stats;
        let health = if s.stuck {
            "STUCK".to_owned()
        } else if s.consecutive_failures > 1 {
            format!("BACKED OFF after {} failures", s.consecutive_failures)
        } else if s.consecutive_failures == 1 {
            "FAILING".to_owned()
        } else {
            "ok".to_owned()
        };
        let _ = writeln!(
            out,
            "  {:<9} {:<20} {:<16} v{:<8} calls {:>4}  errors {:>3}  timeouts {:>3}  panics {:>3}  {}",
            p.kind, p.name, p.plugin, p.version, s.calls, s.errors, s.timeouts, s.panics, health
        );
        if let Some(e) = &s.last_error {
            let _ = writeln!(out, "            last error: {e}");
        }
    }
    let _ = writeln!(out, "\nseries ({}):", engine.store().len());
    for (k, s) in engine.store().iter() {
        if let Some((_, v)) = s.latest() {
            let labels: Vec<String> = k
                .labels
                .iter()
                .filter(|(n, _)| *n != "collector")
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            let labels = if labels.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", labels.join(","))
            };
            let _ = writeln!(out, "  {}{} = {}", k.name, labels, number(v));
        }
    }
    let _ = writeln!(out, "\nalerts:");
    let mut any = false;
    for a in engine.alerts().statuses() {
        any = true;
        let mute = engine.mute(&(a.alert.clone(), a.labels.clone()));
        let muted = match mute {
            Some(m) if !m.silenced_by.is_empty() => " (silenced)",
            Some(_) => " (inhibited)",
            None => "",
        };
        let _ = writeln!(
            out,
            "  {:<20} {:<8} value {} {:?}{muted}",
            a.alert,
            format!("{:?}", a.state).to_lowercase(),
            number(a.value),
            a.labels
        );
    }
    if !any {
        let _ = writeln!(out, "  (none evaluated)");
    }
    let _ = writeln!(out, "\nhealing:");
    let mut any = false;
    for h in engine.healing() {
        any = true;
        let _ = writeln!(
            out,
            "  {} on {} attempt {}: {} ({} ms) {}",
            h.strategy,
            h.alert,
            h.attempt,
            if h.success { "success" } else { "failure" },
            h.duration_ms,
            h.message
        );
    }
    if !any {
        let _ = writeln!(out, "  (no attempts)");
    }
    if let Some(d) = engine.dry_run() {
        dry_run_report(engine, d, &mut out);
    }
    out
}

fn labels_inline(labels: &Labels) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", inner.join(","))
}

/// What a dry run would have notified and healed, and which alerts one cycle cannot fire.
fn dry_run_report(engine: &Engine, d: &DryRun, out: &mut String) {
    let _ = writeln!(
        out,
        "\ndry run: collected and evaluated only; no notifier or strategy was called, no history was written"
    );
    let _ = writeln!(out, "\nwould notify:");
    for p in &d.notifications {
        let n = &p.notification;
        let status = match (n.status, n.escalation) {
            (_, true) => "escalation",
            (NotificationStatus::Firing, _) => "firing",
            (NotificationStatus::Resolved, _) => "resolved",
        };
        let _ = writeln!(
            out,
            "  {} <- {status} {} {} value {} ({})",
            p.notifier,
            n.alert,
            labels_inline(&n.labels),
            number(n.value),
            n.severity
        );
    }
    if d.notifications.is_empty() {
        let _ = writeln!(out, "  (nothing)");
    }
    let _ = writeln!(out, "\nwould heal:");
    for h in &d.heals {
        let f = &h.failure;
        let _ = writeln!(
            out,
            "  {} on {} {} attempt {} (value {})",
            h.strategy,
            f.alert,
            labels_inline(&f.labels),
            f.attempt,
            number(f.value)
        );
    }
    if d.heals.is_empty() {
        let _ = writeln!(out, "  (nothing)");
    }
    let pending: Vec<&AlertStatus> = engine
        .alerts()
        .statuses()
        .filter(|a| a.state == AlertState::Pending)
        .collect();
    if !pending.is_empty() {
        let _ = writeln!(
            out,
            "\npending: the condition holds, but `for` cannot elapse within one cycle; a running host fires these once it has held that long:"
        );
    }
    for a in pending {
        let r#for = engine
            .alerts()
            .rules()
            .iter()
            .find(|r| r.name == a.alert)
            .map_or(Duration::ZERO, |r| r.for_);
        let _ = writeln!(
            out,
            "  {} {} value {} (for {:?})",
            a.alert,
            labels_inline(&a.labels),
            number(a.value),
            r#for
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_figures_come_from_proc_self_status() {
        let status = "Name:\tmonitor-host\nVmRSS:\t   12345 kB\nThreads:\t7\n";
        let p = ProcessFigures::from_status(status);
        assert_eq!(p.resident_bytes, Some(12345 * 1024));
        assert_eq!(p.threads, Some(7));
        assert_eq!(ProcessFigures::from_status(""), ProcessFigures::default());
        if std::path::Path::new("/proc/self/status").exists() {
            let now = ProcessFigures::read();
            assert!(now.resident_bytes.is_some_and(|b| b > 0), "{now:?}");
            assert!(now.threads.is_some_and(|t| t >= 1), "{now:?}");
            // stdin, stdout and stderr at least.
            assert!(now.open_fds.is_some_and(|n| n >= 3), "{now:?}");
        }
    }
}
