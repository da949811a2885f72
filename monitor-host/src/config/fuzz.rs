//! A seeded, deterministic mutation fuzzer over the configs found in the repository: the demo
//! config, `examples/`, and the configs embedded in the host's and the workspace tests' sources.
//!
//! Each case mutates one seed config a few times (lines deleted, duplicated or swapped, characters
//! flipped, TOML punctuation inserted, values replaced by huge, negative, non-finite, empty, unicode,
//! deeply nested or very long ones, unknown keys, wrong types, `${VAR}` forms, rule-file text) and
//! asserts that [`Config::from_str`] neither panics nor returns an error without a real position:
//! every error is `file:line:col: message` with the line and column inside the text (a rule
//! file's errors name that file), no error comes twice, and errors come sorted by position.
//!
//! `MONITOR_FUZZ_CASES` (default 3000) and `MONITOR_FUZZ_SEED` (decimal or `0x` hex) run longer or
//! other campaigns; a failure prints the seed and the case number, and the input.

use std::env::VarError;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use super::{Config, ConfigErrors};

const DEFAULT_CASES: u64 = 3000;
const DEFAULT_SEED: u64 = 0x006d_6f6e_6974_6f72;
const FILE: &str = "monitor.toml";

/// xorshift64*: small, fast, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // splitmix64 of the seed, so that neighbouring seeds give unrelated streams (and 0 works).
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Self((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// In `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the host crate sits in the workspace")
        .to_path_buf()
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path, ext));
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The string literals of a Rust source, decoded (`\n`, `\"`, line continuations; raw strings as
/// they are), with `{{`/`}}` of format strings undone.
fn string_literals(source: &str) -> Vec<String> {
    let b = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                i = source[i..].find('\n').map_or(b.len(), |n| i + n);
            }
            // A char literal such as '"' is not a string.
            b'\'' if b.get(i + 2) == Some(&b'\'') => i += 3,
            b'r' if matches!(b.get(i + 1), Some(b'"' | b'#'))
                && (i == 0 || !b[i - 1].is_ascii_alphanumeric() && b[i - 1] != b'_') =>
            {
                let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
                let open = i + 1 + hashes;
                if b.get(open) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close = format!("\"{}", "#".repeat(hashes));
                match source[open + 1..].find(&close) {
                    Some(n) => {
                        out.push(source[open + 1..open + 1 + n].to_owned());
                        i = open + 1 + n + close.len();
                    }
                    None => break,
                }
            }
            b'"' => {
                let mut s = String::new();
                let mut chars = source[i + 1..].char_indices();
                let mut end = b.len();
                while let Some((n, c)) = chars.next() {
                    match c {
                        '"' => {
                            end = i + 1 + n + 1;
                            break;
                        }
                        '\\' => match chars.next().map(|(_, c)| c) {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some('\n') => {
                                // A line continuation skips the next line's indentation.
                                let rest = chars.as_str();
                                let skip = rest.len() - rest.trim_start().len();
                                for _ in 0..rest[..skip].chars().count() {
                                    chars.next();
                                }
                            }
                            Some(c) => s.push(c),
                            None => {}
                        },
                        c => s.push(c),
                    }
                }
                out.push(s);
                i = end;
            }
            _ => i += 1,
        }
    }
    out.into_iter()
        .map(|s| s.replace("{{", "{").replace("}}", "}"))
        .collect()
}

/// A config has a table header line of its own.
fn looks_like_config(s: &str) -> bool {
    const TABLES: &[&str] = &[
        "[host]",
        "[[collector]]",
        "[[alert]]",
        "[[notifier]]",
        "[[strategy]]",
        "[[remote_write]]",
    ];
    s.lines().any(|l| TABLES.contains(&l.trim()))
}

/// Fills in the placeholders of format strings: one standing for a value becomes a string, one on
/// a line of its own goes, one inside a string becomes a number. `{}` is left alone: it is also an
/// empty inline table.
struct Placeholders {
    line: regex::Regex,
    value: regex::Regex,
    inner: regex::Regex,
}

impl Placeholders {
    fn new() -> Self {
        let regex = |r| regex::Regex::new(r).expect("a valid regex");
        Self {
            line: regex(r"(?m)^\{[a-z_0-9]*(:\?)?\}$"),
            value: regex(r"= \{[a-z_0-9]*(:\?)?\}"),
            inner: regex(r"\{([a-z_0-9]+(:\?)?|:\?)\}"),
        }
    }

