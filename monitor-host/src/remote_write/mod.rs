//! Prometheus remote write 1.0: every collected sample, sent to the backends `[[remote_write]]`
//! names (Prometheus with `--web.enable-remote-write-receiver`, Mimir, Thanos receive,
//! VictoriaMetrics).
//!
//! Each backend has a bounded queue and its own thread. The cycle only ever `try_send`s onto the
//! queue, so a slow or absent backend never delays it. When the queue is full the **oldest**
//! sample is dropped (and counted): a monitor's newest data is worth the most, and backends refuse
//! samples that are too old anyway. The thread takes up to `max_samples_per_send` samples, or what
//! came within `batch_send_deadline`, and POSTs them; connection errors, timeouts, 5xx and 429
//! are retried with exponential back-off (`min_backoff` doubling up to `max_backoff`) for as long
//! as it takes, while newer samples queue behind; any other status drops the request, since the
//! backend will never accept it. At shutdown the queue is flushed for a bounded time; what is left
//! is counted as dropped.

mod proto;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, bounded, unbounded};
use monitor_core::prometheus::label_name;
use monitor_plugin::SampleKind;
use serde::Serialize;

use crate::config::RemoteWriteSpec;
use crate::engine::now_ms;
use crate::render::family_name;
use crate::store::SeriesKey;

/// How long the queue is flushed for when the host stops ([`Engine::shutdown`]), or when an
/// engine is dropped without it.
///
/// [`Engine::shutdown`]: crate::Engine::shutdown
pub const FLUSH_LIMIT: Duration = Duration::from_secs(5);

const USER_AGENT: &str = concat!("monitor-host/", env!("CARGO_PKG_VERSION"));

/// One backend's figures, as `/metrics` shows them (`monitor_remote_write_*{remote="..."}`).
#[derive(Debug, Clone, Serialize)]
pub struct RemoteWriteStatus {
    /// `name`, or the url.
    pub remote: String,
    /// Where requests go.
    pub url: String,
    /// Samples the backend accepted.
    pub samples_sent: u64,
    /// Samples in requests the backend refused for good (a 4xx other than 429).
    pub samples_failed: u64,
    /// Samples dropped unsent: the queue was full, or the host stopped before they went out.
    pub samples_dropped: u64,
    /// Requests sent again after a connection error, a timeout, a 5xx or a 429.
    pub retries: u64,
    /// Samples waiting, including those of the request being filled or sent.
    pub queue_length: u64,
    /// When the backend last accepted a request, ms since the Unix epoch.
    pub last_send_ms: Option<u64>,
}

/// A sample on its way: converted to the wire form on the sending thread, not in the cycle.
#[derive(Debug)]
struct Pending {
    // Shared with the store: a sample costs no copy of its key.
    key: Arc<SeriesKey>,
    kind: SampleKind,
    ts_ms: u64,
    value: f64,
}

// Counters written by one side and read for display only: `Relaxed` throughout.
#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    retries: AtomicU64,
    in_hand: AtomicU64,
    // 0: never.
    last_send_ms: AtomicU64,
}

/// Every `[[remote_write]]` backend of an engine; empty when there is none (or in a dry run).
#[derive(Debug, Default)]
pub struct RemoteWrite {
    writers: Vec<Writer>,
    // What the writers were started from, to tell whether a reloaded config changes them.
    specs: Vec<RemoteWriteSpec>,
}

