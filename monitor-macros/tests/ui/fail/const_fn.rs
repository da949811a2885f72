use monitor_core::monitor_performance;

#[monitor_performance]
const fn answer() -> u32 {
    42
}

fn main() {
    let _ = answer();
}
