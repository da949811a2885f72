//! Restarting on a store of 1 to 1.5 GB: opening it the way the host does at start (the check, the
//! migration, the refill of the last hour into memory), after a clean stop and after a crash,
//! against the floor of opening an empty store in the same run. Then the host binary, from its
//! start to its first `/healthz` 200, on the same store and on an empty one.
//!
//! The store is built by bulk SQL as a schema version 2 store (a row per point), then migrated
//! by the host's first open (its time is printed), and kept in `target/bench-data/restart-1g/`:
//! [`SERIES`] series at 10 s for the [`HOURS`] hours up to when it was built, with their
//! per-minute and per-hour rollups (1.1 GB as version 2 stored it, a fraction of that in blocks). The binary refills its memory from
//! the clock, so the store is built again when its last hour is past (in `end_ms`, beside it).
//!
//! Run: `cargo bench -p monitor-host --bench restart`

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use monitor_host::history::{DATABASE_FILE, Persistence, StartCheck};
use monitor_host::store::Store;

const SERIES: i64 = 10_000;
const HOURS: i64 = 12;
const INTERVAL_MS: i64 = 10_000;
const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3_600);

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data/restart-1g")
}

/// Builds the store in a scratch directory and moves it into place, so an interrupted build
/// leaves nothing that looks finished.
fn build(dir: &Path) -> i64 {
    let scratch = dir.with_extension("building");
    let _ = std::fs::remove_dir_all(&scratch);
    let started = Instant::now();
    let end_ms = now_ms() / INTERVAL_MS * INTERVAL_MS;
    let start_ms = end_ms - HOURS * 3_600_000;
    // The schema, as the host creates it.
    drop(open(&scratch, start_ms as u64));
    let conn = rusqlite::Connection::open(scratch.join(DATABASE_FILE)).unwrap();
    conn.pragma_update(None, "journal_mode", "OFF").unwrap();
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    conn.pragma_update(None, "cache_size", -262_144).unwrap();
    conn.execute_batch("BEGIN").unwrap();
    // Back to version 2's tables: a row per point, and nothing later versions add.
    conn.execute_batch(
        "DROP TABLE blocks; DROP TABLE tail;
         DROP TABLE notifications_sent; DROP TABLE notifications_withheld;
         DROP INDEX healing_attempts_instance; DROP INDEX healing_attempts_pending;
         ALTER TABLE healing_attempts DROP COLUMN detected_ms;
         ALTER TABLE healing_attempts DROP COLUMN recovered_ms;
         ALTER TABLE healing_attempts DROP COLUMN reason;
         ALTER TABLE alert_state DROP COLUMN annotations;
         ALTER TABLE alert_transitions DROP COLUMN annotations;
         CREATE TABLE points (series_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL,
             value REAL NOT NULL, PRIMARY KEY (series_id, ts_ms)) WITHOUT ROWID;",
    )
    .unwrap();
    let mut series = conn
        .prepare(
            "INSERT INTO series (id, name, labels, kind, source) VALUES (?1, ?2, ?3, 'gauge', 'bench')",
        )
        .unwrap();
    let mut points = conn
        .prepare(
            "WITH RECURSIVE t(ts) AS (SELECT ?2 UNION ALL SELECT ts + ?3 FROM t WHERE ts + ?3 < ?4)
             INSERT INTO points SELECT ?1, ts, ((ts / ?3 + ?1 * 7) % 1000) * 0.25 FROM t",
        )
        .unwrap();
    let rollup = |table: &str, step: i64| {
        format!(
            "INSERT INTO {table} SELECT series_id, ts_ms - ts_ms % {step}, count(*), sum(value),
             min(value), max(value) FROM points WHERE series_id = ?1 GROUP BY 2"
        )
    };
    let mut minute = conn.prepare(&rollup("rollup_1m", 60_000)).unwrap();
    let mut hour = conn.prepare(&rollup("rollup_1h", 3_600_000)).unwrap();
    for id in 1..=SERIES {
        let labels = format!(
            r#"{{"collector":"bench","instance":"host-{}.example.net:9100"}}"#,
            id / 50
        );
        let name = format!("app.metric_{}", id % 50);
        series.execute(rusqlite::params![id, name, labels]).unwrap();
        points
            .execute(rusqlite::params![id, start_ms, INTERVAL_MS, end_ms])
            .unwrap();
        minute.execute([id]).unwrap();
        hour.execute([id]).unwrap();
    }
    drop((series, points, minute, hour));
    conn.execute_batch("COMMIT").unwrap();
    conn.pragma_update(None, "user_version", 2).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    drop(conn);
    let v2_bytes = std::fs::metadata(scratch.join(DATABASE_FILE))
        .unwrap()
        .len();
    // Once through the host, which migrates it; so the store is left as a clean stop leaves it.
    let migration = Instant::now();
    drop(open(&scratch, end_ms as u64));
    println!(
        "restart/fixture: {v2_bytes} bytes as version 2, migrated in {:.1} s",
        migration.elapsed().as_secs_f64()
    );
    std::fs::write(scratch.join("end_ms"), end_ms.to_string()).unwrap();
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&scratch, dir).unwrap();
    let bytes = std::fs::metadata(dir.join(DATABASE_FILE)).unwrap().len();
    println!(
        "restart/fixture: built {} ({bytes} bytes, {} points) in {:.1} s",
        dir.display(),
        SERIES * HOURS * 3_600_000 / INTERVAL_MS,
        started.elapsed().as_secs_f64()
    );
    end_ms
}

fn now_ms() -> i64 {
    monitor_host::engine::now_ms() as i64
}

