//! Hostile and unlucky values from plugins and data: non-finite values, `null` and garbage,
//! timestamps from the future, names that would break the exposition, durations that would
//! overflow, panics whose payload panics again, and redirects.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use monitor_host::engine::now_ms;
use monitor_host::{Config, Engine, render};
use monitor_tests::{Scratch, binary, library, promtool_check, toml_path};

fn engine(text: &str, dir: &Path) -> Engine {
    let config = Config::from_str(text, "monitor.toml", dir).unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: the plugin libraries are built from this workspace.
    unsafe { Engine::load(&config) }.unwrap_or_else(|e| panic!("{e}"))
}

fn stats(e: &Engine, name: &str) -> monitor_host::engine::PluginStats {
    e.plugins()
        .into_iter()
        .find(|p| p.name == name)
        .unwrap()
        .stats
}

fn rejected(e: &Engine, name: &str) -> BTreeMap<String, u64> {
    (stats(e, name).rejected.into_iter())
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// `/metrics` passes `promtool check metrics` (skipped when promtool is not installed).
fn assert_promtool_accepts(metrics: &str) {
    if let Some(Err(e)) = promtool_check(metrics) {
        panic!("promtool refused /metrics: {e}\n{metrics}");
    }
}

/// An engine whose `raw` collector returns the file `payload.json` verbatim.
fn raw_engine(dir: &Scratch, payload: &str, extra_host: &str) -> Engine {
    let path = dir.write("payload.json", payload);
    engine(
        &format!(
            "[host]\ninterval = \"1s\"\n{extra_host}\n\n[[collector]]\nplugin = \"raw\"\nlibrary = {lib}\n[collector.config]\npath = {path}\n",
            lib = toml_path(&library("monitor-test-plugins")),
            path = toml_path(&path),
        ),
        dir.path(),
    )
}

#[test]
fn non_finite_values_are_kept_and_null_or_garbage_cost_only_their_sample() {
    let dir = Scratch::new("values-raw");
    let payload = r#"{"samples": [
        {"name": "t.good", "value": 1.5},
        {"name": "t.nan", "value": "NaN"},
        {"name": "t.up", "value": "+Inf"},
        {"name": "t.down", "value": "-Inf"},
        {"name": "t.null", "value": null},
        {"name": "t.garbage", "value": "lots"},
        {"name": "t.missing"},
        {"name": "t.kind", "value": 1, "kind": "histogram"}
    ]}"#;
    let mut e = raw_engine(&dir, payload, "");
    e.cycle(now_ms());
    let s = stats(&e, "raw");
    assert_eq!(
        s.consecutive_failures, 0,
        "the collection is not lost: {s:?}"
    );
    assert_eq!(s.last_samples, Some(8));
    assert_eq!(
        rejected(&e, "raw"),
        BTreeMap::from([("invalid_sample".into(), 1), ("invalid_value".into(), 3)])
    );
    let metrics = render::prometheus(&e);
    for line in [
        "t_good{collector=\"raw\"} 1.5",
        "t_nan{collector=\"raw\"} NaN",
        "t_up{collector=\"raw\"} +Inf",
        "t_down{collector=\"raw\"} -Inf",
        "monitor_host_samples_rejected_total{collector=\"raw\",reason=\"invalid_value\"} 3",
        "monitor_host_samples_rejected_total{collector=\"raw\",reason=\"invalid_sample\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    for gone in ["t_null", "t_garbage", "t_missing", "t_kind"] {
        assert!(!metrics.contains(gone), "{gone} in\n{metrics}");
    }
    assert_promtool_accepts(&metrics);
}

