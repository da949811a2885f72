//! Sequence patterns: the same run of event kinds repeated within one
//! agent's events (or within the events that carry no agent).
//!
//! # Confidence
//!
//! For a sequence `s = k1 -> k2 -> ... -> kn`:
//!
//! `share = occurrences(s) / occurrences(k1)`
//!
//! `confidence = wilson_lower_95(occurrences(s), occurrences(k1))`
//!
//! where `occurrences(s)` counts the positions at which the `n` consecutive
//! events of one agent have exactly these kinds (overlaps count), and
//! `occurrences(k1)` counts every event of kind `k1`. The share is the
//! fraction of `k1` events that go on to form the whole sequence,
//! equivalently the product of the step probabilities
//! `P(k2 | k1) P(k3 | k1 k2) ...`; in a stream of `K` equally likely random
//! kinds it is about `1/K` for a pair and shrinks with every step. The
//! confidence is the lower end of the share's 95% Wilson score interval, so a
//! few lucky occurrences cannot look certain: 10 out of 10 give 0.72, 100
//! out of 100 give 0.96.
//!
//! Consecutive means consecutive among one agent's events, in time order;
//! with `max_sequence_gap_ms` set, a longer pause also ends a sequence.
//!
//! # Search
//!
//! Level-wise (Apriori): pairs are counted in one pass over the events; a
//! position is extended to length `n + 1` only when its `n`-gram passed both
//! thresholds, which is sound because neither the count nor the confidence
//! can grow when a sequence is extended (the lower bound rises with the
//! count for a fixed first-kind total). Each level is one pass over the
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
use crate::analytics::stats::{fmt_ms, wilson_lower};

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
    accepted: bool,
}

struct Candidate {
    kinds: Vec<u32>,
    stat: Stat,
    confidence: f64,
}

pub(crate) fn learn(p: &Prepared<'_>) -> Vec<Pattern> {
    let max_len = p.config.max_sequence_len.clamp(2, 16);
    let entries = &p.by_agent;
    let kinds: Vec<u32> = entries.iter().map(|e| e.kind).collect();
    // room[i]: how many events of i's agent group follow on from i (i
    // included) without a pause longer than the maximum gap.
    let gap = p.config.max_sequence_gap_ms.unwrap_or(u64::MAX);
    let mut room = vec![0u32; kinds.len()];
    for w in p.agent_start.windows(2) {
        let (start, end) = (w[0], w[1]);
        for i in (start..end).rev() {
            room[i] = if i + 1 < end && entries[i + 1].ts - entries[i].ts <= gap {
                room[i + 1] + 1
            } else {
                1
            };
        }
    }
    let mut alive: Vec<u32> = (0..kinds.len() as u32)
        .filter(|&i| room[i as usize] >= 2)
        .collect();
    let mut candidates: Vec<Candidate> = Vec::new();

    for n in 2..=max_len {
        let mut level: FxHashMap<&[u32], Stat> = FxHashMap::default();
        for &i in &alive {
            let i = i as usize;
            let key = &kinds[i..i + n];
            let (start, end) = (entries[i].ts, entries[i + n - 1].ts);
            let span = end.saturating_sub(start);
            level
                .entry(key)
                .and_modify(|s| {
                    s.count += 1;
                    s.first_ts = s.first_ts.min(start);
                    s.last_ts = s.last_ts.max(start);
                    s.span_sum += span;
                })
                .or_insert(Stat {
                    count: 1,
                    first_ts: start,
                    last_ts: start,
                    span_sum: span,
                    accepted: false,
                });
        }
        for (key, stat) in level.iter_mut() {
            let first = p.kind_count[key[0] as usize] as f64;
            let confidence = wilson_lower(stat.count as f64, first, 1.96);
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
    }

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

    candidates
        .iter()
        .zip(subsumed)
        .filter(|(_, s)| !s)
        .map(|(c, _)| to_pattern(p, c))
        .collect()
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
