//! Log-linear histograms: a lock-free recording side ([`AtomicHistogram`]) and a
//! plain aggregated side ([`Histogram`]) for quantiles, merging and export.
//!
//! # Bucket layout
//!
//! Values below 32 each have their own bucket (exact). Above, every power of two
//! `[2^e, 2^(e+1))` is split into 32 equal sub-buckets, so a bucket's width is at
//! most 1/32 of its lower bound. Quantiles report the bucket's midpoint, which is
//! within 1/64 (1.6%) of any value in the bucket. The layout covers values up to
//! 2^43 (about 2.4 hours in nanoseconds, 8 TiB in bytes); larger values land in
//! the top bucket, while the exact maximum is tracked beside the buckets.

use std::sync::atomic::{AtomicU64, Ordering};

/// Sub-buckets per power of two (2^SUB_BITS).
const SUB_BITS: u32 = 5;
const SUB_COUNT: usize = 1 << SUB_BITS;
/// Highest power of two with its own buckets; values at or above 2^(MAX_EXP+1) clamp.
const MAX_EXP: u32 = 42;
/// Number of buckets in every histogram.
pub const BUCKETS: usize = (MAX_EXP as usize - SUB_BITS as usize + 2) * SUB_COUNT;

/// The bucket index of `value`.
#[inline(always)]
pub fn bucket_index(value: u64) -> usize {
    if value < SUB_COUNT as u64 {
        return value as usize;
    }
    let exp = 63 - value.leading_zeros();
    if exp > MAX_EXP {
        return BUCKETS - 1;
    }
    let sub = (value >> (exp - SUB_BITS)) as usize & (SUB_COUNT - 1);
    (exp - SUB_BITS + 1) as usize * SUB_COUNT + sub
}

/// The lowest value of bucket `index`.
pub fn bucket_low(index: usize) -> u64 {
    if index < SUB_COUNT {
        return index as u64;
    }
    let exp = (index / SUB_COUNT) as u32 + SUB_BITS - 1;
    let sub = (index % SUB_COUNT) as u64;
    (1u64 << exp) + (sub << (exp - SUB_BITS))
}

/// The highest value of bucket `index` (inclusive).
pub fn bucket_high(index: usize) -> u64 {
    if index + 1 >= BUCKETS {
        return u64::MAX;
    }
    bucket_low(index + 1) - 1
}

/// The value a quantile falling in bucket `index` reports: its midpoint.
fn bucket_mid(index: usize) -> u64 {
    let low = bucket_low(index);
    if index + 1 >= BUCKETS {
        return low;
    }
    low + (bucket_high(index) - low) / 2
}

/// A fixed-size histogram written with atomics only.
///
/// Two write modes share the layout: [`record_exclusive`](Self::record_exclusive)
/// for a histogram only one thread writes (plain load/store, no locked
/// instruction), and [`record_shared`](Self::record_shared) for one several
/// threads write (`fetch_add`). Readers may run at any time from any thread.
/// Both write paths are wait-free and never allocate.
pub struct AtomicHistogram {
    buckets: [AtomicU64; BUCKETS],
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
}

impl AtomicHistogram {
    /// An empty histogram (boxed: it is about 10 KiB).
    pub fn new_boxed() -> Box<Self> {
        Box::new(Self {
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
            sum: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
        })
    }

    /// Records `value` when no other thread writes this histogram concurrently.
    ///
    /// Readers on other threads see each field's latest store; `Relaxed` is
    /// enough because readers tolerate seeing a bucket before the matching sum.
    #[inline(always)]
    pub fn record_exclusive(&self, value: u64) {
        let bucket = &self.buckets[bucket_index(value)];
        bucket.store(bucket.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.sum.store(
            self.sum.load(Ordering::Relaxed).wrapping_add(value),
            Ordering::Relaxed,
        );
        if value < self.min.load(Ordering::Relaxed) {
            self.min.store(value, Ordering::Relaxed);
        }
        if value > self.max.load(Ordering::Relaxed) {
            self.max.store(value, Ordering::Relaxed);
        }
    }

    /// Records `value` when other threads may write this histogram concurrently.
    #[inline]
    pub fn record_shared(&self, value: u64) {
        self.buckets[bucket_index(value)].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
        // Loads first: after warm-up the extremes rarely change, and a plain
        // load is far cheaper than a locked read-modify-write.
        if value < self.min.load(Ordering::Relaxed) {
            self.min.fetch_min(value, Ordering::Relaxed);
        }
        if value > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(value, Ordering::Relaxed);
        }
    }

    /// Adds this histogram's current contents into `into`.
    pub fn add_to(&self, into: &mut Histogram) {
        for (dst, src) in into.counts.iter_mut().zip(&self.buckets) {
            *dst += src.load(Ordering::Relaxed);
        }
        into.sum = into.sum.wrapping_add(self.sum.load(Ordering::Relaxed));
        into.min = into.min.min(self.min.load(Ordering::Relaxed));
        into.max = into.max.max(self.max.load(Ordering::Relaxed));
    }

    /// Zeroes the histogram. Only correct when no thread records concurrently.
    pub fn clear(&self) {
        for bucket in &self.buckets {
            bucket.store(0, Ordering::Relaxed);
        }
        self.sum.store(0, Ordering::Relaxed);
        self.min.store(u64::MAX, Ordering::Relaxed);
        self.max.store(0, Ordering::Relaxed);
    }
}

