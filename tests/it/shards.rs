//! `fabric-remote run --shards N`, `run --lf` and pytest-xdist inside one job, against the
//! emulator with real pytest on both sides.
//!
//! The measured acceptance case (200 tests of 0.2 s, `--shards 4` at most 0.35× the wall
//! time of one job) is `four_shards_of_200_tests_take_at_most_035_of_one_job`, ignored by
//! default: `cargo nextest run --run-ignored only -E 'test(/four_shards_of_200/)'
//! --no-capture`. Its short sibling runs in the suite.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use fabric_remote::fabric::{JobRef, JobStatus};

use crate::run::{ENV, Remote, closing_counts, mask_addresses, stamped_lines, verbose_lines};
use crate::util::{python, send_signal, text};

/// A test file: `classes` classes of `per` tests, class `c`'s tests sleeping `sleep(c)`
/// seconds, all using a class-scoped fixture. `mixed` adds a failure, a skip and an xfail
/// in some classes, and top-level functions (one module unit) with a parametrized one.
fn suite(classes: usize, per: usize, sleep: &dyn Fn(usize) -> f64, mixed: bool) -> String {
    let mut py = String::from(
        "import time\n\nimport pytest\n\n\n@pytest.fixture(scope=\"class\")\ndef per_class():\n    yield\n\n",
    );
    for c in 0..classes {
        py.push_str(&format!(
            "\n@pytest.mark.usefixtures(\"per_class\")\nclass TestC{c:02}:\n"
        ));
        for t in 0..per {
            py.push_str(&format!(
                "    def test_{t}(self):\n        time.sleep({})\n",
                sleep(c)
            ));
            if mixed {
                match (c % 4, t) {
                    (1, 2) => py.push_str("        assert 1 == 2, \"fails on purpose\"\n"),
                    (2, 0) => py.push_str("        pytest.skip(\"skipped on purpose\")\n"),
                    (3, 1) => py.push_str("        pytest.xfail(\"expected to fail\")\n"),
                    _ => {}
                }
            }
        }
    }
    if mixed {
        for i in 0..4 {
            py.push_str(&format!(
                "\n\ndef test_free_{i}():\n    time.sleep({})\n",
                sleep(0)
            ));
        }
        py.push_str(
            "\n\n@pytest.mark.parametrize(\"v\", [1, 2, 3], ids=[\"a::b\", \"c\", \"d\"])\ndef test_param(v):\n    assert v != 3\n",
        );
    }
    py
}

fn write(project: &Path, rel: &str, body: &str) {
    std::fs::write(project.join(rel), body).unwrap();
}

/// The pytest-style block: from the first test line to the end, object addresses masked,
/// the closing line reduced to its counts (its time differs).
fn results(stdout: &str) -> String {
    let lines: Vec<&str> = stdout.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("tests/"))
        .unwrap_or_else(|| panic!("no test line in:\n{stdout}"));
    let mut out: Vec<String> = lines[start..lines.len() - 1]
        .iter()
        .map(|l| mask_addresses(l))
        .collect();
    out.push(closing_counts(stdout));
    out.join("\n")
}

fn timed(cmd: &mut Command) -> (Output, Duration) {
    let start = Instant::now();
    let out = cmd.output().unwrap();
    (out, start.elapsed())
}

/// `(shard, tests, seconds)` of each `Shard k/N (...): Completed (…), M tests ran in X.XXs`.
fn shard_times(stdout: &str) -> Vec<(usize, usize, f64)> {
    stdout
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("Shard ")?;
            let k = rest.split('/').next()?.parse().ok()?;
            let (_, tail) = rest.split_once("), ")?;
            let (n, secs) = tail.split_once(" tests ran in ")?;
            Some((k, n.parse().ok()?, secs.trim_end_matches('s').parse().ok()?))
        })
        .collect()
}

/// `(sjd, job id)` of each `Run … shard k/N: … on `sjd` (job instance ID)` line.
fn shard_jobs(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter(|l| l.starts_with("Run ") && l.contains(" shard "))
        .map(|l| {
            let sjd = l.split('`').nth(1).unwrap().to_string();
            let id = l
                .split("(job instance ")
                .nth(1)
                .unwrap()
                .trim_end_matches(')')
                .to_string();
            (sjd, id)
        })
        .collect()
}

/// The run id of the `Run <id> shard …` lines.
fn run_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Run "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("no Run line:\n{stdout}"))
        .to_string()
}

