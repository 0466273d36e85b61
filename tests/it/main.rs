//! The integration test binary: the library and the CLI against the emulator, and the Blob
//! client against Azurite, over HTTP.

mod azurite;
mod blob;
mod cli;
mod dfs;
mod fabric;
mod junit;
mod sync;
mod util;
