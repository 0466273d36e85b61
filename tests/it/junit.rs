//! `fabric-remote report` and the junit mapper against junit XML written by real pytest.
//!
//! Every test copies `tests/fixtures/pytest-project` to a temporary directory, runs the
//! repository's pytest on it (`util::python()`), and compares what we map or print with
//! what pytest itself reported in the same run (its conftest writes one JSON line per
//! report when `FABRIC_REMOTE_OUTCOMES` is set).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fabric_remote::junit::{self, IdSource, Kind, Outcome};

use crate::util::{self, text};

/// One report as pytest's own `pytest_report_teststatus` categorised it.
#[derive(Debug, Clone)]
struct PyReport {
    nodeid: String,
    when: String,
    category: String,
    wasxfail: Option<String>,
}

/// A finished pytest run in its own copy of the fixture project.
struct PytestRun {
    dir: tempfile::TempDir,
    status: i32,
    stdout: String,
    reports: Vec<PyReport>,
}

impl PytestRun {
    fn xml(&self) -> PathBuf {
        self.dir.path().join("results.xml")
    }

    fn xml_bytes(&self) -> Vec<u8> {
        std::fs::read(self.xml()).expect("pytest wrote the junit XML")
    }

    /// Test node ids in the order pytest ran them (collection reports left out).
    fn test_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for r in self.reports.iter().filter(|r| r.when != "collect") {
            if !ids.contains(&r.nodeid) {
                ids.push(r.nodeid.clone());
            }
        }
        ids
    }

    /// Writes the test ids to a file for `--nodeids`.
    fn ids_file(&self, extra: &[&str]) -> PathBuf {
        let mut text = self.test_ids().join("\n");
        for id in extra {
            text.push('\n');
            text.push_str(id);
        }
        text.push('\n');
        let path = self.dir.path().join("nodeids.txt");
        std::fs::write(&path, text).expect("write node ids");
        path
    }

    /// Per node id, pytest's non-empty categories in report order (`["failed", "error"]`).
    fn categories(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in self.reports.iter().filter(|r| !r.category.is_empty()) {
            out.entry(r.nodeid.clone())
                .or_default()
                .push(r.category.clone());
        }
        out
    }

    /// The lines of pytest's "short test summary info".
    fn short_summary(&self) -> Vec<String> {
        section_lines(&self.stdout)
    }

    /// pytest's closing line counts, e.g. `[("4", "failed"), ("8", "passed"), …]`.
    fn closing_counts(&self) -> Vec<(usize, String)> {
        closing_counts(&self.stdout)
    }
}

/// The lines after the `short test summary info` separator, up to the closing line or the
/// first `note:` line.
fn section_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .skip_while(|l| !(l.starts_with("===") && l.contains(" short test summary info ")))
        .skip(1)
        .take_while(|l| !l.starts_with('=') && !l.starts_with("note: "))
        .map(str::to_owned)
        .collect()
}

/// The closing line without its `=` fill: `1 passed in 0.01s (remote)`.
fn closing(stdout: &str) -> &str {
    stdout
        .lines()
        .last()
        .unwrap_or_default()
        .trim_matches('=')
        .trim()
}

