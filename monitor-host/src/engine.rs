//! The engine: plugin instances on their workers, the collect-alert-notify-heal cycle, and what it
//! knows (series, alerts, healing history, plugin health).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use monitor_plugin::abi::PluginKind;
use monitor_plugin::{
    Collection, Failure, HealOutcome, Labels, Notification, NotificationStatus, SampleKind,
    Severity,
};
use serde::{Deserialize, Serialize};

use crate::alert::{AlertEngine, AlertKey, AlertState, Transition};
use crate::config::{Config, ConfigError, ConfigErrors, HostConfig, PluginSpec};
use crate::library::{CallFailure, PluginLibrary};
use crate::store::{SeriesKey, Store};
use crate::worker::{Done, Worker, WorkerSpec};

/// Most healing records and events kept in memory.
pub const HISTORY_LIMIT: usize = 1000;
/// Most notifications queued per notifier; older ones are dropped (and counted) beyond it.
pub const NOTIFY_QUEUE_LIMIT: usize = 1000;
/// Longest back-off, as a multiple of the instance's base interval.
pub const MAX_BACKOFF_FACTOR: u32 = 32;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Health figures of one plugin instance, as served in `/metrics` and the snapshot.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PluginStats {
    /// Calls made.
    pub calls: u64,
    /// Calls that returned an error or output the host could not read.
    pub errors: u64,
    /// Calls abandoned after the timeout.
    pub timeouts: u64,
    /// Calls that panicked inside the plugin.
    pub panics: u64,
    /// Failures in a row; 0 after a success.
    pub consecutive_failures: u32,
    /// No calls are made before this time (ms since epoch) because the instance keeps failing.
    pub backoff_until_ms: Option<u64>,
    /// Last success, ms since epoch.
    pub last_success_ms: Option<u64>,
    /// Duration of the last finished call, in seconds.
    pub last_call_seconds: Option<f64>,
    /// Last failure's text.
    pub last_error: Option<String>,
    /// Samples returned by the last successful collect: 0 means quiet, not stuck.
    pub last_samples: Option<usize>,
    /// A call is running now.
    pub busy: bool,
    /// A call has been running for longer than the timeout.
    pub stuck: bool,
    /// Calls skipped because the previous one was still running.
    pub skipped: u64,
    /// Notifications dropped because the queue was full (notifiers).
    pub dropped: u64,
}

/// One plugin instance as the engine sees it.
#[derive(Debug, Serialize)]
pub struct PluginStatus {
    /// Collector, strategy or notifier.
    pub kind: &'static str,
    /// Instance name.
    pub name: String,
    /// Plugin name in its library.
    pub plugin: String,
    /// Plugin version.
    pub version: String,
    /// ABI version of its library.
    pub abi_version: u32,
    /// SDK version its library was built with.
    pub sdk_version: String,
    /// Library path (none for plugins linked into the host).
    pub library: Option<PathBuf>,
    /// Health figures.
    pub stats: PluginStats,
}

/// One healing attempt and its outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealRecord {
    /// Strategy instance.
    pub strategy: String,
    /// Alert it acted on.
    pub alert: String,
    /// The alert's series labels.
    pub labels: Labels,
    /// 1, 2, 3...
    pub attempt: u32,
    /// Whether the strategy reported success.
    pub success: bool,
    /// What it said, or why it failed to run.
    pub message: String,
    /// How long it took, in ms.
    pub duration_ms: u64,
    /// When it started, ms since epoch.
    pub started_ms: u64,
}

/// An event reported by a collector, or by the engine itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
    /// Who reported it (collector instance, or `host`).
    pub source: String,
    /// Kind.
    pub kind: String,
    /// Text.
    pub message: String,
    /// Labels.
    pub labels: Labels,
    /// When, ms since epoch.
    pub timestamp_ms: u64,
}

/// What one cycle did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CycleStats {
    /// Cycle start, ms since epoch.
    pub at_ms: u64,
    /// Wall time the cycle took, in seconds.
    pub duration_seconds: f64,
    /// Collectors called.
    pub collected: usize,
    /// Collectors that failed or timed out.
    pub failed: usize,
    /// Notifications queued.
    pub notifications: usize,
    /// Healing attempts started.
    pub heals: usize,
}

/// What `shutdown` did for each instance.
#[derive(Debug, Clone, Serialize)]
pub struct ShutdownOutcome {
    /// Instance name.
    pub name: String,
    /// Kind.
    pub kind: &'static str,
    /// `ok`, the error text, or `abandoned: ...` for an instance stuck in a call.
    pub result: String,
}

