//! Groups (`docs/engine.md` § Groups): pairwise fan-out over the 1:1 sessions, with real clients
//! on a real relay. The author of a group message is the peer of the session it arrived on, so a
//! member cannot make a message show as another member's (LINE's T4); roster changes need the
//! role; a removed member gets no new envelope; messages from non-members, and a group message
//! replayed or tampered into another group, are refused. Run as
//! `scripts/with-keyring.sh cargo test -p sealpost-tests --test groups`.
//!
//! Every wait is bounded ([`sealpost_test_support::WAIT`]); nothing asserts on timing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sealpost_client::EngineEvent;
use sealpost_client::content::Body;
use sealpost_client::engine::MessageStateView;
use sealpost_client::group::{GroupId, RosterMessage, RosterState};
use sealpost_client::store::ContactId;
use sealpost_test_support::{
    Client, RelayProcess, TestRelay, Trio, create_group, group_of, group_of_three, has_text,
    inject_envelope, key_of, knows, member_key, refused, remove_member, route, send_as,
    send_text_as, texts, trio, trio_on, wait_for_group, wait_for_text, wait_introduced, wait_until,
};

/// Three real clients on a real relay: create, introductions, chat both ways with per-member
/// delivery ("delivered to 2 of 2"), remove, leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_clients_create_chat_remove_and_leave() {
    let t = trio().await;
    let id = group_of_three(&t).await;
    let at_bob = group_of(&t.bob, &id).await.unwrap();
    assert_eq!(at_bob.name, "Climbing");
    assert_eq!(at_bob.members.len(), 3);
    assert!(!at_bob.is_admin);

    // Bob and Carol were not contacts: the introduction gives them a session of their own.
    wait_introduced(&t).await;

    let sent = t
        .alice
        .engine
        .send_group_message(&id, "hello both")
        .await
        .unwrap();
    assert_eq!(sent.recipients, 2);
    let at_bob = wait_for_text(&t.bob, &id, "hello both").await;
    assert_eq!(at_bob.author_key, key_of(&t.alice));
    assert_eq!(at_bob.author_name.as_deref(), Some("Alice"));
    wait_for_text(&t.carol, &id, "hello both").await;
    wait_until("delivered to 2 of 2", || async {
        let ours = texts(&t.alice, &id).await;
        ours.iter()
            .any(|m| m.text == "hello both" && m.delivered_to == 2)
    })
    .await;

    t.bob
        .engine
        .send_group_message(&id, "from bob")
        .await
        .unwrap();
    let at_carol = wait_for_text(&t.carol, &id, "from bob").await;
    assert_eq!(
        at_carol.author_key,
        key_of(&t.bob),
        "over Bob's own session with Carol"
    );
    wait_for_text(&t.alice, &id, "from bob").await;

    // Remove Carol: she learns it, and nothing of the group reaches her after.
    let view = remove_member(&t.alice, &t.carol, &id).await;
    assert_eq!(view.members.len(), 2);
    wait_until("Bob learns of Carol's removal", || async {
        group_of(&t.bob, &id).await.unwrap().members.len() == 2
    })
    .await;
    let after = t
        .alice
        .engine
        .send_group_message(&id, "without carol")
        .await
        .unwrap();
    assert_eq!(after.recipients, 1);
    wait_for_text(&t.bob, &id, "without carol").await;
    assert!(
        !has_text(&t.carol, &id, |m| m.text == "without carol").await,
        "a removed member gets nothing sent after the removal"
    );

    // Bob leaves: Alice is alone.
    t.bob.engine.leave_group(&id).await.unwrap();
    wait_until("Alice sees Bob leave", || async {
        group_of(&t.alice, &id).await.unwrap().members.len() == 1
    })
    .await;
    assert!(!group_of(&t.bob, &id).await.unwrap().is_member);
    assert_eq!(
        t.bob
            .engine
            .send_group_message(&id, "still here?")
            .await
            .unwrap_err()
            .kind(),
        "group_not_member"
    );
}

