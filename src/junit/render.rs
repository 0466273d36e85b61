//! Draws a [`Mapping`] the way `pytest -v -ra` draws a run, or as JSON lines.
//!
//! Text: one `-v` line per report, the ERRORS and FAILURES sections with pytest's headlines
//! and the captured output as `Captured stdout (remote)`, the short test summary info in
//! `-ra` order (skipped, xfailed, xpassed, errors, failed), `note:` lines for what junit
//! could not say, and the closing line (`= 1 failed, 4 passed in 2m18s (remote) =`).
//! Lines are 80 columns wide, as pytest draws them without a terminal.
//!
//! JSON: one object per result per line ([`render_json`] documents the fields).

use std::collections::HashMap;

use serde::Serialize;

use super::map::{Kind, Mapping, Outcome, Report, TestResult, When};

const WIDTH: usize = 80;

/// pytest's `write_sep`: `title` centred in `sep` characters, 80 columns.
fn sep(out: &mut String, sep: char, title: &str) {
    let n = (WIDTH.saturating_sub(title.chars().count() + 2) / 2).max(1);
    let fill: String = std::iter::repeat_n(sep, n).collect();
    let mut line = format!("{fill} {title} {fill}");
    if line.chars().count() < WIDTH {
        line.push(sep);
    }
    out.push_str(&line);
    out.push('\n');
}

/// The location pytest prints in section headlines: the names after the file, joined by
/// `.`, with the parameter id left alone (`TestA.test_b[x::y]`).
fn domain(nodeid: &str) -> String {
    match nodeid.split_once("::") {
        None => nodeid.to_owned(),
        Some((_, tail)) => match tail.split_once('[') {
            Some((names, params)) => format!("{}[{params}", names.replace("::", ".")),
            None => tail.replace("::", "."),
        },
    }
}

/// `1.23s` under a minute (pytest's format), `2m18s` / `1h02m03s` above.
pub(crate) fn format_duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".to_owned();
    }
    if seconds < 60.0 {
        return format!("{seconds:.2}s");
    }
    let total = seconds.round() as u64;
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else {
        format!("{m}m{s:02}s")
    }
}

/// The word pytest prints for a report in `-v` lines and the short summary: `FAILED`,
/// `XFAIL`, or a subtest's `SUBFAILED[msg] (i=1)`.
fn word(report: &Report) -> String {
    match &report.subtest {
        Some(description) => format!("{}{description}", report.outcome.subtest_word()),
        None => report.outcome.word().to_owned(),
    }
}

/// The `-v` word with its parenthesised reason, as pytest shows it (untrimmed, as with
/// `-vv`).
fn verbose_word(result: &TestResult, report: &Report) -> String {
    let word = word(report);
    if result.missing {
        return format!("{word} (no result)");
    }
    let reason = match report.outcome {
        Outcome::Skipped => report.message.as_deref(),
        Outcome::XFailed | Outcome::XPassed => report
            .message
            .as_deref()
            .map(|m| m.strip_prefix("reason: ").unwrap_or(m)),
        _ => None,
    };
    match reason {
        Some(reason) if !reason.is_empty() => format!("{word} ({reason})"),
        _ => word,
    }
}

/// One result's `-v` lines, as pytest prints them (one per counted report, without the
/// progress column), joined by `\n` with no newline at the end. A collection error or
/// skip has no `-v` line in pytest; here it reads `ERROR collecting tests/t.py` or
/// `SKIPPED collecting tests/t.py (reason)`.
pub fn render_line(result: &TestResult) -> String {
    let mut lines = Vec::with_capacity(result.reports.len());
    for report in &result.reports {
        lines.push(match result.kind {
            Kind::Test => format!("{} {}", result.nodeid, verbose_word(result, report)),
            Kind::Collection => {
                let reason = match report.outcome {
                    Outcome::Skipped => report
                        .message
                        .as_deref()
                        .filter(|m| !m.is_empty())
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default(),
                    _ => String::new(),
                };
                format!("{} collecting {}{reason}", word(report), result.nodeid)
            }
            Kind::Internal => format!(
                "INTERNALERROR> {}",
                report.message.as_deref().unwrap_or("internal error")
            ),
        });
    }
    lines.join("\n")
}

/// The body pytest prints for a failure or error, then its captured output.
fn body(out: &mut String, result: &TestResult, report: &Report) {
    let text = report
        .longrepr
        .as_deref()
        .or(report.message.as_deref())
        .unwrap_or("");
    if !text.is_empty() {
        out.push_str(text.strip_suffix('\n').unwrap_or(text));
        out.push('\n');
    }
    for section in &result.sections {
        sep(out, '-', &section.title);
        out.push_str(section.text.strip_suffix('\n').unwrap_or(&section.text));
        out.push('\n');
    }
}

