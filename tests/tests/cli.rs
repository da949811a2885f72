//! The `monitor-host` binary: check, plugins, run --once, HTTP endpoints, and shutdown on SIGTERM.

use std::process::{Command, Stdio};
use std::time::Duration;

use monitor_tests::{Scratch, binary, eventually, free_port, http_get, library, toml_path};

fn host() -> Command {
    Command::new(binary("monitor-host"))
}

fn test_config(dir: &Scratch, extra_host: &str) -> std::path::PathBuf {
    let lib = toml_path(&library("monitor-test-plugins"));
    let value = dir.write("value", "50");
    let log = toml_path(&dir.join("shutdown.log"));
    dir.write(
        "monitor.toml",
        &format!(
            r#"[host]
interval = "1s"
{extra_host}

[[collector]]
plugin = "file"
library = {lib}
[collector.config]
path = {value}
shutdown_log = {log}
label = "file"

[[alert]]
name = "too_high"
metric = "test.value"
condition = "above"
threshold = 10

[[notifier]]
plugin = "recorder"
library = {lib}
[notifier.config]
path = {notes}
shutdown_log = {log}
label = "recorder"

[[strategy]]
plugin = "fixer"
library = {lib}
on = ["too_high"]
[strategy.config]
path = {value}
value = 1
shutdown_log = {log}
label = "fixer"
"#,
            value = toml_path(&value),
            notes = toml_path(&dir.join("notes.jsonl")),
        ),
    )
}

#[test]
fn check_plugins_and_run_once() {
    let dir = Scratch::new("cli");
    let config = test_config(&dir, "");
    let out = host()
        .arg("check")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("ok: 1 collector(s), 1 alert(s), 1 notifier(s), 1 strategy(ies)")
    );

    let out = host()
        .arg("plugins")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("collector  file"), "{text}");
    assert!(text.contains("libmonitor_test_plugins.so"), "{text}");
    assert_eq!(
        text.lines().count(),
        4,
        "header and three instances: {text}"
    );

    let log = std::fs::read_to_string(dir.join("shutdown.log")).unwrap();
    assert_eq!(
        log.lines().count(),
        6,
        "check and plugins shut every plugin down: {log}"
    );
    std::fs::remove_file(dir.join("shutdown.log")).unwrap();

    let out = host()
        .args(["run", "--once", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("test.value{source=file} = 50"), "{text}");
    assert!(
        text.contains("fixer on too_high attempt 1: success"),
        "{text}"
    );
    let notes = std::fs::read_to_string(dir.join("notes.jsonl")).unwrap();
    assert!(notes.contains("\"too_high\""));
    let log = std::fs::read_to_string(dir.join("shutdown.log")).unwrap();
    assert_eq!(log.lines().count(), 3, "every plugin shut down: {log}");
}

#[test]
fn check_reports_every_load_error_with_its_location() {
    let dir = Scratch::new("cli-bad");
    let lib = toml_path(&library("monitor-test-plugins"));
    let config = dir.write(
        "monitor.toml",
        &format!(
            r#"[[collector]]
plugin = "file"
library = "missing/libnothing.so"

[[collector]]
plugin = "no-such-plugin"
library = {lib}

[[collector]]
plugin = "file"
name = "file-without-path"
library = {lib}
[collector.config]
flag = "x"
"#
        ),
    );
    let out = host()
        .arg("check")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = config.display().to_string();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].starts_with(&format!("{file}:3:11: `library`: library `")),
        "{err}"
    );
    assert!(lines[0].contains("does not exist"), "{err}");
    assert!(
        lines[1].starts_with(&format!("{file}:6:10: `plugin`: ")),
        "{err}"
    );
    assert!(lines[1].contains("has no collector named `no-such-plugin`; it provides: collector `file`, collector `flaky`"), "{err}");
    assert!(
        lines[2].starts_with(&format!("{file}:13:1: plugin `file` refused its config: ")),
        "{err}"
    );
    assert!(lines[2].contains("`path` is required"), "{err}");

    // A syntax-level problem: unknown key.
    let config = dir.write("typo.toml", "[host]\nintervall = \"5s\"\n");
    let out = host()
        .arg("check")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "{}:2:1: unknown field `intervall`",
            config.display()
        )),
        "{err}"
    );

    // A missing config file.
    let out = host()
        .args(["check", "--config", "/nonexistent/monitor.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn serves_http_and_shuts_down_cleanly_on_sigterm() {
    let dir = Scratch::new("cli-run");
    let port = free_port();
    let config = test_config(
        &dir,
        &format!("listen = \"127.0.0.1:{port}\"\ndata_dir = \"data\""),
    );
    let mut child = host()
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let healthy = eventually(Duration::from_secs(30), || {
        http_get(port, "/healthz").filter(|(s, _)| *s == 200)
    });
    assert!(healthy.is_some(), "the host became healthy");
    // Wait until the loop has alerted and healed at least once.
    let snapshot = eventually(Duration::from_secs(30), || {
        let (_, body) = http_get(port, "/api/snapshot")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (!v["healing"].as_array()?.is_empty()).then_some(v)
    })
    .expect("a healing attempt shows in the snapshot");
    assert_eq!(snapshot["healing"][0]["alert"], "too_high");
    assert!(snapshot["plugins"].as_array().unwrap().len() == 3);
    let (status, metrics) = http_get(port, "/metrics").unwrap();
    assert_eq!(status, 200);
    for name in [
        "monitor_host_cycles_total",
        "monitor_plugin_calls_total",
        "monitor_alert_state",
        "test_value",
    ] {
        assert!(metrics.contains(name), "{name} in {metrics}");
    }
    assert_eq!(http_get(port, "/nope").unwrap().0, 404);

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "exit 0 after SIGTERM");
    let log = std::fs::read_to_string(dir.join("shutdown.log")).unwrap();
    let mut seen: Vec<&str> = log.lines().collect();
    seen.sort();
    assert_eq!(seen, ["file:file", "fixer:fixer", "recorder:recorder"]);
    assert!(
        dir.join("data/history.json").exists(),
        "history written to data_dir"
    );
}
