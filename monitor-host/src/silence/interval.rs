//! Recurring time intervals, as Alertmanager's `time_intervals`: weekdays, times of day, days of
//! the month, months and years, each a list of ranges; a field left out matches always.
//!
//! A time range is `start_time`..`end_time` (`"HH:MM"`, end excluded, `"24:00"` allowed as an
//! end); a range across midnight is refused, as in Alertmanager: write two. Days of the month may
//! count from the end (`-1` is the last day). `location` is `UTC` (the default) or `Local`, the
//! host's time zone: named zones would need the tz database in the binary.

use chrono::{DateTime, Datelike, Local, NaiveDate, Timelike, Utc};

/// One `time_intervals` entry; it holds at a time when every field it has holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeInterval {
    /// Minutes of the day, `[start, end)`.
    pub times: Vec<(u32, u32)>,
    /// Days of the week, 0 = Sunday, both ends included.
    pub weekdays: Vec<(u32, u32)>,
    /// Days of the month, both ends included; negative counts from the end of the month.
    pub days_of_month: Vec<(i32, i32)>,
    /// Months, 1 = January, both ends included.
    pub months: Vec<(u32, u32)>,
    /// Years, both ends included.
    pub years: Vec<(i32, i32)>,
    /// The host's time zone instead of UTC.
    pub local: bool,
}

/// The parts of a date and time the fields look at.
struct Civil {
    minute_of_day: u32,
    weekday: u32,
    day: u32,
    days_in_month: u32,
    month: u32,
    year: i32,
}

fn civil<T: Datelike + Timelike>(t: &T) -> Civil {
    let (year, month) = (t.year(), t.month());
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    let first = NaiveDate::from_ymd_opt(year, month, 1);
    let days_in_month = match (first, next) {
        (Some(a), Some(b)) => (b - a).num_days() as u32,
        _ => 31,
    };
    Civil {
        minute_of_day: t.hour() * 60 + t.minute(),
        weekday: t.weekday().num_days_from_sunday(),
        day: t.day(),
        days_in_month,
        month,
        year,
    }
}

impl TimeInterval {
    /// Whether the interval holds at `ms` (ms since the Unix epoch).
    pub fn contains(&self, ms: u64) -> bool {
        let Some(utc) = DateTime::<Utc>::from_timestamp_millis(ms.min(i64::MAX as u64) as i64)
        else {
            return false;
        };
        let c = if self.local {
            civil(&utc.with_timezone(&Local))
        } else {
            civil(&utc)
        };
        let any = |ranges: &[(u32, u32)], v: u32| {
            ranges.is_empty() || ranges.iter().any(|&(a, b)| a <= v && v <= b)
        };
        let day_ok = self.days_of_month.is_empty()
            || self.days_of_month.iter().any(|&(a, b)| {
                let resolve = |d: i32| {
                    if d < 0 {
                        c.days_in_month as i32 + 1 + d
                    } else {
                        d
                    }
                };
                (resolve(a)..=resolve(b)).contains(&(c.day as i32))
            });
        (self.times.is_empty()
            || (self.times.iter()).any(|&(a, b)| a <= c.minute_of_day && c.minute_of_day < b))
            && any(&self.weekdays, c.weekday)
            && day_ok
            && any(&self.months, c.month)
            && (self.years.is_empty()
                || self.years.iter().any(|&(a, b)| a <= c.year && c.year <= b))
    }
}

/// `"HH:MM"` to minutes of the day; `"24:00"` only as an end.
fn minutes(text: &str, end: bool) -> Result<u32, String> {
    let bad = || format!("invalid time `{text}`: write it as \"HH:MM\", from 00:00 to 24:00");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m > 59 || h > 24 || (h == 24 && (m != 0 || !end)) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// A `times` entry: minutes `[start, end)`.
///
/// # Errors
///
/// A bad time, or an end not after the start (across midnight is two ranges).
pub fn time_range(start: &str, end: &str) -> Result<(u32, u32), String> {
    let (a, b) = (minutes(start, false)?, minutes(end, true)?);
    if b <= a {
        return Err(format!(
            "`end_time` {end} must be after `start_time` {start}: a range across midnight is \
             written as two, one ending at 24:00 and one starting at 00:00"
        ));
    }
    Ok((a, b))
}

fn range<T: Copy + PartialOrd>(
    text: &str,
    one: impl Fn(&str) -> Option<T>,
    what: &str,
) -> Result<(T, T), String> {
    let bad = |part: &str| format!("invalid {what} `{part}` in `{text}`");
    let (a, b) = match text.split_once(':') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (text.trim(), text.trim()),
    };
    let (x, y) = (one(a).ok_or_else(|| bad(a))?, one(b).ok_or_else(|| bad(b))?);
    if y < x {
        return Err(format!("{what} range `{text}` ends before it starts"));
    }
    Ok((x, y))
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// A `weekdays` entry: `"monday"` or `"monday:friday"`.
///
/// # Errors
///
/// Not a day name, or a range that ends before it starts.
pub fn weekday_range(text: &str) -> Result<(u32, u32), String> {
    range(
        text,
        |s| {
            (WEEKDAYS.iter())
                .position(|d| d.eq_ignore_ascii_case(s))
                .map(|i| i as u32)
        },
        "weekday",
    )
}

/// A `months` entry: `"january:march"`, `"1:3"`, `"december"`.
///
/// # Errors
///
/// Not a month, or a range that ends before it starts.
pub fn month_range(text: &str) -> Result<(u32, u32), String> {
    range(
        text,
        |s| {
            (MONTHS.iter())
                .position(|m| m.eq_ignore_ascii_case(s))
                .map(|i| i as u32 + 1)
                .or_else(|| s.parse().ok().filter(|m| (1..=12).contains(m)))
        },
        "month",
    )
}

/// A `days_of_month` entry: `"1:5"`, `"-3:-1"`, `"15"`; from 1 to 31 or -31 to -1.
///
/// # Errors
///
/// Out of range, 0, mixed signs that end before they start.
pub fn day_range(text: &str) -> Result<(i32, i32), String> {
    let one = |s: &str| {
        s.parse::<i32>()
            .ok()
            .filter(|d| (1..=31).contains(d) || (-31..=-1).contains(d))
    };
    let (a, b) = match text.split_once(':') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (text.trim(), text.trim()),
    };
    let bad = |part: &str| {
        format!("invalid day of month `{part}` in `{text}`: 1 to 31, or -31 to -1 from the end")
    };
    let (x, y) = (one(a).ok_or_else(|| bad(a))?, one(b).ok_or_else(|| bad(b))?);
    // Same-sign ranges must be in order; a positive start with a negative end is checked per month.
    if x.signum() == y.signum() && y < x {
        return Err(format!("day of month range `{text}` ends before it starts"));
    }
    if x < 0 && y > 0 {
        return Err(format!(
            "day of month range `{text}` starts from the end and ends from the start"
        ));
    }
    Ok((x, y))
}

