//! The in-memory store as a [`Source`]: what alert and recording rules are evaluated over.
//!
//! A [`MemorySource`] is a snapshot of the store's series index taken once per evaluation (each
//! series' labels as `/metrics` shows them, by name), so each selector costs a look-up by name
//! rather than a pass over every series. Samples are read from the store itself. The labels and
//! the look-up by name are kept between evaluations in a [`MemoryIndex`] while the store holds the
//! same series, so an evaluation builds them only after new series came (or some expired).
//!
//! Two things the store does not hold are added:
//!
//! - Staleness: Prometheus writes a staleness marker when a scraped series disappears; the store
//!   writes none. A series whose newest sample is older than the host's staleness window
//!   (`stale_ms`) gets a marker `stale_ms` after that sample, so it leaves instant vectors as a
//!   scraped series leaves Prometheus's, and an alert on it resolves; one its collector no longer
//!   returned ([`MemorySource::with_gone`]) gets it as soon as that happened, as in Prometheus.
//! - Recording rules' results of the evaluation in progress ([`MemorySource::record`]): a later
//!   rule of the same group reads them at once, as in Prometheus, before they reach the store.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use monitor_plugin::{Labels, SampleKind};
use promql_parser::label::{MatchOp, Matcher};

use super::value::{Metric, NAME, Points};
use super::{Source, SourceSeries, matches};
use crate::query::metric;
use crate::store::{SeriesId, SeriesKey, Store};

/// Prometheus's staleness marker: a NaN with this bit pattern.
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// A series' points, decoded: every point later than the time given (`i64::MIN`: all of them),
/// and possibly a few older ones.
type Decoded = (Arc<[(i64, f64)]>, i64);

#[derive(Debug)]
struct Entry<'a> {
    metric: Cow<'a, Metric>,
    key: Cow<'a, SeriesKey>,
    // The store's id of a stored series.
    id: Option<SeriesId>,
    stored: Option<&'a crate::store::Points>,
    // Whether it goes stale `stale_ms` after its newest sample: not a recorded series, which
    // its rule writes at its group's interval, and which instant selectors see for the lookback.
    stales: bool,
    // Points recorded during this evaluation, newer than the stored ones.
    recorded: Vec<(i64, f64)>,
}

/// A snapshot of a [`Store`]'s series for one evaluation time.
#[derive(Debug)]
pub struct MemorySource<'a> {
    entries: Vec<Entry<'a>>,
    by_name: Cow<'a, HashMap<String, Vec<usize>>>,
    stale_ms: u64,
    newest_ms: u64,
    // Each stored series' points, by entry, decoded once for every rule that reads it (as far
    // back as the rules read).
    decoded: RefCell<Vec<Option<Decoded>>>,
    // When the series their collector no longer returned went missing, by store id.
    gone: Option<&'a HashMap<SeriesId, u64>>,
}

/// Each series of a [`Store`] as rules see it (its labels as `/metrics` shows them) and the series
/// of each name, kept between evaluations: [`refresh`](Self::refresh) rebuilds them only when the
/// store's series changed ([`Store::series_version`]) or one changed kind.
#[derive(Debug, Default)]
pub struct MemoryIndex {
    version: Option<u64>,
    kinds: Vec<SampleKind>,
    metrics: Vec<Metric>,
    by_name: HashMap<String, Vec<usize>>,
}

impl MemoryIndex {
    /// Brings the index in step with `store`: kept when it holds the same series of the same
    /// kinds (a pass over the series, no allocation), else rebuilt.
    pub fn refresh(&mut self, store: &Store) {
        let version = store.series_version();
        if self.version == Some(version)
            && self.kinds.len() == store.len()
            && (store.iter().zip(&self.kinds)).all(|((_, s), k)| s.kind == *k)
        {
            return;
        }
        self.version = Some(version);
        self.kinds.clear();
        self.metrics.clear();
        self.by_name.clear();
        for (i, (key, series)) in store.iter().enumerate() {
            let m = metric(&key.name, &key.labels, series.kind);
            let name = m.get(NAME).cloned().unwrap_or_default();
            self.by_name.entry(name).or_default().push(i);
            self.kinds.push(series.kind);
            self.metrics.push(m);
        }
    }
}

