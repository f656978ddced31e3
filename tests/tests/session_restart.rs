//! A session broken beyond MAX_SKIP restarts with X3DH to the peer's latest signed prekey
//! (`docs/engine.md` § Session restart). Run as
//! `scripts/with-keyring.sh cargo test -p sealpost-tests --test session_restart`.
//!
//! Every wait is bounded ([`sealpost_test_support::WAIT`]); nothing asserts on timing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use sealpost_client::store::{ContactId, SessionStateBytes, UnixMillis};
use sealpost_client::{EngineEvent, ProfileName};
use sealpost_crypto::Session;
use sealpost_crypto::ratchet::MAX_SKIP;
use sealpost_test_support::hostile::initial_message;
use sealpost_test_support::{
    Client, PeerMailbox, TestRelay, WAIT, open_stopped_store, refused, two_clients_exchanged,
    wait_until,
};

/// Test hook (the profile's engine stopped): steps the profile's sending chain to `contact`
/// MAX_SKIP + 5 times without sending, as if that many envelopes were lost on the way.
fn skip_ahead(profile: &ProfileName, root: &Path, contact: &str) {
    let mut store = open_stopped_store(profile, root);
    let contact: ContactId = contact.parse().unwrap();
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

/// The refusal a restarting side reports for the envelope that revealed the gap.
fn restarted(event: &EngineEvent) -> bool {
    refused("session restarted")(event)
}

/// Alice's sending chain jumps more than MAX_SKIP ahead of what Bob received (as if that many
/// envelopes were lost): Bob refuses her next message, restarts the session with X3DH to her
/// signed prekey, and from then on messages flow both ways again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_broken_beyond_max_skip_restarts() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, mut bob, alice_bob, bob_alice, _, _secrets) =
        two_clients_exchanged(root.path(), &relay.url(), "before", "reply").await;

    // Test hook: with Alice stopped, step her sending chain MAX_SKIP + 5 times without sending.
    let (profile, alice_root) = alice.stop().await;
    skip_ahead(&profile, &alice_root, &alice_bob);
    let alice = Client::reopen(&profile, &alice_root).await;

    // Bob cannot follow (the gap is beyond MAX_SKIP): refused, and the session restarted.
    alice.send(&alice_bob, "lost in the gap").await;
    bob.wait_event(restarted).await;

    // Bob's next message rides on the new session; Alice accepts the restart and reads it.
    bob.send(&bob_alice, "after restart from Bob").await;
    alice
        .wait_incoming_text(&alice_bob, "after restart from Bob")
        .await;
    alice.send(&alice_bob, "after restart from Alice").await;
    bob.wait_incoming_text(&bob_alice, "after restart from Alice")
        .await;
    bob.send(&bob_alice, "and again").await;
    alice.wait_incoming_count(&alice_bob, 3).await;

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

/// Both chains jump beyond MAX_SKIP at once: each side refuses the other's next message and
/// restarts. The restart whose initiator has the smaller identity key wins on both sides (the
/// winner refuses the other restart, the loser accepts the winner's), and messages then flow
/// both ways on the winning session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_restarting_at_once_settle_on_one_session() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, bob, alice_bob, bob_alice, _, _secrets) =
        two_clients_exchanged(root.path(), &relay.url(), "before", "reply").await;

    let (alice_profile, alice_root) = alice.stop().await;
    let (bob_profile, bob_root) = bob.stop().await;
    skip_ahead(&alice_profile, &alice_root, &alice_bob);
    skip_ahead(&bob_profile, &bob_root, &bob_alice);
    let mut alice = Client::reopen(&alice_profile, &alice_root).await;
    let mut bob = Client::reopen(&bob_profile, &bob_root).await;

    alice.send(&alice_bob, "gap A").await;
    bob.send(&bob_alice, "gap B").await;

    // Exactly one side reports that its restart won; the other accepts the winner's silently.
    let tie_break = |event: &EngineEvent| matches!(event, EngineEvent::EnvelopeRefused { reason } if reason.contains("wins the tie-break"));
    let alice_won = tokio::time::timeout(WAIT, async {
        loop {
            tokio::select! {
                Some(event) = alice.events.recv() => if tie_break(&event) { return true; },
                Some(event) = bob.events.recv() => if tie_break(&event) { return false; },
            }
        }
    })
    .await
    .expect("one side's restart wins the tie-break");
    let (winner, winner_contact, loser, loser_contact) = if alice_won {
        (&alice, &alice_bob, &bob, &bob_alice)
    } else {
        (&bob, &bob_alice, &alice, &alice_bob)
    };

    // The winner's next message is sealed on its restart session, after its Restart: the
    // loser reads it once it has accepted that restart.
    winner.send(winner_contact, "from the winner").await;
    loser
        .wait_incoming_text(loser_contact, "from the winner")
        .await;
    loser.send(loser_contact, "from the loser").await;
    winner
        .wait_incoming_text(winner_contact, "from the loser")
        .await;
    // The gap messages are lost; nothing else is shown twice or out of place.
    let texts = |messages: Vec<sealpost_client::engine::MessageView>| {
        messages.into_iter().map(|m| m.text).collect::<Vec<_>>()
    };
    assert_eq!(
        texts(winner.incoming(winner_contact).await)[1..],
        ["from the loser".to_owned()]
    );
    assert_eq!(
        texts(loser.incoming(loser_contact).await)[1..],
        ["from the winner".to_owned()]
    );
}

