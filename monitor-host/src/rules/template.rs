//! The subset of Prometheus's Go templates that rule files use, for `annotations` and alerting
//! rule `labels`.
//!
//! Supported, and rendered as Prometheus renders them:
//!
//! - text, and actions `{{ ... }}`, with the trim markers `{{- ` and ` -}}`, and comments
//!   `{{/* ... */}}`;
//! - values: `$value` and `.Value` (the sample's value, a number), `$labels.NAME` and
//!   `.Labels.NAME`, `$externalLabels.NAME` and `.ExternalLabels.NAME` (a label that is not
//!   there is the empty string, as in Prometheus), and string literals (`"..."`, `` `...` ``);
//! - functions: `humanize`, `humanizePercentage`, `humanizeDuration` (of a number, or of a
//!   string that parses as one) and `printf` with a literal format, the verbs `%s` `%v` `%f`
//!   `%F` `%e` `%E` `%g` `%G` `%%`, the flags `-` `+` `0` and space, a width and a precision;
//! - pipelines: `{{ $value | humanize }}`, `{{ $value | printf "%.2f" }}`.
//!
//! Everything else (`if`, `range`, variables of one's own, `query`, other functions, `printf`
//! verbs given an argument of the wrong type or the wrong number of arguments) is refused by
//! [`Template::parse`], so a template that loads is never rendered differently from Prometheus.

use std::collections::BTreeMap;
use std::fmt;

/// A checked template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    nodes: Vec<Node>,
}

/// Why a template was refused, or could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// Byte offset in the template's text of the action at fault.
    pub offset: usize,
    /// What, lowercase.
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TemplateError {}

/// What a template is rendered with.
#[derive(Debug, Clone, Copy)]
pub struct TemplateData<'a> {
    /// The alert's labels (`$labels`).
    pub labels: &'a BTreeMap<String, String>,
    /// The host's external labels (`$externalLabels`).
    pub external_labels: &'a BTreeMap<String, String>,
    /// The sample's value (`$value`).
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action {
        offset: usize,
        pipeline: Vec<Command>,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Value,
    Label(String),
    ExternalLabel(String),
    Str(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Humanize,
    HumanizePercentage,
    HumanizeDuration,
    Printf,
}

#[derive(Debug, Clone, PartialEq)]
enum Command {
    Operand(Operand),
    // For `printf`, the first argument is the format, already checked against the others.
    Call(Func, Vec<Operand>, Vec<Piece>),
}

/// What a command yields: `printf` verbs are checked against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    Text,
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Number(f64),
    Text(String),
}

/// What Go's trim markers remove.
const GO_SPACE: [char; 4] = [' ', '\t', '\r', '\n'];

const FUNCTIONS: &str = "humanize, humanizePercentage, humanizeDuration, printf";

