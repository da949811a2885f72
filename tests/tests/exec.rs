//! The `exec` collector and notifier with real programs (shell scripts): Prometheus text, JSON
//! lines, asking with a newline, restarts after an exit, notifications on stdin, and the program
//! stopped and reaped at shutdown.

use std::path::{Path, PathBuf};
use std::time::Duration;

use monitor_host::{Config, Engine};
use monitor_tests::{Scratch, eventually, library, toml_path};

fn engine(text: &str, dir: &Path) -> Engine {
    let config = Config::from_str(text, "monitor.toml", dir).unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: the plugin libraries are built from this workspace.
    unsafe { Engine::load(&config) }.unwrap_or_else(|e| panic!("{e}"))
}

fn lib() -> String {
    toml_path(&library("monitor-plugin-exec"))
}

/// Writes an executable shell script.
fn script(dir: &Scratch, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.write(name, &format!("#!/bin/sh\n{body}"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn collector(program: &Path, extra: &str) -> String {
    format!(
        "[[collector]]\nplugin = \"exec\"\nlibrary = {}\n[collector.config]\ncommand = {}\n{extra}\n",
        lib(),
        toml_path(program)
    )
}

fn latest(e: &Engine, name: &str) -> Option<f64> {
    e.store()
        .by_name(name)
        .next()
        .and_then(|(_, s)| s.latest())
        .map(|(_, v)| v)
}

/// Cycles (10 s apart on the engine's clock) until `f` holds, for at most 20 s of real time.
fn cycle_until(e: &mut Engine, clock: &mut u64, mut f: impl FnMut(&Engine) -> bool) -> bool {
    eventually(Duration::from_secs(20), || {
        *clock += 10_000;
        e.cycle(*clock);
        if f(e) {
            Some(())
        } else {
            std::thread::sleep(Duration::from_millis(100));
            None
        }
    })
    .is_some()
}

/// Whether process `pid` (from a pid file) still exists, zombies included.
fn alive(pid_file: &Path) -> bool {
    let pid = std::fs::read_to_string(pid_file).unwrap();
    Path::new(&format!("/proc/{}", pid.trim())).exists()
}

#[test]
fn prometheus_text_blocks_are_collected_and_the_program_is_stopped_at_shutdown() {
    let dir = Scratch::new("exec-prom");
    let pid = dir.join("pid");
    let program = script(
        &dir,
        "metrics.sh",
        &format!(
            "echo $$ > {pid}\necho starting >&2\ni=0\nwhile :; do\n  printf '# TYPE jobs counter\\njobs{{queue=\"a\"}} %d\\n# TYPE temp gauge\\ntemp 21.5\\n\\n' $i\n  i=$((i+1))\n  sleep 0.1\ndone\n",
            pid = pid.display()
        ),
    );
    let mut e = engine(&collector(&program, "format = \"prometheus\""), dir.path());
    let mut clock = 0;
    assert!(cycle_until(&mut e, &mut clock, |e| latest(e, "jobs")
        .is_some_and(|v| v >= 2.0)));
    let (key, _) = e.store().by_name("jobs").next().unwrap();
    assert_eq!(key.labels.get("queue").map(String::as_str), Some("a"));
    assert_eq!(latest(&e, "temp"), Some(21.5));
    assert_eq!(latest(&e, "exec.restarts"), Some(0.0));
    assert!(alive(&pid));
    let outcomes = e.shutdown();
    assert!(outcomes.iter().all(|o| o.result == "ok"), "{outcomes:?}");
    assert!(
        !alive(&pid),
        "the program outlived the shutdown (or is a zombie)"
    );
}

#[test]
fn json_lines_answer_one_block_per_newline_asked() {
    let dir = Scratch::new("exec-json");
    // Answers each line it reads with one sample and an empty line; counts the questions.
    let program = script(
        &dir,
        "ask.sh",
        "n=0\nwhile read -r _; do\n  echo \"{\\\"name\\\": \\\"asked\\\", \\\"value\\\": $n, \\\"labels\\\": {\\\"by\\\": \\\"script\\\"}}\"\n  echo\n  n=$((n+1))\ndone\n",
    );
    let mut e = engine(
        &collector(
            &program,
            "format = \"json\"\nsignal = \"newline\"\ntimeout = \"2s\"",
        ),
        dir.path(),
    );
    e.cycle(0);
    assert_eq!(latest(&e, "asked"), Some(0.0));
    e.cycle(10_000);
    assert_eq!(latest(&e, "asked"), Some(1.0));
    e.cycle(20_000);
    assert_eq!(latest(&e, "asked"), Some(2.0));
    let (key, series) = e.store().by_name("asked").next().unwrap();
    assert_eq!(key.labels.get("by").map(String::as_str), Some("script"));
    assert_eq!(series.points.len(), 3, "one sample per question");
}

#[test]
fn a_program_that_exits_is_reported_and_restarted() {
    let dir = Scratch::new("exec-restart");
    let runs = dir.join("runs");
    // Writes one sample, then exits 3 after a moment.
    let program = script(
        &dir,
        "once.sh",
        &format!(
            "echo run >> {runs}\necho '{{\"name\": \"once\", \"value\": 1}}'\nsleep 0.3\necho bye >&2\nexit 3\n",
            runs = runs.display()
        ),
    );
    let mut e = engine(
        &collector(
            &program,
            "format = \"json\"\nrestart_delay = \"1s\"\nmax_restart_delay = \"2s\"",
        ),
        dir.path(),
    );
    let mut clock = 0;
    // The collection after an exit reports it, and the program as down.
    assert!(cycle_until(&mut e, &mut clock, |e| e
        .events()
        .any(|ev| ev.kind == "exec_exited")));
    let exited = e.events().find(|ev| ev.kind == "exec_exited").unwrap();
    assert!(
        exited.message.contains("exit status: 3"),
        "{}",
        exited.message
    );
    let seen_down = |e: &Engine| {
        e.store()
            .by_name("exec.up")
            .any(|(_, s)| s.points.iter().any(|(_, v)| v == 0.0))
    };
    assert!(
        cycle_until(&mut e, &mut clock, seen_down),
        "exec.up 0 while down"
    );
    // The collections after it fail while it is still down.
    let errored = cycle_until(&mut e, &mut clock, |e| {
        e.plugins().iter().any(|p| {
            p.stats
                .last_error
                .as_deref()
                .is_some_and(|m| m.contains("is not running: exited with exit status: 3"))
        })
    });
    assert!(
        errored,
        "the exit is the collection's error while it is down"
    );
    assert!(cycle_until(&mut e, &mut clock, |e| {
        latest(e, "exec.restarts").is_some_and(|r| r >= 2.0)
    }));
    let started = std::fs::read_to_string(&runs).unwrap().lines().count();
    assert!(started >= 3, "{started} runs");
    assert_eq!(latest(&e, "once"), Some(1.0));
}

#[test]
fn a_program_that_cannot_start_is_a_configure_error() {
    let dir = Scratch::new("exec-missing");
    let missing = dir.join("no-such-program");
    let config = Config::from_str(&collector(&missing, ""), "monitor.toml", dir.path()).unwrap();
    // SAFETY: as above.
    let err = unsafe { Engine::load(&config) }.unwrap_err().to_string();
    assert!(
        err.contains("cannot start") && err.contains("no-such-program"),
        "{err}"
    );
    // The notifier refuses the collector's keys.
    let text = format!(
        "[[notifier]]\nplugin = \"exec\"\nlibrary = {}\n[notifier.config]\ncommand = \"cat\"\nformat = \"json\"\n",
        lib()
    );
    let config = Config::from_str(&text, "monitor.toml", dir.path()).unwrap();
    // SAFETY: as above.
    let err = unsafe { Engine::load(&config) }.unwrap_err().to_string();
    assert!(
        err.contains("`format` is a key of the exec collector"),
        "{err}"
    );
}

#[test]
fn the_notifier_writes_one_json_line_per_notification() {
    let dir = Scratch::new("exec-notify");
    let value = dir.write("value", "50");
    let out = dir.join("notifications.jsonl");
    let pid = dir.join("pid");
    let program = script(
        &dir,
        "sink.sh",
        &format!(
            "echo $$ > {pid}\nexec cat >> {out}\n",
            pid = pid.display(),
            out = out.display()
        ),
    );
    let text = format!(
        r#"
[[collector]]
plugin = "file"
library = {test}
[collector.config]
path = {value}

[[alert]]
name = "too_high"
metric = "test.value"
condition = "above"
threshold = 10

[[notifier]]
plugin = "exec"
library = {exec}
[notifier.config]
command = {program}
"#,
        test = toml_path(&library("monitor-test-plugins")),
        exec = lib(),
        value = toml_path(&value),
        program = toml_path(&program),
    );
    let mut e = engine(&text, dir.path());
    e.cycle(1_700_000_000_000);
    e.settle(Duration::from_secs(10));
    std::fs::write(&value, "1").unwrap();
    e.cycle(1_700_000_010_000);
    e.settle(Duration::from_secs(10));
    let lines = eventually(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&out).ok()?;
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (lines.len() == 2).then_some(lines)
    })
    .expect("two notifications written");
    assert_eq!(lines[0]["alert"], "too_high");
    assert_eq!(lines[0]["status"], "firing");
    assert_eq!(lines[1]["status"], "resolved");
    let _ = e.shutdown();
    assert!(!alive(&pid), "the notifier's program outlived the shutdown");
}
