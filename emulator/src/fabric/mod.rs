//! The Fabric REST side (`/v1/...`), shaped after Microsoft's Fabric REST API specification
//! (`microsoft/fabric-rest-api-specs`) and what its clients rely on.
//!
//! - `items`: workspaces, items, lakehouses, Spark Job Definitions and their definitions
//!   (persisted under `DATA/.emulator/fabric/`).
//! - `definition`: SJD definitions: validation and the getDefinition document.
//! - `lro`: long-running operations (`/v1/operations/{id}[/result]`), used by SJD create,
//!   getDefinition and updateDefinition when a seeded coin says so (`Config::lro_rate`).
//! - `jobs`: job instances (run, get, list, cancel), Livy sessions and driver logs.
//! - `runner`: a job run as a local Python process.
//!
//! Requests are dispatched by hand on the decoded path segments, so that every answer,
//! including unknown routes, carries the Fabric error shape
//! (`{"requestId","errorCode","message"}` + `x-ms-public-api-error-code`).

mod definition;
mod items;
mod jobs;
mod lro;
mod runner;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::any;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::Value;

use crate::Config;
use crate::error::{Result, ServiceError};
use crate::ids;
use crate::lock::lock;
use crate::request::{BadQuery, Query, RequestCtx, Surface};
use crate::state::State;
use crate::time;
use crate::token;

pub(crate) use items::Sjd;
pub(crate) use jobs::Job;
pub(crate) use lro::Operation;

/// Everything the Fabric side keeps besides the shared [`State`].
pub(crate) struct Fabric {
    pub python: PathBuf,
    pub visible_after: Duration,
    pub retry_after_secs: u64,
    pub lro_rate: f64,
    pub lro_duration: Duration,
    /// `DATA/.emulator/fabric`
    pub dir: PathBuf,
    pub capacity: AtomicBool,
    rng: Mutex<u64>,
    /// Spark Job Definitions, in creation order; persisted in `dir/items.json`.
    pub sjds: Mutex<Vec<Sjd>>,
    pub ops: Mutex<HashMap<String, Operation>>,
    /// Job instances, in submission order (not persisted).
    pub jobs: Mutex<Vec<Job>>,
    /// The `{clusterTimestamp}` of `application_{clusterTimestamp}_{seq}`.
    pub app_epoch_ms: u64,
    /// Fault knob: runs of the SJD with this display name fail at once with this reason.
    pub failing_sjds: Mutex<HashMap<String, String>>,
}

impl Fabric {
    pub fn open(config: &Config, data_dir: &std::path::Path) -> std::io::Result<Fabric> {
        let dir = data_dir.join(".emulator").join("fabric");
        std::fs::create_dir_all(&dir)?;
        let sjds = items::load(&dir)?;
        Ok(Fabric {
            python: config
                .python
                .clone()
                .unwrap_or_else(|| PathBuf::from("python3")),
            visible_after: Duration::from_millis(config.job_visible_after_ms),
            retry_after_secs: config.fabric_retry_after_secs,
            lro_rate: config.lro_rate,
            lro_duration: Duration::from_millis(config.lro_duration_ms),
            dir,
            capacity: AtomicBool::new(true),
            rng: Mutex::new(config.seed ^ 0xFAB_u64.rotate_left(40)),
            sjds: Mutex::new(sjds),
            ops: Mutex::new(HashMap::new()),
            jobs: Mutex::new(Vec::new()),
            app_epoch_ms: time::now_nanos() / 1_000_000,
            failing_sjds: Mutex::new(HashMap::new()),
        })
    }

    /// The seeded coin: whether this create/getDefinition/updateDefinition answers 202.
    pub fn lro_coin(&self) -> bool {
        let mut rng = lock(&self.rng);
        ids::unit(&mut rng) < self.lro_rate
    }

    pub fn has_capacity(&self) -> bool {
        self.capacity.load(Ordering::Relaxed)
    }

