use monitor_core::monitor_performance;

#[monitor_performance("work")]
fn work() {}

fn main() {
    work();
}
