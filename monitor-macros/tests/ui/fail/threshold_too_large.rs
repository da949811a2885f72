use monitor_core::monitor_performance;

#[monitor_performance(threshold_ms = 18446744073709551616)]
fn work() {}

fn main() {
    work();
}
