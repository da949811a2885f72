//! Reloading the config into a running engine.
//!
//! Every instance is compared with its declaration in the new config, by kind and name: an
//! unchanged one keeps running with its schedule, notification queue, healing episodes and health
//! figures; a changed one is restarted (a new instance, the old one shut down); a removed one is
//! shut down; a new one is started. The new instances are started before anything else changes,
//! so a plugin that refuses its config leaves the running config as it was. Libraries are never
//! unloaded. Alert instances keep their state when their rule keeps its name and labels.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use monitor_plugin::Severity;
use monitor_plugin::abi::PluginKind;
use serde::Serialize;

use super::healing::Strategy;
use super::notify::Notifier;
use super::running::{Launcher, Purpose, RunningPlugin};
use super::{Engine, Schedule, ShutdownOutcome, load, now_ms};
use crate::config::{Config, ConfigErrors, Isolation, PluginSpec};
use crate::remote_write::{FLUSH_LIMIT, RemoteWrite};

/// How the last reload went, for the `monitor_host_config_last_reload_*` gauges.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ReloadStatus {
    /// The last reload succeeded (true before any reload).
    pub successful: bool,
    /// When the config was last loaded successfully (start-up or reload), ms since epoch.
    pub success_ms: u64,
}

/// What a successful reload changed, each instance as ``kind `name` ``.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadSummary {
    /// Instances started because the new config declares them.
    pub added: Vec<String>,
    /// Instances shut down because the new config no longer declares them.
    pub removed: Vec<String>,
    /// Instances whose declaration changed: shut down and started anew.
    pub restarted: Vec<String>,
    /// Instances left running.
    pub kept: Vec<String>,
    /// Changes that need a restart of the host to apply; the running values stay.
    pub warnings: Vec<String>,
    /// How the shut-down instances (removed and restarted) went.
    pub stopped: Vec<ShutdownOutcome>,
}

impl fmt::Display for ReloadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[String]| {
            if v.is_empty() {
                String::new()
            } else {
                format!(" ({})", v.join(", "))
            }
        };
        write!(
            f,
            "config reloaded: {} added{}, {} removed{}, {} restarted{}, {} kept",
            self.added.len(),
            list(&self.added),
            self.removed.len(),
            list(&self.removed),
            self.restarted.len(),
            list(&self.restarted),
            self.kept.len()
        )?;
        for w in &self.warnings {
            write!(f, "\nwarning: {w}")?;
        }
        Ok(())
    }
}

/// Everything that decides how an instance runs: two equal declarations make the same instance.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Declaration {
    kind: PluginKind,
    name: String,
    plugin: String,
    library: PathBuf,
    config: serde_json::Value,
    timeout: Duration,
    isolation: Isolation,
    max_payload: usize,
    settings: Settings,
}

/// The kind-specific keys.
#[derive(Debug, Clone, PartialEq)]
enum Settings {
    Collector {
        interval: Duration,
    },
    Notifier {
        min_severity: Severity,
    },
    Strategy {
        on: Vec<String>,
        max_attempts: u32,
        within: Duration,
        cooldown: Duration,
        verify_within: Duration,
    },
}

impl Declaration {
    fn new(spec: &PluginSpec, max_payload: usize, settings: Settings) -> Self {
        Self {
            kind: spec.kind,
            name: spec.name.clone(),
            plugin: spec.plugin.clone(),
            library: spec.library.clone(),
            config: spec.config.clone(),
            timeout: spec.timeout,
            isolation: spec.isolation,
            max_payload,
            settings,
        }
    }

    fn label(&self) -> String {
        format!("{} `{}`", self.kind.as_str(), self.name)
    }
}

