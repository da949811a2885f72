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
//! A collection reads only the watched processes (`/proc/PID/...` on Linux). Finding a process by
//! name or command line needs the whole process table: that scan runs when such a process is not
//! found yet or its process ended, at most once per `scan_interval` (a duration, default 1 s); in
//! between, the process found last is read again while it lives.
//!
//! A process counts as up while it runs: a zombie (exited, not yet reaped by its parent) is down.
//! On Linux, each process found up is watched through a pidfd: its exit asks the host for a
//! collection at once, so `process.up` drops (and alerts and healing follow) without waiting for
//! the interval. Elsewhere, or on a kernel without pidfds, exits are seen at the next collection.
//!
//! Metrics, labelled `process`: `process.up` (1 or 0), `process.cpu.usage` (percent of one core),
//! `process.memory.rss` (bytes), `process.threads`, `process.open_files`, `process.uptime_seconds`,
//! `process.restarts` (counter: times the pid changed while watched). A restart is also reported as
//! a `process_restarted` event.

mod exit;
#[cfg(target_os = "linux")]
mod scan;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use monitor_plugin::{
    Collection, Collector, ConfigDuration, Event, Host, PluginError, Sample, parse_config,
};
use serde::Deserialize;
use sysinfo::{
    Pid, Process, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System, UpdateKind,
};

use self::exit::ExitWatch;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Target {
    name: String,
    pid_file: Option<PathBuf>,
    process_name: Option<String>,
    cmdline_contains: Option<String>,
}

impl Target {
    /// Found by name or command line, which needs a scan of every process.
    fn by_match(&self) -> bool {
        self.pid_file.is_none()
    }

    fn matches(&self, p: &Process) -> bool {
        self.process_name
            .as_ref()
            .is_none_or(|n| p.name().to_string_lossy() == n.as_str())
            && self.cmdline_contains.as_ref().is_none_or(|c| {
                let cmd: Vec<String> = p
                    .cmd()
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect();
                cmd.join(" ").contains(c.as_str())
            })
    }
}

fn one_second() -> ConfigDuration {
    ConfigDuration::from_secs(1)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    processes: Vec<Target>,
    #[serde(default = "one_second")]
    scan_interval: ConfigDuration,
}

/// Running, as opposed to exited (a zombie waiting for its parent, or dead).
fn alive(p: &Process) -> bool {
    !matches!(p.status(), ProcessStatus::Zombie | ProcessStatus::Dead)
}

/// What is read of a watched process each collection.
fn refresh_kind() -> ProcessRefreshKind {
    ProcessRefreshKind::nothing()
        .with_memory()
        .with_cpu()
        .with_cmd(UpdateKind::OnlyIfNotSet)
        .with_tasks()
}

#[derive(Default)]
struct ProcessCollector {
    targets: Vec<Target>,
    scan_interval: Duration,
    /// The watched processes (only those: never the whole table).
    system: Option<System>,
    /// The pid each target was last found at (for targets found by a match: reused while it
    /// lives and still matches).
    found: HashMap<usize, Pid>,
    last_scan: Option<Instant>,
    /// Whole-table scans so far.
    scans: u64,
    last_pid: HashMap<String, u32>,
    restarts: HashMap<String, u64>,
    host: Option<Host>,
    exits: Option<ExitWatch>,
    /// The buffers of whole-table scans, kept between them.
    #[cfg(target_os = "linux")]
    scanner: scan::Scanner,
}

impl ProcessCollector {
    /// The pid a target names now, before reading any process: its pid file's, or the one it was
    /// found at last.
    fn candidate(&self, i: usize) -> Option<Pid> {
        let t = &self.targets[i];
        match &t.pid_file {
            Some(path) => {
                let pid: u32 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
                Some(Pid::from_u32(pid))
            }
            None => self.found.get(&i).copied(),
        }
    }

