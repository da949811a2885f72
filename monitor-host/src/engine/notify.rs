//! Notifications: alert transitions and escalations become notifications, queued per notifier
//! (bounded) and handed out one call at a time. While an alert fires, each notifier with a
//! `resend_every` is sent its firing notification again once that interval has passed since it
//! was last sent (as Prometheus re-sends to Alertmanager, and Alertmanager repeats to receivers).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use monitor_plugin::{Labels, Notification, NotificationStatus, Severity};

use super::running::RunningPlugin;
use crate::alert::{AlertEngine, AlertKey, AlertState, Transition};
use crate::config::NotifierSpec;
use crate::history::SentRecord;

/// Most notifications queued per notifier; older ones are dropped (and counted) beyond it.
pub const NOTIFY_QUEUE_LIMIT: usize = 1000;

/// How many resend intervals (or evaluation intervals, when longer) a firing notification is
/// valid for: Prometheus's `ValidUntil = ts + 4 * max(resend_delay, evaluation_interval)`, which
/// allows for two failed evaluations or sends before a receiver lets the alert end.
pub const VALID_FOR_INTERVALS: u32 = 4;

/// One notifier instance and its queue of serialised notifications.
#[derive(Debug)]
pub(super) struct Notifier {
    pub slot: usize,
    pub min_severity: Severity,
    /// How often a firing alert is sent to it again; `None`: only once.
    pub resend: Option<Duration>,
    pub queue: VecDeque<Vec<u8>>,
    /// When each firing alert instance was last queued for it (first notification or reminder),
    /// ms since epoch. Only kept when `resend` is set.
    pub sent: BTreeMap<AlertKey, u64>,
}

impl Notifier {
    /// A notifier with an empty queue, as `spec` declares it at `slot`.
    pub fn new(slot: usize, spec: &NotifierSpec) -> Self {
        Self {
            slot,
            min_severity: spec.min_severity,
            resend: spec.resend_every,
            queue: VecDeque::new(),
            sent: BTreeMap::new(),
        }
    }

    /// Until when a firing notification sent now vouches for the alert, given the evaluation
    /// interval; `None` without reminders (the receiver then applies its own timeout).
    fn valid_until(&self, now_ms: u64, evaluation: Duration) -> Option<u64> {
        let every = self.resend?.max(evaluation);
        Some(now_ms + (every * VALID_FOR_INTERVALS).as_millis() as u64)
    }

    /// Whether a reminder is due at `now_ms` after a send at `last_ms`: strictly more than the
    /// interval later, as Prometheus's `needsSending`.
    fn due(&self, last_ms: u64, now_ms: u64) -> bool {
        self.resend
            .is_some_and(|r| now_ms > last_ms.saturating_add(r.as_millis() as u64))
    }

    fn push(&mut self, bytes: Vec<u8>, n: &Notification, plugins: &mut [RunningPlugin]) {
        if self.queue.len() == NOTIFY_QUEUE_LIMIT {
            self.queue.pop_front();
            plugins[self.slot].stats.dropped += 1;
            tracing::warn!(
                notifier = %plugins[self.slot].name,
                limit = NOTIFY_QUEUE_LIMIT,
                "notification queue full; the oldest notification was dropped"
            );
        }
        tracing::debug!(
            notifier = %plugins[self.slot].name,
            alert = %n.alert,
            status = ?n.status,
            escalation = n.escalation,
            repeat = n.repeat,
            "notification queued"
        );
        self.queue.push_back(bytes);
    }
}

/// Every notifier instance.
#[derive(Debug, Default)]
pub(super) struct Notifiers {
    pub list: Vec<Notifier>,
    /// Some `sent` time changed since the last [`changes`](Self::changes).
    pub dirty: bool,
}

fn to_bytes(n: &Notification) -> Vec<u8> {
    serde_json::to_vec(n).expect("notifications always serialise")
}

impl Notifiers {
    /// Queues `n` as it is for every notifier whose `min_severity` it meets; returns how many.
    pub fn enqueue(&mut self, n: &Notification, plugins: &mut [RunningPlugin]) -> usize {
        let bytes = to_bytes(n);
        let mut queued = 0;
        for ns in &mut self.list {
            if n.severity >= ns.min_severity {
                ns.push(bytes.clone(), n, plugins);
                queued += 1;
            }
        }
        queued
    }

    /// Queues `n` as it is for the notifiers at `slots`, whatever their `min_severity` (an
    /// escalation names its notifiers); returns how many.
    pub fn enqueue_to(
        &mut self,
        n: &Notification,
        slots: &[usize],
        plugins: &mut [RunningPlugin],
    ) -> usize {
        let bytes = to_bytes(n);
        let mut queued = 0;
        for ns in self.list.iter_mut().filter(|ns| slots.contains(&ns.slot)) {
            ns.push(bytes.clone(), n, plugins);
            queued += 1;
        }
        queued
    }

