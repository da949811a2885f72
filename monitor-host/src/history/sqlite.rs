//! The store's queries: writing a cycle, enforcing retention, reading back at start.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use monitor_plugin::{Labels, SampleKind};
use rusqlite::{Connection, ErrorCode, OptionalExtension, Transaction, params};

use super::blocks::{self, OpenSeries, Slot, TailRows};
use super::schema::{self, Found, SCHEMA_VERSION};
use super::{
    AttemptKey, Batch, EventRecord, HISTORY_LIMIT, HealRecord, History, HistoryError, Saved,
    SavedEpisode, SavedSeries, SentRecord, legacy,
};
use crate::alert::{AlertState, AlertStatus};
use crate::store::{MAX_POINTS_PER_SERIES, SeriesId, SeriesKey};

/// Name of the database inside `data_dir`.
pub const DATABASE_FILE: &str = "monitor.db";
/// Series whose old points and rollups are deleted per cycle at most, in turn.
const SWEEP_SERIES: i64 = 500;
/// How long a pass of the retention sweep over every series takes at least, when it has fewer
/// than [`SWEEP_SERIES`] a cycle to visit: a block is deleted only once its last point is past
/// the retention, and a rollup row once its bucket is, so a series visited more often than every
/// minute or so has nothing to delete; each visit costs three statements.
const SWEEP_PASS_MS: u64 = 60_000;
/// WAL pages after which a write checkpoints the WAL into the file (SQLite's default is 1000).
const WAL_CHECKPOINT_PAGES: i64 = 4000;
/// Old events, transitions or healing attempts deleted per cycle.
const SWEEP_ROWS: i64 = 1000;

/// The bucket size of a [`Rollup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollupStep {
    /// `rollup_1m`.
    Minute,
    /// `rollup_1h`.
    Hour,
}

impl RollupStep {
    pub(super) fn table(self) -> &'static str {
        match self {
            Self::Minute => "rollup_1m",
            Self::Hour => "rollup_1h",
        }
    }
}

/// Count, sum, min and max of a series' points in one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rollup {
    /// Start of the bucket, ms since epoch.
    pub bucket_ms: u64,
    /// Points in it.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The least.
    pub min: f64,
    /// The greatest.
    pub max: f64,
}

/// The SQLite store in `data_dir`.
#[derive(Debug)]
pub struct Database {
    pub(super) conn: Connection,
    path: PathBuf,
    retention_ms: u64,
    rollup_retention_ms: u64,
    // Row ids of series written by key (`Batch::points`); cleared when a transaction fails, since
    // its new ids were rolled back.
    ids: HashMap<SeriesKey, i64>,
    rows: StoreRows,
    // The retention sweep's position: the last series id it visited.
    sweep_from: i64,
    // When the last write was: the sweep visits as many series as the time since calls for.
    swept_ms: Option<u64>,
    check: StartCheck,
    // Open blocks and rollups; rebuilt from the store (`stale`) after a failed write, whose
    // changes to them were rolled back with it.
    open: OpenSeries,
    stale: bool,
    // The tail rows of the write, kept from one to the next for their buffers.
    tail: TailRows,
}

/// The engine's series by store slot: `(generation, slot in `OpenSeries`)`, [`NONE`] for none; a
/// `Vec` rather than a map of keys, so a point costs an index.
#[derive(Debug, Default)]
struct StoreRows {
    by_slot: Vec<(u32, u32)>,
    // Slots given a row by the transaction being written: undone if it fails, since its new rows
    // are rolled back.
    added: Vec<usize>,
}

const NONE: u32 = u32::MAX;

impl StoreRows {
    fn open(&self, series: SeriesId) -> Option<Slot> {
        self.by_slot
            .get(series.slot())
            .filter(|&&(generation, open)| open != NONE && generation == series.generation())
            .map(|&(_, open)| Slot::new(open))
    }

    fn adopt(&mut self, series: SeriesId, open: Slot) {
        let slot = series.slot();
        if self.by_slot.len() <= slot {
            self.by_slot.resize(slot + 1, (0, NONE));
        }
        self.by_slot[slot] = (series.generation(), open.get());
    }

    fn undo(&mut self) {
        for &slot in &self.added {
            self.by_slot[slot] = (0, NONE);
        }
        self.added.clear();
    }
}

/// How [`Database::open`] checked the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartCheck {
    /// The last host stopped cleanly: the header, the schema and the first page of every table
    /// were read, whatever the size of the file.
    Quick,
    /// The store is new, or the last host did not stop cleanly (a crash, `kill -9`, a power
    /// loss): `PRAGMA quick_check` read the whole file.
    Full,
}

