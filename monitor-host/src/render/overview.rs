//! `/api/overview`: what the dashboard's Overview and Alerts pages show, without series points.
//!
//! The snapshot carries [`SNAPSHOT_POINTS`](super::SNAPSHOT_POINTS) points for every series: at
//! 10,000 series, megabytes rendered and parsed every few seconds by each open dashboard. This
//! view is the host's health in a few numbers, the plugins, the alert instances with their rule's
//! severity and text, and the latest healing attempts and events; its size grows with alert
//! instances and plugins, not with series.

use std::path::Path;

use serde::Serialize;

use crate::alert::AlertStatus;
use crate::engine::{CycleStats, Engine, PluginStatus};
use crate::history::{EventRecord, HealRecord};
use crate::incident::api::IncidentView;

/// Most healing attempts, and most events, in the overview (the newest).
pub const OVERVIEW_HISTORY: usize = 200;

/// Most open incidents in the overview (the newest); `/api/incidents` has them all.
pub const OVERVIEW_INCIDENTS: usize = 20;

/// The JSON served at `/api/overview`.
#[derive(Debug, Serialize)]
pub struct Overview<'a> {
    /// Host name.
    pub host: &'a str,
    /// When the host started, ms since epoch.
    pub started_ms: u64,
    /// Cycles run.
    pub cycles: u64,
    /// The last cycle: when it started and ended, how long it took.
    pub last_cycle: Option<&'a CycleStats>,
    /// Series held in memory.
    pub series: usize,
    /// Bytes of the store's files on disk (the database and its journal); absent without a
    /// store.
    pub store_bytes: Option<u64>,
    /// Cycles whose write to the store failed, each retry counted; absent without a store.
    pub store_write_errors: Option<u64>,
    /// Cycles in a row, up to the last one, whose write to the store failed.
    pub store_consecutive_write_failures: u32,
    /// Why `/healthz` fails although cycles run, if it does.
    pub trouble: Option<String>,
    /// Plugin instances with their health (state, last error).
    pub plugins: Vec<PluginStatus>,
    /// Alert instances, with what their rule says.
    pub alerts: Vec<OverviewAlert<'a>>,
    /// The latest healing attempts, oldest first.
    pub healing: Vec<&'a HealRecord>,
    /// The latest events, oldest first.
    pub events: Vec<&'a EventRecord>,
    /// Incidents not resolved, newest first (at most 20), without timelines.
    pub incidents: Vec<IncidentView>,
}

/// An alert instance and its rule's severity, description and metric.
#[derive(Debug, Serialize)]
pub struct OverviewAlert<'a> {
    /// The instance: rule name, labels, state, value, since when.
    #[serde(flatten)]
    pub status: &'a AlertStatus,
    /// The rule's severity (absent when the rule is gone, after a reload).
    pub severity: Option<&'static str>,
    /// The rule's text.
    pub description: Option<&'a str>,
    /// The metric the rule watches.
    pub metric: Option<&'a str>,
}

/// Builds the overview.
pub fn overview(engine: &Engine) -> Overview<'_> {
    let rules = engine.alerts().rules();
    let alerts = engine
        .alerts()
        .statuses()
        .map(|status| {
            let rule = rules.iter().find(|r| r.name == status.alert);
            OverviewAlert {
                status,
                severity: rule.map(|r| r.severity.as_str()),
                description: rule.map(|r| r.description.as_str()),
                metric: rule.map(|r| r.metric.as_str()),
            }
        })
        .collect();
    Overview {
        host: &engine.host().name,
        started_ms: engine.started_ms(),
        cycles: engine.cycles(),
        last_cycle: engine.last_cycle(),
        series: engine.store().len(),
        store_bytes: engine.store_path().map(store_bytes),
        store_write_errors: engine.store_writes().map(|w| w.errors_total),
        store_consecutive_write_failures: engine.store_write_failures(),
        trouble: super::trouble(engine),
        plugins: engine.plugins(),
        alerts,
        healing: newest(engine.healing()),
        events: newest(engine.events()),
        incidents: (engine.incidents().iter())
            .filter(|i| i.resolved_ms.is_none())
            .take(OVERVIEW_INCIDENTS)
            .map(|i| IncidentView::new(i, false))
            .collect(),
    }
}

/// The last [`OVERVIEW_HISTORY`] items of `items`, oldest first.
fn newest<T>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut all: Vec<T> = items.collect();
    let skip = all.len().saturating_sub(OVERVIEW_HISTORY);
    all.drain(..skip);
    all
}

