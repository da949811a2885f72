//! The host binary stays bounded and says when it is in trouble: a churning label meets the
//! series limit (reported, old series still updating) and its alert instances are forgotten once
//! gone; a slow collector does not hold the cycle back for the others; a store that cannot be
//! written turns `/healthz` to 503 naming it, and back to 200 once it can.

use std::fs::File;
use std::path::PathBuf;
use std::time::Duration;

use monitor_tests::{
    RunningHost, Scratch, Stderr, Tmpfs, eventually, free_port, http_get, library, metric,
    metric_value as value, promtool_check, toml_path,
};

const WAIT: Duration = Duration::from_secs(60);

/// Writes `monitor.toml` in `dir`: a host every 100 ms serving on `port`, with `rest` appended.
fn config(dir: &Scratch, port: u16, host: &str, rest: &str) -> PathBuf {
    dir.write(
        "monitor.toml",
        &format!(
            "[host]\ninterval = \"100ms\"\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"data\"\n\
             {host}\n{rest}",
        ),
    )
}

fn test_plugins() -> String {
    toml_path(&library("monitor-test-plugins"))
}

fn start(config: &PathBuf) -> (RunningHost, Stderr) {
    let host = RunningHost::builder(config).start();
    let stderr = host.stderr().clone();
    (host, stderr)
}

fn metrics(port: u16) -> Option<String> {
    let (status, text) = http_get(port, "/metrics")?;
    (status == 200).then_some(text)
}