const CLEAR_MARKER: &str = "DELETE FROM host_state WHERE key = 'clean_stop'";

/// Whether the last host to write the store left the clean-stop marker (schema version 2 on).
fn clean_stop(conn: &Connection, version: u32) -> rusqlite::Result<bool> {
    if version < 2 {
        return Ok(false);
    }
    conn.query_row(
        "SELECT count(*) FROM host_state WHERE key = 'clean_stop'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// The check after a clean stop: the schema, and the first page of every table, each read down
/// from its root. Damage elsewhere is found by the next full check.
fn quick_check(conn: &Connection) -> rusqlite::Result<()> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for table in tables {
        let sql = format!("SELECT * FROM \"{}\" LIMIT 1", table.replace('"', "\"\""));
        conn.prepare(&sql)?.query([])?.next()?;
    }
    Ok(())
}

/// `PRAGMA quick_check`: every page of the file.
fn full_check(conn: &Connection, path: &Path) -> Result<(), HistoryError> {
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(damaged_or(path.to_owned()))?;
    if check != "ok" {
        return Err(HistoryError::Damaged {
            path: path.to_owned(),
            detail: format!("quick_check: {check}"),
        });
    }
    Ok(())
}

fn damaged_or(path: PathBuf) -> impl Fn(rusqlite::Error) -> HistoryError {
    move |e| match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => HistoryError::Damaged {
            path: path.clone(),
            detail: e.to_string(),
        },
        _ => HistoryError::Sqlite {
            path: path.clone(),
            source: e,
        },
    }
}

