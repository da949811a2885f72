//! The files earlier hosts kept their history in, imported once into a new store.
//!
//! `history.json` is a versioned JSON document (series points, healing attempts, events);
//! `snapshot.json`, older, is the API snapshot. Neither is written any more.

use std::path::{Path, PathBuf};

use monitor_plugin::{Labels, SampleKind};
use serde::Deserialize;

use super::{AttemptKey, EventRecord, HealRecord, History, HistoryError, Saved, SavedSeries};
use crate::store::SeriesKey;

/// Name of the history file earlier hosts wrote in `data_dir`.
pub const HISTORY_FILE: &str = "history.json";
/// Name of the file still earlier hosts kept their history in (the API snapshot).
pub const LEGACY_FILE: &str = "snapshot.json";
/// Format version of [`HISTORY_FILE`] this host reads.
pub const FORMAT_VERSION: u32 = 1;

/// Reads [`HISTORY_FILE`] in `dir`, or when there is none, [`LEGACY_FILE`]. Nothing saved is an
/// empty [`Saved`]; the files are left alone.
///
/// # Errors
///
/// The file cannot be read, is not valid history, or has another format version. An unreadable
/// legacy file is an error too, so nothing is lost silently.
pub(super) fn load(dir: &Path) -> Result<Saved, HistoryError> {
    let path = dir.join(HISTORY_FILE);
    if let Some(text) = read_if_exists(&path)? {
        return parse_current(&text, path);
    }
    let legacy = dir.join(LEGACY_FILE);
    match read_if_exists(&legacy)? {
        Some(text) => parse_legacy(&text, legacy),
        None => Ok(Saved::default()),
    }
}

