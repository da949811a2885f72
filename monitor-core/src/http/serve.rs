//! The server's insides: the accept loop, one task per connection on the socket thread, handlers
//! on the blocking pool, and the I/O wrapper that bounds how long a write may wait for a client.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::time::Sleep;

use super::{Handler, Request, Response, ServerOptions, ServerStats};

/// Shortest and longest pause after an `accept` error.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_secs(1));

/// What every connection task shares.
#[derive(Clone)]
pub(crate) struct Server {
    pub(crate) options: Arc<ServerOptions>,
    pub(crate) handler: Handler,
    pub(crate) stats: Arc<ServerStats>,
}

impl Server {
    /// Accepts connections until `stopped` fires (or its sender is dropped).
    pub(crate) async fn run(self, listener: TcpListener, mut stopped: oneshot::Receiver<()>) {
        let slots = Arc::new(Semaphore::new(self.options.max_connections.max(1)));
        let mut backoff = ACCEPT_BACKOFF.0;
        loop {
            // Over the cap, wait for a connection to close before accepting another.
            let permit = tokio::select! {
                _ = &mut stopped => return,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let accepted = tokio::select! {
                _ = &mut stopped => return,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, _)) => {
                    backoff = ACCEPT_BACKOFF.0;
                    self.stats.connections_total.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(self.clone().connection(stream, permit));
                }
                Err(e) => {
                    // EMFILE and its kind: the connection stays in the listen queue; pause so
                    // the loop does not spin, then try again.
                    self.stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                    if let Some(hook) = &self.options.on_accept_error {
                        hook(&e);
                    }
                    tokio::select! {
                        _ = &mut stopped => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                }
            }
        }
    }

