//! The pattern learner: finds sequence, frequency, correlation and temporal
//! patterns in a bounded history of events.
//!
//! Recording interns the event's kind and agent to small integer ids and
//! keeps a 16-byte entry per event, so memory is `O(max_history_size)` and
//! recording allocates only for a kind or agent never seen before. Learning
//! sorts the history by time (skipped when already in order), buckets it by
//! agent with a counting sort, and runs one linear pass per pattern kind:
//!
//! | kind | finds | confidence |
//! |---|---|---|
//! | [`sequence`] | repeated n-grams of kinds, per agent | the smaller of: the share of the first kind's occurrences followed by the rest (Wilson lower bound), and per step the certainty factor of P(next kind \| the kinds before) (Wilson lower bound) against how often that kind follows any event |
//! | [`frequency`] | a kind recurring at a regular interval, per agent | `1 - cv` of the intervals (upper bound of the deviation) |
//! | [`correlation`] | B following A within a window more often than chance | certainty factor of P(B within window after A) (Wilson lower bound) against P(B within window after any event) |
//! | [`temporal`] | a kind concentrated in an hour-of-day or day-of-week window | certainty factor of the kind's share in the window (Wilson lower bound) against all events' share |
//!
//! Each module documents its confidence exactly. Every confidence is a
//! conservative bound rather than a point estimate, so a handful of lucky
//! events cannot reach the threshold. A pattern is reported when
//! its occurrences reach `min_occurrences` and its confidence reaches
//! `confidence_threshold`.

pub mod correlation;
pub mod frequency;
pub mod sequence;
pub mod temporal;

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::event::Event;
use super::intern::Interner;

/// Settings of a [`PatternLearner`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PatternConfig {
    /// The fewest occurrences a pattern needs to be reported (default 5).
    pub min_occurrences: u64,
    /// The lowest confidence, in [0, 1], a pattern needs to be reported
    /// (default 0.7).
    pub confidence_threshold: f64,
    /// The most events kept; older events are forgotten first (default 100,000).
    pub max_history_size: usize,
    /// The longest sequence looked for, in events, from 2 to 16 (default 5).
    pub max_sequence_len: usize,
    /// The longest pause inside a sequence, in milliseconds: two events of
    /// one agent further apart than this never belong to one sequence
    /// (default `None`: no limit).
    pub max_sequence_gap_ms: Option<u64>,
    /// How long after an event another counts as correlated with it, in
    /// milliseconds (default 10,000).
    pub correlation_window_ms: u64,
    /// How many of the most frequent kinds are examined for correlations,
    /// at most 64 (default 64).
    pub max_correlation_kinds: usize,
    /// The offset of local time from UTC for temporal patterns, in minutes
    /// (default 0: hours and days are UTC).
    pub utc_offset_minutes: i32,
    /// What chance predicts for a temporal window (default
    /// [`TemporalBaseline::Events`]).
    pub temporal_baseline: TemporalBaseline,
}

/// What a temporal pattern's window is compared with (see [`temporal`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemporalBaseline {
    /// The share of all events falling in the window: a kind is temporal
    /// when it is more concentrated than the overall activity, so a system
    /// busy only in office hours does not make every kind temporal. Right
    /// for dense streams.
    #[default]
    Events,
    /// The share of the clock the window covers (one hour of a day is
    /// 1/24): a kind is temporal when it keeps to a time of day or week.
    /// Right for sparse streams such as alert transitions, whose other
    /// kinds say little about when anything would happen by chance.
    Clock,
}

impl Default for PatternConfig {
    fn default() -> Self {
        PatternConfig {
            min_occurrences: 5,
            confidence_threshold: 0.7,
            max_history_size: 100_000,
            max_sequence_len: 5,
            max_sequence_gap_ms: None,
            correlation_window_ms: 10_000,
            max_correlation_kinds: 64,
            utc_offset_minutes: 0,
            temporal_baseline: TemporalBaseline::Events,
        }
    }
}

/// The four kinds of pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternKind {
    /// A repeated sequence of event kinds.
    Sequence,
    /// A kind recurring at a regular interval.
    Frequency,
    /// One kind following another more often than chance.
    Correlation,
    /// A kind concentrated in a time-of-day or day-of-week window.
    Temporal,
}

impl PatternKind {
    /// All four, in report order.
    pub const ALL: [PatternKind; 4] = [
        PatternKind::Sequence,
        PatternKind::Frequency,
        PatternKind::Correlation,
        PatternKind::Temporal,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PatternKind::Sequence => "sequence",
            PatternKind::Frequency => "frequency",
            PatternKind::Correlation => "correlation",
            PatternKind::Temporal => "temporal",
        }
    }
}

