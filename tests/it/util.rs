//! Shared helpers for the integration tests: the project's Python, the CLI binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
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

/// A `Command` for the `fabric-remote` binary under test. `FABRIC_REMOTE_TEST_BIN` points
/// the CLI tests at another build (to measure an older version with the same tests).
pub fn fabric_remote() -> Command {
    match std::env::var_os("FABRIC_REMOTE_TEST_BIN") {
        Some(bin) => Command::new(bin),
        None => Command::new(env!("CARGO_BIN_EXE_fabric-remote")),
    }
}

/// Lossy UTF-8 of a process output stream.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts exit 2 and a single `error:` sentence (plus optional `hint:` lines), no panic.
pub fn assert_usage_error(out: &Output) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
    let errors: Vec<_> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        stderr.lines().all(|l| l.starts_with("error:")
            || l.starts_with("hint:")
            || l.starts_with("  Caused by:")),
        "{stderr}"
    );
    stderr
}

/// Like [`assert_usage_error`], but `warning:` lines may come first (a scan's warnings).
pub fn assert_usage_error_after_warnings(out: &Output) -> String {
    let stderr = text(&out.stderr);
    let kept: String = stderr
        .lines()
        .filter(|l| !l.starts_with("warning:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut copy = out.clone();
    copy.stderr = kept.into_bytes();
    assert_usage_error(&copy);
    stderr
}

/// Asserts exit 0, showing both streams otherwise; returns stdout.
pub fn assert_success(out: &Output) -> String {
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    stdout
}

/// Sends `signal` (`"INT"`, `"TERM"`, …) to a child process, as a user's Ctrl-C or `kill` would.
pub fn send_signal(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} failed");
}
