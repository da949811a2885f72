//! How a sample value crosses the boundary: a JSON number when finite, and the strings `"NaN"`,
//! `"+Inf"` and `"-Inf"` for what JSON numbers cannot express, spelled as in Prometheus's text
//! format.
//!
//! Readers also accept `"Inf"` and `"+Inf"`, `"-Inf"`, `"NaN"` in any letter case. A plugin
//! written in C writes the same strings. Used on a field with `#[serde(with = "monitor_plugin::number")]`.
//!
//! ```
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Point {
//!     #[serde(with = "monitor_plugin::number")]
//!     value: f64,
//! }
//!
//! let json = serde_json::to_string(&Point { value: f64::INFINITY }).unwrap();
//! assert_eq!(json, r#"{"value":"+Inf"}"#);
//! let back: Point = serde_json::from_str(r#"{"value":"NaN"}"#).unwrap();
//! assert!(back.value.is_nan());
//! let plain: Point = serde_json::from_str(r#"{"value":2.5}"#).unwrap();
//! assert_eq!(plain.value, 2.5);
//! ```

use std::fmt;

use serde::Serializer;
use serde::de::{self, Deserializer, Visitor};

/// The string for a non-finite value: `"NaN"`, `"+Inf"` or `"-Inf"`; `None` for a finite one.
pub fn non_finite_str(value: f64) -> Option<&'static str> {
    if value.is_nan() {
        Some("NaN")
    } else if value == f64::INFINITY {
        Some("+Inf")
    } else if value == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

/// Reads one of the strings of a non-finite value (`NaN`, `Inf`, `+Inf`, `-Inf`, any letter case).
pub fn parse_non_finite(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// Writes `value` as a JSON number, or as `"NaN"`, `"+Inf"`, `"-Inf"`.
///
/// # Errors
///
/// Whatever the serializer returns.
#[allow(clippy::trivially_copy_pass_by_ref)] // Reason: the signature serde's `with` requires.
pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    match non_finite_str(*value) {
        Some(s) => serializer.serialize_str(s),
        None => serializer.serialize_f64(*value),
    }
}

/// Reads a JSON number, or one of the strings of a non-finite value.
///
/// # Errors
///
/// Anything else, `null` included.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    deserializer.deserialize_any(NumberVisitor { null: None })
}

/// As [`deserialize`], and `null` reads as NaN.
pub(crate) fn deserialize_or_null<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<f64, D::Error> {
    deserializer.deserialize_any(NumberVisitor {
        null: Some(f64::NAN),
    })
}

struct NumberVisitor {
    null: Option<f64>,
}

impl<'de> Visitor<'de> for NumberVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, or \"NaN\", \"+Inf\" or \"-Inf\"")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        parse_non_finite(v).ok_or_else(|| {
            E::custom(format!(
                "invalid value `{v}`: a number, or \"NaN\", \"+Inf\" or \"-Inf\""
            ))
        })
    }

    fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
        self.null.ok_or_else(|| {
            E::custom("invalid value null: a number, or \"NaN\", \"+Inf\" or \"-Inf\"")
        })
    }

    fn visit_none<E: de::Error>(self) -> Result<f64, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<f64, D::Error> {
        d.deserialize_any(self)
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct P {
        #[serde(with = "super")]
        v: f64,
    }

    #[test]
    fn non_finite_values_round_trip_as_strings() {
        for (v, text) in [
            (f64::NAN, r#"{"v":"NaN"}"#),
            (f64::INFINITY, r#"{"v":"+Inf"}"#),
            (f64::NEG_INFINITY, r#"{"v":"-Inf"}"#),
            (1.5, r#"{"v":1.5}"#),
        ] {
            let json = serde_json::to_string(&P { v }).unwrap();
            assert_eq!(json, text);
            let back: P = serde_json::from_str(&json).unwrap();
            assert!(back.v == v || (v.is_nan() && back.v.is_nan()), "{json}");
        }
        let inf: P = serde_json::from_str(r#"{"v":"inf"}"#).unwrap();
        assert_eq!(inf.v, f64::INFINITY);
        let int: P = serde_json::from_str(r#"{"v":-3}"#).unwrap();
        assert_eq!(int.v, -3.0);
    }

    #[test]
    fn null_and_garbage_are_refused() {
        for bad in [
            r#"{"v":null}"#,
            r#"{"v":"lots"}"#,
            r#"{"v":true}"#,
            r#"{"v":[1]}"#,
        ] {
            let e = serde_json::from_str::<P>(bad).unwrap_err();
            assert!(e.to_string().contains("invalid"), "{bad}: {e}");
        }
    }
}