/// The engine reports group activity as events, so the app needs no polling: we joined
/// (`group-roster-changed`), a member's text arrived (`group-message-received`, once), our
/// text's copies were delivered and read ("delivered to N of M", `group-message-state`), we
/// were removed, a member left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_events_report_texts_roster_changes_and_delivery() {
    let mut t = trio().await;
    let id = group_of_three(&t).await;
    let in_group = |is: bool| {
        let id = id.clone();
        move |e: &EngineEvent| {
            matches!(e, EngineEvent::GroupRosterChanged { group_id, is_member }
                if *group_id == id && *is_member == is)
        }
    };
    t.bob.wait_event(in_group(true)).await;
    t.carol.wait_event(in_group(true)).await;
    wait_introduced(&t).await;

    let sent = t
        .alice
        .engine
        .send_group_message(&id, "evented")
        .await
        .unwrap();
    for member in [&mut t.bob, &mut t.carol] {
        let event = member
            .wait_event(|e| {
                matches!(e, EngineEvent::GroupMessageReceived { group_id, message }
                    if *group_id == id && message.text == "evented")
            })
            .await;
        let EngineEvent::GroupMessageReceived { message, .. } = event else {
            unreachable!()
        };
        assert_eq!(message.author_key, key_of(&t.alice));
        assert!(!message.outgoing);
    }
    let progress = |delivered: u32, read: u32| {
        let message = sent.id.clone();
        move |e: &EngineEvent| {
            matches!(e, EngineEvent::GroupMessageState { message_id, recipients: 2,
                delivered_to, read_by, .. }
                if *message_id == message && *delivered_to == delivered && *read_by == read)
        }
    };
    t.alice.wait_event(progress(2, 0)).await;
    t.bob.engine.mark_group_read(&id).await.unwrap();
    t.alice.wait_event(progress(2, 1)).await;

    // Carol is removed: she hears she is out.
    t.alice
        .engine
        .remove_group_member(&id, &key_of(&t.carol))
        .await
        .unwrap();
    t.carol.wait_event(in_group(false)).await;
    assert!(!group_of(&t.carol, &id).await.unwrap().is_member);

    // Bob leaves: Alice hears the roster changed.
    wait_until("Bob knows Carol is out", || async {
        group_of(&t.bob, &id).await.unwrap().members.len() == 2
    })
    .await;
    t.alice.drain_events();
    t.bob.engine.leave_group(&id).await.unwrap();
    t.alice.wait_event(in_group(true)).await;
    assert_eq!(group_of(&t.alice, &id).await.unwrap().members.len(), 1);
}

/// The stored state of our group text follows its copies (`docs/engine.md` § Groups): on relay
/// while a member's device does not have it yet, delivered once every member's device has it,
/// read once every member read it; the counts say how many ("delivered to 1 of 2").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_group_message_state_advances_with_its_copies() {
    let t = trio().await;
    let id = group_of_three(&t).await;
    wait_introduced(&t).await;
    let Trio {
        alice, bob, carol, ..
    } = t;
    // Carol is offline: her copy waits on the relay.
    let (carol_profile, carol_root) = carol.stop().await;
    let sent = alice.engine.send_group_message(&id, "state").await.unwrap();
    assert_eq!(sent.state, MessageStateView::Queued);
    let ours = || async {
        texts(&alice, &id)
            .await
            .into_iter()
            .find(|m| m.id == sent.id)
            .unwrap()
    };
    wait_until(
        "Bob's device has it, Carol's copy is on the relay",
        || async {
            ours().await.delivered_to == 1
                && alice.engine.with_store(|s| s.outbox().unwrap().is_empty())
        },
    )
    .await;
    let one_of_two = ours().await;
    assert_eq!(
        (one_of_two.state, one_of_two.recipients),
        (MessageStateView::OnRelay, 2),
        "on relay while Carol's device does not have it"
    );

    let carol = Client::reopen(&carol_profile, &carol_root).await;
    wait_until("delivered to 2 of 2", || async {
        ours().await.delivered_to == 2
    })
    .await;
    assert_eq!(ours().await.state, MessageStateView::Delivered);

    bob.engine.mark_group_read(&id).await.unwrap();
    wait_until("read by Bob", || async { ours().await.read_by == 1 }).await;
    assert_eq!(
        ours().await.state,
        MessageStateView::Delivered,
        "read only once every member read it"
    );
    wait_for_text(&carol, &id, "state").await;
    carol.engine.mark_group_read(&id).await.unwrap();
    wait_until("read by both", || async { ours().await.read_by == 2 }).await;
    assert_eq!(ours().await.state, MessageStateView::Read);
    let stored = alice.engine.with_store(|s| {
        s.group_messages_page(id.parse().unwrap(), None, 100)
            .unwrap()
            .into_iter()
            .find(|m| m.id.to_string() == sent.id)
            .unwrap()
            .state
    });
    assert_eq!(stored, sealpost_client::store::MessageState::Read, "stored");
}

