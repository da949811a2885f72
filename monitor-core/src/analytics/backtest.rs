//! Backtesting the forecasts and the anomaly detector on synthetic series
//! whose trend, seasonality, noise and anomalies are known.
//!
//! [`SyntheticSpec::generate`] is deterministic for a given seed (its own
//! SplitMix64 generator and Box-Muller normals, no dependency), so figures
//! are reproducible. [`forecast_backtest`] scores the forecasts by MAPE over
//! several forecast origins; [`anomaly_backtest`] scores a detector's
//! precision and recall against the planted anomalies.

use serde::{Deserialize, Serialize};

use super::predict::{AnomalyDetector, Holt, HoltWinters, LinearFit};

/// The recipe of a synthetic series:
/// `y(i) = level + slope * i + amplitude * sin(2 pi i / period) + noise`,
/// with normal noise of standard deviation `noise_std`, and at a share
/// `anomaly_rate` of the points a spike of `anomaly_size` noise deviations
/// (either sign) added.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SyntheticSpec {
    /// Number of points.
    pub len: usize,
    /// Value at the start.
    pub level: f64,
    /// Change per point.
    pub slope: f64,
    /// Amplitude of the seasonal wave (0 for none).
    pub amplitude: f64,
    /// Period of the seasonal wave, in points.
    pub period: f64,
    /// Standard deviation of the noise.
    pub noise_std: f64,
    /// Share of points given a spike, in [0, 1].
    pub anomaly_rate: f64,
    /// Size of a spike, in noise standard deviations.
    pub anomaly_size: f64,
    /// Seed of the generator.
    pub seed: u64,
}

impl Default for SyntheticSpec {
    /// 10,000 points from 100 rising 0.01 per point, a wave of amplitude 10
    /// and period 288 (a day of 5-minute samples), noise 2, 0.5% spikes of 6
    /// deviations, seed 1.
    fn default() -> Self {
        SyntheticSpec {
            len: 10_000,
            level: 100.0,
            slope: 0.01,
            amplitude: 10.0,
            period: 288.0,
            noise_std: 2.0,
            anomaly_rate: 0.005,
            anomaly_size: 6.0,
            seed: 1,
        }
    }
}

/// A generated series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyntheticSeries {
    /// The observed values.
    pub values: Vec<f64>,
    /// The values without noise or spikes.
    pub signal: Vec<f64>,
    /// Indices of the spikes, ascending.
    pub anomalies: Vec<usize>,
}

/// SplitMix64 (Steele, Lea and Flood): tiny and well distributed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

impl SyntheticSpec {
    /// Generates the series.
    pub fn generate(&self) -> SyntheticSeries {
        let mut rng = SplitMix64(self.seed);
        let mut values = Vec::with_capacity(self.len);
        let mut signal = Vec::with_capacity(self.len);
        let mut anomalies = Vec::new();
        for i in 0..self.len {
            let x = i as f64;
            let mut s = self.level + self.slope * x;
            if self.amplitude != 0.0 && self.period > 0.0 {
                s += self.amplitude * (std::f64::consts::TAU * x / self.period).sin();
            }
            let mut y = s + self.noise_std * rng.normal();
            if rng.unit() <= self.anomaly_rate {
                let sign = if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
                y += sign * self.anomaly_size * self.noise_std;
                anomalies.push(i);
            }
            signal.push(s);
            values.push(y);
        }
        SyntheticSeries {
            values,
            signal,
            anomalies,
        }
    }
}

/// Mean absolute percentage error of `forecast` against `actual`, in
/// percent, over the pairs whose actual value is not 0. `NaN` when there are
/// none.
pub fn mape(actual: &[f64], forecast: &[f64]) -> f64 {
    let (sum, n) = actual
        .iter()
        .zip(forecast)
        .filter(|(a, _)| **a != 0.0)
        .fold((0.0, 0usize), |(s, n), (a, f)| {
            (s + ((a - f) / a).abs(), n + 1)
        });
    if n == 0 {
        f64::NAN
    } else {
        100.0 * sum / n as f64
    }
}

/// Counts of a detector's hits and misses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Confusion {
    /// Planted anomalies detected.
    pub true_positives: u64,
    /// Detections where nothing was planted.
    pub false_positives: u64,
    /// Planted anomalies missed.
    pub false_negatives: u64,
}

impl Confusion {
    /// Compares detected indices with planted ones (both ascending): a
    /// detection counts only at the exact index. Linear (a merge).
    pub fn score(planted: &[usize], detected: &[usize]) -> Confusion {
        let (mut i, mut j) = (0, 0);
        let mut c = Confusion::default();
        while i < planted.len() && j < detected.len() {
            match planted[i].cmp(&detected[j]) {
                std::cmp::Ordering::Equal => {
                    c.true_positives += 1;
                    i += 1;
                    j += 1;
                }
                std::cmp::Ordering::Less => {
                    c.false_negatives += 1;
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    c.false_positives += 1;
                    j += 1;
                }
            }
        }
        c.false_negatives += (planted.len() - i) as u64;
        c.false_positives += (detected.len() - j) as u64;
        c
    }

