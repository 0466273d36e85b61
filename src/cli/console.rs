//! The terminal side shared by `run`, `demo` and `job`: durations, the
//! `[m:ss] Running... 41 passed, 2 failed` status lines, the pytest-style results of a remote
//! run, `--stream-reports`' JSON lines, and Ctrl-C / SIGTERM as a count.
//!
//! On a terminal the status line is redrawn in place; otherwise a line is printed when the
//! job's state changes, when the counts changed and 5 s have passed, and every 30 s. A write
//! to a closed pipe is not an error (`| head`).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fabric_remote::fabric::{
    JobPoll, JobReporter, JobStatus, PollRecord, SjdAction, TerminalState,
};
use fabric_remote::junit::{self, Counts, TestResult};
use fabric_remote::run::{
    self, Collected, JobEnd, Phase, Progress, RemoteRun, RunOutcome, Stop, Submitted,
};
use fabric_remote::secret::redact;
use fabric_remote::sync;

use tokio::sync::watch;

use super::ExitStatus;

/// `2m15s`, `45s`, `1h02m`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// `[m:ss]`
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("[{}:{:02}]", s / 60, s % 60)
}

/// `name`, quoted for a shell when it needs to be.
pub fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Writes to stdout or stderr, ignoring a closed pipe. Text from outside (failure reasons,
/// pip's output, notes) goes through [`redact`] first.
fn emit(to_stderr: bool, text: &str) {
    if to_stderr {
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(text.as_bytes());
        let _ = e.flush();
    } else {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(text.as_bytes());
        let _ = o.flush();
    }
}

/// Decides when a status line is due (off a terminal).
#[derive(Default)]
struct Pace {
    last: Option<(String, String, Instant)>,
}

impl Pace {
    fn due(&mut self, label: &str, counts: &str) -> bool {
        let now = Instant::now();
        let due = match &self.last {
            None => true,
            Some((l, c, at)) => {
                let since = now.duration_since(*at);
                l != label
                    || (c != counts && since >= Duration::from_secs(5))
                    || since >= Duration::from_secs(30)
            }
        };
        if due {
            self.last = Some((label.to_string(), counts.to_string(), now));
        }
        due
    }
}

/// `[m:ss] Running...` lines for `job run --wait` and `job cancel`.
pub struct StatusLines {
    start: Instant,
    pace: Pace,
}

impl StatusLines {
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            pace: Pace::default(),
        }
    }
}

impl JobReporter for StatusLines {
    fn polled(&mut self, record: &PollRecord<'_>) {
        let label = match record.poll {
            JobPoll::Status(instance) => match &instance.status {
                Some(JobStatus::NotStarted) => "Queued".to_string(),
                Some(JobStatus::InProgress) => "Running".to_string(),
                Some(JobStatus::Other(s)) => {
                    format!("{s} (a status fabric-remote does not know; still waiting)")
                }
                _ => return,
            },
            JobPoll::NotVisibleYet => "Submitted".to_string(),
            _ => return,
        };
        if self.pace.due(&label, "") {
            emit(
                false,
                &format!("{} {label}...\n", clock(self.start.elapsed())),
            );
        }
    }
}

fn phase_label(phase: &Phase) -> String {
    match phase {
        Phase::Submitted => "Submitted".into(),
        Phase::Queued => "Queued".into(),
        Phase::Running => "Running".into(),
        Phase::Other(s) => format!("{s} (a status fabric-remote does not know; still waiting)"),
        Phase::Stopping(Stop::Interrupted) => "Cancelling".into(),
        Phase::Stopping(Stop::TimedOut) => "Timed out, cancelling".into(),
    }
}

fn counts_text(c: &Counts) -> String {
    c.parts().join(", ")
}

/// Draws a remote run: the flow's lines, status lines, live `-v` lines, the results.
pub struct RunConsole {
    /// `--stream-reports`: records on stdout, everything for people on stderr.
    stream: bool,
    /// Redraw the status line in place.
    tty: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    verbose: i32,
    pace: Pace,
    /// A status line is drawn (terminal only) and must be cleared before other output.
    drawn: Option<String>,
    /// `-v` lines already printed while the job ran.
    printed: Vec<String>,
    job: Option<Submitted>,
}

impl RunConsole {
    pub fn new(stream: bool) -> Self {
        let tty = if stream {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        };
        Self {
            stream,
            tty,
            state: Mutex::new(State::default()),
        }
    }