#[test]
fn a_nan_alert_value_meets_no_condition() {
    let dir = Scratch::new("values-nan-alert");
    let path = dir.write(
        "payload.json",
        r#"{"samples": [{"name": "t.v", "value": 5}]}"#,
    );
    let mut e = engine(
        &format!(
            "[host]\ninterval = \"1s\"\n\n[[collector]]\nplugin = \"raw\"\nlibrary = {lib}\n[collector.config]\npath = {p}\n\n[[alert]]\nname = \"differs\"\nmetric = \"t.v\"\ncondition = \"not_equals\"\nthreshold = 1\n",
            lib = toml_path(&library("monitor-test-plugins")),
            p = toml_path(&path),
        ),
        dir.path(),
    );
    let t0 = now_ms();
    e.cycle(t0);
    assert!(
        e.alerts()
            .statuses()
            .any(|s| s.alert == "differs" && s.state == monitor_host::alert::AlertState::Firing)
    );
    std::fs::write(&path, r#"{"samples": [{"name": "t.v", "value": "NaN"}]}"#).unwrap();
    e.cycle(t0 + 1000);
    let st = e
        .alerts()
        .statuses()
        .find(|s| s.alert == "differs")
        .unwrap();
    assert_eq!(
        st.state,
        monitor_host::alert::AlertState::Inactive,
        "{st:?}"
    );
    assert_eq!(st.value, 5.0, "NaN never becomes the alert's value: {st:?}");
}

#[test]
fn a_timestamp_beyond_the_allowed_skew_is_rejected_and_does_not_freeze_its_series() {
    let dir = Scratch::new("values-future");
    let now = now_ms();
    let far = now + 365 * 86_400_000;
    let near = now + 20_000;
    let payload = format!(
        r#"{{"samples": [
            {{"name": "t.far", "value": 1, "timestamp_ms": {far}}},
            {{"name": "t.near", "value": 2, "timestamp_ms": {near}}}
        ]}}"#
    );
    let mut e = raw_engine(&dir, &payload, "max_future_skew = \"1m\"");
    e.cycle(now);
    assert_eq!(
        rejected(&e, "raw"),
        BTreeMap::from([("future_timestamp".into(), 1)])
    );
    // The same series with a sane time is stored: the rejected point froze nothing.
    dir.write(
        "payload.json",
        r#"{"samples": [{"name": "t.far", "value": 7}]}"#,
    );
    e.cycle(now + 1000);
    let metrics = render::prometheus(&e);
    assert!(metrics.contains("t_far{collector=\"raw\"} 7"), "{metrics}");
    assert!(metrics.contains("t_near{collector=\"raw\"} 2"), "{metrics}");
    assert!(metrics.contains(
        "monitor_host_samples_rejected_total{collector=\"raw\",reason=\"future_timestamp\"} 1"
    ));
}

#[test]
fn names_from_data_cannot_break_the_exposition() {
    let dir = Scratch::new("values-names");
    let payload = r#"{"samples": [
        {"name": "t.ok", "value": 1, "labels": {"v": "a\"b\\c\nd"}},
        {"name": "bad\nname\n# HELP x y", "value": 1},
        {"name": "", "value": 1},
        {"name": "t.renamed", "value": 1, "labels": {"__name__": "other"}},
        {"name": "t.meta", "value": 1, "labels": {"__meta_x": "y"}},
        {"name": "t.dotted", "value": 1, "labels": {"a.b": "1", "a_b": "2"}},
        {"name": "t.empty", "value": 1, "labels": {"": "1"}}
    ]}"#;
    let mut e = raw_engine(&dir, payload, "");
    e.cycle(now_ms());
    assert_eq!(
        rejected(&e, "raw"),
        BTreeMap::from([("invalid_label_name".into(), 4), ("invalid_name".into(), 2)])
    );
    let metrics = render::prometheus(&e);
    assert!(
        metrics.contains("t_ok{collector=\"raw\",v=\"a\\\"b\\\\c\\nd\"} 1"),
        "{metrics}"
    );
    assert!(!metrics.contains("__name__"), "{metrics}");
    assert_promtool_accepts(&metrics);
}

