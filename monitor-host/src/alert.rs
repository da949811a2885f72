//! Alert and recording rules evaluated with PromQL over the in-memory store: pending, firing,
//! resolved, as Prometheus's rule manager does (`rules/alerting.go`, `rules/recording.go`).
//!
//! Every alerting rule is evaluated the same way: the config's `[[alert]]`s of both forms (in one
//! group evaluated every cycle) and the groups of the `rule_files` (each every `interval`, the
//! host's by default; rules in order, so a recording rule's result is read by the later rules of
//! its group in the same evaluation). The evaluation time is the cycle's.
//!
//! - An expression rule's instances are the samples its expression returns, each keyed by the
//!   sample's labels (without `__name__`) plus the rule's rendered `labels`; `$value` is the
//!   sample's value. An instance is pending, fires after `for`, keeps firing for
//!   `keep_firing_for` after the expression stops returning it, then resolves: for a comparison
//!   of a vector with a number (`up == 0`), with the vector's current value, or as stale with the
//!   last value when the vector no longer has its series; otherwise with the last value.
//! - A series its collector no longer returned ([`AlertEngine::collected`]) is stale from then
//!   on, as a scraped series is from the first scrape that lacks it: the alerts on it resolve at
//!   the next evaluation.
//! - A simple rule (`metric`, `condition`, `threshold`) reads its selector
//!   ([`simple_selector`](crate::rules::simple_selector)) and applies its condition to each sample,
//!   which is what [`simple_expr`](crate::rules::simple_expr) means; its instances keep the
//!   series' own labels, as stored, and a series that went stale or vanished resolves its
//!   instance with the last value seen and `stale`.
//! - A rule that reads further back than memory holds (`avg_over_time(x[1d])`, `x offset 1d`)
//!   is evaluated over memory and the store together ([`StoredSource`]) once the engine has a
//!   store ([`AlertEngine::attach_history`]); the points it read from the store are kept between
//!   evaluations ([`HistoryCache`]), so each evaluation reads only what left memory since the
//!   last one.
//! - A group's `limit` caps the alerts (or recorded series) of each of its rules: beyond it the
//!   rule is in error (`exceeded limit of N with M alerts`) and all its alerts are dropped without
//!   a resolved notification, as in Prometheus (`rules/alerting.go`, `Eval`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use monitor_plugin::{Labels, Severity};
use promql_parser::parser::{self, Expr};
use serde::Serialize;

use crate::config::{AlertRule, Condition, Config};
use crate::promql::{
    Evaluator, HistoryCache, MemoryIndex, MemorySource, Metric, NAME, Sample, Selections, Source,
    StoredSource, Value, without_name,
};
use crate::rules::{AlertingRule, RecordingRule, Rule, RuleSet, Template, TemplateData};
use crate::store::{SeriesId, SeriesKey, Store};

mod api;
mod gone;

use self::gone::Gone;

/// The `source` of the series recording rules write.
pub const RULES_SOURCE: &str = "rules";

/// How far back state changes count for [`AlertStatus::flaps_per_hour`].
const FLAP_WINDOW_MS: u64 = 3_600_000;

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

/// Identity of an alert instance: rule name and the instance's labels.
pub type AlertKey = (String, Labels);

/// One alert instance.
#[derive(Debug, Clone, Serialize)]
pub struct AlertStatus {
    /// Rule name.
    pub alert: String,
    /// The instance's labels: a simple rule's series' labels; an expression rule's sample's
    /// labels with the rule's `labels`.
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
    /// The rule's annotations, rendered at the last evaluation that returned this instance.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// State changes (inactive, pending, firing) in the last hour: how much it flaps.
    #[serde(default)]
    pub flaps_per_hour: u32,
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

/// What [`AlertEngine::changes`] compares: the state, its times and how many times the
/// annotations changed, not the latest value (the store keeps it only with a change).
type Stored = (AlertState, Option<u64>, Option<u64>, Option<u64>, u64);

fn stored(inst: &Instance) -> Stored {
    let s = &inst.status;
    (
        s.state,
        s.active_since_ms,
        s.firing_since_ms,
        s.resolved_at_ms,
        inst.annotations_version,
    )
}

/// How an alerting rule is evaluated.
#[derive(Debug, Clone)]
enum Check {
    /// The simple form: its selector, and its condition applied to each sample.
    Simple {
        selector: Expr,
        condition: Condition,
        threshold: f64,
    },
    /// Every sample the expression returns is an active alert.
    Expr(Expr),
}

/// An alerting rule as the engine evaluates it.
#[derive(Debug, Clone)]
struct AlertDef {
    check: Check,
    // The expression as written (`simple_expr` for a simple rule).
    text: String,
    keep_firing_for_ms: u64,
    labels: BTreeMap<String, Template>,
    annotations: BTreeMap<String, Template>,
    // What a reload compares to keep an instance's state: name and labels.
    identity: String,
    limit: u64,
    // How far back it reads, in ms (`crate::rules::lookback`).
    lookback_ms: u64,
    // The expression evaluated, as the evaluator formats it: what answers are shared by.
    key: String,
    // An expression rule comparing a vector with a number (`up == 0`): the vector side, which
    // tells an alert whose series is still there (resolved with its current value) from one
    // whose series went stale or vanished; and its formatted text.
    value_side: Option<(Expr, String)>,
}

/// One rule of a group, in order.
#[derive(Debug, Clone)]
enum Step {
    /// Index of an alerting rule.
    Alert(usize),
    /// A recording rule.
    Record {
        name: String,
        expr: Expr,
        labels: BTreeMap<String, String>,
        lookback_ms: u64,
    },
}

#[derive(Debug, Clone)]
struct Group {
    name: String,
    // The rule file it comes from; empty for the config's `[[alert]]`s.
    file: String,
    // `None`: every evaluation (the config's `[[alert]]`s).
    interval_ms: Option<u64>,
    // How early a cycle may come and still evaluate the group: a tenth of its interval, at most
    // half the host's interval, so that cycles a whole host interval apart never evaluate it
    // a cycle early (every 9 s instead of 10 with 1 s cycles).
    leeway_ms: u64,
    limit: u64,
    steps: Vec<Step>,
}

/// Every rule the engine evaluates, ready: the config's `[[alert]]`s and its rule files' groups.
#[derive(Debug, Clone, Default)]
pub struct CompiledRules {
    // Per alerting rule, what notifications and healing read.
    meta: Vec<AlertRule>,
    defs: Vec<AlertDef>,
    groups: Vec<Group>,
}

impl From<Vec<AlertRule>> for CompiledRules {
    /// Simple rules only, in one group evaluated every cycle.
    fn from(rules: Vec<AlertRule>) -> Self {
        let mut out = Self::default();
        let mut group = Group {
            name: "config".into(),
            file: String::new(),
            interval_ms: None,
            leeway_ms: 0,
            limit: 0,
            steps: Vec::new(),
        };
        for r in rules {
            group.steps.push(Step::Alert(out.meta.len()));
            out.push_simple(r);
        }
        out.groups.push(group);
        out
    }
}

impl CompiledRules {
    /// The rules of `config`: its `[[alert]]`s (both forms, in one group evaluated every cycle),
    /// then the groups of its rule files.
    pub fn from_config(config: &Config) -> Self {
        Self::from_rule_set(&config.alerts, &config.rules, config.host.interval)
    }

    /// The rules of `set`: its `alerts` in one group evaluated every cycle (those named as one
    /// of `simple` are evaluated as that simple rule), then its groups, each every `interval`
    /// or `host_interval`.
    pub fn from_rule_set(simple: &[AlertRule], set: &RuleSet, host_interval: Duration) -> Self {
        let mut out = Self::default();
        let mut group = Group {
            name: "config".into(),
            file: String::new(),
            interval_ms: None,
            leeway_ms: 0,
            limit: 0,
            steps: Vec::new(),
        };
        for a in &set.alerts {
            group.steps.push(Step::Alert(out.meta.len()));
            match simple.iter().find(|s| s.name == a.name) {
                Some(simple) => out.push_simple(simple.clone()),
                None => out.push_expr(a, 0),
            }
        }
        out.groups.push(group);
        let host_ms = host_interval.as_millis() as u64;
        for g in &set.groups {
            let mut steps = Vec::new();
            for r in &g.rules {
                steps.push(match r {
                    Rule::Alerting(a) => {
                        let i = out.meta.len();
                        out.push_expr(a, g.limit);
                        Step::Alert(i)
                    }
                    Rule::Recording(r) => record_step(r),
                });
            }
            let every = g.interval.map_or(host_ms, |d| d.as_millis() as u64);
            out.groups.push(Group {
                name: format!("{}:{}", g.file, g.name),
                file: g.file.clone(),
                interval_ms: Some(every),
                leeway_ms: (every / 10).min(host_ms / 2),
                limit: g.limit,
                steps,
            });
        }
        out
    }

