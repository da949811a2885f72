//! The healing policy, driven by the alert transitions of each cycle.
//!
//! A firing alert opens an episode for every strategy `on` it. Attempts are numbered within the
//! episode, spaced by the cooldown and bounded to `max_attempts` per `within` window; when the
//! window is used up while the alert still fires, healing gives up once (an escalation). An
//! episode ends with a verified recovery: the alert resolves within the strategy's
//! `verify_within` after an attempt that reported success. The next firing then starts afresh:
//! attempt 1, an empty window. An alert that resolves without a verified attempt (by itself,
//! flapping, or too late) stays in its episode while attempts remain in the window, so a
//! flapping alert cannot restart a service without bound.
//!
//! # Verification
//!
//! Each attempt is settled: verified (reported success, and the alert resolved while it ran or
//! within `verify_within` after it ended) or failed, with a reason: the strategy reported failure,
//! the alert still fired `verify_within` after the reported success, or a later attempt started
//! while the alert still fired (the recovery is credited to the last attempt before it). A
//! success waits in its episode until one of these happens; every settled attempt is handed
//! back to the engine for the store and the analytics.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use monitor_plugin::Failure;

use super::notify::GiveUp;
use super::running::RunningPlugin;
use crate::alert::{AlertEngine, AlertKey, Transition};
use crate::config::{AlertRule, StrategySpec};
use crate::history::{HealRecord, SavedEpisode};

/// A healing attempt in flight: which strategy, on which alert instance, with what input.
#[derive(Debug, Clone)]
pub(super) struct HealJob {
    pub strategy: usize,
    pub key: AlertKey,
    pub failure: Failure,
    /// When the alert instance started firing, ms since epoch.
    pub detected_ms: u64,
}

/// One strategy instance's policy state for one alert instance.
#[derive(Debug, Default)]
struct Episode {
    rule: usize,
    firing: bool,
    /// The value that made it fire; attempts send the latest one.
    value: f64,
    /// Start times of the attempts still inside the window, oldest first.
    times: VecDeque<u64>,
    attempts: u32,
    last_attempt_ms: Option<u64>,
    escalated: bool,
    in_flight: bool,
    last_message: String,
    /// The last finished attempt reported success.
    last_success: bool,
    /// When the alert resolved while an attempt ran.
    resolved_ms: Option<u64>,
    /// The last attempt, which reported success, waiting for its verification.
    pending: Option<HealRecord>,
}

/// Marks `record` as failed for `reason`.
fn fail(mut record: HealRecord, reason: String) -> HealRecord {
    record.verified = Some(false);
    record.recovered_ms = None;
    record.reason = Some(reason);
    record
}

impl Episode {
    /// Forgets attempts that left the window.
    fn slide(&mut self, now_ms: u64, within_ms: u64) {
        while self.times.front().is_some_and(|&t| t + within_ms <= now_ms) {
            self.times.pop_front();
        }
    }
}

/// One strategy instance and its episodes.
#[derive(Debug)]
pub(super) struct Strategy {
    pub slot: usize,
    on: Vec<String>,
    max_attempts: u32,
    within_ms: u64,
    cooldown_ms: u64,
    verify_within_ms: u64,
    episodes: BTreeMap<AlertKey, Episode>,
}

impl Strategy {
    pub fn new(slot: usize, spec: &StrategySpec) -> Self {
        Self {
            slot,
            on: spec.on.clone(),
            max_attempts: spec.max_attempts,
            within_ms: spec.within.as_millis() as u64,
            cooldown_ms: spec.cooldown.as_millis() as u64,
            verify_within_ms: spec.verify_within.as_millis() as u64,
            episodes: BTreeMap::new(),
        }
    }
}

/// What the policy decided this cycle.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// Attempts to start: the strategy's instance and the job.
    pub starts: Vec<(usize, HealJob)>,
    /// Alert instances healing just gave up on.
    pub give_ups: Vec<GiveUp>,
    /// Attempts whose verification failed: overdue, or superseded by an attempt starting now.
    pub settled: Vec<HealRecord>,
}

/// Every strategy instance.
#[derive(Debug, Default)]
pub(super) struct Healing {
    pub list: Vec<Strategy>,
    // What `changes` last returned.
    exported: Vec<SavedEpisode>,
}

impl Healing {
    /// Every episode, for the store.
    fn export(&self, plugins: &[RunningPlugin], rules: &[AlertRule]) -> Vec<SavedEpisode> {
        let mut out = Vec::new();
        for st in &self.list {
            for ((alert, labels), ep) in &st.episodes {
                out.push(SavedEpisode {
                    strategy: plugins[st.slot].name.clone(),
                    alert: rules
                        .get(ep.rule)
                        .map_or_else(|| alert.clone(), |r| r.name.clone()),
                    labels: labels.clone(),
                    firing: ep.firing,
                    value: ep.value,
                    window_ms: ep.times.iter().copied().collect(),
                    attempts: ep.attempts,
                    last_attempt_ms: ep.last_attempt_ms,
                    escalated: ep.escalated,
                    last_message: ep.last_message.clone(),
                    last_success: ep.last_success,
                });
            }
        }
        out
    }

