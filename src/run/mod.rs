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
//! With `shards` > 1 the selection is split ([`shard`]) by the durations earlier runs left
//! on this machine ([`history`]); each shard gets its own SJD (`<name>-1` …), its own folder
//! under the run's folder and its own job, all submitted at once after one shared sync, and
//! their records are merged into one session ([`combine`]). A shard whose job fails leaves
//! its own tests as errors naming the failure; the others' results stand.
//!
//! Nothing here prints: progress goes to a [`Reporter`], and Ctrl-C arrives as a count on a
//! `watch` channel. See `docs/run.md` for what lands where in the lakehouse.

pub mod collect;
mod combine;
pub mod config;
mod follow;
pub mod history;
pub mod layout;
mod live;
pub mod prepare;
mod results;
pub mod shard;

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
use crate::junit::{self, Counts, MapOptions, Mapping, Outcome, TestResult};
use crate::location::{LocationError, ONELAKE_DFS_HOST, RemoteLocation};
use crate::sync::{self, SyncError, SyncOptions};

pub use collect::{CollectError, Collected, Python};
use combine::Board;
pub use config::{Config, ConfigError, RemoteEnv};
use follow::{follow, next_interrupt};
pub use history::{History, HistoryError};
use layout::Layout;
use live::Live;
pub use prepare::{PrepareError, Requirements, RequirementsSource};
use results::{combine_shards, map_job};
pub use results::{combined_exit_code, exit_code};
pub use shard::{Basis, Split};

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
    /// How many jobs share the selection (1: one job on `sjd_name`, as without shards).
    pub shards: usize,
    /// Run only the tests that failed or errored the last time they ran remotely (from the
    /// history kept in `sync.cache_dir`).
    pub last_failed: bool,
}

/// The most shards one run may use.
pub const MAX_SHARDS: usize = 64;

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
    /// Jobs in the run (1 without shards).
    pub jobs: usize,
    /// Jobs that have not ended yet.
    pub active: usize,
}

/// Which shard a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardId {
    /// 1-based.
    pub index: usize,
    pub of: usize,
    /// Tests in the shard.
    pub tests: usize,
}

/// The submitted run.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub run_id: String,
    pub job: JobRef,
    /// The portal page that lists this SJD's runs.
    pub job_url: String,
    pub sjd_action: SjdAction,
    /// The job's folder in the lakehouse (the run's folder, or the shard's inside it).
    pub run_folder: RemoteLocation,
    /// `None` without shards.
    pub shard: Option<ShardId>,
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
    /// The selection was split into shards (only when `shards` > 1).
    fn sharded(&self, _split: &Split) {}
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
    /// A shard's job could not be submitted or followed (the service failed; a job that
    /// existed was cancelled). Without shards this is an error of the whole run instead.
    Error { reason: String },
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
    /// The run's folder in the lakehouse.
    pub run_folder: RemoteLocation,
    /// Each shard's job (empty without shards).
    pub shards: Vec<ShardRun>,
}

