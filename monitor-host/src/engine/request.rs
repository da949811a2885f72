//! Collections a collector asks for out of its schedule, through the host table's
//! `request_collection` (e.g. the `process` collector when a watched process exits).
//!
//! A request raises the instance's flag and wakes the run loop (one wake-up however many requests
//! came). The loop asks [`Engine::collect_requested`], which makes each flagged collector due:
//! at once, or [`MIN_REQUEST_GAP`] after its last collection began, whichever is later; a
//! collector busy with a call keeps its flag until the call ends. The next tick then starts it
//! like any due collector, and its round ends with the alert evaluation as soon as it answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};

use super::Engine;
use crate::library::OnRequest;

/// The shortest time between two collections of one instance that requests can cause.
pub const MIN_REQUEST_GAP: Duration = Duration::from_millis(50);

/// Where requests arrive: one wake-up for the run loop, shared by every instance.
#[derive(Debug)]
pub(super) struct Requests {
    wake_tx: Sender<()>,
    wake_rx: Receiver<()>,
}

impl Default for Requests {
    fn default() -> Self {
        // One slot: requests made before the loop looks are coalesced into one wake-up.
        let (wake_tx, wake_rx) = bounded(1);
        Self { wake_tx, wake_rx }
    }
}

impl Requests {
    /// A flag for a new collector instance, and what its plugin's requests run: raise the flag,
    /// then wake the loop, never blocking.
    pub fn hook(&self) -> (Arc<AtomicBool>, OnRequest) {
        let flag = Arc::new(AtomicBool::new(false));
        let raised = flag.clone();
        let wake = self.wake_tx.clone();
        let on_request = OnRequest::new(move || {
            // Release: pairs with the swap in `collect_requested`, which then sees the request
            // before or with its wake-up.
            raised.store(true, Ordering::Release);
            // Full: a wake-up is already pending, and it will see the flag.
            let _ = wake.try_send(());
        });
        (flag, on_request)
    }
}

impl Engine {
    /// Wakes when a collector asked to be collected now; then call
    /// [`collect_requested`](Self::collect_requested).
    pub fn collection_requests(&self) -> &Receiver<()> {
        &self.requests.wake_rx
    }

    /// Makes every collector that asked for a collection (and is not busy with a call) due: now,
    /// or [`MIN_REQUEST_GAP`] after its last collection began. Never blocks. Returns whether one
    /// is due now, so the caller should [`tick`](Self::tick) at once; otherwise
    /// [`next_due_ms`](Self::next_due_ms) says when.
    pub fn collect_requested(&mut self, now_ms: u64) -> bool {
        let gap = MIN_REQUEST_GAP.as_millis() as u64;
        let mut due_now = false;
        for c in &mut self.collectors {
            let p = &self.plugins[c.slot];
            let Some(flag) = &p.requested else {
                continue;
            };
            // A request during a call stays raised: what the call returns may predate it.
            if p.in_flight.is_some() || !flag.swap(false, Ordering::Acquire) {
                continue;
            }
            let at = p.last_collect_ms.map_or(now_ms, |t| now_ms.max(t + gap));
            c.next_due_ms = c.next_due_ms.min(at);
            due_now |= c.next_due_ms <= now_ms;
        }
        due_now
    }
}
