//! Prometheus text exposition (format 0.0.4) of a snapshot.

use std::io::{self, Write};

use crate::histogram::Histogram;
use crate::snapshot::Snapshot;

/// Latency bucket bounds, seconds.
const LATENCY_LE: [f64; 25] = [
    1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3,
    5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Allocation bucket bounds, bytes.
const ALLOC_LE: [f64; 13] = [
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262144.0,
    1048576.0,
    4194304.0,
    16777216.0,
    67108864.0,
    268435456.0,
    1073741824.0,
];

/// Escapes a label value: backslash, double quote and line feed.
pub(crate) fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn write_histogram<W: Write>(
    out: &mut W,
    family: &str,
    label: &str,
    h: &Histogram,
    bounds: &[f64],
    scale: f64,
) -> io::Result<()> {
    for le in bounds {
        let count = h.count_at_or_below((le / scale).round() as u64);
        writeln!(
            out,
            "{family}_bucket{{function=\"{label}\",le=\"{le}\"}} {count}"
        )?;
    }
    writeln!(
        out,
        "{family}_bucket{{function=\"{label}\",le=\"+Inf\"}} {}",
        h.count()
    )?;
    writeln!(
        out,
        "{family}_sum{{function=\"{label}\"}} {}",
        h.sum() as f64 * scale
    )?;
    writeln!(out, "{family}_count{{function=\"{label}\"}} {}", h.count())
}

pub(crate) fn write<W: Write>(snapshot: &Snapshot, out: &mut W) -> io::Result<()> {
    let functions = &snapshot.functions;
    let labels: Vec<String> = functions.iter().map(|f| escape_label(&f.name)).collect();

    writeln!(
        out,
        "# HELP monitor_function_calls_total Completed calls of an instrumented function."
    )?;
    writeln!(out, "# TYPE monitor_function_calls_total counter")?;
    for (f, l) in functions.iter().zip(&labels) {
        writeln!(
            out,
            "monitor_function_calls_total{{function=\"{l}\"}} {}",
            f.calls
        )?;
    }
    writeln!(
        out,
        "# HELP monitor_function_failures_total Calls that panicked, returned Err or were failed by hand."
    )?;
    writeln!(out, "# TYPE monitor_function_failures_total counter")?;
    for (f, l) in functions.iter().zip(&labels) {
        writeln!(
            out,
            "monitor_function_failures_total{{function=\"{l}\"}} {}",
            f.failures
        )?;
    }
    writeln!(
        out,
        "# HELP monitor_function_cancelled_total Futures dropped before completion."
    )?;
    writeln!(out, "# TYPE monitor_function_cancelled_total counter")?;
    for (f, l) in functions.iter().zip(&labels) {
        writeln!(
            out,
            "monitor_function_cancelled_total{{function=\"{l}\"}} {}",
            f.cancelled
        )?;
    }
    writeln!(
        out,
        "# HELP monitor_function_success_ratio Successes over calls (1 when never called)."
    )?;
    writeln!(out, "# TYPE monitor_function_success_ratio gauge")?;
    for (f, l) in functions.iter().zip(&labels) {
        writeln!(
            out,
            "monitor_function_success_ratio{{function=\"{l}\"}} {}",
            f.success_rate
        )?;
    }
    writeln!(
        out,
        "# HELP monitor_function_duration_seconds Latency of completed calls."
    )?;
    writeln!(out, "# TYPE monitor_function_duration_seconds histogram")?;
    for (f, l) in functions.iter().zip(&labels) {
        write_histogram(
            out,
            "monitor_function_duration_seconds",
            l,
            &f.latency,
            &LATENCY_LE,
            1e-9,
        )?;
    }
    writeln!(
        out,
        "# HELP monitor_function_latency_seconds Latency quantiles of completed calls (within 1.6%)."
    )?;
    writeln!(out, "# TYPE monitor_function_latency_seconds summary")?;
    for (f, l) in functions.iter().zip(&labels).filter(|(f, _)| f.calls > 0) {
        let d = &f.duration_ns;
        for (q, v) in [
            ("0.5", d.p50),
            ("0.9", d.p90),
            ("0.95", d.p95),
            ("0.99", d.p99),
            ("0.999", d.p999),
        ] {
            writeln!(
                out,
                "monitor_function_latency_seconds{{function=\"{l}\",quantile=\"{q}\"}} {}",
                v as f64 * 1e-9
            )?;
        }
        writeln!(
            out,
            "monitor_function_latency_seconds_sum{{function=\"{l}\"}} {}",
            f.latency.sum() as f64 * 1e-9
        )?;
        writeln!(
            out,
            "monitor_function_latency_seconds_count{{function=\"{l}\"}} {}",
            f.calls
        )?;
    }
    if snapshot.allocator {
        writeln!(
            out,
            "# HELP monitor_function_alloc_bytes Bytes allocated per call, callees included."
        )?;
        writeln!(out, "# TYPE monitor_function_alloc_bytes histogram")?;
        for (f, l) in functions.iter().zip(&labels) {
            let empty = Histogram::new();
            let h = f.alloc.as_ref().unwrap_or(&empty);
            write_histogram(out, "monitor_function_alloc_bytes", l, h, &ALLOC_LE, 1.0)?;
        }
    }
    writeln!(
        out,
        "# HELP monitor_function_calls_24h Calls in the current hour and the 23 before it."
    )?;
    writeln!(out, "# TYPE monitor_function_calls_24h gauge")?;
    for (f, l) in functions.iter().zip(&labels) {
        writeln!(
            out,
            "monitor_function_calls_24h{{function=\"{l}\"}} {}",
            f.calls_24h
        )?;
    }
    writeln!(
        out,
        "# HELP monitor_function_trend Latency trend: -1 improving, 0 stable, 1 degrading."
    )?;
    writeln!(out, "# TYPE monitor_function_trend gauge")?;
    for (f, l) in functions.iter().zip(&labels) {
        let v = match f.trend {
            crate::Trend::Improving => -1,
            crate::Trend::Stable => 0,
            crate::Trend::Degrading => 1,
        };
        writeln!(out, "monitor_function_trend{{function=\"{l}\"}} {v}")?;
    }
    Ok(())
}
