//! Process-level crash tests (issue 4): a relay process killed with SIGKILL mid-conversation and
//! restarted on the same database, and a client process killed with SIGKILL mid-send and
//! restarted. Nothing is lost and nothing is shown twice. Run as
//! `scripts/with-keyring.sh cargo test -p sealpost-tests --test crash`; the helper processes are
//! this package's binaries (`src/bin/`), which Cargo builds for these tests, and they reach the
//! same Secret Service through the inherited D-Bus session.
//!
//! Every wait is bounded ([`sealpost_test_support::WAIT`]); nothing asserts on timing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sealpost_test_support::{
    ChildProcess, Client, RelayProcess, TestRelay, two_clients_first_message, wait_until,
};

/// The relay as a child process (`sealpost-test-relay`) on a database that outlives it.
async fn relay_process() -> RelayProcess {
    RelayProcess::start(env!("CARGO_BIN_EXE_sealpost-test-relay"), &[]).await
}

/// Incoming texts of `client` from `contact` that start with `prefix`, in conversation order.
async fn texts_with_prefix(client: &Client, contact: &str, prefix: &str) -> Vec<String> {
    client
        .incoming(contact)
        .await
        .into_iter()
        .map(|m| m.text)
        .filter(|text| text.starts_with(prefix))
        .collect()
}

fn numbered(prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|index| format!("{prefix} {index}"))
        .collect()
}

/// The relay process is killed with SIGKILL while both sides are sending, then started again on
/// the same database: every message arrives, in order, exactly once, in both directions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_sigkill_mid_conversation_loses_nothing_and_repeats_nothing() {
    const EACH: usize = 60;
    let mut relay = relay_process().await;
    let root = tempfile::tempdir().unwrap();
    // Both sides' sender keys are bound before the load starts.
    let (alice, bob, alice_bob, bob_alice, _, _secrets) =
        two_clients_first_message(root.path(), &relay.url(), "hi").await;
    bob.send(&bob_alice, "hello").await;
    alice.wait_incoming_count(&alice_bob, 1).await;

    // Both send a message every few milliseconds, across the kill and the restart.
    let senders = [
        (alice.engine.clone(), alice_bob.clone(), "from alice"),
        (bob.engine.clone(), bob_alice.clone(), "from bob"),
    ]
    .map(|(engine, contact, prefix)| {
        tokio::spawn(async move {
            for index in 0..EACH {
                engine
                    .send_message(&contact, &format!("{prefix} {index}"))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(8)).await;
            }
        })
    });
    wait_until("the conversation is under way", || async {
        texts_with_prefix(&bob, &bob_alice, "from alice")
            .await
            .len()
            >= 10
    })
    .await;
    relay.kill9();
    let at_kill = texts_with_prefix(&bob, &bob_alice, "from alice")
        .await
        .len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    relay.restart().await;
    for sender in senders {
        sender.await.unwrap();
    }

    wait_until("Bob has all of Alice's messages", || async {
        texts_with_prefix(&bob, &bob_alice, "from alice")
            .await
            .len()
            >= EACH
    })
    .await;
    wait_until("Alice has all of Bob's messages", || async {
        texts_with_prefix(&alice, &alice_bob, "from bob")
            .await
            .len()
            >= EACH
    })
    .await;
    // Settle: a marker each way after everything; once it is in, any repeat would be too.
    alice.send(&alice_bob, "end").await;
    bob.send(&bob_alice, "end").await;
    wait_until("both markers arrived", || async {
        bob.incoming(&bob_alice)
            .await
            .iter()
            .any(|m| m.text == "end")
            && alice
                .incoming(&alice_bob)
                .await
                .iter()
                .any(|m| m.text == "end")
    })
    .await;
    eprintln!("Bob had {at_kill} of Alice's {EACH} messages when the relay was killed");
    assert!(at_kill < EACH, "the kill came mid-conversation");
    assert_eq!(
        texts_with_prefix(&bob, &bob_alice, "from alice").await,
        numbered("from alice", EACH),
        "every message once, in the sender's order"
    );
    assert_eq!(
        texts_with_prefix(&alice, &alice_bob, "from bob").await,
        numbered("from bob", EACH),
        "every message once, in the sender's order"
    );
    assert_eq!(bob.incoming(&bob_alice).await.len(), EACH + 2);
    assert_eq!(alice.incoming(&alice_bob).await.len(), EACH + 2);
}

/// Alice's client runs as a separate process and is killed with SIGKILL while it sends; her
/// profile is opened again: the outbox is resent and Bob sees each message Alice's store holds
/// exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_sigkill_mid_send_resends_outbox_and_bob_sees_each_once() {
    const KILL_AFTER: usize = 40;
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, bob, alice_bob, bob_alice, _, _secrets) =
        two_clients_first_message(root.path(), &relay.url(), "before").await;
    let (alice_profile, alice_root) = alice.stop().await;

    let mut sender = ChildProcess::spawn(
        env!("CARGO_BIN_EXE_sealpost-test-sender"),
        &[
            alice_profile.as_str(),
            alice_root.to_str().unwrap(),
            &alice_bob,
            "1000",
            "crash",
        ],
    );
    let queued = sender
        .line_starting(&format!("queued {}", KILL_AFTER - 1))
        .await;
    assert!(queued.is_some(), "the sender process ended early");
    sender.kill9();

    let delivered_before = texts_with_prefix(&bob, &bob_alice, "crash").await.len();
    let alice = Client::reopen(&alice_profile, &alice_root).await;
    let in_outbox = alice.engine.with_store(|s| s.outbox().unwrap().len());
    let stored: Vec<String> = alice
        .messages(&alice_bob)
        .await
        .into_iter()
        .filter(|m| m.outgoing && m.text.starts_with("crash"))
        .map(|m| m.text)
        .collect();
    assert!(
        stored.len() >= KILL_AFTER && stored.len() < 1000,
        "killed mid-send: {} stored",
        stored.len()
    );
    assert_eq!(stored, numbered("crash", stored.len()));
    eprintln!(
        "killed after {} stored, {delivered_before} delivered, about {in_outbox} left in the outbox",
        stored.len()
    );
    wait_until("Bob has every message Alice stored", || async {
        texts_with_prefix(&bob, &bob_alice, "crash").await.len() >= stored.len()
    })
    .await;
    alice.wait_outbox_empty().await;
    alice.send(&alice_bob, "after").await;
    bob.wait_incoming_text(&bob_alice, "after").await;
    assert_eq!(
        texts_with_prefix(&bob, &bob_alice, "crash").await,
        stored,
        "each message once, in order"
    );
    assert_eq!(bob.incoming(&bob_alice).await.len(), stored.len() + 2);
}
