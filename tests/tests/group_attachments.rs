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
use std::sync::{Arc, Mutex};

use sealpost_client::EngineError;
use sealpost_client::content::{AttachmentLocation, AttachmentPointer, Body};
use sealpost_client::engine::{AttachmentStateView, AttachmentView, OutgoingFile};
use sealpost_client::group::{GroupError, GroupId};
use sealpost_crypto::attachment::CHUNK_CIPHERTEXT_BYTES;
use sealpost_test_support::{
    Client, Trio, connect, group_of, group_of_three, refused, send_as, texts, trio, wait_for_group,
    wait_for_text, wait_until,
};

/// `len` bytes of a pattern no other file holds, starting with `marker`.
fn file(len: usize, marker: &[u8]) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..len).map(|i| (i * 13 % 251) as u8).collect();
    let n = marker.len().min(len);
    bytes[..n].copy_from_slice(&marker[..n]);
    bytes
}

fn outgoing(name: &str, bytes: Vec<u8>) -> OutgoingFile {
    OutgoingFile {
        file_name: name.into(),
        media_type: "application/octet-stream".into(),
        bytes,
    }
}

fn key_of(client: &Client) -> String {
    hex::encode(client.engine.identity_key().to_bytes())
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

/// `client`'s attachment named `name` in group `group`, once it is in `state`.
async fn wait_group_attachment(
    client: &Client,
    group: &str,
    name: &str,
    state: AttachmentStateView,
) -> AttachmentView {
    let found = Arc::new(Mutex::new(None));
    wait_until(&format!("{name} is {state:?} in the group"), || {
        let found = found.clone();
        async move {
            let attachment = client
                .engine
                .get_group_attachments(group)
                .await
                .unwrap()
                .into_iter()
                .find(|a| a.file_name == name && a.state == state);
            let done = attachment.is_some();
            *found.lock().unwrap() = attachment;
            done
        }
    })
    .await;
    let attachment = found.lock().unwrap().clone();
    attachment.unwrap()
}

/// Dave: a fourth client, a contact of Alice only.
async fn dave(t: &Trio) -> (Client, String, sealpost_test_support::KeychainCleanup) {
    let (dave, secrets) = Client::new("Dave", t.root.path(), &t.relay.url()).await;
    let (alice_dave, _, _) = connect(&t.alice, &dave, "Dave").await;
    (dave, alice_dave, secrets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_file_is_uploaded_once_for_all_members() {
    let t = trio().await;
    let (dave, alice_dave, _dave_secrets) = dave(&t).await;
    let group = t
        .alice
        .engine
        .create_group(
            "Photos",
            "",
            &[t.alice_bob.clone(), t.alice_carol.clone(), alice_dave],
        )
        .await
        .unwrap();
    let members = [&t.bob, &t.carol, &dave];
    for member in members {
        wait_for_group(member, &group.id).await;
    }
    let database = t.relay.database().unwrap();
    assert_eq!(relay_blobs(&database).blobs, 0);

    let bytes = file(5 * 65_536 + 100, b"group-file-once");
    let sent = t
        .alice
        .engine
        .send_group_attachment(&group.id, outgoing("trip.bin", bytes.clone()))
        .await
        .unwrap();
    assert_eq!(sent.group_id.as_deref(), Some(group.id.as_str()));
    assert_eq!(sent.contact_id, None);
    let sent = wait_group_attachment(
        &t.alice,
        &group.id,
        "trip.bin",
        AttachmentStateView::Complete,
    )
    .await;
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
        let message = wait_for_text(member, &group.id, "trip.bin").await;
        assert_eq!(message.author_key, key_of(&t.alice));
        let offered =
            wait_group_attachment(member, &group.id, "trip.bin", AttachmentStateView::Offered)
                .await;
        assert_eq!(offered.message_id.as_deref(), Some(message.id.as_str()));
        assert_eq!(offered.group_id.as_deref(), Some(group.id.as_str()));
        assert_eq!(offered.size, bytes.len() as u64);
        member
            .engine
            .download_attachment(&offered.id)
            .await
            .unwrap();
        let done =
            wait_group_attachment(member, &group.id, "trip.bin", AttachmentStateView::Complete)
                .await;
        assert_eq!(
            member
                .engine
                .attachment_bytes(&done.id)
                .await
                .unwrap()
                .as_slice(),
            bytes.as_slice(),
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
    assert_eq!(
        t.alice
            .engine
            .attachment_bytes(&sent.id)
            .await
            .unwrap()
            .as_slice(),
        bytes.as_slice()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_gets_no_grant_for_a_group_file() {
    let t = trio().await;
    let (dave, alice_dave, _dave_secrets) = dave(&t).await;
    let group = t
        .alice
        .engine
        .create_group(
            "Photos",
            "",
            &[t.alice_bob.clone(), t.alice_carol.clone(), alice_dave],
        )
        .await
        .unwrap();
    for member in [&t.bob, &t.carol, &dave] {
        wait_for_group(member, &group.id).await;
    }
    t.alice
        .engine
        .remove_group_member(&group.id, &key_of(&dave))
        .await
        .unwrap();
    wait_until("Dave learns of his removal", || async {
        !group_of(&dave, &group.id).await.unwrap().is_member
    })
    .await;

    let bytes = file(3 * 65_536, b"not-for-dave");
    t.alice
        .engine
        .send_group_attachment(&group.id, outgoing("plan.bin", bytes.clone()))
        .await
        .unwrap();
    wait_group_attachment(
        &t.alice,
        &group.id,
        "plan.bin",
        AttachmentStateView::Complete,
    )
    .await;
    let database = t.relay.database().unwrap();
    let stored = relay_blobs(&database);
    assert_eq!(stored.blobs, 1);
    assert_eq!(stored.downloads, 2, "grants for Bob and Carol only");
    let at_alice = texts(&t.alice, &group.id)
        .await
        .into_iter()
        .find(|m| m.text == "plan.bin")
        .unwrap();
    assert_eq!(at_alice.recipients, 2);

    for member in [&t.bob, &t.carol] {
        let offered =
            wait_group_attachment(member, &group.id, "plan.bin", AttachmentStateView::Offered)
                .await;
        member
            .engine
            .download_attachment(&offered.id)
            .await
            .unwrap();
        let done =
            wait_group_attachment(member, &group.id, "plan.bin", AttachmentStateView::Complete)
                .await;
        assert_eq!(
            member
                .engine
                .attachment_bytes(&done.id)
                .await
                .unwrap()
                .as_slice(),
            bytes.as_slice()
        );
    }
    // Bob and Carol have it (so anything sealed to Dave would have reached him by now too):
    // Dave has neither the message nor the file, and may not send one to the group.
    t.bob.wait_outbox_empty().await;
    t.alice.wait_outbox_empty().await;
    assert!(
        texts(&dave, &group.id)
            .await
            .iter()
            .all(|m| m.text != "plan.bin")
    );
    assert!(
        dave.engine
            .get_group_attachments(&group.id)
            .await
            .unwrap()
            .is_empty()
    );
    let refused_send = dave
        .engine
        .send_group_attachment(&group.id, outgoing("late.bin", file(100, b"late")))
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
    t.alice
        .engine
        .remove_group_member(&id, &key_of(&t.carol))
        .await
        .unwrap();
    wait_until("Carol learns of her removal", || async {
        !group_of(&t.carol, &id).await.unwrap().is_member
    })
    .await;
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
    send_as(
        &t.relay,
        &t.carol,
        &t.carol_alice,
        Body::GroupAttachment {
            group_id,
            seq: 50,
            pointer: pointer("from-carol.txt"),
        },
    )
    .await;
    t.alice
        .wait_event(refused("a file from a non-member"))
        .await;

    // Bob, a member, sends a pointer out of its bounds (an inline file whose size lies).
    let mut lying = pointer("lying.txt");
    lying.size = 6;
    send_as(
        &t.relay,
        &t.bob,
        &t.bob_alice,
        Body::GroupAttachment {
            group_id,
            seq: 51,
            pointer: lying,
        },
    )
    .await;
    t.alice.wait_event(refused("out of its bounds")).await;

    // A file for a group Alice is not in.
    send_as(
        &t.relay,
        &t.bob,
        &t.bob_alice,
        Body::GroupAttachment {
            group_id: GroupId::from_bytes([9; 16]),
            seq: 52,
            pointer: pointer("elsewhere.txt"),
        },
    )
    .await;
    t.alice
        .wait_event(refused("a file for a group we are not in"))
        .await;

    // Bob's well-formed inline file goes through, shown as Bob's.
    send_as(
        &t.relay,
        &t.bob,
        &t.bob_alice,
        Body::GroupAttachment {
            group_id,
            seq: 53,
            pointer: pointer("from-bob.txt"),
        },
    )
    .await;
    let message = wait_for_text(&t.alice, &id, "from-bob.txt").await;
    assert_eq!(message.author_key, key_of(&t.bob));
    let inline =
        wait_group_attachment(&t.alice, &id, "from-bob.txt", AttachmentStateView::Complete).await;
    assert_eq!(
        t.alice
            .engine
            .attachment_bytes(&inline.id)
            .await
            .unwrap()
            .as_slice(),
        b"hello"
    );
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
