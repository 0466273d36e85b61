//! Turns what the jobs left into outcomes: one job's results mapped onto its ids (report
//! log first, junit XML only when the log is missing), the shards' results merged into one
//! run, and pytest's exit status for each.

use super::*;

/// One job's results mapped onto its ids: the report log, else junit.xml; missing ids are
/// errors, except after the remote session stopped on purpose (-x, --maxfail), when they
/// simply did not run. Also returns the ids that were expected to have a result.
pub(super) async fn map_job(
    dfs: &DfsClient,
    layout: &Layout,
    ids: &[String],
    end: &JobEnd,
    status: Option<&RemoteStatus>,
    live: &Live,
    notes: &mut Vec<String>,
) -> Result<(Option<Mapping>, Option<ResultSource>, Vec<String>), RunError> {
    let stopped_early = status
        .and_then(|s| s.session.as_ref())
        .is_some_and(|s| s.shouldfail || s.shouldstop);
    let expected: Vec<String> = if stopped_early {
        ids.iter()
            .filter(|id| live.seen.contains(*id))
            .cloned()
            .collect()
    } else {
        ids.to_vec()
    };
    let interrupted = matches!(end, JobEnd::Stopped { .. });
    if live.records > 0 {
        let m = live.log.finish(Some(&expected), &MapOptions::default());
        return Ok((Some(m), Some(ResultSource::ReportLog), expected));
    }
    if matches!(end, JobEnd::Error { .. }) {
        return Ok((None, None, expected));
    }
    let (mapping, source) = match live::read_optional(dfs, &layout.run_file(layout::JUNIT)?).await {
        Ok(Some(xml)) => match junit::parse(&xml) {
            Ok(doc) => {
                let m = junit::map(&doc, Some(&expected));
                notes.push("the report log was missing: results come from junit.xml".into());
                notes.extend(m.notes());
                (Some(m), Some(ResultSource::Junit))
            }
            Err(e) => {
                notes.push(format!("the run's junit.xml is unusable: {e}"));
                (None, None)
            }
        },
        _ if interrupted => (
            Some(live.log.finish(Some(&expected), &MapOptions::default())),
            Some(ResultSource::ReportLog),
        ),
        _ => (None, None),
    };
    Ok((mapping, source, expected))
}

/// Why a shard's tests have no results: its job's failure, in one sentence (`None` when it
/// ran, or when the run was stopped).
fn shard_failure(end: &JobEnd, status: Option<&RemoteStatus>) -> Option<String> {
    let status_error = status.and_then(|s| {
        s.error.as_ref().map(|e| match &s.stage {
            Some(stage) => format!("the remote run stopped at `{stage}`: {e}"),
            None => e.clone(),
        })
    });
    match end {
        JobEnd::Stopped { .. } => None,
        JobEnd::Error { reason } => Some(reason.clone()),
        JobEnd::Finished { state, reason } => match state {
            TerminalState::Completed => status_error.or_else(|| {
                status.is_none().then(|| {
                    "the job wrote no status.json (the remote entry point did not finish)"
                        .to_string()
                })
            }),
            TerminalState::Failed => Some(format!(
                "the job failed: {}",
                status_error
                    .or_else(|| reason.clone())
                    .unwrap_or_else(|| "the service gave no failure reason".into())
            )),
            other => Some(
                reason
                    .clone()
                    .unwrap_or_else(|| other.meaning().to_string()),
            ),
        },
    }
}

/// Ranks job ends from the most to the least serious, for the run's combined end.
pub(super) fn end_rank(end: &JobEnd) -> u8 {
    match end {
        JobEnd::Stopped { state: None, .. } => 0,
        JobEnd::Stopped { .. } => 1,
        JobEnd::Finished {
            state: TerminalState::Failed,
            ..
        } => 2,
        JobEnd::Error { .. } => 3,
        JobEnd::Finished {
            state: TerminalState::Deduped,
            ..
        } => 4,
        JobEnd::Finished {
            state: TerminalState::Cancelled,
            ..
        } => 5,
        JobEnd::Finished {
            state: TerminalState::Completed,
            ..
        } => 6,
    }
}

/// The exit status of a sharded run: stopped (2), then a shard's infrastructure failure
/// (3), usage error (4) or remote interruption (2), then the merged results' own status.
pub fn combined_exit_code(shards: &[ShardRun], mapping: &Mapping) -> u8 {
    if shards.iter().any(|s| {
        matches!(
            s.end,
            JobEnd::Stopped { .. }
                | JobEnd::Finished {
                    state: TerminalState::Cancelled,
                    ..
                }
        )
    }) {
        return 2;
    }
    for code in [3, 4, 2] {
        if shards.iter().any(|s| s.exit_code == code) {
            return code;
        }
    }
    match mapping.exit_code() {
        0 => shards
            .iter()
            .map(|s| s.exit_code)
            .find(|c| matches!(c, 1 | 6))
            .unwrap_or(0),
        m => m,
    }
}