/// The store, built when missing or when its last point is older than 50 minutes; and the time
/// of its last point.
fn fixture() -> (PathBuf, i64) {
    let dir = fixture_dir();
    let end_ms = std::fs::read_to_string(dir.join("end_ms"))
        .ok()
        .and_then(|t| t.trim().parse::<i64>().ok());
    match end_ms {
        Some(end) if now_ms() - end < 50 * 60_000 && dir.join(DATABASE_FILE).exists() => (dir, end),
        _ => {
            let end = build(&dir);
            (dir, end)
        }
    }
}

fn open(dir: &Path, now_ms: u64) -> (Persistence, usize) {
    let (p, mut saved) = Persistence::open(dir, DAY, 30 * DAY, HOUR, now_ms).unwrap();
    // The refill of memory, as `Engine::load_history` does it.
    let mut store = Store::new(HOUR.as_millis() as u64);
    saved.restore_points(&mut store, now_ms);
    (p, store.len())
}

/// Removes the clean-stop marker, as a crash would have left the store.
fn crash(dir: &Path) {
    let conn = rusqlite::Connection::open(dir.join(DATABASE_FILE)).unwrap();
    conn.execute("DELETE FROM host_state WHERE key = 'clean_stop'", [])
        .unwrap();
}

/// Times `iters` starts; `before` runs untimed before each. Each time is kept for the summary.
fn starts(
    (dir, end_ms): (&Path, i64),
    expect: StartCheck,
    iters: u64,
    before: impl Fn(&Path),
    times: &Mutex<Vec<Duration>>,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        before(dir);
        let started = Instant::now();
        let (p, series) = open(dir, end_ms as u64);
        let took = started.elapsed();
        assert_eq!(p.start_check(), expect);
        assert!(dir.ends_with("empty") || series == SERIES as usize);
        drop(p);
        total += took;
        times.lock().unwrap().push(took);
    }
    total
}

fn median(times: &Mutex<Vec<Duration>>) -> Duration {
    let mut t = times.lock().unwrap().clone();
    t.sort();
    t[t.len() / 2]
}

fn bench(c: &mut Criterion) {
    let (dir, end_ms) = fixture();
    let empty = std::env::temp_dir().join(format!("monitor-bench-restart-{}", std::process::id()));
    let empty = empty.join("empty");
    drop(open(&empty, end_ms as u64));

    let mut group = c.benchmark_group("restart");
    group.sample_size(10);
    let floor = Mutex::new(Vec::new());
    group.bench_function("empty_store", |b| {
        b.iter_custom(|n| starts((&empty, end_ms), StartCheck::Quick, n, |_| (), &floor));
    });
    let clean = Mutex::new(Vec::new());
    group.bench_function("1g_after_clean_stop", |b| {
        b.iter_custom(|n| starts((&dir, end_ms), StartCheck::Quick, n, |_| (), &clean));
    });
    let crashed = Mutex::new(Vec::new());
    group.bench_function("1g_after_crash", |b| {
        b.iter_custom(|n| starts((&dir, end_ms), StartCheck::Full, n, crash, &crashed));
    });
    group.finish();
    let _ = std::fs::remove_dir_all(empty.parent().unwrap());

    let bytes = std::fs::metadata(dir.join(DATABASE_FILE)).unwrap().len();
    let floor = median(&floor);
    for (name, times) in [("after a clean stop", &clean), ("after a crash", &crashed)] {
        let t = median(times);
        println!(
            "restart/summary: {bytes}-byte store {name}: {:.3} s (median), {:.0}x the empty store's {:.4} s",
            t.as_secs_f64(),
            t.as_secs_f64() / floor.as_secs_f64(),
            floor.as_secs_f64()
        );
    }
    binaries(&dir);
}

/// A port free now, on loopback.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let request = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let mut answer = String::new();
    s.write_all(request.as_bytes()).is_ok()
        && s.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.1 200")
}

/// The host binary with no plugins on the store in `data`: the time from its start to its first
/// `/healthz` 200. It is then stopped with SIGTERM, a clean stop.
fn binary_start(data: &Path) -> Duration {
    let config_dir = data.with_extension("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let port = free_port();
    let config = config_dir.join("monitor.toml");
    std::fs::write(
        &config,
        format!(
            "[host]\ninterval = \"10s\"\nlisten = \"127.0.0.1:{port}\"\ndata_dir = {:?}\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let started = Instant::now();
    let mut host = Command::new(env!("CARGO_BIN_EXE_monitor-host"))
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while !healthy(port) {
        assert!(
            host.try_wait().unwrap().is_none(),
            "the host stopped at start"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no /healthz 200"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let took = started.elapsed();
    let term = Command::new("kill")
        .args(["-TERM", &host.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    host.wait().unwrap();
    let _ = std::fs::remove_dir_all(&config_dir);
    took
}

/// Median of five binary starts on the fixture and on an empty store.
fn binaries(dir: &Path) {
    let empty = std::env::temp_dir().join(format!("monitor-bench-binary-{}", std::process::id()));
    let median = |data: &Path| {
        let mut t: Vec<Duration> = (0..5).map(|_| binary_start(data)).collect();
        t.sort();
        t[2]
    };
    let floor = median(&empty);
    let full = median(dir);
    let bytes = std::fs::metadata(dir.join(DATABASE_FILE)).unwrap().len();
    println!(
        "restart/binary: start to first /healthz 200 on the {bytes}-byte store after a clean stop: {:.3} s (median of 5), {:.1}x the empty store's {:.3} s",
        full.as_secs_f64(),
        full.as_secs_f64() / floor.as_secs_f64(),
        floor.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&empty);
}

criterion_group!(benches, bench);
criterion_main!(benches);
