//! Serving a registry over HTTP, so a `monitor-host` (or Prometheus) can scrape an application in
//! another process. Enabled by the `http` feature.
//!
//! ```no_run
//! // In the application's main: serve the global registry on loopback.
//! let _exposition = monitor_core::exposition::serve("127.0.0.1:9465").expect("port is free");
//! ```
//!
//! Routes: `/metrics` (Prometheus text format 0.0.4, from [`Registry::write_prometheus`]),
//! `/api/snapshot` (the JSON of [`Registry::snapshot`]), `/healthz`. One background thread answers
//! requests one at a time; rendering reads the registry like any snapshot, so recording threads are
//! never blocked.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::thread;

use tiny_http::{Header, Response, Server};

use crate::registry::{Registry, global};

/// A running exposition server; stops (and joins its thread) when dropped.
#[must_use = "the server stops when this value is dropped"]
pub struct Exposition {
    server: Arc<Server>,
    thread: Option<thread::JoinHandle<()>>,
    addr: SocketAddr,
}

impl std::fmt::Debug for Exposition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exposition")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Exposition {
    /// The bound address (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Exposition {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
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
    let addr = addr.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "address resolves to nothing")
    })?;
    let server = Server::http(addr).map_err(io::Error::other)?;
    let bound = server.server_addr().to_ip().unwrap_or(addr);
    let server = Arc::new(server);
    let s = server.clone();
    let thread = thread::Builder::new()
        .name("monitor-exposition".into())
        .spawn(move || {
            for request in s.incoming_requests() {
                let path = request.url().split('?').next().unwrap_or("/").to_owned();
                let (status, ctype, body) = match path.as_str() {
                    "/metrics" => {
                        let mut out = Vec::new();
                        match registry.write_prometheus(&mut out) {
                            Ok(()) => (200, "text/plain; version=0.0.4; charset=utf-8", out),
                            Err(e) => (500, "text/plain", e.to_string().into_bytes()),
                        }
                    }
                    "/api/snapshot" => match serde_json::to_vec(&registry.snapshot()) {
                        Ok(json) => (200, "application/json", json),
                        Err(e) => (500, "text/plain", e.to_string().into_bytes()),
                    },
                    "/healthz" => (200, "text/plain", b"ok\n".to_vec()),
                    _ => (
                        404,
                        "text/plain",
                        b"not found: try /metrics or /api/snapshot\n".to_vec(),
                    ),
                };
                let header =
                    Header::from_bytes("Content-Type", ctype).expect("static header is valid");
                let _ = request.respond(
                    Response::from_data(body)
                        .with_status_code(status)
                        .with_header(header),
                );
            }
        })?;
    Ok(Exposition {
        server,
        thread: Some(thread),
        addr: bound,
    })
}
