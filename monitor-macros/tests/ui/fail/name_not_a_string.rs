use monitor_core::monitor_performance;

#[monitor_performance(name = work)]
fn work() {}

fn main() {
    work();
}