/// A learned pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pattern {
    /// A stable identifier built from the kind and the events
    /// (`sequence:task_start>agent_assigned>task_complete`).
    pub id: String,
    /// Which kind of pattern.
    pub kind: PatternKind,
    /// One line for a human ("heartbeat every 5.0 s (+/- 0.2 s)").
    pub description: String,
    /// The event kinds the pattern is made of, in order.
    pub events: Vec<String>,
    /// How sure the learner is, in [0, 1]; each kind's module says how it is
    /// computed.
    pub confidence: f64,
    /// How many times the pattern occurred.
    pub occurrences: u64,
    /// When it was first seen, in milliseconds since the Unix epoch.
    pub first_seen_ms: u64,
    /// When it was last seen, in milliseconds since the Unix epoch.
    pub last_seen_ms: u64,
    /// The figures behind the pattern (intervals, lift, window, ...).
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// One remembered event: 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) ts: u64,
    pub(crate) kind: u32,
    /// Agent id; 0 is "no agent".
    pub(crate) agent: u32,
}

/// The history prepared for learning: sorted by time, and bucketed by agent.
pub(crate) struct Prepared<'a> {
    pub(crate) config: &'a PatternConfig,
    pub(crate) kinds: &'a Interner,
    pub(crate) agents: &'a Interner,
    /// Every entry, ordered by time (stable for equal times).
    pub(crate) by_time: Vec<Entry>,
    /// The same entries grouped by agent, each group in time order.
    pub(crate) by_agent: Vec<Entry>,
    /// `by_agent[agent_start[a]..agent_start[a + 1]]` is agent `a`'s group.
    pub(crate) agent_start: Vec<usize>,
    /// Occurrences of each kind.
    pub(crate) kind_count: Vec<u64>,
    /// First time each kind was seen.
    pub(crate) kind_first: Vec<u64>,
    /// Last time each kind was seen.
    pub(crate) kind_last: Vec<u64>,
}

impl Prepared<'_> {
    pub(crate) fn kind_name(&self, id: u32) -> &str {
        self.kinds.name(id)
    }

    /// The agent's name, `None` for "no agent".
    pub(crate) fn agent_name(&self, id: u32) -> Option<&str> {
        (id != 0).then(|| self.agents.name(id))
    }
}

/// Learns patterns from a bounded history of events.
///
/// Recording takes `&mut self`; share one between threads behind a `Mutex`.
/// Learning takes `&self` and costs `O(n log n)` in the history held (the
/// sort is skipped when events arrive in time order, making it linear).
///
/// ```
/// use monitor_core::analytics::{PatternConfig, PatternKind, PatternLearner};
///
/// let mut learner = PatternLearner::new(PatternConfig::default());
/// for i in 0..20u64 {
///     learner.record("heartbeat", Some("agent-1"), i * 5_000);
/// }
/// let patterns = learner.learn_patterns();
/// assert!(patterns.iter().any(|p| p.kind == PatternKind::Frequency));
/// ```
#[derive(Debug, Clone)]
pub struct PatternLearner {
    config: PatternConfig,
    kinds: Interner,
    agents: Interner,
    history: VecDeque<Entry>,
}

impl Default for PatternLearner {
    fn default() -> Self {
        PatternLearner::new(PatternConfig::default())
    }
}

