//! The `prometheus` collector's work per scrape: a generated body of 10,000 and 100,000 series
//! (the shape `scripts/compare-peers.sh` serves: 100 series per metric name,
//! `gen_metric_M{instance="iI",job="gen"} V`) turned into the JSON the host receives: parsed
//! straight into a `CollectionWriter` whose buffer is reused from scrape to scrape, as the
//! collector does (`writer`); through a `Collection` of owned samples and
//! `Collection::write_json` (`sample`, the collector's path before the writer); and with the
//! `prometheus-parse` crate and `serde_json::to_vec` (`old`, before the plugin's parser). Against
//! a floor measured in the same run: splitting the body into lines and reading each value.
//!
//! Run: `cargo bench -p monitor-plugin-prometheus --bench parse`

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use monitor_plugin::{Collection, CollectionWriter, Sample};
use monitor_plugin_common::prometheus::quantile_suffix;
use monitor_plugin_prometheus::Converter;

#[path = "../../sdk/benches/support/timing.rs"]
mod timing;
use timing::time;

/// The body `scripts/compare-peers.sh` serves for `n` series.
fn body(n: usize) -> String {
    let per = 100;
    let mut out = String::new();
    for m in 0..n.div_ceil(per) {
        out.push_str(&format!(
            "# HELP gen_metric_{m} generated\n# TYPE gen_metric_{m} gauge\n"
        ));
        for i in 0..per.min(n - m * per) {
            let v = (m * per + i) as f64 * 0.5;
            out.push_str(&format!(
                "gen_metric_{m}{{instance=\"i{i}\",job=\"gen\"}} {v}\n"
            ));
        }
    }
    out
}

/// The floor: every line split off and its value read, nothing kept.
fn floor(text: &str) -> f64 {
    let mut sum = 0.0;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(v) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            sum += v;
        }
    }
    sum
}

/// The collector's conversion before its own parser (without rates, as the bench runs them off).
fn old(text: &str, extra: &BTreeMap<String, String>) -> Collection {
    use prometheus_parse::{Scrape, Value};
    let mut out = Collection::default();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    for sample in scrape.samples {
        let mut labels: BTreeMap<String, String> = sample
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
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
            Value::Counter(v) => out
                .samples
                .push(with(Sample::counter(&sample.metric, v), labels)),
            Value::Gauge(v) | Value::Untyped(v) => out
                .samples
                .push(with(Sample::gauge(&sample.metric, v), labels)),
            Value::Summary(qs) => {
                for q in qs {
                    let name = format!("{}_{}", sample.metric, quantile_suffix(q.quantile));
                    out.samples
                        .push(with(Sample::gauge(name, q.count), labels.clone()));
                }
            }
            Value::Histogram(_) => {}
        }
    }
    out
}

fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
        .configure_from_args()
}

fn main() {
    let mut c = criterion();
    let mut rows = Vec::new();
    for n in [10_000, 100_000] {
        let text = body(n);
        let floor_t = time(&mut c, &format!("parse/{n}/floor"), || {
            floor(black_box(&text)) as usize
        });
        let extra = BTreeMap::new();
        let old_t = time(&mut c, &format!("parse/{n}/old"), || {
            let out = old(black_box(&text), &extra);
            assert_eq!(out.samples.len(), n);
            serde_json::to_vec(&out).unwrap().len()
        });
        let mut converter = Converter::default();
        let sample_t = time(&mut c, &format!("parse/{n}/sample"), || {
            let mut out = Collection::default();
            converter
                .convert(black_box(&text), Instant::now(), &mut out)
                .unwrap();
            assert_eq!(out.samples.len(), n);
            let mut json = Vec::new();
            out.write_json(&mut json);
            json.len()
        });
        let mut buf = Vec::new();
        let writer_t = time(&mut c, &format!("parse/{n}/writer"), || {
            let mut out = CollectionWriter::from_vec(std::mem::take(&mut buf));
            converter
                .convert(black_box(&text), Instant::now(), &mut out)
                .unwrap();
            assert_eq!(out.samples(), n);
            buf = out.finish();
            buf.len()
        });
        rows.push((n, floor_t, old_t, sample_t, writer_t));
    }
    c.final_summary();
    println!("\nscrape -> JSON for the host, mean per scrape (floor: split lines, read values)");
    println!(
        "{:>8} {:>10} {:>10} {:>10} {:>10} {:>11} {:>11} {:>9}",
        "series", "floor", "old", "sample", "writer", "sample/flr", "writer/flr", "sample/wr"
    );
    for (n, f, o, s, w) in rows {
        let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
        let r = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        println!(
            "{n:>8} {:>10} {:>10} {:>10} {:>10} {:>11.1} {:>11.1} {:>9.2}",
            ms(f),
            ms(o),
            ms(s),
            ms(w),
            r(s, f),
            r(w, f),
            r(s, w)
        );
    }
}
