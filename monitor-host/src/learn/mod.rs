//! What the host learns from its own events, and the series it watches: `/api/patterns`,
//! `/api/forecasts` and `/api/anomalies`.
//!
//! Every alert transition, healing attempt and event (plugin failures and time-outs, what
//! collectors report, such as `process_restarted`) becomes an [`Event`] whose kind names it:
//! `alert_firing:disk_full`, `alert_resolved:disk_full`, `healing_failed:disk_full`,
//! `plugin_timeout:system`, `process_restarted:demo` ([`events`]). The engine hands them to a
//! [`Feed`] as they happen; at start the learner reads back what the store holds from earlier runs
//! (within `rollup_retention`), so learning survives restarts.
//!
//! A thread of its own ([`Learning`], never the engine's) runs
//! [`PatternLearner`](monitor_core::analytics::PatternLearner) over the stream every
//! `[patterns] interval`, and evaluates the `[[watch]]`es over the store every `[host]
//! interval`; the HTTP server serves the last results ([`Reports`]).

pub mod events;
pub mod patterns;
pub mod watch;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use monitor_core::analytics::Event;
use monitor_core::http::{Request, Response};

use crate::config::Config;
use crate::history::Reader;

/// Events the engine saw since the learner last took them; bounded, the oldest dropped first.
#[derive(Debug, Clone, Default)]
pub struct Feed(Arc<Mutex<FeedInner>>);

#[derive(Debug, Default)]
struct FeedInner {
    // `None` until a learner listens: a host without one keeps nothing.
    events: Option<VecDeque<Event>>,
    capacity: usize,
}

impl Feed {
    /// A feed that keeps up to `capacity` events until they are taken.
    pub fn listening(capacity: usize) -> Self {
        let feed = Feed::default();
        feed.listen(capacity);
        feed
    }

    /// From now on keep up to `capacity` events until they are taken.
    pub fn listen(&self, capacity: usize) {
        let mut inner = self.lock();
        inner.capacity = capacity.max(1);
        inner.events.get_or_insert_with(VecDeque::new);
    }

    /// Hands one event to the learner (dropped when nobody listens). A short lock, no I/O.
    pub fn push(&self, event: Event) {
        let mut inner = self.lock();
        let capacity = inner.capacity;
        if let Some(q) = &mut inner.events {
            if q.len() >= capacity {
                q.pop_front();
            }
            q.push_back(event);
        }
    }

