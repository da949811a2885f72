//! `[patterns]` (what the host learns from its own events) and `[[watch]]` (series it forecasts
//! and watches for anomalies).

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{Ctx, Location};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPatterns {
    enabled: Option<bool>,
    interval: Option<Spanned<String>>,
    min_confidence: Option<Spanned<f64>>,
    min_occurrences: Option<Spanned<i64>>,
    window: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
    max_events: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWatch {
    expr: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    labels: Option<BTreeMap<String, Spanned<String>>>,
    forecast_horizon: Option<Spanned<String>>,
    season: Option<Spanned<String>>,
    anomaly_threshold: Option<Spanned<f64>>,
    threshold: Option<Spanned<f64>>,
    step: Option<Spanned<String>>,
    lookback: Option<Spanned<String>>,
}

/// `[patterns]`: the pattern learner over the host's events.
#[derive(Debug, Clone, PartialEq)]
pub struct PatternsConfig {
    /// Whether the learner runs (default true).
    pub enabled: bool,
    /// How often it learns again (default 5 minutes).
    pub interval: Duration,
    /// The lowest confidence reported, in [0, 1] (default [`DEFAULT_MIN_CONFIDENCE`]).
    pub min_confidence: f64,
    /// The fewest occurrences a pattern needs (default 5).
    pub min_occurrences: u64,
    /// How soon after an event another counts as following it (default 2 minutes).
    pub window: Duration,
    /// The offset of local time from UTC for time-of-day patterns, in minutes (default 0).
    pub utc_offset_minutes: i32,
    /// The most events kept for learning, newest first (default 100,000).
    pub max_events: usize,
}

/// The default `[patterns] min_confidence`. Confidences are conservative lower bounds: B after
/// A in 8 of 10 episodes scores about 0.45, in 20 of 25 about 0.6; events at random score near 0.
pub const DEFAULT_MIN_CONFIDENCE: f64 = 0.4;

impl Default for PatternsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(300),
            min_confidence: DEFAULT_MIN_CONFIDENCE,
            min_occurrences: 5,
            window: Duration::from_secs(120),
            utc_offset_minutes: 0,
            max_events: 100_000,
        }
    }
}

/// One `[[watch]]`: a series (or an expression's series) forecast and watched for anomalies.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchSpec {
    /// What the API calls it: `expr`, or `name` with its labels.
    pub id: String,
    /// The PromQL expression evaluated over the store.
    pub query: String,
    /// How far ahead the forecast goes (default 1 hour).
    pub forecast_horizon: Duration,
    /// The seasonal cycle: Holt-Winters when set, Holt (level and trend) otherwise.
    pub season: Option<Duration>,
    /// The score from which a point is anomalous (default 4).
    pub anomaly_threshold: f64,
    /// A level whose crossing the forecast reports.
    pub threshold: Option<f64>,
    /// The spacing of the points read (default the host's interval).
    pub step: Duration,
    /// How much history is read (default 3 seasons, or 1 hour without a season).
    pub lookback: Duration,
    /// Where it is declared.
    pub at: Location,
}

