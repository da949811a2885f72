//! What the host remembers across restarts, and its one file format.
//!
//! In memory, [`History`] keeps the last healing attempts and events. On disk, `data_dir` holds
//! [`HISTORY_FILE`]: a versioned JSON document of this module's own types (series points, healing
//! attempts, events), written atomically by [`save`] and read back by [`load`]. The API's snapshot
//! is a view built by `render`; it is never read back.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use monitor_plugin::{Labels, SampleKind};
use serde::{Deserialize, Serialize};

use crate::store::{SeriesKey, Store};

/// Most healing records and events kept in memory.
pub const HISTORY_LIMIT: usize = 1000;
/// Name of the history file inside `data_dir`.
pub const HISTORY_FILE: &str = "history.json";
/// Name of the file earlier versions kept their history in (the API snapshot); read once when
/// [`HISTORY_FILE`] is absent, never written.
pub const LEGACY_FILE: &str = "snapshot.json";
/// Format version of [`HISTORY_FILE`]; a file of another version is refused, not overwritten.
pub const FORMAT_VERSION: u32 = 1;
/// Most recent points saved per series.
pub const SAVED_POINTS: usize = 60;

/// One healing attempt and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealRecord {
    /// Strategy instance.
    pub strategy: String,
    /// Alert it acted on.
    pub alert: String,
    /// The alert's series labels.
    pub labels: Labels,
    /// 1, 2, 3...
    pub attempt: u32,
    /// Whether the strategy reported success.
    pub success: bool,
    /// What it said, or why it failed to run.
    pub message: String,
    /// How long it took, in ms.
    pub duration_ms: u64,
    /// When it started, ms since epoch.
    pub started_ms: u64,
}

/// An event reported by a collector, or by the engine itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRecord {
    /// Who reported it (collector instance, or `host`).
    pub source: String,
    /// Event kind, e.g. `process_restarted` or `plugin_timeout`.
    pub kind: String,
    /// Human text.
    pub message: String,
    /// Labels.
    pub labels: Labels,
    /// When, ms since epoch.
    pub timestamp_ms: u64,
}

/// Which healing attempts a counter of [`History::attempts_total`] counts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttemptKey {
    /// Strategy instance.
    pub strategy: String,
    /// Alert name.
    pub alert: String,
    /// Whether the strategy reported success.
    pub success: bool,
}

/// Healing attempts and events, the last [`HISTORY_LIMIT`] of each, and a count of every healing
/// attempt ever recorded.
#[derive(Debug, Default)]
pub struct History {
    healing: VecDeque<HealRecord>,
    events: VecDeque<EventRecord>,
    attempts: BTreeMap<AttemptKey, u64>,
}

impl History {
    /// Remembers a healing attempt and counts it.
    pub fn record_heal(&mut self, record: HealRecord) {
        self.count_heal(&record);
        push_bounded(&mut self.healing, record);
    }

    fn count_heal(&mut self, record: &HealRecord) {
        let key = AttemptKey {
            strategy: record.strategy.clone(),
            alert: record.alert.clone(),
            success: record.success,
        };
        *self.attempts.entry(key).or_default() += 1;
    }

    /// Healing attempts ever recorded (across restarts when history is saved), by strategy, alert
    /// and outcome. Only ever grows, unlike [`healing`](Self::healing), which keeps the last ones.
    pub fn attempts_total(&self) -> &BTreeMap<AttemptKey, u64> {
        &self.attempts
    }

    /// Remembers an event.
    pub fn record_event(&mut self, event: EventRecord) {
        push_bounded(&mut self.events, event);
    }

    /// Healing attempts, oldest first.
    pub fn healing(&self) -> impl Iterator<Item = &HealRecord> {
        self.healing.iter()
    }

    /// Events, oldest first.
    pub fn events(&self) -> impl Iterator<Item = &EventRecord> {
        self.events.iter()
    }
}

fn push_bounded<T>(q: &mut VecDeque<T>, v: T) {
    if q.len() == HISTORY_LIMIT {
        q.pop_front();
    }
    q.push_back(v);
}

