//! The Fabric REST client and `fabric-remote job` against the emulator's Fabric side:
//! SJD create-or-reuse (also through 202 long-running operations), runs that complete, fail,
//! are cancelled or deduped, the HTTP quirks (early 404s, 429 + Retry-After, throttled polls
//! without a status, timestamps without `Z`), polling that never comes sooner than asked,
//! and the one-sentence errors a user sees.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use fabric_emulator::{Config, Emulator};
use fabric_remote::auth::Credentials;
use fabric_remote::fabric::{
    FabricClient, Item, JobOutcome, JobPoll, JobReporter, JobSubmission, LogKind, PollRecord,
    PollSettings, SjdAction, SparkJobDefinitionV1, TerminalState, Workspace, abfss_url,
};
use fabric_remote::http::{HttpClient, RetryPolicy};
use fabric_remote::secret::Secret;

use crate::util::{assert_success, assert_usage_error, fabric_remote, send_signal, text};

const OK_PY: &str = r#"
import os, sys
root = os.environ["FABRIC_EMULATOR_LAKEHOUSE_ROOT"]
with open(os.path.join(root, "Files", "args.txt"), "w") as f:
    f.write(" ".join(sys.argv[1:]))
print("hello from the job")
"#;

const FAIL_PY: &str = r#"
raise ValueError("boom 42")
"#;

const SLEEP_PY: &str = r#"
import os, time
root = os.environ["FABRIC_EMULATOR_LAKEHOUSE_ROOT"]
with open(os.path.join(root, "Files", "pid.txt"), "w") as f:
    f.write(str(os.getpid()))
time.sleep(120)
"#;

fn emulator(tune: impl FnOnce(&mut Config)) -> Emulator {
    let mut config = Config {
        job_visible_after_ms: 300,
        fabric_retry_after_secs: 0,
        lro_duration_ms: 100,
        ..Config::default()
    };
    tune(&mut config);
    Emulator::start(config).expect("emulator starts")
}

fn fast_policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(50),
        deadline: Duration::from_secs(60),
    }
}

fn fast_polls() -> PollSettings {
    PollSettings {
        default_interval: Duration::from_millis(200),
        min_interval: Duration::from_millis(50),
        not_visible_grace: Duration::from_secs(30),
        not_visible_interval: Duration::from_millis(100),
        operation_timeout: Duration::from_secs(30),
        max_poll_failures: 100,
    }
}

fn client_with(emu: &Emulator, policy: RetryPolicy) -> FabricClient {
    let http = HttpClient::new(Credentials::from_token(Secret::new("test-token")), policy)
        .expect("http client");
    FabricClient::new(http)
        .with_endpoint(&emu.url())
        .expect("endpoint")
        .with_poll_settings(fast_polls())
}

fn client(emu: &Emulator) -> FabricClient {
    client_with(emu, fast_policy(12))
}

async fn setup(fabric: &FabricClient, emu: &Emulator) -> (Workspace, Item) {
    let ws = fabric
        .resolve_workspace(emu.workspace_name())
        .await
        .expect("workspace");
    assert_eq!(ws.id, emu.workspace_id());
    let lake = fabric
        .resolve_lakehouse(&ws, "lake")
        .await
        .expect("lakehouse");
    assert_eq!(Some(lake.id.clone()), emu.lakehouse_id("lake"));
    (ws, lake)
}

/// Puts `body` at `Files/jobs/<name>` of the lakehouse; returns its abfss URL.
fn script(emu: &Emulator, ws: &Workspace, lake: &Item, name: &str, body: &str) -> String {
    let dir = emu.lakehouse_files_dir("lake").unwrap().join("jobs");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), body).unwrap();
    abfss_url(&ws.id, &lake.id, &format!("Files/jobs/{name}"))
}

fn python_job(file: &str, lake: &Item, args: Option<&str>) -> SparkJobDefinitionV1 {
    SparkJobDefinitionV1::python(file, &lake.id, args)
}

