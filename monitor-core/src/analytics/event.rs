//! Typed events for agent and service systems, a bounded shared log of them,
//! and helpers that record an API request or an agent task.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// What happened. The well-known kinds have their own variants; any other
/// name is [`EventKind::Custom`]. Serialised as its snake_case name
/// (`"task_start"`, or the custom name as given).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum EventKind {
    /// A task began (`task_start`).
    TaskStart,
    /// A task finished successfully (`task_complete`).
    TaskComplete,
    /// A task failed (`task_failed`).
    TaskFailed,
    /// An agent reported its health (`agent_health`).
    AgentHealth,
    /// A liveness beat (`heartbeat`).
    Heartbeat,
    /// A resource reading or limit (`resource`).
    Resource,
    /// A healing action ran (`healing`).
    Healing,
    /// Any other kind, by name.
    Custom(String),
}

impl EventKind {
    /// The kind's name as used in patterns and JSON.
    pub fn as_str(&self) -> &str {
        match self {
            EventKind::TaskStart => "task_start",
            EventKind::TaskComplete => "task_complete",
            EventKind::TaskFailed => "task_failed",
            EventKind::AgentHealth => "agent_health",
            EventKind::Heartbeat => "heartbeat",
            EventKind::Resource => "resource",
            EventKind::Healing => "healing",
            EventKind::Custom(name) => name,
        }
    }
}

impl From<&str> for EventKind {
    /// Maps a well-known name to its variant, anything else to `Custom`.
    fn from(name: &str) -> Self {
        match name {
            "task_start" => EventKind::TaskStart,
            "task_complete" => EventKind::TaskComplete,
            "task_failed" => EventKind::TaskFailed,
            "agent_health" => EventKind::AgentHealth,
            "heartbeat" => EventKind::Heartbeat,
            "resource" => EventKind::Resource,
            "healing" => EventKind::Healing,
            other => EventKind::Custom(other.to_owned()),
        }
    }
}

impl From<String> for EventKind {
    fn from(name: String) -> Self {
        match EventKind::from(name.as_str()) {
            EventKind::Custom(_) => EventKind::Custom(name),
            known => known,
        }
    }
}

