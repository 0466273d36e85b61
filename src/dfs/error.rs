//! [`DfsError`]: a DFS operation that failed, naming the operation and the remote path, and
//! [`Missing`]: which part of a remote location does not exist (the workspace, the item, a
//! folder), as [`DfsClient::explain_missing`](super::DfsClient::explain_missing) finds out.

use std::path::PathBuf;

use crate::diagnostic::{Diagnostic, Kind};
use crate::http::HttpError;
use crate::location::RemoteLocation;

#[derive(Debug, thiserror::Error)]
pub enum DfsError {
    /// The service refused or could not be reached.
    #[error("could not {op} {location}")]
    Http {
        op: &'static str,
        location: String,
        #[source]
        source: HttpError,
    },
    /// A location (or the workspace, or the item it is in) does not exist.
    #[error("{0}")]
    NotFound(Missing),
    /// OneLake's item folder, `Files` and `Tables` (and a filesystem root) are never targets.
    #[error("{0} is a protected folder; point at a folder below Files/ (or Tables/) instead")]
    Protected(String),
    #[error("the service kept sending continuation tokens for {0}; stopping instead of looping")]
    RepeatedContinuation(String),
    #[error("the listing of {location} is malformed: {message}")]
    BadListing { location: String, message: String },
    #[error("{0} changed on the service while it was being read; run again")]
    ChangedDuringRead(String),
    #[error("could not {op} {location}: the connection kept breaking ({message})")]
    Interrupted {
        op: &'static str,
        location: String,
        message: String,
    },
    #[error("cannot read local file `{}`", path.display())]
    Local {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(std::io::Error),
}

/// Which part of a remote location is not there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Missing {
    /// A listing answered 404 for this location; which part is missing is not known yet
    /// ([`DfsClient::explain_missing`](super::DfsClient::explain_missing) finds out).
    #[error("`{0}` does not exist")]
    Path(String),
    /// The OneLake workspace (or ADLS container) does not exist, or is not visible to us.
    #[error("workspace `{workspace}` does not exist at {endpoint} (or you have no access to it)")]
    Workspace { endpoint: String, workspace: String },
    /// The item (lakehouse) folder does not exist in the workspace.
    #[error("`{item}` does not exist in workspace `{workspace}`")]
    Item { workspace: String, item: String },
    /// A folder below the item (or container) does not exist.
    #[error("`{path}` does not exist in `{parent}`")]
    Folder {
        /// The missing path, relative to `parent` (`Files/no-such-dir`).
        path: String,
        /// The item (OneLake) or container (ADLS) it was looked for in.
        parent: String,
        /// The spelling the service has for the first missing segment, when only its case
        /// differs (`Files` for `files`).
        case_of: Option<String>,
    },
}

impl DfsError {
    pub(crate) fn op(op: &'static str, loc: &RemoteLocation, source: HttpError) -> Self {
        DfsError::Http {
            op,
            location: loc.to_string(),
            source,
        }
    }

    /// The HTTP error underneath, if any.
    pub fn http(&self) -> Option<&HttpError> {
        match self {
            DfsError::Http { source, .. } => Some(source),
            _ => None,
        }
    }

    /// True when the error means the sync root itself cannot be written or read at all
    /// (a missing workspace or item, a rejected token, nothing listening): trying the other
    /// files would only repeat it. A 403 is not: access can differ from folder to folder.
    pub fn is_fatal_for_root(&self) -> bool {
        match self {
            DfsError::NotFound(_) | DfsError::Protected(_) => true,
            DfsError::Http { source, .. } => match source {
                HttpError::Auth(_) | HttpError::Setup(_) => true,
                HttpError::Status(s) => matches!(s.status, 401 | 404),
                HttpError::Transport { cause, .. } => matches!(
                    cause,
                    crate::http::TransportCause::Refused | crate::http::TransportCause::UnknownHost
                ),
            },
            _ => false,
        }
    }
}

impl Diagnostic for DfsError {
    fn kind(&self) -> Kind {
        match self {
            DfsError::Http { source, .. } => source.kind(),
            DfsError::NotFound(_) | DfsError::Protected(_) => Kind::Usage,
            _ => Kind::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            DfsError::NotFound(missing) => Some(missing.hint()),
            _ => None,
        }
    }

    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        match self {
            DfsError::Http { source, .. } => Some(source),
            DfsError::Local { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Missing {
    fn hint(&self) -> String {
        match self {
            Missing::Workspace { .. } => "check the workspace name in the URL (names are case-sensitive; the workspace GUID always works)".into(),
            Missing::Item { .. } => "check the lakehouse name and its `.Lakehouse` suffix (or use the item's GUID); `fabric-remote ls` on the workspace URL lists its items".into(),
            Missing::Folder {
                case_of: Some(right),
                ..
            } => format!("OneLake folder names are case-sensitive: write `{right}`"),
            Missing::Folder { .. } | Missing::Path(_) => {
                "check the path; `fabric-remote ls` on the parent folder shows what is there".into()
            }
        }
    }
}