    /// Reads the processes the targets name; scans the whole table for the targets found by a
    /// match that are not (or no longer) found, at most once per `scan_interval`.
    fn refresh(&mut self) -> Result<(), PluginError> {
        let candidates: Vec<Option<Pid>> =
            (0..self.targets.len()).map(|i| self.candidate(i)).collect();
        let pids: Vec<Pid> = candidates.iter().flatten().copied().collect();
        let system = self.system.as_mut().ok_or("not configured")?;
        system.refresh_processes_specifics(ProcessesToUpdate::Some(&pids), true, refresh_kind());
        for (i, c) in candidates.iter().enumerate() {
            let t = &self.targets[i];
            let keep = c.is_some_and(|pid| {
                system
                    .process(pid)
                    .is_some_and(|p| alive(p) && (!t.by_match() || t.matches(p)))
            });
            if !keep {
                self.found.remove(&i);
            } else if let Some(pid) = c {
                self.found.insert(i, *pid);
            }
        }
        let lost = (0..self.targets.len())
            .any(|i| self.targets[i].by_match() && !self.found.contains_key(&i));
        let due = self
            .last_scan
            .is_none_or(|t| t.elapsed() >= self.scan_interval);
        if lost && due {
            self.scan();
        }
        Ok(())
    }

    /// Looks through every process for the targets found by a match that have no process yet
    /// (the lowest matching pid wins), then reads the ones found.
    fn scan(&mut self) {
        self.last_scan = Some(Instant::now());
        self.scans += 1;
        let lost: Vec<usize> = (0..self.targets.len())
            .filter(|i| self.targets[*i].by_match() && !self.found.contains_key(i))
            .collect();
        let first = self.first_matches(&lost);
        let mut new = Vec::new();
        for (i, pid) in lost.into_iter().zip(first) {
            if let Some(pid) = pid {
                self.found.insert(i, pid);
                new.push(pid);
            }
        }
        if let Some(system) = &mut self.system
            && !new.is_empty()
        {
            system.refresh_processes_specifics(ProcessesToUpdate::Some(&new), true, refresh_kind());
        }
    }

    /// The lowest pid of a running process matching each of `targets` (indexes), from one pass
    /// over `/proc` that reads only what the targets match on.
    #[cfg(target_os = "linux")]
    fn first_matches(&mut self, targets: &[usize]) -> Vec<Option<Pid>> {
        let wanted: Vec<scan::Wanted<'_>> = (targets.iter())
            .map(|i| scan::Wanted {
                process_name: self.targets[*i].process_name.as_deref(),
                cmdline_contains: self.targets[*i].cmdline_contains.as_deref(),
            })
            .collect();
        (self.scanner.scan(&wanted).into_iter())
            .map(|pid| pid.map(Pid::from_u32))
            .collect()
    }

    /// The lowest pid of a running process matching each of `targets` (indexes), from the whole
    /// process table.
    #[cfg(not(target_os = "linux"))]
    fn first_matches(&mut self, targets: &[usize]) -> Vec<Option<Pid>> {
        let Ok(mut all) = System::new() else {
            return vec![None; targets.len()];
        };
        all.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().with_cmd(UpdateKind::Always),
        );
        (targets.iter())
            .map(|i| {
                let t = &self.targets[*i];
                (all.processes().iter())
                    .filter(|(_, p)| alive(p) && t.matches(p))
                    .map(|(pid, _)| *pid)
                    .min()
            })
            .collect()
    }

    /// Watches the processes found up for their exit, when the host takes requests and the
    /// system has pidfds.
    fn watch_exits(&mut self, up: &[u32]) {
        if self.exits.is_none() {
            return;
        }
        let still = self.exits.as_ref().is_some_and(|w| w.watch(up));
        if !still {
            // The kernel refused pidfds after all: collections on schedule only.
            self.exits = None;
        }
    }

    fn samples(&mut self, i: usize, up: &mut Vec<u32>, out: &mut Collection, now_s: u64) {
        let name = self.targets[i].name.clone();
        let system = self.system.as_ref().expect("set in configure");
        let found = self
            .found
            .get(&i)
            .and_then(|pid| Some((*pid, system.process(*pid)?)));
        out.samples.push(
            Sample::gauge("process.up", f64::from(u8::from(found.is_some())))
                .with_label("process", &name),
        );
        if let Some((pid, p)) = found {
            let raw = pid.as_u32();
            up.push(raw);
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
}

impl Collector for ProcessCollector {
    fn attach_host(&mut self, host: Host) {
        self.host = Some(host);
    }

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
        self.scan_interval = s.scan_interval.get();
        self.system = Some(System::new().map_err(|e| format!("cannot read processes: {e}"))?);
        if let Some(host) = &self.host {
            // Without pidfds (or a thread), exits are seen on schedule: not worth failing for.
            self.exits = ExitWatch::start(host.clone()).ok().flatten();
        }
        Ok(())
    }

    fn collect(&mut self) -> Result<Collection, PluginError> {
        self.refresh()?;
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut out = Collection::default();
        let mut up = Vec::new();
        for i in 0..self.targets.len() {
            self.samples(i, &mut up, &mut out, now_s);
        }
        self.watch_exits(&up);
        Ok(out)
    }

    fn shutdown(&mut self) -> Result<(), PluginError> {
        // Stops the watching thread.
        self.exits = None;
        Ok(())
    }
}

