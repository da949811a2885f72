//! `alerts`: every alert instance the host evaluates.

use super::format::{age, labels, now_ms, number, table};
use super::view::{Alert, HostSnapshot};
use super::{Output, StatusArgs};

/// Prints the alert instances, firing first.
pub fn run(args: &StatusArgs) -> anyhow::Result<()> {
    let client = args.target.client()?;
    let mut snapshot: HostSnapshot = client.json("/api/snapshot")?;
    snapshot.alerts.sort_by(|a, b| a.order().cmp(&b.order()));
    match args.output {
        Output::Json => println!("{}", serde_json::to_string(&snapshot.alerts)?),
        Output::Human => print!("{}", human(&snapshot.alerts, now_ms())),
    }
    Ok(())
}

/// The table; `now_ms` for the ages.
pub fn human(alerts: &[Alert], now_ms: u64) -> String {
    if alerts.is_empty() {
        return "no alert instances evaluated yet\n".into();
    }
    let rows: Vec<Vec<String>> = alerts
        .iter()
        .map(|a| {
            vec![
                a.alert.clone(),
                labels(&a.labels),
                match (a.silenced_by.is_empty(), a.inhibited_by.is_empty()) {
                    (false, _) => format!("{} (silenced)", a.state),
                    (true, false) => format!("{} (inhibited)", a.state),
                    (true, true) => a.state.clone(),
                },
                a.since_ms()
                    .map_or_else(|| "-".into(), |t| age(now_ms.saturating_sub(t))),
                number(a.value),
            ]
        })
        .collect();
    table(&["ALERT", "LABELS", "STATE", "SINCE", "VALUE"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_table() {
        let a = Alert {
            alert: "too_high".into(),
            labels: [("collector".to_owned(), "file".to_owned())].into(),
            state: "firing".into(),
            value: 50.0,
            firing_since_ms: Some(1_000),
            ..Alert::default()
        };
        let silenced = Alert {
            silenced_by: vec!["id".into()],
            ..a.clone()
        };
        assert!(human(&[silenced], 61_000).contains("  firing (silenced)  "));
        assert_eq!(
            human(&[a], 61_000),
            "ALERT     LABELS              STATE   SINCE  VALUE\n\
             too_high  {collector=\"file\"}  firing  1m00s  50\n"
        );
    }
}