impl Database {
    /// Opens `dir/`[`DATABASE_FILE`], creating the directory and the file when missing, checks
    /// it, migrates it to [`SCHEMA_VERSION`], and on a new store imports an earlier host's
    /// `history.json` or `snapshot.json` (left in place). Points are kept for `retention`,
    /// rollups, events and the alert and healing history for `rollup_retention`.
    ///
    /// The check is [`StartCheck::Quick`] when the last host to write the store stopped cleanly,
    /// [`StartCheck::Full`] (`PRAGMA quick_check`, which reads the whole file) otherwise.
    ///
    /// # Errors
    ///
    /// The directory cannot be created; the file is not a database or is damaged; it was written
    /// by a newer host; an earlier host's file is unreadable; SQLite fails otherwise. The file is
    /// never deleted or overwritten.
    pub fn open(
        dir: &Path,
        retention: Duration,
        rollup_retention: Duration,
    ) -> Result<Self, HistoryError> {
        std::fs::create_dir_all(dir).map_err(|source| HistoryError::Io {
            step: "create directory",
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(DATABASE_FILE);
        let err = damaged_or(path.clone());
        let mut conn = Connection::open(&path).map_err(&err)?;
        // Reads the header: a file that is not a database fails here.
        let version = schema::version(&conn).map_err(&err)?;
        if version > SCHEMA_VERSION {
            return Err(HistoryError::Newer {
                path,
                found: version,
            });
        }
        let clean = clean_stop(&conn, version).map_err(&err)?;
        let check = if clean {
            quick_check(&conn).map_err(&err)?;
            StartCheck::Quick
        } else {
            if version > 0 {
                tracing::info!(
                    file = %path.display(),
                    "the last run did not stop cleanly; checking the whole store"
                );
            }
            full_check(&conn, &path)?;
            StartCheck::Full
        };
        // WAL: a crash loses at most the transaction in progress, and readers (`sqlite3`) do not
        // block the host. NORMAL sync is durable against a crash of the process; a power loss may
        // lose the last transactions, never corrupt the file.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(&err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(&err)?;
        // A checkpoint copies the WAL's pages into the file and syncs it: one every 16 MB of WAL
        // rather than SQLite's 4 MB, so a page written by many cycles in a row (a tail group's
        // last, an index page) is copied once for all of them.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)
            .map_err(&err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(&err)?;
        let earlier = if version == 0 {
            Some(legacy::load(dir)?)
        } else {
            None
        };
        let found = schema::migrate(&mut conn, |tx| match earlier {
            Some(saved) => import(tx, saved),
            None => Ok(()),
        })
        .map_err(&err)?;
        if let Found::Newer(found) = found {
            return Err(HistoryError::Newer { path, found });
        }
        let db = Self {
            conn,
            path,
            retention_ms: retention.as_millis() as u64,
            rollup_retention_ms: rollup_retention.as_millis() as u64,
            ids: HashMap::new(),
            rows: StoreRows::default(),
            sweep_from: 0,
            swept_ms: None,
            check,
            open: OpenSeries::default(),
            stale: true,
            tail: TailRows::default(),
        };
        // From now on a crash must lead to the full check. When this fails (a read-only store),
        // the first write that succeeds deletes the marker with it.
        if clean {
            let _ = db.conn.execute(CLEAR_MARKER, []);
        }
        Ok(db)
    }

    /// How the store was checked when it was opened.
    pub fn start_check(&self) -> StartCheck {
        self.check
    }

    /// Records that the host stopped cleanly, in a transaction of its own: the next start checks
    /// the store cheaply instead of reading all of it. [`Persistence`](super::Persistence) calls
    /// it when it is dropped; the next [`write`](Self::write) deletes it again.
    ///
    /// # Errors
    ///
    /// SQLite failed; the next start does the full check.
    pub fn mark_clean_stop(&mut self, now_ms: u64) -> rusqlite::Result<()> {
        self.restore_if_stale()?;
        // Every open block and bucket, so that the next start has no tail to read.
        let tx = self.conn.transaction()?;
        self.open.flush(&tx, now_ms, true)?;
        tx.execute(
            "INSERT OR REPLACE INTO host_state VALUES ('clean_stop', ?1)",
            [now_ms.min(i64::MAX as u64)],
        )?;
        let result = tx.commit();
        if result.is_err() {
            self.stale = true;
        }
        result
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `batches`, oldest first, and deletes a bounded number of rows past retention at
    /// `now_ms`, in one transaction: all of it is written, or none.
    ///
    /// # Errors
    ///
    /// SQLite failed (a full disk, a read-only file...); nothing was written.
    pub fn write(&mut self, batches: &[Batch], now_ms: u64) -> rusqlite::Result<()> {
        self.rows.added.clear();
        let result = self.try_write(batches, now_ms);
        if result.is_err() {
            self.ids.clear();
            self.rows.undo();
            self.stale = true;
        }
        result
    }

    /// Whether store series `series` has a row known to this connection.
    pub fn knows(&self, series: SeriesId) -> bool {
        self.rows.open(series).is_some()
    }

    /// Records that store series `series` has row `id`.
    pub fn adopt(&mut self, series: SeriesId, id: i64) {
        let open = self.open.slot(id);
        self.rows.adopt(series, open);
    }

    /// Rebuilds the open blocks from the store after a failed write, each series in the slot it
    /// had.
    fn restore_if_stale(&mut self) -> rusqlite::Result<()> {
        if self.stale {
            self.open = OpenSeries::restore(&self.conn, self.open.rows())?;
            self.stale = false;
        }
        Ok(())
    }

    fn try_write(&mut self, batches: &[Batch], now_ms: u64) -> rusqlite::Result<()> {
        self.restore_if_stale()?;
        let tx = self.conn.transaction()?;
        // Every cycle, not only the first: a marker left by another connection to the store
        // (`Persistence` opened beside the host, then dropped) lasts at most one cycle.
        tx.execute(CLEAR_MARKER, [])?;
        let seq = self.open.seq;
        let tail = &mut self.tail;
        tail.clear();
        for b in batches {
            for n in &b.series {
                if self.rows.open(n.series).is_none() {
                    let id = insert_series(&tx, &n.key, n.kind, &n.source)?;
                    self.rows.adopt(n.series, self.open.slot(id));
                    self.rows.added.push(n.series.slot());
                }
            }
            for p in &b.samples {
                // Always known: the series' key came before its first point.
                let Some(slot) = self.rows.open(p.series) else {
                    continue;
                };
                if self.open.add(slot, seq, p.ts_ms, p.value) {
                    tail.push(self.open.row(slot), p.ts_ms, p.value);
                }
            }
            for (key, s) in &b.points {
                let id = series_id(&tx, &mut self.ids, key, s.kind, &s.source)?;
                let slot = self.open.slot(id);
                for &(ts, v) in &s.points {
                    if self.open.add(slot, seq, ts, v) {
                        tail.push(id, ts, v);
                    }
                }
            }
            write_records(&tx, b)?;
        }
        tail.insert(&tx, seq)?;
        self.open.seq += 1;
        self.open.flush(&tx, now_ms, false)?;
        let horizons = (
            now_ms.saturating_sub(self.retention_ms),
            now_ms.saturating_sub(self.rollup_retention_ms),
        );
        let limit = sweep_limit(self.open.len(), self.swept_ms, now_ms);
        let next = sweep(&tx, self.sweep_from, horizons, limit)?;
        super::incidents::sweep_incidents(&tx, horizons.1)?;
        tx.commit()?;
        self.sweep_from = next;
        self.swept_ms = Some(now_ms);
        Ok(())
    }

    fn series_id(&self, key: &SeriesKey) -> rusqlite::Result<Option<i64>> {
        self.conn
            .prepare_cached("SELECT id FROM series WHERE name = ?1 AND labels = ?2")?
            .query_row(params![key.name, labels_text(&key.labels)], |r| r.get(0))
            .optional()
    }

    /// Count, sum, min and max per minute or hour of the series `key`, for buckets starting in
    /// `from_ms..to_ms`, oldest first. Reads the rollups only, never raw points.
    ///
    /// # Errors
    ///
    /// SQLite failed.
    pub fn rollups(
        &self,
        key: &SeriesKey,
        step: RollupStep,
        from_ms: u64,
        to_ms: u64,
    ) -> rusqlite::Result<Vec<Rollup>> {
        let Some(id) = self.series_id(key)? else {
            return Ok(Vec::new());
        };
        let tx = self.conn.unchecked_transaction()?;
        let (from, to) = (from_ms.min(i64::MAX as u64), to_ms.min(i64::MAX as u64));
        blocks::read_rollups(&tx, id, step, from as i64, to as i64)
    }

    /// The last `limit` healing attempts stored, oldest first, each with whether a recovery
    /// verified it (`None`: not, or not yet).
    ///
    /// # Errors
    ///
    /// SQLite failed.
    pub fn attempts(&self, limit: usize) -> rusqlite::Result<Vec<(HealRecord, Option<bool>)>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT * FROM (SELECT {HEAL_COLUMNS}, id FROM healing_attempts
             ORDER BY id DESC LIMIT ?1) ORDER BY id"
        ))?;
        let rows = stmt.query_map([limit], |r| Ok((heal_row(r)?, r.get(9)?)))?;
        rows.collect()
    }

    /// Raw points stored for `key` (all of them), oldest first.
    ///
    /// # Errors
    ///
    /// SQLite failed.
    pub fn points(&self, key: &SeriesKey) -> rusqlite::Result<Vec<(u64, f64)>> {
        let Some(id) = self.series_id(key)? else {
            return Ok(Vec::new());
        };
        let tx = self.conn.unchecked_transaction()?;
        let points = blocks::read_points(&tx, id, i64::MIN, i64::MAX)?;
        Ok(points.into_iter().map(|(t, v)| (t as u64, v)).collect())
    }

    /// Reads back what the host needs at start: each series' points since `horizon_ms` (at most
    /// [`MAX_POINTS_PER_SERIES`]), alert and healing policy state, the last [`HISTORY_LIMIT`]
    /// healing attempts and events, and the attempt counters.
    ///
    /// # Errors
    ///
    /// SQLite failed, or the store is damaged.
    pub fn load(&mut self, horizon_ms: u64) -> Result<Saved, HistoryError> {
        let path = self.path.clone();
        self.read(horizon_ms).map_err(damaged_or(path))
    }

    fn read(&mut self, horizon_ms: u64) -> rusqlite::Result<Saved> {
        let mut saved = Saved::default();
        self.open = OpenSeries::restore(&self.conn, &[])?;
        self.stale = false;
        let mut series = self
            .conn
            .prepare("SELECT id, name, labels, kind, source FROM series ORDER BY id")?;
        // Blocks that end at or after the horizon, newest first, until enough points.
        let mut points = self.conn.prepare(
            "SELECT count, data FROM blocks WHERE series_id = ?1 AND end_ms >= ?2
             ORDER BY start_ms DESC",
        )?;
        let horizon = horizon_ms.min(i64::MAX as u64);
        let mut rows = series.query([])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let key = SeriesKey {
                name: r.get(1)?,
                labels: parse_labels(&r.get::<_, String>(2)?),
            };
            let kind = if r.get::<_, String>(3)? == "counter" {
                SampleKind::Counter
            } else {
                SampleKind::Gauge
            };
            let mut pts: Vec<(u64, f64)> = self
                .open
                .open_points(id)
                .filter(|p| p.0 >= horizon_ms)
                .collect();
            pts.reverse();
            let mut blocks = points.query(params![id, horizon])?;
            while pts.len() < MAX_POINTS_PER_SERIES
                && let Some(b) = blocks.next()?
            {
                let data = b.get_ref(1)?.as_blob()?;
                let block: Vec<_> = crate::encoding::decode_block(data, b.get(0)?).collect();
                pts.extend(block.into_iter().rev().filter(|p| p.0 >= horizon_ms));
            }
            drop(blocks);
            if pts.is_empty() {
                continue;
            }
            pts.truncate(MAX_POINTS_PER_SERIES);
            pts.reverse();
            saved.series.push(SavedSeries {
                id,
                key,
                kind,
                source: r.get(4)?,
                points: pts,
            });
        }
        saved.alerts = read_alerts(&self.conn)?;
        saved.episodes = read_episodes(&self.conn)?;
        saved.sent = read_sent(&self.conn)?;
        saved.silences = super::silences::read_silences(&self.conn, 0)?;
        saved.incidents = super::incidents::read_incidents(&self.conn)?;
        saved.withheld = (self.conn)
            .prepare("SELECT alert, labels FROM notifications_withheld")?
            .query_map([], |r| {
                Ok((r.get(0)?, parse_labels(&r.get::<_, String>(1)?)))
            })?
            .collect::<rusqlite::Result<_>>()?;
        saved.history = read_history(&self.conn)?;
        saved.unverified = read_unverified(&self.conn)?;
        Ok(saved)
    }
}

