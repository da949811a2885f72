//! The process's first recorded call panics: the panic must still unwind to
//! the caller and fail the call. Alone in its binary so nothing records
//! before it.
#![deny(warnings)]

use std::panic::catch_unwind;

use monitor_core::{global, monitor_performance};

#[monitor_performance]
fn first_of_all() {
    panic!("first and last")
}

#[test]
fn the_first_call_of_the_process_may_panic() {
    let payload = catch_unwind(first_of_all).unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"first and last"));
    let s = global()
        .function(concat!(module_path!(), "::first_of_all"))
        .unwrap();
    assert_eq!((s.calls, s.failures), (1, 1));
    assert!(s.recent_failures[0].panicked);
    // The hook that captures messages is chained when the first call starts,
    // before its body runs, so even this panic keeps its message.
    assert!(s.recent_failures[0].message.starts_with("first and last"));
}
