#![deny(unused_mut)]

use monitor_core::monitor_performance;

#[monitor_performance]
fn reads(mut value: u32) -> u32 {
    value
}

fn main() {
    let _ = reads(1);
}
