//! Silences, maintenance windows and inhibition, with Alertmanager's semantics.
//!
//! A silence mutes the alert instances whose labels (the series' labels, `alertname` and
//! `severity`) all its matchers match, from `starts_at` to `ends_at`; it is created at run time
//! (`POST /api/silences`) and kept in the store, or declared in the config as a `[[silence]]`
//! maintenance window (fixed times or recurring `time_intervals`). An inhibition rule mutes the
//! alerts matching its target while an alert matching its source fires with the same values of
//! the `equal` labels. A muted alert is still evaluated and shown, but notifies no one and is not
//! healed (see the engine's cycle).

pub mod api;
mod interval;
mod matcher;

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use monitor_plugin::Labels;
use serde::{Deserialize, Serialize};

pub use self::interval::{
    TimeInterval, day_range, month_range, time_range, weekday_range, year_range,
};
pub use self::matcher::{MatchOp, Matcher, all_match};
use crate::alert::AlertKey;

/// Where a silence stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    /// Not started yet.
    Pending,
    /// In effect.
    Active,
    /// Over.
    Expired,
}

/// A silence created at run time.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    /// A random UUID (version 4), as Alertmanager's.
    pub id: String,
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// Start, ms since epoch.
    pub starts_at_ms: u64,
    /// End, ms since epoch (excluded).
    pub ends_at_ms: u64,
    /// Who created it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// Last created, changed or expired, ms since epoch.
    pub updated_at_ms: u64,
}

impl Silence {
    /// Its state at `now_ms`.
    pub fn state(&self, now_ms: u64) -> SilenceState {
        if now_ms < self.starts_at_ms {
            SilenceState::Pending
        } else if now_ms >= self.ends_at_ms {
            SilenceState::Expired
        } else {
            SilenceState::Active
        }
    }
}

/// When a `[[silence]]` of the config holds.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowTime {
    /// From `starts_at` to `ends_at`, ms since epoch.
    Fixed {
        /// Start.
        starts_at_ms: u64,
        /// End, excluded.
        ends_at_ms: u64,
    },
    /// Whenever one of these holds.
    Recurring(Vec<TimeInterval>),
}

/// A `[[silence]]` maintenance window of the config.
#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceWindow {
    /// `name = "..."`, or `config-N` for the N-th `[[silence]]` of the file.
    pub id: String,
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// When.
    pub time: WindowTime,
    /// `comment = "..."`.
    pub comment: String,
}

impl MaintenanceWindow {
    /// Its state at `now_ms`: a recurring window is active inside one of its intervals and
    /// pending otherwise.
    pub fn state(&self, now_ms: u64) -> SilenceState {
        match &self.time {
            WindowTime::Fixed {
                starts_at_ms,
                ends_at_ms,
            } => Silence {
                id: String::new(),
                matchers: Vec::new(),
                starts_at_ms: *starts_at_ms,
                ends_at_ms: *ends_at_ms,
                created_by: String::new(),
                comment: String::new(),
                updated_at_ms: 0,
            }
            .state(now_ms),
            WindowTime::Recurring(intervals) => {
                if intervals.iter().any(|i| i.contains(now_ms)) {
                    SilenceState::Active
                } else {
                    SilenceState::Pending
                }
            }
        }
    }
}

/// An `[[inhibit]]` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct InhibitRule {
    /// What the inhibiting alert matches.
    pub source: Vec<Matcher>,
    /// What the inhibited alerts match.
    pub target: Vec<Matcher>,
    /// Labels that must have the same value in both (a label missing from both is equal).
    pub equal: Vec<String>,
}

impl InhibitRule {
    /// Whether the firing alert `source` inhibits `target` by this rule. As Alertmanager, an
    /// alert that matches both sides is only inhibited by sources that do not match the target
    /// side, so it never inhibits itself and two such alerts do not inhibit each other.
    pub fn inhibits(&self, source: &Labels, target: &Labels) -> bool {
        if !all_match(&self.target, target) || !all_match(&self.source, source) {
            return false;
        }
        if all_match(&self.source, target) && all_match(&self.target, source) {
            return false;
        }
        self.equal_values(source) == self.equal_values(target)
    }

