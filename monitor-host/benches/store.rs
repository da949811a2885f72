//! Writing cycles to the embedded store: 1,000, 10,000 and 100,000 series, one point each per
//! 1 s cycle (the tail row, the blocks that are due, their rollups, the retention sweep), against
//! the floor of the same points kept only in memory (the engine's `Store`, chunks of the same
//! encoding). Then the bytes on disk per stored sample after an hour of 1 s cycles, rollups and
//! series included, against the bytes the same samples take in memory.
//!
//! Both as the engine does it: each series by its store id, its key given to the history once.
//! Each ratio line also gives the process's CPU time a cycle (SQLite works on the calling
//! thread: the time it waits for the disk is not in it), and the heap the history holds per
//! series after the cycles (its open blocks, counted by the bench's allocator; SQLite's page
//! cache is not in it) against the heap of the in-memory store holding the same points.
//!
//! Run: `cargo bench -p monitor-host --bench store`

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use monitor_host::history::NewSeries;
use monitor_host::history::{DATABASE_FILE, Persistence};
use monitor_host::store::{SeriesId, SeriesKey, Store};
use monitor_plugin::{Labels, SampleKind};

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every request is forwarded to `System` unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc`, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc`, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const DAY: Duration = Duration::from_secs(86_400);
const INTERVAL_MS: u64 = 1_000;
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

/// A gauge that moves a little each cycle, as most scraped series do.
fn value(i: usize, n: u64) -> f64 {
    ((n / 10 + i as u64) % 100) as f64 * 0.5
}

/// The series in a store, with their ids.
struct Series {
    store: Store,
    ids: Vec<SeriesId>,
}

impl Series {
    fn new(keys: Vec<SeriesKey>) -> Self {
        let mut store = Store::new(u64::MAX);
        let ids = keys
            .into_iter()
            .map(|k| store.intern(k, SampleKind::Gauge, "bench").unwrap())
            .collect();
        Self { store, ids }
    }
}

fn cycle(p: &mut Persistence, s: &Series, n: u64) {
    let ts = START_MS + n * INTERVAL_MS;
    for (i, &id) in s.ids.iter().enumerate() {
        p.point(id, ts, value(i, n), || NewSeries {
            series: id,
            key: s.store.key(id).unwrap().clone(),
            kind: SampleKind::Gauge,
            source: "bench".to_owned(),
        });
    }
    p.commit(ts);
}

fn memory_cycle(s: &mut Series, n: u64) {
    let ts = START_MS + n * INTERVAL_MS;
    for (i, &id) in s.ids.iter().enumerate() {
        s.store.push_id(id, SampleKind::Gauge, ts, value(i, n));
    }
}

fn open(dir: &Path) -> Persistence {
    Persistence::open(dir, DAY, 30 * DAY, Duration::from_secs(3600), START_MS)
        .unwrap()
        .0
}

