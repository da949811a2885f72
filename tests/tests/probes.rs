//! The `probe` collector against real local services (HTTP, HTTPS with a private CA, TCP,
//! commands), and HTTPS for the `prometheus` collector and the `webhook` notifier.

use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use monitor_core::http::{HttpServer, Response, ServerOptions, tls};
use monitor_host::{Config, Engine};
use monitor_tests::{Scratch, TestCa, free_port, library, toml_path};

fn engine(text: &str, dir: &Path) -> Engine {
    let config = Config::from_str(text, "monitor.toml", dir).unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: the plugin libraries are built from this workspace.
    unsafe { Engine::load(&config) }.unwrap_or_else(|e| panic!("{e}"))
}

fn lib(name: &str) -> String {
    toml_path(&library(&format!("monitor-plugin-{name}")))
}

/// A `probe` collector with the given `[[collector.config.probes]]` tables.
fn probes(dir: &Path, tables: &str) -> Engine {
    engine(
        &format!(
            "[[collector]]\nplugin = \"probe\"\nlibrary = {}\n[collector.config]\ntimeout = \"4s\"\n{tables}",
            lib("probe")
        ),
        dir,
    )
}

fn value(e: &Engine, name: &str, probe: &str) -> Option<f64> {
    e.store()
        .by_name(name)
        .find(|(k, _)| k.labels.get("probe").map(String::as_str) == Some(probe))
        .and_then(|(_, s)| s.latest())
        .map(|(_, v)| v)
}

/// The message of the latest `probe_failed` event of `probe`.
fn failure(e: &Engine, probe: &str) -> String {
    e.events()
        .filter(|ev| {
            ev.kind == "probe_failed" && ev.labels.get("probe").map(String::as_str) == Some(probe)
        })
        .last()
        .map(|ev| ev.message.clone())
        .unwrap_or_else(|| panic!("no probe_failed event for `{probe}`"))
}

fn site(req: &monitor_core::http::Request<'_>) -> Response {
    match req.path {
        "/ok" => Response::new(200, "text/plain", "all good, version 1.2.3\n"),
        "/fail" => Response::new(500, "text/plain", "broken\n"),
        "/moved" => Response::new(302, "text/plain", "").with_header("location", "/ok"),
        _ => Response::new(404, "text/plain", ""),
    }
}

fn probe(name: &str, body: &str) -> String {
    format!("[[collector.config.probes]]\nname = \"{name}\"\n{body}\n")
}

#[test]
fn http_probes_check_status_codes_bodies_and_redirects() {
    let dir = Scratch::new("probe-http");
    let server = HttpServer::start("127.0.0.1:0", "probed", site).unwrap();
    let base = format!("http://127.0.0.1:{}", server.local_addr().port());
    let http =
        |path: &str, extra: &str| format!("kind = \"http\"\nurl = \"{base}{path}\"\n{extra}");
    let tables = [
        probe("ok", &http("/ok", "")),
        probe("fail", &http("/fail", "")),
        probe("fail_expected", &http("/fail", "status = [500, 503]")),
        probe(
            "body_ok",
            &http(
                "/ok",
                "body_contains = \"all good\"\nbody_regex = 'version \\d+\\.\\d+'",
            ),
        ),
        probe(
            "body_missing",
            &http("/ok", "body_contains = \"maintenance\""),
        ),
        probe("regex_missing", &http("/ok", "body_regex = '^down'")),
        probe("moved", &http("/moved", "")),
        probe("moved_followed", &http("/moved", "follow_redirects = true")),
    ]
    .concat();
    let mut e = probes(dir.path(), &tables);
    e.cycle(0);
    for (name, up, status) in [
        ("ok", 1.0, 200.0),
        ("fail", 0.0, 500.0),
        ("fail_expected", 1.0, 500.0),
        ("body_ok", 1.0, 200.0),
        ("body_missing", 0.0, 200.0),
        ("regex_missing", 0.0, 200.0),
        ("moved", 0.0, 302.0),
        ("moved_followed", 1.0, 200.0),
    ] {
        assert_eq!(value(&e, "probe.up", name), Some(up), "{name}");
        assert_eq!(
            value(&e, "probe.http.status_code", name),
            Some(status),
            "{name}"
        );
        assert!(
            value(&e, "probe.latency_seconds", name).is_some_and(|l| l >= 0.0),
            "{name}"
        );
    }
    assert!(
        failure(&e, "fail").contains("status 500, expected 2xx"),
        "{}",
        failure(&e, "fail")
    );
    assert!(failure(&e, "body_missing").contains("does not contain `maintenance`"));
    assert!(failure(&e, "regex_missing").contains("does not match /^down/"));
    assert!(failure(&e, "moved").contains("status 302"));
    // Plain HTTP has no certificate.
    assert_eq!(value(&e, "probe.tls.cert_expiry_seconds", "ok"), None);
    // Down twice in a row is one event, not two.
    e.cycle(10_000);
    let fails = e.events().filter(|ev| ev.kind == "probe_failed").count();
    assert_eq!(fails, 4, "one event per probe that went down");
}

