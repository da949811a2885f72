//! The host's records as analytics [`Event`]s: the kind names what happened and to what.
//!
//! | record | kind |
//! |---|---|
//! | an alert fires / resolves | `alert_firing:<alert>` / `alert_resolved:<alert>` |
//! | a healing attempt succeeds / fails | `healing_succeeded:<alert>` / `healing_failed:<alert>` |
//! | an event | `<kind>:<subject>`, the subject being its `plugin` or `process` label, or its source unless that is the host itself; `<kind>` without one |
//!
//! The timestamp is the record's; the event's agent is left empty, so every kind can follow
//! every other.

use monitor_core::analytics::Event;

use crate::history::{EventRecord, HealRecord, PastEvents, TransitionRecord};

/// An alert transition's event.
pub fn transition(alert: &str, firing: bool, at_ms: u64) -> Event {
    let state = if firing { "firing" } else { "resolved" };
    Event::new(format!("alert_{state}:{alert}"), at_ms)
}

/// A healing attempt's event, at its end.
pub fn heal(h: &HealRecord) -> Event {
    // The verified outcome once known (read back from the store), else what the strategy said.
    let outcome = if h.verified.unwrap_or(h.success) {
        "succeeded"
    } else {
        "failed"
    };
    Event::new(
        format!("healing_{outcome}:{}", h.alert),
        h.started_ms + h.duration_ms,
    )
    .with_metadata("strategy", h.strategy.as_str())
}

/// An event record's event.
pub fn record(e: &EventRecord) -> Event {
    let subject = (e.labels.get("plugin"))
        .or_else(|| e.labels.get("process"))
        .map(String::as_str)
        .or((e.source != "host" && !e.source.is_empty()).then_some(e.source.as_str()));
    let kind = match subject {
        Some(s) => format!("{}:{s}", e.kind),
        None => e.kind.clone(),
    };
    Event::new(kind, e.timestamp_ms)
}

/// Everything the store held, in no particular order.
pub fn from_past(past: &PastEvents) -> Vec<Event> {
    let transitions = (past.transitions.iter())
        .map(|t: &TransitionRecord| transition(&t.alert, t.firing, t.at_ms));
    let heals = past.heals.iter().map(heal);
    let records = past.events.iter().map(record);
    transitions.chain(heals).chain(records).collect()
}

/// The alert an event kind is about, when it is an alert's firing.
pub fn firing_alert(kind: &str) -> Option<&str> {
    kind.strip_prefix("alert_firing:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_name_what_happened_and_to_what() {
        assert_eq!(
            transition("disk_full", true, 5).kind.as_str(),
            "alert_firing:disk_full"
        );
        assert_eq!(
            transition("disk_full", false, 5).kind.as_str(),
            "alert_resolved:disk_full"
        );
        let mut e = EventRecord {
            source: "host".into(),
            kind: "plugin_timeout".into(),
            message: String::new(),
            labels: [("plugin".to_owned(), "system".to_owned())].into(),
            timestamp_ms: 7,
        };
        assert_eq!(record(&e).kind.as_str(), "plugin_timeout:system");
        e.labels.clear();
        assert_eq!(record(&e).kind.as_str(), "plugin_timeout");
        e.source = "procs".into();
        e.kind = "process_restarted".into();
        e.labels.insert("process".into(), "demo".into());
        assert_eq!(record(&e).kind.as_str(), "process_restarted:demo");
        assert_eq!(record(&e).timestamp_ms, 7);
    }
}
