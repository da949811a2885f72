//! Reminders: while an alert fires, each notifier is sent the firing notification again every
//! `resend_every` (by default `[host] repeat_interval`, or `resend_delay` for a notifier declared
//! `alertmanager = true`), marked `repeat` and valid for four intervals; the resolution goes out
//! once; the send times survive a restart. Driven by the engine's clock, never by sleeping.

use std::path::{Path, PathBuf};
use std::time::Duration;

use monitor_host::{Config, Engine};
use monitor_tests::{Scratch, library, toml_path};

const T0: u64 = 1_700_000_000_000;
const S: u64 = 1000;

/// A `file` collector whose value fires `too_high`, and three `log` notifiers writing JSON lines:
/// `plain` (reminded every `repeat_interval`, 1m), `am` (an Alertmanager one: every
/// `resend_delay`, 20s) and `once` (`resend_every = "off"`).
fn config(dir: &Scratch, value: &Path) -> String {
    let log = |name: &str, extra: &str| {
        format!(
            "[[notifier]]\nplugin = \"log\"\nname = \"{name}\"\nlibrary = {lib}\n{extra}\n\
             [notifier.config]\npath = {path}\n\n",
            lib = toml_path(&library("monitor-plugin-log")),
            path = toml_path(&dir.join(&format!("{name}.jsonl"))),
        )
    };
    format!(
        r#"
[host]
interval = "10s"
listen = "off"
data_dir = "data"
repeat_interval = "1m"
resend_delay = "20s"

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

{plain}{am}{once}"#,
        test = toml_path(&library("monitor-test-plugins")),
        value = toml_path(value),
        plain = log("plain", ""),
        am = log("am", "alertmanager = true"),
        once = log("once", "resend_every = \"off\""),
    )
}

fn engine(text: &str, dir: &Scratch) -> Engine {
    let config =
        Config::from_str(text, "monitor.toml", dir.path()).unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: the plugin libraries are built from this workspace.
    unsafe { Engine::load(&config) }.unwrap_or_else(|e| panic!("{e}"))
}

fn cycle(e: &mut Engine, at_ms: u64) {
    e.cycle(at_ms);
    e.settle(Duration::from_secs(10));
}

fn lines(path: &PathBuf) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `(status, repeat, seconds after T0 it was valid until, or resolved at)` of each line.
fn summary(path: &PathBuf) -> Vec<(String, bool, Option<u64>)> {
    lines(path)
        .iter()
        .map(|n| {
            let until = n.get("valid_until_ms").or(n.get("ends_at_ms"));
            (
                n["status"].as_str().unwrap().to_owned(),
                n.get("repeat").is_some_and(|r| r == true),
                until.map(|u| (u.as_u64().unwrap() - T0) / S),
            )
        })
        .collect()
}

fn firing(repeat: bool, until_s: u64) -> (String, bool, Option<u64>) {
    ("firing".into(), repeat, Some(until_s))
}

fn resolved(at_s: u64) -> (String, bool, Option<u64>) {
    ("resolved".into(), false, Some(at_s))
}

