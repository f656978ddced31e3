//! Unauthenticated input never changes session state (`docs/engine.md` § Session restart,
//! § Receiving): a forged envelope claiming a contact's identity with a counter beyond MAX_SKIP
//! restarts nothing; a contact's huge sequence number is refused without stopping us from
//! sending; a replay whose dedupe row was pruned is still refused by the ratchet. Run as
//! `scripts/with-keyring.sh cargo test -p sealpost-tests --test hostile_input`.
//!
//! Every wait is bounded ([`common::WAIT`]); nothing asserts on timing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Client, Secrets, TestRelay, connect, inject, wait_until};
use sealpost_client::EngineEvent;
use sealpost_client::content::{Body, CONTENT_VERSION, Content};
use sealpost_client::engine::MessageStateView;
use sealpost_client::engine::sequence::MAX_SEQ_ADVANCE;
use sealpost_client::store::{ContactId, SessionStateBytes, UnixMillis};
use sealpost_crypto::ratchet::{MAX_SKIP, RatchetMessage};
use sealpost_crypto::{
    IdentityKey, MailboxSealingPublicKey, SendId, Session, SessionMessage, seal_envelope,
};

/// Where `sender` writes to its contact: the mailbox, its send secret and sealing key, and the
/// sender key the relay checks (a malicious relay needs none of it; the test uses the real one).
struct Route {
    send_id: [u8; 32],
    send_secret: [u8; 32],
    sealing: [u8; 32],
    sender_key: ed25519_dalek::SigningKey,
}

fn route(sender: &Client, contact: &str) -> Route {
    sender.engine.with_store(|s| {
        let address = s
            .peer_addresses(contact.parse().unwrap())
            .unwrap()
            .remove(0);
        Route {
            send_id: address.send_id.0,
            send_secret: address.send_secret.expose_secret().try_into().unwrap(),
            sealing: address.sealing_public_key.as_bytes().try_into().unwrap(),
            sender_key: ed25519_dalek::SigningKey::from_bytes(
                &address
                    .sender_auth_secret_key
                    .expose_secret()
                    .try_into()
                    .unwrap(),
            ),
        }
    })
}

async fn inject_via(relay: &TestRelay, route: &Route, envelope: &[u8]) {
    inject(
        &relay.url(),
        route.send_id,
        route.send_secret,
        &route.sender_key,
        envelope,
    )
    .await;
}

