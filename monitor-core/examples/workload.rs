//! A small instrumented workload: successes, `Err` results, a panic caught by
//! the caller and an async function. Prints the report, then writes the JSON
//! snapshot and the Prometheus exposition.
//!
//! Run: `cargo run --release -p monitor-core --example workload [OUT_DIR]`
//! (exports go to `OUT_DIR`, by default `monitor-data/`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use monitor_core::{CountingAllocator, monitor_performance};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::system();

#[derive(Debug)]
struct ParseError(String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot parse {:?}", self.0)
    }
}

/// Parses an order line; fails on garbage.
#[monitor_performance]
fn parse_order(line: &str) -> Result<(String, u32), ParseError> {
    let (item, qty) = line
        .split_once(',')
        .ok_or_else(|| ParseError(line.to_owned()))?;
    let qty = qty
        .trim()
        .parse()
        .map_err(|_| ParseError(line.to_owned()))?;
    Ok((item.trim().to_owned(), qty))
}

/// Prices an order: allocates a little and spins a little.
#[monitor_performance(name = "orders.price")]
fn price(item: &str, qty: u32) -> u64 {
    let label = format!("{item} x{qty}");
    let mut h = 0u64;
    for b in label.bytes().cycle().take(2_000) {
        h = h.wrapping_mul(31).wrapping_add(b as u64);
    }
    h % 10_000 + qty as u64
}

/// Ships an order; panics on an impossible quantity.
#[monitor_performance]
fn ship(qty: u32) -> u32 {
    assert!(qty < 1000, "cannot ship {qty} items at once");
    qty
}

/// A future that is pending `n` times before completing.
struct YieldTimes(u32);

impl Future for YieldTimes {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Notifies a customer: async, waits between polls.
#[monitor_performance(name = "orders.notify")]
async fn notify(customer: u32) -> Result<(), String> {
    YieldTimes(3).await;
    std::thread::sleep(Duration::from_micros(200));
    if customer.is_multiple_of(7) {
        Err(format!("customer {customer} has no address"))
    } else {
        Ok(())
    }
}

fn main() -> std::io::Result<()> {
    let out_dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "monitor-data".to_owned());
    std::fs::create_dir_all(&out_dir)?;

    let lines = [
        "apple, 3",
        "pear, 12",
        "garbage",
        "plum, 1200",
        "fig, 7",
        "kiwi, x",
    ];
    // Keep the expected panic quiet; the monitor still records its message.
    std::panic::set_hook(Box::new(|_| {}));
    for round in 0..2_000u32 {
        let line = lines[round as usize % lines.len()];
        if let Ok((item, qty)) = parse_order(line) {
            price(&item, qty);
            // The caller survives the panic; the monitor counts it as a failure.
            let _ = std::panic::catch_unwind(|| ship(qty));
        }
        if round.is_multiple_of(10) {
            let _ = futures_executor::block_on(notify(round / 10));
        }
    }
    let _ = std::panic::take_hook();

    let registry = monitor_core::global();
    println!("{}", registry.report());
    println!(
        "Slowest: {:?}",
        registry
            .slowest(2)
            .iter()
            .map(|f| &f.name)
            .collect::<Vec<_>>()
    );
    println!(
        "Most called: {:?}",
        registry
            .most_called(2)
            .iter()
            .map(|f| &f.name)
            .collect::<Vec<_>>()
    );

    let json = std::path::Path::new(&out_dir).join("workload.json");
    registry.export_json(&json)?;
    let prom = std::path::Path::new(&out_dir).join("workload.prom");
    let mut text = Vec::new();
    registry.write_prometheus(&mut text)?;
    std::fs::write(&prom, text)?;
    let hlog = std::path::Path::new(&out_dir).join("workload.hlog");
    registry.write_hdr_log(&mut std::fs::File::create(&hlog)?)?;
    println!(
        "Wrote {}, {} and {}",
        json.display(),
        prom.display(),
        hlog.display()
    );
    Ok(())
}
