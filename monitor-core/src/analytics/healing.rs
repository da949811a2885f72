//! Healing analytics: how well the healing strategies work, how long
//! recovery takes, which failures recur, and what to change.
//!
//! A [`HealingLog`] keeps compact healing records (strategy, failure type and
//! source interned to small ids) in a bounded buffer. Every analysis is one
//! or two linear passes over the records in a time range plus linear-time
//! selections for the percentiles, so a full [`HealingReport`] of a million
//! records takes tens of milliseconds.
//!
//! Definitions used throughout:
//!
//! - a *healing* is one record: one strategy run against one failure;
//! - a *failure* is a record with `attempt <= 1`: the first attempt at an
//!   incident (later attempts at the same incident are healings, not new
//!   failures);
//! - *healing time* is `action_ended_ms - action_started_ms`;
//! - *recovery time* is `recovered_at_ms - detected_at_ms`, over the records
//!   that carry `recovered_at_ms` (set it on the attempt after which the
//!   source was healthy again); MTTR is its mean.
//!
//! # Strategy trends
//!
//! A strategy's records are split at the midpoint of its time span. Its
//! trend is `degrading` (or `improving`) only when the later half's success
//! rate is lower (higher) by more than `trend_tolerance` relative *and*
//! Fisher's exact test (two-sided) rejects equal rates at
//! `trend_significance` (default 0.05); when the success rate shows no such
//! change, the same rule on the mean healing time, with Welch's t-test
//! (two-sided, Welch-Satterthwaite degrees of freedom) in place of Fisher's.
//! Either half with fewer than `min_samples` attempts leaves it `stable`. So
//! a steady strategy with random variation stays `stable` (about one in 20
//! labels it otherwise at the default level, not one in two), while a real
//! change needs enough attempts to show.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use serde::{Deserialize, Serialize};

use super::intern::Interner;
use super::pattern::round4;
use super::stats::{fisher_p_value, fmt_ms, welch_p_value};
use crate::trend::{Direction, Trend, classify};

/// One healing attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealingRecord {
    /// The strategy that ran (`"restart-command"`).
    pub strategy: String,
    /// What failed (`"timeout"`, `"memory_exhausted"`, an alert name).
    pub failure_type: String,
    /// The service, agent or host that failed.
    pub source: String,
    /// When the failure was detected, in milliseconds since the Unix epoch.
    pub detected_at_ms: u64,
    /// When the healing action started, in milliseconds since the Unix epoch.
    pub action_started_ms: u64,
    /// When the healing action ended, in milliseconds since the Unix epoch.
    pub action_ended_ms: u64,
    /// Whether the action reported success.
    pub success: bool,
    /// When the source was healthy again, in milliseconds since the Unix
    /// epoch; absent when it did not recover after this attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered_at_ms: Option<u64>,
    /// Which attempt at this incident, from 1.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
}

fn first_attempt() -> u32 {
    1
}

/// Thresholds of the healing analysis, with their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealingConfig {
    /// The most records a [`HealingLog`] keeps (default 1,000,000).
    pub max_records: usize,
    /// Fewer attempts than this and a strategy is `investigate` for lack of
    /// evidence, its trend `stable`, and no recommendation is made on it
    /// (default 5).
    pub min_samples: u64,
    /// A strategy succeeding at least this often is kept (default 0.8).
    pub keep_rate: f64,
    /// A strategy succeeding less often than this is replaced (default 0.5).
    pub replace_rate: f64,
    /// The overall success rate below which a recommendation is made
    /// (default 0.9).
    pub target_success_rate: f64,
    /// The MTTR above which a recommendation is made, in milliseconds
    /// (default 300,000: 5 minutes).
    pub mttr_target_ms: f64,
    /// The share of failures of the most common type above which its
    /// prevention is recommended (default 0.3).
    pub common_failure_share: f64,
    /// The share of failures from resource exhaustion above which a
    /// recommendation is made (default 0.1).
    pub resource_share: f64,
    /// The share of failures from timeouts above which circuit breaking is
    /// recommended (default 0.1).
    pub timeout_share: f64,
    /// Relative change that counts as a trend (default 0.05: +/-5%).
    pub trend_tolerance: f64,
    /// The significance level of the tests behind a strategy's trend
    /// (default 0.05): a change counts only when a two-sided test gives a
    /// p-value below it (see the module docs).
    pub trend_significance: f64,
    /// Failure types whose name contains one of these (case-insensitive) are
    /// resource exhaustion.
    pub resource_keywords: Vec<String>,
    /// Failure types whose name contains one of these (case-insensitive) are
    /// timeouts.
    pub timeout_keywords: Vec<String>,
    /// How many entries the "most common" lists keep (default 10).
    pub top_n: usize,
    /// How many of the latest records the report's timeline shows (default 20).
    pub timeline_len: usize,
}