impl<'a> MemorySource<'a> {
    /// The series of `store`; one whose newest sample is older than `stale_ms` is marked stale
    /// `stale_ms` after it. Linear in the number of series.
    pub fn new(store: &'a Store, stale_ms: u64) -> Self {
        let mut index = MemoryIndex::default();
        index.refresh(store);
        let MemoryIndex {
            metrics, by_name, ..
        } = index;
        Self::build(
            store,
            stale_ms,
            metrics.into_iter().map(Cow::Owned),
            Cow::Owned(by_name),
        )
    }

    /// As [`new`](Self::new), with the labels and the look-up by name of `index`, which
    /// [`MemoryIndex::refresh`] brought in step with `store`: no label set is built.
    ///
    /// # Panics
    ///
    /// `index` was not refreshed with `store`.
    pub fn with_index(store: &'a Store, stale_ms: u64, index: &'a MemoryIndex) -> Self {
        assert_eq!(
            index.version,
            Some(store.series_version()),
            "the index is refreshed with the store"
        );
        let metrics = index.metrics.iter().map(Cow::Borrowed);
        Self::build(store, stale_ms, metrics, Cow::Borrowed(&index.by_name))
    }

    fn build(
        store: &'a Store,
        stale_ms: u64,
        metrics: impl Iterator<Item = Cow<'a, Metric>>,
        by_name: Cow<'a, HashMap<String, Vec<usize>>>,
    ) -> Self {
        let mut source = Self {
            entries: Vec::with_capacity(store.len()),
            by_name,
            stale_ms,
            newest_ms: 0,
            decoded: RefCell::new(Vec::new()),
            gone: None,
        };
        for ((id, key, series), metric) in store.iter_ids().zip(metrics) {
            if let Some((t, _)) = series.latest() {
                source.newest_ms = source.newest_ms.max(t);
            }
            source.entries.push(Entry {
                metric,
                key: Cow::Borrowed(key),
                id: Some(id),
                stored: Some(&series.points),
                stales: series.source != crate::alert::RULES_SOURCE,
                recorded: Vec::new(),
            });
        }
        source
    }

    /// Marks the series of `gone` (by store id, to the time they
    /// went missing from their collector's collections) stale from that time, when it is earlier
    /// than the staleness window would.
    #[must_use]
    pub fn with_gone(mut self, gone: &'a HashMap<SeriesId, u64>) -> Self {
        self.gone = Some(gone).filter(|g| !g.is_empty());
        self
    }

    /// When entry `e` went missing from its collections, if it did after its newest sample.
    fn gone_since(&self, e: &Entry<'_>, newest: i64) -> Option<i64> {
        let since = *self.gone?.get(&e.id?)?;
        i64::try_from(since).ok().filter(|&t| t > newest)
    }

    /// The newest sample's time, ms since the epoch (0 for an empty store).
    pub fn newest_ms(&self) -> u64 {
        self.newest_ms
    }

    fn push(&mut self, entry: Entry<'a>) {
        let name = entry.metric.get(NAME).cloned().unwrap_or_default();
        (self.by_name.to_mut())
            .entry(name)
            .or_default()
            .push(self.entries.len());
        self.entries.push(entry);
    }

    pub(super) fn find(&self, metric: &Metric) -> Option<usize> {
        let name = metric.get(NAME).map_or("", String::as_str);
        (self.by_name.get(name)?.iter().copied()).find(|&i| *self.entries[i].metric == *metric)
    }

    /// The time of the oldest point memory holds of series `id` (not counting the results
    /// recorded during this evaluation, which are newer): from it on, memory holds every point.
    pub(super) fn oldest_ms(&self, id: i64) -> Option<i64> {
        let e = self.entries.get(usize::try_from(id).ok()?)?;
        let (t, _) = e.stored?.front()?;
        i64::try_from(t).ok()
    }

    /// The store's labels of the series shown as `metric` (`__name__` included): what an
    /// instant selector's sample came from.
    pub fn labels_of(&self, metric: &Metric) -> Option<&Labels> {
        self.find(metric).map(|i| &self.entries[i].key.labels)
    }