impl Template {
    /// Checks `text` against the supported subset (see the module docs).
    ///
    /// # Errors
    ///
    /// The first construct outside the subset, with its offset in `text`.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut nodes = Vec::new();
        let mut rest = 0;
        let mut trim_next = false;
        while let Some(open) = text[rest..].find("{{").map(|i| rest + i) {
            let mut literal = &text[rest..open];
            if trim_next {
                literal = literal.trim_start_matches(GO_SPACE);
            }
            let close = find_close(text, open + 2).ok_or_else(|| TemplateError {
                offset: open,
                message: "unclosed action: `{{` without `}}`".into(),
            })?;
            let mut body = &text[open + 2..close];
            if let Some(b) = body.strip_prefix('-').filter(|b| b.starts_with(GO_SPACE)) {
                literal = literal.trim_end_matches(GO_SPACE);
                body = &b[1..];
            }
            trim_next = false;
            if let Some(b) = body.strip_suffix('-').filter(|b| b.ends_with(GO_SPACE)) {
                trim_next = true;
                body = &b[..b.len() - 1];
            }
            if !literal.is_empty() {
                nodes.push(Node::Text(literal.to_owned()));
            }
            // As in Go, a comment follows the delimiter (and its trim marker) directly.
            let comment = body.starts_with("/*") && body.ends_with("*/") && body.len() >= 4;
            let body = body.trim();
            if !comment && body.starts_with("/*") {
                return Err(TemplateError {
                    offset: open,
                    message: format!(
                        "a comment must follow `{{{{` directly, as in `{{{{/* ... */}}}}`, in `{}`",
                        &text[open..close + 2]
                    ),
                });
            }
            if !comment {
                let pipeline = parse_pipeline(body).map_err(|message| TemplateError {
                    offset: open,
                    message: format!("{message} in `{}`", &text[open..close + 2]),
                })?;
                nodes.push(Node::Action {
                    offset: open,
                    pipeline,
                });
            }
            rest = close + 2;
        }
        let mut literal = &text[rest..];
        if trim_next {
            literal = literal.trim_start_matches(GO_SPACE);
        }
        if !literal.is_empty() {
            nodes.push(Node::Text(literal.to_owned()));
        }
        Ok(Self {
            source: text.to_owned(),
            nodes,
        })
    }

    /// A template without actions: renders `text` as it is.
    pub fn literal(text: &str) -> Self {
        let nodes = if text.is_empty() {
            Vec::new()
        } else {
            vec![Node::Text(text.to_owned())]
        };
        Self {
            source: text.to_owned(),
            nodes,
        }
    }

    /// The text the template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders the template.
    ///
    /// # Errors
    ///
    /// A `humanize*` function was given a string that is not a number (Prometheus fails the
    /// same way; it shows `<error expanding template: ...>` instead of the text).
    pub fn render(&self, data: &TemplateData<'_>) -> Result<String, TemplateError> {
        let mut out = String::new();
        for node in &self.nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Action { offset, pipeline } => {
                    let value = run(pipeline, data).map_err(|message| TemplateError {
                        offset: *offset,
                        message,
                    })?;
                    match value {
                        Arg::Number(x) => out.push_str(&go_float(x, 'g', None)),
                        Arg::Text(s) => out.push_str(&s),
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The `}}` closing the action opened before `from`, skipping string literals.
fn find_close(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = from;
    while i + 1 < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if bytes[i + 1] == b'}' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn parse_pipeline(body: &str) -> Result<Vec<Command>, String> {
    if body.is_empty() {
        return Err("empty action".into());
    }
    let tokens = tokenize(body)?;
    let mut pipeline = Vec::new();
    let mut piped: Option<Kind> = None;
    for words in tokens.split(|t| t == "|") {
        let (command, kind) = parse_command(words, piped)?;
        pipeline.push(command);
        piped = Some(kind);
    }
    Ok(pipeline)
}

fn tokenize(body: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut chars = body.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let end = match c {
            '"' | '`' => {
                chars.next();
                let mut escaped = false;
                loop {
                    let Some((i, d)) = chars.next() else {
                        return Err("unterminated string".into());
                    };
                    if c == '"' && d == '\\' && !escaped {
                        escaped = true;
                        continue;
                    }
                    if d == c && !escaped {
                        break i + 1;
                    }
                    escaped = false;
                }
            }
            '|' => {
                chars.next();
                start + 1
            }
            _ => {
                let mut end = body.len();
                while let Some(&(i, d)) = chars.peek() {
                    if d.is_whitespace() || d == '|' {
                        end = i;
                        break;
                    }
                    chars.next();
                }
                end
            }
        };
        tokens.push(body[start..end].to_owned());
    }
    Ok(tokens)
}

fn parse_command(words: &[String], piped: Option<Kind>) -> Result<(Command, Kind), String> {
    let Some(first) = words.first() else {
        return Err("missing command around `|`".into());
    };
    let func = match first.as_str() {
        "humanize" => Some(Func::Humanize),
        "humanizePercentage" => Some(Func::HumanizePercentage),
        "humanizeDuration" => Some(Func::HumanizeDuration),
        "printf" => Some(Func::Printf),
        _ => None,
    };
    let Some(func) = func else {
        if piped.is_some() {
            return Err(format!(
                "`{first}` cannot take a piped value: only the functions {FUNCTIONS} are supported"
            ));
        }
        if words.len() > 1 {
            return Err(format!(
                "`{first}` is not a function; the supported functions are {FUNCTIONS}"
            ));
        }
        let operand = parse_operand(first)?;
        let kind = kind_of(&operand);
        return Ok((Command::Operand(operand), kind));
    };
    let args = words[1..]
        .iter()
        .map(|w| parse_operand(w))
        .collect::<Result<Vec<_>, _>>()?;
    let mut kinds: Vec<Kind> = args.iter().map(kind_of).collect();
    kinds.extend(piped);
    if func == Func::Printf {
        let Some(Operand::Str(format)) = args.first() else {
            return Err("`printf` needs a literal format string first".into());
        };
        let pieces = parse_format(format)?;
        check_format(&pieces, &kinds[1..])?;
        return Ok((Command::Call(func, args, pieces), Kind::Text));
    }
    if kinds.len() != 1 {
        return Err(format!(
            "`{first}` takes one argument, given {}",
            kinds.len()
        ));
    }
    Ok((Command::Call(func, args, Vec::new()), Kind::Text))
}

fn kind_of(operand: &Operand) -> Kind {
    match operand {
        Operand::Value => Kind::Number,
        _ => Kind::Text,
    }
}

fn parse_operand(word: &str) -> Result<Operand, String> {
    if let Some(s) = word.strip_prefix('`').and_then(|w| w.strip_suffix('`')) {
        return Ok(Operand::Str(s.to_owned()));
    }
    if word.starts_with('"') {
        return unquote(word).map(Operand::Str);
    }
    let field = |rest: &str| -> Result<String, String> {
        let name = rest
            .strip_prefix('.')
            .ok_or_else(|| format!("`{word}` needs a label name, as in `{word}.job`"))?;
        let mut chars = name.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            Ok(name.to_owned())
        } else {
            Err(format!("`{word}`: `{name}` is not a label name"))
        }
    };
    match word {
        "$value" | ".Value" => return Ok(Operand::Value),
        _ => {}
    }
    for prefix in ["$labels", ".Labels"] {
        if let Some(rest) = word.strip_prefix(prefix) {
            return field(rest).map(Operand::Label);
        }
    }
    for prefix in ["$externalLabels", ".ExternalLabels"] {
        if let Some(rest) = word.strip_prefix(prefix) {
            return field(rest).map(Operand::ExternalLabel);
        }
    }
    Err(format!(
        "`{word}` is not supported: use $value, $labels.NAME, $externalLabels.NAME (or .Value, \
         .Labels.NAME, .ExternalLabels.NAME), a string, or the functions {FUNCTIONS}"
    ))
}

/// A Go interpreted string literal.
fn unquote(word: &str) -> Result<String, String> {
    let inner = &word[1..word.len() - 1];
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            other => {
                return Err(format!(
                    "unsupported escape `\\{}` in a string",
                    other.map(String::from).unwrap_or_default()
                ));
            }
        }
    }
    Ok(out)
}

