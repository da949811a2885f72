//! Raw points on disk: per-series blocks, the tail of recent writes, and the per-minute and
//! per-hour accumulators that become rollup rows.
//!
//! Every write appends what it brought as one `tail` row per group of 256 series ids, so a write
//! costs a few rows whatever the number of series, and a crash loses nothing written. In memory,
//! each series has an open block (its points not yet in `blocks`) and its open minute and hour.
//! When a series' open block holds [`BLOCK_POINTS`] points, or its first point is
//! [`FLUSH_AGE_MS`] old, a write turns it into a `blocks` row and writes the series' rollup rows
//! up to that point, a bounded number of series per write; `tail` rows whose points are all in
//! blocks are then deleted. So the rollup rows of a series cover exactly its points up to its last
//! block; readers complete the last bucket from the raw points after it.

use std::collections::{BTreeMap, HashMap};

use foldhash::fast::RandomState;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::sqlite::{Rollup, RollupStep};
use crate::encoding::{
    BlockBuilder, decode_block, try_read_varint, unzigzag, write_varint, zigzag,
};

/// Points per block, as in the in-memory store's chunks.
pub(super) const BLOCK_POINTS: usize = 120;
/// A series' open block is written once its first point is this old, however few points it has:
/// this bounds the tail, and how late the rollup rows of a slow series are.
pub(super) const FLUSH_AGE_MS: u64 = 15 * 60_000;
/// Blocks written per write at least; more with many series (one in 16), so that series that
/// fill their blocks in the same cycle spread over a few.
const FLUSH_MIN: usize = 256;

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 3_600_000;

/// The tail group of series `id`.
pub(super) fn group(id: i64) -> i64 {
    id >> 8
}

fn as_sql(t: u64) -> i64 {
    t.min(i64::MAX as u64) as i64
}

/// Adds `(ts, v)` to the open bucket `acc` of `step_ms`; a bucket it closes goes to `closed`.
fn accumulate(acc: &mut Option<Rollup>, closed: &mut Vec<Rollup>, step_ms: u64, ts: u64, v: f64) {
    let bucket = ts - ts % step_ms;
    match acc {
        Some(r) if r.bucket_ms >= bucket => {
            r.count += 1;
            r.sum += v;
            r.min = r.min.min(v);
            r.max = r.max.max(v);
        }
        _ => {
            closed.extend(acc.take());
            *acc = Some(Rollup {
                bucket_ms: bucket,
                count: 1,
                sum: v,
                min: v,
                max: v,
            });
        }
    }
}

/// A series' state in memory: what is not yet in `blocks` and the rollups.
#[derive(Debug, Default)]
pub(super) struct Open {
    // The points not yet in `blocks`: full blocks, then the one being filled (a write may bring
    // more than a block's worth). When empty of points, one cleared block keeps its buffer.
    blocks: Vec<BlockBuilder>,
    // The tail write its first point came with.
    first_seq: u64,
    // The newest point stored, in a block or not: older or equal times are dropped.
    last_ts: Option<u64>,
    minute: Option<Rollup>,
    hour: Option<Rollup>,
    // Buckets closed since the last block, written with the next one.
    closed_minutes: Vec<Rollup>,
    closed_hours: Vec<Rollup>,
}

impl Open {
    /// Adds a point that came with tail write `seq`; `false` when it is not newer than the last.
    pub(super) fn add(&mut self, seq: u64, ts: u64, v: f64) -> bool {
        if self.last_ts.is_some_and(|l| ts <= l) {
            return false;
        }
        if !self.pending() {
            self.first_seq = seq;
        }
        if self.blocks.last().is_none_or(|b| b.len() >= BLOCK_POINTS) {
            self.blocks.push(BlockBuilder::default());
        }
        self.blocks.last_mut().expect("pushed").push(ts, v);
        self.last_ts = Some(ts);
        accumulate(&mut self.minute, &mut self.closed_minutes, MINUTE_MS, ts, v);
        accumulate(&mut self.hour, &mut self.closed_hours, HOUR_MS, ts, v);
        true
    }

    /// Whether some points are not yet in `blocks`.
    fn pending(&self) -> bool {
        self.blocks.first().is_some_and(|b| b.len() > 0)
    }

