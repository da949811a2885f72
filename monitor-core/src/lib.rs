//! Exact per-function latency, allocation and success figures for Rust programs.
#![deny(missing_docs)]

pub mod plugin;
pub mod trend;

pub use monitor_macros::monitor_performance;
pub use trend::{Direction, Trend};
