//! The real `monitor-host` binary running for a test: started with `run --config`, its standard
//! error collected, asked over HTTP on its port, signalled, stopped, and killed on drop (a failed
//! assertion included).
//!
//! ```no_run
//! use monitor_tests::{RunningHost, Scratch, free_port};
//!
//! let dir = Scratch::new("example");
//! let port = free_port();
//! let config = dir.write(
//!     "monitor.toml",
//!     &format!("[host]\ninterval = \"200ms\"\nlisten = \"127.0.0.1:{port}\"\n"),
//! );
//! let host = RunningHost::start(&config, port);
//! assert_eq!(host.get("/healthz").0, 200);
//! host.stop();
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use serde_json::Value;

use crate::{Killed, Scratch, Stderr, binary, eventually, http_get, http_send_with, metric_value};

/// How long [`HostBuilder::start`] and [`RunningHost::wait_cycles`] wait by default.
pub const HOST_WAIT: Duration = Duration::from_secs(60);

/// How long an exit waits for the rest of the host's standard error (a plugin process that
/// inherited it may hold it open a little longer).
const STDERR_DRAIN: Duration = Duration::from_secs(5);

/// When [`HostBuilder::start`] returns.
#[derive(Debug, Clone)]
enum Ready {
    /// `/healthz` answers 200: a cycle has run and the store is writable.
    Healthy,
    /// `/healthz` answers at all (an unhealthy host included).
    Answering,
    /// A line of standard error contains this.
    Line(String),
    /// At once, after spawning.
    Spawned,
}

/// How to start a [`RunningHost`]: made by [`RunningHost::builder`], run by
/// [`start`](Self::start).
#[derive(Debug)]
#[must_use]
pub struct HostBuilder {
    config: PathBuf,
    port: Option<u16>,
    wrapper: Vec<OsString>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    env_removed: Vec<OsString>,
    // `None`: healthy with a port, spawned without.
    ready: Option<Ready>,
    within: Duration,
}

impl HostBuilder {
    /// The port of the config's `[host] listen` (`127.0.0.1:port` or `0.0.0.0:port`): where
    /// readiness and the request helpers ask. Without it (`listen = "off"`), the host is ready
    /// once spawned.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Runs the host under `program` with `args` before the host's own path (`prlimit
    /// --nofile=64:64`, `setsid`...).
    pub fn wrapped_in(mut self, program: &str, args: &[&str]) -> Self {
        self.wrapper = std::iter::once(program)
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        self
    }

    /// Adds command-line arguments after `run --config FILE` (`--log-format json`...).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable of the host (`RUST_LOG`...).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Removes an environment variable the test process has from the host's (`RUST_LOG`...).
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Self {
        self.env_removed.push(key.into());
        self
    }

    /// Returns from [`start`](Self::start) once `/healthz` answers, with any status, instead of
    /// 200: for a host that is meant to be unhealthy.
    pub fn until_answering(mut self) -> Self {
        self.ready = Some(Ready::Answering);
        self
    }

    /// Returns from [`start`](Self::start) once a line of standard error contains `needle`
    /// instead of once `/healthz` answers 200 (a host serving HTTPS, say).
    pub fn until_line(mut self, needle: &str) -> Self {
        self.ready = Some(Ready::Line(needle.to_owned()));
        self
    }

    /// Returns from [`start`](Self::start) as soon as the process is spawned: the test waits for
    /// what it checks itself (a start that fails, a slow first cycle).
    pub fn without_waiting(mut self) -> Self {
        self.ready = Some(Ready::Spawned);
        self
    }

    /// How long [`start`](Self::start) waits to get ready ([`HOST_WAIT`] by default).
    pub fn within(mut self, limit: Duration) -> Self {
        self.within = limit;
        self
    }

