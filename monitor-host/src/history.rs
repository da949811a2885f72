//! What the host remembers: healing attempts and events, bounded in memory.

use std::collections::VecDeque;

use monitor_plugin::Labels;
use serde::{Deserialize, Serialize};

/// Most healing records and events kept in memory.
pub const HISTORY_LIMIT: usize = 1000;

/// One healing attempt and its outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealRecord {
    /// Strategy instance.
    pub strategy: String,
    /// Alert it acted on.
    pub alert: String,
    /// The alert's series labels.
    pub labels: Labels,
    /// 1, 2, 3...
    pub attempt: u32,
    /// Whether the strategy reported success.
    pub success: bool,
    /// What it said, or why it failed to run.
    pub message: String,
    /// How long it took, in ms.
    pub duration_ms: u64,
    /// When it started, ms since epoch.
    pub started_ms: u64,
}

/// An event reported by a collector, or by the engine itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
    /// Who reported it (collector instance, or `host`).
    pub source: String,
    /// Event kind, e.g. `process_restarted` or `plugin_timeout`.
    pub kind: String,
    /// Human text.
    pub message: String,
    /// Labels.
    pub labels: Labels,
    /// When, ms since epoch.
    pub timestamp_ms: u64,
}

/// Healing attempts and events, the last [`HISTORY_LIMIT`] of each.
#[derive(Debug, Default)]
pub struct History {
    healing: VecDeque<HealRecord>,
    events: VecDeque<EventRecord>,
}

impl History {
    /// Remembers a healing attempt.
    pub fn record_heal(&mut self, record: HealRecord) {
        push_bounded(&mut self.healing, record);
    }

    /// Remembers an event.
    pub fn record_event(&mut self, event: EventRecord) {
        push_bounded(&mut self.events, event);
    }

    /// Healing attempts, oldest first.
    pub fn healing(&self) -> impl Iterator<Item = &HealRecord> {
        self.healing.iter()
    }

    /// Events, oldest first.
    pub fn events(&self) -> impl Iterator<Item = &EventRecord> {
        self.events.iter()
    }
}

fn push_bounded<T>(q: &mut VecDeque<T>, v: T) {
    if q.len() == HISTORY_LIMIT {
        q.pop_front();
    }
    q.push_back(v);
}
