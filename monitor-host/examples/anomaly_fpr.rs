//! False-positive rate and recall of the anomaly conditions on real seasonal series.
//!
//! Replays each series of `benches/data/` (see its README) through the host's PromQL evaluator,
//! one sample every 10 s as the host collects, and evaluates at every sample:
//!
//! - `anomaly_score(x[w])`, the robust z-score (`condition = "anomaly"`), for several windows;
//! - `anomaly_score(x[w], season)`, against Holt-Winters with the series' season.
//!
//! On the clean series, every evaluation whose `|z|` exceeds a threshold is a false positive
//! (counted per 1,000 evaluations). Recall: one spike of 5 noise deviations (noise estimated from
//! the first differences, `1.4826 * MAD / sqrt(2)`) at each of 200 seeded positions, one at a
//! time, up or down; a spike is caught when the evaluation at its sample scores beyond the
//! threshold.
//!
//! Precision and recall: a second table plants spikes of the same size at once, one sample in
//! [`SPIKE_EVERY`] on average (seeded), and scores the whole spiked series: an evaluation beyond
//! the threshold at a spike is a true positive, anywhere else a false one (an echo of a spike in
//! the window included). Precision is `TP / (TP + FP)`, recall `TP / spikes`.
//!
//! `cargo run -p monitor-host --example anomaly_fpr` (about a minute in a debug build; the figures
//! are deterministic, `--release` only makes them come sooner).

use std::path::Path;

use monitor_host::learn::watch;
use monitor_host::promql::{self, Metric, NAME, Source, SourceSeries, Value};
use promql_parser::label::Matcher;

/// One sample every 10 s.
const STEP_MS: i64 = 10_000;
/// z thresholds compared.
const THRESHOLDS: [f64; 6] = [3.0, 3.5, 4.0, 4.5, 5.0, 6.0];
/// Spikes injected for the recall, and their size in noise deviations.
const SPIKES: usize = 200;
const SPIKE_SIGMAS: f64 = 5.0;
/// One spike per this many samples, on average, for precision and recall.
const SPIKE_EVERY: u64 = 50;

/// One series held in memory.
struct Memory {
    metric: Metric,
    points: Vec<(i64, f64)>,
}

impl Source for Memory {
    fn series(&self, matchers: &[Matcher]) -> Result<Vec<SourceSeries>, String> {
        Ok(promql::matches(matchers, &self.metric)
            .then(|| SourceSeries {
                id: 0,
                metric: self.metric.clone(),
            })
            .into_iter()
            .collect())
    }

    fn points(&self, _id: i64, after_ms: i64, to_ms: i64) -> Result<Vec<(i64, f64)>, String> {
        let from = self.points.partition_point(|p| p.0 <= after_ms);
        let to = self.points.partition_point(|p| p.0 <= to_ms);
        Ok(self.points[from..to.max(from)].to_vec())
    }
}

impl Memory {
    fn new(values: &[f64]) -> Self {
        Self {
            metric: Metric::from([(NAME.to_owned(), "x".to_owned())]),
            points: (0..)
                .map(|i| i * STEP_MS)
                .zip(values.iter().copied())
                .collect(),
        }
    }
}

/// A detector: its name, its query, and how many samples its window holds.
struct Detector {
    name: String,
    query: String,
    window: usize,
}

fn detectors(season: usize) -> Vec<Detector> {
    let seconds = |samples: usize| samples as i64 * STEP_MS / 1000;
    // Windows from a quarter of a season to four: the host's default hour is a small part of a
    // daily cycle, a week's window holds seven.
    let mut out: Vec<Detector> = [season / 4, season / 2, season, 4 * season]
        .into_iter()
        .filter(|&w| w >= 6)
        .map(|w| Detector {
            name: format!("robust z, window {w} samples"),
            query: format!("anomaly_score(x[{}s])", seconds(w)),
            window: w,
        })
        .collect();
    // Four seasons, as `season` in a TOML rule implies: `(t - 4 season, t]`.
    let w = 4 * season;
    out.push(Detector {
        name: format!("Holt-Winters, season {season}, window {w} samples"),
        query: format!("anomaly_score(x[{}s], {})", seconds(w), seconds(season)),
        window: w,
    });
    out
}

