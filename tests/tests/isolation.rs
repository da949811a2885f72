//! `isolation = "process"`: plugins in child processes of the host. A plugin that segfaults,
//! aborts or exits fails only its call, and the host restarts it; a hung call is killed at its
//! timeout; notifiers and strategies work the same way; `check` survives a crashing configure.
//! Without isolation, the same plugin takes the host down, which is why isolation exists.

use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use monitor_host::{Config, Engine};
use monitor_tests::{
    Killed, RunningHost, Scratch, Stderr, binary, cli, compile_c, describe, eventually, free_port,
    library, metric, toml_path,
};

const LIMIT: Duration = Duration::from_secs(60);

fn test_lib() -> String {
    toml_path(&library("monitor-test-plugins"))
}

/// A `[[collector]]` of the crashing test plugin, crashing `how` while `flag` exists.
fn crashy(name: &str, how: &str, isolation: &str, flag: &Path, extra: &str) -> String {
    format!(
        r#"
[[collector]]
plugin = "crashy"
name = "{name}"
library = {lib}
isolation = "{isolation}"
timeout = "5s"
[collector.config]
flag = {flag}
crash = "{how}"
{extra}
"#,
        lib = test_lib(),
        flag = toml_path(flag),
    )
}

fn spawn(config: &Path) -> (RunningHost, Stderr) {
    let host = RunningHost::builder(config).env("RUST_LOG", "info").start();
    let stderr = host.stderr().clone();
    (host, stderr)
}

fn wait_metric(port: u16, name: &str, labels: &[&str], ok: impl Fn(f64) -> bool) -> Option<f64> {
    eventually(LIMIT, || metric(port, name, labels).filter(|v| ok(*v)))
}

/// The processes whose parent is `pid` (read from `/proc/*/stat`).
fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let child: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).ok()?;
        // `pid (comm) state ppid ...`: the command may hold spaces and parentheses.
        let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?;
        (ppid.parse() == Ok(pid)).then_some(child)
    })
    .collect()
}

/// Whether `pid` is a live (not zombie) plugin runner.
fn is_runner(pid: u32) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let zombie = state
        .rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
    !zombie && String::from_utf8_lossy(&cmdline).contains("plugin-runner")
}

fn runners(host: &Child) -> Vec<u32> {
    children(host.id())
        .into_iter()
        .filter(|p| is_runner(*p))
        .collect()
}

