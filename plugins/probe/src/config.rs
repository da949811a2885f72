//! The probe's config: the collection's `timeout` and the `[[probes]]` list.

use std::path::PathBuf;
use std::time::Duration;

use monitor_plugin::{ConfigDuration, PluginError};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    /// How long one collection waits for all its probes.
    #[serde(default = "four")]
    pub timeout: ConfigDuration,
    pub probes: Vec<Probe>,
}

/// One probe; `kind` picks the variant.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(crate) enum Probe {
    Http(HttpProbe),
    Tcp(TcpProbe),
    Command(CommandProbe),
}

/// Either one status code or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Statuses {
    One(u16),
    Many(Vec<u16>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpProbe {
    pub name: String,
    pub url: String,
    /// Expected status codes; any 2xx when absent.
    pub status: Option<Statuses>,
    pub body_contains: Option<String>,
    pub body_regex: Option<String>,
    #[serde(default = "three")]
    pub timeout: ConfigDuration,
    #[serde(default)]
    pub follow_redirects: bool,
    pub tls_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TcpProbe {
    pub name: String,
    /// `host:port`.
    pub address: String,
    #[serde(default = "three")]
    pub timeout: ConfigDuration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommandProbe {
    pub name: String,
    /// Run with `sh -c`.
    pub command: String,
    #[serde(default = "three")]
    pub timeout: ConfigDuration,
}

fn three() -> ConfigDuration {
    ConfigDuration::from_secs(3)
}
fn four() -> ConfigDuration {
    ConfigDuration::from_secs(4)
}

impl Probe {
    pub fn name(&self) -> &str {
        match self {
            Self::Http(p) => &p.name,
            Self::Tcp(p) => &p.name,
            Self::Command(p) => &p.name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Http(_) => "http",
            Self::Tcp(_) => "tcp",
            Self::Command(_) => "command",
        }
    }

    pub fn timeout(&self) -> Duration {
        match self {
            Self::Http(p) => p.timeout.get(),
            Self::Tcp(p) => p.timeout.get(),
            Self::Command(p) => p.timeout.get(),
        }
    }
}

impl Statuses {
    pub fn accepts(&self, status: u16) -> bool {
        match self {
            Self::One(s) => *s == status,
            Self::Many(list) => list.contains(&status),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::One(s) => s.to_string(),
            Self::Many(list) => list
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or "),
        }
    }
}

/// The checks serde cannot make: names, durations, addresses, status codes.
pub(crate) fn check(s: &Settings) -> Result<(), PluginError> {
    let budget = s.timeout.get();
    if budget.is_zero() {
        return Err("`timeout` must be longer than zero, e.g. \"4s\"".into());
    }
    if s.probes.is_empty() {
        return Err("`probes` is empty: give at least one `[[collector.config.probes]]`".into());
    }
    let mut names = std::collections::BTreeSet::new();
    for p in &s.probes {
        let name = p.name();
        if name.is_empty() {
            return Err("a probe's `name` is empty".into());
        }
        if !names.insert(name) {
            return Err(format!("two probes are named `{name}`: names must be unique").into());
        }
        let t = p.timeout();
        if t.is_zero() || t > budget {
            return Err(format!(
                "probe `{name}`: `timeout` ({t:?}) must be longer than zero and at most the collection's `timeout` ({budget:?})"
            )
            .into());
        }
        check_one(p).map_err(|e| format!("probe `{name}`: {e}"))?;
    }
    Ok(())
}

fn check_one(p: &Probe) -> Result<(), String> {
    match p {
        Probe::Http(h) => {
            monitor_plugin_common::http::check_url(&h.url).map_err(|e| e.to_string())?;
            match &h.status {
                Some(Statuses::Many(list)) if list.is_empty() => {
                    return Err("`status` is an empty list".into());
                }
                Some(st) => {
                    let bad = match st {
                        Statuses::One(s) => vec![*s],
                        Statuses::Many(l) => l.clone(),
                    };
                    if let Some(b) = bad.iter().find(|s| !(100..=599).contains(*s)) {
                        return Err(format!("`status` {b} is not an HTTP status code"));
                    }
                }
                None => {}
            }
            if let Some(re) = &h.body_regex {
                regex::Regex::new(re).map_err(|e| format!("`body_regex`: {e}"))?;
            }
        }
        Probe::Tcp(t) => {
            let ok = t
                .address
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !ok {
                return Err(format!("`address` must be host:port, got `{}`", t.address));
            }
        }
        Probe::Command(c) => {
            if c.command.trim().is_empty() {
                return Err("`command` is empty".into());
            }
        }
    }
    Ok(())
}