/// The cycle's side of one backend.
#[derive(Debug)]
struct Writer {
    remote: String,
    url: String,
    // `None` once closed: dropping the sender is what tells the thread to flush and stop.
    tx: Option<Sender<Pending>>,
    // The queue's other end, kept to drop the oldest sample when it is full.
    rx: Receiver<Pending>,
    capacity: usize,
    // Carries the flush deadline at shutdown; dropped right after.
    stop: Option<Sender<Instant>>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl RemoteWrite {
    /// Starts one sending thread per backend.
    pub fn start(specs: &[RemoteWriteSpec]) -> Self {
        let writers = specs
            .iter()
            .map(|spec| {
                let (mut writer, shipper) = Writer::new(spec);
                let spawned = thread::Builder::new()
                    .name(format!("remote-write-{}", spec.name))
                    .spawn(move || shipper.run());
                match spawned {
                    Ok(handle) => writer.thread = Some(handle),
                    Err(e) => tracing::error!(
                        remote = %spec.name,
                        error = %e,
                        "remote write thread not started; its samples will be dropped"
                    ),
                }
                writer
            })
            .collect();
        Self {
            writers,
            specs: specs.to_vec(),
        }
    }

    /// Whether `specs` would start exactly these writers (positions in the config file aside).
    pub fn runs(&self, specs: &[RemoteWriteSpec]) -> bool {
        let key = |s: &RemoteWriteSpec| {
            (
                s.name.clone(),
                s.url.clone(),
                s.timeout,
                s.queue_capacity,
                s.max_samples_per_send,
                s.batch_send_deadline,
                s.min_backoff,
                s.max_backoff,
                s.headers.clone(),
                s.labels.clone(),
            )
        };
        self.specs.len() == specs.len()
            && self.specs.iter().zip(specs).all(|(a, b)| key(a) == key(b))
    }

    /// Queues a collected sample for every backend, never blocking; NaN and the infinities are
    /// sent as they are (Prometheus stores them).
    pub fn push(&self, key: &SeriesKey, kind: SampleKind, ts_ms: u64, value: f64) {
        if !self.writers.is_empty() {
            self.push_shared(&Arc::new(key.clone()), kind, ts_ms, value);
        }
    }

    /// [`push`](Self::push) with the key the store shares: no copy of it.
    pub fn push_shared(&self, key: &Arc<SeriesKey>, kind: SampleKind, ts_ms: u64, value: f64) {
        for w in &self.writers {
            w.push(Pending {
                key: Arc::clone(key),
                kind,
                ts_ms,
                value,
            });
        }
    }

    /// Each backend's figures.
    pub fn statuses(&self) -> Vec<RemoteWriteStatus> {
        self.writers.iter().map(Writer::status).collect()
    }

    /// Stops taking samples and lets every backend deliver what is queued, waiting at most
    /// `limit`; what is still queued then is counted as dropped. A request in flight past the
    /// limit is abandoned with its thread.
    pub fn shutdown(&mut self, limit: Duration) {
        let until = Instant::now() + limit;
        for w in &mut self.writers {
            w.close(until);
        }
        for w in &mut self.writers {
            let Some(handle) = w.thread.take() else {
                continue;
            };
            while !handle.is_finished() && Instant::now() < until {
                thread::sleep(Duration::from_millis(5));
            }
            if handle.is_finished() {
                let _ = handle.join();
            } else {
                tracing::warn!(remote = %w.remote, "remote write still sending at shutdown; abandoned");
            }
        }
    }
}

impl Drop for RemoteWrite {
    fn drop(&mut self) {
        // Without `shutdown`, the threads finish on their own, within `FLUSH_LIMIT`; a no-op after
        // `shutdown`.
        let until = Instant::now() + FLUSH_LIMIT;
        for w in &mut self.writers {
            w.close(until);
        }
    }
}

impl Writer {
    fn new(spec: &RemoteWriteSpec) -> (Writer, Shipper) {
        // Unbounded underneath, bounded by `push`: a bounded channel would allocate all of
        // `queue_capacity` up front (some 7 MB for the default), for a queue that is empty while
        // the backend keeps up.
        let (tx, rx) = unbounded();
        let (stop_tx, stop_rx) = bounded(1);
        let counters = Arc::new(Counters::default());
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .timeout_global(Some(spec.timeout))
                .http_status_as_error(false)
                .max_redirects(0)
                .user_agent(USER_AGENT)
                .build(),
        );
        let shipper = Shipper {
            spec: spec.clone(),
            agent,
            rx: rx.clone(),
            stop: stop_rx,
            counters: Arc::clone(&counters),
            flush_until: None,
            health: Health::Delivering,
        };
        let writer = Writer {
            remote: spec.name.clone(),
            url: spec.url.clone(),
            tx: Some(tx),
            rx,
            capacity: spec.queue_capacity,
            stop: Some(stop_tx),
            counters,
            thread: None,
        };
        (writer, shipper)
    }

