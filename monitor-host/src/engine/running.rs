//! A running plugin: one configured instance on its worker, with its in-flight call, timeout,
//! back-off and health figures.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use monitor_plugin::abi::PluginKind;
use serde::Serialize;

use super::healing::HealJob;
use super::request::Requests;
use crate::config::{ConfigError, Isolation, PluginSpec};
use crate::library::{CallFailure, PluginLibrary};
use crate::worker::{Done, Worker, WorkerSpec};

/// Longest back-off, as a multiple of the instance's base interval.
pub const MAX_BACKOFF_FACTOR: u32 = 32;

/// Health figures of one plugin instance, as served in `/metrics` and the snapshot.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PluginStats {
    /// Calls made.
    pub calls: u64,
    /// Calls that returned an error or output the host could not read.
    pub errors: u64,
    /// Calls abandoned after the timeout.
    pub timeouts: u64,
    /// Calls that panicked inside the plugin.
    pub panics: u64,
    /// Failures in a row; 0 after a success.
    pub consecutive_failures: u32,
    /// No calls are made before this time (ms since epoch) because the instance keeps failing.
    pub backoff_until_ms: Option<u64>,
    /// Last success, ms since epoch.
    pub last_success_ms: Option<u64>,
    /// Duration of the last finished call, in seconds.
    pub last_call_seconds: Option<f64>,
    /// Last failure's text.
    pub last_error: Option<String>,
    /// Samples returned by the last successful collect: 0 means quiet, not stuck.
    pub last_samples: Option<usize>,
    /// A call is running now.
    pub busy: bool,
    /// A call has been running for longer than the timeout.
    pub stuck: bool,
    /// Calls skipped because the previous one was still running.
    pub skipped: u64,
    /// Times the instance's process died on its own (`isolation = "process"` only): a segfault,
    /// an abort, an `exit`, a kill from outside.
    pub crashes: u64,
    /// Times a new process was started for the instance after one died or was killed at a
    /// timeout (`isolation = "process"` only).
    pub restarts: u64,
    /// Notifications dropped because the queue was full (notifiers).
    pub dropped: u64,
    /// Samples of this collector refused at ingest, by reason (`invalid_value`, `invalid_sample`,
    /// `invalid_name`, `invalid_label_name`, `future_timestamp`); the rest of the collection is kept.
    pub rejected: BTreeMap<&'static str, u64>,
}

/// `start + timeout`, or, should that not be representable, the furthest deadline that is: a
/// configured timeout (at most [`monitor_plugin::MAX_DURATION`]) never overflows, but the host
/// must not panic on one that would.
fn deadline(start: Instant, timeout: Duration) -> Instant {
    start
        .checked_add(timeout)
        .or_else(|| start.checked_add(monitor_plugin::MAX_DURATION))
        .unwrap_or(start)
}

/// One plugin instance as the engine sees it.
#[derive(Debug, Serialize)]
pub struct PluginStatus {
    /// Collector, strategy or notifier.
    pub kind: &'static str,
    /// Instance name.
    pub name: String,
    /// Plugin name in its library.
    pub plugin: String,
    /// Plugin version.
    pub version: String,
    /// ABI version of its library.
    pub abi_version: u32,
    /// SDK version its library was built with.
    pub sdk_version: String,
    /// Library path (none for plugins linked into the host).
    pub library: Option<PathBuf>,
    /// `thread` or `process`.
    pub isolation: &'static str,
    /// Health figures.
    pub stats: PluginStats,
}

/// What `shutdown` did for each instance.
#[derive(Debug, Clone, Serialize)]
pub struct ShutdownOutcome {
    /// Instance name.
    pub name: String,
    /// Kind.
    pub kind: &'static str,
    /// `ok`, the error text, or `abandoned: ...` for an instance stuck in a call.
    pub result: String,
}

/// Why a call was made, so its result goes to the right place.
#[derive(Debug)]
pub(super) enum Purpose {
    Collect,
    /// What the notification was about, for its incident's timeline.
    Notify(Option<super::incidents::NotifyTag>),
    Heal(HealJob),
}

/// The call an instance is busy with.
#[derive(Debug)]
pub(super) struct InFlight {
    pub job: u64,
    pub started: Instant,
    pub started_ms: u64,
    pub deadline: Instant,
    pub timed_out: bool,
    pub purpose: Purpose,
}

