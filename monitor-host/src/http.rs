//! HTTP: `/metrics`, `/api/snapshot`, `/api/overview`, `/api/healing`, `/healthz`, `POST /-/reload`, the query API
//! under `/api/v1/`, silences and alert history (`/api/silences`, `/api/alerts/history`, see
//! [`silence::api`](crate::silence::api)) and the dashboard at `/`.
//!
//! Served by [`monitor_core::http`] with its default limits; handlers run on a small pool of
//! threads, `/healthz` on the socket thread, so a request waiting on the run loop or a client that
//! does not read its answer never holds up the others. Each route answers `GET` and `HEAD` (`/-/reload`
//! `POST`), other methods `405` with `Allow`. With `[host] http_auth`, every request needs those
//! credentials (`401` with `WWW-Authenticate` otherwise); with `tls_cert_file` and `tls_key_file`,
//! the server speaks HTTPS only. The server's own counters close `/metrics`:
//! `monitor_host_http_accept_errors_total`, `monitor_host_http_connections_open`, ...

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};
use monitor_core::http::{Bytes, Request, Response, ServerOptions, ServerStats};

use crate::engine::Engine;
use crate::query::QueryApi;
use crate::run::ReloadRequest;

/// How long `POST /-/reload` waits for the run loop (which reloads between cycles) before answering
/// 503.
pub const RELOAD_WAIT: Duration = Duration::from_secs(30);

/// How long a request for a view waits for the run loop when no earlier rendering can be served
/// (before the first cycle ends).
pub const VIEW_WAIT: Duration = Duration::from_secs(30);

/// A question (or a change, such as a new silence) for the run loop, which owns the engine: it
/// runs the closure between cycles.
pub type Ask = Box<dyn FnOnce(&mut Engine) + Send>;

/// A view of the engine that is rendered on request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// `/metrics`: Prometheus text.
    Metrics,
    /// `/api/snapshot`: JSON.
    Snapshot,
    /// `/api/report`: the human report.
    Report,
    /// `/api/overview`: JSON for the dashboard, without series points.
    Overview,
    /// `/api/v1/rules`: the rule groups, in Prometheus's shape.
    Rules,
    /// `/api/v1/alerts`: the pending and firing alerts, in Prometheus's shape.
    Alerts,
}

impl View {
    fn index(self) -> usize {
        self as usize
    }

    fn render(self, engine: &Engine) -> Bytes {
        match self {
            Self::Metrics => crate::render::prometheus(engine),
            Self::Snapshot => crate::render::snapshot_json(engine),
            Self::Report => crate::render::report(engine),
            Self::Overview => crate::render::overview_json(engine),
            Self::Rules => {
                let rules = engine.alerts().prometheus_rules(engine.host().interval);
                return serde_json::to_vec(&rules).unwrap_or_default().into();
            }
            Self::Alerts => {
                let alerts = engine.alerts().prometheus_alerts();
                return serde_json::to_vec(&alerts).unwrap_or_default().into();
            }
        }
        .into()
    }
}

#[derive(Debug, Clone)]
struct Rendered {
    generation: u64,
    // Shared by every answer until the next rendering: never copied per request.
    text: Bytes,
}

