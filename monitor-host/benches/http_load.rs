//! The host's HTTP under load: the real engine and run loop with 1,000 and 10,000 series, served by
//! [`HttpServer`], while 1,000 keep-alive clients ask for `/metrics` and `/api/v1/query` as fast as
//! they are answered. Prints the throughput, the latency of each endpoint (p50, p99, max) and the
//! jitter of the collection cycle (how much later than the configured interval each cycle starts:
//! p50, p99, max) under that load, next to the jitter with no client, measured in the same run.
//!
//! The series are generated into the store the host restores at start (ten minutes of points every
//! 10 s), as after a restart; the engine has no plugin, so a cycle is the host's own work: expiry,
//! alert evaluation (one rule over every series), self-metrics and the write to the store. The
//! clients are threads with small stacks, each with one connection, sending its next request when
//! the last answer has arrived.
//!
//! Run: `cargo bench -p monitor-host --bench http_load`
//! (`MONITOR_BENCH_SECONDS`, default 10: each phase's length; `MONITOR_BENCH_CLIENTS`, default
//! 1000.)

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use monitor_host::engine::now_ms;
use monitor_host::history::{DATABASE_FILE, Persistence};
use monitor_host::http::{HttpServer, Published, Security, VIEW_WAIT};
use monitor_host::query::QueryApi;
use monitor_host::run::{Control, run_until};
use monitor_host::store::SeriesKey;
use monitor_host::{Config, Engine};
use monitor_plugin::{Labels, SampleKind};

const INTERVAL: Duration = Duration::from_millis(250);
const SERIES_COUNTS: [usize; 2] = [1_000, 10_000];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A store with `series` series of ten minutes up to now, every 10 s.
fn store(series: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "monitor-bench-http-load-{}-{series}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let now = now_ms();
    let hour = Duration::from_secs(3600);
    let (mut p, _) = Persistence::open(&dir, hour, hour, hour, now).unwrap();
    for i in 0..series {
        let key = SeriesKey {
            name: "bench.load".into(),
            labels: Labels::from([
                ("i".to_owned(), i.to_string()),
                ("host".to_owned(), format!("h{}", i % 50)),
            ]),
        };
        for ts in (now - 600_000..=now).step_by(10_000) {
            let v = (i as f64 + ts as f64 / 10_000.0).sin() * 50.0 + 50.0;
            p.batch().point(&key, SampleKind::Gauge, "bench", ts, v);
        }
    }
    p.commit(now);
    assert_eq!(p.stats().errors_total, 0, "the bench store was written");
    dir
}

/// The host as `monitor-host run` starts it: config, engine, restored store, run loop, server.
struct Host {
    published: Arc<Published>,
    server: HttpServer,
    stop: crossbeam_channel::Sender<()>,
    thread: std::thread::JoinHandle<()>,
    dir: PathBuf,
}

impl Host {
    fn start(series: usize) -> Self {
        let dir = store(series);
        let text = format!(
            "[host]\ninterval = \"{}ms\"\nlisten = \"off\"\ndata_dir = {:?}\n\n\
             [[alert]]\nname = \"load_high\"\nmetric = \"bench.load\"\ncondition = \"above\"\n\
             threshold = 99.99\n",
            INTERVAL.as_millis(),
            dir.display().to_string()
        );
        let config = Config::from_str(&text, "bench.toml", Path::new(".")).unwrap();
        // SAFETY: the config names no library.
        let mut engine = unsafe { Engine::load(&config) }.unwrap();
        engine.load_history(&dir, now_ms()).unwrap();
        assert!(engine.store().len() >= series, "the series were restored");
        let published = Arc::new(Published::default());
        let (reload_tx, reload) = crossbeam_channel::unbounded();
        let server = HttpServer::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            published.clone(),
            reload_tx,
            QueryApi::new(dir.join(DATABASE_FILE)),
            Security::default(),
        )
        .unwrap();
        let (stop, stop_rx) = crossbeam_channel::bounded(1);
        let shared = published.clone();
        let thread = std::thread::spawn(move || {
            let control = Control {
                stop: &stop_rx,
                reload: &reload,
                config: Path::new("/nonexistent/monitor.toml"),
            };
            run_until(engine, &control, &shared);
        });
        Self {
            published,
            server,
            stop,
            thread,
            dir,
        }
    }

    /// When each cycle of the last `since_ms` started, from the host's own
    /// `monitor.host.cycle_duration_seconds` points (one per cycle, stamped with its start).
    fn cycle_starts(&self, since_ms: u64) -> Vec<u64> {
        let starts = self.published.ask(
            move |engine| {
                let mut out: Vec<u64> = engine
                    .store()
                    .iter()
                    .filter(|(k, _)| k.name == "monitor.host.cycle_duration_seconds")
                    .flat_map(|(_, s)| s.points.iter().map(|(ts, _)| ts).collect::<Vec<_>>())
                    .filter(|ts| *ts >= since_ms)
                    .collect();
                out.sort_unstable();
                out
            },
            VIEW_WAIT,
        );
        starts.expect("the run loop answers")
    }

    fn stop(self) {
        let _ = self.stop.send(());
        self.thread.join().unwrap();
        drop(self.server);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How much later than [`INTERVAL`] after the previous one each cycle started, in ms.
fn jitter(starts: &[u64]) -> Vec<u64> {
    let interval = INTERVAL.as_millis() as u64;
    starts
        .windows(2)
        .map(|w| (w[1] - w[0]).saturating_sub(interval))
        .collect()
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// What the clients saw of one endpoint.
#[derive(Default)]
struct Figures {
    // Latencies in µs.
    latencies: Vec<u64>,
    bytes: u64,
    errors: u64,
}

/// One keep-alive connection; `None` once the server closed it or failed.
fn request(stream: &mut TcpStream, path: &str, buf: &mut Vec<u8>) -> Option<(u16, usize)> {
    let head = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    let status: u16 = head.get(9..12)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .expect("every answer has a Content-Length");
    let mut have = buf.len() - head_end;
    while have < length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        have += n;
    }
    Some((status, length))
}

/// `clients` connections asking in turn for `/metrics` and an instant query of one series, until
/// `stop`; the figures of each endpoint.
fn load(addr: SocketAddr, clients: usize, series: usize, run: Duration) -> [Figures; 2] {
    let figures = Arc::new(Mutex::new([Figures::default(), Figures::default()]));
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(Barrier::new(clients + 1));
    let connect_failures = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (figures, stop, ready) = (figures.clone(), stop.clone(), ready.clone());
            let connect_failures = connect_failures.clone();
            let paths = [
                "/metrics".to_owned(),
                format!(
                    "/api/v1/query?query=bench_load%7Bi%3D%22{}%22%7D",
                    c % series
                ),
            ];
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    let stream = TcpStream::connect(addr);
                    ready.wait();
                    let Ok(mut stream) = stream else {
                        connect_failures.fetch_add(1, Ordering::Relaxed);
                        return;
                    };
                    let _ = stream.set_nodelay(true);
                    let mut local = [Figures::default(), Figures::default()];
                    let mut buf = Vec::new();
                    let mut turn = c % 2;
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let answer = request(&mut stream, &paths[turn], &mut buf);
                        let f = &mut local[turn];
                        match answer {
                            Some((200, bytes)) => {
                                f.latencies.push(started.elapsed().as_micros() as u64);
                                f.bytes += bytes as u64;
                            }
                            Some(_) => f.errors += 1,
                            None => {
                                f.errors += 1;
                                match TcpStream::connect(addr) {
                                    Ok(s) => stream = s,
                                    Err(_) => break,
                                }
                            }
                        }
                        turn = 1 - turn;
                    }
                    let mut all = figures.lock().unwrap();
                    for (into, from) in all.iter_mut().zip(local) {
                        into.latencies.extend(from.latencies);
                        into.bytes += from.bytes;
                        into.errors += from.errors;
                    }
                })
                .unwrap()
        })
        .collect();
    ready.wait();
    std::thread::sleep(run);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let failed = connect_failures.load(Ordering::Relaxed);
    assert_eq!(failed, 0, "{failed} clients could not connect");
    Arc::into_inner(figures).unwrap().into_inner().unwrap()
}

