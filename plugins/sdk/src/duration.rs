//! Durations written as in the host's config (`"500ms"`, `"10s"`, `"1m30s"`), for plugin configs.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The longest duration accepted anywhere a duration is configured (the host's config and plugin
/// configs): 10 years (3650 days). Anything longer is refused when the config is read, so that no
/// configured duration can overflow a deadline or a conversion to milliseconds later.
pub const MAX_DURATION: Duration = Duration::from_secs(3650 * 86_400);

fn too_long(what: impl fmt::Display) -> String {
    format!("invalid duration {what}: longer than the maximum of 10 years (3650d)")
}

/// Parses a duration such as `"500ms"`, `"10s"`, `"5m"`, `"1h"`, `"1d"` or `"1m30s"`: numbers each
/// followed by a unit (`ms`, `s`, `m`, `h`, `d`), added up. The host reads its own config with the
/// same function, so plugin configs accept exactly what the host accepts.
///
/// # Errors
///
/// A message quoting the text and saying what is accepted.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(monitor_plugin::parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert!(monitor_plugin::parse_duration("10 seconds").is_err());
/// assert!(monitor_plugin::parse_duration("3651d").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration `{s}`: use a number and a unit (ms, s, m, h, d), e.g. \"10s\" or \"1m30s\""
        )
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        // Digits beyond u64 are longer than the maximum anyway.
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| too_long(format_args!("`{s}`")))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86_400)),
            _ => return Err(bad()),
        };
        total = total.saturating_add(d);
    }
    if total > MAX_DURATION {
        return Err(too_long(format_args!("`{s}`")));
    }
    Ok(total)
}

/// A duration in a plugin's config: a string as in the host's config (`"30s"`, `"1m30s"`), or a
/// plain number of seconds (`30`, `0.5`) for configs written before strings were accepted.
/// Either way it is at most [`MAX_DURATION`] (10 years), so converting it to milliseconds or adding
/// it to an `Instant` cannot overflow; a longer, negative or non-finite value is a config error.
///
/// Serialises back as the number of seconds.
///
/// ```
/// use monitor_plugin::ConfigDuration;
/// use std::time::Duration;
///
/// #[derive(serde::Deserialize)]
/// struct Settings {
///     timeout: ConfigDuration,
/// }
///
/// let s: Settings = monitor_plugin::parse_config(&serde_json::json!({"timeout": "1m30s"})).unwrap();
/// assert_eq!(s.timeout.get(), Duration::from_secs(90));
/// let s: Settings = monitor_plugin::parse_config(&serde_json::json!({"timeout": 2.5})).unwrap();
/// assert_eq!(s.timeout.get(), Duration::from_millis(2500));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ConfigDuration(pub Duration);

impl ConfigDuration {
    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }

    /// The duration in whole milliseconds (never truncated: it is at most [`MAX_DURATION`] when
    /// read from a config; a larger value built by hand saturates at `u64::MAX`).
    pub fn as_millis_u64(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }

    /// `now + self`, or `None` when a deadline that far away cannot be represented.
    pub fn deadline_from(self, now: std::time::Instant) -> Option<std::time::Instant> {
        now.checked_add(self.0)
    }
}

impl From<ConfigDuration> for Duration {
    fn from(d: ConfigDuration) -> Self {
        d.0
    }
}

impl Serialize for ConfigDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.0.as_secs_f64())
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ConfigDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"30s\" or \"1m30s\", or a number of seconds")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ConfigDuration, E> {
                parse_duration(v).map(ConfigDuration).map_err(E::custom)
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ConfigDuration, E> {
                if v.is_nan() || v < 0.0 {
                    return Err(E::custom(format!(
                        "invalid duration {v}: seconds must be >= 0"
                    )));
                }
                // `try_from_secs_f64` refuses infinity and values beyond `Duration::MAX`; the bound
                // below refuses the rest of what is too long.
                match Duration::try_from_secs_f64(v) {
                    Ok(d) if d <= MAX_DURATION => Ok(ConfigDuration(d)),
                    _ => Err(E::custom(too_long(format_args!("{v} s")))),
                }
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ConfigDuration, E> {
                let d = Duration::from_secs(v);
                if d > MAX_DURATION {
                    return Err(E::custom(too_long(format_args!("{v} s"))));
                }
                Ok(ConfigDuration(d))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ConfigDuration, E> {
                let secs = u64::try_from(v).map_err(|_| {
                    E::custom(format!("invalid duration {v}: seconds must be >= 0"))
                })?;
                self.visit_u64(secs)
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_add_up() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h2m3s"), Ok(Duration::from_secs(3723)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        for bad in ["", "s", "10", "10 s", "1.5s", "-1s", "10sec"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn strings_and_numbers_deserialise() {
        let d: ConfigDuration = serde_json::from_str("\"2m\"").unwrap();
        assert_eq!(d.get(), Duration::from_secs(120));
        let d: ConfigDuration = serde_json::from_str("3").unwrap();
        assert_eq!(d.get(), Duration::from_secs(3));
        let e = serde_json::from_str::<ConfigDuration>("\"3 minutes\"").unwrap_err();
        assert!(
            e.to_string().contains("invalid duration `3 minutes`"),
            "{e}"
        );
        assert!(serde_json::from_str::<ConfigDuration>("-1").is_err());
    }

    #[test]
    fn durations_longer_than_ten_years_are_refused() {
        assert_eq!(parse_duration("3650d"), Ok(MAX_DURATION));
        for huge in [
            "3651d",
            "213503982334601d",
            "99999999999999999999999s",
            "87601h",
        ] {
            let e = parse_duration(huge).unwrap_err();
            assert!(e.contains("maximum of 10 years"), "{huge}: {e}");
        }
        for huge in ["1e300", "1e20", "315360001", "18446744073709551615"] {
            let e = serde_json::from_str::<ConfigDuration>(huge).unwrap_err();
            assert!(e.to_string().contains("maximum of 10 years"), "{huge}: {e}");
        }
        let e = serde_json::from_str::<ConfigDuration>("\"213503982334601d\"").unwrap_err();
        assert!(e.to_string().contains("maximum of 10 years"), "{e}");
        let ok: ConfigDuration = serde_json::from_str("315360000").unwrap();
        assert_eq!(ok.get(), MAX_DURATION);
        assert!(ok.deadline_from(std::time::Instant::now()).is_some());
        assert_eq!(ok.as_millis_u64(), 315_360_000_000);
    }
}
