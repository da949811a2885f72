//! Serving a registry over HTTP, so a `monitor-host` (or Prometheus) can scrape an application in
//! another process. Enabled by the `http` feature.
//!
//! ```no_run
//! // In the application's main: serve the global registry on loopback.
//! let _exposition = monitor_core::exposition::serve("127.0.0.1:9465").expect("port is free");
//! ```
//!
//! Routes: `/metrics` (Prometheus text format 0.0.4, from [`Registry::write_prometheus`]),
//! `/api/snapshot` (the JSON of [`Registry::snapshot`]), `/api/report` (the text of
//! [`Registry::report`]), `/healthz`; each answers `GET` and `HEAD`, other methods `405` with
//! `Allow`. The [`HttpServer`] runs on background threads with its default limits
//! ([`ServerOptions`]); rendering reads the registry like any snapshot, so recording threads are
//! never blocked.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use crate::http::{HttpServer, Request, Response, ServerOptions};
use crate::registry::{Registry, global};

/// A running exposition server; stops (and joins its thread) when dropped.
#[must_use = "the server stops when this value is dropped"]
#[derive(Debug)]
pub struct Exposition {
    server: HttpServer,
}

impl Exposition {
    /// The bound address (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }
}

/// Serves [`global()`] on `addr`.
///
/// # Errors
///
/// The address does not resolve or cannot be bound.
pub fn serve(addr: impl ToSocketAddrs) -> io::Result<Exposition> {
    serve_registry(global(), addr)
}

/// Serves `registry` on `addr`.
///
/// # Errors
///
/// The address does not resolve or cannot be bound.
pub fn serve_registry(
    registry: &'static Registry,
    addr: impl ToSocketAddrs,
) -> io::Result<Exposition> {
    let options = ServerOptions {
        inline_paths: vec!["/healthz".into()],
        handler_threads: 2,
        ..ServerOptions::default()
    };
    let server = HttpServer::start_with(addr, "monitor-exposition", options, move |request| {
        route(registry, request)
    })?;
    Ok(Exposition { server })
}

fn route(registry: &Registry, request: &Request<'_>) -> Response {
    let known = matches!(
        request.path,
        "/metrics" | "/api/snapshot" | "/api/report" | "/healthz"
    );
    if known && !matches!(request.method, "GET" | "HEAD") {
        return Response::method_not_allowed("GET, HEAD");
    }
    match request.path {
        "/metrics" => {
            let mut out = Vec::new();
            match registry.write_prometheus(&mut out) {
                Ok(()) => Response::new(200, "text/plain; version=0.0.4; charset=utf-8", out),
                Err(e) => Response::new(500, "text/plain", e.to_string()),
            }
        }
        "/api/snapshot" => match serde_json::to_vec(&registry.snapshot()) {
            Ok(json) => Response::new(200, "application/json", json),
            Err(e) => Response::new(500, "text/plain", e.to_string()),
        },
        "/api/report" => Response::new(
            200,
            "text/plain; charset=utf-8",
            registry.report().to_string(),
        ),
        "/healthz" => Response::new(200, "text/plain", "ok\n"),
        _ => Response::new(
            404,
            "text/plain",
            "not found: try /metrics, /api/snapshot or /api/report\n",
        ),
    }
}