    /// A line for people (stdout, or stderr in stream mode), keeping the status line below it.
    fn line(&self, text: &str) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.line_locked(&mut state, text);
    }

    fn line_locked(&self, state: &mut State, text: &str) {
        let mut out = String::new();
        if state.drawn.is_some() {
            out.push_str("\r\x1b[2K");
        }
        out.push_str(text);
        out.push('\n');
        if let Some(status) = &state.drawn {
            out.push_str(status);
        }
        emit(self.stream, &out);
    }

    fn clear_status(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.drawn.take().is_some() {
            emit(self.stream, "\r\x1b[2K");
        }
    }

    pub fn note(&self, text: &str) {
        self.clear_status();
        emit(true, &redact(&format!("note: {text}\n")));
    }

    /// Prints the end of the run and returns its exit status.
    pub fn finish(&self, outcome: &RunOutcome) -> ExitStatus {
        self.clear_status();
        let code = outcome.exit_code();
        match outcome {
            RunOutcome::NotRun(c) => self.not_run(c),
            RunOutcome::Ran(r) => self.ran(r),
        }
        if self.stream {
            self.finish_record(outcome, None);
        }
        ExitStatus::Code(code)
    }

    /// In stream mode, the closing record for a run that failed before or without a job.
    pub fn finish_error(&self, exit: u8, message: &str) {
        if self.stream {
            let job = self.state.lock().ok().and_then(|s| s.job.clone());
            let record = serde_json::json!({
                "$report_type": "FabricRemoteFinish",
                "exitstatus": exit,
                "job_state": null,
                "failure_reason": message,
                "job_url": job.as_ref().map(|j| j.job_url.clone()),
                "run_id": job.as_ref().map(|j| j.run_id.clone()),
            });
            emit(false, &format!("{record}\n"));
        }
    }

    fn finish_record(&self, outcome: &RunOutcome, _unused: Option<()>) {
        let record = match outcome {
            RunOutcome::NotRun(c) => serde_json::json!({
                "$report_type": "FabricRemoteFinish",
                "exitstatus": outcome.exit_code(),
                "job_state": null,
                "failure_reason": format!("local collection ended with pytest exit status {}", c.exit_code),
                "job_url": null,
                "run_id": null,
            }),
            RunOutcome::Ran(r) => {
                let (state, stopped) = match &r.end {
                    JobEnd::Finished { state, .. } => (Some(state.as_str()), None),
                    JobEnd::Stopped { why, state } => (
                        state.map(TerminalState::as_str),
                        Some(match why {
                            Stop::Interrupted => "interrupted",
                            Stop::TimedOut => "timeout",
                        }),
                    ),
                };
                serde_json::json!({
                    "$report_type": "FabricRemoteFinish",
                    "exitstatus": r.exit_code,
                    "job_state": state,
                    "failure_reason": failure_reason(r),
                    "job_url": r.submitted.job_url,
                    "run_id": r.submitted.run_id,
                    "job_id": r.submitted.job.job_id,
                    "stopped": stopped,
                })
            }
        };
        emit(false, &format!("{record}\n"));
    }

    fn not_run(&self, c: &Collected) {
        // pytest's own words: collection errors, usage errors, "no tests ran".
        emit(self.stream, &c.output);
        if !c.output.ends_with('\n') && !c.output.is_empty() {
            emit(self.stream, "\n");
        }
        if c.exit_code == 0 {
            self.line("Nothing selected: no remote run.");
        }
    }

    fn ran(&self, r: &RemoteRun) {
        let took = human(r.job_elapsed);
        let job = &r.submitted.job;
        match &r.end {
            JobEnd::Finished { state, reason } => match state {
                TerminalState::Completed => self.line(&format!("Completed ({took})")),
                TerminalState::Failed => self.line(&redact(&format!(
                    "Failed ({took}): {}",
                    reason
                        .as_deref()
                        .unwrap_or("the service gave no failure reason")
                ))),
                TerminalState::Cancelled => self.line(&format!(
                    "Cancelled ({took}): the job was cancelled before it finished (not by this run)"
                )),
                TerminalState::Deduped => self.line(&format!(
                    "Deduped: not run: another run of Spark job definition `{}` was already active",
                    job.item_name
                )),
            },
            JobEnd::Stopped { state, .. } => match state {
                Some(s) => self.line(&format!("{} ({took})", s.as_str())),
                None => self.line(&format!(
                    "Stopped waiting: job {} may still be stopping",
                    job.job_id
                )),
            },
        }
        if let Some(status) = &r.status
            && let Some(error) = &status.error
        {
            let stage = status.stage.as_deref().unwrap_or("pytest");
            emit(
                true,
                &format!("error: the remote run stopped at `{stage}`: {error}\n"),
            );
            if let Some(detail) = status.detail.as_deref().filter(|d| !d.trim().is_empty()) {
                let mut text = String::new();
                for line in detail.lines() {
                    text.push_str("  | ");
                    text.push_str(line);
                    text.push('\n');
                }
                emit(true, &redact(&text));
            }
        }
        if !self.stream
            && let Some(mapping) = &r.mapping
        {
            let text = junit::render_text(mapping);
            let printed = self
                .state
                .lock()
                .map(|s| s.printed.clone())
                .unwrap_or_default();
            let text = without_printed(&text, &printed);
            emit(false, &format!("\n{}", text.trim_start_matches('\n')));
        }
        for note in &r.notes {
            emit(true, &redact(&format!("note: {note}\n")));
        }
        let hint_logs = || {
            emit(
                true,
                &format!(
                    "hint: `fabric-remote job logs {} --sjd {}` shows the driver's output\n",
                    job.job_id,
                    shell_word(&job.item_name)
                ),
            )
        };
        match &r.end {
            JobEnd::Finished {
                state: TerminalState::Deduped,
                ..
            } => emit(
                true,
                &format!(
                    "hint: wait for the other run to finish (`fabric-remote job list`, then `job status`/`job cancel` with --sjd {0}), or use another Spark job definition for this run: --sjd NAME or FABRIC_TEST_SPARK_JOB_NAME\n",
                    shell_word(&job.item_name)
                ),
            ),
            JobEnd::Finished {
                state: TerminalState::Failed,
                ..
            } => hint_logs(),
            JobEnd::Finished {
                state: TerminalState::Completed,
                ..
            } if r.exit_code == 3 => hint_logs(),
            _ => {}
        }
        if !self.stream {
            emit(
                true,
                &format!("Remote run folder: {}\n", r.submitted.run_folder),
            );
        }
    }
}

