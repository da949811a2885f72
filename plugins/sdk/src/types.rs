//! The JSON payloads that cross the plugin boundary.
//!
//! Field names are part of the ABI: adding an optional field is compatible, anything else bumps
//! [`ABI_VERSION`](super::abi::ABI_VERSION).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Labels of a sample or an alert, sorted by key.
pub type Labels = BTreeMap<String, String>;

/// Whether a sample is a level (`gauge`) or a running total (`counter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SampleKind {
    /// A value that goes up and down.
    #[default]
    Gauge,
    /// A monotonically increasing total.
    Counter,
}

/// One measured value.
///
/// In JSON, a finite `value` is a number; NaN and the infinities, which JSON numbers cannot
/// express, are the strings `"NaN"`, `"+Inf"` and `"-Inf"`, as in Prometheus's text format (see
/// [`number`](crate::number)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Dotted metric name, e.g. `system.cpu.usage`.
    pub name: String,
    /// The value; NaN and the infinities are kept (written as `"NaN"`, `"+Inf"`, `"-Inf"`).
    #[serde(with = "crate::number")]
    pub value: f64,
    /// Gauge or counter.
    #[serde(default)]
    pub kind: SampleKind,
    /// Labels telling series of one name apart.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    /// When it was measured, in milliseconds since the Unix epoch; the host uses its own clock when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_ms: Option<u64>,
}

impl Sample {
    /// A gauge sample without labels.
    pub fn gauge(name: impl Into<String>, value: f64) -> Self {
        Self {
            name: name.into(),
            value,
            kind: SampleKind::Gauge,
            labels: Labels::new(),
            timestamp_ms: None,
        }
    }

    /// A counter sample without labels.
    pub fn counter(name: impl Into<String>, value: f64) -> Self {
        Self {
            kind: SampleKind::Counter,
            ..Self::gauge(name, value)
        }
    }

    /// Adds a label.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }
}

/// Something that happened, as opposed to a level: a restart seen, a scrape failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Event kind, e.g. `process_restarted`.
    pub kind: String,
    /// Human text.
    #[serde(default)]
    pub message: String,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    /// Milliseconds since the Unix epoch; the host's clock when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_ms: Option<u64>,
}

/// What a collector returns from one call.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Collection {
    /// Measured values.
    #[serde(default)]
    pub samples: Vec<Sample>,
    /// Events seen since the last call.
    #[serde(default)]
    pub events: Vec<Event>,
}

impl Collection {
    /// Appends the collection's JSON to `out`: the bytes `serde_json::to_vec` writes for it, byte
    /// for byte, written directly rather than through serde's per-field calls (what a collector
    /// returns crosses the boundary this way at every collection). A
    /// [`CollectionWriter`](crate::CollectionWriter) writes the same bytes without the owned
    /// samples.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        crate::writer::write_collection(out, self);
    }
}

/// How serious an alert is, in increasing order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For information.
    Info,
    /// Worth a look.
    #[default]
    Warning,
    /// Something is broken.
    Error,
    /// Act now.
    Critical,
}

impl Severity {
    /// All severities, least serious first.
    pub const ALL: [Severity; 4] = [Self::Info, Self::Warning, Self::Error, Self::Critical];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
        }
    }

    /// Parses a lowercase name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a healing strategy is asked to fix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// Name of the firing alert.
    pub alert: String,
    /// The metric the alert watches.
    pub metric: String,
    /// The alert's latest value: always a finite number from this host. Read as NaN when a host
    /// sends `null`.
    #[serde(deserialize_with = "number_or_null")]
    pub value: f64,
    /// The series' labels.
    #[serde(default)]
    pub labels: Labels,
    /// The alert's severity.
    pub severity: Severity,
    /// 1 for the first attempt on this failure, then 2, 3, ...
    pub attempt: u32,
    /// The alert's description.
    #[serde(default)]
    pub description: String,
}

/// What a healing attempt achieved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealOutcome {
    /// Whether the action worked.
    pub success: bool,
    /// Human text: what was done, what failed.
    #[serde(default)]
    pub message: String,
    /// How long the action took, in milliseconds.
    #[serde(default)]
    pub duration_ms: u64,
}

/// Whether a notification opens or closes an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationStatus {
    /// The alert started firing (or healing gave up, see [`Notification::escalation`]).
    Firing,
    /// The alert stopped firing.
    Resolved,
}

