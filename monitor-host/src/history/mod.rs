//! What the host remembers across restarts: the embedded store.
//!
//! In memory, [`History`] keeps the last healing attempts and events, and the engine's `Store`
//! keeps recent points for alert evaluation. The durable copy is a SQLite database,
//! `data_dir/`[`DATABASE_FILE`], in WAL mode: every cycle the engine hands [`Persistence`] what the
//! cycle produced (a [`Batch`]) and it is written in one transaction, so a crash, even `kill -9`,
//! loses at most the cycle in progress. At start, [`Persistence::open`] restores series points,
//! alert states, healing policy state, healing attempts and events.
//!
//! # The schema
//!
//! Open the file with `sqlite3 data_dir/monitor.db` (while the host runs too: readers do not block
//! it). `PRAGMA user_version` is the schema version ([`SCHEMA_VERSION`]); a host migrates an older
//! store at start and refuses a newer one. Times are ms since the Unix epoch; labels are JSON
//! objects with sorted keys.
//!
//! - `series(id, name, labels, kind, source)`: one row per series; points refer to its `id`.
//! - `blocks(series_id, start_ms, end_ms, count, data)`: every point, for `[host] retention`
//!   (default 24h), up to 120 per row, delta-encoded as the in-memory store's chunks are (2-4
//!   bytes a point for a steady series); retention deletes whole blocks.
//! - `tail(grp, seq, data)`: the points of each write not yet in a block, one row per write and
//!   group of 256 series; rows are deleted once their points are all in blocks.
//! - `rollup_1m`, `rollup_1h` `(series_id, bucket_ms, count, sum, min, max)`: per minute and per
//!   hour, kept for `rollup_retention` (default 30d); charts and windows read these. They are
//!   kept in memory and written with each block, so a series' last row may be a bucket still
//!   open: readers complete it from the raw points (see `blocks.rs`).
//! - `alert_state(alert, labels, state, value, pending_since_ms, firing_since_ms, resolved_at_ms,
//!   last_notified_ms, last_notified_status, annotations)`: where each alert instance stands, and
//!   its annotations as last rendered (a JSON object).
//! - `alert_transitions(id, alert, labels, status, value, stale, at_ms, annotations)`: every
//!   firing and resolution, with the annotations as rendered then (a JSON object, NULL for none).
//! - `healing_attempts(id, strategy, alert, labels, attempt, started_ms, finished_ms, success,
//!   verified, message, detected_ms, recovered_ms, reason)`, `healing_counts(strategy, alert,
//!   success, count)`: every attempt, and the counters behind `monitor_healing_attempts_total`.
//!   `success` is what the strategy reported; `verified` whether the alert resolved within the
//!   strategy's `verify_within` after it (1), not (0, with the `reason`), or is still to be seen
//!   (NULL). `detected_ms` is when the alert fired, `recovered_ms` when it resolved.
//! - `healing_episodes(strategy, alert, labels, firing, value, window_ms, attempts,
//!   last_attempt_ms, escalated, last_message, last_success)`: the healing policy's state, so its
//!   limits and give-ups carry over.
//! - `notifications_sent(notifier, alert, labels, sent_ms)`: when each notifier was last sent the
//!   firing notification of each firing alert instance (the first one or a reminder), so reminders
//!   keep their schedule across a restart.
//! - `notifications_withheld(alert, labels)`: firing alert instances whose firing notification
//!   was withheld because they were silenced or inhibited (sent if the mute ends first).
//! - `events(id, source, kind, message, labels, ts_ms)`: plugin failures, time-outs, give-ups...
//! - `silences(id, start_ms, end_ms, data)`: silences created at run time (`POST /api/silences`);
//!   `data` is a JSON object with the silence's `id` (a UUID), `matchers` (in Alertmanager's
//!   syntax), `created_by`, `comment` and `updated_at_ms`. Kept `rollup_retention` after they end.
//! - `incidents(id, opened_ms, closed_ms, data)`: one row per incident (an alert instance's
//!   episode); `closed_ms` is NULL while it is open; `data` is the incident as JSON: `alert`,
//!   `labels`, `severity`, `opened_ms`, `fired_ms`, `resolved_ms`, `acknowledged`, `escalated_ms`,
//!   `reopened` and its `timeline` (entries with `at_ms` and `kind`). Closed ones are kept
//!   `rollup_retention`.
//! - `host_state(key, value)`: `clean_stop`, when the last host stopped cleanly (see below).
//!
//! For example, the last hour of a series by minute:
//!
//! ```sql
//! SELECT datetime(bucket_ms / 1000, 'unixepoch'), sum / count, min, max FROM rollup_1m
//! JOIN series ON series.id = series_id
//! WHERE name = 'cpu.usage' AND bucket_ms > (strftime('%s', 'now') - 3600) * 1000;
//! ```
//!
//! Retention deletes old rows a bounded number at a time, every cycle, never by rewriting the
//! file.
//!
//! # Start-up, and a damaged store
//!
//! Nothing at start reads the whole file when the last host stopped cleanly: the time to start
//! grows with the number of series and the memory retention, not with the days of history kept
//! (`cargo bench -p monitor-host --bench restart`). A host that stops cleanly (SIGINT, SIGTERM, the end of `run`) writes the
//! `clean_stop` row in its last transaction; the next host deletes it as it opens the store, and
//! again with every cycle it writes.
//! When the row is there, the start checks the header, the schema version and the first page of
//! every table ([`StartCheck::Quick`]); when it is not (the last host crashed, was killed with
//! `kill -9`, or lost power), SQLite's `quick_check` reads every page first ([`StartCheck::Full`],
//! seconds on 1 GB). So a clean stop skips the check of the pages past each table's first: damage
//! done to them while the host was stopped is found when a query or the retention sweep reads
//! them (the write fails, is logged and retried), or by the full check after the next crash; run
//! `sqlite3 data_dir/monitor.db 'PRAGMA quick_check'` to check a store by hand. The refill of
//! memory reads, through each series' primary key, only the points of the memory retention
//! (`retention`, at most an hour).
//!
//! A store that is not a database or fails its check is refused with an error naming it; the host
//! never deletes or overwrites it: move it away (with its `-wal` and `-shm` files) to start with
//! an empty history.
//!
//! When a write fails (a full disk, a read-only directory), the cycle goes on in memory, the failure is logged and counted, and what was not
//! written is retried the next cycle (at most [`PENDING_LIMIT`] cycles; older ones are dropped
//! and counted).
//!
//! Earlier hosts kept their history in `history.json` (or `snapshot.json`); a new store imports it
//! once and leaves the file as it was.

