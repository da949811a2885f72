//! `/api/healing` over 1,000,000 persisted healing attempts: the rebuild of the analytics from the
//! store (what a start does, off the engine thread), a report computed anew (a request after a new
//! attempt arrived), and a report from the cache (any other request), against the floor of
//! reading the attempts' count in the same store, measured in the same run.
//!
//! The store is generated into `target/bench-data/healing-1m/` (4 strategies, 10 alerts, 20
//! services, the last 30 days) and removed at the end.
//!
//! Run: `cargo bench -p monitor-host --bench healing_report`

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use monitor_host::healing_log::{HealingAnalytics, build_log};
use monitor_host::history::{DATABASE_FILE, HealRecord, Persistence};

const ATTEMPTS: i64 = 1_000_000;
const DAY: Duration = Duration::from_secs(86_400);

fn now_ms() -> u64 {
    monitor_host::engine::now_ms()
}

fn scratch() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data/healing-1m")
}

/// A store holding [`ATTEMPTS`] settled attempts spread over the last 30 days.
fn build(dir: &Path, now: u64) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    let started = Instant::now();
    drop(Persistence::open(dir, DAY, 30 * DAY, DAY, now).unwrap());
    let path = dir.join(DATABASE_FILE);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    let span = 30 * 86_400_000 - 60_000;
    conn.execute(
        "WITH RECURSIVE t(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM t WHERE i < ?1 - 1)
         INSERT INTO healing_attempts (strategy, alert, labels, attempt, started_ms, finished_ms,
             success, verified, message, detected_ms, recovered_ms, reason)
         SELECT 'strategy_' || (i % 4), 'alert_' || (i % 10),
             '{\"service\":\"s' || (i % 20) || '\"}', 1 + (i % 3),
             ?2 + i * ?3 / ?1 + 5000, ?2 + i * ?3 / ?1 + 5000 + 200 + (i % 700),
             (i % 10) < 8, (i % 10) < 7, 'bench', ?2 + i * ?3 / ?1,
             CASE WHEN (i % 10) < 7 THEN ?2 + i * ?3 / ?1 + 20000 + (i * 7919) % 600000 END,
             CASE WHEN (i % 10) >= 7 THEN 'the alert still fired 2m after the strategy reported success' END
         FROM t",
        rusqlite::params![ATTEMPTS, (now - span) as i64, span as i64],
    )
    .unwrap();
    eprintln!(
        "healing_report: {ATTEMPTS} attempts generated in {:.1} s ({} MB)",
        started.elapsed().as_secs_f64(),
        std::fs::metadata(&path).unwrap().len() >> 20
    );
    path
}

fn one_attempt(now: u64) -> HealRecord {
    HealRecord {
        strategy: "strategy_0".into(),
        alert: "alert_0".into(),
        labels: [("service".to_owned(), "s0".to_owned())].into(),
        attempt: 1,
        success: true,
        message: String::new(),
        duration_ms: 300,
        started_ms: now - 10_000,
        detected_ms: now - 20_000,
        verified: Some(true),
        recovered_ms: Some(now - 5_000),
        reason: None,
    }
}

fn bench(c: &mut Criterion) {
    let dir = scratch();
    let now = now_ms();
    let path = build(&dir, now);
    let labels = vec!["service".to_owned()];
    let read_only = || {
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap()
    };

    let mut g = c.benchmark_group("healing_report");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    let mut floor = Duration::ZERO;
    g.bench_function("floor/count_attempts", |b| {
        let conn = read_only();
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                let n: i64 = conn
                    .query_row("SELECT count(*) FROM healing_attempts", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(n, ATTEMPTS);
            }
            floor = t.elapsed() / iters as u32;
            t.elapsed()
        });
    });
    let mut rebuild = Duration::ZERO;
    g.bench_function("rebuild_at_start/1m", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                let log = build_log(&read_only(), 0, &labels).unwrap();
                assert_eq!(log.len() as i64, ATTEMPTS);
            }
            rebuild = t.elapsed() / iters as u32;
            t.elapsed()
        });
    });
    // The host's own path: the background rebuild, then requests.
    let analytics = Arc::new(HealingAnalytics::new(labels.clone(), 30 * DAY));
    analytics
        .rebuild(&path, labels, now)
        .unwrap()
        .join()
        .unwrap();
    let mut uncached = Duration::ZERO;
    g.bench_function("request_uncached/1m", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                // A new attempt invalidates the cache.
                analytics.add(&one_attempt(now));
                let c = analytics.report(None, now, Duration::ZERO).unwrap();
                assert!(c.json.len() > 1000);
            }
            uncached = t.elapsed() / iters as u32;
            t.elapsed()
        });
    });
    let mut cached = Duration::ZERO;
    g.bench_function("request_cached/1m", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                let c = analytics.report(None, now, Duration::ZERO).unwrap();
                assert!(c.json.len() > 1000);
            }
            cached = t.elapsed() / iters as u32;
            t.elapsed()
        });
    });
    g.finish();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    eprintln!(
        "healing_report over {ATTEMPTS} attempts: rebuild at start {:.0} ms, uncached request {:.1} ms, \
         cached request {:.4} ms; floor (count the attempts) {:.1} ms: rebuild {:.1}x the floor, \
         uncached {:.1}x, cached {:.5}x; uncached / cached = {:.0}",
        ms(rebuild),
        ms(uncached),
        ms(cached),
        ms(floor),
        ms(rebuild) / ms(floor),
        ms(uncached) / ms(floor),
        ms(cached) / ms(floor),
        ms(uncached) / ms(cached).max(1e-9),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
