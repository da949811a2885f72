//! Taking in a collector's samples: the one place where what a plugin sends is checked, sample by
//! sample, before it reaches the store.
//!
//! A collection is read leniently: one sample the host cannot use costs only that sample, counted
//! by reason in the collector's [`PluginStats::rejected`](super::PluginStats::rejected) (and in
//! `/metrics` as `monitor_host_samples_rejected_total{collector,reason}`), never its neighbours. The
//! rules:
//!
//! - `invalid_value`: `value` is missing, `null`, or neither a number nor one of the strings
//!   `"NaN"`, `"+Inf"`, `"-Inf"` (NaN and the infinities are kept, as Prometheus keeps them).
//! - `invalid_sample`: another field has the wrong type (a name that is not a string, a label value
//!   that is not a string, an unknown `kind`, a negative `timestamp_ms`).
//! - `invalid_name`: the name is empty or has a character other than ASCII letters, digits, `_`,
//!   `:`, `.` and `-`.
//! - `invalid_label_name`: a label name does not match `[A-Za-z_][A-Za-z0-9_]*`, or starts with `__`
//!   (reserved by Prometheus: `__name__` would rename the series).
//! - `future_timestamp`: `timestamp_ms` is more than `[host] max_future_skew` ahead of the host's
//!   clock (a point from the future would hide every later point of its series).
//!
//! # Cost
//!
//! As Prometheus's scrape cache does, each collector instance keeps a [`SeriesCache`] from a
//! sample's identity as it came (its name and the raw text of its labels) to the store's
//! [`SeriesId`]: a series seen before, in the place it had in the last collection, costs one
//! compare of its text, with no hash and no label parsed, checked or copied. A sample is first read
//! in a borrowed form ([`FastSample`], see [`collection`](super::collection)); only one that form
//! cannot read goes through a `serde_json::Value`, which gives the reason and message for a
//! rejection.

use std::collections::HashMap;

use monitor_plugin::{Labels, Sample};

use super::Engine;
use super::collection::{FastSample, RawCollection};
use crate::history::EventRecord;
use crate::store::{SeriesId, SeriesKey};

/// How often rejected samples are logged per collector, at most.
const REJECT_LOG_INTERVAL_MS: u64 = 60_000;

/// Why a sample was refused at ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reject {
    InvalidValue,
    InvalidSample,
    InvalidName,
    InvalidLabelName,
    FutureTimestamp,
}

impl Reject {
    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidValue => "invalid_value",
            Self::InvalidSample => "invalid_sample",
            Self::InvalidName => "invalid_name",
            Self::InvalidLabelName => "invalid_label_name",
            Self::FutureTimestamp => "future_timestamp",
        }
    }
}

/// The labels of a sample as the plugin wrote them: `{}` when it wrote none.
fn labels_text(labels: Option<&str>) -> &str {
    labels.unwrap_or("{}")
}

/// One collector instance's series, by identity as it came: the name, then a NUL, then the
/// labels' raw JSON text (which never holds a NUL, so the split is unambiguous).
///
/// A collector returns its series in the same order each time, as a scrape target does: the
/// cache keeps the last collection's identities in order ([`Order`]) and first compares sample
/// `i` with entry `i` there, one compare of memory read in sequence, no hash. Only a sample that
/// is not where it was (a new series, one moved, one after a vanished one) is looked up by
/// hash, which also finds the place to go on from. A collection that brought exactly the last
/// one's series in the same order changes nothing; any other is written down as the new order
/// at its end, and the series it no longer brings are dropped (as before, one hash per series).
#[derive(Debug, Default)]
pub(super) struct SeriesCache {
    ids: HashMap<Box<str>, Cached, foldhash::fast::RandomState>,
    // The series of the last collection, in its order. The map holds exactly their identities.
    order: Order,
    // This collection's series, once it departed from `order`; until then `order[..cursor]`.
    next: Order,
    diverged: bool,
    // Where in `order` the next sample is expected.
    cursor: usize,
    // The identity being looked up, built here to look up without allocating.
    scratch: String,
    // Counts collections; an entry holds the last one that stamped it.
    collection: u32,
}