fn labels_text(labels: &Labels) -> String {
    serde_json::to_string(labels).expect("labels always serialise")
}

pub(super) fn parse_labels(text: &str) -> Labels {
    serde_json::from_str(text).unwrap_or_default()
}

/// Annotations as stored: a JSON object of strings, NULL for none.
pub(super) fn annotations_text(annotations: &BTreeMap<String, String>) -> Option<String> {
    (!annotations.is_empty())
        .then(|| serde_json::to_string(annotations).expect("strings always serialise"))
}

/// Annotations as [`annotations_text`] stored them (none for NULL, as rows of earlier versions).
pub(super) fn parse_annotations(text: Option<String>) -> BTreeMap<String, String> {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn state_text(s: AlertState) -> &'static str {
    match s {
        AlertState::Inactive => "inactive",
        AlertState::Pending => "pending",
        AlertState::Firing => "firing",
    }
}

fn series_id(
    tx: &Transaction<'_>,
    ids: &mut HashMap<SeriesKey, i64>,
    key: &SeriesKey,
    kind: SampleKind,
    source: &str,
) -> rusqlite::Result<i64> {
    if let Some(&id) = ids.get(key) {
        return Ok(id);
    }
    let id = insert_series(tx, key, kind, source)?;
    ids.insert(key.clone(), id);
    Ok(id)
}

