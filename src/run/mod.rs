//! `run`: a pytest suite inside a Fabric Spark Job Definition run, as one library flow.
//!
//! collect locally (the exact node ids pytest selects with the user's arguments) → prepare
//! (remote requirements, `test.env.remote` without secrets, `test.env` never uploaded) →
//! sync the project to its own lakehouse folder → upload the run's inputs to the run's own
//! folder → find, create or update the SJD → submit → follow the job while reading the
//! report log's chunk files as they appear → cancel on interrupt or timeout → fetch →
//! map onto the selected ids (report log first, junit XML only when the log is missing) →
//! a [`RunOutcome`] with pytest's exit status.
//!
//! Nothing here prints: progress goes to a [`Reporter`], and Ctrl-C arrives as a count on a
//! `watch` channel. See `docs/run.md` for what lands where in the lakehouse.

pub mod collect;
pub mod config;
pub mod layout;
mod live;
pub mod prepare;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::watch;

use crate::dfs::{DfsClient, DfsError};
use crate::diagnostic::{Diagnostic, Kind};
use crate::fabric::{
    CancelOutcome, ExecutionData, FabricClient, FabricError, Item, JobPoll, JobRef, JobReporter,
    JobStatus, JobSubmission, PollRecord, SjdAction, SparkJobDefinitionV1, TerminalState,
    Workspace, abfss_url, check_item_name, portal_url,
};
use crate::junit::{self, Counts, MapOptions, Mapping, TestResult};
use crate::location::{LocationError, ONELAKE_DFS_HOST, RemoteLocation};
use crate::sync::{self, SyncError, SyncOptions};

pub use collect::{CollectError, Collected, Python};
pub use config::{Config, ConfigError, RemoteEnv};
use layout::Layout;
use live::Live;
pub use prepare::{PrepareError, Requirements, RequirementsSource};

/// Everything a run needs, validated.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// The directory synced to the lakehouse (absolute).
    pub project: PathBuf,
    /// Where pytest is invoked (absolute, inside `project`).
    pub cwd: PathBuf,
    /// pytest's arguments, as the user gave them.
    pub pytest_args: Vec<String>,
    pub python: Python,
    /// `None`: collect locally; `Some`: run exactly these ids (the pytest plugin's case).
    pub nodeids: Option<Vec<String>>,
    /// Workspace name or id.
    pub workspace: String,
    /// Lakehouse name or id.
    pub lakehouse: String,
    pub sjd_name: String,
    /// The project's folder name under `Files/fabric-remote/projects/`.
    pub remote_name: String,
    /// `FABRIC_REMOTE_ONELAKE_ENDPOINT`.
    pub onelake_endpoint: Option<String>,
    pub remote_env: RemoteEnv,
    /// Install the requirements and the project remotely (off for the emulator).
    pub install: bool,
    /// Cancel the job when it has not finished this long after the submit.
    pub timeout: Option<Duration>,
    /// How long to wait for a cancelled job to stop.
    pub cancel_wait: Duration,
    /// How often the run folder is listed for new chunks while the job runs.
    pub live_interval: Duration,
    /// How often the entry point closes a chunk of the report log.
    pub chunk_seconds: f64,
    pub sync: SyncOptions,
    /// `PATH`, for finding `uv`.
    pub path_var: Option<String>,
}

/// Why a run was stopped before its job ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// `--timeout` passed.
    TimedOut,
}

/// What the job is doing, for status lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Submitted; the service does not show the instance yet.
    Submitted,
    /// `NotStarted`: waiting for Spark.
    Queued,
    Running,
    /// A status fabric-remote does not know (still waiting).
    Other(String),
    /// Cancelling after an interrupt or the timeout.
    Stopping(Stop),
}

/// A status line's content.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Since the submit.
    pub elapsed: Duration,
    pub phase: Phase,
    /// Results so far, from the report log.
    pub counts: Counts,
}

/// The submitted run.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub run_id: String,
    pub job: JobRef,
    /// The portal page that lists this SJD's runs.
    pub job_url: String,
    pub sjd_action: SjdAction,
    /// The run's folder in the lakehouse.
    pub run_folder: RemoteLocation,
}