/// A series in the [`SeriesCache`]'s map.
#[derive(Debug, Clone, Copy)]
struct Cached {
    id: SeriesId,
    // The last collection that stamped it, and its place in that collection's order
    // (`usize::MAX` for a series added since).
    collection: u32,
    place: usize,
}

/// Identities in the order a collection brought them, in one text.
#[derive(Debug, Default)]
struct Order {
    text: String,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    // `text[start..end]` is the identity; `text[start..start + name_len]` the name.
    start: usize,
    name_len: usize,
    end: usize,
    id: SeriesId,
}

impl Order {
    fn clear(&mut self) {
        self.text.clear();
        self.entries.clear();
    }

    fn push(&mut self, name: &str, labels: &str, id: SeriesId) {
        let start = self.text.len();
        self.text.push_str(name);
        self.text.push('\0');
        self.text.push_str(labels);
        self.entries.push(Entry {
            start,
            name_len: name.len(),
            end: self.text.len(),
            id,
        });
    }

    fn identity(&self, e: &Entry) -> &str {
        &self.text[e.start..e.end]
    }

    /// The id at `place`, when the series there is `name`/`labels`.
    fn at(&self, place: usize, name: &str, labels: &str) -> Option<SeriesId> {
        let e = self.entries.get(place)?;
        let text = self.text.as_bytes();
        let name_end = e.start + e.name_len;
        (e.name_len == name.len()
            && e.end - name_end - 1 == labels.len()
            && &text[name_end + 1..e.end] == labels.as_bytes()
            && &text[e.start..name_end] == name.as_bytes())
        .then_some(e.id)
    }
}

impl SeriesCache {
    fn begin(&mut self) {
        self.collection = self.collection.wrapping_add(1);
        self.cursor = 0;
        self.diverged = false;
        self.next.clear();
    }

    fn identity(&mut self, name: &str, labels: &str) -> &str {
        self.scratch.clear();
        self.scratch.push_str(name);
        self.scratch.push('\0');
        self.scratch.push_str(labels);
        &self.scratch
    }

    /// Leaves the last collection's order: this one's so far is written down.
    fn diverge(&mut self) {
        if !self.diverged {
            self.diverged = true;
            let upto = self.order.entries[..self.cursor]
                .last()
                .map_or(0, |e| e.end);
            self.next.text.push_str(&self.order.text[..upto]);
            (self.next.entries).extend_from_slice(&self.order.entries[..self.cursor]);
        }
    }

    /// The id of the series `name`/`labels` was last found to be, counting it in this
    /// collection.
    fn get(&mut self, name: &str, labels: &str) -> Option<SeriesId> {
        if let Some(id) = self.order.at(self.cursor, name, labels) {
            self.cursor += 1;
            if self.diverged {
                self.next.push(name, labels, id);
            }
            return Some(id);
        }
        self.diverge();
        self.identity(name, labels);
        let at = *self.ids.get(self.scratch.as_str())?;
        if at.place < self.order.entries.len() {
            // Go on from where it was: the series after it likely follow it still.
            self.cursor = at.place + 1;
        }
        self.next.push(name, labels, at.id);
        Some(at.id)
    }

    fn insert(&mut self, name: &str, labels: &str, id: SeriesId) {
        self.diverge();
        let identity: Box<str> = self.identity(name, labels).into();
        // Stamped at the end, with its place.
        let cached = Cached {
            id,
            collection: self.collection.wrapping_sub(1),
            place: usize::MAX,
        };
        self.ids.insert(identity, cached);
        self.next.push(name, labels, id);
    }

    /// Forgets the series [`get`](Self::get) just found.
    fn forget(&mut self, name: &str, labels: &str) {
        self.diverge();
        self.next.entries.pop();
        self.identity(name, labels);
        self.ids.remove(self.scratch.as_str());
    }

