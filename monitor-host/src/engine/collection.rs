//! Reading a collection's JSON: a reader for the layout the SDK's `CollectionWriter` writes, and
//! serde's general reader for anything else.
//!
//! A plugin may write any valid JSON for its collection. The layout reader takes only what it
//! recognises exactly: `{"samples":[...],"events":...}` with, per sample, the keys `name`,
//! `value`, `kind`, `labels`, `timestamp_ms` in that order (the last three optional), no
//! whitespace, no escape in a name or a string value. On anything else it gives up and the general
//! reader reads the whole payload, so both give the same collection for the same bytes: the same
//! samples with the same texts, the same borrowed forms, the same events, the same errors (tests
//! hold them to it).
//!
//! # Cost
//!
//! The general reader reads each sample twice: once to find its end (serde's `RawValue`), then
//! into its borrowed form. The layout reader reads each byte once, compares keys as fixed byte
//! strings and parses numbers with serde's own number reader (so values are bit for bit the same).

use std::borrow::Cow;

use monitor_plugin::{Event, SampleKind};
use serde::Deserialize;
use serde_json::value::RawValue;

/// A collection as read by the host: samples one by one, so a bad one does not sink the rest.
#[derive(Debug)]
pub(super) struct RawCollection<'a> {
    samples: Samples<'a>,
    events: Vec<Event>,
}

#[derive(Debug)]
enum Samples<'a> {
    /// Read by serde: each sample's text, read into its borrowed form on its turn.
    Raw(Vec<&'a RawValue>),
    /// Read in the SDK's layout: each sample's text and its borrowed form.
    Read(Vec<(&'a str, FastSample<'a>)>),
}

/// The general reader's form of a collection.
#[derive(Debug, Deserialize)]
struct SerdeCollection<'a> {
    #[serde(default, borrow)]
    samples: Vec<&'a RawValue>,
    #[serde(default)]
    events: Vec<Event>,
}

/// A sample read without copying: what the series cache needs to find a known series.
#[derive(Debug, Deserialize, PartialEq)]
pub(super) struct FastSample<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(deserialize_with = "monitor_plugin::number::deserialize")]
    pub value: f64,
    #[serde(default)]
    pub kind: SampleKind,
    // `Some` when present, even as `null` (which the labels' full read then refuses).
    #[serde(default, borrow, deserialize_with = "present")]
    pub labels: Option<&'a str>,
    #[serde(default)]
    pub timestamp_ms: Option<u64>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de str>, D::Error> {
    <&RawValue>::deserialize(d).map(|raw| Some(raw.get()))
}

