//! Incidents: one per alert episode (an alert instance, by rule name and series labels), with a
//! timeline of what happened to it.
//!
//! An incident opens when an alert instance fires and closes when it resolves. A re-fire within
//! [`REOPEN_WITHIN`] (`[host] reopen_within`) of the resolution reopens the same incident instead
//! of opening a new one, so a flapping alert is one incident with several `fired` and `resolved`
//! entries; an acknowledgement stays with it. The timeline records firings, every notification
//! sent (which notifier, delivered or not), every healing attempt and its outcome, escalations
//! (healing gave up; unacknowledged for `escalate_after`), acknowledgements, notes and
//! resolutions. Derived figures: time to acknowledge (first firing to the first
//! acknowledgement) and time to recover (first firing to the last resolution).
//!
//! [`Incidents`] holds them in memory, bounded ([`MAX_OPEN`] open, [`MAX_CLOSED`] closed, at most
//! [`MAX_TIMELINE`] entries each); the engine feeds it and writes the changed ones to the store
//! (the `incidents` table), which keeps closed ones for `rollup_retention`.

/// The HTTP API: `/api/incidents`.
pub mod api;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use monitor_plugin::{Labels, Severity};
use serde::{Deserialize, Serialize};

use crate::alert::AlertKey;

/// How long after its resolution a re-firing alert instance reopens its incident, by default.
pub const REOPEN_WITHIN: Duration = Duration::from_secs(300);

/// Most incidents open at once; an alert instance that fires beyond it gets no incident (counted
/// in [`Incidents::refused`] and logged).
pub const MAX_OPEN: usize = 1000;

/// Most closed incidents kept in memory (the store keeps them for `rollup_retention`).
pub const MAX_CLOSED: usize = 1000;

/// Most timeline entries per incident: beyond it, the oldest notification or healing entry makes
/// room (counted in [`Incident::omitted`]).
pub const MAX_TIMELINE: usize = 200;

/// Longest `by`, `comment` or note `text` accepted, in bytes.
pub const MAX_TEXT: usize = 4096;

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentState {
    /// Firing, nobody acknowledged it.
    Open,
    /// Firing, acknowledged.
    Acknowledged,
    /// The alert resolved.
    Resolved,
}

impl IncidentState {
    /// `open`, `acknowledged` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
        }
    }

    /// The state of that name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Open, Self::Acknowledged, Self::Resolved]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// Why an incident was escalated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationReason {
    /// Healing gave up: its strategy used its attempts and the alert still fires.
    HealingGaveUp,
    /// Nobody acknowledged it within the rule's `escalate_after`.
    Unacknowledged,
}

impl EscalationReason {
    /// `healing_gave_up` or `unacknowledged`, as in the notification's `escalation_reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HealingGaveUp => "healing_gave_up",
            Self::Unacknowledged => "unacknowledged",
        }
    }
}

/// What happened, in a timeline entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// The alert instance fired (`reopened`: again, within `reopen_within` of its resolution).
    Fired {
        /// The value that made it fire.
        value: f64,
        /// A re-fire that reopened the incident.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reopened: bool,
    },
    /// A notifier was called with a notification about it.
    Notified {
        /// The notifier instance.
        notifier: String,
        /// `firing` or `resolved`.
        status: String,
        /// The notifier took it.
        ok: bool,
        /// Why not, when it did not.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// A reminder of a firing alert.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        repeat: bool,
        /// An escalation.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        escalation: bool,
    },
    /// A healing attempt ended.
    Healing {
        /// The strategy instance.
        strategy: String,
        /// 1, 2, 3... within the healing episode.
        attempt: u32,
        /// What the strategy reported.
        success: bool,
        /// Its message (or why the call failed).
        message: String,
        /// How long it took, as the strategy reported it.
        duration_ms: u64,
    },
    /// Escalated.
    Escalated {
        /// Why.
        reason: EscalationReason,
        /// The notifier instances told (empty: every notifier its severity reaches).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        to: Vec<String>,
        /// Detail: the strategy that gave up, or how long it went unacknowledged.
        message: String,
    },
    /// Someone acknowledged it.
    Acknowledged {
        /// Who.
        by: String,
        /// Why, what is being done.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        comment: String,
    },
    /// A note.
    Note {
        /// Who.
        by: String,
        /// The note.
        text: String,
    },
    /// The alert instance resolved.
    Resolved {
        /// The last value.
        value: f64,
        /// It resolved because its series stopped being reported.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        stale: bool,
    },
}