/// Progress of a run. The CLI draws it; tests ignore it.
pub trait Reporter: Send + Sync {
    /// Local collection is done: this many tests selected.
    fn collected(&self, _collected: &Collected) {}
    /// Something the user should know (secrets left out, lines of test.env skipped…).
    fn note(&self, _message: &str) {}
    fn sync_started(&self, _remote: &RemoteLocation) {}
    /// The reporter the project sync uses.
    fn sync_reporter(&self) -> &dyn sync::Reporter {
        &sync::Silent
    }
    fn synced(&self, _summary: &sync::Summary) {}
    fn submitted(&self, _submitted: &Submitted) {}
    /// The job's state or the counts changed (also sent on every poll).
    fn progress(&self, _progress: &Progress) {}
    /// One report-log record, exactly as read, in order, once.
    fn record(&self, _line: &str) {}
    /// A test's last report arrived (for `-v` lines while the job runs).
    fn test_finished(&self, _result: &TestResult) {}
    /// The job is being cancelled.
    fn stopping(&self, _why: Stop) {}
}

/// A reporter that reports nothing.
pub struct Silent;
impl Reporter for Silent {}

/// How the job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEnd {
    /// It reached a terminal state by itself.
    Finished {
        state: TerminalState,
        reason: Option<String>,
    },
    /// We cancelled it; `state` is where it ended (`None`: it had not stopped when we gave up
    /// waiting).
    Stopped {
        why: Stop,
        state: Option<TerminalState>,
    },
}

/// What the entry point wrote to `status.json`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
pub struct RemoteStatus {
    #[serde(default)]
    pub pytest_exit_code: Option<i32>,
    /// The step that failed (`install`, `copy`…), when pytest could not run.
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    /// The end of pip's output, a traceback…
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub session: Option<SessionEnd>,
}

/// How pytest's session ended remotely.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
pub struct SessionEnd {
    #[serde(default)]
    pub exitstatus: i32,
    #[serde(default)]
    pub shouldfail: bool,
    #[serde(default)]
    pub shouldstop: bool,
    #[serde(default)]
    pub testscollected: u64,
}

/// Where the results came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultSource {
    ReportLog,
    /// junit.xml, because the report log was missing.
    Junit,
}

/// A run that reached the service.
#[derive(Debug, Clone)]
pub struct RemoteRun {
    pub submitted: Submitted,
    pub end: JobEnd,
    /// From the submit to the end of the job.
    pub job_elapsed: Duration,
    pub status: Option<RemoteStatus>,
    /// The results mapped onto the selected ids; `None` when the job wrote none.
    pub mapping: Option<Mapping>,
    pub source: Option<ResultSource>,
    /// pytest's verbosity from the user's arguments.
    pub verbose: i32,
    pub exit_code: u8,
    /// Sentences for the end of the output.
    pub notes: Vec<String>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub enum RunOutcome {
    /// Local collection ended it (collection errors, a usage error, nothing selected):
    /// pytest's output and exit status, nothing sent.
    NotRun(Collected),
    Ran(Box<RemoteRun>),
}

impl RunOutcome {
    pub fn exit_code(&self) -> u8 {
        match self {
            RunOutcome::NotRun(c) => u8::try_from(c.exit_code).unwrap_or(3),
            RunOutcome::Ran(r) => r.exit_code,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Collect(#[from] CollectError),
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error(transparent)]
    Fabric(#[from] FabricError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Dfs(#[from] DfsError),
    #[error(transparent)]
    Location(#[from] LocationError),
    #[error(
        "`test.env` was uploaded to {0} although it is always excluded; the remote copy was deleted"
    )]
    TestEnvUploaded(String),
    #[error("interrupted before the job was submitted; nothing ran remotely")]
    Interrupted,
    #[error(
        "{failed} file(s) of the project could not be synced, so the job would run a stale copy (first: {first})"
    )]
    SyncIncomplete { failed: u64, first: String },
}

impl Diagnostic for RunError {
    /// A usage or configuration error (exit 2) when the cause is one; anything else is the
    /// infrastructure failing (exit 3): for `run`, exit 1 means failed tests.
    fn kind(&self) -> Kind {
        let cause = match self {
            RunError::Usage(_) | RunError::Interrupted | RunError::Location(_) => Kind::Usage,
            RunError::TestEnvUploaded(_) | RunError::SyncIncomplete { .. } => Kind::Infrastructure,
            _ => self
                .diagnostic_source()
                .map_or(Kind::Infrastructure, Diagnostic::kind),
        };
        if cause == Kind::Usage {
            Kind::Usage
        } else {
            Kind::Infrastructure
        }
    }

    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        match self {
            RunError::Config(e) => Some(e),
            RunError::Collect(e) => Some(e),
            RunError::Prepare(e) => Some(e),
            RunError::Fabric(e) => Some(e),
            RunError::Sync(e) => Some(e),
            RunError::Dfs(e) => Some(e),
            _ => None,
        }
    }
}

