use monitor_core::monitor_performance;

#[monitor_performance(threshold_ms = -1)]
fn work() {}

fn main() {
    work();
}
