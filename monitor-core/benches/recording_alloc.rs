//! Cost of recording with `CountingAllocator` installed: the instrumented
//! function on one and two threads against the `Instant` floor, and the cost
//! the allocator adds to each allocation (the system allocator called
//! directly against the counting wrapper, in the same run).
//!
//! Run: `cargo bench -p monitor-core --bench recording_alloc`

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::time::Instant;

use monitor_core::{CountingAllocator, monitor_performance};
use support::{criterion, print_table, single, two_threads, work};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::system();

#[monitor_performance(name = "bench.alloc.instrumented")]
fn instrumented(x: u64) -> u64 {
    work(x)
}

fn main() {
    let mut c = criterion();
    drop(black_box(Box::new(1u8))); // the allocator is active from here on
    assert!(monitor_core::global().snapshot().allocator);

    single(&mut c, "alloc/floor_instant_pair", |i| {
        let start = Instant::now();
        black_box(work(i));
        black_box(start.elapsed());
    });
    single(&mut c, "alloc/macro", |i| {
        black_box(instrumented(i));
    });
    two_threads(&mut c, "alloc/2_threads/macro", |i| {
        black_box(instrumented(i));
    });
    let layout = Layout::from_size_align(64, 8).unwrap();
    single(&mut c, "alloc/system_alloc_free", |_| {
        // SAFETY: a valid non-zero layout; the block is freed with the same layout.
        unsafe {
            let p = System.alloc(layout);
            System.dealloc(black_box(p), layout);
        }
    });
    let counting = CountingAllocator::system();
    single(&mut c, "alloc/counting_alloc_free", |_| {
        // SAFETY: as above, through the counting wrapper.
        unsafe {
            let p = counting.alloc(layout);
            counting.dealloc(black_box(p), layout);
        }
    });

    c.final_summary();
    print_table(
        "Recording cost with CountingAllocator",
        "alloc/floor_instant_pair",
    );
    let added =
        support::result("alloc/counting_alloc_free") - support::result("alloc/system_alloc_free");
    println!("CountingAllocator adds {added:+.1} ns per allocation (alloc + free)");
}
