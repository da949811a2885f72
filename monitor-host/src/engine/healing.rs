//! The healing policy, driven by the alert transitions of each cycle.
//!
//! A firing alert opens an episode for every strategy `on` it. Attempts are numbered within the
//! episode, spaced by the cooldown and bounded to `max_attempts` per `within` window; when the
//! window is used up while the alert still fires, healing gives up once (an escalation). An
//! episode ends with a verified recovery: the alert resolves after an attempt that reported
//! success. The next firing then starts afresh: attempt 1, an empty window. An alert that resolves
//! without a successful attempt (by itself, or flapping) stays in its episode while attempts
//! remain in the window, so a flapping alert cannot restart a service without bound.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use monitor_plugin::Failure;

use super::notify::GiveUp;
use super::running::RunningPlugin;
use crate::alert::{AlertEngine, AlertKey, Transition};
use crate::config::{AlertRule, StrategySpec};
use crate::history::SavedEpisode;

/// A healing attempt in flight: which strategy, on which alert instance, with what input.
#[derive(Debug, Clone)]
pub(super) struct HealJob {
    pub strategy: usize,
    pub key: AlertKey,
    pub failure: Failure,
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
    pub fn restore(
        &mut self,
        saved: Vec<SavedEpisode>,
        plugins: &[RunningPlugin],
        rules: &[AlertRule],
    ) {
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
            };
            st.episodes.insert((e.alert, e.labels), ep);
        }
        self.exported = self.export(plugins, rules);
    }

    /// Opens or continues an episode when an alert a strategy is `on` fires; ends it on a verified
    /// recovery, and returns the strategies (by index) whose last attempt that recovery verified.
    pub fn observe(&mut self, t: &Transition, rules: &[AlertRule]) -> Vec<usize> {
        let mut verified = Vec::new();
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
                }
            }
            Transition::Resolved { rule, labels, .. } => {
                let key = (rules[*rule].name.clone(), labels.clone());
                for (si, st) in self.list.iter_mut().enumerate() {
                    if let Some(ep) = st.episodes.get_mut(&key) {
                        ep.firing = false;
                        if ep.last_success && !ep.in_flight {
                            st.episodes.remove(&key);
                            verified.push(si);
                        }
                    }
                }
            }
        }
        verified
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
            for (key, ep) in st.episodes.iter_mut().filter(|(_, e)| e.firing) {
                if ep.in_flight || muted(key) {
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
                let job = HealJob {
                    strategy: si,
                    key: key.clone(),
                    failure,
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
    /// alert already resolved and the attempt succeeded; returns whether it ended so (the
    /// attempt is verified).
    pub fn finished(&mut self, job: &HealJob, success: bool, message: &str) -> bool {
        let episodes = &mut self.list[job.strategy].episodes;
        let Some(ep) = episodes.get_mut(&job.key) else {
            return false;
        };
        ep.in_flight = false;
        ep.last_success = success;
        message.clone_into(&mut ep.last_message);
        let verified = success && !ep.firing;
        if verified {
            episodes.remove(&job.key);
        }
        verified
    }
}
