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
//! - `base`: what chance predicts. With [`TemporalBaseline::Events`] (the
//!   default), the share of all events falling in the window, so a system
//!   busy only in office hours does not make every kind "temporal"; with
//!   [`TemporalBaseline::Clock`], the share of the time observed (from the
//!   first event of any kind to the last) that falls in the window: 2 hours
//!   of a day over whole weeks is 2/24, and a stream of Monday to Wednesday
//!   makes no kind concentrated on Mon-Wed;
//! - `confidence = clamp((share - base) / (1 - base), 0, 1)`, the certainty
//!   factor.
//!
//! The window with the highest confidence is reported (the narrower one on a
//! tie), at most one hour-of-day and one day-of-week pattern per kind.
//! `occurrences` is the number of the kind's events inside the window.
//!
//! A third scale, `weekly`, joins the two: an hour window (1 to 6 hours) on
//! some days only (a run of 1 to 6 days), such as "03:00-04:00 on Mon-Fri",
//! with the same measure over the cells of the week (168 hours). A schedule
//! kept on weekdays only is much stronger evidence than its hour alone; the
//! weekly pattern replaces the kind's hour-of-day pattern when its confidence
//! is higher, which never happens for a kind that keeps its hour every day
//! (the days it leaves out hold some of its events).
//!
//! # Cost
//!
//! One pass filling 168 counters per kind (hour of the week), then a
//! constant amount of work per kind (about 40,000 steps for the weekly
//! windows): linear.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Pattern, PatternKind, Prepared, TemporalBaseline, passes, round4};
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

/// What chance predicts for the windows of one scale: per bin, the events
/// of all kinds, or the time observed (see [`exposure`]).
struct Chance<'a> {
    all: &'a [f64],
    all_total: f64,
}

impl Chance<'_> {
    /// The base share of `width` bins from `start` (wrapping).
    fn base(&self, start: usize, width: usize) -> f64 {
        let bins = self.all.len();
        let inside: f64 = (0..width).map(|j| self.all[(start + j) % bins]).sum();
        inside / self.all_total
    }
}

/// The time observed in each hour of the week (`[day][hour]`, in hours):
/// the hours from the first event to the last. A stream that covers
/// Monday to Wednesday makes no kind "concentrated on Mon-Wed". A stream of
/// one instant counts every hour once.
fn exposure(first_ms: u64, last_ms: u64, offset_ms: i64) -> [[f64; 24]; 7] {
    let mut grid = [[0.0; 24]; 7];
    let hours = (last_ms.saturating_sub(first_ms) / HOUR_MS as u64).min(24 * 7 * 52 * 10);
    if hours == 0 {
        return [[1.0; 24]; 7];
    }
    for h in 0..hours {
        let (hour, day) = hour_and_weekday(first_ms + h * HOUR_MS as u64, offset_ms);
        grid[day][hour] += 1.0;
    }
    grid
}

