//! Label matchers with Alertmanager's syntax and semantics.
//!
//! A matcher is `name op value` with `op` one of `=`, `!=`, `=~`, `!~`; the value is a
//! double-quoted string (escapes `\"`, `\\`, `\n`) or a bare word. Regular expressions are fully
//! anchored (`=~"disk.*"` matches `disk_full`, not `big_disk_full`), and a label an alert lacks
//! reads as the empty string, so `host=""` matches an alert without `host` and `host!~".+"` too.

use std::fmt;

use monitor_plugin::Labels;
use regex::Regex;

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`: equal.
    Equal,
    /// `!=`: not equal.
    NotEqual,
    /// `=~`: matches the whole regular expression.
    Regex,
    /// `!~`: does not match it.
    NotRegex,
}

impl MatchOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Equal => "=",
            Self::NotEqual => "!=",
            Self::Regex => "=~",
            Self::NotRegex => "!~",
        }
    }

    /// From Alertmanager v2's `isRegex` and `isEqual` flags.
    pub fn from_flags(is_regex: bool, is_equal: bool) -> Self {
        match (is_regex, is_equal) {
            (false, true) => Self::Equal,
            (false, false) => Self::NotEqual,
            (true, true) => Self::Regex,
            (true, false) => Self::NotRegex,
        }
    }

    /// Whether it is `=~` or `!~`.
    pub fn is_regex(self) -> bool {
        matches!(self, Self::Regex | Self::NotRegex)
    }

    /// Whether it is `=` or `=~`.
    pub fn is_equal(self) -> bool {
        matches!(self, Self::Equal | Self::Regex)
    }
}

/// One label matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// The label's name.
    pub name: String,
    /// The comparison.
    pub op: MatchOp,
    /// The value or the regular expression, as written (unanchored).
    pub value: String,
    // The anchored expression, for `=~` and `!~`.
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        (&self.name, self.op, &self.value) == (&other.name, other.op, &other.value)
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Matcher {
    /// A matcher; a regular expression is compiled anchored at both ends.
    ///
    /// # Errors
    ///
    /// The name is not a label name, or the regular expression does not compile.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Self, String> {
        if !valid_name(name) {
            return Err(format!(
                "invalid label name `{name}` in a matcher: letters, digits and `_`, not starting \
                 with a digit"
            ));
        }
        let re = if op.is_regex() {
            let anchored = format!("^(?:{value})$");
            Some(Regex::new(&anchored).map_err(|e| {
                format!("invalid regular expression `{value}` for label `{name}`: {e}")
            })?)
        } else {
            None
        };
        Ok(Self {
            name: name.to_owned(),
            op,
            value: value.to_owned(),
            re,
        })
    }

    /// Parses Alertmanager's matcher syntax: `alertname="disk_full"`, `host!~"db[0-9]+"`,
    /// `severity=critical`.
    ///
    /// # Errors
    ///
    /// What is wrong with `text`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let end = t
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(t.len());
        let (name, rest) = t.split_at(end);
        let rest = rest.trim_start();
        let (op, rest) = [
            ("=~", MatchOp::Regex),
            ("!~", MatchOp::NotRegex),
            ("!=", MatchOp::NotEqual),
            ("=", MatchOp::Equal),
        ]
        .into_iter()
        .find_map(|(s, op)| rest.strip_prefix(s).map(|r| (op, r)))
        .ok_or_else(|| {
            format!("invalid matcher `{text}`: expected `name=\"value\"` with =, !=, =~ or !~")
        })?;
        let value = unquote(rest.trim()).map_err(|e| format!("invalid matcher `{text}`: {e}"))?;
        Self::new(name, op, &value)
    }

    /// Whether `labels` satisfy this matcher; a missing label reads as `""`.
    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.name).map_or("", String::as_str);
        match (self.op, &self.re) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(v),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(v),
            (_, None) => unreachable!("regex matchers always hold their expression"),
        }
    }
}