/// A `watch` receiver that never fires (a run nobody can interrupt).
pub fn no_interrupts() -> watch::Receiver<u32> {
    let (tx, rx) = watch::channel(0);
    std::mem::forget(tx);
    rx
}

/// Runs the suite remotely. `interrupts` counts Ctrl-C / SIGTERM: the first cancels the job
/// (and the run goes on to fetch what exists), the second stops waiting for it to stop.
pub async fn run(
    settings: &RunSettings,
    dfs: &DfsClient,
    fabric: &FabricClient,
    reporter: &dyn Reporter,
    mut interrupts: watch::Receiver<u32>,
) -> Result<RunOutcome, RunError> {
    check_item_name("Spark job definition", &settings.sjd_name)?;
    let cwd_rel = relative_dir(&settings.project, &settings.cwd).ok_or_else(|| {
        RunError::Usage(format!(
            "the working directory {} is not inside the project {}; run from the project or pass --project",
            settings.cwd.display(),
            settings.project.display()
        ))
    })?;
    prepare::check_test_env_excluded(&settings.sync.excludes)?;
    interrupts.mark_unchanged();

    // Local work (collection, requirements) alongside the remote preparation.
    let local = {
        let (python, cwd, args, project, path_var) = (
            settings.python.clone(),
            settings.cwd.clone(),
            settings.pytest_args.clone(),
            settings.project.clone(),
            settings.path_var.clone(),
        );
        let collect = settings.nodeids.is_none();
        tokio::task::spawn_blocking(move || {
            let collected = collect
                .then(|| collect::collect(&python, &cwd, &args))
                .transpose();
            let requirements = prepare::requirements(&project, path_var.as_deref());
            (collected, requirements)
        })
    };
    let remote = prepare_remote(settings, dfs, fabric, reporter);
    let (local, remote) = tokio::select! {
        both = async { tokio::join!(local, remote) } => both,
        _ = next_interrupt(&mut interrupts) => return Err(RunError::Interrupted),
    };
    let (collected, requirements) =
        local.map_err(|e| RunError::Usage(format!("local collection stopped: {e}")))?;
    let collected = collected?;
    let requirements = requirements?;
    let Remote {
        synced,
        ws,
        lake,
        layout,
        sjd,
        sjd_action,
    } = remote?;

    let (ids, verbose) = match (&settings.nodeids, collected) {
        (Some(ids), _) => (ids.clone(), 0),
        (None, Some(c)) => {
            if c.exit_code != 0 || c.ids.is_empty() {
                return Ok(RunOutcome::NotRun(c));
            }
            if let Some(root) = &c.rootdir
                && relative_dir(&settings.project, root).is_none()
            {
                return Err(RunError::Usage(format!(
                    "pytest's rootdir {} is outside the project {}; pass --project",
                    root.display(),
                    settings.project.display()
                )));
            }
            reporter.collected(&c);
            (c.ids.clone(), c.verbose)
        }
        (None, None) => unreachable!("collection runs when no ids are given"),
    };
    reporter.synced(&synced);

    // The run's own folder and inputs.
    let run_id = layout
        .run_rel
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let run_json = prepare::RunJson {
        project: layout.project_rel.clone(),
        cwd: cwd_rel,
        args: settings.pytest_args.clone(),
        nodeids: layout::NODEIDS.into(),
        install: settings.install,
        wheelhouse: layout.wheelhouse_rel.clone(),
        chunk_seconds: settings.chunk_seconds,
        run_id: run_id.clone(),
    };
    let inputs = [
        (
            layout::RUN_JSON,
            serde_json::to_vec_pretty(&run_json).unwrap_or_default(),
        ),
        (layout::NODEIDS, prepare::nodeids_text(&ids).into_bytes()),
        (layout::REQUIREMENTS, requirements.text.clone().into_bytes()),
        (
            layout::TEST_ENV_REMOTE,
            settings.remote_env.text.clone().into_bytes(),
        ),
    ];
    let uploads = inputs.iter().map(|(name, body)| {
        let loc = layout.run_file(name);
        async move {
            dfs.upload_bytes(&loc?, &Bytes::from(body.clone()))
                .await
                .map_err(RunError::from)
        }
    });
    for r in futures::future::join_all(uploads).await {
        r?;
    }

    if interrupts.has_changed().unwrap_or(false) {
        return Err(RunError::Interrupted);
    }
    // Submit: the run folder travels as the job's only argument (no spaces in it).
    let args = format!(
        "{} abfss://{}@{ONELAKE_DFS_HOST}/{}",
        layout.run_rel, ws.id, lake.id
    );
    let execution = ExecutionData {
        command_line_arguments: Some(args),
        ..ExecutionData::default()
    };
    let submission = fabric
        .run_sjd(&ws, &sjd, Some(&execution))
        .await
        .map_err(RunError::from)?;
    let submitted = Submitted {
        run_id,
        job: submission.job.clone(),
        job_url: portal_url(&ws.id, &sjd.id),
        sjd_action,
        run_folder: layout.run_dir()?,
    };
    reporter.submitted(&submitted);

    let live = Mutex::new(Live::new());
    let (end, job_elapsed) = follow(
        settings,
        dfs,
        fabric,
        &layout,
        &submission,
        reporter,
        &mut interrupts,
        &live,
    )
    .await?;
    let mut notes = Vec::new();
    if let Err(e) = live::drain(dfs, &layout, &live, reporter).await {
        notes.push(format!("could not read all of the report log: {e}"));
    }
    let status = match live::read_optional(dfs, &layout.run_file(layout::STATUS)?).await {
        Ok(Some(bytes)) => serde_json::from_slice::<RemoteStatus>(&bytes).ok(),
        Ok(None) => None,
        Err(e) => {
            notes.push(format!("could not read the run's status.json: {e}"));
            None
        }
    };
    let live = live.into_inner().unwrap_or_else(|p| p.into_inner());

    // Map: the report log, else junit.xml; missing ids are errors, except after the remote
    // session stopped on purpose (-x, --maxfail), when they simply did not run.
    let stopped_early = status
        .as_ref()
        .and_then(|s| s.session.as_ref())
        .is_some_and(|s| s.shouldfail || s.shouldstop);
    let expected: Vec<String> = if stopped_early {
        ids.iter()
            .filter(|id| live.seen.contains(*id))
            .cloned()
            .collect()
    } else {
        ids.clone()
    };
    let interrupted = matches!(end, JobEnd::Stopped { .. });
    let (mapping, source) = if live.records > 0 {
        (
            Some(live.log.finish(Some(&expected), &MapOptions::default())),
            Some(ResultSource::ReportLog),
        )
    } else {
        match live::read_optional(dfs, &layout.run_file(layout::JUNIT)?).await {
            Ok(Some(xml)) => match junit::parse(&xml) {
                Ok(doc) => {
                    let m = junit::map(&doc, Some(&expected));
                    notes.push("the report log was missing: results come from junit.xml".into());
                    notes.extend(m.notes());
                    (Some(m), Some(ResultSource::Junit))
                }
                Err(e) => {
                    notes.push(format!("the run's junit.xml is unusable: {e}"));
                    (None, None)
                }
            },
            _ if interrupted => (
                Some(live.log.finish(Some(&expected), &MapOptions::default())),
                Some(ResultSource::ReportLog),
            ),
            _ => (None, None),
        }
    };
    let exit_code = exit_code(&end, status.as_ref(), mapping.as_ref());
    Ok(RunOutcome::Ran(Box::new(RemoteRun {
        submitted,
        end,
        job_elapsed,
        status,
        mapping,
        source,
        verbose,
        exit_code,
        notes,
    })))
}

