//! Shared helpers for the workspace's end-to-end tests: building the plugin libraries and the host
//! binary once per test run, locating them, scratch directories, and the host binary running for a
//! test ([`RunningHost`]).

pub mod browser;
mod host;

pub use host::{HOST_WAIT, HostBuilder, RunningHost};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// Every package whose artefacts the tests load or run.
pub const PACKAGES: &[&str] = &[
    "monitor-host",
    "monitor-demo-service",
    "monitor-plugin-system",
    "monitor-plugin-process",
    "monitor-plugin-prometheus",
    "monitor-plugin-log",
    "monitor-plugin-webhook",
    "monitor-plugin-restart-command",
    "monitor-plugin-probe",
    "monitor-plugin-exec",
    "monitor-test-plugins",
    "monitor-test-plugin-mimalloc",
    "monitor-test-not-a-plugin",
];

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned()
}

/// The target directory cargo uses for this test run.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_relative() {
                workspace_root().join(p)
            } else {
                p
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Builds [`PACKAGES`] (debug profile) once per test process: `cargo test` does not build cdylib
/// members, so the tests build what they load.
///
/// # Panics
///
/// When the build fails.
pub fn build() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let mut cmd = cargo();
            cmd.arg("build").arg("--quiet");
            for p in PACKAGES {
                cmd.args(["-p", p]);
            }
            cmd.env("CARGO_TARGET_DIR", target_dir());
            let status = cmd.status().expect("cargo runs");
            assert!(status.success(), "building the plugin libraries failed");
            target_dir().join("debug")
        })
        .clone()
}

