//! HTTP: `/metrics`, `/api/snapshot`, `/healthz`, `POST /-/reload`, the query API under `/api/v1/`
//! and a small dashboard at `/`.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender, bounded};
use monitor_core::http::{Request, Response};

use crate::query::QueryApi;
use crate::run::ReloadRequest;

/// How long `POST /-/reload` waits for the run loop (which reloads between cycles) before answering
/// 503; requests are served one at a time, so this bounds how long the others wait too.
pub const RELOAD_WAIT: Duration = Duration::from_secs(30);

/// What the HTTP thread serves; replaced after every cycle.
#[derive(Debug, Default, Clone)]
pub struct Published {
    /// Prometheus text.
    pub metrics: String,
    /// Snapshot JSON.
    pub snapshot: String,
    /// Human report.
    pub report: String,
    /// When the last cycle ended, ms since epoch.
    pub last_cycle_ms: u64,
    /// How stale a last cycle may be before `/healthz` fails, in ms.
    pub healthy_within_ms: u64,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {message}")]
pub struct HttpError {
    /// The address.
    pub addr: SocketAddr,
    /// What failed.
    pub message: String,
}

/// A running HTTP server; stops when dropped.
#[derive(Debug)]
pub struct HttpServer {
    _server: monitor_core::http::HttpServer,
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
}

impl HttpServer {
    /// Binds `addr` and serves `published` on one thread; `POST /-/reload` sends a request to
    /// `reload` and answers with its outcome; `query` answers `/api/v1/...`.
    ///
    /// # Errors
    ///
    /// The address cannot be bound.
    pub fn start(
        addr: SocketAddr,
        published: Arc<RwLock<Published>>,
        reload: Sender<ReloadRequest>,
        query: QueryApi,
    ) -> Result<Self, HttpError> {
        let server = monitor_core::http::HttpServer::start(addr, "http", move |request| {
            if request.path == "/-/reload" {
                return reload_page(request, &reload, RELOAD_WAIT);
            }
            if request.path.starts_with("/api/v1/") {
                return query.handle(request, crate::engine::now_ms() as i64);
            }
            let p = published.read().unwrap_or_else(|e| e.into_inner()).clone();
            route(request, &p)
        })
        .map_err(|e| HttpError {
            addr,
            message: e.to_string(),
        })?;
        Ok(Self {
            addr: server.local_addr(),
            _server: server,
        })
    }
}

/// `/-/reload`: asks the run loop to reload and waits, at most `wait`, for the outcome.
fn reload_page(request: &Request<'_>, reload: &Sender<ReloadRequest>, wait: Duration) -> Response {
    const TEXT: &str = "text/plain; charset=utf-8";
    if request.method != "POST" {
        return Response::new(405, TEXT, "method not allowed: use POST /-/reload\n");
    }
    let (reply, outcome) = bounded(1);
    if reload.send(ReloadRequest { reply: Some(reply) }).is_err() {
        return Response::new(503, TEXT, "the host is shutting down; not reloaded\n");
    }
    match outcome.recv_timeout(wait) {
        Ok(Ok(summary)) => Response::new(200, TEXT, format!("{summary}\n")),
        Ok(Err(errors)) => Response::new(
            400,
            TEXT,
            format!("config not reloaded; the running config stays:\n{errors}\n"),
        ),
        Err(RecvTimeoutError::Timeout) => Response::new(
            503,
            TEXT,
            format!(
                "no answer within {wait:?}: the reload happens after the running cycle; \
                 see monitor_host_config_last_reload_successful in /metrics\n"
            ),
        ),
        Err(RecvTimeoutError::Disconnected) => {
            Response::new(503, TEXT, "the host is shutting down; not reloaded\n")
        }
    }
}

fn route(request: &Request<'_>, p: &Published) -> Response {
    let (status, content_type, body) = page(request.path, p);
    Response::new(status, content_type, body)
}

fn page(path: &str, p: &Published) -> (u16, &'static str, String) {
    match path {
        "/metrics" => (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            p.metrics.clone(),
        ),
        "/api/snapshot" => (200, "application/json", p.snapshot.clone()),
        "/api/report" => (200, "text/plain; charset=utf-8", p.report.clone()),
        "/healthz" => {
            let age = crate::engine::now_ms().saturating_sub(p.last_cycle_ms);
            if p.last_cycle_ms > 0 && age <= p.healthy_within_ms {
                (200, "text/plain", "ok\n".into())
            } else {
                (
                    503,
                    "text/plain",
                    format!(
                        "no cycle completed in the last {:?}\n",
                        Duration::from_millis(p.healthy_within_ms)
                    ),
                )
            }
        }
        "/" => (200, "text/html; charset=utf-8", dashboard(&p.report)),
        _ => (
            404,
            "text/plain",
            "not found: try /metrics, /api/snapshot, /api/report, /healthz, POST /-/reload\n"
                .into(),
        ),
    }
}

fn dashboard(report: &str) -> String {
    let escaped = report
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5\">\
         <title>monitor-host</title></head><body><h1>monitor-host</h1>\
         <p><a href=\"/metrics\">/metrics</a> · <a href=\"/api/snapshot\">/api/snapshot</a> · <a href=\"/healthz\">/healthz</a></p>\
         <pre>{escaped}</pre></body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(method: &str) -> Request<'_> {
        Request {
            method,
            path: "/-/reload",
            query: "",
        }
    }

    fn body(r: &Response) -> String {
        String::from_utf8(r.body.clone()).unwrap()
    }

    #[test]
    fn reload_needs_post() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let r = reload_page(&post("GET"), &tx, Duration::ZERO);
        assert_eq!(r.status, 405, "{}", body(&r));
        assert!(rx.is_empty(), "no reload asked");
    }

    #[test]
    fn reload_answers_with_the_outcome_or_503_when_nobody_answers() {
        let (tx, rx) = crossbeam_channel::unbounded::<ReloadRequest>();
        let answer = std::thread::spawn(move || {
            let request = rx.recv().unwrap();
            let error = crate::ConfigError {
                location: crate::config::Location {
                    file: "m.toml".into(),
                    line: 3,
                    column: 1,
                },
                message: "bad".into(),
            };
            let errors = crate::ConfigErrors(vec![error]);
            request.reply.unwrap().send(Err(errors)).unwrap();
            rx
        });
        let r = reload_page(&post("POST"), &tx, Duration::from_secs(60));
        assert_eq!(r.status, 400);
        assert!(body(&r).contains("\nm.toml:3:1: bad\n"), "{}", body(&r));
        // Nobody answers this one: the wait is bounded.
        let _rx = answer.join().unwrap();
        let r = reload_page(&post("POST"), &tx, Duration::from_millis(1));
        assert_eq!(r.status, 503, "{}", body(&r));
    }
}
