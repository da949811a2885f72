//! The host engine with real plugin libraries: load, collect, alert, notify, heal, resolve; and
//! plugins that fail, panic, hang or flood, with the host still cycling and reporting them.

use std::path::Path;
use std::time::Duration;

use monitor_host::{Config, Engine, history, render};
use monitor_tests::{Scratch, library, toml_path};

fn engine(text: &str, dir: &Path) -> Engine {
    let config = Config::from_str(text, "monitor.toml", dir).unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: the test plugin library is built from this workspace.
    unsafe { Engine::load(&config) }.unwrap_or_else(|e| panic!("{e}"))
}

fn plugins_lib() -> String {
    toml_path(&library("monitor-test-plugins"))
}

fn notifications(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn stats(e: &Engine, name: &str) -> monitor_host::engine::PluginStats {
    e.plugins()
        .into_iter()
        .find(|p| p.name == name)
        .unwrap()
        .stats
}

#[test]
fn collect_alert_notify_heal_resolve() {
    let dir = Scratch::new("loop");
    let value = dir.write("value", "5");
    let notes = dir.join("notes.jsonl");
    let lib = plugins_lib();
    let mut e = engine(
        &format!(
            r#"
[host]
interval = "10s"
name = "test-host"

[[collector]]
plugin = "file"
library = {lib}
[collector.config]
path = {value}

[[alert]]
name = "too_high"
metric = "test.value"
condition = "above"
threshold = 10
for = "20s"
severity = "error"
description = "the value is too high"

[[notifier]]
plugin = "recorder"
library = {lib}
min_severity = "warning"
[notifier.config]
path = {notes}

[[notifier]]
plugin = "recorder"
name = "critical-only"
library = {lib}
min_severity = "critical"
[notifier.config]
path = {critical}

[[strategy]]
plugin = "fixer"
library = {lib}
on = ["too_high"]
max_attempts = 3
within = "5m"
[strategy.config]
path = {value}
value = 1
"#,
            value = toml_path(&value),
            notes = toml_path(&notes),
            critical = toml_path(&dir.join("critical.jsonl")),
        ),
        dir.path(),
    );
    let settle = |e: &mut Engine| e.settle(Duration::from_secs(10));

    // Normal value: no alert.
    e.cycle(0);
    settle(&mut e);
    assert!(notifications(&notes).is_empty());

    // Too high, but not yet for 20 s: pending, no notification, no healing.
    std::fs::write(&value, "50").unwrap();
    e.cycle(10_000);
    settle(&mut e);
    assert!(notifications(&notes).is_empty());
    assert_eq!(e.healing().count(), 0);

    // Held for 20 s: fires once, notified, healing attempt 1 runs and repairs the file.
    e.cycle(30_000);
    settle(&mut e);
    let n = notifications(&notes);
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0]["status"], "firing");
    assert_eq!(n[0]["alert"], "too_high");
    assert_eq!(n[0]["value"], 50.0);
    assert_eq!(n[0]["severity"], "error");
    assert_eq!(n[0]["host"], "test-host");
    let heals: Vec<_> = e.healing().cloned().collect();
    assert_eq!(heals.len(), 1);
    assert!(heals[0].success);
    assert_eq!(heals[0].attempt, 1);
    assert_eq!(std::fs::read_to_string(&value).unwrap(), "1");
    assert!(
        notifications(&dir.join("critical.jsonl")).is_empty(),
        "min_severity filters"
    );

    // Next cycle sees the repaired value: resolved, notified once.
    e.cycle(40_000);
    settle(&mut e);
    let n = notifications(&notes);
    assert_eq!(n.len(), 2, "{n:?}");
    assert_eq!(n[1]["status"], "resolved");
    assert_eq!(n[1]["starts_at_ms"], 30_000);
    assert_eq!(n[1]["ends_at_ms"], 40_000);

    let snap: serde_json::Value = serde_json::from_str(&render::snapshot_json(&e)).unwrap();
    assert_eq!(snap["alerts"][0]["state"], "inactive");
    assert_eq!(snap["healing"][0]["success"], true);
    let metrics = render::prometheus(&e);
    assert!(
        metrics.contains("test_value{collector=\"file\",source=\"file\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("monitor_alert_state{alertname=\"too_high\",collector=\"file\",severity=\"error\",source=\"file\"} 0"), "{metrics}");
    assert!(metrics.contains("monitor_healing_attempts_total{alertname=\"too_high\",result=\"success\",strategy=\"fixer\"} 1"), "{metrics}");
}