/// A configured plugin instance on its worker thread.
#[derive(Debug)]
pub(super) struct RunningPlugin {
    pub kind: PluginKind,
    pub name: String,
    pub plugin: String,
    pub version: String,
    pub library: Arc<PluginLibrary>,
    pub worker: Option<Worker>,
    pub isolation: Isolation,
    pub timeout: Duration,
    pub base_backoff_ms: u64,
    pub in_flight: Option<InFlight>,
    pub stats: PluginStats,
    /// When rejected samples were last logged, so a collector rejecting on every call logs a line
    /// a minute, not one per sample.
    pub reject_log: super::ingest::RejectLog,
    /// The store ids of the series it reports, by identity as it sends them.
    pub series_cache: super::ingest::SeriesCache,
    /// Raised when the instance asked for a collection now (collectors on a worker).
    pub requested: Option<Arc<AtomicBool>>,
    /// When its last collection began, ms since epoch: requests wait [`super::MIN_REQUEST_GAP`]
    /// after it.
    pub last_collect_ms: Option<u64>,
}

/// What [`RunningPlugin::start`] needs besides the instance's own keys.
pub(super) struct Start<'a> {
    /// Index the engine gives the instance; tags its results.
    pub slot: usize,
    /// The first back-off after a failure.
    pub base_backoff: Duration,
    /// Cap on a payload, in bytes.
    pub max_payload: usize,
    /// Where results go.
    pub done: &'a Sender<Done>,
    /// Where collection requests go.
    pub requests: &'a Requests,
    /// Start the instance on a worker; when false the library and plugin are only checked.
    pub run: bool,
}

impl RunningPlugin {
    /// Loads the instance's library, finds its plugin and starts a configured instance on a worker.
    ///
    /// # Safety
    ///
    /// Runs code from `spec.library` (see [`PluginLibrary::load`]).
    pub unsafe fn start(spec: &PluginSpec, start: &Start<'_>) -> Result<Self, ConfigError> {
        let err = |at: &crate::config::Location, message: String| ConfigError {
            location: at.clone(),
            message,
        };
        let library = match spec.isolation {
            // Read in a runner process: a library that crashes while it loads must not take
            // the host down when its instance is isolated.
            #[cfg(unix)]
            Isolation::Process => crate::worker::describe_library(
                &spec.library,
                spec.kind,
                &spec.plugin,
                spec.timeout,
            ),
            // SAFETY: forwarded to our caller, who vouches for the configured library.
            _ => unsafe { PluginLibrary::load(&spec.library) },
        }
        .map_err(|e| err(&spec.library_at, format!("`library`: {e}")))?;
        let Some(info) = library.find(spec.kind, &spec.plugin).cloned() else {
            return Err(err(&spec.plugin_at, not_found(spec, &library)));
        };
        if !start.run {
            return Ok(Self::new(spec, &info.version, library, None, start));
        }
        let (requested, on_request) = match spec.kind {
            PluginKind::Collector => {
                let (flag, hook) = start.requests.hook();
                (Some(flag), Some(hook))
            }
            _ => (None, None),
        };
        let worker = Worker::start(
            WorkerSpec {
                slot: start.slot,
                name: spec.name.clone(),
                isolation: spec.isolation,
                thread_name: format!("{}-{}", spec.kind.as_str(), spec.name),
                library: library.clone(),
                plugin: info.clone(),
                config: spec.config.clone(),
                max_payload: start.max_payload,
                timeout: spec.timeout,
                on_request,
            },
            start.done.clone(),
        )
        .map_err(|e| {
            err(
                &spec.config_at,
                format!("plugin `{}` refused its config: {e}", spec.plugin),
            )
        })?;
        let mut running = Self::new(spec, &info.version, library, Some(worker), start);
        running.requested = requested;
        Ok(running)
    }

    fn new(
        spec: &PluginSpec,
        version: &str,
        library: Arc<PluginLibrary>,
        worker: Option<Worker>,
        start: &Start<'_>,
    ) -> Self {
        Self {
            kind: spec.kind,
            name: spec.name.clone(),
            plugin: spec.plugin.clone(),
            version: version.to_owned(),
            library,
            worker,
            isolation: spec.isolation,
            timeout: spec.timeout,
            base_backoff_ms: start.base_backoff.as_millis() as u64,
            in_flight: None,
            stats: PluginStats::default(),
            reject_log: super::ingest::RejectLog::default(),
            series_cache: super::ingest::SeriesCache::default(),
            requested: None,
            last_collect_ms: None,
        }
    }