mod blocks;
mod incidents;
mod legacy;
mod read;
mod schema;
mod silences;
mod sqlite;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use monitor_plugin::{Labels, SampleKind};
use serde::Serialize;

pub use self::legacy::{HISTORY_FILE, LEGACY_FILE};
pub use self::read::{EventMarks, PastEvents, Reader, StoredSeries};
pub use self::schema::SCHEMA_VERSION;
pub use self::silences::TransitionQuery;
pub use self::sqlite::{DATABASE_FILE, Database, Rollup, RollupStep, StartCheck, read_settled};
use crate::alert::AlertStatus;
use crate::store::{SeriesId, SeriesKey, Store};

/// Most healing records and events kept in memory.
pub const HISTORY_LIMIT: usize = 1000;
/// Most cycles kept waiting while writes fail; older ones are dropped.
pub const PENDING_LIMIT: usize = 120;

/// One healing attempt and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// When the alert it acted on fired, ms since epoch.
    pub detected_ms: u64,
    /// Whether it healed: the strategy reported success and the alert resolved within the
    /// strategy's `verify_within` (`true`); reported failure, or the alert went on firing
    /// (`false`); `None` while that is still to be seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// When the alert resolved, for a verified attempt, ms since epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered_ms: Option<u64>,
    /// Why it did not heal, for an attempt verified as failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl HealRecord {
    /// When it ended, ms since epoch.
    pub fn ended_ms(&self) -> u64 {
        self.started_ms.saturating_add(self.duration_ms)
    }
}

/// An event reported by a collector, or by the engine itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRecord {
    /// Who reported it (collector instance, or `host`).
    pub source: String,
    /// Event kind, e.g. `process_restarted` or `plugin_timeout`.
    pub kind: String,
    /// Human text.
    pub message: String,
    /// Labels.
    pub labels: Labels,
    /// When, ms since epoch.
    pub timestamp_ms: u64,
}

/// Which healing attempts a counter of [`History::attempts_total`] counts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttemptKey {
    /// Strategy instance.
    pub strategy: String,
    /// Alert name.
    pub alert: String,
    /// Whether the strategy reported success.
    pub success: bool,
}

/// Healing attempts and events, the last [`HISTORY_LIMIT`] of each, and a count of every healing
/// attempt ever recorded.
#[derive(Debug, Default)]
pub struct History {
    healing: VecDeque<HealRecord>,
    events: VecDeque<EventRecord>,
    attempts: BTreeMap<AttemptKey, u64>,
}

impl History {
    /// Remembers a healing attempt and counts it.
    pub fn record_heal(&mut self, record: HealRecord) {
        self.count_heal(&record);
        push_bounded(&mut self.healing, record);
    }

    /// Puts the verification of `record` on the attempt it settles, if still held.
    pub fn settle(&mut self, record: &HealRecord) {
        let same = |h: &&mut HealRecord| {
            h.started_ms == record.started_ms
                && h.strategy == record.strategy
                && h.alert == record.alert
                && h.labels == record.labels
        };
        if let Some(h) = self.healing.iter_mut().rev().find(same) {
            h.clone_from(record);
        }
    }

    fn count_heal(&mut self, record: &HealRecord) {
        let key = AttemptKey {
            strategy: record.strategy.clone(),
            alert: record.alert.clone(),
            success: record.success,
        };
        *self.attempts.entry(key).or_default() += 1;
    }

    /// Healing attempts ever recorded (across restarts when history is saved), by strategy, alert
    /// and outcome. Only ever grows, unlike [`healing`](Self::healing), which keeps the last ones.
    pub fn attempts_total(&self) -> &BTreeMap<AttemptKey, u64> {
        &self.attempts
    }

    /// Remembers an event.
    pub fn record_event(&mut self, event: EventRecord) {
        push_bounded(&mut self.events, event);
    }

    /// Healing attempts, oldest first.
    pub fn healing(&self) -> impl Iterator<Item = &HealRecord> {
        self.healing.iter()
    }

    /// Events, oldest first.
    pub fn events(&self) -> impl Iterator<Item = &EventRecord> {
        self.events.iter()
    }
}

fn push_bounded<T>(q: &mut VecDeque<T>, v: T) {
    if q.len() == HISTORY_LIMIT {
        q.pop_front();
    }
    q.push_back(v);
}

/// Why the store could not be opened, or an earlier host's file imported.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// A file operation failed.
    #[error("cannot {step} `{}`: {source}", .path.display())]
    Io {
        /// What was being done: `create directory`, `read`...
        step: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// An earlier host's history file is not history this host can read.
    #[error(
        "history file `{}` is unreadable ({source}); the host will not overwrite it: move it away to start with empty history",
        .path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        source: serde_json::Error,
    },
    /// An earlier host's history file has another format version.
    #[error(
        "history file `{}` has format version {found}, but this host reads version {}; run a matching host or move the file away",
        .path.display(), legacy::FORMAT_VERSION
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// The version it declares.
        found: u32,
    },
    /// The store is not a database, or is damaged.
    #[error(
        "store `{}` is damaged ({detail}); the host will not overwrite it: move it away, with its -wal and -shm files, to start with an empty history",
        .path.display()
    )]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// The store was written by a newer host.
    #[error(
        "store `{}` has schema version {found}, but this host reads up to version {SCHEMA_VERSION}; run a newer host, or move the file away to start with an empty history",
        .path.display()
    )]
    Newer {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: u32,
    },
    /// SQLite failed to open or read the store.
    #[error(
        "cannot open store `{}`: {source}; check that data_dir is a writable directory",
        .path.display()
    )]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
}

