//! Prometheus rule files (`[host] rule_files`): `monitor-host check` and `promtool check rules`
//! agree on the fixtures under `tests/fixtures/rules/`, and the host's messages carry the
//! position.
//!
//! - `valid/`: both accept.
//! - `invalid/`: both refuse; the host at the line the fixture's first line names
//!   (`# expect: LINE: TEXT`), with `TEXT` in the message.
//! - `unsupported/`: valid for Prometheus, refused by the host (what it would not evaluate as
//!   Prometheus does), at the line named the same way.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use monitor_tests::{
    Scratch, binary, promtool_check_rules, promtool_installed, toml_path, workspace_root,
};

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = workspace_root().join("tests/fixtures/rules").join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

/// `monitor-host check` on a config whose `rule_files` are `patterns`.
fn check(dir: &Scratch, patterns: &[&str]) -> Output {
    let list: Vec<String> = patterns.iter().map(|p| format!("{p:?}")).collect();
    let config = dir.write(
        "monitor.toml",
        &format!(
            "[host]\nlisten = \"off\"\nrule_files = [{}]\n",
            list.join(", ")
        ),
    );
    Command::new(binary("monitor-host"))
        .arg("check")
        .arg("--config")
        .arg(&config)
        .output()
        .expect("monitor-host runs")
}

fn check_file(file: &Path) -> Output {
    let dir = Scratch::new("rule-files");
    check(&dir, &[file.to_str().unwrap()])
}

