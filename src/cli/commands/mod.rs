//! One module per subcommand; [`run`] dispatches inside one tokio runtime.

mod demo;
mod emulator;
mod job;
mod ls;
mod report;
mod run;
mod sync;

use super::ExitStatus;
use super::args::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Sync(args) => sync::run(&args).await,
            Command::Ls(args) => ls::run(&args).await,
            Command::Emulator(args) => emulator::run(&args).await,
            Command::Report(args) => report::run(&args),
            Command::Run(args) => run::run(&args).await,
            Command::Job(args) => job::run(&args).await,
            Command::Demo(args) => demo::run(&args).await,
        }
    })
}
