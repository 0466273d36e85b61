//! `fabric-remote run` against the emulator with real pytest on both sides, and the pieces it
//! rests on: test.env read exactly as python-dotenv reads it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use fabric_remote::dotenv;

use crate::util::{python, root};

// ---- test.env: python-dotenv and src/dotenv.rs agree on a corpus of tricky files ----

const DOTENV_REFERENCE: &str = r#"
import json, sys
from dotenv.main import DotEnv
from dotenv.parser import parse_stream
out = {}
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        errors = []
        for b in parse_stream(f):
            if b.error:
                s = b.original.string
                errors.append(b.original.line + s[: len(s) - len(s.lstrip())].count("\n"))
    out[path] = {
        "load": list(DotEnv(path, interpolate=True, override=False).dict().items()),
        "override": list(DotEnv(path, interpolate=True, override=True).dict().items()),
        "errors": errors,
    }
print(json.dumps(out))
"#;

type Values = Vec<(String, Option<String>)>;

#[test]
fn dotenv_corpus_reads_exactly_as_python_dotenv() {
    let dir = root().join("tests/fixtures/dotenv");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "env"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    let env: HashMap<String, String> = [
        ("HOME_FOR_TEST", "from-env"),
        ("PATH", "/usr/bin:/bin"),
        ("PYTHONUTF8", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let out = Command::new(python())
        .env_clear()
        .envs(&env)
        .arg("-c")
        .arg(DOTENV_REFERENCE)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: HashMap<String, serde_json::Value> =
        serde_json::from_slice(&out.stdout).unwrap();
    let lookup = |k: &str| env.get(k).cloned();
    for file in &files {
        let want = &reference[&file.to_string_lossy().into_owned()];
        let text = String::from_utf8(std::fs::read(file).unwrap()).unwrap();
        let parsed = dotenv::parse(&text);
        let load: Values = serde_json::from_value(want["load"].clone()).unwrap();
        let over: Values = serde_json::from_value(want["override"].clone()).unwrap();
        let errors: Vec<usize> = serde_json::from_value(want["errors"].clone()).unwrap();
        let name = file.file_name().unwrap().to_string_lossy();
        assert_eq!(
            dotenv::resolve(&parsed.bindings, lookup, false),
            load,
            "{name}: load"
        );
        assert_eq!(
            dotenv::resolve(&parsed.bindings, lookup, true),
            over,
            "{name}: override"
        );
        assert_eq!(parsed.errors, errors, "{name}: skipped lines");
    }
}

// ---- fabric-remote run against the emulator ----

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use fabric_emulator::{Config, Emulator};
use fabric_remote::auth::Credentials;
use fabric_remote::fabric::{FabricClient, JobRef, JobStatus};
use fabric_remote::http::{HttpClient, RetryPolicy};
use fabric_remote::secret::Secret;

use crate::util::{assert_success, fabric_remote, send_signal, text};

/// An emulator whose jobs run with the repository's Python, and a copy of
/// `tests/fixtures/run-project` to run.
pub(crate) struct Remote {
    pub(crate) emu: Emulator,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) project: PathBuf,
}

impl Remote {
    pub(crate) fn start() -> Self {
        let emu = Emulator::start(Config {
            python: Some(python()),
            job_visible_after_ms: 200,
            fabric_retry_after_secs: 0,
            lro_duration_ms: 50,
            ..Config::default()
        })
        .expect("emulator starts");
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("run-project");
        copy_dir(&root().join("tests/fixtures/run-project"), &project);
        Self { emu, dir, project }
    }

    /// `fabric-remote run ARGS` in the project, with only the variables a user would set.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let venv_bin = python().parent().unwrap().to_path_buf();
        let mut cmd = fabric_remote();
        cmd.env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", venv_bin.display()))
            .env("HOME", self.dir.path())
            .env("FABRIC_REMOTE_CACHE_DIR", self.dir.path().join("cache"))
            .env("FABRIC_REMOTE_TOKEN", "t")
            .env("FABRIC_REMOTE_API_ENDPOINT", self.emu.url())
            .env("FABRIC_REMOTE_ONELAKE_ENDPOINT", self.emu.url())
            .env("FABRIC_REMOTE_SKIP_INSTALL", "1")
            .current_dir(&self.project)
            .arg("run")
            .args(["--python", &python().to_string_lossy()])
            .args(args);
        cmd
    }

    /// `fabric-remote run --nodeids-from FILE --stream-reports ARGS` (the plugin's
    /// interface), with `ids` written to FILE one per line.
    pub(crate) fn stream_command(&self, ids: &[&str], args: &[&str]) -> Command {
        let file = self.dir.path().join("ids.txt");
        std::fs::write(&file, ids.join("\n")).unwrap();
        let mut cmd = self.command(&[
            "--nodeids-from",
            &file.to_string_lossy(),
            "--stream-reports",
        ]);
        cmd.args(args);
        cmd
    }

    pub(crate) fn write_test_env(&self, text: &str) {
        std::fs::write(self.project.join("test.env"), text).unwrap();
    }

    pub(crate) fn fabric(&self) -> FabricClient {
        let http = HttpClient::new(
            Credentials::from_token(Secret::new("t")),
            RetryPolicy::default(),
        )
        .unwrap();
        FabricClient::new(http)
            .with_endpoint(&self.emu.url())
            .unwrap()
    }

    /// The job instance of a run, from its `Run … (job instance …)` line.
    pub(crate) fn job(&self, stdout: &str, sjd: &str) -> JobRef {
        let id = stdout
            .lines()
            .find_map(|l| l.split("(job instance ").nth(1))
            .expect("a job instance line")
            .trim_end_matches(')')
            .to_string();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let fabric = self.fabric();
        let sjd = rt.block_on(async {
            let ws = fabric.resolve_workspace("My Workspace").await.unwrap();
            let sjd = fabric.resolve_sjd(&ws, sjd).await.unwrap();
            (ws, sjd)
        });
        JobRef::new(&sjd.0, &sjd.1, &id)
    }

    pub(crate) fn job_instance(&self, job: &JobRef) -> fabric_remote::fabric::JobInstance {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(self.fabric().get_job(job)).unwrap()
    }

    /// Every file the emulator stores (lakehouse files, metadata, job logs).
    pub(crate) fn stored_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![self.emu.data_dir().to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().map(Result::unwrap) {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
        out
    }
}

pub(crate) const ENV: &str =
    "FABRIC_TEST_WORKSPACE_NAME=My Workspace\nFABRIC_TEST_LAKEHOUSE_NAME=lake   # the emulator's\n";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().map(Result::unwrap) {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            if e.file_name() != "__pycache__" && e.file_name() != ".pytest_cache" {
                copy_dir(&src, &dst);
            }
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// `nodeid WORD…` lines of pytest's `-v` output, without the progress column.
pub(crate) fn verbose_lines(out: &str) -> Vec<String> {
    const WORDS: &[&str] = &[
        " PASSED",
        " FAILED",
        " ERROR",
        " SKIPPED",
        " XFAIL",
        " XPASS",
        " SUBPASSED",
        " SUBFAILED",
        " SUBSKIPPED",
    ];
    out.lines()
        .filter(|l| l.starts_with("tests/") && l.contains("::"))
        .filter(|l| WORDS.iter().any(|w| l.contains(w)))
        .map(|l| match l.rfind(" [") {
            Some(i) if l.trim_end().ends_with("%]") => l[..i].trim_end().to_string(),
            _ => l.trim_end().to_string(),
        })
        .collect()
}

/// The closing line's counts: `2 failed, 3 passed` (no time, no `(remote)`).
pub(crate) fn closing_counts(out: &str) -> String {
    let last = out
        .lines()
        .rev()
        .find(|l| l.starts_with('=') && l.contains(" in "))
        .unwrap_or_else(|| panic!("no closing line in:\n{out}"));
    let inner = last.trim_matches('=').trim();
    inner[..inner.rfind(" in ").unwrap()].to_string()
}

/// Runs `pytest ARGS` remotely and locally; the `-v` lines, the closing counts and the exit
/// status must be the same. Returns fabric-remote's stdout.
fn assert_same_as_local(remote: &Remote, args: &[&str]) -> String {
    let mut run_args = vec!["--"];
    run_args.extend_from_slice(args);
    let out = remote.command(&run_args).output().unwrap();
    let stdout = text(&out.stdout);
    let local = Command::new(python())
        .args(["-m", "pytest", "-p", "no:cacheprovider"])
        .args(args)
        .current_dir(&remote.project)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let local_out = text(&local.stdout);
    eprintln!("--- fabric-remote run:\n{stdout}\n{}", text(&out.stderr));
    eprintln!("--- local pytest:\n{local_out}");
    assert_eq!(verbose_lines(&stdout), verbose_lines(&local_out));
    assert_eq!(closing_counts(&stdout), closing_counts(&local_out));
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(
        last.contains(" (remote) =") && last.ends_with('='),
        "{stdout}"
    );
    assert_eq!(out.status.code(), local.status.code());
    stdout
}

#[test]
fn outcomes_lines_counts_and_exit_code_equal_a_local_pytest_run() {
    let remote = Remote::start();
    remote.write_test_env(ENV);
    let stdout = assert_same_as_local(&remote, &["-v", "tests/test_outcomes.py"]);
    assert!(
        stdout.contains("Job URL: https://app.fabric.microsoft.com/groups/"),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("Completed (")),
        "{stdout}"
    );
}

#[test]
fn dash_x_stops_as_pytest_does_and_what_did_not_run_is_no_error() {
    let remote = Remote::start();
    remote.write_test_env(ENV);
    let stdout = assert_same_as_local(&remote, &["-v", "-x", "tests/test_outcomes.py"]);
    assert!(!stdout.contains("no result"), "{stdout}");
}

#[test]
fn a_remote_collection_error_is_an_error_for_its_ids_and_pytests_exit_status() {
    let remote = Remote::start();
    remote.write_test_env(ENV);
    let out = remote
        .command(&["--", "-v", "tests/test_remote_only_import.py"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    eprintln!("{stdout}\n{}", text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(2),
        "pytest's 'Interrupted: 1 error during collection'"
    );
    for id in ["test_one", "test_two"] {
        let line = format!("tests/test_remote_only_import.py::{id} ERROR");
        assert!(
            stdout.lines().any(|l| l.starts_with(&line)),
            "{line}\n{stdout}"
        );
    }
    assert!(
        stdout.contains("this module cannot be imported remotely"),
        "{stdout}"
    );
}

#[test]
fn a_failing_remote_pip_install_exits_3_with_pips_error() {
    let remote = Remote::start();
    remote.write_test_env(ENV);
    std::fs::write(
        remote.project.join("requirements-remote.txt"),
        "--no-index\nno-such-package-for-fabric-remote-tests==1.0\n",
    )
    .unwrap();
    let out = remote
        .command(&["--", "tests/test_hang.py::test_a_quick"])
        .env_remove("FABRIC_REMOTE_SKIP_INSTALL")
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    eprintln!("{stdout}\n{stderr}");
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stdout.lines().any(|l| l.starts_with("Failed (")),
        "{stdout}"
    );
    assert!(
        stderr.contains("no-such-package-for-fabric-remote-tests"),
        "pip's own words are shown: {stderr}"
    );
    assert!(
        stderr.contains("hint: `fabric-remote job logs "),
        "{stderr}"
    );
}

/// Reads a child's stdout line by line, stamping each line with when it arrived.
pub(crate) fn stamped_lines(
    child: &mut std::process::Child,
) -> std::sync::mpsc::Receiver<(SystemTime, String)> {
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send((SystemTime::now(), line));
        }
    });
    rx
}

