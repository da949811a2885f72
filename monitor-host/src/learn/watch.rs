//! `[[watch]]`: forecasts (`/api/forecasts`) and anomalies (`/api/anomalies`) of chosen series.
//!
//! Each watch's expression is evaluated over the store every `step` across `lookback` (as
//! `/api/v1/query_range` would: raw points, or the minute and hour rollups for a bare selector
//! over a long range, so a season longer than the memory retention reads the store's history).
//! Per resulting series:
//!
//! - **forecast**: Holt-Winters (parameters fitted, [`HoltWinters::fit_auto`]) with the watch's
//!   `season` when the lookback holds more than two seasons, Holt's level and trend otherwise;
//!   values and 95% bounds at up to [`FORECAST_POINTS`] times over `forecast_horizon`, the
//!   direction of the trend, and when the forecast first crosses `threshold` (if given).
//! - **anomalies**: with a season, the one-step-ahead residuals of that Holt-Winters model scored
//!   against their robust spread (`residual / (1.4826 * MAD)`), points beyond [`CLIP`] spreads
//!   entering the model clipped so that a spike leaves no echo after it; without, each point's robust
//!   z-score against the [`ROBUST_WINDOW`] points before it (as `anomaly_score(x[w])`). Points
//!   scoring `anomaly_threshold` or more (in absolute value) are reported, newest first, at most
//!   [`MAX_ANOMALIES`] per series.

use std::path::PathBuf;

use monitor_core::analytics::predict::{
    Baseline, Forecast, Holt, HoltModel, HoltWinters, HoltWintersModel,
};
use serde_json::{Value, json};

use crate::config::WatchSpec;
use crate::promql::Metric;
use crate::query::{MAX_POINTS, QueryApi, Steps};

/// Most forecast points per series.
pub const FORECAST_POINTS: usize = 60;
/// Points before each one that the robust z-score judges it against.
pub const ROBUST_WINDOW: usize = 30;
/// Residuals beyond this many robust spreads enter the seasonal model clipped.
pub const CLIP: f64 = 3.0;
/// Most anomalies reported per series.
pub const MAX_ANOMALIES: usize = 50;

/// The watches and the store they read.
#[derive(Debug)]
pub struct Watches {
    specs: Vec<WatchSpec>,
    query: QueryApi,
}

impl Watches {
    /// The `specs` over the store at `database` (a read-only connection of their own).
    pub fn new(specs: &[WatchSpec], database: PathBuf) -> Self {
        Self {
            specs: specs.to_vec(),
            query: QueryApi::new(database),
        }
    }

    /// Whether there is no watch.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// `/api/forecasts` and `/api/anomalies` at `now_ms`.
    pub fn evaluate(&self, now_ms: u64) -> (String, String) {
        let mut forecasts = Vec::new();
        let mut anomalies = Vec::new();
        for spec in &self.specs {
            let (f, a) = match self.read(spec, now_ms) {
                Ok(matrix) => watch(spec, &matrix),
                Err(e) => {
                    let e =
                        json!({"watch": spec.id, "query": spec.query, "error": e, "series": []});
                    (e.clone(), e)
                }
            };
            forecasts.push(f);
            anomalies.push(a);
        }
        let wrap = |watches: Vec<Value>| {
            json!({
                "generated_at": crate::silence::rfc3339(now_ms),
                "generated_at_ms": now_ms,
                "watches": watches,
            })
            .to_string()
        };
        (wrap(forecasts), wrap(anomalies))
    }

    fn read(&self, spec: &WatchSpec, now_ms: u64) -> Result<crate::promql::Matrix, String> {
        let lookback = spec.lookback.as_millis() as i64;
        // The step, widened if the lookback would hold more points than a range query may.
        let step = (spec.step.as_millis() as i64)
            .max(1)
            .max(lookback / (MAX_POINTS - 1) + 1);
        let end = now_ms as i64 / step * step;
        let steps = Steps::new(end - lookback, end, step)?;
        self.query.range(&spec.query, &steps)
    }
}

/// Both views of one watch.
fn watch(spec: &WatchSpec, matrix: &crate::promql::Matrix) -> (Value, Value) {
    let mut forecasts = Vec::new();
    let mut anomalies = Vec::new();
    let mut methods = ("holt", "robust_z");
    for (metric, points) in matrix {
        let series = Series::new(points);
        let season = spec
            .season
            .and_then(|s| series.period(s.as_millis() as i64));
        if season.is_some() {
            methods = ("holt_winters", "seasonal_residual");
        }
        forecasts.push(forecast(spec, metric, &series, season));
        anomalies.push(json!({
            "labels": metric,
            "points": points.len(),
            "anomalies": detect(spec, &series, season),
        }));
    }
    let head = |method: &str, series: Vec<Value>| {
        json!({
            "watch": spec.id,
            "query": spec.query,
            "method": method,
            "season_ms": spec.season.map(|s| s.as_millis() as u64),
            "series": series,
        })
    };
    let mut a = head(methods.1, anomalies);
    a["threshold"] = json!(spec.anomaly_threshold);
    let mut f = head(methods.0, forecasts);
    f["horizon_ms"] = json!(spec.forecast_horizon.as_millis() as u64);
    f["threshold"] = json!(spec.threshold);
    (f, a)
}

