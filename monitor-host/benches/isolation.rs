//! The cost of one call to a trivial collector (one sample) through each kind of worker: on a
//! thread of the host (`isolation = "thread"`), and in a child process (`isolation = "process"`,
//! a round trip over pipes), against the floor of calling the instance directly on the
//! benchmark's thread. Printed as ratios measured in the same run.
//!
//! The collector is `flaky` from the test plugins (`tests/plugins/misbehaving`, built in release
//! here), which returns one sample when its flag file is absent; the child process is the
//! `monitor-host` binary cargo builds for this benchmark.
//!
//! Run: `cargo bench -p monitor-host --bench isolation`

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use crossbeam_channel::{Receiver, unbounded};
use monitor_host::config::Isolation;
use monitor_host::library::{PluginInfo, PluginInstance, PluginLibrary};
use monitor_host::worker::{Done, Worker, WorkerSpec};
use monitor_plugin::abi::PluginKind;

const MAX_PAYLOAD: usize = 1 << 20;

/// Builds the test plugins (release) and returns their library.
fn plugin_library() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let status = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "monitor-test-plugins",
        ])
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building monitor-test-plugins failed");
    target.join("release/libmonitor_test_plugins.so")
}

fn load() -> (Arc<PluginLibrary>, PluginInfo) {
    // SAFETY: the library is built from this workspace.
    let library = unsafe { PluginLibrary::load(&plugin_library()) }.expect("the test plugins load");
    let info = library
        .find(PluginKind::Collector, "flaky")
        .expect("flaky")
        .clone();
    (library, info)
}

fn worker(isolation: Isolation) -> (Worker, Receiver<Done>) {
    let (library, plugin) = load();
    let (done, results) = unbounded();
    let spec = WorkerSpec {
        slot: 0,
        name: format!("flaky-{}", isolation.as_str()),
        isolation,
        thread_name: "bench-worker".into(),
        library,
        plugin,
        config: serde_json::json!({}),
        max_payload: MAX_PAYLOAD,
        timeout: Duration::from_secs(30),
        on_request: None,
    };
    (
        Worker::start(spec, done).expect("the worker starts"),
        results,
    )
}

/// One call through `worker`, waiting for its answer.
fn call(worker: &Worker, results: &Receiver<Done>, job: u64) {
    worker.submit(job, Vec::new());
    let done = results.recv().expect("an answer");
    assert!(done.result.is_ok(), "{:?}", done.result);
}

/// Mean time per call over `calls` calls of `f`.
fn mean(calls: u32, mut f: impl FnMut(u64)) -> Duration {
    for job in 0..100 {
        f(job);
    }
    let start = Instant::now();
    for job in 0..u64::from(calls) {
        f(job);
    }
    start.elapsed() / calls
}

fn bench(c: &mut Criterion) {
    monitor_host::worker::set_runner_program(PathBuf::from(env!("CARGO_BIN_EXE_monitor-host")));
    let (library, info) = load();
    let mut direct = PluginInstance::create(&library, &info, &serde_json::json!({}), MAX_PAYLOAD)
        .expect("the instance configures");
    let (thread, thread_results) = worker(Isolation::Thread);
    let (process, process_results) = worker(Isolation::Process);

    let mut group = c.benchmark_group("isolation");
    group.bench_function("call/direct", |b| {
        b.iter(|| direct.call(&[]).expect("a collection"));
    });
    let mut job = 0;
    group.bench_function("call/thread", |b| {
        b.iter(|| {
            job += 1;
            call(&thread, &thread_results, job);
        });
    });
    group.bench_function("call/process", |b| {
        b.iter(|| {
            job += 1;
            call(&process, &process_results, job);
        });
    });
    group.finish();

    let calls = 20_000;
    let floor = mean(calls, |_| drop(direct.call(&[]).expect("a collection")));
    let on_thread = mean(calls, |j| call(&thread, &thread_results, j));
    let in_process = mean(calls, |j| call(&process, &process_results, j));
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "isolation/ratio: direct {:.2} us, thread {:.2} us ({:.1}x direct), process {:.2} us ({:.1}x direct, {:.1}x thread)",
        us(floor),
        us(on_thread),
        us(on_thread) / us(floor),
        us(in_process),
        us(in_process) / us(floor),
        us(in_process) / us(on_thread),
    );
    for (name, w) in [("thread", thread), ("process", process)] {
        let outcome = w.shutdown(Duration::from_secs(10));
        assert!(matches!(outcome, Some(Ok(()))), "{name}: {outcome:?}");
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
