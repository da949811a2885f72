//! `exec` collector and notifier: a long-running program the host talks to over pipes (as
//! Telegraf's `execd`).
//!
//! The program (`command` with `args` and `env`, not run through a shell) is started when the
//! plugin is configured, restarted with back-off (`restart_delay`, doubled at each exit in a row up
//! to `max_restart_delay`) whenever it exits, and stopped at shutdown (stdin closed, SIGTERM to its
//! process group, SIGKILL after `stop_timeout`). On Linux it also gets SIGKILL when the process
//! that runs the plugin (the host, or its runner in process isolation) dies, even of `kill -9`.
//! What it writes on stderr goes to the host's stderr one line at a time, as
//! `plugin=exec program=<program> stream=stderr: <line>` (the plugin ABI has no log function);
//! under `isolation = "process"` the host logs the runner's lines through its logger, naming the
//! instance.
//!
//! **Collector.** The program writes samples on stdout: Prometheus text (`format = "prometheus"`,
//! the default) in blocks each ended by an empty line or `# EOF`, or one JSON sample per line
//! (`format = "json"`: `{"name": "queue.depth", "value": 3, "kind": "gauge", "labels": {...}}`).
//! Each collection returns what arrived since the previous one (the last value of each series,
//! unless the samples carry their own `timestamp_ms`). With `signal = "newline"` the
//! collection instead writes a newline to the program's stdin and waits (up to `timeout`, 3 s by
//! default) for one block (in JSON, lines ended by an empty line). An exit is reported by the next
//! collection as an `exec_exited` event (with `exec.up` 0), and by the ones after it, while the
//! program is still down, as the collection's error. `exec.up` is 1 while it runs, `exec.restarts`
//! counts restarts. Lines that do not parse give `exec_parse_error` events.
//!
//! **Notifier.** Each notification is written to the program's stdin as one line of JSON (the
//! plugin payload); a program that is down makes the notification fail (and the host retry).

mod inbox;
mod program;
mod settings;

use std::sync::Arc;

use monitor_plugin::{
    AlertNotifier, Collection, Collector, Event, Notification, PluginError, Sample, parse_config,
};

use crate::inbox::Inbox;
use crate::program::Program;
use crate::settings::{DEFAULT_TIMEOUT, Settings, Signal};

#[derive(Default)]
struct ExecCollector {
    program: Option<Program>,
    inbox: Option<Arc<Inbox>>,
    signal: Signal,
    timeout: std::time::Duration,
}

fn event(kind: &str, message: String) -> Event {
    Event {
        kind: kind.into(),
        message,
        labels: monitor_plugin::Labels::new(),
        timestamp_ms: None,
    }
}

impl Collector for ExecCollector {
    fn configure(&mut self, config: &serde_json::Value) -> Result<(), PluginError> {
        let s: Settings = parse_config(config)?;
        s.check()?;
        let inbox = Arc::new(Inbox::new(s.format.unwrap_or_default()));
        let handler = {
            let inbox = inbox.clone();
            Arc::new(move |line: &str| inbox.line(line))
        };
        self.signal = s.signal.unwrap_or_default();
        self.timeout = s.timeout.map_or(DEFAULT_TIMEOUT, |t| t.get());
        self.program = Some(Program::start(&s, Some(handler))?);
        self.inbox = Some(inbox);
        Ok(())
    }

    fn collect(&mut self) -> Result<Collection, PluginError> {
        let (Some(program), Some(inbox)) = (&self.program, &self.inbox) else {
            return Err("not configured".into());
        };
        let (exits, restarts) = program.take_exits();
        #[allow(clippy::cast_precision_loss)] // exact below 2^53 restarts
        let restarts = Sample::counter("exec.restarts", restarts as f64);
        let exited = exits.into_iter().map(|e| event("exec_exited", e));
        if let Some(down) = program.down() {
            // An exit is reported once as an event; the collections after it fail for as long as
            // the program stays down.
            if exited.len() == 0 {
                return Err(down);
            }
            return Ok(Collection {
                samples: vec![Sample::gauge("exec.up", 0.0), restarts],
                events: exited.collect(),
            });
        }
        let mut pending = match self.signal {
            Signal::None => inbox.lock(),
            Signal::Newline => {
                let seen = inbox.lock().blocks;
                program.write_line("")?;
                inbox.wait_past(seen, self.timeout).ok_or_else(|| {
                    program.down().unwrap_or_else(|| {
                        PluginError::new(format!(
                            "no answer within {:?} after asking with a newline",
                            self.timeout
                        ))
                    })
                })?
            }
        };
        let mut out = Collection {
            samples: inbox::latest_per_series(std::mem::take(&mut pending.samples)),
            events: Vec::new(),
        };
        for e in std::mem::take(&mut pending.errors) {
            out.events.push(event("exec_parse_error", e));
        }
        let dropped = std::mem::take(&mut pending.dropped);
        drop(pending);
        if dropped > 0 {
            out.events.push(event(
                "exec_parse_error",
                format!(
                    "{dropped} sample(s) dropped: more than {} arrived between two collections",
                    inbox::MAX_PENDING
                ),
            ));
        }
        out.events.extend(exited);
        out.samples.push(Sample::gauge("exec.up", 1.0));
        out.samples.push(restarts);
        Ok(out)
    }

    fn shutdown(&mut self) -> Result<(), PluginError> {
        if let Some(mut p) = self.program.take() {
            p.stop();
        }
        Ok(())
    }
}

#[derive(Default)]
struct ExecNotifier {
    program: Option<Program>,
}

impl AlertNotifier for ExecNotifier {
    fn configure(&mut self, config: &serde_json::Value) -> Result<(), PluginError> {
        let s: Settings = parse_config(config)?;
        s.check()?;
        s.check_notifier()?;
        self.program = Some(Program::start(&s, None)?);
        Ok(())
    }

    fn notify(&mut self, notification: &Notification) -> Result<(), PluginError> {
        let program = self.program.as_ref().ok_or("not configured")?;
        program.write_line(&serde_json::to_string(notification)?)
    }

    fn shutdown(&mut self) -> Result<(), PluginError> {
        if let Some(mut p) = self.program.take() {
            p.stop();
        }
        Ok(())
    }
}

monitor_plugin::export_plugin! {
    collector "exec" => ExecCollector,
    notifier "exec" => ExecNotifier,
}