    /// The values of the `equal` labels in `labels`, in their order; a missing label is empty.
    fn equal_values<'l>(&self, labels: &'l Labels) -> Vec<&'l str> {
        (self.equal.iter())
            .map(|k| labels.get(k).map_or("", String::as_str))
            .collect()
    }
}

/// Why an alert instance is muted; empty when it is not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Mute {
    /// The ids of the silences and windows in effect that match it.
    pub silenced_by: Vec<String>,
    /// The firing alerts that inhibit it, as `name{labels}`.
    pub inhibited_by: Vec<String>,
}

impl Mute {
    /// Silenced or inhibited.
    pub fn muted(&self) -> bool {
        !self.silenced_by.is_empty() || !self.inhibited_by.is_empty()
    }
}

/// The silences and windows in effect, and the inhibition rules.
#[derive(Debug, Clone, Default)]
pub struct Silences {
    api: Vec<Silence>,
    windows: Vec<MaintenanceWindow>,
    inhibit: Vec<InhibitRule>,
}

/// Why a silence could not be expired.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpireError {
    /// No silence has that id.
    #[error("no silence `{0}`; see GET /api/silences")]
    NotFound(String),
    /// It is over already.
    #[error("silence `{0}` is already expired")]
    AlreadyExpired(String),
    /// It is a `[[silence]]` of the config.
    #[error("silence `{0}` is a [[silence]] of the config; remove it there and reload")]
    Config(String),
}

impl Silences {
    /// The config's `[[silence]]` windows and `[[inhibit]]` rules, replacing earlier ones (a
    /// reload).
    pub fn configure(&mut self, windows: Vec<MaintenanceWindow>, inhibit: Vec<InhibitRule>) {
        self.windows = windows;
        self.inhibit = inhibit;
    }

    /// Silences created at run time, as the store kept them.
    pub fn restore(&mut self, saved: Vec<Silence>) {
        self.api = saved;
    }

    /// Adds `s`, or replaces the silence of the same id.
    pub fn upsert(&mut self, s: Silence) {
        match self.api.iter_mut().find(|o| o.id == s.id) {
            Some(o) => *o = s,
            None => self.api.push(s),
        }
    }

