//! Running a Spark job definition and following the run: submit, poll, cancel, driver logs.
//!
//! A run is a *job instance*, not a long-running operation: the `202` of run-on-demand
//! carries `Location: …/jobs/instances/{id}` (the id is its last path segment) and a
//! `Retry-After` to wait before the first poll. Polling ([`FabricClient::wait_for_job`])
//! never comes sooner than the service asked, treats 404 / `JobInstanceNotFound` during the
//! first seconds after the submit as "not visible yet", rides out throttled answers (429s,
//! bodies without `status`), keeps going on statuses it does not know (and reports them),
//! and stops on the four terminal states of [`TerminalState`], of which only `Completed` is
//! success. Logs come from the run's Livy session (matched by `jobInstanceId`).

use std::time::{Duration, Instant};

use reqwest::Method;

use super::client::{EXECUTOR, FabricClient, Op, VIEWER, parse_json, retry_after, seg};
use super::error::FabricError;
use super::items::is_not_found;
use super::model::{
    ExecutionData, Item, JobInstance, JobStatus, LivySession, TerminalState, Workspace, is_guid,
};
use super::sjd::no_capacity_if_unassigned;
use crate::http::Replay;

/// Which job instance: workspace, item (the SJD) and instance ids, plus the item's name for
/// messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRef {
    pub workspace_id: String,
    pub item_id: String,
    pub item_name: String,
    pub job_id: String,
}

impl JobRef {
    pub fn new(ws: &Workspace, sjd: &Item, job_id: &str) -> Self {
        Self {
            workspace_id: ws.id.clone(),
            item_id: sjd.id.clone(),
            item_name: sjd.display_name.clone(),
            job_id: job_id.to_string(),
        }
    }

    fn instance_path(&self) -> String {
        format!(
            "workspaces/{}/items/{}/jobs/instances/{}",
            seg(&self.workspace_id),
            seg(&self.item_id),
            seg(&self.job_id)
        )
    }
}

/// A submitted run.
#[derive(Debug, Clone)]
pub struct JobSubmission {
    pub job: JobRef,
    /// The `Location` the service answered with.
    pub location: Option<String>,
    /// How long the service asked us to wait before the first poll.
    pub retry_after: Option<Duration>,
    /// When the submit was answered (the "not visible yet" grace counts from here).
    pub submitted_at: Instant,
    /// True when the instance is known to exist already (no "not visible yet" grace).
    pub known_visible: bool,
}

impl JobSubmission {
    /// Follows a job submitted earlier (by another process): polls may start at once.
    pub fn existing(job: JobRef) -> Self {
        Self {
            job,
            location: None,
            retry_after: Some(Duration::ZERO),
            submitted_at: Instant::now(),
            known_visible: true,
        }
    }
}

/// What one poll of a job instance said.
#[derive(Debug, Clone, PartialEq)]
pub enum JobPoll {
    /// The instance, with a status (known or not).
    Status(JobInstance),
    /// 404 / `JobInstanceNotFound`: normal for a moment after the submit.
    NotVisibleYet,
    /// An answer without a `status` (a throttled body): says nothing about the job.
    NoStatus,
    /// 429 (or 430) after the HTTP layer's own retries.
    Throttled,
    /// A server error or broken connection after the HTTP layer's own retries.
    Unavailable(String),
}

/// One poll, as reported to a [`JobReporter`].
#[derive(Debug)]
pub struct PollRecord<'a> {
    /// When the poll was sent.
    pub sent_at: Instant,
    /// Time since the submit was answered.
    pub since_submit: Duration,
    pub poll: &'a JobPoll,
    /// The wait the answer asked for before the next poll.
    pub retry_after: Option<Duration>,
}

/// Receives every poll of [`FabricClient::wait_for_job`] (the CLI draws status lines; tests
/// check timing). The library itself never prints.
pub trait JobReporter {
    fn polled(&mut self, record: &PollRecord<'_>);
}

impl JobReporter for () {
    fn polled(&mut self, _: &PollRecord<'_>) {}
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub state: TerminalState,
    pub instance: JobInstance,
    /// Time from the submit (or from the start of the wait) to the terminal answer.
    pub elapsed: Duration,
    pub polls: u32,
}

impl JobOutcome {
    /// The service's `failureReason`, as one line, when it gave one.
    pub fn failure_message(&self) -> Option<String> {
        self.instance
            .failure_reason
            .as_ref()
            .and_then(|r| r.describe())
    }
}

/// What a cancel request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The service accepted the cancel; poll until the job reaches a terminal state.
    Requested,
    /// The job had already finished (`JobAlreadyCompleted`): nothing to do.
    AlreadyCompleted,
}

/// Which driver log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Stdout,
    Stderr,
}

