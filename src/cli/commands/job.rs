//! `fabric-remote job run|status|cancel|logs|list`: one Python file as a Fabric Spark job
//! definition (SJD), and its runs.
//!
//! `run --file X.py` uploads the file to the lakehouse (`Files/fabric-remote/jobs/X.py`),
//! finds or creates the SJD and points it there, submits a run, and prints the job instance
//! id and the SJD's portal page. With `--wait` it prints `[m:ss] Running...` lines and the
//! final state; exit 0 for `Completed`, 1 for `Failed`, `Cancelled` and `Deduped` (never
//! success), 2 for configuration errors. Ctrl-C (or `--timeout`) cancels the run and waits
//! for it to stop.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use fabric_remote::auth::Credentials;
use fabric_remote::dfs::DfsClient;
use fabric_remote::env::{self, Env};
use fabric_remote::fabric::{
    CancelOutcome, FabricClient, FabricError, Item, JobInstance, JobOutcome, JobRef, JobStatus,
    JobSubmission, LogKind, SjdAction, SparkJobDefinitionV1, TerminalState, Workspace, abfss_url,
    check_item_name, portal_url,
};
use fabric_remote::http::{HttpClient, RetryPolicy};
use fabric_remote::location::RemoteLocation;
use fabric_remote::run::Config;

use crate::cli::ExitStatus;
use crate::cli::args::{
    JobArgs, JobCancelArgs, JobCommand, JobInstanceArgs, JobLogsArgs, JobRunArgs, JobWhereArgs,
};
use crate::cli::console::{StatusLines, human, shell_word};
use crate::cli::diagnostics::{Report, ResultExt};

/// Where `--file` goes inside the lakehouse.
const JOBS_DIR: &str = "Files/fabric-remote/jobs";
/// The SJD name when neither `--sjd` nor `FABRIC_TEST_SPARK_JOB_NAME` is given.
const DEFAULT_SJD: &str = "dbt-fabric-tests";
/// How long a cancelled run may take to stop before we give up waiting.
const CANCEL_WAIT: Duration = Duration::from_secs(300);

pub async fn run(args: &JobArgs) -> Result<ExitStatus, Report> {
    // test.env (from the working directory upwards) under the process environment.
    let cwd = std::env::current_dir()
        .map_err(|e| Report::usage(format!("cannot read the working directory: {e}")))?;
    let env = Config::load_process(&cwd)?.env();
    match &args.command {
        JobCommand::Run(a) => run_job(a, &env).await,
        JobCommand::Status(a) => status(a, &env).await,
        JobCommand::Cancel(a) => cancel(a, &env).await,
        JobCommand::Logs(a) => logs(a, &env).await,
        JobCommand::List(a) => list(a, &env).await,
    }
}

/// The Fabric client and the HTTP client it shares with DFS.
fn clients(env: &Env) -> Result<(FabricClient, HttpClient), Report> {
    let credentials = Credentials::from_env(env)?;
    let http = HttpClient::new(credentials, RetryPolicy::default())?;
    let mut fabric = FabricClient::new(http.clone());
    if let Some(endpoint) = env.get(env::FABRIC_REMOTE_API_ENDPOINT) {
        fabric = fabric.with_endpoint(&endpoint)?;
    }
    Ok((fabric, http))
}

async fn workspace(
    fabric: &FabricClient,
    place: &JobWhereArgs,
    env: &Env,
) -> Result<Workspace, Report> {
    let name = place
        .workspace
        .clone()
        .or_else(|| env.get(env::FABRIC_TEST_WORKSPACE_ID))
        .or_else(|| env.get(env::FABRIC_TEST_WORKSPACE_NAME))
        .ok_or_else(|| {
            Report::usage(
                "no workspace given: pass --workspace NAME or set FABRIC_TEST_WORKSPACE_NAME (or FABRIC_TEST_WORKSPACE_ID)",
            )
        })?;
    Ok(fabric.resolve_workspace(&name).await?)
}

fn lakehouse_name(place: &JobWhereArgs, env: &Env) -> Option<String> {
    place
        .lakehouse
        .clone()
        .or_else(|| env.get(env::FABRIC_TEST_LAKEHOUSE_NAME))
}