#[test]
fn with_v_test_lines_appear_while_the_job_is_still_running() {
    let remote = Remote::start();
    remote.write_test_env(ENV);
    let mut child = remote
        .command(&["--", "-v", "tests/test_slow.py"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stamped_lines(&mut child);
    let out = child.wait_with_output().unwrap();
    let lines: Vec<(SystemTime, String)> = rx.iter().collect();
    let all: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    assert_eq!(out.status.code(), Some(0), "{all}\n{}", text(&out.stderr));
    let (first_at, _) = lines
        .iter()
        .find(|(_, l)| l.starts_with("tests/test_slow.py::test_slow[0] PASSED"))
        .unwrap_or_else(|| panic!("no test line:\n{all}"));
    // The job's own end, as the service recorded it.
    let job = remote.job(&all, "dbt-fabric-tests");
    let ended = remote.job_instance(&job).end_time.expect("an end time");
    assert!(
        *first_at < ended,
        "the first test line came {:?} after the job ended:\n{all}",
        first_at.duration_since(ended).unwrap_or_default()
    );
    // Six lines, each once, and a status line with counts on the way.
    assert_eq!(verbose_lines(&all).len(), 6, "{all}");
    assert!(all.contains("Running... "), "{all}");
}

#[test]
fn sigint_mid_run_keeps_finished_outcomes_errors_the_rest_and_cancels_the_job() {
    let remote = Remote::start();
    remote.write_test_env(ENV);
    let mut child = remote
        .command(&["--", "-v", "tests/test_hang.py"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stamped_lines(&mut child);
    let mut seen = String::new();
    let until = Instant::now() + Duration::from_secs(60);
    // Interrupt once both quick tests are reported (the third is then sleeping).
    while !seen.contains("test_b_quick PASSED") {
        let (_, line) = rx
            .recv_timeout(until.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no live line for test_b:\n{seen}"));
        seen.push_str(&line);
        seen.push('\n');
    }

    // Meanwhile a second run of the same SJD is deduped: never success, and says what to do.
    let second = remote
        .command(&["--", "tests/test_hang.py::test_a_quick"])
        .output()
        .unwrap();
    let (s_out, s_err) = (text(&second.stdout), text(&second.stderr));
    assert_eq!(second.status.code(), Some(3), "{s_out}\n{s_err}");
    assert!(
        s_out.lines().any(|l| l.starts_with("Deduped: not run")),
        "{s_out}"
    );
    assert!(
        s_err.contains("hint: wait for the other run to finish"),
        "{s_err}"
    );

    send_signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    for (_, line) in rx.iter() {
        seen.push_str(&line);
        seen.push('\n');
    }
    let stderr = text(&out.stderr);
    eprintln!("{seen}\n{stderr}");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("Interrupted: cancelling job"), "{stderr}");
    let lines = verbose_lines(&seen);
    for want in [
        "tests/test_hang.py::test_a_quick PASSED",
        "tests/test_hang.py::test_b_quick PASSED",
    ] {
        assert_eq!(
            lines.iter().filter(|l| *l == want).count(),
            1,
            "{want}\n{seen}"
        );
    }
    for id in ["test_c_hangs", "test_d_never_starts"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("tests/test_hang.py::{id} ERROR"))),
            "{id}\n{seen}"
        );
    }
    assert!(
        closing_counts(&seen).starts_with("2 passed, 2 errors"),
        "{seen}"
    );
    let job = remote.job(&seen, "dbt-fabric-tests");
    assert_eq!(
        remote.job_instance(&job).status,
        Some(JobStatus::Cancelled),
        "the job was cancelled at the service"
    );
}

#[test]
fn timeout_cancels_the_job_and_exits_2() {
    let remote = Remote::start();
    remote.write_test_env(ENV);
    let out = remote
        .command(&["--timeout", "4", "--", "-v", "tests/test_hang.py"])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    eprintln!("{stdout}\n{stderr}");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("Timed out: cancelling job"), "{stderr}");
    assert!(
        stdout.lines().any(|l| l.starts_with("Cancelled (")),
        "{stdout}"
    );
    let job = remote.job(&stdout, "dbt-fabric-tests");
    assert_eq!(remote.job_instance(&job).status, Some(JobStatus::Cancelled));
}

