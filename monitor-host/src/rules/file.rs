//! Rule files: YAML text -> [`RuleGroup`]s, every problem with its `file:line:column`.
//!
//! The YAML is read with `saphyr`, which keeps the position of every node, and walked by hand so
//! that every problem of a file is reported at once, as `promtool check rules` words it
//! (`group "g", rule 2, "HighLatency": ...`), and with the position of the key or value at fault.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use saphyr::{LoadableYamlNode, MarkedYamlOwned, ScalarOwned, YamlDataOwned};

use super::{
    AlertingRule, ExprUse, RecordingRule, Rule, RuleGroup, Template, check_expr, is_label_name,
    is_metric_name, parse_prometheus_duration,
};
use crate::config::{ConfigError, Location};

/// Reads and checks one rule file; messages name it as `path` is displayed.
pub(super) fn load_rule_file(path: &Path) -> Result<Vec<RuleGroup>, Vec<ConfigError>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            location: Location {
                file: file.clone(),
                line: 1,
                column: 1,
            },
            message: format!("cannot read the rule file: {e}"),
        }]
    })?;
    parse_rule_file(&text, &file)
}

/// Checks a rule file given as text; `file` names it in messages.
///
/// # Errors
///
/// Every problem found, in file order, each with its position.
pub fn parse_rule_file(text: &str, file: &str) -> Result<Vec<RuleGroup>, Vec<ConfigError>> {
    let mut cx = Cx {
        file,
        text,
        errors: Vec::new(),
    };
    let groups = match MarkedYamlOwned::load_from_str(text) {
        Err(e) => {
            let m = e.marker();
            cx.errors.push(ConfigError {
                location: Location {
                    file: file.to_owned(),
                    line: m.line(),
                    column: m.col() + 1,
                },
                message: format!("yaml: {}", e.info()),
            });
            Vec::new()
        }
        Ok(docs) => {
            if let Some(extra) = docs.get(1) {
                cx.err(
                    extra,
                    "a rule file holds one YAML document; remove the `---`",
                );
            }
            docs.first().map(|d| cx.root(d)).unwrap_or_default()
        }
    };
    if cx.errors.is_empty() {
        Ok(groups)
    } else {
        cx.errors
            .sort_by_key(|e| (e.location.line, e.location.column));
        Err(cx.errors)
    }
}

struct Cx<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<ConfigError>,
}

type Node = MarkedYamlOwned;

/// Tags (`!!str`) are looked through.
fn data(node: &Node) -> &YamlDataOwned<Node> {
    match &node.data {
        YamlDataOwned::Tagged(_, inner) => data(inner),
        d => d,
    }
}

fn is_null(node: &Node) -> bool {
    matches!(data(node), YamlDataOwned::Value(ScalarOwned::Null))
}

/// A rule being read: its group and number for messages, as promtool words them.
struct RuleCtx<'a> {
    group: &'a str,
    index: usize,
    name: String,
}

impl RuleCtx<'_> {
    fn prefix(&self) -> String {
        format!(
            "group \"{}\", rule {}, \"{}\": ",
            self.group, self.index, self.name
        )
    }
}