    /// The whole policy state when it changed since the last call, for the store.
    pub fn changes(
        &mut self,
        plugins: &[RunningPlugin],
        rules: &[AlertRule],
    ) -> Option<Vec<SavedEpisode>> {
        let now = self.export(plugins, rules);
        (now != self.exported).then(|| {
            self.exported.clone_from(&now);
            now
        })
    }

    /// Puts back the episodes a previous run stored, so attempt windows, numbering and give-ups
    /// carry over. An attempt that was running then is not: its outcome was lost with the
    /// process. Episodes of strategies or rules no longer configured are dropped.
    ///
    /// The `unverified` successes go back into their episodes to wait for their verification;
    /// those whose episode is gone (or no longer fires) are returned, settled as failed.
    pub fn restore(
        &mut self,
        saved: Vec<SavedEpisode>,
        unverified: Vec<HealRecord>,
        plugins: &[RunningPlugin],
        rules: &[AlertRule],
    ) -> Vec<HealRecord> {
        for e in saved {
            let Some(st) = self
                .list
                .iter_mut()
                .find(|s| plugins[s.slot].name == e.strategy)
            else {
                continue;
            };
            let Some(rule) = rules.iter().position(|r| r.name == e.alert) else {
                continue;
            };
            let ep = Episode {
                rule,
                firing: e.firing,
                value: e.value,
                times: e.window_ms.into(),
                attempts: e.attempts,
                last_attempt_ms: e.last_attempt_ms,
                escalated: e.escalated,
                in_flight: false,
                last_message: e.last_message,
                last_success: e.last_success,
                resolved_ms: None,
                pending: None,
            };
            st.episodes.insert((e.alert, e.labels), ep);
        }
        self.exported = self.export(plugins, rules);
        let mut settled = Vec::new();
        for r in unverified {
            let ep = (self.list.iter_mut())
                .find(|s| plugins[s.slot].name == r.strategy)
                .and_then(|st| st.episodes.get_mut(&(r.alert.clone(), r.labels.clone())))
                .filter(|ep| ep.firing && ep.pending.is_none());
            match ep {
                Some(ep) => ep.pending = Some(r),
                None => settled.push(fail(
                    r,
                    "its alert instance was no longer healed by the strategy after a restart"
                        .into(),
                )),
            }
        }
        settled
    }

    /// Opens or continues an episode when an alert a strategy is `on` fires; ends it on a verified
    /// recovery, and returns the attempts the resolution settled (verified, or failed when it
    /// came past `verify_within`).
    pub fn observe(&mut self, t: &Transition, rules: &[AlertRule]) -> Vec<HealRecord> {
        let mut settled = Vec::new();
        match t {
            Transition::Fired {
                rule,
                labels,
                value,
                at_ms,
            } => {
                let name = &rules[*rule].name;
                for st in self.list.iter_mut().filter(|s| s.on.contains(name)) {
                    let ep = st
                        .episodes
                        .entry((name.clone(), labels.clone()))
                        .or_default();
                    ep.slide(*at_ms, st.within_ms);
                    if ep.times.is_empty() && !ep.in_flight {
                        // Nothing left in the window: a new episode.
                        *ep = Episode::default();
                    }
                    ep.rule = *rule;
                    ep.firing = true;
                    ep.value = *value;
                    ep.resolved_ms = None;
                }
            }
            Transition::Resolved {
                rule,
                labels,
                at_ms,
                ..
            } => {
                let key = (rules[*rule].name.clone(), labels.clone());
                for st in &mut self.list {
                    let grace = st.verify_within_ms;
                    let Some(ep) = st.episodes.get_mut(&key) else {
                        continue;
                    };
                    ep.firing = false;
                    ep.resolved_ms = Some(*at_ms);
                    let Some(mut r) = ep.pending.take() else {
                        continue;
                    };
                    if *at_ms <= r.ended_ms().saturating_add(grace) {
                        r.verified = Some(true);
                        r.recovered_ms = Some(*at_ms);
                        settled.push(r);
                        st.episodes.remove(&key);
                    } else {
                        settled.push(fail(r, overdue(grace)));
                    }
                }
            }
        }
        settled
    }