    /// Spawns the host and waits until it is ready: by default until `/healthz` answers 200 when
    /// it has a [`port`](Self::port), at once otherwise.
    ///
    /// # Panics
    ///
    /// When it cannot be spawned, or is not ready in time (with its standard error in the
    /// message), or exits before.
    pub fn start(self) -> RunningHost {
        let host_binary = binary("monitor-host");
        let mut command = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(host_binary);
                c
            }
            None => Command::new(host_binary),
        };
        command
            .args(["run", "--config"])
            .arg(&self.config)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        for key in &self.env_removed {
            command.env_remove(key);
        }
        let (child, stderr) = crate::spawn_with_stderr(&mut command);
        let mut host = RunningHost {
            child: Killed(child),
            stderr,
            port: self.port,
            config: self.config,
        };
        let port = host.port.unwrap_or_default();
        let ready = self.ready.unwrap_or(match host.port {
            Some(_) => Ready::Healthy,
            None => Ready::Spawned,
        });
        let what = match &ready {
            Ready::Spawned => return host,
            Ready::Healthy | Ready::Answering if host.port.is_none() => {
                panic!("waiting for /healthz needs the host's port (HostBuilder::port)")
            }
            Ready::Healthy => "/healthz to answer 200".to_owned(),
            Ready::Answering => "/healthz to answer".to_owned(),
            Ready::Line(needle) => format!("a line with {needle:?} on stderr"),
        };
        let outcome = eventually(self.within, || {
            if host.child.0.try_wait().ok().flatten().is_some() {
                return Some(false);
            }
            let ok = match &ready {
                Ready::Healthy => http_get(port, "/healthz").is_some_and(|(s, _)| s == 200),
                Ready::Answering => http_get(port, "/healthz").is_some(),
                Ready::Line(needle) => host.stderr.count(needle) > 0,
                Ready::Spawned => true,
            };
            ok.then_some(true)
        });
        match outcome {
            Some(true) => host,
            Some(false) => panic!(
                "the host exited ({:?}) while waiting for {what}:\n{}",
                host.child().try_wait(),
                host.stderr.text()
            ),
            None => panic!(
                "the host (port {port}) was not ready within {:?} (waiting for {what}):\n{}",
                self.within,
                host.stderr.text()
            ),
        }
    }
}

/// The `monitor-host` binary running `run --config FILE` for a test, with its standard error
/// collected ([`Stderr`]); killed (and reaped) on drop.
#[derive(Debug)]
pub struct RunningHost {
    child: Killed,
    stderr: Stderr,
    port: Option<u16>,
    config: PathBuf,
}

impl RunningHost {
    /// How to start the host with `config`; give it the [`port`](HostBuilder::port) it listens
    /// on.
    pub fn builder(config: impl AsRef<Path>) -> HostBuilder {
        HostBuilder {
            config: config.as_ref().to_owned(),
            port: None,
            wrapper: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            env_removed: Vec::new(),
            ready: None,
            within: HOST_WAIT,
        }
    }

    /// [`builder`](Self::builder) for a config given as text, written to `monitor.toml` in `dir`
    /// (relative paths in it are then relative to `dir`).
    pub fn builder_with_text(dir: &Scratch, toml: &str) -> HostBuilder {
        Self::builder(dir.write("monitor.toml", toml))
    }

    /// Starts the host with `config`, whose `[host] listen` is on `port`, and waits until
    /// `/healthz` answers 200 (a cycle has run).
    ///
    /// # Panics
    ///
    /// As [`HostBuilder::start`].
    pub fn start(config: impl AsRef<Path>, port: u16) -> Self {
        Self::builder(config).port(port).start()
    }

    /// The port it is asked on.
    ///
    /// # Panics
    ///
    /// When it was started without one.
    pub fn port(&self) -> u16 {
        self.port.expect("the host was started without a port")
    }

    /// `http://127.0.0.1:<port>`, for the commands' `--url`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// The config file it runs.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// Its standard error so far (and from now on).
    pub fn stderr(&self) -> &Stderr {
        &self.stderr
    }

