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

use monitor_plugin::{Event, Sample};
use serde::Deserialize;

use super::Engine;
use crate::history::EventRecord;
use crate::store::SeriesKey;

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

/// A collection as read by the host: samples one by one, so a bad one does not sink the rest.
#[derive(Debug, Deserialize)]
pub(super) struct RawCollection {
    #[serde(default)]
    samples: Vec<serde_json::Value>,
    #[serde(default)]
    events: Vec<Event>,
}

impl RawCollection {
    /// Samples returned, good or not.
    pub fn len(&self) -> usize {
        self.samples.len()
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
    if let Some(ts) = s.timestamp_ms
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

impl Engine {
    /// Stores what collector instance `slot` returned: every usable sample, with a `collector`
    /// label naming the instance unless it has one, and every event; refused samples are counted.
    pub(super) fn ingest(&mut self, slot: usize, c: RawCollection, now_ms: u64) {
        let source = self.plugins[slot].name.clone();
        let max_skew_ms = u64::try_from(self.host.max_future_skew.as_millis()).unwrap_or(u64::MAX);
        // The series of this collection, for staleness (not those with their own timestamps,
        // as Prometheus).
        let mut seen = std::collections::HashSet::new();
        for raw in c.samples {
            let sample = read_sample(raw).and_then(|s| match check(&s, now_ms, max_skew_ms) {
                Ok(()) => Ok(s),
                Err((reason, detail)) => Err((reason, s.name, detail)),
            });
            let sample = match sample {
                Ok(s) => s,
                Err((reason, series, detail)) => {
                    let p = &mut self.plugins[slot];
                    *p.stats.rejected.entry(reason.as_str()).or_default() += 1;
                    p.reject_log.note(now_ms, &source, &series, reason, &detail);
                    continue;
                }
            };
            let mut labels = sample.labels;
            if !labels.contains_key("collector") {
                labels.insert("collector".to_owned(), source.clone());
            }
            let key = SeriesKey {
                name: sample.name,
                labels,
            };
            if sample.timestamp_ms.is_none() {
                seen.insert(crate::alert::series_id(&key));
            }
            let ts_ms = sample.timestamp_ms.unwrap_or(now_ms);
            self.remote.push(&key, sample.kind, ts_ms, sample.value);
            self.put(key, sample.kind, &source, ts_ms, sample.value);
        }
        self.alerts.collected(&source, seen, now_ms);
        for e in c.events {
            self.record_event(EventRecord {
                source: source.clone(),
                kind: e.kind,
                message: e.message,
                labels: e.labels,
                timestamp_ms: e.timestamp_ms.unwrap_or(now_ms),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let c: RawCollection = serde_json::from_str(
            r#"{"samples": [
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
        let got: Vec<Result<String, &str>> = c
            .samples
            .into_iter()
            .map(|raw| {
                read_sample(raw)
                    .map(|s| s.name)
                    .map_err(|(r, _, _)| r.as_str())
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
