//! Sequence patterns: the same run of event kinds repeated within one
//! agent's events (or within the events that carry no agent).
//!
//! # Confidence
//!
//! For a sequence `s = k1 -> k2 -> ... -> kn`, two bounds, and the confidence
//! is the smaller:
//!
//! - **share**: `wilson_lower_95(occurrences(s), occurrences(k1))`, the lower
//!   end of the 95% Wilson score interval of the fraction of `k1` events that
//!   go on to form the whole sequence (the product of the step
//!   probabilities `P(k2 | k1) P(k3 | k1 k2) ...`); 10 out of 10 give 0.72,
//!   100 out of 100 give 0.96.
//! - **steps**: for each step `i >= 2`, the certainty factor
//!   `clamp((L_i - base(k_i)) / (1 - base(k_i)), 0, 1)` of `L_i`, the 95%
//!   Wilson lower bound of `P(k_i | k1 .. k_{i-1})` (the share of the
//!   prefix's occurrences that have a next event and continue with `k_i`),
//!   against `base(k_i)`, the share of `k_i` among all events that follow
//!   another event: how often `k_i` comes next anyway. The smallest over the
//!   steps counts.
//!
//! The step bound is what keeps a common kind from making sequences of its
//! own: when 80% of the events are heartbeats, 80% of any kind's events are
//! followed by one, which the share alone would take for a pattern, while
//! the certainty factor against the heartbeat's 80% base rate is zero. It is
//! the measure of the correlation patterns, per step. It asks for more
//! evidence when the stream holds few kinds: 10 repetitions of `a -> b`
//! alternating with nothing else (base rate of `b` one half) give 0.41, 30
//! give 0.77.
//!
//! `occurrences(s)` counts the positions at which the `n` consecutive events
//! of one agent have exactly these kinds (overlaps count), and
//! `occurrences(k1)` counts every event of kind `k1`.
//!
//! Consecutive means consecutive among one agent's events, in time order;
//! with `max_sequence_gap_ms` set, a longer pause also ends a sequence.
//!
//! # Search
//!
//! Level-wise (Apriori): pairs are counted in one pass over the events; a
//! position is extended to length `n + 1` only when its `n`-gram passed both
//! thresholds, which is sound because neither the count nor the confidence
//! can grow when a sequence is extended (the share's bound rises with the
//! count for a fixed first-kind total, and the step bound is a minimum over
//! the steps, to which an extension only adds one). Each level is one pass over the
//! surviving positions with one hash lookup of a borrowed slice, so learning
//! is linear in the history and allocates one map entry per distinct
//! candidate.
//!
//! # Maximal patterns
//!
//! A sequence is dropped when a longer reported sequence contains it and
//! occurs at least [`SUBSUME_RATIO`] times as often: `a -> b` is not
//! reported beside `a -> b -> c` when nearly every `a -> b` goes on to `c`.
//!
//! A sequence that overlaps itself (its start equals its end, as in
//! `a -> b -> a` or `c -> c`) is a stretch of a cycle, not a pattern of its
//! own: back-to-back repetitions of `a -> b` would otherwise be reported as
//! `a -> b -> a -> b -> a`. Such sequences are neither reported nor used to
//! drop others; the cycle shows as `a -> b` (and `b -> a`), and a kind
//! repeating itself is left to the frequency patterns.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Pattern, PatternKind, Prepared, passes, round4};
use crate::analytics::intern::FxHashMap;
use crate::analytics::stats::{certainty_factor, fmt_ms, wilson_lower};

/// A sub-sequence is dropped when a reported super-sequence occurs at least
/// this share of its occurrences.
pub const SUBSUME_RATIO: f64 = 0.8;

#[derive(Debug, Clone, Copy)]
struct Stat {
    count: u64,
    first_ts: u64,
    last_ts: u64,
    /// Sum of the time from the first to the last event of each occurrence.
    span_sum: u64,
    /// Occurrences followed by another event of the agent within the gap:
    /// the trials of the next step.
    extendable: u64,
    /// The smallest step bound so far (see the module docs).
    step_confidence: f64,
    accepted: bool,
}

