//! The store's schema, versioned with `PRAGMA user_version`, and its migrations.
//!
//! Version 0 is an empty file; each entry of [`MIGRATIONS`] takes the store one version up. A store
//! of a version above [`SCHEMA_VERSION`] was written by a newer host and is refused.

use rusqlite::Connection;

/// The schema version this host writes.
pub const SCHEMA_VERSION: u32 = 8;

/// Version 1. Labels are JSON objects with sorted keys (the same labels are the same text);
/// times are ms since the Unix epoch.
const V1: &str = "
CREATE TABLE series (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL,
    labels  TEXT NOT NULL,
    kind    TEXT NOT NULL,          -- 'gauge' or 'counter'
    source  TEXT NOT NULL,          -- collector instance
    UNIQUE (name, labels)
);
CREATE TABLE points (
    series_id INTEGER NOT NULL,
    ts_ms     INTEGER NOT NULL,
    value     REAL NOT NULL,
    PRIMARY KEY (series_id, ts_ms)
) WITHOUT ROWID;
CREATE TABLE rollup_1m (
    series_id INTEGER NOT NULL,
    bucket_ms INTEGER NOT NULL,     -- start of the minute
    count     INTEGER NOT NULL,
    sum       REAL NOT NULL,
    min       REAL NOT NULL,
    max       REAL NOT NULL,
    PRIMARY KEY (series_id, bucket_ms)
) WITHOUT ROWID;
CREATE TABLE rollup_1h (
    series_id INTEGER NOT NULL,
    bucket_ms INTEGER NOT NULL,     -- start of the hour
    count     INTEGER NOT NULL,
    sum       REAL NOT NULL,
    min       REAL NOT NULL,
    max       REAL NOT NULL,
    PRIMARY KEY (series_id, bucket_ms)
) WITHOUT ROWID;
CREATE TABLE alert_state (
    alert                TEXT NOT NULL,
    labels               TEXT NOT NULL,
    state                TEXT NOT NULL,  -- 'inactive', 'pending' or 'firing'
    value                REAL NOT NULL,
    pending_since_ms     INTEGER,
    firing_since_ms      INTEGER,
    resolved_at_ms       INTEGER,
    last_notified_ms     INTEGER,
    last_notified_status TEXT,           -- 'firing' or 'resolved'
    PRIMARY KEY (alert, labels)
) WITHOUT ROWID;
CREATE TABLE alert_transitions (
    id     INTEGER PRIMARY KEY,
    alert  TEXT NOT NULL,
    labels TEXT NOT NULL,
    status TEXT NOT NULL,           -- 'firing' or 'resolved'
    value  REAL NOT NULL,
    stale  INTEGER NOT NULL,
    at_ms  INTEGER NOT NULL
);
CREATE TABLE healing_attempts (
    id          INTEGER PRIMARY KEY,
    strategy    TEXT NOT NULL,
    alert       TEXT NOT NULL,
    labels      TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    started_ms  INTEGER NOT NULL,
    finished_ms INTEGER NOT NULL,
    success     INTEGER NOT NULL,
    verified    INTEGER,                -- 1: the alert resolved after this success (see V6)
    message     TEXT NOT NULL
);
CREATE TABLE healing_counts (
    strategy TEXT NOT NULL,
    alert    TEXT NOT NULL,
    success  INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (strategy, alert, success)
) WITHOUT ROWID;
CREATE TABLE healing_episodes (
    strategy        TEXT NOT NULL,
    alert           TEXT NOT NULL,
    labels          TEXT NOT NULL,
    firing          INTEGER NOT NULL,
    value           REAL NOT NULL,
    window_ms       TEXT NOT NULL,      -- JSON array: starts of the attempts in the window
    attempts        INTEGER NOT NULL,
    last_attempt_ms INTEGER,
    escalated       INTEGER NOT NULL,   -- gave up; not again until the window has room
    last_message    TEXT NOT NULL,
    last_success    INTEGER NOT NULL,
    PRIMARY KEY (strategy, alert, labels)
) WITHOUT ROWID;
CREATE TABLE events (
    id      INTEGER PRIMARY KEY,
    source  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    message TEXT NOT NULL,
    labels  TEXT NOT NULL,
    ts_ms   INTEGER NOT NULL
);
CREATE TABLE incidents (
    id        INTEGER PRIMARY KEY,
    opened_ms INTEGER NOT NULL,
    closed_ms INTEGER,
    data      TEXT NOT NULL
);
CREATE TABLE silences (
    id       INTEGER PRIMARY KEY,
    start_ms INTEGER NOT NULL,
    end_ms   INTEGER NOT NULL,
    data     TEXT NOT NULL
);
";

