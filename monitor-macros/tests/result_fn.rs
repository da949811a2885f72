//! Functions returning `Result`: `Err` fails the call, with the error's text;
//! `return` and `?` in the body are judged like the final value.
#![deny(warnings)]

use std::fmt;
use std::num::ParseIntError;

use monitor_core::{FunctionStats, global, monitor_performance};

fn stats(name: &str) -> FunctionStats {
    global()
        .function(name)
        .unwrap_or_else(|| panic!("{name} is not listed"))
}

fn messages(s: &FunctionStats) -> Vec<&str> {
    s.recent_failures
        .iter()
        .map(|f| f.message.as_str())
        .collect()
}

#[derive(Debug, PartialEq)]
enum ConfigError {
    Missing(&'static str),
    Number(ParseIntError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Missing(key) => write!(f, "missing key {key}"),
            ConfigError::Number(e) => write!(f, "not a number: {e}"),
        }
    }
}

impl From<ParseIntError> for ConfigError {
    fn from(e: ParseIntError) -> Self {
        ConfigError::Number(e)
    }
}

#[monitor_performance]
fn port(value: Option<&str>) -> Result<u16, ConfigError> {
    let Some(value) = value else {
        return Err(ConfigError::Missing("port"));
    };
    if value == "default" {
        return Ok(8080);
    }
    let port = value.parse::<u16>()?;
    Ok(port)
}

#[test]
fn err_from_return_and_question_mark_fails_with_display_text() {
    assert_eq!(port(Some("80")), Ok(80));
    assert_eq!(port(Some("default")), Ok(8080));
    assert_eq!(port(None), Err(ConfigError::Missing("port")));
    assert!(port(Some("x")).is_err());
    let s = stats(concat!(module_path!(), "::port"));
    assert_eq!((s.calls, s.successes, s.failures), (4, 2, 2));
    assert_eq!(s.success_rate, 0.5);
    assert_eq!(
        messages(&s),
        [
            "missing key port",
            "not a number: invalid digit found in string"
        ]
    );
    assert!(s.recent_failures.iter().all(|f| !f.panicked));
}

#[derive(Debug)]
struct OnlyDebug {
    code: u8,
}

#[monitor_performance]
fn debug_only(code: u8) -> Result<(), OnlyDebug> {
    if code != 0 {
        Err(OnlyDebug { code })?;
    }
    Ok(())
}

struct Opaque;

#[monitor_performance]
fn opaque() -> Result<u8, Opaque> {
    Err(Opaque)
}

#[test]
fn errors_without_display_use_debug_or_nothing() {
    debug_only(0).unwrap();
    assert_eq!(debug_only(3).unwrap_err().code, 3);
    let s = stats(concat!(module_path!(), "::debug_only"));
    assert_eq!((s.calls, s.failures), (2, 1));
    assert_eq!(messages(&s), ["OnlyDebug { code: 3 }"]);

    assert!(opaque().is_err());
    let s = stats(concat!(module_path!(), "::opaque"));
    assert_eq!((s.calls, s.failures), (1, 1));
    assert_eq!(messages(&s), ["failed"]);
}

#[monitor_performance]
fn read_missing() -> std::io::Result<Vec<u8>> {
    let bytes = std::fs::read("/this/path/does/not/exist")?;
    Ok(bytes)
}

type Fallible<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[monitor_performance]
fn aliased(input: &str) -> Fallible<i64> {
    Ok(input.trim().parse::<i64>()?)
}

#[test]
fn result_aliases_are_results() {
    assert!(read_missing().is_err());
    let s = stats(concat!(module_path!(), "::read_missing"));
    assert_eq!((s.calls, s.failures), (1, 1));
    assert!(
        s.recent_failures[0].message.contains("No such file"),
        "{:?}",
        messages(&s)
    );

    assert_eq!(aliased(" 5 ").unwrap(), 5);
    assert!(aliased("five").is_err());
    let s = stats(concat!(module_path!(), "::aliased"));
    assert_eq!((s.calls, s.failures), (2, 1));
    assert_eq!(messages(&s), ["invalid digit found in string"]);
}

#[monitor_performance]
fn first_even(values: &[u32]) -> Option<u32> {
    let first = *values.first()?;
    if first % 2 == 0 {
        return Some(first);
    }
    values.iter().copied().find(|v| v % 2 == 0)
}

#[test]
fn none_and_option_question_mark_are_not_failures() {
    assert_eq!(first_even(&[]), None);
    assert_eq!(first_even(&[2]), Some(2));
    assert_eq!(first_even(&[1, 3]), None);
    let s = stats(concat!(module_path!(), "::first_even"));
    assert_eq!((s.calls, s.failures), (3, 0));
}

#[monitor_performance]
fn nested(outer: bool) -> Result<Result<u8, String>, String> {
    if outer {
        Err("outer".to_owned())
    } else {
        Ok(Err("inner".to_owned()))
    }
}

#[test]
fn only_the_outer_result_is_judged() {
    assert!(nested(false).unwrap().is_err());
    assert!(nested(true).is_err());
    let s = stats(concat!(module_path!(), "::nested"));
    assert_eq!((s.calls, s.failures), (2, 1));
    assert_eq!(messages(&s), ["outer"]);
}

#[monitor_performance]
fn closure_returns_stay_inside(values: &[i32]) -> Result<Vec<i32>, String> {
    let doubled: Vec<i32> = values
        .iter()
        .map(|v| {
            if *v < 0 {
                return 0;
            }
            v * 2
        })
        .collect();
    Ok(doubled)
}

#[test]
fn returns_inside_closures_of_the_body_are_theirs() {
    assert_eq!(closure_returns_stay_inside(&[-1, 2]).unwrap(), [0, 4]);
    let s = stats(concat!(module_path!(), "::closure_returns_stay_inside"));
    assert_eq!((s.calls, s.failures), (1, 0));
}