fn load(path: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1)?.trim().parse().ok())
        .collect()
}

/// The noise deviation: `1.4826 * MAD` of the first differences, over `sqrt(2)`.
fn noise(values: &[f64]) -> f64 {
    let diffs: Vec<f64> = values.windows(2).map(|w| w[1] - w[0]).collect();
    let b = monitor_core::analytics::predict::Baseline::from_values(&diffs).expect("values");
    1.4826 * b.mad / std::f64::consts::SQRT_2
}

/// The score at every sample from the first full window on.
fn scores(values: &[f64], d: &Detector) -> Vec<f64> {
    let first = (d.window - 1) as i64 * STEP_MS;
    let last = (values.len() - 1) as i64 * STEP_MS;
    let m = promql::range_query(&Memory::new(values), &d.query, first, last, STEP_MS)
        .unwrap_or_else(|e| panic!("{}: {e}", d.query));
    m.into_iter().flat_map(|(_, p)| p).map(|p| p.1).collect()
}

/// The score of the sample at `index`.
fn score_at(values: &[f64], d: &Detector, index: usize) -> Option<f64> {
    let t = index as i64 * STEP_MS;
    match promql::instant_query(&Memory::new(values), &d.query, t) {
        Ok(Value::Vector(v)) => v.first().map(|s| s.value),
        other => panic!("{}: {other:?}", d.query),
    }
}

/// xorshift64*: seeded positions without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The spiked scores: one spike at a time, at seeded positions after the first full window.
fn spiked_scores(values: &[f64], d: &Detector, sigma: f64, seed: u64) -> Vec<f64> {
    let mut rng = Rng(seed);
    let span = (values.len() - d.window) as u64;
    (0..SPIKES)
        .map(|_| {
            let at = d.window - 1 + (rng.next() % span) as usize;
            let sign = if rng.next().is_multiple_of(2) {
                1.0
            } else {
                -1.0
            };
            let mut spiked = values.to_vec();
            spiked[at] += sign * SPIKE_SIGMAS * sigma;
            score_at(&spiked, d, at).unwrap_or(0.0)
        })
        .collect()
}

/// The series with spikes planted at once, one sample in [`SPIKE_EVERY`] on average after the
/// first full window, and which samples hold one.
fn planted(values: &[f64], d: &Detector, sigma: f64, seed: u64) -> (Vec<f64>, Vec<bool>) {
    let mut rng = Rng(seed);
    let mut spiked = values.to_vec();
    let mut is_spike = vec![false; values.len()];
    for i in d.window - 1..values.len() {
        if rng.next().is_multiple_of(SPIKE_EVERY) {
            let sign = if rng.next().is_multiple_of(2) {
                1.0
            } else {
                -1.0
            };
            spiked[i] += sign * SPIKE_SIGMAS * sigma;
            is_spike[i] = true;
        }
    }
    (spiked, is_spike)
}

/// `(sample index, score)` at every sample from the first full window on.
fn indexed_scores(values: &[f64], d: &Detector) -> Vec<(usize, f64)> {
    let first = (d.window - 1) as i64 * STEP_MS;
    let last = (values.len() - 1) as i64 * STEP_MS;
    let m = promql::range_query(&Memory::new(values), &d.query, first, last, STEP_MS)
        .unwrap_or_else(|e| panic!("{}: {e}", d.query));
    m.into_iter()
        .flat_map(|(_, p)| p)
        .map(|(t, s)| ((t / STEP_MS) as usize, s))
        .collect()
}

