//! `monitor-host`: load the plugins a TOML config names and run the monitoring loop.

mod cli;
mod command;
mod logging;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use logging::LogFormat;
use monitor_host::ConfigErrors;

/// How the process ends. Keep [`AFTER_HELP`] in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    /// Everything asked for was done.
    Success,
    /// The host failed while running, e.g. the HTTP address is taken or the store in `data_dir`
    /// cannot be opened.
    RuntimeError,
    /// The config is invalid, a plugin cannot be loaded or configured, or the arguments are bad.
    InvalidConfig,
    /// `status`: alerts fire or the host says it is unhealthy.
    Attention,
    /// A command for a running host or application got no answer.
    Unreachable,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(match exit {
            Exit::Success => 0,
            Exit::RuntimeError | Exit::Attention => 1,
            Exit::InvalidConfig | Exit::Unreachable => 2,
        })
    }
}

const AFTER_HELP: &str = "\
Examples:
  monitor-host check   --config examples/monitor.toml   # validate; exit 2 with file:line:col errors
  monitor-host plugins --config examples/monitor.toml   # what loaded from which library
  monitor-host run     --config examples/monitor.toml --once
  monitor-host run     --config examples/monitor.toml --once --dry-run  # look, notify and heal nothing
  monitor-host run     --config examples/monitor.toml   # until Ctrl-C or SIGTERM
  RUST_LOG=warn monitor-host run --config monitor.toml --log-format json

Asking a running host (--url http://127.0.0.1:9464, or --config FILE for its listen address):
  monitor-host status --url http://127.0.0.1:9464      # exit 1 when alerts fire, 2 when unreachable
  monitor-host alerts --config monitor.toml --output json
  monitor-host query 'system_cpu_usage > 50' --url http://127.0.0.1:9464
  monitor-host query-range 'system_load_1' --start -1h --step 1m --url http://127.0.0.1:9464
  monitor-host export --format prometheus --url http://127.0.0.1:9464
  monitor-host top --url http://127.0.0.1:9464          # live; tab, arrows, q to quit
  monitor-host app report --url http://127.0.0.1:9465   # an instrumented application (or --file perf.json)

Paths in the config are relative to the config file. String values may use ${VAR} or
${VAR:-default} from the environment; $${ is a literal ${.

Logs go to stderr: RUST_LOG-style directives (default info), or --log-level, which wins.
SIGINT and SIGTERM finish the cycle and stop; SIGHUP (or POST /-/reload) reloads the config.

Exit codes:
  0  ok
  1  runtime error (e.g. the HTTP address is taken, the store cannot be opened)
  2  invalid config, a plugin that cannot be loaded or configured, or bad arguments
  status: 1 when alerts fire or the host is unhealthy; every command asking a host or an
  application: 2 when it cannot be reached, 1 when its answer is not the one expected";

/// Performance monitor host: loads collector, healing-strategy and notifier plugins (dynamic
/// libraries) named in a TOML config, collects metrics on an interval, evaluates alert rules,
/// notifies, runs healing strategies, and serves /metrics, /api/snapshot and /healthz over HTTP.
#[derive(Debug, Parser)]
#[command(name = "monitor-host", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines on stderr are written.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// What to log: a level (off, error, warn, info, debug, trace) or RUST_LOG-style directives
    /// such as `warn,monitor_host=debug`. Overrides RUST_LOG; the default is `info`.
    #[arg(long, global = true, value_name = "FILTER")]
    log_level: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the monitoring loop until SIGINT or SIGTERM (finishes the cycle, shuts plugins down).
    Run(RunArgs),
    /// Parse and validate the config, load every plugin and configure it, then exit.
    Check(ConfigArg),
    /// List the plugin instances the config loads: kind, name, version, ABI, library.
    Plugins(ConfigArg),
    #[command(flatten)]
    Host(cli::HostCommand),
    /// Runs one plugin instance in this process for a host that isolates it
    /// (`isolation = "process"`), speaking over stdin and stdout; started by the host itself.
    #[command(hide = true)]
    PluginRunner(RunnerArgs),
}

/// What the host tells a plugin process.
#[derive(Debug, Args)]
struct RunnerArgs {
    /// The plugin library.
    #[arg(long, value_name = "FILE")]
    library: PathBuf,
    /// collector, strategy or notifier.
    #[arg(long, value_parser = ["collector", "strategy", "notifier"])]
    kind: String,
    /// The plugin's name in its library.
    #[arg(long)]
    plugin: String,
    /// Cap on a payload, in bytes.
    #[arg(long)]
    max_payload: usize,
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// The TOML config file.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
}

/// What `run` is told.
#[derive(Debug, Args)]
struct RunArgs {
    /// The TOML config file.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// Run one cycle, print the report and exit.
    #[arg(long)]
    once: bool,
    /// With --once: collect and evaluate, and report what would be notified and healed, without
    /// calling any notifier or strategy or writing history.
    #[arg(long, requires = "once")]
    dry_run: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` come here too, printed to stdout.
            let _ = e.print();
            let exit = if e.use_stderr() {
                Exit::InvalidConfig
            } else {
                Exit::Success
            };
            return exit.into();
        }
    };
    let format = cli.log_format;
    match run(cli) {
        Ok(exit) => exit.into(),
        Err(e) => {
            logging::report(format, &e);
            exit_for(&e).into()
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Exit> {
    logging::init(cli.log_format, cli.log_level.as_deref())?;
    match cli.command {
        Command::Check(c) => command::check(&c.config),
        Command::Plugins(c) => command::plugins(&c.config),
        Command::Run(args) if args.once => command::run_once(&args),
        Command::Run(args) => command::run(&args),
        Command::PluginRunner(args) => command::plugin_runner(args),
        Command::Host(c) => {
            return cli::run(c).map(|outcome| match outcome {
                cli::Outcome::Done => Exit::Success,
                cli::Outcome::Attention => Exit::Attention,
            });
        }
    }
    .map(|()| Exit::Success)
}

fn exit_for(error: &anyhow::Error) -> Exit {
    if error.is::<cli::Unreachable>() {
        Exit::Unreachable
    } else if error.is::<ConfigErrors>() || error.is::<logging::FilterError>() {
        Exit::InvalidConfig
    } else {
        Exit::RuntimeError
    }
}
