//! Predictive analysis of metric series: least-squares trends, Holt
//! smoothing, z-score anomalies, robust baselines, trend classification and
//! plain-language recommendations.
//!
//! Everything is a pure function of the values (and timestamps) passed in.
//! Fitting, smoothing and anomaly detection are single passes (`O(n)`); the
//! baseline sorts a copy (`O(n log n)`). Anomaly detection and baselines
//! skip non-finite values (NaN, infinities); in fits and smoothing they are
//! the caller's to filter, as they propagate into the figures.

use serde::{Deserialize, Serialize};

use super::stats::{fmt_ms, t_critical};
use crate::trend::{Direction, Trend, classify};

/// A forecast value with its prediction interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// The point forecast.
    pub value: f64,
    /// The lower end of the prediction interval.
    pub lower: f64,
    /// The upper end of the prediction interval.
    pub upper: f64,
    /// The interval's confidence level (0.95 for 95%).
    pub level: f64,
}

/// A least-squares line `y = intercept + slope * x`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinearFit {
    /// Change of `y` per unit of `x`.
    pub slope: f64,
    /// `y` at `x = 0`.
    pub intercept: f64,
    /// Coefficient of determination, in [0, 1] (1 when `y` is constant).
    pub r_squared: f64,
    /// Standard deviation of the residuals, with `n - 2` degrees of freedom.
    pub residual_std: f64,
    /// Number of points.
    pub n: usize,
    /// Mean of `x`.
    pub x_mean: f64,
    /// Sum of squared deviations of `x` from its mean.
    pub sxx: f64,
}

impl LinearFit {
    /// Fits `ys` against `xs` (same length) by ordinary least squares, in two
    /// passes (means first, for numerical stability). `None` with fewer than
    /// three points or when every `x` is the same.
    pub fn fit(xs: &[f64], ys: &[f64]) -> Option<Self> {
        let n = xs.len().min(ys.len());
        if n < 3 {
            return None;
        }
        let (xs, ys) = (&xs[..n], &ys[..n]);
        let nf = n as f64;
        let x_mean = xs.iter().sum::<f64>() / nf;
        let y_mean = ys.iter().sum::<f64>() / nf;
        let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
        for (&x, &y) in xs.iter().zip(ys) {
            let (dx, dy) = (x - x_mean, y - y_mean);
            sxx += dx * dx;
            sxy += dx * dy;
            syy += dy * dy;
        }
        if sxx <= 0.0 {
            return None;
        }
        let slope = sxy / sxx;
        let sse = (syy - slope * sxy).max(0.0);
        Some(LinearFit {
            slope,
            intercept: y_mean - slope * x_mean,
            r_squared: if syy > 0.0 { 1.0 - sse / syy } else { 1.0 },
            residual_std: (sse / (nf - 2.0)).sqrt(),
            n,
            x_mean,
            sxx,
        })
    }

    /// Fits `ys` against their indices `0, 1, 2, ...`.
    pub fn fit_series(ys: &[f64]) -> Option<Self> {
        let xs: Vec<f64> = (0..ys.len()).map(|i| i as f64).collect();
        LinearFit::fit(&xs, ys)
    }

    /// The fitted `y` at `x`.
    pub fn predict(&self, x: f64) -> f64 {
        self.intercept + self.slope * x
    }

    /// The forecast at `x` with its prediction interval at `level` (0.95 for
    /// 95%): `predict(x) +/- t * s * sqrt(1 + 1/n + (x - x_mean)^2 / sxx)`,
    /// with `t` Student's critical value for `n - 2` degrees of freedom and
    /// `s` the residual standard deviation. The interval widens away from
    /// the data.
    pub fn forecast(&self, x: f64, level: f64) -> Forecast {
        let value = self.predict(x);
        let nf = self.n as f64;
        let dx = x - self.x_mean;
        let half = t_critical(level, nf - 2.0)
            * self.residual_std
            * (1.0 + 1.0 / nf + dx * dx / self.sxx).sqrt();
        Forecast {
            value,
            lower: value - half,
            upper: value + half,
            level,
        }
    }
}

/// Holt's linear (double exponential) smoothing, for equally spaced series.
///
/// `level(t) = alpha * y(t) + (1 - alpha) * (level(t-1) + trend(t-1))`,
/// `trend(t) = beta * (level(t) - level(t-1)) + (1 - beta) * trend(t-1)`,
/// starting from `level = y(0)` and `trend` the mean step over the first ten
/// points.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Holt {
    /// Level smoothing, in (0, 1]: higher follows the data more closely.
    pub alpha: f64,
    /// Trend smoothing, in [0, 1]: higher follows changes of slope faster.
    pub beta: f64,
}

impl Default for Holt {
    /// `alpha = 0.3`, `beta = 0.1`.
    fn default() -> Self {
        Holt {
            alpha: 0.3,
            beta: 0.1,
        }
    }
}

/// A fitted Holt model: the final level and trend.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HoltModel {
    /// The smoothing used.
    pub params: Holt,
    /// The smoothed level after the last point.
    pub level: f64,
    /// The smoothed trend (change per step) after the last point.
    pub trend: f64,
    /// Root mean square of the one-step-ahead errors.
    pub residual_std: f64,
    /// Number of points.
    pub n: usize,
}

impl Holt {
    /// Smoothing with the given parameters (clamped to (0, 1] and [0, 1]).
    pub fn new(alpha: f64, beta: f64) -> Self {
        Holt {
            alpha: alpha.clamp(1e-6, 1.0),
            beta: beta.clamp(0.0, 1.0),
        }
    }

