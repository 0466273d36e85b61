//! Maps junit rows onto pytest results: one [`TestResult`] per node id, each holding the
//! [`Report`]s pytest's terminal would have counted (`passed`, `failed`, `error`, …).
//!
//! With expected node ids, every id gets a result: its rows, or an ERROR "no result" when
//! there are none (never a pass or a skip). Rows no id asked for become results too, flagged
//! `unexpected`, with ids rebuilt from the XML. Without expected ids, every row is rebuilt
//! that way ([`super::nodeid::reconstruct`]).

use std::collections::HashMap;

use super::nodeid::{self, IdSource, KnownModules};
use super::parse::{ChildKind, Document, Family, Row};

/// A pytest outcome category, as pytest's terminal counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Passed,
    Failed,
    /// A failure outside the test call: setup, teardown, collection, or no result at all.
    Error,
    Skipped,
    XFailed,
    XPassed,
}

impl Outcome {
    /// pytest's category name (`"xfailed"`, `"error"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Error => "error",
            Outcome::Skipped => "skipped",
            Outcome::XFailed => "xfailed",
            Outcome::XPassed => "xpassed",
        }
    }

    /// pytest's `-v` word (`PASSED`, `XFAIL`, …).
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Passed => "PASSED",
            Outcome::Failed => "FAILED",
            Outcome::Error => "ERROR",
            Outcome::Skipped => "SKIPPED",
            Outcome::XFailed => "XFAIL",
            Outcome::XPassed => "XPASS",
        }
    }
}

/// The test phase a report belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum When {
    Collect,
    Setup,
    Call,
    Teardown,
}

impl When {
    pub fn as_str(self) -> &'static str {
        match self {
            When::Collect => "collect",
            When::Setup => "setup",
            When::Call => "call",
            When::Teardown => "teardown",
        }
    }
}

/// What a result stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A test item.
    Test,
    /// A module or directory that failed (or was skipped) during collection.
    Collection,
    /// pytest's own `INTERNALERROR`.
    Internal,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Test => "test",
            Kind::Collection => "collection",
            Kind::Internal => "internal",
        }
    }
}

/// One counted outcome of a test, like one pytest `TestReport` that the terminal counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// `None` when junit does not say (skips and xfails: setup or call).
    pub when: Option<When>,
    pub outcome: Outcome,
    /// The crash message (failures, errors) or reason (skips, xfails).
    pub message: Option<String>,
    /// pytest's full failure text, or `path:line: reason` for a skip.
    pub longrepr: Option<String>,
}

/// Captured output, titled as pytest titles its report sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub title: String,
    pub text: String,
}

/// One test (or collection error) and everything junit said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    pub nodeid: String,
    pub kind: Kind,
    pub id_source: IdSource,
    /// Expected ids were given and none of them matched this row.
    pub unexpected: bool,
    /// An expected id with no row: its only report is an ERROR.
    pub missing: bool,
    /// In phase order; never empty.
    pub reports: Vec<Report>,
    pub sections: Vec<Section>,
    pub properties: Vec<(String, String)>,
    /// Seconds, summed over the merged rows (pytest's default: setup + call + teardown).
    pub duration: Option<f64>,
    /// How many `<testcase>` rows were merged into this result.
    pub rows: usize,
}

impl TestResult {
    /// The report that sums the test up: the first failure, else the first error, else the
    /// first report that did not pass, else the pass.
    pub fn headline(&self) -> &Report {
        let find = |pred: &dyn Fn(&Report) -> bool| self.reports.iter().find(|r| pred(r));
        find(&|r| r.outcome == Outcome::Failed)
            .or_else(|| find(&|r| r.outcome == Outcome::Error))
            .or_else(|| find(&|r| r.outcome != Outcome::Passed))
            .or_else(|| self.reports.first())
            .unwrap_or(&PASSED)
    }
}

static PASSED: Report = Report {
    when: Some(When::Call),
    outcome: Outcome::Passed,
    message: None,
    longrepr: None,
};

/// Options for [`map_with`].
#[derive(Debug, Clone, Default)]
pub struct MapOptions {
    /// The `--junitprefix` pytest ran with, if any.
    pub junit_prefix: Option<String>,
}

/// All results of one junit file.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// Collection errors first, then the expected ids in their order (or the rows in document
    /// order), then unexpected rows, then internal errors.
    pub results: Vec<TestResult>,
    pub family: Family,
    /// Session duration in seconds, when the XML has one.
    pub duration: Option<f64>,
    /// Whether expected node ids were given.
    pub expected_given: bool,
    /// Whether any row carried `<system-out>` or `<system-err>`.
    pub has_captured_output: bool,
}

