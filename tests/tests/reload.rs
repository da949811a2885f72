//! Reloading the config of a running host: SIGHUP and `POST /-/reload` with a valid changed config
//! (a collector added, an alert threshold changed, a notifier removed) and with invalid ones.

use std::path::{Path, PathBuf};
use std::time::Duration;

use monitor_tests::{RunningHost, Scratch, eventually, free_port, http_get, library, toml_path};

const LIMIT: Duration = Duration::from_secs(30);

/// The parts of a config the test changes.
struct Version<'a> {
    /// `[[collector]]` tables after the unchanged `file` collector.
    collectors: &'a str,
    /// `too_high`'s threshold.
    threshold: u32,
    /// Whether the `second` notifier is declared.
    second: bool,
}

fn write_config(dir: &Scratch, port: u16, v: &Version<'_>) -> PathBuf {
    let lib = toml_path(&library("monitor-test-plugins"));
    let log = toml_path(&dir.join("shutdown.log"));
    let second = if v.second {
        format!(
            r#"
[[notifier]]
name = "second"
plugin = "recorder"
library = {lib}
[notifier.config]
path = {notes}
shutdown_log = {log}
label = "second"
"#,
            notes = toml_path(&dir.join("second.jsonl")),
        )
    } else {
        String::new()
    };
    dir.write(
        "monitor.toml",
        &format!(
            r#"[host]
interval = "1s"
listen = "127.0.0.1:{port}"

[[collector]]
plugin = "file"
library = {lib}
[collector.config]
path = {value}
shutdown_log = {log}
label = "file"
{collectors}
[[alert]]
name = "too_high"
metric = "test.value"
condition = "above"
threshold = {threshold}

[[alert]]
name = "also_high"
metric = "test.value"
condition = "above"
threshold = 20

[[notifier]]
plugin = "recorder"
library = {lib}
[notifier.config]
path = {notes}
shutdown_log = {log}
label = "recorder"
{second}"#,
            value = toml_path(&dir.join("value")),
            notes = toml_path(&dir.join("notes.jsonl")),
            collectors = v.collectors.replace("LIB", &lib),
            threshold = v.threshold,
        ),
    )
}

/// The host on `config`, logging at `info`; the tests wait for what they check.
fn spawn(config: &Path) -> RunningHost {
    RunningHost::builder(config).env("RUST_LOG", "info").start()
}

/// A plain HTTP/1.0 request with an empty body: `(status, body)`.
fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    (status, body.unwrap_or_default())
}

/// The value of the first `/metrics` line of `name` whose labels contain `labels`.
fn metric(port: u16, name: &str, labels: &str) -> Option<f64> {
    let (_, text) = http_get(port, "/metrics")?;
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .find(|l| l.contains(labels))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn wait_metric(port: u16, name: &str, labels: &str, ok: impl Fn(f64) -> bool) -> Option<f64> {
    eventually(LIMIT, || metric(port, name, labels).filter(|v| ok(*v)))
}

/// `(alert, status)` of every notification recorded in `path`.
fn notes(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let n: serde_json::Value = serde_json::from_str(l).unwrap();
            let field = |k: &str| n[k].as_str().unwrap_or_default().to_owned();
            (field("alert"), field("status"))
        })
        .collect()
}

fn count(notes: &[(String, String)], alert: &str, status: &str) -> usize {
    notes
        .iter()
        .filter(|(a, s)| a == alert && s == status)
        .count()
}

const ADDED: &str = r#"
[[collector]]
name = "added"
plugin = "flaky"
library = LIB
"#;

const SUCCESSFUL: &str = "monitor_host_config_last_reload_successful";
const STAMP: &str = "monitor_host_config_last_reload_success_timestamp_seconds";
const CALLS: &str = "monitor_plugin_calls_total";
const FILE: &str = "instance=\"file\"";

#[test]
fn a_valid_changed_config_applies_and_keeps_what_is_unchanged_running() {
    let dir = Scratch::new("reload-valid");
    let port = free_port();
    dir.write("value", "50");
    let v1 = Version {
        collectors: "",
        threshold: 10,
        second: true,
    };
    let config = write_config(&dir, port, &v1);
    let host = spawn(&config);
    let stderr = host.stderr().clone();
    let firing = || {
        let n = notes(&dir.join("notes.jsonl"));
        (count(&n, "too_high", "firing") == 1 && count(&n, "also_high", "firing") == 1).then_some(n)
    };
    assert!(eventually(LIMIT, firing).is_some(), "{}", stderr.text());
    assert_eq!(metric(port, SUCCESSFUL, ""), Some(1.0));
    let calls = wait_metric(port, CALLS, FILE, |c| c >= 2.0).expect("the file collector runs");
    let second = || Some(notes(&dir.join("second.jsonl")).len()).filter(|n| *n == 2);
    let second_before = eventually(LIMIT, second).expect("the second notifier was told too");

    let v2 = Version {
        collectors: ADDED,
        threshold: 100,
        second: false,
    };
    write_config(&dir, port, &v2);
    host.signal("HUP");
    assert!(stderr.wait_for_n("config reloaded", 1), "{}", stderr.text());
    // The new collector runs, and its series is collected.
    let added = "instance=\"added\"";
    assert!(wait_metric(port, CALLS, added, |c| c >= 1.0).is_some());
    assert!(wait_metric(port, "test_flaky", "", |_| true).is_some());
    // The changed threshold resolves `too_high`; `also_high`, unchanged, is not notified again.
    let resolved = eventually(LIMIT, || {
        let n = notes(&dir.join("notes.jsonl"));
        (count(&n, "too_high", "resolved") == 1).then_some(n)
    })
    .expect("too_high resolved under its new threshold");
    assert_eq!(count(&resolved, "also_high", "firing"), 1, "{resolved:?}");
    assert_eq!(count(&resolved, "also_high", "resolved"), 0, "{resolved:?}");
    // The removed notifier was shut down and told nothing more; the file collector kept running.
    let log = std::fs::read_to_string(dir.join("shutdown.log")).unwrap();
    assert_eq!(log.lines().collect::<Vec<_>>(), ["recorder:second"]);
    assert_eq!(notes(&dir.join("second.jsonl")).len(), second_before);
    let after = metric(port, CALLS, FILE).unwrap();
    assert!(
        after >= calls,
        "the call counter did not reset: {calls} then {after}"
    );
    assert_eq!(metric(port, SUCCESSFUL, ""), Some(1.0));
    assert!(
        !stderr.text().contains("restart the host"),
        "{}",
        stderr.text()
    );

    host.stop();
    let log = std::fs::read_to_string(dir.join("shutdown.log")).unwrap();
    // `added` keeps no shutdown log.
    assert_eq!(
        log.lines().count(),
        3,
        "every instance shut down once: {log}"
    );
}

