//! A watched process's exit is seen when it happens, through the real host binary: the `process`
//! collector's pidfd asks the host for a collection, the alert fires in the same wake-up and the
//! `restart-command` strategy restarts the service, all long before the collection interval.

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use monitor_tests::{
    RunningHost, Scratch, eventually, free_port, http_get, library, signal, toml_path,
};

/// Far longer than the test waits for the restart: only the exit event can make it in time.
const INTERVAL: &str = "1m";
/// How long the restart may take once the service is killed.
const RESTART_LIMIT: Duration = Duration::from_secs(20);

/// Kills and reaps a child when dropped.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Ends a process the test did not start itself (the restarted service) when dropped.
struct Stop(u32);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.to_string()).status();
    }
}

/// The pid in `pid_file` when it differs from `old` and that process runs (not a zombie).
fn restarted(pid_file: &Path, old: u32) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
    (pid != old && state != 'Z').then_some(pid)
}

#[test]
fn a_killed_service_is_restarted_without_waiting_for_the_interval() {
    let dir = Scratch::new("exit-restart");
    let pid_file = dir.join("svc.pid");
    // The first service is the test's own child, which the test does not reap once killed: it
    // stays a zombie, as under a parent that is slow to reap.
    let first = Reaper(Command::new("sleep").arg("600").spawn().unwrap());
    std::fs::write(&pid_file, first.0.id().to_string()).unwrap();
    let port = free_port();
    let config = dir.write(
        "monitor.toml",
        &format!(
            r#"
[host]
interval = "{INTERVAL}"
listen = "127.0.0.1:{port}"

[[collector]]
plugin = "process"
library = {process}
[[collector.config.processes]]
name = "svc"
pid_file = {pid}

[[alert]]
name = "svc_down"
metric = "process.up"
condition = "below"
threshold = 1
severity = "error"

[[strategy]]
plugin = "restart-command"
library = {restart}
on = ["svc_down"]
[strategy.config]
command = "sleep 600 >/dev/null 2>&1 & echo $! > {pid_raw}"
"#,
            process = toml_path(&library("monitor-plugin-process")),
            restart = toml_path(&library("monitor-plugin-restart-command")),
            pid = toml_path(&pid_file),
            pid_raw = pid_file.display(),
        ),
    );
    let host = RunningHost::builder(&config)
        .env("RUST_LOG", "info")
        .start();
    let stderr = host.stderr().clone();
    // The first collection (at start) saw the service up, and is watching it.
    let seen_up = eventually(RESTART_LIMIT, || {
        let (_, body) = http_get(port, "/metrics")?;
        body.lines()
            .any(|l| {
                l.starts_with("process_up{") && l.contains("process=\"svc\"") && l.ends_with(" 1")
            })
            .then_some(())
    });
    assert!(
        seen_up.is_some(),
        "the service was never seen up:\n{}",
        stderr.text()
    );

    let old = first.0.id();
    signal(&first.0, "KILL");
    let new = eventually(RESTART_LIMIT, || restarted(&pid_file, old));
    let _stop = new.map(Stop);
    assert!(
        new.is_some(),
        "no restart within {RESTART_LIMIT:?} of the kill (interval {INTERVAL}):\n{}",
        stderr.text()
    );
    assert!(
        stderr.count("healing attempt started") >= 1,
        "{}",
        stderr.text()
    );

    host.stop();
}