    fn fill(&self, s: &str) -> String {
        let s = self.line.replace_all(s, "");
        let s = self.value.replace_all(&s, "= \"placeholder\"");
        self.inner.replace_all(&s, "9464").into_owned()
    }
}

/// A config with every table and most keys, all valid.
const EVERYTHING: &str = r#"
[host]
name = "web-1"
interval = "10s"
listen = "127.0.0.1:9464"
data_dir = "data"
retention = "2h"
rollup_retention = "7d"
timeout = "5s"
max_payload_bytes = 1048576
resend_delay = "1m"
repeat_interval = "4h"
max_future_skew = "5m"
rule_files = ["rules/valid/*.yml"]
max_series = 1000
http_auth = { basic_auth_users = { ann = "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b" } }

[[collector]]
plugin = "system"
library = "lib/libsystem.so"
interval = "5s"
max_series = 100
[collector.config]
per_core = true
nested = { a = [1, 2.5, "x"], b = { c = true } }

[[alert]]
name = "high_cpu"
metric = "system.cpu.usage"
condition = "above"
threshold = 80
for = "30s"
severity = "critical"
description = "CPU is high"
labels = { collector = "system" }

[[alert]]
name = "down"
expr = "up == 0"
for = "1m"
keep_firing_for = "5m"
labels = { team = "ops" }
annotations = { summary = "{{ $labels.instance }} is down: {{ $value }}" }

[[notifier]]
plugin = "log"
library = "lib/liblog.so"
min_severity = "warning"
alertmanager = true
resend_every = "off"
timeout = "2s"

[[strategy]]
plugin = "restart-command"
library = "lib/librestart.so"
on = ["high_cpu", "down"]
max_attempts = 2
within = "5m"
cooldown = "30s"
[strategy.config]
command = "true"

[[remote_write]]
url = "http://127.0.0.1:9090/api/v1/write"
name = "central"
timeout = "10s"
queue_capacity = 1000
max_samples_per_send = 100
batch_send_deadline = "1s"
min_backoff = "50ms"
max_backoff = "2s"
headers = { "X-Scope-OrgID" = "${SET}" }
labels = { region = "${UNSET:-eu}" }
"#;

/// Every config of the repository: one with every key, the examples, then those embedded in
/// sources, deduplicated.
fn seed_configs(root: &Path) -> Vec<String> {
    let mut seeds: Vec<String> = vec![EVERYTHING.to_owned()];
    seeds.extend(
        files(&root.join("examples"), "toml")
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok()),
    );
    let placeholders = Placeholders::new();
    let mut sources = files(&root.join("monitor-host/src"), "rs");
    sources.extend(files(&root.join("monitor-host/benches"), "rs"));
    sources.extend(files(&root.join("tests/tests"), "rs"));
    sources.extend(files(&root.join("tests/src"), "rs"));
    for path in sources {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for s in string_literals(&text) {
            if !s.contains('[') {
                continue;
            }
            let s = placeholders.fill(&s);
            if looks_like_config(&s) && !seeds.contains(&s) {
                seeds.push(s);
            }
        }
    }
    seeds
}

/// Text in the shape of Prometheus rule files, to splice into a config.
fn rule_texts(root: &Path) -> Vec<String> {
    let mut texts: Vec<String> = files(&root.join("tests/fixtures/rules"), "yml")
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    texts
        .push("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n".into());
    texts
}

const KEYS: &[&str] = &[
    "name",
    "interval",
    "listen",
    "data_dir",
    "retention",
    "rollup_retention",
    "timeout",
    "max_payload_bytes",
    "resend_delay",
    "repeat_interval",
    "max_future_skew",
    "rule_files",
    "max_series",
    "http_auth",
    "tls_cert_file",
    "tls_key_file",
    "bearer_token_file",
    "basic_auth_users",
    "plugin",
    "library",
    "config",
    "min_severity",
    "alertmanager",
    "resend_every",
    "on",
    "max_attempts",
    "within",
    "cooldown",
    "metric",
    "condition",
    "threshold",
    "expr",
    "for",
    "keep_firing_for",
    "severity",
    "description",
    "labels",
    "annotations",
    "url",
    "queue_capacity",
    "max_samples_per_send",
    "batch_send_deadline",
    "min_backoff",
    "max_backoff",
    "headers",
    "host",
    "collector",
    "alert",
    "notifier",
    "strategy",
    "remote_write",
    "bogus",
    "\"quoted key\"",
    "a.b.c",
    "ключ",
];

