//! The `monitor-host` binary: check, plugins, run --once, HTTP endpoints, shutdown on SIGTERM,
//! reload on SIGHUP, logging, exit codes, and config paths and environment variables.

use std::process::Command;
use std::time::Duration;

use monitor_tests::{
    RunningHost, Scratch, binary, eventually, free_port, http_get, library, toml_path,
};

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
    assert!(
        lines[1].contains("has no collector named `no-such-plugin`; it provides: collector `"),
        "{err}"
    );
    assert!(
        lines[1].contains("collector `file`, collector `flaky`"),
        "{err}"
    );
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
    let child = RunningHost::start(&config, port);
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
        "monitor_host_store_write_errors_total 0",
        "monitor_host_store_last_write_success_timestamp_seconds",
    ] {
        assert!(metrics.contains(name), "{name} in {metrics}");
    }
    assert_eq!(http_get(port, "/nope").unwrap().0, 404);

    child.stop();
    let log = std::fs::read_to_string(dir.join("shutdown.log")).unwrap();
    let mut seen: Vec<&str> = log.lines().collect();
    seen.sort();
    assert_eq!(seen, ["file:file", "fixer:fixer", "recorder:recorder"]);
    assert!(
        dir.join("data/monitor.db").exists(),
        "history written to data_dir"
    );
}

fn healthy(port: u16) -> bool {
    eventually(Duration::from_secs(30), || {
        http_get(port, "/healthz").filter(|(s, _)| *s == 200)
    })
    .is_some()
}

#[test]
fn sighup_reloads_and_logs_are_json_lines() {
    let dir = Scratch::new("cli-hup");
    let port = free_port();
    let config = test_config(
        &dir,
        &format!("listen = \"127.0.0.1:{port}\"\ndata_dir = \"data\""),
    );
    let mut child = RunningHost::builder(&config)
        .port(port)
        .args(["--log-format", "json"])
        .env_remove("RUST_LOG")
        .start();
    let stderr = child.stderr().clone();
    child.signal("HUP");
    assert!(
        stderr.wait_for("config reloaded"),
        "SIGHUP was logged: {:#?}",
        stderr.lines()
    );
    assert_eq!(
        child.child().try_wait().unwrap(),
        None,
        "still running after SIGHUP"
    );
    assert!(healthy(port), "still serving after SIGHUP");
    child.stop();
    assert!(
        dir.join("data/monitor.db").exists(),
        "history written to data_dir"
    );

    let events: Vec<serde_json::Value> = stderr
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let has = |level: &str, message: &str| {
        events.iter().any(|e| {
            e["level"] == level
                && e["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(message))
        })
    };
    assert!(
        has("INFO", &format!("serving http://127.0.0.1:{port}/metrics")),
        "{events:#?}"
    );
    assert!(
        has("INFO", "SIGHUP received; reloading the config"),
        "{events:#?}"
    );
    assert!(has("INFO", "config reloaded"), "{events:#?}");
    assert!(has("INFO", "SIGTERM received"), "{events:#?}");
    assert!(
        events
            .iter()
            .all(|e| e["timestamp"].is_string() && e["target"].is_string()),
        "{events:#?}"
    );
}

#[test]
fn rust_log_filters_text_logs_and_log_level_wins() {
    let dir = Scratch::new("cli-filter");
    let port = free_port();
    let config = test_config(&dir, &format!("listen = \"127.0.0.1:{port}\""));
    let child = RunningHost::builder(&config)
        .port(port)
        .env("RUST_LOG", "warn")
        .start();
    let stderr = child.stderr().clone();
    // A config the reload refuses: logged at error level.
    std::fs::write(&config, "not toml at all\n").unwrap();
    child.signal("HUP");
    assert!(
        stderr.wait_for("config not reloaded"),
        "{:#?}",
        stderr.lines()
    );
    child.stop();
    let lines = stderr.lines();
    assert!(
        lines.iter().all(|l| !l.contains("INFO")),
        "RUST_LOG=warn hides info lines: {lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("ERROR")),
        "errors still show: {lines:#?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains('\x1b')),
        "no colour when stderr is not a terminal: {lines:#?}"
    );

    // `--log-level` wins over RUST_LOG; a bad filter is a bad argument, named with its origin.
    let port = free_port();
    let config = test_config(&dir, &format!("listen = \"127.0.0.1:{port}\""));
    let child = RunningHost::builder(&config)
        .port(port)
        .args(["--log-level", "info"])
        .env("RUST_LOG", "warn")
        .start();
    let stderr = child.stderr().clone();
    assert!(stderr.wait_for("INFO"), "{:#?}", stderr.lines());
    child.stop();
    for (flag, env, origin) in [
        (Some("=["), None, "from --log-level"),
        (None, Some("=["), "from RUST_LOG"),
    ] {
        let mut cmd = host();
        cmd.arg("check").arg("--config").arg(&config);
        if let Some(flag) = flag {
            cmd.args(["--log-level", flag]);
        }
        match env {
            Some(env) => cmd.env("RUST_LOG", env),
            None => cmd.env_remove("RUST_LOG"),
        };
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("invalid log filter `=[`"), "{err}");
        assert!(err.contains(origin), "{err}");
    }
}