/// An alert transition, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct TransitionRecord {
    /// Rule name.
    pub alert: String,
    /// The series' labels.
    pub labels: Labels,
    /// Started firing (`true`) or resolved.
    pub firing: bool,
    /// The value then.
    pub value: f64,
    /// Resolved because the series went stale or vanished.
    pub stale: bool,
    /// When, ms since epoch.
    pub at_ms: u64,
    /// The alert's annotations, as rendered when it happened (as notified).
    pub annotations: BTreeMap<String, String>,
}

/// The healing policy's state for one strategy instance and alert instance.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedEpisode {
    /// Strategy instance.
    pub strategy: String,
    /// Rule name.
    pub alert: String,
    /// The series' labels.
    pub labels: Labels,
    /// The alert was firing.
    pub firing: bool,
    /// The value that made it fire.
    pub value: f64,
    /// Start times of the attempts inside the window, oldest first.
    pub window_ms: Vec<u64>,
    /// Attempts in this episode.
    pub attempts: u32,
    /// When the last attempt started.
    pub last_attempt_ms: Option<u64>,
    /// Healing gave up (and escalated) and has not tried since.
    pub escalated: bool,
    /// What the last attempt said.
    pub last_message: String,
    /// The last attempt reported success.
    pub last_success: bool,
}

/// When a notifier was last sent the firing notification of a firing alert instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRecord {
    /// Notifier instance.
    pub notifier: String,
    /// Rule name.
    pub alert: String,
    /// The series' labels.
    pub labels: Labels,
    /// When, ms since epoch.
    pub sent_ms: u64,
}

/// The verification of an attempt written before it was known: the stored attempt of this
/// strategy on this alert instance that started at `started_ms` gets `verified`, `recovered_ms`
/// and `reason`.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// Strategy instance.
    pub strategy: String,
    /// Rule name.
    pub alert: String,
    /// The series' labels.
    pub labels: Labels,
    /// When the attempt started, ms since epoch.
    pub started_ms: u64,
    /// Whether it healed.
    pub verified: bool,
    /// When the alert resolved (verified attempts).
    pub recovered_ms: Option<u64>,
    /// Why it did not heal.
    pub reason: Option<String>,
}

impl Verified {
    /// The verification of `record` (settled: `verified` is set).
    pub fn of(record: &HealRecord) -> Self {
        Self {
            strategy: record.strategy.clone(),
            alert: record.alert.clone(),
            labels: record.labels.clone(),
            started_ms: record.started_ms,
            verified: record.verified == Some(true),
            recovered_ms: record.recovered_ms,
            reason: record.reason.clone(),
        }
    }
}

/// Points of one series in a [`Batch`].
#[derive(Debug, Clone)]
pub struct BatchSeries {
    /// Gauge or counter.
    pub kind: SampleKind,
    /// Collector instance.
    pub source: String,
    /// `(ms since epoch, value)`, oldest first.
    pub points: Vec<(u64, f64)>,
}

/// A point of a series of the engine's store, by its id there.
#[derive(Debug, Clone, Copy)]
pub struct BatchPoint {
    /// The series.
    pub series: SeriesId,
    /// Ms since epoch.
    pub ts_ms: u64,
    /// The value.
    pub value: f64,
}

/// A series of the engine's store the history does not know yet under its id: what it needs to
/// find or make its row.
#[derive(Debug, Clone)]
pub struct NewSeries {
    /// Its id in the store.
    pub series: SeriesId,
    /// Name and labels, shared with the store.
    pub key: Arc<SeriesKey>,
    /// Gauge or counter.
    pub kind: SampleKind,
    /// Collector instance.
    pub source: String,
}

/// What one cycle produced, to be written in one transaction.
#[derive(Debug, Default)]
pub struct Batch {
    /// Series of [`samples`](Self::samples) the history did not know when they were added,
    /// each before its first point.
    pub series: Vec<NewSeries>,
    /// New points by store id: the engine's.
    pub samples: Vec<BatchPoint>,
    /// New points by series key: for writers without a store.
    pub points: BTreeMap<SeriesKey, BatchSeries>,
    /// Finished healing attempts.
    pub heals: Vec<HealRecord>,
    /// Verifications of attempts written before (or in) this batch (written after `heals`).
    pub verified: Vec<Verified>,
    /// Events.
    pub events: Vec<EventRecord>,
    /// Alert transitions.
    pub transitions: Vec<TransitionRecord>,
    /// Alert instances whose state changed.
    pub alerts: Vec<AlertStatus>,
    /// The whole healing policy state, when it changed.
    pub episodes: Option<Vec<SavedEpisode>>,
    /// Every firing notification's last send time per notifier, when one changed.
    pub sent: Option<Vec<SentRecord>>,
    /// Every firing alert instance whose firing notification is withheld, when that changed.
    pub withheld: Option<Vec<crate::alert::AlertKey>>,
    /// Incidents that changed.
    pub incidents: Vec<crate::incident::Incident>,
}

impl Batch {
    /// Adds a point.
    pub fn point(&mut self, key: &SeriesKey, kind: SampleKind, source: &str, ts_ms: u64, v: f64) {
        let s = match self.points.get_mut(key) {
            Some(s) => s,
            None => self.points.entry(key.clone()).or_insert(BatchSeries {
                kind,
                source: source.to_owned(),
                points: Vec::new(),
            }),
        };
        s.points.push((ts_ms, v));
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
            && self.samples.is_empty()
            && self.heals.is_empty()
            && self.verified.is_empty()
            && self.events.is_empty()
            && self.transitions.is_empty()
            && self.alerts.is_empty()
            && self.episodes.is_none()
            && self.sent.is_none()
            && self.withheld.is_none()
            && self.incidents.is_empty()
    }
}

