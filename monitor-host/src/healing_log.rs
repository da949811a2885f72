//! The healing analytics the host keeps: every settled healing attempt (its verified outcome
//! known, see `engine/healing.rs`) feeds a [`HealingLog`], rebuilt from the store at start, and
//! served as `/api/healing` and as gauges on `/metrics`.
//!
//! The engine never waits on the analysis: it hands each record to an inbox (a short lock), and
//! whoever computes a report (an HTTP thread) moves the inbox into the log first. A report is
//! cached per requested range and reused until a new attempt arrives or [`CACHE_FOR`] passes,
//! so scrapes and dashboard refreshes between attempts cost a lock and a copy of the last answer;
//! a report over a year of attempts is computed only when there is something new to show.
//!
//! A failure type is the alert's name followed by the values of `[healing]
//! failure_type_labels` that the alert instance carries, as a selector:
//! `high_latency{service="api"}`. The source (what failed) is the alert instance's labels.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use monitor_core::analytics::healing::{
    HealingConfig, HealingLog, HealingRecord, HealingReport, MttrStats, TimeRange,
};
use monitor_core::http::{Bytes, Request, Response};
use monitor_core::prometheus::{Families, MetricType};
use monitor_core::trend::{Direction, Trend, classify};
use monitor_plugin::Labels;
use serde::Serialize;

use crate::history::HealRecord;

/// How long a cached report is served at most.
pub const CACHE_FOR: Duration = Duration::from_secs(60);
/// How long a request waits for the log to be rebuilt from the store.
pub const REBUILD_WAIT: Duration = Duration::from_secs(30);
/// Reports cached at once (one per range asked for).
const CACHE_ENTRIES: usize = 8;
/// Records the inbox holds before the engine moves them into the log itself (when it is free).
const INBOX_LIMIT: usize = 4096;

/// The failure type of an attempt on alert `alert` with instance labels `labels`: the alert's
/// name, then the chosen labels the instance carries, as a selector.
pub fn failure_type(alert: &str, labels: &Labels, chosen: &[String]) -> String {
    let mut out = alert.to_owned();
    let mut first = true;
    for name in chosen {
        let Some(value) = labels.get(name) else {
            continue;
        };
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(name);
        out.push('=');
        out.push_str(&serde_json::to_string(value).expect("a string serialises"));
    }
    if !first {
        out.push('}');
    }
    out
}

/// `record` as the analytics sees it: its verified outcome as the success, the alert's firing as
/// the detection, its resolution as the recovery. `None` while its verification is pending.
pub fn healing_record(record: &HealRecord, chosen: &[String]) -> Option<HealingRecord> {
    let verified = record.verified?;
    let source = if record.labels.is_empty() {
        record.alert.clone()
    } else {
        failure_type(
            "",
            &record.labels,
            &record.labels.keys().cloned().collect::<Vec<_>>(),
        )
    };
    Some(HealingRecord {
        strategy: record.strategy.clone(),
        failure_type: failure_type(&record.alert, &record.labels, chosen),
        source,
        detected_at_ms: record.detected_ms.min(record.started_ms),
        action_started_ms: record.started_ms,
        action_ended_ms: record.ended_ms(),
        success: verified,
        recovered_at_ms: if verified { record.recovered_ms } else { None },
        attempt: record.attempt,
    })
}

/// Builds a log from the settled attempts in `conn` that started at or after `since_ms`.
///
/// # Errors
///
/// SQLite failed.
pub fn build_log(
    conn: &rusqlite::Connection,
    since_ms: u64,
    chosen: &[String],
) -> rusqlite::Result<HealingLog> {
    let mut log = HealingLog::new(HealingConfig::default());
    crate::history::read_settled(conn, since_ms, |r| {
        if let Some(h) = healing_record(&r, chosen) {
            log.record(&h);
        }
    })?;
    Ok(log)
}

/// MTTR of one failure type in the earlier and the later half of the range.
#[derive(Debug, Clone, Serialize)]
pub struct MttrTrend {
    /// The failure type.
    pub failure_type: String,
    /// Over the earlier half.
    pub earlier: Option<MttrStats>,
    /// Over the later half.
    pub recent: Option<MttrStats>,
    /// `improving` when the later mean is lower by more than the trend tolerance, `degrading`
    /// when higher; `stable` otherwise or with fewer than `min_samples` recoveries in a half.
    pub trend: Trend,
}

