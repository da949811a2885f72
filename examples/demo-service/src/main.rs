//! `demo-service`: a toy order service instrumented with `#[monitor_performance]`, serving its
//! figures on `/metrics` for the host to scrape. It runs healthy for a while, then either degrades
//! (its database calls get slower and fail more) or crashes, so the host has something to alert on
//! and heal.
//!
//! ```text
//! demo-service [--listen 127.0.0.1:9465] [--pid-file FILE] [--healthy-for SECS] [--seed N]
//! demo-service --check http://127.0.0.1:9465/healthz    # exit 0 when the service answers
//! ```

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use monitor_core::{CountingAllocator, monitor_performance};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::system();

#[derive(Debug)]
struct DbError(&'static str);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// A tiny xorshift generator: deterministic per seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How sick the service is: 0 healthy, rising to 1 as it degrades.
fn sickness(started: Instant, healthy_for: Duration) -> f64 {
    let t = started.elapsed().saturating_sub(healthy_for).as_secs_f64();
    (t / 30.0).min(1.0)
}

#[monitor_performance(name = "demo.parse_order")]
fn parse_order(line: &str) -> Result<u32, std::num::ParseIntError> {
    line.trim().parse()
}

#[monitor_performance(name = "demo.query_db")]
fn query_db(rng: &mut Rng, sick: f64) -> Result<u32, DbError> {
    // 1-3 ms healthy; up to 120 ms more as it degrades.
    let ms = 1.0 + 2.0 * rng.next() + 120.0 * sick * rng.next();
    std::thread::sleep(Duration::from_secs_f64(ms / 1000.0));
    if rng.next() < 0.01 + 0.4 * sick {
        Err(DbError("connection reset"))
    } else {
        Ok(42)
    }
}

/// Instrumented with a scope guard rather than the attribute, to show both.
fn handle_request(rng: &mut Rng, sick: f64) -> Result<u32, DbError> {
    let guard = monitor_core::guard("demo.handle_request");
    let qty = parse_order(&format!("{}", (rng.next() * 10.0) as u32)).unwrap_or(0);
    match query_db(rng, sick) {
        Ok(rows) => Ok(rows * qty),
        Err(e) => {
            guard.fail_with(e.to_string());
            Err(e)
        }
    }
}

/// `--check URL`: GET it and exit 0 on a 200 answer.
fn check(url: &str) -> ! {
    let ok = (|| -> std::io::Result<bool> {
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut s = TcpStream::connect(host)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        Ok(answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"))
    })()
    .unwrap_or(false);
    std::process::exit(if ok { 0 } else { 1 })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if let Some(url) = arg("--check") {
        check(&url);
    }
    let listen = arg("--listen").unwrap_or_else(|| "127.0.0.1:9465".into());
    let healthy_for = Duration::from_secs(
        arg("--healthy-for")
            .and_then(|s| s.parse().ok())
            .unwrap_or(40),
    );
    let seed = arg("--seed")
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::from(std::process::id()) | 1);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let exposition = match monitor_core::exposition::serve(&listen) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("demo-service: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    if let Some(path) = arg("--pid-file")
        && let Err(e) = std::fs::write(&path, std::process::id().to_string())
    {
        eprintln!("demo-service: cannot write {path}: {e}");
    }
    // About one run in three crashes once it gets sick; the others only degrade.
    let crashes = rng.next() < 0.34;
    eprintln!(
        "demo-service: pid {} serving http://{}/metrics; healthy for {:?}, then {}",
        std::process::id(),
        exposition.local_addr(),
        healthy_for,
        if crashes { "crashes" } else { "degrades" }
    );
    let started = Instant::now();
    loop {
        let sick = sickness(started, healthy_for);
        if crashes && sick > 0.3 {
            eprintln!("demo-service: crashing on purpose");
            std::process::exit(3);
        }
        let _ = handle_request(&mut rng, sick);
        std::thread::sleep(Duration::from_millis(10));
    }
}