/// The row id of series `key`, its row made if new; its kind and source updated if not.
fn insert_series(
    tx: &Transaction<'_>,
    key: &SeriesKey,
    kind: SampleKind,
    source: &str,
) -> rusqlite::Result<i64> {
    let kind = match kind {
        SampleKind::Gauge => "gauge",
        SampleKind::Counter => "counter",
    };
    tx.prepare_cached(
        "INSERT INTO series (name, labels, kind, source) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name, labels) DO UPDATE SET kind = excluded.kind, source = excluded.source
         RETURNING id",
    )?
    .query_row(
        params![key.name, labels_text(&key.labels), kind, source],
        |r| r.get(0),
    )
}

/// Writes what a batch holds besides points.
fn write_records(tx: &Transaction<'_>, b: &Batch) -> rusqlite::Result<()> {
    for h in &b.heals {
        write_heal(tx, h)?;
    }
    let mut verify = tx.prepare_cached(
        "UPDATE healing_attempts SET verified = ?5, recovered_ms = ?6, reason = ?7
         WHERE strategy = ?1 AND alert = ?2 AND labels = ?3 AND started_ms = ?4",
    )?;
    for v in &b.verified {
        let labels = labels_text(&v.labels);
        let (at, outcome) = (v.started_ms, v.verified);
        verify.execute(params![
            v.strategy,
            v.alert,
            labels,
            at,
            outcome,
            v.recovered_ms,
            v.reason
        ])?;
    }
    let mut event = tx.prepare_cached(
        "INSERT INTO events (source, kind, message, labels, ts_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for e in &b.events {
        let labels = labels_text(&e.labels);
        event.execute(params![e.source, e.kind, e.message, labels, e.timestamp_ms])?;
    }
    let mut transition = tx.prepare_cached(
        "INSERT INTO alert_transitions (alert, labels, status, value, stale, at_ms, annotations)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for t in &b.transitions {
        let status = if t.firing { "firing" } else { "resolved" };
        let labels = labels_text(&t.labels);
        let annotations = annotations_text(&t.annotations);
        transition.execute(params![
            t.alert,
            labels,
            status,
            t.value,
            t.stale,
            t.at_ms,
            annotations
        ])?;
    }
    for a in &b.alerts {
        write_alert(tx, a)?;
    }
    if let Some(episodes) = &b.episodes {
        write_episodes(tx, episodes)?;
    }
    if let Some(sent) = &b.sent {
        write_sent(tx, sent)?;
    }
    if let Some(withheld) = &b.withheld {
        tx.execute("DELETE FROM notifications_withheld", [])?;
        let mut insert = tx.prepare_cached("INSERT INTO notifications_withheld VALUES (?1, ?2)")?;
        for (alert, labels) in withheld {
            insert.execute(params![alert, labels_text(labels)])?;
        }
    }
    super::incidents::write_incidents(tx, &b.incidents)?;
    Ok(())
}

