//! `monitor-host`: load the plugins a TOML config names and run the monitoring loop.
//!
//! Exit codes: 0 success; 1 the host failed while running (e.g. the HTTP address is taken);
//! 2 the config is invalid or a plugin could not be loaded or configured (also bad arguments).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use monitor_host::http::{HttpServer, Published};
use monitor_host::{Config, ConfigErrors, Engine, render, run};

/// Performance monitor host: loads collector, healing-strategy and notifier plugins (dynamic
/// libraries) named in a TOML config, collects metrics on an interval, evaluates alert rules,
/// notifies, runs healing strategies, and serves /metrics, /api/snapshot and /healthz over HTTP.
#[derive(Debug, Parser)]
#[command(
    name = "monitor-host",
    version,
    after_help = "\
Examples:
  monitor-host check   --config examples/monitor.toml   # validate; exit 2 with file:line:col errors
  monitor-host plugins --config examples/monitor.toml   # what loaded from which library
  monitor-host run     --config examples/monitor.toml --once
  monitor-host run     --config examples/monitor.toml   # until Ctrl-C or SIGTERM

Paths in the config are relative to the config file. Exit codes: 0 ok, 1 runtime error,
2 invalid config or plugin that cannot be loaded."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the monitoring loop until SIGINT or SIGTERM (finishes the cycle, shuts plugins down).
    Run {
        /// The TOML config file.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        /// Run one cycle, print the report and exit.
        #[arg(long)]
        once: bool,
        /// With --once: collect and evaluate, and report what would be notified and healed
        /// without calling any notifier or strategy or writing history.
        #[arg(long, requires = "once")]
        dry_run: bool,
    },
    /// Parse and validate the config, load every plugin and configure it, then exit.
    Check {
        /// The TOML config file.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
    /// List the plugin instances the config loads: kind, name, version, ABI, library.
    Plugins {
        /// The TOML config file.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run_command(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<ConfigErrors>().is_some() => {
            eprintln!("{e:#}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("monitor-host: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn load(path: &Path) -> anyhow::Result<(Config, Engine)> {
    load_with(path, false)
}

fn load_with(path: &Path, dry_run: bool) -> anyhow::Result<(Config, Engine)> {
    let config = Config::load(path)?;
    let engine = if dry_run {
        // SAFETY: the libraries are the ones the operator put in their config; loading them is
        // the purpose of this program.
        unsafe { Engine::load_dry_run(&config) }?
    } else {
        // SAFETY: as above.
        unsafe { Engine::load(&config) }?
    };
    Ok((config, engine))
}

fn run_command(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Check { config } => {
            let (c, engine) = load(&config)?;
            println!(
                "{}: ok: {} collector(s), {} alert(s), {} notifier(s), {} strategy(ies)",
                config.display(),
                c.collectors.len(),
                c.alerts.len(),
                c.notifiers.len(),
                c.strategies.len()
            );
            engine.shutdown();
            Ok(())
        }
        Command::Plugins { config } => {
            let (_, engine) = load(&config)?;
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
            engine.shutdown();
            Ok(())
        }
        Command::Run {
            config,
            once: true,
            dry_run,
        } => {
            let (_, mut engine) = load_with(&config, dry_run)?;
            engine.cycle(monitor_host::engine::now_ms());
            engine.settle(engine.longest_timeout());
            print!("{}", render::report(&engine));
            for o in engine.shutdown() {
                if o.result != "ok" {
                    eprintln!("shutdown of {} `{}`: {}", o.kind, o.name, o.result);
                }
            }
            Ok(())
        }
        Command::Run {
            config,
            once: false,
            ..
        } => {
            let (c, mut engine) = load(&config)?;
            if let Some(dir) = &c.host.data_dir
                && let Err(e) = engine.load_history(dir, monitor_host::engine::now_ms())
            {
                engine.shutdown();
                return Err(e.into());
            }
            let published = Arc::new(RwLock::new(Published::default()));
            let _server = match c.host.listen {
                Some(addr) => {
                    let s = HttpServer::start(addr, published.clone())?;
                    eprintln!("monitor-host: serving http://{}/metrics", s.addr);
                    Some(s)
                }
                None => None,
            };
            let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
            let mut signals = signal_hook::iterator::Signals::new([
                signal_hook::consts::SIGINT,
                signal_hook::consts::SIGTERM,
            ])
            .context("cannot install signal handlers")?;
            std::thread::Builder::new()
                .name("signals".into())
                .spawn(move || {
                    if let Some(sig) = signals.forever().next() {
                        eprintln!("monitor-host: signal {sig} received, finishing the cycle");
                        let _ = stop_tx.try_send(());
                    }
                })
                .context("cannot start the signal thread")?;
            let outcomes = run::run_until(engine, &stop_rx, &published);
            for o in &outcomes {
                eprintln!(
                    "monitor-host: shutdown of {} `{}`: {}",
                    o.kind, o.name, o.result
                );
            }
            Ok(())
        }
    }
}
