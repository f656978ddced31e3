//! The `sealpost` binary: parses the command line (the profile name first, since it becomes part
//! of a D-Bus name) and starts the app. See `sealpost --help`.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use clap::Parser as _;

fn main() -> anyhow::Result<()> {
    let command_line = sealpost_lib::launch::CommandLine::parse();
    sealpost_lib::start(command_line)
}
