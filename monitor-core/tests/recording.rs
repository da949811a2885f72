//! The recording path through guards and named operations: exact counts
//! under concurrency, quantile accuracy, failures, panics, reset, memory.

use std::sync::Barrier;
use std::time::Duration;

use monitor_core::__private::{Callsite, CallsiteRef, inventory};
use monitor_core::{Guard, Registry};

static NEVER_CALLED: Callsite = Callsite::new(
    "recording::never_called",
    module_path!(),
    file!(),
    line!(),
    0,
);
inventory::submit! { CallsiteRef(&NEVER_CALLED) }

static HAMMERED: Callsite =
    Callsite::new("recording::hammered", module_path!(), file!(), line!(), 0);
inventory::submit! { CallsiteRef(&HAMMERED) }

#[test]
fn static_callsites_are_listed_before_their_first_call() {
    let f = monitor_core::global()
        .function("recording::never_called")
        .expect("listed");
    assert_eq!((f.calls, f.failures, f.success_rate), (0, 0, 1.0));
    assert_eq!(NEVER_CALLED.heap_bytes(), 0);
    assert!(
        std::mem::size_of::<Callsite>() <= 256,
        "{}",
        std::mem::size_of::<Callsite>()
    );
}

#[test]
fn two_threads_million_calls_each_are_counted_exactly() {
    const PER_THREAD: u64 = 1_000_000;
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                for i in 0..PER_THREAD {
                    let g = Guard::new(&HAMMERED);
                    if (i + t) % 10 == 0 {
                        g.fail();
                    }
                }
            });
        }
    });
    let f = monitor_core::global()
        .function("recording::hammered")
        .unwrap();
    assert_eq!(f.calls, 2 * PER_THREAD);
    assert_eq!(f.failures, 2 * PER_THREAD / 10);
    assert_eq!(f.successes, f.calls - f.failures);
    assert!((f.success_rate - 0.9).abs() < 1e-12);
    assert!(f.calls_24h >= f.calls);
    // Two recording threads: two exclusive shards, well under 64 KiB.
    assert!(
        HAMMERED.heap_bytes() <= 64 * 1024,
        "{} bytes",
        HAMMERED.heap_bytes()
    );
}

#[test]
fn quantiles_are_within_two_percent_of_exact() {
    let reg = Registry::new();
    // A log-uniform spread from 1 us to 10 s, deterministic.
    let mut values: Vec<u64> = (0..100_000u64)
        .map(|i| {
            let x = ((i.wrapping_mul(2654435761) % 100_000) as f64) / 100_000.0;
            (1_000.0 * 10f64.powf(7.0 * x)) as u64
        })
        .collect();
    for &v in &values {
        reg.record("dist", Duration::from_nanos(v), true);
    }
    values.sort_unstable();
    let f = reg.function("dist").unwrap();
    let exact = |q: f64| values[((q * values.len() as f64).ceil() as usize).max(1) - 1] as f64;
    let d = f.duration_ns;
    for (q, got) in [
        (0.5, d.p50),
        (0.9, d.p90),
        (0.95, d.p95),
        (0.99, d.p99),
        (0.999, d.p999),
    ] {
        let err = (got as f64 - exact(q)).abs() / exact(q);
        assert!(
            err <= 0.02,
            "p{q}: {got} vs {} ({:.2}%)",
            exact(q),
            err * 100.0
        );
    }
    assert_eq!(d.min, values[0]);
    assert_eq!(d.max, *values.last().unwrap());
    let mean = values.iter().sum::<u64>() as f64 / values.len() as f64;
    assert!((d.mean - mean).abs() < 1.0);
}

#[test]
fn failures_keep_their_messages_and_panics_propagate() {
    let reg = Registry::new();
    {
        let g = reg.guard("op");
        g.fail_with("disk full");
    }
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _g = reg.guard("op");
        panic!("exploded {}", 42);
    }));
    let payload = caught.expect_err("the panic propagates");
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied());
    assert_eq!(text, Some("exploded 42"), "the payload is unchanged");
    drop(reg.guard("op"));
    let f = reg.function("op").unwrap();
    assert_eq!((f.calls, f.failures, f.successes), (3, 2, 1));
    assert_eq!(f.recent_failures.len(), 2);
    assert_eq!(f.recent_failures[0].message, "disk full");
    assert!(!f.recent_failures[0].panicked);
    assert!(f.recent_failures[1].panicked);
    assert!(
        f.recent_failures[1].message.starts_with("exploded 42"),
        "{}",
        f.recent_failures[1].message
    );
}

