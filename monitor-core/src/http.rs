//! The one HTTP server of the workspace: a background thread that answers
//! requests through a handler, used by [`exposition`](crate::exposition) and
//! by the host. Enabled by the `http` feature.
//!
//! The handler sees the method, path and query of each request and returns a
//! [`Response`]; the server owns the sockets, the accept loop and the
//! `Content-Type` header. Dropping the [`HttpServer`] stops the thread and
//! joins it.
//!
//! ```
//! use monitor_core::http::{HttpServer, Response};
//!
//! let server = HttpServer::start("127.0.0.1:0", "example-http", |request| {
//!     match request.path {
//!         "/hello" => Response::new(200, "text/plain", "hello\n"),
//!         _ => Response::new(404, "text/plain", "not found\n"),
//!     }
//! })?;
//! assert_eq!(server.local_addr().ip().to_string(), "127.0.0.1");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::thread;

use tiny_http::{Header, Server};

/// What the handler is told about a request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path, without the query: `/metrics`.
    pub path: &'a str,
    /// What follows the `?`, empty when there is none.
    pub query: &'a str,
}

/// What the handler answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type` header.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `status`, `content_type` and `body`.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type,
            body: body.into(),
        }
    }
}

/// A running server: one thread answering requests one at a time; stops
/// (and joins its thread) when dropped.
#[must_use = "the server stops when this value is dropped"]
pub struct HttpServer {
    server: Arc<Server>,
    thread: Option<thread::JoinHandle<()>>,
    addr: SocketAddr,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl HttpServer {
    /// Binds `addr` and answers every request with `handler` on a thread
    /// named `thread_name`.
    ///
    /// # Errors
    ///
    /// The address does not resolve or cannot be bound, or the thread cannot
    /// be spawned.
    pub fn start<F>(addr: impl ToSocketAddrs, thread_name: &str, handler: F) -> io::Result<Self>
    where
        F: Fn(&Request<'_>) -> Response + Send + 'static,
    {
        let addr = addr.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "address resolves to nothing")
        })?;
        let server = Server::http(addr).map_err(io::Error::other)?;
        let bound = server.server_addr().to_ip().unwrap_or(addr);
        let server = Arc::new(server);
        let accepting = server.clone();
        let thread = thread::Builder::new()
            .name(thread_name.to_owned())
            .spawn(move || serve(&accepting, &handler))?;
        Ok(Self {
            server,
            thread: Some(thread),
            addr: bound,
        })
    }

    /// The bound address (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The accept loop: until the server is unblocked.
fn serve(server: &Server, handler: &impl Fn(&Request<'_>) -> Response) {
    for request in server.incoming_requests() {
        let method = request.method().to_string();
        let url = request.url().to_owned();
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let response = handler(&Request {
            method: &method,
            path,
            query,
        });
        let mut reply =
            tiny_http::Response::from_data(response.body).with_status_code(response.status);
        // A content type that is not a valid header value is left out rather
        // than failing the request.
        if let Ok(header) = Header::from_bytes("Content-Type", response.content_type) {
            reply.add_header(header);
        }
        // The client may have gone; nothing to do about it here.
        let _ = request.respond(reply);
    }
}