/// A skip's `path:line: reason`, with the executing machine's absolute path cut back to
/// the node id's path when it ends with it (pytest prints paths relative to the rootdir).
fn skip_location(result: &TestResult, report: &Report) -> String {
    let reason = report.message.as_deref().unwrap_or("");
    let Some(text) = report.longrepr.as_deref() else {
        return format!("{}: {reason}", result.nodeid);
    };
    let path = result.nodeid.split("::").next().unwrap_or("");
    if text.starts_with('/') || text.get(1..3) == Some(":\\") {
        let needle = format!("/{path}:");
        if let Some(pos) = text.find(&needle) {
            return text[pos + 1..].to_owned();
        }
    }
    text.to_owned()
}

/// pytest-style text for the whole run, ending with the closing line and a newline.
pub fn render_text(mapping: &Mapping) -> String {
    let mut out = String::new();
    let results = &mapping.results;

    // -v lines (collection errors have none in pytest either).
    for result in results.iter().filter(|r| r.kind == Kind::Test) {
        out.push_str(&render_line(result));
        out.push('\n');
    }
    for result in results.iter().filter(|r| r.kind == Kind::Internal) {
        for report in &result.reports {
            let text = report.longrepr.as_deref().unwrap_or("internal error");
            for line in text.lines() {
                out.push_str(&format!("INTERNALERROR> {line}\n"));
            }
        }
    }
    if !out.is_empty() {
        out.push('\n');
    }

    let errors: Vec<(&TestResult, &Report)> = results
        .iter()
        .filter(|r| r.kind != Kind::Internal)
        .flat_map(|r| r.reports.iter().map(move |rep| (r, rep)))
        .filter(|(_, rep)| rep.outcome == Outcome::Error)
        .collect();
    if !errors.is_empty() {
        sep(&mut out, '=', "ERRORS");
        for (result, report) in &errors {
            let headline = match (result.missing, report.when) {
                (true, _) => format!("ERROR (no result) for {}", domain(&result.nodeid)),
                (false, Some(When::Collect)) => format!("ERROR collecting {}", result.nodeid),
                (false, Some(when)) => {
                    format!("ERROR at {} of {}", when.as_str(), domain(&result.nodeid))
                }
                (false, None) => format!("ERROR of {}", domain(&result.nodeid)),
            };
            sep(&mut out, '_', &headline);
            body(&mut out, result, report);
        }
    }

    let failures: Vec<(&TestResult, &Report)> = results
        .iter()
        .flat_map(|r| r.reports.iter().map(move |rep| (r, rep)))
        .filter(|(_, rep)| rep.outcome == Outcome::Failed)
        .collect();
    if !failures.is_empty() {
        sep(&mut out, '=', "FAILURES");
        for (result, report) in &failures {
            let mut headline = domain(&result.nodeid);
            if let Some(description) = &report.subtest {
                headline.push(' ');
                headline.push_str(description);
            }
            sep(&mut out, '_', &headline);
            body(&mut out, result, report);
        }
    }

    let summary = short_summary(mapping);
    if !summary.is_empty() {
        sep(&mut out, '=', "short test summary info");
        for line in summary {
            out.push_str(&line);
            out.push('\n');
        }
    }
    if mapping.interrupted_by_collection() {
        let n = results
            .iter()
            .filter(|r| r.kind == Kind::Collection)
            .flat_map(|r| &r.reports)
            .filter(|r| r.outcome == Outcome::Error)
            .count();
        let s = if n == 1 { "" } else { "s" };
        sep(
            &mut out,
            '!',
            &format!("Interrupted: {n} error{s} during collection"),
        );
    }
    for note in mapping.notes() {
        out.push_str(&format!("note: {note}\n"));
    }
    sep(&mut out, '=', &closing_title(mapping));
    out
}

/// `4 failed, 9 passed, 5 errors in 0.10s (remote)`, or `no tests ran …`.
fn closing_title(mapping: &Mapping) -> String {
    let parts = mapping.counts().parts();
    let mut title = if parts.is_empty() {
        "no tests ran".to_owned()
    } else {
        parts.join(", ")
    };
    if let Some(seconds) = mapping.duration {
        title.push_str(&format!(" in {}", format_duration(seconds)));
    }
    title.push_str(" (remote)");
    title
}