/// `body` saved as `file` in the lakehouse, SJD `name` pointed at it, one run submitted.
async fn submit(
    fabric: &FabricClient,
    emu: &Emulator,
    ws: &Workspace,
    lake: &Item,
    name: &str,
    file: &str,
    body: &str,
) -> JobSubmission {
    let want = python_job(&script(emu, ws, lake, file, body), lake, None);
    let sjd = fabric.ensure_sjd(ws, name, &want).await.unwrap().sjd;
    fabric.run_sjd(ws, &sjd, None).await.unwrap()
}

/// Waits (at most a minute) for `run` to end.
async fn finish(
    fabric: &FabricClient,
    run: &JobSubmission,
    reporter: &mut dyn JobReporter,
) -> JobOutcome {
    fabric
        .wait_for_job(run, Some(Duration::from_secs(60)), reporter)
        .await
        .unwrap()
}

/// The driver's stdout or stderr of `run`, through its Livy session.
async fn driver_log(fabric: &FabricClient, run: &JobSubmission, kind: LogKind) -> String {
    let session = fabric
        .find_livy_session(&run.job)
        .await
        .unwrap()
        .expect("a Livy session");
    fabric.driver_log(&run.job, &session, kind).await.unwrap()
}

#[derive(Default)]
struct Recorder {
    polls: Vec<(Instant, JobPoll, Option<Duration>)>,
}

impl JobReporter for Recorder {
    fn polled(&mut self, r: &PollRecord<'_>) {
        self.polls.push((r.sent_at, r.poll.clone(), r.retry_after));
    }
}

fn files(emu: &Emulator) -> PathBuf {
    emu.lakehouse_files_dir("lake").unwrap()
}