/// Introductions survive the relay's CREATE rate limit (`create_rate_per_ip`): a CREATE it
/// refuses for the rate is tried again later, so the pair is introduced once the rate allows,
/// instead of never (`docs/benchmarks.md` § Groups: a member joining a group of strangers makes
/// one CREATE per member).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introductions_survive_the_relays_create_rate_limit() {
    let t = rate_limited_trio().await;
    // Everyone here shares one address: Alice uses up every CREATE the relay allows for two
    // seconds, so Bob's and Carol's introduction CREATEs are refused for the rate at first.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let drain = async {
        let mut refused = 0;
        while std::time::Instant::now() < until {
            if let Err(error) = t.alice.engine.create_invite().await {
                assert_eq!(error.kind(), "relay_unreachable", "{error}");
                refused += 1;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        refused
    };
    let (refused, group) = tokio::join!(drain, async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        create_group(&t.alice, "Busy", &[&t.alice_bob, &t.alice_carol]).await
    });
    assert!(refused > 0, "the relay refused CREATEs for the rate");
    wait_for_group(&t.bob, &group.id).await;
    wait_for_group(&t.carol, &group.id).await;
    wait_introduced(&t).await;
}

/// T4: whatever member Carol sends naming Bob shows as Carol's, because the author is the peer
/// of the session it arrived on (group content has no author field) — also after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t4_member_cannot_forge_from_b() {
    let t = trio().await;
    let id = group_of_three(&t).await;
    t.carol
        .engine
        .send_group_message(&id, "Bob: I owe Carol 100")
        .await
        .unwrap();
    // Carol's own crafted copy, with Bob's name in it and a sequence number Bob could use.
    send_text_as(
        &t,
        &t.carol,
        &t.carol_alice,
        &id,
        1,
        "from: Bob — pay Carol",
    )
    .await;
    let first = wait_for_text(&t.alice, &id, "Bob: I owe Carol 100").await;
    let second = wait_for_text(&t.alice, &id, "from: Bob — pay Carol").await;
    for message in [&first, &second] {
        assert_eq!(message.author_key, key_of(&t.carol));
        assert_eq!(message.author_name.as_deref(), Some("Carol"));
    }

    let bob_key = key_of(&t.bob);
    let carol_key = key_of(&t.carol);
    let Trio { alice, .. } = t;
    let (profile, root) = alice.stop().await;
    let alice = Client::reopen(&profile, &root).await;
    let after_restart = texts(&alice, &id).await;
    assert_eq!(after_restart.len(), 2);
    for message in after_restart {
        assert_ne!(message.author_key, bob_key);
        assert_eq!(message.author_key, carol_key);
    }
}

/// A roster change from a member without the admin role is refused by every receiver (held,
/// never applied), and the engine refuses to make one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_op_needs_role() {
    let mut t = trio().await;
    let id = group_of_three(&t).await;
    let group: GroupId = id.parse().unwrap();
    let error = t
        .bob
        .engine
        .remove_group_member(&id, &key_of(&t.carol))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "group_not_admin");

    // Bob sends a roster anyway: his own copy, in which he made himself admin and removed Carol.
    let real = t
        .bob
        .engine
        .with_store(|s| s.group(group).unwrap().unwrap().replica.state);
    let mut forged = RosterState::genesis(
        member_key(&t.bob),
        "Climbing",
        "Tuesdays",
        &[member_key(&t.alice)],
    )
    .unwrap();
    forged.join(&real);
    forged
        .remove(&member_key(&t.bob), &member_key(&t.carol))
        .unwrap();
    t.alice.drain_events();
    send_as(
        &t.relay,
        &t.bob,
        &t.bob_alice,
        Body::GroupRoster {
            group_id: group,
            change: RosterMessage::State(forged),
        },
    )
    .await;
    t.alice.wait_event(refused("without the role")).await;
    let at_alice = group_of(&t.alice, &id).await.unwrap();
    assert_eq!(at_alice.members.len(), 3, "Carol is still a member");
    assert!(
        at_alice
            .members
            .iter()
            .any(|m| m.key == key_of(&t.bob) && !m.is_admin)
    );
}