#[test]
fn healing_that_does_not_help_escalates_once() {
    let dir = Scratch::new("escalate");
    let value = dir.write("value", "50");
    let notes = dir.join("notes.jsonl");
    let lib = plugins_lib();
    let mut e = engine(
        &format!(
            r#"
[host]
interval = "10s"

[[collector]]
plugin = "file"
library = {lib}
[collector.config]
path = {value}

[[alert]]
name = "too_high"
metric = "test.value"
condition = "above"
threshold = 10
severity = "warning"

[[notifier]]
plugin = "recorder"
library = {lib}
[notifier.config]
path = {notes}

[[strategy]]
plugin = "fixer"
library = {lib}
on = ["too_high"]
max_attempts = 2
within = "5m"
cooldown = "10s"
[strategy.config]
succeed = false
"#,
            value = toml_path(&value),
            notes = toml_path(&notes),
        ),
        dir.path(),
    );
    for i in 0..6 {
        e.cycle(i * 10_000);
        e.settle(Duration::from_secs(10));
    }
    let heals: Vec<_> = e.healing().cloned().collect();
    assert_eq!(
        heals.iter().map(|h| h.attempt).collect::<Vec<_>>(),
        [1, 2],
        "bounded by max_attempts"
    );
    assert!(heals.iter().all(|h| !h.success));
    let n = notifications(&notes);
    assert_eq!(n.len(), 2, "one firing, one escalation: {n:?}");
    assert_eq!(n[1]["escalation"], true);
    assert_eq!(n[1]["severity"], "critical");
    assert!(
        n[1]["description"]
            .as_str()
            .unwrap()
            .contains("healing gave up")
    );

    // Outside the window, attempts may start again.
    e.cycle(400_000);
    e.settle(Duration::from_secs(10));
    assert_eq!(e.healing().count(), 3);
}

#[test]
fn a_failing_plugin_is_backed_off_and_recovers() {
    let dir = Scratch::new("flaky");
    let flag = dir.write("flag", "");
    let lib = plugins_lib();
    let mut e = engine(
        &format!(
            "[host]\ninterval = \"1s\"\n[[collector]]\nplugin = \"flaky\"\nlibrary = {lib}\n[collector.config]\nflag = {}\n",
            toml_path(&flag)
        ),
        dir.path(),
    );
    let mut t = 0;
    let mut calls_when = Vec::new();
    for _ in 0..12 {
        e.cycle(t);
        calls_when.push(stats(&e, "flaky").calls);
        t += 1000;
    }
    let s = stats(&e, "flaky");
    assert!(s.errors >= 4, "{s:?}");
    assert!(s.calls < 12, "backed off: fewer calls than cycles: {s:?}");
    assert!(s.consecutive_failures >= 3);
    assert!(s.backoff_until_ms.is_some());
    assert!(render::prometheus(&e).contains(
        "monitor_plugin_backoff{instance=\"flaky\",kind=\"collector\",plugin=\"flaky\"} 1"
    ));

    // It works again: after the back-off expires it is called, succeeds, and is healthy.
    std::fs::remove_file(&flag).unwrap();
    let until = s.backoff_until_ms.unwrap();
    e.cycle(until);
    let s = stats(&e, "flaky");
    assert_eq!(s.consecutive_failures, 0, "{s:?}");
    assert!(s.backoff_until_ms.is_none());
    assert_eq!(s.last_success_ms, Some(until));
}

