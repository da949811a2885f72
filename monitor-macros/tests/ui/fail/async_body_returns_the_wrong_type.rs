use monitor_core::monitor_performance;

#[monitor_performance]
async fn count(text: &str) -> usize {
    if text.is_empty() {
        return "none";
    }
    text.len()
}

fn main() {
    let _ = count("a");
}
