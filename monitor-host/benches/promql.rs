//! PromQL through the query API's handler over 1,000 series with 1 h of 1 s points each
//! (`app_latency_seconds_bucket`, 100 handlers x 10 buckets, cumulative counters):
//!
//! - `promql/sum_rate`: `sum by (handler) (rate(app_latency_seconds_bucket[5m]))`;
//! - `promql/histogram_quantile`: `histogram_quantile(0.99, sum by (le)
//!   (rate(app_latency_seconds_bucket[5m])))`;
//!
//! each as an instant query (reads 5 minutes of every series) and as a range query over the hour
//! at a 1 m step (reads the whole hour), against the floor of reading the same points alone with
//! the store's `Reader` in the same run; the ratios are printed at the end.
//!
//! Run: `cargo bench -p monitor-host --bench promql`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use monitor_core::http::Request;
use monitor_host::history::{DATABASE_FILE, Persistence, Reader};
use monitor_host::query::QueryApi;
use monitor_host::store::SeriesKey;
use monitor_plugin::{Labels, SampleKind};

const END_MS: u64 = 1_800_000_000_000;
const HOUR_MS: u64 = 3_600_000;
const HANDLERS: usize = 100;
const BOUNDS: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
];

/// The store: 1,000 bucket series, a point per second for the hour up to `END_MS`.
fn store() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("monitor-bench-promql-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let day = Duration::from_secs(86_400);
    let (mut p, _) = Persistence::open(&dir, day, 30 * day, day, END_MS).unwrap();
    let keys: Vec<SeriesKey> = (0..HANDLERS)
        .flat_map(|h| {
            BOUNDS.iter().map(move |le| SeriesKey {
                name: "app.latency.seconds.bucket".into(),
                labels: Labels::from([
                    ("handler".to_owned(), format!("h{h}")),
                    ("le".to_owned(), (*le).to_owned()),
                ]),
            })
        })
        .collect();
    let start = END_MS - HOUR_MS;
    for minute in 0..60 {
        for second in 0..60 {
            let ts = start + (minute * 60 + second) * 1000;
            let k = (minute * 60 + second) as f64;
            for (i, key) in keys.iter().enumerate() {
                let b = (i % BOUNDS.len()) as f64;
                let v = k * (b + 1.0) + (i / BOUNDS.len()) as f64;
                p.batch().point(key, SampleKind::Gauge, "bench", ts, v);
            }
        }
        p.commit(start + (minute + 1) * 60_000);
    }
    assert_eq!(p.stats().errors_total, 0, "the bench store was written");
    dir
}

struct Scenario {
    name: &'static str,
    path: &'static str,
    query: String,
    /// The window of points the evaluation reads, `(after, to]` in ms.
    window: (i64, i64),
}

fn scenarios() -> Vec<Scenario> {
    let end = END_MS / 1000;
    let start = end - 3600;
    let sum_rate = "sum%20by%20(handler)%20(rate(app_latency_seconds_bucket%5B5m%5D))";
    let quantile = "histogram_quantile(0.99%2C%20sum%20by%20(le)%20\
                    (rate(app_latency_seconds_bucket%5B5m%5D)))";
    let instant = |q: &str| format!("query={q}&time={end}");
    let range = |q: &str| format!("query={q}&start={}&end={end}&step=60", start + 300);
    let (e, h) = (END_MS as i64, HOUR_MS as i64);
    vec![
        Scenario {
            name: "sum_rate/instant",
            path: "/api/v1/query",
            query: instant(sum_rate),
            window: (e - 300_000, e),
        },
        Scenario {
            name: "histogram_quantile/instant",
            path: "/api/v1/query",
            query: instant(quantile),
            window: (e - 300_000, e),
        },
        Scenario {
            name: "sum_rate/range_1h_step_1m",
            path: "/api/v1/query_range",
            query: range(sum_rate),
            window: (e - h, e),
        },
        Scenario {
            name: "histogram_quantile/range_1h_step_1m",
            path: "/api/v1/query_range",
            query: range(quantile),
            window: (e - h, e),
        },
    ]
}

fn query(api: &QueryApi, s: &Scenario) -> usize {
    let r = api.handle(
        &Request {
            method: "GET",
            path: s.path,
            query: &s.query,
            ..Request::default()
        },
        END_MS as i64,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.body.len()
}

/// Reading the points the evaluation reads, and nothing else.
fn floor(reader: &Reader, ids: &[i64], (after, to): (i64, i64)) -> usize {
    ids.iter()
        .map(|id| reader.points(*id, after, to).unwrap().len())
        .sum()
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
    let reader = Reader::open(&db).unwrap().unwrap();
    let ids: Vec<i64> = reader.series().unwrap().iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), HANDLERS * BOUNDS.len());
    let scenarios = scenarios();
    let mut group = c.benchmark_group("promql");
    group.sample_size(10);
    for s in &scenarios {
        group.bench_function(s.name, |b| b.iter(|| query(&api, s)));
        group.bench_function(format!("floor/{}", s.name), |b| {
            b.iter(|| floor(&reader, &ids, s.window))
        });
    }
    group.finish();
    for s in &scenarios {
        let (points, bytes) = (floor(&reader, &ids, s.window), query(&api, s));
        let ours = mean(5, || query(&api, s));
        let bare = mean(5, || floor(&reader, &ids, s.window));
        println!(
            "promql/{}: {ours:?} per evaluation ({bytes} bytes of JSON), floor {bare:?} \
             (reading {points} points): {:.2}x the floor",
            s.name,
            ours.as_secs_f64() / bare.as_secs_f64()
        );
    }
    drop(api);
    drop(reader);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
