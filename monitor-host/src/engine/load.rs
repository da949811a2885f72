//! Starting the plugin instances a config names.

use std::collections::{BTreeMap, BTreeSet};

use crossbeam_channel::unbounded;

use super::healing::{Healing, Strategy};
use super::notify::{Notifier, Notifiers};
use super::reload::{self, ReloadStatus};
use super::request::Requests;
use super::running::Launcher;
use super::{DryRun, Engine, Schedule, now_ms};
use crate::alert::{AlertEngine, CompiledRules};
use crate::config::{Config, ConfigErrors};
use crate::history::History;
use crate::remote_write::RemoteWrite;
use crate::silence::Silences;
use crate::store::{SeriesLimits, Store};

impl Engine {
    /// Loads every library the config names, checks the plugins exist, and starts a configured
    /// instance of each on its worker. Nothing is left running when anything fails.
    ///
    /// # Errors
    ///
    /// Every missing or unloadable library, ABI mismatch, unknown plugin and `configure` error,
    /// each at the config line of the key concerned.
    ///
    /// # Safety
    ///
    /// Runs code from the libraries named in the config (see
    /// [`PluginLibrary::load`](crate::PluginLibrary::load)): the config must only name libraries
    /// you trust.
    pub unsafe fn load(config: &Config) -> Result<Engine, ConfigErrors> {
        // SAFETY: forwarded to our caller.
        unsafe { Self::load_with(config, false) }
    }

    /// Like [`load`](Self::load), for a dry run: collectors are started; notifier and strategy
    /// libraries are loaded and their plugins looked up, but no instance is created and none is
    /// ever called. Cycles record what they would notify and heal in
    /// [`dry_run`](Self::dry_run) instead.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load), except for notifier and strategy `configure` errors.
    ///
    /// # Safety
    ///
    /// As [`load`](Self::load).
    pub unsafe fn load_dry_run(config: &Config) -> Result<Engine, ConfigErrors> {
        // SAFETY: forwarded to our caller.
        unsafe { Self::load_with(config, true) }
    }

    unsafe fn load_with(config: &Config, dry_run: bool) -> Result<Engine, ConfigErrors> {
        let (done_tx, done_rx) = unbounded();
        let requests = Requests::default();
        let mut launcher = Launcher::new(&done_tx, &requests, config.host.max_payload);
        let mut collectors = Vec::new();
        for c in &config.collectors {
            // SAFETY: forwarded to our caller, who vouches for the configured libraries.
            if let Some(slot) = unsafe { launcher.start(&c.plugin, c.interval, true) } {
                collectors.push(Schedule {
                    slot,
                    interval_ms: c.interval.as_millis() as u64,
                    next_due_ms: 0,
                });
            }
        }
        let mut notifiers = Notifiers::default();
        for n in &config.notifiers {
            // SAFETY: as above.
            if let Some(slot) = unsafe { launcher.start(&n.plugin, config.host.interval, !dry_run) }
            {
                notifiers.list.push(Notifier::new(slot, n));
            }
        }
        let mut healing = Healing::default();
        for s in &config.strategies {
            // SAFETY: as above.
            if let Some(slot) = unsafe { launcher.start(&s.plugin, config.host.interval, !dry_run) }
            {
                healing.list.push(Strategy::new(slot, s));
            }
        }
        let plugins = launcher.finish().map_err(ConfigErrors)?;
        let stale_ms = stale_ms(config);
        let mut store = Store::new(config.host.memory_retention().as_millis() as u64);
        store.set_limits(series_limits(config));
        Ok(Engine {
            host: config.host.clone(),
            plugins,
            collectors,
            notifiers,
            healing,
            done_rx,
            _done_tx: done_tx,
            requests,
            store,
            alerts: AlertEngine::new(CompiledRules::from_config(config), stale_ms),
            history: History::default(),
            analytics: std::sync::Arc::new(crate::healing_log::HealingAnalytics::new(
                config.healing.failure_type_labels.clone(),
                config.host.rollup_retention,
            )),
            remote: if dry_run {
                RemoteWrite::default()
            } else {
                RemoteWrite::start(&config.remote_write)
            },
            persistence: None,
            silences: {
                let mut s = Silences::default();
                s.configure(config.silences.clone(), config.inhibit.clone());
                s
            },
            mutes: BTreeMap::new(),
            incidents: crate::incident::Incidents::default(),
            escalations: config.escalations.clone(),
            withheld: BTreeSet::new(),
            withheld_total: 0,
            withheld_dirty: false,
            dry_run: dry_run.then(DryRun::default),
            next_job: 0,
            cycles: 0,
            last_cycle: None,
            round: None,
            write_failures: 0,
            limit_logged: Default::default(),
            started_ms: now_ms(),
            clock_ms: now_ms(),
            declared: reload::declarations(config),
            last_reload: ReloadStatus {
                successful: true,
                success_ms: now_ms(),
            },
            feed: Default::default(),
        })
    }
}

/// `[host] max_series` and each collector's own `max_series`, by instance name (the source of
/// its series).
pub(super) fn series_limits(config: &Config) -> SeriesLimits {
    SeriesLimits {
        total: Some(config.host.max_series),
        per_source: (config.collectors.iter())
            .filter_map(|c| Some((c.plugin.name.clone(), c.max_series?)))
            .collect(),
    }
}

/// A series not refreshed for three of the slowest intervals no longer counts for alerts.
pub(super) fn stale_ms(config: &Config) -> u64 {
    let max_interval = config
        .collectors
        .iter()
        .map(|c| c.interval)
        .chain([config.host.interval])
        .max()
        .unwrap_or(config.host.interval);
    3 * max_interval.as_millis() as u64
}
