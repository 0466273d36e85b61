//! Reads a pytest report log (pytest-reportlog 1.0's JSON lines) into the same
//! [`Mapping`] the junit path produces, line by line as the log grows.
//!
//! A *report log* holds one JSON object per line, told apart by `$report_type`:
//! `SessionStart`, `TestReport` (pytest's `pytest_report_to_serializable` of every setup,
//! call and teardown report), `SubTestReport` (pytest 9 subtests), `CollectReport`,
//! `WarningMessage` and `SessionFinish` (with `exitstatus`). Unknown record types and keys
//! are ignored, as the format asks. Unlike junit XML it carries everything pytest's
//! terminal shows: ERROR vs FAILED by phase, xfail vs skip, non-strict XPASS, skips and
//! xfails in teardown, subtests, collection skips and the session's exit status.
//!
//! A test's result is *final* when its teardown report arrived. Categories and words follow
//! pytest's own `pytest_report_teststatus` implementations (subtests, skipping, runner,
//! terminal, in that order). Nothing here reads files or prints.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::map::{
    Counts, FastHash, Kind, MapOptions, Mapping, Outcome, Report, Section, Source, TestResult,
    When, collection_cause, collection_index, no_result,
};
use super::nodeid::IdSource;

/// Why a line of a report log could not be used. Line numbers count every line fed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportLogError {
    /// Not a JSON object.
    #[error("line {line} of the report log is not a JSON object: {message}")]
    NotJson { line: usize, message: String },
    /// A JSON object cut off before its end: the rest of the line has not arrived (yet).
    #[error("line {line} of the report log is cut off ({message})")]
    CutOff { line: usize, message: String },
    /// A known record without a field it cannot do without, or with a field of the wrong
    /// type.
    #[error("line {line} of the report log is a {record} record that cannot be read: {message}")]
    BadRecord {
        line: usize,
        record: String,
        message: String,
    },
}

/// What a chunk of bytes yielded: the results it made final and the lines it could not use.
#[derive(Debug, Default)]
pub struct Pushed {
    pub results: Vec<TestResult>,
    pub errors: Vec<ReportLogError>,
}

/// What a results file looks like, judged by its first non-blank byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    JunitXml,
    ReportLog,
}

/// XML starts with `<` (an empty file is left to the XML reader to name); anything else
/// is read as a report log, line by line.
pub fn sniff(bytes: &[u8]) -> Format {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'<') | None => Format::JunitXml,
        Some(_) => Format::ReportLog,
    }
}

/// A skip's `(path, line, reason)` as written on the machine that ran it, kept until the
/// result is shown so that the path can be made relative to that machine's root.
#[derive(Debug, Clone)]
struct RawSkip {
    path: String,
    line: Option<i64>,
    reason: String,
    /// pytest folds a skip mark's setup skips without the line number.
    by_mark: bool,
}

/// One counted report and, for a skip, where it happened.
#[derive(Debug, Clone)]
struct Counted {
    report: Report,
    skip: Option<RawSkip>,
}

/// Everything received about one test (or collector).
#[derive(Debug, Clone)]
struct Entry {
    nodeid: String,
    kind: Kind,
    counted: Vec<Counted>,
    sections: Vec<Section>,
    properties: Vec<(String, String)>,
    duration: Option<f64>,
    failed_subtests: usize,
    /// The teardown report arrived (collectors are final at once).
    done: bool,
    /// The last report seen: its phase and outcome word, for a test that never finished.
    last: (When, &'static str),
}

/// The records of one report log, accumulated line by line.
#[derive(Debug, Default, Clone)]
pub struct ReportLog {
    tests: Vec<Entry>,
    by_id: HashMap<String, usize, FastHash>,
    collectors: Vec<Entry>,
    warnings: usize,
    exit_status: Option<i32>,
    pytest_version: Option<String>,
    /// The directory the remote pytest ran in, learnt from an absolute path that ends in a
    /// rootdir-relative one.
    root: Option<String>,
    start: Option<f64>,
    stop: Option<f64>,
    counts: Counts,
    lines: usize,
    bad_lines: usize,
    first_error: Option<ReportLogError>,
    /// Bytes after the last newline of [`ReportLog::push_bytes`].
    tail: Vec<u8>,
    cut_off_end: bool,
}

impl ReportLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one line (without the newline). Returns the results that became final with
    /// this line (a test is final when its teardown report arrived; a collection error or
    /// skip at once), in arrival order, for live `-v` lines. A malformed line is an error
    /// the caller may show and skip: nothing of it is kept. A line that is cut off gives
    /// [`ReportLogError::CutOff`]; push the whole line once it has arrived.
    pub fn push_line(&mut self, line: &str) -> Result<Vec<TestResult>, ReportLogError> {
        self.lines += 1;
        let result = self.read_line(line);
        if let Err(err) = &result
            && !matches!(err, ReportLogError::CutOff { .. })
        {
            self.bad_lines += 1;
            self.first_error.get_or_insert_with(|| err.clone());
        }
        result
    }

