//! Long-running operations: the 202 answer (`Location`, `x-ms-operation-id`,
//! `Retry-After`), `GET /v1/operations/{id}` and `GET /v1/operations/{id}/result`.
//!
//! An operation is `NotStarted` for its first tenth, `Running` until
//! `Config::lro_duration_ms` has passed, then its work runs (the caller's closure: the
//! created item becomes visible, the new definition is stored, the definition is read)
//! and it is `Succeeded` — or `Failed` with the work's error. This module knows nothing
//! of what the work is.
//!
//! UNCONFIRMED choices: `/result` before success answers 400 `OperationNotSucceeded`
//! and on an operation without result 400 `OperationHasNoResult` (codes from the GOSDK
//! list); unknown ids 404 `OperationNotFound`; timestamps use the job-instance format
//! without `Z` (seen in the wild, CICD issue #299), although the SPEC example has one.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Req, empty_response, fabric_time, json_response, new_id, set_header};
use crate::error::{Result, ServiceError};
use crate::lock::lock;
use crate::state::State;
use crate::time;

enum Outcome {
    Pending,
    Result(Value),
    NoResult,
    Failed(ServiceError),
}

pub(crate) struct Operation {
    created_ns: u64,
    updated_ns: u64,
    duration: Duration,
    outcome: Outcome,
}

/// The work an operation does when its time is up: `Some(result)`, `None` for an
/// operation without result, or the error it fails with.
pub(crate) type Work = Box<dyn FnOnce(&State) -> Result<Option<Value>> + Send>;

/// Registers an operation doing `work`, schedules its completion and answers the 202.
pub(crate) fn start(state: &Arc<State>, r: &Req, work: Work) -> Response {
    let id = new_id(state);
    let now = time::now_nanos();
    let duration = state.fabric.lro_duration;
    lock(&state.fabric.ops).insert(
        id.clone(),
        Operation {
            created_ns: now,
            updated_ns: now,
            duration,
            outcome: Outcome::Pending,
        },
    );
    let st = state.clone();
    let op_id = id.clone();
    tokio::spawn(async move {
        tokio::time::sleep(duration).await;
        let outcome = match work(&st) {
            Ok(Some(v)) => Outcome::Result(v),
            Ok(None) => Outcome::NoResult,
            Err(e) => Outcome::Failed(e),
        };
        if let Some(op) = lock(&st.fabric.ops).get_mut(&op_id) {
            op.outcome = outcome;
            op.updated_ns = time::now_nanos();
        }
    });
    let mut resp = empty_response(StatusCode::ACCEPTED);
    set_header(
        &mut resp,
        "location",
        &format!("{}/v1/operations/{id}", r.base),
    );
    set_header(&mut resp, "x-ms-operation-id", &id);
    set_header(
        &mut resp,
        "retry-after",
        &state.fabric.retry_after_secs.to_string(),
    );
    resp
}

fn not_found() -> ServiceError {
    ServiceError::new(
        StatusCode::NOT_FOUND,
        "OperationNotFound",
        "The requested operation was not found.",
    )
}

pub(crate) fn get_state(state: &State, r: &Req, id: &str) -> Result<Response> {
    let ops = lock(&state.fabric.ops);
    let op = ops
        .get(&id.to_ascii_lowercase())
        .or_else(|| ops.get(id))
        .ok_or_else(not_found)?;
    let now = time::now_nanos();
    let elapsed = now.saturating_sub(op.created_ns);
    let total = (op.duration.as_nanos() as u64).max(1);
    let (status, percent, error, done) = match &op.outcome {
        Outcome::Pending if elapsed < total / 10 => ("NotStarted", json!(0), Value::Null, false),
        Outcome::Pending => (
            "Running",
            json!((elapsed * 100 / total).min(99)),
            Value::Null,
            false,
        ),
        Outcome::Result(_) | Outcome::NoResult => ("Succeeded", json!(100), Value::Null, true),
        Outcome::Failed(e) => (
            "Failed",
            json!(100),
            json!({"errorCode": e.code, "message": e.message}),
            false,
        ),
    };
    let body = json!({
        "status": status,
        "createdTimeUtc": fabric_time(op.created_ns),
        "lastUpdatedTimeUtc": fabric_time(if done { op.updated_ns } else { now.max(op.updated_ns) }),
        "percentComplete": percent,
        "error": error,
    });
    let mut resp = json_response(StatusCode::OK, &body);
    let location = if done {
        format!("{}/v1/operations/{id}/result", r.base)
    } else {
        format!("{}/v1/operations/{id}", r.base)
    };
    set_header(&mut resp, "location", &location);
    set_header(&mut resp, "x-ms-operation-id", id);
    set_header(
        &mut resp,
        "retry-after",
        &state.fabric.retry_after_secs.to_string(),
    );
    Ok(resp)
}

pub(crate) fn get_result(state: &State, id: &str) -> Result<Response> {
    let ops = lock(&state.fabric.ops);
    let op = ops
        .get(&id.to_ascii_lowercase())
        .or_else(|| ops.get(id))
        .ok_or_else(not_found)?;
    match &op.outcome {
        Outcome::Result(v) => Ok(json_response(StatusCode::OK, v)),
        Outcome::NoResult => Err(ServiceError::new(
            StatusCode::BAD_REQUEST,
            "OperationHasNoResult",
            "The operation has no result.",
        )),
        Outcome::Pending | Outcome::Failed(_) => Err(ServiceError::new(
            StatusCode::BAD_REQUEST,
            "OperationNotSucceeded",
            "The operation has not succeeded, so it has no result.",
        )),
    }
}
