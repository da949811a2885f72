//! The supervised program: started at configure, restarted with back-off when it exits, its
//! stderr forwarded to the host's log, stopped (SIGTERM, then SIGKILL) at shutdown.
//!
//! One supervisor thread owns the child: it alone starts, reaps and kills it, so a signal never
//! reaches a process id that was already reaped (and possibly reused).
//!
//! On Linux the program also dies (`SIGKILL`) with the process that started it, even when that
//! process is killed and has no chance to stop it. The parent-death signal fires when the
//! *thread* that forked exits; that thread is the supervisor, which outlives its child (it reaps
//! it), so the signal only ever comes with the process's death.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use monitor_plugin::PluginError;

use crate::settings::Settings;

/// Called with each line the program writes on stdout (without the line end).
pub(crate) type LineHandler = Arc<dyn Fn(&str) + Send + Sync>;

/// Longest line kept; the rest of a longer line is cut.
const MAX_LINE: usize = 1024 * 1024;

/// How often the supervisor looks whether its child exited.
const POLL: Duration = Duration::from_millis(20);

/// What the supervisor tells the plugin.
#[derive(Default)]
struct State {
    running: bool,
    stopping: bool,
    /// The first start's result, once tried.
    first_start: Option<Result<(), String>>,
    /// Why it is not running, while it waits to be restarted.
    last_exit: Option<String>,
    next_start: Option<Instant>,
    /// Exits not yet reported.
    exits: Vec<String>,
    restarts: u64,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    /// Apart from `state`, so a write blocked on a full pipe never holds up the supervisor.
    stdin: Mutex<Option<ChildStdin>>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What to run, copied out of the settings for the supervisor thread.
#[derive(Clone)]
struct Spec {
    name: String,
    command: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    restart_delay: Duration,
    max_restart_delay: Duration,
    stop_timeout: Duration,
}

/// A running (or restarting) program.
pub(crate) struct Program {
    shared: Arc<Shared>,
    supervisor: Option<JoinHandle<()>>,
    name: String,
}

impl Program {
    /// Starts the program and its supervisor; `stdout` gets its output lines (they go to the
    /// host's log when `None`).
    ///
    /// Returns once the first start was tried: a program that cannot be started is an error.
    pub fn start(s: &Settings, stdout: Option<LineHandler>) -> Result<Self, PluginError> {
        let name = std::path::Path::new(&s.command)
            .file_name()
            .map_or_else(|| s.command.clone(), |n| n.to_string_lossy().into_owned());
        let spec = Spec {
            name: name.clone(),
            command: s.command.clone(),
            args: s.args.clone(),
            env: s.env.clone().into_iter().collect(),
            restart_delay: s.restart_delay.get(),
            max_restart_delay: s.max_restart_delay.get(),
            stop_timeout: s.stop_timeout.get(),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            stdin: Mutex::new(None),
        });
        let stdout = stdout.unwrap_or_else(|| {
            let name = name.clone();
            Arc::new(move |line: &str| log(&name, "stdout", line))
        });
        let supervisor = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("exec-{name}"))
                .spawn(move || supervise(&shared, &spec, &stdout))?
        };
        let mut program = Self {
            shared,
            supervisor: Some(supervisor),
            name,
        };
        let first = {
            let mut st = program.shared.state();
            while st.first_start.is_none() {
                st = program
                    .shared
                    .changed
                    .wait(st)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            st.first_start.clone()
        };
        if let Some(Err(e)) = first {
            program.stop();
            return Err(format!("cannot start `{}`: {e}", s.command).into());
        }
        Ok(program)
    }

    /// Writes `line` and a newline to the program's stdin.
    pub fn write_line(&self, line: &str) -> Result<(), PluginError> {
        let mut stdin = self
            .shared
            .stdin
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(pipe) = stdin.as_mut() else {
            return Err(self.not_running());
        };
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        pipe.write_all(&bytes)
            .and_then(|()| pipe.flush())
            .map_err(|e| PluginError::new(format!("writing to `{}`: {e}", self.name)))
    }

    /// Why the program is not running now, or `None` while it runs.
    pub fn down(&self) -> Option<PluginError> {
        // The guard must be gone before `not_running` takes the lock again.
        let running = self.shared.state().running;
        (!running).then(|| self.not_running())
    }

    fn not_running(&self) -> PluginError {
        let st = self.shared.state();
        let why = st.last_exit.as_deref().unwrap_or("not started");
        let when = st.next_start.map_or_else(String::new, |t| {
            format!(
                "; restarting in {:.1}s",
                t.saturating_duration_since(Instant::now()).as_secs_f64()
            )
        });
        PluginError::new(format!("`{}` is not running: {why}{when}", self.name))
    }

    /// Exits since the last call, as messages, and how many restarts so far.
    pub fn take_exits(&self) -> (Vec<String>, u64) {
        let mut st = self.shared.state();
        (std::mem::take(&mut st.exits), st.restarts)
    }

    /// Stops the program (stdin closed, SIGTERM, SIGKILL after `stop_timeout`) and its supervisor.
    pub fn stop(&mut self) {
        self.shared.state().stopping = true;
        self.shared.changed.notify_all();
        // EOF on stdin first, for programs that end when their input does; a writer blocked on a
        // full pipe holds the lock and is freed by the signal below instead.
        if let Ok(mut stdin) = self.shared.stdin.try_lock() {
            stdin.take();
        }
        if let Some(t) = self.supervisor.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Forwards one line the program wrote (or one the plugin says about it) to the host's log, as
/// one line on the process's stderr: `plugin=exec program=<name> stream=<stream>: <line>`.
///
/// The plugin ABI has no log function, so this is the host's stderr. An instance in process
/// isolation writes it to its runner's stderr, which the host logs through its logger, naming
/// the instance.
fn log(name: &str, stream: &str, line: &str) {
    eprintln!("{}", log_line(name, stream, line));
}

/// The text [`log`] writes.
fn log_line(name: &str, stream: &str, line: &str) -> String {
    format!("plugin=exec program={name} stream={stream}: {line}")
}

/// The supervisor thread: start, watch, restart with back-off, until stopping.
fn supervise(shared: &Shared, spec: &Spec, stdout: &LineHandler) {
    let mut delay = spec.restart_delay;
    loop {
        let started = Instant::now();
        let exit = match spawn(spec) {
            Err(e) => {
                let mut st = shared.state();
                if st.first_start.is_none() {
                    st.first_start = Some(Err(e.to_string()));
                    shared.changed.notify_all();
                    return;
                }
                format!("cannot be started: {e}")
            }
            Ok(mut child) => {
                read_lines(child.stdout.take(), stdout.clone());
                let name = spec.name.clone();
                read_lines(
                    child.stderr.take(),
                    Arc::new(move |line: &str| log(&name, "stderr", line)),
                );
                *shared
                    .stdin
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = child.stdin.take();
                {
                    let mut st = shared.state();
                    st.running = true;
                    st.next_start = None;
                    st.first_start.get_or_insert(Ok(()));
                }
                shared.changed.notify_all();
                let exit = watch(shared, &mut child, spec.stop_timeout);
                if let Ok(mut stdin) = shared.stdin.lock() {
                    stdin.take();
                }
                shared.state().running = false;
                exit
            }
        };
        if shared.state().stopping {
            return;
        }
        // A program that ran longer than the longest delay starts over at the shortest.
        if started.elapsed() >= spec.max_restart_delay {
            delay = spec.restart_delay;
        }
        log(
            &spec.name,
            "exit",
            &format!("{exit}; restarting in {delay:?}"),
        );
        let mut st = shared.state();
        st.exits.push(exit.clone());
        st.last_exit = Some(exit);
        let until = Instant::now() + delay;
        st.next_start = Some(until);
        while !st.stopping && Instant::now() < until {
            let left = until.saturating_duration_since(Instant::now());
            st = shared
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        if st.stopping {
            return;
        }
        st.restarts += 1;
        delay = (delay * 2).min(spec.max_restart_delay);
    }
}

/// Starts the program; called only on the supervisor thread (see the module's docs).
fn spawn(spec: &Spec) -> std::io::Result<Child> {
    let mut command = Command::new(&spec.command);
    command
        .args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a stop reaches what it started too, and the host's terminal's
        // Ctrl-C reaches the host alone, which then stops it in order.
        .process_group(0);
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpid(2) has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
        // system calls, touching no memory shared with the parent.
        unsafe {
            command.pre_exec(move || die_with_parent(parent));
        }
    }
    command.spawn()
}

/// In the forked child: asks for `SIGKILL` when the parent dies, and gives up when it already
/// did (between the fork and the request, which the request alone would miss).
#[cfg(target_os = "linux")]
fn die_with_parent(parent: libc::pid_t) -> std::io::Result<()> {
    // SAFETY: prctl(2) with these arguments reads and writes no memory.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: getppid(2) has no preconditions.
    if unsafe { libc::getppid() } != parent {
        // No allocation between fork and exec: a bare error number ("no such process").
        return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
}

/// Reads `pipe` line by line on a thread of its own until it closes.
fn read_lines(pipe: Option<impl Read + Send + 'static>, handler: LineHandler) {
    let Some(pipe) = pipe else { return };
    let spawned = std::thread::Builder::new()
        .name("exec-output".into())
        .spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match (&mut reader)
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut buf)
                {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&buf);
                        handler(text.trim_end_matches(['\n', '\r']));
                        // A line cut at MAX_LINE: drop the rest of it.
                        if !buf.ends_with(b"\n") && buf.len() >= MAX_LINE {
                            let mut rest = Vec::new();
                            if reader.read_until(b'\n', &mut rest).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        });
    // Without a reader the pipe fills and the program blocks: it is then seen as stuck.
    drop(spawned);
}

