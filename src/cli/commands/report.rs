//! `fabric-remote report RESULTS [--nodeids FILE] [--junitprefix PREFIX] [--json]`: reads
//! pytest's results, junit XML or a report log (`pytest --report-log`, told apart by the
//! content), maps them onto pytest outcomes ([`fabric_remote::junit`]) and prints them
//! pytest-style, or as JSON lines with `--json` (notes then go to stderr).
//!
//! The exit status is pytest's: 0 all good, 1 any failure or error, 2 interrupted (by
//! collection errors), 5 no tests, 3 after a pytest internal error (a report log can also
//! carry 4, a usage error). A file that cannot be read, or is neither format, is exit 2.

use std::io::Write;

use anyhow::Context;
use fabric_remote::junit::{self, Format, MapOptions, Mapping, ReportLog};

use crate::cli::ExitStatus;
use crate::cli::args::ReportArgs;

pub fn run(args: &ReportArgs) -> anyhow::Result<ExitStatus> {
    let path = &args.results;
    // Each failure is one sentence naming the file (no "Caused by:" chain).
    let bytes = std::fs::read(path)
        .map_err(|err| anyhow::anyhow!("cannot read `{}`: {err}", path.display()))?;
    let expected = match &args.nodeids {
        Some(file) => {
            let text = std::fs::read_to_string(file).map_err(|err| {
                anyhow::anyhow!("cannot read the node ids file `{}`: {err}", file.display())
            })?;
            Some(junit::parse_nodeids(&text))
        }
        None => None,
    };
    let options = MapOptions {
        junit_prefix: args.junitprefix.clone(),
    };

    let mut stderr = std::io::stderr().lock();
    let mapping: Mapping = match junit::sniff(&bytes) {
        Format::JunitXml => {
            let doc = junit::parse(&bytes).map_err(|err| {
                anyhow::anyhow!(
                    "cannot use `{}` as pytest junit XML or report log: {err}",
                    path.display()
                )
            })?;
            junit::map_with(&doc, expected.as_deref(), &options)
        }
        Format::ReportLog => {
            let mut log = ReportLog::new();
            let mut pushed = log.push_bytes(&bytes);
            let end = log.end();
            pushed.errors.extend(end.errors);
            if log.is_empty() {
                let why = pushed
                    .errors
                    .first()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_else(|| ": no line has a `$report_type` this tool knows".to_owned());
                anyhow::bail!(
                    "cannot use `{}` as a pytest report log{why}",
                    path.display()
                );
            }
            for err in &pushed.errors {
                let _ = writeln!(stderr, "warning: {err}; the line was left out");
            }
            log.finish(expected.as_deref(), &options)
        }
    };

    let mut stdout = std::io::stdout().lock();
    let written = if args.json {
        for note in mapping.notes() {
            let _ = writeln!(stderr, "note: {note}");
        }
        stdout.write_all(junit::render_json(&mapping).as_bytes())
    } else {
        stdout.write_all(junit::render_text(&mapping).as_bytes())
    };
    match written.and_then(|()| stdout.flush()) {
        Ok(()) => {}
        // A closed pipe (`| head`) is not a failure of the report.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(err) => return Err(err).context("cannot write the report to stdout"),
    }

    Ok(match mapping.exit_code() {
        0 => ExitStatus::Success,
        1 => ExitStatus::Failure,
        code => ExitStatus::Code(code),
    })
}