/// A plain histogram with the same layout: the result of merging atomic ones.
#[derive(Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    sum: u64,
    min: u64,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count())
            .field("sum", &self.sum)
            .field("min", &self.min())
            .field("max", &self.max())
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: Box::new([0; BUCKETS]),
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Records one value.
    pub fn record(&mut self, value: u64) {
        self.record_n(value, 1);
    }

    /// Records `count` occurrences of `value`.
    pub fn record_n(&mut self, value: u64, count: u64) {
        if count == 0 {
            return;
        }
        self.counts[bucket_index(value)] += count;
        self.sum = self.sum.wrapping_add(value.wrapping_mul(count));
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Histogram) {
        for (dst, src) in self.counts.iter_mut().zip(other.counts.iter()) {
            *dst += src;
        }
        self.sum = self.sum.wrapping_add(other.sum);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Sum of recorded values (exact, wrapping on overflow).
    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// Smallest recorded value (exact), 0 when empty.
    pub fn min(&self) -> u64 {
        if self.min == u64::MAX { 0 } else { self.min }
    }

    /// Largest recorded value (exact), 0 when empty.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Arithmetic mean (exact), 0 when empty.
    pub fn mean(&self) -> f64 {
        let count = self.count();
        if count == 0 {
            0.0
        } else {
            self.sum as f64 / count as f64
        }
    }

    /// The value at quantile `q` in `[0, 1]` by nearest rank: the smallest
    /// recorded value such that at least `q` of all values are at or below it.
    ///
    /// Within 1.6% of the exact value for values up to 2^43, and always within
    /// the exact `[min, max]`. Returns 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        let count = self.count();
        if count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_mid(index).clamp(self.min(), self.max);
            }
        }
        self.max
    }

    /// Number of values at or below `value`, judging a bucket by its midpoint.
    pub fn count_at_or_below(&self, value: u64) -> u64 {
        self.counts
            .iter()
            .enumerate()
            .take_while(|&(i, _)| bucket_mid(i) <= value)
            .map(|(_, n)| n)
            .sum()
    }

    /// Non-empty buckets as `(midpoint, count)`, in increasing order.
    pub fn iter_buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .map(|(i, &n)| (bucket_mid(i).clamp(self.min(), self.max), n))
    }

    /// Converts to an `hdrhistogram::Histogram` (3 significant digits), recording
    /// each bucket's midpoint with its count.
    pub fn to_hdr(&self) -> hdrhistogram::Histogram<u64> {
        let high = self.max.max(2);
        let mut hdr = hdrhistogram::Histogram::<u64>::new_with_bounds(1, high, 3)
            .expect("bounds 1..=max with 3 digits are always valid");
        for (value, count) in self.iter_buckets() {
            hdr.record_n(value.max(1), count)
                .expect("values are clamped to the histogram's max");
        }
        hdr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_contiguous_and_monotonic() {
        assert_eq!(bucket_index(0), 0);
        assert_eq!(bucket_index(31), 31);
        assert_eq!(bucket_index(32), 32);
        for index in 0..BUCKETS - 1 {
            assert_eq!(bucket_index(bucket_low(index)), index, "low of {index}");
            assert_eq!(bucket_index(bucket_high(index)), index, "high of {index}");
            assert_eq!(bucket_high(index) + 1, bucket_low(index + 1));
        }
        assert_eq!(bucket_index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn bucket_midpoints_are_within_error_bound() {
        for index in SUB_COUNT..BUCKETS - 1 {
            let (low, high, mid) = (bucket_low(index), bucket_high(index), bucket_mid(index));
            for value in [low, high] {
                let error = (mid as f64 - value as f64).abs() / value as f64;
                assert!(
                    error <= 1.0 / 64.0 + 1e-12,
                    "bucket {index}: {value} -> {mid}"
                );
            }
        }
    }

    #[test]
    fn quantiles_follow_nearest_rank() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.0), 1);
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(1.0), 100);
        assert_eq!(h.count(), 100);
        assert_eq!(h.min(), 1);
        assert_eq!(h.max(), 100);
        assert!((h.mean() - 50.5).abs() < 1e-9);
    }

    #[test]
    fn exclusive_and_shared_writes_agree() {
        let a = AtomicHistogram::new_boxed();
        let b = AtomicHistogram::new_boxed();
        for v in [5, 1_000, 77_777, 1 << 50] {
            a.record_exclusive(v);
            b.record_shared(v);
        }
        let (mut ha, mut hb) = (Histogram::new(), Histogram::new());
        a.add_to(&mut ha);
        b.add_to(&mut hb);
        assert_eq!(ha, hb);
        assert_eq!(ha.max(), 1 << 50);
        assert_eq!(ha.min(), 5);
    }

    #[test]
    fn shared_writes_from_threads_are_all_counted() {
        let h = AtomicHistogram::new_boxed();
        std::thread::scope(|s| {
            for t in 0..4 {
                let h = &h;
                s.spawn(move || {
                    for i in 0..50_000u64 {
                        h.record_shared(i % 1000 + t);
                    }
                });
            }
        });
        let mut merged = Histogram::new();
        h.add_to(&mut merged);
        assert_eq!(merged.count(), 200_000);
    }

    #[test]
    fn hdr_conversion_keeps_count_and_quantiles() {
        let mut h = Histogram::new();
        for v in (1..10_000u64).map(|i| i * 997) {
            h.record(v);
        }
        let hdr = h.to_hdr();
        assert_eq!(hdr.len(), h.count());
        let ours = h.quantile(0.99) as f64;
        let theirs = hdr.value_at_quantile(0.99) as f64;
        assert!((ours - theirs).abs() / ours < 0.01);
    }
}
