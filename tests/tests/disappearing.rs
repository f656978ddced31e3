//! Disappearing messages end to end (`docs/engine.md` § Disappearing messages): two real
//! engines on a loopback relay agree on the chat's timer, concurrent changes converge, and an
//! expired message is never returned — not after a restart with the clock moved forward, not
//! after a clock jump while running — by any read path (history, chat list, search). Run as
//! `scripts/with-keyring.sh cargo test -p sealpost-tests --test disappearing`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use sealpost_client::blobs::MemoryBlobs;
use sealpost_client::engine::AttachmentStateView;
use sealpost_client::scan::{Needle, scan_dir_for_needles};
use sealpost_client::{Clock, EngineConfig, EngineEvent};
use sealpost_test_support::{
    Client, bytes_of, chunk_dir, download_if_offered, find_attachment, memory_blobs,
    receive_attachment, send_file, two_clients_on_new_relay, wait_attachment,
    wait_attachment_state, wait_until,
};
use sealpost_tests::hooked_blobs::{ChunkHooks, HookedBlobs};

const HOUR: u32 = 3600;
const DAY: u32 = 24 * 3600;
const FIVE_MINUTES: u32 = 300;

async fn chat_timer(client: &Client, contact: &str) -> u32 {
    let chats = client.engine.list_chats().await.unwrap();
    chats
        .iter()
        .find(|chat| chat.contact_id == contact)
        .unwrap()
        .timer_seconds
}

/// The system lines of the conversation: the timer each change set, in conversation order.
async fn timer_lines(client: &Client, contact: &str) -> Vec<u32> {
    client
        .messages(contact)
        .await
        .iter()
        .filter_map(|message| message.timer_change)
        .collect()
}

