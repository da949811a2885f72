//! The machine's figures via `sysinfo`, where there is no procfs to read.

use monitor_plugin::{PluginError, Sample};
use sysinfo::{Disks, Networks, System};

use crate::{Settings, cpu_samples, disk_samples, load_samples, memory_samples, network_samples};

/// What the collector keeps between collections.
pub(crate) struct Readings {
    system: System,
    disks: Option<Disks>,
    networks: Option<Networks>,
}

impl Readings {
    /// Takes the first CPU reading, so that the first collection has a usage over its interval.
    pub(crate) fn start(settings: &Settings) -> Result<Self, PluginError> {
        let mut system = System::new().map_err(|e| format!("cannot read system figures: {e}"))?;
        system.refresh_cpu_usage();
        Ok(Self {
            system,
            disks: settings
                .disks
                .then(|| Disks::new_with_refreshed_list().ok())
                .flatten(),
            networks: settings
                .network
                .then(|| Networks::new_with_refreshed_list().ok())
                .flatten(),
        })
    }

    /// Reads every figure `settings` asks for into `s`.
    pub(crate) fn collect(&mut self, settings: &Settings, s: &mut Vec<Sample>) {
        let system = &mut self.system;
        system.refresh_cpu_usage();
        system.refresh_memory();
        cpu_samples(
            s,
            f64::from(system.global_cpu_usage()),
            system.cpus().iter().map(|c| f64::from(c.usage())),
            settings.per_core,
        );
        if let Ok(load) = System::load_average() {
            load_samples(s, [load.one, load.five, load.fifteen]);
        }
        memory_samples(
            s,
            system.total_memory(),
            system.available_memory(),
            system.total_swap(),
            system.used_swap(),
        );
        if let Some(disks) = self.disks.as_mut() {
            disks.refresh(true);
            for d in disks.iter() {
                let u = d.usage();
                disk_samples(
                    s,
                    &d.name().to_string_lossy(),
                    &d.mount_point().display().to_string(),
                    d.total_space(),
                    d.available_space(),
                    u.total_read_bytes,
                    u.total_written_bytes,
                );
            }
        }
        if let Some(networks) = self.networks.as_mut() {
            networks.refresh(true);
            for (name, data) in networks.iter() {
                network_samples(
                    s,
                    &name.to_string_lossy(),
                    data.total_received(),
                    data.total_transmitted(),
                );
            }
        }
    }
}
