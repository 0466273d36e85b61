//! A client of the Fabric REST API for what fabric-remote needs: workspaces and lakehouses
//! by name, Spark job definitions (SJDs) found-or-created and pointed at a Python file, runs
//! submitted, polled, cancelled, and their driver logs.
//!
//! Built on the shared [`HttpClient`](crate::http::HttpClient) (token scope
//! [`FABRIC_SCOPE`](crate::auth::FABRIC_SCOPE), one retry policy). On top of it this module
//! handles what is particular to Fabric: pagination (`continuationUri`/`continuationToken`,
//! guarded against repeats), long-running operations (`lro`: 202 + `x-ms-operation-id`),
//! job instances (`jobs`: 202 + `Location`, which are *not* operations), and lenient parsing
//! of what the service really sends (`model`). Nothing here prints; waits are reported
//! through [`JobReporter`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use fabric_remote::auth::Credentials;
//! use fabric_remote::fabric::{FabricClient, SparkJobDefinitionV1};
//! use fabric_remote::http::{HttpClient, RetryPolicy};
//! use fabric_remote::secret::Secret;
//! let http = HttpClient::new(Credentials::from_token(Secret::new("t")), RetryPolicy::default())?;
//! let fabric = FabricClient::new(http).with_endpoint("http://127.0.0.1:7000")?;
//! let ws = fabric.resolve_workspace("My Workspace").await?;
//! let lake = fabric.resolve_lakehouse(&ws, "lake").await?;
//! let file = format!("abfss://{}@onelake.dfs.fabric.microsoft.com/{}/Files/main.py", ws.id, lake.id);
//! let sjd = fabric.ensure_sjd(&ws, "runner", &SparkJobDefinitionV1::python(&file, &lake.id, None)).await?;
//! let run = fabric.run_sjd(&ws, &sjd.sjd, None).await?;
//! let outcome = fabric.wait_for_job(&run, None, &mut ()).await?;
//! assert!(outcome.state.is_success());
//! # Ok(()) }
//! ```

mod client;
mod error;
mod items;
mod jobs;
mod lro;
mod model;
mod sjd;

pub use client::{DEFAULT_ENDPOINT, FabricClient, PollSettings};
pub use error::FabricError;
pub use jobs::{
    CancelOutcome, JobOutcome, JobPoll, JobRef, JobReporter, JobSubmission, LogKind, PollRecord,
    job_id_from_location,
};
pub use model::{
    Definition, DefinitionPart, ErrorDetail, ExecutionData, Item, ItemReference, JobInstance,
    JobStatus, LivySession, SJD_FORMAT_V1, SJD_PART, SparkJobDefinitionV1, TerminalState,
    Workspace, base64_decode, base64_encode, is_guid, parse_timestamp,
};
pub use sjd::{EnsuredSjd, SjdAction};

/// The portal page of an SJD (its Runs tab lists the runs).
pub fn portal_url(workspace_id: &str, sjd_id: &str) -> String {
    format!(
        "https://app.fabric.microsoft.com/groups/{workspace_id}/sparkjobdefinitions/{sjd_id}?experience=fabric-developer"
    )
}

/// Checks an item display name before anything is sent or uploaded: the service refuses an
/// empty name, one over 256 characters, or one with `/`, `\\` or control characters.
pub fn check_item_name(kind: &'static str, name: &str) -> Result<(), FabricError> {
    let why = if name.trim().is_empty() {
        Some("it is empty")
    } else if name.chars().count() > 256 {
        Some("it is longer than 256 characters")
    } else if name.contains(['/', '\\']) || name.chars().any(char::is_control) {
        Some("it contains `/`, `\\` or a control character")
    } else {
        None
    };
    match why {
        Some(why) => Err(FabricError::InvalidName {
            kind,
            name: name.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

/// The `abfss://` URL of a lakehouse path, GUID form (names with spaces are not allowed in
/// abfs URIs). `path` is relative to the lakehouse, e.g. `Files/fabric-remote/jobs/x.py`.
pub fn abfss_url(workspace_id: &str, lakehouse_id: &str, path: &str) -> String {
    format!(
        "abfss://{workspace_id}@{}/{lakehouse_id}/{}",
        crate::location::ONELAKE_DFS_HOST,
        path.trim_start_matches('/')
    )
}
