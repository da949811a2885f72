//! Alert and recording rules, the host against a real Prometheus: one target (served here, its
//! values driven by the test: a counter whose rate changes, a gauge that crosses a threshold) is
//! scraped every second by the host (bundled `prometheus` collector) and by Prometheus, which
//! both evaluate the same rule file every second. At the end of each phase the alerts both
//! report active (name, `kind` label, state) are the expected ones, and the recorded rate agrees
//! with the rate the target serves within 10 % on both.
//!
//! Skipped when `prometheus` cannot run, unless `MONITOR_REQUIRE_PROMTOOL=1`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use monitor_tests::{
    Prometheus, RunningHost, Scratch, eventually, free_port, http_get, library, toml_path,
};

const RULES: &str = r#"groups:
  - name: diff
    interval: 1s
    rules:
      - record: kind:req:rate3s
        expr: sum by (kind) (rate(req_total[3s]))
      - alert: Fast
        expr: kind:req:rate3s > 20
        for: 2s
        annotations:
          summary: "{{ $labels.kind }} at {{ $value | humanize }}/s"
      - alert: Hot
        expr: max by (kind) (temp) > 50
        for: 2s
        keep_firing_for: 2s
      - alert: HotLong
        expr: max by (kind) (temp) > 50
        for: 10m
  - name: capped
    interval: 1s
    limit: 1
    rules:
      - alert: Twice
        expr: label_replace(temp, "copy", "a", "", "") > 50 or label_replace(temp, "copy", "b", "", "") > 50
"#;

/// What the target serves: a counter growing at `rate` per second since `since`, from `base`,
/// and a gauge.
struct Target {
    base: f64,
    since: Instant,
    rate: f64,
    temp: f64,
}

impl Target {
    fn counter(&self) -> f64 {
        self.base + self.rate * self.since.elapsed().as_secs_f64()
    }

    fn set(&mut self, rate: f64, temp: f64) {
        self.base = self.counter();
        self.since = Instant::now();
        self.rate = rate;
        self.temp = temp;
    }
}

/// Serves the target's text on a port of its own for the rest of the test binary.
fn serve(target: Arc<Mutex<Target>>) -> u16 {
    let server = monitor_core::http::HttpServer::start("127.0.0.1:0", "target", move |_| {
        let body = {
            let t = target.lock().unwrap();
            format!(
                "# TYPE req_total counter\nreq_total{{kind=\"api\"}} {}\n# TYPE temp gauge\ntemp{{kind=\"api\"}} {}\n",
                t.counter(),
                t.temp
            )
        };
        monitor_core::http::Response::new(200, "text/plain; version=0.0.4; charset=utf-8", body)
    })
    .unwrap();
    let port = server.local_addr().port();
    // Kept for the rest of the test binary: both scrapers read it until the end.
    std::mem::forget(server);
    port
}

type Active = BTreeSet<(String, String, String)>;

fn json(port: u16, path: &str) -> Option<serde_json::Value> {
    let (status, body) = http_get(port, path)?;
    (status == 200).then(|| serde_json::from_str(&body).ok())?
}

