//! The one HTTP server of the workspace, used by [`exposition`](crate::exposition) and by the
//! host. Enabled by the `http` feature (HTTP/1.1 on hyper and a small tokio runtime); the `tls`
//! feature adds HTTPS through rustls (the `tls` module).
//!
//! The handler is a plain synchronous closure: it sees the method, path, query, headers and body
//! of each request and returns a [`Response`]. It may block (a database read, waiting for another
//! thread): handlers run on a bounded pool of threads ([`ServerOptions::handler_threads`]), apart
//! from the thread that owns the sockets, so a slow handler or a client that does not read its
//! answer never stalls the others. Paths named in [`ServerOptions::inline_paths`] (a health check)
//! are answered on the socket thread itself and so answer even when every handler thread is busy.
//!
//! What a client can cost is bounded ([`ServerOptions`]): the size and number of request headers
//! (over them: `431`), the time to send the request head (slowloris: the connection is closed),
//! the size of the body (`413`) and the time to send it (`408`), the time a written answer may
//! wait for the client to read it, and the number of open connections. An `accept` error (`EMFILE`
//! when file descriptors run out) is counted ([`ServerStats`]), reported to
//! [`ServerOptions::on_accept_error`] and retried with back-off; it never ends the server.
//! Dropping the [`HttpServer`] stops it and joins its thread.
//!
//! ```
//! use monitor_core::http::{HttpServer, Response};
//!
//! let server = HttpServer::start("127.0.0.1:0", "example-http", |request| {
//!     match (request.method, request.path) {
//!         ("GET" | "HEAD", "/hello") => Response::new(200, "text/plain", "hello\n"),
//!         (_, "/hello") => Response::new(405, "text/plain", "use GET\n").with_header("Allow", "GET, HEAD"),
//!         _ => Response::new(404, "text/plain", "not found\n"),
//!     }
//! })?;
//! assert_eq!(server.local_addr().ip().to_string(), "127.0.0.1");
//! # Ok::<(), std::io::Error>(())
//! ```

mod serve;
#[cfg(feature = "tls")]
pub mod tls;

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

pub use bytes::Bytes;

/// What the handler is told about a request.
///
/// `Request { method, path, query, ..Request::default() }` builds one in tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    /// `GET`, `HEAD`, `POST`, ... (a `HEAD` request's answer is sent without its body).
    pub method: &'a str,
    /// The path, without the query: `/metrics`.
    pub path: &'a str,
    /// What follows the `?`, empty when there is none.
    pub query: &'a str,
    /// The request headers whose values are text, names in lower case.
    pub headers: &'a [(&'a str, &'a str)],
    /// The request body, at most [`ServerOptions::max_body_bytes`].
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// The value of the first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// What the handler answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type` header.
    pub content_type: &'static str,
    /// The body: a shared buffer, so an answer kept for many requests is never copied.
    pub body: Bytes,
    /// Sent after `body`, in order (a cached rendering followed by a few live lines).
    pub more: Vec<Bytes>,
    /// Other headers (`Allow`, `WWW-Authenticate`, ...); ones that are not valid are left out.
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    /// A response with `status`, `content_type` and `body` (a `String`, `Vec<u8>`, `&'static str`
    /// or [`Bytes`]: none is copied).
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            content_type,
            body: body.into(),
            more: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// This response with one more header.
    #[must_use]
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// This response with `more` sent after its body.
    #[must_use]
    pub fn then(mut self, more: impl Into<Bytes>) -> Self {
        self.more.push(more.into());
        self
    }

    /// `405 Method Not Allowed` with the `Allow` header listing `allowed` (`"GET, HEAD"`).
    pub fn method_not_allowed(allowed: &str) -> Self {
        Self::new(
            405,
            "text/plain; charset=utf-8",
            format!("method not allowed: use {allowed}\n"),
        )
        .with_header("Allow", allowed)
    }

    /// The whole body: `body` followed by `more` (a copy when there is `more`).
    pub fn full_body(&self) -> Bytes {
        if self.more.is_empty() {
            return self.body.clone();
        }
        let mut all = self.body.to_vec();
        for m in &self.more {
            all.extend_from_slice(m);
        }
        all.into()
    }
}

