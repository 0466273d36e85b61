//! The command line: clap types, one file per subcommand, and how errors and results are printed.
//!
//! Each command calls one library entry point and renders its result; it returns an
//! [`ExitStatus`] or a [`diagnostics::Report`]. Errors are turned into one `error:` sentence
//! (plus `Caused by:` and `hint:` lines) by [`diagnostics::render`], whose exit status is
//! decided by the error's kind in one place — never a panic or a backtrace. `-v`/`--log-file`
//! logging is set up by [`logging`] before the command runs.

pub mod args;
pub mod commands;
pub mod console;
pub mod context;
pub mod diagnostics;
pub mod logging;

use clap::Parser;

/// How a command ended, as the shell sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: everything asked for was done.
    Success,
    /// 1: the command ran, but some of the work failed (files not transferred, tests failed).
    Failure,
    /// 2: usage or configuration error; nothing (or nothing more) was done.
    Error,
    /// Any other code a command wants to pass through (pytest's 5, infrastructure failure 3…).
    Code(u8),
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        match status {
            ExitStatus::Success => 0.into(),
            ExitStatus::Failure => 1.into(),
            ExitStatus::Error => 2.into(),
            ExitStatus::Code(c) => c.into(),
        }
    }
}

pub fn main() -> std::process::ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version to stdout with exit 0, usage errors to stderr with exit 2.
            let _ = err.print();
            return if err.use_stderr() {
                ExitStatus::Error.into()
            } else {
                ExitStatus::Success.into()
            };
        }
    };
    let status = match logging::init(cli.verbose, cli.log_file.as_deref()) {
        Ok(()) => match commands::run(cli) {
            Ok(status) => status,
            Err(report) => diagnostics::render(&report),
        },
        Err(report) => diagnostics::render(&report),
    };
    status.into()
}