fn lines_with(stderr: &Stderr, needles: &[&str]) -> usize {
    (stderr.lines().iter())
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

#[test]
fn crashing_isolated_collectors_fail_alone_are_restarted_and_resume() {
    let dir = Scratch::new("isolation-crash");
    let flag = dir.write("crash", "");
    let value = dir.write("value", "7");
    let shutdowns = dir.join("shutdowns");
    let port = free_port();
    let extra = format!("shutdown_log = {}", toml_path(&shutdowns));
    let config = dir.write(
        "monitor.toml",
        &format!(
            r#"[host]
interval = "300ms"
listen = "127.0.0.1:{port}"
data_dir = "data"

[[collector]]
plugin = "file"
library = {lib}
[collector.config]
path = {value}
{segv}{abort}{exit}"#,
            lib = test_lib(),
            value = toml_path(&value),
            segv = crashy("crash-segv", "segv", "process", &flag, &extra),
            abort = crashy("crash-abort", "abort", "process", &flag, &extra),
            exit = crashy("crash-exit", "exit", "process", &flag, &extra),
        ),
    );
    let (mut host, stderr) = spawn(&config);
    let instances = ["crash-segv", "crash-abort", "crash-exit"];

    // While the flag exists, every call of the three crashes its process: each crash is counted,
    // and each call after one starts a new process (configured again).
    for name in instances {
        let label = format!("instance=\"{name}\"");
        let crashes = wait_metric(port, "monitor_plugin_crashes_total", &[&label], |v| {
            v >= 2.0
        });
        assert!(crashes.is_some(), "{name}: {}", stderr.text());
        let restarts = wait_metric(port, "monitor_plugin_restarts_total", &[&label], |v| {
            v >= 1.0
        });
        assert!(restarts.is_some(), "{name}: {}", stderr.text());
    }
    // One log line per crash, naming the instance and how its process ended.
    assert!(lines_with(&stderr, &["crash-segv", "signal 11 (SIGSEGV)"]) >= 2);
    assert!(lines_with(&stderr, &["crash-abort", "signal 6 (SIGABRT)"]) >= 2);
    assert!(lines_with(&stderr, &["crash-exit", "exited with status 3"]) >= 2);

    // The host is alive, and the other collector keeps collecting all along.
    assert!(
        host.child().try_wait().unwrap().is_none(),
        "{}",
        stderr.text()
    );
    let file = ["instance=\"file\""];
    let calls = metric(port, "monitor_plugin_calls_total", &file).unwrap();
    let more = wait_metric(port, "monitor_plugin_calls_total", &file, |v| {
        v >= calls + 3.0
    });
    assert!(more.is_some(), "{}", stderr.text());
    assert_eq!(
        metric(port, "monitor_plugin_errors_total", &file),
        Some(0.0)
    );
    assert_eq!(
        metric(port, "test_value", &["collector=\"file\""]),
        Some(7.0)
    );
    assert!(
        metric(port, "test_crashy", &[]).is_none(),
        "no crashing call returned samples"
    );

    // No more crashes: each collector's next call (in a new process) returns its samples.
    std::fs::remove_file(&flag).unwrap();
    for name in instances {
        let collector = format!("collector=\"{name}\"");
        let back = wait_metric(port, "test_crashy", &[&collector], |v| v == 1.0);
        assert!(back.is_some(), "{name}: {}", stderr.text());
        let label = format!("instance=\"{name}\"");
        let failing = metric(port, "monitor_plugin_consecutive_failures", &[&label]);
        assert_eq!(failing, Some(0.0), "{name}");
    }
    assert!(host.child().try_wait().unwrap().is_none());

    // A clean stop calls each instance's `shutdown` in its process, and leaves no process behind.
    let pids = runners(host.child());
    assert_eq!(pids.len(), 3, "{pids:?}");
    host.signal("TERM");
    let status = host.child().wait().unwrap();
    assert!(status.success(), "{status:?}: {}", stderr.text());
    let log = std::fs::read_to_string(&shutdowns).unwrap_or_default();
    assert_eq!(log.lines().filter(|l| *l == "crashy:-").count(), 3, "{log}");
    assert!(pids.iter().all(|p| !is_runner(*p)), "{pids:?}");
}

#[test]
fn without_isolation_the_same_crash_takes_the_host_down() {
    let dir = Scratch::new("isolation-none");
    let flag = dir.write("crash", "");
    for (how, signal, code) in [
        ("segv", Some(libc::SIGSEGV), None),
        ("abort", Some(libc::SIGABRT), None),
        ("exit", None, Some(3)),
    ] {
        let config = |isolation| {
            let name = format!("{how}-{isolation}.toml");
            let text = format!(
                "[host]\ninterval = \"1s\"\n{}",
                crashy("crashy", how, isolation, &flag, "")
            );
            dir.write(&name, &text).to_str().unwrap().to_owned()
        };
        let threaded = cli(&["run", "--once", "--config", &config("thread")]);
        assert_eq!(
            threaded.status.signal(),
            signal,
            "{how}: {}",
            describe(&threaded)
        );
        assert_eq!(
            threaded.status.code(),
            code,
            "{how}: {}",
            describe(&threaded)
        );

        let isolated = cli(&["run", "--once", "--config", &config("process")]);
        assert!(isolated.status.success(), "{how}: {}", describe(&isolated));
        let report = String::from_utf8_lossy(&isolated.stdout);
        assert!(report.contains("the plugin's process"), "{how}: {report}");
    }
}

#[test]
fn a_hung_isolated_call_is_killed_at_its_timeout_and_the_next_call_works() {
    let dir = Scratch::new("isolation-hang");
    let flag = dir.write("hang", "");
    let port = free_port();
    let config = dir.write(
        "monitor.toml",
        &format!(
            r#"[host]
interval = "300ms"
listen = "127.0.0.1:{port}"
data_dir = "data"

[[collector]]
plugin = "sleepy"
library = {lib}
isolation = "process"
timeout = "400ms"
[collector.config]
flag = {flag}
"#,
            lib = test_lib(),
            flag = toml_path(&flag),
        ),
    );
    let (mut host, stderr) = spawn(&config);
    let label = ["instance=\"sleepy\""];
    let first = eventually(LIMIT, || runners(host.child()).first().copied()).expect("a runner");

    // The hung call times out, and its process is killed rather than left running.
    let timeouts = wait_metric(port, "monitor_plugin_timeouts_total", &label, |v| v >= 1.0);
    assert!(timeouts.is_some(), "{}", stderr.text());
    let gone = eventually(LIMIT, || (!is_runner(first)).then_some(()));
    assert!(gone.is_some(), "the hung process {first} still runs");
    assert!(stderr.wait_for("isolated plugin's process killed"));
    assert_eq!(
        metric(port, "monitor_plugin_crashes_total", &label),
        Some(0.0)
    );

    // Unflagged, the next call runs in a new process and answers.
    std::fs::remove_file(&flag).unwrap();
    let back = wait_metric(port, "test_sleepy", &["collector=\"sleepy\""], |v| v == 1.0);
    assert!(back.is_some(), "{}", stderr.text());
    let restarts = metric(port, "monitor_plugin_restarts_total", &label);
    assert!(restarts.is_some_and(|r| r >= 1.0), "{restarts:?}");
    assert_eq!(metric(port, "monitor_plugin_stuck", &label), Some(0.0));

    // Its process dies with the host, even when the host is killed outright.
    let pids = runners(host.child());
    assert_eq!(pids.len(), 1, "{pids:?}");
    host.signal("KILL");
    host.child().wait().unwrap();
    let gone = eventually(LIMIT, || pids.iter().all(|p| !is_runner(*p)).then_some(()));
    assert!(gone.is_some(), "{pids:?} outlived the host");
}

#[test]
fn check_survives_a_configure_that_crashes_in_isolation() {
    let dir = Scratch::new("isolation-check");
    let flag = dir.write("crash", "");
    let extra = "crash_in_configure = true";
    let path = |isolation: &str| {
        let text = crashy("crashy", "abort", isolation, &flag, extra);
        let file = dir.write(&format!("{isolation}.toml"), &text);
        file.to_str().unwrap().to_owned()
    };

    let isolated = cli(&["check", "--config", &path("process")]);
    assert_eq!(isolated.status.code(), Some(2), "{}", describe(&isolated));
    let err = String::from_utf8_lossy(&isolated.stderr);
    assert!(
        err.contains("process.toml:8:1: plugin `crashy` refused its config")
            && err.contains("signal 6 (SIGABRT) during configure"),
        "{err}"
    );

    let threaded = cli(&["check", "--config", &path("thread")]);
    assert_eq!(
        threaded.status.signal(),
        Some(libc::SIGABRT),
        "{}",
        describe(&threaded)
    );

    // A plugin that refuses its config says so the same way in its process as on a thread.
    for isolation in ["thread", "process"] {
        let text = format!(
            "[[collector]]\nplugin = \"file\"\nlibrary = {}\nisolation = \"{isolation}\"\n",
            test_lib()
        );
        let file = dir.write(&format!("refuses-{isolation}.toml"), &text);
        let out = cli(&["check", "--config", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(":1:1: plugin `file` refused its config: `path` is required"),
            "{isolation}: {err}"
        );
    }

    // Without the flag, the isolated plugin configures, and `check` passes.
    std::fs::remove_file(&flag).unwrap();
    let ok = cli(&["check", "--config", &path("process")]);
    assert!(ok.status.success(), "{}", describe(&ok));
}

#[test]
fn an_isolated_notifier_and_strategy_work_end_to_end() {
    // The engine runs in this test process, so isolated instances need the host binary.
    monitor_host::worker::set_runner_program(binary("monitor-host"));
    let dir = Scratch::new("isolation-loop");
    let value = dir.write("value", "50");
    let notes = dir.join("notes.jsonl");
    let shutdowns = dir.join("shutdowns");
    let text = format!(
        r#"
[host]
interval = "10s"

[[collector]]
plugin = "file"
library = {lib}
isolation = "process"
[collector.config]
path = {value}

[[alert]]
name = "too_high"
metric = "test.value"
condition = "above"
threshold = 10
severity = "error"

[[notifier]]
plugin = "log"
library = {log}
isolation = "process"
[notifier.config]
path = {notes}

[[strategy]]
plugin = "fixer"
library = {lib}
isolation = "process"
on = ["too_high"]
[strategy.config]
path = {value}
value = 1
shutdown_log = {shutdowns}
label = "isolated"
"#,
        lib = test_lib(),
        log = toml_path(&library("monitor-plugin-log")),
        value = toml_path(&value),
        notes = toml_path(&notes),
        shutdowns = toml_path(&shutdowns),
    );
    let config = Config::from_str(&text, "monitor.toml", dir.path()).unwrap();
    // SAFETY: the libraries are built from this workspace.
    let mut e = unsafe { Engine::load(&config) }.unwrap_or_else(|e| panic!("{e}"));
    for p in e.plugins() {
        assert_eq!(p.isolation, "process", "{}", p.name);
    }

    // Fires: the notifier, in its process, writes the firing; the strategy, in its own, repairs
    // the value.
    e.cycle(0);
    e.settle(LIMIT);
    let lines = || {
        std::fs::read_to_string(&notes)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let n = lines();
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(
        (n[0]["alert"].as_str(), n[0]["status"].as_str()),
        (Some("too_high"), Some("firing"))
    );
    let heals: Vec<_> = e.healing().cloned().collect();
    assert_eq!(heals.len(), 1);
    assert!(heals[0].success, "{heals:?}");
    assert_eq!(heals[0].message, "attempt 1 on too_high");
    assert_eq!(std::fs::read_to_string(&value).unwrap(), "1");

    // Resolves on the repaired value.
    e.cycle(10_000);
    e.settle(LIMIT);
    let n = lines();
    assert_eq!(n.len(), 2, "{n:?}");
    assert_eq!(n[1]["status"], "resolved");
    for p in e.plugins() {
        assert_eq!((p.stats.errors, p.stats.crashes), (0, 0), "{}", p.name);
    }

    // Shutdown reaches each instance in its process.
    let outcomes = e.shutdown();
    assert!(outcomes.iter().all(|o| o.result == "ok"), "{outcomes:?}");
    let log = std::fs::read_to_string(&shutdowns).unwrap_or_default();
    assert_eq!(log.trim(), "fixer:isolated");
}

#[test]
fn an_isolated_collector_asks_for_a_collection_through_the_pipe() {
    let dir = Scratch::new("isolation-request");
    let mut watched = Killed(
        std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .unwrap(),
    );
    let pid_file = dir.write("svc.pid", &watched.0.id().to_string());
    let port = free_port();
    let config = dir.write(
        "monitor.toml",
        &format!(
            r#"[host]
interval = "30s"
listen = "127.0.0.1:{port}"

[[collector]]
plugin = "process"
library = {process}
isolation = "process"
[[collector.config.processes]]
name = "svc"
pid_file = {pid}
"#,
            process = toml_path(&library("monitor-plugin-process")),
            pid = toml_path(&pid_file),
        ),
    );
    let (mut host, stderr) = spawn(&config);
    let up = &["process=\"svc\""];
    // The collection at start saw it up, and its process watches it.
    let seen = wait_metric(port, "process_up", up, |v| v == 1.0);
    assert!(seen.is_some(), "never seen up:\n{}", stderr.text());
    assert_eq!(runners(host.child()).len(), 1, "{}", stderr.text());

    let killed = std::time::Instant::now();
    watched.0.kill().unwrap();
    let _ = watched.0.wait();
    // Only the exit's request can make it well before the 30 s interval.
    let down = eventually(Duration::from_secs(10), || {
        metric(port, "process_up", up).filter(|v| *v == 0.0)
    });
    assert!(
        down.is_some(),
        "the exit was not seen within 10 s of the kill (interval 30 s):\n{}",
        stderr.text()
    );
    assert!(killed.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_library_that_crashes_while_it_loads_fails_an_isolated_instance_not_the_host() {
    let dir = Scratch::new("isolation-load-crash");
    let lib = compile_c(
        &["tests/c/abort_on_load.c"],
        &dir.join("libabort_on_load.so"),
        true,
        &[],
    );
    let config = |isolation: &str| {
        let text = format!(
            "[[collector]]\nplugin = \"anything\"\nlibrary = {}\nisolation = \"{isolation}\"\n",
            toml_path(&lib)
        );
        let file = dir.write(&format!("{isolation}.toml"), &text);
        file.to_str().unwrap().to_owned()
    };
    let expected = format!(
        "process.toml:3:11: `library`: loading `{}` in a process of its own failed: the process \
         was killed by signal 6 (SIGABRT) while loading it",
        lib.display()
    );
    for command in ["check", "run"] {
        let out = cli(&[command, "--config", &config("process")]);
        assert_eq!(out.status.code(), Some(2), "{command}: {}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&expected), "{command}: {err}");
    }

    // On a thread of the host, the library is loaded in the host, which the crash ends.
    let threaded = cli(&["check", "--config", &config("thread")]);
    assert_eq!(
        threaded.status.signal(),
        Some(libc::SIGABRT),
        "{}",
        describe(&threaded)
    );
}
