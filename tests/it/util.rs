//! Shared helpers for the integration tests: the project's Python, the CLI binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Python interpreter of the repository's `.venv` (pytest and uv installed), made by
/// `scripts/bootstrap` on first use.
pub fn python() -> PathBuf {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY
        .get_or_init(|| {
            let status = Command::new(root().join("scripts/bootstrap"))
                .status()
                .expect("run scripts/bootstrap");
            assert!(status.success(), "scripts/bootstrap failed");
            root().join(".venv/bin/python")
        })
        .clone()
}

/// A `Command` for the `fabric-remote` binary under test.
pub fn fabric_remote() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fabric-remote"))
}
