//! Incidents against the real host binary: an alert episode opens one, its timeline records the
//! firing, the notifications, the failed healing attempts and healing's give-up, the time
//! escalation (to a second `log` notifier, once), an acknowledgement over the API, a note from
//! the `incidents` command and the resolution, in time order, with its time to acknowledge and to
//! recover; the incident and its timeline survive a clean restart and a `kill -9`; an incident
//! acknowledged (with the `incidents` command) before `escalate_after` is not escalated; bad
//! requests are refused with their reason, and without credentials when `http_auth` is set.

use std::path::PathBuf;
use std::time::Duration;

use monitor_tests::{
    RunningHost, Scratch, cli, describe, eventually, free_port, http_send_with, library, stdout,
    toml_path,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// A host every 200 ms on `port`: the `file` collector reads `value` (`test.value`); the alerts
/// in `alerts`; a `log` notifier writing `notes.jsonl`; a second one, `pager`, taking only
/// critical notifications (and the escalations sent to it by name), writing `pager.jsonl`; and
/// `extra` (a strategy, `http_auth`...).
fn config(dir: &Scratch, port: u16, alerts: &str, extra: &str, host: &str) -> PathBuf {
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
{host}

[[collector]]
plugin = "file"
library = {test}
[collector.config]
path = {value}

{alerts}

[[notifier]]
plugin = "log"
library = {log}
[notifier.config]
path = {notes}

[[notifier]]
plugin = "log"
name = "pager"
library = {log}
min_severity = "critical"
[notifier.config]
path = {pager}

{extra}"#,
            test = toml_path(&library("monitor-test-plugins")),
            log = toml_path(&library("monitor-plugin-log")),
            value = toml_path(&value),
            notes = toml_path(&dir.join("notes.jsonl")),
            pager = toml_path(&dir.join("pager.jsonl")),
        ),
    )
}

/// `too_high` (above 10), escalated to `pager` after `after`.
fn too_high(after: &str) -> String {
    format!(
        "[[alert]]\nname = \"too_high\"\nmetric = \"test.value\"\ncondition = \"above\"\n\
         threshold = 10\nescalate_after = \"{after}\"\nescalate_to = [\"pager\"]\n"
    )
}

/// The `fixer` strategy on `too_high`, reporting failure: two attempts, then healing gives up.
fn failing_fixer(dir: &Scratch) -> String {
    format!(
        "[[strategy]]\nplugin = \"fixer\"\nlibrary = {test}\non = [\"too_high\"]\n\
         max_attempts = 2\nwithin = \"1h\"\ncooldown = \"100ms\"\n[strategy.config]\n\
         succeed = false\npath = {healed}\n",
        test = toml_path(&library("monitor-test-plugins")),
        healed = toml_path(&dir.join("healed")),
    )
}

/// What these tests ask the host beyond [`RunningHost`]'s own helpers.
trait IncidentApi {
    fn incident_when(&self, id: u64, what: &str, ok: impl Fn(&Value) -> bool) -> Value;
    fn opened(&self, alert: &str) -> u64;
}

impl IncidentApi for RunningHost {
    /// Incident `id` with its timeline, once `ok` holds for it.
    fn incident_when(&self, id: u64, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let path = format!("/api/incidents/{id}");
        let found = eventually(WAIT, || {
            let (status, body) = self.try_get(&path)?;
            let v: Value = serde_json::from_str(&body).ok()?;
            (status == 200 && ok(&v)).then_some(v)
        });
        found.unwrap_or_else(|| {
            panic!(
                "incident {id} never {what}: {:?}\n{}",
                self.try_get(&path),
                self.stderr().text()
            )
        })
    }

    /// The id of the open incident of `alert`, once there is one.
    fn opened(&self, alert: &str) -> u64 {
        let found = eventually(WAIT, || {
            let list = self.json("/api/incidents?state=open");
            (list.as_array()?.iter())
                .find(|i| i["alert"] == alert)
                .and_then(|i| i["id"].as_u64())
        });
        found.unwrap_or_else(|| panic!("no incident for {alert}:\n{}", self.stderr().text()))
    }
}

