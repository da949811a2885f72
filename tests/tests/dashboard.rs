//! The web dashboard in a real browser: the host binary with a driven scenario (the `file`
//! collector and an alert on its value; an instrumented application scraped by the `prometheus`
//! collector), and Debian's headless Chromium driven through the DevTools protocol. Each page is
//! loaded, its charts counted (one `path[data-series]` per series drawn), a firing alert must
//! appear without a reload, the URL must keep the selection across navigation and reloads, the
//! console must stay free of errors, and a screenshot of each page is saved under
//! `target/dashboard-screenshots/`.
//!
//! One browser serves every test of this binary, each test in a window of its own. Skipped when
//! Chromium is missing, unless `MONITOR_REQUIRE_PROMTOOL=1`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use monitor_tests::{
    Killed, Scratch, binary, eventually, free_port, http_get, library, peers_required,
    spawn_for_this_process, target_dir, toml_path,
};
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

const WAIT: Duration = Duration::from_secs(40);

/// The series drawn as lines (a path with at least two points).
const LINES: &str = r#"path[data-series][d*="L"]"#;

/// Where the screenshots go.
fn screenshots() -> PathBuf {
    target_dir().join("dashboard-screenshots")
}

/// The browser of this test binary.
struct Browser {
    _watchdog: std::process::Child,
    port: u16,
    /// The browser's own DevTools endpoint.
    path: String,
}

fn chromium_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(p.into());
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(PathBuf::from)
}

/// The shared browser, started at the first call; `None` (the test skips) when Chromium is
/// missing and not required.
fn browser() -> Option<&'static Browser> {
    static SHARED: OnceLock<Option<Browser>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let Some(program) = chromium_path() else {
                assert!(
                    !peers_required(),
                    "chromium is required (MONITOR_REQUIRE_PROMTOOL=1) but not installed"
                );
                eprintln!("skipped: chromium is not installed; install Debian's `chromium`");
                return None;
            };
            let dir = target_dir()
                .join("test-scratch")
                .join(format!("chromium-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let args = [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-sync",
                "--disable-background-networking",
                "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows",
                "--mute-audio",
                "--hide-scrollbars",
                "--window-size=1280,900",
            ]
            .map(String::from)
            .into_iter()
            .chain([
                // Any free port: Chromium writes the one it took to DevToolsActivePort.
                "--remote-debugging-port=0".to_owned(),
                format!("--user-data-dir={}", dir.join("profile").display()),
                "about:blank".to_owned(),
            ])
            .collect::<Vec<_>>();
            let log = std::fs::File::create(dir.join("chromium.log")).unwrap();
            let watchdog = spawn_for_this_process(&program.to_string_lossy(), &args, log);
            let active = dir.join("profile").join("DevToolsActivePort");
            let ready = eventually(WAIT, || {
                let text = std::fs::read_to_string(&active).ok()?;
                let (port, path) = text.split_once('\n')?;
                Some((port.trim().parse().ok()?, path.trim().to_owned()))
                    .filter(|(_, path): &(u16, String)| path.starts_with("/devtools/"))
            });
            let Some((port, path)) = ready else {
                panic!(
                    "chromium did not start its DevTools server; see {}",
                    dir.join("chromium.log").display()
                )
            };
            Some(Browser {
                _watchdog: watchdog,
                port,
                path,
            })
        })
        .as_ref()
}

/// A DevTools connection: to the browser, or to one page.
struct Cdp {
    ws: WebSocket<TcpStream>,
    next: u64,
    /// Console errors, exceptions and error log entries seen so far.
    problems: Vec<String>,
    /// Requests sent and not answered yet, by id: what a page that does not load waits for.
    pending: std::collections::BTreeMap<String, String>,
}

