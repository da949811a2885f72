//! `prometheus` collector: scrapes a Prometheus text endpoint (for instance an application that
//! serves its `monitor-core` registry with the `http` feature) and reports every sample.
//!
//! Names and labels are kept as scraped. Counters and gauges pass through; untyped samples become
//! gauges, except the `<name>_sum` and `<name>_count` of summaries and histograms, which are
//! counters; summaries become one gauge per quantile, named `<name>_p50`, `<name>_p99`,
//! `<name>_p999`...; histogram buckets are skipped unless `buckets = true`, which keeps them as
//! counters `<name>_bucket` with their `le` label (for PromQL's `histogram_quantile`). With
//! `rates = true` (the default) every counter but buckets also yields `<name>_rate`, its increase
//! per second since the previous scrape, so rules can alert on a failure rate.
//!
//! The body is read by the plugin's own parser ([`parse`]), which borrows from it: only what the
//! samples keep is allocated.
//!
//! Config: `url` (required, `http://` or `https://`), `timeout` (a duration such as `"5s"`, or seconds; default 5 s), `include` (name prefixes to
//! keep; all when absent), `labels` (table of labels added to every sample), `rates` (bool),
//! `buckets` (bool, default false),
//! `follow_redirects` (default false), `tls_ca_file` (a PEM file of CA certificates to trust instead
//! of the system's bundle, for a target with a private CA).
//! `prometheus.up` (1 or 0, label `target`) says whether the scrape worked: an unreachable target is
//! reported (with a `scrape_failed` event) rather than failing the call, so rules can alert on it;
//! a target that answers with something that is not Prometheus text is a collect error naming the
//! first malformed line.

mod convert;
#[doc(hidden)]
pub mod parse;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::PathBuf;
use std::time::Instant;

#[doc(hidden)]
pub use convert::{Converter, Sink};
use monitor_plugin::{
    Collection, CollectionWriter, Collector, ConfigDuration, PluginError, SampleKind, parse_config,
};
use monitor_plugin_common::http::ClientOptions;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    url: String,
    #[serde(default)]
    follow_redirects: bool,
    tls_ca_file: Option<PathBuf>,
    #[serde(default = "five")]
    timeout: ConfigDuration,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default = "yes")]
    rates: bool,
    #[serde(default)]
    buckets: bool,
}

fn five() -> ConfigDuration {
    ConfigDuration::from_secs(5)
}
fn yes() -> bool {
    true
}

/// Whether the host accepts `name` as a label name: `[A-Za-z_][A-Za-z0-9_]*`, not starting with
/// `__` (reserved by Prometheus).
fn label_name_ok(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.starts_with("__")
}

#[derive(Default)]
struct PrometheusCollector {
    settings: Option<Settings>,
    agent: Option<ureq::Agent>,
    converter: Converter,
    /// The latest response body, kept to reuse its memory.
    body: String,
}

impl PrometheusCollector {
    /// Reads the target's body into `self.body`.
    fn scrape(&mut self) -> Result<(), PluginError> {
        let (Some(s), Some(agent)) = (&self.settings, &self.agent) else {
            return Err("not configured".into());
        };
        let mut response = agent
            .get(&s.url)
            .call()
            .map_err(|e| format!("GET {}: {e}", s.url))?;
        monitor_plugin_common::http::refuse_redirect(&s.url, &response)?;
        self.body.clear();
        // Into the previous body's memory; the limit and the lossy UTF-8 of `read_to_string`.
        response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .lossy_utf8(true)
            .reader()
            .read_to_string(&mut self.body)
            .map_err(|e| format!("GET {}: {e}", s.url))?;
        Ok(())
    }

    /// One collection into `out`.
    fn collect_to<S: Sink>(&mut self, out: &mut S) -> Result<(), PluginError> {
        let scraped = self.scrape();
        let url = self.settings.as_ref().map_or("", |s| s.url.as_str());
        let up = if scraped.is_ok() { 1.0 } else { 0.0 };
        out.sample(
            "prometheus.up",
            up,
            SampleKind::Gauge,
            &[("target", url.into())],
        );
        if let Err(e) = scraped {
            // Report the target as down rather than failing, so rules can alert on it.
            out.event(monitor_plugin::Event {
                kind: "scrape_failed".into(),
                message: e.to_string(),
                labels: [("target".to_owned(), url.to_owned())].into(),
                timestamp_ms: None,
            });
            return Ok(());
        }
        self.converter
            .convert(&self.body, Instant::now(), out)
            .map_err(|e| format!("{url}: not Prometheus text: {e}"))?;
        Ok(())
    }
}

/// The largest body read, as `ureq`'s `read_to_string` allows.
const BODY_LIMIT: u64 = 10 * 1024 * 1024;

