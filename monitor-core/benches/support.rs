//! Shared pieces of the recording benchmarks: the workload, a two-thread
//! runner, and the table of ratios printed at the end of a run.

#![allow(dead_code)] // each bench binary uses a subset

use std::cell::RefCell;
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::Criterion;

/// The instrumented workload: a few arithmetic operations, about a nanosecond.
#[inline(never)]
pub fn work(x: u64) -> u64 {
    black_box(x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) ^ 0x5555)
}

thread_local! {
    static RESULTS: RefCell<Vec<(String, f64)>> = const { RefCell::new(Vec::new()) };
}

/// A criterion configuration short enough for a 2-core machine.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args()
}

/// Benchmarks `f` (one call per iteration) and keeps its mean ns per call.
pub fn single(c: &mut Criterion, name: &str, mut f: impl FnMut(u64)) {
    let mut total = (Duration::ZERO, 0u64);
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                f(black_box(i));
            }
            let elapsed = start.elapsed();
            total.0 += elapsed;
            total.1 += iters;
            elapsed
        })
    });
    keep(name, total);
}

/// Benchmarks `f` run by two threads at once; keeps the mean ns per call as
/// each thread sees it (flat = as fast as one thread alone).
pub fn two_threads(c: &mut Criterion, name: &str, f: impl Fn(u64) + Sync) {
    let mut total = (Duration::ZERO, 0u64);
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let barrier = Barrier::new(2);
            let elapsed = std::thread::scope(|s| {
                let run = || {
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..iters {
                        f(black_box(i));
                    }
                    start.elapsed()
                };
                let a = s.spawn(run);
                let b = s.spawn(run);
                a.join().unwrap().max(b.join().unwrap())
            });
            total.0 += elapsed;
            total.1 += iters;
            elapsed
        })
    });
    keep(name, total);
}

fn keep(name: &str, (elapsed, iters): (Duration, u64)) {
    let ns = elapsed.as_nanos() as f64 / iters.max(1) as f64;
    RESULTS.with(|r| r.borrow_mut().push((name.to_owned(), ns)));
}

/// Mean ns per call of a benchmark already run.
pub fn result(name: &str) -> f64 {
    RESULTS.with(|r| {
        r.borrow()
            .iter()
            .find(|(n, _)| n == name)
            .map_or(f64::NAN, |(_, ns)| *ns)
    })
}

/// Prints every benchmark's ns per call and its ratio to `floor`.
pub fn print_table(title: &str, floor: &str) {
    let floor_ns = result(floor);
    println!("\n{title} (ratio against {floor}, {floor_ns:.1} ns)");
    println!("| benchmark | ns/call | ratio to floor |");
    println!("|---|---:|---:|");
    RESULTS.with(|r| {
        for (name, ns) in r.borrow().iter() {
            println!("| {name} | {ns:.1} | {:.2}x |", ns / floor_ns);
        }
    });
}
