//! What the host learns: alert transitions a previous run left in the store show up as a pattern
//! at `/api/patterns` once the host starts again, and a `[[watch]]` on a stored series with a
//! planted trend and spike reports both at `/api/forecasts` and `/api/anomalies`. A `[[watch]]`
//! whose expression does not parse fails `check` with its position.

use std::path::PathBuf;
use std::time::Duration;

use monitor_host::history::{Persistence, TransitionRecord};
use monitor_host::store::SeriesKey;
use monitor_plugin::{Labels, SampleKind};
use monitor_tests::{RunningHost, Scratch, cli, describe, eventually, free_port, http_get};
use serde_json::Value;

const DAY: Duration = Duration::from_secs(86_400);
const WAIT: Duration = Duration::from_secs(60);
const STEP_MS: u64 = 10_000;
/// Points of the watched series, one every 10 s up to now, and where the spike is.
const POINTS: u64 = 300;
const SPIKE_AT: u64 = 200;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// xorshift64*: seeded noise without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn transition(alert: &str, firing: bool, at_ms: u64) -> TransitionRecord {
    TransitionRecord {
        alert: alert.to_owned(),
        labels: Labels::new(),
        firing,
        value: 1.0,
        stale: false,
        at_ms,
        annotations: Default::default(),
    }
}

/// What an earlier run left: ten episodes of `disk_full`, eight of them followed by `app_down`
/// within a minute, among other alerts at random; and `test.load`, rising 0.05 every 10 s with
/// noise, with one spike. Returns the spike's time.
fn previous_run(data: &std::path::Path, now: u64) -> u64 {
    let (mut p, _) = Persistence::open(data, DAY, 30 * DAY, DAY, now).unwrap();
    let mut rng = Rng(42);
    let hour = 3_600_000;
    for episode in 0..10u64 {
        let t = now - (10 - episode) * 20 * hour - rng.next() % (4 * hour);
        let batch = p.batch();
        batch.transitions.push(transition("disk_full", true, t));
        if episode % 5 != 2 {
            batch
                .transitions
                .push(transition("app_down", true, t + 40_000));
            batch
                .transitions
                .push(transition("app_down", false, t + 700_000));
        }
        batch
            .transitions
            .push(transition("disk_full", false, t + 600_000));
    }
    for _ in 0..80 {
        let alert = format!("other_{}", rng.next() % 6);
        let at = now - rng.next() % (10 * 20 * hour);
        p.batch()
            .transitions
            .push(transition(&alert, rng.next().is_multiple_of(2), at));
    }
    let key = SeriesKey {
        name: "test.load".to_owned(),
        labels: Labels::new(),
    };
    let start = (now / STEP_MS) * STEP_MS - (POINTS - 1) * STEP_MS;
    for i in 0..POINTS {
        let noise = (rng.unit() + rng.unit() + rng.unit() - 1.5) * 0.8;
        let spike = if i == SPIKE_AT { 30.0 } else { 0.0 };
        let v = 50.0 + 0.05 * i as f64 + noise + spike;
        p.batch()
            .point(&key, SampleKind::Gauge, "earlier", start + i * STEP_MS, v);
    }
    p.commit(now);
    start + SPIKE_AT * STEP_MS
}

fn config(dir: &Scratch, port: u16) -> PathBuf {
    dir.write(
        "monitor.toml",
        &format!(
            "[host]\ninterval = \"500ms\"\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"data\"\n\n\
             [patterns]\ninterval = \"1s\"\n\n\
             [[watch]]\nname = \"test.load\"\nstep = \"10s\"\nlookback = \"1h\"\n\
             forecast_horizon = \"10m\"\nanomaly_threshold = 6.0\nthreshold = 1000.0\n"
        ),
    )
}

fn start(config: &std::path::Path) -> RunningHost {
    RunningHost::builder(config).start()
}

/// `path` as JSON once `ready` holds for it.
fn json_when(port: u16, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let found = eventually(WAIT, || {
        let (status, body) = http_get(port, path)?;
        if status != 200 {
            return None;
        }
        last = serde_json::from_str(&body).ok()?;
        ready(&last).then(|| last.clone())
    });
    found.unwrap_or_else(|| panic!("{path} never became ready; last answer: {last:#}"))
}

#[test]
fn patterns_of_an_earlier_run_and_watched_series_are_served() {
    let dir = Scratch::new("patterns");
    let now = now_ms();
    let spike_ms = previous_run(&dir.join("data"), now);
    let port = free_port();
    let _host = start(&config(&dir, port));

    let patterns = json_when(port, "/api/patterns", |v| v["patterns"].is_array());
    let list = patterns["patterns"].as_array().unwrap();
    let sequence = list
        .iter()
        .find(|p| p["type"] == "sequence" && p["events"][0] == "alert_firing:disk_full")
        .unwrap_or_else(|| panic!("{patterns:#}"));
    assert_eq!(sequence["events"][1], "alert_firing:app_down");
    assert_eq!(
        sequence["text"],
        "`disk_full` is followed by `app_down` within 2 min in 80% of episodes (8 of 10)"
    );
    assert_eq!(sequence["support"], 8);
    assert!(
        sequence["confidence"].as_f64().unwrap() >= 0.4,
        "{sequence:#}"
    );
    assert_eq!(sequence["lag_ms"]["max"], 40_000);
    assert_eq!(sequence["evidence"].as_array().unwrap().len(), 5);
    assert!(patterns["generated_at"].is_string());
    assert!(
        list.iter()
            .all(|p| !p["text"].as_str().unwrap().contains("other_")),
        "random alerts make no pattern: {patterns:#}"
    );

    let forecasts = json_when(port, "/api/forecasts", |v| {
        v["watches"][0]["series"][0]["forecast"].is_array()
    });
    let watch = &forecasts["watches"][0];
    assert_eq!(watch["watch"], "test.load");
    assert_eq!(watch["method"], "holt");
    let series = &watch["series"][0];
    assert_eq!(series["direction"], "rising", "{forecasts:#}");
    // 0.05 every 10 s is 18 an hour.
    let per_hour = series["trend_per_hour"].as_f64().unwrap();
    assert!((9.0..27.0).contains(&per_hour), "{per_hour}");
    let points = series["forecast"].as_array().unwrap();
    let (first, last) = (&points[0], &points[points.len() - 1]);
    assert!(
        last["value"].as_f64() > first["value"].as_f64(),
        "{forecasts:#}"
    );
    assert!(last["upper"].as_f64() > last["value"].as_f64());
    assert_eq!(series["crosses_at_ms"], Value::Null, "1000 is far away");

    let anomalies = json_when(port, "/api/anomalies", |v| {
        v["watches"][0]["series"][0]["anomalies"].is_array()
    });
    let watch = &anomalies["watches"][0];
    assert_eq!(watch["method"], "robust_z");
    let found = watch["series"][0]["anomalies"].as_array().unwrap();
    assert_eq!(found.len(), 1, "the spike and nothing else: {anomalies:#}");
    assert_eq!(found[0]["t_ms"], spike_ms);
    assert!(found[0]["score"].as_f64().unwrap() > 6.0);
}

#[test]
fn a_watch_with_an_invalid_expression_fails_check_with_its_position() {
    let dir = Scratch::new("patterns-check");
    let config = dir.write(
        "monitor.toml",
        "[host]\nlisten = \"off\"\n\n[[watch]]\nexpr = \"rate(requests_total[5m]\"\n",
    );
    let out = cli(&["check", "--config", config.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("monitor.toml:5:8: `expr`: could not parse expression"),
        "{}",
        describe(&out)
    );
}
