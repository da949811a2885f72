#![deny(warnings)]

use monitor_core::monitor_performance;

#[monitor_performance]
fn no_arguments() {}

#[monitor_performance()]
fn empty_parentheses() {}

#[monitor_performance(name = "pass.named")]
fn named() {}

#[monitor_performance(threshold_ms = 5)]
fn threshold() {}

#[monitor_performance(threshold_ms = 5u64, name = "pass.both",)]
fn both_in_any_order_with_a_trailing_comma() {}

#[monitor_performance(name = r"pass.raw", threshold_ms = 1_000)]
fn raw_string_and_separators() {}

fn main() {
    no_arguments();
    empty_parentheses();
    named();
    threshold();
    both_in_any_order_with_a_trailing_comma();
    raw_string_and_separators();
    let names: Vec<String> = monitor_core::global()
        .snapshot()
        .functions
        .into_iter()
        .map(|f| f.name)
        .collect();
    for name in ["pass.named", "pass.both", "pass.raw"] {
        assert!(names.iter().any(|n| n == name), "{name} missing from {names:?}");
    }
}
