//! Group attachments (`docs/engine.md` § Attachments, § Groups) with real clients on a real
//! relay and its blob store: a file sent to a group is encrypted and uploaded ONCE, the blob
//! made with one download grant per member; each member's pointer, with its own grant, is sealed
//! over that member's own session; members see it in the group with its author (the session's
//! peer), download it and get the same bytes; the relay deletes the blob once every grant was
//! released (`docs/relay-protocol.md` § 13.3). A removed member gets no grant and no pointer; a
//! non-member can neither send a file to the group nor make one appear in it. Run as
//! `scripts/with-keyring.sh cargo test -p sealpost-tests --test group_attachments`.
//!
//! Every wait is bounded ([`sealpost_test_support::WAIT`]); nothing asserts on timing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use sealpost_client::EngineError;
use sealpost_client::content::{AttachmentLocation, AttachmentPointer, Body};
use sealpost_client::engine::{AttachmentStateView, AttachmentView, OutgoingFile};
use sealpost_client::group::{GroupError, GroupId};
use sealpost_crypto::attachment::CHUNK_CIPHERTEXT_BYTES;
use sealpost_test_support::{
    Client, KeychainCleanup, Trio, bytes_of, connect, create_group, group_of_three, has_text,
    key_of, refused, remove_member, send_as, texts, trio, wait_for_group, wait_for_text,
    wait_group_attachment, wait_until,
};

/// `len` bytes of a pattern no other file holds, starting with `marker`.
fn file(len: usize, marker: &[u8]) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..len).map(|i| (i * 13 % 251) as u8).collect();
    let n = marker.len().min(len);
    bytes[..n].copy_from_slice(&marker[..n]);
    bytes
}

fn outgoing(name: &str, bytes: Vec<u8>) -> OutgoingFile {
    sealpost_test_support::outgoing(name, "application/octet-stream", bytes)
}

/// Blobs, chunk bytes and download rows in the relay's database now.
struct RelayBlobs {
    blobs: i64,
    chunk_bytes: i64,
    downloads: i64,
}

fn relay_blobs(database: &Path) -> RelayBlobs {
    let db =
        rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |row| row.get(0)).unwrap() };
    RelayBlobs {
        blobs: count("SELECT count(*) FROM blob"),
        chunk_bytes: count("SELECT coalesce(sum(length(body)), 0) FROM blob_chunk"),
        downloads: count("SELECT count(*) FROM blob_download"),
    }
}

/// `member`'s group file `name` in group `group`, once it is offered.
async fn offered_to(member: &Client, group: &str, name: &str) -> AttachmentView {
    wait_group_attachment(member, group, name, AttachmentStateView::Offered).await
}

/// `member` downloads the group file `offered`; returns it once complete.
async fn download(member: &Client, group: &str, offered: &AttachmentView) -> AttachmentView {
    member
        .engine
        .download_attachment(&offered.id)
        .await
        .unwrap();
    wait_group_attachment(
        member,
        group,
        &offered.file_name,
        AttachmentStateView::Complete,
    )
    .await
}

/// Seals the group file `pointer` (group `group_id`, the author's sequence number `seq`) on
/// `sender`'s real session with `contact` and puts it in the contact's mailbox on `t`'s relay
/// ([`send_as`]).
async fn send_file_as(
    t: &Trio,
    sender: &Client,
    contact: &str,
    group_id: GroupId,
    seq: u64,
    pointer: AttachmentPointer,
) {
    let body = Body::GroupAttachment {
        group_id,
        seq,
        pointer,
    };
    send_as(&t.relay, sender, contact, body).await;
}