/// Per threshold, "precision, recall" of `scored` (`(sample index, score)`) against the planted
/// spikes; precision is `-` when nothing was flagged.
fn precision_recall_cells(scored: &[(usize, f64)], is_spike: &[bool]) -> String {
    let spikes = is_spike.iter().filter(|s| **s).count();
    let cells: Vec<String> = THRESHOLDS
        .iter()
        .map(|&z| {
            let flagged = scored.iter().filter(|(_, s)| s.abs() > z);
            let (tp, fp) = flagged.fold((0, 0), |(tp, fp), &(i, _)| {
                if is_spike[i] {
                    (tp + 1, fp)
                } else {
                    (tp, fp + 1)
                }
            });
            let precision = if tp + fp == 0 {
                "-".to_owned()
            } else {
                format!("{:.2}", tp as f64 / (tp + fp) as f64)
            };
            format!("{precision}, {:.2}", tp as f64 / spikes.max(1) as f64)
        })
        .collect();
    format!("{spikes} | {}", cells.join(" | "))
}

/// The precision and recall table.
fn precision_recall(data: &Path) {
    println!();
    println!(
        "| series | detector | spikes | {} |",
        THRESHOLDS
            .map(|z| format!("z > {z}: precision, recall"))
            .join(" | ")
    );
    println!("|---|---|---:|{}", "---:|".repeat(THRESHOLDS.len()));
    for (file, season) in [("co2_weekly.csv", 52), ("elnino_monthly.csv", 12)] {
        let values = load(&data.join(file));
        let sigma = noise(&values);
        let seed = 0xbad_5eed + season as u64;
        for d in detectors(season) {
            let (spiked, is_spike) = planted(&values, &d, sigma, seed);
            let scored = indexed_scores(&spiked, &d);
            let cells = precision_recall_cells(&scored, &is_spike);
            println!("| {file} | {} | {cells} |", d.name);
        }
        // What `/api/anomalies` runs over a `[[watch]]`: the whole series at once, judged from
        // the same first sample as the rules' longest window.
        let longest = Detector {
            name: String::new(),
            query: String::new(),
            window: 4 * season,
        };
        let first = longest.window - 1;
        let (spiked, is_spike) = planted(&values, &longest, sigma, seed);
        let judged = |scores: Vec<(usize, f64, f64)>| -> Vec<(usize, f64)> {
            (scores.into_iter())
                .filter(|&(i, _, _)| i >= first)
                .map(|(i, _, s)| (i, s))
                .collect()
        };
        let robust = judged(watch::robust_scores(&spiked));
        let name = format!(
            "[[watch]] robust z, window {} samples",
            watch::ROBUST_WINDOW
        );
        let cells = precision_recall_cells(&robust, &is_spike);
        println!("| {file} | {name} | {cells} |");
        let seasonal = judged(watch::seasonal_scores(&spiked, season));
        let name = format!("[[watch]] seasonal residual, season {season}, whole series");
        let cells = precision_recall_cells(&seasonal, &is_spike);
        println!("| {file} | {name} | {cells} |");
    }
}

fn main() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/data");
    println!(
        "| series | detector | evaluations | {} |",
        THRESHOLDS
            .map(|z| format!("z > {z}: FP/1000, recall"))
            .join(" | ")
    );
    println!("|---|---|---:|{}", "---:|".repeat(THRESHOLDS.len()));
    for (file, season) in [("co2_weekly.csv", 52), ("elnino_monthly.csv", 12)] {
        let values = load(&data.join(file));
        let sigma = noise(&values);
        for d in detectors(season) {
            let clean = scores(&values, &d);
            let spiked = spiked_scores(&values, &d, sigma, 0x5eed_0000 + season as u64);
            let cells: Vec<String> = THRESHOLDS
                .iter()
                .map(|&z| {
                    let fp = clean.iter().filter(|s| s.abs() > z).count();
                    let caught = spiked.iter().filter(|s| s.abs() > z).count();
                    format!(
                        "{:.2}, {:.2}",
                        fp as f64 * 1000.0 / clean.len() as f64,
                        caught as f64 / spiked.len() as f64
                    )
                })
                .collect();
            println!(
                "| {file} | {} | {} | {} |",
                d.name,
                clean.len(),
                cells.join(" | ")
            );
        }
    }
    precision_recall(&data);
}