#[test]
fn a_canary_secret_in_test_env_reaches_no_uploaded_file_and_no_output() {
    let remote = Remote::start();
    let canary = "canary-5f3e9b1d";
    remote.write_test_env(&format!(
        "{ENV}FABRIC_TEST_LABEL=\"two words # not a comment\"\nAZURE_CLIENT_SECRET={canary}-1\nexport STORAGE_URL='https://a.blob.core.windows.net/c?sp=r&sig={canary}-2'\nFABRIC_TEST_AUTH=CLI\n"
    ));
    std::fs::write(
        remote.project.join("tests/test.env"),
        format!("NESTED={canary}-3\n"),
    )
    .unwrap();
    let out = remote
        .command(&["--", "-v", "tests/test_remote_env.py"])
        // The process environment wins over test.env's `CLI`.
        .env("FABRIC_TEST_AUTH", "token")
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    eprintln!("{stdout}\n{stderr}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "the remote side saw test.env.remote"
    );
    assert!(!stdout.contains(canary) && !stderr.contains(canary));
    assert!(
        stderr.contains("leaves out AZURE_CLIENT_SECRET, STORAGE_URL"),
        "{stderr}"
    );
    let files = remote.stored_files();
    assert!(files.iter().any(|f| f.ends_with("test.env.remote")));
    for file in &files {
        assert_ne!(file.file_name().unwrap(), "test.env", "{}", file.display());
        let bytes = std::fs::read(file).unwrap();
        assert!(
            !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
            "the canary is in {}",
            file.display()
        );
    }
}