    /// A silence created at run time, by id.
    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.api.iter().find(|s| s.id == id)
    }

    /// Ends the silence `id` at `now_ms` (a pending one never starts); returns it as it is now.
    ///
    /// # Errors
    ///
    /// Unknown, already expired, or a window of the config.
    pub fn expire(&mut self, id: &str, now_ms: u64) -> Result<Silence, ExpireError> {
        if self.windows.iter().any(|w| w.id == id) {
            return Err(ExpireError::Config(id.to_owned()));
        }
        let s = (self.api.iter_mut())
            .find(|s| s.id == id)
            .ok_or_else(|| ExpireError::NotFound(id.to_owned()))?;
        match s.state(now_ms) {
            SilenceState::Expired => return Err(ExpireError::AlreadyExpired(id.to_owned())),
            SilenceState::Pending => s.starts_at_ms = now_ms,
            SilenceState::Active => {}
        }
        s.ends_at_ms = now_ms;
        s.updated_at_ms = now_ms;
        Ok(s.clone())
    }

    /// Forgets the silences that ended before `horizon_ms`.
    pub fn prune(&mut self, horizon_ms: u64) {
        self.api.retain(|s| s.ends_at_ms >= horizon_ms);
    }

    /// The ids of the silences and windows in effect at `now_ms` that match `labels`.
    pub fn silenced_by(&self, labels: &Labels, now_ms: u64) -> Vec<String> {
        let api = (self.api.iter())
            .filter(|s| s.state(now_ms) == SilenceState::Active && all_match(&s.matchers, labels))
            .map(|s| s.id.clone());
        let windows = (self.windows.iter())
            .filter(|w| w.state(now_ms) == SilenceState::Active && all_match(&w.matchers, labels))
            .map(|w| w.id.clone());
        api.chain(windows).collect()
    }

    /// Whether anything can mute an alert: a silence or window (in effect or not) or an
    /// inhibition rule.
    pub fn can_mute(&self) -> bool {
        !(self.api.is_empty() && self.windows.is_empty() && self.inhibit.is_empty())
    }

    /// Why each of the `firing` alert instances (with their alert labels: the series' labels,
    /// `alertname` and `severity`) is muted at `now_ms`; instances that are not are left out.
    ///
    /// The sources of each inhibition rule are grouped by their `equal` labels' values first,
    /// so a target meets only the sources that share them, not every firing alert.
    pub fn mutes(&self, firing: &[(AlertKey, Labels)], now_ms: u64) -> BTreeMap<AlertKey, Mute> {
        let mut out = BTreeMap::new();
        if !self.can_mute() {
            return out;
        }
        let sources: Vec<HashMap<Vec<&str>, Vec<usize>>> = (self.inhibit.iter())
            .map(|r| {
                let mut by: HashMap<Vec<&str>, Vec<usize>> = HashMap::new();
                for (i, (_, labels)) in firing.iter().enumerate() {
                    if all_match(&r.source, labels) {
                        by.entry(r.equal_values(labels)).or_default().push(i);
                    }
                }
                by
            })
            .collect();
        for (i, (key, labels)) in firing.iter().enumerate() {
            let mut by: Vec<usize> = Vec::new();
            for (r, sources) in self.inhibit.iter().zip(&sources) {
                if sources.is_empty() || !all_match(&r.target, labels) {
                    continue;
                }
                let Some(candidates) = sources.get(&r.equal_values(labels)) else {
                    continue;
                };
                by.extend(
                    (candidates.iter().copied())
                        .filter(|&j| j != i && r.inhibits(&firing[j].1, labels)),
                );
            }
            by.sort_unstable();
            by.dedup();
            let mute = Mute {
                silenced_by: self.silenced_by(labels, now_ms),
                inhibited_by: by.into_iter().map(|j| describe(&firing[j].0)).collect(),
            };
            if mute.muted() {
                out.insert(key.clone(), mute);
            }
        }
        out
    }

    /// Every silence and window, with its state at `now_ms`, in Alertmanager's v2 shape.
    pub fn list(&self, now_ms: u64) -> Vec<SilenceView> {
        let api = self.api.iter().map(|s| SilenceView::of(s, now_ms));
        let windows = self.windows.iter().map(|w| {
            let (starts, ends) = match &w.time {
                WindowTime::Fixed {
                    starts_at_ms,
                    ends_at_ms,
                } => (Some(rfc3339(*starts_at_ms)), Some(rfc3339(*ends_at_ms))),
                WindowTime::Recurring(_) => (None, None),
            };
            SilenceView {
                id: w.id.clone(),
                status: Status {
                    state: w.state(now_ms),
                },
                updated_at: None,
                matchers: w.matchers.iter().map(MatcherView::of).collect(),
                starts_at: starts,
                ends_at: ends,
                created_by: "config".into(),
                comment: w.comment.clone(),
                source: "config",
            }
        });
        api.chain(windows).collect()
    }
}

/// `name{k="v", ...}`: an alert instance in messages and `inhibited_by`.
pub fn describe((alert, labels): &AlertKey) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{alert}{{{}}}", inner.join(", "))
}

/// A time as RFC 3339 with milliseconds, in UTC.
pub fn rfc3339(ms: u64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms.min(i64::MAX as u64) as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An RFC 3339 time to ms since epoch; `None` when it is not one or before 1970.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let t = DateTime::parse_from_rfc3339(text.trim()).ok()?;
    u64::try_from(t.timestamp_millis()).ok()
}

