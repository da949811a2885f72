//! A reader of the Prometheus text exposition format 0.0.4 that borrows from the body.
//!
//! [`Parser`] walks the body line by line and yields one [`Sample`] per sample line, with its
//! name, label text and timestamp as slices of the body: nothing is allocated per line except
//! where a label value holds an escape (`\\`, `\"`, `\n`), which [`Labels::iter`] unescapes.
//! `# HELP` lines and other comments are skipped; `# TYPE` lines give the [`Kind`] of the samples
//! of their family. Lines end with `\n` or `\r\n`; blanks (spaces, tabs) separate tokens.
//!
//! The first malformed line ends the walk with a [`ParseError`] naming its line number, as
//! Prometheus refuses a scrape with a malformed line rather than keeping part of it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// The type a `# TYPE` line gives a metric family; `Untyped` without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`.
    Histogram,
    /// `summary`.
    Summary,
    /// `untyped`, or no `# TYPE` line.
    Untyped,
}

impl Kind {
    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "counter" => Self::Counter,
            "gauge" => Self::Gauge,
            "histogram" => Self::Histogram,
            "summary" => Self::Summary,
            "untyped" => Self::Untyped,
            _ => return None,
        })
    }
}

/// Which series of its family a sample is: the family's own name, or one of the suffixed series
/// of a histogram (`_bucket`, `_sum`, `_count`) or a summary (`_sum`, `_count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Named like the family.
    Whole,
    /// `<family>_bucket` of a histogram.
    Bucket,
    /// `<family>_sum` of a histogram or a summary.
    Sum,
    /// `<family>_count` of a histogram or a summary.
    Count,
}

/// One sample line.
#[derive(Debug, Clone)]
pub struct Sample<'a> {
    /// The sample's name, e.g. `http_requests_total` or `latency_seconds_bucket`.
    pub name: &'a str,
    /// The name and label set as written (`name{a="b"}`): tells series apart across scrapes.
    pub series: &'a str,
    /// The labels.
    pub labels: Labels<'a>,
    /// The value; NaN and the infinities included.
    pub value: f64,
    /// The timestamp written after the value, in milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
    /// The type of the sample's family.
    pub kind: Kind,
    /// Which series of its family the sample is.
    pub part: Part,
    /// The line number, from 1.
    pub line: usize,
}

/// The label set of a sample: the text between the braces, checked by the parser.
#[derive(Debug, Clone, Copy, Default)]
pub struct Labels<'a> {
    text: &'a str,
}

impl<'a> Labels<'a> {
    /// The labels in the order written, values unescaped.
    pub fn iter(&self) -> LabelIter<'a> {
        LabelIter {
            text: self.text,
            at: 0,
        }
    }

    /// The value of label `name`.
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// The labels of a [`Labels`], as `(name, value)`.
#[derive(Debug, Clone)]
pub struct LabelIter<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for LabelIter<'a> {
    type Item = (&'a str, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        // The parser checked the text: name, blanks, `=`, blanks, quoted value, blanks, `,`.
        let bytes = self.text.as_bytes();
        let mut i = skip_blanks(bytes, self.at);
        if i >= bytes.len() {
            return None;
        }
        let name_start = i;
        while i < bytes.len() && is_name_byte(bytes[i], false) {
            i += 1;
        }
        let name = &self.text[name_start..i];
        i = skip_blanks(bytes, i);
        i = skip_blanks(bytes, i + 1); // `=`
        let (value, end) = read_quoted(self.text, i + 1).ok()?;
        i = skip_blanks(bytes, end);
        if bytes.get(i) == Some(&b',') {
            i += 1;
        }
        self.at = i;
        Some((name, value))
    }
}

