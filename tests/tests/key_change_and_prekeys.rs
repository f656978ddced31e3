//! Holding against a hostile relay (issue 10): key changes (T8), invite reuse, and forward
//! secrecy of first messages in storage (T7). Real relays on loopback, real engines on the real
//! OS keychain. Run as
//! `scripts/with-keyring.sh cargo test -p sealpost-tests --test key_change_and_prekeys`.
//!
//! Every wait is bounded ([`sealpost_test_support::WAIT`]); nothing asserts on timing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sealpost_client::EngineEvent;
use sealpost_client::content::{Body, Content};
use sealpost_client::invite::Invite;
use sealpost_crypto::{
    IdentityKeyPair, IdentitySeed, MailboxSealingKey, OneTimePrekeyPair, PrekeyBundle,
    SafetyNumber, SendId, Session, SessionMessage, SignedPrekey, SignedPrekeyPair, open_envelope,
};
use sealpost_test_support::hostile::initial_message;
use sealpost_test_support::{
    Client, PeerMailbox, TestRelay, open_stopped_store, two_clients, two_clients_first_message,
};

fn array32(bytes: &[u8]) -> [u8; 32] {
    bytes.try_into().unwrap()
}

fn text(body: &str) -> Vec<u8> {
    Content {
        v: 1,
        seq: 99,
        sent_at_ms: 0,
        body: Body::Text { text: body.into() },
        receipts: vec![],
    }
    .to_bytes()
    .unwrap()
}

/// Waits for the first `InviteMisuse` or `KeyChanged` event (other events are dropped).
async fn misuse_or_key_change(client: &mut Client) -> EngineEvent {
    client
        .wait_event(|e| {
            matches!(
                e,
                EngineEvent::InviteMisuse { .. } | EngineEvent::KeyChanged { .. }
            )
        })
        .await
}

/// An attacker's X3DH initial message carrying the text `body`, sealed to the mailbox
/// (`sealing_public_key`, `send_id`), starting a session with `bundle`.
fn attacker_initial(
    attacker: &IdentityKeyPair,
    bundle: &PrekeyBundle,
    sealing_public_key: [u8; 32],
    send_id: [u8; 32],
    body: &str,
) -> Vec<u8> {
    initial_message(attacker, bundle, sealing_public_key, send_id, &text(body))
}

fn new_identity() -> IdentityKeyPair {
    IdentityKeyPair::from_seed(&IdentitySeed::generate().unwrap()).unwrap()
}

/// Issue 10 (C): once an invite is consumed, anyone else who saw its text and writes an initial
/// message to its mailbox (with the invite's one-time prekey or without it) is an invite
/// misuse, refused and reported — never a key change that would block sending to the real
/// contact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_of_a_consumed_invite_is_misuse_never_a_key_change() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (mut alice, bob, alice_bob, bob_alice, invite_text, _secrets) =
        two_clients(root.path(), &relay.url()).await;
    bob.send(&bob_alice, "hi").await;
    alice.wait_incoming_count(&alice_bob, 1).await;
    let invite = Invite::parse(&invite_text).unwrap();
    // Bob's sender key for the invite's mailbox (the relay bound it with SECURE).
    let mailbox =
        PeerMailbox::of_invite(&invite.relays[0], bob.peer_mailbox(&bob_alice).sender_key);

    for with_one_time_prekey in [true, false] {
        let mallory = new_identity();
        let bundle = PrekeyBundle::new(
            invite.identity,
            invite.signed_prekey,
            with_one_time_prekey.then_some(invite.one_time_prekey),
        )
        .unwrap();
        let sealed = attacker_initial(
            &mallory,
            &bundle,
            mailbox.sealing_public_key,
            mailbox.send_id,
            "I am Bob now",
        );
        while alice.events.try_recv().is_ok() {}
        mailbox.inject(&sealed).await;
        let event = misuse_or_key_change(&mut alice).await;
        assert!(
            matches!(event, EngineEvent::InviteMisuse { .. }),
            "with_one_time_prekey={with_one_time_prekey}: {event:?}"
        );
        let chat = alice.engine.list_chats().await.unwrap().remove(0);
        assert!(
            !chat.key_changed,
            "with_one_time_prekey={with_one_time_prekey}"
        );
    }

    // Sending to the real contact still works, both ways.
    alice.send(&alice_bob, "still talking").await;
    bob.wait_incoming_text(&bob_alice, "still talking").await;
    assert!(
        alice
            .incoming(&alice_bob)
            .await
            .iter()
            .all(|m| m.text != "I am Bob now")
    );
}

