//! Forecasts, anomalies, baselines and recommendations on series with known
//! structure.

mod common;

use common::Rng;
use monitor_core::Trend;
use monitor_core::analytics::backtest::{
    Confusion, SyntheticSpec, anomaly_backtest, forecast_backtest,
};
use monitor_core::analytics::predict::{
    AnomalyDetector, Baseline, Expected, Holt, HoltWinters, LinearFit, SeriesRules, Severity,
    analyze_series,
};

fn trend_only(seed: u64) -> SyntheticSpec {
    SyntheticSpec {
        len: 2_000,
        amplitude: 0.0,
        anomaly_rate: 0.0,
        seed,
        ..SyntheticSpec::default()
    }
}

#[test]
fn least_squares_recovers_the_trend_and_its_interval_covers() {
    let s = trend_only(3).generate();
    let (train, test) = s.values.split_at(1_500);
    let fit = LinearFit::fit_series(train).unwrap();
    assert!((fit.slope - 0.01).abs() < 0.001, "{fit:?}");
    assert!((fit.residual_std - 2.0).abs() < 0.15);
    let inside = test
        .iter()
        .enumerate()
        .filter(|(h, y)| {
            let f = fit.forecast((1_500 + h) as f64, 0.95);
            f.lower <= **y && **y <= f.upper
        })
        .count();
    let coverage = inside as f64 / test.len() as f64;
    assert!((0.92..=0.98).contains(&coverage), "{coverage}");
}

#[test]
fn holt_tracks_a_noisy_trend() {
    let s = trend_only(4).generate();
    let m = Holt::fit_auto(&s.values[..1_900]).unwrap();
    let f = m.forecast(100, 0.95);
    let truth = s.signal[1_999];
    assert!((f.value - truth).abs() < 5.0, "{f:?} vs {truth}");
    assert!(f.lower < truth && truth < f.upper);
}

#[test]
fn forecast_error_is_small_on_trend_and_bounded_with_season() {
    let s = trend_only(5).generate();
    let scores = forecast_backtest(&s.values, 1_000, 50, 10, None);
    assert!(scores.linear_mape < 2.5, "{scores:?}");
    assert!(scores.linear_coverage > 0.9, "{scores:?}");
    let seasonal = SyntheticSpec {
        anomaly_rate: 0.0,
        ..SyntheticSpec::default()
    }
    .generate();
    let scores = forecast_backtest(&seasonal.values, 2_880, 288, 10, Some(288));
    // A line cannot follow the wave; its error stays near the wave's size.
    assert!(scores.linear_mape < 10.0, "{scores:?}");
    // Holt-Winters follows it: its error is the noise's.
    let hw = scores.holt_winters_mape.unwrap();
    assert!(hw < scores.linear_mape / 2.0 && hw < 2.0, "{scores:?}");
    assert!(scores.holt_winters_coverage.unwrap() > 0.85, "{scores:?}");
}

#[test]
fn planted_spikes_are_detected_and_noise_is_quiet() {
    let spec = SyntheticSpec {
        len: 20_000,
        anomaly_size: 8.0,
        ..SyntheticSpec::default()
    };
    let series = spec.generate();
    // A window's mean lags behind the seasonal wave; its line does not.
    let detector = AnomalyDetector::new(4.0)
        .with_window(60)
        .with_expected(Expected::LocalTrend);
    let c = anomaly_backtest(&series, &detector);
    assert!(c.recall() > 0.9 && c.precision() > 0.9, "{c:?}");
    let lagging = anomaly_backtest(&series, &AnomalyDetector::new(4.0).with_window(60));
    assert!(lagging.recall() < c.recall(), "{lagging:?} vs {c:?}");

    let quiet = SyntheticSpec {
        anomaly_rate: 0.0,
        ..spec
    }
    .generate();
    let found = detector.detect(&quiet.values);
    assert!(found.len() < 10, "{}", found.len());
    assert_eq!(Confusion::score(&[], &[]).precision(), 1.0);
}

