//! `status`: is the host healthy, how are its plugins, how many alerts fire.

use serde_json::json;

use super::format::{age, now_ms, table};
use super::view::HostSnapshot;
use super::{Outcome, Output, StatusArgs};

/// Prints the status; [`Outcome::Attention`] when alerts fire or `/healthz` is not 200.
pub fn run(args: &StatusArgs) -> anyhow::Result<Outcome> {
    let client = args.target.client()?;
    let (health_status, health) = client.get("/healthz", &[])?;
    let healthy = health_status == 200;
    let snapshot: HostSnapshot = client.json("/api/snapshot")?;
    let count = |state: &str| snapshot.alerts.iter().filter(|a| a.state == state).count();
    let (firing, pending) = (count("firing"), count("pending"));
    match args.output {
        Output::Json => {
            let plugins: Vec<_> = snapshot
                .plugins
                .iter()
                .map(|p| {
                    json!({
                        "kind": p.kind, "name": p.name, "plugin": p.plugin, "version": p.version,
                        "state": p.state(), "calls": p.stats.calls, "errors": p.stats.errors,
                        "timeouts": p.stats.timeouts, "panics": p.stats.panics,
                        "last_error": p.stats.last_error,
                    })
                })
                .collect();
            let out = json!({
                "url": client.base(), "host": snapshot.host, "healthy": healthy,
                "health": health.trim(), "cycles": snapshot.cycles,
                "last_cycle_ms": snapshot.last_cycle.as_ref().map(|c| c.at_ms),
                "alerts": {"firing": firing, "pending": pending},
                "plugins": plugins,
            });
            println!("{out}");
        }
        Output::Human => print!("{}", human(&snapshot, client.base(), (healthy, &health))),
    }
    Ok(if firing > 0 || !healthy {
        Outcome::Attention
    } else {
        Outcome::Done
    })
}

fn human(s: &HostSnapshot, url: &str, (healthy, health): (bool, &str)) -> String {
    let count = |state: &str| s.alerts.iter().filter(|a| a.state == state).count();
    let mut out = format!(
        "host {} at {url}: {}\n",
        s.host,
        if healthy {
            "healthy".to_owned()
        } else {
            format!("UNHEALTHY ({})", health.trim())
        }
    );
    if let Some(c) = &s.last_cycle {
        out += &format!(
            "cycles: {}, the last {} ago took {:.1} ms ({} collector(s) called, {} failed)\n",
            s.cycles,
            age(now_ms().saturating_sub(c.at_ms)),
            c.duration_seconds * 1e3,
            c.collected,
            c.failed
        );
    }
    out += &format!(
        "alerts: {} firing, {} pending\n\n",
        count("firing"),
        count("pending")
    );
    let rows: Vec<Vec<String>> = s
        .plugins
        .iter()
        .map(|p| {
            vec![
                p.kind.clone(),
                p.name.clone(),
                p.plugin.clone(),
                p.version.clone(),
                p.stats.calls.to_string(),
                p.stats.errors.to_string(),
                p.stats.timeouts.to_string(),
                p.state().to_owned(),
                p.stats.last_error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = [
        "KIND",
        "NAME",
        "PLUGIN",
        "VERSION",
        "CALLS",
        "ERRORS",
        "TIMEOUTS",
        "STATE",
        "LAST ERROR",
    ];
    out + &table(&header, &rows)
}
