//! A JSON export that runs out of space (here: a file-size limit set on a
//! child process, which fails writes the way a full disk does) reports the
//! file it could not write and leaves the previous export whole.
#![cfg(unix)]

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const CHILD: &str = "MONITOR_FULL_DISK_EXPORT_TO";

/// Run in the child: export a snapshot far larger than the size limit.
#[test]
fn export_child() {
    let Some(path) = std::env::var_os(CHILD) else {
        return;
    };
    let reg = monitor_core::Registry::new();
    for i in 0..200 {
        reg.record(
            &format!("operation.number.{i}"),
            Duration::from_micros(i),
            true,
        );
    }
    let err = reg
        .export_json(Path::new(&path))
        .expect_err("the write must fail");
    // The parent checks this line.
    println!("EXPORT ERROR: {err}");
}

#[test]
fn a_full_disk_fails_the_export_and_keeps_the_previous_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.json");
    std::fs::write(&path, b"{\"previous\": true}").unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args(["--exact", "export_child", "--nocapture", "--test-threads=1"])
        .env(CHILD, &path);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        child.pre_exec(|| {
            // Writes past 1 KiB fail with EFBIG instead of killing the process.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 1024,
                rlim_max: 1024,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = child.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("EXPORT ERROR: ").map(|(_, e)| e))
        .unwrap_or_else(|| panic!("the child reports nothing: {stdout}"));
    assert!(
        line.contains("cannot write") && line.contains("perf.json"),
        "{line}"
    );

    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"{\"previous\": true}",
        "the old export is whole"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
}
