//! The in-memory time-series store: every collected series, with retention.
//!
//! Each series gets a [`SeriesId`] when it is first stored: an index into a slab of series, so
//! that the per-sample path ([`Store::push_id`]) is one bounds-checked index, with no key to
//! compare or copy. The key is kept once, shared (`Arc`) with the index ordered by key that
//! [`Store::iter`] and [`Store::by_name`] read, and with whoever needs it beside the id (the
//! history, for a series new to it). An expired series' slot is reused for a later series under a
//! new generation, so an id held past its series' expiry never reaches another series.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use monitor_plugin::{Labels, SampleKind};
use serde::Serialize;

use crate::encoding::{Cursor, write_step};

/// Most points kept per series whatever the retention, so memory stays bounded.
pub const MAX_POINTS_PER_SERIES: usize = 4096;

/// A series' identity: metric name and labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SeriesKey {
    /// Metric name.
    pub name: String,
    /// Labels.
    pub labels: Labels,
}

/// One series.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// Gauge or counter.
    pub kind: SampleKind,
    /// Which collector instance produced it.
    pub source: String,
    /// `(ms since the Unix epoch, value)`, oldest first.
    pub points: Points,
}

impl Series {
    /// The latest point.
    pub fn latest(&self) -> Option<(u64, f64)> {
        self.points.back()
    }
}

/// Points per chunk of [`Points`]: a full chunk's buffer is trimmed to its size and never grows
/// again, and the oldest chunk is dropped whole once every point in it has expired.
const CHUNK_POINTS: u32 = 120;

#[derive(Debug, Clone)]
struct Chunk {
    // The oldest point still kept, and how to read on from it.
    head: Cursor,
    // Points from `head` on, `head` included.
    remaining: u32,
    // Points written into the chunk, expired ones included.
    written: u32,
    bytes: Vec<u8>,
}

/// A series' points, oldest first, kept compactly: in chunks of up to 120 points encoded as the
/// history's blocks are (see `crate::encoding`): a steady series costs 2-4 bytes a point
/// instead of 16, and nothing doubles once a chunk is full.
#[derive(Debug, Clone, Default)]
pub struct Points {
    chunks: VecDeque<Chunk>,
    len: usize,
    // The newest point, with the step that led to it; what the next point is encoded against.
    last: Option<Cursor>,
}

impl Points {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The newest point.
    pub fn back(&self) -> Option<(u64, f64)> {
        self.last.as_ref().map(Cursor::point)
    }

    /// The oldest point.
    pub fn front(&self) -> Option<(u64, f64)> {
        self.chunks.front().map(|c| c.head.point())
    }

    /// Appends a point; `ts` must not be older than [`back`](Self::back)'s.
    pub fn push_back(&mut self, ts: u64, value: f64) {
        let bits = value.to_bits();
        let delta = self.last.map_or(0, |l| ts.wrapping_sub(l.ts) as i64);
        let full = self.chunks.back().is_none_or(|c| c.written == CHUNK_POINTS);
        match (self.last, full) {
            (Some(last), false) => {
                let c = self
                    .chunks
                    .back_mut()
                    .expect("not full, so there is a chunk");
                write_step(&mut c.bytes, &last, ts, bits);
                c.remaining += 1;
                c.written += 1;
                if c.written == CHUNK_POINTS {
                    c.bytes.shrink_to_fit();
                }
            }
            _ => self.chunks.push_back(Chunk {
                head: Cursor {
                    ts,
                    bits,
                    delta,
                    offset: 0,
                },
                remaining: 1,
                written: 1,
                // Room for a steady series' chunk, so that it rarely reallocates.
                bytes: Vec::with_capacity(3 * CHUNK_POINTS as usize),
            }),
        }
        self.last = Some(Cursor {
            ts,
            bits,
            delta,
            offset: 0,
        });
        self.len += 1;
    }

    /// Drops the oldest point.
    pub fn pop_front(&mut self) -> Option<(u64, f64)> {
        let c = self.chunks.front_mut()?;
        let point = c.head.point();
        if c.remaining == 1 {
            self.chunks.pop_front();
        } else {
            c.head = c.head.step(&c.bytes);
            c.remaining -= 1;
        }
        self.len -= 1;
        if self.len == 0 {
            self.last = None;
        }
        Some(point)
    }

