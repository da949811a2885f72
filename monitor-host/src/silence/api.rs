//! The silences API and the alert history API.
//!
//! - `GET /api/silences`: every silence and `[[silence]]` window, Alertmanager's
//!   `gettableSilence` shape with `status.state` `active`, `pending` or `expired`, and `source`
//!   (`api` or `config`).
//! - `POST /api/silences`: a `postableSilence`; answers `{"silenceID": "..."}`, or 400 with the
//!   reason. With an `id`, changes that silence (404 when there is none).
//! - `GET /api/silences/{id}`; `DELETE /api/silences/{id}` expires it.
//! - `GET /api/alerts/history?alert=&since=&until=&limit=`: alert transitions from the store,
//!   newest first, each with the annotations rendered when it happened; `since` and `until` are
//!   RFC 3339 or Unix seconds, `limit` defaults to 100.

use std::collections::BTreeMap;
use std::time::Duration;

use monitor_core::http::{Request, Response};
use monitor_plugin::Labels;
use serde::Serialize;

use super::{PostableSilence, SilenceView, new_id, rfc3339};
use crate::engine::{SilenceError, now_ms};
use crate::history::TransitionQuery;
use crate::http::Published;
use crate::silence::ExpireError;

/// How long a request waits for the run loop, which owns the silences.
pub const API_WAIT: Duration = Duration::from_secs(30);

/// Default and largest `limit` of `/api/alerts/history`.
pub const HISTORY_LIMIT: (usize, usize) = (100, 10_000);

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

fn error(status: u16, message: impl std::fmt::Display) -> Response {
    Response::new(status, TEXT, format!("{message}\n"))
}

fn busy() -> Response {
    error(
        503,
        format!(
            "no answer from the run loop within {API_WAIT:?}: the host is busy or stopping; try again"
        ),
    )
}

/// Answers the request when its path is one of this API's; `None` otherwise.
pub fn handle(request: &Request<'_>, published: &Published) -> Option<Response> {
    let path = request.path;
    let response = if path == "/api/silences" {
        match request.method {
            "GET" | "HEAD" => list(published),
            "POST" => create(request.body, published),
            _ => Response::method_not_allowed("GET, HEAD, POST"),
        }
    } else if let Some(id) = path.strip_prefix("/api/silences/") {
        match request.method {
            "GET" | "HEAD" => one(id, published),
            "DELETE" => expire(id, published),
            _ => Response::method_not_allowed("GET, HEAD, DELETE"),
        }
    } else if path == "/api/alerts/history" {
        match request.method {
            "GET" | "HEAD" => history(request.query, published),
            _ => Response::method_not_allowed("GET, HEAD"),
        }
    } else {
        return None;
    };
    Some(response)
}

fn list(published: &Published) -> Response {
    let now = now_ms();
    match published.ask(move |e| e.silences().list(now), API_WAIT) {
        Some(list) => Response::new(200, JSON, serde_json::to_string(&list).unwrap_or_default()),
        None => busy(),
    }
}

fn one(id: &str, published: &Published) -> Response {
    let now = now_ms();
    let wanted = id.to_owned();
    let found: Option<Option<SilenceView>> = published.ask(
        move |e| e.silences().list(now).into_iter().find(|s| s.id == wanted),
        API_WAIT,
    );
    match found {
        Some(Some(s)) => Response::new(200, JSON, serde_json::to_string(&s).unwrap_or_default()),
        Some(None) => error(404, format!("no silence `{id}`")),
        None => busy(),
    }
}

fn create(body: &[u8], published: &Published) -> Response {
    let now = now_ms();
    let fresh = new_id();
    let s = match PostableSilence::parse(body, now, fresh.clone()) {
        Ok(s) => s,
        Err(e) => return error(400, e),
    };
    // The body named the silence to change.
    let named = s.id != fresh;
    let id = s.id.clone();
    let outcome = published.ask_mut(
        move |e| {
            if named && e.silences().get(&s.id).is_none() {
                return Err(None);
            }
            e.add_silence(s, now).map_err(Some)
        },
        API_WAIT,
    );
    match outcome {
        Some(Ok(())) => Response::new(
            200,
            JSON,
            serde_json::json!({ "silenceID": id }).to_string(),
        ),
        Some(Err(None)) => error(404, format!("no silence `{id}` to change")),
        Some(Err(Some(e))) => error(500, e),
        None => busy(),
    }
}

