//! `fabric-remote ls URL [--recursive] [--json] [--api API]`: a long listing of a remote
//! directory, over DFS (OneLake, ADLS Gen2, the emulator) or Blob (a storage account's
//! container, Azurite).
//!
//! Text: `SIZE  LAST-MODIFIED (UTC)  PATH`, directories as `DIR` with a trailing `/`, sorted
//! by path, paths relative to URL. `--json`: one JSON object per line (JSON Lines), so a
//! 100,000-entry tree pipes into `jq` without one giant document. A Blob listing is flat;
//! without `--recursive` it is folded to the direct children (a folder once per name).

use std::collections::BTreeMap;
use std::io::Write;

use fabric_remote::blob::BlobClient;
use fabric_remote::dfs::{DfsClient, DfsError, PathEntry};
use fabric_remote::env::Env;
use fabric_remote::location::RemoteLocation;
use fabric_remote::time::iso8601;
use futures::TryStreamExt;

use crate::cli::ExitStatus;
use crate::cli::args::{ApiArg, LsArgs};
use crate::cli::context;
use crate::cli::diagnostics::Report;

pub async fn run(args: &LsArgs) -> Result<ExitStatus, Report> {
    let env = Env::process();
    if !args.url.contains("://") {
        return Err(Report::usage(format!(
            "`{}` is not a URL; `ls` lists remote folders, so give https://onelake.dfs.fabric.microsoft.com/<workspace>/<item>/Files/<dir>, abfss://… or an http(s) DFS endpoint",
            args.url
        )));
    }
    let (dir, clients) = context::clients(&args.url, &env, args.api)?;
    // DFS lists directories natively: prefer it where the URL (or --api) allows.
    let rows = match (clients.dfs, clients.blob) {
        (Some(dfs), _) if args.api != ApiArg::Blob => list_dfs(&dfs, &dir, args.recursive).await?,
        (_, Some(blob)) => list_blob(&blob, &dir, args.recursive).await?,
        (Some(dfs), None) => list_dfs(&dfs, &dir, args.recursive).await?,
        (None, None) => Vec::new(),
    };
    print(&rows, args.json);
    Ok(ExitStatus::Success)
}

/// The entries below `dir` over DFS, sorted by relative path.
async fn list_dfs(
    dfs: &DfsClient,
    dir: &RemoteLocation,
    recursive: bool,
) -> Result<Vec<(String, PathEntry)>, Report> {
    let args_recursive = recursive;
    let mut rows: Vec<(String, PathEntry)> = Vec::new();
    let mut pages = std::pin::pin!(dfs.list(dir, args_recursive));
    let mut missing = false;
    loop {
        match pages.try_next().await {
            Ok(Some(page)) => {
                for entry in page {
                    if let Some(rel) = entry.relative_to(dir) {
                        rows.push((rel.to_string(), entry));
                    }
                }
            }
            Ok(None) => break,
            Err(DfsError::NotFound(_)) => {
                missing = true;
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if rows.is_empty() && !dir.is_protected() {
        // Nothing listed: the URL may be a file, an empty folder, or nothing at all.
        match dfs.head(dir).await? {
            Some(props) if !props.is_directory => {
                rows.push(file_row(dir, props.size, props.etag, props.last_modified));
            }
            Some(_) => {}
            None => return Err(dfs.explain_missing(dir).await.into()),
        }
    } else if missing {
        return Err(dfs.explain_missing(dir).await.into());
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(rows)
}

/// The entries below `dir` over Blob, sorted by relative path; without `recursive`, the
/// direct children only (a deeper blob shows its first folder).
async fn list_blob(
    blob: &BlobClient,
    dir: &RemoteLocation,
    recursive: bool,
) -> Result<Vec<(String, PathEntry)>, Report> {
    let mut rows: BTreeMap<String, PathEntry> = BTreeMap::new();
    let mut pages = std::pin::pin!(blob.list(dir));
    while let Some(page) = pages.try_next().await? {
        for e in page {
            let Some(rel) = e.relative_to(dir) else {
                continue;
            };
            let rel = rel.trim_end_matches('/');
            let (name, is_dir) = match rel.split_once('/') {
                Some((first, _)) if !recursive => (first, true),
                _ => (rel, e.is_directory || e.name.ends_with('/')),
            };
            if name.is_empty() {
                continue;
            }
            let entry = PathEntry {
                name: name.to_string(),
                is_directory: is_dir,
                size: if is_dir { 0 } else { e.size },
                etag: if is_dir {
                    String::new()
                } else {
                    e.etag.clone()
                },
                last_modified: if is_dir { None } else { e.last_modified },
                created: None,
            };
            rows.entry(name.to_string())
                .and_modify(|old| {
                    if is_dir {
                        old.is_directory = true;
                    }
                })
                .or_insert(entry);
        }
    }
    if rows.is_empty() && !dir.is_protected() {
        // Nothing below: the URL may name one blob.
        if let Some(props) = blob.properties(dir).await? {
            let (name, row) = file_row(dir, props.size, props.etag, props.last_modified);
            rows.insert(name, row);
        }
    }
    Ok(rows.into_iter().collect())
}

/// The one row of a URL that names a file, not a folder.
fn file_row(
    dir: &RemoteLocation,
    size: u64,
    etag: String,
    last_modified: Option<std::time::SystemTime>,
) -> (String, PathEntry) {
    let name = dir.segments().last().cloned().unwrap_or_default();
    let entry = PathEntry {
        name: name.clone(),
        is_directory: false,
        size,
        etag,
        last_modified,
        created: None,
    };
    (name, entry)
}

fn print(rows: &[(String, PathEntry)], json: bool) {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (path, e) in rows {
        let written = if json {
            let record = serde_json::json!({
                "path": path,
                "type": if e.is_directory { "directory" } else { "file" },
                "size": e.size,
                "last_modified": e.last_modified.map(iso8601),
                "etag": e.etag,
            });
            writeln!(out, "{record}")
        } else {
            let size = if e.is_directory {
                "DIR".to_string()
            } else {
                e.size.to_string()
            };
            let when = e
                .last_modified
                .map(|t| {
                    iso8601(t)
                        .replace('T', " ")
                        .trim_end_matches('Z')
                        .to_string()
                })
                .unwrap_or_else(|| "-".repeat(19));
            let slash = if e.is_directory { "/" } else { "" };
            writeln!(out, "{size:>12}  {when}  {path}{slash}")
        };
        if written.is_err() {
            // The reader went away (`| head`): that is not an error.
            return;
        }
    }
    let _ = out.flush();
}
