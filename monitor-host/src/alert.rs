//! Alert rules evaluated against the store: pending, firing, resolved.

use std::collections::BTreeMap;

use monitor_plugin::Labels;
use serde::Serialize;

use crate::config::AlertRule;
use crate::store::Store;

/// Where one alert instance (a rule applied to one series) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition does not hold.
    Inactive,
    /// The condition holds, for less than `for`.
    Pending,
    /// The condition has held for `for`; notified.
    Firing,
}

impl AlertState {
    /// 0, 1, 2 for the `/metrics` gauge.
    pub fn as_number(self) -> u8 {
        match self {
            Self::Inactive => 0,
            Self::Pending => 1,
            Self::Firing => 2,
        }
    }
}

/// Identity of an alert instance: rule name and the series' labels.
pub type AlertKey = (String, Labels);

/// One alert instance.
#[derive(Debug, Clone, Serialize)]
pub struct AlertStatus {
    /// Rule name.
    pub alert: String,
    /// The series' labels.
    pub labels: Labels,
    /// State.
    pub state: AlertState,
    /// Latest value seen.
    pub value: f64,
    /// When the condition started holding (ms since epoch).
    pub active_since_ms: Option<u64>,
    /// When it started firing.
    pub firing_since_ms: Option<u64>,
    /// When it last resolved.
    pub resolved_at_ms: Option<u64>,
}

/// A state change that notifiers and strategies care about.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// Started firing.
    Fired {
        /// Rule index.
        rule: usize,
        /// Series labels.
        labels: Labels,
        /// Value that made it fire.
        value: f64,
        /// When it started firing.
        at_ms: u64,
    },
    /// Stopped firing.
    Resolved {
        /// Rule index.
        rule: usize,
        /// Series labels.
        labels: Labels,
        /// Latest value; the last one seen when the series went stale or vanished.
        value: f64,
        /// The series went stale or vanished: `value` is not a current reading.
        stale: bool,
        /// When it had started firing.
        started_ms: u64,
        /// When it resolved.
        at_ms: u64,
    },
}

/// What [`AlertEngine::changes`] compares: the state and its times, not the latest value.
type Stored = (AlertState, Option<u64>, Option<u64>, Option<u64>);

fn stored(s: &AlertStatus) -> Stored {
    (
        s.state,
        s.active_since_ms,
        s.firing_since_ms,
        s.resolved_at_ms,
    )
}

/// The rules and the state of every alert instance.
#[derive(Debug)]
pub struct AlertEngine {
    rules: Vec<AlertRule>,
    states: BTreeMap<AlertKey, (usize, AlertStatus)>,
    stale_ms: u64,
    // What `changes` last returned, per instance.
    exported: BTreeMap<AlertKey, Stored>,
}

impl AlertEngine {
    /// Rules from the config; a series not updated for `stale_ms` no longer counts.
    pub fn new(rules: Vec<AlertRule>, stale_ms: u64) -> Self {
        Self {
            rules,
            states: BTreeMap::new(),
            stale_ms,
            exported: BTreeMap::new(),
        }
    }

    /// Replaces the rules (a config reload). Instances of a rule that keeps its name and labels
    /// keep their state, so a firing alert is not notified again; the others are forgotten.
    /// Returns, for each old rule index, its new index when it kept them.
    pub fn replace_rules(&mut self, rules: Vec<AlertRule>, stale_ms: u64) -> Vec<Option<usize>> {
        let moved: Vec<Option<usize>> = (self.rules.iter())
            .map(|old| (rules.iter()).position(|r| r.name == old.name && r.labels == old.labels))
            .collect();
        self.states.retain(|_, (ri, _)| match moved[*ri] {
            Some(new) => {
                *ri = new;
                true
            }
            None => false,
        });
        self.rules = rules;
        self.stale_ms = stale_ms;
        moved
    }

    /// Seeds the engine with the instances a previous run stored, before the first evaluation: a
    /// firing instance stays firing without a new [`Transition::Fired`] (it was notified), and
    /// resolves once if its condition no longer holds; a pending one keeps its start. Instances
    /// of rules no longer configured are dropped.
    pub fn restore(&mut self, saved: Vec<AlertStatus>) {
        for s in saved {
            let Some(ri) = self.rules.iter().position(|r| r.name == s.alert) else {
                continue;
            };
            let key: AlertKey = (s.alert.clone(), s.labels.clone());
            self.exported.insert(key.clone(), stored(&s));
            self.states.insert(key, (ri, s));
        }
    }

