//! Frequency patterns: a kind recurring at a regular interval within one
//! agent's events ("heartbeat every 5.0 s (+/- 0.2 s)").
//!
//! # Confidence
//!
//! For the `m >= 2` intervals between consecutive events of one kind from
//! one agent, with mean `mean` and population standard deviation `sd`
//! (Welford's single-pass algorithm):
//!
//! `confidence = clamp(1 - sd_upper / mean, 0, 1)`
//!
//! with `sd_upper = sd * sqrt(m / chi2(0.01, m))` the 99% upper confidence
//! bound of the deviation (chi-square quantile by the Wilson-Hilferty
//! approximation): one minus an upper bound of the coefficient of variation.
//! A metronome scores 1; events at random (Poisson) times have exponential
//! intervals with `sd = mean` and score 0. The bound matters for short runs:
//! among a thousand (kind, agent) pairs of random events, a few with five or
//! six events have intervals that look regular by luck (a plain `1 - cv`
//! scores them above 0.8); with the bound, four intervals need `cv < 0.1` to
//! score 0.7, while 1,000 intervals lose only 5%. A single long gap (an agent
//! restarting) lowers the score, on purpose: the pattern was broken.
//! `occurrences` counts the events, and at least three are needed for two
//! intervals.
//!
//! # Cost
//!
//! One pass over the events grouped by agent, with per-kind state in arrays
//! indexed by kind id: linear, no hashing.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Pattern, PatternKind, Prepared, passes, round4};
use crate::analytics::stats::{fmt_ms_pm, sd_upper_99};

#[derive(Debug, Clone, Copy, Default)]
struct Run {
    count: u64,
    first_ts: u64,
    last_ts: u64,
    /// Welford's running mean and sum of squared deviations of the intervals.
    mean: f64,
    m2: f64,
}

pub(crate) fn learn(p: &Prepared<'_>) -> Vec<Pattern> {
    let mut runs = vec![Run::default(); p.kinds.len()];
    let mut touched: Vec<u32> = Vec::new();
    let mut out = Vec::new();
    for (agent, w) in p.agent_start.windows(2).enumerate() {
        for e in &p.by_agent[w[0]..w[1]] {
            let r = &mut runs[e.kind as usize];
            if r.count == 0 {
                touched.push(e.kind);
                r.first_ts = e.ts;
            } else {
                let interval = (e.ts - r.last_ts) as f64;
                let m = r.count as f64; // intervals so far, this one included
                let delta = interval - r.mean;
                r.mean += delta / m;
                r.m2 += delta * (interval - r.mean);
            }
            r.count += 1;
            r.last_ts = e.ts;
        }
        for &k in &touched {
            let r = std::mem::take(&mut runs[k as usize]);
            if r.count < 3 || r.mean <= 0.0 {
                continue;
            }
            let sd = (r.m2 / (r.count - 1) as f64).sqrt();
            let intervals = (r.count - 1) as f64;
            let confidence = (1.0 - sd_upper_99(sd, intervals) / r.mean).clamp(0.0, 1.0);
            if passes(p.config, r.count, confidence) {
                out.push(to_pattern(p, k, agent as u32, &r, sd, confidence));
            }
        }
        touched.clear();
    }
    out
}

fn to_pattern(
    p: &Prepared<'_>,
    kind: u32,
    agent: u32,
    r: &Run,
    sd: f64,
    confidence: f64,
) -> Pattern {
    let name = p.kind_name(kind).to_owned();
    let agent = p.agent_name(agent);
    let mut description = format!("{name} every {}", fmt_ms_pm(r.mean, sd));
    let mut id = format!("frequency:{name}");
    let mut metadata = BTreeMap::new();
    if let Some(agent) = agent {
        description.push_str(&format!(" from {agent}"));
        id.push('@');
        id.push_str(agent);
        metadata.insert("agent_id".into(), json!(agent));
    }
    metadata.insert("mean_interval_ms".into(), json!(round4(r.mean)));
    metadata.insert("std_interval_ms".into(), json!(round4(sd)));
    Pattern {
        id,
        kind: PatternKind::Frequency,
        description,
        events: vec![name],
        confidence,
        occurrences: r.count,
        first_seen_ms: r.first_ts,
        last_seen_ms: r.last_ts,
        metadata,
    }
}
