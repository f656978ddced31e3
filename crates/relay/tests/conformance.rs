//! Conformance: every command and every error, as `docs/relay-protocol.md` documents them,
//! over real WebSockets on 127.0.0.1:0, on both stores: every test runs once on SQLite and once
//! on a fresh database of the PostgreSQL server the scripts start (`scripts/with-postgres.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use ed25519_dalek::SigningKey;
use sealpost_relay::Limits;
use sealpost_wire::{
    AuthPublicKey, ErrorCode, MessageId, OwnerCommand, PROTOCOL_VERSION, ReceiveId, Request,
    Response, SendSecret, public_key,
};
use test_case::test_case;

/// A relay on `backend` with `limits`, a client connected to it, and one mailbox that client
/// created.
async fn relay_with_mailbox(backend: Backend, limits: Limits) -> (TestRelay, Client, Mailbox) {
    let relay = TestRelay::start_on(backend, limits, None).await;
    let mut owner = Client::connect(relay.addr()).await;
    let mailbox = owner.create().await;
    (relay, owner, mailbox)
}

/// DELETE of `mailbox`, signed by its owner over `client`'s nonce.
fn delete_request(client: &Client, mailbox: &Mailbox) -> Request {
    Request::Delete {
        receive_id: mailbox.receive_id,
        signature: client.owner_signature(mailbox, OwnerCommand::Delete),
    }
}

