//! Exact per-function latency, allocation and success figures for Rust
//! programs, at a cost of nanoseconds per call.
//!
//! Put [`#[monitor_performance]`](monitor_performance) on a function, or hold a
//! [`guard`], and read the figures from [`global()`]: a [`Snapshot`], a text
//! [`report`](Registry::report), a JSON export or a Prometheus exposition.
//!
//! ```
//! use monitor_core::monitor_performance;
//!
//! #[monitor_performance]
//! fn parse(input: &str) -> Result<u32, std::num::ParseIntError> {
//!     input.parse()
//! }
//!
//! parse("42").unwrap();
//! parse("x").unwrap_err();
//! let stats = monitor_core::global().function(concat!(module_path!(), "::parse")).unwrap();
//! assert_eq!((stats.calls, stats.failures), (2, 1));
//! ```
//!
//! Features: `analytics` (default) adds [`analytics`]; `http` adds
//! [`exposition`] (the registry over HTTP) and the [`http`] server it runs on.
#![deny(missing_docs)]

mod alloc;
#[cfg(feature = "analytics")]
pub mod analytics;
mod callsite;
mod clock;
mod export;
#[cfg(feature = "http")]
pub mod exposition;
mod failure;
mod guard;
mod histogram;
#[cfg(feature = "http")]
pub mod http;
mod name;
mod panic;
pub mod prometheus;
mod registry;
mod report;
mod snapshot;
pub mod trend;

#[doc(hidden)]
pub mod __private;

pub use alloc::CountingAllocator;
pub use callsite::{Callsite, EXCLUSIVE_SLOTS, FAILURES_KEPT};
pub use failure::FailureRecord;
pub use guard::{Guard, Instrumented, is_enabled, set_enabled};
pub use histogram::Histogram;
pub use monitor_macros::monitor_performance;
pub use registry::{Registry, global, guard, init};
pub use report::{Report, ReportConfig, TrendConfig};
pub use snapshot::{FunctionStats, Quantiles, Snapshot, Warning};
pub use trend::{Direction, Trend};

/// The README's Rust examples, compiled and run as doctests so they stay true.
#[cfg(all(doctest, feature = "analytics"))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