const HEADERS: &[&str] = &[
    "[host]",
    "[[collector]]",
    "[[alert]]",
    "[[notifier]]",
    "[[strategy]]",
    "[[remote_write]]",
    "[collector.config]",
    "[[collector.config.processes]]",
    "[host.http_auth]",
    "[host.http_auth.basic_auth_users]",
    "[alert.labels]",
    "[alert.annotations]",
    "[remote_write.headers]",
    "[remote_write.labels]",
    "[strategy.config]",
    "[notifier.config]",
    "[unknown]",
    "[[host]]",
    "[collector]",
    "[alert]",
    "[host.interval]",
    "[a.b.c.d.e.f]",
];

const PUNCTUATION: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "=",
    "\"",
    "'",
    "\"\"\"",
    "'''",
    "{",
    "}",
    ",",
    "#",
    "\n",
    ".",
    "\\",
    "\\u",
    "\\U0011FFFF",
    "\r",
    "\t",
    "\0",
    "\u{feff}",
    " = ",
    "\n[",
    "\n[[",
    "+",
    "-",
    ":",
];

const CHARS: &[char] = &[
    'a', 'Z', '0', '9', ' ', '_', '-', '.', '=', '"', '\'', '[', ']', '{', '}', ',', '#', '\\',
    '\n', '\r', '\t', '\0', '\u{7f}', 'é', 'ß', '日', '🦀', '\u{200b}', '\u{fffd}', '$',
];

fn values(rng: &mut Rng) -> String {
    const FIXED: &[&str] = &[
        "0",
        "1",
        "-1",
        "18446744073709551615",
        "9223372036854775807",
        "-9223372036854775808",
        "99999999999999999999999",
        "1e308",
        "-1e308",
        "1e999",
        "nan",
        "-nan",
        "+inf",
        "-inf",
        "0.0",
        "-0.0",
        "5e-324",
        "0x7fffffffffffffff",
        "0o777",
        "0b1",
        "1_000",
        "true",
        "false",
        "1979-05-27T07:32:00Z",
        "07:32:00",
        "1979-05-27",
        "[]",
        "{}",
        "[1, \"a\", 2.5]",
        "{ a = 1, b = { c = [] } }",
        "\"\"",
        "\" \"",
        "''",
        "\"213503982334601d\"",
        "\"18446744073709551615s\"",
        "\"99999999999999999999ms\"",
        "\"3650d\"",
        "\"3651d\"",
        "\"0s\"",
        "\"0\"",
        "\"off\"",
        "\"-5s\"",
        "\"5 m\"",
        "\"1m30s\"",
        "\"1.5s\"",
        "\"10\"",
        "\"1h1h1h1h1h1h1h1h1h1h\"",
        "\"${SET}\"",
        "\"${UNSET}\"",
        "\"${UNSET:-10s}\"",
        "\"${EMPTY:-}\"",
        "\"${EMPTY}\"",
        "\"${\"",
        "\"${}\"",
        "\"${1X}\"",
        "\"$${SET}\"",
        "\"${SET\"",
        "\"${SET}${UNSET}${ALSO_UNSET}\"",
        "\"${DURATION}\"",
        "\"日本語🦀\"",
        "\"\\u0000\"",
        "\"\\t\\n\"",
        "\"::1\"",
        "\"[::1]:9464\"",
        "\"127.0.0.1:99999\"",
        "\"http://\"",
        "\"http://127.0.0.1:1/write\"",
        "\"https://x\"",
        "\"up == 0\"",
        "\"rate(x[5m]) > 1\"",
        "\"sum by (a) (b\"",
        "\"{{ $value }}\"",
        "\"{{ .Bogus }}\"",
        "\"{{\"",
        "\"critical\"",
        "\"above\"",
        "\"bogus\"",
        "[\"a\", \"b\"]",
        "[\"\"]",
        "[\"*.yml\"]",
        "[\"rules/valid/*.yml\"]",
        "[\"rules/invalid/*.yml\"]",
        "[\"rules/**/*.yml\"]",
        "[\"[\"]",
        "[\"missing.yml\"]",
        "{ x = \"$2y$04$abc\" }",
    ];
    match rng.below(24) {
        0 => format!("\"{}\"", "x".repeat(1 + rng.below(20_000))),
        1 => {
            let depth = 1 + rng.below(2000);
            format!("{}{}", "[".repeat(depth), "]".repeat(depth))
        }
        2 => {
            let depth = 1 + rng.below(2000);
            format!("{}1{}", "{ a = ".repeat(depth), " }".repeat(depth))
        }
        3..=5 => format!(
            "\"{}{}\"",
            rng.next(),
            rng.pick(&["ms", "s", "m", "h", "d", "", "x"])
        ),
        _ => (*rng.pick(FIXED)).to_owned(),
    }
}