    /// Fits the series in one pass. `None` with fewer than three points.
    pub fn fit(&self, ys: &[f64]) -> Option<HoltModel> {
        let n = ys.len();
        if n < 3 {
            return None;
        }
        let k = n.min(10);
        let mut level = ys[0];
        let mut trend = (ys[k - 1] - ys[0]) / (k - 1) as f64;
        let mut sse = 0.0;
        for &y in &ys[1..] {
            let predicted = level + trend;
            let e = y - predicted;
            sse += e * e;
            let new_level = predicted + self.alpha * e;
            trend = self.beta * (new_level - level) + (1.0 - self.beta) * trend;
            level = new_level;
        }
        Some(HoltModel {
            params: *self,
            level,
            trend,
            residual_std: (sse / (n - 1) as f64).sqrt(),
            n,
        })
    }

    /// Fits with the `alpha` and `beta` that minimise the one-step-ahead
    /// squared error over their whole ranges: a coarse grid (`alpha` 0.05,
    /// 0.2, 0.35, 0.5, 0.65, 0.8 or 0.95; `beta` 0, 0.05, 0.15, 0.3, 0.5,
    /// 0.7 or 0.9), then two rounds of golden-section search on each
    /// parameter in turn around the best point, within (0, 1] and [0, 1]:
    /// 106 passes over the series, each `O(n)`.
    pub fn fit_auto(ys: &[f64]) -> Option<HoltModel> {
        const ALPHA: [f64; 7] = [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95];
        const BETA: [f64; 7] = [0.0, 0.05, 0.15, 0.3, 0.5, 0.7, 0.9];
        let error = |x: [f64; 2]| Holt::new(x[0], x[1]).fit(ys).map(|m| m.residual_std);
        let best = minimise(error, [&ALPHA, &BETA], [MIN_ALPHA, 0.0])?;
        Holt::new(best[0], best[1]).fit(ys)
    }
}

/// The smallest level smoothing a search tries.
const MIN_ALPHA: f64 = 1e-3;

/// The point of `[lower[i], 1]^K` where `error` is smallest, as far as a
/// bounded search finds it: every point of the grid (the product of
/// `grids`), then from the best of them two rounds of coordinate descent, each
/// a golden-section search of [`GOLDEN_STEPS`] evaluations per coordinate
/// within `+/- 0.2` (then `+/- 0.05`) of the best point so far. A point
/// replaces the best only when its error is lower, so the result is never
/// worse than the grid's best. `None` when `error` is `None` (too few
/// points) or never finite.
fn minimise<const K: usize>(
    error: impl Fn([f64; K]) -> Option<f64>,
    grids: [&[f64]; K],
    lower: [f64; K],
) -> Option<[f64; K]> {
    let mut best: Option<([f64; K], f64)> = None;
    let consider = |x: [f64; K], e: f64, best: &mut Option<([f64; K], f64)>| {
        if e.is_finite() && best.is_none_or(|(_, b)| e < b) {
            *best = Some((x, e));
        }
    };
    // The grid, odometer order.
    let mut index = [0usize; K];
    'grid: loop {
        let x: [f64; K] = std::array::from_fn(|k| grids[k][index[k]]);
        consider(x, error(x)?, &mut best);
        for k in 0..K {
            index[k] += 1;
            if index[k] < grids[k].len() {
                continue 'grid;
            }
            index[k] = 0;
        }
        break;
    }
    let (mut x, mut e) = best?;
    for radius in [0.2, 0.05] {
        for k in 0..K {
            let (lo, hi) = ((x[k] - radius).max(lower[k]), (x[k] + radius).min(1.0));
            let at = |v: f64| {
                let mut y = x;
                y[k] = v;
                (y, error(y).unwrap_or(f64::INFINITY))
            };
            let mut found = Some((x, e));
            golden_section(lo, hi, |v| {
                let (y, ey) = at(v);
                consider(y, ey, &mut found);
                ey
            });
            // The ends too: the optimum of a smoothing parameter is often at 1.
            for v in [lo, hi] {
                let (y, ey) = at(v);
                consider(y, ey, &mut found);
            }
            (x, e) = found.expect("starts from the best point");
        }
    }
    Some(x)
}

/// Evaluations per golden-section search: they narrow the interval to
/// `0.618^12`, about 0.3% of its width (0.001 at the first round's 0.4).
const GOLDEN_STEPS: usize = 12;

/// Golden-section search for the minimum of `f` on `[lo, hi]`, with
/// [`GOLDEN_STEPS`] evaluations; the caller keeps the best point it saw.
fn golden_section(mut lo: f64, mut hi: f64, mut f: impl FnMut(f64) -> f64) {
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let mut a = hi - ratio * (hi - lo);
    let mut b = lo + ratio * (hi - lo);
    let (mut fa, mut fb) = (f(a), f(b));
    for _ in 2..GOLDEN_STEPS {
        if fa <= fb {
            hi = b;
            (b, fb) = (a, fa);
            a = hi - ratio * (hi - lo);
            fa = f(a);
        } else {
            lo = a;
            (a, fa) = (b, fb);
            b = lo + ratio * (hi - lo);
            fb = f(b);
        }
    }
}

impl HoltModel {
    /// The forecast `steps` ahead of the last point (1 is the next point),
    /// with its prediction interval at `level`: `level + steps * trend +/- z *
    /// s * sqrt(1 + (h - 1) * (a^2 + a*b*h + b^2 * h * (2h - 1) / 6))`, the
    /// variance of the additive-error Holt model (Hyndman and Athanasopoulos,
    /// Forecasting: Principles and Practice, table 8.8) with `a = alpha`,
    /// `b = alpha * beta`, `h = steps` and `s` the one-step error.
    pub fn forecast(&self, steps: usize, level: f64) -> Forecast {
        let h = steps.max(1) as f64;
        let value = self.level + h * self.trend;
        let a = self.params.alpha;
        let b = self.params.alpha * self.params.beta;
        let var = 1.0 + (h - 1.0) * (a * a + a * b * h + b * b * h * (2.0 * h - 1.0) / 6.0);
        let half = t_critical(level, self.n as f64 - 2.0) * self.residual_std * var.sqrt();
        Forecast {
            value,
            lower: value - half,
            upper: value + half,
            level,
        }
    }
}