#[derive(Debug)]
enum Purpose {
    Collect,
    Notify,
    Heal {
        strategy: usize,
        key: AlertKey,
        failure: Failure,
    },
}

#[derive(Debug)]
struct InFlight {
    job: u64,
    started: Instant,
    started_ms: u64,
    deadline: Instant,
    timed_out: bool,
    purpose: Purpose,
}

#[derive(Debug)]
struct Slot {
    kind: PluginKind,
    name: String,
    plugin: String,
    version: String,
    library: std::sync::Arc<PluginLibrary>,
    worker: Option<Worker>,
    timeout: Duration,
    base_backoff_ms: u64,
    in_flight: Option<InFlight>,
    stats: PluginStats,
}

impl Slot {
    fn available(&self, now_ms: u64) -> bool {
        self.in_flight.is_none()
            && self.worker.is_some()
            && self.stats.backoff_until_ms.is_none_or(|t| t <= now_ms)
    }

    fn succeeded(&mut self, now_ms: u64) {
        self.stats.consecutive_failures = 0;
        self.stats.backoff_until_ms = None;
        self.stats.last_success_ms = Some(now_ms);
        self.stats.last_error = None;
    }

    fn failed(&mut self, now_ms: u64, failure: &CallFailure) {
        match failure {
            CallFailure::Panicked(_) => self.stats.panics += 1,
            CallFailure::Error(_) | CallFailure::Invalid(_) => self.stats.errors += 1,
        }
        self.stats.last_error = Some(failure.to_string());
        self.back_off(now_ms);
    }

    fn back_off(&mut self, now_ms: u64) {
        self.stats.consecutive_failures = self.stats.consecutive_failures.saturating_add(1);
        // The first failure waits one base interval (the usual schedule); each further failure
        // doubles it, up to MAX_BACKOFF_FACTOR.
        let factor = 1u64 << (self.stats.consecutive_failures - 1).min(MAX_BACKOFF_FACTOR.ilog2());
        self.stats.backoff_until_ms = Some(now_ms + self.base_backoff_ms * factor);
    }

    fn status(&self) -> PluginStatus {
        let mut stats = self.stats.clone();
        stats.busy = self.in_flight.is_some();
        stats.stuck = self.in_flight.as_ref().is_some_and(|f| f.timed_out);
        PluginStatus {
            kind: self.kind.as_str(),
            name: self.name.clone(),
            plugin: self.plugin.clone(),
            version: self.version.clone(),
            abi_version: self.library.abi_version,
            sdk_version: self.library.sdk_version.clone(),
            library: self.library.path.clone(),
            stats,
        }
    }
}

#[derive(Debug)]
struct CollectorState {
    slot: usize,
    interval_ms: u64,
    next_due_ms: u64,
}

#[derive(Debug)]
struct NotifierState {
    slot: usize,
    min_severity: Severity,
    queue: VecDeque<Vec<u8>>,
}

#[derive(Debug, Default)]
struct AttemptLog {
    times: VecDeque<u64>,
    episode_attempts: u32,
    last_attempt_ms: Option<u64>,
    escalated: bool,
    in_flight: bool,
    last_message: String,
}

#[derive(Debug)]
struct StrategyState {
    slot: usize,
    on: Vec<String>,
    max_attempts: u32,
    within_ms: u64,
    cooldown_ms: u64,
    attempts: HashMap<AlertKey, AttemptLog>,
}

/// The monitoring engine. Single-threaded: one owner drives [`cycle`](Self::cycle); plugin calls run
/// on their own workers.
#[derive(Debug)]
pub struct Engine {
    host: HostConfig,
    slots: Vec<Slot>,
    collectors: Vec<CollectorState>,
    notifiers: Vec<NotifierState>,
    strategies: Vec<StrategyState>,
    done_rx: Receiver<Done>,
    // Kept so the channel stays open while workers come and go.
    _done_tx: Sender<Done>,
    store: Store,
    alerts: AlertEngine,
    healing: VecDeque<HealRecord>,
    events: VecDeque<EventRecord>,
    next_job: u64,
    cycles: u64,
    last_cycle: Option<CycleStats>,
    started_ms: u64,
    // The time of the last cycle: `settle` works on the same clock as the cycles it follows.
    clock_ms: u64,
}

