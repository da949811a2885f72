//! The host side of an isolated instance (`isolation = "process"`): a thread of the host that
//! starts the instance's child process, hands it calls over a pipe, and replaces it when it dies.
//!
//! A crash (segfault, abort, `exit`, a kill from outside) fails only the call in flight; the next
//! call starts a new child, configured again. A call the engine gives up on (its timeout) gets its
//! child killed with `SIGKILL`, so a hung plugin never keeps a thread or a process behind.
//!
//! The child's [`REQUEST`](frame::REQUEST) frames (an isolated collector asking for a collection
//! now) run the instance's [`OnRequest`] as the host's table does for an instance on a thread.
//! What the child writes on its stderr (and stdout) becomes the host's log lines, one per line,
//! naming the instance.

use std::io::{BufRead as _, BufReader, Read as _};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, select, unbounded};
use monitor_plugin::abi::PluginKind;

use super::{Done, Job, StartError, WorkerSpec, frame};
use crate::library::{CallFailure, LoadError, OnRequest, PluginLibrary};

/// How long a child may take to exit once it answered `shutdown` (or once the host stopped
/// needing it) before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// How long a child whose pipe closed may take to finish dying before it is killed, so its own
/// exit status (the signal, the code) is what gets reported.
const DEATH_GRACE: Duration = Duration::from_millis(500);

/// A wait without a deadline, as far ahead as a timer can safely be set.
const FOREVER: Duration = Duration::from_secs(365 * 86_400);

/// Cap on a library's declaration read from a runner, in bytes.
const MAX_DECLARATION: usize = 1024 * 1024;

/// Longest line of the child's stderr logged; the rest of a longer line is dropped.
const MAX_LOG_LINE: usize = 64 * 1024;

static RUNNER: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Sets the executable started for isolated instances. It must run
/// [`run_child`](super::run_child) when given `plugin-runner` and the runner's arguments, as
/// `monitor-host` does; the default is the current executable, which suits `monitor-host` itself
/// and nothing else (an embedding application or a test points it at a `monitor-host` binary).
pub fn set_runner_program(path: PathBuf) {
    *RUNNER.lock().unwrap_or_else(|e| e.into_inner()) = Some(path);
}

fn runner_program() -> std::io::Result<PathBuf> {
    match &*RUNNER.lock().unwrap_or_else(|e| e.into_inner()) {
        Some(p) => Ok(p.clone()),
        None => std::env::current_exe(),
    }
}

/// Crash and restart counts, shared between the worker's thread and the engine.
#[derive(Debug, Default)]
struct Counters {
    crashes: AtomicU64,
    restarts: AtomicU64,
}

/// A plugin instance in a child process, driven by a thread of the host.
#[derive(Debug)]
pub struct ProcessWorker {
    tx: Sender<Job>,
    cancel: Sender<u64>,
    counters: Arc<Counters>,
}

