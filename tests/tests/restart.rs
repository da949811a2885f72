//! Starting the host binary on an existing store: after a clean stop the start checks the store
//! cheaply; after `kill -9` it checks the whole file, and refuses one damaged while the host was
//! stopped, naming it and leaving it as it was.

use std::path::{Path, PathBuf};
use std::time::Duration;

use monitor_host::history::{DATABASE_FILE, Database, Persistence, Reader};
use monitor_host::store::SeriesKey;
use monitor_plugin::{Labels, SampleKind};
use monitor_tests::{RunningHost, Scratch, eventually, library, toml_path};

const DAY: Duration = Duration::from_secs(86_400);
const WAIT: Duration = Duration::from_secs(30);
const FULL_CHECK: &str = "did not stop cleanly; checking the whole store";

/// A host every 200 ms with one `file` collector, its store in `data`.
fn config(dir: &Scratch) -> PathBuf {
    let value = dir.write("value", "5");
    dir.write(
        "monitor.toml",
        &format!(
            "[host]\ninterval = \"200ms\"\nlisten = \"off\"\ndata_dir = \"data\"\n\n\
             [[collector]]\nplugin = \"file\"\nlibrary = {lib}\n[collector.config]\npath = {value}\n",
            lib = toml_path(&library("monitor-test-plugins")),
            value = toml_path(&value),
        ),
    )
}

/// The host on `config`; it does not listen, so the test waits on the store.
fn start(config: &Path) -> RunningHost {
    RunningHost::builder(config).start()
}

/// Points stored so far, read beside the running host without writing.
fn points_stored(dir: &Scratch) -> usize {
    let Ok(Some(reader)) = Reader::open(&dir.join("data").join(DATABASE_FILE)) else {
        return 0;
    };
    let series = reader.series().unwrap_or_default();
    series
        .iter()
        .map(|s| reader.points(s.id, 0, i64::MAX).map_or(0, |p| p.len()))
        .sum()
}

/// Waits until the running host has written `n` more points than now.
fn wait_for_cycles(dir: &Scratch, n: usize) {
    let before = points_stored(dir);
    let grew = eventually(WAIT, || (points_stored(dir) >= before + n).then_some(()));
    assert!(grew.is_some(), "the host stopped writing points");
}

#[test]
fn only_a_start_after_kill_9_checks_the_whole_store() {
    let dir = Scratch::new("restart-check");
    let config = config(&dir);
    let host = start(&config);
    wait_for_cycles(&dir, 3);
    host.stop();

    let host = start(&config);
    wait_for_cycles(&dir, 3);
    let log = host.stderr().clone();
    host.kill_9();
    let log = log.text();
    assert!(!log.contains(FULL_CHECK), "after a clean stop: {log}");

    let host = start(&config);
    wait_for_cycles(&dir, 3);
    let log = host.stderr().clone();
    host.stop();
    let log = log.text();
    assert!(log.contains(FULL_CHECK), "after kill -9: {log}");
    assert!(log.contains(DATABASE_FILE), "{log}");
}

/// Fills the store with points two hours old, more than the start reads back, and closes it
/// cleanly.
fn fill(dir: &Scratch) {
    let now = monitor_host::engine::now_ms();
    let old = now - 2 * 3_600_000;
    let (mut p, _) = Persistence::open(&dir.join("data"), DAY, DAY, DAY, now).unwrap();
    for i in 0..5 {
        let key = SeriesKey {
            name: format!("old.metric_{i}"),
            labels: Labels::new(),
        };
        for t in 0..4000 {
            p.batch().point(
                &key,
                SampleKind::Gauge,
                "old",
                old - 4_000_000 + t * 1000,
                1.0,
            );
        }
    }
    p.commit(now);
}

/// Overwrites the page in the middle of the store with garbage, as a disk fault would.
fn damage_middle_page(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    // The header: the page size at offset 16 (1 means 65536), the page count at 28.
    let size = match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65_536,
        n => usize::from(n),
    };
    let pages = u32::from_be_bytes(bytes[28..32].try_into().unwrap()) as usize;
    assert!(pages > 10, "{pages} pages");
    let at = (pages / 2) * size;
    bytes[at..at + size].fill(0xa5);
    std::fs::write(path, &bytes).unwrap();
    bytes
}

#[test]
fn a_store_damaged_while_stopped_after_kill_9_is_refused_naming_it_and_kept() {
    let dir = Scratch::new("restart-damaged");
    let config = config(&dir);
    fill(&dir);
    let host = start(&config);
    wait_for_cycles(&dir, 3);
    host.kill_9();
    // Open and closed once without a host (no clean stop recorded): the log is folded into the
    // file, so the damage below is not hidden by a newer copy of the page in it.
    drop(Database::open(&dir.join("data"), DAY, DAY).unwrap());
    let path = dir.join("data").join(DATABASE_FILE);
    // No free pages (those of the tail rows deleted once their points were in blocks): the page
    // damaged below is one in use.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("VACUUM").unwrap();
    drop(conn);
    let bytes = damage_middle_page(&path);

    let mut host = start(&config);
    let status = host.wait_exit(WAIT);
    let err = host.stderr().text();
    drop(host);
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("move it away"), "{err}");
    assert!(std::fs::read(&path).unwrap() == bytes, "not overwritten");
}