/// One shard of a sharded run.
#[derive(Debug, Clone)]
pub struct ShardRun {
    pub id: ShardId,
    /// The shard's Spark job definition.
    pub sjd_name: String,
    pub ids: Vec<String>,
    /// What the split expected it to weigh (seconds or tests, see [`Split::basis`]).
    pub estimate: f64,
    /// `None` when its job could not be submitted.
    pub submitted: Option<Submitted>,
    pub end: JobEnd,
    pub job_elapsed: Duration,
    pub status: Option<RemoteStatus>,
    /// From the first test's start to the last test's end, in the shard's report log.
    pub session_seconds: Option<f64>,
    /// What this shard alone would exit with.
    pub exit_code: u8,
    /// Why its tests have no results, when its job failed (not when the run was stopped).
    pub failure: Option<String>,
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

/// Runs the suite remotely. `interrupts` counts Ctrl-C / SIGTERM: the first cancels the
/// job(s) (and the run goes on to fetch what exists), the second stops waiting for them to
/// stop.
pub async fn run(
    settings: &RunSettings,
    dfs: &DfsClient,
    fabric: &FabricClient,
    reporter: &dyn Reporter,
    mut interrupts: watch::Receiver<u32>,
) -> Result<RunOutcome, RunError> {
    if settings.shards == 0 || settings.shards > MAX_SHARDS {
        return Err(RunError::Usage(format!(
            "--shards {} is out of range: give a number from 1 to {MAX_SHARDS}",
            settings.shards
        )));
    }
    check_item_name("Spark job definition", &settings.sjd_name)?;
    let sharded = settings.shards > 1;
    if sharded {
        check_item_name(
            "Spark job definition",
            &shard_sjd_name(&settings.sjd_name, settings.shards),
        )?;
    }
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
        want,
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

    // What earlier runs left here: durations for the split, failures for --lf.
    let history_path = settings
        .sync
        .cache_dir
        .as_deref()
        .map(|d| history::path(d, &settings.project));
    let mut history = match history_path.as_deref().map(History::load) {
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            reporter.note(&e.to_string());
            History::default()
        }
        None => History::default(),
    };
    let ids = if settings.last_failed {
        select_last_failed(&history, ids, reporter)
    } else {
        ids
    };
    let split = if sharded {
        let split = shard::split(&ids, settings.shards, &history.durations);
        reporter.sharded(&split);
        split
    } else {
        Split {
            estimates: vec![ids.len() as f64],
            shards: vec![ids.clone()],
            basis: Basis::Counts,
        }
    };
    let of = split.shards.len();
    let jobs: Vec<JobPlan> = split
        .shards
        .iter()
        .enumerate()
        .map(|(i, shard_ids)| JobPlan {
            id: ShardId {
                index: i + 1,
                of,
                tests: shard_ids.len(),
            },
            sjd_name: if sharded {
                shard_sjd_name(&settings.sjd_name, i + 1)
            } else {
                settings.sjd_name.clone()
            },
            layout: if sharded {
                layout.shard(i + 1)
            } else {
                layout.clone()
            },
            ids: shard_ids.clone(),
        })
        .collect();

    // Each job's SJD (a shard's found, created or updated now) and inputs, all at once.
    let run_id = layout
        .run_rel
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let ready = futures::future::join_all(jobs.iter().map(|job| {
        let (sjd, want, ws) = (&sjd, &want, &ws);
        let inputs = prepare::RunJson {
            project: layout.project_rel.clone(),
            cwd: cwd_rel.clone(),
            args: settings.pytest_args.clone(),
            nodeids: layout::NODEIDS.into(),
            install: settings.install,
            wheelhouse: layout.wheelhouse_rel.clone(),
            chunk_seconds: settings.chunk_seconds,
            run_id: run_id.clone(),
        };
        let requirements = &requirements.text;
        async move {
            let ensured = match sjd {
                Some(found) if !sharded => found.clone(),
                _ => {
                    let e = fabric.ensure_sjd(ws, &job.sjd_name, want).await?;
                    (e.sjd, e.action)
                }
            };
            upload_inputs(dfs, &job.layout, &inputs, &job.ids, requirements, settings).await?;
            Ok::<_, RunError>(ensured)
        }
    }))
    .await;
    let sjds: Vec<(Item, SjdAction)> = ready.into_iter().collect::<Result<_, _>>()?;

