//! Raw points on disk: per-series blocks, the tail of recent writes, and the per-minute and
//! per-hour accumulators that become rollup rows.
//!
//! Every write appends what it brought as one `tail` row per group of 256 series ids, so a write
//! costs a few rows whatever the number of series, and a crash loses nothing written. In memory,
//! each series has an open block (its points not yet in `blocks`), found by a slot given once per
//! series, and the minute and hour its rollup rows end with. When a series' open block holds
//! [`BLOCK_POINTS`] points, or its first point is [`FLUSH_AGE_MS`] old, a write turns it into a
//! `blocks` row and writes the series' rollup rows up to that point, computed from the block's
//! points, a bounded number of series per write; `tail` rows whose points are all in
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

/// A series' state in memory: what is not yet in `blocks`, and the buckets its rollup rows end
/// with.
///
/// The rollups of the open points are not kept: a flush computes them from the points it writes,
/// so a point costs its few bytes in the block and nothing else.
#[derive(Debug, Default)]
pub(super) struct Open {
    // The block being filled; when empty of points it keeps its buffer for the next ones.
    block: BlockBuilder,
    // Full blocks older than `block`, not yet written: a write may bring more than a block's
    // worth, or the flush budget may have left them for a later write.
    full: Vec<BlockBuilder>,
    // The tail write its first point came with.
    first_seq: u64,
    // The newest point stored, in a block or not: older or equal times are dropped.
    last_ts: Option<u64>,
    // The last minute and hour as their rows were last written (the bucket may still be open):
    // the points before the open ones.
    minute: Option<Rollup>,
    hour: Option<Rollup>,
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
        if self.block.len() >= BLOCK_POINTS {
            self.full.push(std::mem::take(&mut self.block));
        }
        self.block.push(ts, v);
        self.last_ts = Some(ts);
        true
    }

    /// Whether some points are not yet in `blocks`.
    fn pending(&self) -> bool {
        self.block.len() > 0 || !self.full.is_empty()
    }

    /// The open blocks, oldest first (the last may be empty).
    fn blocks(&self) -> impl Iterator<Item = &BlockBuilder> {
        self.full.iter().chain(std::iter::once(&self.block))
    }

    /// The first open point's time.
    fn first_open(&self) -> Option<u64> {
        Some(self.full.first().unwrap_or(&self.block).span()?.0)
    }

    /// Whether the open points fill a block: due whatever their age.
    fn full(&self) -> bool {
        !self.full.is_empty() || self.block.len() >= BLOCK_POINTS
    }

    /// The rollup rows the open points make, as `(step, rows)`: the buckets they close and the
    /// one still open, the first continuing the last row written. The last ones are kept as where
    /// the next flush starts.
    fn rollups(&mut self) -> [(RollupStep, Vec<Rollup>); 2] {
        let (mut minutes, mut hours) = (Vec::new(), Vec::new());
        let (mut minute, mut hour) = (self.minute, self.hour);
        for b in self.full.iter().chain(std::iter::once(&self.block)) {
            for (ts, v) in decode_block(b.data(), b.len()) {
                accumulate(&mut minute, &mut minutes, MINUTE_MS, ts, v);
                accumulate(&mut hour, &mut hours, HOUR_MS, ts, v);
            }
        }
        minutes.extend(minute);
        hours.extend(hour);
        (self.minute, self.hour) = (minute, hour);
        [(RollupStep::Minute, minutes), (RollupStep::Hour, hours)]
    }

    /// Writes the open blocks and the rollups up to their end.
    fn flush(&mut self, w: &mut Writer<'_>, id: i64) -> rusqlite::Result<()> {
        if !self.pending() {
            return Ok(());
        }
        for b in self.blocks() {
            let Some((start, end)) = b.span() else {
                continue;
            };
            (w.block).execute(params![id, as_sql(start), as_sql(end), b.len(), b.data()])?;
        }
        for (step, rows) in self.rollups() {
            let stmt = match step {
                RollupStep::Minute => &mut w.minute,
                RollupStep::Hour => &mut w.hour,
            };
            for r in rows {
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
        self.full.clear();
        self.block.clear();
        Ok(())
    }
}

/// The statements a flush writes with, prepared once per write.
struct Writer<'a> {
    block: rusqlite::CachedStatement<'a>,
    minute: rusqlite::CachedStatement<'a>,
    hour: rusqlite::CachedStatement<'a>,
}