/// How many reports fall in each of pytest's categories.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub failed: usize,
    pub passed: usize,
    pub skipped: usize,
    pub xfailed: usize,
    pub xpassed: usize,
    pub errors: usize,
}

impl Counts {
    /// The closing line's parts in pytest's order and spelling: `3 failed, 1 error`.
    pub fn parts(&self) -> Vec<String> {
        let mut parts = Vec::new();
        for (n, word) in [
            (self.failed, "failed"),
            (self.passed, "passed"),
            (self.skipped, "skipped"),
            (self.xfailed, "xfailed"),
            (self.xpassed, "xpassed"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {word}"));
            }
        }
        if self.errors > 0 {
            let noun = if self.errors == 1 { "error" } else { "errors" };
            parts.push(format!("{} {noun}", self.errors));
        }
        parts
    }
}

impl Mapping {
    /// Reports counted the way pytest's closing line counts them.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for report in self.results.iter().flat_map(|r| &r.reports) {
            match report.outcome {
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

    /// pytest's exit status: 3 after an internal error, 1 if anything failed or errored,
    /// 5 if there is no result at all, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.results.iter().any(|r| r.kind == Kind::Internal) {
            return 3;
        }
        let c = self.counts();
        if c.failed > 0 || c.errors > 0 {
            1
        } else if self.results.is_empty() {
            5
        } else {
            0
        }
    }

    /// Sentences about what this XML could not say (no `note:` prefix, no newline).
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let unexpected: Vec<&str> = self
            .results
            .iter()
            .filter(|r| r.unexpected)
            .map(|r| r.nodeid.as_str())
            .collect();
        if !unexpected.is_empty() {
            notes.push(format!(
                "{} junit {} matched no expected node id; shown with ids rebuilt from the XML: {}",
                unexpected.len(),
                if unexpected.len() == 1 { "row" } else { "rows" },
                list(&unexpected)
            ));
        }
        let guessed = self
            .results
            .iter()
            .filter(|r| r.id_source == IdSource::Guessed)
            .count();
        if guessed > 0 {
            let why = match self.family {
                Family::Xunit2 => "this junit XML has no `file` attributes (xunit2)",
                Family::Xunit1 => "some rows have no usable `file` attribute",
            };
            notes.push(format!(
                "{why}, so {guessed} node {} rebuilt from classname and name assuming pytest's default test file names (test_*.py, *_test.py) and may be wrong; pass --nodeids FILE for exact ids",
                if guessed == 1 { "id was" } else { "ids were" }
            ));
        }
        let counts = self.counts();
        if counts.passed > 0 {
            let which = if counts.passed == 1 {
                "the passed test".to_owned()
            } else {
                format!("any of the {} passed tests", counts.passed)
            };
            notes.push(format!(
                "junit XML writes a non-strict XPASS exactly like a pass, so {which} may really be an XPASS"
            ));
        }
        if !self.has_captured_output && (counts.failed > 0 || counts.errors > 0) {
            notes.push(
                "the XML holds no captured output (pytest writes it only with -o junit_logging=all or similar)"
                    .to_owned(),
            );
        }
        notes
    }
}

fn list(items: &[&str]) -> String {
    const MAX: usize = 5;
    let mut text = items
        .iter()
        .take(MAX)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > MAX {
        text.push_str(&format!(" and {} more", items.len() - MAX));
    }
    text
}

/// Reads a node ids file: one id per line; blank lines and `#` comments are skipped,
/// surrounding whitespace is trimmed and repeated ids are kept once.
pub fn parse_nodeids(text: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| seen.insert(*l))
        .map(str::to_owned)
        .collect()
}

/// [`map_with`] with default options.
pub fn map(doc: &Document, expected: Option<&[String]>) -> Mapping {
    map_with(doc, expected, &MapOptions::default())
}