/// `/api/healing`: the [`HealingReport`] with the host's additions.
#[derive(Debug, Serialize)]
pub struct HealingView {
    /// Everything the analysis knows.
    #[serde(flatten)]
    pub report: HealingReport,
    /// The MTTR trend by failure type, slowest recent mean first.
    pub mttr_trend: Vec<MttrTrend>,
    /// `[healing] failure_type_labels`.
    pub failure_type_labels: Vec<String>,
}

/// One computed answer: the JSON and the headline gauges.
#[derive(Debug, Clone)]
pub struct Computed {
    /// `/api/healing`'s body.
    pub json: Bytes,
    /// The gauges for `/metrics`.
    pub metrics: Bytes,
}

#[derive(Debug)]
struct Cached {
    key: Option<TimeRange>,
    generation: u64,
    at: Instant,
    computed: Computed,
}

#[derive(Debug)]
struct Inbox {
    records: Vec<HealingRecord>,
    // Bumped by each rebuild: records before it are in the rebuilt log.
    epoch: u64,
    labels: Vec<String>,
}

#[derive(Debug)]
struct State {
    log: HealingLog,
    // The inbox epoch the log holds; behind the inbox's while a rebuild runs.
    epoch: u64,
    // Bumped whenever records join the log.
    generation: u64,
    cache: Vec<Cached>,
}

