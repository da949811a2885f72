//! `webhook` notifier: POSTs each notification as JSON shaped like Alertmanager's webhook payload
//! (version 4), so receivers written for Alertmanager accept it.
//!
//! With `api = "alertmanager"` it instead POSTs to an Alertmanager's v2 API (`url` ending in
//! `/api/v2/alerts`): a JSON array with one postable alert (labels, annotations, `startsAt`, and
//! `endsAt`: the resolve time once resolved, or while firing the notification's `valid_until_ms`
//! when the host re-sends it), so a clustered Alertmanager can group, silence and route the host's
//! alerts. The webhook shape keeps `endsAt` at the zero time while firing, as Alertmanager does.
//!
//! Config: `url` (required, `http://` or `https://`), `api` (`"webhook"`, the default, or `"alertmanager"`),
//! `timeout` (a duration such as `"5s"`, or seconds; default 5 s), `retries` (extra attempts after a failure, default 2),
//! `receiver` (the webhook payload's `receiver`, default `"monitor-host"`), `follow_redirects`
//! (default false), `tls_ca_file` (a PEM file of CA certificates to trust instead of the system's
//! bundle, for a receiver with a private CA).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use monitor_plugin::{
    AlertNotifier, ConfigDuration, Notification, NotificationStatus, PluginError, parse_config,
};
use monitor_plugin_common::http::ClientOptions;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Api {
    #[default]
    Webhook,
    Alertmanager,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    url: String,
    #[serde(default)]
    follow_redirects: bool,
    tls_ca_file: Option<PathBuf>,
    #[serde(default)]
    api: Api,
    #[serde(default = "default_timeout")]
    timeout: ConfigDuration,
    #[serde(default = "default_retries")]
    retries: u32,
    #[serde(default = "default_receiver")]
    receiver: String,
}

fn default_timeout() -> ConfigDuration {
    ConfigDuration::from_secs(5)
}
fn default_retries() -> u32 {
    2
}
fn default_receiver() -> String {
    "monitor-host".into()
}

#[derive(Default)]
struct Webhook {
    settings: Option<Settings>,
    agent: Option<ureq::Agent>,
}

/// One alert of the payload, as Alertmanager sends it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AmAlert {
    status: &'static str,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: String,
    fingerprint: String,
}

/// One alert as Alertmanager's v2 API takes it (`POST /api/v2/alerts` with an array of these).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    starts_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ends_at: Option<String>,
}

/// The payload, as Alertmanager's webhook receiver documents it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    version: &'static str,
    group_key: String,
    truncated_alerts: u32,
    status: &'static str,
    receiver: String,
    group_labels: BTreeMap<String, String>,
    common_labels: BTreeMap<String, String>,
    common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    external_url: String,
    alerts: Vec<AmAlert>,
}

/// RFC 3339 in UTC from ms since the Unix epoch (civil-from-days, proleptic Gregorian).
fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    // FNV-1a over the sorted labels: stable across hosts and runs, like Alertmanager's.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in labels {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

fn payload(n: &Notification, receiver: &str) -> Payload {
    let status = match n.status {
        NotificationStatus::Firing => "firing",
        NotificationStatus::Resolved => "resolved",
    };
    let mut labels = n.labels.clone();
    labels.insert("alertname".into(), n.alert.clone());
    // An expression rule's own `severity` label (`page`...) is kept as Alertmanager would get it.
    labels
        .entry("severity".into())
        .or_insert_with(|| n.severity.as_str().into());
    if !n.host.is_empty() {
        labels.insert("host".into(), n.host.clone());
    }
    // The rule's rendered annotations, as Prometheus sends them; a simple rule has none, and
    // gets its description and a summary of its condition.
    let mut annotations = n.annotations.clone();
    if !n.description.is_empty() || n.expr.is_none() {
        annotations
            .entry("description".into())
            .or_insert_with(|| n.description.clone());
    }
    if n.expr.is_none() {
        annotations.entry("summary".into()).or_insert_with(|| {
            format!(
                "{} {} {} (value {})",
                n.metric, n.condition, n.threshold, n.value
            )
        });
    }
    if n.escalation {
        let why = match n.escalation_reason.as_deref() {
            Some("unacknowledged") => "unacknowledged",
            _ => "healing gave up",
        };
        annotations.insert("escalation".into(), why.into());
    }
    if n.stale {
        annotations.insert(
            "stale".into(),
            "the series stopped being reported; the value is the last one seen".into(),
        );
    }
    let group_labels = BTreeMap::from([("alertname".to_owned(), n.alert.clone())]);
    Payload {
        version: "4",
        group_key: format!("{{}}:{{alertname=\"{}\"}}", n.alert),
        truncated_alerts: 0,
        status,
        receiver: receiver.to_owned(),
        group_labels,
        common_labels: labels.clone(),
        common_annotations: annotations.clone(),
        external_url: String::new(),
        alerts: vec![AmAlert {
            status,
            fingerprint: fingerprint(&labels),
            labels,
            annotations,
            starts_at: rfc3339(n.starts_at_ms),
            ends_at: n
                .ends_at_ms
                .map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), rfc3339),
            generator_url: String::new(),
        }],
    }
}

