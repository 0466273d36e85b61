//! [`DfsError`]: a DFS operation that failed, naming the operation and the remote path.

use std::path::PathBuf;

use crate::http::HttpError;
use crate::location::RemoteLocation;

#[derive(Debug, thiserror::Error)]
pub enum DfsError {
    /// The service refused or could not be reached.
    #[error("could not {op} {location}: {source}")]
    Http {
        op: &'static str,
        location: String,
        #[source]
        source: HttpError,
    },
    /// The listed directory does not exist.
    #[error("{0} does not exist")]
    NotFound(String),
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
    #[error("cannot read local file {path}: {source}")]
    Local {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(std::io::Error),
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

    pub fn hint(&self) -> Option<String> {
        match self {
            DfsError::Http { source, .. } => source.hint(),
            DfsError::NotFound(_) => {
                Some("check the path; `fabric-remote ls` on the parent shows what is there".into())
            }
            _ => None,
        }
    }
}
