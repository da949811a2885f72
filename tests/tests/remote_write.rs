//! Remote write to a real Prometheus (Debian's `prometheus`, receiver enabled, on loopback): the
//! host's samples arrive with their values and labels, samples collected while Prometheus is down
//! arrive once it is back, and the `monitor-host` binary writes too.

use std::path::{Path, PathBuf};
use std::time::Duration;

use monitor_host::engine::now_ms;
use monitor_host::remote_write::RemoteWriteStatus;
use monitor_host::{Config, Engine, render};
use monitor_tests::{
    Prometheus, RunningHost, Scratch, eventually, free_port, http_get, library, promtool_check,
    toml_path,
};

const WAIT: Duration = Duration::from_secs(30);

/// Instant queries against the Prometheus the host writes to.
trait Query {
    /// The result vector of an instant query.
    fn query(&self, expr: &str) -> Vec<serde_json::Value>;
    /// Waits until an instant query has exactly one series whose value is `want`; returns it.
    fn wait_for(&self, expr: &str, want: &str) -> serde_json::Value;
}

impl Query for Prometheus {
    fn query(&self, expr: &str) -> Vec<serde_json::Value> {
        let (status, body) = http_get(self.port, &format!("/api/v1/query?query={expr}"))
            .unwrap_or_else(|| panic!("prometheus does not answer `{expr}`"));
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    fn wait_for(&self, expr: &str, want: &str) -> serde_json::Value {
        eventually(WAIT, || {
            let r = self.query(expr);
            (r.len() == 1 && r[0]["value"][1] == want).then(|| r[0].clone())
        })
        .unwrap_or_else(|| panic!("`{expr}` never became {want}: {:?}", self.query(expr)))
    }
}

fn status(e: &Engine) -> RemoteWriteStatus {
    e.remote_write().into_iter().next().unwrap()
}

fn metric_line<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{remote=\"central\"}} ")))
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

fn config(value: &Path, port: u16, host: &str, interval: &str) -> String {
    format!(
        r#"
[host]
{host}

[[collector]]
plugin = "file"
library = {lib}
interval = "{interval}"
[collector.config]
path = {value}

[[remote_write]]
name = "central"
url = "http://127.0.0.1:{port}/api/v1/write"
batch_send_deadline = "20ms"
min_backoff = "20ms"
max_backoff = "200ms"
"#,
        lib = toml_path(&library("monitor-test-plugins")),
        value = toml_path(value),
    )
}