fn expire(id: &str, published: &Published) -> Response {
    let now = now_ms();
    let wanted = id.to_owned();
    match published.ask_mut(move |e| e.expire_silence(&wanted, now), API_WAIT) {
        Some(Ok(_)) => Response::new(200, JSON, "{}"),
        Some(Err(SilenceError::Expire(e @ ExpireError::NotFound(_)))) => error(404, e),
        Some(Err(SilenceError::Expire(e))) => error(400, e),
        Some(Err(e @ SilenceError::Store(_))) => error(500, e),
        None => busy(),
    }
}

/// One transition, as `/api/alerts/history` lists it.
#[derive(Debug, Serialize)]
struct TransitionView {
    alert: String,
    labels: Labels,
    status: &'static str,
    value: f64,
    stale: bool,
    at: String,
    at_ms: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

fn history_query(query: &str) -> Result<TransitionQuery, String> {
    let mut q = TransitionQuery {
        limit: HISTORY_LIMIT.0,
        ..TransitionQuery::default()
    };
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let (k, v) = (crate::query::decode(k), crate::query::decode(v));
        let time = |v: &str| {
            crate::query::parse_time(v)
                .map(|t| t.max(0) as u64)
                .map_err(|e| format!("invalid parameter `{k}`: {e}"))
        };
        match k.as_str() {
            "alert" if !v.is_empty() => q.alert = Some(v),
            "alert" => {}
            "since" => q.since_ms = Some(time(&v)?),
            "until" => q.until_ms = Some(time(&v)?),
            "limit" => {
                q.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|l| (1..=HISTORY_LIMIT.1).contains(l))
                    .ok_or_else(|| {
                        format!(
                            "invalid parameter `limit`: {v:?}; a number from 1 to {}",
                            HISTORY_LIMIT.1
                        )
                    })?;
            }
            other => {
                return Err(format!(
                    "unknown parameter `{other}`: use alert, since, until and limit"
                ));
            }
        }
    }
    Ok(q)
}

fn history(query: &str, published: &Published) -> Response {
    let q = match history_query(query) {
        Ok(q) => q,
        Err(e) => return error(400, e),
    };
    let rows = published.ask(
        move |e| e.transitions(&q).map_err(|e| e.to_string()),
        API_WAIT,
    );
    match rows {
        Some(Ok(rows)) => {
            let views: Vec<TransitionView> = rows
                .into_iter()
                .map(|t| TransitionView {
                    at: rfc3339(t.at_ms),
                    alert: t.alert,
                    labels: t.labels,
                    status: if t.firing { "firing" } else { "resolved" },
                    value: t.value,
                    stale: t.stale,
                    at_ms: t.at_ms,
                    annotations: t.annotations,
                })
                .collect();
            Response::new(200, JSON, serde_json::to_string(&views).unwrap_or_default())
        }
        Some(Err(e)) => error(500, format!("cannot read the store: {e}")),
        None => busy(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_parameters() {
        let q =
            history_query("alert=disk%5Ffull&since=10&until=2026-01-01T00:00:00Z&limit=5").unwrap();
        assert_eq!(q.alert.as_deref(), Some("disk_full"));
        assert_eq!(q.since_ms, Some(10_000));
        assert_eq!(q.until_ms, Some(1_767_225_600_000));
        assert_eq!(q.limit, 5);
        assert_eq!(history_query("").unwrap().limit, HISTORY_LIMIT.0);
        for (bad, why) in [
            ("limit=0", "limit"),
            ("limit=x", "limit"),
            ("limit=10001", "limit"),
            ("since=yesterday", "since"),
            ("foo=1", "unknown parameter `foo`"),
        ] {
            let e = history_query(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn other_paths_are_not_ours_and_methods_are_checked() {
        let p = Published::default();
        let get = |method, path| Request {
            method,
            path,
            ..Request::default()
        };
        assert!(handle(&get("GET", "/api/snapshot"), &p).is_none());
        let r = handle(&get("PUT", "/api/silences"), &p).unwrap();
        assert_eq!(r.status, 405);
        let r = handle(&get("POST", "/api/silences/x"), &p).unwrap();
        assert_eq!(r.status, 405);
        let r = handle(&get("POST", "/api/alerts/history"), &p).unwrap();
        assert_eq!(r.status, 405);
        // A bad body is refused before the run loop is asked.
        let mut post = get("POST", "/api/silences");
        post.body = b"{\"matchers\": []}";
        let r = handle(&post, &p).unwrap();
        assert_eq!(r.status, 400);
    }
}
