//! The host's HTTP server against clients that misbehave: one that never reads its answers, huge
//! request heads, file descriptors running out, a request head sent by halves and never finished;
//! methods, the query API's POST form, credentials and TLS. Each runs the real `monitor-host`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use monitor_tests::{
    HostBuilder, RunningHost, Scratch, binary, eventually, free_port, http_get, toml_path,
};

fn write_config(dir: &Scratch, listen: &str, extra: &str) -> PathBuf {
    dir.write(
        "monitor.toml",
        &format!(
            "[host]\ninterval = \"1s\"\nlisten = \"{listen}\"\ndata_dir = {}\n{extra}",
            toml_path(&dir.join("data"))
        ),
    )
}

/// How to start the host on `port` with `config`, logging at `info`.
fn builder(config: &Path, port: u16) -> HostBuilder {
    RunningHost::builder(config)
        .port(port)
        .env("RUST_LOG", "info")
}

/// Starts the host on loopback with `[host]` extras and waits until a cycle has run (`/healthz`
/// answers 200).
fn start(dir: &Scratch, extra: &str) -> RunningHost {
    let port = free_port();
    let config = write_config(dir, &format!("127.0.0.1:{port}"), extra);
    builder(&config, port).start()
}

fn rss_kb(host: &RunningHost) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", host.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// Sends `raw` on a new connection and returns what comes back until the server closes (or 30 s
/// pass); a failed write (the server closed first) is not an error.
fn exchange(port: u16, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(raw);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn header<'a>(response: &'a str, name: &str) -> Vec<&'a str> {
    let head = response.split("\r\n\r\n").next().unwrap_or_default();
    head.lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect()
}

fn ready() -> Scratch {
    monitor_tests::build();
    Scratch::new("http-hardening")
}

