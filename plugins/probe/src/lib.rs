//! `probe` collector: is a service answering? (Monit's `if failed port ... protocol http`.)
//!
//! A list of probes, each named: `http` (a GET over `http://` or `https://`, its status code and
//! optionally its body checked), `tcp` (a connection to `host:port`) and `command` (`sh -c`,
//! exit status 0). All probes of a collection run at once, each on its own thread, and the
//! collection waits at most its `timeout` for them; a probe without a result by then is down.
//!
//! Per probe (labels `probe` = its name, `kind`): `probe.up` (1/0), `probe.latency_seconds`,
//! `probe.http.status_code` (http, when it answered) and `probe.tls.cert_expiry_seconds` (https:
//! seconds until the leaf certificate's `notAfter`, negative once expired). A probe that goes down
//! gives a `probe_failed` event with the reason; one that comes back gives `probe_recovered`.

mod cert;
mod command;
mod config;
mod http;
mod outcome;
mod tcp;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use monitor_plugin::{Collection, Collector, Event, PluginError, Sample, parse_config};

use crate::config::{Probe, Settings};
use crate::http::Http;
use crate::outcome::Outcome;

/// A probe ready to run, shared with the thread that runs it.
enum Runner {
    Http(Http),
    Tcp(config::TcpProbe),
    Command(config::CommandProbe),
}

impl Runner {
    fn run(&self) -> Outcome {
        match self {
            Self::Http(h) => h.run(),
            Self::Tcp(t) => tcp::run(t),
            Self::Command(c) => command::run(c),
        }
    }
}

struct Entry {
    name: String,
    kind: &'static str,
    runner: Arc<Runner>,
    /// Set while a run is in flight, so a probe that outlived a collection is not started twice.
    busy: Arc<AtomicBool>,
    /// Up at the previous collection; `None` before the first.
    was_up: Option<bool>,
}

#[derive(Default)]
struct ProbeCollector {
    timeout: Duration,
    entries: Vec<Entry>,
}

impl Collector for ProbeCollector {
    fn configure(&mut self, config: &serde_json::Value) -> Result<(), PluginError> {
        let s: Settings = parse_config(config)?;
        config::check(&s)?;
        self.timeout = s.timeout.get();
        self.entries = s
            .probes
            .into_iter()
            .map(|p| {
                let (name, kind) = (p.name().to_owned(), p.kind());
                let runner = match p {
                    Probe::Http(h) => Runner::Http(Http::new(h)?),
                    Probe::Tcp(t) => Runner::Tcp(t),
                    Probe::Command(c) => Runner::Command(c),
                };
                Ok(Entry {
                    name,
                    kind,
                    runner: Arc::new(runner),
                    busy: Arc::new(AtomicBool::new(false)),
                    was_up: None,
                })
            })
            .collect::<Result<_, PluginError>>()?;
        Ok(())
    }

    fn collect(&mut self) -> Result<Collection, PluginError> {
        let outcomes = self.run_all();
        let mut out = Collection::default();
        for (entry, outcome) in self.entries.iter_mut().zip(outcomes) {
            report(entry, &outcome, &mut out);
            entry.was_up = Some(outcome.up);
        }
        Ok(out)
    }
}

impl ProbeCollector {
    /// Runs every probe on its own thread; waits for them until the collection's timeout.
    fn run_all(&self) -> Vec<Outcome> {
        let deadline = Instant::now() + self.timeout;
        let (tx, rx) = mpsc::channel();
        let mut outcomes: Vec<Option<Outcome>> = self.entries.iter().map(|_| None).collect();
        let mut pending = 0;
        for (i, e) in self.entries.iter().enumerate() {
            // Acquire/Release pair with the store below: a run's end is seen before its flag.
            if e.busy.swap(true, Ordering::AcqRel) {
                outcomes[i] = Some(Outcome::down(None, "the previous run has not finished yet"));
                continue;
            }
            let (runner, busy, tx) = (e.runner.clone(), e.busy.clone(), tx.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("probe-{}", e.name))
                .spawn(move || {
                    let outcome = runner.run();
                    busy.store(false, Ordering::Release);
                    // The collection may have stopped waiting; then the result is dropped.
                    let _ = tx.send((i, outcome));
                });
            match spawned {
                Ok(_) => pending += 1,
                Err(err) => {
                    e.busy.store(false, Ordering::Release);
                    outcomes[i] =
                        Some(Outcome::down(None, format!("cannot start a thread: {err}")));
                }
            }
        }
        drop(tx);
        while pending > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok((i, outcome)) = rx.recv_timeout(left) else {
                break;
            };
            outcomes[i] = Some(outcome);
            pending -= 1;
        }
        outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    Outcome::down(
                        None,
                        format!(
                            "no result within the collection's timeout ({:?})",
                            self.timeout
                        ),
                    )
                })
            })
            .collect()
    }
}

