//! `fabric-remote demo`: the main flow on a laptop, against an embedded emulator.
//!
//! Starts the emulator, syncs the sample project (embedded in the binary, so the demo works
//! from anywhere) into the lakehouse, re-syncs to show the no-op, uploads a small runner,
//! creates or reuses a Spark job definition, runs it (the emulator runs pytest with
//! `--python`), follows it with `[m:ss]` lines, fetches the junit XML and prints it the way
//! pytest would, mapped onto the node ids collected locally.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use bytes::Bytes;
use fabric_emulator::{Config, Emulator};
use fabric_remote::auth::Credentials;
use fabric_remote::dfs::DfsClient;
use fabric_remote::fabric::{FabricClient, SjdAction, SparkJobDefinitionV1, abfss_url, portal_url};
use fabric_remote::http::{HttpClient, RetryPolicy};
use fabric_remote::junit;
use fabric_remote::location::{Location, RemoteLocation};
use fabric_remote::secret::Secret;
use fabric_remote::sync::{self, Silent, SyncOptions};

use super::job::{StatusLines, human};
use crate::cli::ExitStatus;
use crate::cli::args::DemoArgs;

/// The sample project, as shipped in `examples/sample-project`.
const PROJECT: &[(&str, &str)] = &[
    (
        "pyproject.toml",
        include_str!("../../../examples/sample-project/pyproject.toml"),
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
const RUNNER: &str = include_str!("../demo_runner.py");
const SJD_NAME: &str = "fabric-remote-demo";
const BASE: &str = "fabric-remote/demo";

pub async fn run(args: &DemoArgs) -> anyhow::Result<ExitStatus> {
    let python = super::emulator::absolute_program(&args.python);
    let has_pytest = std::process::Command::new(&python)
        .args(["-c", "import pytest"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_pytest {
        anyhow::bail!(
            "the demo runs pytest inside the emulated Spark job with `{}`, which cannot import pytest; run ./scripts/demo (it installs pytest into .venv) or pass --python PATH",
            python.display()
        );
    }
    let project = tempfile::tempdir().context("cannot create a temporary directory")?;
    for (rel, text) in PROJECT {
        let path = project.path().join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, text)?;
    }

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
    let ws = fabric.resolve_workspace("My Workspace").await?;
    let lake = fabric.resolve_lakehouse(&ws, "lake").await?;
    let files = RemoteLocation::parse(&format!("{url}/{}/{}/Files", ws.id, lake.id))?;

    // 1. Sync the project, then once more: the second time is one listing and no writes.
    let remote_project = files.join(&format!("{BASE}/project"))?;
    let cache = tempfile::tempdir()?;
    let options = SyncOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..SyncOptions::default()
    };
    let (src, dst) = (
        Location::Local(project.path().to_path_buf()),
        Location::Remote(remote_project.clone()),
    );
    let first = sync::sync(&src, &dst, &dfs, &options, &Silent).await?;
    println!(
        "Synced the sample project to Files/{BASE}/project: {} files uploaded ({:.1}s)",
        first.uploaded,
        first.elapsed_ms as f64 / 1000.0
    );
    emu.clear_requests();
    let again = sync::sync(&src, &dst, &dfs, &options, &Silent).await?;
    println!(
        "Synced again: {} uploaded, {} unchanged, {} request(s), {} local files re-read",
        again.uploaded,
        again.unchanged,
        emu.requests().len(),
        again.hashed_files
    );

    // 2. The runner and the Spark job definition that runs it.
    let runner = files.join(&format!("{BASE}/runner.py"))?;
    dfs.upload_bytes(&runner, &Bytes::from_static(RUNNER.as_bytes()))
        .await?;
    let run_id = format!(
        "run-{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    let results = format!("{BASE}/runs/{run_id}");
    let want = SparkJobDefinitionV1::python(
        &abfss_url(&ws.id, &lake.id, &format!("Files/{BASE}/runner.py")),
        &lake.id,
        Some(&format!("{BASE}/project {results}")),
    );
    let ensured = fabric.ensure_sjd(&ws, SJD_NAME, &want).await?;
    let verb = match ensured.action {
        SjdAction::Created => "Created",
        SjdAction::Updated => "Updated",
        SjdAction::Unchanged => "Reusing",
    };
    println!("{verb} Spark job definition `{SJD_NAME}`");

    // 3. Run it and follow it.
    let submission = fabric.run_sjd(&ws, &ensured.sjd, None).await?;
    println!("Submitted job {}", submission.job.job_id);
    println!(
        "  (on a real tenant: {})",
        portal_url(&ws.id, &ensured.sjd.id)
    );
    let mut lines = StatusLines::new(submission.submitted_at);
    let outcome = fabric
        .wait_for_job(&submission, Some(Duration::from_secs(600)), &mut lines)
        .await?;
    if !outcome.state.is_success() {
        println!("{:?} ({})", outcome.state, human(outcome.elapsed));
        if let Some(reason) = outcome.failure_message() {
            println!("  {reason}");
        }
        return Ok(ExitStatus::Code(3));
    }
    println!("Completed ({})", human(outcome.elapsed));

    // 4. Bring the results home and show them as pytest would.
    let xml = dfs
        .read(&files.join(&format!("{results}/results.xml"))?, None)
        .await
        .context("the job finished but wrote no results.xml")?;
    let expected = collect_locally(&python, project.path())?;
    let doc =
        junit::parse(&xml).map_err(|e| anyhow!("the job's results.xml is not junit XML: {e}"))?;
    let mapping = junit::map(&doc, Some(&expected));
    println!();
    print!("{}", junit::render_text(&mapping));
    Ok(match mapping.exit_code() {
        0 => ExitStatus::Success,
        1 => ExitStatus::Failure,
        code => ExitStatus::Code(code),
    })
}

/// The node ids pytest collects locally: every one must come back with a result.
fn collect_locally(python: &Path, project: &Path) -> anyhow::Result<Vec<String>> {
    let out = std::process::Command::new(python)
        .args([
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
        ])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(project)
        .output()
        .context("cannot run pytest to collect the tests locally")?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(junit::parse_nodeids(
        &text
            .lines()
            .filter(|l| l.contains("::"))
            .collect::<Vec<_>>()
            .join("\n"),
    ))
}
