//! `fabric-remote report` and the junit mapper against junit XML written by real pytest.
//!
//! Every test copies a fixture project (`tests/fixtures/pytest-project`, or
//! `tests/fixtures/pytest-more` for what junit XML cannot carry) to a temporary directory,
//! runs the repository's pytest on it (`util::python()`) writing junit XML and a report log
//! (`--report-log`, pytest-reportlog), and compares what we map or print with what pytest
//! itself reported in the same run: its terminal lines, or (pytest-project's conftest) one
//! JSON line per report when `FABRIC_REMOTE_OUTCOMES` is set.

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
        .take_while(|l| !l.starts_with(['=', '!']) && !l.starts_with("note: "))
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

// ---------------------------------------------------------------------------------------
// Report logs, and junit XML for the cases pytest-more holds, against pytest's terminal.

/// A pytest run of a fixture project with `-v -ra`, a report log and junit XML.
struct Terminal {
    dir: tempfile::TempDir,
    status: i32,
    stdout: String,
}

impl Terminal {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// pytest's `-v` outcome lines, without the progress column.
    fn v_lines(&self) -> Vec<String> {
        self.stdout
            .lines()
            .skip_while(|l| !l.starts_with("collecting ") && !l.starts_with("collected "))
            .skip(1)
            .skip_while(|l| l.is_empty())
            .take_while(|l| !l.is_empty() && !l.starts_with("==") && !l.starts_with("--"))
            .map(|l| {
                let l = l.trim_end();
                match l.strip_suffix("%]").and_then(|head| head.rfind('[')) {
                    Some(at) => l[..at].trim_end().to_owned(),
                    None => l.to_owned(),
                }
            })
            .collect()
    }

    /// The node ids of the `-v` lines, each once, in order.
    fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for line in self.v_lines() {
            let id = node_id_of(&line).to_owned();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }

    fn write_ids(&self, ids: &[String]) -> PathBuf {
        let path = self.path("nodeids.txt");
        std::fs::write(&path, ids.join("\n") + "\n").expect("write node ids");
        path
    }

    /// pytest's `!!! Interrupted: … !!!` line, if any, without the fill.
    fn interrupted(&self) -> Option<String> {
        interrupted_line(&self.stdout)
    }
}

/// The node id of a `-v` line: what comes before the outcome word (ids hold spaces).
fn node_id_of(line: &str) -> &str {
    const WORDS: [&str; 6] = ["PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL", "XPASS"];
    line.match_indices(' ')
        .map(|(at, _)| at)
        .find(|&at| {
            let rest = line[at + 1..].trim_start_matches("SUB");
            WORDS.iter().any(|w| {
                rest.strip_prefix(w)
                    .is_some_and(|after| after.is_empty() || after.starts_with([' ', '[', '(']))
            })
        })
        .map_or(line, |at| &line[..at])
}

fn interrupted_line(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find(|l| l.starts_with("!!!"))
        .map(|l| l.trim_matches('!').trim().to_owned())
}

/// Runs the repository's pytest on a fresh copy of `project` with `--report-log=rl.jsonl`
/// and `--junitxml=x.xml` in `family`, lines wide enough that pytest trims no reason.
fn run_terminal(project: &str, family: &str, args: &[&str]) -> Terminal {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_tree(
        &util::root().join("tests/fixtures").join(project),
        dir.path(),
    );
    let output = Command::new(util::python())
        .current_dir(dir.path())
        .args(["-m", "pytest", "-v", "-ra", "-p", "no:cacheprovider"])
        .arg("--report-log=rl.jsonl")
        .arg("--junitxml=x.xml")
        .args(["-o", &format!("junit_family={family}")])
        .args(args)
        .env("CI", "1")
        .env("COLUMNS", "400")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PYTEST_ADDOPTS")
        .env_remove("FABRIC_REMOTE_OUTCOMES")
        .output()
        .expect("run pytest");
    Terminal {
        dir,
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    }
}

/// Our `-v` lines: everything before the first blank line.
fn our_v_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .take_while(|l| !l.is_empty() && !l.starts_with(['=', '!']))
        .map(str::to_owned)
        .collect()
}