impl ProcessWorker {
    /// Starts the driving thread, which starts the child and configures the instance in it.
    pub(super) fn start(spec: WorkerSpec, done: Sender<Done>) -> Result<Self, StartError> {
        let Some(library) = spec.library.path.clone() else {
            return Err(StartError::Process(
                "a plugin built into the host cannot run in a process of its own".into(),
            ));
        };
        let (tx, rx) = unbounded::<Job>();
        let (cancel, cancel_rx) = unbounded::<u64>();
        let counters = Arc::new(Counters::default());
        let (created_tx, created_rx) = bounded(1);
        let mut supervisor = Supervisor {
            slot: spec.slot,
            name: spec.name,
            kind: spec.plugin.kind,
            plugin: spec.plugin.name.clone(),
            library,
            config: serde_json::to_vec(&spec.config).expect("JSON values always serialise"),
            max_payload: spec.max_payload,
            timeout: spec.timeout,
            child: None,
            cancel: cancel_rx,
            counters: counters.clone(),
            on_request: spec.on_request,
        };
        // The child is started from this thread, which lives as long as the child may: the
        // parent-death signal is tied to the thread that forked.
        thread::Builder::new()
            .name(spec.thread_name)
            .spawn(move || {
                let created = supervisor.spawn(None);
                let ok = created.is_ok();
                let _ = created_tx.send(created);
                if ok {
                    supervisor.serve(&rx, &done);
                }
            })
            .map_err(StartError::Spawn)?;
        // The thread bounds configure by the timeout itself; this wait only guards against a
        // thread that never answers at all.
        let limit = spec.timeout.saturating_add(EXIT_GRACE + DEATH_GRACE);
        match created_rx.recv_timeout(limit) {
            Ok(Ok(())) => Ok(Self {
                tx,
                cancel,
                counters,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StartError::Timeout(spec.timeout)),
        }
    }

    pub(super) fn submit(&self, job: u64, input: Vec<u8>) {
        // The thread outlives this handle, so a send only fails once it is gone after a broken
        // pipe it could not recover from; the engine then sees a timeout.
        let _ = self.tx.send(Job::Call { job, input });
    }

    pub(super) fn cancel(&self, job: u64) {
        let _ = self.cancel.send(job);
    }

    pub(super) fn crashes_and_restarts(&self) -> (u64, u64) {
        (
            self.counters.crashes.load(Ordering::Relaxed),
            self.counters.restarts.load(Ordering::Relaxed),
        )
    }

    pub(super) fn shutdown(self, timeout: Duration) -> Option<Result<(), CallFailure>> {
        let (reply, answer) = bounded(1);
        self.tx.send(Job::Shutdown { reply }).ok()?;
        // The thread kills the child after `timeout` and the grace period; wait that long.
        answer
            .recv_timeout(timeout.saturating_add(EXIT_GRACE + DEATH_GRACE))
            .ok()
    }
}

/// A running child and the pipes to it.
struct Running {
    process: Child,
    stdin: ChildStdin,
    /// Answer frames, read by a thread of their own so that waiting for one can time out.
    frames: Receiver<std::io::Result<(u8, Vec<u8>)>>,
}

/// How one exchange with the child ended.
enum Exchange {
    Answer(Result<Vec<u8>, CallFailure>),
    /// The child died on its own: how.
    Died(String),
    /// The child was killed: why.
    Killed(String),
    /// The child did not answer in time and was killed.
    TimedOut(Duration),
}

struct Supervisor {
    slot: usize,
    name: String,
    kind: PluginKind,
    plugin: String,
    library: PathBuf,
    config: Vec<u8>,
    max_payload: usize,
    timeout: Duration,
    child: Option<Running>,
    cancel: Receiver<u64>,
    counters: Arc<Counters>,
    /// Run for each [`REQUEST`](frame::REQUEST) frame; `None` ignores them.
    on_request: Option<OnRequest>,
}

impl Supervisor {
    fn serve(&mut self, rx: &Receiver<Job>, done: &Sender<Done>) {
        while let Ok(job) = rx.recv() {
            match job {
                Job::Call { job, input } => {
                    let start = Instant::now();
                    let result = self.call(job, &input);
                    let elapsed = start.elapsed();
                    let slot = self.slot;
                    let sent = done.send(Done {
                        slot,
                        job,
                        result,
                        elapsed,
                    });
                    if sent.is_err() {
                        break;
                    }
                }
                Job::Shutdown { reply } => {
                    let _ = reply.send(self.shutdown());
                    return;
                }
            }
        }
        // The engine dropped its handle without a shutdown (it gave up on a call in flight):
        // nothing may be left running.
        self.kill("the host no longer needs it");
    }

    /// One call, starting a new child first when the last one died.
    fn call(&mut self, job: u64, input: &[u8]) -> Result<Vec<u8>, CallFailure> {
        if self.child.is_none() {
            self.counters.restarts.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                plugin = %self.name,
                kind = self.kind.as_str(),
                "starting a new process for the isolated plugin"
            );
            self.spawn(Some(job)).map_err(|e| {
                CallFailure::Error(format!("the plugin's process could not be restarted: {e}"))
            })?;
        }
        match self.exchange(frame::CALL, input, Some(job), None) {
            Exchange::Answer(result) => result,
            Exchange::Died(how) => Err(CallFailure::Error(format!(
                "the plugin's process {how} during the call"
            ))),
            Exchange::Killed(why) => Err(CallFailure::Error(format!(
                "the plugin's process was killed: {why}"
            ))),
            Exchange::TimedOut(limit) => Err(CallFailure::Error(format!(
                "the plugin's process was killed: no answer within {limit:?}"
            ))),
        }
    }

