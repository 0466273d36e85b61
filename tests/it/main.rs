//! The integration test binary: the library and the CLI against the emulator, over HTTP.

mod cli;
mod dfs;
mod emulator;
mod fabric;
mod junit;
mod run;
mod shards;
mod sync;
mod util;