/// A removed member gets no envelope sealed after its removal, and what it sends afterwards is
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_member_gets_no_new_envelope() {
    let mut t = trio().await;
    let id = group_of_three(&t).await;
    // The removal itself is the last envelope sealed to Carol.
    remove_member(&t.alice, &t.carol, &id).await;
    let carol_contact: ContactId = t.alice_carol.parse().unwrap();
    let outbox_to_carol = |client: &Client| {
        client.engine.with_store(|s| {
            s.outbox()
                .unwrap()
                .into_iter()
                .filter(|o| o.contact == carol_contact)
                .count()
        })
    };
    wait_until("the removal has left Alice's outbox", || async {
        outbox_to_carol(&t.alice) == 0
    })
    .await;
    let sent = t
        .alice
        .engine
        .send_group_message(&id, "after")
        .await
        .unwrap();
    assert_eq!(
        outbox_to_carol(&t.alice),
        0,
        "no envelope for Carol was sealed with it"
    );
    let copies = t.alice.engine.with_store(|s| {
        s.group_copies(sent.id.parse().unwrap())
            .unwrap()
            .into_iter()
            .map(|c| c.member)
            .collect::<Vec<_>>()
    });
    assert_eq!(
        copies,
        vec![member_key(&t.bob)],
        "one copy, Bob's; none for Carol"
    );
    wait_for_text(&t.bob, &id, "after").await;

    t.alice.drain_events();
    send_text_as(&t, &t.carol, &t.carol_alice, &id, 99, "still here").await;
    t.alice.wait_event(refused("non-member")).await;
    assert!(!has_text(&t.alice, &id, |m| m.text == "still here").await);
}

/// A contact who is not in the group cannot post into it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_from_non_member_is_refused() {
    let mut t = trio().await;
    let group = create_group(&t.alice, "Just us", &[&t.alice_bob]).await;
    wait_for_group(&t.bob, &group.id).await;
    t.alice.drain_events();
    send_text_as(&t, &t.carol, &t.carol_alice, &group.id, 1, "let me in").await;
    t.alice.wait_event(refused("non-member")).await;
    assert!(texts(&t.alice, &group.id).await.is_empty());
}

/// A member's message to one group cannot be made to show in another: the group id is inside
/// the ratchet-encrypted content, so a replay is a duplicate, a tampered copy does not open,
/// and the member's own copy naming a group it is not in is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_message_replayed_into_another_group_is_refused() {
    let mut t = trio().await;
    let with_bob = create_group(&t.alice, "With Bob", &[&t.alice_bob]).await;
    let with_carol = create_group(&t.alice, "With Carol", &[&t.alice_carol]).await;
    wait_for_group(&t.bob, &with_bob.id).await;
    let envelope = send_text_as(
        &t,
        &t.bob,
        &t.bob_alice,
        &with_bob.id,
        1,
        "for the Bob group",
    )
    .await;
    wait_for_text(&t.alice, &with_bob.id, "for the Bob group").await;

    // The relay replays it, and tries a copy with bytes changed.
    let route = route(&t.bob, &t.bob_alice);
    inject_envelope(&t.relay, &route, &envelope).await;
    let mut tampered = envelope.clone();
    let last = tampered.len() - 20;
    tampered[last] ^= 0x01;
    t.alice.drain_events();
    inject_envelope(&t.relay, &route, &tampered).await;
    t.alice
        .wait_event(|e| matches!(e, EngineEvent::EnvelopeRefused { .. }))
        .await;

    // Bob's own copy naming the other group (he is not in it).
    send_text_as(
        &t,
        &t.bob,
        &t.bob_alice,
        &with_carol.id,
        2,
        "for the Carol group",
    )
    .await;
    t.alice.wait_event(refused("non-member")).await;
    assert!(texts(&t.alice, &with_carol.id).await.is_empty());
    let in_bob_group = texts(&t.alice, &with_bob.id).await;
    assert_eq!(in_bob_group.len(), 1, "shown once, in its own group");
}

