//! The scope guard that times a call, and the future wrapper that does the
//! same for `async fn`s.

use std::cell::Cell;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::SystemTime;

use crate::alloc;
use crate::callsite::{Call, Callsite};
use crate::clock;
use crate::failure::{FailureRecord, Outcome};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Switches recording on or off for the whole process (on by default).
///
/// While off, a guard costs one relaxed load and a branch; calls are neither
/// timed nor counted.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether recording is on.
#[inline(always)]
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Times one call; records it into its callsite when dropped.
///
/// A panic unwinding through the guard marks the call failed (the panic goes
/// on unchanged). [`fail`](Guard::fail) marks it failed by hand. Recording is
/// wait-free except for a thread's first call of a function (which allocates
/// that thread's shard) and for failures (which keep their details under a
/// mutex). Allocation figures are those of the thread the guard drops on.
#[must_use = "a guard records when it is dropped; bind it with `let _guard = ...`"]
pub struct Guard<'a> {
    callsite: Option<&'a Callsite>,
    start: u64,
    alloc_start: Option<(u64, u64)>,
    failed: Cell<bool>,
    /// Only ever `Some` while `callsite` is: a disabled guard's drop then has
    /// nothing to free, which keeps the switched-off path to a load and a branch.
    message: ManuallyDrop<Cell<Option<String>>>,
}

impl<'a> Guard<'a> {
    /// Starts timing a call of `callsite`.
    #[inline(always)]
    pub fn new(callsite: &'a Callsite) -> Self {
        if !is_enabled() {
            return Self::disabled();
        }
        let alloc_start = alloc::is_active().then(alloc::thread_totals);
        Self {
            callsite: Some(callsite),
            start: clock::now_raw(),
            alloc_start,
            failed: Cell::new(false),
            message: ManuallyDrop::new(Cell::new(None)),
        }
    }

    /// A guard that records nothing.
    #[inline(always)]
    pub fn disabled() -> Self {
        Self {
            callsite: None,
            start: 0,
            alloc_start: None,
            failed: Cell::new(false),
            message: ManuallyDrop::new(Cell::new(None)),
        }
    }

    /// Marks this call failed.
    pub fn fail(&self) {
        self.failed.set(true);
    }

    /// Marks this call failed, with a message for the report.
    pub fn fail_with(&self, message: impl Into<String>) {
        self.failed.set(true);
        if self.callsite.is_some() {
            self.message.set(Some(message.into()));
        }
    }

    /// Applies what the return value says (an `Err` fails the call).
    #[inline(always)]
    pub fn observe(&self, outcome: Outcome) {
        if outcome.failed {
            self.failed.set(true);
            if self.callsite.is_some() {
                self.message.set(outcome.message);
            }
        }
    }

    // Out of line so that the guard's drop inlines to a test and a call: the
    // switched-off path then costs next to nothing.
    #[inline(never)]
    fn finish(&mut self, callsite: &Callsite) {
        // SAFETY: `message` is taken exactly once, here, from the drop of a
        // guard that has a callsite; it is never touched again.
        let message = unsafe { ManuallyDrop::take(&mut self.message) }.into_inner();
        let end = clock::now_raw();
        let panicking = std::thread::panicking();
        let failed = self.failed.get() || panicking;
        let call = Call {
            duration_ns: clock::delta_ns(self.start, end),
            failed,
            alloc: self.alloc_start.map(alloc::since),
            busy_ns: None,
        };
        finish_call(callsite, &call, end, panicking, message);
    }
}

impl Drop for Guard<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(callsite) = self.callsite {
            self.finish(callsite);
        }
    }
}

/// Records a finished call and, when it failed, keeps its details.
#[inline(always)]
fn finish_call(
    callsite: &Callsite,
    call: &Call,
    end: u64,
    panicked: bool,
    message: Option<String>,
) {
    callsite.record(call, end);
    if call.failed && call.duration_ns >= callsite.threshold_ns() {
        keep_failure(callsite, panicked, message);
    }
}

#[cold]
fn keep_failure(callsite: &Callsite, panicked: bool, message: Option<String>) {
    alloc::excluded(|| keep_failure_counted(callsite, panicked, message));
}

fn keep_failure_counted(callsite: &Callsite, panicked: bool, message: Option<String>) {
    let message = match (panicked, message) {
        (true, _) => crate::panic::current_panic_message(),
        (false, Some(m)) => m,
        (false, None) => "failed".to_owned(),
    };
    callsite.push_failure(FailureRecord {
        at: SystemTime::now(),
        message,
        panicked,
    });
}

