//! The TOML config: `RawConfig` mirrors the file, [`Config`] is the checked, resolved form.
//!
//! Every problem is reported with the file, line and column of the offending key or value, as
//! `monitor.toml:12:5: ...`, sorted by position. TOML syntax errors are reported alone (all of
//! them), since what follows a broken line cannot be trusted. Otherwise everything else comes at
//! once: every unknown key, wrong type and missing key of every table; every `${VAR}` that cannot
//! be expanded; and the values (durations, severities, conditions, addresses), duplicate names and
//! unknown alert names of every table that can be read. A table whose `name` or a required key is
//! missing or unreadable is left out of the value checks, so it causes no second error. Missing
//! libraries, ABI mismatches and plugin `configure` errors follow at load time
//! ([`Engine::load`](crate::Engine::load)), all at once, once the config has no errors.
//!
//! String values may read the environment: `${VAR}`, or `${VAR:-default}` when `VAR` is unset or
//! empty; `$${` writes a literal `${`. Relative paths resolve against the config file's directory
//! and come out absolute.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use monitor_plugin::Severity;
use monitor_plugin::abi::PluginKind;
use serde::Deserialize;
use toml::Spanned;

mod env;
#[cfg(test)]
mod fuzz;
mod incident;
mod learn;
mod silence;

/// Default host interval when `[host] interval` is absent.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// Port of the default `listen` address (on loopback).
pub const DEFAULT_PORT: u16 = 9464;
/// Default per-call timeout of a plugin instance.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default cap on one payload returned by a plugin, in bytes: room for a scrape of 100,000
/// series (about 10 MB of collection JSON) several times over.
pub const DEFAULT_MAX_PAYLOAD: usize = 64 * 1024 * 1024;
/// Default `[host] max_series`: most series held in memory from all collectors together,
/// room for a few scrapes of 100,000 series.
pub const DEFAULT_MAX_SERIES: usize = 250_000;
/// Default `retention`: how long every point is stored.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// Longest time points are kept in memory for alert evaluation, whatever `retention` (the store
/// keeps them for `retention`).
pub const MEMORY_RETENTION: Duration = Duration::from_secs(3600);
/// Default `rollup_retention`: how long per-minute and per-hour rollups are stored.
pub const DEFAULT_ROLLUP_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default `[host] resend_delay`: how often a firing alert is sent again to a notifier that
/// delivers to an Alertmanager (`alertmanager = true`), as Prometheus's `--rules.alert.resend-delay`.
pub const DEFAULT_RESEND_DELAY: Duration = Duration::from_secs(60);
/// Default `[host] repeat_interval`: how often a firing alert is sent again to any other notifier,
/// as Alertmanager's `repeat_interval`.
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);
/// Default `max_future_skew`: how far ahead of the host's clock a sample's timestamp may be.
pub const DEFAULT_MAX_FUTURE_SKEW: Duration = Duration::from_secs(300);
/// Default `data_dir`, beside the config file.
pub const DEFAULT_DATA_DIR: &str = "monitor-data";
/// Default samples a `[[remote_write]]` queue holds before dropping the oldest.
pub const DEFAULT_QUEUE_CAPACITY: usize = 100_000;
/// Default most samples in one remote-write request.
pub const DEFAULT_MAX_SAMPLES_PER_SEND: usize = 2000;

/// A position in a config file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// The file as the user named it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One problem in a config, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where.
    pub location: Location,
    /// What, lowercase, saying what to do.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Every problem found in a config; never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

// ---- raw layer: mirrors the file ----

// The top level is read table by table (see `Ctx::parse`) so that a wrong type in one table does not
// hide the problems of the others.
#[derive(Debug, Default)]
struct RawConfig {
    host: Option<RawHost>,
    // Every `[[alert]]`'s `name`, also of alerts that cannot be read.
    alert_names: HashSet<String>,
    collector: Vec<Spanned<RawCollector>>,
    alert: Vec<Spanned<RawAlert>>,
    notifier: Vec<Spanned<RawNotifier>>,
    strategy: Vec<Spanned<RawStrategy>>,
    remote_write: Vec<Spanned<RawRemoteWrite>>,
    silence: Vec<Spanned<silence::RawSilence>>,
    inhibit: Vec<Spanned<silence::RawInhibit>>,
    patterns: Option<learn::RawPatterns>,
    watch: Vec<Spanned<learn::RawWatch>>,
    healing: Option<RawHealing>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealing {
    failure_type_labels: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
    listen: Option<Spanned<String>>,
    data_dir: Option<Spanned<String>>,
    retention: Option<Spanned<String>>,
    rollup_retention: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    max_payload_bytes: Option<Spanned<u64>>,
    resend_delay: Option<Spanned<String>>,
    repeat_interval: Option<Spanned<String>>,
    max_future_skew: Option<Spanned<String>>,
    rule_files: Option<Vec<Spanned<String>>>,
    max_series: Option<Spanned<u64>>,
    reopen_within: Option<Spanned<String>>,
    http_auth: Option<Spanned<RawHttpAuth>>,
    tls_cert_file: Option<Spanned<String>>,
    tls_key_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpAuth {
    bearer_token_file: Option<Spanned<String>>,
    basic_auth_users: Option<BTreeMap<String, Spanned<String>>>,
}

struct RawPlugin {
    plugin: Spanned<String>,
    library: Spanned<String>,
    name: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    isolation: Option<Spanned<String>>,
    config: Option<Spanned<toml::Table>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCollector {
    plugin: Spanned<String>,
    library: Spanned<String>,
    name: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    isolation: Option<Spanned<String>>,
    config: Option<Spanned<toml::Table>>,
    interval: Option<Spanned<String>>,
    max_series: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotifier {
    plugin: Spanned<String>,
    library: Spanned<String>,
    name: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    isolation: Option<Spanned<String>>,
    config: Option<Spanned<toml::Table>>,
    min_severity: Option<Spanned<String>>,
    alertmanager: Option<bool>,
    resend_every: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStrategy {
    plugin: Spanned<String>,
    library: Spanned<String>,
    name: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    isolation: Option<Spanned<String>>,
    config: Option<Spanned<toml::Table>>,
    on: Spanned<Vec<Spanned<String>>>,
    max_attempts: Option<Spanned<i64>>,
    within: Option<Spanned<String>>,
    cooldown: Option<Spanned<String>>,
    verify_within: Option<Spanned<String>>,
}

// `serde(flatten)` would lose the spans, so each kind spells out the common keys and converts.
macro_rules! common_of {
    ($raw:expr) => {
        RawPlugin {
            plugin: $raw.plugin,
            library: $raw.library,
            name: $raw.name,
            timeout: $raw.timeout,
            isolation: $raw.isolation,
            config: $raw.config,
        }
    };
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlert {
    name: Spanned<String>,
    // The simple form: `metric`, `condition` and `threshold`; or the expression form: `expr`.
    metric: Option<Spanned<String>>,
    condition: Option<Spanned<String>>,
    threshold: Option<Spanned<f64>>,
    // With `condition = "anomaly"`, `"forecast_above"` or `"forecast_below"`.
    window: Option<Spanned<String>>,
    horizon: Option<Spanned<String>>,
    season: Option<Spanned<String>>,
    expr: Option<Spanned<String>>,
    #[serde(rename = "for")]
    for_: Option<Spanned<String>>,
    keep_firing_for: Option<Spanned<String>>,
    severity: Option<Spanned<String>>,
    description: Option<Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    annotations: BTreeMap<String, Spanned<String>>,
    escalate_after: Option<Spanned<String>>,
    escalate_to: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRemoteWrite {
    url: Spanned<String>,
    name: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    queue_capacity: Option<Spanned<i64>>,
    max_samples_per_send: Option<Spanned<i64>>,
    batch_send_deadline: Option<Spanned<String>>,
    min_backoff: Option<Spanned<String>>,
    max_backoff: Option<Spanned<String>>,
    #[serde(default)]
    headers: BTreeMap<String, Spanned<String>>,
    labels: Option<BTreeMap<String, Spanned<String>>>,
}

// ---- resolved layer ----

/// `[host]`.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Name put on notifications (`host` label); the machine's host name by default.
    pub name: String,
    /// Base cycle interval.
    pub interval: Duration,
    /// Where `run` serves HTTP: `127.0.0.1:9464` when `listen` is absent, `None` for `"off"`.
    pub listen: Option<SocketAddr>,
    /// Where the store is, resolved against the config's directory: `monitor-data` beside the
    /// config file by default.
    pub data_dir: PathBuf,
    /// How long every point is stored; see [`memory_retention`](Self::memory_retention) for
    /// memory.
    pub retention: Duration,
    /// How long per-minute and per-hour rollups, alert history, healing attempts and events are
    /// stored.
    pub rollup_retention: Duration,
    /// Default per-call timeout for plugins.
    pub timeout: Duration,
    /// Cap on a plugin's payload, in bytes.
    pub max_payload: usize,
    /// How often a firing alert is sent again to notifiers that deliver to an Alertmanager, by
    /// default; `None` for `"off"`.
    pub resend_delay: Option<Duration>,
    /// How often a firing alert is sent again to the other notifiers, by default; `None` for
    /// `"off"`.
    pub repeat_interval: Option<Duration>,
    /// How far ahead of the host's clock a sample's `timestamp_ms` may be: a sample further in the
    /// future is rejected (reason `future_timestamp`), since it would hide every later point of
    /// its series.
    pub max_future_skew: Duration,
    /// `rule_files`: globs of Prometheus rule files, as written (relative to the config's
    /// directory); the rules they hold are in [`Config::rules`].
    pub rule_files: Vec<String>,
    /// Most series held in memory from all collectors together; new series beyond it are
    /// refused (and counted), the series already held keep updating.
    pub max_series: usize,
    /// How soon after its resolution a re-firing alert instance reopens its incident
    /// (`reopen_within`, default [`REOPEN_WITHIN`](crate::incident::REOPEN_WITHIN)); later, a new
    /// incident opens.
    pub reopen_within: Duration,
    /// Credentials every HTTP request must carry (`http_auth`); `None`: none asked.
    pub http_auth: Option<crate::auth::HttpAuth>,
    /// HTTPS from `tls_cert_file` and `tls_key_file` (read and checked when the config loads);
    /// `None`: plain HTTP.
    pub tls: Option<std::sync::Arc<monitor_core::http::tls::ServerConfig>>,
}

impl HostConfig {
    /// How long points are kept in memory: `retention`, at most [`MEMORY_RETENTION`] (and at
    /// most [`MAX_POINTS_PER_SERIES`](crate::store::MAX_POINTS_PER_SERIES) per series).
    pub fn memory_retention(&self) -> Duration {
        self.retention.min(MEMORY_RETENTION)
    }
}

/// `2h`, `90m`, `45s`, `1500ms`: the largest unit that divides `d`.
fn short_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

/// Where a plugin instance runs (`isolation = "thread" | "process"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Isolation {
    /// On a worker thread of the host: cheapest, but a plugin that crashes (segfault, abort,
    /// `exit`) takes the host down with it.
    #[default]
    Thread,
    /// In a child process of its own: a crash fails only the call in flight, and a hung call is
    /// killed at its timeout.
    Process,
}

impl Isolation {
    /// The config's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Thread => "thread",
            Self::Process => "process",
        }
    }
}

/// What every plugin instance has.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    /// Collector, strategy or notifier.
    pub kind: PluginKind,
    /// Instance name: `name = "..."`, or the plugin name.
    pub name: String,
    /// `plugin = "..."`.
    pub plugin: String,
    /// `library = "..."`, resolved against the config's directory.
    pub library: PathBuf,
    /// `[...config]` as JSON, `{}` when absent.
    pub config: serde_json::Value,
    /// Per-call timeout.
    pub timeout: Duration,
    /// Where the instance runs: on a thread of the host, or in a child process.
    pub isolation: Isolation,
    /// Where the instance's table starts.
    pub at: Location,
    /// Where `plugin` is.
    pub plugin_at: Location,
    /// Where `library` is.
    pub library_at: Location,
    /// Where `config` is (the table start when absent).
    pub config_at: Location,
}

/// `[[collector]]`.
#[derive(Debug, Clone)]
pub struct CollectorSpec {
    /// Common keys.
    pub plugin: PluginSpec,
    /// How often it runs.
    pub interval: Duration,
    /// Most series held in memory from this instance (`max_series`); `None`: only the host's
    /// limit applies.
    pub max_series: Option<usize>,
}

/// `[[notifier]]`.
#[derive(Debug, Clone)]
pub struct NotifierSpec {
    /// Common keys.
    pub plugin: PluginSpec,
    /// Least severity it is told about.
    pub min_severity: Severity,
    /// It delivers to an Alertmanager (`alertmanager = true`): its reminders default to
    /// `[host] resend_delay` instead of `repeat_interval`.
    pub alertmanager: bool,
    /// How often a firing alert is sent to it again while it fires; `None` for `"off"`.
    pub resend_every: Option<Duration>,
}

/// `[[strategy]]`.
#[derive(Debug, Clone)]
pub struct StrategySpec {
    /// Common keys.
    pub plugin: PluginSpec,
    /// Alert names that trigger it.
    pub on: Vec<String>,
    /// Attempts allowed within `within` before escalating.
    pub max_attempts: u32,
    /// The window attempts are counted in.
    pub within: Duration,
    /// Least time between two attempts on one alert (defaults to the host interval).
    pub cooldown: Duration,
    /// How long after an attempt that reported success its alert may take to resolve for the
    /// attempt to count as a success (verified); default 2 minutes.
    pub verify_within: Duration,
}

/// `[healing]`: how the healing analytics (`/api/healing`) groups attempts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealingSettings {
    /// The failure type of an attempt is its alert's name and the values of these labels of the
    /// alert instance (`high_latency{service="api"}`); empty (the default): the alert's name.
    pub failure_type_labels: Vec<String>,
}

/// An alert condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// value > threshold
    Above,
    /// value < threshold
    Below,
    /// value == threshold
    Equals,
    /// value != threshold
    NotEquals,
    /// `abs(anomaly_score(metric[window])) > threshold`: the latest sample's robust z-score in its
    /// window is beyond `threshold` (an extension, evaluated only as PromQL).
    Anomaly {
        /// The window the latest sample is judged against.
        window: Duration,
        /// With a season (`anomaly_score(metric[window], season)`), the latest sample is judged
        /// against a Holt-Winters model of the window with that cycle.
        season: Option<Duration>,
    },
    /// `forecast(metric[window], horizon) > threshold`: Holt's forecast crosses above the
    /// threshold within `horizon` (an extension, evaluated only as PromQL).
    ForecastAbove {
        /// The window the forecast learns from.
        window: Duration,
        /// How far ahead it looks.
        horizon: Duration,
    },
    /// `forecast(metric[window], horizon) < threshold` (an extension, evaluated only as PromQL).
    ForecastBelow {
        /// The window the forecast learns from.
        window: Duration,
        /// How far ahead it looks.
        horizon: Duration,
    },
}