/// Every instance `config` declares, in slot order: collectors, notifiers, strategies.
pub(super) fn declarations(config: &Config) -> Vec<Declaration> {
    let max = config.host.max_payload;
    let collectors = config.collectors.iter().map(|c| {
        let interval = c.interval;
        Declaration::new(&c.plugin, max, Settings::Collector { interval })
    });
    let notifiers = config.notifiers.iter().map(|n| {
        let min_severity = n.min_severity;
        Declaration::new(&n.plugin, max, Settings::Notifier { min_severity })
    });
    let strategies = config.strategies.iter().map(|s| {
        let settings = Settings::Strategy {
            on: s.on.clone(),
            max_attempts: s.max_attempts,
            within: s.within,
            cooldown: s.cooldown,
            verify_within: s.verify_within,
        };
        Declaration::new(&s.plugin, max, settings)
    });
    collectors.chain(notifiers).chain(strategies).collect()
}

/// What a reload does with each instance, by slot.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Diff {
    /// `(old slot, new slot)` of each instance left running.
    pub kept: Vec<(usize, usize)>,
    /// New slots to start: new declarations, and changed ones.
    pub start: Vec<usize>,
    /// Old slots to shut down: removed declarations, and changed ones.
    pub stop: Vec<usize>,
    /// `(old slot, new slot)` of each changed declaration (also in `start` and `stop`).
    pub changed: Vec<(usize, usize)>,
}

/// Compares declarations by kind and name.
pub(super) fn diff(old: &[Declaration], new: &[Declaration]) -> Diff {
    let by_name: BTreeMap<(&str, &str), usize> = old
        .iter()
        .enumerate()
        .map(|(i, d)| ((d.kind.as_str(), d.name.as_str()), i))
        .collect();
    let mut d = Diff::default();
    let mut matched = vec![false; old.len()];
    for (slot, decl) in new.iter().enumerate() {
        match by_name.get(&(decl.kind.as_str(), decl.name.as_str())) {
            Some(&o) if old[o] == *decl => {
                matched[o] = true;
                d.kept.push((o, slot));
            }
            Some(&o) => {
                matched[o] = true;
                d.changed.push((o, slot));
                d.start.push(slot);
                d.stop.push(o);
            }
            None => d.start.push(slot),
        }
    }
    d.stop.extend((0..old.len()).filter(|&o| !matched[o]));
    d.stop.sort_unstable();
    d
}

impl Engine {
    /// Re-reads the config at `path` and applies it (see [`apply_config`](Self::apply_config)).
    ///
    /// # Errors
    ///
    /// As [`apply_config`](Self::apply_config), and every problem of the file; the running config
    /// stays.
    ///
    /// # Safety
    ///
    /// As [`load`](Self::load): runs code from the libraries the new config names.
    pub unsafe fn reload(&mut self, path: &Path) -> Result<ReloadSummary, ConfigErrors> {
        match Config::load(path) {
            // SAFETY: forwarded to our caller.
            Ok(config) => unsafe { self.apply_config(&config) },
            Err(e) => {
                self.last_reload.successful = false;
                Err(e)
            }
        }
    }