// ---- printf ----

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Literal(String),
    Verb(Verb),
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Verb {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    precision: Option<usize>,
    verb: char,
}

/// The largest `printf` width or precision: enough for any text, and no way to make a
/// template render megabytes.
const MAX_WIDTH: usize = 100;

fn parse_format(format: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            literal.push(c);
            continue;
        }
        let mut v = Verb::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => v.minus = true,
                '+' => v.plus = true,
                '0' => v.zero = true,
                ' ' => v.space = true,
                _ => break,
            }
            chars.next();
        }
        v.width = number(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            v.precision = Some(number(&mut chars).unwrap_or(0));
        }
        if v.width.max(v.precision).is_some_and(|n| n > MAX_WIDTH) {
            return Err(format!(
                "`printf`: widths and precisions above {MAX_WIDTH} are not supported"
            ));
        }
        match chars.next() {
            Some('%') if v == Verb::default() => literal.push('%'),
            Some(verb @ ('s' | 'v' | 'f' | 'F' | 'e' | 'E' | 'g' | 'G')) => {
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                v.verb = verb;
                pieces.push(Piece::Verb(v));
            }
            Some(other) => {
                return Err(format!(
                    "`printf`: the verb `%{other}` is not supported; use %s, %v, %f, %e or %g"
                ));
            }
            None => return Err("`printf`: the format ends with `%`".into()),
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

fn number(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        chars.next();
        n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
    }
    n
}

