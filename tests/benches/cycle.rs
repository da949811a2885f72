//! One full host cycle with 20 collector instances (real plugin library, one worker thread each),
//! (release builds of the engine and the plugin library), against the floor of calling the same 20 plugins directly through the C ABI on one thread and
//! decoding their JSON. The difference is the host's own overhead per cycle: dispatch to workers,
//! waiting, storing samples, alert evaluation and self-metrics.
//!
//! Run: `cargo bench -p monitor-tests --bench cycle`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use monitor_host::library::PluginInstance;
use monitor_host::{Config, Engine, PluginLibrary};
use monitor_plugin::Collection;
use monitor_plugin::abi::PluginKind;
use monitor_tests::{release_library, toml_path};

const INSTANCES: usize = 20;

fn engine() -> Engine {
    let lib = toml_path(&release_library("monitor-test-plugins"));
    let mut text = String::from("[host]\ninterval = \"1s\"\n");
    for i in 0..INSTANCES {
        text += &format!("[[collector]]\nplugin = \"flaky\"\nname = \"c{i}\"\nlibrary = {lib}\n");
    }
    text += "[[alert]]\nname = \"flaky_seen\"\nmetric = \"test.flaky\"\ncondition = \"below\"\nthreshold = 0\n";
    let config = Config::from_str(&text, "bench.toml", std::path::Path::new(".")).unwrap();
    // SAFETY: the test plugin library is built from this workspace.
    unsafe { Engine::load(&config) }.unwrap()
}

fn direct() -> Vec<PluginInstance> {
    // SAFETY: as above.
    let lib = unsafe { PluginLibrary::load(&release_library("monitor-test-plugins")) }.unwrap();
    let info = lib.find(PluginKind::Collector, "flaky").unwrap().clone();
    (0..INSTANCES)
        .map(|_| PluginInstance::create(&lib, &info, &serde_json::json!({}), 1 << 20).unwrap())
        .collect()
}

fn call_all(instances: &mut [PluginInstance]) {
    for i in instances {
        let bytes = i.call(&[]).unwrap();
        black_box(serde_json::from_slice::<Collection>(&bytes).unwrap());
    }
}

/// Median time per iteration over `rounds` batches of `batch` iterations.
fn median(rounds: usize, batch: u32, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..batch {
                f();
            }
            start.elapsed() / batch
        })
        .collect();
    times.sort();
    times[rounds / 2]
}

fn bench(c: &mut Criterion) {
    let mut e = engine();
    let mut t = 0u64;
    let mut floor = direct();
    let mut g = c.benchmark_group("host");
    g.bench_function("cycle/20_collectors", |b| {
        b.iter(|| {
            t += 1000;
            black_box(e.cycle(t));
        })
    });
    g.bench_function("direct_calls/20_collectors", |b| {
        b.iter(|| call_all(&mut floor))
    });
    g.finish();

    let cycle = median(21, 50, || {
        t += 1000;
        black_box(e.cycle(t));
    });
    let base = median(21, 50, || call_all(&mut floor));
    println!(
        "\nhost/cycle with {INSTANCES} collectors: {:.1} us per cycle; direct calls (floor): {:.1} us; \
         ratio {:.2}x; host overhead {:.1} us per cycle ({:.2} us per instance)",
        cycle.as_secs_f64() * 1e6,
        base.as_secs_f64() * 1e6,
        cycle.as_secs_f64() / base.as_secs_f64(),
        cycle.saturating_sub(base).as_secs_f64() * 1e6,
        cycle.saturating_sub(base).as_secs_f64() * 1e6 / INSTANCES as f64,
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
