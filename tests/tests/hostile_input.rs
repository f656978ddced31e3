//! Unauthenticated input never changes session state (`docs/engine.md` § Session restart,
//! § Receiving): a forged envelope claiming a contact's identity with a counter beyond MAX_SKIP
//! restarts nothing; a contact's huge sequence number is refused without stopping us from
//! sending; a replay whose dedupe row was pruned is still refused by the ratchet. Run as
//! `scripts/with-keyring.sh cargo test -p sealpost-tests --test hostile_input`.
//!
//! Every wait is bounded ([`sealpost_test_support::WAIT`]); nothing asserts on timing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sealpost_client::content::{Body, CONTENT_VERSION, Content};
use sealpost_client::engine::sequence::MAX_SEQ_ADVANCE;
use sealpost_client::store::{ContactId, SessionStateBytes, UnixMillis};
use sealpost_crypto::ratchet::{MAX_SKIP, RatchetMessage};
use sealpost_crypto::{
    IdentityKey, MailboxSealingPublicKey, SendId, Session, SessionMessage, seal_envelope,
};
use sealpost_test_support::{Client, TestRelay, refused, two_clients_exchanged, wait_until};

/// Test hook: seals `content` on `sender`'s stored session with its contact and stores the
/// advanced session, as the sender's engine would (the engine's own outbox is bypassed).
fn seal_as(sender: &Client, contact: &str, content: &Content) -> Vec<u8> {
    let route = sender.peer_mailbox(contact);
    let contact: ContactId = contact.parse().unwrap();
    sender.engine.with_store(|s| {
        let state = s.session_state(contact).unwrap().unwrap();
        let mut session = Session::from_bytes(state.expose_secret()).unwrap();
        let sealed = session
            .seal(
                &MailboxSealingPublicKey::from_bytes(route.sealing_public_key),
                &SendId(route.send_id),
                &content.to_bytes().unwrap(),
            )
            .unwrap();
        s.save_session_state(
            contact,
            &SessionStateBytes::new(session.to_bytes().unwrap().to_vec()),
            UnixMillis::now(),
        )
        .unwrap();
        sealed.as_bytes().to_vec()
    })
}

fn text(seq: u64, text: &str) -> Content {
    Content {
        v: CONTENT_VERSION,
        seq,
        sent_at_ms: 0,
        body: Body::Text {
            text: text.to_owned(),
        },
        receipts: vec![],
    }
}

/// Messages flow both ways (the session was not broken).
async fn still_talking(alice: &Client, bob: &Client, alice_bob: &str, bob_alice: &str, tag: &str) {
    let from_bob = format!("from Bob {tag}");
    bob.send(bob_alice, &from_bob).await;
    alice.wait_incoming_text(alice_bob, &from_bob).await;
    let from_alice = format!("from Alice {tag}");
    alice.send(alice_bob, &from_alice).await;
    bob.wait_incoming_text(bob_alice, &from_alice).await;
}