/// Called with each `accept` error (from the server's thread; keep it short).
pub type AcceptErrorHook = Arc<dyn Fn(&io::Error) + Send + Sync>;

/// The limits and timeouts of an [`HttpServer`]; [`Default`] gives safe values.
///
/// Fields are set one by one: `let mut o = ServerOptions::default(); o.max_connections = 64;`.
#[derive(Clone)]
#[non_exhaustive]
pub struct ServerOptions {
    /// Most bytes of a request head (request line and headers); over it the answer is `431` and
    /// the connection closes. At least 8 KiB. Default 64 KiB.
    pub max_header_bytes: usize,
    /// Most request headers; over it the answer is `431`. Default 100.
    pub max_headers: usize,
    /// How long a client has to send a whole request head, from the moment the server waits for
    /// it; also how long a kept-alive connection may stay idle. Then the connection is closed.
    /// Default 10 s.
    pub header_read_timeout: Duration,
    /// How long a client has to send a request body once its head arrived; then `408` and the
    /// connection closes. Default 30 s.
    pub body_read_timeout: Duration,
    /// How long a write may wait for the client to read (a client that asks for a large answer and
    /// never reads it); then the connection is closed. Default 30 s.
    pub write_timeout: Duration,
    /// Most bytes of a request body; over it the answer is `413`. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Most connections open at once. Over it the server stops accepting until one closes: new
    /// clients wait in the kernel's listen queue (and may time out there). Default 1,024.
    pub max_connections: usize,
    /// Threads that run the handler (so at most this many requests are handled at once; others
    /// wait for a thread). Default 8.
    pub handler_threads: usize,
    /// Paths whose handler never blocks (`/healthz`): answered on the socket thread, so they
    /// answer even when every handler thread is busy. Default none.
    pub inline_paths: Vec<String>,
    /// Told about each `accept` error (for a log line); the error is counted in
    /// [`ServerStats::accept_errors`] either way. Default none.
    pub on_accept_error: Option<AcceptErrorHook>,
    /// Serve HTTPS with this configuration ([`tls::server_config`]). Default none: plain HTTP.
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_body_bytes: 1024 * 1024,
            max_connections: 1024,
            handler_threads: 8,
            inline_paths: Vec::new(),
            on_accept_error: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ServerOptions");
        d.field("max_header_bytes", &self.max_header_bytes)
            .field("max_headers", &self.max_headers)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_connections", &self.max_connections)
            .field("handler_threads", &self.handler_threads)
            .field("inline_paths", &self.inline_paths)
            .field("on_accept_error", &self.on_accept_error.is_some());
        #[cfg(feature = "tls")]
        d.field("tls", &self.tls.is_some());
        d.finish()
    }
}

/// What a server has seen, counted since it started; shared with [`HttpServer::stats`].
#[derive(Debug, Default)]
pub struct ServerStats {
    pub(crate) accept_errors: AtomicU64,
    pub(crate) connections_open: AtomicU64,
    pub(crate) connections_total: AtomicU64,
    pub(crate) requests_total: AtomicU64,
    pub(crate) requests_rejected: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) tls_handshake_errors: AtomicU64,
}