/// `report FILE [--nodeids ids]` prints what pytest printed: the `-v` lines, the short
/// summary, the Interrupted line, the closing counts, and exits with pytest's status.
fn assert_report_equals_terminal(run: &Terminal, file: &str, with_ids: bool) -> String {
    let ids = run.write_ids(&run.ids());
    let mut args = vec![run.path(file).into_os_string()];
    if with_ids {
        args.push("--nodeids".into());
        args.push(ids.into_os_string());
    }
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let out = report_cmd(&args);
    let ours = text(&out.stdout);
    assert_eq!(
        our_v_lines(&ours),
        run.v_lines(),
        "ours:\n{ours}\npytest:\n{}",
        run.stdout
    );
    assert_eq!(
        section_lines(&ours),
        section_lines(&run.stdout),
        "ours:\n{ours}"
    );
    assert_eq!(interrupted_line(&ours), run.interrupted(), "ours:\n{ours}");
    assert_eq!(
        closing_counts(&ours),
        closing_counts(&run.stdout),
        "ours:\n{ours}"
    );
    assert_eq!(
        out.status.code(),
        Some(run.status),
        "ours:\n{ours}\n{}",
        text(&out.stderr)
    );
    ours
}

#[test]
fn report_log_reproduces_pytests_terminal_for_every_outcome() {
    // pass, fail, setup error, teardown error, fail + teardown error, skips, xfail, both
    // xpasses, inherited test, nested class, awkward parameter ids, collection error.
    let run = run_terminal(
        "pytest-project",
        "xunit1",
        &["--continue-on-collection-errors"],
    );
    assert_eq!(run.status, 1, "{}", run.stdout);
    assert!(run.v_lines().len() >= 20, "{}", run.stdout);
    let ours = assert_report_equals_terminal(&run, "rl.jsonl", true);
    for line in [
        "tests/sub/test_outcomes.py::test_xpass_non_strict XPASS (fixed already)",
        "tests/sub/test_outcomes.py::TestClassFixture::test_one ERROR",
        "tests/sub/test_outcomes.py::test_param[a::b] PASSED",
    ] {
        assert!(ours.lines().any(|l| l == line), "no {line:?} in:\n{ours}");
    }
    // No junit caveats for a report log, and the session status is pytest's.
    assert!(!ours.contains("note: "), "{ours}");
    // Without expected ids, the tests come in the order they ran: the same output.
    assert_report_equals_terminal(&run, "rl.jsonl", false);
}

#[test]
fn report_log_reproduces_what_junit_cannot_carry() {
    // Skip and xfail in teardown, skip in setup, runtime xfail, non-strict XPASS, strict
    // XPASS, subtests, module-level skip, collection error, two ids with one junit key.
    let run = run_terminal(
        "pytest-more",
        "xunit1",
        &["--continue-on-collection-errors"],
    );
    assert_eq!(run.status, 1, "{}", run.stdout);
    for expected in [
        "SUBFAILED[part] (i=1)",
        "SUBPASSED(n=2, name='two')",
        "SUBSKIPPED[skipped part] (not this part)",
        "XFAIL (xfail while tearing down)",
    ] {
        assert!(run.stdout.contains(expected), "{}", run.stdout);
    }
    let ours = assert_report_equals_terminal(&run, "rl.jsonl", true);
    assert!(
        ours.contains("\nXFAIL at teardown of tests/sub/test_teardown.py::test_xfail_at_teardown - xfail while tearing down\n"),
        "{ours}"
    );
    assert!(
        ours.contains("\nSKIPPED [1] tests/test_modskip.py:3: whole module skipped\n"),
        "{ours}"
    );
    assert!(closing(&ours).contains(" subtests passed"), "{ours}");
}

#[test]
fn collection_error_without_continue_exits_2_like_pytest() {
    for family in ["xunit1", "xunit2"] {
        let run = run_terminal("pytest-more", family, &[]);
        assert_eq!(run.status, 2, "{}", run.stdout);
        assert_eq!(
            run.interrupted().as_deref(),
            Some("Interrupted: 1 error during collection")
        );
        // Both files: pytest's lines, its Interrupted line, its counts, exit 2.
        assert_report_equals_terminal(&run, "rl.jsonl", false);
        assert_report_equals_terminal(&run, "x.xml", false);
    }
    // With the ids collected locally, none of which ran: each is an error, still exit 2.
    let run = run_terminal("pytest-more", "xunit1", &[]);
    let ids = run.write_ids(&["tests/a.b/test_x.py::test_same".to_owned()]);
    for file in ["rl.jsonl", "x.xml"] {
        let out = report_cmd(&[
            run.path(file).as_os_str(),
            "--nodeids".as_ref(),
            ids.as_os_str(),
        ]);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{stdout}");
        assert!(
            stdout.contains("tests/a.b/test_x.py::test_same ERROR (no result)\n"),
            "{stdout}"
        );
    }
}

