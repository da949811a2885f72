use monitor_core::monitor_performance;

#[monitor_performance(threshold_ms = 5u8)]
fn work() {}

fn main() {
    work();
}
