//! `incidents list|show|ack|note`: the host's incidents, over `/api/incidents`.

use clap::{Args, Subcommand};
use monitor_host::incident::api::IncidentView;
use monitor_host::incident::{Entry, Event};

use super::format::{age, labels, now_ms, table, utc};
use super::{Output, Target};

/// `incidents ...`.
#[derive(Debug, Subcommand)]
pub enum IncidentsCommand {
    /// Incidents, newest first: id, state, alert, labels, opened, time to recover.
    List(ListArgs),
    /// One incident and its timeline.
    Show(ShowArgs),
    /// Acknowledge an incident (stops its pending escalation).
    Ack(AckArgs),
    /// Add a note to an incident.
    Note(NoteArgs),
}

/// `incidents list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    target: Target,
    /// Only those in this state: open, acknowledged or resolved.
    #[arg(long, short)]
    state: Option<String>,
    /// Only those opened or resolved since: RFC 3339 or Unix seconds.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// At most this many.
    #[arg(long, short, default_value_t = 100)]
    limit: usize,
    /// Human table or JSON.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
}

/// `incidents show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    target: Target,
    /// The incident's id, as `incidents list` shows it.
    id: u64,
    /// Human text or JSON.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
}

/// `incidents ack`.
#[derive(Debug, Args)]
pub struct AckArgs {
    #[command(flatten)]
    target: Target,
    /// The incident's id.
    id: u64,
    /// Who acknowledges (default: $USER).
    #[arg(long, short)]
    by: Option<String>,
    /// Why, or what is being done.
    #[arg(long, short = 'C', default_value = "")]
    comment: String,
    /// Human text or JSON.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
}

/// `incidents note`.
#[derive(Debug, Args)]
pub struct NoteArgs {
    #[command(flatten)]
    target: Target,
    /// The incident's id.
    id: u64,
    /// The note.
    text: String,
    /// Who writes it (default: $USER).
    #[arg(long, short)]
    by: Option<String>,
    /// Human text or JSON.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
}

/// Runs one `incidents` command.
///
/// # Errors
///
/// An unreachable host, or the host's refusal (with its reason).
pub fn run(command: IncidentsCommand) -> anyhow::Result<()> {
    match command {
        IncidentsCommand::List(a) => list(&a),
        IncidentsCommand::Show(a) => show(&a),
        IncidentsCommand::Ack(a) => ack(&a),
        IncidentsCommand::Note(a) => note(&a),
    }
}

fn author(by: Option<&String>) -> String {
    by.cloned()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "monitor-host".into())
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

fn seconds(s: Option<f64>) -> String {
    s.map_or_else(|| "-".into(), |s| age((s * 1000.0) as u64))
}

fn human_list(list: &[IncidentView]) -> String {
    if list.is_empty() {
        return "no incidents\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|i| {
            vec![
                i.id.to_string(),
                i.state.as_str().to_owned(),
                i.alert.clone(),
                labels(&i.labels),
                utc(i.opened_ms),
                (i.acknowledged.as_ref()).map_or_else(|| "-".into(), |a| a.by.clone()),
                seconds(i.time_to_recover_seconds),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "STATE",
            "ALERT",
            "LABELS",
            "OPENED (UTC)",
            "ACK BY",
            "RECOVERED IN",
        ],
        &rows,
    )
}

