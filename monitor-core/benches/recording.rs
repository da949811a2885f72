//! Cost of recording one call: the instrumented function against a bare
//! call, the floor of two `std::time::Instant::now()` reads, the `metrics`
//! crate and `autometrics`, on one thread and on two threads calling the
//! same function. Prints a table of ratios to the floor at the end.
//!
//! Run: `cargo bench -p monitor-core --bench recording`

mod support;

use std::hint::black_box;
use std::time::Instant;

use monitor_core::monitor_performance;
use support::{criterion, print_table, single, two_threads, work};

#[monitor_performance(name = "bench.instrumented")]
fn instrumented(x: u64) -> u64 {
    work(x)
}

#[monitor_performance(name = "bench.off")]
fn instrumented_off(x: u64) -> u64 {
    work(x)
}

#[autometrics::autometrics]
fn autometrics_work(x: u64) -> u64 {
    work(x)
}

fn main() {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("install the Prometheus recorder");
    let histogram = metrics::histogram!("bench_metrics_seconds");
    let mut c = criterion();

    single(&mut c, "recording/bare", |i| {
        black_box(work(i));
    });
    single(&mut c, "recording/floor_instant_pair", |i| {
        let start = Instant::now();
        black_box(work(i));
        black_box(start.elapsed());
    });
    single(&mut c, "recording/macro", |i| {
        black_box(instrumented(i));
    });
    single(&mut c, "recording/guard_named", |i| {
        let _g = monitor_core::guard("bench.guard");
        black_box(work(i));
    });
    monitor_core::set_enabled(false);
    single(&mut c, "recording/macro_switched_off", |i| {
        black_box(instrumented_off(i));
    });
    monitor_core::set_enabled(true);
    single(&mut c, "recording/metrics_histogram", |i| {
        let start = Instant::now();
        black_box(work(i));
        histogram.record(start.elapsed());
    });
    single(&mut c, "recording/autometrics", |i| {
        black_box(autometrics_work(i));
    });

    two_threads(&mut c, "recording/2_threads/floor_instant_pair", |i| {
        let start = Instant::now();
        black_box(work(i));
        black_box(start.elapsed());
    });
    two_threads(&mut c, "recording/2_threads/macro", |i| {
        black_box(instrumented(i));
    });
    two_threads(&mut c, "recording/2_threads/metrics_histogram", |i| {
        let start = Instant::now();
        black_box(work(i));
        histogram.record(start.elapsed());
    });

    c.final_summary();
    print_table("Recording cost", "recording/floor_instant_pair");
    let off = support::result("recording/macro_switched_off") - support::result("recording/bare");
    println!("switched off: {off:+.1} ns against a bare call");
    let metrics =
        support::result("recording/metrics_histogram") / support::result("recording/macro");
    let auto = support::result("recording/autometrics") / support::result("recording/macro");
    println!("macro is {metrics:.1}x cheaper than metrics, {auto:.1}x cheaper than autometrics");
    let single = monitor_core::global()
        .function("bench.instrumented")
        .map_or(0, |f| f.calls);
    println!("(bench.instrumented recorded {single} calls)");
}