    /// Applies a new config to the running engine. Every instance is compared with its
    /// declaration, by kind and name: an unchanged one keeps running, a changed one is restarted, a
    /// removed one is shut down and a new one started; alert instances keep their state when their
    /// rule keeps its name and labels. `[host]`'s `listen`, `data_dir`, `retention` and
    /// `rollup_retention` cannot change while running: their running values stay and the summary
    /// warns that a restart is needed.
    ///
    /// # Errors
    ///
    /// Every library, plugin and `configure` problem of the instances to start; nothing changes
    /// then (the instances already started are shut down).
    ///
    /// # Safety
    ///
    /// As [`load`](Self::load): runs code from the libraries the new config names.
    pub unsafe fn apply_config(&mut self, config: &Config) -> Result<ReloadSummary, ConfigErrors> {
        let declared = declarations(config);
        let diff = diff(&self.declared, &declared);
        let specs: Vec<(&PluginSpec, Duration)> = config
            .collectors
            .iter()
            .map(|c| (&c.plugin, c.interval))
            .chain(
                config
                    .notifiers
                    .iter()
                    .map(|n| (&n.plugin, config.host.interval)),
            )
            .chain(
                config
                    .strategies
                    .iter()
                    .map(|s| (&s.plugin, config.host.interval)),
            )
            .collect();
        let first_called = config.collectors.len();
        let mut launcher = Launcher::new(&self._done_tx, &self.requests, config.host.max_payload);
        let mut started = BTreeMap::new();
        for &slot in &diff.start {
            let (spec, backoff) = specs[slot];
            // A dry run starts no notifier or strategy.
            let run = slot < first_called || self.dry_run.is_none();
            // SAFETY: forwarded to our caller, who vouches for the configured libraries.
            if let Some(i) = unsafe { launcher.start(spec, backoff, run) } {
                started.insert(slot, i);
            }
        }
        let fresh = match launcher.finish() {
            Ok(fresh) => fresh,
            Err(errors) => {
                self.last_reload.successful = false;
                return Err(ConfigErrors(errors));
            }
        };
        let mut summary = self.summarise(&diff, &declared);
        summary.warnings = self.host_warnings(config);
        let kept_from: BTreeMap<usize, usize> = diff.kept.iter().map(|&(o, n)| (n, o)).collect();
        let mut old: Vec<Option<RunningPlugin>> = std::mem::take(&mut self.plugins)
            .into_iter()
            .map(Some)
            .collect();
        let mut fresh: Vec<Option<RunningPlugin>> = fresh.into_iter().map(Some).collect();
        for (slot, (_, backoff)) in specs.iter().enumerate() {
            let mut p = match kept_from.get(&slot) {
                Some(&o) => old[o].take(),
                None => fresh[started[&slot]].take(),
            }
            .expect("every slot is kept or started once");
            p.base_backoff_ms = backoff.as_millis() as u64;
            self.plugins.push(p);
        }
        summary.stopped = old.into_iter().flatten().map(retire).collect();
        self.mark_removed_stale(&diff);
        self.rebuild_lists(config, &kept_from);
        let rules = self.alerts.replace_rules(
            crate::alert::CompiledRules::from_config(config),
            load::stale_ms(config),
        );
        self.healing.remap_rules(&rules);
        let store = self.persistence.as_ref().map(|p| p.path().to_owned());
        let labels = config.healing.failure_type_labels.clone();
        (self.analytics).set_labels(labels, store.as_deref(), now_ms());
        (self.silences).configure(config.silences.clone(), config.inhibit.clone());
        self.escalations.clone_from(&config.escalations);
        self.restart_remote_write(config);
        let mut host = config.host.clone();
        host.listen = self.host.listen;
        host.data_dir = self.host.data_dir.clone();
        host.retention = self.host.retention;
        host.rollup_retention = self.host.rollup_retention;
        self.host = host;
        self.store.set_limits(load::series_limits(config));
        self.declared = declared;
        self.last_reload = ReloadStatus {
            successful: true,
            success_ms: now_ms(),
        };
        Ok(summary)
    }

    /// The series of the collectors `diff` removes (not those it restarts, whose series go on)
    /// are stale from now on: the alerts on them resolve at the next evaluation. Now is the last
    /// cycle's time, or just after the collector's newest sample when that came later.
    fn mark_removed_stale(&mut self, diff: &Diff) {
        let changed: Vec<usize> = diff.changed.iter().map(|&(o, _)| o).collect();
        for &o in diff.stop.iter().filter(|o| !changed.contains(o)) {
            let d = &self.declared[o];
            if d.kind != PluginKind::Collector {
                continue;
            }
            let newest = (self.store.iter())
                .filter(|(_, s)| s.source == d.name)
                .filter_map(|(_, s)| s.latest())
                .map(|(t, _)| t)
                .max();
            let at = newest.map_or(self.clock_ms, |t| self.clock_ms.max(t + 1));
            self.alerts.removed(&d.name, at);
        }
    }

