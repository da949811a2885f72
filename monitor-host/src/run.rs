//! The run loop: cycles on schedule, publishes after each, reloads the config between cycles and
//! stops cleanly when asked. The engine writes each cycle to the store itself.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, select};

use crate::config::ConfigErrors;
use crate::engine::{Engine, ReloadSummary, ShutdownOutcome, now_ms};
use crate::http::Published;
use crate::render;

/// Publishes the engine's view for the HTTP thread.
pub fn publish(engine: &Engine, published: &RwLock<Published>) {
    let p = Published {
        metrics: render::prometheus(engine),
        snapshot: render::snapshot_json(engine),
        report: render::report(engine),
        last_cycle_ms: now_ms(),
        // Three missed intervals plus the longest possible cycle is unhealthy.
        healthy_within_ms: 3 * engine.host().interval.as_millis() as u64 + 60_000,
    };
    *published.write().unwrap_or_else(|e| e.into_inner()) = p;
}

/// How a reload went: what changed, or every problem of the new config.
pub type ReloadResult = Result<ReloadSummary, ConfigErrors>;

/// A request to re-read the config file (SIGHUP, `POST /-/reload`); `reply`, when set, receives
/// the outcome.
#[derive(Debug, Default)]
pub struct ReloadRequest {
    /// Where the outcome goes.
    pub reply: Option<Sender<ReloadResult>>,
}

/// Where the run loop takes its orders from besides the clock.
#[derive(Debug)]
pub struct Control<'a> {
    /// Stop: a message or a disconnection.
    pub stop: &'a Receiver<()>,
    /// Reload the config file at `config`.
    pub reload: &'a Receiver<ReloadRequest>,
    /// The config file.
    pub config: &'a Path,
}

/// Runs cycles until `control.stop` receives a message (or is disconnected), finishing the current
/// cycle first, then lets running calls finish, shuts every plugin down and returns
/// how each shutdown went. Reload requests are handled between cycles.
pub fn run_until(
    mut engine: Engine,
    control: &Control<'_>,
    published: &Arc<RwLock<Published>>,
) -> Vec<ShutdownOutcome> {
    let stop = control.stop;
    // Replaced by `never` once every sender is gone, so that the loop does not spin on it.
    let mut reload = control.reload.clone();
    loop {
        engine.cycle(now_ms());
        publish(&engine, published);
        // Sleep until the next collector is due or the host interval passes, handling plugin
        // completions (notifications, healing outcomes) as they arrive.
        let wake = engine
            .next_due_ms()
            .unwrap_or(u64::MAX)
            .min(now_ms() + engine.host().interval.as_millis() as u64);
        loop {
            let now = now_ms();
            if now >= wake {
                break;
            }
            let wait = Duration::from_millis(wake - now);
            let completions = engine.completions().clone();
            select! {
                recv(stop) -> _ => {
                    publish(&engine, published);
                    return stop_engine(engine);
                }
                recv(completions) -> done => {
                    if let Ok(done) = done {
                        engine.complete(done);
                    }
                }
                recv(reload) -> request => {
                    let Ok(request) = request else {
                        reload = crossbeam_channel::never();
                        continue;
                    };
                    answer_reload(&mut engine, control.config, published, request);
                    // New collectors are due now.
                    break;
                }
                default(wait) => {}
            }
        }
        if !stop.is_empty() {
            return stop_engine(engine);
        }
        // Cycles that leave no time to wait in still take reloads.
        if let Ok(request) = reload.try_recv() {
            answer_reload(&mut engine, control.config, published, request);
        }
    }
}

/// Reloads, publishes and then answers, so that `/metrics` agrees with the answer.
fn answer_reload(
    engine: &mut Engine,
    config: &Path,
    published: &RwLock<Published>,
    request: ReloadRequest,
) {
    let result = reload_config(engine, config);
    publish(engine, published);
    if let Some(reply) = request.reply {
        // The asker may have given up waiting; the outcome is logged either way.
        let _ = reply.send(result);
    }
}

fn stop_engine(engine: Engine) -> Vec<ShutdownOutcome> {
    // The engine writes each cycle to the store itself, and the last calls' outcomes at shutdown.
    engine.shutdown()
}

/// Applies the config file at `path` to the engine and logs the outcome.
pub fn reload_config(engine: &mut Engine, path: &Path) -> ReloadResult {
    // SAFETY: the libraries are the ones the operator put in their config, as at start-up;
    // loading them is the purpose of this program.
    let result = unsafe { engine.reload(path) };
    match &result {
        Ok(summary) => {
            for w in &summary.warnings {
                tracing::warn!(config = %path.display(), "{w}");
            }
            for o in summary.stopped.iter().filter(|o| o.result != "ok") {
                tracing::warn!(
                    kind = o.kind,
                    instance = %o.name,
                    "shutdown of {} `{}`: {}",
                    o.kind,
                    o.name,
                    o.result
                );
            }
            tracing::info!(
                config = %path.display(),
                added = ?summary.added,
                removed = ?summary.removed,
                restarted = ?summary.restarted,
                kept = ?summary.kept,
                "config reloaded"
            );
        }
        Err(errors) => tracing::error!(
            config = %path.display(),
            "config not reloaded; the running config stays: {errors}"
        ),
    }
    result
}