/// T8: a hostile relay injects an initial message with another identity key on Bob's own
/// mailbox for Alice (its address travelled only inside the sealed Hello). Bob's contact is
/// marked, `KeyChanged` is emitted, sending is blocked; the safety number shown is the NEW
/// key's (with the old one as "previous"). Rejecting keeps the old key and session; a second
/// change accepted installs the key that was shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t8_key_change_shows_the_new_number_and_can_be_rejected_or_accepted() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, mut bob, alice_bob, bob_alice, _, _secrets) =
        two_clients_first_message(root.path(), &relay.url(), "hi").await;
    let target = alice.peer_mailbox(&alice_bob);
    // Bob's public signed prekey, as Alice learned it from the Hello.
    let bob_signed = alice.engine.with_store(|s| {
        let row = s.contact(alice_bob.parse().unwrap()).unwrap().unwrap();
        SignedPrekey::from_bytes(row.peer_signed_prekey.unwrap().as_bytes()).unwrap()
    });
    let bob_identity = bob.engine.identity_key();
    let alice_identity = alice.engine.identity_key();
    let old_number = bob.engine.get_safety_number(&bob_alice).await.unwrap();
    assert_eq!(
        old_number.digits,
        SafetyNumber::new(&bob_identity, &alice_identity).digits()
    );
    assert!(!old_number.is_pending_key);
    assert_eq!(old_number.previous_digits, None);

    let swap = |attacker: &IdentityKeyPair| {
        let bundle = PrekeyBundle::new(bob_identity, bob_signed, None).unwrap();
        attacker_initial(
            attacker,
            &bundle,
            target.sealing_public_key,
            target.send_id,
            "I am Alice now",
        )
    };

    // First change: compared, then rejected.
    let mallory = new_identity();
    while bob.events.try_recv().is_ok() {}
    target.inject(&swap(&mallory)).await;
    let event = misuse_or_key_change(&mut bob).await;
    assert_eq!(
        event,
        EngineEvent::KeyChanged {
            contact_id: bob_alice.clone()
        }
    );
    let chat = bob.engine.list_chats().await.unwrap().remove(0);
    assert!(chat.key_changed);
    assert_eq!(
        bob.engine
            .send_message(&bob_alice, "blocked?")
            .await
            .unwrap_err()
            .kind(),
        "key_change_pending"
    );
    let shown = bob.engine.get_safety_number(&bob_alice).await.unwrap();
    assert_eq!(
        shown.digits,
        SafetyNumber::new(&bob_identity, mallory.public()).digits(),
        "during a pending change the number shown is the new key's"
    );
    assert!(shown.is_pending_key);
    assert_eq!(
        shown.previous_digits.as_deref(),
        Some(old_number.digits.as_str())
    );
    assert!(
        bob.incoming(&bob_alice)
            .await
            .iter()
            .all(|m| m.text != "I am Alice now"),
        "a held key change shows no message"
    );

    bob.engine.reject_key_change(&bob_alice).await.unwrap();
    let chat = bob.engine.list_chats().await.unwrap().remove(0);
    assert!(!chat.key_changed);
    assert_eq!(
        bob.engine.get_safety_number(&bob_alice).await.unwrap(),
        old_number,
        "rejecting keeps the old key"
    );
    bob.send(&bob_alice, "after reject").await;
    alice.wait_incoming_text(&alice_bob, "after reject").await;

    // Second change: accepted. The key installed is the one whose number was shown.
    let trent = new_identity();
    while bob.events.try_recv().is_ok() {}
    target.inject(&swap(&trent)).await;
    let event = misuse_or_key_change(&mut bob).await;
    assert!(matches!(event, EngineEvent::KeyChanged { .. }), "{event:?}");
    let shown = bob.engine.get_safety_number(&bob_alice).await.unwrap();
    bob.engine.accept_key_change(&bob_alice).await.unwrap();
    let after = bob.engine.get_safety_number(&bob_alice).await.unwrap();
    assert_eq!(after.digits, shown.digits);
    assert_eq!(
        after.digits,
        SafetyNumber::new(&bob_identity, trent.public()).digits()
    );
    assert!(!after.is_pending_key);
    assert!(!bob.engine.list_chats().await.unwrap()[0].key_changed);
    bob.send(&bob_alice, "accepted").await;
}