/// Version 2: the clean-stop marker. A host writes `clean_stop` in its last transaction and
/// deletes it at start, so a store without it was left by a crash and gets the full check.
const V2: &str = "
CREATE TABLE host_state (
    key   TEXT PRIMARY KEY,         -- 'clean_stop'
    value INTEGER NOT NULL          -- when, ms since epoch
) WITHOUT ROWID;
";

/// Version 3: when each notifier was last sent the firing notification of each firing alert
/// instance, so reminders (`resend_every`) keep their schedule across a restart.
const V3: &str = "
CREATE TABLE notifications_sent (
    notifier TEXT NOT NULL,         -- notifier instance name
    alert    TEXT NOT NULL,
    labels   TEXT NOT NULL,
    sent_ms  INTEGER NOT NULL,
    PRIMARY KEY (notifier, alert, labels)
) WITHOUT ROWID;
";

/// Version 4: points kept per series in blocks instead of one row each.
///
/// - `blocks`: a series' points from `start_ms` to `end_ms` (both included), `count` of them,
///   encoded in `data` (the first point's time as a varint and value as 8 bytes, then per point
///   its change of time step as a zigzag varint and its value XOR-ed with the previous one; see
///   the host's `encoding` module): 2-4 bytes a point for a steady series.
/// - `tail`: what each write added, one row per write and group of 256 series ids
///   (`grp = series_id >> 8`), `seq` increasing with each write: the points not yet in a block,
///   so a crash loses nothing written. `data` is a list of entries: series id (varint), time as
///   a zigzag varint of its difference with the row's first time, value (8 bytes). A point of the
///   tail at or before its series' last block's `end_ms` is already in that block.
/// - The rollup tables hold each series' buckets up to its last block: the last row of a series
///   may be a bucket still open, completed from the raw points after it.
///
/// The points of version 2's `points` are moved into blocks by [`convert_points`].
const V4: &str = "
CREATE TABLE blocks (
    series_id INTEGER NOT NULL,
    start_ms  INTEGER NOT NULL,
    end_ms    INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    data      BLOB NOT NULL,
    PRIMARY KEY (series_id, start_ms)
) WITHOUT ROWID;
CREATE TABLE tail (
    grp  INTEGER NOT NULL,
    seq  INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (grp, seq)
) WITHOUT ROWID;
";

/// Version 5: the firing alert instances whose firing notification was withheld because a
/// silence or an inhibition rule muted them: it is sent when the mute ends while they still fire,
/// and their resolution is withheld too, across a restart as well.
const V5: &str = "
CREATE TABLE notifications_withheld (
    alert  TEXT NOT NULL,
    labels TEXT NOT NULL,
    PRIMARY KEY (alert, labels)
) WITHOUT ROWID;
";

/// Version 6: verified healing. Each attempt keeps when its alert fired (`detected_ms`), when it
/// resolved within the strategy's `verify_within` after a reported success (`recovered_ms`), and
/// why it counts as failed (`reason`). `verified` is now 1 (the alert resolved within the grace
/// period), 0 (reported failure, or success without recovery) or NULL (a success still waiting
/// for its verification). Attempts of earlier versions: reported failures become 0, every
/// success but the last per strategy and alert instance too (its verification was lost); the
/// last stays NULL and is settled by the running host.
const V6: &str = "
ALTER TABLE healing_attempts ADD COLUMN detected_ms INTEGER;    -- when the alert fired
ALTER TABLE healing_attempts ADD COLUMN recovered_ms INTEGER;   -- when it resolved (verified = 1)
ALTER TABLE healing_attempts ADD COLUMN reason TEXT;            -- why verified = 0
UPDATE healing_attempts SET verified = 0, reason = 'the strategy reported failure'
    WHERE verified IS NULL AND NOT success;
UPDATE healing_attempts SET verified = 0, reason = 'not verified before the upgrade'
    WHERE verified IS NULL AND id NOT IN
        (SELECT max(id) FROM healing_attempts GROUP BY strategy, alert, labels);
