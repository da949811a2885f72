//! `CountingAllocator`: exact bytes per call, nested calls, per-thread counts.

use std::hint::black_box;

use monitor_core::{CountingAllocator, Registry};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::system();

fn allocate(bytes: usize) -> Vec<u8> {
    black_box(Vec::with_capacity(bytes))
}

#[test]
fn a_known_allocation_is_counted_exactly() {
    let reg = Registry::new();
    let callsite = reg.callsite("alloc.known");
    for _ in 0..10 {
        let g = monitor_core::Guard::new(callsite);
        let v = allocate(4096);
        drop(v);
        drop(g);
    }
    let f = reg.function("alloc.known").unwrap();
    let a = f.alloc_bytes.expect("present with the counting allocator");
    assert_eq!((a.min, a.max, a.mean), (4096, 4096, 4096.0));
    assert_eq!(f.freed_bytes_total, Some(10 * 4096));
    let json = serde_json::to_value(reg.snapshot()).unwrap();
    assert_eq!(json["allocator"], true);
    assert_eq!(json["functions"][0]["alloc_bytes"]["p50"], 4096);
}

#[test]
fn nested_calls_each_see_their_own_totals_callees_included() {
    let reg = Registry::new();
    let outer = reg.callsite("alloc.outer");
    let inner = reg.callsite("alloc.inner");
    {
        let _outer = monitor_core::Guard::new(outer);
        let _a = allocate(1000);
        {
            let _inner = monitor_core::Guard::new(inner);
            let _b = allocate(300);
        }
        let _c = allocate(20);
    }
    let get = |name| reg.function(name).unwrap().alloc_bytes.unwrap().max;
    assert_eq!(get("alloc.inner"), 300);
    assert_eq!(get("alloc.outer"), 1320);
}

#[test]
fn other_threads_allocations_are_not_counted() {
    let reg = Registry::new();
    let callsite = reg.callsite("alloc.quiet");
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                drop(allocate(64));
            }
        });
        for _ in 0..1000 {
            let _g = monitor_core::Guard::new(callsite);
            black_box(1 + 1);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let f = reg.function("alloc.quiet").unwrap();
    assert_eq!(f.alloc_bytes.unwrap().max, 0);
}

#[test]
fn a_large_mean_allocation_raises_the_memory_warning() {
    let reg = Registry::new();
    let callsite = reg.callsite("alloc.hog");
    for _ in 0..2 {
        let _g = monitor_core::Guard::new(callsite);
        // Only reserved, never touched: cheap however large.
        drop(allocate(150_000_000));
    }
    let snap = reg.snapshot();
    assert!(
        snap.warnings
            .iter()
            .any(|w| w.function == "alloc.hog" && w.kind == "memory"),
        "{:?}",
        snap.warnings
    );
    assert!(reg.report().to_string().contains("[memory] alloc.hog"));
}