    /// Adds a recording rule's sample at `ts_ms`: `metric` is its name and labels, as stored
    /// (`rules` source, a gauge). Later evaluations over this source see it.
    pub fn record(&mut self, metric: Metric, ts_ms: i64, value: f64) {
        if let Some(i) = self.find(&metric) {
            let e = &mut self.entries[i];
            e.recorded.retain(|p| p.0 < ts_ms);
            e.recorded.push((ts_ms, value));
            return;
        }
        let mut labels = metric.clone();
        let name = labels.remove(NAME).unwrap_or_default();
        self.push(Entry {
            metric: Cow::Owned(metric),
            key: Cow::Owned(SeriesKey { name, labels }),
            id: None,
            stored: None,
            stales: false,
            recorded: vec![(ts_ms, value)],
        });
    }

    /// The series of the names a `__name__` matcher selects (looked up by name, or matched
    /// against each distinct name), or every series.
    fn candidates<'s>(&'s self, matchers: &'s [Matcher]) -> Box<dyn Iterator<Item = usize> + 's> {
        match matchers.iter().find(|m| m.name == NAME) {
            Some(m) if matches!(m.op, MatchOp::Equal) => {
                Box::new(self.by_name.get(&m.value).into_iter().flatten().copied())
            }
            Some(m) => {
                let mut names: Vec<&String> =
                    self.by_name.keys().filter(|n| m.is_match(n)).collect();
                names.sort();
                Box::new(
                    names
                        .into_iter()
                        .flat_map(|n| self.by_name[n].iter().copied()),
                )
            }
            None => Box::new(0..self.entries.len()),
        }
    }
}

impl Source for MemorySource<'_> {
    fn series(&self, matchers: &[Matcher]) -> Result<Vec<SourceSeries>, String> {
        Ok(self
            .candidates(matchers)
            .filter(|&i| matches(matchers, &self.entries[i].metric))
            .map(|i| SourceSeries {
                id: i as i64,
                metric: Metric::clone(&self.entries[i].metric),
            })
            .collect())
    }

    fn points(&self, id: i64, after_ms: i64, to_ms: i64) -> Result<Vec<(i64, f64)>, String> {
        Ok(self.shared_points(id, after_ms, to_ms)?.to_vec())
    }

    /// The stored points of the window are shared with the decoded series, not copied, unless
    /// recorded samples or a staleness marker fall in it.
    fn shared_points(&self, id: i64, after_ms: i64, to_ms: i64) -> Result<Points, String> {
        let i = usize::try_from(id)
            .ok()
            .filter(|&i| i < self.entries.len())
            .ok_or_else(|| format!("no series {id}"))?;
        let e = &self.entries[i];
        let as_ms = |t: u64| i64::try_from(t).unwrap_or(i64::MAX);
        let stored = match e.stored {
            None => Arc::from(Vec::new()),
            Some(p) => {
                let mut decoded = self.decoded.borrow_mut();
                if decoded.len() <= i {
                    decoded.resize(i + 1, None);
                }
                let held = decoded[i].as_ref().filter(|d| d.1 <= after_ms);
                match held {
                    Some(d) => Arc::clone(&d.0),
                    None => {
                        let d = decode(p, after_ms);
                        let all = Arc::clone(&d.0);
                        decoded[i] = Some(d);
                        all
                    }
                }
            }
        };
        let window = Points::new(stored).window(after_ms, to_ms);
        let newest = e
            .recorded
            .last()
            .map(|p| p.0)
            .or_else(|| e.stored.and_then(|p| p.back()).map(|p| as_ms(p.0)));
        let marker = newest.filter(|_| e.stales).map(|newest| {
            let window = newest
                .saturating_add(as_ms(self.stale_ms))
                .saturating_add(1);
            self.gone_since(e, newest).map_or(window, |t| t.min(window))
        });
        let marker = marker.filter(|&m| m > after_ms && m <= to_ms);
        let recorded = (e.recorded.iter()).any(|p| p.0 > after_ms && p.0 <= to_ms);
        if marker.is_none() && !recorded {
            return Ok(window);
        }
        let mut out: Vec<(i64, f64)> = window.to_vec();
        out.extend(
            (e.recorded.iter())
                .filter(|p| p.0 > after_ms && p.0 <= to_ms)
                .copied(),
        );
        if let Some(marker) = marker {
            out.push((marker, f64::from_bits(STALE_NAN)));
        }
        Ok(Points::new(out.into()))
    }
}