    /// Feeds raw bytes as they arrive, in chunks of any size: complete lines are read, a
    /// final partial line is kept until the rest of it comes (or [`ReportLog::end`]).
    pub fn push_bytes(&mut self, chunk: &[u8]) -> Pushed {
        let mut pushed = Pushed::default();
        let mut rest = chunk;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(newline);
            rest = &tail[1..];
            let line = if self.tail.is_empty() {
                Cow::Borrowed(head)
            } else {
                let mut joined = std::mem::take(&mut self.tail);
                joined.extend_from_slice(head);
                Cow::Owned(joined)
            };
            self.take_line(&line, &mut pushed);
        }
        self.tail.extend_from_slice(rest);
        pushed
    }

    /// The input is over: reads a last line that had no newline. If it is cut off it is
    /// left out, and [`ReportLog::finish`] says so.
    pub fn end(&mut self) -> Pushed {
        let mut pushed = Pushed::default();
        let tail = std::mem::take(&mut self.tail);
        if !tail.iter().all(u8::is_ascii_whitespace) {
            let before = pushed.errors.len();
            self.take_line(&tail, &mut pushed);
            if pushed.errors[before..]
                .iter()
                .any(|e| matches!(e, ReportLogError::CutOff { .. }))
            {
                self.cut_off_end = true;
            }
        }
        pushed
    }

    fn take_line(&mut self, line: &[u8], pushed: &mut Pushed) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = String::from_utf8_lossy(line);
        match self.push_line(&text) {
            Ok(mut results) => pushed.results.append(&mut results),
            Err(err) => pushed.errors.push(err),
        }
    }

    /// Outcome counts of the final results so far (for a live status line), warnings
    /// included.
    pub fn counts(&self) -> Counts {
        Counts {
            warnings: self.warnings,
            ..self.counts
        }
    }

    /// The remote session's exit status, once `SessionFinish` arrived.
    pub fn exit_status(&self) -> Option<i32> {
        self.exit_status
    }

    /// The pytest version `SessionStart` named.
    pub fn pytest_version(&self) -> Option<&str> {
        self.pytest_version.as_deref()
    }

    /// Whether any record was read (a file of other JSON lines has none).
    pub fn is_empty(&self) -> bool {
        self.tests.is_empty()
            && self.collectors.is_empty()
            && self.exit_status.is_none()
            && self.pytest_version.is_none()
            && self.warnings == 0
    }

    /// Maps onto the expected node ids: an id with no final result is an ERROR (never a
    /// pass or skip), with a message saying the remote run produced no result for it.
    /// Without expected ids, every test is shown in the order it ran. Collection errors
    /// and skips come first either way, and tests nobody expected are flagged
    /// `unexpected`. `options` only matters for junit XML.
    pub fn finish(&self, expected: Option<&[String]>, options: &MapOptions) -> Mapping {
        let _ = options;
        let mut results: Vec<TestResult> = self.collectors.iter().map(|e| self.result(e)).collect();
        let collection_errors = collection_index(results.iter());
        let collectors: HashMap<&str, ()> = self
            .collectors
            .iter()
            .map(|e| (e.nodeid.as_str(), ()))
            .collect();
        match expected {
            Some(ids) => {
                let mut taken = vec![false; self.tests.len()];
                let mut seen = std::collections::HashSet::with_capacity(ids.len());
                for id in ids {
                    if !seen.insert(id.as_str()) || collectors.contains_key(id.as_str()) {
                        continue;
                    }
                    match self.by_id.get(id.as_str()) {
                        Some(&i) => {
                            taken[i] = true;
                            let mut result = self.result(&self.tests[i]);
                            result.id_source = IdSource::Expected;
                            results.push(result);
                        }
                        None => {
                            let message = match collection_cause(id, &collection_errors) {
                                Some(collected) => {
                                    format!("no result: collecting {collected} failed")
                                }
                                None => {
                                    "no result: the remote run produced no result for it".to_owned()
                                }
                            };
                            results.push(no_result(id, message));
                        }
                    }
                }
                for (i, entry) in self.tests.iter().enumerate() {
                    if !taken[i] {
                        let mut result = self.result(entry);
                        result.unexpected = true;
                        results.push(result);
                    }
                }
            }
            None => results.extend(self.tests.iter().map(|e| self.result(e))),
        }

        let mut remarks = Vec::new();
        if self.bad_lines > 0 {
            let first = self
                .first_error
                .as_ref()
                .map(|e| format!(" (the first: {e})"))
                .unwrap_or_default();
            let (n, lines) = match self.bad_lines {
                1 => ("1".to_owned(), "line"),
                n => (n.to_string(), "lines"),
            };
            remarks.push(format!(
                "{n} {lines} of the report log could not be read and {} left out{first}",
                if n == "1" { "was" } else { "were" }
            ));
        }
        if self.cut_off_end || !self.tail.iter().all(u8::is_ascii_whitespace) {
            remarks.push(
                "the report log ends in a cut-off line, which was left out (the remote run stopped while writing it)"
                    .to_owned(),
            );
        }
        Mapping {
            has_captured_output: results.iter().any(|r| !r.sections.is_empty()),
            results,
            source: Source::ReportLog,
            duration: match (self.start, self.stop) {
                (Some(start), Some(stop)) if stop >= start => Some(stop - start),
                _ => None,
            },
            expected_given: expected.is_some(),
            warnings: self.warnings,
            session_exit: self.exit_status,
            remarks,
        }
    }

    fn read_line(&mut self, line: &str) -> Result<Vec<TestResult>, ReportLogError> {
        let n = self.lines;
        if line.trim().is_empty() {
            return Ok(Vec::new());
        }
        let record: Record<'_> = match serde_json::from_str(line) {
            Ok(record) => record,
            Err(err) if err.is_eof() => {
                return Err(ReportLogError::CutOff {
                    line: n,
                    message: err.to_string(),
                });
            }
            Err(err) => {
                // A record of a type we do not know may use known keys differently.
                return match serde_json::from_str::<Value>(line) {
                    Ok(Value::Object(map)) => match map.get("$report_type").and_then(Value::as_str)
                    {
                        Some(kind) if KNOWN.contains(&kind) => Err(ReportLogError::BadRecord {
                            line: n,
                            record: kind.to_owned(),
                            message: err.to_string(),
                        }),
                        _ => Ok(Vec::new()),
                    },
                    Ok(_) => Err(ReportLogError::NotJson {
                        line: n,
                        message: "the line is JSON but not an object".to_owned(),
                    }),
                    Err(err) => Err(ReportLogError::NotJson {
                        line: n,
                        message: err.to_string(),
                    }),
                };
            }
        };
        let bad = |record: &str, message: &str| ReportLogError::BadRecord {
            line: n,
            record: record.to_owned(),
            message: message.to_owned(),
        };
        match record.report_type.as_deref() {
            Some("SessionStart") => {
                self.pytest_version = record.pytest_version.map(Cow::into_owned);
                Ok(Vec::new())
            }
            Some("SessionFinish") => {
                let status = record
                    .exitstatus
                    .ok_or_else(|| bad("SessionFinish", "it has no `exitstatus`"))?;
                self.exit_status = Some(i32::try_from(status).unwrap_or(3));
                Ok(Vec::new())
            }
            Some("WarningMessage") => {
                self.warnings += 1;
                Ok(Vec::new())
            }
            Some("CollectReport") => self.collect_report(record, n),
            Some(kind @ ("TestReport" | "SubTestReport")) => {
                let subtest = kind == "SubTestReport";
                self.test_report(record, subtest, n)
            }
            _ => Ok(Vec::new()),
        }
    }

    fn collect_report(
        &mut self,
        record: Record<'_>,
        n: usize,
    ) -> Result<Vec<TestResult>, ReportLogError> {
        let bad = |message: &str| ReportLogError::BadRecord {
            line: n,
            record: "CollectReport".to_owned(),
            message: message.to_owned(),
        };
        let outcome = record
            .outcome
            .as_deref()
            .ok_or_else(|| bad("it has no `outcome`"))?;
        let nodeid = record
            .nodeid
            .as_deref()
            .ok_or_else(|| bad("it has no `nodeid`"))?;
        let outcome = match outcome {
            "failed" => Outcome::Error,
            "skipped" => Outcome::Skipped,
            _ => return Ok(Vec::new()),
        };
        let longrepr = record.longrepr.as_ref();
        let path = nodeid.split("::").next().unwrap_or_default();
        self.learn_root(path, longrepr);
        let counted = match outcome {
            Outcome::Skipped => skipped(When::Collect, longrepr, false, None),
            _ => Counted {
                report: Report {
                    when: Some(When::Collect),
                    outcome,
                    // pytest's CollectErrorRepr (a string here) has no crash message.
                    message: longrepr.and_then(crash_message),
                    longrepr: longrepr.map(longrepr_text).filter(|t| !t.is_empty()),
                    subtest: None,
                },
                skip: None,
            },
        };
        let entry = Entry {
            nodeid: nodeid.to_owned(),
            kind: Kind::Collection,
            counted: vec![counted],
            sections: sections(record.sections),
            properties: Vec::new(),
            duration: record.duration,
            failed_subtests: 0,
            done: true,
            last: (When::Collect, outcome.as_str()),
        };
        self.counts.add(outcome);
        let result = self.result(&entry);
        self.collectors.push(entry);
        Ok(vec![result])
    }

    fn test_report(
        &mut self,
        record: Record<'_>,
        subtest: bool,
        n: usize,
    ) -> Result<Vec<TestResult>, ReportLogError> {
        let record_type = if subtest {
            "SubTestReport"
        } else {
            "TestReport"
        };
        let bad = |message: &str| ReportLogError::BadRecord {
            line: n,
            record: record_type.to_owned(),
            message: message.to_owned(),
        };
        let nodeid = record
            .nodeid
            .as_deref()
            .ok_or_else(|| bad("it has no `nodeid`"))?;
        let when = match record.when.as_deref() {
            Some("setup") => When::Setup,
            Some("call") => When::Call,
            Some("teardown") => When::Teardown,
            Some(_) => return Ok(Vec::new()),
            None => return Err(bad("it has no `when`")),
        };
        let raw_outcome = record
            .outcome
            .as_deref()
            .ok_or_else(|| bad("it has no `outcome`"))?;
        if !matches!(raw_outcome, "passed" | "failed" | "skipped") {
            // Plugins' own outcomes (pytest-rerunfailures' "rerun") are not pytest's.
            return Ok(Vec::new());
        }
        if let Some(start) = record.start {
            self.start = Some(self.start.map_or(start, |s| s.min(start)));
        }
        if let Some(stop) = record.stop {
            self.stop = Some(self.stop.map_or(stop, |s| s.max(stop)));
        }
        let longrepr = record.longrepr.as_ref();
        if let Some(path) = record.location.0.as_deref() {
            self.learn_root(path, longrepr);
        }

        let i = match self.by_id.get(nodeid) {
            Some(&i) => i,
            None => {
                self.tests.push(Entry {
                    nodeid: nodeid.to_owned(),
                    kind: Kind::Test,
                    counted: Vec::new(),
                    sections: Vec::new(),
                    properties: Vec::new(),
                    duration: None,
                    failed_subtests: 0,
                    done: false,
                    last: (when, ""),
                });
                self.by_id.insert(nodeid.to_owned(), self.tests.len() - 1);
                self.tests.len() - 1
            }
        };
        let entry = &mut self.tests[i];
        if entry.done {
            // Reports after the teardown (a plugin re-running the test): the result opens
            // again and is counted afresh when its next teardown arrives.
            entry.done = false;
            for c in &entry.counted {
                uncount(&mut self.counts, c.report.outcome);
            }
        }
        let wasxfail = record.wasxfail.as_deref();
        let mut outcome_word: &'static str = match raw_outcome {
            "passed" => "passed",
            "failed" => "failed",
            _ => "skipped",
        };
        let mut message_override = None;
        if subtest && raw_outcome == "failed" && wasxfail.is_none() {
            entry.failed_subtests += 1;
        }
        // pytest fails a passing test whose subtests failed (its subtests plugin).
        if !subtest && when == When::Call && raw_outcome == "passed" && entry.failed_subtests > 0 {
            outcome_word = "failed";
            let n = entry.failed_subtests;
            message_override = Some(format!(
                "contains {n} failed subtest{}",
                if n == 1 { "" } else { "s" }
            ));
        }
        let description = if subtest && when == When::Call {
            record.subtest.as_ref().map(SubtestContext::description)
        } else {
            None
        };
        if let Some(counted) = classify(
            when,
            outcome_word,
            wasxfail,
            description,
            longrepr,
            message_override,
            record.keywords.unwrap_or_default(),
        ) {
            entry.counted.push(counted);
        }
        entry.last = (when, outcome_word);
        merge_sections(&mut entry.sections, sections(record.sections));
        for (name, value) in record.user_properties.unwrap_or_default() {
            let value = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            if !entry
                .properties
                .iter()
                .any(|(n, v)| *n == name && *v == value)
            {
                entry.properties.push((name, value));
            }
        }
        if let Some(d) = record.duration
            && !subtest
        {
            entry.duration = Some(entry.duration.unwrap_or(0.0) + d);
        }
        if when == When::Teardown && !subtest {
            entry.done = true;
            for c in &entry.counted {
                self.counts.add(c.report.outcome);
            }
            let result = self.result(&self.tests[i]);
            return Ok(vec![result]);
        }
        Ok(Vec::new())
    }

    /// Learns the remote root from an absolute path (a skip's or a crash's) that ends in
    /// the rootdir-relative `rel`.
    fn learn_root(&mut self, rel: &str, longrepr: Option<&Value>) {
        if self.root.is_some() || rel.is_empty() || is_absolute(rel) {
            return;
        }
        let Some(longrepr) = longrepr else { return };
        let abs = match longrepr {
            Value::Array(items) => items.first().and_then(Value::as_str),
            Value::Object(map) => map
                .get("reprcrash")
                .and_then(|c| c.get("path"))
                .and_then(Value::as_str),
            _ => None,
        };
        let Some(abs) = abs.filter(|a| is_absolute(a)) else {
            return;
        };
        let abs = abs.replace('\\', "/");
        if let Some(root) = abs.strip_suffix(rel).and_then(|r| r.strip_suffix('/')) {
            self.root = Some(root.to_owned());
        }
    }

    /// The public view of an entry, skip paths made relative to the remote root.
    fn result(&self, entry: &Entry) -> TestResult {
        let mut reports: Vec<Report> = entry
            .counted
            .iter()
            .map(|c| {
                let mut report = c.report.clone();
                if let Some(skip) = &c.skip {
                    report.longrepr = Some(self.fold_key(skip));
                }
                report
            })
            .collect();
        let missing = entry.kind == Kind::Test && !entry.done;
        if missing {
            let (when, outcome) = &entry.last;
            reports = vec![Report {
                when: None,
                outcome: Outcome::Error,
                message: Some(format!(
                    "no result: the remote run stopped before this test finished (its last report: {} {outcome})",
                    when.as_str()
                )),
                longrepr: None,
                subtest: None,
            }];
        }
        TestResult {
            nodeid: entry.nodeid.clone(),
            kind: entry.kind,
            id_source: IdSource::Reported,
            unexpected: false,
            missing,
            reports,
            sections: entry.sections.clone(),
            properties: entry.properties.clone(),
            duration: entry.duration,
            rows: 0,
        }
    }

    /// pytest's fold key for the short summary: `path:line: reason`, or `path: reason`
    /// for a skip mark.
    fn fold_key(&self, skip: &RawSkip) -> String {
        let path = self.relative(&skip.path);
        let reason = skip
            .reason
            .strip_prefix("Skipped: ")
            .unwrap_or(&skip.reason);
        match skip.line {
            Some(line) if !skip.by_mark => format!("{path}:{line}: {reason}"),
            _ => format!("{path}: {reason}"),
        }
    }

    /// `path` relative to the remote root, as pytest's `bestrelpath` would print it.
    fn relative(&self, path: &str) -> String {
        let Some(root) = &self.root else {
            return path.to_owned();
        };
        let path = path.replace('\\', "/");
        if !is_absolute(&path) {
            return path;
        }
        if let Some(rest) = path
            .strip_prefix(root.as_str())
            .and_then(|r| r.strip_prefix('/'))
        {
            return rest.to_owned();
        }
        if path == *root {
            return ".".to_owned();
        }
        let base: Vec<&str> = root.split('/').filter(|p| !p.is_empty()).collect();
        let target: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let common = base.iter().zip(&target).take_while(|(a, b)| a == b).count();
        if common == 0 {
            return path;
        }
        let mut parts: Vec<&str> = vec![".."; base.len() - common];
        parts.extend(&target[common..]);
        parts.join("/")
    }
}

