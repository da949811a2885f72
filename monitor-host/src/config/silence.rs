//! `[[silence]]` maintenance windows and `[[inhibit]]` rules.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::Ctx;
use crate::silence::{
    InhibitRule, MaintenanceWindow, Matcher, TimeInterval, WindowTime, check_matchers, day_range,
    month_range, parse_rfc3339, time_range, weekday_range, year_range,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSilence {
    name: Option<Spanned<String>>,
    matchers: Spanned<Vec<Spanned<String>>>,
    starts_at: Option<Spanned<String>>,
    ends_at: Option<Spanned<String>>,
    time_intervals: Option<Spanned<Vec<Spanned<RawTimeInterval>>>>,
    #[serde(default)]
    comment: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeInterval {
    times: Option<Vec<Spanned<RawTimeRange>>>,
    weekdays: Option<Vec<Spanned<String>>>,
    days_of_month: Option<Vec<Spanned<String>>>,
    months: Option<Vec<Spanned<String>>>,
    years: Option<Vec<Spanned<String>>>,
    location: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeRange {
    start_time: Spanned<String>,
    end_time: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInhibit {
    source_matchers: Spanned<Vec<Spanned<String>>>,
    target_matchers: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    equal: Vec<Spanned<String>>,
}

impl Ctx<'_> {
    fn matchers(&mut self, key: &str, list: &Spanned<Vec<Spanned<String>>>) -> Vec<Matcher> {
        let mut out = Vec::new();
        for m in list.get_ref() {
            match Matcher::parse(m.get_ref()) {
                Ok(m) => out.push(m),
                Err(e) => self.err(m.span(), format!("`{key}`: {e}")),
            }
        }
        out
    }

    /// Every `[[silence]]`; `None` for those with errors.
    pub(super) fn silences(&mut self, raw: Vec<Spanned<RawSilence>>) -> Vec<MaintenanceWindow> {
        let mut out: Vec<MaintenanceWindow> = Vec::new();
        for (i, s) in raw.into_iter().enumerate() {
            let span = s.span();
            let s = s.into_inner();
            let errors = self.errors.len();
            let matchers = self.matchers("matchers", &s.matchers);
            if matchers.len() == s.matchers.get_ref().len()
                && let Err(e) = check_matchers(&matchers)
            {
                self.err(s.matchers.span(), format!("`matchers`: {e}"));
            }
            let time = self.window_time(span, &s);
            let id = s
                .name
                .as_ref()
                .map_or_else(|| format!("config-{}", i + 1), |n| n.get_ref().clone());
            if let Some(n) = &s.name
                && out.iter().any(|w| w.id == id)
            {
                self.err(n.span(), format!("duplicate silence name `{id}`"));
            }
            if self.errors.len() == errors
                && let Some(time) = time
            {
                out.push(MaintenanceWindow {
                    id,
                    matchers,
                    time,
                    comment: s.comment,
                });
            }
        }
        out
    }

    fn window_time(&mut self, span: Range<usize>, s: &RawSilence) -> Option<WindowTime> {
        let fixed = s.starts_at.is_some() || s.ends_at.is_some();
        match (&s.time_intervals, fixed) {
            (Some(t), true) => {
                self.err(
                    t.span(),
                    "a [[silence]] has either `starts_at` and `ends_at` or `time_intervals`, not both",
                );
                None
            }
            (Some(t), false) => {
                let intervals: Vec<TimeInterval> = t
                    .get_ref()
                    .iter()
                    .map(|i| self.interval(i.get_ref()))
                    .collect();
                if intervals.is_empty() {
                    self.err(t.span(), "`time_intervals` is empty: give at least one");
                }
                Some(WindowTime::Recurring(intervals))
            }
            (None, true) => {
                let (Some(a), Some(b)) = (&s.starts_at, &s.ends_at) else {
                    self.err(
                        span,
                        "a [[silence]] with `starts_at` needs `ends_at`, and the reverse",
                    );
                    return None;
                };
                let mut time = |v: &Spanned<String>, key: &str| {
                    let t = parse_rfc3339(v.get_ref());
                    if t.is_none() {
                        self.err(
                            v.span(),
                            format!(
                                "`{key}`: invalid time `{}`: an RFC 3339 time such as 2026-01-02T03:04:05Z",
                                v.get_ref()
                            ),
                        );
                    }
                    t
                };
                let (starts_at_ms, ends_at_ms) = (time(a, "starts_at")?, time(b, "ends_at")?);
                if ends_at_ms <= starts_at_ms {
                    self.err(b.span(), "`ends_at` must be after `starts_at`");
                }
                Some(WindowTime::Fixed {
                    starts_at_ms,
                    ends_at_ms,
                })
            }
            (None, false) => {
                self.err(
                    span,
                    "a [[silence]] needs `starts_at` and `ends_at`, or `time_intervals`",
                );
                None
            }
        }
    }

    fn ranges<T>(
        &mut self,
        key: &str,
        list: &Option<Vec<Spanned<String>>>,
        parse: fn(&str) -> Result<T, String>,
    ) -> Vec<T> {
        let mut out = Vec::new();
        for v in list.iter().flatten() {
            match parse(v.get_ref()) {
                Ok(r) => out.push(r),
                Err(e) => self.err(v.span(), format!("`{key}`: {e}")),
            }
        }
        out
    }

    fn interval(&mut self, raw: &RawTimeInterval) -> TimeInterval {
        let mut times = Vec::new();
        for t in raw.times.iter().flatten() {
            let t = t.get_ref();
            match time_range(t.start_time.get_ref(), t.end_time.get_ref()) {
                Ok(r) => times.push(r),
                Err(e) => self.err(t.end_time.span(), format!("`times`: {e}")),
            }
        }
        let local = match &raw.location {
            None => false,
            Some(l) if l.get_ref() == "UTC" => false,
            Some(l) if l.get_ref() == "Local" => true,
            Some(l) => {
                self.err(
                    l.span(),
                    format!(
                        "`location` `{}` is not supported: use \"UTC\" or \"Local\" (the host's time zone)",
                        l.get_ref()
                    ),
                );
                false
            }
        };
        TimeInterval {
            times,
            weekdays: self.ranges("weekdays", &raw.weekdays, weekday_range),
            days_of_month: self.ranges("days_of_month", &raw.days_of_month, day_range),
            months: self.ranges("months", &raw.months, month_range),
            years: self.ranges("years", &raw.years, year_range),
            local,
        }
    }

    /// Every `[[inhibit]]`.
    pub(super) fn inhibits(&mut self, raw: Vec<Spanned<RawInhibit>>) -> Vec<InhibitRule> {
        let mut out = Vec::new();
        for r in raw {
            let r = r.into_inner();
            let errors = self.errors.len();
            let source = self.matchers("source_matchers", &r.source_matchers);
            let target = self.matchers("target_matchers", &r.target_matchers);
            let mut equal = Vec::new();
            for e in &r.equal {
                match Matcher::new(e.get_ref(), crate::silence::MatchOp::Equal, "") {
                    Ok(_) => equal.push(e.get_ref().clone()),
                    Err(m) => self.err(e.span(), format!("`equal`: {m}")),
                }
            }
            if self.errors.len() == errors {
                out.push(InhibitRule {
                    source,
                    target,
                    equal,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::Config;
    use crate::silence::WindowTime;

    fn errors(text: &str) -> Vec<String> {
        let e = Config::from_str(text, "monitor.toml", Path::new("/")).unwrap_err();
        e.0.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn windows_and_inhibit_rules_are_read() {
        let c = Config::from_str(
            r#"
[[silence]]
name = "sunday"
matchers = ['alertname=~"disk.*"', 'host="db1"']
time_intervals = [{ weekdays = ["sunday"], times = [{ start_time = "02:00", end_time = "04:00" }], location = "UTC" }]
comment = "backups"

[[silence]]
matchers = ['host="db2"']
starts_at = "2026-12-02T10:00:00Z"
ends_at = "2026-12-02T12:00:00Z"

[[inhibit]]
source_matchers = ['alertname="host_down"']
target_matchers = ['severity!="critical"']
equal = ["host"]
"#,
            "monitor.toml",
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(c.silences.len(), 2);
        assert_eq!(c.silences[0].id, "sunday");
        assert_eq!(c.silences[0].matchers.len(), 2);
        assert!(matches!(&c.silences[0].time, WindowTime::Recurring(i) if i.len() == 1));
        assert_eq!(c.silences[1].id, "config-2");
        assert!(matches!(
            c.silences[1].time,
            WindowTime::Fixed { starts_at_ms, ends_at_ms } if ends_at_ms - starts_at_ms == 7_200_000
        ));
        assert_eq!(c.inhibit.len(), 1);
        assert_eq!(c.inhibit[0].equal, ["host"]);
    }

    #[test]
    fn errors_are_located() {
        let e = errors(
            r#"[[silence]]
matchers = ['alertname=~"("']
starts_at = "2026-12-02T10:00:00Z"
ends_at = "yesterday"

[[silence]]
matchers = ['host="db1"']
time_intervals = [{ weekdays = ["funday"], times = [{ start_time = "22:00", end_time = "02:00" }], location = "Europe/Paris" }]

[[silence]]
matchers = ['host=~".*"']

[[inhibit]]
source_matchers = ['alertname=~"("']
target_matchers = ['alertname="x"']
equal = ["1bad"]
"#,
        );
        let joined = e.join("\n");
        for want in [
            "monitor.toml:2:13: `matchers`: invalid regular expression",
            "monitor.toml:4:11: `ends_at`: invalid time `yesterday`",
            "monitor.toml:8:33: `weekdays`: invalid weekday `funday`",
            "across midnight",
            "`location` `Europe/Paris` is not supported",
            "monitor.toml:11:12: `matchers`: at least one matcher must not match the empty string",
            "needs `starts_at` and `ends_at`, or `time_intervals`",
            "monitor.toml:14:20: `source_matchers`: invalid regular expression",
            "monitor.toml:16:10: `equal`: invalid label name `1bad`",
        ] {
            assert!(joined.contains(want), "missing {want:?} in:\n{joined}");
        }
    }
}
