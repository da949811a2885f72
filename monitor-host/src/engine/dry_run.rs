//! What a dry run would have notified and healed, in place of doing it.

use monitor_plugin::{Failure, Notification};
use serde::Serialize;

/// A notification a dry run would have queued.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedNotification {
    /// Notifier instance.
    pub notifier: String,
    /// What it would have been sent.
    pub notification: Notification,
}

/// A healing attempt a dry run would have started.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedHeal {
    /// Strategy instance.
    pub strategy: String,
    /// What it would have been asked to fix.
    pub failure: Failure,
}

/// What a dry run would have done instead of notifying and healing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DryRun {
    /// Notifications, in order.
    pub notifications: Vec<PlannedNotification>,
    /// Healing attempts, in order.
    pub heals: Vec<PlannedHeal>,
}