    fn push_simple(&mut self, r: AlertRule) {
        let text = crate::rules::simple_expr(&r);
        let selector = crate::rules::simple_selector(&r);
        let selector = parser::parse(&selector).unwrap_or_else(|e| {
            // Names and values are escaped by `simple_selector`: it always parses.
            unreachable!("`{selector}` does not parse: {e}")
        });
        self.defs.push(AlertDef {
            key: selector.to_string(),
            check: Check::Simple {
                selector,
                condition: r.condition,
                threshold: r.threshold,
            },
            text,
            keep_firing_for_ms: 0,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            identity: format!("{}\0{:?}", r.name, r.labels),
            limit: 0,
            lookback_ms: 0,
            value_side: None,
        });
        self.meta.push(r);
    }

    fn push_expr(&mut self, a: &AlertingRule, limit: u64) {
        let source = |t: &Template| t.source().to_owned();
        let severity = (a.labels.get("severity"))
            .and_then(|t| Severity::parse(t.source()))
            .unwrap_or(Severity::Warning);
        let description = ["description", "summary"]
            .iter()
            .find_map(|k| a.annotations.get(*k).map(source))
            .unwrap_or_default();
        let labels: BTreeMap<String, String> = a
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), source(v)))
            .collect();
        self.meta.push(AlertRule {
            name: a.name.clone(),
            metric: notification_metric(&a.expr.parsed, &a.expr.text),
            // Neutral: an expression rule has no threshold of its own (see `expr`).
            condition: Condition::Above,
            threshold: 0.0,
            for_: a.for_,
            severity,
            description,
            labels: BTreeMap::new(),
        });
        self.defs.push(AlertDef {
            key: a.expr.parsed.to_string(),
            check: Check::Expr(a.expr.parsed.clone()),
            text: a.expr.text.clone(),
            keep_firing_for_ms: a.keep_firing_for.as_millis() as u64,
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            identity: format!("{}\0{labels:?}", a.name),
            limit,
            lookback_ms: lookback_ms(&a.expr.parsed),
            value_side: value_side(&a.expr.parsed).map(|e| {
                let text = e.to_string();
                (e, text)
            }),
        });
    }
}

/// The vector side of a filtering comparison with a number (`rate(x[5m]) > 5`, `0 < up`).
fn value_side(expr: &Expr) -> Option<Expr> {
    let mut e = expr;
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    let Expr::Binary(b) = e else { return None };
    let filters =
        b.op.is_comparison_operator() && !b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let number = |e: &Expr| matches!(e, Expr::NumberLiteral(_));
    match (filters, number(&b.lhs), number(&b.rhs)) {
        (true, false, true) => Some((*b.lhs).clone()),
        (true, true, false) => Some((*b.rhs).clone()),
        _ => None,
    }
}

fn record_step(r: &RecordingRule) -> Step {
    Step::Record {
        name: r.name.clone(),
        expr: r.expr.parsed.clone(),
        labels: r.labels.clone(),
        lookback_ms: lookback_ms(&r.expr.parsed),
    }
}

/// The iterations of `group` that were skipped between its evaluation at `last_ms` and the one at
/// `now_ms` (with the leeway that makes a group due).
fn missed_iterations(last_ms: Option<u64>, group: &Group, now_ms: u64) -> u64 {
    let (Some(last), Some(every)) = (last_ms, group.interval_ms.filter(|&e| e > 0)) else {
        return 0;
    };
    (now_ms.saturating_sub(last) + group.leeway_ms)
        .checked_div(every)
        .unwrap_or(0)
        .saturating_sub(1)
}

/// How old the oldest sample `expr` may read is, in ms (an instant selector reading its lookback
/// delta before its time); 0 for instant selectors without offset alone, which read memory
/// however short it is (see [`AlertEngine::reads_history`]).
fn lookback_ms(expr: &Expr) -> u64 {
    if crate::rules::lookback(expr).is_zero() {
        return 0;
    }
    let instant = Duration::from_millis(crate::promql::LOOKBACK_MS as u64);
    u64::try_from(crate::rules::reach(expr, instant).as_millis()).unwrap_or(u64::MAX)
}

/// What a notification names as an expression rule's metric: the selector's name when the
/// expression is a plain comparison of a selector (`up == 0`), else the expression's text.
fn notification_metric(expr: &Expr, text: &str) -> String {
    let mut e = expr;
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    if let Expr::Binary(b) = e
        && b.op.is_comparison_operator()
        && let Expr::VectorSelector(vs) = b.lhs.as_ref()
        && let Some(name) = &vs.name
        && matches!(b.rhs.as_ref(), Expr::NumberLiteral(_))
    {
        return name.clone();
    }
    text.to_owned()
}

/// An alert instance and what the engine keeps about it besides its status.
#[derive(Debug, Clone)]
struct Instance {
    rule: usize,
    status: AlertStatus,
    // Since when a firing instance's expression no longer returns it (`keep_firing_for`).
    keep_since_ms: Option<u64>,
    // When its state changed, in the last hour.
    changes: VecDeque<u64>,
    // How many times its annotations changed: what `changes` compares of them.
    annotations_version: u64,
    // What `changes` last handed to the store, if it did.
    exported: Option<Stored>,
}

/// An active instance found by an evaluation: labels, value, annotations.
type Active = (Labels, f64, BTreeMap<String, String>);

/// Whether `labels` are among `active` (sorted by labels).
fn is_active(active: &[Active], labels: &Labels) -> bool {
    active.binary_search_by(|a| a.0.cmp(labels)).is_ok()
}

/// The instance of rule `ri` named `name` with `labels` among `instances` (one rule name's),
/// created inactive with `value` if it is new; the labels are copied only then.
fn instance<'i>(
    instances: &'i mut BTreeMap<Labels, Instance>,
    (ri, name): (usize, &str),
    labels: &Labels,
    value: f64,
) -> &'i mut Instance {
    if !instances.contains_key(labels) {
        let inst = Instance {
            rule: ri,
            status: AlertStatus {
                alert: name.to_owned(),
                labels: labels.clone(),
                state: AlertState::Inactive,
                value,
                active_since_ms: None,
                firing_since_ms: None,
                resolved_at_ms: None,
                annotations: BTreeMap::new(),
                flaps_per_hour: 0,
            },
            keep_since_ms: None,
            changes: VecDeque::new(),
            annotations_version: 0,
            exported: None,
        };
        instances.insert(labels.clone(), inst);
    }
    instances.get_mut(labels).expect("inserted above")
}

impl Instance {
    fn set_state(&mut self, state: AlertState, now_ms: u64) {
        if self.status.state != state {
            self.status.state = state;
            self.changes.push_back(now_ms);
        }
        self.count_flaps(now_ms);
    }

    fn count_flaps(&mut self, now_ms: u64) {
        let horizon = now_ms.saturating_sub(FLAP_WINDOW_MS);
        while self.changes.front().is_some_and(|&t| t < horizon) {
            self.changes.pop_front();
        }
        self.status.flaps_per_hour = u32::try_from(self.changes.len()).unwrap_or(u32::MAX);
    }
}

/// What one evaluation of an alerting rule found, per instance.
#[derive(Debug, Default)]
struct Found {
    // Active instances, sorted by labels.
    active: Vec<Active>,
    // A simple rule's series that are there but whose condition does not hold: their value
    // (the last comparable one for NaN). For an expression rule with a value side, read only when
    // one of its alerts is no longer active: the instances its value side still returns.
    inactive: BTreeMap<Labels, Option<f64>>,
    // Whether `inactive` tells which series are there (always for a simple rule).
    knows_series: bool,
}

/// Why a rule could not be evaluated, for the log and [`AlertEngine::rule_errors`].
#[derive(Debug)]
enum RuleError {
    /// The query failed: the rule's state is left as it was.
    Query(String),
    /// Its group's `limit` was exceeded: its alerts are dropped.
    Limit(String),
}

/// The rules and the state of every alert instance.
#[derive(Debug)]
pub struct AlertEngine {
    rules: Arc<CompiledRules>,
    // By rule name, then labels: a rule's instances are found by their labels alone.
    states: BTreeMap<String, BTreeMap<Labels, Instance>>,
    stale_ms: u64,
    // When each group was last evaluated.
    last_eval: Vec<Option<u64>>,
    // How long each group's last evaluation took.
    last_duration: Vec<Option<Duration>>,
    // Per group name: iterations due so far (evaluated or missed), and those missed because the
    // previous evaluation came late. Kept across reloads for the groups that stay.
    iterations: BTreeMap<String, (u64, u64)>,
    // Every group evaluation's time added up, and their number.
    eval_time: (Duration, u64),
    // Recording rules' results not yet taken by `take_recorded`.
    recorded: Vec<(SeriesKey, u64, f64)>,
    // The last error of each rule that failed, by group and rule name.
    errors: BTreeMap<(String, String), String>,
    // The store, for the rules that read further back than memory holds.
    history: Option<HistoryCache>,
    // How far back memory holds points, in ms: a rule reading further back (by more than the
    // lookback of an instant selector) reads the store too.
    memory_ms: u64,
    // The series the collections no longer return: stale for the rules from then on.
    gone: Gone,
    // The store's series as rules see them, kept while the store holds the same series.
    index: MemoryIndex,
}

