//! A session broken beyond MAX_SKIP restarts with X3DH to the peer's latest signed prekey
//! (BRIEF §3a rule 6, `docs/engine.md` § Session restart). Run as
//! `scripts/with-keyring.sh cargo test -p sealpost-tests --test session_restart`.
//!
//! Every wait is bounded ([`common::WAIT`]); nothing asserts on timing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Client, TestRelay, connect, wait_until};
use sealpost_client::engine::MessageStateView;
use sealpost_client::store::{ContactId, SessionStateBytes, UnixMillis};
use sealpost_client::{
    EngineEvent, ProfileDirs, ProfilesConfig, StoreConfig, Vault, open_profile_store,
};
use sealpost_crypto::Session;
use sealpost_crypto::ratchet::MAX_SKIP;

/// Alice's sending chain jumps more than MAX_SKIP ahead of what Bob received (as if that many
/// envelopes were lost): Bob refuses her next message, restarts the session with X3DH to her
/// signed prekey, and from then on messages flow both ways again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_broken_beyond_max_skip_restarts() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, _a) = Client::new("Alice", root.path(), &relay.url()).await;
    let (mut bob, _b) = Client::new("Bob", root.path(), &relay.url()).await;
    let (alice_bob, bob_alice, _) = connect(&alice, &bob, "Bob").await;

    alice
        .engine
        .send_message(&alice_bob, "before")
        .await
        .unwrap();
    wait_until("Bob has Alice's first message", || async {
        bob.incoming(&bob_alice).await.len() == 1
    })
    .await;
    bob.engine.send_message(&bob_alice, "reply").await.unwrap();
    wait_until("Alice has Bob's reply and both are delivered", || async {
        alice.incoming(&alice_bob).await.len() == 1
            && alice
                .messages(&alice_bob)
                .await
                .iter()
                .all(|m| !m.outgoing || m.state == MessageStateView::Delivered)
            && bob
                .messages(&bob_alice)
                .await
                .iter()
                .all(|m| !m.outgoing || m.state == MessageStateView::Delivered)
    })
    .await;

    // Test hook: with Alice stopped, step her sending chain MAX_SKIP + 5 times without sending.
    let (profile, alice_root) = alice.stop().await;
    {
        let dirs = ProfileDirs::resolve(
            &ProfilesConfig {
                data_root: Some(alice_root.clone()),
            },
            &profile,
        )
        .unwrap();
        let vault = Vault::open(&profile).unwrap();
        let mut store = open_profile_store(&dirs, &vault, &StoreConfig::default()).unwrap();
        let contact: ContactId = alice_bob.parse().unwrap();
        let state = store.session_state(contact).unwrap().unwrap();
        let mut session = Session::from_bytes(state.expose_secret()).unwrap();
        for _ in 0..MAX_SKIP + 5 {
            session.encrypt(b"lost").unwrap();
        }
        store
            .save_session_state(
                contact,
                &SessionStateBytes::new(session.to_bytes().unwrap().to_vec()),
                UnixMillis::now(),
            )
            .unwrap();
    }
    let alice = Client::reopen(&profile, &alice_root).await;

    // Bob cannot follow (the gap is beyond MAX_SKIP): refused, and the session restarted.
    alice
        .engine
        .send_message(&alice_bob, "lost in the gap")
        .await
        .unwrap();
    bob.wait_event(|event| {
        matches!(event, EngineEvent::EnvelopeRefused { reason } if reason.contains("session restarted"))
    })
    .await;

    // Bob's next message rides on the new session; Alice accepts the restart and reads it.
    bob.engine
        .send_message(&bob_alice, "after restart from Bob")
        .await
        .unwrap();
    wait_until("Alice has Bob's message on the new session", || async {
        alice
            .incoming(&alice_bob)
            .await
            .iter()
            .any(|m| m.text == "after restart from Bob")
    })
    .await;
    alice
        .engine
        .send_message(&alice_bob, "after restart from Alice")
        .await
        .unwrap();
    wait_until("Bob has Alice's message on the new session", || async {
        bob.incoming(&bob_alice)
            .await
            .iter()
            .any(|m| m.text == "after restart from Alice")
    })
    .await;
    bob.engine
        .send_message(&bob_alice, "and again")
        .await
        .unwrap();
    wait_until("Alice has Bob's next message", || async {
        alice.incoming(&alice_bob).await.len() == 3
    })
    .await;

    let bob_sees: Vec<_> = bob
        .incoming(&bob_alice)
        .await
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(bob_sees, vec!["before", "after restart from Alice"]);
    let alice_sees: Vec<_> = alice
        .incoming(&alice_bob)
        .await
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(
        alice_sees,
        vec!["reply", "after restart from Bob", "and again"]
    );
}
