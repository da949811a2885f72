//! The engine: plugin instances on their workers and the collect-alert-notify-heal cycle.
//!
//! `running` supervises one plugin instance (in-flight call, timeout, back-off, stats), `notify`
//! turns transitions into queued notifications, `healing` decides healing attempts from the alert
//! transitions of each cycle; this module schedules them.

mod healing;
mod notify;
mod running;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use monitor_plugin::{Collection, Failure, HealOutcome, Labels, Notification, SampleKind};
use serde::Serialize;

use self::healing::{HealJob, Healing, Strategy};
pub use self::notify::NOTIFY_QUEUE_LIMIT;
use self::notify::{Notifier, Notifiers};
use self::running::{Launcher, Purpose, RunningPlugin};
pub use self::running::{MAX_BACKOFF_FACTOR, PluginStats, PluginStatus, ShutdownOutcome};
use crate::alert::AlertEngine;
use crate::config::{Config, ConfigErrors, HostConfig};
use crate::history::{self, EventRecord, HealRecord, History, HistoryError};
use crate::library::CallFailure;
use crate::store::{SeriesKey, Store};
use crate::worker::Done;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
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

/// A notification a dry run would have queued.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedNotification {
    /// Notifier instance.
    pub notifier: String,
    /// What it would have been sent.
    pub notification: Notification,
}

/// A healing attempt a dry run would have started.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedHeal {
    /// Strategy instance.
    pub strategy: String,
    /// What it would have been asked to fix.
    pub failure: Failure,
}

/// What a dry run would have done instead of notifying and healing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DryRun {
    /// Notifications, in order.
    pub notifications: Vec<PlannedNotification>,
    /// Healing attempts, in order.
    pub heals: Vec<PlannedHeal>,
}

fn log_transition(n: &Notification) {
    match n.status {
        monitor_plugin::NotificationStatus::Firing => tracing::info!(
            alert = %n.alert,
            labels = ?n.labels,
            value = n.value,
            severity = %n.severity,
            "alert firing"
        ),
        monitor_plugin::NotificationStatus::Resolved => tracing::info!(
            alert = %n.alert,
            labels = ?n.labels,
            value = n.value,
            stale = n.stale,
            "alert resolved"
        ),
    }
}

/// When a collector instance runs.
#[derive(Debug)]
struct Schedule {
    slot: usize,
    interval_ms: u64,
    next_due_ms: u64,
}

/// The monitoring engine. Single-threaded: one owner drives [`cycle`](Self::cycle); plugin calls run
/// on their own workers.
#[derive(Debug)]
pub struct Engine {
    host: HostConfig,
    plugins: Vec<RunningPlugin>,
    collectors: Vec<Schedule>,
    notifiers: Notifiers,
    healing: Healing,
    done_rx: Receiver<Done>,
    // Kept so the channel stays open while workers come and go.
    _done_tx: Sender<Done>,
    store: Store,
    alerts: AlertEngine,
    history: History,
    // Some in a dry run: what would have been notified and healed.
    dry_run: Option<DryRun>,
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
    /// Runs code from the libraries named in the config (see
    /// [`PluginLibrary::load`](crate::PluginLibrary::load)): the config must only name libraries
    /// you trust.
    pub unsafe fn load(config: &Config) -> Result<Engine, ConfigErrors> {
        // SAFETY: forwarded to our caller.
        unsafe { Self::load_with(config, false) }
    }

    /// Like [`load`](Self::load), for a dry run: collectors are started; notifier and strategy
    /// libraries are loaded and their plugins looked up, but no instance is created and none is
    /// ever called. Cycles record what they would notify and heal in
    /// [`dry_run`](Self::dry_run) instead.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load), except for notifier and strategy `configure` errors.
    ///
    /// # Safety
    ///
    /// As [`load`](Self::load).
    pub unsafe fn load_dry_run(config: &Config) -> Result<Engine, ConfigErrors> {
        // SAFETY: forwarded to our caller.
        unsafe { Self::load_with(config, true) }
    }