/// The record types this module reads.
const KNOWN: [&str; 6] = [
    "SessionStart",
    "SessionFinish",
    "WarningMessage",
    "CollectReport",
    "TestReport",
    "SubTestReport",
];

fn uncount(counts: &mut Counts, outcome: Outcome) {
    let slot = match outcome {
        Outcome::Passed => &mut counts.passed,
        Outcome::Failed => &mut counts.failed,
        Outcome::Error => &mut counts.errors,
        Outcome::Skipped => &mut counts.skipped,
        Outcome::XFailed => &mut counts.xfailed,
        Outcome::XPassed => &mut counts.xpassed,
        Outcome::SubtestsPassed => &mut counts.subtests_passed,
    };
    *slot = slot.saturating_sub(1);
}

fn is_absolute(path: &str) -> bool {
    path.starts_with('/')
        || path.starts_with('\\')
        || path.get(1..3) == Some(":\\")
        || path.get(1..3) == Some(":/")
}

/// The category, word and message of one test report, by pytest's
/// `pytest_report_teststatus` implementations; `None` for a report pytest does not count
/// (a passing setup or teardown).
fn classify(
    when: When,
    outcome: &str,
    wasxfail: Option<&str>,
    subtest: Option<String>,
    longrepr: Option<&Value>,
    message_override: Option<String>,
    keywords: Keywords,
) -> Option<Counted> {
    let report = |outcome: Outcome, subtest: Option<String>| Counted {
        report: Report {
            when: Some(when),
            outcome,
            message: message_override
                .clone()
                .or_else(|| longrepr.and_then(crash_message_or_text)),
            longrepr: message_override
                .clone()
                .or_else(|| longrepr.map(longrepr_text))
                .filter(|t| !t.is_empty()),
            subtest,
        },
        skip: None,
    };
    let xfail = |outcome: Outcome, subtest: Option<String>| Counted {
        report: Report {
            when: Some(when),
            outcome,
            message: wasxfail.map(str::to_owned),
            longrepr: longrepr.map(longrepr_text).filter(|t| !t.is_empty()),
            subtest,
        },
        skip: None,
    };
    // The subtests plugin decides first, for subtest reports of the call phase.
    if let Some(description) = subtest {
        return Some(match (wasxfail, outcome) {
            (Some(_), "skipped") => xfail(Outcome::XFailed, Some(description)),
            (Some(_), "passed") => xfail(Outcome::XPassed, None),
            (Some(_), _) => report(Outcome::Failed, None),
            (None, "failed") => report(Outcome::Failed, Some(description)),
            (None, "passed") => report(Outcome::SubtestsPassed, Some(description)),
            (None, _) => skipped(when, longrepr, false, Some(description)),
        });
    }
    if wasxfail.is_some() {
        match outcome {
            "skipped" => return Some(xfail(Outcome::XFailed, None)),
            "passed" => return Some(xfail(Outcome::XPassed, None)),
            _ => {}
        }
    }
    match (when, outcome) {
        (When::Setup | When::Teardown, "passed") => None,
        (When::Setup | When::Teardown, "failed") => Some(report(Outcome::Error, None)),
        (_, "failed") => Some(report(Outcome::Failed, None)),
        (_, "passed") => Some(report(Outcome::Passed, None)),
        _ => {
            let by_mark = when == When::Setup && keywords.skip && !keywords.pytestmark;
            Some(skipped(when, longrepr, by_mark, None))
        }
    }
}