    /// Queues the firing notification of alert instance `key`, first sent at `now_ms`, for every
    /// notifier that takes its severity, each with its own validity; returns how many.
    pub fn fired(
        &mut self,
        n: &Notification,
        key: &AlertKey,
        now_ms: u64,
        evaluation: Duration,
        plugins: &mut [RunningPlugin],
    ) -> usize {
        let mut queued = 0;
        for ns in &mut self.list {
            if n.severity < ns.min_severity {
                continue;
            }
            let mut own = n.clone();
            own.valid_until_ms = ns.valid_until(now_ms, evaluation);
            ns.push(to_bytes(&own), &own, plugins);
            if ns.resend.is_some() {
                ns.sent.insert(key.clone(), now_ms);
                self.dirty = true;
            }
            queued += 1;
        }
        queued
    }

    /// Queues the resolution of alert instance `key` (once) and forgets when it was sent.
    pub fn resolved(
        &mut self,
        n: &Notification,
        key: &AlertKey,
        plugins: &mut [RunningPlugin],
    ) -> usize {
        for ns in &mut self.list {
            self.dirty |= ns.sent.remove(key).is_some();
        }
        self.enqueue(n, plugins)
    }

    /// Queues the firing notification again, marked `repeat`, for each notifier whose
    /// `resend_every` has passed since it was last sent each firing alert instance; returns how
    /// many. An instance with no send time (fired before the notifier was configured) counts
    /// from when it started firing; a `muted` one (silenced, inhibited, or whose firing was
    /// withheld) is not reminded of.
    pub fn remind(
        &mut self,
        alerts: &AlertEngine,
        host: &str,
        now_ms: u64,
        evaluation: Duration,
        plugins: &mut [RunningPlugin],
        muted: &dyn Fn(&AlertKey) -> bool,
    ) -> usize {
        let rules = alerts.rules();
        let mut queued = 0;
        for ns in &mut self.list {
            if ns.resend.is_none() {
                continue;
            }
            let before = ns.sent.len();
            ns.sent.retain(|key, _| alerts.is_firing(key));
            self.dirty |= ns.sent.len() != before;
            for s in alerts.statuses() {
                let (Some(since), AlertState::Firing) = (s.firing_since_ms, s.state) else {
                    continue;
                };
                let Some(rule) = rules.iter().position(|r| r.name == s.alert) else {
                    continue;
                };
                if rules[rule].severity < ns.min_severity {
                    continue;
                }
                let key: AlertKey = (s.alert.clone(), s.labels.clone());
                if muted(&key) {
                    continue;
                }
                let last = ns.sent.get(&key).copied().unwrap_or(since);
                if !ns.due(last, now_ms) {
                    continue;
                }
                let fired = Transition::Fired {
                    rule,
                    labels: s.labels.clone(),
                    value: s.value,
                    at_ms: since,
                };
                let mut n = for_transition(&fired, alerts, host);
                n.repeat = true;
                n.valid_until_ms = ns.valid_until(now_ms, evaluation);
                ns.push(to_bytes(&n), &n, plugins);
                ns.sent.insert(key, now_ms);
                self.dirty = true;
                queued += 1;
            }
        }
        queued
    }

    /// Every send time, when one changed since the last call, for the store.
    pub fn changes(&mut self, plugins: &[RunningPlugin]) -> Option<Vec<SentRecord>> {
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        let records = self.list.iter().flat_map(|ns| {
            let notifier = &plugins[ns.slot].name;
            ns.sent
                .iter()
                .map(|((alert, labels), &sent_ms)| SentRecord {
                    notifier: notifier.clone(),
                    alert: alert.clone(),
                    labels: labels.clone(),
                    sent_ms,
                })
        });
        Some(records.collect())
    }

    /// Seeds the send times a previous run stored, by notifier name; records of notifiers no
    /// longer configured, or without reminders, are dropped.
    pub fn restore(&mut self, saved: Vec<SentRecord>, plugins: &[RunningPlugin]) {
        for r in saved {
            let Some(ns) = (self.list.iter_mut())
                .find(|ns| ns.resend.is_some() && plugins[ns.slot].name == r.notifier)
            else {
                continue;
            };
            ns.sent.insert((r.alert, r.labels), r.sent_ms);
        }
    }

    /// The notifiers a notification of `severity` is queued for, by instance index.
    pub fn recipients(&self, severity: Severity) -> impl Iterator<Item = usize> + '_ {
        self.list
            .iter()
            .filter(move |ns| severity >= ns.min_severity)
            .map(|ns| ns.slot)
    }

    /// The next notification of every notifier that is free for a call, with its instance.
    pub fn ready(&mut self, plugins: &[RunningPlugin], now_ms: u64) -> Vec<(usize, Vec<u8>)> {
        self.list
            .iter_mut()
            .filter(|ns| plugins[ns.slot].available(now_ms))
            .filter_map(|ns| Some((ns.slot, ns.queue.pop_front()?)))
            .collect()
    }

    /// Some notifier has a notification waiting and is free to take it.
    pub fn any_ready(&self, plugins: &[RunningPlugin], now_ms: u64) -> bool {
        self.list
            .iter()
            .any(|n| !n.queue.is_empty() && plugins[n.slot].available(now_ms))
    }
}