/// The notifications the `log` notifier wrote to `file`.
fn notifications(dir: &Scratch, file: &str) -> Vec<Value> {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The escalations in `file` for `why` (`unacknowledged`, `healing_gave_up`), by incident id.
fn escalations(dir: &Scratch, file: &str, why: &str) -> Vec<(String, Option<u64>)> {
    notifications(dir, file)
        .into_iter()
        .filter(|n| n["escalation"] == true && n["escalation_reason"] == why)
        .map(|n| {
            (
                n["alert"].as_str().unwrap_or_default().to_owned(),
                n["incident_id"].as_u64(),
            )
        })
        .collect()
}

/// Each timeline entry's `kind`, with the escalation reason: `escalated:unacknowledged`.
fn kinds(incident: &Value) -> Vec<String> {
    (incident["timeline"].as_array().unwrap().iter())
        .map(|e| match e["kind"].as_str().unwrap() {
            "escalated" => format!("escalated:{}", e["reason"].as_str().unwrap()),
            k => k.to_owned(),
        })
        .collect()
}

fn position(kinds: &[String], kind: &str) -> usize {
    (kinds.iter().position(|k| k == kind)).unwrap_or_else(|| panic!("no {kind} in {kinds:?}"))
}

fn ms(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a time: {v}"))
}

/// The timeline read before a restart is the start of the one read after it.
fn kept(before: &Value, after: &Value) {
    let (b, a) = (
        before["timeline"].as_array().unwrap(),
        after["timeline"].as_array().unwrap(),
    );
    assert!(
        a.len() >= b.len() && a[..b.len()] == b[..],
        "before: {b:?}\nafter: {a:?}"
    );
    for key in [
        "id",
        "alert",
        "labels",
        "opened_ms",
        "acknowledged",
        "escalated_ms",
    ] {
        assert_eq!(before[key], after[key], "{key}");
    }
}

#[test]
fn an_episode_keeps_its_timeline_through_escalations_acknowledgement_restarts_and_resolution() {
    let dir = Scratch::new("incidents-episode");
    let port = free_port();
    let config = config(&dir, port, &too_high("2s"), &failing_fixer(&dir), "");
    let host = RunningHost::start(&config, port);
    assert_eq!(host.json("/api/incidents"), serde_json::json!([]));

    std::fs::write(dir.join("value"), "50").unwrap();
    let id = host.opened("too_high");
    escalated_twice(&host, &dir, id);
    acknowledge_and_note(&host, id);

    // A clean stop, then a crash: the incident stays acknowledged, its timeline intact, and
    // nothing is escalated again.
    let before = host.incident_when(id, "has its note", |i| kinds(i).contains(&"note".into()));
    host.wait_cycles(2);
    host.stop();
    let host = RunningHost::start(&config, port);
    let after = host.incident_when(id, "is back", |_| true);
    kept(&before, &after);
    assert_eq!(after["state"], "acknowledged");
    let before = after;
    host.wait_cycles(2);
    host.kill_9();
    let host = RunningHost::start(&config, port);
    let after = host.incident_when(id, "is back after kill -9", |_| true);
    kept(&before, &after);
    assert_eq!(after["state"], "acknowledged");

    resolution(&host, &dir, id);
    host.stop();
}

/// Healing fails twice and gives up; nobody acknowledges within 2s: both escalations, each on
/// the timeline, the time escalation sent to `pager` only.
fn escalated_twice(host: &RunningHost, dir: &Scratch, id: u64) {
    let escalated = host.incident_when(id, "escalated twice", |i| {
        let k = kinds(i);
        k.contains(&"escalated:healing_gave_up".into())
            && k.contains(&"escalated:unacknowledged".into())
    });
    assert_eq!(escalated["state"], "open");
    let k = kinds(&escalated);
    assert_eq!(k[0], "fired");
    let heals: Vec<&Value> = (escalated["timeline"].as_array().unwrap().iter())
        .filter(|e| e["kind"] == "healing")
        .collect();
    assert_eq!(heals.len(), 2, "{k:?}");
    assert!(
        heals
            .iter()
            .all(|h| h["success"] == false && h["strategy"] == "fixer")
    );
    assert!(position(&k, "escalated:healing_gave_up") > position(&k, "healing"));
    let pager = eventually(WAIT, || {
        let e = escalations(dir, "pager.jsonl", "unacknowledged");
        (!e.is_empty()).then_some(e)
    });
    assert_eq!(pager, Some(vec![("too_high".to_owned(), Some(id))]));
    assert!(
        escalations(dir, "notes.jsonl", "unacknowledged").is_empty(),
        "only the notifiers named in escalate_to"
    );
    // The notifications sent are on the timeline, notifier by notifier.
    host.incident_when(id, "shows its notifications", |i| {
        let entries = i["timeline"].as_array().unwrap();
        let sent = |notifier: &str, escalation: bool| {
            entries.iter().any(|e| {
                e["kind"] == "notified"
                    && e["notifier"] == notifier
                    && e["ok"] == true
                    && (e["escalation"] == true) == escalation
            })
        };
        sent("log", false) && sent("log", true) && sent("pager", true)
    });
    assert_eq!(host.metric("monitor_incidents_open", &[]), Some(1.0));
}

/// An acknowledgement over the API, a note with the `incidents` command, both shown by `show`.
fn acknowledge_and_note(host: &RunningHost, id: u64) {
    let (status, body) = host.send(
        "POST",
        &format!("/api/incidents/{id}/ack"),
        r#"{"by": "ann", "comment": "looking"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let acked: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(acked["state"], "acknowledged");
    assert_eq!(acked["acknowledged"]["by"], "ann");
    let note = cli(&[
        "incidents",
        "note",
        &id.to_string(),
        "--by",
        "bob",
        "the disk is full",
        "--url",
        &host.url(),
        "--output",
        "json",
    ]);
    assert!(note.status.success(), "{}", describe(&note));
    let noted: Value = serde_json::from_str(&stdout(&note)).unwrap();
    assert_eq!(kinds(&noted).last().map(String::as_str), Some("note"));
    let shown = cli(&["incidents", "show", &id.to_string(), "--url", &host.url()]);
    assert!(shown.status.success(), "{}", describe(&shown));
    let text = stdout(&shown);
    assert!(
        text.contains("acknowledged by ann") && text.contains("note by bob: the disk is full"),
        "{text}"
    );
}

/// The alert resolves: the incident with it, its timeline in time order ending with the
/// resolution (and its notification), its figures from the timeline's times.
fn resolution(host: &RunningHost, dir: &Scratch, id: u64) {
    std::fs::write(dir.join("value"), "5").unwrap();
    // Resolved, and the resolution sent (after it).
    let resolved = host.incident_when(id, "resolved and notified", |i| {
        let entries = i["timeline"].as_array().unwrap();
        let at = entries.iter().position(|e| e["kind"] == "resolved");
        at.is_some_and(|at| {
            entries[at..]
                .iter()
                .any(|e| e["kind"] == "notified" && e["status"] == "resolved" && e["ok"] == true)
        })
    });
    assert_eq!(resolved["state"], "resolved");
    let k = kinds(&resolved);
    let last_news = k.iter().rposition(|k| k != "notified").unwrap();
    assert_eq!(k[last_news], "resolved", "{k:?}");
    assert!(position(&k, "acknowledged") < position(&k, "note"));
    let times: Vec<u64> = (resolved["timeline"].as_array().unwrap().iter())
        .map(|e| ms(&e["at_ms"]))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "in time order: {times:?}"
    );
    let opened = ms(&resolved["opened_ms"]);
    let ack_ms = ms(&resolved["acknowledged"]["at_ms"]);
    let resolved_ms = ms(&resolved["resolved_ms"]);
    assert_eq!(times[0], opened);
    assert_eq!(times[last_news], resolved_ms);
    let tta = resolved["time_to_acknowledge_seconds"].as_f64().unwrap();
    let ttr = resolved["time_to_recover_seconds"].as_f64().unwrap();
    assert_eq!(tta, (ack_ms - opened) as f64 / 1000.0);
    assert_eq!(ttr, (resolved_ms - opened) as f64 / 1000.0);
    assert!(tta >= 2.0, "acknowledged after the 2s escalation: {tta}");
    assert!(ttr > tta);
    assert_eq!(
        escalations(dir, "pager.jsonl", "unacknowledged").len(),
        1,
        "escalated once, restarts included"
    );
    let metrics = eventually(WAIT, || {
        (host.metric("monitor_incidents_open", &[]) == Some(0.0)).then_some(())
    });
    assert!(metrics.is_some());
    let listed = host.json("/api/incidents?state=resolved");
    assert_eq!(listed[0]["id"], id);
    assert!(
        listed[0].get("timeline").is_none(),
        "the list leaves timelines out"
    );
    assert_eq!(
        host.json("/api/incidents?state=open"),
        serde_json::json!([])
    );
}

#[test]
fn an_incident_acknowledged_before_escalate_after_is_not_escalated() {
    let dir = Scratch::new("incidents-ack-stops");
    let port = free_port();
    // Both alerts fire in the same cycle; only `too_high` is acknowledged in time.
    let alerts = format!(
        "{}\n[[alert]]\nname = \"also_high\"\nmetric = \"test.value\"\ncondition = \"above\"\n\
         threshold = 20\nescalate_after = \"6s\"\nescalate_to = [\"pager\"]\n",
        too_high("6s")
    );
    let config = config(&dir, port, &alerts, "", "");
    let host = RunningHost::start(&config, port);
    std::fs::write(dir.join("value"), "50").unwrap();
    let id = host.opened("too_high");
    let other = host.opened("also_high");
    let ack = cli(&[
        "incidents",
        "ack",
        &id.to_string(),
        "--by",
        "carol",
        "--comment",
        "on it",
        "--url",
        &host.url(),
    ]);
    assert!(ack.status.success(), "{}", describe(&ack));
    assert!(
        stdout(&ack).contains("acknowledged by carol"),
        "{}",
        describe(&ack)
    );

    let escalated = eventually(WAIT, || {
        let e = escalations(&dir, "pager.jsonl", "unacknowledged");
        (!e.is_empty()).then_some(e)
    });
    assert_eq!(escalated, Some(vec![("also_high".to_owned(), Some(other))]));
    host.wait_cycles(3);
    assert_eq!(
        escalations(&dir, "pager.jsonl", "unacknowledged").len(),
        1,
        "the acknowledged one is not escalated"
    );
    let acked = host.incident_when(id, "acknowledged", |i| i["state"] == "acknowledged");
    assert!(acked["escalated_ms"].is_null());
    assert!(!kinds(&acked).iter().any(|k| k.starts_with("escalated")));
    let list = cli(&[
        "incidents",
        "list",
        "--state",
        "acknowledged",
        "--url",
        &host.url(),
    ]);
    assert!(list.status.success(), "{}", describe(&list));
    let text = stdout(&list);
    assert!(
        text.contains("too_high") && !text.contains("also_high"),
        "{text}"
    );
    host.stop();
}

#[test]
fn bad_requests_are_refused_with_their_reason() {
    let dir = Scratch::new("incidents-bad");
    let port = free_port();
    let file = config(&dir, port, &too_high("1h"), "", "");
    let host = RunningHost::start(&file, port);
    std::fs::write(dir.join("value"), "50").unwrap();
    let id = host.opened("too_high");
    let ack = format!("/api/incidents/{id}/ack");
    let notes = format!("/api/incidents/{id}/notes");

    let (status, body) = host.send("POST", "/api/incidents/999/ack", r#"{"by": "ann"}"#);
    assert_eq!((status, body.trim()), (404, "no incident 999"));
    let (status, _) = host.send("GET", "/api/incidents/999", "");
    assert_eq!(status, 404);
    let (status, body) = host.send("POST", &ack, r#"{"by": "ann""#);
    assert_eq!(status, 400);
    assert!(
        body.contains("invalid acknowledgement") && body.contains("EOF"),
        "{body}"
    );
    let (status, body) = host.send("POST", &ack, r#"{"comment": "x"}"#);
    assert_eq!(status, 400);
    assert!(body.contains("missing field `by`"), "{body}");
    let (status, body) = host.send("POST", &ack, r#"{"by": " "}"#);
    assert_eq!(status, 400);
    assert!(body.contains("`by` must not be empty"), "{body}");
    let (status, body) = host.send("POST", &notes, r#"{"by": "ann", "txt": "x"}"#);
    assert_eq!(status, 400);
    assert!(body.contains("unknown field `txt`"), "{body}");
    let (status, body) = host.send("GET", "/api/incidents?state=closed", "");
    assert_eq!(status, 400);
    assert!(body.contains("invalid parameter `state`"), "{body}");
    let refused = cli(&[
        "incidents",
        "ack",
        "999",
        "--by",
        "ann",
        "--url",
        &host.url(),
    ]);
    assert_eq!(refused.status.code(), Some(1), "{}", describe(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("answered 404: no incident 999"),
        "{}",
        describe(&refused)
    );
    let incident = host.json(&format!("/api/incidents/{id}"));
    let k = kinds(&incident);
    assert!(
        !k.iter().any(|k| k == "acknowledged" || k == "note"),
        "nothing refused was recorded: {k:?}"
    );
    assert!(incident["acknowledged"].is_null());
    host.stop();

    // With `http_auth`, the incident routes need the credentials, as every route.
    let dir = Scratch::new("incidents-auth");
    let port = free_port();
    dir.write("token", "s3cret\n");
    let auth = "http_auth = { bearer_token_file = \"token\" }";
    let file = config(&dir, port, &too_high("1h"), "", auth);
    // Unauthenticated, `/healthz` answers 401.
    let host = RunningHost::builder(&file)
        .port(port)
        .until_answering()
        .start();
    let good = [("Authorization", "Bearer s3cret")];
    let up = eventually(WAIT, || {
        http_send_with(port, "GET", "/api/incidents", &good, "").filter(|(s, _)| *s == 200)
    });
    assert!(up.is_some(), "{}", host.stderr().text());
    let body = r#"{"by": "mallory"}"#;
    let send = |headers: &[(&str, &str)], method: &str, path: &str| {
        http_send_with(port, method, path, headers, body).unwrap().0
    };
    assert_eq!(send(&[], "POST", "/api/incidents/1/ack"), 401);
    assert_eq!(send(&[], "POST", "/api/incidents/1/notes"), 401);
    assert_eq!(send(&[], "GET", "/api/incidents"), 401);
    let wrong = [("Authorization", "Bearer guess")];
    assert_eq!(send(&wrong, "POST", "/api/incidents/1/ack"), 401);
    assert_eq!(
        send(&good, "POST", "/api/incidents/1/ack"),
        404,
        "past the guard"
    );
}
