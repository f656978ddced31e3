//! End-to-end tests of the client engine (issue 4; the T8 key-change test lives in
//! `key_change_and_prekeys.rs`): real relays on loopback, real engines on the
//! real OS keychain, real SQLCipher stores. Run as
//! `scripts/with-keyring.sh cargo test -p sealpost-tests --test engine_e2e`.
//!
//! Every wait is bounded ([`sealpost_test_support::WAIT`]); nothing asserts on timing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sealpost_client::EngineEvent;
use sealpost_client::engine::{MessageStateView, RelayChoice};
use sealpost_client::invite::Invite;
use sealpost_client::scan::{Needle, scan_dir_for_needles, starts_with_plain_sqlite_header};
use sealpost_test_support::{
    Client, PeerMailbox, TestRelay, connect, inject, two_clients, two_clients_first_message,
    wait_until,
};

/// Three clients: invites, chat both ways, delivery and read receipts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_clients_invite_chat_and_receipts() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, _a) = Client::new("Alice", root.path(), &relay.url()).await;
    let (bob, _b) = Client::new("Bob", root.path(), &relay.url()).await;
    let (carol, _c) = Client::new("Carol", root.path(), &relay.url()).await;

    let (alice_bob, bob_alice, _) = connect(&alice, &bob, "Bob").await;
    let (carol_alice, alice_carol, _) = connect(&carol, &alice, "Alice").await;

    let sent = bob.send(&bob_alice, "hello Alice").await;
    assert_eq!(sent.state, MessageStateView::Queued);
    alice.send(&alice_carol, "hi Carol").await;

    alice.wait_incoming_count(&alice_bob, 1).await;
    assert_eq!(alice.incoming(&alice_bob).await[0].text, "hello Alice");
    alice.send(&alice_bob, "hello Bob").await;
    bob.wait_incoming_count(&bob_alice, 1).await;
    assert_eq!(bob.incoming(&bob_alice).await[0].text, "hello Bob");
    carol.wait_incoming_count(&carol_alice, 1).await;
    carol.send(&carol_alice, "hi Alice, Carol here").await;
    alice.wait_incoming_count(&alice_carol, 1).await;

    // Delivery receipt, then a read receipt after Alice marks it read.
    wait_until("Bob's message is delivered", || async {
        bob.messages(&bob_alice)
            .await
            .iter()
            .any(|m| m.outgoing && m.state == MessageStateView::Delivered)
    })
    .await;
    let seq = alice.incoming(&alice_bob).await[0].seq;
    alice.engine.mark_read(&alice_bob, seq).await.unwrap();
    wait_until("Bob's message is read", || async {
        bob.messages(&bob_alice)
            .await
            .iter()
            .any(|m| m.outgoing && m.state == MessageStateView::Read)
    })
    .await;

    // Chat list, unread counts, names, safety numbers agree on both sides.
    let chats = alice.engine.list_chats().await.unwrap();
    assert_eq!(chats.len(), 2);
    let alice_side = alice.engine.get_safety_number(&alice_bob).await.unwrap();
    let bob_side = bob.engine.get_safety_number(&bob_alice).await.unwrap();
    assert_eq!(alice_side.digits.len(), 60);
    assert_eq!(alice_side.digits, bob_side.digits);
    assert!(alice_side.qr_svg.contains("<svg"));
    alice.engine.set_verified(&alice_bob, true).await.unwrap();
    assert!(
        alice
            .engine
            .list_chats()
            .await
            .unwrap()
            .iter()
            .any(|c| c.verified)
    );
}

