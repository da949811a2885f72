//! The human report and the warnings it raises, with their thresholds.

use std::fmt;
use std::time::Duration;

use crate::snapshot::{FunctionStats, Snapshot, Warning};
use crate::trend::{self, Direction, Trend};

/// How a function's trend is judged from its minute windows.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendConfig {
    /// Minutes in the recent window (default 5, the current minute included).
    pub recent_minutes: usize,
    /// Minutes before it that form the baseline (default 55).
    pub baseline_minutes: usize,
    /// Relative change of mean latency beyond which the trend is not
    /// `stable` (default 0.05, i.e. +/-5%).
    pub tolerance: f64,
    /// Calls needed in each window before the trend can be anything but
    /// `stable` (default 30).
    pub min_samples: u64,
}

impl Default for TrendConfig {
    fn default() -> Self {
        Self {
            recent_minutes: 5,
            baseline_minutes: 55,
            tolerance: 0.05,
            min_samples: 30,
        }
    }
}

impl TrendConfig {
    /// Judges mean latency over `minutes` (`(calls, latency sum ns)` per
    /// minute, newest first): the recent minutes against the ones before.
    pub(crate) fn judge(&self, minutes: &[(u64, u64)]) -> Trend {
        let recent = self.recent_minutes.max(1).min(minutes.len());
        let earlier_end = (recent + self.baseline_minutes).min(minutes.len());
        let total = |w: &[(u64, u64)]| w.iter().fold((0u64, 0u64), |a, b| (a.0 + b.0, a.1 + b.1));
        let (rc, rs) = total(&minutes[..recent]);
        let (ec, es) = total(&minutes[recent..earlier_end]);
        if rc < self.min_samples || ec < self.min_samples {
            return Trend::Stable;
        }
        trend::classify(
            es as f64 / ec as f64,
            rs as f64 / rc as f64,
            Direction::LowerIsBetter,
            self.tolerance,
        )
    }
}

/// Thresholds of the report's warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportConfig {
    /// Warn when the mean latency is above this (default 1 s).
    pub slow_mean: Duration,
    /// Warn on a `degrading` trend with more than this many calls in 24 h (default 10).
    pub degrading_min_calls_24h: u64,
    /// Warn when the success rate is below this (default 0.95)...
    pub min_success_rate: f64,
    /// ...and the function has more than this many calls (default 5).
    pub success_rate_min_calls: u64,
    /// Warn when the mean allocation per call is above this many bytes (default 100 MB).
    pub max_mean_alloc_bytes: f64,
    /// How trends are judged.
    pub trend: TrendConfig,
}

impl Default for ReportConfig {
    fn default() -> Self {
        Self {
            slow_mean: Duration::from_secs(1),
            degrading_min_calls_24h: 10,
            min_success_rate: 0.95,
            success_rate_min_calls: 5,
            max_mean_alloc_bytes: 100e6,
            trend: TrendConfig::default(),
        }
    }
}

impl ReportConfig {
    /// The warnings that apply to every function of a snapshot.
    pub(crate) fn warnings(&self, functions: &[FunctionStats]) -> Vec<Warning> {
        functions
            .iter()
            .flat_map(|f| self.warnings_for(f))
            .collect()
    }

    /// The warnings that apply to one function.
    pub fn warnings_for(&self, f: &FunctionStats) -> Vec<Warning> {
        let mut out = Vec::new();
        let mut warn = |kind, message| {
            out.push(Warning {
                function: f.name.clone(),
                kind,
                message,
            });
        };
        if f.calls > 0 && f.duration_ns.mean > self.slow_mean.as_nanos() as f64 {
            warn(
                "slow",
                format!(
                    "mean latency {} is above {}",
                    fmt_ns(f.duration_ns.mean),
                    fmt_ns(self.slow_mean.as_nanos() as f64)
                ),
            );
        }
        if f.trend == Trend::Degrading && f.calls_24h > self.degrading_min_calls_24h {
            warn(
                "degrading",
                format!(
                    "latency is degrading (last {} min against the {} min before, {} calls in 24 h)",
                    self.trend.recent_minutes, self.trend.baseline_minutes, f.calls_24h
                ),
            );
        }
        if f.calls > self.success_rate_min_calls && f.success_rate < self.min_success_rate {
            warn(
                "failing",
                format!(
                    "success rate {:.1}% is below {:.1}% ({} of {} calls failed)",
                    f.success_rate * 100.0,
                    self.min_success_rate * 100.0,
                    f.failures,
                    f.calls
                ),
            );
        }
        if let Some(alloc) = &f.alloc_bytes
            && f.calls > 0
            && alloc.mean > self.max_mean_alloc_bytes
        {
            warn(
                "memory",
                format!(
                    "mean allocation {} per call is above {}",
                    fmt_bytes(alloc.mean),
                    fmt_bytes(self.max_mean_alloc_bytes)
                ),
            );
        }
        out
    }
}

