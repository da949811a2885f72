//! HTTP: `/metrics`, `/api/snapshot`, `/healthz` and a small dashboard at `/`.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use monitor_core::http::{Request, Response};

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
    /// Binds `addr` and serves `published` on one thread.
    ///
    /// # Errors
    ///
    /// The address cannot be bound.
    pub fn start(addr: SocketAddr, published: Arc<RwLock<Published>>) -> Result<Self, HttpError> {
        let server = monitor_core::http::HttpServer::start(addr, "http", move |request| {
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
            "not found: try /metrics, /api/snapshot, /api/report, /healthz\n".into(),
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