fn write_heal(tx: &Transaction<'_>, h: &HealRecord) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO healing_attempts (strategy, alert, labels, attempt, started_ms, finished_ms,
         success, message, detected_ms, verified, recovered_ms, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        h.strategy,
        h.alert,
        labels_text(&h.labels),
        h.attempt,
        h.started_ms,
        h.ended_ms(),
        h.success,
        h.message,
        h.detected_ms,
        h.verified,
        h.recovered_ms,
        h.reason
    ])?;
    tx.prepare_cached(
        "INSERT INTO healing_counts VALUES (?1, ?2, ?3, 1)
         ON CONFLICT (strategy, alert, success) DO UPDATE SET count = count + 1",
    )?
    .execute(params![h.strategy, h.alert, h.success])?;
    Ok(())
}

fn write_alert(tx: &Transaction<'_>, a: &AlertStatus) -> rusqlite::Result<()> {
    // Every firing and resolution is notified: the last one is the latest of the two.
    let notified = match (a.firing_since_ms, a.resolved_at_ms) {
        (Some(t), _) => Some((t, "firing")),
        (None, Some(t)) => Some((t, "resolved")),
        (None, None) => None,
    };
    tx.prepare_cached(
        "INSERT OR REPLACE INTO alert_state VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        a.alert,
        labels_text(&a.labels),
        state_text(a.state),
        a.value,
        a.active_since_ms,
        a.firing_since_ms,
        a.resolved_at_ms,
        notified.map(|n| n.0),
        notified.map(|n| n.1),
        annotations_text(&a.annotations),
    ])?;
    Ok(())
}

