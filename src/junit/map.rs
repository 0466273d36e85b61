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
    /// A passing pytest 9 subtest, which pytest counts apart (`3 subtests passed`).
    SubtestsPassed,
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
            Outcome::SubtestsPassed => "subtests passed",
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
            Outcome::SubtestsPassed => "SUBPASSED",
        }
    }

    /// pytest's `-v` word for a subtest's report (`SUBFAILED`), before its description.
    pub fn subtest_word(self) -> &'static str {
        match self {
            Outcome::Passed | Outcome::SubtestsPassed => "SUBPASSED",
            Outcome::Failed | Outcome::Error => "SUBFAILED",
            Outcome::Skipped => "SUBSKIPPED",
            Outcome::XFailed => "SUBXFAIL",
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
    /// The crash message (failures, errors) or reason (skips, xfails), as pytest's short
    /// summary prints it after ` - `.
    pub message: Option<String>,
    /// pytest's full failure text, or for a skip the place it folds skips by:
    /// `path:line: reason` (or `path: reason` for a skip mark).
    pub longrepr: Option<String>,
    /// For a pytest 9 subtest, its description as pytest prints it after the word:
    /// `[msg] (i=1)`.
    pub subtest: Option<String>,
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
    subtest: None,
};

/// Options for [`map_with`] and [`super::ReportLog::finish`].
#[derive(Debug, Clone, Default)]
pub struct MapOptions {
    /// The `--junitprefix` pytest ran with, if any (junit XML only).
    pub junit_prefix: Option<String>,
}

/// Where a [`Mapping`] came from, which decides what it can know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A junit XML file of this family.
    Junit(Family),
    /// A pytest report log (JSON lines of serialized reports).
    ReportLog,
}

/// All results of one run.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// Collection errors and skips first, then the expected ids in their order (or the
    /// tests in the order they ran), then unexpected results, then internal errors.
    pub results: Vec<TestResult>,
    pub source: Source,
    /// Session duration in seconds, when known.
    pub duration: Option<f64>,
    /// Whether expected node ids were given.
    pub expected_given: bool,
    /// Whether any result carries captured output.
    pub has_captured_output: bool,
    /// How many warnings pytest recorded (report log only; junit XML has none).
    pub warnings: usize,
    /// The exit status the pytest session itself reported (report log only).
    pub session_exit: Option<i32>,
    /// Further sentences about how the input was read (skipped malformed lines, …).
    pub remarks: Vec<String>,
}

/// How many reports fall in each of pytest's categories.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub failed: usize,
    pub passed: usize,
    pub skipped: usize,
    pub xfailed: usize,
    pub xpassed: usize,
    pub warnings: usize,
    pub errors: usize,
    pub subtests_passed: usize,
}

impl Counts {
    /// Counts one report.
    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Passed => self.passed += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Error => self.errors += 1,
            Outcome::Skipped => self.skipped += 1,
            Outcome::XFailed => self.xfailed += 1,
            Outcome::XPassed => self.xpassed += 1,
            Outcome::SubtestsPassed => self.subtests_passed += 1,
        }
    }

    /// The closing line's parts in pytest's order and spelling (its `KNOWN_TYPES` and
    /// `pluralize`): `3 failed, 1 warning, 2 errors, 4 subtests passed`.
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
        for (n, noun) in [(self.warnings, "warning"), (self.errors, "error")] {
            if n > 0 {
                let s = if n == 1 { "" } else { "s" };
                parts.push(format!("{n} {noun}{s}"));
            }
        }
        if self.subtests_passed > 0 {
            parts.push(format!("{} subtests passed", self.subtests_passed));
        }
        parts
    }
}

impl Mapping {
    /// Reports counted the way pytest's closing line counts them.
    pub fn counts(&self) -> Counts {
        let mut c = Counts {
            warnings: self.warnings,
            ..Counts::default()
        };
        for report in self.results.iter().flat_map(|r| &r.reports) {
            c.add(report.outcome);
        }
        c
    }

