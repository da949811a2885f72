//! The host against a real Alertmanager (Debian's `prometheus-alertmanager`, `resolve_timeout` of
//! a few seconds): a firing alert that the host re-sends every `resend_delay`, with `endsAt`
//! ahead, stays active for as long as it fires and ends when the host resolves it; sent once
//! (`resend_every = "off"`), it expires after `resolve_timeout` while the host still sees it
//! firing. A silence made through the host's API keeps an alert from Alertmanager and so from its
//! receiver, while an unsilenced one is delivered. Skipped when the binary is missing, unless
//! `MONITOR_REQUIRE_PROMTOOL=1`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use monitor_tests::{
    ALERTMANAGER_RESOLVE_TIMEOUT_S, Alertmanager, RunningHost, Scratch, Stderr, eventually,
    free_port, http_send, library, toml_path,
};

const WAIT: Duration = Duration::from_secs(30);

/// The host every 250 ms: a `file` collector, alert `alert` on `test.value > 10`, and a `webhook`
/// notifier posting to Alertmanager's v2 API; `notifier` holds its extra host-side keys.
fn config(dir: &Scratch, am: &Alertmanager, alert: &str, value: &Path, notifier: &str) -> PathBuf {
    dir.write(
        "monitor.toml",
        &format!(
            r#"
[host]
interval = "250ms"
listen = "off"
data_dir = "data"
resend_delay = "2s"

[[collector]]
plugin = "file"
library = {test}
[collector.config]
path = {value}

[[alert]]
name = "{alert}"
metric = "test.value"
condition = "above"
threshold = 10

[[notifier]]
plugin = "webhook"
library = {hook}
alertmanager = true
{notifier}
[notifier.config]
url = "http://127.0.0.1:{port}/api/v2/alerts"
api = "alertmanager"
"#,
            test = toml_path(&library("monitor-test-plugins")),
            hook = toml_path(&library("monitor-plugin-webhook")),
            value = toml_path(value),
            port = am.port,
        ),
    )
}

fn run(config: &Path) -> (RunningHost, Stderr) {
    let host = RunningHost::builder(config).start();
    let stderr = host.stderr().clone();
    (host, stderr)
}

fn active(am: &Alertmanager, alert: &str) -> bool {
    !am.alerts(alert).is_empty()
}

#[test]
fn a_resent_alert_stays_active_past_resolve_timeout_and_ends_when_the_host_resolves_it() {
    let Some(am) = Alertmanager::shared() else {
        return;
    };
    let alert = "kept_active_by_resends";
    let dir = Scratch::new("am-resend");
    let value = dir.write("value", "50");
    let config = config(&dir, am, alert, &value, "");
    let (_host, stderr) = run(&config);
    assert!(
        eventually(WAIT, || active(am, alert).then_some(())).is_some(),
        "the alert never reached alertmanager: {}",
        stderr.text()
    );

    // Three resolve timeouts: sent once, it would have expired by then.
    let until = Instant::now() + Duration::from_secs(3 * ALERTMANAGER_RESOLVE_TIMEOUT_S);
    let mut polls = 0;
    while Instant::now() < until {
        let alerts = am.alerts(alert);
        assert_eq!(
            alerts.len(),
            1,
            "poll {polls}: {alerts:?}\n{}",
            stderr.text()
        );
        assert_eq!(alerts[0]["status"]["state"], "active", "{alerts:?}");
        polls += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(polls >= 10, "{polls} polls");
    assert_eq!(stderr.count("alert firing"), 1, "{}", stderr.text());

    // The resolution ends it at once, long before the validity of the last resend (8 s).
    std::fs::write(&value, "1").unwrap();
    let gone = eventually(Duration::from_secs(6), || {
        (!active(am, alert)).then_some(())
    });
    assert!(gone.is_some(), "still active: {:?}", am.alerts(alert));
    assert!(stderr.count("alert resolved") >= 1, "{}", stderr.text());
}

#[test]
fn an_alert_sent_once_expires_after_resolve_timeout_while_the_host_still_sees_it_firing() {
    let Some(am) = Alertmanager::shared() else {
        return;
    };
    let alert = "sent_once_and_expired";
    let dir = Scratch::new("am-once");
    let value = dir.write("value", "50");
    let config = config(&dir, am, alert, &value, "resend_every = \"off\"");
    let (_host, stderr) = run(&config);
    assert!(
        eventually(WAIT, || active(am, alert).then_some(())).is_some(),
        "the alert never reached alertmanager: {}",
        stderr.text()
    );
    assert!(
        eventually(WAIT, || (!active(am, alert)).then_some(())).is_some(),
        "still active: {:?}",
        am.alerts(alert)
    );
    // Alertmanager dropped it on its own: the host neither resolved it nor stopped.
    assert_eq!(stderr.count("alert firing"), 1, "{}", stderr.text());
    assert_eq!(stderr.count("alert resolved"), 0, "{}", stderr.text());
}

#[test]
fn a_silence_made_through_the_host_keeps_its_alert_from_the_receiver() {
    let Some(am) = Alertmanager::shared() else {
        return;
    };
    let (silenced, delivered) = ("am_silenced_by_host", "am_delivered_unsilenced");
    let dir = Scratch::new("am-silence");
    let value = dir.write("value", "1");
    let port = free_port();
    let config = config(&dir, am, silenced, &value, "");
    // A second alert on the same series, and the API on loopback.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "listen = \"off\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    ) + &format!(
        "\n[[alert]]\nname = \"{delivered}\"\nmetric = \"test.value\"\ncondition = \"above\"\nthreshold = 10\n"
    );
    std::fs::write(&config, text).unwrap();
    let (_host, stderr) = run(&config);
    let silence = serde_json::json!({
        "matchers": [{"name": "alertname", "value": silenced, "isRegex": false, "isEqual": true}],
        "startsAt": "2000-01-01T00:00:00Z",
        "endsAt": "2100-01-01T00:00:00Z",
        "createdBy": "tests",
        "comment": "kept from alertmanager",
    });
    let made = eventually(WAIT, || {
        http_send(port, "POST", "/api/silences", &silence.to_string()).filter(|(s, _)| *s == 200)
    });
    assert!(
        made.is_some(),
        "the host took no silence: {}",
        stderr.text()
    );

    // Both fire; only the unsilenced one reaches Alertmanager and its receiver.
    std::fs::write(&value, "50").unwrap();
    let got = eventually(WAIT, || {
        let d = am.delivered(delivered);
        d.iter().any(|a| a["status"] == "firing").then_some(d)
    });
    assert!(got.is_some(), "never delivered: {}", stderr.text());
    assert_eq!(got.unwrap()[0]["labels"]["alertname"], delivered);
    // Several group intervals and resends (every 2 s) later, still nothing of the silenced one.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(am.delivered(silenced), Vec::<serde_json::Value>::new());
    assert!(am.alerts(silenced).is_empty(), "{:?}", am.alerts(silenced));
    assert!(!am.delivered(delivered).is_empty());
}
