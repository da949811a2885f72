//! The incidents API.
//!
//! - `GET /api/incidents?state=open|acknowledged|resolved&since=&limit=`: incidents held in
//!   memory (every open one and the last closed ones), newest first, without their timelines;
//!   `since` (RFC 3339 or Unix seconds) keeps those opened or resolved at or after it, `limit`
//!   defaults to 100.
//! - `GET /api/incidents/{id}`: one incident with its timeline; 404 when there is none.
//! - `POST /api/incidents/{id}/ack` with `{"by": "...", "comment": "..."}`: acknowledges it (stops
//!   a pending time escalation); answers the incident.
//! - `POST /api/incidents/{id}/notes` with `{"by": "...", "text": "..."}`: adds a note; answers
//!   the incident.
//!
//! A malformed body is 400 with the reason, an unknown incident 404. With `[host] http_auth`,
//! every request needs its credentials (401 otherwise), as every other route.

use monitor_core::http::{Request, Response};
use monitor_plugin::{Labels, Severity};
use serde::{Deserialize, Serialize};

use super::{Ack, Entry, Incident, IncidentError, IncidentState};
use crate::engine::now_ms;
use crate::http::Published;
use crate::silence::api::API_WAIT;
use crate::silence::rfc3339;

/// Default and largest `limit` of `GET /api/incidents`.
pub const LIST_LIMIT: (usize, usize) = (100, 10_000);

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

/// An incident as the API shows it: its figures, and its timeline when asked for one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IncidentView {
    /// Its id.
    pub id: u64,
    /// The alert rule's name.
    pub alert: String,
    /// The series' labels.
    pub labels: Labels,
    /// The rule's severity.
    pub severity: Severity,
    /// `open`, `acknowledged` or `resolved`.
    pub state: IncidentState,
    /// First firing, ms since epoch, and as RFC 3339.
    pub opened_ms: u64,
    /// First firing, RFC 3339.
    pub opened: String,
    /// Last firing (the opening or the re-fire that reopened it), ms since epoch.
    pub fired_ms: u64,
    /// Resolution, ms since epoch.
    pub resolved_ms: Option<u64>,
    /// The first acknowledgement.
    pub acknowledged: Option<Ack>,
    /// When it was escalated for going unacknowledged, ms since epoch.
    pub escalated_ms: Option<u64>,
    /// Times a re-fire reopened it.
    pub reopened: u32,
    /// First firing to first acknowledgement, seconds.
    pub time_to_acknowledge_seconds: Option<f64>,
    /// First firing to resolution, seconds.
    pub time_to_recover_seconds: Option<f64>,
    /// Timeline entries held (and dropped to keep it bounded).
    pub entries: usize,
    /// Entries dropped to keep the timeline bounded.
    pub omitted: u64,
    /// What happened, oldest first; only for a single incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<Entry>>,
}

impl IncidentView {
    /// The view of `i`, with its timeline or without.
    pub fn new(i: &Incident, timeline: bool) -> Self {
        Self {
            id: i.id,
            alert: i.alert.clone(),
            labels: i.labels.clone(),
            severity: i.severity,
            state: i.state(),
            opened_ms: i.opened_ms,
            opened: rfc3339(i.opened_ms),
            fired_ms: i.fired_ms,
            resolved_ms: i.resolved_ms,
            acknowledged: i.acknowledged.clone(),
            escalated_ms: i.escalated_ms,
            reopened: i.reopened,
            time_to_acknowledge_seconds: i.time_to_acknowledge().map(|d| d.as_secs_f64()),
            time_to_recover_seconds: i.time_to_recover().map(|d| d.as_secs_f64()),
            entries: i.timeline.len(),
            omitted: i.omitted,
            timeline: timeline.then(|| i.timeline.clone()),
        }
    }
}

/// Which incidents `GET /api/incidents` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Only those in this state.
    pub state: Option<IncidentState>,
    /// Only those opened, or resolved, at or after this time, ms since epoch.
    pub since_ms: Option<u64>,
    /// At most this many, newest first.
    pub limit: usize,
}

impl ListQuery {
    /// Reads `state`, `since` and `limit` from a query string.
    ///
    /// # Errors
    ///
    /// An unknown parameter or a bad value, with the reason.
    pub fn parse(query: &str) -> Result<Self, String> {
        let mut q = Self {
            state: None,
            since_ms: None,
            limit: LIST_LIMIT.0,
        };
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let (k, v) = (crate::query::decode(k), crate::query::decode(v));
            match k.as_str() {
                "state" => {
                    q.state = Some(IncidentState::parse(&v).ok_or_else(|| {
                        format!("invalid parameter `state`: {v:?}; open, acknowledged or resolved")
                    })?);
                }
                "since" => {
                    let t = crate::query::parse_time(&v)
                        .map_err(|e| format!("invalid parameter `since`: {e}"))?;
                    q.since_ms = Some(t.max(0) as u64);
                }
                "limit" => {
                    q.limit = (v.parse::<usize>().ok())
                        .filter(|l| (1..=LIST_LIMIT.1).contains(l))
                        .ok_or_else(|| {
                            format!(
                                "invalid parameter `limit`: {v:?}; a number from 1 to {}",
                                LIST_LIMIT.1
                            )
                        })?;
                }
                other => {
                    return Err(format!(
                        "unknown parameter `{other}`: use state, since and limit"
                    ));
                }
            }
        }
        Ok(q)
    }

    /// Whether `i` is listed.
    pub fn matches(&self, i: &Incident) -> bool {
        self.state.is_none_or(|s| i.state() == s)
            && self.since_ms.is_none_or(|t| {
                i.opened_ms >= t || i.fired_ms >= t || i.resolved_ms.is_some_and(|r| r >= t)
            })
    }
}