/// `setter` sets the chat's timer to `seconds`; waits until `peer` has it too.
async fn set_timer_and_wait(
    (setter, setter_contact): (&Client, &str),
    (peer, peer_contact): (&Client, &str),
    seconds: u32,
) {
    setter
        .engine
        .set_chat_timer(setter_contact, seconds)
        .await
        .unwrap();
    wait_until(
        &format!("the other side has the timer {seconds}"),
        || async { chat_timer(peer, peer_contact).await == seconds },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_agree_after_one_sets_the_timer() {
    let (_relay, _root, (alice, bob, alice_bob, bob_alice, _, _secrets)) =
        two_clients_on_new_relay(|_| {}).await;

    let line = alice.engine.set_chat_timer(&alice_bob, HOUR).await.unwrap();
    assert_eq!(line.timer_change, Some(HOUR));
    assert_eq!(chat_timer(&alice, &alice_bob).await, HOUR);
    wait_until("Bob's chat has Alice's timer", || async {
        chat_timer(&bob, &bob_alice).await == HOUR
    })
    .await;
    assert_eq!(
        timer_lines(&bob, &bob_alice).await,
        [HOUR],
        "Bob sees the system line"
    );

    // Every message carries the timer it was sent with, both ways.
    let sent = alice.send(&alice_bob, "under the hour timer").await;
    assert_eq!(sent.timer_seconds, Some(HOUR));
    assert!(sent.expires_at.is_some());
    bob.wait_incoming_text(&bob_alice, "under the hour timer")
        .await;
    let got = bob.incoming(&bob_alice).await;
    let text = got
        .iter()
        .find(|m| m.text == "under the hour timer")
        .unwrap();
    assert_eq!(text.timer_seconds, Some(HOUR));
    let expires_at = text.expires_at.unwrap();
    assert!(expires_at >= text.received_at.unwrap() + i64::from(HOUR) * 1000);

    // Bob turns it off: both agree again, and the next message has no timer.
    bob.engine.set_chat_timer(&bob_alice, 0).await.unwrap();
    wait_until("Alice's chat is off again", || async {
        chat_timer(&alice, &alice_bob).await == 0
    })
    .await;
    let after = bob.send(&bob_alice, "no timer now").await;
    assert_eq!(after.timer_seconds, None);
    assert_eq!(timer_lines(&alice, &alice_bob).await, [HOUR, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_timer_changes_converge() {
    let (_relay, _root, (alice, bob, alice_bob, bob_alice, _, _secrets)) =
        two_clients_on_new_relay(|_| {}).await;

    // Both set a different timer before either has the other's change.
    let (a, b) = tokio::join!(
        alice.engine.set_chat_timer(&alice_bob, DAY),
        bob.engine.set_chat_timer(&bob_alice, HOUR),
    );
    a.unwrap();
    b.unwrap();
    wait_until("both have both changes", || async {
        timer_lines(&alice, &alice_bob).await.len() == 2
            && timer_lines(&bob, &bob_alice).await.len() == 2
    })
    .await;
    let (on_alice, on_bob) = (
        chat_timer(&alice, &alice_bob).await,
        chat_timer(&bob, &bob_alice).await,
    );
    assert_eq!(on_alice, on_bob, "both sides converge");
    assert_eq!(
        on_alice, HOUR,
        "a tie goes to the shorter timer; a later change wins anyway"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_message_is_never_returned_after_a_restart_with_the_clock_moved_forward() {
    let (_relay, _root, (alice, bob, alice_bob, bob_alice, _, _secrets)) =
        two_clients_on_new_relay(|_| {}).await;
    set_timer_and_wait((&alice, &alice_bob), (&bob, &bob_alice), FIVE_MINUTES).await;
    alice.send(&alice_bob, "zqvanish soon").await;
    bob.wait_incoming_text(&bob_alice, "zqvanish soon").await;
    assert_eq!(bob.search_count("zqvanish").await, 1);
    alice.wait_outbox_empty().await;

    // Bob closes the app; when it opens again ten minutes later, the message is already gone,
    // from the first answer on.
    let (profile, root_path) = bob.stop().await;
    let mut bob = Client::reopen_with(&profile, &root_path, |config| {
        config.clock = Clock::ahead_by(Duration::from_secs(600));
    })
    .await;
    assert_eq!(
        bob.incoming_texts(&bob_alice).await,
        [""],
        "no expired message in the history, only the timer's system line"
    );
    let chats = bob.engine.list_chats().await.unwrap();
    let last = chats[0].last_message.as_ref().map(|m| m.text.clone());
    assert_ne!(
        last.as_deref(),
        Some("zqvanish soon"),
        "nor in the chat list"
    );
    assert_eq!(bob.search_count("zqvanish").await, 0, "nor in search");
    bob.wait_event(|event| matches!(event, EngineEvent::MessagesExpired { .. }))
        .await;

    // Alice's app keeps running while her clock jumps forward: her next read does not show it.
    assert_eq!(alice.search_count("zqvanish").await, 1);
    alice.engine.clock().advance(Duration::from_secs(600));
    let texts: Vec<String> = alice
        .messages(&alice_bob)
        .await
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert!(!texts.iter().any(|text| text == "zqvanish soon"));
    assert_eq!(alice.search_count("zqvanish").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_attachment_takes_its_chunk_files_with_it_on_both_sides() {
    let (_blobs, adjust) = memory_blobs!();
    let (_relay, _root, (alice, bob, alice_bob, bob_alice, _, _secrets)) =
        two_clients_on_new_relay(adjust).await;
    set_timer_and_wait((&alice, &alice_bob), (&bob, &bob_alice), FIVE_MINUTES).await;

    // A file big enough to travel as a blob (chunk files on both sides).
    let name = "zqexpiring-plans.bin";
    let marker = b"NEEDLE-expiring-attachment-plaintext";
    let mut bytes: Vec<u8> = (0..200_000usize).map(|i| (i * 7 % 251) as u8).collect();
    bytes[..marker.len()].copy_from_slice(marker);
    send_file(&alice, &alice_bob, name, bytes.clone()).await;
    let received = receive_attachment(&bob, &bob_alice, name).await;
    let sent = wait_attachment_state(&alice, &alice_bob, name, AttachmentStateView::Complete).await;
    assert!(sent.message_id.is_some());
    assert_eq!(bytes_of(&bob, &received.id).await, bytes);
    alice.wait_outbox_empty().await;

    // Both messages carry the chat's timer.
    let got = bob.incoming(&bob_alice).await;
    let message = got.iter().find(|m| m.text == name).unwrap();
    assert_eq!(message.timer_seconds, Some(FIVE_MINUTES));
    let mine = alice.messages(&alice_bob).await;
    let message = mine.iter().find(|m| m.text == name).unwrap();
    assert_eq!(message.timer_seconds, Some(FIVE_MINUTES));

    let alice_dir = chunk_dir(&alice, &sent.id);
    let bob_dir = chunk_dir(&bob, &received.id);
    // Search finds the file by its name on both sides (the message text is the name).
    assert_eq!(alice.search_count("zqexpiring").await, 1);
    assert_eq!(bob.search_count("zqexpiring").await, 1);
    assert!(alice_dir.is_dir(), "Alice keeps the chunk files she sent");
    assert!(bob_dir.is_dir(), "Bob keeps the chunk files he received");

    // Ten minutes later the next read finds neither the message nor the file.
    for client in [&alice, &bob] {
        client.engine.clock().advance(Duration::from_secs(600));
    }
    assert!(
        alice
            .engine
            .get_attachments(&alice_bob)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        bob.engine
            .get_attachments(&bob_alice)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !alice_dir.exists(),
        "Alice's chunk files went with the message"
    );
    assert!(!bob_dir.exists(), "Bob's chunk files went with the message");
    assert_eq!(alice.search_count("zqexpiring").await, 0, "nor in search");
    assert_eq!(bob.search_count("zqexpiring").await, 0, "nor in search");

    let needles = [
        Needle::new("file bytes", marker.to_vec()),
        Needle::new("file name", name.as_bytes().to_vec()),
    ];
    for client in [&alice, &bob] {
        let findings = scan_dir_for_needles(client.engine.profile_dirs().profile_dir(), &needles);
        assert!(findings.is_empty(), "found at rest: {findings:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_files_without_a_row_are_removed_on_open() {
    let (_relay, _root, (_alice, bob, _alice_bob, _bob_alice, _, _secrets)) =
        two_clients_on_new_relay(|_| {}).await;
    // As if the app stopped after an expiry committed and before the files went.
    let orphan = chunk_dir(&bob, "00112233445566778899aabbccddeeff");
    std::fs::create_dir_all(&orphan).unwrap();
    std::fs::write(orphan.join("00000000.chunk"), b"ciphertext").unwrap();
    let (profile, root_path) = bob.stop().await;
    let bob = Client::reopen_with(&profile, &root_path, |_| {}).await;
    assert!(
        !orphan.exists(),
        "a directory without a row is removed on open"
    );
    drop(bob);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_contact_removes_its_attachment_files() {
    let (_blobs, adjust) = memory_blobs!();
    let (_relay, _root, (alice, bob, alice_bob, bob_alice, _, _secrets)) =
        two_clients_on_new_relay(adjust).await;
    let name = "kept-until-deleted.bin";
    let bytes: Vec<u8> = (0..100_000usize).map(|i| (i * 11 % 249) as u8).collect();
    send_file(&alice, &alice_bob, name, bytes).await;
    let received = receive_attachment(&bob, &bob_alice, name).await;
    let bob_dir = chunk_dir(&bob, &received.id);
    assert!(bob_dir.is_dir());
    bob.engine.delete_contact(&bob_alice).await.unwrap();
    assert!(!bob_dir.exists(), "the chunk files went with the contact");
}

/// Holds the first download of chunk 1 until the test lets it go, and records every chunk
/// asked for: a download caught in the middle, deterministically.
struct Hold {
    /// Permits to finish the held download (one, given by the test).
    let_go: tokio::sync::Semaphore,
    /// Set once the held download has started.
    held: AtomicBool,
    /// Every chunk download asked for: (grant, index).
    asked: Mutex<Vec<(Vec<u8>, u32)>>,
}

impl Hold {
    fn asked_for(&self, grant: &[u8]) -> Vec<u32> {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .filter(|(g, _)| g == grant)
            .map(|(_, index)| *index)
            .collect()
    }
}

impl ChunkHooks for Hold {
    fn before_download<'a>(&'a self, grant: &'a [u8], index: u32) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.asked.lock().unwrap().push((grant.to_vec(), index));
            if index == 1 && !self.held.swap(true, Ordering::SeqCst) {
                self.let_go.acquire().await.unwrap().forget();
            }
        })
    }
}

/// A blob store whose downloads are [`Hold`]'s to hold.
type HeldDownloads = HookedBlobs<MemoryBlobs, Hold>;

/// The chunk files in an attachment directory (none when it does not exist).
fn chunk_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| entries.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_in_progress_stops_when_its_message_expires() {
    static BLOBS: OnceLock<Arc<HeldDownloads>> = OnceLock::new();
    fn blobs() -> Arc<HeldDownloads> {
        BLOBS
            .get_or_init(|| {
                Arc::new(HeldDownloads {
                    inner: MemoryBlobs::new(),
                    hooks: Hold {
                        let_go: tokio::sync::Semaphore::new(0),
                        held: AtomicBool::new(false),
                        asked: Mutex::new(Vec::new()),
                    },
                })
            })
            .clone()
    }
    fn adjust(config: &mut EngineConfig) {
        config.blobs = Some(blobs());
    }
    let (_relay, _root, (alice, bob, alice_bob, bob_alice, _, _secrets)) =
        two_clients_on_new_relay(adjust).await;
    set_timer_and_wait((&alice, &alice_bob), (&bob, &bob_alice), FIVE_MINUTES).await;

    // Four chunks: Bob's download stores chunk 0 and is held inside chunk 1.
    let name = "zqcut-short.bin";
    let bytes: Vec<u8> = (0..200_000usize).map(|i| (i * 13 % 241) as u8).collect();
    send_file(&alice, &alice_bob, name, bytes.clone()).await;
    let offered = wait_attachment(&bob, &bob_alice, name).await;
    download_if_offered(&bob, &offered).await;
    let blobs = blobs();
    let held = &blobs.hooks;
    wait_until("Bob's download is held inside chunk 1", || async {
        held.held.load(Ordering::SeqCst)
    })
    .await;
    let bob_dir = chunk_dir(&bob, &offered.id);
    assert_eq!(chunk_files(&bob_dir), 1, "chunk 0 is on disk");
    let during = find_attachment(&bob, &bob_alice, name).await.unwrap();
    assert_eq!(during.state, AttachmentStateView::Downloading);

    // The message expires while the download waits: the next read shows nothing of it and its
    // files are gone.
    bob.engine.clock().advance(Duration::from_secs(600));
    assert!(find_attachment(&bob, &bob_alice, name).await.is_none());
    assert!(!bob_dir.exists(), "the chunk files went at expiry");
    assert!(
        !bob.incoming_texts(&bob_alice)
            .await
            .iter()
            .any(|t| t == name),
        "no message for it"
    );
    assert_eq!(bob.search_count("zqcut").await, 0);

    // The held chunk arrives now: the download stops there (chunk 2 is never asked for) and
    // writes nothing back. Transfers run one at a time, so once a later file is complete the
    // stopped one is behind it.
    held.let_go.add_permits(1);
    let after = "zqafter-it.bin";
    set_timer_and_wait((&alice, &alice_bob), (&bob, &bob_alice), 0).await;
    send_file(&alice, &alice_bob, after, bytes[..100_000].to_vec()).await;
    let second = receive_attachment(&bob, &bob_alice, after).await;

    let grant_asked: Vec<Vec<u32>> = {
        let asked = held.asked.lock().unwrap();
        let mut grants: Vec<Vec<u8>> = Vec::new();
        for (grant, _) in asked.iter() {
            if !grants.contains(grant) {
                grants.push(grant.clone());
            }
        }
        drop(asked);
        grants.iter().map(|g| held.asked_for(g)).collect()
    };
    assert_eq!(
        grant_asked.first().map(Vec::as_slice),
        Some([0, 1].as_slice()),
        "the expired download asked for chunks 0 and 1 only"
    );
    assert!(!bob_dir.exists(), "nothing written back after the expiry");
    let attachments = bob.engine.get_attachments(&bob_alice).await.unwrap();
    assert_eq!(attachments.len(), 1, "only the second file is left");
    assert_eq!(attachments[0].file_name, after);
    let root_dir = bob.engine.profile_dirs().profile_dir().join("attachments");
    let left: Vec<String> = std::fs::read_dir(&root_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, [second.id], "no directory of the expired file");
}