    /// The instances whose state or times changed since the last call (or since
    /// [`restore`](Self::restore)), for the store.
    pub fn changes(&mut self) -> Vec<AlertStatus> {
        let mut out = Vec::new();
        for (key, (_, s)) in &self.states {
            let now = stored(s);
            if self.exported.get(key) != Some(&now) {
                self.exported.insert(key.clone(), now);
                out.push(s.clone());
            }
        }
        out
    }

    /// The rules.
    pub fn rules(&self) -> &[AlertRule] {
        &self.rules
    }

    /// Every alert instance seen so far.
    pub fn statuses(&self) -> impl Iterator<Item = &AlertStatus> {
        self.states.values().map(|(_, s)| s)
    }

    /// One alert instance, if it was ever evaluated.
    pub fn status(&self, key: &AlertKey) -> Option<&AlertStatus> {
        self.states.get(key).map(|(_, s)| s)
    }

    /// Whether this instance is firing now.
    pub fn is_firing(&self, key: &AlertKey) -> bool {
        self.states
            .get(key)
            .is_some_and(|(_, s)| s.state == AlertState::Firing)
    }

    /// Evaluates every rule at `now_ms` and returns what changed. Linear in the watched series.
    pub fn evaluate(&mut self, store: &Store, now_ms: u64) -> Vec<Transition> {
        let mut out = Vec::new();
        let mut seen: Vec<AlertKey> = Vec::new();
        for (ri, rule) in self.rules.iter().enumerate() {
            for (key, series) in store.by_name(&rule.metric) {
                if !rule
                    .labels
                    .iter()
                    .all(|(k, v)| key.labels.get(k) == Some(v))
                {
                    continue;
                }
                let Some((ts, value)) = series.latest() else {
                    continue;
                };
                if now_ms.saturating_sub(ts) > self.stale_ms {
                    continue;
                }
                let akey: AlertKey = (rule.name.clone(), key.labels.clone());
                seen.push(akey.clone());
                // NaN compares false with everything: an active instance resolves with the last
                // comparable value, and NaN never becomes an alert's value.
                if value.is_nan() {
                    if let Some((_, st)) = self.states.get_mut(&akey) {
                        let last = st.value;
                        resolve(ri, st, Some(last), now_ms, &mut out);
                    }
                    continue;
                }
                let (_, st) = self.states.entry(akey).or_insert_with(|| {
                    (
                        ri,
                        AlertStatus {
                            alert: rule.name.clone(),
                            labels: key.labels.clone(),
                            state: AlertState::Inactive,
                            value,
                            active_since_ms: None,
                            firing_since_ms: None,
                            resolved_at_ms: None,
                        },
                    )
                });
                st.value = value;
                if rule.condition.holds(value, rule.threshold) {
                    let since = *st.active_since_ms.get_or_insert(now_ms);
                    if st.state != AlertState::Firing {
                        let held = now_ms.saturating_sub(since);
                        if held >= rule.for_.as_millis() as u64 {
                            st.state = AlertState::Firing;
                            st.firing_since_ms = Some(now_ms);
                            out.push(Transition::Fired {
                                rule: ri,
                                labels: key.labels.clone(),
                                value,
                                at_ms: now_ms,
                            });
                        } else if st.state != AlertState::Pending {
                            st.state = AlertState::Pending;
                            tracing::info!(
                                alert = %rule.name,
                                labels = ?key.labels,
                                value,
                                hold_for = ?rule.for_,
                                "alert pending"
                            );
                        }
                    }
                } else {
                    resolve(ri, st, Some(value), now_ms, &mut out);
                }
            }
        }
        // Instances whose series vanished or went stale resolve too.
        seen.sort();
        for (key, (ri, st)) in self.states.iter_mut() {
            if seen.binary_search(key).is_err() {
                resolve(*ri, st, None, now_ms, &mut out);
            }
        }
        self.prune(&seen);
        out
    }

    /// Forgets the instances whose series is gone (stale or vanished, so not in `seen`) once
    /// they are inactive and that state was handed to [`changes`](Self::changes): a firing one
    /// resolves as stale first, and the store learns it resolved before it is forgotten, so a
    /// restart does not bring it back firing. A series that comes back starts a new instance.
    fn prune(&mut self, seen: &[AlertKey]) {
        let exported = &mut self.exported;
        self.states.retain(|key, (_, st)| {
            let gone = st.state == AlertState::Inactive
                && seen.binary_search(key).is_err()
                && exported.get(key) == Some(&stored(st));
            if gone {
                exported.remove(key);
            }
            !gone
        });
    }

    /// Number of alert instances held.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether no instance is held.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }
}