#[test]
fn stream_reports_passes_every_record_once_in_order_then_a_finish_record() {
    let remote = Remote::start();
    remote.write_test_env(ENV);
    let out = remote
        .stream_command(
            &[
                "tests/test_outcomes.py::test_pass",
                "tests/test_outcomes.py::test_fail",
                "tests/test_outcomes.py::test_xfail",
            ],
            &["--", "tests/test_outcomes.py"],
        )
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let records: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    // Exactly the remote report log, then the finish record.
    let finish = records.last().unwrap();
    assert_eq!(finish["$report_type"], "FabricRemoteFinish");
    assert_eq!(finish["exitstatus"], 1);
    assert_eq!(finish["job_state"], "Completed");
    assert!(finish["failure_reason"].is_null());
    assert!(
        finish["job_url"]
            .as_str()
            .unwrap()
            .starts_with("https://app.fabric.microsoft.com/")
    );
    let run_id = finish["run_id"].as_str().unwrap();
    let log = remote
        .stored_files()
        .into_iter()
        .find(|f| f.ends_with(format!("runs/{run_id}/report-log.jsonl")))
        .expect("the run's report log");
    let remote_log = std::fs::read_to_string(log).unwrap();
    assert_eq!(
        lines[..lines.len() - 1].join("\n"),
        remote_log.trim_end(),
        "every record exactly as written, once, in order"
    );
    assert_eq!(records[0]["$report_type"], "SessionStart");
    let tests: Vec<&str> = records
        .iter()
        .filter(|r| r["$report_type"] == "TestReport" && r["when"] == "call")
        .map(|r| r["nodeid"].as_str().unwrap())
        .collect();
    assert_eq!(
        tests,
        [
            "tests/test_outcomes.py::test_pass",
            "tests/test_outcomes.py::test_fail",
            "tests/test_outcomes.py::test_xfail"
        ],
        "only the given ids ran"
    );
    assert!(
        stderr.contains("Job URL: "),
        "people's lines go to stderr: {stderr}"
    );
}