/// The closing line's `N word` parts.
fn closing_counts(stdout: &str) -> Vec<(usize, String)> {
    let last = stdout.lines().last().unwrap_or_default();
    let inner = last.trim_matches('=').trim();
    let counts = inner.rsplit_once(" in ").map(|(c, _)| c).unwrap_or(inner);
    let counts = counts.strip_suffix(" (remote)").unwrap_or(counts);
    counts
        .split(", ")
        .filter_map(|part| {
            let (n, word) = part.split_once(' ')?;
            Some((n.parse().ok()?, word.to_owned()))
        })
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name();
        if name == "__pycache__" || name == ".pytest_cache" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

/// Runs pytest on a fresh copy of the fixture project.
fn run_pytest(family: &str, logging: bool, args: &[&str]) -> PytestRun {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_tree(
        &util::root().join("tests/fixtures/pytest-project"),
        dir.path(),
    );
    let outcomes = dir.path().join("outcomes.jsonl");
    let mut cmd = Command::new(util::python());
    cmd.current_dir(dir.path())
        .args(["-m", "pytest", "-v", "-ra", "-p", "no:cacheprovider"])
        .arg("--continue-on-collection-errors")
        .arg(format!(
            "--junitxml={}",
            dir.path().join("results.xml").display()
        ))
        .args(["-o", &format!("junit_family={family}")]);
    if logging {
        cmd.args(["-o", "junit_logging=all"]);
    }
    let output = cmd
        .args(args)
        .env("FABRIC_REMOTE_OUTCOMES", &outcomes)
        // Full crash messages in the short summary, at a fixed width.
        .env("CI", "1")
        .env("COLUMNS", "80")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PYTEST_ADDOPTS")
        .output()
        .expect("run pytest");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let reports = std::fs::read_to_string(&outcomes)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("outcome json");
            let s = |k: &str| v[k].as_str().map(str::to_owned);
            PyReport {
                nodeid: s("nodeid").unwrap_or_default(),
                when: s("when").unwrap_or_default(),
                category: s("category").unwrap_or_default(),
                wasxfail: s("wasxfail"),
            }
        })
        .collect();
    let status = output.status.code().unwrap_or(-1);
    assert!(
        status == 0 || status == 1 || status == 5,
        "pytest exited {status}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    PytestRun {
        dir,
        status,
        stdout,
        reports,
    }
}

fn report_cmd(args: &[&std::ffi::OsStr]) -> Output {
    util::fabric_remote()
        .arg("report")
        .args(args)
        .output()
        .expect("run fabric-remote report")
}

/// The one node id where junit cannot carry pytest's verdict: non-strict XPASS.
const NON_STRICT_XPASS: &str = "tests/sub/test_outcomes.py::test_xpass_non_strict";

/// Maps with the run's own ids and checks every id against pytest's verdict.
fn assert_mapping_matches_pytest(run: &PytestRun) {
    let doc = junit::parse(&run.xml_bytes()).expect("pytest's XML parses");
    let ids = run.test_ids();
    assert!(ids.len() >= 18, "fixture ran {} tests", ids.len());
    let mapping = junit::map(&doc, Some(&ids));

    let pytest = run.categories();
    let mut ours: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &mapping.results {
        assert!(!r.unexpected, "row matched no expected id: {}", r.nodeid);
        assert!(!r.missing, "expected id got no row: {}", r.nodeid);
        ours.insert(
            r.nodeid.clone(),
            r.reports
                .iter()
                .map(|r| r.outcome.as_str().to_owned())
                .collect(),
        );
    }
    let mut expected = pytest.clone();
    // junit writes a non-strict XPASS exactly like a pass; that is the only difference.
    let xpass = expected
        .get_mut(NON_STRICT_XPASS)
        .expect("pytest reported the non-strict xpass");
    assert_eq!(xpass, &["xpassed"]);
    assert!(
        run.reports
            .iter()
            .any(|r| r.nodeid == NON_STRICT_XPASS && r.when == "call" && r.wasxfail.is_some())
    );
    *xpass = vec!["passed".to_owned()];
    assert_eq!(ours, expected);

    // Spot checks on what pytest calls each of them.
    let find = |id: &str| {
        mapping
            .results
            .iter()
            .find(|r| r.nodeid == id)
            .unwrap_or_else(|| panic!("no result for {id}"))
    };
    assert_eq!(find("tests/test_broken.py").kind, Kind::Collection);
    let strict = find("tests/sub/test_outcomes.py::test_xpass_strict").headline();
    assert_eq!(strict.outcome, Outcome::Failed);
    assert_eq!(strict.message.as_deref(), Some("[XPASS(strict)] must fail"));
    let skip = find("tests/sub/test_outcomes.py::test_skip_mark").headline();
    assert_eq!(skip.message.as_deref(), Some("not on this platform"));
    assert_eq!(mapping.exit_code() as i32, run.status);
}

#[test]
fn xunit1_outcomes_equal_pytests_own() {
    let run = run_pytest("xunit1", true, &[]);
    assert_mapping_matches_pytest(&run);
}

