//! The config of both plugins: the program, and for the collector how it talks.

use std::collections::BTreeMap;
use std::time::Duration;

use monitor_plugin::{ConfigDuration, PluginError};
use serde::Deserialize;

/// How the collector reads the program's stdout.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Format {
    /// Prometheus text, blocks ended by an empty line or `# EOF`.
    #[default]
    Prometheus,
    /// One sample per line, in the plugin payload's JSON shape.
    Json,
}

/// When the program writes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Signal {
    /// Whenever it likes; each collection takes what arrived since the last one.
    #[default]
    None,
    /// When asked: each collection writes a newline to its stdin and waits for one block.
    Newline,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    /// The program (a path, or a name looked up in `PATH`); not run through a shell.
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Added to the host's environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub format: Option<Format>,
    pub signal: Option<Signal>,
    /// With `signal = "newline"`: how long a collection waits for the block.
    pub timeout: Option<ConfigDuration>,
    /// The first wait before a restart; doubled at each exit in a row, up to `max_restart_delay`.
    #[serde(default = "one")]
    pub restart_delay: ConfigDuration,
    #[serde(default = "minute")]
    pub max_restart_delay: ConfigDuration,
    /// At shutdown: how long the program has between SIGTERM and SIGKILL.
    #[serde(default = "two")]
    pub stop_timeout: ConfigDuration,
}

fn one() -> ConfigDuration {
    ConfigDuration::from_secs(1)
}
fn two() -> ConfigDuration {
    ConfigDuration::from_secs(2)
}
fn minute() -> ConfigDuration {
    ConfigDuration::from_secs(60)
}

/// The default of `timeout`.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

impl Settings {
    /// The checks both plugins make.
    pub fn check(&self) -> Result<(), PluginError> {
        if self.command.trim().is_empty() {
            return Err("`command` is empty".into());
        }
        if self.restart_delay.get().is_zero() {
            return Err("`restart_delay` must be longer than zero, e.g. \"1s\"".into());
        }
        if self.max_restart_delay.get() < self.restart_delay.get() {
            return Err("`max_restart_delay` must be at least `restart_delay`".into());
        }
        if self.timeout.is_some_and(|t| t.get().is_zero()) {
            return Err("`timeout` must be longer than zero, e.g. \"3s\"".into());
        }
        if let Some(bad) = self
            .env
            .keys()
            .find(|k| k.is_empty() || k.contains(['=', '\0']))
        {
            return Err(format!("`env`: `{bad}` is not an environment variable name").into());
        }
        Ok(())
    }

    /// The notifier writes and never reads: the collector's keys are refused rather than ignored.
    pub fn check_notifier(&self) -> Result<(), PluginError> {
        for (key, set) in [
            ("format", self.format.is_some()),
            ("signal", self.signal.is_some()),
            ("timeout", self.timeout.is_some()),
        ] {
            if set {
                return Err(format!(
                    "`{key}` is a key of the exec collector; the notifier writes each notification as one JSON line"
                )
                .into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(v: serde_json::Value) -> Result<(), String> {
        let s: Settings = monitor_plugin::parse_config(&v).map_err(|e| e.to_string())?;
        s.check().map_err(|e| e.to_string())
    }

    #[test]
    fn bad_settings_are_refused_with_the_key_named() {
        let cases = [
            (serde_json::json!({}), "command"),
            (serde_json::json!({"command": " "}), "`command` is empty"),
            (
                serde_json::json!({"command": "x", "restart_delay": 0}),
                "`restart_delay` must be longer than zero",
            ),
            (
                serde_json::json!({"command": "x", "restart_delay": "10s", "max_restart_delay": "1s"}),
                "`max_restart_delay` must be at least",
            ),
            (
                serde_json::json!({"command": "x", "timeout": "0s"}),
                "`timeout` must be longer than zero",
            ),
            (
                serde_json::json!({"command": "x", "env": {"A=B": "1"}}),
                "`A=B` is not an environment variable name",
            ),
            (serde_json::json!({"command": "x", "format": "xml"}), "xml"),
            (
                serde_json::json!({"command": "x", "signal": "sigusr1"}),
                "sigusr1",
            ),
            (serde_json::json!({"command": "x", "shell": true}), "shell"),
        ];
        for (config, needle) in cases {
            let err = check(config.clone()).err().unwrap_or_default();
            assert!(err.contains(needle), "{config}: {err:?}");
        }
        assert!(
            check(serde_json::json!({"command": "x", "args": ["-v"], "env": {"A": "1"}})).is_ok()
        );
    }
}