impl LogKind {
    pub fn file_name(self) -> &'static str {
        match self {
            LogKind::Stdout => "stdout",
            LogKind::Stderr => "stderr",
        }
    }
}

impl FabricClient {
    /// Runs the SJD once (`executionData` overrides the definition for this run only).
    pub async fn run_sjd(
        &self,
        ws: &Workspace,
        sjd: &Item,
        execution: Option<&ExecutionData>,
    ) -> Result<JobSubmission, FabricError> {
        let op = Op::new(
            format!("run Spark job definition `{}`", sjd.display_name),
            EXECUTOR,
        )
        .on_capacity(&ws.display_name);
        let url = self.url(&format!(
            "workspaces/{}/sparkJobDefinitions/{}/jobs/sparkjob/instances",
            seg(&ws.id),
            seg(&sjd.id)
        ));
        let body = execution.map(|e| serde_json::json!({ "executionData": e }));
        // A lost answer must not start a second run: replayed only when refused outright.
        let sent = self
            .send_replay(Replay::NotIdempotent, Method::POST, &url, body.as_ref())
            .await
            .map_err(|e| op.fail(e))
            .map_err(|e| no_capacity_if_unassigned(ws, e))?;
        let submitted_at = Instant::now();
        let headers = sent.response.headers();
        let location = headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let wait = retry_after(headers);
        let job_id = match location.as_deref().and_then(job_id_from_location) {
            Some(id) => id,
            None => self.newest_active_instance(ws, sjd).await?.ok_or_else(|| {
                op.bad(format!(
                    "no job instance id in the Location header ({})",
                    location.as_deref().unwrap_or("absent")
                ))
            })?,
        };
        Ok(JobSubmission {
            job: JobRef::new(ws, sjd, &job_id),
            location,
            retry_after: wait,
            submitted_at,
            known_visible: false,
        })
    }

    /// The newest instance still running or queued (when a `Location` names no instance).
    async fn newest_active_instance(
        &self,
        ws: &Workspace,
        sjd: &Item,
    ) -> Result<Option<String>, FabricError> {
        let op = Op::new(
            format!(
                "list the runs of Spark job definition `{}`",
                sjd.display_name
            ),
            VIEWER,
        );
        let url = self.url(&format!(
            "workspaces/{}/items/{}/jobs/instances",
            seg(&ws.id),
            seg(&sjd.id)
        ));
        let all: Vec<JobInstance> = self.list_all(&url, &op).await?;
        Ok(all
            .into_iter()
            .filter(|j| {
                matches!(
                    j.status,
                    Some(JobStatus::NotStarted) | Some(JobStatus::InProgress)
                )
            })
            .max_by_key(|j| j.start_time)
            .and_then(|j| j.id))
    }

    /// One poll of a job instance, classified; the `Retry-After` of the answer.
    pub async fn poll_job(&self, job: &JobRef) -> Result<(JobPoll, Option<Duration>), FabricError> {
        let op = Op::new(
            format!("read job instance {} of `{}`", job.job_id, job.item_name),
            VIEWER,
        );
        let url = self.url(&job.instance_path());
        match self.send_raw(Method::GET, &url, None).await {
            Ok(sent) => {
                let wait = retry_after(sent.response.headers());
                let body = sent.response.bytes().await.unwrap_or_default();
                let poll = match parse_json::<JobInstance>(&body, &op) {
                    Ok(instance) if instance.status.is_some() => JobPoll::Status(instance),
                    _ => JobPoll::NoStatus,
                };
                Ok((poll, wait))
            }
            Err(e)
                if is_not_found(&e)
                    || e.code()
                        .is_some_and(|c| c.eq_ignore_ascii_case("JobInstanceNotFound")) =>
            {
                Ok((JobPoll::NotVisibleYet, e.retry_after()))
            }
            Err(e) if matches!(e.status(), Some(429 | 430)) => {
                Ok((JobPoll::Throttled, e.retry_after()))
            }
            Err(e)
                if e.status().is_some_and(|s| s >= 500)
                    || matches!(e, crate::http::HttpError::Transport { .. }) =>
            {
                Ok((JobPoll::Unavailable(e.to_string()), None))
            }
            Err(e) => Err(op.fail(e)),
        }
    }