/// The window of `condition = "anomaly"` and `"forecast_*"` when none is given.
pub const DEFAULT_ANALYTICS_WINDOW: Duration = Duration::from_secs(3600);
/// The horizon of `condition = "forecast_*"` when none is given.
pub const DEFAULT_FORECAST_HORIZON: Duration = Duration::from_secs(4 * 3600);
/// The z threshold of `condition = "anomaly"` when `threshold` is not given: the lowest at
/// which the seasonal form (`season`, window of four seasons) stays under one false alert per
/// 1,000 evaluations on the real seasonal series of `monitor-host/benches/data/` (0.50 and 0 per
/// 1,000, with a recall of 0.23 and 0.98 of 5-deviation spikes; `cargo run -p monitor-host
/// --example anomaly_fpr`).
pub const DEFAULT_ANOMALY_Z: f64 = 4.0;
/// The window of `condition = "anomaly"` with a `season`, in seasons: the seasonal model learns
/// from the first two and needs more than two.
pub const DEFAULT_SEASONAL_WINDOW_SEASONS: u32 = 4;

impl Condition {
    /// Whether `value` meets the condition against `threshold`; never for the analytics
    /// conditions, which need a window of samples and are evaluated as PromQL only.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        // NaN compares false with everything, `not_equals` included: a NaN sample never fires.
        if value.is_nan() || threshold.is_nan() {
            return false;
        }
        let equal = (value - threshold).abs() <= f64::EPSILON * threshold.abs().max(1.0);
        match self {
            Self::Above => value > threshold,
            Self::Below => value < threshold,
            Self::Equals => equal,
            Self::NotEquals => !equal,
            Self::Anomaly { .. } | Self::ForecastAbove { .. } | Self::ForecastBelow { .. } => false,
        }
    }

    /// Whether this is one of the analytics conditions (`anomaly`, `forecast_above`,
    /// `forecast_below`) rather than a comparison of the latest value.
    pub fn is_analytics(self) -> bool {
        !matches!(
            self,
            Self::Above | Self::Below | Self::Equals | Self::NotEquals
        )
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Above => "above",
            Self::Below => "below",
            Self::Equals => "equals",
            Self::NotEquals => "not_equals",
            Self::Anomaly { .. } => "anomaly",
            Self::ForecastAbove { .. } => "forecast_above",
            Self::ForecastBelow { .. } => "forecast_below",
        }
    }

    /// The condition spelled `s`, with the default window and horizon.
    fn parse(s: &str) -> Option<Self> {
        let (window, horizon) = (DEFAULT_ANALYTICS_WINDOW, DEFAULT_FORECAST_HORIZON);
        [
            Self::Above,
            Self::Below,
            Self::Equals,
            Self::NotEquals,
            Self::Anomaly {
                window,
                season: None,
            },
            Self::ForecastAbove { window, horizon },
            Self::ForecastBelow { window, horizon },
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// `[[alert]]`.
#[derive(Debug, Clone)]
pub struct AlertRule {
    /// Unique name.
    pub name: String,
    /// Metric name watched (every series of that name, filtered by `labels`).
    pub metric: String,
    /// Condition.
    pub condition: Condition,
    /// Threshold.
    pub threshold: f64,
    /// How long the condition must hold before firing.
    pub for_: Duration,
    /// Severity.
    pub severity: Severity,
    /// Human text.
    pub description: String,
    /// Only series carrying all these labels are watched.
    pub labels: BTreeMap<String, String>,
}

/// `[[remote_write]]`: a backend that receives every collected sample through the Prometheus
/// remote-write 1.0 protocol.
#[derive(Debug, Clone)]
pub struct RemoteWriteSpec {
    /// `name = "..."`, or the url: the `remote` label of the `monitor_remote_write_*` metrics.
    pub name: String,
    /// Where requests are POSTed (`http://` only).
    pub url: String,
    /// Limit on one request, connecting included.
    pub timeout: Duration,
    /// Samples waiting to be sent at most (besides those of the request being filled or sent);
    /// beyond, the oldest are dropped.
    pub queue_capacity: usize,
    /// Samples in one request at most.
    pub max_samples_per_send: usize,
    /// Longest wait for a request to fill before it is sent anyway.
    pub batch_send_deadline: Duration,
    /// First wait before a failed request is retried; it doubles on every retry.
    pub min_backoff: Duration,
    /// Longest wait between two retries.
    pub max_backoff: Duration,
    /// Extra request headers (a tenant id, an authorization).
    pub headers: BTreeMap<String, String>,
    /// Labels added to every series that lacks them; `host = <[host] name>` when `labels` is
    /// absent.
    pub labels: BTreeMap<String, String>,
    /// Where the table starts.
    pub at: Location,
}

/// A checked config with paths resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file name used in messages.
    pub source: String,
    /// `[host]`.
    pub host: HostConfig,
    /// `[[collector]]`s in file order.
    pub collectors: Vec<CollectorSpec>,
    /// `[[alert]]`s of the simple form (`metric`, `condition`, `threshold`).
    pub alerts: Vec<AlertRule>,
    /// Every `[[alert]]` (both forms) as a PromQL alerting rule, and the groups of the
    /// `rule_files`.
    pub rules: crate::rules::RuleSet,
    /// `[[notifier]]`s.
    pub notifiers: Vec<NotifierSpec>,
    /// `[[strategy]]`s.
    pub strategies: Vec<StrategySpec>,
    /// `[[remote_write]]`s.
    pub remote_write: Vec<RemoteWriteSpec>,
    /// `[[silence]]` maintenance windows.
    pub silences: Vec<crate::silence::MaintenanceWindow>,
    /// `[[inhibit]]` rules.
    pub inhibit: Vec<crate::silence::InhibitRule>,
    /// `[healing]`.
    pub healing: HealingSettings,
    /// Escalation by time of the `[[alert]]`s that set `escalate_after`, by alert name.
    pub escalations: BTreeMap<String, Escalation>,
    /// `[patterns]`.
    pub patterns: PatternsConfig,
    /// `[[watch]]`es.
    pub watches: Vec<WatchSpec>,
}

/// `escalate_after` and `escalate_to` of an `[[alert]]`: an incident of that alert still
/// unacknowledged and firing `after` its firing is notified once to the `to` notifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    /// How long after the firing.
    pub after: Duration,
    /// Notifier instance names.
    pub to: Vec<String>,
}

pub use self::learn::{DEFAULT_MIN_CONFIDENCE, PatternsConfig, WatchSpec};
pub use monitor_plugin::parse_duration;

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    base: &'a Path,
    env: env::Lookup<'a>,
    errors: Vec<ConfigError>,
    // Values whose `${...}` could not be expanded: their one error is the expansion's, so later
    // checks of the same value (an "invalid duration `${X}`") are not reported.
    unexpanded: Vec<Range<usize>>,
    // Keys of tables (by the table's span) dropped after a type error was reported on them.
    dropped: Vec<(Range<usize>, String)>,
}

impl Ctx<'_> {
    fn at(&self, span: Range<usize>) -> Location {
        let start = span.start.min(self.text.len());
        let before = &self.text[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = self.text[line_start..start].chars().count() + 1;
        Location {
            file: self.file.to_owned(),
            line,
            column,
        }
    }

    fn err(&mut self, span: Range<usize>, message: impl Into<String>) {
        if self.unexpanded.iter().any(|u| u.contains(&span.start)) {
            return;
        }
        let location = self.at(span);
        self.errors.push(ConfigError {
            location,
            message: message.into(),
        });
    }

    /// The errors in file order.
    fn into_errors(mut self) -> ConfigErrors {
        // The config's own errors first, by position; then those of rule files, which come
        // sorted file by file.
        let own = self.file;
        self.errors.sort_by_key(|e| {
            let other = e.location.file != own;
            (
                other,
                if other {
                    (0, 0)
                } else {
                    (e.location.line, e.location.column)
                },
            )
        });
        // The TOML parser may report one syntax error more than once (`x = [[`); the sort put
        // the copies among the errors of their position.
        let mut unique: Vec<ConfigError> = Vec::with_capacity(self.errors.len());
        for e in self.errors {
            let mut same_place = unique.iter().rev().take_while(|u| u.location == e.location);
            if !same_place.any(|u| u.message == e.message) {
                unique.push(e);
            }
        }
        ConfigErrors(unique)
    }

    /// Reads the document. Syntax errors stop here (`None`): what follows a broken line cannot be
    /// trusted. Otherwise every `${VAR}` is expanded and every table is read, each reporting all of
    /// its unknown keys and wrong types; the tables that could be read are returned for the value
    /// checks.
    fn parse(&mut self) -> Option<RawConfig> {
        let (root, syntax) = toml::de::DeTable::parse_recoverable(self.text);
        if !syntax.is_empty() {
            for e in syntax {
                self.err(e.span().unwrap_or(0..0), e.message().trim());
            }
            return None;
        }
        let mut root = root.into_inner();
        for (_, value) in root.iter_mut() {
            self.expand(value);
        }
        let mut raw = RawConfig::default();
        for (key, value) in root {
            match key.get_ref().as_ref() {
                "host" => raw.host = self.table(value, None),
                "collector" => raw.collector = self.tables("collector", value),
                "alert" => {
                    raw.alert_names = declared_names(value.get_ref());
                    raw.alert = self.tables("alert", value);
                }
                "notifier" => raw.notifier = self.tables("notifier", value),
                "strategy" => raw.strategy = self.tables("strategy", value),
                "remote_write" => raw.remote_write = self.tables("remote_write", value),
                "silence" => raw.silence = self.tables("silence", value),
                "inhibit" => raw.inhibit = self.tables("inhibit", value),
                "healing" => raw.healing = self.table(value, None),
                "patterns" => raw.patterns = self.table(value, None),
                "watch" => raw.watch = self.tables("watch", value),
                other => self.err(
                    key.span(),
                    format!(
                        "unknown field `{other}`, expected one of `host`, `collector`, `alert`, `notifier`, `strategy`, `remote_write`, `silence`, `inhibit`, `healing`, `patterns`, `watch`"
                    ),
                ),
            }
        }
        Some(raw)
    }

    /// Expands `${VAR}` in every string inside `value`.
    fn expand(&mut self, value: &mut Spanned<toml::de::DeValue<'_>>) {
        let span = value.span();
        match value.get_mut() {
            toml::de::DeValue::String(s) => match env::expand(s, self.env) {
                Ok(Cow::Borrowed(_)) => {}
                Ok(Cow::Owned(expanded)) => *s = Cow::Owned(expanded),
                Err(messages) => {
                    for m in messages {
                        self.err(span.clone(), m);
                    }
                    self.unexpanded.push(span);
                }
            },
            toml::de::DeValue::Array(items) => items.iter_mut().for_each(|v| self.expand(v)),
            toml::de::DeValue::Table(table) => {
                table.iter_mut().for_each(|(_, v)| self.expand(v));
            }
            _ => {}
        }
    }

    /// Reads one table, reporting every unknown key and wrong type in it: serde stops at the first,
    /// so the offending key is dropped and the rest read again. `None` when a required key is
    /// missing or wrong, or when the `identity` key is (guessing an instance's name would report
    /// duplicates that are not there).
    fn table<T: serde::de::DeserializeOwned>(
        &mut self,
        mut value: Spanned<toml::de::DeValue<'_>>,
        identity: Option<&str>,
    ) -> Option<T> {
        let span = value.span();
        let mut dropped: Vec<String> = Vec::new();
        loop {
            let e = match T::deserialize(toml::de::ValueDeserializer::from(value.clone())) {
                Ok(v) => {
                    return (!dropped.iter().any(|k| Some(k.as_str()) == identity)).then_some(v);
                }
                Err(e) => e,
            };
            let at = e.span().unwrap_or(span.clone());
            let message = e.message().trim();
            if dropped
                .iter()
                .any(|k| message.starts_with(&format!("missing field `{k}`")))
            {
                return None;
            }
            self.err(at.clone(), message);
            let toml::de::DeValue::Table(table) = value.get_mut() else {
                return None;
            };
            let culprit = table.iter().find_map(|(k, v)| {
                (k.span() == at || (v.span().start <= at.start && at.end <= v.span().end))
                    .then(|| k.get_ref().to_string())
            });
            let key = culprit?;
            table.remove(key.as_str());
            self.dropped.push((span.clone(), key.clone()));
            dropped.push(key);
        }
    }

    fn tables<T: serde::de::DeserializeOwned>(
        &mut self,
        key: &str,
        value: Spanned<toml::de::DeValue<'_>>,
    ) -> Vec<Spanned<T>> {
        let span = value.span();
        match value.into_inner() {
            toml::de::DeValue::Array(items) => items
                .into_iter()
                .filter_map(|item| {
                    let span = item.span();
                    self.table(item, Some("name"))
                        .map(|t| Spanned::new(span, t))
                })
                .collect(),
            _ => {
                self.err(
                    span,
                    format!("`{key}` must be an array of tables: write `[[{key}]]`"),
                );
                Vec::new()
            }
        }
    }

    fn duration(&mut self, key: &str, v: &Option<Spanned<String>>, default: Duration) -> Duration {
        match v {
            None => default,
            Some(s) => match parse_duration(s.get_ref()) {
                Ok(d) => d,
                Err(m) => {
                    self.err(s.span(), format!("`{key}`: {m}"));
                    default
                }
            },
        }
    }

    fn positive_duration(
        &mut self,
        key: &str,
        v: &Option<Spanned<String>>,
        default: Duration,
    ) -> Duration {
        let d = self.duration(key, v, default);
        if d.is_zero() {
            if let Some(s) = v {
                self.err(s.span(), format!("`{key}` must be greater than zero"));
            }
            return default;
        }
        d
    }

    /// A reminder interval: a duration, or `"off"` (or a zero duration) for none.
    fn reminder(
        &mut self,
        key: &str,
        v: &Option<Spanned<String>>,
        default: Option<Duration>,
    ) -> Option<Duration> {
        match v {
            None => default,
            Some(s) if s.get_ref().trim() == "off" || s.get_ref().trim() == "0" => None,
            Some(_) => {
                Some(self.duration(key, v, default.unwrap_or_default())).filter(|d| !d.is_zero())
            }
        }
    }

    fn isolation(&mut self, v: Option<&Spanned<String>>) -> Isolation {
        match v.map(|s| (s, s.get_ref().as_str())) {
            None => Isolation::Thread,
            Some((_, "thread")) => Isolation::Thread,
            Some((_, "process")) => Isolation::Process,
            Some((s, other)) => {
                self.err(
                    s.span(),
                    format!("`isolation`: unknown isolation `{other}`; use thread or process"),
                );
                Isolation::Thread
            }
        }
    }

    fn severity(&mut self, key: &str, v: &Option<Spanned<String>>, default: Severity) -> Severity {
        match v {
            None => default,
            Some(s) => Severity::parse(s.get_ref()).unwrap_or_else(|| {
                self.err(
                    s.span(),
                    format!(
                        "`{key}`: unknown severity `{}`; use info, warning, error or critical",
                        s.get_ref()
                    ),
                );
                default
            }),
        }
    }

    fn plugin(
        &mut self,
        kind: PluginKind,
        at: Range<usize>,
        raw: RawPlugin,
        host: &HostConfig,
    ) -> PluginSpec {
        let timeout = self.positive_duration("timeout", &raw.timeout, host.timeout);
        let isolation = self.isolation(raw.isolation.as_ref());
        let library = self.path(raw.library.get_ref());
        let config_at = raw
            .config
            .as_ref()
            .map_or_else(|| self.at(at.clone()), |c| self.at(c.span()));
        let config = match raw.config {
            None => serde_json::Value::Object(Default::default()),
            Some(t) => match serde_json::to_value(t.get_ref()) {
                Ok(v) => v,
                Err(e) => {
                    self.err(
                        t.span(),
                        format!("`config` cannot be handed to the plugin: {e}"),
                    );
                    serde_json::Value::Null
                }
            },
        };
        if raw.plugin.get_ref().is_empty() {
            self.err(raw.plugin.span(), "`plugin` must not be empty");
        }
        let name = raw
            .name
            .as_ref()
            .map_or_else(|| raw.plugin.get_ref().clone(), |n| n.get_ref().clone());
        PluginSpec {
            kind,
            name,
            plugin: raw.plugin.get_ref().clone(),
            library,
            config,
            timeout,
            isolation,
            at: self.at(at),
            plugin_at: self.at(raw.plugin.span()),
            library_at: self.at(raw.library.span()),
            config_at,
        }
    }
}