fn write_episodes(tx: &Transaction<'_>, episodes: &[SavedEpisode]) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM healing_episodes", [])?;
    let mut stmt = tx.prepare_cached(
        "INSERT OR REPLACE INTO healing_episodes VALUES
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for e in episodes {
        stmt.execute(params![
            e.strategy,
            e.alert,
            labels_text(&e.labels),
            e.firing,
            e.value,
            serde_json::to_string(&e.window_ms).expect("numbers always serialise"),
            e.attempts,
            e.last_attempt_ms,
            e.escalated,
            e.last_message,
            e.last_success,
        ])?;
    }
    Ok(())
}

/// How many series the sweep visits in a write at `now_ms`, the last one at `last_ms`, of
/// `series` in all: enough to visit each every [`SWEEP_PASS_MS`], at least one, at most
/// [`SWEEP_SERIES`] (all of those after a gap as long as a pass, or at the first write).
fn sweep_limit(series: usize, last_ms: Option<u64>, now_ms: u64) -> i64 {
    let elapsed = last_ms.map_or(SWEEP_PASS_MS, |t| now_ms.saturating_sub(t));
    let share = (series as u128 * u128::from(elapsed)).div_ceil(u128::from(SWEEP_PASS_MS));
    i64::try_from(share)
        .unwrap_or(i64::MAX)
        .clamp(1, SWEEP_SERIES)
}

/// Deletes points and rollups past their horizons for the next `limit` series after `from`, and
/// the oldest [`SWEEP_ROWS`] events, transitions and attempts past the rollup horizon; returns
/// where the next sweep starts.
fn sweep(
    tx: &Transaction<'_>,
    from: i64,
    (raw, rolled): (u64, u64),
    limit: i64,
) -> rusqlite::Result<i64> {
    let after = |id: i64, n: usize| -> rusqlite::Result<Vec<i64>> {
        tx.prepare_cached("SELECT id FROM series WHERE id > ?1 ORDER BY id LIMIT ?2")?
            .query_map(params![id, n], |r| r.get(0))?
            .collect()
    };
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut ids = after(from, limit)?;
    if ids.len() < limit && from > 0 {
        // Past the last series: on from the first, up to where this sweep began.
        let rest = after(0, limit - ids.len())?;
        ids.extend(rest.into_iter().take_while(|&id| id <= from));
    }
    // Whole blocks only: a block that ends past the horizon is kept until it is all behind it.
    let mut points =
        tx.prepare_cached("DELETE FROM blocks WHERE series_id = ?1 AND end_ms < ?2")?;
    let mut minute =
        tx.prepare_cached("DELETE FROM rollup_1m WHERE series_id = ?1 AND bucket_ms < ?2")?;
    let mut hour =
        tx.prepare_cached("DELETE FROM rollup_1h WHERE series_id = ?1 AND bucket_ms < ?2")?;
    for &id in &ids {
        points.execute(params![id, raw])?;
        minute.execute(params![id, rolled])?;
        hour.execute(params![id, rolled])?;
    }
    for (table, at) in [
        ("events", "ts_ms"),
        ("alert_transitions", "at_ms"),
        ("healing_attempts", "started_ms"),
    ] {
        // Rows are in time order by id: looking at the oldest few is enough.
        let sql = format!(
            "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} ORDER BY id LIMIT ?1)
             AND {at} < ?2"
        );
        tx.prepare_cached(&sql)?
            .execute(params![SWEEP_ROWS, rolled])?;
    }
    // Every series visited: the next sweep starts again from the first.
    Ok(if ids.len() < limit {
        0
    } else {
        ids.last().copied().unwrap_or(0)
    })
}

fn read_alerts(conn: &Connection) -> rusqlite::Result<Vec<AlertStatus>> {
    let mut stmt = conn.prepare(
        "SELECT alert, labels, state, value, pending_since_ms, firing_since_ms, resolved_at_ms,
         annotations FROM alert_state",
    )?;
    let rows = stmt.query_map([], |r| {
        let state = match r.get::<_, String>(2)?.as_str() {
            "firing" => AlertState::Firing,
            "pending" => AlertState::Pending,
            _ => AlertState::Inactive,
        };
        Ok(AlertStatus {
            alert: r.get(0)?,
            labels: parse_labels(&r.get::<_, String>(1)?),
            state,
            value: r.get(3)?,
            active_since_ms: r.get(4)?,
            firing_since_ms: r.get(5)?,
            resolved_at_ms: r.get(6)?,
            // Written by this host as a JSON object of strings; NULL before version 7.
            annotations: parse_annotations(r.get(7)?),
            flaps_per_hour: 0,
        })
    })?;
    rows.collect()
}

fn write_sent(tx: &Transaction<'_>, sent: &[SentRecord]) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM notifications_sent", [])?;
    let mut stmt =
        tx.prepare_cached("INSERT OR REPLACE INTO notifications_sent VALUES (?1, ?2, ?3, ?4)")?;
    for s in sent {
        stmt.execute(params![
            s.notifier,
            s.alert,
            labels_text(&s.labels),
            s.sent_ms
        ])?;
    }
    Ok(())
}

fn read_sent(conn: &Connection) -> rusqlite::Result<Vec<SentRecord>> {
    let mut stmt =
        conn.prepare("SELECT notifier, alert, labels, sent_ms FROM notifications_sent")?;
    let rows = stmt.query_map([], |r| {
        Ok(SentRecord {
            notifier: r.get(0)?,
            alert: r.get(1)?,
            labels: parse_labels(&r.get::<_, String>(2)?),
            sent_ms: r.get(3)?,
        })
    })?;
    rows.collect()
}

fn read_episodes(conn: &Connection) -> rusqlite::Result<Vec<SavedEpisode>> {
    let mut stmt = conn.prepare("SELECT * FROM healing_episodes")?;
    let rows = stmt.query_map([], |r| {
        Ok(SavedEpisode {
            strategy: r.get(0)?,
            alert: r.get(1)?,
            labels: parse_labels(&r.get::<_, String>(2)?),
            firing: r.get(3)?,
            value: r.get(4)?,
            window_ms: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or_default(),
            attempts: r.get(6)?,
            last_attempt_ms: r.get(7)?,
            escalated: r.get(8)?,
            last_message: r.get(9)?,
            last_success: r.get(10)?,
        })
    })?;
    rows.collect()
}

/// The columns [`heal_row`] reads, in its order.
pub(super) const HEAL_COLUMNS: &str = "strategy, alert, labels, attempt, success, message, \
     finished_ms - started_ms, started_ms, coalesce(detected_ms, started_ms), verified, \
     recovered_ms, reason";

/// A healing attempt from the [`HEAL_COLUMNS`] of a row.
pub(super) fn heal_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HealRecord> {
    Ok(HealRecord {
        strategy: r.get(0)?,
        alert: r.get(1)?,
        labels: parse_labels(&r.get::<_, String>(2)?),
        attempt: r.get(3)?,
        success: r.get(4)?,
        message: r.get(5)?,
        duration_ms: r.get(6)?,
        started_ms: r.get(7)?,
        detected_ms: r.get(8)?,
        verified: r.get(9)?,
        recovered_ms: r.get(10)?,
        reason: r.get(11)?,
    })
}

/// The successful attempts still waiting for their verification.
fn read_unverified(conn: &Connection) -> rusqlite::Result<Vec<HealRecord>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {HEAL_COLUMNS} FROM healing_attempts WHERE verified IS NULL ORDER BY id"
    ))?;
    let rows = stmt.query_map([], heal_row)?;
    rows.collect()
}

