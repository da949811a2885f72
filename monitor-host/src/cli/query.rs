//! `query` and `query-range`: PromQL over the host's `/api/v1/query` and `/api/v1/query_range`.

use std::collections::BTreeMap;

use clap::Args;
use serde::Deserialize;
use serde_json::Value;

use super::format::{labels, number, table, utc};
use super::{Client, Output, Target};

/// `query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    target: Target,
    /// The PromQL expression.
    expr: String,
    /// Evaluation time: Unix seconds, RFC 3339, `now`, or `now-5m` / `-5m` (default now).
    #[arg(long, allow_hyphen_values = true)]
    time: Option<String>,
    /// Human tables or Prometheus's JSON answer.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
}

/// `query-range`.
#[derive(Debug, Args)]
pub struct RangeArgs {
    #[command(flatten)]
    target: Target,
    /// The PromQL expression.
    expr: String,
    /// Start: Unix seconds, RFC 3339, `now`, or `now-1h` / `-1h`.
    #[arg(long, allow_hyphen_values = true, default_value = "-1h")]
    start: String,
    /// End, in the same forms (default now).
    #[arg(long, allow_hyphen_values = true, default_value = "now")]
    end: String,
    /// Resolution: seconds or a duration such as `15s`.
    #[arg(long, default_value = "60s")]
    step: String,
    /// Human tables or Prometheus's JSON answer.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
}

/// Prometheus's envelope.
#[derive(Debug, Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Value,
}