impl Default for HealingConfig {
    fn default() -> Self {
        let words = |w: &[&str]| w.iter().map(|s| (*s).to_owned()).collect();
        HealingConfig {
            max_records: 1_000_000,
            min_samples: 5,
            keep_rate: 0.8,
            replace_rate: 0.5,
            target_success_rate: 0.9,
            mttr_target_ms: 300_000.0,
            common_failure_share: 0.3,
            resource_share: 0.1,
            timeout_share: 0.1,
            trend_tolerance: 0.05,
            trend_significance: 0.05,
            resource_keywords: words(&[
                "memory", "oom", "cpu", "disk", "resource", "exhaust", "quota", "leak", "fd_limit",
            ]),
            timeout_keywords: words(&["timeout", "timed_out", "timed out", "deadline"]),
            top_n: 10,
            timeline_len: 20,
        }
    }
}

/// A half-open time range, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    /// Inclusive start.
    pub from_ms: u64,
    /// Exclusive end.
    pub to_ms: u64,
}

impl TimeRange {
    /// The range `[from_ms, to_ms)`.
    pub fn new(from_ms: u64, to_ms: u64) -> Self {
        TimeRange { from_ms, to_ms }
    }

    fn contains(&self, t: u64) -> bool {
        self.from_ms <= t && t < self.to_ms
    }
}

/// Totals over the records in a range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverallStats {
    /// Failures (first attempts).
    pub total_failures: u64,
    /// Healing attempts.
    pub total_healings: u64,
    /// Attempts that succeeded.
    pub successful_healings: u64,
    /// Attempts that failed.
    pub failed_healings: u64,
    /// `successful_healings / total_healings`, 0 with no attempts.
    pub success_rate: f64,
    /// Mean healing time, in milliseconds.
    pub mean_healing_time_ms: f64,
    /// Mean time from detection to recovery, in milliseconds; absent when
    /// nothing recovered.
    pub mttr_ms: Option<f64>,
    /// Attempts by strategy.
    pub by_strategy: BTreeMap<String, u64>,
    /// Failures by failure type.
    pub by_failure_type: BTreeMap<String, u64>,
    /// The earliest detection in the range.
    pub first_detected_ms: Option<u64>,
    /// The latest detection in the range.
    pub last_detected_ms: Option<u64>,
}

/// What to do with a strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StrategyAdvice {
    /// It works: success rate at least `keep_rate` and not degrading.
    Keep,
    /// It works sometimes: success rate from `replace_rate` to `keep_rate`.
    Tune,
    /// It mostly fails: success rate below `replace_rate`.
    Replace,
    /// Too few attempts to judge, or its results are degrading.
    Investigate,
}

/// How well one strategy works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyEffectiveness {
    /// The strategy.
    pub strategy: String,
    /// Attempts.
    pub attempts: u64,
    /// Successful attempts.
    pub successes: u64,
    /// Failed attempts.
    pub failures: u64,
    /// `successes / attempts`.
    pub success_rate: f64,
    /// Mean healing time, in milliseconds.
    pub mean_healing_time_ms: f64,
    /// The success rate of the later half of the strategy's time span
    /// against the earlier half (higher is better); when that is stable, the
    /// mean healing time likewise (lower is better). A change counts only
    /// when it exceeds `trend_tolerance` and is significant at
    /// `trend_significance` (Fisher's exact test on the rates, Welch's t-test
    /// on the times). `stable` when either half has fewer than `min_samples`
    /// attempts.
    pub trend: Trend,
    /// What to do with it: `investigate` below `min_samples` attempts, then
    /// `replace` below `replace_rate`, `investigate` when degrading, `tune`
    /// below `keep_rate`, else `keep`.
    pub recommendation: StrategyAdvice,
}

/// Recovery-time figures of a set of records.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MttrStats {
    /// Records with a recovery time.
    pub count: u64,
    /// Mean recovery time (the MTTR), in milliseconds.
    pub mean_ms: f64,
    /// Median recovery time, in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile recovery time, in milliseconds.
    pub p90_ms: f64,
    /// Longest recovery time, in milliseconds.
    pub max_ms: f64,
}

