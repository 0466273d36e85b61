//! One module per subcommand; [`run`] dispatches inside one tokio runtime.
//!
//! Commands return `Result<ExitStatus, Report>`; those still on `anyhow` are wrapped with
//! [`Report::from_anyhow`] here, so every error goes through the one renderer.

mod completions;
mod demo;
mod emulator;
mod job;
mod ls;
mod report;
mod run;
mod sync;

use super::ExitStatus;
use super::args::{Cli, Command};
use super::diagnostics::Report;

pub fn run(cli: Cli) -> Result<ExitStatus, Report> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Report::failed(format!("cannot start the async runtime: {e}")))?;
    let verbose = cli.verbose > 0;
    runtime.block_on(async move {
        match cli.command {
            Command::Sync(args) => sync::run(&args, verbose).await,
            Command::Ls(args) => ls::run(&args).await,
            Command::Emulator(args) => emulator::run(&args).await.map_err(Report::from_anyhow),
            Command::Report(args) => report::run(&args).map_err(Report::from_anyhow),
            Command::Run(args) => run::run(&args).await,
            Command::Job(args) => job::run(&args).await,
            Command::Demo(args) => demo::run(&args).await.map_err(Report::from_anyhow),
            Command::Completions(args) => Ok(completions::run(&args)),
        }
    })
}
