//! The `sealpost-relay` binary: `--version`, `--help`, the machine-readable listening line,
//! and a graceful SIGTERM that answers, commits and exits cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Stdio};

use common::*;
use sealpost_wire::{MessageId, Response};

const BINARY: &str = env!("CARGO_BIN_EXE_sealpost-relay");

#[test]
fn version_and_help_document_the_flags() {
    let version = Command::new(BINARY).arg("--version").output().unwrap();
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("sealpost-relay "));
    let help = Command::new(BINARY).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--config",
        "--listen",
        "--database",
        "--tls-cert",
        "--tls-key",
        "--password",
        "--max-frame-bytes",
        "--max-envelope-bytes",
        "--max-connections",
        "--mailbox-max-envelopes",
        "--mailbox-max-bytes",
        "--envelope-ttl-secs",
        "--mailbox-idle-ttl-secs",
        "--log",
        "--version",
        "--help",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly_and_keeps_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("relay.db");
    let start = || {
        let mut child = Command::new(BINARY)
            .args(["--listen", "127.0.0.1:0", "--log", "warn", "--database"])
            .arg(&database)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let addr = listening_addr(&mut child);
        (child, addr)
    };
    let (mut child, addr) = start();
    let mut client = Client::connect(addr).await;
    let mailbox = client.create().await;
    assert_eq!(
        client.send(&mailbox, b"before SIGTERM").await,
        Response::Ok {}
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // The relay closes our connection and exits 0.
    assert!(client.recv_frame().await.is_none());
    assert!(child.wait().unwrap().success(), "graceful exit");
    // A clean stop truncates the WAL into the main file.
    let wal = dir.path().join("relay.db-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);

    let (mut child, addr) = start();
    let mut owner = Client::connect(addr).await;
    owner.subscribe(&mailbox).await;
    let (_, message_id, envelope) = owner.next_message().await;
    assert_eq!(envelope, b"before SIGTERM");
    owner.ack(&mailbox, message_id).await;
    owner.ack(&mailbox, MessageId(0)).await;
    child.kill().unwrap();
    child.wait().unwrap();
}
