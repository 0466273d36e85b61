//! Serves connections by hand (hyper http1 over tokio) so that a request can be answered
//! with no response at all: the seeded fault injector drops the connection either before
//! the operation runs or after it ran (the response is lost). Around the router it also
//! records every request, sleeps the configured latency, checks the bearer token (or a
//! SAS query string), picks the API the request speaks (DFS, Blob or Fabric) and adds the
//! headers every response carries; with `--tls` it speaks HTTPS.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, Response, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower::ServiceExt as _;

use crate::error::ServiceError;
use crate::request::{Query, RequestCtx, Surface};
use crate::state::{Fault, State};

/// The "error" a service returns to make hyper close the connection unanswered.
#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

/// Paths under `/v1/` belong to the Fabric REST side.
pub fn is_fabric_path(raw_path: &str) -> bool {
    raw_path == "/v1" || raw_path.starts_with("/v1/")
}

/// Accepts connections until `shutdown` fires; over TLS when `tls` is given.
pub async fn serve(
    listener: std::net::TcpListener,
    state: Arc<State>,
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // Out of file descriptors and the like: let it pass.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let app = app.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(state.clone(), app.clone(), req));
                    match tls {
                        Some(acceptor) => {
                            // A failed handshake (an HTTP client, a distrusting client)
                            // only ends that connection.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), svc)
                                    .await;
                            }
                        }
                        None => {
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), svc)
                                .await;
                        }
                    }
                });
            }
        }
    }
}

async fn handle(
    state: Arc<State>,
    app: Router,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Dropped> {
    let raw_path = req.uri().path().to_owned();
    let decoded = percent_encoding::percent_decode_str(&raw_path)
        .decode_utf8_lossy()
        .into_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let fabric = is_fabric_path(&raw_path);
    let index = state.record_start(req.method().to_string(), decoded, query.clone());
    let surface = if fabric {
        Surface::Fabric
    } else {
        let q = Query::parse(&query).unwrap_or_default();
        if crate::blob::is_blob_request(req.method(), &raw_path, &q, req.headers()) {
            Surface::Blob
        } else {
            Surface::Dfs
        }
    };
    let ctx = RequestCtx::new(
        state.next_request_id(),
        req.headers(),
        req.method() == axum::http::Method::HEAD,
        surface,
    );

    let (fault, latency_ms) = state.draw_fault();
    if latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    }
    let injected = match fault {
        Fault::ResetBefore => {
            state.record_finish(index, 0, fault.label());
            return Err(Dropped);
        }
        Fault::Throttled => Some(ServiceError::throttled(state.retry_after_ms)),
        Fault::Busy => Some(ServiceError::server_busy()),
        Fault::None | Fault::ResetAfter => None,
    };
    let resp = if let Some(e) = injected {
        e.response(&ctx)
    } else if let Err(e) = check_auth(&state, req.headers(), &query) {
        e.response(&ctx)
    } else {
        req.extensions_mut().insert(ctx.clone());
        let resp: Result<Response<Body>, Infallible> = app.oneshot(req).await;
        match resp {
            Ok(r) => r,
            Err(never) => match never {},
        }
    };
    if fault == Fault::ResetAfter {
        state.record_finish(index, 0, fault.label());
        return Err(Dropped);
    }
    let resp = ctx.finish(resp);
    state.record_finish(index, resp.status().as_u16(), fault.label());
    Ok(resp)
}

/// A request is authorised by a bearer token or, on the storage side, by a SAS query
/// string (`sig=` present). The SAS signature is not verified (the emulator has no
/// account key); an expiry (`se`) in the past is 403 `AuthenticationFailed`.
fn check_auth(state: &State, headers: &HeaderMap, query: &str) -> Result<(), ServiceError> {
    if !headers.contains_key(header::AUTHORIZATION)
        && let Ok(q) = Query::parse(query)
        && q.get("sig").is_some()
    {
        if let Some(se) = q.get("se")
            && let Some(expiry) = crate::time::parse_iso8601(se)
            && expiry < crate::time::now_nanos()
        {
            return Err(ServiceError::new(
                axum::http::StatusCode::FORBIDDEN,
                "AuthenticationFailed",
                "Server failed to authenticate the request. Signed expiry time has passed.",
            ));
        }
        return Ok(());
    }
    check_bearer(state, headers)
}

/// `Authorization: Bearer <token>`, non-empty and not revoked.
fn check_bearer(state: &State, headers: &HeaderMap) -> Result<(), ServiceError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ServiceError::no_auth());
    };
    let value = value.to_str().map_err(|_| ServiceError::invalid_auth())?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ServiceError::invalid_auth());
    }
    if state.is_revoked(token) {
        return Err(ServiceError::invalid_auth());
    }
    Ok(())
}
