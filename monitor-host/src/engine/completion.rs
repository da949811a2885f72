//! What comes back from plugin calls: collections into the store, heal outcomes into the history,
//! failures and timeouts into the instance's health.

use std::time::Instant;

use monitor_plugin::{HealOutcome, Labels};

use super::Engine;
use super::collection::RawCollection;
use super::healing::HealJob;
use super::running::{InFlight, Purpose};
use crate::history::{EventRecord, HealRecord, Verified};
use crate::library::CallFailure;
use crate::worker::Done;

impl Engine {
    pub(super) fn dispatch(
        &mut self,
        slot: usize,
        input: Vec<u8>,
        purpose: Purpose,
        now_ms: u64,
    ) -> u64 {
        self.next_job += 1;
        self.plugins[slot].dispatch(self.next_job, input, purpose, now_ms);
        self.next_job
    }

    pub(super) fn drain(&mut self, now_ms: u64) {
        while let Ok(done) = self.done_rx.try_recv() {
            self.handle(done, now_ms);
        }
    }

    pub(super) fn flag_timeouts(&mut self, now_ms: u64, now: Instant) {
        for slot in 0..self.plugins.len() {
            let p = &mut self.plugins[slot];
            let Some(f) = p.check_timeout(now_ms, now) else {
                continue;
            };
            let heal = match &f.purpose {
                Purpose::Heal(job) => Some((job.clone(), f.started_ms)),
                _ => None,
            };
            let tag = match &f.purpose {
                Purpose::Notify(tag) => Some(tag.clone()),
                _ => None,
            };
            let collect = matches!(f.purpose, Purpose::Collect);
            let message = format!("timed out after {:?}", p.timeout);
            let name = p.name.clone();
            if collect {
                // A collection that timed out returned no series: stale, as after a failed one.
                self.alerts.collected(&name, Default::default(), now_ms);
            }
            if let Some(tag) = tag {
                self.incident_notified(slot, tag, Some(message.clone()));
            }
            if let Some((job, started_ms)) = heal {
                self.record_heal(&job, false, message, 0, started_ms);
            }
            self.plugin_event(
                "plugin_timeout",
                name,
                "call did not return in time",
                now_ms,
            );
        }
    }

    pub(super) fn handle(&mut self, done: Done, now_ms: u64) {
        // Found by its job rather than by the worker's slot: a reload moves instances to other
        // slots, and a removed instance's late result finds no one waiting for it.
        let Some(slot) = (self.plugins.iter())
            .position(|p| p.in_flight.as_ref().is_some_and(|f| f.job == done.job))
        else {
            return;
        };
        let Some(f) = self.plugins[slot].finish(&done) else {
            return;
        };
        let failures = self.plugins[slot].stats.consecutive_failures;
        self.complete_call(slot, f, done, now_ms);
        let p = &self.plugins[slot];
        if p.stats.consecutive_failures > failures {
            let message = p.stats.last_error.clone().unwrap_or_default();
            self.plugin_event("plugin_failed", p.name.clone(), &message, now_ms);
        }
    }

    /// A plugin's failure or time-out, as an event labelled with the plugin instance.
    fn plugin_event(&mut self, kind: &str, plugin: String, message: &str, now_ms: u64) {
        self.record_event(EventRecord {
            source: "host".to_owned(),
            kind: kind.to_owned(),
            message: format!("{plugin}: {message}"),
            labels: Labels::from([("plugin".to_owned(), plugin)]),
            timestamp_ms: now_ms,
        });
    }