impl Cdp {
    fn connect(port: u16, path: &str) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        // A browser that stops answering fails the test instead of hanging it.
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let url = format!("ws://127.0.0.1:{port}{path}");
        let (ws, _) = tungstenite::client(url.as_str(), stream).expect("devtools handshake");
        Self {
            ws,
            next: 0,
            problems: Vec::new(),
            pending: std::collections::BTreeMap::new(),
        }
    }

    /// Sends `method` and returns its result; events read meanwhile are checked for problems.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let request = json!({"id": id, "method": method, "params": params});
        self.ws.send(Message::text(request.to_string())).unwrap();
        loop {
            let message = self.ws.read().unwrap_or_else(|e| panic!("{method}: {e}"));
            let Message::Text(text) = message else {
                continue;
            };
            let v: Value = serde_json::from_str(text.as_str()).unwrap();
            if v["id"] == id {
                assert!(v["error"].is_null(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
            self.event(&v);
        }
    }

    fn event(&mut self, v: &Value) {
        let p = &v["params"];
        let request = p["requestId"].as_str().unwrap_or_default().to_owned();
        match v["method"].as_str() {
            Some("Network.requestWillBeSent") => {
                let url = p["request"]["url"].as_str().unwrap_or_default();
                self.pending.insert(request, url.to_owned());
            }
            Some("Network.loadingFinished" | "Network.loadingFailed") => {
                self.pending.remove(&request);
            }
            _ => {}
        }
        let problem = match v["method"].as_str() {
            Some("Runtime.exceptionThrown") => Some(format!(
                "exception: {}",
                p["exceptionDetails"]["exception"]["description"]
                    .as_str()
                    .unwrap_or_else(|| p["exceptionDetails"]["text"].as_str().unwrap_or("?"))
            )),
            Some("Runtime.consoleAPICalled")
                if matches!(p["type"].as_str(), Some("error" | "assert")) =>
            {
                Some(format!("console.{}: {}", p["type"], p["args"]))
            }
            Some("Log.entryAdded") if p["entry"]["level"] == "error" => Some(format!(
                "log: {} {}",
                p["entry"]["text"],
                p["entry"]["url"].as_str().unwrap_or("")
            )),
            _ => None,
        };
        self.problems.extend(problem);
    }
}

/// One browser window showing the dashboard of a host.
struct Tab {
    // One window at a time: a window in the background of a headless browser may have its
    // loading deferred, and the tests are lighter on a small machine one after the other.
    _turn: std::sync::MutexGuard<'static, ()>,
    cdp: Cdp,
    host: u16,
    name: &'static str,
}

impl Tab {
    fn open(browser: &Browser, host: u16, name: &'static str) -> Self {
        static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let mut b = Cdp::connect(browser.port, &browser.path);
        let target = b.call(
            "Target.createTarget",
            json!({"url": "about:blank", "newWindow": true}),
        );
        let id = target["targetId"].as_str().unwrap().to_owned();
        let mut cdp = Cdp::connect(browser.port, &format!("/devtools/page/{id}"));
        for domain in [
            "Runtime.enable",
            "Log.enable",
            "Page.enable",
            "Network.enable",
            "Page.bringToFront",
        ] {
            cdp.call(domain, json!({}));
        }
        Self {
            _turn: turn,
            cdp,
            host,
            name,
        }
    }

    /// Loads `path` of the host in a new document.
    fn goto(&mut self, path: &str) {
        let url = format!("http://127.0.0.1:{}{path}", self.host);
        self.load("Page.navigate", &json!({ "url": url }));
    }

    /// Runs `method` (a navigation or a reload) and waits until the new document has loaded.
    fn load(&mut self, method: &str, params: &Value) {
        self.eval("window.oldDocument = true");
        self.cdp.call(method, params.clone());
        self.wait(
            "the page to load",
            "!window.oldDocument && document.readyState === 'complete'",
        );
    }

    /// The value of `expression` (awaited when it is a promise).
    fn eval(&mut self, expression: &str) -> Value {
        let r = self.cdp.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(
            r["exceptionDetails"].is_null(),
            "{expression}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Waits until `expression` is truthy and returns its value; on timeout, fails with a
    /// screenshot of what the page showed.
    fn wait(&mut self, what: &str, expression: &str) -> Value {
        let end = Instant::now() + WAIT;
        loop {
            let v = self.eval(expression);
            let truthy = !(v.is_null()
                || v == false
                || v == 0
                || v.as_str() == Some("")
                || v.as_f64().is_some_and(f64::is_nan));
            if truthy {
                return v;
            }
            if Instant::now() > end {
                let status = self.eval(
                    "[document.readyState, document.getElementById('status')?.textContent, \
                     performance.getEntriesByType('resource').map(r => r.name + ' ' + Math.round(r.duration))]",
                );
                let shot = self.screenshot(&format!("{}-failed", self.name));
                panic!(
                    "waited {WAIT:?} for {what} ({expression}); status: {status}; problems: {:?}; \
                     requests unanswered: {:?}; see {}",
                    self.cdp.problems,
                    self.cdp.pending.values().collect::<Vec<_>>(),
                    shot.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn count(&mut self, css: &str) -> u64 {
        let css = serde_json::to_string(css).unwrap();
        self.eval(&format!("document.querySelectorAll({css}).length"))
            .as_u64()
            .unwrap()
    }

    /// Waits until `css` matches exactly `n` elements.
    fn wait_count(&mut self, what: &str, css: &str, n: u64) {
        let json = serde_json::to_string(css).unwrap();
        self.wait(
            what,
            &format!("document.querySelectorAll({json}).length === {n}"),
        );
    }

    fn click(&mut self, css: &str) {
        let json = serde_json::to_string(css).unwrap();
        self.wait(
            &format!("{css} to click"),
            &format!("(e => e ? (e.click(), true) : false)(document.querySelector({json}))"),
        );
    }

    fn hash(&mut self) -> String {
        let h = self.eval("decodeURIComponent(location.hash)");
        h.as_str().unwrap().to_owned()
    }

    fn reload(&mut self) {
        self.load("Page.reload", &json!({}));
    }

    /// Saves a PNG of the window as `target/dashboard-screenshots/<name>.png`.
    fn screenshot(&mut self, name: &str) -> PathBuf {
        let shot = self
            .cdp
            .call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(screenshots()).unwrap();
        let path = screenshots().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    fn assert_no_problems(&mut self) {
        // Reads the events queued since the last call.
        self.eval("0");
        assert!(
            self.cdp.problems.is_empty(),
            "the console reported: {:#?}",
            self.cdp.problems
        );
    }
}

impl Drop for Tab {
    fn drop(&mut self) {
        let _ = self
            .cdp
            .ws
            .send(Message::text(r#"{"id":0,"method":"Page.close"}"#));
    }
}

/// The host binary every 250 ms with its store, the `file` collector reading `value` and an alert
/// `value_high` above 50; with `app`, a `prometheus` collector `demo` scraping it.
struct Host {
    dir: Scratch,
    port: u16,
    _host: Killed,
}

impl Host {
    fn start(name: &str, app: Option<u16>) -> Self {
        let dir = Scratch::new(name);
        let value = dir.write("value", "5");
        let port = free_port();
        let scrape = app.map_or(String::new(), |app| {
            format!(
                "[[collector]]\nplugin = \"prometheus\"\nname = \"demo\"\nlibrary = {}\n\
                 [collector.config]\nurl = \"http://127.0.0.1:{app}/metrics\"\n\n",
                toml_path(&library("monitor-plugin-prometheus"))
            )
        });
        let config = dir.write(
            "monitor.toml",
            &format!(
                "[host]\nname = \"dashboard-host\"\ninterval = \"250ms\"\n\
                 listen = \"127.0.0.1:{port}\"\ndata_dir = \"data\"\n\n\
                 [[collector]]\nplugin = \"file\"\nlibrary = {lib}\n\
                 [collector.config]\npath = {value}\n\n{scrape}\
                 [[alert]]\nname = \"value_high\"\nmetric = \"test.value\"\ncondition = \"above\"\n\
                 threshold = 50\nseverity = \"warning\"\n",
                lib = toml_path(&library("monitor-test-plugins")),
                value = toml_path(&value),
            ),
        );
        let stderr = std::fs::File::create(dir.join("host-stderr")).unwrap();
        let child = Command::new(binary("monitor-host"))
            .args(["run", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let host = Self {
            dir,
            port,
            _host: Killed(child),
        };
        let up = eventually(WAIT, || {
            http_get(port, "/healthz").filter(|(status, _)| *status == 200)
        });
        assert!(up.is_some(), "the host never got healthy: {}", host.log());
        host
    }

    fn value(&self) -> PathBuf {
        self.dir.join("value")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("host-stderr")).unwrap_or_default()
    }
}

fn set_value(path: &Path, value: &str) {
    std::fs::write(path, value).unwrap();
}

/// Overview: health, plugins, the cycle-time chart; an alert that starts firing shows without a
/// reload; the alerts page keeps the chosen alert in the URL across navigation and reloads; the
/// layout fits a phone.
#[test]
fn overview_and_alerts_update_live_and_keep_their_url_state() {
    let Some(browser) = browser() else { return };
    let host = Host::start("dashboard-overview", None);
    let mut tab = Tab::open(browser, host.port, "overview");
    tab.goto("/");
    tab.wait(
        "the file plugin, ok",
        r#"document.querySelector('[data-panel="overview.plugins"] tr[data-plugin="file"][data-state="ok"]')"#,
    );
    tab.wait_count(
        "the cycle-time chart",
        r#"[data-panel="overview.host"] path[data-series][d*="L"]"#,
        1,
    );
    assert_eq!(
        tab.count(r#"[data-panel="overview.alerts"] li[data-state="firing"]"#),
        0
    );
    // A reload would forget this.
    tab.eval("window.notReloaded = true");
    set_value(&host.value(), "99");
    tab.wait(
        "value_high firing on the overview",
        r#"document.querySelector('[data-panel="overview.alerts"] li[data-alert="value_high"][data-state="firing"]')"#,
    );
    tab.wait(
        "the firing count",
        r#"document.querySelector('[data-firing="1"]')"#,
    );
    assert_eq!(
        tab.eval("window.notReloaded === true"),
        true,
        "the page reloaded"
    );
    tab.screenshot("overview");

    tab.click(r#"[data-nav="alerts"]"#);
    tab.wait(
        "value_high firing on the alerts page",
        r#"document.querySelector('tr[data-alert="value_high"][data-state="firing"]')"#,
    );
    tab.click(r#"tr[data-alert="value_high"] button"#);
    tab.wait(
        "the chosen alert's history",
        r#"document.querySelector('[data-panel="alerts.history"] li[data-kind="firing"]')"#,
    );
    assert_eq!(tab.hash(), "#/alerts?alert=value_high");
    tab.screenshot("alerts");

    // Elsewhere and back: the choice comes back with the URL.
    tab.click(r#"[data-nav="series"]"#);
    tab.wait(
        "the series page",
        "document.querySelector('main[data-page=\"series\"]')",
    );
    tab.eval("history.back()");
    tab.wait(
        "the chosen alert again",
        r#"document.querySelector('tr[data-alert="value_high"][aria-current="true"]')"#,
    );
    tab.reload();
    tab.wait(
        "the chosen alert after a reload",
        r#"document.querySelector('tr[data-alert="value_high"][aria-current="true"]')"#,
    );
    tab.click(r#"button[data-state="inactive"]"#);
    tab.wait_count("no inactive alert", "tr[data-alert]", 0);
    assert_eq!(tab.hash(), "#/alerts?alert=value_high&state=inactive");

    phone(&mut tab);
    tab.assert_no_problems();
}

/// On a phone-sized screen the overview fits the width.
fn phone(tab: &mut Tab) {
    tab.cdp.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}),
    );
    tab.eval("location.hash = '#/overview'");
    tab.wait(
        "the overview on a phone",
        r#"document.querySelector('[data-panel="overview.plugins"] tr[data-plugin="file"]')"#,
    );
    let fits = tab.eval("document.documentElement.scrollWidth <= window.innerWidth");
    assert_eq!(fits, true, "the overview is wider than a phone");
    tab.screenshot("overview-phone");
    tab.cdp
        .call("Emulation.clearDeviceMetricsOverride", json!({}));
}

/// Series explorer: search, pick two series, both drawn on one chart with values at the pointer;
/// the selection and range live in the URL and survive a reload.
#[test]
fn series_explorer_charts_the_selection_kept_in_the_url() {
    let Some(browser) = browser() else { return };
    let host = Host::start("dashboard-series", None);
    let mut tab = Tab::open(browser, host.port, "series");
    tab.goto("/#/series?q=test_value&range=15m");
    tab.click(r#".vlist .row[data-key^="test_value{"]"#);
    tab.wait_count("one series drawn", LINES, 1);
    tab.eval("location.hash = location.hash.replace('q=test_value', 'q=cycle_duration')");
    tab.click(r#".vlist .row[data-key^="monitor_host_cycle_duration_seconds{"]"#);
    tab.wait_count("two series drawn", LINES, 2);
    let hash = tab.hash();
    assert!(
        hash.contains(r#"sel=test_value{collector="file",source="file"}"#),
        "{hash}"
    );
    assert!(
        hash.contains(r#"sel=monitor_host_cycle_duration_seconds{collector="host"}"#),
        "{hash}"
    );

    tab.click(r#"button[data-range="24h"]"#);
    tab.wait(
        "range 24h in the URL",
        "location.hash.includes('range=24h')",
    );
    tab.reload();
    tab.wait_count("both series after a reload", "path[data-series]", 2);
    tab.wait(
        "24h still chosen",
        r#"document.querySelector('button[data-range="24h"][aria-pressed="true"]')"#,
    );
    tab.click(r#"button[data-range="15m"]"#);
    tab.wait_count("both series as lines again", LINES, 2);
    // Values at the pointer: one line per series.
    let rows = tab.eval(
        r#"(() => { const svg = document.querySelector('.chart svg'); const r = svg.getBoundingClientRect();
            svg.dispatchEvent(new PointerEvent('pointermove', {clientX: r.right - 20, clientY: r.top + 50, bubbles: true}));
            const tip = document.querySelector('.chart .tip'); return tip.hidden ? 0 : tip.children.length - 1; })()"#,
    );
    assert_eq!(rows, 2, "the tooltip shows each series' value");
    tab.screenshot("series");
    virtual_list(&mut tab);
    tab.assert_no_problems();
}

/// The list renders a window of rows, not 10,000.
fn virtual_list(tab: &mut Tab) {
    let rendered = tab.eval(
        r#"(async () => {
            const base = document.querySelector('script[type=module]').src.replace(/app\.js$/, '');
            const { virtualList } = await import(base + 'pages/series.js');
            const list = virtualList(() => {});
            list.root.style.height = '360px';
            document.body.append(list.root);
            const many = Array.from({ length: 10000 }, (_, i) => ({ __name__: 'm', i: String(i) }));
            list.show(many, new Set());
            const first = list.root.querySelectorAll('.row').length;
            list.root.scrollTop = list.root.scrollHeight;
            list.show(many, new Set());
            const last = list.root.querySelector('.row:last-child').dataset.key;
            list.root.remove();
            return [first, last];
        })()"#,
    );
    let first = rendered[0].as_u64().unwrap();
    assert!((1..=40).contains(&first), "{first} rows rendered of 10,000");
    assert_eq!(rendered[1], r#"m{i="9999"}"#);
}

/// Application view: the functions of a scraped application, the slowest and most called, and
/// one function's rates, success rate and latency quantiles over time.
#[test]
fn application_view_charts_a_scraped_applications_functions() {
    let Some(browser) = browser() else { return };
    let app_port = free_port();
    let _app = Killed(
        Command::new(binary("demo-service"))
            .args([
                "--listen",
                &format!("127.0.0.1:{app_port}"),
                "--healthy-for",
                "3600",
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let host = Host::start("dashboard-apps", Some(app_port));
    let mut tab = Tab::open(browser, host.port, "apps");
    tab.goto("/#/apps?range=15m");
    tab.click(r#"tr[data-function="demo.query_db"] a"#);
    tab.wait(
        "fn in the URL",
        "location.hash.includes('fn=demo.query_db')",
    );
    assert!(tab.hash().contains("app=demo"), "{}", tab.hash());
    tab.wait(
        "the slowest and most called",
        r#"document.querySelectorAll('ol[data-top] li').length >= 4"#,
    );
    let charts = r#"Array.from(document.querySelectorAll('.charts .chart svg')).map(s => s.querySelectorAll('path[data-series][d*="L"]').length).join(',')"#;
    let drawn = tab.wait(
        "calls and failures, success rate, three quantiles",
        &format!("(c => c === '2,1,3' && c)({charts})"),
    );
    assert_eq!(drawn, "2,1,3");
    tab.screenshot("applications");
    tab.assert_no_problems();
}