#[test]
fn anomalies_carry_range_severity_and_time() {
    let mut values: Vec<f64> = (0..500)
        .map(|i| 50.0 + ((i * 7919) % 11) as f64 / 10.0)
        .collect();
    values[300] = 80.0;
    let ts: Vec<u64> = (0..500u64).map(|i| 1_000 * i).collect();
    let found = AnomalyDetector::default()
        .with_window(50)
        .detect_timed(&ts, &values);
    let a = found.iter().find(|a| a.index == 300).unwrap();
    assert_eq!(a.timestamp_ms, Some(300_000));
    assert!(a.value > a.upper && a.lower < a.expected && a.expected < a.upper);
    assert_eq!(a.severity, Severity::Critical);
    assert!(a.z_score > 8.0);
    // Whole-series mode on the same data.
    let global = AnomalyDetector::new(2.0).detect(&values);
    assert!(global.iter().any(|a| a.index == 300));
}

#[test]
fn baseline_ignores_outliers() {
    let s = trend_only(6).generate();
    let mut v = s.values[..1_000].to_vec();
    for x in v.iter_mut().step_by(50) {
        *x += 1_000.0;
    }
    let b = Baseline::from_values(&v).unwrap();
    assert!((b.median - 105.0).abs() < 1.0, "{b:?}");
    assert!(b.mean > b.trimmed_mean + 10.0);
    assert!(b.p5 < b.p25 && b.p25 < b.median && b.median < b.p75 && b.p75 < b.p95);
    assert!(b.deviation(1_100.0, 2.0).severity == Some(Severity::Critical));
}

#[test]
fn rising_cpu_gets_a_forecast_recommendation() {
    // One sample a minute for an hour, from 60% to 80%.
    let ts: Vec<u64> = (0..60u64).map(|i| 1_704_067_200_000 + i * 60_000).collect();
    let values: Vec<f64> = (0..60)
        .map(|i| 60.0 + 20.0 * i as f64 / 59.0 + if i % 2 == 0 { 0.3 } else { -0.3 })
        .collect();
    let mut rules = SeriesRules::new("CPU usage", "%").with_limit(90.0);
    rules.trend.window = 20; // the last 20 minutes against the 20 before
    let a = analyze_series(&ts, &values, &rules);
    assert_eq!(a.trend, Trend::Degrading);
    let f = a.forecast.unwrap();
    assert!((f.value - 100.3).abs() < 1.5, "{f:?}");
    assert!(
        a.recommendations[0].starts_with("CPU usage forecast to reach 100% in 1.0 h (limit 90.0%)"),
        "{:?}",
        a.recommendations
    );
    assert!(
        a.recommendations
            .iter()
            .any(|r| r.starts_with("CPU usage is degrading"))
    );

    let flat: Vec<f64> = (0..60).map(|i| 40.0 + (i % 3) as f64).collect();
    let calm = analyze_series(&ts, &flat, &rules);
    assert_eq!(calm.trend, Trend::Stable);
    assert!(
        calm.recommendations.is_empty(),
        "{:?}",
        calm.recommendations
    );
}

/// A standard normal variate (Box-Muller).
fn normal(rng: &mut Rng) -> f64 {
    let (u, v) = (1.0 - rng.unit(), rng.unit());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// A random walk with steps of deviation 1, measured with noise of `noise`.
fn random_walk(rng: &mut Rng, n: usize, noise: f64) -> Vec<f64> {
    let mut level = 100.0;
    (0..n)
        .map(|_| {
            level += normal(rng);
            level + noise * normal(rng)
        })
        .collect()
}

/// The smallest one-step error over a grid of parameters.
fn best_of_grid(fit: impl Fn(&[f64]) -> f64, grids: &[&[f64]]) -> f64 {
    let mut best = f64::INFINITY;
    let mut index = vec![0usize; grids.len()];
    'grid: loop {
        let x: Vec<f64> = index.iter().zip(grids).map(|(&i, g)| g[i]).collect();
        best = best.min(fit(&x));
        for k in 0..grids.len() {
            index[k] += 1;
            if index[k] < grids[k].len() {
                continue 'grid;
            }
            index[k] = 0;
        }
        return best;
    }
}