/// What the store held at start.
#[derive(Debug, Default)]
pub struct Saved {
    /// Healing attempts and events.
    pub history: History,
    /// Series and their recent points, oldest first.
    pub series: Vec<SavedSeries>,
    /// Alert instances that were not inactive, or had resolved.
    pub alerts: Vec<AlertStatus>,
    /// The healing policy's state.
    pub episodes: Vec<SavedEpisode>,
    /// When each notifier was last sent each firing alert.
    pub sent: Vec<SentRecord>,
    /// Firing alert instances whose firing notification was withheld (muted).
    pub withheld: Vec<crate::alert::AlertKey>,
    /// Silences created at run time.
    pub silences: Vec<crate::silence::Silence>,
    /// Successful healing attempts still waiting for their verification (the last one per
    /// strategy and alert instance).
    pub unverified: Vec<HealRecord>,
    /// Open incidents and the last closed ones.
    pub incidents: Vec<crate::incident::Incident>,
}

/// One series as saved.
#[derive(Debug)]
pub struct SavedSeries {
    /// Its row's id in the store.
    pub id: i64,
    /// Name and labels.
    pub key: SeriesKey,
    /// Gauge or counter.
    pub kind: SampleKind,
    /// Collector instance that produced it.
    pub source: String,
    /// `(ms since epoch, value)`, oldest first.
    pub points: Vec<(u64, f64)>,
}

impl Saved {
    /// Puts the saved points back into `store`, dropping those past its retention at `now_ms`;
    /// returns the store id and row id of each series restored, for [`Persistence::adopt`].
    pub fn restore_points(&mut self, store: &mut Store, now_ms: u64) -> Vec<(SeriesId, i64)> {
        let mut ids = Vec::with_capacity(self.series.len());
        for s in self.series.drain(..) {
            let Some(series) = store.intern(s.key, s.kind, &s.source) else {
                continue;
            };
            for (t, v) in s.points {
                store.push_id(series, s.kind, t, v);
            }
            ids.push((series, s.id));
        }
        store.expire(now_ms);
        ids.retain(|&(series, _)| store.holds(series));
        ids
    }
}

/// How writing to the store has gone, for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct WriteStats {
    /// Cycles whose write failed (each retry counts).
    pub errors_total: u64,
    /// When a write last succeeded, ms since epoch.
    pub last_success_ms: Option<u64>,
    /// Cycles dropped unwritten because too many were waiting.
    pub dropped_total: u64,
    /// Cycles waiting to be written.
    pub pending: usize,
}

/// The store, the cycle being gathered and the cycles not written yet.
#[derive(Debug)]
pub struct Persistence {
    db: Database,
    current: Batch,
    pending: VecDeque<Batch>,
    stats: WriteStats,
    failing: bool,
}

impl Persistence {
    /// Opens (or creates) the store in `dir` and reads what it holds: the points of the last
    /// `memory` per series, alert and healing state, the last healing attempts and events. A new
    /// store imports an earlier host's `history.json` or `snapshot.json` first.
    ///
    /// # Errors
    ///
    /// See [`Database::open`].
    pub fn open(
        dir: &std::path::Path,
        retention: Duration,
        rollup_retention: Duration,
        memory: Duration,
        now_ms: u64,
    ) -> Result<(Self, Saved), HistoryError> {
        let mut db = Database::open(dir, retention, rollup_retention)?;
        let saved = db.load(now_ms.saturating_sub(memory.as_millis() as u64))?;
        let p = Self {
            db,
            current: Batch::default(),
            pending: VecDeque::new(),
            stats: WriteStats::default(),
            failing: false,
        };
        Ok((p, saved))
    }

    /// How the store was checked when it was opened.
    pub fn start_check(&self) -> StartCheck {
        self.db.start_check()
    }

    /// The cycle being gathered.
    pub fn batch(&mut self) -> &mut Batch {
        &mut self.current
    }

    /// Adds a point of store series `series` to the cycle; `new` is called for what the history
    /// needs to know the series when it does not yet (until the write that makes its row).
    pub fn point(
        &mut self,
        series: SeriesId,
        ts_ms: u64,
        value: f64,
        new: impl FnOnce() -> NewSeries,
    ) {
        if !self.db.knows(series) {
            self.current.series.push(new());
        }
        self.current.samples.push(BatchPoint {
            series,
            ts_ms,
            value,
        });
    }

    /// Records the rows of series restored into the store, as [`Saved::restore_points`] returns
    /// them, so that their points go on in the same rows.
    pub fn adopt(&mut self, ids: &[(SeriesId, i64)]) {
        for &(series, id) in ids {
            self.db.adopt(series, id);
        }
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        self.db.path()
    }

    /// How writing has gone.
    pub fn stats(&self) -> &WriteStats {
        &self.stats
    }

    /// Writes a silence at once, in its own transaction (see [`Database::save_silence`]).
    ///
    /// # Errors
    ///
    /// SQLite failed; nothing was written.
    pub fn save_silence(
        &mut self,
        s: &crate::silence::Silence,
        horizon_ms: u64,
    ) -> rusqlite::Result<()> {
        self.db.save_silence(s, horizon_ms)
    }

    /// Writes incidents at once, in their own transaction (an acknowledgement or a note made
    /// over the API is kept even if the host stops before its next cycle).
    ///
    /// # Errors
    ///
    /// SQLite failed; nothing was written.
    pub fn save_incidents(&mut self, list: &[crate::incident::Incident]) -> rusqlite::Result<()> {
        let tx = self.db.conn.transaction()?;
        incidents::write_incidents(&tx, list)?;
        tx.commit()
    }

    /// Alert transitions written so far, newest first (see [`Database::transitions`]).
    ///
    /// # Errors
    ///
    /// SQLite failed.
    pub fn transitions(&self, q: &TransitionQuery) -> rusqlite::Result<Vec<TransitionRecord>> {
        self.db.transitions(q)
    }

