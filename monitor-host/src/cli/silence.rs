//! `silence add|list|expire`: the host's silences, over `/api/silences`.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use monitor_host::config::parse_duration;
use monitor_host::silence::{Matcher, MatcherView, rfc3339};
use serde::Deserialize;

use super::format::{now_ms, table};
use super::{Output, Target};

/// `silence ...`.
#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Silence the alerts matching every --matcher for --duration; prints the new id.
    Add(AddArgs),
    /// Every silence and [[silence]] window with its state (active, pending, expired).
    List(ListArgs),
    /// End a silence now.
    Expire(ExpireArgs),
}

/// `silence add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    #[command(flatten)]
    target: Target,
    /// A matcher in Alertmanager's syntax: `alertname="disk_full"`, `host=~"db.*"`; repeat for
    /// more (all must match).
    #[arg(long = "matcher", short = 'm', value_name = "MATCHER", required = true)]
    matchers: Vec<String>,
    /// How long from now (or from --start): `2h`, `30m`.
    #[arg(long, short, value_name = "DURATION", default_value = "1h")]
    duration: String,
    /// Start, RFC 3339 (default: now).
    #[arg(long, value_name = "TIME")]
    start: Option<String>,
    /// Why.
    #[arg(long, short = 'C', default_value = "")]
    comment: String,
    /// Who (default: $USER).
    #[arg(long, short)]
    author: Option<String>,
    /// Human text or JSON.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
}

/// `silence list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    target: Target,
    /// Expired silences too.
    #[arg(long)]
    all: bool,
    /// Human table or JSON.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
}

/// `silence expire`.
#[derive(Debug, Args)]
pub struct ExpireArgs {
    #[command(flatten)]
    target: Target,
    /// The silence's id, as `silence list` shows it.
    id: String,
    /// Human text or JSON.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
}

/// Runs one `silence` command.
///
/// # Errors
///
/// A bad matcher or duration, an unreachable host, or the host's refusal (with its reason).
pub fn run(command: SilenceCommand) -> anyhow::Result<()> {
    match command {
        SilenceCommand::Add(a) => add(&a),
        SilenceCommand::List(a) => list(&a),
        SilenceCommand::Expire(a) => expire(&a),
    }
}

/// The body of `POST /api/silences` for these arguments at `now_ms`.
fn body(a: &AddArgs, now_ms: u64) -> anyhow::Result<String> {
    let matchers = (a.matchers.iter())
        .map(|m| {
            let m = Matcher::parse(m).map_err(anyhow::Error::msg)?;
            Ok(MatcherView {
                name: m.name.clone(),
                value: m.value.clone(),
                is_regex: m.op.is_regex(),
                is_equal: m.op.is_equal(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let duration = parse_duration(&a.duration)
        .map_err(|e| anyhow::anyhow!("--duration {}: {e}", a.duration))?;
    let start = match &a.start {
        Some(s) => monitor_host::silence::parse_rfc3339(s).with_context(|| {
            format!("--start {s}: not an RFC 3339 time such as 2026-01-02T03:04:05Z")
        })?,
        None => now_ms,
    };
    let author = (a.author.clone())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "monitor-host".into());
    Ok(serde_json::json!({
        "matchers": matchers,
        "startsAt": rfc3339(start),
        "endsAt": rfc3339(start + duration.as_millis() as u64),
        "createdBy": author,
        "comment": a.comment,
    })
    .to_string())
}

/// The host's answer: the body on 200, its reason otherwise.
fn answer(
    client: &super::Client,
    path: &str,
    (status, body): (u16, String),
) -> anyhow::Result<String> {
    if status != 200 {
        anyhow::bail!("{}{path} answered {status}: {}", client.base(), body.trim());
    }
    Ok(body)
}

fn add(a: &AddArgs) -> anyhow::Result<()> {
    let body = body(a, now_ms())?;
    let client = a.target.client()?;
    let reply = client.send("POST", "/api/silences", Some(&body))?;
    let reply = answer(&client, "/api/silences", reply)?;
    #[derive(Deserialize)]
    struct Created {
        #[serde(rename = "silenceID")]
        id: String,
    }
    let created: Created =
        serde_json::from_str(&reply).context("the host's answer has no silenceID")?;
    match a.output {
        Output::Json => println!("{reply}"),
        Output::Human => println!("{}", created.id),
    }
    Ok(())
}

/// A silence as listed.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    id: String,
    status: State,
    matchers: Vec<MatcherView>,
    starts_at: Option<String>,
    ends_at: Option<String>,
    created_by: String,
    comment: String,
    #[serde(default)]
    source: String,
}

#[derive(Debug, Deserialize, serde::Serialize)]
struct State {
    state: String,
}

fn human(list: &[Listed]) -> String {
    if list.is_empty() {
        return "no silences\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            let matchers: Vec<String> = (s.matchers.iter())
                .map(|m| {
                    let op = monitor_host::silence::MatchOp::from_flags(m.is_regex, m.is_equal);
                    format!("{}{}{:?}", m.name, op.as_str(), m.value)
                })
                .collect();
            vec![
                s.id.clone(),
                s.status.state.clone(),
                matchers.join(" "),
                s.starts_at.clone().unwrap_or_else(|| "(recurring)".into()),
                s.ends_at.clone().unwrap_or_else(|| "-".into()),
                s.created_by.clone(),
                s.comment.clone(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "STATE",
            "MATCHERS",
            "STARTS",
            "ENDS",
            "CREATED BY",
            "COMMENT",
        ],
        &rows,
    )
}

fn list(a: &ListArgs) -> anyhow::Result<()> {
    let client = a.target.client()?;
    let mut list: Vec<Listed> = client.json("/api/silences")?;
    if !a.all {
        list.retain(|s| s.status.state != "expired");
    }
    match a.output {
        Output::Json => println!("{}", serde_json::to_string(&list)?),
        Output::Human => print!("{}", human(&list)),
    }
    Ok(())
}

fn expire(a: &ExpireArgs) -> anyhow::Result<()> {
    let client = a.target.client()?;
    let path = format!("/api/silences/{}", a.id);
    let reply = client.send("DELETE", &path, None)?;
    answer(&client, &path, reply)?;
    match a.output {
        Output::Json => println!("{}", serde_json::json!({ "expired": a.id })),
        Output::Human => println!("silence {} expired", a.id),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(matchers: &[&str], duration: &str) -> AddArgs {
        AddArgs {
            target: Target {
                url: Some("x".into()),
                config: None,
            },
            matchers: matchers.iter().map(|m| (*m).to_owned()).collect(),
            duration: duration.into(),
            start: None,
            comment: "c".into(),
            author: Some("ann".into()),
            output: Output::Human,
        }
    }

    #[test]
    fn the_body_is_a_postable_silence() {
        let b = body(&args(&[r#"alertname="x""#, r#"host=~"db.*""#], "2h"), 0).unwrap();
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["matchers"][1]["isRegex"], true);
        assert_eq!(v["matchers"][1]["value"], "db.*");
        assert_eq!(v["startsAt"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["endsAt"], "1970-01-01T02:00:00.000Z");
        assert_eq!(v["createdBy"], "ann");
        let silence = monitor_host::silence::PostableSilence::parse(b.as_bytes(), 0, "i".into());
        assert!(silence.is_ok(), "{silence:?}");
    }

    #[test]
    fn bad_arguments_are_refused_before_asking() {
        assert!(body(&args(&["alertname"], "2h"), 0).is_err());
        let e = body(&args(&[r#"alertname="x""#], "soon"), 0).unwrap_err();
        assert!(e.to_string().contains("--duration soon"), "{e}");
    }
}