/// A canned answer: status, headers, body.
type Answer = (u16, Vec<(&'static str, String)>, String);

/// Serves `answer(path)` to every request until [`Server::requests`].
struct Server {
    port: u16,
    server: monitor_core::http::HttpServer,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    fn start(answer: fn(&str) -> Answer) -> Self {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let server = monitor_core::http::HttpServer::start("127.0.0.1:0", "canned", move |req| {
            let path = if req.query.is_empty() {
                req.path.to_owned()
            } else {
                format!("{}?{}", req.path, req.query)
            };
            log.lock().unwrap().push(format!("{} {path}", req.method));
            let (status, headers, body) = answer(&path);
            let mut response = monitor_core::http::Response::new(status, "text/plain", body);
            for (k, v) in headers {
                response = response.with_header(k, v);
            }
            response
        })
        .unwrap();
        Self {
            port: server.local_addr().port(),
            server,
            seen,
        }
    }

    /// Stops the server and returns the requests it saw, as `METHOD /path`.
    fn requests(self) -> Vec<String> {
        drop(self.server);
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

const SCRAPED: &str = "\
# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile=\"0.5\"} NaN
go_gc_duration_seconds_sum 0
go_gc_duration_seconds_count 0
# TYPE app_up gauge
app_up 1
# TYPE app_weird gauge
app_weird{__meta_secret=\"x\"} 3
app_weird{fine=\"y\"} 4
";

fn prometheus_config(port: u16, path: &str, extra: &str) -> String {
    format!(
        "[host]\ninterval = \"1s\"\n\n[[collector]]\nplugin = \"prometheus\"\nlibrary = {lib}\n[collector.config]\nurl = \"http://127.0.0.1:{port}{path}\"\nrates = false\n{extra}\n",
        lib = toml_path(&library("monitor-plugin-prometheus")),
    )
}

#[test]
fn a_scraped_nan_is_kept_and_a_reserved_label_costs_only_its_sample() {
    let server = Server::start(|_| (200, vec![], SCRAPED.to_owned()));
    let dir = Scratch::new("values-scrape");
    let mut e = engine(&prometheus_config(server.port, "/metrics", ""), dir.path());
    e.cycle(now_ms());
    let s = stats(&e, "prometheus");
    assert_eq!(s.consecutive_failures, 0, "{s:?}");
    let metrics = render::prometheus(&e);
    for line in [
        "go_gc_duration_seconds_p50{collector=\"prometheus\"} NaN",
        "app_up{collector=\"prometheus\"} 1",
        "app_weird{collector=\"prometheus\",fine=\"y\"} 4",
        "monitor_host_samples_rejected_total{collector=\"prometheus\",reason=\"invalid_label_name\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    assert!(!metrics.contains("__meta_secret"), "{metrics}");
    assert_promtool_accepts(&metrics);
    server.requests();
}

fn redirecting(path: &str) -> Answer {
    if path == "/elsewhere" {
        (200, vec![], "app_secret 42\n".to_owned())
    } else {
        (
            302,
            vec![("Location", "/elsewhere".to_owned())],
            String::new(),
        )
    }
}

#[test]
fn the_prometheus_collector_does_not_follow_redirects_unless_asked() {
    let server = Server::start(redirecting);
    let dir = Scratch::new("values-redirect-scrape");
    let mut e = engine(&prometheus_config(server.port, "/metrics", ""), dir.path());
    e.cycle(now_ms());
    let metrics = render::prometheus(&e);
    assert!(!metrics.contains("app_secret"), "{metrics}");
    assert!(
        metrics.contains("prometheus_up{collector=\"prometheus\",target="),
        "{metrics}"
    );
    assert!(
        metrics.contains("} 0\n"),
        "scrape reported failed: {metrics}"
    );
    let failed = e
        .events()
        .find(|ev| ev.kind == "scrape_failed")
        .expect("a scrape_failed event");
    assert!(
        failed
            .message
            .contains("answered 302 (redirect to /elsewhere)"),
        "{failed:?}"
    );
    assert_eq!(server.requests(), ["GET /metrics"]);

    let server = Server::start(redirecting);
    let mut e = engine(
        &prometheus_config(server.port, "/metrics", "follow_redirects = true"),
        dir.path(),
    );
    e.cycle(now_ms());
    assert!(render::prometheus(&e).contains("app_secret{collector=\"prometheus\"} 42"));
    assert_eq!(server.requests(), ["GET /metrics", "GET /elsewhere"]);
}

#[test]
fn the_webhook_notifier_does_not_follow_redirects_unless_asked() {
    for (follow, expected) in [
        (false, vec!["POST /hook"]),
        (true, vec!["POST /hook", "GET /elsewhere"]),
    ] {
        let server = Server::start(redirecting);
        let dir = Scratch::new("values-redirect-hook");
        let path = dir.write(
            "payload.json",
            r#"{"samples": [{"name": "t.v", "value": 5}]}"#,
        );
        let mut e = engine(
            &format!(
                "[host]\ninterval = \"1s\"\n\n[[collector]]\nplugin = \"raw\"\nlibrary = {lib}\n[collector.config]\npath = {p}\n\n[[alert]]\nname = \"high\"\nmetric = \"t.v\"\ncondition = \"above\"\nthreshold = 1\n\n[[notifier]]\nplugin = \"webhook\"\nlibrary = {hook}\n[notifier.config]\nurl = \"http://127.0.0.1:{port}/hook\"\nretries = 0\nfollow_redirects = {follow}\n",
                lib = toml_path(&library("monitor-test-plugins")),
                hook = toml_path(&library("monitor-plugin-webhook")),
                p = toml_path(&path),
                port = server.port,
            ),
            dir.path(),
        );
        e.cycle(now_ms());
        e.settle(Duration::from_secs(10));
        let s = stats(&e, "webhook");
        if follow {
            assert_eq!(s.errors, 0, "{s:?}");
        } else {
            assert_eq!(s.errors, 1, "{s:?}");
            let err = s.last_error.unwrap_or_default();
            assert!(
                err.contains("answered 302 (redirect to /elsewhere)"),
                "{err}"
            );
        }
        assert_eq!(server.requests(), expected, "follow_redirects = {follow}");
    }
}

fn check(dir: &Scratch, text: &str) -> (bool, String) {
    let config = dir.write("monitor.toml", text);
    let out = Command::new(binary("monitor-host"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn check_refuses_durations_that_would_overflow_with_their_position() {
    let dir = Scratch::new("values-durations");
    let lib = toml_path(&library("monitor-test-plugins"));
    let value = toml_path(&dir.write("value", "1"));
    let (ok, out) = check(
        &dir,
        &format!(
            "[host]\ntimeout = \"213503982334601d\"\n\n[[collector]]\nplugin = \"file\"\nlibrary = {lib}\n[collector.config]\npath = {value}\n\n[[alert]]\nname = \"a\"\nmetric = \"test.value\"\ncondition = \"above\"\nthreshold = 0\nfor = \"36500d\"\n"
        ),
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("monitor.toml:2:11: `timeout`: invalid duration `213503982334601d`: longer than the maximum of 10 years"),
        "{out}"
    );
    assert!(
        out.contains("monitor.toml:15:7: `for`: invalid duration `36500d`: longer than the maximum of 10 years"),
        "{out}"
    );
    // `run` refuses the same config instead of panicking on it.
    let out = Command::new(binary("monitor-host"))
        .args(["run", "--once", "--config"])
        .arg(dir.join("monitor.toml"))
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(101), "{out:?}");
    assert!(!out.status.success());
}

#[test]
fn a_bundled_plugin_refuses_a_huge_float_timeout_at_check() {
    let dir = Scratch::new("values-plugin-duration");
    for timeout in ["1e15", "1e300", "\"213503982334601d\""] {
        let (ok, out) = check(
            &dir,
            &format!(
                "[[collector]]\nplugin = \"prometheus\"\nlibrary = {lib}\n[collector.config]\nurl = \"http://127.0.0.1:1/metrics\"\ntimeout = {timeout}\n",
                lib = toml_path(&library("monitor-plugin-prometheus")),
            ),
        );
        assert!(!ok, "{timeout}: {out}");
        assert!(out.contains("maximum of 10 years"), "{timeout}: {out}");
        assert!(!out.contains("panicked"), "{timeout}: {out}");
    }
}

#[test]
fn a_panic_whose_payload_panics_on_drop_is_reported_in_one_line() {
    let dir = Scratch::new("values-bomb");
    let value = toml_path(&dir.write("value", "1"));
    let config = dir.write(
        "monitor.toml",
        &format!(
            "[host]\ninterval = \"1s\"\nlisten = \"off\"\n\n[[collector]]\nplugin = \"panicky-drop\"\nlibrary = {lib}\n\n[[collector]]\nplugin = \"file\"\nlibrary = {lib}\n[collector.config]\npath = {value}\n",
            lib = toml_path(&library("monitor-test-plugins")),
        ),
    );
    let out = Command::new(binary("monitor-host"))
        .args(["run", "--once", "--config"])
        .arg(&config)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the host survives: {out:?}");
    assert!(stdout.contains("panicky-drop"), "{stdout}");
    let panic_lines: Vec<&str> = stderr.lines().filter(|l| l.contains("panick")).collect();
    assert_eq!(panic_lines.len(), 1, "one line per plugin panic:\n{stderr}");
    assert!(panic_lines[0].contains("plugin panicked"), "{stderr}");
    assert!(!stderr.contains("stack backtrace"), "{stderr}");
}

#[test]
fn non_finite_values_and_their_alerts_do_not_break_the_store() {
    let dir = Scratch::new("values-persist");
    let path = dir.write(
        "payload.json",
        r#"{"samples": [{"name": "t.good", "value": 2}, {"name": "t.v", "value": "+Inf"}, {"name": "t.n", "value": "NaN"}, {"name": "t.d", "value": "-Inf"}]}"#,
    );
    let text = format!(
        "[host]\ninterval = \"1s\"\n\n[[collector]]\nplugin = \"raw\"\nlibrary = {lib}\n[collector.config]\npath = {p}\n\n[[alert]]\nname = \"high\"\nmetric = \"t.v\"\ncondition = \"above\"\nthreshold = 1\n",
        lib = toml_path(&library("monitor-test-plugins")),
        p = toml_path(&path),
    );
    let data = dir.join("data");
    let t0 = now_ms();
    let mut e = engine(&text, dir.path());
    e.load_history(&data, t0).unwrap();
    e.cycle(t0);
    assert!(
        e.alerts()
            .is_firing(&("high".into(), [("collector".into(), "raw".into())].into()))
    );
    // The watched series turns NaN: the alert resolves, and the transition is written.
    std::fs::write(&path, r#"{"samples": [{"name": "t.v", "value": "NaN"}]}"#).unwrap();
    e.cycle(t0 + 1000);
    let st = e.alerts().statuses().find(|s| s.alert == "high").unwrap();
    assert_eq!(
        st.state,
        monitor_host::alert::AlertState::Inactive,
        "{st:?}"
    );
    let w = e.store_writes().unwrap();
    assert_eq!(w.errors_total, 0, "{w:?}");
    assert_eq!(w.pending, 0, "{w:?}");
    drop(e);
    let mut again = engine(&text, dir.path());
    again.load_history(&data, t0 + 2000).unwrap();
    let metrics = render::prometheus(&again);
    assert!(metrics.contains("t_good{collector=\"raw\"} 2"), "{metrics}");
}