/// What the HTTP thread serves, shared with the run loop.
///
/// Nothing is rendered unless a client asks: rendering every view after every cycle cost most of
/// the host's CPU at 10,000 series. A request for a view is answered from the last rendering when
/// the engine has not changed since (so N scrapers in one interval cost one rendering) or while a
/// cycle runs (so a request never waits on collectors); otherwise the HTTP thread asks the run
/// loop, which renders between cycles. `/healthz` reads two numbers and the last cycle's trouble
/// (see [`render::trouble`](crate::render::trouble)), and never waits on the engine.
#[derive(Debug)]
pub struct Published {
    // When the last cycle ended, ms since epoch (0: none yet).
    last_cycle_ms: AtomicU64,
    // How stale a last cycle may be before `/healthz` fails, in ms.
    healthy_within_ms: AtomicU64,
    // Why `/healthz` fails although cycles run (a store that cannot be written), as of the last
    // cycle.
    trouble: Mutex<Option<String>>,
    // Bumped by the run loop whenever the engine's state changes; shared with the closures the
    // loop runs, which read it on the loop's thread, in step with the state they render.
    generation: Arc<AtomicU64>,
    // True while a cycle runs.
    busy: AtomicBool,
    // True once the run loop has stopped answering.
    stopped: AtomicBool,
    renders: AtomicU64,
    cache: Mutex<[Option<Rendered>; 6]>,
    asks: (Sender<Ask>, Receiver<Ask>),
    // The engine's healing analytics, known once the run loop has published.
    healing: OnceLock<Arc<crate::healing_log::HealingAnalytics>>,
    // What the learning thread found (`/api/patterns`, `/api/forecasts`, `/api/anomalies`).
    learned: OnceLock<Arc<crate::learn::Reports>>,
}

impl Default for Published {
    fn default() -> Self {
        Self {
            last_cycle_ms: AtomicU64::new(0),
            healthy_within_ms: AtomicU64::new(0),
            trouble: Mutex::new(None),
            generation: Arc::new(AtomicU64::new(0)),
            busy: AtomicBool::new(true),
            stopped: AtomicBool::new(false),
            renders: AtomicU64::new(0),
            cache: Mutex::new([None, None, None, None, None, None]),
            asks: unbounded(),
            healing: OnceLock::new(),
            learned: OnceLock::new(),
        }
    }
}

impl Published {
    /// Serves what the learning thread finds; set once, later calls are ignored.
    pub fn serve_learned(&self, reports: Arc<crate::learn::Reports>) {
        let _ = self.learned.set(reports);
    }

    /// Notes that a cycle is starting: views are served from earlier renderings meanwhile.
    pub fn cycle_started(&self) {
        self.busy.store(true, Ordering::Release);
    }

