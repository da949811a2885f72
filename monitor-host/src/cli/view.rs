//! The host's `/api/snapshot` as the commands read it: only the fields they show, each with a
//! default, so a newer host with more fields still answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `/api/snapshot`. `host` and `cycles` are required, so that another program's JSON (an
/// application's snapshot, say) is refused instead of read as an empty host.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct HostSnapshot {
    pub host: String,
    pub cycles: u64,
    #[serde(default)]
    pub last_cycle: Option<Cycle>,
    #[serde(default)]
    pub series: Vec<Series>,
    #[serde(default)]
    pub alerts: Vec<Alert>,
    #[serde(default)]
    pub healing: Vec<Heal>,
    #[serde(default)]
    pub plugins: Vec<Plugin>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Cycle {
    pub at_ms: u64,
    pub duration_seconds: f64,
    pub collected: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub timestamp_ms: u64,
    pub points: Vec<(u64, f64)>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Alert {
    pub alert: String,
    pub labels: BTreeMap<String, String>,
    pub state: String,
    pub value: f64,
    pub active_since_ms: Option<u64>,
    pub firing_since_ms: Option<u64>,
    pub resolved_at_ms: Option<u64>,
    pub silenced_by: Vec<String>,
    pub inhibited_by: Vec<String>,
}

impl Alert {
    /// Since when the instance is in its state, when known.
    pub fn since_ms(&self) -> Option<u64> {
        match self.state.as_str() {
            "firing" => self.firing_since_ms,
            "pending" => self.active_since_ms,
            _ => self.resolved_at_ms,
        }
    }

    /// Firing first, then pending, then the rest; by name and labels within.
    pub fn order(&self) -> (u8, &str, &BTreeMap<String, String>) {
        let rank = match self.state.as_str() {
            "firing" => 0,
            "pending" => 1,
            _ => 2,
        };
        (rank, &self.alert, &self.labels)
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Heal {
    pub strategy: String,
    pub alert: String,
    pub labels: BTreeMap<String, String>,
    pub attempt: u32,
    pub success: bool,
    pub message: String,
    pub duration_ms: u64,
    pub started_ms: u64,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Plugin {
    pub kind: String,
    pub name: String,
    pub plugin: String,
    pub version: String,
    pub stats: PluginStats,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct PluginStats {
    pub calls: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub panics: u64,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub stuck: bool,
}

impl Plugin {
    /// `ok`, `failing`, `backed off` or `stuck`, as the host's report says.
    pub fn state(&self) -> &'static str {
        let s = &self.stats;
        if s.stuck {
            "stuck"
        } else if s.consecutive_failures > 1 {
            "backed off"
        } else if s.consecutive_failures == 1 {
            "failing"
        } else {
            "ok"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_application_snapshot_is_not_a_host_snapshot() {
        let app = r#"{"generated_at": 1.0, "allocator": false, "functions": [], "warnings": []}"#;
        assert!(serde_json::from_str::<HostSnapshot>(app).is_err());
        let host = r#"{"host": "h", "cycles": 2, "future_field": [1]}"#;
        assert_eq!(
            serde_json::from_str::<HostSnapshot>(host).unwrap().cycles,
            2
        );
    }
}