/// Invite errors: own, already a contact, corrupt; a second accepter of one invite is refused
/// and shown to the inviter as misuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_errors_and_misuse() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, _a) = Client::new("Alice", root.path(), &relay.url()).await;
    let (bob, _b) = Client::new("Bob", root.path(), &relay.url()).await;
    let (carol, _c) = Client::new("Carol", root.path(), &relay.url()).await;

    let invite = alice.engine.create_invite().await.unwrap();
    assert_eq!(alice.engine.list_invites().await.unwrap().len(), 1);
    assert_eq!(
        alice
            .engine
            .preview_invite(&invite.text)
            .await
            .unwrap_err()
            .kind(),
        "invite_own"
    );
    let mut corrupt = invite.text.clone();
    corrupt.truncate(corrupt.len() - 5);
    assert_eq!(
        bob.engine
            .preview_invite(&corrupt)
            .await
            .unwrap_err()
            .kind(),
        "invite_corrupt"
    );
    let preview = bob.engine.preview_invite(&invite.text).await.unwrap();
    assert_eq!(preview.display_name, "Alice");
    assert_eq!(preview.relays, vec![relay.url()]);

    // Alice is offline while Bob and then Carol accept the same invite: both first messages
    // land in the not-yet-secured mailbox.
    let (alice_profile, alice_root) = alice.stop().await;
    bob.engine
        .accept_invite(&invite.text, "Alice")
        .await
        .unwrap();
    bob.wait_outbox_empty().await;
    carol
        .engine
        .accept_invite(&invite.text, "Alice")
        .await
        .unwrap();
    carol.wait_outbox_empty().await;
    assert_eq!(
        bob.engine
            .accept_invite(&invite.text, "Alice")
            .await
            .unwrap_err()
            .kind(),
        "invite_used"
    );

    let mut alice = Client::reopen(&alice_profile, &alice_root).await;
    let event = alice
        .wait_event(|e| matches!(e, EngineEvent::InviteMisuse { .. }))
        .await;
    assert_eq!(
        event,
        EngineEvent::InviteMisuse {
            invite_id: invite.id.clone()
        }
    );
    let chats = alice.engine.list_chats().await.unwrap();
    assert_eq!(chats.len(), 1, "only the first accepter becomes a contact");
    assert_eq!(chats[0].display_name, "Bob");
    assert!(alice.engine.list_invites().await.unwrap().is_empty());

    // Revoking: the invite leaves the list; revoking again is refused.
    let second = alice.engine.create_invite().await.unwrap();
    alice.engine.revoke_invite(&second.id).await.unwrap();
    assert!(alice.engine.list_invites().await.unwrap().is_empty());
    assert_eq!(
        alice
            .engine
            .revoke_invite(&second.id)
            .await
            .unwrap_err()
            .kind(),
        "invite_revoked"
    );
}

/// Offline delivery: B is down, A sends 100, B comes up: all 100, in order, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_delivery_of_100_in_order_once() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    // Bob's engine learns Alice's sender key (Welcome) before going offline.
    let (alice, bob, alice_bob, bob_alice, _, _secrets) =
        two_clients_first_message(root.path(), &relay.url(), "before").await;

    let (bob_profile, bob_root) = bob.stop().await;
    for index in 0..100 {
        alice
            .send(&alice_bob, &format!("offline message {index}"))
            .await;
    }
    alice.wait_outbox_empty().await;

    let bob = Client::reopen(&bob_profile, &bob_root).await;
    bob.wait_incoming_at_least(&bob_alice, 101).await;
    let incoming = bob.incoming(&bob_alice).await;
    assert_eq!(incoming.len(), 101, "each message exactly once");
    for (index, message) in incoming.iter().skip(1).enumerate() {
        assert_eq!(message.text, format!("offline message {index}"));
    }
    let seqs: Vec<u64> = incoming.iter().map(|m| m.seq).collect();
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        seqs, sorted,
        "ordered by the sender's sequence numbers, no repeats"
    );
}