/// The points of `p` later than `after_ms`, and those of the chunk that holds the oldest of them.
fn decode(p: &crate::store::Points, after_ms: i64) -> Decoded {
    let as_ms = |t: u64| i64::try_from(t).unwrap_or(i64::MAX);
    let from = u64::try_from(after_ms).unwrap_or(0);
    let points: Arc<[(i64, f64)]> = (p.iter_from_chunk_of(from))
        .map(|(t, v)| (as_ms(t), v))
        .collect::<Vec<_>>()
        .into();
    let first = points.first().map(|p| p.0);
    let covers = match p.front() {
        Some((oldest, _)) if first != Some(as_ms(oldest)) => first.map_or(i64::MIN, |t| t - 1),
        _ => i64::MIN,
    };
    (points, covers)
}

#[cfg(test)]
mod tests {
    use monitor_plugin::SampleKind;

    use super::*;
    use crate::promql::{Value, instant_query};

    fn store() -> Store {
        let mut s = Store::new(u64::MAX);
        let key = |name: &str, dev: &str| SeriesKey {
            name: name.into(),
            labels: Labels::from([("dev.name".to_owned(), dev.to_owned())]),
        };
        for i in 0..=60u64 {
            s.insert(
                key("req", "a"),
                SampleKind::Counter,
                "c",
                i * 1000,
                i as f64 * 2.0,
            );
            s.insert(key("disk.used", "a"), SampleKind::Gauge, "c", i * 1000, 5.0);
        }
        s.insert(key("disk.used", "b"), SampleKind::Gauge, "c", 10_000, 7.0);
        s
    }