/// What the remote preparation found or made.
struct Remote {
    synced: sync::Summary,
    ws: Workspace,
    lake: Item,
    layout: Layout,
    sjd: Item,
    sjd_action: SjdAction,
}

/// Workspace and lakehouse, the layout, the synced project, the entry point and the SJD.
async fn prepare_remote(
    settings: &RunSettings,
    dfs: &DfsClient,
    fabric: &FabricClient,
    reporter: &dyn Reporter,
) -> Result<Remote, RunError> {
    let ws = fabric.resolve_workspace(&settings.workspace).await?;
    let lake = fabric.resolve_lakehouse(&ws, &settings.lakehouse).await?;
    let files =
        RemoteLocation::onelake_item(settings.onelake_endpoint.as_deref(), &ws.id, &lake.id)?
            .join("Files")?;
    let salt = {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        h.write_u32(std::process::id());
        h.finish()
    };
    let run_id = layout::run_id(SystemTime::now(), salt);
    let layout = Layout::new(files, &settings.remote_name, &run_id);

    // The project, to its own folder; test.env never goes (excluded, and checked again).
    let project = layout.project()?;
    reporter.sync_started(&project);
    let guard = Guard {
        inner: reporter.sync_reporter(),
        leaked: Mutex::new(Vec::new()),
    };
    let summary = sync::sync(
        &crate::location::Location::Local(settings.project.clone()),
        &crate::location::Location::Remote(project.clone()),
        dfs,
        &settings.sync,
        &guard,
    )
    .await?;
    let leaked = guard.leaked.into_inner().unwrap_or_default();
    if let Some(first) = leaked.first() {
        for path in &leaked {
            let _ = dfs.delete(&project.join(path)?, false).await;
        }
        return Err(RunError::TestEnvUploaded(format!("{project}/{first}")));
    }
    if summary.failed > 0 {
        let (path, why) = summary.failures.first().cloned().unwrap_or_default();
        return Err(RunError::SyncIncomplete {
            failed: summary.failed,
            first: format!("{path}: {why}"),
        });
    }

    // The entry point, content-addressed: uploaded once per fabric-remote version.
    let entry = layout.entrypoint()?;
    if dfs.head(&entry).await?.is_none() {
        dfs.upload_bytes(&entry, &Bytes::from_static(layout::ENTRYPOINT.as_bytes()))
            .await?;
    }
    let want = SparkJobDefinitionV1::python(
        &abfss_url(
            &ws.id,
            &lake.id,
            &format!("Files/{}", layout.entrypoint_rel),
        ),
        &lake.id,
        None,
    );
    let ensured = fabric.ensure_sjd(&ws, &settings.sjd_name, &want).await?;
    Ok(Remote {
        synced: summary,
        ws,
        lake,
        layout,
        sjd: ensured.sjd,
        sjd_action: ensured.action,
    })
}

