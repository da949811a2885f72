//! Healing analytics through the host binary: a service that crashes on the test's schedule,
//! healed by a strategy that works on 3 calls in 5 (`11010`, by a counter file), and a second
//! service whose strategy reports success without repairing anything. `/api/healing`, `/metrics`
//! and `monitor-host healing` must show what an independent computation over the stored attempts
//! gives: verified success rates, MTTR by failure type, recommendations; the unverified successes
//! count as failures; a restart rebuilds the same figures from the store.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use monitor_tests::{
    RunningHost, Scratch, cli, eventually, free_port, http_get, library, stdout, toml_path,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(120);
/// Crashes of service `a`.
const CRASHES: usize = 5;
/// Attempts the `never` strategy gets before giving up.
const NEVER_ATTEMPTS: usize = 5;

fn config(dir: &Scratch, port: u16) -> PathBuf {
    let a = dir.write("a", "5");
    let b = dir.write("b", "5");
    let counter = dir.join("counter");
    let lib = toml_path(&library("monitor-test-plugins"));
    dir.write(
        "monitor.toml",
        &format!(
            r#"
[host]
interval = "200ms"
listen = "127.0.0.1:{port}"
data_dir = "data"

[healing]
failure_type_labels = ["collector"]

[[collector]]
plugin = "file"
name = "svc_a"
library = {lib}
[collector.config]
path = {a}

[[collector]]
plugin = "file"
name = "svc_b"
library = {lib}
[collector.config]
path = {b}

[[alert]]
name = "a_down"
metric = "test.value"
condition = "above"
threshold = 10
labels = {{ collector = "svc_a" }}

[[alert]]
name = "b_down"
metric = "test.value"
condition = "above"
threshold = 10
labels = {{ collector = "svc_b" }}

[[strategy]]
plugin = "fixer"
name = "sometimes"
library = {lib}
on = ["a_down"]
max_attempts = 100
within = "1h"
cooldown = "400ms"
verify_within = "30s"
[strategy.config]
path = {a}
value = 5
pattern = "11010"
counter = {counter}

[[strategy]]
plugin = "fixer"
name = "never"
library = {lib}
on = ["b_down"]
max_attempts = {NEVER_ATTEMPTS}
within = "1h"
cooldown = "300ms"
verify_within = "1s"
[strategy.config]
succeed = true
"#,
            a = toml_path(&a),
            b = toml_path(&b),
            counter = toml_path(&counter),
        ),
    )
}

/// One stored attempt.
#[derive(Debug, Clone)]
struct Row {
    strategy: String,
    alert: String,
    labels: String,
    attempt: u32,
    success: bool,
    verified: Option<bool>,
    detected_ms: u64,
    recovered_ms: Option<u64>,
    reason: Option<String>,
}

/// Every attempt stored so far, read beside the running host.
fn rows(dir: &Scratch) -> Vec<Row> {
    let path = dir.join("data").join(monitor_host::history::DATABASE_FILE);
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Vec::new();
    };
    let Ok(mut stmt) = conn.prepare(
        "SELECT strategy, alert, labels, attempt, success, verified, detected_ms, recovered_ms,
         reason FROM healing_attempts ORDER BY id",
    ) else {
        return Vec::new();
    };
    stmt.query_map([], |r| {
        Ok(Row {
            strategy: r.get(0)?,
            alert: r.get(1)?,
            labels: r.get(2)?,
            attempt: r.get(3)?,
            success: r.get(4)?,
            verified: r.get(5)?,
            detected_ms: r.get(6)?,
            recovered_ms: r.get(7)?,
            reason: r.get(8)?,
        })
    })
    .map(|rows| rows.filter_map(Result::ok).collect())
    .unwrap_or_default()
}

fn count(rows: &[Row], f: impl Fn(&Row) -> bool) -> usize {
    rows.iter().filter(|r| f(r)).count()
}

fn api(port: u16, path: &str) -> Value {
    let (status, body) = http_get(port, path).expect("the host answers");
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Nearest-rank percentile of sorted values.
fn rank(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1]
}

/// The figures `/api/healing` must show, computed from the stored attempts alone.
struct Expected {
    rates: Vec<(String, u64, f64)>,
    mttr: Vec<(String, u64, f64, f64)>,
    recommendations: BTreeSet<(String, Option<String>)>,
}

