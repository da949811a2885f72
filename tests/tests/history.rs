//! The host binary and its store in `data_dir`: restarts and `kill -9` lose nothing already
//! written and notify nothing twice, healing limits carry over, an earlier host's files are
//! imported once, and a damaged store or an unusable `data_dir` stops the host with an error
//! naming it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use monitor_host::history::{DATABASE_FILE, Database, Persistence, Saved};
use monitor_host::store::SeriesKey;
use monitor_plugin::Labels;
use monitor_tests::{RunningHost, Scratch, Tmpfs, binary, eventually, library, toml_path};

const DAY: Duration = Duration::from_secs(86_400);
const WAIT: Duration = Duration::from_secs(30);

/// A host every 200 ms: the `file` collector reads `value`, `hot` fires above 1, the `recorder`
/// notifier appends every notification to `notes`; `extra` is appended.
fn config(dir: &Scratch, extra: &str) -> PathBuf {
    let value = dir.write("value", "5");
    dir.write(
        "monitor.toml",
        &format!(
            "[host]\ninterval = \"200ms\"\nlisten = \"off\"\ndata_dir = \"data\"\n\n\
             [[collector]]\nplugin = \"file\"\nlibrary = {lib}\n[collector.config]\npath = {value}\n\n\
             [[alert]]\nname = \"hot\"\nmetric = \"test.value\"\ncondition = \"above\"\nthreshold = 1\n\n\
             [[notifier]]\nplugin = \"recorder\"\nlibrary = {lib}\n[notifier.config]\npath = {notes}\n\n\
             {extra}",
            lib = toml_path(&library("monitor-test-plugins")),
            value = toml_path(&value),
            notes = toml_path(&dir.join("notes")),
        ),
    )
}

/// The host on `config`; the tests wait on its store and its notes.
fn start(config: &Path) -> RunningHost {
    RunningHost::builder(config).start()
}

/// Every notification recorded, as JSON.
fn notes(dir: &Scratch) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("notes"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn count(notes: &[serde_json::Value], status: &str, alert: &str) -> usize {
    notes
        .iter()
        .filter(|n| n["status"] == status && n["alert"] == alert && n["escalation"] == false)
        .count()
}

fn value_key() -> SeriesKey {
    SeriesKey {
        name: "test.value".into(),
        labels: Labels::from([
            ("collector".to_owned(), "file".to_owned()),
            ("source".to_owned(), "file".to_owned()),
        ]),
    }
}

/// The points of `test.value` in the store (opened beside a running host, or after it).
fn stored_points(dir: &Scratch) -> Vec<(u64, f64)> {
    let db = Database::open(&dir.join("data"), DAY, DAY).unwrap();
    db.points(&value_key()).unwrap()
}

fn stored(dir: &Scratch) -> Saved {
    Persistence::open(
        &dir.join("data"),
        DAY,
        DAY,
        DAY,
        monitor_host::engine::now_ms(),
    )
    .unwrap()
    .1
}

/// Waits until the running host has written `n` more points than now.
fn wait_for_cycles(dir: &Scratch, n: usize) {
    let before = stored_points(dir).len();
    let grew = eventually(WAIT, || {
        (stored_points(dir).len() >= before + n).then_some(())
    });
    assert!(grew.is_some(), "the host stopped writing points");
}

#[test]
fn a_restart_during_a_firing_alert_does_not_notify_it_again_and_resolves_it_once() {
    let dir = Scratch::new("store-restart-firing");
    let config = config(&dir, "");
    let host = start(&config);
    let fired = eventually(WAIT, || {
        (count(&notes(&dir), "firing", "hot") == 1).then_some(())
    });
    assert!(fired.is_some(), "{:?}", notes(&dir));
    host.stop();

    let host = start(&config);
    wait_for_cycles(&dir, 5);
    assert_eq!(count(&notes(&dir), "firing", "hot"), 1, "{:?}", notes(&dir));
    dir.write("value", "0");
    let resolved = eventually(WAIT, || {
        (count(&notes(&dir), "resolved", "hot") == 1).then_some(())
    });
    assert!(resolved.is_some(), "{:?}", notes(&dir));
    wait_for_cycles(&dir, 5);
    host.stop();
    let n = notes(&dir);
    assert_eq!(
        (count(&n, "firing", "hot"), count(&n, "resolved", "hot")),
        (1, 1),
        "{n:?}"
    );
    let alerts = stored(&dir).alerts;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].state, monitor_host::alert::AlertState::Inactive);
}

