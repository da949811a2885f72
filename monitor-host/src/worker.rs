//! One worker per plugin instance, so a slow or hung call never stalls the host: a thread of the
//! host (`isolation = "thread"`), or a thread that drives a child process (`isolation =
//! "process"`: the host binary in its hidden `plugin-runner` mode loads the library with the same
//! loader and serves calls as length-prefixed frames over its stdin and stdout), behind the same
//! interface.

#[cfg(unix)]
mod frame;
#[cfg(unix)]
mod process;
#[cfg(unix)]
mod runner;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use crate::config::Isolation;
use crate::library::{CallFailure, OnRequest, PluginInfo, PluginInstance, PluginLibrary};

/// A finished call, sent to the engine's shared channel.
#[derive(Debug)]
pub struct Done {
    /// Index of the instance in the engine.
    pub slot: usize,
    /// The job number given to [`Worker::submit`].
    pub job: u64,
    /// The output, or why there is none.
    pub result: Result<Vec<u8>, CallFailure>,
    /// How long the plugin took.
    pub elapsed: Duration,
}

pub(crate) enum Job {
    Call {
        job: u64,
        input: Vec<u8>,
    },
    Shutdown {
        reply: Sender<Result<(), CallFailure>>,
    },
}

/// Why a worker could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The plugin's `create`/`configure` failed.
    #[error("{}", match .0 { CallFailure::Error(m) => m.clone(), other => other.to_string() })]
    Create(CallFailure),
    /// `create` did not return in time; its thread is abandoned.
    #[error("configure did not return within {0:?}")]
    Timeout(Duration),
    /// The OS refused a thread.
    #[error("cannot start a worker thread: {0}")]
    Spawn(std::io::Error),
    /// The child process of an isolated instance could not be started.
    #[error("cannot start the plugin's process: {0}")]
    Process(String),
}

/// What a worker needs to start an instance.
#[derive(Debug)]
pub struct WorkerSpec {
    /// Index of the instance in the engine; tags its results.
    pub slot: usize,
    /// The instance's name, for log lines.
    pub name: String,
    /// On a thread of the host, or in a child process.
    pub isolation: Isolation,
    /// Name of the thread (shown by debuggers and in panic messages).
    pub thread_name: String,
    /// The library holding the plugin.
    pub library: Arc<PluginLibrary>,
    /// The plugin.
    pub plugin: PluginInfo,
    /// Its `[...config]` table.
    pub config: serde_json::Value,
    /// Cap on a payload, in bytes.
    pub max_payload: usize,
    /// How long `create`/`configure` may take.
    pub timeout: Duration,
    /// Run when the instance asks for a collection now (collectors).
    pub on_request: Option<OnRequest>,
}

/// The host's handle on a plugin instance's worker.
#[derive(Debug)]
pub enum Worker {
    /// The instance runs on a thread of the host.
    Thread(ThreadWorker),
    /// The instance runs in a child process, driven by a thread of the host.
    #[cfg(unix)]
    Process(ProcessWorker),
}

#[cfg(unix)]
pub(crate) use process::describe_library;
#[cfg(unix)]
pub use process::{ProcessWorker, set_runner_program};
#[cfg(unix)]
pub use runner::{RunnerArgs, run_child};

impl Worker {
    /// Starts the instance on a worker of the kind `spec.isolation` names, creates and configures
    /// it there, and waits up to `spec.timeout` for that.
    ///
    /// Calls then go through [`submit`](Self::submit); results arrive on `done` tagged with `slot`.
    ///
    /// # Errors
    ///
    /// The plugin's configure error or panic, a timeout, no thread, or no child process (which
    /// is also what a child crashing during configure gives).
    pub fn start(spec: WorkerSpec, done: Sender<Done>) -> Result<Worker, StartError> {
        match spec.isolation {
            Isolation::Thread => ThreadWorker::start(spec, done).map(Worker::Thread),
            #[cfg(unix)]
            Isolation::Process => ProcessWorker::start(spec, done).map(Worker::Process),
            #[cfg(not(unix))]
            Isolation::Process => Err(StartError::Process(
                "process isolation is only available on Unix".into(),
            )),
        }
    }

