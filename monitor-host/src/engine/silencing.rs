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
        if !self.silences.can_mute() {
            self.mutes.clear();
            return;
        }
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
                self.withheld_total += 1;
                self.withheld_dirty = true;
                true
            }
            NotificationStatus::Resolved => {
                let withheld = self.withheld.remove(&key);
                self.withheld_total += u64::from(withheld);
                self.withheld_dirty |= withheld;
                withheld
            }
        }
    }

    /// Notifications withheld so far: firings of muted alerts, and their resolutions.
    pub fn withheld_notifications(&self) -> u64 {
        self.withheld_total
    }

    /// Sends the firing notifications withheld from alerts that still fire and are no longer
    /// muted; returns how many were queued.
    pub(super) fn release_unmuted(&mut self, now_ms: u64) -> usize {
        // Instances no longer firing (resolved this cycle, forgotten, or of a rule a reload
        // removed) have nothing left to withhold.
        let alerts = &self.alerts;
        let before = self.withheld.len();
        self.withheld.retain(|k| alerts.is_firing(k));
        self.withheld_dirty |= self.withheld.len() != before;
        let due: Vec<AlertKey> = (self.withheld.iter())
            .filter(|k| !self.mutes.contains_key(*k))
            .cloned()
            .collect();
        let mut queued = 0;
        for key in due {
            self.withheld.remove(&key);
            self.withheld_dirty = true;
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
            let n = notify::for_transition(&fired, &self.alerts, &self.host.name);
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use monitor_plugin::SampleKind;

    use super::*;
    use crate::Config;
    use crate::silence::Matcher;
    use crate::store::SeriesKey;
    use crate::test_support::logged;

    const RULES: &str = r#"
[[alert]]
name = "disk_full"
metric = "disk"
condition = "above"
threshold = 90.0
severity = "warning"

[[alert]]
name = "host_down"
metric = "up"
condition = "below"
threshold = 1.0
severity = "critical"
"#;

    fn engine(extra: &str) -> Engine {
        let text = format!("[host]\nname = \"h\"\n{RULES}\n{extra}");
        let config = Config::from_str(&text, "monitor.toml", Path::new("/")).unwrap();
        // SAFETY: the config names no library.
        unsafe { Engine::load(&config) }.unwrap()
    }

    fn feed(e: &mut Engine, metric: &str, host: &str, at_ms: u64, value: f64) {
        let key = SeriesKey {
            name: metric.into(),
            labels: [("host".to_owned(), host.to_owned())].into(),
        };
        e.put(key, SampleKind::Gauge, "test", at_ms, value);
    }

    fn key(alert: &str, host: &str) -> AlertKey {
        (alert.into(), [("host".to_owned(), host.to_owned())].into())
    }

    fn silence(matchers: &[&str], start: u64, end: u64) -> Silence {
        Silence {
            id: crate::silence::new_id(),
            matchers: matchers
                .iter()
                .map(|m| Matcher::parse(m).unwrap())
                .collect(),
            starts_at_ms: start,
            ends_at_ms: end,
            created_by: "test".into(),
            comment: String::new(),
            updated_at_ms: start,
        }
    }

    #[test]
    fn a_silenced_firing_is_withheld_then_sent_when_the_silence_ends() {
        let mut e = engine("");
        let s = silence(&[r#"alertname="disk_full""#, r#"host="db1""#], 0, 100_000);
        let id = s.id.clone();
        e.add_silence(s, 0).unwrap();
        for host in ["db1", "db2"] {
            feed(&mut e, "disk", host, 1_000, 95.0);
        }
        e.cycle(1_000);
        assert!(
            e.alerts().is_firing(&key("disk_full", "db1")),
            "still evaluated"
        );
        assert_eq!(
            e.mute(&key("disk_full", "db1")).unwrap().silenced_by,
            std::slice::from_ref(&id)
        );
        assert!(e.mute(&key("disk_full", "db2")).is_none());
        assert_eq!(e.withheld_notifications(), 1, "only db1's firing");
        let snapshot = crate::render::snapshot_json(&e);
        assert!(
            snapshot.contains(&format!(r#""silenced_by":["{id}"]"#)),
            "{snapshot}"
        );
        let metrics = crate::render::prometheus(&e);
        assert!(
            metrics.contains(
                r#"monitor_alert_silenced{alertname="disk_full",host="db1",severity="warning"} 1"#
            ),
            "{metrics}"
        );
        // Reminders and later cycles stay quiet while the silence holds.
        feed(&mut e, "disk", "db1", 2_000, 95.0);
        let log = logged(|| {
            e.cycle(2_000);
        });
        assert!(!log.contains("no longer muted"), "{log}");
        e.expire_silence(&id, 3_000).unwrap();
        feed(&mut e, "disk", "db1", 3_000, 95.0);
        let log = logged(|| {
            e.cycle(3_000);
        });
        assert!(
            log.contains("alert firing, no longer muted: notified"),
            "{log}"
        );
        assert!(e.mute(&key("disk_full", "db1")).is_none());
        // Its firing was sent: a resolution under a new silence is sent too, as Alertmanager.
        e.add_silence(silence(&[r#"host="db1""#], 3_000, 100_000), 3_000)
            .unwrap();
        feed(&mut e, "disk", "db1", 4_000, 10.0);
        e.cycle(4_000);
        assert!(!e.alerts().is_firing(&key("disk_full", "db1")));
        assert_eq!(
            e.withheld_notifications(),
            1,
            "the resolution was not withheld"
        );
    }

    #[test]
    fn the_resolution_of_a_withheld_firing_is_withheld_too() {
        let mut e = engine("");
        e.add_silence(silence(&[r#"alertname=~"disk.*""#], 0, 100_000), 0)
            .unwrap();
        feed(&mut e, "disk", "db1", 1_000, 95.0);
        e.cycle(1_000);
        feed(&mut e, "disk", "db1", 2_000, 10.0);
        let log = logged(|| {
            e.cycle(2_000);
        });
        assert_eq!(e.withheld_notifications(), 2, "firing and resolution");
        assert!(!log.contains("no longer muted"), "{log}");
        assert!(e.withheld.is_empty());
    }

    #[test]
    fn a_maintenance_window_of_the_config_silences() {
        let mut e = engine(
            "[[silence]]\nname = \"upgrade\"\nmatchers = ['host=\"db1\"']\nstarts_at = \"1970-01-01T00:00:00Z\"\nends_at = \"1970-01-01T00:00:05Z\"\n",
        );
        feed(&mut e, "disk", "db1", 1_000, 95.0);
        e.cycle(1_000);
        assert_eq!(
            e.mute(&key("disk_full", "db1")).unwrap().silenced_by,
            ["upgrade"]
        );
        feed(&mut e, "disk", "db1", 5_000, 95.0);
        let log = logged(|| {
            e.cycle(5_000);
        });
        assert!(log.contains("no longer muted"), "the window ended: {log}");
    }

    #[test]
    fn inhibition_with_equal_labels() {
        let mut e = engine(
            "[[inhibit]]\nsource_matchers = ['alertname=\"host_down\"']\ntarget_matchers = ['severity=\"warning\"']\nequal = [\"host\"]\n",
        );
        feed(&mut e, "up", "db1", 1_000, 0.0);
        feed(&mut e, "disk", "db1", 1_000, 95.0);
        feed(&mut e, "disk", "db2", 1_000, 95.0);
        e.cycle(1_000);
        let m = e.mute(&key("disk_full", "db1")).unwrap();
        assert_eq!(m.inhibited_by, [r#"host_down{host="db1"}"#]);
        assert!(m.silenced_by.is_empty());
        assert!(e.mute(&key("disk_full", "db2")).is_none(), "another host");
        assert!(e.mute(&key("host_down", "db1")).is_none(), "the source");
        assert_eq!(e.withheld_notifications(), 1);
        // The source resolves: the target is no longer inhibited and its firing goes out.
        feed(&mut e, "up", "db1", 2_000, 1.0);
        feed(&mut e, "disk", "db1", 2_000, 95.0);
        feed(&mut e, "disk", "db2", 2_000, 95.0);
        let log = logged(|| {
            e.cycle(2_000);
        });
        assert!(e.mute(&key("disk_full", "db1")).is_none());
        assert!(log.contains("no longer muted"), "{log}");
    }

    #[test]
    fn a_reload_replaces_the_windows_and_keeps_the_silences() {
        let window = "[[silence]]\nname = \"w\"\nmatchers = ['host=\"db1\"']\nstarts_at = \"1970-01-01T00:00:00Z\"\nends_at = \"2100-01-01T00:00:00Z\"\n";
        let mut e = engine(window);
        e.add_silence(silence(&[r#"host="db2""#], 0, 100_000), 0)
            .unwrap();
        let text = format!("[host]\nname = \"h\"\n{RULES}");
        let config = Config::from_str(&text, "monitor.toml", Path::new("/")).unwrap();
        // SAFETY: the config names no library.
        unsafe { e.apply_config(&config) }.unwrap();
        let ids: Vec<String> = e.silences().list(1_000).into_iter().map(|s| s.id).collect();
        assert_eq!(
            ids.len(),
            1,
            "the window is gone, the silence stays: {ids:?}"
        );
        feed(&mut e, "disk", "db1", 1_000, 95.0);
        feed(&mut e, "disk", "db2", 1_000, 95.0);
        e.cycle(1_000);
        assert!(e.mute(&key("disk_full", "db1")).is_none());
        assert!(e.mute(&key("disk_full", "db2")).is_some());
    }
}