/// A malformed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The line number, from 1.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Walks a body: an iterator of samples, ending at the first malformed line.
#[derive(Debug)]
pub struct Parser<'a> {
    rest: &'a str,
    line: usize,
    failed: bool,
    /// Families named by `# TYPE` lines.
    types: HashMap<&'a str, Kind>,
    /// The family of the latest `# TYPE` line: the samples that follow are usually its own.
    current: Option<(&'a str, Kind)>,
    /// Label names of the line being read, to refuse one written twice.
    seen: Vec<&'a str>,
}

impl<'a> Parser<'a> {
    /// A parser over `body`.
    pub fn new(body: &'a str) -> Self {
        Self {
            rest: body,
            line: 0,
            failed: false,
            types: HashMap::new(),
            current: None,
            seen: Vec::new(),
        }
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            message: message.into(),
        }
    }

    /// The next line, without its line ending.
    fn next_line(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        self.line += 1;
        let (line, rest) = match self.rest.find('\n') {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, ""),
        };
        self.rest = rest;
        Some(line.strip_suffix('\r').unwrap_or(line))
    }

    /// Reads a `#` line: records a `# TYPE`, checks a `# HELP`, skips the rest.
    fn comment(&mut self, line: &'a str) -> Result<(), ParseError> {
        let bytes = line.as_bytes();
        let at = skip_blanks(bytes, 1);
        let (word, at) = token(line, at);
        if (word != "TYPE" && word != "HELP") || at == skip_blanks(bytes, at) {
            return Ok(()); // a comment
        }
        let (name, after) = token(line, skip_blanks(bytes, at));
        if !is_metric_name(name) {
            return Err(self.error(format!("`# {word}`: `{name}` is not a metric name")));
        }
        if word == "HELP" {
            return Ok(());
        }
        let (kind, end) = token(line, skip_blanks(bytes, after));
        let Some(kind) = Kind::parse(kind) else {
            return Err(self.error(format!(
                "`# TYPE {name}`: unknown type `{kind}` (counter, gauge, histogram, summary or untyped)"
            )));
        };
        if skip_blanks(bytes, end) != bytes.len() {
            return Err(self.error(format!("`# TYPE {name}`: text after the type")));
        }
        self.types.insert(name, kind);
        self.current = Some((name, kind));
        Ok(())
    }

    /// The kind and part of a sample named `name`.
    fn family(&self, name: &str) -> (Kind, Part) {
        if let Some(found) = self
            .current
            .and_then(|(family, kind)| resolve(family, kind, name))
        {
            return found;
        }
        if let Some(&kind) = self.types.get(name) {
            return (kind, Part::Whole);
        }
        for (suffix, part) in SUFFIXES {
            if let Some(base) = name.strip_suffix(suffix) {
                match (self.types.get(base), part) {
                    (Some(Kind::Histogram), _) | (Some(Kind::Summary), Part::Sum | Part::Count) => {
                        return (self.types[base], part);
                    }
                    _ => {}
                }
            }
        }
        (Kind::Untyped, Part::Whole)
    }

    /// Reads a sample line.
    fn sample(&mut self, line: &'a str) -> Result<Sample<'a>, ParseError> {
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() && is_name_byte(bytes[i], true) {
            i += 1;
        }
        let name = &line[..i];
        if !is_metric_name(name) {
            let what = token(line, 0).0;
            return Err(self.error(format!(
                "`{what}` is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"
            )));
        }
        let mut labels = Labels::default();
        let brace = skip_blanks(bytes, i);
        if bytes.get(brace) == Some(&b'{') {
            let end = self.label_set(line, brace + 1)?;
            labels.text = &line[brace + 1..end];
            i = end + 1;
        } else if i < bytes.len() && !is_blank(bytes[i]) {
            let what = token(line, 0).0;
            return Err(self.error(format!(
                "`{what}` is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"
            )));
        }
        let series = &line[..i];
        let (value_text, after) = token(line, skip_blanks(bytes, i));
        if value_text.is_empty() {
            return Err(self.error(format!("`{series}`: no value")));
        }
        let value = parse_value(value_text)
            .ok_or_else(|| self.error(format!("`{series}`: `{value_text}` is not a number")))?;
        let (ts_text, end) = token(line, skip_blanks(bytes, after));
        let timestamp_ms = if ts_text.is_empty() {
            None
        } else {
            Some(ts_text.parse::<i64>().map_err(|_| {
                self.error(format!(
                    "`{series}`: `{ts_text}` is not a timestamp (integer milliseconds)"
                ))
            })?)
        };
        if skip_blanks(bytes, end) != bytes.len() {
            return Err(self.error(format!("`{series}`: text after the timestamp")));
        }
        let (kind, part) = self.family(name);
        Ok(Sample {
            name,
            series,
            labels,
            value,
            timestamp_ms,
            kind,
            part,
            line: self.line,
        })
    }

    /// Checks the label set starting after `{` at `start`; returns the index of the closing `}`.
    fn label_set(&mut self, line: &'a str, start: usize) -> Result<usize, ParseError> {
        let bytes = line.as_bytes();
        self.seen.clear();
        let mut i = skip_blanks(bytes, start);
        loop {
            match bytes.get(i) {
                Some(b'}') => return Ok(i),
                None => return Err(self.error("label set without a closing `}`")),
                Some(_) => {}
            }
            let name_start = i;
            while i < bytes.len() && is_name_byte(bytes[i], false) {
                i += 1;
            }
            let name = &line[name_start..i];
            if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
                let what: String = line[name_start..].chars().take(20).collect();
                return Err(self.error(format!(
                    "expected a label name ([a-zA-Z_][a-zA-Z0-9_]*) at `{what}`"
                )));
            }
            if self.seen.contains(&name) {
                return Err(self.error(format!("label `{name}` appears twice")));
            }
            self.seen.push(name);
            i = skip_blanks(bytes, i);
            if bytes.get(i) != Some(&b'=') {
                return Err(self.error(format!("label `{name}`: expected `=`")));
            }
            i = skip_blanks(bytes, i + 1);
            if bytes.get(i) != Some(&b'"') {
                return Err(self.error(format!("label `{name}`: expected a quoted value")));
            }
            i = read_quoted(line, i + 1)
                .map_err(|m| self.error(format!("label `{name}`: {m}")))?
                .1;
            i = skip_blanks(bytes, i);
            match bytes.get(i) {
                Some(b',') => i = skip_blanks(bytes, i + 1),
                Some(b'}') => {}
                _ => {
                    return Err(self.error(format!(
                        "label `{name}`: expected `,` or `}}` after the value"
                    )));
                }
            }
        }
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Sample<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        while let Some(line) = self.next_line() {
            let start = skip_blanks(line.as_bytes(), 0);
            let line = line[start..].trim_end_matches([' ', '\t']);
            let result = if line.is_empty() {
                continue;
            } else if line.starts_with('#') {
                match self.comment(line) {
                    Ok(()) => continue,
                    Err(e) => Err(e),
                }
            } else {
                self.sample(line)
            };
            self.failed = result.is_err();
            return Some(result);
        }
        None
    }
}

