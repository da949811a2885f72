//! PromQL over the host's store against a real Prometheus holding the same samples.
//!
//! A deterministic set of series over the last two hours (counters with resets, gauges, classic
//! histogram buckets under two label sets, a series with a gap, one that stops) is written both
//! into the host's store (through its history API) and, as OpenMetrics, into a Prometheus
//! database (`promtool tsdb create-blocks-from openmetrics`). Every expression of the list is then
//! asked of both, `/api/v1/query` at several times and `/api/v1/query_range` over the last 100
//! minutes, and the answers must agree: the same result type, the same series, values within
//! 1e-9 relative. Skipped when `prometheus` or `promtool` is missing, unless
//! `MONITOR_REQUIRE_PROMTOOL=1`.
//!
//! Samples sit 137 ms (plus a few ms per series) past the 15 s grid and every evaluation time is
//! 17 s past a minute, so no sample ever falls on the edge of a window: Prometheus 2 closes range
//! and lookback windows on the left, Prometheus 3 (and the host) opens them, and these answers
//! are the same either way.

use std::fmt::Write as _;
use std::time::Duration;

use monitor_core::http::Request;
use monitor_host::history::{DATABASE_FILE, Persistence};
use monitor_host::query::QueryApi;
use monitor_host::store::SeriesKey;
use monitor_plugin::{Labels, SampleKind};
use monitor_tests::{Prometheus, Scratch, free_port, http_get, promtool_create_blocks};
use serde_json::Value;

const INTERVAL_MS: i64 = 15_000;
const SPAN_MS: i64 = 2 * 3_600_000;

