//! Against the real embedded relay on 127.0.0.1: the request/response commands, SECURE, typed
//! refusals, the transport policy and the reconnecting [`Subscriber`].

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{bounded, connector, key, start_loopback_relay, ws_url};
use sealpost_relay::RelayHandle;
use sealpost_relay_client::{
    BackoffConfig, ClientError, ConnectionState, Inbound, MessageId, OwnerConnection, Pushed,
    ReceiveId, RelayUrl, Retry, SendId, SendSecret, Sender, Subscriber, SubscriberConfig, UrlError,
    public_key,
};

/// A relay on loopback with one mailbox on it, created by `key(1)` with the send secret
/// `[2; 32]` over `owner_connection`.
struct OneMailbox {
    /// Holds the relay's database.
    dir: tempfile::TempDir,
    relay: RelayHandle,
    url: RelayUrl,
    owner_connection: OwnerConnection,
    secret: SendSecret,
    receive_id: ReceiveId,
    send_id: SendId,
}

async fn one_mailbox() -> OneMailbox {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_loopback_relay(dir.path()).await;
    let url = ws_url(&relay);
    let secret = SendSecret::new([2; 32]);
    let owner_connection = bounded("connect", connector().connect_owner(&url))
        .await
        .unwrap();
    let (receive_id, send_id) = owner_connection
        .create(&key(1), &secret, None)
        .await
        .unwrap();
    OneMailbox {
        dir,
        relay,
        url,
        owner_connection,
        secret,
        receive_id,
        send_id,
    }
}

impl OneMailbox {
    /// Sends `envelope` to the mailbox, unsigned, through `sender`.
    async fn send(&self, sender: &Sender, envelope: &[u8]) {
        sender
            .send(&self.url, self.send_id, &self.secret, envelope, None)
            .await
            .unwrap();
    }

    /// A [`Subscriber`] of the relay with `config` that holds the mailbox under its owner's key.
    fn subscriber(
        &self,
        config: SubscriberConfig,
    ) -> (Subscriber, tokio::sync::mpsc::Receiver<Inbound>) {
        let (subscriber, inbound) = Subscriber::spawn(connector(), self.url.clone(), config);
        subscriber.add(self.receive_id, key(1)).unwrap();
        (subscriber, inbound)
    }
}

/// The configuration of a relay on 127.0.0.1:0 with its database in `dir`.
fn loopback_config(dir: &std::path::Path) -> sealpost_relay::RelayConfig {
    sealpost_relay::RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: dir.join("relay.db").into(),
        ..sealpost_relay::RelayConfig::default()
    }
}

/// The next MESSAGE pushed on `pushes`, as (message id, envelope).
async fn next_pushed_message(pushes: &mut sealpost_relay_client::Pushes) -> (MessageId, Vec<u8>) {
    match bounded("a push", pushes.next()).await.unwrap() {
        Pushed::Message {
            message_id,
            envelope,
            ..
        } => (message_id, envelope),
        other => panic!("expected a message, got {other:?}"),
    }
}