    if interrupts.has_changed().unwrap_or(false) {
        return Err(RunError::Interrupted);
    }
    // Submit: the job's folder travels as its only argument (no spaces in it).
    let submitted = futures::future::join_all(jobs.iter().zip(&sjds).map(|(job, (sjd, _))| {
        let args = format!(
            "{} abfss://{}@{ONELAKE_DFS_HOST}/{}",
            job.layout.run_rel, ws.id, lake.id
        );
        let execution = ExecutionData {
            command_line_arguments: Some(args),
            ..ExecutionData::default()
        };
        let ws = &ws;
        async move { fabric.run_sjd(ws, sjd, Some(&execution)).await }
    }))
    .await;
    if submitted.iter().all(Result::is_err) {
        // Nothing runs (without shards: its one job could not be submitted): the run failed.
        if let Some(Err(e)) = submitted.into_iter().next() {
            return Err(e.into());
        }
        return Err(RunError::Usage("nothing to run".into()));
    }
    let mut started = Vec::with_capacity(jobs.len());
    for ((job, (sjd, action)), sub) in jobs.iter().zip(&sjds).zip(submitted) {
        started.push(match sub {
            Ok(submission) => {
                let s = Submitted {
                    run_id: run_id.clone(),
                    job: submission.job.clone(),
                    job_url: portal_url(&ws.id, &sjd.id),
                    sjd_action: *action,
                    run_folder: job.layout.run_dir()?,
                    shard: sharded.then_some(job.id),
                };
                reporter.submitted(&s);
                Ok((submission, s))
            }
            Err(e) => {
                reporter.note(&format!(
                    "shard {}/{}: the job could not be submitted: {e}",
                    job.id.index, job.id.of
                ));
                Err(e.to_string())
            }
        });
    }
    let start = started
        .iter()
        .filter_map(|s| s.as_ref().ok())
        .map(|(sub, _)| sub.submitted_at)
        .min()
        .unwrap_or_else(Instant::now);

    // Follow every job at once; each reads its own records, merged on the board.
    let board = Board::new(reporter, jobs.len(), start);
    let followed = futures::future::join_all(jobs.iter().zip(started).enumerate().map(
        |(i, (job, started))| {
            let mut interrupts = interrupts.clone();
            let board = &board;
            async move {
                let view = board.view(i);
                let live = Mutex::new(Live::new());
                let (submission, submitted) = match started {
                    Ok(x) => x,
                    Err(reason) => {
                        board.ended(i);
                        return Ok(Followed {
                            end: JobEnd::Error { reason },
                            job_elapsed: Duration::ZERO,
                            live: Live::new(),
                            status: None,
                            notes: Vec::new(),
                            submitted: None,
                        });
                    }
                };
                let followed = follow(
                    settings,
                    dfs,
                    fabric,
                    &job.layout,
                    &submission,
                    &view,
                    &mut interrupts,
                    &live,
                )
                .await;
                board.ended(i);
                let (end, job_elapsed) = match followed {
                    Ok(x) => x,
                    Err(e) if sharded => (
                        JobEnd::Error {
                            reason: e.to_string(),
                        },
                        submission.submitted_at.elapsed(),
                    ),
                    Err(e) => return Err(e),
                };
                let mut notes = Vec::new();
                if let Err(e) = live::drain(dfs, &job.layout, &live, &view).await {
                    notes.push(format!("could not read all of the report log: {e}"));
                }
                let status =
                    match live::read_optional(dfs, &job.layout.run_file(layout::STATUS)?).await {
                        Ok(Some(bytes)) => serde_json::from_slice::<RemoteStatus>(&bytes).ok(),
                        Ok(None) => None,
                        Err(e) => {
                            notes.push(format!("could not read the run's status.json: {e}"));
                            None
                        }
                    };
                Ok(Followed {
                    end,
                    job_elapsed,
                    live: live.into_inner().unwrap_or_else(|p| p.into_inner()),
                    status,
                    notes,
                    submitted: Some(submitted),
                })
            }
        },
    ))
    .await;
    let followed: Vec<Followed> = followed.into_iter().collect::<Result<_, _>>()?;
    let (merged, _) = board.finish();

    let mut outcome = if sharded {
        combine_shards(dfs, &jobs, &split, followed, merged, verbose, &ids).await?
    } else {
        let job = &jobs[0];
        let Some(f) = followed.into_iter().next() else {
            return Err(RunError::Usage("nothing to run".into()));
        };
        let mut notes = f.notes;
        let (mapping, source, _) = map_job(
            dfs,
            &job.layout,
            &job.ids,
            &f.end,
            f.status.as_ref(),
            &f.live,
            &mut notes,
        )
        .await?;
        let exit_code = exit_code(&f.end, f.status.as_ref(), mapping.as_ref());
        RemoteRun {
            submitted: f.submitted.ok_or(RunError::Interrupted)?,
            end: f.end,
            job_elapsed: f.job_elapsed,
            status: f.status,
            mapping,
            source,
            verbose,
            exit_code,
            notes,
            run_folder: layout.run_dir()?,
            shards: Vec::new(),
        }
    };
    outcome.run_folder = layout.run_dir()?;