/// Additive Holt-Winters (triple exponential) smoothing, for equally spaced
/// series with a seasonal cycle of `period` points (288 for a day of
/// 5-minute samples).
///
/// `level(t) = alpha * (y(t) - s(t-m)) + (1 - alpha) * (level(t-1) + trend(t-1))`,
/// `trend(t) = beta * (level(t) - level(t-1)) + (1 - beta) * trend(t-1)`,
/// `s(t) = gamma * (y(t) - level(t)) + (1 - gamma) * s(t-m)`,
/// started from the first two cycles: level their first cycle's mean, trend
/// the change of mean between them per point, seasonal terms the first
/// cycle's deviations from that line.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HoltWinters {
    /// Level smoothing, in (0, 1].
    pub alpha: f64,
    /// Trend smoothing, in [0, 1].
    pub beta: f64,
    /// Seasonal smoothing, in [0, 1].
    pub gamma: f64,
    /// The cycle's length, in points (at least 2).
    pub period: usize,
}

/// A fitted Holt-Winters model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoltWintersModel {
    /// The smoothing used.
    pub params: HoltWinters,
    /// The smoothed level after the last point.
    pub level: f64,
    /// The smoothed trend (change per step) after the last point.
    pub trend: f64,
    /// The seasonal terms, `season[0]` that of the point after the last.
    pub season: Vec<f64>,
    /// Root mean square of the one-step-ahead errors.
    pub residual_std: f64,
    /// Number of points.
    pub n: usize,
}

impl HoltWinters {
    /// Smoothing with the given parameters (clamped to their ranges).
    pub fn new(alpha: f64, beta: f64, gamma: f64, period: usize) -> Self {
        HoltWinters {
            alpha: alpha.clamp(1e-6, 1.0),
            beta: beta.clamp(0.0, 1.0),
            gamma: gamma.clamp(0.0, 1.0),
            period: period.max(2),
        }
    }

    /// Fits the series in one pass. `None` with fewer than two full cycles
    /// plus one point.
    pub fn fit(&self, ys: &[f64]) -> Option<HoltWintersModel> {
        self.run(ys, None, f64::INFINITY)
    }

    /// The one-step-ahead forecast errors `y(t) - forecast(t)` of the points
    /// after the first cycle (`ys.len() - period` of them), as [`fit`](Self::fit)
    /// makes them: the residuals a seasonal anomaly detector scores. `None`
    /// with fewer than two full cycles plus one point.
    pub fn one_step_errors(&self, ys: &[f64]) -> Option<Vec<f64>> {
        self.one_step_errors_clipped(ys, f64::INFINITY)
    }

    /// [`one_step_errors`](Self::one_step_errors), with each point entering
    /// the smoothing clipped to `forecast +/- clip`: a spike is still
    /// reported whole as its error, but moves the level, trend and seasonal
    /// terms no more than a point `clip` away would, so it leaves no echo in
    /// the errors after it (nor one season later).
    pub fn one_step_errors_clipped(&self, ys: &[f64], clip: f64) -> Option<Vec<f64>> {
        let mut errors = Vec::with_capacity(ys.len());
        self.run(ys, Some(&mut errors), clip.abs())?;
        Some(errors)
    }

    fn run(
        &self,
        ys: &[f64],
        mut errors: Option<&mut Vec<f64>>,
        clip: f64,
    ) -> Option<HoltWintersModel> {
        let (m, n) = (self.period.max(2), ys.len());
        if n <= 2 * m {
            return None;
        }
        let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
        let (first, second) = (mean(&ys[..m]), mean(&ys[m..2 * m]));
        let mut trend = (second - first) / m as f64;
        let centre = (m - 1) as f64 / 2.0;
        let mut season: Vec<f64> = (0..m)
            .map(|i| ys[i] - (first + (i as f64 - centre) * trend))
            .collect();
        let mut level = first + centre * trend;
        let mut sse = 0.0;
        let mut slot = 0usize; // season index of point t, t = m, m + 1, ...
        for &y in &ys[m..] {
            let s = season[slot];
            let forecast = level + trend + s;
            let e = y - forecast;
            sse += e * e;
            if let Some(errors) = errors.as_mut() {
                errors.push(e);
            }
            let y = forecast + e.clamp(-clip, clip);
            let new_level = self.alpha * (y - s) + (1.0 - self.alpha) * (level + trend);
            trend = self.beta * (new_level - level) + (1.0 - self.beta) * trend;
            season[slot] = self.gamma * (y - new_level) + (1.0 - self.gamma) * s;
            level = new_level;
            slot += 1;
            if slot == m {
                slot = 0;
            }
        }
        season.rotate_left(slot);
        Some(HoltWintersModel {
            params: *self,
            level,
            trend,
            season,
            residual_std: (sse / (n - m) as f64).sqrt(),
            n,
        })
    }