    /// Every point, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (u64, f64)> + '_ {
        self.iter_chunks(0)
    }

    /// The points from the newest chunk that starts at or before `ms` on (every point when none
    /// does), oldest first: every point later than `ms`, and a few before it, without reading
    /// the older chunks.
    pub fn iter_from_chunk_of(&self, ms: u64) -> impl Iterator<Item = (u64, f64)> + '_ {
        let first = (self.chunks.iter()).rposition(|c| c.head.ts <= ms);
        self.iter_chunks(first.unwrap_or(0))
    }

    /// The newest `n` points (all when there are fewer), oldest first, without reading the
    /// older chunks.
    pub fn last_n(&self, n: usize) -> impl Iterator<Item = (u64, f64)> + '_ {
        let mut skip = self.len.saturating_sub(n);
        let mut first = 0;
        for c in &self.chunks {
            if skip < c.remaining as usize {
                break;
            }
            skip -= c.remaining as usize;
            first += 1;
        }
        self.iter_chunks(first).skip(skip)
    }

    /// Bytes held on the heap for the points.
    pub fn heap_bytes(&self) -> usize {
        let chunks: usize = self.chunks.iter().map(|c| c.bytes.capacity()).sum();
        chunks + self.chunks.capacity() * std::mem::size_of::<Chunk>()
    }

    fn iter_chunks(&self, first: usize) -> impl Iterator<Item = (u64, f64)> + '_ {
        self.chunks.iter().skip(first).flat_map(|c| {
            let mut at = c.head;
            (0..c.remaining).map(move |i| {
                if i > 0 {
                    at = at.step(&c.bytes);
                }
                at.point()
            })
        })
    }
}

impl Serialize for Points {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// The source of the host's own series, which no limit applies to: there are a few per plugin
/// instance.
pub const HOST_SOURCE: &str = "host";

/// How many series the store takes: in all, and per source (collector instance). The host's own
/// series ([`HOST_SOURCE`]) count for neither.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesLimits {
    /// Most series from all collectors together; `None`: no limit.
    pub total: Option<usize>,
    /// Most series per source, for the sources that have a limit of their own.
    pub per_source: BTreeMap<String, usize>,
}

/// Series held and refused for one source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceCount {
    /// Series held now.
    pub series: usize,
    /// New series refused because a limit was reached, since the start.
    pub refused: u64,
}

/// A series' id in the [`Store`] that holds it: stable while the series is held; once it has
/// expired, its id is refused everywhere ([`Store::holds`] is `false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesId {
    index: u32,
    generation: u32,
}

impl SeriesId {
    /// The slot: ids of series held at the same time have different slots, so a `Vec` indexed by
    /// slot maps ids to anything (with [`generation`](Self::generation) to tell reuses apart).
    pub fn slot(self) -> usize {
        self.index as usize
    }

    /// How many series held the slot before this one.
    pub fn generation(self) -> u32 {
        self.generation
    }
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    series: Option<(Arc<SeriesKey>, Series)>,
}

/// Every series, by id and by key.
#[derive(Debug, Default)]
pub struct Store {
    slots: Vec<Slot>,
    // Slots of expired series, for the next new ones.
    free: Vec<u32>,
    // Every held series' slot, by key; shares the keys with `slots`.
    index: BTreeMap<Arc<SeriesKey>, u32>,
    retention_ms: u64,
    limits: SeriesLimits,
    // Per source; kept in step with `series` by `push` and `expire`.
    counts: BTreeMap<String, SourceCount>,
    // Series from every source but the host's.
    collected: usize,
    // Sources that had a series refused since `take_refusals`, with how many.
    refusals: BTreeMap<String, u64>,
    // No point held is older than this: until the retention's horizon passes it, `expire` has
    // nothing to drop and does not visit the series, unless one was made since (it may be
    // empty, and an empty series goes).
    oldest_ms: u64,
    made: bool,
    // Changed with every series added or removed (see `series_version`).
    series_version: u64,
}

