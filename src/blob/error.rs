//! [`BlobError`]: a Blob operation that failed, naming the operation and the remote path, or
//! a Blob credential that cannot be used. Messages never show a key or a SAS token.

use std::path::PathBuf;

use crate::diagnostic::{Diagnostic, Kind};
use crate::http::HttpError;
use crate::location::RemoteLocation;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// The service refused or could not be reached.
    #[error("could not {op} {location}")]
    Http {
        op: &'static str,
        location: String,
        #[source]
        source: HttpError,
    },
    /// A container root (and on OneLake the item folder, `Files` and `Tables`) is never a
    /// target.
    #[error("{0} is a protected folder; point at a folder below it instead")]
    Protected(String),
    #[error("the service kept sending the same marker for {0}; stopping instead of looping")]
    RepeatedMarker(String),
    #[error("the listing of {location} is malformed: {message}")]
    BadListing { location: String, message: String },
    #[error("{0} changed on the service while it was being read; run again")]
    ChangedDuringRead(String),
    #[error("{0} changed while it was being uploaded; nothing was committed, run again")]
    ChangedDuringUpload(PathBuf),
    #[error("could not {op} {location}: the connection kept breaking ({message})")]
    Interrupted {
        op: &'static str,
        location: String,
        message: String,
    },
    #[error(
        "{location} would be {size} bytes, more than a block blob holds (50,000 blocks of 4000 MiB)"
    )]
    TooLarge { location: String, size: u64 },
    #[error(
        "`{0}` is not a valid metadata name; use letters, digits and `_`, not starting with a digit"
    )]
    BadMetadataName(String),
    #[error("the value of metadata `{0}` must be printable ASCII")]
    BadMetadataValue(String),
    #[error("cannot read local file `{}`", path.display())]
    Local {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{var} does not hold a base64 account key")]
    BadKey { var: &'static str },
    #[error("{var} names account `{configured}`, but the URL names account `{url}`")]
    AccountMismatch {
        var: &'static str,
        configured: String,
        url: String,
    },
    #[error("Shared Key needs an account name, and the URL names none; set AZURE_STORAGE_ACCOUNT")]
    NoAccount,
    #[error("AZURE_STORAGE_CONNECTION_STRING has neither AccountKey nor SharedAccessSignature")]
    BadConnectionString,
    #[error(transparent)]
    Io(std::io::Error),
}

impl BlobError {
    pub(crate) fn op(op: &'static str, loc: &RemoteLocation, source: HttpError) -> Self {
        BlobError::Http {
            op,
            location: loc.to_string(),
            source,
        }
    }

    /// The HTTP error underneath, if any.
    pub fn http(&self) -> Option<&HttpError> {
        match self {
            BlobError::Http { source, .. } => Some(source),
            _ => None,
        }
    }

    /// True when the error means the sync root itself cannot be written or read at all (a
    /// rejected credential, a missing container, nothing listening): trying the other files
    /// would only repeat it. A 403 is not: access can differ from path to path.
    pub fn is_fatal_for_root(&self) -> bool {
        match self {
            BlobError::Protected(_)
            | BlobError::BadKey { .. }
            | BlobError::AccountMismatch { .. }
            | BlobError::NoAccount
            | BlobError::BadConnectionString => true,
            BlobError::Http { source, .. } => match source {
                HttpError::Auth(_) | HttpError::Setup(_) => true,
                HttpError::Status(s) => {
                    s.status == 401
                        || (s.status == 404
                            && s.code.as_deref().is_some_and(|c| {
                                c.eq_ignore_ascii_case("ContainerNotFound")
                                    || c.eq_ignore_ascii_case("FilesystemNotFound")
                            }))
                        || (s.status == 403
                            && s.code
                                .as_deref()
                                .is_some_and(|c| c.eq_ignore_ascii_case("AuthenticationFailed")))
                }
                HttpError::Transport { cause, .. } => matches!(
                    cause,
                    crate::http::TransportCause::Refused | crate::http::TransportCause::UnknownHost
                ),
            },
            _ => false,
        }
    }
}

impl Diagnostic for BlobError {
    fn kind(&self) -> Kind {
        match self {
            BlobError::Http { source, .. } => source.kind(),
            BlobError::Protected(_)
            | BlobError::BadKey { .. }
            | BlobError::AccountMismatch { .. }
            | BlobError::NoAccount
            | BlobError::BadConnectionString
            | BlobError::BadMetadataName(_)
            | BlobError::BadMetadataValue(_)
            | BlobError::TooLarge { .. } => Kind::Usage,
            _ => Kind::Failed,
        }
    }

    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        match self {
            BlobError::Http { source, .. } => Some(source),
            BlobError::Local { source, .. } => Some(source),
            _ => None,
        }
    }

    /// What the user can do about it.
    fn hint(&self) -> Option<String> {
        match self {
            BlobError::Http { source, .. } => {
                let code = source.code().unwrap_or("");
                let is = |c: &str| code.eq_ignore_ascii_case(c);
                match source.status() {
                    Some(403) if is("AuthenticationFailed") || is("AuthorizationFailure") => Some(
                        "the request was not authorised: check the account key (AZURE_STORAGE_KEY, AZURE_STORAGE_CONNECTION_STRING), that the SAS token is complete and not expired, or your identity's role on the container".into(),
                    ),
                    Some(403) if is("AuthorizationPermissionMismatch") || is("AuthorizationResourceTypeMismatch") || is("AuthorizationServiceMismatch") => Some(
                        "the SAS token or identity does not allow this operation: a sync needs read, write, delete and list permissions".into(),
                    ),
                    Some(400) if is("Md5Mismatch") || mentions_md5(source) => Some(
                        "the bytes changed on the way to the service (it checked their MD5); run again".into(),
                    ),
                    _ => None,
                }
            }
            BlobError::BadKey { .. } => {
                Some("copy the key again from the storage account's \"Access keys\" page".into())
            }
            _ => None,
        }
    }
}

/// Whether the service's message is about an MD5 mismatch (Azurite's code for it is the
/// generic `InvalidOperation`).
fn mentions_md5(e: &HttpError) -> bool {
    matches!(e, HttpError::Status(s) if s.message.as_deref().is_some_and(|m| m.to_ascii_lowercase().contains("md5")))
}