/// SECURE of `mailbox` to `sender_key`, signed by its owner over `client`'s nonce.
fn secure_request(client: &Client, mailbox: &Mailbox, sender_key: AuthPublicKey) -> Request {
    Request::Secure {
        receive_id: mailbox.receive_id,
        sender_key,
        signature: client.owner_signature(mailbox, OwnerCommand::Secure(sender_key)),
    }
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn create_returns_fresh_distinct_ids(backend: Backend) {
    let relay = TestRelay::start_on(backend, test_limits(), None).await;
    let mut client = Client::connect(relay.addr()).await;
    assert_eq!(client.window, 8);
    let first = client.create().await;
    let second = client.create().await;
    assert_ne!(first.receive_id, second.receive_id);
    assert_ne!(first.send_id, second.send_id);
    assert_ne!(first.receive_id.0, first.send_id.0);
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn create_must_prove_the_auth_key_over_this_connections_nonce(backend: Backend) {
    let relay = TestRelay::start_on(backend, test_limits(), None).await;
    let mut other = Client::connect(relay.addr()).await;
    let mut client = Client::connect(relay.addr()).await;
    let auth = SigningKey::from_bytes(&random32());
    // Signed for another connection's nonce.
    let request = other.create_request(&auth, random32(), None);
    assert_eq!(client.request(request).await, err(ErrorCode::Auth));
    // Signed by a different key than the one presented.
    let mut request = client.create_request(&auth, random32(), None);
    if let Request::Create { auth_key, .. } = &mut request {
        *auth_key = public_key(&SigningKey::from_bytes(&random32()));
    }
    assert_eq!(client.request(request).await, err(ErrorCode::Auth));
    let _ = other.create().await;
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn relay_password_is_required_when_configured(backend: Backend) {
    let relay = TestRelay::start_on(backend, test_limits(), Some("hunter2")).await;
    let mut client = Client::connect(relay.addr()).await;
    let auth = SigningKey::from_bytes(&random32());
    let request = client.create_request(&auth, random32(), None);
    assert_eq!(client.request(request).await, err(ErrorCode::Password));
    let request = client.create_request(&auth, random32(), Some("hunter3"));
    assert_eq!(client.request(request).await, err(ErrorCode::Password));
    let mailbox = client.create_with_password(Some("hunter2")).await;
    // Only CREATE needs it.
    assert_eq!(client.send(&mailbox, b"x").await, Response::Ok {});
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn send_then_subscribe_pushes_in_order_within_the_window_and_ack_releases_more(
    backend: Backend,
) {
    let (relay, mut owner, mailbox) = relay_with_mailbox(backend, test_limits()).await;
    let mut sender = Client::connect(relay.addr()).await;
    for i in 0..20u32 {
        assert_eq!(
            sender.send(&mailbox, &i.to_be_bytes()).await,
            Response::Ok {}
        );
    }
    owner.subscribe(&mailbox).await;
    // ACK of an id that is not there is a harmless no-op: its reply marks that every push queued
    // by SUBSCRIBE has been received.
    owner.ack(&mailbox, MessageId(0)).await;
    let pushes = owner.take_pushes();
    assert_eq!(pushes.len(), 8, "exactly one window of envelopes is pushed");
    let mut previous = 0u64;
    let mut ids = Vec::new();
    for (i, push) in pushes.into_iter().enumerate() {
        let Response::Message {
            receive_id,
            message_id,
            envelope,
            received_at,
        } = push
        else {
            panic!("expected Message")
        };
        assert_eq!(receive_id, mailbox.receive_id);
        assert_eq!(envelope, (i as u32).to_be_bytes());
        assert!(message_id.0 > previous);
        assert!(received_at > 1_700_000_000);
        previous = message_id.0;
        ids.push(message_id);
    }
    // Each ACK releases the next one.
    let mut received = 8u32;
    for id in ids {
        owner.ack(&mailbox, id).await;
    }
    while received < 20 {
        let (_, message_id, envelope) = owner.next_message().await;
        assert_eq!(envelope, received.to_be_bytes());
        owner.ack(&mailbox, message_id).await;
        received += 1;
    }
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn new_sends_are_pushed_live_and_one_connection_subscribes_many_mailboxes(backend: Backend) {
    let (relay, mut owner, first) = relay_with_mailbox(backend, test_limits()).await;
    let second = owner.create().await;
    owner.subscribe(&first).await;
    owner.subscribe(&second).await;
    let mut sender = Client::connect(relay.addr()).await;
    assert_eq!(sender.send(&second, b"to second").await, Response::Ok {});
    assert_eq!(sender.send(&first, b"to first").await, Response::Ok {});
    let (receive_id, id_a, envelope) = owner.next_message().await;
    assert_eq!(
        (receive_id, envelope.as_slice()),
        (second.receive_id, &b"to second"[..])
    );
    let (receive_id, id_b, envelope) = owner.next_message().await;
    assert_eq!(
        (receive_id, envelope.as_slice()),
        (first.receive_id, &b"to first"[..])
    );
    owner.ack(&second, id_a).await;
    owner.ack(&first, id_b).await;
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn ack_is_idempotent_and_acked_envelopes_are_never_redelivered(backend: Backend) {
    let (relay, mut owner, mailbox) = relay_with_mailbox(backend, test_limits()).await;
    assert_eq!(owner.send(&mailbox, b"one").await, Response::Ok {});
    assert_eq!(owner.send(&mailbox, b"two").await, Response::Ok {});
    owner.subscribe(&mailbox).await;
    let (_, first, _) = owner.next_message().await;
    let (_, _second, _) = owner.next_message().await;
    owner.ack(&mailbox, first).await;
    owner.ack(&mailbox, first).await;
    drop(owner);
    // A new connection gets only the unacknowledged one.
    let mut owner = Client::connect(relay.addr()).await;
    owner.subscribe(&mailbox).await;
    let (_, _, envelope) = owner.next_message().await;
    assert_eq!(envelope, b"two");
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn resubscribing_on_another_connection_ends_the_first(backend: Backend) {
    let (relay, mut first, mailbox) = relay_with_mailbox(backend, test_limits()).await;
    first.subscribe(&mailbox).await;
    let mut second = Client::connect(relay.addr()).await;
    second.subscribe(&mailbox).await;
    assert_eq!(
        first.next_push().await,
        Response::End {
            receive_id: mailbox.receive_id
        }
    );
    assert_eq!(second.send(&mailbox, b"after").await, Response::Ok {});
    let (_, _, envelope) = second.next_message().await;
    assert_eq!(envelope, b"after");
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn unknown_mailbox_and_wrong_signature_get_the_same_error(backend: Backend) {
    let (_relay, mut client, mailbox) = relay_with_mailbox(backend, test_limits()).await;
    let unknown = Mailbox {
        auth: SigningKey::from_bytes(&random32()),
        receive_id: ReceiveId(random32()),
        send_id: sealpost_wire::SendId(random32()),
        secret: random32(),
    };
    let impostor = Mailbox {
        auth: SigningKey::from_bytes(&random32()),
        receive_id: mailbox.receive_id,
        send_id: mailbox.send_id,
        secret: random32(),
    };
    for target in [&unknown, &impostor] {
        let subscribe = client.subscribe_request(target);
        assert_eq!(client.request(subscribe).await, err(ErrorCode::Auth));
        let ack = client.ack_request(target, MessageId(1));
        assert_eq!(client.request(ack).await, err(ErrorCode::Auth));
        let delete = delete_request(&client, target);
        assert_eq!(client.request(delete).await, err(ErrorCode::Auth));
        let sender_key = public_key(&SigningKey::from_bytes(&random32()));
        let secure = secure_request(&client, target, sender_key);
        assert_eq!(client.request(secure).await, err(ErrorCode::Auth));
        // SEND with unknown send id, or the right send id and a wrong secret.
        assert_eq!(client.send(target, b"x").await, err(ErrorCode::Auth));
    }
    // The real owner is unaffected.
    client.subscribe(&mailbox).await;
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn a_subscribe_signature_replayed_on_another_connection_is_refused(backend: Backend) {
    let (relay, mut owner, mailbox) = relay_with_mailbox(backend, test_limits()).await;
    let captured = owner.subscribe_request(&mailbox);
    assert_eq!(owner.request(captured.clone()).await, Response::Ok {});
    let mut attacker = Client::connect(relay.addr()).await;
    assert_eq!(attacker.request(captured).await, err(ErrorCode::Auth));
    // A signature for ACK is not a signature for SUBSCRIBE either.
    let ack_signature = owner.owner_signature(&mailbox, OwnerCommand::Ack(&[MessageId(1)]));
    let wrong_command = Request::Subscribe {
        receive_id: mailbox.receive_id,
        signature: ack_signature,
    };
    assert_eq!(owner.request(wrong_command).await, err(ErrorCode::Auth));
    assert_served(relay.addr()).await;
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn secure_binds_the_sender_key_once(backend: Backend) {
    let (relay, mut owner, mailbox) = relay_with_mailbox(backend, test_limits()).await;
    let sender_key = SigningKey::from_bytes(&random32());
    let secure =
        |client: &Client, key: &SigningKey| secure_request(client, &mailbox, public_key(key));
    let mut sender = Client::connect(relay.addr()).await;
    // Before SECURE, an unsigned SEND is fine (the first contact message).
    assert_eq!(sender.send(&mailbox, b"hello").await, Response::Ok {});
    assert_eq!(
        owner.request(secure(&owner, &sender_key)).await,
        Response::Ok {}
    );
    let other_key = SigningKey::from_bytes(&random32());
    assert_eq!(
        owner.request(secure(&owner, &other_key)).await,
        err(ErrorCode::AlreadySecured)
    );
    // Without a sender session: refused.
    assert_eq!(
        sender.send(&mailbox, b"unsessioned").await,
        err(ErrorCode::SenderAuth)
    );
    // A session with the bound key: every later SEND on this connection is stored.
    sender.open_sender_session(&mailbox, &sender_key).await;
    assert_eq!(sender.send(&mailbox, b"signed").await, Response::Ok {});
    owner.subscribe(&mailbox).await;
    let (_, _, first) = owner.next_message().await;
    let (_, _, second) = owner.next_message().await;
    assert_eq!(
        (first.as_slice(), second.as_slice()),
        (&b"hello"[..], &b"signed"[..])
    );
}

/// SECURE of `mailbox` to `sender` by its owner.
async fn secure_to(owner: &mut Client, mailbox: &Mailbox, sender: &SigningKey) {
    let secure = secure_request(owner, mailbox, public_key(sender));
    assert_eq!(owner.request(secure).await, Response::Ok {});
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn a_sender_session_holds_only_for_its_connection_mailbox_and_key(backend: Backend) {
    let (relay, mut owner, mailbox) = relay_with_mailbox(backend, test_limits()).await;
    let other_mailbox = owner.create().await;
    let sender_key = SigningKey::from_bytes(&random32());
    let other_key = SigningKey::from_bytes(&random32());
    secure_to(&mut owner, &mailbox, &sender_key).await;
    secure_to(&mut owner, &other_mailbox, &other_key).await;
    let mut sender = Client::connect(relay.addr()).await;
    let mut elsewhere = Client::connect(relay.addr()).await;
    // Signed over another connection's nonce: refused, and SEND stays refused.
    let replayed = elsewhere.sender_session_request(&mailbox, &sender_key);
    assert_eq!(sender.request(replayed).await, err(ErrorCode::SenderAuth));
    // A valid proof of a key that is not the mailbox's sender key: refused.
    let wrong_key = sender.sender_session_request(&mailbox, &other_key);
    assert_eq!(sender.request(wrong_key).await, err(ErrorCode::SenderAuth));
    assert_eq!(
        sender.send(&mailbox, b"refused").await,
        err(ErrorCode::SenderAuth)
    );
    // A wrong send secret or an unknown send id: `Auth`, as for SEND.
    let mut wrong_secret = mailbox.clone();
    wrong_secret.secret = random32();
    let request = sender.sender_session_request(&wrong_secret, &sender_key);
    assert_eq!(sender.request(request).await, err(ErrorCode::Auth));
    let mut unknown = mailbox.clone();
    unknown.send_id = sealpost_wire::SendId(random32());
    let request = sender.sender_session_request(&unknown, &sender_key);
    assert_eq!(sender.request(request).await, err(ErrorCode::Auth));
    // The right proof: this connection may SEND to this mailbox, unsigned, as often as it likes.
    sender.open_sender_session(&mailbox, &sender_key).await;
    for envelope in [&b"one"[..], b"two", b"three"] {
        assert_eq!(sender.send(&mailbox, envelope).await, Response::Ok {});
    }
    // ...but not to another mailbox, and no other connection may.
    assert_eq!(
        sender.send(&other_mailbox, b"other").await,
        err(ErrorCode::SenderAuth)
    );
    assert_eq!(
        elsewhere.send(&mailbox, b"elsewhere").await,
        err(ErrorCode::SenderAuth)
    );
    owner.subscribe(&mailbox).await;
    let mut received = Vec::new();
    for _ in 0..3 {
        received.push(owner.next_message().await.2);
    }
    assert_eq!(received, [&b"one"[..], b"two", b"three"]);
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn a_sender_session_opened_before_secure_holds_for_its_key_only(backend: Backend) {
    let (relay, mut owner, mailbox) = relay_with_mailbox(backend, test_limits()).await;
    let sender_key = SigningKey::from_bytes(&random32());
    let intruder_key = SigningKey::from_bytes(&random32());
    let mut sender = Client::connect(relay.addr()).await;
    let mut intruder = Client::connect(relay.addr()).await;
    // Unsecured: a session proves the key and changes nothing else.
    sender.open_sender_session(&mailbox, &sender_key).await;
    intruder.open_sender_session(&mailbox, &intruder_key).await;
    assert_eq!(sender.send(&mailbox, b"first").await, Response::Ok {});
    secure_to(&mut owner, &mailbox, &sender_key).await;
    // Secured to the sender's key: its session holds, the intruder's does not.
    assert_eq!(sender.send(&mailbox, b"second").await, Response::Ok {});
    assert_eq!(
        intruder.send(&mailbox, b"intruder").await,
        err(ErrorCode::SenderAuth)
    );
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn a_sender_session_beyond_the_limit_replaces_an_older_one(backend: Backend) {
    let limits = sealpost_relay::Limits {
        max_sender_sessions_per_connection: 1,
        ..test_limits()
    };
    let (relay, mut owner, first) = relay_with_mailbox(backend, limits).await;
    let second = owner.create().await;
    let first_key = SigningKey::from_bytes(&random32());
    let second_key = SigningKey::from_bytes(&random32());
    secure_to(&mut owner, &first, &first_key).await;
    secure_to(&mut owner, &second, &second_key).await;
    let mut sender = Client::connect(relay.addr()).await;
    sender.open_sender_session(&first, &first_key).await;
    sender.open_sender_session(&second, &second_key).await;
    assert_eq!(sender.send(&second, b"kept").await, Response::Ok {});
    assert_eq!(
        sender.send(&first, b"replaced").await,
        err(ErrorCode::SenderAuth)
    );
    // Proving the key again restores it.
    sender.open_sender_session(&first, &first_key).await;
    assert_eq!(sender.send(&first, b"again").await, Response::Ok {});
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn secure_refuses_a_small_order_sender_key_and_stays_unsecured(backend: Backend) {
    let (relay, mut owner, mailbox) = relay_with_mailbox(backend, test_limits()).await;
    // Small-order points: the identity (y = 1) and the point of order 2 (y = -1). No strict
    // signature verifies under them, so binding one would lock every sender out.
    let identity = {
        let mut bytes = [0u8; 32];
        bytes[0] = 1;
        bytes
    };
    let order_two = {
        let mut bytes = [0xffu8; 32];
        bytes[0] = 0xec;
        bytes[31] = 0x7f;
        bytes
    };
    for weak in [identity, order_two] {
        let secure = secure_request(&owner, &mailbox, AuthPublicKey(weak));
        assert_eq!(owner.request(secure).await, err(ErrorCode::Malformed));
    }
    // The mailbox is still unsecured: an unsigned SEND is stored, and a real key can be bound.
    let mut sender = Client::connect(relay.addr()).await;
    assert_eq!(sender.send(&mailbox, b"first").await, Response::Ok {});
    let good = public_key(&SigningKey::from_bytes(&random32()));
    let secure = secure_request(&owner, &mailbox, good);
    assert_eq!(owner.request(secure).await, Response::Ok {});
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn delete_removes_the_mailbox_and_its_envelopes(backend: Backend) {
    let (_relay, mut owner, mailbox) = relay_with_mailbox(backend, test_limits()).await;
    assert_eq!(owner.send(&mailbox, b"gone soon").await, Response::Ok {});
    let delete = delete_request(&owner, &mailbox);
    assert_eq!(owner.request(delete.clone()).await, Response::Ok {});
    assert_eq!(
        owner.send(&mailbox, b"after delete").await,
        err(ErrorCode::Auth)
    );
    let subscribe = owner.subscribe_request(&mailbox);
    assert_eq!(owner.request(subscribe).await, err(ErrorCode::Auth));
    assert_eq!(owner.request(delete).await, err(ErrorCode::Auth));
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn envelope_over_the_limit_is_too_large(backend: Backend) {
    let mut limits = test_limits();
    limits.max_envelope_bytes = 1000;
    let relay = TestRelay::start_on(backend, limits, None).await;
    let mut client = Client::connect(relay.addr()).await;
    assert_eq!(client.max_envelope, 1000);
    let mailbox = client.create().await;
    assert_eq!(
        client.send(&mailbox, &[7u8; 1001]).await,
        err(ErrorCode::TooLarge)
    );
    assert_eq!(client.send(&mailbox, &[7u8; 1000]).await, Response::Ok {});
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn full_mailbox_answers_quota_exceeded_until_acked(backend: Backend) {
    let mut limits = test_limits();
    limits.mailbox_max_envelopes = 3;
    limits.mailbox_max_bytes = 1 << 20;
    let (relay, mut owner, mailbox) = relay_with_mailbox(backend, limits).await;
    let mut sender = Client::connect(relay.addr()).await;
    for _ in 0..3 {
        assert_eq!(sender.send(&mailbox, b"fill").await, Response::Ok {});
    }
    assert_eq!(
        sender.send(&mailbox, b"over").await,
        err(ErrorCode::QuotaExceeded)
    );
    owner.subscribe(&mailbox).await;
    let (_, message_id, _) = owner.next_message().await;
    owner.ack(&mailbox, message_id).await;
    assert_eq!(sender.send(&mailbox, b"room again").await, Response::Ok {});
    assert_served(relay.addr()).await;
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn byte_quota_is_enforced(backend: Backend) {
    let mut limits = test_limits();
    limits.mailbox_max_bytes = 10_000;
    let (_relay, mut client, mailbox) = relay_with_mailbox(backend, limits).await;
    assert_eq!(client.send(&mailbox, &[1u8; 6000]).await, Response::Ok {});
    assert_eq!(
        client.send(&mailbox, &[1u8; 6000]).await,
        err(ErrorCode::QuotaExceeded)
    );
    assert_eq!(client.send(&mailbox, &[1u8; 4000]).await, Response::Ok {});
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn subscriptions_per_connection_are_limited(backend: Backend) {
    let mut limits = test_limits();
    limits.max_subscriptions_per_connection = 2;
    let relay = TestRelay::start_on(backend, limits, None).await;
    let mut client = Client::connect(relay.addr()).await;
    let mailboxes = [
        client.create().await,
        client.create().await,
        client.create().await,
    ];
    client.subscribe(&mailboxes[0]).await;
    client.subscribe(&mailboxes[1]).await;
    let third = client.subscribe_request(&mailboxes[2]);
    assert_eq!(client.request(third).await, err(ErrorCode::LimitExceeded));
    // Re-subscribing one already held is fine.
    client.subscribe(&mailboxes[1]).await;
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn replies_carry_the_request_correlation_id_and_version(backend: Backend) {
    let (_relay, mut client, mailbox) = relay_with_mailbox(backend, test_limits()).await;
    client
        .send_frame(0xdead_beef, Client::send_request(&mailbox, b"x"))
        .await;
    let frame = client.recv_frame().await.unwrap();
    assert_eq!(
        (frame.v, frame.id, frame.body),
        (PROTOCOL_VERSION, 0xdead_beef, Response::Ok {})
    );
    let _ = SendSecret::new([0; 32]);
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn shutdown_answers_in_flight_sends_and_keeps_them(backend: Backend) {
    let mut relay = TestRelay::start_on(backend, test_limits(), None).await;
    let addr = relay.addr();
    let mut client = Client::connect(addr).await;
    let mailbox = client.create().await;
    let mut ids = Vec::new();
    for i in 0..50u32 {
        let id = client.fresh_id();
        client
            .send_frame(id, Client::send_request(&mailbox, &i.to_be_bytes()))
            .await;
        ids.push(id);
    }
    let mut oks = 0;
    let stopper = tokio::spawn(async move {
        relay.stop().await;
        relay
    });
    // Every reply that arrives before the close is an OK for a stored envelope.
    while let Some(frame) = client.recv_frame().await {
        if frame.body == (Response::Ok {}) {
            oks += 1;
        }
    }
    let relay = stopper.await.unwrap();
    drop(relay.handle);
    let config = sealpost_relay::RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: relay.database.clone(),
        tls: None,
        password: None,
        metrics_listen: None,
        client_address: Default::default(),
        limits: test_limits(),
    };
    let restarted = sealpost_relay::Relay::start(config).await.unwrap();
    let mut owner = Client::connect(restarted.addr()).await;
    owner.subscribe(&mailbox).await;
    let mut stored = 0;
    owner.drain(&mailbox, |_, _| stored += 1).await;
    assert!(
        stored >= oks,
        "every OK'd envelope survives shutdown ({stored} < {oks})"
    );
    restarted.shutdown().await.unwrap();
    drop(relay.dir);
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn a_frame_with_trailing_bytes_is_malformed_with_correlation_id_zero(backend: Backend) {
    let relay = TestRelay::start_on(backend, test_limits(), None).await;
    let mut client = Client::connect(relay.addr()).await;
    // A complete, valid frame (id 5) followed by one stray byte: the head is not read.
    let mut bytes = sealpost_wire::encode_client_frame(&sealpost_wire::ClientFrame {
        v: PROTOCOL_VERSION,
        id: 5,
        body: Client::send_request(&client.create().await, b"x"),
    })
    .unwrap();
    bytes.push(0x00);
    client
        .send_raw(tokio_tungstenite::tungstenite::Message::Binary(
            bytes.into(),
        ))
        .await;
    let frame = client.recv_frame().await.unwrap();
    assert_eq!((frame.id, frame.body), (0, err(ErrorCode::Malformed)));
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn a_second_delete_is_refused_like_any_command_on_a_deleted_mailbox(backend: Backend) {
    let (_relay, mut owner, mailbox) = relay_with_mailbox(backend, test_limits()).await;
    let delete = delete_request(&owner, &mailbox);
    assert_eq!(owner.request(delete.clone()).await, Response::Ok {});
    assert_eq!(owner.request(delete).await, err(ErrorCode::Auth));
}

/// A relay whose push window is one envelope, an owner with one mailbox, and a sender.
async fn window_of_one(backend: Backend) -> (TestRelay, Client, Mailbox, Client) {
    let mut limits = test_limits();
    limits.window = 1;
    let (relay, owner, mailbox) = relay_with_mailbox(backend, limits).await;
    let sender = Client::connect(relay.addr()).await;
    (relay, owner, mailbox, sender)
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn ack_of_a_stored_envelope_never_pushed_deletes_it(backend: Backend) {
    let (_relay, mut owner, mailbox, mut sender) = window_of_one(backend).await;
    for body in [&b"one"[..], b"two", b"three"] {
        assert_eq!(sender.send(&mailbox, body).await, Response::Ok {});
    }
    owner.subscribe(&mailbox).await;
    let (_, first, envelope) = owner.next_message().await;
    assert_eq!(envelope, b"one");
    // Ids increase by one within a mailbox here; "two" is stored but not pushed (window 1).
    owner.ack(&mailbox, MessageId(first.0 + 1)).await;
    owner.ack(&mailbox, first).await;
    let (_, third, envelope) = owner.next_message().await;
    assert_eq!((third.0, envelope.as_slice()), (first.0 + 2, &b"three"[..]));
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn an_ack_on_another_connection_deletes_but_frees_no_place_in_the_subscribers_window(
    backend: Backend,
) {
    let (relay, mut owner, mailbox, mut sender) = window_of_one(backend).await;
    for body in [&b"one"[..], b"two"] {
        assert_eq!(sender.send(&mailbox, body).await, Response::Ok {});
    }
    owner.subscribe(&mailbox).await;
    let (_, first, _) = owner.next_message().await;
    let mut other = Client::connect(relay.addr()).await;
    let ack = other.ack_request(&mailbox, first);
    assert_eq!(other.request(ack).await, Response::Ok {});
    // The subscriber's window is still full: a round trip on its connection brings no push.
    let probe = owner.ack_request(&mailbox, MessageId(0));
    assert_eq!(owner.request(probe).await, Response::Ok {});
    assert!(owner.take_pushes().is_empty());
    // Its own ACK of that id (already deleted, still Ok) frees the place.
    owner.ack(&mailbox, first).await;
    let (_, _, envelope) = owner.next_message().await;
    assert_eq!(envelope, b"two");
    // And the envelope ACKed elsewhere is gone: a new subscription starts at "two".
    let mut again = Client::connect(relay.addr()).await;
    again.subscribe(&mailbox).await;
    let (_, _, envelope) = again.next_message().await;
    assert_eq!(envelope, b"two");
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn a_fragmented_message_over_max_frame_bytes_gets_too_large_then_close_1009(
    backend: Backend,
) {
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
    let mut limits = test_limits();
    limits.max_frame_bytes = 4096;
    limits.max_envelope_bytes = 2048;
    let relay = TestRelay::start_on(backend, limits, None).await;
    let mut client = Client::connect(relay.addr()).await;
    // Every fragment is under the limit; the message (6 000 bytes) is not.
    let parts = [
        Frame::message(vec![0u8; 2000], OpCode::Data(Data::Binary), false),
        Frame::message(vec![0u8; 2000], OpCode::Data(Data::Continue), false),
        Frame::message(vec![0u8; 2000], OpCode::Data(Data::Continue), true),
    ];
    for part in parts {
        client.send_raw(Message::Frame(part)).await;
    }
    let frame = client.recv_frame().await.unwrap();
    assert_eq!((frame.id, frame.body), (0, err(ErrorCode::TooLarge)));
    let close = tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut client.ws))
        .await
        .unwrap();
    match close {
        Some(Ok(Message::Close(Some(close)))) => assert_eq!(close.code, CloseCode::Size),
        other => panic!("expected close 1009, got {other:?}"),
    }
    assert_served(relay.addr()).await;
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn one_signed_ack_deletes_every_listed_envelope_and_frees_the_window(backend: Backend) {
    let (relay, mut owner, mailbox) = relay_with_mailbox(backend, test_limits()).await;
    for index in 0..12u32 {
        assert_eq!(
            owner.send(&mailbox, &index.to_be_bytes()).await,
            Response::Ok {}
        );
    }
    owner.subscribe(&mailbox).await;
    let mut window = Vec::new();
    for _ in 0..8 {
        let (_, message_id, _) = owner.next_message().await;
        window.push(message_id);
    }
    // One frame, one signature, the whole window.
    let request = owner.ack_many_request(&mailbox, window.clone());
    assert_eq!(owner.request(request).await, Response::Ok {});
    let mut rest = Vec::new();
    for index in 8..12u32 {
        let (_, message_id, envelope) = owner.next_message().await;
        assert_eq!(envelope, index.to_be_bytes());
        rest.push(message_id);
    }
    // Ids listed twice, or already acknowledged, are harmless (ACK is idempotent).
    let mut again = rest.clone();
    again.push(rest[0]);
    again.push(window[0]);
    let request = owner.ack_many_request(&mailbox, again);
    assert_eq!(owner.request(request).await, Response::Ok {});
    drop(owner);
    assert!(
        stored_envelopes(relay.addr(), &mailbox).await.is_empty(),
        "every acknowledged envelope is gone"
    );
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn an_ack_signature_covers_exactly_its_list(backend: Backend) {
    let (relay, mut owner, mailbox) = relay_with_mailbox(backend, test_limits()).await;
    assert_eq!(owner.send(&mailbox, b"one").await, Response::Ok {});
    assert_eq!(owner.send(&mailbox, b"two").await, Response::Ok {});
    owner.subscribe(&mailbox).await;
    let (_, first, _) = owner.next_message().await;
    let (_, second, _) = owner.next_message().await;
    // Signed for [first]; the frame lists [first, second]: refused, nothing deleted.
    let widened = Request::Ack {
        receive_id: mailbox.receive_id,
        message_ids: vec![first, second],
        signature: Some(owner.owner_signature(&mailbox, OwnerCommand::Ack(&[first]))),
    };
    assert_eq!(owner.request(widened).await, err(ErrorCode::Auth));
    // Signed in the other order: refused too.
    let reordered = Request::Ack {
        receive_id: mailbox.receive_id,
        message_ids: vec![first, second],
        signature: Some(owner.owner_signature(&mailbox, OwnerCommand::Ack(&[second, first]))),
    };
    assert_eq!(owner.request(reordered).await, err(ErrorCode::Auth));
    // An empty list, and one longer than the limit, are refused before any signature check.
    let empty = owner.ack_many_request(&mailbox, Vec::new());
    assert_eq!(owner.request(empty).await, err(ErrorCode::Malformed));
    let too_many: Vec<MessageId> = (1..=sealpost_wire::MAX_ACK_IDS as u64 + 1)
        .map(MessageId)
        .collect();
    let too_many = owner.ack_many_request(&mailbox, too_many);
    assert_eq!(owner.request(too_many).await, err(ErrorCode::LimitExceeded));
    drop(owner);
    assert_eq!(
        stored_envelopes(relay.addr(), &mailbox).await,
        [&b"one"[..], b"two"]
    );
}

/// The envelopes a fresh subscription of `mailbox` is pushed (at most one window), in order,
/// with none acknowledged. (It takes the subscription over from any other connection.)
async fn stored_envelopes(addr: std::net::SocketAddr, mailbox: &Mailbox) -> Vec<Vec<u8>> {
    let mut reader = Client::connect(addr).await;
    reader.subscribe(mailbox).await;
    // A barrier: its reply follows every push the SUBSCRIBE queued.
    reader.ack(mailbox, MessageId(0)).await;
    reader
        .take_pushes()
        .into_iter()
        .map(|push| match push {
            Response::Message { envelope, .. } => envelope,
            other => panic!("expected Message, got {other:?}"),
        })
        .collect()
}

/// A relay, a client that created a mailbox holding one envelope ("one") and subscribes it,
/// and that envelope's message id, pushed to it.
async fn one_pushed(backend: Backend) -> (TestRelay, Client, Mailbox, MessageId) {
    let (relay, mut owner, mailbox) = relay_with_mailbox(backend, test_limits()).await;
    assert_eq!(owner.send(&mailbox, b"one").await, Response::Ok {});
    owner.subscribe(&mailbox).await;
    let (_, message_id, _) = owner.next_message().await;
    (relay, owner, mailbox, message_id)
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn an_unsigned_ack_on_the_subscribing_connection_deletes_and_frees_the_window(
    backend: Backend,
) {
    let (relay, mut owner, mailbox, mut sender) = window_of_one(backend).await;
    for body in [&b"one"[..], b"two", b"three"] {
        assert_eq!(sender.send(&mailbox, body).await, Response::Ok {});
    }
    owner.subscribe(&mailbox).await;
    let (_, first, envelope) = owner.next_message().await;
    assert_eq!(envelope, b"one");
    // No signature: this connection's SUBSCRIBE proved the owner over its nonce.
    let unsigned = Client::unsigned_ack_request(&mailbox, vec![first]);
    assert_eq!(owner.request(unsigned).await, Response::Ok {});
    let (_, second, envelope) = owner.next_message().await;
    assert_eq!(envelope, b"two");
    // Idempotent like a signed ACK; an empty or over-long list is refused as a signed one is.
    let unsigned = Client::unsigned_ack_request(&mailbox, vec![first, second]);
    assert_eq!(owner.request(unsigned).await, Response::Ok {});
    let empty = Client::unsigned_ack_request(&mailbox, Vec::new());
    assert_eq!(owner.request(empty).await, err(ErrorCode::Malformed));
    let too_many = (1..=sealpost_wire::MAX_ACK_IDS as u64 + 1)
        .map(MessageId)
        .collect();
    let too_many = Client::unsigned_ack_request(&mailbox, too_many);
    assert_eq!(owner.request(too_many).await, err(ErrorCode::LimitExceeded));
    let (_, _, envelope) = owner.next_message().await;
    assert_eq!(envelope, b"three");
    drop(owner);
    assert_eq!(stored_envelopes(relay.addr(), &mailbox).await, [b"three"]);
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn an_unsigned_ack_where_the_mailbox_is_not_subscribed_is_refused_and_deletes_nothing(
    backend: Backend,
) {
    let (relay, _owner, mailbox, message_id) = one_pushed(backend).await;
    // A connection that never subscribed the mailbox, then one that subscribes another mailbox.
    let mut other = Client::connect(relay.addr()).await;
    let unsigned = Client::unsigned_ack_request(&mailbox, vec![message_id]);
    assert_eq!(other.request(unsigned.clone()).await, err(ErrorCode::Auth));
    let elsewhere = other.create().await;
    other.subscribe(&elsewhere).await;
    assert_eq!(other.request(unsigned).await, err(ErrorCode::Auth));
    // An unknown mailbox gets the same answer.
    let unknown = Mailbox {
        receive_id: ReceiveId(random32()),
        ..mailbox.clone()
    };
    let unsigned = Client::unsigned_ack_request(&unknown, vec![message_id]);
    assert_eq!(other.request(unsigned).await, err(ErrorCode::Auth));
    assert_eq!(stored_envelopes(relay.addr(), &mailbox).await, [b"one"]);
    // The signed form works on any connection.
    other.ack(&mailbox, message_id).await;
    assert!(stored_envelopes(relay.addr(), &mailbox).await.is_empty());
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn an_unsigned_ack_after_end_is_refused_and_a_signed_one_still_works(backend: Backend) {
    let (relay, mut first, mailbox, message_id) = one_pushed(backend).await;
    let mut second = Client::connect(relay.addr()).await;
    second.subscribe(&mailbox).await;
    assert_eq!(
        first.next_push().await,
        Response::End {
            receive_id: mailbox.receive_id
        }
    );
    let unsigned = Client::unsigned_ack_request(&mailbox, vec![message_id]);
    assert_eq!(first.request(unsigned).await, err(ErrorCode::Auth));
    // Nothing was deleted: the new subscriber has the envelope, and ACKs it unsigned.
    let (_, pushed_again, envelope) = second.next_message().await;
    assert_eq!(
        (pushed_again, envelope.as_slice()),
        (message_id, &b"one"[..])
    );
    let unsigned = Client::unsigned_ack_request(&mailbox, vec![message_id]);
    assert_eq!(second.request(unsigned).await, Response::Ok {});
    // The ended connection may still ACK with a signature.
    first.ack(&mailbox, message_id).await;
    assert!(stored_envelopes(relay.addr(), &mailbox).await.is_empty());
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn an_unsigned_ack_after_delete_on_the_subscribing_connection_is_refused(backend: Backend) {
    let (_relay, mut owner, mailbox, message_id) = one_pushed(backend).await;
    let delete = delete_request(&owner, &mailbox);
    assert_eq!(owner.request(delete).await, Response::Ok {});
    let unsigned = Client::unsigned_ack_request(&mailbox, vec![message_id]);
    assert_eq!(owner.request(unsigned).await, err(ErrorCode::Auth));
}

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn an_unsigned_ack_on_the_subscribing_connection_deletes_nothing_of_another_mailbox(
    backend: Backend,
) {
    let (relay, mut owner, subscribed) = relay_with_mailbox(backend, test_limits()).await;
    let other = owner.create().await;
    let mut sender = Client::connect(relay.addr()).await;
    assert_eq!(sender.send(&subscribed, b"mine").await, Response::Ok {});
    for body in [&b"theirs 1"[..], b"theirs 2"] {
        assert_eq!(sender.send(&other, body).await, Response::Ok {});
    }
    owner.subscribe(&subscribed).await;
    let (_, _, envelope) = owner.next_message().await;
    assert_eq!(envelope, b"mine");
    // The other mailbox's message ids, as its own subscriber sees them (on another connection).
    let mut reader = Client::connect(relay.addr()).await;
    reader.subscribe(&other).await;
    let theirs = vec![reader.next_message().await.1, reader.next_message().await.1];
    drop(reader);
    // Naming the other mailbox: refused, this connection does not subscribe it.
    let unsigned = Client::unsigned_ack_request(&other, theirs.clone());
    assert_eq!(owner.request(unsigned).await, err(ErrorCode::Auth));
    // Naming the subscribed mailbox with the other's ids: `Ok` (ACK is idempotent), but only
    // envelopes of the mailbox named are ever deleted.
    let unsigned = Client::unsigned_ack_request(&subscribed, theirs);
    assert_eq!(owner.request(unsigned).await, Response::Ok {});
    assert_eq!(
        stored_envelopes(relay.addr(), &other).await,
        [&b"theirs 1"[..], b"theirs 2"]
    );
    assert_eq!(stored_envelopes(relay.addr(), &subscribed).await, [b"mine"]);
}

/// A version-1 client's ACK (one id per signed frame, correlation id 2^64-1), as the version-1
/// vectors of `crates/wire/tests/vectors/frames.json` froze it.
const VERSION_1_ACK: &str = "a36176016269641bffffffffffffffff64626f6479a16341636ba36a726563656976655f6964582011111111111111111111111111111111111111111111111111111111111111116a6d6573736167655f69641b0102030405060708697369676e6174757265584044444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444";

#[test_case(Backend::Sqlite ; "sqlite")]
#[test_case(Backend::Postgres ; "postgres")]
#[tokio::test]
async fn version_1_2_and_3_clients_are_refused_with_a_typed_error_and_the_connection_stays_open(
    backend: Backend,
) {
    let (_relay, mut client, mailbox) = relay_with_mailbox(backend, test_limits()).await;
    client
        .send_raw(tokio_tungstenite::tungstenite::Message::Binary(
            hex::decode(VERSION_1_ACK).unwrap().into(),
        ))
        .await;
    let reply = client.recv_frame().await.unwrap();
    assert_eq!(reply.v, PROTOCOL_VERSION);
    assert_eq!(
        (reply.id, reply.body),
        (u64::MAX, err(ErrorCode::UnsupportedVersion))
    );
    assert_eq!(
        client.send(&mailbox, b"still served").await,
        Response::Ok {}
    );
    // A version-2 client's SEND (a sender signature on every SEND): refused the same way.
    client
        .send_raw(tokio_tungstenite::tungstenite::Message::Binary(
            hex::decode(VERSION_2_SIGNED_SEND).unwrap().into(),
        ))
        .await;
    let reply = client.recv_frame().await.unwrap();
    assert_eq!(
        (reply.v, reply.id, reply.body),
        (PROTOCOL_VERSION, 8, err(ErrorCode::UnsupportedVersion))
    );
    // A version-3 client's ACK (always signed): refused the same way, even on the connection
    // that subscribes its mailbox.
    client.subscribe(&mailbox).await;
    client
        .send_raw(tokio_tungstenite::tungstenite::Message::Binary(
            hex::decode(VERSION_3_SIGNED_ACK).unwrap().into(),
        ))
        .await;
    // (The stored envelope is pushed meanwhile; `reply_to` keeps it aside.)
    assert_eq!(client.reply_to(4).await, err(ErrorCode::UnsupportedVersion));
    assert_eq!(client.send(&mailbox, b"served").await, Response::Ok {});
}

/// A version-3 ACK (every ACK signed), as the version-3 vectors froze it (`ack-several`).
const VERSION_3_SIGNED_ACK: &str = "a36176036269640464626f6479a16341636ba36a726563656976655f6964582011111111111111111111111111111111111111111111111111111111111111116b6d6573736167655f69647383071bffffffffffffffff190102697369676e6174757265584044444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444";

/// A version-2 SEND with its per-SEND sender signature, as the version-2 vectors froze it.
const VERSION_2_SIGNED_SEND: &str = "a36176026269640864626f6479a16453656e64a46773656e645f6964582022222222222222222222222222222222222222222222222222222222222222226b73656e645f7365637265745820666666666666666666666666666666666666666666666666666666666666666668656e76656c6f706543cdcdcd7073656e6465725f7369676e6174757265584044444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444";