/// A skip: its reason as `-v` shows it and its place for folding.
fn skipped(
    when: When,
    longrepr: Option<&Value>,
    by_mark: bool,
    subtest: Option<String>,
) -> Counted {
    let tuple = match longrepr {
        Some(Value::Array(items)) if items.len() == 3 => Some((
            items[0].as_str().unwrap_or_default().to_owned(),
            items[1].as_i64(),
            items[2].as_str().unwrap_or_default().to_owned(),
        )),
        _ => None,
    };
    let (message, skip) = match tuple {
        Some((path, line, reason)) => {
            // pytest's `_get_raw_skip_reason`.
            let shown = if reason == "Skipped" {
                String::new()
            } else {
                reason
                    .strip_prefix("Skipped: ")
                    .unwrap_or(&reason)
                    .to_owned()
            };
            (
                Some(shown),
                Some(RawSkip {
                    path,
                    line,
                    reason,
                    by_mark,
                }),
            )
        }
        None => (longrepr.and_then(crash_message_or_text), None),
    };
    Counted {
        report: Report {
            when: Some(when),
            outcome: Outcome::Skipped,
            message,
            longrepr: None,
            subtest,
        },
        skip,
    }
}

/// The message pytest's short summary puts after ` - ` for a test report: the crash
/// message of a structured longrepr, or all of a plain one.
fn crash_message_or_text(longrepr: &Value) -> Option<String> {
    match longrepr {
        Value::String(s) => Some(s.clone()),
        other => crash_message(other),
    }
}