/// Maps `doc`'s rows onto `expected` node ids (forward, by pytest's mangling), or onto ids
/// rebuilt from the rows when `expected` is `None`.
pub fn map_with(doc: &Document, expected: Option<&[String]>, options: &MapOptions) -> Mapping {
    let prefix = options.junit_prefix.as_deref().filter(|p| !p.is_empty());
    let rows = &doc.rows;

    // Rows grouped by their (classname, name) key, groups in document order. A group is
    // its first row plus a chain through `next` (no vector per group: files are large).
    const END: usize = usize::MAX;
    let mut firsts: Vec<usize> = Vec::new();
    let mut lasts: Vec<usize> = Vec::new();
    let mut next: Vec<usize> = vec![END; rows.len()];
    let mut by_key: HashMap<(&str, &str), usize, FastHash> =
        HashMap::with_capacity_and_hasher(rows.len(), FastHash);
    for (i, row) in rows.iter().enumerate() {
        let key = (row.classname.as_str(), row.name.as_str());
        match by_key.get(&key) {
            Some(&g) => {
                next[lasts[g]] = i;
                lasts[g] = i;
            }
            None => {
                by_key.insert(key, firsts.len());
                firsts.push(i);
                lasts.push(i);
            }
        }
    }
    let members = |g: usize| -> Vec<usize> {
        let mut group = Vec::with_capacity(1);
        let mut i = firsts[g];
        while i != END {
            group.push(i);
            i = next[i];
        }
        group
    };

    let mut known = KnownModules::default();
    for row in rows {
        if let Some(file) = &row.file {
            known.learn(strip_prefix(&row.classname, prefix), file);
        }
    }

    let kind_of = |row: &Row| -> Kind {
        if row.classname == "pytest" && row.name == "internal" {
            Kind::Internal
        } else if row.classname.is_empty() || Some(row.classname.as_str()) == prefix {
            Kind::Collection
        } else {
            Kind::Test
        }
    };
    let rebuilt = |g: &[usize]| -> (String, IdSource) {
        let row = &rows[g[0]];
        if kind_of(row) == Kind::Internal {
            return ("pytest::internal".to_owned(), IdSource::File);
        }
        let file = g.iter().find_map(|&i| rows[i].file.as_deref());
        nodeid::reconstruct(
            strip_prefix(&row.classname, prefix),
            &row.name,
            file,
            &known,
        )
    };

    let groups = firsts.len();
    let mut used = vec![false; groups];
    let mut results = Vec::with_capacity(expected.map_or(groups, |ids| ids.len() + 1));

    // Collection errors come first, as in pytest, and are never "unexpected".
    for g in 0..groups {
        if kind_of(&rows[firsts[g]]) == Kind::Collection {
            let group = &members(g);
            let (id, source) = rebuilt(group);
            let row = &rows[group[0]];
            let expected_id = expected.and_then(|ids| {
                ids.iter().find(|id| {
                    let (classname, name) = nodeid::junit_key(id, prefix);
                    classname == row.classname && name == row.name
                })
            });
            match expected_id {
                Some(id) => results.push(build(
                    id.clone(),
                    IdSource::Expected,
                    false,
                    Kind::Collection,
                    group,
                    rows,
                )),
                None => results.push(build(id, source, false, Kind::Collection, group, rows)),
            }
            used[g] = true;
        }
    }
    let collection_errors: Vec<(String, String)> = results
        .iter()
        .map(|r: &TestResult| (nodeid::mangle(&r.nodeid).join("."), r.nodeid.clone()))
        .collect();

    if let Some(ids) = expected {
        for id in ids {
            let (classname, name) = nodeid::junit_key(id, prefix);
            match by_key.get(&(classname.as_str(), name.as_str())) {
                Some(&g) if !used[g] => {
                    used[g] = true;
                    let kind = kind_of(&rows[firsts[g]]);
                    let group = members(g);
                    results.push(build(
                        id.clone(),
                        IdSource::Expected,
                        false,
                        kind,
                        &group,
                        rows,
                    ));
                }
                // A collection error row matched by a module id: already listed.
                Some(_) => {}
                None => results.push(missing(id, &collection_errors)),
            }
        }
    }
    let mut internal = Vec::new();
    for (g, _) in used.iter().enumerate().filter(|(_, used)| !**used) {
        let group = &members(g);
        let (id, source) = rebuilt(group);
        let kind = kind_of(&rows[group[0]]);
        let result = build(id, source, expected.is_some(), kind, group, rows);
        if result.kind == Kind::Internal {
            internal.push(result);
        } else {
            results.push(result);
        }
    }
    results.append(&mut internal);

    Mapping {
        results,
        family: doc.family(),
        duration: doc.duration(),
        expected_given: expected.is_some(),
        has_captured_output: rows
            .iter()
            .any(|r| !r.system_out.is_empty() || !r.system_err.is_empty()),
    }
}

/// A small multiplicative hasher (FxHash's mixing) for the row index: its keys come from the
/// file being read, not from an adversary, and SipHash was a tenth of the mapping time.
#[derive(Clone, Copy, Default)]
struct FastHash;