/// Each shard's `nodeids.txt`, as uploaded for the run.
fn shard_nodeids(remote: &Remote, run_id: &str) -> Vec<Vec<String>> {
    let mut found: Vec<(usize, Vec<String>)> = remote
        .stored_files()
        .into_iter()
        .filter_map(|f| {
            let s = f.to_string_lossy().into_owned();
            let rest = s.split(&format!("runs/{run_id}/shard-")).nth(1)?;
            let k: usize = rest.strip_suffix("/nodeids.txt")?.parse().ok()?;
            let ids = std::fs::read_to_string(&f)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect();
            Some((k, ids))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, ids)| ids).collect()
}

/// `tests/x.py::TestC03` of `tests/x.py::TestC03::test_1`.
fn class_of(id: &str) -> String {
    let mut parts = id.splitn(3, "::");
    format!("{}::{}", parts.next().unwrap(), parts.next().unwrap_or(""))
}

/// Runs the same selection with one job and with `shards`; both must print the same
/// results block and exit the same way. Returns both wall times and the sharded stdout.
fn same_as_one_job(remote: &Remote, shards: &str, file: &str) -> (Duration, Duration, String) {
    let (one, one_took) = timed(&mut remote.command(&["--", file]));
    let (many, many_took) = timed(&mut remote.command(&["--shards", shards, "--", file]));
    let (one_out, many_out) = (text(&one.stdout), text(&many.stdout));
    eprintln!(
        "--- one job ({one_took:?}):\n{one_out}\n{}",
        text(&one.stderr)
    );
    eprintln!(
        "--- {shards} shards ({many_took:?}):\n{many_out}\n{}",
        text(&many.stderr)
    );
    assert_eq!(results(&many_out), results(&one_out));
    assert_eq!(many.status.code(), one.status.code());
    assert!(
        many_out.contains(&format!("Completed {shards} jobs (")),
        "{many_out}"
    );
    // The tests of a class ran in one shard.
    let shards_ids = shard_nodeids(remote, &run_id(&many_out));
    assert_eq!(shards_ids.len(), shards.parse::<usize>().unwrap());
    let mut owner: HashMap<String, usize> = HashMap::new();
    for (k, ids) in shards_ids.iter().enumerate() {
        for id in ids.iter().filter(|id| id.matches("::").count() >= 2) {
            assert_eq!(
                *owner.entry(class_of(id)).or_insert(k),
                k,
                "{id} is not in its class's shard: {shards_ids:?}"
            );
        }
    }
    (one_took, many_took, many_out)
}

#[test]
fn four_shards_report_exactly_what_one_job_reports() {
    let remote = Remote::start();
    remote.write_test_env(ENV);
    write(
        &remote.project,
        "tests/test_suite.py",
        &suite(12, 5, &|_| 0.05, true),
    );
    let (one, four, stdout) = same_as_one_job(&remote, "4", "tests/test_suite.py");
    eprintln!(
        "67 tests of 0.05 s: one job {one:?}, 4 shards {four:?}, ratio {:.2}",
        four.as_secs_f64() / one.as_secs_f64()
    );
    assert!(
        closing_counts(&stdout) == "4 failed, 57 passed, 3 skipped, 3 xfailed",
        "{stdout}"
    );
}

#[test]
fn shards_of_an_outcome_zoo_report_exactly_what_one_job_reports() {
    // Teardown errors, subtests, strict xpasses, skip marks: one module of functions, so
    // the split goes test by test.
    let remote = Remote::start();
    remote.write_test_env(ENV);
    same_as_one_job(&remote, "3", "tests/test_outcomes.py");
}

#[test]
#[ignore = "measures the 200 x 0.2 s acceptance case (about a minute); run by hand"]
fn four_shards_of_200_tests_take_at_most_035_of_one_job() {
    let remote = Remote::start();
    remote.write_test_env(ENV);
    write(
        &remote.project,
        "tests/test_suite.py",
        &suite(20, 10, &|_| 0.2, false),
    );
    let (one, four, stdout) = same_as_one_job(&remote, "4", "tests/test_suite.py");
    let ratio = four.as_secs_f64() / one.as_secs_f64();
    eprintln!(
        "200 tests of 0.2 s: one job {one:.2?}, 4 shards {four:.2?}, ratio {ratio:.3}; shards: {:?}",
        shard_times(&stdout)
    );
    assert_eq!(closing_counts(&stdout), "200 passed");
    assert!(ratio <= 0.35, "ratio {ratio:.3}");
}

