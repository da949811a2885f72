//! The `silences` table, and reading `alert_transitions` back for the history API.
//!
//! A silence is one row: `start_ms`, `end_ms`, and `data`, a JSON object with its `id` (a UUID),
//! `matchers` (each in Alertmanager's syntax, `alertname=~"disk.*"`), `created_by`, `comment` and
//! `updated_at_ms`. Rows that ended more than `rollup_retention` ago are deleted.

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::sqlite::{parse_annotations, parse_labels};
use super::{Database, TransitionRecord};
use crate::silence::{Matcher, Silence};

/// A silence as stored in `data`.
#[derive(Debug, Serialize, Deserialize)]
struct SilenceData {
    id: String,
    matchers: Vec<String>,
    created_by: String,
    comment: String,
    updated_at_ms: u64,
}

/// Which transitions [`Database::transitions`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransitionQuery {
    /// Only this alert (rule name).
    pub alert: Option<String>,
    /// At or after, ms since epoch.
    pub since_ms: Option<u64>,
    /// At or before, ms since epoch.
    pub until_ms: Option<u64>,
    /// At most this many, newest first.
    pub limit: usize,
}

fn clamp(ms: u64) -> i64 {
    ms.min(i64::MAX as u64) as i64
}

impl Database {
    /// Writes `s`, replacing the row of the same id, and deletes the silences that ended before
    /// `horizon_ms`, in one transaction.
    ///
    /// # Errors
    ///
    /// SQLite failed; nothing was written.
    pub fn save_silence(&mut self, s: &Silence, horizon_ms: u64) -> rusqlite::Result<()> {
        let data = SilenceData {
            id: s.id.clone(),
            matchers: s.matchers.iter().map(ToString::to_string).collect(),
            created_by: s.created_by.clone(),
            comment: s.comment.clone(),
            updated_at_ms: s.updated_at_ms,
        };
        let text = serde_json::to_string(&data).expect("silences always serialise");
        let tx = self.conn.transaction()?;
        tx.execute(
            "DELETE FROM silences WHERE json_extract(data, '$.id') = ?1",
            [&s.id],
        )?;
        tx.execute(
            "INSERT INTO silences (start_ms, end_ms, data) VALUES (?1, ?2, ?3)",
            params![clamp(s.starts_at_ms), clamp(s.ends_at_ms), text],
        )?;
        tx.execute(
            "DELETE FROM silences WHERE end_ms < ?1",
            [clamp(horizon_ms)],
        )?;
        tx.commit()
    }

    /// Alert transitions, newest first.
    ///
    /// # Errors
    ///
    /// SQLite failed.
    pub fn transitions(&self, q: &TransitionQuery) -> rusqlite::Result<Vec<TransitionRecord>> {
        read_transitions(&self.conn, q)
    }
}

/// Every silence that ended at or after `horizon_ms`; a row that cannot be read is skipped with a
/// warning.
pub(super) fn read_silences(conn: &Connection, horizon_ms: u64) -> rusqlite::Result<Vec<Silence>> {
    let mut stmt =
        conn.prepare("SELECT start_ms, end_ms, data FROM silences WHERE end_ms >= ?1 ORDER BY id")?;
    let rows = stmt.query_map([clamp(horizon_ms)], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (start, end, data) = row?;
        let parsed = serde_json::from_str::<SilenceData>(&data)
            .map_err(|e| e.to_string())
            .and_then(|d| {
                let matchers = (d.matchers.iter())
                    .map(|m| Matcher::parse(m))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Silence {
                    id: d.id,
                    matchers,
                    starts_at_ms: start.max(0) as u64,
                    ends_at_ms: end.max(0) as u64,
                    created_by: d.created_by,
                    comment: d.comment,
                    updated_at_ms: d.updated_at_ms,
                })
            });
        match parsed {
            Ok(s) => out.push(s),
            Err(e) => tracing::warn!(error = %e, %data, "a stored silence cannot be read; ignored"),
        }
    }
    Ok(out)
}

