//! Follows one submitted job: polls it, turns each poll into a status line for the
//! [`Reporter`], reads the report log's chunk files while it runs, and cancels it on an
//! interrupt or at the timeout (waiting, bounded, for it to stop).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::*;

/// Forwards polls to the reporter as status lines.
struct Polls<'a> {
    reporter: &'a dyn Reporter,
    phase: &'a Mutex<Phase>,
    live: &'a Mutex<Live>,
    start: Instant,
}

impl Polls<'_> {
    fn emit(&self) {
        let phase = self
            .phase
            .lock()
            .map(|p| p.clone())
            .unwrap_or(Phase::Running);
        let counts = self.live.lock().map(|l| l.log.counts()).unwrap_or_default();
        self.reporter.progress(&Progress {
            elapsed: self.start.elapsed(),
            phase,
            counts,
            jobs: 1,
            active: 1,
        });
    }
}

impl JobReporter for Polls<'_> {
    fn polled(&mut self, record: &PollRecord<'_>) {
        let next = match record.poll {
            JobPoll::Status(instance) => match &instance.status {
                Some(JobStatus::NotStarted) => Some(Phase::Queued),
                Some(JobStatus::InProgress) => Some(Phase::Running),
                Some(JobStatus::Other(s)) => Some(Phase::Other(s.clone())),
                _ => None,
            },
            JobPoll::NotVisibleYet => Some(Phase::Submitted),
            _ => None,
        };
        if let (Some(next), Ok(mut phase)) = (next, self.phase.lock())
            && !matches!(*phase, Phase::Stopping(_))
        {
            *phase = next;
        }
        self.emit();
    }
}

/// Waits for the job while reading its report log; cancels it on interrupt or timeout.
#[allow(clippy::too_many_arguments)]
pub(super) async fn follow(
    settings: &RunSettings,
    dfs: &DfsClient,
    fabric: &FabricClient,
    layout: &Layout,
    submission: &JobSubmission,
    reporter: &dyn Reporter,
    interrupts: &mut watch::Receiver<u32>,
    live: &Mutex<Live>,
) -> Result<(JobEnd, Duration), RunError> {
    let phase = Mutex::new(Phase::Submitted);
    let mut polls = Polls {
        reporter,
        phase: &phase,
        live,
        start: submission.submitted_at,
    };
    let watch = async {
        loop {
            tokio::time::sleep(settings.live_interval).await;
            if let Ok(true) = live::poll(dfs, layout, live, reporter).await {
                // Records arriving prove the job runs, whatever the last poll said.
                if let Ok(mut p) = phase.lock()
                    && matches!(*p, Phase::Submitted | Phase::Queued)
                {
                    *p = Phase::Running;
                }
                Polls {
                    reporter,
                    phase: &phase,
                    live,
                    start: submission.submitted_at,
                }
                .emit();
            }
        }
    };
    tokio::pin!(watch);

    enum Waited {
        Done(Box<Result<crate::fabric::JobOutcome, FabricError>>),
        Stop(Stop),
    }
    let waited = {
        let wait = fabric.wait_for_job(submission, settings.timeout, &mut polls);
        tokio::select! {
            r = wait => Waited::Done(Box::new(r)),
            _ = &mut watch => unreachable!("the watch loop never ends"),
            _ = next_interrupt(interrupts) => Waited::Stop(Stop::Interrupted),
        }
    };
    let why = match waited {
        Waited::Done(done) => match *done {
            Ok(outcome) => {
                let reason = outcome.failure_message();
                return Ok((
                    JobEnd::Finished {
                        state: outcome.state,
                        reason,
                    },
                    outcome.elapsed,
                ));
            }
            Err(FabricError::JobTimeout { .. }) => Stop::TimedOut,
            Err(e) => {
                // The job may still be running: do not leave it behind (best effort).
                if fabric.cancel_job(submission).await.is_ok() {
                    reporter.note("the job could no longer be followed, so it was cancelled");
                }
                return Err(e.into());
            }
        },
        Waited::Stop(why) => why,
    };

    // Cancel, then wait (bounded) for the job to stop while still reading results.
    reporter.stopping(why);
    if let Ok(mut p) = phase.lock() {
        *p = Phase::Stopping(why);
    }
    let state = match fabric.cancel_job(submission).await {
        Ok(CancelOutcome::AlreadyCompleted) | Ok(CancelOutcome::Requested) => {
            let follow = JobSubmission::existing(submission.job.clone());
            let wait = fabric.wait_for_job(&follow, Some(settings.cancel_wait), &mut polls);
            tokio::select! {
                r = wait => r.ok().map(|o| o.state),
                _ = &mut watch => unreachable!("the watch loop never ends"),
                _ = next_interrupt(interrupts) => None,
            }
        }
        Err(e) => {
            reporter.note(&format!("could not cancel the job: {e}"));
            None
        }
    };
    Ok((
        JobEnd::Stopped { why, state },
        submission.submitted_at.elapsed(),
    ))
}

/// The next interrupt (never, once the sender is gone).
pub(super) async fn next_interrupt(interrupts: &mut watch::Receiver<u32>) {
    if interrupts.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}
