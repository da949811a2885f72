//! Callsites: the per-function recording state, split into per-thread shards.
//!
//! # Sharding
//!
//! A process has [`EXCLUSIVE_SLOTS`] thread slots. A thread that records for
//! the first time claims a free slot and keeps it until it exits; a callsite's
//! shard for slot `k` is then written by one thread at a time, with plain
//! atomic loads and stores (no locked instructions, no cache-line ping-pong).
//! Threads beyond the slots share one overflow shard written with
//! `fetch_add`. Shards are allocated on a slot's first call of a function and
//! live as long as the callsite; nothing else allocates on the recording path.
//!
//! # Reset
//!
//! [`Callsite::reset`] bumps a generation number. Readers ignore shards of an
//! older generation, and a writer that finds its shard stale clears it before
//! recording, so a reset never races with an exclusive writer.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use crate::clock::{self, WindowIndex};
use crate::failure::FailureRecord;
use crate::histogram::{AtomicHistogram, Histogram};
use crate::name::DerivedName;

/// Thread slots with a shard of their own; further threads share one.
pub const EXCLUSIVE_SLOTS: usize = 16;
/// Minute windows kept per shard (the last hour and a few spare).
pub const MINUTE_WINDOWS: usize = 64;
/// Hour windows kept per shard (the last day and the current hour).
pub const HOUR_WINDOWS: usize = 25;
/// Failures kept per function for the report.
pub const FAILURES_KEPT: usize = 8;

const SLOT_UNASSIGNED: usize = usize::MAX;
const SLOT_SHARED: usize = EXCLUSIVE_SLOTS;

/// Bit `k` set: slot `k` is held by a live thread.
static SLOTS_TAKEN: Mutex<u32> = Mutex::new(0);

thread_local! {
    static SLOT: Cell<usize> = const { Cell::new(SLOT_UNASSIGNED) };
    static SLOT_RELEASE: SlotRelease = const { SlotRelease };
}

/// Returns the thread's slot to the pool when the thread exits.
struct SlotRelease;

impl Drop for SlotRelease {
    fn drop(&mut self) {
        let slot = SLOT.with(|s| s.replace(SLOT_SHARED));
        if slot < EXCLUSIVE_SLOTS {
            // The mutex's release/acquire orders this thread's last writes to
            // its shards before the next owner's first ones.
            *SLOTS_TAKEN.lock().unwrap_or_else(PoisonError::into_inner) &= !(1 << slot);
        }
    }
}

#[inline(always)]
fn thread_slot() -> usize {
    let slot = SLOT.with(Cell::get);
    if slot != SLOT_UNASSIGNED {
        slot
    } else {
        claim_slot()
    }
}

#[cold]
fn claim_slot() -> usize {
    // Registering the thread-local destructor may allocate: not the call's doing.
    crate::alloc::excluded(claim_slot_counted)
}

fn claim_slot_counted() -> usize {
    crate::panic::install_panic_hook();
    let mut taken = SLOTS_TAKEN.lock().unwrap_or_else(PoisonError::into_inner);
    let free = (!*taken).trailing_zeros() as usize;
    let slot = if free < EXCLUSIVE_SLOTS {
        // Registering the destructor can fail while the thread is exiting;
        // then the thread records through the shared shard instead.
        if SLOT_RELEASE.try_with(|_| ()).is_ok() {
            *taken |= 1 << free;
            free
        } else {
            SLOT_SHARED
        }
    } else {
        SLOT_SHARED
    };
    SLOT.with(|s| s.set(slot));
    slot
}