/// Seals a `Restart { generation }` from `identity` to Alice's mailbox of the invite, on a new
/// X3DH session with Alice's signed prekey, as a malicious relay could replay or forge it.
fn restart_envelope(
    identity: &sealpost_crypto::IdentityKeyPair,
    invite: &sealpost_client::invite::Invite,
    generation: u64,
) -> Vec<u8> {
    let bundle =
        sealpost_crypto::PrekeyBundle::new(invite.identity, invite.signed_prekey, None).unwrap();
    let mailbox = &invite.relays[0];
    let content = sealpost_client::content::Content {
        v: 1,
        seq: 0,
        sent_at_ms: 0,
        body: sealpost_client::content::Body::Restart { generation },
        receipts: vec![],
    };
    initial_message(
        identity,
        &bundle,
        mailbox.sealing_public_key,
        mailbox.send_id,
        &content.to_bytes().unwrap(),
    )
}

/// The replay guard: a restart is accepted only with a generation newer than any the contact
/// sent before, so a replayed (or older) restart is refused even with a fresh envelope id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_or_older_restart_is_refused() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (mut alice, bob, alice_bob, bob_alice, invite_text, _secrets) =
        two_clients_exchanged(root.path(), &relay.url(), "before", "reply").await;

    // Bob's own identity (from his keychain entry) and his sender key for Alice's mailbox.
    let identity = bob.identity();
    let invite = sealpost_client::invite::Invite::parse(&invite_text).unwrap();
    let mailbox =
        PeerMailbox::of_invite(&invite.relays[0], bob.peer_mailbox(&bob_alice).sender_key);

    // Generation 2 is accepted (no event: the session is replaced quietly)…
    mailbox
        .inject(&restart_envelope(&identity, &invite, 2))
        .await;
    // …so generation 2 again (a replay with a new envelope) and generation 1 (older) are refused.
    for generation in [2, 1] {
        mailbox
            .inject(&restart_envelope(&identity, &invite, generation))
            .await;
        alice
            .wait_event(refused("a replayed or outdated session restart"))
            .await;
    }
    // Nothing of it is shown.
    assert_eq!(alice.incoming(&alice_bob).await.len(), 1);
}

/// The user's "repair session": Alice restarts the session herself (twice, the second while the
/// first still awaits its reply, as when the first `Restart` went missing). Bob accepts the
/// newest restart and messages flow both ways on it; a blocked contact is refused with its
/// typed error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_session_restarts_on_the_users_request() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, bob, alice_bob, bob_alice, _, _secrets) =
        two_clients_exchanged(root.path(), &relay.url(), "before", "reply").await;

    let before = alice.session_bytes(&alice_bob);
    alice.engine.repair_session(&alice_bob).await.unwrap();
    alice.engine.repair_session(&alice_bob).await.unwrap();
    let generation = alice.setting(&format!("engine.restart-sent.{alice_bob}"));
    let after = alice.session_bytes(&alice_bob);
    assert_eq!(generation.as_deref(), Some("2"));
    assert_ne!(after, before, "a new session replaced the old one");
    wait_until("Bob accepts Alice's newest restart", || async {
        bob.setting(&format!("engine.restart-seen.{bob_alice}"))
            .as_deref()
            == Some("2")
    })
    .await;

    bob.send(&bob_alice, "after the repair").await;
    alice
        .wait_incoming_text(&alice_bob, "after the repair")
        .await;
    alice.send(&alice_bob, "repaired").await;
    bob.wait_incoming_text(&bob_alice, "repaired").await;

    alice.engine.block_contact(&alice_bob, true).await.unwrap();
    let error = alice.engine.repair_session(&alice_bob).await.unwrap_err();
    assert_eq!(error.kind(), "contact_blocked");
    assert_eq!(
        alice
            .engine
            .repair_session("00000000000000000000000000000000")
            .await
            .unwrap_err()
            .kind(),
        "contact_not_found"
    );
}
