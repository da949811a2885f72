#![deny(unused_variables)]

use monitor_core::monitor_performance;

#[monitor_performance]
fn ignores(value: u32) -> u32 {
    1
}

fn main() {
    let _ = ignores(1);
}
