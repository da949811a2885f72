//! `#[track_caller]` functions keep reporting their caller's location.
#![deny(warnings)]

use std::panic::Location;

use monitor_core::{FunctionStats, global, monitor_performance};

fn stats(name: &str) -> FunctionStats {
    global()
        .function(name)
        .unwrap_or_else(|| panic!("{name} is not listed"))
}

#[monitor_performance]
#[track_caller]
fn caller_line() -> u32 {
    Location::caller().line()
}

#[monitor_performance]
#[track_caller]
fn checked(value: u32) -> Result<u32, String> {
    if value == 0 {
        return Err("zero".to_owned());
    }
    Ok(value)
}

#[test]
fn the_caller_location_is_kept() {
    let line = line!() + 1;
    assert_eq!(caller_line(), line);
    assert_eq!(stats(concat!(module_path!(), "::caller_line")).calls, 1);
}

#[test]
fn returned_errors_are_not_judged_for_track_caller_functions() {
    // Documented limitation: judging the value would need a closure, which
    // would hide the caller's location.
    assert!(checked(0).is_err());
    assert_eq!(checked(1), Ok(1));
    let s = stats(concat!(module_path!(), "::checked"));
    assert_eq!((s.calls, s.failures), (2, 0));
}