#[test]
fn an_invalid_config_is_refused_and_the_running_one_stays() {
    let dir = Scratch::new("reload-invalid");
    let port = free_port();
    dir.write("value", "5");
    let v1 = Version {
        collectors: ADDED,
        threshold: 10,
        second: false,
    };
    let config = write_config(&dir, port, &v1);
    let host = spawn(&config);
    let stderr = host.stderr().clone();
    assert!(wait_metric(port, CALLS, FILE, |c| c >= 1.0).is_some());
    let (status, body) = http(port, "GET", "/-/reload");
    assert_eq!(status, 405, "{body}");

    // A plugin the library does not have: the config parses, the instance cannot start.
    let missing = ADDED.replace("\"flaky\"", "\"nothing\"");
    let v2 = Version {
        collectors: &missing,
        threshold: 10,
        second: false,
    };
    write_config(&dir, port, &v2);
    host.signal("HUP");
    assert!(
        stderr.wait_for_n("config not reloaded", 1),
        "{}",
        stderr.text()
    );
    assert!(stderr.text().contains("has no collector named `nothing`"));
    assert!(wait_metric(port, SUCCESSFUL, "", |v| v == 0.0).is_some());
    let added = "instance=\"added\"";
    let calls = metric(port, CALLS, added).expect("the running collector stays");
    assert!(wait_metric(port, CALLS, added, |c| c > calls).is_some());

    // A syntax error, through HTTP: every error comes back as `file:line:col: ...`.
    std::fs::write(&config, "[host]\ninterval = \"1s\"\nnot toml at all\n").unwrap();
    let (status, body) = http(port, "POST", "/-/reload");
    assert_eq!(status, 400, "{body}");
    let file = config.display().to_string();
    assert!(
        body.lines().any(|l| l.starts_with(&format!("{file}:3:"))),
        "{body}"
    );
    assert!(
        stderr.wait_for_n("config not reloaded", 2),
        "{}",
        stderr.text()
    );
    assert_eq!(metric(port, SUCCESSFUL, ""), Some(0.0));

    // Fixed: applied again.
    let v3 = Version {
        collectors: "",
        threshold: 10,
        second: false,
    };
    write_config(&dir, port, &v3);
    let (status, body) = http(port, "POST", "/-/reload");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("1 removed (collector `added`)"), "{body}");
    assert_eq!(metric(port, SUCCESSFUL, ""), Some(1.0));
    assert_eq!(
        metric(port, CALLS, added),
        None,
        "the removed collector is gone"
    );
    let stamp = metric(port, STAMP, "");
    let stamp = stamp.expect("the timestamp of the last successful reload");
    assert!(stamp > 0.0);
    let log = std::fs::read_to_string(dir.join("shutdown.log")).unwrap_or_default();
    assert!(log.is_empty(), "the failed reloads stopped nothing: {log}");

    host.stop();
}

#[test]
fn a_removed_instance_busy_with_a_call_shuts_down_once_the_call_returns() {
    let dir = Scratch::new("reload-busy");
    let port = free_port();
    dir.write("value", "5");
    let flag = dir.write("hang", "");
    let sleepy = format!(
        r#"
[[collector]]
name = "sleepy"
plugin = "sleepy"
library = LIB
timeout = "1s"
[collector.config]
flag = {flag}
shutdown_log = {log}
label = "sleepy"
"#,
        flag = toml_path(&flag),
        log = toml_path(&dir.join("shutdown.log")),
    );
    let v1 = Version {
        collectors: &sleepy,
        threshold: 10,
        second: false,
    };
    let config = write_config(&dir, port, &v1);
    let host = spawn(&config);
    let stderr = host.stderr().clone();
    let stuck = "monitor_plugin_stuck";
    let at = "instance=\"sleepy\"";
    assert!(
        wait_metric(port, stuck, at, |v| v == 1.0).is_some(),
        "{}",
        stderr.text()
    );

    let v2 = Version {
        collectors: "",
        threshold: 10,
        second: false,
    };
    write_config(&dir, port, &v2);
    let (status, body) = http(port, "POST", "/-/reload");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("1 removed (collector `sleepy`)"), "{body}");
    let log = dir.join("shutdown.log");
    assert!(!log.exists(), "not shut down while its call runs");
    std::fs::remove_file(&flag).unwrap();
    let logged = eventually(LIMIT, || {
        let text = std::fs::read_to_string(&log).ok()?;
        (text == "sleepy:sleepy\n").then_some(())
    });
    assert!(logged.is_some(), "shut down once the call returned");
    let calls = metric(port, CALLS, FILE).unwrap();
    assert!(
        wait_metric(port, CALLS, FILE, |c| c > calls).is_some(),
        "still cycling"
    );

    host.stop();
}