    /// The process.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child.0
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// `GET path`: `(status, body)`, or `None` when nothing answers.
    pub fn try_get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.port(), path)
    }

    /// `GET path`: `(status, body)`.
    ///
    /// # Panics
    ///
    /// When nothing answers.
    pub fn get(&self, path: &str) -> (u16, String) {
        self.try_get(path)
            .unwrap_or_else(|| panic!("no answer to {path}:\n{}", self.stderr.text()))
    }

    /// `GET path` answered 200 with JSON: the JSON.
    ///
    /// # Panics
    ///
    /// When nothing answers, the status is not 200 or the body not JSON.
    pub fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }

    /// A request with `method` and a JSON `body`: `(status, body)`.
    ///
    /// # Panics
    ///
    /// When nothing answers.
    pub fn send(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        self.send_with(method, path, &[], body)
    }

    /// [`send`](Self::send) with extra request `headers`.
    ///
    /// # Panics
    ///
    /// When nothing answers.
    pub fn send_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String) {
        http_send_with(self.port(), method, path, headers, body)
            .unwrap_or_else(|| panic!("no answer to {method} {path}:\n{}", self.stderr.text()))
    }

    /// The value of the first line of `name` on `/metrics` whose labels contain every one of
    /// `labels`; `None` when it is missing or the host does not answer.
    pub fn metric(&self, name: &str, labels: &[&str]) -> Option<f64> {
        metric_value(&self.try_get("/metrics")?.1, name, labels)
    }

    /// The cycles run so far (`cycles` of `/api/snapshot`; 0 while it does not answer).
    pub fn cycles(&self) -> u64 {
        self.try_get("/api/snapshot")
            .filter(|(s, _)| *s == 200)
            .and_then(|(_, b)| serde_json::from_str::<Value>(&b).ok())
            .and_then(|v| v["cycles"].as_u64())
            .unwrap_or(0)
    }

    /// Waits until `n` more cycles have run.
    ///
    /// # Panics
    ///
    /// When they do not within [`HOST_WAIT`].
    pub fn wait_cycles(&self, n: u64) {
        let before = self.cycles();
        let ran = eventually(HOST_WAIT, || (self.cycles() >= before + n).then_some(()));
        assert!(
            ran.is_some(),
            "the host stopped cycling:\n{}",
            self.stderr.text()
        );
    }

    /// Sends signal `name` (`TERM`, `HUP`...).
    ///
    /// # Panics
    ///
    /// When `kill` fails.
    pub fn signal(&self, name: &str) {
        crate::signal(&self.child.0, name);
    }

    /// Waits up to `limit` for it to exit: its exit status, or `None` while it still runs. After
    /// an exit, [`stderr`](Self::stderr) holds every line it wrote.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = &mut self.child.0;
        let status = eventually(limit, || child.try_wait().ok().flatten())?;
        self.stderr.wait_closed(STDERR_DRAIN);
        Some(status)
    }

    /// `SIGTERM`, then its exit status.
    ///
    /// # Panics
    ///
    /// When it does not exit within [`HOST_WAIT`].
    pub fn stop_status(mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit(HOST_WAIT)
            .unwrap_or_else(|| panic!("no exit after SIGTERM:\n{}", self.stderr.text()))
    }

    /// `SIGTERM`, asserting a clean exit (status 0).
    ///
    /// # Panics
    ///
    /// When it exits otherwise, or not within [`HOST_WAIT`] (with its standard error in the
    /// message).
    pub fn stop(self) {
        let stderr = self.stderr.clone();
        let status = self.stop_status();
        assert_eq!(status.code(), Some(0), "{}", stderr.text());
    }

    /// `SIGKILL`, and reaps it: a crash, leaving its files as they are. [`stderr`](Self::stderr)
    /// (kept by a clone) then holds every line it wrote.
    ///
    /// # Panics
    ///
    /// When the kill fails.
    pub fn kill_9(mut self) {
        self.child().kill().unwrap();
        self.child().wait().unwrap();
        self.stderr.wait_closed(STDERR_DRAIN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::free_port;

    #[test]
    #[should_panic(expected = "the host exited")]
    fn a_host_that_exits_while_starting_fails_at_once_with_its_stderr() {
        let dir = Scratch::new("running-host-exits");
        let port = free_port();
        let config = dir.write(
            "monitor.toml",
            &format!("[host]\nlisten = \"127.0.0.1:{port}\"\nno_such_key = 1\n"),
        );
        let _host = RunningHost::start(&config, port);
    }

    #[test]
    fn a_line_on_stderr_makes_it_ready_and_stop_waits_for_the_rest() {
        let dir = Scratch::new("running-host-line");
        let config = dir.write(
            "monitor.toml",
            "[host]\ninterval = \"100ms\"\nlisten = \"off\"\ndata_dir = \"data\"\n",
        );
        let host = RunningHost::builder(&config)
            .env("RUST_LOG", "info")
            .until_line("SIGTERM")
            .within(Duration::from_secs(2));
        let started = std::panic::catch_unwind(|| host.start());
        assert!(started.is_err(), "no SIGTERM line before one is sent");

        // Logged after the signal handlers are installed: SIGTERM is then a clean stop.
        let host = RunningHost::builder(&config)
            .env("RUST_LOG", "info")
            .until_line("store opened")
            .start();
        let stderr = host.stderr().clone();
        host.stop();
        assert_eq!(stderr.count("SIGTERM received"), 1, "{}", stderr.text());
        assert_eq!(stderr.count("plugins shut down"), 1, "{}", stderr.text());
    }
}
