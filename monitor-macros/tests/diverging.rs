//! `-> !` and bodies that diverge: they end by panicking (a failure) or
//! never; nothing in the expansion may warn about unreachable code.
#![deny(warnings)]

use std::convert::Infallible;
use std::panic::catch_unwind;

use monitor_core::{FunctionStats, global, monitor_performance};

fn stats(name: &str) -> FunctionStats {
    global()
        .function(name)
        .unwrap_or_else(|| panic!("{name} is not listed"))
}

#[monitor_performance]
fn warm_up() {}

#[monitor_performance]
fn never_returns(reason: &str) -> ! {
    panic!("gave up: {reason}")
}

#[monitor_performance]
fn loops_until_it_panics(limit: u32) -> ! {
    let mut n = 0;
    loop {
        n += 1;
        if n == limit {
            panic!("reached {n}");
        }
    }
}

#[test]
fn never_returning_functions_fail_when_they_panic() {
    warm_up();
    catch_unwind(|| never_returns("test")).unwrap_err();
    catch_unwind(|| loops_until_it_panics(3)).unwrap_err();
    let s = stats(concat!(module_path!(), "::never_returns"));
    assert_eq!((s.calls, s.failures), (1, 1));
    assert!(s.recent_failures[0].message.starts_with("gave up: test"));
    let s = stats(concat!(module_path!(), "::loops_until_it_panics"));
    assert_eq!((s.calls, s.failures), (1, 1));
}

#[monitor_performance]
fn value_type_diverging_body() -> u32 {
    unimplemented!("later")
}

#[monitor_performance]
fn unit_diverging_body() {
    todo!()
}

#[monitor_performance]
fn uninhabited() -> Infallible {
    panic!("cannot make one")
}

#[monitor_performance]
fn result_with_uninhabited_error(n: u32) -> Result<u32, Infallible> {
    Ok(n)
}

#[test]
fn diverging_bodies_of_any_return_type() {
    warm_up();
    catch_unwind(value_type_diverging_body).unwrap_err();
    catch_unwind(unit_diverging_body).unwrap_err();
    catch_unwind(uninhabited).unwrap_err();
    assert_eq!(result_with_uninhabited_error(1), Ok(1));
    for name in [
        "value_type_diverging_body",
        "unit_diverging_body",
        "uninhabited",
    ] {
        let s = stats(&format!("{}::{name}", module_path!()));
        assert_eq!((s.calls, s.failures), (1, 1), "{name}");
    }
    let s = stats(concat!(module_path!(), "::result_with_uninhabited_error"));
    assert_eq!((s.calls, s.failures), (1, 0));
}

#[monitor_performance]
async fn async_never(reason: &'static str) -> ! {
    panic!("{reason}")
}

#[monitor_performance]
async fn async_uninhabited_error() -> Result<u8, Infallible> {
    Ok(1)
}

#[test]
fn async_diverging_functions() {
    warm_up();
    catch_unwind(|| futures_executor::block_on(async_never("async gave up"))).unwrap_err();
    let s = stats(concat!(module_path!(), "::async_never"));
    assert_eq!((s.calls, s.failures), (1, 1));
    assert_eq!(futures_executor::block_on(async_uninhabited_error()), Ok(1));
}

#[monitor_performance]
async fn async_unit_diverging() {
    panic!("unit")
}

#[test]
fn async_unit_functions_with_diverging_bodies() {
    warm_up();
    catch_unwind(|| futures_executor::block_on(async_unit_diverging())).unwrap_err();
    let s = stats(concat!(module_path!(), "::async_unit_diverging"));
    assert_eq!((s.calls, s.failures), (1, 1));
}