/// One mutation of `text`.
fn mutate(rng: &mut Rng, text: &str, seeds: &[String], rules: &[String]) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let n = lines.len();
    let at = rng.below(n);
    // Mostly mutations that keep the TOML readable, so that the checks behind the syntax are
    // reached.
    match rng.below(20) {
        0 | 1 => {
            lines.remove(at);
        }
        2 => lines.insert(at, lines[at].clone()),
        3 => lines.swap(at, rng.below(n)),
        4 => {
            let mut chars: Vec<char> = text.chars().collect();
            if chars.is_empty() {
                return rng.pick(CHARS).to_string();
            }
            let i = rng.below(chars.len());
            chars[i] = *rng.pick(CHARS);
            return chars.into_iter().collect();
        }
        5 => {
            let chars: Vec<char> = text.chars().collect();
            let i = rng.below(chars.len() + 1);
            let mut s: String = chars[..i].iter().collect();
            s.push_str(rng.pick::<&str>(PUNCTUATION));
            s.extend(&chars[i..]);
            return s;
        }
        6..=11 => {
            // Replace the value of a `key = value` line (or append one).
            let value = values(rng);
            match lines[at].split_once('=') {
                Some((key, _)) => lines[at] = format!("{key}= {value}"),
                None => lines.insert(at, format!("{} = {value}", rng.pick(KEYS))),
            }
        }
        12..=14 => lines.insert(at, format!("{} = {}", rng.pick(KEYS), values(rng))),
        15 => lines.insert(at, (*rng.pick(HEADERS)).to_owned()),
        16 => {
            let rule = rng.pick(rules);
            let rule_lines: Vec<&str> = rule.split('\n').collect();
            let from = rng.below(rule_lines.len());
            let to = from + 1 + rng.below(rule_lines.len() - from);
            lines.splice(at..at, rule_lines[from..to].iter().map(|l| (*l).to_owned()));
        }
        17 | 18 => {
            // A piece of another config.
            let other: Vec<&str> = rng.pick(seeds).split('\n').collect();
            let from = rng.below(other.len());
            let to = from + 1 + rng.below((other.len() - from).min(12));
            lines.splice(at..at, other[from..to].iter().map(|l| (*l).to_owned()));
        }
        _ => {
            let chars: Vec<char> = text.chars().collect();
            return chars[..rng.below(chars.len() + 1)].iter().collect();
        }
    }
    lines.join("\n")
}

fn lookup(name: &str) -> Result<String, VarError> {
    match name {
        "SET" => Ok("value".to_owned()),
        "EMPTY" => Ok(String::new()),
        "DURATION" => Ok("213503982334601d".to_owned()),
        _ => Err(VarError::NotPresent),
    }
}

/// What is wrong with the errors of `text`, if anything.
fn check_positions(text: &str, errors: &ConfigErrors) -> Result<(), String> {
    if errors.0.is_empty() {
        return Err("an empty error list".into());
    }
    // Lines as `at` counts them: split on '\n' only.
    let lines: Vec<&str> = text.split('\n').collect();
    let mut previous = (0, 0);
    for (i, e) in errors.0.iter().enumerate() {
        if errors.0[..i].contains(e) {
            return Err(format!("`{e}` is reported twice"));
        }
        let l = &e.location;
        let shown = e.to_string();
        let prefix = format!("{}:{}:{}: ", l.file, l.line, l.column);
        if !shown.starts_with(&prefix) || e.message.trim().is_empty() {
            return Err(format!("`{shown}` does not read `file:line:col: message`"));
        }
        if l.line == 0 || l.column == 0 {
            return Err(format!("`{shown}`: lines and columns start at 1"));
        }
        if l.file != FILE {
            // A rule file's error: it names an existing file.
            if !Path::new(&l.file).is_file() {
                return Err(format!(
                    "`{shown}` names neither the config nor a rule file"
                ));
            }
            continue;
        }
        let Some(line) = lines.get(l.line - 1) else {
            return Err(format!("`{shown}`: the config has {} lines", lines.len()));
        };
        if l.column > line.chars().count() + 1 {
            return Err(format!("`{shown}`: line {} is {line:?}", l.line));
        }
        if (l.line, l.column) < previous {
            return Err(format!("`{shown}` comes after an error further down"));
        }
        previous = (l.line, l.column);
    }
    Ok(())
}

