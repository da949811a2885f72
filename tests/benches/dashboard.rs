//! The dashboard in a real browser against a host holding 10,000 series: time to first render
//! of the Overview and of a 24-hour chart of 10 series, the size and browser-side cost of
//! `/api/overview` against `/api/snapshot` (the view the Overview read before), and the host's
//! CPU over 30 s with one dashboard open against the same host with none.
//!
//! The host (the debug build the tests use) scrapes a generated Prometheus target of 10,000
//! gauges every second with the bundled `prometheus` collector and writes its store in
//! `data_dir`; the measurements start after a warm-up that gives the store a minute of history.
//! Needs Debian's `chromium` (skipped without it, unless `MONITOR_REQUIRE_PROMTOOL=1`).
//!
//! Run: `cargo bench -p monitor-tests --bench dashboard` (`--profile dev` builds faster; the
//! host is the debug build either way).

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use monitor_core::http::{HttpServer, Response};
use monitor_tests::browser::{Tab, browser};
use monitor_tests::{Killed, Scratch, binary, eventually, free_port, http_get, library, toml_path};
use serde_json::Value;

/// Series the target exposes.
const SERIES: usize = 10_000;
/// How long the host runs before anything is measured.
const WARM_UP: Duration = Duration::from_secs(60);
/// How long the CPU is measured, with and without the dashboard.
const CPU_WINDOW: Duration = Duration::from_secs(30);
/// Page loads per time-to-render figure (the median is printed).
const LOADS: usize = 5;

/// A Prometheus target of [`SERIES`] gauges whose values move with the clock.
fn target() -> HttpServer {
    let handler = move |_: &monitor_core::http::Request<'_>| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let mut out = String::with_capacity(SERIES * 48);
        out.push_str("# TYPE bench_value gauge\n");
        for i in 0..SERIES {
            let v = ((t / 10.0 + i as f64).sin() + 1.0) * 50.0;
            let _ = writeln!(out, "bench_value{{shard=\"{}\",n=\"{i}\"}} {v:.3}", i % 100);
        }
        Response::new(200, "text/plain; version=0.0.4", out)
    };
    HttpServer::start("127.0.0.1:0", "bench-target", handler).unwrap()
}

/// The host scraping `target` every second, with its store.
struct Host {
    _dir: Scratch,
    port: u16,
    process: Killed,
}

impl Host {
    fn start(target: u16) -> Self {
        let dir = Scratch::new("dashboard-bench");
        let port = free_port();
        let config = dir.write(
            "monitor.toml",
            &format!(
                "[host]\nname = \"bench\"\ninterval = \"1s\"\nlisten = \"127.0.0.1:{port}\"\n\
                 data_dir = \"data\"\n\n[[collector]]\nplugin = \"prometheus\"\nname = \"bench\"\n\
                 library = {lib}\n[collector.config]\nurl = \"http://127.0.0.1:{target}/metrics\"\n",
                lib = toml_path(&library("monitor-plugin-prometheus")),
            ),
        );
        let child = Command::new(binary("monitor-host"))
            .args(["run", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let host = Self {
            _dir: dir,
            port,
            process: Killed(child),
        };
        let full = eventually(Duration::from_secs(120), || {
            let (_, body) = http_get(port, "/api/overview")?;
            let v: Value = serde_json::from_str(&body).ok()?;
            (v["series"].as_u64()? >= SERIES as u64).then_some(())
        });
        assert!(full.is_some(), "the host never held {SERIES} series");
        host
    }

    /// CPU time the host process has used so far (user + system), from `/proc/<pid>/stat`.
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.process.0.id())).unwrap();
        // The fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64)
    }

    /// The host's CPU use over [`CPU_WINDOW`], as a share of one core.
    fn cpu_share(&self) -> f64 {
        let before = self.cpu();
        let start = Instant::now();
        std::thread::sleep(CPU_WINDOW);
        (self.cpu() - before).as_secs_f64() / start.elapsed().as_secs_f64()
    }
}

/// Clock ticks per second of `/proc/<pid>/stat`.
fn clock_ticks() -> u64 {
    let out = Command::new("getconf").arg("CLK_TCK").output();
    out.ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100)
}