/// Waits for the child to exit, or stops it when the plugin stops. Returns why it ended.
fn watch(shared: &Shared, child: &mut Child, stop_timeout: Duration) -> String {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return format!("exited with {status}"),
            Ok(None) => {}
            Err(e) => {
                terminate(child, Duration::ZERO);
                return format!("could not be waited for ({e}) and was killed");
            }
        }
        let st = shared.state();
        if st.stopping {
            drop(st);
            terminate(child, stop_timeout);
            return "stopped".into();
        }
        let _ = shared.changed.wait_timeout(st, POLL);
    }
}

/// SIGTERM to the child's process group, SIGKILL after `grace`, then reaped.
fn terminate(child: &mut Child, grace: Duration) {
    signal_group(child.id(), libc::SIGTERM);
    let end = Instant::now() + grace;
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            // The leader is gone; what it started may linger in the group.
            return;
        }
        std::thread::sleep(POLL);
    }
    signal_group(child.id(), libc::SIGKILL);
    let _ = child.wait();
}

fn signal_group(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) takes no pointers. The child leads its own group (`process_group(0)`) and
    // is not reaped yet (only this thread reaps it), so the group id still names its group.
    unsafe {
        libc::kill(-pid, signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_line_names_the_plugin_the_program_and_the_stream() {
        assert_eq!(
            log_line("worker.sh", "stderr", "disk almost full"),
            "plugin=exec program=worker.sh stream=stderr: disk almost full"
        );
    }
}