#[test]
fn only_the_last_failures_are_kept() {
    let reg = Registry::new();
    for i in 0..20 {
        reg.guard("flaky").fail_with(format!("error {i}"));
    }
    let f = reg.function("flaky").unwrap();
    assert_eq!(f.failures, 20);
    let kept: Vec<_> = f
        .recent_failures
        .iter()
        .map(|r| r.message.as_str())
        .collect();
    assert_eq!(kept.len(), monitor_core::FAILURES_KEPT);
    assert_eq!(*kept.last().unwrap(), "error 19");
}

#[test]
fn reset_forgets_figures_but_keeps_functions() {
    let reg = Registry::new();
    for _ in 0..10 {
        reg.record("r", Duration::from_micros(5), false);
    }
    reg.reset();
    let f = reg.function("r").unwrap();
    assert_eq!((f.calls, f.failures, f.duration_ns.max), (0, 0, 0));
    assert!(f.recent_failures.is_empty());
    reg.record("r", Duration::from_micros(7), true);
    let f = reg.function("r").unwrap();
    assert_eq!((f.calls, f.failures), (1, 0));
    assert_eq!(f.duration_ns.min, 7_000);
}

#[test]
fn threshold_drops_short_calls() {
    static SLOW_ONLY: Callsite = Callsite::new(
        "recording::slow_only",
        module_path!(),
        file!(),
        line!(),
        2_000_000,
    );
    inventory::submit! { CallsiteRef(&SLOW_ONLY) }
    drop(Guard::new(&SLOW_ONLY));
    {
        let _g = Guard::new(&SLOW_ONLY);
        std::thread::sleep(Duration::from_millis(3));
    }
    let f = monitor_core::global()
        .function("recording::slow_only")
        .unwrap();
    assert_eq!(f.calls, 1);
    assert!(f.duration_ns.min >= 2_000_000);
}

#[test]
fn snapshots_taken_while_recording_never_contradict_themselves() {
    let reg = Registry::new();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut i = 0u64;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let g = reg.guard("busy");
                    if i.is_multiple_of(3) {
                        g.fail_with("x");
                    }
                    i += 1;
                }
            });
        }
        while reg.function("busy").is_none_or(|f| f.calls < 1000) {
            std::thread::yield_now();
        }
        for _ in 0..200 {
            if let Some(f) = reg.function("busy") {
                assert!(f.failures <= f.calls, "{} > {}", f.failures, f.calls);
                assert_eq!(f.successes + f.failures, f.calls);
                let d = f.duration_ns;
                if f.calls > 0 {
                    assert!(d.min <= d.p50 && d.p50 <= d.p99 && d.p99 <= d.max);
                    assert!(d.mean >= d.min as f64 && d.mean <= d.max as f64);
                }
            }
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let a = reg.function("busy").unwrap();
    let b = reg.function("busy").unwrap();
    assert_eq!(
        (a.calls, a.failures),
        (b.calls, b.failures),
        "exact once recording stops"
    );
}

#[test]
fn slowest_and_most_called_rank_functions() {
    let reg = Registry::new();
    for _ in 0..5 {
        reg.record("fast_many", Duration::from_micros(1), true);
    }
    reg.record("slow_once", Duration::from_millis(50), true);
    reg.record("mid", Duration::from_millis(1), true);
    let slowest: Vec<_> = reg.slowest(2).into_iter().map(|f| f.name).collect();
    assert_eq!(slowest, ["slow_once", "mid"]);
    let most: Vec<_> = reg.most_called(1).into_iter().map(|f| f.name).collect();
    assert_eq!(most, ["fast_many"]);
}

static CHURNED: Callsite = Callsite::new("recording::churned", module_path!(), file!(), line!(), 0);
inventory::submit! { CallsiteRef(&CHURNED) }

#[test]
fn threads_beyond_the_slots_and_exiting_threads_lose_nothing() {
    // 24 concurrent threads (more than the 16 exclusive slots, so some share
    // the overflow shard), in 3 waves, so exiting threads hand their slots on.
    const WAVES: u64 = 3;
    const THREADS: u64 = 24;
    const CALLS: u64 = 20_000;
    for _ in 0..WAVES {
        std::thread::scope(|s| {
            for t in 0..THREADS {
                s.spawn(move || {
                    for i in 0..CALLS {
                        let g = Guard::new(&CHURNED);
                        if (i + t).is_multiple_of(4) {
                            g.fail();
                        }
                    }
                });
            }
        });
    }
    let f = monitor_core::global()
        .function("recording::churned")
        .unwrap();
    assert_eq!(f.calls, WAVES * THREADS * CALLS);
    assert_eq!(f.failures, WAVES * THREADS * CALLS / 4);
    // At most one shard per slot, whatever the number of threads.
    let per_shard = 12_208;
    assert!(CHURNED.heap_bytes() <= (monitor_core::EXCLUSIVE_SLOTS + 1) * per_shard + 4096);
}