fn check_format(pieces: &[Piece], kinds: &[Kind]) -> Result<(), String> {
    let verbs: Vec<&Verb> = pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Verb(v) => Some(v),
            Piece::Literal(_) => None,
        })
        .collect();
    if verbs.len() != kinds.len() {
        return Err(format!(
            "`printf`: the format has {} verb(s) for {} argument(s)",
            verbs.len(),
            kinds.len()
        ));
    }
    for (v, kind) in verbs.iter().zip(kinds) {
        match (v.verb, kind) {
            ('v', _) | ('s', Kind::Text) => {}
            ('s', Kind::Number) => {
                return Err("`printf`: `%s` is given a number; use %v, %f, %e or %g".into());
            }
            (verb, Kind::Text) => {
                return Err(format!(
                    "`printf`: `%{verb}` is given a string; use %s or %v, or pass $value"
                ));
            }
            (_, Kind::Number) => {}
        }
    }
    Ok(())
}

// ---- evaluation ----

fn run(pipeline: &[Command], data: &TemplateData<'_>) -> Result<Arg, String> {
    let mut piped: Option<Arg> = None;
    for command in pipeline {
        piped = Some(match command {
            Command::Operand(o) => operand(o, data),
            Command::Call(func, args, pieces) => {
                let mut args: Vec<Arg> = args.iter().map(|a| operand(a, data)).collect();
                args.extend(piped.take());
                call(*func, &args, pieces)?
            }
        });
    }
    Ok(piped.unwrap_or(Arg::Text(String::new())))
}

fn operand(o: &Operand, data: &TemplateData<'_>) -> Arg {
    match o {
        Operand::Value => Arg::Number(data.value),
        Operand::Label(l) => Arg::Text(data.labels.get(l).cloned().unwrap_or_default()),
        Operand::ExternalLabel(l) => {
            Arg::Text(data.external_labels.get(l).cloned().unwrap_or_default())
        }
        Operand::Str(s) => Arg::Text(s.clone()),
    }
}

fn call(func: Func, args: &[Arg], pieces: &[Piece]) -> Result<Arg, String> {
    if func == Func::Printf {
        return Ok(Arg::Text(printf(pieces, &args[1..])));
    }
    let v = match &args[0] {
        Arg::Number(x) => *x,
        Arg::Text(s) => s
            .parse::<f64>()
            .map_err(|_| format!("can't convert `{s}` to a number"))?,
    };
    Ok(Arg::Text(match func {
        Func::Humanize => humanize(v),
        Func::HumanizePercentage => format!("{}%", go_float(v * 100.0, 'g', Some(4))),
        Func::HumanizeDuration => humanize_duration(v),
        Func::Printf => unreachable!("handled above"),
    }))
}

fn printf(pieces: &[Piece], args: &[Arg]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    for p in pieces {
        match p {
            Piece::Literal(l) => out.push_str(l),
            Piece::Verb(v) => match args.next() {
                Some(Arg::Number(x)) => out.push_str(&format_number(*x, v)),
                Some(Arg::Text(s)) => {
                    let s: String = match v.precision {
                        Some(p) => s.chars().take(p).collect(),
                        None => s.clone(),
                    };
                    out.push_str(&pad(s, v));
                }
                None => {}
            },
        }
    }
    out
}

/// A number as Go's `fmt` writes it with this verb, flags, width and precision.
fn format_number(x: f64, v: &Verb) -> String {
    let (verb, precision) = match v.verb {
        'v' => ('g', v.precision),
        'f' | 'F' | 'e' | 'E' => (v.verb, Some(v.precision.unwrap_or(6))),
        other => (other, v.precision),
    };
    let digits = go_float(x.abs(), verb.to_ascii_lowercase(), precision);
    let mut digits = if verb.is_ascii_uppercase() {
        digits.to_uppercase()
    } else {
        digits
    };
    if x.is_nan() {
        let sign = if v.plus {
            "+"
        } else if v.space {
            " "
        } else {
            ""
        };
        return pad(format!("{sign}NaN"), v);
    }
    if x.is_infinite() {
        digits = if verb.is_ascii_uppercase() {
            "INF"
        } else {
            "Inf"
        }
        .to_owned();
        let sign = if x < 0.0 { "-" } else { "+" };
        return pad(format!("{sign}{digits}"), v);
    }
    let sign = if x.is_sign_negative() {
        "-"
    } else if v.plus {
        "+"
    } else if v.space {
        " "
    } else {
        ""
    };
    if v.zero && !v.minus {
        let width = v.width.unwrap_or(0);
        let len = sign.len() + digits.len();
        if width > len {
            return format!("{sign}{}{digits}", "0".repeat(width - len));
        }
    }
    pad(format!("{sign}{digits}"), v)
}