impl Config {
    /// Reads and checks a config file; relative paths resolve against its directory, and come out
    /// absolute.
    ///
    /// # Errors
    ///
    /// Every problem found, with locations; an unreadable file is reported at line 1.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                location: Location {
                    file: file.clone(),
                    line: 1,
                    column: 1,
                },
                message: format!("cannot read the config: {e}"),
            }])
        })?;
        // The parent of a bare `monitor.toml` is "", not ".".
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Self::from_str(&text, &file, base)
    }

    /// Checks a config given as text; `file` names it in messages, `base` resolves relative paths.
    /// `${VAR}` in string values reads the process environment (see the module docs).
    ///
    /// # Errors
    ///
    /// Every problem found, with locations.
    pub fn from_str(text: &str, file: &str, base: &Path) -> Result<Config, ConfigErrors> {
        Self::from_str_with_env(text, file, base, &|name| std::env::var(name))
    }

    fn from_str_with_env(
        text: &str,
        file: &str,
        base: &Path,
        env: env::Lookup<'_>,
    ) -> Result<Config, ConfigErrors> {
        let mut cx = Ctx {
            file,
            text,
            base,
            env,
            errors: Vec::new(),
            unexpanded: Vec::new(),
            dropped: Vec::new(),
        };
        let Some(raw) = cx.parse() else {
            return Err(cx.into_errors());
        };
        let config = Self::from_raw(&mut cx, raw);
        if cx.errors.is_empty() {
            Ok(config)
        } else {
            Err(cx.into_errors())
        }
    }

    fn from_raw(cx: &mut Ctx<'_>, raw: RawConfig) -> Config {
        let host = cx.host(&raw.host);
        let mut names = InstanceNames::default();
        let raw_escalations = incident::take_escalations(&raw.alert);
        let collectors = raw
            .collector
            .into_iter()
            .map(|c| cx.collector(c, &host, &mut names))
            .collect();
        let (alerts, config_rules) = cx.alerts(raw.alert);
        let before = cx.errors.len();
        let groups = cx.rule_files(&raw.host);
        // The names a strategy's `on` may use: the `[[alert]]`s and the rule files' alerting
        // rules. Unchecked when a rule file could not be read (its error is enough).
        let alert_names = (cx.errors.len() == before).then(|| {
            let mut names = raw.alert_names.clone();
            names.extend(
                groups
                    .iter()
                    .flat_map(|g| &g.rules)
                    .filter_map(|r| match r {
                        crate::rules::Rule::Alerting(a) => Some(a.name.clone()),
                        crate::rules::Rule::Recording(_) => None,
                    }),
            );
            names
        });
        let notifiers: Vec<NotifierSpec> = raw
            .notifier
            .into_iter()
            .map(|n| cx.notifier(n, &host, &mut names))
            .collect();
        let strategies = raw
            .strategy
            .into_iter()
            .map(|s| cx.strategy(s, &host, alert_names.as_ref(), &mut names))
            .collect();
        let remote_write = cx.remote_writes(raw.remote_write, &host);
        cx.check_lookback(&host, &config_rules, &groups);
        let silences = cx.silences(raw.silence);
        let inhibit = cx.inhibits(raw.inhibit);
        let healing = cx.healing(raw.healing);
        let escalations = cx.escalations(raw_escalations, &notifiers);
        let patterns = cx.patterns(raw.patterns);
        let watches = cx.watches(raw.watch, host.interval);
        Config {
            source: cx.file.to_owned(),
            host,
            collectors,
            alerts,
            rules: crate::rules::RuleSet {
                alerts: config_rules,
                groups,
            },
            notifiers,
            strategies,
            remote_write,
            silences,
            inhibit,
            healing,
            escalations,
            patterns,
            watches,
        }
    }

    /// Every plugin instance, collectors first.
    pub fn plugins(&self) -> impl Iterator<Item = &PluginSpec> {
        self.collectors
            .iter()
            .map(|c| &c.plugin)
            .chain(self.notifiers.iter().map(|n| &n.plugin))
            .chain(self.strategies.iter().map(|s| &s.plugin))
    }
}

/// The instance names taken so far, per kind.
#[derive(Default)]
struct InstanceNames(HashSet<(PluginKind, String)>);

impl InstanceNames {
    fn claim(&mut self, cx: &mut Ctx<'_>, spec: &PluginSpec, span: Range<usize>) {
        if !self.0.insert((spec.kind, spec.name.clone())) {
            cx.err(
                span,
                format!(
                    "duplicate {} name `{}`; give each instance of a plugin its own `name = \"...\"`",
                    spec.kind.as_str(),
                    spec.name
                ),
            );
        }
    }
}

/// The `name`s of an array of tables, including tables that cannot be read otherwise, so a
/// reference to them is not reported as dangling.
fn declared_names(value: &toml::de::DeValue<'_>) -> HashSet<String> {
    let toml::de::DeValue::Array(items) = value else {
        return HashSet::new();
    };
    items
        .iter()
        .filter_map(|item| item.get_ref().as_table()?.get("name")?.get_ref().as_str())
        .map(str::to_owned)
        .collect()
}

