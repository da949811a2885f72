//! The commands that ask a running host or an instrumented application: `status`, `alerts`,
//! `query`, `query-range`, `report`, `export`, `top` (in a real terminal under tmux) and `app`,
//! against the real host binary with the bundled system collector, and against the demo service.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use monitor_tests::{
    Killed, RunningHost, Scratch, binary, cli, describe, eventually, free_port, http_get, library,
    stdout, toml_path,
};

/// A host on a free port with the system collector every 500 ms and an alert that fires from
/// the first cycle (the machine has memory), killed on drop.
struct Host {
    _host: RunningHost,
    url: String,
    config: PathBuf,
    _dir: Scratch,
}

impl Host {
    fn start(name: &str) -> Host {
        let dir = Scratch::new(name);
        let port = free_port();
        let config = dir.write(
            "monitor.toml",
            &format!(
                r#"[host]
interval = "500ms"
listen = "127.0.0.1:{port}"
data_dir = "data"

[[collector]]
plugin = "system"
library = {lib}

[[alert]]
name = "memory_present"
metric = "system.memory.total_bytes"
condition = "above"
threshold = 0
severity = "warning"

[[alert]]
name = "memory_absurd"
metric = "system.memory.total_bytes"
condition = "below"
threshold = 0
"#,
                lib = toml_path(&library("monitor-plugin-system")),
            ),
        );
        let host = RunningHost::start(&config, port);
        let fired = eventually(Duration::from_secs(30), || {
            let (status, body) = host.try_get("/api/snapshot")?;
            (status == 200 && body.contains("\"state\":\"firing\"")).then_some(())
        });
        assert!(
            fired.is_some(),
            "the alert never fired:\n{}",
            host.stderr().text()
        );
        Host {
            url: host.url(),
            _host: host,
            config,
            _dir: dir,
        }
    }
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("not JSON ({e}): {}", describe(o)))
}