/// An alert state change sent to notifiers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Firing or resolved.
    pub status: NotificationStatus,
    /// Alert name.
    pub alert: String,
    /// The watched metric.
    pub metric: String,
    /// Latest value, always a finite number from this host: when the alert resolved because its
    /// series went stale or vanished ([`stale`](Self::stale)), the last value seen. Read as NaN
    /// when a host sends `null` (earlier hosts did for a stale series).
    #[serde(deserialize_with = "number_or_null")]
    pub value: f64,
    /// The rule's threshold.
    pub threshold: f64,
    /// The rule's condition: `above`, `below`, `equals`, `not_equals`; `expr` for a rule written as
    /// a PromQL expression (see [`expr`](Self::expr)).
    pub condition: String,
    /// Severity (`critical` for an escalation).
    pub severity: Severity,
    /// The rule's description, or what healing gave up on.
    #[serde(default)]
    pub description: String,
    /// The series' labels.
    #[serde(default)]
    pub labels: Labels,
    /// When the alert started firing, ms since the Unix epoch.
    pub starts_at_ms: u64,
    /// When it resolved, ms since the Unix epoch. Absent while firing (see
    /// [`valid_until_ms`](Self::valid_until_ms)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at_ms: Option<u64>,
    /// Firing only: until when this notification vouches that the alert fires, ms since the Unix
    /// epoch. The host sends the firing notification again before then (every `resend_every` of
    /// the notifier) while the alert keeps firing, so a receiver that expires alerts (an
    /// Alertmanager's `endsAt`) can let the alert end at this time when no newer one arrives.
    /// Absent when the notifier gets no reminders, and on resolutions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until_ms: Option<u64>,
    /// True when this is a firing notification sent again (a resend or reminder) for an alert that
    /// was already notified and still fires; false (absent) for the first one.
    #[serde(default, skip_serializing_if = "is_false")]
    pub repeat: bool,
    /// True on an escalation: healing gave up on this alert (max attempts reached within the
    /// window), or its incident went unacknowledged for the rule's `escalate_after` (see
    /// [`escalation_reason`](Self::escalation_reason)).
    #[serde(default)]
    pub escalation: bool,
    /// On an escalation, why: `healing_gave_up` or `unacknowledged`. Absent otherwise (and from
    /// earlier hosts, whose escalations all meant `healing_gave_up`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation_reason: Option<String>,
    /// On an escalation, the host's incident it is about (`/api/incidents/{id}`, to acknowledge
    /// it). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<u64>,
    /// True when the alert resolved because its series stopped being reported (stale or gone),
    /// not because the condition stopped holding: [`value`](Self::value) is then the last value
    /// seen. Absent (false) otherwise.
    #[serde(default, skip_serializing_if = "is_false")]
    pub stale: bool,
    /// Name of the host that sends it.
    #[serde(default)]
    pub host: String,
    /// The rule's annotations, rendered for this alert (`summary`, `description`, `runbook_url`...),
    /// as Alertmanager receives them. Empty (absent) for a simple rule.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The rule's PromQL expression, for a rule written as one (`expr`, rule files); absent for a
    /// simple rule (`metric`, `condition`, `threshold`). When present, [`condition`](Self::condition)
    /// is `expr` and [`threshold`](Self::threshold) is 0: the expression says what fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<String>,
}