const SUFFIXES: [(&str, Part); 3] = [
    ("_bucket", Part::Bucket),
    ("_sum", Part::Sum),
    ("_count", Part::Count),
];

/// The kind and part of `name` in family `family` of `kind`, if it belongs to it.
fn resolve(family: &str, kind: Kind, name: &str) -> Option<(Kind, Part)> {
    let rest = name.strip_prefix(family)?;
    if rest.is_empty() {
        return Some((kind, Part::Whole));
    }
    let part = SUFFIXES.iter().find(|(s, _)| *s == rest)?.1;
    match (kind, part) {
        (Kind::Histogram, _) | (Kind::Summary, Part::Sum | Part::Count) => Some((kind, part)),
        _ => None,
    }
}

/// A sample value: a decimal or exponent number, `NaN`, `+Inf`, `-Inf` (any letter case, as
/// Go's `ParseFloat` reads them).
fn parse_value(text: &str) -> Option<f64> {
    // Rust reads `inf`, `infinity` and `nan` in any case, with an optional sign.
    text.parse::<f64>().ok()
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn skip_blanks(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && is_blank(bytes[i]) {
        i += 1;
    }
    i
}

/// The token at `start` (up to a blank or the end) and where it ends.
fn token(line: &str, start: usize) -> (&str, usize) {
    let bytes = line.as_bytes();
    let mut i = start.min(bytes.len());
    while i < bytes.len() && !is_blank(bytes[i]) {
        i += 1;
    }
    (&line[start.min(bytes.len())..i], i)
}

fn is_name_byte(b: u8, colon: bool) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || (colon && b == b':')
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn is_metric_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty() && !bytes[0].is_ascii_digit() && bytes.iter().all(|&b| is_name_byte(b, true))
}

