//! `threshold_ms`: only calls at or above the threshold are recorded. The
//! thresholds are generous so that a loaded machine does not stretch a
//! short call past them.
#![deny(warnings)]

use std::time::Duration;

use futures_executor::block_on;
use monitor_core::{FunctionStats, global, monitor_performance};

fn stats(name: &str) -> FunctionStats {
    global()
        .function(name)
        .unwrap_or_else(|| panic!("{name} is not listed"))
}

#[monitor_performance(threshold_ms = 100)]
fn maybe_slow(ms: u64) -> Result<u64, String> {
    std::thread::sleep(Duration::from_millis(ms));
    if ms > 1000 {
        return Err(format!("{ms} ms is too slow"));
    }
    Ok(ms)
}

#[test]
fn short_calls_are_skipped_long_ones_recorded() {
    let s = stats(concat!(module_path!(), "::maybe_slow"));
    assert_eq!(s.calls, 0, "listed before any call");
    for _ in 0..5 {
        maybe_slow(0).unwrap();
    }
    maybe_slow(110).unwrap();
    maybe_slow(0).unwrap();
    let s = stats(concat!(module_path!(), "::maybe_slow"));
    assert_eq!((s.calls, s.failures), (1, 0));
    assert!(s.duration_ns.min >= 100_000_000, "{:?}", s.duration_ns);
}

#[monitor_performance(name = "threshold.fails", threshold_ms = 100)]
fn fails_fast_or_slow(ms: u64) -> Result<(), String> {
    std::thread::sleep(Duration::from_millis(ms));
    Err(format!("after {ms} ms"))
}

#[test]
fn short_failures_are_skipped_too() {
    fails_fast_or_slow(0).unwrap_err();
    fails_fast_or_slow(105).unwrap_err();
    let s = stats("threshold.fails");
    assert_eq!((s.calls, s.failures), (1, 1));
    let kept: Vec<_> = s
        .recent_failures
        .iter()
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(kept, ["after 105 ms"]);
}

#[monitor_performance(threshold_ms = 100)]
async fn waits_async(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[test]
fn async_calls_are_judged_on_wall_time() {
    block_on(waits_async(0));
    block_on(waits_async(105));
    let s = stats(concat!(module_path!(), "::waits_async"));
    assert_eq!(s.calls, 1);
}

#[monitor_performance(threshold_ms = 0)]
fn zero_threshold_records_all() {}

#[test]
fn a_zero_threshold_records_every_call() {
    zero_threshold_records_all();
    zero_threshold_records_all();
    assert_eq!(
        stats(concat!(module_path!(), "::zero_threshold_records_all")).calls,
        2
    );
}
