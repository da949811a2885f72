//! An ordinary C-callable library that is instrumented with `#[monitor_performance]` and uses the
//! plugin SDK's types, but exports no plugin: linking monitor-core or monitor-plugin must not make
//! it look like a plugin library.

use monitor_core::monitor_performance;
use monitor_plugin::Sample;

/// Adds two numbers, instrumented.
#[monitor_performance]
#[unsafe(no_mangle)]
pub extern "C" fn not_a_plugin_add(a: u32, b: u32) -> u32 {
    a.wrapping_add(b)
}

/// The length of a sample's debug text, so the SDK's types are really linked in.
#[unsafe(no_mangle)]
pub extern "C" fn not_a_plugin_sample_text_len(value: f64) -> usize {
    format!("{:?}", Sample::gauge("not.a.plugin", value)).len()
}