    /// The first open point's time, when the open blocks are due at `now_ms`.
    fn due(&self, now_ms: u64) -> Option<u64> {
        let (first, _) = self.blocks.first()?.span()?;
        let full = self.blocks.len() > 1 || self.blocks[0].len() >= BLOCK_POINTS;
        (full || first.saturating_add(FLUSH_AGE_MS) <= now_ms).then_some(first)
    }

    /// Writes the open blocks and the rollups up to their end.
    fn flush(&mut self, tx: &Transaction<'_>, id: i64) -> rusqlite::Result<()> {
        if !self.pending() {
            return Ok(());
        }
        // A store opened beside the host writes, as it stops, the open blocks it found: they
        // start where the host's next ones do, which hold the same points and more.
        let mut insert =
            tx.prepare_cached("INSERT OR REPLACE INTO blocks VALUES (?1, ?2, ?3, ?4, ?5)")?;
        for b in &self.blocks {
            let Some((start, end)) = b.span() else {
                continue;
            };
            insert.execute(params![id, as_sql(start), as_sql(end), b.len(), b.data()])?;
        }
        for (step, closed, open) in [
            (RollupStep::Minute, &mut self.closed_minutes, self.minute),
            (RollupStep::Hour, &mut self.closed_hours, self.hour),
        ] {
            let sql = format!(
                "INSERT OR REPLACE INTO {} VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                step.table()
            );
            let mut stmt = tx.prepare_cached(&sql)?;
            for r in closed.drain(..).chain(open) {
                stmt.execute(params![
                    id,
                    as_sql(r.bucket_ms),
                    r.count,
                    r.sum,
                    r.min,
                    r.max
                ])?;
            }
        }
        self.blocks.truncate(1);
        self.blocks[0].clear();
        Ok(())
    }
}

/// The tail rows of one write, by group: the row's first time (varint), then per point the
/// series id (varint), its time's difference with the first (zigzag varint: one byte when the
/// collector stamped its batch with one time) and its value (8 bytes).
#[derive(Debug, Default)]
pub(super) struct TailRows(BTreeMap<i64, (u64, Vec<u8>)>);

impl TailRows {
    pub(super) fn push(&mut self, id: i64, ts: u64, v: f64) {
        let (base, data) = self.0.entry(group(id)).or_insert_with(|| {
            let mut data = Vec::new();
            write_varint(&mut data, ts);
            (ts, data)
        });
        write_varint(data, id as u64);
        write_varint(data, zigzag(ts.wrapping_sub(*base) as i64));
        data.extend_from_slice(&v.to_bits().to_le_bytes());
    }

    pub(super) fn insert(&self, tx: &Transaction<'_>, seq: u64) -> rusqlite::Result<()> {
        let mut stmt = tx.prepare_cached("INSERT INTO tail VALUES (?1, ?2, ?3)")?;
        for (grp, (_, data)) in &self.0 {
            stmt.execute(params![grp, as_sql(seq), data])?;
        }
        Ok(())
    }
}

/// The points of a tail row as `(series id, ms, value)`; a damaged row ends early.
pub(super) fn decode_tail(data: &[u8]) -> impl Iterator<Item = (i64, u64, f64)> + '_ {
    let mut at = 0;
    let base = try_read_varint(data, &mut at);
    std::iter::from_fn(move || {
        let base = base?;
        let id = try_read_varint(data, &mut at)?;
        let ts = base.wrapping_add_signed(unzigzag(try_read_varint(data, &mut at)?));
        let bits = data.get(at..at + 8)?;
        at += 8;
        let v = f64::from_bits(u64::from_le_bytes(bits.try_into().ok()?));
        Some((id as i64, ts, v))
    })
}

/// Every series' open state, and where the tail stands.
#[derive(Debug, Default)]
pub(super) struct OpenSeries {
    pub(super) series: HashMap<i64, Open, RandomState>,
    /// The next tail write's `seq`.
    pub(super) seq: u64,
    // Per group, the `seq` below which its tail rows were deleted.
    trimmed: HashMap<i64, u64, RandomState>,
}