/// T7: someone who takes Alice's profile after the conversation (the whole database and the
/// keychain's identity seed and database key) cannot open the first message (the sealed Hello)
/// recorded on its way to the relay: the invite's one-time prekey secret was deleted when the Hello consumed the
/// invite. Everything else the store still holds (mailbox sealing keys, every signed prekey) is
/// tried too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t7_recorded_first_messages_do_not_open_from_the_profile_taken_afterwards() {
    let mut relay_a = TestRelay::start().await;
    let relay_b = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, _a) = Client::new("Alice", root.path(), &relay_a.url()).await;
    let (bob, _b) = Client::new("Bob", root.path(), &relay_b.url()).await;
    let invite = alice.engine.create_invite().await.unwrap();

    // Alice's relay is down while Bob accepts: the Hello waits in his outbox, sealed, exactly
    // as it will go to the relay. Record it there. (Only the Hello: a text queued beside it could
    // reach the relay first and be refused as "not a Hello", see the report of issue 10.)
    relay_a.stop().await;
    let chat = bob.engine.accept_invite(&invite.text, "").await.unwrap();
    let bob_alice = chat.contact_id;
    let recorded: Vec<Vec<u8>> = bob.engine.with_store(|s| {
        s.outbox()
            .unwrap()
            .into_iter()
            .map(|item| item.sealed.as_bytes().to_vec())
            .collect()
    });
    assert_eq!(recorded.len(), 1, "the Hello");
    relay_a.restart().await;

    let alice_bob = alice
        .wait_for_chat("Alice has Bob as a contact", |_| true)
        .await;
    bob.send(&bob_alice, "first words").await;
    alice.wait_incoming_count(&alice_bob, 1).await;
    alice.send(&alice_bob, "reply").await;
    bob.wait_incoming_count(&bob_alice, 1).await;

    // Take everything: the keychain's seed and database key, and the database.
    let identity = alice.identity();
    let (profile, alice_root) = alice.stop().await;
    let store = open_stopped_store(&profile, &alice_root);
    let mailboxes: Vec<(MailboxSealingKey, SendId)> = store
        .own_mailboxes()
        .unwrap()
        .into_iter()
        .map(|m| {
            (
                MailboxSealingKey::from_secret_bytes(&array32(
                    m.sealing_secret_key.expose_secret(),
                ))
                .unwrap(),
                SendId(array32(m.send_id.as_bytes())),
            )
        })
        .collect();
    let signed: Vec<SignedPrekeyPair> = store
        .signed_prekeys()
        .unwrap()
        .into_iter()
        .map(|(_, secret)| SignedPrekeyPair::from_secret_bytes(secret.expose_secret()).unwrap())
        .collect();
    assert!(!signed.is_empty());
    // Every one-time prekey secret the store still holds for the invite (none, once consumed).
    let record = store.invite(invite.id.parse().unwrap()).unwrap().unwrap();
    let mut one_time: Vec<Option<OneTimePrekeyPair>> = vec![None];
    if let Some(secret) = &record.one_time_prekey_secret {
        one_time.push(Some(
            OneTimePrekeyPair::from_secret_bytes(secret.expose_secret()).unwrap(),
        ));
    }

    let mut reached_x3dh = 0;
    for envelope in &recorded {
        for (sealing, send_id) in &mailboxes {
            // The HPKE layer still opens: the mailbox's sealing key is kept while it is used.
            let Ok(opened) = open_envelope(sealing, send_id, envelope) else {
                continue;
            };
            assert!(matches!(opened.payload(), SessionMessage::Initial(_)));
            reached_x3dh += 1;
            for signed in &signed {
                for one_time in &one_time {
                    assert!(
                        Session::respond(&identity, signed, one_time.as_ref(), &opened).is_err(),
                        "a recorded first message opened from the profile taken afterwards"
                    );
                }
            }
        }
    }
    assert_eq!(reached_x3dh, recorded.len());
    assert!(
        record.one_time_prekey_secret.is_none(),
        "the consumed invite's one-time prekey secret is deleted"
    );
}

