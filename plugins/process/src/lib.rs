//! `process` collector: whether chosen processes run, and what they use.
//!
//! Each entry of `processes` picks one process by `pid_file`, by exact `process_name`, or by a
//! substring of its command line (`cmdline_contains`); the first match wins. Paths are relative to
//! the host's working directory.
//!
//! ```toml
//! [[collector.config.processes]]
//! name = "demo"                       # the `process` label
//! pid_file = "monitor-data/demo.pid"
//! ```
//!
//! Metrics, labelled `process`: `process.up` (1 or 0), `process.cpu.usage` (percent of one core),
//! `process.memory.rss` (bytes), `process.threads`, `process.open_files`, `process.uptime_seconds`,
//! `process.restarts` (counter: times the pid changed while watched). A restart is also reported as
//! a `process_restarted` event.

use std::collections::HashMap;
use std::path::PathBuf;

use monitor_plugin::{Collection, Collector, Event, PluginError, Sample, parse_config};
use serde::Deserialize;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Target {
    name: String,
    pid_file: Option<PathBuf>,
    process_name: Option<String>,
    cmdline_contains: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    processes: Vec<Target>,
}

#[derive(Default)]
struct ProcessCollector {
    targets: Vec<Target>,
    system: Option<System>,
    last_pid: HashMap<String, u32>,
    restarts: HashMap<String, u64>,
}

impl ProcessCollector {
    fn find(&self, t: &Target) -> Option<Pid> {
        let system = self.system.as_ref()?;
        if let Some(path) = &t.pid_file {
            let pid: u32 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
            let pid = Pid::from_u32(pid);
            return system.process(pid).map(|_| pid);
        }
        let mut found: Vec<Pid> = system
            .processes()
            .iter()
            .filter(|(_, p)| {
                t.process_name
                    .as_ref()
                    .is_none_or(|n| p.name().to_string_lossy() == n.as_str())
                    && t.cmdline_contains.as_ref().is_none_or(|c| {
                        let cmd: Vec<String> = p
                            .cmd()
                            .iter()
                            .map(|a| a.to_string_lossy().into_owned())
                            .collect();
                        cmd.join(" ").contains(c.as_str())
                    })
            })
            .map(|(pid, _)| *pid)
            .collect();
        found.sort();
        found.first().copied()
    }
}

impl Collector for ProcessCollector {
    fn configure(&mut self, config: &serde_json::Value) -> Result<(), PluginError> {
        let s: Settings = parse_config(config)?;
        for t in &s.processes {
            let ways = [
                t.pid_file.is_some(),
                t.process_name.is_some() || t.cmdline_contains.is_some(),
            ];
            if ways.iter().filter(|w| **w).count() != 1 {
                return Err(format!(
                    "process `{}`: give either `pid_file`, or `process_name` and/or `cmdline_contains`",
                    t.name
                )
                .into());
            }
        }
        self.targets = s.processes;
        self.system = Some(System::new().map_err(|e| format!("cannot read processes: {e}"))?);
        Ok(())
    }

    fn collect(&mut self) -> Result<Collection, PluginError> {
        let system = self.system.as_mut().ok_or("not configured")?;
        system.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing()
                .with_memory()
                .with_cpu()
                .with_cmd(UpdateKind::OnlyIfNotSet)
                .with_tasks(),
        );
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut out = Collection::default();
        for i in 0..self.targets.len() {
            let t = &self.targets[i];
            let name = t.name.clone();
            let pid = self.find(t);
            let system = self.system.as_ref().expect("set in configure");
            let up = pid.and_then(|p| system.process(p));
            out.samples.push(
                Sample::gauge("process.up", f64::from(u8::from(up.is_some())))
                    .with_label("process", &name),
            );
            if let (Some(pid), Some(p)) = (pid, up) {
                let raw = pid.as_u32();
                if let Some(old) = self.last_pid.insert(name.clone(), raw)
                    && old != raw
                {
                    *self.restarts.entry(name.clone()).or_default() += 1;
                    out.events.push(Event {
                        kind: "process_restarted".into(),
                        message: format!("{name}: pid {old} -> {raw}"),
                        labels: [("process".to_owned(), name.clone())].into(),
                        timestamp_ms: None,
                    });
                }
                let l = |s: Sample| s.with_label("process", &name);
                out.samples.push(l(Sample::gauge(
                    "process.cpu.usage",
                    f64::from(p.cpu_usage()),
                )));
                out.samples
                    .push(l(Sample::gauge("process.memory.rss", p.memory() as f64)));
                if let Some(tasks) = p.tasks() {
                    out.samples.push(l(Sample::gauge(
                        "process.threads",
                        tasks.len().max(1) as f64,
                    )));
                }
                if let Some(files) = p.open_files() {
                    out.samples
                        .push(l(Sample::gauge("process.open_files", files as f64)));
                }
                out.samples.push(l(Sample::gauge(
                    "process.uptime_seconds",
                    now_s.saturating_sub(p.start_time()) as f64,
                )));
            }
            let restarts = self.restarts.get(&name).copied().unwrap_or(0);
            out.samples.push(
                Sample::counter("process.restarts", restarts as f64).with_label("process", &name),
            );
        }
        Ok(out)
    }
}

monitor_plugin::export_plugin!(collector "process" => ProcessCollector);
