use monitor_core::monitor_performance;

#[monitor_performance(name)]
fn work() {}

fn main() {
    work();
}