fn sjd_name(given: &Option<String>, env: &Env) -> String {
    given
        .clone()
        .or_else(|| env.get(env::FABRIC_TEST_SPARK_JOB_NAME))
        .unwrap_or_else(|| DEFAULT_SJD.to_string())
}

async fn run_job(a: &JobRunArgs, env: &Env) -> Result<ExitStatus, Report> {
    let name = sjd_name(&a.sjd, env);
    // Refused before anything is uploaded (the service would answer a bare 400).
    check_item_name("Spark job definition", &name)?;
    let (fabric, http) = clients(env)?;
    let ws = workspace(&fabric, &a.place, env).await?;
    let sjd = match &a.file {
        Some(file) => {
            let lakehouse = lakehouse_name(&a.place, env).ok_or_else(|| {
                Report::usage("--file needs a lakehouse to upload to: pass --lakehouse NAME or set FABRIC_TEST_LAKEHOUSE_NAME")
            })?;
            let lake = fabric.resolve_lakehouse(&ws, &lakehouse).await?;
            let remote = upload(&http, env, &ws, &lake, file).await?;
            println!(
                "Uploaded {} to {remote} in lakehouse `{}`",
                file.display(),
                lake.display_name
            );
            let want = SparkJobDefinitionV1::python(
                &abfss_url(&ws.id, &lake.id, &remote),
                &lake.id,
                a.args.as_deref(),
            );
            let ensured = fabric.ensure_sjd(&ws, &name, &want).await?;
            match ensured.action {
                SjdAction::Created => println!("Created Spark job definition `{name}`"),
                SjdAction::Updated => println!("Pointed Spark job definition `{name}` at {remote}"),
                SjdAction::Unchanged => {}
            }
            ensured.sjd
        }
        None => {
            let sjd = fabric.resolve_sjd(&ws, &name).await?;
            retarget(&fabric, &ws, &sjd, a, env).await?;
            sjd
        }
    };
    let submission = fabric.run_sjd(&ws, &sjd, None).await?;
    println!("Job instance {}", submission.job.job_id);
    println!("Portal: {}", portal_url(&ws.id, &sjd.id));
    let _ = std::io::stdout().flush();
    if !a.wait {
        return Ok(ExitStatus::Success);
    }
    let timeout = a.timeout.map(Duration::from_secs);
    let mut lines = StatusLines::new(submission.submitted_at);
    let ended = {
        let wait = fabric.wait_for_job(&submission, timeout, &mut lines);
        tokio::select! {
            r = wait => Ended::Done(Box::new(r)),
            _ = tokio::signal::ctrl_c() => Ended::Interrupted,
        }
    };
    let outcome = match ended {
        Ended::Done(done) => match *done {
            Ok(outcome) => outcome,
            Err(FabricError::JobTimeout { waited, .. }) => {
                eprintln!(
                    "Timed out after {}: cancelling job {}",
                    human(waited),
                    submission.job.job_id
                );
                match cancel_and_wait(&fabric, &submission, &mut lines).await? {
                    Some(outcome) => outcome,
                    None => return Ok(ExitStatus::Code(130)),
                }
            }
            Err(e) => return Err(e.into()),
        },
        Ended::Interrupted => {
            eprintln!("Interrupted: cancelling job {}", submission.job.job_id);
            match cancel_and_wait(&fabric, &submission, &mut lines).await? {
                Some(outcome) => outcome,
                None => return Ok(ExitStatus::Code(130)),
            }
        }
    };
    Ok(render_outcome(&outcome, &submission.job, false))
}

enum Ended {
    Done(Box<Result<JobOutcome, FabricError>>),
    Interrupted,
}

/// Without `--file`: apply `--args` and an explicit `--lakehouse` to the existing SJD.
async fn retarget(
    fabric: &FabricClient,
    ws: &Workspace,
    sjd: &Item,
    a: &JobRunArgs,
    _env: &Env,
) -> Result<(), Report> {
    if a.args.is_none() && a.place.lakehouse.is_none() {
        return Ok(());
    }
    let have = fabric.get_sjd_content(ws, sjd).await?;
    let mut want = have.clone();
    if let Some(args) = &a.args {
        want.command_line_arguments = Some(args.clone());
    }
    if let Some(lakehouse) = &a.place.lakehouse {
        let lake = fabric.resolve_lakehouse(ws, lakehouse).await?;
        want.default_lakehouse_artifact_id = Some(lake.id);
    }
    if want.executable_file.as_deref().unwrap_or("").is_empty() {
        return Err(Report::usage(format!(
            "Spark job definition `{}` has no executable file: pass --file LOCAL_PY",
            sjd.display_name
        )));
    }
    if !want.same_target(&have) {
        fabric
            .update_sjd_definition(ws, sjd, &want.to_definition())
            .await?;
    }
    Ok(())
}