CREATE INDEX healing_attempts_instance ON healing_attempts (strategy, alert, labels, started_ms);
CREATE INDEX healing_attempts_pending ON healing_attempts (id) WHERE verified IS NULL;
";

/// Version 7: each alert instance's annotations, as rendered at its last evaluation (a JSON
/// object), so a restarted host serves and re-sends them before its first evaluation. NULL for
/// the instances an earlier version stored: no annotations until they are evaluated again.
const V7: &str = "
ALTER TABLE alert_state ADD COLUMN annotations TEXT;
";

/// Version 8: each alert transition's annotations, as rendered when it happened (a JSON
/// object; NULL without annotations, and for the transitions an earlier version stored).
const V8: &str = "
ALTER TABLE alert_transitions ADD COLUMN annotations TEXT;
";

/// Each migration, by the version it leaves the store at (index 0 takes version 0 to 1).
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8];

/// Points per block written by the migration from version 2.
const CONVERT_BLOCK: usize = 120;

/// Moves version 2's `points` into `blocks`, a series at a time, then drops the table.
fn convert_points(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let ids: Vec<i64> = tx
        .prepare("SELECT DISTINCT series_id FROM points")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut read =
        tx.prepare("SELECT ts_ms, value FROM points WHERE series_id = ?1 ORDER BY ts_ms")?;
    let mut insert = tx.prepare("INSERT INTO blocks VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for id in ids {
        let points: Vec<(u64, f64)> = read
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for block in points.chunks(CONVERT_BLOCK) {
            insert.execute(rusqlite::params![
                id,
                block[0].0,
                block[block.len() - 1].0,
                block.len(),
                crate::encoding::encode_block(block)
            ])?;
        }
    }
    drop((read, insert));
    tx.execute_batch("DROP TABLE points")
}

/// What [`migrate`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// A new, empty store: the schema was just created.
    Fresh,
    /// A store of this or an older version, now at [`SCHEMA_VERSION`].
    Existing,
    /// A store of a newer version than this host's; left untouched.
    Newer(u32),
}

