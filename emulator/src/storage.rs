//! The storage entry point: every request outside `/v1` is OneLake storage, answered by
//! the Blob side or the DFS side as the request context says (`server` decides which from
//! the request, see `blob::is_blob_request`). Adds what both share: errors in the
//! request's shape and `x-ms-rejected-headers` for the headers OneLake ignores.

use std::sync::Arc;

use axum::extract::{Request, State as AxState};
use axum::http::{HeaderValue, Method};
use axum::response::Response;

use crate::request::{RequestCtx, Surface};
use crate::state::State;
use crate::{blob, dfs};

/// Headers OneLake ignores and names back in `x-ms-rejected-headers`.
const REJECTED_HEADERS: &[&str] = &[
    "x-ms-owner",
    "x-ms-group",
    "x-ms-permissions",
    "x-ms-acl",
    "x-ms-umask",
    "x-ms-encryption-key",
    "x-ms-encryption-key-sha256",
    "x-ms-encryption-algorithm",
    "x-ms-encryption-scope",
    "x-ms-access-tier",
];

pub async fn handle(AxState(state): AxState<Arc<State>>, req: Request) -> Response {
    let ctx = req
        .extensions()
        .get::<RequestCtx>()
        .cloned()
        .unwrap_or_else(|| {
            RequestCtx::new(
                state.next_request_id(),
                req.headers(),
                req.method() == Method::HEAD,
                Surface::Dfs,
            )
        });
    let rejected: Vec<&str> = REJECTED_HEADERS
        .iter()
        .copied()
        .filter(|h| req.headers().contains_key(*h))
        .collect();
    let result = if ctx.surface == Surface::Blob {
        blob::dispatch(&state, req).await
    } else {
        dfs::dispatch(&state, req).await
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => e.response(&ctx),
    };
    if !rejected.is_empty()
        && let Ok(v) = HeaderValue::from_str(&rejected.join(","))
    {
        resp.headers_mut().insert("x-ms-rejected-headers", v);
    }
    resp
}