#[test]
fn module_level_skips_only_exit_5_and_print_the_skip_like_pytest() {
    for family in ["xunit1", "xunit2"] {
        let run = run_terminal("pytest-more", family, &["tests/test_modskip.py"]);
        assert_eq!(run.status, 5, "{}", run.stdout);
        assert_eq!(
            section_lines(&run.stdout),
            ["SKIPPED [1] tests/test_modskip.py:3: whole module skipped"]
        );
        assert_report_equals_terminal(&run, "x.xml", false);
        assert_report_equals_terminal(&run, "rl.jsonl", false);
    }
}

#[test]
fn two_ids_with_one_junit_key_each_get_their_own_result_or_an_error() {
    let ids = [
        "tests/a/b/test_x.py::test_same".to_owned(),
        "tests/a.b/test_x.py::test_same".to_owned(),
    ];
    // xunit1: the `file` attribute tells the rows apart, exactly as pytest reported.
    let run = run_terminal("pytest-more", "xunit1", &["tests/a", "tests/a.b"]);
    assert_eq!(
        run.v_lines(),
        [
            "tests/a/b/test_x.py::test_same FAILED",
            "tests/a.b/test_x.py::test_same PASSED"
        ]
    );
    assert_eq!(run.ids(), ids);
    assert_report_equals_terminal(&run, "x.xml", true);
    assert_report_equals_terminal(&run, "rl.jsonl", true);

    // xunit2: nothing tells them apart, so both are explicit errors, never a pass shown
    // as failed.
    let run = run_terminal("pytest-more", "xunit2", &["tests/a", "tests/a.b"]);
    let doc = junit::parse(&std::fs::read(run.path("x.xml")).expect("xml")).expect("parses");
    let mapping = junit::map(&doc, Some(&ids));
    let got: Vec<(&str, Outcome, bool)> = mapping
        .results
        .iter()
        .map(|r| (r.nodeid.as_str(), r.headline().outcome, r.missing))
        .collect();
    assert_eq!(
        got,
        [
            (ids[0].as_str(), Outcome::Error, true),
            (ids[1].as_str(), Outcome::Error, true)
        ]
    );
    let message = mapping.results[0]
        .headline()
        .message
        .clone()
        .unwrap_or_default();
    assert!(
        message.contains("tests/a.b/test_x.py::test_same")
            && message.contains("junit_family=xunit1"),
        "{message}"
    );
    assert_eq!(mapping.exit_code(), 1);
    // The report log needs no help.
    assert_report_equals_terminal(&run, "rl.jsonl", true);
}

#[test]
fn cli_junitprefix_matches_rows_written_with_a_prefix() {
    let run = run_terminal(
        "pytest-project",
        "xunit2",
        &["tests/test_plain.py", "--junitprefix=pre"],
    );
    assert_eq!(run.status, 0, "{}", run.stdout);
    let ids = run.write_ids(&run.ids());
    let xml = run.path("x.xml");
    let with = report_cmd(&[
        xml.as_os_str(),
        "--nodeids".as_ref(),
        ids.as_os_str(),
        "--junitprefix".as_ref(),
        "pre".as_ref(),
    ]);
    let stdout = text(&with.stdout);
    assert_eq!(with.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with("tests/test_plain.py::test_ok PASSED\n"),
        "{stdout}"
    );
    // Without it the row matches nothing: an error for the id, never a pass.
    let without = report_cmd(&[xml.as_os_str(), "--nodeids".as_ref(), ids.as_os_str()]);
    let stdout = text(&without.stdout);
    assert_eq!(without.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("tests/test_plain.py::test_ok ERROR (no result)\n"),
        "{stdout}"
    );
}