/// The body of a `POST /api/v2/alerts`.
fn postable(n: &Notification, receiver: &str) -> Vec<PostableAlert> {
    payload(n, receiver)
        .alerts
        .into_iter()
        .map(|a| PostableAlert {
            labels: a.labels,
            annotations: a.annotations,
            starts_at: a.starts_at,
            // Firing: until when the host vouches for it (it resends before then), so
            // Alertmanager keeps it active without falling back on its `resolve_timeout`.
            // Resolved: when it resolved.
            ends_at: n.ends_at_ms.or(n.valid_until_ms).map(rfc3339),
        })
        .collect()
}

impl AlertNotifier for Webhook {
    fn configure(&mut self, config: &serde_json::Value) -> Result<(), PluginError> {
        let s: Settings = parse_config(config)?;
        monitor_plugin_common::http::check_url(&s.url)?;
        if s.timeout.get().is_zero() {
            return Err("`timeout` must be longer than zero, e.g. \"5s\"".into());
        }
        let mut client = ClientOptions::new(s.timeout.get());
        client.follow_redirects = s.follow_redirects;
        client.tls_ca_file.clone_from(&s.tls_ca_file);
        self.agent = Some(monitor_plugin_common::http::agent(&client)?);
        self.settings = Some(s);
        Ok(())
    }

    fn notify(&mut self, n: &Notification) -> Result<(), PluginError> {
        let (Some(s), Some(agent)) = (&self.settings, &self.agent) else {
            return Err("not configured".into());
        };
        let body = match s.api {
            Api::Webhook => serde_json::to_string(&payload(n, &s.receiver))?,
            Api::Alertmanager => serde_json::to_string(&postable(n, &s.receiver))?,
        };
        let mut last = String::new();
        for attempt in 0..=s.retries {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
            }
            match agent
                .post(&s.url)
                .header("Content-Type", "application/json")
                .send(&body)
            {
                // A redirect is not retried: the receiver's answer will not change.
                Ok(r) => return monitor_plugin_common::http::refuse_redirect(&s.url, &r),
                Err(e) => last = e.to_string(),
            }
        }
        Err(format!(
            "POST {} failed after {} attempt(s): {last}",
            s.url,
            s.retries + 1
        )
        .into())
    }
}

monitor_plugin::export_plugin!(notifier "webhook" => Webhook);

#[cfg(test)]
mod tests {
    use super::*;

    fn firing() -> Notification {
        serde_json::from_value(serde_json::json!({
            "status": "firing", "alert": "too_high", "metric": "m", "value": 50.0,
            "threshold": 10.0, "condition": "above", "severity": "warning",
            "starts_at_ms": 1_700_000_000_000u64, "valid_until_ms": 1_700_000_240_000u64,
            "repeat": true
        }))
        .unwrap()
    }

    #[test]
    fn alertmanager_api_ends_a_firing_alert_at_its_validity_and_a_resolved_one_when_it_resolved() {
        let body = serde_json::to_value(postable(&firing(), "r")).unwrap();
        assert_eq!(body[0]["startsAt"], "2023-11-14T22:13:20.000Z");
        assert_eq!(body[0]["endsAt"], "2023-11-14T22:17:20.000Z");
        let once = Notification {
            valid_until_ms: None,
            repeat: false,
            ..firing()
        };
        let body = serde_json::to_value(postable(&once, "r")).unwrap();
        assert!(body[0].get("endsAt").is_none(), "{body}");
        let resolved = Notification {
            status: NotificationStatus::Resolved,
            valid_until_ms: None,
            ends_at_ms: Some(1_700_000_010_000),
            ..firing()
        };
        let body = serde_json::to_value(postable(&resolved, "r")).unwrap();
        assert_eq!(body[0]["endsAt"], "2023-11-14T22:13:30.000Z");
    }

    #[test]
    fn an_expression_rules_annotations_and_labels_are_sent_as_alertmanager_gets_them() {
        let n = Notification {
            condition: "expr".into(),
            threshold: 0.0,
            expr: Some("disk_used > 0.9".into()),
            description: "/var is full".into(),
            labels: BTreeMap::from([("severity".to_owned(), "page".to_owned())]),
            annotations: BTreeMap::from([
                ("description".to_owned(), "/var is full".to_owned()),
                ("runbook_url".to_owned(), "http://wiki/disk".to_owned()),
            ]),
            ..firing()
        };
        for body in [
            serde_json::to_value(payload(&n, "r")).unwrap()["alerts"][0].clone(),
            serde_json::to_value(postable(&n, "r")).unwrap()[0].clone(),
        ] {
            assert_eq!(
                body["annotations"],
                serde_json::json!({"description": "/var is full", "runbook_url": "http://wiki/disk"})
            );
            assert_eq!(body["labels"]["severity"], "page");
        }
        // A simple rule's notification keeps its summary of the condition.
        let body = serde_json::to_value(payload(&firing(), "r")).unwrap();
        assert_eq!(
            body["commonAnnotations"]["summary"],
            "m above 10 (value 50)"
        );
    }

    #[test]
    fn the_webhook_shape_keeps_the_zero_end_time_while_firing() {
        let body = serde_json::to_value(payload(&firing(), "r")).unwrap();
        assert_eq!(body["status"], "firing");
        assert_eq!(body["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
    }
}