    /// Drops the series the collection did not bring: memory follows what the collector reports.
    fn end(&mut self) {
        if !self.diverged && self.cursor == self.order.entries.len() {
            // The same series in the same order: nothing changed.
            self.cursor = 0;
            return;
        }
        self.diverge();
        let now = self.collection;
        let mut seen = 0;
        for (place, e) in self.next.entries.iter().enumerate() {
            if let Some(c) = self.ids.get_mut(self.next.identity(e)) {
                if c.collection != now {
                    c.collection = now;
                    seen += 1;
                }
                c.place = place;
            }
        }
        if self.ids.len() > seen {
            self.ids.retain(|_, c| c.collection == now);
        }
        std::mem::swap(&mut self.order, &mut self.next);
        self.next.clear();
        self.diverged = false;
        self.cursor = 0;
    }

    /// Series cached.
    fn len(&self) -> usize {
        self.ids.len()
    }
}

/// When rejections were last logged for one collector, and how many went unlogged since.
#[derive(Debug, Default)]
pub(super) struct RejectLog {
    last_ms: Option<u64>,
    unlogged: u64,
}

impl RejectLog {
    /// Logs this rejection unless one was logged in the last minute; then it is counted and
    /// mentioned with the next line.
    fn note(&mut self, now_ms: u64, collector: &str, series: &str, reason: Reject, detail: &str) {
        if self
            .last_ms
            .is_some_and(|t| now_ms.saturating_sub(t) < REJECT_LOG_INTERVAL_MS)
        {
            self.unlogged += 1;
            return;
        }
        tracing::warn!(
            %collector,
            %series,
            reason = reason.as_str(),
            %detail,
            unlogged_since_last = self.unlogged,
            "sample rejected"
        );
        self.last_ms = Some(now_ms);
        self.unlogged = 0;
    }
}

/// Reads one sample, or says why it cannot be used (with a short description of it for the log).
fn read_sample(raw: serde_json::Value) -> Result<Sample, (Reject, String, String)> {
    let name = raw
        .get("name")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("?")
        .to_owned();
    let value_ok = raw.get("value").is_some_and(|v| {
        v.is_number()
            || v.as_str()
                .and_then(monitor_plugin::number::parse_non_finite)
                .is_some()
    });
    if !value_ok {
        let got = raw
            .get("value")
            .map_or_else(|| "no value".to_owned(), ToString::to_string);
        return Err((Reject::InvalidValue, name, format!("value {got}")));
    }
    serde_json::from_value::<Sample>(raw).map_err(|e| (Reject::InvalidSample, name, e.to_string()))
}

/// Reads a sample in full: from its fast form when its labels read too (`true`), else through
/// [`read_sample`], which says what is wrong.
fn read_full(raw: &str, fast: Option<&FastSample<'_>>) -> Result<(Sample, bool), Rejected> {
    if let Some(s) = fast {
        let labels = match s.labels {
            None => Ok(Labels::new()),
            Some(l) => serde_json::from_str::<Labels>(l),
        };
        if let Ok(labels) = labels {
            let sample = Sample {
                name: s.name.to_string(),
                value: s.value,
                kind: s.kind,
                labels,
                timestamp_ms: s.timestamp_ms,
            };
            return Ok((sample, true));
        }
    }
    // A sample the document reader took but a `Value` cannot hold (a number out of range).
    let value = serde_json::from_str::<serde_json::Value>(raw)
        .map_err(|e| (Reject::InvalidSample, "?".to_owned(), e.to_string()))?;
    read_sample(value).map(|s| (s, false))
}

/// Whether `name` may name a series: see the module docs.
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'.' | b'-'))
}

/// Whether `name` may name a label: `[A-Za-z_][A-Za-z0-9_]*`, not starting with `__`.
pub(super) fn valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.starts_with("__")
}

/// Checks a read sample against the name and time rules.
fn check(s: &Sample, now_ms: u64, max_skew_ms: u64) -> Result<(), (Reject, String)> {
    if !valid_name(&s.name) {
        return Err((Reject::InvalidName, format!("name {:?}", s.name)));
    }
    if let Some(bad) = s.labels.keys().find(|k| !valid_label_name(k)) {
        return Err((Reject::InvalidLabelName, format!("label name {bad:?}")));
    }
    check_time(s.timestamp_ms, now_ms, max_skew_ms)
}