// The resolved layer, one table kind at a time.
impl Ctx<'_> {
    /// A path from the config, against the config's directory, made absolute: a bare `libx.so`
    /// would make the dynamic loader search the system paths instead.
    fn path(&self, value: &str) -> PathBuf {
        let joined = self.base.join(value);
        std::path::absolute(&joined).unwrap_or(joined)
    }

    fn host(&mut self, h: &Option<RawHost>) -> HostConfig {
        let h = h.as_ref().unwrap_or(&RawHost {
            name: None,
            interval: None,
            listen: None,
            data_dir: None,
            retention: None,
            rollup_retention: None,
            timeout: None,
            max_payload_bytes: None,
            resend_delay: None,
            repeat_interval: None,
            max_future_skew: None,
            rule_files: None,
            max_series: None,
            reopen_within: None,
            http_auth: None,
            tls_cert_file: None,
            tls_key_file: None,
        });
        let listen = match &h.listen {
            None => Some(SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT))),
            Some(l) if l.get_ref() == "off" => None,
            Some(l) => match l.get_ref().parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    self.err(
                        l.span(),
                        format!(
                            "`listen`: `{}` is not an address like \"127.0.0.1:9464\" (or \"off\")",
                            l.get_ref()
                        ),
                    );
                    None
                }
            },
        };
        let max_payload = match &h.max_payload_bytes {
            None => DEFAULT_MAX_PAYLOAD,
            Some(v) if *v.get_ref() == 0 => {
                self.err(v.span(), "`max_payload_bytes` must be greater than zero");
                DEFAULT_MAX_PAYLOAD
            }
            Some(v) => usize::try_from(*v.get_ref()).unwrap_or(usize::MAX),
        };
        HostConfig {
            name: (h.name.as_ref()).map_or_else(default_host_name, |n| n.get_ref().clone()),
            interval: self.positive_duration("interval", &h.interval, DEFAULT_INTERVAL),
            listen,
            data_dir: self.path(
                h.data_dir
                    .as_ref()
                    .map_or(DEFAULT_DATA_DIR, |d| d.get_ref()),
            ),
            retention: self.positive_duration("retention", &h.retention, DEFAULT_RETENTION),
            rollup_retention: self.positive_duration(
                "rollup_retention",
                &h.rollup_retention,
                DEFAULT_ROLLUP_RETENTION,
            ),
            timeout: self.positive_duration("timeout", &h.timeout, DEFAULT_TIMEOUT),
            max_payload,
            resend_delay: self.reminder(
                "resend_delay",
                &h.resend_delay,
                Some(DEFAULT_RESEND_DELAY),
            ),
            repeat_interval: self.reminder(
                "repeat_interval",
                &h.repeat_interval,
                Some(DEFAULT_REPEAT_INTERVAL),
            ),
            max_future_skew: self.duration(
                "max_future_skew",
                &h.max_future_skew,
                DEFAULT_MAX_FUTURE_SKEW,
            ),
            rule_files: (h.rule_files.iter().flatten())
                .map(|p| p.get_ref().clone())
                .collect(),
            max_series: self
                .max_series(h.max_series.as_ref())
                .unwrap_or(DEFAULT_MAX_SERIES),
            reopen_within: self.duration(
                "reopen_within",
                &h.reopen_within,
                crate::incident::REOPEN_WITHIN,
            ),
            http_auth: h.http_auth.as_ref().and_then(|a| self.http_auth(a)),
            tls: self.tls(h.tls_cert_file.as_ref(), h.tls_key_file.as_ref()),
        }
    }

    /// `http_auth`: the token file is read now, so a reload picks up a new token.
    fn http_auth(&mut self, raw: &Spanned<RawHttpAuth>) -> Option<crate::auth::HttpAuth> {
        let mut auth = crate::auth::HttpAuth::default();
        let a = raw.get_ref();
        if a.bearer_token_file.is_none()
            && a.basic_auth_users.as_ref().is_none_or(BTreeMap::is_empty)
        {
            self.err(
                raw.span(),
                "`http_auth` needs `bearer_token_file` or at least one `basic_auth_users` entry",
            );
            return None;
        }
        let mut ok = true;
        if let Some(file) = &a.bearer_token_file {
            let path = self.path(file.get_ref());
            match std::fs::read_to_string(&path) {
                Ok(t) if !t.trim().is_empty() => auth = auth.with_bearer_token(t.trim()),
                Ok(_) => {
                    self.err(
                        file.span(),
                        format!("`bearer_token_file`: {} is empty", path.display()),
                    );
                    ok = false;
                }
                Err(e) => {
                    self.err(
                        file.span(),
                        format!("`bearer_token_file`: cannot read {}: {e}", path.display()),
                    );
                    ok = false;
                }
            }
        }
        for (user, hash) in a.basic_auth_users.iter().flatten() {
            match auth.clone().with_basic_user(user, hash.get_ref()) {
                Ok(a) => auth = a,
                Err(e) => {
                    self.err(hash.span(), format!("`basic_auth_users.{user}`: {e}"));
                    ok = false;
                }
            }
        }
        ok.then_some(auth)
    }

    /// `tls_cert_file` and `tls_key_file`: both or neither; read and checked now.
    fn tls(
        &mut self,
        cert: Option<&Spanned<String>>,
        key: Option<&Spanned<String>>,
    ) -> Option<std::sync::Arc<monitor_core::http::tls::ServerConfig>> {
        use monitor_core::http::tls::{self, TlsError};
        let (cert, key) = match (cert, key) {
            (None, None) => return None,
            (Some(c), None) => {
                self.err(c.span(), "`tls_cert_file` needs `tls_key_file` beside it");
                return None;
            }
            (None, Some(k)) => {
                self.err(k.span(), "`tls_key_file` needs `tls_cert_file` beside it");
                return None;
            }
            (Some(c), Some(k)) => (c, k),
        };
        let (cert_path, key_path) = (self.path(cert.get_ref()), self.path(key.get_ref()));
        match tls::server_config(&cert_path, &key_path) {
            Ok(config) => Some(config),
            Err(e) => {
                let span = match e {
                    TlsError::Certificate(..) => cert.span(),
                    TlsError::Key(..) | TlsError::Config(_) => key.span(),
                };
                let key_name = if span == cert.span() {
                    "tls_cert_file"
                } else {
                    "tls_key_file"
                };
                self.err(span, format!("`{key_name}`: {e}"));
                None
            }
        }
    }

    fn collector(
        &mut self,
        c: Spanned<RawCollector>,
        host: &HostConfig,
        names: &mut InstanceNames,
    ) -> CollectorSpec {
        let span = c.span();
        let c = c.into_inner();
        let name_span = c.name.as_ref().map_or(c.plugin.span(), |n| n.span());
        let interval = self.positive_duration("interval", &c.interval, host.interval);
        let plugin = self.plugin(PluginKind::Collector, span, common_of!(c), host);
        names.claim(self, &plugin, name_span);
        let max_series = self.max_series(c.max_series.as_ref());
        CollectorSpec {
            plugin,
            interval,
            max_series,
        }
    }

    /// A `max_series` key: a positive number of series.
    fn max_series(&mut self, v: Option<&Spanned<u64>>) -> Option<usize> {
        let v = v?;
        if *v.get_ref() == 0 {
            self.err(v.span(), "`max_series` must be greater than zero");
            return None;
        }
        Some(usize::try_from(*v.get_ref()).unwrap_or(usize::MAX))
    }

    /// Every `[[alert]]`: the simple ones for the threshold engine, and all of them as PromQL
    /// alerting rules.
    fn alerts(
        &mut self,
        raw: Vec<Spanned<RawAlert>>,
    ) -> (Vec<AlertRule>, Vec<crate::rules::AlertingRule>) {
        let mut names: HashSet<String> = HashSet::new();
        let mut alerts = Vec::new();
        let mut rules = Vec::new();
        for a in raw {
            let span = a.span();
            let a = a.into_inner();
            if !names.insert(a.name.get_ref().clone()) {
                self.err(
                    a.name.span(),
                    format!("duplicate alert name `{}`", a.name.get_ref()),
                );
            }
            if let Some(expr) = &a.expr {
                for (key, present) in [
                    ("metric", a.metric.as_ref().map(Spanned::span)),
                    ("condition", a.condition.as_ref().map(Spanned::span)),
                    ("threshold", a.threshold.as_ref().map(Spanned::span)),
                    ("window", a.window.as_ref().map(Spanned::span)),
                    ("horizon", a.horizon.as_ref().map(Spanned::span)),
                    ("season", a.season.as_ref().map(Spanned::span)),
                ] {
                    if let Some(at) = present {
                        self.err(
                            at,
                            format!(
                                "`{key}` belongs to the simple form; with `expr`, write the condition in the expression"
                            ),
                        );
                    }
                }
                rules.extend(self.expr_alert(span, expr, &a));
            } else if let Some(simple) = self.simple_alert(span.clone(), &a) {
                rules.extend(self.simple_as_rule(span, &simple, &a));
                // The analytics conditions need a window of samples: PromQL only.
                if !simple.condition.is_analytics() {
                    alerts.push(simple);
                }
            }
        }
        (alerts, rules)
    }

    /// The simple form; `None` when a key is missing.
    fn simple_alert(&mut self, span: Range<usize>, a: &RawAlert) -> Option<AlertRule> {
        // A key of the wrong type was reported and dropped: it is not missing too.
        let reported = |key: &str| (self.dropped.iter()).any(|(at, k)| *at == span && k == key);
        let reported: Vec<bool> = ["metric", "condition", "threshold"]
            .into_iter()
            .map(reported)
            .collect();
        // `condition = "anomaly"` has a default z threshold.
        let anomaly = a
            .condition
            .as_ref()
            .is_some_and(|c| c.get_ref() == "anomaly");
        for ((key, present), reported) in [
            ("metric", a.metric.is_some()),
            ("condition", a.condition.is_some()),
            ("threshold", a.threshold.is_some() || anomaly),
        ]
        .into_iter()
        .zip(reported)
        {
            if !present && !reported {
                self.err(
                    span.clone(),
                    format!("missing field `{key}` (or write the rule as `expr = \"...\"`)"),
                );
            }
        }
        if let Some(k) = &a.keep_firing_for {
            self.err(
                k.span(),
                "`keep_firing_for` needs the expression form: write the rule as `expr = \"...\"`",
            );
        }
        if let Some((name, _)) = a.annotations.iter().next() {
            self.err(
                span.clone(),
                format!(
                    "`annotations.{name}`: annotations need the expression form; use `description`"
                ),
            );
        }
        let (Some(metric), Some(condition)) = (&a.metric, &a.condition) else {
            return None;
        };
        let threshold = match &a.threshold {
            Some(t) => *t.get_ref(),
            None if anomaly => DEFAULT_ANOMALY_Z,
            None => return None,
        };
        let condition_value = Condition::parse(condition.get_ref()).unwrap_or_else(|| {
            self.err(
                condition.span(),
                format!(
                    "`condition`: unknown condition `{}`; use above, below, equals, not_equals, \
                     anomaly, forecast_above or forecast_below",
                    condition.get_ref()
                ),
            );
            Condition::Above
        });
        if let Some(t) = &a.threshold {
            if !t.get_ref().is_finite() {
                self.err(t.span(), "`threshold` must be a finite number");
            } else if anomaly && *t.get_ref() <= 0.0 {
                self.err(
                    t.span(),
                    "`threshold`: with `condition = \"anomaly\"` it is a z-score, above 0",
                );
            }
        }
        let condition_value = self.analytics_condition(condition_value, a);
        Some(AlertRule {
            name: a.name.get_ref().clone(),
            metric: metric.get_ref().clone(),
            condition: condition_value,
            threshold,
            for_: self.duration("for", &a.for_, Duration::ZERO),
            severity: self.severity("severity", &a.severity, Severity::Warning),
            description: a
                .description
                .as_ref()
                .map(|d| d.get_ref().clone())
                .unwrap_or_default(),
            labels: (a.labels.iter())
                .map(|(k, v)| (k.clone(), v.get_ref().clone()))
                .collect(),
        })
    }

    /// `condition` with the alert's `window`, `horizon` and `season`, reporting each where the
    /// condition takes none (`window` goes with the anomaly and forecast conditions, `horizon`
    /// with the forecast ones, `season` with `anomaly`).
    fn analytics_condition(&mut self, condition: Condition, a: &RawAlert) -> Condition {
        const FORECASTS: &str = "forecast_above and forecast_below";
        let name = condition.as_str();
        let misplaced = |ctx: &mut Self, key: &str, v: &Option<Spanned<String>>, takes: &str| {
            if let Some(v) = v {
                ctx.err(
                    v.span(),
                    format!(
                        "`{key}` does not apply to `condition = \"{name}\"`; it goes with {takes}"
                    ),
                );
            }
        };
        let window =
            |ctx: &mut Self, default: Duration| ctx.positive_duration("window", &a.window, default);
        match condition {
            Condition::Anomaly { .. } => {
                misplaced(self, "horizon", &a.horizon, FORECASTS);
                let season = a
                    .season
                    .as_ref()
                    .map(|_| self.positive_duration("season", &a.season, DEFAULT_ANALYTICS_WINDOW));
                let Some(season) = season else {
                    return Condition::Anomaly {
                        window: window(self, DEFAULT_ANALYTICS_WINDOW),
                        season: None,
                    };
                };
                let window = window(self, season.saturating_mul(DEFAULT_SEASONAL_WINDOW_SEASONS));
                if window <= season.saturating_mul(2) {
                    let at = a.window.as_ref().map_or(0..0, Spanned::span);
                    self.err(
                        at,
                        "`window` must be longer than two seasons: the seasonal model learns \
                         from two cycles before it judges (four seasons by default)",
                    );
                }
                Condition::Anomaly {
                    window,
                    season: Some(season),
                }
            }
            Condition::ForecastAbove { .. } | Condition::ForecastBelow { .. } => {
                misplaced(self, "season", &a.season, "anomaly");
                let window = window(self, DEFAULT_ANALYTICS_WINDOW);
                let horizon =
                    self.positive_duration("horizon", &a.horizon, DEFAULT_FORECAST_HORIZON);
                if matches!(condition, Condition::ForecastAbove { .. }) {
                    Condition::ForecastAbove { window, horizon }
                } else {
                    Condition::ForecastBelow { window, horizon }
                }
            }
            _ => {
                let takes = "anomaly, forecast_above and forecast_below";
                misplaced(self, "window", &a.window, takes);
                misplaced(self, "horizon", &a.horizon, FORECASTS);
                misplaced(self, "season", &a.season, "anomaly");
                condition
            }
        }
    }

    /// A simple `[[alert]]` as the PromQL rule it is equivalent to: its `severity` becomes the
    /// `severity` label and its `description` the `description` annotation.
    fn simple_as_rule(
        &mut self,
        span: Range<usize>,
        simple: &AlertRule,
        a: &RawAlert,
    ) -> Option<crate::rules::AlertingRule> {
        use crate::rules::{ExprUse, Template, check_expr, simple_expr};
        let at = self.at(span);
        let text = simple_expr(simple);
        let expr = match check_expr(&text, at.clone(), ExprUse::Alerting) {
            Ok(e) => e,
            Err(m) => {
                let metric = a.metric.as_ref().map_or(0..0, Spanned::span);
                self.err(
                    metric,
                    format!("`metric`: the rule reads `{text}`, which {m}"),
                );
                return None;
            }
        };
        let severity = Template::literal(simple.severity.as_str());
        let mut annotations = BTreeMap::new();
        if !simple.description.is_empty() {
            annotations.insert(
                "description".to_owned(),
                Template::literal(&simple.description),
            );
        }
        Some(crate::rules::AlertingRule {
            name: simple.name.clone(),
            expr,
            for_: simple.for_,
            keep_firing_for: Duration::ZERO,
            labels: BTreeMap::from([("severity".to_owned(), severity)]),
            annotations,
            at,
        })
    }

    /// The expression form: `expr`, `for`, `keep_firing_for`, `labels` and `annotations` as in
    /// a rule file; `severity` and `description` as in the simple form, as the `severity` label
    /// and the `description` annotation.
    fn expr_alert(
        &mut self,
        span: Range<usize>,
        expr: &Spanned<String>,
        a: &RawAlert,
    ) -> Option<crate::rules::AlertingRule> {
        use crate::rules::{ExprUse, check_expr};
        let checked = check_expr(expr.get_ref(), self.at(expr.span()), ExprUse::Alerting)
            .map_err(|m| self.err(expr.span(), format!("`expr`: {m}")))
            .ok();
        let for_ = self.duration("for", &a.for_, Duration::ZERO);
        let keep_firing_for = self.duration("keep_firing_for", &a.keep_firing_for, Duration::ZERO);
        let severity = self.severity("severity", &a.severity, Severity::Warning);
        let mut labels = self.templates("labels", &a.labels, true);
        if let Some(s) = &a.severity
            && labels.contains_key("severity")
        {
            self.err(s.span(), "`severity` is also set in `labels`: keep one");
        }
        labels
            .entry("severity".to_owned())
            .or_insert_with(|| crate::rules::Template::literal(severity.as_str()));
        let mut annotations = self.templates("annotations", &a.annotations, false);
        if let Some(d) = &a.description {
            if annotations.contains_key("description") {
                self.err(
                    d.span(),
                    "`description` is also set in `annotations`: keep one",
                );
            }
            annotations
                .entry("description".to_owned())
                .or_insert_with(|| crate::rules::Template::literal(d.get_ref()));
        }
        Some(crate::rules::AlertingRule {
            name: a.name.get_ref().clone(),
            expr: checked?,
            for_,
            keep_firing_for,
            labels,
            annotations,
            at: self.at(span),
        })
    }

    /// `labels` or `annotations` of the expression form: valid names, checked templates.
    fn templates(
        &mut self,
        key: &str,
        values: &BTreeMap<String, Spanned<String>>,
        labels: bool,
    ) -> BTreeMap<String, crate::rules::Template> {
        let mut out = BTreeMap::new();
        for (name, value) in values {
            if !crate::rules::is_label_name(name) || (labels && name == "__name__") {
                self.err(
                    value.span(),
                    format!("`{key}`: `{name}` is not a valid name"),
                );
                continue;
            }
            match crate::rules::Template::parse(value.get_ref()) {
                Ok(t) => {
                    out.insert(name.clone(), t);
                }
                Err(e) => self.err(value.span(), format!("`{key}.{name}`: template: {e}")),
            }
        }
        out
    }

    /// Rules are evaluated over memory and, for those reading further back than memory holds,
    /// over the store's raw points too: a rule whose ranges, offsets and subqueries reach
    /// further back than `retention` (how long the store keeps raw points) is refused, at its
    /// expression. (Beyond `retention` the store holds rollups, not samples: evaluating there
    /// would not give Prometheus's answer.)
    fn check_lookback(
        &mut self,
        host: &HostConfig,
        alerts: &[crate::rules::AlertingRule],
        groups: &[crate::rules::RuleGroup],
    ) {
        let held = host.retention;
        let exprs = (alerts.iter().map(|a| (a.name.as_str(), &a.expr)))
            .chain((groups.iter()).flat_map(|g| g.rules.iter().map(|r| (r.name(), r.expr()))));
        let mut errors = Vec::new();
        for (name, e) in exprs {
            let needs = crate::rules::lookback(&e.parsed);
            if needs > held {
                errors.push(ConfigError {
                    location: e.at.clone(),
                    message: format!(
                        "rule \"{name}\": `{}` reads {} of history, more than the {} of raw points the store keeps (`retention`): raise `retention` or shorten its ranges, offsets or subqueries",
                        e.text,
                        short_duration(needs),
                        short_duration(held),
                    ),
                });
            }
        }
        self.errors.extend(errors);
    }

    fn rule_files(&mut self, host: &Option<RawHost>) -> Vec<crate::rules::RuleGroup> {
        let Some(patterns) = host.as_ref().and_then(|h| h.rule_files.as_ref()) else {
            return Vec::new();
        };
        let patterns: Vec<(String, Location)> = patterns
            .iter()
            .map(|p| (p.get_ref().clone(), self.at(p.span())))
            .collect();
        match crate::rules::load_rule_files(&patterns, self.base) {
            Ok(groups) => groups,
            Err(errors) => {
                self.errors.extend(errors);
                Vec::new()
            }
        }
    }

    fn notifier(
        &mut self,
        n: Spanned<RawNotifier>,
        host: &HostConfig,
        names: &mut InstanceNames,
    ) -> NotifierSpec {
        let span = n.span();
        let n = n.into_inner();
        let name_span = n.name.as_ref().map_or(n.plugin.span(), |x| x.span());
        let min_severity = self.severity("min_severity", &n.min_severity, Severity::Info);
        let alertmanager = n.alertmanager.unwrap_or(false);
        let default = if alertmanager {
            host.resend_delay
        } else {
            host.repeat_interval
        };
        let resend_every = self.reminder("resend_every", &n.resend_every, default);
        let plugin = self.plugin(PluginKind::Notifier, span, common_of!(n), host);
        names.claim(self, &plugin, name_span);
        NotifierSpec {
            plugin,
            min_severity,
            alertmanager,
            resend_every,
        }
    }

    fn strategy(
        &mut self,
        s: Spanned<RawStrategy>,
        host: &HostConfig,
        alert_names: Option<&HashSet<String>>,
        names: &mut InstanceNames,
    ) -> StrategySpec {
        let span = s.span();
        let s = s.into_inner();
        let name_span = s.name.as_ref().map_or(s.plugin.span(), |x| x.span());
        let strategy = (s.name.as_ref().or(Some(&s.plugin))).map(|n| n.get_ref().clone());
        for alert in s.on.get_ref() {
            if alert_names.is_some_and(|names| !names.contains(alert.get_ref())) {
                self.err(
                    alert.span(),
                    format!(
                        "`on`: strategy `{}` names alert `{}`, but no `[[alert]]` nor alerting \
                         rule of the `rule_files` is named so",
                        strategy.as_deref().unwrap_or_default(),
                        alert.get_ref()
                    ),
                );
            }
        }
        if s.on.get_ref().is_empty() {
            self.err(s.on.span(), "`on` must name at least one alert");
        }
        let max_attempts = match &s.max_attempts {
            None => 3,
            Some(v) => match u32::try_from(*v.get_ref()) {
                Ok(n) if n >= 1 => n,
                _ => {
                    self.err(
                        v.span(),
                        "`max_attempts` must be a whole number of at least 1",
                    );
                    3
                }
            },
        };
        let within = self.positive_duration("within", &s.within, Duration::from_secs(300));
        let cooldown = self.duration("cooldown", &s.cooldown, host.interval);
        let verify_within =
            self.positive_duration("verify_within", &s.verify_within, DEFAULT_VERIFY_WITHIN);
        let on =
            s.on.into_inner()
                .into_iter()
                .map(Spanned::into_inner)
                .collect();
        let plugin = self.plugin(PluginKind::Strategy, span, common_of!(s), host);
        names.claim(self, &plugin, name_span);
        StrategySpec {
            plugin,
            on,
            max_attempts,
            within,
            cooldown,
            verify_within,
        }
    }

    /// `[healing]`: every label name checked, each error at its position.
    fn healing(&mut self, raw: Option<RawHealing>) -> HealingSettings {
        let mut out = HealingSettings::default();
        for name in raw.and_then(|r| r.failure_type_labels).unwrap_or_default() {
            if !is_label_name(name.get_ref()) {
                self.err(
                    name.span(),
                    format!(
                        "`failure_type_labels`: `{}` is not a valid label name; use letters, digits and `_`, not starting with a digit or `__`",
                        name.get_ref()
                    ),
                );
            } else if out.failure_type_labels.contains(name.get_ref()) {
                self.err(
                    name.span(),
                    format!(
                        "`failure_type_labels`: `{}` is listed twice",
                        name.get_ref()
                    ),
                );
            } else {
                out.failure_type_labels.push(name.into_inner());
            }
        }
        out
    }
}

