//! Disappearing messages end to end (`docs/engine.md` § Disappearing messages): two real
//! engines on a loopback relay agree on the chat's timer, concurrent changes converge, and an
//! expired message is never returned — not after a restart with the clock moved forward, not
//! after a clock jump while running — by any read path (history, chat list, search). Run as
//! `scripts/with-keyring.sh cargo test -p sealpost-tests --test disappearing`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sealpost_client::{Clock, EngineEvent};
use sealpost_test_support::{Client, TestRelay, two_clients, wait_until};

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

async fn search_count(client: &Client, word: &str) -> usize {
    client
        .engine
        .search_messages(word, 50, None)
        .await
        .unwrap()
        .hits
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_agree_after_one_sets_the_timer() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, bob, alice_bob, bob_alice, _, _secrets) =
        two_clients(root.path(), &relay.url()).await;

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
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, bob, alice_bob, bob_alice, _, _secrets) =
        two_clients(root.path(), &relay.url()).await;

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
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, bob, alice_bob, bob_alice, _, _secrets) =
        two_clients(root.path(), &relay.url()).await;
    alice
        .engine
        .set_chat_timer(&alice_bob, FIVE_MINUTES)
        .await
        .unwrap();
    wait_until("Bob has the timer", || async {
        chat_timer(&bob, &bob_alice).await == FIVE_MINUTES
    })
    .await;
    alice.send(&alice_bob, "zqvanish soon").await;
    bob.wait_incoming_text(&bob_alice, "zqvanish soon").await;
    assert_eq!(search_count(&bob, "zqvanish").await, 1);
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
    assert_eq!(search_count(&bob, "zqvanish").await, 0, "nor in search");
    bob.wait_event(|event| matches!(event, EngineEvent::MessagesExpired { .. }))
        .await;

    // Alice's app keeps running while her clock jumps forward: her next read does not show it.
    assert_eq!(search_count(&alice, "zqvanish").await, 1);
    alice.engine.clock().advance(Duration::from_secs(600));
    let texts: Vec<String> = alice
        .messages(&alice_bob)
        .await
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert!(!texts.iter().any(|text| text == "zqvanish soon"));
    assert_eq!(search_count(&alice, "zqvanish").await, 0);
}