/// Messages sent back to back while the receiver is online reach the relay, and so the
/// receiver's events (its notifications), in the order they were sent: the outbox looks up a
/// pass's addresses before its first SEND, so its pipelined SENDs start in queue order
/// (`docs/engine.md` § Sending). With a lookup per SEND they started in whatever order the
/// lookups ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_back_to_back_arrive_in_the_order_sent() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    // The first message opens Alice's send connection and sender session for Bob's mailbox.
    let (alice, mut bob, alice_bob, _bob_alice, _, _secrets) =
        two_clients_first_message(root.path(), &relay.url(), "before").await;
    bob.drain_events();

    let sent: Vec<String> = (0..60).map(|index| format!("in a row {index}")).collect();
    for text in &sent {
        alice.send(&alice_bob, text).await;
    }
    let mut received = Vec::new();
    while received.len() < sent.len() {
        let event = bob
            .wait_event(|event| matches!(event, EngineEvent::MessageReceived { .. }))
            .await;
        if let EngineEvent::MessageReceived { message, .. } = event {
            received.push(message.text);
        }
    }
    assert_eq!(
        received, sent,
        "Bob's MessageReceived events in the order Alice sent"
    );
}

/// Relay stopped and restarted mid-conversation, with the client also stopped while its outbox
/// held sealed messages: after the restarts, nothing is lost or shown twice; T5: the exact
/// envelopes replayed into the mailbox later show nothing new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_and_client_restart_then_replay_shows_each_once() {
    let mut relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, bob, alice_bob, bob_alice, _, _secrets) =
        two_clients_first_message(root.path(), &relay.url(), "one").await;

    relay.stop().await;
    for text in ["two", "three", "four"] {
        alice.send(&alice_bob, text).await;
    }
    // The sealed bytes are stored before any SEND (seal once): capture them for the replay.
    let captured = alice.sealed_messages_in_outbox();
    assert_eq!(captured.len(), 3);

    // Alice's client goes down with the three messages still in its outbox.
    let (alice_profile, alice_root) = alice.stop().await;
    relay.restart().await;
    let alice = Client::reopen(&alice_profile, &alice_root).await;
    bob.wait_incoming_at_least(&bob_alice, 4).await;
    let texts = bob.incoming_texts(&bob_alice).await;
    assert_eq!(texts, ["one", "two", "three", "four"]);
    alice.wait_outbox_empty().await;

    // T5: the relay replays the exact envelopes (same send id) later.
    let mailbox = alice.peer_mailbox(&alice_bob);
    for (url, send_id, sealed) in &captured {
        mailbox.replay(url, *send_id, sealed).await;
    }
    // A marker after the replays: once it is in, the replays were handled before it.
    alice.send(&alice_bob, "five").await;
    bob.wait_incoming_text(&bob_alice, "five").await;
    let texts = bob.incoming_texts(&bob_alice).await;
    assert_eq!(texts, ["one", "two", "three", "four", "five"]);
}

/// Out-of-order delivery through a real relay: Alice's sealed messages reach Bob's mailbox in
/// the reverse of the order she wrote them (the relay replays captured envelopes newest first);
/// the conversation the engine returns (`get_messages`, unsorted) is in her order, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_delivered_out_of_order_are_shown_in_the_sender_s_order() {
    let mut relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, bob, alice_bob, bob_alice, _, _secrets) =
        two_clients_first_message(root.path(), &relay.url(), "first").await;

    // Sealed while the relay is down, so they stay in Alice's outbox; then Alice stops for good
    // and the relay alone decides the order in which Bob gets them.
    relay.stop().await;
    let texts = ["one", "two", "three", "four", "five"];
    for text in texts {
        alice.send(&alice_bob, text).await;
    }
    let captured = alice.sealed_messages_in_outbox();
    assert_eq!(captured.len(), texts.len());
    let mailbox = alice.peer_mailbox(&alice_bob);
    let (bob_profile, bob_root) = bob.stop().await;
    alice.stop().await;
    relay.restart().await;
    for (url, send_id, sealed) in captured.iter().rev() {
        mailbox.replay(url, *send_id, sealed).await;
    }

    let bob = Client::reopen(&bob_profile, &bob_root).await;
    bob.wait_incoming_at_least(&bob_alice, 6).await;
    let shown: Vec<(u64, String)> = bob
        .messages(&bob_alice)
        .await
        .into_iter()
        .filter(|m| !m.outgoing)
        .map(|m| (m.seq, m.text))
        .collect();
    let expected: Vec<(u64, String)> = std::iter::once("first")
        .chain(texts)
        .enumerate()
        .map(|(index, text)| (index as u64 + 1, text.to_owned()))
        .collect();
    assert_eq!(shown, expected, "the engine's order is the sender's order");
}