fn print_jitter(label: &str, jitter: &mut [u64]) {
    jitter.sort_unstable();
    println!(
        "  cycle jitter {label:<11} {:>4} cycles  p50 {:>5} ms  p99 {:>5} ms  max {:>5} ms",
        jitter.len() + 1,
        quantile(jitter, 0.5),
        quantile(jitter, 0.99),
        jitter.last().copied().unwrap_or(0)
    );
}

fn scenario(series: usize, clients: usize, run: Duration) {
    let host = Host::start(series);
    let addr = host.server.addr;
    // The first cycle, then a warm-up of each endpoint.
    let mut warm = TcpStream::connect(addr).unwrap();
    let mut buf = Vec::new();
    for path in [
        "/metrics",
        "/api/v1/query?query=bench_load%7Bi%3D%220%22%7D",
    ] {
        let (status, _) = request(&mut warm, path, &mut buf).unwrap();
        assert_eq!(status, 200, "{path}");
    }
    drop(warm);

    let floor_from = now_ms();
    std::thread::sleep(run);
    let mut floor = jitter(&host.cycle_starts(floor_from));

    let load_from = now_ms();
    let started = Instant::now();
    let figures = load(addr, clients, series, run);
    let elapsed = started.elapsed().as_secs_f64();
    let load_to = now_ms();
    let starts: Vec<u64> = host
        .cycle_starts(load_from)
        .into_iter()
        .filter(|ts| *ts <= load_to)
        .collect();
    let mut loaded = jitter(&starts);

    println!(
        "http_load/{series}_series: {clients} keep-alive clients for {elapsed:.1} s, interval {} ms",
        INTERVAL.as_millis()
    );
    for (name, mut f) in ["/metrics", "/api/v1/query"].into_iter().zip(figures) {
        f.latencies.sort_unstable();
        let ms = |us: u64| us as f64 / 1000.0;
        println!(
            "  {name:<14} {:>8.0} req/s {:>8.1} MB/s  p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  errors {}",
            f.latencies.len() as f64 / elapsed,
            f.bytes as f64 / elapsed / 1e6,
            ms(quantile(&f.latencies, 0.5)),
            ms(quantile(&f.latencies, 0.99)),
            ms(f.latencies.last().copied().unwrap_or(0)),
            f.errors
        );
    }
    print_jitter("no clients", &mut floor);
    print_jitter("under load", &mut loaded);
    let p99 = |j: &[u64]| quantile(j, 0.99).max(1) as f64;
    println!(
        "  jitter p99 under load / no clients: {:.1}x",
        p99(&loaded) / p99(&floor)
    );
    host.stop();
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects series counts by name.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let run = Duration::from_secs(env_usize("MONITOR_BENCH_SECONDS", 10) as u64);
    let clients = env_usize("MONITOR_BENCH_CLIENTS", 1000);
    for series in SERIES_COUNTS {
        let name = format!("http_load/{series}_series");
        if filter.iter().any(|f| !name.contains(f.as_str())) {
            continue;
        }
        scenario(series, clients, run);
    }
}