fn pad(s: String, v: &Verb) -> String {
    let width = v.width.unwrap_or(0);
    let len = s.chars().count();
    if width <= len {
        return s;
    }
    let fill = " ".repeat(width - len);
    if v.minus { s + &fill } else { fill + &s }
}

/// A non-negative finite `x` (or NaN / infinity) as Go's `strconv.FormatFloat(x, verb, prec, 64)`
/// writes it, for the verbs `e`, `f` and `g`; `None` is the shortest exact precision.
fn go_float(x: f64, verb: char, precision: Option<usize>) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    let x = x.abs();
    match verb {
        'f' => format!("{sign}{:.*}", precision.unwrap_or(6), x),
        'e' => {
            let (digits, dp) = decimal(x, precision.map(|p| p + 1));
            let p = precision.unwrap_or(digits.len().saturating_sub(1));
            format!("{sign}{}", fmt_e(&digits, dp, p))
        }
        _ => format!("{sign}{}", fmt_g(x, precision)),
    }
}

/// The decimal digits of `x` (no trailing zeros; none for zero) and the position of the decimal
/// point, rounded to `significant` digits, or the shortest that reads back exactly.
fn decimal(x: f64, significant: Option<usize>) -> (Vec<u8>, i32) {
    if x == 0.0 {
        return (Vec::new(), 0);
    }
    let s = match significant {
        Some(n) => format!("{:.*e}", n.max(1) - 1, x),
        None => format!("{x:e}"),
    };
    let (mantissa, exp) = s.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    (digits, exp + 1)
}

fn fmt_g(x: f64, precision: Option<usize>) -> String {
    let shortest = precision.is_none();
    let (digits, dp) = decimal(x, precision.map(|p| p.max(1)));
    let nd = digits.len() as i32;
    let mut prec = precision.map_or(nd, |p| p.max(1) as i32);
    let mut eprec = prec;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if shortest {
        eprec = 6;
    }
    let exp = dp - 1;
    if exp < -4 || exp >= eprec {
        if prec > nd {
            prec = nd;
        }
        return fmt_e(&digits, dp, (prec - 1).max(0) as usize);
    }
    if prec > dp {
        prec = nd;
    }
    fmt_f(&digits, dp, (prec - dp).max(0) as usize)
}

fn digit(digits: &[u8], i: i32) -> char {
    usize::try_from(i)
        .ok()
        .and_then(|i| digits.get(i))
        .map_or('0', |&d| d as char)
}

fn fmt_e(digits: &[u8], dp: i32, prec: usize) -> String {
    let mut out = String::new();
    out.push(digit(digits, 0));
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(digit(digits, i as i32));
        }
    }
    let exp = if digits.is_empty() { 0 } else { dp - 1 };
    let sign = if exp < 0 { '-' } else { '+' };
    out.push_str(&format!("e{sign}{:02}", exp.abs()));
    out
}

fn fmt_f(digits: &[u8], dp: i32, prec: usize) -> String {
    let mut out = String::new();
    if dp > 0 {
        for i in 0..dp {
            out.push(digit(digits, i));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 1..=prec as i32 {
            out.push(digit(digits, dp + i - 1));
        }
    }
    out
}

/// Prometheus's `humanize`: SI prefixes, four significant digits.
fn humanize(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return go_float(v, 'g', Some(4));
    }
    let mut v = v;
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", go_float(v, 'g', Some(4)))
}

