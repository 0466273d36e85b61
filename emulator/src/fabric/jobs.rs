//! The job scheduler for SJDs: run on demand (202 + `Location` of the job instance,
//! `Retry-After`, no `x-ms-operation-id`), get/list job instances, cancel, and the Livy
//! session and driver-log endpoints that expose each run's stdout/stderr.
//!
//! A job instance answers 404 `JobInstanceNotFound` until `Config::job_visible_after_ms`
//! after its submission, like the real service right after submit. A second run while
//! one is active on the same SJD is `Deduped` at once. Every run that is not deduped has
//! one Livy session whose driver logs are the process's captured output.
//!
//! UNCONFIRMED choices: cancelling a finished job answers 400 `JobAlreadyCompleted`; a
//! deduped instance carries `failureReason` `JobInstanceStatusDeduped`, a cancelled one
//! `null` (SLL #375), a failed one `JobInstanceStatusFailed` with the last stderr line;
//! a run of something that is not an SJD, or with another job type, answers 400
//! `InvalidJobType`; `parameters` in the run body answers 400 `FeatureNotAvailable`;
//! a wrongly typed `executionData` answers 400 `InvalidInput`; the NotStarted phase is
//! short (the process starts at submission: `NotStarted` until it exists, then
//! `InProgress`; capacity queueing is not emulated).
//!
//! Fault knob (`Emulator::fail_runs_of`): runs of a named SJD fail right after the submit,
//! with the given reason, as a driver that could not start does.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::items::{self, Ws, find_sjd, require_capacity};
use super::runner::{self, Exit, Logs, Overrides};
use super::{
    Req, bad_input, bad_query, empty_response, fabric_time, invalid_parameter, json_response,
    livy_time, new_id, paginate, require_guid, set_header,
};
use crate::error::{Result, ServiceError};
use crate::ids;
use crate::lock::lock;
use crate::state::State;
use crate::time;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobStatus {
    NotStarted,
    InProgress,
    Completed,
    Failed,
    Cancelled,
    Deduped,
}

impl JobStatus {
    fn as_str(self) -> &'static str {
        match self {
            JobStatus::NotStarted => "NotStarted",
            JobStatus::InProgress => "InProgress",
            JobStatus::Completed => "Completed",
            JobStatus::Failed => "Failed",
            JobStatus::Cancelled => "Cancelled",
            JobStatus::Deduped => "Deduped",
        }
    }

    pub fn is_active(self) -> bool {
        matches!(self, JobStatus::NotStarted | JobStatus::InProgress)
    }

    fn livy_state(self) -> &'static str {
        match self {
            JobStatus::NotStarted => "NotStarted",
            JobStatus::InProgress => "InProgress",
            JobStatus::Completed => "Succeeded",
            JobStatus::Failed => "Failed",
            JobStatus::Cancelled => "Cancelled",
            JobStatus::Deduped => "Unknown",
        }
    }
}

/// A run's Livy session and where its driver logs are.
#[derive(Debug, Clone)]
pub(crate) struct Livy {
    pub livy_id: String,
    pub app_id: String,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub id: String,
    pub item_id: String,
    pub item_name: String,
    pub status: JobStatus,
    pub root_activity_id: String,
    pub submit_ns: u64,
    pub end_ns: Option<u64>,
    pub failure: Option<(&'static str, String)>,
    pub livy: Option<Livy>,
    /// The process (and process group) id while the driver runs.
    pub pid: Option<i32>,
    pub cancel_requested: bool,
}

fn invalid_job_type(t: &str) -> ServiceError {
    ServiceError::new(
        StatusCode::BAD_REQUEST,
        "InvalidJobType",
        format!("The job type '{t}' is not valid for this item."),
    )
}

fn instance_not_found() -> ServiceError {
    ServiceError::new(
        StatusCode::NOT_FOUND,
        "JobInstanceNotFound",
        "The requested job instance was not found.",
    )
}

fn parse_overrides(r: &Req) -> Result<Overrides> {
    let Some(body) = r.json()? else {
        return Ok(Overrides::default());
    };
    if body.contains_key("parameters") {
        return Err(ServiceError::new(
            StatusCode::BAD_REQUEST,
            "FeatureNotAvailable",
            "Job parameters are not supported for Spark Job Definitions.",
        ));
    }
    let data = match body.get("executionData") {
        None | Some(Value::Null) => return Ok(Overrides::default()),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(bad_input("executionData must be an object.")),
    };
    let string = |m: &Map<String, Value>, k: &str| -> Result<Option<String>> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad_input(format!("executionData.{k} must be a string."))),
        }
    };
    let mut o = Overrides {
        executable_file: string(data, "executableFile")?,
        command_line_arguments: string(data, "commandLineArguments")?,
        default_lakehouse: None,
    };
    string(data, "mainClass")?;
    match data.get("defaultLakehouseId") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            let ws = string(m, "workspaceId")?;
            let item = string(m, "itemId")?;
            match (ws, item) {
                (Some(ws), Some(item)) if ids::is_guid(&ws) && ids::is_guid(&item) => {
                    o.default_lakehouse = Some((ws, item));
                }
                _ => {
                    return Err(bad_input(
                        "executionData.defaultLakehouseId needs GUID workspaceId and itemId.",
                    ));
                }
            }
        }
        Some(_) => {
            return Err(bad_input(
                "executionData.defaultLakehouseId must be an item reference object {referenceType, workspaceId, itemId}.",
            ));
        }
    }
    Ok(o)
}