#[test]
fn stream_reports_ends_with_a_finish_record_even_when_configuration_is_missing() {
    let remote = Remote::start();
    let out = remote
        .command(&["--stream-reports", "--", "tests/test_outcomes.py"])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let record: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(record["$report_type"], "FabricRemoteFinish");
    assert_eq!(record["exitstatus"], 2);
    assert!(
        record["failure_reason"]
            .as_str()
            .unwrap()
            .contains("FABRIC_TEST_WORKSPACE_NAME is not set")
    );
    assert!(stderr.contains("error: FABRIC_TEST_WORKSPACE_NAME is not set: looked in the environment and in a test.env in"), "{stderr}");
}

#[test]
fn a_local_collection_error_stops_before_anything_is_sent() {
    let remote = Remote::start();
    remote.write_test_env(ENV);
    std::fs::write(
        remote.project.join("tests/test_broken.py"),
        "import no_such_module\n",
    )
    .unwrap();
    let out = remote.command(&["--", "-q"]).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("ModuleNotFoundError: No module named 'no_such_module'"),
        "{stdout}"
    );
    assert!(
        !remote
            .emu
            .requests()
            .iter()
            .any(|r| r.path.contains("/jobs/")),
        "no job was submitted"
    );
}

#[test]
fn demo_runs_the_sample_project_through_run() {
    let out = fabric_remote()
        .args(["demo", "--python"])
        .arg(python())
        .output()
        .unwrap();
    let stdout = assert_success(&out);
    assert!(
        stdout.contains("\nJob URL: https://app.fabric.microsoft.com/"),
        "{stdout}"
    );
    assert!(stdout.contains("] Running..."), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("Completed (")),
        "{stdout}"
    );
    assert!(
        stdout.contains("tests/test_sample.py::test_negative_rate XFAIL"),
        "{stdout}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.contains(" 6 passed, 1 skipped, 1 xfailed in ") && last.contains("(remote)"),
        "{last}"
    );
}

