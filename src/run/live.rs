//! Reading a run's results while the job runs and once it has ended.
//!
//! The entry point closes a chunk file (`chunks/000001.jsonl`, …) of the report log every
//! few seconds; each listing of the run folder reads the chunks not seen yet, in order, and
//! feeds their lines to the report-log mapper and the [`Reporter`]. At the end, the whole
//! `report-log.jsonl` supplies whatever the chunks did not (its first lines are the ones
//! already read), so every record is passed on once, in order.

use std::collections::HashSet;
use std::sync::Mutex;

use bytes::Bytes;
use futures::StreamExt;

use super::layout::{self, Layout};
use super::{Reporter, RunError};
use crate::dfs::{DfsClient, DfsError};
use crate::junit::ReportLog;
use crate::location::RemoteLocation;

/// What has been read so far.
#[derive(Default)]
pub(crate) struct Live {
    pub log: ReportLog,
    /// Records (non-empty lines) passed on.
    pub records: usize,
    /// The next chunk number to read.
    next_chunk: u64,
    /// Node ids with at least one test report.
    pub seen: HashSet<String>,
    /// The entry point has written `status.json`: pytest is done.
    pub status_seen: bool,
}

#[derive(serde::Deserialize)]
struct Id {
    #[serde(rename = "$report_type", default)]
    kind: String,
    #[serde(default)]
    nodeid: Option<String>,
}

impl Live {
    pub fn new() -> Self {
        Self {
            next_chunk: 1,
            ..Self::default()
        }
    }

    /// Passes every complete line of `text` on, in order.
    pub fn consume(&mut self, text: &str, reporter: &dyn Reporter) {
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            self.records += 1;
            reporter.record(line);
            if let Ok(Id {
                kind,
                nodeid: Some(id),
            }) = serde_json::from_str::<Id>(line)
                && kind == "TestReport"
                && !self.seen.contains(&id)
            {
                self.seen.insert(id);
            }
            // A line that is not a record is counted by the mapper and named in its remarks.
            if let Ok(done) = self.log.push_line(line) {
                for result in &done {
                    reporter.test_finished(result);
                }
            }
        }
    }
}

/// A file's bytes, or `None` when it does not exist.
pub(crate) async fn read_optional(
    dfs: &DfsClient,
    loc: &RemoteLocation,
) -> Result<Option<Bytes>, DfsError> {
    match dfs.read(loc, None).await {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.http().and_then(|h| h.status()) == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One look at the run folder: new chunks are read and passed on. Returns true when
/// something new was read.
pub(crate) async fn poll(
    dfs: &DfsClient,
    layout: &Layout,
    live: &Mutex<Live>,
    reporter: &dyn Reporter,
) -> Result<bool, RunError> {
    let dir = layout.run_dir()?;
    let mut chunks: Vec<u64> = Vec::new();
    let mut status = false;
    let mut pages = std::pin::pin!(dfs.list(&dir, true));
    while let Some(page) = pages.next().await {
        for entry in page? {
            let Some(rel) = entry.relative_to(&dir) else {
                continue;
            };
            if rel == layout::STATUS {
                status = true;
            }
            if let Some(n) = rel
                .strip_prefix(layout::CHUNKS)
                .and_then(|r| r.strip_prefix('/'))
                .and_then(|r| r.strip_suffix(".jsonl"))
                .filter(|n| n.len() == 6 && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse().ok())
            {
                chunks.push(n);
            }
        }
    }
    chunks.sort_unstable();
    let mut next = live.lock().map(|l| l.next_chunk).unwrap_or(1);
    let mut changed = false;
    for n in chunks {
        if n < next {
            continue;
        }
        if n > next {
            break; // not visible yet; read in order next time
        }
        let loc = layout.run_file(&format!("{}/{n:06}.jsonl", layout::CHUNKS))?;
        let Some(bytes) = read_optional(dfs, &loc).await? else {
            break;
        };
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(mut l) = live.lock() {
            l.consume(&text, reporter);
            l.next_chunk = n + 1;
        }
        next = n + 1;
        changed = true;
    }
    if let Ok(mut l) = live.lock() {
        l.status_seen |= status;
    }
    Ok(changed)
}

/// After the job: the chunks once more, then what the whole log has beyond them.
pub(crate) async fn drain(
    dfs: &DfsClient,
    layout: &Layout,
    live: &Mutex<Live>,
    reporter: &dyn Reporter,
) -> Result<(), RunError> {
    poll(dfs, layout, live, reporter).await?;
    let loc = layout.run_file(layout::REPORT_LOG)?;
    if let Some(bytes) = read_optional(dfs, &loc).await? {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(mut l) = live.lock() {
            let done = l.records;
            let mut seen = 0;
            let mut rest = String::new();
            for line in text.split('\n') {
                if line.trim().is_empty() {
                    continue;
                }
                seen += 1;
                if seen > done {
                    rest.push_str(line);
                    rest.push('\n');
                }
            }
            // A log cut short (never closed on a killed job) has nothing the chunks lack.
            if !rest.is_empty() && !text.ends_with('\n') {
                if let Some(cut) = rest.trim_end_matches('\n').rfind('\n') {
                    rest.truncate(cut + 1);
                } else {
                    rest.clear();
                }
            }
            l.consume(&rest, reporter);
        }
    }
    Ok(())
}
