//! The snapshot's JSON, the atomic JSON export, the Prometheus exposition and
//! the HdrHistogram interval log.

use std::io::BufRead;
use std::time::Duration;

use monitor_core::Registry;

fn sample_registry() -> Registry {
    let reg = Registry::new();
    for i in 1..=100u64 {
        reg.record(
            "api.get \"users\"",
            Duration::from_micros(i * 10),
            i % 10 != 0,
        );
    }
    reg.record("db.query", Duration::from_millis(3), true);
    reg
}

#[test]
fn snapshot_json_has_the_pinned_field_names() {
    let reg = sample_registry();
    let json = serde_json::to_value(reg.snapshot()).unwrap();
    let functions = json["functions"].as_array().unwrap();
    assert_eq!(functions.len(), 2);
    let f = &functions[0];
    for key in [
        "name",
        "calls",
        "successes",
        "failures",
        "success_rate",
        "duration_ns",
        "trend",
    ] {
        assert!(f.get(key).is_some(), "missing {key} in {f}");
    }
    for key in ["min", "max", "mean", "p50", "p90", "p95", "p99", "p999"] {
        assert!(
            f["duration_ns"].get(key).is_some(),
            "missing duration_ns.{key}"
        );
    }
    assert_eq!(f["calls"], 100);
    assert_eq!(f["failures"], 10);
    assert_eq!(f["trend"], "stable");
    // Without the counting allocator in this test binary, memory is absent, not zero.
    assert!(f.get("alloc_bytes").is_none());
    assert_eq!(json["allocator"], false);
}

#[test]
fn json_export_replaces_the_file_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.json");
    let reg = sample_registry();
    reg.export_json(&path).unwrap();
    let first: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(first["functions"][1]["name"], "db.query");
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("perf.json")]);
}

#[test]
fn json_export_failure_names_the_path_and_keeps_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("perf.json");
    let err = sample_registry().export_json(&missing).unwrap_err();
    assert!(err.to_string().contains("no-such-dir"), "{err}");

    // A path that is a directory cannot be replaced: the directory survives.
    let occupied = dir.path().join("occupied");
    std::fs::create_dir(&occupied).unwrap();
    std::fs::write(occupied.join("keep"), b"keep").unwrap();
    let err = sample_registry().export_json(&occupied).unwrap_err();
    assert!(err.to_string().contains("occupied"), "{err}");
    assert_eq!(std::fs::read(occupied.join("keep")).unwrap(), b"keep");
}

#[test]
fn prometheus_exposition_parses_and_matches_the_snapshot() {
    let reg = sample_registry();
    let mut out = Vec::new();
    reg.write_prometheus(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition");
    let find = |metric: &str, function: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && s.labels.get("function") == Some(function))
            .unwrap_or_else(|| panic!("{metric} for {function}"))
    };
    // The parser splits labels naively; quoting is checked by promtool below
    // and by the escaping test.
    let name = "db.query";
    match find("monitor_function_calls_total", name).value {
        prometheus_parse::Value::Counter(v) => assert_eq!(v, 1.0),
        ref other => panic!("calls is {other:?}"),
    }
    match find("monitor_function_failures_total", name).value {
        prometheus_parse::Value::Counter(v) => assert_eq!(v, 0.0),
        ref other => panic!("failures is {other:?}"),
    }
    match &find("monitor_function_duration_seconds", name).value {
        prometheus_parse::Value::Histogram(buckets) => {
            let total = buckets
                .iter()
                .find(|b| b.less_than == f64::INFINITY)
                .unwrap()
                .count;
            assert_eq!(total, 1.0);
            let at = |le: f64| {
                buckets
                    .iter()
                    .find(|b| (b.less_than - le).abs() < 1e-12)
                    .unwrap()
                    .count
            };
            assert_eq!(
                (at(2.5e-3), at(5e-3)),
                (0.0, 1.0),
                "3 ms lies in (2.5 ms, 5 ms]"
            );
            assert!(
                buckets.windows(2).all(|w| w[0].count <= w[1].count),
                "cumulative"
            );
        }
        other => panic!("duration is {other:?}"),
    }
    if let Some(promtool) = promtool() {
        let mut child = std::process::Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let errors = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        // Exit status 3 is lint problems, 1 is errors: accept neither.
        assert!(
            out.status.success(),
            "promtool rejected the exposition:\n{errors}"
        );
    }
}

#[test]
fn prometheus_label_values_are_escaped() {
    let reg = Registry::new();
    reg.record("a\\b \"c\"\nd", Duration::from_micros(1), true);
    let mut out = Vec::new();
    reg.write_prometheus(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(r#"monitor_function_calls_total{function="a\\b \"c\"\nd"} 1"#),
        "{text}"
    );
}

fn promtool() -> Option<&'static str> {
    let found = std::process::Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok();
    found.then_some("promtool")
}

#[test]
fn hdr_interval_log_reads_back_with_hdrhistogram() {
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

    let reg = sample_registry();
    let mut log = Vec::new();
    reg.write_hdr_log(&mut log).unwrap();
    let mut tags = Vec::new();
    for entry in IntervalLogIterator::new(&log) {
        if let LogEntry::Interval(interval) = entry.expect("parsable log") {
            let bytes = base64_decode(interval.encoded_histogram());
            let hist: hdrhistogram::Histogram<u64> = Deserializer::new()
                .deserialize(&mut bytes.as_slice())
                .expect("V2 compressed histogram");
            tags.push((interval.tag().map(|t| t.as_str().to_owned()), hist.len()));
        }
    }
    assert_eq!(
        tags,
        [
            (Some("api.get_\"users\"".to_owned()), 100),
            (Some("db.query".to_owned()), 1)
        ]
    );
    // Header lines a reader expects.
    let text = String::from_utf8(log).unwrap();
    assert!(text.lines().any(|l| l.starts_with("#[StartTime: ")));
    assert!(text.as_bytes().lines().count() >= 4);
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        acc = (acc << 6) | ALPHABET.iter().position(|&a| a == c).expect("base64") as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
