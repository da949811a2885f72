//! `log` notifier: one structured line per notification, to stderr or appended to a file.
//!
//! Config: `path` (file to append to; stderr when absent), `format` (`"json"`, the default, or
//! `"text"`).

use std::io::Write as _;
use std::path::PathBuf;

use monitor_plugin::{AlertNotifier, Notification, NotificationStatus, PluginError, parse_config};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Format {
    #[default]
    Json,
    Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    path: Option<PathBuf>,
    #[serde(default)]
    format: Format,
}

#[derive(Default)]
struct LogNotifier {
    settings: Settings,
}

fn line(n: &Notification, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string(n).unwrap_or_default(),
        Format::Text => {
            let status = match (n.status, n.escalation) {
                (_, true) => "ESCALATED",
                (NotificationStatus::Firing, _) => "FIRING",
                (NotificationStatus::Resolved, _) => "RESOLVED",
            };
            let labels: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            // A stale resolution's value is the last one seen, not a current reading.
            let stale = if n.stale { " stale=true" } else { "" };
            format!(
                "{status} {} severity={} metric={} value={}{stale} {} {} labels=[{}] host={} {}",
                n.alert,
                n.severity,
                n.metric,
                n.value,
                n.condition,
                n.threshold,
                labels.join(","),
                n.host,
                n.description
            )
        }
    }
}

impl AlertNotifier for LogNotifier {
    fn configure(&mut self, config: &serde_json::Value) -> Result<(), PluginError> {
        self.settings = parse_config(config)?;
        if let Some(p) = &self.settings.path {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("cannot open `{}` for appending: {e}", p.display()))?;
        }
        Ok(())
    }

    fn notify(&mut self, n: &Notification) -> Result<(), PluginError> {
        let text = line(n, self.settings.format);
        match &self.settings.path {
            Some(p) => {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?;
                writeln!(f, "{text}")?;
            }
            None => eprintln!("{text}"),
        }
        Ok(())
    }
}

monitor_plugin::export_plugin!(notifier "log" => LogNotifier);
