//! One function per command of the binary.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use crossbeam_channel::{Receiver, Sender};
use monitor_host::engine::{ShutdownOutcome, now_ms};
use monitor_host::history::DATABASE_FILE;
use monitor_host::http::{HttpServer, Published, Security};
use monitor_host::query::QueryApi;
use monitor_host::run::ReloadRequest;
use monitor_host::{Config, Engine, render, run};
use monitor_plugin::abi::PluginKind;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::RunArgs;

/// `check`: parse and validate the config, load and configure every plugin, shut them down.
pub fn check(path: &Path) -> anyhow::Result<()> {
    let (config, engine) = load(path)?;
    println!(
        "{}: ok: {} collector(s), {} alert(s), {} notifier(s), {} strategy(ies), {} rule(s) in {} rule group(s)",
        path.display(),
        config.collectors.len(),
        config.rules.alerts.len(),
        config.notifiers.len(),
        config.strategies.len(),
        config.rules.file_rules(),
        config.rules.groups.len()
    );
    log_shutdown(&engine.shutdown());
    Ok(())
}

/// `plugin-runner` (hidden): one isolated plugin instance, served over stdin and stdout.
pub fn plugin_runner(args: crate::RunnerArgs) -> anyhow::Result<()> {
    let kind = match args.kind.as_str() {
        "collector" => PluginKind::Collector,
        "strategy" => PluginKind::Strategy,
        _ => PluginKind::Notifier,
    };
    let args = monitor_host::worker::RunnerArgs {
        library: args.library,
        kind,
        plugin: args.plugin,
        max_payload: args.max_payload,
    };
    // SAFETY: the host starts this process for the library its config names, which it trusts,
    // and nothing else in this process uses its standard input and output.
    unsafe { monitor_host::worker::run_child(&args) }.context("plugin runner")
}

/// `plugins`: what the config loads, one instance per line.
pub fn plugins(path: &Path) -> anyhow::Result<()> {
    let (_, engine) = load(path)?;
    println!(
        "{:<10} {:<20} {:<18} {:<9} {:<4} {:<6} LIBRARY",
        "KIND", "NAME", "PLUGIN", "VERSION", "ABI", "SDK"
    );
    for p in engine.plugins() {
        let lib = p
            .library
            .as_deref()
            .map_or_else(|| "(built in)".into(), |l| l.display().to_string());
        println!(
            "{:<10} {:<20} {:<18} {:<9} {:<4} {:<6} {}",
            p.kind, p.name, p.plugin, p.version, p.abi_version, p.sdk_version, lib
        );
    }
    log_shutdown(&engine.shutdown());
    Ok(())
}

/// `run --once [--dry-run]`: one cycle, wait for its notifications and healing, print the report.
/// A dry run calls no notifier or strategy and reports what it would have done instead.
pub fn run_once(args: &RunArgs) -> anyhow::Result<()> {
    let (_, mut engine) = if args.dry_run {
        load_dry_run(&args.config)?
    } else {
        load(&args.config)?
    };
    engine.cycle(now_ms());
    engine.settle(engine.longest_timeout());
    print!("{}", render::report(&engine));
    log_shutdown(&engine.shutdown());
    Ok(())
}

/// `run`: cycle until SIGINT or SIGTERM, serving HTTP and reloading the config on SIGHUP and
/// `POST /-/reload`, then shut down and write the history.
pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    // Before anything slow, so that a signal during start-up is handled too (a SIGHUP then
    // reloads once the loop runs).
    let (reload_tx, reload_rx) = crossbeam_channel::unbounded();
    let stop = on_signal(reload_tx.clone())?;
    let (config, mut engine) = load(&args.config)?;
    if let Err(e) = restore_history(&config, &mut engine) {
        log_shutdown(&engine.shutdown());
        return Err(e);
    }
    let published = Arc::new(Published::default());
    // Stopped (and joined) when `run` returns, after the engine.
    let learning = monitor_host::learn::Learning::start(
        &config,
        engine.learning_feed(),
        config.host.data_dir.join(DATABASE_FILE),
    );
    published.serve_learned(learning.reports());
    let _server = match config.host.listen {
        Some(addr) => {
            let query = QueryApi::new(config.host.data_dir.join(DATABASE_FILE));
            let security = Security::of(&config.host);
            let scheme = if security.tls.is_some() {
                "https"
            } else {
                "http"
            };
            let server = HttpServer::start(addr, published.clone(), reload_tx, query, security)?;
            tracing::info!(addr = %server.addr, "serving {scheme}://{}/metrics", server.addr);
            Some(server)
        }
        None => None,
    };
    let control = run::Control {
        stop: &stop,
        reload: &reload_rx,
        config: &args.config,
    };
    let outcomes = run::run_until(engine, &control, &published);
    // Reloads asked for from now on, and any still queued, are answered 503 at once instead of
    // holding the HTTP thread (and so the exit) for the whole wait.
    drop(reload_rx);
    log_shutdown(&outcomes);
    let clean = outcomes.iter().filter(|o| o.result == "ok").count();
    tracing::info!("plugins shut down: {clean} of {} cleanly", outcomes.len());
    Ok(())
}

fn load(path: &Path) -> anyhow::Result<(Config, Engine)> {
    let config = Config::load(path)?;
    // SAFETY: the libraries are the ones the operator put in their config; loading them is the
    // purpose of this program.
    let engine = unsafe { Engine::load(&config) }?;
    Ok((config, engine))
}

fn load_dry_run(path: &Path) -> anyhow::Result<(Config, Engine)> {
    let config = Config::load(path)?;
    // SAFETY: as in `load`; a dry run loads the libraries but creates no notifier or strategy.
    let engine = unsafe { Engine::load_dry_run(&config) }?;
    Ok((config, engine))
}

/// Opens the store in `data_dir` and restores what an earlier run left there. A damaged store
/// stops the host rather than being overwritten.
fn restore_history(config: &Config, engine: &mut Engine) -> anyhow::Result<()> {
    if let Some(file) = engine.load_history(&config.host.data_dir, now_ms())? {
        tracing::info!(file = %file.display(), "store opened; history restored");
    }
    Ok(())
}

/// A channel that receives a message on the first SIGINT or SIGTERM; a SIGHUP sends a reload
/// request to `reload` instead (its default action would end the host without shutting plugins
/// down or writing history).
fn on_signal(reload: Sender<ReloadRequest>) -> anyhow::Result<Receiver<()>> {
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("cannot install signal handlers")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let name = signal_hook::low_level::signal_name(signal).unwrap_or("signal");
                if signal == SIGHUP {
                    tracing::info!(signal = name, "{name} received; reloading the config");
                    // The run loop holds the receiver until it stops; then there is nothing to
                    // reload.
                    let _ = reload.send(ReloadRequest::default());
                } else if stop_tx.try_send(()).is_ok() {
                    tracing::info!(signal = name, "{name} received; finishing the cycle");
                } else {
                    tracing::info!(signal = name, "{name} received; already shutting down");
                }
            }
        })
        .context("cannot start the signal thread")?;
    Ok(stop_rx)
}

/// Logs the instances that did not shut down cleanly.
fn log_shutdown(outcomes: &[ShutdownOutcome]) {
    for o in outcomes.iter().filter(|o| o.result != "ok") {
        tracing::warn!(
            kind = o.kind,
            instance = %o.name,
            "shutdown of {} `{}`: {}",
            o.kind,
            o.name,
            o.result
        );
    }
}