/// A JSON number, one of the strings of [`number`](crate::number), or `null` read as NaN: a `null`
/// from a host must not make the payload unreadable.
fn number_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    crate::number::deserialize_or_null(d)
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stale_resolution() -> Notification {
        Notification {
            status: NotificationStatus::Resolved,
            alert: "too_high".into(),
            metric: "m".into(),
            value: 50.0,
            threshold: 10.0,
            condition: "above".into(),
            severity: Severity::Warning,
            description: String::new(),
            labels: Labels::new(),
            starts_at_ms: 1,
            ends_at_ms: Some(2),
            valid_until_ms: None,
            repeat: false,
            escalation: false,
            escalation_reason: None,
            incident_id: None,
            stale: true,
            host: "h".into(),
            annotations: BTreeMap::new(),
            expr: None,
        }
    }

    #[test]
    fn a_collection_is_written_as_serde_json_writes_it() {
        let mut odd = Sample::counter("with \"quotes\" \\ and \n\u{1} é", -0.0)
            .with_label("k\t", "v\"\r")
            .with_label("plain", "x");
        odd.timestamp_ms = Some(u64::MAX);
        let full = Collection {
            samples: vec![
                Sample::gauge("a", 1.0),
                Sample::gauge("b", f64::NAN).with_label("x", "y"),
                Sample::counter("c", f64::INFINITY),
                Sample::gauge("d", f64::NEG_INFINITY),
                Sample::gauge("e", 1e300),
                Sample::gauge("f", 1.5e-7),
                Sample::gauge("g", 123_456_789.0),
                Sample::gauge("h", f64::MIN_POSITIVE),
                Sample::gauge("", 0.1 + 0.2),
                odd,
            ],
            events: vec![Event {
                kind: "k".into(),
                message: "m\n".into(),
                labels: Labels::from([("a".to_owned(), "b".to_owned())]),
                timestamp_ms: Some(7),
            }],
        };
        for c in [Collection::default(), full] {
            let mut ours = b"prefix".to_vec();
            c.write_json(&mut ours);
            let theirs = serde_json::to_vec(&c).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&ours[6..]),
                String::from_utf8_lossy(&theirs)
            );
            assert_eq!(&ours[..6], b"prefix", "appends");
        }
    }

    #[test]
    fn annotations_and_expr_are_optional_both_ways() {
        // Absent when empty: what an earlier notifier reads is unchanged.
        let text = serde_json::to_string(&stale_resolution()).unwrap();
        assert!(
            !text.contains("annotations") && !text.contains("expr"),
            "{text}"
        );
        let back: Notification = serde_json::from_str(&text).unwrap();
        assert_eq!(back, stale_resolution());
        let with = Notification {
            annotations: BTreeMap::from([("summary".to_owned(), "s".to_owned())]),
            expr: Some("up == 0".into()),
            ..stale_resolution()
        };
        let text = serde_json::to_string(&with).unwrap();
        assert!(text.contains(r#""annotations":{"summary":"s"}"#), "{text}");
        assert!(text.contains(r#""expr":"up == 0""#), "{text}");
        assert_eq!(serde_json::from_str::<Notification>(&text).unwrap(), with);
    }

    #[test]
    fn a_stale_resolution_reads_with_the_fields_of_earlier_sdks() {
        // What a notifier built with an earlier SDK deserialises: `value` required, no `stale`.
        #[derive(Deserialize)]
        #[allow(dead_code)] // Reason: only whether it parses matters.
        struct Earlier {
            status: NotificationStatus,
            alert: String,
            metric: String,
            value: f64,
            threshold: f64,
            condition: String,
            severity: Severity,
            starts_at_ms: u64,
        }
        let json = serde_json::to_string(&stale_resolution()).unwrap();
        let earlier: Earlier = serde_json::from_str(&json).unwrap();
        assert_eq!(earlier.value, 50.0);
        assert!(json.contains("\"stale\":true"), "{json}");
        let back: Notification = serde_json::from_str(&json).unwrap();
        assert_eq!(back, stale_resolution());
    }

    #[test]
    fn null_values_from_earlier_hosts_read_as_nan_and_stale_defaults_to_false() {
        let mut v = serde_json::to_value(stale_resolution()).unwrap();
        v["value"] = serde_json::Value::Null;
        v.as_object_mut().unwrap().remove("stale");
        let n: Notification = serde_json::from_value(v).unwrap();
        assert!(n.value.is_nan());
        assert!(!n.stale);
        let firing = serde_json::to_string(&Notification {
            stale: false,
            ..stale_resolution()
        })
        .unwrap();
        assert!(!firing.contains("stale"), "omitted when false: {firing}");
    }
    #[test]
    fn a_reminder_carries_repeat_and_valid_until_and_earlier_payloads_read_without_them() {
        let reminder = Notification {
            status: NotificationStatus::Firing,
            ends_at_ms: None,
            valid_until_ms: Some(240_001),
            repeat: true,
            stale: false,
            ..stale_resolution()
        };
        let json = serde_json::to_string(&reminder).unwrap();
        assert!(json.contains("\"valid_until_ms\":240001"), "{json}");
        assert!(json.contains("\"repeat\":true"), "{json}");
        assert!(!json.contains("ends_at_ms"), "{json}");
        let mut v = serde_json::to_value(&reminder).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("valid_until_ms");
        o.remove("repeat");
        let earlier: Notification = serde_json::from_value(v).unwrap();
        assert_eq!((earlier.valid_until_ms, earlier.repeat), (None, false));
        let first = serde_json::to_string(&stale_resolution()).unwrap();
        assert!(
            !first.contains("repeat") && !first.contains("valid_until_ms"),
            "omitted when unset: {first}"
        );
    }
}
