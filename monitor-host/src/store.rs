//! The in-memory time-series store: every collected series, with retention.

use std::collections::{BTreeMap, VecDeque};

use monitor_plugin::{Labels, SampleKind};
use serde::Serialize;

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
    pub points: VecDeque<(u64, f64)>,
}

impl Series {
    /// The latest point.
    pub fn latest(&self) -> Option<(u64, f64)> {
        self.points.back().copied()
    }
}

/// Every series, by key.
#[derive(Debug, Default)]
pub struct Store {
    series: BTreeMap<SeriesKey, Series>,
    retention_ms: u64,
}

impl Store {
    /// An empty store keeping points for `retention_ms`.
    pub fn new(retention_ms: u64) -> Self {
        Self {
            series: BTreeMap::new(),
            retention_ms,
        }
    }

    /// Appends a point; non-finite values are dropped, out-of-order points are dropped. Returns
    /// whether the point was kept.
    pub fn insert(
        &mut self,
        key: SeriesKey,
        kind: SampleKind,
        source: &str,
        ts_ms: u64,
        value: f64,
    ) -> bool {
        if !value.is_finite() {
            return false;
        }
        let s = self.series.entry(key).or_insert_with(|| Series {
            kind,
            source: source.to_owned(),
            points: VecDeque::new(),
        });
        s.kind = kind;
        if s.points.back().is_some_and(|&(t, _)| t > ts_ms) {
            return false;
        }
        if s.points.len() == MAX_POINTS_PER_SERIES {
            s.points.pop_front();
        }
        s.points.push_back((ts_ms, value));
        true
    }

    /// Drops points older than the retention, and series left empty.
    pub fn expire(&mut self, now_ms: u64) {
        let horizon = now_ms.saturating_sub(self.retention_ms);
        self.series.retain(|_, s| {
            while s.points.front().is_some_and(|&(t, _)| t < horizon) {
                s.points.pop_front();
            }
            !s.points.is_empty()
        });
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
        self.series
            .range(start..)
            .take_while(move |(k, _)| k.name == name)
    }

    /// Every series.
    pub fn iter(&self) -> impl Iterator<Item = (&SeriesKey, &Series)> {
        self.series.iter()
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
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
        assert!(!s.insert(key("a", &[]), SampleKind::Gauge, "c", 5, f64::NAN));
        assert!(s.is_empty());
        assert!(s.insert(key("a", &[]), SampleKind::Gauge, "c", 5, 1.0));
        assert!(
            !s.insert(key("a", &[]), SampleKind::Gauge, "c", 4, 1.0),
            "out of order"
        );
    }
}
