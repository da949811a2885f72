//! Rule evaluation per cycle: 1,000 alerting rules over 10,000 series held in memory (1 h of
//! points every 15 s), in 10 groups of 100, a mix of
//!
//! - `sum by (job) (rate(reqN_total[5m])) > 10`,
//! - `avg_over_time(gN[1h]) > 50`,
//! - `gN > 90` (an instant selector),
//! - `rate(reqN_total[1h]) > 1`,
//!
//! each reading one metric of 100 series (50 counters and 50 gauges): 100 distinct expressions,
//! each in 10 rules (identical expressions and subexpressions are computed once per evaluation);
//!
//! - `rules/evaluate`: one `AlertEngine::evaluate` (every group due);
//! - `rules/read_floor`: only reading the points out of the store: decoding each series the
//!   rules select once, what any evaluation must do.
//!
//! The ratio evaluate / floor is printed at the end, and the time for the same rules with 1,000
//! distinct thresholds (`> 10.001`, `> 10.002`, ...: each comparison computed, the expressions
//! compared shared), and for the next evaluation of the same engine a second later
//! (`rules/evaluate_next`, what a running host does every cycle), with the part of it spent on
//! the view of the store's series (`rules/source`: built whole, or over the labels kept between
//! evaluations). `rules/firing`: the same rules with `for` and a rendered label, their thousands
//! of instances pending then firing, evaluated second after second, and what each evaluation
//! hands to the store (`AlertEngine::changes`).
//!
//! Then rules reading a day, further back than memory's hour: 10 rules
//! `avg_over_time(dN[1d]) > 50` over 1,000 series with a day of points every minute in the store
//! (the last hour also in memory):
//!
//! - `rules/long_first`: the first evaluation, which reads the day from the store;
//! - `rules/long_next`: the next one, a minute later, which reads only the minute that left
//!   memory (the rest is kept decoded between evaluations).
//!
//! Run: `cargo bench -p monitor-host --bench rules`

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use monitor_host::alert::{AlertEngine, CompiledRules};
use monitor_host::history::{DATABASE_FILE, Persistence};
use monitor_host::promql::{MemoryIndex, MemorySource};
use monitor_host::rules::{RuleSet, parse_rule_file};
use monitor_host::store::{SeriesKey, Store};
use monitor_plugin::{Labels, SampleKind};

const NOW_MS: u64 = 1_800_000_000_000;
const HOUR_MS: u64 = 3_600_000;
const STEP_MS: u64 = 15_000;
const METRICS: usize = 50;
const SERIES_PER_METRIC: usize = 100;
const RULES: usize = 1000;
const GROUPS: usize = 10;

fn key(name: String, i: usize) -> SeriesKey {
    SeriesKey {
        name,
        labels: Labels::from([
            ("instance".to_owned(), format!("i{i}")),
            ("job".to_owned(), format!("j{}", i % 10)),
        ]),
    }
}

/// 50 counters `reqN` and 50 gauges `gN`, 100 series each: 10,000 series, 240 points each.
fn store() -> Store {
    let mut store = Store::new(HOUR_MS);
    for m in 0..METRICS {
        for i in 0..SERIES_PER_METRIC {
            let (req, g) = (key(format!("req{m}"), i), key(format!("g{m}"), i));
            let mut t = NOW_MS - HOUR_MS + STEP_MS;
            let mut total = 0.0;
            while t <= NOW_MS {
                total += (i % 7) as f64 * 3.0;
                store.insert(req.clone(), SampleKind::Counter, "bench", t, total);
                let v = ((t / STEP_MS) as usize * 7 + i * 13) % 100;
                store.insert(g.clone(), SampleKind::Gauge, "bench", t, v as f64);
                t += STEP_MS;
            }
        }
    }
    store
}

