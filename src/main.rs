//! The `fabric-remote` binary: parse arguments, run one command, map the outcome to an exit code.
//!
//! Everything a user sees is drawn here (in [`cli`]); the library never prints or exits.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
