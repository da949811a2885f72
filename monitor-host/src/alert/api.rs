//! The rules and their alerts in the shape of Prometheus's `/api/v1/rules` and `/api/v1/alerts`,
//! so Grafana's alerting views and scripts written for Prometheus read the host as they read
//! Prometheus.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{AlertEngine, AlertState, Instance, Step};

/// `2026-12-02T10:00:00.000Z`.
fn rfc3339(ms: u64) -> Value {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp_millis(ms).map_or(Value::Null, |t| {
        Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    })
}

/// A value as Prometheus's API writes an alert's (Go's `%e` with the shortest mantissa):
/// `1e+00`, `9.95e+01`, `NaN`, `+Inf`.
pub(super) fn go_exponent(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let text = format!("{v:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
}

fn state_name(state: AlertState) -> &'static str {
    match state {
        AlertState::Inactive => "inactive",
        AlertState::Pending => "pending",
        AlertState::Firing => "firing",
    }
}

impl AlertEngine {
    /// An instance's labels as Prometheus shows an alert's: its own, `alertname` and, for a simple
    /// rule, its `severity`.
    fn api_labels(&self, i: &Instance) -> BTreeMap<String, String> {
        let mut labels: BTreeMap<String, String> = i.status.labels.clone().into_iter().collect();
        labels.insert("alertname".into(), i.status.alert.clone());
        if let Some(rule) = self.rules.meta.get(i.rule) {
            labels
                .entry("severity".into())
                .or_insert_with(|| rule.severity.as_str().into());
        }
        labels
    }

    fn api_alert(&self, i: &Instance) -> Value {
        json!({
            "labels": self.api_labels(i),
            "annotations": i.status.annotations,
            "state": state_name(i.status.state),
            "activeAt": i.status.active_since_ms.map_or(Value::Null, rfc3339),
            "value": go_exponent(i.status.value),
        })
    }

    /// The pending and firing alerts, as `GET /api/v1/alerts` answers.
    pub fn prometheus_alerts(&self) -> Value {
        let alerts: Vec<Value> = self
            .instances()
            .filter(|i| i.status.state != AlertState::Inactive)
            .map(|i| self.api_alert(i))
            .collect();
        json!({"status": "success", "data": {"alerts": alerts}})
    }

    /// Every group and rule with its health and active alerts, as `GET /api/v1/rules` answers;
    /// `host_interval` is the interval of the groups that have none of their own.
    pub fn prometheus_rules(&self, host_interval: std::time::Duration) -> Value {
        let rules = &self.rules;
        let groups: Vec<Value> = (rules.groups.iter())
            .map(|g| {
                let name = g
                    .name
                    .strip_prefix(&format!("{}:", g.file))
                    .filter(|_| !g.file.is_empty())
                    .unwrap_or(&g.name);
                let error = |rule: &str| self.errors.get(&(g.name.clone(), rule.to_owned()));
                let health = |rule: &str| match error(rule) {
                    Some(e) => ("err", e.clone()),
                    None => ("ok", String::new()),
                };
                let list: Vec<Value> = (g.steps.iter())
                    .map(|step| match step {
                        Step::Alert(ri) => {
                            let (meta, def) = (&rules.meta[*ri], &rules.defs[*ri]);
                            let instances: Vec<&Instance> =
                                self.instances().filter(|i| i.rule == *ri).collect();
                            let state = (instances.iter().map(|i| i.status.state))
                                .max_by_key(|s| s.as_number())
                                .unwrap_or(AlertState::Inactive);
                            let (health, last_error) = health(&meta.name);
                            let source = |m: &BTreeMap<String, crate::rules::Template>| {
                                (m.iter())
                                    .map(|(k, t)| (k.clone(), t.source().to_owned()))
                                    .collect::<BTreeMap<_, _>>()
                            };
                            json!({
                                "state": state_name(state),
                                "name": meta.name,
                                "query": def.text,
                                "duration": meta.for_.as_secs_f64(),
                                "keepFiringFor": def.keep_firing_for_ms as f64 / 1000.0,
                                "labels": source(&def.labels),
                                "annotations": source(&def.annotations),
                                "alerts": instances
                                    .iter()
                                    .filter(|i| i.status.state != AlertState::Inactive)
                                    .map(|i| self.api_alert(i))
                                    .collect::<Vec<_>>(),
                                "health": health,
                                "lastError": last_error,
                                "type": "alerting",
                            })
                        }
                        Step::Record {
                            name, expr, labels, ..
                        } => {
                            let (health, last_error) = health(name);
                            json!({
                                "name": name,
                                "query": expr.to_string(),
                                "labels": labels,
                                "health": health,
                                "lastError": last_error,
                                "type": "recording",
                            })
                        }
                    })
                    .collect();
                let interval = g
                    .interval_ms
                    .map_or(host_interval.as_secs_f64(), |ms| ms as f64 / 1000.0);
                json!({
                    "name": name,
                    "file": g.file,
                    "rules": list,
                    "interval": interval,
                    "limit": g.limit,
                })
            })
            .collect();
        json!({"status": "success", "data": {"groups": groups}})
    }
}

#[cfg(test)]
mod tests {
    use super::go_exponent;

    #[test]
    fn values_are_written_as_go_writes_them() {
        assert_eq!(go_exponent(1.0), "1e+00");
        assert_eq!(go_exponent(99.5), "9.95e+01");
        assert_eq!(go_exponent(0.00125), "1.25e-03");
        assert_eq!(go_exponent(-3e120), "-3e+120");
        assert_eq!(go_exponent(0.0), "0e+00");
        assert_eq!(go_exponent(f64::NAN), "NaN");
        assert_eq!(go_exponent(f64::NEG_INFINITY), "-Inf");
    }
}