    /// Fits with the `alpha`, `beta` and `gamma` that minimise the
    /// one-step-ahead squared error over their whole ranges: a coarse grid
    /// (`alpha` and `gamma` 0.1, 0.3, 0.5, 0.7 or 0.9; `beta` 0, 0.1 or
    /// 0.4), then two rounds of golden-section search on each parameter in
    /// turn around the best point, within (0, 1] and [0, 1]: 160 passes over
    /// the series, each `O(n)`.
    pub fn fit_auto(ys: &[f64], period: usize) -> Option<HoltWintersModel> {
        const ALPHA: [f64; 5] = [0.1, 0.3, 0.5, 0.7, 0.9];
        const BETA: [f64; 3] = [0.0, 0.1, 0.4];
        const GAMMA: [f64; 5] = [0.1, 0.3, 0.5, 0.7, 0.9];
        let error = |x: [f64; 3]| {
            HoltWinters::new(x[0], x[1], x[2], period)
                .fit(ys)
                .map(|m| m.residual_std)
        };
        let best = minimise(error, [&ALPHA, &BETA, &GAMMA], [MIN_ALPHA, 0.0, 0.0])?;
        HoltWinters::new(best[0], best[1], best[2], period).fit(ys)
    }
}

impl HoltWintersModel {
    /// The forecast `steps` ahead of the last point (1 is the next point),
    /// with its prediction interval at `level`, from the variance of the
    /// additive-error Holt-Winters model (Hyndman and Athanasopoulos, table
    /// 8.8): `s^2 * (1 + (h - 1) * (a^2 + a*b*h + b^2 * h * (2h - 1) / 6) +
    /// g * k * (2a + g + b * m * (k + 1)))` with `a = alpha`,
    /// `b = alpha * beta`, `g = (1 - alpha) * gamma`, `m` the period and
    /// `k = (h - 1) / m` rounded down.
    pub fn forecast(&self, steps: usize, level: f64) -> Forecast {
        let h = steps.max(1);
        let m = self.season.len();
        let value = self.level + h as f64 * self.trend + self.season[(h - 1) % m];
        let p = &self.params;
        let (a, b, g) = (p.alpha, p.alpha * p.beta, (1.0 - p.alpha) * p.gamma);
        let (hf, mf, k) = (h as f64, m as f64, ((h - 1) / m) as f64);
        let var = 1.0
            + (hf - 1.0) * (a * a + a * b * hf + b * b * hf * (2.0 * hf - 1.0) / 6.0)
            + g * k * (2.0 * a + g + b * mf * (k + 1.0));
        let half = t_critical(level, self.n as f64 - 2.0) * self.residual_std * var.sqrt();
        Forecast {
            value,
            lower: value - half,
            upper: value + half,
            level,
        }
    }
}

/// How far outside the expected range an anomaly lies, relative to the
/// detector's threshold `k`: below `1.25 k` standard deviations `low`, below
/// `1.5 k` `medium`, below `2 k` `high`, else `critical` (with the default
/// `k = 2`: 2-2.5, 2.5-3, 3-4, 4 and more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Just past the threshold.
    Low,
    /// Clearly out of range.
    Medium,
    /// Far out of range.
    High,
    /// At least twice the threshold.
    Critical,
}

impl Severity {
    /// The severity of `z` standard deviations against threshold `k`.
    pub fn of(z: f64, k: f64) -> Severity {
        let r = z.abs() / k;
        if r < 1.25 {
            Severity::Low
        } else if r < 1.5 {
            Severity::Medium
        } else if r < 2.0 {
            Severity::High
        } else {
            Severity::Critical
        }
    }
}

/// A value outside its expected range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// Position in the series.
    pub index: usize,
    /// When, in milliseconds since the Unix epoch, if timestamps were given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_ms: Option<u64>,
    /// The value.
    pub value: f64,
    /// The expected value (the mean it was compared with).
    pub expected: f64,
    /// The lower end of the expected range (`expected - threshold * std`).
    pub lower: f64,
    /// The upper end of the expected range (`expected + threshold * std`).
    pub upper: f64,
    /// `(value - expected) / std`.
    pub z_score: f64,
    /// How far out of range.
    pub severity: Severity,
}

/// What a windowed [`AnomalyDetector`] expects the next value to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expected {
    /// The mean of the window; the spread is the window's standard
    /// deviation. Right for series that hover around a level.
    #[default]
    Mean,
    /// The least-squares line through the window, extrapolated one step;
    /// the spread is that line's prediction standard deviation
    /// `s * sqrt(1 + 1/n + (x - x_mean)^2 / sxx)`. Right for series with a
    /// trend or a slow seasonal wave, which make a window's mean lag behind.
    LocalTrend,
}

/// Z-score anomaly detection.
///
/// With no window, every value is compared with the mean and standard
/// deviation of the whole series (two passes). With a window of `w`, each
/// value is compared with what the `w` values before it predict (see
/// [`Expected`]: their mean, or their least-squares line), so a slow trend
/// or a level shift becomes the new normal. An isolated anomaly enters the
/// window clipped to the expected range, so one spike does not mask the
/// next; from the second anomaly in a row on, values enter as they are, so a
/// real change is learnt instead of being clipped away (clipping a run would
/// narrow the window's spread and flag ever more of it). The first `max(3, w / 2)` values are not judged. Running sums make
/// it one pass (`O(n)`), recomputed from the window every `w` values to keep
/// rounding errors from accumulating.
///
/// `z = (value - expected) / spread`; a value is anomalous when
/// `|z| >= threshold`, and its expected range is
/// `expected +/- threshold * spread`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnomalyDetector {
    /// How many standard deviations from the expected value is anomalous
    /// (default 2.0).
    pub threshold: f64,
    /// The trailing window, in points; `None` for the whole series (default
    /// `None`).
    pub window: Option<usize>,
    /// What a window predicts (default [`Expected::Mean`]); unused without
    /// a window.
    pub expected: Expected,
}

impl Default for AnomalyDetector {
    fn default() -> Self {
        AnomalyDetector {
            threshold: 2.0,
            window: None,
            expected: Expected::Mean,
        }
    }
}