/// The host's healing analytics, shared by the engine (which adds) and the HTTP threads (which
/// ask for reports).
#[derive(Debug)]
pub struct HealingAnalytics {
    inbox: Mutex<Inbox>,
    state: Mutex<State>,
    rebuilt: Condvar,
    // The default report covers this much time back.
    window_ms: u64,
    computed: std::sync::atomic::AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl HealingAnalytics {
    /// Empty analytics grouping failure types by `labels`, whose default report covers `window`
    /// back from now (the store's `rollup_retention`).
    pub fn new(labels: Vec<String>, window: Duration) -> Self {
        Self {
            inbox: Mutex::new(Inbox {
                records: Vec::new(),
                epoch: 0,
                labels,
            }),
            state: Mutex::new(State {
                log: HealingLog::new(HealingConfig::default()),
                epoch: 0,
                generation: 0,
                cache: Vec::new(),
            }),
            rebuilt: Condvar::new(),
            window_ms: window.as_millis() as u64,
            computed: Default::default(),
        }
    }

    /// The failure-type labels in use.
    pub fn labels(&self) -> Vec<String> {
        lock(&self.inbox).labels.clone()
    }

    /// Adds a settled attempt (one still pending is ignored). Never waits on a report being
    /// computed.
    pub fn add(&self, record: &HealRecord) {
        let mut inbox = lock(&self.inbox);
        let Some(h) = healing_record(record, &inbox.labels) else {
            return;
        };
        inbox.records.push(h);
        if inbox.records.len() < INBOX_LIMIT {
            return;
        }
        // Nobody asked for a while: move the records into the log, unless a report is being
        // computed (then the next one takes them).
        if let Ok(mut state) = self.state.try_lock()
            && state.epoch == inbox.epoch
        {
            Self::take(&mut state, &mut inbox);
        }
    }

    fn take(state: &mut State, inbox: &mut Inbox) {
        if inbox.records.is_empty() {
            return;
        }
        state.log.record_all(&inbox.records);
        inbox.records.clear();
        state.generation += 1;
    }

    /// Rebuilds the log from the store at `path` in the background, from the attempts of the
    /// default window, grouping by `labels` from now on. The store is read as it is now (one read
    /// transaction begun before this returns): what the engine settles afterwards arrives
    /// through [`add`](Self::add), once. Reports wait for the rebuild (at most
    /// [`REBUILD_WAIT`]).
    ///
    /// # Errors
    ///
    /// The store cannot be opened or read.
    pub fn rebuild(
        self: &Arc<Self>,
        path: &Path,
        labels: Vec<String>,
        now_ms: u64,
    ) -> rusqlite::Result<std::thread::JoinHandle<()>> {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // The snapshot starts with the transaction's first read.
        conn.execute_batch("BEGIN")?;
        conn.query_row(
            "SELECT count(*) FROM healing_attempts WHERE id < 0",
            [],
            |_| Ok(()),
        )?;
        let epoch = {
            let mut inbox = lock(&self.inbox);
            inbox.epoch += 1;
            inbox.records.clear();
            inbox.labels.clone_from(&labels);
            inbox.epoch
        };
        let since = now_ms.saturating_sub(self.window_ms);
        let me = self.clone();
        Ok(std::thread::spawn(move || {
            let started = Instant::now();
            let log = match build_log(&conn, since, &labels) {
                Ok(log) => log,
                Err(e) => {
                    tracing::warn!(error = %e, "healing analytics: cannot read the store; starting empty");
                    HealingLog::new(HealingConfig::default())
                }
            };
            drop(conn);
            tracing::debug!(
                records = log.len(),
                seconds = started.elapsed().as_secs_f64(),
                "healing analytics rebuilt"
            );
            let mut state = lock(&me.state);
            if lock(&me.inbox).epoch == epoch {
                state.log = log;
                state.epoch = epoch;
                state.generation += 1;
                state.cache.clear();
            }
            drop(state);
            me.rebuilt.notify_all();
        }))
    }

    /// Changes the failure-type labels: with a store, the log is rebuilt with them; without,
    /// they apply to the attempts that follow. Returns the rebuild, if any.
    pub fn set_labels(
        self: &Arc<Self>,
        labels: Vec<String>,
        store: Option<&Path>,
        now_ms: u64,
    ) -> Option<std::thread::JoinHandle<()>> {
        if lock(&self.inbox).labels == labels {
            return None;
        }
        if let Some(path) = store {
            match self.rebuild(path, labels.clone(), now_ms) {
                Ok(handle) => return Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "healing analytics: cannot rebuild from the store")
                }
            }
        }
        lock(&self.inbox).labels = labels;
        None
    }

    /// How many reports were computed (not served from the cache).
    pub fn computed(&self) -> u64 {
        self.computed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The report over `range` (the default window back from `now_ms` when `None`), from the
    /// cache when nothing arrived since it was computed and it is younger than [`CACHE_FOR`].
    /// `None` when the rebuild from the store did not finish within `wait`.
    pub fn report(
        &self,
        range: Option<TimeRange>,
        now_ms: u64,
        wait: Duration,
    ) -> Option<Computed> {
        let deadline = Instant::now() + wait;
        let mut state = lock(&self.state);
        let labels = loop {
            let mut inbox = lock(&self.inbox);
            if inbox.epoch == state.epoch {
                Self::take(&mut state, &mut inbox);
                break inbox.labels.clone();
            }
            drop(inbox);
            let left = deadline.checked_duration_since(Instant::now())?;
            state = self
                .rebuilt
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        let generation = state.generation;
        if let Some(c) = state
            .cache
            .iter()
            .find(|c| c.key == range && c.generation == generation && c.at.elapsed() < CACHE_FOR)
        {
            return Some(c.computed.clone());
        }
        let effective = range.unwrap_or_else(|| {
            TimeRange::new(
                now_ms.saturating_sub(self.window_ms),
                now_ms.saturating_add(1),
            )
        });
        let computed = compute(&state.log, effective, now_ms, labels);
        self.computed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        state.cache.retain(|c| c.key != range);
        if state.cache.len() >= CACHE_ENTRIES {
            state.cache.remove(0);
        }
        state.cache.push(Cached {
            key: range,
            generation,
            at: Instant::now(),
            computed: computed.clone(),
        });
        Some(computed)
    }

    /// `GET /api/healing[?from=&to=]`: the report as JSON; `from` and `to` are RFC 3339 or unix
    /// seconds.
    pub fn handle(&self, request: &Request<'_>, now_ms: u64) -> Response {
        const TEXT: &str = "text/plain; charset=utf-8";
        if !matches!(request.method, "GET" | "HEAD") {
            return Response::method_not_allowed("GET, HEAD");
        }
        let range = match parse_range(request.query, now_ms) {
            Ok(r) => r,
            Err(message) => return Response::new(400, TEXT, format!("{message}\n")),
        };
        match self.report(range, now_ms, REBUILD_WAIT) {
            Some(c) => Response::new(200, "application/json", c.json),
            None => Response::new(
                503,
                TEXT,
                "the healing history is still being read from the store; try again\n",
            ),
        }
    }

    /// The headline gauges for `/metrics`, over the default window; empty while the log is
    /// rebuilt.
    pub fn metrics(&self, now_ms: u64) -> Bytes {
        self.report(None, now_ms, Duration::ZERO)
            .map(|c| c.metrics)
            .unwrap_or_default()
    }
}

/// `from` and `to` of a query string; both absent: `None`.
fn parse_range(query: &str, now_ms: u64) -> Result<Option<TimeRange>, String> {
    let (mut from, mut to) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match k {
            "from" => &mut from,
            "to" => &mut to,
            _ => return Err(format!("unknown parameter `{k}`: use `from` and `to`")),
        };
        let ms = crate::query::parse_time(&crate::query::decode(v))
            .map_err(|e| format!("`{k}`: {e}"))?;
        *slot = Some(u64::try_from(ms).map_err(|_| format!("`{k}`: before 1970"))?);
    }
    if from.is_none() && to.is_none() {
        return Ok(None);
    }
    let (from, to) = (from.unwrap_or(0), to.unwrap_or(now_ms.saturating_add(1)));
    if to <= from {
        return Err("`to` must be after `from`".into());
    }
    Ok(Some(TimeRange::new(from, to)))
}

