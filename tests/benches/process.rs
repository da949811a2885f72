//! The `process` collector's cost per collection (release build of the plugin library, called
//! through the C ABI on one thread, so wall time is its CPU time): a watch by pid file, which reads
//! only that process, against the floor it replaced, the whole-table refresh every collection did
//! before (`sysinfo`, every process on the machine, the same fields), measured in the same run.
//! Also the worst case of a watch by command line: a process that is not there, with
//! `scan_interval = 0`, scans the whole table on every collection.
//!
//! Run: `cargo bench -p monitor-tests --bench process`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use monitor_host::PluginLibrary;
use monitor_host::library::PluginInstance;
use monitor_plugin::abi::PluginKind;
use monitor_tests::{Scratch, release_library};
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

fn instance(config: serde_json::Value) -> PluginInstance {
    // SAFETY: the bundled plugin library, built from this workspace.
    let lib = unsafe { PluginLibrary::load(&release_library("monitor-plugin-process")) }.unwrap();
    let info = lib.find(PluginKind::Collector, "process").unwrap().clone();
    PluginInstance::create(&lib, &info, &config, 1 << 20).unwrap()
}

/// What every collection did before: refresh every process with the fields the collector reports.
fn whole_table(system: &mut System) {
    system.refresh_processes_specifics(
        ProcessesToUpdate::All,
        true,
        ProcessRefreshKind::nothing()
            .with_memory()
            .with_cpu()
            .with_cmd(UpdateKind::OnlyIfNotSet)
            .with_tasks(),
    );
    black_box(system.processes().len());
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
    let dir = Scratch::new("process-bench");
    let pid_file = dir.write("self.pid", &std::process::id().to_string());
    let mut by_pid = instance(serde_json::json!({
        "processes": [{"name": "me", "pid_file": pid_file}],
    }));
    let mut by_missing_cmdline = instance(serde_json::json!({
        "processes": [{"name": "none", "cmdline_contains": "no process has this in its command line"}],
        "scan_interval": 0,
    }));
    let mut system = System::new().unwrap();
    whole_table(&mut system);
    let processes = system.processes().len();

    let mut g = c.benchmark_group("process");
    g.bench_function("collect/pid_file", |b| {
        b.iter(|| black_box(by_pid.call(&[]).unwrap()))
    });
    g.bench_function("collect/cmdline_scan_every_call", |b| {
        b.iter(|| black_box(by_missing_cmdline.call(&[]).unwrap()))
    });
    g.bench_function("floor/whole_table_refresh", |b| {
        b.iter(|| whole_table(&mut system))
    });
    g.finish();

    let pid = median(21, 50, || drop(by_pid.call(&[]).unwrap()));
    let scan = median(21, 10, || drop(by_missing_cmdline.call(&[]).unwrap()));
    let floor = median(21, 10, || whole_table(&mut system));
    println!(
        "\nprocess collector, {processes} processes on the machine: pid-file watch {:.1} us per \
         collection; the whole-table refresh of before {:.1} us (ratio {:.3}); a command-line \
         scan on every call {:.1} us (ratio {:.3})",
        pid.as_secs_f64() * 1e6,
        floor.as_secs_f64() * 1e6,
        pid.as_secs_f64() / floor.as_secs_f64(),
        scan.as_secs_f64() * 1e6,
        scan.as_secs_f64() / floor.as_secs_f64(),
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
