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
//! - [`predict`]: least-squares trends, Holt and Holt-Winters smoothing, z-score anomalies,
//!   robust baselines, trend classification and plain-language
//!   recommendations.
//! - [`backtest`]: synthetic series with known trend, seasonality, noise and
//!   anomalies, and the error measures used to judge forecasts and detectors.

pub mod backtest;
pub mod event;
pub mod healing;
mod intern;
pub mod pattern;
pub mod predict;
mod stats;

pub use event::{Event, EventKind, EventLog, record_agent_task, record_api_request};
pub use healing::{HealingConfig, HealingLog, HealingRecord, HealingReport};
pub use pattern::{Pattern, PatternConfig, PatternKind, PatternLearner};
pub use predict::{
    Anomaly, AnomalyDetector, Baseline, Expected, Forecast, Holt, HoltWinters, LinearFit, Severity,
};
