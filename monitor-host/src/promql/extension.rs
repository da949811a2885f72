//! Extension functions backed by the project's analytics (`monitor_core::analytics::predict`):
//! `anomaly_score`, `forecast` and `forecast_seasonal`. Prometheus does not know them (`promtool`
//! refuses them): they are for the host's own rules (`[[alert]]` in the TOML config), not for rule
//! files meant for Prometheus too.
//!
//! Each works per series of its range vector, drops `__name__`, and skips a series with too few
//! samples. Samples are taken as equally spaced, at their mean interval over the window.

use std::sync::Once;

use monitor_core::analytics::predict::{Baseline, Holt, HoltWinters};
use promql_parser::parser::Expr;
use promql_parser::parser::function::{Function, register_extra_functions};
use promql_parser::parser::value::ValueType;

use super::value::{Range, Sample};
use super::{Error, Evaluator, Source};

/// The extension functions, beside Prometheus's own in [`super::SUPPORTED_FUNCTIONS`].
pub const EXTENSION_FUNCTIONS: &[&str] = &["anomaly_score", "forecast", "forecast_seasonal"];

/// Fewest samples before the latest that `anomaly_score` judges it against.
pub const MIN_HISTORY: usize = 3;

/// Teaches `promql-parser` the extension functions' signatures, once per process; every parse
/// of a rule or query expression goes through it first.
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use ValueType::{Matrix, Scalar, Vector};
        let added = register_extra_functions(vec![
            // anomaly_score(v range-vector[, season_seconds scalar])
            Function::new("anomaly_score", vec![Matrix, Scalar], 1, Vector, false),
            Function::new("forecast", vec![Matrix, Scalar], 0, Vector, false),
            Function::new(
                "forecast_seasonal",
                vec![Matrix, Scalar, Scalar],
                0,
                Vector,
                false,
            ),
        ]);
        // Only a clash with a built-in function fails, and none of these names is one; if a
        // later parser adds one, `extensions_parse` fails rather than this panicking at run time.
        debug_assert!(added.is_ok(), "{added:?}");
    });
}

/// Evaluates the extension function `name` at `t`.
pub(super) fn call<S: Source + ?Sized>(
    ev: &Evaluator<'_, S>,
    name: &str,
    args: &[&Expr],
    t: i64,
) -> Result<Vec<Sample>, Error> {
    let r = ev.matrix(args[0], t)?;
    let scalar = |i: usize| -> Result<Option<f64>, Error> {
        args.get(i).map(|a| ev.scalar(a, t)).transpose()
    };
    Ok(match name {
        "anomaly_score" => match scalar(1)? {
            None => per_series(&r, t, robust_score),
            Some(season) => {
                let season = positive(name, "season", season)?;
                per_series(&r, t, |p| seasonal_score(p, season))
            }
        },
        "forecast" => {
            let horizon = finite(name, "horizon", scalar(1)?)?;
            per_series(&r, t, |p| holt_forecast(p, horizon))
        }
        "forecast_seasonal" => {
            let horizon = finite(name, "horizon", scalar(1)?)?;
            let season = positive(name, "season", scalar(2)?.unwrap_or(f64::NAN))?;
            per_series(&r, t, |p| seasonal_forecast(p, horizon, season))
        }
        other => {
            return Err(Error::BadData(format!(
                "unsupported PromQL function {other:?}"
            )));
        }
    })
}

fn finite(function: &str, what: &str, v: Option<f64>) -> Result<f64, Error> {
    match v {
        Some(v) if v.is_finite() => Ok(v),
        _ => Err(Error::Execution(format!(
            "{function}(): the {what} must be a finite number of seconds"
        ))),
    }
}

fn positive(function: &str, what: &str, v: f64) -> Result<f64, Error> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(Error::Execution(format!(
            "{function}(): the {what} must be a positive number of seconds, not {v}"
        )))
    }
}

fn per_series(r: &Range, t: i64, f: impl Fn(&[(i64, f64)]) -> Option<f64>) -> Vec<Sample> {
    r.series
        .iter()
        .filter_map(|s| {
            f(&s.points).map(|value| Sample {
                metric: super::value::without_name(&s.metric),
                value,
                ts: t,
            })
        })
        .collect()
}