impl AlertEngine {
    /// The rules (`Vec<AlertRule>` for simple rules only, or [`CompiledRules::from_config`]); a
    /// series not updated for `stale_ms` no longer counts.
    pub fn new(rules: impl Into<CompiledRules>, stale_ms: u64) -> Self {
        let rules: CompiledRules = rules.into();
        Self {
            last_eval: vec![None; rules.groups.len()],
            last_duration: vec![None; rules.groups.len()],
            iterations: BTreeMap::new(),
            eval_time: (Duration::ZERO, 0),
            rules: Arc::new(rules),
            states: BTreeMap::new(),
            stale_ms,
            recorded: Vec::new(),
            errors: BTreeMap::new(),
            history: None,
            memory_ms: u64::MAX,
            gone: Gone::default(),
            index: MemoryIndex::default(),
        }
    }

    /// Source `source` (a collector instance) returned the series `series` at `at_ms` (their
    /// store ids, of the samples without a timestamp of their own), or failed (none): the
    /// series of its previous collection it did not return are stale from `at_ms` on, as
    /// Prometheus marks a series stale at the first scrape that lacks it, so the alerts on them
    /// resolve at the next evaluation rather than after the staleness window.
    pub fn collected(&mut self, source: &str, series: Vec<SeriesId>, at_ms: u64) {
        self.gone.collected(source, series, at_ms);
    }

    /// Source `source` is no longer collected (a reload removed its collector): the series of
    /// its last collection are stale from `at_ms` on, as Prometheus marks the series of a target
    /// that left its scrape config stale, so the alerts on them resolve at the next evaluation.
    pub fn removed(&mut self, source: &str, at_ms: u64) {
        self.gone.removed(source, at_ms);
    }

    /// Lets the rules that read further back than `memory` (how long the in-memory store holds
    /// points) read the store whose database file is `database` too, opened read-only when
    /// first needed. Without it every rule is evaluated over memory alone.
    pub fn attach_history(&mut self, database: &std::path::Path, memory: Duration) {
        self.history = Some(HistoryCache::new(database));
        self.memory_ms = u64::try_from(memory.as_millis()).unwrap_or(u64::MAX);
    }

    /// The store's points the rules hold between evaluations, and how many they read from it
    /// so far: `None` without [`attach_history`](Self::attach_history).
    pub fn history_points(&self) -> Option<(usize, u64)> {
        (self.history.as_ref()).map(|h| (h.cached_points(), h.read_points()))
    }

    /// Whether a rule reading `lookback_ms` back needs the store (when there is one). A rule of
    /// instant selectors alone (`lookback_ms` 0) never does, however short memory is: memory
    /// marks its gone series stale, so their alerts resolve and are pruned, which the store
    /// cannot tell.
    fn reads_history(&self, lookback_ms: u64) -> bool {
        lookback_ms > self.memory_ms
    }

    /// Replaces the rules (a config reload). Instances of a rule that keeps its name and labels
    /// keep their state, so a firing alert is not notified again; the others are forgotten.
    /// Returns, for each old rule index, its new index when it kept them.
    pub fn replace_rules(
        &mut self,
        rules: impl Into<CompiledRules>,
        stale_ms: u64,
    ) -> Vec<Option<usize>> {
        let rules: CompiledRules = rules.into();
        let moved: Vec<Option<usize>> = (self.rules.defs.iter())
            .map(|old| (rules.defs.iter()).position(|r| r.identity == old.identity))
            .collect();
        for instances in self.states.values_mut() {
            instances.retain(|_, inst| match moved[inst.rule] {
                Some(new) => {
                    inst.rule = new;
                    true
                }
                None => false,
            });
        }
        self.states.retain(|_, instances| !instances.is_empty());
        self.last_eval = vec![None; rules.groups.len()];
        self.last_duration = vec![None; rules.groups.len()];
        (self.iterations).retain(|name, _| rules.groups.iter().any(|g| &g.name == name));
        self.rules = Arc::new(rules);
        self.stale_ms = stale_ms;
        self.errors.clear();
        moved
    }

    /// Seeds the engine with the instances a previous run stored, before the first evaluation: a
    /// firing instance stays firing without a new [`Transition::Fired`] (it was notified), and
    /// resolves once if its condition no longer holds; a pending one keeps its start. Instances
    /// of rules no longer configured are dropped.
    pub fn restore(&mut self, saved: Vec<AlertStatus>) {
        for s in saved {
            let Some(ri) = self.rule_of(&s.alert, &s.labels) else {
                continue;
            };
            let mut inst = Instance {
                rule: ri,
                status: s,
                keep_since_ms: None,
                changes: VecDeque::new(),
                annotations_version: 0,
                exported: None,
            };
            inst.exported = Some(stored(&inst));
            (self.states.entry(inst.status.alert.clone()).or_default())
                .insert(inst.status.labels.clone(), inst);
        }
    }

    /// The rule named `name` whose literal labels `labels` carries (rules of a file may share a
    /// name and differ by their labels).
    fn rule_of(&self, name: &str, labels: &Labels) -> Option<usize> {
        let named = |i: &usize| self.rules.meta[*i].name == name;
        let carries = |i: &usize| {
            (self.rules.defs[*i].labels.iter()).all(|(k, t)| {
                t.source().contains("{{") || labels.get(k).map(String::as_str) == Some(t.source())
            })
        };
        let all = 0..self.rules.meta.len();
        all.clone()
            .filter(named)
            .find(carries)
            .or_else(|| all.clone().find(named))
    }

    /// The instances whose state, times or annotations changed since the last call (or since
    /// [`restore`](Self::restore)), for the store.
    ///
    /// Each instance is compared by its state, times and a count of its annotations' changes,
    /// without copying or hashing anything; only the changed ones are copied.
    pub fn changes(&mut self) -> Vec<AlertStatus> {
        let mut out = Vec::new();
        for inst in self.states.values_mut().flat_map(BTreeMap::values_mut) {
            let now = stored(inst);
            if inst.exported != Some(now) {
                inst.exported = Some(now);
                out.push(inst.status.clone());
            }
        }
        out
    }

