use monitor_core::monitor_performance;

#[monitor_performance(name = "work" threshold_ms = 5)]
fn work() {}

fn main() {
    work();
}
