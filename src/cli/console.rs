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
    self, Basis, Collected, JobEnd, Phase, Progress, RemoteRun, RunOutcome, ShardRun, Split, Stop,
    Submitted,
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
    /// The submitted jobs (one per shard).
    jobs: Vec<Submitted>,
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
            let job = self.state.lock().ok().and_then(|s| s.jobs.first().cloned());
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
                let (state, stopped) = end_words(&r.end);
                let mut record = serde_json::json!({
                    "$report_type": "FabricRemoteFinish",
                    "exitstatus": r.exit_code,
                    "job_state": state,
                    "failure_reason": failure_reason(r),
                    "job_url": r.submitted.job_url,
                    "run_id": r.submitted.run_id,
                    "job_id": r.submitted.job.job_id,
                    "stopped": stopped,
                });
                if !r.shards.is_empty() {
                    let shards: Vec<serde_json::Value> =
                        r.shards.iter().map(shard_record).collect();
                    record["shards"] = serde_json::Value::Array(shards);
                }
                record
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
        if !r.shards.is_empty() {
            return self.ran_shards(r);
        }
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
            JobEnd::Error { reason } => self.line(&redact(&format!("Failed: {reason}"))),
        }
        if let Some(status) = &r.status {
            remote_error(status, "");
        }
        self.results(r);
        let hint_logs = || hint_logs(job);
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
            emit(true, &format!("Remote run folder: {}\n", r.run_folder));
        }
    }

    /// The merged results (not in stream mode), without the `-v` lines printed live; then
    /// the run's notes.
    fn results(&self, r: &RemoteRun) {
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
    }

    /// A sharded run: one line per shard, the remote errors, the merged results, hints.
    fn ran_shards(&self, r: &RemoteRun) {
        let completed = r.shards.iter().all(|s| {
            matches!(
                s.end,
                JobEnd::Finished {
                    state: TerminalState::Completed,
                    ..
                }
            )
        });
        if completed {
            self.line(&format!(
                "Completed {} jobs ({})",
                r.shards.len(),
                human(r.job_elapsed)
            ));
        }
        for shard in &r.shards {
            self.line(&redact(&shard_line(shard)));
        }
        for shard in &r.shards {
            if let Some(status) = &shard.status {
                remote_error(
                    status,
                    &format!("shard {}/{}: ", shard.id.index, shard.id.of),
                );
            }
        }
        self.results(r);
        for shard in &r.shards {
            let Some(job) = shard.submitted.as_ref().map(|s| &s.job) else {
                continue;
            };
            match &shard.end {
                JobEnd::Finished {
                    state: TerminalState::Deduped,
                    ..
                } => emit(
                    true,
                    &format!(
                        "hint: shard {}/{}: another run of `{}` was active; wait for it (`fabric-remote job list`, `job cancel --sjd {}`) or use another --sjd NAME\n",
                        shard.id.index,
                        shard.id.of,
                        job.item_name,
                        shell_word(&job.item_name)
                    ),
                ),
                JobEnd::Finished {
                    state: TerminalState::Failed,
                    ..
                } => hint_logs(job),
                JobEnd::Finished {
                    state: TerminalState::Completed,
                    ..
                } if shard.exit_code == 3 => hint_logs(job),
                _ => {}
            }
        }
        if !self.stream {
            emit(true, &format!("Remote run folder: {}\n", r.run_folder));
        }
    }
}

/// `hint: fabric-remote job logs …` for a job that failed.
fn hint_logs(job: &fabric_remote::fabric::JobRef) {
    emit(
        true,
        &format!(
            "hint: `fabric-remote job logs {} --sjd {}` shows the driver's output\n",
            job.job_id,
            shell_word(&job.item_name)
        ),
    );
}