impl Engine {
    /// Loads every library the config names, checks the plugins exist, and starts a configured
    /// instance of each on its worker. Nothing is left running when anything fails.
    ///
    /// # Errors
    ///
    /// Every missing or unloadable library, ABI mismatch, unknown plugin and `configure` error,
    /// each at the config line of the key concerned.
    ///
    /// # Safety
    ///
    /// Runs code from the libraries named in the config (see [`PluginLibrary::load`]): the config must
    /// only name libraries you trust.
    pub unsafe fn load(config: &Config) -> Result<Engine, ConfigErrors> {
        let (done_tx, done_rx) = unbounded();
        let mut errors = Vec::new();
        let mut slots: Vec<Slot> = Vec::new();
        let max_interval = config
            .collectors
            .iter()
            .map(|c| c.interval)
            .chain([config.host.interval])
            .max()
            .unwrap_or(config.host.interval);
        let interval_of = |spec: &PluginSpec| {
            config
                .collectors
                .iter()
                .find(|c| c.plugin.name == spec.name && spec.kind == PluginKind::Collector)
                .map_or(config.host.interval, |c| c.interval)
        };
        for spec in config.plugins() {
            let err = |at: &crate::config::Location, message: String| ConfigError {
                location: at.clone(),
                message,
            };
            // SAFETY: forwarded to our caller, who vouches for the configured libraries.
            let library = match unsafe { PluginLibrary::load(&spec.library) } {
                Ok(l) => l,
                Err(e) => {
                    errors.push(err(&spec.library_at, format!("`library`: {e}")));
                    continue;
                }
            };
            let Some(info) = library.find(spec.kind, &spec.plugin).cloned() else {
                let mut offered: Vec<String> = library
                    .plugins
                    .iter()
                    .map(|p| format!("{} `{}`", p.kind.as_str(), p.name))
                    .collect();
                offered.sort();
                errors.push(err(
                    &spec.plugin_at,
                    format!(
                        "`plugin`: `{}` has no {} named `{}`; it provides: {}",
                        spec.library.display(),
                        spec.kind.as_str(),
                        spec.plugin,
                        if offered.is_empty() {
                            "nothing".to_owned()
                        } else {
                            offered.join(", ")
                        }
                    ),
                ));
                continue;
            };
            let slot = slots.len();
            let thread_name = format!("{}-{}", spec.kind.as_str(), spec.name);
            let start = WorkerSpec {
                slot,
                thread_name,
                library: library.clone(),
                plugin: info.clone(),
                config: spec.config.clone(),
                max_payload: config.host.max_payload,
                timeout: spec.timeout,
            };
            match Worker::start(start, done_tx.clone()) {
                Ok(worker) => slots.push(Slot {
                    kind: spec.kind,
                    name: spec.name.clone(),
                    plugin: spec.plugin.clone(),
                    version: info.version.clone(),
                    library,
                    worker: Some(worker),
                    timeout: spec.timeout,
                    base_backoff_ms: interval_of(spec).as_millis() as u64,
                    in_flight: None,
                    stats: PluginStats::default(),
                }),
                Err(e) => errors.push(err(
                    &spec.config_at,
                    format!("plugin `{}` refused its config: {e}", spec.plugin),
                )),
            }
        }
        if !errors.is_empty() {
            for s in slots {
                if let Some(w) = s.worker {
                    let _ = w.shutdown(s.timeout);
                }
            }
            errors.sort_by_key(|e| (e.location.line, e.location.column));
            return Err(ConfigErrors(errors));
        }
        // `config.plugins()` yields collectors, then notifiers, then strategies, so slot indices
        // follow that order.
        let nc = config.collectors.len();
        let nn = config.notifiers.len();
        let collectors = config
            .collectors
            .iter()
            .enumerate()
            .map(|(i, c)| CollectorState {
                slot: i,
                interval_ms: c.interval.as_millis() as u64,
                next_due_ms: 0,
            })
            .collect();
        let notifiers = config
            .notifiers
            .iter()
            .enumerate()
            .map(|(i, n)| NotifierState {
                slot: nc + i,
                min_severity: n.min_severity,
                queue: VecDeque::new(),
            })
            .collect();
        let strategies = config
            .strategies
            .iter()
            .enumerate()
            .map(|(i, s)| StrategyState {
                slot: nc + nn + i,
                on: s.on.clone(),
                max_attempts: s.max_attempts,
                within_ms: s.within.as_millis() as u64,
                cooldown_ms: s.cooldown.as_millis() as u64,
                attempts: HashMap::new(),
            })
            .collect();
        // A series not refreshed for three of the slowest intervals no longer counts for alerts.
        let stale_ms = 3 * max_interval.as_millis() as u64;
        Ok(Engine {
            host: config.host.clone(),
            slots,
            collectors,
            notifiers,
            strategies,
            done_rx,
            _done_tx: done_tx,
            store: Store::new(config.host.retention.as_millis() as u64),
            alerts: AlertEngine::new(config.alerts.clone(), stale_ms),
            healing: VecDeque::new(),
            events: VecDeque::new(),
            next_job: 0,
            cycles: 0,
            last_cycle: None,
            started_ms: now_ms(),
            clock_ms: now_ms(),
        })
    }

