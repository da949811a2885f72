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

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use monitor_tests::browser::{Tab, WAIT, browser};
use monitor_tests::{Killed, RunningHost, Scratch, binary, free_port, library, toml_path};
use serde_json::{Value, json};

/// The series drawn as lines (a path with at least two points).
const LINES: &str = r#"path[data-series][d*="L"]"#;

/// The host binary every 250 ms with its store, the `file` collector reading `value` and an alert
/// `value_high` above 50; with `app`, a `prometheus` collector `demo` scraping it.
struct Host {
    dir: Scratch,
    port: u16,
    _host: RunningHost,
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
        let host = RunningHost::builder(config).port(port).within(WAIT).start();
        Self {
            dir,
            port,
            _host: host,
        }
    }

    fn value(&self) -> PathBuf {
        self.dir.join("value")
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
    tab.wait(
        "its incident among the open ones",
        r#"document.querySelector('[data-panel="overview.incidents"] li[data-incident][data-state="open"]')"#,
    );
    assert_eq!(
        tab.eval("window.notReloaded === true"),
        true,
        "the page reloaded"
    );
    tab.wait(
        "the store's size on disk",
        r#"document.querySelector('[data-write-errors="0"]')"#,
    );
    let store = tab.eval(
        "Array.from(document.querySelectorAll('.kpi')).find(k => k.textContent.endsWith('store on disk')).querySelector('b').textContent",
    );
    assert!(
        store
            .as_str()
            .is_some_and(|s| s.ends_with('B') && s != "0 B"),
        "store size shown as {store}"
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
    // The pages read the light overview, never the snapshot with every series' points.
    let fetched = tab.eval(
        "performance.getEntriesByType('resource').map(r => new URL(r.name).pathname).filter(p => p.startsWith('/api/'))",
    );
    let fetched: Vec<&str> = fetched
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(fetched.contains(&"/api/overview"), "{fetched:?}");
    assert!(!fetched.contains(&"/api/snapshot"), "{fetched:?}");
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
    // The time labels of the cycle-time chart do not overlap.
    tab.wait(
        "the chart redrawn on the phone",
        r#"(() => { const svg = document.querySelector('[data-panel="overview.host"] svg'); return svg && svg.getBoundingClientRect().width < 390; })()"#,
    );
    tab.eval("window.dispatchEvent(new Event('resize'))");
    let overlaps = tab.eval(
        r#"(() => { const boxes = Array.from(document.querySelectorAll('[data-panel="overview.host"] .axis text.x')).map(t => t.getBoundingClientRect());
            return boxes.length < 2 ? -1 : boxes.slice(1).filter((b, i) => b.left < boxes[i].right).length; })()"#,
    );
    assert_eq!(
        overlaps, 0,
        "time labels overlap on a phone (-1: fewer than two)"
    );
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
    // The success rate never reads above 100%, even when it is 100% throughout.
    let labels = tab.eval(
        "Array.from(document.querySelectorAll('.charts .chart svg')[1].querySelectorAll('.axis text.y')).map(t => t.textContent)",
    );
    let labels: Vec<f64> = labels
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().trim_end_matches('%').parse().unwrap())
        .collect();
    assert!(!labels.is_empty());
    assert!(
        labels.iter().all(|&p| (0.0..=100.0).contains(&p)),
        "{labels:?}"
    );
    tab.screenshot("applications");
    tab.assert_no_problems();
}