/// Whether every matcher of `matchers` matches `labels` (Alertmanager's conjunction).
pub fn all_match(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

/// A value: double-quoted with escapes, or a bare word without quotes, spaces or commas.
fn unquote(text: &str) -> Result<String, String> {
    let Some(inner) = text.strip_prefix('"') else {
        if text.contains(['"', ',', '{', '}']) || text.chars().any(char::is_whitespace) {
            return Err("a value with quotes, spaces or commas must be double-quoted".into());
        }
        return Ok(text.to_owned());
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                return if chars.as_str().is_empty() {
                    Ok(out)
                } else {
                    Err(format!("unexpected `{}` after the value", chars.as_str()))
                };
            }
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some(c @ ('"' | '\\')) => out.push(c),
                // Kept as written: a regex escape such as `\d` or `\.`.
                Some(c) => {
                    out.push('\\');
                    out.push(c);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("unterminated quoted value".into())
}

impl fmt::Display for Matcher {
    /// Alertmanager's syntax, the value always quoted: parses back to the same matcher.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut escaped = String::with_capacity(self.value.len());
        for c in self.value.chars() {
            match c {
                '"' => escaped.push_str("\\\""),
                '\n' => escaped.push_str("\\n"),
                '\\' => escaped.push_str("\\\\"),
                c => escaped.push(c),
            }
        }
        write!(f, "{}{}\"{}\"", self.name, self.op.as_str(), escaped)
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

    fn m(text: &str) -> Matcher {
        Matcher::parse(text).unwrap()
    }

    #[test]
    fn each_operator() {
        let l = labels(&[("alertname", "disk_full"), ("host", "db1")]);
        assert!(m(r#"host="db1""#).matches(&l));
        assert!(!m(r#"host="db2""#).matches(&l));
        assert!(m(r#"host!="db2""#).matches(&l));
        assert!(!m(r#"host!="db1""#).matches(&l));
        assert!(m(r#"host=~"db[0-9]""#).matches(&l));
        assert!(!m(r#"host=~"web.*""#).matches(&l));
        assert!(m(r#"host!~"web.*""#).matches(&l));
        assert!(!m(r#"host!~"db.*""#).matches(&l));
        assert!(m("alertname=disk_full").matches(&l), "a bare value");
    }

    #[test]
    fn regexes_are_fully_anchored() {
        let l = labels(&[("alertname", "big_disk_full")]);
        assert!(!m(r#"alertname=~"disk.*""#).matches(&l));
        assert!(!m(r#"alertname=~"big""#).matches(&l));
        assert!(m(r#"alertname=~".*disk.*""#).matches(&l));
        assert!(
            m(r#"alertname=~"big|big_disk_full""#).matches(&l),
            "alternation inside the anchors"
        );
        assert!(m(r#"alertname!~"disk.*""#).matches(&l));
    }

    #[test]
    fn a_missing_label_is_the_empty_string() {
        let l = labels(&[("alertname", "x")]);
        assert!(m(r#"host="""#).matches(&l));
        assert!(!m(r#"host!="""#).matches(&l));
        assert!(m(r#"host=~".*""#).matches(&l));
        assert!(!m(r#"host=~".+""#).matches(&l));
        assert!(m(r#"host!~".+""#).matches(&l));
        assert!(m(r#"host!="db1""#).matches(&l));
    }

    #[test]
    fn quoting_and_display_round_trip() {
        let q = m(r#"msg="say \"hi\"\n""#);
        assert_eq!(q.value, "say \"hi\"\n");
        assert_eq!(Matcher::parse(&q.to_string()).unwrap(), q);
        let r = m(r#"host=~"db\d+\.example""#);
        assert_eq!(r.value, r"db\d+\.example");
        assert!(r.matches(&labels(&[("host", "db12.example")])));
        assert_eq!(Matcher::parse(&r.to_string()).unwrap(), r);
        assert_eq!(m(r#" host = "a" "#).to_string(), r#"host="a""#);
    }

    #[test]
    fn bad_matchers_are_refused_with_the_reason() {
        for (text, why) in [
            ("host", "expected `name=\"value\"`"),
            (r#"="x""#, "invalid label name"),
            (r#"1host="x""#, "invalid label name"),
            (r#"host=~"(""#, "invalid regular expression"),
            (r#"host="x"#, "unterminated"),
            (r#"host="x" y"#, "after the value"),
            ("host=a b", "double-quoted"),
        ] {
            let e = Matcher::parse(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn flags_map_to_operators() {
        assert_eq!(MatchOp::from_flags(false, true), MatchOp::Equal);
        assert_eq!(MatchOp::from_flags(false, false), MatchOp::NotEqual);
        assert_eq!(MatchOp::from_flags(true, true), MatchOp::Regex);
        assert_eq!(MatchOp::from_flags(true, false), MatchOp::NotRegex);
        for op in [
            MatchOp::Equal,
            MatchOp::NotEqual,
            MatchOp::Regex,
            MatchOp::NotRegex,
        ] {
            assert_eq!(MatchOp::from_flags(op.is_regex(), op.is_equal()), op);
        }
    }
}