/// The rule `k` of the mix, and the metric and window (ms) it reads; its threshold's fraction
/// `k / 1000` when `distinct`.
fn rule_of(k: usize, distinct: bool) -> (String, String, u64) {
    let m = k % METRICS;
    let f = if distinct {
        format!(".{:03}", k + 1)
    } else {
        String::new()
    };
    match k % 4 {
        0 => (
            format!("sum by (job) (rate(req{m}_total[5m])) > 10{f}"),
            format!("req{m}"),
            300_000,
        ),
        1 => (
            format!("avg_over_time(g{m}[1h]) > 50{f}"),
            format!("g{m}"),
            HOUR_MS,
        ),
        2 => (format!("g{m} > 90{f}"), format!("g{m}"), 300_000),
        _ => (
            format!("rate(req{m}_total[1h]) > 1{f}"),
            format!("req{m}"),
            HOUR_MS,
        ),
    }
}

fn rule(k: usize) -> (String, String, u64) {
    rule_of(k, false)
}

fn rule_file(distinct: bool) -> String {
    let mut out = String::from("groups:\n");
    for g in 0..GROUPS {
        out.push_str(&format!("  - name: g{g}\n    rules:\n"));
        for k in (g * RULES / GROUPS)..((g + 1) * RULES / GROUPS) {
            let (expr, _, _) = rule_of(k, distinct);
            out.push_str(&format!("      - alert: A{k}\n        expr: {expr}\n"));
        }
    }
    out
}

fn engine() -> AlertEngine {
    engine_of(false)
}

fn engine_of(distinct: bool) -> AlertEngine {
    let groups = parse_rule_file(&rule_file(distinct), "bench.yml").unwrap();
    let set = RuleSet {
        alerts: Vec::new(),
        groups,
    };
    let rules = CompiledRules::from_rule_set(&[], &set, Duration::from_secs(1));
    AlertEngine::new(rules, 60_000)
}