    /// Whether the session stopped after collection errors, as pytest does without
    /// `--continue-on-collection-errors` ("Interrupted: 1 error during collection").
    ///
    /// A report log says so through its exit status. A junit file cannot: there it is
    /// inferred from collection errors with no test row at all, which is what pytest
    /// writes when it stops (with `--continue-on-collection-errors` and no test
    /// collected anywhere, the same file comes from a run that exited 1).
    pub fn interrupted_by_collection(&self) -> bool {
        let collection_errors = self
            .results
            .iter()
            .any(|r| r.kind == Kind::Collection && r.headline().outcome == Outcome::Error);
        if !collection_errors {
            return false;
        }
        match self.source {
            Source::ReportLog => self.session_exit == Some(2),
            Source::Junit(_) => !self
                .results
                .iter()
                .any(|r| r.kind == Kind::Test && !r.missing),
        }
    }

    /// pytest's exit status. The session's own status when it is one no outcome explains
    /// (2 interrupted, 3 internal error, 4 usage error, 6 too many warnings); otherwise 3
    /// after an internal error, 2 when collection errors stopped the session, 1 if
    /// anything failed or errored (an expected id without a result included), 5 if no
    /// test ran, else 0.
    pub fn exit_code(&self) -> u8 {
        if let Some(status) = self.session_exit
            && !matches!(status, 0 | 1 | 5)
        {
            return u8::try_from(status).unwrap_or(3);
        }
        if self.results.iter().any(|r| r.kind == Kind::Internal) {
            return 3;
        }
        if self.interrupted_by_collection() {
            return 2;
        }
        let c = self.counts();
        if c.failed > 0 || c.errors > 0 {
            1
        } else if !self.results.iter().any(|r| r.kind == Kind::Test) {
            5
        } else {
            0
        }
    }

