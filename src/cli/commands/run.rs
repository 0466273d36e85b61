//! `fabric-remote run [OPTIONS] [-- PYTEST_ARGS…]`: the project's pytest suite inside a
//! Fabric Spark job definition run, shown as pytest would show it ([`fabric_remote::run`]).
//!
//! Settings come from the flags, then `test.env` (found from the working directory upwards,
//! python-dotenv's rules) under the process environment. Ctrl-C or SIGTERM cancels the job
//! and reports what finished; a second one stops waiting for the job to stop; a third exits
//! at once. Exit status: pytest's (0, 1, 2, 4, 5), 3 when the infrastructure failed.
//! `--stream-reports` is the machine interface of the pytest plugin (see `docs/run.md`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use fabric_remote::auth::Credentials;
use fabric_remote::dfs::DfsClient;
use fabric_remote::diagnostic::Kind;
use fabric_remote::env::{self, Env};
use fabric_remote::fabric::FabricClient;
use fabric_remote::http::{HttpClient, RetryPolicy};
use fabric_remote::junit;
use fabric_remote::run::{self, Config, Python, RunOutcome, RunSettings};
use fabric_remote::sync::exclude::Excludes;
use fabric_remote::sync::scan::ScanOptions;
use fabric_remote::sync::{self, SyncOptions};

use crate::cli::ExitStatus;
use crate::cli::args::RunArgs;
use crate::cli::console::{RunConsole, interrupts};
use crate::cli::diagnostics::{self, Report};

/// The SJD name when neither `--sjd` nor `FABRIC_TEST_SPARK_JOB_NAME` is given.
pub const DEFAULT_SJD: &str = "dbt-fabric-tests";

pub async fn run(args: &RunArgs) -> Result<ExitStatus, Report> {
    let console = RunConsole::new(args.stream_reports);
    match execute(args, &console).await {
        Ok(outcome) => Ok(console.finish(&outcome)),
        Err(report) => {
            // Configuration is exit 2; anything else stopped the run from outside the tests
            // (exit 3: for `run`, 1 means failed tests).
            let code = if report.kind() == Kind::Usage { 2 } else { 3 };
            let lines = diagnostics::lines(&report);
            for line in &lines {
                eprintln!("{line}");
            }
            let message = lines
                .first()
                .map(|l| l.trim_start_matches("error: ").to_string())
                .unwrap_or_default();
            console.finish_error(code, &message);
            Ok(ExitStatus::Code(code))
        }
    }
}

async fn execute(args: &RunArgs, console: &RunConsole) -> Result<RunOutcome, Report> {
    let cwd = std::env::current_dir()
        .map_err(|e| Report::usage(format!("cannot read the working directory: {e}")))?;
    let cwd = std::fs::canonicalize(&cwd).unwrap_or(cwd);
    let config = Config::load_process(&cwd)?;
    let env = config.env();
    let settings = settings(args, &config, &env, &cwd, console)?;
    let credentials = Credentials::from_env(&env)?;
    let http = HttpClient::new(credentials, RetryPolicy::default())?;
    let dfs = DfsClient::new(http.clone());
    let mut fabric = FabricClient::new(http);
    if let Some(endpoint) = env.get(env::FABRIC_REMOTE_API_ENDPOINT) {
        fabric = fabric.with_endpoint(&endpoint)?;
    }
    let outcome = run::run(&settings, &dfs, &fabric, console, interrupts()).await?;
    Ok(outcome)
}

