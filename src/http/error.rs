//! [`HttpError`]: what a failed request means, decoded once from the status, the
//! `x-ms-error-code` / `x-ms-public-api-error-code` headers and the body (the DFS JSON shape
//! `{"error":{"code","message"}}`, the Fabric shape `{"errorCode","message"}`, and the Blob
//! API's XML `<Error><Code/><Message/></Error>`).
//!
//! Messages name the operation and the URL without its query, never a token: the service's
//! own text is passed through [`redact`] (a server may echo our `Authorization` header).

use std::fmt;

use crate::auth::AuthError;
use crate::diagnostic::{Diagnostic, Kind};
use crate::secret::redact;

/// A request that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The service answered with a non-success status (after retries, where retryable).
    #[error(transparent)]
    Status(Box<StatusError>),
    /// No answer: connection refused or reset, timeout, broken body.
    #[error("{}", transport_message(.method, .url, .message, *.cause, *.attempts))]
    Transport {
        method: String,
        /// The URL without its query string.
        url: String,
        message: String,
        cause: TransportCause,
        attempts: u32,
    },
    /// No token could be had.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The client itself could not be set up (e.g. an unreadable `FABRIC_REMOTE_CA_FILE`).
    #[error("{0}")]
    Setup(String),
}

/// Why no answer came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportCause {
    /// Nothing listens at the endpoint: retrying will not help (failed fast).
    Refused,
    /// The host name does not resolve: retrying will not help (failed fast).
    UnknownHost,
    /// The service took too long.
    Timeout,
    /// The connection broke or the answer was cut off.
    Broken,
}

fn transport_message(
    method: &str,
    url: &str,
    message: &str,
    cause: TransportCause,
    attempts: u32,
) -> String {
    let endpoint = endpoint_of(url);
    let tries = if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    };
    match cause {
        TransportCause::Refused => {
            format!("could not connect to {endpoint}: the connection was refused{tries}")
        }
        TransportCause::UnknownHost => {
            format!("could not connect to {endpoint}: the host name does not resolve{tries}")
        }
        TransportCause::Timeout => format!("{method} {url} timed out{tries}"),
        TransportCause::Broken => format!("{method} {url} failed: {message}{tries}"),
    }
}

/// `scheme://host[:port]` of a URL (the whole text if it has no path).
pub(crate) fn endpoint_of(url: &str) -> &str {
    match url.find("://") {
        Some(i) => match url[i + 3..].find('/') {
            Some(j) => &url[..i + 3 + j],
            None => url,
        },
        None => url,
    }
}

/// A non-success answer, decoded.
#[derive(Debug, Clone)]
pub struct StatusError {
    pub method: String,
    /// The URL without its query string.
    pub url: String,
    pub status: u16,
    /// The service's error code (`PathNotFound`, `ItemNotFound`…), when it sent one.
    pub code: Option<String>,
    /// The first line of the service's message.
    pub message: Option<String>,
    pub request_id: Option<String>,
    pub attempts: u32,
    /// The wait the service asked for in this answer (`Retry-After` and friends).
    pub retry_after: Option<std::time::Duration>,
}

impl std::error::Error for StatusError {}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} failed with {}",
            self.method, self.url, self.status
        )?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {}", message.trim_end_matches('.'))?;
        }
        if self.attempts > 1 {
            write!(f, " (after {} attempts)", self.attempts)?;
        }
        Ok(())
    }
}

impl HttpError {
    /// The HTTP status, when the service answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status(s) => Some(s.status),
            _ => None,
        }
    }

    /// The service's error code, when it sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            HttpError::Status(s) => s.code.as_deref(),
            _ => None,
        }
    }

    /// The `Retry-After` of the failed answer, if the service sent one.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            HttpError::Status(s) => s.retry_after,
            _ => None,
        }
    }
}

