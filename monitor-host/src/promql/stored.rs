//! The store and memory together as a [`Source`]: what a rule reading further back than memory
//! holds (`avg_over_time(x[1d])`, `x offset 1d`, `anomaly_score(x[4w], 604800)`) is evaluated
//! over.
//!
//! Each series' points are the store's raw points older than the oldest point memory holds for
//! it, then memory's points: memory is authoritative from its oldest point on (it holds the
//! points of the cycle not yet written, recording rules' results of the evaluation in progress
//! and the staleness markers), the store before it. So the two parts meet without a duplicate or
//! a gap, whatever the store has already written of the points memory still holds. A series
//! memory no longer holds is read from the store alone, without staleness markers, as the query
//! API reads it.
//!
//! Beyond `retention` the store keeps rollups, not raw points: a window reaching further back
//! than `retention` simply finds no raw points there (rules are never evaluated over rollups,
//! which would not give Prometheus's answer); `check` refuses such rules.
//!
//! Reading a day of points for every evaluation would hold the engine's cycle for as long as
//! the decoding takes, so [`HistoryCache`] keeps, per stored series, the points it has read
//! (decoded) for as long as rules keep asking for them: an evaluation reads from the store only
//! what is new at the end of a window (the few points that left memory since the last one) and
//! drops what fell out of every window. Only the first evaluation of a rule reads its whole
//! window.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use promql_parser::label::Matcher;

use super::value::{Metric, Points};
use super::{MemorySource, Source, SourceSeries, matches};
use crate::history::Reader;
use crate::query::metric;

/// How long the points of a stored series no rule asked for are kept, in ms.
const UNUSED_KEEP_MS: i64 = 3_600_000;

/// A stored series' points read so far: `points` are all of its raw points in `(from, to]`.
#[derive(Debug)]
struct Cached {
    from: i64,
    to: i64,
    points: Vec<(i64, f64)>,
    // The oldest `after` asked since the last `begin`, and when it was last asked for.
    wanted_from: i64,
    used_ms: i64,
}

/// What was read from the store, kept across evaluations: the series index and, per series, the
/// points rules read. Owned by the alert engine; lent to a [`StoredSource`] per evaluation.
#[derive(Debug)]
pub struct HistoryCache {
    path: PathBuf,
    reader: Option<Reader>,
    // What `Reader::generation` answered when `series` was read.
    generation: (i64, i64),
    series: Vec<(Metric, i64)>,
    by_metric: HashMap<Metric, i64>,
    cached: HashMap<i64, Cached>,
    now_ms: i64,
    // Points read from the store since the start: what the cache saves shows here.
    read_points: u64,
}

