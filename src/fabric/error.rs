//! [`FabricError`]: a Fabric REST operation that failed, said in one sentence that names what
//! was not found or not allowed, with a hint that says how to see what exists.

use std::time::Duration;

use crate::diagnostic::{Diagnostic, Kind};
use crate::http::{HttpError, StatusError};

#[derive(Debug, thiserror::Error)]
pub enum FabricError {
    #[error("workspace `{name}` was not found (or you have no role in it)")]
    WorkspaceNotFound {
        name: String,
        available: Vec<String>,
    },
    #[error("lakehouse `{name}` was not found in workspace `{workspace}`")]
    LakehouseNotFound {
        workspace: String,
        name: String,
        available: Vec<String>,
    },
    #[error("Spark job definition `{name}` was not found in workspace `{workspace}`")]
    SjdNotFound {
        workspace: String,
        name: String,
        available: Vec<String>,
    },
    #[error("job instance {job} of `{item}` was not found")]
    JobNotFound { item: String, job: String },
    /// A 403. The source is the bare status (not an [`HttpError`]) so that only this
    /// error's hint, which knows the operation, is shown.
    #[error("not allowed to {what}: this needs {permission}")]
    Forbidden {
        what: String,
        permission: &'static str,
        #[source]
        source: Box<StatusError>,
    },
    #[error(
        "workspace `{workspace}` has no active Fabric capacity, so Spark job definitions cannot be created or run in it"
    )]
    NoCapacity {
        workspace: String,
        #[source]
        source: Option<HttpError>,
    },
    #[error(
        "the name `{name}` still belongs to a recently deleted item in workspace `{workspace}`"
    )]
    NameNotAvailableYet {
        workspace: String,
        name: String,
        #[source]
        source: Box<StatusError>,
    },
    #[error("could not {what}")]
    Http {
        what: String,
        #[source]
        source: HttpError,
    },
    #[error("{what} failed on the service: {message}")]
    OperationFailed {
        what: String,
        code: Option<String>,
        message: String,
    },
    #[error("{what} was still running on the service after {}", secs(*waited))]
    OperationTimeout { what: String, waited: Duration },
    #[error("job instance {job} had not finished after {}", secs(*waited))]
    JobTimeout { job: String, waited: Duration },
    #[error("the service's answer to {what} is not what the Fabric API documents: {message}")]
    BadResponse { what: String, message: String },
    #[error(
        "the service sent the same continuation twice while listing {what}; stopping instead of looping"
    )]
    RepeatedContinuation { what: String },
    #[error("`{0}` is not a usable Fabric API endpoint: expected http(s)://host[:port]")]
    BadEndpoint(String),
    /// Refused before any request: the service would answer with a bare 400.
    #[error("{kind} name `{name}` is not valid: {why}")]
    InvalidName {
        kind: &'static str,
        name: String,
        why: &'static str,
    },
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

fn list(names: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut shown: Vec<String> = names.iter().take(SHOWN).map(|n| format!("`{n}`")).collect();
    if names.len() > SHOWN {
        shown.push(format!("and {} more", names.len() - SHOWN));
    }
    shown.join(", ")
}

impl FabricError {
    /// The HTTP error underneath, if any.
    pub fn http(&self) -> Option<&HttpError> {
        match self {
            FabricError::Http { source, .. } => Some(source),
            FabricError::NoCapacity { source, .. } => source.as_ref(),
            _ => None,
        }
    }

    /// True for failures worth another try later (throttling, 5xx, a broken connection).
    /// The service's error code, when it sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            FabricError::Forbidden { source, .. }
            | FabricError::NameNotAvailableYet { source, .. } => source.code.as_deref(),
            FabricError::OperationFailed { code, .. } => code.as_deref(),
            other => other.http().and_then(HttpError::code),
        }
    }

    pub fn is_transient(&self) -> bool {
        match self.http() {
            Some(HttpError::Transport { .. }) => true,
            Some(e) => e
                .status()
                .is_some_and(|s| matches!(s, 408 | 429 | 430 | 500 | 502 | 503 | 504)),
            None => false,
        }
    }
}

impl Diagnostic for FabricError {
    fn kind(&self) -> Kind {
        match self {
            FabricError::Http { source, .. } => source.kind(),
            FabricError::WorkspaceNotFound { .. }
            | FabricError::LakehouseNotFound { .. }
            | FabricError::SjdNotFound { .. }
            | FabricError::JobNotFound { .. }
            | FabricError::Forbidden { .. }
            | FabricError::NoCapacity { .. }
            | FabricError::InvalidName { .. }
            | FabricError::BadEndpoint(_) => Kind::Usage,
            _ => Kind::Failed,
        }
    }

    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        match self {
            FabricError::Http { source, .. } => Some(source),
            _ => None,
        }
    }

    /// What the user can do about it.
    fn hint(&self) -> Option<String> {
        match self {
            FabricError::WorkspaceNotFound { available, .. } => Some(if available.is_empty() {
                "your identity sees no workspaces; check that it has a role in the workspace (and, for a service principal, that \"Service principals can use Fabric APIs\" is enabled)".into()
            } else {
                format!(
                    "workspaces you can see: {}; pass --workspace or set FABRIC_TEST_WORKSPACE_NAME (exact, case-sensitive) or FABRIC_TEST_WORKSPACE_ID",
                    list(available)
                )
            }),
            FabricError::LakehouseNotFound { available, .. } => Some(if available.is_empty() {
                "the workspace has no lakehouses; create one in the Fabric portal".into()
            } else {
                format!(
                    "lakehouses in the workspace: {}; pass --lakehouse or set FABRIC_TEST_LAKEHOUSE_NAME",
                    list(available)
                )
            }),
            FabricError::SjdNotFound { available, .. } => {
                let create = "`fabric-remote job run --sjd NAME --file main.py` creates one";
                Some(if available.is_empty() {
                    format!("the workspace has no Spark job definitions; {create}")
                } else {
                    format!(
                        "Spark job definitions in the workspace (`fabric-remote job list`): {}; {create}",
                        list(available)
                    )
                })
            }
            FabricError::JobNotFound { .. } => Some(
                "check the job instance id and --sjd; the service keeps only about the 100 most recent finished runs".into(),
            ),
            FabricError::Forbidden { .. } => Some(
                "ask a workspace admin for that role; a service principal also needs the tenant setting \"Service principals can use Fabric APIs\"".into(),
            ),
            FabricError::NoCapacity { .. } => Some(
                "assign the workspace to a Fabric or trial capacity (workspace settings > License info), or resume the paused capacity in the Azure portal".into(),
            ),
            FabricError::NameNotAvailableYet { .. } => Some(
                "wait a few minutes for the deleted item's name to be released, or pick another name".into(),
            ),
            FabricError::Http { source, .. } => source.hint(),
            FabricError::JobTimeout { job, .. } => Some(format!(
                "the job may still be running; `fabric-remote job cancel {job} --sjd NAME` stops it"
            )),
            FabricError::InvalidName { .. } => Some(
                "pass another --sjd or set FABRIC_TEST_SPARK_JOB_NAME (default: dbt-fabric-tests)".into(),
            ),
            FabricError::OperationTimeout { .. } => Some(
                "the service is slow to finish; check the item in the Fabric portal and try again".into(),
            ),
            _ => None,
        }
    }
}
