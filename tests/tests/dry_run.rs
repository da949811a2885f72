//! `monitor-host run --once --dry-run`: collectors run and alerts are evaluated, and the report
//! says what would be notified and healed, without calling any notifier or strategy and without
//! writing history.

use std::process::Command;

use monitor_tests::{Scratch, binary, library, toml_path};

#[test]
fn a_dry_run_reports_what_it_would_do_and_does_none_of_it() {
    let dir = Scratch::new("dry-run");
    let lib = toml_path(&library("monitor-test-plugins"));
    let value = dir.write("value", "50");
    let log = dir.join("shutdown.log");
    let notes = dir.join("notes.jsonl");
    let config = dir.write(
        "monitor.toml",
        &format!(
            r#"[host]
interval = "1s"
data_dir = "data"

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
severity = "error"

[[alert]]
name = "high_for_a_while"
metric = "test.value"
condition = "above"
threshold = 10
for = "30s"

[[notifier]]
plugin = "recorder"
library = {lib}
[notifier.config]
path = {notes}
shutdown_log = {log}
label = "recorder"

[[notifier]]
plugin = "recorder"
name = "critical-only"
library = {lib}
min_severity = "critical"
[notifier.config]
path = {notes}

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
            log = toml_path(&log),
            notes = toml_path(&notes),
        ),
    );
    let out = Command::new(binary("monitor-host"))
        .args(["run", "--once", "--dry-run", "--config"])
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
    assert!(text.contains("dry run: "), "{text}");
    let section = |title: &str| -> Vec<String> {
        text.split(&format!("\n{title}:\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("no `{title}` section: {text}"))
            .lines()
            .take_while(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        section("would notify"),
        ["  recorder <- firing too_high {collector=file,source=file} value 50 (error)"],
        "{text}"
    );
    assert_eq!(
        section("would heal"),
        ["  fixer on too_high {collector=file,source=file} attempt 1 (value 50)"],
        "{text}"
    );
    assert!(
        text.contains("`for` cannot elapse within one cycle"),
        "{text}"
    );
    assert!(
        text.contains("  high_for_a_while {collector=file,source=file} value 50 (for 30s)"),
        "{text}"
    );

    // Nothing was done: no notification, no repair, no history, only the collector ran.
    assert!(!notes.exists(), "a notifier was called");
    assert_eq!(
        std::fs::read_to_string(&value).unwrap(),
        "50",
        "a strategy ran"
    );
    assert!(!dir.join("data").exists(), "history was written");
    assert_eq!(std::fs::read_to_string(&log).unwrap().trim(), "file:file");
}

#[test]
fn dry_run_needs_once() {
    let out = Command::new(binary("monitor-host"))
        .args(["run", "--dry-run", "--config", "monitor.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--once"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
