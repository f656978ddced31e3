//! Attachments survive `kill -9` (issue 13, `docs/engine.md` § Attachments, Resume): a client
//! process (`sealpost-test-transfer`, this package's binary) is killed with SIGKILL while a file
//! of a few MiB is part way up or down through a real relay's blob store; the profile is opened
//! again in the test, the transfer goes on from its next chunk — never from chunk 0 — and the
//! receiver's bytes are the original's.
//!
//! The helper pauses before every chunk ([`WatchedBlobs`]) so that the transfer is still under
//! way when the kill lands; the reopened engine's transport records which chunks it moved, which
//! is how the tests see where the transfer resumed. Run as
//! `scripts/with-keyring.sh cargo test -p sealpost-tests --test attachment_crash`; every wait is
//! bounded ([`sealpost_test_support::WAIT`]) and nothing asserts on timing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sealpost_client::EngineConfig;
use sealpost_client::engine::AttachmentStateView;
use sealpost_test_support::{
    ChildProcess, Client, bytes_of, send_file, two_clients_on_new_relay,
    wait_attachment_state as wait_state,
};
use sealpost_tests::watched_blobs::WatchedBlobs;

/// 64 full chunks and a part of one: 65 chunks of 64 KiB.
const FILE_BYTES: usize = 4 * 1024 * 1024 + 4321;
const FILE_CHUNKS: u32 = 65;

/// The helper's pause before each chunk: the first 16 chunks take about 1.3 s, the other 49
/// about 4 s, which is the margin for the kill to land mid-transfer on a loaded machine.
const PAUSE_MS: &str = "80";

/// The helper is killed once the engine has recorded this many chunks (it records every 8).
const KILL_AT: u32 = 16;

/// A file no other test sends: a counter pattern under a marker.
fn original() -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..FILE_BYTES).map(|i| (i * 31 % 253) as u8).collect();
    let marker = b"attachment-crash-original";
    bytes[..marker.len()].copy_from_slice(marker);
    bytes
}

/// A test's own transport for the reopened engine, shared through a static because
/// [`Client::reopen_with`] takes a plain `fn`.
macro_rules! watched_transport {
    () => {{
        static WATCHED: OnceLock<Arc<WatchedBlobs>> = OnceLock::new();
        fn adjust(config: &mut EngineConfig) {
            let watched = WATCHED
                .get_or_init(|| WatchedBlobs::over_relay(config, Duration::ZERO).unwrap())
                .clone();
            config.blobs = Some(watched);
        }
        (&WATCHED, adjust as fn(&mut EngineConfig))
    }};
}

/// Starts the helper on `profile` and kills it with SIGKILL once its engine has recorded
/// [`KILL_AT`] chunks of the transfer. Returns the attachment id and the chunks recorded.
async fn kill_mid_transfer(profile: &str, root: &Path, mode: &[&str]) -> (String, u32) {
    let mut args = vec![profile, root.to_str().unwrap(), PAUSE_MS];
    args.extend_from_slice(mode);
    let mut helper = ChildProcess::spawn(env!("CARGO_BIN_EXE_sealpost-test-transfer"), &args);
    let id = helper
        .line_starting("started ")
        .await
        .expect("the helper ended before its transfer started");
    loop {
        let line = helper
            .line_starting("progress ")
            .await
            .expect("the helper ended mid-transfer");
        let fields: Vec<&str> = line.split(' ').collect();
        let done: u32 = fields[1].parse().unwrap();
        if fields[0] == id && done >= KILL_AT {
            helper.kill9();
            assert_eq!(fields[2], FILE_CHUNKS.to_string());
            return (id, done);
        }
    }
}

/// Asserts that `moved` (chunk indexes, in order) is a resumption: it starts after chunk 0, at
/// or past `recorded`, and goes on one by one to the last chunk.
fn assert_resumed(moved: &[u32], recorded: u32) {
    let first = *moved.first().expect("the reopened engine moved no chunk");
    assert!(
        first >= recorded && first > 0,
        "the transfer restarted at chunk {first}, though {recorded} were recorded before the kill"
    );
    assert!(
        first < FILE_CHUNKS,
        "nothing was left to move: the kill did not land mid-transfer"
    );
    let expected: Vec<u32> = (first..FILE_CHUNKS).collect();
    assert_eq!(moved, expected, "each remaining chunk once, in order");
    eprintln!("resumed at chunk {first} of {FILE_CHUNKS} ({recorded} recorded before the kill)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_mid_upload_resumes_and_the_file_arrives_intact() {
    let (watched, adjust) = watched_transport!();
    let (_relay, root, (alice, bob, alice_bob, bob_alice, _, _secrets)) =
        two_clients_on_new_relay(|_| {}).await;
    let (alice_profile, _) = alice.stop().await;

    // Alice's client process sends the file and is killed part way through the upload.
    let bytes = original();
    let upload_dir = tempfile::tempdir().unwrap();
    let path = upload_dir.path().join("site-survey.bin");
    std::fs::write(&path, &bytes).unwrap();
    let (_, recorded) = kill_mid_transfer(
        alice_profile.as_str(),
        root.path(),
        &["upload", &alice_bob, path.to_str().unwrap()],
    )
    .await;

    // Alice opens her profile again: the upload goes on where the relay's count says.
    let alice = Client::reopen_with(&alice_profile, root.path(), adjust).await;
    let sent = wait_state(
        &alice,
        &alice_bob,
        "site-survey.bin",
        AttachmentStateView::Complete,
    )
    .await;
    assert!(sent.message_id.is_some(), "the pointer went out");
    assert_resumed(&watched.get().unwrap().uploaded(), recorded);

    // Bob gets the file once, downloads it, and has the original bytes.
    let offered = wait_state(
        &bob,
        &bob_alice,
        "site-survey.bin",
        AttachmentStateView::Offered,
    )
    .await;
    bob.engine.download_attachment(&offered.id).await.unwrap();
    let done = wait_state(
        &bob,
        &bob_alice,
        "site-survey.bin",
        AttachmentStateView::Complete,
    )
    .await;
    assert!(bytes_of(&bob, &done.id).await == bytes, "the file changed");
    let copies = bob.engine.get_attachments(&bob_alice).await.unwrap().len();
    assert_eq!(copies, 1, "the file was announced once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_mid_download_resumes_and_the_file_is_intact() {
    let (watched, adjust) = watched_transport!();
    let (_relay, root, (alice, bob, alice_bob, bob_alice, _, _secrets)) =
        two_clients_on_new_relay(|_| {}).await;

    let bytes = original();
    send_file(&alice, &alice_bob, "field-notes.bin", bytes.clone()).await;
    let offered = wait_state(
        &bob,
        &bob_alice,
        "field-notes.bin",
        AttachmentStateView::Offered,
    )
    .await;
    let (bob_profile, _) = bob.stop().await;

    // Bob's client process downloads the file and is killed part way through.
    let (id, recorded) = kill_mid_transfer(
        bob_profile.as_str(),
        root.path(),
        &["download", &offered.id],
    )
    .await;
    assert_eq!(id, offered.id);

    // Bob opens his profile again: the download goes on from its recorded progress.
    let bob = Client::reopen_with(&bob_profile, root.path(), adjust).await;
    let done = wait_state(
        &bob,
        &bob_alice,
        "field-notes.bin",
        AttachmentStateView::Complete,
    )
    .await;
    assert_resumed(&watched.get().unwrap().downloaded(), recorded);
    assert!(bytes_of(&bob, &done.id).await == bytes, "the file changed");
}
