//! The `#[monitor_performance]` attribute. Use it through `monitor_core::monitor_performance`.
#![deny(missing_docs)]

mod attr;
mod expand;

use proc_macro::TokenStream;

/// Instruments a function: every call is timed and recorded in `monitor_core::global()`.
///
/// ```
/// use monitor_core::monitor_performance;
///
/// #[monitor_performance] // recorded as `module::path::parse`
/// fn parse(input: &str) -> Result<u32, std::num::ParseIntError> {
///     input.parse()
/// }
///
/// #[monitor_performance(name = "db.query", threshold_ms = 5)]
/// async fn query(q: &str) -> Vec<String> {
///     vec![q.to_owned()]
/// }
///
/// parse("1").unwrap();
/// parse("x").unwrap_err();
/// let stats = monitor_core::global().function(concat!(module_path!(), "::parse")).unwrap();
/// assert_eq!((stats.calls, stats.failures), (2, 1));
/// // Listed before its first call; calls under 5 ms are not recorded.
/// assert!(monitor_core::global().function("db.query").is_some());
/// ```
///
/// # Arguments
///
/// - `name = "..."`: the name the function is recorded under. By default
///   `module::path::fn_name` for a function, `module::path::Type::method_name`
///   for a method or associated function (of an inherent impl, a trait impl, or
///   `module::path::Trait::method_name` for a trait's default method), with
///   the type's generic arguments left out: every instantiation of a generic
///   type shares one entry. The type is found once, when the name is first
///   read, never while a call is recorded.
/// - `threshold_ms = N`: record only calls that take at least `N` ms.
///
/// # What counts
///
/// A call fails when it panics (the panic goes on unchanged) or returns an
/// `Err`, whose `Display` (else `Debug`) text is kept for the report. An
/// `async fn` is timed from its first poll to completion, with its busy time
/// (the sum of its polls) apart; dropped before completion, it counts as
/// cancelled rather than as a call.
///
/// Any function with a body can be instrumented: methods with any receiver,
/// generic functions (all instantiations share one entry), `async fn`
/// (also in traits), `unsafe fn`, `extern "C" fn`, functions returning
/// `impl Trait` or `!`. A `const fn` is refused.
///
/// A sync function whose whole body is an async block, or `Box::pin` of
/// one, and whose return type names the output (`impl Future<Output = T>`,
/// `Pin<Box<dyn Future<Output = T> + ..>>`, `BoxFuture<'_, T>`) is timed as
/// the future it returns, like an `async fn`; so are `#[async_trait]`
/// methods. Other functions returning futures are timed while they build
/// the future only.
///
/// # Limitations
///
/// A function's value is judged by running its body in a closure, which
/// would hide the caller's location from a `#[track_caller]` function; so
/// for such functions only panics count as failures, not returned `Err`s.
/// In a generic function, a return type that is a bare type parameter is
/// never judged an `Err`, whatever it is instantiated with.
#[proc_macro_attribute]
pub fn monitor_performance(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::monitor_performance(args.into(), item.into()).into()
}