impl HistoryCache {
    /// The store whose database file is `path` (opened read-only when first needed).
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            reader: None,
            generation: (-1, -1),
            series: Vec::new(),
            by_metric: HashMap::new(),
            cached: HashMap::new(),
            now_ms: 0,
            read_points: 0,
        }
    }

    /// Points read from the store so far.
    pub fn read_points(&self) -> u64 {
        self.read_points
    }

    /// Points held decoded for the next evaluations.
    pub fn cached_points(&self) -> usize {
        self.cached.values().map(|c| c.points.len()).sum()
    }

    /// Starts an evaluation at `now_ms`: drops what the last one did not ask for, and reads the
    /// series index again if series were added.
    ///
    /// # Errors
    ///
    /// The store could not be opened or read; the message says how.
    pub fn begin(&mut self, now_ms: i64) -> Result<(), String> {
        self.now_ms = now_ms;
        self.cached.retain(|_, c| {
            if c.wanted_from != i64::MAX {
                // Asked for since the last begin: keep what that evaluation needed.
                if c.wanted_from > c.from {
                    let cut = c.points.partition_point(|p| p.0 <= c.wanted_from);
                    c.points.drain(..cut);
                    c.from = c.wanted_from;
                }
                c.wanted_from = i64::MAX;
            }
            now_ms.saturating_sub(c.used_ms) <= UNUSED_KEEP_MS
        });
        if self.reader.is_none() {
            self.reader = Reader::open(&self.path).map_err(|e| e.to_string())?;
        }
        let Some(reader) = &self.reader else {
            // No database yet: nothing stored.
            return Ok(());
        };
        // A snapshot left open by an evaluation that did not end is ended: this one reads the
        // store as it is now.
        reader.end_snapshot().map_err(|e| e.to_string())?;
        reader.begin_snapshot().map_err(|e| e.to_string())?;
        let generation = reader.generation().map_err(|e| e.to_string())?;
        if generation != self.generation {
            let all = reader.series().map_err(|e| e.to_string())?;
            self.series = all
                .into_iter()
                .map(|s| (metric(&s.name, &s.labels, s.kind), s.id))
                .collect();
            self.by_metric = self.series.iter().cloned().collect();
            self.generation = generation;
        }
        Ok(())
    }

    /// Ends the evaluation [`begin`](Self::begin) started: its read transaction ends.
    pub fn end(&mut self) {
        if let Some(Err(e)) = self.reader.as_ref().map(Reader::end_snapshot) {
            tracing::warn!(error = %e, "ending a read of the store failed");
        }
    }

    /// Appends to `out` the raw points of stored series `id` in `(after_ms, to_ms]`, read from
    /// the store only where the cache does not hold them.
    fn extend_points(
        &mut self,
        id: i64,
        after_ms: i64,
        to_ms: i64,
        out: &mut Vec<(i64, f64)>,
    ) -> Result<(), String> {
        if to_ms <= after_ms {
            return Ok(());
        }
        let Some(reader) = &self.reader else {
            return Ok(());
        };
        let mut read = |a: i64, b: i64| -> Result<Vec<(i64, f64)>, String> {
            let p = reader.points(id, a, b).map_err(|e| e.to_string())?;
            self.read_points += p.len() as u64;
            Ok(p)
        };
        let c = match self.cached.get_mut(&id) {
            // Disjoint from what is held: start again from this window.
            Some(c) if after_ms > c.to || to_ms < c.from => {
                c.points = read(after_ms, to_ms)?;
                (c.from, c.to) = (after_ms, to_ms);
                c
            }
            Some(c) => {
                if after_ms < c.from {
                    let mut older = read(after_ms, c.from)?;
                    older.append(&mut c.points);
                    c.points = older;
                    c.from = after_ms;
                }
                if to_ms > c.to {
                    c.points.extend(read(c.to, to_ms)?);
                    c.to = to_ms;
                }
                c
            }
            None => {
                let points = read(after_ms, to_ms)?;
                self.cached.entry(id).or_insert(Cached {
                    from: after_ms,
                    to: to_ms,
                    points,
                    wanted_from: i64::MAX,
                    used_ms: 0,
                })
            }
        };
        c.wanted_from = c.wanted_from.min(after_ms);
        c.used_ms = self.now_ms;
        let from = c.points.partition_point(|p| p.0 <= after_ms);
        let to = c.points.partition_point(|p| p.0 <= to_ms);
        out.extend_from_slice(&c.points[from..to.max(from)]);
        Ok(())
    }
}

/// Where one series of a [`StoredSource`] is: in memory, in the store, or both.
#[derive(Debug, Clone, Copy)]
struct Place {
    memory: Option<i64>,
    stored: Option<i64>,
}

/// Memory and the store as one [`Source`], for one evaluation.
#[derive(Debug)]
pub struct StoredSource<'m, 'a> {
    memory: &'m MemorySource<'a>,
    history: RefCell<&'m mut HistoryCache>,
    places: RefCell<Vec<Place>>,
}

impl<'m, 'a> StoredSource<'m, 'a> {
    /// `memory` with the older points of `history` (on which [`HistoryCache::begin`] was called for
    /// this evaluation).
    pub fn new(memory: &'m MemorySource<'a>, history: &'m mut HistoryCache) -> Self {
        Self {
            memory,
            history: RefCell::new(history),
            places: RefCell::new(Vec::new()),
        }
    }

    /// The memory side.
    pub fn memory(&self) -> &MemorySource<'a> {
        self.memory
    }

    fn place(&self, p: Place) -> i64 {
        let mut places = self.places.borrow_mut();
        places.push(p);
        places.len() as i64 - 1
    }
}