/// `[[strategy]] verify_within` when absent.
pub const DEFAULT_VERIFY_WITHIN: Duration = Duration::from_secs(120);

// `[[remote_write]]`.
impl Ctx<'_> {
    fn remote_writes(
        &mut self,
        raw: Vec<Spanned<RawRemoteWrite>>,
        host: &HostConfig,
    ) -> Vec<RemoteWriteSpec> {
        let mut out: Vec<RemoteWriteSpec> = Vec::new();
        for r in raw {
            let span = r.span();
            let r = r.into_inner();
            let name_span = r.name.as_ref().map_or(r.url.span(), |n| n.span());
            let spec = self.remote_write(span, r, host);
            if out.iter().any(|o| o.name == spec.name) {
                self.err(
                    name_span,
                    format!(
                        "duplicate remote_write name `{}`; give each its own `name = \"...\"`",
                        spec.name
                    ),
                );
            }
            out.push(spec);
        }
        out
    }

    fn remote_write(
        &mut self,
        span: Range<usize>,
        r: RawRemoteWrite,
        host: &HostConfig,
    ) -> RemoteWriteSpec {
        let url = r.url.get_ref().clone();
        if !url.starts_with("http://") || url.len() == "http://".len() {
            self.err(
                r.url.span(),
                format!(
                    "`url` must be an http:// address like \"http://127.0.0.1:9090/api/v1/write\", got `{url}`"
                ),
            );
        }
        let timeout = self.positive_duration("timeout", &r.timeout, Duration::from_secs(30));
        let queue_capacity =
            self.count("queue_capacity", &r.queue_capacity, DEFAULT_QUEUE_CAPACITY);
        let max_samples_per_send = self.count(
            "max_samples_per_send",
            &r.max_samples_per_send,
            DEFAULT_MAX_SAMPLES_PER_SEND,
        );
        let batch_send_deadline = self.positive_duration(
            "batch_send_deadline",
            &r.batch_send_deadline,
            Duration::from_secs(5),
        );
        let min_backoff =
            self.positive_duration("min_backoff", &r.min_backoff, Duration::from_millis(30));
        let max_backoff =
            self.positive_duration("max_backoff", &r.max_backoff, Duration::from_secs(5));
        if let Some(m) = &r.max_backoff
            && max_backoff < min_backoff
        {
            self.err(m.span(), "`max_backoff` must be at least `min_backoff`");
        }
        for (name, value) in &r.headers {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                self.err(
                    value.span(),
                    format!("`headers`: `{name}` is not a valid header name"),
                );
            }
            if value.get_ref().chars().any(char::is_control) {
                self.err(
                    value.span(),
                    format!("`headers`: the value of `{name}` must not contain control characters"),
                );
            }
        }
        let labels = match r.labels {
            None => BTreeMap::from([("host".to_owned(), host.name.clone())]),
            Some(labels) => {
                for (name, value) in &labels {
                    if !is_label_name(name) {
                        self.err(
                            value.span(),
                            format!(
                                "`labels`: `{name}` is not a valid label name; use letters, digits and `_`, not starting with a digit or `__`"
                            ),
                        );
                    }
                }
                labels
                    .into_iter()
                    .map(|(k, v)| (k, v.into_inner()))
                    .collect()
            }
        };
        RemoteWriteSpec {
            name: r.name.map_or_else(|| url.clone(), Spanned::into_inner),
            url,
            timeout,
            queue_capacity,
            max_samples_per_send,
            batch_send_deadline,
            min_backoff,
            max_backoff,
            headers: r
                .headers
                .into_iter()
                .map(|(k, v)| (k, v.into_inner()))
                .collect(),
            labels,
            at: self.at(span),
        }
    }

    /// A whole number of at least 1.
    fn count(&mut self, key: &str, v: &Option<Spanned<i64>>, default: usize) -> usize {
        match v {
            None => default,
            Some(n) => match usize::try_from(*n.get_ref()) {
                Ok(n) if n >= 1 => n,
                _ => {
                    self.err(
                        n.span(),
                        format!("`{key}` must be a whole number of at least 1"),
                    );
                    default
                }
            },
        }
    }
}

/// A Prometheus label name a user may set: `[a-zA-Z_][a-zA-Z0-9_]*`, without the `__` prefix
/// Prometheus reserves.
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