/// The mean interval between the samples, in seconds; `None` under two samples or when they all
/// share one timestamp.
fn step_seconds(p: &[(i64, f64)]) -> Option<f64> {
    let (first, last) = (p.first()?, p.last()?);
    let step = (last.0 - first.0) as f64 / 1000.0 / (p.len() - 1).max(1) as f64;
    (step > 0.0).then_some(step)
}

/// How many samples one `season` spans; `None` under two (no cycle to learn).
fn period(p: &[(i64, f64)], season: f64) -> Option<usize> {
    let points = (season / step_seconds(p)?).round();
    (2.0..1e9).contains(&points).then_some(points as usize)
}

/// The latest value's robust z-score against the samples before it: `(x - median) / (1.4826 *
/// MAD)`, as [`Baseline::deviation`] computes it (a window whose MAD is 0 scores any change as
/// very large, and no change as 0).
fn robust_score(p: &[(i64, f64)]) -> Option<f64> {
    let (&(_, latest), history) = p.split_last()?;
    if history.len() < MIN_HISTORY {
        return None;
    }
    let values: Vec<f64> = history.iter().map(|x| x.1).collect();
    let baseline = Baseline::from_values(&values)?;
    Some(baseline.deviation(latest, 1.0).robust_z)
}

/// The latest value's z-score against a Holt-Winters model of the samples before it (seasonal
/// cycle `season` seconds, parameters fitted to the window): `(x - forecast) / s`, `s` the
/// model's one-step error. Needs more than two cycles of history.
fn seasonal_score(p: &[(i64, f64)], season: f64) -> Option<f64> {
    let (&(_, latest), history) = p.split_last()?;
    let m = period(history, season)?;
    let values: Vec<f64> = history.iter().map(|x| x.1).collect();
    let model = HoltWinters::fit_auto(&values, m)?;
    let expected = model.forecast(1, 0.95).value;
    Some((latest - expected) / scale(model.residual_std, expected))
}

/// A spread never zero: a model that fits the window exactly scores any miss as very large.
fn scale(spread: f64, around: f64) -> f64 {
    spread.max(1e-9 * around.abs().max(1.0))
}

/// Holt's (level and trend) forecast `horizon` seconds after the latest sample, parameters
/// fitted to the window. Needs three samples.
fn holt_forecast(p: &[(i64, f64)], horizon: f64) -> Option<f64> {
    let step = step_seconds(p)?;
    let values: Vec<f64> = p.iter().map(|x| x.1).collect();
    let model = Holt::fit_auto(&values)?;
    Some(model.level + horizon / step * model.trend)
}