/// The store's version: 0 for a new file.
///
/// # Errors
///
/// SQLite failed, e.g. the file is not a database.
pub fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Brings `conn` up to [`SCHEMA_VERSION`], all in one transaction, so an interrupted migration
/// leaves the store at its old version. On a new store, `fill` runs in the same transaction (the
/// one-time import of an earlier host's files): a crash during it leaves a store that imports again.
///
/// # Errors
///
/// SQLite failed; nothing was changed.
pub fn migrate(
    conn: &mut Connection,
    fill: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
) -> rusqlite::Result<Found> {
    // Up to date: nothing to write, no write lock taken (a host may be running on the store).
    if version(conn)? == SCHEMA_VERSION {
        return Ok(Found::Existing);
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: u32 = version(&tx)?;
    if version > SCHEMA_VERSION {
        return Ok(Found::Newer(version));
    }
    for sql in &MIGRATIONS[version as usize..] {
        tx.execute_batch(sql)?;
    }
    if version < 4 {
        convert_points(&tx)?;
    }
    if version == 0 {
        fill(&tx)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(if version == 0 {
        Found::Fresh
    } else {
        Found::Existing
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::history::{Database, Rollup, RollupStep};
    use crate::store::SeriesKey;

    #[test]
    fn a_version_2_store_opens_with_its_points_in_blocks() {
        let dir = std::env::temp_dir().join(format!("monitor-schema-v2-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(crate::history::DATABASE_FILE);
        // A store as version 2 wrote it: 300 points of one series, 50 of another, with rollups.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(V1).unwrap();
        conn.execute_batch(V2).unwrap();
        conn.execute_batch(
            r#"INSERT INTO series VALUES (1, 'a', '{"collector":"c"}', 'gauge', 'c');
               INSERT INTO series VALUES (2, 'b', '{"collector":"c"}', 'counter', 'c');
               WITH RECURSIVE t(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM t WHERE i < 299)
               INSERT INTO points SELECT 1, 1000 * i, i * 0.5 FROM t;
               WITH RECURSIVE t(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM t WHERE i < 49)
               INSERT INTO points SELECT 2, 1000 * i, i FROM t;
               INSERT INTO rollup_1m SELECT series_id, ts_ms - ts_ms % 60000, count(*),
                   sum(value), min(value), max(value) FROM points GROUP BY 1, 2;
               INSERT INTO rollup_1h SELECT series_id, 0, count(*), sum(value), min(value),
                   max(value) FROM points GROUP BY 1;
               PRAGMA user_version = 2;"#,
        )
        .unwrap();
        drop(conn);
        let day = Duration::from_secs(86_400);
        let mut db = Database::open(&dir, day, 30 * day).unwrap();
        let saved = db.load(0).unwrap();
        let key = |name: &str| SeriesKey {
            name: name.into(),
            labels: [("collector".to_owned(), "c".to_owned())].into(),
        };
        let a: Vec<(u64, f64)> = (0..300).map(|i| (1000 * i, i as f64 * 0.5)).collect();
        assert_eq!(db.points(&key("a")).unwrap(), a);
        assert_eq!(db.points(&key("b")).unwrap().len(), 50);
        assert_eq!(saved.series.len(), 2);
        assert_eq!(saved.series[0].points, a);
        let hours = db
            .rollups(&key("a"), RollupStep::Hour, 0, u64::MAX)
            .unwrap();
        let sum = (0..300).map(|i| i as f64 * 0.5).sum();
        assert_eq!(
            hours,
            [Rollup {
                bucket_ms: 0,
                count: 300,
                sum,
                min: 0.0,
                max: 149.5
            }]
        );
        let conn = Connection::open(&path).unwrap();
        assert_eq!(version(&conn).unwrap(), SCHEMA_VERSION);
        let blocks: i64 = conn
            .query_row("SELECT count(*) FROM blocks", [], |r| r.get(0))
            .unwrap();
        assert_eq!(blocks, 3 + 1, "blocks of at most 120 points");
        let gone: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'points'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(gone, 0, "the points table is dropped");
        drop((conn, db));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_version_6_store_keeps_its_alerts_without_annotations_and_stores_them_after() {
        let dir = std::env::temp_dir().join(format!("monitor-schema-v6-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(crate::history::DATABASE_FILE);
        let conn = Connection::open(&path).unwrap();
        for sql in &MIGRATIONS[..6] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            r#"INSERT INTO alert_state VALUES ('a', '{}', 'firing', 5.0, 1, 2, NULL, 2, 'firing');
               PRAGMA user_version = 6;"#,
        )
        .unwrap();
        drop(conn);
        let day = Duration::from_secs(86_400);
        let mut db = Database::open(&dir, day, 30 * day).unwrap();
        let saved = db.load(0).unwrap();
        assert_eq!(saved.alerts.len(), 1);
        assert_eq!(saved.alerts[0].state, crate::alert::AlertState::Firing);
        assert!(saved.alerts[0].annotations.is_empty());
        drop(db);
        let conn = Connection::open(&path).unwrap();
        assert_eq!(version(&conn).unwrap(), SCHEMA_VERSION);
        drop(conn);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    #[test]
    fn a_version_7_store_keeps_its_transitions_without_annotations_and_stores_them_after() {
        use crate::history::{Batch, TransitionQuery, TransitionRecord};
        let dir = std::env::temp_dir().join(format!("monitor-schema-v7-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(crate::history::DATABASE_FILE);
        let conn = Connection::open(&path).unwrap();
        for sql in &MIGRATIONS[..7] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            r#"INSERT INTO alert_transitions (alert, labels, status, value, stale, at_ms)
                   VALUES ('a', '{}', 'firing', 5.0, 0, 1000);
               PRAGMA user_version = 7;"#,
        )
        .unwrap();
        drop(conn);
        let day = Duration::from_secs(86_400);
        let mut db = Database::open(&dir, day, 30 * day).unwrap();
        let annotations: std::collections::BTreeMap<String, String> =
            [("summary".to_owned(), "a at 1".to_owned())].into();
        let batch = Batch {
            transitions: vec![TransitionRecord {
                alert: "a".into(),
                labels: Default::default(),
                firing: false,
                value: 1.0,
                stale: false,
                at_ms: 2_000,
                annotations: annotations.clone(),
            }],
            ..Default::default()
        };
        db.write(&[batch], 3_000).unwrap();
        let all = db
            .transitions(&TransitionQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(
            all[0].annotations, annotations,
            "stored after the migration"
        );
        assert!(all[1].annotations.is_empty(), "none before it");
        assert!(all[1].firing);
        drop(db);
        let conn = Connection::open(&path).unwrap();
        assert_eq!(version(&conn).unwrap(), SCHEMA_VERSION);
        drop(conn);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
