//! Taking in a collection: 10,000 and 100,000 samples of a scraped target (100 series per metric
//! name, labels `instance` and `job`, as `scripts/compare-peers.sh` serves them), written by the
//! SDK's `CollectionWriter` as the `prometheus` collector writes them, each collection after the
//! first bringing the same series in the same order; every sample stored in memory (the engine's
//! `Store`) by its series id:
//!
//! - `ingest/host`: the host's path (`BareIngest`: the layout reader, the series cache by place);
//! - `ingest/serde_map`: the path before it, rebuilt here: serde reads the collection into
//!   `RawValue`s, then each sample into its borrowed form, then a hash map from identity to id;
//! - `ingest/read_floor`: serde reading the collection into `RawValue`s only, a floor for any path
//!   that uses serde.
//!
//! The ratios host / serde_map and host / read_floor are printed at the end.
//!
//! Run: `cargo bench -p monitor-host --bench ingest`

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use monitor_host::engine::BareIngest;
use monitor_host::store::{SeriesId, SeriesKey, Store};
use monitor_plugin::{CollectionWriter, Event, Labels, SampleKind};
use serde::Deserialize;
use serde_json::value::RawValue;

const NOW_MS: u64 = 1_800_000_000_000;

/// A collection of `n` samples as the `prometheus` collector writes a scrape of the generated
/// target.
fn collection(n: usize) -> Vec<u8> {
    let per = 100;
    let mut w = CollectionWriter::new();
    for i in 0..n {
        let (m, j) = (i / per, i % per);
        let name = format!("gen_metric_{m}");
        w.sample(&name, i as f64 * 0.5, SampleKind::Gauge)
            .label("instance", &format!("i{j}"))
            .label("job", "gen");
    }
    w.finish()
}

#[derive(Deserialize)]
struct SerdeCollection<'a> {
    #[serde(default, borrow)]
    samples: Vec<&'a RawValue>,
    #[serde(default)]
    #[allow(dead_code)] // Reason: read as the host reads it.
    events: Vec<Event>,
}

#[derive(Deserialize)]
struct FastSample<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(deserialize_with = "monitor_plugin::number::deserialize")]
    value: f64,
    #[serde(default)]
    kind: SampleKind,
    #[serde(default, borrow)]
    labels: Option<&'a RawValue>,
}

/// The path before the layout reader and the cache by place.
#[derive(Default)]
struct SerdeMap {
    ids: HashMap<Box<str>, SeriesId, foldhash::fast::RandomState>,
    scratch: String,
}

impl SerdeMap {
    fn ingest(&mut self, store: &mut Store, bytes: &[u8], now_ms: u64) -> usize {
        let c: SerdeCollection<'_> = serde_json::from_slice(bytes).unwrap();
        let mut stored = 0;
        for raw in c.samples {
            let s: FastSample<'_> = serde_json::from_str(raw.get()).unwrap();
            let labels = s.labels.map_or("{}", RawValue::get);
            self.scratch.clear();
            self.scratch.push_str(&s.name);
            self.scratch.push('\0');
            self.scratch.push_str(labels);
            let id = match self.ids.get(self.scratch.as_str()) {
                Some(&id) if store.holds(id) => id,
                _ => {
                    let key = SeriesKey {
                        name: s.name.to_string(),
                        labels: serde_json::from_str::<Labels>(labels).unwrap(),
                    };
                    let id = store.intern(key, s.kind, "bench").unwrap();
                    self.ids.insert(self.scratch.as_str().into(), id);
                    id
                }
            };
            stored += usize::from(store.push_id(id, s.kind, now_ms, s.value));
        }
        stored
    }
}

fn bench(c: &mut Criterion) {
    let mut ratios = Vec::new();
    for n in [10_000, 100_000] {
        let bytes = collection(n);
        let mut g = c.benchmark_group("ingest");
        g.sample_size(20).measurement_time(Duration::from_secs(8));

        let mut store = Store::new(u64::MAX);
        let mut host = BareIngest::default();
        let mut t = NOW_MS;
        assert_eq!(host.ingest(&mut store, &bytes, t).unwrap(), n);
        let id = format!("host/{n}");
        g.bench_function(&id, |b| {
            b.iter(|| {
                t += 1000;
                host.ingest(&mut store, &bytes, t).unwrap()
            });
        });
        let host_s = mean(&mut |k| {
            for _ in 0..k {
                t += 1000;
                host.ingest(&mut store, &bytes, t).unwrap();
            }
        });

        let mut store = Store::new(u64::MAX);
        let mut old = SerdeMap::default();
        let mut t = NOW_MS;
        assert_eq!(old.ingest(&mut store, &bytes, t), n);
        g.bench_function(format!("serde_map/{n}"), |b| {
            b.iter(|| {
                t += 1000;
                old.ingest(&mut store, &bytes, t)
            });
        });
        let old_s = mean(&mut |k| {
            for _ in 0..k {
                t += 1000;
                old.ingest(&mut store, &bytes, t);
            }
        });

        let read = |bytes: &[u8]| {
            let c: SerdeCollection<'_> = serde_json::from_slice(bytes).unwrap();
            c.samples.len()
        };
        g.bench_function(format!("read_floor/{n}"), |b| b.iter(|| read(&bytes)));
        let floor_s = mean(&mut |k| {
            for _ in 0..k {
                std::hint::black_box(read(&bytes));
            }
        });
        g.finish();
        ratios.push((n, host_s, old_s, floor_s));
    }
    for (n, host, old, floor) in ratios {
        println!(
            "ingest {n:>6} samples: host {:.2} ms, serde_map {:.2} ms, read_floor {:.2} ms; \
             host/serde_map {:.2}, host/read_floor {:.2}",
            host * 1e3,
            old * 1e3,
            floor * 1e3,
            host / old,
            host / floor
        );
    }
}

/// Seconds per call of `f`, over about a second of calls.
fn mean(f: &mut dyn FnMut(u32)) -> f64 {
    let start = Instant::now();
    f(1);
    let once = start.elapsed().as_secs_f64().max(1e-6);
    let k = ((1.0 / once) as u32).clamp(3, 1000);
    let start = Instant::now();
    f(k);
    start.elapsed().as_secs_f64() / f64::from(k)
}

criterion_group!(benches, bench);
criterion_main!(benches);