/// Holt-Winters' forecast `horizon` seconds after the latest sample (at least one sample ahead),
/// season `season` seconds, parameters fitted to the window. Needs more than two cycles.
fn seasonal_forecast(p: &[(i64, f64)], horizon: f64, season: f64) -> Option<f64> {
    let step = step_seconds(p)?;
    let m = period(p, season)?;
    let values: Vec<f64> = p.iter().map(|x| x.1).collect();
    let model = HoltWinters::fit_auto(&values, m)?;
    let steps = (horizon / step).round().clamp(1.0, 1e9) as usize;
    Some(model.forecast(steps, 0.95).value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    fn spaced(values: &[f64], step_ms: i64) -> Vec<(i64, f64)> {
        (0..)
            .map(|i| i * step_ms)
            .zip(values.iter().copied())
            .collect()
    }

    #[test]
    fn robust_score_by_hand() {
        // History 10, 12, 11, 13, 9: median 11, deviations 1, 1, 0, 2, 2 so MAD 1.
        let p = spaced(&[10.0, 12.0, 11.0, 13.0, 9.0, 20.0], 10_000);
        let z = robust_score(&p).unwrap();
        assert!(close(z, 9.0 / 1.4826), "{z}");
        // Below the median: negative.
        let p = spaced(&[10.0, 12.0, 11.0, 13.0, 9.0, 8.0], 10_000);
        assert!(close(robust_score(&p).unwrap(), -3.0 / 1.4826));
        // Three earlier samples at least.
        assert!(robust_score(&spaced(&[1.0, 2.0, 30.0], 1000)).is_none());
        assert!(robust_score(&spaced(&[1.0, 2.0, 3.0, 30.0], 1000)).is_some());
    }

    #[test]
    fn a_steady_window_scores_no_change_as_zero_and_a_change_as_huge() {
        let mut values = vec![5.0; 30];
        assert_eq!(robust_score(&spaced(&values, 10_000)), Some(0.0));
        values.push(5.5);
        assert!(robust_score(&spaced(&values, 10_000)).unwrap() > 1e6);
    }

    #[test]
    fn holt_forecast_matches_the_analytics_model() {
        let values: Vec<f64> = (0..50)
            .map(|i| 100.0 + 2.0 * i as f64 + if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let p = spaced(&values, 15_000);
        let model = Holt::fit_auto(&values).unwrap();
        // 60 s ahead at 15 s per sample: 4 steps.
        let f = holt_forecast(&p, 60.0).unwrap();
        assert!(close(f, model.forecast(4, 0.95).value), "{f}");
        // Between steps: linear in the horizon.
        let half = holt_forecast(&p, 7.5).unwrap();
        assert!(close(half, model.level + 0.5 * model.trend));
        assert!(holt_forecast(&p[..2], 60.0).is_none());
    }

    #[test]
    fn holt_forecast_of_a_straight_line_by_hand() {
        // y = 3 + 0.5 x: Holt starts on the line (level y0, trend the mean step) and never
        // leaves it, whatever its parameters.
        let values: Vec<f64> = (0..20).map(|i| 3.0 + 0.5 * i as f64).collect();
        let p = spaced(&values, 1000);
        let f = holt_forecast(&p, 10.0).unwrap();
        assert!(close(f, 3.0 + 0.5 * 29.0), "{f}");
    }

    fn seasonal(cycles: usize, period: usize) -> Vec<f64> {
        (0..cycles * period)
            .map(|i| {
                let phase = (i % period) as f64 / period as f64 * std::f64::consts::TAU;
                50.0 + 10.0 * phase.sin() + 0.3 * ((i * 7919) % 13) as f64 / 13.0
            })
            .collect()
    }

    #[test]
    fn seasonal_functions_match_the_analytics_model() {
        // A 1-hour season at 5-minute samples: 12 per cycle, 5 cycles.
        let values = seasonal(5, 12);
        let p = spaced(&values, 300_000);
        let model = HoltWinters::fit_auto(&values, 12).unwrap();
        let f = seasonal_forecast(&p, 1800.0, 3600.0).unwrap();
        assert!(close(f, model.forecast(6, 0.95).value), "{f}");
        // Less than a step ahead: the next sample.
        let f = seasonal_forecast(&p, 1.0, 3600.0).unwrap();
        assert!(close(f, model.forecast(1, 0.95).value));

        let mut spiked = values.clone();
        let history = HoltWinters::fit_auto(&spiked, 12).unwrap();
        let expected = history.forecast(1, 0.95).value;
        spiked.push(expected + 10.0 * history.residual_std);
        let z = seasonal_score(&spaced(&spiked, 300_000), 3600.0).unwrap();
        assert!(close(z, 10.0), "{z}");
    }

    #[test]
    fn seasons_need_two_cycles_and_two_samples_per_cycle() {
        let values = seasonal(2, 12);
        let p = spaced(&values, 300_000);
        // Two cycles exactly, the latest sample aside: too few.
        assert!(seasonal_score(&p, 3600.0).is_none());
        assert!(seasonal_forecast(&p, 600.0, 3600.0).is_none());
        // A season shorter than two samples.
        let long = spaced(&seasonal(5, 12), 300_000);
        assert!(seasonal_score(&long, 400.0).is_none());
        assert!(seasonal_score(&long, 3600.0).is_some());
    }

    /// One series, `m`, every 10 s.
    struct Memory(Vec<(i64, f64)>);

    impl Source for Memory {
        fn series(
            &self,
            matchers: &[promql_parser::label::Matcher],
        ) -> Result<Vec<super::super::SourceSeries>, String> {
            let metric = super::super::Metric::from([
                (super::super::NAME.to_owned(), "m".to_owned()),
                ("job".to_owned(), "a".to_owned()),
            ]);
            Ok(super::super::matches(matchers, &metric)
                .then_some(super::super::SourceSeries { id: 0, metric })
                .into_iter()
                .collect())
        }

        fn points(&self, _: i64, after_ms: i64, to_ms: i64) -> Result<Vec<(i64, f64)>, String> {
            Ok((self.0.iter().copied())
                .filter(|p| p.0 > after_ms && p.0 <= to_ms)
                .collect())
        }
    }

    /// The alerts a config's only rule returns at the last sample of `values`.
    fn alerts(rule: &str, values: &[f64]) -> Vec<Sample> {
        let config = format!("[[alert]]\nname = \"a\"\nmetric = \"m\"\n{rule}");
        let c =
            crate::Config::from_str(&config, "monitor.toml", std::path::Path::new("/")).unwrap();
        let expr = &c.rules.alerts[0].expr.parsed;
        let source = Memory(spaced(values, 10_000));
        let t = (values.len() as i64 - 1) * 10_000;
        match Evaluator::new(&source, t, t).instant(expr, t).unwrap() {
            super::super::Value::Vector(v) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_anomaly_alert_fires_on_a_spike_in_a_steady_series_only() {
        let rule = "condition = \"anomaly\"\n";
        // An hour of a steady value wobbling by 0.4.
        let mut values: Vec<f64> = (0..360).map(|i| 100.0 + (i % 5) as f64 * 0.1).collect();
        assert!(alerts(rule, &values).is_empty());
        assert!(alerts(rule, &[7.0; 360]).is_empty());
        // A value 3 above: about 19 robust deviations.
        values.push(103.0);
        let fired = alerts(rule, &values);
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert_eq!(fired[0].metric["job"], "a");
        assert!(!fired[0].metric.contains_key(super::super::NAME));
        assert!(fired[0].value > 15.0, "{fired:?}");
        // A dip fires as well; a threshold of 30 lets the same spike through.
        *values.last_mut().unwrap() = 97.0;
        assert_eq!(alerts(rule, &values).len(), 1);
        *values.last_mut().unwrap() = 103.0;
        assert!(alerts("condition = \"anomaly\"\nthreshold = 30\n", &values).is_empty());
    }

    #[test]
    fn a_forecast_alert_fires_on_a_trend_that_will_cross_within_the_horizon() {
        let rule = "condition = \"forecast_above\"\nthreshold = 90\n";
        // From 60% an hour ago, rising 1% per 5 minutes: 90% in 1.5 hours, within the default
        // 4-hour horizon.
        let rising: Vec<f64> = (0..360).map(|i| 60.0 + i as f64 / 30.0).collect();
        assert_eq!(alerts(rule, &rising).len(), 1);
        // Flat at 80: below 90 however far ahead.
        assert!(alerts(rule, &[80.0; 360]).is_empty());
        // Within 1 hour it does not get there.
        let soon = format!("{rule}horizon = \"1h\"\n");
        assert!(alerts(&soon, &rising).is_empty());
    }

    #[test]
    fn extensions_parse() {
        register();
        for q in [
            "abs(anomaly_score(x[1h])) > 4",
            "anomaly_score(x[1w], 86400)",
            "forecast(x[1h], 4 * 3600) > 90",
            "forecast_seasonal(x[1w], 3600, 86400)",
        ] {
            assert!(super::super::parse(q).is_ok(), "{q}");
        }
        for (q, says) in [
            ("anomaly_score(x)", "expected type matrix"),
            ("forecast(x[1h])", "expected 2 argument(s)"),
            ("anomaly_score(x[1h], 1, 2)", "at most 2 argument(s)"),
        ] {
            let e = super::super::parse(q).unwrap_err().to_string();
            assert!(e.contains(says), "{q}: {e}");
        }
    }
}