/// A series' points, taken as equally spaced at their mean interval.
struct Series<'a> {
    points: &'a [(i64, f64)],
    values: Vec<f64>,
    step_ms: f64,
}

impl<'a> Series<'a> {
    fn new(points: &'a [(i64, f64)]) -> Self {
        let step_ms = match (points.first(), points.last()) {
            (Some(a), Some(b)) if points.len() > 1 => {
                (b.0 - a.0) as f64 / (points.len() - 1) as f64
            }
            _ => 0.0,
        };
        Self {
            points,
            values: points.iter().map(|p| p.1).collect(),
            step_ms,
        }
    }

    /// Points per season, when the series holds more than two of them.
    fn period(&self, season_ms: i64) -> Option<usize> {
        if self.step_ms <= 0.0 {
            return None;
        }
        let m = (season_ms as f64 / self.step_ms).round() as usize;
        (m >= 2 && self.values.len() > 2 * m).then_some(m)
    }
}

/// A fitted forecasting model.
enum Fitted {
    Holt(HoltModel),
    Seasonal(HoltWintersModel),
}

impl Fitted {
    /// The trend per step and the one-step error's spread.
    fn trend_and_spread(&self) -> (f64, f64) {
        match self {
            Fitted::Holt(m) => (m.trend, m.residual_std),
            Fitted::Seasonal(m) => (m.trend, m.residual_std),
        }
    }

    /// The forecast `h` steps ahead, with its 95% interval.
    fn forecast(&self, h: usize) -> Forecast {
        match self {
            Fitted::Holt(m) => m.forecast(h, 0.95),
            Fitted::Seasonal(m) => m.forecast(h, 0.95),
        }
    }
}

fn forecast(spec: &WatchSpec, metric: &Metric, s: &Series<'_>, season: Option<usize>) -> Value {
    let Some(&(last_t, last_v)) = s.points.last() else {
        return json!({"labels": metric, "forecast": []});
    };
    let horizon_steps = if s.step_ms > 0.0 {
        ((spec.forecast_horizon.as_millis() as f64 / s.step_ms).round() as usize).max(1)
    } else {
        0
    };
    let model = match season {
        Some(m) => HoltWinters::fit_auto(&s.values, m).map(Fitted::Seasonal),
        None => Holt::fit_auto(&s.values).map(Fitted::Holt),
    };
    let Some(model) = model.filter(|_| horizon_steps > 0) else {
        return json!({
            "labels": metric,
            "last": {"t_ms": last_t, "value": last_v},
            "forecast": [],
            "note": "too few points to forecast",
        });
    };
    let (trend, sd) = model.trend_and_spread();
    let at = |h: usize| model.forecast(h);
    let every = horizon_steps.div_ceil(FORECAST_POINTS).max(1);
    let t_of = |h: usize| last_t + (h as f64 * s.step_ms).round() as i64;
    let points: Vec<Value> = (1..=horizon_steps)
        .filter(|h| h % every == 0 || *h == horizon_steps)
        .map(|h| {
            let f = at(h);
            json!({"t_ms": t_of(h), "value": f.value, "lower": f.lower, "upper": f.upper})
        })
        .collect();
    // The first step at which the forecast reaches the threshold from the side the series is on.
    let crosses_at = spec.threshold.and_then(|limit| {
        let above = last_v >= limit;
        (1..=horizon_steps)
            .find(|&h| {
                let v = at(h).value;
                if above { v < limit } else { v >= limit }
            })
            .map(t_of)
    });
    let change = trend * horizon_steps as f64;
    let direction = if change.abs() <= 0.1 * sd || change == 0.0 {
        "flat"
    } else if change > 0.0 {
        "rising"
    } else {
        "falling"
    };
    json!({
        "labels": metric,
        "last": {"t_ms": last_t, "value": last_v},
        "direction": direction,
        "trend_per_hour": trend / s.step_ms * 3_600_000.0,
        "residual_std": sd,
        "forecast": points,
        "crosses_at_ms": crosses_at,
    })
}

fn detect(spec: &WatchSpec, s: &Series<'_>, season: Option<usize>) -> Vec<Value> {
    let scored: Vec<(usize, f64, f64)> = match season {
        Some(m) => seasonal_scores(&s.values, m),
        None => robust_scores(&s.values),
    };
    scored
        .into_iter()
        .rev()
        .filter(|(_, _, score)| score.abs() >= spec.anomaly_threshold)
        .take(MAX_ANOMALIES)
        .map(|(i, expected, score)| {
            json!({
                "t_ms": s.points[i].0,
                "value": s.points[i].1,
                "expected": expected,
                "score": (score * 100.0).round() / 100.0,
            })
        })
        .collect()
}