/// An introduction invite opens only for the member it was made for: someone else who gets
/// hold of its text is refused and the invite stays open for the member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_introduction_invite_opens_only_for_its_member() {
    let t = trio().await;
    let Trio {
        alice,
        bob,
        carol,
        relay,
        alice_bob,
        alice_carol,
        ..
    } = t;
    // Bob and Carol are offline while Alice makes the group and stops, so the introduction
    // invite one of them makes can never be passed on by her: it stays unused.
    let (bob_profile, bob_root) = bob.stop().await;
    let (carol_profile, carol_root) = carol.stop().await;
    let group = create_group(&alice, "Climbing", &[&alice_bob, &alice_carol]).await;
    wait_until("Alice's roster copies have left", || async {
        alice.engine.with_store(|s| s.outbox().unwrap().is_empty())
    })
    .await;
    alice.stop().await;
    let bob = Client::reopen(&bob_profile, &bob_root).await;
    let carol = Client::reopen(&carol_profile, &carol_root).await;
    wait_for_group(&bob, &group.id).await;
    wait_for_group(&carol, &group.id).await;
    // The one of Bob and Carol with the smaller key makes the invite.
    let mut maker = if bob.engine.identity_key().to_bytes() < carol.engine.identity_key().to_bytes()
    {
        bob
    } else {
        carol
    };
    let found = std::sync::Arc::new(std::sync::Mutex::new(None));
    wait_until("the introduction invite is made", || {
        let found = found.clone();
        let engine = maker.engine.clone();
        async move {
            let invites = engine.list_invites().await.unwrap();
            let done = !invites.is_empty();
            *found.lock().unwrap() = invites.into_iter().next();
            done
        }
    })
    .await;
    let invite = found.lock().unwrap().clone().unwrap();

    let (dave, _d) = Client::new("Dave", t.root.path(), &relay.url()).await;
    maker.drain_events();
    dave.engine.accept_invite(&invite.text, "").await.unwrap();
    maker.wait_event(refused("not made for")).await;
    let chats = maker.engine.list_chats().await.unwrap();
    assert!(!chats.iter().any(|c| c.display_name == "Dave"));
    let still_open = maker.engine.list_invites().await.unwrap();
    assert!(
        still_open.iter().any(|i| i.id == invite.id),
        "still open for the member"
    );
}

/// Relay blindness with real clients (T10): after a three-person group conversation, the
/// relay's files (database, WAL) and everything the relay process wrote to stdout and stderr
/// with logging at its most verbose level (`--log trace`) hold no group id, group name or
/// description, no display name and no identity key, raw or in a text encoding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_files_and_logs_hold_nothing_of_a_group_conversation() {
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("relay.log");
    let relay = RelayProcess::start_logged(
        env!("CARGO_BIN_EXE_sealpost-test-relay"),
        &["--log", "trace"],
        &log,
    )
    .await;
    let url = relay.url();
    let tag = hex::encode(member_key_bytes_random());
    let names = [
        format!("Alice{}", &tag[..10]),
        format!("Bob{}", &tag[10..20]),
        format!("Carol{}", &tag[20..30]),
    ];
    let t = trio_on(relay, &url, names.clone()).await;
    let group_name = format!("GroupName{}", &tag[30..40]);
    let description = format!("GroupDescription{}", &tag[40..50]);
    let group = t
        .alice
        .engine
        .create_group(
            &group_name,
            &description,
            &[t.alice_bob.clone(), t.alice_carol.clone()],
        )
        .await
        .unwrap();
    wait_for_group(&t.bob, &group.id).await;
    wait_for_group(&t.carol, &group.id).await;
    // Bob and Carol may still be being introduced: send once they know each other.
    wait_introduced(&t).await;
    for (client, text) in [(&t.alice, "one"), (&t.bob, "two"), (&t.carol, "three")] {
        client
            .engine
            .send_group_message(&group.id, text)
            .await
            .unwrap();
    }
    for client in [&t.alice, &t.bob, &t.carol] {
        for text in ["one", "two", "three"] {
            let is_own = texts(client, &group.id)
                .await
                .iter()
                .any(|m| m.text == text && m.outgoing);
            if !is_own {
                wait_for_text(client, &group.id, text).await;
            }
        }
    }

    let mut needles = Vec::new();
    let group_id: GroupId = group.id.parse().unwrap();
    needles.extend(sealpost_client::scan::Needle::with_encodings(
        "group id",
        group_id.as_bytes(),
    ));
    for (label, text) in [("group name", &group_name), ("description", &description)] {
        needles.push(sealpost_client::scan::Needle::new(
            label,
            text.clone().into_bytes(),
        ));
    }
    for (client, name) in [
        (&t.alice, &names[0]),
        (&t.bob, &names[1]),
        (&t.carol, &names[2]),
    ] {
        needles.push(sealpost_client::scan::Needle::new(
            "display name",
            name.clone().into_bytes(),
        ));
        needles.extend(sealpost_client::scan::Needle::with_encodings(
            "identity key",
            &client.engine.identity_key().to_bytes(),
        ));
    }
    // The control: a mailbox's send id is what the relay does keep, so the scan must find it.
    let send_id = t.alice.engine.with_store(|s| {
        let contact = s.contacts().unwrap().remove(0);
        s.peer_addresses(contact.id).unwrap().remove(0).send_id
    });
    let control = [sealpost_client::scan::Needle::new(
        "a send id (kept by design)",
        send_id.as_bytes().to_vec(),
    )];
    let Trio {
        mut relay,
        alice,
        bob,
        carol,
        ..
    } = t;
    for client in [alice, bob, carol] {
        client.stop().await;
    }
    let stdout = relay.stop_gracefully().await;
    std::fs::write(logs.path().join("relay.stdout"), stdout.join("\n")).unwrap();
    let relay_dir = relay.database().parent().unwrap().to_path_buf();
    for dir in [&relay_dir, &logs.path().to_path_buf()] {
        let findings = sealpost_client::scan::scan_dir_for_needles(dir, &needles);
        assert!(findings.is_empty(), "found in {dir:?}: {findings:#?}");
    }
    assert!(
        !sealpost_client::scan::scan_dir_for_needles(&relay_dir, &control).is_empty(),
        "the scan reads the relay's files"
    );
    let log_control = [sealpost_client::scan::Needle::new(
        "the relay's start-up line",
        b"starting relay".to_vec(),
    )];
    assert!(
        !sealpost_client::scan::scan_dir_for_needles(logs.path(), &log_control).is_empty(),
        "the scan reads the relay's log"
    );
    assert_no_value_links_two_mailboxes(relay.database());
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(
        written.contains("TRACE"),
        "the relay logged at its most verbose level ({} bytes)",
        written.len()
    );
}