#[test]
fn status_exits_1_while_alerts_fire_and_reports_plugins() {
    let host = Host::start("cli-status");
    let o = cli(&["status", "--url", &host.url]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let text = stdout(&o);
    assert!(text.contains(": healthy\n"), "{text}");
    assert!(text.contains("alerts: 1 firing, 0 pending"), "{text}");
    let header = text
        .lines()
        .find(|l| l.starts_with("KIND"))
        .unwrap_or_else(|| panic!("{text}"));
    let row = text
        .lines()
        .find(|l| l.starts_with("collector"))
        .unwrap_or_else(|| panic!("{text}"));
    // Aligned: the STATE column starts at the same place on both lines.
    let at = header.find("STATE").unwrap();
    assert_eq!(row.get(at..at + 2), Some("ok"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "no colour when not a terminal: {text:?}"
    );

    // The same host found through its config's listen address, as JSON.
    let o = cli(&[
        "status",
        "--config",
        host.config.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let v = json(&o);
    assert_eq!(v["healthy"], true);
    assert_eq!(v["alerts"]["firing"], 1);
    assert_eq!(v["plugins"][0]["plugin"], "system");
    assert_eq!(v["plugins"][0]["state"], "ok");
}

#[test]
fn alerts_query_report_and_export() {
    let host = Host::start("cli-commands");
    let url = host.url.as_str();

    let o = cli(&["alerts", "--url", url]);
    assert!(o.status.success(), "{}", describe(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("ALERT ") && lines[0].contains("LABELS"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("memory_present") && lines[1].contains("firing"),
        "firing first: {text}"
    );
    assert!(
        lines[2].starts_with("memory_absurd") && lines[2].contains("inactive"),
        "{text}"
    );
    let o = cli(&["alerts", "--url", url, "--output", "json"]);
    let v = json(&o);
    assert_eq!(v[0]["alert"], "memory_present");
    assert_eq!(v[0]["state"], "firing");
    assert!(v[0]["value"].as_f64().unwrap() > 0.0);

    let o = cli(&["query", "system_memory_total_bytes", "--url", url]);
    assert!(o.status.success(), "{}", describe(&o));
    assert!(stdout(&o).starts_with("SERIES"), "{}", describe(&o));
    assert!(
        stdout(&o).contains("system_memory_total_bytes"),
        "{}",
        describe(&o)
    );
    let o = cli(&[
        "query",
        "system_memory_total_bytes",
        "--time",
        "now",
        "-o",
        "json",
        "--url",
        url,
    ]);
    let v = json(&o);
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 1, "{v}");
    // A query the host refuses: its message, exit 1.
    let o = cli(&["query", "rate(system_memory_total_bytes[5m]", "--url", url]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("/api/v1/query refused the query: bad_data"),
        "{err}"
    );

    let range = [
        "query-range",
        "system_memory_total_bytes",
        "--start",
        "-1m",
        "--step",
        "1s",
        "--url",
        url,
    ];
    let o = cli(&range);
    assert!(o.status.success(), "{}", describe(&o));
    assert!(
        stdout(&o).contains("points)\n  TIME (UTC)"),
        "{}",
        describe(&o)
    );
    let o = cli(&[&range[..], &["--output", "json"]].concat());
    let v = json(&o);
    assert_eq!(v["data"]["resultType"], "matrix");
    assert!(
        !v["data"]["result"][0]["values"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{v}"
    );

    let o = cli(&["report", "--url", url]);
    assert!(o.status.success(), "{}", describe(&o));
    let text = stdout(&o);
    let alerts = &text[text.find("\nalerts:\n").unwrap_or_else(|| panic!("{text}"))..];
    assert!(
        alerts
            .lines()
            .any(|l| l.contains("memory_present") && l.contains("firing")),
        "{text}"
    );

    let o = cli(&["export", "--format", "json", "--url", url]);
    assert!(
        json(&o)["series"].as_array().is_some_and(|s| !s.is_empty()),
        "{}",
        describe(&o)
    );
    let o = cli(&["export", "--format", "prometheus", "--url", url]);
    assert!(
        stdout(&o).contains("# TYPE monitor_alert_state gauge"),
        "{}",
        describe(&o)
    );
}

#[test]
fn an_unreachable_host_exits_2_naming_the_url() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    for command in ["status", "alerts", "report", "top"] {
        let o = cli(&[command, "--url", &url]);
        assert_eq!(o.status.code(), Some(2), "{command}: {}", describe(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!("cannot reach {url}/")),
            "{command}: {err}"
        );
    }
}

#[test]
fn something_else_answering_is_an_error_naming_the_url() {
    let app_port = free_port();
    let _app = demo_service(app_port);
    // The demo service answers /api/snapshot with an application's snapshot, not a host's.
    let url = format!("http://127.0.0.1:{app_port}");
    let o = cli(&["query", "up", "--url", &url]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("{url}/api/v1/query answered 404")),
        "{err}"
    );
}

fn demo_service(port: u16) -> Killed {
    let app = Killed(
        Command::new(binary("demo-service"))
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--healthy-for",
                "3600",
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let calls = eventually(Duration::from_secs(20), || {
        let (_, b) = http_get(port, "/api/snapshot")?;
        b.contains("\"name\":\"demo.handle_request\"").then_some(())
    });
    assert!(calls.is_some(), "the demo service serves its snapshot");
    app
}

#[test]
fn app_commands_from_an_exposition_and_from_a_snapshot_file() {
    let port = free_port();
    let _app = demo_service(port);
    let url = format!("http://127.0.0.1:{port}");
    let (status, report) = http_get(port, "/api/report").unwrap();
    assert_eq!(status, 200);
    assert!(report.starts_with("Performance report:"), "{report}");

    let o = cli(&["app", "report", "--url", &url]);
    assert!(o.status.success(), "{}", describe(&o));
    let text = stdout(&o);
    assert!(text.contains("\nslowest (by p99):\nFUNCTION"), "{text}");
    assert!(text.contains("\nmost called:\nFUNCTION"), "{text}");
    assert!(text.contains("demo.handle_request"), "{text}");
    let o = cli(&[
        "app", "report", "--url", &url, "--output", "json", "--top", "1",
    ]);
    let v = json(&o);
    assert_eq!(v["slowest"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["most_called"].as_array().unwrap().len(), 1, "{v}");

    let o = cli(&["app", "export", "--url", &url, "--format", "prometheus"]);
    assert!(
        stdout(&o).contains("monitor_function_calls_total{function=\"demo.handle_request\"}"),
        "{}",
        describe(&o)
    );
    let o = cli(&["app", "export", "--url", &url]);
    let exported = json(&o);
    assert!(
        exported["functions"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
    );

    // The same from the exported file.
    let dir = Scratch::new("cli-app");
    let file = dir.write("perf.json", &stdout(&o));
    let file = file.to_str().unwrap();
    let o = cli(&["app", "report", "--file", file]);
    assert!(o.status.success(), "{}", describe(&o));
    assert!(
        stdout(&o).starts_with(&format!("application at {file}: ")),
        "{}",
        describe(&o)
    );
    assert!(
        stdout(&o).contains("\nmost called:\nFUNCTION"),
        "{}",
        describe(&o)
    );
    let o = cli(&["app", "export", "--file", file, "--format", "prometheus"]);
    let text = stdout(&o);
    assert!(
        text.contains("# TYPE monitor_function_latency_seconds summary"),
        "{text}"
    );
    let calls = exported["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "demo.handle_request")
        .unwrap()["calls"]
        .as_u64()
        .unwrap();
    assert!(
        text.contains(&format!(
            "monitor_function_calls_total{{function=\"demo.handle_request\"}} {calls}\n"
        )),
        "{text}"
    );
    if let Some(check) = monitor_tests::promtool_check(&text) {
        check.unwrap_or_else(|e| panic!("promtool: {e}\n{text}"));
    }

    // A file that is not a snapshot, and one that is missing: errors naming the file.
    let bad = dir.write("bad.json", "{\"series\": []}");
    let o = cli(&["app", "report", "--file", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.json") && err.contains("no \"functions\" array"),
        "{err}"
    );
    let o = cli(&[
        "app",
        "report",
        "--file",
        dir.join("missing.json").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot read"),
        "{}",
        describe(&o)
    );
}

/// tmux with its own server socket, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(name: &str) -> Option<Tmux> {
        let found = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            assert!(
                std::env::var_os("MONITOR_REQUIRE_PROMTOOL").is_none_or(|v| v != "1"),
                "tmux is required (MONITOR_REQUIRE_PROMTOOL=1) but missing"
            );
            eprintln!("skipped: tmux is not installed");
            return None;
        }
        Some(Tmux {
            socket: format!("monitor-{name}-{}", std::process::id()),
        })
    }

    fn run(&self, args: &[&str]) -> String {
        let o = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    fn type_line(&self, line: &str) {
        self.run(&["send-keys", "-t", "t", "-l", line]);
        self.run(&["send-keys", "-t", "t", "Enter"]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .arg("kill-server")
            .status();
    }
}

fn wait_for_file(path: &Path) -> Option<String> {
    eventually(Duration::from_secs(20), || {
        std::fs::read_to_string(path)
            .ok()
            .filter(|s| s.ends_with('\n'))
    })
}

/// Runs `command` in a 120x40 tmux terminal until its screen shows every one of `expected`,
/// presses Tab and Down (it keeps running), then `q`: it must exit 0, leave the alternate screen
/// and restore the terminal's modes. The screen it showed is returned.
fn drive_in_tmux(tmux: &Tmux, command: &str, expected: &[&str]) -> String {
    let dir = Scratch::new("cli-tty");
    let (before, after, exit) = (dir.join("before"), dir.join("after"), dir.join("exit"));
    tmux.run(&[
        "new-session",
        "-d",
        "-x",
        "120",
        "-y",
        "40",
        "-s",
        "t",
        "sh",
    ]);
    tmux.type_line(&format!("stty -g > {}", before.display()));
    wait_for_file(&before).expect("the shell runs");
    tmux.type_line(&format!(
        "{command}; echo $? > {}; stty -g > {}",
        exit.display(),
        after.display()
    ));
    let shown = eventually(Duration::from_secs(20), || {
        let s = tmux.screen();
        expected.iter().all(|e| s.contains(e)).then_some(s)
    });
    let shown = shown.unwrap_or_else(|| panic!("never showed {expected:?}:\n{}", tmux.screen()));
    tmux.run(&["send-keys", "-t", "t", "Tab", "Down"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!exit.exists(), "quit on tab:\n{}", tmux.screen());
    tmux.run(&["send-keys", "-t", "t", "q"]);
    assert_eq!(
        wait_for_file(&exit).as_deref(),
        Some("0\n"),
        "{}",
        tmux.screen()
    );
    let after = wait_for_file(&after).unwrap();
    assert_eq!(
        std::fs::read_to_string(&before).unwrap(),
        after,
        "terminal modes restored"
    );
    let screen = tmux.screen();
    assert!(
        !screen.contains(expected[0]),
        "the alternate screen is left:\n{screen}"
    );
    shown
}

#[test]
fn top_runs_in_a_real_terminal_and_restores_it_on_q() {
    let Some(tmux) = Tmux::new("top") else { return };
    let host = Host::start("cli-top");
    let command = format!(
        "{} top --url {} --interval 500ms",
        binary("monitor-host").display(),
        host.url
    );
    let expected = [
        " plugins (1) ",
        "memory_present",
        " series, busiest first",
        " healing, latest first",
    ];
    let shown = drive_in_tmux(&tmux, &command, &expected);
    assert!(
        shown.lines().next().unwrap().starts_with("monitor-host "),
        "{shown}"
    );
    assert!(shown.contains("firing"), "{shown}");
}

#[test]
fn app_dashboard_runs_in_a_real_terminal() {
    let Some(tmux) = Tmux::new("app") else { return };
    let port = free_port();
    let _app = demo_service(port);
    let command = format!(
        "{} app dashboard --url http://127.0.0.1:{port} --interval 200ms",
        binary("monitor-host").display()
    );
    let expected = [
        " functions, most called first",
        " slowest (by p99) ",
        "demo.handle_request",
    ];
    let shown = drive_in_tmux(&tmux, &command, &expected);
    assert!(
        shown.starts_with(&format!("application at http://127.0.0.1:{port}: ")),
        "{shown}"
    );
}