    /// Sentences about what the input could not say (no `note:` prefix, no newline).
    pub fn notes(&self) -> Vec<String> {
        let mut notes = self.remarks.clone();
        let unexpected: Vec<&str> = self
            .results
            .iter()
            .filter(|r| r.unexpected)
            .map(|r| r.nodeid.as_str())
            .collect();
        if !unexpected.is_empty() {
            let what = match self.source {
                Source::Junit(_) => {
                    if unexpected.len() == 1 {
                        "junit row matched no expected node id; shown with ids rebuilt from the XML"
                    } else {
                        "junit rows matched no expected node id; shown with ids rebuilt from the XML"
                    }
                }
                Source::ReportLog => {
                    if unexpected.len() == 1 {
                        "test in the report log is not among the expected node ids"
                    } else {
                        "tests in the report log are not among the expected node ids"
                    }
                }
            };
            notes.push(format!(
                "{} {what}: {}",
                unexpected.len(),
                list(&unexpected)
            ));
        }
        match self.session_exit {
            Some(2) if !self.interrupted_by_collection() => notes.push(
                "the remote pytest session was interrupted (exit status 2); tests without a result are errors"
                    .to_owned(),
            ),
            Some(3) => notes.push(
                "the remote pytest session stopped with an internal error (exit status 3)"
                    .to_owned(),
            ),
            Some(4) => notes.push(
                "the remote pytest rejected its command line (usage error, exit status 4)"
                    .to_owned(),
            ),
            _ => {}
        }
        let Source::Junit(family) = self.source else {
            return notes;
        };
        let guessed = self
            .results
            .iter()
            .filter(|r| r.id_source == IdSource::Guessed)
            .count();
        if guessed > 0 {
            let why = match family {
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

    // The expected ids (each once), their keys, and the ids sharing a key chained: two
    // ids can mangle to one key (`a.b/t.py::x` and `a/b/t.py::x`).
    let ids = expected.map(dedup).unwrap_or_default();
    let keys: Vec<(String, String)> = ids.iter().map(|id| nodeid::junit_key(id, prefix)).collect();
    let mut id_first: HashMap<(&str, &str), usize, FastHash> =
        HashMap::with_capacity_and_hasher(ids.len(), FastHash);
    let mut id_next: Vec<usize> = vec![END; ids.len()];
    let mut id_last: Vec<usize> = vec![END; ids.len()];
    for (i, (classname, name)) in keys.iter().enumerate() {
        match id_first.get(&(classname.as_str(), name.as_str())) {
            Some(&first) => {
                id_next[id_last[first]] = i;
                id_last[first] = i;
            }
            None => {
                id_first.insert((classname.as_str(), name.as_str()), i);
                id_last[i] = i;
            }
        }
    }
    let sharing = |first: usize| -> Vec<usize> {
        let mut all = vec![first];
        let mut i = id_next[first];
        while i != END {
            all.push(i);
            i = id_next[i];
        }
        all
    };

    let groups = firsts.len();
    let mut used = vec![false; groups];
    // Per expected id, what it gets when its key is shared and rows exist for it.
    let mut shared: HashMap<usize, Shared> = HashMap::new();
    let mut strays: Vec<Vec<usize>> = Vec::new();
    for (&key, &first) in &id_first {
        if id_next[first] == END {
            continue;
        }
        let Some(&g) = by_key.get(&key) else {
            continue;
        };
        used[g] = true;
        let claimants = sharing(first);
        let (per_id, leftover) = split_shared(&claimants, &ids, &members(g), rows);
        shared.extend(per_id);
        if !leftover.is_empty() {
            strays.push(leftover);
        }
    }

    let mut results = Vec::with_capacity(ids.len().max(groups) + 1);
    let mut claimed = vec![false; ids.len()];

    // Collection errors and skips come first, as in pytest, and are never "unexpected".
    for g in 0..groups {
        if used[g] || kind_of(&rows[firsts[g]]) != Kind::Collection {
            continue;
        }
        used[g] = true;
        let group = &members(g);
        let row = &rows[group[0]];
        match id_first.get(&(row.classname.as_str(), row.name.as_str())) {
            Some(&i) => {
                claimed[i] = true;
                results.push(build(
                    ids[i].to_owned(),
                    IdSource::Expected,
                    false,
                    Kind::Collection,
                    group,
                    rows,
                ));
            }
            None => {
                let (id, source) = rebuilt(group);
                results.push(build(id, source, false, Kind::Collection, group, rows));
            }
        }
    }
    // Collection errors by dotted module or package, to say why an id has no row.
    let collection_errors = collection_index(results.iter());

    for (i, id) in ids.iter().enumerate() {
        if claimed[i] {
            continue;
        }
        if let Some(share) = shared.remove(&i) {
            results.push(match share {
                Shared::Rows(group) => {
                    let kind = kind_of(&rows[group[0]]);
                    build(
                        (*id).to_owned(),
                        IdSource::Expected,
                        false,
                        kind,
                        &group,
                        rows,
                    )
                }
                Shared::Ambiguous(message) => no_result(id, message),
            });
            continue;
        }
        let (classname, name) = &keys[i];
        match by_key.get(&(classname.as_str(), name.as_str())) {
            Some(&g) if !used[g] => {
                used[g] = true;
                let kind = kind_of(&rows[firsts[g]]);
                let group = members(g);
                results.push(build(
                    (*id).to_owned(),
                    IdSource::Expected,
                    false,
                    kind,
                    &group,
                    rows,
                ));
            }
            _ => results.push(missing(id, &collection_errors)),
        }
    }
    let mut internal = Vec::new();
    let leftovers = (0..groups).filter(|&g| !used[g]).map(members).chain(strays);
    for group in leftovers {
        let (id, source) = rebuilt(&group);
        let kind = kind_of(&rows[group[0]]);
        let result = build(id, source, expected.is_some(), kind, &group, rows);
        if result.kind == Kind::Internal {
            internal.push(result);
        } else {
            results.push(result);
        }
    }
    results.append(&mut internal);

    Mapping {
        results,
        source: Source::Junit(doc.family()),
        duration: doc.duration(),
        expected_given: expected.is_some(),
        has_captured_output: rows
            .iter()
            .any(|r| !r.system_out.is_empty() || !r.system_err.is_empty()),
        warnings: 0,
        session_exit: None,
        remarks: Vec::new(),
    }
}

/// End of a chain of indices.
const END: usize = usize::MAX;

/// `ids` without repeats, first occurrence kept.
fn dedup(ids: &[String]) -> Vec<&str> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.iter()
        .map(String::as_str)
        .filter(|id| seen.insert(*id))
        .collect()
}

/// What an expected id gets when other expected ids share its junit key.
enum Shared {
    /// The rows that are its own.
    Rows(Vec<usize>),
    /// Rows exist, but junit cannot say which are its own: an explicit error.
    Ambiguous(String),
}

/// Splits one key's rows among the expected ids that share the key. A row goes to the one
/// id whose file is the row's `file` attribute (xunit1); rows no `file` settles go to the
/// only id left without rows, else every id left without rows gets an explicit error.
/// Returns each id's share and the rows nobody could take (shown as unexpected).
fn split_shared(
    claimants: &[usize],
    ids: &[&str],
    group: &[usize],
    rows: &[Row],
) -> (Vec<(usize, Shared)>, Vec<usize>) {
    let path = |i: usize| ids[i].split("::").next().unwrap_or_default();
    let mut own: Vec<Vec<usize>> = vec![Vec::new(); claimants.len()];
    let mut unsettled = Vec::new();
    for &r in group {
        let owners: Vec<usize> = match rows[r].file.as_deref() {
            Some(file) => (0..claimants.len())
                .filter(|&c| path(claimants[c]) == file)
                .collect(),
            None => Vec::new(),
        };
        match owners[..] {
            [c] => own[c].push(r),
            _ => unsettled.push(r),
        }
    }
    let without: Vec<usize> = (0..claimants.len())
        .filter(|&c| own[c].is_empty())
        .collect();
    if let [c] = without[..] {
        own[c].append(&mut unsettled);
    }
    let mut out = Vec::with_capacity(claimants.len());
    for (c, mine) in own.into_iter().enumerate() {
        let id = claimants[c];
        if !mine.is_empty() {
            out.push((id, Shared::Rows(mine)));
        } else if !unsettled.is_empty() {
            let others: Vec<&str> = claimants
                .iter()
                .filter(|&&o| o != id)
                .map(|&o| ids[o])
                .collect();
            let row = &rows[unsettled[0]];
            out.push((
                id,
                Shared::Ambiguous(format!(
                    "no result: junit XML writes this test and {} with the same classname `{}` and name `{}`, and no `file` attribute says which rows are whose; run pytest with -o junit_family=xunit1 or use the report log",
                    list(&others),
                    row.classname,
                    row.name
                )),
            ));
        }
        // No rows and nothing unsettled: it did not run, which `missing` reports.
    }
    // Unsettled rows stand behind the ambiguity errors when some id has none of its own;
    // when every id has its own rows, they are shown as unexpected.
    let leftover = if without.is_empty() {
        unsettled
    } else {
        Vec::new()
    };
    (out, leftover)
}

/// A small multiplicative hasher (FxHash's mixing) for the row index: its keys come from the
/// file being read, not from an adversary, and SipHash was a tenth of the mapping time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FastHash;

impl std::hash::BuildHasher for FastHash {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(0)
    }
}

pub(crate) struct FastHasher(u64);

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
fn missing(id: &str, collection_errors: &HashMap<String, String>) -> TestResult {
    let message = match collection_cause(id, collection_errors) {
        Some(collected) => format!("no result: collecting {collected} failed"),
        None => "no result in the junit XML".to_owned(),
    };
    no_result(id, message)
}

/// Collection errors keyed by their dotted path (`tests.sub.test_m`), for
/// [`collection_cause`].
pub(crate) fn collection_index<'a>(
    results: impl Iterator<Item = &'a TestResult>,
) -> HashMap<String, String> {
    results
        .filter(|r| r.kind == Kind::Collection && r.headline().outcome == Outcome::Error)
        .map(|r| (nodeid::mangle(&r.nodeid).join("."), r.nodeid.clone()))
        .filter(|(dotted, _)| !dotted.is_empty())
        .collect()
}