    /// Every instance, by rule name and labels.
    fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.states.values().flat_map(BTreeMap::values)
    }

    /// The alerting rules, by rule index: what notifications and healing read. An expression
    /// rule's entry has the neutral `condition` `above` and `threshold` 0 (see
    /// [`expr`](Self::expr)), its `severity` label as severity and its `description` (or
    /// `summary`) annotation as description.
    pub fn rules(&self) -> &[AlertRule] {
        &self.rules.meta
    }

    /// The expression of rule `rule` when it is an expression rule; `None` for a simple rule.
    pub fn expr(&self, rule: usize) -> Option<&str> {
        let def = self.rules.defs.get(rule)?;
        match def.check {
            Check::Expr(_) => Some(&def.text),
            Check::Simple { .. } => None,
        }
    }

    /// The rules that failed at their last evaluation, with why: `(group, rule)` to the message.
    pub fn rule_errors(&self) -> &BTreeMap<(String, String), String> {
        &self.errors
    }

    /// Each group's name and how long its last evaluation took (wall time), for the groups
    /// evaluated since the rules were loaded.
    pub fn group_durations(&self) -> impl Iterator<Item = (&str, Duration)> {
        (self.rules.groups.iter().zip(&self.last_duration))
            .filter_map(|(g, d)| Some((g.name.as_str(), (*d)?)))
    }

    /// Each group's name, its iterations due so far (evaluated or missed) and those it missed:
    /// an evaluation that comes more than one interval late (the cycle or an earlier group took
    /// that long) counts the iterations it skipped, as Prometheus's
    /// `prometheus_rule_group_iterations_missed_total` does.
    pub fn group_iterations(&self) -> impl Iterator<Item = (&str, u64, u64)> {
        (self.iterations.iter()).map(|(name, &(due, missed))| (name.as_str(), due, missed))
    }

    /// The wall time of every group evaluation so far added up, and their number (Prometheus's
    /// `prometheus_rule_group_duration_seconds` summary).
    pub fn evaluation_time(&self) -> (Duration, u64) {
        self.eval_time
    }

    /// Every alert instance seen so far.
    pub fn statuses(&self) -> impl Iterator<Item = &AlertStatus> {
        self.instances().map(|i| &i.status)
    }

    /// One alert instance, if it was ever evaluated.
    pub fn status(&self, key: &AlertKey) -> Option<&AlertStatus> {
        (self.states.get(&key.0)?.get(&key.1)).map(|i| &i.status)
    }

    /// Whether this instance is firing now.
    pub fn is_firing(&self, key: &AlertKey) -> bool {
        self.status(key)
            .is_some_and(|s| s.state == AlertState::Firing)
    }

    /// The recording rules' results since the last call, for the store: `(series, ms, value)`.
    pub fn take_recorded(&mut self) -> Vec<(SeriesKey, u64, f64)> {
        std::mem::take(&mut self.recorded)
    }

    /// Evaluates, at `now_ms`, every group that is due and returns what changed. A group is due
    /// at its first evaluation and once its interval has passed since the last one (within a
    /// tenth of it, so a cycle that comes a little early does not skip it).
    ///
    /// Queries are evaluated at `now_ms`, or at the newest sample's time when it is later: the
    /// samples of a cycle are stamped when they arrive, after the cycle began, and Prometheus
    /// too evaluates after the scrapes it reads. States and transitions are timed at `now_ms`.
    pub fn evaluate(&mut self, store: &Store, now_ms: u64) -> Vec<Transition> {
        let rules = Arc::clone(&self.rules);
        let due: Vec<usize> = (0..rules.groups.len())
            .filter(
                |&g| match (self.last_eval[g], rules.groups[g].interval_ms) {
                    (None, _) | (_, None) => true,
                    (Some(last), Some(every)) => now_ms + rules.groups[g].leeway_ms >= last + every,
                },
            )
            .collect();
        let mut out = Vec::new();
        // Without a single rule, building the view over every series would be all the cost.
        if due.is_empty() || due.iter().all(|&g| rules.groups[g].steps.is_empty()) {
            for g in due {
                self.last_eval[g] = Some(now_ms);
            }
            return out;
        }
        self.gone.expire(now_ms.saturating_sub(self.stale_ms));
        // Taken for the evaluation, so that the source can borrow it beside `self`.
        let gone = std::mem::take(&mut self.gone);
        self.index.refresh(store);
        let index = std::mem::take(&mut self.index);
        let mut source =
            MemorySource::with_index(store, self.stale_ms, &index).with_gone(gone.since());
        let at_ms = now_ms.max(source.newest_ms());
        // Taken for the evaluation, so that rules can borrow it beside `self`.
        let mut history = self.history.take();
        // What the rules over memory selected, shared between them until a recording rule adds
        // to memory.
        let selections = Selections::default();
        // The store is read (from the first rule that needs it) within one read transaction.
        let mut begun = false;
        let mut history_error = None;
        for g in due {
            let started = Instant::now();
            let group = &rules.groups[g];
            let missed = missed_iterations(self.last_eval[g], group, now_ms);
            self.last_eval[g] = Some(now_ms);
            if !group.steps.is_empty() {
                let counts = self.iterations.entry(group.name.clone()).or_default();
                counts.0 += 1 + missed;
                counts.1 += missed;
            }
            for step in &group.steps {
                let lookback = match step {
                    Step::Alert(ri) => rules.defs[*ri].lookback_ms,
                    Step::Record { lookback_ms, .. } => *lookback_ms,
                };
                let long = history.is_some() && self.reads_history(lookback);
                if long && !begun {
                    begun = true;
                    history_error = (history.as_mut())
                        .and_then(|h| h.begin(i64::try_from(at_ms).unwrap_or(i64::MAX)).err());
                }
                let mut over = Over {
                    memory: &mut source,
                    history: history.as_mut().filter(|_| long),
                    history_error: &mut history_error,
                    selections: &selections,
                };
                let (name, result) = match step {
                    Step::Alert(ri) => (
                        &rules.meta[*ri].name,
                        self.evaluate_alert(&rules, *ri, &mut over, (at_ms, now_ms), &mut out),
                    ),
                    Step::Record {
                        name, expr, labels, ..
                    } => (
                        name,
                        self.evaluate_record(name, expr, labels, group.limit, &mut over, at_ms),
                    ),
                };
                self.note_error(&group.name, name, result.err());
            }
            // A group without rules (the config's, when it has no `[[alert]]`) is not timed.
            if !group.steps.is_empty() {
                let took = started.elapsed();
                self.last_duration[g] = Some(took);
                self.eval_time.0 += took;
                self.eval_time.1 += 1;
            }
        }
        if let Some(h) = history.as_mut().filter(|_| begun) {
            h.end();
        }
        self.history = history;
        drop(source);
        self.gone = gone;
        self.index = index;
        out
    }

    fn note_error(&mut self, group: &str, rule: &str, error: Option<RuleError>) {
        let key = (group.to_owned(), rule.to_owned());
        match error {
            None => {
                self.errors.remove(&key);
            }
            Some(RuleError::Query(m) | RuleError::Limit(m)) => {
                if self.errors.get(&key) != Some(&m) {
                    tracing::warn!(group, rule, error = %m, "rule evaluation failed");
                }
                self.errors.insert(key, m);
            }
        }
    }

    /// One alerting rule at `now_ms`: its instances' states, transitions into `out`.
    fn evaluate_alert(
        &mut self,
        rules: &CompiledRules,
        ri: usize,
        over: &mut Over<'_, '_, '_>,
        (at_ms, now_ms): (u64, u64),
        out: &mut Vec<Transition>,
    ) -> Result<(), RuleError> {
        let def = &rules.defs[ri];
        let rule = &rules.meta[ri];
        let mut result = find(def, over, at_ms).map_err(RuleError::Query);
        if let Ok(found) = &result
            && def.limit > 0
            && found.active.len() as u64 > def.limit
        {
            result = Err(RuleError::Limit(format!(
                "exceeded limit of {} with {} alerts",
                def.limit,
                found.active.len()
            )));
        }
        let found = match result {
            Ok(f) => f,
            // A failed query changes nothing; past the limit, every alert of the rule is dropped.
            Err(RuleError::Query(m)) => return Err(RuleError::Query(m)),
            Err(RuleError::Limit(m)) => {
                self.drop_all(ri, &rule.name);
                return Err(RuleError::Limit(m));
            }
        };
        let mut found = found;
        let mut active = std::mem::take(&mut found.active);
        if !active.is_empty() || found.inactive.values().any(Option::is_some) {
            if !self.states.contains_key(&rule.name) {
                self.states.insert(rule.name.clone(), BTreeMap::new());
            }
            let instances = (self.states.get_mut(&rule.name)).expect("inserted above");
            for (labels, value, annotations) in &mut active {
                let inst = instance(instances, (ri, &rule.name), labels, *value);
                inst.status.value = *value;
                if inst.status.annotations != *annotations {
                    inst.status.annotations = std::mem::take(annotations);
                    inst.annotations_version += 1;
                }
                inst.keep_since_ms = None;
                activate(ri, rule, inst, now_ms, out);
            }
            // A simple rule's series that are there have an instance, inactive or not
            // (`/metrics` shows its state as 0).
            for (labels, value) in &found.inactive {
                if let Some(v) = value {
                    instance(instances, (ri, &rule.name), labels, *v);
                }
            }
        }
        if let Some((side, text)) = &def.value_side
            && self.any_absent(ri, &rule.name, &active)
        {
            // Only when an alert goes: the other side costs a second query.
            if let Ok(values) = values_of(def, (side, text), over, at_ms) {
                found.inactive = values;
                found.knows_series = true;
            }
        }
        self.settle_absent(ri, &rule.name, def, &found, &active, now_ms, out);
        if !matches!(def.check, Check::Simple { .. }) {
            found.inactive.clear();
        }
        self.prune(ri, &rule.name, &active, &found.inactive);
        Ok(())
    }

    /// Drops every alert of rule `ri`, as Prometheus does when a rule exceeds its group's
    /// `limit`: no resolved notification (a receiver lets them expire), no transition. Each
    /// becomes inactive first, so the store learns it no longer fires, and is forgotten once
    /// that was handed to [`changes`](Self::changes).
    fn drop_all(&mut self, ri: usize, name: &str) {
        for inst in self
            .states
            .get_mut(name)
            .into_iter()
            .flat_map(|m| m.values_mut())
        {
            if inst.rule == ri {
                inst.status.active_since_ms = None;
                inst.status.firing_since_ms = None;
                inst.keep_since_ms = None;
                inst.status.state = AlertState::Inactive;
            }
        }
        self.prune(ri, name, &[], &BTreeMap::new());
    }

    /// Whether an active (pending or firing) instance of rule `ri` is not in `active`.
    fn any_absent(&self, ri: usize, name: &str, active: &[Active]) -> bool {
        (self.states.get(name).into_iter().flatten()).any(|(labels, i)| {
            i.rule == ri && i.status.state != AlertState::Inactive && !is_active(active, labels)
        })
    }

    /// The instances of rule `ri` not active at this evaluation: they resolve (with the value
    /// `found` has for them, else the last one, as stale for a simple rule), unless
    /// `keep_firing_for` keeps them firing.
    #[allow(clippy::too_many_arguments)] // One rule's evaluation, split for length.
    fn settle_absent(
        &mut self,
        ri: usize,
        name: &str,
        def: &AlertDef,
        found: &Found,
        active: &[Active],
        now_ms: u64,
        out: &mut Vec<Transition>,
    ) {
        let Some(instances) = self.states.get_mut(name) else {
            return;
        };
        for (labels, inst) in instances.iter_mut() {
            if inst.rule != ri || is_active(active, labels) {
                continue;
            }
            if inst.status.state == AlertState::Firing && def.keep_firing_for_ms > 0 {
                let since = *inst.keep_since_ms.get_or_insert(now_ms);
                if now_ms.saturating_sub(since) < def.keep_firing_for_ms {
                    continue;
                }
            }
            let fresh = match found.inactive.get(labels) {
                Some(v) => Some(v.unwrap_or(inst.status.value)),
                None if found.knows_series => None,
                None => Some(inst.status.value),
            };
            if let Some(v) = fresh {
                inst.status.value = v;
            }
            resolve(ri, inst, fresh, now_ms, out);
        }
    }

    /// One recording rule at `now_ms`: its samples, named and labelled, go to `source` (later
    /// rules read them) and to [`take_recorded`](Self::take_recorded).
    fn evaluate_record(
        &mut self,
        name: &str,
        expr: &Expr,
        labels: &BTreeMap<String, String>,
        limit: u64,
        over: &mut Over<'_, '_, '_>,
        now_ms: u64,
    ) -> Result<(), RuleError> {
        let t = i64::try_from(now_ms).unwrap_or(i64::MAX);
        let samples = match over.instant(expr, None, t).map(Arc::unwrap_or_clone) {
            Ok(Value::Vector(v)) => v,
            Ok(Value::Scalar(v)) => vec![Sample {
                metric: Metric::new(),
                value: v,
                ts: t,
            }],
            Ok(other) => {
                return Err(RuleError::Query(format!(
                    "a recording rule's expression must be an instant vector or a scalar, not {}",
                    other.type_name()
                )));
            }
            Err(e) => return Err(RuleError::Query(e)),
        };
        if limit > 0 && samples.len() as u64 > limit {
            return Err(RuleError::Limit(format!(
                "exceeded limit of {limit} with {} series",
                samples.len()
            )));
        }
        let mut metrics: Vec<(Metric, f64)> = samples
            .into_iter()
            .map(|s| {
                let mut m = s.metric;
                m.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
                m.insert(NAME.to_owned(), name.to_owned());
                (m, s.value)
            })
            .collect();
        metrics.sort_by(|a, b| a.0.cmp(&b.0));
        if metrics.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(RuleError::Query(
                "vector contains metrics with the same labelset after applying rule labels".into(),
            ));
        }
        if !metrics.is_empty() {
            // Memory changes: what was selected from it no longer holds.
            over.selections.clear();
        }
        for (m, v) in metrics {
            over.memory.record(m.clone(), t, v);
            let mut labels = m;
            labels.remove(NAME);
            let key = SeriesKey {
                name: name.to_owned(),
                labels,
            };
            self.recorded.push((key, now_ms, v));
        }
        Ok(())
    }

    /// Forgets the instances of rule `ri` whose series is gone (not in `seen`) once they are
    /// inactive and that state was handed to [`changes`](Self::changes): a firing one resolves
    /// first, and the store learns it resolved before it is forgotten, so a restart does not
    /// bring it back firing. A series that comes back starts a new instance.
    ///
    /// The series seen are those `active` (sorted by labels) and `inactive` hold.
    fn prune(
        &mut self,
        ri: usize,
        name: &str,
        active: &[Active],
        inactive: &BTreeMap<Labels, Option<f64>>,
    ) {
        let Some(instances) = self.states.get_mut(name) else {
            return;
        };
        instances.retain(|labels, inst| {
            inst.rule != ri
                || inst.status.state != AlertState::Inactive
                || is_active(active, labels)
                || inactive.contains_key(labels)
                || inst.exported != Some(stored(inst))
        });
        if instances.is_empty() {
            self.states.remove(name);
        }
    }

    /// Number of alert instances held.
    pub fn len(&self) -> usize {
        self.states.values().map(BTreeMap::len).sum()
    }

    /// Whether no instance is held.
    pub fn is_empty(&self) -> bool {
        self.states.values().all(BTreeMap::is_empty)
    }
}