    async fn connection(self, stream: TcpStream, _permit: OwnedSemaphorePermit) {
        let _open = Open::new(&self.stats);
        // Small answers go out at once rather than waiting for the client's acknowledgement.
        let _ = stream.set_nodelay(true);
        #[cfg(feature = "tls")]
        if let Some(config) = self.options.tls.clone() {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            let handshake =
                tokio::time::timeout(self.options.header_read_timeout, acceptor.accept(stream));
            match handshake.await {
                Ok(Ok(tls)) => self.http(tls).await,
                Ok(Err(_)) | Err(_) => {
                    self.stats
                        .tls_handshake_errors
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            return;
        }
        self.http(stream).await;
    }

    async fn http<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let options = self.options.clone();
        let stats = self.stats.clone();
        let io = TokioIo::new(WriteDeadline::new(io, options.write_timeout, stats.clone()));
        let service = hyper::service::service_fn(move |request| {
            let server = self.clone();
            async move { Ok::<_, Infallible>(server.answer(request).await) }
        });
        let served = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(options.header_read_timeout)
            .max_buf_size(options.max_header_bytes.max(8192))
            .max_headers(options.max_headers)
            .title_case_headers(true)
            .serve_connection(io, service)
            .await;
        if let Err(e) = served {
            if e.is_timeout() {
                stats.timeouts.fetch_add(1, Ordering::Relaxed);
            } else if e.is_parse() || e.is_parse_too_large() {
                // hyper has answered 400 or 431.
                stats.requests_rejected.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// One request: its body within the limits, then the handler.
    async fn answer(self, request: hyper::Request<Incoming>) -> hyper::Response<Chunks> {
        let (parts, body) = request.into_parts();
        let limited = Limited::new(body, self.options.max_body_bytes);
        let body =
            match tokio::time::timeout(self.options.body_read_timeout, limited.collect()).await {
                Ok(Ok(collected)) => collected.to_bytes(),
                Ok(Err(e)) => {
                    self.stats.requests_rejected.fetch_add(1, Ordering::Relaxed);
                    return if e.downcast_ref::<LengthLimitError>().is_some() {
                        refuse(413, "request body too large\n")
                    } else {
                        refuse(400, "request body incomplete\n")
                    };
                }
                Err(_) => {
                    self.stats.requests_rejected.fetch_add(1, Ordering::Relaxed);
                    return refuse(408, "request body not received in time\n");
                }
            };
        self.stats.requests_total.fetch_add(1, Ordering::Relaxed);
        let owned = Owned {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or("").to_owned(),
            headers: parts
                .headers
                .iter()
                .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect(),
            body,
        };
        let handler = self.handler.clone();
        if self.options.inline_paths.contains(&owned.path) {
            return to_hyper(owned.call(&*handler));
        }
        match tokio::task::spawn_blocking(move || owned.call(&*handler)).await {
            Ok(response) => to_hyper(response),
            Err(_) => refuse(500, "the handler failed\n"),
        }
    }
}

/// Counts a connection open for as long as it lives.
struct Open(Arc<ServerStats>);

impl Open {
    fn new(stats: &Arc<ServerStats>) -> Self {
        stats.connections_open.fetch_add(1, Ordering::Relaxed);
        Self(stats.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request that can move to a handler thread.
struct Owned {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Owned {
    fn call(&self, handler: &(dyn Fn(&Request<'_>) -> Response + Send + Sync)) -> Response {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        handler(&Request {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            body: &self.body,
        })
    }
}

/// An answer the server gives by itself; the connection closes after it.
fn refuse(status: u16, message: &'static str) -> hyper::Response<Chunks> {
    let mut r = to_hyper(Response::new(status, "text/plain; charset=utf-8", message));
    r.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    r
}

fn to_hyper(response: Response) -> hyper::Response<Chunks> {
    let mut chunks: VecDeque<Bytes> = VecDeque::with_capacity(1 + response.more.len());
    chunks.push_back(response.body);
    chunks.extend(response.more);
    chunks.retain(|c| !c.is_empty());
    let remaining = chunks.iter().map(|c| c.len() as u64).sum();
    let mut out = hyper::Response::new(Chunks { chunks, remaining });
    *out.status_mut() = hyper::StatusCode::from_u16(response.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = out.headers_mut();
    // A content type or header that is not valid is left out rather than failing the request.
    if let Ok(v) = HeaderValue::from_str(response.content_type) {
        headers.insert(CONTENT_TYPE, v);
    }
    for (name, value) in response.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name),
            HeaderValue::try_from(value.as_str()),
        ) {
            headers.append(n, v);
        }
    }
    out
}

/// A response body sent from shared buffers, with its exact length (so `Content-Length` is set).
pub(crate) struct Chunks {
    chunks: VecDeque<Bytes>,
    remaining: u64,
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = self.chunks.pop_front();
        if let Some(c) = &next {
            self.remaining -= c.len() as u64;
        }
        Poll::Ready(next.map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// A connection whose writes fail when the client has not taken any of the pending bytes within
/// `timeout` (a client that asks for a large answer and does not read it).
struct WriteDeadline<I> {
    io: I,
    timeout: Duration,
    // Set while a write waits for the client; cleared by any progress.
    waiting: Option<Pin<Box<Sleep>>>,
    stats: Arc<ServerStats>,
}

impl<I> WriteDeadline<I> {
    fn new(io: I, timeout: Duration, stats: Arc<ServerStats>) -> Self {
        Self {
            io,
            timeout,
            waiting: None,
            stats,
        }
    }

    fn bounded<T>(
        &mut self,
        cx: &mut Context<'_>,
        write: impl FnOnce(Pin<&mut I>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>>
    where
        I: Unpin,
    {
        match write(Pin::new(&mut self.io), cx) {
            Poll::Ready(r) => {
                self.waiting = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let waiting = self
                    .waiting
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if waiting.as_mut().poll(cx).is_ready() {
                    self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client did not read the answer in time",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for WriteDeadline<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.bounded(cx, |io, cx| io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.bounded(cx, |io, cx| io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.bounded(cx, AsyncWrite::poll_flush)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.bounded(cx, AsyncWrite::poll_shutdown)
    }
}
