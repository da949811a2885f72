//! The attribute among other code: macro-generated functions, nested and
//! recursive instrumented functions, other attributes such as `#[test]`.
#![deny(warnings)]

use monitor_core::{FunctionStats, global, monitor_performance};

fn stats(name: &str) -> FunctionStats {
    global()
        .function(name)
        .unwrap_or_else(|| panic!("{name} is not listed"))
}

macro_rules! instrumented_getter {
    ($name:ident, $value:expr) => {
        #[monitor_performance]
        fn $name() -> Result<u32, String> {
            let value: u32 = $value;
            if value == 0 {
                return Err(format!("{} is zero", stringify!($name)));
            }
            Ok(value)
        }
    };
}

instrumented_getter!(one, 1);
instrumented_getter!(zero, 0);

#[test]
fn functions_written_by_macro_rules() {
    assert_eq!(one(), Ok(1));
    assert!(zero().is_err());
    assert_eq!(stats(concat!(module_path!(), "::one")).calls, 1);
    let s = stats(concat!(module_path!(), "::zero"));
    assert_eq!((s.calls, s.failures), (1, 1));
    assert_eq!(s.recent_failures[0].message, "zero is zero");
}

#[monitor_performance]
fn with_nested_instrumented_fn(n: u32) -> u32 {
    #[monitor_performance(name = "composition.nested")]
    fn nested(n: u32) -> u32 {
        n + 1
    }
    nested(n) + nested(n)
}

#[test]
fn instrumented_functions_inside_instrumented_functions() {
    assert_eq!(with_nested_instrumented_fn(1), 4);
    assert_eq!(
        stats(concat!(module_path!(), "::with_nested_instrumented_fn")).calls,
        1
    );
    assert_eq!(stats("composition.nested").calls, 2);
}

const FIB_LINE: u32 = line!() + 1;
#[monitor_performance]
fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    fib(n - 1) + fib(n - 2)
}

#[test]
fn recursion_records_every_frame() {
    assert_eq!(fib(10), 55);
    // fib(10) makes 177 calls in all.
    assert_eq!(stats(concat!(module_path!(), "::fib")).calls, 177);
}

#[test]
#[monitor_performance(name = "composition.test_below")]
fn instrumented_test_attribute_first() {
    assert_eq!(1 + 1, 2);
}

#[monitor_performance(name = "composition.test_above")]
#[test]
fn instrumented_test_attribute_second() {
    assert_eq!(2 + 2, 4);
}

trait Make: Sized {
    fn value() -> u32;

    #[monitor_performance(name = "composition.Make::make")]
    fn make() -> Result<Self, String>
    where
        Self: From<u32>,
    {
        Ok(Self::from(Self::value()))
    }
}

#[derive(Debug, PartialEq)]
struct Made(u32);

impl From<u32> for Made {
    fn from(n: u32) -> Self {
        Made(n)
    }
}

impl Make for Made {
    fn value() -> u32 {
        9
    }
}

#[test]
fn trait_default_methods_returning_self() {
    assert_eq!(Made::make(), Ok(Made(9)));
    assert_eq!(stats("composition.Make::make").calls, 1);
}

#[monitor_performance(name = "composition.\"quoted\" name")]
fn odd_name() {}

#[test]
fn names_are_taken_as_written() {
    odd_name();
    assert_eq!(stats("composition.\"quoted\" name").calls, 1);
}

#[test]
fn instrumented_tests_are_listed() {
    assert!(global().function("composition.test_below").is_some());
    assert!(global().function("composition.test_above").is_some());
}

#[test]
fn the_callsite_points_at_the_source() {
    let s = stats(concat!(module_path!(), "::fib"));
    assert!(s.file.ends_with("composition.rs"), "{}", s.file);
    // The line of the attribute, just above the function.
    assert_eq!(s.line, FIB_LINE);
}