    /// The job instance now; a missing one is [`FabricError::JobNotFound`].
    pub async fn get_job(&self, job: &JobRef) -> Result<JobInstance, FabricError> {
        match self.poll_job(job).await? {
            (JobPoll::Status(instance), _) => Ok(instance),
            (JobPoll::NotVisibleYet, _) => Err(FabricError::JobNotFound {
                item: job.item_name.clone(),
                job: job.job_id.clone(),
            }),
            (other, _) => Err(FabricError::BadResponse {
                what: format!("read job instance {}", job.job_id),
                message: format!("no status in the answer ({other:?})"),
            }),
        }
    }

    /// Polls until the job reaches a terminal state, honouring every `Retry-After`.
    /// `timeout` counts from the submit; on expiry the job is left running
    /// ([`FabricError::JobTimeout`]) — the caller decides whether to cancel it.
    pub async fn wait_for_job(
        &self,
        submission: &JobSubmission,
        timeout: Option<Duration>,
        reporter: &mut dyn JobReporter,
    ) -> Result<JobOutcome, FabricError> {
        let settings = &self.poll;
        let job = &submission.job;
        let start = submission.submitted_at;
        let mut wait = submission
            .retry_after
            .unwrap_or(settings.not_visible_interval);
        let mut failures = 0u32;
        let mut polls = 0u32;
        loop {
            let wait_for = wait.max(settings.min_interval);
            if let Some(limit) = timeout
                && start.elapsed() + wait_for > limit
            {
                tokio::time::sleep(limit.saturating_sub(start.elapsed())).await;
                return Err(FabricError::JobTimeout {
                    job: job.job_id.clone(),
                    waited: start.elapsed(),
                });
            }
            tokio::time::sleep(wait_for).await;
            let sent_at = Instant::now();
            let (poll, asked) = self.poll_job(job).await?;
            polls += 1;
            reporter.polled(&PollRecord {
                sent_at,
                since_submit: sent_at.saturating_duration_since(start),
                poll: &poll,
                retry_after: asked,
            });
            wait = match poll {
                JobPoll::Status(instance) => {
                    failures = 0;
                    if let Some(state) = instance.status.as_ref().and_then(JobStatus::terminal) {
                        return Ok(JobOutcome {
                            state,
                            instance,
                            elapsed: start.elapsed(),
                            polls,
                        });
                    }
                    asked.unwrap_or(settings.default_interval)
                }
                JobPoll::NotVisibleYet => {
                    if submission.known_visible
                        || sent_at.saturating_duration_since(start) > settings.not_visible_grace
                    {
                        return Err(FabricError::JobNotFound {
                            item: job.item_name.clone(),
                            job: job.job_id.clone(),
                        });
                    }
                    // The 404's own Retry-After, else the submit's.
                    asked
                        .or(submission.retry_after)
                        .unwrap_or(settings.not_visible_interval)
                }
                other @ (JobPoll::NoStatus | JobPoll::Throttled | JobPoll::Unavailable(_)) => {
                    failures += 1;
                    if failures > settings.max_poll_failures {
                        return Err(FabricError::BadResponse {
                            what: format!("poll job instance {}", job.job_id),
                            message: format!(
                                "{failures} polls in a row without a status, the last: {other:?}"
                            ),
                        });
                    }
                    asked.unwrap_or(settings.default_interval)
                }
            };
        }
    }

    /// Asks the service to cancel the run. Poll afterwards until it is terminal. Right after
    /// the submit the instance may not be visible yet: a 404 then is retried until the
    /// "not visible yet" grace is over.
    pub async fn cancel_job(
        &self,
        submission: &JobSubmission,
    ) -> Result<CancelOutcome, FabricError> {
        let job = &submission.job;
        let op = Op::new(
            format!("cancel job instance {} of `{}`", job.job_id, job.item_name),
            EXECUTOR,
        );
        let url = self.url(&format!("{}/cancel", job.instance_path()));
        loop {
            match self.send_raw(Method::POST, &url, None).await {
                Ok(_) => return Ok(CancelOutcome::Requested),
                Err(e)
                    if e.code()
                        .is_some_and(|c| c.eq_ignore_ascii_case("JobAlreadyCompleted")) =>
                {
                    return Ok(CancelOutcome::AlreadyCompleted);
                }
                Err(e)
                    if is_not_found(&e)
                        || e.code()
                            .is_some_and(|c| c.eq_ignore_ascii_case("JobInstanceNotFound")) =>
                {
                    let in_grace = !submission.known_visible
                        && submission.submitted_at.elapsed() < self.poll.not_visible_grace;
                    if !in_grace {
                        return Err(FabricError::JobNotFound {
                            item: job.item_name.clone(),
                            job: job.job_id.clone(),
                        });
                    }
                    tokio::time::sleep(self.poll.not_visible_interval.max(self.poll.min_interval))
                        .await;
                }
                Err(e) => return Err(op.fail(e)),
            }
        }
    }