/// No column links two mailboxes of one person (`docs/threat-model.md`): every key-like value the
/// relay keeps per mailbox (ids, auth key, send-secret hash, sender key) occurs in ONE mailbox
/// row only, so no equal value ties two of a person's mailboxes (or two peers' senders) together.
fn assert_no_value_links_two_mailboxes(database: &std::path::Path) {
    let connection =
        rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut statement = connection
        .prepare(
            "SELECT mid, receive_id, send_id, auth_key, send_secret_hash, sender_key FROM mailbox",
        )
        .unwrap();
    let rows: Vec<(i64, Vec<Option<Vec<u8>>>)> = statement
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                (1..=5)
                    .map(|column| row.get::<_, Option<Vec<u8>>>(column))
                    .collect::<Result<Vec<_>, _>>()?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // Three people, each with mailboxes per contact and per group introduction.
    assert!(rows.len() >= 6, "the relay kept {} mailboxes", rows.len());
    let mut owner_of: std::collections::HashMap<Vec<u8>, i64> = std::collections::HashMap::new();
    for (mailbox, values) in &rows {
        for value in values.iter().flatten() {
            if let Some(other) = owner_of.insert(value.clone(), *mailbox) {
                assert_eq!(
                    other,
                    *mailbox,
                    "the value {} is kept in two mailboxes",
                    hex::encode(value)
                );
            }
        }
    }
}

fn member_key_bytes_random() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap();
    bytes
}

/// A forwarded introduction that overtakes the roster adding its member is held, not refused
/// for good, and applied when that roster arrives (`docs/engine.md` § Introductions): the test
/// plays Alice, the admin, and puts into Carol's mailbox Bob's invite passed on, THEN the
/// roster that makes Carol (and Bob) members. Alice's engine has no such group, so the
/// introduction that arrived first is the only way Bob and Carol can meet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introduction_arriving_before_its_roster_is_applied_when_the_roster_arrives() {
    let t = trio().await;
    let group_id = GroupId::generate().unwrap();
    let state = RosterState::genesis(
        member_key(&t.alice),
        "Early",
        "",
        &[member_key(&t.bob), member_key(&t.carol)],
    )
    .unwrap();
    let invite = t.bob.engine.create_invite().await.unwrap().text;
    send_as(
        &t.relay,
        &t.alice,
        &t.alice_carol,
        Body::GroupIntroduction {
            group_id,
            member: member_key(&t.carol),
            invite,
        },
    )
    .await;
    send_as(
        &t.relay,
        &t.alice,
        &t.alice_carol,
        Body::GroupRoster {
            group_id,
            change: RosterMessage::State(state),
        },
    )
    .await;
    wait_for_group(&t.carol, &group_id.to_string()).await;
    wait_introduced(&t).await;
}

