//! Correlation patterns: kind B following kind A within a time window more
//! often than chance predicts ("high_token_usage -> task_failed, lift 3.1,
//! 75% of the time within 10 s").
//!
//! # Confidence
//!
//! Over all events in time order (every agent together), with window `W`
//! (`correlation_window_ms`):
//!
//! - `P(B | A)`: the share of A events followed by at least one B event within
//!   `W` (strictly later in the stream, at most `W` later in time);
//! - `P(B)`: the share of all events followed by at least one B within `W`,
//!   which is what chance predicts for an A event if A and B were unrelated;
//! - `lift = P(B | A) / P(B)`, reported in the metadata and description;
//! - `confidence = clamp((L - P(B)) / (1 - P(B)), 0, 1)`, the certainty
//!   factor of `L`, the lower end of the 95% Wilson score interval of
//!   `P(B | A)`: 0 when A tells nothing about B, near 1 when B always
//!   follows A; unlike lift it is bounded and not inflated for rare B, and
//!   the lower bound keeps a few lucky co-occurrences from looking certain.
//!
//! `occurrences` is the number of A events followed by B. Pairs of a kind
//! with itself are left to the frequency patterns. The metadata carries the
//! delays from each such A to the earliest B after it (`mean_delay_ms`,
//! `max_delay_ms`) and, as `evidence`, the times of the last
//! [`EVIDENCE`] of those pairs (`[a_ms, b_ms]`).
//!
//! # Cost
//!
//! One pass with two pointers over the time-ordered events, keeping per-kind
//! counts of the events inside the window and a 64-bit mask of the kinds
//! present. Each event costs one step per kind present in its window, so
//! learning is linear with at most 64 steps per event; only the
//! `max_correlation_kinds` (at most 64) most frequent kinds are examined.
//! The earliest B in each window (for the mean delay) comes from a
//! precomputed "next event of the same kind" array, not from a search.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Pattern, PatternKind, Prepared, passes, round4};
use crate::analytics::stats::{certainty_factor, fmt_ms, wilson_lower};

const MAX_KINDS: usize = 64;
/// How many example pairs a correlation pattern carries as evidence.
pub const EVIDENCE: usize = 5;
const UNTRACKED: u8 = u8::MAX;

pub(crate) fn learn(p: &Prepared<'_>) -> Vec<Pattern> {
    if p.by_time.len() < 2 {
        return Vec::new();
    }
    let order = tracked_kinds(p);
    if order.len() < 2 {
        return Vec::new();
    }
    let counts = count_windows(p, &order);
    let slots = order.len();
    let mut out = Vec::new();
    for a in 0..slots {
        for b in (0..slots).filter(|&b| b != a) {
            out.extend(pattern_of(p, &order, &counts, a, b));
        }
    }
    out
}

/// The kinds examined: the most frequent (ties by id, for determinism)
/// among those with `min_occurrences`, at most `max_correlation_kinds` and
/// 64. Position `s` in the result is the kind's slot.
fn tracked_kinds(p: &Prepared<'_>) -> Vec<u32> {
    let mut order: Vec<u32> = (0..p.kinds.len() as u32)
        .filter(|&k| p.kind_count[k as usize] >= p.config.min_occurrences.max(1))
        .collect();
    order.sort_by_key(|&k| (std::cmp::Reverse(p.kind_count[k as usize]), k));
    order.truncate(p.config.max_correlation_kinds.min(MAX_KINDS));
    order
}

/// What the window pass counts; `[a * slots + b]` cells for the pair A -> B.
struct Counts {
    slots: usize,
    /// Events followed by at least one event of each slot within the window.
    any: [u64; MAX_KINDS],
    /// A events followed by at least one B within the window.
    hits: Vec<u64>,
    /// Sum of the delays from each such A to the earliest B.
    delay_sum: Vec<u64>,
    delay_max: Vec<u64>,
    first_hit: Vec<u64>,
    last_hit: Vec<u64>,
    /// The last [`EVIDENCE`] pairs `[a_ms, b_ms]`, oldest first.
    evidence: Vec<std::collections::VecDeque<[u64; 2]>>,
}