// ---- the entry point's report log is pytest-reportlog's ----

#[test]
fn entry_point_report_log_has_pytest_reportlogs_records() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("p");
    std::fs::create_dir_all(project.join("tests")).unwrap();
    let files: &[(&str, &str)] = &[
        ("pytest.ini", "[pytest]\ntestpaths = tests\n"),
        (
            "tests/test_w.py",
            "import warnings, pytest\n\ndef test_warns():\n    warnings.warn('careful', UserWarning)\n\ndef test_fails():\n    print('out')\n    assert 1 == 2\n\n@pytest.mark.xfail(reason='x')\ndef test_xfail():\n    assert 0\n\n@pytest.mark.xfail(reason='y')\ndef test_xpass():\n    pass\n\ndef test_sub(subtests):\n    for i in range(2):\n        with subtests.test(i=i):\n            assert i == 0\n\n@pytest.fixture\ndef td():\n    yield\n    pytest.skip('in teardown')\n\ndef test_skip_td(td):\n    pass\n",
        ),
        ("tests/test_err.py", "import no_such_module_here\n"),
        (
            "tests/test_modskip.py",
            "import pytest\npytest.skip('whole module', allow_module_level=True)\n",
        ),
    ];
    for (rel, body) in files {
        std::fs::write(project.join(rel), body).unwrap();
    }
    let plugin_dir = dir.path().join("plugin");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    std::fs::copy(
        root().join("src/run/entrypoint.py"),
        plugin_dir.join("_fabric_remote_plugin.py"),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let pytest = |extra: &[&str], env: &[(&str, &Path)]| {
        let mut cmd = Command::new(python());
        cmd.args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--continue-on-collection-errors",
        ])
        .args(extra)
        .current_dir(&project)
        .env("PYTHONDONTWRITEBYTECODE", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    };
    let reference = dir.path().join("reference.jsonl");
    pytest(&[&format!("--report-log={}", reference.display())], &[]);
    pytest(
        &["-p", "_fabric_remote_plugin"],
        &[
            ("PYTHONPATH", &plugin_dir),
            ("FABRIC_REMOTE_REPORT_DIR", &out_dir),
        ],
    );
    let records = |path: &Path, skip_passed_collect: bool| -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(&mask_addresses(l)).unwrap())
            .filter(|r| {
                !(skip_passed_collect
                    && r["$report_type"] == "CollectReport"
                    && r["outcome"] == "passed")
            })
            .map(|mut r| {
                if let Some(o) = r.as_object_mut() {
                    for timing in ["duration", "start", "stop"] {
                        o.remove(timing);
                    }
                }
                r
            })
            .collect()
    };
    let ours = records(&out_dir.join("report-log.jsonl"), false);
    let want = records(&reference, true);
    assert!(want.len() > 20, "{want:?}");
    let kinds: std::collections::BTreeSet<&str> = want
        .iter()
        .filter_map(|r| r["$report_type"].as_str())
        .collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            "CollectReport",
            "SessionFinish",
            "SessionStart",
            "SubTestReport",
            "TestReport",
            "WarningMessage"
        ]
    );
    assert_eq!(
        ours, want,
        "pytest-reportlog's records (failed/skipped collect reports only)"
    );
    // The chunks hold the same lines, in order.
    let mut names: Vec<PathBuf> = std::fs::read_dir(out_dir.join("chunks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let chunks: String = names
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(
        chunks,
        std::fs::read_to_string(out_dir.join("report-log.jsonl")).unwrap()
    );
    let session: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("session.json")).unwrap()).unwrap();
    assert_eq!(session["exitstatus"], 1);
}

