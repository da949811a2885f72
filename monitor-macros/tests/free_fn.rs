//! Free functions: names, exact counts, listing before the first call, and
//! the signature and attributes kept as written.
#![deny(warnings)]

use std::fmt::Display;

use monitor_core::{FunctionStats, global, monitor_performance};

fn stats(name: &str) -> FunctionStats {
    global()
        .function(name)
        .unwrap_or_else(|| panic!("{name} is not listed"))
}

#[monitor_performance]
fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[test]
fn counts_every_call_under_the_module_path() {
    for i in 0..5 {
        assert_eq!(add(i, 1), i + 1);
    }
    let s = stats(concat!(module_path!(), "::add"));
    assert_eq!((s.calls, s.successes, s.failures), (5, 5, 0));
    assert_eq!(s.success_rate, 1.0);
    assert!(s.duration_ns.min <= s.duration_ns.max);
    assert_eq!(s.module_path, module_path!());
    assert!(s.file.ends_with("free_fn.rs"), "{}", s.file);
}

#[monitor_performance(name = "free_fn.named")]
fn named() {}

#[test]
fn a_given_name_replaces_the_path() {
    named();
    named();
    assert_eq!(stats("free_fn.named").calls, 2);
    assert!(
        global()
            .function(concat!(module_path!(), "::named"))
            .is_none()
    );
}

#[monitor_performance]
fn never_called() {}

#[test]
fn functions_are_listed_before_their_first_call() {
    if std::hint::black_box(false) {
        never_called();
    }
    let s = stats(concat!(module_path!(), "::never_called"));
    assert_eq!((s.calls, s.failures, s.cancelled), (0, 0, 0));
    let snapshot = global().snapshot();
    assert!(
        snapshot
            .functions
            .iter()
            .any(|f| f.name.ends_with("::never_called"))
    );
}

#[monitor_performance]
fn counted_from_threads() -> u64 {
    std::hint::black_box(7)
}

#[test]
fn counts_are_exact_across_threads() {
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                for _ in 0..50_000 {
                    counted_from_threads();
                }
            });
        }
    });
    let s = stats(concat!(module_path!(), "::counted_from_threads"));
    assert_eq!((s.calls, s.successes, s.failures), (100_000, 100_000, 0));
}

/// Doc comments and attributes stay on the function.
#[monitor_performance]
#[inline]
#[must_use = "the sum is the point"]
#[allow(clippy::needless_lifetimes)]
pub(crate) fn kept<'a>(text: &'a str) -> &'a str {
    text.trim()
}

#[monitor_performance]
fn with_inner_attribute() -> u8 {
    #![allow(unused_variables)]
    let unused = 1;
    2
}

#[test]
fn attributes_and_lifetimes_are_kept() {
    assert_eq!(kept("  x "), "x");
    assert_eq!(stats(concat!(module_path!(), "::kept")).calls, 1);
    assert_eq!(with_inner_attribute(), 2);
}

#[monitor_performance]
fn r#match(mut values: Vec<u32>, (a, b): (u32, u32), _: ()) -> Vec<u32> {
    values.push(a);
    values.push(b);
    values
}

#[test]
fn raw_names_and_argument_patterns() {
    assert_eq!(r#match(vec![1], (2, 3), ()), [1, 2, 3]);
    assert_eq!(stats(concat!(module_path!(), "::match")).calls, 1);
}

#[monitor_performance]
fn shout(word: impl Display) -> impl Display + Clone {
    format!("{word}!")
}

#[monitor_performance]
fn evens(limit: u32) -> Box<dyn Iterator<Item = u32>> {
    Box::new((0..limit).filter(|n| n % 2 == 0))
}

#[monitor_performance]
fn first_word(text: &str) -> Option<&str> {
    text.split_whitespace().next()
}

#[test]
fn impl_trait_and_borrowed_returns() {
    assert_eq!(shout("hey").to_string(), "hey!");
    assert_eq!(evens(5).collect::<Vec<_>>(), [0, 2, 4]);
    assert_eq!(first_word("a b"), Some("a"));
    assert_eq!(first_word(""), None);
    assert_eq!(stats(concat!(module_path!(), "::shout")).calls, 1);
    assert_eq!(stats(concat!(module_path!(), "::evens")).calls, 1);
    // `None` is a value like any other, not a failure.
    let s = stats(concat!(module_path!(), "::first_word"));
    assert_eq!((s.calls, s.failures), (2, 0));
}

#[monitor_performance]
fn outer(n: u32) -> u32 {
    inner(n) + inner(n)
}

#[monitor_performance]
fn inner(n: u32) -> u32 {
    n * 2
}

#[test]
fn nested_calls_are_recorded_each() {
    assert_eq!(outer(1), 4);
    assert_eq!(stats(concat!(module_path!(), "::outer")).calls, 1);
    assert_eq!(stats(concat!(module_path!(), "::inner")).calls, 2);
}

#[monitor_performance]
fn early_unit(flag: bool, out: &mut Vec<u32>) {
    if flag {
        return;
    }
    out.push(1);
}

#[test]
fn unit_functions_may_return_early() {
    let mut out = Vec::new();
    early_unit(true, &mut out);
    early_unit(false, &mut out);
    assert_eq!(out, [1]);
    let s = stats(concat!(module_path!(), "::early_unit"));
    assert_eq!((s.calls, s.failures), (2, 0));
}

#[monitor_performance]
fn sleepy() -> u32 {
    std::thread::sleep(std::time::Duration::from_millis(3));
    1
}

#[test]
fn durations_are_those_of_the_body() {
    sleepy();
    let s = stats(concat!(module_path!(), "::sleepy"));
    assert!(s.duration_ns.min >= 3_000_000, "{:?}", s.duration_ns);
    assert!(s.duration_ns.max < 3_000_000_000, "{:?}", s.duration_ns);
}