/// MTTR overall and by failure type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MttrReport {
    /// Over every recovered record; absent when nothing recovered.
    pub overall: Option<MttrStats>,
    /// By failure type, slowest mean first.
    pub by_failure_type: Vec<(String, MttrStats)>,
}

/// A name with its count and share of the total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedCount {
    /// The name (failure type or source).
    pub name: String,
    /// How many.
    pub count: u64,
    /// `count` over the total, in [0, 1].
    pub share: f64,
}

/// When and where failures happen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailurePatterns {
    /// The most common failure types, most common first (`top_n` of them).
    pub most_common: Vec<NamedCount>,
    /// Failures per hour over the range (or over the span of detections,
    /// at least one hour, when no range is given).
    pub failures_per_hour: f64,
    /// Failures by hour of detection (UTC), index 0 for 00:00-01:00.
    pub hour_of_day: [u64; 24],
    /// The hour with the most failures.
    pub peak_hour: Option<u8>,
    /// Failures by source, most first (`top_n` of them).
    pub by_source: Vec<NamedCount>,
    /// How many distinct sources failed.
    pub distinct_sources: u64,
}

/// The six kinds of healing recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecommendationKind {
    /// The overall success rate is below target.
    OverallSuccessRate,
    /// A strategy should be tuned, replaced or investigated.
    StrategyOptimisation,
    /// Recovery takes too long.
    Mttr,
    /// One failure type dominates; prevent it at the source.
    Prevention,
    /// Many failures come from exhausted resources.
    ResourceExhaustion,
    /// Many failures are timeouts; add circuit breaking.
    Timeouts,
}

/// How urgent a recommendation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Worth a look.
    Low,
    /// Should be acted on.
    Medium,
    /// Act soon.
    High,
}

/// A recommendation with the figure that triggered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// Which rule fired.
    pub kind: RecommendationKind,
    /// How urgent.
    pub priority: Priority,
    /// What to do, in a sentence.
    pub message: String,
    /// The strategy or failure type concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The name of the figure that triggered it (`"success_rate"`).
    pub metric: String,
    /// The figure's value.
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
}

/// Everything the healing analysis knows, ready to export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealingReport {
    /// When the report was made, in milliseconds since the Unix epoch.
    pub generated_at_ms: u64,
    /// The range analysed; absent for all records.
    pub range: Option<TimeRange>,
    /// Totals.
    pub overall: OverallStats,
    /// Per strategy, most attempts first.
    pub effectiveness: Vec<StrategyEffectiveness>,
    /// MTTR overall and by failure type.
    pub mttr: MttrReport,
    /// When and where failures happen.
    pub failure_patterns: FailurePatterns,
    /// What to change, most urgent first.
    pub recommendations: Vec<Recommendation>,
    /// The latest records, newest first.
    pub recent_timeline: Vec<HealingRecord>,
}

impl HealingReport {
    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }
}

#[derive(Debug, Clone, Copy)]
struct Compact {
    detected: u64,
    started: u64,
    ended: u64,
    /// `u64::MAX` when not recovered.
    recovered: u64,
    strategy: u32,
    failure: u32,
    source: u32,
    attempt: u32,
    success: bool,
}

/// A bounded log of healing records and the analyses over it.
///
/// Recording takes `&mut self` (interning three names, amortised `O(1)`);
/// share one between threads behind a `Mutex`. Analyses take `&self`, an
/// optional [`TimeRange`] on detection time, and are linear in the records.
#[derive(Debug, Clone, Default)]
pub struct HealingLog {
    config: HealingConfig,
    strategies: Interner,
    failures: Interner,
    sources: Interner,
    records: VecDeque<Compact>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    attempts: u64,
    successes: u64,
    time_sum: u64,
    /// Sum of squared healing times, for their variance.
    time_sq_sum: f64,
}