/// One probe's samples, and its event when it changed state.
fn report(entry: &Entry, o: &Outcome, out: &mut Collection) {
    let sample = |name: &str, value: f64| {
        Sample::gauge(name, value)
            .with_label("probe", &entry.name)
            .with_label("kind", entry.kind)
    };
    out.samples
        .push(sample("probe.up", if o.up { 1.0 } else { 0.0 }));
    if let Some(l) = o.latency {
        out.samples
            .push(sample("probe.latency_seconds", l.as_secs_f64()));
    }
    if let Some(s) = o.status {
        out.samples
            .push(sample("probe.http.status_code", f64::from(s)));
    }
    if let Some(e) = o.cert_expiry_seconds {
        out.samples.push(sample("probe.tls.cert_expiry_seconds", e));
    }
    let labels = [
        ("probe".to_owned(), entry.name.clone()),
        ("kind".to_owned(), entry.kind.to_owned()),
    ]
    .into();
    match (entry.was_up, o.up) {
        (Some(true) | None, false) => out.events.push(Event {
            kind: "probe_failed".into(),
            message: format!(
                "probe `{}` failed: {}",
                entry.name,
                o.reason.as_deref().unwrap_or("down")
            ),
            labels,
            timestamp_ms: None,
        }),
        (Some(false), true) => out.events.push(Event {
            kind: "probe_recovered".into(),
            message: format!("probe `{}` is up again", entry.name),
            labels,
            timestamp_ms: None,
        }),
        _ => {}
    }
}

monitor_plugin::export_plugin!(collector "probe" => ProbeCollector);

#[cfg(test)]
mod tests {
    use super::*;

    fn configure(v: serde_json::Value) -> Result<ProbeCollector, String> {
        let mut c = ProbeCollector::default();
        c.configure(&v).map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn bad_configs_are_refused_with_the_probe_named() {
        let cases = [
            (serde_json::json!({"probes": []}), "`probes` is empty"),
            (
                serde_json::json!({"probes": [{"kind": "tcp", "name": "a", "address": "nohost"}]}),
                "probe `a`: `address` must be host:port",
            ),
            (
                serde_json::json!({"probes": [{"kind": "http", "name": "w", "url": "ftp://x/"}]}),
                "probe `w`: `url` must be an http:// or https://",
            ),
            (
                serde_json::json!({"probes": [{"kind": "http", "name": "w", "url": "http://x/", "status": 999}]}),
                "999 is not an HTTP status code",
            ),
            (
                serde_json::json!({"probes": [{"kind": "http", "name": "w", "url": "http://x/", "body_regex": "("}]}),
                "`body_regex`",
            ),
            (
                serde_json::json!({"timeout": "2s", "probes": [{"kind": "command", "name": "c", "command": "true", "timeout": "5s"}]}),
                "at most the collection's `timeout`",
            ),
            (
                serde_json::json!({"probes": [
                    {"kind": "command", "name": "c", "command": "true"},
                    {"kind": "tcp", "name": "c", "address": "127.0.0.1:1"}]}),
                "two probes are named `c`",
            ),
            (
                serde_json::json!({"probes": [{"kind": "tcp", "name": "a", "address": "h:1", "colour": 1}]}),
                "colour",
            ),
            (
                serde_json::json!({"probes": [{"kind": "smtp", "name": "a"}]}),
                "smtp",
            ),
        ];
        for (config, needle) in cases {
            let err = configure(config.clone()).err().unwrap_or_default();
            assert!(err.contains(needle), "{config}: {err:?}");
        }
    }

    #[test]
    fn a_probe_going_down_gives_one_event_and_coming_back_another() {
        let mut c = configure(serde_json::json!({"probes": [
            {"kind": "command", "name": "flag", "command": "exit 3"}
        ]}))
        .unwrap();
        let Runner::Command(_) = &*c.entries[0].runner else {
            panic!("a command probe");
        };
        let kinds = |c: &Collection| c.events.iter().map(|e| e.kind.clone()).collect::<Vec<_>>();
        let up = |c: &Collection| {
            c.samples
                .iter()
                .find(|s| s.name == "probe.up")
                .unwrap()
                .value
        };
        let first = c.collect().unwrap();
        assert_eq!(
            (up(&first), kinds(&first)),
            (0.0, vec!["probe_failed".to_owned()])
        );
        let again = c.collect().unwrap();
        assert_eq!((up(&again), kinds(&again)), (0.0, vec![]));
        c.entries[0].runner = Arc::new(Runner::Command(config::CommandProbe {
            name: "flag".into(),
            command: "true".into(),
            timeout: monitor_plugin::ConfigDuration::from_secs(3),
        }));
        let back = c.collect().unwrap();
        assert_eq!(
            (up(&back), kinds(&back)),
            (1.0, vec!["probe_recovered".to_owned()])
        );
    }
}
