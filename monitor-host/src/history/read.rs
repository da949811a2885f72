//! Reading the store beside the running host, for the query API: a connection of its own, opened
//! read-only, so a query never takes the write lock and never waits for the engine (in WAL mode
//! readers and the writer do not block each other).

use std::path::Path;
use std::time::Duration;

use monitor_plugin::{Labels, SampleKind};
use rusqlite::{Connection, OpenFlags};

use super::sqlite::{RollupStep, parse_annotations, parse_labels};
use super::{blocks, schema};

/// One row of the `series` table.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSeries {
    /// Its id, which points and rollups refer to.
    pub id: i64,
    /// The collected name (`system.cpu.usage`).
    pub name: String,
    /// Its labels, as collected.
    pub labels: Labels,
    /// Gauge or counter.
    pub kind: SampleKind,
}

/// A read-only connection to the store.
#[derive(Debug)]
pub struct Reader {
    conn: Connection,
}

impl Reader {
    /// Opens the database at `path` read-only. `Ok(None)` while there is nothing to read yet: no
    /// file, or a file the host has not yet given its schema.
    ///
    /// # Errors
    ///
    /// SQLite failed otherwise (the file is not a database...).
    pub fn open(path: &Path) -> rusqlite::Result<Option<Self>> {
        if !path.exists() {
            return Ok(None);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        // Readers only wait while the WAL is recovered after a crash; a short wait then is
        // better than an error.
        conn.busy_timeout(Duration::from_secs(1))?;
        if schema::version(&conn)? == 0 {
            return Ok(None);
        }
        Ok(Some(Self { conn }))
    }

    /// Changes whenever a series is added: the greatest id and the number of series.
    ///
    /// # Errors
    ///
    /// SQLite failed.
    pub fn generation(&self) -> rusqlite::Result<(i64, i64)> {
        self.conn
            .prepare_cached("SELECT coalesce(max(id), 0), count(*) FROM series")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
    }

    /// Every series, in id order.
    ///
    /// # Errors
    ///
    /// SQLite failed.
    pub fn series(&self) -> rusqlite::Result<Vec<StoredSeries>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, name, labels, kind FROM series ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(StoredSeries {
                id: r.get(0)?,
                name: r.get(1)?,
                labels: parse_labels(&r.get::<_, String>(2)?),
                kind: if r.get::<_, String>(3)? == "counter" {
                    SampleKind::Counter
                } else {
                    SampleKind::Gauge
                },
            })
        })?;
        rows.collect()
    }

    /// Starts a read transaction that lasts until [`end_snapshot`](Self::end_snapshot): the
    /// reads in between see the store as of one write, and do not each open a transaction of
    /// their own (many small reads, such as each series' newest points, cost half as much).
    /// Keep it short: the store's checkpoints wait for it.
    ///
    /// # Errors
    ///
    /// SQLite failed.
    pub fn begin_snapshot(&self) -> rusqlite::Result<()> {
        if self.conn.is_autocommit() {
            self.conn.execute_batch("BEGIN")?;
        }
        Ok(())
    }

    /// Ends the read transaction [`begin_snapshot`](Self::begin_snapshot) started, if any.
    ///
    /// # Errors
    ///
    /// SQLite failed.
    pub fn end_snapshot(&self) -> rusqlite::Result<()> {
        if !self.conn.is_autocommit() {
            self.conn.execute_batch("COMMIT")?;
        }
        Ok(())
    }

    /// Raw points of series `id` with `after_ms < ts_ms <= to_ms`, oldest first.
    ///
    /// # Errors
    ///
    /// SQLite failed.
    pub fn points(&self, id: i64, after_ms: i64, to_ms: i64) -> rusqlite::Result<Vec<(i64, f64)>> {
        if !self.conn.is_autocommit() {
            // Within a snapshot already.
            return blocks::read_points(&self.conn, id, after_ms, to_ms);
        }
        // One read transaction: blocks and tail as of the same write.
        let tx = self.conn.unchecked_transaction()?;
        blocks::read_points(&tx, id, after_ms, to_ms)
    }

    /// The latest raw point of series `id` with `after_ms < ts_ms <= to_ms`.
    ///
    /// # Errors
    ///
    /// SQLite failed.
    pub fn latest(
        &self,
        id: i64,
        after_ms: i64,
        to_ms: i64,
    ) -> rusqlite::Result<Option<(i64, f64)>> {
        let tx = self.conn.unchecked_transaction()?;
        blocks::latest(&tx, id, after_ms, to_ms)
    }

    /// The mean (`sum / count`) of each bucket of series `id` starting in `after_ms < bucket_ms
    /// <= to_ms`, as `(bucket_ms, mean)`, oldest first.
    ///
    /// # Errors
    ///
    /// SQLite failed.
    pub fn rollup_means(
        &self,
        id: i64,
        step: RollupStep,
        after_ms: i64,
        to_ms: i64,
    ) -> rusqlite::Result<Vec<(i64, f64)>> {
        let tx = self.conn.unchecked_transaction()?;
        let rollups = blocks::read_rollups(
            &tx,
            id,
            step,
            after_ms.saturating_add(1),
            to_ms.saturating_add(1),
        )?;
        Ok(rollups
            .into_iter()
            .map(|r| (r.bucket_ms as i64, r.sum / r.count as f64))
            .collect())
    }

    /// The time of the oldest raw point of series `id` still stored.
    ///
    /// # Errors
    ///
    /// SQLite failed.
    pub fn oldest_point(&self, id: i64) -> rusqlite::Result<Option<i64>> {
        let tx = self.conn.unchecked_transaction()?;
        blocks::oldest(&tx, id)
    }

    /// How many points series `id` had in the hours that overlap `after_ms..=to_ms` (from the
    /// hourly rollups: a count that never reads raw points, exact to the hour).
    ///
    /// # Errors
    ///
    /// SQLite failed.
    pub fn points_in_hours(&self, id: i64, after_ms: i64, to_ms: i64) -> rusqlite::Result<i64> {
        let tx = self.conn.unchecked_transaction()?;
        let from = after_ms.saturating_sub(3_600_000).saturating_add(1);
        let hours = blocks::read_rollups(&tx, id, RollupStep::Hour, from, to_ms.saturating_add(1))?;
        Ok(hours.iter().map(|r| r.count as i64).sum())
    }
}