/// An HTTPS server with a certificate of the test's private CA, serving [`site`].
fn https_server(ca: &TestCa) -> HttpServer {
    let mut options = ServerOptions::default();
    options.tls = Some(tls::server_config(&ca.cert, &ca.key).unwrap());
    HttpServer::start_with("127.0.0.1:0", "probed-tls", options, site).unwrap()
}

#[test]
fn https_probes_trust_a_private_ca_only_when_given_it_and_read_the_expiry() {
    let dir = Scratch::new("probe-https");
    let Some(ca) = TestCa::new(dir.path()) else {
        return;
    };
    let server = https_server(&ca);
    let url = format!("https://localhost:{}/ok", server.local_addr().port());
    let ip_url = format!("https://127.0.0.1:{}/ok", server.local_addr().port());
    let tables = [
        probe(
            "trusted",
            &format!(
                "kind = \"http\"\nurl = \"{url}\"\nbody_contains = \"all good\"\ntls_ca_file = {}",
                toml_path(&ca.ca)
            ),
        ),
        probe(
            "by_ip",
            &format!(
                "kind = \"http\"\nurl = \"{ip_url}\"\ntls_ca_file = {}",
                toml_path(&ca.ca)
            ),
        ),
        probe("untrusted", &format!("kind = \"http\"\nurl = \"{url}\"")),
        probe(
            "unverified",
            &format!("kind = \"http\"\nurl = \"{url}\"\ninsecure_skip_verify = true"),
        ),
    ]
    .concat();
    let mut e = probes(dir.path(), &tables);
    e.cycle(0);
    assert_eq!(value(&e, "probe.up", "trusted"), Some(1.0));
    assert_eq!(value(&e, "probe.up", "by_ip"), Some(1.0));
    assert_eq!(value(&e, "probe.http.status_code", "trusted"), Some(200.0));
    // The server certificate is valid for 30 days from now.
    let expiry = value(&e, "probe.tls.cert_expiry_seconds", "trusted").expect("an expiry");
    assert!(
        (29.0 * 86_400.0..=30.0 * 86_400.0 + 60.0).contains(&expiry),
        "{expiry}"
    );
    assert_eq!(value(&e, "probe.up", "untrusted"), Some(0.0));
    assert_eq!(value(&e, "probe.http.status_code", "untrusted"), None);
    let why = failure(&e, "untrusted");
    assert!(
        why.contains("certificate") && why.contains("UnknownIssuer"),
        "{why}"
    );
    assert_eq!(value(&e, "probe.up", "unverified"), Some(1.0));
}

#[test]
fn tcp_probes_see_a_listening_port_up_and_a_closed_one_down() {
    let dir = Scratch::new("probe-tcp");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    let closed = free_port();
    let tables = [
        probe(
            "open",
            &format!("kind = \"tcp\"\naddress = \"127.0.0.1:{open}\"\ntimeout = \"2s\""),
        ),
        probe(
            "closed",
            &format!("kind = \"tcp\"\naddress = \"127.0.0.1:{closed}\"\ntimeout = \"2s\""),
        ),
    ]
    .concat();
    let mut e = probes(dir.path(), &tables);
    e.cycle(0);
    assert_eq!(value(&e, "probe.up", "open"), Some(1.0));
    assert_eq!(value(&e, "probe.up", "closed"), Some(0.0));
    assert!(
        failure(&e, "closed").contains("refused"),
        "{}",
        failure(&e, "closed")
    );
    // It comes back when something listens.
    let _now_open = TcpListener::bind(("127.0.0.1", closed)).unwrap();
    e.cycle(10_000);
    assert_eq!(value(&e, "probe.up", "closed"), Some(1.0));
    assert!(e.events().any(|ev| ev.kind == "probe_recovered"));
    drop(listener);
}

#[test]
fn command_probes_go_by_exit_status_and_are_killed_past_their_timeout() {
    let dir = Scratch::new("probe-command");
    let pid_file = dir.join("slow.pid");
    let tables = [
        probe("zero", "kind = \"command\"\ncommand = \"exit 0\""),
        probe(
            "one",
            "kind = \"command\"\ncommand = \"echo disk full >&2; exit 1\"",
        ),
        probe(
            "slow",
            &format!(
                "kind = \"command\"\ncommand = \"echo $$ > {}; sleep 30 & wait\"\ntimeout = \"1s\"",
                pid_file.display()
            ),
        ),
    ]
    .concat();
    let mut e = probes(dir.path(), &tables);
    e.cycle(0);
    assert_eq!(value(&e, "probe.up", "zero"), Some(1.0));
    assert_eq!(value(&e, "probe.up", "one"), Some(0.0));
    let why = failure(&e, "one");
    assert!(
        why.contains("exit status: 1") && why.contains("disk full"),
        "{why}"
    );
    assert_eq!(value(&e, "probe.up", "slow"), Some(0.0));
    assert!(
        failure(&e, "slow").contains("was killed"),
        "{}",
        failure(&e, "slow")
    );
    // The shell was killed and reaped (a zombie would still have its /proc entry).
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(
        !Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "the timed-out command {pid} is still there"
    );
}