/// Passes sync progress on and notes any `test.env` that was transferred.
struct Guard<'a> {
    inner: &'a dyn sync::Reporter,
    leaked: Mutex<Vec<String>>,
}

impl sync::Reporter for Guard<'_> {
    fn planned(&self, t: u64, b: u64, d: u64) {
        self.inner.planned(t, b, d)
    }
    fn transferred(&self, path: &str, bytes: u64) {
        if path.rsplit('/').next() == Some(config::TEST_ENV)
            && let Ok(mut l) = self.leaked.lock()
        {
            l.push(path.to_string());
        }
        self.inner.transferred(path, bytes)
    }
    fn deleted(&self, path: &str) {
        self.inner.deleted(path)
    }
    fn failed(&self, path: &str, error: &str) {
        self.inner.failed(path, error)
    }
    fn warning(&self, message: &str) {
        self.inner.warning(message)
    }
}

/// `dir` relative to `base` (`""` for `base` itself), when it is inside it.
fn relative_dir(base: &Path, dir: &Path) -> Option<String> {
    let rel = dir.strip_prefix(base).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

/// Forwards polls to the reporter as status lines.
struct Polls<'a> {
    reporter: &'a dyn Reporter,
    phase: &'a Mutex<Phase>,
    live: &'a Mutex<Live>,
    start: Instant,
}