monitor_plugin::export_plugin!(collector "process" => ProcessCollector);

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn configured(config: serde_json::Value) -> ProcessCollector {
        let mut c = ProcessCollector::default();
        c.configure(&config).unwrap();
        c
    }

    fn up(c: &Collection, name: &str) -> Option<f64> {
        c.samples
            .iter()
            .find(|s| {
                s.name == "process.up" && s.labels.get("process").map(String::as_str) == Some(name)
            })
            .map(|s| s.value)
    }

    #[test]
    fn a_watch_by_pid_file_never_scans_the_process_table() {
        let dir = std::env::temp_dir().join(format!("monitor-process-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pid_file = dir.join("self.pid");
        std::fs::write(&pid_file, std::process::id().to_string()).unwrap();
        let mut c = configured(serde_json::json!({
            "processes": [{"name": "me", "pid_file": pid_file}],
            "scan_interval": 0,
        }));
        for _ in 0..3 {
            let out = c.collect().unwrap();
            assert_eq!(up(&out, "me"), Some(1.0));
        }
        assert_eq!(c.scans, 0);
        // Only the watched process is held, not the whole table.
        assert_eq!(c.system.as_ref().unwrap().processes().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_watch_by_name_scans_once_then_reads_its_process() {
        let mut child = Command::new("sleep").arg("60").spawn().unwrap();
        let marker = format!("{}", 600_000 + std::process::id() % 1000);
        let mut tagged = Command::new("sleep").arg(&marker).spawn().unwrap();
        // `spawn` returns once the child's exec is past its point of no return, a moment before
        // the kernel sets up its new command line: a scan in that moment reads it empty.
        let cmdline = format!("/proc/{}/cmdline", tagged.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read(&cmdline).is_ok_and(|c| c.starts_with(b"sleep\0")) {
            assert!(
                Instant::now() < deadline,
                "{cmdline} never showed the new program"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut c = configured(serde_json::json!({
            "processes": [{"name": "tagged", "cmdline_contains": format!("sleep {marker}")}],
            "scan_interval": "1h",
        }));
        for _ in 0..3 {
            let out = c.collect().unwrap();
            assert_eq!(up(&out, "tagged"), Some(1.0));
        }
        assert_eq!(c.scans, 1, "found once, then read directly");
        assert_eq!(c.found.get(&0), Some(&Pid::from_u32(tagged.id())));
        // Its process ends: down, and no second scan within the scan interval.
        tagged.kill().unwrap();
        tagged.wait().unwrap();
        let out = c.collect().unwrap();
        assert_eq!(up(&out, "tagged"), Some(0.0));
        assert_eq!(c.scans, 1);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_zombie_is_down() {
        let dir = std::env::temp_dir().join(format!("monitor-zombie-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pid_file = dir.join("child.pid");
        let mut child = Command::new("sleep").arg("60").spawn().unwrap();
        std::fs::write(&pid_file, child.id().to_string()).unwrap();
        let mut c = configured(serde_json::json!({
            "processes": [{"name": "child", "pid_file": pid_file}],
        }));
        assert_eq!(up(&c.collect().unwrap(), "child"), Some(1.0));
        child.kill().unwrap();
        // Not reaped: a zombie until `wait` below, and its /proc entry is still there.
        let stat = format!("/proc/{}/stat", child.id());
        let mut zombie = false;
        for _ in 0..500 {
            let text = std::fs::read_to_string(&stat).unwrap_or_default();
            if text
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            {
                zombie = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(zombie, "the child became a zombie");
        assert_eq!(up(&c.collect().unwrap(), "child"), Some(0.0));
        child.wait().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