/// Cargo in the workspace root, without the variables `cargo test` sets for the test process
/// (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`...): build scripts that read one of them (ring's reads
/// `CARGO_MANIFEST_DIR`) would run again, and everything above them would be rebuilt, on every
/// test run, and once more on the next plain `cargo build`.
fn cargo() -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(workspace_root());
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let set_by_cargo = matches!(
            key,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "OUT_DIR"
        ) || key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_BIN_EXE_")
            || key.starts_with("CARGO_CFG_");
        if set_by_cargo {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Path of the cdylib of `package` built with the release profile (for benchmarks), building it
/// first.
///
/// # Panics
///
/// When the build fails.
pub fn release_library(package: &str) -> PathBuf {
    let status = cargo()
        .args(["build", "--quiet", "--release", "-p", package])
        .env("CARGO_TARGET_DIR", target_dir())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building {package} failed");
    target_dir()
        .join("release")
        .join(format!("lib{}.so", package.replace('-', "_")))
}

/// Path of the cdylib of `package`, building it first.
pub fn library(package: &str) -> PathBuf {
    build().join(format!("lib{}.so", package.replace('-', "_")))
}

/// Path of the binary `name`, building it first.
pub fn binary(name: &str) -> PathBuf {
    build().join(name)
}

/// Runs `monitor-host` with `args` (stdin closed) and waits for it.
pub fn cli(args: &[&str]) -> Output {
    Command::new(binary("monitor-host"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// What a finished command wrote to stdout, as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A finished command's exit code, stdout and stderr, for an assertion's message.
pub fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A scratch directory removed on drop.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// A new empty directory under the target directory (`name` helps when debugging).
    pub fn new(name: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = target_dir().join("test-scratch").join(format!(
            "{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside it.
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }

    /// Writes a file inside it and returns its path.
    pub fn write(&self, p: &str, contents: &str) -> PathBuf {
        let path = self.join(p);
        std::fs::write(&path, contents).expect("write scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A TOML string literal for a path.
pub fn toml_path(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// The C compiler `cc` finds for this machine, as a command ready for arguments.
pub fn c_compiler() -> Command {
    let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    cc::Build::new()
        .target(&triple)
        .host(&triple)
        .opt_level(0)
        .cargo_metadata(false)
        .get_compiler()
        .to_command()
}

/// Compiles C sources (with the SDK's `include/` on the path) into `output`; `shared` makes a
/// shared library. Extra arguments such as `-DNAME=1` go in `args`.
///
/// # Panics
///
/// When the compiler fails.
pub fn compile_c(sources: &[&str], output: &Path, shared: bool, args: &[&str]) -> PathBuf {
    let root = workspace_root();
    let mut cmd = c_compiler();
    cmd.arg("-std=c11").arg("-Wall").arg("-Werror");
    cmd.arg("-I").arg(root.join("plugins/sdk/include"));
    if shared {
        cmd.args(["-shared", "-fPIC"]);
    }
    cmd.args(args);
    for s in sources {
        cmd.arg(root.join(s));
    }
    cmd.arg("-o").arg(output);
    let out = cmd.output().expect("the C compiler runs");
    assert!(
        out.status.success(),
        "C compilation failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    output.to_owned()
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP/1.0 GET on loopback: `(status, body)`, or `None` when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// A plain HTTP/1.0 request with `method` and a JSON `body` on loopback: `(status, body)`, or
/// `None` when nothing answers.
pub fn http_send(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    http_send_with(port, method, path, &[], body)
}

/// [`http_send`] with extra request `headers` (`("Authorization", "Bearer ...")`).
pub fn http_send_with(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         {extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// Retries `f` every 50 ms until it returns `Some`, for at most `limit`.
pub fn eventually<T>(limit: std::time::Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = std::time::Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() >= end {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Runs `promtool check metrics` on a Prometheus exposition and returns its complaints, or `None`
/// when promtool is not installed (CI installs it and sets `MONITOR_REQUIRE_PROMTOOL=1`).
///
/// # Panics
///
/// When promtool is required but missing.
pub fn promtool_check(text: &str) -> Option<Result<(), String>> {
    use std::io::Write;
    let mut child = promtool(&["check", "metrics"])?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(text.as_bytes())
        .expect("promtool reads");
    Some(promtool_verdict(child))
}

/// Runs `promtool check rules --lint-fatal` on a rule file: `Ok` when promtool accepts it, its
/// complaints otherwise (a rule repeated with the same labels included), or `None` when promtool
/// is not installed.
///
/// # Panics
///
/// When promtool is required (`MONITOR_REQUIRE_PROMTOOL`) but missing.
pub fn promtool_check_rules(file: &Path) -> Option<Result<(), String>> {
    let file = file.to_str().expect("a UTF-8 path");
    let child = promtool(&["check", "rules", "--lint-fatal", file])?;
    Some(promtool_verdict(child))
}

/// Whether promtool is installed.
///
/// # Panics
///
/// When promtool is required (`MONITOR_REQUIRE_PROMTOOL`) but missing.
pub fn promtool_installed() -> bool {
    promtool(&["--version"]).is_some_and(|c| c.wait_with_output().is_ok())
}

/// `promtool` started with `args` and piped standard streams, or `None` when it is not installed.
fn promtool(args: &[&str]) -> Option<std::process::Child> {
    let spawned = Command::new("promtool")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    match spawned {
        Ok(c) => Some(c),
        Err(_) if std::env::var_os("MONITOR_REQUIRE_PROMTOOL").is_some() => {
            panic!("promtool is required (MONITOR_REQUIRE_PROMTOOL) but not installed")
        }
        Err(_) => None,
    }
}

fn promtool_verdict(child: std::process::Child) -> Result<(), String> {
    let out = child.wait_with_output().expect("promtool runs");
    // Exit status 1 is errors, 3 lint problems: accept neither.
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr))
    }
}

/// Writes the samples of an OpenMetrics text file into a Prometheus database at `tsdb` with
/// `promtool tsdb create-blocks-from openmetrics` (what `Prometheus::start` on the parent
/// directory then serves). `None` when promtool is not installed and `MONITOR_REQUIRE_PROMTOOL`
/// is not `1` (then the caller skips its test).
///
/// # Panics
///
/// When promtool is required but missing, or refuses the file.
pub fn promtool_create_blocks(openmetrics: &Path, tsdb: &Path) -> Option<()> {
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(openmetrics)
        .arg(tsdb)
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) if std::env::var_os("MONITOR_REQUIRE_PROMTOOL").is_some_and(|v| v == "1") => {
            panic!("promtool is required (MONITOR_REQUIRE_PROMTOOL=1) but cannot run: {e}")
        }
        Err(e) => {
            eprintln!("skipped: promtool cannot run ({e}); install Debian's `prometheus`");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "promtool refused {}: {}{}",
        openmetrics.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(())
}

/// The value of the first line of `name` in a Prometheus text exposition whose labels contain
/// every one of `labels` (`instance="x"`...).
pub fn metric_value(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            return None;
        }
        if !labels.iter().all(|want| rest.contains(want)) {
            return None;
        }
        rest.rsplit(' ').next()?.parse().ok()
    })
}

/// [`metric_value`] read from the `/metrics` of the host on `port`; `None` when it does not answer.
pub fn metric(port: u16, name: &str, labels: &[&str]) -> Option<f64> {
    metric_value(&http_get(port, "/metrics")?.1, name, labels)
}

/// A child process, killed (and reaped) on drop, a failed assertion included.
#[derive(Debug)]
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's `prometheus` on loopback with the remote-write receiver and no scrape jobs, killed on
/// drop: the real peer that remote write and the query API are checked against.
#[derive(Debug)]
pub struct Prometheus {
    _child: Killed,
    /// Its HTTP port.
    pub port: u16,
}

impl Prometheus {
    /// Starts it on `port` with its database in `dir/tsdb` (a second start on the same `dir` finds
    /// the samples of the first) and its log in `dir/<log>`, and waits until it is ready. `None`
    /// when `prometheus` cannot run and `MONITOR_REQUIRE_PROMTOOL` is not `1` (then the caller
    /// skips its test).
    ///
    /// # Panics
    ///
    /// When it is required but cannot run, or does not get ready within 30 s.
    pub fn start(port: u16, dir: &Path, log: &str) -> Option<Prometheus> {
        // No scrape jobs: only what is written to it ends up in its database.
        Self::start_with(port, dir, log, "global:\n  evaluation_interval: 1m\n")
    }

    /// [`start`](Self::start) with `config` as its `prometheus.yml` (in `dir`, so relative
    /// `rule_files` are found there): scrape jobs, rule files, intervals.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn start_with(port: u16, dir: &Path, log: &str, config: &str) -> Option<Prometheus> {
        let text = config;
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, text).unwrap();
        let log = std::fs::File::create(dir.join(log)).unwrap();
        let spawned = Command::new("prometheus")
            .arg("--web.enable-remote-write-receiver")
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--config.file={}", config.display()))
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) if std::env::var_os("MONITOR_REQUIRE_PROMTOOL").is_some_and(|v| v == "1") => {
                panic!("prometheus is required (MONITOR_REQUIRE_PROMTOOL=1) but cannot run: {e}")
            }
            Err(e) => {
                eprintln!("skipped: prometheus cannot run ({e}); install Debian's `prometheus`");
                return None;
            }
        };
        let p = Prometheus {
            _child: Killed(child),
            port,
        };
        let ready = eventually(std::time::Duration::from_secs(30), || {
            http_get(port, "/-/ready").filter(|(status, _)| *status == 200)
        });
        assert!(
            ready.is_some(),
            "prometheus did not get ready on port {port}"
        );
        Some(p)
    }
}

/// How long the shared [`Alertmanager`] keeps an alert that was posted without `endsAt` and not
/// posted again (its `global.resolve_timeout`), in seconds: short, so that tests see it expire.
pub const ALERTMANAGER_RESOLVE_TIMEOUT_S: u64 = 5;

/// Debian's `prometheus-alertmanager` on loopback, one per test binary (see [`shared`](
/// Self::shared)), with no clustering, a `resolve_timeout` of [`ALERTMANAGER_RESOLVE_TIMEOUT_S`]
/// and one route, every alert grouped by name, to a webhook receiver served by the test binary
/// (`group_wait` 0s, `group_interval` 1s, resolved alerts too): the real peer the host's alerts
/// are checked against, and what it delivers ([`delivered`](Self::delivered)).
#[derive(Debug)]
pub struct Alertmanager {
    // The watchdog shell; it outlives every test of the binary and ends Alertmanager after it.
    _watchdog: std::process::Child,
    /// Its HTTP port.
    pub port: u16,
    // The alerts its webhook receiver was sent, in order.
    delivered: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl Alertmanager {
    /// The test binary's Alertmanager, started at the first call and stopped when the test binary
    /// exits (a watchdog shell ends it once the binary's process is gone). `None` when it cannot
    /// run and `MONITOR_REQUIRE_PROMTOOL` is not `1` (then the caller skips its test). Tests
    /// sharing it use alert names of their own.
    ///
    /// # Panics
    ///
    /// When it is required but cannot run, or does not get ready within 30 s.
    pub fn shared() -> Option<&'static Alertmanager> {
        static SHARED: OnceLock<Option<Alertmanager>> = OnceLock::new();
        SHARED.get_or_init(Self::start).as_ref()
    }

    fn start() -> Option<Alertmanager> {
        let required = std::env::var_os("MONITOR_REQUIRE_PROMTOOL").is_some_and(|v| v == "1");
        let found = Command::new("prometheus-alertmanager")
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        if let Err(e) = found {
            assert!(
                !required,
                "prometheus-alertmanager is required (MONITOR_REQUIRE_PROMTOOL=1) but cannot run: {e}"
            );
            eprintln!(
                "skipped: prometheus-alertmanager cannot run ({e}); install Debian's `prometheus-alertmanager`"
            );
            return None;
        }
        let dir = target_dir()
            .join("test-scratch")
            .join(format!("alertmanager-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let delivered = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&delivered);
        let receiver =
            monitor_core::http::HttpServer::start("127.0.0.1:0", "receiver", move |req| {
                let body: serde_json::Value = serde_json::from_slice(req.body).unwrap_or_default();
                let alerts = body["alerts"].as_array().cloned().unwrap_or_default();
                sink.lock().unwrap().extend(alerts);
                monitor_core::http::Response::new(200, "text/plain", "")
            })
            .expect("a loopback port for the webhook receiver");
        let hook = receiver.local_addr().port();
        // Serves Alertmanager until the test binary exits, as Alertmanager itself.
        std::mem::forget(receiver);
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  resolve_timeout: {ALERTMANAGER_RESOLVE_TIMEOUT_S}s\n\
                 route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n  \
                 group_interval: 1s\n  repeat_interval: 1h\n\
                 receivers:\n  - name: hook\n    webhook_configs:\n      - url: \
                 http://127.0.0.1:{hook}/hook\n        send_resolved: true\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.join("alertmanager.log")).unwrap();
        let watchdog = spawn_for_this_process(
            "prometheus-alertmanager",
            &[
                format!("--config.file={}", config.display()),
                format!("--storage.path={}", dir.join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--cluster.listen-address=".to_owned(),
            ],
            log,
        );
        let ready = eventually(std::time::Duration::from_secs(30), || {
            http_get(port, "/-/ready").filter(|(status, _)| *status == 200)
        });
        assert!(
            ready.is_some(),
            "alertmanager did not get ready on port {port}; see {}",
            dir.join("alertmanager.log").display()
        );
        Some(Alertmanager {
            _watchdog: watchdog,
            port,
            delivered,
        })
    }

    /// The alerts named `alertname` it delivered to its webhook receiver so far, each as the
    /// webhook payload carries it (`status`, `labels`, `annotations`, ...), in order.
    ///
    /// # Panics
    ///
    /// When a thread panicked holding the list.
    pub fn delivered(&self, alertname: &str) -> Vec<serde_json::Value> {
        (self.delivered.lock().unwrap().iter())
            .filter(|a| a["labels"]["alertname"] == alertname)
            .cloned()
            .collect()
    }

    /// The active alerts it holds (`GET /api/v2/alerts`: not expired, `endsAt` in the future) named
    /// `alertname`.
    ///
    /// # Panics
    ///
    /// When it does not answer with a JSON array.
    pub fn alerts(&self, alertname: &str) -> Vec<serde_json::Value> {
        let (status, body) = http_get(self.port, "/api/v2/alerts").expect("alertmanager answers");
        assert_eq!(status, 200, "{body}");
        let all: Vec<serde_json::Value> = serde_json::from_str(&body).expect("a JSON array");
        all.into_iter()
            .filter(|a| a["labels"]["alertname"] == alertname)
            .collect()
    }
}

/// Whether the real peers (promtool, Prometheus, Alertmanager, Chromium) are required: with
/// `MONITOR_REQUIRE_PROMTOOL=1` a test fails when one is missing instead of skipping.
pub fn peers_required() -> bool {
    std::env::var_os("MONITOR_REQUIRE_PROMTOOL").is_some_and(|v| v == "1")
}

/// Runs `program` with `args`, its stderr to `stderr`, for as long as this test binary lives: for
/// a peer shared by the tests of a binary and kept in a static, which is never dropped. A watchdog
/// shell ends it once this process is gone. The returned child is the watchdog.
///
/// # Panics
///
/// When `sh` cannot run.
pub fn spawn_for_this_process(
    program: &str,
    args: &[String],
    stderr: std::fs::File,
) -> std::process::Child {
    let script = format!(
        "\"$0\" \"$@\" & child=$!; \
         while kill -0 {parent} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.2; done; \
         kill $child 2>/dev/null; wait $child",
        parent = std::process::id()
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("sh runs")
}

/// The standard error of a child process, collected line by line on a thread of its own (so that
/// a chatty child never blocks on a full pipe).
#[derive(Debug, Clone, Default)]
pub struct Stderr {
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    // Set once the pipe is at its end: every line the child wrote is in `lines`.
    closed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Stderr {
    /// The lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The lines so far, joined.
    pub fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits up to `limit` until the pipe is at its end (the child and whatever inherited its
    /// stderr have exited), so that the lines are all there; whether it is.
    pub fn wait_closed(&self, limit: std::time::Duration) -> bool {
        eventually(limit, || self.closed.load(Ordering::Acquire).then_some(())).is_some()
    }

    /// How many lines so far contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits up to 30 s until a line contains `needle`.
    pub fn wait_for(&self, needle: &str) -> bool {
        self.wait_for_n(needle, 1)
    }

    /// Waits up to 30 s until `times` lines contain `needle`.
    pub fn wait_for_n(&self, needle: &str, times: usize) -> bool {
        eventually(std::time::Duration::from_secs(30), || {
            (self.count(needle) >= times).then_some(())
        })
        .is_some()
    }
}

/// Spawns `command` with stdout discarded and stderr collected.
///
/// # Panics
///
/// When it cannot be spawned.
pub fn spawn_with_stderr(command: &mut Command) -> (std::process::Child, Stderr) {
    use std::io::BufRead as _;
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Stderr::default();
    let pipe = child.stderr.take().unwrap();
    let lines = stderr.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            lines.lines.lock().unwrap().push(line);
        }
        lines.closed.store(true, Ordering::Release);
    });
    (child, stderr)
}

/// Sends signal `name` (`TERM`, `HUP`...) to `child` with `kill`.
///
/// # Panics
///
/// When `kill` fails.
pub fn signal(child: &std::process::Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name}");
}

/// A tmpfs mounted for a test (a small disk to fill, or a read-only one), unmounted on drop.
#[derive(Debug)]
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs with `options` (`size=2m`, `size=1m,ro`...) at `at`, creating it; `None`,
    /// with the reason on stderr, where mounting is not allowed (not root): the test then skips.
    pub fn mount(at: &Path, options: &str) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(at)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Self(at.to_owned())),
            Ok(o) => {
                let why = String::from_utf8_lossy(&o.stderr);
                eprintln!("skipped: cannot mount a tmpfs (needs root): {why}");
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A private certificate authority and a server certificate it signed for `localhost` and
/// `127.0.0.1` (valid 30 days), made with the `openssl` command: for HTTPS tests.
#[derive(Debug)]
pub struct TestCa {
    /// The CA's certificate (PEM): what a client given `tls_ca_file` trusts.
    pub ca: PathBuf,
    /// The server's certificate (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
}

impl TestCa {
    /// Makes the CA and the server certificate in `dir`. `None` when `openssl` cannot run and
    /// [`peers_required`] is false (then the caller skips its test).
    ///
    /// # Panics
    ///
    /// When `openssl` runs but fails, or is missing while [`peers_required`].
    pub fn new(dir: &Path) -> Option<Self> {
        let run = |args: &[&str]| {
            Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .stdin(Stdio::null())
                .output()
        };
        match run(&["version"]) {
            Ok(o) if o.status.success() => {}
            _ if peers_required() => panic!("`openssl` is required (MONITOR_REQUIRE_PROMTOOL=1)"),
            _ => {
                eprintln!("skipped: `openssl` cannot run");
                return None;
            }
        }
        std::fs::write(
            dir.join("server.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n\
             subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let steps: [Vec<&str>; 3] = [
            [
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "30",
                    "-subj",
                    "/CN=monitor test CA",
                ],
            ]
            .concat(),
            [
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=localhost",
                ],
            ]
            .concat(),
            vec![
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "30",
                "-extfile",
                "server.ext",
            ],
        ];
        for step in &steps {
            let o = run(step).expect("openssl runs");
            assert!(
                o.status.success(),
                "openssl {step:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Some(Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        })
    }
}
