use monitor_core::monitor_performance;

#[monitor_performance(threshold_ms = 2.5)]
fn work() {}

fn main() {
    work();
}
