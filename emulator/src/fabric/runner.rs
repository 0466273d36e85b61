//! A job run as a local process: `{python} {executableFile} {commandLineArguments…}`.
//!
//! - `executableFile` is an `abfss://{workspace name or id}@{any host}/{item}/{path}` URL
//!   resolved against the emulator's own storage whatever the host, where the item is a
//!   lakehouse (`name.Lakehouse` or id) or an SJD (`name.SparkJobDefinition` or id, whose
//!   `Main/`/`Libs/` come from a V2 definition); a V2 bare name (`main.py`) means the
//!   SJD's own `Main/main.py`. Workspace names with a raw space are refused, as abfs
//!   URIs cannot carry them (reference §9); percent-encoded names are accepted
//!   (UNCONFIRMED).
//! - The default lakehouse (run override, else `defaultLakehouseArtifactId`) stands in
//!   for `/lakehouse/default`: its root (the folder holding `Files/`) is passed in
//!   `FABRIC_EMULATOR_LAKEHOUSE_ROOT`. A run without one fails, as the docs say the
//!   default lakehouse must be set. Also set: `FABRIC_EMULATOR_WORKSPACE_ID`,
//!   `FABRIC_EMULATOR_LAKEHOUSE_ID`, `FABRIC_EMULATOR_ITEM_ID`,
//!   `FABRIC_EMULATOR_JOB_INSTANCE_ID`, `PYTHONUNBUFFERED=1`.
//! - Arguments are split on whitespace (reference §10; quoting is UNCONFIRMED).
//! - The process runs in a scratch directory, in its own process group (cancel kills the
//!   group), with stdout/stderr captured to the Livy session's driver log files. Exit 0 →
//!   `Completed`, otherwise `Failed` with the last stderr line (a Python exception's
//!   `ValueError: boom`) in `failureReason.message`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use percent_encoding::percent_decode_str;
use serde_json::Value;

use super::definition;
use super::items::{self, Sjd};
use crate::lock::lock;
use crate::state::State;

/// Per-run overrides from `{"executionData": {...}}`.
#[derive(Debug, Default)]
pub(crate) struct Overrides {
    pub executable_file: Option<String>,
    pub command_line_arguments: Option<String>,
    /// `(workspaceId, itemId)` of `defaultLakehouseId`.
    pub default_lakehouse: Option<(String, String)>,
}

/// Where a run writes its driver logs.
pub(crate) struct Logs<'a> {
    pub stdout: &'a std::path::Path,
    pub stderr: &'a std::path::Path,
}

/// How a driver process ended.
pub(crate) enum Exit {
    Success,
    /// The reason shown in `failureReason.message`.
    Failure(String),
}

pub(crate) struct Plan {
    script: PathBuf,
    args: Vec<String>,
    lakehouse_root: PathBuf,
    lakehouse_id: String,
    item_id: String,
    job_id: String,
    work: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// Works out what to run, or why the run fails.
pub(crate) fn plan(
    state: &State,
    sjd: &Sjd,
    o: &Overrides,
    job_id: &str,
    logs: Logs<'_>,
) -> Result<Plan, String> {
    let config = definition::config(&sjd.parts);
    let text = |k: &str| {
        config
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned)
    };
    let exe = o
        .executable_file
        .clone()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| text("executableFile"))
        .ok_or_else(|| {
            "The Spark Job Definition has no executable file: set executableFile in its definition or in executionData.".to_owned()
        })?;
    let script = resolve_executable(state, sjd, &exe)?;
    if !script.is_file() {
        return Err(format!("The executable file {exe} does not exist."));
    }
    let lakehouse_id = match &o.default_lakehouse {
        Some((ws, item)) => {
            if !ws.eq_ignore_ascii_case(&state.workspace_id) {
                return Err(format!(
                    "The default lakehouse's workspace {ws} was not found."
                ));
            }
            item.clone()
        }
        None => text("defaultLakehouseArtifactId").ok_or_else(|| {
            "The Spark Job Definition has no default lakehouse: set defaultLakehouseArtifactId (or executionData.defaultLakehouseId).".to_owned()
        })?,
    };
    let lh = state
        .lakehouses
        .iter()
        .find(|l| l.id.eq_ignore_ascii_case(&lakehouse_id))
        .ok_or_else(|| format!("The default lakehouse {lakehouse_id} was not found."))?;
    let args_text = o
        .command_line_arguments
        .clone()
        .or_else(|| text("commandLineArguments"))
        .unwrap_or_default();
    let dir = logs
        .stdout
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| state.fabric.dir.clone());
    Ok(Plan {
        script,
        args: args_text.split_whitespace().map(str::to_owned).collect(),
        lakehouse_root: lh.root.clone(),
        lakehouse_id: lh.id.clone(),
        item_id: sjd.id.clone(),
        job_id: job_id.to_owned(),
        work: dir.join("work"),
        stdout: logs.stdout.to_owned(),
        stderr: logs.stderr.to_owned(),
    })
}

