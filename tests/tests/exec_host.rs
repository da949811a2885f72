//! The `exec` collector under the real host binary, on a thread of the host and in process
//! isolation: what the program writes on stderr reaches the host's log naming the plugin (and,
//! isolated, the instance, through the host's logger), and the program dies with the host when
//! the host is killed with `SIGKILL` and has no chance to stop it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use monitor_tests::{
    Killed, Scratch, Stderr, binary, eventually, free_port, library, signal, spawn_with_stderr,
    toml_path,
};

const LIMIT: Duration = Duration::from_secs(30);

/// Writes an executable shell script.
fn script(dir: &Scratch, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.write(name, &format!("#!/bin/sh\n{body}"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The pid in `pid_file`, once written.
fn read_pid(pid_file: &Path) -> Option<u32> {
    std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()
}

/// Whether `pid` runs: it exists and is not a zombie (an orphan's new parent may be slow to reap).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

/// Starts the host with one `exec` collector named `noisy`, whose program says something on
/// stderr, writes its pid and sleeps; returns the host, its stderr and the program's pid.
fn start(dir: &Scratch, isolation: &str) -> (Killed, Stderr, u32) {
    let pid_file = dir.join("program.pid");
    let program = script(
        dir,
        "noisy.sh",
        &format!(
            "echo 'disk almost full' >&2\necho $$ > {}\nexec sleep 600\n",
            pid_file.display()
        ),
    );
    let port = free_port();
    let config = dir.write(
        "monitor.toml",
        &format!(
            r#"[host]
interval = "1m"
listen = "127.0.0.1:{port}"

[[collector]]
plugin = "exec"
name = "noisy"
library = {lib}
isolation = "{isolation}"
[collector.config]
command = {program}
"#,
            lib = toml_path(&library("monitor-plugin-exec")),
            program = toml_path(&program),
        ),
    );
    let (host, stderr) = spawn_with_stderr(
        Command::new(binary("monitor-host"))
            .args(["--log-format", "json", "run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info"),
    );
    let host = Killed(host);
    let pid = eventually(LIMIT, || read_pid(&pid_file).filter(|p| running(*p)));
    let pid = pid.unwrap_or_else(|| panic!("the program never started:\n{}", stderr.text()));
    (host, stderr, pid)
}

/// Kills the host with `SIGKILL` and asserts that the program follows it.
fn kill_host_and_expect_the_program_gone(mut host: Killed, stderr: &Stderr, pid: u32) {
    signal(&host.0, "KILL");
    let _ = host.0.wait();
    let gone = eventually(Duration::from_secs(10), || (!running(pid)).then_some(()));
    if gone.is_none() {
        // Not left behind by a failing test either.
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    assert!(
        gone.is_some(),
        "the program (pid {pid}) outlived the host killed with SIGKILL:\n{}",
        stderr.text()
    );
}

/// The host's JSON log lines (the program's own line is not JSON without isolation).
fn json_lines(stderr: &Stderr) -> Vec<serde_json::Value> {
    (stderr.lines().iter())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn on_a_thread_stderr_lines_name_the_plugin_and_the_program_dies_with_the_host() {
    let dir = Scratch::new("exec-host-thread");
    let (host, stderr, pid) = start(&dir, "thread");
    let line = "plugin=exec program=noisy.sh stream=stderr: disk almost full";
    assert!(stderr.wait_for(line), "no `{line}`:\n{}", stderr.text());
    kill_host_and_expect_the_program_gone(host, &stderr, pid);
}

#[test]
fn isolated_stderr_lines_go_through_the_hosts_logger_and_the_program_dies_with_the_host() {
    let dir = Scratch::new("exec-host-process");
    let (host, stderr, pid) = start(&dir, "process");
    let logged = eventually(LIMIT, || {
        json_lines(&stderr).into_iter().find(|l| {
            let f = &l["fields"];
            f["plugin"] == "noisy"
                && f["stream"] == "stderr"
                && f["message"]
                    .as_str()
                    .is_some_and(|m| m.ends_with("stream=stderr: disk almost full"))
        })
    });
    assert!(
        logged.is_some(),
        "no JSON log line of instance `noisy` with the program's stderr:\n{}",
        stderr.text()
    );
    // Every line the host wrote is its logger's: nothing raw from the plugin.
    let raw: Vec<String> = (stderr.lines().into_iter())
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_err())
        .collect();
    assert!(raw.is_empty(), "lines past the host's logger: {raw:?}");
    kill_host_and_expect_the_program_gone(host, &stderr, pid);
}