/// A text report of a snapshot: one line per function, then warnings and
/// recent failures. Display it with `{}`.
#[derive(Debug, Clone)]
pub struct Report {
    snapshot: Snapshot,
}

impl Report {
    /// A report of `snapshot`.
    pub fn new(snapshot: Snapshot) -> Self {
        Self { snapshot }
    }

    /// The snapshot the report shows.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
}

/// Nanoseconds in the largest unit that keeps the figure readable.
pub fn fmt_ns(ns: f64) -> String {
    match ns {
        n if n >= 1e9 => format!("{:.2} s", n / 1e9),
        n if n >= 1e6 => format!("{:.2} ms", n / 1e6),
        n if n >= 1e3 => format!("{:.2} us", n / 1e3),
        n => format!("{n:.0} ns"),
    }
}

/// Bytes in the largest binary unit that keeps the figure readable.
pub fn fmt_bytes(bytes: f64) -> String {
    match bytes {
        b if b >= 1024.0 * 1024.0 * 1024.0 => format!("{:.1} GiB", b / (1024.0 * 1024.0 * 1024.0)),
        b if b >= 1024.0 * 1024.0 => format!("{:.1} MiB", b / (1024.0 * 1024.0)),
        b if b >= 1024.0 => format!("{:.1} KiB", b / 1024.0),
        b => format!("{b:.0} B"),
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let functions = &self.snapshot.functions;
        let called = functions.iter().filter(|s| s.calls > 0).count();
        writeln!(
            f,
            "Performance report: {} functions, {} called",
            functions.len(),
            called
        )?;
        let width = functions
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(8)
            .clamp(8, 60);
        write!(
            f,
            "{:<width$} {:>9} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "function", "calls", "success", "mean", "p50", "p99", "max", "trend"
        )?;
        if self.snapshot.allocator {
            write!(f, " {:>10}", "alloc/call")?;
        }
        writeln!(f)?;
        for s in functions {
            let name = if s.name.len() > width {
                &s.name[s.name.len() - width..]
            } else {
                &s.name
            };
            if s.calls == 0 {
                writeln!(f, "{name:<width$} {:>9}", 0)?;
                continue;
            }
            let d = &s.duration_ns;
            write!(
                f,
                "{name:<width$} {:>9} {:>7.1}% {:>10} {:>10} {:>10} {:>10} {:>10}",
                s.calls,
                s.success_rate * 100.0,
                fmt_ns(d.mean),
                fmt_ns(d.p50 as f64),
                fmt_ns(d.p99 as f64),
                fmt_ns(d.max as f64),
                s.trend.as_str(),
            )?;
            if let Some(a) = &s.alloc_bytes {
                write!(f, " {:>10}", fmt_bytes(a.mean))?;
            }
            writeln!(f)?;
        }
        if self.snapshot.warnings.is_empty() {
            writeln!(f, "\nNo warnings.")?;
        } else {
            writeln!(f, "\nWarnings:")?;
            for w in &self.snapshot.warnings {
                writeln!(f, "  [{}] {}: {}", w.kind, w.function, w.message)?;
            }
        }
        let failing: Vec<_> = functions
            .iter()
            .filter(|s| !s.recent_failures.is_empty())
            .collect();
        if !failing.is_empty() {
            writeln!(f, "\nRecent failures:")?;
            for s in failing {
                for failure in &s.recent_failures {
                    let kind = if failure.panicked { "panic" } else { "error" };
                    writeln!(f, "  {}: {kind}: {}", s.name, failure.message)?;
                }
            }
        }
        Ok(())
    }
}