    /// The attempts to start now, and the escalations due, for every firing episode.
    ///
    /// In a dry run the strategies are not started: an idle instance counts as free. A `muted`
    /// alert instance (silenced or inhibited) is neither healed nor escalated while it is.
    pub fn plan(
        &mut self,
        now_ms: u64,
        alerts: &AlertEngine,
        plugins: &[RunningPlugin],
        dry_run: bool,
        muted: &dyn Fn(&AlertKey) -> bool,
    ) -> Plan {
        let mut plan = Plan::default();
        let rules = alerts.rules();
        for (si, st) in self.list.iter_mut().enumerate() {
            let p = &plugins[st.slot];
            let mut free = if dry_run {
                p.idle(now_ms)
            } else {
                p.available(now_ms)
            };
            let (max, within, cooldown) = (st.max_attempts, st.within_ms, st.cooldown_ms);
            // Resolved episodes are kept only while their attempts still count.
            st.episodes.retain(|_, e| {
                e.slide(now_ms, within);
                e.firing || e.in_flight || !e.times.is_empty()
            });
            let grace = st.verify_within_ms;
            for (key, ep) in st.episodes.iter_mut().filter(|(_, e)| e.firing) {
                if ep
                    .pending
                    .as_ref()
                    .is_some_and(|r| r.ended_ms().saturating_add(grace) < now_ms)
                {
                    let r = ep.pending.take().expect("checked above");
                    plan.settled.push(fail(r, overdue(grace)));
                }
                // Not firing without a resolution: dropped (its rule exceeded its group's
                // `limit`, or a reload removed it). Nothing to heal while it is not back.
                if ep.in_flight || muted(key) || !alerts.is_firing(key) {
                    continue;
                }
                ep.slide(now_ms, within);
                // Both are readings from the store, which keeps finite values only.
                let value = alerts.status(key).map_or(ep.value, |s| s.value);
                if ep.times.len() as u32 >= max {
                    if !ep.escalated {
                        ep.escalated = true;
                        plan.give_ups.push(GiveUp {
                            strategy: plugins[st.slot].name.clone(),
                            key: key.clone(),
                            rule: ep.rule,
                            value,
                            attempts: ep.times.len(),
                            within: Duration::from_millis(within),
                            last_message: ep.last_message.clone(),
                        });
                    }
                    continue;
                }
                if ep.last_attempt_ms.is_some_and(|t| t + cooldown > now_ms) || !free {
                    continue;
                }
                ep.attempts += 1;
                if let Some(r) = ep.pending.take() {
                    let why = format!(
                        "the alert still fired when attempt {} started {}",
                        ep.attempts,
                        fmt_duration(now_ms.saturating_sub(r.ended_ms()))
                    );
                    plan.settled.push(fail(r, why));
                }
                ep.times.push_back(now_ms);
                ep.last_attempt_ms = Some(now_ms);
                ep.in_flight = true;
                // The window has room again: giving up later is news again.
                ep.escalated = false;
                let rule = &rules[ep.rule];
                let failure = Failure {
                    alert: rule.name.clone(),
                    metric: rule.metric.clone(),
                    value,
                    labels: key.1.clone(),
                    severity: rule.severity,
                    attempt: ep.attempts,
                    description: rule.description.clone(),
                };
                let detected_ms = alerts
                    .status(key)
                    .and_then(|s| s.firing_since_ms)
                    .unwrap_or(now_ms);
                let job = HealJob {
                    strategy: si,
                    key: key.clone(),
                    failure,
                    detected_ms,
                };
                plan.starts.push((st.slot, job));
                // One call at a time per instance; later episodes may still escalate.
                free = false;
            }
        }
        plan
    }

    /// Follows the alert rules across a config reload: `moved[old]` is a rule's new index, `None`
    /// when its name or labels changed, which ends its episodes.
    pub fn remap_rules(&mut self, moved: &[Option<usize>]) {
        for st in &mut self.list {
            st.episodes
                .retain(|_, ep| match moved.get(ep.rule).copied().flatten() {
                    Some(new) => {
                        ep.rule = new;
                        true
                    }
                    None => false,
                });
        }
    }

    /// An attempt finished (or could not run): the episode may start another, or ends when the
    /// alert already resolved and the attempt succeeded (it is verified). Sets `record`'s
    /// verification when it is known now; a success while the alert fires waits in the episode
    /// for the resolution (its `verified` stays `None`).
    pub fn finished(&mut self, job: &HealJob, record: &mut HealRecord) {
        if !record.success {
            record.verified = Some(false);
            record.reason = Some("the strategy reported failure".into());
        }
        let episodes = &mut self.list[job.strategy].episodes;
        let Some(ep) = episodes.get_mut(&job.key) else {
            if record.success {
                record.verified = Some(false);
                record.reason = Some("its episode ended while it ran (a reload)".into());
            }
            return;
        };
        ep.in_flight = false;
        ep.last_success = record.success;
        record.message.clone_into(&mut ep.last_message);
        if !record.success {
            return;
        }
        if ep.firing {
            ep.pending = Some(record.clone());
        } else {
            record.verified = Some(true);
            record.recovered_ms = Some(ep.resolved_ms.unwrap_or(record.ended_ms()));
            episodes.remove(&job.key);
        }
    }
}

/// Why a success the alert outlived failed.
fn overdue(grace_ms: u64) -> String {
    format!(
        "the alert still fired {} after the strategy reported success",
        fmt_duration(grace_ms)
    )
}

/// `1m30s`, `250ms`.
fn fmt_duration(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    match (s / 60, s % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}