/// Checks a sample's time against the future skew.
fn check_time(
    timestamp_ms: Option<u64>,
    now_ms: u64,
    max_skew_ms: u64,
) -> Result<(), (Reject, String)> {
    if let Some(ts) = timestamp_ms
        && ts > now_ms.saturating_add(max_skew_ms)
    {
        let ahead = (ts - now_ms) / 1000;
        return Err((
            Reject::FutureTimestamp,
            format!("timestamp_ms {ts} is {ahead} s ahead of the host's clock"),
        ));
    }
    Ok(())
}

/// A rejected sample: why, the series' name for the log, and what was wrong.
type Rejected = (Reject, String, String);

/// Where a sample is on its way in.
struct Arrival<'a> {
    source: &'a str,
    now_ms: u64,
    max_skew_ms: u64,
}

impl Engine {
    /// Stores what collector instance `slot` returned: every usable sample, with a `collector`
    /// label naming the instance unless it has one, and every event; refused samples are counted.
    pub(super) fn ingest(&mut self, slot: usize, c: RawCollection<'_>, now_ms: u64) {
        let source = self.plugins[slot].name.clone();
        let at = Arrival {
            source: &source,
            now_ms,
            max_skew_ms: u64::try_from(self.host.max_future_skew.as_millis()).unwrap_or(u64::MAX),
        };
        let mut cache = std::mem::take(&mut self.plugins[slot].series_cache);
        cache.begin();
        // The series of this collection, for staleness (not those with their own timestamps,
        // as Prometheus).
        let mut seen = Vec::with_capacity(cache.len());
        let (samples, events) = c.into_parts();
        for (raw, fast) in samples {
            if let Err((reason, series, detail)) =
                self.ingest_one(&mut cache, &mut seen, raw, fast, &at)
            {
                let p = &mut self.plugins[slot];
                *p.stats.rejected.entry(reason.as_str()).or_default() += 1;
                p.reject_log.note(now_ms, &source, &series, reason, &detail);
            }
        }
        cache.end();
        self.plugins[slot].series_cache = cache;
        self.alerts.collected(&source, seen, now_ms);
        for e in events {
            self.record_event(EventRecord {
                source: source.clone(),
                kind: e.kind,
                message: e.message,
                labels: e.labels,
                timestamp_ms: e.timestamp_ms.unwrap_or(now_ms),
            });
        }
    }

    /// One sample: a known series by its cached id; a new one read in full, checked, labelled
    /// with its collector, stored and cached.
    fn ingest_one(
        &mut self,
        cache: &mut SeriesCache,
        seen: &mut Vec<SeriesId>,
        raw: &str,
        fast: Option<FastSample<'_>>,
        at: &Arrival<'_>,
    ) -> Result<(), Rejected> {
        if let Some(s) = &fast
            && let Some(id) = cache.get(&s.name, labels_text(s.labels))
        {
            if let Some(key) = self.store.key(id) {
                check_time(s.timestamp_ms, at.now_ms, at.max_skew_ms)
                    .map_err(|(reason, detail)| (reason, s.name.to_string(), detail))?;
                let ts_ms = s.timestamp_ms.unwrap_or(at.now_ms);
                if s.timestamp_ms.is_none() {
                    seen.push(id);
                }
                self.remote.push_shared(key, s.kind, ts_ms, s.value);
                self.put_id(id, s.kind, at.source, ts_ms, s.value);
                return Ok(());
            }
            // Expired from the store meanwhile: read as new.
            cache.forget(&s.name, labels_text(s.labels));
        }
        let (sample, whole) = read_full(raw, fast.as_ref())?;
        if let Some(id) = self.admit(sample, seen, at)?
            && let Some(s) = fast.as_ref().filter(|_| whole)
        {
            cache.insert(&s.name, labels_text(s.labels), id);
        }
        Ok(())
    }

