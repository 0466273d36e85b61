//! clap types for every subcommand. Validation beyond what clap does lives in each command.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// Mirror a local tree to OneLake, run pytest inside Fabric Spark, and emulate both on loopback.
#[derive(Debug, Parser)]
#[command(name = "fabric-remote", version, about, propagate_version = true)]
pub struct Cli {
    /// Log to stderr: -v one line per HTTP request (method, URL, status, time, attempt,
    /// request id), -vv also retries and decisions, -vvv everything. RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Also write a debug-level log to this file (secrets are never logged).
    #[arg(long, value_name = "PATH", global = true)]
    pub log_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make DST equal to SRC (one local directory, one remote URL), by content hash.
    Sync(SyncArgs),
    /// List a remote directory (size, last modified, path).
    Ls(LsArgs),
    /// Run a local OneLake + Fabric REST emulator on loopback.
    Emulator(EmulatorArgs),
    /// Map pytest results (junit XML or a report log) to pytest outcomes, printed pytest-style.
    Report(ReportArgs),
    /// Run the project's pytest suite inside a Fabric Spark job and show the results as pytest would.
    Run(RunArgs),
    /// Start an embedded emulator and walk through the main flow against it.
    Demo(DemoArgs),
    /// Run a Python file as a Fabric Spark job definition; follow, cancel, or read its runs.
    Job(JobArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Source: a local directory or a remote URL.
    pub src: String,
    /// Destination: a remote URL or a local directory (the other kind than SRC).
    pub dst: String,
    /// Leave out paths matching this gitignore-style glob (repeatable). `test.env` is always left out.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Read exclude globs from this file, one per line (repeatable).
    #[arg(long, value_name = "FILE")]
    pub exclude_from: Vec<PathBuf>,
    /// Also honour .gitignore files in the tree.
    #[arg(long)]
    pub gitignore: bool,
    /// Follow symbolic links instead of skipping them.
    #[arg(long)]
    pub follow_links: bool,
    /// Keep destination files that are not in SRC.
    #[arg(long)]
    pub no_delete: bool,
    /// Also delete destination paths matched by --exclude.
    #[arg(long)]
    pub delete_excluded: bool,
    /// Delete nothing if more than N files would be deleted.
    #[arg(long, value_name = "N")]
    pub max_delete: Option<u64>,
    /// Print what would be transferred and deleted; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON summary object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Most requests in flight (shrinks by itself when the service throttles).
    #[arg(
        long,
        default_value_t = fabric_remote::sync::DEFAULT_CONCURRENCY,
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = at_least_one
    )]
    pub concurrency: usize,
    /// When another sync holds the remote's lock, wait this long for it before giving up
    /// (0: give up at once).
    #[arg(
        long,
        default_value_t = fabric_remote::sync::DEFAULT_LOCK_WAIT.as_secs(),
        value_name = "SECS",
        allow_negative_numbers = true,
        value_parser = whole_seconds
    )]
    pub lock_wait: u64,
    /// Which storage API to use: `auto` (Blob for listings and transfers, DFS for
    /// directory deletes on OneLake and ADLS Gen2; Blob on Blob endpoints), `dfs` or `blob`.
    #[arg(long, value_enum, default_value_t = ApiArg::Auto, value_name = "API")]
    pub api: ApiArg,
}

/// `--api`: which storage API a remote command speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApiArg {
    Auto,
    Dfs,
    Blob,
}

/// A count of at least 1, with a message that says so (clap's own would suggest `-- -1`).
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<i64>() {
        Ok(n) if n >= 1 => usize::try_from(n).map_err(|_| format!("`{s}` is too large")),
        Ok(_) => Err(format!(
            "`{s}` is not allowed: give a whole number of at least 1"
        )),
        Err(_) => Err(format!(
            "`{s}` is not a number: give a whole number of at least 1"
        )),
    }
}

/// Seconds, 0 or more.
fn whole_seconds(s: &str) -> Result<u64, String> {
    match s.trim().parse::<i64>() {
        Ok(n) if n >= 0 => Ok(n as u64),
        _ => Err(format!("`{s}` is not a number of seconds: give 0 or more")),
    }
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Remote URL: https://onelake.dfs.fabric.microsoft.com/<ws>/<item>/Files/..., abfss://..., a Blob container URL, or any http(s) DFS endpoint.
    pub url: String,
    /// List the whole tree below URL, not only its direct children.
    #[arg(short, long)]
    pub recursive: bool,
    /// Print one JSON object per entry instead of the long listing.
    #[arg(long)]
    pub json: bool,
    /// Which storage API to list with: `auto` (DFS on DFS endpoints, Blob on Blob
    /// endpoints), `dfs` or `blob`.
    #[arg(long, value_enum, default_value_t = ApiArg::Auto, value_name = "API")]
    pub api: ApiArg,
}