impl Cx<'_> {
    fn at(&self, node: &Node) -> Location {
        Location {
            file: self.file.to_owned(),
            line: node.span.start.line(),
            column: node.span.start.col() + 1,
        }
    }

    fn err(&mut self, node: &Node, message: impl Into<String>) {
        let location = self.at(node);
        self.errors.push(ConfigError {
            location,
            message: message.into(),
        });
    }

    /// The entries of a mapping with string keys; `what` names it in messages. Keys outside
    /// `known` are reported.
    fn mapping<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        known: &[&str],
    ) -> Option<Vec<(&'n str, &'n Node, &'n Node)>> {
        let YamlDataOwned::Mapping(map) = data(node) else {
            self.err(node, format!("{what} must be a mapping"));
            return None;
        };
        let mut out = Vec::new();
        for (k, v) in map {
            let Some(key) = self.string_of(k) else {
                self.err(k, format!("{what}: keys must be strings"));
                continue;
            };
            if known.contains(&key) {
                out.push((key, k, v));
            } else {
                let expected = known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                self.err(
                    k,
                    format!("{what}: unknown field `{key}`, expected one of {expected}"),
                );
            }
        }
        Some(out)
    }

    fn string_of<'n>(&self, node: &'n Node) -> Option<&'n str> {
        match data(node) {
            YamlDataOwned::Value(ScalarOwned::String(s)) => Some(s),
            _ => None,
        }
    }

    /// A scalar as text (numbers and booleans as written, as Go's YAML reads them into a
    /// string); null is `None`.
    fn text(&mut self, node: &Node, what: &str) -> Option<String> {
        match data(node) {
            YamlDataOwned::Value(ScalarOwned::String(s)) => Some(s.clone()),
            YamlDataOwned::Value(ScalarOwned::Integer(i)) => Some(i.to_string()),
            YamlDataOwned::Value(ScalarOwned::FloatingPoint(f)) => Some(f.to_string()),
            YamlDataOwned::Value(ScalarOwned::Boolean(b)) => Some(b.to_string()),
            YamlDataOwned::Value(ScalarOwned::Null) => None,
            _ => {
                self.err(node, format!("`{what}` must be a string"));
                None
            }
        }
    }

    fn sequence<'n>(&mut self, node: &'n Node, what: &str) -> &'n [Node] {
        match data(node) {
            YamlDataOwned::Sequence(items) => items,
            YamlDataOwned::Value(ScalarOwned::Null) => &[],
            _ => {
                self.err(node, format!("`{what}` must be a list"));
                &[]
            }
        }
    }

    fn root(&mut self, root: &Node) -> Vec<RuleGroup> {
        if is_null(root) {
            return Vec::new();
        }
        let Some(entries) = self.mapping(root, "rule file", &["groups"]) else {
            return Vec::new();
        };
        let mut groups: Vec<RuleGroup> = Vec::new();
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut seen_rules: HashMap<(String, BTreeMap<String, String>), usize> = HashMap::new();
        for (_, _, value) in entries {
            for g in self.sequence(value, "groups") {
                let Some(group) = self.group(g, &mut seen_rules) else {
                    continue;
                };
                if let Some(line) = names.get(&group.name) {
                    let message = format!(
                        "groupname: \"{}\" is repeated in the same file (first at line {line})",
                        group.name
                    );
                    self.err(g, message);
                }
                names.insert(group.name.clone(), group.at.line);
                groups.push(group);
            }
        }
        groups
    }

    fn group(
        &mut self,
        node: &Node,
        seen_rules: &mut HashMap<(String, BTreeMap<String, String>), usize>,
    ) -> Option<RuleGroup> {
        let entries = self.mapping(node, "group", &["name", "interval", "limit", "rules"])?;
        let mut group = RuleGroup {
            name: String::new(),
            file: self.file.to_owned(),
            interval: None,
            limit: 0,
            rules: Vec::new(),
            at: self.at(node),
        };
        let mut rules: &[Node] = &[];
        let mut named = false;
        for (key, _, value) in entries {
            match key {
                "name" => {
                    group.name = self.text(value, "name").unwrap_or_default();
                    named = true;
                }
                "interval" => {
                    group.interval = self
                        .duration(value, "interval", "group")
                        .filter(|d| !d.is_zero());
                }
                "limit" => match data(value) {
                    YamlDataOwned::Value(ScalarOwned::Integer(n)) if *n >= 0 => {
                        group.limit = n.unsigned_abs();
                    }
                    _ => self.err(value, "`limit` must be a whole number, 0 or more"),
                },
                _ => rules = self.sequence(value, "rules"),
            }
        }
        if group.name.is_empty() {
            let message = if named {
                "groupname must not be empty"
            } else {
                "group: missing field `name`"
            };
            self.err(node, message);
        }
        for (i, r) in rules.iter().enumerate() {
            let mut rcx = RuleCtx {
                group: &group.name,
                index: i + 1,
                name: String::new(),
            };
            if let Some(rule) = self.rule(r, &mut rcx) {
                let labels = match &rule {
                    Rule::Alerting(a) => (a.labels.iter())
                        .map(|(k, v)| (k.clone(), v.source().to_owned()))
                        .collect(),
                    Rule::Recording(r) => r.labels.clone(),
                };
                let key = (rule.name().to_owned(), labels);
                if let Some(line) = seen_rules.get(&key) {
                    let message = format!(
                        "{}duplicate rule: same name and labels as the rule at line {line}",
                        rcx.prefix()
                    );
                    self.err(r, message);
                } else {
                    seen_rules.insert(key, rule.at().line);
                }
                group.rules.push(rule);
            }
        }
        Some(group)
    }

    fn duration(&mut self, node: &Node, key: &str, prefix: &str) -> Option<Duration> {
        let text = self.text(node, key)?;
        match parse_prometheus_duration(&text) {
            Ok(d) => Some(d),
            Err(m) => {
                self.err(node, format!("{prefix}: `{key}`: {m}"));
                None
            }
        }
    }

    fn rule(&mut self, node: &Node, rcx: &mut RuleCtx<'_>) -> Option<Rule> {
        const KEYS: [&str; 7] = [
            "record",
            "alert",
            "expr",
            "for",
            "keep_firing_for",
            "labels",
            "annotations",
        ];
        let entries = self.mapping(node, "rule", &KEYS)?;
        let get = |k: &str| entries.iter().find(|e| e.0 == k).map(|e| (e.1, e.2));
        let alert = get("alert").and_then(|(_, v)| Some((self.text(v, "alert")?, v)));
        let record = get("record").and_then(|(_, v)| Some((self.text(v, "record")?, v)));
        rcx.name = alert
            .as_ref()
            .or(record.as_ref())
            .map(|(n, _)| n.clone())
            .unwrap_or_default();
        let prefix = rcx.prefix();
        match (&alert, &record) {
            (Some(_), Some((_, r))) => {
                self.err(
                    r,
                    format!("{prefix}only one of 'record' and 'alert' must be set"),
                );
                return None;
            }
            (None, None) => {
                self.err(
                    node,
                    format!("{prefix}one of 'record' or 'alert' must be set"),
                );
                return None;
            }
            _ => {}
        }
        let usage = if alert.is_some() {
            ExprUse::Alerting
        } else {
            ExprUse::Recording
        };
        let expr = match get("expr") {
            None => {
                self.err(node, format!("{prefix}field 'expr' must be set in rule"));
                None
            }
            Some((_, v)) => match self.text(v, "expr") {
                None => {
                    self.err(v, format!("{prefix}field 'expr' must be set in rule"));
                    None
                }
                Some(text) => {
                    let at = self.at(v);
                    check_expr(&text, at, usage)
                        .and_then(|e| super::no_extensions(&e.parsed).map(|()| e))
                        .map_err(|m| self.err(v, format!("{prefix}{m}")))
                        .ok()
                }
            },
        };
        let at = self.at(node);
        if let Some((name, v)) = record {
            for key in ["for", "keep_firing_for", "annotations"] {
                if let Some((k, _)) = get(key) {
                    self.err(
                        k,
                        format!("{prefix}invalid field '{key}' in recording rule"),
                    );
                }
            }
            if !is_metric_name(&name) {
                self.err(v, format!("{prefix}invalid recording rule name: {name}"));
            }
            let labels = self.labels(get("labels").map(|e| e.1), &prefix, false);
            return Some(Rule::Recording(RecordingRule {
                name,
                expr: expr?,
                labels: labels
                    .into_iter()
                    .map(|(k, v)| (k, v.source().to_owned()))
                    .collect(),
                at,
            }));
        }
        let (name, v) = alert?;
        if name.is_empty() {
            self.err(v, format!("{prefix}`alert` must not be empty"));
        }
        let for_ =
            get("for").and_then(|(_, v)| self.duration(v, "for", prefix.trim_end_matches(": ")));
        let keep = get("keep_firing_for")
            .and_then(|(_, v)| self.duration(v, "keep_firing_for", prefix.trim_end_matches(": ")));
        let labels = self.labels(get("labels").map(|e| e.1), &prefix, true);
        let annotations = self.annotations(get("annotations").map(|e| e.1), &prefix);
        Some(Rule::Alerting(AlertingRule {
            name,
            expr: expr?,
            for_: for_.unwrap_or_default(),
            keep_firing_for: keep.unwrap_or_default(),
            labels,
            annotations,
            at,
        }))
    }

    /// A string-to-string mapping (`labels`, `annotations`).
    fn string_map<'n>(
        &mut self,
        node: Option<&'n Node>,
        what: &str,
    ) -> Vec<(String, &'n Node, &'n Node, String)> {
        let Some(node) = node.filter(|n| !is_null(n)) else {
            return Vec::new();
        };
        let YamlDataOwned::Mapping(map) = data(node) else {
            self.err(
                node,
                format!("`{what}` must be a mapping of names to strings"),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in map {
            let Some(key) = self.string_of(k).map(str::to_owned) else {
                self.err(k, format!("`{what}`: names must be strings"));
                continue;
            };
            let value = self.text(v, &format!("{what}.{key}")).unwrap_or_default();
            out.push((key, k, v, value));
        }
        out
    }

    /// `labels`: valid names, not `__name__`; values are templates in alerting rules.
    fn labels(
        &mut self,
        node: Option<&Node>,
        prefix: &str,
        templates: bool,
    ) -> BTreeMap<String, Template> {
        let mut out = BTreeMap::new();
        for (name, k, v, value) in self.string_map(node, "labels") {
            if !is_label_name(&name) || name == "__name__" {
                self.err(k, format!("{prefix}invalid label name: {name}"));
                continue;
            }
            let template = if templates {
                self.template(v, &value, &format!("{prefix}label \"{name}\""))
            } else {
                Some(Template::literal(&value))
            };
            out.extend(template.map(|t| (name, t)));
        }
        out
    }

    fn annotations(&mut self, node: Option<&Node>, prefix: &str) -> BTreeMap<String, Template> {
        let mut out = BTreeMap::new();
        for (name, k, v, value) in self.string_map(node, "annotations") {
            if !is_label_name(&name) {
                self.err(k, format!("{prefix}invalid annotation name: {name}"));
                continue;
            }
            let what = format!("{prefix}annotation \"{name}\"");
            out.extend(self.template(v, &value, &what).map(|t| (name, t)));
        }
        out
    }

    /// A template, refused at the action at fault when its value is on one line (at the value
    /// otherwise: the offsets of a block scalar's text are not those of the file).
    fn template(&mut self, value: &Node, text: &str, what: &str) -> Option<Template> {
        let e = match Template::parse(text) {
            Ok(t) => return Some(t),
            Err(e) => e,
        };
        let mut location = self.at(value);
        let (start, end) = (value.span.start, value.span.end);
        // A quoted scalar starts at its quote; escapes before the action would shift the column,
        // so only a value whose text is the file's own is pointed into.
        let raw: String = (self.text.chars())
            .skip(start.index())
            .take(end.index().saturating_sub(start.index()))
            .collect();
        let quoted = raw.starts_with(['"', '\'']);
        let inner = if quoted { &raw[1..] } else { raw.as_str() };
        if start.line() == end.line() && inner.starts_with(&text[..e.offset]) {
            location.column += usize::from(quoted) + text[..e.offset].chars().count();
        }
        self.errors.push(ConfigError {
            location,
            message: format!("{what}: template: {e}"),
        });
        None
    }
}
