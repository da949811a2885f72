//! Silences, maintenance windows and inhibition against the real host binary: a silenced alert
//! still fires and shows as silenced, but notifies no one and is not healed; expiring the silence
//! sends the firing notification and lets healing start; silences survive a restart; the
//! config's `[[silence]]` windows and `[[inhibit]]` rules mute as Alertmanager's; the history
//! endpoint lists the transitions; the `silence` commands work over the API; matchers select the
//! same alerts as a real Alertmanager's (skipped without `prometheus-alertmanager`, unless
//! `MONITOR_REQUIRE_PROMTOOL=1`).

use std::path::PathBuf;
use std::time::Duration;

use monitor_host::silence::{Matcher, all_match};
use monitor_tests::{
    Alertmanager, RunningHost, Scratch, cli, describe, eventually, free_port, http_send, library,
    stdout, toml_path,
};

const WAIT: Duration = Duration::from_secs(30);

/// A host every 200 ms on `port` with the `file` collector reading `value` (`test.value`, label
/// `collector="file"` and `source="file"`), a `log` notifier writing `notes.jsonl`, the `fixer` strategy on
/// `too_high` (it writes `healed`, leaving `value` alone so the alert keeps firing), and `extra`.
fn config(dir: &Scratch, port: u16, extra: &str) -> PathBuf {
    let value = dir.join("value");
    if !value.exists() {
        std::fs::write(&value, "5").unwrap();
    }
    dir.write(
        "monitor.toml",
        &format!(
            r#"[host]
interval = "200ms"
listen = "127.0.0.1:{port}"
data_dir = "data"

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
severity = "warning"

[[notifier]]
plugin = "log"
library = {log}
[notifier.config]
path = {notes}

[[strategy]]
plugin = "fixer"
library = {test}
on = ["too_high"]
max_attempts = 100
within = "1h"
cooldown = "100ms"
[strategy.config]
path = {healed}
value = 1

{extra}"#,
            test = toml_path(&library("monitor-test-plugins")),
            log = toml_path(&library("monitor-plugin-log")),
            value = toml_path(&value),
            notes = toml_path(&dir.join("notes.jsonl")),
            healed = toml_path(&dir.join("healed")),
        ),
    )
}

/// What these tests ask the host beyond [`RunningHost`]'s own helpers.
trait SilenceApi {
    fn alert_when(&self, alert: &str, ok: impl Fn(&serde_json::Value) -> bool)
    -> serde_json::Value;
    fn silence(&self, matchers: serde_json::Value, comment: &str) -> String;
}

impl SilenceApi for RunningHost {
    /// The snapshot's alert instance of `alert`, once `ok` holds for it.
    fn alert_when(
        &self,
        alert: &str,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let found = eventually(WAIT, || {
            let snapshot = self.json("/api/snapshot");
            let a = (snapshot["alerts"].as_array()?.iter())
                .find(|a| a["alert"] == alert)?
                .clone();
            ok(&a).then_some(a)
        });
        found.unwrap_or_else(|| {
            panic!(
                "{alert} never got there: {}\n{}",
                self.json("/api/snapshot")["alerts"],
                self.stderr().text()
            )
        })
    }

    fn silence(&self, matchers: serde_json::Value, comment: &str) -> String {
        let body = serde_json::json!({
            "matchers": matchers,
            "startsAt": "2000-01-01T00:00:00Z",
            "endsAt": "2100-01-01T00:00:00Z",
            "createdBy": "tests",
            "comment": comment,
        });
        let (status, reply) = self.send("POST", "/api/silences", &body.to_string());
        assert_eq!(status, 200, "{reply}");
        let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
        v["silenceID"].as_str().unwrap().to_owned()
    }
}