/// The most concentrated window of `counts` against `chance`.
fn best_window(
    counts: &[u64],
    chance: &Chance<'_>,
    total: u64,
    widths: std::ops::RangeInclusive<usize>,
) -> Option<Best> {
    let bins = counts.len();
    let mut best: Option<Best> = None;
    for width in widths {
        for start in 0..bins {
            let inside: u64 = (0..width).map(|j| counts[(start + j) % bins]).sum();
            let share = wilson_lower(inside as f64, total as f64, 1.96);
            let base = chance.base(start, width);
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

/// The best weekly window: `best.start`/`best.width` are the hours, the
/// days are `day_start`/`day_width`.
struct Weekly {
    best: Best,
    day_start: usize,
    day_width: usize,
}

/// The most concentrated hour window on a run of days (1 to 6) of `grid`
/// (`[day][hour]` counts) against `all` (the same for all events, or `None`
/// for the clock).
fn best_weekly(grid: &[[u64; 24]; 7], all: &[[f64; 24]; 7], total: u64) -> Option<Weekly> {
    let all_total: f64 = all.iter().flatten().sum();
    let mut best: Option<Weekly> = None;
    for hour_width in 1..=6 {
        for hour_start in 0..24 {
            let hour_cells = |d: usize| (0..hour_width).map(move |j| (d, (hour_start + j) % 24));
            let kind_days: [u64; 7] =
                std::array::from_fn(|d| hour_cells(d).map(|(d, h)| grid[d][h]).sum());
            if kind_days.iter().all(|&c| c == 0) {
                continue;
            }
            let all_days: [f64; 7] =
                std::array::from_fn(|d| hour_cells(d).map(|(d, h)| all[d][h]).sum());
            for day_width in 1..=6 {
                for day_start in 0..7 {
                    let days = (0..day_width).map(|j| (day_start + j) % 7);
                    let inside: u64 = days.clone().map(|d| kind_days[d]).sum();
                    let base = days.map(|d| all_days[d]).sum::<f64>() / all_total;
                    let share = wilson_lower(inside as f64, total as f64, 1.96);
                    let confidence = certainty_factor(share, base);
                    if best.as_ref().is_none_or(|b| confidence > b.best.confidence) {
                        best = Some(Weekly {
                            best: Best {
                                start: hour_start,
                                width: hour_width,
                                inside,
                                share: inside as f64 / total as f64,
                                base,
                                confidence,
                            },
                            day_start,
                            day_width,
                        });
                    }
                }
            }
        }
    }
    best
}

/// Per kind: events by day of week and hour (`[day][hour]`); and what
/// chance predicts per cell: all events, or the time observed.
fn grids(p: &Prepared<'_>, offset_ms: i64, clock: bool) -> (Vec<[[u64; 24]; 7]>, [[f64; 24]; 7]) {
    let mut grids = vec![[[0u64; 24]; 7]; p.kinds.len()];
    let mut all = [[0.0; 24]; 7];
    for e in &p.by_time {
        let (h, d) = hour_and_weekday(e.ts, offset_ms);
        grids[e.kind as usize][d][h] += 1;
        all[d][h] += 1.0;
    }
    if clock && let (Some(first), Some(last)) = (p.by_time.first(), p.by_time.last()) {
        all = exposure(first.ts, last.ts, offset_ms);
    }
    (grids, all)
}

fn hours_of<T: Copy + std::iter::Sum<T>>(grid: &[[T; 24]; 7]) -> [T; 24] {
    std::array::from_fn(|h| grid.iter().map(|d| d[h]).sum())
}

fn days_of<T: Copy + std::iter::Sum<T>>(grid: &[[T; 24]; 7]) -> [T; 7] {
    std::array::from_fn(|d| grid[d].iter().copied().sum())
}

fn day_window(start: usize, width: usize) -> String {
    let last = (start + width - 1) % 7;
    if width == 1 {
        DAYS[start].to_owned()
    } else {
        format!("{}-{}", DAYS[start], DAYS[last])
    }
}

pub(crate) fn learn(p: &Prepared<'_>) -> Vec<Pattern> {
    let offset_ms = i64::from(p.config.utc_offset_minutes) * 60_000;
    let clock = p.config.temporal_baseline == TemporalBaseline::Clock;
    let (grids, all) = grids(p, offset_ms, clock);
    let (all_hours, all_days) = (hours_of(&all), days_of(&all));
    let all_total: f64 = all_days.iter().sum();
    let hour_chance = Chance {
        all: &all_hours,
        all_total,
    };
    let day_chance = Chance {
        all: &all_days,
        all_total,
    };
    let zone = zone_name(p.config.utc_offset_minutes);
    let mut out = Vec::new();
    for (k, grid) in grids.iter().enumerate() {
        let total = p.kind_count[k];
        if total < p.config.min_occurrences.max(1) {
            continue;
        }
        let name = p.kind_name(k as u32);
        let hour = best_window(&hours_of(grid), &hour_chance, total, 1..=6)
            .filter(|b| passes(p.config, b.inside, b.confidence));
        let weekly = best_weekly(grid, &all, total)
            .filter(|w| passes(p.config, w.best.inside, w.best.confidence))
            .filter(|w| {
                hour.as_ref()
                    .is_none_or(|h| w.best.confidence > h.confidence)
            });
        if let Some(w) = weekly {
            let hours = format!(
                "{:02}:00-{:02}:00 {zone}",
                w.best.start,
                (w.best.start + w.best.width) % 24
            );
            let window = format!("{} {hours}", day_window(w.day_start, w.day_width));
            let mut pattern = to_pattern(p, k, name, &w.best, "weekly", &window, total);
            pattern.id = format!(
                "temporal:{name}@weekly:{}+{}:{}+{}",
                w.day_start, w.day_width, w.best.start, w.best.width
            );
            pattern
                .metadata
                .insert("day_start".into(), json!(w.day_start));
            pattern
                .metadata
                .insert("day_width".into(), json!(w.day_width));
            pattern.metadata.insert(
                "days".into(),
                json!(
                    (0..w.day_width)
                        .map(|j| DAYS[(w.day_start + j) % 7])
                        .collect::<Vec<_>>()
                ),
            );
            out.push(pattern);
        } else if let Some(b) = hour {
            let window = format!(
                "{:02}:00-{:02}:00 {zone}",
                b.start,
                (b.start + b.width) % 24
            );
            out.push(to_pattern(p, k, name, &b, "hour_of_day", &window, total));
        }
        if let Some(b) = best_window(&days_of(grid), &day_chance, total, 1..=5)
            && passes(p.config, b.inside, b.confidence)
        {
            let window = day_window(b.start, b.width);
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