#[test]
fn panicking_hanging_and_flooding_plugins_do_not_stop_the_host() {
    let dir = Scratch::new("bad");
    let flag = dir.write("flag", "");
    let value = dir.write("value", "3");
    let lib = plugins_lib();
    let f = toml_path(&flag);
    let mut e = engine(
        &format!(
            r#"
[host]
interval = "1s"
max_payload_bytes = 1000000

[[collector]]
plugin = "panicky"
library = {lib}
[collector.config]
flag = {f}

[[collector]]
plugin = "sleepy"
library = {lib}
timeout = "300ms"
[collector.config]
flag = {f}

[[collector]]
plugin = "flood"
library = {lib}
[collector.config]
flag = {f}
samples = 100000

[[collector]]
plugin = "file"
library = {lib}
[collector.config]
path = {value}
"#,
            value = toml_path(&value)
        ),
        dir.path(),
    );
    e.cycle(0);
    e.cycle(1000);
    let panicky = stats(&e, "panicky");
    assert!(panicky.panics >= 1, "{panicky:?}");
    assert!(
        panicky
            .last_error
            .as_deref()
            .unwrap()
            .contains("panicking on purpose")
    );
    let sleepy = stats(&e, "sleepy");
    assert_eq!(sleepy.timeouts, 1, "{sleepy:?}");
    assert!(sleepy.stuck && sleepy.busy);
    assert!(
        sleepy.skipped >= 1,
        "a stuck call is not piled on: {sleepy:?}"
    );
    let flood = stats(&e, "flood");
    assert!(flood.errors >= 1);
    assert!(
        flood
            .last_error
            .as_deref()
            .unwrap()
            .contains("exceeds the limit of 1000000 bytes: raise `[host] max_payload_bytes`"),
        "{flood:?}"
    );
    // The well-behaved collector kept working through all of it.
    let file = stats(&e, "file");
    assert_eq!(file.consecutive_failures, 0);
    assert!(file.calls >= 2);
    assert_eq!(e.cycles(), 2);
    let report = render::report(&e);
    assert!(report.contains("STUCK"), "{report}");
    assert!(render::prometheus(&e).contains(
        "monitor_plugin_stuck{instance=\"sleepy\",kind=\"collector\",plugin=\"sleepy\"} 1"
    ));

    // Everyone behaves again: the hung call returns, and each plugin recovers once its back-off ends.
    std::fs::remove_file(&flag).unwrap();
    let start = std::time::Instant::now();
    while stats(&e, "sleepy").busy && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
        e.poll();
    }
    let mut t = 2000;
    for _ in 0..40 {
        e.cycle(t);
        e.settle(Duration::from_secs(5));
        t += 60_000;
        if ["panicky", "sleepy", "flood"]
            .iter()
            .all(|n| stats(&e, n).last_samples == Some(1))
        {
            break;
        }
    }
    for n in ["panicky", "sleepy", "flood"] {
        let s = stats(&e, n);
        assert_eq!(s.consecutive_failures, 0, "{n}: {s:?}");
        assert!(!s.stuck);
    }
}

