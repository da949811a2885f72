use monitor_core::monitor_performance;

#[monitor_performance]
struct Work;

fn main() {
    let _ = Work;
}
