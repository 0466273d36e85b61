//! The Fabric REST side (`/v1/...`). Not built yet: every request is answered with a
//! Fabric-shaped 404 so that clients see the real error shape.

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::any;

use crate::error::ServiceError;
use crate::server::RequestCtx;
use crate::state::State;

/// Routes under `/v1`. The Fabric side adds its routes here.
pub fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/v1", any(not_found))
        .route("/v1/{*rest}", any(not_found))
}

async fn not_found(req: Request) -> Response {
    let ctx = req.extensions().get::<RequestCtx>().cloned();
    let err = ServiceError::new(
        StatusCode::NOT_FOUND,
        "EntityNotFound",
        format!("The requested resource {} was not found.", req.uri().path()),
    );
    match ctx {
        Some(ctx) => err.to_fabric_response(&ctx),
        None => {
            let mut r = Response::new(axum::body::Body::empty());
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    }
}