    fn push(&self, p: Pending) {
        let Some(tx) = &self.tx else {
            self.counters.dropped.fetch_add(1, Relaxed);
            return;
        };
        // The cycle is the only producer and the thread only takes away, so the queue cannot grow
        // between this check and the send. The thread may take the oldest first: count only what
        // is really dropped.
        if self.rx.len() >= self.capacity && self.rx.try_recv().is_ok() {
            self.counters.dropped.fetch_add(1, Relaxed);
        }
        if tx.send(p).is_err() {
            self.counters.dropped.fetch_add(1, Relaxed);
        }
    }

    fn close(&mut self, until: Instant) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.try_send(until);
        }
        self.tx = None;
    }

    fn status(&self) -> RemoteWriteStatus {
        let c = &self.counters;
        let last = c.last_send_ms.load(Relaxed);
        RemoteWriteStatus {
            remote: self.remote.clone(),
            url: self.url.clone(),
            samples_sent: c.sent.load(Relaxed),
            samples_failed: c.failed.load(Relaxed),
            samples_dropped: c.dropped.load(Relaxed),
            retries: c.retries.load(Relaxed),
            queue_length: self.rx.len() as u64 + c.in_hand.load(Relaxed),
            last_send_ms: (last > 0).then_some(last),
        }
    }
}

/// The state logged on change, so an outage is one warning, not one per retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Delivering,
    Retrying,
    Rejected,
}

enum Outcome {
    Sent,
    Retry(String),
    Reject(String),
}

/// The thread's side of one backend.
struct Shipper {
    spec: RemoteWriteSpec,
    agent: ureq::Agent,
    rx: Receiver<Pending>,
    stop: Receiver<Instant>,
    counters: Arc<Counters>,
    // Set once the host stops: deliver until then, drop what is left after.
    flush_until: Option<Instant>,
    health: Health,
}

impl Shipper {
    fn run(mut self) {
        loop {
            let batch = self.next_batch();
            if !batch.is_empty() {
                self.deliver(batch);
            }
            if let Some(until) = self.flush_until
                && (self.rx.is_empty() || Instant::now() >= until)
            {
                break;
            }
        }
        let left = self.rx.try_iter().count() as u64;
        if left > 0 {
            self.counters.dropped.fetch_add(left, Relaxed);
            tracing::warn!(remote = %self.spec.name, samples = left, "remote write stopped with samples unsent");
        }
    }

    /// Waits for a sample, then takes more until the request is full or `batch_send_deadline`
    /// has passed since the first.
    fn next_batch(&mut self) -> Vec<Pending> {
        let mut batch = match self.rx.recv() {
            Ok(p) => vec![p],
            Err(_) => {
                self.closing();
                return Vec::new();
            }
        };
        let deadline = Instant::now() + self.spec.batch_send_deadline;
        while batch.len() < self.spec.max_samples_per_send {
            // Still waiting, for `queue_length`.
            self.counters.in_hand.store(batch.len() as u64, Relaxed);
            match self.rx.recv_deadline(deadline) {
                Ok(p) => batch.push(p),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    self.closing();
                    break;
                }
            }
        }
        batch
    }

    /// Sends one request until it is accepted, refused for good, or the host stops.
    fn deliver(&mut self, batch: Vec<Pending>) {
        let n = batch.len() as u64;
        self.counters.in_hand.store(n, Relaxed);
        let body = proto::body(&to_series(batch, &self.spec.labels));
        let mut backoff = self.spec.min_backoff;
        loop {
            match self.post(&body) {
                Outcome::Sent => {
                    self.counters.sent.fetch_add(n, Relaxed);
                    self.counters.last_send_ms.store(now_ms(), Relaxed);
                    self.health(Health::Delivering, "");
                    break;
                }
                Outcome::Reject(why) => {
                    self.counters.failed.fetch_add(n, Relaxed);
                    self.health(Health::Rejected, &why);
                    break;
                }
                Outcome::Retry(why) => {
                    self.health(Health::Retrying, &why);
                    if !self.back_off(backoff) {
                        self.counters.dropped.fetch_add(n, Relaxed);
                        break;
                    }
                    self.counters.retries.fetch_add(1, Relaxed);
                    backoff = (backoff * 2).min(self.spec.max_backoff);
                }
            }
        }
        self.counters.in_hand.store(0, Relaxed);
    }

    fn post(&self, body: &[u8]) -> Outcome {
        let mut request = self
            .agent
            .post(&self.spec.url)
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0");
        for (name, value) in &self.spec.headers {
            request = request.header(name, value);
        }
        let mut response = match request.send(body) {
            Ok(r) => r,
            Err(e) => return Outcome::Retry(e.to_string()),
        };
        let status = response.status();
        if status.is_success() {
            return Outcome::Sent;
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(1024)
            .read_to_string()
            .unwrap_or_default();
        let why = format!("HTTP {}: {}", status.as_u16(), text.trim());
        if status.as_u16() == 429 || status.is_server_error() {
            Outcome::Retry(why)
        } else {
            Outcome::Reject(why)
        }
    }

    /// Waits `d` before a retry; `false` when the host is stopping and the flush time is up.
    fn back_off(&mut self, d: Duration) -> bool {
        if self.flush_until.is_none() {
            match self.stop.recv_timeout(d) {
                Err(RecvTimeoutError::Timeout) => return true,
                Ok(until) => self.flush_until = Some(until),
                Err(RecvTimeoutError::Disconnected) => self.closing(),
            }
        }
        let until = self.flush_until.unwrap_or_else(Instant::now);
        if Instant::now() + d >= until {
            return false;
        }
        thread::sleep(d);
        true
    }

    /// The host is stopping: the deadline it sent, or [`FLUSH_LIMIT`] from now.
    fn closing(&mut self) {
        if self.flush_until.is_some() {
            return;
        }
        let until = match self.stop.try_recv() {
            Ok(until) => until,
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => Instant::now() + FLUSH_LIMIT,
        };
        self.flush_until = Some(until);
    }

    fn health(&mut self, now: Health, why: &str) {
        if now == self.health {
            return;
        }
        self.health = now;
        let (remote, url) = (&self.spec.name, &self.spec.url);
        match now {
            Health::Delivering => tracing::info!(%remote, %url, "remote write delivering again"),
            Health::Retrying => tracing::warn!(
                %remote,
                %url,
                error = %why,
                "remote write failing; retrying with back-off while samples queue"
            ),
            Health::Rejected => tracing::warn!(
                %remote,
                %url,
                error = %why,
                "remote write refused by the backend; those samples are dropped: check the backend's limits and the series' labels"
            ),
        }
    }
}

