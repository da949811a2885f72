//! `restart-command` healing strategy: runs a command (through `sh -c`) with a timeout; success is
//! its exit status 0 and, when configured, a health-check command succeeding afterwards (what Monit's
//! `restart` does).
//!
//! Config: `command` (required), `timeout` (a duration such as `"30s"`, or seconds; default 30 s), `health_check` (optional command),
//! `health_retries` (default 5), `health_interval` (between health checks, default 1 s),
//! `health_timeout` (per check, default 10 s). The commands see `MONITOR_ALERT`,
//! `MONITOR_METRIC`, `MONITOR_VALUE`, `MONITOR_SEVERITY`, `MONITOR_ATTEMPT` and one
//! `MONITOR_LABEL_<NAME>` per label. Their output goes to the host's stderr.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use monitor_plugin::{
    ConfigDuration, Failure, HealOutcome, HealingStrategy, PluginError, parse_config,
};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    command: String,
    #[serde(default = "thirty")]
    timeout: ConfigDuration,
    health_check: Option<String>,
    #[serde(default = "five")]
    health_retries: u32,
    #[serde(default = "one")]
    health_interval: ConfigDuration,
    #[serde(default = "ten")]
    health_timeout: ConfigDuration,
}

fn thirty() -> ConfigDuration {
    ConfigDuration::from_secs(30)
}
fn five() -> u32 {
    5
}
fn one() -> ConfigDuration {
    ConfigDuration::from_secs(1)
}
fn ten() -> ConfigDuration {
    ConfigDuration::from_secs(10)
}

#[derive(Default)]
struct RestartCommand {
    settings: Option<Settings>,
}

/// Runs `sh -c command`, killing it after `timeout`. Ok(true) on exit status 0.
fn run(command: &str, timeout: Duration, f: &Failure) -> Result<bool, String> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .env("MONITOR_ALERT", &f.alert)
        .env("MONITOR_METRIC", &f.metric)
        .env("MONITOR_VALUE", f.value.to_string())
        .env("MONITOR_SEVERITY", f.severity.as_str())
        .env("MONITOR_ATTEMPT", f.attempt.to_string());
    for (k, v) in &f.labels {
        let key: String = k
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        cmd.env(format!("MONITOR_LABEL_{key}"), v);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run `{command}`: {e}"))?;
    // A configured timeout is at most 10 years, so this cannot overflow; should it, wait forever
    // rather than panic.
    let end = Instant::now().checked_add(timeout);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status.success()),
            Ok(None) if end.is_some_and(|end| Instant::now() >= end) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{command}` did not finish within {timeout:?} and was killed"
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("cannot wait for `{command}`: {e}")),
        }
    }
}

impl HealingStrategy for RestartCommand {
    fn configure(&mut self, config: &serde_json::Value) -> Result<(), PluginError> {
        let s: Settings = parse_config(config)?;
        if s.command.trim().is_empty() {
            return Err("`command` must not be empty".into());
        }
        self.settings = Some(s);
        Ok(())
    }

    fn heal(&mut self, failure: &Failure) -> Result<HealOutcome, PluginError> {
        let s = self.settings.as_ref().ok_or("not configured")?;
        let start = Instant::now();
        let done = |success: bool, message: String| HealOutcome {
            success,
            message,
            duration_ms: start.elapsed().as_millis() as u64,
        };
        match run(&s.command, s.timeout.get(), failure) {
            Ok(true) => {}
            Ok(false) => {
                return Ok(done(
                    false,
                    format!("`{}` exited with a failure status", s.command),
                ));
            }
            Err(m) => return Ok(done(false, m)),
        }
        let Some(check) = &s.health_check else {
            return Ok(done(true, format!("`{}` succeeded", s.command)));
        };
        let interval = s.health_interval.get();
        let timeout = s.health_timeout.get();
        for attempt in 1..=s.health_retries.max(1) {
            std::thread::sleep(interval);
            if let Ok(true) = run(check, timeout, failure) {
                return Ok(done(
                    true,
                    format!(
                        "`{}` succeeded; healthy after {attempt} check(s)",
                        s.command
                    ),
                ));
            }
        }
        Ok(done(
            false,
            format!(
                "`{}` succeeded but `{check}` still fails after {} check(s)",
                s.command,
                s.health_retries.max(1)
            ),
        ))
    }
}

monitor_plugin::export_plugin!(strategy "restart-command" => RestartCommand);
