//! Silences and inhibition in the cycle: which firing alerts are muted, what their notifications
//! become, and the silences created and expired at run time.
//!
//! As Alertmanager: a muted alert's firing notification is withheld, and sent when the mute ends
//! while it still fires; the resolution of an alert whose firing was withheld is withheld too,
//! while one whose firing was sent is sent even if the alert was muted since. Reminders and
//! healing skip muted alerts (see [`Notifiers::remind`](super::notify::Notifiers::remind) and
//! [`Healing::plan`](super::healing::Healing::plan)).

use monitor_plugin::{Labels, Notification, NotificationStatus};

use super::{Engine, notify};
use crate::alert::{AlertKey, AlertState, AlertStatus, Transition};
use crate::history::{TransitionQuery, TransitionRecord};
use crate::silence::{ExpireError, Mute, Silence, Silences};

/// Why a silence could not be created or expired.
#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    /// See [`ExpireError`].
    #[error(transparent)]
    Expire(#[from] ExpireError),
    /// The store could not be written; nothing changed.
    #[error("cannot write the silence to the store: {0}")]
    Store(#[from] rusqlite::Error),
}

impl Engine {
    /// An alert instance's labels as silences and inhibition rules see them: the series' labels,
    /// `alertname` and `severity`.
    pub fn alert_labels(&self, s: &AlertStatus) -> Labels {
        let mut l = s.labels.clone();
        l.insert("alertname".into(), s.alert.clone());
        if let Some(r) = self.alerts.rules().iter().find(|r| r.name == s.alert) {
            l.insert("severity".into(), r.severity.as_str().into());
        }
        l
    }

    /// Works out which firing alert instances are muted at `now_ms`.
    pub(super) fn update_mutes(&mut self, now_ms: u64) {
        let firing: Vec<(AlertKey, Labels)> = (self.alerts.statuses())
            .filter(|s| s.state == AlertState::Firing)
            .map(|s| ((s.alert.clone(), s.labels.clone()), self.alert_labels(s)))
            .collect();
        self.mutes = self.silences.mutes(&firing, now_ms);
        let horizon = now_ms.saturating_sub(self.host.rollup_retention.as_millis() as u64);
        self.silences.prune(horizon);
    }

    /// Whether the notification of a transition is withheld: the firing of a muted alert, or the
    /// resolution of one whose firing was.
    pub(super) fn withhold(&mut self, n: &Notification) -> bool {
        let key: AlertKey = (n.alert.clone(), n.labels.clone());
        match n.status {
            NotificationStatus::Firing => {
                let Some(mute) = self.mutes.get(&key) else {
                    return false;
                };
                tracing::info!(
                    alert = %n.alert,
                    labels = ?n.labels,
                    silenced_by = ?mute.silenced_by,
                    inhibited_by = ?mute.inhibited_by,
                    "alert firing, muted: not notified"
                );
                self.withheld.insert(key);
                true
            }
            NotificationStatus::Resolved => self.withheld.remove(&key),
        }
    }

    /// Sends the firing notifications withheld from alerts that still fire and are no longer
    /// muted; returns how many were queued.
    pub(super) fn release_unmuted(&mut self, now_ms: u64) -> usize {
        // Instances no longer firing (resolved this cycle, forgotten, or of a rule a reload
        // removed) have nothing left to withhold.
        let alerts = &self.alerts;
        self.withheld.retain(|k| alerts.is_firing(k));
        let due: Vec<AlertKey> = (self.withheld.iter())
            .filter(|k| !self.mutes.contains_key(*k))
            .cloned()
            .collect();
        let mut queued = 0;
        for key in due {
            self.withheld.remove(&key);
            let Some(s) = self.alerts.status(&key) else {
                continue;
            };
            let Some(rule) = self.alerts.rules().iter().position(|r| r.name == s.alert) else {
                continue;
            };
            let fired = Transition::Fired {
                rule,
                labels: s.labels.clone(),
                value: s.value,
                at_ms: s.firing_since_ms.unwrap_or(now_ms),
            };
            let n = notify::for_transition(&fired, self.alerts.rules(), &self.host.name);
            tracing::info!(alert = %n.alert, labels = ?n.labels, "alert firing, no longer muted: notified");
            queued += self.notify_transition(&n, now_ms);
        }
        queued
    }

    /// Silences and windows, and the inhibition rules.
    pub fn silences(&self) -> &Silences {
        &self.silences
    }

    /// Why a firing alert instance is muted, as of the last cycle; `None` when it is not.
    pub fn mute(&self, key: &AlertKey) -> Option<&Mute> {
        self.mutes.get(key)
    }

    /// Adds a silence (or replaces the one of the same id), writes it to the store at once when
    /// there is one, and applies it to the alerts that fire now (their notifications follow the
    /// next cycle).
    ///
    /// # Errors
    ///
    /// The store could not be written; the silence is not added.
    pub fn add_silence(&mut self, s: Silence, now_ms: u64) -> Result<(), SilenceError> {
        self.store_silence(&s, now_ms)?;
        tracing::info!(id = %s.id, created_by = %s.created_by, comment = %s.comment, "silence added");
        self.silences.upsert(s);
        self.update_mutes(now_ms);
        Ok(())
    }

    /// Ends the silence `id` at `now_ms`; alerts it muted notify from the next cycle on.
    ///
    /// # Errors
    ///
    /// Unknown, already expired, a window of the config, or the store could not be written.
    pub fn expire_silence(&mut self, id: &str, now_ms: u64) -> Result<Silence, SilenceError> {
        let mut trial = self.silences.clone();
        let s = trial.expire(id, now_ms)?;
        self.store_silence(&s, now_ms)?;
        self.silences = trial;
        tracing::info!(id = %s.id, "silence expired");
        self.update_mutes(now_ms);
        Ok(s)
    }

    fn store_silence(&mut self, s: &Silence, now_ms: u64) -> Result<(), SilenceError> {
        let horizon = now_ms.saturating_sub(self.host.rollup_retention.as_millis() as u64);
        if let Some(p) = &mut self.persistence {
            p.save_silence(s, horizon)?;
        }
        Ok(())
    }

    /// Alert transitions from the store, newest first; empty without a store.
    ///
    /// # Errors
    ///
    /// SQLite failed.
    pub fn transitions(&self, q: &TransitionQuery) -> rusqlite::Result<Vec<TransitionRecord>> {
        match &self.persistence {
            Some(p) => p.transitions(q),
            None => Ok(Vec::new()),
        }
    }
}
