//! Report-log records (pytest-reportlog 1.0 JSON lines) → the same [`Mapping`] the junit path
//! gives, read incrementally so live lines and counts can be shown while the job runs.
//!
//! An adapter with the interface of the report-log mapper the `junit` module is getting
//! (`ReportLog::{new, push_line, counts, exit_status, finish}` and `render_line`); until that
//! lands, this small version covers what `run` needs: pytest's categories per phase
//! (an ERROR in setup or teardown, XFAIL/XPASS from `wasxfail`, skips with their reason),
//! failed or skipped collection reports, and missing ids as errors. Pure: no I/O.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use crate::junit::{
    Counts, Family, IdSource, Kind, MapOptions, Mapping, Outcome, Report, Section, TestResult, When,
};

#[derive(Debug, thiserror::Error)]
#[error("line {line} of the report log is not a JSON record: {message}")]
pub struct ReportLogError {
    pub line: usize,
    pub message: String,
}

#[derive(Deserialize)]
struct Record {
    #[serde(rename = "$report_type", default)]
    report_type: String,
    #[serde(default)]
    nodeid: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    when: Option<String>,
    #[serde(default)]
    longrepr: Value,
    #[serde(default)]
    wasxfail: Option<String>,
    #[serde(default)]
    sections: Vec<(String, String)>,
    #[serde(default)]
    duration: Option<f64>,
    #[serde(default)]
    start: Option<f64>,
    #[serde(default)]
    stop: Option<f64>,
    #[serde(default)]
    exitstatus: Option<i32>,
}

/// Results so far, in the order their ids first appeared.
#[derive(Debug, Default)]
pub struct ReportLog {
    results: Vec<TestResult>,
    index: HashMap<String, usize>,
    /// Results whose teardown report was seen.
    finished: std::collections::HashSet<usize>,
    lines: usize,
    exit: Option<i32>,
    first_start: Option<f64>,
    last_stop: Option<f64>,
}

impl ReportLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one line; returns the results that became final with it (teardown seen).
    pub fn push_line(&mut self, line: &str) -> Result<Vec<TestResult>, ReportLogError> {
        self.lines += 1;
        if line.trim().is_empty() {
            return Ok(Vec::new());
        }
        let rec: Record = serde_json::from_str(line).map_err(|e| ReportLogError {
            line: self.lines,
            message: e.to_string(),
        })?;
        match rec.report_type.as_str() {
            "SessionFinish" => self.exit = rec.exitstatus,
            "TestReport" => return Ok(self.test_report(rec)),
            "CollectReport" if rec.outcome != "passed" => self.collect_report(rec),
            _ => {}
        }
        Ok(Vec::new())
    }

    fn slot(&mut self, nodeid: &str, kind: Kind) -> usize {
        if let Some(&i) = self.index.get(nodeid) {
            return i;
        }
        self.results.push(TestResult {
            nodeid: nodeid.to_string(),
            kind,
            id_source: IdSource::Expected,
            unexpected: false,
            missing: false,
            reports: Vec::new(),
            sections: Vec::new(),
            properties: Vec::new(),
            duration: None,
            rows: 0,
        });
        self.index
            .insert(nodeid.to_string(), self.results.len() - 1);
        self.results.len() - 1
    }

    fn test_report(&mut self, rec: Record) -> Vec<TestResult> {
        if let Some(start) = rec.start {
            self.first_start = Some(self.first_start.map_or(start, |s| s.min(start)));
        }
        if let Some(stop) = rec.stop {
            self.last_stop = Some(self.last_stop.map_or(stop, |s| s.max(stop)));
        }
        let when = match rec.when.as_deref() {
            Some("setup") => When::Setup,
            Some("teardown") => When::Teardown,
            _ => When::Call,
        };
        let report = counted(&rec, when);
        let i = self.slot(&rec.nodeid, Kind::Test);
        let result = &mut self.results[i];
        result.rows += 1;
        if let Some(d) = rec.duration {
            result.duration = Some(result.duration.unwrap_or(0.0) + d);
        }
        for (title, text) in rec.sections {
            if !result
                .sections
                .iter()
                .any(|s| s.title == title && s.text == text)
            {
                result.sections.push(Section { title, text });
            }
        }
        if let Some(r) = report {
            result.reports.push(r);
        }
        if when != When::Teardown {
            return Vec::new();
        }
        if result.reports.is_empty() {
            // Every phase passed without a call report (not something pytest does).
            result.reports.push(Report {
                when: Some(When::Call),
                outcome: Outcome::Passed,
                message: None,
                longrepr: None,
            });
        }
        self.finished.insert(i);
        vec![self.results[i].clone()]
    }

    fn collect_report(&mut self, rec: Record) {
        let (outcome, message, longrepr) = if rec.outcome == "skipped" {
            let (reason, text) = skip_reason(&rec.longrepr);
            (Outcome::Skipped, Some(reason), Some(text))
        } else {
            let text = longrepr_text(&rec.longrepr);
            (
                Outcome::Error,
                Some(crash_message(&rec.longrepr, &text)),
                Some(text),
            )
        };
        let i = self.slot(&rec.nodeid, Kind::Collection);
        let result = &mut self.results[i];
        result.rows += 1;
        result.reports.push(Report {
            when: Some(When::Collect),
            outcome,
            message,
            longrepr,
        });
    }

    /// Counts so far, as pytest's closing line counts them.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for r in self.results.iter().flat_map(|r| &r.reports) {
            match r.outcome {
                Outcome::Passed => c.passed += 1,
                Outcome::Failed => c.failed += 1,
                Outcome::Error => c.errors += 1,
                Outcome::Skipped => c.skipped += 1,
                Outcome::XFailed => c.xfailed += 1,
                Outcome::XPassed => c.xpassed += 1,
            }
        }
        c
    }

    /// `SessionFinish`'s exit status, once seen.
    pub fn exit_status(&self) -> Option<i32> {
        self.exit
    }

    /// All results mapped onto `expected` (each id gets its result, or an ERROR "no
    /// result"); results for other ids follow, flagged unexpected.
    pub fn finish(&self, expected: Option<&[String]>, _options: &MapOptions) -> Mapping {
        let mut results: Vec<TestResult> = self
            .results
            .iter()
            .filter(|r| r.kind == Kind::Collection)
            .cloned()
            .collect();
        let tests = self.results.iter().filter(|r| r.kind == Kind::Test);
        match expected {
            Some(ids) => {
                let wanted: std::collections::HashSet<&str> =
                    ids.iter().map(String::as_str).collect();
                for id in ids {
                    match self.index.get(id.as_str()) {
                        Some(&i) if self.results[i].kind == Kind::Test => {
                            let mut r = self.results[i].clone();
                            if !self.finished.contains(&i) {
                                r.reports.push(interrupted());
                            }
                            results.push(r);
                        }
                        _ => results.push(missing(id)),
                    }
                }
                for r in tests.filter(|r| !wanted.contains(r.nodeid.as_str())) {
                    let mut r = r.clone();
                    r.unexpected = true;
                    results.push(r);
                }
            }
            None => results.extend(tests.cloned()),
        }
        Mapping {
            results,
            family: Family::Xunit1,
            duration: match (self.first_start, self.last_stop) {
                (Some(a), Some(b)) if b >= a => Some(b - a),
                _ => None,
            },
            expected_given: expected.is_some(),
            has_captured_output: true,
        }
    }
}