    fn complete_call(&mut self, slot: usize, f: InFlight, done: Done, now_ms: u64) {
        match f.purpose {
            Purpose::Collect => {
                // Read sample by sample (see `ingest`): only a payload that is not a collection at
                // all fails the call.
                // The collection borrows from the bytes: no sample is copied before it is read.
                let bytes = done.result;
                let parsed = bytes.as_ref().map_err(Clone::clone).and_then(|bytes| {
                    RawCollection::read(bytes).map_err(|e| {
                        CallFailure::Invalid(format!(
                            "collector output is not a valid collection: {e}"
                        ))
                    })
                });
                match parsed {
                    Ok(c) => {
                        let p = &mut self.plugins[slot];
                        p.succeeded(now_ms);
                        p.stats.last_samples = Some(c.len());
                        self.ingest(slot, c, now_ms);
                    }
                    Err(e) => {
                        // A failed collection returned no series: all of them are stale, as
                        // after a failed scrape.
                        let source = &self.plugins[slot].name;
                        self.alerts.collected(source, Default::default(), now_ms);
                        self.plugins[slot].failed(now_ms, &e);
                    }
                }
            }
            Purpose::Notify(tag) => match done.result {
                Ok(_) => {
                    self.plugins[slot].succeeded(now_ms);
                    self.incident_notified(slot, tag, None);
                }
                Err(e) => {
                    self.incident_notified(slot, tag, Some(e.to_string()));
                    tracing::warn!(
                        notifier = %self.plugins[slot].name,
                        error = %e,
                        "notification not delivered"
                    );
                    self.plugins[slot].failed(now_ms, &e);
                }
            },
            Purpose::Heal(job) => {
                let parsed = done.result.and_then(|bytes| {
                    serde_json::from_slice::<HealOutcome>(&bytes).map_err(|e| {
                        CallFailure::Invalid(format!("strategy output is not a valid outcome: {e}"))
                    })
                });
                match parsed {
                    Ok(o) => {
                        self.plugins[slot].succeeded(now_ms);
                        self.record_heal(&job, o.success, o.message, o.duration_ms, f.started_ms);
                    }
                    Err(e) => {
                        self.plugins[slot].failed(now_ms, &e);
                        let ms = done.elapsed.as_millis() as u64;
                        self.record_heal(&job, false, e.to_string(), ms, f.started_ms);
                    }
                }
            }
        }
    }

    pub(super) fn record_heal(
        &mut self,
        job: &HealJob,
        success: bool,
        message: String,
        duration_ms: u64,
        started_ms: u64,
    ) {
        self.incident_heal(job, success, &message, duration_ms);
        let slot = self.healing.list[job.strategy].slot;
        let mut record = HealRecord {
            strategy: self.plugins[slot].name.clone(),
            alert: job.failure.alert.clone(),
            labels: job.failure.labels.clone(),
            attempt: job.failure.attempt,
            success,
            message,
            duration_ms,
            started_ms,
            detected_ms: job.detected_ms,
            verified: None,
            recovered_ms: None,
            reason: None,
        };
        self.healing.finished(job, &mut record);
        let (strategy, alert, attempt) = (&record.strategy, &record.alert, record.attempt);
        let message = &record.message;
        if success {
            tracing::info!(%strategy, %alert, attempt, %message, "healing attempt succeeded");
        } else {
            tracing::warn!(%strategy, %alert, attempt, %message, "healing attempt failed");
        }
        if let Some(p) = &mut self.persistence {
            p.batch().heals.push(record.clone());
        }
        self.analytics.add(&record);
        self.feed.push(crate::learn::events::heal(&record));
        self.history.record_heal(record);
    }

    /// Records the verification of attempts stored before it was known: in the store, the
    /// in-memory history and the analytics.
    pub(super) fn record_verifications(&mut self, settled: Vec<HealRecord>) {
        for r in settled {
            let (strategy, alert, attempt) = (&r.strategy, &r.alert, r.attempt);
            match (r.verified, &r.reason) {
                (Some(true), _) => {
                    tracing::info!(%strategy, %alert, attempt, "healing attempt verified: the alert resolved");
                }
                (_, reason) => {
                    let reason = reason.as_deref().unwrap_or("");
                    tracing::warn!(%strategy, %alert, attempt, %reason, "healing attempt not verified");
                }
            }
            if let Some(p) = &mut self.persistence {
                p.batch().verified.push(Verified::of(&r));
            }
            self.history.settle(&r);
            self.analytics.add(&r);
        }
    }

    pub(super) fn event(&mut self, source: &str, kind: &str, message: String, now_ms: u64) {
        self.record_event(EventRecord {
            source: source.to_owned(),
            kind: kind.to_owned(),
            message,
            labels: Labels::new(),
            timestamp_ms: now_ms,
        });
    }

    pub(super) fn record_event(&mut self, event: EventRecord) {
        if let Some(p) = &mut self.persistence {
            p.batch().events.push(event.clone());
        }
        self.feed.push(crate::learn::events::record(&event));
        self.history.record_event(event);
    }
}
