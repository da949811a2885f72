//! `healing`: the healing report (`/api/healing`) as tables.

use clap::Args;
use serde_json::Value;

use super::format::{number, table};
use super::{Output, Target};

/// `healing`.
#[derive(Debug, Args)]
pub struct HealingArgs {
    #[command(flatten)]
    target: Target,
    /// Only attempts detected from this time (RFC 3339 or unix seconds).
    #[arg(long)]
    from: Option<String>,
    /// Only attempts detected before this time (RFC 3339 or unix seconds).
    #[arg(long)]
    to: Option<String>,
    /// Human tables or JSON.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
}

/// Prints the healing report.
pub fn run(args: &HealingArgs) -> anyhow::Result<()> {
    let mut query = Vec::new();
    if let Some(f) = &args.from {
        query.push(("from", f.as_str()));
    }
    if let Some(t) = &args.to {
        query.push(("to", t.as_str()));
    }
    let (status, body) = args.target.client()?.get("/api/healing", &query)?;
    if status != 200 {
        anyhow::bail!("/api/healing answered {status}: {}", body.trim());
    }
    let report: Value = serde_json::from_str(&body)?;
    match args.output {
        Output::Json => println!("{report}"),
        Output::Human => print!("{}", render(&report)),
    }
    Ok(())
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), number),
        other => other.to_string(),
    }
}

fn pct(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "-".into(), |x| format!("{:.1}%", x * 100.0))
}

fn secs(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "-".into(), |ms| format!("{:.1}s", ms / 1000.0))
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// The report as text: totals, strategies, MTTR, recommendations.
fn render(r: &Value) -> String {
    let o = &r["overall"];
    let mut out = format!(
        "healing: {} attempts on {} failures, {} verified ({}), MTTR {}\n\n",
        text(&o["total_healings"]),
        text(&o["total_failures"]),
        text(&o["successful_healings"]),
        pct(&o["success_rate"]),
        secs(&o["mttr_ms"]),
    );
    let rows: Vec<Vec<String>> = list(&r["effectiveness"])
        .iter()
        .map(|e| {
            vec![
                text(&e["strategy"]),
                text(&e["attempts"]),
                pct(&e["success_rate"]),
                secs(&e["mean_healing_time_ms"]),
                text(&e["trend"]),
                text(&e["recommendation"]),
            ]
        })
        .collect();
    let header = [
        "STRATEGY",
        "ATTEMPTS",
        "VERIFIED",
        "MEAN TIME",
        "TREND",
        "ADVICE",
    ];
    out.push_str(&table(&header, &rows));
    let rows: Vec<Vec<String>> = list(&r["mttr_trend"])
        .iter()
        .map(|t| {
            let all = list(&r["mttr"]["by_failure_type"])
                .iter()
                .find(|p| p[0] == t["failure_type"])
                .map(|p| p[1].clone())
                .unwrap_or(Value::Null);
            vec![
                text(&t["failure_type"]),
                text(&all["count"]),
                secs(&all["mean_ms"]),
                secs(&all["p50_ms"]),
                secs(&all["p90_ms"]),
                text(&t["trend"]),
            ]
        })
        .collect();
    if !rows.is_empty() {
        out.push('\n');
        let header = ["FAILURE TYPE", "RECOVERIES", "MTTR", "P50", "P90", "TREND"];
        out.push_str(&table(&header, &rows));
    }
    let recs = list(&r["recommendations"]);
    if !recs.is_empty() {
        out.push_str("\nrecommendations:\n");
        for rec in recs {
            out.push_str(&format!(
                "  [{}] {} ({} = {}, threshold {})\n",
                text(&rec["priority"]),
                text(&rec["message"]),
                text(&rec["metric"]),
                text(&rec["value"]),
                text(&rec["threshold"]),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_strategies_mttr_and_recommendations() {
        let r = serde_json::json!({
            "overall": {"total_healings": 10, "total_failures": 4, "successful_healings": 6,
                        "success_rate": 0.6, "mttr_ms": 2500.0},
            "effectiveness": [{"strategy": "restart", "attempts": 10, "success_rate": 0.6,
                               "mean_healing_time_ms": 12.0, "trend": "stable",
                               "recommendation": "tune"}],
            "mttr": {"by_failure_type": [["down", {"count": 6, "mean_ms": 2500.0,
                     "p50_ms": 2000.0, "p90_ms": 4000.0, "max_ms": 5000.0}]]},
            "mttr_trend": [{"failure_type": "down", "trend": "improving"}],
            "recommendations": [{"priority": "medium", "message": "tune it",
                                 "metric": "strategy_success_rate", "value": 0.6,
                                 "threshold": 0.8}]
        });
        let text = render(&r);
        assert!(
            text.starts_with("healing: 10 attempts on 4 failures, 6 verified (60.0%), MTTR 2.5s\n"),
            "{text}"
        );
        assert!(text.contains("restart"), "{text}");
        assert!(text.contains("tune"), "{text}");
        assert!(text.contains("improving"), "{text}");
        assert!(
            text.contains("[medium] tune it (strategy_success_rate = 0.6, threshold 0.8)"),
            "{text}"
        );
    }
}
