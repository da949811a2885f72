//! Every time conversion of the crate: the clock of the recording path (a
//! calibrated TSC read through `quanta` where the CPU has an invariant one,
//! the monotonic clock otherwise), wall-clock Unix times, the coarse minute
//! and hour indices the time windows are keyed by, and the JSON form of a
//! `SystemTime`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

struct Base {
    clock: quanta::Clock,
    /// Raw reading taken at `unix_ns`.
    raw: u64,
    unix_ns: u64,
    /// Raw ticks per 2^20 nanoseconds, for converting a span of time to ticks.
    ticks_per_mega_ns: u64,
}

static BASE: OnceLock<Base> = OnceLock::new();

#[inline(always)]
fn base() -> &'static Base {
    BASE.get_or_init(|| crate::alloc::excluded(init_base))
}

fn init_base() -> Base {
    // The first timed call of the process lands here before its body
    // runs: the moment to chain the panic hook that names panics.
    crate::panic::install_panic_hook();
    let clock = quanta::Clock::new();
    let raw = clock.raw();
    let unix_ns = unix_ns(SystemTime::now());
    // delta_as_nanos is linear in ticks; measure the ns of a large tick span and invert.
    let span = 1u64 << 40;
    let ns = clock.delta_as_nanos(0, span).max(1);
    let ticks_per_mega_ns = ((span as u128) << 20).div_ceil(ns as u128) as u64;
    Base {
        clock,
        raw,
        unix_ns,
        ticks_per_mega_ns: ticks_per_mega_ns.max(1),
    }
}

/// Reads the raw clock: TSC ticks, or nanoseconds on the fallback clock.
#[inline(always)]
pub fn now_raw() -> u64 {
    base().clock.raw()
}

/// Nanoseconds between two raw readings (0 if `end` precedes `start`).
#[inline(always)]
pub fn delta_ns(start: u64, end: u64) -> u64 {
    base().clock.delta_as_nanos(start, end)
}

/// Nanoseconds since the Unix epoch of a wall-clock time (0 before it).
pub fn unix_ns(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos() as u64
}

/// Wall-clock nanoseconds since the Unix epoch at a raw reading.
pub fn unix_ns_at(raw: u64) -> u64 {
    let base = base();
    base.unix_ns + base.clock.delta_as_nanos(base.raw, raw)
}

/// Nanoseconds in a window minute.
pub const MINUTE_NS: u64 = 60_000_000_000;

/// Packed (hour << 32 | minute) of the current minute, since the Unix epoch.
static CURRENT: AtomicU64 = AtomicU64::new(0);
/// Raw reading at which the current minute ends; 0 forces the first computation.
static CURRENT_END_RAW: AtomicU64 = AtomicU64::new(0);

/// A minute index and its hour index, both counted from the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowIndex {
    /// Minutes since the Unix epoch.
    pub minute: u64,
    /// Hours since the Unix epoch.
    pub hour: u64,
}

impl WindowIndex {
    /// The window of a wall-clock time.
    pub fn of_time(time: SystemTime) -> Self {
        Self::of_unix_ns(unix_ns(time))
    }

    /// The window of the current wall-clock time.
    pub fn now() -> Self {
        Self::of_time(SystemTime::now())
    }

    fn of_unix_ns(ns: u64) -> Self {
        let minute = ns / MINUTE_NS;
        Self {
            minute,
            hour: minute / 60,
        }
    }
}

/// The window of a raw reading taken "now" (the end of a call being recorded).
///
/// Costs two relaxed loads while the minute lasts; once a minute one caller
/// recomputes it. Concurrent recomputations store the same values.
#[inline(always)]
pub fn window_at(raw: u64) -> WindowIndex {
    if raw < CURRENT_END_RAW.load(Ordering::Acquire) {
        let packed = CURRENT.load(Ordering::Relaxed);
        return WindowIndex {
            minute: packed & 0xFFFF_FFFF,
            hour: packed >> 32,
        };
    }
    window_slow(raw)
}

#[cold]
fn window_slow(raw: u64) -> WindowIndex {
    let unix_ns = unix_ns_at(raw);
    let index = WindowIndex::of_unix_ns(unix_ns);
    let remaining_ns = (index.minute + 1) * MINUTE_NS - unix_ns;
    let ticks = ((remaining_ns as u128 * base().ticks_per_mega_ns as u128) >> 20) as u64;
    CURRENT.store((index.hour << 32) | index.minute, Ordering::Relaxed);
    // Release: a reader that sees the new end also sees the new index.
    CURRENT_END_RAW.store(raw.saturating_add(ticks), Ordering::Release);
    index
}

/// Serde helper: a `SystemTime` as fractional Unix seconds.
pub mod unix_seconds {
    use serde::Serializer;
    use std::time::{SystemTime, UNIX_EPOCH};

    /// Serialises `time` as fractional seconds since the Unix epoch (0 before it).
    pub fn serialize<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let secs = time
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        s.serialize_f64(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_deltas_track_real_time() {
        let start = now_raw();
        let wall = std::time::Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        let ns = delta_ns(start, now_raw());
        let real = wall.elapsed().as_nanos() as f64;
        assert!((ns as f64 - real).abs() / real < 0.2, "{ns} vs {real}");
    }

    #[test]
    fn window_matches_wall_clock() {
        let now = WindowIndex::of_time(SystemTime::now());
        let ours = window_at(now_raw());
        assert!(ours.minute.abs_diff(now.minute) <= 1);
        assert_eq!(ours.hour, ours.minute / 60);
    }
}