impl Acc {
    fn add(&mut self, success: bool, time: u64) {
        self.attempts += 1;
        self.successes += u64::from(success);
        self.time_sum += time;
        self.time_sq_sum += time as f64 * time as f64;
    }
    /// Mean, unbiased variance and count of the healing times, for Welch's test.
    fn time_moments(&self) -> (f64, f64, f64) {
        let n = self.attempts as f64;
        let mean = self.mean_time();
        let var = if n > 1.0 {
            ((self.time_sq_sum - n * mean * mean) / (n - 1.0)).max(0.0)
        } else {
            0.0
        };
        (mean, var, n)
    }
    fn rate(&self) -> f64 {
        ratio(self.successes, self.attempts)
    }
    fn mean_time(&self) -> f64 {
        ratio(self.time_sum, self.attempts)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Everything one pass gathers.
struct Analysis {
    all: Acc,
    failures: u64,
    strategies: Vec<Acc>,
    strategy_earlier: Vec<Acc>,
    strategy_recent: Vec<Acc>,
    failures_by_type: Vec<u64>,
    failures_by_source: Vec<u64>,
    hour_of_day: [u64; 24],
    first_detected: u64,
    last_detected: u64,
    /// Recovery times and their failure types, for the MTTR figures.
    recovery: Vec<(u32, u64)>,
    /// Indices of the latest records, for the timeline.
    latest: Vec<usize>,
}

impl HealingLog {
    /// An empty log.
    pub fn new(config: HealingConfig) -> Self {
        HealingLog {
            config,
            ..HealingLog::default()
        }
    }

    /// The settings.
    pub fn config(&self) -> &HealingConfig {
        &self.config
    }

    /// Adds a record, forgetting the oldest when `max_records` are held.
    pub fn record(&mut self, r: &HealingRecord) {
        let cap = self.config.max_records.max(1);
        while self.records.len() >= cap {
            self.records.pop_front();
        }
        let c = Compact {
            detected: r.detected_at_ms,
            started: r.action_started_ms,
            ended: r.action_ended_ms,
            recovered: r.recovered_at_ms.unwrap_or(u64::MAX),
            strategy: self.strategies.intern(&r.strategy),
            failure: self.failures.intern(&r.failure_type),
            source: self.sources.intern(&r.source),
            attempt: r.attempt,
            success: r.success,
        };
        self.records.push_back(c);
    }

    /// Adds every record of `records`, in order.
    pub fn record_all<'a>(&mut self, records: impl IntoIterator<Item = &'a HealingRecord>) {
        for r in records {
            self.record(r);
        }
    }

    /// How many records are held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn expand(&self, c: &Compact) -> HealingRecord {
        HealingRecord {
            strategy: self.strategies.name(c.strategy).to_owned(),
            failure_type: self.failures.name(c.failure).to_owned(),
            source: self.sources.name(c.source).to_owned(),
            detected_at_ms: c.detected,
            action_started_ms: c.started,
            action_ended_ms: c.ended,
            success: c.success,
            recovered_at_ms: (c.recovered != u64::MAX).then_some(c.recovered),
            attempt: c.attempt,
        }
    }