    pub fn set_capacity(&self, assigned: bool) {
        self.capacity.store(assigned, Ordering::Relaxed)
    }

    /// Makes every later run of the SJD called `name` fail as soon as it is submitted
    /// (`reason` in its `failureReason`); `None` lets them run again.
    pub fn fail_runs_of(&self, name: &str, reason: Option<&str>) {
        let mut failing = lock(&self.failing_sjds);
        match reason {
            Some(r) => failing.insert(name.to_owned(), r.to_owned()),
            None => failing.remove(name),
        };
    }

    /// Kills every running job's process group (the emulator is going away).
    pub fn shutdown(&self) {
        for job in lock(&self.jobs).iter_mut() {
            if let Some(pid) = job.pid.take() {
                runner::kill_group(pid);
            }
        }
    }
}

/// Routes under `/v1`.
pub fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/v1", any(handle))
        .route("/v1/{*rest}", any(handle))
}

/// One parsed request, as the handlers see it.
pub(crate) struct Req {
    pub method: Method,
    /// Decoded path segments after `/v1`.
    pub segs: Vec<String>,
    pub query: Query,
    /// `http://host:port`, from the `Host` header: the base of `Location`s and
    /// `continuationUri`s.
    pub base: String,
    /// The raw path, for `continuationUri`.
    pub raw_path: String,
    pub body: bytes::Bytes,
}

impl Req {
    /// The body as a JSON object; `None` when the body is empty.
    pub fn json(&self) -> Result<Option<serde_json::Map<String, Value>>> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(Value::Object(m)) => Ok(Some(m)),
            Ok(_) => Err(bad_input("The request body must be a JSON object.")),
            Err(e) => Err(bad_input(format!(
                "The request body is not valid JSON: {e}"
            ))),
        }
    }
}

async fn handle(AxState(state): AxState<Arc<State>>, req: Request) -> Response {
    let ctx = req
        .extensions()
        .get::<RequestCtx>()
        .cloned()
        .unwrap_or_else(|| {
            RequestCtx::new(
                state.next_request_id(),
                req.headers(),
                false,
                Surface::Fabric,
            )
        });
    match parse(&state, req).await {
        Ok(r) => match dispatch(&state, r).await {
            Ok(resp) => resp,
            Err(e) => e.response(&ctx),
        },
        Err(e) => e.response(&ctx),
    }
}

async fn parse(state: &State, req: Request) -> Result<Req> {
    let (parts, body) = req.into_parts();
    let raw_path = parts.uri.path().to_owned();
    let decoded = percent_decode_str(&raw_path)
        .decode_utf8_lossy()
        .into_owned();
    if state.is_denied(&decoded) {
        return Err(ServiceError::new(
            StatusCode::FORBIDDEN,
            "InsufficientPrivileges",
            "The caller does not have sufficient permissions to perform this operation.",
        ));
    }
    let segs = raw_path
        .trim_start_matches("/v1")
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let query = Query::parse(parts.uri.query().unwrap_or("")).map_err(bad_query)?;
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let body = axum::body::to_bytes(body, 256 << 20)
        .await
        .map_err(|e| bad_input(format!("Could not read the request body: {e}")))?;
    Ok(Req {
        method: parts.method,
        segs,
        query,
        base: format!("{}://{host}", if state.tls { "https" } else { "http" }),
        raw_path,
        body,
    })
}

async fn dispatch(state: &Arc<State>, r: Req) -> Result<Response> {
    let segs: Vec<&str> = r.segs.iter().map(String::as_str).collect();
    let m = &r.method;
    match segs.as_slice() {
        ["operations", op] if m == Method::GET => lro::get_state(state, &r, op),
        ["operations", op, "result"] if m == Method::GET => lro::get_result(state, op),
        ["workspaces"] if m == Method::GET => items::list_workspaces(state, &r),
        ["workspaces", ws] if m == Method::GET => items::get_workspace(state, &r, ws),
        ["workspaces", ws, rest @ ..] => {
            let ws = items::resolve_workspace(state, ws)?;
            dispatch_ws(state, &r, ws, rest).await
        }
        _ => Err(endpoint_not_found(&r)),
    }
}