fn interrupted() -> Report {
    Report {
        when: None,
        outcome: Outcome::Error,
        message: Some("no result: the run stopped while this test was running".into()),
        longrepr: None,
    }
}

fn missing(id: &str) -> TestResult {
    TestResult {
        nodeid: id.to_string(),
        kind: Kind::Test,
        id_source: IdSource::Expected,
        unexpected: false,
        missing: true,
        reports: vec![Report {
            when: None,
            outcome: Outcome::Error,
            message: Some("no result in the report log".into()),
            longrepr: None,
        }],
        sections: Vec::new(),
        properties: Vec::new(),
        duration: None,
        rows: 0,
    }
}

/// The report pytest's terminal counts for one TestReport, if it counts one.
fn counted(rec: &Record, when: When) -> Option<Report> {
    let outcome = match (rec.outcome.as_str(), when) {
        ("passed", When::Call) if rec.wasxfail.is_some() => Outcome::XPassed,
        ("passed", When::Call) => Outcome::Passed,
        ("passed", _) => return None,
        ("failed", When::Call) => Outcome::Failed,
        ("failed", _) => Outcome::Error,
        ("skipped", _) if rec.wasxfail.is_some() => Outcome::XFailed,
        ("skipped", _) => Outcome::Skipped,
        _ => return None,
    };
    let (message, longrepr) = match outcome {
        Outcome::XPassed | Outcome::XFailed => {
            (rec.wasxfail.clone().filter(|s| !s.is_empty()), None)
        }
        Outcome::Skipped => {
            let (reason, text) = skip_reason(&rec.longrepr);
            (Some(reason), Some(text))
        }
        Outcome::Failed | Outcome::Error => {
            let text = longrepr_text(&rec.longrepr);
            (Some(crash_message(&rec.longrepr, &text)), Some(text))
        }
        Outcome::Passed => (None, None),
    };
    Some(Report {
        when: Some(when),
        outcome,
        message,
        longrepr,
    })
}

/// A skip's `[path, line, "Skipped: reason"]` → (`reason`, `path:line: reason`).
fn skip_reason(longrepr: &Value) -> (String, String) {
    match longrepr {
        Value::Array(parts) if parts.len() == 3 => {
            let path = parts[0].as_str().unwrap_or("");
            let line = parts[1].as_i64().unwrap_or(0);
            let raw = parts[2].as_str().unwrap_or("");
            let reason = raw.strip_prefix("Skipped: ").unwrap_or(raw).to_string();
            (reason.clone(), format!("{path}:{line}: {reason}"))
        }
        Value::String(s) => (s.clone(), s.clone()),
        _ => (String::new(), String::new()),
    }
}