/// Every settled healing attempt (its verification known) that started at or after
/// `since_ms`, oldest first, handed to `each`; returns how many. Reads one snapshot of the
/// store, in id order, without holding more than one row in memory.
///
/// # Errors
///
/// SQLite failed.
pub fn read_settled(
    conn: &Connection,
    since_ms: u64,
    mut each: impl FnMut(HealRecord),
) -> rusqlite::Result<u64> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {HEAL_COLUMNS} FROM healing_attempts WHERE verified IS NOT NULL AND started_ms >= ?1
         ORDER BY id"
    ))?;
    let mut rows = stmt.query([since_ms.min(i64::MAX as u64)])?;
    let mut n = 0;
    while let Some(r) = rows.next()? {
        each(heal_row(r)?);
        n += 1;
    }
    Ok(n)
}

fn read_history(conn: &Connection) -> rusqlite::Result<History> {
    let mut history = History::default();
    let mut stmt = conn.prepare(&format!(
        "SELECT * FROM (SELECT {HEAL_COLUMNS}, id FROM healing_attempts
             ORDER BY id DESC LIMIT ?1) ORDER BY id"
    ))?;
    let heals = stmt.query_map([HISTORY_LIMIT], heal_row)?;
    for h in heals {
        super::push_bounded(&mut history.healing, h?);
    }
    let mut stmt = conn.prepare(
        "SELECT * FROM (SELECT source, kind, message, labels, ts_ms, id FROM events
         ORDER BY id DESC LIMIT ?1) ORDER BY id",
    )?;
    let events = stmt.query_map([HISTORY_LIMIT], |r| {
        Ok(EventRecord {
            source: r.get(0)?,
            kind: r.get(1)?,
            message: r.get(2)?,
            labels: parse_labels(&r.get::<_, String>(3)?),
            timestamp_ms: r.get(4)?,
        })
    })?;
    for e in events {
        history.record_event(e?);
    }
    let mut stmt = conn.prepare("SELECT strategy, alert, success, count FROM healing_counts")?;
    let counts = stmt.query_map([], |r| {
        let key = AttemptKey {
            strategy: r.get(0)?,
            alert: r.get(1)?,
            success: r.get(2)?,
        };
        Ok((key, r.get::<_, u64>(3)?))
    })?;
    for c in counts {
        let (k, n) = c?;
        history.attempts.insert(k, n);
    }
    Ok(history)
}

/// Writes what an earlier host's file held into a new store.
fn import(tx: &Transaction<'_>, saved: Saved) -> rusqlite::Result<()> {
    let mut ids = HashMap::new();
    for mut s in saved.series {
        let id = series_id(tx, &mut ids, &s.key, s.kind, &s.source)?;
        s.points.sort_by_key(|p| p.0);
        s.points.dedup_by_key(|p| p.0);
        blocks::insert_points(tx, id, &s.points)?;
    }
    let batch = Batch {
        heals: saved.history.healing().cloned().collect(),
        events: saved.history.events().cloned().collect(),
        ..Batch::default()
    };
    write_records(tx, &batch)?;
    // The file's counters outlive its records.
    tx.execute("DELETE FROM healing_counts", [])?;
    for (k, n) in saved.history.attempts_total() {
        tx.execute(
            "INSERT INTO healing_counts VALUES (?1, ?2, ?3, ?4)",
            params![k.strategy, k.alert, k.success, n],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_visits_each_series_about_once_a_pass() {
        // 10,000 series every second: a pass in a minute.
        assert_eq!(sweep_limit(10_000, Some(0), 1_000), 167);
        // The first write, a long gap or many series: the most a write visits.
        assert_eq!(sweep_limit(10_000, None, 1_000), SWEEP_SERIES);
        assert_eq!(sweep_limit(10, Some(0), 3_600_000), SWEEP_SERIES);
        assert_eq!(sweep_limit(1_000_000, Some(0), 1_000), SWEEP_SERIES);
        // At least one, whatever the clock does.
        assert_eq!(sweep_limit(0, Some(0), 1_000), 1);
        assert_eq!(sweep_limit(10, Some(5_000), 1_000), 1);
    }
}
