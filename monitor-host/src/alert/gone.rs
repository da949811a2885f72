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
//!
//! Series are told apart by their store [`SeriesId`], which ingest has at hand for every sample:
//! a collection costs one slot write per series and no hashing. A series that expired from the
//! store and comes back gets a new id, under which it was never gone.

use std::collections::HashMap;

use crate::store::SeriesId;

/// The series each source returned last, and since when each missing one is gone.
#[derive(Debug, Default)]
pub struct Gone {
    last: HashMap<String, Vec<SeriesId>>,
    // By store slot: the generation of the series last returned in that slot, and the number of
    // the collection that returned it. A collection's number is never reused, so a series is in
    // the collection being taken in exactly when its slot holds its generation and that number.
    stamp: Vec<(u32, u64)>,
    collections: u64,
    since: HashMap<SeriesId, u64>,
}

impl Gone {
    /// Source `source` returned `series` (of the samples without their own timestamp) at
    /// `at_ms`; a failed collection returned none. Linear in the series of this collection and
    /// of the source's previous one.
    pub fn collected(&mut self, source: &str, series: Vec<SeriesId>, at_ms: u64) {
        self.collections += 1;
        let now = self.collections;
        for id in &series {
            if self.stamp.len() <= id.slot() {
                self.stamp.resize(id.slot() + 1, (0, 0));
            }
            self.stamp[id.slot()] = (id.generation(), now);
        }
        if !self.since.is_empty() {
            for id in &series {
                self.since.remove(id);
            }
        }
        let before = match self.last.get_mut(source) {
            Some(before) => std::mem::replace(before, series),
            None => {
                self.last.insert(source.to_owned(), series);
                return;
            }
        };
        for id in before {
            if self.stamp[id.slot()] != (id.generation(), now) {
                self.since.entry(id).or_insert(at_ms);
            }
        }
    }

    /// Source `source` is gone (a reload removed its collector): every series of its last
    /// collection is gone from `at_ms`, and the source is forgotten.
    pub fn removed(&mut self, source: &str, at_ms: u64) {
        self.collected(source, Vec::new(), at_ms);
        self.last.remove(source);
    }

    /// Forgets the series gone before `horizon_ms`.
    pub fn expire(&mut self, horizon_ms: u64) {
        self.since.retain(|_, t| *t >= horizon_ms);
    }

    /// When each gone series went missing.
    pub fn since(&self) -> &HashMap<SeriesId, u64> {
        &self.since
    }
}

#[cfg(test)]
mod tests {
    use monitor_plugin::{Labels, SampleKind};

    use super::*;
    use crate::store::{SeriesKey, Store};

    fn key(name: &str) -> SeriesKey {
        SeriesKey {
            name: name.into(),
            labels: Labels::new(),
        }
    }

    #[test]
    fn a_series_missing_from_a_collection_is_gone_until_it_comes_back() {
        let mut store = Store::new(1_000);
        let mut id = |name: &str| store.intern(key(name), SampleKind::Gauge, "c").unwrap();
        let (a, b) = (id("a"), id("b"));
        let mut g = Gone::default();
        g.collected("c", vec![a, b], 0);
        assert!(g.since().is_empty());
        g.collected("c", vec![a], 1_000);
        g.collected("c", vec![a, a], 2_000);
        assert_eq!(
            g.since().get(&b),
            Some(&1_000),
            "since it first went missing"
        );
        // Another source's collection says nothing about `c`'s series.
        g.collected("d", Vec::new(), 3_000);
        assert_eq!(g.since().len(), 1);
        // A failed collection: every series of the source is gone.
        g.collected("c", Vec::new(), 4_000);
        assert_eq!(g.since().get(&a), Some(&4_000));
        g.collected("c", vec![b], 5_000);
        assert_eq!(g.since().get(&b), None, "back");
        g.expire(4_001);
        assert!(g.since().is_empty());
    }

    #[test]
    fn a_later_series_in_a_gone_series_slot_does_not_hide_it() {
        let mut store = Store::new(1_000);
        let a = store.intern(key("a"), SampleKind::Gauge, "c").unwrap();
        store.push_id(a, SampleKind::Gauge, 0, 1.0);
        let mut g = Gone::default();
        g.collected("c", vec![a], 0);
        // `a` expires from the store; `b` takes its slot and is what `c` returns next.
        store.expire(5_000);
        let b = store.intern(key("b"), SampleKind::Gauge, "c").unwrap();
        assert_eq!(a.slot(), b.slot());
        g.collected("c", vec![b], 5_000);
        assert_eq!(g.since().get(&a), Some(&5_000));
        assert_eq!(g.since().get(&b), None);
    }

    #[test]
    fn a_removed_source_s_series_are_gone_and_the_source_forgotten() {
        let mut store = Store::new(1_000);
        let mut id = |name: &str| store.intern(key(name), SampleKind::Gauge, "c").unwrap();
        let (a, b) = (id("a"), id("b"));
        let mut g = Gone::default();
        g.collected("c", vec![a], 0);
        g.collected("d", vec![b], 0);
        g.removed("c", 1_500);
        assert_eq!(g.since().get(&a), Some(&1_500));
        assert_eq!(g.since().get(&b), None, "another source's series stay");
        assert!(!g.last.contains_key("c"));
    }
}
