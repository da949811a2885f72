//! Alerts of rule files through the whole engine on a driven clock, with real plugin libraries:
//! healing strategies triggered by them (also after a reload), their annotations kept across a
//! restart (served and re-sent before the rule returns the alert again), and their resolution at
//! the first collection that lacks their series (or fails, times out, or was removed by a
//! reload), as Prometheus resolves an alert at the evaluation after the first scrape that lacks
//! it, and the annotations of each transition in the history.

use std::path::Path;
use std::time::Duration;

use monitor_host::history::TransitionQuery;
use monitor_host::{Config, Engine};
use monitor_tests::{Scratch, library, toml_path};

fn engine(text: &str, dir: &Path) -> Engine {
    let config = Config::from_str(text, "monitor.toml", dir).unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: the test plugin library is built from this workspace.
    unsafe { Engine::load(&config) }.unwrap_or_else(|e| panic!("{e}"))
}

fn notifications(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn cycle(e: &mut Engine, t: u64) {
    e.cycle(t);
    e.settle(Duration::from_secs(10));
}

/// A host every 10 s: the `file` collector reading `value`, the rule file `r.yml` (written
/// with `rules`), the `recorder` notifier writing `notes.jsonl`, and `extra`.
fn config(dir: &Scratch, rules: &str, extra: &str) -> String {
    dir.write("r.yml", rules);
    format!(
        r#"
[host]
interval = "10s"
rule_files = ["r.yml"]

[[collector]]
plugin = "file"
library = {lib}
[collector.config]
path = {value}

[[notifier]]
plugin = "recorder"
library = {lib}
resend_every = "10s"
[notifier.config]
path = {notes}
{extra}
"#,
        lib = toml_path(&library("monitor-test-plugins")),
        value = toml_path(&dir.join("value")),
        notes = toml_path(&dir.join("notes.jsonl")),
    )
}

const HIGH: &str =
    "groups:\n  - name: g\n    rules:\n      - alert: High\n        expr: test_value > 10\n";

#[test]
fn a_strategy_heals_an_alert_of_a_rule_file_before_and_after_a_reload() {
    let dir = Scratch::new("rule-heal");
    dir.write("value", "50");
    let strategy = format!(
        "\n[[strategy]]\nplugin = \"fixer\"\nlibrary = {lib}\non = [\"High\"]\ncooldown = \"0s\"\n[strategy.config]\npath = {value}\nvalue = 1\n",
        lib = toml_path(&library("monitor-test-plugins")),
        value = toml_path(&dir.join("value")),
    );
    let text = config(&dir, HIGH, &strategy);
    let mut e = engine(&text, dir.path());
    // Fires, the fixer repairs the value, the alert resolves: a verified recovery.
    cycle(&mut e, 0);
    cycle(&mut e, 10_000);
    let heals: Vec<_> = e.healing().cloned().collect();
    assert_eq!(heals.len(), 1, "{heals:?}");
    assert_eq!(heals[0].alert, "High");
    assert!(heals[0].success, "{heals:?}");

    // The same strategy after a reload (the rule file changed too): it still heals `High`.
    let reloaded = Config::from_str(
        &config(&dir, &HIGH.replace("> 10", "> 20"), &strategy),
        "monitor.toml",
        dir.path(),
    )
    .unwrap();
    // SAFETY: as above.
    unsafe { e.apply_config(&reloaded) }.unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("value"), "50").unwrap();
    cycle(&mut e, 20_000);
    cycle(&mut e, 30_000);
    let heals: Vec<_> = e.healing().cloned().collect();
    assert_eq!(heals.len(), 2, "{heals:?}");
    assert_eq!(heals[1].alert, "High");
    let n = notifications(&dir.join("notes.jsonl"));
    let resolved = n.iter().filter(|n| n["status"] == "resolved").count();
    assert_eq!(resolved, 2, "{n:?}");
}

