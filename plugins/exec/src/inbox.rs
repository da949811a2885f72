//! What the collector's program wrote, parsed into samples as it arrives.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use monitor_plugin::Sample;
use monitor_plugin_common::prometheus::quantile_suffix;
use prometheus_parse::{Scrape, Value};

use crate::settings::Format;

/// Most samples kept between two collections; more are dropped (and reported).
pub(crate) const MAX_PENDING: usize = 100_000;

/// Most parse errors kept between two collections.
const MAX_ERRORS: usize = 10;

#[derive(Default)]
pub(crate) struct Pending {
    /// Lines of the Prometheus block being written.
    block: Vec<String>,
    pub samples: Vec<Sample>,
    /// Blocks completed so far.
    pub blocks: u64,
    pub errors: Vec<String>,
    pub dropped: u64,
}

pub(crate) struct Inbox {
    format: Format,
    pending: Mutex<Pending>,
    arrived: Condvar,
}

impl Inbox {
    pub fn new(format: Format) -> Self {
        Self {
            format,
            pending: Mutex::new(Pending::default()),
            arrived: Condvar::new(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One line of the program's stdout.
    pub fn line(&self, line: &str) {
        let mut p = self.lock();
        let end = match self.format {
            Format::Prometheus => {
                if line.trim().is_empty() || line.trim() == "# EOF" {
                    let block = std::mem::take(&mut p.block);
                    match prometheus_block(&block) {
                        Ok(samples) => p.add(samples),
                        Err(e) => p.error(e),
                    }
                    true
                } else {
                    p.block.push(line.to_owned());
                    false
                }
            }
            Format::Json if line.trim().is_empty() => true,
            Format::Json => {
                match serde_json::from_str::<Sample>(line) {
                    Ok(s) => p.add(vec![s]),
                    Err(e) => p.error(format!("not a JSON sample ({e}): {}", clip(line))),
                }
                false
            }
        };
        if end {
            p.blocks += 1;
        }
        drop(p);
        self.arrived.notify_all();
    }

    /// Waits until more than `blocks` blocks were completed, up to `timeout`.
    pub fn wait_past(&self, blocks: u64, timeout: Duration) -> Option<MutexGuard<'_, Pending>> {
        let end = Instant::now() + timeout;
        let mut p = self.lock();
        while p.blocks <= blocks {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            p = self
                .arrived
                .wait_timeout(p, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        Some(p)
    }
}

impl Pending {
    fn add(&mut self, samples: Vec<Sample>) {
        let room = MAX_PENDING.saturating_sub(self.samples.len());
        let n = samples.len();
        self.samples.extend(samples.into_iter().take(room));
        self.dropped += (n.saturating_sub(room)) as u64;
    }

    fn error(&mut self, e: String) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(e);
        }
    }
}

/// The last sample of each series among those without a timestamp (several blocks may arrive
/// between two collections, and the host stamps them all with one time); samples that carry
/// their own `timestamp_ms` are all kept. Order of first appearance is kept.
pub(crate) fn latest_per_series(samples: Vec<Sample>) -> Vec<Sample> {
    let mut index: HashMap<(String, monitor_plugin::Labels), usize> = HashMap::new();
    let mut out: Vec<Sample> = Vec::with_capacity(samples.len());
    for s in samples {
        if s.timestamp_ms.is_some() {
            out.push(s);
            continue;
        }
        match index.entry((s.name.clone(), s.labels.clone())) {
            Entry::Occupied(at) => out[*at.get()] = s,
            Entry::Vacant(slot) => {
                slot.insert(out.len());
                out.push(s);
            }
        }
    }
    out
}

fn clip(line: &str) -> &str {
    let mut end = line.len().min(200);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

/// One block of Prometheus text as samples, named as the `prometheus` collector names them:
/// untyped `_sum` and `_count` are counters, a summary gives one gauge per quantile
/// (`<name>_p99`), histogram buckets are skipped.
pub(crate) fn prometheus_block(lines: &[String]) -> Result<Vec<Sample>, String> {
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    let scrape = Scrape::parse(lines.iter().map(|l| Ok(l.clone())))
        .map_err(|e| format!("not Prometheus text: {e}"))?;
    let mut out = Vec::new();
    for s in scrape.samples {
        let labels: BTreeMap<String, String> = s
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let with = |mut x: Sample| {
            x.labels.clone_from(&labels);
            x
        };
        match s.value {
            Value::Untyped(v) if s.metric.ends_with("_sum") || s.metric.ends_with("_count") => {
                out.push(with(Sample::counter(&s.metric, v)));
            }
            Value::Counter(v) => out.push(with(Sample::counter(&s.metric, v))),
            Value::Gauge(v) | Value::Untyped(v) => out.push(with(Sample::gauge(&s.metric, v))),
            Value::Summary(qs) => {
                for q in qs {
                    let name = format!("{}_{}", s.metric, quantile_suffix(q.quantile));
                    out.push(with(Sample::gauge(name, q.count)));
                }
            }
            Value::Histogram(_) => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_blocks_end_at_an_empty_line_or_eof() {
        let inbox = Inbox::new(Format::Prometheus);
        for l in ["# TYPE jobs counter", "jobs{queue=\"a\"} 3", "temp 21.5"] {
            inbox.line(l);
        }
        assert_eq!(inbox.lock().blocks, 0);
        assert!(
            inbox.lock().samples.is_empty(),
            "a block is not taken before its end"
        );
        inbox.line("");
        inbox.line("temp 22");
        inbox.line("# EOF");
        let p = inbox.lock();
        assert_eq!(p.blocks, 2);
        let got: Vec<(String, f64)> = p
            .samples
            .iter()
            .map(|s| (s.name.clone(), s.value))
            .collect();
        assert_eq!(
            got,
            [
                ("jobs".into(), 3.0),
                ("temp".into(), 21.5),
                ("temp".into(), 22.0)
            ]
        );
        assert_eq!(p.samples[0].labels["queue"], "a");
        assert_eq!(p.samples[0].kind, monitor_plugin::SampleKind::Counter);
    }

    #[test]
    fn bad_lines_are_errors_and_good_ones_still_count() {
        let inbox = Inbox::new(Format::Json);
        inbox.line(r#"{"name": "a", "value": 1}"#);
        inbox.line("not json");
        inbox.line(r#"{"name": "b", "value": "NaN", "labels": {"x": "y"}}"#);
        let p = inbox.lock();
        assert_eq!(p.samples.len(), 2);
        assert!(p.samples[1].value.is_nan());
        assert_eq!(p.errors.len(), 1);
        assert!(p.errors[0].contains("not json"), "{:?}", p.errors);
    }

    #[test]
    fn only_the_last_value_of_a_series_is_kept_unless_timestamped() {
        let inbox = Inbox::new(Format::Json);
        for l in [
            r#"{"name": "a", "value": 1}"#,
            r#"{"name": "b", "value": 1}"#,
            r#"{"name": "a", "value": 2, "labels": {"x": "1"}}"#,
            r#"{"name": "a", "value": 3}"#,
            r#"{"name": "t", "value": 1, "timestamp_ms": 1000}"#,
            r#"{"name": "t", "value": 2, "timestamp_ms": 2000}"#,
        ] {
            inbox.line(l);
        }
        let samples = latest_per_series(std::mem::take(&mut inbox.lock().samples));
        let got: Vec<(&str, f64, usize)> = samples
            .iter()
            .map(|s| (s.name.as_str(), s.value, s.labels.len()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", 3.0, 0),
                ("b", 1.0, 0),
                ("a", 2.0, 1),
                ("t", 1.0, 0),
                ("t", 2.0, 0)
            ]
        );
    }

    #[test]
    fn a_flood_is_bounded() {
        let inbox = Inbox::new(Format::Json);
        for _ in 0..MAX_PENDING + 5 {
            inbox.line(r#"{"name": "a", "value": 1}"#);
        }
        let p = inbox.lock();
        assert_eq!((p.samples.len(), p.dropped), (MAX_PENDING, 5));
    }
}