/// Why history could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// A file operation failed.
    #[error("cannot {step} `{}`: {source}", .path.display())]
    Io {
        /// What was being done: `create directory`, `write`, `sync`, `rename to`, `read`...
        step: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not history this host can read.
    #[error(
        "history file `{}` is unreadable ({source}); the host will not overwrite it: move it away to start with empty history",
        .path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        source: serde_json::Error,
    },
    /// The file was written by a host with another format version.
    #[error(
        "history file `{}` has format version {found}, but this host reads version {FORMAT_VERSION}; run a matching host or move the file away",
        .path.display()
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// The version it declares.
        found: u32,
    },
}

/// History read from `data_dir`.
#[derive(Debug, Default)]
pub struct Saved {
    /// Healing attempts and events.
    pub history: History,
    /// Series and their points, oldest first.
    pub series: Vec<SavedSeries>,
    /// The file it came from.
    pub path: Option<PathBuf>,
}

/// One series as saved.
#[derive(Debug)]
pub struct SavedSeries {
    /// Name and labels.
    pub key: SeriesKey,
    /// Gauge or counter.
    pub kind: SampleKind,
    /// Collector instance that produced it.
    pub source: String,
    /// `(ms since epoch, value)`, oldest first.
    pub points: Vec<(u64, f64)>,
}

impl Saved {
    /// Puts the saved points back into `store`, dropping those past its retention at `now_ms`.
    pub fn restore_into(self, store: &mut Store, now_ms: u64) -> History {
        for s in self.series {
            for (t, v) in s.points {
                store.insert(s.key.clone(), s.kind, &s.source, t, v);
            }
        }
        store.expire(now_ms);
        self.history
    }
}

/// Writes `history` and the latest [`SAVED_POINTS`] points of every series in `store` to
/// `dir/`[`HISTORY_FILE`]: a temporary file, flushed to disk, then renamed over the old one, so
/// a crash at any moment leaves either the old history or the new one.
///
/// # Errors
///
/// The directory cannot be created, or the file cannot be written, synced or renamed; the error
/// names the file and the step.
pub fn save(dir: &Path, history: &History, store: &Store, now_ms: u64) -> Result<(), HistoryError> {
    let file = FileV1::new(history, store, now_ms);
    let bytes = serde_json::to_vec(&file).expect("history always serialises");
    write_atomically(&dir.join(HISTORY_FILE), &bytes)
}

/// Reads what [`save`] wrote in `dir`. When there is no [`HISTORY_FILE`] but an earlier host's
/// [`LEGACY_FILE`], reads that once instead (the next save writes [`HISTORY_FILE`]; the legacy
/// file is left alone). Nothing saved is an empty [`Saved`].
///
/// # Errors
///
/// The file cannot be read, is not valid history, or has another format version. An unreadable
/// legacy file is an error too, so nothing is lost silently.
pub fn load(dir: &Path) -> Result<Saved, HistoryError> {
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
    Ok(file.into_saved(path))
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
        version: FORMAT_VERSION,
        saved_at_ms: 0,
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
    Ok(file.into_saved(path))
}

/// Writes `bytes` to `path` through a temporary file in the same directory: write, fsync, rename,
/// fsync the directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), HistoryError> {
    let io = |step: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| HistoryError::Io { step, path, source }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io("create directory", dir))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(bytes).map_err(io("write", &tmp))?;
    f.sync_all().map_err(io("sync", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io("rename to", path))?;
    // The rename is durable once the directory entry is.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("sync directory", dir))
}

// The file format, version 1. These types are the format: change them only with FORMAT_VERSION.