/// A `years` entry: `"2026"` or `"2026:2028"`.
///
/// # Errors
///
/// Not a year, or a range that ends before it starts.
pub fn year_range(text: &str) -> Result<(i32, i32), String> {
    range(text, |s| s.parse().ok().filter(|y| *y > 0), "year")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ms since epoch of a UTC date and time.
    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> u64 {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis() as u64
    }

    fn sunday_night() -> TimeInterval {
        TimeInterval {
            weekdays: vec![weekday_range("sunday").unwrap()],
            times: vec![time_range("02:00", "04:00").unwrap()],
            ..TimeInterval::default()
        }
    }

    #[test]
    fn a_sunday_window_from_two_to_four() {
        let w = sunday_night();
        // 2026-12-06 is a Sunday.
        assert!(w.contains(at(2026, 12, 6, 2, 0)), "start included");
        assert!(w.contains(at(2026, 12, 6, 3, 59)));
        assert!(!w.contains(at(2026, 12, 6, 4, 0)), "end excluded");
        assert!(!w.contains(at(2026, 12, 6, 1, 59)));
        assert!(!w.contains(at(2026, 12, 7, 3, 0)), "a Monday");
        assert!(!w.contains(at(2026, 12, 5, 3, 0)), "a Saturday");
        assert!(w.contains(at(2026, 12, 13, 3, 0)), "the next Sunday");
    }

    #[test]
    fn across_midnight_is_refused_as_in_alertmanager() {
        let e = time_range("22:00", "02:00").unwrap_err();
        assert!(e.contains("across midnight"), "{e}");
        assert!(time_range("02:00", "02:00").is_err());
        assert_eq!(time_range("22:00", "24:00").unwrap(), (1320, 1440));
        assert!(time_range("24:00", "24:00").is_err());
        for bad in ["2:00", "02:60", "25:00", "0200", "ab:cd"] {
            assert!(time_range(bad, "23:00").is_err(), "{bad}");
        }
    }

    #[test]
    fn weekday_month_day_and_year_ranges() {
        let weekdays = TimeInterval {
            weekdays: vec![weekday_range("monday:friday").unwrap()],
            ..TimeInterval::default()
        };
        assert!(weekdays.contains(at(2026, 12, 7, 12, 0)));
        assert!(!weekdays.contains(at(2026, 12, 6, 12, 0)));
        let last_days = TimeInterval {
            days_of_month: vec![day_range("-2:-1").unwrap()],
            months: vec![month_range("february").unwrap()],
            years: vec![year_range("2026:2027").unwrap()],
            ..TimeInterval::default()
        };
        assert!(last_days.contains(at(2026, 2, 28, 0, 0)));
        assert!(last_days.contains(at(2026, 2, 27, 0, 0)));
        assert!(!last_days.contains(at(2026, 2, 26, 0, 0)));
        assert!(!last_days.contains(at(2026, 3, 30, 0, 0)), "not February");
        assert!(
            !last_days.contains(at(2028, 2, 28, 0, 0)),
            "not those years"
        );
        assert_eq!(month_range("1:3").unwrap(), (1, 3));
        assert!(month_range("march:january").is_err());
        assert!(weekday_range("funday").is_err());
        assert!(day_range("0").is_err());
        assert!(day_range("32").is_err());
        assert!(day_range("5:1").is_err());
        assert!(year_range("2027:2026").is_err());
    }

    #[test]
    fn an_empty_interval_always_holds() {
        assert!(TimeInterval::default().contains(at(2026, 1, 1, 0, 0)));
    }
}