    /// Not busy and not backed off.
    pub fn idle(&self, now_ms: u64) -> bool {
        self.in_flight.is_none() && self.stats.backoff_until_ms.is_none_or(|t| t <= now_ms)
    }

    /// Free for a call: started, not busy, not backed off.
    pub fn available(&self, now_ms: u64) -> bool {
        self.worker.is_some() && self.idle(now_ms)
    }

    /// Hands `input` to the worker as call `job`.
    pub fn dispatch(&mut self, job: u64, input: Vec<u8>, purpose: Purpose, now_ms: u64) {
        let started = Instant::now();
        let purpose_is_collect = matches!(purpose, Purpose::Collect);
        self.in_flight = Some(InFlight {
            job,
            started,
            started_ms: now_ms,
            deadline: deadline(started, self.timeout),
            timed_out: false,
            purpose,
        });
        self.stats.calls += 1;
        if purpose_is_collect {
            self.last_collect_ms = Some(now_ms);
        }
        if let Some(w) = &self.worker {
            w.submit(job, input);
        }
    }

    /// Takes the in-flight call `done` answers. `None` when it answers another call, or a call
    /// already counted as timed out (the worker is free again either way).
    pub fn finish(&mut self, done: &Done) -> Option<InFlight> {
        let f = self.in_flight.take_if(|f| f.job == done.job)?;
        self.stats.last_call_seconds = Some(done.elapsed.as_secs_f64());
        (!f.timed_out).then_some(f)
    }

    /// Marks the in-flight call timed out once `now` is past its deadline, and backs off. Returns
    /// the call when it just timed out.
    pub fn check_timeout(&mut self, now_ms: u64, now: Instant) -> Option<&InFlight> {
        let f = self.in_flight.as_mut()?;
        if f.timed_out || now < f.deadline {
            return None;
        }
        f.timed_out = true;
        let job = f.job;
        self.stats.timeouts += 1;
        self.stats.last_error = Some(format!("call did not return within {:?}", self.timeout));
        if self.isolation == Isolation::Process {
            tracing::warn!(
                plugin = %self.name,
                kind = self.kind.as_str(),
                timeout = ?self.timeout,
                "plugin call timed out; its process is killed and replaced"
            );
        } else {
            tracing::warn!(
                plugin = %self.name,
                kind = self.kind.as_str(),
                timeout = ?self.timeout,
                "plugin call timed out; its worker is abandoned until the call returns"
            );
        }
        if let Some(w) = &self.worker {
            w.cancel(job);
        }
        self.back_off(now_ms);
        self.in_flight.as_ref()
    }

    pub fn succeeded(&mut self, now_ms: u64) {
        if self.stats.consecutive_failures > 0 {
            tracing::info!(
                plugin = %self.name,
                kind = self.kind.as_str(),
                failures = self.stats.consecutive_failures,
                "plugin recovered"
            );
        }
        self.stats.consecutive_failures = 0;
        self.stats.backoff_until_ms = None;
        self.stats.last_success_ms = Some(now_ms);
        self.stats.last_error = None;
    }

    pub fn failed(&mut self, now_ms: u64, failure: &CallFailure) {
        match failure {
            CallFailure::Panicked(_) => self.stats.panics += 1,
            CallFailure::Error(_) | CallFailure::Invalid(_) => self.stats.errors += 1,
        }
        let text = failure.to_string();
        let first_line = text.lines().next().unwrap_or_default().to_owned();
        self.stats.last_error = Some(first_line);
        match failure {
            CallFailure::Panicked(m) => {
                // One line per panic; the backtrace the SDK may append goes to debug.
                let (line, backtrace) = m.split_once('\n').unwrap_or((m, ""));
                tracing::warn!(
                    plugin = %self.name,
                    kind = self.kind.as_str(),
                    panic = %line,
                    "plugin panicked"
                );
                if !backtrace.is_empty() {
                    tracing::debug!(plugin = %self.name, %backtrace, "plugin panic backtrace");
                }
            }
            other => tracing::warn!(
                plugin = %self.name,
                kind = self.kind.as_str(),
                error = %other,
                "plugin call failed"
            ),
        }
        self.back_off(now_ms);
    }

    fn back_off(&mut self, now_ms: u64) {
        self.stats.consecutive_failures = self.stats.consecutive_failures.saturating_add(1);
        // The first failure waits one base interval (the usual schedule); each further failure
        // doubles it, up to MAX_BACKOFF_FACTOR.
        let factor = 1u64 << (self.stats.consecutive_failures - 1).min(MAX_BACKOFF_FACTOR.ilog2());
        let until = now_ms + self.base_backoff_ms * factor;
        self.stats.backoff_until_ms = Some(until);
        if self.stats.consecutive_failures > 1 {
            tracing::warn!(
                plugin = %self.name,
                kind = self.kind.as_str(),
                failures = self.stats.consecutive_failures,
                backoff_ms = until - now_ms,
                "plugin backed off"
            );
        }
    }

