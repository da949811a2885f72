//! HTTP: `/metrics`, `/api/snapshot`, `/healthz`, `POST /-/reload`, the query API under `/api/v1/`
//! and a small dashboard at `/`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};
use monitor_core::http::{Request, Response};

use crate::engine::Engine;
use crate::query::QueryApi;
use crate::run::ReloadRequest;

/// How long `POST /-/reload` waits for the run loop (which reloads between cycles) before answering
/// 503; requests are served one at a time, so this bounds how long the others wait too.
pub const RELOAD_WAIT: Duration = Duration::from_secs(30);

/// How long a request for a view waits for the run loop when no earlier rendering can be served
/// (before the first cycle ends); requests are served one at a time, so this bounds how long the
/// others wait too.
pub const VIEW_WAIT: Duration = Duration::from_secs(30);

/// A question for the run loop, which owns the engine: it runs the closure between cycles.
pub type Ask = Box<dyn FnOnce(&Engine) + Send>;

/// A view of the engine that is rendered on request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// `/metrics`: Prometheus text.
    Metrics,
    /// `/api/snapshot`: JSON.
    Snapshot,
    /// `/api/report` and the dashboard: the human report.
    Report,
}

impl View {
    fn index(self) -> usize {
        self as usize
    }

    fn render(self, engine: &Engine) -> String {
        match self {
            Self::Metrics => crate::render::prometheus(engine),
            Self::Snapshot => crate::render::snapshot_json(engine),
            Self::Report => crate::render::report(engine),
        }
    }
}

#[derive(Debug, Clone)]
struct Rendered {
    generation: u64,
    text: Arc<String>,
}

/// What the HTTP thread serves, shared with the run loop.
///
/// Nothing is rendered unless a client asks: rendering every view after every cycle cost most of
/// the host's CPU at 10,000 series. A request for a view is answered from the last rendering when
/// the engine has not changed since (so N scrapers in one interval cost one rendering) or while a
/// cycle runs (so a request never waits on collectors); otherwise the HTTP thread asks the run
/// loop, which renders between cycles. `/healthz` reads two numbers and never waits.
#[derive(Debug)]
pub struct Published {
    // When the last cycle ended, ms since epoch (0: none yet).
    last_cycle_ms: AtomicU64,
    // How stale a last cycle may be before `/healthz` fails, in ms.
    healthy_within_ms: AtomicU64,
    // Bumped by the run loop whenever the engine's state changes; shared with the closures the
    // loop runs, which read it on the loop's thread, in step with the state they render.
    generation: Arc<AtomicU64>,
    // True while a cycle runs.
    busy: AtomicBool,
    // True once the run loop has stopped answering.
    stopped: AtomicBool,
    renders: AtomicU64,
    cache: Mutex<[Option<Rendered>; 3]>,
    asks: (Sender<Ask>, Receiver<Ask>),
}

impl Default for Published {
    fn default() -> Self {
        Self {
            last_cycle_ms: AtomicU64::new(0),
            healthy_within_ms: AtomicU64::new(0),
            generation: Arc::new(AtomicU64::new(0)),
            busy: AtomicBool::new(true),
            stopped: AtomicBool::new(false),
            renders: AtomicU64::new(0),
            cache: Mutex::new([None, None, None]),
            asks: unbounded(),
        }
    }
}

impl Published {
    /// Notes that a cycle is starting: views are served from earlier renderings meanwhile.
    pub fn cycle_started(&self) {
        self.busy.store(true, Ordering::Release);
    }

    /// Notes that the engine changed (a cycle ended, a reload, a plugin call finished):
    /// the next request for a view renders it again. `cycle` says whether a cycle ended.
    pub fn changed(&self, engine: &Engine, cycle: bool) {
        if cycle {
            self.last_cycle_ms
                .store(crate::engine::now_ms(), Ordering::Release);
            // Three missed intervals plus the longest possible cycle is unhealthy.
            let within = 3 * engine.host().interval.as_millis() as u64 + 60_000;
            self.healthy_within_ms.store(within, Ordering::Release);
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.busy.store(false, Ordering::Release);
    }

    /// Renders again, now, every view that has been asked for before, so that what was just done
    /// (a reload) shows in the answers that follow, even those served while the next cycle runs.
    pub fn refresh(&self, engine: &Engine) {
        let generation = self.generation.load(Ordering::Acquire);
        for view in [View::Metrics, View::Snapshot, View::Report] {
            if self.lock()[view.index()].is_none() {
                continue;
            }
            let text = Arc::new(view.render(engine));
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

    /// The text of `view`: the last rendering when it is still current or a cycle is running,
    /// otherwise a new one from the run loop. `None` when there is none and the run loop does not
    /// answer within `wait`.
    pub fn view(&self, view: View, wait: Duration) -> Option<Arc<String>> {
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
                text: Arc::new(view.render(engine)),
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

    /// How many views were rendered.
    pub fn renders(&self) -> u64 {
        self.renders.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, [Option<Rendered>; 3]> {
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
        published: Arc<Published>,
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
            if let Some(page) = crate::dashboard::handle(request) {
                return page;
            }
            route(request, &published)
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
    const TEXT: &str = "text/plain; charset=utf-8";
    let (view, content_type) = match path {
        "/metrics" => (View::Metrics, "text/plain; version=0.0.4; charset=utf-8"),
        "/api/snapshot" => (View::Snapshot, "application/json"),
        "/api/report" | "/" => (View::Report, TEXT),
        "/healthz" => return health(p),
        _ => {
            return (
                404,
                "text/plain",
                "not found: try /metrics, /api/snapshot, /api/report, /healthz, POST /-/reload\n"
                    .into(),
            );
        }
    };
    let Some(text) = p.view(view, VIEW_WAIT) else {
        let message = format!(
            "no view within {VIEW_WAIT:?}: the first cycle is still running or the host is \
             stopping; try again\n"
        );
        return (503, TEXT, message);
    };
    if path == "/" {
        return (200, "text/html; charset=utf-8", dashboard(&text));
    }
    (200, content_type, String::clone(&text))
}

/// `/healthz`: whether a cycle ended recently. Never waits on the engine.
fn health(p: &Published) -> (u16, &'static str, String) {
    let last = p.last_cycle_ms.load(Ordering::Acquire);
    let within = p.healthy_within_ms.load(Ordering::Acquire);
    let age = crate::engine::now_ms().saturating_sub(last);
    if last > 0 && age <= within {
        (200, "text/plain", "ok\n".into())
    } else {
        (
            503,
            "text/plain",
            format!(
                "no cycle completed in the last {:?}\n",
                Duration::from_millis(within)
            ),
        )
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