    /// `tp / (tp + fp)`; 1 when nothing was detected.
    pub fn precision(&self) -> f64 {
        let d = self.true_positives + self.false_positives;
        if d == 0 {
            1.0
        } else {
            self.true_positives as f64 / d as f64
        }
    }

    /// `tp / (tp + fn)`; 1 when nothing was planted.
    pub fn recall(&self) -> f64 {
        let p = self.true_positives + self.false_negatives;
        if p == 0 {
            1.0
        } else {
            self.true_positives as f64 / p as f64
        }
    }
}

/// The forecast errors of one backtest, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForecastScores {
    /// MAPE of the least-squares line fitted to the training window.
    pub linear_mape: f64,
    /// MAPE of Holt smoothing with automatically chosen parameters.
    pub holt_mape: f64,
    /// MAPE of the naive forecast (the last training value), for scale.
    pub naive_mape: f64,
    /// How often the actual value fell inside the linear 95% interval, in [0, 1].
    pub linear_coverage: f64,
    /// How often the actual value fell inside Holt's 95% interval, in [0, 1].
    pub holt_coverage: f64,
    /// MAPE of Holt-Winters with automatically chosen parameters, when a
    /// period was given.
    pub holt_winters_mape: Option<f64>,
    /// How often the actual value fell inside Holt-Winters' 95% interval,
    /// when a period was given.
    pub holt_winters_coverage: Option<f64>,
}

/// Scores the forecasts on `series` at `folds` origins: at each, the
/// `train` points before it are fitted and the next `horizon` points
/// forecast; the origins are spaced `horizon` apart at the end of the series.
/// MAPE is over every forecast point of every fold.
///
/// # Panics
///
/// When the series is shorter than `train + folds * horizon` or `train < 3`.
pub fn forecast_backtest(
    values: &[f64],
    train: usize,
    horizon: usize,
    folds: usize,
    period: Option<usize>,
) -> ForecastScores {
    assert!(
        train >= 3 && values.len() >= train + folds * horizon,
        "series too short for the backtest"
    );
    let (mut actual, mut linear, mut holt, mut naive) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut linear_in, mut holt_in, mut hw_in) = (0usize, 0usize, 0usize);
    let mut seasonal = Vec::new();
    for k in 0..folds {
        let origin = values.len() - (folds - k) * horizon;
        let window = &values[origin - train..origin];
        let fit = LinearFit::fit_series(window).expect("at least three points");
        let model = Holt::fit_auto(window).expect("at least three points");
        let hw = period.and_then(|m| HoltWinters::fit_auto(window, m));
        for h in 1..=horizon {
            let y = values[origin + h - 1];
            let lf = fit.forecast((train + h - 1) as f64, 0.95);
            let hf = model.forecast(h, 0.95);
            linear_in += usize::from(lf.lower <= y && y <= lf.upper);
            holt_in += usize::from(hf.lower <= y && y <= hf.upper);
            actual.push(y);
            linear.push(lf.value);
            holt.push(hf.value);
            naive.push(window[train - 1]);
            if let Some(hw) = &hw {
                let f = hw.forecast(h, 0.95);
                hw_in += usize::from(f.lower <= y && y <= f.upper);
                seasonal.push(f.value);
            }
        }
    }
    let total = actual.len() as f64;
    ForecastScores {
        linear_mape: mape(&actual, &linear),
        holt_mape: mape(&actual, &holt),
        naive_mape: mape(&actual, &naive),
        linear_coverage: linear_in as f64 / total,
        holt_coverage: holt_in as f64 / total,
        holt_winters_mape: (seasonal.len() == actual.len()).then(|| mape(&actual, &seasonal)),
        holt_winters_coverage: (seasonal.len() == actual.len()).then(|| hw_in as f64 / total),
    }
}

/// Runs `detector` over `series` and scores it against the planted spikes.
pub fn anomaly_backtest(series: &SyntheticSeries, detector: &AnomalyDetector) -> Confusion {
    let detected: Vec<usize> = detector
        .detect(&series.values)
        .iter()
        .map(|a| a.index)
        .collect();
    Confusion::score(&series.anomalies, &detected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_plants_spikes() {
        let spec = SyntheticSpec::default();
        let (a, b) = (spec.generate(), spec.generate());
        assert_eq!(a, b);
        assert_eq!(a.values.len(), spec.len);
        let rate = a.anomalies.len() as f64 / spec.len as f64;
        assert!((rate - spec.anomaly_rate).abs() < 0.003, "{rate}");
        let other = SyntheticSpec { seed: 2, ..spec }.generate();
        assert_ne!(a.values, other.values);
    }

    #[test]
    fn confusion_merges() {
        let c = Confusion::score(&[1, 5, 9], &[1, 4, 9, 12]);
        assert_eq!(
            (c.true_positives, c.false_positives, c.false_negatives),
            (2, 2, 1)
        );
        assert_eq!(c.precision(), 0.5);
        assert!((c.recall() - 2.0 / 3.0).abs() < 1e-12);
        assert!((mape(&[100.0, 200.0], &[110.0, 180.0]) - 10.0).abs() < 1e-12);
    }
}