/// A contact reached through two relays: every message goes to both, one relay goes down and
/// comes back while both sides keep writing, and each message is shown exactly once, in order.
/// The accepter's Hello reaches the inviter on both relays (its copies race): the second copy
/// is a duplicate, not a misuse of the invite, so no `invite-misuse` warning appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_one_down_then_back_every_message_once_and_no_misuse_warning() {
    let mut relay_a = TestRelay::start().await;
    let mut relay_b = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (mut alice, _a) = Client::new("Alice", root.path(), &relay_a.url()).await;
    let (mut bob, _b) = Client::new("Bob", root.path(), &relay_a.url()).await;
    alice.add_relay(&relay_b.url()).await;
    bob.add_relay(&relay_b.url()).await;
    let (alice_bob, bob_alice, invite) = connect(&alice, &bob, "Bob").await;
    assert_eq!(
        Invite::parse(&invite).unwrap().relays.len(),
        2,
        "the invite names both relays"
    );

    let mut alice_sent = Vec::new();
    let mut bob_sent = Vec::new();
    async fn send(from: &Client, contact: &str, text: String, log: &mut Vec<String>) {
        from.send(contact, &text).await;
        log.push(text);
    }
    async fn wait_for(to: &Client, contact: &str, count: usize) {
        to.wait_incoming_at_least(contact, count).await;
    }

    // Both relays up.
    send(&bob, &bob_alice, "b0".into(), &mut bob_sent).await;
    send(&alice, &alice_bob, "a0".into(), &mut alice_sent).await;
    wait_for(&alice, &alice_bob, bob_sent.len()).await;
    wait_for(&bob, &bob_alice, alice_sent.len()).await;

    // Relay B down: everything still arrives through A.
    relay_b.stop().await;
    for index in 1..=3 {
        send(&alice, &alice_bob, format!("a{index}"), &mut alice_sent).await;
        send(&bob, &bob_alice, format!("b{index}"), &mut bob_sent).await;
    }
    wait_for(&alice, &alice_bob, bob_sent.len()).await;
    wait_for(&bob, &bob_alice, alice_sent.len()).await;

    // B back, A down: B delivers its backlog (copies of what A delivered) and the new ones.
    relay_b.restart().await;
    relay_a.stop().await;
    for index in 4..=6 {
        send(&alice, &alice_bob, format!("a{index}"), &mut alice_sent).await;
        send(&bob, &bob_alice, format!("b{index}"), &mut bob_sent).await;
    }
    wait_for(&alice, &alice_bob, bob_sent.len()).await;
    wait_for(&bob, &bob_alice, alice_sent.len()).await;

    // A back: both outboxes drain on both relays, and A's copies change nothing.
    relay_a.restart().await;
    for client in [&alice, &bob] {
        client.wait_outbox_empty().await;
    }
    // A last message from each side through both relays, after every copy above.
    send(&alice, &alice_bob, "a-last".into(), &mut alice_sent).await;
    send(&bob, &bob_alice, "b-last".into(), &mut bob_sent).await;
    wait_for(&alice, &alice_bob, bob_sent.len()).await;
    wait_for(&bob, &bob_alice, alice_sent.len()).await;
    for client in [&alice, &bob] {
        client.wait_outbox_empty().await;
    }

    let texts = |messages: Vec<sealpost_client::engine::MessageView>| -> Vec<String> {
        messages.into_iter().map(|m| m.text).collect()
    };
    assert_eq!(texts(alice.incoming(&alice_bob).await), bob_sent);
    assert_eq!(texts(bob.incoming(&bob_alice).await), alice_sent);
    for (name, client) in [("Alice", &mut alice), ("Bob", &mut bob)] {
        let misuse: Vec<_> = client
            .drain_events()
            .into_iter()
            .filter(|event| matches!(event, EngineEvent::InviteMisuse { .. }))
            .collect();
        assert!(
            misuse.is_empty(),
            "{name} got invite-misuse warnings: {misuse:?}"
        );
    }
}

