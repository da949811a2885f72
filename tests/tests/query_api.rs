//! The query API of the host binary, `/api/v1/...`, read from its store: every endpoint and
//! Prometheus's envelopes; and, where Debian's `prometheus` is installed, the same answers as a
//! real Prometheus that received the same samples through remote write.

use std::path::{Path, PathBuf};
use std::time::Duration;

use monitor_host::engine::now_ms;
use monitor_tests::{
    Prometheus, RunningHost, Scratch, eventually, free_port, http_get, library, toml_path,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// The host binary every 100 ms, serving on `listen`, the `file` collector reading `value`;
/// `extra` is appended to the config.
fn start_host(dir: &Scratch, listen: u16, value: &Path, extra: &str) -> RunningHost {
    let config = dir.write(
        "monitor.toml",
        &format!(
            "[host]\nname = \"query-host\"\ninterval = \"100ms\"\nlisten = \"127.0.0.1:{listen}\"\n\
             data_dir = \"data\"\n\n\
             [[collector]]\nplugin = \"file\"\nlibrary = {lib}\ninterval = \"100ms\"\n\
             [collector.config]\npath = {value}\n\n{extra}",
            lib = toml_path(&library("monitor-test-plugins")),
            value = toml_path(value),
        ),
    );
    RunningHost::builder(config).start()
}

/// `GET path` on `port`, as JSON.
fn get(port: u16, path: &str) -> (u16, Value) {
    let (status, body) =
        http_get(port, path).unwrap_or_else(|| panic!("nothing answers {path} on {port}"));
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, json)
}

fn data(port: u16, path: &str) -> Value {
    let (status, v) = get(port, path);
    assert_eq!(status, 200, "{path}: {v}");
    assert_eq!(v["status"], "success", "{path}: {v}");
    v["data"].clone()
}

/// The error envelope `path` answers, with its status.
fn error(port: u16, path: &str) -> (u16, String) {
    let (status, v) = get(port, path);
    assert_eq!(v["status"], "error", "{path}: {v}");
    assert_eq!(v["errorType"], "bad_data", "{path}: {v}");
    (status, v["error"].as_str().unwrap().to_owned())
}

fn seconds(ms: u64) -> String {
    format!("{}", ms as f64 / 1000.0)
}

#[test]
fn every_endpoint_answers_in_prometheus_shape() {
    let dir = Scratch::new("query-api");
    let value = dir.write("value", "5");
    let port = free_port();
    let _host = start_host(&dir, port, &value, "");
    let vector = eventually(WAIT, || {
        let (_, v) = http_get(port, "/api/v1/query?query=test_value")?;
        let v: Value = serde_json::from_str(&v).ok()?;
        (v["data"]["result"].as_array()?.len() == 1).then_some(v)
    })
    .expect("the host never answered test_value");
    let expected_metric = json!({"__name__": "test_value", "collector": "file", "source": "file"});
    assert_eq!(vector["data"]["resultType"], "vector");
    assert_eq!(vector["data"]["result"][0]["metric"], expected_metric);
    assert_eq!(vector["data"]["result"][0]["value"][1], "5");

    // An instant query is stamped with its time; one before any sample finds nothing.
    let now = now_ms();
    let at = data(
        port,
        &format!("/api/v1/query?query=test_value&time={}", seconds(now)),
    );
    assert_eq!(
        at["result"][0]["value"][0].as_f64(),
        Some(now as f64 / 1000.0)
    );
    let before = data(port, "/api/v1/query?query=test_value&time=1000");
    assert_eq!(before["result"], json!([]));

    // A range: one value per step, as strings, timestamps `step` apart.
    std::fs::write(&value, "7").unwrap();
    let sevens = |v: &Value| {
        v["result"][0]["values"]
            .as_array()
            .is_some_and(|vs| vs.last().is_some_and(|p| p[1] == "7"))
    };
    let path = || {
        let end = now_ms();
        format!(
            "/api/v1/query_range?query=%7B__name__%3D~%22test_.%2A%22%7D&start={}&end={}&step=0.1",
            seconds(end - 2_000),
            seconds(end)
        )
    };
    let matrix = eventually(WAIT, || Some(data(port, &path())).filter(sevens))
        .expect("the range never showed the new value");
    assert_eq!(matrix["resultType"], "matrix");
    assert_eq!(matrix["result"][0]["metric"], expected_metric);
    let values = matrix["result"][0]["values"].as_array().unwrap();
    for pair in values.windows(2) {
        let step = pair[1][0].as_f64().unwrap() - pair[0][0].as_f64().unwrap();
        assert!((step - 0.1).abs() < 1e-6, "{pair:?}");
        assert!(pair[0][1].is_string(), "{pair:?}");
    }

    // series, labels, label values.
    assert_eq!(
        data(
            port,
            "/api/v1/series?match[]=test_value&match[]=nothing_here"
        ),
        json!([expected_metric])
    );
    let labels = data(port, "/api/v1/labels");
    for name in ["__name__", "collector", "source"] {
        assert!(
            labels.as_array().unwrap().contains(&json!(name)),
            "{labels}"
        );
    }
    assert_eq!(
        data(port, "/api/v1/label/collector/values?match[]=test_value"),
        json!(["file"])
    );
    let names = data(port, "/api/v1/label/__name__/values");
    assert!(
        names.as_array().unwrap().contains(&json!("test_value")),
        "{names}"
    );
    assert_eq!(
        data(
            port,
            "/api/v1/series?match[]=test_value&start=1000&end=2000"
        ),
        json!([])
    );

    // What is refused, and how.
    let (status, message) = error(port, "/api/v1/query?query=sgn(test_value)");
    assert_eq!(status, 400);
    assert!(
        message.contains("unsupported PromQL function \"sgn\""),
        "{message}"
    );
    let (status, v) = get(
        port,
        // Two series on the right with the same (empty) matching labels: many-to-many.
        "/api/v1/query?query=vector(1)%2Bon()(vector(2)%20or%20\
         label_replace(vector(3)%2C%22a%22%2C%22b%22%2C%22%22%2C%22%22))",
    );
    assert_eq!((status, &v["errorType"]), (422, &json!("execution")), "{v}");
    let (status, message) = error(
        port,
        "/api/v1/query_range?query=test_value&start=0&end=20000&step=1",
    );
    assert_eq!(status, 400);
    assert!(message.contains("11,000"), "{message}");
    let (status, message) = error(
        port,
        "/api/v1/query_range?query=test_value&start=x&end=1&step=1",
    );
    assert_eq!(status, 400);
    assert!(message.contains("invalid parameter \"start\""), "{message}");
    assert_eq!(error(port, "/api/v1/series").0, 400);
    assert_eq!(get(port, "/api/v1/nothing").0, 404);
}

