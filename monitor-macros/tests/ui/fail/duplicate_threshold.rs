use monitor_core::monitor_performance;

#[monitor_performance(threshold_ms = 1, threshold_ms = 2)]
fn work() {}

fn main() {
    work();
}
