//! The `incidents` table: one row per incident, `opened_ms`, `closed_ms` (NULL while it is open)
//! and `data`, the incident as JSON (its alert, labels, state figures and timeline; see
//! [`Incident`]). Rows closed more than `rollup_retention` ago are deleted.

use rusqlite::{Connection, Transaction, params};

use crate::incident::{Incident, MAX_CLOSED};

fn clamp(ms: u64) -> i64 {
    ms.min(i64::MAX as u64) as i64
}

/// Writes each incident over its row.
pub(super) fn write_incidents(tx: &Transaction<'_>, list: &[Incident]) -> rusqlite::Result<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT OR REPLACE INTO incidents (id, opened_ms, closed_ms, data) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for i in list {
        let data = serde_json::to_string(i).expect("incidents always serialise");
        upsert.execute(params![
            clamp(i.id),
            clamp(i.opened_ms),
            i.resolved_ms.map(clamp),
            data
        ])?;
    }
    Ok(())
}

/// Deletes the incidents closed before `horizon_ms`.
pub(super) fn sweep_incidents(tx: &Transaction<'_>, horizon_ms: u64) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM incidents WHERE closed_ms < ?1")?
        .execute([clamp(horizon_ms)])?;
    Ok(())
}

/// Every open incident and the last [`MAX_CLOSED`] closed ones; a row that cannot be read is
/// skipped with a warning.
pub(super) fn read_incidents(conn: &Connection) -> rusqlite::Result<Vec<Incident>> {
    let mut stmt = conn.prepare(
        "SELECT data FROM incidents WHERE closed_ms IS NULL
         UNION ALL
         SELECT data FROM (SELECT data FROM incidents WHERE closed_ms IS NOT NULL
                           ORDER BY id DESC LIMIT ?1)",
    )?;
    let rows = stmt.query_map([MAX_CLOSED as i64], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for data in rows {
        let data = data?;
        match serde_json::from_str::<Incident>(&data) {
            Ok(i) => out.push(i),
            Err(e) => {
                tracing::warn!(error = %e, %data, "a stored incident cannot be read; ignored");
            }
        }
    }
    Ok(out)
}