/// What one rule is evaluated over: memory, and the store for a rule that reads further back.
struct Over<'o, 'm, 'a> {
    memory: &'o mut MemorySource<'a>,
    history: Option<&'m mut HistoryCache>,
    // Why the store could not be read at this evaluation, if it could not.
    history_error: &'o mut Option<String>,
    // What the rules over memory alone selected so far.
    selections: &'o Selections,
}

impl Over<'_, '_, '_> {
    /// `expr` at `t`, as an instant query; over memory alone, shared with the other rules that
    /// ask for the same `text` (`expr` formatted), when given.
    fn instant(&mut self, expr: &Expr, text: Option<&str>, t: i64) -> Result<Arc<Value>, String> {
        let result = match self.history.as_deref_mut() {
            None => {
                let ev = Evaluator::with_selections(&*self.memory, t, t, self.selections);
                match text {
                    Some(text) => ev.instant_shared(expr, text, t),
                    None => ev.instant(expr, t).map(Arc::new),
                }
            }
            Some(_) if self.history_error.is_some() => {
                return Err(crate::promql::Error::Storage(
                    self.history_error.clone().unwrap_or_default(),
                )
                .to_string());
            }
            Some(history) => {
                let source = StoredSource::new(&*self.memory, history);
                Evaluator::new(&source as &dyn Source, t, t)
                    .instant(expr, t)
                    .map(Arc::new)
            }
        };
        result.map_err(|e| e.to_string())
    }
}

/// What rule `def` finds at `now_ms`: its active instances and, for a simple rule, its series
/// whose condition does not hold.
fn find(def: &AlertDef, over: &mut Over<'_, '_, '_>, now_ms: u64) -> Result<Found, String> {
    let t = i64::try_from(now_ms).unwrap_or(i64::MAX);
    let expr = match &def.check {
        Check::Simple { selector, .. } => selector,
        Check::Expr(e) => e,
    };
    let answer = over.instant(expr, Some(&def.key), t)?;
    let samples = match &*answer {
        Value::Vector(v) => v,
        other => {
            return Err(format!(
                "an alerting rule's expression must be an instant vector, not {}",
                other.type_name()
            ));
        }
    };
    let source = &*over.memory;
    let mut found = Found {
        knows_series: matches!(def.check, Check::Simple { .. }),
        ..Found::default()
    };
    let no_external = BTreeMap::new();
    for s in samples {
        match &def.check {
            Check::Simple {
                condition,
                threshold,
                ..
            } => {
                let labels = (source.labels_of(&s.metric).cloned())
                    .unwrap_or_else(|| without_name(&s.metric));
                // NaN compares false with everything: an active instance resolves with the
                // last comparable value, and NaN never becomes an alert's value.
                if s.value.is_nan() {
                    found.inactive.insert(labels, None);
                } else if condition.holds(s.value, *threshold) {
                    found.active.push((labels, s.value, BTreeMap::new()));
                } else {
                    found.inactive.insert(labels, Some(s.value));
                }
            }
            Check::Expr(_) => {
                let mut base = without_name(&s.metric);
                if def.labels.is_empty() && def.annotations.is_empty() {
                    // Nothing to render: the sample's labels are the instance's.
                    base.retain(|_, v| !v.is_empty());
                    found.active.push((base, s.value, BTreeMap::new()));
                    continue;
                }
                let data = TemplateData {
                    labels: &base,
                    external_labels: &no_external,
                    value: s.value,
                };
                let mut labels = base.clone();
                for (k, t) in &def.labels {
                    labels.insert(k.clone(), render(t, &data));
                }
                labels.retain(|_, v| !v.is_empty());
                let annotations = (def.annotations.iter())
                    .map(|(k, t)| (k.clone(), render(t, &data)))
                    .collect();
                found.active.push((labels, s.value, annotations));
            }
        }
    }
    found.active.sort_by(|a, b| a.0.cmp(&b.0));
    if found.active.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(
            "vector contains metrics with the same labelset after applying alert labels".into(),
        );
    }
    Ok(found)
}

/// What the value side `side` of expression rule `def` returns at `now_ms`, keyed as the rule's
/// alerts are (the sample's labels with the rule's `labels`).
fn values_of(
    def: &AlertDef,
    (side, text): (&Expr, &str),
    over: &mut Over<'_, '_, '_>,
    now_ms: u64,
) -> Result<BTreeMap<Labels, Option<f64>>, String> {
    let t = i64::try_from(now_ms).unwrap_or(i64::MAX);
    let answer = over.instant(side, Some(text), t)?;
    let Value::Vector(samples) = &*answer else {
        return Err("not an instant vector".into());
    };
    let no_external = BTreeMap::new();
    let mut out = BTreeMap::new();
    for s in samples {
        let labels = without_name(&s.metric);
        let data = TemplateData {
            labels: &labels,
            external_labels: &no_external,
            value: s.value,
        };
        let mut keyed = labels.clone();
        for (k, t) in &def.labels {
            keyed.insert(k.clone(), render(t, &data));
        }
        keyed.retain(|_, v| !v.is_empty());
        out.insert(keyed, (!s.value.is_nan()).then_some(s.value));
    }
    Ok(out)
}

/// A template's text, or Prometheus's error text in its place.
fn render(t: &Template, data: &TemplateData<'_>) -> String {
    t.render(data)
        .unwrap_or_else(|e| format!("<error expanding template: {e}>"))
}

/// An instance whose condition holds at `now_ms`: pending, then firing once it held for `for`.
fn activate(
    ri: usize,
    rule: &AlertRule,
    inst: &mut Instance,
    now_ms: u64,
    out: &mut Vec<Transition>,
) {
    if inst.status.state == AlertState::Firing {
        inst.count_flaps(now_ms);
        return;
    }
    let since = *inst.status.active_since_ms.get_or_insert(now_ms);
    let held = now_ms.saturating_sub(since);
    if held >= rule.for_.as_millis() as u64 {
        inst.set_state(AlertState::Firing, now_ms);
        inst.status.firing_since_ms = Some(now_ms);
        out.push(Transition::Fired {
            rule: ri,
            labels: inst.status.labels.clone(),
            value: inst.status.value,
            at_ms: now_ms,
        });
    } else if inst.status.state != AlertState::Pending {
        inst.set_state(AlertState::Pending, now_ms);
        tracing::info!(
            alert = %rule.name,
            labels = ?inst.status.labels,
            value = inst.status.value,
            hold_for = ?rule.for_,
            "alert pending"
        );
    }
}