#[derive(Debug, Deserialize)]
struct Sample {
    metric: BTreeMap<String, String>,
    #[serde(default)]
    value: Option<(f64, String)>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// Runs an instant query.
pub fn instant(args: &QueryArgs) -> anyhow::Result<()> {
    let client = args.target.client()?;
    let mut params = vec![("query", args.expr.clone())];
    if let Some(t) = &args.time {
        params.push(("time", time(t)?));
    }
    ask(&client, "/api/v1/query", &params, args.output)
}

/// Runs a range query.
pub fn range(args: &RangeArgs) -> anyhow::Result<()> {
    let client = args.target.client()?;
    let params = vec![
        ("query", args.expr.clone()),
        ("start", time(&args.start)?),
        ("end", time(&args.end)?),
        ("step", args.step.clone()),
    ];
    ask(&client, "/api/v1/query_range", &params, args.output)
}

fn ask(
    client: &Client,
    path: &str,
    params: &[(&str, String)],
    output: Output,
) -> anyhow::Result<()> {
    let query: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = client.get(path, &query)?;
    let url = format!("{}{path}", client.base());
    let envelope: Envelope = serde_json::from_str(&body).map_err(|_| {
        let first = body.lines().next().unwrap_or("");
        anyhow::anyhow!("{url} answered {status} without Prometheus's JSON: {first}")
    })?;
    if envelope.status != "success" {
        anyhow::bail!(
            "{url} refused the query: {}: {}",
            envelope.error_type.as_deref().unwrap_or("error"),
            envelope.error.as_deref().unwrap_or("(no message)")
        );
    }
    if output == Output::Json {
        println!("{}", body.trim_end());
        return Ok(());
    }
    let data = envelope
        .data
        .ok_or_else(|| anyhow::anyhow!("{url} answered success without data"))?;
    print!(
        "{}",
        human(&data).map_err(|e| anyhow::anyhow!("{url}: {e}"))?
    );
    Ok(())
}

fn human(data: &Data) -> Result<String, String> {
    let bad = |e: serde_json::Error| format!("unexpected {} result: {e}", data.result_type);
    match data.result_type.as_str() {
        "scalar" | "string" => {
            let (t, v): (f64, String) = serde_json::from_value(data.result.clone()).map_err(bad)?;
            Ok(format!("{v} @ {}\n", utc((t * 1e3) as u64)))
        }
        "vector" => {
            let samples: Vec<Sample> = serde_json::from_value(data.result.clone()).map_err(bad)?;
            if samples.is_empty() {
                return Ok("no series\n".into());
            }
            let rows: Vec<Vec<String>> = samples
                .iter()
                .filter_map(|s| {
                    let (t, v) = s.value.as_ref()?;
                    Some(vec![
                        series_name(&s.metric),
                        value(v),
                        utc((t * 1e3) as u64),
                    ])
                })
                .collect();
            Ok(table(&["SERIES", "VALUE", "TIME (UTC)"], &rows))
        }
        "matrix" => {
            let samples: Vec<Sample> = serde_json::from_value(data.result.clone()).map_err(bad)?;
            if samples.is_empty() {
                return Ok("no series\n".into());
            }
            let mut out = String::new();
            for s in &samples {
                out += &format!("{} ({} points)\n", series_name(&s.metric), s.values.len());
                let rows: Vec<Vec<String>> = s
                    .values
                    .iter()
                    .map(|(t, v)| vec![format!("  {}", utc((t * 1e3) as u64)), value(v)])
                    .collect();
                out += &table(&["  TIME (UTC)", "VALUE"], &rows);
            }
            Ok(out)
        }
        other => Err(format!("unknown resultType {other:?}")),
    }
}

/// `name{labels}` with the name out of the braces, as Prometheus writes a series.
fn series_name(metric: &BTreeMap<String, String>) -> String {
    let mut rest = metric.clone();
    let name = rest.remove("__name__").unwrap_or_default();
    if rest.is_empty() && !name.is_empty() {
        name
    } else {
        format!("{name}{}", labels(&rest))
    }
}

fn value(v: &str) -> String {
    v.parse::<f64>().map_or_else(|_| v.to_owned(), number)
}

/// `now`, `now-5m` and `-5m` as Unix seconds; anything else is passed to the host as it is.
fn time(text: &str) -> anyhow::Result<String> {
    let now = super::format::now_ms() as i64;
    let ago = text.strip_prefix("now").unwrap_or(text);
    if ago.is_empty() {
        return Ok(seconds(now));
    }
    if let Some(d) = ago.strip_prefix('-') {
        let ms = promql_parser::util::parse_duration(d)
            .map_err(|e| anyhow::anyhow!("{text}: not a time: {e}"))?
            .as_millis() as i64;
        return Ok(seconds(now - ms));
    }
    Ok(text.to_owned())
}

fn seconds(ms: i64) -> String {
    format!("{:.3}", ms as f64 / 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(json: &str) -> Data {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn vectors_and_matrices_as_tables() {
        let v = data(
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[0,"1"]}]}"#,
        );
        assert_eq!(
            human(&v).unwrap(),
            "SERIES       VALUE  TIME (UTC)\nup{job=\"a\"}  1      1970-01-01 00:00:00\n"
        );
        let m = data(
            r#"{"resultType":"matrix","result":[{"metric":{"__name__":"x"},"values":[[60,"0.5"],[120,"NaN"]]}]}"#,
        );
        assert_eq!(
            human(&m).unwrap(),
            "x (2 points)\n  TIME (UTC)           VALUE\n  1970-01-01 00:01:00  0.5\n  1970-01-01 00:02:00  NaN\n"
        );
    }

    #[test]
    fn an_unexpected_result_is_an_error_not_a_panic() {
        let d = data(r#"{"resultType":"vector","result":{"oops":1}}"#);
        assert!(human(&d).unwrap_err().contains("unexpected vector result"));
        let d = data(r#"{"resultType":"histogram","result":[]}"#);
        assert!(human(&d).unwrap_err().contains("unknown resultType"));
    }

    #[test]
    fn relative_times() {
        assert_eq!(time("1700000000").unwrap(), "1700000000");
        let now: f64 = time("now").unwrap().parse().unwrap();
        let before: f64 = time("-5m").unwrap().parse().unwrap();
        assert!((now - before - 300.0).abs() < 5.0, "{now} {before}");
        assert!(time("-bogus").is_err());
    }
}