/// Running sums over the window, `x` relative to `base`, `y` relative to `shift`.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    n: f64,
    x: f64,
    xx: f64,
    y: f64,
    yy: f64,
    xy: f64,
}

impl Sums {
    fn add(&mut self, x: f64, y: f64, sign: f64) {
        self.n += sign;
        self.x += sign * x;
        self.xx += sign * x * x;
        self.y += sign * y;
        self.yy += sign * y * y;
        self.xy += sign * x * y;
    }
}

impl AnomalyDetector {
    /// A whole-series detector with `threshold` standard deviations.
    pub fn new(threshold: f64) -> Self {
        AnomalyDetector {
            threshold,
            ..AnomalyDetector::default()
        }
    }

    /// The same detector with a trailing window of `window` points (at least 3).
    pub fn with_window(mut self, window: usize) -> Self {
        self.window = Some(window.max(3));
        self
    }

    /// The same detector predicting with `expected`.
    pub fn with_expected(mut self, expected: Expected) -> Self {
        self.expected = expected;
        self
    }

    /// The anomalies of `values`, in order.
    pub fn detect(&self, values: &[f64]) -> Vec<Anomaly> {
        self.run(values, None)
    }

    /// The anomalies of `values` taken at `timestamps_ms` (same length), in order.
    pub fn detect_timed(&self, timestamps_ms: &[u64], values: &[f64]) -> Vec<Anomaly> {
        self.run(values, Some(timestamps_ms))
    }

    fn anomaly(
        &self,
        index: usize,
        value: f64,
        expected: f64,
        variance: f64,
        ts: Option<&[u64]>,
    ) -> Option<Anomaly> {
        // A floor on the spread keeps a flat series finite: any change of a
        // constant is then an anomaly with a large but finite z-score.
        let floor = 1e-9 * expected.abs().max(1.0);
        let variance = variance.max(floor * floor);
        let d = value - expected;
        // Compared squared, so the common case (no anomaly) needs no root.
        if d * d < self.threshold * self.threshold * variance {
            return None;
        }
        let spread = variance.sqrt();
        let z = d / spread;
        Some(Anomaly {
            index,
            timestamp_ms: ts.and_then(|t| t.get(index).copied()),
            value,
            expected,
            lower: expected - self.threshold * spread,
            upper: expected + self.threshold * spread,
            z_score: z,
            severity: Severity::of(z, self.threshold),
        })
    }

    /// Expected value and variance at `x` from the window's sums (relative);
    /// `inv` holds `1 / n` and `1 / (n - 1)`, which change only while the
    /// window fills, so the common path divides nothing.
    #[inline]
    fn predict(&self, s: &Sums, x: f64, inv: (f64, f64)) -> (f64, f64) {
        let n = s.n;
        let y_mean = s.y * inv.0;
        let syy = (s.yy - s.y * y_mean).max(0.0);
        match self.expected {
            Expected::Mean => (y_mean, syy * inv.1),
            Expected::LocalTrend => {
                let x_mean = s.x / n;
                let sxx = s.xx - s.x * x_mean;
                let sxy = s.xy - s.x * y_mean;
                if sxx <= 0.0 || n < 3.0 {
                    return (y_mean, syy / (n - 1.0));
                }
                let slope = sxy / sxx;
                let sse = (syy - slope * sxy).max(0.0);
                let dx = x - x_mean;
                (
                    y_mean + slope * dx,
                    sse / (n - 2.0) * (1.0 + 1.0 / n + dx * dx / sxx),
                )
            }
        }
    }

    fn run(&self, values: &[f64], ts: Option<&[u64]>) -> Vec<Anomaly> {
        let mut out = Vec::new();
        let Some(w) = self.window else {
            let finite = || values.iter().copied().filter(|v| v.is_finite());
            let count = finite().count();
            if count < 3 {
                return out;
            }
            let mean = finite().sum::<f64>() / count as f64;
            let var = finite().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (count - 1) as f64;
            for (i, &v) in values.iter().enumerate() {
                if v.is_finite() {
                    out.extend(self.anomaly(i, v, mean, var, ts));
                }
            }
            return out;
        };
        let w = w.max(3);
        let warmup = (w / 2).max(3);
        // The window's values as they entered (clipped when anomalous), in a
        // ring whose oldest slot is `head` once full. Sums are kept with `y`
        // relative to the first value and `x` relative to `base`, the index
        // of the window's oldest value at the last recomputation, so the
        // numbers stay small and cancellation mild.
        let mut ring = vec![0.0f64; w];
        let (mut len, mut head) = (0usize, 0usize);
        let shift = values
            .iter()
            .copied()
            .find(|v| v.is_finite())
            .unwrap_or(0.0);
        let mut base = 0usize;
        let mut sums = Sums::default();
        let mut since_recompute = 0usize;
        // A non-finite value is not judged and enters the window as what was
        // expected of it (or as the last value entered, before the warm-up
        // ends), keeping the window's positions consecutive.
        let mut last_y = 0.0f64;
        let mut previous_anomalous = false;
        let mut inv = (0.0, 0.0);
        let mut inv_len = 0usize;
        for (i, &v) in values.iter().enumerate() {
            let mut y = if v.is_finite() { v - shift } else { last_y };
            let mut anomalous = false;
            if len >= warmup {
                if inv_len != len {
                    inv = (1.0 / len as f64, 1.0 / (len - 1) as f64);
                    inv_len = len;
                }
                let (expected, variance) = self.predict(&sums, (i - base) as f64, inv);
                if !v.is_finite() {
                    y = expected;
                } else if let Some(a) = self.anomaly(i, v, expected + shift, variance, ts) {
                    if !previous_anomalous {
                        y = v.clamp(a.lower, a.upper) - shift;
                    }
                    anomalous = true;
                    out.push(a);
                }
            }
            previous_anomalous = anomalous;
            last_y = y;
            if len == w {
                // The oldest value sits at index i - w.
                sums.add((i - w - base) as f64, ring[head], -1.0);
            } else {
                len += 1;
            }
            ring[head] = y;
            head += 1;
            if head == w {
                head = 0;
            }
            sums.add((i - base) as f64, y, 1.0);
            since_recompute += 1;
            if since_recompute >= w {
                since_recompute = 0;
                base = i + 1 - len;
                sums = Sums::default();
                let oldest = if len == w { head } else { 0 };
                for k in 0..len {
                    sums.add(k as f64, ring[(oldest + k) % w], 1.0);
                }
            }
        }
        out
    }
}