#[test]
fn the_final_error_is_a_json_line_in_json_mode() {
    let dir = Scratch::new("cli-json-error");
    let config = dir.write(
        "monitor.toml",
        "[[collector]]\nplugin = \"x\"\nlibrary = \"missing.so\"\n",
    );
    let out = host()
        .args(["check", "--log-format", "json", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    let event: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(event["level"], "ERROR");
    let message = event["fields"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("{}:3:11: `library`: ", config.display())),
        "{message}"
    );
}

#[test]
fn exit_codes_are_documented_and_bad_arguments_exit_2() {
    let out = host().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for line in ["0  ok", "1  runtime error", "2  invalid config"] {
        assert!(help.contains(line), "{line} in {help}");
    }
    for args in [&["run"][..], &["frobnicate"], &["check", "--config"]] {
        let out = host().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let out = host()
        .args(["check", "--log-format", "yaml", "--config", "x.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_config_named_without_a_directory_loads_the_library_beside_it() {
    let dir = Scratch::new("cli-bare");
    std::fs::copy(library("monitor-test-plugins"), dir.join("libx.so")).unwrap();
    dir.write("value", "5");
    dir.write(
        "c.toml",
        "[[collector]]\nplugin = \"file\"\nlibrary = \"libx.so\"\n[collector.config]\npath = \"value\"\n",
    );
    let out = host()
        .args(["check", "--config", "c.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = host()
        .args(["plugins", "--config", "c.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&dir.join("libx.so").display().to_string()),
        "the library is named with its directory: {text}"
    );
}

#[test]
fn environment_variables_fill_in_config_values() {
    let dir = Scratch::new("cli-env");
    dir.write("value", "5");
    let config = dir.write(
        "monitor.toml",
        "[host]\nlisten = \"off\"\n\n[[collector]]\nplugin = \"file\"\nlibrary = \"${MONITOR_TEST_LIBRARY}\"\n[collector.config]\npath = \"${MONITOR_TEST_VALUE:-value}\"\nshutdown_log = \"shutdown.log\"\nlabel = \"$${literal}\"\n",
    );
    let lib = library("monitor-test-plugins");
    // The plugin opens `path` and `shutdown_log` relative to the working directory.
    let out = host()
        .args(["run", "--once", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .env("MONITOR_TEST_LIBRARY", &lib)
        .env_remove("MONITOR_TEST_VALUE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("test.value{source=file} = 5"), "{report}");
    let log = std::fs::read_to_string(dir.join("shutdown.log")).unwrap();
    assert_eq!(log.trim(), "file:${literal}");

    let out = host()
        .args(["check", "--config"])
        .arg(&config)
        .env_remove("MONITOR_TEST_LIBRARY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "{}:6:11: environment variable `MONITOR_TEST_LIBRARY` is not set",
            config.display()
        )),
        "{err}"
    );
}
