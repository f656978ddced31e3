//! The `sealpost` binary: parses the command line (the profile name first, since it becomes part
//! of a D-Bus name) and starts the app. See `sealpost --help`.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    // Before anything else: it writes the environment, which is sound only while this is the
    // process's one thread (src/painting.rs).
    #[allow(unsafe_code)]
    // SAFETY: first statement of `main`, before any thread is spawned.
    let painting = unsafe { sealpost_lib::painting::choose_before_threads() };
    let command_line = sealpost_lib::launch::CommandLine::parse();
    match sealpost_lib::start(command_line, painting) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the whole context chain on one line, without a backtrace dump.
            eprintln!("sealpost: {error:#}");
            ExitCode::FAILURE
        }
    }
}