/// A robust description of what is normal for a series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Number of values.
    pub n: usize,
    /// Median.
    pub median: f64,
    /// Median absolute deviation from the median (unscaled).
    pub mad: f64,
    /// Mean of the values between the 10th and 90th percentiles.
    pub trimmed_mean: f64,
    /// Plain mean.
    pub mean: f64,
    /// Plain standard deviation (sample).
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// 5th percentile.
    pub p5: f64,
    /// 25th percentile.
    pub p25: f64,
    /// 75th percentile.
    pub p75: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value.
    pub max: f64,
}

/// How far a value lies from a [`Baseline`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Deviation {
    /// The value.
    pub value: f64,
    /// `value - median`.
    pub from_median: f64,
    /// `(value - median) / |median|`; absent when the median is 0.
    pub relative: Option<f64>,
    /// `(value - median) / (1.4826 * mad)`: a z-score that a few outliers in
    /// the baseline do not distort (1.4826 makes the MAD estimate the
    /// standard deviation of normal data).
    pub robust_z: f64,
    /// Whether the value lies outside the 5th-95th percentile band.
    pub outside_p5_p95: bool,
    /// The severity of `robust_z` against the given threshold, absent when
    /// within it.
    pub severity: Option<Severity>,
}

impl Baseline {
    /// The baseline of `values` (finite values only), sorting a copy:
    /// `O(n log n)`. `None` when no value is finite. Percentiles interpolate
    /// linearly between ranks.
    pub fn from_values(values: &[f64]) -> Option<Baseline> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable_by(f64::total_cmp);
        let n = v.len();
        let q = |v: &[f64], p: f64| -> f64 {
            let pos = p * (v.len() - 1) as f64;
            let (lo, frac) = (pos.floor() as usize, pos.fract());
            if lo + 1 < v.len() {
                v[lo] + frac * (v[lo + 1] - v[lo])
            } else {
                v[lo]
            }
        };
        let median = q(&v, 0.5);
        let mean = v.iter().sum::<f64>() / n as f64;
        let std = if n > 1 {
            (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        let (lo, hi) = (
            (n as f64 * 0.1).floor() as usize,
            n - (n as f64 * 0.1).floor() as usize,
        );
        let trimmed = &v[lo..hi.max(lo + 1)];
        let trimmed_mean = trimmed.iter().sum::<f64>() / trimmed.len() as f64;
        let mut dev: Vec<f64> = v.iter().map(|x| (x - median).abs()).collect();
        dev.sort_unstable_by(f64::total_cmp);
        Some(Baseline {
            n,
            median,
            mad: q(&dev, 0.5),
            trimmed_mean,
            mean,
            std,
            min: v[0],
            p5: q(&v, 0.05),
            p25: q(&v, 0.25),
            p75: q(&v, 0.75),
            p95: q(&v, 0.95),
            p99: q(&v, 0.99),
            max: v[n - 1],
        })
    }

    /// How far `value` lies from this baseline; `threshold` (in robust
    /// standard deviations, 2.0 is usual) decides the severity.
    pub fn deviation(&self, value: f64, threshold: f64) -> Deviation {
        let from_median = value - self.median;
        let scale = (1.4826 * self.mad).max(1e-9 * self.median.abs().max(1.0));
        let robust_z = from_median / scale;
        Deviation {
            value,
            from_median,
            relative: (self.median != 0.0).then(|| from_median / self.median.abs()),
            robust_z,
            outside_p5_p95: value < self.p5 || value > self.p95,
            severity: (robust_z.abs() >= threshold).then(|| Severity::of(robust_z, threshold)),
        }
    }
}

/// The mean of each run of `window` consecutive values (`n - window + 1` of
/// them), in one pass. Empty when the series is shorter than the window.
pub fn moving_average(values: &[f64], window: usize) -> Vec<f64> {
    let w = window.max(1);
    if values.len() < w {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(values.len() - w + 1);
    let mut sum: f64 = values[..w].iter().sum();
    out.push(sum / w as f64);
    for i in w..values.len() {
        sum += values[i] - values[i - w];
        out.push(sum / w as f64);
    }
    out
}

/// How to classify a series' trend.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeriesTrendConfig {
    /// The moving-average window, in points (default 10).
    pub window: usize,
    /// Relative change that counts (default 0.05: +/-5%).
    pub tolerance: f64,
    /// Whether rising is bad or good.
    pub direction: Direction,
}

impl Default for SeriesTrendConfig {
    fn default() -> Self {
        SeriesTrendConfig {
            window: 10,
            tolerance: 0.05,
            direction: Direction::LowerIsBetter,
        }
    }
}

/// The trend of a series: the moving average over the last `window` values
/// (recent) against the one over the `window` values before them (earlier),
/// classified by [`crate::trend::classify`]. `stable` with fewer than
/// `2 * window` values. Also returns `(earlier, recent)`.
pub fn classify_series(values: &[f64], cfg: &SeriesTrendConfig) -> (Trend, Option<(f64, f64)>) {
    let w = cfg.window.max(1);
    let n = values.len();
    if n < 2 * w {
        return (Trend::Stable, None);
    }
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let recent = mean(&values[n - w..]);
    let earlier = mean(&values[n - 2 * w..n - w]);
    (
        classify(earlier, recent, cfg.direction, cfg.tolerance),
        Some((earlier, recent)),
    )
}

/// What to look for in one series, for [`analyze_series`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesRules {
    /// The series' name in messages ("CPU usage").
    pub name: String,
    /// The unit after values in messages (`"%"`, `" ms"`).
    pub unit: String,
    /// The limit the series should not cross (above it when lower is
    /// better, below it when higher is better), if any.
    pub limit: Option<f64>,
    /// How far ahead to forecast, in milliseconds.
    pub horizon_ms: u64,
    /// Trend classification.
    pub trend: SeriesTrendConfig,
    /// Anomaly detection.
    pub anomalies: AnomalyDetector,
}

