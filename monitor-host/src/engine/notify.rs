//! Notifications: alert transitions and escalations become notifications, queued per notifier
//! (bounded) and handed out one call at a time.

use std::collections::VecDeque;
use std::time::Duration;

use monitor_plugin::{Labels, Notification, NotificationStatus, Severity};

use super::running::RunningPlugin;
use crate::alert::{AlertKey, Transition};
use crate::config::AlertRule;

/// Most notifications queued per notifier; older ones are dropped (and counted) beyond it.
pub const NOTIFY_QUEUE_LIMIT: usize = 1000;

/// One notifier instance and its queue of serialised notifications.
#[derive(Debug)]
pub(super) struct Notifier {
    pub slot: usize,
    pub min_severity: Severity,
    pub queue: VecDeque<Vec<u8>>,
}

/// Every notifier instance.
#[derive(Debug, Default)]
pub(super) struct Notifiers {
    pub list: Vec<Notifier>,
}

impl Notifiers {
    /// Queues `n` for every notifier whose `min_severity` it meets; returns how many.
    pub fn enqueue(&mut self, n: &Notification, plugins: &mut [RunningPlugin]) -> usize {
        let bytes = serde_json::to_vec(n).expect("notifications always serialise");
        let mut queued = 0;
        for ns in &mut self.list {
            if n.severity < ns.min_severity {
                continue;
            }
            if ns.queue.len() == NOTIFY_QUEUE_LIMIT {
                ns.queue.pop_front();
                plugins[ns.slot].stats.dropped += 1;
                tracing::warn!(
                    notifier = %plugins[ns.slot].name,
                    limit = NOTIFY_QUEUE_LIMIT,
                    "notification queue full; the oldest notification was dropped"
                );
            }
            tracing::debug!(
                notifier = %plugins[ns.slot].name,
                alert = %n.alert,
                status = ?n.status,
                escalation = n.escalation,
                "notification queued"
            );
            ns.queue.push_back(bytes.clone());
            queued += 1;
        }
        queued
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
pub(super) fn for_transition(t: &Transition, rules: &[AlertRule], host: &str) -> Notification {
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
    let r = &rules[rule];
    Notification {
        status,
        alert: r.name.clone(),
        metric: r.metric.clone(),
        value,
        threshold: r.threshold,
        condition: r.condition.as_str().to_owned(),
        severity: r.severity,
        description: r.description.clone(),
        labels: labels.clone(),
        starts_at_ms: starts,
        ends_at_ms: ends,
        escalation: false,
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
pub(super) fn escalation(g: &GiveUp, rules: &[AlertRule], host: &str, now_ms: u64) -> Notification {
    let r = &rules[g.rule];
    Notification {
        status: NotificationStatus::Firing,
        alert: r.name.clone(),
        metric: r.metric.clone(),
        value: g.value,
        threshold: r.threshold,
        condition: r.condition.as_str().to_owned(),
        severity: Severity::Critical,
        description: format!(
            "healing gave up: strategy `{}` made {} attempts within {:?} and `{}` is still firing (last: {})",
            g.strategy, g.attempts, g.within, r.name, g.last_message
        ),
        labels: Labels::clone(&g.key.1),
        starts_at_ms: now_ms,
        ends_at_ms: None,
        escalation: true,
        stale: false,
        host: host.to_owned(),
    }
}