fn read_if_exists(path: &Path) -> Result<Option<String>, HistoryError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(HistoryError::Io {
            step: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

fn parse_current(text: &str, path: PathBuf) -> Result<Saved, HistoryError> {
    #[derive(Deserialize)]
    struct Probe {
        version: u32,
    }
    let corrupt = |source| HistoryError::Corrupt {
        path: path.clone(),
        source,
    };
    let probe: Probe = serde_json::from_str(text).map_err(corrupt)?;
    if probe.version != FORMAT_VERSION {
        return Err(HistoryError::Version {
            path,
            found: probe.version,
        });
    }
    let file: FileV1 = serde_json::from_str(text).map_err(corrupt)?;
    Ok(file.into_saved())
}

fn parse_legacy(text: &str, path: PathBuf) -> Result<Saved, HistoryError> {
    // The API snapshot of earlier hosts: only the parts that were reloaded then.
    #[derive(Deserialize)]
    struct Legacy {
        #[serde(default)]
        series: Vec<LegacySeries>,
        #[serde(default)]
        healing: Vec<FileHeal>,
        #[serde(default)]
        events: Vec<FileEvent>,
    }
    #[derive(Deserialize)]
    struct LegacySeries {
        name: String,
        labels: Labels,
        kind: SampleKind,
        points: Vec<(u64, f64)>,
    }
    let legacy: Legacy = serde_json::from_str(text).map_err(|source| HistoryError::Corrupt {
        path: path.clone(),
        source,
    })?;
    let file = FileV1 {
        series: legacy
            .series
            .into_iter()
            .map(|s| FileSeries {
                source: s.labels.get("collector").cloned().unwrap_or_default(),
                name: s.name,
                labels: s.labels,
                kind: s.kind,
                points: s.points,
            })
            .collect(),
        healing: legacy.healing,
        events: legacy.events,
        healing_attempts: None,
    };
    Ok(file.into_saved())
}

// The file format, version 1. These types are the format: change them only with FORMAT_VERSION.

#[derive(Deserialize)]
struct FileV1 {
    #[serde(default)]
    series: Vec<FileSeries>,
    #[serde(default)]
    healing: Vec<FileHeal>,
    #[serde(default)]
    events: Vec<FileEvent>,
    /// Absent: counted from `healing`.
    #[serde(default)]
    healing_attempts: Option<Vec<FileCount>>,
}

#[derive(Deserialize)]
struct FileCount {
    strategy: String,
    alert: String,
    success: bool,
    count: u64,
}

#[derive(Deserialize)]
struct FileSeries {
    name: String,
    labels: Labels,
    kind: SampleKind,
    #[serde(default)]
    source: String,
    points: Vec<(u64, f64)>,
}

#[derive(Deserialize)]
struct FileHeal {
    strategy: String,
    alert: String,
    #[serde(default)]
    labels: Labels,
    attempt: u32,
    success: bool,
    #[serde(default)]
    message: String,
    #[serde(default)]
    duration_ms: u64,
    started_ms: u64,
}

#[derive(Deserialize)]
struct FileEvent {
    source: String,
    kind: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    labels: Labels,
    timestamp_ms: u64,
}

impl FileV1 {
    fn into_saved(self) -> Saved {
        let mut history = History::default();
        for h in self.healing {
            history.record_heal(h.into());
        }
        if let Some(counts) = self.healing_attempts {
            history.attempts = counts
                .into_iter()
                .map(|c| {
                    let key = AttemptKey {
                        strategy: c.strategy,
                        alert: c.alert,
                        success: c.success,
                    };
                    (key, c.count)
                })
                .collect();
        }
        for e in self.events {
            history.record_event(e.into());
        }
        Saved {
            history,
            series: self
                .series
                .into_iter()
                .map(|s| SavedSeries {
                    // No row yet: the import makes them.
                    id: 0,
                    key: SeriesKey {
                        name: s.name,
                        labels: s.labels,
                    },
                    kind: s.kind,
                    source: s.source,
                    points: s.points,
                })
                .collect(),
            ..Saved::default()
        }
    }
}

impl From<FileHeal> for HealRecord {
    fn from(h: FileHeal) -> Self {
        Self {
            strategy: h.strategy,
            alert: h.alert,
            labels: h.labels,
            attempt: h.attempt,
            success: h.success,
            message: h.message,
            duration_ms: h.duration_ms,
            started_ms: h.started_ms,
            // Earlier hosts did not verify: imported as the strategy reported it.
            detected_ms: h.started_ms,
            verified: Some(h.success),
            recovered_ms: None,
            reason: (!h.success).then(|| "the strategy reported failure".to_owned()),
        }
    }
}

impl From<FileEvent> for EventRecord {
    fn from(e: FileEvent) -> Self {
        Self {
            source: e.source,
            kind: e.kind,
            message: e.message,
            labels: e.labels,
            timestamp_ms: e.timestamp_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("monitor-legacy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn nothing_saved_is_empty_history() {
        let d = dir("empty");
        let saved = load(&d).unwrap();
        assert!(saved.series.is_empty());
        assert_eq!(saved.history.healing().count(), 0);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let d = dir("corrupt");
        let path = d.join(HISTORY_FILE);
        std::fs::write(&path, "{\"version\": 1, \"healing\": [tru").unwrap();
        let err = load(&d).unwrap_err();
        assert!(matches!(err, HistoryError::Corrupt { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("will not overwrite"), "{text}");

        std::fs::write(&path, "{\"version\": 7}").unwrap();
        let err = load(&d).unwrap_err().to_string();
        assert!(err.contains("format version 7"), "{err}");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn counters_are_read_and_the_history_file_wins_over_the_snapshot() {
        let d = dir("both");
        let current = r#"{"version":1,"saved_at_ms":9,"series":[{"name":"m","labels":{},
            "kind":"counter","source":"c","points":[[1,1.0],[2,2.0]]}],"healing":[],"events":[],
            "healing_attempts":[{"strategy":"s","alert":"a","success":false,"count":1234}]}"#;
        std::fs::write(d.join(HISTORY_FILE), current).unwrap();
        std::fs::write(d.join(LEGACY_FILE), "not read").unwrap();
        let saved = load(&d).unwrap();
        assert_eq!(saved.history.attempts_total().values().sum::<u64>(), 1234);
        assert_eq!(saved.series[0].points, [(1, 1.0), (2, 2.0)]);
        assert_eq!(saved.series[0].kind, SampleKind::Counter);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn an_old_snapshot_is_read_when_there_is_no_history_file() {
        let d = dir("legacy");
        let old = r#"{"host":"h","cycles":3,"series":[{"name":"m","labels":{"collector":"c"},
            "kind":"gauge","value":2.0,"timestamp_ms":20,"points":[[10,1.0],[20,2.0]]}],
            "alerts":[],"plugins":[],"healing":[{"strategy":"s","alert":"a","labels":{},
            "attempt":1,"success":true,"message":"ok","duration_ms":1,"started_ms":5}],
            "events":[{"source":"c","kind":"k","message":"m","labels":{},"timestamp_ms":6}]}"#;
        std::fs::write(d.join(LEGACY_FILE), old).unwrap();
        let saved = load(&d).unwrap();
        let h = &saved.history;
        assert_eq!(h.healing().count(), 1);
        assert_eq!(
            h.attempts_total().values().sum::<u64>(),
            1,
            "counted from the records"
        );
        assert_eq!(h.events().count(), 1);
        let s = &saved.series[0];
        assert_eq!(s.key.labels["collector"], "c");
        assert_eq!(s.source, "c");
        assert_eq!(s.points.len(), 2);
        std::fs::remove_dir_all(d).unwrap();
    }
}
