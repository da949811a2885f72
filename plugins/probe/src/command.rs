//! `kind = "command"`: `sh -c command`, up on exit status 0, killed past its timeout.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::CommandProbe;
use crate::outcome::Outcome;

/// Most bytes of the command's output kept for the failure reason (its end).
const OUTPUT_TAIL: usize = 512;

pub(crate) fn run(p: &CommandProbe) -> Outcome {
    let start = Instant::now();
    let timeout = p.timeout.get();
    let mut child = match Command::new("sh")
        .arg("-c")
        .arg(&p.command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills what it started too (and the pipe closes).
        .process_group(0)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Outcome::down(None, format!("cannot run `{}`: {e}", p.command)),
    };
    let stderr = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = pipe.read_to_end(&mut all);
            let from = all.len().saturating_sub(OUTPUT_TAIL);
            String::from_utf8_lossy(&all[from..]).trim().to_owned()
        })
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if start.elapsed() >= timeout => {
                kill_group(child.id());
                let _ = child.wait();
                break Err(format!(
                    "`{}` did not finish within {timeout:?} and was killed",
                    p.command
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                kill_group(child.id());
                let _ = child.wait();
                break Err(format!("cannot wait for `{}`: {e}", p.command));
            }
        }
    };
    let latency = start.elapsed();
    let output = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    match status {
        Ok(s) if s.success() => Outcome::up(latency),
        Ok(s) => {
            let mut reason = format!("`{}` exited with {s}", p.command);
            if !output.is_empty() {
                reason.push_str(": ");
                reason.push_str(&output);
            }
            Outcome::down(Some(latency), reason)
        }
        Err(reason) => Outcome::down(Some(latency), reason),
    }
}

/// SIGKILL to the process group led by `pid`.
fn kill_group(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) takes no pointers; a negative pid names the process group the child leads
    // (it was spawned with `process_group(0)`), and it is not reaped yet, so the id is still ours.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}