/// One time window's call count and latency sum.
struct Window {
    /// The minute or hour index the counts belong to.
    tag: AtomicU64,
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Window {
    // Only ever used to initialise arrays by value, never shared as a constant.
    #[allow(clippy::declare_interior_mutable_const)]
    const EMPTY: Window = Window {
        tag: AtomicU64::new(0),
        count: AtomicU64::new(0),
        sum_ns: AtomicU64::new(0),
    };
}

/// Adds `delta` to `cell`: a plain load and store when one thread writes it,
/// `fetch_add` when several may.
#[inline(always)]
fn bump(cell: &AtomicU64, delta: u64, exclusive: bool) {
    if exclusive {
        cell.store(
            cell.load(Ordering::Relaxed).wrapping_add(delta),
            Ordering::Relaxed,
        );
    } else {
        cell.fetch_add(delta, Ordering::Relaxed);
    }
}

/// One thread slot's share of a callsite's figures.
struct Shard {
    exclusive: bool,
    /// The callsite generation these figures belong to.
    generation: AtomicU64,
    latency: Box<AtomicHistogram>,
    /// Allocated bytes per call; allocated on the first call that has them.
    alloc: AtomicPtr<AtomicHistogram>,
    freed_bytes: AtomicU64,
    /// Published with `Release` after the call's histogram entry, so a reader
    /// that loads it with `Acquire` first never sees more failures than calls.
    failures: AtomicU64,
    cancelled: AtomicU64,
    busy_ns: AtomicU64,
    minutes: [Window; MINUTE_WINDOWS],
    hours: [Window; HOUR_WINDOWS],
}

impl Shard {
    fn new(exclusive: bool, generation: u64) -> Box<Self> {
        Box::new(Self {
            exclusive,
            generation: AtomicU64::new(generation),
            latency: AtomicHistogram::new_boxed(),
            alloc: AtomicPtr::new(std::ptr::null_mut()),
            freed_bytes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            minutes: [Window::EMPTY; MINUTE_WINDOWS],
            hours: [Window::EMPTY; HOUR_WINDOWS],
        })
    }

    fn alloc_histogram(&self) -> Option<&AtomicHistogram> {
        let ptr = self.alloc.load(Ordering::Acquire);
        // SAFETY: non-null pointers come from `Box::into_raw` in
        // `alloc_histogram_or_init` and are freed only in `Drop`.
        (!ptr.is_null()).then(|| unsafe { &*ptr })
    }

    #[cold]
    fn alloc_histogram_or_init(&self) -> &AtomicHistogram {
        let fresh = Box::into_raw(crate::alloc::excluded(AtomicHistogram::new_boxed));
        match self.alloc.compare_exchange(
            std::ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: we just published `fresh`; it lives until the shard drops.
            Ok(_) => unsafe { &*fresh },
            Err(existing) => {
                // SAFETY: `fresh` was never shared; `existing` is published and
                // lives until the shard drops.
                unsafe {
                    drop(Box::from_raw(fresh));
                    &*existing
                }
            }
        }
    }

    fn clear(&self, generation: u64) {
        self.latency.clear();
        if let Some(alloc) = self.alloc_histogram() {
            alloc.clear();
        }
        for cell in [
            &self.freed_bytes,
            &self.failures,
            &self.cancelled,
            &self.busy_ns,
        ] {
            cell.store(0, Ordering::Relaxed);
        }
        for w in self.minutes.iter().chain(&self.hours) {
            w.count.store(0, Ordering::Relaxed);
            w.sum_ns.store(0, Ordering::Relaxed);
            w.tag.store(0, Ordering::Relaxed);
        }
        self.generation.store(generation, Ordering::Release);
    }

    #[inline(always)]
    fn bump_window(w: &Window, tag: u64, ns: u64, exclusive: bool) {
        let current = w.tag.load(Ordering::Relaxed);
        if current != tag {
            if current > tag {
                return; // a back-dated record older than this slot's window
            }
            if exclusive {
                w.count.store(0, Ordering::Relaxed);
                w.sum_ns.store(0, Ordering::Relaxed);
                w.tag.store(tag, Ordering::Release);
            } else if w
                .tag
                .compare_exchange(current, tag, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                // Calls racing with this roll-over may be lost from the window
                // (never from the histogram); only the shared shard has races.
                w.count.store(0, Ordering::Relaxed);
                w.sum_ns.store(0, Ordering::Relaxed);
            }
        }
        bump(&w.count, 1, exclusive);
        bump(&w.sum_ns, ns, exclusive);
    }

