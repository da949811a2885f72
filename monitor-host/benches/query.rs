//! `query_range` for one series through the query API's handler (selector, store reads, step
//! evaluation, JSON): the last hour at full resolution (1 s points, step 1 s: 3,601 values from
//! raw points, read from blocks of 120; the floor reads the blocks' rows without decoding them) and 30 days from rollups (step 1 h: 721 values from `rollup_1h`; step 5 m: 8,641
//! values, also from `rollup_1h`). Each against the floor of reading the same rows with a bare
//! prepared statement in the same run; the ratios are printed at the end.
//!
//! Run: `cargo bench -p monitor-host --bench query`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use monitor_core::http::Request;
use monitor_host::history::{DATABASE_FILE, Persistence};
use monitor_host::query::QueryApi;
use monitor_host::store::SeriesKey;
use monitor_plugin::{Labels, SampleKind};

const DAY_MS: u64 = 86_400_000;
const END_MS: u64 = 1_800_000_000_000;
const OTHER_SERIES: usize = 99;

/// A store of 100 series with 30 days each: every 10 s up to the last hour, then every second;
/// raw points kept a day. The benched series is `app_load{host="h0"}`.
fn store() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("monitor-bench-query-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let day = Duration::from_millis(DAY_MS);
    let (mut p, _) = Persistence::open(&dir, day, 30 * day, day, END_MS).unwrap();
    let key = |i: usize| SeriesKey {
        name: "app.load".into(),
        labels: Labels::from([("host".to_owned(), format!("h{i}"))]),
    };
    let start = END_MS - 30 * DAY_MS;
    let hour_ago = END_MS - 3_600_000;
    let times = (start..hour_ago)
        .step_by(10_000)
        .chain((hour_ago..=END_MS).step_by(1_000));
    for ts in times {
        let v = (ts as f64 / 60_000.0).sin() * 50.0 + 50.0;
        p.batch().point(&key(0), SampleKind::Gauge, "bench", ts, v);
    }
    // The others: one day, every minute, so the selector has some series to look through.
    for i in 1..=OTHER_SERIES {
        for ts in (END_MS - DAY_MS..=END_MS).step_by(60_000) {
            p.batch()
                .point(&key(i), SampleKind::Gauge, "bench", ts, i as f64);
        }
    }
    p.commit(END_MS);
    assert_eq!(p.stats().errors_total, 0, "the bench store was written");
    dir
}

/// One scenario: a `query_range` and the bare read of the rows it needs.
struct Scenario {
    name: &'static str,
    query: String,
    floor_sql: &'static str,
    from_ms: u64,
}

fn scenarios() -> Vec<Scenario> {
    let end = END_MS / 1000;
    let q = |range: u64, step: &str| {
        format!(
            "query=app_load%7Bhost%3D%22h0%22%7D&start={}&end={end}&step={step}",
            end - range
        )
    };
    vec![
        Scenario {
            name: "range_1h_raw_step_1s",
            query: q(3600, "1s"),
            floor_sql: "SELECT count, data FROM blocks WHERE series_id = 1 AND end_ms > ?1",
            from_ms: END_MS - 3_600_000 - 300_000,
        },
        Scenario {
            name: "range_30d_rollup_step_1h",
            query: q(30 * 86_400, "1h"),
            floor_sql: "SELECT bucket_ms, sum / count FROM rollup_1h WHERE series_id = 1 \
                        AND bucket_ms > ?1",
            from_ms: END_MS - 30 * DAY_MS - 3_600_000,
        },
        Scenario {
            name: "range_30d_rollup_step_5m",
            query: q(30 * 86_400, "5m"),
            floor_sql: "SELECT bucket_ms, sum / count FROM rollup_1h WHERE series_id = 1 \
                        AND bucket_ms > ?1",
            from_ms: END_MS - 30 * DAY_MS - 3_600_000,
        },
    ]
}

fn query(api: &QueryApi, s: &Scenario) -> usize {
    let r = api.handle(
        &Request {
            method: "GET",
            path: "/api/v1/query_range",
            query: &s.query,
            ..Request::default()
        },
        END_MS as i64,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.body.len()
}

fn floor(conn: &rusqlite::Connection, s: &Scenario) -> usize {
    let mut stmt = conn.prepare_cached(s.floor_sql).unwrap();
    let rows = stmt
        // Each row's two columns as stored (numbers, or a block's bytes), not decoded.
        .query_map([s.from_ms as i64], |r| {
            Ok(std::hint::black_box((r.get_ref(0)?, r.get_ref(1)?))
                .0
                .data_type())
        })
        .unwrap();
    rows.collect::<rusqlite::Result<Vec<_>>>().unwrap().len()
}

/// Mean time of `f` over `n` runs.
fn mean(n: u32, mut f: impl FnMut() -> usize) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(f());
    }
    start.elapsed() / n
}

fn bench(c: &mut Criterion) {
    let dir = store();
    let db = dir.join(DATABASE_FILE);
    let api = QueryApi::new(db.clone());
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let scenarios = scenarios();
    let mut group = c.benchmark_group("query");
    for s in &scenarios {
        group.bench_function(s.name, |b| b.iter(|| query(&api, s)));
        group.bench_function(format!("floor/{}", s.name), |b| b.iter(|| floor(&conn, s)));
    }
    group.finish();
    for s in &scenarios {
        let (rows, bytes) = (floor(&conn, s), query(&api, s));
        let ours = mean(200, || query(&api, s));
        let bare = mean(200, || floor(&conn, s));
        println!(
            "query/{}: {ours:?} per query ({bytes} bytes of JSON), floor {bare:?} ({rows} rows): \
             {:.1}x the floor",
            s.name,
            ours.as_secs_f64() / bare.as_secs_f64()
        );
    }
    drop(conn);
    drop(api);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