/// A vector or matrix without the `host` label remote write adds (the host's own API shows the
/// series as `/metrics` does, without it).
fn without_host(mut data: Value) -> Value {
    for series in data["result"].as_array_mut().into_iter().flatten() {
        if let Some(metric) = series.get_mut("metric").and_then(Value::as_object_mut) {
            metric.remove("host");
        }
    }
    data
}

#[test]
fn range_queries_answer_as_prometheus_does_on_the_same_samples() {
    let dir = Scratch::new("query-api-prometheus");
    let prom_dir: PathBuf = dir.join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let prom_port = free_port();
    let Some(prometheus) = Prometheus::start(prom_port, &prom_dir, "prometheus.log") else {
        return;
    };
    let value = dir.write("value", "1");
    let port = free_port();
    let remote = format!(
        "[[remote_write]]\nname = \"central\"\nurl = \"http://127.0.0.1:{prom_port}/api/v1/write\"\n\
         batch_send_deadline = \"20ms\"\n"
    );
    let _host = start_host(&dir, port, &value, &remote);
    let first = eventually(WAIT, || {
        let (_, body) = http_get(port, "/api/v1/query?query=test_value")?;
        let v: Value = serde_json::from_str(&body).ok()?;
        (v["data"]["result"].as_array()?.len() == 1).then(now_ms)
    })
    .expect("the host never stored test_value");
    // Values that change between samples, then a range over them at a step finer and one
    // coarser than the collection interval.
    for v in ["2", "3.5", "-4", "1e-3"] {
        std::fs::write(&value, v).unwrap();
        std::thread::sleep(Duration::from_millis(350));
    }
    let end = now_ms();
    let mut paths = vec![
        // Grafana's "Save & test" query, and a constant over a range.
        format!("/api/v1/query?query=1%2B1&time={}", seconds(end)),
        format!(
            "/api/v1/query_range?query=-(2*3)&start={}&end={}&step=0.5",
            seconds(first),
            seconds(end)
        ),
    ];
    for at in [first + 400, end] {
        paths.push(format!(
            "/api/v1/query?query=test_value&time={}",
            seconds(at)
        ));
    }
    for path in paths {
        let same = eventually(WAIT, || {
            let theirs = without_host(data(prometheus.port, &path));
            (theirs == data(port, &path)).then_some(())
        });
        let (ours, theirs) = (
            data(port, &path),
            without_host(data(prometheus.port, &path)),
        );
        assert!(
            same.is_some(),
            "{path}:\nhost:       {ours}\nprometheus: {theirs}"
        );
        assert_ne!(ours["result"], json!([]), "{path}");
    }
    for step in ["0.05", "0.25", "1"] {
        let path = format!(
            "/api/v1/query_range?query=test_value%7Bcollector%3D%22file%22%7D&start={}&end={}&step={step}",
            seconds(first - 500),
            seconds(end)
        );
        // The store commits each cycle and remote write delivers within a moment: the answers
        // meet once both hold every sample up to `end`.
        let same = eventually(WAIT, || {
            let ours = data(port, &path);
            let theirs = without_host(data(prometheus.port, &path));
            (theirs == ours).then_some(ours)
        });
        let (ours, theirs) = (
            data(port, &path),
            without_host(data(prometheus.port, &path)),
        );
        let same = same
            .unwrap_or_else(|| panic!("step {step}:\nhost:       {ours}\nprometheus: {theirs}"));
        let values = same["result"][0]["values"].as_array().unwrap();
        let distinct: std::collections::BTreeSet<&str> =
            values.iter().map(|p| p[1].as_str().unwrap()).collect();
        // At the finest step every value written shows; at coarser ones, some.
        let want = if step == "0.05" { 5 } else { 1 };
        assert!(distinct.len() >= want, "{path}: {same}");
    }
}