#[test]
fn annotations_survive_a_restart_and_are_re_sent() {
    let dir = Scratch::new("rule-annotations");
    dir.write("value", "50");
    // Kept firing for an hour once the condition stops: the rule no longer renders it.
    let rules = concat!(
        "groups:\n  - name: g\n    rules:\n      - alert: Hot\n        expr: test_value > 10\n",
        "        keep_firing_for: 1h\n        annotations:\n",
        "          summary: \"{{ $labels.source }} at {{ $value }}\"\n",
    );
    let text = config(&dir, rules, "");
    let data = dir.join("data");
    let mut first = engine(&text, dir.path());
    first.load_history(&data, 0).unwrap();
    cycle(&mut first, 0);
    std::fs::write(dir.join("value"), "1").unwrap();
    cycle(&mut first, 10_000);
    drop(first.shutdown());
    let summary = |v: &serde_json::Value| v["annotations"]["summary"].as_str().map(str::to_owned);
    let n = notifications(&dir.join("notes.jsonl"));
    assert_eq!(summary(&n[0]).as_deref(), Some("file at 50"), "{n:?}");

    let mut second = engine(&text, dir.path());
    second.load_history(&data, 20_000).unwrap();
    let alerts = second.alerts().prometheus_alerts();
    let alert = &alerts["data"]["alerts"][0];
    assert_eq!(alert["state"], "firing", "{alerts}");
    assert_eq!(summary(alert).as_deref(), Some("file at 50"), "{alerts}");
    cycle(&mut second, 20_000);
    let alerts = second.alerts().prometheus_alerts();
    assert_eq!(
        summary(&alerts["data"]["alerts"][0]).as_deref(),
        Some("file at 50"),
        "kept firing, with its annotations: {alerts}"
    );
    let n = notifications(&dir.join("notes.jsonl"));
    let resent = n.last().unwrap();
    assert_eq!(resent["status"], "firing", "{n:?}");
    assert!(n.len() >= 2, "re-sent after the restart: {n:?}");
    assert_eq!(summary(resent).as_deref(), Some("file at 50"), "{n:?}");
}

#[test]
fn an_alert_resolves_as_stale_at_the_first_collection_that_lacks_its_series() {
    let dir = Scratch::new("rule-stale");
    dir.write("value", "50");
    let mut e = engine(&config(&dir, HIGH, ""), dir.path());
    cycle(&mut e, 0);
    // The collector fails from now on (no file): Prometheus marks the series stale at the first
    // failed scrape and resolves at the next evaluation, not three intervals later.
    std::fs::remove_file(dir.join("value")).unwrap();
    cycle(&mut e, 10_000);
    let n = notifications(&dir.join("notes.jsonl"));
    assert_eq!(n.len(), 2, "{n:?}");
    assert_eq!(n[1]["status"], "resolved");
    assert_eq!(n[1]["ends_at_ms"], 10_000, "{n:?}");
    assert_eq!(n[1]["stale"], true, "{n:?}");
    assert_eq!(n[1]["value"], 50.0, "the last value seen: {n:?}");
}

#[test]
fn an_alert_dropped_past_its_groups_limit_is_neither_resolved_nor_healed() {
    let dir = Scratch::new("rule-limit");
    dir.write("value", "15");
    // One alert at 15, two at 50: past the group's limit of 1.
    let rules = concat!(
        "groups:\n  - name: g\n    limit: 1\n    rules:\n      - alert: Twice\n",
        "        expr: label_replace(test_value, \"copy\", \"a\", \"\", \"\") > 10",
        " or label_replace(test_value, \"copy\", \"b\", \"\", \"\") > 20\n",
    );
    let strategy = format!(
        "\n[[strategy]]\nplugin = \"fixer\"\nlibrary = {lib}\non = [\"Twice\"]\ncooldown = \"0s\"\nmax_attempts = 100\n[strategy.config]\nsucceed = false\n",
        lib = toml_path(&library("monitor-test-plugins")),
    );
    let mut e = engine(&config(&dir, rules, &strategy), dir.path());
    cycle(&mut e, 0);
    cycle(&mut e, 10_000);
    assert!(e.healing().count() >= 1, "healed while it fired");
    std::fs::write(dir.join("value"), "50").unwrap();
    cycle(&mut e, 20_000);
    let rules = e.alerts().prometheus_rules(Duration::from_secs(10));
    let rule = &rules["data"]["groups"][1]["rules"][0];
    assert_eq!(rule["health"], "err", "{rule}");
    assert_eq!(rule["lastError"], "exceeded limit of 1 with 2 alerts");
    let healed = e.healing().count();
    let sent = notifications(&dir.join("notes.jsonl")).len();
    for t in [30_000, 40_000, 50_000] {
        cycle(&mut e, t);
    }
    assert_eq!(e.healing().count(), healed, "no attempt on a dropped alert");
    let n = notifications(&dir.join("notes.jsonl"));
    assert!(
        n.iter()
            .all(|n| n["status"] == "firing" && n["escalation"] == false),
        "no resolution, no escalation: {n:?}"
    );
    assert_eq!(n.len(), sent, "no reminder after the drop either: {n:?}");
}