    /// Takes every event pushed so far, oldest first.
    pub fn take(&self) -> Vec<Event> {
        self.lock()
            .events
            .as_mut()
            .map(|q| q.drain(..).collect())
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FeedInner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The last results, as JSON, for the HTTP server.
#[derive(Debug)]
pub struct Reports {
    patterns: RwLock<String>,
    forecasts: RwLock<String>,
    anomalies: RwLock<String>,
}

impl Default for Reports {
    fn default() -> Self {
        let pending = r#"{"generated_at":null,"status":"pending"}"#.to_owned();
        Self {
            patterns: RwLock::new(pending.clone()),
            forecasts: RwLock::new(pending.clone()),
            anomalies: RwLock::new(pending),
        }
    }
}

impl Reports {
    /// Answers `GET /api/patterns`, `/api/forecasts` and `/api/anomalies`; `None` for any other
    /// path.
    pub fn handle(&self, request: &Request<'_>) -> Option<Response> {
        let slot = match request.path {
            "/api/patterns" => &self.patterns,
            "/api/forecasts" => &self.forecasts,
            "/api/anomalies" => &self.anomalies,
            _ => return None,
        };
        if !matches!(request.method, "GET" | "HEAD") {
            return Some(
                Response::new(405, "text/plain", "use GET\n").with_header("Allow", "GET, HEAD"),
            );
        }
        let body = slot.read().unwrap_or_else(|e| e.into_inner()).clone();
        Some(Response::new(200, "application/json", body))
    }

    fn set(slot: &RwLock<String>, value: String) {
        *slot.write().unwrap_or_else(|e| e.into_inner()) = value;
    }
}

/// The learning thread; stopped and joined when dropped.
#[derive(Debug)]
pub struct Learning {
    reports: Arc<Reports>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Learning {
    /// Starts learning from `feed` and from what the store at `database` held before now, and
    /// watching `config`'s `[[watch]]`es. The store's newest rows are noted here, before the
    /// engine writes again, so nothing is counted twice; the rest is read on the thread.
    pub fn start(config: &Config, feed: &Feed, database: PathBuf) -> Self {
        let patterns = config.patterns.clone();
        feed.listen(patterns.max_events);
        let marks = Reader::open(&database)
            .ok()
            .flatten()
            .and_then(|r| r.event_marks().ok());
        let since_ms =
            crate::engine::now_ms().saturating_sub(config.host.rollup_retention.as_millis() as u64);
        let reports = Arc::new(Reports::default());
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
        let worker = Worker {
            stream: patterns::Stream::new(patterns.max_events),
            patterns,
            watches: watch::Watches::new(&config.watches, database.clone()),
            watch_every: config.host.interval,
            feed: feed.clone(),
            reports: reports.clone(),
            database,
            past: marks.map(|m| (m, since_ms)),
        };
        let thread = std::thread::Builder::new()
            .name("learn".into())
            .spawn(move || worker.run(&stop_rx))
            .map_err(|e| tracing::warn!(error = %e, "cannot start the learning thread"))
            .ok();
        Self {
            reports,
            stop: Some(stop_tx),
            thread,
        }
    }

    /// What the HTTP server serves.
    pub fn reports(&self) -> Arc<Reports> {
        self.reports.clone()
    }
}

impl Drop for Learning {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Worker {
    patterns: crate::config::PatternsConfig,
    stream: patterns::Stream,
    watches: watch::Watches,
    watch_every: Duration,
    feed: Feed,
    reports: Arc<Reports>,
    database: PathBuf,
    // The store's rows written before this host started, and how far back to read them.
    past: Option<(crate::history::EventMarks, u64)>,
}

impl Worker {
    fn run(mut self, stop: &Receiver<()>) {
        if let Some((marks, since_ms)) = self.past.take() {
            self.read_past(marks, since_ms);
        }
        let mut next_patterns = std::time::Instant::now();
        let mut next_watch = std::time::Instant::now();
        loop {
            let now = std::time::Instant::now();
            if now >= next_patterns {
                self.learn();
                next_patterns = now + self.patterns.interval;
            }
            if now >= next_watch {
                self.watch();
                next_watch = now + self.watch_every;
            }
            let wake = next_patterns.min(next_watch);
            match stop.recv_timeout(wake.saturating_duration_since(std::time::Instant::now())) {
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        }
    }

    fn read_past(&mut self, marks: crate::history::EventMarks, since_ms: u64) {
        let past = Reader::open(&self.database)
            .and_then(|r| match r {
                Some(r) => r
                    .past_events(since_ms, marks, self.patterns.max_events)
                    .map(Some),
                None => Ok(None),
            })
            .map_err(|e| tracing::warn!(error = %e, "cannot read past events for learning"))
            .ok()
            .flatten();
        if let Some(past) = past {
            let mut all = events::from_past(&past);
            all.sort_by_key(|e| e.timestamp_ms);
            tracing::debug!(events = all.len(), "past events read for learning");
            self.stream.extend(all);
        }
    }

    fn learn(&mut self) {
        if !self.patterns.enabled {
            Reports::set(
                &self.reports.patterns,
                r#"{"generated_at":null,"status":"disabled","patterns":[]}"#.to_owned(),
            );
            return;
        }
        self.stream.extend(self.feed.take());
        let now = crate::engine::now_ms();
        let report = self.stream.report(&self.patterns, now);
        Reports::set(&self.reports.patterns, report);
    }

    fn watch(&mut self) {
        let now = crate::engine::now_ms();
        let (forecasts, anomalies) = self.watches.evaluate(now);
        Reports::set(&self.reports.forecasts, forecasts);
        Reports::set(&self.reports.anomalies, anomalies);
    }
}