impl PatternLearner {
    /// A learner with an empty history.
    pub fn new(config: PatternConfig) -> Self {
        let mut agents = Interner::default();
        agents.intern(""); // id 0: no agent
        PatternLearner {
            config,
            kinds: Interner::default(),
            agents,
            history: VecDeque::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &PatternConfig {
        &self.config
    }

    /// Remembers `event`'s kind, agent and time.
    pub fn record_event(&mut self, event: &Event) {
        self.record(
            event.kind.as_str(),
            event.agent_id.as_deref(),
            event.timestamp_ms,
        );
    }

    /// Remembers an event of `kind` from `agent` at `timestamp_ms`
    /// (milliseconds since the Unix epoch), forgetting the oldest one when
    /// the history is full. Amortised `O(1)`; allocates only for a kind or
    /// agent not seen before.
    pub fn record(&mut self, kind: &str, agent: Option<&str>, timestamp_ms: u64) {
        let kind = self.kinds.intern(kind);
        let agent = match agent {
            Some(a) if !a.is_empty() => self.agents.intern(a),
            _ => 0,
        };
        let cap = self.config.max_history_size.max(1);
        while self.history.len() >= cap {
            self.history.pop_front();
        }
        self.history.push_back(Entry {
            ts: timestamp_ms,
            kind,
            agent,
        });
        // Kinds and agents that left the history would otherwise pile up in
        // the interners; rebuild them once they outnumber the history, which
        // keeps memory O(max_history_size) at amortised O(1) per event.
        if self.kinds.len() + self.agents.len() > 2 * cap + 1024 {
            self.compact();
        }
    }

    /// Remembers every event of `events`, in order.
    pub fn record_all<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) {
        for e in events {
            self.record_event(e);
        }
    }

    /// How many events are remembered.
    pub fn len(&self) -> usize {
        self.history.len()
    }

    /// Whether no event is remembered.
    pub fn is_empty(&self) -> bool {
        self.history.is_empty()
    }

    /// Forgets every event.
    pub fn clear(&mut self) {
        *self = PatternLearner::new(self.config.clone());
    }

    fn compact(&mut self) {
        let mut kinds = Interner::default();
        let mut agents = Interner::default();
        agents.intern("");
        let mut kind_map = vec![u32::MAX; self.kinds.len()];
        let mut agent_map = vec![u32::MAX; self.agents.len()];
        agent_map[0] = 0;
        for e in &mut self.history {
            let k = &mut kind_map[e.kind as usize];
            if *k == u32::MAX {
                *k = kinds.intern(self.kinds.name(e.kind));
            }
            e.kind = *k;
            let a = &mut agent_map[e.agent as usize];
            if *a == u32::MAX {
                *a = agents.intern(self.agents.name(e.agent));
            }
            e.agent = *a;
        }
        self.kinds = kinds;
        self.agents = agents;
    }

    /// Learns all four kinds of pattern from the history: sequences first,
    /// then frequencies, correlations and temporal patterns, each by
    /// descending confidence.
    pub fn learn_patterns(&self) -> Vec<Pattern> {
        let prepared = self.prepare();
        let mut out = Vec::new();
        for kind in PatternKind::ALL {
            out.extend(learn_kind(&prepared, kind));
        }
        out
    }

    /// Learns one kind of pattern from the history.
    pub fn learn(&self, kind: PatternKind) -> Vec<Pattern> {
        learn_kind(&self.prepare(), kind)
    }

    fn prepare(&self) -> Prepared<'_> {
        let mut by_time: Vec<Entry> = self.history.iter().copied().collect();
        if !by_time.is_sorted_by_key(|e| e.ts) {
            by_time.sort_by_key(|e| e.ts); // stable: equal times keep arrival order
        }
        let n_kinds = self.kinds.len();
        let mut kind_count = vec![0u64; n_kinds];
        let mut kind_first = vec![u64::MAX; n_kinds];
        let mut kind_last = vec![0u64; n_kinds];
        let mut agent_start = vec![0usize; self.agents.len() + 1];
        for e in &by_time {
            let k = e.kind as usize;
            kind_count[k] += 1;
            kind_first[k] = kind_first[k].min(e.ts);
            kind_last[k] = kind_last[k].max(e.ts);
            agent_start[e.agent as usize + 1] += 1;
        }
        for a in 1..agent_start.len() {
            agent_start[a] += agent_start[a - 1];
        }
        // Counting sort by agent; stable, so each group stays in time order.
        let mut cursor = agent_start.clone();
        let mut by_agent = vec![
            Entry {
                ts: 0,
                kind: 0,
                agent: 0
            };
            by_time.len()
        ];
        for e in &by_time {
            let slot = &mut cursor[e.agent as usize];
            by_agent[*slot] = *e;
            *slot += 1;
        }
        Prepared {
            config: &self.config,
            kinds: &self.kinds,
            agents: &self.agents,
            by_time,
            by_agent,
            agent_start,
            kind_count,
            kind_first,
            kind_last,
        }
    }
}

fn learn_kind(p: &Prepared<'_>, kind: PatternKind) -> Vec<Pattern> {
    let mut out = match kind {
        PatternKind::Sequence => sequence::learn(p),
        PatternKind::Frequency => frequency::learn(p),
        PatternKind::Correlation => correlation::learn(p),
        PatternKind::Temporal => temporal::learn(p),
    };
    out.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then(b.occurrences.cmp(&a.occurrences))
            .then_with(|| a.id.cmp(&b.id))
    });
    out
}

/// Whether a candidate passes the learner's thresholds.
pub(crate) fn passes(config: &PatternConfig, occurrences: u64, confidence: f64) -> bool {
    occurrences >= config.min_occurrences.max(1) && confidence >= config.confidence_threshold
}

/// Rounds to 4 decimals so JSON stays readable.
pub(crate) fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_bounded_and_compacts() {
        let mut l = PatternLearner::new(PatternConfig {
            max_history_size: 10,
            ..PatternConfig::default()
        });
        for i in 0..10_000u64 {
            l.record(&format!("k{i}"), Some(&format!("a{i}")), i);
        }
        assert_eq!(l.len(), 10);
        assert!(l.kinds.len() + l.agents.len() <= 2 * 10 + 1024 + 2);
        let p = l.prepare();
        assert_eq!(p.kind_name(p.by_time[9].kind), "k9999");
        assert_eq!(p.agent_name(p.by_time[9].agent), Some("a9999"));
    }

    #[test]
    fn prepare_sorts_and_buckets() {
        let mut l = PatternLearner::default();
        l.record("b", Some("x"), 20);
        l.record("a", None, 10);
        l.record("c", Some("x"), 15);
        let p = l.prepare();
        let ts: Vec<u64> = p.by_time.iter().map(|e| e.ts).collect();
        assert_eq!(ts, [10, 15, 20]);
        let ts: Vec<u64> = p.by_agent.iter().map(|e| e.ts).collect();
        assert_eq!(ts, [10, 15, 20]);
        assert_eq!(p.agent_start, [0, 1, 3]);
    }
}