#[test]
fn a_client_that_never_reads_does_not_hold_up_health_checks() {
    let dir = ready();
    let host = start(&dir, "");
    // Thousands of pipelined requests for the largest answers, none of them read: the answers
    // fill the socket buffers and the server's writes to this client block.
    let mut slow = TcpStream::connect(("127.0.0.1", host.port())).unwrap();
    slow.set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let writer = std::thread::spawn(move || {
        let mut requests = Vec::new();
        for i in 0..20_000 {
            let path = if i % 2 == 0 {
                "/metrics"
            } else {
                "/api/snapshot"
            };
            requests
                .extend_from_slice(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        }
        let _ = slow.write_all(&requests);
        // Kept open, unread, until the test ends.
        slow
    });
    std::thread::sleep(Duration::from_secs(1));
    for probe in 0..20 {
        let answer = http_get(host.port(), "/healthz");
        assert_eq!(
            answer.as_ref().map(|a| a.0),
            Some(200),
            "probe {probe} while a client does not read: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The server gives up on that client once a write has waited 30 s, and counts it.
    let timeouts = eventually(Duration::from_secs(120), || {
        host.metric("monitor_host_http_timeouts_total", &[])
            .filter(|t| *t >= 1.0)
    });
    assert!(
        timeouts.is_some(),
        "the client that does not read was never dropped"
    );
    drop(writer);
}

#[test]
fn oversized_request_heads_are_refused_without_memory_growth() {
    let dir = ready();
    let host = start(&dir, "");
    let before = rss_kb(&host);

    let mut long_line = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: ".to_vec();
    long_line.extend(std::iter::repeat_n(b'a', 1024 * 1024));
    long_line.extend_from_slice(b"\r\n\r\n");
    let mut many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..100_000 {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    for (what, raw) in [
        ("a 1 MB header line", &long_line),
        ("100,000 headers", &many),
    ] {
        for _ in 0..5 {
            let answer = exchange(host.port(), raw);
            assert!(
                answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
                "{what}: answered {:?}",
                answer.lines().next()
            );
        }
    }
    let after = rss_kb(&host);
    assert!(
        after < before + 64 * 1024,
        "RSS went from {before} kB to {after} kB"
    );
    assert_eq!(http_get(host.port(), "/healthz").map(|a| a.0), Some(200));
    let rejected = host.metric("monitor_host_http_requests_rejected_total", &[]);
    assert!(rejected.is_some_and(|r| r >= 1.0), "{rejected:?}");
}

#[test]
fn running_out_of_file_descriptors_is_counted_and_the_server_recovers() {
    if Command::new("prlimit").arg("--version").output().is_err() {
        eprintln!("skipped: prlimit is not installed");
        return;
    }
    let dir = ready();
    let port = free_port();
    let config = write_config(&dir, &format!("127.0.0.1:{port}"), "");
    let host = builder(&config, port)
        .wrapped_in("prlimit", &["--nofile=64:64"])
        .start();
    // Far more connections than descriptors left: the host's accept fails with EMFILE.
    let held: Vec<TcpStream> = (0..120)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(held.len() > 64, "only {} connections opened", held.len());
    assert!(
        host.stderr().wait_for("cannot accept a connection"),
        "no accept error logged:\n{}",
        host.stderr().text()
    );
    drop(held);
    // Served again once the connections are gone, and the errors are in /metrics.
    let errors = eventually(Duration::from_secs(30), || {
        host.metric("monitor_host_http_accept_errors_total", &[])
            .filter(|n| *n >= 1.0)
    });
    assert!(
        errors.is_some(),
        "accept errors not counted:\n{}",
        host.stderr().text()
    );
    assert_eq!(http_get(port, "/healthz").map(|a| a.0), Some(200));
}

#[test]
fn a_request_head_left_unfinished_is_closed_after_the_read_timeout() {
    let dir = ready();
    let host = start(&dir, "");
    let mut slow = TcpStream::connect(("127.0.0.1", host.port())).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let started = Instant::now();
    // Others are served meanwhile.
    for _ in 0..5 {
        assert_eq!(http_get(host.port(), "/healthz").map(|a| a.0), Some(200));
    }
    // The server hangs up on its own (10 s by default); the client is never answered 200.
    slow.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut out = Vec::new();
    let read = slow.read_to_end(&mut out);
    assert!(
        read.is_ok()
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{read:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(60), "not closed");
    assert!(!String::from_utf8_lossy(&out).contains(" 200 "), "{out:?}");
    let timeouts = host.metric("monitor_host_http_timeouts_total", &[]);
    assert!(timeouts.is_some_and(|t| t >= 1.0), "{timeouts:?}");
}

#[test]
fn methods_a_route_does_not_take_are_405_and_the_query_api_takes_a_post_form() {
    let dir = ready();
    let port = free_port();
    // Beyond loopback and unprotected: said in the log.
    let config = write_config(&dir, &format!("0.0.0.0:{port}"), "");
    let host = builder(&config, port).start();
    assert!(
        host.stderr()
            .wait_for("beyond loopback, without [host] http_auth")
    );

    let deleted = exchange(
        port,
        b"DELETE /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(deleted.starts_with("HTTP/1.1 405"), "{deleted}");
    assert_eq!(header(&deleted, "allow"), ["GET, HEAD"]);
    let reload = exchange(
        port,
        b"GET /-/reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(header(&reload, "allow"), ["POST"], "{reload}");

    let head = exchange(
        port,
        b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "no body after a HEAD: {head}");

    let form = "query=1%2B1&time=60";
    let posted = exchange(
        port,
        format!(
            "POST /api/v1/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        )
        .as_bytes(),
    );
    assert!(posted.starts_with("HTTP/1.1 200"), "{posted}");
    assert!(
        posted
            .ends_with(r#"{"status":"success","data":{"resultType":"scalar","result":[60,"2"]}}"#),
        "{posted}"
    );
}

/// A self-signed certificate for `localhost` and 127.0.0.1 made with the `openssl` CLI, or `None`
/// when it is not installed.
fn self_signed(dir: &Scratch) -> Option<(PathBuf, PathBuf)> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .ok()?;
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    Some((cert, key))
}

#[test]
fn credentials_are_required_when_configured() {
    let dir = ready();
    // `printf %s secret | sha256sum`
    let port = free_port();
    let config = write_config(
        &dir,
        &format!("127.0.0.1:{port}"),
        "http_auth = { basic_auth_users = { ann = \"sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\" } }\n",
    );
    // `/healthz` needs the credentials too: ready once it serves.
    let host = builder(&config, port).until_line("serving http://").start();
    let without = exchange(
        host.port(),
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(without.starts_with("HTTP/1.1 401"), "{without}");
    assert_eq!(
        header(&without, "www-authenticate"),
        ["Basic realm=\"monitor-host\""]
    );
    let wrong = exchange(
        host.port(),
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YW5uOndyb25n\r\nConnection: close\r\n\r\n",
    );
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    let with = eventually(Duration::from_secs(60), || {
        let r = exchange(
            host.port(),
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YW5uOnNlY3JldA==\r\nConnection: close\r\n\r\n",
        );
        r.starts_with("HTTP/1.1 200").then_some(r)
    });
    assert!(with.is_some(), "{}", host.stderr().text());
}

#[test]
fn tls_with_a_bearer_token_serves_https_only() {
    let dir = ready();
    let Some((cert, key)) = self_signed(&dir) else {
        eprintln!("skipped: openssl is not installed");
        return;
    };
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("skipped: curl is not installed");
        return;
    }
    dir.write("token", "t0ken\n");
    let port = free_port();
    let config = write_config(
        &dir,
        &format!("0.0.0.0:{port}"),
        &format!(
            "tls_cert_file = {}\ntls_key_file = {}\nhttp_auth = {{ bearer_token_file = \"token\" }}\n",
            toml_path(&cert),
            toml_path(&key)
        ),
    );
    // Plain HTTP gets no answer: ready once it says it serves HTTPS.
    let host = builder(&config, port)
        .until_line("serving https://")
        .start();
    let curl = |auth: Option<&str>| {
        let mut c = Command::new("curl");
        c.args(["-sS", "-i", "--max-time", "20", "--cacert"])
            .arg(&cert);
        if let Some(a) = auth {
            c.args(["-H", a]);
        }
        let out = c
            .arg(format!("https://localhost:{port}/healthz"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let without = curl(None);
    assert!(without.starts_with("HTTP/1.1 401"), "{without}");
    assert_eq!(
        header(&without, "www-authenticate"),
        ["Bearer realm=\"monitor-host\""]
    );
    let with = eventually(Duration::from_secs(60), || {
        let r = curl(Some("Authorization: Bearer t0ken"));
        r.starts_with("HTTP/1.1 200").then_some(r)
    });
    assert!(with.is_some(), "{}", host.stderr().text());
    // Plain HTTP on the TLS port is not answered.
    assert_eq!(http_get(port, "/healthz").map(|a| a.0), None);
    // Protected and encrypted: no warning.
    assert_eq!(
        host.stderr().count("beyond loopback"),
        0,
        "{}",
        host.stderr().text()
    );
}

#[test]
fn check_refuses_a_missing_certificate_at_its_key() {
    let dir = ready();
    let config = dir.write(
        "monitor.toml",
        "[host]\nlisten = \"0.0.0.0:9464\"\ntls_cert_file = \"nowhere/cert.pem\"\ntls_key_file = \"key.pem\"\n",
    );
    let out = Command::new(binary("monitor-host"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("monitor.toml:3:17: `tls_cert_file`: certificate file ")
            && stderr.contains("nowhere/cert.pem"),
        "{stderr}"
    );
}