fn active(alerts: &[serde_json::Value], name_key: &str) -> Active {
    alerts
        .iter()
        .filter(|a| matches!(a["state"].as_str(), Some("pending" | "firing")))
        .map(|a| {
            let name = a[name_key]
                .as_str()
                .or_else(|| a["labels"]["alertname"].as_str())
                .unwrap_or_default();
            (
                name.to_owned(),
                a["labels"]["kind"].as_str().unwrap_or_default().to_owned(),
                a["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn prometheus_alerts(port: u16) -> Option<Active> {
    let v = json(port, "/api/v1/alerts")?;
    Some(active(v["data"]["alerts"].as_array()?, "alertname"))
}

/// The host's alerts through its `/api/v1/alerts`, read exactly as Prometheus's are.
fn host_alerts(port: u16) -> Option<Active> {
    prometheus_alerts(port)
}

/// Group, rule, type, state and health of every rule, from `/api/v1/rules`.
fn rules(port: u16) -> Option<BTreeSet<[String; 5]>> {
    let v = json(port, "/api/v1/rules")?;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let mut out = BTreeSet::new();
    for g in v["data"]["groups"].as_array()? {
        for r in g["rules"].as_array()? {
            out.insert([
                text(&g["name"]),
                text(&r["name"]),
                text(&r["type"]),
                text(&r["state"]),
                text(&r["health"]),
            ]);
        }
    }
    Some(out)
}

/// The `lastError` of every rule in error, by rule name, from `/api/v1/rules`.
fn rule_errors(port: u16) -> Option<BTreeSet<(String, String)>> {
    let v = json(port, "/api/v1/rules")?;
    let mut out = BTreeSet::new();
    for g in v["data"]["groups"].as_array()? {
        for r in g["rules"].as_array()? {
            if r["health"] == "err" {
                let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
                out.insert((text(&r["name"]), text(&r["lastError"])));
            }
        }
    }
    Some(out)
}

/// The value of `kind:req:rate3s{kind="api"}` now, through the instant query API.
fn recorded_rate(port: u16) -> Option<f64> {
    let v = json(port, "/api/v1/query?query=kind:req:rate3s")?;
    let result = v["data"]["result"].as_array()?;
    let sample = result.iter().find(|s| s["metric"]["kind"] == "api")?;
    sample["value"][1].as_str()?.parse().ok()
}

fn expected(items: &[(&str, &str)]) -> Active {
    items
        .iter()
        .map(|(n, s)| ((*n).to_owned(), "api".to_owned(), (*s).to_owned()))
        .collect()
}

/// Waits until both report `want` as their active alerts and a recorded rate within 10 % of
/// `rate`; panics with what each reported last otherwise.
fn phase(name: &str, prometheus: u16, host: u16, want: &Active, rate: f64) {
    let mut last = (None, None, None, None);
    let agreed = eventually(Duration::from_secs(20), || {
        last = (
            prometheus_alerts(prometheus),
            host_alerts(host),
            recorded_rate(prometheus),
            recorded_rate(host),
        );
        let close = |v: Option<f64>| v.is_some_and(|v| (v - rate).abs() <= rate * 0.1);
        (last.0.as_ref() == Some(want)
            && last.1.as_ref() == Some(want)
            && close(last.2)
            && close(last.3))
        .then_some(())
    });
    assert!(
        agreed.is_some(),
        "{name}: expected {want:?} at rate {rate}\n  prometheus: {:?} rate {:?}\n  host: {:?} rate {:?}",
        last.0,
        last.2,
        last.1,
        last.3
    );
}

#[test]
fn the_host_and_prometheus_agree_on_alerts_and_recorded_values() {
    let dir = Scratch::new("alert-rules");
    let target = Arc::new(Mutex::new(Target {
        base: 0.0,
        since: Instant::now(),
        rate: 5.0,
        temp: 20.0,
    }));
    let target_port = serve(Arc::clone(&target));
    dir.write("rules.yml", RULES);
    let prometheus_port = free_port();
    let Some(_prometheus) = Prometheus::start_with(
        prometheus_port,
        dir.path(),
        "prometheus.log",
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nscrape_configs:\n  - job_name: target\n    static_configs:\n      - targets: [\"127.0.0.1:{target_port}\"]\n"
        ),
    ) else {
        return;
    };
    let host_port = free_port();
    let config = dir.write(
        "monitor.toml",
        &format!(
            "[host]\ninterval = \"1s\"\nlisten = \"127.0.0.1:{host_port}\"\ndata_dir = {data}\nrule_files = [\"rules.yml\"]\n\n[[collector]]\nplugin = \"prometheus\"\nname = \"target\"\nlibrary = {lib}\n[collector.config]\nurl = \"http://127.0.0.1:{target_port}/metrics\"\n",
            data = toml_path(&dir.join("data")),
            lib = toml_path(&library("monitor-plugin-prometheus")),
        ),
    );
    let _host = RunningHost::start(&config, host_port);

    phase("quiet", prometheus_port, host_port, &expected(&[]), 5.0);
    target.lock().unwrap().set(50.0, 80.0);
    let hot = expected(&[
        ("Fast", "firing"),
        ("Hot", "firing"),
        ("HotLong", "pending"),
    ]);
    phase("busy", prometheus_port, host_port, &hot, 50.0);
    // `/api/v1/rules` shows the same groups, rules, states and health on both.
    let mut seen = (None, None);
    let same = eventually(Duration::from_secs(10), || {
        seen = (rules(prometheus_port), rules(host_port));
        (seen.0.is_some() && seen.0 == seen.1).then_some(())
    });
    assert!(same.is_some(), "rules differ: {seen:#?}");
    // Past its group's `limit` a rule is in error with the same message on both, and its
    // alerts are dropped (none of `Twice` is active above).
    let want = BTreeSet::from([(
        "Twice".to_owned(),
        "exceeded limit of 1 with 2 alerts".to_owned(),
    )]);
    let mut errors = (None, None);
    let same = eventually(Duration::from_secs(10), || {
        errors = (rule_errors(prometheus_port), rule_errors(host_port));
        (errors.0.as_ref() == Some(&want) && errors.1.as_ref() == Some(&want)).then_some(())
    });
    assert!(same.is_some(), "rule errors differ: {errors:#?}");
    // The annotation is rendered with the sample on both sides.
    let summary = |alerts: &serde_json::Value| {
        alerts
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["labels"]["alertname"] == "Fast" || a["alert"] == "Fast")
            .and_then(|a| a["annotations"]["summary"].as_str().map(str::to_owned))
    };
    let from_prometheus =
        summary(&json(prometheus_port, "/api/v1/alerts").unwrap()["data"]["alerts"]);
    let from_host = summary(&json(host_port, "/api/v1/alerts").unwrap()["data"]["alerts"]);
    for s in [&from_prometheus, &from_host] {
        assert!(
            s.as_deref()
                .is_some_and(|s| s.starts_with("api at ") && s.ends_with("/s")),
            "{from_prometheus:?} {from_host:?}"
        );
    }
    target.lock().unwrap().set(5.0, 20.0);
    phase(
        "calm again",
        prometheus_port,
        host_port,
        &expected(&[]),
        5.0,
    );
}
