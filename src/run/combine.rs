//! Several jobs (the shards of one run) seen as one run: one stream of records, one live
//! status, one report-log mapping, one exit status.
//!
//! Each shard's records arrive through its own [`ShardView`] and go on to the run's
//! [`Reporter`] as soon as they are read, in arrival order, each once. With more than one
//! job the records are merged into what a single pytest session would have written:
//!
//! - the first `SessionStart` is passed on, the others are dropped;
//! - every shard's `SessionFinish` is held back; [`Board::finish`] writes one
//!   `{"exitstatus": N, "$report_type": "SessionFinish"}` after the last record of the last
//!   shard, N being the most serious of the shards' own statuses (3, 4, 2, 1, 6, 0, 5 in
//!   that order), and only when at least one shard's session finished;
//! - a `CollectReport` for a collector already reported by another shard is dropped (every
//!   shard collects the same files), as is a `WarningMessage` raised outside a test
//!   (`when` other than `runtest`) that another shard already sent word for word;
//! - everything else (`TestReport`, `SubTestReport`, test warnings…) is passed on;
//! - each job copies the project to a temporary folder of its own, where one session has
//!   one: once a shard's folder is known (from the first skip or crash whose absolute path
//!   ends in the test's rootdir-relative file, the rule the report-log mapper uses), every
//!   later record of that shard names the folder of the first shard that made its own known
//!   instead, so skips fold and paths read as in one session.
//!
//! With one job nothing is dropped or added: the stream is that job's report log, byte for
//! byte. The same merged records feed one [`ReportLog`], whose finished tests become the
//! live `-v` lines (in the order they finish) and whose counts feed the status line.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Instant;

use crate::junit::ReportLog;

use super::{Collected, Phase, Progress, Reporter, Stop, Submitted};

/// The merged view of a run's jobs.
pub(crate) struct Board<'a> {
    outer: &'a dyn Reporter,
    merge: bool,
    start: Instant,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    log: ReportLog,
    records: usize,
    session_started: bool,
    collectors: HashSet<String>,
    warnings: HashSet<String>,
    /// Each job's phase; `None` once it ended.
    phases: Vec<Option<Phase>>,
    /// Each job's own `SessionFinish` status.
    session_exits: Vec<Option<i32>>,
    /// Each job's remote project folder, once known.
    roots: Vec<Option<String>>,
    /// The folder every record names (the first one learnt).
    root: Option<String>,
    stopping: bool,
}

#[derive(serde::Deserialize)]
struct Head {
    #[serde(rename = "$report_type", default)]
    kind: String,
    #[serde(default)]
    nodeid: Option<String>,
    #[serde(default)]
    when: Option<String>,
    #[serde(default)]
    exitstatus: Option<i32>,
}

impl<'a> Board<'a> {
    pub fn new(outer: &'a dyn Reporter, jobs: usize, start: Instant) -> Self {
        Board {
            outer,
            merge: jobs > 1,
            start,
            state: Mutex::new(State {
                phases: vec![Some(Phase::Submitted); jobs],
                session_exits: vec![None; jobs],
                roots: vec![None; jobs],
                ..State::default()
            }),
        }
    }

    /// The reporter job `index` (0-based) reports to.
    pub fn view(&self, index: usize) -> ShardView<'_, 'a> {
        ShardView { board: self, index }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, index: usize, line: &str) {
        let mut s = self.lock();
        if self.merge
            && let Ok(head) = serde_json::from_str::<Head>(line)
        {
            let keep = match head.kind.as_str() {
                "SessionStart" => !std::mem::replace(&mut s.session_started, true),
                "SessionFinish" => {
                    if let Some(slot) = s.session_exits.get_mut(index) {
                        *slot = head.exitstatus.or(Some(0));
                    }
                    false
                }
                "CollectReport" => match head.nodeid {
                    Some(id) => s.collectors.insert(id),
                    None => true,
                },
                "WarningMessage" if head.when.as_deref() != Some("runtest") => {
                    s.warnings.insert(line.to_string())
                }
                _ => true,
            };
            if !keep {
                return;
            }
            if s.roots.get(index).is_some_and(Option::is_none)
                && let Some(root) = learn_root(line)
            {
                s.root.get_or_insert_with(|| root.clone());
                s.roots[index] = Some(root);
            }
            if let (Some(Some(mine)), Some(one)) = (s.roots.get(index), &s.root)
                && mine != one
            {
                let line = line.replace(mine.as_str(), one);
                return self.pass_on(&mut s, &line);
            }
        }
        self.pass_on(&mut s, line);
    }

