//! Shared helpers for the workspace's end-to-end tests: building the plugin libraries and the host
//! binary once per test run, locating them, and scratch directories.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// Every package whose artefacts the tests load or run.
pub const PACKAGES: &[&str] = &[
    "monitor-host",
    "monitor-test-plugins",
    "monitor-test-plugin-mimalloc",
];

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned()
}

/// The target directory cargo uses for this test run.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_relative() {
                workspace_root().join(p)
            } else {
                p
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Builds [`PACKAGES`] (debug profile) once per test process: `cargo test` does not build cdylib
/// members, so the tests build what they load.
///
/// # Panics
///
/// When the build fails.
pub fn build() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let mut cmd = Command::new(env!("CARGO"));
            cmd.current_dir(workspace_root())
                .arg("build")
                .arg("--quiet");
            for p in PACKAGES {
                cmd.args(["-p", p]);
            }
            cmd.env("CARGO_TARGET_DIR", target_dir());
            let status = cmd.status().expect("cargo runs");
            assert!(status.success(), "building the plugin libraries failed");
            target_dir().join("debug")
        })
        .clone()
}

/// Path of the cdylib of `package`, building it first.
pub fn library(package: &str) -> PathBuf {
    build().join(format!("lib{}.so", package.replace('-', "_")))
}

/// Path of the binary `name`, building it first.
pub fn binary(name: &str) -> PathBuf {
    build().join(name)
}

/// A scratch directory removed on drop.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// A new empty directory under the target directory (`name` helps when debugging).
    pub fn new(name: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = target_dir().join("test-scratch").join(format!(
            "{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside it.
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }

    /// Writes a file inside it and returns its path.
    pub fn write(&self, p: &str, contents: &str) -> PathBuf {
        let path = self.join(p);
        std::fs::write(&path, contents).expect("write scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A TOML string literal for a path.
pub fn toml_path(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}