struct Candidate {
    kinds: Vec<u32>,
    stat: Stat,
    confidence: f64,
}

/// Per event and per kind, what the step bounds need.
struct Followers {
    /// `room[i]`: how many events of i's agent group follow on from i (i
    /// included) without a pause longer than the maximum gap.
    room: Vec<u32>,
    /// Per kind, the share of the events that follow another event which
    /// are of this kind.
    base: Vec<f64>,
    /// Per kind, its events that have a next event.
    extendable: Vec<u64>,
}

fn followers(p: &Prepared<'_>) -> Followers {
    let entries = &p.by_agent;
    let gap = p.config.max_sequence_gap_ms.unwrap_or(u64::MAX);
    let mut room = vec![0u32; entries.len()];
    let mut follows = vec![0u64; p.kind_count.len()];
    let mut extendable = vec![0u64; p.kind_count.len()];
    let mut total = 0u64;
    for w in p.agent_start.windows(2) {
        let (start, end) = (w[0], w[1]);
        for i in (start..end).rev() {
            room[i] = if i + 1 < end && entries[i + 1].ts - entries[i].ts <= gap {
                follows[entries[i + 1].kind as usize] += 1;
                extendable[entries[i].kind as usize] += 1;
                total += 1;
                room[i + 1] + 1
            } else {
                1
            };
        }
    }
    let base = follows
        .iter()
        .map(|&f| {
            if total == 0 {
                0.0
            } else {
                f as f64 / total as f64
            }
        })
        .collect();
    Followers {
        room,
        base,
        extendable,
    }
}

pub(crate) fn learn(p: &Prepared<'_>) -> Vec<Pattern> {
    let candidates = search(p);
    let subsumed = subsumed(&candidates);
    candidates
        .iter()
        .zip(subsumed)
        .filter(|(_, s)| !s)
        .map(|(c, _)| to_pattern(p, c))
        .collect()
}

/// The level-wise search: every sequence passing both thresholds.
fn search(p: &Prepared<'_>) -> Vec<Candidate> {
    let max_len = p.config.max_sequence_len.clamp(2, 16);
    let entries = &p.by_agent;
    let kinds: Vec<u32> = entries.iter().map(|e| e.kind).collect();
    let Followers {
        room,
        base,
        extendable,
    } = followers(p);
    let mut alive: Vec<u32> = (0..kinds.len() as u32)
        .filter(|&i| room[i as usize] >= 2)
        .collect();
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut previous: FxHashMap<&[u32], Stat> = FxHashMap::default();

    for n in 2..=max_len {
        let mut level: FxHashMap<&[u32], Stat> = FxHashMap::default();
        for &i in &alive {
            let i = i as usize;
            let key = &kinds[i..i + n];
            let (start, end) = (entries[i].ts, entries[i + n - 1].ts);
            let span = end.saturating_sub(start);
            let more = u64::from(room[i] as usize > n);
            level
                .entry(key)
                .and_modify(|s| {
                    s.count += 1;
                    s.first_ts = s.first_ts.min(start);
                    s.last_ts = s.last_ts.max(start);
                    s.span_sum += span;
                    s.extendable += more;
                })
                .or_insert(Stat {
                    count: 1,
                    first_ts: start,
                    last_ts: start,
                    span_sum: span,
                    extendable: more,
                    step_confidence: 1.0,
                    accepted: false,
                });
        }
        for (key, stat) in level.iter_mut() {
            // The prefix's trials and step bound: its own for n > 2, the
            // first kind's for a pair.
            let (trials, prefix_steps) = match previous.get(&key[..n - 1]) {
                Some(prefix) => (prefix.extendable, prefix.step_confidence),
                None => (extendable[key[0] as usize], 1.0),
            };
            let last = key[n - 1] as usize;
            let step = certainty_factor(
                wilson_lower(stat.count as f64, trials as f64, 1.96),
                base[last],
            );
            stat.step_confidence = prefix_steps.min(step);
            let first = p.kind_count[key[0] as usize] as f64;
            let share = wilson_lower(stat.count as f64, first, 1.96);
            let confidence = share.min(stat.step_confidence);
            if passes(p.config, stat.count, confidence) {
                stat.accepted = true;
                candidates.push(Candidate {
                    kinds: key.to_vec(),
                    stat: *stat,
                    confidence,
                });
            }
        }
        alive.retain(|&i| {
            let i = i as usize;
            room[i] as usize > n && level[&kinds[i..i + n]].accepted
        });
        if alive.is_empty() {
            break;
        }
        previous = level;
    }
    candidates
}

