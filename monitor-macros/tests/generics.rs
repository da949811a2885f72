//! Generic functions: one entry across instantiations, bounds, where
//! clauses, lifetimes, const generics and `impl Trait`.
#![deny(warnings)]

use std::collections::HashMap;
use std::fmt::{Debug, Display};
use std::hash::Hash;

use monitor_core::{FunctionStats, global, monitor_performance};

fn stats(name: &str) -> FunctionStats {
    global()
        .function(name)
        .unwrap_or_else(|| panic!("{name} is not listed"))
}

#[monitor_performance]
fn describe<T: Debug>(value: T) -> String {
    format!("{value:?}")
}

#[test]
fn two_instantiations_share_one_entry() {
    assert_eq!(describe(1u8), "1");
    assert_eq!(describe("x"), "\"x\"");
    assert_eq!(describe(vec![()]), "[()]");
    let s = stats(concat!(module_path!(), "::describe"));
    assert_eq!((s.calls, s.failures), (3, 0));
    let listed = global()
        .snapshot()
        .functions
        .iter()
        .filter(|f| f.name == s.name)
        .count();
    assert_eq!(listed, 1);
}

#[monitor_performance]
fn tally<'a, K, I>(items: I) -> HashMap<&'a K, usize>
where
    K: Eq + Hash + ?Sized + 'a,
    I: IntoIterator<Item = &'a K>,
{
    let mut counts = HashMap::new();
    for item in items {
        *counts.entry(item).or_default() += 1;
    }
    counts
}

#[test]
fn where_clauses_and_lifetimes() {
    let words = ["a", "b", "a"];
    let counts = tally(words.iter().copied());
    assert_eq!(counts["a"], 2);
    let numbers = [1, 1, 1];
    assert_eq!(tally(&numbers)[&1], 3);
    assert_eq!(stats(concat!(module_path!(), "::tally")).calls, 2);
}

#[monitor_performance]
fn chunk_sums<const N: usize>(values: &[u32]) -> [u32; N] {
    let mut sums = [0; N];
    for (i, v) in values.iter().enumerate() {
        sums[i % N] += v;
    }
    sums
}

#[test]
fn const_generics() {
    assert_eq!(chunk_sums::<2>(&[1, 2, 3, 4]), [4, 6]);
    assert_eq!(chunk_sums::<3>(&[1, 2, 3, 4]), [5, 2, 3]);
    assert_eq!(stats(concat!(module_path!(), "::chunk_sums")).calls, 2);
}

#[monitor_performance]
fn joined(parts: impl IntoIterator<Item = impl Display>) -> impl Display {
    parts
        .into_iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[monitor_performance]
fn parse_all<T>(inputs: &[&str]) -> Result<Vec<T>, T::Err>
where
    T: std::str::FromStr,
{
    inputs.iter().map(|s| s.parse()).collect()
}

#[monitor_performance]
fn fallible<E>(fail: Option<E>) -> Result<(), E> {
    match fail {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[test]
fn generic_results_are_judged_by_what_the_error_type_offers() {
    assert_eq!(joined([1, 2]).to_string(), "1,2");
    assert_eq!(parse_all::<u8>(&["1", "2"]).unwrap(), [1, 2]);
    assert!(parse_all::<u8>(&["1", "x"]).is_err());
    // A generic error type without bounds has no text to show.
    assert!(fallible(Some(0.5)).is_err());
    fallible::<String>(None).unwrap();
    let s = stats(concat!(module_path!(), "::parse_all"));
    assert_eq!((s.calls, s.failures), (2, 1));
    assert_eq!(s.recent_failures[0].message, "failed");
    let s = stats(concat!(module_path!(), "::fallible"));
    assert_eq!((s.calls, s.failures), (2, 1));
    assert_eq!(stats(concat!(module_path!(), "::joined")).calls, 1);
}

#[monitor_performance]
fn identity<T>(value: T) -> T {
    value
}

#[test]
fn a_bare_type_parameter_is_never_judged_an_error() {
    // Documented limitation: the judgement is made once for the generic
    // function, where `T` is not known to be a `Result`.
    assert!(identity(Err::<(), _>("no")).is_err());
    let s = stats(concat!(module_path!(), "::identity"));
    assert_eq!((s.calls, s.failures), (1, 0));
}
