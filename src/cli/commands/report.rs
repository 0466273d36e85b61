//! `fabric-remote report RESULTS.xml [--nodeids FILE] [--json]`: reads a pytest junit XML
//! file, maps it onto pytest outcomes ([`fabric_remote::junit`]) and prints them
//! pytest-style, or as JSON lines with `--json` (notes then go to stderr).
//!
//! The exit status is pytest's: 0 all good, 1 any failure or error, 5 no tests, 3 after a
//! pytest internal error. A file that cannot be read or is not junit XML is exit 2.

use std::io::Write;

use anyhow::Context;
use fabric_remote::junit;

use crate::cli::ExitStatus;
use crate::cli::args::ReportArgs;

pub fn run(args: &ReportArgs) -> anyhow::Result<ExitStatus> {
    let path = &args.results;
    // Each failure is one sentence naming the file (no "Caused by:" chain).
    let bytes = std::fs::read(path)
        .map_err(|err| anyhow::anyhow!("cannot read `{}`: {err}", path.display()))?;
    let doc = junit::parse(&bytes).map_err(|err| {
        anyhow::anyhow!("cannot use `{}` as pytest junit XML: {err}", path.display())
    })?;

    let expected = match &args.nodeids {
        Some(file) => {
            let text = std::fs::read_to_string(file).map_err(|err| {
                anyhow::anyhow!("cannot read the node ids file `{}`: {err}", file.display())
            })?;
            Some(junit::parse_nodeids(&text))
        }
        None => None,
    };
    let mapping = junit::map(&doc, expected.as_deref());

    let mut stdout = std::io::stdout().lock();
    let written = if args.json {
        let mut stderr = std::io::stderr().lock();
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