#[test]
fn prometheus_scrapes_over_https_with_a_private_ca() {
    let dir = Scratch::new("scrape-https");
    let Some(ca) = TestCa::new(dir.path()) else {
        return;
    };
    let mut options = ServerOptions::default();
    options.tls = Some(tls::server_config(&ca.cert, &ca.key).unwrap());
    let server = HttpServer::start_with("127.0.0.1:0", "target-tls", options, |_| {
        Response::new(200, "text/plain", "# TYPE jobs_done counter\njobs_done 7\n")
    })
    .unwrap();
    let url = format!("https://localhost:{}/metrics", server.local_addr().port());
    let collector = |name: &str, extra: &str| {
        format!(
            "[[collector]]\nname = \"{name}\"\nplugin = \"prometheus\"\nlibrary = {}\n[collector.config]\nurl = \"{url}\"\n{extra}\n",
            lib("prometheus")
        )
    };
    let text = [
        collector("trusted", &format!("tls_ca_file = {}", toml_path(&ca.ca))),
        collector("untrusted", ""),
    ]
    .concat();
    let mut e = engine(&text, dir.path());
    e.cycle(0);
    let up = |c: &str| {
        e.store()
            .by_name("prometheus.up")
            .find(|(k, _)| k.labels.get("collector").map(String::as_str) == Some(c))
            .and_then(|(_, s)| s.latest())
            .map(|(_, v)| v)
    };
    assert_eq!(up("trusted"), Some(1.0));
    assert_eq!(up("untrusted"), Some(0.0));
    let jobs: Vec<_> = e
        .store()
        .by_name("jobs_done")
        .map(|(k, _)| k.labels.clone())
        .collect();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(
        jobs[0].get("collector").map(String::as_str),
        Some("trusted")
    );
    let why = e
        .events()
        .find(|ev| ev.kind == "scrape_failed")
        .map(|ev| ev.message.clone())
        .unwrap_or_default();
    assert!(why.contains("UnknownIssuer"), "{why}");
}

#[test]
fn webhook_posts_over_https_with_a_private_ca() {
    let dir = Scratch::new("webhook-https");
    let Some(ca) = TestCa::new(dir.path()) else {
        return;
    };
    let (tx, rx) = mpsc::channel();
    let mut options = ServerOptions::default();
    options.tls = Some(tls::server_config(&ca.cert, &ca.key).unwrap());
    let server = HttpServer::start_with("127.0.0.1:0", "receiver-tls", options, move |req| {
        let _ = tx.send(String::from_utf8_lossy(req.body).into_owned());
        Response::new(200, "text/plain", "")
    })
    .unwrap();
    let value = dir.write("value", "50");
    let text = format!(
        r#"
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

[[notifier]]
plugin = "webhook"
library = {hook}
[notifier.config]
url = "https://localhost:{port}/hook"
tls_ca_file = {ca}
retries = 0
"#,
        test = toml_path(&library("monitor-test-plugins")),
        hook = lib("webhook"),
        value = toml_path(&value),
        port = server.local_addr().port(),
        ca = toml_path(&ca.ca),
    );
    let mut e = engine(&text, dir.path());
    e.cycle(1_700_000_000_000);
    e.settle(Duration::from_secs(10));
    let body = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a webhook over HTTPS");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["alerts"][0]["labels"]["alertname"], "too_high");
    let hook = e
        .plugins()
        .into_iter()
        .find(|p| p.name == "webhook")
        .unwrap()
        .stats;
    assert_eq!((hook.calls, hook.errors), (1, 0));

    // Without the CA, the same receiver is refused at the handshake.
    let untrusted = text.replace(&format!("tls_ca_file = {}\n", toml_path(&ca.ca)), "");
    let mut e = engine(&untrusted, dir.path());
    e.cycle(1_700_000_000_000);
    e.settle(Duration::from_secs(10));
    let hook = e
        .plugins()
        .into_iter()
        .find(|p| p.name == "webhook")
        .unwrap()
        .stats;
    assert_eq!(hook.errors, 1);
    let err = hook.last_error.unwrap_or_default();
    assert!(err.contains("UnknownIssuer"), "{err}");
    assert!(rx.try_recv().is_err(), "nothing reached the receiver");
}