fn read_transitions(
    conn: &Connection,
    q: &TransitionQuery,
) -> rusqlite::Result<Vec<TransitionRecord>> {
    let mut stmt = conn.prepare(
        "SELECT alert, labels, status, value, stale, at_ms, annotations FROM alert_transitions
         WHERE (?1 IS NULL OR alert = ?1) AND at_ms >= ?2 AND at_ms <= ?3
         ORDER BY at_ms DESC, id DESC LIMIT ?4",
    )?;
    let rows = stmt.query_map(
        params![
            q.alert,
            clamp(q.since_ms.unwrap_or(0)),
            clamp(q.until_ms.unwrap_or(u64::MAX)),
            clamp(q.limit as u64)
        ],
        |r| {
            Ok(TransitionRecord {
                alert: r.get(0)?,
                labels: parse_labels(&r.get::<_, String>(1)?),
                firing: r.get::<_, String>(2)? == "firing",
                value: r.get::<_, Option<f64>>(3)?.unwrap_or(f64::NAN),
                stale: r.get(4)?,
                at_ms: r.get::<_, i64>(5)?.max(0) as u64,
                annotations: parse_annotations(r.get(6)?),
            })
        },
    )?;
    rows.collect()
}

/// Whether the store has a silence with this id (for tests and tools).
#[cfg(test)]
pub(super) fn has_silence(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    use rusqlite::OptionalExtension;
    conn.query_row(
        "SELECT 1 FROM silences WHERE json_extract(data, '$.id') = ?1",
        [id],
        |_| Ok(()),
    )
    .optional()
    .map(|r| r.is_some())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::silence::new_id;

    #[test]
    fn silences_and_transitions_round_trip() {
        let dir = std::env::temp_dir().join(format!("monitor-silences-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let day = Duration::from_secs(86_400);
        let mut db = Database::open(&dir, day, day).unwrap();
        let s = Silence {
            id: new_id(),
            matchers: vec![Matcher::parse(r#"alertname=~"disk.*""#).unwrap()],
            starts_at_ms: 1_000,
            ends_at_ms: 5_000,
            created_by: "ann".into(),
            comment: "disk swap".into(),
            updated_at_ms: 1_000,
        };
        db.save_silence(&s, 0).unwrap();
        let mut later = s.clone();
        later.ends_at_ms = 2_000;
        db.save_silence(&later, 0).unwrap();
        assert_eq!(
            read_silences(&db.conn, 0).unwrap(),
            vec![later.clone()],
            "replaced by id"
        );
        assert!(
            read_silences(&db.conn, 2_001).unwrap().is_empty(),
            "ended before the horizon"
        );
        let other = Silence {
            id: new_id(),
            ..later.clone()
        };
        db.save_silence(&other, 3_000).unwrap();
        assert!(
            !has_silence(&db.conn, &later.id).unwrap(),
            "pruned with the next write"
        );
        let batch = super::super::Batch {
            transitions: (0..5)
                .map(|i| TransitionRecord {
                    alert: if i % 2 == 0 { "a" } else { "b" }.into(),
                    labels: [("host".to_owned(), "h".to_owned())].into(),
                    firing: i < 3,
                    value: f64::from(i),
                    stale: false,
                    at_ms: 1_000 * u64::from(i as u8),
                    annotations: (i == 4)
                        .then(|| ("summary".to_owned(), format!("at {i}")))
                        .into_iter()
                        .collect(),
                })
                .collect(),
            ..Default::default()
        };
        db.write(&[batch], 10_000).unwrap();
        let all = db
            .transitions(&TransitionQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        let times: Vec<u64> = all.iter().map(|t| t.at_ms).collect();
        assert_eq!(times, [4_000, 3_000, 2_000, 1_000, 0], "newest first");
        let a = db
            .transitions(&TransitionQuery {
                alert: Some("a".into()),
                since_ms: Some(1_000),
                until_ms: Some(4_000),
                limit: 1,
            })
            .unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].at_ms, a[0].firing), (4_000, false));
        assert_eq!(a[0].annotations["summary"], "at 4", "annotations kept");
        assert!(all[1].annotations.is_empty());
        drop(db);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