/// The crash message of a structured longrepr (none for a plain string).
fn crash_message(longrepr: &Value) -> Option<String> {
    let crash = longrepr
        .get("reprcrash")
        .filter(|c| !c.is_null())
        .or_else(|| {
            longrepr
                .get("chain")
                .and_then(Value::as_array)
                .and_then(|chain| chain.last())
                .and_then(|link| link.get(1))
        })?;
    crash
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// A longrepr as text: a plain string as it is; a structured one rebuilt the way pytest's
/// long traceback style lays it out (close, not byte for byte).
fn longrepr_text(longrepr: &Value) -> String {
    match longrepr {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(":"),
        Value::Object(map) => {
            let mut out = String::new();
            match map
                .get("chain")
                .and_then(Value::as_array)
                .filter(|c| !c.is_empty())
            {
                Some(chain) => {
                    for link in chain {
                        if let Some(tb) = link.get(0) {
                            traceback_text(&mut out, tb);
                        }
                        if let Some(description) = link.get(2).and_then(Value::as_str) {
                            out.push('\n');
                            out.push_str(description);
                            out.push_str("\n\n");
                        }
                    }
                }
                None => {
                    if let Some(tb) = map.get("reprtraceback") {
                        traceback_text(&mut out, tb);
                    }
                }
            }
            for section in map
                .get("sections")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let title = section.get(0).and_then(Value::as_str).unwrap_or_default();
                let body = section.get(1).and_then(Value::as_str).unwrap_or_default();
                out.push_str(&format!("--- {title} ---\n{body}\n"));
            }
            while out.ends_with('\n') {
                out.pop();
            }
            out
        }
        other => other.to_string(),
    }
}