impl Collector for PrometheusCollector {
    fn configure(&mut self, config: &serde_json::Value) -> Result<(), PluginError> {
        let s: Settings = parse_config(config)?;
        monitor_plugin_common::http::check_url(&s.url)?;
        // The host refuses samples with such labels; refusing the config says so at `check`.
        if let Some(bad) = s.labels.keys().find(|k| !label_name_ok(k)) {
            return Err(format!(
                "`labels`: `{bad}` is not a label name: use [A-Za-z_][A-Za-z0-9_]*, not starting with `__`"
            )
            .into());
        }
        if s.timeout.get().is_zero() {
            return Err("`timeout` must be longer than zero, e.g. \"5s\"".into());
        }
        let mut client = ClientOptions::new(s.timeout.get());
        client.follow_redirects = s.follow_redirects;
        client.tls_ca_file.clone_from(&s.tls_ca_file);
        self.agent = Some(monitor_plugin_common::http::agent(&client)?);
        self.converter = Converter::default();
        self.converter.include.clone_from(&s.include);
        self.converter.labels.clone_from(&s.labels);
        self.converter.rates = s.rates;
        self.converter.buckets = s.buckets;
        self.settings = Some(s);
        Ok(())
    }

    fn collect(&mut self) -> Result<Collection, PluginError> {
        let mut out = Collection::default();
        self.collect_to(&mut out)?;
        Ok(out)
    }

    fn collect_into(&mut self, out: &mut CollectionWriter) -> Result<(), PluginError> {
        self.collect_to(out)
    }
}

monitor_plugin::export_plugin!(collector "prometheus" => PrometheusCollector);

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use monitor_plugin::{Collection, CollectionWriter, Collector};

    use super::{BODY_LIMIT, PrometheusCollector, label_name_ok};

    /// Serves each of `bodies` to one request on loopback; returns the URL.
    fn serve(bodies: Vec<Vec<u8>>) -> String {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/metrics", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for body in bodies {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap() > 2 {
                    line.clear();
                }
                let mut stream = reader.into_inner();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                // The client may stop reading a body over its limit.
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        url
    }

    fn collect(c: &mut PrometheusCollector) -> Collection {
        let mut w = CollectionWriter::new();
        c.collect_into(&mut w).unwrap();
        serde_json::from_slice(&w.finish()).unwrap()
    }

    #[test]
    fn bodies_are_read_into_one_buffer_lossily_and_up_to_the_limit() {
        let body = b"# TYPE t gauge\nt{room=\"k\xffche\"} 21\n".to_vec();
        let huge = vec![b'#'; usize::try_from(BODY_LIMIT).unwrap() + 1];
        let url = serve(vec![body.clone(), body, huge]);
        let mut c = PrometheusCollector::default();
        c.configure(&serde_json::json!({ "url": url })).unwrap();
        let first = collect(&mut c);
        let t = first.samples.iter().find(|s| s.name == "t");
        let t = t.unwrap_or_else(|| panic!("{first:?}"));
        assert_eq!(t.labels["room"], "k?che", "invalid UTF-8 read as `?`");
        let (at, capacity) = (c.body.as_ptr(), c.body.capacity());
        assert_eq!(collect(&mut c), first);
        assert_eq!(
            (c.body.as_ptr(), c.body.capacity()),
            (at, capacity),
            "the same memory"
        );
        let over = collect(&mut c);
        assert_eq!(over.samples[0].name, "prometheus.up");
        assert_eq!(over.samples[0].value, 0.0);
        assert_eq!(over.events.len(), 1);
        assert!(
            over.events[0].message.contains("limit"),
            "{:?}",
            over.events
        );
    }

    #[test]
    fn rate_state_follows_the_series_of_the_last_scrape() {
        let mut c = PrometheusCollector::default();
        let config = serde_json::json!({"url": "http://127.0.0.1:1/metrics"});
        c.configure(&config).unwrap();
        let start = Instant::now();
        for i in 0..100u64 {
            // One steady counter and one whose label changes every scrape.
            let text = format!(
                "# TYPE steady counter\nsteady {}\n# TYPE churn counter\nchurn{{id=\"{i}\"}} 1\n",
                10 * i
            );
            let mut out = Collection::default();
            let now = start + Duration::from_secs(i + 1);
            c.converter.convert(&text, now, &mut out).unwrap();
            assert_eq!(c.converter.tracked(), 2, "scrape {i}");
            if i > 0 {
                let rate = out.samples.iter().find(|s| s.name == "steady_rate");
                assert_eq!(rate.map(|s| s.value), Some(10.0), "scrape {i}");
            }
        }
    }

    #[test]
    fn buckets_is_a_bool_key_off_by_default() {
        let mut c = PrometheusCollector::default();
        let url = "http://127.0.0.1:1/metrics";
        c.configure(&serde_json::json!({ "url": url })).unwrap();
        assert!(!c.converter.buckets && c.converter.rates);
        let on = serde_json::json!({ "url": url, "buckets": true, "rates": false });
        c.configure(&on).unwrap();
        assert!(c.converter.buckets && !c.converter.rates);
        let err = c
            .configure(&serde_json::json!({ "url": url, "buckets": "yes" }))
            .unwrap_err();
        assert!(err.to_string().contains("expected a boolean"), "{err}");
    }

    #[test]
    fn label_names() {
        assert!(label_name_ok("env") && label_name_ok("_x1"));
        for bad in ["", "__name__", "a.b", "1a", "a-b"] {
            assert!(!label_name_ok(bad), "{bad:?}");
        }
    }
}