impl OpenSeries {
    /// Rebuilds the state from the store: every series' last block and rollup rows, then the tail.
    pub(super) fn restore(conn: &Connection) -> rusqlite::Result<Self> {
        let mut state = Self::default();
        let ids: Vec<i64> = conn
            .prepare("SELECT id FROM series")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut last_block = conn.prepare(
            "SELECT end_ms FROM blocks WHERE series_id = ?1 ORDER BY start_ms DESC LIMIT 1",
        )?;
        let last_row = |step: RollupStep| {
            conn.prepare(&format!(
                "SELECT bucket_ms, count, sum, min, max FROM {} WHERE series_id = ?1
                 ORDER BY bucket_ms DESC LIMIT 1",
                step.table()
            ))
        };
        let (mut minute, mut hour) = (last_row(RollupStep::Minute)?, last_row(RollupStep::Hour)?);
        for id in ids {
            let open = Open {
                last_ts: last_block
                    .query_row([id], |r| r.get::<_, u64>(0))
                    .optional()?,
                minute: minute.query_row([id], rollup_row).optional()?,
                hour: hour.query_row([id], rollup_row).optional()?,
                ..Open::default()
            };
            state.series.insert(id, open);
        }
        let mut tail = conn.prepare("SELECT seq, data FROM tail ORDER BY seq, grp")?;
        let mut rows = tail.query([])?;
        while let Some(r) = rows.next()? {
            let seq: u64 = r.get(0)?;
            state.seq = state.seq.max(seq + 1);
            let data = r.get_ref(1)?.as_blob()?;
            for (id, ts, v) in decode_tail(data) {
                // Points of series unknown here (a damaged row) are skipped.
                if let Some(open) = state.series.get_mut(&id) {
                    open.add(seq, ts, v);
                }
            }
        }
        Ok(state)
    }

    /// Writes the blocks that are due at `now_ms` (all open ones when `all`), oldest first and a
    /// bounded number unless `all`, then deletes the tail rows no longer needed.
    pub(super) fn flush(
        &mut self,
        tx: &Transaction<'_>,
        now_ms: u64,
        all: bool,
    ) -> rusqlite::Result<()> {
        let mut due: Vec<(u64, i64)> = self
            .series
            .iter()
            .filter_map(|(&id, o)| {
                let due = if all {
                    o.blocks.first().and_then(BlockBuilder::span).map(|s| s.0)
                } else {
                    o.due(now_ms)
                };
                due.map(|first| (first, id))
            })
            .collect();
        let budget = (self.series.len() / 16).max(FLUSH_MIN);
        if !all && due.len() > budget {
            due.select_nth_unstable(budget);
            due.truncate(budget);
        }
        for (_, id) in due {
            if let Some(o) = self.series.get_mut(&id) {
                o.flush(tx, id)?;
            }
        }
        self.trim(tx)
    }

    fn trim(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let mut floors: HashMap<i64, u64, RandomState> = HashMap::default();
        for (&id, o) in &self.series {
            let floor = if o.pending() { o.first_seq } else { self.seq };
            let f = floors.entry(group(id)).or_insert(floor);
            *f = (*f).min(floor);
        }
        let mut stmt = tx.prepare_cached("DELETE FROM tail WHERE grp = ?1 AND seq < ?2")?;
        for (grp, floor) in floors {
            if self.trimmed.get(&grp).is_some_and(|&t| t >= floor) {
                continue;
            }
            stmt.execute(params![grp, as_sql(floor)])?;
            self.trimmed.insert(grp, floor);
        }
        Ok(())
    }

    /// The open block's points of series `id`, oldest first.
    pub(super) fn open_points(&self, id: i64) -> impl Iterator<Item = (u64, f64)> + '_ {
        self.series
            .get(&id)
            .into_iter()
            .flat_map(|o| &o.blocks)
            .flat_map(|b| decode_block(b.data(), b.len()))
    }
}

fn rollup_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Rollup> {
    Ok(Rollup {
        bucket_ms: r.get(0)?,
        count: r.get(1)?,
        sum: r.get(2)?,
        min: r.get(3)?,
        max: r.get(4)?,
    })
}