    /// Queues a call; its result arrives on the engine's channel. Never blocks.
    pub fn submit(&self, job: u64, input: Vec<u8>) {
        match self {
            Self::Thread(w) => w.submit(job, input),
            #[cfg(unix)]
            Self::Process(w) => w.submit(job, input),
        }
    }

    /// Gives up on call `job`, which is past its timeout. A thread cannot be stopped, so it is
    /// left to finish; a child process is killed (and a new one started for the next call), and
    /// the call's result then arrives as a failure.
    pub fn cancel(&self, job: u64) {
        match self {
            Self::Thread(_) => {}
            #[cfg(unix)]
            Self::Process(w) => w.cancel(job),
        }
    }

    /// How many times the instance's process died on its own, and how many times a new one was
    /// started; `None` for a thread worker.
    pub fn crashes_and_restarts(&self) -> Option<(u64, u64)> {
        match self {
            Self::Thread(_) => None,
            #[cfg(unix)]
            Self::Process(w) => Some(w.crashes_and_restarts()),
        }
    }

    /// Asks the instance to shut down and waits up to `timeout` for it to finish.
    ///
    /// Returns `None` when it did not answer in time (a call is still running): a thread's
    /// instance is then left to its thread, which the process exit ends; a child process is
    /// killed.
    pub fn shutdown(self, timeout: Duration) -> Option<Result<(), CallFailure>> {
        match self {
            Self::Thread(w) => w.shutdown(timeout),
            #[cfg(unix)]
            Self::Process(w) => w.shutdown(timeout),
        }
    }
}

/// A plugin instance on a thread of the host.
#[derive(Debug)]
pub struct ThreadWorker {
    tx: Sender<Job>,
}

impl ThreadWorker {
    fn start(spec: WorkerSpec, done: Sender<Done>) -> Result<Self, StartError> {
        let WorkerSpec {
            slot,
            thread_name,
            library,
            plugin,
            config,
            max_payload,
            timeout,
            on_request,
            ..
        } = spec;
        let (tx, rx) = unbounded::<Job>();
        let (created_tx, created_rx) = bounded::<Result<(), CallFailure>>(1);
        thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                let instance = match PluginInstance::create_with_requests(
                    &library,
                    &plugin,
                    &config,
                    max_payload,
                    on_request,
                ) {
                    Ok(i) => {
                        let _ = created_tx.send(Ok(()));
                        i
                    }
                    Err(e) => {
                        let _ = created_tx.send(Err(e));
                        return;
                    }
                };
                serve(slot, instance, rx, done);
            })
            .map_err(StartError::Spawn)?;
        match created_rx.recv_timeout(timeout) {
            Ok(Ok(())) => Ok(Self { tx }),
            Ok(Err(e)) => Err(StartError::Create(e)),
            Err(_) => Err(StartError::Timeout(timeout)),
        }
    }

    fn submit(&self, job: u64, input: Vec<u8>) {
        // A send only fails when the thread is gone, which `serve` never lets happen while the
        // worker exists; a lost job then shows up as a timeout.
        let _ = self.tx.send(Job::Call { job, input });
    }

    fn shutdown(self, timeout: Duration) -> Option<Result<(), CallFailure>> {
        let (reply, answer) = bounded(1);
        self.tx.send(Job::Shutdown { reply }).ok()?;
        answer.recv_timeout(timeout).ok()
    }
}

fn serve(slot: usize, mut instance: PluginInstance, rx: Receiver<Job>, done: Sender<Done>) {
    while let Ok(job) = rx.recv() {
        match job {
            Job::Call { job, input } => {
                let start = Instant::now();
                let result = instance.call(&input);
                let elapsed = start.elapsed();
                if done
                    .send(Done {
                        slot,
                        job,
                        result,
                        elapsed,
                    })
                    .is_err()
                {
                    break;
                }
            }
            Job::Shutdown { reply } => {
                let _ = reply.send(instance.shutdown());
                return;
            }
        }
    }
    // The engine is gone without asking for shutdown: just destroy the instance (its Drop).
}