/// Dave, a fourth client and a contact of Alice only, and the group "Photos" Alice makes with
/// Bob, Carol and Dave, once all three have it: (Dave, his keychain guard, the group's id).
async fn photos_with_dave(t: &Trio) -> (Client, KeychainCleanup, String) {
    let (dave, secrets) = Client::new("Dave", t.root.path(), &t.relay.url()).await;
    let (alice_dave, _, _) = connect(&t.alice, &dave, "Dave").await;
    let contacts = [t.alice_bob.as_str(), t.alice_carol.as_str(), &alice_dave];
    let group = create_group(&t.alice, "Photos", &contacts).await;
    for member in [&t.bob, &t.carol, &dave] {
        wait_for_group(member, &group.id).await;
    }
    (dave, secrets, group.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_file_is_uploaded_once_for_all_members() {
    let t = trio().await;
    let (dave, _dave_secrets, id) = photos_with_dave(&t).await;
    let members = [&t.bob, &t.carol, &dave];
    let database = t.relay.database().unwrap();
    assert_eq!(relay_blobs(&database).blobs, 0);

    let bytes = file(5 * 65_536 + 100, b"group-file-once");
    let sent = t
        .alice
        .engine
        .send_group_attachment(&id, outgoing("trip.bin", bytes.clone()))
        .await
        .unwrap();
    assert_eq!(sent.group_id.as_deref(), Some(id.as_str()));
    assert_eq!(sent.contact_id, None);
    let sent =
        wait_group_attachment(&t.alice, &id, "trip.bin", AttachmentStateView::Complete).await;
    assert!(
        sent.message_id.is_some(),
        "the upload finished and the message went"
    );

    // One blob, uploaded once: its chunks hold at most the file and one chunk more, with one
    // grant per member.
    let stored = relay_blobs(&database);
    assert_eq!(stored.blobs, 1);
    assert_eq!(stored.downloads, 3, "one grant per member");
    assert!(
        stored.chunk_bytes <= (bytes.len() + CHUNK_CIPHERTEXT_BYTES) as i64,
        "{} bytes on the relay for a file of {}",
        stored.chunk_bytes,
        bytes.len()
    );
    assert_eq!(
        stored.chunk_bytes,
        i64::from(sent.total_chunks) * CHUNK_CIPHERTEXT_BYTES as i64
    );

    for member in members {
        // In the group, authored by Alice (the peer of the session it came over).
        let message = wait_for_text(member, &id, "trip.bin").await;
        assert_eq!(message.author_key, key_of(&t.alice));
        let offered = offered_to(member, &id, "trip.bin").await;
        assert_eq!(offered.message_id.as_deref(), Some(message.id.as_str()));
        assert_eq!(offered.group_id.as_deref(), Some(id.as_str()));
        assert_eq!(offered.size, bytes.len() as u64);
        let done = download(member, &id, &offered).await;
        assert_eq!(
            bytes_of(member, &done.id).await,
            bytes,
            "every member gets the same plaintext"
        );
    }
    // Every member released its grant: the relay deleted the blob, its chunks and grants.
    wait_until("the relay deletes the fetched blob", || async {
        let left = relay_blobs(&database);
        left.blobs == 0 && left.chunk_bytes == 0 && left.downloads == 0
    })
    .await;
    // The sender still has its copy.
    assert_eq!(bytes_of(&t.alice, &sent.id).await, bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_gets_no_grant_for_a_group_file() {
    let t = trio().await;
    let (dave, _dave_secrets, id) = photos_with_dave(&t).await;
    remove_member(&t.alice, &dave, &id).await;

    let bytes = file(3 * 65_536, b"not-for-dave");
    t.alice
        .engine
        .send_group_attachment(&id, outgoing("plan.bin", bytes.clone()))
        .await
        .unwrap();
    wait_group_attachment(&t.alice, &id, "plan.bin", AttachmentStateView::Complete).await;
    let database = t.relay.database().unwrap();
    let stored = relay_blobs(&database);
    assert_eq!(stored.blobs, 1);
    assert_eq!(stored.downloads, 2, "grants for Bob and Carol only");
    let at_alice = texts(&t.alice, &id)
        .await
        .into_iter()
        .find(|m| m.text == "plan.bin")
        .unwrap();
    assert_eq!(at_alice.recipients, 2);

    for member in [&t.bob, &t.carol] {
        let offered = offered_to(member, &id, "plan.bin").await;
        let done = download(member, &id, &offered).await;
        assert_eq!(bytes_of(member, &done.id).await, bytes);
    }
    // Bob and Carol have it (so anything sealed to Dave would have reached him by now too):
    // Dave has neither the message nor the file, and may not send one to the group.
    t.bob.wait_outbox_empty().await;
    t.alice.wait_outbox_empty().await;
    assert!(!has_text(&dave, &id, |m| m.text == "plan.bin").await);
    assert!(
        dave.engine
            .get_group_attachments(&id)
            .await
            .unwrap()
            .is_empty()
    );
    let refused_send = dave
        .engine
        .send_group_attachment(&id, outgoing("late.bin", file(100, b"late")))
        .await;
    assert!(
        matches!(refused_send, Err(EngineError::Group(GroupError::NotMember))),
        "{refused_send:?}"
    );
}

/// Where a group file differs from a 1:1 one: it must come from a member, over that member's
/// own session, for a group the receiver is in, and its pointer must be within its bounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_file_from_a_non_member_or_out_of_bounds_is_refused() {
    let mut t = trio().await;
    let id = group_of_three(&t).await;
    let group_id: GroupId = id.parse().unwrap();
    remove_member(&t.alice, &t.carol, &id).await;
    let pointer = |name: &str| AttachmentPointer {
        file_name: name.into(),
        media_type: "text/plain".into(),
        size: 5,
        location: AttachmentLocation::Inline {
            bytes: b"hello".to_vec(),
        },
        thumbnail: None,
        timer_secs: None,
    };

    // Carol, removed, seals a file for the group over her real session with Alice.
    let from_carol = pointer("from-carol.txt");
    send_file_as(&t, &t.carol, &t.carol_alice, group_id, 50, from_carol).await;
    t.alice
        .wait_event(refused("a file from a non-member"))
        .await;

    // Bob, a member, sends a pointer out of its bounds (an inline file whose size lies).
    let mut lying = pointer("lying.txt");
    lying.size = 6;
    send_file_as(&t, &t.bob, &t.bob_alice, group_id, 51, lying).await;
    t.alice.wait_event(refused("out of its bounds")).await;

    // A file for a group Alice is not in.
    let not_ours = GroupId::from_bytes([9; 16]);
    let elsewhere = pointer("elsewhere.txt");
    send_file_as(&t, &t.bob, &t.bob_alice, not_ours, 52, elsewhere).await;
    t.alice
        .wait_event(refused("a file for a group we are not in"))
        .await;

    // Bob's well-formed inline file goes through, shown as Bob's.
    let from_bob = pointer("from-bob.txt");
    send_file_as(&t, &t.bob, &t.bob_alice, group_id, 53, from_bob).await;
    let message = wait_for_text(&t.alice, &id, "from-bob.txt").await;
    assert_eq!(message.author_key, key_of(&t.bob));
    let inline =
        wait_group_attachment(&t.alice, &id, "from-bob.txt", AttachmentStateView::Complete).await;
    assert_eq!(bytes_of(&t.alice, &inline.id).await, b"hello");
    let names: Vec<String> = t
        .alice
        .engine
        .get_group_attachments(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.file_name)
        .collect();
    assert_eq!(
        names,
        ["from-bob.txt"],
        "nothing of the refused ones is kept"
    );
}