/// One generated series: its stored name, kind and labels, and the name Prometheus sees.
struct Generated {
    stored: &'static str,
    kind: SampleKind,
    exposed: &'static str,
    labels: Vec<(&'static str, String)>,
    points: Vec<(i64, f64)>,
}

fn series(
    stored: &'static str,
    kind: SampleKind,
    exposed: &'static str,
    labels: &[(&'static str, &str)],
) -> Generated {
    Generated {
        stored,
        kind,
        exposed,
        labels: labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        points: Vec::new(),
    }
}

/// The data set, sampled every 15 s from `start_ms`.
fn generate(start_ms: i64) -> Vec<Generated> {
    let steps = SPAN_MS / INTERVAL_MS;
    let at = |k: i64, i: usize| start_ms + k * INTERVAL_MS + 137 + 7 * i as i64;
    let mut out = Vec::new();
    // Counters, each reset once at its own time.
    for (i, (method, code)) in [
        ("get", "200"),
        ("get", "500"),
        ("post", "200"),
        ("post", "500"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut g = series(
            "http.requests",
            SampleKind::Counter,
            "http_requests_total",
            &[("method", method), ("code", code)],
        );
        let mut v = 1_000.0 + 100.0 * i as f64;
        for k in 0..steps {
            if k == 150 + 90 * i as i64 {
                v = 3.0 + i as f64;
            }
            v += ((k * 7 + i as i64 * 3) % 11) as f64 * 0.5 + 1.0;
            g.points.push((at(k, i), v));
        }
        out.push(g);
    }
    // Gauges, and a second family over some of the same zones.
    for (i, zone) in ["a", "b", "c"].into_iter().enumerate() {
        let mut g = series(
            "node.temperature",
            SampleKind::Gauge,
            "node_temperature",
            &[("zone", zone)],
        );
        let mut l = series(
            "node_limit",
            SampleKind::Gauge,
            "node_limit",
            &[("zone", zone)],
        );
        for k in 0..steps {
            let x = k as f64 / 20.0 + i as f64;
            g.points
                .push((at(k, i + 4), 20.0 + 8.0 * x.sin() + i as f64 * 0.37));
            l.points
                .push((at(k, i + 7), 24.0 + (k % 13) as f64 * 0.25 - i as f64));
        }
        out.push(g);
        if zone != "c" {
            out.push(l);
        }
    }
    // Classic histogram buckets (cumulative counters) for two handlers.
    let bounds = ["0.05", "0.1", "0.25", "0.5", "1", "+Inf"];
    for (h, handler) in ["api", "web"].into_iter().enumerate() {
        let mut counts = [0.0; 6];
        let mut buckets: Vec<Generated> = bounds
            .iter()
            .map(|le| {
                series(
                    "request_duration_seconds_bucket",
                    SampleKind::Gauge,
                    "request_duration_seconds_bucket",
                    &[("handler", handler), ("le", le)],
                )
            })
            .collect();
        for k in 0..steps {
            let mut cumulative = 0.0;
            for (b, bucket) in buckets.iter_mut().enumerate() {
                counts[b] += ((k * (b as i64 + 3) + h as i64 * 5) % (7 + b as i64)) as f64;
                cumulative += counts[b];
                bucket.points.push((at(k, 10 + h), cumulative));
            }
        }
        out.extend(buckets);
    }
    // A gauge with a 10-minute gap, and one that stops after the first hour.
    let mut flaky = series(
        "flaky_gauge",
        SampleKind::Gauge,
        "flaky_gauge",
        &[("instance", "x")],
    );
    let mut stopped = series(
        "stopped_gauge",
        SampleKind::Gauge,
        "stopped_gauge",
        &[("job", "batch")],
    );
    for k in 0..steps {
        if !(300..340).contains(&k) {
            flaky.points.push((at(k, 12), ((k * 5) % 17) as f64));
        }
        if k < steps / 2 {
            stopped.points.push((at(k, 13), k as f64 * 1.5));
        }
    }
    out.push(flaky);
    out.push(stopped);
    out
}

fn openmetrics(data: &[Generated]) -> String {
    let mut text = String::new();
    for g in data {
        for &(ts, v) in &g.points {
            let labels: Vec<String> = g
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            let _ = writeln!(
                text,
                "{}{{{}}} {v} {}.{:03}",
                g.exposed,
                labels.join(","),
                ts / 1000,
                ts % 1000
            );
        }
    }
    text.push_str("# EOF\n");
    text
}

fn store(dir: &std::path::Path, data: &[Generated], now_ms: i64) {
    let day = Duration::from_secs(86_400);
    let (mut p, _) = Persistence::open(dir, day, 30 * day, day, now_ms as u64).unwrap();
    for g in data {
        let key = SeriesKey {
            name: g.stored.into(),
            labels: g
                .labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect::<Labels>(),
        };
        for &(ts, v) in &g.points {
            p.batch().point(&key, g.kind, "test", ts as u64, v);
        }
    }
    p.commit(now_ms as u64);
    assert_eq!(p.stats().errors_total, 0);
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// An answer reduced to what must agree: the status, the error type or the result type, and
/// the series (sorted by labels) with their values.
#[derive(Debug)]
enum Answer {
    Error(u16, String),
    Data(String, Vec<(String, Vec<(f64, f64)>)>),
}

fn answer(status: u16, body: &str) -> Answer {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    if v["status"] != "success" {
        return Answer::Error(status, v["errorType"].as_str().unwrap_or("").to_owned());
    }
    let kind = v["data"]["resultType"].as_str().unwrap().to_owned();
    let point = |p: &Value| {
        let t = p[0].as_f64().unwrap();
        let value = match p[1].as_str().unwrap() {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            s => s.parse().unwrap(),
        };
        (t, value)
    };
    let result = &v["data"]["result"];
    let mut series: Vec<(String, Vec<(f64, f64)>)> = match kind.as_str() {
        "scalar" => vec![(String::new(), vec![point(result)])],
        "string" => vec![(result[1].to_string(), Vec::new())],
        _ => result
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let points = match s.get("values") {
                    Some(vs) => vs.as_array().unwrap().iter().map(point).collect(),
                    None => vec![point(&s["value"])],
                };
                (s["metric"].to_string(), points)
            })
            .collect(),
    };
    series.sort_by(|a, b| a.0.cmp(&b.0));
    Answer::Data(kind, series)
}

fn same_value(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// The first difference between two answers, if any.
fn difference(ours: &Answer, theirs: &Answer) -> Option<String> {
    match (ours, theirs) {
        (Answer::Error(s1, t1), Answer::Error(s2, t2)) => {
            (s1 != s2 || t1 != t2).then(|| format!("errors {s1} {t1} / {s2} {t2}"))
        }
        (Answer::Data(k1, s1), Answer::Data(k2, s2)) => {
            if k1 != k2 {
                return Some(format!("result types {k1} / {k2}"));
            }
            let names = |s: &[(String, Vec<(f64, f64)>)]| -> Vec<String> {
                s.iter().map(|x| x.0.clone()).collect()
            };
            if names(s1) != names(s2) {
                return Some(format!("series {:?} / {:?}", names(s1), names(s2)));
            }
            for ((metric, p1), (_, p2)) in s1.iter().zip(s2) {
                if p1.len() != p2.len() {
                    let t1: Vec<f64> = p1.iter().map(|p| p.0).collect();
                    let t2: Vec<f64> = p2.iter().map(|p| p.0).collect();
                    return Some(format!("{metric}: times {t1:?} / {t2:?}"));
                }
                if let Some((a, b)) = p1
                    .iter()
                    .zip(p2)
                    .find(|(a, b)| a.0 != b.0 || !same_value(a.1, b.1))
                {
                    return Some(format!("{metric}: {a:?} / {b:?}"));
                }
            }
            None
        }
        _ => Some(format!("{ours:?} / {theirs:?}")),
    }
}

/// Every supported family: selectors and modifiers, range and instant functions, aggregations,
/// operators and matching, subqueries. `{at}` is replaced by a fixed time for `@`.
const EXPRESSIONS: &[&str] = &[
    "node_temperature",
    "node_temperature offset 10m",
    "node_temperature @ {at}",
    r#"node_temperature{zone=~"a|b"}"#,
    r#"node_temperature{zone!="a"}"#,
    r#"node_temperature{zone!~"b.*"}"#,
    r#"{__name__=~"node_.*"}"#,
    "flaky_gauge",
    "stopped_gauge",
    "node_temperature[2m]",
    r#""a string""#,
    "rate(http_requests_total[5m])",
    "rate(http_requests_total[5m] offset 7m)",
    "rate(http_requests_total[1m])",
    "irate(http_requests_total[5m])",
    "increase(http_requests_total[10m])",
    "increase(http_requests_total[1h])",
    "delta(node_temperature[10m])",
    "idelta(node_temperature[5m])",
    "deriv(node_temperature[10m])",
    "predict_linear(node_temperature[10m], 600)",
    "rate(flaky_gauge[5m])",
    "avg_over_time(node_temperature[10m])",
    "min_over_time(node_temperature[10m])",
    "max_over_time(node_temperature[10m])",
    "sum_over_time(node_temperature[10m])",
    "count_over_time(flaky_gauge[15m])",
    "quantile_over_time(0.3, node_temperature[10m])",
    "stddev_over_time(node_temperature[10m])",
    "stdvar_over_time(node_temperature[10m])",
    "last_over_time(stopped_gauge[10m])",
    "present_over_time(flaky_gauge[5m])",
    "changes(flaky_gauge[15m])",
    "resets(http_requests_total[1h])",
    r#"absent(nonexistent{job="x", zone=~"a"})"#,
    "absent(node_temperature)",
    "absent_over_time(nonexistent[5m])",
    "absent_over_time(stopped_gauge[5m])",
    "histogram_quantile(0.9, rate(request_duration_seconds_bucket[5m]))",
    "histogram_quantile(0.5, sum by (le) (rate(request_duration_seconds_bucket[10m])))",
    "histogram_quantile(0.99, request_duration_seconds_bucket)",
    "abs(node_temperature - 22)",
    "ceil(node_temperature)",
    "floor(node_temperature)",
    "round(node_temperature)",
    "round(node_temperature, 0.5)",
    "sqrt(node_temperature)",
    "exp(node_temperature / 10)",
    "ln(node_temperature)",
    "log2(node_temperature)",
    "log10(node_temperature)",
    "clamp(node_temperature, 18, 24)",
    "clamp_min(node_temperature, 20)",
    "clamp_max(node_temperature, 20)",
    "time()",
    "timestamp(node_temperature)",
    "timestamp(node_temperature * 2)",
    "vector(3)",
    "scalar(sum(node_temperature))",
    "scalar(node_temperature)",
    r#"label_replace(node_temperature, "z", "zone-$1", "zone", "(.*)")"#,
    r#"label_replace(node_temperature, "zone", "", "zone", "a")"#,
    r#"label_join(node_temperature, "j", "-", "zone", "__name__")"#,
    "sort(node_temperature)",
    "sort_desc(node_temperature)",
    "sum(rate(http_requests_total[5m]))",
    "sum by (method) (rate(http_requests_total[5m]))",
    "sum without (code) (http_requests_total)",
    "avg by (code) (http_requests_total)",
    "min(node_temperature)",
    "max by (zone) (node_temperature)",
    "count(http_requests_total)",
    "group by (method) (http_requests_total)",
    "stddev(node_temperature)",
    "stdvar by (method) (http_requests_total)",
    "quantile(0.5, node_temperature)",
    "topk(2, node_temperature)",
    "bottomk(1, http_requests_total) by (method)",
    r#"count_values("v", round(node_temperature))"#,
    "sum by (__name__) ({__name__=~\"node_.*\"})",
    "-node_temperature",
    "1 + 2 * 3 - 4 / 8 % 3 ^ 2",
    "node_temperature * 2 + 1",
    "2 ^ (node_temperature / 10)",
    "node_temperature % 7",
    "node_temperature / node_limit",
    "node_temperature - on(zone) node_limit",
    "node_temperature > 20",
    "node_temperature > bool 20",
    "20 < node_temperature",
    "node_temperature >= node_limit",
    "node_temperature != bool node_limit",
    "1 < bool 2",
    "node_temperature and node_limit",
    "node_temperature or node_limit",
    "node_temperature unless node_limit",
    "node_temperature and on(zone) node_limit",
    "http_requests_total / ignoring(code) group_left sum without (code) (http_requests_total)",
    "sum by (method) (rate(http_requests_total[5m])) * on(method) group_right http_requests_total",
    "http_requests_total / on(method) group_left(zone) node_temperature",
    "max_over_time(rate(http_requests_total[5m])[30m:1m])",
    "avg_over_time(node_temperature[20m:])",
    "rate(http_requests_total[10m:2m])",
    // Errors: many-to-many and one-to-one with several matches, duplicate series.
    "node_temperature + on() node_limit",
    "http_requests_total + on(method) sum by (method, code) (http_requests_total)",
    r#"rate({__name__=~"node_temperature|node_limit"}[5m])"#,
];

#[test]
fn promql_answers_as_prometheus_does_on_the_same_samples() {
    let dir = Scratch::new("promql");
    let now = monitor_host::engine::now_ms() as i64;
    // Minute-aligned: evaluation times are 17 s past a minute, samples 137 ms past the grid.
    let end = now - now % 60_000 - 60_000;
    let start = end - SPAN_MS;
    let data = generate(start);
    let file = dir.write("samples.om", &openmetrics(&data));
    let prom_dir = dir.join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    if promtool_create_blocks(&file, &prom_dir.join("tsdb")).is_none() {
        return;
    }
    let Some(prometheus) = Prometheus::start(free_port(), &prom_dir, "prometheus.log") else {
        return;
    };
    let host_dir = dir.join("host");
    store(&host_dir, &data, now);
    let api = QueryApi::new(host_dir.join(DATABASE_FILE));
    let ours = |path: &str| {
        let (path, query) = path.split_once('?').unwrap();
        let r = api.handle(
            &Request {
                method: "GET",
                path,
                query,
                ..Request::default()
            },
            now,
        );
        answer(r.status, std::str::from_utf8(&r.body).unwrap())
    };
    let theirs = |path: &str| {
        let (status, body) = http_get(prometheus.port, path).expect("prometheus answers");
        answer(status, &body)
    };
    let fixed_at = seconds(start + 3_600_000 + 17_000);
    let instants = [
        start + 20 * 60_000 + 17_000,
        start + 81 * 60_000 + 17_000, // flaky_gauge's gap (75 to 85 min): gone after 5 min
        start + 78 * 60_000 + 17_000, // 3 minutes into the gap: still seen
        start + 62 * 60_000 + 17_000, // stopped_gauge stopped at 60 min: still seen
        end - 43_000,
    ];
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut with_data = 0;
    for expr in EXPRESSIONS {
        let q = encode(&expr.replace("{at}", &fixed_at));
        let mut paths: Vec<String> = instants
            .iter()
            .map(|t| format!("/api/v1/query?query={q}&time={}", seconds(*t)))
            .collect();
        paths.push(format!(
            "/api/v1/query_range?query={q}&start={}&end={}&step=60",
            seconds(start + 20 * 60_000 + 17_000),
            seconds(end - 43_000)
        ));
        paths.push(format!(
            "/api/v1/query_range?query={q}&start={}&end={}&step=30",
            seconds(start + 60 * 60_000 + 17_000),
            seconds(start + 90 * 60_000 + 17_000)
        ));
        for path in paths {
            let (a, b) = (ours(&path), theirs(&path));
            compared += 1;
            if matches!(&b, Answer::Data(_, series) if !series.is_empty()) {
                with_data += 1;
            }
            if let Some(d) = difference(&a, &b) {
                failures.push(format!("{expr}\n  {path}\n  host / prometheus: {d}"));
            }
        }
    }
    // Most answers hold series: the comparison is not between empty answers.
    assert!(
        with_data * 10 >= compared * 8,
        "{with_data} of {compared} with data"
    );
    assert!(
        failures.is_empty(),
        "{} of {compared} answers differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn unsupported_promql_is_refused_by_name() {
    let dir = Scratch::new("promql-unsupported");
    let api = QueryApi::new(dir.join(DATABASE_FILE));
    for (query, name) in [
        ("sgn(x)", "unsupported PromQL function \"sgn\""),
        ("hour()", "unsupported PromQL function \"hour\""),
        (
            "sum(rate(x[5m])) + sgn(y)",
            "unsupported PromQL function \"sgn\"",
        ),
        (
            "max_over_time(deg(x)[5m:])",
            "unsupported PromQL function \"deg\"",
        ),
    ] {
        for path in ["/api/v1/query", "/api/v1/query_range"] {
            let q = format!("query={}&start=0&end=60&step=15", encode(query));
            let r = api.handle(
                &Request {
                    method: "GET",
                    path,
                    query: &q,
                    ..Request::default()
                },
                60_000,
            );
            let body = String::from_utf8(r.body.to_vec()).unwrap();
            assert_eq!(r.status, 400, "{query}: {body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["errorType"], "bad_data", "{query}: {body}");
            assert!(
                v["error"].as_str().unwrap().contains(name),
                "{query}: {body}"
            );
        }
    }
    // And a parse error keeps the parser's message.
    let r = api.handle(
        &Request {
            method: "GET",
            path: "/api/v1/query",
            query: "query=rate(x%5B5m%5D",
            ..Request::default()
        },
        0,
    );
    assert_eq!(r.status, 400);
    assert!(
        String::from_utf8(r.body.to_vec())
            .unwrap()
            .contains("invalid parameter \\\"query\\\"")
    );
}

/// The instant vector `query` answers at `at_ms`, through the query API.
fn instant(api: &QueryApi, query: &str, at_ms: i64) -> Vec<Value> {
    let q = format!("query={}&time={}", encode(query), seconds(at_ms));
    let r = api.handle(
        &Request {
            method: "GET",
            path: "/api/v1/query",
            query: &q,
            ..Request::default()
        },
        at_ms,
    );
    let body = String::from_utf8(r.body.to_vec()).unwrap();
    assert_eq!(r.status, 200, "{query}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"].as_array().unwrap().clone()
}

#[test]
fn the_analytics_extensions_answer_over_the_store() {
    let dir = Scratch::new("promql-extensions");
    // Two hours of a steady queue depth with noise under 0.4, then one sample 3 above.
    let start = 1_700_000_000_000;
    let mut g = series(
        "queue.depth",
        SampleKind::Gauge,
        "queue_depth",
        &[("job", "a")],
    );
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    g.points = (0..480)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (start + i * INTERVAL_MS, 100.0 + (x % 1000) as f64 / 2500.0)
        })
        .collect();
    let spike_at = start + 480 * INTERVAL_MS;
    g.points.push((spike_at, 103.0));
    store(dir.path(), &[g], spike_at);
    let api = QueryApi::new(dir.join(DATABASE_FILE));

    let rule = "abs(anomaly_score(queue_depth[1h])) > 4";
    assert!(instant(&api, rule, spike_at - INTERVAL_MS).is_empty());
    let fired = instant(&api, rule, spike_at);
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["metric"], serde_json::json!({"job": "a"}));
    let z: f64 = fired[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(z > 15.0, "{z}");

    // A flat forecast of the steady hour stays near 100.
    let f = instant(
        &api,
        "forecast(queue_depth[1h], 4 * 3600)",
        spike_at - INTERVAL_MS,
    );
    let f: f64 = f[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!((f - 100.2).abs() < 1.0, "{f}");
}