    /// Notes that the engine changed (a cycle ended, a reload, a plugin call finished):
    /// the next request for a view renders it again. `cycle` says whether a cycle ended.
    pub fn changed(&self, engine: &Engine, cycle: bool) {
        self.healing
            .get_or_init(|| engine.healing_analytics().clone());
        if cycle {
            self.last_cycle_ms
                .store(crate::engine::now_ms(), Ordering::Release);
            // Three missed intervals plus the longest possible cycle is unhealthy.
            let within = 3 * engine.host().interval.as_millis() as u64 + 60_000;
            self.healthy_within_ms.store(within, Ordering::Release);
            let trouble = crate::render::trouble(engine);
            *self.trouble.lock().unwrap_or_else(|e| e.into_inner()) = trouble;
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.busy.store(false, Ordering::Release);
    }

    /// Renders again, now, every view that has been asked for before, so that what was just done
    /// (a reload) shows in the answers that follow, even those served while the next cycle runs.
    pub fn refresh(&self, engine: &Engine) {
        let generation = self.generation.load(Ordering::Acquire);
        for view in [
            View::Metrics,
            View::Snapshot,
            View::Report,
            View::Overview,
            View::Rules,
            View::Alerts,
        ] {
            if self.lock()[view.index()].is_none() {
                continue;
            }
            let text = view.render(engine);
            self.renders.fetch_add(1, Ordering::Relaxed);
            self.lock()[view.index()] = Some(Rendered { generation, text });
        }
    }

    /// Notes that the run loop stopped: requests no longer wait for it.
    pub fn stopped(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    /// Where the run loop takes questions from.
    pub fn asks(&self) -> &Receiver<Ask> {
        &self.asks.1
    }

    /// Runs `f` on the engine between cycles and returns its answer, or `None` when the run loop
    /// does not answer within `wait` (or has stopped).
    pub fn ask<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> T + Send + 'static,
        wait: Duration,
    ) -> Option<T> {
        if self.stopped.load(Ordering::Acquire) {
            return None;
        }
        let (reply, answer) = bounded(1);
        let ask: Ask = Box::new(move |engine| {
            // The asker may have given up waiting.
            let _ = reply.send(f(engine));
        });
        self.asks.0.send(ask).ok()?;
        answer.recv_timeout(wait).ok()
    }

    /// Like [`ask`](Self::ask), for a change to the engine: the views are rendered again
    /// afterwards. A change the asker stopped waiting for is still made.
    pub fn ask_mut<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Engine) -> T + Send + 'static,
        wait: Duration,
    ) -> Option<T> {
        if self.stopped.load(Ordering::Acquire) {
            return None;
        }
        let (reply, answer) = bounded(1);
        let generation = self.generation.clone();
        let ask: Ask = Box::new(move |engine| {
            let out = f(engine);
            generation.fetch_add(1, Ordering::AcqRel);
            let _ = reply.send(out);
        });
        self.asks.0.send(ask).ok()?;
        answer.recv_timeout(wait).ok()
    }

    /// The text of `view`: the last rendering when it is still current or a cycle is running,
    /// otherwise a new one from the run loop. `None` when there is none and the run loop does not
    /// answer within `wait`.
    pub fn view(&self, view: View, wait: Duration) -> Option<Bytes> {
        let generation = self.generation.load(Ordering::Acquire);
        let last = self.lock()[view.index()].clone();
        if let Some(r) = &last
            && (r.generation == generation || self.busy.load(Ordering::Acquire))
        {
            return Some(r.text.clone());
        }
        let current = self.generation.clone();
        let fresh = self.ask(
            move |engine| Rendered {
                generation: current.load(Ordering::Acquire),
                text: view.render(engine),
            },
            wait,
        );
        let Some(fresh) = fresh else {
            return last.map(|r| r.text);
        };
        self.renders.fetch_add(1, Ordering::Relaxed);
        let text = fresh.text.clone();
        self.lock()[view.index()] = Some(fresh);
        Some(text)
    }

    /// The healing analytics, once the run loop has published (computed on the asking thread,
    /// never on the run loop's).
    pub fn healing(&self) -> Option<&Arc<crate::healing_log::HealingAnalytics>> {
        self.healing.get()
    }

    /// How many views were rendered.
    pub fn renders(&self) -> u64 {
        self.renders.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, [Option<Rendered>; 6]> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
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
    server: monitor_core::http::HttpServer,
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
}

/// Who may use the server and how it is reached: from `[host]`.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// Credentials every request must carry.
    pub auth: Option<crate::auth::HttpAuth>,
    /// HTTPS instead of HTTP.
    pub tls: Option<Arc<monitor_core::http::tls::ServerConfig>>,
}

impl Security {
    /// The `[host]` settings.
    pub fn of(host: &crate::config::HostConfig) -> Self {
        Self {
            auth: host.http_auth.clone(),
            tls: host.tls.clone(),
        }
    }
}