    /// Checks a sample read in full and stores it; its id, unless a series limit refused it.
    fn admit(
        &mut self,
        s: Sample,
        seen: &mut Vec<SeriesId>,
        at: &Arrival<'_>,
    ) -> Result<Option<SeriesId>, Rejected> {
        if let Err((reason, detail)) = check(&s, at.now_ms, at.max_skew_ms) {
            return Err((reason, s.name, detail));
        }
        let mut labels = s.labels;
        if !labels.contains_key("collector") {
            labels.insert("collector".to_owned(), at.source.to_owned());
        }
        let key = SeriesKey {
            name: s.name,
            labels,
        };
        let ts_ms = s.timestamp_ms.unwrap_or(at.now_ms);
        self.remote.push(&key, s.kind, ts_ms, s.value);
        let id = self.store.intern(key, s.kind, at.source);
        if let Some(id) = id {
            if s.timestamp_ms.is_none() {
                seen.push(id);
            }
            self.put_id(id, s.kind, at.source, ts_ms, s.value);
        }
        Ok(id)
    }
}

/// A collector instance's ingest without the engine around it: collections read and their samples
/// stored into a [`Store`](crate::store::Store) by the engine's reader and series cache, with no
/// check, alert, history or remote write. For benchmarks.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct BareIngest {
    cache: SeriesCache,
}