    fn values(source: &MemorySource<'_>, q: &str, t: i64) -> Vec<(Metric, f64)> {
        match instant_query(source, q, t).unwrap() {
            Value::Vector(v) => v.into_iter().map(|s| (s.metric, s.value)).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn series_are_seen_as_metrics_shows_them() {
        let s = store();
        let src = MemorySource::new(&s, 30_000);
        let v = values(&src, "rate(req_total[30s])", 60_000);
        assert_eq!(v.len(), 1);
        assert!((v[0].1 - 2.0).abs() < 1e-9, "{v:?}");
        assert_eq!(v[0].0["dev_name"], "a");
        let v = values(&src, r#"disk_used{dev_name="a"}"#, 60_000);
        let labels = src.labels_of(&v[0].0).unwrap();
        assert_eq!(labels["dev.name"], "a", "the store's own labels");
    }

    #[test]
    fn a_series_not_updated_for_the_staleness_window_leaves_instant_vectors() {
        let s = store();
        let src = MemorySource::new(&s, 30_000);
        // `dev=b` was last seen at 10 s: still there at 40 s, gone after.
        assert_eq!(values(&src, "disk_used", 40_000).len(), 2);
        assert_eq!(values(&src, "disk_used", 40_001).len(), 1);
        // Its samples stay readable in ranges.
        let v = values(
            &src,
            r#"max_over_time(disk_used{dev_name="b"}[1m])"#,
            60_000,
        );
        assert_eq!(v[0].1, 7.0);
    }

    #[test]
    fn a_window_reaching_further_back_than_those_read_before_is_read_whole() {
        // 300 points: three chunks; the first query decodes only the newest.
        let mut s = Store::new(u64::MAX);
        let key = SeriesKey {
            name: "x".into(),
            labels: Labels::new(),
        };
        for i in 1..=300u64 {
            s.insert(key.clone(), SampleKind::Gauge, "c", i * 1000, i as f64);
        }
        let src = MemorySource::new(&s, 30_000);
        for (window, count, min) in [("10s", 10.0, 291.0), ("250s", 250.0, 51.0)] {
            let count_q = format!("count_over_time(x[{window}])");
            assert_eq!(values(&src, &count_q, 300_000)[0].1, count, "{window}");
            let min_q = format!("min_over_time(x[{window}])");
            assert_eq!(values(&src, &min_q, 300_000)[0].1, min, "{window}");
        }
        assert_eq!(values(&src, "count_over_time(x[1h])", 300_000)[0].1, 300.0);
    }

    #[test]
    fn a_name_regex_selects_by_name() {
        let s = store();
        let src = MemorySource::new(&s, 30_000);
        let v = values(&src, r#"{__name__=~"req(_total)?"}"#, 60_000);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].0[NAME], "req_total");
        assert_eq!(
            values(&src, r#"{__name__!~"req.*", dev_name=~".+"}"#, 40_000).len(),
            2
        );
    }

    #[test]
    fn recorded_series_do_not_go_stale_between_their_evaluations() {
        let mut s = Store::new(u64::MAX);
        let key = SeriesKey {
            name: "job:x".into(),
            labels: Labels::new(),
        };
        s.insert(key, SampleKind::Gauge, crate::alert::RULES_SOURCE, 0, 1.0);
        let src = MemorySource::new(&s, 3_000);
        // A group evaluated every minute: still there 50 s after its last evaluation.
        assert_eq!(values(&src, "job:x", 50_000).len(), 1);
    }

    #[test]
    fn recorded_samples_are_seen_at_once() {
        let s = store();
        let mut src = MemorySource::new(&s, 30_000);
        assert!(values(&src, "job:x", 60_000).is_empty());
        let m: Metric = [(NAME, "job:x"), ("job", "a")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        src.record(m.clone(), 60_000, 3.0);
        assert_eq!(values(&src, "job:x", 60_000), vec![(m.clone(), 3.0)]);
        assert_eq!(src.labels_of(&m).unwrap()["job"], "a");
    }

    #[test]
    fn a_kept_index_answers_as_a_new_one_until_the_series_change() {
        let mut s = store();
        let mut index = MemoryIndex::default();
        index.refresh(&s);
        let built = index.metrics.as_ptr();
        let queries = [
            "disk_used",
            "rate(req_total[30s])",
            r#"{__name__=~"disk.*"}"#,
        ];
        let same = |s: &Store, index: &MemoryIndex| {
            for q in queries {
                let kept = values(&MemorySource::with_index(s, 30_000, index), q, 60_000);
                assert_eq!(
                    kept,
                    values(&MemorySource::new(s, 30_000), q, 60_000),
                    "{q}"
                );
            }
        };
        same(&s, &index);
        // New points of the same series: kept, not rebuilt.
        s.insert(
            SeriesKey {
                name: "disk.used".into(),
                labels: Labels::from([("dev.name".to_owned(), "b".to_owned())]),
            },
            SampleKind::Gauge,
            "c",
            50_000,
            8.0,
        );
        index.refresh(&s);
        assert_eq!(index.metrics.as_ptr(), built, "kept");
        same(&s, &index);
        // A new series, and a series that changes kind: rebuilt, and seen.
        let key = |name: &str| SeriesKey {
            name: name.into(),
            labels: Labels::new(),
        };
        s.insert(key("new"), SampleKind::Gauge, "c", 50_000, 1.0);
        index.refresh(&s);
        assert_eq!(
            values(&MemorySource::with_index(&s, 30_000, &index), "new", 60_000).len(),
            1
        );
        same(&s, &index);
        // Another store with as many series added: not taken for this one.
        let mut other = Store::new(u64::MAX);
        for name in ["o1", "o2", "o3", "o4"] {
            other.insert(key(name), SampleKind::Gauge, "c", 1_000, 1.0);
        }
        assert_ne!(other.series_version(), s.series_version());
        s.insert(key("new"), SampleKind::Counter, "c", 55_000, 2.0);
        index.refresh(&s);
        let src = MemorySource::with_index(&s, 30_000, &index);
        assert_eq!(
            values(&src, "new_total", 60_000).len(),
            1,
            "read as a counter"
        );
        same(&s, &index);
    }

    #[test]
    #[should_panic(expected = "the index is refreshed with the store")]
    fn an_index_not_refreshed_with_the_store_is_refused() {
        let mut s = store();
        let mut index = MemoryIndex::default();
        index.refresh(&s);
        s.insert(
            SeriesKey {
                name: "new".into(),
                labels: Labels::new(),
            },
            SampleKind::Gauge,
            "c",
            1,
            1.0,
        );
        let _ = MemorySource::with_index(&s, 30_000, &index);
    }
}
