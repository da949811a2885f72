//! The engine: plugin instances on their workers and the collect-alert-notify-heal cycle.
//!
//! `running` supervises one plugin instance (in-flight call, timeout, back-off, stats), `notify`
//! turns transitions into queued notifications, `healing` decides healing attempts from the alert
//! transitions of each cycle, `completion` takes in what plugin calls return, `load` starts the
//! instances a config names, `incidents` keeps each alert episode's timeline, `reload` applies a new config to running instances and `dry_run`
//! notes what a dry run would have done; this module runs the cycle.

mod collection;
mod completion;
mod dry_run;
mod healing;
mod incidents;
mod ingest;
mod load;
mod notify;
mod reload;
mod request;
mod running;
mod silencing;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use monitor_plugin::{Labels, Notification, NotificationStatus, SampleKind};
use serde::Serialize;

pub use self::dry_run::{DryRun, PlannedHeal, PlannedNotification};
use self::healing::Healing;
#[doc(hidden)]
pub use self::ingest::BareIngest;
pub use self::notify::NOTIFY_QUEUE_LIMIT;
use self::notify::Notifiers;
pub use self::reload::{ReloadStatus, ReloadSummary};
pub use self::request::MIN_REQUEST_GAP;
use self::request::Requests;
pub use self::running::{MAX_BACKOFF_FACTOR, PluginStats, PluginStatus, ShutdownOutcome};
use self::running::{Purpose, RunningPlugin};
pub use self::silencing::SilenceError;
use crate::alert::{AlertEngine, AlertKey};
use crate::config::{Escalation, HostConfig};
use crate::history::{
    EventRecord, HealRecord, History, HistoryError, NewSeries, Persistence, TransitionRecord,
    WriteStats,
};
use crate::incident::Incidents;
use crate::remote_write::{self, RemoteWrite, RemoteWriteStatus};
use crate::silence::{Mute, Silences};
use crate::store::{SeriesId, SeriesKey, Store};
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
    /// Cycle end, ms since epoch.
    pub ended_ms: u64,
    /// Wall time the cycle took, in seconds.
    pub duration_seconds: f64,
    /// Collectors called.
    pub collected: usize,
    /// Collectors that failed or timed out (of those a [`tick`](Engine::tick) called, only
    /// those that are failing already: their new calls end later).
    pub failed: usize,
    /// Notifications queued.
    pub notifications: usize,
    /// Healing attempts started.
    pub heals: usize,
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

/// How often a collector whose new series keep being refused is logged again.
pub const LIMIT_LOG_EVERY: Duration = Duration::from_secs(60);

/// A cycle's collector calls, from their start to the end of the cycle.
#[derive(Debug)]
struct Round {
    at_ms: u64,
    started: Instant,
    // `(instance, job)` of each call.
    waiting: Vec<(usize, u64)>,
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
    // Collections collectors asked for out of their schedule.
    requests: Requests,
    store: Store,
    alerts: AlertEngine,
    history: History,
    // Every settled healing attempt, for `/api/healing`.
    analytics: std::sync::Arc<crate::healing_log::HealingAnalytics>,
    // Every collected sample also goes to the `[[remote_write]]` backends.
    remote: RemoteWrite,
    // The store in `data_dir`, once `load_history` opened it.
    persistence: Option<Persistence>,
    // Silences, maintenance windows and inhibition rules.
    silences: Silences,
    // Why each firing alert instance is muted, as of the last evaluation; absent: not muted.
    mutes: BTreeMap<AlertKey, Mute>,
    // Firing instances whose firing notification was withheld because they were muted: sent
    // when the mute ends while they still fire; their resolution is withheld too.
    withheld: BTreeSet<AlertKey>,
    // Notifications withheld so far (firings and resolutions of muted alerts).
    withheld_total: u64,
    // `withheld` changed since it was last written to the store.
    withheld_dirty: bool,
    // One per alert episode, with its timeline.
    incidents: Incidents,
    // `escalate_after` and `escalate_to` of the alerts that have them, by alert name.
    escalations: BTreeMap<String, Escalation>,
    // Some in a dry run: what would have been notified and healed.
    dry_run: Option<DryRun>,
    next_job: u64,
    cycles: u64,
    last_cycle: Option<CycleStats>,
    // The cycle whose collectors have not all answered yet.
    round: Option<Round>,
    // Cycles in a row whose write to the store failed.
    write_failures: u32,
    // When each collector's series-limit refusals were last logged, ms since epoch.
    limit_logged: BTreeMap<String, u64>,
    started_ms: u64,
    // The time of the last cycle: `settle` works on the same clock as the cycles it follows.
    clock_ms: u64,
    // What the config declares, by slot: a reload compares it with the new config.
    declared: Vec<reload::Declaration>,
    last_reload: ReloadStatus,
    // Alert transitions, healing attempts and events, for the pattern learner.
    feed: crate::learn::Feed,
}