/// The overview as JSON text.
pub fn overview_json(engine: &Engine) -> String {
    serde_json::to_string(&overview(engine)).expect("overviews always serialise")
}

/// The size of the database file `db` and of the files beside it whose name starts with its
/// name (`monitor.db-wal`, `monitor.db-shm`).
fn store_bytes(db: &Path) -> u64 {
    let (Some(dir), Some(name)) = (db.parent(), db.file_name()) else {
        return 0;
    };
    let name = name.to_string_lossy();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(name.as_ref()))
        .filter_map(|e| e.metadata().ok())
        .filter(std::fs::Metadata::is_file)
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::Value;

    fn engine(data_dir: Option<&Path>) -> Engine {
        // An alert on the host's own cycle time, which fires in the first cycle.
        let text = "[host]\nname = \"h\"\ninterval = \"1h\"\nlisten = \"off\"\n\n\
                    [[alert]]\nname = \"slow\"\nmetric = \"monitor.host.cycle_duration_seconds\"\n\
                    condition = \"above\"\nthreshold = -1.0\nseverity = \"critical\"\n\
                    description = \"cycles take time\"\n";
        let config = Config::from_str(text, "monitor.toml", Path::new("/etc/monitor")).unwrap();
        // SAFETY: the config names no library.
        let mut engine = unsafe { Engine::load(&config) }.unwrap();
        if let Some(dir) = data_dir {
            engine.load_history(dir, crate::engine::now_ms()).unwrap();
        }
        engine.cycle(crate::engine::now_ms());
        engine
    }

    #[test]
    fn overview_has_health_alerts_with_their_rule_and_no_points() {
        let engine = engine(None);
        let v: Value = serde_json::from_str(&overview_json(&engine)).unwrap();
        assert_eq!(v["host"], "h");
        assert_eq!(v["cycles"], 1);
        assert!(v["last_cycle"]["duration_seconds"].is_f64(), "{v}");
        assert_eq!(v["series"].as_u64(), Some(engine.store().len() as u64));
        assert!(v["series"].as_u64().unwrap() >= 1, "{v}");
        // No store: no size and no write errors, rather than zeros.
        assert!(
            v["store_bytes"].is_null() && v["store_write_errors"].is_null(),
            "{v}"
        );
        assert_eq!(v["store_consecutive_write_failures"], 0);
        let alerts = v["alerts"].as_array().unwrap();
        assert_eq!(alerts.len(), 1, "{v}");
        let a = &alerts[0];
        assert_eq!(a["alert"], "slow");
        assert_eq!(a["state"], "firing");
        assert_eq!(a["severity"], "critical");
        assert_eq!(a["description"], "cycles take time");
        assert_eq!(a["metric"], "monitor.host.cycle_duration_seconds");
        assert_eq!(a["labels"]["collector"], "host");
        assert!(a["firing_since_ms"].is_u64(), "{a}");
        assert!(v["plugins"].as_array().unwrap().is_empty());
        let text = overview_json(&engine);
        assert!(!text.contains("\"points\""), "{text}");
    }

    #[test]
    fn overview_counts_the_store_files_on_disk() {
        let dir = std::env::temp_dir().join(format!("monitor-overview-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let engine = engine(Some(&dir));
        let db = engine.store_path().unwrap().to_owned();
        // Another file in the directory is not the store's.
        std::fs::write(dir.join("other"), vec![0u8; 12345]).unwrap();
        let expected: u64 = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name() != "other")
            .map(|e| e.metadata().unwrap().len())
            .sum();
        let o = overview(&engine);
        assert!(db.metadata().unwrap().len() > 0);
        assert_eq!(o.store_bytes, Some(expected));
        assert_eq!(o.store_write_errors, Some(0));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn store_bytes_of_a_missing_store_is_zero() {
        assert_eq!(store_bytes(Path::new("/nonexistent/dir/monitor.db")), 0);
        assert_eq!(store_bytes(Path::new("/")), 0);
    }

    #[test]
    fn newest_keeps_the_last_items_in_order() {
        let n = OVERVIEW_HISTORY + 5;
        let kept = newest(0..n);
        assert_eq!(kept.len(), OVERVIEW_HISTORY);
        assert_eq!(kept.first(), Some(&5));
        assert_eq!(kept.last(), Some(&(n - 1)));
        assert_eq!(newest(0..3), vec![0, 1, 2]);
    }
}
