use monitor_core::monitor_performance;

#[monitor_performance(name = "a", name = "b")]
fn work() {}

fn main() {
    work();
}