fn default_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match Config::from_str(text, "monitor.toml", Path::new("/etc/monitor")) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("ten seconds").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5 m").is_err());
    }

    #[test]
    fn a_full_config_resolves() {
        let c = Config::from_str(
            r#"
[host]
interval = "10s"
listen = "127.0.0.1:9464"

[[collector]]
plugin = "system"
library = "lib/libsystem.so"
interval = "5s"
[collector.config]
per_core = true

[[alert]]
name = "high_cpu"
metric = "system.cpu.usage"
condition = "above"
threshold = 80
for = "30s"
severity = "critical"

[[notifier]]
plugin = "log"
library = "lib/liblog.so"
min_severity = "warning"

[[strategy]]
plugin = "restart-command"
library = "lib/librestart.so"
on = ["high_cpu"]
max_attempts = 2
within = "5m"
"#,
            "monitor.toml",
            Path::new("/etc/monitor"),
        )
        .unwrap();
        assert_eq!(c.host.interval, Duration::from_secs(10));
        assert_eq!(c.collectors[0].interval, Duration::from_secs(5));
        assert_eq!(
            c.collectors[0].plugin.library,
            Path::new("/etc/monitor/lib/libsystem.so")
        );
        assert_eq!(
            c.collectors[0].plugin.config["per_core"],
            serde_json::json!(true)
        );
        assert_eq!(c.alerts[0].threshold, 80.0);
        assert_eq!(c.alerts[0].severity, Severity::Critical);
        assert_eq!(c.notifiers[0].min_severity, Severity::Warning);
        assert_eq!(c.strategies[0].max_attempts, 2);
        assert_eq!(c.collectors[0].plugin.library_at.line, 8);
    }

    #[test]
    fn unknown_key_is_located() {
        let e = errors("[host]\ninterval = \"10s\"\nintervall = \"5s\"\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("monitor.toml:3:1: unknown field `intervall`"),
            "{e:?}"
        );
    }

    #[test]
    fn unknown_key_in_a_plugin_table_is_located() {
        let e = errors("[[collector]]\nplugin = \"x\"\nlibrary = \"x.so\"\nintrval = \"5s\"\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("monitor.toml:4:1: unknown field `intrval`"),
            "{e:?}"
        );
    }

    #[test]
    fn healing_settings_resolve_and_their_errors_are_located() {
        let base = "[[alert]]\nname = \"a\"\nmetric = \"m\"\ncondition = \"above\"\nthreshold = 1\n\n[[strategy]]\nplugin = \"r\"\nlibrary = \"r.so\"\non = [\"a\"]\n";
        let c = Config::from_str(base, "monitor.toml", Path::new("/etc/monitor")).unwrap();
        assert_eq!(c.strategies[0].verify_within, DEFAULT_VERIFY_WITHIN);
        assert!(
            c.healing.failure_type_labels.is_empty(),
            "the alert name only"
        );
        let text = format!(
            "{base}verify_within = \"30s\"\n\n[healing]\nfailure_type_labels = [\"service\", \"zone\"]\n"
        );
        let c = Config::from_str(&text, "monitor.toml", Path::new("/etc/monitor")).unwrap();
        assert_eq!(c.strategies[0].verify_within, Duration::from_secs(30));
        assert_eq!(c.healing.failure_type_labels, ["service", "zone"]);

        let text = format!(
            "{base}verify_within = \"0s\"\n\n[healing]\nfailure_type_labels = [\"service\", \"9x\", \"service\"]\n"
        );
        let e = errors(&text);
        let expected = [
            "monitor.toml:11:17: `verify_within`",
            "monitor.toml:14:35: `failure_type_labels`: `9x` is not a valid label name",
            "monitor.toml:14:41: `failure_type_labels`: `service` is listed twice",
        ];
        assert_eq!(e.len(), expected.len(), "{e:#?}");
        for (got, want) in e.iter().zip(expected) {
            assert!(got.starts_with(want), "got {got:?}, want {want:?}");
        }
        let e = errors("[healing]\nfailure_types = []\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("monitor.toml:2:1: unknown field `failure_types`"),
            "{e:?}"
        );
        let e = errors("[healing]\nfailure_type_labels = \"service\"\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("monitor.toml:2:23: "), "{e:?}");
    }

    #[test]
    fn isolation_is_read_for_every_kind_and_a_bad_one_is_located() {
        let c = Config::from_str(
            "[[collector]]\nplugin = \"a\"\nlibrary = \"a.so\"\nisolation = \"process\"\n\n\
             [[collector]]\nplugin = \"b\"\nlibrary = \"b.so\"\n\n\
             [[notifier]]\nplugin = \"n\"\nlibrary = \"n.so\"\nisolation = \"thread\"\n\n\
             [[strategy]]\nplugin = \"s\"\nlibrary = \"s.so\"\non = [\"a\"]\nisolation = \"process\"\n\n\
             [[alert]]\nname = \"a\"\nmetric = \"m\"\ncondition = \"above\"\nthreshold = 1\n",
            "monitor.toml",
            Path::new("/etc/monitor"),
        )
        .unwrap();
        assert_eq!(c.collectors[0].plugin.isolation, Isolation::Process);
        assert_eq!(
            c.collectors[1].plugin.isolation,
            Isolation::Thread,
            "the default"
        );
        assert_eq!(c.notifiers[0].plugin.isolation, Isolation::Thread);
        assert_eq!(c.strategies[0].plugin.isolation, Isolation::Process);

        let e = errors(
            "[[collector]]\nplugin = \"x\"\nlibrary = \"x.so\"\nisolation = \"container\"\n",
        );
        assert_eq!(
            e,
            [
                "monitor.toml:4:13: `isolation`: unknown isolation `container`; use thread or process"
            ]
        );
    }

    #[test]
    fn wrong_type_is_located() {
        let e = errors(
            "[[alert]]\nname = \"a\"\nmetric = \"m\"\ncondition = \"above\"\nthreshold = \"high\"\n",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("monitor.toml:5:13: "), "{e:?}");
        assert!(e[0].contains("invalid type"), "{e:?}");
    }

    #[test]
    fn semantic_errors_are_all_reported_at_once() {
        let e = errors(
            r#"[host]
interval = "10 seconds"

[[alert]]
name = "a"
metric = "m"
condition = "over"
threshold = 1
severity = "urgent"

[[alert]]
name = "a"
metric = "m"
condition = "below"
threshold = 1
for = "soon"

[[notifier]]
plugin = "log"
library = "log.so"

[[notifier]]
plugin = "log"
library = "log.so"

[[strategy]]
plugin = "restart"
library = "r.so"
on = ["nope"]
max_attempts = 0
"#,
        );
        let expected = [
            "monitor.toml:2:12: `interval`: invalid duration `10 seconds`",
            "monitor.toml:7:13: `condition`: unknown condition `over`",
            "monitor.toml:9:12: `severity`: unknown severity `urgent`",
            "monitor.toml:12:8: duplicate alert name `a`",
            "monitor.toml:16:7: `for`: invalid duration `soon`",
            "monitor.toml:23:10: duplicate notifier name `log`",
            "monitor.toml:29:7: `on`: strategy `restart` names alert `nope`, but no `[[alert]]` nor alerting rule of the `rule_files` is named so",
            "monitor.toml:30:16: `max_attempts` must be a whole number of at least 1",
        ];
        assert_eq!(e.len(), expected.len(), "{e:#?}");
        for (got, want) in e.iter().zip(expected) {
            assert!(got.starts_with(want), "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn type_errors_in_different_tables_are_reported_together() {
        let e = errors(
            "[host]\ninterval = 10\n\n[[collector]]\nplugin = \"a\"\nlibrary = \"a.so\"\ntimeout = []\n\n[[collector]]\nplugin = \"b\"\nlibrary = \"b.so\"\ncolour = \"red\"\n\n[alerts]\n",
        );
        assert_eq!(e.len(), 4, "{e:#?}");
        assert!(
            e[0].starts_with("monitor.toml:2:12: invalid type: integer `10`, expected a string"),
            "{e:?}"
        );
        assert!(e[1].starts_with("monitor.toml:7:11: invalid type"), "{e:?}");
        assert!(
            e[2].starts_with("monitor.toml:12:1: unknown field `colour`"),
            "{e:?}"
        );
        assert!(
            e[3].starts_with("monitor.toml:14:2: unknown field `alerts`"),
            "{e:?}"
        );
    }

    #[test]
    fn a_single_table_where_an_array_is_expected() {
        let e = errors("[collector]\nplugin = \"a\"\nlibrary = \"a.so\"\n");
        assert!(
            e[0].contains("`collector` must be an array of tables: write `[[collector]]`"),
            "{e:?}"
        );
    }

    #[test]
    fn syntax_error_is_located() {
        let e = errors("[host\ninterval = 1\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("monitor.toml:1:"), "{e:?}");
    }

    #[test]
    fn a_syntax_error_is_reported_once() {
        assert_eq!(
            errors("x = [[\n"),
            ["monitor.toml:1:7: unclosed array, expected `]`"]
        );
        assert_eq!(
            errors("[[collector]]\nplugin = \"a\"\nlibrary = {lib}\n"),
            ["monitor.toml:3:15: invalid literal string, expected `'`"]
        );
    }

    #[test]
    fn listen_defaults_to_loopback_and_can_be_switched_off() {
        let base = Path::new(".");
        let c = Config::from_str("", "monitor.toml", base).unwrap();
        assert_eq!(c.host.listen, Some("127.0.0.1:9464".parse().unwrap()));
        let c = Config::from_str("[host]\nlisten = \"off\"\n", "monitor.toml", base).unwrap();
        assert_eq!(c.host.listen, None);
    }

    #[test]
    fn http_auth_and_tls_keys_are_checked_with_their_positions() {
        let e = errors(
            "[host]\nlisten = \"0.0.0.0:9464\"\ntls_cert_file = \"missing-cert.pem\"\n\
             tls_key_file = \"missing-key.pem\"\n\
             http_auth = { bearer_token_file = \"missing-token\", basic_auth_users = { ann = \"plain\" } }\n",
        );
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(
            e[0].starts_with("monitor.toml:3:17: `tls_cert_file`: certificate file /etc/monitor/missing-cert.pem: "),
            "{e:?}"
        );
        assert!(
            e[1].starts_with(
                "monitor.toml:5:35: `bearer_token_file`: cannot read /etc/monitor/missing-token"
            ),
            "{e:?}"
        );
        assert!(
            e[2].starts_with("monitor.toml:5:79: `basic_auth_users.ann`: expected \"sha256:"),
            "{e:?}"
        );
        let e = errors("[host]\ntls_key_file = \"k.pem\"\nhttp_auth = {}\n");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("monitor.toml:2:16: `tls_key_file` needs `tls_cert_file`"),
            "{e:?}"
        );
        assert!(
            e[1].starts_with("monitor.toml:3:13: `http_auth` needs"),
            "{e:?}"
        );
        let e = errors("[host]\nhttp_auth = { password = \"x\" }\n");
        assert!(e[0].contains("password"), "{e:?}");
    }

    #[test]
    fn http_auth_reads_the_token_file_beside_the_config() {
        let dir = std::env::temp_dir().join(format!("monitor-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "t0ken\n").unwrap();
        let text = "[host]\nhttp_auth = { bearer_token_file = \"token\", basic_auth_users = \
                    { ann = \"sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\" } }\n";
        let c = Config::from_str(text, "monitor.toml", &dir).unwrap();
        let expected = crate::auth::HttpAuth::default()
            .with_bearer_token("t0ken")
            .with_basic_user(
                "ann",
                "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b",
            )
            .unwrap();
        assert_eq!(c.host.http_auth, Some(expected));
        assert!(c.host.tls.is_none());
        std::fs::write(dir.join("token"), " \n").unwrap();
        let e = Config::from_str(text, "monitor.toml", &dir).unwrap_err();
        assert!(e.to_string().contains("`bearer_token_file`: "), "{e}");
        assert!(e.to_string().contains("is empty"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_listen_address() {
        let e = errors("[host]\nlisten = \"localhost\"\n");
        assert!(e[0].starts_with("monitor.toml:2:10: `listen`"), "{e:?}");
    }

    #[test]
    fn every_unknown_key_and_wrong_type_of_a_table_is_reported() {
        let e = errors(
            "[host]\nfoo = 1\ninterval = 5\nbar = 2\n\n[[collector]]\nplugin = \"a\"\nlibrary = \"a.so\"\ntimeout = 1\nintrval = \"5s\"\n",
        );
        let expected = [
            "monitor.toml:2:1: unknown field `foo`",
            "monitor.toml:3:12: invalid type: integer `5`, expected a string",
            "monitor.toml:4:1: unknown field `bar`",
            "monitor.toml:9:11: invalid type: integer `1`, expected a string",
            "monitor.toml:10:1: unknown field `intrval`",
        ];
        assert_eq!(e.len(), expected.len(), "{e:#?}");
        for (got, want) in e.iter().zip(expected) {
            assert!(got.starts_with(want), "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn value_errors_are_reported_with_the_key_errors_of_other_tables() {
        let e = errors(
            "[host]\nfoo = 1\n\n[[alert]]\nname = \"a\"\nmetric = \"m\"\ncondition = \"over\"\nthreshold = 1\n\n[[collector]]\nplugin = \"a\"\nlibrary = \"a.so\"\ncolour = \"red\"\ninterval = \"soon\"\n",
        );
        let expected = [
            "monitor.toml:2:1: unknown field `foo`",
            "monitor.toml:7:13: `condition`: unknown condition `over`",
            "monitor.toml:13:1: unknown field `colour`",
            "monitor.toml:14:12: `interval`: invalid duration `soon`",
        ];
        assert_eq!(e.len(), expected.len(), "{e:#?}");
        for (got, want) in e.iter().zip(expected) {
            assert!(got.starts_with(want), "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn a_missing_key_is_reported_beside_an_unknown_one() {
        let e = errors("[[collector]]\nplugin = \"a\"\nlibary = \"a.so\"\n");
        assert_eq!(e.len(), 2, "{e:#?}");
        assert!(
            e[0].starts_with("monitor.toml:1:1: missing field `library`"),
            "{e:?}"
        );
        assert!(
            e[1].starts_with("monitor.toml:3:1: unknown field `libary`"),
            "{e:?}"
        );
    }

    #[test]
    fn a_wrong_key_causes_no_second_error() {
        // The second collector's `name` is unreadable: no duplicate is guessed. The alert's
        // threshold is unreadable: the strategy's reference to it still counts.
        let e = errors(
            r#"[[collector]]
plugin = "a"
library = "a.so"

[[collector]]
plugin = "a"
name = 5
library = "a.so"

[[alert]]
name = "hot"
metric = "m"
condition = "above"
threshold = "high"

[[strategy]]
plugin = "s"
library = "s.so"
on = ["hot"]
max_attempts = [1]
"#,
        );
        let expected = [
            "monitor.toml:7:8: invalid type: integer `5`, expected a string",
            "monitor.toml:14:13: invalid type: string \"high\"",
            "monitor.toml:20:16: invalid type: sequence",
        ];
        assert_eq!(e.len(), expected.len(), "{e:#?}");
        for (got, want) in e.iter().zip(expected) {
            assert!(got.starts_with(want), "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn a_config_beside_the_working_directory_resolves_to_absolute_paths() {
        let c = Config::from_str(
            "[host]\ndata_dir = \"data\"\n\n[[collector]]\nplugin = \"x\"\nlibrary = \"libx.so\"\n",
            "c.toml",
            Path::new(""),
        )
        .unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(c.collectors[0].plugin.library, cwd.join("libx.so"));
        assert_eq!(c.host.data_dir, cwd.join("data"));
    }

    #[test]
    fn the_store_defaults_to_monitor_data_beside_the_config_with_24h_and_30d() {
        let c = Config::from_str(
            "[[collector]]\nplugin = \"x\"\nlibrary = \"libx.so\"\n",
            "c.toml",
            Path::new("/etc/monitor"),
        )
        .unwrap();
        assert_eq!(c.host.data_dir, Path::new("/etc/monitor/monitor-data"));
        assert_eq!(c.host.retention, Duration::from_secs(86_400));
        assert_eq!(c.host.rollup_retention, Duration::from_secs(30 * 86_400));
        assert_eq!(c.host.memory_retention(), Duration::from_secs(3600));
        let c = Config::from_str(
            "[host]\nretention = \"2h\"\nrollup_retention = \"7d\"\n",
            "c.toml",
            Path::new("/etc/monitor"),
        )
        .unwrap();
        assert_eq!(c.host.retention, Duration::from_secs(7200));
        assert_eq!(c.host.rollup_retention, Duration::from_secs(7 * 86_400));
        let c = Config::from_str("[host]\nretention = \"10m\"\n", "c.toml", Path::new("/"));
        assert_eq!(c.unwrap().host.memory_retention(), Duration::from_secs(600));
    }

    fn with_env(text: &str) -> Result<Config, Vec<String>> {
        let env = |name: &str| match name {
            "HOOK_TOKEN" => Ok("s3cret".to_owned()),
            "PLUGIN_DIR" => Ok("/opt/monitor".to_owned()),
            _ => Err(std::env::VarError::NotPresent),
        };
        Config::from_str_with_env(text, "monitor.toml", Path::new("/etc/monitor"), &env)
            .map_err(|e| e.0.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn environment_variables_expand_in_string_values() {
        let c = with_env(
            r#"[host]
interval = "${INTERVAL:-15s}"

[[notifier]]
plugin = "webhook"
library = "${PLUGIN_DIR}/libwebhook.so"
[notifier.config]
headers = { Authorization = "Bearer ${HOOK_TOKEN}" }
urls = ["https://example.com/${HOOK_TOKEN}", "$${HOOK_TOKEN}"]
"#,
        )
        .unwrap();
        assert_eq!(c.host.interval, Duration::from_secs(15));
        let n = &c.notifiers[0].plugin;
        assert_eq!(n.library, Path::new("/opt/monitor/libwebhook.so"));
        assert_eq!(
            n.config,
            serde_json::json!({
                "headers": {"Authorization": "Bearer s3cret"},
                "urls": ["https://example.com/s3cret", "${HOOK_TOKEN}"],
            })
        );
    }

    #[test]
    fn an_unset_variable_is_reported_at_its_value_with_the_other_errors() {
        let e = with_env(
            r#"[host]
interval = "${INTERVAL}"
colour = "red"

[[notifier]]
plugin = "webhook"
library = "libwebhook.so"
[notifier.config]
token = "${WEBHOOK_TOKEN}"
"#,
        )
        .unwrap_err();
        let expected = [
            "monitor.toml:2:12: environment variable `INTERVAL` is not set",
            "monitor.toml:3:1: unknown field `colour`",
            "monitor.toml:9:9: environment variable `WEBHOOK_TOKEN` is not set",
        ];
        // One error per value: no "invalid duration `${INTERVAL}`" as well.
        assert_eq!(e.len(), expected.len(), "{e:#?}");
        for (got, want) in e.iter().zip(expected) {
            assert!(got.starts_with(want), "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn remote_write_defaults_and_settings() {
        let c = with_env(
            r#"[host]
name = "web-1"

[[remote_write]]
url = "http://mimir:9009/api/v1/push"

[[remote_write]]
name = "central"
url = "http://prometheus:9090/api/v1/write"
timeout = "10s"
queue_capacity = 500
max_samples_per_send = 100
batch_send_deadline = "1s"
min_backoff = "100ms"
max_backoff = "10s"
headers = { X-Scope-OrgID = "${HOOK_TOKEN}" }
labels = { instance = "web-1:9464", dc = "eu" }
"#,
        )
        .unwrap();
        let d = &c.remote_write[0];
        assert_eq!(d.name, "http://mimir:9009/api/v1/push");
        assert_eq!(d.timeout, Duration::from_secs(30));
        assert_eq!(d.queue_capacity, DEFAULT_QUEUE_CAPACITY);
        assert_eq!(d.max_samples_per_send, DEFAULT_MAX_SAMPLES_PER_SEND);
        assert_eq!(d.batch_send_deadline, Duration::from_secs(5));
        assert_eq!(d.min_backoff, Duration::from_millis(30));
        assert_eq!(d.max_backoff, Duration::from_secs(5));
        assert!(d.headers.is_empty());
        assert_eq!(
            d.labels,
            BTreeMap::from([("host".to_owned(), "web-1".to_owned())])
        );
        let s = &c.remote_write[1];
        assert_eq!(s.name, "central");
        assert_eq!(s.url, "http://prometheus:9090/api/v1/write");
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert_eq!((s.queue_capacity, s.max_samples_per_send), (500, 100));
        assert_eq!(s.batch_send_deadline, Duration::from_secs(1));
        assert_eq!(s.min_backoff, Duration::from_millis(100));
        assert_eq!(s.max_backoff, Duration::from_secs(10));
        assert_eq!(s.headers["X-Scope-OrgID"], "s3cret");
        assert_eq!(
            s.labels,
            BTreeMap::from([
                ("dc".to_owned(), "eu".to_owned()),
                ("instance".to_owned(), "web-1:9464".to_owned()),
            ])
        );
        assert_eq!(s.at.line, 7);
    }

    #[test]
    fn remote_write_errors_are_located() {
        let e = errors(
            r#"[[remote_write]]
url = "https://example.com/push"
queue_capacity = 0
min_backoff = "1s"
max_backoff = "100ms"
labels = { "__reserved" = "x", "9lives" = "y" }
colour = "red"

[[remote_write]]
name = "a"
url = "http://a/"

[[remote_write]]
name = "a"
url = "http://b/"
max_samples_per_send = -1
batch_send_deadline = "0s"
headers = { "Bad Header" = "v", X-Ok = "a\nb" }
"#,
        );
        let expected = [
            "monitor.toml:2:7: `url` must be an http:// address",
            "monitor.toml:3:18: `queue_capacity` must be a whole number of at least 1",
            "monitor.toml:5:15: `max_backoff` must be at least `min_backoff`",
            "monitor.toml:6:27: `labels`: `__reserved` is not a valid label name",
            "monitor.toml:6:43: `labels`: `9lives` is not a valid label name",
            "monitor.toml:7:1: unknown field `colour`",
            "monitor.toml:14:8: duplicate remote_write name `a`",
            "monitor.toml:16:24: `max_samples_per_send` must be a whole number of at least 1",
            "monitor.toml:17:23: `batch_send_deadline` must be greater than zero",
            "monitor.toml:18:28: `headers`: `Bad Header` is not a valid header name",
            "monitor.toml:18:40: `headers`: the value of `X-Ok` must not contain control characters",
        ];
        assert_eq!(e.len(), expected.len(), "{e:#?}");
        for (got, want) in e.iter().zip(expected) {
            assert!(got.starts_with(want), "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn a_wrong_host_name_does_not_hide_the_other_host_values() {
        let e = errors("[host]\nname = 1\ninterval = \"soon\"\n");
        assert_eq!(e.len(), 2, "{e:#?}");
        assert!(e[0].starts_with("monitor.toml:2:8: invalid type"), "{e:?}");
        assert!(
            e[1].starts_with("monitor.toml:3:12: `interval`: invalid duration"),
            "{e:?}"
        );
    }

    #[test]
    fn series_limits_per_host_and_per_collector() {
        let text = "[host]\nmax_series = 500\n\n[[collector]]\nplugin = \"a\"\nlibrary = \"a.so\"\n\
                    max_series = 20\n\n[[collector]]\nplugin = \"b\"\nlibrary = \"b.so\"\n";
        let c = Config::from_str(text, "monitor.toml", Path::new("/etc/monitor")).unwrap();
        assert_eq!(c.host.max_series, 500);
        assert_eq!(c.collectors[0].max_series, Some(20));
        assert_eq!(c.collectors[1].max_series, None);
        let c = Config::from_str("", "monitor.toml", Path::new("/etc/monitor")).unwrap();
        assert_eq!(c.host.max_series, DEFAULT_MAX_SERIES);

        let e = errors(
            "[host]\nmax_series = 0\n\n[[collector]]\nplugin = \"a\"\nlibrary = \"a.so\"\nmax_series = 0\n",
        );
        assert_eq!(e.len(), 2, "{e:#?}");
        assert!(
            e[0].starts_with("monitor.toml:2:14: `max_series` must be greater than zero"),
            "{e:?}"
        );
        assert!(
            e[1].starts_with("monitor.toml:7:14: `max_series` must be greater than zero"),
            "{e:?}"
        );
        let e = errors("[host]\nmax_series = -1\n");
        assert!(
            e[0].starts_with("monitor.toml:2:14: invalid value"),
            "{e:?}"
        );
    }

    #[test]
    fn the_default_payload_limit_takes_a_scrape_of_100000_series() {
        let samples: Vec<monitor_plugin::Sample> = (0..100_000)
            .map(|i| {
                monitor_plugin::Sample::gauge(format!("app_requests_in_flight_{}", i / 100), 0.5)
                    .with_label("instance", format!("10.0.{}.{}:9100", i / 250, i % 250))
                    .with_label("job", "application")
            })
            .collect();
        let collection = monitor_plugin::Collection {
            samples,
            ..Default::default()
        };
        let bytes = serde_json::to_vec(&collection).unwrap().len();
        let c = Config::from_str("", "monitor.toml", Path::new("/etc/monitor")).unwrap();
        assert!(bytes > 8 << 20, "{bytes} bytes: a realistic scrape");
        assert!(c.host.max_payload >= bytes, "{bytes} bytes refused");
    }
    #[test]
    fn reminders_default_by_kind_and_can_be_switched_off() {
        let notifier = |extra: &str| {
            format!("[[notifier]]\nplugin = \"log\"\nlibrary = \"lib/liblog.so\"\n{extra}\n")
        };
        let text = [
            notifier("name = \"plain\""),
            notifier("name = \"am\"\nalertmanager = true"),
            notifier("name = \"own\"\nresend_every = \"90s\""),
            notifier("name = \"off\"\nalertmanager = true\nresend_every = \"off\""),
            notifier("name = \"zero\"\nresend_every = \"0\""),
            notifier("name = \"zero_s\"\nresend_every = \"0s\""),
        ]
        .concat();
        let c = Config::from_str(&text, "monitor.toml", Path::new("/etc/monitor")).unwrap();
        assert_eq!(c.host.resend_delay, Some(Duration::from_secs(60)));
        assert_eq!(c.host.repeat_interval, Some(Duration::from_secs(4 * 3600)));
        let every: Vec<_> = c.notifiers.iter().map(|n| n.resend_every).collect();
        assert_eq!(
            every,
            [
                Some(Duration::from_secs(4 * 3600)),
                Some(Duration::from_secs(60)),
                Some(Duration::from_secs(90)),
                None,
                None,
                None
            ]
        );
        assert!(c.notifiers[1].alertmanager && !c.notifiers[0].alertmanager);

        let host = "[host]\nresend_delay = \"2s\"\nrepeat_interval = \"off\"\n";
        let text = format!(
            "{host}{}{}",
            notifier("name = \"plain\""),
            notifier("name = \"am\"\nalertmanager = true")
        );
        let c = Config::from_str(&text, "monitor.toml", Path::new("/etc/monitor")).unwrap();
        assert_eq!(c.host.repeat_interval, None);
        assert_eq!(c.notifiers[0].resend_every, None);
        assert_eq!(c.notifiers[1].resend_every, Some(Duration::from_secs(2)));
    }

    #[test]
    fn a_bad_reminder_interval_is_located() {
        let e = errors(
            "[host]\nresend_delay = \"soon\"\n\n[[notifier]]\nplugin = \"log\"\nlibrary = \"l.so\"\nresend_every = \"1x\"\nalertmanager = \"yes\"\n",
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("monitor.toml:2:16: `resend_delay`")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("monitor.toml:7:16: `resend_every`")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("monitor.toml:8:16: invalid type")),
            "{e:?}"
        );
    }

    #[test]
    fn durations_that_would_overflow_later_are_refused_with_their_position() {
        let e = errors(
            "[host]\ntimeout = \"213503982334601d\"\n\n[[alert]]\nname = \"a\"\nmetric = \"m\"\ncondition = \"above\"\nthreshold = 1\nfor = \"99999999999999d\"\n",
        );
        let expected = [
            "monitor.toml:2:11: `timeout`: invalid duration `213503982334601d`: longer than the maximum of 10 years",
            "monitor.toml:9:7: `for`: invalid duration `99999999999999d`: longer than the maximum of 10 years",
        ];
        assert_eq!(e.len(), expected.len(), "{e:#?}");
        for (got, want) in e.iter().zip(expected) {
            assert!(got.starts_with(want), "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn the_future_skew_is_five_minutes_unless_configured() {
        let c = Config::from_str("", "monitor.toml", Path::new("/etc/monitor")).unwrap();
        assert_eq!(c.host.max_future_skew, Duration::from_secs(300));
        let c = Config::from_str(
            "[host]\nmax_future_skew = \"30s\"\n",
            "monitor.toml",
            Path::new("/etc/monitor"),
        )
        .unwrap();
        assert_eq!(c.host.max_future_skew, Duration::from_secs(30));
        let e = errors("[host]\nmax_future_skew = \"soon\"\n");
        assert!(
            e[0].starts_with("monitor.toml:2:19: `max_future_skew`"),
            "{e:?}"
        );
    }

    #[test]
    fn nan_meets_no_condition() {
        for c in [
            Condition::Above,
            Condition::Below,
            Condition::Equals,
            Condition::NotEquals,
        ] {
            assert!(!c.holds(f64::NAN, 1.0), "{c:?}");
        }
        assert!(Condition::Above.holds(f64::INFINITY, 1.0));
        assert!(Condition::Below.holds(f64::NEG_INFINITY, 1.0));
    }

    #[test]
    fn an_expression_alert_is_a_rule_and_not_a_threshold_alert() {
        let c = Config::from_str(
            r#"
[[alert]]
name = "errors"
expr = "rate(http_errors_total[5m]) > 5"
for = "1m"
keep_firing_for = "5m"
severity = "critical"
description = "{{ $labels.job }} fails"
labels = { team = "{{ $labels.owner }}" }
annotations = { summary = "{{ $value | humanize }} errors/s" }

[[alert]]
name = "cpu"
metric = "system.cpu.usage"
condition = "above"
threshold = 80
description = "CPU usage is high"
"#,
            "monitor.toml",
            Path::new("/etc/monitor"),
        )
        .unwrap();
        assert_eq!(c.alerts.len(), 1, "only the simple form runs on thresholds");
        assert_eq!(c.alerts[0].name, "cpu");
        let [errors, cpu] = &c.rules.alerts[..] else {
            panic!("two rules: {:?}", c.rules.alerts)
        };
        assert_eq!(errors.expr.text, "rate(http_errors_total[5m]) > 5");
        assert_eq!((errors.expr.at.line, errors.expr.at.column), (4, 8));
        assert_eq!(errors.for_, Duration::from_secs(60));
        assert_eq!(errors.keep_firing_for, Duration::from_secs(300));
        assert_eq!(errors.labels["severity"].source(), "critical");
        assert_eq!(errors.labels["team"].source(), "{{ $labels.owner }}");
        assert_eq!(
            errors.annotations["description"].source(),
            "{{ $labels.job }} fails"
        );
        assert_eq!(
            errors.annotations["summary"].source(),
            "{{ $value | humanize }} errors/s"
        );
        assert_eq!(
            cpu.expr.text,
            r#"{__name__=~"system_cpu_usage(_total)?"} > 80.0"#
        );
        assert_eq!(cpu.labels["severity"].source(), "warning");
        assert_eq!(cpu.annotations["description"].source(), "CPU usage is high");
        assert_eq!(cpu.at.line, 12);
    }

    #[test]
    fn expression_alert_errors_are_located() {
        let e = errors(
            r#"[[alert]]
name = "a"
expr = "rate(x[5m]"
metric = "m"
keep_firing_for = "soon"
annotations = { summary = "{{ range $labels }}{{ end }}" }
labels = { "bad-name" = "x" }

[[alert]]
name = "b"
expr = "1"

[[alert]]
name = "c"
metric = "m"
condition = "above"
threshold = 1
keep_firing_for = "1m"

[[alert]]
name = "d"
metric = "m"
"#,
        );
        let expected = [
            "monitor.toml:3:8: `expr`: could not parse expression: ",
            "monitor.toml:4:10: `metric` belongs to the simple form",
            "monitor.toml:5:19: `keep_firing_for`: ",
            "monitor.toml:6:27: `annotations.summary`: template: `range` is not a function",
            "monitor.toml:7:25: `labels`: `bad-name` is not a valid name",
            "monitor.toml:11:8: `expr`: an alerting rule's expression must be an instant vector, not a scalar",
            "monitor.toml:18:19: `keep_firing_for` needs the expression form",
            "monitor.toml:20:1: missing field `condition`",
            "monitor.toml:20:1: missing field `threshold`",
        ];
        assert_eq!(e.len(), expected.len(), "{e:#?}");
        for (got, want) in e.iter().zip(expected) {
            assert!(got.starts_with(want), "{got}\n  expected {want}");
        }
    }

    #[test]
    fn a_rule_reaching_further_back_than_raw_retention_is_refused_at_its_expression() {
        let toml = "[host]\nretention = \"30m\"\n\n[[alert]]\nname = \"slow\"\nexpr = \"rate(x[20m] offset 15m) > 1\"\n\n[[alert]]\nname = \"ok\"\nexpr = \"rate(x[20m]) > 1\"\n";
        let e = errors(toml);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("monitor.toml:6:8: rule \"slow\": `rate(x[20m] offset 15m) > 1` reads 35m of history, more than the 30m of raw points the store keeps (`retention`)"),
            "{e:?}"
        );
    }

    #[test]
    fn rules_may_read_the_store_back_to_raw_retention() {
        // The default retention (1d) holds a day's window, far more than memory's hour.
        let toml = "[[alert]]\nname = \"daily\"\nexpr = \"avg_over_time(x[1d]) > 1\"\n\n[[alert]]\nname = \"yesterday\"\nexpr = \"x offset 23h > 1\"\n";
        let c = Config::from_str(toml, "monitor.toml", Path::new("/")).unwrap();
        assert_eq!(c.rules.alerts.len(), 2);
        // One day and a minute is beyond it: refused at the expression, naming the retention.
        let toml = "[[alert]]\nname = \"daily\"\nexpr = \"avg_over_time(x[1d] offset 1m) > 1\"\n";
        let e = errors(toml);
        assert_eq!(
            e,
            [
                "monitor.toml:3:8: rule \"daily\": `avg_over_time(x[1d] offset 1m) > 1` reads 1441m of history, more than the 24h of raw points the store keeps (`retention`): raise `retention` or shorten its ranges, offsets or subqueries"
            ],
        );
        // A rule file's rule is refused the same way, at its own file's position.
        let dir =
            std::env::temp_dir().join(format!("monitor-rule-lookback-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("long.yml"),
            "groups:\n  - name: g\n    rules:\n      - record: x:week\n        expr: avg_over_time(x[1w])\n",
        )
        .unwrap();
        let text = "[host]\nrule_files = [\"long.yml\"]\n";
        let e = Config::from_str(text, "monitor.toml", &dir)
            .unwrap_err()
            .to_string();
        let text = "[host]\nrule_files = [\"long.yml\"]\nretention = \"8d\"\n";
        let accepted = Config::from_str(text, "monitor.toml", &dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            e.contains("long.yml:5:15: rule \"x:week\"") && e.contains("168h of history"),
            "{e}"
        );
        assert_eq!(accepted.unwrap().rules.file_rules(), 1);
    }

    #[test]
    fn a_strategy_may_name_a_rule_files_alert_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("monitor-rule-on-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("r.yml"),
            "groups:\n  - name: g\n    rules:\n      - record: r:up\n        expr: up\n      - alert: Down\n        expr: up == 0\n",
        )
        .unwrap();
        let text = |on: &str| {
            format!(
                "[host]\nrule_files = [\"r.yml\"]\n\n[[alert]]\nname = \"high\"\nmetric = \"m\"\ncondition = \"above\"\nthreshold = 1\n\n[[strategy]]\nplugin = \"restart\"\nname = \"fix\"\nlibrary = \"r.so\"\non = {on}\n"
            )
        };
        let accepted = Config::from_str(&text(r#"["Down", "high"]"#), "monitor.toml", &dir);
        let refused = Config::from_str(&text(r#"["Down", "r:up"]"#), "monitor.toml", &dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(accepted.unwrap().strategies[0].on, ["Down", "high"]);
        let e = refused.unwrap_err().to_string();
        assert!(
            e.contains(
                "monitor.toml:14:15: `on`: strategy `fix` names alert `r:up`, but no `[[alert]]` nor alerting rule of the `rule_files` is named so"
            ),
            "a recording rule is no alert: {e}"
        );
    }

    #[test]
    fn rule_files_load_relative_to_the_config_and_report_after_its_own_errors() {
        let dir = std::env::temp_dir().join(format!("monitor-rule-files-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("rules")).unwrap();
        std::fs::write(
            dir.join("rules/a.yml"),
            "groups:\n  - name: g\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up)\n",
        )
        .unwrap();
        let text = "[host]\nrule_files = [\"rules/*.yml\"]\n";
        let c = Config::from_str(text, "monitor.toml", &dir).unwrap();
        assert_eq!(c.host.rule_files, ["rules/*.yml"]);
        assert_eq!(c.rules.groups.len(), 1);
        assert_eq!(c.rules.file_rules(), 1);
        assert_eq!(
            c.rules.groups[0].file,
            dir.join("rules/a.yml").display().to_string()
        );

        std::fs::write(
            dir.join("rules/b.yml"),
            "groups:\n  - name: h\n    rules:\n      - alert: A\n        expr: up ==\n",
        )
        .unwrap();
        let e = Config::from_str(&format!("{text}interval = \"x\"\n"), "monitor.toml", &dir)
            .unwrap_err()
            .0;
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(e[0].location.file, "monitor.toml");
        assert!(
            e[1].to_string().starts_with(&format!(
                "{}:5:15: group \"h\", rule 1, \"A\": could not parse",
                dir.join("rules/b.yml").display()
            )),
            "{e:?}"
        );
    }

    #[test]
    fn analytics_conditions_compile_to_the_extension_functions() {
        let c = Config::from_str(
            r#"
[[alert]]
name = "odd_latency"
metric = "http.latency"
condition = "anomaly"

[[alert]]
name = "odd_queue"
metric = "queue.depth"
condition = "anomaly"
window = "30m"
threshold = 5

[[alert]]
name = "disk_full_soon"
metric = "system.disk.usage"
condition = "forecast_above"
threshold = 95
labels = { mount = "/" }

[[alert]]
name = "memory_low_soon"
metric = "system.memory.available_bytes"
condition = "forecast_below"
window = "45m"
horizon = "90m"
threshold = 1e9

[[alert]]
name = "odd_traffic"
metric = "http.requests_rate"
condition = "anomaly"
season = "10m"
"#,
            "monitor.toml",
            Path::new("/etc/monitor"),
        )
        .unwrap();
        assert!(c.alerts.is_empty(), "a threshold engine cannot run them");
        let texts: Vec<&str> = (c.rules.alerts.iter())
            .map(|r| r.expr.text.as_str())
            .collect();
        assert_eq!(
            texts,
            [
                r#"abs(anomaly_score({__name__=~"http_latency(_total)?"}[1h])) > 4.0"#,
                r#"abs(anomaly_score({__name__=~"queue_depth(_total)?"}[30m])) > 5.0"#,
                r#"forecast({__name__=~"system_disk_usage(_total)?", mount="/"}[1h], 14400.0) > 95.0"#,
                r#"forecast({__name__=~"system_memory_available_bytes(_total)?"}[45m], 5400.0) < 1000000000.0"#,
                r#"abs(anomaly_score({__name__=~"http_requests_rate(_total)?"}[40m], 600.0)) > 4.0"#,
            ]
        );
        let anomaly = Condition::Anomaly {
            window: DEFAULT_ANALYTICS_WINDOW,
            season: None,
        };
        assert!(!anomaly.holds(100.0, 4.0));
        // A daily season's four seasons are more than the store's raw points (1d by default)...
        let e = Config::from_str(
            "[[alert]]\nname = \"a\"\nmetric = \"m\"\ncondition = \"anomaly\"\nseason = \"1d\"\n",
            "monitor.toml",
            Path::new("/etc/monitor"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("monitor.toml:1:1:")
                && e.contains("reads 96h of history, more than the 24h of raw points"),
            "{e}"
        );
        // ... and fit once `retention` keeps them: the season is not limited by memory's hour.
        let c = Config::from_str(
            "[host]\nretention = \"5d\"\n\n[[alert]]\nname = \"a\"\nmetric = \"m\"\ncondition = \"anomaly\"\nseason = \"1d\"\n",
            "monitor.toml",
            Path::new("/etc/monitor"),
        )
        .unwrap();
        assert_eq!(
            c.rules.alerts[0].expr.text,
            r#"abs(anomaly_score({__name__=~"m(_total)?"}[4d], 86400.0)) > 4.0"#
        );
    }

    #[test]
    fn analytics_keys_in_the_wrong_place_are_errors_at_their_position() {
        let alert = |body: &str| format!("[[alert]]\nname = \"a\"\nmetric = \"m\"\n{body}");
        for (body, says) in [
            (
                "condition = \"above\"\nthreshold = 1\nwindow = \"1h\"\n",
                "monitor.toml:6:10: `window` does not apply to `condition = \"above\"`; it goes \
                 with anomaly, forecast_above and forecast_below",
            ),
            (
                "condition = \"anomaly\"\nhorizon = \"4h\"\n",
                "monitor.toml:5:11: `horizon` does not apply to `condition = \"anomaly\"`; it \
                 goes with forecast_above and forecast_below",
            ),
            (
                "condition = \"anomaly\"\nthreshold = -3\n",
                "monitor.toml:5:13: `threshold`: with `condition = \"anomaly\"` it is a z-score, \
                 above 0",
            ),
            (
                "condition = \"forecast_above\"\n",
                "monitor.toml:1:1: missing field `threshold`",
            ),
            (
                "condition = \"forecast_below\"\nthreshold = 1\nhorizon = \"0s\"\n",
                "monitor.toml:6:11: `horizon` must be greater than zero",
            ),
            (
                "condition = \"anomaly\"\nwindow = \"soon\"\n",
                "monitor.toml:5:10: `window`: ",
            ),
            (
                "condition = \"anomaly\"\nseason = \"1d\"\nwindow = \"2d\"\n",
                "monitor.toml:6:10: `window` must be longer than two seasons",
            ),
            (
                "condition = \"forecast_above\"\nthreshold = 1\nseason = \"1d\"\n",
                "monitor.toml:6:10: `season` does not apply to `condition = \"forecast_above\"`",
            ),
            (
                "condition = \"anomalous\"\nthreshold = 1\n",
                "unknown condition `anomalous`; use above, below, equals, not_equals, anomaly, \
                 forecast_above or forecast_below",
            ),
        ] {
            let e = errors(&alert(body));
            assert!(e.iter().any(|m| m.contains(says)), "{body}: {e:?}");
        }
        let e = errors("[[alert]]\nname = \"a\"\nexpr = \"up > 1\"\nwindow = \"1h\"\n");
        assert!(
            e.iter()
                .any(|m| m.starts_with("monitor.toml:4:10: `window` belongs to the simple form")),
            "{e:?}"
        );
    }
}