#[test]
fn each_notifier_is_reminded_on_its_own_interval_while_the_alert_fires_and_told_once_it_resolved() {
    let dir = Scratch::new("reminders");
    let value = dir.write("value", "50");
    let mut e = engine(&config(&dir, &value), &dir);
    for s in [0, 20, 30, 60, 70, 100, 130, 140] {
        cycle(&mut e, T0 + s * S);
    }
    std::fs::write(&value, "1").unwrap();
    cycle(&mut e, T0 + 150 * S);
    cycle(&mut e, T0 + 300 * S);

    // Every 1m: due strictly after 60 s, so at 70 s, then strictly after 130 s, at 140 s. Valid
    // for 4 * max(1m, 10s).
    assert_eq!(
        summary(&dir.join("plain.jsonl")),
        [
            firing(false, 240),
            firing(true, 70 + 240),
            firing(true, 140 + 240),
            resolved(150)
        ]
    );
    // Every 20s: at 30 s (not 20 s), 60 s, 100 s, 130 s; valid for 4 * max(20s, 10s).
    assert_eq!(
        summary(&dir.join("am.jsonl")),
        [
            firing(false, 80),
            firing(true, 30 + 80),
            firing(true, 60 + 80),
            firing(true, 100 + 80),
            firing(true, 130 + 80),
            resolved(150)
        ]
    );
    // No reminders, and no validity: the receiver applies its own timeout.
    let once = lines(&dir.join("once.jsonl"));
    assert_eq!(once.len(), 2, "{once:?}");
    assert!(once[0].get("valid_until_ms").is_none(), "{once:?}");
    assert_eq!(once[1]["status"], "resolved");
    // A reminder is the same alert: same start, labels and value.
    let plain = lines(&dir.join("plain.jsonl"));
    assert_eq!(plain[1]["starts_at_ms"], T0);
    assert_eq!(plain[1]["labels"], plain[0]["labels"]);
    assert_eq!(plain[1]["value"], 50.0);
}

#[test]
fn reminders_keep_their_schedule_across_a_restart() {
    let dir = Scratch::new("reminders-restart");
    let value = dir.write("value", "50");
    let text = config(&dir, &value);
    let start = |at_ms: u64| {
        let mut e = engine(&text, &dir);
        e.load_history(&dir.join("data"), at_ms).unwrap();
        e
    };
    let plain = dir.join("plain.jsonl");

    let mut e = start(T0);
    cycle(&mut e, T0);
    cycle(&mut e, T0 + 70 * S);
    e.shutdown();
    assert_eq!(summary(&plain), [firing(false, 240), firing(true, 310)]);

    // Last sent at 70 s: not due before 130 s, although the alert fired at 0 s.
    let mut e = start(T0 + 100 * S);
    cycle(&mut e, T0 + 100 * S);
    assert_eq!(summary(&plain).len(), 2, "{:?}", summary(&plain));
    cycle(&mut e, T0 + 140 * S);
    e.shutdown();
    assert_eq!(summary(&plain)[2], firing(true, 140 + 240));

    // Down past the due time (200 s): sent at the first cycle after the start, once.
    let mut e = start(T0 + 300 * S);
    cycle(&mut e, T0 + 300 * S);
    cycle(&mut e, T0 + 310 * S);
    e.shutdown();
    let all = summary(&plain);
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(all[3], firing(true, 300 + 240));
    // The first notification was not sent again by any start.
    assert_eq!(all.iter().filter(|n| !n.1).count(), 1, "{all:?}");
}

#[test]
fn a_reloaded_notifier_keeps_its_reminder_schedule() {
    let dir = Scratch::new("reminders-reload");
    let value = dir.write("value", "50");
    let text = config(&dir, &value);
    let plain = dir.join("plain.jsonl");
    let mut e = engine(&text, &dir);
    cycle(&mut e, T0);
    cycle(&mut e, T0 + 70 * S);
    assert_eq!(summary(&plain).len(), 2);

    // A new declaration (an explicit default in its config table) restarts the instance.
    let changed = text.replacen(
        "[notifier.config]\n",
        "[notifier.config]\nformat = \"json\"\n",
        1,
    );
    let new = Config::from_str(&changed, "monitor.toml", dir.path()).unwrap();
    // SAFETY: the plugin libraries are built from this workspace.
    let summary_of_reload = unsafe { e.apply_config(&new) }.unwrap();
    assert_eq!(summary_of_reload.restarted, ["notifier `plain`"]);
    cycle(&mut e, T0 + 100 * S);
    assert_eq!(summary(&plain).len(), 2, "not due before 130 s");
    cycle(&mut e, T0 + 140 * S);
    assert_eq!(summary(&plain)[2], firing(true, 140 + 240));
}
