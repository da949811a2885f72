//! Panics: the call fails, the panic goes on unchanged, its message is kept.
#![deny(warnings)]

use std::panic::{catch_unwind, panic_any};

use monitor_core::{FunctionStats, global, monitor_performance};

fn stats(name: &str) -> FunctionStats {
    global()
        .function(name)
        .unwrap_or_else(|| panic!("{name} is not listed"))
}

/// monitor-core installs the hook that captures panic messages on a
/// thread's first recorded call; each test records one first (see
/// `first_call_panics.rs` for a first call that panics).
#[monitor_performance]
fn warm_up() {}

#[monitor_performance]
fn divide(a: u32, b: u32) -> u32 {
    if b == 0 {
        panic!("division of {a} by zero");
    }
    a / b
}

#[test]
fn a_panic_fails_the_call_and_propagates_unchanged() {
    warm_up();
    assert_eq!(divide(6, 3), 2);
    let payload = catch_unwind(|| divide(1, 0)).unwrap_err();
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("division of 1 by zero")
    );
    let s = stats(concat!(module_path!(), "::divide"));
    assert_eq!((s.calls, s.successes, s.failures), (2, 1, 1));
    let failure = &s.recent_failures[0];
    assert!(failure.panicked);
    assert!(
        failure.message.starts_with("division of 1 by zero"),
        "{}",
        failure.message
    );
}

#[derive(Debug, PartialEq)]
struct Custom(u32);

#[monitor_performance]
fn panics_with_a_value() {
    panic_any(Custom(42));
}

#[test]
fn non_string_payloads_propagate_unchanged() {
    warm_up();
    let payload = catch_unwind(panics_with_a_value).unwrap_err();
    assert_eq!(payload.downcast_ref::<Custom>(), Some(&Custom(42)));
    let s = stats(concat!(module_path!(), "::panics_with_a_value"));
    assert_eq!((s.calls, s.failures), (1, 1));
    assert!(s.recent_failures[0].panicked);
}

#[monitor_performance]
fn inner_panics(n: u32) -> u32 {
    panic!("inner panic with {n}")
}

#[monitor_performance]
fn calls_a_panicking_fn(n: u32) -> Result<u32, String> {
    Ok(inner_panics(n))
}

#[test]
fn every_instrumented_frame_a_panic_crosses_fails() {
    warm_up();
    catch_unwind(|| calls_a_panicking_fn(3)).unwrap_err();
    let s = stats(concat!(module_path!(), "::calls_a_panicking_fn"));
    assert_eq!((s.calls, s.failures), (1, 1));
    assert!(
        s.recent_failures[0]
            .message
            .starts_with("inner panic with 3")
    );
    let s = stats(concat!(module_path!(), "::inner_panics"));
    assert_eq!((s.calls, s.failures), (1, 1));
}

#[monitor_performance]
fn catches_inside() -> u32 {
    catch_unwind(|| panic!("caught")).unwrap_or(0)
}

#[test]
fn a_panic_caught_inside_the_body_does_not_fail_the_call() {
    warm_up();
    assert_eq!(catches_inside(), 0);
    let s = stats(concat!(module_path!(), "::catches_inside"));
    assert_eq!((s.calls, s.failures), (1, 0));
}

struct Fragile;

impl Fragile {
    #[monitor_performance(name = "panics.Fragile::poke")]
    fn poke(&mut self) -> &mut Self {
        panic!("poked")
    }
}

#[test]
fn methods_too() {
    warm_up();
    catch_unwind(|| {
        Fragile.poke();
    })
    .unwrap_err();
    let s = stats("panics.Fragile::poke");
    assert_eq!((s.calls, s.failures), (1, 1));
    assert!(s.recent_failures[0].message.starts_with("poked"));
}