/// Reads a quoted label value starting after its opening `"` at `start`: the unescaped value
/// and the index after the closing `"`.
fn read_quoted(line: &str, start: usize) -> Result<(Cow<'_, str>, usize), String> {
    let bytes = line.as_bytes();
    let mut i = start;
    let mut owned: Option<String> = None;
    let mut from = start;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let value = match owned {
                    None => Cow::Borrowed(&line[start..i]),
                    Some(mut s) => {
                        s.push_str(&line[from..i]);
                        Cow::Owned(s)
                    }
                };
                return Ok((value, i + 1));
            }
            b'\\' => {
                let s = owned.get_or_insert_with(String::new);
                s.push_str(&line[from..i]);
                match bytes.get(i + 1) {
                    Some(b'\\') => s.push('\\'),
                    Some(b'"') => s.push('"'),
                    Some(b'n') => s.push('\n'),
                    Some(_) => {
                        let c: String = line[i..].chars().take(2).collect();
                        return Err(format!("unknown escape `{c}` (use \\\\, \\\" or \\n)"));
                    }
                    None => break,
                }
                i += 2;
                from = i;
            }
            _ => i += 1,
        }
    }
    Err("value without a closing `\"`".into())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::{Kind, Parser, Part};

    /// A sample as both parsers can say it: name, labels, value as text, and what it is.
    type Flat = (String, BTreeMap<String, String>, String, &'static str);

    fn number(v: f64) -> String {
        format!("{v:?}")
    }

    /// This parser's samples, in the terms of `prometheus-parse`: the `_sum` and `_count` of
    /// histograms and summaries are untyped there, buckets and quantiles carry their bound.
    fn ours(text: &str) -> Vec<Flat> {
        let mut out: Vec<Flat> = Parser::new(text)
            .map(|s| {
                let s = s.unwrap();
                let mut labels: BTreeMap<String, String> = s
                    .labels
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.into_owned()))
                    .collect();
                let what = match (s.kind, s.part) {
                    (Kind::Counter, Part::Whole) => "counter",
                    (Kind::Gauge, Part::Whole) => "gauge",
                    (Kind::Histogram, Part::Bucket) => {
                        let le = labels.get_mut("le").unwrap();
                        *le = number(le.parse().unwrap());
                        "bucket"
                    }
                    (Kind::Summary, Part::Whole) => {
                        let q = labels.get_mut("quantile").unwrap();
                        *q = number(q.parse().unwrap());
                        "quantile"
                    }
                    _ => "untyped",
                };
                (s.name.to_owned(), labels, number(s.value), what)
            })
            .collect();
        out.sort();
        out
    }

    /// What `prometheus-parse` reads, flattened.
    fn theirs(text: &str) -> Vec<Flat> {
        use prometheus_parse::{Scrape, Value};
        let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
        let mut out = Vec::new();
        for s in scrape.samples {
            let labels: BTreeMap<String, String> = s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let with = |key: &str, bound: f64| {
                let mut l = labels.clone();
                l.insert(key.to_owned(), number(bound));
                l
            };
            match s.value {
                Value::Counter(v) => out.push((s.metric, labels, number(v), "counter")),
                Value::Gauge(v) => out.push((s.metric, labels, number(v), "gauge")),
                Value::Untyped(v) => out.push((s.metric, labels, number(v), "untyped")),
                Value::Histogram(buckets) => {
                    for b in buckets {
                        let name = format!("{}_bucket", s.metric);
                        out.push((name, with("le", b.less_than), number(b.count), "bucket"));
                    }
                }
                Value::Summary(qs) => {
                    for q in qs {
                        let l = with("quantile", q.quantile);
                        out.push((s.metric.clone(), l, number(q.count), "quantile"));
                    }
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn reads_the_workspace_exposition_as_prometheus_parse_does() {
        let reg = monitor_core::Registry::new();
        for i in 1..=200u64 {
            reg.record("api.get", Duration::from_micros(i * 37), i % 7 != 0);
        }
        reg.record("db.query", Duration::from_millis(3), true);
        reg.record("never fails", Duration::from_nanos(1), true);
        let mut text = Vec::new();
        reg.write_prometheus(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        let ours = ours(&text);
        assert!(ours.len() > 30, "{text}");
        assert!(ours.iter().any(|s| s.3 == "bucket"), "{text}");
        assert!(ours.iter().any(|s| s.3 == "counter"), "{text}");
        assert_eq!(ours, theirs(&text), "{text}");
    }

    /// Input both parsers read alike: no label value with a comma, `=` or an escape, and names
    /// without `:` (which `prometheus-parse` drops).
    const COMMON: &str = "\
# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000
http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000

# A comment, then a line with a trailing comma and blanks.
metric_without_timestamp_and_labels 12.47
with_trailing_comma{a=\"x\",}\t-1.5e-3
something_weird{problem=\"division by zero\"} +Inf -3982045
minus_inf -Inf
not_a_number NaN
big 1E+300
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le=\"0.05\"} 24054
http_request_duration_seconds_bucket{le=\"0.1\"} 33444
http_request_duration_seconds_bucket{le=\"+Inf\"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{service=\"a\",quantile=\"0.01\"} 3102
rpc_duration_seconds{service=\"a\",quantile=\"0.99\"} 76656
rpc_duration_seconds_sum{service=\"a\"} 1.7560473e+07
rpc_duration_seconds_count{service=\"a\"} 2693
# TYPE temperature gauge
temperature{room=\"kitchen\"} 21
plain_count 4
";

    #[test]
    fn reads_hand_written_edge_cases_as_prometheus_parse_does() {
        let ours = ours(COMMON);
        assert_eq!(ours.len(), 19);
        assert_eq!(ours, theirs(COMMON));
        let crlf = COMMON.replace('\n', "\r\n");
        assert_eq!(self::ours(&crlf), ours, "CRLF line endings");
    }

    /// A body drawn from the grammar both parsers read alike, from `seed`.
    fn generated(seed: u64) -> String {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = |n: usize| {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        const VALUES: [&str; 8] = ["0", "1.5", "-2e3", "NaN", "+Inf", "-Inf", "1e-9", "42"];
        const LABELS: [&str; 4] = ["instance", "job", "code", "_x1"];
        const TEXT: [&str; 5] = ["a", "b c", "0.5", "x.y-z", ""];
        let mut out = String::new();
        for family in 0..1 + next(6) {
            let name = format!("fam_{family}");
            let kind = ["counter", "gauge", "histogram", "summary", "untyped", ""][next(6)];
            if next(2) == 0 {
                out.push_str(&format!("# HELP {name} family {family}\n"));
            }
            if !kind.is_empty() {
                out.push_str(&format!("# TYPE {name} {kind}\n"));
            }
            for _ in 0..1 + next(4) {
                let mut labels = Vec::new();
                for k in LABELS {
                    if next(2) == 0 {
                        labels.push(format!("{k}=\"{}\"", TEXT[next(TEXT.len())]));
                    }
                }
                let value = |next: &mut dyn FnMut(usize) -> usize| VALUES[next(VALUES.len())];
                let mut lines = Vec::new();
                match kind {
                    "histogram" => {
                        for le in ["0.1", "1", "+Inf"] {
                            let mut l = labels.clone();
                            l.insert(next(l.len() + 1), format!("le=\"{le}\""));
                            lines.push((format!("{name}_bucket"), l, value(&mut next)));
                        }
                        lines.push((format!("{name}_sum"), labels.clone(), value(&mut next)));
                        lines.push((format!("{name}_count"), labels.clone(), value(&mut next)));
                    }
                    "summary" => {
                        for q in ["0.5", "0.99"] {
                            let mut l = labels.clone();
                            l.insert(next(l.len() + 1), format!("quantile=\"{q}\""));
                            lines.push((name.clone(), l, value(&mut next)));
                        }
                        lines.push((format!("{name}_count"), labels.clone(), value(&mut next)));
                    }
                    _ => {
                        if next(4) == 0 {
                            labels.clear();
                        }
                        lines.push((name.clone(), labels, value(&mut next)));
                    }
                }
                for (n, l, v) in lines {
                    out.push_str(&n);
                    if !l.is_empty() {
                        let comma = if next(3) == 0 { "," } else { "" };
                        out.push_str(&format!("{{{}{comma}}}", l.join(",")));
                    }
                    out.push_str([" ", "\t", "  "][next(3)]);
                    out.push_str(v);
                    if next(3) == 0 {
                        out.push_str(&format!(" {}", 1_700_000_000_000u64 + next(1000) as u64));
                    }
                    out.push_str(["\n", "\r\n", "\n\n"][next(3)]);
                }
            }
        }
        out
    }

    #[test]
    fn reads_generated_bodies_as_prometheus_parse_does() {
        let mut seen = BTreeMap::new();
        for seed in 0..300 {
            let text = generated(seed);
            let ours = ours(&text);
            assert_eq!(ours, theirs(&text), "seed {seed}:\n{text}");
            for s in ours {
                *seen.entry(s.3).or_insert(0) += 1;
            }
        }
        assert_eq!(seen.len(), 5, "every kind drawn: {seen:?}");
        assert!(seen.values().all(|&n| n > 50), "{seen:?}");
    }

    #[test]
    fn unescapes_label_values_and_reads_what_prometheus_parse_cannot() {
        let text = "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
                    job:requests:rate5m { a = \"x,y=z\" , b=\"}\" , } 2 17\n";
        let samples: Vec<_> = Parser::new(text).map(Result::unwrap).collect();
        assert_eq!(samples.len(), 2);
        let labels: Vec<_> = samples[0].labels.iter().collect();
        assert_eq!(
            labels,
            [
                ("path", r"C:\DIR\FILE.TXT".into()),
                ("error", "Cannot find file:\n\"FILE.TXT\"".into())
            ]
        );
        assert_eq!(samples[0].value, 1.458_255_915e9);
        assert_eq!(samples[0].timestamp_ms, None);
        let rule = &samples[1];
        assert_eq!(rule.name, "job:requests:rate5m");
        assert_eq!(rule.labels.get("a").as_deref(), Some("x,y=z"));
        assert_eq!(rule.labels.get("b").as_deref(), Some("}"));
        assert_eq!(rule.timestamp_ms, Some(17));
        assert_eq!((rule.kind, rule.part), (Kind::Untyped, Part::Whole));
        // Unescaped values are borrowed from the body.
        assert!(matches!(
            rule.labels.get("a"),
            Some(std::borrow::Cow::Borrowed(_))
        ));
    }

    #[test]
    fn kinds_come_from_the_type_lines_of_any_earlier_family() {
        let text = "# TYPE h histogram\n# TYPE s summary\n# TYPE c counter\n\
                    h_bucket{le=\"1\"} 1\nh_sum 2\nh_count 3\ns_sum 4\ns_bucket 5\nc 6\nc_sum 7\nh 8\n";
        let got: Vec<_> = Parser::new(text)
            .map(|s| s.map(|s| (s.name, s.kind, s.part)).unwrap())
            .collect();
        assert_eq!(
            got,
            [
                ("h_bucket", Kind::Histogram, Part::Bucket),
                ("h_sum", Kind::Histogram, Part::Sum),
                ("h_count", Kind::Histogram, Part::Count),
                ("s_sum", Kind::Summary, Part::Sum),
                ("s_bucket", Kind::Untyped, Part::Whole),
                ("c", Kind::Counter, Part::Whole),
                ("c_sum", Kind::Untyped, Part::Whole),
                ("h", Kind::Histogram, Part::Whole),
            ]
        );
    }

    #[test]
    fn malformed_lines_are_refused_with_their_number() {
        for (text, line, what) in [
            (
                "ok 1\n\n# c\nbad-name 1\n",
                4,
                "`bad-name` is not a metric name",
            ),
            ("1abc 1\n", 1, "`1abc` is not a metric name"),
            ("ok 1\nnovalue\n", 2, "`novalue`: no value"),
            ("x one\n", 1, "`x`: `one` is not a number"),
            ("x 1 soon\n", 1, "`soon` is not a timestamp"),
            ("x 1 2 3\n", 1, "text after the timestamp"),
            ("x{a=\"1\",\n", 1, "without a closing `}`"),
            ("x{a=\"1\"\n", 1, "expected `,` or `}`"),
            ("x{a=\"1} 2\n", 1, "without a closing `\"`"),
            ("x{a=1} 2\n", 1, "label `a`: expected a quoted value"),
            ("x{a} 2\n", 1, "label `a`: expected `=`"),
            ("x{a=\"1\" b=\"2\"} 2\n", 1, "expected `,` or `}`"),
            ("x{,} 2\n", 1, "expected a label name"),
            ("x{1a=\"1\"} 2\n", 1, "expected a label name"),
            ("x{a=\"1\",a=\"2\"} 2\n", 1, "label `a` appears twice"),
            ("x{a=\"\\t\"} 2\n", 1, "unknown escape `\\t`"),
            ("# TYPE x countr\nx 1\n", 1, "unknown type `countr`"),
            ("# TYPE x\n", 1, "unknown type ``"),
            ("# TYPE x gauge extra\n", 1, "text after the type"),
            ("\r\n# HELP 9x help\n", 2, "`9x` is not a metric name"),
            ("<html>\n", 1, "`<html>` is not a metric name"),
        ] {
            let mut parser = Parser::new(text);
            let err = parser
                .find_map(Result::err)
                .unwrap_or_else(|| panic!("{text:?} parsed"));
            assert_eq!(err.line, line, "{text:?}: {err}");
            assert!(err.message.contains(what), "{text:?}: {err}");
            assert!(err.to_string().starts_with(&format!("line {line}: ")));
            assert!(
                parser.next().is_none(),
                "{text:?}: the walk ends at the error"
            );
        }
    }

    #[test]
    fn comments_help_and_blank_lines_yield_nothing() {
        let text =
            "\n  \n# just words\n#\n# HELP x Some help with \\\\ and \\n.\n\t# TYPE x gauge\n";
        assert_eq!(Parser::new(text).count(), 0);
        assert_eq!(Parser::new("").count(), 0);
        let last: Vec<_> = Parser::new("x 1").map(|s| s.unwrap().value).collect();
        assert_eq!(last, [1.0], "a last line without a line feed");
    }
}
