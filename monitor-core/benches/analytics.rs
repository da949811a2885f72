//! Analytics at a million inputs: pattern learning, healing analysis and
//! anomaly detection.
//!
//! `cargo bench -p monitor-core --bench analytics` first prints a summary
//! (median of 7 runs of each workload, its goal, and its ratio to a floor: one
//! pass over the same input doing nothing but reading it), then runs the
//! criterion benchmarks. Without `--bench` (as under `cargo test`), each
//! workload runs once on small inputs, as a smoke test.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use monitor_core::analytics::backtest::SyntheticSpec;
use monitor_core::analytics::healing::{HealingConfig, HealingLog, HealingRecord};
use monitor_core::analytics::predict::{AnomalyDetector, Expected, Holt, HoltWinters, LinearFit};
use monitor_core::analytics::{Event, PatternConfig, PatternKind, PatternLearner};

const START_MS: u64 = 1_704_067_200_000;
/// Points in a day of 5-minute samples.
const DAY_POINTS: usize = 288;
/// Ten days of 5-minute samples.
const AUTO_WINDOW: usize = 2_880;

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `n` events over a week from 20 agents, time-ordered: a heartbeat from
/// each agent every minute; workflows (task_start -> agent_assigned ->
/// tool_call -> task_complete); `overload` followed by `task_failed` within
/// seconds most of the time; a nightly `backup` between 02:00 and 03:00; and
/// 50 kinds of noise.
fn events(n: usize) -> Vec<Event> {
    const WEEK: u64 = 7 * 86_400_000;
    const FLOW: [&str; 4] = ["task_start", "agent_assigned", "tool_call", "task_complete"];
    let mut rng = SplitMix(1);
    let agents: Vec<String> = (0..20).map(|a| format!("agent-{a}")).collect();
    let noise: Vec<String> = (0..50).map(|k| format!("noise_{k}")).collect();
    let mut out: Vec<Event> = Vec::with_capacity(n + 8);
    // Heartbeats: a fifth of the stream at most.
    let beats = (n / 5 / 20).max(1) as u64;
    for (a, agent) in agents.iter().enumerate() {
        for i in 0..beats {
            let t = START_MS + i * (WEEK / beats) + a as u64 * 1_000 + rng.below(500);
            out.push(Event::new("heartbeat", t).with_agent(agent.as_str()));
        }
    }
    for day in 0..7 {
        let t = START_MS + day * 86_400_000 + 2 * 3_600_000 + rng.below(3_000_000);
        for k in 0..5 {
            out.push(Event::new("backup", t + k * 60_000));
        }
    }
    // The rest: about 2.2 events per step.
    let steps = ((n - out.len().min(n)) as f64 / 2.2) as u64;
    let spacing = (WEEK / steps.max(1)).max(1);
    for i in 0..steps {
        let t = START_MS + i * spacing + rng.below(spacing);
        let agent = agents[rng.below(20) as usize].as_str();
        match rng.below(10) {
            0..=3 => {
                for (j, kind) in FLOW.iter().enumerate() {
                    out.push(Event::new(*kind, t + 50 * j as u64).with_agent(agent));
                }
            }
            4 if rng.below(10) == 0 => {
                out.push(Event::new("overload", t).with_agent(agent));
                if rng.below(10) < 8 {
                    out.push(
                        Event::new("task_failed", t + 500 + rng.below(3_000)).with_agent(agent),
                    );
                }
            }
            _ => out.push(Event::new(noise[rng.below(50) as usize].as_str(), t).with_agent(agent)),
        }
    }
    out.sort_by_key(|e| e.timestamp_ms);
    out.truncate(n);
    out
}

/// `n` healing records over 30 days: 8 strategies, 20 failure types, 200 sources.
fn healing_records(n: usize) -> Vec<HealingRecord> {
    let mut rng = SplitMix(2);
    let spacing = 30 * 86_400_000 / n.max(1) as u64;
    (0..n)
        .map(|i| {
            let detected = START_MS + i as u64 * spacing;
            let started = detected + rng.below(30_000);
            let ended = started + 1_000 + rng.below(60_000);
            let strategy = rng.below(8);
            let success = rng.below(100) < 50 + 6 * strategy;
            HealingRecord {
                strategy: format!("strategy-{strategy}"),
                failure_type: format!("failure-{}", rng.below(20)),
                source: format!("service-{}", rng.below(200)),
                detected_at_ms: detected,
                action_started_ms: started,
                action_ended_ms: ended,
                success,
                recovered_at_ms: success.then(|| ended + rng.below(600_000)),
                attempt: 1 + u32::from(rng.below(10) == 0),
            }
        })
        .collect()
}

struct Data {
    events: Vec<Event>,
    learner: PatternLearner,
    healing: HealingLog,
    series: Vec<f64>,
    timestamps: Vec<u64>,
}

impl Data {
    fn new(n: usize) -> Self {
        let events = events(n);
        let mut learner = PatternLearner::new(PatternConfig {
            max_history_size: n,
            ..PatternConfig::default()
        });
        learner.record_all(&events);
        let mut healing = HealingLog::new(HealingConfig {
            max_records: n,
            ..HealingConfig::default()
        });
        healing.record_all(&healing_records(n));
        let series = SyntheticSpec {
            len: n,
            ..SyntheticSpec::default()
        }
        .generate()
        .values;
        let timestamps = events.iter().map(|e| e.timestamp_ms).collect();
        Data {
            events,
            learner,
            healing,
            series,
            timestamps,
        }
    }
}