#[test]
fn report_log_in_chunks_gives_each_test_as_it_finishes_and_the_same_mapping() {
    let run = run_terminal(
        "pytest-more",
        "xunit1",
        &["--continue-on-collection-errors"],
    );
    let bytes = std::fs::read(run.path("rl.jsonl")).expect("report log");
    let ids = run.ids();

    let mut whole = junit::ReportLog::new();
    assert!(whole.push_bytes(&bytes).errors.is_empty());
    let expected = whole.finish(Some(&ids), &junit::MapOptions::default());

    // Odd chunk sizes split lines and UTF-8 anywhere; each test arrives once, when its
    // teardown does, with pytest's -v lines.
    let mut live = junit::ReportLog::new();
    let mut lines = Vec::new();
    let mut order = Vec::new();
    for chunk in bytes.chunks(7) {
        let pushed = live.push_bytes(chunk);
        assert!(pushed.errors.is_empty(), "{:?}", pushed.errors);
        for result in pushed.results {
            if result.kind == Kind::Test {
                order.push(result.nodeid.clone());
                lines.extend(junit::render_line(&result).lines().map(str::to_owned));
            }
        }
    }
    assert!(live.end().results.is_empty());
    assert_eq!(order, ids);
    assert_eq!(lines, run.v_lines());
    assert_eq!(live.exit_status(), Some(1));
    let mapping = live.finish(Some(&ids), &junit::MapOptions::default());
    assert_eq!(junit::render_text(&mapping), junit::render_text(&expected));
    assert_eq!(live.counts(), mapping.counts());
}

#[test]
fn cut_off_report_log_makes_unfinished_tests_errors_never_passes() {
    let run = run_terminal(
        "pytest-more",
        "xunit1",
        &["--continue-on-collection-errors"],
    );
    let log = std::fs::read_to_string(run.path("rl.jsonl")).expect("report log");
    let ids = run.ids();
    // Cut in the middle of the teardown line of the xfail-at-teardown test: it and every
    // test after it have no final result, and there is no SessionFinish.
    let target = "tests/sub/test_teardown.py::test_xfail_at_teardown";
    let at = log
        .lines()
        .position(|l| l.contains(target) && l.contains("\"teardown\""))
        .expect("teardown line");
    let mut cut: String = log.lines().take(at).map(|l| format!("{l}\n")).collect();
    let line = log.lines().nth(at).unwrap_or_default();
    cut.push_str(&line[..line.len() / 2]);
    let path = run.path("cut.jsonl");
    std::fs::write(&path, &cut).expect("write");
    let ids_file = run.write_ids(&ids);
    let out = report_cmd(&[path.as_os_str(), "--nodeids".as_ref(), ids_file.as_os_str()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("{target} ERROR (no result)\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("ERROR {target} - no result: the remote run stopped before this test finished (its last report: call passed)\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains("ERROR tests/sub/test_teardown.py::test_xpass_strict - no result: the remote run produced no result for it\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("note: the report log ends in a cut-off line"),
        "{stdout}"
    );
    // Tests that finished keep pytest's outcomes.
    assert!(
        stdout.contains("tests/sub/test_teardown.py::test_skip_in_teardown SKIPPED (skipped while tearing down)\n"),
        "{stdout}"
    );
    assert!(!stdout.contains(&format!("{target} PASSED")), "{stdout}");
}

#[test]
fn cli_report_log_with_a_bad_line_warns_and_keeps_the_rest() {
    let run = run_terminal("pytest-project", "xunit1", &["tests/test_plain.py"]);
    let mut log = std::fs::read_to_string(run.path("rl.jsonl")).expect("report log");
    log.insert_str(
        0,
        "this is not json\n{\"$report_type\": \"SomethingNew\", \"nodeid\": 5}\n",
    );
    let path = run.path("bad.jsonl");
    std::fs::write(&path, log).expect("write");
    let out = report_cmd(&[path.as_os_str()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with("tests/test_plain.py::test_ok PASSED\n"),
        "{stdout}"
    );
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("warning: line 1 of the report log is not a JSON object"),
        "{stderr}"
    );
    assert!(
        stdout.contains("note: 1 line of the report log could not be read"),
        "{stdout}"
    );

    let other = run.path("other.jsonl");
    std::fs::write(&other, "{\"a\": 1}\n{\"b\": 2}\n").expect("write");
    assert_one_sentence_exit_2(
        &report_cmd(&[other.as_os_str()]),
        &["other.jsonl", "not", "report log"],
    );
}

#[test]
fn issue_8_testcase_without_a_name_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("unnamed.xml");
    std::fs::write(
        &path,
        "<testsuite>\n  <testcase classname=\"t.test_a\"/>\n</testsuite>\n",
    )
    .expect("write");
    assert_one_sentence_exit_2(
        &report_cmd(&[path.as_os_str()]),
        &["unnamed.xml", "line 2, column 3", "no `name` attribute"],
    );
}