/// Protocol version 4: on the connection whose SUBSCRIBE the relay accepted, an ACK goes without
/// a signature (so not even a wrong key is used there); on a connection that does not subscribe
/// the mailbox, or after the relay ended its subscription (`End`), the ACK is signed.
#[tokio::test]
async fn acks_go_unsigned_only_on_the_connection_that_subscribes_the_mailbox() {
    let OneMailbox {
        dir: _dir,
        relay,
        url,
        owner_connection: _owner_connection,
        secret,
        receive_id,
        send_id,
    } = one_mailbox().await;
    let owner = key(1);
    let stranger = key(9);
    let sender = Sender::new(connector());
    for body in [&b"one"[..], b"two", b"three"] {
        sender
            .send(&url, send_id, &secret, body, None)
            .await
            .unwrap();
    }
    let (first, mut first_pushes) = bounded("connect", connector().connect_subscribe(&url))
        .await
        .unwrap();
    // Not subscribed (yet): the ACK is signed, and a stranger's signature is refused.
    assert_eq!(
        first.ack(receive_id, vec![MessageId(0)], &stranger).await,
        Err(ClientError::Unauthorized)
    );
    first.subscribe(receive_id, &owner).await.unwrap();
    let (one, envelope) = next_pushed_message(&mut first_pushes).await;
    assert_eq!(envelope, b"one");
    // Subscribed here: no signature goes out, so the key passed does not matter.
    first.ack(receive_id, vec![one], &stranger).await.unwrap();
    // Another connection takes the subscription over; this one gets `End`...
    let (second, mut second_pushes) = bounded("connect", connector().connect_subscribe(&url))
        .await
        .unwrap();
    second.subscribe(receive_id, &owner).await.unwrap();
    loop {
        match bounded("End", first_pushes.next()).await.unwrap() {
            Pushed::End { receive_id: ended } => {
                assert_eq!(ended, receive_id);
                break;
            }
            Pushed::Message { .. } => {}
        }
    }
    // ...and signs its ACKs again: a stranger's key is refused, the owner's accepted.
    assert_eq!(
        first.ack(receive_id, vec![MessageId(0)], &stranger).await,
        Err(ClientError::Unauthorized)
    );
    first
        .ack(receive_id, vec![MessageId(0)], &owner)
        .await
        .unwrap();
    // The unsigned ACK deleted "one"; the new subscriber gets the rest and ACKs unsigned too.
    let (two, envelope) = next_pushed_message(&mut second_pushes).await;
    assert_eq!(envelope, b"two");
    second.ack(receive_id, vec![two], &stranger).await.unwrap();
    let (_, envelope) = next_pushed_message(&mut second_pushes).await;
    assert_eq!(envelope, b"three");
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn create_subscribe_send_push_ack_round_trip() {
    let mailbox = one_mailbox().await;
    let (url, receive_id) = (&mailbox.url, mailbox.receive_id);
    let owner = key(1);
    let (connection, mut pushes) = bounded("connect", connector().connect_subscribe(url))
        .await
        .unwrap();
    assert_eq!(
        connection.hello().window,
        sealpost_relay::Limits::default().window
    );
    assert!(connection.hello().max_envelope > 1000);
    connection.subscribe(receive_id, &owner).await.unwrap();
    connection.ping().await.unwrap();

    // SEND goes over a separate, never-subscribing connection.
    let sender = Sender::new(connector());
    mailbox.send(&sender, b"first envelope").await;
    let Pushed::Message {
        receive_id: got,
        message_id,
        envelope,
        ..
    } = bounded("first push", pushes.next()).await.unwrap()
    else {
        panic!("expected a message");
    };
    assert_eq!(got, receive_id);
    assert_eq!(envelope, b"first envelope");
    connection
        .ack(receive_id, vec![message_id], &owner)
        .await
        .unwrap();
    // ACK is idempotent.
    connection
        .ack(receive_id, vec![message_id], &owner)
        .await
        .unwrap();

    // A new connection re-subscribes: the acknowledged envelope is gone, the next one arrives.
    connection.close();
    let (again, mut again_pushes) = bounded("reconnect", connector().connect_subscribe(url))
        .await
        .unwrap();
    again.subscribe(receive_id, &owner).await.unwrap();
    mailbox.send(&sender, b"second envelope").await;
    let Pushed::Message { envelope, .. } =
        bounded("second push", again_pushes.next()).await.unwrap()
    else {
        panic!("expected a message");
    };
    assert_eq!(envelope, b"second envelope");

    // DELETE: the mailbox is gone for owner and sender alike.
    mailbox
        .owner_connection
        .delete(receive_id, &owner)
        .await
        .unwrap();
    let refused = sender
        .send(url, mailbox.send_id, &mailbox.secret, b"x", None)
        .await
        .unwrap_err();
    assert_eq!(refused, ClientError::Unauthorized);
    mailbox.relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn secured_mailbox_refuses_unsigned_and_wrongly_signed_sends() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_loopback_relay(dir.path()).await;
    let url = ws_url(&relay);
    let owner = key(1);
    let sender_key = key(3);
    let secret = SendSecret::new([2; 32]);
    let connection = connector().connect_owner(&url).await.unwrap();
    let (receive_id, send_id) = connection.create(&owner, &secret, None).await.unwrap();
    connection
        .secure(receive_id, public_key(&sender_key), &owner)
        .await
        .unwrap();
    let again = connection
        .secure(receive_id, public_key(&key(4)), &owner)
        .await
        .unwrap_err();
    assert_eq!(again, ClientError::AlreadySecured);

    let sender = Sender::new(connector());
    let unsigned = sender
        .send(&url, send_id, &secret, b"env", None)
        .await
        .unwrap_err();
    assert_eq!(unsigned, ClientError::SenderUnauthorized);
    assert_eq!(unsigned.retry(), Retry::Never);
    let wrong = sender
        .send(&url, send_id, &secret, b"env", Some(&key(4)))
        .await
        .unwrap_err();
    assert_eq!(wrong, ClientError::SenderUnauthorized);
    sender
        .send(&url, send_id, &secret, b"env", Some(&sender_key))
        .await
        .unwrap();
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_pooled_send_connection_proves_each_sender_key_again_when_the_relay_replaced_its_session()
{
    let dir = tempfile::tempdir().unwrap();
    let mut config = loopback_config(dir.path());
    // One sender session per connection: every switch of mailbox replaces the other's.
    config.limits.max_sender_sessions_per_connection = 1;
    let relay = sealpost_relay::Relay::start(config).await.unwrap();
    let url = ws_url(&relay);
    let owner = key(1);
    let secret = SendSecret::new([2; 32]);
    let connection = connector().connect_owner(&url).await.unwrap();
    let mut mailboxes = Vec::new();
    for sender_key in [key(5), key(6)] {
        let (receive_id, send_id) = connection.create(&owner, &secret, None).await.unwrap();
        connection
            .secure(receive_id, public_key(&sender_key), &owner)
            .await
            .unwrap();
        mailboxes.push((receive_id, send_id, sender_key));
    }
    let sender = Sender::new(connector());
    let pooled = sender.connection(&url).await.unwrap();
    for round in 0..3u8 {
        for (_, send_id, sender_key) in &mailboxes {
            sender
                .send(&url, *send_id, &secret, &[round], Some(sender_key))
                .await
                .unwrap();
        }
    }
    // All six went over the one pooled connection.
    assert!(sender.connection(&url).await.unwrap().same_as(&pooled));
    let (subscription, mut pushes) = connector().connect_subscribe(&url).await.unwrap();
    for (receive_id, _, _) in &mailboxes {
        subscription.subscribe(*receive_id, &owner).await.unwrap();
        let mut received = Vec::new();
        for _ in 0..3 {
            match bounded("a push", pushes.next()).await.unwrap() {
                Pushed::Message { envelope, .. } => received.push(envelope),
                other => panic!("expected a message, got {other:?}"),
            }
        }
        assert_eq!(received, vec![vec![0u8], vec![1], vec![2]]);
    }
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn wrong_keys_and_secrets_are_refused_with_typed_errors() {
    let mailbox = one_mailbox().await;
    let (url, receive_id, send_id) = (&mailbox.url, mailbox.receive_id, mailbox.send_id);
    let owner = key(1);
    let (connection, _pushes) = connector().connect_subscribe(url).await.unwrap();

    let error = connection.subscribe(receive_id, &key(9)).await.unwrap_err();
    assert_eq!(error, ClientError::Unauthorized);
    assert_eq!(error.retry(), Retry::Never);
    let error = mailbox
        .owner_connection
        .delete(receive_id, &key(9))
        .await
        .unwrap_err();
    assert_eq!(error, ClientError::Unauthorized);
    // The connection survives refusals.
    connection.subscribe(receive_id, &owner).await.unwrap();

    let send_connection = connector().connect_send(url).await.unwrap();
    let wrong_secret = SendSecret::new([7; 32]);
    let error = send_connection
        .send(send_id, &wrong_secret, b"env", None)
        .await
        .unwrap_err();
    assert_eq!(error, ClientError::Unauthorized);
    let too_big = vec![0u8; send_connection.hello().max_envelope as usize + 1];
    let error = send_connection
        .send(send_id, &mailbox.secret, &too_big, None)
        .await
        .unwrap_err();
    assert_eq!(error, ClientError::TooLarge);
    assert_eq!(error.retry(), Retry::Never);
    mailbox.relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn relay_password_is_required_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let config = sealpost_relay::RelayConfig {
        password: Some("open sesame".into()),
        ..loopback_config(dir.path())
    };
    let relay = sealpost_relay::Relay::start(config).await.unwrap();
    let connection = connector().connect_owner(&ws_url(&relay)).await.unwrap();
    let secret = SendSecret::new([2; 32]);
    let error = connection.create(&key(1), &secret, None).await.unwrap_err();
    assert_eq!(error, ClientError::PasswordRequired);
    let error = connection
        .create(&key(1), &secret, Some("wrong"))
        .await
        .unwrap_err();
    assert_eq!(error, ClientError::PasswordRequired);
    connection
        .create(&key(1), &secret, Some("open sesame"))
        .await
        .unwrap();
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn plain_ws_to_a_remote_host_is_refused_by_policy() {
    for text in [
        "ws://192.0.2.1:9",
        "ws://relay.example",
        "ws://[2001:db8::1]:80",
    ] {
        let url = RelayUrl::parse(text).unwrap();
        let error = connector().connect_send(&url).await.err().expect("refused");
        assert!(
            matches!(error, ClientError::Url(UrlError::InsecureRemote { .. })),
            "{text}: {error:?}"
        );
        assert_eq!(error.retry(), Retry::Never);
    }
}

/// Waits for the next state event equal to `wanted` (skipping others).
async fn wait_for_state(
    events: &mut tokio::sync::broadcast::Receiver<ConnectionState>,
    wanted: fn(&ConnectionState) -> bool,
    what: &str,
) {
    bounded(what, async {
        loop {
            match events.recv().await {
                Ok(state) if wanted(&state) => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(error) => panic!("state events ended: {error}"),
            }
        }
    })
    .await;
}

async fn next_message(
    inbound: &mut tokio::sync::mpsc::Receiver<Inbound>,
) -> sealpost_relay_client::Delivery {
    match bounded("a delivery", inbound.recv())
        .await
        .expect("subscriber alive")
    {
        Inbound::Message(delivery) => delivery,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[tokio::test]
async fn subscriber_reconnects_after_relay_restart_and_receives_what_it_missed() {
    let mailbox = one_mailbox().await;
    let (url, receive_id) = (&mailbox.url, mailbox.receive_id);
    let address = mailbox.relay.addr();
    let owner = key(1);
    let sender = Sender::new(connector());

    let config = SubscriberConfig {
        backoff: BackoffConfig {
            base: Duration::from_millis(20),
            max: Duration::from_millis(200),
            stable_after: Duration::from_secs(5),
        },
        delivery_capacity: 8,
    };
    let (subscriber, mut inbound) = Subscriber::spawn(connector(), url.clone(), config);
    let mut events = subscriber.state_events();
    subscriber.add(receive_id, owner.clone()).unwrap();
    let acks = subscriber.ack_handle();

    mailbox.send(&sender, b"before").await;
    let first = next_message(&mut inbound).await;
    assert_eq!(first.envelope, b"before");
    assert_eq!(first.receive_id, receive_id);
    acks.ack(receive_id, first.message_id).unwrap();
    // Connected was seen on the way (events are a broadcast: none is skipped).
    wait_for_state(
        &mut events,
        |s| *s == ConnectionState::Connected,
        "Connected",
    )
    .await;

    // Delivered but not acknowledged: must come again after the restart.
    mailbox.send(&sender, b"unacked").await;
    let unacked = next_message(&mut inbound).await;
    assert_eq!(unacked.envelope, b"unacked");

    mailbox.relay.shutdown().await.unwrap();
    wait_for_state(
        &mut events,
        |s| matches!(s, ConnectionState::Offline { .. }),
        "Offline",
    )
    .await;

    // Same port, same database. The port may linger briefly; retry binding a bounded number of times.
    let relay = bounded("restart", async {
        loop {
            let config = sealpost_relay::RelayConfig {
                listen: address,
                ..loopback_config(mailbox.dir.path())
            };
            match sealpost_relay::Relay::start(config).await {
                Ok(relay) => return relay,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await;
    assert_eq!(relay.addr(), address);
    // Sent while the subscriber is (most likely) still offline. The pooled send connection died
    // with the old relay, so retry what says it may be retried, like the engine's outbox does.
    bounded("send after restart", async {
        loop {
            match sender
                .send(url, mailbox.send_id, &mailbox.secret, b"while down", None)
                .await
            {
                Ok(()) => return,
                Err(error) if error.retry() == Retry::Soon => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => panic!("send after restart: {error:?}"),
            }
        }
    })
    .await;
    wait_for_state(
        &mut events,
        |s| *s == ConnectionState::Connected,
        "Connected again",
    )
    .await;

    let mut got = Vec::new();
    while got.len() < 2 {
        let delivery = next_message(&mut inbound).await;
        acks.ack(receive_id, delivery.message_id).unwrap();
        if !got.contains(&delivery.envelope) {
            got.push(delivery.envelope);
        }
    }
    got.sort();
    assert_eq!(got, vec![b"unacked".to_vec(), b"while down".to_vec()]);

    subscriber.shutdown().await;
    sender.close_all();
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn removed_mailboxes_are_no_longer_delivered() {
    let mailbox = one_mailbox().await;
    let (url, secret) = (&mailbox.url, &mailbox.secret);
    let sender = Sender::new(connector());
    let (kept, kept_send) = (mailbox.receive_id, mailbox.send_id);
    let (removed, removed_send) = mailbox
        .owner_connection
        .create(&key(2), secret, None)
        .await
        .unwrap();

    let (subscriber, mut inbound) =
        Subscriber::spawn(connector(), url.clone(), SubscriberConfig::default());
    let mut state = subscriber.state();
    subscriber.add(kept, key(1)).unwrap();
    subscriber.add(removed, key(2)).unwrap();
    bounded(
        "connected",
        state.wait_for(|s| *s == ConnectionState::Connected),
    )
    .await
    .unwrap();
    let send = async |send_id: SendId, envelope: &[u8]| {
        sender
            .send(url, send_id, secret, envelope, None)
            .await
            .unwrap()
    };
    send(removed_send, b"to removed").await;
    let delivery = next_message(&mut inbound).await;
    assert_eq!(delivery.receive_id, removed);

    subscriber.remove(removed).unwrap();
    send(removed_send, b"after removal").await;
    send(kept_send, b"to kept").await;
    let delivery = next_message(&mut inbound).await;
    assert_eq!(delivery.receive_id, kept);
    assert_eq!(delivery.envelope, b"to kept");
    subscriber.shutdown().await;
    mailbox.relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn subscribe_refusal_is_reported_to_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_loopback_relay(dir.path()).await;
    let (subscriber, mut inbound) =
        Subscriber::spawn(connector(), ws_url(&relay), SubscriberConfig::default());
    let unknown = ReceiveId([5; 32]);
    subscriber.add(unknown, key(1)).unwrap();
    match bounded("refusal", inbound.recv()).await.unwrap() {
        Inbound::SubscribeFailed { receive_id, error } => {
            assert_eq!(receive_id, unknown);
            assert_eq!(error, ClientError::Unauthorized);
        }
        other => panic!("expected SubscribeFailed, got {other:?}"),
    }
    subscriber.shutdown().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_second_subscriber_ends_the_first() {
    let mailbox = one_mailbox().await;
    let (url, receive_id) = (&mailbox.url, mailbox.receive_id);
    let (connection, mut pushes) = connector().connect_subscribe(url).await.unwrap();
    connection.subscribe(receive_id, &key(1)).await.unwrap();
    let (other, _other_pushes) = connector().connect_subscribe(url).await.unwrap();
    other.subscribe(receive_id, &key(1)).await.unwrap();
    assert_eq!(
        bounded("END", pushes.next()).await.unwrap(),
        Pushed::End { receive_id }
    );
    mailbox.relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn subscriber_drains_more_than_the_window_through_a_one_slot_channel() {
    let mailbox = one_mailbox().await;
    let receive_id = mailbox.receive_id;
    let sender = Sender::new(connector());
    // Queued while nobody subscribes: three windows' worth (within the default mailbox quota of
    // 1,000 envelopes).
    let count = 3 * usize::from(mailbox.owner_connection.hello().window);
    for index in 0..count {
        let envelope = format!("envelope {index:03}");
        mailbox.send(&sender, envelope.as_bytes()).await;
    }
    let (subscriber, mut inbound) = mailbox.subscriber(SubscriberConfig {
        delivery_capacity: 1,
        ..SubscriberConfig::default()
    });
    let acks = subscriber.ack_handle();
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < count {
        let delivery = next_message(&mut inbound).await;
        // The engine commits, then ACKs; the relay then releases the next envelope.
        acks.ack(receive_id, delivery.message_id).unwrap();
        seen.insert(delivery.envelope);
    }
    let expected: std::collections::BTreeSet<Vec<u8>> = (0..count)
        .map(|index| format!("envelope {index:03}").into_bytes())
        .collect();
    assert_eq!(seen, expected);
    subscriber.shutdown().await;
    mailbox.relay.shutdown().await.unwrap();
}

/// A backlog drained faster than the relay's per-connection request rate: ACKs refused as
/// rate-limited are sent again, so every envelope is delivered and the mailbox never stalls on
/// a window of refused ACKs.
#[tokio::test]
async fn rate_limited_acks_are_retried_and_the_backlog_drains() {
    const BACKLOG: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let relay = sealpost_relay::Relay::start(sealpost_relay::RelayConfig {
        limits: sealpost_relay::Limits {
            rate_per_connection: sealpost_relay::Rate {
                per_second: 50,
                burst: 10,
            },
            ..sealpost_relay::Limits::default()
        },
        ..loopback_config(dir.path())
    })
    .await
    .unwrap();
    let url = ws_url(&relay);
    let owner = key(7);
    let secret = SendSecret::new([8; 32]);
    let connection = bounded("connect", connector().connect_owner(&url))
        .await
        .unwrap();
    let (receive_id, send_id) = connection.create(&owner, &secret, None).await.unwrap();
    connection.close();

    let sender = Sender::new(connector());
    for index in 0..BACKLOG {
        let envelope = format!("backlog {index}").into_bytes();
        loop {
            match sender.send(&url, send_id, &secret, &envelope, None).await {
                Ok(()) => break,
                Err(ClientError::RateLimited) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(other) => panic!("send failed: {other}"),
            }
        }
    }

    let (subscriber, mut inbound) =
        Subscriber::spawn(connector(), url.clone(), SubscriberConfig::default());
    subscriber.add(receive_id, owner.clone()).unwrap();
    let acks = subscriber.ack_handle();
    let mut received = Vec::new();
    while received.len() < BACKLOG {
        let delivery = next_message(&mut inbound).await;
        acks.ack(receive_id, delivery.message_id).unwrap();
        received.push(String::from_utf8(delivery.envelope).unwrap());
    }
    let expected: Vec<String> = (0..BACKLOG).map(|i| format!("backlog {i}")).collect();
    assert_eq!(received, expected, "each once, in order");
    subscriber.shutdown().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn ack_many_acknowledges_a_full_window_in_one_signed_ack() {
    let mailbox = one_mailbox().await;
    let receive_id = mailbox.receive_id;
    let sender = Sender::new(connector());
    // Fill the relay's window.
    let window_size = mailbox.owner_connection.hello().window;
    for index in 0..window_size {
        mailbox.send(&sender, &index.to_be_bytes()).await;
    }
    let (subscriber, mut inbound) = mailbox.subscriber(SubscriberConfig::default());
    let mut window = Vec::new();
    for index in 0..window_size {
        let delivery = next_message(&mut inbound).await;
        assert_eq!(delivery.envelope, index.to_be_bytes());
        window.push(delivery.message_id);
    }
    subscriber
        .ack_handle()
        .ack_many(receive_id, window)
        .unwrap();
    // The window is full, so this is pushed only once the relay took the ACK of all of them.
    mailbox.send(&sender, b"after").await;
    assert_eq!(next_message(&mut inbound).await.envelope, b"after");
    subscriber.shutdown().await;
    // The relay queued the window's deletes before it pushed "after"; its store commits in order,
    // so once this later SEND is answered (after its durable commit) they are committed too.
    mailbox.send(&sender, b"barrier").await;
    // A new subscription starts at "after": the whole window is gone.
    let (subscriber, mut inbound) = mailbox.subscriber(SubscriberConfig::default());
    assert_eq!(next_message(&mut inbound).await.envelope, b"after");
    subscriber.shutdown().await;
    sender.close_all();
    mailbox.relay.shutdown().await.unwrap();
}