/// The next [`Store::series_version`] of any store: unique across stores, so what was derived
/// from one store is never taken for another's.
static NEXT_SERIES_VERSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn next_series_version() -> u64 {
    // Relaxed: only uniqueness matters, not ordering with other memory.
    NEXT_SERIES_VERSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Store {
    /// An empty store keeping points for `retention_ms`, without series limits.
    pub fn new(retention_ms: u64) -> Self {
        Self {
            retention_ms,
            ..Self::default()
        }
    }

    /// Sets the series limits. Series already held are kept, even beyond a new, lower limit;
    /// only new series are refused.
    pub fn set_limits(&mut self, limits: SeriesLimits) {
        self.limits = limits;
    }

    /// Series held and refused, per source (sources seen since the start).
    pub fn counts(&self) -> &BTreeMap<String, SourceCount> {
        &self.counts
    }

    /// The sources that had new series refused since the last call, with how many; for a log
    /// line per cycle rather than per sample.
    pub fn take_refusals(&mut self) -> BTreeMap<String, u64> {
        std::mem::take(&mut self.refusals)
    }

    /// Whether a new series from `source` is over a limit; counts the refusal when it is.
    fn refuse(&mut self, source: &str) -> bool {
        if source == HOST_SOURCE {
            return false;
        }
        let held = self.counts.get(source).map_or(0, |c| c.series);
        let over_source = self
            .limits
            .per_source
            .get(source)
            .is_some_and(|&l| held >= l);
        let over_total = self.limits.total.is_some_and(|l| self.collected >= l);
        if !(over_source || over_total) {
            return false;
        }
        self.counts.entry(source.to_owned()).or_default().refused += 1;
        *self.refusals.entry(source.to_owned()).or_default() += 1;
        true
    }

    /// Appends a point; non-finite values are dropped, out-of-order points are dropped, and so
    /// is the first point of a new series over a [limit](Self::set_limits). Returns whether the
    /// point was kept.
    pub fn insert(
        &mut self,
        key: SeriesKey,
        kind: SampleKind,
        source: &str,
        ts_ms: u64,
        value: f64,
    ) -> bool {
        self.intern(key, kind, source)
            .is_some_and(|id| self.push_id(id, kind, ts_ms, value))
    }

    /// [`insert`](Self::insert) with a borrowed key: the key is copied only for a new series.
    pub fn push(
        &mut self,
        key: &SeriesKey,
        kind: SampleKind,
        source: &str,
        ts_ms: u64,
        value: f64,
    ) -> bool {
        let id = match self.id(key) {
            Some(id) => id,
            None => match self.intern(key.clone(), kind, source) {
                Some(id) => id,
                None => return false,
            },
        };
        self.push_id(id, kind, ts_ms, value)
    }

    /// The id of series `key`, if held.
    pub fn id(&self, key: &SeriesKey) -> Option<SeriesId> {
        let &index = self.index.get(key)?;
        Some(SeriesId {
            index,
            generation: self.slots[index as usize].generation,
        })
    }

    /// The id of series `key`, made (empty, from `source`) when it is new; `None` when it is new
    /// and over a [limit](Self::set_limits), which counts as a refusal.
    pub fn intern(&mut self, key: SeriesKey, kind: SampleKind, source: &str) -> Option<SeriesId> {
        if let Some(id) = self.id(&key) {
            return Some(id);
        }
        if self.refuse(source) {
            return None;
        }
        self.counts.entry(source.to_owned()).or_default().series += 1;
        if source != HOST_SOURCE {
            self.collected += 1;
        }
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot::default());
            u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 series")
        });
        self.made = true;
        let key = Arc::new(key);
        let slot = &mut self.slots[index as usize];
        slot.series = Some((
            Arc::clone(&key),
            Series {
                kind,
                source: source.to_owned(),
                points: Points::default(),
            },
        ));
        self.index.insert(key, index);
        self.series_version = next_series_version();
        Some(SeriesId {
            index,
            generation: slot.generation,
        })
    }

    /// Whether series `id` is still held.
    pub fn holds(&self, id: SeriesId) -> bool {
        self.slot(id).is_some()
    }

    /// Series `id`'s key, while it is held.
    pub fn key(&self, id: SeriesId) -> Option<&Arc<SeriesKey>> {
        self.slot(id).map(|(k, _)| k)
    }

    /// Series `id`, while it is held.
    pub fn get(&self, id: SeriesId) -> Option<(&SeriesKey, &Series)> {
        self.slot(id).map(|(k, s)| (&**k, s))
    }

    fn slot(&self, id: SeriesId) -> Option<&(Arc<SeriesKey>, Series)> {
        let slot = self.slots.get(id.index as usize)?;
        slot.series
            .as_ref()
            .filter(|_| slot.generation == id.generation)
    }

    /// Appends a point to series `id` (see [`insert`](Self::insert)); `false` when it was dropped
    /// or the series is no longer held.
    pub fn push_id(&mut self, id: SeriesId, kind: SampleKind, ts_ms: u64, value: f64) -> bool {
        // NaN and the infinities are kept, as Prometheus keeps them.
        let Some(slot) = self.slots.get_mut(id.index as usize) else {
            return false;
        };
        let Some((_, s)) = slot
            .series
            .as_mut()
            .filter(|_| slot.generation == id.generation)
        else {
            return false;
        };
        s.kind = kind;
        if s.points.back().is_some_and(|(t, _)| t > ts_ms) {
            return false;
        }
        if s.points.len() == MAX_POINTS_PER_SERIES {
            s.points.pop_front();
        }
        s.points.push_back(ts_ms, value);
        self.oldest_ms = self.oldest_ms.min(ts_ms);
        true
    }

    /// Drops points older than the retention, and series left empty: a series not collected
    /// for the retention is gone, and no longer counts for the limits. Visits every series only
    /// when some point is past the retention: at once when none is.
    pub fn expire(&mut self, now_ms: u64) {
        let horizon = now_ms.saturating_sub(self.retention_ms);
        if horizon <= self.oldest_ms && !self.made {
            return;
        }
        self.made = false;
        let mut oldest = u64::MAX;
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let Some((key, s)) = &mut slot.series else {
                continue;
            };
            while s.points.front().is_some_and(|(t, _)| t < horizon) {
                s.points.pop_front();
            }
            if let Some((t, _)) = s.points.front() {
                oldest = oldest.min(t);
                continue;
            }
            if let Some(c) = self.counts.get_mut(&s.source) {
                c.series -= 1;
            }
            if s.source != HOST_SOURCE {
                self.collected -= 1;
            }
            self.index.remove(&**key);
            self.series_version = next_series_version();
            slot.series = None;
            slot.generation = slot.generation.wrapping_add(1);
            self.free
                .push(u32::try_from(index).expect("fewer than 2^32 series"));
        }
        self.oldest_ms = oldest;
    }

    /// Every series of metric `name`.
    pub fn by_name<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = (&'a SeriesKey, &'a Series)> {
        let start = SeriesKey {
            name: name.to_owned(),
            labels: Labels::new(),
        };
        self.index
            .range::<SeriesKey, _>((Bound::Included(&start), Bound::Unbounded))
            .take_while(move |(k, _)| k.name == name)
            .map(|(k, &i)| (&**k, self.series_at(i)))
    }

    fn series_at(&self, index: u32) -> &Series {
        let (_, s) = self.slots[index as usize]
            .series
            .as_ref()
            .expect("the index names held series only");
        s
    }

    /// Every series.
    pub fn iter(&self) -> impl Iterator<Item = (&SeriesKey, &Series)> {
        self.index.iter().map(|(k, &i)| (&**k, self.series_at(i)))
    }

    /// Every series with its id, in the order of [`iter`](Self::iter).
    pub fn iter_ids(&self) -> impl Iterator<Item = (SeriesId, &SeriesKey, &Series)> {
        self.index.iter().map(|(k, &index)| {
            let id = SeriesId {
                index,
                generation: self.slots[index as usize].generation,
            };
            (id, &**k, self.series_at(index))
        })
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// A number that changes whenever a series is added or removed, never the same for two stores
    /// that hold series: what was derived from the set of series (not from their points) holds
    /// while it stays the same.
    pub fn series_version(&self) -> u64 {
        self.series_version
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, l: &[(&str, &str)]) -> SeriesKey {
        SeriesKey {
            name: name.into(),
            labels: l
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    #[test]
    fn by_name_finds_every_labelled_series_and_nothing_else() {
        let mut s = Store::new(60_000);
        s.insert(key("a", &[("x", "1")]), SampleKind::Gauge, "c", 1, 1.0);
        s.insert(key("a", &[("x", "2")]), SampleKind::Gauge, "c", 1, 2.0);
        s.insert(key("ab", &[]), SampleKind::Gauge, "c", 1, 3.0);
        s.insert(key("a", &[]), SampleKind::Gauge, "c", 1, 0.5);
        assert_eq!(s.by_name("a").count(), 3);
        assert_eq!(s.by_name("ab").count(), 1);
    }

    #[test]
    fn retention_and_bounds() {
        let mut s = Store::new(1000);
        for t in 0..(MAX_POINTS_PER_SERIES as u64 + 10) {
            s.insert(key("a", &[]), SampleKind::Gauge, "c", t, t as f64);
        }
        assert_eq!(
            s.by_name("a").next().unwrap().1.points.len(),
            MAX_POINTS_PER_SERIES
        );
        s.expire(MAX_POINTS_PER_SERIES as u64 + 9);
        assert_eq!(s.by_name("a").next().unwrap().1.points.len(), 1001);
        s.expire(u64::MAX / 2);
        assert!(s.is_empty());
        assert!(s.insert(key("a", &[]), SampleKind::Gauge, "c", 4, f64::NAN));
        assert!(s.insert(key("a", &[]), SampleKind::Gauge, "c", 5, 1.0));
        assert!(
            !s.insert(key("a", &[]), SampleKind::Gauge, "c", 4, 1.0),
            "out of order"
        );
    }

    #[test]
    fn limits_refuse_new_series_keep_old_ones_and_free_up_on_expiry() {
        let mut s = Store::new(1000);
        s.set_limits(SeriesLimits {
            total: Some(5),
            per_source: BTreeMap::from([("a".to_owned(), 2)]),
        });
        let k = |i: u64| key("m", &[("id", &i.to_string())]);
        for i in 0..4 {
            let kept = s.insert(k(i), SampleKind::Gauge, "a", 10, 1.0);
            assert_eq!(kept, i < 2, "series {i}");
        }
        assert!(
            s.insert(k(0), SampleKind::Gauge, "a", 20, 2.0),
            "an old one goes on"
        );
        for i in 10..14 {
            let kept = s.insert(k(i), SampleKind::Gauge, "b", 10, 1.0);
            assert_eq!(kept, i < 13, "total limit: series {i}");
        }
        for i in 0..50 {
            assert!(s.insert(
                key("own", &[("i", &i.to_string())]),
                SampleKind::Gauge,
                HOST_SOURCE,
                10,
                1.0
            ));
        }
        assert_eq!(
            s.counts()["a"],
            SourceCount {
                series: 2,
                refused: 2
            }
        );
        assert_eq!(
            s.counts()["b"],
            SourceCount {
                series: 3,
                refused: 1
            }
        );
        assert_eq!(
            s.take_refusals(),
            BTreeMap::from([("a".to_owned(), 2), ("b".to_owned(), 1)])
        );
        assert!(s.take_refusals().is_empty());

        // Only `a`'s first series is collected again; the rest expire and make room.
        assert!(s.insert(k(0), SampleKind::Gauge, "a", 1500, 3.0));
        s.expire(1500);
        assert_eq!(s.counts()["a"].series, 1);
        assert_eq!(s.counts()["b"].series, 0);
        assert_eq!(s.counts()[HOST_SOURCE].series, 0);
        assert!(s.insert(k(5), SampleKind::Gauge, "a", 1500, 1.0));
        assert!(!s.insert(k(6), SampleKind::Gauge, "a", 1500, 1.0));
        for i in 20..23 {
            assert!(
                s.insert(k(i), SampleKind::Gauge, "b", 1500, 1.0),
                "series {i}"
            );
        }
        assert!(
            !s.insert(k(23), SampleKind::Gauge, "b", 1500, 1.0),
            "total limit again"
        );
    }

    #[test]
    fn ids_stay_while_held_and_never_reach_a_later_series() {
        let mut s = Store::new(1000);
        let a = s.intern(key("a", &[]), SampleKind::Gauge, "c").unwrap();
        let b = s.intern(key("b", &[]), SampleKind::Counter, "c").unwrap();
        assert_ne!(a, b);
        assert_eq!(s.intern(key("a", &[]), SampleKind::Gauge, "c"), Some(a));
        assert_eq!(s.id(&key("a", &[])), Some(a));
        assert!(s.push_id(a, SampleKind::Gauge, 10, 1.0));
        assert!(s.push_id(b, SampleKind::Counter, 2000, 1.0));
        assert_eq!(**s.key(a).unwrap(), key("a", &[]));
        assert_eq!(s.get(b).unwrap().1.kind, SampleKind::Counter);

        // `a` expires; its slot goes to `c`, under a new generation.
        s.expire(2000);
        assert!(!s.holds(a) && s.key(a).is_none());
        assert!(!s.push_id(a, SampleKind::Gauge, 2001, 1.0), "a stale id");
        let c = s.intern(key("c", &[]), SampleKind::Gauge, "c").unwrap();
        assert_eq!(c.slot(), a.slot());
        assert_ne!(c.generation(), a.generation());
        assert!(s.push_id(c, SampleKind::Gauge, 2001, 5.0));
        assert!(!s.push_id(a, SampleKind::Gauge, 2002, 1.0));
        assert_eq!(s.by_name("c").next().unwrap().1.points.len(), 1);
        let names: Vec<&str> = s.iter().map(|(k, _)| k.name.as_str()).collect();
        assert_eq!(names, ["b", "c"], "in key order");
        assert_eq!(s.counts()["c"].series, 2);
    }

    #[test]
    fn expire_skips_nothing_it_must_drop() {
        let mut s = Store::new(1000);
        s.insert(key("a", &[]), SampleKind::Gauge, "c", 5_000, 1.0);
        s.expire(5_500);
        // A new series with an older point, and one with none: both are seen by the next expire.
        s.insert(key("b", &[]), SampleKind::Gauge, "c", 100, 1.0);
        let c = s.intern(key("c", &[]), SampleKind::Gauge, "c").unwrap();
        s.expire(1_200);
        assert!(!s.holds(c), "an empty series goes");
        assert_eq!(s.len(), 1, "b's point is past the retention");
        s.insert(key("b", &[]), SampleKind::Gauge, "c", 5_600, 1.0);
        s.expire(6_000);
        assert_eq!(s.len(), 2, "nothing past the retention yet");
        s.expire(6_001);
        assert_eq!(s.by_name("a").count(), 0);
        assert_eq!(s.len(), 1);
    }

    /// A value sequence with every kind of change: equal, small and large, signs, zeros.
    fn wobbly(i: u64) -> f64 {
        match i % 7 {
            0 => 0.0,
            1 | 2 => 42.0,
            3 => -(i as f64) * 1.5e-9,
            4 => f64::MAX / (i as f64 + 1.0),
            5 => i as f64,
            _ => f64::MIN_POSITIVE * i as f64,
        }
    }

    #[test]
    fn points_read_back_exactly_across_chunks_gaps_and_expiry() {
        let mut p = Points::default();
        let mut want = VecDeque::new();
        let mut t = 1_700_000_000_000u64;
        for i in 0..1000u64 {
            // Regular steps, jitter, repeated times and long gaps.
            t += match i % 11 {
                0 => 0,
                1 => 3_600_000,
                2 => 997,
                _ => 1000,
            };
            p.push_back(t, wobbly(i));
            want.push_back((t, wobbly(i)));
            if i % 3 == 0 {
                assert_eq!(p.pop_front(), want.pop_front());
            }
            assert_eq!(p.len(), want.len());
        }
        let got: Vec<(u64, f64)> = p.iter().collect();
        assert!(
            got.iter()
                .map(|x| x.1.to_bits())
                .eq(want.iter().map(|x| x.1.to_bits()))
        );
        assert!(got.iter().map(|x| x.0).eq(want.iter().map(|x| x.0)));
        assert_eq!(p.front(), want.front().copied());
        assert_eq!(p.back(), want.back().copied());
        for n in [0, 1, 59, 60, 119, 120, 121, 500, 10_000] {
            let tail: Vec<_> = p.last_n(n).collect();
            let skip = want.len().saturating_sub(n);
            assert_eq!(
                tail,
                want.iter().skip(skip).copied().collect::<Vec<_>>(),
                "{n}"
            );
        }
        while p.pop_front().is_some() {}
        assert!(p.is_empty() && p.back().is_none() && p.iter().next().is_none());
        p.push_back(5, 1.0);
        assert_eq!(p.iter().collect::<Vec<_>>(), [(5, 1.0)]);
    }

    #[test]
    fn a_steady_series_costs_a_few_bytes_a_point() {
        let mut s = Store::new(u64::MAX);
        let k = key("a", &[]);
        let mut t = 1_700_000_000_000u64;
        for i in 0..3600u64 {
            t += if i % 5 == 0 { 1003 } else { 1000 };
            s.insert(k.clone(), SampleKind::Gauge, "c", t, (i % 4) as f64 * 0.25);
        }
        let points = &s.by_name("a").next().unwrap().1.points;
        assert_eq!(points.len(), 3600);
        let per_point = points.heap_bytes() as f64 / 3600.0;
        // 16 bytes a point uncompressed, up to twice that in a deque that doubles.
        assert!(per_point < 6.0, "{per_point} bytes a point");
    }
}