/// The failure reason of the closing record: the job's, the remote entry point's, or why
/// the run was stopped.
fn failure_reason(r: &RemoteRun) -> Option<String> {
    let status_error = r.status.as_ref().and_then(|s| s.error.clone());
    match &r.end {
        JobEnd::Finished { reason, state } => match state {
            TerminalState::Completed => status_error,
            TerminalState::Deduped => Some(
                reason
                    .clone()
                    .unwrap_or_else(|| TerminalState::Deduped.meaning().to_string()),
            ),
            _ => status_error
                .or_else(|| reason.clone())
                .or_else(|| Some(state.meaning().to_string())),
        },
        JobEnd::Stopped { why, .. } => Some(match why {
            Stop::Interrupted => "interrupted: the job was cancelled".to_string(),
            Stop::TimedOut => "the timeout passed: the job was cancelled".to_string(),
        }),
    }
}

/// `text` without the `-v` lines already printed live (taken from its first block, each
/// once).
fn without_printed(text: &str, printed: &[String]) -> String {
    if printed.is_empty() {
        return text.to_string();
    }
    let mut left: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for p in printed {
        for line in p.lines() {
            *left.entry(line).or_default() += 1;
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut in_block = true;
    for line in text.lines() {
        if in_block && (line.starts_with('=') || line.starts_with('_')) {
            in_block = false;
        }
        if in_block && let Some(n) = left.get_mut(line).filter(|n| **n > 0) {
            *n -= 1;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

impl sync::Reporter for RunConsole {
    fn warning(&self, message: &str) {
        self.note(message);
    }
    fn failed(&self, path: &str, error: &str) {
        self.clear_status();
        emit(true, &format!("failed: {path}: {error}\n"));
    }
}

impl run::Reporter for RunConsole {
    fn collected(&self, c: &Collected) {
        if let Ok(mut s) = self.state.lock() {
            s.verbose = c.verbose;
        }
        let n = c.ids.len();
        self.line(&format!(
            "Collected {n} test{} locally with {}",
            if n == 1 { "" } else { "s" },
            c.python
        ));
    }

    fn note(&self, message: &str) {
        RunConsole::note(self, message);
    }

    fn sync_reporter(&self) -> &dyn sync::Reporter {
        self
    }

    fn synced(&self, summary: &sync::Summary) {
        self.line(&format!(
            "Synced the project: {} uploaded, {} deleted, {} unchanged ({:.1}s)",
            summary.uploaded,
            summary.deleted,
            summary.unchanged,
            summary.elapsed_ms as f64 / 1000.0
        ));
    }

    fn submitted(&self, s: &Submitted) {
        let verb = match s.sjd_action {
            SjdAction::Created => Some("Created"),
            SjdAction::Updated => Some("Updated"),
            SjdAction::Unchanged => None,
        };
        if let Some(verb) = verb {
            self.line(&format!(
                "{verb} Spark job definition `{}`",
                s.job.item_name
            ));
        }
        self.line(&format!("Job URL: {}", s.job_url));
        self.line(&format!("Run {} (job instance {})", s.run_id, s.job.job_id));
        if let Ok(mut state) = self.state.lock() {
            state.job = Some(s.clone());
        }
    }

    fn progress(&self, p: &Progress) {
        let label = phase_label(&p.phase);
        let counts = counts_text(&p.counts);
        let text = if counts.is_empty() {
            format!("{} {label}...", clock(p.elapsed))
        } else {
            format!("{} {label}... {counts}", clock(p.elapsed))
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if self.tty {
            emit(self.stream, &format!("\r\x1b[2K{text}"));
            state.drawn = Some(text);
        } else if state.pace.due(&label, &counts) {
            emit(self.stream, &format!("{text}\n"));
        }
    }

    fn record(&self, line: &str) {
        if self.stream {
            emit(false, &format!("{line}\n"));
        }
    }

    fn test_finished(&self, result: &TestResult) {
        if self.stream {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.verbose < 1 {
            return;
        }
        let line = junit::render_line(result);
        self.line_locked(&mut state, &line);
        state.printed.push(line);
    }

    fn stopping(&self, why: Stop) {
        let job = self
            .state
            .lock()
            .ok()
            .and_then(|s| s.job.as_ref().map(|j| j.job.job_id.clone()))
            .unwrap_or_default();
        self.clear_status();
        let what = match why {
            Stop::Interrupted => "Interrupted",
            Stop::TimedOut => "Timed out",
        };
        emit(
            true,
            &format!(
                "{what}: cancelling job {job} and waiting for it to stop (Ctrl-C again to stop waiting)\n"
            ),
        );
    }
}

/// Counts Ctrl-C and SIGTERM; the third exits at once.
pub fn interrupts() -> watch::Receiver<u32> {
    let (tx, rx) = watch::channel(0u32);
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            let got = tokio::select! {
                r = tokio::signal::ctrl_c() => r.is_ok(),
                _ = async {
                    match term.as_mut() {
                        Some(t) => { t.recv().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => true,
            };
            if !got {
                return;
            }
            tx.send_modify(|n| *n += 1);
            if *tx.borrow() >= 3 {
                eprintln!("Interrupted three times: exiting without waiting");
                std::process::exit(130);
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_words() {
        assert_eq!(human(Duration::from_secs(5)), "5s");
        assert_eq!(human(Duration::from_secs(135)), "2m15s");
        assert_eq!(human(Duration::from_secs(3720)), "1h02m");
        assert_eq!(clock(Duration::from_secs(135)), "[2:15]");
        assert_eq!(shell_word("dbt-fabric-tests"), "dbt-fabric-tests");
        assert_eq!(shell_word("my job"), "'my job'");
    }

    #[test]
    fn live_lines_are_not_printed_twice() {
        let text = "a.py::t PASSED\na.py::u FAILED\na.py::v ERROR (no result)\n=== FAILURES ===\na.py::t PASSED\n";
        let printed = vec!["a.py::t PASSED".to_string(), "a.py::u FAILED".to_string()];
        assert_eq!(
            without_printed(text, &printed),
            "a.py::v ERROR (no result)\n=== FAILURES ===\na.py::t PASSED\n"
        );
    }

    #[test]
    fn status_lines_come_on_change_and_on_a_heartbeat() {
        let mut pace = Pace::default();
        assert!(pace.due("Running", ""));
        assert!(!pace.due("Running", ""));
        assert!(!pace.due("Running", "1 passed"), "counts alone wait 5 s");
        assert!(pace.due("Cancelling", "1 passed"));
    }
}