impl Event {
    /// Entries that may make room for newer ones when the timeline is full.
    fn routine(&self) -> bool {
        matches!(self, Self::Notified { .. } | Self::Healing { .. })
    }
}

/// One timeline entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// When, ms since epoch.
    pub at_ms: u64,
    /// What.
    #[serde(flatten)]
    pub event: Event,
}

/// An acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Who.
    pub by: String,
    /// When, ms since epoch.
    pub at_ms: u64,
    /// Why, what is being done.
    pub comment: String,
}

/// One incident: an alert instance's episode and its timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Increasing from 1, never reused.
    pub id: u64,
    /// The alert rule's name.
    pub alert: String,
    /// The series' labels.
    pub labels: Labels,
    /// The rule's severity.
    pub severity: Severity,
    /// When it first fired, ms since epoch.
    pub opened_ms: u64,
    /// When it last started firing (the first firing, or the re-fire that reopened it).
    pub fired_ms: u64,
    /// When it resolved; `None` while it fires.
    pub resolved_ms: Option<u64>,
    /// The first acknowledgement.
    pub acknowledged: Option<Ack>,
    /// When the time escalation was sent; at most once per incident.
    pub escalated_ms: Option<u64>,
    /// Times a re-fire reopened it.
    pub reopened: u32,
    /// Entries dropped to keep the timeline within [`MAX_TIMELINE`].
    pub omitted: u64,
    /// What happened, oldest first.
    pub timeline: Vec<Entry>,
}

impl Incident {
    /// Where it stands.
    pub fn state(&self) -> IncidentState {
        match (self.resolved_ms, &self.acknowledged) {
            (Some(_), _) => IncidentState::Resolved,
            (None, Some(_)) => IncidentState::Acknowledged,
            (None, None) => IncidentState::Open,
        }
    }

    /// From the first firing to the first acknowledgement.
    pub fn time_to_acknowledge(&self) -> Option<Duration> {
        let ack = self.acknowledged.as_ref()?;
        Some(Duration::from_millis(
            ack.at_ms.saturating_sub(self.opened_ms),
        ))
    }

    /// From the first firing to the (last) resolution.
    pub fn time_to_recover(&self) -> Option<Duration> {
        let resolved = self.resolved_ms?;
        Some(Duration::from_millis(
            resolved.saturating_sub(self.opened_ms),
        ))
    }

    /// Appends an entry, making room in a full timeline.
    fn push(&mut self, at_ms: u64, event: Event) {
        if self.timeline.len() >= MAX_TIMELINE {
            // The first entry (the opening) stays; the oldest routine one goes, else the oldest.
            let drop = (self.timeline.iter().skip(1))
                .position(|e| e.event.routine())
                .map_or(1, |i| i + 1);
            self.timeline.remove(drop);
            self.omitted += 1;
        }
        // Kept in time order: outcomes of plugin calls are stamped when they arrive, which may be
        // after the cycle (stamped with its start) that records the next entries.
        let at = self.timeline.partition_point(|e| e.at_ms <= at_ms);
        self.timeline.insert(at, Entry { at_ms, event });
    }
}

/// Why an acknowledgement or note was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncidentError {
    /// No incident has that id (or it was pruned).
    #[error("no incident {0}")]
    NotFound(u64),
    /// A field is empty or too long.
    #[error("{0}")]
    Invalid(String),
}

/// A time escalation that is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The incident.
    pub id: u64,
    /// Its alert instance.
    pub key: AlertKey,
    /// How long it has gone unacknowledged.
    pub after: Duration,
}