    /// Restarts the `[[remote_write]]` senders when the reloaded config changes them: the old ones
    /// deliver what they queued (for at most [`FLUSH_LIMIT`]), then the new ones take over.
    fn restart_remote_write(&mut self, config: &Config) {
        if self.dry_run.is_some() || self.remote.runs(&config.remote_write) {
            return;
        }
        let mut old = std::mem::replace(&mut self.remote, RemoteWrite::start(&config.remote_write));
        old.shutdown(FLUSH_LIMIT);
        tracing::info!(
            backends = config.remote_write.len(),
            "remote write restarted with the reloaded config"
        );
    }

    fn summarise(&self, diff: &Diff, declared: &[Declaration]) -> ReloadSummary {
        let changed_new: Vec<usize> = diff.changed.iter().map(|&(_, n)| n).collect();
        let changed_old: Vec<usize> = diff.changed.iter().map(|&(o, _)| o).collect();
        ReloadSummary {
            added: (diff.start.iter())
                .filter(|s| !changed_new.contains(s))
                .map(|&s| declared[s].label())
                .collect(),
            removed: (diff.stop.iter())
                .filter(|s| !changed_old.contains(s))
                .map(|&s| self.declared[s].label())
                .collect(),
            restarted: changed_new.iter().map(|&s| declared[s].label()).collect(),
            kept: diff
                .kept
                .iter()
                .map(|&(_, n)| declared[n].label())
                .collect(),
            ..ReloadSummary::default()
        }
    }

    /// The `[host]` keys that cannot change while running.
    fn host_warnings(&self, config: &Config) -> Vec<String> {
        let (old, new) = (&self.host, &config.host);
        let show = |a: Option<String>| a.unwrap_or_else(|| "off".to_owned());
        let mut out = Vec::new();
        if old.listen != new.listen {
            out.push(format!(
                "`listen` changed to {}: restart the host to apply it; still serving {}",
                show(new.listen.map(|a| a.to_string())),
                show(old.listen.map(|a| a.to_string()))
            ));
        }
        if old.data_dir != new.data_dir {
            out.push(format!(
                "`data_dir` changed to {}: restart the host to apply it; still using {}",
                new.data_dir.display(),
                old.data_dir.display()
            ));
        }
        if old.retention != new.retention {
            out.push(format!(
                "`retention` changed to {:?}: restart the host to apply it; still keeping {:?}",
                new.retention, old.retention
            ));
        }
        if old.rollup_retention != new.rollup_retention {
            out.push(format!(
                "`rollup_retention` changed to {:?}: restart the host to apply it; still keeping {:?}",
                new.rollup_retention, old.rollup_retention
            ));
        }
        out
    }

    /// Rebuilds the collector schedules, notifier queues and strategies for the new slots, moving
    /// the state of kept instances (`kept_from`: new slot to old slot).
    fn rebuild_lists(&mut self, config: &Config, kept_from: &BTreeMap<usize, usize>) {
        let mut schedules: BTreeMap<usize, Schedule> = std::mem::take(&mut self.collectors)
            .into_iter()
            .map(|s| (s.slot, s))
            .collect();
        let kept = |slot: usize| kept_from.get(&slot).copied();
        for (slot, c) in config.collectors.iter().enumerate() {
            // An unchanged collector keeps its schedule; a new one is due now.
            let next_due_ms = kept(slot)
                .and_then(|o| schedules.remove(&o))
                .map_or(0, |s| s.next_due_ms);
            self.collectors.push(Schedule {
                slot,
                interval_ms: c.interval.as_millis() as u64,
                next_due_ms,
            });
        }
        let mut queues: BTreeMap<usize, Notifier> = std::mem::take(&mut self.notifiers.list)
            .into_iter()
            .map(|n| (n.slot, n))
            .collect();
        let first = config.collectors.len();
        for (i, n) in config.notifiers.iter().enumerate() {
            let slot = first + i;
            let mut notifier = Notifier::new(slot, n);
            if let Some(old) = kept(slot).and_then(|o| queues.remove(&o)) {
                notifier.queue = old.queue;
                notifier.sent = old.sent;
            } else if let Some(old) =
                (queues.values_mut()).find(|o| self.declared[o.slot].name == n.plugin.name)
            {
                // Restarted with a new declaration: its reminders keep their schedule.
                notifier.sent = std::mem::take(&mut old.sent);
            }
            if notifier.resend.is_none() {
                notifier.sent.clear();
            }
            self.notifiers.list.push(notifier);
        }
        // Send times moved, or were dropped with their notifier: the store follows.
        self.notifiers.dirty = true;
        let mut strategies: BTreeMap<usize, (usize, Strategy)> =
            std::mem::take(&mut self.healing.list)
                .into_iter()
                .enumerate()
                .map(|(i, s)| (s.slot, (i, s)))
                .collect();
        let first = first + config.notifiers.len();
        let mut moved = BTreeMap::new();
        for (i, s) in config.strategies.iter().enumerate() {
            let slot = first + i;
            let strategy = match kept(slot).and_then(|o| strategies.remove(&o)) {
                Some((old_index, mut st)) => {
                    moved.insert(old_index, i);
                    st.slot = slot;
                    st
                }
                None => Strategy::new(slot, s),
            };
            self.healing.list.push(strategy);
        }
        // A kept strategy's running attempt names the strategy by its index in the list.
        for p in &mut self.plugins {
            if let Some(f) = &mut p.in_flight
                && let Purpose::Heal(job) = &mut f.purpose
                && let Some(&i) = moved.get(&job.strategy)
            {
                job.strategy = i;
            }
        }
    }
}