    #[inline(always)]
    fn record(&self, call: &Call, window: WindowIndex) {
        let ex = self.exclusive;
        if ex {
            self.latency.record_exclusive(call.duration_ns);
        } else {
            self.latency.record_shared(call.duration_ns);
        }
        if let Some((allocated, freed)) = call.alloc {
            let hist = match self.alloc_histogram() {
                Some(h) => h,
                None => self.alloc_histogram_or_init(),
            };
            if ex {
                hist.record_exclusive(allocated);
            } else {
                hist.record_shared(allocated);
            }
            bump(&self.freed_bytes, freed, ex);
        }
        if let Some(busy) = call.busy_ns {
            bump(&self.busy_ns, busy, ex);
        }
        Self::bump_window(
            &self.minutes[(window.minute % MINUTE_WINDOWS as u64) as usize],
            window.minute,
            call.duration_ns,
            ex,
        );
        Self::bump_window(
            &self.hours[(window.hour % HOUR_WINDOWS as u64) as usize],
            window.hour,
            call.duration_ns,
            ex,
        );
        if call.failed {
            if ex {
                let n = self.failures.load(Ordering::Relaxed);
                self.failures.store(n + 1, Ordering::Release);
            } else {
                self.failures.fetch_add(1, Ordering::Release);
            }
        }
    }
}

impl Drop for Shard {
    fn drop(&mut self) {
        let ptr = *self.alloc.get_mut();
        if !ptr.is_null() {
            // SAFETY: the pointer came from `Box::into_raw` and nothing else
            // can reach it once the shard is being dropped.
            drop(unsafe { Box::from_raw(ptr) });
        }
    }
}

/// One finished call, as handed to [`Callsite::record`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Call {
    /// Wall time of the call in nanoseconds.
    pub duration_ns: u64,
    /// Whether the call failed.
    pub failed: bool,
    /// Bytes allocated and freed during the call, when counted.
    pub alloc: Option<(u64, u64)>,
    /// Time spent inside polls, for futures.
    pub busy_ns: Option<u64>,
}

/// A callsite's name: given, or derived from where the function is.
enum Name {
    Given(Cow<'static, str>),
    Derived(&'static DerivedName),
}

/// The recording state of one instrumented function or named operation.
///
/// Instrumented functions hold one in a `static` (see the `__private` module);
/// named guards get theirs from a [`Registry`](crate::Registry). A callsite
/// that is never called costs its own size (under 256 bytes) and nothing else.
pub struct Callsite {
    name: Name,
    module_path: &'static str,
    file: &'static str,
    line: u32,
    threshold_ns: u64,
    generation: AtomicU64,
    shards: [AtomicPtr<Shard>; EXCLUSIVE_SLOTS + 1],
    failures: Mutex<VecDeque<FailureRecord>>,
}

impl std::fmt::Debug for Callsite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callsite")
            .field("name", &self.name())
            .field("module_path", &self.module_path)
            .field("file", &self.file)
            .field("line", &self.line)
            .field("threshold_ns", &self.threshold_ns)
            .finish_non_exhaustive()
    }
}

impl Callsite {
    /// A callsite for a `static`: name, source location and the minimum
    /// duration (ns) a call needs to be recorded (0 records every call).
    pub const fn new(
        name: &'static str,
        module_path: &'static str,
        file: &'static str,
        line: u32,
        threshold_ns: u64,
    ) -> Self {
        let name = Name::Given(Cow::Borrowed(name));
        Self::with_name(name, module_path, file, line, threshold_ns)
    }

    const fn with_name(
        name: Name,
        module_path: &'static str,
        file: &'static str,
        line: u32,
        threshold_ns: u64,
    ) -> Self {
        Self {
            name,
            module_path,
            file,
            line,
            threshold_ns,
            generation: AtomicU64::new(0),
            shards: [const { AtomicPtr::new(std::ptr::null_mut()) }; EXCLUSIVE_SLOTS + 1],
            failures: Mutex::new(VecDeque::new()),
        }
    }

    /// A callsite for a `static` named by default (`module::fn` or
    /// `module::Type::method`), the name worked out on its first read.
    pub const fn new_derived(
        name: &'static DerivedName,
        module_path: &'static str,
        file: &'static str,
        line: u32,
        threshold_ns: u64,
    ) -> Self {
        Self::with_name(Name::Derived(name), module_path, file, line, threshold_ns)
    }

    /// A callsite for a name known only at run time.
    pub(crate) fn new_named(name: impl Into<Cow<'static, str>>) -> Self {
        let mut callsite = Self::new("", "", "", 0, 0);
        callsite.name = Name::Given(name.into());
        callsite
    }

    /// The function's name (`module::path::fn` unless given).
    pub fn name(&self) -> &str {
        match &self.name {
            Name::Given(name) => name,
            Name::Derived(name) => name.get(),
        }
    }