    fn in_range<'a>(
        &'a self,
        range: Option<TimeRange>,
    ) -> impl Iterator<Item = (usize, &'a Compact)> + 'a {
        self.records
            .iter()
            .enumerate()
            .filter(move |(_, c)| range.is_none_or(|r| r.contains(c.detected)))
    }

    fn analyse(&self, range: Option<TimeRange>, timeline_len: usize) -> Analysis {
        let ns = self.strategies.len();
        // Pass 1: each strategy's time span, to split it into halves.
        let mut span = vec![(u64::MAX, 0u64); ns];
        for (_, c) in self.in_range(range) {
            let s = &mut span[c.strategy as usize];
            s.0 = s.0.min(c.detected);
            s.1 = s.1.max(c.detected);
        }
        let mid: Vec<u64> = span
            .iter()
            .map(|&(lo, hi)| lo / 2 + hi / 2 + (lo % 2 + hi % 2) / 2)
            .collect();

        let mut a = Analysis {
            all: Acc::default(),
            failures: 0,
            strategies: vec![Acc::default(); ns],
            strategy_earlier: vec![Acc::default(); ns],
            strategy_recent: vec![Acc::default(); ns],
            failures_by_type: vec![0; self.failures.len()],
            failures_by_source: vec![0; self.sources.len()],
            hour_of_day: [0; 24],
            first_detected: u64::MAX,
            last_detected: 0,
            recovery: Vec::new(),
            latest: Vec::new(),
        };
        let mut heap: BinaryHeap<Reverse<(u64, usize)>> =
            BinaryHeap::with_capacity(timeline_len + 1);
        // Pass 2: everything else.
        for (i, c) in self.in_range(range) {
            let time = c.ended.saturating_sub(c.started);
            a.all.add(c.success, time);
            let s = c.strategy as usize;
            a.strategies[s].add(c.success, time);
            // The later half includes the midpoint, so a strategy seen at one
            // instant only has no earlier half and stays stable.
            if c.detected < mid[s] {
                a.strategy_earlier[s].add(c.success, time);
            } else {
                a.strategy_recent[s].add(c.success, time);
            }
            if c.attempt <= 1 {
                a.failures += 1;
                a.failures_by_type[c.failure as usize] += 1;
                a.failures_by_source[c.source as usize] += 1;
                a.hour_of_day[((c.detected / 3_600_000) % 24) as usize] += 1;
            }
            a.first_detected = a.first_detected.min(c.detected);
            a.last_detected = a.last_detected.max(c.detected);
            if c.recovered != u64::MAX {
                a.recovery
                    .push((c.failure, c.recovered.saturating_sub(c.detected)));
            }
            if timeline_len > 0 {
                heap.push(Reverse((c.detected, i)));
                if heap.len() > timeline_len {
                    heap.pop();
                }
            }
        }
        let mut latest: Vec<(u64, usize)> = heap.into_iter().map(|Reverse(x)| x).collect();
        latest.sort_unstable_by(|x, y| y.cmp(x));
        a.latest = latest.into_iter().map(|(_, i)| i).collect();
        a
    }

    /// Totals over the records detected in `range` (all records when `None`).
    pub fn overall(&self, range: Option<TimeRange>) -> OverallStats {
        let a = self.analyse(range, 0);
        self.overall_from(&a)
    }

    fn overall_from(&self, a: &Analysis) -> OverallStats {
        let named = |interner: &Interner, counts: &[u64]| -> BTreeMap<String, u64> {
            counts
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(i, n)| (interner.name(i as u32).to_owned(), *n))
                .collect()
        };
        let by_strategy: Vec<u64> = a.strategies.iter().map(|s| s.attempts).collect();
        let recovered = a.recovery.len() as u64;
        OverallStats {
            total_failures: a.failures,
            total_healings: a.all.attempts,
            successful_healings: a.all.successes,
            failed_healings: a.all.attempts - a.all.successes,
            success_rate: a.all.rate(),
            mean_healing_time_ms: a.all.mean_time(),
            mttr_ms: (recovered > 0)
                .then(|| a.recovery.iter().map(|&(_, r)| r as f64).sum::<f64>() / recovered as f64),
            by_strategy: named(&self.strategies, &by_strategy),
            by_failure_type: named(&self.failures, &a.failures_by_type),
            first_detected_ms: (a.all.attempts > 0).then_some(a.first_detected),
            last_detected_ms: (a.all.attempts > 0).then_some(a.last_detected),
        }
    }

    /// Per-strategy effectiveness over `range`, most attempts first.
    pub fn effectiveness(&self, range: Option<TimeRange>) -> Vec<StrategyEffectiveness> {
        self.effectiveness_from(&self.analyse(range, 0))
    }

    fn effectiveness_from(&self, a: &Analysis) -> Vec<StrategyEffectiveness> {
        let cfg = &self.config;
        let mut out: Vec<StrategyEffectiveness> = (0..a.strategies.len())
            .filter(|&s| a.strategies[s].attempts > 0)
            .map(|s| {
                let acc = a.strategies[s];
                let trend = strategy_trend(cfg, &a.strategy_earlier[s], &a.strategy_recent[s]);
                let rate = acc.rate();
                let recommendation = if acc.attempts < cfg.min_samples {
                    StrategyAdvice::Investigate
                } else if rate < cfg.replace_rate {
                    StrategyAdvice::Replace
                } else if trend == Trend::Degrading {
                    StrategyAdvice::Investigate
                } else if rate < cfg.keep_rate {
                    StrategyAdvice::Tune
                } else {
                    StrategyAdvice::Keep
                };
                StrategyEffectiveness {
                    strategy: self.strategies.name(s as u32).to_owned(),
                    attempts: acc.attempts,
                    successes: acc.successes,
                    failures: acc.attempts - acc.successes,
                    success_rate: rate,
                    mean_healing_time_ms: acc.mean_time(),
                    trend,
                    recommendation,
                }
            })
            .collect();
        out.sort_by(|x, y| {
            y.attempts
                .cmp(&x.attempts)
                .then_with(|| x.strategy.cmp(&y.strategy))
        });
        out
    }

    /// MTTR overall and by failure type over `range`.
    pub fn mttr(&self, range: Option<TimeRange>) -> MttrReport {
        self.mttr_from(&self.analyse(range, 0))
    }

    fn mttr_from(&self, a: &Analysis) -> MttrReport {
        let mut values: Vec<u64> = a.recovery.iter().map(|&(_, r)| r).collect();
        let overall = mttr_stats(&mut values);
        // Counting sort of the recovery times by failure type, then the same
        // selections per type: linear overall.
        let nt = self.failures.len();
        let mut start = vec![0usize; nt + 1];
        for &(t, _) in &a.recovery {
            start[t as usize + 1] += 1;
        }
        for t in 1..=nt {
            start[t] += start[t - 1];
        }
        let mut cursor = start.clone();
        for &(t, r) in &a.recovery {
            values[cursor[t as usize]] = r;
            cursor[t as usize] += 1;
        }
        let mut by_failure_type: Vec<(String, MttrStats)> = (0..nt)
            .filter_map(|t| {
                let stats = mttr_stats(&mut values[start[t]..start[t + 1]])?;
                Some((self.failures.name(t as u32).to_owned(), stats))
            })
            .collect();
        by_failure_type.sort_by(|x, y| {
            y.1.mean_ms
                .total_cmp(&x.1.mean_ms)
                .then_with(|| x.0.cmp(&y.0))
        });
        MttrReport {
            overall,
            by_failure_type,
        }
    }

    /// When and where failures happen over `range`.
    pub fn failure_patterns(&self, range: Option<TimeRange>) -> FailurePatterns {
        self.failure_patterns_from(&self.analyse(range, 0), range)
    }

    fn failure_patterns_from(&self, a: &Analysis, range: Option<TimeRange>) -> FailurePatterns {
        let top = |interner: &Interner, counts: &[u64]| -> Vec<NamedCount> {
            let mut ids: Vec<usize> = (0..counts.len()).filter(|&i| counts[i] > 0).collect();
            ids.sort_unstable_by_key(|&i| (Reverse(counts[i]), interner.name(i as u32)));
            ids.truncate(self.config.top_n);
            ids.into_iter()
                .map(|i| NamedCount {
                    name: interner.name(i as u32).to_owned(),
                    count: counts[i],
                    share: ratio(counts[i], a.failures),
                })
                .collect()
        };
        let span_ms = match range {
            Some(r) => r.to_ms.saturating_sub(r.from_ms),
            None if a.all.attempts > 0 => a.last_detected - a.first_detected,
            None => 0,
        };
        let hours = (span_ms as f64 / 3_600_000.0).max(1.0);
        let peak = (0..24).max_by_key(|&h| (a.hour_of_day[h], Reverse(h)));
        FailurePatterns {
            most_common: top(&self.failures, &a.failures_by_type),
            failures_per_hour: a.failures as f64 / hours,
            hour_of_day: a.hour_of_day,
            peak_hour: peak.filter(|_| a.failures > 0).map(|h| h as u8),
            by_source: top(&self.sources, &a.failures_by_source),
            distinct_sources: a.failures_by_source.iter().filter(|&&n| n > 0).count() as u64,
        }
    }

    /// The recommendations over `range`, most urgent first.
    pub fn recommendations(&self, range: Option<TimeRange>) -> Vec<Recommendation> {
        let a = self.analyse(range, 0);
        self.recommendations_from(&a, &self.effectiveness_from(&a), &self.mttr_from(&a))
    }

    fn recommendations_from(
        &self,
        a: &Analysis,
        effectiveness: &[StrategyEffectiveness],
        mttr: &MttrReport,
    ) -> Vec<Recommendation> {
        let mut out = Vec::new();
        // The six rules, in this order.
        out.extend(self.overall_rate_advice(a));
        self.strategy_advice(effectiveness, &mut out);
        out.extend(self.mttr_advice(mttr));
        if a.failures >= self.config.min_samples {
            out.extend(self.prevention_advice(a));
            self.failure_class_advice(a, &mut out);
        }
        // Stable: equal priorities keep the rule order above.
        out.sort_by_key(|r| Reverse(r.priority));
        out
    }

    /// Rule 1: the overall success rate is below target.
    fn overall_rate_advice(&self, a: &Analysis) -> Option<Recommendation> {
        let cfg = &self.config;
        let rate = a.all.rate();
        if a.all.attempts < cfg.min_samples || rate >= cfg.target_success_rate {
            return None;
        }
        Some(Recommendation {
            kind: RecommendationKind::OverallSuccessRate,
            priority: if rate < cfg.replace_rate {
                Priority::High
            } else {
                Priority::Medium
            },
            message: format!(
                "healing succeeds in {} of {} attempts (target {}): review the strategies that fail most",
                pct(rate),
                a.all.attempts,
                pct(cfg.target_success_rate)
            ),
            subject: None,
            metric: "success_rate".into(),
            value: round4(rate),
            threshold: cfg.target_success_rate,
        })
    }

    /// Rule 2: a strategy to tune, replace or investigate.
    fn strategy_advice(
        &self,
        effectiveness: &[StrategyEffectiveness],
        out: &mut Vec<Recommendation>,
    ) {
        let cfg = &self.config;
        for e in effectiveness
            .iter()
            .filter(|e| e.attempts >= cfg.min_samples)
        {
            let (priority, action, threshold) = match e.recommendation {
                StrategyAdvice::Keep => continue,
                StrategyAdvice::Replace => (Priority::High, "replace it", cfg.replace_rate),
                StrategyAdvice::Tune => (Priority::Medium, "tune its settings", cfg.keep_rate),
                StrategyAdvice::Investigate => (
                    Priority::Medium,
                    "investigate why its results are degrading",
                    cfg.keep_rate,
                ),
            };
            out.push(Recommendation {
                kind: RecommendationKind::StrategyOptimisation,
                priority,
                message: format!(
                    "strategy '{}' succeeds in {} of {} attempts (trend {}): {action}",
                    e.strategy,
                    pct(e.success_rate),
                    e.attempts,
                    e.trend
                ),
                subject: Some(e.strategy.clone()),
                metric: "strategy_success_rate".into(),
                value: round4(e.success_rate),
                threshold,
            });
        }
    }

    /// Rule 3: recovery takes too long.
    fn mttr_advice(&self, mttr: &MttrReport) -> Option<Recommendation> {
        let cfg = &self.config;
        let overall = mttr.overall?;
        if overall.count < cfg.min_samples || overall.mean_ms <= cfg.mttr_target_ms {
            return None;
        }
        let slowest = mttr
            .by_failure_type
            .first()
            .map(|(t, s)| format!("; slowest: '{t}' at {}", fmt_ms(s.mean_ms)))
            .unwrap_or_default();
        Some(Recommendation {
            kind: RecommendationKind::Mttr,
            priority: if overall.mean_ms > 2.0 * cfg.mttr_target_ms {
                Priority::High
            } else {
                Priority::Medium
            },
            message: format!(
                "mean time to recovery is {} (target {}){slowest}: detect sooner and heal faster",
                fmt_ms(overall.mean_ms),
                fmt_ms(cfg.mttr_target_ms)
            ),
            subject: mttr.by_failure_type.first().map(|(t, _)| t.clone()),
            metric: "mttr_ms".into(),
            value: round4(overall.mean_ms),
            threshold: cfg.mttr_target_ms,
        })
    }

    /// Rule 4: one failure type dominates; prevent it.
    fn prevention_advice(&self, a: &Analysis) -> Option<Recommendation> {
        let cfg = &self.config;
        let t = (0..a.failures_by_type.len())
            .max_by_key(|&t| (a.failures_by_type[t], Reverse(self.failures.name(t as u32))))?;
        let share = ratio(a.failures_by_type[t], a.failures);
        if share <= cfg.common_failure_share {
            return None;
        }
        let name = self.failures.name(t as u32);
        Some(Recommendation {
            kind: RecommendationKind::Prevention,
            priority: Priority::Medium,
            message: format!(
                "'{name}' accounts for {} of {} failures: prevent it at its cause rather than heal it",
                pct(share),
                a.failures
            ),
            subject: Some(name.to_owned()),
            metric: "failure_type_share".into(),
            value: round4(share),
            threshold: cfg.common_failure_share,
        })
    }

    /// Rules 5 and 6: resource exhaustion and timeouts, by failure-type name.
    fn failure_class_advice(&self, a: &Analysis, out: &mut Vec<Recommendation>) {
        let cfg = &self.config;
        let rules = [
            (
                RecommendationKind::ResourceExhaustion,
                &cfg.resource_keywords,
                cfg.resource_share,
                "resource_exhaustion_share",
                "resource exhaustion",
                "add capacity, set limits or scale out before the resource runs out",
            ),
            (
                RecommendationKind::Timeouts,
                &cfg.timeout_keywords,
                cfg.timeout_share,
                "timeout_share",
                "timeouts",
                "add circuit breaking and retries with backoff, and review the timeouts",
            ),
        ];
        for (kind, keywords, threshold, metric, what, action) in rules {
            let mut count = 0;
            let mut names = Vec::new();
            for t in 0..a.failures_by_type.len() {
                let name = self.failures.name(t as u32);
                let lower = name.to_lowercase();
                if a.failures_by_type[t] > 0
                    && keywords.iter().any(|k| lower.contains(&k.to_lowercase()))
                {
                    count += a.failures_by_type[t];
                    names.push(name);
                }
            }
            let share = ratio(count, a.failures);
            if share > threshold {
                names.sort_unstable();
                out.push(Recommendation {
                    kind,
                    priority: if share > 2.0 * threshold {
                        Priority::High
                    } else {
                        Priority::Medium
                    },
                    message: format!(
                        "{what} ({}) caused {} of {} failures: {action}",
                        names.join(", "),
                        pct(share),
                        a.failures
                    ),
                    subject: None,
                    metric: metric.into(),
                    value: round4(share),
                    threshold,
                });
            }
        }
    }

    /// The full report over `range`, stamped `generated_at_ms`.
    pub fn report(&self, generated_at_ms: u64, range: Option<TimeRange>) -> HealingReport {
        let a = self.analyse(range, self.config.timeline_len);
        let effectiveness = self.effectiveness_from(&a);
        let mttr = self.mttr_from(&a);
        let recommendations = self.recommendations_from(&a, &effectiveness, &mttr);
        HealingReport {
            generated_at_ms,
            range,
            overall: self.overall_from(&a),
            failure_patterns: self.failure_patterns_from(&a, range),
            effectiveness,
            mttr,
            recommendations,
            recent_timeline: a
                .latest
                .iter()
                .map(|&i| self.expand(&self.records[i]))
                .collect(),
        }
    }
}

