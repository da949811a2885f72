//! The run loop: cycles on schedule, publishes after each, stops cleanly when asked.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use crossbeam_channel::{Receiver, select};

use crate::engine::{Engine, ShutdownOutcome, now_ms};
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

/// Runs cycles until `stop` receives a message (or is disconnected), finishing the current cycle
/// first, then lets running calls finish, shuts every plugin down and returns how
/// each shutdown went.
pub fn run_until(
    mut engine: Engine,
    stop: &Receiver<()>,
    published: &Arc<RwLock<Published>>,
) -> Vec<ShutdownOutcome> {
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
                default(wait) => {}
            }
        }
        if !stop.is_empty() {
            return stop_engine(engine);
        }
    }
}

fn stop_engine(engine: Engine) -> Vec<ShutdownOutcome> {
    // The engine writes each cycle to the store itself, and the last calls' outcomes at shutdown.
    engine.shutdown()
}
