//! The `sealpost` binary: parses the command line (the profile name first, since it becomes part
//! of a D-Bus name) and starts the app. See `sealpost --help`.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let command_line = sealpost_lib::launch::CommandLine::parse();
    match sealpost_lib::start(command_line) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the whole context chain on one line, without a backtrace dump.
            eprintln!("sealpost: {error:#}");
            ExitCode::FAILURE
        }
    }
}
