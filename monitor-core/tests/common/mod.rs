//! Seeded random streams shared by the analytics tests.
#![allow(dead_code)] // each test file uses its own subset

use monitor_core::analytics::Event;

/// 2024-01-01T00:00:00Z, a Monday.
pub const MONDAY_MS: u64 = 1_704_067_200_000;
pub const SECOND: u64 = 1_000;
pub const HOUR: u64 = 3_600_000;
pub const DAY: u64 = 86_400_000;

/// SplitMix64: small, seedable, good enough for test streams.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }
}

/// `n` events of `kinds` random kinds (`noise_0`...) from `agents` random
/// agents, at uniformly random times in `[start, start + span)`, time-ordered.
pub fn noise(
    rng: &mut Rng,
    n: usize,
    kinds: u64,
    agents: u64,
    start: u64,
    span: u64,
) -> Vec<Event> {
    let mut events: Vec<Event> = (0..n)
        .map(|_| {
            let kind = format!("noise_{}", rng.below(kinds));
            let mut e = Event::new(kind.as_str(), start + rng.below(span));
            if agents > 0 {
                e = e.with_agent(format!("agent-{}", rng.below(agents)));
            }
            e
        })
        .collect();
    events.sort_by_key(|e| e.timestamp_ms);
    events
}

/// Merges streams by time (stable).
pub fn merge(mut streams: Vec<Vec<Event>>) -> Vec<Event> {
    let mut all: Vec<Event> = streams.drain(..).flatten().collect();
    all.sort_by_key(|e| e.timestamp_ms);
    all
}
