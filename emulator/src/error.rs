//! Defines [`ServiceError`], one failed request, and how it is written on the wire.
//!
//! Storage (DFS) errors are `x-ms-error-code` plus
//! `{"error":{"code":"…","message":"…\nRequestId:…\nTime:…"}}`; HEAD errors carry no
//! body. Fabric REST errors are `{"requestId":…,"errorCode":…,"message":…}`.

use std::borrow::Cow;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Response, StatusCode, header};

use crate::request::{BadQuery, RequestCtx, Surface};
use crate::time;

#[derive(Debug, Clone)]
pub struct ServiceError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: Cow<'static, str>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

impl ServiceError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        ServiceError {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((HeaderName::from_static(name), v));
        }
        self
    }

    /// Like [`ServiceError::with_header`] for a header name known only at run time.
    pub fn with_header_owned(mut self, name: &str, value: &str) -> Self {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            self.headers.push((n, v));
        }
        self
    }

    pub fn path_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "PathNotFound",
            "The specified path does not exist.",
        )
    }

    /// Unknown workspace. The DFS code casing is UNCONFIRMED; ADLS Gen2 answers
    /// `FilesystemNotFound` on the dfs endpoint, which we copy.
    pub fn filesystem_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "FilesystemNotFound",
            "The specified filesystem does not exist.",
        )
    }

    pub fn path_already_exists() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "PathAlreadyExists",
            "The specified path already exists.",
        )
    }

    pub fn path_conflict() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "PathConflict",
            "The specified path, or an element of the path, exists and its resource type is invalid for this operation.",
        )
    }

    /// Non-recursive delete of a non-empty directory (code UNCONFIRMED in the reference).
    pub fn directory_not_empty() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "DirectoryNotEmpty",
            "The recursive query parameter value must be true to delete a non-empty directory.",
        )
    }

    /// OneLake refuses to create, delete or rename workspaces, items and the item's
    /// `Files`/`Tables` folders. The exact status and code are UNCONFIRMED; we answer
    /// 403 `OperationNotAllowedOnThePath`, which a client must treat as fatal.
    pub fn protected() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "OperationNotAllowedOnThePath",
            "The operation is not allowed on this path: OneLake manages workspaces, items and their Files and Tables folders.",
        )
    }

    pub fn invalid_query(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidQueryParameterValue",
            format!(
                "Value for one of the query parameters specified in the request URI is invalid. {detail}"
            ),
        )
    }

    pub fn missing_query(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MissingRequiredQueryParameter",
            format!(
                "A query parameter that's mandatory for this request is not specified. ({name})"
            ),
        )
    }

    pub fn unsupported_query(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "UnsupportedQueryParameter",
            format!(
                "One of the query parameters specified in the request URI is not supported. ({name})"
            ),
        )
    }

    pub fn missing_header(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MissingRequiredHeader",
            format!("An HTTP header that's mandatory for this request is not specified. ({name})"),
        )
    }

    pub fn invalid_header(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidHeaderValue",
            format!("The value for one of the HTTP headers is not in the correct format. ({name})"),
        )
    }

    pub fn content_length_must_be_zero() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ContentLengthMustBeZero",
            "The Content-Length request header must be zero.",
        )
    }

    pub fn missing_content_length() -> Self {
        Self::new(
            StatusCode::LENGTH_REQUIRED,
            "MissingContentLengthHeader",
            "The Content-Length header is required.",
        )
    }

    pub fn invalid_flush_position() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidFlushPosition",
            "The uploaded data is not contiguous or the position query parameter value is not equal to the length of the file after appending the uploaded data.",
        )
    }

    pub fn invalid_range(len: u64) -> Self {
        Self::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidRange",
            "The range specified is invalid for the current size of the resource.",
        )
        .with_header("content-range", &format!("bytes */{len}"))
    }

    pub fn invalid_uri(detail: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidUri",
            format!("The request URI is invalid. {detail}"),
        )
    }

    pub fn condition_not_met() -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "ConditionNotMet",
            "The condition specified using HTTP conditional header(s) is not met.",
        )
    }

    pub fn unsupported_verb() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UnsupportedHttpVerb",
            "The resource doesn't support specified Http Verb.",
        )
    }

    pub fn no_auth() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "NoAuthenticationInformation",
            "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
        )
        .with_header("www-authenticate", WWW_AUTHENTICATE)
    }

    pub fn invalid_auth() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationInfo",
            "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
        )
        .with_header("www-authenticate", WWW_AUTHENTICATE)
    }

    pub fn permission_mismatch() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "AuthorizationPermissionMismatch",
            "This request is not authorized to perform this operation using this permission.",
        )
    }

    /// Injected throttling. OneLake's DFS throttling shape is UNCONFIRMED; we answer
    /// 429 `TooManyRequests` with `Retry-After` (seconds) and `x-ms-retry-after-ms`.
    pub fn throttled(retry_after_ms: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests. Please retry after some time.",
        )
        .with_header("retry-after", &(retry_after_ms / 1000).to_string())
        .with_header("x-ms-retry-after-ms", &retry_after_ms.to_string())
    }

    pub fn server_busy() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServerBusy",
            "The server is busy.",
        )
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            format!(
                "Server encountered an internal error. Please try again after some time. ({err})"
            ),
        )
    }

    /// The error response in the shape of the API the request spoke.
    pub fn response(&self, ctx: &RequestCtx) -> Response<Body> {
        match ctx.surface {
            Surface::Fabric => self.to_fabric_response(ctx),
            Surface::Dfs | Surface::Blob => self.to_storage_response(ctx),
        }
    }

    /// The storage (DFS) error response.
    fn to_storage_response(&self, ctx: &RequestCtx) -> Response<Body> {
        let message = format!(
            "{}\nRequestId:{}\nTime:{}",
            self.message,
            ctx.request_id,
            time::iso8601_7(time::now_nanos())
        );
        if ctx.surface == Surface::Blob {
            return self.to_blob_response(ctx, &message);
        }
        let body =
            serde_json::json!({"error": {"code": self.code, "message": message}}).to_string();
        self.respond(ctx, body)
    }

    /// The Blob error response: XML, with the Blob API's names for the DFS codes.
    fn to_blob_response(&self, ctx: &RequestCtx, message: &str) -> Response<Body> {
        let code = match self.code {
            "PathNotFound" => "BlobNotFound",
            "FilesystemNotFound" => "ContainerNotFound",
            "PathAlreadyExists" => "BlobAlreadyExists",
            "DirectoryNotEmpty" => "DirectoryIsNotEmpty",
            c => c,
        };
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{}</Message></Error>",
            quick_xml::escape::escape(message)
        );
        let mut resp = ServiceError {
            code,
            ..self.clone()
        }
        .respond(ctx, body);
        if !ctx.head {
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml"),
            );
        }
        resp
    }

    /// The Fabric REST error response.
    fn to_fabric_response(&self, ctx: &RequestCtx) -> Response<Body> {
        let code = match self.code {
            "NoAuthenticationInformation" | "InvalidAuthenticationInfo" => "TokenExpired",
            "TooManyRequests" => "RequestBlocked",
            "ServerBusy" => "ServiceUnavailable",
            c => c,
        };
        let body = serde_json::json!({"requestId": ctx.request_id, "errorCode": code, "message": self.message}).to_string();
        let mut resp = self.respond(ctx, body);
        if let Ok(v) = HeaderValue::from_str(code) {
            resp.headers_mut().insert("x-ms-public-api-error-code", v);
            resp.headers_mut().remove("x-ms-error-code");
        }
        resp
    }

    fn respond(&self, ctx: &RequestCtx, body: String) -> Response<Body> {
        let len = body.len();
        let body = if ctx.head {
            Body::empty()
        } else {
            Body::from(body)
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert("x-ms-error-code", HeaderValue::from_static(self.code));
        if !ctx.head {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        for (k, v) in &self.headers {
            h.insert(k.clone(), v.clone());
        }
        resp
    }
}

const WWW_AUTHENTICATE: &str = "Bearer authorization_uri=https://login.microsoftonline.com/common/oauth2/authorize resource_id=https://storage.azure.com";

impl From<BadQuery> for ServiceError {
    fn from(e: BadQuery) -> Self {
        ServiceError::invalid_query(format!("{}={}", e.key, e.value))
    }
}

impl From<std::io::Error> for ServiceError {
    fn from(e: std::io::Error) -> Self {
        ServiceError::internal(e)
    }
}