impl HttpServer {
    /// Binds `addr` and serves `published`; `POST /-/reload` sends a request to `reload` and
    /// answers with its outcome; `query` answers `/api/v1/...`; `security` says who may ask.
    /// Logs a warning when `addr` is beyond loopback without credentials or without TLS.
    ///
    /// # Errors
    ///
    /// The address cannot be bound.
    pub fn start(
        addr: SocketAddr,
        published: Arc<Published>,
        reload: Sender<ReloadRequest>,
        query: QueryApi,
        security: Security,
    ) -> Result<Self, HttpError> {
        warn_if_exposed(addr, &security);
        let mut options = ServerOptions::default();
        options.inline_paths = vec!["/healthz".into()];
        options.tls = security.tls;
        options.on_accept_error = Some(Arc::new(|e: &std::io::Error| {
            tracing::warn!(
                error = %e,
                "http: cannot accept a connection ({e}); retrying with back-off \
                 (see monitor_host_http_accept_errors_total)"
            );
        }));
        let stats: Arc<OnceLock<Arc<ServerStats>>> = Arc::default();
        let shared = stats.clone();
        let auth = security.auth;
        let handler = move |request: &Request<'_>| {
            if let Some(auth) = &auth
                && !auth.allows(request)
            {
                return auth.challenge();
            }
            if request.path == "/-/reload" {
                return reload_page(request, &reload, RELOAD_WAIT);
            }
            if let Some(response) = crate::silence::api::handle(request, &published) {
                return response;
            }
            if let Some(response) = crate::incident::api::handle(request, &published) {
                return response;
            }
            if matches!(request.path, "/api/v1/rules" | "/api/v1/alerts") {
                return route(request, &published);
            }
            if request.path.starts_with("/api/v1/") {
                return query.handle(request, crate::engine::now_ms() as i64);
            }
            if request.path == "/api/healing" {
                return healing_page(request, &published);
            }
            if let Some(response) = (published.learned.get()).and_then(|l| l.handle(request)) {
                return response;
            }
            if let Some(page) = crate::dashboard::handle(request) {
                return page;
            }
            let mut response = route(request, &published);
            if request.path == "/metrics"
                && response.status == 200
                && let Some(h) = published.healing()
            {
                response = response.then(h.metrics(crate::engine::now_ms()));
            }
            match (request.path, shared.get()) {
                ("/metrics", Some(s)) if response.status == 200 => {
                    response.then(s.prometheus("monitor_host_http"))
                }
                _ => response,
            }
        };
        let server = monitor_core::http::HttpServer::start_with(addr, "http", options, handler)
            .map_err(|e| HttpError {
                addr,
                message: e.to_string(),
            })?;
        let _ = stats.set(server.stats());
        Ok(Self {
            addr: server.local_addr(),
            server,
        })
    }

    /// What the server has seen so far.
    pub fn stats(&self) -> Arc<ServerStats> {
        self.server.stats()
    }
}

/// A listen address beyond loopback without credentials or TLS is worth a line in the log.
fn warn_if_exposed(addr: SocketAddr, security: &Security) {
    if addr.ip().is_loopback() {
        return;
    }
    match (&security.auth, &security.tls) {
        (None, _) => tracing::warn!(
            %addr,
            "http: listening on {addr}, beyond loopback, without [host] http_auth: anyone who \
             reaches it can read every metric and reload the config; set http_auth (and \
             tls_cert_file, tls_key_file) or listen on 127.0.0.1"
        ),
        (Some(_), None) => tracing::warn!(
            %addr,
            "http: listening on {addr}, beyond loopback, without TLS: credentials and metrics \
             cross the network in clear; set tls_cert_file and tls_key_file"
        ),
        (Some(_), Some(_)) => {}
    }
}