/// Uploads `file` to `Files/fabric-remote/jobs/<name>` of the lakehouse; returns that path.
async fn upload(
    http: &HttpClient,
    env: &Env,
    ws: &Workspace,
    lake: &Item,
    file: &Path,
) -> Result<String, Report> {
    let meta = std::fs::metadata(file).map_err(|e| {
        Report::caused_by(
            fabric_remote::diagnostic::Kind::Usage,
            format!("cannot read `{}`", file.display()),
            e,
        )
    })?;
    if !meta.is_file() {
        return Err(Report::usage(format!("`{}` is not a file", file.display())));
    }
    let file_name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Report::usage(format!("`{}` has no usable file name", file.display())))?;
    let remote = format!("{JOBS_DIR}/{file_name}");
    let endpoint = env.get(env::FABRIC_REMOTE_ONELAKE_ENDPOINT);
    let location = RemoteLocation::onelake_item(endpoint.as_deref(), &ws.id, &lake.id)
        .and_then(|l| l.join(&remote))
        .context("FABRIC_REMOTE_ONELAKE_ENDPOINT is not a usable endpoint")?;
    DfsClient::new(http.clone())
        .upload_file(&location, file)
        .await?;
    Ok(remote)
}

/// Cancels the run and follows it until it stops. `None` when a second Ctrl-C gave up waiting.
async fn cancel_and_wait(
    fabric: &FabricClient,
    submission: &JobSubmission,
    lines: &mut StatusLines,
) -> Result<Option<JobOutcome>, Report> {
    if fabric.cancel_job(submission).await? == CancelOutcome::Requested {
        println!("Cancellation requested; waiting for the job to stop...");
    }
    let follow = JobSubmission::existing(submission.job.clone());
    let ended = {
        let wait = fabric.wait_for_job(&follow, Some(CANCEL_WAIT), lines);
        tokio::select! {
            r = wait => Ended::Done(Box::new(r)),
            _ = tokio::signal::ctrl_c() => Ended::Interrupted,
        }
    };
    match ended {
        Ended::Done(r) => Ok(Some((*r)?)),
        Ended::Interrupted => {
            eprintln!(
                "Stopped waiting; job {} may still be stopping",
                submission.job.job_id
            );
            Ok(None)
        }
    }
}

/// Prints the final state; the exit status: 0 only for `Completed` (or, after `job cancel`,
/// for a run that ended by being cancelled).
fn render_outcome(outcome: &JobOutcome, job: &JobRef, cancelling: bool) -> ExitStatus {
    let took = human(outcome.elapsed);
    let reason = outcome.failure_message();
    match outcome.state {
        TerminalState::Completed => println!("Completed ({took})"),
        TerminalState::Failed => println!(
            "Failed ({took}): {}",
            reason
                .as_deref()
                .unwrap_or("the service gave no failure reason")
        ),
        TerminalState::Cancelled => match &reason {
            Some(r) => println!("Cancelled ({took}): {r}"),
            None => println!("Cancelled ({took})"),
        },
        TerminalState::Deduped => println!(
            "Deduped ({took}): {} (`{}`)",
            TerminalState::Deduped.meaning(),
            job.item_name
        ),
    }
    if outcome.state == TerminalState::Failed {
        eprintln!(
            "hint: `fabric-remote job logs {} --sjd {}` shows the driver's output",
            job.job_id,
            shell_word(&job.item_name)
        );
    }
    let _ = std::io::stdout().flush();
    match outcome.state {
        TerminalState::Completed => ExitStatus::Success,
        TerminalState::Cancelled if cancelling => ExitStatus::Success,
        _ => ExitStatus::Failure,
    }
}