fn traceback_text(out: &mut String, tb: &Value) {
    let entries = tb.get("reprentries").and_then(Value::as_array);
    for (i, entry) in entries.into_iter().flatten().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let data = entry.get("data").unwrap_or(entry);
        let args = data
            .get("reprfuncargs")
            .and_then(|a| a.get("args"))
            .and_then(Value::as_array);
        let mut had_args = false;
        for arg in args.into_iter().flatten() {
            let name = arg.get(0).and_then(Value::as_str).unwrap_or_default();
            let value = match arg.get(1) {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            out.push_str(&format!("{name} = {value}\n"));
            had_args = true;
        }
        if had_args {
            out.push('\n');
        }
        for line in data
            .get("lines")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.push_str(line.as_str().unwrap_or_default());
            out.push('\n');
        }
        if let Some(loc) = data.get("reprfileloc").filter(|l| !l.is_null()) {
            let path = loc.get("path").and_then(Value::as_str).unwrap_or_default();
            let line = loc
                .get("lineno")
                .and_then(Value::as_i64)
                .unwrap_or_default();
            let message = loc
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            out.push_str(&format!("\n{path}:{line}: {message}\n"));
        }
    }
    if let Some(extra) = tb.get("extraline").and_then(Value::as_str) {
        out.push_str(extra);
        out.push('\n');
    }
}

fn sections(raw: Option<Vec<(String, String)>>) -> Vec<Section> {
    raw.unwrap_or_default()
        .into_iter()
        .map(|(title, text)| Section { title, text })
        .collect()
}

/// Later reports repeat earlier sections (a teardown report holds setup's and call's):
/// one section per title, the latest text kept.
fn merge_sections(into: &mut Vec<Section>, new: Vec<Section>) {
    for section in new {
        match into.iter_mut().find(|s| s.title == section.title) {
            Some(old) => old.text = section.text,
            None => into.push(section),
        }
    }
}

/// The fields of any record that this module reads; other keys are skipped unread.
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(rename = "$report_type", borrow, default)]
    report_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    nodeid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    when: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    outcome: Option<Cow<'a, str>>,
    #[serde(default)]
    longrepr: Option<Value>,
    #[serde(borrow, default)]
    location: LocationPath<'a>,
    #[serde(default)]
    keywords: Option<Keywords>,
    #[serde(default)]
    sections: Option<Vec<(String, String)>>,
    #[serde(default)]
    user_properties: Option<Vec<(String, Value)>>,
    #[serde(default)]
    duration: Option<f64>,
    #[serde(default)]
    start: Option<f64>,
    #[serde(default)]
    stop: Option<f64>,
    #[serde(borrow, default)]
    wasxfail: Option<Cow<'a, str>>,
    #[serde(rename = "_subtest.context", default)]
    subtest: Option<SubtestContext>,
    #[serde(default)]
    exitstatus: Option<i64>,
    #[serde(borrow, default)]
    pytest_version: Option<Cow<'a, str>>,
}

