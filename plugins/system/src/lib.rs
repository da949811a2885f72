//! `system` collector: the machine's CPU, load, memory, swap, disks and network; on Linux read
//! straight from procfs (a few file reads per collection, see `procfs`), elsewhere via `sysinfo`.
//!
//! Metrics (gauges unless noted; bytes, percent 0-100). In the host's `/metrics` dots become
//! underscores and counters get a `_total` suffix (`system_network_received_bytes_total`).
//!
//! | name | labels | meaning |
//! |---|---|---|
//! | `system.cpu.usage` | | all CPUs, percent |
//! | `system.cpu.core.usage` | `core` | per core, percent (`per_core = false` to skip) |
//! | `system.load.1`, `system.load.5`, `system.load.15` | | load averages |
//! | `system.memory.total_bytes`, `.used_bytes`, `.available_bytes` | | bytes |
//! | `system.memory.usage` | | used / total, percent |
//! | `system.swap.total_bytes`, `system.swap.used_bytes` | | bytes |
//! | `system.disk.total_bytes`, `.available_bytes` | `mount` | bytes |
//! | `system.disk.usage` | `mount` | used / total, percent |
//! | `system.disk.read_bytes`, `.written_bytes` | `disk`, `mount` | counters, bytes since boot |
//! | `system.network.received_bytes`, `.transmitted_bytes` | `interface` | counters |
//!
//! Config: `per_core` (bool, default true), `disks` (bool, default true), `network` (bool, default
//! true).

use monitor_plugin::{Collection, Collector, PluginError, Sample, parse_config};
use serde::Deserialize;

#[cfg(not(target_os = "linux"))]
mod portable;
#[cfg(target_os = "linux")]
mod procfs;

#[cfg(not(target_os = "linux"))]
use portable::Readings;
#[cfg(target_os = "linux")]
use procfs::Procfs as Readings;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Settings {
    per_core: bool,
    disks: bool,
    network: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            per_core: true,
            disks: true,
            network: true,
        }
    }
}

#[derive(Default)]
struct SystemCollector {
    settings: Settings,
    readings: Option<Readings>,
    /// How many samples the last collection gave: the next one reserves as many.
    last_len: usize,
}

fn pct(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 * 100.0 / total as f64
    }
}

/// The samples of one mounted file system.
#[allow(clippy::too_many_arguments)] // each is one figure of the same disk
fn disk_samples(
    s: &mut Vec<Sample>,
    disk: &str,
    mount: &str,
    total: u64,
    avail: u64,
    read: u64,
    written: u64,
) {
    s.push(Sample::gauge("system.disk.total_bytes", total as f64).with_label("mount", mount));
    s.push(Sample::gauge("system.disk.available_bytes", avail as f64).with_label("mount", mount));
    s.push(
        Sample::gauge("system.disk.usage", pct(total.saturating_sub(avail), total))
            .with_label("mount", mount),
    );
    s.push(
        Sample::counter("system.disk.read_bytes", read as f64)
            .with_label("disk", disk)
            .with_label("mount", mount),
    );
    s.push(
        Sample::counter("system.disk.written_bytes", written as f64)
            .with_label("disk", disk)
            .with_label("mount", mount),
    );
}

/// The samples of one network interface.
fn network_samples(s: &mut Vec<Sample>, interface: &str, received: u64, transmitted: u64) {
    s.push(
        Sample::counter("system.network.received_bytes", received as f64)
            .with_label("interface", interface),
    );
    s.push(
        Sample::counter("system.network.transmitted_bytes", transmitted as f64)
            .with_label("interface", interface),
    );
}

/// The samples of memory and swap, bytes.
fn memory_samples(
    s: &mut Vec<Sample>,
    total: u64,
    available: u64,
    swap_total: u64,
    swap_used: u64,
) {
    let used = total.saturating_sub(available);
    s.push(Sample::gauge("system.memory.total_bytes", total as f64));
    s.push(Sample::gauge("system.memory.used_bytes", used as f64));
    s.push(Sample::gauge(
        "system.memory.available_bytes",
        available as f64,
    ));
    s.push(Sample::gauge("system.memory.usage", pct(used, total)));
    s.push(Sample::gauge("system.swap.total_bytes", swap_total as f64));
    s.push(Sample::gauge("system.swap.used_bytes", swap_used as f64));
}

/// The samples of CPU usage, percent: all CPUs, then each core when `per_core`.
fn cpu_samples(s: &mut Vec<Sample>, all: f64, cores: impl Iterator<Item = f64>, per_core: bool) {
    s.push(Sample::gauge("system.cpu.usage", all));
    if per_core {
        for (i, usage) in cores.enumerate() {
            s.push(Sample::gauge("system.cpu.core.usage", usage).with_label("core", i.to_string()));
        }
    }
}

fn load_samples(s: &mut Vec<Sample>, [one, five, fifteen]: [f64; 3]) {
    s.push(Sample::gauge("system.load.1", one));
    s.push(Sample::gauge("system.load.5", five));
    s.push(Sample::gauge("system.load.15", fifteen));
}

impl Collector for SystemCollector {
    fn configure(&mut self, config: &serde_json::Value) -> Result<(), PluginError> {
        self.settings = parse_config(config)?;
        self.readings = Some(Readings::start(&self.settings)?);
        Ok(())
    }

    fn collect(&mut self) -> Result<Collection, PluginError> {
        let readings = self.readings.as_mut().ok_or("not configured")?;
        let mut samples = Vec::with_capacity(self.last_len);
        readings.collect(&self.settings, &mut samples);
        self.last_len = samples.len();
        Ok(Collection {
            samples,
            events: vec![],
        })
    }
}

monitor_plugin::export_plugin!(collector "system" => SystemCollector);