/// `x` (a share) as a percentage with one decimal.
fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The trend of a strategy from its earlier and later halves (see the
/// module docs): the success rate first, then the mean healing time, each
/// counting only when beyond the tolerance and significant.
fn strategy_trend(cfg: &HealingConfig, early: &Acc, recent: &Acc) -> Trend {
    if early.attempts < cfg.min_samples || recent.attempts < cfg.min_samples {
        return Trend::Stable;
    }
    let significant = |p: f64| p < cfg.trend_significance;
    let by_rate = classify(
        early.rate(),
        recent.rate(),
        Direction::HigherIsBetter,
        cfg.trend_tolerance,
    );
    if by_rate != Trend::Stable {
        let p = fisher_p_value(
            early.successes,
            early.attempts - early.successes,
            recent.successes,
            recent.attempts - recent.successes,
        );
        if significant(p) {
            return by_rate;
        }
    }
    let by_time = classify(
        early.mean_time(),
        recent.mean_time(),
        Direction::LowerIsBetter,
        cfg.trend_tolerance,
    );
    if by_time != Trend::Stable
        && significant(welch_p_value(early.time_moments(), recent.time_moments()))
    {
        return by_time;
    }
    Trend::Stable
}

/// Mean, median, p90 and max of `values` (reordered), `None` when empty.
/// Linear: two selections.
fn mttr_stats(values: &mut [u64]) -> Option<MttrStats> {
    if values.is_empty() {
        return None;
    }
    let n = values.len();
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let max = values.iter().copied().max().unwrap_or(0);
    // Nearest-rank percentiles.
    let rank = |q: f64| ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
    let p90_rank = rank(0.9);
    let p90 = *values.select_nth_unstable(p90_rank).1;
    let p50 = *values[..=p90_rank].select_nth_unstable(rank(0.5)).1;
    Some(MttrStats {
        count: n as u64,
        mean_ms: mean,
        p50_ms: p50 as f64,
        p90_ms: p90 as f64,
        max_ms: max as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mttr_stats_use_nearest_rank() {
        let mut v: Vec<u64> = (1..=10).rev().collect();
        let s = mttr_stats(&mut v).unwrap();
        assert_eq!(
            (s.p50_ms, s.p90_ms, s.max_ms, s.mean_ms),
            (5.0, 9.0, 10.0, 5.5)
        );
        assert!(mttr_stats(&mut []).is_none());
    }
}