    /// The `[host]` settings.
    pub fn host(&self) -> &HostConfig {
        &self.host
    }

    /// The longest per-call timeout of any instance.
    pub fn longest_timeout(&self) -> Duration {
        self.slots
            .iter()
            .map(|s| s.timeout)
            .max()
            .unwrap_or_default()
    }

    /// When the next collector is due, ms since epoch.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.collectors.iter().map(|c| c.next_due_ms).min()
    }

    /// Runs one cycle at `now_ms`: collectors that are due (waiting for each up to its timeout, all
    /// in parallel), alert evaluation, notifications and healing attempts (started, not awaited).
    pub fn cycle(&mut self, now_ms: u64) -> CycleStats {
        let started = Instant::now();
        let mut stats = CycleStats {
            at_ms: now_ms,
            ..CycleStats::default()
        };
        self.clock_ms = now_ms;
        self.drain(now_ms);
        self.flag_timeouts(now_ms, Instant::now());

        let mut waiting: Vec<(usize, u64)> = Vec::new();
        for ci in 0..self.collectors.len() {
            let (slot, interval, due) = {
                let c = &self.collectors[ci];
                (c.slot, c.interval_ms, c.next_due_ms)
            };
            if due > now_ms {
                continue;
            }
            self.collectors[ci].next_due_ms = now_ms + interval;
            if self.slots[slot].in_flight.is_some() {
                self.slots[slot].stats.skipped += 1;
                continue;
            }
            if !self.slots[slot].available(now_ms) {
                continue;
            }
            let job = self.dispatch(slot, Vec::new(), Purpose::Collect, now_ms);
            waiting.push((slot, job));
            stats.collected += 1;
        }
        // Wait for this cycle's collectors, each until its own deadline.
        while let Some(deadline) = waiting
            .iter()
            .filter(|(s, j)| {
                self.slots[*s]
                    .in_flight
                    .as_ref()
                    .is_some_and(|f| f.job == *j)
            })
            .filter_map(|(s, _)| self.slots[*s].in_flight.as_ref().map(|f| f.deadline))
            .filter(|d| *d > Instant::now())
            .max()
        {
            match self.done_rx.recv_deadline(deadline) {
                Ok(done) => self.handle(done, now_ms),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.flag_timeouts(now_ms, Instant::now());
        stats.failed = waiting
            .iter()
            .filter(|(s, _)| {
                self.slots[*s].stats.consecutive_failures > 0 || self.slots[*s].in_flight.is_some()
            })
            .count();

        self.record_self_metrics(now_ms, started.elapsed());
        self.store.expire(now_ms);
        let transitions = self.alerts.evaluate(&self.store, now_ms);
        for t in &transitions {
            stats.notifications += self.on_transition(t);
        }
        stats.heals = self.heal(now_ms, &mut stats.notifications);
        self.pump(now_ms);

        self.cycles += 1;
        stats.duration_seconds = started.elapsed().as_secs_f64();
        self.last_cycle = Some(stats.clone());
        stats
    }

    /// Waits, at most `limit`, until no call started by the engine is still running (stuck calls
    /// past their timeout excepted) and no notification is queued. Used by `run --once`, tests and
    /// shutdown.
    pub fn settle(&mut self, limit: Duration) {
        let end = Instant::now() + limit;
        loop {
            let now = self.clock_ms;
            self.drain(now);
            self.flag_timeouts(now, Instant::now());
            self.pump(now);
            let pending_deadline = self
                .slots
                .iter()
                .filter_map(|s| s.in_flight.as_ref())
                .filter(|f| !f.timed_out)
                .map(|f| f.deadline)
                .min();
            let queued = self
                .notifiers
                .iter()
                .any(|n| !n.queue.is_empty() && self.slots[n.slot].available(now));
            let until = match pending_deadline {
                Some(d) => d.min(end),
                None if queued => Instant::now() + Duration::from_millis(1),
                None => return,
            };
            if Instant::now() >= end {
                return;
            }
            if let Ok(done) = self.done_rx.recv_deadline(until) {
                self.handle(done, now);
            }
        }
    }

    /// Processes results that arrived since the last look, without blocking.
    pub fn poll(&mut self) {
        let now = now_ms();
        self.drain(now);
        self.pump(now);
    }

    /// A receiver that wakes when a plugin call finishes, for a run loop to wait on.
    pub fn completions(&self) -> &Receiver<Done> {
        &self.done_rx
    }

    /// Handles one completion received from [`completions`](Self::completions).
    pub fn complete(&mut self, done: Done) {
        let now = now_ms();
        self.handle(done, now);
        self.pump(now);
    }

    /// Lets running calls finish (up to the longest timeout), then calls every instance's
    /// `shutdown` and reports how each went. Instances stuck in a call are abandoned.
    pub fn shutdown(mut self) -> Vec<ShutdownOutcome> {
        let longest = self
            .slots
            .iter()
            .map(|s| s.timeout)
            .max()
            .unwrap_or_default();
        self.settle(longest);
        let mut out = Vec::new();
        for s in &mut self.slots {
            let result = match (s.worker.take(), &s.in_flight) {
                (Some(_), Some(f)) => {
                    format!(
                        "abandoned: a call has been running for {:?}",
                        f.started.elapsed()
                    )
                }
                (Some(w), None) => match w.shutdown(s.timeout) {
                    Some(Ok(())) => "ok".to_owned(),
                    Some(Err(e)) => e.to_string(),
                    None => format!("abandoned: shutdown did not return within {:?}", s.timeout),
                },
                (None, _) => "not running".to_owned(),
            };
            out.push(ShutdownOutcome {
                name: s.name.clone(),
                kind: s.kind.as_str(),
                result,
            });
        }
        out
    }

    fn dispatch(&mut self, slot: usize, input: Vec<u8>, purpose: Purpose, now_ms: u64) -> u64 {
        self.next_job += 1;
        let job = self.next_job;
        let s = &mut self.slots[slot];
        let started = Instant::now();
        s.in_flight = Some(InFlight {
            job,
            started,
            started_ms: now_ms,
            deadline: started + s.timeout,
            timed_out: false,
            purpose,
        });
        s.stats.calls += 1;
        if let Some(w) = &s.worker {
            w.submit(job, input);
        }
        job
    }

    fn drain(&mut self, now_ms: u64) {
        while let Ok(done) = self.done_rx.try_recv() {
            self.handle(done, now_ms);
        }
    }

    fn flag_timeouts(&mut self, now_ms: u64, now: Instant) {
        for si in 0..self.slots.len() {
            let s = &mut self.slots[si];
            let Some(f) = s.in_flight.as_mut() else {
                continue;
            };
            if f.timed_out || now < f.deadline {
                continue;
            }
            f.timed_out = true;
            let heal = match &f.purpose {
                Purpose::Heal {
                    strategy,
                    key,
                    failure,
                } => Some((*strategy, key.clone(), failure.clone(), f.started_ms)),
                _ => None,
            };
            s.stats.timeouts += 1;
            s.stats.last_error = Some(format!("call did not return within {:?}", s.timeout));
            s.back_off(now_ms);
            let name = s.name.clone();
            let message = format!("timed out after {:?}", s.timeout);
            if let Some((strategy, key, failure, started_ms)) = heal {
                self.record_heal(strategy, &key, &failure, false, message, 0, started_ms);
            }
            self.event(
                "host",
                "plugin_timeout",
                format!("{name}: call did not return in time"),
                now_ms,
            );
        }
    }

    fn handle(&mut self, done: Done, now_ms: u64) {
        let Some(s) = self.slots.get_mut(done.slot) else {
            return;
        };
        let Some(f) = s.in_flight.take_if(|f| f.job == done.job) else {
            return;
        };
        s.stats.last_call_seconds = Some(done.elapsed.as_secs_f64());
        if f.timed_out {
            // Too late: its outcome was already counted as a timeout. The worker is free again.
            return;
        }
        match f.purpose {
            Purpose::Collect => {
                let parsed = done.result.and_then(|bytes| {
                    serde_json::from_slice::<Collection>(&bytes).map_err(|e| {
                        CallFailure::Invalid(format!(
                            "collector output is not a valid collection: {e}"
                        ))
                    })
                });
                match parsed {
                    Ok(c) => {
                        let s = &mut self.slots[done.slot];
                        s.succeeded(now_ms);
                        s.stats.last_samples = Some(c.samples.len());
                        let source = s.name.clone();
                        self.ingest(&source, c, now_ms);
                    }
                    Err(e) => self.slots[done.slot].failed(now_ms, &e),
                }
            }
            Purpose::Notify => match done.result {
                Ok(_) => self.slots[done.slot].succeeded(now_ms),
                Err(e) => self.slots[done.slot].failed(now_ms, &e),
            },
            Purpose::Heal {
                strategy,
                key,
                failure,
            } => {
                let parsed = done.result.and_then(|bytes| {
                    serde_json::from_slice::<HealOutcome>(&bytes).map_err(|e| {
                        CallFailure::Invalid(format!("strategy output is not a valid outcome: {e}"))
                    })
                });
                match parsed {
                    Ok(o) => {
                        self.slots[done.slot].succeeded(now_ms);
                        self.record_heal(
                            strategy,
                            &key,
                            &failure,
                            o.success,
                            o.message,
                            o.duration_ms,
                            f.started_ms,
                        );
                    }
                    Err(e) => {
                        self.slots[done.slot].failed(now_ms, &e);
                        let ms = done.elapsed.as_millis() as u64;
                        self.record_heal(
                            strategy,
                            &key,
                            &failure,
                            false,
                            e.to_string(),
                            ms,
                            f.started_ms,
                        );
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)] // Reason: one flat record; a builder would only add noise.
    fn record_heal(
        &mut self,
        strategy: usize,
        key: &AlertKey,
        failure: &Failure,
        success: bool,
        message: String,
        duration_ms: u64,
        started_ms: u64,
    ) {
        let st = &mut self.strategies[strategy];
        if let Some(log) = st.attempts.get_mut(key) {
            log.in_flight = false;
            log.last_message.clone_from(&message);
        }
        let name = self.slots[st.slot].name.clone();
        push_bounded(
            &mut self.healing,
            HealRecord {
                strategy: name,
                alert: failure.alert.clone(),
                labels: failure.labels.clone(),
                attempt: failure.attempt,
                success,
                message,
                duration_ms,
                started_ms,
            },
        );
    }

    fn ingest(&mut self, source: &str, c: Collection, now_ms: u64) {
        for sample in c.samples {
            let mut labels = sample.labels;
            labels
                .entry("collector".to_owned())
                .or_insert_with(|| source.to_owned());
            let key = SeriesKey {
                name: sample.name,
                labels,
            };
            self.store.insert(
                key,
                sample.kind,
                source,
                sample.timestamp_ms.unwrap_or(now_ms),
                sample.value,
            );
        }
        for e in c.events {
            push_bounded(
                &mut self.events,
                EventRecord {
                    source: source.to_owned(),
                    kind: e.kind,
                    message: e.message,
                    labels: e.labels,
                    timestamp_ms: e.timestamp_ms.unwrap_or(now_ms),
                },
            );
        }
    }

    fn event(&mut self, source: &str, kind: &str, message: String, now_ms: u64) {
        push_bounded(
            &mut self.events,
            EventRecord {
                source: source.to_owned(),
                kind: kind.to_owned(),
                message,
                labels: Labels::new(),
                timestamp_ms: now_ms,
            },
        );
    }

    fn record_self_metrics(&mut self, now_ms: u64, cycle: Duration) {
        let host_labels = Labels::from([("collector".to_owned(), "host".to_owned())]);
        self.store.insert(
            SeriesKey {
                name: "monitor.host.cycle_duration_seconds".into(),
                labels: host_labels,
            },
            SampleKind::Gauge,
            "host",
            now_ms,
            cycle.as_secs_f64(),
        );
        for s in &self.slots {
            let labels = Labels::from([
                ("collector".to_owned(), "host".to_owned()),
                ("kind".to_owned(), s.kind.as_str().to_owned()),
                ("instance".to_owned(), s.name.clone()),
            ]);
            let stuck = s.in_flight.as_ref().is_some_and(|f| f.timed_out);
            for (name, value) in [
                (
                    "monitor.plugin.consecutive_failures",
                    f64::from(s.stats.consecutive_failures),
                ),
                ("monitor.plugin.stuck", if stuck { 1.0 } else { 0.0 }),
            ] {
                let key = SeriesKey {
                    name: name.into(),
                    labels: labels.clone(),
                };
                self.store
                    .insert(key, SampleKind::Gauge, "host", now_ms, value);
            }
        }
    }

    fn rule_index(&self, name: &str) -> Option<usize> {
        self.alerts.rules().iter().position(|r| r.name == name)
    }

    fn on_transition(&mut self, t: &Transition) -> usize {
        let (rule, labels, value, status, starts, ends) = match t {
            Transition::Fired {
                rule,
                labels,
                value,
                at_ms,
            } => (
                *rule,
                labels,
                *value,
                NotificationStatus::Firing,
                *at_ms,
                None,
            ),
            Transition::Resolved {
                rule,
                labels,
                value,
                started_ms,
                at_ms,
            } => (
                *rule,
                labels,
                *value,
                NotificationStatus::Resolved,
                *started_ms,
                Some(*at_ms),
            ),
        };
        let r = &self.alerts.rules()[rule];
        if status == NotificationStatus::Firing {
            let key: AlertKey = (r.name.clone(), labels.clone());
            for st in &mut self.strategies {
                if st.on.contains(&r.name) {
                    let log = st.attempts.entry(key.clone()).or_default();
                    log.episode_attempts = 0;
                    log.escalated = false;
                }
            }
        }
        let n = Notification {
            status,
            alert: r.name.clone(),
            metric: r.metric.clone(),
            value,
            threshold: r.threshold,
            condition: r.condition.as_str().to_owned(),
            severity: r.severity,
            description: r.description.clone(),
            labels: labels.clone(),
            starts_at_ms: starts,
            ends_at_ms: ends,
            escalation: false,
            host: self.host.name.clone(),
        };
        self.notify(&n)
    }

    fn notify(&mut self, n: &Notification) -> usize {
        let bytes = serde_json::to_vec(n).expect("notifications always serialise");
        let mut queued = 0;
        for ns in &mut self.notifiers {
            if n.severity < ns.min_severity {
                continue;
            }
            if ns.queue.len() == NOTIFY_QUEUE_LIMIT {
                ns.queue.pop_front();
                self.slots[ns.slot].stats.dropped += 1;
            }
            ns.queue.push_back(bytes.clone());
            queued += 1;
        }
        queued
    }

    /// Starts healing attempts for firing alerts, and escalates those healing gave up on.
    fn heal(&mut self, now_ms: u64, notifications: &mut usize) -> usize {
        let mut started = 0;
        let mut escalations = Vec::new();
        for si in 0..self.strategies.len() {
            let firing: Vec<AlertKey> = self
                .alerts
                .statuses()
                .filter(|a| {
                    a.state == AlertState::Firing && self.strategies[si].on.contains(&a.alert)
                })
                .map(|a| (a.alert.clone(), a.labels.clone()))
                .collect();
            for key in firing {
                let slot = self.strategies[si].slot;
                let st = &mut self.strategies[si];
                let (max, within, cooldown) = (st.max_attempts, st.within_ms, st.cooldown_ms);
                let log = st.attempts.entry(key.clone()).or_default();
                if log.in_flight {
                    continue;
                }
                while log.times.front().is_some_and(|&t| t + within <= now_ms) {
                    log.times.pop_front();
                }
                if log.times.len() as u32 >= max {
                    if !log.escalated {
                        log.escalated = true;
                        escalations.push((
                            si,
                            key.clone(),
                            log.times.len(),
                            log.last_message.clone(),
                        ));
                    }
                    continue;
                }
                if log.last_attempt_ms.is_some_and(|t| t + cooldown > now_ms) {
                    continue;
                }
                if !self.slots[slot].available(now_ms) {
                    continue;
                }
                let Some(status) = self
                    .alerts
                    .statuses()
                    .find(|a| a.alert == key.0 && a.labels == key.1)
                    .cloned()
                else {
                    continue;
                };
                let Some(rule) = self
                    .rule_index(&key.0)
                    .map(|i| self.alerts.rules()[i].clone())
                else {
                    continue;
                };
                let st = &mut self.strategies[si];
                let log = st.attempts.entry(key.clone()).or_default();
                log.episode_attempts += 1;
                log.times.push_back(now_ms);
                log.last_attempt_ms = Some(now_ms);
                log.in_flight = true;
                let failure = Failure {
                    alert: rule.name.clone(),
                    metric: rule.metric.clone(),
                    value: status.value,
                    labels: key.1.clone(),
                    severity: rule.severity,
                    attempt: log.episode_attempts,
                    description: rule.description.clone(),
                };
                let input = serde_json::to_vec(&failure).expect("failures always serialise");
                self.dispatch(
                    slot,
                    input,
                    Purpose::Heal {
                        strategy: si,
                        key,
                        failure,
                    },
                    now_ms,
                );
                started += 1;
            }
        }
        for (si, key, attempts, last) in escalations {
            let Some(ri) = self.rule_index(&key.0) else {
                continue;
            };
            let r = self.alerts.rules()[ri].clone();
            let strategy = self.slots[self.strategies[si].slot].name.clone();
            let within = Duration::from_millis(self.strategies[si].within_ms);
            let value = self
                .alerts
                .statuses()
                .find(|a| a.alert == key.0 && a.labels == key.1)
                .map_or(f64::NAN, |a| a.value);
            let n = Notification {
                status: NotificationStatus::Firing,
                alert: r.name.clone(),
                metric: r.metric.clone(),
                value,
                threshold: r.threshold,
                condition: r.condition.as_str().to_owned(),
                severity: Severity::Critical,
                description: format!(
                    "healing gave up: strategy `{strategy}` made {attempts} attempts within {within:?} and `{}` is still firing (last: {last})",
                    r.name
                ),
                labels: key.1.clone(),
                starts_at_ms: now_ms,
                ends_at_ms: None,
                escalation: true,
                host: self.host.name.clone(),
            };
            *notifications += self.notify(&n);
            self.event("host", "healing_gave_up", n.description.clone(), now_ms);
        }
        started
    }

    /// Hands queued notifications to notifiers that are free.
    fn pump(&mut self, now_ms: u64) {
        for ni in 0..self.notifiers.len() {
            let slot = self.notifiers[ni].slot;
            if !self.slots[slot].available(now_ms) {
                continue;
            }
            if let Some(bytes) = self.notifiers[ni].queue.pop_front() {
                self.dispatch(slot, bytes, Purpose::Notify, now_ms);
            }
        }
    }

    /// Reloads history saved by a previous run (the JSON of
    /// [`render::snapshot_json`](crate::render::snapshot_json)): series points within the retention,
    /// healing records and events. Alert states are not restored; they are re-evaluated.
    ///
    /// # Errors
    ///
    /// The text is not a snapshot.
    pub fn restore(&mut self, snapshot: &str, now_ms: u64) -> Result<(), serde_json::Error> {
        #[derive(Deserialize)]
        struct Saved {
            #[serde(default)]
            series: Vec<SavedSeries>,
            #[serde(default)]
            healing: Vec<HealRecord>,
            #[serde(default)]
            events: Vec<EventRecord>,
        }
        #[derive(Deserialize)]
        struct SavedSeries {
            name: String,
            labels: Labels,
            kind: SampleKind,
            points: Vec<(u64, f64)>,
        }
        let saved: Saved = serde_json::from_str(snapshot)?;
        for s in saved.series {
            let source = s.labels.get("collector").cloned().unwrap_or_default();
            let key = SeriesKey {
                name: s.name,
                labels: s.labels,
            };
            for (t, v) in s.points {
                self.store.insert(key.clone(), s.kind, &source, t, v);
            }
        }
        self.store.expire(now_ms);
        for h in saved.healing {
            push_bounded(&mut self.healing, h);
        }
        for ev in saved.events {
            push_bounded(&mut self.events, ev);
        }
        Ok(())
    }

    /// Every series with its latest value.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Every alert instance.
    pub fn alerts(&self) -> &AlertEngine {
        &self.alerts
    }

    /// Healing attempts, oldest first (the last [`HISTORY_LIMIT`]).
    pub fn healing(&self) -> impl Iterator<Item = &HealRecord> {
        self.healing.iter()
    }

    /// Events, oldest first (the last [`HISTORY_LIMIT`]).
    pub fn events(&self) -> impl Iterator<Item = &EventRecord> {
        self.events.iter()
    }

    /// Every plugin instance's status.
    pub fn plugins(&self) -> Vec<PluginStatus> {
        self.slots.iter().map(Slot::status).collect()
    }

    /// Cycles run so far.
    pub fn cycles(&self) -> u64 {
        self.cycles
    }

    /// The last cycle's figures.
    pub fn last_cycle(&self) -> Option<&CycleStats> {
        self.last_cycle.as_ref()
    }

    /// When the engine started, ms since epoch.
    pub fn started_ms(&self) -> u64 {
        self.started_ms
    }

    /// Notifications waiting per notifier instance.
    pub fn queued_notifications(&self) -> BTreeMap<String, usize> {
        self.notifiers
            .iter()
            .map(|n| (self.slots[n.slot].name.clone(), n.queue.len()))
            .collect()
    }
}

fn push_bounded<T>(q: &mut VecDeque<T>, v: T) {
    if q.len() == HISTORY_LIMIT {
        q.pop_front();
    }
    q.push_back(v);
}