/// The median of `runs` calls of `f`, in ms.
fn median(runs: usize, mut f: impl FnMut() -> f64) -> f64 {
    let mut all: Vec<f64> = (0..runs).map(|_| f()).collect();
    all.sort_by(f64::total_cmp);
    all[runs / 2]
}

/// Loads `path` in a fresh document and returns when its page was first drawn with data, in ms
/// since navigation start (the app's `window.__rendered`), once `drawn` holds.
fn first_render(tab: &mut Tab, path: &str, page: &str, drawn: &str) -> f64 {
    // A document of its own before each load: a change of hash alone would not load the page.
    tab.goto("/healthz");
    tab.goto(path);
    tab.wait(&format!("{page} drawn"), drawn);
    let at = tab.wait(
        &format!("{page} rendered"),
        &format!("window.__rendered && window.__rendered[{page:?}]"),
    );
    at.as_f64().unwrap()
}

/// Fetches `url` and parses its JSON in the page, `runs` times: the median ms and the size.
fn fetch_and_parse(tab: &mut Tab, url: &str, runs: usize) -> (f64, u64) {
    let v = tab.eval(&format!(
        "(async () => {{ const times = []; let size = 0;
            for (let i = 0; i < {runs}; i++) {{
              const t0 = performance.now();
              const text = await (await fetch({url:?})).text();
              JSON.parse(text);
              times.push(performance.now() - t0);
              size = text.length;
            }}
            times.sort((a, b) => a - b);
            return [times[times.length >> 1], size]; }})()"
    ));
    (v[0].as_f64().unwrap(), v[1].as_u64().unwrap())
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that names another bench skips this one.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if filter.is_some_and(|f| !"dashboard".contains(f.as_str())) {
        return;
    }
    let Some(browser) = browser() else { return };
    let target = Arc::new(target());
    let host = Host::start(target.local_addr().port());
    println!("dashboard: host holding {SERIES} series, warming up {WARM_UP:?}");
    std::thread::sleep(WARM_UP);

    let mut tab = Tab::open(browser, host.port, "bench");
    let overview = median(LOADS, || {
        first_render(
            &mut tab,
            "/#/overview",
            "overview",
            r#"document.querySelector('[data-panel="overview.plugins"] tr[data-plugin="bench"]')"#,
        )
    });
    let selected: String = (0..10)
        .map(|i| format!("&sel=bench_value{{n=\"{i}\"}}"))
        .collect();
    let chart = median(LOADS, || {
        first_render(
            &mut tab,
            &format!("/#/series?range=24h{selected}"),
            "series",
            r#"document.querySelectorAll('.chart path[data-series]').length === 10"#,
        )
    });
    let (overview_ms, overview_size) = fetch_and_parse(&mut tab, "/api/overview", LOADS);
    let (snapshot_ms, snapshot_size) = fetch_and_parse(&mut tab, "/api/snapshot", LOADS);

    println!("dashboard/overview first render:        {overview:8.1} ms (median of {LOADS} loads)");
    println!("dashboard/24h chart, 10 series, first:  {chart:8.1} ms (median of {LOADS} loads)");
    println!("dashboard/api overview fetch+parse:     {overview_ms:8.1} ms, {overview_size} bytes");
    println!(
        "dashboard/api snapshot fetch+parse:     {snapshot_ms:8.1} ms, {snapshot_size} bytes \
         (the Overview's former source)"
    );
    println!(
        "dashboard/overview vs snapshot:         {:.1}x faster, {:.0}x smaller",
        snapshot_ms / overview_ms,
        snapshot_size as f64 / overview_size as f64
    );

    // The plain-text page between loads has no icon.
    tab.cdp.problems.retain(|p| !p.contains("/favicon.ico"));
    tab.assert_no_problems();
    // One dashboard open on the Overview (refreshing every 3 s) against none.
    tab.eval("location.hash = '#/overview'");
    let open = host.cpu_share();
    drop(tab);
    let closed = host.cpu_share();
    println!(
        "dashboard/host cpu, no dashboard:       {:8.1} % of a core over {CPU_WINDOW:?}",
        closed * 100.0
    );
    println!(
        "dashboard/host cpu, one dashboard:      {:8.1} % of a core over {CPU_WINDOW:?}",
        open * 100.0
    );
    println!(
        "dashboard/host cpu ratio open/none:     {:.2}",
        open / closed
    );
}