/// The report over `range`, its MTTR trend and gauges.
fn compute(log: &HealingLog, range: TimeRange, now_ms: u64, labels: Vec<String>) -> Computed {
    let report = log.report(now_ms, Some(range));
    let mttr_trend = mttr_trend(log, &report, range);
    let metrics = gauges(&report).into_bytes().into();
    let view = HealingView {
        report,
        mttr_trend,
        failure_type_labels: labels,
    };
    let json = serde_json::to_vec(&view)
        .expect("a report serialises")
        .into();
    Computed { json, metrics }
}

/// MTTR by failure type over the earlier and the later half of the records' span in `range`.
fn mttr_trend(log: &HealingLog, report: &HealingReport, range: TimeRange) -> Vec<MttrTrend> {
    let (Some(first), Some(last)) = (
        report.overall.first_detected_ms,
        report.overall.last_detected_ms,
    ) else {
        return Vec::new();
    };
    let mid = first / 2 + last / 2;
    let earlier = log.mttr(Some(TimeRange::new(range.from_ms.max(first), mid)));
    let recent = log.mttr(Some(TimeRange::new(
        mid,
        range.to_ms.min(last.saturating_add(1)).max(mid),
    )));
    let cfg = log.config();
    let find =
        |list: &[(String, MttrStats)], t: &str| list.iter().find(|(n, _)| n == t).map(|x| x.1);
    let mut out: Vec<MttrTrend> = report
        .mttr
        .by_failure_type
        .iter()
        .map(|(t, _)| {
            let (e, r) = (
                find(&earlier.by_failure_type, t),
                find(&recent.by_failure_type, t),
            );
            let trend = match (e, r) {
                (Some(e), Some(r)) if e.count >= cfg.min_samples && r.count >= cfg.min_samples => {
                    classify(
                        e.mean_ms,
                        r.mean_ms,
                        Direction::LowerIsBetter,
                        cfg.trend_tolerance,
                    )
                }
                _ => Trend::Stable,
            };
            MttrTrend {
                failure_type: t.clone(),
                earlier: e,
                recent: r,
                trend,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        let m = |x: &MttrTrend| x.recent.map_or(0.0, |s| s.mean_ms);
        m(b).total_cmp(&m(a))
            .then_with(|| a.failure_type.cmp(&b.failure_type))
    });
    out
}

/// The headline figures as Prometheus gauges.
fn gauges(report: &HealingReport) -> String {
    let mut fam = Families::sorted();
    for e in &report.effectiveness {
        fam.add(
            "monitor_healing_success_ratio",
            MetricType::Gauge,
            "share of healing attempts verified by the alert's resolution, per strategy (see /api/healing)",
            [("strategy", e.strategy.as_str())],
            e.success_rate,
        );
    }
    for (t, s) in &report.mttr.by_failure_type {
        fam.add(
            "monitor_healing_mttr_seconds",
            MetricType::Gauge,
            "median time from an alert firing to its verified recovery, per failure type",
            [("failure_type", t.as_str())],
            s.p50_ms / 1000.0,
        );
    }
    let none: [(&str, &str); 0] = [];
    let o = &report.overall;
    if o.total_healings > 0 {
        fam.add(
            "monitor_healing_verified_ratio",
            MetricType::Gauge,
            "share of all healing attempts verified by the alert's resolution",
            none,
            o.success_rate,
        );
    }
    fam.add(
        "monitor_healing_recommendations",
        MetricType::Gauge,
        "healing recommendations standing (see /api/healing)",
        none,
        report.recommendations.len() as f64,
    );
    fam.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heal(alert: &str, labels: &[(&str, &str)], verified: Option<bool>) -> HealRecord {
        HealRecord {
            strategy: "restart".into(),
            alert: alert.into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            attempt: 1,
            success: true,
            message: String::new(),
            duration_ms: 500,
            started_ms: 10_000,
            detected_ms: 4_000,
            verified,
            recovered_ms: verified.filter(|v| *v).map(|_| 34_000),
            reason: None,
        }
    }

    #[test]
    fn failure_types_name_the_alert_and_the_chosen_labels_it_carries() {
        let labels: Labels = [("service", "api"), ("pod", "a\"1"), ("zone", "x")]
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        assert_eq!(failure_type("down", &labels, &[]), "down");
        let chosen = ["service".to_owned(), "missing".to_owned(), "pod".to_owned()];
        assert_eq!(
            failure_type("down", &labels, &chosen),
            r#"down{service="api",pod="a\"1"}"#,
            "in the order chosen, absent labels left out, values quoted"
        );
    }

    #[test]
    fn conversion_takes_the_verified_outcome_and_the_recovery() {
        let chosen = ["service".to_owned()];
        let ok = healing_record(&heal("down", &[("service", "api")], Some(true)), &chosen).unwrap();
        assert_eq!(
            ok,
            HealingRecord {
                strategy: "restart".into(),
                failure_type: r#"down{service="api"}"#.into(),
                source: r#"{service="api"}"#.into(),
                detected_at_ms: 4_000,
                action_started_ms: 10_000,
                action_ended_ms: 10_500,
                success: true,
                recovered_at_ms: Some(34_000),
                attempt: 1,
            }
        );
        // Reported success, but the alert kept firing: a failure, without recovery.
        let mut r = heal("down", &[], Some(false));
        r.recovered_ms = Some(99_000);
        let failed = healing_record(&r, &chosen).unwrap();
        assert!(!failed.success);
        assert_eq!(failed.recovered_at_ms, None);
        assert_eq!(
            failed.source, "down",
            "no labels: the alert names the source"
        );
        assert_eq!(
            healing_record(&heal("down", &[], None), &chosen),
            None,
            "pending"
        );
    }

    fn json(c: &Computed) -> serde_json::Value {
        serde_json::from_slice(&c.json).unwrap()
    }

    #[test]
    fn the_cache_serves_until_an_attempt_arrives() {
        let a = HealingAnalytics::new(vec![], Duration::from_secs(86_400));
        let now = 100_000;
        let first = a.report(None, now, Duration::ZERO).unwrap();
        assert_eq!(json(&first)["overall"]["total_healings"], 0);
        let again = a.report(None, now, Duration::ZERO).unwrap();
        assert_eq!(a.computed(), 1, "served from the cache");
        assert!(std::ptr::eq(first.json.as_ptr(), again.json.as_ptr()));
        a.add(&heal("down", &[], Some(true)));
        a.add(&heal("down", &[], None));
        let after = a.report(None, now, Duration::ZERO).unwrap();
        assert_eq!(a.computed(), 2, "a new attempt invalidates it");
        assert_eq!(
            json(&after)["overall"]["total_healings"],
            1,
            "the pending one is not in"
        );
        assert_eq!(json(&after)["overall"]["successful_healings"], 1);
        // Another range is cached apart.
        let range = Some(TimeRange::new(50_000, 60_000));
        let none = a.report(range, now, Duration::ZERO).unwrap();
        assert_eq!(json(&none)["overall"]["total_healings"], 0);
        a.report(None, now, Duration::ZERO).unwrap();
        assert_eq!(a.computed(), 3);
        let metrics = String::from_utf8(a.metrics(now).to_vec()).unwrap();
        assert!(
            metrics.contains("monitor_healing_success_ratio{strategy=\"restart\"} 1\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("monitor_healing_mttr_seconds{failure_type=\"down\"} 30\n"),
            "{metrics}"
        );
    }

    #[test]
    fn ranges_parse_both_time_forms_and_refuse_bad_ones() {
        assert_eq!(parse_range("", 5).unwrap(), None);
        assert_eq!(
            parse_range("from=1000&to=2026-01-01T00:00:00Z", 5).unwrap(),
            Some(TimeRange::new(1_000_000, 1_767_225_600_000))
        );
        assert_eq!(
            parse_range("from=10", 50_000).unwrap(),
            Some(TimeRange::new(10_000, 50_001))
        );
        assert!(
            parse_range("from=yesterday", 5)
                .unwrap_err()
                .contains("`from`")
        );
        assert!(parse_range("to=5&from=9", 5).unwrap_err().contains("after"));
        assert!(
            parse_range("since=5", 5)
                .unwrap_err()
                .contains("unknown parameter")
        );
        assert!(parse_range("from=-5", 5).is_err());
    }
}