/// `reprcrash.message`, else the last line of the text.
fn crash_message(longrepr: &Value, text: &str) -> String {
    longrepr
        .pointer("/reprcrash/message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| text.lines().last().unwrap_or("").to_string())
}

/// A readable text of a serialized longrepr (a string, or pytest's structured traceback).
fn longrepr_text(longrepr: &Value) -> String {
    match longrepr {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Object(_) => {
            let mut out = Vec::new();
            let mut entries = Vec::new();
            if let Some(chain) = longrepr.get("chain").and_then(Value::as_array) {
                for link in chain {
                    if let Some(e) = link.pointer("/0/reprentries").and_then(Value::as_array) {
                        entries.extend(e.iter());
                    }
                }
            } else if let Some(e) = longrepr
                .pointer("/reprtraceback/reprentries")
                .and_then(Value::as_array)
            {
                entries.extend(e.iter());
            }
            for entry in entries {
                let data = entry.get("data").unwrap_or(entry);
                if let Some(lines) = data.get("lines").and_then(Value::as_array) {
                    out.extend(lines.iter().filter_map(Value::as_str).map(str::to_string));
                }
                if let Some(loc) = data.get("reprfileloc") {
                    out.push(String::new());
                    out.push(format!(
                        "{}:{}: {}",
                        loc.get("path").and_then(Value::as_str).unwrap_or(""),
                        loc.get("lineno").and_then(Value::as_i64).unwrap_or(0),
                        loc.get("message").and_then(Value::as_str).unwrap_or("")
                    ));
                }
            }
            if out.is_empty() {
                crash_message(longrepr, "")
            } else {
                out.join("\n")
            }
        }
        other => other.to_string(),
    }
}

/// One `-v` line per counted report, as pytest prints it: `nodeid PASSED`, `nodeid XFAIL (reason)`.
pub fn render_line(result: &TestResult) -> String {
    result
        .reports
        .iter()
        .map(|r| {
            let word = r.outcome.word();
            match (r.outcome, r.message.as_deref()) {
                (Outcome::Skipped | Outcome::XFailed | Outcome::XPassed, Some(m))
                    if !m.is_empty() =>
                {
                    format!("{} {word} ({m})", result.nodeid)
                }
                _ => format!("{} {word}", result.nodeid),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(nodeid: &str, when: &str, outcome: &str, extra: &str) -> String {
        format!(
            r#"{{"$report_type":"TestReport","nodeid":"{nodeid}","when":"{when}","outcome":"{outcome}"{extra}}}"#
        )
    }

    #[test]
    fn phases_become_pytest_categories() {
        let mut log = ReportLog::new();
        let mut done = Vec::new();
        for line in [
            rec("t.py::ok", "setup", "passed", ""),
            rec("t.py::ok", "call", "passed", ""),
            rec("t.py::ok", "teardown", "passed", ""),
            rec(
                "t.py::bad_setup",
                "setup",
                "failed",
                r#","longrepr":"boom""#,
            ),
            rec("t.py::bad_setup", "teardown", "passed", ""),
            rec("t.py::xf", "setup", "passed", ""),
            rec("t.py::xf", "call", "skipped", r#","wasxfail":"known""#),
            rec("t.py::xf", "teardown", "passed", ""),
            rec(
                "t.py::sk",
                "setup",
                "skipped",
                r#","longrepr":["/abs/t.py",3,"Skipped: nope"]"#,
            ),
            rec("t.py::sk", "teardown", "passed", ""),
            rec("t.py::half", "setup", "passed", ""),
        ] {
            done.extend(log.push_line(&line).unwrap());
        }
        let lines: Vec<String> = done.iter().map(render_line).collect();
        assert_eq!(
            lines,
            [
                "t.py::ok PASSED",
                "t.py::bad_setup ERROR",
                "t.py::xf XFAIL (known)",
                "t.py::sk SKIPPED (nope)"
            ]
        );
        let c = log.counts();
        assert_eq!((c.passed, c.errors, c.xfailed, c.skipped), (1, 1, 1, 1));
        let ids: Vec<String> = ["t.py::ok", "t.py::half", "t.py::never"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let m = log.finish(Some(&ids), &MapOptions::default());
        let words: Vec<_> = m
            .results
            .iter()
            .map(|r| {
                (
                    r.nodeid.as_str(),
                    r.headline().outcome,
                    r.missing,
                    r.unexpected,
                )
            })
            .collect();
        assert_eq!(words[0], ("t.py::ok", Outcome::Passed, false, false));
        assert_eq!(words[1], ("t.py::half", Outcome::Error, false, false));
        assert_eq!(words[2], ("t.py::never", Outcome::Error, true, false));
        assert!(words[3..].iter().all(|w| w.3), "{words:?}");
        assert_eq!(m.exit_code(), 1);
    }

    #[test]
    fn bad_lines_name_their_number() {
        let mut log = ReportLog::new();
        log.push_line(r#"{"$report_type":"SessionStart"}"#).unwrap();
        let e = log.push_line("{not json").unwrap_err();
        assert_eq!(e.line, 2);
        log.push_line(r#"{"$report_type":"SessionFinish","exitstatus":1}"#)
            .unwrap();
        assert_eq!(log.exit_status(), Some(1));
    }
}