/// Points of series `id` with `after_ms < ts <= to_ms`, oldest first: from its blocks, then from
/// the tail rows of its group past its last block. Run inside one read transaction for a
/// consistent view.
pub(super) fn read_points(
    conn: &Connection,
    id: i64,
    after_ms: i64,
    to_ms: i64,
) -> rusqlite::Result<Vec<(i64, f64)>> {
    let mut out = Vec::new();
    if to_ms <= after_ms {
        return Ok(out);
    }
    let in_range = |t: i64| t > after_ms && t <= to_ms;
    // The block that holds `after_ms` starts at or before it: start there.
    let from: i64 = conn
        .prepare_cached(
            "SELECT start_ms FROM blocks WHERE series_id = ?1 AND start_ms <= ?2
             ORDER BY start_ms DESC LIMIT 1",
        )?
        .query_row(params![id, after_ms], |r| r.get(0))
        .optional()?
        .unwrap_or(i64::MIN);
    let mut stmt = conn.prepare_cached(
        "SELECT count, data FROM blocks WHERE series_id = ?1 AND start_ms >= ?2 AND start_ms <= ?3
         ORDER BY start_ms",
    )?;
    let mut rows = stmt.query(params![id, from, to_ms])?;
    while let Some(r) = rows.next()? {
        let count: usize = r.get(0)?;
        let data = r.get_ref(1)?.as_blob()?;
        out.extend(
            decode_block(data, count)
                .map(|(t, v)| (as_sql(t), v))
                .filter(|p| in_range(p.0)),
        );
    }
    drop(rows);
    for_tail(conn, id, |t, v| {
        if in_range(t) {
            out.push((t, v));
        }
    })?;
    Ok(out)
}

/// Calls `f` with each point of series `id` in the tail and not in a block, oldest first.
fn for_tail(conn: &Connection, id: i64, mut f: impl FnMut(i64, f64)) -> rusqlite::Result<()> {
    let last_end: i64 = conn
        .prepare_cached(
            "SELECT end_ms FROM blocks WHERE series_id = ?1 ORDER BY start_ms DESC LIMIT 1",
        )?
        .query_row([id], |r| r.get(0))
        .optional()?
        .unwrap_or(i64::MIN);
    let mut stmt = conn.prepare_cached("SELECT data FROM tail WHERE grp = ?1 ORDER BY seq")?;
    let mut rows = stmt.query([group(id)])?;
    let mut last = last_end;
    while let Some(r) = rows.next()? {
        for (sid, ts, v) in decode_tail(r.get_ref(0)?.as_blob()?) {
            let ts = as_sql(ts);
            // Only newer points were stored: the same rule as the writer's.
            if sid == id && ts > last {
                last = ts;
                f(ts, v);
            }
        }
    }
    Ok(())
}

/// The latest point of series `id` with `after_ms < ts <= to_ms`.
pub(super) fn latest(
    conn: &Connection,
    id: i64,
    after_ms: i64,
    to_ms: i64,
) -> rusqlite::Result<Option<(i64, f64)>> {
    let mut found = None;
    for_tail(conn, id, |t, v| {
        if t > after_ms && t <= to_ms {
            found = Some((t, v));
        }
    })?;
    if found.is_some() {
        return Ok(found);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT count, data, end_ms FROM blocks WHERE series_id = ?1 AND start_ms <= ?2
         ORDER BY start_ms DESC",
    )?;
    let mut rows = stmt.query(params![id, to_ms])?;
    while let Some(r) = rows.next()? {
        if r.get::<_, i64>(2)? <= after_ms {
            break;
        }
        let data = r.get_ref(1)?.as_blob()?;
        let last = decode_block(data, r.get(0)?)
            .map(|(t, v)| (as_sql(t), v))
            .filter(|p| p.0 > after_ms && p.0 <= to_ms)
            .last();
        if last.is_some() {
            return Ok(last);
        }
    }
    Ok(None)
}

/// The time of the oldest point of series `id`.
pub(super) fn oldest(conn: &Connection, id: i64) -> rusqlite::Result<Option<i64>> {
    let first: Option<i64> = conn
        .prepare_cached("SELECT min(start_ms) FROM blocks WHERE series_id = ?1")?
        .query_row([id], |r| r.get(0))?;
    if first.is_some() {
        return Ok(first);
    }
    let mut oldest = None;
    for_tail(conn, id, |t, _| {
        oldest.get_or_insert(t);
    })?;
    Ok(oldest)
}

