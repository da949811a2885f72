use monitor_core::monitor_performance;

#[derive(Debug)]
struct MyError;

#[monitor_performance]
fn parse(text: &str) -> Result<u32, MyError> {
    let n = text.parse::<u32>()?;
    Ok(n)
}

fn main() {
    let _ = parse("1");
}