impl SeriesRules {
    /// Rules for `name` in `unit`, lower is better, no limit, a one-hour
    /// horizon and default trend and anomaly settings.
    pub fn new(name: impl Into<String>, unit: impl Into<String>) -> Self {
        SeriesRules {
            name: name.into(),
            unit: unit.into(),
            limit: None,
            horizon_ms: 3_600_000,
            trend: SeriesTrendConfig::default(),
            anomalies: AnomalyDetector::default(),
        }
    }

    /// The same rules with a limit.
    pub fn with_limit(mut self, limit: f64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The same rules with a horizon, in milliseconds.
    pub fn with_horizon_ms(mut self, horizon_ms: u64) -> Self {
        self.horizon_ms = horizon_ms;
        self
    }
}

/// What [`analyze_series`] found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesAnalysis {
    /// The series' name.
    pub name: String,
    /// Recent against earlier.
    pub trend: Trend,
    /// The least-squares line, `x` in seconds since the first timestamp.
    pub fit: Option<LinearFit>,
    /// The 95% forecast at the horizon past the last timestamp.
    pub forecast: Option<Forecast>,
    /// The robust baseline.
    pub baseline: Option<Baseline>,
    /// The anomalies found.
    pub anomalies: Vec<Anomaly>,
    /// Plain-language advice, most urgent first.
    pub recommendations: Vec<String>,
}

