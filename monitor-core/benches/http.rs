//! `/metrics` served by [`monitor_core::exposition`] under many concurrent keep-alive clients:
//! requests per second and latency percentiles, for 1 connection (the floor: no concurrency) and
//! for 1,000 connections driven by a few client threads. Prints the ratio of the concurrent
//! throughput to the single-connection one, both measured in this run.
//!
//! Run: `cargo bench -p monitor-core --features http --bench http`
//! (`HTTP_BENCH_SECONDS`, `HTTP_BENCH_CONNECTIONS` and `HTTP_BENCH_THREADS` override the defaults.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use monitor_core::Registry;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One keep-alive connection: sends `GET /metrics` and reads the answer by its length.
struct Client {
    reader: BufReader<TcpStream>,
    body: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Option<Self> {
        let stream = TcpStream::connect(addr).ok()?;
        stream.set_nodelay(true).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .ok()?;
        Some(Self {
            reader: BufReader::new(stream),
            body: Vec::new(),
        })
    }

    /// One request and its answer; `false` when the connection failed.
    fn get(&mut self) -> bool {
        let request = b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n";
        if self.reader.get_mut().write_all(request).is_err() {
            return false;
        }
        let mut length = None;
        let mut status_ok = false;
        let mut chunked = false;
        let mut line = String::new();
        loop {
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            if line.starts_with("HTTP/1.1 200") {
                status_ok = true;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse::<usize>().ok();
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("transfer-encoding")
            {
                chunked = value.trim().eq_ignore_ascii_case("chunked");
            }
        }
        if chunked {
            return status_ok && self.read_chunked();
        }
        let Some(length) = length else { return false };
        self.body.resize(length, 0);
        status_ok && self.reader.read_exact(&mut self.body).is_ok()
    }

    fn read_chunked(&mut self) -> bool {
        let mut line = String::new();
        self.body.clear();
        loop {
            line.clear();
            if self.reader.read_line(&mut line).unwrap_or(0) == 0 {
                return false;
            }
            let Ok(size) = usize::from_str_radix(line.trim(), 16) else {
                return false;
            };
            let start = self.body.len();
            self.body.resize(start + size + 2, 0);
            if self.reader.read_exact(&mut self.body[start..]).is_err() {
                return false;
            }
            self.body.truncate(start + size);
            if size == 0 {
                return true;
            }
        }
    }
}

struct Figures {
    requests: u64,
    failures: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&mut self, q: f64) -> Duration {
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
        self.latencies.get(i).copied().unwrap_or_default()
    }
}

/// Drives `connections` connections from `threads` threads for `seconds`: each thread sends one
/// request on each of its connections in turn.
fn load(addr: SocketAddr, connections: usize, threads: usize, seconds: u64) -> Figures {
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let mine = connections / threads + usize::from(t < connections % threads);
            let (stop, barrier) = (stop.clone(), barrier.clone());
            thread::spawn(move || {
                let mut clients: Vec<Client> =
                    (0..mine).filter_map(|_| Client::connect(addr)).collect();
                let mut failures = (mine - clients.len()) as u64;
                let mut latencies = Vec::new();
                barrier.wait();
                'run: while !stop.load(Ordering::Relaxed) {
                    for c in &mut clients {
                        let start = Instant::now();
                        if c.get() {
                            latencies.push(start.elapsed());
                        } else {
                            failures += 1;
                            *c = match Client::connect(addr) {
                                Some(c) => c,
                                None => break 'run,
                            };
                        }
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                }
                (latencies, failures)
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut figures = Figures {
        requests: 0,
        failures: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for w in workers {
        let (latencies, failures) = w.join().expect("client thread");
        figures.requests += latencies.len() as u64;
        figures.failures += failures;
        figures.latencies.extend(latencies);
    }
    figures.elapsed = start.elapsed();
    figures
}

fn report(name: &str, f: &mut Figures) {
    println!(
        "http/{name:<22} {:>10.0} req/s  p50 {:>9.3?}  p99 {:>9.3?}  max {:>9.3?}  failures {}",
        f.per_second(),
        f.percentile(0.50),
        f.percentile(0.99),
        f.percentile(1.0),
        f.failures
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and wants a quick run.
    let quick = !std::env::args().any(|a| a == "--bench");
    let seconds = env("HTTP_BENCH_SECONDS", if quick { 1 } else { 5 });
    let connections = env("HTTP_BENCH_CONNECTIONS", if quick { 50 } else { 1000 }) as usize;
    let threads = env("HTTP_BENCH_THREADS", 4) as usize;

    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    for i in 0..100 {
        for ms in 1..50 {
            registry.record(
                &format!("bench.function_{i}"),
                Duration::from_micros(ms * 37),
                ms % 7 != 0,
            );
        }
    }
    let server = monitor_core::exposition::serve_registry(registry, "127.0.0.1:0")
        .expect("bind a loopback port");
    let addr = server.local_addr();

    let mut floor = load(addr, 1, 1, seconds);
    report("metrics/1_connection", &mut floor);
    let name = format!("metrics/{connections}_connections");
    let mut many = load(addr, connections, threads, seconds);
    report(&name, &mut many);
    println!(
        "http/{name}: {:.2}x the single-connection throughput ({threads} client threads)",
        many.per_second() / floor.per_second()
    );
}