#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Directory holding the emulated files (default: a fresh temporary directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Workspace name served by the emulator.
    #[arg(long, default_value = "My Workspace")]
    pub workspace: String,
    /// Lakehouse name(s) in that workspace (repeatable).
    #[arg(long, default_value = "lake")]
    pub lakehouse: Vec<String>,
    /// Fraction of requests answered with 429 (Retry-After) or 503 ServerBusy.
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Fraction of requests whose connection is dropped without an answer.
    #[arg(long, default_value_t = 0.0)]
    pub reset_rate: f64,
    /// Delay added to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Largest listing page the emulator returns (the real service's cap is 5000).
    #[arg(long, default_value_t = 5000)]
    pub page_size: usize,
    /// Seed for the fault injection, so a failing run can be replayed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Python that runs Spark job definitions' Python files.
    #[arg(long, default_value = "python3")]
    pub python: PathBuf,
    /// How long a new job instance answers 404 before it becomes visible (keep it below
    /// --retry-after-secs unless testing a client against early 404s).
    #[arg(long, default_value_t = 500, value_name = "MS")]
    pub job_visible_after_ms: u64,
    /// Retry-After (seconds) on 202 answers and job polls.
    #[arg(long, default_value_t = 1, value_name = "SECS")]
    pub retry_after_secs: u64,
    /// Share of item creates and definition calls answered as 202 long-running operations.
    #[arg(long, default_value_t = 0.5, value_name = "F")]
    pub lro_rate: f64,
    /// Serve HTTPS with a certificate made at start; its CA is written to the data directory.
    #[arg(long)]
    pub tls: bool,
    /// Append one line per request (`METHOD /path?query STATUS`) to this file, as it is
    /// served (benchmarks count requests from it).
    #[arg(long, value_name = "FILE")]
    pub access_log: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// pytest results: junit XML (xunit1 or xunit2) or a report log (pytest --report-log,
    /// JSON lines); which one is told from the content.
    pub results: PathBuf,
    /// File with the expected pytest node ids, one per line; each must have a result.
    #[arg(long)]
    pub nodeids: Option<PathBuf>,
    /// The --junitprefix pytest ran with (junit XML only).
    #[arg(long, value_name = "PREFIX")]
    pub junitprefix: Option<String>,
    /// Print one JSON record per test instead of pytest-style text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Workspace name or id [default: FABRIC_TEST_WORKSPACE_ID or FABRIC_TEST_WORKSPACE_NAME].
    #[arg(long, value_name = "NAME|ID")]
    pub workspace: Option<String>,
    /// Lakehouse name or id for the project and the results [default: FABRIC_TEST_LAKEHOUSE_NAME].
    #[arg(long, value_name = "NAME|ID")]
    pub lakehouse: Option<String>,
    /// Spark job definition name [default: FABRIC_TEST_SPARK_JOB_NAME, else dbt-fabric-tests].
    #[arg(long, value_name = "NAME")]
    pub sjd: Option<String>,
    /// The project to sync [default: the nearest directory upwards with a pyproject.toml, setup.py, setup.cfg or pytest.ini, else the working directory].
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Python that collects the tests locally [default: the project's .venv, else `uv run python`, else python3].
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Folder name of the project under Files/fabric-remote/projects/ [default: the project directory's name].
    #[arg(long, value_name = "NAME")]
    pub remote_name: Option<String>,
    /// Also leave out paths matching this gitignore-style glob (repeatable); test.env never goes.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Read more exclude globs from this file (repeatable).
    #[arg(long, value_name = "FILE")]
    pub exclude_from: Vec<PathBuf>,
    /// Cancel the job if it has not finished this many seconds after the submit.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Skip local collection and run exactly these node ids (one per line).
    #[arg(long, value_name = "FILE")]
    pub nodeids_from: Option<PathBuf>,
    /// Write only JSON lines to stdout: every remote report-log record as it arrives, then one
    /// FabricRemoteFinish record. Everything for people goes to stderr.
    #[arg(long)]
    pub stream_reports: bool,
    /// Do not pip install the requirements and the project remotely (also FABRIC_REMOTE_SKIP_INSTALL=1).
    #[arg(long)]
    pub no_install: bool,
    /// Split the tests over N Spark jobs running at once (SJDs `<sjd>-1` … `<sjd>-N`),
    /// balanced by the durations of earlier runs; the tests of a class stay together.
    #[arg(long, value_name = "N", default_value_t = 1, allow_negative_numbers = true, value_parser = shard_count)]
    pub shards: usize,
    /// Run only the tests that failed or errored the last time they ran remotely (all of
    /// them when none did). `--lf` after `--` is pytest's own and reads the local cache.
    #[arg(long = "lf", visible_alias = "last-failed")]
    pub last_failed: bool,
    /// pytest's arguments, after `--`.
    #[arg(last = true, value_name = "PYTEST_ARGS")]
    pub pytest_args: Vec<String>,
}

/// `--shards`: 1 to [`fabric_remote::run::MAX_SHARDS`].
fn shard_count(s: &str) -> Result<usize, String> {
    let max = fabric_remote::run::MAX_SHARDS;
    match s.trim().parse::<i64>() {
        Ok(n) if n >= 1 && n <= max as i64 => Ok(n as usize),
        _ => Err(format!(
            "`{s}` is not a number of shards: give a whole number from 1 to {max}"
        )),
    }
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the emulator's data directory here instead of a temporary one.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Python with pytest installed: collects the tests and runs the emulated Spark job (scripts/demo passes .venv's).
    #[arg(long, default_value = "python3")]
    pub python: PathBuf,
    /// pytest's arguments for the sample project, after `--` [default: -v].
    #[arg(last = true, value_name = "PYTEST_ARGS")]
    pub pytest_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct JobArgs {
    #[command(subcommand)]
    pub command: JobCommand,
}

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Run a Spark job definition (creating it, or pointing it at --file, first).
    Run(JobRunArgs),
    /// Show the status of one run.
    Status(JobInstanceArgs),
    /// Cancel one run and wait until it has stopped.
    Cancel(JobCancelArgs),
    /// Print a run's Spark driver log (stdout to stdout, stderr to stderr).
    Logs(JobLogsArgs),
    /// List the Spark job definitions of the workspace.
    List(JobWhereArgs),
}

