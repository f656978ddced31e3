//! What the engine tells the UI about a file it sends (`docs/engine.md` § Attachments): a small
//! file travels inline in its message, so `send_attachment` returns it sent, tied to its message,
//! and the last `attachment-updated` the UI sees for it says the same (an earlier version emitted
//! the file's pre-send copy last, and the UI showed a sent file as "uploading" forever). Run as
//! `scripts/with-keyring.sh cargo test -p sealpost-tests --test attachment_events`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sealpost_client::EngineEvent;
use sealpost_client::engine::{AttachmentStateView, OutgoingFile};
use sealpost_test_support::{TestRelay, two_clients};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_file_sent_inline_is_reported_sent_with_its_message_last() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (mut alice, bob, alice_bob, bob_alice, _invite, _secrets) =
        two_clients(root.path(), &relay.url()).await;
    alice.drain_events();

    let sent = alice
        .engine
        .send_attachment(
            &alice_bob,
            OutgoingFile {
                file_name: "note.txt".into(),
                media_type: "text/plain".into(),
                bytes: b"three words here".to_vec(),
            },
        )
        .await
        .unwrap();
    assert_eq!(sent.state, AttachmentStateView::Complete);
    assert!(sent.message_id.is_some(), "returned tied to its message");

    let last = alice
        .drain_events()
        .into_iter()
        .filter_map(|event| match event {
            EngineEvent::AttachmentUpdated { attachment } if attachment.id == sent.id => {
                Some(attachment)
            }
            _ => None,
        })
        .next_back()
        .expect("the UI is told about the file");
    assert_eq!(last.state, AttachmentStateView::Complete);
    assert_eq!(last.message_id, sent.message_id);

    // And it arrives.
    sealpost_test_support::wait_until("Bob has the file", || async {
        bob.engine
            .get_attachments(&bob_alice)
            .await
            .unwrap()
            .iter()
            .any(|a| a.file_name == "note.txt" && a.state == AttachmentStateView::Complete)
    })
    .await;
}