impl Diagnostic for HttpError {
    fn kind(&self) -> Kind {
        match self {
            HttpError::Auth(e) => e.kind(),
            HttpError::Setup(_) => Kind::Usage,
            HttpError::Transport { cause, .. } => match cause {
                TransportCause::Refused | TransportCause::UnknownHost => Kind::Usage,
                TransportCause::Timeout | TransportCause::Broken => Kind::Failed,
            },
            // A rejected token, missing access, or a path that is not there: the URL or the
            // configuration needs fixing. Everything else is the service failing us.
            HttpError::Status(s) => match s.status {
                401 | 403 | 404 => Kind::Usage,
                _ => Kind::Failed,
            },
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            HttpError::Auth(_) | HttpError::Setup(_) => None,
            HttpError::Transport { url, cause, .. } => Some(match cause {
                TransportCause::Refused => format!(
                    "nothing answers at {}: check the URL's host and port, and that the service (or `fabric-remote emulator`) is running",
                    endpoint_of(url)
                ),
                TransportCause::UnknownHost => "check the host name in the URL, and your network or proxy settings".into(),
                TransportCause::Timeout | TransportCause::Broken => "check your network or proxy; run again to resume (finished files are not sent again), or add -v to see each request".into(),
            }),
            HttpError::Status(s) => match s.status {
                401 => Some("the token was rejected: run `az login` again, or check FABRIC_REMOTE_TOKEN and the credential's tenant".into()),
                403 => Some("your identity lacks access here: ask for Contributor (or Member) on the workspace; OneLake from outside Fabric also needs the tenant setting \"Users can access data stored in OneLake with apps external to Fabric\"".into()),
                404 if s.code.as_deref().is_some_and(|c| c.eq_ignore_ascii_case("FilesystemNotFound") || c.eq_ignore_ascii_case("ContainerNotFound") || c.eq_ignore_ascii_case("WorkspaceNotFound")) => {
                    Some("check the workspace (or container) name in the URL (names are case-sensitive, GUIDs always work), or create the container first".into())
                }
                429 | 503 => Some("the service is throttling; try again later or lower --concurrency".into()),
                _ => None,
            },
        }
    }

    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        match self {
            HttpError::Auth(e) => Some(e),
            _ => None,
        }
    }
}

/// Decodes an error answer. `body` may be empty (HEAD) or not JSON.
pub(crate) fn decode_status(
    method: &str,
    url: &str,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    attempts: u32,
) -> StatusError {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .filter(|v| !v.is_empty())
    };
    let (body_code, body_message) = decode_body(body);
    StatusError {
        method: method.to_string(),
        url: redact(strip_query(url)).into_owned(),
        status,
        code: header("x-ms-error-code")
            .or_else(|| header("x-ms-public-api-error-code"))
            .or(body_code)
            .map(|c| redact(&c).into_owned()),
        message: body_message.map(|m| redact(&m).into_owned()),
        request_id: header("x-ms-request-id").or_else(|| header("requestid")),
        attempts,
        retry_after: super::retry::retry_after(headers),
    }
}

/// `(code, first line of message)` from either JSON error shape, keys matched case-insensitively.
fn decode_body(body: &[u8]) -> (Option<String>, Option<String>) {
    let unmarked = body.strip_prefix("\u{feff}".as_bytes()).unwrap_or(body);
    if unmarked.trim_ascii_start().starts_with(b"<") {
        return decode_xml_body(unmarked);
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        let text = String::from_utf8_lossy(body);
        let line = text.lines().map(str::trim).find(|l| !l.is_empty());
        return (None, line.map(|l| l.chars().take(300).collect()));
    };
    let get = |v: &serde_json::Value, key: &str| -> Option<serde_json::Value> {
        v.as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    };
    let inner = get(&value, "error").filter(|v| v.is_object());
    let obj = inner.as_ref().unwrap_or(&value);
    let code = get(obj, "code")
        .or_else(|| get(obj, "errorCode"))
        .and_then(|v| v.as_str().map(str::to_string));
    let message = get(obj, "message")
        .and_then(|v| v.as_str().map(str::to_string))
        .and_then(|m| m.lines().next().map(|l| l.trim().to_string()))
        .filter(|m| !m.is_empty());
    (code, message)
}