/// The `# expect: LINE: TEXT` header of an invalid fixture.
fn expectation(file: &Path) -> (usize, String) {
    let text = std::fs::read_to_string(file).unwrap();
    let header = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# expect: "))
        .unwrap_or_else(|| panic!("{}: no `# expect: LINE: TEXT` header", file.display()));
    let (line, message) = header.split_once(": ").expect("LINE: TEXT");
    (line.parse().expect("a line number"), message.to_owned())
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the host refused `file` at the line its header names, with its text.
fn assert_refused_at(file: &Path, out: &Output) {
    let (line, text) = expectation(file);
    let err = stderr(out);
    assert!(
        !out.status.success(),
        "{} was accepted:\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout)
    );
    let at = format!("{}:{line}:", file.display());
    let located = err.lines().find(|l| l.contains(&at));
    assert!(
        located.is_some_and(|l| l.contains(&text)),
        "{}: expected `{at}` with `{text}` in:\n{err}",
        file.display()
    );
}

#[test]
fn valid_rule_files_are_accepted_by_both() {
    for file in fixtures("valid") {
        if let Some(verdict) = promtool_check_rules(&file) {
            verdict.unwrap_or_else(|e| panic!("promtool refuses {}: {e}", file.display()));
        }
        let out = check_file(&file);
        assert!(out.status.success(), "{}: {}", file.display(), stderr(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(" rule group(s)"), "{stdout}");
    }
}

#[test]
fn invalid_rule_files_are_refused_by_both_with_their_position() {
    for file in fixtures("invalid") {
        if let Some(verdict) = promtool_check_rules(&file) {
            assert!(verdict.is_err(), "promtool accepts {}", file.display());
        }
        assert_refused_at(&file, &check_file(&file));
    }
}

#[test]
fn what_the_host_does_not_evaluate_as_prometheus_is_refused_with_its_position() {
    for file in fixtures("unsupported") {
        if let Some(verdict) = promtool_check_rules(&file) {
            verdict.unwrap_or_else(|e| {
                panic!("promtool refuses {}, expected valid: {e}", file.display())
            });
        }
        assert_refused_at(&file, &check_file(&file));
    }
}

#[test]
fn globs_are_relative_to_the_config_and_count_every_rule() {
    let dir = Scratch::new("rule-files-glob");
    std::fs::create_dir(dir.join("rules")).unwrap();
    for name in ["alerts.yml", "recording.yml", "empty.yml"] {
        let text = std::fs::read_to_string(
            workspace_root()
                .join("tests/fixtures/rules/valid")
                .join(name),
        )
        .unwrap();
        dir.write(&format!("rules/{name}"), &text);
    }
    dir.write("rules/ignored.txt", "not yaml: [");
    let out = check(&dir, &["rules/*.yml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // alerts.yml: 4 rules in 1 group; recording.yml: 4 in 2; empty.yml: none.
    assert!(stdout.contains("8 rule(s) in 3 rule group(s)"), "{stdout}");
}

#[test]
fn errors_of_every_file_and_of_the_config_come_together() {
    let dir = Scratch::new("rule-files-all");
    let bad_expr = workspace_root().join("tests/fixtures/rules/invalid/bad_expr.yml");
    let bad_label = workspace_root().join("tests/fixtures/rules/invalid/bad_label_name.yml");
    let config = dir.write(
        "monitor.toml",
        &format!(
            "[host]\nlisten = \"off\"\nrule_files = [{}, {}, \"missing.yml\"]\n\n\
             [[alert]]\nname = \"a\"\nexpr = \"rate(x[5m]) >\"\n",
            toml_path(&bad_expr),
            toml_path(&bad_label)
        ),
    );
    let out = Command::new(binary("monitor-host"))
        .arg("check")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    let config = config.display().to_string();
    for expected in [
        format!("{config}:3:"),
        format!("{config}:7:8: `expr`: could not parse expression"),
        format!("{}:7:", bad_expr.display()),
        format!("{}:8:", bad_label.display()),
    ] {
        assert!(err.contains(&expected), "`{expected}` not in:\n{err}");
    }
    assert!(err.contains("no rule file"), "{err}");
}

/// Templates as the host renders them, checked against Prometheus's own rendering with
/// `promtool test rules`: an alert per value, whose expected annotations are the host's.
#[test]
fn templates_render_as_prometheus_renders_them() {
    use monitor_host::rules::{Template, TemplateData};
    use std::collections::BTreeMap;

    if !promtool_installed() {
        return;
    }
    let annotations = [
        ("v", "{{ $value }}"),
        ("h", "{{ humanize $value }}"),
        ("p", "{{ $value | humanizePercentage }}"),
        ("d", "{{ humanizeDuration $value }}"),
        (
            "f",
            r#"{{ printf "%.2f|%8.3e|%g|%v|%+.1f|%07.1f|%.3g" $value $value $value $value $value $value $value }}"#,
        ),
        (
            "l",
            "{{ $labels.job }}[{{ $labels.missing }}]{{ .Labels.job }} {{- .Value -}} !",
        ),
    ];
    let values = [
        0.0, 1.0, 0.5, 1234.0, 12345.0, 99999.5, 100000.0, 1e6, 1234567.0, 1.5e9, 2.5e13, 0.001234,
        0.0001, 0.00001, 0.1234, -2500.0, -0.75, 59.9, 90.0, 3725.0, 90061.0, 0.0025,
    ];
    let dir = Scratch::new("rule-templates");
    let mut rules = String::from(
        "groups:\n  - name: t\n    rules:\n      - alert: T\n        expr: m\n        annotations:\n",
    );
    for (name, text) in annotations {
        rules.push_str(&format!("          {name}: {}\n", yaml_string(text)));
    }
    dir.write("rules.yml", &rules);
    let mut test = String::from(
        "rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n",
    );
    for (i, v) in values.iter().enumerate() {
        test.push_str(&format!(
            "      - series: 'm{{i=\"{i}\", job=\"api\"}}'\n        values: '{v:?}'\n"
        ));
    }
    test.push_str(
        "    alert_rule_test:\n      - eval_time: 0m\n        alertname: T\n        exp_alerts:\n",
    );
    let empty = BTreeMap::new();
    for (i, v) in values.iter().enumerate() {
        let labels = BTreeMap::from([
            ("i".to_owned(), i.to_string()),
            ("job".to_owned(), "api".to_owned()),
        ]);
        let data = TemplateData {
            labels: &labels,
            external_labels: &empty,
            value: *v,
        };
        test.push_str(&format!(
            "          - exp_labels: {{i: \"{i}\", job: api}}\n            exp_annotations:\n"
        ));
        for (name, text) in annotations {
            let rendered = Template::parse(text).unwrap().render(&data).unwrap();
            test.push_str(&format!(
                "              {name}: {}\n",
                yaml_string(&rendered)
            ));
        }
    }
    let file = dir.write("test.yml", &test);
    let out = Command::new("promtool")
        .args(["test", "rules"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool renders differently:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
}

fn yaml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
