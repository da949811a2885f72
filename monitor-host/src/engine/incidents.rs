//! Incidents, fed by the cycle: alert transitions open and close them, notification and healing
//! outcomes and escalations land on their timelines, and an incident still unacknowledged
//! `escalate_after` its firing is notified to its rule's `escalate_to` notifiers, once.

use monitor_plugin::{Labels, Notification, NotificationStatus};
use serde::Deserialize;

use super::healing::HealJob;
use super::{Engine, PlannedNotification, notify};
use crate::alert::{AlertKey, Transition};
use crate::incident::{EscalationReason, Event, Incident, IncidentError, Incidents};

/// What a notifier was sent, read back from the queued notification when it is handed out, so
/// its outcome reaches the right incident.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct NotifyTag {
    alert: String,
    #[serde(default)]
    labels: Labels,
    status: NotificationStatus,
    #[serde(default)]
    repeat: bool,
    #[serde(default)]
    escalation: bool,
}

impl NotifyTag {
    /// The tag of a serialised notification; `None` when it is not one.
    pub fn of(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

impl Engine {
    /// Every incident held in memory.
    pub fn incidents(&self) -> &Incidents {
        &self.incidents
    }

    /// Acknowledges incident `id` at `now_ms` (see [`Incidents::acknowledge`]) and writes it to
    /// the store at once; returns the incident as it is now.
    ///
    /// # Errors
    ///
    /// No such incident, or a field is empty or too long.
    pub fn acknowledge_incident(
        &mut self,
        id: u64,
        by: &str,
        comment: &str,
        now_ms: u64,
    ) -> Result<Incident, IncidentError> {
        let i = self.incidents.acknowledge(id, by, comment, now_ms)?.clone();
        tracing::info!(incident = id, alert = %i.alert, %by, "incident acknowledged");
        self.save_incidents();
        Ok(i)
    }

    /// Adds a note to incident `id` (see [`Incidents::note`]) and writes it to the store at once.
    ///
    /// # Errors
    ///
    /// No such incident, or a field is empty or too long.
    pub fn note_incident(
        &mut self,
        id: u64,
        by: &str,
        text: &str,
        now_ms: u64,
    ) -> Result<Incident, IncidentError> {
        let i = self.incidents.note(id, by, text, now_ms)?.clone();
        self.save_incidents();
        Ok(i)
    }

    /// Writes the changed incidents now; on failure they wait for the next cycle's write.
    fn save_incidents(&mut self) {
        let Some(p) = &mut self.persistence else {
            return;
        };
        let changed = self.incidents.changes();
        if let Err(e) = p.save_incidents(&changed) {
            tracing::warn!(error = %e, "incidents not written; retried with the next cycle");
            p.batch().incidents.extend(changed);
        }
    }

    /// Opens, reopens or closes the incident of a transition.
    pub(super) fn incident_transition(&mut self, t: &Transition, n: &Notification, now_ms: u64) {
        let key = (n.alert.clone(), n.labels.clone());
        match t {
            Transition::Fired { .. } => {
                let within = self.host.reopen_within;
                (self.incidents).fired(&key, n.severity, n.value, now_ms, within);
            }
            Transition::Resolved { .. } => {
                self.incidents.resolved(&key, n.value, n.stale, now_ms);
            }
        }
    }

    /// Records on its incident that healing gave up, and names the incident in `n`.
    pub(super) fn incident_gave_up(&mut self, key: &AlertKey, n: &mut Notification, now_ms: u64) {
        n.incident_id = self.incidents.of(key);
        let event = Event::Escalated {
            reason: EscalationReason::HealingGaveUp,
            to: Vec::new(),
            message: n.description.clone(),
        };
        self.incidents.record(key, now_ms, event);
    }

    /// Records a finished healing attempt on its incident.
    pub(super) fn incident_heal(&mut self, job: &HealJob, success: bool, message: &str, ms: u64) {
        let slot = self.healing.list[job.strategy].slot;
        let event = Event::Healing {
            strategy: self.plugins[slot].name.clone(),
            attempt: job.failure.attempt,
            success,
            message: message.to_owned(),
            duration_ms: ms,
        };
        self.incidents.record(&job.key, super::now_ms(), event);
    }

    /// Records a notifier's answer on the incident its notification was about.
    pub(super) fn incident_notified(
        &mut self,
        slot: usize,
        tag: Option<NotifyTag>,
        error: Option<String>,
    ) {
        let Some(tag) = tag else {
            return;
        };
        let event = Event::Notified {
            notifier: self.plugins[slot].name.clone(),
            status: match tag.status {
                NotificationStatus::Firing => "firing".to_owned(),
                NotificationStatus::Resolved => "resolved".to_owned(),
            },
            ok: error.is_none(),
            error,
            repeat: tag.repeat,
            escalation: tag.escalation,
        };
        (self.incidents).record(&(tag.alert, tag.labels), super::now_ms(), event);
    }

    /// Sends the time escalations that are due: incidents still open and unacknowledged
    /// `escalate_after` their firing, not muted; returns how many notifications were queued.
    pub(super) fn escalate_unacknowledged(&mut self, now_ms: u64) -> usize {
        if self.escalations.is_empty() {
            return 0;
        }
        let escalations = &self.escalations;
        let due = (self.incidents).due(now_ms, &|alert| escalations.get(alert).map(|e| e.after));
        let mut queued = 0;
        for d in due {
            if self.mutes.contains_key(&d.key) || self.withheld.contains(&d.key) {
                continue;
            }
            let Some(rule) = (self.alerts.rules().iter()).position(|r| r.name == d.key.0) else {
                continue;
            };
            let to = self.escalations[&d.key.0].to.clone();
            let fired = Transition::Fired {
                rule,
                labels: d.key.1.clone(),
                value: (self.alerts.status(&d.key)).map_or(0.0, |s| s.value),
                at_ms: (self.incidents.get(d.id)).map_or(now_ms, |i| i.fired_ms),
            };
            let mut n = notify::for_transition(&fired, &self.alerts, &self.host.name);
            n.escalation = true;
            n.escalation_reason = Some(EscalationReason::Unacknowledged.as_str().to_owned());
            n.incident_id = Some(d.id);
            let message = format!(
                "incident {} unacknowledged for {:?}: {}",
                d.id, d.after, n.description
            );
            n.description.clone_from(&message);
            tracing::warn!(incident = d.id, alert = %n.alert, labels = ?n.labels, to = ?to,
                "incident unacknowledged; escalating");
            queued += self.notify_named(&n, &to);
            self.incidents.escalated(d.id, to, message, now_ms);
        }
        queued
    }

    /// Queues `n` for the notifier instances named `to` (a dry run only notes it).
    fn notify_named(&mut self, n: &Notification, to: &[String]) -> usize {
        let slots: Vec<usize> = (self.notifiers.list.iter())
            .map(|ns| ns.slot)
            .filter(|&s| to.contains(&self.plugins[s].name))
            .collect();
        let Some(d) = &mut self.dry_run else {
            return (self.notifiers).enqueue_to(n, &slots, &mut self.plugins);
        };
        for &slot in &slots {
            d.notifications.push(PlannedNotification {
                notifier: self.plugins[slot].name.clone(),
                notification: n.clone(),
            });
        }
        slots.len()
    }
}