    /// The module the function is in (empty for named operations).
    pub fn module_path(&self) -> &'static str {
        self.module_path
    }

    /// Source file and line of the function (empty and 0 for named operations).
    pub fn location(&self) -> (&'static str, u32) {
        (self.file, self.line)
    }

    /// Calls shorter than this (ns) are not recorded.
    pub fn threshold_ns(&self) -> u64 {
        self.threshold_ns
    }

    #[inline(always)]
    fn shard(&self) -> &Shard {
        let slot = thread_slot();
        let ptr = self.shards[slot].load(Ordering::Acquire);
        if ptr.is_null() {
            return self.new_shard(slot);
        }
        // SAFETY: non-null shard pointers come from `Box::into_raw` in
        // `new_shard` and are freed only when the callsite drops.
        let shard = unsafe { &*ptr };
        let generation = self.generation.load(Ordering::Relaxed);
        if shard.generation.load(Ordering::Relaxed) != generation {
            self.renew_shard(shard, generation);
        }
        shard
    }

    #[cold]
    fn renew_shard(&self, shard: &Shard, generation: u64) {
        if shard.exclusive {
            shard.clear(generation);
        } else {
            let seen = shard.generation.load(Ordering::Relaxed);
            // u64::MAX marks a clear in progress by another writer.
            if seen != generation
                && seen != u64::MAX
                && shard
                    .generation
                    .compare_exchange(seen, u64::MAX, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                // Concurrent writers to the shared shard may lose a few calls
                // here; exclusive shards cannot.
                shard.clear(generation);
            }
        }
    }

    #[cold]
    fn new_shard(&self, slot: usize) -> &Shard {
        let generation = self.generation.load(Ordering::Relaxed);
        let fresh = Box::into_raw(crate::alloc::excluded(|| {
            Shard::new(slot < EXCLUSIVE_SLOTS, generation)
        }));
        match self.shards[slot].compare_exchange(
            std::ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: published just now; lives until the callsite drops.
            Ok(_) => unsafe { &*fresh },
            Err(existing) => {
                // SAFETY: `fresh` was never shared; `existing` is published and
                // lives until the callsite drops.
                unsafe {
                    crate::alloc::excluded(|| drop(Box::from_raw(fresh)));
                    &*existing
                }
            }
        }
    }

    /// Records one finished call. Wait-free except on the first call from a
    /// thread slot (which allocates that slot's shard).
    #[inline]
    pub(crate) fn record(&self, call: &Call, end_raw: u64) {
        if call.duration_ns < self.threshold_ns {
            return;
        }
        self.shard().record(call, clock::window_at(end_raw));
    }

    /// Records a call that ended at `at` (back-filled or replayed data).
    /// Windows older than the ones kept are skipped; the histograms take it.
    pub(crate) fn record_at(&self, call: &Call, at: SystemTime) {
        if call.duration_ns < self.threshold_ns {
            return;
        }
        self.shard().record(call, WindowIndex::of_time(at));
    }

    /// Counts a future dropped before completion.
    pub(crate) fn record_cancelled(&self) {
        let shard = self.shard();
        bump(&shard.cancelled, 1, shard.exclusive);
    }

    /// Keeps a failure's details for the report (the last [`FAILURES_KEPT`]).
    #[cold]
    pub(crate) fn push_failure(&self, record: FailureRecord) {
        crate::alloc::excluded(|| self.push_failure_counted(record));
    }

    fn push_failure_counted(&self, record: FailureRecord) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if failures.len() == FAILURES_KEPT {
            failures.pop_front();
        }
        failures.push_back(record);
    }

    /// Heap bytes this callsite holds: its shards and their allocation
    /// histograms. Bounded by the number of thread slots that called it, never
    /// by the number of calls; 0 before the first call.
    pub fn heap_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|p| p.load(Ordering::Acquire))
            .filter(|p| !p.is_null())
            .map(|p| {
                // SAFETY: published shards live until the callsite drops.
                let shard = unsafe { &*p };
                std::mem::size_of::<Shard>()
                    + std::mem::size_of::<AtomicHistogram>()
                    + shard
                        .alloc_histogram()
                        .map_or(0, |_| std::mem::size_of::<AtomicHistogram>())
            })
            .sum()
    }

    /// Forgets everything recorded so far (see the module docs).
    pub fn reset(&self) {
        self.generation.fetch_add(1, Ordering::Release);
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Merges the shards into a plain view. May run while others record.
    pub(crate) fn read(&self, now: WindowIndex) -> CallsiteFigures {
        let generation = self.generation.load(Ordering::Acquire);
        let mut figures = CallsiteFigures {
            latency: Histogram::new(),
            alloc: None,
            freed_bytes: 0,
            failures: 0,
            cancelled: 0,
            busy_ns: 0,
            minutes: vec![(0, 0); MINUTE_WINDOWS],
            calls_24h: 0,
            failures_kept: self
                .failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .cloned()
                .collect(),
        };
        for ptr in &self.shards {
            let ptr = ptr.load(Ordering::Acquire);
            if ptr.is_null() {
                continue;
            }
            // SAFETY: published shards live until the callsite drops.
            let shard = unsafe { &*ptr };
            if shard.generation.load(Ordering::Acquire) != generation {
                continue;
            }
            // Failures first (Acquire) so that every counted failure's call is
            // already visible in the histogram read after it.
            figures.failures += shard.failures.load(Ordering::Acquire);
            shard.latency.add_to(&mut figures.latency);
            if let Some(alloc) = shard.alloc_histogram() {
                alloc.add_to(figures.alloc.get_or_insert_with(Histogram::new));
            }
            figures.freed_bytes += shard.freed_bytes.load(Ordering::Relaxed);
            figures.cancelled += shard.cancelled.load(Ordering::Relaxed);
            figures.busy_ns += shard.busy_ns.load(Ordering::Relaxed);
            for (age, slot) in figures.minutes.iter_mut().enumerate() {
                let Some(minute) = now.minute.checked_sub(age as u64) else {
                    break;
                };
                let w = &shard.minutes[(minute % MINUTE_WINDOWS as u64) as usize];
                if w.tag.load(Ordering::Acquire) == minute {
                    slot.0 += w.count.load(Ordering::Relaxed);
                    slot.1 += w.sum_ns.load(Ordering::Relaxed);
                }
            }
            for age in 0..24u64 {
                let Some(hour) = now.hour.checked_sub(age) else {
                    break;
                };
                let w = &shard.hours[(hour % HOUR_WINDOWS as u64) as usize];
                if w.tag.load(Ordering::Acquire) == hour {
                    figures.calls_24h += w.count.load(Ordering::Relaxed);
                }
            }
        }
        figures
    }
}