/// Buckets of series `id` starting in `from_ms..to_ms`, oldest first: the stored rows, and from
/// the last row on (a bucket that may have been open when it was written) whichever of the row
/// and the raw points counts more points: the raw points hold what came after the row, the row
/// what retention has already deleted of the raw points.
pub(super) fn read_rollups(
    conn: &Connection,
    id: i64,
    step: RollupStep,
    from_ms: i64,
    to_ms: i64,
) -> rusqlite::Result<Vec<Rollup>> {
    let table = step.table();
    let sql = format!(
        "SELECT bucket_ms, count, sum, min, max FROM {table} WHERE series_id = ?1
         AND bucket_ms >= ?2 AND bucket_ms < ?3 ORDER BY bucket_ms"
    );
    let mut rows: Vec<Rollup> = conn
        .prepare_cached(&sql)?
        .query_map(params![id, from_ms, to_ms], rollup_row)?
        .collect::<rusqlite::Result<_>>()?;
    let sql = format!("SELECT max(bucket_ms) FROM {table} WHERE series_id = ?1");
    let last: Option<i64> = conn.prepare_cached(&sql)?.query_row([id], |r| r.get(0))?;
    let raw_from = last.map_or(from_ms, |l| l.max(from_ms));
    if raw_from >= to_ms {
        return Ok(rows);
    }
    let size = match step {
        RollupStep::Minute => MINUTE_MS,
        RollupStep::Hour => HOUR_MS,
    } as i64;
    let mut raw: Vec<Rollup> = Vec::new();
    // Buckets start on multiples of the step: from the start of `raw_from`'s.
    let first = raw_from - raw_from.rem_euclid(size);
    // To the end of the last bucket that starts before `to_ms`.
    let last_bucket = to_ms.saturating_sub(1) - to_ms.saturating_sub(1).rem_euclid(size);
    let end = last_bucket.saturating_add(size - 1);
    for (t, v) in read_points(conn, id, first.saturating_sub(1), end)? {
        let bucket = t - t.rem_euclid(size);
        if bucket < raw_from || bucket >= to_ms {
            continue;
        }
        match raw.last_mut() {
            Some(r) if r.bucket_ms as i64 == bucket => {
                r.count += 1;
                r.sum += v;
                r.min = r.min.min(v);
                r.max = r.max.max(v);
            }
            _ => raw.push(Rollup {
                bucket_ms: bucket as u64,
                count: 1,
                sum: v,
                min: v,
                max: v,
            }),
        }
    }
    for r in raw {
        match rows.binary_search_by_key(&r.bucket_ms, |x| x.bucket_ms) {
            Ok(i) if rows[i].count < r.count => rows[i] = r,
            Ok(_) => {}
            Err(i) => rows.insert(i, r),
        }
    }
    Ok(rows)
}

/// Writes `points` (oldest first, increasing times) of a new series `id` as blocks and rollup
/// rows: for an earlier host's file imported into a new store.
pub(super) fn insert_points(
    tx: &Transaction<'_>,
    id: i64,
    points: &[(u64, f64)],
) -> rusqlite::Result<()> {
    let mut open = Open::default();
    for &(t, v) in points {
        open.add(0, t, v);
    }
    open.flush(tx, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_rows_read_back_and_a_cut_row_ends_early() {
        let mut rows = TailRows::default();
        let pts = [
            (1, 5_000u64, 1.5),
            (300, 4_000, -2.0),
            (2, 5_000, 0.0),
            (1, 6_000, 3.0),
        ];
        for &(id, t, v) in &pts {
            rows.push(id, t, v);
        }
        let (_, low) = &rows.0[&0];
        let got: Vec<_> = decode_tail(low).collect();
        assert_eq!(got, [(1, 5_000, 1.5), (2, 5_000, 0.0), (1, 6_000, 3.0)]);
        let (_, high) = &rows.0[&1];
        assert_eq!(decode_tail(high).collect::<Vec<_>>(), [(300, 4_000, -2.0)]);
        for cut in 0..low.len() {
            assert!(decode_tail(&low[..cut]).count() < 3);
        }
    }

    #[test]
    fn a_bucket_closes_when_a_point_of_the_next_one_comes() {
        let mut open = Open::default();
        for t in [0u64, 30_000, 59_999, 60_000, 3_600_000] {
            assert!(open.add(0, t, t as f64));
        }
        assert!(!open.add(0, 3_600_000, 1.0), "the same time twice");
        assert!(!open.add(0, 10, 1.0), "older");
        let counts: Vec<_> = open
            .closed_minutes
            .iter()
            .map(|r| (r.bucket_ms, r.count))
            .collect();
        assert_eq!(counts, [(0, 3), (60_000, 1)]);
        assert_eq!(open.minute.map(|r| r.bucket_ms), Some(3_600_000));
        assert_eq!(open.closed_hours.len(), 1);
        assert_eq!(open.closed_hours[0].count, 4);
        assert_eq!(open.closed_hours[0].max, 60_000.0);
    }
}
