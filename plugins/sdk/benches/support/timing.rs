//! The timing helper the plugin benches share (`encode` here, `parse` of the `prometheus`
//! collector): criterion runs and reports each case, and the mean time per call comes back for
//! the table of ratios a bench prints at the end.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;

/// Benchmarks `f` and returns its mean time per call.
pub fn time(c: &mut Criterion, name: &str, mut f: impl FnMut() -> usize) -> Duration {
    let mut total = (Duration::ZERO, 0u32);
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(f());
            }
            let elapsed = start.elapsed();
            total.0 += elapsed;
            total.1 += u32::try_from(iters).unwrap_or(u32::MAX);
            elapsed
        });
    });
    total.0 / total.1.max(1)
}