/// A future timed as one call: wall time from first poll to completion, busy
/// time as the sum of its polls. Dropped before completion, it counts as
/// cancelled. Built by `#[monitor_performance]` on `async fn`s.
pub struct Instrumented<F: Future> {
    inner: F,
    callsite: &'static Callsite,
    judge: fn(&F::Output) -> Outcome,
    state: AsyncState,
}

#[derive(Clone, Copy)]
enum AsyncState {
    NotStarted,
    Running {
        first_poll: u64,
        busy_ns: u64,
        allocated: u64,
        freed: u64,
    },
    Done,
    /// Recording was off at the first poll: pass through.
    Untracked,
}

impl<F: Future> Instrumented<F> {
    /// Wraps `inner`; `judge` tells whether its output is a failure.
    pub fn new(callsite: &'static Callsite, inner: F, judge: fn(&F::Output) -> Outcome) -> Self {
        Self {
            inner,
            callsite,
            judge,
            state: AsyncState::NotStarted,
        }
    }
}

impl AsyncState {
    /// Ends a running call at `end`: records it (a panic or an `Err` output
    /// as a failure) and becomes `Done`.
    fn complete(
        &mut self,
        callsite: &Callsite,
        end: u64,
        alloc_tracked: bool,
        outcome: Outcome,
        panicked: bool,
    ) {
        let AsyncState::Running {
            first_poll,
            busy_ns,
            allocated,
            freed,
        } = *self
        else {
            return;
        };
        *self = AsyncState::Done;
        let call = Call {
            duration_ns: clock::delta_ns(first_poll, end),
            failed: outcome.failed || panicked,
            alloc: alloc_tracked.then_some((allocated, freed)),
            busy_ns: Some(busy_ns),
        };
        finish_call(callsite, &call, end, panicked, outcome.message);
    }
}

/// Accounts one poll's busy time and allocations; if the poll panics, its
/// drop also ends the call as failed.
struct PollGuard<'a> {
    callsite: &'static Callsite,
    state: &'a mut AsyncState,
    start: u64,
    alloc_start: Option<(u64, u64)>,
    accounted: bool,
}

impl PollGuard<'_> {
    /// Adds this poll to the running call; returns the clock reading it ended at.
    fn account(&mut self) -> u64 {
        let end = clock::now_raw();
        self.accounted = true;
        if let AsyncState::Running {
            busy_ns,
            allocated,
            freed,
            ..
        } = self.state
        {
            *busy_ns += clock::delta_ns(self.start, end);
            if let Some(start) = self.alloc_start {
                let (a, f) = alloc::since(start);
                *allocated += a;
                *freed += f;
            }
        }
        end
    }
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        // Only a panicking poll leaves the guard unaccounted.
        if !self.accounted {
            let end = self.account();
            let tracked = self.alloc_start.is_some();
            self.state
                .complete(self.callsite, end, tracked, Outcome::default(), true);
        }
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `inner` is structurally pinned: it is never moved out of
        // `self` nor accessed unpinned; the other fields are `Unpin` data.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above; `this` is not moved and `inner` stays in place.
        let inner = unsafe { Pin::new_unchecked(&mut this.inner) };
        if let AsyncState::NotStarted = this.state {
            this.state = if is_enabled() {
                AsyncState::Running {
                    first_poll: clock::now_raw(),
                    busy_ns: 0,
                    allocated: 0,
                    freed: 0,
                }
            } else {
                AsyncState::Untracked
            };
        }
        if !matches!(this.state, AsyncState::Running { .. }) {
            return inner.poll(cx);
        }
        let mut guard = PollGuard {
            callsite: this.callsite,
            state: &mut this.state,
            start: clock::now_raw(),
            alloc_start: alloc::is_active().then(alloc::thread_totals),
            accounted: false,
        };
        let poll = inner.poll(cx);
        let end = guard.account();
        let tracked = guard.alloc_start.is_some();
        drop(guard);
        if let Poll::Ready(output) = &poll {
            let outcome = (this.judge)(output);
            this.state
                .complete(this.callsite, end, tracked, outcome, false);
        }
        poll
    }
}

impl<F: Future> Drop for Instrumented<F> {
    fn drop(&mut self) {
        if let AsyncState::Running { .. } = self.state {
            self.callsite.record_cancelled();
        }
    }
}