#[test]
fn holt_search_reaches_past_the_old_grid() {
    // A random walk of the slope (an integrated random walk) seen with
    // little noise is best followed with alpha and beta near 1; the old grid
    // stopped at 0.9 and 0.2.
    let mut rng = Rng::new(8);
    let mut slope = 0.0;
    let ys: Vec<f64> = random_walk(&mut rng, 2_000, 0.0)
        .iter()
        .map(|walk| {
            slope += walk - 100.0;
            slope
        })
        .collect();
    let m = Holt::fit_auto(&ys).unwrap();
    assert!(m.params.alpha > 0.9 && m.params.beta > 0.5, "{m:?}");
    let old_grid = best_of_grid(
        |x| Holt::new(x[0], x[1]).fit(&ys).unwrap().residual_std,
        &[
            &[0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9],
            &[0.0, 0.01, 0.05, 0.1, 0.2],
        ],
    );
    assert!(
        m.residual_std < old_grid * 0.9,
        "{} vs {old_grid}",
        m.residual_std
    );
}

#[test]
fn holt_winters_search_reaches_past_the_old_grid() {
    let old = [
        &[0.05, 0.1, 0.2, 0.3, 0.5][..],
        &[0.0, 0.01, 0.05, 0.1][..],
        &[0.05, 0.1, 0.2, 0.3, 0.5][..],
    ];
    let wave = |i: usize| 10.0 * (i as f64 * std::f64::consts::TAU / 24.0).sin();
    // A wandering level under a fixed daily wave: alpha near 1 (the old grid
    // stopped at 0.5).
    let mut rng = Rng::new(9);
    let ys: Vec<f64> = random_walk(&mut rng, 24 * 40, 0.1)
        .iter()
        .enumerate()
        .map(|(i, y)| y + wave(i))
        .collect();
    let m = HoltWinters::fit_auto(&ys, 24).unwrap();
    assert!(m.params.alpha > 0.8, "{:?}", m.params);
    let old_best = best_of_grid(
        |x| {
            HoltWinters::new(x[0], x[1], x[2], 24)
                .fit(&ys)
                .unwrap()
                .residual_std
        },
        &old,
    );
    assert!(
        m.residual_std < old_best * 0.9,
        "{} vs {old_best}",
        m.residual_std
    );
    // A steady level under a wave whose shape wanders from one cycle to the
    // next: gamma near 1 (the old grid stopped at 0.5).
    let mut shape: Vec<f64> = (0..24).map(wave).collect();
    let ys: Vec<f64> = (0..24 * 40)
        .map(|i| {
            shape[i % 24] += normal(&mut rng);
            50.0 + shape[i % 24] + 0.1 * normal(&mut rng)
        })
        .collect();
    let m = HoltWinters::fit_auto(&ys, 24).unwrap();
    assert!(m.params.gamma > 0.8, "{:?}", m.params);
    let old_best = best_of_grid(
        |x| {
            HoltWinters::new(x[0], x[1], x[2], 24)
                .fit(&ys)
                .unwrap()
                .residual_std
        },
        &old,
    );
    assert!(
        m.residual_std < old_best * 0.9,
        "{} vs {old_best}",
        m.residual_std
    );
}

#[test]
fn clipped_one_step_errors_report_a_spike_without_its_echo() {
    let mut rng = Rng::new(3);
    let mut ys: Vec<f64> = (0..24 * 8)
        .map(|i| 10.0 * (i as f64 * std::f64::consts::TAU / 24.0).sin() + (rng.unit() - 0.5))
        .collect();
    let spike = 24 * 5 + 7;
    ys[spike] += 20.0;
    let hw = HoltWinters::new(0.3, 0.0, 0.9, 24);
    let plain = hw.one_step_errors(&ys).unwrap();
    let clipped = hw.one_step_errors_clipped(&ys, 1.5).unwrap();
    assert_eq!(plain.len(), ys.len() - 24);
    assert_eq!(
        plain,
        hw.one_step_errors_clipped(&ys, f64::INFINITY).unwrap()
    );
    // Errors are indexed from the end of the first cycle.
    let at = spike - 24;
    assert!(
        plain[at] > 15.0 && clipped[at] > 15.0,
        "the spike is reported by both"
    );
    // One season later the plain model expects the spike again (gamma 0.9); the clipped one
    // does not.
    assert!(plain[at + 24] < -10.0, "{}", plain[at + 24]);
    assert!(clipped[at + 24].abs() < 4.0, "{}", clipped[at + 24]);
}