#[test]
fn xunit2_outcomes_equal_pytests_own() {
    let run = run_pytest("xunit2", false, &[]);
    assert_mapping_matches_pytest(&run);
}

#[test]
fn xunit1_without_ids_rebuilds_pytests_node_ids_from_file_attributes() {
    let run = run_pytest("xunit1", false, &[]);
    let doc = junit::parse(&run.xml_bytes()).expect("parses");
    assert_eq!(doc.family(), junit::Family::Xunit1);
    let mapping = junit::map(&doc, None);
    let mut ours: Vec<&str> = mapping.results.iter().map(|r| r.nodeid.as_str()).collect();
    let mut theirs: Vec<String> = run.categories().into_keys().collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);
    // The inherited test's `file` is basepkg/base.py; its module comes from a sibling row.
    let inherited = mapping
        .results
        .iter()
        .find(|r| r.nodeid == "tests/sub/test_outcomes.py::TestDerived::test_inherited")
        .expect("inherited test found");
    assert_eq!(inherited.id_source, IdSource::SiblingFile);
    assert!(
        mapping
            .results
            .iter()
            .all(|r| r.id_source != IdSource::Guessed)
    );
}

#[test]
fn xunit2_without_ids_guesses_honestly_and_says_so() {
    let run = run_pytest("xunit2", false, &[]);
    let out = report_cmd(&[run.xml().as_os_str()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "note: this junit XML has no `file` attributes (xunit2), so 19 node ids were rebuilt"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("pass --nodeids FILE for exact ids"),
        "{stdout}"
    );
    // With pytest's default file names the guesses are right for this project.
    for id in run.categories().keys() {
        assert!(
            stdout.contains(&format!("{id} "))
                || stdout.contains(&format!("ERROR collecting {id} ")),
            "{id} missing from:\n{stdout}"
        );
    }
}

#[test]
fn cli_summary_matches_pytest_except_the_non_strict_xpass() {
    let run = run_pytest("xunit1", true, &[]);
    let ids = run.ids_file(&[]);
    let out = report_cmd(&[run.xml().as_os_str(), "--nodeids".as_ref(), ids.as_os_str()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");

    // The short test summary equals pytest's `-ra` lines, minus the XPASS junit cannot see.
    let theirs: Vec<String> = run
        .short_summary()
        .into_iter()
        .filter(|l| !l.starts_with("XPASS "))
        .collect();
    assert!(theirs.len() >= 12, "pytest summary:\n{}", run.stdout);
    assert_eq!(section_lines(&stdout), theirs, "ours:\n{stdout}");

    // The closing line has pytest's categories, order and plurals, xpassed counted as passed.
    let mut expected = Vec::new();
    let mut xpassed = 0;
    for (n, word) in run.closing_counts() {
        match word.as_str() {
            "xpassed" => xpassed = n,
            "warning" | "warnings" => {}
            _ => expected.push((n, word)),
        }
    }
    assert_eq!(xpassed, 1);
    for (n, word) in &mut expected {
        if word == "passed" {
            *n += xpassed;
        }
    }
    assert_eq!(closing_counts(&stdout), expected, "ours:\n{stdout}");
    let title = closing(&stdout);
    assert!(
        title.starts_with("4 failed, 9 passed, 2 skipped, 1 xfailed, 5 errors in ")
            && title.ends_with("s (remote)"),
        "{title}"
    );
    assert!(
        stdout.contains("note: junit XML writes a non-strict XPASS exactly like a pass, so any of the 9 passed tests may really be an XPASS"),
        "{stdout}"
    );

    // -v lines, including both reports of the failure + teardown error test.
    for line in [
        "tests/sub/test_outcomes.py::test_fail_and_teardown_error FAILED",
        "tests/sub/test_outcomes.py::test_fail_and_teardown_error ERROR",
        "tests/sub/test_outcomes.py::test_teardown_error_after_pass PASSED",
        "tests/sub/test_outcomes.py::test_teardown_error_after_pass ERROR",
        "tests/sub/test_outcomes.py::TestClassFixture::test_one ERROR",
        "tests/sub/test_outcomes.py::test_xfail XFAIL (known bug)",
        "tests/sub/test_outcomes.py::test_runtime_skip SKIPPED (decided at runtime)",
        "tests/sub/test_outcomes.py::test_param[br[ack] PASSED",
        "tests/sub/test_outcomes.py::test_param[with space] PASSED",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "no line {line:?} in:\n{stdout}"
        );
    }
    // Sections and captured output as pytest draws them.
    for needle in [
        "==================================== ERRORS ====================================\n____________________ ERROR collecting tests/test_broken.py _____________________\n",
        "______________ ERROR at teardown of test_fail_and_teardown_error _______________\n",
        "=================================== FAILURES ===================================\n",
        "_____________________________ test_captured_output _____________________________\n",
        "E       AssertionError: assert 'left' == 'right'\n",
        "--------------------------- Captured stdout (remote) ---------------------------\nhello from stdout\n--------------------------- Captured stderr (remote) ---------------------------\nhello from stderr\n",
    ] {
        assert!(stdout.contains(needle), "no {needle:?} in:\n{stdout}");
    }
}

#[test]
fn cli_json_lines_keep_both_reports_and_captured_output() {
    let run = run_pytest("xunit1", true, &[]);
    let ids = run.ids_file(&[]);
    let out = report_cmd(&[
        run.xml().as_os_str(),
        "--nodeids".as_ref(),
        ids.as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let records: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect();
    assert_eq!(records.len(), run.categories().len());
    let get = |id: &str| {
        records
            .iter()
            .find(|r| r["nodeid"] == id)
            .unwrap_or_else(|| panic!("no record for {id}"))
    };
    let both = get("tests/sub/test_outcomes.py::test_fail_and_teardown_error");
    assert_eq!(both["outcome"], "failed");
    assert_eq!(both["when"], "call");
    assert_eq!(both["message"], "assert 1 == 2");
    let phases: Vec<(&str, &str)> = both["reports"]
        .as_array()
        .expect("reports")
        .iter()
        .map(|r| {
            (
                r["when"].as_str().unwrap_or("?"),
                r["outcome"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    assert_eq!(phases, [("call", "failed"), ("teardown", "error")]);
    assert_eq!(both["sections"][0][0], "Captured stdout (remote)");
    assert_eq!(both["sections"][0][1], "output before failing\n");

    let setup = get("tests/sub/test_outcomes.py::TestClassFixture::test_two");
    assert_eq!(setup["outcome"], "error");
    assert_eq!(setup["when"], "setup");
    assert_eq!(setup["message"], "RuntimeError: class fixture exploded");
    assert!(
        setup["longrepr"]
            .as_str()
            .unwrap_or("")
            .contains("E       RuntimeError")
    );

    let captured = get("tests/sub/test_outcomes.py::test_captured_output");
    assert_eq!(
        captured["properties"][0],
        serde_json::json!(["table", "t_42"])
    );
    assert!(captured["duration"].is_number());
    assert_eq!(
        get("tests/sub/test_outcomes.py::test_xfail")["outcome"],
        "xfailed"
    );
    assert_eq!(
        get("tests/sub/test_outcomes.py::test_xpass_strict")["outcome"],
        "failed"
    );
    assert_eq!(get("tests/test_broken.py")["kind"], "collection");
    // Notes go to stderr so stdout stays JSON.
    assert!(text(&out.stderr).contains("note: junit XML writes a non-strict XPASS"));
}

#[test]
fn cli_expected_id_without_a_row_is_an_error_never_a_pass() {
    let run = run_pytest("xunit2", false, &["tests/test_plain.py"]);
    assert_eq!(run.status, 0);
    let ids = run.ids_file(&["tests/test_plain.py::test_vanished"]);
    let out = report_cmd(&[run.xml().as_os_str(), "--nodeids".as_ref(), ids.as_os_str()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("tests/test_plain.py::test_vanished ERROR (no result)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ERROR tests/test_plain.py::test_vanished - no result in the junit XML\n"),
        "{stdout}"
    );
    assert!(
        closing(&stdout).starts_with("1 passed, 1 error in "),
        "{stdout}"
    );
}

#[test]
fn cli_exit_0_when_all_pass() {
    let run = run_pytest("xunit1", false, &["tests/test_plain.py"]);
    assert_eq!(run.status, 0);
    let out = report_cmd(&[run.xml().as_os_str()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with("tests/test_plain.py::test_ok PASSED\n"),
        "{stdout}"
    );
    let last = stdout.lines().last().unwrap_or("");
    assert!(
        last.starts_with("=====") && last.ends_with("====="),
        "{last}"
    );
    let title = closing(&stdout);
    assert!(
        title.starts_with("1 passed in ") && title.ends_with("s (remote)"),
        "{last}"
    );
}

#[test]
fn cli_exit_5_when_no_tests_ran() {
    let run = run_pytest(
        "xunit2",
        false,
        &["tests/test_plain.py", "-k", "nothing_matches"],
    );
    assert_eq!(run.status, 5, "pytest itself says no tests");
    let out = report_cmd(&[run.xml().as_os_str()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{stdout}");
    assert!(closing(&stdout).starts_with("no tests ran in "), "{stdout}");
}

/// `line N, column M` with numbers, as a user reads it.
fn has_line_column(s: &str) -> bool {
    s.split("line ").skip(1).any(|rest| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        !digits.is_empty()
            && rest[digits.len()..]
                .strip_prefix(", column ")
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
    })
}

fn assert_one_sentence_exit_2(out: &Output, needles: &[&str]) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout: {}",
        text(&out.stdout)
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "no {needle:?} in {stderr}");
    }
}

#[test]
fn cli_truncated_xml_is_exit_2_with_line_and_column() {
    let run = run_pytest("xunit1", true, &["tests/test_plain.py"]);
    let xml = run.xml_bytes();
    let dir = run.dir.path();
    // Cut inside an element's text, and inside a tag's attribute.
    let body = xml
        .windows(10)
        .position(|w| w == b"<testcase ")
        .expect("a testcase");
    for (name, cut) in [("cut-text.xml", xml.len() - 30), ("cut-tag.xml", body + 20)] {
        let path = dir.join(name);
        std::fs::write(&path, &xml[..cut]).expect("write cut file");
        let out = report_cmd(&[path.as_os_str()]);
        assert_one_sentence_exit_2(&out, &[name, "truncated"]);
        assert!(has_line_column(&text(&out.stderr)), "{}", text(&out.stderr));
    }
}

#[test]
fn cli_malformed_xml_is_exit_2_with_line_and_column() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.xml");
    std::fs::write(
        &path,
        "<testsuites>\n  <testsuite>\n    <testcase classname=\"a\" name=\"b\"></testsuite>\n</testsuites>\n",
    )
    .expect("write");
    let out = report_cmd(&[path.as_os_str()]);
    assert_one_sentence_exit_2(&out, &["bad.xml", "line 3, column "]);
}

#[test]
fn cli_empty_and_non_junit_files_are_exit_2_with_a_clear_sentence() {
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = dir.path().join("empty.xml");
    std::fs::write(&empty, "").expect("write");
    assert_one_sentence_exit_2(
        &report_cmd(&[empty.as_os_str()]),
        &["empty.xml", "is empty"],
    );

    let html = dir.path().join("page.xml");
    std::fs::write(&html, "<?xml version=\"1.0\"?>\n<html><body/></html>\n").expect("write");
    assert_one_sentence_exit_2(
        &report_cmd(&[html.as_os_str()]),
        &["page.xml", "not a junit report", "<html>"],
    );

    let missing = dir.path().join("nowhere.xml");
    assert_one_sentence_exit_2(
        &report_cmd(&[missing.as_os_str()]),
        &["cannot read", "nowhere.xml"],
    );

    let ok = dir.path().join("ok.xml");
    std::fs::write(
        &ok,
        "<testsuite><testcase classname=\"t.test_a\" name=\"test_b\"/></testsuite>",
    )
    .expect("write");
    let missing_ids = dir.path().join("ids.txt");
    assert_one_sentence_exit_2(
        &report_cmd(&[
            ok.as_os_str(),
            "--nodeids".as_ref(),
            missing_ids.as_os_str(),
        ]),
        &["node ids file", "ids.txt"],
    );
}
