//! The host against a real Alertmanager (Debian's `prometheus-alertmanager`, `resolve_timeout` of
//! a few seconds): a firing alert that the host re-sends every `resend_delay`, with `endsAt`
//! ahead, stays active for as long as it fires and ends when the host resolves it; sent once
//! (`resend_every = "off"`), it expires after `resolve_timeout` while the host still sees it
//! firing. Skipped when the binary is missing, unless `MONITOR_REQUIRE_PROMTOOL=1`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use monitor_tests::{
    ALERTMANAGER_RESOLVE_TIMEOUT_S, Alertmanager, RunningHost, Scratch, Stderr, eventually,
    library, toml_path,
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
