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

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

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

    /// The first open point's time.
    fn first_open(&self) -> Option<u64> {
        Some(self.blocks.first()?.span()?.0)
    }

    /// Whether the open points fill a block: due whatever their age.
    fn full(&self) -> bool {
        self.blocks.len() > 1 || self.blocks.first().is_some_and(|b| b.len() >= BLOCK_POINTS)
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
///
/// A write visits the series it brings points for and those due, never all of them: the series
/// with open points wait in a heap by the time of their first one, those whose open points fill
/// a block in a list, and each tail group keeps the `first_seq` of its series with open points.
#[derive(Debug, Default)]
pub(super) struct OpenSeries {
    series: HashMap<i64, Open, RandomState>,
    /// The next tail write's `seq`.
    pub(super) seq: u64,
    // Per group, the `seq` below which its tail rows were deleted.
    trimmed: HashMap<i64, u64, RandomState>,
    // Per group (every group with a series), the `first_seq` of its series with open points,
    // with how many share each: the least is the seq below which the group's tail rows hold
    // only points in blocks (the next write's `seq` when there is none).
    floors: BTreeMap<i64, BTreeMap<u64, u32>>,
    // The series with open points, by the time of the first one, oldest on top; an entry whose
    // series was written since no longer matches its first open point and is skipped.
    waiting: BinaryHeap<Reverse<(u64, i64)>>,
    // Series whose open points filled a block since they were last written.
    full: Vec<i64>,
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
            state.floors.entry(group(id)).or_default();
        }
        let mut tail = conn.prepare("SELECT seq, data FROM tail ORDER BY seq, grp")?;
        let mut rows = tail.query([])?;
        while let Some(r) = rows.next()? {
            let seq: u64 = r.get(0)?;
            state.seq = state.seq.max(seq + 1);
            let data = r.get_ref(1)?.as_blob()?;
            for (id, ts, v) in decode_tail(data) {
                // Points of series unknown here (a damaged row) are skipped.
                if state.series.contains_key(&id) {
                    state.add(id, seq, ts, v);
                }
            }
        }
        Ok(state)
    }

    /// Series that the tail holds.
    pub(super) fn len(&self) -> usize {
        self.series.len()
    }

    /// Adds a point of series `id` (made when new) that came with tail write `seq`; `false` when
    /// it is not newer than the series' last.
    pub(super) fn add(&mut self, id: i64, seq: u64, ts: u64, v: f64) -> bool {
        let open = self.series.entry(id).or_default();
        let was_pending = open.pending();
        if !open.add(seq, ts, v) {
            return false;
        }
        if !was_pending {
            let seqs = self.floors.entry(group(id)).or_default();
            *seqs.entry(seq).or_default() += 1;
            self.waiting.push(Reverse((ts, id)));
        }
        if open.blocks.len() == 1 && open.blocks[0].len() == BLOCK_POINTS {
            self.full.push(id);
        }
        true
    }

    /// Writes the blocks that are due at `now_ms` (all open ones when `all`), oldest first and a
    /// bounded number unless `all`, then deletes the tail rows no longer needed.
    pub(super) fn flush(
        &mut self,
        tx: &Transaction<'_>,
        now_ms: u64,
        all: bool,
    ) -> rusqlite::Result<()> {
        let due = if all {
            (self.series.iter())
                .filter_map(|(&id, o)| Some((o.first_open()?, id)))
                .collect()
        } else {
            self.due(now_ms)
        };
        for (_, id) in due {
            self.flush_one(tx, id)?;
        }
        self.trim(tx)
    }

    /// The series due at `now_ms` by the time of their first open point, oldest first and at
    /// most a budget: those whose open points fill a block, and those whose first one is
    /// [`FLUSH_AGE_MS`] old. The others due are looked at again by the next write.
    fn due(&mut self, now_ms: u64) -> Vec<(u64, i64)> {
        let mut due = Vec::new();
        while let Some(&Reverse((first, id))) = self.waiting.peek() {
            if first.saturating_add(FLUSH_AGE_MS) > now_ms {
                break;
            }
            self.waiting.pop();
            if self.series.get(&id).and_then(Open::first_open) == Some(first) {
                due.push((first, id));
            }
        }
        for id in std::mem::take(&mut self.full) {
            if let Some(o) = self.series.get(&id).filter(|o| o.full())
                && let Some(first) = o.first_open()
            {
                due.push((first, id));
            }
        }
        due.sort_unstable();
        due.dedup();
        let budget = (self.series.len() / 16).max(FLUSH_MIN);
        if due.len() > budget {
            for &(first, id) in &due[budget..] {
                if self.series.get(&id).is_some_and(Open::full) {
                    self.full.push(id);
                } else {
                    self.waiting.push(Reverse((first, id)));
                }
            }
            due.truncate(budget);
        }
        // Entries of series written since pile up while their time is young: rebuilt when they
        // outnumber the series, so memory follows the number of series.
        if self.waiting.len() > 2 * self.series.len() + FLUSH_MIN {
            self.waiting = (self.series.iter())
                .filter_map(|(&id, o)| Some(Reverse((o.first_open()?, id))))
                .collect();
        }
        due
    }

    /// Writes series `id`'s open blocks and rollups.
    fn flush_one(&mut self, tx: &Transaction<'_>, id: i64) -> rusqlite::Result<()> {
        let Some(o) = self.series.get_mut(&id).filter(|o| o.pending()) else {
            return Ok(());
        };
        let first_seq = o.first_seq;
        o.flush(tx, id)?;
        if let Some(seqs) = self.floors.get_mut(&group(id))
            && let Some(n) = seqs.get_mut(&first_seq)
        {
            *n -= 1;
            if *n == 0 {
                seqs.remove(&first_seq);
            }
        }
        Ok(())
    }

    fn trim(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let mut stmt = tx.prepare_cached("DELETE FROM tail WHERE grp = ?1 AND seq < ?2")?;
        for (&grp, seqs) in &self.floors {
            let floor = seqs.keys().next().copied().unwrap_or(self.seq);
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