    fn pass_on(&self, s: &mut State, line: &str) {
        s.records += 1;
        self.outer.record(line);
        if let Ok(done) = s.log.push_line(line) {
            for result in &done {
                self.outer.test_finished(result);
            }
        }
    }

    fn progress(&self, index: usize, progress: &Progress) {
        if !self.merge {
            self.outer.progress(progress);
            return;
        }
        let mut s = self.lock();
        if let Some(Some(phase)) = s.phases.get_mut(index) {
            *phase = progress.phase.clone();
        }
        self.emit(&s);
    }

    fn emit(&self, s: &State) {
        let active: Vec<&Phase> = s.phases.iter().flatten().collect();
        let phase = if let Some(Phase::Stopping(why)) =
            active.iter().find(|p| matches!(p, Phase::Stopping(_)))
        {
            Phase::Stopping(*why)
        } else if s.stopping {
            Phase::Stopping(Stop::Interrupted)
        } else if active.iter().any(|p| matches!(p, Phase::Running)) {
            Phase::Running
        } else if let Some(other) = active.iter().find(|p| matches!(p, Phase::Other(_))) {
            (*other).clone()
        } else if active.iter().any(|p| matches!(p, Phase::Queued)) {
            Phase::Queued
        } else {
            Phase::Submitted
        };
        self.outer.progress(&Progress {
            elapsed: self.start.elapsed(),
            phase,
            counts: s.log.counts(),
            jobs: s.phases.len(),
            active: active.len(),
        });
    }

    /// Job `index` has ended (its records may still be drained).
    pub fn ended(&self, index: usize) {
        if !self.merge {
            return;
        }
        let mut s = self.lock();
        if let Some(slot) = s.phases.get_mut(index) {
            *slot = None;
        }
        if s.phases.iter().any(Option::is_some) {
            self.emit(&s);
        }
    }