/// Flags, test.env and the environment → validated settings (errors here are exit 2).
fn settings(
    args: &RunArgs,
    config: &Config,
    env: &Env,
    cwd: &Path,
    console: &RunConsole,
) -> Result<RunSettings, Report> {
    if let Some(file) = config.file() {
        for line in &config.skipped_lines {
            console.note(&format!(
                "{}: line {line} could not be parsed and is ignored (python-dotenv ignores it too)",
                file.display()
            ));
        }
    }
    let workspace = args
        .workspace
        .clone()
        .or_else(|| config.get(env::FABRIC_TEST_WORKSPACE_ID))
        .or_else(|| config.get(env::FABRIC_TEST_WORKSPACE_NAME))
        .ok_or_else(|| config.missing(env::FABRIC_TEST_WORKSPACE_NAME))?;
    let lakehouse = args
        .lakehouse
        .clone()
        .or_else(|| config.get(env::FABRIC_TEST_LAKEHOUSE_NAME))
        .ok_or_else(|| config.missing(env::FABRIC_TEST_LAKEHOUSE_NAME))?;
    let sjd_name = args
        .sjd
        .clone()
        .or_else(|| config.get(env::FABRIC_TEST_SPARK_JOB_NAME))
        .unwrap_or_else(|| DEFAULT_SJD.to_string());
    let project = match &args.project {
        Some(p) => std::fs::canonicalize(p).map_err(|e| {
            Report::usage(format!("--project {} is not a directory: {e}", p.display()))
        })?,
        None => find_project(cwd),
    };
    if !project.is_dir() {
        return Err(Report::usage(format!(
            "--project {} is not a directory",
            project.display()
        )));
    }
    let nodeids = match &args.nodeids_from {
        Some(file) => {
            let text = std::fs::read_to_string(file).map_err(|e| {
                Report::usage(format!(
                    "cannot read the node ids file {}: {e}",
                    file.display()
                ))
            })?;
            let ids = junit::parse_nodeids(&text);
            if ids.is_empty() {
                return Err(Report::usage(format!(
                    "{} lists no node ids",
                    file.display()
                )));
            }
            Some(ids)
        }
        None => None,
    };
    if args.nodeids_from.is_none()
        && !args.last_failed
        && args
            .pytest_args
            .iter()
            .any(|a| a == "--lf" || a == "--last-failed")
    {
        console.note(
            "`--lf` after `--` is pytest's own: it selects from the local pytest cache, which remote runs do not fill; to rerun what failed remotely, put `--lf` before `--` (`fabric-remote run --lf`)",
        );
    }
    let path_var = env.get("PATH");
    let python = Python::choose(args.python.as_deref(), &project, path_var.as_deref());
    let mut patterns: Vec<String> = run::prepare::DEFAULT_EXCLUDES
        .iter()
        .map(|s| s.to_string())
        .collect();
    patterns.extend(args.exclude.iter().cloned());
    let remote_env = config.remote_env();
    if !remote_env.dropped.is_empty() {
        console.note(&format!(
            "test.env.remote leaves out {} (they look like secrets; the remote side authenticates with notebookutils)",
            remote_env.dropped.join(", ")
        ));
    }
    let skip_install = env
        .get(env::FABRIC_REMOTE_SKIP_INSTALL)
        .is_some_and(|v| !matches!(v.trim(), "0" | "false" | "no"));
    Ok(RunSettings {
        remote_name: run::layout::folder_name(match &args.remote_name {
            Some(n) => n,
            None => project.file_name().and_then(|n| n.to_str()).unwrap_or(""),
        }),
        project,
        cwd: cwd.to_path_buf(),
        pytest_args: args.pytest_args.clone(),
        python,
        nodeids,
        workspace,
        lakehouse,
        sjd_name,
        onelake_endpoint: env.get(env::FABRIC_REMOTE_ONELAKE_ENDPOINT),
        remote_env,
        install: !args.no_install && !skip_install,
        timeout: args.timeout.map(Duration::from_secs),
        cancel_wait: Duration::from_secs(120),
        live_interval: Duration::from_secs(1),
        chunk_seconds: 2.0,
        sync: SyncOptions {
            excludes: Excludes::new(&patterns, &args.exclude_from)
                .map_err(|e| Report::usage(e.to_string()))?,
            scan: ScanOptions {
                gitignore: true,
                follow_links: false,
            },
            cache_dir: sync::default_cache_dir(env),
            ..SyncOptions::default()
        },
        path_var,
        shards: args.shards,
        last_failed: args.last_failed,
    })
}

/// The nearest directory from `cwd` upwards that looks like a Python project, else `cwd`.
fn find_project(cwd: &Path) -> PathBuf {
    const MARKERS: &[&str] = &["pyproject.toml", "setup.py", "setup.cfg", "pytest.ini"];
    cwd.ancestors()
        .find(|d| MARKERS.iter().any(|m| d.join(m).is_file()))
        .unwrap_or(cwd)
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_is_the_nearest_python_project_upwards() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/tests");
        std::fs::create_dir_all(&sub).unwrap();
        assert_eq!(find_project(&sub), sub);
        std::fs::write(dir.path().join("a/pyproject.toml"), "").unwrap();
        assert_eq!(find_project(&sub), dir.path().join("a"));
    }
}