    unsafe fn load_with(config: &Config, dry_run: bool) -> Result<Engine, ConfigErrors> {
        let (done_tx, done_rx) = unbounded();
        let mut launcher = Launcher::new(&done_tx, config.host.max_payload);
        let mut collectors = Vec::new();
        for c in &config.collectors {
            // SAFETY: forwarded to our caller, who vouches for the configured libraries.
            if let Some(slot) = unsafe { launcher.start(&c.plugin, c.interval, true) } {
                collectors.push(Schedule {
                    slot,
                    interval_ms: c.interval.as_millis() as u64,
                    next_due_ms: 0,
                });
            }
        }
        let mut notifiers = Notifiers::default();
        for n in &config.notifiers {
            // SAFETY: as above.
            if let Some(slot) = unsafe { launcher.start(&n.plugin, config.host.interval, !dry_run) }
            {
                notifiers.list.push(Notifier {
                    slot,
                    min_severity: n.min_severity,
                    queue: Default::default(),
                });
            }
        }
        let mut healing = Healing::default();
        for s in &config.strategies {
            // SAFETY: as above.
            if let Some(slot) = unsafe { launcher.start(&s.plugin, config.host.interval, !dry_run) }
            {
                healing.list.push(Strategy::new(slot, s));
            }
        }
        let plugins = launcher.finish().map_err(ConfigErrors)?;
        // A series not refreshed for three of the slowest intervals no longer counts for alerts.
        let max_interval = config
            .collectors
            .iter()
            .map(|c| c.interval)
            .chain([config.host.interval])
            .max()
            .unwrap_or(config.host.interval);
        let stale_ms = 3 * max_interval.as_millis() as u64;
        Ok(Engine {
            host: config.host.clone(),
            plugins,
            collectors,
            notifiers,
            healing,
            done_rx,
            _done_tx: done_tx,
            store: Store::new(config.host.retention.as_millis() as u64),
            alerts: AlertEngine::new(config.alerts.clone(), stale_ms),
            history: History::default(),
            dry_run: dry_run.then(DryRun::default),
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
        self.plugins
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

        let waiting = self.start_collectors(now_ms);
        stats.collected = waiting.len();
        self.wait_for(&waiting, now_ms);
        self.flag_timeouts(now_ms, Instant::now());
        stats.failed = waiting
            .iter()
            .filter(|(s, _)| {
                let p = &self.plugins[*s];
                p.stats.consecutive_failures > 0 || p.in_flight.is_some()
            })
            .count();

        self.record_self_metrics(now_ms, started.elapsed());
        self.store.expire(now_ms);
        let transitions = self.alerts.evaluate(&self.store, now_ms);
        for t in &transitions {
            let n = notify::for_transition(t, self.alerts.rules(), &self.host.name);
            log_transition(&n);
            stats.notifications += self.notify(&n);
            self.healing.observe(t, self.alerts.rules());
        }
        stats.heals = self.heal(now_ms, &mut stats.notifications);
        self.pump(now_ms);

        self.cycles += 1;
        stats.duration_seconds = started.elapsed().as_secs_f64();
        tracing::debug!(
            collected = stats.collected,
            failed = stats.failed,
            notifications = stats.notifications,
            heals = stats.heals,
            seconds = stats.duration_seconds,
            "cycle done"
        );
        self.last_cycle = Some(stats.clone());
        stats
    }

    /// Calls every collector that is due and free; returns the `(instance, job)` of each call.
    fn start_collectors(&mut self, now_ms: u64) -> Vec<(usize, u64)> {
        let mut waiting = Vec::new();
        for ci in 0..self.collectors.len() {
            let c = &mut self.collectors[ci];
            if c.next_due_ms > now_ms {
                continue;
            }
            c.next_due_ms = now_ms + c.interval_ms;
            let slot = c.slot;
            let p = &mut self.plugins[slot];
            if p.in_flight.is_some() {
                p.stats.skipped += 1;
                continue;
            }
            if !p.available(now_ms) {
                continue;
            }
            let job = self.dispatch(slot, Vec::new(), Purpose::Collect, now_ms);
            waiting.push((slot, job));
        }
        waiting
    }

    /// Waits for this cycle's collector calls, each until its own deadline.
    fn wait_for(&mut self, waiting: &[(usize, u64)], now_ms: u64) {
        while let Some(deadline) = waiting
            .iter()
            .filter_map(|(s, j)| self.plugins[*s].in_flight.as_ref().filter(|f| f.job == *j))
            .map(|f| f.deadline)
            .filter(|d| *d > Instant::now())
            .max()
        {
            match self.done_rx.recv_deadline(deadline) {
                Ok(done) => self.handle(done, now_ms),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    /// Starts the healing attempts the policy asks for and queues its escalations; returns how
    /// many attempts started.
    fn heal(&mut self, now_ms: u64, notifications: &mut usize) -> usize {
        let dry = self.dry_run.is_some();
        let plan = self.healing.plan(now_ms, &self.alerts, &self.plugins, dry);
        let started = plan.starts.len();
        for (slot, job) in plan.starts {
            if let Some(d) = &mut self.dry_run {
                d.heals.push(PlannedHeal {
                    strategy: self.plugins[slot].name.clone(),
                    failure: job.failure,
                });
                continue;
            }
            tracing::info!(
                strategy = %self.plugins[slot].name,
                alert = %job.failure.alert,
                labels = ?job.failure.labels,
                attempt = job.failure.attempt,
                "healing attempt started"
            );
            let input = serde_json::to_vec(&job.failure).expect("failures always serialise");
            self.dispatch(slot, input, Purpose::Heal(job), now_ms);
        }
        for g in plan.give_ups {
            let n = notify::escalation(&g, self.alerts.rules(), &self.host.name, now_ms);
            tracing::warn!(
                strategy = %g.strategy,
                alert = %n.alert,
                labels = ?n.labels,
                attempts = g.attempts,
                "healing gave up; escalating"
            );
            *notifications += self.notify(&n);
            self.event("host", "healing_gave_up", n.description, now_ms);
        }
        started
    }

    /// Queues `n` for the notifiers that take its severity (a dry run only notes it); returns how
    /// many.
    fn notify(&mut self, n: &Notification) -> usize {
        let Some(d) = &mut self.dry_run else {
            return self.notifiers.enqueue(n, &mut self.plugins);
        };
        let before = d.notifications.len();
        for slot in self.notifiers.recipients(n.severity) {
            d.notifications.push(PlannedNotification {
                notifier: self.plugins[slot].name.clone(),
                notification: n.clone(),
            });
        }
        d.notifications.len() - before
    }

    /// Hands queued notifications to notifiers that are free.
    fn pump(&mut self, now_ms: u64) {
        for (slot, bytes) in self.notifiers.ready(&self.plugins, now_ms) {
            self.dispatch(slot, bytes, Purpose::Notify, now_ms);
        }
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
                .plugins
                .iter()
                .filter_map(|s| s.in_flight.as_ref())
                .filter(|f| !f.timed_out)
                .map(|f| f.deadline)
                .min();
            let queued = self.notifiers.any_ready(&self.plugins, now);
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
        self.settle(self.longest_timeout());
        self.plugins
            .iter_mut()
            .map(RunningPlugin::shut_down)
            .collect()
    }

    fn dispatch(&mut self, slot: usize, input: Vec<u8>, purpose: Purpose, now_ms: u64) -> u64 {
        self.next_job += 1;
        self.plugins[slot].dispatch(self.next_job, input, purpose, now_ms);
        self.next_job
    }

    fn drain(&mut self, now_ms: u64) {
        while let Ok(done) = self.done_rx.try_recv() {
            self.handle(done, now_ms);
        }
    }

    fn flag_timeouts(&mut self, now_ms: u64, now: Instant) {
        for slot in 0..self.plugins.len() {
            let p = &mut self.plugins[slot];
            let Some(f) = p.check_timeout(now_ms, now) else {
                continue;
            };
            let heal = match &f.purpose {
                Purpose::Heal(job) => Some((job.clone(), f.started_ms)),
                _ => None,
            };
            let message = format!("timed out after {:?}", p.timeout);
            let name = p.name.clone();
            if let Some((job, started_ms)) = heal {
                self.record_heal(&job, false, message, 0, started_ms);
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
        let Some(p) = self.plugins.get_mut(done.slot) else {
            return;
        };
        let Some(f) = p.finish(&done) else {
            return;
        };
        let slot = done.slot;
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
                        let p = &mut self.plugins[slot];
                        p.succeeded(now_ms);
                        p.stats.last_samples = Some(c.samples.len());
                        let source = p.name.clone();
                        self.ingest(&source, c, now_ms);
                    }
                    Err(e) => self.plugins[slot].failed(now_ms, &e),
                }
            }
            Purpose::Notify => match done.result {
                Ok(_) => self.plugins[slot].succeeded(now_ms),
                Err(e) => {
                    tracing::warn!(
                        notifier = %self.plugins[slot].name,
                        error = %e,
                        "notification not delivered"
                    );
                    self.plugins[slot].failed(now_ms, &e);
                }
            },
            Purpose::Heal(job) => {
                let parsed = done.result.and_then(|bytes| {
                    serde_json::from_slice::<HealOutcome>(&bytes).map_err(|e| {
                        CallFailure::Invalid(format!("strategy output is not a valid outcome: {e}"))
                    })
                });
                match parsed {
                    Ok(o) => {
                        self.plugins[slot].succeeded(now_ms);
                        self.record_heal(&job, o.success, o.message, o.duration_ms, f.started_ms);
                    }
                    Err(e) => {
                        self.plugins[slot].failed(now_ms, &e);
                        let ms = done.elapsed.as_millis() as u64;
                        self.record_heal(&job, false, e.to_string(), ms, f.started_ms);
                    }
                }
            }
        }
    }

    fn record_heal(
        &mut self,
        job: &HealJob,
        success: bool,
        message: String,
        duration_ms: u64,
        started_ms: u64,
    ) {
        self.healing.finished(job, success, &message);
        let slot = self.healing.list[job.strategy].slot;
        let strategy = &self.plugins[slot].name;
        let (alert, attempt) = (&job.failure.alert, job.failure.attempt);
        if success {
            tracing::info!(%strategy, %alert, attempt, %message, "healing attempt succeeded");
        } else {
            tracing::warn!(%strategy, %alert, attempt, %message, "healing attempt failed");
        }
        self.history.record_heal(HealRecord {
            strategy: self.plugins[slot].name.clone(),
            alert: job.failure.alert.clone(),
            labels: job.failure.labels.clone(),
            attempt: job.failure.attempt,
            success,
            message,
            duration_ms,
            started_ms,
        });
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
            self.history.record_event(EventRecord {
                source: source.to_owned(),
                kind: e.kind,
                message: e.message,
                labels: e.labels,
                timestamp_ms: e.timestamp_ms.unwrap_or(now_ms),
            });
        }
    }

    fn event(&mut self, source: &str, kind: &str, message: String, now_ms: u64) {
        self.history.record_event(EventRecord {
            source: source.to_owned(),
            kind: kind.to_owned(),
            message,
            labels: Labels::new(),
            timestamp_ms: now_ms,
        });
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
        for p in &self.plugins {
            let labels = Labels::from([
                ("collector".to_owned(), "host".to_owned()),
                ("kind".to_owned(), p.kind.as_str().to_owned()),
                ("instance".to_owned(), p.name.clone()),
            ]);
            for (name, value) in [
                (
                    "monitor.plugin.consecutive_failures",
                    f64::from(p.stats.consecutive_failures),
                ),
                ("monitor.plugin.stuck", f64::from(u8::from(p.stuck()))),
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

    /// Saves what the host remembers to `dir` (see [`history::save`]).
    ///
    /// # Errors
    ///
    /// The file cannot be written; the error names it and the step that failed.
    pub fn save_history(&self, dir: &Path) -> Result<(), HistoryError> {
        history::save(dir, &self.history, &self.store, self.clock_ms)
    }

    /// Replaces the engine's history with what an earlier run saved in `dir` (see
    /// [`history::load`]): series points still within the retention at `now_ms`, healing attempts
    /// and events. Alert states are not restored; they are re-evaluated. Call it before the first
    /// cycle. Returns the file read, if there was one.
    ///
    /// # Errors
    ///
    /// The file cannot be read, or is not history this host can read; the engine is unchanged.
    pub fn load_history(
        &mut self,
        dir: &Path,
        now_ms: u64,
    ) -> Result<Option<PathBuf>, HistoryError> {
        let saved = history::load(dir)?;
        let path = saved.path.clone();
        self.history = saved.restore_into(&mut self.store, now_ms);
        Ok(path)
    }

    /// In a dry run (see [`load_dry_run`](Self::load_dry_run)), what the cycles would have
    /// notified and healed; `None` otherwise.
    pub fn dry_run(&self) -> Option<&DryRun> {
        self.dry_run.as_ref()
    }

    /// Every series with its latest value.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Every alert instance.
    pub fn alerts(&self) -> &AlertEngine {
        &self.alerts
    }

    /// What the host remembers: healing attempts and events.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Healing attempts, oldest first (the last [`HISTORY_LIMIT`](crate::history::HISTORY_LIMIT)).
    pub fn healing(&self) -> impl Iterator<Item = &HealRecord> {
        self.history.healing()
    }

    /// Events, oldest first (the last [`HISTORY_LIMIT`](crate::history::HISTORY_LIMIT)).
    pub fn events(&self) -> impl Iterator<Item = &EventRecord> {
        self.history.events()
    }

    /// Every plugin instance's status.
    pub fn plugins(&self) -> Vec<PluginStatus> {
        self.plugins.iter().map(RunningPlugin::status).collect()
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
            .list
            .iter()
            .map(|n| (self.plugins[n.slot].name.clone(), n.queue.len()))
            .collect()
    }
}