async fn job_ref(a: &JobInstanceArgs, env: &Env) -> Result<(FabricClient, JobRef), Report> {
    let (fabric, _) = clients(env)?;
    let ws = workspace(&fabric, &a.place, env).await?;
    let sjd = fabric.resolve_sjd(&ws, &sjd_name(&a.sjd, env)).await?;
    let job = JobRef::new(&ws, &sjd, a.job_id.trim());
    Ok((fabric, job))
}

async fn status(a: &JobInstanceArgs, env: &Env) -> Result<ExitStatus, Report> {
    let (fabric, job) = job_ref(a, env).await?;
    let instance = fabric.get_job(&job).await?;
    let status = status_text(&instance);
    println!("Job instance {}", job.job_id);
    match instance.status.as_ref().and_then(JobStatus::terminal) {
        Some(state) => println!("Status: {status} ({})", state.meaning()),
        None => println!("Status: {status}"),
    }
    let time = |t: Option<std::time::SystemTime>| {
        t.map(|t| fabric_remote::time::iso8601(t.max(UNIX_EPOCH)))
            .unwrap_or_else(|| "-".into())
    };
    println!("Started: {}", time(instance.start_time));
    println!("Ended: {}", time(instance.end_time));
    if let Some(reason) = instance.failure_reason.as_ref().and_then(|r| r.describe()) {
        println!("Failure reason: {reason}");
    }
    Ok(ExitStatus::Success)
}

async fn cancel(a: &JobCancelArgs, env: &Env) -> Result<ExitStatus, Report> {
    let (fabric, job) = job_ref(&a.job, env).await?;
    let follow = JobSubmission::existing(job.clone());
    match fabric.cancel_job(&follow).await? {
        CancelOutcome::AlreadyCompleted => {
            let instance = fabric.get_job(&job).await?;
            let status = status_text(&instance);
            println!(
                "Job {} had already finished ({status}); nothing to cancel",
                job.job_id
            );
            Ok(ExitStatus::Success)
        }
        CancelOutcome::Requested if a.no_wait => {
            println!("Cancellation of job {} requested", job.job_id);
            Ok(ExitStatus::Success)
        }
        CancelOutcome::Requested => {
            println!("Cancellation requested; waiting for the job to stop...");
            let mut lines = StatusLines::new(follow.submitted_at);
            let outcome = fabric
                .wait_for_job(&follow, Some(CANCEL_WAIT), &mut lines)
                .await?;
            Ok(render_outcome(&outcome, &job, true))
        }
    }
}

async fn logs(a: &JobLogsArgs, env: &Env) -> Result<ExitStatus, Report> {
    let (fabric, job) = job_ref(&a.job, env).await?;
    // An unknown id is "not found", not "still starting".
    let instance = fabric.get_job(&job).await?;
    let session = match fabric.find_livy_session(&job).await? {
        Some(session) => session,
        None => {
            return Err(Report::usage(match instance.status {
                Some(JobStatus::NotStarted) | None => format!(
                    "job instance {} has no Spark application yet: it is still starting",
                    job.job_id
                ),
                Some(status) => format!(
                    "job instance {} ({}) has no Spark application, so it has no driver log",
                    job.job_id,
                    status.as_str()
                ),
            }));
        }
    };
    if !a.stderr {
        let text = fabric.driver_log(&job, &session, LogKind::Stdout).await?;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
    if !a.stdout {
        let text = fabric.driver_log(&job, &session, LogKind::Stderr).await?;
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    }
    Ok(ExitStatus::Success)
}

async fn list(a: &JobWhereArgs, env: &Env) -> Result<ExitStatus, Report> {
    let (fabric, _) = clients(env)?;
    let ws = workspace(&fabric, a, env).await?;
    let mut all = fabric.list_sjds(&ws).await?;
    all.sort_by(|x, y| x.display_name.cmp(&y.display_name));
    let mut out = std::io::stdout().lock();
    for sjd in all {
        if writeln!(out, "{}  {}", sjd.id, sjd.display_name).is_err() {
            break;
        }
    }
    Ok(ExitStatus::Success)
}

/// The instance's status as the service spells it, `-` when it sent none.
fn status_text(instance: &JobInstance) -> &str {
    instance
        .status
        .as_ref()
        .map(JobStatus::as_str)
        .unwrap_or("-")
}