/// T7: the engine deletes a signed prekey once it has been retired for longer than
/// `RETIRED_SIGNED_PREKEY_GRACE` (when it refreshes, and on open); one retired more recently is
/// kept for late initial messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retired_signed_prekeys_are_deleted_after_the_grace_period() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, _a) = Client::new("Alice", root.path(), &relay.url()).await;
    let grace =
        i64::try_from(sealpost_client::engine::RETIRED_SIGNED_PREKEY_GRACE.as_millis()).unwrap();
    let now = sealpost_client::store::UnixMillis::now().0;
    let ids = |client: &Client| -> Vec<u32> {
        client.engine.with_store(|s| {
            s.signed_prekeys()
                .unwrap()
                .into_iter()
                .map(|(id, _)| id)
                .collect()
        })
    };
    let first = ids(&alice);
    assert_eq!(first.len(), 1);

    // Retired just inside the grace period: kept after a refresh.
    alice.engine.with_store(|s| {
        s.retire_signed_prekey(
            first[0],
            sealpost_client::store::UnixMillis(now - grace + 60_000),
        )
        .unwrap()
    });
    alice.engine.refresh_signed_prekey().await.unwrap();
    let second = ids(&alice);
    assert_eq!(
        second.len(),
        2,
        "a prekey retired within the grace period is kept"
    );

    // Retired longer ago than the grace period: deleted by the next refresh.
    let newest = *second.iter().find(|id| !first.contains(id)).unwrap();
    alice.engine.with_store(|s| {
        s.retire_signed_prekey(
            newest,
            sealpost_client::store::UnixMillis(now - grace - 60_000),
        )
        .unwrap()
    });
    alice.engine.refresh_signed_prekey().await.unwrap();
    let third = ids(&alice);
    assert!(!third.contains(&newest), "{third:?}");
    assert!(third.contains(&first[0]), "{third:?}");
    assert_eq!(third.len(), 2);

    // On open too: a prekey retired long ago, found when the engine starts.
    let (profile, alice_root) = alice.stop().await;
    {
        let mut store = open_stopped_store(&profile, &alice_root);
        let long_ago = sealpost_client::store::UnixMillis(now - 2 * grace);
        store
            .insert_signed_prekey(
                4242,
                &sealpost_client::store::SignedPrekeySecretBytes::new(vec![7; 32]),
                long_ago,
            )
            .unwrap();
        store.retire_signed_prekey(4242, long_ago).unwrap();
        store.close().unwrap();
    }
    let alice = Client::reopen(&profile, &alice_root).await;
    let on_open = ids(&alice);
    assert!(!on_open.contains(&4242), "{on_open:?}");
    assert_eq!(on_open, third);
    alice.stop().await;
}