fn parse(text: &str, base: &Path) -> Result<Result<Config, ConfigErrors>, String> {
    catch_unwind(AssertUnwindSafe(|| {
        Config::from_str_with_env(text, FILE, base, &lookup)
    }))
    .map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    })
}

/// Whether the config was accepted, or the case's problem: a panic, an error without a real
/// position, or an error reported twice.
fn check(text: &str, base: &Path) -> Result<bool, String> {
    // A syntax error without a span would be shown at 1:1 (`Ctx::parse`), which is a position but
    // not its own: none has been seen, and this says so if the parser changes.
    let (_, syntax) = toml::de::DeTable::parse_recoverable(text);
    if let Some(e) = syntax.iter().find(|e| e.span().is_none()) {
        return Err(format!("the syntax error `{}` has no span", e.message()));
    }
    match parse(text, base) {
        Err(panic) => Err(format!("panicked: {panic}")),
        Ok(Ok(_)) => Ok(true),
        Ok(Err(errors)) => check_positions(text, &errors).map(|()| false),
    }
}

fn shorten(text: &str) -> String {
    const MAX: usize = 4000;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes in all)", &text[..end], text.len())
}

#[test]
fn mutated_configs_never_panic_and_every_error_has_a_position() {
    let cases = env_u64("MONITOR_FUZZ_CASES").unwrap_or(DEFAULT_CASES);
    let seed = env_u64("MONITOR_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let root = repository();
    // Relative `rule_files` resolve among the rule fixtures.
    let base = root.join("tests/fixtures");
    let seeds = seed_configs(&root);
    let rules = rule_texts(&root);
    assert!(
        seeds.len() >= 20,
        "only {} seed configs found under {}",
        seeds.len(),
        root.display()
    );
    // The seeds themselves first: they must hold too.
    for (i, s) in seeds.iter().enumerate() {
        if let Err(problem) = check(s, &base) {
            panic!("seed config {i}: {problem}\n--- input ---\n{}", shorten(s));
        }
    }
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = Vec::new();
    let (mut accepted, mut refused) = (0u64, 0u64);
    for case in 0..cases {
        let mut rng = Rng::new(seed ^ case.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut text = rng.pick(&seeds).clone();
        for _ in 0..1 + rng.below(4) {
            text = mutate(&mut rng, &text, &seeds, &rules);
        }
        match check(&text, &base) {
            Ok(true) => accepted += 1,
            Ok(false) => refused += 1,
            Err(problem) => {
                failures.push(format!(
                    "MONITOR_FUZZ_SEED={seed:#x}, case {case}: {problem}\n--- input ---\n{}",
                    shorten(&text)
                ));
                if failures.len() >= 5 {
                    break;
                }
            }
        }
    }
    std::panic::set_hook(hook);
    eprintln!(
        "{cases} cases from {} seed configs, seed {seed:#x}: {accepted} accepted, {refused} refused",
        seeds.len()
    );
    assert!(
        failures.is_empty(),
        "{} failing case(s) (rerun with MONITOR_FUZZ_SEED={seed:#x} MONITOR_FUZZ_CASES=<case + 1>):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // The mutations reach both outcomes: a fuzzer whose every case is refused at the syntax stage
    // would check little.
    assert!(
        accepted > 0 && refused > cases / 4,
        "{accepted} accepted, {refused} refused of {cases}"
    );
}

#[test]
fn the_seed_extractor_reads_rust_string_literals() {
    let source = r####"
        let a = "[host]\ninterval = \"5s\"\n";
        let b = r#"[[alert]]
name = "x""#;
        // "not a string
        let c = format!("[host]\nlisten = {{ a = 1 }}\nx = \
                         2");
        let q = '"';
    "####;
    assert_eq!(
        string_literals(source),
        [
            "[host]\ninterval = \"5s\"\n",
            "[[alert]]\nname = \"x\"",
            "[host]\nlisten = { a = 1 }\nx = 2",
        ]
    );
}

#[test]
fn the_mutator_is_deterministic() {
    let seeds = vec!["[host]\ninterval = \"5s\"\n".to_owned()];
    let rules = vec!["groups: []\n".to_owned()];
    let run = |seed| {
        let mut rng = Rng::new(seed);
        (0..50)
            .map(|_| mutate(&mut rng, &seeds[0], &seeds, &rules))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}