impl Polls<'_> {
    fn emit(&self) {
        let phase = self
            .phase
            .lock()
            .map(|p| p.clone())
            .unwrap_or(Phase::Running);
        let counts = self.live.lock().map(|l| l.log.counts()).unwrap_or_default();
        self.reporter.progress(&Progress {
            elapsed: self.start.elapsed(),
            phase,
            counts,
        });
    }
}

impl JobReporter for Polls<'_> {
    fn polled(&mut self, record: &PollRecord<'_>) {
        let next = match record.poll {
            JobPoll::Status(instance) => match &instance.status {
                Some(JobStatus::NotStarted) => Some(Phase::Queued),
                Some(JobStatus::InProgress) => Some(Phase::Running),
                Some(JobStatus::Other(s)) => Some(Phase::Other(s.clone())),
                _ => None,
            },
            JobPoll::NotVisibleYet => Some(Phase::Submitted),
            _ => None,
        };
        if let (Some(next), Ok(mut phase)) = (next, self.phase.lock())
            && !matches!(*phase, Phase::Stopping(_))
        {
            *phase = next;
        }
        self.emit();
    }
}

/// Waits for the job while reading its report log; cancels it on interrupt or timeout.
#[allow(clippy::too_many_arguments)]
async fn follow(
    settings: &RunSettings,
    dfs: &DfsClient,
    fabric: &FabricClient,
    layout: &Layout,
    submission: &JobSubmission,
    reporter: &dyn Reporter,
    interrupts: &mut watch::Receiver<u32>,
    live: &Mutex<Live>,
) -> Result<(JobEnd, Duration), RunError> {
    let phase = Mutex::new(Phase::Submitted);
    let mut polls = Polls {
        reporter,
        phase: &phase,
        live,
        start: submission.submitted_at,
    };
    let watch = async {
        loop {
            tokio::time::sleep(settings.live_interval).await;
            if let Ok(true) = live::poll(dfs, layout, live, reporter).await {
                // Records arriving prove the job runs, whatever the last poll said.
                if let Ok(mut p) = phase.lock()
                    && matches!(*p, Phase::Submitted | Phase::Queued)
                {
                    *p = Phase::Running;
                }
                Polls {
                    reporter,
                    phase: &phase,
                    live,
                    start: submission.submitted_at,
                }
                .emit();
            }
        }
    };
    tokio::pin!(watch);

    enum Waited {
        Done(Box<Result<crate::fabric::JobOutcome, FabricError>>),
        Stop(Stop),
    }
    let waited = {
        let wait = fabric.wait_for_job(submission, settings.timeout, &mut polls);
        tokio::select! {
            r = wait => Waited::Done(Box::new(r)),
            _ = &mut watch => unreachable!("the watch loop never ends"),
            _ = next_interrupt(interrupts) => Waited::Stop(Stop::Interrupted),
        }
    };
    let why = match waited {
        Waited::Done(done) => match *done {
            Ok(outcome) => {
                let reason = outcome.failure_message();
                return Ok((
                    JobEnd::Finished {
                        state: outcome.state,
                        reason,
                    },
                    outcome.elapsed,
                ));
            }
            Err(FabricError::JobTimeout { .. }) => Stop::TimedOut,
            Err(e) => {
                // The job may still be running: do not leave it behind (best effort).
                if fabric.cancel_job(submission).await.is_ok() {
                    reporter.note("the job could no longer be followed, so it was cancelled");
                }
                return Err(e.into());
            }
        },
        Waited::Stop(why) => why,
    };

    // Cancel, then wait (bounded) for the job to stop while still reading results.
    reporter.stopping(why);
    if let Ok(mut p) = phase.lock() {
        *p = Phase::Stopping(why);
    }
    let state = match fabric.cancel_job(submission).await {
        Ok(CancelOutcome::AlreadyCompleted) | Ok(CancelOutcome::Requested) => {
            let follow = JobSubmission::existing(submission.job.clone());
            let wait = fabric.wait_for_job(&follow, Some(settings.cancel_wait), &mut polls);
            tokio::select! {
                r = wait => r.ok().map(|o| o.state),
                _ = &mut watch => unreachable!("the watch loop never ends"),
                _ = next_interrupt(interrupts) => None,
            }
        }
        Err(e) => {
            reporter.note(&format!("could not cancel the job: {e}"));
            None
        }
    };
    Ok((
        JobEnd::Stopped { why, state },
        submission.submitted_at.elapsed(),
    ))
}

