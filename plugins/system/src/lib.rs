//! `system` collector: the machine's CPU, load, memory, swap, disks and network, via `sysinfo`.
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
use sysinfo::{Disks, Networks, System};

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
    system: Option<System>,
    disks: Option<Disks>,
    networks: Option<Networks>,
}

fn pct(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 * 100.0 / total as f64
    }
}

impl Collector for SystemCollector {
    fn configure(&mut self, config: &serde_json::Value) -> Result<(), PluginError> {
        self.settings = parse_config(config)?;
        let mut system = System::new().map_err(|e| format!("cannot read system figures: {e}"))?;
        // CPU usage is a difference between two readings: take the first one now.
        system.refresh_cpu_usage();
        self.system = Some(system);
        if self.settings.disks {
            self.disks = Disks::new_with_refreshed_list().ok();
        }
        if self.settings.network {
            self.networks = Networks::new_with_refreshed_list().ok();
        }
        Ok(())
    }

    fn collect(&mut self) -> Result<Collection, PluginError> {
        let system = self.system.as_mut().ok_or("not configured")?;
        system.refresh_cpu_usage();
        system.refresh_memory();
        let mut s = vec![Sample::gauge(
            "system.cpu.usage",
            f64::from(system.global_cpu_usage()),
        )];
        if self.settings.per_core {
            for (i, cpu) in system.cpus().iter().enumerate() {
                s.push(
                    Sample::gauge("system.cpu.core.usage", f64::from(cpu.usage()))
                        .with_label("core", i.to_string()),
                );
            }
        }
        if let Ok(load) = System::load_average() {
            s.push(Sample::gauge("system.load.1", load.one));
            s.push(Sample::gauge("system.load.5", load.five));
            s.push(Sample::gauge("system.load.15", load.fifteen));
        }
        let (total, used) = (system.total_memory(), system.used_memory());
        s.push(Sample::gauge("system.memory.total_bytes", total as f64));
        s.push(Sample::gauge("system.memory.used_bytes", used as f64));
        s.push(Sample::gauge(
            "system.memory.available_bytes",
            system.available_memory() as f64,
        ));
        s.push(Sample::gauge("system.memory.usage", pct(used, total)));
        s.push(Sample::gauge(
            "system.swap.total_bytes",
            system.total_swap() as f64,
        ));
        s.push(Sample::gauge(
            "system.swap.used_bytes",
            system.used_swap() as f64,
        ));
        if let Some(disks) = self.disks.as_mut() {
            disks.refresh(true);
            for d in disks.iter() {
                let mount = d.mount_point().display().to_string();
                let (total, avail) = (d.total_space(), d.available_space());
                s.push(
                    Sample::gauge("system.disk.total_bytes", total as f64)
                        .with_label("mount", &mount),
                );
                s.push(
                    Sample::gauge("system.disk.available_bytes", avail as f64)
                        .with_label("mount", &mount),
                );
                s.push(
                    Sample::gauge("system.disk.usage", pct(total.saturating_sub(avail), total))
                        .with_label("mount", &mount),
                );
                let u = d.usage();
                let disk = d.name().to_string_lossy().into_owned();
                s.push(
                    Sample::counter("system.disk.read_bytes", u.total_read_bytes as f64)
                        .with_label("disk", &disk)
                        .with_label("mount", &mount),
                );
                s.push(
                    Sample::counter("system.disk.written_bytes", u.total_written_bytes as f64)
                        .with_label("disk", &disk)
                        .with_label("mount", &mount),
                );
            }
        }
        if let Some(networks) = self.networks.as_mut() {
            networks.refresh(true);
            for (name, data) in networks.iter() {
                let name = name.to_string_lossy();
                s.push(
                    Sample::counter(
                        "system.network.received_bytes",
                        data.total_received() as f64,
                    )
                    .with_label("interface", name.as_ref()),
                );
                s.push(
                    Sample::counter(
                        "system.network.transmitted_bytes",
                        data.total_transmitted() as f64,
                    )
                    .with_label("interface", name.as_ref()),
                );
            }
        }
        Ok(Collection {
            samples: s,
            events: vec![],
        })
    }
}

monitor_plugin::export_plugin!(collector "system" => SystemCollector);