/// A series' labels as sent: `(name, value)`, sorted by name.
type WireLabels = Vec<(String, String)>;

/// A batch as the series of a write request: samples grouped by series, each series' samples
/// oldest first.
fn to_series(batch: Vec<Pending>, external: &BTreeMap<String, String>) -> Vec<proto::TimeSeries> {
    let mut series: BTreeMap<WireLabels, Vec<(i64, f64)>> = BTreeMap::new();
    for p in batch {
        let ts = i64::try_from(p.ts_ms).unwrap_or(i64::MAX);
        series
            .entry(wire_labels(&p.key, p.kind, external))
            .or_default()
            .push((ts, p.value));
    }
    series
        .into_iter()
        .map(|(labels, mut samples)| {
            samples.sort_by_key(|(ts, _)| *ts);
            proto::TimeSeries { labels, samples }
        })
        .collect()
}

/// A series' labels on the wire, sorted by name: `__name__` is the name `/metrics` shows, the
/// sample's labels as valid label names (empty values mean "no label" to Prometheus, so they are
/// left out), and the external labels the sample lacks.
fn wire_labels(
    key: &SeriesKey,
    kind: SampleKind,
    external: &BTreeMap<String, String>,
) -> WireLabels {
    let mut labels: BTreeMap<String, String> = key
        .labels
        .iter()
        .map(|(name, value)| (label_name(name), value.clone()))
        .collect();
    for (name, value) in external {
        labels.entry(name.clone()).or_insert_with(|| value.clone());
    }
    labels.insert("__name__".to_owned(), family_name(&key.name, kind));
    labels.retain(|_, v| !v.is_empty());
    labels.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use monitor_plugin::Labels;

    use super::*;
    use crate::config::Location;

    fn spec(url: &str, capacity: usize) -> RemoteWriteSpec {
        RemoteWriteSpec {
            name: "test".to_owned(),
            url: url.to_owned(),
            timeout: Duration::from_secs(5),
            queue_capacity: capacity,
            max_samples_per_send: 100,
            batch_send_deadline: Duration::from_millis(10),
            min_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
            headers: BTreeMap::from([("X-Scope-OrgID".to_owned(), "team-a".to_owned())]),
            labels: BTreeMap::from([("host".to_owned(), "h1".to_owned())]),
            at: Location::default(),
        }
    }

    #[test]
    fn a_reload_restarts_the_writers_only_when_their_settings_change() {
        let running = RemoteWrite::start(&[spec("http://127.0.0.1:1/api/v1/write", 10)]);
        let mut moved = spec("http://127.0.0.1:1/api/v1/write", 10);
        moved.at = Location {
            line: 40,
            ..Location::default()
        };
        assert!(
            running.runs(&[moved]),
            "a table that only moved is the same"
        );
        assert!(!running.runs(&[spec("http://127.0.0.1:2/api/v1/write", 10)]));
        assert!(!running.runs(&[spec("http://127.0.0.1:1/api/v1/write", 11)]));
        assert!(!running.runs(&[]));
        assert!(RemoteWrite::default().runs(&[]));
    }

    fn key(name: &str, labels: &[(&str, &str)]) -> SeriesKey {
        SeriesKey {
            name: name.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Labels>(),
        }
    }

    fn pending(value: f64) -> Pending {
        Pending {
            key: Arc::new(key("m", &[])),
            kind: SampleKind::Gauge,
            ts_ms: 1,
            value,
        }
    }

    fn pairs(labels: &[(&str, &str)]) -> Vec<(String, String)> {
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn labels_on_the_wire() {
        let external = BTreeMap::from([
            ("host".to_owned(), "h1".to_owned()),
            ("region".to_owned(), "eu".to_owned()),
        ]);
        let k = key(
            "system.cpu.usage",
            &[
                ("collector", "system"),
                ("host", "own"),
                ("core.id", "0"),
                ("empty", ""),
            ],
        );
        assert_eq!(
            wire_labels(&k, SampleKind::Gauge, &external),
            pairs(&[
                ("__name__", "system_cpu_usage"),
                ("collector", "system"),
                ("core_id", "0"),
                ("host", "own"), // the sample's own label wins over the external one
                ("region", "eu"),
            ])
        );
        let k = key("app.requests", &[]);
        assert_eq!(
            wire_labels(&k, SampleKind::Counter, &BTreeMap::new()),
            pairs(&[("__name__", "app_requests_total")])
        );
    }

    #[test]
    fn a_batch_is_grouped_by_series_oldest_first() {
        let at = |name: &str, ts_ms: u64, value: f64| Pending {
            key: Arc::new(key(name, &[])),
            kind: SampleKind::Gauge,
            ts_ms,
            value,
        };
        let series = to_series(
            vec![at("b", 20, 2.0), at("a", 10, 1.0), at("b", 10, 3.0)],
            &BTreeMap::new(),
        );
        assert_eq!(
            series,
            vec![
                proto::TimeSeries {
                    labels: pairs(&[("__name__", "a")]),
                    samples: vec![(10, 1.0)],
                },
                proto::TimeSeries {
                    labels: pairs(&[("__name__", "b")]),
                    samples: vec![(10, 3.0), (20, 2.0)],
                },
            ]
        );
    }

    #[test]
    fn a_full_queue_drops_the_oldest() {
        // No thread takes from the queue: what it holds is what `push` left.
        let (writer, _shipper) = Writer::new(&spec("http://127.0.0.1:1/", 3));
        for v in 0..5 {
            writer.push(pending(f64::from(v)));
        }
        let kept: Vec<f64> = writer.rx.try_iter().map(|p| p.value).collect();
        assert_eq!(kept, [2.0, 3.0, 4.0]);
        assert_eq!(writer.status().samples_dropped, 2);
    }

    /// A one-connection-at-a-time HTTP server answering every request with `status`; returns its
    /// port and the requests it read (head and body).
    fn answering(status: u16) -> (u16, Receiver<(String, Vec<u8>)>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = crossbeam_channel::unbounded();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { return };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    let n = s.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    if buf.len() >= end + 4 + len {
                        break (head, buf[end + 4..end + 4 + len].to_vec());
                    }
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\ncontent-length: 3\r\nconnection: close\r\n\r\nbad"
                );
                let _ = tx.send((head, body));
            }
        });
        (port, rx)
    }

    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_request_carries_the_protocol_headers_and_a_snappy_protobuf_body() {
        let (port, requests) = answering(204);
        let mut rw = RemoteWrite::start(&[spec(&format!("http://127.0.0.1:{port}/write"), 10)]);
        rw.push(&key("up", &[("job", "j")]), SampleKind::Gauge, 1000, 1.0);
        let (head, body) = requests.recv_timeout(Duration::from_secs(20)).unwrap();
        assert!(head.starts_with("post /write http/1.1"), "{head}");
        for h in [
            "content-encoding: snappy",
            "content-type: application/x-protobuf",
            "x-prometheus-remote-write-version: 0.1.0",
            "x-scope-orgid: team-a",
        ] {
            assert!(head.contains(h), "{h} missing in {head}");
        }
        let plain = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let want = proto::encode(&[proto::TimeSeries {
            labels: pairs(&[("__name__", "up"), ("host", "h1"), ("job", "j")]),
            samples: vec![(1000, 1.0)],
        }]);
        assert_eq!(plain, want);
        wait_until("the send to be counted", || {
            rw.statuses()[0].samples_sent == 1
        });
        rw.shutdown(Duration::from_secs(5));
        let s = &rw.statuses()[0];
        assert_eq!((s.samples_failed, s.samples_dropped, s.retries), (0, 0, 0));
        assert!(s.last_send_ms.is_some());
    }

    #[test]
    fn shutdown_sends_what_is_queued_without_waiting_for_a_full_request() {
        let (port, requests) = answering(200);
        let mut s = spec(&format!("http://127.0.0.1:{port}/"), 10);
        // A request would otherwise wait an hour for more samples.
        s.batch_send_deadline = Duration::from_secs(3600);
        let mut rw = RemoteWrite::start(&[s]);
        for ts in 1..=3 {
            rw.push(&key("up", &[]), SampleKind::Gauge, ts, 1.0);
        }
        // Taken off the queue into the request being filled, they still count as waiting.
        wait_until("the thread to take the samples", || {
            rw.writers[0].rx.is_empty()
        });
        assert_eq!(rw.statuses()[0].queue_length, 3);
        rw.shutdown(Duration::from_secs(20));
        requests.recv_timeout(Duration::from_secs(20)).unwrap();
        let s = &rw.statuses()[0];
        assert_eq!(
            (s.samples_sent, s.samples_dropped, s.queue_length),
            (3, 0, 0)
        );
        // Closed: later samples are dropped, not queued.
        rw.push(&key("up", &[]), SampleKind::Gauge, 4, 1.0);
        assert_eq!(rw.statuses()[0].samples_dropped, 1);
    }

    #[test]
    fn a_client_error_drops_the_request_without_retrying() {
        let (port, requests) = answering(400);
        let rw = RemoteWrite::start(&[spec(&format!("http://127.0.0.1:{port}/"), 10)]);
        rw.push(&key("up", &[]), SampleKind::Gauge, 1000, 1.0);
        wait_until("the refusal", || rw.statuses()[0].samples_failed == 1);
        // A second sample goes out in a request of its own: the refused one is not sent again.
        rw.push(&key("up", &[]), SampleKind::Gauge, 2000, 1.0);
        wait_until("the second refusal", || {
            rw.statuses()[0].samples_failed == 2
        });
        for _ in 0..2 {
            requests.recv_timeout(Duration::from_secs(20)).unwrap();
        }
        let s = &rw.statuses()[0];
        assert_eq!((s.samples_sent, s.retries, s.queue_length), (0, 0, 0));
    }

    #[test]
    fn a_server_error_is_retried() {
        let (port, requests) = answering(503);
        let mut rw = RemoteWrite::start(&[spec(&format!("http://127.0.0.1:{port}/"), 10)]);
        rw.push(&key("up", &[]), SampleKind::Gauge, 1000, 1.0);
        wait_until("two retries", || rw.statuses()[0].retries >= 2);
        for _ in 0..2 {
            requests.recv_timeout(Duration::from_secs(20)).unwrap();
        }
        let s = &rw.statuses()[0];
        assert_eq!((s.samples_sent, s.samples_failed), (0, 0));
        assert_eq!(s.queue_length, 1);
        // Stopping with the backend still failing: the sample is counted as dropped.
        rw.shutdown(Duration::from_millis(100));
        wait_until("the drop", || rw.statuses()[0].samples_dropped == 1);
        assert_eq!(rw.statuses()[0].samples_sent, 0);
    }
}