/// Bad envelopes inside a drained backlog poison nothing: while Bob is offline his mailbox gets
/// Alice's messages with garbage, a tampered envelope and replays of real ones between them;
/// when Bob comes up (and opens and commits what each push window delivers as one batch), every
/// real message is stored exactly once and in order, and the bad ones are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_envelopes_in_a_drained_batch_poison_nothing() {
    // A window of 64 has the whole backlog pushed at once: the bad envelopes are opened and
    // committed in batches together with good ones.
    let mut relay = TestRelay::start_with(|config| config.limits.window = 64).await;
    let root = tempfile::tempdir().unwrap();
    let (alice, bob, alice_bob, bob_alice, _, _secrets) =
        two_clients_first_message(root.path(), &relay.url(), "first").await;
    let (bob_profile, bob_root) = bob.stop().await;

    // The sealed bytes of the first five, captured while the relay is down.
    relay.stop().await;
    for index in 0..5 {
        alice.send(&alice_bob, &format!("batch {index}")).await;
    }
    let captured: Vec<Vec<u8>> = alice
        .sealed_messages_in_outbox()
        .into_iter()
        .map(|(_, _, sealed)| sealed)
        .collect();
    assert_eq!(captured.len(), 5);
    relay.restart().await;
    alice.wait_outbox_empty().await;

    let mailbox = alice.peer_mailbox(&alice_bob);
    let mut garbage = vec![0u8; 300];
    getrandom::fill(&mut garbage).unwrap();
    let mut tampered = captured[2].clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x40;
    for bad in [&garbage, &tampered, &captured[1], &captured[3]] {
        inject(
            &relay.url(),
            mailbox.send_id,
            mailbox.send_secret,
            &mailbox.sender_key,
            bad,
        )
        .await;
    }
    for index in 5..40 {
        alice.send(&alice_bob, &format!("batch {index}")).await;
    }
    alice.wait_outbox_empty().await;

    let mut bob = Client::reopen(&bob_profile, &bob_root).await;
    bob.wait_incoming_at_least(&bob_alice, 41).await;
    // A marker after the backlog: once it is in, every bad envelope was handled before it.
    alice.send(&alice_bob, "end").await;
    bob.wait_incoming_text(&bob_alice, "end").await;
    let texts = bob.incoming_texts(&bob_alice).await;
    let mut expected = vec!["first".to_owned()];
    expected.extend((0..40).map(|index| format!("batch {index}")));
    expected.push("end".to_owned());
    assert_eq!(texts, expected, "each real message once, in order");
    let mut refused = 0;
    while let Ok(event) = bob.events.try_recv() {
        if matches!(event, EngineEvent::EnvelopeRefused { .. }) {
            refused += 1;
        }
    }
    assert!(
        refused >= 2,
        "the garbage and the tampered envelope are refused ({refused} refusals)"
    );
}