#[test]
fn a_plugin_with_its_own_allocator_exchanges_payloads_safely() {
    let dir = Scratch::new("mimalloc");
    let lib = toml_path(&library("monitor-test-plugin-mimalloc"));
    let mut e = engine(
        &format!(
            r#"
[[collector]]
plugin = "churn"
library = {lib}
interval = "1s"

[[alert]]
name = "churning"
metric = "mimalloc.churn"
condition = "above"
threshold = -1
labels = {{ i = "7" }}

[[notifier]]
plugin = "sink"
library = {lib}
"#
        ),
        dir.path(),
    );
    for i in 0..20 {
        e.cycle(i * 1000);
        e.settle(Duration::from_secs(5));
    }
    let churn = stats(&e, "churn");
    assert_eq!(churn.calls, 20);
    assert_eq!(churn.errors + churn.panics + churn.timeouts, 0);
    assert_eq!(churn.last_samples, Some(2000));
    let sink = stats(&e, "sink");
    assert_eq!(sink.calls, 1, "fired once, stayed firing: {sink:?}");
    assert_eq!(sink.errors, 0);
    assert_eq!(e.events().count(), 20);
    let outcomes = e.shutdown();
    assert!(outcomes.iter().all(|o| o.result == "ok"), "{outcomes:?}");
}

#[test]
fn history_survives_a_restart_of_the_host() {
    let dir = Scratch::new("history");
    let value = dir.write("value", "50");
    let lib = plugins_lib();
    let text = format!(
        r#"
[host]
retention = "1h"

[[collector]]
plugin = "file"
library = {lib}
[collector.config]
path = {value}

[[alert]]
name = "too_high"
metric = "test.value"
condition = "above"
threshold = 10

[[strategy]]
plugin = "fixer"
library = {lib}
on = ["too_high"]
[strategy.config]
succeed = false
"#,
        value = toml_path(&value)
    );
    let data = dir.join("data");
    let mut first = engine(&text, dir.path());
    first.load_history(&data, 1_000).unwrap();
    first.cycle(1_000);
    // Shutting down writes the outcome of the attempt still running.
    drop(first.shutdown());
    assert!(data.join(history::DATABASE_FILE).exists());

    let mut second = engine(&text, dir.path());
    let read = second.load_history(&data, 2_000).unwrap();
    assert_eq!(read, Some(data.join(history::DATABASE_FILE)));
    assert_eq!(second.healing().count(), 1);
    let (_, series) = second.store().by_name("test.value").next().unwrap();
    assert_eq!(series.latest(), Some((1_000, 50.0)));
    // Points beyond the retention are dropped on load.
    let mut third = engine(&text, dir.path());
    third.load_history(&data, 10_000_000).unwrap();
    assert!(third.store().by_name("test.value").next().is_none());
    assert_eq!(third.healing().count(), 1);
}

fn healing_config(value: &Path, notes: &Path, strategy: &str) -> String {
    let lib = plugins_lib();
    format!(
        r#"
[host]
interval = "10s"

[[collector]]
plugin = "file"
library = {lib}
[collector.config]
path = {value}

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

[[strategy]]
plugin = "fixer"
library = {lib}
on = ["too_high"]
{strategy}
"#,
        value = toml_path(value),
        notes = toml_path(notes),
    )
}

#[test]
fn a_verified_recovery_resets_the_attempt_window() {
    let dir = Scratch::new("verified");
    let value = dir.write("value", "1");
    let notes = dir.join("notes.jsonl");
    let strategy = format!(
        "max_attempts = 2\nwithin = \"1h\"\n[strategy.config]\npath = {}\nvalue = 1\n",
        toml_path(&value)
    );
    let mut e = engine(&healing_config(&value, &notes, &strategy), dir.path());
    let mut t = 0;
    // Four times in a row: the value goes bad, the alert fires, the fixer repairs it, the alert
    // resolves. Each repair is verified by the resolution, so healing never gives up.
    for _ in 0..4 {
        std::fs::write(&value, "50").unwrap();
        for _ in 0..2 {
            e.cycle(t);
            e.settle(Duration::from_secs(10));
            t += 10_000;
        }
    }
    let heals: Vec<_> = e.healing().cloned().collect();
    assert_eq!(heals.len(), 4, "{heals:?}");
    assert!(
        heals.iter().all(|h| h.success && h.attempt == 1),
        "{heals:?}"
    );
    let n = notifications(&notes);
    assert!(n.iter().all(|n| n["escalation"] == false), "{n:?}");
    assert_eq!(n.len(), 8, "fired and resolved four times: {n:?}");
}

