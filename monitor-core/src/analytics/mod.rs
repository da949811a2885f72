//! Analytics over what the monitor records: event streams, healing attempts and
//! metric series.
//!
//! Everything here is pure and deterministic given its inputs: timestamps are
//! passed in (milliseconds since the Unix epoch, UTC), and only the thin
//! `record_*` convenience functions read the system clock. Every type is
//! `Send + Sync`; the shared sinks ([`EventLog`]) lock internally, the learners
//! and logs take `&mut self` to record and `&self` to analyse, so several
//! threads can share one behind a `Mutex`.
//!
//! - [`event`]: the typed [`Event`] record, the bounded shared [`EventLog`] and
//!   the `record_api_request` / `record_agent_task` helpers.
//! - [`pattern`]: the [`PatternLearner`] (sequence, frequency, correlation and
//!   temporal patterns), linear or `n log n` in the history it keeps.
//! - [`healing`]: healing records and their analysis ([`HealingLog`],
//!   [`HealingReport`]).
//! - [`predict`]: least-squares trends, Holt and Holt-Winters smoothing,
//!   z-score anomalies, robust baselines, trend classification and
//!   plain-language recommendations.
//! - [`backtest`]: synthetic series with known trend, seasonality, noise and
//!   anomalies, and the error measures used to judge forecasts and detectors.
//!
//! ```
//! use monitor_core::analytics::healing::{HealingConfig, HealingLog, HealingRecord};
//! use monitor_core::analytics::predict::{SeriesRules, analyze_series};
//! use monitor_core::analytics::{Event, PatternLearner};
//!
//! // Patterns in an event stream: thirty runs of a two-step task.
//! let mut learner = PatternLearner::default();
//! for i in 0..30u64 {
//!     let t = i * 60_000;
//!     learner.record_event(&Event::new("task_start", t).with_agent("a1"));
//!     learner.record_event(&Event::new("task_complete", t + 800).with_agent("a1"));
//! }
//! let patterns = learner.learn_patterns();
//! assert!(patterns.iter().any(|p| p.events == ["task_start", "task_complete"]));
//!
//! // Healing analytics.
//! let mut log = HealingLog::new(HealingConfig::default());
//! log.record(&HealingRecord {
//!     strategy: "restart".into(),
//!     failure_type: "timeout".into(),
//!     source: "api".into(),
//!     detected_at_ms: 1_000,
//!     action_started_ms: 2_000,
//!     action_ended_ms: 5_000,
//!     success: true,
//!     recovered_at_ms: Some(9_000),
//!     attempt: 1,
//! });
//! let report = log.report(10_000, None);
//! assert_eq!(report.overall.mttr_ms, Some(8_000.0));
//! assert!(report.to_json().contains("\"recent_timeline\""));
//!
//! // A series heading for its limit.
//! let ts: Vec<u64> = (0..60u64).map(|i| i * 60_000).collect();
//! let cpu: Vec<f64> = (0..60).map(|i| 50.0 + 0.4 * i as f64).collect();
//! let rules = SeriesRules::new("CPU usage", "%").with_limit(90.0);
//! let analysis = analyze_series(&ts, &cpu, &rules);
//! assert!(analysis.recommendations[0].starts_with("CPU usage forecast to reach 97.6% in 1.0 h"));
//! ```

pub mod backtest;
pub mod event;
pub mod healing;
mod intern;
pub mod pattern;
pub mod predict;
mod stats;

pub use event::{Event, EventKind, EventLog, record_agent_task, record_api_request};
pub use healing::{HealingConfig, HealingLog, HealingRecord, HealingReport};
pub use pattern::{Pattern, PatternConfig, PatternKind, PatternLearner, TemporalBaseline};
pub use predict::{
    Anomaly, AnomalyDetector, Baseline, Expected, Forecast, Holt, HoltWinters, LinearFit, Severity,
};