/// `error: the remote run stopped at …` and the detail (pip's output…), when the entry
/// point could not run pytest.
fn remote_error(status: &run::RemoteStatus, prefix: &str) {
    let Some(error) = &status.error else {
        return;
    };
    let stage = status.stage.as_deref().unwrap_or("pytest");
    emit(
        true,
        &redact(&format!(
            "error: {prefix}the remote run stopped at `{stage}`: {error}\n"
        )),
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

/// `Shard 2/4 (`sjd-2`): Completed (13s), 50 tests ran in 10.21s`.
fn shard_line(s: &ShardRun) -> String {
    let head = format!("Shard {}/{} (`{}`)", s.id.index, s.id.of, s.sjd_name);
    let took = human(s.job_elapsed);
    let ran = |what: &str| match s.session_seconds {
        Some(secs) => format!(
            "{what}, {} test{} ran in {secs:.2}s",
            s.id.tests,
            if s.id.tests == 1 { "" } else { "s" }
        ),
        None => what.to_string(),
    };
    match &s.end {
        JobEnd::Finished { state, .. } => match (state, &s.failure) {
            (TerminalState::Completed, None) => {
                format!("{head}: {}", ran(&format!("Completed ({took})")))
            }
            (state, Some(why)) => format!("{head}: {} ({took}): {why}", state.as_str()),
            (state, None) => format!("{head}: {} ({took})", state.as_str()),
        },
        JobEnd::Stopped { state, .. } => match state {
            Some(state) => format!("{head}: {}", ran(&format!("{} ({took})", state.as_str()))),
            None => format!("{head}: stopped waiting; the job may still be stopping"),
        },
        JobEnd::Error { reason } => format!("{head}: not run: {reason}"),
    }
}

/// The closing record's entry for one shard.
fn shard_record(s: &ShardRun) -> serde_json::Value {
    let (state, stopped) = end_words(&s.end);
    serde_json::json!({
        "shard": s.id.index,
        "sjd": s.sjd_name,
        "exitstatus": s.exit_code,
        "job_state": state,
        "failure_reason": s.failure.as_deref().map(|f| redact(f).into_owned()),
        "job_url": s.submitted.as_ref().map(|x| x.job_url.clone()),
        "job_id": s.submitted.as_ref().map(|x| x.job.job_id.clone()),
        "stopped": stopped,
        "session_seconds": s.session_seconds,
        "nodeids": s.ids,
    })
}

/// `job_state` and `stopped` of a closing record.
fn end_words(end: &JobEnd) -> (Option<&'static str>, Option<&'static str>) {
    match end {
        JobEnd::Finished { state, .. } => (Some(state.as_str()), None),
        JobEnd::Stopped { why, state } => (
            state.map(TerminalState::as_str),
            Some(match why {
                Stop::Interrupted => "interrupted",
                Stop::TimedOut => "timeout",
            }),
        ),
        JobEnd::Error { .. } => (None, None),
    }
}

/// The failure reason of the closing record: the job's, the remote entry point's, or why
/// the run was stopped.
fn failure_reason(r: &RemoteRun) -> Option<String> {
    if !r.shards.is_empty() && !matches!(r.end, JobEnd::Stopped { .. }) {
        let failures: Vec<String> = r
            .shards
            .iter()
            .filter_map(|s| {
                s.failure.as_ref().map(|why| {
                    format!("shard {}/{} (`{}`): {why}", s.id.index, s.id.of, s.sjd_name)
                })
            })
            .collect();
        return (!failures.is_empty()).then(|| redact(&failures.join("; ")).into_owned());
    }
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
        JobEnd::Error { reason } => Some(reason.clone()),
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
        match s.shard {
            Some(shard) => self.line(&format!(
                "Run {} shard {}/{}: {} test{} on `{}` (job instance {})",
                s.run_id,
                shard.index,
                shard.of,
                shard.tests,
                if shard.tests == 1 { "" } else { "s" },
                s.job.item_name,
                s.job.job_id
            )),
            None => self.line(&format!("Run {} (job instance {})", s.run_id, s.job.job_id)),
        }
        if let Ok(mut state) = self.state.lock() {
            state.jobs.push(s.clone());
        }
    }

    fn sharded(&self, split: &Split) {
        let n: usize = split.shards.iter().map(Vec::len).sum();
        let sizes: Vec<String> = split.shards.iter().map(|s| s.len().to_string()).collect();
        let how = match split.basis {
            Basis::Durations => {
                let est: Vec<String> = split.estimates.iter().map(|e| format!("{e:.1}s")).collect();
                format!(
                    "by recorded durations: {} tests (about {})",
                    sizes.join(", "),
                    est.join(", ")
                )
            }
            Basis::Counts => format!(
                "by test counts (no durations recorded yet): {} tests",
                sizes.join(", ")
            ),
        };
        self.line(&format!(
            "Split {n} tests into {} shards {how}",
            split.shards.len()
        ));
    }

    fn progress(&self, p: &Progress) {
        let mut label = phase_label(&p.phase);
        if p.jobs > 1 {
            let s = if p.active == 1 { "" } else { "s" };
            label = format!("{label} {} job{s}", p.active);
        }
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
        let jobs: Vec<String> = self
            .state
            .lock()
            .map(|s| s.jobs.iter().map(|j| j.job.job_id.clone()).collect())
            .unwrap_or_default();
        self.clear_status();
        let what = match why {
            Stop::Interrupted => "Interrupted",
            Stop::TimedOut => "Timed out",
        };
        let text = match jobs.as_slice() {
            [one] => format!(
                "{what}: cancelling job {one} and waiting for it to stop (Ctrl-C again to stop waiting)\n"
            ),
            many => format!(
                "{what}: cancelling {} jobs and waiting for them to stop (Ctrl-C again to stop waiting)\n",
                many.len()
            ),
        };
        emit(true, &text);
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