/// The process's CPU time, user and system.
fn cpu_time() -> Duration {
    // SAFETY: `getrusage` writes only into the `rusage` it is given, zeroed and owned here.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Heap bytes live.
fn live() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

/// A cycle's cost: mean wall and CPU time, and the heap held at the end per series.
struct Cost {
    wall: Duration,
    cpu: Duration,
    heap_per_series: f64,
}

/// The cost over `cycles` cycles: on disk, then in memory only.
fn per_cycle(series: usize, cycles: u64) -> (Cost, Cost) {
    let dir = scratch(&format!("ratio-{series}"));
    let known = Series::new(keys(series));
    let before = live();
    let mut p = open(&dir);
    // The first cycle creates the series: not what a cycle costs.
    cycle(&mut p, &known, 0);
    let (start, cpu) = (Instant::now(), cpu_time());
    for n in 1..=cycles {
        cycle(&mut p, &known, n);
    }
    let disk = Cost {
        wall: start.elapsed() / cycles as u32,
        cpu: (cpu_time() - cpu) / cycles as u32,
        heap_per_series: (live() - before) as f64 / series as f64,
    };
    drop(p);
    drop(known);
    let _ = std::fs::remove_dir_all(&dir);
    let before = live();
    let mut s = Series::new(keys(series));
    memory_cycle(&mut s, 0);
    let (start, cpu) = (Instant::now(), cpu_time());
    for n in 1..=cycles {
        memory_cycle(&mut s, n);
    }
    let memory = Cost {
        wall: start.elapsed() / cycles as u32,
        cpu: (cpu_time() - cpu) / cycles as u32,
        heap_per_series: (live() - before) as f64 / series as f64,
    };
    (disk, memory)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("store");
    group.sample_size(10);
    for series in [1_000, 10_000, 100_000] {
        let dir = scratch(&format!("cycle-{series}"));
        let mut p = open(&dir);
        let known = Series::new(keys(series));
        let mut n = 0;
        group.bench_function(format!("cycle/{series}_series"), |b| {
            b.iter(|| {
                cycle(&mut p, &known, n);
                n += 1;
            });
        });
        drop(p);
        let _ = std::fs::remove_dir_all(&dir);
        let mut s = Series::new(keys(series));
        let mut m = 0;
        group.bench_function(format!("memory/{series}_series"), |b| {
            b.iter(|| {
                memory_cycle(&mut s, m);
                m += 1;
            });
        });
    }
    group.finish();
    // Long enough for blocks to be written (every 120 cycles), as in steady state.
    for (series, cycles) in [(1_000, 600), (10_000, 240), (100_000, 130)] {
        let (disk, memory) = per_cycle(series, cycles);
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "store/ratio/{series}_series: {:.2} ms a cycle on disk ({:.2} ms CPU), {:.2} ms in memory only: {:.1}x the floor; CPU {:.1}x",
            ms(disk.wall),
            ms(disk.cpu),
            ms(memory.wall),
            ms(disk.wall) / ms(memory.wall),
            ms(disk.cpu) / ms(memory.cpu).max(1e-3),
        );
        println!(
            "store/heap/{series}_series: the history holds {:.0} bytes a series after {cycles} cycles; the store {:.0} with the same points, keys included: {:.2}x",
            disk.heap_per_series,
            memory.heap_per_series,
            disk.heap_per_series / memory.heap_per_series
        );
    }
    bytes_per_sample();
}

/// An hour of 1 s cycles for 1,000 series, then the file's size over the samples stored, against
/// the heap the same samples take in memory.
fn bytes_per_sample() {
    let dir = scratch("size");
    let mut p = open(&dir);
    let mut known = Series::new(keys(1_000));
    let cycles = 3600;
    for n in 0..cycles {
        cycle(&mut p, &known, n);
        memory_cycle(&mut known, n);
    }
    // As the host runs: blocks and tail as the last cycle left them, no clean stop yet. The
    // WAL is checkpointed into the file so that its size counts everything.
    let conn = rusqlite::Connection::open(dir.join(DATABASE_FILE)).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let bytes = std::fs::metadata(dir.join(DATABASE_FILE)).unwrap().len();
    let samples = cycles * known.ids.len() as u64;
    let heap: usize = known.store.iter().map(|(_, s)| s.points.heap_bytes()).sum();
    let (disk, mem) = (bytes as f64 / samples as f64, heap as f64 / samples as f64);
    println!(
        "store/size: {samples} samples (1,000 series x 3,600 cycles of 1 s) in {bytes} bytes: {disk:.2} bytes per sample on disk, rollups and series included; {mem:.2} in memory (the floor): {:.1}x",
        disk / mem
    );
    // Per table, where SQLite is built with the `dbstat` table.
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
                println!("store/size: {name}: {size} bytes, {per:.2} bytes per sample");
            }
        }
        Err(e) => println!("store/size: no per-table sizes ({e})"),
    }
    drop(conn);
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