/// The `-ra` short summary: skipped (folded), xfailed, xpassed, errors, failed, each in
/// the order the reports came (pytest's `sxXEf`).
fn short_summary(mapping: &Mapping) -> Vec<String> {
    let reports: Vec<(&TestResult, &Report)> = mapping
        .results
        .iter()
        .filter(|r| r.kind != Kind::Internal)
        .flat_map(|r| r.reports.iter().map(move |rep| (r, rep)))
        .collect();
    let mut lines = Vec::new();

    // Skips fold by place and reason; pytest labels every folded line with the word of
    // the first skip (`SKIPPED`, or a subtest's `SUBSKIPPED[…]`).
    let mut folded: Vec<(String, usize)> = Vec::new();
    let mut slot: HashMap<String, usize> = HashMap::new();
    let mut label = None;
    for (result, report) in reports
        .iter()
        .filter(|(_, r)| r.outcome == Outcome::Skipped)
    {
        label.get_or_insert_with(|| word(report));
        let location = skip_location(result, report);
        match slot.get(&location) {
            Some(&i) => folded[i].1 += 1,
            None => {
                slot.insert(location.clone(), folded.len());
                folded.push((location, 1));
            }
        }
    }
    for (location, n) in folded {
        let label = label.as_deref().unwrap_or("SKIPPED");
        lines.push(format!("{label} [{n}] {location}"));
    }
    for outcome in [Outcome::XFailed, Outcome::XPassed] {
        for (result, report) in reports.iter().filter(|(_, r)| r.outcome == outcome) {
            let mut line = match report.when {
                Some(when @ (When::Setup | When::Teardown)) => {
                    format!("{} at {} of {}", word(report), when.as_str(), result.nodeid)
                }
                _ => format!("{} {}", word(report), result.nodeid),
            };
            if let Some(reason) = report.message.as_deref().filter(|m| !m.is_empty()) {
                line.push_str(&format!(" - {reason}"));
            }
            lines.push(line);
        }
    }
    for outcome in [Outcome::Error, Outcome::Failed] {
        for (result, report) in reports.iter().filter(|(_, r)| r.outcome == outcome) {
            let mut line = format!("{} {}", word(report), result.nodeid);
            if let Some(message) = report.message.as_deref() {
                line.push_str(&format!(" - {message}"));
            }
            lines.push(line);
        }
    }
    lines
}

#[derive(Serialize)]
struct JsonReport<'a> {
    when: Option<&'static str>,
    outcome: &'static str,
    message: Option<&'a str>,
    longrepr: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subtest: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonRecord<'a> {
    nodeid: &'a str,
    outcome: &'static str,
    when: Option<&'static str>,
    message: Option<&'a str>,
    longrepr: Option<&'a str>,
    sections: Vec<(&'a str, &'a str)>,
    duration: Option<f64>,
    kind: &'static str,
    reports: Vec<JsonReport<'a>>,
    properties: &'a [(String, String)],
    nodeid_source: &'static str,
    unexpected: bool,
}

fn json_report(report: &Report) -> JsonReport<'_> {
    JsonReport {
        when: report.when.map(When::as_str),
        outcome: report.outcome.as_str(),
        message: report.message.as_deref(),
        longrepr: report.longrepr.as_deref(),
        subtest: report.subtest.as_deref(),
    }
}

/// JSON lines: one object per result, in [`Mapping::results`] order, each line ending in
/// `\n`. Fields: `nodeid`; `outcome`, `when`, `message`, `longrepr` of the headline report
/// ([`TestResult::headline`]; `when` is `null` where junit cannot tell); `sections` as
/// `[title, text]` pairs; `duration` in seconds or `null`; `kind` (`test`, `collection`,
/// `internal`); `reports`, every counted report (a call failure and its teardown error are
/// both here); `properties` as `[name, value]` pairs; `nodeid_source` (`expected`, `file`,
/// `sibling-file`, `guessed`, `reported`); `unexpected` (a result no expected id asked
/// for). A report of a pytest 9 subtest also has `subtest`, its description (`[msg] (i=1)`).
pub fn render_json(mapping: &Mapping) -> String {
    let mut out = String::new();
    for result in &mapping.results {
        let head = result.headline();
        let record = JsonRecord {
            nodeid: &result.nodeid,
            outcome: head.outcome.as_str(),
            when: head.when.map(When::as_str),
            message: head.message.as_deref(),
            longrepr: head.longrepr.as_deref(),
            sections: result
                .sections
                .iter()
                .map(|s| (s.title.as_str(), s.text.as_str()))
                .collect(),
            duration: result.duration,
            kind: result.kind.as_str(),
            reports: result.reports.iter().map(json_report).collect(),
            properties: &result.properties,
            nodeid_source: result.id_source.as_str(),
            unexpected: result.unexpected,
        };
        // Serializing plain strings, numbers and options cannot fail.
        if let Ok(line) = serde_json::to_string(&record) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_match_pytest_at_80_columns() {
        let mut out = String::new();
        sep(&mut out, '=', "ERRORS");
        assert_eq!(
            out,
            "==================================== ERRORS ====================================\n"
        );
        out.clear();
        sep(&mut out, '_', "ERROR at setup of TestClassFixture.test_one");
        assert_eq!(
            out,
            "_________________ ERROR at setup of TestClassFixture.test_one __________________\n"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(0.094), "0.09s");
        assert_eq!(format_duration(138.2), "2m18s");
        assert_eq!(format_duration(3723.0), "1h02m03s");
    }

    #[test]
    fn domains_keep_parameter_ids_whole() {
        assert_eq!(
            domain("t/test_a.py::TestA::TestB::test_c[a::b.c]"),
            "TestA.TestB.test_c[a::b.c]"
        );
        assert_eq!(domain("t/test_a.py::test_c"), "test_c");
        assert_eq!(domain("t/test_a.py"), "t/test_a.py");
    }
}