/// The resolution notified last: it resolved at `at_ms`, as stale, with the last value seen.
fn assert_resolved_stale(notes: &Path, at_ms: u64) {
    let n = notifications(notes);
    assert_eq!(n.len(), 2, "fired, then resolved: {n:?}");
    assert_eq!(n[1]["status"], "resolved", "{n:?}");
    assert_eq!(n[1]["ends_at_ms"], at_ms, "{n:?}");
    assert_eq!(n[1]["stale"], true, "{n:?}");
}

#[test]
fn an_alert_resolves_as_stale_at_the_first_collection_that_times_out() {
    let dir = Scratch::new("rule-timeout");
    dir.write("value", "1");
    let flag = dir.join("hang");
    let sleepy = format!(
        "\n[[collector]]\nplugin = \"sleepy\"\nlibrary = {lib}\ntimeout = \"300ms\"\n[collector.config]\nflag = {flag}\n",
        lib = toml_path(&library("monitor-test-plugins")),
        flag = toml_path(&flag),
    );
    let rules =
        "groups:\n  - name: g\n    rules:\n      - alert: Up\n        expr: test_sleepy > 0\n";
    let mut e = engine(&config(&dir, rules, &sleepy), dir.path());
    cycle(&mut e, 0);
    // The collection hangs past its timeout: as a failed one, its series are stale at once.
    std::fs::write(&flag, "").unwrap();
    cycle(&mut e, 10_000);
    std::fs::remove_file(&flag).unwrap();
    assert_resolved_stale(&dir.join("notes.jsonl"), 10_000);
}

#[test]
fn an_alert_on_a_collector_a_reload_removed_resolves_as_stale_at_the_next_evaluation() {
    let dir = Scratch::new("rule-removed");
    dir.write("value", "50");
    let text = config(&dir, HIGH, "");
    let mut e = engine(&text, dir.path());
    cycle(&mut e, 0);
    // The `file` collector gives way to another: Prometheus marks a removed target's series
    // stale, so the alert resolves at the next evaluation rather than three intervals later.
    let other = text.replace("plugin = \"file\"", "plugin = \"flaky\"");
    let reloaded = Config::from_str(&other, "monitor.toml", dir.path()).unwrap();
    // SAFETY: the test plugin library is built from this workspace.
    let summary = unsafe { e.apply_config(&reloaded) }.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.removed, ["collector `file`"], "{summary}");
    cycle(&mut e, 10_000);
    assert_resolved_stale(&dir.join("notes.jsonl"), 10_000);
}

#[test]
fn each_transition_in_the_history_carries_its_annotations() {
    let dir = Scratch::new("rule-history-annotations");
    dir.write("value", "50");
    let rules = concat!(
        "groups:\n  - name: g\n    rules:\n      - alert: Hot\n        expr: test_value > 10\n",
        "        annotations:\n          summary: \"{{ $labels.source }} at {{ $value }}\"\n",
    );
    let mut e = engine(&config(&dir, rules, ""), dir.path());
    e.load_history(&dir.join("data"), 0).unwrap();
    cycle(&mut e, 0);
    std::fs::write(dir.join("value"), "70").unwrap();
    cycle(&mut e, 10_000);
    std::fs::write(dir.join("value"), "1").unwrap();
    cycle(&mut e, 20_000);
    let q = TransitionQuery {
        limit: 10,
        ..TransitionQuery::default()
    };
    let t = e.transitions(&q).unwrap();
    let summaries: Vec<(bool, Option<&str>)> = (t.iter())
        .map(|t| (t.firing, t.annotations.get("summary").map(String::as_str)))
        .collect();
    // Newest first; the resolution carries what was rendered last, as it was notified.
    assert_eq!(
        summaries,
        [(false, Some("file at 70")), (true, Some("file at 50"))],
        "{t:?}"
    );
}