impl From<EventKind> for String {
    fn from(kind: EventKind) -> Self {
        match kind {
            EventKind::Custom(name) => name,
            known => known.as_str().to_owned(),
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event of an agent or service system.
///
/// Only `kind` and `timestamp_ms` are required; the optional fields are left
/// out of the JSON when absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// When, in milliseconds since the Unix epoch (UTC).
    pub timestamp_ms: u64,
    /// The agent or service instance the event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The task the event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// How long the work took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// Tokens used (for language-model agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// Whether the work succeeded, when that applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    /// The outcome in words or as a code (`"ok"`, `"503"`, an error message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, serde_json::Value>,
}

impl Event {
    /// An event of `kind` at `timestamp_ms` (milliseconds since the Unix
    /// epoch) with no optional fields set.
    pub fn new(kind: impl Into<EventKind>, timestamp_ms: u64) -> Self {
        Event {
            kind: kind.into(),
            timestamp_ms,
            agent_id: None,
            task_id: None,
            duration_ms: None,
            tokens: None,
            success: None,
            result: None,
            metadata: BTreeMap::new(),
        }
    }

    /// Sets the agent id.
    pub fn with_agent(mut self, agent_id: impl Into<String>) -> Self {
        self.agent_id = Some(agent_id.into());
        self
    }

    /// Sets the task id.
    pub fn with_task(mut self, task_id: impl Into<String>) -> Self {
        self.task_id = Some(task_id.into());
        self
    }

    /// Sets the duration.
    pub fn with_duration(mut self, duration: Duration) -> Self {
        self.duration_ms = Some(duration.as_secs_f64() * 1e3);
        self
    }

    /// Sets the tokens used.
    pub fn with_tokens(mut self, tokens: u64) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// Sets whether the work succeeded.
    pub fn with_success(mut self, success: bool) -> Self {
        self.success = Some(success);
        self
    }

    /// Sets the outcome text.
    pub fn with_result(mut self, result: impl Into<String>) -> Self {
        self.result = Some(result.into());
        self
    }

    /// Adds one metadata entry.
    pub fn with_metadata(
        mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The event of an HTTP request: kind `api_request`, or `api_error` when
    /// `status` is 500 or above (client errors are the client's failure, not
    /// the service's); metadata `endpoint`, `method`, `status`; result the
    /// status code.
    pub fn api_request(
        timestamp_ms: u64,
        endpoint: &str,
        method: &str,
        status: u16,
        duration: Duration,
    ) -> Self {
        let success = status < 500;
        let kind = if success { "api_request" } else { "api_error" };
        Event::new(kind, timestamp_ms)
            .with_duration(duration)
            .with_success(success)
            .with_result(status.to_string())
            .with_metadata("endpoint", endpoint)
            .with_metadata("method", method)
            .with_metadata("status", status)
    }

    /// The event of an agent's task: kind `task_complete` or `task_failed`,
    /// agent id `agent_type`, task id `task`.
    pub fn agent_task(
        timestamp_ms: u64,
        agent_type: &str,
        task: &str,
        duration: Duration,
        success: bool,
    ) -> Self {
        let kind = if success {
            EventKind::TaskComplete
        } else {
            EventKind::TaskFailed
        };
        Event::new(kind, timestamp_ms)
            .with_agent(agent_type)
            .with_task(task)
            .with_duration(duration)
            .with_success(success)
    }
}

/// The registry name of an API request's figures: `api.<METHOD> <endpoint>`.
pub fn api_operation_name(endpoint: &str, method: &str) -> String {
    format!("api.{method} {endpoint}")
}

/// The registry name of an agent task's figures: `agent.<agent_type>.<task>`.
pub fn agent_operation_name(agent_type: &str, task: &str) -> String {
    format!("agent.{agent_type}.{task}")
}

/// A bounded, thread-safe log of events: the newest `capacity` events are
/// kept, older ones are dropped.
///
/// Pushing takes a short mutex (a `VecDeque` push, no allocation once the
/// buffer is full); it is meant for events, not for the per-call hot path of
/// instrumented functions.
#[derive(Debug)]
pub struct EventLog {
    events: Mutex<VecDeque<Event>>,
    capacity: usize,
    dropped: std::sync::atomic::AtomicU64,
}

impl EventLog {
    /// The capacity of [`events()`]'s process-wide log.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// An empty log keeping at most `capacity` events (at least one).
    pub fn new(capacity: usize) -> Self {
        EventLog {
            events: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            dropped: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Event>> {
        // A panic while holding the lock leaves a consistent deque (every
        // mutation is a single push or pop), so the poison can be ignored.
        self.events
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Appends `event`, dropping the oldest event when full.
    pub fn push(&self, event: Event) {
        let mut events = self.lock();
        if events.len() == self.capacity {
            events.pop_front();
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        events.push_back(event);
    }

    /// Records an HTTP request at `timestamp_ms` (see [`Event::api_request`]).
    pub fn record_api_request_at(
        &self,
        timestamp_ms: u64,
        endpoint: &str,
        method: &str,
        status: u16,
        duration: Duration,
    ) {
        self.push(Event::api_request(
            timestamp_ms,
            endpoint,
            method,
            status,
            duration,
        ));
    }

    /// Records an agent's task at `timestamp_ms` (see [`Event::agent_task`]).
    pub fn record_agent_task_at(
        &self,
        timestamp_ms: u64,
        agent_type: &str,
        task: &str,
        duration: Duration,
        success: bool,
    ) {
        self.push(Event::agent_task(
            timestamp_ms,
            agent_type,
            task,
            duration,
            success,
        ));
    }

    /// A copy of the events held, oldest first.
    pub fn snapshot(&self) -> Vec<Event> {
        self.lock().iter().cloned().collect()
    }

    /// Takes every event held, oldest first, leaving the log empty.
    pub fn drain(&self) -> Vec<Event> {
        std::mem::take(&mut *self.lock()).into()
    }

    /// How many events are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no event is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The most events held at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many events were dropped because the log was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The process-wide event log ([`EventLog::DEFAULT_CAPACITY`] events), fed
/// by [`record_api_request`] and [`record_agent_task`].
pub fn events() -> &'static EventLog {
    static EVENTS: OnceLock<EventLog> = OnceLock::new();
    EVENTS.get_or_init(|| EventLog::new(EventLog::DEFAULT_CAPACITY))
}

/// Milliseconds since the Unix epoch by the system clock (0 before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Records an HTTP request now: an event in [`events()`] and a call of
/// `api.<METHOD> <endpoint>` in the global registry (a failure when
/// `status >= 500`).
pub fn record_api_request(endpoint: &str, method: &str, status: u16, duration: Duration) {
    events().record_api_request_at(now_ms(), endpoint, method, status, duration);
    record_in_registry(
        &api_operation_name(endpoint, method),
        duration,
        status < 500,
    );
}

/// Records an agent's task now: an event in [`events()`] and a call of
/// `agent.<agent_type>.<task>` in the global registry.
pub fn record_agent_task(agent_type: &str, task: &str, duration: Duration, success: bool) {
    events().record_agent_task_at(now_ms(), agent_type, task, duration, success);
    record_in_registry(&agent_operation_name(agent_type, task), duration, success);
}

/// Feeds a dynamically named operation into the global registry's figures.
fn record_in_registry(name: &str, duration: Duration, success: bool) {
    crate::global().record(name, duration, success);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_json() {
        let e = Event::new("heartbeat", 5).with_agent("a1");
        assert_eq!(e.kind, EventKind::Heartbeat);
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"heartbeat","timestamp_ms":5,"agent_id":"a1"}"#
        );
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        let custom: Event =
            serde_json::from_str(r#"{"kind":"agent_assigned","timestamp_ms":1}"#).unwrap();
        assert_eq!(custom.kind, EventKind::Custom("agent_assigned".into()));
    }

    #[test]
    fn log_is_bounded() {
        let log = EventLog::new(2);
        for t in 0..5 {
            log.push(Event::new("x", t));
        }
        let held: Vec<u64> = log.snapshot().iter().map(|e| e.timestamp_ms).collect();
        assert_eq!(held, [3, 4]);
        assert_eq!(log.dropped(), 3);
        assert_eq!(log.drain().len(), 2);
        assert!(log.is_empty());
    }

    #[test]
    fn helpers_shape_events() {
        let e = Event::api_request(1, "/users", "GET", 503, Duration::from_millis(12));
        assert_eq!(e.kind.as_str(), "api_error");
        assert_eq!(e.success, Some(false));
        assert_eq!(e.metadata["status"], 503);
        let t = Event::agent_task(2, "planner", "plan", Duration::from_millis(3), true);
        assert_eq!(t.kind, EventKind::TaskComplete);
        assert_eq!(t.agent_id.as_deref(), Some("planner"));
        assert_eq!(api_operation_name("/users", "GET"), "api.GET /users");
    }
}