/// Waits for the sleeping script to write its pid.
fn wait_for_pid(emu: &Emulator) -> u32 {
    let path = files(emu).join("pid.txt");
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(pid) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(Instant::now() < until, "the job never started");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// True once `/proc/<pid>` is gone (allowing the emulator a moment to reap it).
fn process_gone(pid: u32) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

async fn count_named(fabric: &FabricClient, ws: &Workspace, name: &str) -> usize {
    fabric
        .list_sjds(ws)
        .await
        .unwrap()
        .iter()
        .filter(|s| s.display_name == name)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_sjd_reuses_one_definition_and_updates_only_when_it_points_elsewhere() {
    let emu = emulator(|_| {});
    let fabric = client(&emu);
    let (ws, lake) = setup(&fabric, &emu).await;
    let a = python_job(&script(&emu, &ws, &lake, "a.py", OK_PY), &lake, Some("x"));
    let b = python_job(&script(&emu, &ws, &lake, "b.py", OK_PY), &lake, Some("x"));

    let first = fabric.ensure_sjd(&ws, "runner", &a).await.unwrap();
    assert_eq!(first.action, SjdAction::Created);
    emu.clear_requests();
    let second = fabric.ensure_sjd(&ws, "runner", &a).await.unwrap();
    assert_eq!(second.action, SjdAction::Unchanged);
    assert_eq!(second.sjd.id, first.sjd.id);
    let posts: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && !r.path.ends_with("/getDefinition"))
        .collect();
    assert!(posts.is_empty(), "reuse wrote something: {posts:?}");

    let third = fabric.ensure_sjd(&ws, "runner", &b).await.unwrap();
    assert_eq!(third.action, SjdAction::Updated);
    assert_eq!(third.sjd.id, first.sjd.id);
    assert_eq!(count_named(&fabric, &ws, "runner").await, 1);
    let content = fabric.get_sjd_content(&ws, &third.sjd).await.unwrap();
    assert_eq!(content.executable_file, b.executable_file);
    assert_eq!(content.language.as_deref(), Some("Python"));
    assert_eq!(
        content.default_lakehouse_artifact_id.as_deref(),
        Some(lake.id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_definitions_through_long_running_operations() {
    let emu = emulator(|c| c.lro_rate = 1.0);
    let fabric = client(&emu);
    let (ws, lake) = setup(&fabric, &emu).await;
    let want = python_job(
        &script(&emu, &ws, &lake, "a.py", OK_PY),
        &lake,
        Some("--k v"),
    );
    let made = fabric.ensure_sjd(&ws, "lro-job", &want).await.unwrap();
    assert_eq!(made.action, SjdAction::Created);
    assert_eq!(made.sjd.display_name, "lro-job");
    let requests = emu.requests();
    let create = requests
        .iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/sparkJobDefinitions"))
        .expect("a create request");
    assert_eq!(create.status, 202, "lro_rate 1.0 answers create with 202");
    assert!(requests.iter().any(|r| r.method == "GET"
        && r.path.starts_with("/v1/operations/")
        && !r.path.ends_with("/result")));
    assert!(
        requests
            .iter()
            .any(|r| r.method == "GET" && r.path.ends_with("/result"))
    );
    let content = fabric.get_sjd_content(&ws, &made.sjd).await.unwrap();
    assert!(content.same_target(&want), "{content:?}");
    // And the item really exists once, by listing.
    assert_eq!(count_named(&fabric, &ws, "lro-job").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_exits_zero_completes_with_its_args_and_logs() {
    let emu = emulator(|_| {});
    let fabric = client(&emu);
    let (ws, lake) = setup(&fabric, &emu).await;
    let want = python_job(
        &script(&emu, &ws, &lake, "ok.py", OK_PY),
        &lake,
        Some("a b"),
    );
    let sjd = fabric.ensure_sjd(&ws, "ok-job", &want).await.unwrap().sjd;
    let run = fabric.run_sjd(&ws, &sjd, None).await.unwrap();
    let outcome = finish(&fabric, &run, &mut ()).await;
    assert_eq!(outcome.state, TerminalState::Completed);
    assert!(outcome.state.is_success());
    assert_eq!(outcome.failure_message(), None);
    // Timestamps come without `Z` (and with 7 fractional digits): parsed, and ordered.
    let (start, end) = (
        outcome.instance.start_time.unwrap(),
        outcome.instance.end_time.unwrap(),
    );
    assert!(end >= start);
    assert_eq!(
        std::fs::read_to_string(files(&emu).join("args.txt")).unwrap(),
        "a b"
    );

    let stdout = driver_log(&fabric, &run, LogKind::Stdout).await;
    assert!(stdout.contains("hello from the job"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_raises_fails_with_its_message() {
    let emu = emulator(|_| {});
    let fabric = client(&emu);
    let (ws, lake) = setup(&fabric, &emu).await;
    let run = submit(&fabric, &emu, &ws, &lake, "fail-job", "fail.py", FAIL_PY).await;
    let outcome = finish(&fabric, &run, &mut ()).await;
    assert_eq!(outcome.state, TerminalState::Failed);
    let message = outcome.failure_message().unwrap_or_default();
    assert!(message.contains("boom 42"), "{message}");
    let stderr = driver_log(&fabric, &run, LogKind::Stderr).await;
    assert!(stderr.contains("ValueError: boom 42"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_job_is_cancelled_and_its_process_is_gone() {
    let emu = emulator(|_| {});
    let fabric = client(&emu);
    let (ws, lake) = setup(&fabric, &emu).await;
    let run = submit(&fabric, &emu, &ws, &lake, "sleep-job", "sleep.py", SLEEP_PY).await;
    let pid = tokio::task::block_in_place(|| wait_for_pid(&emu));
    assert_eq!(
        fabric.cancel_job(&run).await.unwrap(),
        fabric_remote::fabric::CancelOutcome::Requested
    );
    let outcome = finish(&fabric, &run, &mut ()).await;
    assert_eq!(outcome.state, TerminalState::Cancelled);
    assert!(!outcome.state.is_success());
    assert!(
        process_gone(pid),
        "process {pid} still exists after the cancel"
    );
    // Cancelling again is not an error.
    assert_eq!(
        fabric.cancel_job(&run).await.unwrap(),
        fabric_remote::fabric::CancelOutcome::AlreadyCompleted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_while_one_is_active_is_deduped_never_success() {
    let emu = emulator(|_| {});
    let fabric = client(&emu);
    let (ws, lake) = setup(&fabric, &emu).await;
    let want = python_job(&script(&emu, &ws, &lake, "sleep.py", SLEEP_PY), &lake, None);
    let sjd = fabric
        .ensure_sjd(&ws, "dedup-job", &want)
        .await
        .unwrap()
        .sjd;
    let first = fabric.run_sjd(&ws, &sjd, None).await.unwrap();
    let pid = tokio::task::block_in_place(|| wait_for_pid(&emu));
    let second = fabric.run_sjd(&ws, &sjd, None).await.unwrap();
    assert_ne!(first.job.job_id, second.job.job_id);
    let outcome = finish(&fabric, &second, &mut ()).await;
    assert_eq!(outcome.state, TerminalState::Deduped);
    assert!(!outcome.state.is_success());
    assert!(outcome.state.meaning().starts_with("not run"));
    fabric.cancel_job(&first).await.unwrap();
    let stopped = finish(&fabric, &first, &mut ()).await;
    assert_eq!(stopped.state, TerminalState::Cancelled);
    assert!(process_gone(pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_404_is_not_yet_visible_not_an_error() {
    let emu = emulator(|c| c.job_visible_after_ms = 1000);
    let fabric = client(&emu);
    let (ws, lake) = setup(&fabric, &emu).await;
    let run = submit(&fabric, &emu, &ws, &lake, "early-job", "ok.py", OK_PY).await;
    let mut seen = Recorder::default();
    let outcome = finish(&fabric, &run, &mut seen).await;
    assert_eq!(outcome.state, TerminalState::Completed);
    assert!(
        seen.polls.iter().any(|p| p.1 == JobPoll::NotVisibleYet),
        "no early 404 was seen"
    );
    let job_polls_404 = emu
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/jobs/instances/") && r.status == 404)
        .count();
    assert!(job_polls_404 >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_never_come_sooner_than_retry_after_asks() {
    // Every Fabric answer asks for 1 s, and the instance answers 404 for its first 1.5 s.
    let emu = emulator(|c| {
        c.fabric_retry_after_secs = 1;
        c.job_visible_after_ms = 1500;
    });
    let fabric = client(&emu);
    let (ws, lake) = setup(&fabric, &emu).await;
    let body = "import time\ntime.sleep(2.5)\n";
    let run = submit(&fabric, &emu, &ws, &lake, "paced-job", "slow.py", body).await;
    assert_eq!(
        run.retry_after,
        Some(Duration::from_secs(1)),
        "the 202 asks for 1 s"
    );
    let mut seen = Recorder::default();
    let outcome = finish(&fabric, &run, &mut seen).await;
    assert_eq!(outcome.state, TerminalState::Completed);
    assert!(seen.polls.len() >= 2, "{} polls", seen.polls.len());
    assert!(seen.polls.iter().any(|p| p.1 == JobPoll::NotVisibleYet));
    let first = seen.polls[0].0.duration_since(run.submitted_at);
    assert!(
        first >= Duration::from_secs(1),
        "first poll after {first:?}"
    );
    for pair in seen.polls.windows(2) {
        let gap = pair[1].0.duration_since(pair[0].0);
        assert!(
            gap >= Duration::from_secs(1),
            "polled again after {gap:?}: {pair:?}"
        );
        if matches!(pair[0].1, JobPoll::Status(_)) {
            assert_eq!(
                pair[0].2,
                Some(Duration::from_secs(1)),
                "job polls carry Retry-After: 1"
            );
        }
    }
    // The emulator's own log agrees: no two job polls less than 1 s apart is checked above
    // with our clock; here, that nothing else polled the instance.
    let polls = emu
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/jobs/instances/"))
        .count();
    assert_eq!(polls, seen.polls.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_with_retry_after_is_ridden_out() {
    let emu = emulator(|c| {
        c.fail_rate = 0.3;
        c.seed = 7;
    });
    let fabric = client_with(&emu, fast_policy(30));
    let (ws, lake) = setup(&fabric, &emu).await;
    let run = submit(&fabric, &emu, &ws, &lake, "busy-job", "ok.py", OK_PY).await;
    let outcome = finish(&fabric, &run, &mut ()).await;
    assert_eq!(outcome.state, TerminalState::Completed);
    let faults = emu
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/v1/") && r.status == 429)
        .count();
    assert!(faults > 0, "no 429 was injected");
    assert_eq!(count_named(&fabric, &ws, "busy-job").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_polls_without_a_status_keep_the_wait_going() {
    let emu = emulator(|c| c.seed = 3);
    let fabric = client(&emu);
    let (ws, lake) = setup(&fabric, &emu).await;
    let body = "import time\ntime.sleep(1.5)\n";
    let run = submit(&fabric, &emu, &ws, &lake, "throttled-job", "slow.py", body).await;
    // From now on half the answers are throttled, and this client does not retry on its
    // own: every throttled body (no `status`) reaches the poller.
    emu.set_faults(0.5, 0.0, 0);
    let poller = client_with(&emu, fast_policy(1));
    let mut seen = Recorder::default();
    let outcome = finish(&poller, &run, &mut seen).await;
    emu.set_faults(0.0, 0.0, 0);
    assert_eq!(outcome.state, TerminalState::Completed);
    let throttled = seen
        .polls
        .iter()
        .filter(|p| {
            matches!(
                p.1,
                JobPoll::Throttled | JobPoll::NoStatus | JobPoll::Unavailable(_)
            )
        })
        .count();
    assert!(throttled > 0, "no throttled poll: {:?}", seen.polls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_follow_every_page() {
    let emu = emulator(|c| c.page_size = 2);
    let fabric = client(&emu);
    let (ws, _) = setup(&fabric, &emu).await;
    for i in 0..5 {
        fabric
            .create_sjd(&ws, &format!("paged-{i}"), None)
            .await
            .unwrap();
    }
    emu.clear_requests();
    let all = fabric.list_sjds(&ws).await.unwrap();
    let mut names: Vec<_> = all.iter().map(|s| s.display_name.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        (0..5).map(|i| format!("paged-{i}")).collect::<Vec<_>>()
    );
    let pages = emu
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/sparkJobDefinitions"))
        .count();
    assert!(pages >= 3, "{pages} pages for 5 items at 2 per page");
}

// ---- the CLI ----

fn cli(emu: &Emulator, args: &[&str], extra: &[(&str, &str)]) -> Output {
    cli_command(emu, args, extra)
        .output()
        .expect("run fabric-remote")
}

fn cli_command(emu: &Emulator, args: &[&str], extra: &[(&str, &str)]) -> Command {
    let mut cmd = fabric_remote();
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FABRIC_REMOTE_TOKEN", "t")
        .env("FABRIC_REMOTE_API_ENDPOINT", emu.url())
        .env("FABRIC_REMOTE_ONELAKE_ENDPOINT", emu.url())
        .env("FABRIC_TEST_WORKSPACE_NAME", emu.workspace_name())
        .env("FABRIC_TEST_LAKEHOUSE_NAME", "lake");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.arg("job").args(args);
    cmd
}

/// Exit 2 and exactly one `error:` sentence, which is returned.
fn usage_error(out: &Output) -> String {
    let stderr = assert_usage_error(out);
    // Shown when a test fails, so the sentence a user reads is in the failure report.
    eprintln!("{stderr}");
    stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default()
        .to_string()
}

fn local_script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.to_string_lossy().into_owned()
}

fn job_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Job instance "))
        .expect("a job instance line")
        .trim()
        .to_string()
}

#[test]
fn cli_run_waits_to_completed_and_reuses_the_definition() {
    let emu = emulator(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let ok = local_script(dir.path(), "ok.py", OK_PY);
    let out = cli(
        &emu,
        &[
            "run", "--sjd", "cli-job", "--file", &ok, "--args", "-v two", "--wait",
        ],
        &[],
    );
    let stdout = assert_success(&out);
    assert!(
        stdout.contains("Created Spark job definition `cli-job`"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "Portal: https://app.fabric.microsoft.com/groups/{}/sparkjobdefinitions/",
            emu.workspace_id()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("?experience=fabric-developer"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("Completed (")),
        "{stdout}"
    );
    assert!(files(&emu).join("fabric-remote/jobs/ok.py").is_file());
    assert_eq!(
        std::fs::read_to_string(files(&emu).join("args.txt")).unwrap(),
        "-v two"
    );

    let again = cli(
        &emu,
        &[
            "run", "--sjd", "cli-job", "--file", &ok, "--args", "-v two", "--wait",
        ],
        &[],
    );
    let stdout = text(&again.stdout);
    assert_eq!(again.status.code(), Some(0), "{stdout}");
    assert!(
        !stdout.contains("Created") && !stdout.contains("Pointed"),
        "{stdout}"
    );

    let listed = cli(&emu, &["list"], &[]);
    assert_eq!(listed.status.code(), Some(0));
    let named = text(&listed.stdout)
        .lines()
        .filter(|l| l.ends_with("  cli-job"))
        .count();
    assert_eq!(named, 1);
}

#[test]
fn cli_failed_run_exits_1_with_the_reason() {
    let emu = emulator(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let fail = local_script(dir.path(), "fail.py", FAIL_PY);
    let out = cli(
        &emu,
        &["run", "--sjd", "cli-fail", "--file", &fail, "--wait"],
        &[],
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or("");
    assert!(
        last.starts_with("Failed (") && last.contains("boom 42"),
        "{stdout}"
    );

    let id = job_id(&stdout);
    let logs = cli(&emu, &["logs", &id, "--sjd", "cli-fail"], &[]);
    assert_eq!(logs.status.code(), Some(0), "{}", text(&logs.stderr));
    assert!(text(&logs.stderr).contains("ValueError: boom 42"));

    let status = cli(&emu, &["status", &id, "--sjd", "cli-fail"], &[]);
    assert_eq!(status.status.code(), Some(0));
    assert!(
        text(&status.stdout).contains("Status: Failed"),
        "{}",
        text(&status.stdout)
    );
}

#[test]
fn cli_deduped_is_not_run_and_cancel_stops_the_first() {
    let emu = emulator(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let sleep = local_script(dir.path(), "sleep.py", SLEEP_PY);
    let out = cli(&emu, &["run", "--sjd", "cli-sleep", "--file", &sleep], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let first = job_id(&text(&out.stdout));
    let pid = wait_for_pid(&emu);

    let second = cli(&emu, &["run", "--sjd", "cli-sleep", "--wait"], &[]);
    let stdout = text(&second.stdout);
    assert_eq!(second.status.code(), Some(1), "{stdout}");
    let last = stdout.lines().last().unwrap_or("");
    assert!(
        last.starts_with("Deduped (") && last.contains("not run"),
        "{stdout}"
    );
    assert!(!stdout.contains("Completed"), "{stdout}");

    let cancel = cli(&emu, &["cancel", &first, "--sjd", "cli-sleep"], &[]);
    let stdout = assert_success(&cancel);
    assert!(
        stdout.lines().any(|l| l.starts_with("Cancelled (")),
        "{stdout}"
    );
    assert!(process_gone(pid), "process {pid} survived the cancel");
}

#[test]
fn cli_ctrl_c_during_wait_cancels_the_job() {
    let emu = emulator(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let sleep = local_script(dir.path(), "sleep.py", SLEEP_PY);
    let mut child = cli_command(
        &emu,
        &["run", "--sjd", "cli-int", "--file", &sleep, "--wait"],
        &[],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Read stdout as it comes, to interrupt only once the client is waiting.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let until = Instant::now() + Duration::from_secs(20);
    while !rx
        .recv_timeout(until.saturating_duration_since(Instant::now()))
        .expect("the client printed its job instance")
        .starts_with("Portal: ")
    {}
    let pid = wait_for_pid(&emu);
    std::thread::sleep(Duration::from_millis(200));
    send_signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    let stdout = reader.join().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("Interrupted: cancelling job"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("Cancelled (")),
        "{stdout}"
    );
    assert!(process_gone(pid), "process {pid} survived Ctrl-C");
}

#[test]
fn cli_config_errors_name_what_is_missing_or_not_allowed() {
    let emu = emulator(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let ok = local_script(dir.path(), "ok.py", OK_PY);
    let run = |extra: &[(&str, &str)], args: &[&str]| cli(&emu, args, extra);

    let line = usage_error(&run(
        &[("FABRIC_TEST_WORKSPACE_NAME", "Nope")],
        &["run", "--sjd", "x", "--file", &ok],
    ));
    assert!(line.contains("workspace `Nope` was not found"), "{line}");
    let out = run(&[("FABRIC_TEST_WORKSPACE_NAME", "Nope")], &["list"]);
    usage_error(&out);
    assert!(
        text(&out.stderr).contains("`My Workspace`"),
        "the hint lists what exists"
    );

    let line = usage_error(&run(
        &[],
        &["run", "--sjd", "x", "--file", &ok, "--lakehouse", "nolake"],
    ));
    assert!(
        line.contains("lakehouse `nolake` was not found in workspace `My Workspace`"),
        "{line}"
    );

    let out = run(
        &[],
        &[
            "status",
            "4b218778-e7a5-4d73-8187-f10824047715",
            "--sjd",
            "missing",
        ],
    );
    let line = usage_error(&out);
    assert!(
        line.contains("Spark job definition `missing` was not found"),
        "{line}"
    );
    assert!(text(&out.stderr).contains("hint:"));

    let line = usage_error(&run(&[], &["run", "--sjd", "never-made"]));
    assert!(
        line.contains("Spark job definition `never-made` was not found"),
        "{line}"
    );

    let line = usage_error(&run(
        &[],
        &["run", "--sjd", "x", "--file", "/no/such/file.py"],
    ));
    assert!(line.contains("/no/such/file.py"), "{line}");

    emu.set_capacity(false);
    let line = usage_error(&run(&[], &["run", "--sjd", "cap-job", "--file", &ok]));
    assert!(line.contains("has no active Fabric capacity"), "{line}");
    emu.set_capacity(true);

    emu.deny(&format!(
        "/v1/workspaces/{}/sparkJobDefinitions",
        emu.workspace_id()
    ));
    let line = usage_error(&run(&[], &["run", "--sjd", "x", "--file", &ok]));
    assert!(line.contains("not allowed to"), "{line}");
    assert!(line.contains("Spark job definition"), "{line}");
}

/// Issue 8 item 11: an unknown job id is "not found" (not "still starting"), and an empty
/// `--sjd` is refused before anything is uploaded.
#[test]
fn issue_8_job_logs_of_an_unknown_id_and_an_empty_sjd_name() {
    let emu = emulator(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let ok = local_script(dir.path(), "ok.py", OK_PY);
    let out = cli(
        &emu,
        &["run", "--sjd", "logs-job", "--file", &ok, "--wait"],
        &[],
    );
    assert_success(&out);

    let unknown = "4b218778-e7a5-4d73-8187-f10824047715";
    let out = cli(&emu, &["logs", unknown, "--sjd", "logs-job"], &[]);
    let line = usage_error(&out);
    assert_eq!(
        line,
        format!("error: job instance {unknown} of `logs-job` was not found")
    );

    emu.clear_requests();
    for name in ["", "  "] {
        let out = cli(&emu, &["run", "--sjd", name, "--file", &ok], &[]);
        let line = usage_error(&out);
        assert!(
            line.contains(&format!(
                "Spark job definition name `{name}` is not valid: it is empty"
            )),
            "{line}"
        );
    }
    assert_eq!(emu.requests(), [], "nothing was sent, nothing uploaded");
}