impl BareIngest {
    /// Stores the samples of `bytes` at `now_ms`; how many were stored.
    ///
    /// # Errors
    ///
    /// When `bytes` are not a collection.
    pub fn ingest(
        &mut self,
        store: &mut crate::store::Store,
        bytes: &[u8],
        now_ms: u64,
    ) -> Result<usize, serde_json::Error> {
        let (samples, _) = RawCollection::read(bytes)?.into_parts();
        let mut stored = 0;
        self.cache.begin();
        for (raw, fast) in samples {
            let Some(s) = fast else { continue };
            let labels = labels_text(s.labels);
            let id = match self.cache.get(&s.name, labels) {
                Some(id) if store.holds(id) => Some(id),
                found => {
                    if found.is_some() {
                        self.cache.forget(&s.name, labels);
                    }
                    let Ok((sample, true)) = read_full(raw, Some(&s)) else {
                        continue;
                    };
                    let key = SeriesKey {
                        name: sample.name,
                        labels: sample.labels,
                    };
                    let id = store.intern(key, s.kind, "bench");
                    if let Some(id) = id {
                        self.cache.insert(&s.name, labels, id);
                    }
                    id
                }
            };
            if let Some(id) = id {
                stored += usize::from(store.push_id(id, s.kind, now_ms, s.value));
            }
        }
        self.cache.end();
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_plugin::SampleKind;

    #[test]
    fn names_and_label_names() {
        for good in [
            "system.cpu.usage",
            "go_gc_duration_seconds",
            "a:b-c",
            "_x",
            "9lives",
        ] {
            assert!(valid_name(good), "{good:?}");
        }
        for bad in ["", "a\nb", "a b", "a{b}", "é", "a\"b"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        for good in ["job", "_x", "le", "a1_b"] {
            assert!(valid_label_name(good), "{good:?}");
        }
        for bad in ["", "__name__", "__meta", "1a", "a.b", "a-b", "a\nb", "ü"] {
            assert!(!valid_label_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn one_bad_sample_costs_only_itself() {
        let c = RawCollection::read(
            br#"{"samples": [
                {"name": "ok", "value": 1},
                {"name": "nan", "value": "NaN"},
                {"name": "inf", "value": "-Inf"},
                {"name": "null", "value": null},
                {"name": "garbage", "value": "lots"},
                {"name": "novalue"},
                {"name": "badkind", "value": 1, "kind": "histogram"},
                {"name": "badlabel", "value": 1, "labels": {"a": 3}}
            ]}"#,
        )
        .unwrap();
        let got: Vec<Result<String, &str>> = (c.into_parts().0)
            .map(|(raw, fast)| {
                let full = read_full(raw, fast.as_ref()).map(|(s, _)| s.name);
                // The same answer as reading every sample through a `Value`.
                let slow = read_sample(serde_json::from_str(raw).unwrap()).map(|s| s.name);
                assert_eq!(
                    full.as_ref().map_err(|e| e.0),
                    slow.as_ref().map_err(|e| e.0),
                    "{raw}"
                );
                full.map_err(|(r, _, _)| r.as_str())
            })
            .collect();
        assert_eq!(
            got,
            [
                Ok("ok".to_owned()),
                Ok("nan".to_owned()),
                Ok("inf".to_owned()),
                Err("invalid_value"),
                Err("invalid_value"),
                Err("invalid_value"),
                Err("invalid_sample"),
                Err("invalid_sample"),
            ]
        );
    }

    #[test]
    fn the_fast_read_takes_escapes_and_leaves_the_odd_cases_to_the_full_read() {
        let c = RawCollection::read(
            br#"{"samples": [
                {"name": "a\u0062", "value": 1, "labels": {"k\u0031": "v\"w"}},
                {"name": "ok", "value": "+Inf", "kind": "counter", "timestamp_ms": 5},
                {"name": "nolabels", "value": 1, "labels": null},
                {"name": "dup", "name": "dup2", "value": 1},
                {"name": "big", "value": 1e400}
            ]}"#,
        )
        .unwrap();
        let read: Vec<_> = (c.into_parts().0)
            .map(|(raw, fast)| read_full(raw, fast.as_ref()))
            .collect();
        let (ab, fast) = read[0].as_ref().unwrap();
        assert!(fast);
        assert_eq!(ab.name, "ab");
        assert_eq!(ab.labels["k1"], "v\"w");
        let (ok, _) = read[1].as_ref().unwrap();
        assert_eq!(
            (ok.value, ok.kind, ok.timestamp_ms),
            (f64::INFINITY, SampleKind::Counter, Some(5))
        );
        assert_eq!(read[2].as_ref().unwrap_err().0, Reject::InvalidSample);
        assert!(
            matches!(&read[3], Ok((s, false)) if s.name == "dup2"),
            "as a `Value` reads it: {:?}",
            read[3]
        );
        let (reason, _, detail) = read[4].as_ref().unwrap_err();
        assert_eq!(*reason, Reject::InvalidSample, "only this sample: {detail}");
    }

    #[test]
    fn the_cache_tells_series_apart_and_forgets_those_no_longer_reported() {
        let mut store = crate::store::Store::new(60_000);
        let mut id = |name: &str| {
            store
                .intern(
                    SeriesKey {
                        name: name.to_owned(),
                        labels: Labels::new(),
                    },
                    SampleKind::Gauge,
                    "c",
                )
                .unwrap()
        };
        let (a, b) = (id("a"), id("b"));
        let mut cache = SeriesCache::default();
        cache.begin();
        cache.insert("a", r#"{"x":"1"}"#, a);
        cache.insert("a", r#"{"x":"2"}"#, b);
        assert_eq!(cache.get("a", r#"{"x":"1"}"#), Some(a));
        assert_eq!(cache.get("a", r#"{"x":"2"}"#), Some(b));
        assert_eq!(cache.get("a", r#"{"x": "1"}"#), None, "another text");
        assert_eq!(cache.get("a{\"x\":\"1\"}", ""), None);
        cache.end();
        assert_eq!(cache.len(), 2);
        cache.begin();
        assert_eq!(cache.get("a", r#"{"x":"2"}"#), Some(b));
        cache.end();
        assert_eq!(cache.len(), 1, "a{{x=1}} was not reported");
        assert_eq!(cache.get("a", r#"{"x":"1"}"#), None);
    }

    #[test]
    fn the_cache_finds_what_a_plain_map_finds_whatever_the_order() {
        // Collections that keep, reorder, drop, add and repeat series, series that expire from
        // the store, and series a limit refuses, as `ingest_one` meets them, against a map from
        // identity to id kept as the cache kept it before it looked by place.
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % n as u64) as usize
        };
        let series = |i: usize| (format!("m{}", i % 7), format!(r#"{{"k":"{}"}}"#, i / 7));
        // The store: each identity's id while it is held; an expired id is never valid again.
        let mut held: std::collections::BTreeMap<String, SeriesId> = Default::default();
        let mut store = crate::store::Store::new(60_000);
        let mut fresh = 0;
        let mut cache = SeriesCache::default();
        let mut model: HashMap<String, SeriesId> = HashMap::new();
        let mut order: Vec<usize> = (0..20).collect();
        for round in 0..500 {
            match next(7) {
                0 => {}
                1 if !order.is_empty() => {
                    let (a, b) = (next(order.len()), next(order.len()));
                    order.swap(a, b);
                }
                2 if !order.is_empty() => drop(order.remove(next(order.len()))),
                3 => order.insert(next(order.len() + 1), next(40)),
                4 if !order.is_empty() => order.push(order[next(order.len())]),
                5 if !held.is_empty() => {
                    // A series expires from the store.
                    let k = held.keys().nth(next(held.len())).unwrap().clone();
                    held.remove(&k);
                }
                _ => order.reverse(),
            }
            let valid = |held: &std::collections::BTreeMap<_, _>, k: &str, id: Option<SeriesId>| {
                id.filter(|id| held.get(k) == Some(id))
            };
            cache.begin();
            let mut brought = std::collections::HashSet::new();
            for &i in &order {
                let (name, labels) = series(i);
                let identity = format!("{name}\0{labels}");
                let got = cache.get(&name, &labels);
                let expected = model.get(&identity).copied();
                match (got, valid(&held, &identity, got)) {
                    (_, Some(id)) => assert_eq!(Some(id), expected, "round {round}: {identity}"),
                    (None, None) => assert_eq!(
                        valid(&held, &identity, expected),
                        None,
                        "round {round}: {identity} was lost"
                    ),
                    // An id that expired (a repeated series, its first sample read as new since):
                    // read again, interned again to the same id, as after any expired id.
                    (Some(_), None) => {}
                }
                if valid(&held, &identity, got).is_some() {
                    brought.insert(identity);
                    continue;
                }
                if got.is_some() {
                    cache.forget(&name, &labels);
                }
                model.remove(&identity);
                if !held.contains_key(&identity) && next(10) == 0 {
                    // A new series refused by a limit: not cached.
                    continue;
                }
                let id = *held.entry(identity.clone()).or_insert_with(|| {
                    fresh += 1;
                    let key = SeriesKey {
                        name: format!("s{fresh}"),
                        labels: Labels::new(),
                    };
                    store.intern(key, SampleKind::Gauge, "c").unwrap()
                });
                cache.insert(&name, &labels, id);
                model.insert(identity.clone(), id);
                brought.insert(identity);
            }
            cache.end();
            model.retain(|k, _| brought.contains(k));
            assert_eq!(cache.len(), model.len(), "round {round}");
        }
    }

    #[test]
    fn rejections_are_logged_once_a_minute_per_collector_naming_the_series() {
        let mut log = RejectLog::default();
        let note = |log: &mut RejectLog, at: u64, series: &str| {
            crate::test_support::logged(|| {
                log.note(
                    at,
                    "scrape",
                    series,
                    Reject::InvalidLabelName,
                    "label name \"__name__\"",
                );
            })
        };
        let first = note(&mut log, 0, "up");
        assert!(first.contains("sample rejected"), "{first}");
        assert!(first.contains("collector=scrape"), "{first}");
        assert!(first.contains("series=up"), "{first}");
        assert!(
            first.contains("reason=\"invalid_label_name\"")
                || first.contains("reason=invalid_label_name"),
            "{first}"
        );
        for at in [1, 30_000, 59_999] {
            assert_eq!(note(&mut log, at, "up"), "", "quiet within the minute");
        }
        let later = note(&mut log, 60_000, "down");
        assert!(later.contains("series=down"), "{later}");
        assert!(later.contains("unlogged_since_last=3"), "{later}");
    }

    #[test]
    fn timestamps_beyond_the_skew_are_refused() {
        let at = |ts: u64| Sample {
            timestamp_ms: Some(ts),
            ..Sample::gauge("m", 1.0)
        };
        let now = 1_000_000;
        assert!(check(&at(now + 300_000), now, 300_000).is_ok());
        assert!(
            check(&at(1), now, 300_000).is_ok(),
            "the past is the store's business"
        );
        let e = check(&at(now + 300_001), now, 300_000).unwrap_err();
        assert_eq!(e.0, Reject::FutureTimestamp);
        assert!(check(&at(u64::MAX), now, u64::MAX).is_ok(), "no overflow");
    }
}