async fn dispatch_ws(
    state: &Arc<State>,
    r: &Req,
    ws: items::Ws,
    rest: &[&str],
) -> Result<Response> {
    let m = &r.method;
    let get = m == Method::GET;
    let post = m == Method::POST;
    match rest {
        ["items"] if get => items::list_items(state, r, ws),
        ["items"] if post => items::create_item(state, r, ws, true),
        ["lakehouses"] if get => items::list_lakehouses(state, r, ws),
        ["lakehouses", id] if get => items::get_lakehouse(state, r, ws, id),
        ["lakehouses", id, "getDefinition"] if post => items::get_definition(state, r, ws, id),
        ["sparkJobDefinitions"] if get => items::list_sjds(state, r, ws),
        ["sparkJobDefinitions"] if post => items::create_item(state, r, ws, false),
        ["items" | "sparkJobDefinitions", id] if get => items::get_item(state, r, ws, id, rest[0]),
        ["items" | "sparkJobDefinitions", id] if m == Method::PATCH => {
            items::update_item(state, r, ws, id)
        }
        ["items" | "sparkJobDefinitions", id] if m == Method::DELETE => {
            items::delete_item(state, ws, id)
        }
        ["items" | "sparkJobDefinitions", id, "getDefinition"] if post => {
            items::get_definition(state, r, ws, id)
        }
        ["items" | "sparkJobDefinitions", id, "updateDefinition"] if post => {
            items::update_definition(state, r, ws, id)
        }
        // Run on demand: the SJD form, the generic form, and the legacy query form.
        [
            "sparkJobDefinitions" | "items",
            id,
            "jobs",
            job_type,
            "instances",
        ] if post && *job_type != "instances" => jobs::run(state, r, ws, id, job_type),
        ["items", id, "jobs", "instances"] if post => {
            let job_type = r.query.get("jobType").unwrap_or("").to_owned();
            jobs::run(state, r, ws, id, &job_type)
        }
        ["items", id, "jobs", "instances"] if get => jobs::list_instances(state, r, ws, id),
        ["items", id, "jobs", "instances", jid] if get => jobs::get_instance(state, r, ws, id, jid),
        ["items", id, "jobs", "instances", jid, "cancel"] if post => {
            jobs::cancel(state, r, ws, id, jid)
        }
        ["sparkJobDefinitions", id, "livySessions"] if get => {
            jobs::list_livy_sessions(state, r, ws, id)
        }
        ["sparkJobDefinitions", id, "livySessions", livy] if get => {
            jobs::get_livy_session(state, r, ws, id, livy)
        }
        [
            "sparkJobDefinitions",
            id,
            "livySessions",
            livy,
            "applications",
            app,
            "logs",
        ] if get => jobs::driver_log(state, r, ws, id, livy, app).await,
        _ => Err(endpoint_not_found(r)),
    }
}

// ---- helpers shared by the submodules -------------------------------------------

/// Everything but RFC 3986 unreserved characters.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(crate) fn enc(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

pub(crate) fn bad_input(msg: impl Into<std::borrow::Cow<'static, str>>) -> ServiceError {
    ServiceError::new(StatusCode::BAD_REQUEST, "InvalidInput", msg)
}

/// A query parameter with a value the Fabric side cannot use.
pub(crate) fn bad_query(e: BadQuery) -> ServiceError {
    invalid_parameter(&e.key, &e.value)
}

pub(crate) fn invalid_parameter(key: &str, value: &str) -> ServiceError {
    ServiceError::new(
        StatusCode::BAD_REQUEST,
        "InvalidParameter",
        format!("The value '{value}' of parameter '{key}' is not valid."),
    )
}

