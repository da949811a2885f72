//! The bundled plugins, loaded from their real libraries: system, process, prometheus (scraping the
//! instrumented demo service in another process), log, webhook and restart-command.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use monitor_core::http::{HttpServer, Response};
use monitor_host::{Config, Engine, render};
use monitor_tests::{Scratch, binary, eventually, free_port, http_get, library, toml_path};

fn engine(text: &str, dir: &Path) -> Engine {
    let config = Config::from_str(text, "monitor.toml", dir).unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: the plugin libraries are built from this workspace.
    unsafe { Engine::load(&config) }.unwrap_or_else(|e| panic!("{e}"))
}

fn lib(name: &str) -> String {
    toml_path(&library(&format!("monitor-plugin-{name}")))
}

fn latest(e: &Engine, name: &str, label: Option<(&str, &str)>) -> Option<f64> {
    e.store()
        .by_name(name)
        .find(|(k, _)| label.is_none_or(|(a, b)| k.labels.get(a).map(String::as_str) == Some(b)))
        .and_then(|(_, s)| s.latest())
        .map(|(_, v)| v)
}

struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn system_collector_reports_the_documented_metrics() {
    let dir = Scratch::new("system");
    let mut e = engine(
        &format!(
            "[[collector]]\nplugin = \"system\"\nlibrary = {}\n",
            lib("system")
        ),
        dir.path(),
    );
    e.cycle(0);
    e.settle(Duration::from_secs(5));
    let cpu = latest(&e, "system.cpu.usage", None).expect("system.cpu.usage");
    assert!((0.0..=100.0).contains(&cpu));
    assert!(latest(&e, "system.memory.total_bytes", None).unwrap() > 0.0);
    for name in [
        "system.memory.used_bytes",
        "system.memory.usage",
        "system.swap.total_bytes",
        "system.load.1",
        "system.cpu.core.usage",
    ] {
        assert!(latest(&e, name, None).is_some(), "{name}");
    }
    let metrics = render::prometheus(&e);
    assert!(metrics.contains("# TYPE system_cpu_usage gauge"));
    assert!(
        metrics.contains("# TYPE system_network_received_bytes_total counter"),
        "{metrics}"
    );
    if let Some(verdict) = monitor_tests::promtool_check(&metrics) {
        verdict
            .unwrap_or_else(|e| panic!("promtool rejected the host's exposition:\n{e}\n{metrics}"));
    }
}

#[test]
fn process_collector_sees_up_down_and_restarts() {
    let dir = Scratch::new("process");
    let pid_file = dir.join("svc.pid");
    let start = || {
        let child = Command::new("sleep").arg("60").spawn().unwrap();
        std::fs::write(&pid_file, child.id().to_string()).unwrap();
        Reaper(child)
    };
    let mut e = engine(
        &format!(
            "[[collector]]\nplugin = \"process\"\nlibrary = {}\n[[collector.config.processes]]\nname = \"svc\"\npid_file = {}\n",
            lib("process"),
            toml_path(&pid_file)
        ),
        dir.path(),
    );
    let first = start();
    e.cycle(0);
    let svc = Some(("process", "svc"));
    assert_eq!(latest(&e, "process.up", svc), Some(1.0));
    assert!(latest(&e, "process.memory.rss", svc).unwrap() > 0.0);
    assert!(latest(&e, "process.threads", svc).unwrap() >= 1.0);
    drop(first);
    e.cycle(10_000);
    assert_eq!(latest(&e, "process.up", svc), Some(0.0));
    let _second = start();
    e.cycle(20_000);
    assert_eq!(latest(&e, "process.up", svc), Some(1.0));
    assert_eq!(latest(&e, "process.restarts", svc), Some(1.0));
    assert!(e.events().any(|ev| ev.kind == "process_restarted"));

    // A target with no way of finding it is a configure error.
    let config = Config::from_str(
        &format!("[[collector]]\nplugin = \"process\"\nlibrary = {}\n[[collector.config.processes]]\nname = \"x\"\n", lib("process")),
        "monitor.toml",
        dir.path(),
    )
    .unwrap();
    // SAFETY: as above.
    let err = unsafe { Engine::load(&config) }.unwrap_err().to_string();
    assert!(err.contains("give either `pid_file`"), "{err}");
}