/// Prometheus's `humanizeDuration`: seconds as `1d 2h 3m 4s`, or with a prefix below a second.
fn humanize_duration(v: f64) -> String {
    if !v.is_finite() {
        return go_float(v, 'g', Some(4));
    }
    if v == 0.0 {
        return format!("{}s", go_float(v, 'g', Some(4)));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let v = v.abs();
        // Go converts with int64(v): truncation.
        let whole = v as i64;
        let (seconds, minutes) = (whole % 60, (whole / 60) % 60);
        let (hours, days) = ((whole / 3600) % 24, whole / 86400);
        return if days != 0 {
            format!("{sign}{days}d {hours}h {minutes}m {seconds}s")
        } else if hours != 0 {
            format!("{sign}{hours}h {minutes}m {seconds}s")
        } else if minutes != 0 {
            format!("{sign}{minutes}m {seconds}s")
        } else {
            format!("{sign}{}s", go_float(v, 'g', Some(4)))
        };
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", go_float(v, 'g', Some(4)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_with(text: &str, value: f64, labels: &[(&str, &str)]) -> String {
        let labels: BTreeMap<String, String> = (labels.iter())
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let external = BTreeMap::from([("region".to_owned(), "eu".to_owned())]);
        let data = TemplateData {
            labels: &labels,
            external_labels: &external,
            value,
        };
        Template::parse(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .render(&data)
            .unwrap()
    }

    fn render(text: &str, value: f64) -> String {
        render_with(text, value, &[("job", "api"), ("n", "1500")])
    }

    fn refused(text: &str) -> String {
        Template::parse(text).expect_err(text).message
    }

    #[test]
    fn values_labels_and_external_labels() {
        assert_eq!(render("{{ $value }}", 80.0), "80");
        assert_eq!(render("{{ .Value }}", 0.25), "0.25");
        assert_eq!(
            render("{{ $labels.job }}/{{ .Labels.job }}", 1.0),
            "api/api"
        );
        assert_eq!(
            render(
                "{{ $externalLabels.region }} {{ .ExternalLabels.region }}",
                1.0
            ),
            "eu eu"
        );
        assert_eq!(render("plain text", 1.0), "plain text");
    }

    #[test]
    fn a_missing_label_is_the_empty_string() {
        assert_eq!(render("[{{ $labels.nope }}]", 1.0), "[]");
        assert_eq!(render("[{{ $externalLabels.nope }}]", 1.0), "[]");
    }

    #[test]
    fn value_prints_as_go_prints_a_float64() {
        for (x, go) in [
            (100000.0, "100000"),
            (1000000.0, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (0.0, "0"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(render("{{ $value }}", x), go, "{x}");
        }
    }

    #[test]
    fn humanize_uses_si_prefixes_and_four_digits() {
        for (x, go) in [
            (0.0, "0"),
            (1.0, "1"),
            (1234.0, "1.234k"),
            (12345.0, "12.35k"),
            (1.5e9, "1.5G"),
            (0.001234, "1.234m"),
            (-2500.0, "-2.5k"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(render("{{ humanize $value }}", x), go, "{x}");
            assert_eq!(render("{{ $value | humanize }}", x), go, "{x}");
        }
        // A label that holds a number is converted, as Prometheus does.
        assert_eq!(render("{{ humanize $labels.n }}", 0.0), "1.5k");
    }

    #[test]
    fn humanize_percentage_and_duration() {
        assert_eq!(render("{{ humanizePercentage $value }}", 0.1234), "12.34%");
        assert_eq!(render("{{ humanizePercentage $value }}", 1.0), "100%");
        for (x, go) in [
            (0.0, "0s"),
            (1.5, "1.5s"),
            (90.0, "1m 30s"),
            (3725.0, "1h 2m 5s"),
            (90061.0, "1d 1h 1m 1s"),
            (0.0025, "2.5ms"),
            (-90.0, "-1m 30s"),
        ] {
            assert_eq!(render("{{ humanizeDuration $value }}", x), go, "{x}");
        }
    }

    #[test]
    fn printf_formats_as_go() {
        assert_eq!(render(r#"{{ printf "%.2f" $value }}"#, 1.23456), "1.23");
        assert_eq!(render(r#"{{ $value | printf "%.1f%%" }}"#, 99.44), "99.4%");
        assert_eq!(
            render(r#"{{ printf "%8.3e" $value }}"#, 12345.678),
            "1.235e+04"
        );
        assert_eq!(
            render(r#"{{ printf "%6.2f|%-6s|" $value "ab" }}"#, 1.5),
            "  1.50|ab    |"
        );
        assert_eq!(render(r#"{{ printf "%05.1f" $value }}"#, -1.5), "-01.5");
        assert_eq!(render(r#"{{ printf "%+.0f" $value }}"#, 2.0), "+2");
        assert_eq!(
            render(r#"{{ printf "%v %g" $value $value }}"#, 0.5),
            "0.5 0.5"
        );
        assert_eq!(render(r#"{{ printf "%.3g" $value }}"#, 1234.5), "1.23e+03");
        assert_eq!(
            render(r#"{{ printf "%s is %s" $labels.job "up" }}"#, 0.0),
            "api is up"
        );
        assert_eq!(
            render(r#"{{ printf "%.0f" $value }}"#, f64::INFINITY),
            "+Inf"
        );
    }

    #[test]
    fn trim_markers_and_comments() {
        assert_eq!(render("a  {{- $value -}}  b", 1.0), "a1b");
        assert_eq!(render("a {{/* hidden */}}b", 1.0), "a b");
        assert_eq!(render("a {{- /* hidden */ -}} b", 1.0), "ab");
        // Only ASCII spaces make a trim marker, as in Go; a no-break space does not.
        assert!(Template::parse("{{-\u{a0}$value }}").is_err());
        assert_eq!(render("a \n{{- $value }}", 1.0), "a1");
        let e = refused("{{ /* spaced */ }}");
        assert!(e.contains("a comment must follow `{{` directly"), "{e}");
    }

    #[test]
    fn what_is_outside_the_subset_is_refused_at_parse() {
        for (text, says) in [
            ("{{ range $labels }}x{{ end }}", "`range` is not a function"),
            ("{{ if $value }}x{{ end }}", "`if` is not a function"),
            (
                "{{ $labels.job | toUpper }}",
                "`toUpper` cannot take a piped value",
            ),
            ("{{ toUpper $labels.job }}", "`toUpper` is not a function"),
            ("{{ $externalURL }}", "`$externalURL` is not supported"),
            ("{{ $labels }}", "needs a label name"),
            ("{{ $x := 1 }}", "`$x` is not a function"),
            ("{{ query \"up\" }}", "`query` is not a function"),
            ("{{ $value ", "unclosed action"),
            ("{{ }}", "empty action"),
            ("{{ humanize }}", "takes one argument, given 0"),
            (
                "{{ humanize $value $value }}",
                "takes one argument, given 2",
            ),
            ("{{ printf $value }}", "literal format string"),
            (r#"{{ printf "%d" $value }}"#, "`%d` is not supported"),
            (
                r#"{{ printf "%.2f" $labels.job }}"#,
                "`%f` is given a string",
            ),
            (r#"{{ printf "%s" $value }}"#, "`%s` is given a number"),
            (
                r#"{{ printf "%f %f" $value }}"#,
                "2 verb(s) for 1 argument(s)",
            ),
            (r#"{{ printf "%f" }}"#, "1 verb(s) for 0 argument(s)"),
            (r#"{{ printf "100%" }}"#, "ends with `%`"),
            (
                r#"{{ printf "%.999999999f" $value }}"#,
                "above 100 are not supported",
            ),
            ("{{ \"unterminated }}", "unclosed action"),
        ] {
            let message = refused(text);
            assert!(message.contains(says), "{text}: {message}");
        }
    }

    #[test]
    fn an_error_names_its_action_and_offset() {
        let e = Template::parse("ok {{ $value }} then {{ bad }}").unwrap_err();
        assert_eq!(e.offset, 21);
        assert!(e.message.ends_with("in `{{ bad }}`"), "{}", e.message);
    }

    #[test]
    fn a_label_that_is_not_a_number_fails_humanize_at_render() {
        let labels = BTreeMap::from([("job".to_owned(), "api".to_owned())]);
        let empty = BTreeMap::new();
        let data = TemplateData {
            labels: &labels,
            external_labels: &empty,
            value: 1.0,
        };
        let e = Template::parse("{{ humanize $labels.job }}")
            .unwrap()
            .render(&data)
            .unwrap_err();
        assert!(e.message.contains("can't convert `api`"), "{}", e.message);
    }

    #[test]
    fn a_literal_renders_as_it_is() {
        let t = Template::literal("{{ not parsed }}");
        let empty = BTreeMap::new();
        let data = TemplateData {
            labels: &empty,
            external_labels: &empty,
            value: 0.0,
        };
        assert_eq!(t.render(&data).unwrap(), "{{ not parsed }}");
        assert_eq!(t.source(), "{{ not parsed }}");
    }
}
