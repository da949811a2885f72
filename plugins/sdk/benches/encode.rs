//! What a collector's answer costs to cross the boundary: a `Collection` of 10,000 samples (the
//! shape of a scraped target: a name, two labels, a value) written as JSON by serde_json's derive
//! (`serde`), by [`Collection::write_json`] into a growing buffer (`writer`) and into one sized
//! from the previous answer (`writer_sized`), and by a [`CollectionWriter`] from borrowed names
//! and labels into a buffer reused from call to call, as the collector glue does now
//! (`borrowed`), against a floor measured in the same run: copying the finished JSON into a new
//! buffer.
//!
//! Run: `cargo bench -p monitor-plugin --bench encode`

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use monitor_plugin::{Collection, CollectionWriter, Sample, SampleKind};

#[path = "support/timing.rs"]
mod timing;
use timing::time;

fn collection(n: usize) -> Collection {
    let samples = (0..n)
        .map(|s| {
            Sample::gauge(format!("gen_metric_{}", s / 100), s as f64 * 0.5)
                .with_label("instance", format!("i{}", s % 100))
                .with_label("job", "gen")
        })
        .collect();
    Collection {
        samples,
        events: vec![],
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args();
    let n = 10_000;
    let col = collection(n);
    let json = serde_json::to_vec(&col).unwrap();
    let floor = time(&mut c, &format!("encode/{n}/floor"), || {
        black_box(black_box(&json).to_vec()).len()
    });
    let serde = time(&mut c, &format!("encode/{n}/serde"), || {
        serde_json::to_vec(black_box(&col)).unwrap().len()
    });
    let writer = time(&mut c, &format!("encode/{n}/writer"), || {
        let mut out = Vec::new();
        black_box(&col).write_json(&mut out);
        out.len()
    });
    let sized = time(&mut c, &format!("encode/{n}/writer_sized"), || {
        let mut out = Vec::with_capacity(json.len() + json.len() / 8 + 64);
        black_box(&col).write_json(&mut out);
        out.len()
    });
    let names: Vec<String> = (0..n / 100).map(|m| format!("gen_metric_{m}")).collect();
    let instances: Vec<String> = (0..100).map(|i| format!("i{i}")).collect();
    let mut buf = Vec::new();
    let borrowed = time(&mut c, &format!("encode/{n}/borrowed"), || {
        let mut w = CollectionWriter::from_vec(std::mem::take(&mut buf));
        for s in 0..n {
            w.sample(
                black_box(&names[s / 100]),
                s as f64 * 0.5,
                SampleKind::Gauge,
            )
            .label("instance", &instances[s % 100])
            .label("job", "gen");
        }
        buf = w.finish();
        buf.len()
    });
    assert_eq!(buf, json, "the same bytes");
    c.final_summary();
    println!(
        "\nCollection of {n} samples -> JSON ({} bytes), mean per call",
        json.len()
    );
    for (name, t) in [
        ("floor (copy)", floor),
        ("serde", serde),
        ("writer", writer),
        ("writer_sized", sized),
        ("borrowed", borrowed),
    ] {
        println!(
            "  {name:<13} {:>8.3} ms  {:>5.1}x floor  {:>5.2}x serde",
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() / floor.as_secs_f64(),
            t.as_secs_f64() / serde.as_secs_f64()
        );
    }
}