#[test]
fn attempts_are_numbered_per_episode_across_a_flapping_alert() {
    let dir = Scratch::new("episode");
    let value = dir.write("value", "1");
    let notes = dir.join("notes.jsonl");
    let strategy = "max_attempts = 3\nwithin = \"1h\"\n[strategy.config]\nsucceed = false\n";
    let mut e = engine(&healing_config(&value, &notes, strategy), dir.path());
    let mut t = 0;
    // The alert fires, healing fails, the alert resolves by itself and fires again: one episode.
    for v in ["50", "1", "50", "1", "50", "1", "50"] {
        std::fs::write(&value, v).unwrap();
        e.cycle(t);
        e.settle(Duration::from_secs(10));
        t += 10_000;
    }
    let attempts: Vec<u32> = e.healing().map(|h| h.attempt).collect();
    assert_eq!(attempts, [1, 2, 3], "numbered within the episode");
    let n = notifications(&notes);
    let escalations = n.iter().filter(|n| n["escalation"] == true).count();
    assert_eq!(escalations, 1, "the fourth firing is over the limit: {n:?}");
}

#[test]
fn healing_attempts_total_counts_every_attempt() {
    let dir = Scratch::new("counters");
    let value = dir.write("value", "50");
    let notes = dir.join("notes.jsonl");
    let strategy = "max_attempts = 100000\ncooldown = \"0s\"\n[strategy.config]\nsucceed = false\n";
    let mut e = engine(&healing_config(&value, &notes, strategy), dir.path());
    let attempts = monitor_host::history::HISTORY_LIMIT + 5;
    for i in 0..attempts {
        e.cycle(i as u64 * 10_000);
        e.settle(Duration::from_secs(10));
    }
    assert_eq!(e.healing().count(), monitor_host::history::HISTORY_LIMIT);
    let metrics = render::prometheus(&e);
    let line = format!(
        "monitor_healing_attempts_total{{alertname=\"too_high\",result=\"failure\",strategy=\"fixer\"}} {attempts}\n"
    );
    assert!(metrics.contains(&line), "{metrics}");
}

/// A collector's request for a collection now: it wakes the loop, waits for the call in progress
/// to end, and is rate-limited to one collection per `MIN_REQUEST_GAP` after the last one began.
#[test]
fn a_requested_collection_is_due_after_the_call_and_the_minimum_gap() {
    use monitor_host::engine::MIN_REQUEST_GAP;

    let dir = Scratch::new("requests");
    let mut e = engine(
        &format!(
            "[host]\ninterval = \"1h\"\n[[collector]]\nplugin = \"asker\"\nlibrary = {}\n",
            plugins_lib()
        ),
        dir.path(),
    );
    let gap = MIN_REQUEST_GAP.as_millis() as u64;
    let t0 = 1_000_000;
    assert!(!e.collect_requested(t0), "nothing asked yet");
    // The first collection asks for another from inside its call.
    e.cycle(t0);
    assert_eq!(stats(&e, "asker").calls, 1);
    assert!(
        stats(&e, "asker").last_error.is_none(),
        "the host took the request"
    );
    assert!(
        e.collection_requests().try_recv().is_ok(),
        "the request woke the loop"
    );
    // Due at the end of the gap, not at once, not an hour later.
    assert!(!e.collect_requested(t0 + 10));
    assert_eq!(e.next_due_ms(), Some(t0 + gap));
    // Taken once: asking again finds nothing new.
    assert!(!e.collect_requested(t0 + 20));
    e.cycle(t0 + gap);
    assert_eq!(stats(&e, "asker").calls, 2);
    // Past the gap, the next request is due at once.
    assert!(e.collect_requested(t0 + 3 * gap));
    assert_eq!(e.next_due_ms(), Some(t0 + 3 * gap));
}