/// `/-/reload`: asks the run loop to reload and waits, at most `wait`, for the outcome.
fn reload_page(request: &Request<'_>, reload: &Sender<ReloadRequest>, wait: Duration) -> Response {
    const TEXT: &str = "text/plain; charset=utf-8";
    if request.method != "POST" {
        return Response::method_not_allowed("POST");
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

/// `/api/healing`: the healing report, computed (or taken from its cache) on this thread.
fn healing_page(request: &Request<'_>, p: &Published) -> Response {
    match p.healing() {
        Some(h) => h.handle(request, crate::engine::now_ms()),
        None => Response::new(
            503,
            "text/plain; charset=utf-8",
            "the first cycle is still running; try again\n",
        ),
    }
}

fn route(request: &Request<'_>, p: &Published) -> Response {
    let known = matches!(
        request.path,
        "/metrics"
            | "/api/snapshot"
            | "/api/overview"
            | "/api/report"
            | "/api/v1/rules"
            | "/api/v1/alerts"
            | "/"
            | "/healthz"
    );
    if known && !matches!(request.method, "GET" | "HEAD") {
        return Response::method_not_allowed("GET, HEAD");
    }
    let (status, content_type, body) = page(request.path, p);
    Response::new(status, content_type, body)
}

fn page(path: &str, p: &Published) -> (u16, &'static str, Bytes) {
    const TEXT: &str = "text/plain; charset=utf-8";
    let (view, content_type) = match path {
        "/metrics" => (View::Metrics, "text/plain; version=0.0.4; charset=utf-8"),
        "/api/snapshot" => (View::Snapshot, "application/json"),
        "/api/overview" => (View::Overview, "application/json"),
        "/api/v1/rules" => (View::Rules, "application/json"),
        "/api/v1/alerts" => (View::Alerts, "application/json"),
        "/api/report" => (View::Report, TEXT),
        "/healthz" => return health(p),
        _ => {
            return (
                404,
                "text/plain",
                Bytes::from_static(
                    b"not found: try /metrics, /api/snapshot, /api/overview, /api/report, /healthz, POST /-/reload\n",
                ),
            );
        }
    };
    let Some(text) = p.view(view, VIEW_WAIT) else {
        let message = format!(
            "no view within {VIEW_WAIT:?}: the first cycle is still running or the host is \
             stopping; try again\n"
        );
        return (503, TEXT, message.into());
    };
    (200, content_type, text)
}

/// `/healthz`: whether a cycle ended recently and the last cycles could be stored (see
/// [`render::trouble`](crate::render::trouble)). Never waits on the engine.
fn health(p: &Published) -> (u16, &'static str, Bytes) {
    let last = p.last_cycle_ms.load(Ordering::Acquire);
    let within = p.healthy_within_ms.load(Ordering::Acquire);
    let age = crate::engine::now_ms().saturating_sub(last);
    if last == 0 {
        return (
            503,
            "text/plain",
            Bytes::from_static(b"starting: no cycle has completed yet\n"),
        );
    }
    if age > within {
        let message = format!(
            "cycle stalled: no cycle completed in the last {:?} (the last one ended {:?} ago)\n",
            Duration::from_millis(within),
            Duration::from_millis(age)
        );
        return (503, "text/plain", message.into());
    }
    match &*p.trouble.lock().unwrap_or_else(|e| e.into_inner()) {
        Some(why) => (503, "text/plain", format!("{why}\n").into()),
        None => (200, "text/plain", Bytes::from_static(b"ok\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(method: &str) -> Request<'_> {
        Request {
            method,
            path: "/-/reload",
            ..Request::default()
        }
    }

    fn body(r: &Response) -> String {
        String::from_utf8(r.body.to_vec()).unwrap()
    }

    #[test]
    fn health_tells_starting_from_stalled() {
        let p = Published::default();
        let (status, _, text) = health(&p);
        assert_eq!(status, 503);
        assert!(text.starts_with(b"starting:"), "{text:?}");
        let now = crate::engine::now_ms();
        p.healthy_within_ms.store(63_000, Ordering::Release);
        p.last_cycle_ms.store(now - 70_000, Ordering::Release);
        let (status, _, text) = health(&p);
        assert_eq!(status, 503);
        let text = String::from_utf8_lossy(&text);
        assert!(text.starts_with("cycle stalled:"), "{text}");
        assert!(
            text.contains("ended 70"),
            "the age of the last cycle: {text}"
        );
        p.last_cycle_ms.store(now, Ordering::Release);
        assert_eq!(health(&p).0, 200);
    }

    #[test]
    fn reload_needs_post() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let r = reload_page(&post("GET"), &tx, Duration::ZERO);
        assert_eq!(r.status, 405, "{}", body(&r));
        assert_eq!(r.headers, vec![("Allow", "POST".to_owned())]);
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
