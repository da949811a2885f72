//! [`Snapshot`]: every function's figures at one moment, serialisable to JSON
//! with stable field names.

use std::time::SystemTime;

use serde::Serialize;

use crate::callsite::{Callsite, CallsiteFigures};
use crate::failure::FailureRecord;
use crate::histogram::Histogram;
use crate::trend::Trend;

/// Every function's figures at one moment.
///
/// Serialises as `{"generated_at": .., "allocator": .., "functions": [..],
/// "warnings": [..]}`. Field names are stable; new fields may be added.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// When the snapshot was taken (Unix seconds in JSON).
    #[serde(with = "crate::clock::unix_seconds")]
    pub generated_at: SystemTime,
    /// Whether the counting allocator is installed (and `alloc_bytes` present).
    pub allocator: bool,
    /// One entry per function or named operation, sorted by name.
    pub functions: Vec<FunctionStats>,
    /// What the report warns about, under the registry's thresholds.
    pub warnings: Vec<Warning>,
}

/// Something in a function's figures that deserves attention.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    /// The function concerned.
    pub function: String,
    /// `slow`, `degrading`, `failing` or `memory`.
    pub kind: &'static str,
    /// A sentence with the figure and the threshold.
    pub message: String,
}

/// Summary figures of a distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Quantiles {
    /// Smallest value (exact).
    pub min: u64,
    /// Largest value (exact).
    pub max: u64,
    /// Arithmetic mean (exact while recording is stopped).
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
}

impl Quantiles {
    /// Summarises a histogram (quantiles within 1.6%, min/max/mean exact).
    pub fn of(h: &Histogram) -> Self {
        // Clamp: a read racing with writers may see a sum ahead of the buckets.
        let mean = if h.count() == 0 {
            0.0
        } else {
            h.mean().clamp(h.min() as f64, h.max() as f64)
        };
        Self {
            min: h.min(),
            max: h.max(),
            mean,
            p50: h.quantile(0.50),
            p90: h.quantile(0.90),
            p95: h.quantile(0.95),
            p99: h.quantile(0.99),
            p999: h.quantile(0.999),
        }
    }
}

/// One function's figures.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionStats {
    /// `module::path::fn`, or the name given to the macro or guard.
    pub name: String,
    /// The module the function is in (empty for named operations).
    pub module_path: String,
    /// Source file (empty for named operations).
    pub file: String,
    /// Source line (0 for named operations).
    pub line: u32,
    /// Recorded calls: successes plus failures (the histogram's count).
    pub calls: u64,
    /// Calls that neither panicked, returned `Err` nor were failed by hand.
    pub successes: u64,
    /// Calls that panicked, returned `Err`, or were failed by hand.
    pub failures: u64,
    /// `successes / calls` in `[0, 1]`; 1 when never called.
    pub success_rate: f64,
    /// Latency in nanoseconds (wall time; for futures, first poll to completion).
    pub duration_ns: Quantiles,
    /// Bytes allocated per call, callees included; absent without the
    /// counting allocator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alloc_bytes: Option<Quantiles>,
    /// Bytes freed during calls, in total; absent without the counting allocator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freed_bytes_total: Option<u64>,
    /// Mean time spent inside polls per completed call (futures only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy_ns_mean: Option<f64>,
    /// Futures dropped before completing (not counted in `calls`).
    pub cancelled: u64,
    /// Calls in the current hour and the 23 before it.
    pub calls_24h: u64,
    /// Mean latency of the recent window against the earlier one.
    pub trend: Trend,
    /// The last few failures, oldest first.
    pub recent_failures: Vec<FailureRecord>,
    /// The latency histogram (ns), for merging and export.
    #[serde(skip)]
    pub latency: Histogram,
    /// The allocation histogram (bytes per call), when counted.
    #[serde(skip)]
    pub alloc: Option<Histogram>,
}

impl FunctionStats {
    /// A callsite's figures, read as `figures`, with the trend judged from them.
    pub(crate) fn new(callsite: &Callsite, figures: &CallsiteFigures, trend: Trend) -> Self {
        let calls = figures.latency.count();
        let failures = figures.failures.min(calls);
        let (file, line) = callsite.location();
        Self {
            name: callsite.name().to_owned(),
            module_path: callsite.module_path().to_owned(),
            file: file.to_owned(),
            line,
            calls,
            successes: calls - failures,
            failures,
            success_rate: if calls == 0 {
                1.0
            } else {
                (calls - failures) as f64 / calls as f64
            },
            duration_ns: Quantiles::of(&figures.latency),
            alloc_bytes: figures.alloc.as_ref().map(Quantiles::of),
            freed_bytes_total: figures.alloc.as_ref().map(|_| figures.freed_bytes),
            busy_ns_mean: (figures.busy_ns > 0 && calls > 0)
                .then(|| figures.busy_ns as f64 / calls as f64),
            cancelled: figures.cancelled,
            calls_24h: figures.calls_24h,
            trend,
            recent_failures: figures.failures_kept.clone(),
            latency: figures.latency.clone(),
            alloc: figures.alloc.clone(),
        }
    }
}