impl ServerStats {
    /// `accept` calls that failed (`EMFILE`, `ENFILE`, `ENOMEM`, ...).
    pub fn accept_errors(&self) -> u64 {
        self.accept_errors.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn connections_open(&self) -> u64 {
        self.connections_open.load(Ordering::Relaxed)
    }

    /// Connections accepted.
    pub fn connections_total(&self) -> u64 {
        self.connections_total.load(Ordering::Relaxed)
    }

    /// Requests handed to the handler.
    pub fn requests_total(&self) -> u64 {
        self.requests_total.load(Ordering::Relaxed)
    }

    /// Requests refused before the handler: head or body too large (`431`, `413`), body too slow
    /// (`408`), malformed (`400`).
    pub fn requests_rejected(&self) -> u64 {
        self.requests_rejected.load(Ordering::Relaxed)
    }

    /// Connections closed because the client was too slow to send its request head or to read
    /// an answer.
    pub fn timeouts(&self) -> u64 {
        self.timeouts.load(Ordering::Relaxed)
    }

    /// TLS handshakes that failed or timed out.
    pub fn tls_handshake_errors(&self) -> u64 {
        self.tls_handshake_errors.load(Ordering::Relaxed)
    }

    /// These counters in the Prometheus text format, each name starting with `prefix`
    /// (`monitor_host_http`): `<prefix>_accept_errors_total`, `<prefix>_connections_open`, ...
    pub fn prometheus(&self, prefix: &str) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let rows: [(&str, &str, &str, u64); 7] = [
            (
                "accept_errors_total",
                "counter",
                "accept calls that failed (EMFILE...); retried with back-off",
                self.accept_errors(),
            ),
            (
                "connections_open",
                "gauge",
                "HTTP connections open now",
                self.connections_open(),
            ),
            (
                "connections_total",
                "counter",
                "HTTP connections accepted",
                self.connections_total(),
            ),
            (
                "requests_total",
                "counter",
                "HTTP requests handled",
                self.requests_total(),
            ),
            (
                "requests_rejected_total",
                "counter",
                "HTTP requests refused for their size, slowness or form (431, 413, 408, 400)",
                self.requests_rejected(),
            ),
            (
                "timeouts_total",
                "counter",
                "HTTP connections closed for a client too slow to send or to read",
                self.timeouts(),
            ),
            (
                "tls_handshake_errors_total",
                "counter",
                "TLS handshakes that failed or timed out",
                self.tls_handshake_errors(),
            ),
        ];
        for (name, kind, help, value) in rows {
            let _ = write!(
                out,
                "# HELP {prefix}_{name} {help}\n# TYPE {prefix}_{name} {kind}\n{prefix}_{name} {value}\n"
            );
        }
        out
    }
}

/// A running server: a thread that owns the sockets and a pool of handler threads; stops (and
/// joins its thread) when dropped.
#[must_use = "the server stops when this value is dropped"]
pub struct HttpServer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
    addr: SocketAddr,
    stats: Arc<ServerStats>,
}

impl fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// The handler as the server keeps it.
pub(crate) type Handler = Arc<dyn Fn(&Request<'_>) -> Response + Send + Sync>;

impl HttpServer {
    /// Binds `addr` and answers every request with `handler`, with the default
    /// [`ServerOptions`]; the socket thread is named `thread_name`.
    ///
    /// # Errors
    ///
    /// The address does not resolve or cannot be bound, or the thread cannot be spawned.
    pub fn start<F>(addr: impl ToSocketAddrs, thread_name: &str, handler: F) -> io::Result<Self>
    where
        F: Fn(&Request<'_>) -> Response + Send + Sync + 'static,
    {
        Self::start_with(addr, thread_name, ServerOptions::default(), handler)
    }

    /// Binds `addr` and answers every request with `handler` within the limits of `options`.
    ///
    /// # Errors
    ///
    /// The address does not resolve or cannot be bound, or the threads cannot be spawned.
    pub fn start_with<F>(
        addr: impl ToSocketAddrs,
        thread_name: &str,
        options: ServerOptions,
        handler: F,
    ) -> io::Result<Self>
    where
        F: Fn(&Request<'_>) -> Response + Send + Sync + 'static,
    {
        let addr = addr.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "address resolves to nothing")
        })?;
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let bound = listener.local_addr()?;
        let stats = Arc::new(ServerStats::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .max_blocking_threads(options.handler_threads.max(1))
            .thread_name(format!("{thread_name}-handler"))
            .build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let server = serve::Server {
            options: Arc::new(options),
            handler: Arc::new(handler),
            stats: stats.clone(),
        };
        let thread = thread::Builder::new()
            .name(thread_name.to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => server.run(listener, stopped).await,
                        // Only when the runtime has no reactor, which it has.
                        Err(e) => eprintln!("http server: cannot register the listener: {e}"),
                    }
                });
                // A handler still running (waiting on another thread) is left to finish alone.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
            addr: bound,
            stats,
        })
    }

    /// The bound address (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the server has seen so far.
    pub fn stats(&self) -> Arc<ServerStats> {
        self.stats.clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The thread may have ended already.
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