/// Test hook: seals `content` on `sender`'s stored session with its contact and stores the
/// advanced session, as the sender's engine would (the engine's own outbox is bypassed).
fn seal_as(sender: &Client, contact: &str, content: &Content) -> Vec<u8> {
    let route = route(sender, contact);
    let contact: ContactId = contact.parse().unwrap();
    sender.engine.with_store(|s| {
        let state = s.session_state(contact).unwrap().unwrap();
        let mut session = Session::from_bytes(state.expose_secret()).unwrap();
        let sealed = session
            .seal(
                &MailboxSealingPublicKey::from_bytes(route.sealing),
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

/// The stored session with a contact, byte for byte.
fn session_bytes(client: &Client, contact: &str) -> Vec<u8> {
    client.engine.with_store(|s| {
        s.session_state(contact.parse().unwrap())
            .unwrap()
            .unwrap()
            .expose_secret()
            .to_vec()
    })
}

fn refused(what: &'static str) -> impl FnMut(&EngineEvent) -> bool {
    move |event| matches!(event, EngineEvent::EnvelopeRefused { reason } if reason.contains(what))
}

/// Whether all of `client`'s messages to `contact` are delivered.
async fn delivered(client: &Client, contact: &str) -> bool {
    client
        .messages(contact)
        .await
        .iter()
        .all(|m| !m.outgoing || m.state == MessageStateView::Delivered)
}

/// Two clients who have exchanged a message each way (their keychain entries go when the
/// returned secrets are dropped).
async fn pair(
    relay: &TestRelay,
    root: &std::path::Path,
) -> (Client, Client, String, String, [Secrets; 2]) {
    let (alice, a) = Client::new("Alice", root, &relay.url()).await;
    let (bob, b) = Client::new("Bob", root, &relay.url()).await;
    let (alice_bob, bob_alice, _) = connect(&alice, &bob, "Bob").await;
    alice.engine.send_message(&alice_bob, "hi").await.unwrap();
    wait_until("Bob has Alice's first message", || async {
        bob.incoming(&bob_alice).await.len() == 1
    })
    .await;
    bob.engine.send_message(&bob_alice, "hello").await.unwrap();
    // Both delivered: every receipt has been sealed and opened, so nothing else moves either
    // session until the test does.
    wait_until("Alice has Bob's reply and both are delivered", || async {
        alice.incoming(&alice_bob).await.len() == 1
            && delivered(&alice, &alice_bob).await
            && delivered(&bob, &bob_alice).await
    })
    .await;
    (alice, bob, alice_bob, bob_alice, [a, b])
}

/// Messages flow both ways (the session was not broken).
async fn still_talking(alice: &Client, bob: &Client, alice_bob: &str, bob_alice: &str, tag: &str) {
    let from_bob = format!("from Bob {tag}");
    bob.engine.send_message(bob_alice, &from_bob).await.unwrap();
    wait_until("Alice opens Bob's next real message", || async {
        alice
            .incoming(alice_bob)
            .await
            .iter()
            .any(|m| m.text == from_bob)
    })
    .await;
    let from_alice = format!("from Alice {tag}");
    alice
        .engine
        .send_message(alice_bob, &from_alice)
        .await
        .unwrap();
    wait_until("Bob opens Alice's next message", || async {
        bob.incoming(bob_alice)
            .await
            .iter()
            .any(|m| m.text == from_alice)
    })
    .await;
}

/// A forged ratchet message (random ciphertext) claiming Bob's identity, with a counter beyond
/// MAX_SKIP (same chain length far ahead; a new ratchet key with PN far ahead; a counter beyond
/// the check cap): Alice refuses it, her stored session is byte-identical, she seals no
/// `Restart`, and Bob's next real message opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_counter_beyond_max_skip_restarts_nothing() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (mut alice, bob, alice_bob, bob_alice, _secrets) = pair(&relay, root.path()).await;
    let route = route(&bob, &bob_alice);
    let bob_identity = alice.engine.with_store(|s| {
        let row = s.contact(alice_bob.parse().unwrap()).unwrap().unwrap();
        IdentityKey::from_bytes(row.identity_key.as_bytes().try_into().unwrap()).unwrap()
    });
    let before = session_bytes(&alice, &alice_bob);
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
            &MailboxSealingPublicKey::from_bytes(route.sealing),
            &SendId(route.send_id),
            &bob_identity,
            &message,
        )
        .unwrap();
        inject_via(&relay, &route, sealed.as_bytes()).await;
        alice.wait_event(refused("ratchet refused")).await;
    }
    assert_eq!(
        session_bytes(&alice, &alice_bob),
        before,
        "the stored session is byte-identical"
    );
    let restarted = alice.engine.with_store(|s| {
        s.setting(&format!("engine.restart-sent.{alice_bob}"))
            .unwrap()
    });
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
    let (mut alice, bob, alice_bob, bob_alice, _secrets) = pair(&relay, root.path()).await;
    let route = route(&bob, &bob_alice);
    for seq in [
        i64::MAX.unsigned_abs(),
        i64::MAX.unsigned_abs() - 1,
        u64::MAX,
        10 + MAX_SEQ_ADVANCE,
    ] {
        let envelope = seal_as(&bob, &bob_alice, &text(seq, "huge"));
        inject_via(&relay, &route, &envelope).await;
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
    let (mut alice, bob, alice_bob, bob_alice, _secrets) = pair(&relay, root.path()).await;
    let route = route(&bob, &bob_alice);
    let envelope = seal_as(&bob, &bob_alice, &text(40, "only once"));
    inject_via(&relay, &route, &envelope).await;
    wait_until("Alice has the message", || async {
        alice
            .incoming(&alice_bob)
            .await
            .iter()
            .any(|m| m.text == "only once")
    })
    .await;
    // Let every receipt settle (Alice's for the message rides on her next text; Bob's for that
    // text comes back), so that nothing but the replay could touch Alice's session.
    still_talking(&alice, &bob, &alice_bob, &bob_alice, "before the replay").await;
    wait_until("Alice's messages are delivered", || async {
        delivered(&alice, &alice_bob).await
    })
    .await;
    let pruned = alice
        .engine
        .with_store(|s| s.prune_seen_envelopes(UnixMillis(i64::MAX)))
        .unwrap();
    assert!(pruned >= 1, "the dedupe rows are gone");
    let before = session_bytes(&alice, &alice_bob);
    inject_via(&relay, &route, &envelope).await;
    alice.wait_event(refused("ratchet refused")).await;
    let shown = alice
        .incoming(&alice_bob)
        .await
        .iter()
        .filter(|m| m.text == "only once")
        .count();
    assert_eq!(shown, 1);
    assert_eq!(session_bytes(&alice, &alice_bob), before);
    still_talking(&alice, &bob, &alice_bob, &bob_alice, "after the replay").await;
}
