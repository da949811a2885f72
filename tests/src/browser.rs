//! A headless Chromium driven over the DevTools protocol, for the dashboard's browser tests and
//! benchmarks: one browser per process ([`browser`]), a window per [`Tab`] (one at a time), with
//! waits on page expressions, screenshots, and the console's errors collected.
//!
//! [`browser`] is `None` (the caller skips) when Chromium is missing, unless
//! `MONITOR_REQUIRE_PROMTOOL=1` (then it panics). `CHROMIUM` names the program to use.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

use crate::{eventually, peers_required, spawn_for_this_process, target_dir};

/// How long a wait on the browser or the page lasts before it fails.
pub const WAIT: Duration = Duration::from_secs(40);

/// Where the screenshots go: `target/dashboard-screenshots/`.
pub fn screenshots() -> PathBuf {
    target_dir().join("dashboard-screenshots")
}

/// The browser of this process.
#[derive(Debug)]
pub struct Browser {
    _watchdog: std::process::Child,
    port: u16,
    /// The browser's own DevTools endpoint.
    path: String,
}

/// The Chromium program: `CHROMIUM`, else the first of `chromium`, `chromium-browser`,
/// `google-chrome` that runs.
pub fn chromium_path() -> Option<PathBuf> {
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

/// The shared browser, started at the first call; `None` (the caller skips) when Chromium is
/// missing and not required.
///
/// # Panics
///
/// Chromium is required and missing, or does not start its DevTools server.
pub fn browser() -> Option<&'static Browser> {
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
pub struct Cdp {
    ws: WebSocket<TcpStream>,
    next: u64,
    /// Console errors, exceptions and error log entries seen so far.
    pub problems: Vec<String>,
    /// Requests sent and not answered yet, by id: what a page that does not load waits for.
    pub pending: std::collections::BTreeMap<String, String>,
}

impl Cdp {
    /// Connects to the DevTools endpoint `path` of the browser listening on `port`.
    ///
    /// # Panics
    ///
    /// The browser does not answer.
    pub fn connect(port: u16, path: &str) -> Self {
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
    ///
    /// # Panics
    ///
    /// The browser answers with an error or not at all.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
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
pub struct Tab {
    // One window at a time: a window in the background of a headless browser may have its
    // loading deferred, and the tests are lighter on a small machine one after the other.
    _turn: std::sync::MutexGuard<'static, ()>,
    /// Its DevTools connection.
    pub cdp: Cdp,
    host: u16,
    name: &'static str,
}

impl Tab {
    /// Opens a window for the host listening on `host`; `name` prefixes the screenshot taken when
    /// a wait fails. Waits for the other windows of this process to close first.
    pub fn open(browser: &Browser, host: u16, name: &'static str) -> Self {
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
    pub fn goto(&mut self, path: &str) {
        let url = format!("http://127.0.0.1:{}{path}", self.host);
        self.load("Page.navigate", &json!({ "url": url }));
    }

    /// Runs `method` (a navigation or a reload) and waits until the new document has loaded.
    pub fn load(&mut self, method: &str, params: &Value) {
        self.eval("window.oldDocument = true");
        self.cdp.call(method, params.clone());
        self.wait(
            "the page to load",
            "!window.oldDocument && document.readyState === 'complete'",
        );
    }

    /// The value of `expression` (awaited when it is a promise).
    pub fn eval(&mut self, expression: &str) -> Value {
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
    pub fn wait(&mut self, what: &str, expression: &str) -> Value {
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

    /// How many elements match `css`.
    pub fn count(&mut self, css: &str) -> u64 {
        let css = serde_json::to_string(css).unwrap();
        self.eval(&format!("document.querySelectorAll({css}).length"))
            .as_u64()
            .unwrap()
    }

    /// Waits until `css` matches exactly `n` elements.
    pub fn wait_count(&mut self, what: &str, css: &str, n: u64) {
        let json = serde_json::to_string(css).unwrap();
        self.wait(
            what,
            &format!("document.querySelectorAll({json}).length === {n}"),
        );
    }

    /// Clicks the first element matching `css`, once there is one.
    pub fn click(&mut self, css: &str) {
        let json = serde_json::to_string(css).unwrap();
        self.wait(
            &format!("{css} to click"),
            &format!("(e => e ? (e.click(), true) : false)(document.querySelector({json}))"),
        );
    }

    /// The URL's hash, decoded.
    pub fn hash(&mut self) -> String {
        let h = self.eval("decodeURIComponent(location.hash)");
        h.as_str().unwrap().to_owned()
    }

    /// Reloads the page and waits for it.
    pub fn reload(&mut self) {
        self.load("Page.reload", &json!({}));
    }

    /// Saves a PNG of the window as `target/dashboard-screenshots/<name>.png`.
    pub fn screenshot(&mut self, name: &str) -> PathBuf {
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

    /// Fails when the console reported errors or exceptions.
    pub fn assert_no_problems(&mut self) {
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