/// Median wall time of `runs` runs of `f`.
fn median<R>(runs: usize, mut f: impl FnMut() -> R) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Each workload's median time, its goal and the floor it is compared with.
fn timed_rows(d: &Data, runs: usize) -> Vec<(&'static str, Duration, &'static str, Duration)> {
    let n = d.series.len();
    let floor_ts = median(runs, || {
        d.timestamps.iter().fold(0u64, |a, &t| a ^ black_box(t))
    });
    let floor_f64 = median(runs, || {
        d.series.iter().fold(0.0f64, |a, &x| a + black_box(x))
    });
    // The forecasts' parameter searches, on ten days of 5-minute points (the
    // training window of the backtest example).
    let window = &d.series[n.saturating_sub(AUTO_WINDOW)..];
    let floor_window = median(runs, || {
        window.iter().fold(0.0f64, |a, &x| a + black_box(x))
    });
    let floor_events = median(runs, || {
        d.events
            .iter()
            .fold(0usize, |a, e| a ^ black_box(e.kind.as_str().len()))
    });
    vec![
        (
            "patterns/record_events",
            median(runs.min(3), || {
                let mut l = PatternLearner::new(PatternConfig {
                    max_history_size: n,
                    ..PatternConfig::default()
                });
                l.record_all(&d.events);
                l.len()
            }),
            "",
            floor_events,
        ),
        (
            "patterns/learn_all_four",
            median(runs, || d.learner.learn_patterns().len()),
            "< 1000 ms",
            floor_ts,
        ),
        (
            "healing/full_report",
            median(runs, || {
                d.healing.report(START_MS, None).recommendations.len()
            }),
            "< 200 ms",
            floor_ts,
        ),
        (
            "anomalies/whole_series",
            median(runs, || AnomalyDetector::new(2.0).detect(&d.series).len()),
            "< 50 ms",
            floor_f64,
        ),
        (
            "anomalies/window_60_mean",
            median(runs, || {
                AnomalyDetector::new(2.0)
                    .with_window(60)
                    .detect(&d.series)
                    .len()
            }),
            "< 50 ms",
            floor_f64,
        ),
        (
            "anomalies/window_60_local_trend",
            median(runs, || {
                AnomalyDetector::new(2.0)
                    .with_window(60)
                    .with_expected(Expected::LocalTrend)
                    .detect(&d.series)
                    .len()
            }),
            "< 50 ms",
            floor_f64,
        ),
        (
            "predict/least_squares",
            median(runs, || LinearFit::fit_series(&d.series).map(|f| f.slope)),
            "",
            floor_f64,
        ),
        (
            "predict/holt",
            median(runs, || Holt::default().fit(&d.series).map(|m| m.level)),
            "",
            floor_f64,
        ),
        (
            "predict/holt_auto_2880",
            median(runs, || Holt::fit_auto(window).map(|m| m.level)),
            "",
            floor_window,
        ),
        (
            "predict/holt_winters_auto_2880",
            median(runs, || {
                HoltWinters::fit_auto(window, DAY_POINTS).map(|m| m.level)
            }),
            "",
            floor_window,
        ),
    ]
}

fn summary(d: &Data, runs: usize) {
    let n = d.series.len();
    let rows = timed_rows(d, runs);
    println!("analytics on {n} inputs, median of {runs} runs, one thread");
    println!(
        "{:<34} {:>11} {:>11} {:>10} {:>9}",
        "workload", "time", "goal", "floor", "x floor"
    );
    for (name, t, goal, floor) in rows {
        println!(
            "{name:<34} {:>8.2} ms {goal:>11} {:>7.2} ms {:>8.0}x",
            ms(t),
            ms(floor),
            t.as_secs_f64() / floor.as_secs_f64().max(1e-9)
        );
    }
    let patterns = d.learner.learn_patterns();
    if std::env::var_os("ANALYTICS_BENCH_DEBUG").is_some() {
        for p in &patterns {
            println!("{} {:.3} {}", p.id, p.confidence, p.description);
        }
    }
    let count = |k: PatternKind| patterns.iter().filter(|p| p.kind == k).count();
    println!(
        "found: {} patterns ({} sequence, {} frequency, {} correlation, {} temporal); \
         {} anomalies at z >= 2 in window 60",
        patterns.len(),
        count(PatternKind::Sequence),
        count(PatternKind::Frequency),
        count(PatternKind::Correlation),
        count(PatternKind::Temporal),
        AnomalyDetector::new(2.0)
            .with_window(60)
            .detect(&d.series)
            .len(),
    );
    println!();
}

fn criterion_benches(c: &mut Criterion, d: &Data) {
    let n = d.series.len();
    let mut g = c.benchmark_group("analytics");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.bench_function(format!("patterns/learn_all_four/{n}"), |b| {
        b.iter(|| d.learner.learn_patterns())
    });
    g.bench_function(format!("healing/full_report/{n}"), |b| {
        b.iter(|| d.healing.report(START_MS, None))
    });
    g.bench_function(format!("anomalies/window_60_mean/{n}"), |b| {
        b.iter(|| AnomalyDetector::new(2.0).with_window(60).detect(&d.series))
    });
    g.bench_function(format!("anomalies/floor_sum/{n}"), |b| {
        b.iter(|| d.series.iter().fold(0.0f64, |a, &x| a + black_box(x)))
    });
    g.finish();
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    if !bench {
        // Smoke test under `cargo test`: every workload once, small inputs.
        summary(&Data::new(10_000), 1);
        return;
    }
    let data = Data::new(1_000_000);
    summary(&data, 7);
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c, &data);
    c.final_summary();
}
