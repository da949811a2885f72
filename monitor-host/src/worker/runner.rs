//! The child side of an isolated instance: `monitor-host plugin-runner ...` loads the library with
//! the host's own loader, creates and configures the instance, then serves calls over its stdin
//! and stdout until the host asks it to shut down or goes away.
//!
//! A collector gets a host table whose `request_collection` sends the host a
//! [`REQUEST`](frame::REQUEST) frame from a thread of its own, so the plugin never waits on the
//! pipe.

use std::fs::File;
use std::io::{self, BufReader};
use std::os::fd::{FromRawFd as _, RawFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_channel::bounded;
use monitor_plugin::abi::PluginKind;

use super::frame;
use crate::library::{CallFailure, OnRequest, PluginInstance, PluginLibrary};

/// What the host tells a plugin process on its command line (the config comes over the pipe).
#[derive(Debug, Clone)]
pub struct RunnerArgs {
    /// The plugin library.
    pub library: PathBuf,
    /// The plugin's kind.
    pub kind: PluginKind,
    /// The plugin's name in its library.
    pub plugin: String,
    /// Cap on a payload the instance returns, in bytes.
    pub max_payload: usize,
}

/// Runs one plugin instance for the host: the body of `monitor-host plugin-runner`.
///
/// The pipe protocol owns the process's standard input and output: both are moved to private
/// descriptors, standard input then reads `/dev/null` and standard output writes to standard
/// error, so whatever the plugin prints (or the commands it starts inherit) cannot garble it.
///
/// # Errors
///
/// A broken pipe or a request that is not in the protocol; the plugin's own failures are answers,
/// not errors.
///
/// # Safety
///
/// Loads and runs the library named in `args` (see [`PluginLibrary::load`]), and takes over the
/// process's standard descriptors: call it only at the start of a process made for it.
pub unsafe fn run_child(args: &RunnerArgs) -> io::Result<()> {
    // SAFETY: forwarded to our caller, who gives us the process.
    let (mut input, output) = unsafe { take_stdio() }?;
    // Shared with the thread that forwards collection requests: one frame at a time.
    let output = Arc::new(Mutex::new(output));
    let answer = |result: &Result<Vec<u8>, CallFailure>| {
        frame::answer(
            &mut *output.lock().unwrap_or_else(PoisonError::into_inner),
            result,
        )
    };
    let Some((tag, config)) = frame::read(&mut input, usize::MAX)? else {
        return Ok(());
    };
    if tag == frame::DESCRIBE {
        // SAFETY: forwarded to our caller.
        return answer(&unsafe { describe(args) });
    }
    if tag != frame::CONFIG {
        return Err(unexpected(tag));
    }
    let on_request = match args.kind {
        PluginKind::Collector => Some(forward_requests(output.clone())?),
        _ => None,
    };
    let created = match serde_json::from_slice(&config) {
        // SAFETY: forwarded to our caller.
        Ok(config) => unsafe { create(args, &config, on_request) },
        Err(e) => Err(CallFailure::Invalid(format!("config is not JSON: {e}"))),
    };
    let mut instance = match created {
        Ok(instance) => {
            answer(&Ok(Vec::new()))?;
            instance
        }
        Err(e) => {
            return answer(&Err(e));
        }
    };
    loop {
        match frame::read(&mut input, usize::MAX)? {
            // The host is gone: the instance is destroyed by its `Drop`.
            None => return Ok(()),
            Some((frame::CALL, bytes)) => {
                answer(&instance.call(&bytes))?;
            }
            Some((frame::SHUTDOWN, _)) => {
                let result = instance.shutdown().map(|()| Vec::new());
                return answer(&result);
            }
            Some((tag, _)) => return Err(unexpected(tag)),
        }
    }
}

/// What the instance's `request_collection` runs in the plugin's process: wake a thread that
/// writes one [`REQUEST`](frame::REQUEST) frame to the host. The request itself never blocks (a
/// full pipe or an answer being written only holds up that thread), and requests made while a
/// wake-up is pending are one: at most one frame is queued behind the one being written.
fn forward_requests(output: Arc<Mutex<File>>) -> io::Result<OnRequest> {
    let (wake, woken) = bounded::<()>(1);
    std::thread::Builder::new()
        .name("collection-requests".into())
        .spawn(move || {
            // Ends when the instance is destroyed (its table, holding `wake`, goes with it) or
            // the host stops reading.
            while woken.recv().is_ok() {
                let mut out = output.lock().unwrap_or_else(PoisonError::into_inner);
                if frame::write(&mut *out, frame::REQUEST, &[]).is_err() {
                    return;
                }
            }
        })?;
    Ok(OnRequest::new(move || {
        // Full: a frame is already due, and it stands for this request too.
        let _ = wake.try_send(());
    }))
}

fn unexpected(tag: u8) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected request {tag} from the host"),
    )
}

/// The library's declaration as JSON, or why it cannot be loaded.
///
/// # Safety
///
/// As [`run_child`].
unsafe fn describe(args: &RunnerArgs) -> Result<Vec<u8>, CallFailure> {
    // SAFETY: forwarded to our caller.
    let library = unsafe { PluginLibrary::load(&args.library) }
        .map_err(|e| CallFailure::Invalid(e.to_string()))?;
    Ok(serde_json::to_vec(&library.declared()).expect("a declaration always serialises"))
}

/// # Safety
///
/// As [`run_child`].
unsafe fn create(
    args: &RunnerArgs,
    config: &serde_json::Value,
    on_request: Option<OnRequest>,
) -> Result<PluginInstance, CallFailure> {
    // SAFETY: forwarded to our caller.
    let library = unsafe { PluginLibrary::load(&args.library) }
        .map_err(|e| CallFailure::Invalid(e.to_string()))?;
    let Some(info) = library.find(args.kind, &args.plugin).cloned() else {
        return Err(CallFailure::Invalid(format!(
            "`{}` has no {} named `{}`",
            args.library.display(),
            args.kind.as_str(),
            args.plugin
        )));
    };
    PluginInstance::create_with_requests(&library, &info, config, args.max_payload, on_request)
}

/// Moves standard input and output to close-on-exec descriptors for the protocol, and points
/// descriptors 0 and 1 at `/dev/null` and standard error.
///
/// # Safety
///
/// Nothing else in the process may be using descriptors 0 and 1 as the protocol's.
unsafe fn take_stdio() -> io::Result<(BufReader<File>, File)> {
    let dup = |fd: RawFd| {
        // SAFETY: duplicating a descriptor has no memory-safety preconditions.
        let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if new < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(new)
        }
    };
    let input = dup(libc::STDIN_FILENO)?;
    let output = dup(libc::STDOUT_FILENO)?;
    let null = File::open("/dev/null")?;
    let redirect = |from: RawFd, to: RawFd| {
        // SAFETY: both descriptors are open; `to` is replaced atomically.
        if unsafe { libc::dup2(from, to) } < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    redirect(std::os::fd::AsRawFd::as_raw_fd(&null), libc::STDIN_FILENO)?;
    redirect(libc::STDERR_FILENO, libc::STDOUT_FILENO)?;
    // SAFETY: `input` and `output` were just created by `fcntl` and are owned by nobody else.
    Ok(unsafe {
        (
            BufReader::new(File::from_raw_fd(input)),
            File::from_raw_fd(output),
        )
    })
}
