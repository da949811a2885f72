//! The child side of an isolated instance: `monitor-host plugin-runner ...` loads the library with
//! the host's own loader, creates and configures the instance, then serves calls over its stdin
//! and stdout until the host asks it to shut down or goes away.

use std::fs::File;
use std::io::{self, BufReader};
use std::os::fd::{FromRawFd as _, RawFd};
use std::path::PathBuf;

use monitor_plugin::abi::PluginKind;

use super::frame;
use crate::library::{CallFailure, PluginInstance, PluginLibrary};

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
    let (mut input, mut output) = unsafe { take_stdio() }?;
    let Some((tag, config)) = frame::read(&mut input, usize::MAX)? else {
        return Ok(());
    };
    if tag != frame::CONFIG {
        return Err(unexpected(tag));
    }
    let created = match serde_json::from_slice(&config) {
        // SAFETY: forwarded to our caller.
        Ok(config) => unsafe { create(args, &config) },
        Err(e) => Err(CallFailure::Invalid(format!("config is not JSON: {e}"))),
    };
    let mut instance = match created {
        Ok(instance) => {
            frame::answer(&mut output, &Ok(Vec::new()))?;
            instance
        }
        Err(e) => {
            return frame::answer(&mut output, &Err(e));
        }
    };
    loop {
        match frame::read(&mut input, usize::MAX)? {
            // The host is gone: the instance is destroyed by its `Drop`.
            None => return Ok(()),
            Some((frame::CALL, bytes)) => {
                frame::answer(&mut output, &instance.call(&bytes))?;
            }
            Some((frame::SHUTDOWN, _)) => {
                let result = instance.shutdown().map(|()| Vec::new());
                return frame::answer(&mut output, &result);
            }
            Some((tag, _)) => return Err(unexpected(tag)),
        }
    }
}

fn unexpected(tag: u8) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected request {tag} from the host"),
    )
}

/// # Safety
///
/// As [`run_child`].
unsafe fn create(
    args: &RunnerArgs,
    config: &serde_json::Value,
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
    PluginInstance::create(&library, &info, config, args.max_payload)
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