    /// A call has been running past its timeout.
    pub fn stuck(&self) -> bool {
        self.in_flight.as_ref().is_some_and(|f| f.timed_out)
    }

    pub fn status(&self) -> PluginStatus {
        let mut stats = self.stats.clone();
        stats.busy = self.in_flight.is_some();
        stats.stuck = self.stuck();
        if let Some((crashes, restarts)) =
            self.worker.as_ref().and_then(Worker::crashes_and_restarts)
        {
            stats.crashes = crashes;
            stats.restarts = restarts;
        }
        PluginStatus {
            kind: self.kind.as_str(),
            name: self.name.clone(),
            plugin: self.plugin.clone(),
            version: self.version.clone(),
            abi_version: self.library.abi_version,
            sdk_version: self.library.sdk_version.clone(),
            library: self.library.path.clone(),
            isolation: self.isolation.as_str(),
            stats,
        }
    }

    /// Calls the instance's `shutdown` unless it is stuck in a call, and says how that went.
    pub fn shut_down(&mut self) -> ShutdownOutcome {
        let result = match (self.worker.take(), &self.in_flight) {
            (Some(_), Some(f)) => format!(
                "abandoned: a call has been running for {:?}",
                f.started.elapsed()
            ),
            (Some(w), None) => match w.shutdown(self.timeout) {
                Some(Ok(())) => "ok".to_owned(),
                Some(Err(e)) => e.to_string(),
                None => format!(
                    "abandoned: shutdown did not return within {:?}",
                    self.timeout
                ),
            },
            (None, _) => "not running".to_owned(),
        };
        ShutdownOutcome {
            name: self.name.clone(),
            kind: self.kind.as_str(),
            result,
        }
    }
}

fn not_found(spec: &PluginSpec, library: &PluginLibrary) -> String {
    let mut offered: Vec<String> = library
        .plugins
        .iter()
        .map(|p| format!("{} `{}`", p.kind.as_str(), p.name))
        .collect();
    offered.sort();
    format!(
        "`plugin`: `{}` has no {} named `{}`; it provides: {}",
        spec.library.display(),
        spec.kind.as_str(),
        spec.plugin,
        if offered.is_empty() {
            "nothing".to_owned()
        } else {
            offered.join(", ")
        }
    )
}

/// Starts plugin instances one by one, giving each the next index, and collects every error.
pub(super) struct Launcher<'a> {
    pub plugins: Vec<RunningPlugin>,
    errors: Vec<ConfigError>,
    done: &'a Sender<Done>,
    requests: &'a Requests,
    max_payload: usize,
}

impl<'a> Launcher<'a> {
    pub fn new(done: &'a Sender<Done>, requests: &'a Requests, max_payload: usize) -> Self {
        Self {
            plugins: Vec::new(),
            errors: Vec::new(),
            done,
            requests,
            max_payload,
        }
    }

    /// Starts the instance `spec` describes (when `run`; otherwise only checks its library and
    /// plugin); its index, or `None` (error kept) when it fails.
    ///
    /// # Safety
    ///
    /// As [`RunningPlugin::start`].
    pub unsafe fn start(
        &mut self,
        spec: &PluginSpec,
        base_backoff: Duration,
        run: bool,
    ) -> Option<usize> {
        let slot = self.plugins.len();
        let start = Start {
            slot,
            base_backoff,
            max_payload: self.max_payload,
            done: self.done,
            requests: self.requests,
            run,
        };
        // SAFETY: forwarded to our caller.
        match unsafe { RunningPlugin::start(spec, &start) } {
            Ok(p) => {
                self.plugins.push(p);
                Some(slot)
            }
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    /// Every instance, or every error sorted by position (the instances started are shut down).
    pub fn finish(self) -> Result<Vec<RunningPlugin>, Vec<ConfigError>> {
        let Self {
            mut plugins,
            mut errors,
            ..
        } = self;
        if errors.is_empty() {
            return Ok(plugins);
        }
        for p in &mut plugins {
            p.shut_down();
        }
        errors.sort_by_key(|e| (e.location.line, e.location.column));
        Err(errors)
    }
}