    /// Starts a child and configures the instance in it.
    fn spawn(&mut self, job: Option<u64>) -> Result<(), StartError> {
        self.launch()?;
        let config = std::mem::take(&mut self.config);
        let configured = self.exchange(frame::CONFIG, &config, job, Some(self.timeout));
        self.config = config;
        match configured {
            Exchange::Answer(Ok(_)) => Ok(()),
            Exchange::Answer(Err(e)) => {
                self.kill("its configure failed");
                Err(StartError::Create(e))
            }
            Exchange::Died(how) => Err(StartError::Process(format!("it {how} during configure"))),
            Exchange::TimedOut(_) => Err(StartError::Timeout(self.timeout)),
            Exchange::Killed(why) => Err(StartError::Process(format!("killed: {why}"))),
        }
    }

    /// Starts a child, and the threads that read its answers and its stderr.
    fn launch(&mut self) -> Result<(), StartError> {
        let program = runner_program().map_err(|e| StartError::Process(e.to_string()))?;
        let mut command = Command::new(&program);
        command
            .arg("plugin-runner")
            .arg("--library")
            .arg(&self.library)
            .args(["--kind", self.kind.as_str(), "--plugin", &self.plugin])
            .args(["--max-payload", &self.max_payload.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(target_os = "linux")]
        // SAFETY: `prctl` is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                // The child dies with the host even when the host is killed.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut process = command
            .spawn()
            .map_err(|e| StartError::Process(format!("`{}`: {e}", program.display())))?;
        let (Some(stdin), Some(stdout), Some(stderr)) = (
            process.stdin.take(),
            process.stdout.take(),
            process.stderr.take(),
        ) else {
            unreachable!("the three pipes were asked for");
        };
        self.log_stderr(stderr);
        let (frames_tx, frames) = bounded(1);
        // An answer is the payload or a failure's text, both bounded by the plugin's limit; the
        // tag and some slack on top.
        let limit = self.max_payload.saturating_add(64);
        let on_request = self.on_request.clone();
        let reader = thread::Builder::new()
            .name(format!("{}-{}-pipe", self.kind.as_str(), self.name))
            .spawn(move || {
                let mut stdout = BufReader::new(stdout);
                loop {
                    let frame = frame::read(&mut stdout, limit).transpose();
                    if let Some(Ok((frame::REQUEST, _))) = frame {
                        if let Some(r) = &on_request {
                            r.request();
                        }
                        continue;
                    }
                    let last = !matches!(frame, Some(Ok(_)));
                    if frame.is_some_and(|f| frames_tx.send(f).is_err()) || last {
                        return;
                    }
                }
            });
        if let Err(e) = reader {
            let _ = process.kill();
            let _ = process.wait();
            return Err(StartError::Spawn(e));
        }
        self.child = Some(Running {
            process,
            stdin,
            frames,
        });
        Ok(())
    }

    /// Logs each line the child writes on its stderr (where its stdout goes too), on a thread
    /// that ends when every writer closed it. When no thread can be had the pipe is closed, and
    /// the child's writes to it fail instead of blocking.
    fn log_stderr(&self, stderr: ChildStderr) {
        let name = self.name.clone();
        let kind = self.kind.as_str();
        let reader = thread::Builder::new()
            .name(format!("{kind}-{name}-stderr"))
            .spawn(move || {
                let mut reader = BufReader::new(stderr);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match (&mut reader)
                        .take(MAX_LOG_LINE as u64)
                        .read_until(b'\n', &mut buf)
                    {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']);
                    if !line.is_empty() {
                        tracing::info!(plugin = %name, kind, stream = "stderr", "{line}");
                    }
                    // A line cut at the limit: drop the rest of it.
                    if !buf.ends_with(b"\n")
                        && buf.len() >= MAX_LOG_LINE
                        && reader.skip_until(b'\n').is_err()
                    {
                        return;
                    }
                }
            });
        drop(reader);
    }

    /// Sends one request and waits for its answer: until `deadline` passes (then the child is
    /// killed), or, for the engine's call `job`, until the engine cancels it. Without a
    /// deadline, twice the timeout bounds a call the engine forgot.
    fn exchange(
        &mut self,
        tag: u8,
        payload: &[u8],
        job: Option<u64>,
        deadline: Option<Duration>,
    ) -> Exchange {
        let Some(child) = &mut self.child else {
            return Exchange::Died("was not running".into());
        };
        if frame::write(&mut child.stdin, tag, payload).is_err() {
            // A broken pipe: the child is gone; its status says how.
            return self.died(tag);
        }
        let limit = deadline.unwrap_or_else(|| self.timeout.saturating_mul(2));
        let deadline = Instant::now().checked_add(limit);
        let frames = child.frames.clone();
        loop {
            let timeout = deadline.map_or(FOREVER, |d| d.saturating_duration_since(Instant::now()));
            select! {
                recv(frames) -> answer => return match answer {
                    Ok(Ok((status, bytes))) => Exchange::Answer(frame::decode(status, bytes)),
                    Ok(Err(e)) => {
                        let why = format!("it broke the pipe protocol: {e}");
                        self.kill(&why);
                        Exchange::Killed(why)
                    }
                    Err(_) => self.died(tag),
                },
                recv(self.cancel) -> cancelled => match cancelled {
                    // A cancel for an earlier call, answered since: not this one.
                    Ok(c) if Some(c) != job => {}
                    Ok(_) => {
                        let why = format!("the call did not return within {:?}", self.timeout);
                        self.kill(&why);
                        return Exchange::Killed(why);
                    }
                    Err(_) => {
                        let why = "the host no longer needs it".to_owned();
                        self.kill(&why);
                        return Exchange::Killed(why);
                    }
                },
                default(timeout) => {
                    self.kill(&format!("no answer within {limit:?}"));
                    return Exchange::TimedOut(limit);
                }
            }
        }
    }

    /// The child's pipe closed: waits for it (killing it after a grace period), reports and
    /// counts the crash.
    fn died(&mut self, tag: u8) -> Exchange {
        let Some(mut child) = self.child.take() else {
            return Exchange::Died("was not running".into());
        };
        drop(child.stdin);
        let status = wait_or_kill(&mut child.process, DEATH_GRACE);
        let how = status.map_or_else(|e| format!("could not be waited for: {e}"), describe);
        if tag == frame::DESCRIBE {
            // Not an instance's crash: the caller reports it as the library's load error.
            return Exchange::Died(how);
        }
        self.counters.crashes.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            plugin = %self.name,
            kind = self.kind.as_str(),
            status = %how,
            during = what(tag),
            "isolated plugin's process died; what it was doing fails, and the next call starts a new process"
        );
        Exchange::Died(how)
    }