/// The next interrupt (never, once the sender is gone).
async fn next_interrupt(interrupts: &mut watch::Receiver<u32>) {
    if interrupts.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// pytest's exit status for the run: the job's fate first (2 interrupted, 3 infrastructure),
/// then the remote session's own status (2, 3, 4 pass through), then the mapped results.
pub fn exit_code(end: &JobEnd, status: Option<&RemoteStatus>, mapping: Option<&Mapping>) -> u8 {
    match end {
        JobEnd::Stopped { .. }
        | JobEnd::Finished {
            state: TerminalState::Cancelled,
            ..
        } => 2,
        JobEnd::Finished {
            state: TerminalState::Failed | TerminalState::Deduped,
            ..
        } => 3,
        JobEnd::Finished {
            state: TerminalState::Completed,
            ..
        } => {
            let Some(remote) = status.and_then(|s| s.pytest_exit_code) else {
                return 3;
            };
            let mapped = mapping.map(Mapping::exit_code).unwrap_or(3);
            match remote {
                2..=4 => remote as u8,
                _ if status.is_some_and(|s| s.session.is_none()) => 3,
                1 | 6 if mapped == 0 => remote as u8,
                _ => mapped,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: i32, session: bool) -> RemoteStatus {
        RemoteStatus {
            pytest_exit_code: Some(code),
            session: session.then(SessionEnd::default),
            ..RemoteStatus::default()
        }
    }

    fn mapping(ids: &[&str], lines: &[&str]) -> Mapping {
        let mut log = junit::ReportLog::new();
        for l in lines {
            log.push_line(l).unwrap();
        }
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        log.finish(Some(&ids), &MapOptions::default())
    }

    #[test]
    fn exit_codes() {
        let done = JobEnd::Finished {
            state: TerminalState::Completed,
            reason: None,
        };
        let ok = mapping(
            &["t.py::a"],
            &[
                r#"{"$report_type":"TestReport","nodeid":"t.py::a","when":"call","outcome":"passed"}"#,
                r#"{"$report_type":"TestReport","nodeid":"t.py::a","when":"teardown","outcome":"passed"}"#,
            ],
        );
        let none = mapping(&["t.py::a"], &[]);
        assert_eq!(exit_code(&done, Some(&status(0, true)), Some(&ok)), 0);
        // A remote collection error: pytest's 2, never 0, whatever was mapped.
        assert_eq!(exit_code(&done, Some(&status(2, true)), Some(&none)), 2);
        assert_eq!(exit_code(&done, Some(&status(4, true)), Some(&none)), 4);
        // Nothing came back for an expected id: an error.
        assert_eq!(exit_code(&done, Some(&status(0, true)), Some(&none)), 1);
        // pytest crashed before its session finished.
        assert_eq!(exit_code(&done, Some(&status(1, false)), Some(&ok)), 3);
        // No status at all.
        assert_eq!(exit_code(&done, None, Some(&ok)), 3);
        assert_eq!(exit_code(&done, Some(&status(1, true)), Some(&ok)), 1);
        for state in [TerminalState::Failed, TerminalState::Deduped] {
            let end = JobEnd::Finished {
                state,
                reason: None,
            };
            assert_eq!(exit_code(&end, None, None), 3);
        }
        let stopped = JobEnd::Stopped {
            why: Stop::Interrupted,
            state: Some(TerminalState::Cancelled),
        };
        assert_eq!(exit_code(&stopped, None, Some(&ok)), 2);
    }

    #[test]
    fn relative_dirs() {
        assert_eq!(
            relative_dir(Path::new("/p"), Path::new("/p")).as_deref(),
            Some("")
        );
        assert_eq!(
            relative_dir(Path::new("/p"), Path::new("/p/a/b")).as_deref(),
            Some("a/b")
        );
        assert_eq!(relative_dir(Path::new("/p"), Path::new("/q")), None);
    }
}