/// Every incident held in memory, and which changed since the store last took them.
#[derive(Debug, Default)]
pub struct Incidents {
    list: BTreeMap<u64, Incident>,
    // The open (unresolved) incident, or the last resolved one, of each alert instance.
    by_key: BTreeMap<AlertKey, u64>,
    next_id: u64,
    dirty: BTreeSet<u64>,
    // The ids of the resolved incidents in `list`, oldest first: the others are open.
    closed: BTreeSet<u64>,
    refused: u64,
    // Figures of the incidents recovered and acknowledged since the start: `(count, sum)`.
    recovered: (u64, Duration),
    acknowledged: (u64, Duration),
    last_recovered: Option<Duration>,
}

fn check_text(field: &str, text: &str, required: bool) -> Result<(), IncidentError> {
    if required && text.trim().is_empty() {
        return Err(IncidentError::Invalid(format!(
            "`{field}` must not be empty"
        )));
    }
    if text.len() > MAX_TEXT {
        return Err(IncidentError::Invalid(format!(
            "`{field}` is longer than {MAX_TEXT} bytes"
        )));
    }
    Ok(())
}

impl Incidents {
    /// Puts back what the store held: open incidents and the closed ones still kept.
    pub fn restore(&mut self, saved: Vec<Incident>) {
        for i in saved {
            self.next_id = self.next_id.max(i.id);
            let key = (i.alert.clone(), i.labels.clone());
            // The newest incident of an instance is the one a re-fire reopens.
            if self.by_key.get(&key).is_none_or(|&old| old < i.id) {
                self.by_key.insert(key, i.id);
            }
            if i.resolved_ms.is_some() {
                self.closed.insert(i.id);
            } else {
                self.closed.remove(&i.id);
            }
            self.list.insert(i.id, i);
        }
        self.trim();
    }

    /// An alert instance fired at `at_ms`: opens its incident, or reopens the one resolved less
    /// than `reopen_within` ago; returns its id (`None` beyond [`MAX_OPEN`]).
    pub fn fired(
        &mut self,
        key: &AlertKey,
        severity: Severity,
        value: f64,
        at_ms: u64,
        reopen_within: Duration,
    ) -> Option<u64> {
        if let Some(i) = (self.by_key.get(key)).and_then(|id| self.list.get_mut(id)) {
            match i.resolved_ms {
                None => return Some(i.id),
                Some(r) if at_ms.saturating_sub(r) < reopen_within.as_millis() as u64 => {
                    i.resolved_ms = None;
                    self.closed.remove(&i.id);
                    i.fired_ms = at_ms;
                    i.reopened += 1;
                    i.severity = severity;
                    i.push(
                        at_ms,
                        Event::Fired {
                            value,
                            reopened: true,
                        },
                    );
                    self.dirty.insert(i.id);
                    return Some(i.id);
                }
                Some(_) => {}
            }
        }
        if self.open_count() >= MAX_OPEN {
            self.refused += 1;
            tracing::warn!(
                alert = %key.0,
                labels = ?key.1,
                limit = MAX_OPEN,
                "too many open incidents; this firing gets none"
            );
            return None;
        }
        self.next_id += 1;
        let id = self.next_id;
        let mut i = Incident {
            id,
            alert: key.0.clone(),
            labels: key.1.clone(),
            severity,
            opened_ms: at_ms,
            fired_ms: at_ms,
            resolved_ms: None,
            acknowledged: None,
            escalated_ms: None,
            reopened: 0,
            omitted: 0,
            timeline: Vec::new(),
        };
        i.push(
            at_ms,
            Event::Fired {
                value,
                reopened: false,
            },
        );
        self.list.insert(id, i);
        self.by_key.insert(key.clone(), id);
        self.dirty.insert(id);
        self.trim();
        Some(id)
    }

    /// An alert instance resolved at `at_ms`: closes its incident.
    pub fn resolved(&mut self, key: &AlertKey, value: f64, stale: bool, at_ms: u64) {
        let Some(i) = (self.by_key.get(key)).and_then(|id| self.list.get_mut(id)) else {
            return;
        };
        if i.resolved_ms.is_some() {
            return;
        }
        i.resolved_ms = Some(at_ms);
        self.closed.insert(i.id);
        i.push(at_ms, Event::Resolved { value, stale });
        let ttr = i.time_to_recover().unwrap_or_default();
        self.recovered.0 += 1;
        self.recovered.1 += ttr;
        self.last_recovered = Some(ttr);
        self.dirty.insert(i.id);
        self.trim();
    }