/// The collection error whose module or package holds `id`, the innermost one first.
/// Looks up each dotted prefix of the id's module: a few lookups per id, whatever the
/// number of collection errors.
pub(crate) fn collection_cause<'c>(
    id: &str,
    collection_errors: &'c HashMap<String, String>,
) -> Option<&'c str> {
    if collection_errors.is_empty() {
        return None;
    }
    let path = id.split("::").next().unwrap_or_default();
    let dotted = nodeid::dotted_module(path);
    let mut head = dotted.as_str();
    loop {
        if let Some(collected) = collection_errors.get(head) {
            return Some(collected);
        }
        head = &head[..head.rfind('.')?];
    }
}

/// An ERROR result for an expected id without a result of its own.
pub(crate) fn no_result(id: &str, message: String) -> TestResult {
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
            subtest: None,
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
                // pytest's placeholder; its short summary shows no message here.
                (Some(When::Collect), Outcome::Error, None)
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
                // pytest writes the skip's `(path, line, reason)` tuple as Python prints it.
                if let Some((path, line, reason)) = python_skip_tuple(&child.text) {
                    let reason = reason.strip_prefix("Skipped: ").unwrap_or(&reason);
                    return Report {
                        when: Some(When::Collect),
                        outcome: Outcome::Skipped,
                        message: Some(reason.to_owned()),
                        longrepr: Some(format!("{path}:{line}: {reason}")),
                        subtest: None,
                    };
                }
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
        subtest: None,
    }
}