/// What the host recorded, as the pattern learner reads it back at start.
#[derive(Debug, Default)]
pub struct PastEvents {
    /// Alert transitions, oldest first.
    pub transitions: Vec<super::TransitionRecord>,
    /// Events (plugin failures, time-outs, what collectors reported), oldest first.
    pub events: Vec<super::EventRecord>,
    /// Healing attempts, oldest first.
    pub heals: Vec<super::HealRecord>,
}

/// The newest row id of `alert_transitions`, `events` and `healing_attempts`: rows up to these
/// were written before a mark was taken.
pub type EventMarks = [i64; 3];

impl Reader {
    /// The newest row ids of the tables [`past_events`](Self::past_events) reads.
    ///
    /// # Errors
    ///
    /// SQLite failed.
    pub fn event_marks(&self) -> rusqlite::Result<EventMarks> {
        let mut marks = [0; 3];
        for (m, table) in marks
            .iter_mut()
            .zip(["alert_transitions", "events", "healing_attempts"])
        {
            *m = self.conn.query_row(
                &format!("SELECT coalesce(max(id), 0) FROM {table}"),
                [],
                |r| r.get(0),
            )?;
        }
        Ok(marks)
    }

    /// The transitions, events and healing attempts at or after `since_ms` with ids up to
    /// `marks`, at most the newest `limit` of each, oldest first.
    ///
    /// # Errors
    ///
    /// SQLite failed.
    pub fn past_events(
        &self,
        since_ms: u64,
        marks: EventMarks,
        limit: usize,
    ) -> rusqlite::Result<PastEvents> {
        let since = since_ms.min(i64::MAX as u64) as i64;
        let limit = limit.min(i64::MAX as usize) as i64;
        let tx = self.conn.unchecked_transaction()?;
        let mut out = PastEvents::default();
        let mut stmt = tx.prepare(
            "SELECT alert, labels, status, value, stale, at_ms, annotations FROM alert_transitions \
             WHERE at_ms >= ?1 AND id <= ?2 ORDER BY id DESC LIMIT ?3",
        )?;
        out.transitions = stmt
            .query_map(rusqlite::params![since, marks[0], limit], |r| {
                Ok(super::TransitionRecord {
                    alert: r.get(0)?,
                    labels: parse_labels(&r.get::<_, String>(1)?),
                    firing: r.get::<_, String>(2)? == "firing",
                    value: r.get(3)?,
                    stale: r.get(4)?,
                    at_ms: r.get::<_, i64>(5)?.max(0) as u64,
                    annotations: parse_annotations(r.get(6)?),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = tx.prepare(
            "SELECT source, kind, message, labels, ts_ms FROM events \
             WHERE ts_ms >= ?1 AND id <= ?2 ORDER BY id DESC LIMIT ?3",
        )?;
        out.events = stmt
            .query_map(rusqlite::params![since, marks[1], limit], |r| {
                Ok(super::EventRecord {
                    source: r.get(0)?,
                    kind: r.get(1)?,
                    message: r.get(2)?,
                    labels: parse_labels(&r.get::<_, String>(3)?),
                    timestamp_ms: r.get::<_, i64>(4)?.max(0) as u64,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = tx.prepare(
            "SELECT strategy, alert, labels, attempt, started_ms, finished_ms, success, message, \
             detected_ms, verified, recovered_ms, reason \
             FROM healing_attempts WHERE started_ms >= ?1 AND id <= ?2 ORDER BY id DESC LIMIT ?3",
        )?;
        out.heals = stmt
            .query_map(rusqlite::params![since, marks[2], limit], |r| {
                let started: i64 = r.get(4)?;
                let finished: i64 = r.get(5)?;
                Ok(super::HealRecord {
                    strategy: r.get(0)?,
                    alert: r.get(1)?,
                    labels: parse_labels(&r.get::<_, String>(2)?),
                    attempt: r.get(3)?,
                    success: r.get(6)?,
                    message: r.get(7)?,
                    duration_ms: (finished - started).max(0) as u64,
                    started_ms: started.max(0) as u64,
                    detected_ms: r.get::<_, Option<i64>>(8)?.unwrap_or(started).max(0) as u64,
                    verified: r.get(9)?,
                    recovered_ms: r.get::<_, Option<i64>>(10)?.map(|v| v.max(0) as u64),
                    reason: r.get(11)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        out.transitions.reverse();
        out.events.reverse();
        out.heals.reverse();
        Ok(out)
    }
}