#[test]
fn a_churning_label_keeps_series_and_alert_instances_bounded() {
    let dir = Scratch::new("bounds-churn");
    let port = free_port();
    let config = config(
        &dir,
        port,
        // Old series leave memory after 2 s, making room for new ones.
        "retention = \"2s\"\n",
        &format!(
            "[[collector]]\nplugin = \"label-churn\"\nname = \"churn\"\nlibrary = {lib}\nmax_series = 10\n\n\
             [[alert]]\nname = \"churning\"\nmetric = \"test.churn\"\ncondition = \"above\"\n\
             threshold = 0\n",
            lib = test_plugins(),
        ),
    );
    let (_host, stderr) = start(&config);
    let mut steady = Vec::new();
    let mut most_instances = 0.0f64;
    let mut most_series = 0.0f64;
    // Read /metrics until the host has run 100 cycles: 100 label values were offered, ten
    // times the limit.
    let done = eventually(WAIT, || {
        let text = metrics(port)?;
        let series = value(
            &text,
            "monitor_host_collector_series",
            &[r#"collector="churn""#],
        )?;
        most_series = most_series.max(series);
        let instances = value(&text, "monitor_host_alert_instances", &[])?;
        most_instances = most_instances.max(instances);
        steady.push(value(&text, "test_churn_steady", &[])?);
        (value(&text, "monitor_host_cycles_total", &[])? >= 100.0).then_some(text)
    });
    let text = done.expect("the host runs 100 cycles");
    assert!(most_series <= 10.0, "series held: {most_series}");
    let hits = value(
        &text,
        "monitor_host_series_limit_hits_total",
        &[r#"collector="churn""#],
    );
    assert!(
        hits.is_some_and(|h| h > 0.0),
        "limit hits: {hits:?}\n{text}"
    );
    // Without pruning every accepted label value (about 5 a second) would stay an instance.
    assert!(most_instances <= 12.0, "alert instances: {most_instances}");
    assert!(
        most_instances >= 1.0,
        "the rule was evaluated: {most_instances}"
    );
    // The steady series was there before the limit was reached and goes on updating.
    let (first, last) = (steady[0], steady[steady.len() - 1]);
    assert!(last > first + 20.0, "steady went from {first} to {last}");
    assert!(
        stderr.wait_for("series limit reached"),
        "the limit is logged:\n{}",
        stderr.text()
    );
    assert!(
        stderr.text().contains("collector=churn"),
        "{}",
        stderr.text()
    );
    // Logged when it starts, then once a minute: not once per cycle.
    let logged = stderr.count("series limit reached");
    assert!(logged <= 2, "logged {logged} times:\n{}", stderr.text());
    if let Some(check) = promtool_check(&text) {
        check.unwrap();
    }
}

#[test]
fn a_slow_collector_does_not_hold_back_a_fast_one() {
    let dir = Scratch::new("bounds-slow");
    let port = free_port();
    let config = config(
        &dir,
        port,
        "",
        &format!(
            "[[collector]]\nplugin = \"flaky\"\nname = \"fast\"\nlibrary = {lib}\n\n\
             [[collector]]\nplugin = \"slow\"\nlibrary = {lib}\ntimeout = \"30s\"\n\
             [collector.config]\nsleep_ms = 2000\n",
            lib = test_plugins(),
        ),
    );
    let (_host, _stderr) = start(&config);
    let fast = [r#"instance="fast""#];
    let slow = [r#"instance="slow""#];
    // The span: the slow collector finishing two calls (4 s). A cycle that waited for it would
    // have called the fast one about twice meanwhile; on its own 100 ms interval it is called
    // about 40 times.
    let text = eventually(WAIT, || {
        let text = metrics(port)?;
        let finished = value(&text, "monitor_plugin_last_samples", &slow).is_some();
        let calls = value(&text, "monitor_plugin_calls_total", &slow)?;
        (finished && calls >= 3.0).then_some(text)
    })
    .expect("the slow collector finishes calls");
    let fast_calls = value(&text, "monitor_plugin_calls_total", &fast).unwrap();
    assert!(
        fast_calls >= 15.0,
        "fast collector calls: {fast_calls}\n{text}"
    );
    let skipped = value(&text, "monitor_plugin_skipped_total", &slow).unwrap();
    assert!(
        skipped >= 5.0,
        "turns of the slow collector skipped: {skipped}"
    );
    let timeouts = value(&text, "monitor_plugin_timeouts_total", &slow).unwrap();
    assert_eq!(timeouts, 0.0, "nothing timed out");
}

#[test]
fn healthz_names_a_store_that_cannot_be_written_and_recovers() {
    let dir = Scratch::new("bounds-health");
    let Some(_tmpfs) = Tmpfs::mount(&dir.join("data"), "size=2m") else {
        return;
    };
    let port = free_port();
    let config = config(
        &dir,
        port,
        "",
        &format!(
            "[[collector]]\nplugin = \"flaky\"\nlibrary = {lib}\n",
            lib = test_plugins()
        ),
    );
    let (_host, _stderr) = start(&config);
    let healthz = || http_get(port, "/healthz");
    let ok = eventually(WAIT, || healthz().filter(|(s, _)| *s == 200));
    assert!(ok.is_some(), "healthy at first: {:?}", healthz());

    let text = metrics(port).unwrap();
    for name in [
        "monitor_host_resident_memory_bytes",
        "monitor_host_threads",
        "monitor_host_open_fds",
        "monitor_host_store_write_errors_total",
        "monitor_host_store_consecutive_write_failures",
        "monitor_host_store_last_write_success_timestamp_seconds",
        "monitor_host_last_cycle_end_timestamp_seconds",
        "monitor_host_cycle_duration_seconds",
    ] {
        assert!(value(&text, name, &[]).is_some(), "{name} missing:\n{text}");
    }
    assert!(value(&text, "monitor_host_resident_memory_bytes", &[]).unwrap() > 1e6);
    assert!(value(&text, "monitor_host_threads", &[]).unwrap() >= 2.0);
    if let Some(check) = promtool_check(&text) {
        check.unwrap();
    }

    // Fill the disk: writes fail, the cycles go on.
    let filler = dir.join("data/filler");
    let mut f = File::create(&filler).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    drop(f);
    let failing = eventually(WAIT, || healthz().filter(|(s, _)| *s == 503));
    let (_, body) = failing.expect("unhealthy once writes keep failing");
    assert!(body.contains("persistence failing"), "{body}");
    assert!(body.contains("monitor.db"), "names the file: {body}");
    let failures = metric(port, "monitor_host_store_consecutive_write_failures", &[]).unwrap();
    assert!(failures >= 3.0, "{failures}");

    std::fs::remove_file(&filler).unwrap();
    let back = eventually(WAIT, || healthz().filter(|(s, _)| *s == 200));
    assert!(back.is_some(), "healthy again: {:?}", healthz());
    assert_eq!(
        metric(port, "monitor_host_store_consecutive_write_failures", &[]),
        Some(0.0)
    );
}