/// `docs/engine.md` § Inside a ratchet message: Alice refreshes her signed prekey; Bob learns it
/// inside a ratchet message and keeps it (verified against Alice's identity). The conversation goes
/// on, and an invite made before the refresh (naming the retired prekey) can still be accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_prekey_refresh_reaches_contacts_and_old_invites_still_work() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, bob, alice_bob, bob_alice, _, _secrets) =
        two_clients_first_message(root.path(), &relay.url(), "before").await;
    let (carol, _c) = Client::new("Carol", root.path(), &relay.url()).await;
    let old_invite = alice.engine.create_invite().await.unwrap();
    let current_public = |client: &Client| {
        client.engine.with_store(|s| {
            let (_, secret) = s.current_signed_prekey().unwrap().unwrap();
            sealpost_crypto::SignedPrekeyPair::from_secret_bytes(secret.expose_secret())
                .unwrap()
                .public()
                .to_bytes()
                .to_vec()
        })
    };
    let before = current_public(&alice);

    assert_eq!(alice.engine.refresh_signed_prekey().await.unwrap(), 1);
    let after = current_public(&alice);
    assert_ne!(before, after);
    wait_until("Bob stored Alice's new signed prekey", || async {
        let contact = bob_alice.parse().unwrap();
        bob.engine.with_store(|s| {
            s.contact(contact)
                .unwrap()
                .unwrap()
                .peer_signed_prekey
                .is_some_and(|p| p.as_bytes() == after.as_slice())
        })
    })
    .await;
    bob.send(&bob_alice, "after").await;
    alice.wait_incoming_text(&alice_bob, "after").await;

    // The invite made before the refresh names the retired prekey: it still opens.
    let chat = carol
        .engine
        .accept_invite(&old_invite.text, "")
        .await
        .unwrap();
    carol.send(&chat.contact_id, "hi Alice").await;
    wait_until("Alice has Carol's message", || async {
        let chats = alice.engine.list_chats().await.unwrap();
        match chats.iter().find(|c| c.display_name == "Carol") {
            Some(chat) => !alice.incoming(&chat.contact_id).await.is_empty(),
            None => false,
        }
    })
    .await;
}

/// T1: the relay reflects Alice's own envelope (sealed to Bob) back into Alice's mailbox for
/// Bob. Refused; nothing is shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t1_reflection_is_refused() {
    let mut relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (mut alice, bob, alice_bob, bob_alice, invite_text, _secrets) =
        two_clients(root.path(), &relay.url()).await;
    bob.send(&bob_alice, "from Bob").await;
    alice.wait_incoming_count(&alice_bob, 1).await;

    relay.stop().await;
    alice.send(&alice_bob, "to Bob").await;
    let (_, _, reflected) = alice.sealed_messages_in_outbox().remove(0);
    relay.restart().await;

    // Alice's mailbox for Bob is the invite's mailbox; Bob's send credentials stand in for the
    // malicious relay's ability to store anything.
    let invite = Invite::parse(&invite_text).unwrap();
    let mailbox =
        PeerMailbox::of_invite(&invite.relays[0], bob.peer_mailbox(&bob_alice).sender_key);
    while alice.events.try_recv().is_ok() {}
    mailbox.inject(&reflected).await;
    alice
        .wait_event(|e| matches!(e, EngineEvent::EnvelopeRefused { .. }))
        .await;
    let incoming = alice.incoming(&alice_bob).await;
    assert_eq!(incoming.len(), 1, "the reflected envelope is not shown");
    assert_eq!(incoming[0].text, "from Bob");
}