/// Decodes, once, the points of every series a rule reads within the longest window: the floor.
fn read_floor(store: &Store) -> usize {
    let mut metrics: Vec<(String, u64)> = (0..RULES).map(rule).map(|r| (r.1, r.2)).collect();
    metrics.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    metrics.dedup_by(|a, b| a.0 == b.0);
    let mut n = 0;
    for (metric, window) in metrics {
        let after = NOW_MS - window;
        for (_, s) in store.by_name(&metric) {
            n += s
                .points
                .iter()
                .filter(|(t, _)| *t > after && *t <= NOW_MS)
                .count();
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let store = store();
    assert_eq!(store.len(), 2 * METRICS * SERIES_PER_METRIC);
    let mut e = engine();
    // Every group is due at each evaluation: a new engine's first one is, so time fresh ones.
    assert!(!e.evaluate(&store, NOW_MS).is_empty(), "some rules fire");
    let mut g = c.benchmark_group("rules");
    g.sample_size(10);
    g.bench_function("evaluate", |b| {
        b.iter_batched(
            engine,
            |mut e| e.evaluate(&store, NOW_MS).len(),
            criterion::BatchSize::LargeInput,
        )
    });
    g.bench_function("read_floor", |b| b.iter(|| read_floor(&store)));
    g.finish();

    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..5 {
            f();
        }
        start.elapsed() / 5
    };
    let eval = time(&mut || {
        let mut e = engine();
        let _ = e.evaluate(&store, NOW_MS);
    });
    let build = time(&mut || drop(engine()));
    let floor = time(&mut || {
        let _ = read_floor(&store);
    });
    let eval = eval.saturating_sub(build);
    let distinct = time(&mut || {
        let mut e = engine_of(true);
        let _ = e.evaluate(&store, NOW_MS);
    });
    let distinct = distinct.saturating_sub(time(&mut || drop(engine_of(true))));
    // The same engine a second later, as a running host evaluates: its alert instances, and
    // what it keeps between evaluations, are there.
    let mut e = engine();
    let mut t = NOW_MS;
    let _ = e.evaluate(&store, t);
    let next = time(&mut || {
        t += 1_000;
        let _ = e.evaluate(&store, t);
    });
    println!(
        "rules/evaluate_next: the next evaluation of the same engine {next:?}; ratio {:.2}",
        next.as_secs_f64() / floor.as_secs_f64()
    );
    firing_rows(&store, floor);
    // The view of the store each evaluation reads through: built whole, or over the labels an
    // engine keeps while the series stay the same.
    let built = time(&mut || drop(MemorySource::new(&store, 60_000)));
    let mut index = MemoryIndex::default();
    index.refresh(&store);
    let kept = time(&mut || {
        index.refresh(&store);
        drop(MemorySource::with_index(&store, 60_000, &index));
    });
    println!(
        "rules/source: the view of {} series for one evaluation: built {built:?}, over the kept index {kept:?} (ratio {:.2}); {:.1}% and {:.1}% of the next evaluation",
        store.len(),
        kept.as_secs_f64() / built.as_secs_f64(),
        100.0 * built.as_secs_f64() / next.as_secs_f64(),
        100.0 * kept.as_secs_f64() / next.as_secs_f64(),
    );
    println!(
        "rules/evaluate: {RULES} rules over {} series: {eval:?} per evaluation; floor (reading the points) {floor:?}; ratio {:.2}; with {RULES} distinct thresholds {distinct:?} (ratio {:.2})",
        store.len(),
        eval.as_secs_f64() / floor.as_secs_f64(),
        distinct.as_secs_f64() / floor.as_secs_f64()
    );
}

/// The rules of the mix each with a `for` (pending at the first evaluation, firing from the
/// next) and a label rendered from the sample's: thousands of instances pending, then firing,
/// found again at every evaluation.
fn firing_engine() -> AlertEngine {
    let mut yaml = String::from("groups:\n");
    for g in 0..GROUPS {
        yaml.push_str(&format!("  - name: g{g}\n    rules:\n"));
        for k in (g * RULES / GROUPS)..((g + 1) * RULES / GROUPS) {
            let (expr, _, _) = rule(k);
            yaml.push_str(&format!(
                "      - alert: A{k}\n        expr: {expr}\n        for: 5s\n        labels:\n          \
                 where: '{{{{ $labels.job }}}}'\n"
            ));
        }
    }
    let set = RuleSet {
        alerts: Vec::new(),
        groups: parse_rule_file(&yaml, "firing.yml").unwrap(),
    };
    let rules = CompiledRules::from_rule_set(&[], &set, Duration::from_secs(1));
    AlertEngine::new(rules, 60_000)
}

/// `rules/firing`: one engine evaluated second after second, its instances pending, then firing,
/// then only found again; and what it hands to the store after each evaluation
/// (`AlertEngine::changes`): every instance at first, then those that changed.
fn firing_rows(store: &Store, floor: Duration) {
    let mut e = firing_engine();
    let mut t = NOW_MS;
    let first = Instant::now();
    let _ = e.evaluate(store, t);
    let first = first.elapsed();
    let written_first = e.changes().len();
    let instances = e.len();
    t += 10_000;
    let _ = e.evaluate(store, t);
    let written_fired = e.changes().len();
    let firing = (e.statuses())
        .filter(|s| s.state == monitor_host::alert::AlertState::Firing)
        .count();
    let (mut eval, mut changes, mut written) = (Duration::ZERO, Duration::ZERO, 0);
    for _ in 0..5 {
        t += 1_000;
        let start = Instant::now();
        let _ = e.evaluate(store, t);
        eval += start.elapsed();
        let start = Instant::now();
        written += e.changes().len();
        changes += start.elapsed();
    }
    let (eval, changes) = (eval / 5, changes / 5);
    println!(
        "rules/firing: {RULES} rules with `for` and a rendered label, {instances} instances ({firing} firing): first evaluation {first:?} ({written_first} written), the one that fires them ({written_fired} written), then {eval:?} per evaluation (ratio {:.2} to the floor) and {changes:?} to find what changed ({} written per evaluation)",
        eval.as_secs_f64() / floor.as_secs_f64(),
        written / 5
    );
}

const LONG_METRICS: usize = 10;
const MINUTE_MS: u64 = 60_000;

/// A store in `dir` holding a day of `dN{instance}` every minute for 10 metrics of 100 series,
/// and memory holding its last hour.
fn day_store(dir: &std::path::Path) -> Store {
    let day = Duration::from_secs(86_400);
    let start = NOW_MS - 24 * HOUR_MS;
    let (mut p, _) = Persistence::open(dir, 2 * day, 2 * day, Duration::from_secs(3600), start)
        .expect("a store in a fresh directory");
    let mut memory = Store::new(HOUR_MS);
    let mut t = start + MINUTE_MS;
    while t <= NOW_MS {
        for m in 0..LONG_METRICS {
            for i in 0..SERIES_PER_METRIC {
                let v = ((t / MINUTE_MS) as usize * 7 + i * 13) % 100;
                let k = key(format!("d{m}"), i);
                p.batch().point(&k, SampleKind::Gauge, "bench", t, v as f64);
                if t > NOW_MS - HOUR_MS {
                    memory.insert(k, SampleKind::Gauge, "bench", t, v as f64);
                }
            }
        }
        if t.is_multiple_of(15 * MINUTE_MS) {
            p.commit(t);
        }
        t += MINUTE_MS;
    }
    p.commit(NOW_MS);
    memory
}

fn long_engine(database: &std::path::Path) -> AlertEngine {
    let mut yaml = String::from("groups:\n  - name: long\n    rules:\n");
    for m in 0..LONG_METRICS {
        yaml.push_str(&format!(
            "      - alert: L{m}\n        expr: avg_over_time(d{m}[1d]) > 50\n"
        ));
    }
    let set = RuleSet {
        alerts: Vec::new(),
        groups: parse_rule_file(&yaml, "long.yml").unwrap(),
    };
    let rules = CompiledRules::from_rule_set(&[], &set, Duration::from_secs(1));
    let mut e = AlertEngine::new(rules, 60_000);
    e.attach_history(database, Duration::from_secs(3600));
    e
}

/// The next minute's points in memory, its oldest minute expired.
fn next_minute(memory: &mut Store, t: u64) {
    for m in 0..LONG_METRICS {
        for i in 0..SERIES_PER_METRIC {
            let v = ((t / MINUTE_MS) as usize * 7 + i * 13) % 100;
            memory.insert(
                key(format!("d{m}"), i),
                SampleKind::Gauge,
                "bench",
                t,
                v as f64,
            );
        }
    }
    memory.expire(t);
}

fn long_bench(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("monitor-rules-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let memory = day_store(&dir);
    let database = dir.join(DATABASE_FILE);
    let mut g = c.benchmark_group("rules");
    g.sample_size(10);
    g.bench_function("long_first", |b| {
        b.iter_batched(
            || long_engine(&database),
            |mut e| e.evaluate(&memory, NOW_MS).len(),
            criterion::BatchSize::LargeInput,
        )
    });

    let start = Instant::now();
    let _ = long_engine(&database).evaluate(&memory, NOW_MS);
    let first = start.elapsed();
    // One engine evaluated minute after minute (the minute's points added to memory included).
    let mut e = long_engine(&database);
    let mut later = memory;
    let mut t = NOW_MS;
    let _ = e.evaluate(&later, t);
    let read_first = e.history_points().unwrap().1;
    let start = Instant::now();
    for _ in 0..5 {
        t += MINUTE_MS;
        next_minute(&mut later, t);
        let _ = e.evaluate(&later, t);
    }
    let next = start.elapsed() / 5;
    let (cached, read) = e.history_points().unwrap();
    g.bench_function("long_next", |b| {
        b.iter(|| {
            t += MINUTE_MS;
            next_minute(&mut later, t);
            e.evaluate(&later, t).len()
        })
    });
    g.finish();
    println!(
        "rules/long: {LONG_METRICS} rules reading a day of {} series: first evaluation {first:?} ({read_first} points read from the store), next ones {next:?} ({} points read each; {cached} held decoded); ratio {:.1}",
        LONG_METRICS * SERIES_PER_METRIC,
        (read - read_first) / 5,
        first.as_secs_f64() / next.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench, long_bench);
criterion_main!(benches);