/// Reads Python's `repr` of a skip tuple, `('/abs/t.py', 2, 'Skipped: why')`: two string
/// literals (either quote, backslash escapes) around an integer.
fn python_skip_tuple(text: &str) -> Option<(String, i64, String)> {
    let rest = text.trim().strip_prefix('(')?.strip_suffix(')')?;
    let (path, rest) = python_str(rest.trim_start())?;
    let rest = rest.trim_start().strip_prefix(',')?.trim_start();
    let digits = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(rest.len());
    let line: i64 = rest[..digits].parse().ok()?;
    let rest = rest[digits..].trim_start().strip_prefix(',')?.trim_start();
    let (reason, rest) = python_str(rest)?;
    rest.trim().is_empty().then_some((path, line, reason))
}

/// One Python string literal at the start of `s`, unescaped, and what follows it.
fn python_str(s: &str) -> Option<(String, &str)> {
    let quote = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let mut out = String::new();
    let mut chars = s[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c == quote => return Some((out, &s[1 + i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'x' | 'u' | 'U' => {
                        let len = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = (0..len)
                            .filter_map(|_| chars.next().map(|(_, h)| h))
                            .collect();
                        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    other => out.push(other),
                }
            }
            c => out.push(c),
        }
    }
    None
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
                ("t/test_broken.py", Outcome::Error, false, false, None),
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
            warnings: 1,
            errors: 1,
            subtests_passed: 1,
        };
        assert_eq!(
            c.parts(),
            [
                "2 failed",
                "1 passed",
                "3 skipped",
                "1 xfailed",
                "2 xpassed",
                "1 warning",
                "1 error",
                "1 subtests passed"
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

    fn summary(m: &Mapping) -> Vec<(String, &'static str, bool)> {
        m.results
            .iter()
            .map(|r| (r.nodeid.clone(), r.headline().outcome.as_str(), r.missing))
            .collect()
    }

    #[test]
    fn ids_sharing_a_key_are_told_apart_by_file() {
        // `a.b/test_x.py::test_same` and `a/b/test_x.py::test_same` (importlib mode) are
        // both written as classname `a.b.test_x`, name `test_same`.
        let ids = [
            "a/b/test_x.py::test_same".to_owned(),
            "a.b/test_x.py::test_same".to_owned(),
        ];
        let xunit1 = doc(r#"
            <testcase classname="a.b.test_x" name="test_same" file="a/b/test_x.py"><failure message="boom">x</failure></testcase>
            <testcase classname="a.b.test_x" name="test_same" file="a.b/test_x.py"/>"#);
        let m = map(&xunit1, Some(&ids));
        assert_eq!(
            summary(&m),
            [
                (ids[0].clone(), "failed", false),
                (ids[1].clone(), "passed", false)
            ]
        );
        assert_eq!(m.results[0].rows, 1);

        // Without `file` nothing says which row is whose: both are explicit errors.
        let xunit2 = doc(r#"
            <testcase classname="a.b.test_x" name="test_same"><failure message="boom">x</failure></testcase>
            <testcase classname="a.b.test_x" name="test_same"/>"#);
        let m = map(&xunit2, Some(&ids));
        assert_eq!(
            summary(&m),
            [
                (ids[0].clone(), "error", true),
                (ids[1].clone(), "error", true)
            ]
        );
        let message = m.results[1].headline().message.clone().unwrap_or_default();
        assert!(message.contains("a/b/test_x.py::test_same"), "{message}");
        assert!(message.contains("junit_family=xunit1"), "{message}");

        // Only one of them ran: its rows are its own, the other has no result.
        let one =
            doc(r#"<testcase classname="a.b.test_x" name="test_same" file="a.b/test_x.py"/>"#);
        let m = map(&one, Some(&ids));
        assert_eq!(
            summary(&m),
            [
                (ids[0].clone(), "error", true),
                (ids[1].clone(), "passed", false)
            ]
        );

        // One row with `file` settles its id; the unsettled row goes to the other one.
        let mixed = doc(r#"
            <testcase classname="a.b.test_x" name="test_same" file="a/b/test_x.py"/>
            <testcase classname="a.b.test_x" name="test_same" file="base/elsewhere.py"><failure message="m">x</failure></testcase>"#);
        let m = map(&mixed, Some(&ids));
        assert_eq!(
            summary(&m),
            [
                (ids[0].clone(), "passed", false),
                (ids[1].clone(), "failed", false)
            ]
        );
    }

    #[test]
    fn collection_skip_tuple_is_read_as_pytest_prints_it() {
        let d = doc(
            r#"<testcase classname="" name="t.test_cs" file="t/test_cs.py"><skipped message="collection skipped">('/abs/root/t/test_cs.py', 2, "Skipped: it's \\ off")</skipped></testcase>"#,
        );
        let m = map(&d, None);
        let r = &m.results[0];
        assert_eq!(r.kind, Kind::Collection);
        assert_eq!(r.reports[0].message.as_deref(), Some("it's \\ off"));
        assert_eq!(
            r.reports[0].longrepr.as_deref(),
            Some("/abs/root/t/test_cs.py:2: it's \\ off")
        );
        // Only collection skips: pytest collected nothing and exits 5.
        assert_eq!(m.exit_code(), 5);
        assert_eq!(
            python_skip_tuple("('C:\\\\x\\\\t.py', 10, 'Skipped: a\\'b')"),
            Some(("C:\\x\\t.py".to_owned(), 10, "Skipped: a'b".to_owned()))
        );
        assert_eq!(python_skip_tuple("not a tuple"), None);
    }

    #[test]
    fn collection_errors_without_tests_mean_the_session_was_interrupted() {
        let broken = r#"<testcase classname="" name="t.test_broken"><error message="collection failure">E</error></testcase>"#;
        let m = map(&doc(broken), None);
        assert!(m.interrupted_by_collection());
        assert_eq!(m.exit_code(), 2);
        assert_eq!(m.counts().parts(), ["1 error"]);
        // With tests that ran, pytest went on (--continue-on-collection-errors): 1.
        let m = map(
            &doc(&format!(
                r#"{broken}<testcase classname="t.test_a" name="test_ok"/>"#
            )),
            None,
        );
        assert!(!m.interrupted_by_collection());
        assert_eq!(m.exit_code(), 1);
    }

    #[test]
    fn missing_ids_name_the_innermost_collection_error() {
        let d = doc(r#"
            <testcase classname="" name="t.sub"><error message="collection failure">E</error></testcase>
            <testcase classname="" name="t.sub.test_m"><error message="collection failure">E</error></testcase>"#);
        let ids = [
            "t/sub/test_m.py::test_a".to_owned(),
            "t/sub/test_n.py::TestC::test_b".to_owned(),
            "t/other.py::test_c".to_owned(),
        ];
        let m = map(&d, Some(&ids));
        let messages: Vec<Option<&str>> = m.results[2..]
            .iter()
            .map(|r| r.headline().message.as_deref())
            .collect();
        assert_eq!(
            messages,
            [
                Some("no result: collecting t/sub/test_m.py failed"),
                Some("no result: collecting t/sub.py failed"),
                Some("no result in the junit XML"),
            ]
        );
    }
}
