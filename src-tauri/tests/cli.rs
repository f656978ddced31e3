//! The `sealpost` binary's command line, run as a process: what it prints and refuses before it
//! opens any window (`launch.rs`). These run without a display: a binary that got as far as GTK
//! would fail with "Failed to initialize GTK" instead of the answers asserted here.
//!
//! Being an integration test of this package, it also makes `cargo test --workspace` build
//! `target/debug/sealpost` with the test run's feature set, which the WebDriver step then uses
//! (`scripts/webdriver.sh`): one build for both (`docs/benchmarks.md` § CI build time (the README's test command)).

use std::process::{Command, Output};

fn sealpost(args: &[&str]) -> std::io::Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_sealpost"))
        .args(args)
        // No display: proves the answer comes before any window or GTK initialisation.
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
}

#[test]
fn version_flag_prints_the_workspace_version_without_a_display() {
    let output = sealpost(&["--version"]).expect("the sealpost binary runs");
    assert!(output.status.success(), "exit status {:?}", output.status);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("sealpost {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn profile_name_that_cannot_be_a_dbus_name_is_refused_before_any_window() {
    let output = sealpost(&["--profile", "1alice"]).expect("the sealpost binary runs");
    assert_eq!(
        output.status.code(),
        Some(2),
        "clap's usage-error exit code"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--profile"), "stderr: {stderr}");
    assert!(!stderr.contains("GTK"), "got as far as GTK: {stderr}");
}

#[test]
fn link_with_another_scheme_is_refused_before_any_window() {
    let output = sealpost(&["https://example.com/invite"]).expect("the sealpost binary runs");
    assert_eq!(
        output.status.code(),
        Some(2),
        "clap's usage-error exit code"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a sealpost: link"), "stderr: {stderr}");
    assert!(!stderr.contains("GTK"), "got as far as GTK: {stderr}");
}