    /// The Livy sessions (Spark applications) of an SJD.
    pub async fn list_livy_sessions(
        &self,
        workspace_id: &str,
        sjd_id: &str,
    ) -> Result<Vec<LivySession>, FabricError> {
        let op = Op::new(
            "list the Spark sessions of the Spark job definition",
            VIEWER,
        );
        let url = self.url(&format!(
            "workspaces/{}/sparkJobDefinitions/{}/livySessions",
            seg(workspace_id),
            seg(sjd_id)
        ));
        self.list_all(&url, &op).await
    }

    /// The Livy session of a run (its latest attempt), if the service has one yet.
    pub async fn find_livy_session(
        &self,
        job: &JobRef,
    ) -> Result<Option<LivySession>, FabricError> {
        let sessions = self
            .list_livy_sessions(&job.workspace_id, &job.item_id)
            .await?;
        Ok(sessions
            .into_iter()
            .filter(|s| {
                s.job_instance_id
                    .as_deref()
                    .is_some_and(|id| id.eq_ignore_ascii_case(&job.job_id))
            })
            .max_by_key(|s| (s.attempt_number.unwrap_or(0), s.submitted_date_time)))
    }

    /// The driver's stdout or stderr of a run's Spark application.
    pub async fn driver_log(
        &self,
        job: &JobRef,
        session: &LivySession,
        kind: LogKind,
    ) -> Result<String, FabricError> {
        let op = Op::new(
            format!(
                "read the driver {} of job instance {}",
                kind.file_name(),
                job.job_id
            ),
            VIEWER,
        );
        let livy = session
            .livy_id
            .as_deref()
            .ok_or_else(|| op.bad("the Spark session has no livyId"))?;
        let app = session
            .spark_application_id
            .as_deref()
            .ok_or_else(|| op.bad("the Spark session has no sparkApplicationId yet"))?;
        let url = self.url(&format!(
            "workspaces/{}/sparkJobDefinitions/{}/livySessions/{}/applications/{}/logs?type=driver&fileName={}",
            seg(&job.workspace_id),
            seg(&job.item_id),
            seg(livy),
            seg(app),
            kind.file_name()
        ));
        let sent = self.send(Method::GET, &url, None, &op).await?;
        let body = sent
            .response
            .bytes()
            .await
            .map_err(|e| op.bad(format!("the body could not be read: {e}")))?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

/// The job instance id in a run's `Location`: the last path segment, query stripped, when it
/// is a GUID (one documented example ends in `/jobs/instances?jobType=…`, which names none).
pub fn job_id_from_location(location: &str) -> Option<String> {
    let path = location.split(['?', '#']).next().unwrap_or("");
    let last = path.trim_end_matches('/').rsplit('/').next()?;
    is_guid(last).then(|| last.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_from_locations() {
        let id = "4b218778-e7a5-4d73-8187-f10824047715";
        let base = "https://api.fabric.microsoft.com/v1/workspaces/w/items/i/jobs/instances";
        assert_eq!(
            job_id_from_location(&format!("{base}/{id}")).as_deref(),
            Some(id)
        );
        assert_eq!(
            job_id_from_location(&format!("{base}/{id}?x=1")).as_deref(),
            Some(id)
        );
        assert_eq!(
            job_id_from_location(&format!("{base}/{id}/")).as_deref(),
            Some(id)
        );
        assert_eq!(
            job_id_from_location(&format!("{base}?jobType=Execute")),
            None
        );
        assert_eq!(job_id_from_location(""), None);
    }

    #[test]
    fn deduped_outcome_is_not_success_and_says_not_run() {
        let instance: JobInstance =
            serde_json::from_str(r#"{"status":"Deduped","failureReason":null}"#).unwrap();
        let state = instance
            .status
            .as_ref()
            .and_then(JobStatus::terminal)
            .unwrap();
        assert_eq!(state, TerminalState::Deduped);
        assert!(!state.is_success());
        assert!(state.meaning().starts_with("not run"));
    }
}