/// Ends an instance's activity; `fresh` is the current value, `None` when the series went stale or
/// vanished (the last value seen is reported then).
fn resolve(
    rule: usize,
    inst: &mut Instance,
    fresh: Option<f64>,
    now_ms: u64,
    out: &mut Vec<Transition>,
) {
    let st = &mut inst.status;
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
    st.active_since_ms = None;
    st.firing_since_ms = None;
    inst.keep_since_ms = None;
    inst.set_state(AlertState::Inactive, now_ms);
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

    /// An engine over the groups of a rule file (a `groups:` document).
    fn from_file(yaml: &str) -> AlertEngine {
        let groups = crate::rules::parse_rule_file(yaml, "r.yml").unwrap();
        let set = RuleSet {
            alerts: Vec::new(),
            groups,
        };
        let rules = CompiledRules::from_rule_set(&[], &set, Duration::from_secs(1));
        AlertEngine::new(rules, 10_000)
    }

    fn put_kind(
        store: &mut Store,
        name: &str,
        kind: SampleKind,
        labels: &[(&str, &str)],
        t: u64,
        v: f64,
    ) {
        let key = SeriesKey {
            name: name.into(),
            labels: (labels.iter())
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        store.insert(key, kind, "c", t, v);
    }

    fn fired(t: &[Transition]) -> usize {
        t.iter()
            .filter(|t| matches!(t, Transition::Fired { .. }))
            .count()
    }

    fn resolved(t: &[Transition]) -> usize {
        t.iter()
            .filter(|t| matches!(t, Transition::Resolved { .. }))
            .count()
    }

    #[test]
    fn rate_over_a_counter_fires_then_resolves() {
        let mut e = from_file(
            "groups:\n  - name: g\n    rules:\n      - alert: Fast\n        expr: rate(req_total[10s]) > 5\n",
        );
        let mut store = Store::new(u64::MAX);
        let mut total = 0.0;
        let mut events = Vec::new();
        // 10 per second for 30 s, then 1 per second.
        for s in 0..=60u64 {
            total += if s <= 30 { 10.0 } else { 1.0 };
            put_kind(
                &mut store,
                "req",
                SampleKind::Counter,
                &[("job", "a")],
                s * 1000,
                total,
            );
            for tr in e.evaluate(&store, s * 1000) {
                events.push((s, tr));
            }
        }
        assert_eq!(events.len(), 2, "{events:?}");
        let (at, Transition::Fired { labels, value, .. }) = &events[0] else {
            panic!("{events:?}")
        };
        // Extrapolated as Prometheus does: over a partly filled window the rate reaches 5 at
        // 5 s, 55 over the 10 s window (half an interval before the first sample).
        assert_eq!(*at, 5);
        assert_eq!(labels, &Labels::from([("job".to_owned(), "a".to_owned())]));
        assert!((value - 5.5).abs() < 1e-9, "{value}");
        let (at, Transition::Resolved { stale, .. }) = &events[1] else {
            panic!("{events:?}")
        };
        assert!(!stale);
        // Resolved once the 10 s window's rate fell to 5 or below.
        assert!((31..=40).contains(at), "resolved at {at}");
    }

    #[test]
    fn for_then_keep_firing_for() {
        let mut e = from_file(
            "groups:\n  - name: g\n    rules:\n      - alert: High\n        expr: g > 5\n        for: 10s\n        keep_firing_for: 5s\n",
        );
        let mut store = Store::new(u64::MAX);
        let key = ("High".to_owned(), Labels::new());
        let mut step = |e: &mut AlertEngine, t: u64, v: f64| {
            put_kind(&mut store, "g", SampleKind::Gauge, &[], t, v);
            e.evaluate(&store, t)
        };
        assert!(step(&mut e, 0, 9.0).is_empty());
        assert_eq!(e.status(&key).unwrap().state, AlertState::Pending);
        assert!(step(&mut e, 9_000, 9.0).is_empty(), "for not elapsed");
        assert_eq!(fired(&step(&mut e, 10_000, 9.0)), 1);
        // The condition stops: it keeps firing for 5 s, then resolves.
        assert!(step(&mut e, 11_000, 1.0).is_empty());
        assert!(step(&mut e, 15_000, 1.0).is_empty());
        assert!(e.is_firing(&key));
        let t = step(&mut e, 16_000, 1.0);
        assert!(
            matches!(
                t.as_slice(),
                [Transition::Resolved {
                    started_ms: 10_000,
                    ..
                }]
            ),
            "{t:?}"
        );
        // Back above: pending again, `for` counts anew.
        assert!(step(&mut e, 17_000, 9.0).is_empty());
        assert_eq!(e.status(&key).unwrap().state, AlertState::Pending);
        assert_eq!(
            e.status(&key).unwrap().flaps_per_hour,
            4,
            "pending, firing, inactive, pending"
        );
        // A blip within keep_firing_for does not resolve: the clock restarts when it is back.
        assert_eq!(fired(&step(&mut e, 27_000, 9.0)), 1);
        assert!(step(&mut e, 28_000, 1.0).is_empty());
        assert!(step(&mut e, 29_000, 9.0).is_empty());
        assert!(step(&mut e, 33_000, 1.0).is_empty());
        assert_eq!(resolved(&step(&mut e, 38_000, 1.0)), 1);
    }

    /// Three hours of `load{host="a"}` (a ramp) and the counter `req{host="a"}` every 10 s in a
    /// store in `dir`, the last hour of them in memory; returns memory and the last point's time.
    fn three_hours_stored(dir: &std::path::Path) -> (Store, u64) {
        use crate::history::Persistence;
        const T0: u64 = 1_800_000_000_000;
        const HOUR: u64 = 3_600_000;
        let day = Duration::from_secs(86_400);
        let (mut p, _) = Persistence::open(dir, day, day, Duration::from_secs(3600), T0).unwrap();
        let end = T0 + 3 * HOUR - 10_000;
        let key = |name: &str| SeriesKey {
            name: name.into(),
            labels: Labels::from([("host".to_owned(), "a".to_owned())]),
        };
        let mut memory = Store::new(HOUR);
        for ts in (T0..=end).step_by(10_000) {
            let load = ((ts - T0) / 10_000) as f64;
            let req = ((ts - T0) / 10_000 * 3) as f64;
            p.batch()
                .point(&key("load"), SampleKind::Gauge, "c", ts, load);
            p.batch()
                .point(&key("req"), SampleKind::Counter, "c", ts, req);
            if ts >= end - HOUR {
                memory.insert(key("load"), SampleKind::Gauge, "c", ts, load);
                memory.insert(key("req"), SampleKind::Counter, "c", ts, req);
            }
        }
        p.commit(end);
        (memory, end)
    }

    /// A rule file of one group recording each `(name, query)`.
    fn recording_file(queries: &[(&str, &str)]) -> String {
        let mut yaml = String::from("groups:\n  - name: g\n    rules:\n");
        for (name, q) in queries {
            yaml.push_str(&format!("      - record: {name}\n        expr: {q}\n"));
        }
        yaml
    }

    /// Asserts that each recorded value in `got` is what the query API answers over the store.
    fn store_agrees(
        database: &std::path::Path,
        queries: &[(&str, &str)],
        got: &BTreeMap<String, f64>,
        end: u64,
    ) {
        let reader = crate::history::Reader::open(database).unwrap().unwrap();
        for (name, q) in queries {
            let want = match crate::promql::instant_query(&reader, q, end as i64).unwrap() {
                Value::Vector(v) if v.len() == 1 => v[0].value,
                other => panic!("{q}: {other:?}"),
            };
            assert_eq!(got.get(*name), Some(&want), "{q}");
        }
    }

    #[test]
    fn rules_reading_further_back_than_memory_answer_as_the_query_api_over_the_store() {
        let dir = std::env::temp_dir().join(format!("monitor-long-rules-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (memory, end) = three_hours_stored(&dir);
        let queries = [
            ("r:avg", "avg_over_time(load[2h])"),
            ("r:offset", "load offset 90m"),
            ("r:increase", "increase(req_total[150m])"),
            ("r:max_offset", "max_over_time(load[30m] offset 2h)"),
            ("r:short", "avg_over_time(load[10m])"),
        ];
        let mut yaml = recording_file(&queries);
        yaml.push_str("      - alert: LongAvg\n        expr: r:avg < 800\n");
        let database = dir.join(crate::history::DATABASE_FILE);
        let recorded = |e: &mut AlertEngine, t: u64| -> (usize, BTreeMap<String, f64>) {
            let fired = fired(&e.evaluate(&memory, t));
            let values = (e.take_recorded().into_iter())
                .map(|(k, _, v)| (k.name, v))
                .collect();
            (fired, values)
        };
        let mut e = from_file(&yaml);
        e.attach_history(&database, Duration::from_secs(3600));
        let (fired, got) = recorded(&mut e, end);
        assert_eq!(fired, 1, "the alert reads the recorded long average");
        store_agrees(&database, &queries, &got, end);
        // The store was read once; a later evaluation reads only what left memory since.
        let (_, read) = e.history_points().unwrap();
        assert!(read > 0);
        let (_, again) = recorded(&mut e, end + 1000);
        assert_eq!(again.len(), queries.len());
        assert_eq!(e.history_points().unwrap().1, read);
        // Over memory alone, the windows reaching back before memory's hour differ.
        let mut memory_only = from_file(&yaml);
        let (fired, alone) = recorded(&mut memory_only, end);
        assert_eq!(fired, 0);
        assert_ne!(alone.get("r:avg"), got.get("r:avg"));
        assert_eq!(alone.get("r:offset"), None);
        assert_eq!(alone.get("r:short"), got.get("r:short"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn windows_that_memory_holds_whole_do_not_read_the_store() {
        let dir = std::env::temp_dir().join(format!("monitor-hour-rules-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (memory, end) = three_hours_stored(&dir);
        let queries = [
            ("r:avg", "avg_over_time(load[1h])"),
            ("r:rate", "rate(req_total[1h])"),
            ("r:offset", "load offset 55m"),
        ];
        let yaml = recording_file(&queries);
        let database = dir.join(crate::history::DATABASE_FILE);
        let mut e = from_file(&yaml);
        e.attach_history(&database, Duration::from_secs(3600));
        e.evaluate(&memory, end);
        let got: BTreeMap<String, f64> = (e.take_recorded().into_iter())
            .map(|(k, _, v)| (k.name, v))
            .collect();
        assert_eq!(
            e.history_points().unwrap().1,
            0,
            "nothing read from the store"
        );
        store_agrees(&database, &queries, &got, end);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_recording_rule_is_read_by_a_later_alert_of_its_group_at_once() {
        let mut e = from_file(
            "groups:\n  - name: g\n    rules:\n      - record: job:g:sum\n        expr: sum by (job) (g)\n        labels:\n          via: rule\n      - alert: Sum\n        expr: job:g:sum > 10\n",
        );
        let mut store = Store::new(u64::MAX);
        put_kind(
            &mut store,
            "g",
            SampleKind::Gauge,
            &[("job", "a"), ("i", "1")],
            0,
            6.0,
        );
        put_kind(
            &mut store,
            "g",
            SampleKind::Gauge,
            &[("job", "a"), ("i", "2")],
            0,
            7.0,
        );
        let t = e.evaluate(&store, 0);
        let labels = Labels::from([
            ("job".to_owned(), "a".to_owned()),
            ("via".to_owned(), "rule".to_owned()),
        ]);
        assert!(
            matches!(t.as_slice(), [Transition::Fired { value, labels: l, .. }] if *value == 13.0 && *l == labels),
            "{t:?}"
        );
        let recorded = e.take_recorded();
        assert_eq!(
            recorded,
            vec![(
                SeriesKey {
                    name: "job:g:sum".into(),
                    labels
                },
                0,
                13.0
            )]
        );
        assert!(e.take_recorded().is_empty());
    }

    #[test]
    fn labels_and_annotations_are_rendered_with_the_sample() {
        let mut e = from_file(concat!(
            "groups:\n  - name: g\n    rules:\n      - alert: Disk\n        expr: disk_used > 0.5\n",
            "        labels:\n          severity: critical\n          where: \"{{ $labels.mount }}\"\n",
            "        annotations:\n          summary: \"{{ $labels.mount }} is {{ $value | humanizePercentage }} full\"\n",
        ));
        let mut store = Store::new(u64::MAX);
        put_kind(
            &mut store,
            "disk_used",
            SampleKind::Gauge,
            &[("mount", "/var")],
            0,
            0.75,
        );
        let t = e.evaluate(&store, 0);
        let Transition::Fired { labels, .. } = &t[0] else {
            panic!("{t:?}")
        };
        assert_eq!(labels["where"], "/var");
        assert_eq!(labels["severity"], "critical");
        let st = e.status(&("Disk".to_owned(), labels.clone())).unwrap();
        assert_eq!(st.annotations["summary"], "/var is 75% full");
        assert_eq!(e.rules()[0].severity, Severity::Critical);
        assert_eq!(e.rules()[0].metric, "disk_used");
        assert_eq!(e.expr(0), Some("disk_used > 0.5"));
    }

    #[test]
    fn annotations_are_stored_and_restored_with_the_state() {
        let yaml = concat!(
            "groups:\n  - name: g\n    rules:\n      - alert: Disk\n        expr: disk_used > 0.5\n",
            "        annotations:\n          summary: \"{{ $value | humanizePercentage }} full\"\n",
        );
        let mut store = Store::new(u64::MAX);
        let mut e = from_file(yaml);
        put_kind(&mut store, "disk_used", SampleKind::Gauge, &[], 0, 0.75);
        assert_eq!(fired(&e.evaluate(&store, 0)), 1);
        let saved = e.changes();
        assert_eq!(saved[0].annotations["summary"], "75% full");
        put_kind(&mut store, "disk_used", SampleKind::Gauge, &[], 1_000, 0.75);
        e.evaluate(&store, 1_000);
        assert!(e.changes().is_empty(), "nothing changed");
        put_kind(&mut store, "disk_used", SampleKind::Gauge, &[], 2_000, 0.8);
        e.evaluate(&store, 2_000);
        let saved = e.changes();
        assert_eq!(saved.len(), 1, "the annotation changed");
        assert_eq!(saved[0].annotations["summary"], "80% full");

        let mut after = from_file(yaml);
        after.restore(saved);
        assert!(after.changes().is_empty(), "restored as stored");
        let alerts = after.prometheus_alerts();
        assert_eq!(
            alerts["data"]["alerts"][0]["annotations"]["summary"],
            "80% full"
        );
    }

    #[test]
    fn only_state_times_and_annotations_are_handed_to_the_store() {
        let yaml = concat!(
            "groups:\n  - name: g\n    rules:\n",
            "      - alert: Hot\n        expr: temp > 50\n        for: 10s\n",
            "      - alert: Hot\n        expr: temp > 80\n        labels:\n          level: high\n",
        );
        let mut store = Store::new(u64::MAX);
        let mut e = from_file(yaml);
        let mut step = |t: u64, v: f64| {
            put_kind(
                &mut store,
                "temp",
                SampleKind::Gauge,
                &[("room", "a")],
                t,
                v,
            );
            e.evaluate(&store, t);
            (e.changes().iter())
                .map(|s| (s.labels.len(), s.state, s.value))
                .collect::<Vec<_>>()
        };
        assert_eq!(step(0, 60.0), [(1, AlertState::Pending, 60.0)]);
        // Pending longer, with another value: nothing the store keeps changed.
        assert_eq!(step(1_000, 70.0), []);
        assert_eq!(step(2_000, 75.0), []);
        // The second rule of the name, with its own labels, fires at once; the first still waits.
        assert_eq!(step(3_000, 85.0), [(2, AlertState::Firing, 85.0)]);
        assert_eq!(step(10_000, 90.0), [(1, AlertState::Firing, 90.0)]);
        assert_eq!(step(11_000, 95.0), []);
        assert_eq!(
            step(12_000, 10.0),
            [
                (2, AlertState::Inactive, 10.0),
                (1, AlertState::Inactive, 10.0)
            ]
        );
        assert_eq!(step(13_000, 10.0), []);
        assert!(e.is_empty(), "resolved, stored, then forgotten");
    }

    fn up(i: &str) -> SeriesKey {
        SeriesKey {
            name: "up".into(),
            labels: Labels::from([("i".to_owned(), i.to_owned())]),
        }
    }

    /// Collector `c` returns `up{i}` for each of `series` at `t` (value 1), as the engine
    /// tells the alert engine after a collection.
    fn collect(e: &mut AlertEngine, store: &mut Store, series: &[&str], t: u64) {
        let mut ids = Vec::new();
        for i in series {
            let id = store.intern(up(i), SampleKind::Gauge, "c").unwrap();
            store.push_id(id, SampleKind::Gauge, t, 1.0);
            ids.push(id);
        }
        e.collected("c", ids, t);
    }

    fn resolutions(t: &[Transition]) -> Vec<(Labels, f64, bool, u64)> {
        (t.iter())
            .filter_map(|t| match t {
                Transition::Resolved {
                    labels,
                    value,
                    stale,
                    at_ms,
                    ..
                } => Some((labels.clone(), *value, *stale, *at_ms)),
                Transition::Fired { .. } => None,
            })
            .collect()
    }

    #[test]
    fn an_alert_resolves_as_stale_at_the_first_collection_that_lacks_its_series() {
        // Stale after 10 s without a sample; collected every second.
        let mut e = from_file(
            "groups:\n  - name: g\n    rules:\n      - alert: Up\n        expr: up > 0\n",
        );
        let mut simple_rule = rule(Condition::Above, 0.0, 0);
        simple_rule.metric = "up".into();
        let mut simple = AlertEngine::new(vec![simple_rule], 10_000);
        let mut store = Store::new(u64::MAX);
        for e in [&mut e, &mut simple] {
            collect(e, &mut store, &["1", "2"], 0);
            assert_eq!(fired(&e.evaluate(&store, 0)), 2);
        }
        let gone = Labels::from([("i".to_owned(), "2".to_owned())]);
        for e in [&mut e, &mut simple] {
            // `i=2` is not in the next collection: resolved at the next evaluation, as stale
            // with its last value, not 10 s later.
            collect(e, &mut store, &["1"], 1_000);
            let t = e.evaluate(&store, 1_000);
            assert_eq!(resolutions(&t), [(gone.clone(), 1.0, true, 1_000)]);
        }
        // A failed collection: every series of the collector is stale.
        for e in [&mut e, &mut simple] {
            e.collected("c", Vec::new(), 2_000);
            let t = e.evaluate(&store, 2_000);
            assert_eq!(resolved(&t), 1, "{t:?}");
        }
    }

    #[test]
    fn an_expression_alert_whose_series_is_there_resolves_with_its_value_not_as_stale() {
        let mut e = from_file(
            "groups:\n  - name: g\n    rules:\n      - alert: High\n        expr: g > 5\n        labels:\n          at: \"{{ $labels.host }}\"\n",
        );
        let mut store = Store::new(u64::MAX);
        put_kind(&mut store, "g", SampleKind::Gauge, &[("host", "a")], 0, 9.0);
        assert_eq!(fired(&e.evaluate(&store, 0)), 1);
        put_kind(
            &mut store,
            "g",
            SampleKind::Gauge,
            &[("host", "a")],
            1_000,
            2.0,
        );
        let labels = Labels::from([
            ("at".to_owned(), "a".to_owned()),
            ("host".to_owned(), "a".to_owned()),
        ]);
        let t = e.evaluate(&store, 1_000);
        assert_eq!(resolutions(&t), [(labels, 2.0, false, 1_000)]);
    }

    #[test]
    fn a_simple_rule_on_a_counter_reads_its_total() {
        let mut r = rule(Condition::Above, 10.0, 0);
        r.metric = "req".into();
        let mut e = AlertEngine::new(vec![r], 60_000);
        assert_eq!(e.expr(0), None);
        let mut store = Store::new(u64::MAX);
        put_kind(
            &mut store,
            "req",
            SampleKind::Counter,
            &[("a.b", "x")],
            0,
            50.0,
        );
        let t = e.evaluate(&store, 0);
        assert!(
            matches!(t.as_slice(), [Transition::Fired { labels, .. }] if labels["a.b"] == "x"),
            "the store's own labels: {t:?}"
        );
    }

    #[test]
    fn past_its_groups_limit_a_rule_is_in_error_and_its_alerts_are_dropped_unresolved() {
        let mut e = from_file(
            "groups:\n  - name: g\n    limit: 1\n    rules:\n      - alert: Up\n        expr: up > 0\n",
        );
        let mut store = Store::new(u64::MAX);
        put_kind(&mut store, "up", SampleKind::Gauge, &[("i", "1")], 0, 1.0);
        assert_eq!(fired(&e.evaluate(&store, 0)), 1);
        assert!(e.rule_errors().is_empty());
        put_kind(
            &mut store,
            "up",
            SampleKind::Gauge,
            &[("i", "1")],
            1_000,
            1.0,
        );
        put_kind(
            &mut store,
            "up",
            SampleKind::Gauge,
            &[("i", "2")],
            1_000,
            1.0,
        );
        let logs = logged(|| assert!(e.evaluate(&store, 1_000).is_empty(), "no resolution"));
        assert!(logs.contains("exceeded limit of 1 with 2 alerts"), "{logs}");
        let errors: Vec<&String> = e.rule_errors().values().collect();
        assert_eq!(errors, ["exceeded limit of 1 with 2 alerts"]);
        assert_eq!(
            e.statuses()
                .filter(|s| s.state != AlertState::Inactive)
                .count(),
            0
        );
        assert_eq!(
            e.prometheus_alerts()["data"]["alerts"],
            serde_json::json!([]),
            "dropped"
        );
        let rules = e.prometheus_rules(Duration::from_secs(1));
        let rule = &rules["data"]["groups"][1]["rules"][0];
        assert_eq!(rule["health"], "err");
        assert_eq!(rule["lastError"], "exceeded limit of 1 with 2 alerts");
        assert_eq!(rule["alerts"], serde_json::json!([]));
        // The store learns the dropped alert no longer fires, then it is forgotten.
        let changes = e.changes();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].state, AlertState::Inactive);
        put_kind(
            &mut store,
            "up",
            SampleKind::Gauge,
            &[("i", "1")],
            2_000,
            1.0,
        );
        put_kind(
            &mut store,
            "up",
            SampleKind::Gauge,
            &[("i", "2")],
            2_000,
            1.0,
        );
        assert!(e.evaluate(&store, 2_000).is_empty());
        assert!(e.is_empty());
        // Back under the limit: a new alert, fired and notified again.
        put_kind(
            &mut store,
            "up",
            SampleKind::Gauge,
            &[("i", "1")],
            3_000,
            1.0,
        );
        put_kind(
            &mut store,
            "up",
            SampleKind::Gauge,
            &[("i", "2")],
            3_000,
            0.0,
        );
        assert_eq!(fired(&e.evaluate(&store, 3_000)), 1);
        assert!(e.rule_errors().is_empty());
    }

    #[test]
    fn a_group_is_evaluated_at_its_interval() {
        let mut e = from_file(
            "groups:\n  - name: g\n    interval: 10s\n    rules:\n      - alert: Up\n        expr: up > 0\n",
        );
        let mut store = Store::new(u64::MAX);
        put_kind(&mut store, "up", SampleKind::Gauge, &[], 0, 0.0);
        assert!(e.evaluate(&store, 0).is_empty());
        put_kind(&mut store, "up", SampleKind::Gauge, &[], 5_000, 1.0);
        assert!(e.evaluate(&store, 5_000).is_empty(), "not due");
        assert_eq!(fired(&e.evaluate(&store, 10_000)), 1);
    }

    #[test]
    fn a_late_evaluation_counts_the_iterations_it_missed() {
        let mut e = from_file(
            "groups:\n  - name: g\n    interval: 10s\n    rules:\n      - alert: Up\n        expr: up > 0\n",
        );
        let mut store = Store::new(u64::MAX);
        put_kind(&mut store, "up", SampleKind::Gauge, &[], 0, 0.0);
        let counts = |e: &AlertEngine| e.group_iterations().map(|(_, d, m)| (d, m)).next();
        e.evaluate(&store, 0);
        e.evaluate(&store, 9_500);
        assert_eq!(counts(&e), Some((2, 0)), "a little early is on time");
        e.evaluate(&store, 35_000);
        assert_eq!(
            counts(&e),
            Some((4, 1)),
            "25.5 s late: the one at 19.5 s was missed"
        );
        e.evaluate(&store, 45_000);
        assert_eq!(counts(&e), Some((5, 1)));
        // A reload keeping the group keeps its counts.
        let same = from_file(
            "groups:\n  - name: g\n    interval: 10s\n    rules:\n      - alert: Up\n        expr: up > 1\n",
        );
        e.replace_rules(Arc::try_unwrap(same.rules).unwrap(), 60_000);
        e.evaluate(&store, 70_000);
        assert_eq!(counts(&e), Some((6, 1)));
        // Cycles every second (the host's interval): the group runs every 10 s, not every 9.
        let mut e = from_file(
            "groups:\n  - name: g\n    interval: 10s\n    rules:\n      - alert: Up\n        expr: up > 0\n",
        );
        for t in 0..=45 {
            e.evaluate(&store, t * 1_000);
        }
        assert_eq!(
            counts(&e),
            Some((5, 0)),
            "at 0, 10, 20, 30 and 40 s (not 0, 9, ..., 45)"
        );
        let group = |interval_ms| Group {
            name: String::new(),
            file: String::new(),
            interval_ms,
            leeway_ms: 1_000,
            limit: 0,
            steps: Vec::new(),
        };
        assert_eq!(missed_iterations(None, &group(Some(10_000)), 5), 0);
        assert_eq!(missed_iterations(Some(0), &group(None), 99_000), 0);
    }

    #[test]
    fn a_failing_query_leaves_the_state_alone() {
        // Two series with the same labels once `__name__` is dropped: an execution error.
        let mut e = from_file(
            "groups:\n  - name: g\n    rules:\n      - alert: Both\n        expr: abs({job=\"a\"}) > 0\n",
        );
        let mut store = Store::new(u64::MAX);
        put_kind(&mut store, "x", SampleKind::Gauge, &[("job", "a")], 0, 1.0);
        assert_eq!(fired(&e.evaluate(&store, 0)), 1);
        put_kind(
            &mut store,
            "y",
            SampleKind::Gauge,
            &[("job", "a")],
            1_000,
            1.0,
        );
        assert!(e.evaluate(&store, 1_000).is_empty());
        assert_eq!(e.rule_errors().len(), 1);
        assert!(e.is_firing(&(
            "Both".to_owned(),
            Labels::from([("job".to_owned(), "a".to_owned())])
        )));
    }
}
