//! The host's dashboard model: plugins, alerts, the busiest series, the latest healing.

use std::time::Duration;

use super::{Model, Pane};
use crate::cli::format::{age, labels, number, sparkline, utc};
use crate::cli::view::{HostSnapshot, Series};

/// The latest healing attempts shown.
const HEALING_SHOWN: usize = 50;

/// How much a series moved over its recent points: its range over its mean magnitude. Flat and
/// single-point series score 0.
fn activity(s: &Series) -> f64 {
    let values: Vec<f64> = s
        .points
        .iter()
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .collect();
    if values.len() < 2 {
        return 0.0;
    }
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let mean = values.iter().map(|v| v.abs()).sum::<f64>() / values.len() as f64;
    (hi - lo) / mean.max(f64::MIN_POSITIVE)
}

/// The panes for `snapshot` of the host at `url`, ages against `now_ms`.
pub fn model(snapshot: &HostSnapshot, url: &str, now_ms: u64, interval: Duration) -> Model {
    let s = snapshot;
    let count = |state: &str| s.alerts.iter().filter(|a| a.state == state).count();
    let last = s.last_cycle.as_ref().map_or_else(
        || "no cycle yet".to_owned(),
        |c| format!("last cycle {} ago", age(now_ms.saturating_sub(c.at_ms))),
    );
    let title = format!(
        "monitor-host {} at {url}: {} cycles, {last}; {} firing, {} pending; every {interval:?}",
        s.host,
        s.cycles,
        count("firing"),
        count("pending"),
    );
    Model {
        title,
        panes: vec![plugins(s), alerts(s, now_ms), series(s), healing(s)],
    }
}

fn plugins(s: &HostSnapshot) -> Pane {
    Pane {
        title: format!("plugins ({})", s.plugins.len()),
        header: vec![
            "KIND",
            "NAME",
            "PLUGIN",
            "CALLS",
            "ERRORS",
            "STATE",
            "LAST ERROR",
        ],
        rows: s
            .plugins
            .iter()
            .map(|p| {
                vec![
                    p.kind.clone(),
                    p.name.clone(),
                    p.plugin.clone(),
                    p.stats.calls.to_string(),
                    p.stats.errors.to_string(),
                    p.state().to_owned(),
                    p.stats.last_error.clone().unwrap_or_default(),
                ]
            })
            .collect(),
        series: Vec::new(),
        weight: 2,
    }
}

fn alerts(s: &HostSnapshot, now_ms: u64) -> Pane {
    let mut alerts: Vec<_> = s.alerts.iter().collect();
    alerts.sort_by(|a, b| a.order().cmp(&b.order()));
    Pane {
        title: format!("alerts ({})", alerts.len()),
        header: vec!["ALERT", "STATE", "SINCE", "VALUE", "LABELS"],
        rows: alerts
            .iter()
            .map(|a| {
                vec![
                    a.alert.clone(),
                    a.state.clone(),
                    a.since_ms()
                        .map_or_else(|| "-".into(), |t| age(now_ms.saturating_sub(t))),
                    number(a.value),
                    labels(&a.labels),
                ]
            })
            .collect(),
        series: Vec::new(),
        weight: 2,
    }
}

fn series(s: &HostSnapshot) -> Pane {
    let mut busiest: Vec<(f64, &Series)> = s.series.iter().map(|x| (activity(x), x)).collect();
    busiest.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| a.1.name.cmp(&b.1.name))
            .then_with(|| a.1.labels.cmp(&b.1.labels))
    });
    let values = |x: &Series| x.points.iter().map(|p| p.1).collect::<Vec<f64>>();
    Pane {
        title: format!("series, busiest first ({})", busiest.len()),
        header: vec!["SERIES", "VALUE", "RECENT"],
        rows: busiest
            .iter()
            .map(|(_, x)| {
                let mut l = x.labels.clone();
                l.remove("collector");
                let name = if l.is_empty() {
                    x.name.clone()
                } else {
                    format!("{}{}", x.name, labels(&l))
                };
                vec![name, number(x.value), sparkline(&values(x))]
            })
            .collect(),
        series: busiest.iter().map(|(_, x)| values(x)).collect(),
        weight: 4,
    }
}

fn healing(s: &HostSnapshot) -> Pane {
    let mut attempts: Vec<_> = s.healing.iter().collect();
    attempts.sort_by_key(|h| std::cmp::Reverse(h.started_ms));
    attempts.truncate(HEALING_SHOWN);
    Pane {
        title: format!("healing, latest first ({})", s.healing.len()),
        header: vec![
            "STARTED (UTC)",
            "STRATEGY",
            "ALERT",
            "ATTEMPT",
            "RESULT",
            "MESSAGE",
        ],
        rows: attempts
            .iter()
            .map(|h| {
                vec![
                    utc(h.started_ms),
                    h.strategy.clone(),
                    h.alert.clone(),
                    h.attempt.to_string(),
                    if h.success { "success" } else { "failure" }.to_owned(),
                    h.message.clone(),
                ]
            })
            .collect(),
        series: Vec::new(),
        weight: 2,
    }
}