/// `0x7fbb0eab3810` → `0x…`: object addresses differ between two pytest processes.
pub(crate) fn mask_addresses(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find("0x") {
        out.push_str(&rest[..i + 2]);
        let tail = &rest[i + 2..];
        let n = tail.bytes().take_while(u8::is_ascii_hexdigit).count();
        if n > 0 {
            out.push('…');
        }
        rest = &tail[n..];
    }
    out.push_str(rest);
    out
}

#[test]
fn sigterm_in_stream_mode_cancels_and_ends_with_an_interrupted_finish_record() {
    let remote = Remote::start();
    remote.write_test_env(ENV);
    let mut child = remote
        .stream_command(
            &[
                "tests/test_hang.py::test_a_quick",
                "tests/test_hang.py::test_c_hangs",
            ],
            &["--", "tests/test_hang.py"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stamped_lines(&mut child);
    let mut lines = Vec::new();
    let until = Instant::now() + Duration::from_secs(60);
    // Stop once test_c's setup has arrived: it is then sleeping.
    while !lines
        .iter()
        .any(|l: &String| l.contains("test_c_hangs") && l.contains("\"setup\""))
    {
        let (_, line) = rx
            .recv_timeout(until.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no setup record for test_c: {lines:?}"));
        lines.push(line);
    }
    send_signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    lines.extend(rx.iter().map(|(_, l)| l));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let records: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let finish = records.last().unwrap();
    assert_eq!(finish["$report_type"], "FabricRemoteFinish", "{lines:?}");
    assert_eq!(finish["exitstatus"], 2);
    assert_eq!(finish["stopped"], "interrupted");
    assert_eq!(finish["job_state"], "Cancelled");
    // Each record once.
    let mut seen = std::collections::HashSet::new();
    assert!(lines.iter().all(|l| seen.insert(l.clone())), "{lines:?}");
}