/// `(index, expected, score)` of every point from the second season on: its one-step-ahead
/// Holt-Winters residual (parameters fitted to the whole series, season `m` points) over the
/// residuals' robust spread, `1.4826 * MAD`, so spikes do not widen the spread that judges them.
/// Empty with two seasons or fewer.
pub fn seasonal_scores(values: &[f64], m: usize) -> Vec<(usize, f64, f64)> {
    let Some(model) = HoltWinters::fit_auto(values, m) else {
        return Vec::new();
    };
    // The first cycle's errors settle the start; the spread comes from the rest.
    let spread_of = |errors: &[f64]| {
        let b = Baseline::from_values(&errors[m.min(errors.len())..])?;
        Some((
            b.median,
            (1.4826 * b.mad).max(1e-9 * b.median.abs().max(1.0)),
        ))
    };
    let Some((_, first_spread)) = model
        .params
        .one_step_errors(values)
        .as_deref()
        .and_then(spread_of)
    else {
        return Vec::new();
    };
    // Again with points beyond CLIP spreads entering the model clipped: a spike leaves no echo.
    let Some(errors) = (model.params).one_step_errors_clipped(values, CLIP * first_spread) else {
        return Vec::new();
    };
    let Some((median, spread)) = spread_of(&errors) else {
        return Vec::new();
    };
    (m..errors.len())
        .map(|j| {
            let i = j + m;
            let e = errors[j];
            (i, values[i] - e, (e - median) / spread)
        })
        .collect()
}

/// `(index, expected, score)` of every point with [`ROBUST_WINDOW`] before it: its robust z-score
/// against them.
pub fn robust_scores(values: &[f64]) -> Vec<(usize, f64, f64)> {
    (ROBUST_WINDOW..values.len())
        .filter_map(|i| {
            let b = Baseline::from_values(&values[i - ROBUST_WINDOW..i])?;
            let d = b.deviation(values[i], 1.0);
            Some((i, b.median, d.robust_z))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn spec(season: Option<Duration>) -> WatchSpec {
        WatchSpec {
            id: "x".into(),
            query: "x".into(),
            forecast_horizon: Duration::from_secs(600),
            season,
            anomaly_threshold: 4.0,
            threshold: Some(200.0),
            step: Duration::from_secs(10),
            lookback: Duration::from_secs(3600),
            at: crate::config::Location {
                file: "m.toml".into(),
                line: 1,
                column: 1,
            },
        }
    }

    /// A rising line with seeded noise (sd about 0.3), a wave of `season` points, and one spike.
    fn series(n: usize, season: usize, spike_at: usize) -> Vec<(i64, f64)> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut uniform = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|i| {
                let wave = if season > 0 {
                    10.0 * (i as f64 * std::f64::consts::TAU / season as f64).sin()
                } else {
                    0.0
                };
                let wobble = (uniform() + uniform() + uniform() - 1.5) * 0.6;
                let spike = if i == spike_at { 40.0 } else { 0.0 };
                (
                    i as i64 * 10_000,
                    100.0 + 0.1 * i as f64 + wave + wobble + spike,
                )
            })
            .collect()
    }

    #[test]
    fn a_trend_is_forecast_rising_and_its_crossing_found() {
        let points = series(300, 0, usize::MAX);
        let f = forecast(&spec(None), &Metric::new(), &Series::new(&points), None);
        assert_eq!(f["direction"], "rising", "{f:#}");
        // 0.1 per 10 s: 36 per hour.
        let per_hour = f["trend_per_hour"].as_f64().unwrap();
        assert!((per_hour - 36.0).abs() < 3.0, "{per_hour}");
        assert_eq!(f["forecast"].as_array().unwrap().len(), 60);
        // The last value is about 130; 200 is 700 steps away, past the 60-step horizon.
        assert_eq!(f["crosses_at_ms"], Value::Null);
        let mut near = spec(None);
        near.threshold = Some(131.0);
        let f = forecast(&near, &Metric::new(), &Series::new(&points), None);
        let at = f["crosses_at_ms"].as_i64().unwrap();
        assert!(at > points.last().unwrap().0 && at <= points.last().unwrap().0 + 600_000);
    }

    #[test]
    fn a_spike_is_the_one_anomaly_with_and_without_a_season() {
        let points = series(360, 0, 200);
        let found = detect(&spec(None), &Series::new(&points), None);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0]["t_ms"], 2_000_000);

        let points = series(360, 60, 300);
        let s = Series::new(&points);
        let season = s.period(600_000);
        assert_eq!(season, Some(60));
        let found = detect(&spec(Some(Duration::from_secs(600))), &s, season);
        assert_eq!(found[0]["t_ms"], 3_000_000, "{found:#?}");
        assert!(found[0]["score"].as_f64().unwrap() > 10.0);
        assert!(
            found.len() <= 2,
            "the spike, and at most its echo: {found:#?}"
        );
    }
}