/// A random version-4 UUID, from the system's secure generator.
pub fn new_id() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    // The system generator failing leaves zeros; the time keeps ids apart then.
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        b[..8].copy_from_slice(&crate::engine::now_ms().to_be_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A matcher in Alertmanager's v2 JSON shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatcherView {
    /// Label name.
    pub name: String,
    /// Value or regular expression.
    pub value: String,
    /// `=~` or `!~`.
    pub is_regex: bool,
    /// `=` or `=~`; absent means `true`.
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl MatcherView {
    fn of(m: &Matcher) -> Self {
        Self {
            name: m.name.clone(),
            value: m.value.clone(),
            is_regex: m.op.is_regex(),
            is_equal: m.op.is_equal(),
        }
    }
}

/// `status` of a listed silence.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// `active`, `pending` or `expired`.
    pub state: SilenceState,
}

/// A silence as `GET /api/silences` lists it: Alertmanager's `gettableSilence`, and `source`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SilenceView {
    /// The id.
    pub id: String,
    /// Its state now.
    pub status: Status,
    /// Last change (absent for the config's windows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Matchers.
    pub matchers: Vec<MatcherView>,
    /// Start (absent for a recurring window).
    pub starts_at: Option<String>,
    /// End (absent for a recurring window).
    pub ends_at: Option<String>,
    /// Author.
    pub created_by: String,
    /// Comment.
    pub comment: String,
    /// `api` or `config`.
    pub source: &'static str,
}

impl SilenceView {
    fn of(s: &Silence, now_ms: u64) -> Self {
        Self {
            id: s.id.clone(),
            status: Status {
                state: s.state(now_ms),
            },
            updated_at: Some(rfc3339(s.updated_at_ms)),
            matchers: s.matchers.iter().map(MatcherView::of).collect(),
            starts_at: Some(rfc3339(s.starts_at_ms)),
            ends_at: Some(rfc3339(s.ends_at_ms)),
            created_by: s.created_by.clone(),
            comment: s.comment.clone(),
            source: "api",
        }
    }
}

/// The body of `POST /api/silences`: Alertmanager's `postableSilence`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostableSilence {
    /// Set to change an existing silence.
    #[serde(default)]
    pub id: Option<String>,
    /// At least one.
    pub matchers: Vec<MatcherView>,
    /// RFC 3339; now when absent.
    #[serde(default)]
    pub starts_at: Option<String>,
    /// RFC 3339.
    pub ends_at: String,
    /// Author.
    #[serde(default)]
    pub created_by: String,
    /// Why.
    #[serde(default)]
    pub comment: String,
}

/// Why a posted silence was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks matchers as Alertmanager does: at least one, and not all of them matching the empty
/// string (a silence that would mute every alert is refused).
///
/// # Errors
///
/// Why not.
pub fn check_matchers(matchers: &[Matcher]) -> Result<(), String> {
    if matchers.is_empty() {
        return Err("a silence needs at least one matcher".into());
    }
    if matchers.iter().all(|m| m.matches(&Labels::new())) {
        return Err(
            "at least one matcher must not match the empty string (such a silence would mute every alert)"
                .into(),
        );
    }
    Ok(())
}