fn instance_url(state: &State, r: &Req, item_id: &str, jid: &str) -> String {
    format!(
        "{}/v1/workspaces/{}/items/{}/jobs/instances/{}",
        r.base, state.workspace_id, item_id, jid
    )
}

fn retry_after(state: &State) -> String {
    state.fabric.retry_after_secs.to_string()
}

/// Run on demand.
pub(crate) fn run(
    state: &Arc<State>,
    r: &Req,
    ws: Ws,
    id: &str,
    job_type: &str,
) -> Result<Response> {
    require_guid("item", id)?;
    if items::not_supported_for_item(state, ws, id).is_some() {
        return Err(invalid_job_type(job_type));
    }
    let sjd = find_sjd(state, ws, id)?;
    if !job_type.eq_ignore_ascii_case("sparkjob") {
        return Err(invalid_job_type(job_type));
    }
    require_capacity(state)?;
    let overrides = parse_overrides(r)?;

    let now = time::now_nanos();
    let jid = new_id(state);
    let mut job = Job {
        id: jid.clone(),
        item_id: sjd.id.clone(),
        item_name: sjd.display_name.clone(),
        status: JobStatus::NotStarted,
        root_activity_id: new_id(state),
        submit_ns: now,
        end_ns: None,
        failure: None,
        livy: None,
        pid: None,
        cancel_requested: false,
    };
    let deduped = {
        let mut jobs = lock(&state.fabric.jobs);
        let active = jobs
            .iter()
            .any(|j| j.item_id == sjd.id && j.status.is_active());
        if active {
            job.status = JobStatus::Deduped;
            job.end_ns = Some(now);
            job.failure = Some((
                "JobInstanceStatusDeduped",
                "Another instance of this job was already running, so this one was skipped."
                    .to_owned(),
            ));
        } else {
            let dir = state.fabric.dir.join("jobs").join(&jid);
            let seq = jobs.iter().filter(|j| j.livy.is_some()).count() + 1;
            job.livy = Some(Livy {
                livy_id: new_id(state),
                app_id: format!("application_{}_{seq:04}", state.fabric.app_epoch_ms),
                stdout: dir.join("stdout"),
                stderr: dir.join("stderr"),
            });
        }
        jobs.push(job.clone());
        active
    };
    if !deduped && let Some(livy) = &job.livy {
        let logs = Logs {
            stdout: &livy.stdout,
            stderr: &livy.stderr,
        };
        let knob = lock(&state.fabric.failing_sjds)
            .get(&sjd.display_name)
            .cloned();
        let started = match knob {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
        .and_then(|()| runner::plan(state, &sjd, &overrides, &jid, logs))
        .and_then(|plan| {
            runner::spawn(&state.fabric.python, &plan, &state.workspace_id)
                .map(|(child, pid)| (child, pid, plan))
        });
        match started {
            Ok((child, pid, _plan)) => track(state, &jid, child, pid, livy.stderr.clone()),
            Err(reason) => {
                let _ = std::fs::create_dir_all(livy.stderr.parent().unwrap_or(&state.fabric.dir));
                let _ = std::fs::write(&livy.stdout, b"");
                let _ = std::fs::write(&livy.stderr, format!("{reason}\n"));
                finish(state, &jid, JobStatus::Failed, Some(reason));
            }
        }
    }
    let mut resp = empty_response(StatusCode::ACCEPTED);
    set_header(
        &mut resp,
        "location",
        &instance_url(state, r, &sjd.id, &jid),
    );
    set_header(&mut resp, "retry-after", &retry_after(state));
    Ok(resp)
}

/// Marks a started driver `InProgress` and waits for it in the background; its end
/// decides the job's state (`Cancelled` when a cancel was asked for).
fn track(
    state: &Arc<State>,
    jid: &str,
    child: tokio::process::Child,
    pid: i32,
    stderr: std::path::PathBuf,
) {
    {
        let mut jobs = lock(&state.fabric.jobs);
        match jobs.iter_mut().find(|j| j.id == jid) {
            Some(j) if j.status == JobStatus::NotStarted => {
                j.status = JobStatus::InProgress;
                j.pid = Some(pid);
            }
            // Cancelled while starting: the waiter below reaps it.
            _ => runner::kill_group(pid),
        }
    }
    let state = state.clone();
    let jid = jid.to_owned();
    tokio::spawn(async move {
        let exit = runner::wait(child, pid, &stderr).await;
        let cancelled = lock(&state.fabric.jobs)
            .iter()
            .any(|j| j.id == jid && j.cancel_requested);
        let (status, reason) = match exit {
            _ if cancelled => (JobStatus::Cancelled, None),
            Exit::Success => (JobStatus::Completed, None),
            Exit::Failure(why) => (JobStatus::Failed, Some(why)),
        };
        finish(&state, &jid, status, reason);
    });
}

/// Moves a job to a terminal state (once).
pub(crate) fn finish(state: &State, jid: &str, status: JobStatus, reason: Option<String>) {
    let mut jobs = lock(&state.fabric.jobs);
    if let Some(j) = jobs.iter_mut().find(|j| j.id == jid)
        && j.status.is_active()
    {
        j.status = status;
        j.end_ns = Some(time::now_nanos());
        j.pid = None;
        j.failure = match status {
            JobStatus::Failed => Some((
                "JobInstanceStatusFailed",
                reason.unwrap_or_else(|| "Job instance failed without detail error.".to_owned()),
            )),
            _ => None,
        };
    }
}

fn job_json(j: &Job) -> Value {
    json!({
        "id": j.id,
        "itemId": j.item_id,
        "jobType": "sparkjob",
        "invokeType": "Manual",
        "status": j.status.as_str(),
        "rootActivityId": j.root_activity_id,
        "startTimeUtc": fabric_time(j.submit_ns),
        "endTimeUtc": j.end_ns.map(fabric_time),
        "failureReason": j.failure.as_ref().map(|(code, msg)| json!({
            "requestId": j.root_activity_id,
            "errorCode": code,
            "message": msg,
        })),
    })
}

fn visible(state: &State, j: &Job, now: u64) -> bool {
    now.saturating_sub(j.submit_ns) >= state.fabric.visible_after.as_nanos() as u64
}

/// A visible job of `item_id`, cloned.
fn find_job(state: &State, item_id: &str, jid: &str) -> Result<Job> {
    let now = time::now_nanos();
    lock(&state.fabric.jobs)
        .iter()
        .find(|j| j.id.eq_ignore_ascii_case(jid) && j.item_id.eq_ignore_ascii_case(item_id))
        .filter(|j| visible(state, j, now))
        .cloned()
        .ok_or_else(instance_not_found)
}

pub(crate) fn get_instance(
    state: &State,
    _r: &Req,
    ws: Ws,
    id: &str,
    jid: &str,
) -> Result<Response> {
    let ra = retry_after(state);
    let found = (|| {
        require_guid("item", id)?;
        require_guid("job instance", jid)?;
        if ws != Ws::Main {
            return Err(items::item_not_found());
        }
        find_job(state, id, jid)
    })();
    match found {
        Ok(j) => {
            let mut resp = json_response(StatusCode::OK, &job_json(&j));
            set_header(&mut resp, "retry-after", &ra);
            Ok(resp)
        }
        Err(e) => Err(e.with_header("retry-after", &ra)),
    }
}

pub(crate) fn list_instances(state: &State, r: &Req, ws: Ws, id: &str) -> Result<Response> {
    require_guid("item", id)?;
    if items::not_supported_for_item(state, ws, id).is_none() {
        find_sjd(state, ws, id)?;
    }
    let now = time::now_nanos();
    let all: Vec<Value> = lock(&state.fabric.jobs)
        .iter()
        .rev()
        .filter(|j| j.item_id.eq_ignore_ascii_case(id) && visible(state, j, now))
        .map(job_json)
        .collect();
    paginate(state, r, all)
}

pub(crate) fn cancel(state: &State, r: &Req, ws: Ws, id: &str, jid: &str) -> Result<Response> {
    require_guid("item", id)?;
    require_guid("job instance", jid)?;
    if ws != Ws::Main {
        return Err(items::item_not_found());
    }
    let job = find_job(state, id, jid)?;
    {
        let mut jobs = lock(&state.fabric.jobs);
        let j = jobs
            .iter_mut()
            .find(|j| j.id == job.id)
            .ok_or_else(instance_not_found)?;
        if !j.status.is_active() {
            return Err(ServiceError::new(
                StatusCode::BAD_REQUEST,
                "JobAlreadyCompleted",
                "The job instance has already completed.",
            ));
        }
        j.cancel_requested = true;
        match j.pid {
            // The waiter marks the job Cancelled once the process is reaped.
            Some(pid) => runner::kill_group(pid),
            None => {
                j.status = JobStatus::Cancelled;
                j.end_ns = Some(time::now_nanos());
            }
        }
    }
    let mut resp = empty_response(StatusCode::ACCEPTED);
    set_header(
        &mut resp,
        "location",
        &instance_url(state, r, &job.item_id, &job.id),
    );
    set_header(&mut resp, "retry-after", &retry_after(state));
    Ok(resp)
}

// ---- Livy sessions and driver logs -------------------------------------------------

fn livy_json(state: &State, j: &Job, l: &Livy) -> Value {
    let now = time::now_nanos();
    let end = j.end_ns.unwrap_or(now);
    let secs = end.saturating_sub(j.submit_ns) as f64 / 1e9;
    let item_ref = json!({
        "referenceType": "ById",
        "workspaceId": state.workspace_id,
        "itemId": j.item_id,
    });
    json!({
        "sparkApplicationId": l.app_id,
        "state": j.status.livy_state(),
        "livyId": l.livy_id,
        "origin": "SubmittedJob",
        "attemptNumber": 1,
        "maxNumberOfAttempts": 1,
        "livyName": j.item_name,
        "submitter": {"id": ids::guid_from_name("submitter", &state.workspace_id), "type": "User"},
        "item": item_ref,
        "itemName": j.item_name,
        "itemType": "SparkJobDefinition",
        "jobType": "SparkBatch",
        "submittedDateTime": livy_time(j.submit_ns),
        "startDateTime": livy_time(j.submit_ns),
        "endDateTime": j.end_ns.map(livy_time),
        "queuedDuration": {"value": 0, "timeUnit": "Seconds"},
        "runningDuration": {"value": secs.round(), "timeUnit": "Seconds"},
        "totalDuration": {"value": secs.round(), "timeUnit": "Seconds"},
        "jobInstanceId": j.id,
        "creatorItem": item_ref,
        "cancellationReason": if j.status == JobStatus::Cancelled { json!("User cancelled the Spark batch") } else { Value::Null },
        "capacityId": items::capacity_id(state),
        "operationName": "Batch Livy Run",
        "runtimeVersion": "1.3",
        "livySessionItemResourceUri": "",
    })
}

pub(crate) fn list_livy_sessions(state: &State, r: &Req, ws: Ws, id: &str) -> Result<Response> {
    let sjd = find_sjd(state, ws, id)?;
    let all: Vec<Value> = lock(&state.fabric.jobs)
        .iter()
        .rev()
        .filter(|j| j.item_id == sjd.id)
        .filter_map(|j| j.livy.as_ref().map(|l| livy_json(state, j, l)))
        .collect();
    paginate(state, r, all)
}

fn livy_not_found() -> ServiceError {
    ServiceError::new(
        StatusCode::NOT_FOUND,
        "EntityNotFound",
        "The requested Livy session was not found.",
    )
}

fn find_livy(state: &State, item_id: &str, livy_id: &str) -> Result<(Job, Livy)> {
    lock(&state.fabric.jobs)
        .iter()
        .filter(|j| j.item_id == item_id)
        .find_map(|j| {
            j.livy
                .as_ref()
                .filter(|l| l.livy_id.eq_ignore_ascii_case(livy_id))
                .map(|l| (j.clone(), l.clone()))
        })
        .ok_or_else(livy_not_found)
}

pub(crate) fn get_livy_session(
    state: &State,
    _r: &Req,
    ws: Ws,
    id: &str,
    livy: &str,
) -> Result<Response> {
    let sjd = find_sjd(state, ws, id)?;
    require_guid("livy session", livy)?;
    let (j, l) = find_livy(state, &sjd.id, livy)?;
    Ok(json_response(StatusCode::OK, &livy_json(state, &j, &l)))
}

/// `.../applications/{appId}/logs?type=driver&fileName=stdout|stderr`, with
/// `isPartial=true&offset=&size=` ranges (honoured at any time, although the docs say
/// only while the application runs) and `meta=true`.
pub(crate) async fn driver_log(
    state: &State,
    r: &Req,
    ws: Ws,
    id: &str,
    livy: &str,
    app: &str,
) -> Result<Response> {
    let sjd = find_sjd(state, ws, id)?;
    require_guid("livy session", livy)?;
    let (j, l) = find_livy(state, &sjd.id, livy)?;
    if l.app_id != app {
        return Err(ServiceError::new(
            StatusCode::NOT_FOUND,
            "EntityNotFound",
            format!("The Spark application '{app}' was not found."),
        ));
    }
    match r.query.get("type") {
        Some(t) if t.eq_ignore_ascii_case("driver") => {}
        Some(t) => return Err(invalid_parameter("type", t)),
        None => return Err(bad_input("The query parameter 'type' is required.")),
    }
    let (path, name) = match r.query.get("fileName") {
        Some("stdout") => (&l.stdout, "stdout"),
        Some("stderr") => (&l.stderr, "stderr"),
        Some(f) => return Err(invalid_parameter("fileName", f)),
        None => return Err(bad_input("The query parameter 'fileName' is required.")),
    };
    let data = tokio::fs::read(path).await.unwrap_or_default();
    if r.query.bool("meta").map_err(bad_query)?.unwrap_or(false) {
        let modified = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map(time::nanos_since_epoch)
            .unwrap_or(j.submit_ns);
        let body = json!({
            "containerId": format!("container_{}_01_000001", l.app_id.trim_start_matches("application_")),
            "nodeId": "vm-emulator",
            "containerLogMeta": {
                "fileName": name,
                "length": data.len(),
                "lastModified": livy_time(modified),
                "containerId": "",
                "nodeId": "",
            },
        });
        return Ok(json_response(StatusCode::OK, &body));
    }
    let data = if r
        .query
        .bool("isPartial")
        .map_err(bad_query)?
        .unwrap_or(false)
    {
        let offset = r.query.u64("offset").map_err(bad_query)?.unwrap_or(0) as usize;
        let size = r
            .query
            .u64("size")
            .map_err(bad_query)?
            .map(|s| s as usize)
            .unwrap_or(usize::MAX);
        let start = offset.min(data.len());
        let end = start.saturating_add(size).min(data.len());
        data[start..end].to_vec()
    } else {
        data
    };
    let download = r
        .query
        .bool("isDownload")
        .map_err(bad_query)?
        .unwrap_or(false);
    let mut resp = Response::new(Body::from(data));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if download {
            "application/octet-stream"
        } else {
            "text/plain; charset=utf-8"
        }),
    );
    if download {
        set_header(
            &mut resp,
            "content-disposition",
            &format!("attachment; filename={name}"),
        );
    }
    Ok(resp)
}