/// The notifications the log notifier wrote: `(alert, status)`.
fn notes(dir: &Scratch) -> Vec<(String, String)> {
    std::fs::read_to_string(dir.join("notes.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let n = v.get("notification").unwrap_or(&v);
            (
                n["alert"].as_str().unwrap_or_default().to_owned(),
                n["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn note(alert: &str, status: &str) -> (String, String) {
    (alert.to_owned(), status.to_owned())
}

fn firing_and_silenced(a: &serde_json::Value) -> bool {
    a["state"] == "firing" && a["silenced_by"].as_array().is_some_and(|s| !s.is_empty())
}

#[test]
fn a_silence_mutes_notifications_and_healing_until_it_is_expired_and_survives_a_restart() {
    let dir = Scratch::new("silences-api");
    let port = free_port();
    let config = config(&dir, port, "");
    let host = RunningHost::start(&config, port);

    // Refused with the reason.
    let (status, reply) = host.send(
        "POST",
        "/api/silences",
        r#"{"matchers":[],"endsAt":"2100-01-01T00:00:00Z"}"#,
    );
    assert_eq!(
        (status, reply.trim()),
        (400, "a silence needs at least one matcher")
    );
    let id = host.silence(
        serde_json::json!([{"name": "alertname", "value": "too_high", "isRegex": false, "isEqual": true}]),
        "maintenance",
    );

    std::fs::write(dir.join("value"), "50").unwrap();
    let a = host.alert_when("too_high", firing_and_silenced);
    assert_eq!(a["silenced_by"], serde_json::json!([id]));
    host.wait_cycles(10);
    assert_eq!(notes(&dir), [], "silenced: nothing notified");
    assert!(!dir.join("healed").exists(), "silenced: not healed");
    let (_, metrics) = host.get("/metrics");
    let line = r#"monitor_alert_silenced{alertname="too_high",collector="file",severity="warning",source="file"} 1"#;
    assert!(metrics.contains(line), "{metrics}");
    let list = host.json("/api/silences");
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["status"]["state"], "active");
    assert_eq!(list[0]["comment"], "maintenance");

    // The silence is in the store: a new host keeps it, and keeps quiet.
    host.stop();
    let host = RunningHost::start(&config, port);
    let list = host.json("/api/silences");
    assert_eq!(list[0]["id"], id.as_str(), "{list}");
    host.alert_when("too_high", firing_and_silenced);
    host.wait_cycles(5);
    assert_eq!(notes(&dir), [], "still silenced after the restart");
    assert!(!dir.join("healed").exists());

    // Expired: the firing notification goes out and healing starts.
    let (status, reply) = host.send("DELETE", &format!("/api/silences/{id}"), "");
    assert_eq!(status, 200, "{reply}");
    let sent = eventually(WAIT, || {
        notes(&dir)
            .contains(&note("too_high", "firing"))
            .then_some(())
    });
    assert!(
        sent.is_some(),
        "no firing notification: {:?}\n{}",
        notes(&dir),
        host.stderr().text()
    );
    let healed = eventually(WAIT, || dir.join("healed").exists().then_some(()));
    assert!(
        healed.is_some(),
        "no healing attempt:\n{}",
        host.stderr().text()
    );
    let a = host.alert_when("too_high", |a| a["state"] == "firing");
    assert_eq!(a["silenced_by"], serde_json::json!([]));
    let list = host.json("/api/silences");
    assert_eq!(list[0]["status"]["state"], "expired");
    let (status, reply) = host.send("DELETE", &format!("/api/silences/{id}"), "");
    assert_eq!(status, 400, "{reply}");
    assert!(reply.contains("already expired"), "{reply}");
    let (status, _) = host.send("DELETE", "/api/silences/no-such-id", "");
    assert_eq!(status, 404);

    // A silence made after the firing was sent does not hold back the resolution.
    host.silence(
        serde_json::json!([{"name": "source", "value": "fi.*", "isRegex": true}]),
        "late",
    );
    std::fs::write(dir.join("value"), "5").unwrap();
    let resolved = eventually(WAIT, || {
        notes(&dir)
            .contains(&note("too_high", "resolved"))
            .then_some(())
    });
    assert!(resolved.is_some(), "{:?}", notes(&dir));
    assert_eq!(
        notes(&dir),
        [note("too_high", "firing"), note("too_high", "resolved")]
    );

    // The history: newest first, filtered and limited.
    let history = host.json("/api/alerts/history?alert=too_high");
    let statuses: Vec<&str> = (history.as_array().unwrap().iter())
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["resolved", "firing"], "{history}");
    assert_eq!(history[0]["labels"]["source"], "file");
    assert_eq!(
        host.json("/api/alerts/history?limit=1")
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        host.json("/api/alerts/history?alert=other")
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let (status, body) = host.get("/api/alerts/history?limit=0");
    assert_eq!(status, 400, "{body}");
    host.stop();
}

#[test]
fn config_windows_and_inhibition_mute_as_alertmanager() {
    let dir = Scratch::new("silences-config");
    let port = free_port();
    let extra = r#"
[[alert]]
name = "source_down"
metric = "test.value"
condition = "above"
threshold = 10
severity = "critical"

[[alert]]
name = "windowed"
metric = "test.value"
condition = "above"
threshold = 10
severity = "info"

[[silence]]
name = "upgrade"
matchers = ['alertname="windowed"']
starts_at = "2000-01-01T00:00:00Z"
ends_at = "2100-01-01T00:00:00Z"
comment = "the long upgrade"

[[inhibit]]
source_matchers = ['alertname="source_down"']
target_matchers = ['severity="warning"']
equal = ["source"]
"#;
    let config = config(&dir, port, extra);
    std::fs::write(dir.join("value"), "50").unwrap();
    let host = RunningHost::start(&config, port);
    host.alert_when("windowed", firing_and_silenced);
    let a = host.alert_when("too_high", |a| a["state"] == "firing");
    assert_eq!(
        a["inhibited_by"],
        serde_json::json!([r#"source_down{collector="file", source="file"}"#])
    );
    let down = host.alert_when("source_down", |a| a["state"] == "firing");
    assert_eq!(
        (down["silenced_by"].clone(), down["inhibited_by"].clone()),
        (serde_json::json!([]), serde_json::json!([]))
    );
    let sent = eventually(WAIT, || {
        notes(&dir)
            .contains(&note("source_down", "firing"))
            .then_some(())
    });
    assert!(sent.is_some(), "{:?}", notes(&dir));
    host.wait_cycles(5);
    assert_eq!(
        notes(&dir),
        [note("source_down", "firing")],
        "windowed and too_high are muted"
    );
    assert!(
        !dir.join("healed").exists(),
        "an inhibited alert is not healed"
    );
    let list = host.json("/api/silences");
    assert_eq!(list[0]["id"], "upgrade");
    assert_eq!(list[0]["source"], "config");
    let (status, reply) = host.send("DELETE", "/api/silences/upgrade", "");
    assert_eq!(status, 400, "{reply}");
    assert!(reply.contains("[[silence]] of the config"), "{reply}");

    cli_adds_lists_and_expires(&host);
    host.stop();
}

/// The `silence` commands against `host`, whose config has the `upgrade` window and a firing
/// `source_down`.
fn cli_adds_lists_and_expires(host: &RunningHost) {
    let port = host.port();
    let url = format!("http://127.0.0.1:{port}");
    let out = cli(&[
        "silence",
        "add",
        "--url",
        &url,
        "--matcher",
        r#"alertname="source_down""#,
        "--duration",
        "2h",
        "--comment",
        "from the cli",
        "--author",
        "ann",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let id = stdout(&out).trim().to_owned();
    assert_eq!(id.len(), 36, "{id}");
    let out = cli(&["silence", "list", "--url", &url]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    assert!(text.starts_with("ID "), "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        row.contains("active") && row.contains(r#"alertname="source_down""#) && row.contains("ann"),
        "{row}"
    );
    assert!(text.lines().any(|l| l.starts_with("upgrade ")), "{text}");
    let out = cli(&["silence", "list", "--url", &url, "--output", "json"]);
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    host.alert_when("source_down", firing_and_silenced);
    let out = cli(&["silence", "expire", "--url", &url, &id]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out).trim(), format!("silence {id} expired"));
    let out = cli(&["silence", "expire", "--url", &url, &id]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already expired"),
        "{}",
        describe(&out)
    );
    let out = cli(&["silence", "list", "--url", &url]);
    assert!(
        !stdout(&out).contains(&id),
        "expired ones are hidden without --all"
    );
    let out = cli(&["silence", "list", "--all", "--url", &url]);
    assert!(stdout(&out).contains(&id));
    let out = cli(&["silence", "add", "--url", &url, "--matcher", "alertname"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let out = cli(&["silence", "list", "--url", "http://127.0.0.1:1"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "unreachable: {}",
        describe(&out)
    );
}

#[test]
fn check_locates_bad_silences_and_inhibit_rules() {
    let dir = Scratch::new("silences-check");
    let config = dir.write(
        "monitor.toml",
        "[[silence]]\nmatchers = ['host=~\"(\"']\ntime_intervals = [{ weekdays = [\"sunday\"], times = [{ start_time = \"22:00\", end_time = \"02:00\" }] }]\n\n[[inhibit]]\nsource_matchers = ['alertname=\"a\"']\ntarget_matchers = ['alertname=\"b\"']\nequal = [\"not a label\"]\n",
    );
    let out = cli(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("monitor.toml:2:13: `matchers`: invalid regular expression"),
        "{err}"
    );
    assert!(
        err.contains("monitor.toml:3:") && err.contains("across midnight"),
        "{err}"
    );
    assert!(
        err.contains("monitor.toml:8:10: `equal`: invalid label name"),
        "{err}"
    );
}

/// Label sets of alert `amcmp`, told apart by `case`.
const CASES: &[&[(&str, &str)]] = &[
    &[("case", "1"), ("host", "db1"), ("dc", "a")],
    &[("case", "2"), ("host", "db12"), ("dc", "a")],
    &[("case", "3"), ("host", "xdb1")],
    &[("case", "4"), ("dc", "b")],
    &[("case", "5"), ("host", "web1"), ("dc", "b")],
    &[("case", "6"), ("host", "DB1"), ("dc", "a.b")],
];

/// Silences in Alertmanager's matcher syntax: anchoring, negation, a missing label as "".
const SILENCES: &[&[&str]] = &[
    &[r#"host=~"db1""#],
    &[r#"alertname="amcmp""#, r#"host!~"db.*""#],
    &[r#"host!="db1""#, r#"dc="a""#],
    &[r#"dc=~"a|b""#, r#"host="""#],
    &[r#"alertname=~"amc.*""#, r#"host=~"(db|web)1""#],
    &[r#"dc=~"a.b""#, r#"host!~"[a-z]+1""#],
    &[r#"dc=~"a""#, "host=db12"],
];

#[test]
fn matchers_select_the_same_alerts_as_alertmanager() {
    let Some(am) = Alertmanager::shared() else {
        return;
    };
    let alerts: Vec<serde_json::Value> = (CASES.iter())
        .map(|labels| {
            let mut l: serde_json::Map<String, serde_json::Value> =
                labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).into())).collect();
            l.insert("alertname".into(), "amcmp".into());
            serde_json::json!({"labels": l, "startsAt": "2000-01-01T00:00:00Z", "endsAt": "2100-01-01T00:00:00Z"})
        })
        .collect();
    let (status, body) = http_send(
        am.port,
        "POST",
        "/api/v2/alerts",
        &serde_json::Value::from(alerts).to_string(),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    // Ours, and the ids Alertmanager gave the same silences.
    let mut ids = Vec::new();
    for matchers in SILENCES {
        let parsed: Vec<Matcher> = matchers
            .iter()
            .map(|m| Matcher::parse(m).unwrap())
            .collect();
        let json: Vec<serde_json::Value> = (parsed.iter())
            .map(|m| {
                serde_json::json!({"name": m.name, "value": m.value, "isRegex": m.op.is_regex(), "isEqual": m.op.is_equal()})
            })
            .collect();
        let silence = serde_json::json!({"matchers": json, "startsAt": "2000-01-01T00:00:00Z",
            "endsAt": "2100-01-01T00:00:00Z", "createdBy": "tests", "comment": "comparison"});
        let (status, body) =
            http_send(am.port, "POST", "/api/v2/silences", &silence.to_string()).unwrap();
        assert_eq!(status, 200, "{matchers:?}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        ids.push((v["silenceID"].as_str().unwrap().to_owned(), parsed));
    }
    // Which silences mute which case, by index: Alertmanager's `silencedBy`, and ours.
    let theirs = eventually(WAIT, || {
        let alerts = am.alerts("amcmp");
        let by_case: Vec<(String, Vec<usize>)> = (alerts.iter())
            .map(|a| {
                let by: Vec<usize> = (a["status"]["silencedBy"].as_array().unwrap().iter())
                    .filter_map(|id| ids.iter().position(|(i, _)| id == i.as_str()))
                    .collect();
                (a["labels"]["case"].as_str().unwrap().to_owned(), by)
            })
            .collect();
        let complete = by_case.len() == CASES.len() && by_case.iter().any(|(_, by)| !by.is_empty());
        complete.then_some(by_case)
    })
    .expect("alertmanager holds the alerts, silenced");
    for (case, mut by) in theirs {
        by.sort_unstable();
        let labels = CASES[case.parse::<usize>().unwrap() - 1];
        let mut l: monitor_plugin::Labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        l.insert("alertname".into(), "amcmp".into());
        let ours: Vec<usize> = (ids.iter().enumerate())
            .filter(|(_, (_, m))| all_match(m, &l))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(ours, by, "case {case} {labels:?}");
    }
}