impl Ctx<'_> {
    pub(super) fn patterns(&mut self, raw: Option<RawPatterns>) -> PatternsConfig {
        let d = PatternsConfig::default();
        let Some(r) = raw else { return d };
        let interval = self.positive_duration("interval", &r.interval, d.interval);
        let window = self.positive_duration("window", &r.window, d.window);
        let min_confidence = match &r.min_confidence {
            Some(c) if !(0.0..=1.0).contains(c.get_ref()) => {
                self.err(c.span(), "`min_confidence` must be between 0 and 1");
                d.min_confidence
            }
            Some(c) => *c.get_ref(),
            None => d.min_confidence,
        };
        let min_occurrences = self.count(
            "min_occurrences",
            &r.min_occurrences,
            d.min_occurrences as usize,
        ) as u64;
        let max_events = self.count("max_events", &r.max_events, d.max_events);
        let utc_offset_minutes = match &r.timezone {
            None => 0,
            Some(tz) => parse_offset(tz.get_ref()).unwrap_or_else(|| {
                self.err(
                    tz.span(),
                    format!(
                        "`timezone`: `{}` is not an offset from UTC; write \"UTC\", \"+02:00\" or \"-05:30\"",
                        tz.get_ref()
                    ),
                );
                0
            }),
        };
        PatternsConfig {
            enabled: r.enabled.unwrap_or(true),
            interval,
            min_confidence,
            min_occurrences,
            window,
            utc_offset_minutes,
            max_events,
        }
    }

    pub(super) fn watches(
        &mut self,
        raw: Vec<Spanned<RawWatch>>,
        host_interval: Duration,
    ) -> Vec<WatchSpec> {
        raw.into_iter()
            .filter_map(|w| {
                let span = w.span();
                self.watch(span, w.into_inner(), host_interval)
            })
            .collect()
    }

    fn watch(
        &mut self,
        span: Range<usize>,
        w: RawWatch,
        host_interval: Duration,
    ) -> Option<WatchSpec> {
        let (id, query) = self.watch_query(span.clone(), &w)?;
        let forecast_horizon = self.positive_duration(
            "forecast_horizon",
            &w.forecast_horizon,
            Duration::from_secs(3600),
        );
        let season = w
            .season
            .as_ref()
            .map(|_| self.positive_duration("season", &w.season, Duration::from_secs(86_400)));
        let step = self.positive_duration("step", &w.step, host_interval);
        let default_lookback = season.map_or(Duration::from_secs(3600), |s| s * 3);
        let lookback = self.positive_duration("lookback", &w.lookback, default_lookback);
        if let (Some(s), Some(raw)) = (season, &w.season) {
            if s < step * 2 {
                self.err(raw.span(), "`season` must hold at least two steps");
            } else if lookback < s * 2 {
                let at = w.lookback.as_ref().map_or(raw.span(), Spanned::span);
                self.err(at, "`lookback` must hold at least two seasons");
            }
        }
        let anomaly_threshold = match &w.anomaly_threshold {
            Some(t) if !(t.get_ref().is_finite() && *t.get_ref() > 0.0) => {
                self.err(t.span(), "`anomaly_threshold` must be a positive number");
                4.0
            }
            Some(t) => *t.get_ref(),
            None => 4.0,
        };
        let threshold = match &w.threshold {
            Some(t) if !t.get_ref().is_finite() => {
                self.err(t.span(), "`threshold` must be a finite number");
                None
            }
            t => t.as_ref().map(|t| *t.get_ref()),
        };
        Some(WatchSpec {
            id,
            query,
            forecast_horizon,
            season,
            anomaly_threshold,
            threshold,
            step,
            lookback,
            at: self.at(span),
        })
    }

    /// The watch's id and PromQL: `expr` as written (checked), or `name` and `labels` as a
    /// selector.
    fn watch_query(&mut self, span: Range<usize>, w: &RawWatch) -> Option<(String, String)> {
        use crate::rules::{ExprUse, check_expr};
        match (&w.expr, &w.name) {
            (Some(expr), None) => {
                if w.labels.is_some() {
                    self.err(expr.span(), "`labels` go with `name`, not with `expr`");
                }
                match check_expr(expr.get_ref(), self.at(expr.span()), ExprUse::Recording) {
                    Ok(_) => Some((expr.get_ref().clone(), expr.get_ref().clone())),
                    Err(m) => {
                        self.err(expr.span(), format!("`expr`: {m}"));
                        None
                    }
                }
            }
            (None, Some(name)) => {
                use monitor_core::prometheus::{escape_label_value, label_name, metric_name};
                let mut matchers = vec![format!(
                    "__name__=~\"{}(_total)?\"",
                    metric_name(name.get_ref())
                )];
                let labels = w.labels.clone().unwrap_or_default();
                matchers.extend(labels.iter().map(|(k, v)| {
                    format!("{}=\"{}\"", label_name(k), escape_label_value(v.get_ref()))
                }));
                let id = if labels.is_empty() {
                    name.get_ref().clone()
                } else {
                    let l: Vec<String> = (labels.iter())
                        .map(|(k, v)| format!("{k}=\"{}\"", v.get_ref()))
                        .collect();
                    format!("{}{{{}}}", name.get_ref(), l.join(","))
                };
                Some((id, format!("{{{}}}", matchers.join(", "))))
            }
            (Some(expr), Some(_)) => {
                self.err(expr.span(), "give `expr` or `name`, not both");
                None
            }
            (None, None) => {
                self.err(span, "a `[[watch]]` needs `expr` or `name`");
                None
            }
        }
    }
}