#[derive(Serialize, Deserialize)]
struct FileV1 {
    version: u32,
    saved_at_ms: u64,
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

#[derive(Serialize, Deserialize)]
struct FileCount {
    strategy: String,
    alert: String,
    success: bool,
    count: u64,
}

#[derive(Serialize, Deserialize)]
struct FileSeries {
    name: String,
    labels: Labels,
    kind: SampleKind,
    #[serde(default)]
    source: String,
    points: Vec<(u64, f64)>,
}

#[derive(Serialize, Deserialize)]
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

#[derive(Serialize, Deserialize)]
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
    fn new(history: &History, store: &Store, now_ms: u64) -> Self {
        Self {
            version: FORMAT_VERSION,
            saved_at_ms: now_ms,
            series: store
                .iter()
                .map(|(k, s)| FileSeries {
                    name: k.name.clone(),
                    labels: k.labels.clone(),
                    kind: s.kind,
                    source: s.source.clone(),
                    points: s
                        .points
                        .iter()
                        .skip(s.points.len().saturating_sub(SAVED_POINTS))
                        .copied()
                        .collect(),
                })
                .collect(),
            healing: history.healing().map(FileHeal::from).collect(),
            events: history.events().map(FileEvent::from).collect(),
            healing_attempts: Some(
                history
                    .attempts
                    .iter()
                    .map(|(k, &count)| FileCount {
                        strategy: k.strategy.clone(),
                        alert: k.alert.clone(),
                        success: k.success,
                        count,
                    })
                    .collect(),
            ),
        }
    }

    fn into_saved(self, path: PathBuf) -> Saved {
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
                    key: SeriesKey {
                        name: s.name,
                        labels: s.labels,
                    },
                    kind: s.kind,
                    source: s.source,
                    points: s.points,
                })
                .collect(),
            path: Some(path),
        }
    }
}

impl From<&HealRecord> for FileHeal {
    fn from(h: &HealRecord) -> Self {
        Self {
            strategy: h.strategy.clone(),
            alert: h.alert.clone(),
            labels: h.labels.clone(),
            attempt: h.attempt,
            success: h.success,
            message: h.message.clone(),
            duration_ms: h.duration_ms,
            started_ms: h.started_ms,
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
        }
    }
}