/// The notification for an alert transition.
pub(super) fn for_transition(t: &Transition, alerts: &AlertEngine, host: &str) -> Notification {
    let (rule, labels, value, status, starts, ends, stale) = match t {
        Transition::Fired {
            rule,
            labels,
            value,
            at_ms,
        } => (
            *rule,
            labels,
            *value,
            NotificationStatus::Firing,
            *at_ms,
            None,
            false,
        ),
        Transition::Resolved {
            rule,
            labels,
            value,
            stale,
            started_ms,
            at_ms,
        } => (
            *rule,
            labels,
            *value,
            NotificationStatus::Resolved,
            *started_ms,
            Some(*at_ms),
            *stale,
        ),
    };
    let r = &alerts.rules()[rule];
    let expr = alerts.expr(rule);
    let annotations = alerts
        .status(&(r.name.clone(), labels.clone()))
        .map(|s| s.annotations.clone())
        .unwrap_or_default();
    // An expression rule's rendered description (or summary) over the rule's text.
    let description = ["description", "summary"]
        .iter()
        .find_map(|k| annotations.get(*k).cloned())
        .unwrap_or_else(|| r.description.clone());
    Notification {
        status,
        alert: r.name.clone(),
        metric: r.metric.clone(),
        value,
        threshold: r.threshold,
        condition: if expr.is_some() {
            "expr".to_owned()
        } else {
            r.condition.as_str().to_owned()
        },
        severity: r.severity,
        description,
        labels: labels.clone(),
        annotations,
        expr: expr.map(str::to_owned),
        starts_at_ms: starts,
        ends_at_ms: ends,
        valid_until_ms: None,
        repeat: false,
        escalation: false,
        escalation_reason: None,
        incident_id: None,
        stale,
        host: host.to_owned(),
    }
}

/// What healing gave up on, for [`escalation`].
#[derive(Debug)]
pub(super) struct GiveUp {
    pub strategy: String,
    pub key: AlertKey,
    pub rule: usize,
    pub value: f64,
    pub attempts: usize,
    pub within: Duration,
    pub last_message: String,
}

/// The critical notification sent once when healing gives up on a firing alert.
pub(super) fn escalation(
    g: &GiveUp,
    alerts: &AlertEngine,
    host: &str,
    now_ms: u64,
) -> Notification {
    let r = &alerts.rules()[g.rule];
    let expr = alerts.expr(g.rule);
    Notification {
        status: NotificationStatus::Firing,
        alert: r.name.clone(),
        metric: r.metric.clone(),
        value: g.value,
        threshold: r.threshold,
        condition: if expr.is_some() {
            "expr".to_owned()
        } else {
            r.condition.as_str().to_owned()
        },
        severity: Severity::Critical,
        description: format!(
            "healing gave up: strategy `{}` made {} attempts within {:?} and `{}` is still firing (last: {})",
            g.strategy, g.attempts, g.within, r.name, g.last_message
        ),
        labels: Labels::clone(&g.key.1),
        starts_at_ms: now_ms,
        ends_at_ms: None,
        valid_until_ms: None,
        repeat: false,
        escalation: true,
        escalation_reason: Some("healing_gave_up".to_owned()),
        incident_id: None,
        stale: false,
        host: host.to_owned(),
        annotations: alerts
            .status(&g.key)
            .map(|s| s.annotations.clone())
            .unwrap_or_default(),
        expr: expr.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notifier(resend: Option<Duration>) -> Notifier {
        Notifier {
            slot: 0,
            min_severity: Severity::Info,
            resend,
            queue: VecDeque::new(),
            sent: BTreeMap::new(),
        }
    }

    #[test]
    fn valid_for_four_of_the_longer_of_the_resend_and_evaluation_intervals() {
        let ten = Duration::from_secs(10);
        let n = notifier(Some(Duration::from_secs(60)));
        assert_eq!(n.valid_until(1_000, ten), Some(1_000 + 240_000));
        assert_eq!(
            n.valid_until(1_000, Duration::from_secs(90)),
            Some(1_000 + 360_000)
        );
        assert_eq!(notifier(None).valid_until(1_000, ten), None);
    }

    #[test]
    fn a_reminder_is_due_strictly_after_the_interval() {
        let n = notifier(Some(Duration::from_secs(60)));
        assert!(!n.due(0, 60_000));
        assert!(n.due(0, 60_001));
        assert!(!notifier(None).due(0, u64::MAX));
    }
}