/// Ends an instance's activity; `fresh` is the current value, `None` when the series went stale or
/// vanished (the last value seen is reported then).
fn resolve(
    rule: usize,
    st: &mut AlertStatus,
    fresh: Option<f64>,
    now_ms: u64,
    out: &mut Vec<Transition>,
) {
    if st.state == AlertState::Firing {
        out.push(Transition::Resolved {
            rule,
            labels: st.labels.clone(),
            value: fresh.unwrap_or(st.value),
            stale: fresh.is_none(),
            started_ms: st.firing_since_ms.unwrap_or(now_ms),
            at_ms: now_ms,
        });
        st.resolved_at_ms = Some(now_ms);
    }
    st.state = AlertState::Inactive;
    st.active_since_ms = None;
    st.firing_since_ms = None;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use monitor_plugin::{SampleKind, Severity};

    use super::*;
    use crate::config::Condition;
    use crate::store::SeriesKey;
    use crate::test_support::logged;

    fn rule(condition: Condition, threshold: f64, for_s: u64) -> AlertRule {
        AlertRule {
            name: "r".into(),
            metric: "m".into(),
            condition,
            threshold,
            for_: Duration::from_secs(for_s),
            severity: Severity::Warning,
            description: String::new(),
            labels: Default::default(),
        }
    }

    fn put(store: &mut Store, t: u64, v: f64) {
        let key = SeriesKey {
            name: "m".into(),
            labels: Labels::new(),
        };
        store.insert(key, SampleKind::Gauge, "c", t, v);
    }

    #[test]
    fn pending_then_firing_once_then_resolved() {
        let mut store = Store::new(u64::MAX);
        let mut e = AlertEngine::new(vec![rule(Condition::Above, 10.0, 30)], 60_000);
        put(&mut store, 0, 50.0);
        assert!(e.evaluate(&store, 0).is_empty());
        assert_eq!(e.statuses().next().unwrap().state, AlertState::Pending);
        put(&mut store, 20_000, 50.0);
        assert!(e.evaluate(&store, 20_000).is_empty());
        put(&mut store, 30_000, 50.0);
        let t = e.evaluate(&store, 30_000);
        assert!(matches!(t.as_slice(), [Transition::Fired { value, .. }] if *value == 50.0));
        put(&mut store, 40_000, 60.0);
        assert!(
            e.evaluate(&store, 40_000).is_empty(),
            "no duplicate while it stays firing"
        );
        put(&mut store, 50_000, 5.0);
        let t = e.evaluate(&store, 50_000);
        assert!(matches!(
            t.as_slice(),
            [Transition::Resolved {
                started_ms: 30_000,
                value: 5.0,
                stale: false,
                ..
            }]
        ));
        assert!(e.evaluate(&store, 50_000).is_empty());
    }

    #[test]
    fn entering_pending_is_logged_once() {
        let mut store = Store::new(u64::MAX);
        let mut e = AlertEngine::new(vec![rule(Condition::Above, 10.0, 30)], 60_000);
        put(&mut store, 0, 50.0);
        let first = logged(|| drop(e.evaluate(&store, 0)));
        assert!(first.contains("alert pending"), "{first}");
        assert!(first.contains("alert=r"), "{first}");
        assert!(first.contains("value=50"), "{first}");
        put(&mut store, 10_000, 50.0);
        let second = logged(|| drop(e.evaluate(&store, 10_000)));
        assert!(!second.contains("alert pending"), "{second}");
    }

    #[test]
    fn a_dip_restarts_the_for_window() {
        let mut store = Store::new(u64::MAX);
        let mut e = AlertEngine::new(vec![rule(Condition::Below, 1.0, 10)], 60_000);
        put(&mut store, 0, 0.0);
        e.evaluate(&store, 0);
        put(&mut store, 5_000, 1.0);
        e.evaluate(&store, 5_000);
        put(&mut store, 12_000, 0.0);
        assert!(e.evaluate(&store, 12_000).is_empty());
        put(&mut store, 22_000, 0.0);
        assert_eq!(e.evaluate(&store, 22_000).len(), 1);
    }

    #[test]
    fn a_restored_firing_alert_is_not_fired_again_and_resolves_once() {
        let rules = vec![rule(Condition::Above, 10.0, 0)];
        let mut store = Store::new(u64::MAX);
        let mut before = AlertEngine::new(rules.clone(), 60_000);
        put(&mut store, 0, 50.0);
        assert_eq!(before.evaluate(&store, 0).len(), 1);
        let saved = before.changes();
        assert_eq!(saved.len(), 1);
        assert!(before.changes().is_empty(), "nothing changed since");

        let mut after = AlertEngine::new(rules, 60_000);
        after.restore(saved);
        assert!(after.changes().is_empty(), "restored as stored");
        put(&mut store, 1_000, 60.0);
        assert!(
            after.evaluate(&store, 1_000).is_empty(),
            "still firing, not again"
        );
        put(&mut store, 2_000, 5.0);
        let t = after.evaluate(&store, 2_000);
        assert!(
            matches!(t.as_slice(), [Transition::Resolved { started_ms: 0, .. }]),
            "{t:?}"
        );
        assert!(after.evaluate(&store, 2_000).is_empty());
        assert_eq!(after.changes()[0].state, AlertState::Inactive);
    }

    #[test]
    fn conditions() {
        assert!(Condition::Above.holds(2.0, 1.0));
        assert!(!Condition::Above.holds(1.0, 1.0));
        assert!(Condition::Below.holds(0.0, 1.0));
        assert!(Condition::Equals.holds(1.0, 1.0));
        assert!(Condition::NotEquals.holds(1.5, 1.0));
    }

    #[test]
    fn replaced_rules_keep_the_state_of_unchanged_names_and_labels() {
        let mut store = Store::new(u64::MAX);
        let mut other = rule(Condition::Above, 1.0, 0);
        other.name = "other".into();
        let mut e = AlertEngine::new(vec![other.clone(), rule(Condition::Above, 1.0, 0)], 60_000);
        put(&mut store, 0, 5.0);
        assert_eq!(e.evaluate(&store, 0).len(), 2);
        // `r` moves to index 0 with a new threshold; `other` gets a label matcher.
        other.labels.insert("host".into(), "a".into());
        let moved = e.replace_rules(vec![rule(Condition::Above, 2.0, 0), other], 60_000);
        assert_eq!(moved, vec![None, Some(0)]);
        let key = ("r".to_owned(), Labels::new());
        assert!(e.is_firing(&key), "kept its state");
        assert!(e.status(&("other".to_owned(), Labels::new())).is_none());
        put(&mut store, 1_000, 5.0);
        assert!(e.evaluate(&store, 1_000).is_empty(), "not fired again");
        put(&mut store, 2_000, 1.5);
        let t = e.evaluate(&store, 2_000);
        assert!(
            matches!(t.as_slice(), [Transition::Resolved { rule: 0, .. }]),
            "the new threshold applies: {t:?}"
        );
    }

    #[test]
    fn instances_of_gone_series_are_forgotten_once_resolved_and_stored() {
        let mut store = Store::new(u64::MAX);
        let mut e = AlertEngine::new(vec![rule(Condition::Above, 1.0, 0)], 10_000);
        let mut fired = 0;
        let mut resolved = 0;
        // A label that changes every cycle: each value is a series seen once.
        for i in 0..200u64 {
            let t = i * 1000;
            let key = SeriesKey {
                name: "m".into(),
                labels: Labels::from([("id".to_owned(), i.to_string())]),
            };
            store.insert(key, SampleKind::Gauge, "c", t, 5.0);
            for tr in e.evaluate(&store, t) {
                match tr {
                    Transition::Fired { .. } => fired += 1,
                    Transition::Resolved { stale, .. } => {
                        assert!(stale);
                        resolved += 1;
                    }
                }
            }
            // The store takes the changes every cycle.
            let _ = e.changes();
            assert!(e.len() <= 13, "cycle {i}: {} instances", e.len());
        }
        assert_eq!(fired, 200);
        assert_eq!(
            resolved, 189,
            "each fired one resolved as stale, but the last 11"
        );
    }

    #[test]
    fn a_gone_instance_is_kept_until_the_store_learned_it_resolved() {
        let mut store = Store::new(u64::MAX);
        let mut e = AlertEngine::new(vec![rule(Condition::Above, 1.0, 0)], 10_000);
        put(&mut store, 0, 5.0);
        assert_eq!(e.evaluate(&store, 0).len(), 1);
        assert_eq!(e.changes().len(), 1);
        assert_eq!(e.evaluate(&store, 20_000).len(), 1, "resolved as stale");
        assert_eq!(e.len(), 1, "kept: the store has not seen it resolve");
        assert!(e.evaluate(&store, 21_000).is_empty());
        let changes = e.changes();
        assert_eq!(changes[0].state, AlertState::Inactive);
        assert!(e.evaluate(&store, 22_000).is_empty());
        assert!(e.is_empty(), "forgotten");
        assert!(e.changes().is_empty());
    }

    #[test]
    fn a_stale_series_resolves() {
        let mut store = Store::new(u64::MAX);
        let mut e = AlertEngine::new(vec![rule(Condition::Above, 1.0, 0)], 10_000);
        put(&mut store, 0, 5.0);
        assert_eq!(e.evaluate(&store, 0).len(), 1);
        let t = e.evaluate(&store, 20_000);
        assert!(
            matches!(
                t.as_slice(),
                [Transition::Resolved {
                    value: 5.0,
                    stale: true,
                    ..
                }]
            ),
            "a finite value, the last one seen: {t:?}"
        );
    }
}