impl Engine {
    /// The `[host]` settings.
    pub fn host(&self) -> &HostConfig {
        &self.host
    }

    /// Where the engine hands its alert transitions, healing attempts and events to the pattern
    /// learner ([`crate::learn`]); nothing is kept until a learner listens.
    pub fn learning_feed(&self) -> &crate::learn::Feed {
        &self.feed
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

    /// Runs one cycle at `now_ms` and waits for its collections: collectors that are due (waiting
    /// for each up to its timeout, all in parallel), alert evaluation over what they returned,
    /// notifications and healing attempts (started, not awaited). For `run --once` and tests,
    /// where the cycle's own results matter; the run loop uses [`tick`](Self::tick).
    pub fn cycle(&mut self, now_ms: u64) -> CycleStats {
        self.run_cycle(now_ms, true)
    }

    /// Starts one cycle at `now_ms` without waiting for anything: the cycle still open (see
    /// below) is ended first, then collectors that are due and free are started (one whose
    /// previous call still runs is skipped and counted in [`PluginStats::skipped`]). Results
    /// arrive on [`completions`](Self::completions) whenever they are ready and are stored at
    /// once; the cycle ends (alert evaluation, notifications, healing, the write to the store)
    /// in [`complete`](Self::complete) once the last of its collectors has answered, or at the
    /// next `tick` at the latest. So a slow collector delays only itself, and never the schedule
    /// of the others. Returns whether the cycle already ended (no collector was due).
    pub fn tick(&mut self, now_ms: u64) -> bool {
        self.end_round();
        self.begin_round(now_ms);
        self.end_round_if_answered()
    }

    fn run_cycle(&mut self, now_ms: u64, wait: bool) -> CycleStats {
        self.end_round();
        self.begin_round(now_ms);
        if wait {
            let waiting = self.round.as_ref().map(|r| r.waiting.clone());
            self.wait_for(&waiting.unwrap_or_default(), now_ms);
            self.flag_timeouts(now_ms, Instant::now());
        }
        self.end_round().expect("a round was just begun")
    }

    /// Starts the collectors that are due: the round of calls a cycle waits for.
    fn begin_round(&mut self, now_ms: u64) {
        self.clock_ms = now_ms;
        self.drain(now_ms);
        self.flag_timeouts(now_ms, Instant::now());
        let waiting = self.start_collectors(now_ms);
        self.round = Some(Round {
            at_ms: now_ms,
            started: Instant::now(),
            waiting,
        });
    }

    /// Ends the open round when every one of its collectors has answered (or timed out);
    /// returns whether it did.
    fn end_round_if_answered(&mut self) -> bool {
        let Some(r) = &self.round else {
            return false;
        };
        let running = r.waiting.iter().any(|(_, job)| {
            (self.plugins.iter())
                .any(|p| (p.in_flight.as_ref()).is_some_and(|f| f.job == *job && !f.timed_out))
        });
        !running && self.end_round().is_some()
    }

    /// The rest of the open round's cycle, over what has been collected so far: alert
    /// evaluation, notifications, healing attempts (started, not awaited), the write to the store.
    fn end_round(&mut self) -> Option<CycleStats> {
        let Round {
            at_ms: now_ms,
            started,
            waiting,
        } = self.round.take()?;
        let mut stats = CycleStats {
            at_ms: now_ms,
            collected: waiting.len(),
            ..CycleStats::default()
        };
        // Slots are looked at by job: a reload may have moved the instances since.
        stats.failed = waiting
            .iter()
            .filter(|(s, job)| {
                self.plugins.get(*s).is_some_and(|p| {
                    p.stats.consecutive_failures > 0
                        || p.in_flight.as_ref().is_some_and(|f| f.job == *job)
                })
            })
            .count();

        self.record_self_metrics(now_ms, started.elapsed());
        self.store.expire(now_ms);
        self.log_refusals(now_ms);
        let transitions = self.alerts.evaluate(&self.store, now_ms);
        for (key, ts_ms, value) in self.alerts.take_recorded() {
            self.put(
                key,
                SampleKind::Gauge,
                crate::alert::RULES_SOURCE,
                ts_ms,
                value,
            );
        }
        self.update_mutes(now_ms);
        for t in &transitions {
            let n = notify::for_transition(t, &self.alerts, &self.host.name);
            log_transition(&n);
            self.incident_transition(t, &n, now_ms);
            if !self.withhold(&n) {
                stats.notifications += self.notify_transition(&n, now_ms);
            }
            let settled = self.healing.observe(t, self.alerts.rules());
            self.record_verifications(settled);
            let firing = matches!(t, crate::alert::Transition::Fired { .. });
            (self.feed).push(crate::learn::events::transition(&n.alert, firing, now_ms));
            if let Some(p) = &mut self.persistence {
                p.batch().transitions.push(TransitionRecord {
                    alert: n.alert,
                    labels: n.labels,
                    firing: matches!(t, crate::alert::Transition::Fired { .. }),
                    value: n.value,
                    stale: n.stale,
                    at_ms: now_ms,
                    annotations: n.annotations,
                });
            }
        }
        stats.notifications += self.release_unmuted(now_ms);
        if self.dry_run.is_none() {
            let (mutes, withheld) = (&self.mutes, &self.withheld);
            stats.notifications += self.notifiers.remind(
                &self.alerts,
                &self.host.name,
                now_ms,
                self.host.interval,
                &mut self.plugins,
                &|k| mutes.contains_key(k) || withheld.contains(k),
            );
        }
        stats.heals = self.heal(now_ms, &mut stats.notifications);
        stats.notifications += self.escalate_unacknowledged(now_ms);
        // Stored before the notifications leave: a crash in between loses a notification rather
        // than sending it twice after the restart.
        self.persist(now_ms);
        self.pump(now_ms);

        self.cycles += 1;
        stats.duration_seconds = started.elapsed().as_secs_f64();
        stats.ended_ms = now_ms + started.elapsed().as_millis() as u64;
        tracing::debug!(
            collected = stats.collected,
            failed = stats.failed,
            notifications = stats.notifications,
            heals = stats.heals,
            seconds = stats.duration_seconds,
            "cycle done"
        );
        self.last_cycle = Some(stats.clone());
        Some(stats)
    }

    /// Writes what this cycle changed to the store, when there is one.
    fn persist(&mut self, now_ms: u64) {
        let Some(p) = &mut self.persistence else {
            return;
        };
        p.batch().alerts = self.alerts.changes();
        p.batch().episodes = self.healing.changes(&self.plugins, self.alerts.rules());
        p.batch().sent = self.notifiers.changes(&self.plugins);
        if std::mem::take(&mut self.withheld_dirty) {
            p.batch().withheld = Some(self.withheld.iter().cloned().collect());
        }
        let horizon = now_ms.saturating_sub(self.host.rollup_retention.as_millis() as u64);
        self.incidents.prune(horizon);
        p.batch().incidents.extend(self.incidents.changes());
        let errors = p.stats().errors_total;
        p.commit(now_ms);
        if p.stats().errors_total > errors {
            self.write_failures = self.write_failures.saturating_add(1);
        } else {
            self.write_failures = 0;
        }
    }

    /// Logs each collector that had new series refused by a series limit: at once, then at most
    /// once per [`LIMIT_LOG_EVERY`] while it goes on (the counter in `/metrics` has every one).
    fn log_refusals(&mut self, now_ms: u64) {
        for (collector, refused) in self.store.take_refusals() {
            let last = self.limit_logged.get(&collector).copied();
            let every = LIMIT_LOG_EVERY.as_millis() as u64;
            if last.is_some_and(|t| now_ms.saturating_sub(t) < every) {
                continue;
            }
            let c = self
                .store
                .counts()
                .get(&collector)
                .copied()
                .unwrap_or_default();
            tracing::warn!(
                %collector,
                refused_now = refused,
                refused_total = c.refused,
                series = c.series,
                "series limit reached: new series refused, those held keep updating; \
                 see `max_series`"
            );
            self.limit_logged.insert(collector, now_ms);
        }
    }

    /// Keeps a point in memory and, when it was kept, in the cycle's batch for the store. The key
    /// moves into the store for a new series.
    pub(super) fn put(
        &mut self,
        key: SeriesKey,
        kind: SampleKind,
        source: &str,
        ts_ms: u64,
        value: f64,
    ) {
        if let Some(id) = self.store.intern(key, kind, source) {
            self.put_id(id, kind, source, ts_ms, value);
        }
    }

    /// [`put`](Self::put) for series `id` of the store: the batch refers to it by id, with its key
    /// (shared with the store) only while the history does not know it.
    pub(super) fn put_id(
        &mut self,
        id: SeriesId,
        kind: SampleKind,
        source: &str,
        ts_ms: u64,
        value: f64,
    ) {
        // NaN and the infinities are kept in memory but not written: SQLite stores a NaN as NULL,
        // and the rollups would turn +Inf and -Inf into one.
        if !self.store.push_id(id, kind, ts_ms, value) || !value.is_finite() {
            return;
        }
        let Some(p) = &mut self.persistence else {
            return;
        };
        let store = &self.store;
        p.point(id, ts_ms, value, || NewSeries {
            series: id,
            key: Arc::clone(store.key(id).expect("just pushed")),
            kind,
            source: source.to_owned(),
        });
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
        let mutes = &self.mutes;
        let plan = (self.healing).plan(now_ms, &self.alerts, &self.plugins, dry, &|k| {
            mutes.contains_key(k)
        });
        let started = plan.starts.len();
        self.record_verifications(plan.settled);
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
            let mut n = notify::escalation(&g, &self.alerts, &self.host.name, now_ms);
            self.incident_gave_up(&g.key, &mut n, now_ms);
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

    /// Queues the notification of an alert transition (see [`notify`](Self::notify)), noting
    /// when each notifier was sent a firing one, for its reminders.
    fn notify_transition(&mut self, n: &Notification, now_ms: u64) -> usize {
        if self.dry_run.is_some() {
            return self.notify(n);
        }
        let key = (n.alert.clone(), n.labels.clone());
        match n.status {
            NotificationStatus::Firing => {
                (self.notifiers).fired(n, &key, now_ms, self.host.interval, &mut self.plugins)
            }
            NotificationStatus::Resolved => self.notifiers.resolved(n, &key, &mut self.plugins),
        }
    }

    /// Hands queued notifications to notifiers that are free.
    fn pump(&mut self, now_ms: u64) {
        for (slot, bytes) in self.notifiers.ready(&self.plugins, now_ms) {
            let tag = incidents::NotifyTag::of(&bytes);
            self.dispatch(slot, bytes, Purpose::Notify(tag), now_ms);
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

    /// Processes results that arrived since the last look, without blocking; ends the open
    /// cycle when they were the last it waited for.
    pub fn poll(&mut self) {
        let now = now_ms();
        self.drain(now);
        self.end_round_if_answered();
        self.pump(now);
    }

    /// A receiver that wakes when a plugin call finishes, for a run loop to wait on.
    pub fn completions(&self) -> &Receiver<Done> {
        &self.done_rx
    }

    /// Handles one completion received from [`completions`](Self::completions); returns whether
    /// it ended the open cycle (it was the last collection the cycle waited for).
    pub fn complete(&mut self, done: Done) -> bool {
        let now = now_ms();
        self.handle(done, now);
        let ended = self.end_round_if_answered();
        self.pump(now);
        ended
    }

    /// Lets running calls finish (up to the longest timeout), then calls every instance's
    /// `shutdown` and reports how each went. Instances stuck in a call are abandoned. Then lets
    /// the `[[remote_write]]` backends take what is queued, for at most
    /// [`FLUSH_LIMIT`](crate::remote_write::FLUSH_LIMIT).
    pub fn shutdown(mut self) -> Vec<ShutdownOutcome> {
        self.settle(self.longest_timeout());
        // The outcomes of the last calls.
        self.persist(self.clock_ms);
        let outcomes = self
            .plugins
            .iter_mut()
            .map(RunningPlugin::shut_down)
            .collect();
        self.remote.shutdown(remote_write::FLUSH_LIMIT);
        outcomes
    }

    fn record_self_metrics(&mut self, now_ms: u64, cycle: Duration) {
        let host_labels = Labels::from([("collector".to_owned(), "host".to_owned())]);
        self.put(
            SeriesKey {
                name: "monitor.host.cycle_duration_seconds".into(),
                labels: host_labels,
            },
            SampleKind::Gauge,
            "host",
            now_ms,
            cycle.as_secs_f64(),
        );
        for slot in 0..self.plugins.len() {
            let p = &self.plugins[slot];
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
                self.put(key, SampleKind::Gauge, "host", now_ms, value);
            }
        }
    }

    /// Opens the store in `dir` (see [`Persistence::open`]) and restores what an earlier run
    /// left there: series points still within the retention at `now_ms`, alert states (a firing
    /// alert that was notified is not notified again), the healing policy's windows and give-ups,
    /// healing attempts and events. From then on every cycle is written to it. Call it before the
    /// first cycle. Returns the database file.
    ///
    /// # Errors
    ///
    /// The store cannot be opened, is damaged or newer, or an earlier host's file cannot be
    /// imported; the engine is unchanged.
    pub fn load_history(
        &mut self,
        dir: &Path,
        now_ms: u64,
    ) -> Result<Option<PathBuf>, HistoryError> {
        let (persistence, mut saved) = Persistence::open(
            dir,
            self.host.retention,
            self.host.rollup_retention,
            self.host.memory_retention(),
            now_ms,
        )?;
        let restored = saved.restore_points(&mut self.store, now_ms);
        self.alerts.restore(saved.alerts);
        let lost = self.healing.restore(
            saved.episodes,
            saved.unverified,
            &self.plugins,
            self.alerts.rules(),
        );
        self.notifiers.restore(saved.sent, &self.plugins);
        self.silences.restore(saved.silences);
        self.incidents.restore(saved.incidents);
        self.withheld = saved.withheld.into_iter().collect();
        self.history = saved.history;
        let mut persistence = persistence;
        persistence.adopt(&restored);
        let path = persistence.path().to_owned();
        // Rules reading further back than memory read the store through a connection of
        // their own.
        (self.alerts).attach_history(&path, self.host.memory_retention());
        self.persistence = Some(persistence);
        // Read before this engine writes anything: what it settles from now on is added once.
        let labels = self.analytics.labels();
        if let Err(e) = self.analytics.rebuild(&path, labels, now_ms) {
            tracing::warn!(error = %e, "healing analytics: cannot read the store; starting empty");
        }
        self.record_verifications(lost);
        Ok(Some(path))
    }

    /// How writing to the store has gone; `None` when there is no store (`run --once`, a dry
    /// run).
    pub fn store_writes(&self) -> Option<&WriteStats> {
        self.persistence.as_ref().map(Persistence::stats)
    }

    /// Cycles in a row, up to the last one, whose write to the store failed; 0 when the last one
    /// was written or there is no store.
    pub fn store_write_failures(&self) -> u32 {
        self.write_failures
    }

    /// The store's database file, when there is one.
    pub fn store_path(&self) -> Option<&Path> {
        self.persistence.as_ref().map(Persistence::path)
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

    /// The healing analytics behind `/api/healing`, shared with the HTTP threads.
    pub fn healing_analytics(&self) -> &std::sync::Arc<crate::healing_log::HealingAnalytics> {
        &self.analytics
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

    /// How the last config reload went.
    pub fn last_reload(&self) -> ReloadStatus {
        self.last_reload
    }

    /// Each `[[remote_write]]` backend's figures.
    pub fn remote_write(&self) -> Vec<RemoteWriteStatus> {
        self.remote.statuses()
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