    /// The incident an alert instance's news goes to: its open one, or the last resolved one
    /// (a resolution's notification arrives after the resolution).
    pub fn of(&self, key: &AlertKey) -> Option<u64> {
        self.by_key.get(key).copied()
    }

    /// Adds `event` to the timeline of the incident of `key`, when it has one.
    pub fn record(&mut self, key: &AlertKey, at_ms: u64, event: Event) {
        if let Some(i) = (self.by_key.get(key)).and_then(|id| self.list.get_mut(id)) {
            i.push(at_ms, event);
            self.dirty.insert(i.id);
        }
    }

    /// Acknowledges incident `id`; a second acknowledgement is recorded on the timeline, the
    /// first one stays the incident's. Stops a pending time escalation.
    ///
    /// # Errors
    ///
    /// No such incident, or `by` is empty, or a text is too long.
    pub fn acknowledge(
        &mut self,
        id: u64,
        by: &str,
        comment: &str,
        at_ms: u64,
    ) -> Result<&Incident, IncidentError> {
        check_text("by", by, true)?;
        check_text("comment", comment, false)?;
        let i = self.list.get_mut(&id).ok_or(IncidentError::NotFound(id))?;
        i.push(
            at_ms,
            Event::Acknowledged {
                by: by.to_owned(),
                comment: comment.to_owned(),
            },
        );
        if i.acknowledged.is_none() {
            i.acknowledged = Some(Ack {
                by: by.to_owned(),
                at_ms,
                comment: comment.to_owned(),
            });
            let tta = i.time_to_acknowledge().unwrap_or_default();
            self.acknowledged.0 += 1;
            self.acknowledged.1 += tta;
        }
        self.dirty.insert(id);
        Ok(&self.list[&id])
    }

    /// Adds a note to incident `id`.
    ///
    /// # Errors
    ///
    /// No such incident, or `by` or `text` is empty, or too long.
    pub fn note(
        &mut self,
        id: u64,
        by: &str,
        text: &str,
        at_ms: u64,
    ) -> Result<&Incident, IncidentError> {
        check_text("by", by, true)?;
        check_text("text", text, true)?;
        let i = self.list.get_mut(&id).ok_or(IncidentError::NotFound(id))?;
        i.push(
            at_ms,
            Event::Note {
                by: by.to_owned(),
                text: text.to_owned(),
            },
        );
        self.dirty.insert(id);
        Ok(&self.list[&id])
    }

    /// The open, unacknowledged incidents not yet escalated whose last firing is at least
    /// `after(alert)` old at `now_ms`.
    pub fn due(&self, now_ms: u64, after: &dyn Fn(&str) -> Option<Duration>) -> Vec<Due> {
        (self.list.values())
            .filter(|i| i.state() == IncidentState::Open && i.escalated_ms.is_none())
            .filter_map(|i| {
                let after = after(&i.alert)?;
                (now_ms.saturating_sub(i.fired_ms) >= after.as_millis() as u64).then(|| Due {
                    id: i.id,
                    key: (i.alert.clone(), i.labels.clone()),
                    after,
                })
            })
            .collect()
    }

    /// Marks incident `id` escalated by time, and records it.
    pub fn escalated(&mut self, id: u64, to: Vec<String>, message: String, at_ms: u64) {
        if let Some(i) = self.list.get_mut(&id) {
            i.escalated_ms = Some(at_ms);
            i.push(
                at_ms,
                Event::Escalated {
                    reason: EscalationReason::Unacknowledged,
                    to,
                    message,
                },
            );
            self.dirty.insert(id);
        }
    }

    /// One incident.
    pub fn get(&self, id: u64) -> Option<&Incident> {
        self.list.get(&id)
    }

    /// Every incident held, newest first.
    pub fn iter(&self) -> impl Iterator<Item = &Incident> {
        self.list.values().rev()
    }

    /// Incidents not resolved.
    pub fn open_count(&self) -> usize {
        self.list.len() - self.closed.len()
    }

    /// Firings that got no incident because [`MAX_OPEN`] were open.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Incidents recovered since the start: how many, and their times to recover added up.
    pub fn recovered(&self) -> (u64, Duration) {
        self.recovered
    }

