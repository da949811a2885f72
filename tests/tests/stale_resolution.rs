//! An alert whose series goes stale resolves with a well-typed payload: `value` is the last value
//! seen and `stale` says why. The bundled notifiers (log, webhook) and a notifier written in C
//! accept it, and none of them is counted as failing.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use monitor_core::http::{HttpServer, Response};
use monitor_host::{Config, Engine};
use monitor_tests::{Scratch, compile_c, library, toml_path};

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn receiver() -> (u16, mpsc::Receiver<String>) {
    let (tx, rx) = mpsc::channel();
    let server = HttpServer::start("127.0.0.1:0", "receiver", move |req| {
        let _ = tx.send(String::from_utf8_lossy(req.body).into_owned());
        Response::new(200, "text/plain", "")
    })
    .unwrap();
    let port = server.local_addr().port();
    // Serves until the test process ends.
    std::mem::forget(server);
    (port, rx)
}

#[test]
fn a_stale_series_resolves_with_its_last_value_for_every_notifier() {
    let dir = Scratch::new("stale");
    let value = dir.write("value", "50");
    let c_lib = compile_c(
        &["tests/c/c_plugin.c"],
        &dir.join("libc_plugin.so"),
        true,
        &["-DTEST_WITH_NOTIFIER"],
    );
    let (port, bodies) = receiver();
    let (json, text, c_out) = (
        dir.join("log.jsonl"),
        dir.join("log.txt"),
        dir.join("c.jsonl"),
    );
    let log = toml_path(&library("monitor-plugin-log"));
    let config = Config::from_str(
        &format!(
            r#"
[host]
interval = "1s"

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
plugin = "log"
name = "json"
library = {log}
[notifier.config]
path = {json}

[[notifier]]
plugin = "log"
name = "text"
library = {log}
[notifier.config]
path = {text}
format = "text"

[[notifier]]
plugin = "webhook"
library = {hook}
[notifier.config]
url = "http://127.0.0.1:{port}/hook"
retries = 0

[[notifier]]
plugin = "c-appender"
library = {c_lib}
[notifier.config]
path = {c_out}
"#,
            test = toml_path(&library("monitor-test-plugins")),
            value = toml_path(&value),
            hook = toml_path(&library("monitor-plugin-webhook")),
            json = toml_path(&json),
            text = toml_path(&text),
            c_lib = toml_path(&c_lib),
            c_out = toml_path(&c_out),
        ),
        "monitor.toml",
        dir.path(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: libraries built from this workspace and its test sources.
    let mut e = unsafe { Engine::load(&config) }.unwrap_or_else(|e| panic!("{e}"));
    e.cycle(1_700_000_000_000);
    e.settle(Duration::from_secs(10));
    // The collector fails from now on (no file): its series is stale at once, as after a failed
    // scrape.
    std::fs::remove_file(&value).unwrap();
    e.cycle(1_700_000_010_000);
    e.settle(Duration::from_secs(10));

    for name in ["json", "text", "webhook", "c-appender"] {
        let p = e.plugins().into_iter().find(|p| p.name == name).unwrap();
        assert_eq!(
            (p.stats.calls, p.stats.errors, p.stats.last_error.as_deref()),
            (2, 0, None),
            "{name} took both notifications"
        );
    }
    for path in [&json, &c_out] {
        let n: Vec<serde_json::Value> = lines(path)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(n.len(), 2, "{n:?}");
        assert_eq!(n[0]["status"], "firing");
        assert!(n[0].get("stale").is_none(), "{}", n[0]);
        assert_eq!(n[1]["status"], "resolved");
        assert_eq!(n[1]["value"], 50.0, "the last value seen: {}", n[1]);
        assert_eq!(n[1]["stale"], true);
        assert_eq!(n[1]["ends_at_ms"], 1_700_000_010_000u64);
    }
    let t = lines(&text);
    assert!(t[1].starts_with("RESOLVED too_high "), "{t:?}");
    assert!(t[1].contains("value=50 stale=true"), "{t:?}");
    let _firing = bodies.recv_timeout(Duration::from_secs(10)).unwrap();
    let resolved: serde_json::Value =
        serde_json::from_str(&bodies.recv_timeout(Duration::from_secs(10)).unwrap()).unwrap();
    let a = &resolved["alerts"][0];
    assert_eq!(a["status"], "resolved");
    assert!(
        a["annotations"]["summary"]
            .as_str()
            .unwrap()
            .ends_with("(value 50)"),
        "{a}"
    );
    assert!(a["annotations"]["stale"].is_string(), "{a}");
}