#[test]
fn a_healing_give_up_survives_a_restart() {
    let dir = Scratch::new("store-give-up");
    let strategy = format!(
        "[[strategy]]\nplugin = \"fixer\"\nlibrary = {}\non = [\"hot\"]\nmax_attempts = 1\n\
         within = \"1h\"\ncooldown = \"0s\"\n[strategy.config]\nsucceed = false\n",
        toml_path(&library("monitor-test-plugins"))
    );
    let config = config(&dir, &strategy);
    let gave_up = |n: &[serde_json::Value]| {
        n.iter()
            .filter(|n| {
                n["description"]
                    .as_str()
                    .is_some_and(|d| d.contains("healing gave up"))
            })
            .count()
    };
    let host = start(&config);
    let escalated = eventually(WAIT, || (gave_up(&notes(&dir)) == 1).then_some(()));
    assert!(escalated.is_some(), "{:?}", notes(&dir));
    host.stop();
    let saved = stored(&dir);
    assert_eq!(saved.history.healing().count(), 1);
    assert!(saved.episodes[0].escalated);

    let host = start(&config);
    wait_for_cycles(&dir, 10);
    host.stop();
    let n = notes(&dir);
    assert_eq!(gave_up(&n), 1, "not given up again: {n:?}");
    assert_eq!(count(&n, "firing", "hot"), 1, "{n:?}");
    let saved = stored(&dir);
    assert_eq!(
        saved.history.healing().count(),
        1,
        "the limit carried over: no new attempt"
    );
    assert_eq!(saved.history.attempts_total().values().sum::<u64>(), 1);
}

/// A small xorshift: the kill moments are random but the same on every run.
struct Moments(u64);

impl Moments {
    fn next_ms(&mut self, from: u64, to: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        from + self.0 % (to - from)
    }
}

#[test]
fn kill_9_at_random_moments_loses_no_stored_point_and_notifies_once() {
    let dir = Scratch::new("store-kill-9");
    let config = config(&dir, "");
    // The firing notification goes out once before the kills start: the test then checks that
    // no restart sends it again, whatever moment each kill hits.
    let mut host = start(&config);
    let fired = eventually(WAIT, || {
        (count(&notes(&dir), "firing", "hot") == 1).then_some(())
    });
    assert!(fired.is_some(), "{:?}", notes(&dir));
    let mut moments = Moments(0x5eed_1e55_c0ff_ee00);
    let mut before: Vec<(u64, f64)> = Vec::new();
    // 50 kills 100 to 500 ms apart: about 20 s.
    for run in 1..=50 {
        std::thread::sleep(Duration::from_millis(moments.next_ms(100, 500)));
        if let Some(status) = host.child().try_wait().unwrap() {
            panic!(
                "the host ended by itself ({status}): {}",
                host.stderr().text()
            );
        }
        host.kill_9();
        let now = stored_points(&dir);
        assert!(
            now.starts_with(&before),
            "kill {run}: points stored before were lost ({} then, {} now)",
            before.len(),
            now.len()
        );
        before = now;
        host = start(&config);
    }
    wait_for_cycles(&dir, 3);
    host.stop();
    let n = notes(&dir);
    assert_eq!(count(&n, "firing", "hot"), 1, "{n:?}");
    assert_eq!(count(&n, "resolved", "hot"), 0, "{n:?}");
    assert!(stored_points(&dir).len() > before.len());
}

#[test]
fn an_earlier_snapshot_is_imported_into_the_store_and_kept() {
    let dir = Scratch::new("history-upgrade");
    let config = config(&dir, "");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    // An hour ago: within the store's retention.
    let started = monitor_host::engine::now_ms() - 3_600_000;
    let old = format!(
        r#"{{"host":"h","cycles":1,"series":[],"alerts":[],"plugins":[],
        "healing":[{{"strategy":"old-strategy","alert":"a","labels":{{}},"attempt":1,
        "success":true,"message":"restarted","duration_ms":1,"started_ms":{started}}}]}}"#
    );
    std::fs::write(dir.join("data/snapshot.json"), &old).unwrap();
    let host = start(&config);
    wait_for_cycles(&dir, 2);
    host.stop();
    let saved = stored(&dir);
    let heal = saved.history.healing().next().unwrap();
    assert_eq!(
        (heal.strategy.as_str(), heal.message.as_str()),
        ("old-strategy", "restarted")
    );
    assert!(saved.series.iter().any(|s| s.key == value_key()));
    assert_eq!(
        std::fs::read_to_string(dir.join("data/snapshot.json")).unwrap(),
        old,
        "the earlier file is left as it was"
    );
}

