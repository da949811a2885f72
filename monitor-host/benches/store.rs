//! Writing one cycle to the embedded store: 1,000 and 10,000 series, one point each, in one
//! transaction (points, per-minute and per-hour rollups, the retention sweep), against the floor
//! of the same points into a bare `(series_id, ts_ms, value)` table in one transaction. Then the
//! bytes on disk per stored sample after an hour of 10 s cycles, rollups and series included.
//!
//! Run: `cargo bench -p monitor-host --bench store`

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use monitor_host::history::{DATABASE_FILE, Persistence};
use monitor_host::store::SeriesKey;
use monitor_plugin::{Labels, SampleKind};

const DAY: Duration = Duration::from_secs(86_400);
const INTERVAL_MS: u64 = 10_000;
const START_MS: u64 = 1_800_000_000_000;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("monitor-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn keys(n: usize) -> Vec<SeriesKey> {
    (0..n)
        .map(|i| SeriesKey {
            name: format!("app.metric_{}", i % 50),
            labels: Labels::from([
                ("collector".to_owned(), "bench".to_owned()),
                ("instance".to_owned(), format!("i{}", i / 50)),
            ]),
        })
        .collect()
}

fn cycle(p: &mut Persistence, keys: &[SeriesKey], n: u64) {
    let ts = START_MS + n * INTERVAL_MS;
    for (i, k) in keys.iter().enumerate() {
        let v = (n as f64).sin() * 100.0 + i as f64;
        p.batch().point(k, SampleKind::Gauge, "bench", ts, v);
    }
    p.commit(ts);
}

fn open(dir: &Path) -> Persistence {
    Persistence::open(dir, DAY, 30 * DAY, Duration::from_secs(3600), START_MS)
        .unwrap()
        .0
}

fn floor(dir: &Path, series: usize, from: u64, cycles: u64) -> Duration {
    std::fs::create_dir_all(dir).unwrap();
    let mut conn = rusqlite::Connection::open(dir.join("floor.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS p (s INTEGER, t INTEGER, v REAL, PRIMARY KEY (s, t)) WITHOUT ROWID",
    )
    .unwrap();
    let start = Instant::now();
    for n in from..from + cycles {
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare_cached("INSERT INTO p VALUES (?1, ?2, ?3)")
                .unwrap();
            for s in 0..series {
                let ts = (START_MS + n * INTERVAL_MS) as i64;
                stmt.execute(rusqlite::params![s as i64, ts, n as f64])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("store");
    group.sample_size(20);
    for series in [1_000, 10_000] {
        let dir = scratch(&format!("cycle-{series}"));
        let mut p = open(&dir);
        let keys = keys(series);
        let mut n = 0;
        group.bench_function(format!("cycle/{series}_series"), |b| {
            b.iter(|| {
                cycle(&mut p, &keys, n);
                n += 1;
            });
        });
        let floor_dir = scratch(&format!("floor-{series}"));
        let mut m = 0;
        group.bench_function(format!("floor/{series}_series"), |b| {
            b.iter_custom(|iters| {
                let d = floor(&floor_dir, series, m, iters);
                m += iters;
                d
            });
        });
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&floor_dir);
    }
    group.finish();
    bytes_per_sample();
}

/// An hour of 10 s cycles for 1,000 series, then the file's size over the samples stored.
fn bytes_per_sample() {
    let dir = scratch("size");
    let mut p = open(&dir);
    let keys = keys(1_000);
    let cycles = 360;
    for n in 0..cycles {
        cycle(&mut p, &keys, n);
    }
    drop(p);
    // Closing the last connection checkpoints the WAL into the file.
    let bytes = std::fs::metadata(dir.join(DATABASE_FILE)).unwrap().len();
    let samples = cycles * keys.len() as u64;
    println!(
        "store/size: {samples} samples (1,000 series x 360 cycles) in {bytes} bytes: {:.1} bytes per sample, rollups and series included",
        bytes as f64 / samples as f64
    );
    // Per table, where SQLite is built with the `dbstat` table.
    let conn = rusqlite::Connection::open(dir.join(DATABASE_FILE)).unwrap();
    let tables = conn
        .prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()
        });
    match tables {
        Ok(tables) => {
            for (name, size) in tables {
                let per = size as f64 / samples as f64;
                println!("store/size: {name}: {size} bytes, {per:.1} bytes per sample");
            }
        }
        Err(e) => println!("store/size: no per-table sizes ({e})"),
    }
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