/// The one pass with two pointers over the time-ordered events.
fn count_windows(p: &Prepared<'_>, order: &[u32]) -> Counts {
    let events = &p.by_time;
    let n = events.len();
    let window = p.config.correlation_window_ms;
    let slots = order.len();
    let mut slot_of = vec![UNTRACKED; p.kinds.len()];
    for (s, &k) in order.iter().enumerate() {
        slot_of[k as usize] = s as u8;
    }
    let slot: Vec<u8> = events.iter().map(|e| slot_of[e.kind as usize]).collect();

    // next_same[i]: the next position holding the same tracked slot.
    let mut next_same = vec![usize::MAX; n];
    let mut upcoming = [usize::MAX; MAX_KINDS];
    for i in (0..n).rev() {
        let s = slot[i];
        if s != UNTRACKED {
            next_same[i] = upcoming[s as usize];
            upcoming[s as usize] = i;
        }
    }

    let mut in_window = [0u32; MAX_KINDS];
    let mut earliest = [usize::MAX; MAX_KINDS];
    let mut mask = 0u64;
    let mut c = Counts {
        slots,
        any: [0u64; MAX_KINDS],
        hits: vec![0u64; slots * slots],
        delay_sum: vec![0u64; slots * slots],
        delay_max: vec![0u64; slots * slots],
        evidence: vec![std::collections::VecDeque::new(); slots * slots],
        first_hit: vec![u64::MAX; slots * slots],
        last_hit: vec![0u64; slots * slots],
    };

    // The window holds positions i+1..head: later in the stream, within W.
    let mut head = 0usize;
    for i in 0..n {
        if head > i {
            let s = slot[i];
            if s != UNTRACKED {
                let s = s as usize;
                in_window[s] -= 1;
                if in_window[s] == 0 {
                    mask &= !(1u64 << s);
                    earliest[s] = usize::MAX;
                } else {
                    earliest[s] = next_same[i];
                }
            }
        } else {
            head = i + 1;
        }
        let t = events[i].ts;
        let limit = t.saturating_add(window);
        while head < n && events[head].ts <= limit {
            let s = slot[head];
            if s != UNTRACKED {
                let s = s as usize;
                if in_window[s] == 0 {
                    mask |= 1u64 << s;
                    earliest[s] = head;
                }
                in_window[s] += 1;
            }
            head += 1;
        }

        let mut m = mask;
        while m != 0 {
            c.any[m.trailing_zeros() as usize] += 1;
            m &= m - 1;
        }
        let a = slot[i];
        if a == UNTRACKED {
            continue;
        }
        let a = a as usize;
        let mut m = mask & !(1u64 << a);
        while m != 0 {
            let b = m.trailing_zeros() as usize;
            m &= m - 1;
            let cell = a * slots + b;
            c.hits[cell] += 1;
            let b_ts = events[earliest[b]].ts;
            c.delay_sum[cell] += b_ts - t;
            c.delay_max[cell] = c.delay_max[cell].max(b_ts - t);
            let evidence = &mut c.evidence[cell];
            if evidence.len() == EVIDENCE {
                evidence.pop_front();
            }
            evidence.push_back([t, b_ts]);
            c.first_hit[cell] = c.first_hit[cell].min(t);
            c.last_hit[cell] = c.last_hit[cell].max(t);
        }
    }
    c
}

/// The pattern A -> B (slots `a` and `b`), if it passes the thresholds.
fn pattern_of(p: &Prepared<'_>, order: &[u32], c: &Counts, a: usize, b: usize) -> Option<Pattern> {
    let cell = a * c.slots + b;
    let h = c.hits[cell];
    if h == 0 {
        return None;
    }
    let count_a = p.kind_count[order[a] as usize] as f64;
    let p_b_given_a = h as f64 / count_a;
    let p_b = c.any[b] as f64 / p.by_time.len() as f64;
    let lower = wilson_lower(h as f64, count_a, 1.96);
    let confidence = certainty_factor(lower, p_b);
    if !passes(p.config, h, confidence) {
        return None;
    }
    let lift = if p_b > 0.0 {
        p_b_given_a / p_b
    } else {
        f64::INFINITY
    };
    let window = p.config.correlation_window_ms;
    let mean_delay = c.delay_sum[cell] as f64 / h as f64;
    let (ka, kb) = (p.kind_name(order[a]), p.kind_name(order[b]));
    let mut metadata = BTreeMap::new();
    metadata.insert("lift".into(), json!(round4(lift)));
    metadata.insert("conditional_probability".into(), json!(round4(p_b_given_a)));
    metadata.insert("base_probability".into(), json!(round4(p_b)));
    metadata.insert("window_ms".into(), json!(window));
    metadata.insert("mean_delay_ms".into(), json!(round4(mean_delay)));
    metadata.insert("max_delay_ms".into(), json!(c.delay_max[cell]));
    metadata.insert("evidence".into(), json!(c.evidence[cell]));
    metadata.insert("direction".into(), json!(format!("{ka} -> {kb}")));
    Some(Pattern {
        id: format!("correlation:{ka}>{kb}"),
        kind: PatternKind::Correlation,
        description: format!(
            "{ka} -> {kb}, lift {lift:.1}, {:.0}% of the time within {} (mean delay {})",
            p_b_given_a * 100.0,
            fmt_ms(window as f64),
            fmt_ms(mean_delay),
        ),
        events: vec![ka.to_owned(), kb.to_owned()],
        confidence,
        occurrences: h,
        first_seen_ms: c.first_hit[cell],
        last_seen_ms: c.last_hit[cell],
        metadata,
    })
}
