//! The HTTP skeleton and the exposition served on it, over real sockets.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use monitor_core::Registry;
use monitor_core::http::{HttpServer, Response};

/// Sends `request_line` and returns the status, the Content-Type and the body.
fn get(addr: SocketAddr, target: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("server accepts");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {target} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Type: "))
        .unwrap_or_default()
        .to_owned();
    (status, content_type, body.to_owned())
}

#[test]
fn the_handler_sees_method_path_and_query_and_sets_the_answer() {
    let server = HttpServer::start("127.0.0.1:0", "test-http", |request| {
        let body = format!("{} {} [{}]", request.method, request.path, request.query);
        Response::new(201, "text/x-test", body)
    })
    .unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);
    assert_eq!(
        get(addr, "/a/b?x=1&y"),
        (201, "text/x-test".to_owned(), "GET /a/b [x=1&y]".to_owned())
    );
    assert_eq!(get(addr, "/plain").2, "GET /plain []");
}

#[test]
fn dropping_the_server_stops_and_joins_its_thread() {
    let held = std::sync::Arc::new(());
    let in_handler = held.clone();
    let server = HttpServer::start("127.0.0.1:0", "test-http-drop", move |_| {
        let _ = &in_handler;
        Response::new(200, "text/plain", "ok")
    })
    .unwrap();
    assert_eq!(get(server.local_addr(), "/").0, 200);
    assert_eq!(std::sync::Arc::strong_count(&held), 2);
    drop(server);
    // The handler lives on the server's thread: joined, it is gone.
    assert_eq!(std::sync::Arc::strong_count(&held), 1);
}

#[test]
fn an_address_in_use_is_an_error() {
    let first = HttpServer::start("127.0.0.1:0", "test-http-a", |_| {
        Response::new(200, "text/plain", "")
    })
    .unwrap();
    let second = HttpServer::start(first.local_addr(), "test-http-b", |_| {
        Response::new(200, "text/plain", "")
    });
    assert!(second.is_err());
}

#[test]
fn the_exposition_serves_metrics_snapshot_report_and_health() {
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    registry.record("served.op", Duration::from_millis(2), true);
    let exposition = monitor_core::exposition::serve_registry(registry, "127.0.0.1:0").unwrap();
    let addr = exposition.local_addr();
    let (status, content_type, body) = get(addr, "/metrics?x=1");
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(body.contains("monitor_function_calls_total{function=\"served.op\"} 1\n"));
    let (status, content_type, body) = get(addr, "/api/snapshot");
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["functions"][0]["name"], "served.op");
    let (status, content_type, body) = get(addr, "/api/report");
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/plain; charset=utf-8")
    );
    assert!(
        body.starts_with("Performance report: 1 functions, 1 called\n"),
        "{body}"
    );
    assert!(body.contains("\nserved.op "), "{body}");
    assert_eq!(
        get(addr, "/healthz"),
        (200, "text/plain".to_owned(), "ok\n".to_owned())
    );
    assert_eq!(get(addr, "/nope").0, 404);
}

/// Sends `raw` as it is and returns what comes back until the server closes.
fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("server accepts");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn the_exposition_answers_head_and_refuses_other_methods_with_allow() {
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    registry.record("served.op", Duration::from_millis(2), true);
    let exposition = monitor_core::exposition::serve_registry(registry, "127.0.0.1:0").unwrap();
    let addr = exposition.local_addr();
    let deleted = exchange(
        addr,
        b"DELETE /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(deleted.starts_with("HTTP/1.1 405"), "{deleted}");
    assert!(deleted.contains("\r\nAllow: GET, HEAD\r\n"), "{deleted}");
    let head = exchange(
        addr,
        b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (head, body) = head.split_once("\r\n\r\n").unwrap();
    assert!(body.is_empty(), "HEAD has no body: {body}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("the length GET would send")
        .parse()
        .unwrap();
    assert_eq!(length, get(addr, "/metrics").2.len());
}

#[test]
fn the_handler_sees_headers_and_the_body_within_its_limit() {
    let mut options = monitor_core::http::ServerOptions::default();
    options.max_body_bytes = 16;
    let server = HttpServer::start_with("127.0.0.1:0", "test-body", options, |request| {
        let body = format!(
            "{} {:?} {}",
            request.method,
            request.header("content-type"),
            String::from_utf8_lossy(request.body)
        );
        Response::new(200, "text/plain", body)
    })
    .unwrap();
    let addr = server.local_addr();
    let posted = exchange(
        addr,
        b"POST /q HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 9\r\nConnection: close\r\n\r\nquery=up1",
    );
    assert!(
        posted.ends_with("\r\n\r\nPOST Some(\"application/x-www-form-urlencoded\") query=up1"),
        "{posted}"
    );
    let too_large = exchange(
        addr,
        b"POST /q HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n12345678901234567",
    );
    assert!(too_large.starts_with("HTTP/1.1 413"), "{too_large}");
    let chunked_too_large = exchange(
        addr,
        b"POST /q HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          a\r\n1234567890\r\na\r\n1234567890\r\n0\r\n\r\n",
    );
    assert!(
        chunked_too_large.starts_with("HTTP/1.1 413"),
        "{chunked_too_large}"
    );
    assert_eq!(server.stats().requests_rejected(), 2);
}

#[test]
fn a_response_is_sent_from_its_shared_buffers_in_order() {
    let shared = monitor_core::http::Bytes::from_static(b"first ");
    let server = HttpServer::start("127.0.0.1:0", "test-more", move |_| {
        Response::new(200, "text/plain", shared.clone()).then("second")
    })
    .unwrap();
    assert_eq!(get(server.local_addr(), "/").2, "first second");
}