/// The host alerts on an application's function figures, scraped from another process.
#[test]
fn prometheus_collector_scrapes_an_instrumented_application() {
    let dir = Scratch::new("scrape");
    let port = free_port();
    let _app = Reaper(
        Command::new(binary("demo-service"))
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--healthy-for",
                "3600",
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let answered = eventually(Duration::from_secs(20), || {
        http_get(port, "/metrics").filter(|(_, b)| {
            b.contains("monitor_function_calls_total{function=\"demo.handle_request\"}")
        })
    });
    assert!(answered.is_some(), "the demo service serves its registry");
    let log = dir.join("alerts.log");
    let mut e = engine(
        &format!(
            r#"
[[collector]]
plugin = "prometheus"
name = "app"
library = {prom}
[collector.config]
url = "http://127.0.0.1:{port}/metrics"
labels = {{ app = "demo" }}

[[alert]]
name = "app_busy"
metric = "monitor_function_calls_total"
labels = {{ function = "demo.handle_request" }}
condition = "above"
threshold = 0
severity = "info"

[[notifier]]
plugin = "log"
library = {log_lib}
[notifier.config]
path = {log}
format = "text"
"#,
            prom = lib("prometheus"),
            log_lib = lib("log"),
            log = toml_path(&log),
        ),
        dir.path(),
    );
    e.cycle(0);
    std::thread::sleep(Duration::from_millis(100));
    e.cycle(10_000);
    e.settle(Duration::from_secs(5));
    let f = Some(("function", "demo.handle_request"));
    assert!(latest(&e, "monitor_function_calls_total", f).unwrap() > 0.0);
    assert!(
        latest(&e, "monitor_function_calls_total_rate", f).is_some(),
        "rates of counters"
    );
    assert!(latest(&e, "monitor_function_latency_seconds_p99", f).is_some());
    assert_eq!(latest(&e, "prometheus.up", None), Some(1.0));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let exposition = render::prometheus(&e);
    assert!(exposition.contains("monitor_function_calls_total{app=\"demo\",collector=\"app\",function=\"demo.handle_request\"}"), "{exposition}");
    if let Some(verdict) = monitor_tests::promtool_check(&exposition) {
        verdict.unwrap_or_else(|e| {
            panic!("promtool rejected the host's exposition:\n{e}\n{exposition}")
        });
    }
    assert!(
        text.starts_with("FIRING app_busy severity=info metric=monitor_function_calls_total"),
        "{text}"
    );
    assert!(text.contains("app=demo"), "{text}");
}

#[test]
fn prometheus_collector_reports_a_dead_target_as_down() {
    let dir = Scratch::new("scrape-down");
    let mut e = engine(
        &format!(
            "[[collector]]\nplugin = \"prometheus\"\nlibrary = {}\n[collector.config]\nurl = \"http://127.0.0.1:{}/metrics\"\ntimeout = 1\n",
            lib("prometheus"),
            free_port()
        ),
        dir.path(),
    );
    e.cycle(0);
    assert_eq!(latest(&e, "prometheus.up", None), Some(0.0));
    assert!(e.events().any(|ev| ev.kind == "scrape_failed"));
}

fn webhook_receiver() -> (u16, mpsc::Receiver<(String, String)>) {
    let (tx, rx) = mpsc::channel();
    let seen = std::sync::atomic::AtomicUsize::new(0);
    let server = HttpServer::start("127.0.0.1:0", "webhook-receiver", move |req| {
        // The first request fails with 503, so the notifier must retry.
        if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            return Response::new(503, "text/plain", "");
        }
        let path = match req.query {
            "" => req.path.to_owned(),
            q => format!("{}?{q}", req.path),
        };
        let _ = tx.send((path, String::from_utf8_lossy(req.body).into_owned()));
        Response::new(200, "text/plain", "")
    })
    .unwrap();
    let port = server.local_addr().port();
    // Serves until the test process ends.
    std::mem::forget(server);
    (port, rx)
}

