//! With the counting allocator installed, each call reports the bytes its
//! body allocated: exactly, for sync and async functions alike.
#![deny(warnings)]

use futures_executor::block_on;
use monitor_core::{CountingAllocator, FunctionStats, global, monitor_performance};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::system();

fn stats(name: &str) -> FunctionStats {
    global()
        .function(name)
        .unwrap_or_else(|| panic!("{name} is not listed"))
}

#[monitor_performance]
fn buffer(len: usize) -> usize {
    let buffer = vec![0u8; len];
    std::hint::black_box(&buffer).len()
}

#[test]
fn a_sync_call_reports_its_own_allocations() {
    buffer(1000);
    buffer(1000);
    let s = stats(concat!(module_path!(), "::buffer"));
    let alloc = s.alloc_bytes.expect("the counting allocator is installed");
    assert_eq!((alloc.min, alloc.max), (1000, 1000), "{alloc:?}");
    assert_eq!(s.freed_bytes_total, Some(2000));
}

#[monitor_performance]
fn fails_with_text(len: usize) -> Result<(), String> {
    Err("x".repeat(len))
}

#[test]
fn judging_an_error_allocates_nothing_the_call_reports() {
    fails_with_text(100).unwrap_err();
    let s = stats(concat!(module_path!(), "::fails_with_text"));
    let alloc = s.alloc_bytes.expect("the counting allocator is installed");
    assert_eq!((alloc.min, alloc.max), (100, 100), "{alloc:?}");
}

struct YieldNow(bool);

impl std::future::Future for YieldNow {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

#[monitor_performance]
async fn buffers_across_polls(len: usize) -> usize {
    let first = vec![0u8; len];
    YieldNow(false).await;
    let second = vec![0u8; len];
    YieldNow(false).await;
    std::hint::black_box(&first).len() + std::hint::black_box(&second).len()
}

#[test]
fn an_async_call_sums_its_polls() {
    // The future itself is allocated by the test, outside the call.
    let future = Box::pin(buffers_across_polls(300));
    assert_eq!(block_on(future), 600);
    let s = stats(concat!(module_path!(), "::buffers_across_polls"));
    let alloc = s.alloc_bytes.expect("the counting allocator is installed");
    assert_eq!((alloc.min, alloc.max), (600, 600), "{alloc:?}");
}
