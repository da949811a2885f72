//! The run loop: cycles on schedule, answers the HTTP thread's questions between cycles (views are
//! rendered only when a client asks, see [`Published`]), reloads the config between cycles and
//! stops cleanly when asked. The engine writes each cycle to the store itself.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, select};

use crate::config::ConfigErrors;
use crate::engine::{Engine, ReloadSummary, ShutdownOutcome, now_ms};
use crate::http::Published;

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
/// how each shutdown went. Reload requests and the HTTP thread's questions
/// ([`Published::ask`]) are handled between cycles.
pub fn run_until(
    mut engine: Engine,
    control: &Control<'_>,
    published: &Arc<Published>,
) -> Vec<ShutdownOutcome> {
    let stop = control.stop;
    // Replaced by `never` once every sender is gone, so that the loop does not spin on it.
    let mut reload = control.reload.clone();
    let asks = published.asks().clone();
    loop {
        // A tick never waits: the cycle it starts ends when its collectors have answered (in
        // `complete` below) or at the next tick.
        published.cycle_started();
        engine.tick(now_ms());
        published.changed(&engine, true);
        // Questions that came during the cycle, even when the next one is due at once.
        while let Ok(ask) = asks.try_recv() {
            ask(&mut engine);
        }
        // Sleep until the next collector is due or the host interval passes, handling plugin
        // completions (notifications, healing outcomes) as they arrive, and collections that
        // collectors ask for (which may make one due sooner).
        let mut wake = engine
            .next_due_ms()
            .unwrap_or(u64::MAX)
            .min(now_ms() + engine.host().interval.as_millis() as u64);
        let requests = engine.collection_requests().clone();
        loop {
            let now = now_ms();
            if now >= wake {
                break;
            }
            let wait = Duration::from_millis(wake - now);
            let completions = engine.completions().clone();
            select! {
                recv(stop) -> _ => return stop_engine(engine, published),
                recv(completions) -> done => {
                    if let Ok(done) = done {
                        let ended = engine.complete(done);
                        published.changed(&engine, ended);
                    }
                    // A request made during the call that just ended waited for it.
                    if requested_now(&mut engine, &mut wake) {
                        break;
                    }
                }
                recv(requests) -> _ => {
                    if requested_now(&mut engine, &mut wake) {
                        break;
                    }
                }
                recv(asks) -> ask => {
                    if let Ok(ask) = ask {
                        ask(&mut engine);
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
            return stop_engine(engine, published);
        }
        // Cycles that leave no time to wait in still take reloads.
        if let Ok(request) = reload.try_recv() {
            answer_reload(&mut engine, control.config, published, request);
        }
    }
}

/// Takes the collections collectors asked for: whether one is due now (the loop then ticks at
/// once); otherwise `wake` moves to the earliest one that is due later.
fn requested_now(engine: &mut Engine, wake: &mut u64) -> bool {
    let now = now_ms();
    if engine.collect_requested(now) {
        return true;
    }
    *wake = (*wake).min(engine.next_due_ms().unwrap_or(u64::MAX));
    false
}

/// Reloads, marks the views out of date and then answers, so that `/metrics` agrees with the
/// answer.
fn answer_reload(
    engine: &mut Engine,
    config: &Path,
    published: &Published,
    request: ReloadRequest,
) {
    let result = reload_config(engine, config);
    published.changed(engine, false);
    // A scrape right after the answer may come while the next cycle runs, when the last rendering
    // is served as it is: make that rendering show the reload.
    published.refresh(engine);
    if let Some(reply) = request.reply {
        // The asker may have given up waiting; the outcome is logged either way.
        let _ = reply.send(result);
    }
}

/// Answers the questions already asked, tells askers not to wait any more (the shutdown may take
/// as long as the longest plugin timeout), then shuts the engine down.
fn stop_engine(mut engine: Engine, published: &Published) -> Vec<ShutdownOutcome> {
    published.stopped();
    while let Ok(ask) = published.asks().try_recv() {
        ask(&mut engine);
    }
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::http::{VIEW_WAIT, View};

    fn reloaded_ok(metrics: &[u8]) -> bool {
        String::from_utf8_lossy(metrics)
            .contains("\nmonitor_host_config_last_reload_successful 1\n")
    }

    /// Whether two answers share one buffer (no copy per request).
    fn same_buffer(a: &[u8], b: &[u8]) -> bool {
        std::ptr::eq(a.as_ptr(), b.as_ptr()) && a.len() == b.len()
    }

    #[test]
    fn views_are_rendered_on_request_once_per_change() {
        // One cycle, then an hour's wait: the engine does not change unless asked to.
        let text = "[host]\ninterval = \"1h\"\nlisten = \"off\"\n";
        let config = Config::from_str(text, "monitor.toml", Path::new("/etc/monitor")).unwrap();
        // SAFETY: the config names no library.
        let engine = unsafe { Engine::load(&config) }.unwrap();
        let published = Arc::new(Published::default());
        let (stop_tx, stop) = crossbeam_channel::bounded(1);
        let (reload_tx, reload) = crossbeam_channel::unbounded();
        let shared = published.clone();
        let thread = std::thread::spawn(move || {
            let control = Control {
                stop: &stop,
                reload: &reload,
                // Missing: a reload fails.
                config: Path::new("/nonexistent/monitor.toml"),
            };
            run_until(engine, &control, &shared);
        });
        assert_eq!(published.ask(Engine::cycles, VIEW_WAIT), Some(1));
        assert_eq!(published.renders(), 0, "nothing rendered unasked");

        let a = published.view(View::Metrics, VIEW_WAIT).unwrap();
        let b = published.view(View::Metrics, VIEW_WAIT).unwrap();
        assert!(same_buffer(&a, &b), "one rendering serves both requests");
        assert_eq!(published.renders(), 1);
        assert!(reloaded_ok(&a), "{a:?}");

        // A change (here a failed reload) renders the views asked for before again, and the
        // answer agrees with the reload's.
        let (reply, outcome) = crossbeam_channel::bounded(1);
        reload_tx
            .send(ReloadRequest { reply: Some(reply) })
            .unwrap();
        assert!(outcome.recv().unwrap().is_err());
        // Even when the next cycle is already running (the last rendering is then served as it
        // is), the answer shows the reload.
        published.cycle_started();
        let c = published.view(View::Metrics, VIEW_WAIT).unwrap();
        assert!(!reloaded_ok(&c), "{c:?}");
        assert_eq!(published.renders(), 2);

        // Stopped: the last rendering is still served; a view never rendered is not waited for.
        stop_tx.send(()).unwrap();
        thread.join().unwrap();
        let d = published.view(View::Metrics, VIEW_WAIT).unwrap();
        assert!(same_buffer(&c, &d));
        assert!(published.view(View::Snapshot, VIEW_WAIT).is_none());
    }
}