/// Data at rest: after a conversation, no file in either profile directory holds a message,
/// a name, or a key byte (the keys live in the keychain and inside SQLCipher).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_at_rest_after_a_conversation() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, _a) = Client::new("AliceMarkerName", root.path(), &relay.url()).await;
    let (bob, _b) = Client::new("BobMarkerName", root.path(), &relay.url()).await;
    let (alice_bob, bob_alice, _) = connect(&alice, &bob, "BobMarkerName").await;
    let secret_text = "the secret plaintext 4f1c9a";
    alice.send(&alice_bob, secret_text).await;
    bob.send(&bob_alice, "reply plaintext 77e0b2").await;
    wait_until("both messages arrived", || async {
        bob.incoming(&bob_alice).await.len() == 1 && alice.incoming(&alice_bob).await.len() == 1
    })
    .await;

    let mut needles = vec![
        Needle::new("message", secret_text.as_bytes().to_vec()),
        Needle::new("reply", b"reply plaintext 77e0b2".to_vec()),
        Needle::new("name", b"AliceMarkerName".to_vec()),
        Needle::new("name", b"BobMarkerName".to_vec()),
    ];
    let mut dirs = Vec::new();
    for client in [&alice, &bob] {
        let vault = sealpost_client::Vault::open(&client.profile).unwrap();
        let seed = vault.load_identity_seed().unwrap().unwrap();
        let key = vault.load_database_key().unwrap().unwrap();
        needles.extend(Needle::with_encodings(
            "identity seed",
            seed.expose_secret(),
        ));
        needles.extend(Needle::with_encodings("database key", key.expose_secret()));
        let address_secrets: Vec<Vec<u8>> = client.engine.with_store(|s| {
            let mut out = Vec::new();
            for chat in s.chat_list().unwrap() {
                for address in s.peer_addresses(chat.contact.id).unwrap() {
                    out.push(address.send_secret.expose_secret().to_vec());
                    out.push(address.sender_auth_secret_key.expose_secret().to_vec());
                }
            }
            for mailbox in s.own_mailboxes().unwrap() {
                out.push(mailbox.auth_secret_key.expose_secret().to_vec());
                out.push(mailbox.sealing_secret_key.expose_secret().to_vec());
            }
            out
        });
        assert!(!address_secrets.is_empty());
        for secret in address_secrets {
            needles.extend(Needle::with_encodings("mailbox secret", &secret));
        }
        dirs.push(client.engine.profile_dirs().clone());
    }
    alice.stop().await;
    bob.stop().await;
    for dirs in dirs {
        // `shutdown` awaited every task, so dropping the last engine closed the database: SQLite
        // merged the WAL and removed its side files before the scan starts.
        for suffix in ["-wal", "-shm"] {
            let mut side = dirs.database_path().into_os_string();
            side.push(suffix);
            assert!(
                !std::path::Path::new(&side).exists(),
                "{side:?} still exists after shutdown"
            );
        }
        let findings = scan_dir_for_needles(dirs.profile_dir(), &needles);
        assert!(findings.is_empty(), "found on disk: {findings:?}");
        assert!(!starts_with_plain_sqlite_header(&dirs.database_path()).unwrap());
    }
}

/// Onboarding errors and settings round-trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_and_settings() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, _a) = Client::new("Alice", root.path(), &relay.url()).await;
    assert_eq!(
        alice
            .engine
            .onboard(
                "Again",
                RelayChoice::Remote {
                    url: relay.url(),
                    password: None,
                }
            )
            .await
            .unwrap_err()
            .kind(),
        "already_onboarded"
    );
    let profile = alice.engine.set_display_name("  Alice B  ").await.unwrap();
    assert_eq!(profile.display_name, "Alice B");
    assert_eq!(
        alice
            .engine
            .set_display_name("   ")
            .await
            .unwrap_err()
            .kind(),
        "display_name_invalid"
    );
    let mut settings = alice.engine.get_settings().await.unwrap();
    assert_eq!(settings.relays, vec![relay.url()]);
    settings.read_receipts = false;
    assert!(
        !alice
            .engine
            .update_settings(settings.clone())
            .await
            .unwrap()
            .read_receipts
    );
    settings.relays = vec!["ws://relay.example.com".into()];
    assert_eq!(
        alice
            .engine
            .update_settings(settings)
            .await
            .unwrap_err()
            .kind(),
        "relay_url_invalid"
    );
    assert_eq!(
        alice
            .engine
            .send_message("00000000000000000000000000000000", "x")
            .await
            .unwrap_err()
            .kind(),
        "contact_not_found"
    );
}
