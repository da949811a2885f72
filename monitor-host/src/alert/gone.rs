//! Which series a collection no longer returned, so rules see them go stale at once, as
//! Prometheus sees a scraped series go stale at the first scrape that lacks it.
//!
//! Prometheus writes a staleness marker for every series of the previous scrape that a scrape
//! does not return, and for all of them when the scrape fails; a series whose samples carry their
//! own timestamps gets none. The host's store writes no markers: [`Gone`] keeps, per source
//! (collector instance), the series of its last collection, and the time each series missing
//! from a later one went missing. [`MemorySource`](crate::promql::MemorySource) puts a marker
//! there. A series that comes back is no longer gone; one gone for longer than the staleness
//! window is forgotten (it is stale by then anyway).

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use crate::store::SeriesKey;

/// A series' identity for staleness ([`AlertEngine::collected`](super::AlertEngine::collected)):
/// a hash of its key (64 bits: collisions are negligible at the number of series a host holds,
/// and would only move a marker).
pub fn series_id(key: &SeriesKey) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// The series each source returned last, and since when each missing one is gone.
#[derive(Debug, Default)]
pub struct Gone {
    last: HashMap<String, HashSet<u64>>,
    since: HashMap<u64, u64>,
}

impl Gone {
    /// Source `source` returned `series` (their [`series_id`]s, of the samples without their own
    /// timestamp) at `at_ms`; a failed collection returned none. Linear in the series.
    pub fn collected(&mut self, source: &str, series: HashSet<u64>, at_ms: u64) {
        for id in &series {
            self.since.remove(id);
        }
        if let Some(before) = self.last.get(source) {
            for id in before.difference(&series) {
                self.since.entry(*id).or_insert(at_ms);
            }
        }
        self.last.insert(source.to_owned(), series);
    }

    /// Source `source` is gone (a reload removed its collector): every series of its last
    /// collection is gone from `at_ms`, and the source is forgotten.
    pub fn removed(&mut self, source: &str, at_ms: u64) {
        self.collected(source, HashSet::new(), at_ms);
        self.last.remove(source);
    }

    /// Forgets the series gone before `horizon_ms`.
    pub fn expire(&mut self, horizon_ms: u64) {
        self.since.retain(|_, t| *t >= horizon_ms);
    }

    /// When each gone series went missing, by [`series_id`].
    pub fn since(&self) -> &HashMap<u64, u64> {
        &self.since
    }
}

#[cfg(test)]
mod tests {
    use monitor_plugin::Labels;

    use super::*;

    fn id(name: &str) -> u64 {
        series_id(&SeriesKey {
            name: name.into(),
            labels: Labels::new(),
        })
    }

    #[test]
    fn a_series_missing_from_a_collection_is_gone_until_it_comes_back() {
        let mut g = Gone::default();
        g.collected("c", HashSet::from([id("a"), id("b")]), 0);
        assert!(g.since().is_empty());
        g.collected("c", HashSet::from([id("a")]), 1_000);
        g.collected("c", HashSet::from([id("a")]), 2_000);
        assert_eq!(
            g.since().get(&id("b")),
            Some(&1_000),
            "since it first went missing"
        );
        // Another source's collection says nothing about `c`'s series.
        g.collected("d", HashSet::new(), 3_000);
        assert_eq!(g.since().len(), 1);
        // A failed collection: every series of the source is gone.
        g.collected("c", HashSet::new(), 4_000);
        assert_eq!(g.since().get(&id("a")), Some(&4_000));
        g.collected("c", HashSet::from([id("b")]), 5_000);
        assert_eq!(g.since().get(&id("b")), None, "back");
        g.expire(4_001);
        assert!(g.since().is_empty());
    }

    #[test]
    fn a_removed_source_s_series_are_gone_and_the_source_forgotten() {
        let mut g = Gone::default();
        g.collected("c", HashSet::from([id("a")]), 0);
        g.collected("d", HashSet::from([id("b")]), 0);
        g.removed("c", 1_500);
        assert_eq!(g.since().get(&id("a")), Some(&1_500));
        assert_eq!(
            g.since().get(&id("b")),
            None,
            "another source's series stay"
        );
        assert!(!g.last.contains_key("c"));
    }
}
