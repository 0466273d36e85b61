//! The integration test binary: the library and the CLI against the emulator, and the Blob
//! client against Azurite, over HTTP.

mod azurite;
mod blob;
mod cli;
mod dfs;
mod emulator;
mod fabric;
mod junit;
mod run;
mod shards;
mod sync;
mod util;