    /// Kills the child, if any, with `SIGKILL` and reaps it.
    fn kill(&mut self, why: &str) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = child.process.kill();
        let _ = child.process.wait();
        tracing::warn!(
            plugin = %self.name,
            kind = self.kind.as_str(),
            reason = why,
            "isolated plugin's process killed"
        );
    }

    /// Calls the instance's `shutdown`, then lets the child exit, killing it after the grace
    /// period.
    fn shutdown(&mut self) -> Result<(), CallFailure> {
        if self.child.is_none() {
            // It died and was never needed again: there is no instance to shut down.
            return Ok(());
        }
        let answer = self.exchange(frame::SHUTDOWN, &[], None, Some(self.timeout));
        let result = match answer {
            Exchange::Answer(r) => r.map(drop),
            Exchange::Died(how) => Err(CallFailure::Error(format!(
                "the plugin's process {how} during shutdown"
            ))),
            Exchange::Killed(why) => Err(CallFailure::Error(format!(
                "the plugin's process was killed: {why}"
            ))),
            Exchange::TimedOut(limit) => Err(CallFailure::Error(format!(
                "shutdown did not return within {limit:?}; the plugin's process was killed"
            ))),
        };
        if let Some(mut child) = self.child.take() {
            drop(child.stdin);
            let _ = wait_or_kill(&mut child.process, EXIT_GRACE);
        }
        result
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.process.kill();
            let _ = child.process.wait();
        }
    }
}