impl Drop for Callsite {
    fn drop(&mut self) {
        for ptr in &mut self.shards {
            let ptr = *ptr.get_mut();
            if !ptr.is_null() {
                // SAFETY: from `Box::into_raw`; unreachable once dropping.
                drop(unsafe { Box::from_raw(ptr) });
            }
        }
    }
}

/// A callsite's figures merged across shards, as of one read.
#[derive(Debug, Clone)]
pub(crate) struct CallsiteFigures {
    /// Latency of recorded calls, ns. Its count is the number of calls.
    pub latency: Histogram,
    /// Bytes allocated per call, when the counting allocator is installed.
    pub alloc: Option<Histogram>,
    /// Bytes freed during calls, in total.
    pub freed_bytes: u64,
    /// Calls that failed (never more than the histogram's count).
    pub failures: u64,
    /// Futures dropped before completion (not in the histogram).
    pub cancelled: u64,
    /// Total time spent inside polls of completed futures, ns.
    pub busy_ns: u64,
    /// `(calls, latency sum ns)` per minute, newest first (index 0 = this minute).
    pub minutes: Vec<(u64, u64)>,
    /// Calls in the current hour and the 23 before it.
    pub calls_24h: u64,
    /// The last few failures, oldest first.
    pub failures_kept: Vec<FailureRecord>,
}

impl CallsiteFigures {
    /// Adds another callsite's figures of the same name.
    pub(crate) fn merge(&mut self, other: &CallsiteFigures) {
        self.latency.merge(&other.latency);
        match (&mut self.alloc, &other.alloc) {
            (Some(a), Some(b)) => a.merge(b),
            (None, Some(b)) => self.alloc = Some(b.clone()),
            _ => {}
        }
        self.freed_bytes += other.freed_bytes;
        self.failures += other.failures;
        self.cancelled += other.cancelled;
        self.busy_ns += other.busy_ns;
        for (a, b) in self.minutes.iter_mut().zip(&other.minutes) {
            a.0 += b.0;
            a.1 += b.1;
        }
        self.calls_24h += other.calls_24h;
        self.failures_kept
            .extend(other.failures_kept.iter().cloned());
        self.failures_kept.sort_by_key(|f| f.at);
    }
}