/// Shuts a removed or replaced instance down. One busy with a call is shut down by its worker
/// once the call returns; the call's result is ignored (no instance waits for its job any more).
fn retire(mut p: RunningPlugin) -> ShutdownOutcome {
    if p.in_flight.is_some()
        && let Some(worker) = p.worker.take()
    {
        // A zero wait: the shutdown is queued behind the running call.
        let result = match worker.shutdown(Duration::ZERO) {
            Some(Ok(())) => "ok".to_owned(),
            Some(Err(e)) => e.to_string(),
            None => "shutting down once its running call returns".to_owned(),
        };
        return ShutdownOutcome {
            name: p.name.clone(),
            kind: p.kind.as_str(),
            result,
        };
    }
    p.shut_down()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(kind: PluginKind, name: &str, config: serde_json::Value) -> Declaration {
        let settings = match kind {
            PluginKind::Collector => Settings::Collector {
                interval: Duration::from_secs(1),
            },
            PluginKind::Notifier => Settings::Notifier {
                min_severity: Severity::Info,
            },
            _ => Settings::Strategy {
                on: vec!["a".into()],
                max_attempts: 3,
                within: Duration::from_secs(60),
                cooldown: Duration::from_secs(1),
                verify_within: Duration::from_secs(120),
            },
        };
        Declaration {
            kind,
            name: name.into(),
            plugin: "p".into(),
            library: PathBuf::from("/lib/libp.so"),
            config,
            timeout: Duration::from_secs(5),
            isolation: Isolation::Thread,
            max_payload: 1024,
            settings,
        }
    }

    fn config(text: &str) -> Config {
        Config::from_str(text, "monitor.toml", Path::new("/etc/monitor")).unwrap()
    }

    fn engine(text: &str) -> Engine {
        // SAFETY: the config names no library.
        unsafe { Engine::load(&config(text)) }.unwrap()
    }

    #[test]
    fn host_keys_apply_except_those_that_need_a_restart() {
        let mut e = engine(
            "[host]\nname = \"a\"\ninterval = \"10s\"\nlisten = \"127.0.0.1:9000\"\ndata_dir = \"d\"\n",
        );
        let new = config(
            "[host]\nname = \"b\"\ninterval = \"5s\"\nlisten = \"off\"\ndata_dir = \"e\"\nmax_payload_bytes = 4096\n",
        );
        let before = e.last_reload().success_ms;
        // SAFETY: as above.
        let summary = unsafe { e.apply_config(&new) }.unwrap();
        assert_eq!(summary.warnings.len(), 2, "{summary}");
        assert!(summary.warnings[0].starts_with("`listen` changed to off: restart"));
        assert!(summary.warnings[1].starts_with("`data_dir` changed to /etc/monitor/e"));
        let host = e.host();
        assert_eq!(
            (host.name.as_str(), host.interval),
            ("b", Duration::from_secs(5))
        );
        assert_eq!(host.max_payload, 4096);
        assert_eq!(host.listen, Some("127.0.0.1:9000".parse().unwrap()));
        assert_eq!(host.data_dir, PathBuf::from("/etc/monitor/d"));
        assert!(e.last_reload().successful && e.last_reload().success_ms >= before);
    }

    #[test]
    fn a_config_whose_instances_cannot_start_changes_nothing() {
        let mut e = engine("[host]\nname = \"a\"\n");
        let new = config(
            "[host]\nname = \"b\"\n\n[[collector]]\nplugin = \"x\"\nlibrary = \"/nowhere/libx.so\"\n",
        );
        // SAFETY: the library does not exist; nothing is loaded.
        let errors = unsafe { e.apply_config(&new) }.unwrap_err();
        assert_eq!(errors.0[0].location.line, 6, "{errors}");
        assert!(!e.last_reload().successful);
        assert_eq!(e.host().name, "a");
        assert!(e.plugins().is_empty() && e.declared.is_empty());
    }

    fn empty() -> serde_json::Value {
        serde_json::json!({})
    }

    #[test]
    fn unchanged_changed_removed_and_new_declarations() {
        use PluginKind::{Collector, Notifier, Strategy};
        let old = vec![
            decl(Collector, "cpu", empty()),
            decl(Collector, "disk", empty()),
            decl(Notifier, "mail", empty()),
            decl(Strategy, "fix", empty()),
        ];
        let new = vec![
            decl(Collector, "cpu", empty()),
            decl(Collector, "net", empty()),
            decl(Strategy, "fix", serde_json::json!({ "path": "/x" })),
        ];
        let d = diff(&old, &new);
        assert_eq!(d.kept, vec![(0, 0)]);
        assert_eq!(d.changed, vec![(3, 2)]);
        assert_eq!(d.start, vec![1, 2]);
        assert_eq!(d.stop, vec![1, 2, 3]);
    }

    #[test]
    fn a_moved_declaration_is_kept_at_its_new_slot() {
        use PluginKind::Collector;
        let old = vec![decl(Collector, "a", empty()), decl(Collector, "b", empty())];
        let new = vec![decl(Collector, "b", empty()), decl(Collector, "a", empty())];
        let d = diff(&old, &new);
        assert_eq!(d.kept, vec![(1, 0), (0, 1)]);
        assert!(d.start.is_empty() && d.stop.is_empty() && d.changed.is_empty());
    }

    #[test]
    fn every_key_counts_and_names_are_per_kind() {
        use PluginKind::{Collector, Notifier};
        let base = decl(Collector, "x", empty());
        let variants = [
            Declaration {
                plugin: "q".into(),
                ..base.clone()
            },
            Declaration {
                library: PathBuf::from("/lib/libq.so"),
                ..base.clone()
            },
            Declaration {
                timeout: Duration::from_secs(6),
                ..base.clone()
            },
            Declaration {
                isolation: Isolation::Process,
                ..base.clone()
            },
            Declaration {
                max_payload: 2048,
                ..base.clone()
            },
            Declaration {
                settings: Settings::Collector {
                    interval: Duration::from_secs(2),
                },
                ..base.clone()
            },
        ];
        for v in variants {
            let d = diff(std::slice::from_ref(&base), std::slice::from_ref(&v));
            assert_eq!(d.changed, vec![(0, 0)], "{v:?}");
        }
        // A notifier named like a collector is another instance.
        let d = diff(&[base], &[decl(Notifier, "x", empty())]);
        assert_eq!((d.start, d.stop), (vec![0], vec![0]));
        assert!(d.changed.is_empty());
    }
}
