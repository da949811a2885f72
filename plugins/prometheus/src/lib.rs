//! `prometheus` collector: scrapes a Prometheus text endpoint (for instance an application that
//! serves its `monitor-core` registry with the `http` feature) and reports every sample.
//!
//! Names and labels are kept as scraped. Counters and gauges pass through; untyped samples become
//! gauges, except the `<name>_sum` and `<name>_count` of summaries and histograms, which are
//! counters; summaries become one gauge per quantile, named `<name>_p50`, `<name>_p99`,
//! `<name>_p999`...; histogram buckets are skipped. With `rates = true` (the default) every counter
//! also yields `<name>_rate`, its increase per second since the previous scrape, so rules can
//! alert on a failure rate.
//!
//! Config: `url` (required, `http://` or `https://`), `timeout` (a duration such as `"5s"`, or seconds; default 5 s), `include` (name prefixes to
//! keep; all when absent), `labels` (table of labels added to every sample), `rates` (bool),
//! `follow_redirects` (default false), `tls_ca_file` (a PEM file of CA certificates to trust instead
//! of the system's bundle, for a target with a private CA).
//! `prometheus.up` (1 or 0, label `target`) says whether the scrape worked: an unreachable target is
//! reported (with a `scrape_failed` event) rather than failing the call, so rules can alert on it;
//! a target that answers with something that is not Prometheus text is a collect error.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Instant;

use monitor_plugin::{Collection, Collector, ConfigDuration, PluginError, Sample, parse_config};
use monitor_plugin_common::http::ClientOptions;
use monitor_plugin_common::prometheus::quantile_suffix;
use prometheus_parse::{Scrape, Value};
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
    // Previous counter values, by name and labels, with when they were read: only the series of
    // the last scrape, so a churning label does not grow it.
    previous: HashMap<(String, BTreeMap<String, String>), (f64, Instant)>,
}

impl PrometheusCollector {
    fn scrape(&self) -> Result<String, PluginError> {
        let (Some(s), Some(agent)) = (&self.settings, &self.agent) else {
            return Err("not configured".into());
        };
        let mut response = agent
            .get(&s.url)
            .call()
            .map_err(|e| format!("GET {}: {e}", s.url))?;
        monitor_plugin_common::http::refuse_redirect(&s.url, &response)?;
        Ok(response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("GET {}: {e}", s.url))?)
    }
}

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
        self.settings = Some(s);
        Ok(())
    }

    fn collect(&mut self) -> Result<Collection, PluginError> {
        let url = self
            .settings
            .as_ref()
            .map(|s| s.url.clone())
            .unwrap_or_default();
        let mut out = Collection::default();
        let text = match self.scrape() {
            Ok(t) => t,
            Err(e) => {
                // Report the target as down rather than failing, so rules can alert on it.
                out.samples
                    .push(Sample::gauge("prometheus.up", 0.0).with_label("target", &url));
                out.events.push(monitor_plugin::Event {
                    kind: "scrape_failed".into(),
                    message: e.to_string(),
                    labels: [("target".to_owned(), url)].into(),
                    timestamp_ms: None,
                });
                return Ok(out);
            }
        };
        out.samples
            .push(Sample::gauge("prometheus.up", 1.0).with_label("target", &url));
        self.convert(&text, &url, Instant::now(), &mut out)?;
        Ok(out)
    }
}

impl PrometheusCollector {
    /// The samples of one scrape's `text`, read at `now`, into `out`. Rates come from the
    /// previous scrape; the state of series absent from this one is dropped.
    fn convert(
        &mut self,
        text: &str,
        url: &str,
        now: Instant,
        out: &mut Collection,
    ) -> Result<(), PluginError> {
        let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .map_err(|e| format!("{url}: not Prometheus text: {e}"))?;
        let s = self.settings.as_ref().ok_or("not configured")?;
        for sample in scrape.samples {
            if !s.include.is_empty()
                && !s
                    .include
                    .iter()
                    .any(|p| sample.metric.starts_with(p.as_str()))
            {
                continue;
            }
            let mut labels: BTreeMap<String, String> = sample
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            labels.extend(s.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            let with = |mut x: Sample, labels: BTreeMap<String, String>| {
                x.labels = labels;
                x
            };
            let value = match sample.value {
                Value::Untyped(v)
                    if sample.metric.ends_with("_sum") || sample.metric.ends_with("_count") =>
                {
                    Value::Counter(v)
                }
                other => other,
            };
            match value {
                Value::Counter(v) => {
                    out.samples
                        .push(with(Sample::counter(&sample.metric, v), labels.clone()));
                    if s.rates {
                        let key = (sample.metric.clone(), labels.clone());
                        if let Some((old, at)) = self.previous.insert(key, (v, now)) {
                            let dt = now.duration_since(at).as_secs_f64();
                            // A counter that went down was reset: its new value is the increase.
                            let inc = if v >= old { v - old } else { v };
                            if dt > 0.0 {
                                let name = format!("{}_rate", sample.metric);
                                out.samples
                                    .push(with(Sample::gauge(name, inc / dt), labels));
                            }
                        }
                    }
                }
                Value::Gauge(v) | Value::Untyped(v) => {
                    // The last use: the labels move into the sample.
                    out.samples
                        .push(with(Sample::gauge(&sample.metric, v), labels));
                }
                Value::Summary(qs) => {
                    for q in qs {
                        let name = format!("{}_{}", sample.metric, quantile_suffix(q.quantile));
                        out.samples
                            .push(with(Sample::gauge(name, q.count), labels.clone()));
                    }
                }
                // Buckets are many series for little alerting value; `_sum` and `_count` (above)
                // and the application's own quantiles carry what rules need.
                Value::Histogram(_) => {}
            }
        }
        // Series gone from the target (a churning label) take their state with them.
        self.previous.retain(|_, (_, at)| *at == now);
        Ok(())
    }
}

monitor_plugin::export_plugin!(collector "prometheus" => PrometheusCollector);

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use monitor_plugin::{Collection, Collector};

    use super::{PrometheusCollector, label_name_ok};

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
            c.convert(&text, "t", now, &mut out).unwrap();
            assert_eq!(c.previous.len(), 2, "scrape {i}");
            if i > 0 {
                let rate = out.samples.iter().find(|s| s.name == "steady_rate");
                assert_eq!(rate.map(|s| s.value), Some(10.0), "scrape {i}");
            }
        }
    }

    #[test]
    fn label_names() {
        assert!(label_name_ok("env") && label_name_ok("_x1"));
        for bad in ["", "__name__", "a.b", "1a", "a-b"] {
            assert!(!label_name_ok(bad), "{bad:?}");
        }
    }
}