fn resolve_executable(state: &State, sjd: &Sjd, url: &str) -> Result<PathBuf, String> {
    let bad = |why: &str| format!("The executable file {url} is not valid: {why}.");
    let Some((scheme, rest)) = url.split_once("://") else {
        // V2: a bare name of a Main/ part.
        if url.contains('/') || url == "." || url == ".." {
            return Err(bad("expected an abfss:// URL"));
        }
        return Ok(items::item_dir(&state.fabric.dir, &sjd.id)
            .join("Main")
            .join(url));
    };
    if !scheme.eq_ignore_ascii_case("abfss") && !scheme.eq_ignore_ascii_case("abfs") {
        return Err(bad("expected an abfss:// URL"));
    }
    let (authority, path) = rest.split_once('/').ok_or_else(|| bad("no path"))?;
    let (ws, _host) = authority
        .split_once('@')
        .ok_or_else(|| bad("expected abfss://<workspace>@<host>/..."))?;
    if ws.contains(' ') {
        return Err(bad(
            "abfs URIs cannot contain spaces in the workspace name; use the workspace id",
        ));
    }
    let ws = percent_decode_str(ws).decode_utf8_lossy();
    if !state.resolve_workspace(&ws) {
        return Err(format!("The workspace '{ws}' of {url} was not found."));
    }
    let mut segs = Vec::new();
    for seg in path.split('/') {
        let seg = percent_decode_str(seg).decode_utf8_lossy().into_owned();
        if seg.is_empty() || seg == "." || seg == ".." || seg.contains('\0') {
            return Err(bad("empty, `.` or `..` path segment"));
        }
        segs.push(seg);
    }
    let (item, rest) = segs.split_first().ok_or_else(|| bad("no item"))?;
    if rest.is_empty() {
        return Err(bad("no file path below the item"));
    }
    let root = if let Some(i) = state.resolve_item(item) {
        state.lakehouses[i].root.clone()
    } else {
        let sjds = lock(&state.fabric.sjds);
        let target = sjds
            .iter()
            .filter(|s| !s.pending)
            .find(|s| {
                s.id.eq_ignore_ascii_case(item)
                    || item
                        .strip_suffix(".SparkJobDefinition")
                        .is_some_and(|n| n == s.display_name)
            })
            .ok_or_else(|| format!("The item '{item}' of {url} was not found."))?;
        items::item_dir(&state.fabric.dir, &target.id)
    };
    Ok(rest.iter().fold(root, |p, s| p.join(s)))
}

/// Starts the driver in its own process group; returns the child and its pid (= the
/// group id).
pub(crate) fn spawn(
    python: &Path,
    plan: &Plan,
    workspace_id: &str,
) -> Result<(tokio::process::Child, i32), String> {
    let io = |e: std::io::Error| format!("The driver could not be started: {e}");
    std::fs::create_dir_all(&plan.work).map_err(io)?;
    let stdout = std::fs::File::create(&plan.stdout).map_err(io)?;
    let stderr = std::fs::File::create(&plan.stderr).map_err(io)?;
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(&plan.script)
        .args(&plan.args)
        .current_dir(&plan.work)
        .env("FABRIC_EMULATOR_LAKEHOUSE_ROOT", &plan.lakehouse_root)
        .env("FABRIC_EMULATOR_LAKEHOUSE_ID", &plan.lakehouse_id)
        .env("FABRIC_EMULATOR_WORKSPACE_ID", workspace_id)
        .env("FABRIC_EMULATOR_ITEM_ID", &plan.item_id)
        .env("FABRIC_EMULATOR_JOB_INSTANCE_ID", &plan.job_id)
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .process_group(0)
        .kill_on_drop(false);
    let child = cmd.spawn().map_err(|e| {
        format!(
            "The driver could not be started ({}): {e}",
            python.display()
        )
    })?;
    let pid = child
        .id()
        .map(|p| p as i32)
        .ok_or_else(|| "The driver exited at once.".to_owned())?;
    Ok((child, pid))
}

/// Waits for the driver, then kills what it left behind in its group. A failure carries
/// the last stderr line (a Python exception's `ValueError: boom`).
pub(crate) async fn wait(mut child: tokio::process::Child, pid: i32, stderr: &Path) -> Exit {
    let status = child.wait().await;
    kill_group(pid);
    match status {
        Ok(s) if s.success() => Exit::Success,
        Ok(s) => {
            let how = match s.code() {
                Some(c) => format!("the driver exited with code {c}"),
                None => "the driver was killed by a signal".to_owned(),
            };
            Exit::Failure(match last_line(stderr).await {
                Some(t) => format!("{t} ({how})"),
                None => format!("Job failed: {how}."),
            })
        }
        Err(e) => Exit::Failure(format!("Job failed: {e}")),
    }
}

/// The last non-empty line of a (possibly large) log file.
async fn last_line(path: &std::path::Path) -> Option<String> {
    let data = tokio::fs::read(path).await.ok()?;
    let tail = &data[data.len().saturating_sub(64 * 1024)..];
    String::from_utf8_lossy(tail)
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

/// SIGKILL to the process group `pgid` (errors ignored: it may be gone already).
pub(crate) fn kill_group(pgid: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}