    /// Every record is in: writes the one `SessionFinish` of a merged run, and returns the
    /// merged log and how many records were passed on.
    pub fn finish(self) -> (ReportLog, usize) {
        let merge = self.merge;
        let mut s = self.state.into_inner().unwrap_or_else(|p| p.into_inner());
        if merge && let Some(status) = combined_session_exit(&s.session_exits) {
            let line = format!(r#"{{"exitstatus": {status}, "$report_type": "SessionFinish"}}"#);
            s.records += 1;
            self.outer.record(&line);
            let _ = s.log.push_line(&line);
        }
        (s.log, s.records)
    }

    /// Counts of the merged log so far.
    #[cfg(test)]
    fn counts(&self) -> crate::junit::Counts {
        self.lock().log.counts()
    }
}

/// A job's remote project folder, from a record whose skip or crash names an absolute path
/// that ends in the record's rootdir-relative file (`location[0]`).
fn learn_root(line: &str) -> Option<String> {
    if !line.contains("\"longrepr\": [") && !line.contains("\"reprcrash\"") {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Paths {
        #[serde(default)]
        location: Option<(String, serde::de::IgnoredAny, serde::de::IgnoredAny)>,
        #[serde(default)]
        longrepr: Option<serde_json::Value>,
    }
    let paths: Paths = serde_json::from_str(line).ok()?;
    let rel = paths.location?.0;
    let abs = match paths.longrepr? {
        serde_json::Value::Array(items) => items.first()?.as_str()?.to_owned(),
        serde_json::Value::Object(map) => map.get("reprcrash")?.get("path")?.as_str()?.to_owned(),
        _ => return None,
    };
    if rel.is_empty() || rel.starts_with('/') || !abs.starts_with('/') {
        return None;
    }
    let root = abs.strip_suffix(&rel)?.strip_suffix('/')?;
    (!root.is_empty()).then(|| root.to_owned())
}

/// The most serious of the shards' session statuses (internal error, usage error,
/// interrupted, failed, too many warnings, passed, nothing collected), `None` when no
/// session finished.
pub(crate) fn combined_session_exit(exits: &[Option<i32>]) -> Option<i32> {
    const ORDER: [i32; 7] = [3, 4, 2, 1, 6, 0, 5];
    let seen: Vec<i32> = exits.iter().flatten().copied().collect();
    if seen.is_empty() {
        return None;
    }
    ORDER
        .iter()
        .copied()
        .find(|c| seen.contains(c))
        .or_else(|| seen.iter().copied().max())
}

/// One job's reporter: its records and status go to the [`Board`].
pub(crate) struct ShardView<'b, 'a> {
    board: &'b Board<'a>,
    index: usize,
}

impl Reporter for ShardView<'_, '_> {
    fn collected(&self, c: &Collected) {
        self.board.outer.collected(c);
    }
    fn note(&self, message: &str) {
        self.board.outer.note(message);
    }
    fn submitted(&self, submitted: &Submitted) {
        self.board.outer.submitted(submitted);
    }
    fn progress(&self, progress: &Progress) {
        self.board.progress(self.index, progress);
    }
    fn record(&self, line: &str) {
        self.board.record(self.index, line);
    }
    /// Finished tests come from the merged log instead.
    fn test_finished(&self, _result: &crate::junit::TestResult) {}
    fn stopping(&self, why: Stop) {
        if !self.board.merge {
            self.board.outer.stopping(why);
            return;
        }
        let first = {
            let mut s = self.board.lock();
            !std::mem::replace(&mut s.stopping, true)
        };
        if first {
            self.board.outer.stopping(why);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Seen {
        records: Mutex<Vec<String>>,
        finished: Mutex<Vec<String>>,
    }

    impl Reporter for Seen {
        fn record(&self, line: &str) {
            self.records.lock().unwrap().push(line.to_string());
        }
        fn test_finished(&self, r: &crate::junit::TestResult) {
            self.finished.lock().unwrap().push(r.nodeid.clone());
        }
    }

    fn test(id: &str, when: &str) -> String {
        format!(
            r#"{{"nodeid": "{id}", "outcome": "passed", "when": "{when}", "longrepr": null, "$report_type": "TestReport"}}"#
        )
    }

    const START: &str = r#"{"pytest_version": "9.2.0", "$report_type": "SessionStart"}"#;
    const COLLECT: &str = r#"{"nodeid": "t_bad.py", "outcome": "failed", "longrepr": "boom", "result": null, "$report_type": "CollectReport"}"#;
    const CONFIG_WARNING: &str = r#"{"category": "PytestConfigWarning", "filename": "x", "lineno": 1, "message": "m", "$report_type": "WarningMessage", "when": "config", "location": null}"#;
    const TEST_WARNING: &str = r#"{"category": "UserWarning", "filename": "x", "lineno": 1, "message": "m", "$report_type": "WarningMessage", "when": "runtest", "location": ["t.py", 1, "t"]}"#;

    fn finish(status: i32) -> String {
        format!(r#"{{"exitstatus": {status}, "$report_type": "SessionFinish"}}"#)
    }

    #[test]
    fn shards_stream_as_one_session() {
        let seen = Seen::default();
        let board = Board::new(&seen, 2, Instant::now());
        let (a, b) = (board.view(0), board.view(1));
        for (view, line) in [
            (&a, START.to_string()),
            (&b, START.to_string()),
            (&a, CONFIG_WARNING.to_string()),
            (&b, CONFIG_WARNING.to_string()),
            (&a, COLLECT.to_string()),
            (&b, COLLECT.to_string()),
            (&a, test("t.py::a", "setup")),
            (&b, test("t.py::b", "setup")),
            (&b, test("t.py::b", "call")),
            (&a, TEST_WARNING.to_string()),
            (&b, TEST_WARNING.to_string()),
            (&b, test("t.py::b", "teardown")),
            (&b, finish(0)),
            (&a, test("t.py::a", "call")),
            (&a, test("t.py::a", "teardown")),
            (&a, finish(1)),
        ] {
            view.record(&line);
        }
        assert_eq!(board.counts().passed, 2);
        let (log, records) = board.finish();
        let got = seen.records.lock().unwrap().clone();
        assert_eq!(records, got.len());
        assert_eq!(
            got,
            vec![
                START.to_string(),
                CONFIG_WARNING.to_string(),
                COLLECT.to_string(),
                test("t.py::a", "setup"),
                test("t.py::b", "setup"),
                test("t.py::b", "call"),
                TEST_WARNING.to_string(),
                TEST_WARNING.to_string(),
                test("t.py::b", "teardown"),
                test("t.py::a", "call"),
                test("t.py::a", "teardown"),
                finish(1),
            ]
        );
        // Finished in the order they finished.
        assert_eq!(
            *seen.finished.lock().unwrap(),
            ["t_bad.py", "t.py::b", "t.py::a"]
        );
        assert_eq!(log.exit_status(), Some(1));
    }

    #[test]
    fn every_shard_names_the_first_shards_project_folder() {
        let skip = |root: &str, id: &str| {
            format!(
                r#"{{"nodeid": "{id}", "location": ["tests/t.py", 3, "x"], "outcome": "skipped", "longrepr": ["{root}/tests/t.py", 4, "Skipped: no"], "when": "setup", "sections": [["Captured stdout setup", "in {root}"]], "$report_type": "TestReport"}}"#
            )
        };
        let seen = Seen::default();
        let board = Board::new(&seen, 2, Instant::now());
        board
            .view(1)
            .record(&skip("/tmp/fr-b/project", "tests/t.py::a"));
        board
            .view(0)
            .record(&skip("/tmp/fr-a/project", "tests/t.py::b"));
        board
            .view(0)
            .record(&skip("/tmp/fr-a/project", "tests/t.py::c"));
        assert_eq!(
            *seen.records.lock().unwrap(),
            [
                skip("/tmp/fr-b/project", "tests/t.py::a"),
                skip("/tmp/fr-b/project", "tests/t.py::b"),
                skip("/tmp/fr-b/project", "tests/t.py::c"),
            ]
        );
        // One job: nothing is rewritten.
        let seen = Seen::default();
        let board = Board::new(&seen, 1, Instant::now());
        board
            .view(0)
            .record(&skip("/tmp/fr-a/project", "tests/t.py::b"));
        assert_eq!(
            *seen.records.lock().unwrap(),
            [skip("/tmp/fr-a/project", "tests/t.py::b")]
        );
    }

    #[test]
    fn one_job_passes_every_line_unchanged() {
        let seen = Seen::default();
        let board = Board::new(&seen, 1, Instant::now());
        let v = board.view(0);
        let lines = [
            START.to_string(),
            COLLECT.to_string(),
            CONFIG_WARNING.to_string(),
            finish(2),
        ];
        for l in &lines {
            v.record(l);
        }
        let _ = board.finish();
        assert_eq!(*seen.records.lock().unwrap(), lines);
    }

    #[test]
    fn no_finished_session_no_session_finish() {
        let seen = Seen::default();
        let board = Board::new(&seen, 2, Instant::now());
        board.view(0).record(START);
        let _ = board.finish();
        assert_eq!(*seen.records.lock().unwrap(), [START.to_string()]);
    }

    #[test]
    fn the_most_serious_session_status_wins() {
        assert_eq!(combined_session_exit(&[None, None]), None);
        assert_eq!(combined_session_exit(&[Some(0), Some(1)]), Some(1));
        assert_eq!(combined_session_exit(&[Some(5), Some(0)]), Some(0));
        assert_eq!(combined_session_exit(&[Some(5), None]), Some(5));
        assert_eq!(combined_session_exit(&[Some(1), Some(2)]), Some(2));
        assert_eq!(combined_session_exit(&[Some(2), Some(3)]), Some(3));
    }
}