impl PostableSilence {
    /// Parses and checks a posted body at `now_ms`; `id` names the new silence unless the body
    /// names an existing one.
    ///
    /// # Errors
    ///
    /// Not JSON of that shape, a bad matcher or time, an end not after the start or in the past.
    pub fn parse(body: &[u8], now_ms: u64, id: String) -> Result<Silence, Invalid> {
        let p: Self =
            serde_json::from_slice(body).map_err(|e| Invalid(format!("invalid silence: {e}")))?;
        let matchers = (p.matchers.iter())
            .map(|m| {
                Matcher::new(
                    &m.name,
                    MatchOp::from_flags(m.is_regex, m.is_equal),
                    &m.value,
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(Invalid)?;
        check_matchers(&matchers).map_err(Invalid)?;
        let time = |key: &str, v: &str| {
            parse_rfc3339(v).ok_or_else(|| {
                Invalid(format!(
                    "invalid `{key}` {v:?}: an RFC 3339 time such as 2026-01-02T03:04:05Z"
                ))
            })
        };
        let starts_at_ms = match &p.starts_at {
            Some(s) => time("startsAt", s)?,
            None => now_ms,
        };
        let ends_at_ms = time("endsAt", &p.ends_at)?;
        if ends_at_ms <= starts_at_ms {
            return Err(Invalid("`endsAt` must be after `startsAt`".into()));
        }
        if ends_at_ms <= now_ms {
            return Err(Invalid("`endsAt` is in the past".into()));
        }
        Ok(Silence {
            id: p.id.filter(|i| !i.is_empty()).unwrap_or(id),
            matchers,
            // A start in the past is now: the silence does not act before it was created.
            starts_at_ms: starts_at_ms.max(now_ms),
            ends_at_ms,
            created_by: p.created_by,
            comment: p.comment,
            updated_at_ms: now_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn key(alert: &str, host: &str) -> (AlertKey, Labels) {
        let series = labels(&[("host", host)]);
        let mut full = series.clone();
        full.insert("alertname".into(), alert.into());
        ((alert.to_owned(), series), full)
    }

    fn silence(matchers: &[&str], start: u64, end: u64) -> Silence {
        Silence {
            id: new_id(),
            matchers: matchers
                .iter()
                .map(|m| Matcher::parse(m).unwrap())
                .collect(),
            starts_at_ms: start,
            ends_at_ms: end,
            created_by: "me".into(),
            comment: String::new(),
            updated_at_ms: start,
        }
    }

    #[test]
    fn states_follow_the_clock() {
        let s = silence(&["alertname=x"], 1_000, 2_000);
        assert_eq!(s.state(999), SilenceState::Pending);
        assert_eq!(s.state(1_000), SilenceState::Active);
        assert_eq!(s.state(1_999), SilenceState::Active);
        assert_eq!(s.state(2_000), SilenceState::Expired);
    }

    #[test]
    fn a_silence_matches_when_all_its_matchers_do_while_active() {
        let mut set = Silences::default();
        let s = silence(&[r#"alertname=~"disk.*""#, r#"host="db1""#], 1_000, 2_000);
        let id = s.id.clone();
        set.upsert(s);
        let (_, disk_db1) = key("disk_full", "db1");
        let (_, disk_db2) = key("disk_full", "db2");
        let (_, cpu_db1) = key("cpu_high", "db1");
        assert_eq!(set.silenced_by(&disk_db1, 1_500), vec![id.clone()]);
        assert!(set.silenced_by(&disk_db2, 1_500).is_empty());
        assert!(set.silenced_by(&cpu_db1, 1_500).is_empty());
        assert!(set.silenced_by(&disk_db1, 500).is_empty(), "pending");
        assert!(set.silenced_by(&disk_db1, 2_000).is_empty(), "expired");
        let expired = set.expire(&id, 1_600).unwrap();
        assert_eq!(expired.ends_at_ms, 1_600);
        assert!(set.silenced_by(&disk_db1, 1_600).is_empty());
        assert_eq!(
            set.expire(&id, 1_700),
            Err(ExpireError::AlreadyExpired(id.clone()))
        );
        assert!(matches!(
            set.expire("nope", 0),
            Err(ExpireError::NotFound(_))
        ));
        set.prune(1_601);
        assert!(set.get(&id).is_none(), "pruned past the horizon");
    }

    #[test]
    fn expiring_a_pending_silence_means_it_never_starts() {
        let mut set = Silences::default();
        let s = silence(&["alertname=x"], 5_000, 9_000);
        let id = s.id.clone();
        set.upsert(s);
        let e = set.expire(&id, 1_000).unwrap();
        assert_eq!((e.starts_at_ms, e.ends_at_ms), (1_000, 1_000));
        assert!(
            set.silenced_by(&labels(&[("alertname", "x")]), 6_000)
                .is_empty()
        );
    }

    #[test]
    fn recurring_windows_from_the_config() {
        let mut set = Silences::default();
        let w = MaintenanceWindow {
            id: "sunday".into(),
            matchers: vec![Matcher::parse(r#"host="db1""#).unwrap()],
            time: WindowTime::Recurring(vec![TimeInterval {
                weekdays: vec![weekday_range("sunday").unwrap()],
                times: vec![time_range("02:00", "04:00").unwrap()],
                ..TimeInterval::default()
            }]),
            comment: String::new(),
        };
        set.configure(vec![w], Vec::new());
        let (_, l) = key("disk_full", "db1");
        // 2026-12-06T03:00:00Z, a Sunday; the day after.
        let sunday = 1_796_526_000_000;
        assert_eq!(rfc3339(sunday), "2026-12-06T03:00:00.000Z");
        assert_eq!(set.silenced_by(&l, sunday), vec!["sunday".to_owned()]);
        assert!(set.silenced_by(&l, sunday + 86_400_000).is_empty());
        assert_eq!(
            set.expire("sunday", 0),
            Err(ExpireError::Config("sunday".into()))
        );
        assert_eq!(set.list(sunday)[0].status.state, SilenceState::Active);
    }

    #[test]
    fn inhibition_needs_a_firing_source_with_equal_labels() {
        let rule = InhibitRule {
            source: vec![Matcher::parse("alertname=host_down").unwrap()],
            target: vec![Matcher::parse(r#"alertname=~"disk.*|cpu.*""#).unwrap()],
            equal: vec!["host".into()],
        };
        let mut set = Silences::default();
        set.configure(Vec::new(), vec![rule]);
        let down = key("host_down", "db1");
        let disk1 = key("disk_full", "db1");
        let disk2 = key("disk_full", "db2");
        let mutes = set.mutes(&[down.clone(), disk1.clone(), disk2.clone()], 0);
        assert_eq!(
            mutes.get(&disk1.0).map(|m| m.inhibited_by.clone()),
            Some(vec![r#"host_down{host="db1"}"#.to_owned()])
        );
        assert!(!mutes.contains_key(&disk2.0), "another host");
        assert!(!mutes.contains_key(&down.0), "the source itself");
        // Without the source firing, nothing is inhibited.
        assert!(set.mutes(&[disk1.clone(), disk2], 0).is_empty());
    }

    #[test]
    fn an_alert_does_not_inhibit_itself_nor_its_twins() {
        let rule = InhibitRule {
            source: vec![Matcher::parse(r#"alertname=~".+""#).unwrap()],
            target: vec![Matcher::parse(r#"alertname=~".+""#).unwrap()],
            equal: vec![],
        };
        let mut set = Silences::default();
        set.configure(Vec::new(), vec![rule.clone()]);
        let a = key("a", "h");
        let b = key("b", "h");
        assert!(set.mutes(std::slice::from_ref(&a), 0).is_empty());
        assert!(set.mutes(&[a.clone(), b.clone()], 0).is_empty());
        assert!(!rule.inhibits(&a.1, &a.1));
    }

    #[test]
    fn inhibitors_are_listed_once_in_firing_order_across_rules() {
        let by_host = InhibitRule {
            source: vec![Matcher::parse(r#"alertname=~"host_down|rack_down""#).unwrap()],
            target: vec![Matcher::parse("alertname=disk_full").unwrap()],
            equal: vec!["host".into()],
        };
        let any = InhibitRule {
            source: vec![Matcher::parse("alertname=host_down").unwrap()],
            target: vec![Matcher::parse("alertname=disk_full").unwrap()],
            equal: vec![],
        };
        let mut set = Silences::default();
        set.configure(Vec::new(), vec![by_host, any]);
        let rack = key("rack_down", "db1");
        let down2 = key("host_down", "db2");
        let down1 = key("host_down", "db1");
        let disk1 = key("disk_full", "db1");
        let firing = [rack, down2, disk1.clone(), down1];
        let mutes = set.mutes(&firing, 0);
        assert_eq!(
            mutes.get(&disk1.0).map(|m| m.inhibited_by.clone()),
            Some(vec![
                r#"rack_down{host="db1"}"#.to_owned(),
                r#"host_down{host="db2"}"#.to_owned(),
                r#"host_down{host="db1"}"#.to_owned(),
            ]),
            "db1's rack and host by the first rule, any host down by the second, each once"
        );
        assert_eq!(mutes.len(), 1);
    }

    #[test]
    fn equal_labels_missing_from_both_are_equal() {
        let rule = InhibitRule {
            source: vec![Matcher::parse("alertname=a").unwrap()],
            target: vec![Matcher::parse("alertname=b").unwrap()],
            equal: vec!["zone".into()],
        };
        let a = labels(&[("alertname", "a")]);
        let b = labels(&[("alertname", "b")]);
        assert!(rule.inhibits(&a, &b));
        let bz = labels(&[("alertname", "b"), ("zone", "z")]);
        assert!(!rule.inhibits(&a, &bz));
    }

    #[test]
    fn a_posted_silence_is_checked() {
        let now = parse_rfc3339("2026-12-02T10:00:00Z").unwrap();
        let ok = br#"{"matchers":[{"name":"alertname","value":"x","isRegex":false,"isEqual":true}],
            "startsAt":"2026-12-02T10:00:00Z","endsAt":"2026-12-02T12:00:00Z","createdBy":"ann","comment":"deploy"}"#;
        let s = PostableSilence::parse(ok, now, "id1".into()).unwrap();
        assert_eq!(s.id, "id1");
        assert_eq!(s.ends_at_ms - s.starts_at_ms, 2 * 3_600_000);
        assert_eq!(s.matchers[0].to_string(), r#"alertname="x""#);
        for (body, why) in [
            (&b"{"[..], "invalid silence"),
            (br#"{"matchers":[],"endsAt":"2026-12-02T12:00:00Z"}"#, "at least one matcher"),
            (
                br#"{"matchers":[{"name":"a","value":".*","isRegex":true}],"endsAt":"2026-12-02T12:00:00Z"}"#,
                "empty string",
            ),
            (
                br#"{"matchers":[{"name":"a","value":"(","isRegex":true}],"endsAt":"2026-12-02T12:00:00Z"}"#,
                "invalid regular expression",
            ),
            (
                br#"{"matchers":[{"name":"a","value":"x","isRegex":false}],"endsAt":"tomorrow"}"#,
                "invalid `endsAt`",
            ),
            (
                br#"{"matchers":[{"name":"a","value":"x","isRegex":false}],"startsAt":"2026-12-02T13:00:00Z","endsAt":"2026-12-02T12:00:00Z"}"#,
                "after `startsAt`",
            ),
            (
                br#"{"matchers":[{"name":"a","value":"x","isRegex":false}],"startsAt":"2026-12-02T08:00:00Z","endsAt":"2026-12-02T09:00:00Z"}"#,
                "in the past",
            ),
            (
                br#"{"matchers":[{"name":"a","value":"x","isRegex":false}],"endsAt":"2026-12-02T12:00:00Z","extra":1}"#,
                "unknown field",
            ),
        ] {
            let e = PostableSilence::parse(body, now, "id".into()).unwrap_err();
            assert!(e.0.contains(why), "{}: {e}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn ids_are_version_4_uuids() {
        let a = new_id();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, new_id());
    }
}