/// A relay that allows one CREATE a second after a burst of 8 (all clients here share one
/// address), and the trio on it.
async fn rate_limited_trio() -> Trio {
    let relay = TestRelay::start_with(|config| {
        config.limits.create_rate_per_ip = sealpost_relay::Rate {
            per_second: 1,
            burst: 8,
        };
    })
    .await;
    let url = relay.url();
    trio_on(relay, &url, ["Alice", "Bob", "Carol"].map(str::to_owned)).await
}

/// Alice uses up every CREATE the relay allows until `done` is set, so no introduction can
/// complete meanwhile (making and accepting an introduction invite are CREATEs).
async fn hold_introductions(alice: &Client, done: &std::sync::atomic::AtomicBool) {
    let until = std::time::Instant::now() + sealpost_test_support::WAIT;
    while !done.load(std::sync::atomic::Ordering::SeqCst) && std::time::Instant::now() < until {
        let _ = alice.engine.create_invite().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Nothing is lost (`docs/engine.md` § Groups): an introduction still in flight when the app
/// stops is kept in the store and resumed on the next start, so the pair is introduced and can
/// talk in the group. The relay refuses CREATEs for their rate while the group is made, so the
/// introduction cannot complete before Bob and Carol stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_introduction_interrupted_by_a_restart_completes_after_it() {
    let t = rate_limited_trio().await;
    let Trio {
        alice,
        bob,
        carol,
        alice_bob,
        alice_carol,
        ..
    } = t;
    let done = std::sync::atomic::AtomicBool::new(false);
    let (_, (id, bob_stopped, carol_stopped)) =
        tokio::join!(hold_introductions(&alice, &done), async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let group = create_group(&alice, "Restart", &[&alice_bob, &alice_carol]).await;
            wait_for_group(&bob, &group.id).await;
            wait_for_group(&carol, &group.id).await;
            assert!(
                !knows(&bob, "Carol").await,
                "not introduced before the stop"
            );
            let stopped = (bob.stop().await, carol.stop().await);
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            (group.id, stopped.0, stopped.1)
        });
    let bob = Client::reopen(&bob_stopped.0, &bob_stopped.1).await;
    let carol = Client::reopen(&carol_stopped.0, &carol_stopped.1).await;
    wait_until("Bob and Carol are introduced after the restart", || async {
        knows(&bob, "Carol").await && knows(&carol, "Bob").await
    })
    .await;
    bob.engine
        .send_group_message(&id, "from bob")
        .await
        .unwrap();
    carol
        .engine
        .send_group_message(&id, "from carol")
        .await
        .unwrap();
    wait_for_text(&carol, &id, "from bob").await;
    wait_for_text(&bob, &id, "from carol").await;
    wait_for_text(&alice, &id, "from carol").await;
}

/// Nothing is lost (`docs/engine.md` § Groups): a group text sent while a member still awaits
/// its introduction has a copy counted for that member, sealed to it once the pair's session
/// exists; the message's state and "delivered to N of M" follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_text_sent_before_an_introduction_reaches_the_member_after_it() {
    let t = rate_limited_trio().await;
    let done = std::sync::atomic::AtomicBool::new(false);
    let (_, (id, sent)) = tokio::join!(hold_introductions(&t.alice, &done), async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let group = create_group(&t.alice, "Early", &[&t.alice_bob, &t.alice_carol]).await;
        wait_for_group(&t.bob, &group.id).await;
        let sent = t
            .bob
            .engine
            .send_group_message(&group.id, "before the introduction")
            .await
            .unwrap();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        (group.id, sent)
    });
    let carol_has = wait_for_text(&t.carol, &id, "before the introduction").await;
    assert_eq!(carol_has.author_key, key_of(&t.bob));
    let bobs = || async {
        texts(&t.bob, &id)
            .await
            .into_iter()
            .find(|m| m.id == sent.id)
            .unwrap()
    };
    wait_until("delivered to 2 of 2", || async {
        bobs().await.delivered_to == 2
    })
    .await;
    let message = bobs().await;
    assert_eq!(
        (message.state, message.recipients),
        (MessageStateView::Delivered, 2),
        "a copy was counted for Carol too, and delivered"
    );
}