impl std::hash::BuildHasher for FastHash {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(0)
    }
}

struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0xf135_7aea_2e62_a9c5;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

fn strip_prefix<'a>(classname: &'a str, prefix: Option<&str>) -> &'a str {
    match prefix {
        Some(p) if classname == p => "",
        Some(p) => classname
            .strip_prefix(p)
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or(classname),
        None => classname,
    }
}

/// The ERROR result for an expected id with no row, naming the collection error that
/// explains it when there is one.
fn missing(id: &str, collection_errors: &[(String, String)]) -> TestResult {
    let module = nodeid::mangle(id).into_iter().next().unwrap_or_default();
    let cause = collection_errors.iter().find(|(dotted, _)| {
        !dotted.is_empty()
            && (module == *dotted
                || (module.starts_with(dotted.as_str())
                    && module.as_bytes().get(dotted.len()) == Some(&b'.')))
    });
    let message = match cause {
        Some((_, collected)) => format!("no result: collecting {collected} failed"),
        None => "no result in the junit XML".to_owned(),
    };
    TestResult {
        nodeid: id.to_owned(),
        kind: Kind::Test,
        id_source: IdSource::Expected,
        unexpected: false,
        missing: true,
        reports: vec![Report {
            when: None,
            outcome: Outcome::Error,
            message: Some(message),
            longrepr: None,
        }],
        sections: Vec::new(),
        properties: Vec::new(),
        duration: None,
        rows: 0,
    }
}

/// Merges the rows of one test into a result.
fn build(
    nodeid: String,
    id_source: IdSource,
    unexpected: bool,
    kind: Kind,
    group: &[usize],
    rows: &[Row],
) -> TestResult {
    let mut reports = Vec::new();
    let mut sections: Vec<Section> = Vec::new();
    let mut properties = Vec::new();
    let mut duration: Option<f64> = None;
    for &i in group {
        let row = &rows[i];
        if row.children.is_empty() {
            reports.push(PASSED.clone());
        }
        for child in &row.children {
            reports.push(child_report(child.kind, child));
        }
        for text in &row.system_out {
            add_sections(&mut sections, text, "stdout");
        }
        for text in &row.system_err {
            add_sections(&mut sections, text, "stderr");
        }
        properties.extend(row.properties.iter().cloned());
        if let Some(t) = row.time {
            duration = Some(duration.unwrap_or(0.0) + t);
        }
    }
    // A teardown error alone means the call passed: pytest counts both.
    if kind == Kind::Test && reports.iter().all(|r| r.when == Some(When::Teardown)) {
        reports.insert(0, PASSED.clone());
    }
    let rank = |r: &Report| match r.when {
        Some(When::Collect) => 0,
        Some(When::Setup) => 1,
        Some(When::Call) | None => 2,
        Some(When::Teardown) => 3,
    };
    if reports.len() > 1 {
        reports.sort_by_key(rank);
    }
    TestResult {
        nodeid,
        kind,
        id_source,
        unexpected: unexpected && kind == Kind::Test,
        missing: false,
        reports,
        sections,
        properties,
        duration,
        rows: group.len(),
    }
}

/// One `<failure>`, `<error>` or `<skipped>` element as pytest's report, by the exact
/// messages pytest's junitxml writes (`_NodeReporter.append_*`).
fn child_report(kind: ChildKind, child: &super::parse::Child) -> Report {
    let message = child.message.clone();
    let longrepr = Some(child.text.clone()).filter(|t| !t.is_empty());
    let msg = message.as_deref().unwrap_or("");
    let (when, outcome, message) = match kind {
        ChildKind::Failure => (Some(When::Call), Outcome::Failed, message),
        ChildKind::Error => {
            if msg == "collection failure" {
                (Some(When::Collect), Outcome::Error, message)
            } else if let Some(inner) = msg.strip_prefix("failed on setup with \"") {
                (Some(When::Setup), Outcome::Error, Some(unquote(inner)))
            } else if let Some(inner) = msg.strip_prefix("failed on teardown with \"") {
                (Some(When::Teardown), Outcome::Error, Some(unquote(inner)))
            } else {
                (None, Outcome::Error, message)
            }
        }
        ChildKind::Skipped => {
            if child.type_.as_deref() == Some("pytest.xfail") {
                (None, Outcome::XFailed, message)
            } else if msg == "xfail-marked test passes unexpectedly" {
                (Some(When::Call), Outcome::XPassed, message)
            } else if msg == "collection skipped" {
                (Some(When::Collect), Outcome::Skipped, message)
            } else {
                (None, Outcome::Skipped, message)
            }
        }
    };
    Report {
        when,
        outcome,
        message,
        longrepr,
    }
}