/// Which candidates a longer reported sequence explains, or which are a
/// stretch of a cycle (see the module docs).
fn subsumed(candidates: &[Candidate]) -> Vec<bool> {
    // Drop sub-sequences of a longer reported sequence that explains them.
    let index: FxHashMap<&[u32], usize> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| (c.kinds.as_slice(), i))
        .collect();
    let cyclic: Vec<bool> = candidates
        .iter()
        .map(|c| overlaps_itself(&c.kinds))
        .collect();
    let mut subsumed = cyclic.clone();
    for c in candidates
        .iter()
        .zip(&cyclic)
        .filter(|(_, cyclic)| !**cyclic)
        .map(|(c, _)| c)
    {
        let len = c.kinds.len();
        for sub_len in 2..len {
            for start in 0..=len - sub_len {
                if let Some(&j) = index.get(&c.kinds[start..start + sub_len])
                    && c.stat.count as f64 >= SUBSUME_RATIO * candidates[j].stat.count as f64
                {
                    subsumed[j] = true;
                }
            }
        }
    }

    subsumed
}

/// Whether a proper prefix of `s` equals the suffix of the same length.
fn overlaps_itself(s: &[u32]) -> bool {
    (1..s.len()).any(|shift| s[..s.len() - shift] == s[shift..])
}

fn to_pattern(p: &Prepared<'_>, c: &Candidate) -> Pattern {
    let events: Vec<String> = c.kinds.iter().map(|&k| p.kind_name(k).to_owned()).collect();
    let mean_span = c.stat.span_sum as f64 / c.stat.count as f64;
    let first_total = p.kind_count[c.kinds[0] as usize];
    let description = format!(
        "{} ({} times, {:.0}% of {}, mean span {})",
        events.join(" -> "),
        c.stat.count,
        c.stat.count as f64 / first_total as f64 * 100.0,
        events[0],
        fmt_ms(mean_span),
    );
    let mut metadata = BTreeMap::new();
    metadata.insert("length".into(), json!(c.kinds.len()));
    metadata.insert("mean_span_ms".into(), json!(round4(mean_span)));
    metadata.insert("first_kind_occurrences".into(), json!(first_total));
    metadata.insert(
        "share".into(),
        json!(round4(c.stat.count as f64 / first_total as f64)),
    );
    metadata.insert(
        "step_confidence".into(),
        json!(round4(c.stat.step_confidence)),
    );
    Pattern {
        id: format!("sequence:{}", events.join(">")),
        kind: PatternKind::Sequence,
        description,
        events,
        confidence: c.confidence,
        occurrences: c.stat.count,
        first_seen_ms: c.stat.first_ts,
        last_seen_ms: c.stat.last_ts,
        metadata,
    }
}

#[cfg(test)]
mod tests {
    use super::overlaps_itself;

    #[test]
    fn self_overlap() {
        assert!(overlaps_itself(&[1, 2, 1]));
        assert!(overlaps_itself(&[3, 3]));
        assert!(overlaps_itself(&[1, 2, 1, 2]));
        assert!(!overlaps_itself(&[1, 2, 3]));
        assert!(!overlaps_itself(&[1, 2, 2]));
    }
}