impl<'a> Writer<'a> {
    fn new(tx: &'a Transaction<'_>) -> rusqlite::Result<Self> {
        // A store opened beside the host writes, as it stops, the open blocks it found: they
        // start where the host's next ones do, which hold the same points and more.
        let rollup = |step: RollupStep| {
            tx.prepare_cached(&format!(
                "INSERT OR REPLACE INTO {} VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                step.table()
            ))
        };
        Ok(Self {
            block: tx
                .prepare_cached("INSERT OR REPLACE INTO blocks VALUES (?1, ?2, ?3, ?4, ?5)")?,
            minute: rollup(RollupStep::Minute)?,
            hour: rollup(RollupStep::Hour)?,
        })
    }
}

/// The tail rows of one write, by group: the row's first time (varint), then per point the
/// series id (varint), its time's difference with the first (zigzag varint: one byte when the
/// collector stamped its batch with one time) and its value (8 bytes).
///
/// Kept from write to write, emptied, so that its buffers are not grown again each time.
#[derive(Debug, Default)]
pub(super) struct TailRows {
    // `(group, first time, data)`; a row with no data is not written.
    rows: Vec<(i64, u64, Vec<u8>)>,
    // Where each group's row is in `rows`.
    at: HashMap<i64, usize, RandomState>,
    // The row of the last point: points come mostly in series order, so mostly the same group.
    last: usize,
}

impl TailRows {
    pub(super) fn push(&mut self, id: i64, ts: u64, v: f64) {
        let grp = group(id);
        if self.rows.get(self.last).is_none_or(|r| r.0 != grp) {
            let next = self.rows.len();
            self.last = *self.at.entry(grp).or_insert(next);
            if self.last == next {
                self.rows.push((grp, 0, Vec::new()));
            }
        }
        let (_, base, data) = &mut self.rows[self.last];
        if data.is_empty() {
            *base = ts;
            write_varint(data, ts);
        }
        write_varint(data, id as u64);
        write_varint(data, zigzag(ts.wrapping_sub(*base) as i64));
        data.extend_from_slice(&v.to_bits().to_le_bytes());
    }

    /// Writes the rows as tail write `seq`, and empties them.
    pub(super) fn insert(&mut self, tx: &Transaction<'_>, seq: u64) -> rusqlite::Result<()> {
        let mut stmt = tx.prepare_cached("INSERT INTO tail VALUES (?1, ?2, ?3)")?;
        self.rows.sort_unstable_by_key(|r| r.0);
        self.at.clear();
        for (i, (grp, _, data)) in self.rows.iter_mut().enumerate() {
            self.at.insert(*grp, i);
            if !data.is_empty() {
                stmt.execute(params![*grp, as_sql(seq), &data[..]])?;
                data.clear();
            }
        }
        Ok(())
    }