/// Drops the closing quote of `failed on … with "<reason>"` (it is gone if pytest shortened
/// the message).
fn unquote(inner: &str) -> String {
    inner.strip_suffix('"').unwrap_or(inner).to_owned()
}

/// Splits pytest's `<system-out>` / `<system-err>` text (`---- Captured Out ----` headers,
/// 80 columns) into sections; text without headers is one section. Empty parts are dropped,
/// and a part already seen (pytest repeats output for skips) is kept once.
fn add_sections(sections: &mut Vec<Section>, text: &str, default: &str) {
    let mut current: Option<(&str, String)> = None;
    let mut parts: Vec<(&str, String)> = Vec::new();
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        let header = bare
            .trim_matches('-')
            .strip_prefix(' ')
            .and_then(|h| h.strip_suffix(' '))
            .filter(|_| bare.starts_with("--") && bare.ends_with("--"));
        let stream = match header {
            Some("Captured Out") => Some("stdout"),
            Some("Captured Err") => Some("stderr"),
            Some("Captured Log") => Some("log"),
            _ => None,
        };
        if let Some(stream) = stream {
            parts.extend(current.take());
            current = Some((stream, String::new()));
        } else {
            current
                .get_or_insert_with(|| (default, String::new()))
                .1
                .push_str(line);
        }
    }
    parts.extend(current.take());
    for (stream, mut body) in parts {
        // pytest appends one "\n" after the captured text.
        if body.ends_with('\n') {
            body.pop();
        }
        if body.trim().is_empty() {
            continue;
        }
        let title = format!("Captured {stream} (remote)");
        match sections.iter_mut().find(|s| s.title == title) {
            Some(s) if s.text.contains(&body) => {}
            Some(s) if body.starts_with(&s.text) => s.text = body,
            _ => sections.push(Section { title, text: body }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::junit::parse::parse_str;

    fn doc(cases: &str) -> Document {
        parse_str(&format!(
            r#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" time="2.000">{cases}</testsuite></testsuites>"#
        ))
        .expect("valid xml")
    }

    fn outcomes(r: &TestResult) -> Vec<(&'static str, Option<When>)> {
        r.reports
            .iter()
            .map(|r| (r.outcome.as_str(), r.when))
            .collect()
    }

    #[test]
    fn failure_row_and_teardown_row_merge_into_one_result() {
        let d = doc(r#"
            <testcase classname="t.test_a" name="test_x" time="0.5"><failure message="assert 1 == 2">call text</failure></testcase>
            <testcase classname="t.test_a" name="test_x" time="0.25"><error message="failed on teardown with &quot;RuntimeError: boom&quot;">td text</error><system-out>-------------------------------- Captured Out --------------------------------
printed

</system-out></testcase>"#);
        let m = map(&d, Some(&["t/test_a.py::test_x".to_owned()]));
        assert_eq!(m.results.len(), 1);
        let r = &m.results[0];
        assert_eq!(r.rows, 2);
        assert_eq!(
            outcomes(r),
            [
                ("failed", Some(When::Call)),
                ("error", Some(When::Teardown))
            ]
        );
        assert_eq!(r.reports[1].message.as_deref(), Some("RuntimeError: boom"));
        assert_eq!(r.headline().outcome, Outcome::Failed);
        assert_eq!(r.duration, Some(0.75));
        assert_eq!(
            r.sections,
            [Section {
                title: "Captured stdout (remote)".into(),
                text: "printed\n".into()
            }]
        );
        assert_eq!(m.counts().parts(), ["1 failed", "1 error"]);
        assert_eq!(m.exit_code(), 1);
    }

    #[test]
    fn teardown_error_alone_means_the_call_passed() {
        let d = doc(
            r#"<testcase classname="t.test_a" name="test_x"><error message="failed on teardown with &quot;E&quot;">x</error></testcase>"#,
        );
        let m = map(&d, None);
        assert_eq!(
            outcomes(&m.results[0]),
            [
                ("passed", Some(When::Call)),
                ("error", Some(When::Teardown))
            ]
        );
        assert_eq!(m.results[0].headline().outcome, Outcome::Error);
    }

    #[test]
    fn repeated_passing_rows_stay_two_reports() {
        let d = doc(
            r#"<testcase classname="t.test_a" name="test_x"/><testcase classname="t.test_a" name="test_x"/>"#,
        );
        let m = map(&d, None);
        assert_eq!(m.results.len(), 1);
        assert_eq!(m.counts().passed, 2);
    }

    #[test]
    fn each_encoding_maps_to_its_outcome() {
        let d = doc(r#"
            <testcase classname="" name="t.test_broken"><error message="collection failure">ImportError</error></testcase>
            <testcase classname="t.test_a" name="test_setup"><error message="failed on setup with &quot;E: x&quot;">x</error></testcase>
            <testcase classname="t.test_a" name="test_xfail"><skipped type="pytest.xfail" message="bug" /></testcase>
            <testcase classname="t.test_a" name="test_strict"><failure message="[XPASS(strict)] must fail">[XPASS(strict)] must fail</failure></testcase>
            <testcase classname="t.test_a" name="test_skip"><skipped type="pytest.skip" message="why">/abs/t/test_a.py:3: why</skipped></testcase>
            <testcase classname="pytest" name="internal"><error message="internal error">boom</error></testcase>"#);
        let m = map(&d, None);
        let got: Vec<_> = m
            .results
            .iter()
            .map(|r| (r.nodeid.as_str(), r.kind, outcomes(r)))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "t/test_broken.py",
                    Kind::Collection,
                    vec![("error", Some(When::Collect))]
                ),
                (
                    "t/test_a.py::test_setup",
                    Kind::Test,
                    vec![("error", Some(When::Setup))]
                ),
                (
                    "t/test_a.py::test_xfail",
                    Kind::Test,
                    vec![("xfailed", None)]
                ),
                (
                    "t/test_a.py::test_strict",
                    Kind::Test,
                    vec![("failed", Some(When::Call))]
                ),
                (
                    "t/test_a.py::test_skip",
                    Kind::Test,
                    vec![("skipped", None)]
                ),
                ("pytest::internal", Kind::Internal, vec![("error", None)]),
            ]
        );
        assert_eq!(m.exit_code(), 3);
    }

    #[test]
    fn expected_ids_without_rows_are_errors_and_stray_rows_are_reported() {
        let d = doc(r#"
            <testcase classname="" name="t.test_broken" file="t/test_broken.py"><error message="collection failure">ImportError</error></testcase>
            <testcase classname="t.test_a" name="test_ok" file="t/test_a.py"/>
            <testcase classname="t.test_a" name="test_stray" file="t/test_a.py"/>"#);
        let ids = parse_nodeids(
            "# ids\nt/test_a.py::test_ok\n\nt/test_a.py::test_gone\nt/test_broken.py::test_b\nt/test_a.py::test_ok\n",
        );
        let m = map(&d, Some(&ids));
        let got: Vec<_> = m
            .results
            .iter()
            .map(|r| {
                (
                    r.nodeid.as_str(),
                    r.headline().outcome,
                    r.missing,
                    r.unexpected,
                    r.headline().message.clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "t/test_broken.py",
                    Outcome::Error,
                    false,
                    false,
                    Some("collection failure".into())
                ),
                ("t/test_a.py::test_ok", Outcome::Passed, false, false, None),
                (
                    "t/test_a.py::test_gone",
                    Outcome::Error,
                    true,
                    false,
                    Some("no result in the junit XML".into())
                ),
                (
                    "t/test_broken.py::test_b",
                    Outcome::Error,
                    true,
                    false,
                    Some("no result: collecting t/test_broken.py failed".into())
                ),
                (
                    "t/test_a.py::test_stray",
                    Outcome::Passed,
                    false,
                    true,
                    None
                ),
            ]
        );
        assert!(m.notes()[0].starts_with("1 junit row matched no expected node id"));
    }

    #[test]
    fn no_rows_means_exit_5_and_no_tests_ran() {
        let m = map(&doc(""), None);
        assert_eq!(m.exit_code(), 5);
        assert!(m.counts().parts().is_empty());
    }

    #[test]
    fn pluralisation_follows_pytest() {
        let c = Counts {
            failed: 2,
            passed: 1,
            skipped: 3,
            xfailed: 1,
            xpassed: 2,
            errors: 1,
        };
        assert_eq!(
            c.parts(),
            [
                "2 failed",
                "1 passed",
                "3 skipped",
                "1 xfailed",
                "2 xpassed",
                "1 error"
            ]
        );
        assert_eq!(
            Counts {
                errors: 2,
                ..Counts::default()
            }
            .parts(),
            ["2 errors"]
        );
    }
}