/// `UTC`, `Z`, `+02:00`, `-0530`, `UTC+02:00` -> minutes east of UTC.
fn parse_offset(text: &str) -> Option<i32> {
    let t = text.trim();
    let t = t.strip_prefix("UTC").unwrap_or(t);
    if t.is_empty() || t == "Z" {
        return Some(0);
    }
    let (sign, rest) = match t.as_bytes()[0] {
        b'+' => (1, &t[1..]),
        b'-' => (-1, &t[1..]),
        _ => return None,
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 14 && m < 60).then_some(sign * (h * 60 + m))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::parse_offset;
    use crate::config::Config;

    fn errors(text: &str) -> Vec<String> {
        match Config::from_str(text, "m.toml", Path::new("/etc")) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn patterns_and_watches_resolve_with_their_defaults() {
        let text = r#"
[host]
interval = "15s"

[patterns]
interval = "1m"
timezone = "+01:00"

[[watch]]
expr = "rate(requests_total[5m])"
season = "1d"
threshold = 100.0

[[watch]]
name = "system.cpu.usage"
labels = { cpu = "0" }
"#;
        let c = Config::from_str(text, "m.toml", Path::new("/etc")).unwrap();
        assert_eq!(c.patterns.interval, Duration::from_secs(60));
        assert_eq!(c.patterns.utc_offset_minutes, 60);
        assert_eq!(c.patterns.min_confidence, super::DEFAULT_MIN_CONFIDENCE);
        assert!(c.patterns.enabled);
        assert_eq!(c.watches.len(), 2);
        let w = &c.watches[0];
        assert_eq!(w.season, Some(Duration::from_secs(86_400)));
        assert_eq!(w.lookback, Duration::from_secs(3 * 86_400));
        assert_eq!(w.step, Duration::from_secs(15));
        assert_eq!(w.threshold, Some(100.0));
        let w = &c.watches[1];
        assert_eq!(w.id, r#"system.cpu.usage{cpu="0"}"#);
        assert_eq!(
            w.query,
            r#"{__name__=~"system_cpu_usage(_total)?", cpu="0"}"#
        );
        assert_eq!(w.season, None);
        assert_eq!(w.lookback, Duration::from_secs(3600));
        assert_eq!(w.at.line, 14);
    }

    #[test]
    fn an_invalid_watch_expression_is_refused_at_its_position() {
        let e = errors("[[watch]]\nexpr = \"rate(x[5m]\"\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("m.toml:2:8: `expr`: could not parse expression"),
            "{e:?}"
        );
    }

    #[test]
    fn bad_pattern_and_watch_keys_are_located() {
        let e = errors(
            "[patterns]\nmin_confidence = 1.5\ntimezone = \"Mars\"\nevery = \"1m\"\n\n\
             [[watch]]\nname = \"x\"\nexpr = \"x\"\n\n[[watch]]\nseason = \"1h\"\n\n\
             [[watch]]\nname = \"y\"\nseason = \"1h\"\nlookback = \"1h\"\n",
        );
        assert_eq!(e.len(), 6, "{e:#?}");
        assert!(
            e[0].starts_with("m.toml:2:18: `min_confidence` must be between 0 and 1"),
            "{e:?}"
        );
        assert!(e[1].starts_with("m.toml:3:12: `timezone`: `Mars`"), "{e:?}");
        assert!(
            e[2].starts_with("m.toml:4:1: unknown field `every`"),
            "{e:?}"
        );
        assert!(
            e[3].starts_with("m.toml:8:8: give `expr` or `name`, not both"),
            "{e:?}"
        );
        assert!(
            e[4].starts_with("m.toml:10:1: a `[[watch]]` needs `expr` or `name`"),
            "{e:?}"
        );
        let e = errors("[[watch]]\nname = \"y\"\nseason = \"1h\"\nlookback = \"1h\"\n");
        assert_eq!(
            e,
            ["m.toml:4:12: `lookback` must hold at least two seasons"]
        );
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("UTC"), Some(0));
        assert_eq!(parse_offset("+02:00"), Some(120));
        assert_eq!(parse_offset("UTC-05:30"), Some(-330));
        assert_eq!(parse_offset("+0930"), Some(570));
        assert_eq!(parse_offset("Europe/Paris"), None);
        assert_eq!(parse_offset("+25:00"), None);
    }
}