fn engine(dir: &Path, value: &Path, port: u16) -> Engine {
    // "1ms": due at every cycle the test runs.
    let text = config(value, port, "name = \"test-host\"", "1ms");
    let config = Config::from_str(&text, "monitor.toml", dir).unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: the test plugin library is built from this workspace.
    unsafe { Engine::load(&config) }.unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn samples_reach_prometheus_and_survive_an_outage() {
    let dir = Scratch::new("remote-write");
    let port = free_port();
    let prom_dir: PathBuf = dir.join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let Some(prometheus) =
        Prometheus::start(port, &prom_dir, &format!("prometheus-{}.log", now_ms()))
    else {
        return;
    };
    let value = dir.write("value", "5");
    let mut e = engine(dir.path(), &value, port);

    // Up: the sample arrives with its name as /metrics shows it, its labels and the host label.
    e.cycle(now_ms());
    let series = prometheus.wait_for("test_value", "5");
    assert_eq!(
        series["metric"],
        serde_json::json!({
            "__name__": "test_value",
            "collector": "file",
            "source": "file",
            "host": "test-host",
        })
    );
    assert!(eventually(WAIT, || (status(&e).samples_sent == 1).then_some(())).is_some());

    // Down: the next sample cannot be delivered; it waits in the queue and is retried.
    drop(prometheus);
    std::fs::write(&value, "7").unwrap();
    e.cycle(now_ms());
    assert!(
        eventually(WAIT, || (status(&e).retries >= 2).then_some(())).is_some(),
        "{:?}",
        status(&e)
    );
    let s = status(&e);
    assert_eq!((s.samples_sent, s.queue_length), (1, 1), "{s:?}");
    std::fs::write(&value, "9").unwrap();
    e.cycle(now_ms());

    // Back, on the same port and database: both samples of the outage arrive, in order.
    let prometheus = Prometheus::start(port, &prom_dir, &format!("prometheus-{}.log", now_ms()))
        .expect("prometheus ran before");
    prometheus.wait_for("test_value", "9");
    prometheus.wait_for("count_over_time(test_value%5B10m%5D)", "3");
    let ordered = prometheus.query("test_value%5B10m%5D");
    let values: Vec<&str> = ordered[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_str().unwrap())
        .collect();
    assert_eq!(values, ["5", "7", "9"]);
    assert!(eventually(WAIT, || (status(&e).samples_sent == 3).then_some(())).is_some());

    // The self-metrics tell the story.
    let s = status(&e);
    assert_eq!(
        (s.samples_failed, s.samples_dropped, s.queue_length),
        (0, 0, 0),
        "{s:?}"
    );
    let text = render::prometheus(&e);
    assert!(
        metric_line(&text, "monitor_remote_write_samples_sent_total").ends_with(" 3"),
        "{text}"
    );
    let retries = metric_line(&text, "monitor_remote_write_retries_total");
    assert_eq!(
        retries,
        format!(
            "monitor_remote_write_retries_total{{remote=\"central\"}} {}",
            s.retries
        )
    );
    assert!(s.retries >= 2);
    for name in [
        "monitor_remote_write_samples_failed_total",
        "monitor_remote_write_samples_dropped_total",
        "monitor_remote_write_queue_length",
    ] {
        assert!(metric_line(&text, name).ends_with(" 0"), "{text}");
    }
    metric_line(&text, "monitor_remote_write_last_send_timestamp_seconds");
    if let Some(check) = promtool_check(&text) {
        check.unwrap_or_else(|e| panic!("promtool: {e}"));
    }
    e.shutdown();

    // The binary: its samples arrive, its /metrics shows the remote, SIGTERM stops it cleanly.
    let listen = free_port();
    let host = format!("name = \"binary-host\"\nlisten = \"127.0.0.1:{listen}\"");
    let file = dir.write("monitor.toml", &config(&value, port, &host, "100ms"));
    let host = RunningHost::builder(&file).start();
    prometheus.wait_for("test_value%7Bhost%3D%22binary-host%22%7D", "9");
    let sent = eventually(WAIT, || {
        let (_, text) = http_get(listen, "/metrics")?;
        let line = text
            .lines()
            .find(|l| {
                l.starts_with("monitor_remote_write_samples_sent_total{remote=\"central\"} ")
            })?
            .to_owned();
        (!line.ends_with(" 0")).then_some(line)
    });
    assert!(
        sent.is_some(),
        "the binary's /metrics never showed a sample sent"
    );
    host.stop();
}

#[test]
fn a_dry_run_writes_nothing() {
    let dir = Scratch::new("remote-write-dry");
    let value = dir.write("value", "5");
    // A listener that would take the request; the dry run must not even start a sender.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let text = config(&value, port, "name = \"dry\"", "1ms");
    let config = Config::from_str(&text, "monitor.toml", dir.path()).unwrap();
    // SAFETY: the test plugin library is built from this workspace.
    let mut e = unsafe { Engine::load_dry_run(&config) }.unwrap();
    e.cycle(now_ms());
    assert!(!e.store().is_empty(), "the dry run collected");
    assert!(e.remote_write().is_empty());
    assert!(!render::prometheus(&e).contains("monitor_remote_write_"));
    // A sender would have flushed at shutdown: nobody connected.
    e.shutdown();
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.accept().is_err(),
        "the dry run connected to the backend"
    );
}
