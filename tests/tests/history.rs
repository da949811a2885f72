//! The host binary and its history in `data_dir`: an earlier host's `snapshot.json` is carried
//! over into `history.json`, and an unreadable history file stops the host instead of being
//! overwritten.

use std::process::{Command, Stdio};
use std::time::Duration;

use monitor_tests::{Scratch, binary, eventually, library, toml_path};

fn config(dir: &Scratch) -> std::path::PathBuf {
    let value = dir.write("value", "5");
    dir.write(
        "monitor.toml",
        &format!(
            "[host]\ninterval = \"1s\"\nlisten = \"off\"\ndata_dir = \"data\"\n\n\
             [[collector]]\nplugin = \"file\"\nlibrary = {}\n[collector.config]\npath = {}\n",
            toml_path(&library("monitor-test-plugins")),
            toml_path(&value),
        ),
    )
}

#[test]
fn an_earlier_snapshot_is_carried_over_into_the_history_file() {
    let dir = Scratch::new("history-upgrade");
    let config = config(&dir);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let old = r#"{"host":"h","cycles":1,"series":[],"alerts":[],"plugins":[],
        "healing":[{"strategy":"old-strategy","alert":"a","labels":{},"attempt":1,
        "success":true,"message":"restarted","duration_ms":1,"started_ms":5}],"events":[]}"#;
    std::fs::write(dir.join("data/snapshot.json"), old).unwrap();
    let mut child = Command::new(binary("monitor-host"))
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let saved = eventually(Duration::from_secs(30), || {
        std::fs::read_to_string(dir.join("data/history.json")).ok()
    });
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let saved: serde_json::Value =
        serde_json::from_str(&saved.expect("history.json written")).unwrap();
    assert_eq!(saved["version"], 1);
    assert_eq!(saved["healing"][0]["strategy"], "old-strategy");
    assert_eq!(saved["healing"][0]["message"], "restarted");
    let last: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("data/history.json")).unwrap())
            .unwrap();
    assert!(
        last["series"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "test.value"),
        "{last}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("data/snapshot.json")).unwrap(),
        old,
        "the earlier file is left as it was"
    );
}

#[test]
fn an_unreadable_history_file_stops_the_host_and_is_kept() {
    let dir = Scratch::new("history-corrupt");
    let config = config(&dir);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let path = dir.join("data/history.json");
    let broken = "{\"version\": 1, \"healing\": [{\"strategy\": ";
    std::fs::write(&path, broken).unwrap();
    let out = Command::new(binary("monitor-host"))
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("move it away"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        broken,
        "not overwritten"
    );
}