fn expected(rows: &[Row]) -> Expected {
    let settled: Vec<&Row> = rows.iter().filter(|r| r.verified.is_some()).collect();
    let failure_type = |r: &Row| {
        let labels: Value = serde_json::from_str(&r.labels).unwrap();
        format!("{}{{collector={}}}", r.alert, labels["collector"])
    };
    let strategies: BTreeSet<&str> = settled.iter().map(|r| r.strategy.as_str()).collect();
    let rates: Vec<(String, u64, f64)> = strategies
        .iter()
        .map(|s| {
            let mine: Vec<_> = settled.iter().filter(|r| r.strategy == *s).collect();
            let ok = mine.iter().filter(|r| r.verified == Some(true)).count();
            (
                s.to_string(),
                mine.len() as u64,
                ok as f64 / mine.len() as f64,
            )
        })
        .collect();
    let types: BTreeSet<String> = settled.iter().map(|r| failure_type(r)).collect();
    let mttr = types
        .iter()
        .filter_map(|t| {
            let mut v: Vec<f64> = (settled.iter())
                .filter(|r| failure_type(r) == *t && r.verified == Some(true))
                .map(|r| (r.recovered_ms.unwrap() - r.detected_ms) as f64)
                .collect();
            if v.is_empty() {
                return None;
            }
            v.sort_by(f64::total_cmp);
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            Some((t.clone(), v.len() as u64, mean, rank(&v, 0.5)))
        })
        .collect();
    // The default thresholds: 5 samples, keep at 80%, replace below 50%, target 90%, one failure
    // type over 30% of the failures (first attempts).
    let mut recommendations = BTreeSet::new();
    let total = settled.len() as f64;
    let ok = count(rows, |r| r.verified == Some(true)) as f64;
    if total >= 5.0 && ok / total < 0.9 {
        recommendations.insert(("overall_success_rate".into(), None));
    }
    for (s, n, rate) in &rates {
        if *n >= 5 && *rate < 0.8 {
            recommendations.insert(("strategy_optimisation".into(), Some(s.clone())));
        }
    }
    let failures: Vec<String> = (settled.iter())
        .filter(|r| r.attempt <= 1)
        .map(|r| failure_type(r))
        .collect();
    if failures.len() >= 5 {
        for t in &types {
            let share = failures.iter().filter(|f| *f == t).count() as f64 / failures.len() as f64;
            if share > 0.3 {
                recommendations.insert(("prevention".into(), Some(t.clone())));
            }
        }
    }
    Expected {
        rates,
        mttr,
        recommendations,
    }
}

fn check(report: &Value, want: &Expected) {
    let mut got: Vec<(String, u64, f64)> = report["effectiveness"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["strategy"].as_str().unwrap().to_owned(),
                e["attempts"].as_u64().unwrap(),
                e["success_rate"].as_f64().unwrap(),
            )
        })
        .collect();
    got.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(got.len(), want.rates.len(), "{report:#}");
    for ((gs, gn, gr), (ws, wn, wr)) in got.iter().zip(&want.rates) {
        assert_eq!((gs, gn), (ws, wn), "{report:#}");
        assert!((gr - wr).abs() < 1e-9, "{gs}: {gr} != {wr}");
    }
    let mttr = report["mttr"]["by_failure_type"].as_array().unwrap();
    assert_eq!(mttr.len(), want.mttr.len(), "{report:#}");
    for (t, n, mean, p50) in &want.mttr {
        let (_, s) = (mttr.iter())
            .map(|p| (p[0].as_str().unwrap(), &p[1]))
            .find(|(name, _)| name == t)
            .unwrap_or_else(|| panic!("no MTTR for {t}: {report:#}"));
        assert_eq!(s["count"].as_u64(), Some(*n));
        assert!((s["mean_ms"].as_f64().unwrap() - mean).abs() < 1e-6, "{s}");
        assert_eq!(s["p50_ms"].as_f64(), Some(*p50), "{s}");
    }
    let got: BTreeSet<(String, Option<String>)> = report["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_owned(),
                r["subject"]
                    .as_str()
                    .filter(|_| r["kind"] != "overall_success_rate")
                    .map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(got, want.recommendations, "{report:#}");
}