#[test]
fn webhook_posts_to_an_alertmanager_v2_api() {
    let dir = Scratch::new("alertmanager");
    let value = dir.write("value", "50");
    let (port, rx) = webhook_receiver();
    let mut e = engine(
        &format!(
            r#"
[[collector]]
plugin = "file"
library = {test}
[collector.config]
path = {value}

[[alert]]
name = "too_high"
metric = "test.value"
condition = "above"
threshold = 10

[[notifier]]
plugin = "webhook"
library = {hook}
alertmanager = true
[notifier.config]
url = "http://127.0.0.1:{port}/api/v2/alerts"
api = "alertmanager"
"#,
            test = toml_path(&library("monitor-test-plugins")),
            hook = lib("webhook"),
            value = toml_path(&value),
        ),
        dir.path(),
    );
    e.cycle(1_700_000_000_000);
    e.settle(Duration::from_secs(10));
    std::fs::write(&value, "1").unwrap();
    e.cycle(1_700_000_010_000);
    e.settle(Duration::from_secs(10));
    let (path, firing) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(path, "/api/v2/alerts");
    let firing: serde_json::Value = serde_json::from_str(&firing).unwrap();
    assert_eq!(firing[0]["labels"]["alertname"], "too_high");
    assert_eq!(firing[0]["startsAt"], "2023-11-14T22:13:20.000Z");
    // Re-sent every `resend_delay` (1m) while firing, so valid for 4 * max(1m, 10s).
    assert_eq!(firing[0]["endsAt"], "2023-11-14T22:17:20.000Z");
    let (_, resolved) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let resolved: serde_json::Value = serde_json::from_str(&resolved).unwrap();
    assert_eq!(resolved[0]["endsAt"], "2023-11-14T22:13:30.000Z");
}

#[test]
fn webhook_posts_alertmanager_payloads_and_retries() {
    let dir = Scratch::new("webhook");
    let value = dir.write("value", "50");
    let (port, rx) = webhook_receiver();
    let mut e = engine(
        &format!(
            r#"
[host]
name = "web-1"

[[collector]]
plugin = "file"
library = {test}
[collector.config]
path = {value}

[[alert]]
name = "too_high"
metric = "test.value"
condition = "above"
threshold = 10
severity = "critical"
description = "way too high"

[[notifier]]
plugin = "webhook"
library = {hook}
[notifier.config]
url = "http://127.0.0.1:{port}/hook"
retries = 2
"#,
            test = toml_path(&library("monitor-test-plugins")),
            hook = lib("webhook"),
            value = toml_path(&value),
        ),
        dir.path(),
    );
    e.cycle(1_700_000_000_000);
    e.settle(Duration::from_secs(10));
    let (_, body) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a webhook arrived");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["version"], "4");
    assert_eq!(v["status"], "firing");
    assert_eq!(v["receiver"], "monitor-host");
    let a = &v["alerts"][0];
    assert_eq!(a["labels"]["alertname"], "too_high");
    assert_eq!(a["labels"]["severity"], "critical");
    assert_eq!(a["labels"]["host"], "web-1");
    assert_eq!(a["annotations"]["description"], "way too high");
    assert_eq!(a["startsAt"], "2023-11-14T22:13:20.000Z");
    let hook = e
        .plugins()
        .into_iter()
        .find(|p| p.name == "webhook")
        .unwrap()
        .stats;
    assert_eq!((hook.calls, hook.errors), (1, 0));
}

