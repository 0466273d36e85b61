//! `fabric-remote demo`: the main flow on a laptop: start an embedded emulator, then `run` the
//! sample project (embedded in the binary, so the demo works from anywhere) against it, and
//! render the run exactly as `fabric-remote run` does.
//!
//! `--python` collects the tests locally and runs the emulated Spark job (the emulator skips
//! the remote `pip install`: that Python already has pytest).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use fabric_emulator::{Config, Emulator};
use fabric_remote::auth::Credentials;
use fabric_remote::dfs::DfsClient;
use fabric_remote::fabric::FabricClient;
use fabric_remote::http::{HttpClient, RetryPolicy};
use fabric_remote::run::{self, Python, RunSettings};
use fabric_remote::secret::Secret;
use fabric_remote::sync::SyncOptions;
use fabric_remote::sync::exclude::Excludes;

use crate::cli::ExitStatus;
use crate::cli::args::DemoArgs;
use crate::cli::console::{RunConsole, interrupts};

/// The sample project, as shipped in `examples/sample-project`.
const PROJECT: &[(&str, &str)] = &[
    (
        "pyproject.toml",
        include_str!("../../../examples/sample-project/pyproject.toml"),
    ),
    (
        "uv.lock",
        include_str!("../../../examples/sample-project/uv.lock"),
    ),
    (
        "src/sample/__init__.py",
        include_str!("../../../examples/sample-project/src/sample/__init__.py"),
    ),
    (
        "tests/test_sample.py",
        include_str!("../../../examples/sample-project/tests/test_sample.py"),
    ),
];
const SJD_NAME: &str = "fabric-remote-demo";

pub async fn run(args: &DemoArgs) -> anyhow::Result<ExitStatus> {
    // Relative (`.venv/bin/python`) made absolute: the job runs in its own directory.
    let python = if args.python.components().count() > 1 {
        std::path::absolute(&args.python).unwrap_or_else(|_| args.python.clone())
    } else {
        args.python.clone()
    };
    let has_pytest = std::process::Command::new(&python)
        .args(["-c", "import pytest"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_pytest {
        anyhow::bail!(
            "the demo runs pytest locally and inside the emulated Spark job with `{}`, which cannot import pytest; run ./scripts/demo (it installs pytest into .venv) or pass --python PATH",
            python.display()
        );
    }
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let project = temp.path().join("sample-project");
    for (rel, text) in PROJECT {
        let path = project.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, text)?;
    }
    let project = std::fs::canonicalize(&project)?;

    let config = Config {
        data_dir: args.data_dir.clone(),
        python: Some(python.clone()),
        job_visible_after_ms: 400,
        fabric_retry_after_secs: 1,
        ..Config::default()
    };
    let emu = tokio::task::spawn_blocking(move || Emulator::start(config))
        .await?
        .context("could not start the embedded emulator")?;
    let url = emu.url();
    println!("Emulator listening on {url} (workspace `My Workspace`, lakehouse `lake`)");
    println!("  data directory: {}", emu.data_dir().display());

    let http = HttpClient::new(
        Credentials::from_token(Secret::new("demo")),
        RetryPolicy::default(),
    )?;
    let dfs = DfsClient::new(http.clone());
    let fabric = FabricClient::new(http).with_endpoint(&url)?;
    // uv (for `uv export`) sits next to the venv's Python.
    let path_var = std::env::join_paths(python.parent().map(Path::to_path_buf).into_iter().chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .ok()
    .and_then(|p| p.into_string().ok());
    let no_env = tempfile::tempdir()?;
    let remote_env = run::Config::load(no_env.path(), Default::default())?.remote_env();
    let pytest_args = if args.pytest_args.is_empty() {
        vec!["-v".to_string()]
    } else {
        args.pytest_args.clone()
    };
    let settings = RunSettings {
        cwd: project.clone(),
        remote_name: "sample-project".into(),
        project,
        pytest_args,
        python: Python::Program(python),
        nodeids: None,
        workspace: emu.workspace_name().to_string(),
        lakehouse: "lake".into(),
        sjd_name: SJD_NAME.into(),
        onelake_endpoint: Some(url),
        remote_env,
        install: false,
        timeout: Some(Duration::from_secs(600)),
        cancel_wait: Duration::from_secs(30),
        live_interval: Duration::from_millis(500),
        chunk_seconds: 1.0,
        sync: SyncOptions {
            excludes: Excludes::new(
                &run::prepare::DEFAULT_EXCLUDES
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
                &[],
            )?,
            cache_dir: Some(temp.path().join("cache")),
            ..SyncOptions::default()
        },
        path_var,
        shards: 1,
        last_failed: false,
    };
    let console = RunConsole::new(false);
    let outcome = run::run(&settings, &dfs, &fabric, &console, interrupts()).await?;
    let status = console.finish(&outcome);
    drop(emu);
    Ok(status)
}