/// A forged ratchet message (random ciphertext) claiming Bob's identity, with a counter beyond
/// MAX_SKIP (same chain length far ahead; a new ratchet key with PN far ahead; a counter beyond
/// the check cap): Alice refuses it, her stored session is byte-identical, she seals no
/// `Restart`, and Bob's next real message opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_counter_beyond_max_skip_restarts_nothing() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (mut alice, bob, alice_bob, bob_alice, _, _secrets) =
        two_clients_exchanged(root.path(), &relay.url(), "hi", "hello").await;
    let route = bob.peer_mailbox(&bob_alice);
    let bob_identity = alice.engine.with_store(|s| {
        let row = s.contact(alice_bob.parse().unwrap()).unwrap().unwrap();
        IdentityKey::from_bytes(row.identity_key.as_bytes().try_into().unwrap()).unwrap()
    });
    let before = alice.session_bytes(&alice_bob);
    for (pn, n) in [(0, MAX_SKIP + 10), (u32::MAX, 0), (0, u32::MAX)] {
        let mut bytes = vec![1u8];
        let mut random = [0u8; 32 + 48];
        getrandom::fill(&mut random).unwrap();
        bytes.extend_from_slice(&random[..32]);
        bytes.extend_from_slice(&pn.to_be_bytes());
        bytes.extend_from_slice(&n.to_be_bytes());
        bytes.extend_from_slice(&random[32..]);
        let message = SessionMessage::Ratchet(RatchetMessage::from_bytes(&bytes).unwrap());
        let sealed = seal_envelope(
            &MailboxSealingPublicKey::from_bytes(route.sealing_public_key),
            &SendId(route.send_id),
            &bob_identity,
            &message,
        )
        .unwrap();
        route.inject(sealed.as_bytes()).await;
        alice.wait_event(refused("ratchet refused")).await;
    }
    assert_eq!(
        alice.session_bytes(&alice_bob),
        before,
        "the stored session is byte-identical"
    );
    let restarted = alice.setting(&format!("engine.restart-sent.{alice_bob}"));
    assert_eq!(restarted, None, "no Restart was sealed");
    still_talking(&alice, &bob, &alice_bob, &bob_alice, "after the forgeries").await;
    assert_eq!(alice.incoming(&alice_bob).await.len(), 2);
}

/// A contact's text with a sequence number near the end of the range (or far ahead of the
/// conversation) is refused with its reason; we can still send to that contact, and the
/// contact's next ordinary message opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_sequence_number_is_refused_and_sending_goes_on() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (mut alice, bob, alice_bob, bob_alice, _, _secrets) =
        two_clients_exchanged(root.path(), &relay.url(), "hi", "hello").await;
    let route = bob.peer_mailbox(&bob_alice);
    for seq in [
        i64::MAX.unsigned_abs(),
        i64::MAX.unsigned_abs() - 1,
        u64::MAX,
        10 + MAX_SEQ_ADVANCE,
    ] {
        let envelope = seal_as(&bob, &bob_alice, &text(seq, "huge"));
        route.inject(&envelope).await;
        alice.wait_event(refused("content: sequence number")).await;
    }
    assert!(
        alice
            .incoming(&alice_bob)
            .await
            .iter()
            .all(|m| m.text != "huge")
    );
    still_talking(
        &alice,
        &bob,
        &alice_bob,
        &bob_alice,
        "after the huge numbers",
    )
    .await;
}

/// A replay of an envelope whose dedupe row was pruned (by age) is still refused: the ratchet
/// refuses the used message key. Shown once, session byte-identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_after_its_dedupe_row_is_pruned_is_still_refused() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (mut alice, bob, alice_bob, bob_alice, _, _secrets) =
        two_clients_exchanged(root.path(), &relay.url(), "hi", "hello").await;
    let route = bob.peer_mailbox(&bob_alice);
    let envelope = seal_as(&bob, &bob_alice, &text(40, "only once"));
    route.inject(&envelope).await;
    alice.wait_incoming_text(&alice_bob, "only once").await;
    // Let every receipt settle (Alice's for the message rides on her next text; Bob's for that
    // text comes back), so that nothing but the replay could touch Alice's session.
    still_talking(&alice, &bob, &alice_bob, &bob_alice, "before the replay").await;
    wait_until("Alice's messages are delivered", || async {
        alice.all_delivered(&alice_bob).await
    })
    .await;
    let pruned = alice
        .engine
        .with_store(|s| s.prune_seen_envelopes(UnixMillis(i64::MAX)))
        .unwrap();
    assert!(pruned >= 1, "the dedupe rows are gone");
    let before = alice.session_bytes(&alice_bob);
    route.inject(&envelope).await;
    alice.wait_event(refused("ratchet refused")).await;
    let shown = alice
        .incoming(&alice_bob)
        .await
        .iter()
        .filter(|m| m.text == "only once")
        .count();
    assert_eq!(shown, 1);
    assert_eq!(alice.session_bytes(&alice_bob), before);
    still_talking(&alice, &bob, &alice_bob, &bob_alice, "after the replay").await;
}