    /// Empties the rows without writing them.
    pub(super) fn clear(&mut self) {
        for r in &mut self.rows {
            r.2.clear();
        }
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

/// Where a series' state is in [`OpenSeries`]: an index given once per row id, so that the
/// engine's writes find it without a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slot(u32);

impl Slot {
    pub(super) fn new(i: u32) -> Self {
        Self(i)
    }

    pub(super) fn get(self) -> u32 {
        self.0
    }
}

/// Every series' open state, and where the tail stands.
///
/// A write visits the series it brings points for and those due, never all of them: the series
/// with open points wait in a heap by the time of their first one, those whose open points fill
/// a block in a list, and each tail group keeps the `first_seq` of its series with open points.
#[derive(Debug, Default)]
pub(super) struct OpenSeries {
    // By slot: the series' state and its row id.
    series: Vec<Open>,
    rows: Vec<i64>,
    slots: HashMap<i64, Slot, RandomState>,
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
    waiting: BinaryHeap<Reverse<(u64, u32)>>,
    // Series whose open points filled a block since they were last written.
    full: Vec<u32>,
}

impl OpenSeries {
    /// Rebuilds the state from the store: every series' last block and rollup rows, then the
    /// tail. The row ids of `keep` keep their slots, in order, whether the store has them or not
    /// (a write that failed rolled theirs back).
    pub(super) fn restore(conn: &Connection, keep: &[i64]) -> rusqlite::Result<Self> {
        let mut state = Self::default();
        for &id in keep {
            state.slot(id);
        }
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
            let slot = state.slot(id);
            state.series[slot.0 as usize] = open;
        }
        let mut tail = conn.prepare("SELECT seq, data FROM tail ORDER BY seq, grp")?;
        let mut rows = tail.query([])?;
        while let Some(r) = rows.next()? {
            let seq: u64 = r.get(0)?;
            state.seq = state.seq.max(seq + 1);
            let data = r.get_ref(1)?.as_blob()?;
            for (id, ts, v) in decode_tail(data) {
                // Points of series unknown here (a damaged row) are skipped.
                if let Some(&slot) = state.slots.get(&id) {
                    state.add(slot, seq, ts, v);
                }
            }
        }
        Ok(state)
    }

    /// Series that the tail holds.
    pub(super) fn len(&self) -> usize {
        self.series.len()
    }

    /// The row ids by slot.
    pub(super) fn rows(&self) -> &[i64] {
        &self.rows
    }

    /// The slot of row `id`, given when new.
    pub(super) fn slot(&mut self, id: i64) -> Slot {
        *self.slots.entry(id).or_insert_with(|| {
            let slot = Slot(u32::try_from(self.series.len()).expect("fewer than 2^32 series"));
            self.series.push(Open::default());
            self.rows.push(id);
            // Every group with a series has a floor, so that its tail rows are trimmed.
            self.floors.entry(group(id)).or_default();
            slot
        })
    }

    /// The row id of `slot`.
    pub(super) fn row(&self, slot: Slot) -> i64 {
        self.rows[slot.0 as usize]
    }

    /// Adds a point of the series in `slot` that came with tail write `seq`; `false` when it is
    /// not newer than the series' last.
    pub(super) fn add(&mut self, slot: Slot, seq: u64, ts: u64, v: f64) -> bool {
        let i = slot.0 as usize;
        let open = &mut self.series[i];
        let was_pending = open.pending();
        if !open.add(seq, ts, v) {
            return false;
        }
        let just_full = open.full.is_empty() && open.block.len() == BLOCK_POINTS;
        if !was_pending {
            let seqs = self.floors.entry(group(self.rows[i])).or_default();
            *seqs.entry(seq).or_default() += 1;
            self.waiting.push(Reverse((ts, slot.0)));
        }
        if just_full {
            self.full.push(slot.0);
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
            (self.series.iter().zip(0..))
                .filter_map(|(o, i)| Some((o.first_open()?, i)))
                .collect()
        } else {
            self.due(now_ms)
        };
        if !due.is_empty() {
            let mut w = Writer::new(tx)?;
            for (_, i) in due {
                self.flush_one(&mut w, i as usize)?;
            }
        }
        self.trim(tx)
    }

    /// The series due at `now_ms` by the time of their first open point, oldest first and at
    /// most a budget: those whose open points fill a block, and those whose first one is
    /// [`FLUSH_AGE_MS`] old. The others due are looked at again by the next write.
    fn due(&mut self, now_ms: u64) -> Vec<(u64, u32)> {
        let mut due = Vec::new();
        while let Some(&Reverse((first, i))) = self.waiting.peek() {
            if first.saturating_add(FLUSH_AGE_MS) > now_ms {
                break;
            }
            self.waiting.pop();
            if self.series[i as usize].first_open() == Some(first) {
                due.push((first, i));
            }
        }
        for i in std::mem::take(&mut self.full) {
            let o = &self.series[i as usize];
            if o.full()
                && let Some(first) = o.first_open()
            {
                due.push((first, i));
            }
        }
        due.sort_unstable();
        due.dedup();
        let budget = (self.series.len() / 16).max(FLUSH_MIN);
        if due.len() > budget {
            for &(first, i) in &due[budget..] {
                if self.series[i as usize].full() {
                    self.full.push(i);
                } else {
                    self.waiting.push(Reverse((first, i)));
                }
            }
            due.truncate(budget);
        }
        // Entries of series written since pile up while their time is young: rebuilt when they
        // outnumber the series, so memory follows the number of series.
        if self.waiting.len() > 2 * self.series.len() + FLUSH_MIN {
            self.waiting = (self.series.iter().zip(0..))
                .filter_map(|(o, i)| Some(Reverse((o.first_open()?, i))))
                .collect();
        }
        due
    }

    /// Writes the open blocks and rollups of the series at index `i`.
    fn flush_one(&mut self, w: &mut Writer<'_>, i: usize) -> rusqlite::Result<()> {
        let id = self.rows[i];
        let o = &mut self.series[i];
        if !o.pending() {
            return Ok(());
        }
        let first_seq = o.first_seq;
        o.flush(w, id)?;
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
        self.slots
            .get(&id)
            .into_iter()
            .flat_map(|s| self.series[s.0 as usize].blocks())
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
    open.flush(&mut Writer::new(tx)?, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    impl TailRows {
        fn row(&self, grp: i64) -> &[u8] {
            &self.rows[self.at[&grp]].2
        }
    }

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
        let low = rows.row(0);
        let got: Vec<_> = decode_tail(low).collect();
        assert_eq!(got, [(1, 5_000, 1.5), (2, 5_000, 0.0), (1, 6_000, 3.0)]);
        let high = rows.row(1);
        assert_eq!(decode_tail(high).collect::<Vec<_>>(), [(300, 4_000, -2.0)]);
        for cut in 0..low.len() {
            assert!(decode_tail(&low[..cut]).count() < 3);
        }
    }

    #[test]
    fn tail_rows_start_again_from_their_own_first_time_once_emptied() {
        let mut rows = TailRows::default();
        rows.push(300, 4_000, 1.0);
        rows.push(1, 5_000, 2.0);
        rows.clear();
        rows.push(1, 9_000, 3.0);
        rows.push(2, 9_000, 4.0);
        assert_eq!(
            decode_tail(rows.row(0)).collect::<Vec<_>>(),
            [(1, 9_000, 3.0), (2, 9_000, 4.0)]
        );
        assert!(rows.row(1).is_empty(), "an emptied group has no row");
    }

    fn counts(rows: &[Rollup]) -> Vec<(u64, u64)> {
        rows.iter().map(|r| (r.bucket_ms, r.count)).collect()
    }

    #[test]
    fn a_bucket_closes_when_a_point_of_the_next_one_comes() {
        let mut open = Open::default();
        for t in [0u64, 30_000, 59_999, 60_000, 3_600_000] {
            assert!(open.add(0, t, t as f64));
        }
        assert!(!open.add(0, 3_600_000, 1.0), "the same time twice");
        assert!(!open.add(0, 10, 1.0), "older");
        let [(_, minutes), (_, hours)] = open.rollups();
        assert_eq!(counts(&minutes), [(0, 3), (60_000, 1), (3_600_000, 1)]);
        assert_eq!(counts(&hours), [(0, 4), (3_600_000, 1)]);
        assert_eq!(hours[0].max, 60_000.0);
        assert_eq!(open.minute.map(|r| r.bucket_ms), Some(3_600_000));
    }

    #[test]
    fn the_next_flush_goes_on_with_the_bucket_the_last_one_left_open() {
        let mut open = Open::default();
        for t in [0u64, 10_000] {
            open.add(0, t, 1.0);
        }
        let [(_, minutes), _] = open.rollups();
        assert_eq!(counts(&minutes), [(0, 2)]);
        open.full.clear();
        open.block.clear();
        // More than a block's worth: a full block, then the one being filled.
        for t in 0..BLOCK_POINTS as u64 + 5 {
            assert!(open.add(1, 20_000 + t * 1_000, 2.0));
        }
        assert!(open.full() && open.full.len() == 1);
        assert_eq!(open.first_open(), Some(20_000));
        let [(_, minutes), (_, hours)] = open.rollups();
        // 40 more in the first minute, 60 in the second, 25 in the third.
        assert_eq!(counts(&minutes), [(0, 42), (60_000, 60), (120_000, 25)]);
        assert_eq!(minutes[0].sum, 2.0 + 80.0);
        assert_eq!(minutes[0].min, 1.0);
        assert_eq!(counts(&hours), [(0, 127)]);
    }
}