    /// Writes the cycle gathered so far, and any earlier ones a failure left waiting, in one
    /// transaction, then deletes a bounded number of rows past retention. A failure is logged
    /// once per change from working to failing and back; the cycles stay waiting.
    pub fn commit(&mut self, now_ms: u64) {
        let batch = std::mem::take(&mut self.current);
        if !batch.is_empty() {
            self.pending.push_back(batch);
        }
        while self.pending.len() > PENDING_LIMIT {
            self.pending.pop_front();
            self.stats.dropped_total += 1;
        }
        match self.db.write(self.pending.make_contiguous(), now_ms) {
            Ok(()) => {
                self.pending.clear();
                self.stats.last_success_ms = Some(now_ms);
                if std::mem::replace(&mut self.failing, false) {
                    tracing::info!(file = %self.db.path().display(), "store writable again");
                }
            }
            Err(e) => {
                self.stats.errors_total += 1;
                if !std::mem::replace(&mut self.failing, true) {
                    tracing::error!(
                        file = %self.db.path().display(),
                        error = %e,
                        "cannot write the store; going on in memory and retrying every cycle"
                    );
                }
            }
        }
        self.stats.pending = self.pending.len();
    }
}

impl Drop for Persistence {
    /// The last transaction: the clean-stop marker (see [`Database::mark_clean_stop`]). A crash
    /// never gets here, so its store gets the full check at the next start.
    fn drop(&mut self) {
        if let Err(e) = self.db.mark_clean_stop(crate::engine::now_ms()) {
            tracing::warn!(
                file = %self.db.path().display(),
                error = %e,
                "cannot record the clean stop; the next start checks the whole store"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertState;
    use crate::test_support::logged;

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let p =
                std::env::temp_dir().join(format!("monitor-store-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            Self(p)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);
    const DAY: Duration = Duration::from_secs(86_400);

    fn key(name: &str) -> SeriesKey {
        SeriesKey {
            name: name.into(),
            labels: Labels::from([("collector".to_owned(), "c".to_owned())]),
        }
    }

    fn heal(attempt: u32) -> HealRecord {
        HealRecord {
            strategy: "s".into(),
            alert: "a".into(),
            labels: Labels::from([("k".to_owned(), "v".to_owned())]),
            attempt,
            success: attempt.is_multiple_of(2),
            message: format!("attempt {attempt}"),
            duration_ms: 3,
            started_ms: 1000 * u64::from(attempt),
            detected_ms: 500,
            verified: (!attempt.is_multiple_of(2)).then_some(false),
            recovered_ms: None,
            reason: None,
        }
    }

    fn open(dir: &Dir, now_ms: u64) -> (Persistence, Saved) {
        Persistence::open(&dir.0, DAY, 30 * DAY, HOUR, now_ms).unwrap()
    }

    #[test]
    fn a_cycle_written_is_there_after_reopening() {
        let dir = Dir::new("roundtrip");
        let now = 10 * 86_400_000;
        let (mut p, saved) = open(&dir, now);
        assert!(saved.series.is_empty() && saved.alerts.is_empty());
        for t in 0..10 {
            p.batch().point(
                &key("m"),
                SampleKind::Counter,
                "c",
                now + t * 1000,
                t as f64,
            );
        }
        p.batch().heals = vec![heal(1), heal(2)];
        p.batch().events.push(EventRecord {
            source: "c".into(),
            kind: "k".into(),
            message: "m".into(),
            labels: Labels::new(),
            timestamp_ms: now,
        });
        p.batch().alerts.push(AlertStatus {
            alert: "a".into(),
            labels: Labels::new(),
            state: AlertState::Firing,
            value: 5.0,
            active_since_ms: Some(now),
            firing_since_ms: Some(now + 1),
            resolved_at_ms: None,
            annotations: [("summary".to_owned(), "a at 5".to_owned())].into(),
            flaps_per_hour: 0,
        });
        let episode = SavedEpisode {
            strategy: "s".into(),
            alert: "a".into(),
            labels: Labels::new(),
            firing: true,
            value: 5.0,
            window_ms: vec![now, now + 5],
            attempts: 2,
            last_attempt_ms: Some(now + 5),
            escalated: true,
            last_message: "no luck".into(),
            last_success: false,
        };
        p.batch().episodes = Some(vec![episode.clone()]);
        let sent = SentRecord {
            notifier: "n".into(),
            alert: "a".into(),
            labels: Labels::from([("k".to_owned(), "v".to_owned())]),
            sent_ms: now + 1,
        };
        p.batch().sent = Some(vec![sent.clone()]);
        p.commit(now + 10_000);
        assert_eq!(p.stats().errors_total, 0);
        assert_eq!(p.stats().last_success_ms, Some(now + 10_000));
        drop(p);

        let (p, saved) = open(&dir, now + 10_000);
        let s = &saved.series[0];
        assert_eq!((s.key.clone(), s.kind), (key("m"), SampleKind::Counter));
        assert_eq!(s.points.len(), 10);
        assert_eq!(s.points[9], (now + 9000, 9.0));
        assert_eq!(
            saved.history.healing().cloned().collect::<Vec<_>>(),
            [heal(1), heal(2)]
        );
        assert_eq!(saved.history.attempts_total().values().sum::<u64>(), 2);
        assert_eq!(saved.history.events().count(), 1);
        assert_eq!(saved.alerts.len(), 1);
        assert_eq!(saved.alerts[0].state, AlertState::Firing);
        assert_eq!(saved.alerts[0].firing_since_ms, Some(now + 1));
        assert_eq!(saved.alerts[0].annotations["summary"], "a at 5");
        assert_eq!(saved.episodes, [episode]);
        assert_eq!(saved.sent, [sent]);
        assert!(p.path().ends_with(DATABASE_FILE));
    }

    #[test]
    fn rollups_count_sum_min_and_max_per_minute_and_hour() {
        let dir = Dir::new("rollups");
        let (mut p, _) = open(&dir, 0);
        // 90 points 1 s apart from 59 minutes in: two minutes and two hours.
        let start = 59 * 60_000;
        for i in 0..90u64 {
            p.batch().point(
                &key("m"),
                SampleKind::Gauge,
                "c",
                start + i * 1000,
                i as f64,
            );
        }
        p.commit(start + 90_000);
        let db = &p.db;
        let minutes = db
            .rollups(&key("m"), RollupStep::Minute, 0, u64::MAX)
            .unwrap();
        let first: f64 = (0..60).map(f64::from).sum();
        let second: f64 = (60..90).map(f64::from).sum();
        assert_eq!(
            minutes,
            [
                Rollup {
                    bucket_ms: start,
                    count: 60,
                    sum: first,
                    min: 0.0,
                    max: 59.0
                },
                Rollup {
                    bucket_ms: start + 60_000,
                    count: 30,
                    sum: second,
                    min: 60.0,
                    max: 89.0
                },
            ]
        );
        let hours = db
            .rollups(&key("m"), RollupStep::Hour, 0, u64::MAX)
            .unwrap();
        assert_eq!(hours.len(), 2);
        assert_eq!((hours[0].bucket_ms, hours[0].count), (0, 60));
        assert_eq!((hours[1].bucket_ms, hours[1].count), (3_600_000, 30));
        // The same point twice is stored and counted once.
        p.batch()
            .point(&key("m"), SampleKind::Gauge, "c", start, 0.0);
        p.commit(start + 90_000);
        let minutes = p.db.rollups(&key("m"), RollupStep::Minute, 0, 1).unwrap();
        assert!(minutes.is_empty(), "the range is half-open");
        let minutes =
            p.db.rollups(&key("m"), RollupStep::Minute, start, start + 1)
                .unwrap();
        assert_eq!(minutes[0].count, 60);
    }

    #[test]
    fn retention_deletes_old_points_and_keeps_rollups_longer() {
        let dir = Dir::new("retention");
        let (mut p, _) = open(&dir, 0);
        // A cycle an hour: the first two points make a block (the first is old enough), the
        // third one another when the next cycle comes.
        for i in 0..3u64 {
            p.batch()
                .point(&key("m"), SampleKind::Gauge, "c", i * 3_600_000, 1.0);
            p.commit(i * 3_600_000);
        }
        p.commit(3 * 3_600_000);
        assert_eq!(p.db.points(&key("m")).unwrap().len(), 3);
        // A block is deleted whole once all of it is past `retention`: half an hour past the
        // first point's day, the first block ends after the horizon and is kept.
        p.commit(DAY.as_millis() as u64 + 1_800_000);
        assert_eq!(p.db.points(&key("m")).unwrap().len(), 3);
        // A day and an hour later: the first block is past `retention`, not its rollups.
        let later = DAY.as_millis() as u64 + 3_600_000 + 1;
        p.commit(later);
        assert_eq!(
            p.db.points(&key("m")).unwrap(),
            [(7_200_000, 1.0)],
            "points before {later} - 24h are gone"
        );
        let hours =
            p.db.rollups(&key("m"), RollupStep::Hour, 0, u64::MAX)
                .unwrap();
        assert_eq!(hours.len(), 3);
        p.batch().events.push(EventRecord {
            source: "c".into(),
            kind: "old".into(),
            message: String::new(),
            labels: Labels::new(),
            timestamp_ms: 0,
        });
        p.batch().heals.push(heal(1));
        p.commit(later);
        p.commit(31 * DAY.as_millis() as u64);
        let hours = p.db.rollups(&key("m"), RollupStep::Hour, 0, u64::MAX);
        assert!(hours.unwrap().is_empty());
        let saved = p.db.load(0).unwrap();
        assert_eq!(saved.history.events().count(), 0);
        assert_eq!(saved.history.healing().count(), 0);
        assert_eq!(
            saved.history.attempts_total().values().sum::<u64>(),
            1,
            "counters are never deleted"
        );
    }

    #[test]
    fn write_failures_are_logged_once_per_change_of_state() {
        let dir = Dir::new("log-once");
        let (mut p, _) = open(&dir, 0);
        let text = logged(|| {
            p.db.conn.pragma_update(None, "query_only", true).unwrap();
            for t in 1..4 {
                p.batch().point(&key("m"), SampleKind::Gauge, "c", t, 1.0);
                p.commit(t);
            }
            p.db.conn.pragma_update(None, "query_only", false).unwrap();
            p.commit(5);
            p.commit(6);
        });
        assert_eq!(text.matches("cannot write the store").count(), 1, "{text}");
        assert!(text.contains(DATABASE_FILE), "{text}");
        assert_eq!(text.matches("store writable again").count(), 1, "{text}");
        assert_eq!(p.stats().errors_total, 3);
    }

    /// A cycle a second for `n` cycles from `from` (ms), two series.
    fn cycles(p: &mut Persistence, from: u64, n: u64) {
        for i in 0..n {
            let t = from + i * 1000;
            p.batch()
                .point(&key("a"), SampleKind::Gauge, "c", t, (i % 7) as f64);
            p.batch().point(&key("b"), SampleKind::Gauge, "c", t, 1.0);
            p.commit(t);
        }
    }

    fn rows(p: &Persistence, sql: &str) -> i64 {
        p.db.conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_kill_loses_no_written_point_nor_rollup() {
        let dir = Dir::new("kill");
        let (mut p, _) = open(&dir, 0);
        // 250 cycles: two blocks per series written, 10 points still in the tail.
        cycles(&mut p, 0, 250);
        assert_eq!(rows(&p, "SELECT count(*) FROM blocks"), 4);
        let before = p.db.points(&key("a")).unwrap();
        let minutes =
            p.db.rollups(&key("a"), RollupStep::Minute, 0, u64::MAX)
                .unwrap();
        assert_eq!(before.len(), 250);
        assert_eq!(minutes.len(), 5);
        assert_eq!(minutes.iter().map(|r| r.count).sum::<u64>(), 250);
        // As `kill -9` leaves it: no clean stop, the open blocks only in the tail.
        std::mem::forget(p);
        let (mut p, saved) = open(&dir, 250_000);
        assert_eq!(saved.series[0].points, before);
        assert_eq!(p.db.points(&key("a")).unwrap(), before);
        let again =
            p.db.rollups(&key("a"), RollupStep::Minute, 0, u64::MAX)
                .unwrap();
        assert_eq!(again, minutes);
        // Going on from there counts every point once.
        cycles(&mut p, 250_000, 250);
        let hours =
            p.db.rollups(&key("a"), RollupStep::Hour, 0, u64::MAX)
                .unwrap();
        assert_eq!(hours.len(), 1);
        assert_eq!(hours[0].count, 500);
        let minutes =
            p.db.rollups(&key("a"), RollupStep::Minute, 0, u64::MAX)
                .unwrap();
        assert_eq!(minutes.iter().map(|r| r.count).sum::<u64>(), 500);
        assert!(
            minutes
                .iter()
                .all(|r| r.count == 60 || r.bucket_ms == 480_000)
        );
        assert_eq!(p.db.points(&key("a")).unwrap().len(), 500);
    }

    #[test]
    fn the_tail_keeps_only_points_not_yet_in_blocks() {
        let dir = Dir::new("tail");
        let (mut p, _) = open(&dir, 0);
        cycles(&mut p, 0, 1000);
        // Each write adds a row (both series share a group); rows whose points are all in
        // blocks are deleted: at most a block's worth of writes remains.
        let tail = rows(&p, "SELECT count(*) FROM tail");
        assert!(
            tail > 0 && tail <= blocks::BLOCK_POINTS as i64,
            "{tail} rows"
        );
        assert_eq!(
            rows(&p, "SELECT max(count) FROM blocks"),
            blocks::BLOCK_POINTS as i64
        );
        // A clean stop writes the open blocks and empties the tail.
        drop(p);
        let (p, saved) = open(&dir, 1_000_000);
        assert_eq!(rows(&p, "SELECT count(*) FROM tail"), 0);
        assert_eq!(saved.series[0].points.len(), 1000);
        let hours =
            p.db.rollups(&key("b"), RollupStep::Hour, 0, u64::MAX)
                .unwrap();
        assert_eq!((hours[0].count, hours[0].sum), (1000, 1000.0));
        // A slow series' block is written once its first point is old enough.
        drop(p);
        let (mut p, _) = open(&dir, 1_000_000);
        let t = 2_000_000;
        p.batch().point(&key("a"), SampleKind::Gauge, "c", t, 1.0);
        p.commit(t);
        let blocks_before = rows(&p, "SELECT count(*) FROM blocks");
        p.commit(t + blocks::FLUSH_AGE_MS);
        assert_eq!(rows(&p, "SELECT count(*) FROM blocks"), blocks_before + 1);
        assert_eq!(rows(&p, "SELECT count(*) FROM tail"), 0);
    }

    #[test]
    fn blocks_due_beyond_a_write_s_budget_are_written_by_the_next_write() {
        let dir = Dir::new("budget");
        let (mut p, _) = open(&dir, 0);
        for i in 0..300 {
            let k = key(&format!("m{i}"));
            p.batch().point(&k, SampleKind::Gauge, "c", 1_000, 1.0);
        }
        p.commit(1_000);
        assert_eq!(rows(&p, "SELECT count(*) FROM blocks"), 0, "none due yet");
        // All due at once: 256 a write at least (300 series are too few for more).
        p.commit(1_000 + blocks::FLUSH_AGE_MS);
        assert_eq!(rows(&p, "SELECT count(*) FROM blocks"), 256);
        assert!(
            rows(&p, "SELECT count(*) FROM tail") > 0,
            "the rest in the tail"
        );
        p.commit(2_000 + blocks::FLUSH_AGE_MS);
        assert_eq!(rows(&p, "SELECT count(*) FROM blocks"), 300);
        assert_eq!(rows(&p, "SELECT count(*) FROM tail"), 0);
    }

    #[test]
    fn a_failed_write_keeps_the_cycle_and_retries_it() {
        let dir = Dir::new("retry");
        let (mut p, _) = open(&dir, 0);
        p.db.conn.pragma_update(None, "query_only", true).unwrap();
        p.batch().point(&key("m"), SampleKind::Gauge, "c", 1, 1.0);
        p.commit(1);
        p.batch().point(&key("m"), SampleKind::Gauge, "c", 2, 2.0);
        p.commit(2);
        assert_eq!(p.stats().errors_total, 2);
        assert_eq!(p.stats().pending, 2);
        assert_eq!(p.stats().last_success_ms, None);
        p.db.conn.pragma_update(None, "query_only", false).unwrap();
        p.commit(3);
        assert_eq!(p.stats().pending, 0);
        assert_eq!(p.stats().last_success_ms, Some(3));
        assert_eq!(p.db.points(&key("m")).unwrap(), [(1, 1.0), (2, 2.0)]);
        let minutes =
            p.db.rollups(&key("m"), RollupStep::Minute, 0, u64::MAX)
                .unwrap();
        assert_eq!(
            (minutes.len(), minutes[0].count, minutes[0].sum),
            (1, 2, 3.0)
        );

        // Too many cycles waiting: the oldest are dropped and counted.
        p.db.conn.pragma_update(None, "query_only", true).unwrap();
        for t in 0..PENDING_LIMIT as u64 + 5 {
            p.batch()
                .point(&key("m"), SampleKind::Gauge, "c", 10 + t, 0.0);
            p.commit(10 + t);
        }
        assert_eq!(p.stats().pending, PENDING_LIMIT);
        assert_eq!(p.stats().dropped_total, 5);
    }

    #[test]
    fn a_damaged_or_newer_store_is_refused_and_left_alone() {
        let dir = Dir::new("damaged");
        std::fs::create_dir_all(&dir.0).unwrap();
        let path = dir.0.join(DATABASE_FILE);
        let garbage = "this is not a database, but it is someone's file".repeat(100);
        std::fs::write(&path, &garbage).unwrap();
        let err = Persistence::open(&dir.0, DAY, DAY, HOUR, 0).unwrap_err();
        assert!(matches!(err, HistoryError::Damaged { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("move it away"), "{text}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), garbage);

        std::fs::remove_file(&path).unwrap();
        drop(open(&dir, 0));
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        let err = Persistence::open(&dir.0, DAY, DAY, HOUR, 0).unwrap_err();
        assert!(matches!(err, HistoryError::Newer { .. }), "{err}");
        assert!(err.to_string().contains("run a newer host"), "{err}");
    }

    #[test]
    fn only_a_start_after_a_clean_stop_skips_the_full_check() {
        let dir = Dir::new("clean-stop");
        let (p, _) = open(&dir, 0);
        assert_eq!(p.start_check(), StartCheck::Full, "a new store");
        drop(p);
        let (p, _) = open(&dir, 0);
        assert_eq!(p.start_check(), StartCheck::Quick, "after a clean stop");
        // The marker is gone while the host runs, so a crash now...
        let conn = rusqlite::Connection::open(dir.0.join(DATABASE_FILE)).unwrap();
        let marked: i64 = conn
            .query_row("SELECT count(*) FROM host_state", [], |r| r.get(0))
            .unwrap();
        assert_eq!(marked, 0);
        drop(conn);
        // ...such as this one, where nothing runs at the end...
        std::mem::forget(p);
        // ...leads to the full check.
        let (mut p, _) = open(&dir, 0);
        assert_eq!(p.start_check(), StartCheck::Full, "after a crash");
        // A store opened beside the host and closed leaves the marker until the host's next
        // cycle, and no longer.
        drop(open(&dir, 0));
        p.commit(1);
        std::mem::forget(p);
        let (p, _) = open(&dir, 0);
        assert_eq!(p.start_check(), StartCheck::Full, "a crash after a cycle");
    }

    /// Overwrites page `page` (from 1) of the store with garbage, as a disk fault would.
    fn damage_page(dir: &Dir, page: u64) {
        use std::io::{Seek, SeekFrom, Write};
        let path = dir.0.join(DATABASE_FILE);
        let conn = rusqlite::Connection::open(&path).unwrap();
        let size: u64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        drop(conn);
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.seek(SeekFrom::Start((page - 1) * size)).unwrap();
        f.write_all(&vec![0xa5; size as usize]).unwrap();
    }

    /// Two hours after the points of [`filled`]: the start reads none of them back.
    const LATER: u64 = 4_000_000 + 7_200_000;

    /// A store of many pages, closed cleanly; its number of pages.
    fn filled(dir: &Dir) -> u64 {
        let (mut p, _) = open(dir, 0);
        for t in 0..4000 {
            for i in 0..5 {
                let k = key(&format!("metric_{i}"));
                p.batch().point(&k, SampleKind::Gauge, "c", t * 1000, 1.0);
            }
        }
        p.commit(LATER);
        drop(p);
        let conn = rusqlite::Connection::open(dir.0.join(DATABASE_FILE)).unwrap();
        // No free pages (the tail's, once its points are in blocks): any page is in use.
        conn.execute_batch("VACUUM").unwrap();
        conn.query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_store_damaged_while_stopped_after_a_crash_is_refused() {
        let dir = Dir::new("damaged-after-crash");
        let pages = filled(&dir);
        assert!(pages > 10, "{pages} pages");
        // As a crash leaves it: no clean-stop marker.
        let conn = rusqlite::Connection::open(dir.0.join(DATABASE_FILE)).unwrap();
        conn.execute("DELETE FROM host_state", []).unwrap();
        drop(conn);
        damage_page(&dir, pages / 2);
        let before = std::fs::read(dir.0.join(DATABASE_FILE)).unwrap();
        let err = Persistence::open(&dir.0, DAY, DAY, HOUR, LATER).unwrap_err();
        assert!(matches!(err, HistoryError::Damaged { .. }), "{err}");
        assert!(err.to_string().contains(DATABASE_FILE), "{err}");
        let after = std::fs::read(dir.0.join(DATABASE_FILE)).unwrap();
        assert!(before == after, "the damaged store is left as it was");
    }

    #[test]
    fn after_a_clean_stop_a_damaged_first_page_of_a_table_is_refused() {
        let dir = Dir::new("damaged-after-clean-stop");
        filled(&dir);
        let conn = rusqlite::Connection::open(dir.0.join(DATABASE_FILE)).unwrap();
        let root: u64 = conn
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = 'blocks'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        drop(conn);
        damage_page(&dir, root);
        let err = Persistence::open(&dir.0, DAY, DAY, HOUR, LATER).unwrap_err();
        assert!(matches!(err, HistoryError::Damaged { .. }), "{err}");
    }

    #[test]
    fn an_earlier_history_file_is_imported_once_and_kept() {
        let dir = Dir::new("import");
        std::fs::create_dir_all(&dir.0).unwrap();
        let old = r#"{"version":1,"saved_at_ms":9,"series":[{"name":"m","labels":{},
            "kind":"gauge","source":"c","points":[[1,1.0],[2,2.0]]}],
            "healing":[{"strategy":"s","alert":"a","labels":{},"attempt":1,"success":true,
            "message":"ok","duration_ms":1,"started_ms":5}],"events":[],
            "healing_attempts":[{"strategy":"s","alert":"a","success":true,"count":7}]}"#;
        let file = dir.0.join(HISTORY_FILE);
        std::fs::write(&file, old).unwrap();
        let (p, saved) = open(&dir, 2);
        assert_eq!(saved.series[0].points, [(1, 1.0), (2, 2.0)]);
        assert_eq!(saved.history.healing().count(), 1);
        assert_eq!(saved.history.attempts_total().values().sum::<u64>(), 7);
        drop(p);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), old, "kept");
        // Not imported again: a changed file is not read.
        std::fs::write(&file, "{}").unwrap();
        let (_, saved) = open(&dir, 2);
        assert_eq!(saved.history.healing().count(), 1);
    }

    #[test]
    fn an_unreadable_earlier_file_leaves_the_new_store_to_import_it_later() {
        let dir = Dir::new("import-broken");
        std::fs::create_dir_all(&dir.0).unwrap();
        let file = dir.0.join(HISTORY_FILE);
        std::fs::write(&file, "{\"version\": 1, \"healing\": [").unwrap();
        let err = Persistence::open(&dir.0, DAY, DAY, HOUR, 0).unwrap_err();
        assert!(matches!(err, HistoryError::Corrupt { .. }), "{err}");
        std::fs::write(
            &file,
            r#"{"version":1,"saved_at_ms":0,"events":[{"source":"c",
            "kind":"k","message":"m","labels":{},"timestamp_ms":6}]}"#,
        )
        .unwrap();
        let (_, saved) = open(&dir, 0);
        assert_eq!(saved.history.events().count(), 1);
    }
}