/// The shards' results as one run: the merged report log mapped onto the whole selection
/// in its order, with a failed shard's tests as errors naming its job's failure.
pub(super) async fn combine_shards(
    dfs: &DfsClient,
    jobs: &[JobPlan],
    split: &Split,
    followed: Vec<Followed>,
    merged: junit::ReportLog,
    verbose: i32,
    ids: &[String],
) -> Result<RemoteRun, RunError> {
    let mut shards = Vec::with_capacity(jobs.len());
    let mut notes = Vec::new();
    let mut expected_set = std::collections::HashSet::new();
    let mut from_junit: Vec<Mapping> = Vec::new();
    let mut first_submitted = None;
    for ((job, f), estimate) in jobs.iter().zip(followed).zip(&split.estimates) {
        let mut shard_notes = f.notes;
        let (mapping, source, expected) = map_job(
            dfs,
            &job.layout,
            &job.ids,
            &f.end,
            f.status.as_ref(),
            &f.live,
            &mut shard_notes,
        )
        .await?;
        let prefix = format!("shard {}/{}: ", job.id.index, job.id.of);
        notes.extend(shard_notes.into_iter().map(|n| format!("{prefix}{n}")));
        expected_set.extend(expected);
        let exit_code = exit_code(&f.end, f.status.as_ref(), mapping.as_ref());
        let session_seconds = match source {
            Some(ResultSource::ReportLog) => mapping.as_ref().and_then(|m| m.duration),
            _ => None,
        };
        if let (Some(m), Some(ResultSource::Junit)) = (mapping, source) {
            from_junit.push(m);
        }
        if first_submitted.is_none() {
            first_submitted = f.submitted.clone();
        }
        shards.push(ShardRun {
            id: job.id,
            sjd_name: job.sjd_name.clone(),
            ids: job.ids.clone(),
            estimate: *estimate,
            failure: shard_failure(&f.end, f.status.as_ref()),
            submitted: f.submitted,
            end: f.end,
            job_elapsed: f.job_elapsed,
            status: f.status,
            session_seconds,
            exit_code,
        });
    }
    let expected: Vec<String> = ids
        .iter()
        .filter(|id| expected_set.contains(*id))
        .cloned()
        .collect();
    let mut mapping = merged.finish(Some(&expected), &MapOptions::default());
    // A shard whose report log was missing: its junit results fill its gaps.
    for m in from_junit {
        let mut found: std::collections::HashMap<String, TestResult> = m
            .results
            .into_iter()
            .filter(|r| !r.missing)
            .map(|r| (r.nodeid.clone(), r))
            .collect();
        for r in mapping.results.iter_mut().filter(|r| r.missing) {
            if let Some(x) = found.remove(&r.nodeid) {
                *r = x;
            }
        }
    }
    // A failed shard's tests name its failure.
    let owner: std::collections::HashMap<&str, usize> = shards
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.ids.iter().map(move |id| (id.as_str(), i)))
        .collect();
    for r in mapping.results.iter_mut().filter(|r| r.missing) {
        let Some(shard) = owner.get(r.nodeid.as_str()).map(|&i| &shards[i]) else {
            continue;
        };
        if let (Some(why), Some(report)) = (&shard.failure, r.reports.first_mut())
            && report.outcome == Outcome::Error
        {
            report.message = Some(format!(
                "no result: the job of shard {}/{} (`{}`) failed: {why}",
                shard.id.index, shard.id.of, shard.sjd_name
            ));
        }
    }
    let exit_code = combined_exit_code(&shards, &mapping);
    let worst = shards
        .iter()
        .min_by_key(|s| end_rank(&s.end))
        .map(|s| (s.end.clone(), s.status.clone()));
    let (end, status) = worst.unwrap_or((
        JobEnd::Error {
            reason: "no shard ran".into(),
        },
        None,
    ));
    let submitted = first_submitted.ok_or(RunError::Interrupted)?;
    Ok(RemoteRun {
        run_folder: submitted.run_folder.clone(),
        submitted,
        end,
        job_elapsed: shards
            .iter()
            .map(|s| s.job_elapsed)
            .max()
            .unwrap_or_default(),
        status,
        mapping: Some(mapping),
        source: Some(ResultSource::ReportLog),
        verbose,
        exit_code,
        notes,
        shards,
    })
}

/// pytest's exit status for the run: the job's fate first (2 interrupted, 3 infrastructure),
/// then the remote session's own status (2, 3, 4 pass through), then the mapped results.
pub fn exit_code(end: &JobEnd, status: Option<&RemoteStatus>, mapping: Option<&Mapping>) -> u8 {
    match end {
        JobEnd::Stopped { .. }
        | JobEnd::Finished {
            state: TerminalState::Cancelled,
            ..
        } => 2,
        JobEnd::Finished {
            state: TerminalState::Failed | TerminalState::Deduped,
            ..
        }
        | JobEnd::Error { .. } => 3,
        JobEnd::Finished {
            state: TerminalState::Completed,
            ..
        } => {
            let Some(remote) = status.and_then(|s| s.pytest_exit_code) else {
                return 3;
            };
            let mapped = mapping.map(Mapping::exit_code).unwrap_or(3);
            match remote {
                2..=4 => remote as u8,
                _ if status.is_some_and(|s| s.session.is_none()) => 3,
                1 | 6 if mapped == 0 => remote as u8,
                _ => mapped,
            }
        }
    }
}
