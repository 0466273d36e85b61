//! `fabric-remote ls URL [--recursive] [--json]`: a long listing of a remote directory.
//!
//! Text: `SIZE  LAST-MODIFIED (UTC)  PATH`, directories as `DIR` with a trailing `/`, sorted
//! by path, paths relative to URL. `--json`: one JSON object per line (JSON Lines), so a
//! 100,000-entry tree pipes into `jq` without one giant document.

use std::io::Write;

use fabric_remote::dfs::{DfsError, PathEntry};
use fabric_remote::env::Env;
use fabric_remote::time::iso8601;
use futures::TryStreamExt;

use crate::cli::ExitStatus;
use crate::cli::args::LsArgs;
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
    let dir = context::remote_location(&args.url, &env)?;
    let dfs = context::dfs_client(&env)?;

    let mut rows: Vec<(String, PathEntry)> = Vec::new();
    let mut pages = std::pin::pin!(dfs.list(&dir, args.recursive));
    let mut missing = false;
    loop {
        match pages.try_next().await {
            Ok(Some(page)) => {
                for entry in page {
                    if let Some(rel) = entry.relative_to(&dir) {
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
        match dfs.head(&dir).await? {
            Some(props) if !props.is_directory => {
                let name = dir.segments().last().cloned().unwrap_or_default();
                rows.push((
                    name.clone(),
                    PathEntry {
                        name,
                        is_directory: false,
                        size: props.size,
                        etag: props.etag,
                        last_modified: props.last_modified,
                        created: None,
                    },
                ));
            }
            Some(_) => {}
            None => return Err(dfs.explain_missing(&dir).await.into()),
        }
    } else if missing {
        return Err(dfs.explain_missing(&dir).await.into());
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (path, e) in &rows {
        let written = if args.json {
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
            return Ok(ExitStatus::Success);
        }
    }
    let _ = out.flush();
    Ok(ExitStatus::Success)
}