fn endpoint_not_found(r: &Req) -> ServiceError {
    ServiceError::new(
        StatusCode::NOT_FOUND,
        "EndpointNotFound",
        format!(
            "The requested endpoint {} {} was not found.",
            r.method, r.raw_path
        ),
    )
}

/// Ids in Fabric paths are GUIDs. A name where a GUID belongs is a client bug; the
/// real service's answer is UNCONFIRMED, we answer 400 `InvalidInput`.
pub(crate) fn require_guid(what: &str, s: &str) -> Result<()> {
    if ids::is_guid(s) {
        Ok(())
    } else {
        Err(bad_input(format!(
            "The {what} id '{s}' is not a valid GUID."
        )))
    }
}

/// A fresh random-looking GUID.
pub(crate) fn new_id(state: &State) -> String {
    state.next_request_id()
}

/// `2023-04-22T06:35:00.7812154`: job instance (and LRO) timestamps, 7 fractional
/// digits and no zone suffix, as the real service writes them.
pub(crate) fn fabric_time(ns: u64) -> String {
    let mut s = time::iso8601_7(ns);
    s.pop();
    s
}

/// `2025-01-31T15:37:30.000Z`: Livy session timestamps (SPEC examples).
pub(crate) fn livy_time(ns: u64) -> String {
    let s = time::iso8601_7(ns);
    format!("{}Z", &s[..23])
}

pub(crate) fn json_response(status: StatusCode, v: &Value) -> Response {
    let body = v.to_string();
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

pub(crate) fn empty_response(status: StatusCode) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    resp
}

pub(crate) fn set_header(resp: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

/// Token kind of Fabric list continuations.
const TOKEN_FABRIC: u8 = b'F';

/// One page of `items` as `{value, continuationToken, continuationUri}`. The token is
/// an offset bound to the listing's path; in the body it is already percent-encoded,
/// as in the SPEC examples (`"LDEsMTAwMDAwLDA%3D"`), so a client may send it back
/// as-is or encoded once more: both are accepted. Anything else is 400
/// `InvalidContinuationToken`.
pub(crate) fn paginate(state: &State, r: &Req, items: Vec<Value>) -> Result<Response> {
    let page = state.page_size.max(1);
    let bind = r.raw_path.trim_end_matches('/');
    let start = match r.query.get("continuationToken") {
        None => 0,
        Some(t) => {
            let payload = token::decode_token(TOKEN_FABRIC, t)
                .or_else(|| {
                    let once = percent_decode_str(t).decode_utf8().ok()?;
                    token::decode_token(TOKEN_FABRIC, &once)
                })
                .ok_or_else(invalid_token)?;
            let (offset, path) = payload.split_once('\n').ok_or_else(invalid_token)?;
            if path != bind {
                return Err(invalid_token());
            }
            offset.parse::<usize>().map_err(|_| invalid_token())?
        }
    };
    let total = items.len();
    let end = start.saturating_add(page).min(total);
    let value: Vec<Value> = items
        .into_iter()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect();
    let mut body = serde_json::json!({ "value": value });
    if end < total {
        let token = enc(&token::encode_token(
            TOKEN_FABRIC,
            &format!("{end}\n{bind}"),
        ));
        let mut uri = format!("{}{}?", r.base, r.raw_path);
        for (k, v) in r.query.pairs() {
            if !k.eq_ignore_ascii_case("continuationToken") {
                uri.push_str(&format!("{}={}&", enc(k), enc(v)));
            }
        }
        uri.push_str(&format!("continuationToken={token}"));
        body["continuationToken"] = Value::String(token);
        body["continuationUri"] = Value::String(uri);
    }
    Ok(json_response(StatusCode::OK, &body))
}

fn invalid_token() -> ServiceError {
    ServiceError::new(
        StatusCode::BAD_REQUEST,
        "InvalidContinuationToken",
        "The continuation token is not valid.",
    )
}