impl<'a> FastSample<'a> {
    /// The general reader's borrowed form of a sample's text; `None` when it has none (the full
    /// read then says why).
    pub fn read(text: &'a str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

impl<'a> RawCollection<'a> {
    /// Reads a collection: in the SDK's layout when it is written so, else by the general reader.
    ///
    /// # Errors
    ///
    /// When `bytes` are not a collection at all (not JSON, not an object, `samples` not an array,
    /// an event that does not read): serde's error, with its line and column.
    pub fn read(bytes: &'a [u8]) -> Result<Self, serde_json::Error> {
        if let Some(c) = std::str::from_utf8(bytes).ok().and_then(Self::read_layout) {
            return Ok(c);
        }
        Self::read_general(bytes)
    }

    /// Reads any collection, with serde.
    pub fn read_general(bytes: &'a [u8]) -> Result<Self, serde_json::Error> {
        let c = serde_json::from_slice::<SerdeCollection<'_>>(bytes)?;
        Ok(Self {
            samples: Samples::Raw(c.samples),
            events: c.events,
        })
    }

    /// Reads a collection in the SDK's layout; `None` on anything else.
    fn read_layout(text: &'a str) -> Option<Self> {
        let mut at = Cursor { text, at: 0 };
        at.eat(b"{\"samples\":[")?;
        // About what a scraped sample takes: spares most of the growing copies.
        let mut samples = Vec::with_capacity(text.len() / 96);
        if !at.eat_byte(b']') {
            loop {
                samples.push(at.sample()?);
                if at.eat_byte(b']') {
                    break;
                }
                at.eat_byte(b',').then_some(())?;
            }
        }
        at.eat(b",\"events\":")?;
        let events = text.get(at.at..)?.strip_suffix('}')?;
        let events = if events == "[]" {
            Vec::new()
        } else {
            serde_json::from_str(events).ok()?
        };
        Some(Self {
            samples: Samples::Read(samples),
            events,
        })
    }

    /// Samples returned, good or not.
    pub fn len(&self) -> usize {
        match &self.samples {
            Samples::Raw(s) => s.len(),
            Samples::Read(s) => s.len(),
        }
    }

    /// Whether the layout reader read it.
    #[cfg(test)]
    pub fn read_in_layout(&self) -> bool {
        matches!(self.samples, Samples::Read(_))
    }

    /// Each sample's text with its borrowed form (`None` when it has none), and the events.
    pub fn into_parts(self) -> (SampleIter<'a>, Vec<Event>) {
        let samples = match self.samples {
            Samples::Raw(s) => SampleIter::Raw(s.into_iter()),
            Samples::Read(s) => SampleIter::Read(s.into_iter()),
        };
        (samples, self.events)
    }
}

/// The samples of a [`RawCollection`], each as its text and its borrowed form.
pub(super) enum SampleIter<'a> {
    Raw(std::vec::IntoIter<&'a RawValue>),
    Read(std::vec::IntoIter<(&'a str, FastSample<'a>)>),
}

impl<'a> Iterator for SampleIter<'a> {
    type Item = (&'a str, Option<FastSample<'a>>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Raw(s) => s.next().map(|raw| (raw.get(), FastSample::read(raw.get()))),
            Self::Read(s) => s.next().map(|(text, fast)| (text, Some(fast))),
        }
    }
}

/// A place in the text the layout reader reads.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a [u8] {
        &self.text.as_bytes()[self.at..]
    }

    fn eat(&mut self, literal: &[u8]) -> Option<()> {
        self.rest()
            .starts_with(literal)
            .then(|| self.at += literal.len())
    }

    fn eat_byte(&mut self, b: u8) -> bool {
        let found = self.rest().first() == Some(&b);
        if found {
            self.at += 1;
        }
        found
    }

    /// One sample, with its text.
    fn sample(&mut self) -> Option<(&'a str, FastSample<'a>)> {
        let start = self.at;
        self.eat(b"{\"name\":\"")?;
        let name = self.plain_str()?;
        self.eat(b",\"value\":")?;
        let value = if self.eat_byte(b'"') {
            monitor_plugin::number::parse_non_finite(self.plain_str()?)?
        } else {
            let number = self.number()?;
            // serde's own reader, so that every value reads as the general reader reads it.
            let mut de = serde_json::Deserializer::from_str(number);
            monitor_plugin::number::deserialize(&mut de).ok()?
        };
        let kind = if self.eat(b",\"kind\":\"gauge\"").is_some() {
            SampleKind::Gauge
        } else if self.eat(b",\"kind\":\"counter\"").is_some() {
            SampleKind::Counter
        } else {
            SampleKind::default()
        };
        let labels = match self.eat(b",\"labels\":") {
            Some(()) => Some(self.labels()?),
            None => None,
        };
        let timestamp_ms = match self.eat(b",\"timestamp_ms\":") {
            Some(()) => Some(self.integer()?),
            None => None,
        };
        self.eat_byte(b'}').then_some(())?;
        let sample = FastSample {
            name: Cow::Borrowed(name),
            value,
            kind,
            labels,
            timestamp_ms,
        };
        Some((&self.text[start..self.at], sample))
    }

    /// The rest of a string whose opening quote was read, when it has no escape: its content.
    fn plain_str(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        let len = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        (rest[len] == b'"').then_some(())?;
        let s = &self.text[self.at..self.at + len];
        self.at += len + 1;
        Some(s)
    }

    /// A string, escapes included (checked as JSON has them, as serde checks a string it skips).
    fn string(&mut self) -> Option<()> {
        self.eat_byte(b'"').then_some(())?;
        let rest = self.rest();
        let mut i = 0;
        loop {
            match *rest.get(i)? {
                b'"' => break,
                b'\\' => match *rest.get(i + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                    b'u' => {
                        let hex = rest.get(i + 2..i + 6)?;
                        hex.iter().all(u8::is_ascii_hexdigit).then_some(())?;
                        i += 6;
                    }
                    _ => return None,
                },
                0..0x20 => return None,
                _ => i += 1,
            }
        }
        self.at += i + 1;
        Some(())
    }

    /// An object of string values: its text.
    fn labels(&mut self) -> Option<&'a str> {
        let start = self.at;
        self.eat_byte(b'{').then_some(())?;
        if !self.eat_byte(b'}') {
            loop {
                self.string()?;
                self.eat_byte(b':').then_some(())?;
                self.string()?;
                if self.eat_byte(b'}') {
                    break;
                }
                self.eat_byte(b',').then_some(())?;
            }
        }
        Some(&self.text[start..self.at])
    }

    /// A JSON number's text: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Option<&'a str> {
        let start = self.at;
        self.eat_byte(b'-');
        self.digits(false)?;
        if self.eat_byte(b'.') {
            self.digits(true)?;
        }
        if self.eat_byte(b'e') || self.eat_byte(b'E') {
            if !self.eat_byte(b'+') {
                self.eat_byte(b'-');
            }
            self.digits(true)?;
        }
        Some(&self.text[start..self.at])
    }

    /// A run of digits; without `leading_zeros`, `0` alone or one not starting with `0`.
    fn digits(&mut self, leading_zeros: bool) -> Option<&'a str> {
        let rest = self.rest();
        let len = rest
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(rest.len());
        (len > 0 && (leading_zeros || len == 1 || rest[0] != b'0')).then_some(())?;
        let s = &self.text[self.at..self.at + len];
        self.at += len;
        Some(s)
    }

    /// A `u64` written as a JSON integer (anything else is left to the general reader).
    fn integer(&mut self) -> Option<u64> {
        let digits = self.digits(false)?;
        // A fraction or an exponent would make it a float.
        if matches!(self.rest().first(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        digits.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use monitor_plugin::{Collection, CollectionWriter, Labels, Sample};

    use super::*;

    /// What a reader made of a collection, in a form to compare.
    type Read = (Vec<(String, Option<String>)>, String);

    fn parts(c: RawCollection<'_>) -> Read {
        let (samples, events) = c.into_parts();
        let samples = samples
            .map(|(text, fast)| (text.to_owned(), fast.map(|f| format!("{f:?}"))))
            .collect();
        (samples, format!("{events:?}"))
    }

    /// Reads `json` with both readers; asserts they agree; returns whether the layout reader
    /// took it.
    fn both(json: &str) -> bool {
        let general = RawCollection::read_general(json.as_bytes());
        let read = RawCollection::read(json.as_bytes());
        match (general, read) {
            (Ok(g), Ok(r)) => {
                let layout = r.read_in_layout();
                assert_eq!(g.len(), r.len(), "{json}");
                // NaN is not equal to itself: compare the debug forms.
                assert_eq!(parts(g), parts(r), "{json}");
                layout
            }
            (Err(g), Err(r)) => {
                assert_eq!(g.to_string(), r.to_string(), "{json}");
                false
            }
            (g, r) => panic!("{json}: general {g:?}, read {r:?}"),
        }
    }

    fn odd_samples() -> Vec<Sample> {
        let mut stamped = Sample::counter("stamped", -0.0)
            .with_label("k\t", "v\"\r\\/")
            .with_label("plain", "x")
            .with_label("ünï", "\u{7f}\u{2028}\u{1} ☃ 𝄞");
        stamped.timestamp_ms = Some(u64::MAX);
        let mut zero = Sample::gauge("zero_ts", 1.0);
        zero.timestamp_ms = Some(0);
        vec![
            Sample::gauge("a", 1.0),
            Sample::gauge("b", f64::NAN).with_label("x", "y"),
            Sample::counter("c", f64::INFINITY),
            Sample::gauge("d", f64::NEG_INFINITY).with_label("", ""),
            Sample::gauge("e", 1e300).with_label("empty", ""),
            Sample::gauge("f", 1.5e-7),
            Sample::gauge("g", 123_456_789.0),
            Sample::gauge("h", f64::MIN_POSITIVE),
            Sample::gauge("i", f64::MAX),
            Sample::gauge("j", 5e-324),
            Sample::gauge("", 0.1 + 0.2),
            Sample::gauge("neg", -1.0),
            Sample::gauge("with \"quotes\"", 2.0),
            stamped,
            zero,
        ]
    }

    #[test]
    fn what_the_sdk_writes_reads_in_layout_as_the_general_reader_reads_it() {
        let events = vec![Event {
            kind: "k".into(),
            message: "m\n".into(),
            labels: Labels::from([("a".to_owned(), "b".to_owned())]),
            timestamp_ms: Some(7),
        }];
        let plain: Vec<Sample> = odd_samples()
            .into_iter()
            .filter(|s| !s.name.contains('"'))
            .collect();
        for (samples, events) in [
            (vec![], vec![]),
            (plain.clone(), vec![]),
            (plain, events.clone()),
            (vec![Sample::gauge("only", 2.5)], events),
        ] {
            let mut json = Vec::new();
            Collection { samples, events }.write_json(&mut json);
            assert!(both(std::str::from_utf8(&json).unwrap()));
        }
        // An escaped name is left to the general reader, with the same result.
        let mut json = Vec::new();
        Collection {
            samples: odd_samples(),
            events: vec![],
        }
        .write_json(&mut json);
        assert!(!both(std::str::from_utf8(&json).unwrap()));
        let mut w = CollectionWriter::new();
        w.sample("w", 3.0, SampleKind::Counter)
            .label("a", "1")
            .timestamp_ms(5);
        w.sample("w", 4.0, SampleKind::Gauge);
        assert!(both(std::str::from_utf8(&w.finish()).unwrap()));
    }

    #[test]
    fn numbers_read_as_serde_reads_them() {
        for n in [
            "0",
            "-0",
            "-0.0",
            "0.0",
            "1",
            "-1",
            "12",
            "1.5",
            "1e3",
            "1E3",
            "1e+3",
            "1e-3",
            "1.25e-7",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "4.9e-324",
            "2e-324",
            "0.30000000000000004",
            "123456789012345678901234567890",
            "1.7976931348623157e308",
            "9007199254740993",
        ] {
            let json =
                format!(r#"{{"samples":[{{"name":"n","value":{n},"kind":"gauge"}}],"events":[]}}"#);
            assert!(both(&json), "{n}");
        }
        // Out of range, or not JSON numbers: the general reader says so.
        for n in [
            "1e400", "-1e400", "01", "1.", ".5", "+1", "1e", "-", "0x1", "1.e3", "--1", "Infinity",
            "NaN",
        ] {
            let json =
                format!(r#"{{"samples":[{{"name":"n","value":{n},"kind":"gauge"}}],"events":[]}}"#);
            assert!(!both(&json), "{n}");
        }
    }

    #[test]
    fn anything_else_reads_as_the_general_reader_reads_it() {
        let in_layout = [
            r#"{"samples":[],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":"NaN","kind":"gauge"}],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":"nan"},{"name":"b","value":"inf","kind":"counter"}],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":"-INF","kind":"gauge","labels":{}}],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":1,"labels":{"k":"v","k":"w"}}],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":1,"labels":{"\u00e9\ud800":"\n"}}],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":1,"timestamp_ms":0}],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":1,"timestamp_ms":18446744073709551615}],"events":[]}"#,
            r#"{"samples":[{"name":"__bad name","value":1}],"events":[]}"#,
            r#"{"samples":[],"events":[{"kind":"k"}]}"#,
            r#"{"samples":[{"name":"a","value":"+Inf","kind":"gauge"}],"events":[{"kind":"k","message":"m"}]}"#,
        ];
        for json in in_layout {
            assert!(both(json), "{json}");
        }
        let general = [
            // Whitespace, order, extra or missing fields, other types.
            r#"{ "samples": [], "events": [] }"#,
            r#"{"samples":[],"events":[]} "#,
            r#"{"events":[],"samples":[]}"#,
            r#"{"samples":[]}"#,
            r#"{}"#,
            r#"{"samples":[],"events":[],"extra":1}"#,
            r#"{"samples":[],"events":[]}}"#,
            r#"{"samples":[],"samples":[],"events":[]}"#,
            r#"{"samples":[{"value":1,"name":"a"}],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":1,"unit":"s"}],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":1, "kind":"gauge"}],"events":[]}"#,
            r#"{"samples":[{"name":"a"}],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":null}],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":"lots"}],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":"N\u0061N"}],"events":[]}"#,
            r#"{"samples":[{"name":"a\u0062","value":1}],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":1,"kind":"histogram"}],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":1,"labels":null}],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":1,"labels":{"k":3}}],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":1,"labels":{"k":"\x"}}],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":1,"labels":{"k":"\u12"}}],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":1,"timestamp_ms":-1}],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":1,"timestamp_ms":1.5}],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":1,"timestamp_ms":1e3}],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":1,"timestamp_ms":18446744073709551616}],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":1,"timestamp_ms":null}],"events":[]}"#,
            r#"{"samples":[{"name":"a","name":"b","value":1}],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":1},],"events":[]}"#,
            r#"{"samples":[{"name":"a","value":1}{"name":"b","value":1}],"events":[]}"#,
            r#"{"samples":[7],"events":[]}"#,
            r#"{"samples":[],"events":{}}"#,
            r#"{"samples":[],"events":[{"message":"m"}]}"#,
            r#"{"samples":[],"events":[]"#,
            r#"{"samples":[{"name":"a","value":1"#,
            "{\"samples\":[{\"name\":\"a\tb\",\"value\":1}],\"events\":[]}",
            "[]",
            "",
        ];
        for json in general {
            assert!(!both(json), "{json}");
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_read_as_the_general_reader_reads_them() {
        let bytes = b"{\"samples\":[{\"name\":\"a\xff\",\"value\":1}],\"events\":[]}";
        let general = RawCollection::read_general(bytes).unwrap_err();
        let read = RawCollection::read(bytes).unwrap_err();
        assert_eq!(general.to_string(), read.to_string());
    }
}