    // Keep what this run learnt for the next one (never fatal).
    if let (Some(path), Some(mapping)) = (&history_path, &outcome.mapping) {
        let interrupted = matches!(outcome.end, JobEnd::Stopped { .. })
            || outcome
                .shards
                .iter()
                .any(|s| matches!(s.end, JobEnd::Stopped { .. }));
        history.record(mapping, &ids, interrupted);
        if let Err(e) = history.save(path, &settings.project) {
            outcome.notes.push(e.to_string());
        }
    }
    Ok(RunOutcome::Ran(Box::new(outcome)))
}

/// `<name>-<k>`: shard k's Spark job definition.
pub fn shard_sjd_name(name: &str, k: usize) -> String {
    format!("{name}-{k}")
}

/// `--lf`: the ids that failed last time, or all of them (with a note) when none did — as
/// pytest's `--lf` does by default.
fn select_last_failed(history: &History, ids: Vec<String>, reporter: &dyn Reporter) -> Vec<String> {
    let failed = history.select_last_failed(&ids);
    if failed.is_empty() {
        reporter.note(&format!(
            "--lf: no test of this selection failed in earlier remote runs of this project; running all {}",
            ids.len()
        ));
        ids
    } else {
        reporter.note(&format!(
            "--lf: running the {} of {} selected tests that failed the last time they ran remotely",
            failed.len(),
            ids.len()
        ));
        failed
    }
}

/// One job of a run.
struct JobPlan {
    id: ShardId,
    sjd_name: String,
    layout: Layout,
    ids: Vec<String>,
}

/// A job after it ended, with what it left.
struct Followed {
    end: JobEnd,
    job_elapsed: Duration,
    live: Live,
    status: Option<RemoteStatus>,
    notes: Vec<String>,
    submitted: Option<Submitted>,
}

/// The job's inputs, into its folder.
async fn upload_inputs(
    dfs: &DfsClient,
    layout: &Layout,
    run_json: &prepare::RunJson,
    ids: &[String],
    requirements: &str,
    settings: &RunSettings,
) -> Result<(), RunError> {
    let inputs = [
        (
            layout::RUN_JSON,
            serde_json::to_vec_pretty(run_json).unwrap_or_default(),
        ),
        (layout::NODEIDS, prepare::nodeids_text(ids).into_bytes()),
        (layout::REQUIREMENTS, requirements.as_bytes().to_vec()),
        (
            layout::TEST_ENV_REMOTE,
            settings.remote_env.text.clone().into_bytes(),
        ),
    ];
    let uploads = inputs.into_iter().map(|(name, body)| {
        let loc = layout.run_file(name);
        async move {
            dfs.upload_bytes(&loc?, &Bytes::from(body))
                .await
                .map_err(RunError::from)
        }
    });
    for r in futures::future::join_all(uploads).await {
        r?;
    }
    Ok(())
}

/// What the remote preparation found or made.
struct Remote {
    synced: sync::Summary,
    ws: Workspace,
    lake: Item,
    layout: Layout,
    /// The SJD without shards (shards find or create theirs once the split is known).
    sjd: Option<(Item, SjdAction)>,
    /// What every SJD of the run must point at.
    want: SparkJobDefinitionV1,
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
        return Err(RunError::SyncIncomplete {
            failed: summary.failed,
            first: summary
                .failures
                .first()
                .map(ToString::to_string)
                .unwrap_or_default(),
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
    let sjd = if settings.shards > 1 {
        None
    } else {
        let ensured = fabric.ensure_sjd(&ws, &settings.sjd_name, &want).await?;
        Some((ensured.sjd, ensured.action))
    };
    Ok(Remote {
        synced: summary,
        ws,
        lake,
        layout,
        sjd,
        want,
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