/// Crashes service a [`CRASHES`] times, each healed before the next, while service b stays down
/// until its strategy gave up; then repairs b by hand. Returns the stored attempts.
fn crash_and_heal(dir: &Scratch) -> Vec<Row> {
    // Service b goes down for good: its strategy reports success every time and repairs nothing.
    std::fs::write(dir.join("b"), "50").unwrap();
    // Service a crashes, and is healed (after a failed attempt or two) before the next crash.
    for crash in 1..=CRASHES {
        std::fs::write(dir.join("a"), "50").unwrap();
        let healed = eventually(WAIT, || {
            let rows = rows(dir);
            (count(&rows, |r| {
                r.strategy == "sometimes" && r.verified == Some(true)
            }) == crash)
                .then_some(())
        });
        assert!(
            healed.is_some(),
            "crash {crash} not healed: {:#?}",
            rows(dir)
        );
    }
    // b's strategy used its attempts, each settled as failed.
    let settled = eventually(WAIT, || {
        let rows = rows(dir);
        (count(&rows, |r| {
            r.strategy == "never" && r.verified == Some(false)
        }) == NEVER_ATTEMPTS)
            .then_some(rows)
    });
    let rows = settled.unwrap_or_else(|| panic!("{:#?}", rows(dir)));
    let never: Vec<&Row> = rows.iter().filter(|r| r.strategy == "never").collect();
    assert!(
        never.iter().all(|r| r.success && r.verified == Some(false)),
        "{never:#?}"
    );
    assert!(
        never.iter().all(|r| r
            .reason
            .as_deref()
            .is_some_and(|w| w.contains("still fired"))),
        "{never:#?}"
    );
    // Repaired by hand long after the last attempt: not credited to the strategy.
    std::fs::write(dir.join("b"), "5").unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let rows = self::rows(dir);
    assert_eq!(count(&rows, |r| r.verified.is_none()), 0, "{rows:#?}");
    assert_eq!(
        count(&rows, |r| r.strategy == "never" && r.verified == Some(true)),
        0
    );
    // Every verified attempt of `sometimes` reported success; failed ones were reported so.
    let sometimes: Vec<&Row> = rows.iter().filter(|r| r.strategy == "sometimes").collect();
    assert!(
        sometimes
            .iter()
            .all(|r| r.success == (r.verified == Some(true))),
        "{sometimes:#?}"
    );
    // A verified recovery resets the episode: every crash starts at attempt 1.
    assert_eq!(
        count(&rows, |r| r.strategy == "sometimes" && r.attempt == 1),
        CRASHES
    );

    rows
}

/// `/metrics` carries the headline gauges; `monitor-host healing` prints the report.
fn check_metrics_and_cli(port: u16, want: &Expected) {
    // The headline gauges.
    let (_, metrics) = http_get(port, "/metrics").unwrap();
    let (_, _, a_rate) = want.rates.iter().find(|r| r.0 == "sometimes").unwrap();
    let line = format!(
        "monitor_healing_success_ratio{{strategy=\"sometimes\"}} {}\n",
        monitor_core::prometheus::format_value(*a_rate)
    );
    assert!(metrics.contains(&line), "{line} in {metrics}");
    assert!(
        metrics.contains("monitor_healing_success_ratio{strategy=\"never\"} 0\n"),
        "{metrics}"
    );
    let (t, _, _, p50) = &want.mttr[0];
    let line = format!(
        "monitor_healing_mttr_seconds{{failure_type=\"{}\"}} {}\n",
        t.replace('"', "\\\""),
        monitor_core::prometheus::format_value(p50 / 1000.0)
    );
    assert!(metrics.contains(&line), "{line} in {metrics}");
    if let Some(complaints) = monitor_tests::promtool_check(&metrics) {
        complaints.unwrap_or_else(|e| panic!("promtool: {e}"));
    }

    // The command line prints it.
    let url = format!("http://127.0.0.1:{port}");
    let out = cli(&["healing", "--url", &url]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", monitor_tests::describe(&out));
    assert!(
        text.contains("sometimes") && text.contains("never") && text.contains("replace"),
        "{text}"
    );
}

#[test]
fn the_healing_report_agrees_with_the_stored_attempts() {
    let dir = Scratch::new("healing-report");
    let port = free_port();
    let config = config(&dir, port);
    let host = RunningHost::start(&config, port);

    let rows = crash_and_heal(&dir);
    let want = expected(&rows);
    let report = api(port, "/api/healing");
    check(&report, &want);
    let rate = |s: &str| {
        (report["effectiveness"].as_array().unwrap().iter())
            .find(|e| e["strategy"] == s)
            .unwrap()
            .clone()
    };
    assert_eq!(rate("sometimes")["recommendation"], "tune", "{report:#}");
    assert_eq!(rate("never")["recommendation"], "replace", "{report:#}");
    assert_eq!(
        report["failure_type_labels"],
        serde_json::json!(["collector"])
    );
    assert!(
        !report["mttr_trend"].as_array().unwrap().is_empty(),
        "{report:#}"
    );

    // A range without attempts, and a bad one.
    let empty = api(port, "/api/healing?from=1000&to=2000");
    assert_eq!(empty["overall"]["total_healings"], 0, "{empty:#}");
    let (status, body) = http_get(port, "/api/healing?from=soon").unwrap();
    assert_eq!(status, 400, "{body}");

    check_metrics_and_cli(port, &want);

    // A restart rebuilds the same figures from the store.
    host.stop();
    let host = RunningHost::start(&config, port);
    let again = eventually(WAIT, || {
        let (status, body) = http_get(port, "/api/healing")?;
        (status == 200).then(|| serde_json::from_str::<Value>(&body).unwrap())
    })
    .expect("the restarted host answers");
    check(&again, &want);
    assert_eq!(again["effectiveness"], report["effectiveness"]);
    assert_eq!(again["mttr"], report["mttr"]);
    host.stop();
}
