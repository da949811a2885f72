//! Commands that ask a running host (or an instrumented application) over HTTP, one file per
//! command family: `status`, `alerts`, `silence`, `incidents`, `query`/`query-range`, `report`/`export`,
//! `healing`, `top`,
//! `app`.
//!
//! Every command reads the same JSON API as the web dashboard; none reads the store directly.

mod alerts;
mod app;
mod client;
mod format;
mod healing;
mod incidents;
mod query;
mod report;
mod silence;
mod status;
mod top;
mod view;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use monitor_host::Config;

pub use client::{Client, Unreachable};

/// How a command that ran ended, beyond success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done; nothing to signal.
    Done,
    /// `status`: alerts are firing or the host says it is unhealthy.
    Attention,
}

/// The commands for a running host or an application.
#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Host health, plugins and their states, firing and pending alerts (exit 1 when alerts fire
    /// or the host is unhealthy, 2 when it cannot be reached).
    Status(StatusArgs),
    /// Alert instances: alert, labels, state, since when, value.
    Alerts(StatusArgs),
    /// An instant query over /api/v1/query (PromQL, Prometheus's answers).
    Query(query::QueryArgs),
    /// A range query over /api/v1/query_range.
    QueryRange(query::RangeArgs),
    /// The host's text report.
    Report(Target),
    /// Healing analytics: verified success per strategy, MTTR by failure type, recommendations.
    Healing(healing::HealingArgs),
    /// The host's snapshot JSON or its /metrics exposition.
    Export(report::ExportArgs),
    /// Silences: add one, list them, expire one (over /api/silences).
    #[command(subcommand)]
    Silence(silence::SilenceCommand),
    /// Incidents: list them, show one's timeline, acknowledge, add a note (over /api/incidents).
    #[command(subcommand)]
    Incidents(incidents::IncidentsCommand),
    /// A live terminal dashboard: plugins, alerts, the busiest series, the latest healing.
    Top(top::TopArgs),
    /// An instrumented application's exposition or JSON snapshot file: report, export, dashboard.
    #[command(subcommand)]
    App(app::AppCommand),
}

/// Where the host is: `--url`, or the `listen` address of `--config`.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The host's base URL, e.g. http://127.0.0.1:9464.
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "config",
        required_unless_present = "config"
    )]
    url: Option<String>,
    /// The host's TOML config: its `[host] listen` address is asked.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl Target {
    /// The client for this host.
    ///
    /// # Errors
    ///
    /// The config cannot be loaded or has no `listen` address.
    pub fn client(&self) -> anyhow::Result<Client> {
        if let Some(url) = &self.url {
            return Ok(Client::new(url));
        }
        let path = self
            .config
            .as_ref()
            .expect("clap requires --url or --config");
        let config = Config::load(path)?;
        let mut addr = config.host.listen.with_context(|| {
            format!(
                "{}: no [host] listen address to ask; give --url",
                path.display()
            )
        })?;
        // A host listening on every interface is asked on loopback.
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        Ok(Client::new(&addr.to_string()))
    }
}

/// Human tables or JSON for scripts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns.
    #[default]
    Human,
    /// JSON on one line.
    Json,
}

/// `status` and `alerts`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    target: Target,
    /// Human tables or JSON.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
}

/// Runs one command.
///
/// # Errors
///
/// [`Unreachable`] when the host or application does not answer; any other error otherwise.
pub fn run(command: HostCommand) -> anyhow::Result<Outcome> {
    match command {
        HostCommand::Status(a) => status::run(&a),
        HostCommand::Alerts(a) => alerts::run(&a).map(|()| Outcome::Done),
        HostCommand::Query(a) => query::instant(&a).map(|()| Outcome::Done),
        HostCommand::QueryRange(a) => query::range(&a).map(|()| Outcome::Done),
        HostCommand::Report(t) => report::report(&t).map(|()| Outcome::Done),
        HostCommand::Healing(a) => healing::run(&a).map(|()| Outcome::Done),
        HostCommand::Export(a) => report::export(&a).map(|()| Outcome::Done),
        HostCommand::Silence(c) => silence::run(c).map(|()| Outcome::Done),
        HostCommand::Incidents(c) => incidents::run(c).map(|()| Outcome::Done),
        HostCommand::Top(a) => top::host(&a).map(|()| Outcome::Done),
        HostCommand::App(c) => app::run(c).map(|()| Outcome::Done),
    }
}