/// `(Code, first line of Message)` of the Blob API's XML error body; anything unreadable is
/// simply absent (the `x-ms-error-code` header still names the code).
fn decode_xml_body(body: &[u8]) -> (Option<String>, Option<String>) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    let (mut code, mut message) = (None, None);
    let mut current: Option<String> = None;
    let mut text = String::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(tag)) => {
                current = Some(tag.local_name().as_ref().to_string());
                text.clear();
            }
            Ok(Event::Text(t)) => text.push_str(&t.xml10_content()),
            Ok(Event::GeneralRef(r)) => {
                let name = r.xml10_content();
                if let Some(s) = quick_xml::escape::resolve_predefined_entity(&name) {
                    text.push_str(s);
                }
            }
            Ok(Event::End(_)) => {
                match current.take().as_deref() {
                    Some("Code") => code = Some(text.trim().to_string()),
                    Some("Message") => message = text.lines().next().map(|l| l.trim().to_string()),
                    _ => {}
                }
                text.clear();
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    (
        code.filter(|c| !c.is_empty()),
        message.filter(|m| !m.is_empty()),
    )
}

pub(crate) fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn storage_error_shape_with_request_id_suffix() {
        let mut h = HeaderMap::new();
        h.insert("x-ms-error-code", HeaderValue::from_static("PathNotFound"));
        let body = br#"{"error":{"code":"PathNotFound","message":"The specified path does not exist.\nRequestId:abc\nTime:2023-03-07T19:37:19.4394026Z"}}"#;
        let e = decode_status("DELETE", "http://h/ws/x?recursive=true", 404, &h, body, 1);
        assert_eq!(e.code.as_deref(), Some("PathNotFound"));
        assert_eq!(
            e.message.as_deref(),
            Some("The specified path does not exist.")
        );
        assert_eq!(
            e.to_string(),
            "DELETE http://h/ws/x failed with 404 PathNotFound: The specified path does not exist"
        );
    }

    #[test]
    fn capitalised_spec_shape_and_fabric_shape() {
        let h = HeaderMap::new();
        let e = decode_status(
            "GET",
            "u",
            409,
            &h,
            br#"{"Error":{"Code":"X","Message":"m"}}"#,
            1,
        );
        assert_eq!(
            (e.code.as_deref(), e.message.as_deref()),
            (Some("X"), Some("m"))
        );
        let e = decode_status(
            "GET",
            "u",
            404,
            &h,
            br#"{"requestId":"r","errorCode":"ItemNotFound","message":"The requested item was not found"}"#,
            1,
        );
        assert_eq!(e.code.as_deref(), Some("ItemNotFound"));
    }

    #[test]
    fn blob_xml_error_shape() {
        let h = HeaderMap::new();
        let body = "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>Md5Mismatch</Code><Message>The MD5 value specified in the request did not match with the MD5 value calculated by the server.\nRequestId:abc\nTime:2026-01-01T00:00:00Z</Message><UserSpecifiedMd5>x</UserSpecifiedMd5></Error>";
        let e = decode_status(
            "PUT",
            "http://h/c/b?comp=block",
            400,
            &h,
            body.as_bytes(),
            1,
        );
        assert_eq!(e.code.as_deref(), Some("Md5Mismatch"));
        assert_eq!(
            e.message.as_deref(),
            Some(
                "The MD5 value specified in the request did not match with the MD5 value calculated by the server."
            )
        );
        let e = decode_status(
            "GET",
            "u",
            500,
            &h,
            b"<Error><Message>a &amp; b</Message>",
            1,
        );
        assert_eq!((e.code, e.message.as_deref()), (None, Some("a & b")));
    }

    #[test]
    fn head_errors_have_only_the_header() {
        let mut h = HeaderMap::new();
        h.insert("x-ms-error-code", HeaderValue::from_static("PathNotFound"));
        let e = decode_status("HEAD", "u", 404, &h, b"", 1);
        assert_eq!(e.code.as_deref(), Some("PathNotFound"));
        assert_eq!(e.message, None);
    }
}
