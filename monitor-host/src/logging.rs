//! The binary's log: `tracing` events to stderr, as text or JSON lines, filtered by `RUST_LOG`-style
//! directives.

use std::io::IsTerminal as _;

use tracing::Level;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `fields` (with `message`), `target`.
    Json,
}

/// The filter used when neither `--log-level` nor `RUST_LOG` says anything.
pub const DEFAULT_FILTER: &str = "info";

/// A log filter that cannot be parsed.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid log filter `{filter}` (from {origin}): {reason}; write a level (off, error, warn, \
     info, debug, trace) or directives such as `warn,monitor_host=debug`"
)]
pub struct FilterError {
    filter: String,
    origin: &'static str,
    reason: String,
}

/// Installs the process's subscriber. `level` (from `--log-level`) wins over `RUST_LOG`, which
/// wins over [`DEFAULT_FILTER`].
///
/// # Errors
///
/// The filter that applies cannot be parsed.
pub fn init(format: LogFormat, level: Option<&str>) -> Result<(), FilterError> {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let (filter, origin) = match (level, from_env) {
        (Some(level), _) => (level.to_owned(), "--log-level"),
        (None, Some(env)) => (env, "RUST_LOG"),
        (None, None) => (DEFAULT_FILTER.to_owned(), "the default"),
    };
    let env_filter = EnvFilter::builder()
        .parse(&filter)
        .map_err(|e| FilterError {
            filter: filter.clone(),
            origin,
            reason: e.to_string(),
        })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    // Another subscriber can only be set already in tests; keeping it is harmless.
    let _ = match format {
        LogFormat::Text => builder.with_ansi(colour()).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
    Ok(())
}

/// Prints the error that ends the process, once, with its whole chain: a JSON log line in JSON
/// mode (so every stderr line parses), plain text otherwise, and when the filter hides errors.
pub fn report(format: LogFormat, error: &anyhow::Error) {
    if format == LogFormat::Json && tracing::enabled!(target: "monitor_host", Level::ERROR) {
        tracing::error!(target: "monitor_host", "{error:#}");
    } else if error.is::<monitor_host::ConfigErrors>() {
        // Already one `file:line:col: ...` line per problem, like a compiler's.
        eprintln!("{error:#}");
    } else {
        eprintln!("monitor-host: {error:#}");
    }
}

/// Colour only for a person at a terminal who has not asked for none (<https://no-color.org>).
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
