//! [`CountingAllocator`]: a `GlobalAlloc` wrapper that counts the bytes each
//! thread allocates and frees, so a guard can report what its call allocated.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    // Const-initialised and without destructors: accessing them never
    // allocates or registers anything, so the allocator may use them, even
    // while the thread is being torn down.
    static ALLOCATED: Cell<u64> = const { Cell::new(0) };
    static FREED: Cell<u64> = const { Cell::new(0) };
}

/// Set once the counting allocator has served its first request.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Whether a [`CountingAllocator`] is installed (has served an allocation).
#[inline(always)]
pub fn is_active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Bytes allocated and freed so far on the calling thread.
#[inline(always)]
pub fn thread_totals() -> (u64, u64) {
    (ALLOCATED.with(Cell::get), FREED.with(Cell::get))
}

/// Bytes allocated and freed on the calling thread since `start` (a value of
/// [`thread_totals`]).
#[inline(always)]
pub fn since(start: (u64, u64)) -> (u64, u64) {
    let (allocated, freed) = thread_totals();
    (allocated.wrapping_sub(start.0), freed.wrapping_sub(start.1))
}

/// Runs `f` with its allocations hidden from the calling thread's counts, so
/// the monitor's own bookkeeping (a shard on a function's first call, a
/// failure record) never shows in the figures of the calls around it.
pub(crate) fn excluded<R>(f: impl FnOnce() -> R) -> R {
    let before = thread_totals();
    let result = f();
    let _ = ALLOCATED.try_with(|c| c.set(before.0));
    let _ = FREED.try_with(|c| c.set(before.1));
    result
}

/// A global allocator that counts bytes per thread and forwards to `A`.
///
/// Install it with `#[global_allocator]`; every instrumented call then
/// reports the bytes allocated during the call on its thread, callees
/// included. The cost is two thread-local additions per request.
///
/// ```
/// #[global_allocator]
/// static ALLOC: monitor_core::CountingAllocator = monitor_core::CountingAllocator::system();
/// # fn main() {}
/// ```
pub struct CountingAllocator<A = System> {
    inner: A,
}

impl CountingAllocator<System> {
    /// Wraps the system allocator.
    pub const fn system() -> Self {
        Self { inner: System }
    }
}

impl<A> CountingAllocator<A> {
    /// Wraps any global allocator (mimalloc, jemalloc, ...).
    pub const fn new(inner: A) -> Self {
        Self { inner }
    }
}

#[inline(always)]
fn count_alloc(bytes: usize) {
    // Skip the store once set so the flag's cache line stays shared.
    if !ACTIVE.load(Ordering::Relaxed) {
        ACTIVE.store(true, Ordering::Relaxed);
    }
    ALLOCATED.with(|c| c.set(c.get().wrapping_add(bytes as u64)));
}

#[inline(always)]
fn count_free(bytes: usize) {
    FREED.with(|c| c.set(c.get().wrapping_add(bytes as u64)));
}

// SAFETY: every method forwards to `inner` with the caller's arguments
// unchanged; the counting touches only thread-locals and never allocates.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAllocator<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        let ptr = unsafe { self.inner.alloc(layout) };
        if !ptr.is_null() {
            count_alloc(layout.size());
        }
        ptr
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        let ptr = unsafe { self.inner.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count_alloc(layout.size());
        }
        ptr
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count_free(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        let new = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // A reallocation frees the old block and allocates the new one.
            count_free(layout.size());
            count_alloc(new_size);
        }
        new
    }
}