    /// The last recovered incident's time to recover, since the start.
    pub fn last_recovered(&self) -> Option<Duration> {
        self.last_recovered
    }

    /// Incidents acknowledged since the start: how many, and their times to acknowledge added up.
    pub fn acknowledged(&self) -> (u64, Duration) {
        self.acknowledged
    }

    /// The incidents changed since the last call, for the store.
    pub fn changes(&mut self) -> Vec<Incident> {
        let ids = std::mem::take(&mut self.dirty);
        ids.into_iter()
            .filter_map(|id| self.list.get(&id).cloned())
            .collect()
    }

    /// Forgets closed incidents resolved before `horizon_ms`, and the oldest closed ones beyond
    /// [`MAX_CLOSED`].
    pub fn prune(&mut self, horizon_ms: u64) {
        let old: Vec<u64> = (self.list.values())
            .filter(|i| i.resolved_ms.is_some_and(|r| r < horizon_ms))
            .map(|i| i.id)
            .collect();
        for id in old {
            self.forget(id);
        }
        self.trim();
    }

    fn trim(&mut self) {
        while self.closed.len() > MAX_CLOSED {
            let Some(id) = self.closed.first().copied() else {
                break;
            };
            self.forget(id);
        }
    }

    fn forget(&mut self, id: u64) {
        self.closed.remove(&id);
        if let Some(i) = self.list.remove(&id) {
            let key = (i.alert, i.labels);
            if self.by_key.get(&key) == Some(&id) {
                self.by_key.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_MIN: Duration = Duration::from_secs(300);

    fn key(n: &str) -> AlertKey {
        (
            "too_high".to_owned(),
            Labels::from([("n".to_owned(), n.to_owned())]),
        )
    }

    fn kinds(i: &Incident) -> Vec<String> {
        (i.timeline.iter())
            .map(|e| {
                serde_json::to_value(e).unwrap()["kind"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn an_episode_opens_then_resolves_with_its_figures() {
        let mut book = Incidents::default();
        let id = book.fired(&key("a"), Severity::Warning, 11.0, 1_000, FIVE_MIN);
        assert_eq!(id, Some(1));
        assert_eq!(
            book.fired(&key("a"), Severity::Warning, 12.0, 2_000, FIVE_MIN),
            Some(1),
            "still firing: the same incident"
        );
        book.acknowledge(1, "ann", "looking", 4_000).unwrap();
        book.note(1, "bob", "disk full", 5_000).unwrap();
        book.resolved(&key("a"), 3.0, false, 9_000);
        let i = book.get(1).unwrap();
        assert_eq!(i.state(), IncidentState::Resolved);
        assert_eq!(i.time_to_acknowledge(), Some(Duration::from_secs(3)));
        assert_eq!(i.time_to_recover(), Some(Duration::from_secs(8)));
        assert_eq!(kinds(i), ["fired", "acknowledged", "note", "resolved"]);
        assert_eq!(book.recovered(), (1, Duration::from_secs(8)));
        assert_eq!(book.open_count(), 0);
    }

    #[test]
    fn a_refire_within_reopen_within_reopens_and_later_opens_a_new_one() {
        let mut book = Incidents::default();
        book.fired(&key("a"), Severity::Warning, 11.0, 0, FIVE_MIN);
        book.resolved(&key("a"), 3.0, false, 10_000);
        let again = book.fired(&key("a"), Severity::Warning, 11.0, 20_000, FIVE_MIN);
        assert_eq!(again, Some(1));
        let i = book.get(1).unwrap();
        assert_eq!(
            (i.state(), i.reopened, i.fired_ms),
            (IncidentState::Open, 1, 20_000)
        );
        book.resolved(&key("a"), 3.0, false, 30_000);
        let late = 30_000 + FIVE_MIN.as_millis() as u64;
        assert_eq!(
            book.fired(&key("a"), Severity::Warning, 11.0, late, FIVE_MIN),
            Some(2)
        );
        assert_eq!(
            book.get(1).unwrap().time_to_recover(),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn escalation_is_due_once_for_unacknowledged_open_incidents() {
        let mut book = Incidents::default();
        book.fired(&key("a"), Severity::Warning, 11.0, 0, FIVE_MIN);
        book.fired(&key("b"), Severity::Warning, 11.0, 0, FIVE_MIN);
        let after = |_: &str| Some(Duration::from_secs(2));
        assert!(book.due(1_999, &after).is_empty());
        book.acknowledge(2, "ann", "", 1_000).unwrap();
        let due = book.due(2_000, &after);
        assert_eq!(due.iter().map(|d| d.id).collect::<Vec<_>>(), [1]);
        book.escalated(1, vec!["pager".into()], "2s".into(), 2_000);
        assert!(book.due(9_000, &after).is_empty(), "once");
        assert!(book.due(9_000, &|_| None).is_empty());
    }

    #[test]
    fn bad_acknowledgements_and_notes_are_refused() {
        let mut book = Incidents::default();
        assert_eq!(
            book.acknowledge(7, "ann", "", 0).unwrap_err(),
            IncidentError::NotFound(7)
        );
        book.fired(&key("a"), Severity::Warning, 11.0, 0, FIVE_MIN);
        assert!(matches!(
            book.acknowledge(1, " ", "", 0),
            Err(IncidentError::Invalid(_))
        ));
        assert!(matches!(
            book.note(1, "ann", "", 0),
            Err(IncidentError::Invalid(_))
        ));
        let long = "x".repeat(MAX_TEXT + 1);
        assert!(matches!(
            book.note(1, "ann", &long, 0),
            Err(IncidentError::Invalid(_))
        ));
        assert!(book.get(1).unwrap().acknowledged.is_none());
    }

    #[test]
    fn the_timeline_and_the_closed_incidents_are_bounded() {
        let mut book = Incidents::default();
        book.fired(&key("a"), Severity::Warning, 11.0, 0, FIVE_MIN);
        book.acknowledge(1, "ann", "", 1).unwrap();
        for t in 0..(MAX_TIMELINE as u64 + 10) {
            let event = Event::Notified {
                notifier: "log".into(),
                status: "firing".into(),
                ok: true,
                error: None,
                repeat: true,
                escalation: false,
            };
            book.record(&key("a"), 10 + t, event);
        }
        let i = book.get(1).unwrap();
        assert_eq!(i.timeline.len(), MAX_TIMELINE);
        assert_eq!(i.omitted, 12);
        assert_eq!(kinds(i)[..2], ["fired", "acknowledged"], "the firsts stay");
        for n in 0..(MAX_CLOSED + 5) {
            let k = key(&n.to_string());
            book.fired(&k, Severity::Warning, 1.0, 100, FIVE_MIN);
            book.resolved(&k, 1.0, false, 200);
        }
        assert_eq!(
            book.iter().count(),
            MAX_CLOSED + 1,
            "the open one, the last closed"
        );
        assert_eq!(book.open_count(), 1);
        book.prune(201);
        assert_eq!(book.iter().count(), 1);
        assert_eq!(book.open_count(), 1);
        // A re-fire within `reopen_within` reopens: open again, no longer closed.
        let k = key("b");
        book.fired(&k, Severity::Warning, 1.0, 300, FIVE_MIN);
        book.resolved(&k, 1.0, false, 400);
        assert_eq!(book.open_count(), 1);
        book.fired(&k, Severity::Warning, 1.0, 500, FIVE_MIN);
        assert_eq!(book.open_count(), 2);
        book.resolved(&k, 1.0, false, 600);
        assert_eq!((book.open_count(), book.iter().count()), (1, 2));
    }

    #[test]
    fn restored_incidents_keep_their_ids_and_timelines() {
        let mut book = Incidents::default();
        book.fired(&key("a"), Severity::Warning, 11.0, 0, FIVE_MIN);
        book.note(1, "ann", "n", 5).unwrap();
        let saved = book.changes();
        let json = serde_json::to_string(&saved).unwrap();
        let mut again = Incidents::default();
        again.restore(serde_json::from_str(&json).unwrap());
        assert_eq!(again.get(1), book.get(1));
        assert_eq!(
            again.fired(&key("b"), Severity::Warning, 1.0, 9, FIVE_MIN),
            Some(2)
        );
        assert_eq!(again.of(&key("a")), Some(1));
    }
}