/// Reads the declaration of the library `library` in a runner process of its own, which loads
/// it and exits, so that a library whose initialisers crash (or hang, up to `timeout`) fails
/// its instances' start with an error instead of taking the host down. `kind` and `plugin` only
/// name the runner's instance in the log.
///
/// # Errors
///
/// A missing file, the load error the runner reports (as [`PluginLibrary::load`] would), or
/// how the runner died or that it did not answer in time.
pub(crate) fn describe_library(
    library: &Path,
    kind: PluginKind,
    plugin: &str,
    timeout: Duration,
) -> Result<Arc<PluginLibrary>, LoadError> {
    let absolute = std::path::absolute(library);
    let path = absolute.as_deref().unwrap_or(library);
    if !path.exists() {
        return Err(LoadError::Missing(path.to_owned()));
    }
    let failed = |why: String| {
        LoadError::Isolated(format!(
            "loading `{}` in a process of its own failed: {why}",
            path.display()
        ))
    };
    // Never cancelled: the exchange is bounded by `timeout`.
    let (_never, cancel) = unbounded();
    let mut runner = Supervisor {
        slot: 0,
        name: plugin.to_owned(),
        kind,
        plugin: plugin.to_owned(),
        library: path.to_owned(),
        config: Vec::new(),
        max_payload: MAX_DECLARATION,
        timeout,
        child: None,
        cancel,
        counters: Arc::default(),
        on_request: None,
    };
    runner.launch().map_err(|e| failed(e.to_string()))?;
    let answer = runner.exchange(frame::DESCRIBE, &[], None, Some(timeout));
    if let Some(mut child) = runner.child.take() {
        drop(child.stdin);
        let _ = wait_or_kill(&mut child.process, EXIT_GRACE);
    }
    match answer {
        Exchange::Answer(Ok(bytes)) => {
            let declared = serde_json::from_slice(&bytes)
                .map_err(|e| failed(format!("unreadable declaration: {e}")))?;
            PluginLibrary::from_declared(path, declared).map(Arc::new)
        }
        // The runner's loader error, which names the library itself.
        Exchange::Answer(Err(e)) => Err(LoadError::Isolated(match e {
            CallFailure::Invalid(m) | CallFailure::Error(m) | CallFailure::Panicked(m) => m,
        })),
        Exchange::Died(how) => Err(failed(format!("the process {how} while loading it"))),
        Exchange::Killed(why) => Err(failed(format!("the process was killed: {why}"))),
        Exchange::TimedOut(limit) => Err(failed(format!(
            "no answer within {limit:?}; the process was killed"
        ))),
    }
}

/// What a request asks for, for log lines.
fn what(tag: u8) -> &'static str {
    match tag {
        frame::CONFIG => "configure",
        frame::CALL => "call",
        frame::DESCRIBE => "load",
        _ => "shutdown",
    }
}

/// Waits up to `grace` for `process` to exit on its own, then kills it.
fn wait_or_kill(process: &mut Child, grace: Duration) -> std::io::Result<ExitStatus> {
    let end = Instant::now() + grace;
    while Instant::now() < end {
        if let Some(status) = process.try_wait()? {
            return Ok(status);
        }
        thread::sleep(Duration::from_millis(5));
    }
    let _ = process.kill();
    process.wait()
}

/// `killed by signal 11 (SIGSEGV)`, `exited with status 3`.
fn describe(status: ExitStatus) -> String {
    match (status.signal(), status.code()) {
        (Some(signal), _) => format!("was killed by signal {signal} ({})", signal_name(signal)),
        (None, Some(code)) => format!("exited with status {code}"),
        (None, None) => format!("ended with {status}"),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGSYS => "SIGSYS",
        _ => "another signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(script: &str) -> ExitStatus {
        Command::new("sh").args(["-c", script]).status().unwrap()
    }

    #[test]
    fn exit_statuses_name_the_signal_or_the_code() {
        assert_eq!(describe(status_of("exit 3")), "exited with status 3");
        assert_eq!(
            describe(status_of("kill -SEGV $$")),
            "was killed by signal 11 (SIGSEGV)"
        );
        assert_eq!(
            describe(status_of("kill -ABRT $$")),
            "was killed by signal 6 (SIGABRT)"
        );
    }

    #[test]
    fn a_child_that_does_not_exit_is_killed_after_the_grace_period() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let status = wait_or_kill(&mut child, Duration::from_millis(50)).unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }

    #[test]
    fn a_runner_that_is_not_one_fails_configure_without_hanging() {
        // `true` ignores its arguments and exits at once: configure sees the pipe close.
        set_runner_program(PathBuf::from("/bin/true"));
        let (_engine, cancel) = unbounded();
        let library = crate::PluginLibrary::builtin();
        let mut s = Supervisor {
            slot: 0,
            name: "t".into(),
            kind: PluginKind::Collector,
            plugin: "x".into(),
            library: library
                .path
                .clone()
                .unwrap_or_else(|| "/nonexistent".into()),
            config: b"{}".to_vec(),
            max_payload: 1024,
            timeout: Duration::from_secs(5),
            child: None,
            cancel,
            counters: Arc::default(),
            on_request: None,
        };
        let e = s.spawn(None).unwrap_err().to_string();
        assert!(e.contains("exited with status 0 during configure"), "{e}");
        assert!(s.child.is_none());
        *RUNNER.lock().unwrap() = None;
    }
}