/// The first item of a report's `location` (the rootdir-relative file), read leniently:
/// anything else there is ignored.
#[derive(Default)]
struct LocationPath<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for LocationPath<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = LocationPath<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a location")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element::<Lenient<'a>>()?.and_then(|l| l.0);
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LocationPath(first))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LocationPath(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(LocationPath(None))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(LocationPath(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(LocationPath(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(LocationPath(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(LocationPath(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(LocationPath(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(LocationPath(None))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A string borrowed from the line when it has no escapes; any other value is `None`.
struct Lenient<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Lenient<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Lenient<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Lenient(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Lenient(Some(Cow::Owned(s.to_owned()))))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Lenient(Some(Cow::Owned(s))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Lenient(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Lenient(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// The two keywords pytest's skip folding looks at, read without keeping the others.
#[derive(Default, Clone, Copy)]
struct Keywords {
    skip: bool,
    pytestmark: bool,
}

impl<'de> Deserialize<'de> for Keywords {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Keywords;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a keywords object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keywords, A::Error> {
                let mut k = Keywords::default();
                while let Some(key) = map.next_key_seed(KeywordKey)? {
                    map.next_value::<IgnoredAny>()?;
                    match key {
                        Some(true) => k.skip = true,
                        Some(false) => k.pytestmark = true,
                        None => {}
                    }
                }
                Ok(k)
            }
        }
        d.deserialize_map(V)
    }
}

/// A keyword name: `Some(true)` for `skip`, `Some(false)` for `pytestmark`, else `None`;
/// no allocation.
struct KeywordKey;

impl<'de> DeserializeSeed<'de> for KeywordKey {
    type Value = Option<bool>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<bool>, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Option<bool>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a keyword name")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Option<bool>, E> {
                Ok(match s {
                    "skip" => Some(true),
                    "pytestmark" => Some(false),
                    _ => None,
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// `_subtest.context`: the `msg` and keyword arguments of `subtests.test(...)`, the
/// arguments in the order they were given.
#[derive(Debug, Default)]
struct SubtestContext {
    msg: Option<String>,
    kwargs: Vec<(String, String)>,
}

impl SubtestContext {
    /// pytest's `_sub_test_description`: `[msg] (k=v, …)`, or `(<subtest>)`.
    fn description(&self) -> String {
        let mut parts = Vec::new();
        if let Some(msg) = &self.msg {
            parts.push(format!("[{msg}]"));
        }
        if !self.kwargs.is_empty() {
            let args: Vec<String> = self
                .kwargs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            parts.push(format!("({})", args.join(", ")));
        }
        if parts.is_empty() {
            "(<subtest>)".to_owned()
        } else {
            parts.join(" ")
        }
    }
}

impl<'de> Deserialize<'de> for SubtestContext {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            msg: Option<Value>,
            #[serde(default)]
            kwargs: Option<Ordered>,
        }
        let raw = Raw::deserialize(d)?;
        Ok(SubtestContext {
            msg: raw.msg.and_then(|m| match m {
                Value::Null => None,
                Value::String(s) => Some(s),
                other => Some(other.to_string()),
            }),
            kwargs: raw.kwargs.map(|o| o.0).unwrap_or_default(),
        })
    }
}

/// A JSON object's entries in document order, values as text.
struct Ordered(Vec<(String, String)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    let value = match value {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    out.push((key, value));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::junit::render::render_text;

    /// A TestReport line as pytest-reportlog writes it, with the fields that matter here.
    fn test_line(nodeid: &str, when: &str, outcome: &str, longrepr: &str, extra: &str) -> String {
        let file = nodeid.split("::").next().unwrap_or_default();
        format!(
            r#"{{"nodeid": "{nodeid}", "location": ["{file}", 3, "x"], "keywords": {{"x": 1}}, "outcome": "{outcome}", "longrepr": {longrepr}, "when": "{when}", "user_properties": [], "sections": [], "duration": 0.5, "start": 10.0, "stop": 11.0{extra}, "$report_type": "TestReport"}}"#
        )
    }

    fn passing(log: &mut ReportLog, nodeid: &str) -> Vec<TestResult> {
        let mut out = Vec::new();
        for when in ["setup", "call", "teardown"] {
            out.extend(
                log.push_line(&test_line(nodeid, when, "passed", "null", ""))
                    .expect("reads"),
            );
        }
        out
    }

    fn finish(log: &ReportLog, ids: &[&str]) -> Mapping {
        let ids: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
        log.finish(Some(&ids), &MapOptions::default())
    }

    #[test]
    fn a_test_is_final_at_its_teardown_and_counted_then() {
        let mut log = ReportLog::new();
        let setup = test_line("t/test_a.py::test_x", "setup", "passed", "null", "");
        assert!(log.push_line(&setup).expect("reads").is_empty());
        let call = test_line("t/test_a.py::test_x", "call", "passed", "null", "");
        assert!(log.push_line(&call).expect("reads").is_empty());
        assert_eq!(log.counts(), Counts::default());
        let teardown = test_line("t/test_a.py::test_x", "teardown", "passed", "null", "");
        let done = log.push_line(&teardown).expect("reads");
        assert_eq!(done.len(), 1);
        assert_eq!(
            crate::junit::render_line(&done[0]),
            "t/test_a.py::test_x PASSED"
        );
        assert_eq!(log.counts().passed, 1);
        assert_eq!(done[0].duration, Some(1.5));
    }

    #[test]
    fn unknown_records_and_keys_are_ignored_bad_lines_are_errors() {
        let mut log = ReportLog::new();
        for line in [
            r#"{"$report_type": "SessionStart", "pytest_version": "9.2.0", "new_key": [1, 2]}"#,
            r#"{"$report_type": "SomethingNew", "nodeid": 42, "when": {"a": 1}}"#,
            r#"{"no_type": true}"#,
            "",
        ] {
            assert_eq!(log.push_line(line), Ok(Vec::new()), "{line}");
        }
        assert_eq!(log.pytest_version(), Some("9.2.0"));
        assert!(matches!(
            log.push_line("garbage"),
            Err(ReportLogError::NotJson { line: 5, .. })
        ));
        assert!(matches!(
            log.push_line(r#"{"$report_type": "TestReport", "nodeid": "t.py::x""#),
            Err(ReportLogError::CutOff { line: 6, .. })
        ));
        assert!(matches!(
            log.push_line(r#"{"$report_type": "TestReport", "outcome": "passed"}"#),
            Err(ReportLogError::BadRecord { line: 7, .. })
        ));
        assert!(matches!(
            log.push_line(r#"{"$report_type": "SessionFinish", "exitstatus": "x"}"#),
            Err(ReportLogError::BadRecord { line: 8, .. })
        ));
        passing(&mut log, "t.py::x");
        let m = finish(&log, &["t.py::x"]);
        assert_eq!(
            m.notes(),
            [
                "3 lines of the report log could not be read and were left out (the first: line 5 of the report log is not a JSON object: expected value at line 1 column 1)"
            ]
        );
    }

    #[test]
    fn bytes_in_chunks_keep_a_cut_line_until_its_end_arrives() {
        let mut text = String::new();
        for when in ["setup", "call", "teardown"] {
            text.push_str(&test_line("t.py::é", when, "passed", "null", ""));
            text.push('\n');
        }
        let bytes = text.as_bytes();
        let mut log = ReportLog::new();
        let mut finals = Vec::new();
        for chunk in bytes.chunks(5) {
            let pushed = log.push_bytes(chunk);
            assert!(pushed.errors.is_empty(), "{:?}", pushed.errors);
            finals.extend(pushed.results);
        }
        assert_eq!(finals.len(), 1);
        assert_eq!(finals[0].nodeid, "t.py::é");

        // A log that stops inside a line: the line is left out and finish says so.
        let mut log = ReportLog::new();
        let cut = &bytes[..bytes.len() - 20];
        assert!(log.push_bytes(cut).errors.is_empty());
        let m = finish(&log, &["t.py::é"]);
        assert!(m.results[0].missing);
        assert!(m.notes()[0].starts_with("the report log ends in a cut-off line"));
        assert!(log.end().errors.len() == 1);
        assert_eq!(m.exit_code(), 1);
    }

    #[test]
    fn session_status_decides_what_outcomes_cannot() {
        for (status, code, note) in [
            (2, 2, Some("interrupted")),
            (3, 3, Some("internal error")),
            (4, 4, Some("usage error")),
            (0, 0, None),
        ] {
            let mut log = ReportLog::new();
            passing(&mut log, "t.py::x");
            log.push_line(&format!(
                r#"{{"exitstatus": {status}, "$report_type": "SessionFinish"}}"#
            ))
            .expect("reads");
            assert_eq!(log.exit_status(), Some(status));
            let m = finish(&log, &["t.py::x"]);
            assert_eq!(m.exit_code(), code, "status {status}");
            let notes = m.notes().join("\n");
            match note {
                Some(n) => assert!(notes.contains(n), "{notes}"),
                None => assert!(notes.is_empty(), "{notes}"),
            }
        }
        // Nothing collected: 5, even if the session said 0.
        let mut log = ReportLog::new();
        log.push_line(r#"{"exitstatus": 5, "$report_type": "SessionFinish"}"#)
            .expect("reads");
        assert_eq!(log.finish(None, &MapOptions::default()).exit_code(), 5);
    }

    #[test]
    fn expected_ids_without_a_result_are_errors_with_the_reason() {
        let mut log = ReportLog::new();
        log.push_line(r#"{"nodeid": "t/test_broken.py", "outcome": "failed", "longrepr": "ImportError: x", "result": null, "$report_type": "CollectReport"}"#).expect("reads");
        passing(&mut log, "t/test_a.py::test_ok");
        log.push_line(&test_line(
            "t/test_a.py::test_cut",
            "setup",
            "passed",
            "null",
            "",
        ))
        .expect("reads");
        passing(&mut log, "t/test_a.py::test_stray");
        let m = finish(
            &log,
            &[
                "t/test_a.py::test_ok",
                "t/test_a.py::test_cut",
                "t/test_a.py::test_gone",
                "t/test_broken.py::test_b",
            ],
        );
        let got: Vec<(&str, &str, Option<&str>, bool)> = m
            .results
            .iter()
            .map(|r| {
                (
                    r.nodeid.as_str(),
                    r.headline().outcome.as_str(),
                    r.headline().message.as_deref(),
                    r.unexpected,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("t/test_broken.py", "error", None, false),
                ("t/test_a.py::test_ok", "passed", None, false),
                (
                    "t/test_a.py::test_cut",
                    "error",
                    Some(
                        "no result: the remote run stopped before this test finished (its last report: setup passed)"
                    ),
                    false
                ),
                (
                    "t/test_a.py::test_gone",
                    "error",
                    Some("no result: the remote run produced no result for it"),
                    false
                ),
                (
                    "t/test_broken.py::test_b",
                    "error",
                    Some("no result: collecting t/test_broken.py failed"),
                    false
                ),
                ("t/test_a.py::test_stray", "passed", None, true),
            ]
        );
        assert!(m.notes()[0].starts_with("1 test in the report log is not among the expected"));
    }

    #[test]
    fn skips_fold_by_place_relative_to_the_remote_root() {
        let mut log = ReportLog::new();
        // A skip mark in setup folds without its line; a runtime skip with it; a skip
        // raised outside the root is shown the way pytest's bestrelpath shows it.
        let mark = test_line(
            "t/test_a.py::test_m",
            "setup",
            "skipped",
            r#"["/srv/run/t/test_a.py", 4, "Skipped: no db"]"#,
            "",
        )
        .replace(r#"{"x": 1}"#, r#"{"x": 1, "skip": 1}"#);
        for line in [
            mark,
            test_line("t/test_a.py::test_m", "teardown", "passed", "null", ""),
            test_line("t/test_a.py::test_r", "setup", "passed", "null", ""),
            test_line(
                "t/test_a.py::test_r",
                "call",
                "skipped",
                r#"["/srv/run/t/test_a.py", 9, "Skipped: later"]"#,
                "",
            ),
            test_line("t/test_a.py::test_r", "teardown", "passed", "null", ""),
            test_line("t/test_a.py::test_o", "setup", "passed", "null", ""),
            test_line(
                "t/test_a.py::test_o",
                "call",
                "skipped",
                r#"["/srv/lib/helpers.py", 2, "Skipped"]"#,
                "",
            ),
            test_line("t/test_a.py::test_o", "teardown", "passed", "null", ""),
        ] {
            log.push_line(&line).expect("reads");
        }
        let text = render_text(&log.finish(None, &MapOptions::default()));
        assert!(
            text.contains("SKIPPED [1] t/test_a.py: no db\nSKIPPED [1] t/test_a.py:9: later\nSKIPPED [1] ../lib/helpers.py:2: Skipped\n"),
            "{text}"
        );
        // `Skipped` alone shows no reason in -v.
        assert!(text.contains("t/test_a.py::test_o SKIPPED\n"), "{text}");
    }

    #[test]
    fn a_re_run_test_is_counted_once_per_final_report() {
        let mut log = ReportLog::new();
        passing(&mut log, "t.py::x");
        passing(&mut log, "t.py::x");
        assert_eq!(log.counts().passed, 2);
        let m = log.finish(None, &MapOptions::default());
        assert_eq!(m.results.len(), 1);
        assert_eq!(m.counts(), log.counts());
    }

    #[test]
    fn subtest_descriptions_follow_pytest() {
        let mut log = ReportLog::new();
        log.push_line(&test_line("t.py::s", "setup", "passed", "null", ""))
            .expect("reads");
        for context in [
            r#"{"msg": "m", "kwargs": {"z": "1", "a": "'x'"}}"#,
            r#"{"msg": null, "kwargs": {}}"#,
        ] {
            let line = test_line(
                "t.py::s",
                "call",
                "passed",
                "null",
                &format!(r#", "_subtest.context": {context}"#),
            )
            .replace("\"TestReport\"", "\"SubTestReport\"");
            log.push_line(&line).expect("reads");
        }
        log.push_line(&test_line("t.py::s", "call", "passed", "null", ""))
            .expect("reads");
        let done = log
            .push_line(&test_line("t.py::s", "teardown", "passed", "null", ""))
            .expect("reads");
        assert_eq!(
            crate::junit::render_line(&done[0]),
            "t.py::s SUBPASSED[m] (z=1, a='x')\nt.py::s SUBPASSED(<subtest>)\nt.py::s PASSED"
        );
        assert_eq!(log.counts().parts(), ["1 passed", "2 subtests passed"]);
    }

    #[test]
    fn sniffing_tells_xml_from_json_lines() {
        assert_eq!(sniff(b"\xEF\xBB\xBF  <?xml"), Format::JunitXml);
        assert_eq!(sniff(b""), Format::JunitXml);
        assert_eq!(sniff(b"\n{\"$report_type\": 1}"), Format::ReportLog);
    }
}