fn entry_text(e: &Entry) -> String {
    match &e.event {
        Event::Fired { value, reopened } => {
            format!(
                "{} (value {value})",
                if *reopened { "reopened" } else { "fired" }
            )
        }
        Event::Notified {
            notifier,
            status,
            ok,
            error,
            repeat,
            escalation,
        } => {
            let what = match (escalation, repeat) {
                (true, _) => "escalation",
                (_, true) => "reminder",
                _ => status.as_str(),
            };
            match (ok, error) {
                (true, _) => format!("notified {notifier}: {what}"),
                (false, e) => format!(
                    "notifying {notifier} failed: {what}: {}",
                    e.as_deref().unwrap_or("")
                ),
            }
        }
        Event::Healing {
            strategy,
            attempt,
            success,
            message,
            duration_ms,
        } => format!(
            "healing {strategy} attempt {attempt}: {} in {duration_ms} ms: {message}",
            if *success { "success" } else { "failure" }
        ),
        Event::Escalated {
            reason,
            to,
            message,
        } => {
            let to = if to.is_empty() {
                String::new()
            } else {
                format!(" to {}", to.join(", "))
            };
            format!("escalated ({}){to}: {message}", reason.as_str())
        }
        Event::Acknowledged { by, comment } => format!("acknowledged by {by}: {comment}"),
        Event::Note { by, text } => format!("note by {by}: {text}"),
        Event::Resolved { value, stale } => {
            format!(
                "resolved (value {value}{})",
                if *stale { ", stale" } else { "" }
            )
        }
    }
}

fn human_one(i: &IncidentView) -> String {
    let mut out = format!(
        "incident {} {} {}{}\nseverity {}, opened {} UTC ({} ago)\n",
        i.id,
        i.state.as_str(),
        i.alert,
        labels(&i.labels),
        i.severity,
        utc(i.opened_ms),
        age(now_ms().saturating_sub(i.opened_ms)),
    );
    if let Some(a) = &i.acknowledged {
        out += &format!(
            "acknowledged by {} after {}\n",
            a.by,
            seconds(i.time_to_acknowledge_seconds)
        );
    }
    if i.time_to_recover_seconds.is_some() {
        out += &format!("recovered in {}\n", seconds(i.time_to_recover_seconds));
    }
    if i.omitted > 0 {
        out += &format!("({} older entries omitted)\n", i.omitted);
    }
    for e in i.timeline.iter().flatten() {
        out += &format!("  {}  {}\n", utc(e.at_ms), entry_text(e));
    }
    out
}

fn list(a: &ListArgs) -> anyhow::Result<()> {
    let client = a.target.client()?;
    let limit = a.limit.to_string();
    let mut query = vec![("limit", limit.as_str())];
    if let Some(s) = &a.state {
        query.push(("state", s));
    }
    if let Some(s) = &a.since {
        query.push(("since", s));
    }
    let path = "/api/incidents";
    let body = answer(&client, path, client.get(path, &query)?)?;
    let list: Vec<IncidentView> = serde_json::from_str(&body)?;
    match a.output {
        Output::Json => println!("{}", serde_json::to_string(&list)?),
        Output::Human => print!("{}", human_list(&list)),
    }
    Ok(())
}

fn print_one(body: &str, output: Output) -> anyhow::Result<()> {
    let i: IncidentView = serde_json::from_str(body)?;
    match output {
        Output::Json => println!("{}", serde_json::to_string(&i)?),
        Output::Human => print!("{}", human_one(&i)),
    }
    Ok(())
}

fn show(a: &ShowArgs) -> anyhow::Result<()> {
    let client = a.target.client()?;
    let path = format!("/api/incidents/{}", a.id);
    let body = answer(&client, &path, client.get(&path, &[])?)?;
    print_one(&body, a.output)
}

fn ack(a: &AckArgs) -> anyhow::Result<()> {
    let client = a.target.client()?;
    let path = format!("/api/incidents/{}/ack", a.id);
    let body = serde_json::json!({ "by": author(a.by.as_ref()), "comment": a.comment });
    let reply = client.send("POST", &path, Some(&body.to_string()))?;
    print_one(&answer(&client, &path, reply)?, a.output)
}

fn note(a: &NoteArgs) -> anyhow::Result<()> {
    let client = a.target.client()?;
    let path = format!("/api/incidents/{}/notes", a.id);
    let body = serde_json::json!({ "by": author(a.by.as_ref()), "text": a.text });
    let reply = client.send("POST", &path, Some(&body.to_string()))?;
    print_one(&answer(&client, &path, reply)?, a.output)
}
