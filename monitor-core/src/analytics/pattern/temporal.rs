//! Temporal patterns: a kind concentrated in an hour-of-day or day-of-week
//! window ("backup concentrated 02:00-03:00 UTC").
//!
//! # Confidence
//!
//! Each kind's events are counted by hour of day (24 bins) and day of week
//! (7 bins, Monday first), in UTC shifted by `utc_offset_minutes`. For every
//! contiguous window (wrapping at midnight or at the week's end) of 1 to 6
//! hours, or 1 to 5 days:
//!
//! - `share`: the 95% Wilson lower bound of the share of the kind's events
//!   falling in the window, so a handful of events cannot look concentrated
//!   by luck;
//! - `base`: the share of all events falling in the window, which is what
//!   chance predicts if the kind followed the overall activity (so a system
//!   busy only in office hours does not make every kind "temporal");
//! - `confidence = clamp((share - base) / (1 - base), 0, 1)`, the certainty
//!   factor.
//!
//! The window with the highest confidence is reported (the narrower one on a
//! tie), at most one hour-of-day and one day-of-week pattern per kind.
//! `occurrences` is the number of the kind's events inside the window.
//!
//! # Cost
//!
//! One pass filling 31 counters per kind, then a constant amount of work per
//! kind: linear.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Pattern, PatternKind, Prepared, passes, round4};
use crate::analytics::stats::{certainty_factor, wilson_lower};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Hour of day (0..24) and day of week (0 = Monday) of `ts` shifted by `offset_ms`.
fn hour_and_weekday(ts: u64, offset_ms: i64) -> (usize, usize) {
    let local = ts as i64 + offset_ms;
    let hour = local.div_euclid(HOUR_MS).rem_euclid(24) as usize;
    // 1970-01-01 was a Thursday (index 3).
    let weekday = (local.div_euclid(DAY_MS) + 3).rem_euclid(7) as usize;
    (hour, weekday)
}

struct Best {
    start: usize,
    width: usize,
    inside: u64,
    share: f64,
    base: f64,
    confidence: f64,
}

/// The most concentrated window of `counts` against `all`.
fn best_window(
    counts: &[u64],
    all: &[u64],
    total: u64,
    all_total: u64,
    widths: std::ops::RangeInclusive<usize>,
) -> Option<Best> {
    let bins = counts.len();
    let mut best: Option<Best> = None;
    for width in widths {
        for start in 0..bins {
            let (mut inside, mut inside_all) = (0u64, 0u64);
            for j in 0..width {
                inside += counts[(start + j) % bins];
                inside_all += all[(start + j) % bins];
            }
            let share = wilson_lower(inside as f64, total as f64, 1.96);
            let base = inside_all as f64 / all_total as f64;
            let confidence = certainty_factor(share, base);
            if best.as_ref().is_none_or(|b| confidence > b.confidence) {
                best = Some(Best {
                    start,
                    width,
                    inside,
                    share: inside as f64 / total as f64,
                    base,
                    confidence,
                });
            }
        }
    }
    best
}

pub(crate) fn learn(p: &Prepared<'_>) -> Vec<Pattern> {
    let offset_ms = i64::from(p.config.utc_offset_minutes) * 60_000;
    let n_kinds = p.kinds.len();
    let mut hours = vec![[0u64; 24]; n_kinds];
    let mut days = vec![[0u64; 7]; n_kinds];
    let mut all_hours = [0u64; 24];
    let mut all_days = [0u64; 7];
    for e in &p.by_time {
        let (h, d) = hour_and_weekday(e.ts, offset_ms);
        hours[e.kind as usize][h] += 1;
        days[e.kind as usize][d] += 1;
        all_hours[h] += 1;
        all_days[d] += 1;
    }
    let all_total = p.by_time.len() as u64;
    let zone = zone_name(p.config.utc_offset_minutes);
    let mut out = Vec::new();
    for k in 0..n_kinds {
        let total = p.kind_count[k];
        if total < p.config.min_occurrences.max(1) {
            continue;
        }
        let name = p.kind_name(k as u32);
        if let Some(b) = best_window(&hours[k], &all_hours, total, all_total, 1..=6)
            && passes(p.config, b.inside, b.confidence)
        {
            let window = format!(
                "{:02}:00-{:02}:00 {zone}",
                b.start,
                (b.start + b.width) % 24
            );
            out.push(to_pattern(p, k, name, &b, "hour_of_day", &window, total));
        }
        if let Some(b) = best_window(&days[k], &all_days, total, all_total, 1..=5)
            && passes(p.config, b.inside, b.confidence)
        {
            let last = (b.start + b.width - 1) % 7;
            let window = if b.width == 1 {
                DAYS[b.start].to_owned()
            } else {
                format!("{}-{}", DAYS[b.start], DAYS[last])
            };
            out.push(to_pattern(p, k, name, &b, "day_of_week", &window, total));
        }
    }
    out
}

fn zone_name(offset_minutes: i32) -> String {
    if offset_minutes == 0 {
        return "UTC".to_owned();
    }
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let m = offset_minutes.unsigned_abs();
    format!("UTC{sign}{:02}:{:02}", m / 60, m % 60)
}

fn to_pattern(
    p: &Prepared<'_>,
    k: usize,
    name: &str,
    b: &Best,
    scale: &str,
    window: &str,
    total: u64,
) -> Pattern {
    let mut metadata = BTreeMap::new();
    metadata.insert("scale".into(), json!(scale));
    metadata.insert("window".into(), json!(window));
    metadata.insert("window_start".into(), json!(b.start));
    metadata.insert("window_width".into(), json!(b.width));
    metadata.insert("share".into(), json!(round4(b.share)));
    metadata.insert("base_share".into(), json!(round4(b.base)));
    Pattern {
        id: format!("temporal:{name}@{scale}:{}+{}", b.start, b.width),
        kind: PatternKind::Temporal,
        description: format!(
            "{name} concentrated in {window} ({:.0}% of {total} occurrences vs {:.0}% of all events)",
            b.share * 100.0,
            b.base * 100.0,
        ),
        events: vec![name.to_owned()],
        confidence: b.confidence,
        occurrences: b.inside,
        first_seen_ms: p.kind_first[k],
        last_seen_ms: p.kind_last[k],
        metadata,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_arithmetic() {
        // 1970-01-01T00:00Z was a Thursday; 2024-01-01T13:30Z a Monday.
        assert_eq!(hour_and_weekday(0, 0), (0, 3));
        assert_eq!(hour_and_weekday(1_704_115_800_000, 0), (13, 0));
        // Shifted back two hours: still Sunday night locally at 00:30Z Monday.
        assert_eq!(hour_and_weekday(1_704_069_000_000, -120 * 60_000), (22, 6));
        assert_eq!(zone_name(-90), "UTC-01:30");
    }
}
