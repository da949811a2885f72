//! Times, durations and the evaluation of a selector at each step of a range, as Prometheus does.

/// How far back a step looks for a sample: Prometheus's default `--query.lookback-delta`.
pub const LOOKBACK_MS: i64 = 5 * 60_000;
/// Most points per series a range query may answer (Prometheus's limit).
pub const MAX_POINTS: i64 = 11_000;

/// A time parameter as Prometheus accepts it: unix seconds with decimals (`1700000000.5`) or RFC
/// 3339 (`2026-01-02T03:04:05.678Z`, `...+02:00`); in ms since the epoch.
///
/// # Errors
///
/// Neither form.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<f64>()
        && seconds.is_finite()
    {
        return Ok((seconds * 1000.0).round() as i64);
    }
    rfc3339(text).ok_or_else(|| format!("cannot parse {text:?} to a valid timestamp"))
}

/// A duration parameter as Prometheus accepts it: seconds with decimals (`15`, `0.5`) or a
/// duration (`15s`, `1m30s`, `2h`); in ms.
///
/// # Errors
///
/// Neither form.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<f64>()
        && seconds.is_finite()
    {
        return Ok((seconds * 1000.0).round() as i64);
    }
    promql_parser::util::parse_duration(text)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .ok_or_else(|| format!("cannot parse {text:?} to a valid duration"))
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` to ms since the epoch.
fn rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let s = text.get(from..from + len)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0;
    if b[i] == b'.' {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        // Milliseconds, as Prometheus keeps: the first three digits.
        let frac = &text[i + 1..i + 1 + digits.min(3)];
        ms = frac.parse::<i64>().ok()? * 10_i64.pow(3 - frac.len() as u32);
        i += 1 + digits;
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let m = num(i + 1, 2)? * 60 + num(i + 4, 2)?;
            if *sign == b'+' { m } else { -m }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Some(seconds * 1000 + ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The steps of a range query, in ms: `start`, `start + step`, ... up to `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Steps {
    /// The first step.
    pub start: i64,
    /// No step after this.
    pub end: i64,
    /// Between steps, > 0.
    pub step: i64,
}

impl Steps {
    /// Checks the range as Prometheus does.
    ///
    /// # Errors
    ///
    /// `end` before `start`, a step that is not positive, or more than [`MAX_POINTS`] steps;
    /// the message is Prometheus's.
    pub fn new(start: i64, end: i64, step: i64) -> Result<Self, String> {
        if end < start {
            return Err("end timestamp must not be before start time".into());
        }
        if step <= 0 {
            return Err(
                "zero or negative query resolution step widths are not accepted. \
                        Try a positive integer"
                    .into(),
            );
        }
        if (end - start) / step >= MAX_POINTS {
            return Err(
                "exceeded maximum resolution of 11,000 points per timeseries. \
                        Try decreasing the query resolution (?step=XX)"
                    .into(),
            );
        }
        Ok(Self { start, end, step })
    }

    /// At each step `t`, the latest of `points` (oldest first) in `(t - lookback, t]`; steps
    /// without one are left out. One pass over `points`.
    pub fn evaluate(&self, points: &[(i64, f64)], lookback: i64) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        let mut next = 0; // the first point after the step
        let mut t = self.start;
        while t <= self.end {
            while next < points.len() && points[next].0 <= t {
                next += 1;
            }
            if let Some(&(ts, v)) = next.checked_sub(1).map(|i| &points[i])
                && ts > t - lookback
            {
                out.push((t, v));
            }
            t += self.step;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_prometheus_takes_them() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("1700000000.1234"), Ok(1_700_000_000_123));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20.5Z"), Ok(1_700_000_000_500));
        assert_eq!(
            parse_time("2023-11-15T00:13:20.123456+02:00"),
            Ok(1_700_000_000_123)
        );
        assert_eq!(parse_time("2024-02-29T00:00:00Z"), Ok(1_709_164_800_000));
        for bad in [
            "",
            "now",
            "2023-11-14",
            "2023-11-14T22:13:20",
            "2023-13-01T00:00:00Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_as_prometheus_takes_them() {
        assert_eq!(parse_duration("15"), Ok(15_000));
        assert_eq!(parse_duration("0.5"), Ok(500));
        assert_eq!(parse_duration("15s"), Ok(15_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000));
        assert_eq!(parse_duration("1h"), Ok(3_600_000));
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn ranges_are_checked() {
        assert!(Steps::new(10, 9, 1).is_err());
        assert!(Steps::new(0, 10, 0).is_err());
        assert!(Steps::new(0, 10_999, 1).is_ok());
        let e = Steps::new(0, 11_000, 1).unwrap_err();
        assert!(e.contains("11,000"), "{e}");
    }

    #[test]
    fn each_step_takes_the_latest_point_within_the_lookback() {
        let points = [(1_000, 1.0), (2_000, 2.0), (2_500, 2.5), (9_000, 9.0)];
        let steps = Steps::new(0, 10_000, 1_000).unwrap();
        assert_eq!(
            steps.evaluate(&points, 3_000),
            [
                (1_000, 1.0),
                (2_000, 2.0),
                (3_000, 2.5),
                (4_000, 2.5),
                (5_000, 2.5), // 2_500 > 5_000 - 3_000
                // 6_000 - 3_000 = 3_000: nothing newer than that
                (9_000, 9.0),
                (10_000, 9.0),
            ]
        );
        // The window is open on the left: a point exactly one lookback old is too old.
        assert_eq!(
            Steps::new(4_000, 4_000, 1)
                .unwrap()
                .evaluate(&[(1_000, 1.0)], 3_000),
            []
        );
    }
}