#[test]
fn a_shard_whose_job_fails_errors_its_own_tests_and_the_others_stand() {
    let remote = Remote::start();
    remote.write_test_env(ENV);
    write(
        &remote.project,
        "tests/test_suite.py",
        &suite(6, 2, &|_| 0.0, false),
    );
    let reason = "Spark could not start the driver: the pool has no free cores (emulated)";
    remote.emu.fail_runs_of("dbt-fabric-tests-2", Some(reason));
    let out = remote
        .command(&["--shards", "3", "--", "-v", "tests/test_suite.py"])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    eprintln!("{stdout}\n{stderr}");
    assert_eq!(out.status.code(), Some(3));
    let shards = shard_nodeids(&remote, &run_id(&stdout));
    assert_eq!(shards.len(), 3);
    assert_eq!(shards[1].len(), 4);
    let lines = verbose_lines(&stdout);
    for (k, ids) in shards.iter().enumerate() {
        for id in ids {
            let want = if k == 1 {
                format!("{id} ERROR (no result)")
            } else {
                format!("{id} PASSED")
            };
            assert_eq!(
                lines.iter().filter(|l| **l == want).count(),
                1,
                "{want}\n{stdout}"
            );
            if k == 1 {
                let summary = format!(
                    "ERROR {id} - no result: the job of shard 2/3 (`dbt-fabric-tests-2`) failed: the job failed: "
                );
                let line = stdout
                    .lines()
                    .find(|l| l.starts_with(&summary))
                    .unwrap_or_else(|| panic!("{summary}\n{stdout}"));
                assert!(line.contains(reason), "{line}");
            }
        }
    }
    assert_eq!(closing_counts(&stdout), "8 passed, 4 errors");
    assert!(
        stdout.contains("Shard 2/3 (`dbt-fabric-tests-2`): Failed ("),
        "{stdout}"
    );
    assert!(
        stderr.contains("hint: `fabric-remote job logs "),
        "{stderr}"
    );
}

