//! Torture run of the recording path: many threads (more than the exclusive
//! slots), waves of threads that exit and hand their slots on, a reader that
//! snapshots all the while and checks every snapshot for contradictions, and
//! exact totals at the end.
//!
//! Run: `cargo run --release -p monitor-core --example callsite-crusher [SECONDS]`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use monitor_core::__private::{Callsite, CallsiteRef, inventory};
use monitor_core::{Guard, Registry};

static A: Callsite = Callsite::new("crusher.a", module_path!(), file!(), line!(), 0);
static B: Callsite = Callsite::new("crusher.b", module_path!(), file!(), line!(), 0);
static C: Callsite = Callsite::new("crusher.c", module_path!(), file!(), line!(), 0);
inventory::submit! { CallsiteRef(&A) }
inventory::submit! { CallsiteRef(&B) }
inventory::submit! { CallsiteRef(&C) }
static TARGETS: [&Callsite; 3] = [&A, &B, &C];

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let calls = AtomicU64::new(0);
    let failures = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let named = Registry::new();
    let mut snapshots = 0u64;
    let mut waves = 0u64;

    std::thread::scope(|s| {
        s.spawn(|| {
            while Instant::now() < deadline {
                waves += 1;
                std::thread::scope(|wave| {
                    for t in 0..24u64 {
                        let (calls, failures, named) = (&calls, &failures, &named);
                        wave.spawn(move || {
                            let (mut n, mut f) = (0, 0);
                            for i in 0..50_000u64 {
                                let target = TARGETS[((i + t) % 3) as usize];
                                let g = Guard::new(target);
                                if (i * 7 + t).is_multiple_of(5) {
                                    g.fail();
                                    f += 1;
                                }
                                n += 1;
                                drop(g);
                                if i.is_multiple_of(1000) {
                                    named.record("crusher.named", Duration::from_nanos(i), true);
                                }
                            }
                            calls.fetch_add(n, Ordering::Relaxed);
                            failures.fetch_add(f, Ordering::Relaxed);
                        });
                    }
                });
            }
            stop.store(true, Ordering::Release);
        });
        while !stop.load(Ordering::Acquire) {
            let snapshot = monitor_core::global().snapshot();
            for f in snapshot
                .functions
                .iter()
                .filter(|f| f.name.starts_with("crusher."))
            {
                assert!(
                    f.failures <= f.calls,
                    "{}: {} failures > {} calls",
                    f.name,
                    f.failures,
                    f.calls
                );
                assert_eq!(f.successes + f.failures, f.calls);
                let d = f.duration_ns;
                if f.calls > 0 {
                    assert!(
                        d.min <= d.p50 && d.p50 <= d.p999 && d.p999 <= d.max,
                        "{d:?}"
                    );
                }
            }
            snapshots += 1;
        }
    });

    let snapshot = monitor_core::global().snapshot();
    let recorded: u64 = snapshot
        .functions
        .iter()
        .filter(|f| f.name.starts_with("crusher."))
        .map(|f| f.calls)
        .sum();
    let failed: u64 = snapshot
        .functions
        .iter()
        .filter(|f| f.name.starts_with("crusher."))
        .map(|f| f.failures)
        .sum();
    assert_eq!(recorded, calls.load(Ordering::Relaxed));
    assert_eq!(failed, failures.load(Ordering::Relaxed));
    let memory: usize = TARGETS.iter().map(|c| c.heap_bytes()).sum();
    println!(
        "ok: {recorded} calls ({failed} failed) in {waves} waves of 24 threads, {snapshots} consistent snapshots, {} KiB of shards for 3 functions",
        memory / 1024
    );
}