/// The body of `POST /api/incidents/{id}/ack`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    by: String,
    #[serde(default)]
    comment: String,
}

/// The body of `POST /api/incidents/{id}/notes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    by: String,
    text: String,
}

/// Answers the request when its path is one of this API's; `None` otherwise.
pub fn handle(request: &Request<'_>, published: &Published) -> Option<Response> {
    let path = request.path;
    if path == "/api/incidents" {
        return Some(match request.method {
            "GET" | "HEAD" => list(request.query, published),
            _ => Response::method_not_allowed("GET, HEAD"),
        });
    }
    let rest = path.strip_prefix("/api/incidents/")?;
    let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
    let Ok(id) = id.parse::<u64>() else {
        return Some(error(404, format!("no incident `{id}`: ids are numbers")));
    };
    Some(match (action, request.method) {
        ("", "GET" | "HEAD") => one(id, published),
        ("", _) => Response::method_not_allowed("GET, HEAD"),
        ("ack", "POST") => ack(id, request.body, published),
        ("notes", "POST") => note(id, request.body, published),
        ("ack" | "notes", _) => Response::method_not_allowed("POST"),
        _ => error(404, format!("no such path: {path}")),
    })
}

fn list(query: &str, published: &Published) -> Response {
    let q = match ListQuery::parse(query) {
        Ok(q) => q,
        Err(e) => return error(400, e),
    };
    let views = published.ask(
        move |e| {
            (e.incidents().iter())
                .filter(|i| q.matches(i))
                .take(q.limit)
                .map(|i| IncidentView::new(i, false))
                .collect::<Vec<_>>()
        },
        API_WAIT,
    );
    match views {
        Some(v) => Response::new(200, JSON, serde_json::to_string(&v).unwrap_or_default()),
        None => busy(),
    }
}

fn one(id: u64, published: &Published) -> Response {
    let found = published.ask(
        move |e| e.incidents().get(id).map(|i| IncidentView::new(i, true)),
        API_WAIT,
    );
    match found {
        Some(Some(v)) => Response::new(200, JSON, serde_json::to_string(&v).unwrap_or_default()),
        Some(None) => error(404, IncidentError::NotFound(id)),
        None => busy(),
    }
}

fn answer(outcome: Option<Result<Incident, IncidentError>>) -> Response {
    match outcome {
        Some(Ok(i)) => Response::new(
            200,
            JSON,
            serde_json::to_string(&IncidentView::new(&i, true)).unwrap_or_default(),
        ),
        Some(Err(e @ IncidentError::NotFound(_))) => error(404, e),
        Some(Err(e @ IncidentError::Invalid(_))) => error(400, e),
        None => busy(),
    }
}

fn ack(id: u64, body: &[u8], published: &Published) -> Response {
    let b: AckBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => return error(400, format!("invalid acknowledgement: {e}")),
    };
    let now = now_ms();
    answer(published.ask_mut(
        move |e| e.acknowledge_incident(id, &b.by, &b.comment, now),
        API_WAIT,
    ))
}

fn note(id: u64, body: &[u8], published: &Published) -> Response {
    let b: NoteBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => return error(400, format!("invalid note: {e}")),
    };
    let now = now_ms();
    answer(published.ask_mut(move |e| e.note_incident(id, &b.by, &b.text, now), API_WAIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_parameters() {
        let q = ListQuery::parse("state=acknowledged&since=10&limit=5").unwrap();
        assert_eq!(q.state, Some(IncidentState::Acknowledged));
        assert_eq!(q.since_ms, Some(10_000));
        assert_eq!(q.limit, 5);
        assert_eq!(ListQuery::parse("").unwrap().limit, LIST_LIMIT.0);
        for (bad, why) in [
            ("state=closed", "state"),
            ("limit=0", "limit"),
            ("since=yesterday", "since"),
            ("foo=1", "unknown parameter `foo`"),
        ] {
            let e = ListQuery::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn bad_requests_are_refused_before_the_run_loop_is_asked() {
        let p = Published::default();
        let req = |method, path, body: &'static [u8]| Request {
            method,
            path,
            body,
            ..Request::default()
        };
        assert!(handle(&req("GET", "/api/silences", b""), &p).is_none());
        assert_eq!(
            handle(&req("PUT", "/api/incidents", b""), &p)
                .unwrap()
                .status,
            405
        );
        assert_eq!(
            handle(&req("GET", "/api/incidents/1/ack", b""), &p)
                .unwrap()
                .status,
            405
        );
        assert_eq!(
            handle(&req("GET", "/api/incidents/x", b""), &p)
                .unwrap()
                .status,
            404
        );
        let r = handle(&req("POST", "/api/incidents/1/ack", b"{\"by\": 3}"), &p).unwrap();
        assert_eq!(r.status, 400);
        let r = handle(
            &req("POST", "/api/incidents/1/notes", b"{\"by\": \"a\"}"),
            &p,
        )
        .unwrap();
        assert_eq!(r.status, 400);
        assert!(String::from_utf8_lossy(r.body.as_ref()).contains("text"));
        let mut list = req("GET", "/api/incidents", b"");
        list.query = "state=x";
        assert_eq!(handle(&list, &p).unwrap().status, 400);
    }
}
