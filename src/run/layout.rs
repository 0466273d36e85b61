//! Where a run's files live in the lakehouse, and the run id.
//!
//! ```text
//! Files/fabric-remote/entrypoint-<sha>.py           the remote entry point (content-addressed)
//! Files/fabric-remote/wheelhouse/<key>/             wheels cached by the requirements' hash
//! Files/fabric-remote/projects/<name>/project/      the synced project
//! Files/fabric-remote/projects/<name>/runs/<id>/    one folder per run (inputs and results)
//! Files/fabric-remote/projects/<name>/runs/<id>/shard-<k>/   one per shard of a sharded run
//! ```
//!
//! Every run has its own folder, so two runs never touch each other's files. Nothing here
//! does I/O.

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::location::{LocationError, RemoteLocation};

/// The folder of `Files` that fabric-remote owns.
pub const BASE: &str = "fabric-remote";

/// Files in a run folder.
pub const RUN_JSON: &str = "run.json";
pub const NODEIDS: &str = "nodeids.txt";
pub const REQUIREMENTS: &str = "requirements-remote.txt";
pub const TEST_ENV_REMOTE: &str = "test.env.remote";
pub const REPORT_LOG: &str = "report-log.jsonl";
pub const CHUNKS: &str = "chunks";
pub const JUNIT: &str = "junit.xml";
pub const STATUS: &str = "status.json";

/// The remote entry point, as embedded in the binary.
pub const ENTRYPOINT: &str = include_str!("entrypoint.py");

/// The paths of one run, relative to the lakehouse's `Files` folder and as locations.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `Files` of the lakehouse.
    pub files: RemoteLocation,
    /// `fabric-remote/projects/<name>/project`
    pub project_rel: String,
    /// `fabric-remote/projects/<name>/runs/<id>`
    pub run_rel: String,
    /// `fabric-remote/entrypoint-<sha>.py`
    pub entrypoint_rel: String,
    pub wheelhouse_rel: String,
}

impl Layout {
    pub fn new(files: RemoteLocation, name: &str, run_id: &str) -> Self {
        let project_dir = format!("{BASE}/projects/{name}");
        Self {
            files,
            project_rel: format!("{project_dir}/project"),
            run_rel: format!("{project_dir}/runs/{run_id}"),
            entrypoint_rel: format!("{BASE}/entrypoint-{}.py", short_sha(ENTRYPOINT)),
            wheelhouse_rel: format!("{BASE}/wheelhouse"),
        }
    }

    /// Shard `k`'s layout: its own folder inside the run's.
    pub fn shard(&self, k: usize) -> Layout {
        Layout {
            run_rel: format!("{}/shard-{k}", self.run_rel),
            ..self.clone()
        }
    }

    pub fn project(&self) -> Result<RemoteLocation, LocationError> {
        self.files.join(&self.project_rel)
    }

    pub fn run_dir(&self) -> Result<RemoteLocation, LocationError> {
        self.files.join(&self.run_rel)
    }

    /// A file of the run folder (`name` may have `/`).
    pub fn run_file(&self, name: &str) -> Result<RemoteLocation, LocationError> {
        self.run_dir()?.join(name)
    }

    pub fn entrypoint(&self) -> Result<RemoteLocation, LocationError> {
        self.files.join(&self.entrypoint_rel)
    }
}

fn short_sha(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// A folder name made of the project's directory name: letters, digits, `.`, `_` and `-`
/// kept, anything else `-`; never empty, `.` or `..`.
pub fn folder_name(raw: &str) -> String {
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches('.').to_string();
    if name.is_empty() {
        "project".into()
    } else {
        name
    }
}

/// A run id: UTC time to the second and four hex digits, e.g. `20260519-142301-a3f9`
/// (sortable, unique enough for one person's runs, and safe in a command line).
pub fn run_id(now: SystemTime, salt: u64) -> String {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, mo, d) = crate::time::civil_from_days((secs / 86_400) as i64);
    let t = secs % 86_400;
    format!(
        "{y:04}{mo:02}{d:02}-{:02}{:02}{:02}-{:04x}",
        t / 3600,
        t % 3600 / 60,
        t % 60,
        salt & 0xffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn run_ids_sort_by_time() {
        let t = UNIX_EPOCH + Duration::from_secs(1_779_200_581);
        assert_eq!(run_id(t, 0xa3f9), "20260519-142301-a3f9");
        assert_eq!(run_id(UNIX_EPOCH, 0x1_0001), "19700101-000000-0001");
        assert_eq!(
            run_id(UNIX_EPOCH + Duration::from_secs(951_782_400), 0),
            "20000229-000000-0000"
        );
    }

    #[test]
    fn folder_names() {
        assert_eq!(folder_name("dbt-fabric"), "dbt-fabric");
        assert_eq!(folder_name("my project (2)"), "my-project--2-");
        assert_eq!(folder_name(".."), "project");
        assert_eq!(folder_name(""), "project");
        assert_eq!(folder_name("é"), "-");
    }

    #[test]
    fn paths() {
        let files = RemoteLocation::parse("http://127.0.0.1:1/ws/lh/Files").unwrap();
        let l = Layout::new(files, "proj", "20260519-142301-a3f9");
        assert_eq!(l.project_rel, "fabric-remote/projects/proj/project");
        assert_eq!(
            l.run_file("chunks/000001.jsonl").unwrap().path(),
            "lh/Files/fabric-remote/projects/proj/runs/20260519-142301-a3f9/chunks/000001.jsonl"
        );
        assert!(l.entrypoint_rel.starts_with("fabric-remote/entrypoint-"));
        assert_eq!(
            l.shard(2).run_file("status.json").unwrap().path(),
            "lh/Files/fabric-remote/projects/proj/runs/20260519-142301-a3f9/shard-2/status.json"
        );
    }
}