#[test]
fn restart_command_runs_checks_and_times_out() {
    let dir = Scratch::new("restart");
    let value = dir.write("value", "50");
    let marker = dir.join("restarted");
    let strategy = |name: &str, config: &str| {
        format!(
            "[[strategy]]\nplugin = \"restart-command\"\nname = \"{name}\"\nlibrary = {}\non = [\"too_high\"]\nmax_attempts = 1\n[strategy.config]\n{config}\n",
            lib("restart-command")
        )
    };
    let text = format!(
        "[[collector]]\nplugin = \"file\"\nlibrary = {test}\n[collector.config]\npath = {value}\n\n\
         [[alert]]\nname = \"too_high\"\nmetric = \"test.value\"\ncondition = \"above\"\nthreshold = 10\n\n{ok}\n{fails}\n{slow}\n{unhealthy}",
        test = toml_path(&library("monitor-test-plugins")),
        value = toml_path(&value),
        ok = strategy(
            "ok",
            &format!(
                "command = \"echo $MONITOR_ALERT:$MONITOR_ATTEMPT:$MONITOR_LABEL_SOURCE > {m}\"\nhealth_check = \"test -s {m}\"\nhealth_interval = 0",
                m = marker.display()
            )
        ),
        fails = strategy("fails", "command = \"exit 3\""),
        // Durations as strings (as in the host's config) and as numbers of seconds both work.
        slow = strategy("slow", "command = \"sleep 30\"\ntimeout = \"200ms\""),
        unhealthy = strategy(
            "unhealthy",
            "command = \"true\"\nhealth_check = \"false\"\nhealth_retries = 2\nhealth_interval = 0"
        ),
    );
    let mut e = engine(&text, dir.path());
    e.cycle(0);
    e.settle(Duration::from_secs(20));
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap().trim(),
        "too_high:1:file"
    );
    let by = |name: &str| {
        e.healing()
            .find(|h| h.strategy == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} ran"))
    };
    assert!(by("ok").success, "{:?}", by("ok"));
    assert!(!by("fails").success);
    assert!(by("fails").message.contains("failure status"));
    assert!(!by("slow").success);
    assert!(
        by("slow").message.contains("did not finish"),
        "{:?}",
        by("slow")
    );
    assert!(!by("unhealthy").success);
    assert!(
        by("unhealthy")
            .message
            .contains("still fails after 2 check(s)")
    );
}

#[test]
fn a_plugin_duration_that_does_not_parse_is_refused_at_its_config() {
    let dir = Scratch::new("bad-duration");
    let text = format!(
        "[[strategy]]\nplugin = \"restart-command\"\nlibrary = {}\non = [\"x\"]\n[strategy.config]\ncommand = \"true\"\ntimeout = \"soon\"\n\n[[alert]]\nname = \"x\"\nmetric = \"m\"\ncondition = \"above\"\nthreshold = 1\n",
        lib("restart-command")
    );
    let config = Config::from_str(&text, "monitor.toml", dir.path()).unwrap();
    // SAFETY: the bundled plugin library of this workspace.
    let err = unsafe { Engine::load(&config) }.unwrap_err().to_string();
    assert!(err.contains("monitor.toml:5:1"), "{err}");
    assert!(err.contains("invalid duration `soon`"), "{err}");
}

/// The demo's loop with real processes: the service is down, the alert fires, the restart-command
/// strategy starts it, the process collector sees it up and the alert resolves.
#[test]
fn the_restart_strategy_brings_a_dead_service_back() {
    let dir = Scratch::new("demo");
    let port = free_port();
    let pid_file = dir.join("demo.pid");
    let demo = binary("demo-service");
    let notes = dir.join("notes.log");
    let mut e = engine(
        &format!(
            r#"
[[collector]]
plugin = "process"
library = {process}
[[collector.config.processes]]
name = "demo"
pid_file = {pid}

[[alert]]
name = "demo_down"
metric = "process.up"
condition = "below"
threshold = 1
severity = "error"

[[notifier]]
plugin = "log"
library = {log_lib}
[notifier.config]
path = {notes}

[[strategy]]
plugin = "restart-command"
library = {restart}
on = ["demo_down"]
timeout = "30s"
[strategy.config]
command = "nohup {demo} --listen 127.0.0.1:{port} --pid-file {pid_raw} >/dev/null 2>&1 &"
health_check = "{demo} --check http://127.0.0.1:{port}/healthz"
health_interval = 0.2
health_retries = 50
"#,
            process = lib("process"),
            log_lib = lib("log"),
            restart = lib("restart-command"),
            pid = toml_path(&pid_file),
            pid_raw = pid_file.display(),
            notes = toml_path(&notes),
            demo = demo.display(),
        ),
        dir.path(),
    );
    e.cycle(0);
    e.settle(Duration::from_secs(30));
    let heal = e
        .healing()
        .next()
        .cloned()
        .expect("a restart was attempted");
    assert!(heal.success, "{heal:?}");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Whatever happens next, stop the service this test started.
    struct Stop(u32);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = Command::new("kill").arg(self.0.to_string()).status();
        }
    }
    let _stop = Stop(pid);
    e.cycle(10_000);
    e.settle(Duration::from_secs(10));
    assert_eq!(
        latest(&e, "process.up", Some(("process", "demo"))),
        Some(1.0)
    );
    let text = std::fs::read_to_string(&notes).unwrap();
    let statuses: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["status"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(statuses, ["firing", "resolved"]);
}