fn run_to_error(config: &Path) -> String {
    let out = Command::new(binary("monitor-host"))
        .args(["run", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_unreadable_history_file_stops_the_host_and_is_kept() {
    let dir = Scratch::new("history-corrupt");
    let config = config(&dir, "");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let path = dir.join("data/history.json");
    let broken = "{\"version\": 1, \"healing\": [{\"strategy\": ";
    std::fs::write(&path, broken).unwrap();
    let err = run_to_error(&config);
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("move it away"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        broken,
        "not overwritten"
    );
}

#[test]
fn a_damaged_store_stops_the_host_naming_it_and_is_kept() {
    let dir = Scratch::new("store-damaged");
    let config = config(&dir, "");
    // A real store, then damaged: its header overwritten.
    let host = start(&config);
    wait_for_cycles(&dir, 2);
    host.stop();
    let path = dir.join("data").join(DATABASE_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..16].copy_from_slice(b"not a database!\0");
    std::fs::write(&path, &bytes).unwrap();
    let err = run_to_error(&config);
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("move it away"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "not overwritten");
}

#[test]
fn a_file_where_data_dir_should_be_stops_the_host_naming_it() {
    let dir = Scratch::new("store-not-a-dir");
    let config = config(&dir, "");
    let data = dir.write("data", "a file, not a directory");
    let err = run_to_error(&config);
    assert!(err.contains(&data.display().to_string()), "{err}");
    assert!(err.contains("cannot create directory"), "{err}");
}

/// The value of an unlabelled metric in `/metrics`.
fn metric(port: u16, name: &str) -> Option<f64> {
    let (_, text) = monitor_tests::http_get(port, "/metrics")?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn a_full_disk_keeps_the_host_cycling_and_writing_resumes_when_space_returns() {
    let dir = Scratch::new("store-full-disk");
    let Some(_tmpfs) = Tmpfs::mount(&dir.join("data"), "size=2m") else {
        return;
    };
    let port = monitor_tests::free_port();
    let config = config(&dir, "");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(
        "listen = \"off\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    std::fs::write(&config, text).unwrap();
    let host = start(&config);
    wait_for_cycles(&dir, 3);

    // Fill the disk.
    let filler = dir.join("data/filler");
    let mut f = File::create(&filler).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    drop(f);
    let failing = eventually(WAIT, || {
        metric(port, "monitor_host_store_write_errors_total").filter(|&n| n > 0.0)
    });
    assert!(failing.is_some(), "writes fail on a full disk");
    let cycles = metric(port, "monitor_host_cycles_total").unwrap();
    let going = eventually(WAIT, || {
        metric(port, "monitor_host_cycles_total").filter(|&n| n >= cycles + 5.0)
    });
    assert!(going.is_some(), "cycles go on in memory");
    assert!(metric(port, "monitor_host_store_pending_cycles").unwrap() > 0.0);
    let full_since = monitor_host::engine::now_ms();

    std::fs::remove_file(&filler).unwrap();
    let resumed = eventually(WAIT, || {
        let last = metric(
            port,
            "monitor_host_store_last_write_success_timestamp_seconds",
        )?;
        let pending = metric(port, "monitor_host_store_pending_cycles")?;
        (last * 1000.0 > full_since as f64 && pending == 0.0).then_some(())
    });
    assert!(resumed.is_some(), "writing resumes when space returns");
    assert_eq!(
        metric(port, "monitor_host_store_dropped_cycles_total"),
        Some(0.0)
    );
    host.stop();
    // The store opens (and passes its check), and the cycles run while the disk was full were
    // written once space returned.
    let points = stored_points(&dir);
    let ts: Vec<u64> = points.iter().map(|p| p.0).collect();
    assert!(ts.iter().any(|&t| t < full_since), "{ts:?}");
    assert!(ts.iter().any(|&t| t >= full_since), "{ts:?}");
}

#[test]
fn a_read_only_data_dir_stops_the_host_naming_the_store() {
    let dir = Scratch::new("store-read-only");
    let Some(_tmpfs) = Tmpfs::mount(&dir.join("data"), "size=1m,ro") else {
        return;
    };
    let config = config(&dir, "");
    let err = run_to_error(&config);
    let path = dir.join("data").join(DATABASE_FILE);
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("writable directory"), "{err}");
}

#[test]
fn a_recovery_after_a_successful_attempt_marks_it_verified() {
    let dir = Scratch::new("store-verified");
    let strategy = format!(
        "[[strategy]]\nplugin = \"fixer\"\nlibrary = {}\non = [\"hot\"]\n\
         [strategy.config]\npath = {}\nvalue = 0\n",
        toml_path(&library("monitor-test-plugins")),
        toml_path(&dir.join("value")),
    );
    let config = config(&dir, &strategy);
    let host = start(&config);
    let resolved = eventually(WAIT, || {
        (count(&notes(&dir), "resolved", "hot") == 1).then_some(())
    });
    assert!(resolved.is_some(), "{:?}", notes(&dir));
    host.stop();
    let db = Database::open(&dir.join("data"), DAY, DAY).unwrap();
    let attempts = db.attempts(10).unwrap();
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert!(attempts[0].0.success);
    assert_eq!(attempts[0].1, Some(true), "verified by the resolution");
}