#[test]
fn sigint_cancels_every_shards_job_at_the_service() {
    let remote = Remote::start();
    remote.write_test_env(ENV);
    let mut py = String::from("import time\n");
    for c in 0..3 {
        py.push_str(&format!(
            "\n\nclass TestH{c}:\n    def test_a_quick(self):\n        pass\n\n    def test_b_hangs(self):\n        time.sleep(120)\n"
        ));
    }
    write(&remote.project, "tests/test_hangs.py", &py);
    let mut child = remote
        .command(&["--shards", "3", "--", "-v", "tests/test_hangs.py"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stamped_lines(&mut child);
    let mut seen = String::new();
    let until = Instant::now() + Duration::from_secs(90);
    // Interrupt once every shard has reported its quick test (each then hangs).
    while seen.matches("::test_a_quick PASSED").count() < 3 {
        let (_, line) = rx
            .recv_timeout(until.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("not every shard reported its quick test:\n{seen}"));
        seen.push_str(&line);
        seen.push('\n');
    }
    let jobs = shard_jobs(&seen);
    assert_eq!(jobs.len(), 3, "{seen}");
    send_signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    for (_, line) in rx.iter() {
        seen.push_str(&line);
        seen.push('\n');
    }
    let stderr = text(&out.stderr);
    eprintln!("{seen}\n{stderr}");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("Interrupted: cancelling 3 jobs and waiting for them to stop"),
        "{stderr}"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fabric = remote.fabric();
    for (sjd, id) in &jobs {
        let job = rt.block_on(async {
            let ws = fabric.resolve_workspace("My Workspace").await.unwrap();
            let item = fabric.resolve_sjd(&ws, sjd).await.unwrap();
            JobRef::new(&ws, &item, id)
        });
        assert_eq!(
            remote.job_instance(&job).status,
            Some(JobStatus::Cancelled),
            "{sjd}'s job {id} was cancelled at the service"
        );
    }
    let lines = verbose_lines(&seen);
    for c in 0..3 {
        let hang = format!("tests/test_hangs.py::TestH{c}::test_b_hangs ERROR");
        assert!(lines.iter().any(|l| l.starts_with(&hang)), "{hang}\n{seen}");
    }
    assert!(
        closing_counts(&seen).starts_with("3 passed, 3 errors"),
        "{seen}"
    );
}

#[test]
fn a_second_run_balanced_by_recorded_durations_is_more_even() {
    let remote = Remote::start();
    remote.write_test_env(ENV);
    // Heavy classes at the 1st and 3rd place: balanced by counts they share a shard.
    let heavy = |c: usize| if c == 0 || c == 2 { 0.4 } else { 0.01 };
    write(
        &remote.project,
        "tests/test_suite.py",
        &suite(6, 4, &heavy, false),
    );
    let mut spread = Vec::new();
    for (round, basis) in [(1, "by test counts"), (2, "by recorded durations")] {
        let out = remote
            .command(&["--shards", "2", "--", "tests/test_suite.py"])
            .output()
            .unwrap();
        let stdout = text(&out.stdout);
        eprintln!("--- run {round}:\n{stdout}\n{}", text(&out.stderr));
        assert_eq!(out.status.code(), Some(0));
        assert!(
            stdout.contains(&format!("Split 24 tests into 2 shards {basis}")),
            "{stdout}"
        );
        let times = shard_times(&stdout);
        assert_eq!(times.len(), 2, "{stdout}");
        let secs: Vec<f64> = times.iter().map(|t| t.2).collect();
        let (slow, fast) = (secs[0].max(secs[1]), secs[0].min(secs[1]));
        eprintln!("run {round} ({basis}): slowest shard {slow:.2}s, fastest {fast:.2}s");
        spread.push(slow - fast);
    }
    assert!(
        spread[1] < spread[0] / 2.0,
        "the second split is more even: {spread:?}"
    );
}

#[test]
fn stream_reports_with_shards_is_one_session_and_names_every_shard() {
    let remote = Remote::start();
    remote.write_test_env(ENV);
    write(
        &remote.project,
        "tests/test_suite.py",
        &suite(6, 2, &|_| 0.0, true),
    );
    let mut ids: Vec<String> = (0..6)
        .flat_map(|c| (0..2).map(move |t| format!("tests/test_suite.py::TestC{c:02}::test_{t}")))
        .collect();
    ids.push("tests/test_suite.py::test_param[a::b]".into());
    ids.push("tests/test_suite.py::test_param[d]".into());
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let out = remote
        .stream_command(&id_refs, &["--shards", "3", "--", "tests/test_suite.py"])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    eprintln!("{stdout}\n{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let records: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["$report_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[0], "SessionStart");
    assert_eq!(kinds.iter().filter(|k| **k == "SessionStart").count(), 1);
    assert_eq!(kinds[kinds.len() - 2], "SessionFinish");
    assert_eq!(kinds.iter().filter(|k| **k == "SessionFinish").count(), 1);
    assert_eq!(records[records.len() - 2]["exitstatus"], 1);
    // Every test's three reports, once each.
    let mut reports: HashMap<(String, String), usize> = HashMap::new();
    for r in records.iter().filter(|r| r["$report_type"] == "TestReport") {
        *reports
            .entry((
                r["nodeid"].as_str().unwrap().to_string(),
                r["when"].as_str().unwrap().to_string(),
            ))
            .or_default() += 1;
    }
    for id in &ids {
        for when in ["setup", "call", "teardown"] {
            let n = reports.get(&(id.clone(), when.to_string())).copied();
            assert_eq!(n, Some(1), "{id} {when}");
        }
    }
    assert_eq!(reports.values().sum::<usize>(), ids.len() * 3);
    let finish = records.last().unwrap();
    assert_eq!(finish["$report_type"], "FabricRemoteFinish");
    assert_eq!(finish["exitstatus"], 1);
    assert_eq!(finish["job_state"], "Completed");
    assert!(finish["failure_reason"].is_null());
    let shards = finish["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 3);
    let mut all = BTreeSet::new();
    for (k, s) in shards.iter().enumerate() {
        assert_eq!(s["shard"], k + 1);
        assert_eq!(s["sjd"], format!("dbt-fabric-tests-{}", k + 1));
        assert_eq!(s["job_state"], "Completed");
        assert!(s["job_url"].as_str().unwrap().starts_with("https://"));
        assert!(s["job_id"].is_string());
        for id in s["nodeids"].as_array().unwrap() {
            assert!(all.insert(id.as_str().unwrap().to_string()), "{id} twice");
        }
    }
    assert_eq!(all, ids.iter().cloned().collect::<BTreeSet<_>>());
    assert_eq!(finish["job_id"], shards[0]["job_id"]);
}

#[test]
fn pytest_xdist_inside_one_job_is_replayed_once_per_report() {
    let remote = Remote::start();
    remote.write_test_env(ENV);
    // xdist turns subtest parameters into strings (`i='1'`), locally too: left out here.
    let args = [
        "tests/test_outcomes.py",
        "--deselect",
        "tests/test_outcomes.py::test_subtests",
    ];
    let mut plain = vec!["--"];
    plain.extend(args);
    let mut xdist = vec!["--", "-n", "2"];
    xdist.extend(args);
    let one = remote.command(&plain).output().unwrap();
    let two = remote.command(&xdist).output().unwrap();
    let (one_out, two_out) = (text(&one.stdout), text(&two.stdout));
    eprintln!("{one_out}\n---\n{two_out}\n{}", text(&two.stderr));
    assert_eq!(results(&two_out), results(&one_out));
    assert_eq!(two.status.code(), one.status.code());
    let local = Command::new(python())
        .args(["-m", "pytest", "-p", "no:cacheprovider"])
        .args(args)
        .current_dir(&remote.project)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    assert_eq!(
        closing_counts(&two_out),
        // Deselected tests are not part of a remote run's report.
        closing_counts(&text(&local.stdout)).replace(" 1 deselected,", "")
    );
    assert_eq!(two.status.code(), local.status.code());

    // The stream: each report once, from the workers, without xdist's `node`.
    let out = remote
        .stream_command(
            &[
                "tests/test_outcomes.py::test_pass",
                "tests/test_outcomes.py::test_fail",
                "tests/test_outcomes.py::test_teardown_error",
            ],
            &["--", "-n", "2", "tests/test_outcomes.py"],
        )
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let mut seen = BTreeSet::new();
    let mut workers = BTreeSet::new();
    for line in stdout.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        if r["$report_type"] == "TestReport" {
            assert!(r.get("node").is_none(), "{line}");
            workers.insert(r["worker_id"].as_str().unwrap().to_string());
            assert!(
                seen.insert((r["nodeid"].to_string(), r["when"].to_string())),
                "twice: {line}"
            );
        }
    }
    assert_eq!(seen.len(), 9, "{stdout}");
    assert!(workers.iter().all(|w| w.starts_with("gw")), "{workers:?}");
}

#[test]
fn last_failed_reruns_what_failed_remotely_and_says_when_nothing_did() {
    let remote = Remote::start();
    remote.write_test_env(ENV);
    let first = remote
        .command(&["--", "tests/test_outcomes.py"])
        .output()
        .unwrap();
    let first_out = text(&first.stdout);
    assert_eq!(first.status.code(), Some(1), "{first_out}");
    let failed: BTreeSet<String> = verbose_lines(&first_out)
        .iter()
        .filter(|l| l.contains(" FAILED") || l.contains(" ERROR"))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(failed.len(), 7, "{failed:?}");

    let again = remote
        .command(&["--lf", "--", "-v", "tests/test_outcomes.py"])
        .output()
        .unwrap();
    let (out, err) = (text(&again.stdout), text(&again.stderr));
    eprintln!("{out}\n{err}");
    assert_eq!(again.status.code(), Some(1));
    assert!(
        err.contains(
            "--lf: running the 7 of 15 selected tests that failed the last time they ran remotely"
        ),
        "{err}"
    );
    let ran: BTreeSet<String> = verbose_lines(&out)
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(ran, failed);

    // Nothing of this selection failed: all of it runs, as pytest's --lf does.
    let passing = remote
        .command(&["--lf", "--", "tests/test_outcomes.py::test_pass"])
        .output()
        .unwrap();
    assert_eq!(passing.status.code(), Some(0));
    assert!(
        text(&passing.stderr).contains("--lf: no test of this selection failed in earlier remote runs of this project; running all 1"),
        "{}",
        text(&passing.stderr)
    );
    // pytest's own --lf after `--` is left to pytest, with a word on what it reads.
    let theirs = remote
        .command(&["--", "--lf", "tests/test_outcomes.py::test_pass"])
        .output()
        .unwrap();
    assert!(
        text(&theirs.stderr).contains("`--lf` after `--` is pytest's own"),
        "{}",
        text(&theirs.stderr)
    );
}