/// Analyses one series (`timestamps_ms` and `values` of the same length, in
/// time order): trend, least-squares forecast at the horizon, baseline,
/// anomalies, and recommendations such as "CPU usage forecast to reach 92%
/// in 1.0 h (limit 90%)". `O(n log n)` (the baseline's sort).
pub fn analyze_series(
    timestamps_ms: &[u64],
    values: &[f64],
    rules: &SeriesRules,
) -> SeriesAnalysis {
    let n = timestamps_ms.len().min(values.len());
    let (ts, values) = (&timestamps_ms[..n], &values[..n]);
    let t0 = ts.first().copied().unwrap_or(0);
    let xs: Vec<f64> = ts
        .iter()
        .map(|&t| (t.saturating_sub(t0)) as f64 / 1e3)
        .collect();
    let fit = LinearFit::fit(&xs, values);
    let horizon_s = rules.horizon_ms as f64 / 1e3;
    let forecast = fit.map(|f| f.forecast(xs[n - 1] + horizon_s, 0.95));
    let (trend, means) = classify_series(values, &rules.trend);
    let anomalies = rules.anomalies.detect_timed(ts, values);
    let baseline = Baseline::from_values(values);
    let u = &rules.unit;
    let fmt = |v: f64| {
        if v.abs() >= 100.0 {
            format!("{v:.0}{u}")
        } else {
            format!("{v:.1}{u}")
        }
    };
    let mut recs = Vec::new();
    let lower_is_better = rules.trend.direction == Direction::LowerIsBetter;
    if let (Some(limit), Some(f), Some(fc)) = (rules.limit, fit, forecast) {
        let crosses = |v: f64| {
            if lower_is_better {
                v >= limit
            } else {
                v <= limit
            }
        };
        let now = f.predict(xs[n - 1]);
        if crosses(now) {
            recs.push(format!(
                "{} is at {} already, past its limit of {}",
                rules.name,
                fmt(now),
                fmt(limit)
            ));
        } else if crosses(fc.value) {
            recs.push(format!(
                "{} forecast to reach {} in {} (limit {}): act before it does",
                rules.name,
                fmt(fc.value),
                fmt_ms(rules.horizon_ms as f64),
                fmt(limit)
            ));
        } else if f.slope != 0.0 && crosses(now + f.slope * 4.0 * horizon_s) {
            let secs = (limit - now) / f.slope;
            recs.push(format!(
                "{} at this rate reaches its limit of {} in about {}",
                rules.name,
                fmt(limit),
                fmt_ms(secs * 1e3)
            ));
        }
    }
    if let (Trend::Degrading, Some((earlier, recent))) = (trend, means) {
        let change = if earlier != 0.0 {
            (recent - earlier) / earlier.abs() * 100.0
        } else {
            0.0
        };
        recs.push(format!(
            "{} is degrading: {} recently against {} before ({change:+.0}%)",
            rules.name,
            fmt(recent),
            fmt(earlier)
        ));
    }
    if let Some(worst) = anomalies
        .iter()
        .max_by(|a, b| a.z_score.abs().total_cmp(&b.z_score.abs()))
    {
        recs.push(format!(
            "{} anomal{} in {}; the largest {} (expected {} to {}, z = {:.1})",
            anomalies.len(),
            if anomalies.len() == 1 { "y" } else { "ies" },
            rules.name,
            fmt(worst.value),
            fmt(worst.lower),
            fmt(worst.upper),
            worst.z_score
        ));
    }
    SeriesAnalysis {
        name: rules.name.clone(),
        trend,
        fit,
        forecast,
        baseline,
        anomalies,
        recommendations: recs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_line_is_recovered() {
        let ys: Vec<f64> = (0..50).map(|i| 3.0 + 2.0 * i as f64).collect();
        let f = LinearFit::fit_series(&ys).unwrap();
        assert!((f.slope - 2.0).abs() < 1e-12 && (f.intercept - 3.0).abs() < 1e-9);
        assert!((f.r_squared - 1.0).abs() < 1e-12);
        let fc = f.forecast(100.0, 0.95);
        assert!((fc.value - 203.0).abs() < 1e-9 && (fc.upper - fc.lower).abs() < 1e-6);
        assert!(LinearFit::fit_series(&[1.0, 2.0]).is_none());
        assert!(LinearFit::fit(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_none());
    }

    #[test]
    fn holt_follows_a_line() {
        let ys: Vec<f64> = (0..100).map(|i| 10.0 + 0.5 * i as f64).collect();
        let m = Holt::default().fit(&ys).unwrap();
        assert!((m.forecast(10, 0.95).value - (10.0 + 0.5 * 109.0)).abs() < 1e-6);
        let auto = Holt::fit_auto(&ys).unwrap();
        assert!(auto.residual_std < 1e-9);
    }

    #[test]
    fn holt_interval_widens_with_horizon() {
        let ys: Vec<f64> = (0..100).map(|i| (i % 7) as f64 + 0.1 * i as f64).collect();
        let m = Holt::default().fit(&ys).unwrap();
        let (a, b) = (m.forecast(1, 0.95), m.forecast(20, 0.95));
        assert!(b.upper - b.lower > a.upper - a.lower);
    }

    #[test]
    fn holt_winters_continues_the_cycle() {
        let wave = |i: usize| {
            50.0 + 0.1 * i as f64 + 5.0 * (i as f64 * std::f64::consts::TAU / 24.0).sin()
        };
        let ys: Vec<f64> = (0..240).map(wave).collect();
        let m = HoltWinters::new(0.3, 0.1, 0.2, 24).fit(&ys).unwrap();
        for h in [1, 7, 24, 30] {
            let f = m.forecast(h, 0.95);
            assert!(
                (f.value - wave(239 + h)).abs() < 0.05,
                "h={h}: {f:?} vs {}",
                wave(239 + h)
            );
        }
        assert!(HoltWinters::new(0.3, 0.1, 0.2, 24).fit(&ys[..48]).is_none());
        let auto = HoltWinters::fit_auto(&ys, 24).unwrap();
        assert!(auto.residual_std < 0.05);
    }

    #[test]
    fn severity_scales_with_threshold() {
        assert_eq!(Severity::of(2.1, 2.0), Severity::Low);
        assert_eq!(Severity::of(-2.6, 2.0), Severity::Medium);
        assert_eq!(Severity::of(3.5, 2.0), Severity::High);
        assert_eq!(Severity::of(4.0, 2.0), Severity::Critical);
    }

    #[test]
    fn non_finite_values_are_skipped() {
        let mut v: Vec<f64> = (0..200).map(|i| 10.0 + (i % 5) as f64).collect();
        v[0] = f64::NAN;
        v[50] = f64::INFINITY;
        v[120] = f64::NAN;
        v[150] = 100.0;
        for detector in [
            AnomalyDetector::new(3.0),
            AnomalyDetector::new(3.0).with_window(30),
            AnomalyDetector::new(3.0)
                .with_window(30)
                .with_expected(Expected::LocalTrend),
        ] {
            let found = detector.detect(&v);
            assert_eq!(found.len(), 1, "{detector:?}: {found:?}");
            assert_eq!(found[0].index, 150);
            assert!(found[0].z_score.is_finite());
        }
    }

    #[test]
    fn flat_series_change_is_finite_anomaly() {
        let mut v = vec![5.0; 100];
        v[60] = 6.0;
        let a = AnomalyDetector::new(2.0).with_window(20).detect(&v);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].index, 60);
        assert!(a[0].z_score.is_finite());
        assert_eq!(a[0].severity, Severity::Critical);
    }

    #[test]
    fn moving_average_and_series_trend() {
        assert_eq!(moving_average(&[1.0, 2.0, 3.0, 4.0], 2), [1.5, 2.5, 3.5]);
        assert!(moving_average(&[1.0], 2).is_empty());
        let rising: Vec<f64> = (0..40).map(|i| 100.0 + i as f64).collect();
        let cfg = SeriesTrendConfig::default();
        assert_eq!(classify_series(&rising, &cfg).0, Trend::Degrading);
        let up_good = SeriesTrendConfig {
            direction: Direction::HigherIsBetter,
            ..cfg
        };
        assert_eq!(classify_series(&rising, &up_good).0, Trend::Improving);
        assert_eq!(classify_series(&rising[..15], &cfg).0, Trend::Stable);
    }

    #[test]
    fn baseline_is_robust() {
        let mut v: Vec<f64> = (1..=99).map(f64::from).collect();
        v.push(1e9);
        let b = Baseline::from_values(&v).unwrap();
        assert!((b.median - 50.5).abs() < 1e-9);
        assert!((b.mad - 25.0).abs() < 1e-9);
        assert!(b.trimmed_mean < 60.0 && b.mean > 1e6);
        let d = b.deviation(200.0, 2.0);
        assert!(d.robust_z > 3.0 && d.outside_p5_p95 && d.severity.is_some());
        assert!(b.deviation(50.0, 2.0).severity.is_none());
    }
}
