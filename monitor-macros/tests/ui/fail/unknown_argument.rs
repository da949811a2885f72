use monitor_core::monitor_performance;

#[monitor_performance(level = "info")]
fn work() {}

fn main() {
    work();
}