impl Source for StoredSource<'_, '_> {
    fn series(&self, matchers: &[Matcher]) -> Result<Vec<SourceSeries>, String> {
        let mut out = self.memory.series(matchers)?;
        let history = self.history.borrow();
        for s in &mut out {
            let stored = history.by_metric.get(&s.metric).copied();
            s.id = self.place(Place {
                memory: Some(s.id),
                stored,
            });
        }
        let mut more = Vec::new();
        for (m, id) in &history.series {
            if matches(matchers, m) && self.memory.find(m).is_none() {
                more.push(SourceSeries {
                    id: self.place(Place {
                        memory: None,
                        stored: Some(*id),
                    }),
                    metric: m.clone(),
                });
            }
        }
        out.extend(more);
        Ok(out)
    }

    fn points(&self, id: i64, after_ms: i64, to_ms: i64) -> Result<Vec<(i64, f64)>, String> {
        Ok(self.shared_points(id, after_ms, to_ms)?.to_vec())
    }

    /// The stored part and memory's, copied once into one run.
    fn shared_points(&self, id: i64, after_ms: i64, to_ms: i64) -> Result<Points, String> {
        let place = usize::try_from(id)
            .ok()
            .and_then(|i| self.places.borrow().get(i).copied())
            .ok_or_else(|| format!("no series {id}"))?;
        let recent = match place.memory {
            Some(m) => self.memory.shared_points(m, after_ms, to_ms)?,
            None => Points::new(Vec::new().into()),
        };
        // Memory holds every point of the series from its oldest one on; the store the ones
        // before.
        let boundary = place
            .memory
            .and_then(|m| self.memory.oldest_ms(m))
            .unwrap_or(i64::MAX);
        let Some(stored) = place.stored.filter(|_| after_ms < boundary - 1) else {
            return Ok(recent);
        };
        let mut out = Vec::new();
        (self.history.borrow_mut()).extend_points(
            stored,
            after_ms,
            to_ms.min(boundary - 1),
            &mut out,
        )?;
        out.extend_from_slice(&recent);
        Ok(Points::new(out.into()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use monitor_plugin::{Labels, SampleKind};

    use super::*;
    use crate::history::{DATABASE_FILE, Persistence};
    use crate::store::{SeriesKey, Store};

    const T0: u64 = 1_800_000_000_000;
    const HOUR: u64 = 3_600_000;
    const STEP: u64 = 10_000;

    fn key(host: &str) -> SeriesKey {
        SeriesKey {
            name: "load".into(),
            labels: Labels::from([("host".to_owned(), host.to_owned())]),
        }
    }

    fn value(ts: u64) -> f64 {
        ((ts - T0) / STEP) as f64
    }

    /// A store holding `load{host=a}` every 10 s in `[T0, written)` and `load{host=gone}` in the
    /// first hour only, and memory holding `host=a` in `[memory_from, memory_to)`.
    fn fixture(name: &str, written: u64, memory_from: u64, memory_to: u64) -> (PathBuf, Store) {
        let dir =
            std::env::temp_dir().join(format!("monitor-stored-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let day = Duration::from_secs(86_400);
        let (mut p, _) = Persistence::open(&dir, day, day, Duration::from_secs(3600), T0).unwrap();
        for ts in (T0..written).step_by(STEP as usize) {
            p.batch()
                .point(&key("a"), SampleKind::Gauge, "c", ts, value(ts));
            if ts < T0 + HOUR {
                p.batch()
                    .point(&key("gone"), SampleKind::Gauge, "c", ts, 1.0);
            }
        }
        p.commit(written);
        let mut memory = Store::new(u64::MAX);
        for ts in (memory_from..memory_to).step_by(STEP as usize) {
            memory.insert(key("a"), SampleKind::Gauge, "c", ts, value(ts));
        }
        (dir, memory)
    }

    fn selector(text: &str) -> Vec<Matcher> {
        match promql_parser::parser::parse(text).unwrap() {
            promql_parser::parser::Expr::VectorSelector(vs) => {
                let mut m = vs.matchers.matchers;
                if let Some(name) = vs.name {
                    m.push(Matcher::new(
                        promql_parser::label::MatchOp::Equal,
                        super::super::NAME,
                        &name,
                    ));
                }
                m
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn memory_and_store_meet_without_duplicates_or_gaps() {
        // The store has 3 h; memory the last hour and a half (overlapping the store by an hour
        // and a half) and a minute the store has not been written yet.
        let end = T0 + 3 * HOUR + 60_000;
        let (dir, memory) = fixture("merge", T0 + 3 * HOUR, T0 + 3 * HOUR / 2, end);
        let mut history = HistoryCache::new(&dir.join(DATABASE_FILE));
        history.begin(end as i64).unwrap();
        let mem = MemorySource::new(&memory, u64::MAX / 4);
        let source = StoredSource::new(&mem, &mut history);
        let found = source.series(&selector(r#"load{host="a"}"#)).unwrap();
        assert_eq!(found.len(), 1);
        let every = |from: u64, to: u64| -> Vec<(i64, f64)> {
            (from..to)
                .step_by(STEP as usize)
                .map(|ts| (ts as i64, value(ts)))
                .collect()
        };
        let points = |after: u64, to: u64| source.points(found[0].id, after as i64, to as i64);
        // The whole span: every point once, in order.
        assert_eq!(points(T0 - 1, end).unwrap(), every(T0, end));
        // Windows ending on either side of the boundary, and one starting in memory.
        let b = T0 + 3 * HOUR / 2;
        assert_eq!(points(b - HOUR, b - 1).unwrap(), every(b - HOUR + STEP, b));
        assert_eq!(points(b - HOUR, b).unwrap(), every(b - HOUR + STEP, b + 1));
        assert_eq!(points(b - STEP, b + HOUR).unwrap(), every(b, b + HOUR + 1));
        assert_eq!(points(b, end).unwrap(), every(b + STEP, end));
        // A series memory no longer holds comes from the store alone.
        let gone = source.series(&selector(r#"load{host="gone"}"#)).unwrap();
        assert_eq!(gone.len(), 1);
        let p = source.points(gone[0].id, 0, end as i64).unwrap();
        assert_eq!(p.len(), (HOUR / STEP) as usize);
        // Both, in one selection, once each.
        assert_eq!(source.series(&selector("load")).unwrap().len(), 2);
        drop(source);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn later_evaluations_read_only_what_left_memory_since() {
        let end = T0 + 3 * HOUR;
        let (dir, full) = fixture("cache", end, end - HOUR, end);
        // Memory keeps an hour.
        let mut memory = Store::new(HOUR);
        for (k, s) in full.iter() {
            for (ts, v) in s.points.iter() {
                memory.insert(k.clone(), SampleKind::Gauge, "c", ts, v);
            }
        }
        let mut history = HistoryCache::new(&dir.join(DATABASE_FILE));
        let window = |history: &mut HistoryCache, memory: &Store, t: u64| {
            history.begin(t as i64).unwrap();
            let mem = MemorySource::new(memory, u64::MAX / 4);
            let source = StoredSource::new(&mem, history);
            let s = source.series(&selector(r#"load{host="a"}"#)).unwrap();
            source
                .points(s[0].id, (t - 2 * HOUR) as i64, t as i64)
                .unwrap()
        };
        // Points every 10 s up to `end` (not included): 719 in the last 2 h.
        let first = window(&mut history, &memory, end);
        assert_eq!(first.len(), (2 * HOUR / STEP) as usize - 1);
        // Memory's hour came from memory, the 359 points before from the store.
        assert_eq!(history.read_points(), HOUR / STEP - 1);
        // A minute later, memory dropped its oldest minute: the store gives those 6 points, and
        // the window lost its oldest minute.
        memory.expire(end + 60_000);
        let later = window(&mut history, &memory, end + 60_000);
        assert_eq!(history.read_points(), HOUR / STEP - 1 + 6);
        assert_eq!(later[0].0, (end - 2 * HOUR + 60_000 + STEP) as i64);
        assert_eq!(
            later
                .windows(2)
                .filter(|w| w[1].0 - w[0].0 != STEP as i64)
                .count(),
            0
        );
        // What fell out of every window is dropped at the next evaluation.
        window(&mut history, &memory, end + 60_000);
        assert_eq!(history.cached_points(), (HOUR / STEP) as usize - 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