impl From<&EventRecord> for FileEvent {
    fn from(e: &EventRecord) -> Self {
        Self {
            source: e.source.clone(),
            kind: e.kind.clone(),
            message: e.message.clone(),
            labels: e.labels.clone(),
            timestamp_ms: e.timestamp_ms,
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

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let p =
                std::env::temp_dir().join(format!("monitor-history-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            Self(p)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn heal(attempt: u32) -> HealRecord {
        HealRecord {
            strategy: "s".into(),
            alert: "a".into(),
            labels: Labels::from([("k".to_owned(), "v".to_owned())]),
            attempt,
            success: attempt.is_multiple_of(2),
            message: format!("attempt {attempt}"),
            duration_ms: 3,
            started_ms: 1000 * u64::from(attempt),
        }
    }

    #[test]
    fn saves_and_loads_healing_events_and_series() {
        let dir = Dir::new("roundtrip");
        let mut h = History::default();
        h.record_heal(heal(1));
        h.record_heal(heal(2));
        h.record_event(EventRecord {
            source: "c".into(),
            kind: "k".into(),
            message: "m".into(),
            labels: Labels::new(),
            timestamp_ms: 7,
        });
        let mut store = Store::new(u64::MAX);
        let key = SeriesKey {
            name: "m".into(),
            labels: Labels::new(),
        };
        for t in 0..100 {
            store.insert(key.clone(), SampleKind::Counter, "c", t, t as f64);
        }
        save(&dir.0, &h, &store, 99).unwrap();
        assert!(!dir.0.join(".history.json.tmp").exists(), "renamed away");

        let saved = load(&dir.0).unwrap();
        assert_eq!(
            saved.path.as_deref(),
            Some(dir.0.join(HISTORY_FILE).as_path())
        );
        let mut restored = Store::new(u64::MAX);
        let back = saved.restore_into(&mut restored, 99);
        assert_eq!(
            back.healing().cloned().collect::<Vec<_>>(),
            [heal(1), heal(2)]
        );
        assert_eq!(back.events().count(), 1);
        let (_, s) = restored.by_name("m").next().unwrap();
        assert_eq!(s.points.len(), SAVED_POINTS);
        assert_eq!(s.latest(), Some((99, 99.0)));
        assert_eq!((s.kind, s.source.as_str()), (SampleKind::Counter, "c"));
    }

    #[test]
    fn attempt_counters_outlive_the_records_and_are_saved() {
        let dir = Dir::new("counters");
        let mut h = History::default();
        let n = HISTORY_LIMIT as u32 + 10;
        for attempt in 1..=n {
            h.record_heal(heal(attempt));
        }
        assert_eq!(h.healing().count(), HISTORY_LIMIT);
        let total = |h: &History, success| {
            h.attempts_total()[&AttemptKey {
                strategy: "s".into(),
                alert: "a".into(),
                success,
            }]
        };
        assert_eq!(total(&h, true) + total(&h, false), u64::from(n));
        save(&dir.0, &h, &Store::new(1), 0).unwrap();
        let back = load(&dir.0).unwrap().history;
        assert_eq!(back.attempts_total(), h.attempts_total());
    }

    #[test]
    fn nothing_saved_is_empty_history() {
        let dir = Dir::new("empty");
        let saved = load(&dir.0).unwrap();
        assert!(saved.path.is_none());
        assert_eq!(saved.history.healing().count(), 0);
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = Dir::new("corrupt");
        std::fs::create_dir_all(&dir.0).unwrap();
        let path = dir.0.join(HISTORY_FILE);
        std::fs::write(&path, "{\"version\": 1, \"healing\": [tru").unwrap();
        let err = load(&dir.0).unwrap_err();
        assert!(matches!(err, HistoryError::Corrupt { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("will not overwrite"), "{text}");

        std::fs::write(&path, "{\"version\": 7}").unwrap();
        let err = load(&dir.0).unwrap_err().to_string();
        assert!(err.contains("format version 7"), "{err}");
    }

    #[test]
    fn an_old_snapshot_is_read_when_there_is_no_history_file() {
        let dir = Dir::new("legacy");
        std::fs::create_dir_all(&dir.0).unwrap();
        let old = r#"{"host":"h","cycles":3,"series":[{"name":"m","labels":{"collector":"c"},
            "kind":"gauge","value":2.0,"timestamp_ms":20,"points":[[10,1.0],[20,2.0]]}],
            "alerts":[],"plugins":[],"healing":[{"strategy":"s","alert":"a","labels":{},
            "attempt":1,"success":true,"message":"ok","duration_ms":1,"started_ms":5}],
            "events":[{"source":"c","kind":"k","message":"m","labels":{},"timestamp_ms":6}]}"#;
        std::fs::write(dir.0.join(LEGACY_FILE), old).unwrap();
        let saved = load(&dir.0).unwrap();
        let mut store = Store::new(u64::MAX);
        let h = saved.restore_into(&mut store, 20);
        assert_eq!(h.healing().count(), 1);
        assert_eq!(
            h.attempts_total().values().sum::<u64>(),
            1,
            "counted from the records"
        );
        assert_eq!(h.events().count(), 1);
        let (k, s) = store.by_name("m").next().unwrap();
        assert_eq!(k.labels["collector"], "c");
        assert_eq!(s.source, "c");
        assert_eq!(s.points.len(), 2);

        // Once the new file exists, the old one is not read again.
        save(&dir.0, &History::default(), &Store::new(1), 30).unwrap();
        assert_eq!(load(&dir.0).unwrap().history.healing().count(), 0);
        assert!(dir.0.join(LEGACY_FILE).exists(), "left alone");
    }

    #[test]
    fn a_failed_save_names_the_file_and_the_step() {
        let dir = Dir::new("unwritable");
        std::fs::create_dir_all(&dir.0).unwrap();
        // A directory where the file should be: the rename fails.
        std::fs::create_dir_all(dir.0.join(HISTORY_FILE).join("x")).unwrap();
        let err = save(&dir.0, &History::default(), &Store::new(1), 0).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("cannot rename to `"), "{text}");
        assert!(text.contains(HISTORY_FILE), "{text}");
    }
}
