//! `fabric-remote sync SRC DST`: renders the library's [`fabric_remote::sync`] for a person
//! (progress bar on a terminal, a summary line) or for a script (`--json`, `--dry-run`).

use std::io::IsTerminal;
use std::time::Duration;

use fabric_remote::env::Env;
use fabric_remote::location::Location;
use fabric_remote::secret::redact;
use fabric_remote::sync::exclude::Excludes;
use fabric_remote::sync::plan::{Held, Rails};
use fabric_remote::sync::scan::ScanOptions;
use fabric_remote::sync::{self, Action, Reporter, Summary, SyncOptions};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::ExitStatus;
use crate::cli::args::SyncArgs;
use crate::cli::diagnostics::Report;
use crate::cli::{context, logging};

pub async fn run(args: &SyncArgs, verbose: bool) -> Result<ExitStatus, Report> {
    let env = Env::process();
    let mut transport = None;
    let mut parse = |s: &str| -> Result<Location, Report> {
        if !s.contains("://") {
            return Ok(Location::parse(s)?);
        }
        let (loc, t) = context::remote(s, &env, args.api)?;
        transport.get_or_insert(t);
        Ok(Location::Remote(loc))
    };
    let (src, dst) = (parse(&args.src)?, parse(&args.dst)?);
    let options = SyncOptions {
        excludes: Excludes::new(&args.exclude, &args.exclude_from)?,
        scan: ScanOptions {
            gitignore: args.gitignore,
            follow_links: args.follow_links,
        },
        rails: Rails {
            delete: !args.no_delete,
            delete_excluded: args.delete_excluded,
            max_delete: args.max_delete,
        },
        dry_run: args.dry_run,
        concurrency: args.concurrency,
        cache_dir: sync::default_cache_dir(&env),
        lock_wait: Duration::from_secs(args.lock_wait),
        ..SyncOptions::default()
    };
    let Some(transport) = transport else {
        return Err(Report::usage(
            "both SRC and DST are local paths; one of them must be a remote URL (https://…, abfss://…)",
        ));
    };
    // With -v the log lines are the progress; a bar would only garble them.
    let reporter = Console::new(!args.json && !verbose && std::io::stderr().is_terminal());
    let result = sync::sync(&src, &dst, &transport, &options, &reporter).await;
    reporter.finish();
    Ok(render(&result?, args.json))
}

fn render(summary: &Summary, json: bool) -> ExitStatus {
    for failure in &summary.failures {
        eprintln!("failed: {}", redact(&failure.to_string()));
    }
    let over_limit = match &summary.held {
        Some((Held::OverLimit { would, max }, _)) => {
            eprintln!(
                "error: refusing to delete {would} files, more than --max-delete {max}; nothing was deleted"
            );
            true
        }
        Some((Held::IncompleteSource, n)) => {
            eprintln!(
                "warning: part of the tree could not be read (see above), so {n} extra file(s) at DST were not deleted"
            );
            false
        }
        Some((Held::Disabled, n)) => {
            eprintln!("kept {n} file(s) at DST that are not in SRC (--no-delete)");
            false
        }
        None => false,
    };
    if json {
        println!(
            "{}",
            serde_json::to_string(summary).unwrap_or_else(|_| "{}".into())
        );
    } else {
        if summary.dry_run {
            for action in &summary.actions {
                match action {
                    Action::Upload(p) => println!("upload    {p}"),
                    Action::Download(p) => println!("download  {p}"),
                    Action::Delete(p) => println!("delete    {p}"),
                    Action::DeleteDir(p) => println!("delete    {p}/ (recursive)"),
                }
            }
        }
        let secs = summary.elapsed_ms as f64 / 1000.0;
        let verb = if summary.dry_run {
            "Dry run: would change"
        } else if summary.failed > 0 {
            "Sync finished with failures"
        } else {
            "Sync complete"
        };
        let failed = if summary.failed > 0 {
            format!(", {} failed", summary.failed)
        } else {
            String::new()
        };
        let files = |n: u64| {
            if n == 1 {
                "1 file".to_string()
            } else {
                format!("{n} files")
            }
        };
        if summary.dry_run {
            println!("{verb} {}{failed} ({secs:.1}s)", files(summary.changed()));
        } else {
            println!(
                "{verb} ({} changed, {} unchanged{failed}, {secs:.1}s)",
                files(summary.changed()),
                summary.unchanged
            );
        }
    }
    if summary.failed > 0 || over_limit {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    }
}

/// indicatif on a terminal (bytes and files), warnings on stderr always.
struct Console {
    bar: Option<ProgressBar>,
    files: std::sync::atomic::AtomicU64,
    total: std::sync::atomic::AtomicU64,
}

impl Console {
    fn new(draw: bool) -> Self {
        let bar = draw.then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {bytes}/{total_bytes} {msg} {bytes_per_sec} [{elapsed_precise}]",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar.set_message("scanning");
            logging::set_progress_bar(Some(bar.clone()));
            bar
        });
        Self {
            bar,
            files: 0.into(),
            total: 0.into(),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            logging::set_progress_bar(None);
            bar.finish_and_clear();
        }
    }

    fn line(&self, text: &str) {
        let text = redact(text);
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }
}

impl Reporter for Console {
    fn planned(&self, transfers: u64, bytes: u64, _deletes: u64) {
        use std::sync::atomic::Ordering;
        self.total.store(transfers, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(bytes);
            bar.set_message(format!("0/{transfers} files"));
        }
    }
    fn transferred(&self, _path: &str, bytes: u64) {
        use std::sync::atomic::Ordering;
        let done = self.files.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
            bar.set_message(format!(
                "{done}/{} files",
                self.total.load(Ordering::Relaxed)
            ));
        }
    }
    fn warning(&self, message: &str) {
        self.line(&format!("warning: {message}"));
    }
    fn notice(&self, message: &str) {
        self.line(message);
    }
}
