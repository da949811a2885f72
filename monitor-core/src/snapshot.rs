//! [`Snapshot`]: every function's figures at one moment, serialisable to JSON
//! with stable field names; and the file exports built on it.

use std::io::{self, Write};
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use crate::callsite::{Callsite, CallsiteFigures};
use crate::failure::FailureRecord;
use crate::histogram::Histogram;
use crate::report::{ReportConfig, Warning};
use crate::trend::{self, Direction, Trend};

/// Every function's figures at one moment.
///
/// Serialises as `{"generated_at": .., "allocator": .., "functions": [..],
/// "warnings": [..]}`. Field names are stable; new fields may be added.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// When the snapshot was taken (Unix seconds in JSON).
    #[serde(with = "unix_seconds")]
    pub generated_at: SystemTime,
    /// Whether the counting allocator is installed (and `alloc_bytes` present).
    pub allocator: bool,
    /// One entry per function or named operation, sorted by name.
    pub functions: Vec<FunctionStats>,
    /// What the report warns about, under the registry's thresholds.
    pub warnings: Vec<Warning>,
}

impl Snapshot {
    pub(crate) fn new(
        generated_at: SystemTime,
        functions: Vec<FunctionStats>,
        allocator: bool,
        config: &ReportConfig,
    ) -> Self {
        let warnings = functions
            .iter()
            .flat_map(|f| config.warnings_for(f))
            .collect();
        Self {
            generated_at,
            allocator,
            functions,
            warnings,
        }
    }
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

pub(crate) fn function_stats(
    callsite: &Callsite,
    figures: &CallsiteFigures,
    config: &ReportConfig,
) -> FunctionStats {
    let calls = figures.latency.count();
    let failures = figures.failures.min(calls);
    let (file, line) = callsite.location();
    FunctionStats {
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
        trend: window_trend(&figures.minutes, config),
        recent_failures: figures.failures_kept.clone(),
        latency: figures.latency.clone(),
        alloc: figures.alloc.clone(),
    }
}

/// Mean latency of the recent minutes against the earlier ones.
fn window_trend(minutes: &[(u64, u64)], config: &ReportConfig) -> Trend {
    let t = &config.trend;
    let recent = t.recent_minutes.max(1).min(minutes.len());
    let earlier_end = (recent + t.baseline_minutes).min(minutes.len());
    let total = |w: &[(u64, u64)]| w.iter().fold((0u64, 0u64), |a, b| (a.0 + b.0, a.1 + b.1));
    let (rc, rs) = total(&minutes[..recent]);
    let (ec, es) = total(&minutes[recent..earlier_end]);
    if rc < t.min_samples || ec < t.min_samples {
        return Trend::Stable;
    }
    trend::classify(
        es as f64 / ec as f64,
        rs as f64 / rc as f64,
        Direction::LowerIsBetter,
        t.tolerance,
    )
}

/// Serde helper: a `SystemTime` as fractional Unix seconds.
pub(crate) mod unix_seconds {
    use serde::Serializer;
    use std::time::{SystemTime, UNIX_EPOCH};

    pub fn serialize<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let secs = time
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        s.serialize_f64(secs)
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let context = |step: &str, e: io::Error| {
        let message = format!(
            "cannot write {} ({step} {}): {e}; the previous file is unchanged",
            path.display(),
            tmp.display()
        );
        io::Error::new(e.kind(), message)
    };
    let result = (|| {
        let mut file = std::fs::File::create(&tmp).map_err(|e| context("creating", e))?;
        file.write_all(bytes).map_err(|e| context("writing", e))?;
        file.sync_all().map_err(|e| context("flushing", e))?;
        std::fs::rename(&tmp, path).map_err(|e| context("renaming", e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable; not every platform can open a directory.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes each called function's latency histogram as one tagged interval.
pub(crate) fn write_hdr_log<W: Write>(snapshot: &Snapshot, out: &mut W) -> io::Result<()> {
    use hdrhistogram::serialization::V2DeflateSerializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

    let start = snapshot.generated_at;
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment("monitor-core latency histograms, values in nanoseconds")
        .with_start_time(start)
        .with_base_time(start)
        .with_max_value_divisor(1_000_000.0)
        .begin_log_with(out, &mut serializer)?;
    for function in snapshot.functions.iter().filter(|f| f.calls > 0) {
        let hdr = function.latency.to_hdr();
        // Tags may not contain spaces or commas; map them to underscores.
        let tag: String = function
            .name
            .chars()
            .map(|c| {
                if c.is_whitespace() || c == ',' {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        writer
            .write_histogram(
                &hdr,
                std::time::Duration::ZERO,
                std::time::Duration::ZERO,
                Tag::new(&tag),
            )
            .map_err(|e| io::Error::other(format!("histogram of {}: {e:?}", function.name)))?;
    }
    Ok(())
}
