//! `report` and `export`: the host's text report, its snapshot JSON or its `/metrics`.

use clap::{Args, ValueEnum};

use super::Target;

/// What `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The snapshot JSON (`/api/snapshot`).
    Json,
    /// The Prometheus text exposition (`/metrics`).
    Prometheus,
}

/// `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub target: Target,
    /// JSON snapshot or Prometheus text.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
}

/// Prints `/api/report`.
pub fn report(target: &Target) -> anyhow::Result<()> {
    print!("{}", target.client()?.text("/api/report")?);
    Ok(())
}

/// Prints `/api/snapshot` (checked to be JSON) or `/metrics`.
pub fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let client = args.target.client()?;
    match args.format {
        Format::Json => {
            let value: serde_json::Value = client.json("/api/snapshot")?;
            println!("{value}");
        }
        Format::Prometheus => print!("{}", client.text("/metrics")?),
    }
    Ok(())
}