/// Where the job lives; each flag falls back to its environment variable.
#[derive(Debug, Args)]
pub struct JobWhereArgs {
    /// Workspace name or id [default: FABRIC_TEST_WORKSPACE_ID or FABRIC_TEST_WORKSPACE_NAME].
    #[arg(long, value_name = "NAME|ID")]
    pub workspace: Option<String>,
    /// Lakehouse name or id for --file and the job's default lakehouse [default: FABRIC_TEST_LAKEHOUSE_NAME].
    #[arg(long, value_name = "NAME|ID")]
    pub lakehouse: Option<String>,
}

#[derive(Debug, Args)]
pub struct JobRunArgs {
    /// Spark job definition name [default: FABRIC_TEST_SPARK_JOB_NAME, else dbt-fabric-tests].
    #[arg(long, value_name = "NAME")]
    pub sjd: Option<String>,
    /// Local Python file to upload to the lakehouse (Files/fabric-remote/jobs/) and run.
    #[arg(long, value_name = "LOCAL_PY")]
    pub file: Option<PathBuf>,
    /// Command-line arguments of the job, one space-separated string.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub args: Option<String>,
    /// Wait for the run to finish, printing its status; Ctrl-C cancels it.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: cancel the run if it has not finished after this many seconds.
    #[arg(long, value_name = "SECS", requires = "wait")]
    pub timeout: Option<u64>,
    #[command(flatten)]
    pub place: JobWhereArgs,
}

#[derive(Debug, Args)]
pub struct JobInstanceArgs {
    /// The job instance id `job run` printed.
    pub job_id: String,
    /// Spark job definition name [default: FABRIC_TEST_SPARK_JOB_NAME, else dbt-fabric-tests].
    #[arg(long, value_name = "NAME")]
    pub sjd: Option<String>,
    #[command(flatten)]
    pub place: JobWhereArgs,
}

#[derive(Debug, Args)]
pub struct JobCancelArgs {
    #[command(flatten)]
    pub job: JobInstanceArgs,
    /// Return once the cancel is accepted, without waiting for the run to stop.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Args)]
pub struct JobLogsArgs {
    #[command(flatten)]
    pub job: JobInstanceArgs,
    /// Only the driver's stdout.
    #[arg(long, conflicts_with = "stderr")]
    pub stdout: bool,
    /// Only the driver's stderr.
    #[arg(long)]
    pub stderr: bool,
}
