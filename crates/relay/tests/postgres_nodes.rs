//! Several relay nodes on one PostgreSQL database (the server `scripts/with-postgres.sh`
//! starts; without it these tests fail): an envelope sent to one node reaches its subscriber
//! on another, a SUBSCRIBE on a second node ends the first node's subscription, NOTIFY
//! payloads name no mailbox and come at most once per commit, and `kill -9` of a node in the
//! middle of a 10k burst loses nothing and delivers nothing twice once the client moved to the
//! other node.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use futures_util::{SinkExt, StreamExt};
use sealpost_relay::{Database, Relay, RelayConfig};
use sealpost_wire::{
    ClientFrame, ErrorCode, MessageId, PROTOCOL_VERSION, Response, decode_relay_frame,
    encode_client_frame,
};
use tokio_tungstenite::tungstenite::Message;

/// Kills the child relay when the test ends, however it ends.
struct Node(std::process::Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_node(dir: &std::path::Path, url: &str) -> (Node, SocketAddr) {
    let (child, addr) = spawn_relay_process(dir, url);
    (Node(child), addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_envelope_sent_to_node_b_reaches_its_subscriber_on_node_a() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_postgres_database().await;
    let (_a, addr_a) = start_node(dir.path(), &url);
    let (_b, addr_b) = start_node(dir.path(), &url);

    let mut owner = Client::connect(addr_a).await;
    let mailbox = owner.create().await;
    owner.subscribe(&mailbox).await;
    let mut sender = Client::connect(addr_b).await;
    for i in 0..20u32 {
        assert_eq!(
            sender.send(&mailbox, &i.to_be_bytes()).await,
            Response::Ok {}
        );
    }
    // Live pushes on node A, in order, within the window; ACKs (on A) release the rest.
    let mut previous = MessageId(0);
    for i in 0..20u32 {
        let (receive_id, message_id, envelope) = owner.next_message().await;
        assert_eq!(receive_id, mailbox.receive_id);
        assert_eq!(envelope, i.to_be_bytes(), "in order");
        assert!(message_id.0 > previous.0);
        previous = message_id;
        owner.ack(&mailbox, message_id).await;
    }
    // And the other way round: a mailbox created and subscribed on B, sent to on A.
    let mut owner_b = Client::connect(addr_b).await;
    let mailbox_b = owner_b.create().await;
    owner_b.subscribe(&mailbox_b).await;
    let mut sender_a = Client::connect(addr_a).await;
    assert_eq!(sender_a.send(&mailbox_b, b"to b").await, Response::Ok {});
    let (_, _, envelope) = owner_b.next_message().await;
    assert_eq!(envelope, b"to b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_subscribing_on_a_second_node_ends_the_first_nodes_subscription() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_postgres_database().await;
    let (_a, addr_a) = start_node(dir.path(), &url);
    let (_b, addr_b) = start_node(dir.path(), &url);

    let mut first = Client::connect(addr_a).await;
    let mailbox = first.create().await;
    first.subscribe(&mailbox).await;
    let mut second = Client::connect(addr_b).await;
    second.subscribe(&mailbox).await;
    assert_eq!(
        first.next_push().await,
        Response::End {
            receive_id: mailbox.receive_id
        },
        "node A ends its subscription when node B takes the mailbox"
    );
    // From now on node B's subscriber gets what is sent, on either node, and A's does not.
    let mut sender = Client::connect(addr_a).await;
    assert_eq!(
        sender.send(&mailbox, b"after the move").await,
        Response::Ok {}
    );
    let (_, message_id, envelope) = second.next_message().await;
    assert_eq!(envelope, b"after the move");
    // Ended on node A: an unsigned ACK there is refused (protocol version 4).
    let unsigned = Client::unsigned_ack_request(&mailbox, vec![message_id]);
    assert_eq!(first.request(unsigned).await, err(ErrorCode::Auth));
    second.ack(&mailbox, message_id).await;
    // A round trip on A's connection: no push arrived there meanwhile.
    let other = first.create().await;
    let _ = other;
    assert!(first.take_pushes().is_empty(), "node A still pushes");

    // And back: subscribing on A again ends B's.
    first.subscribe(&mailbox).await;
    assert_eq!(
        second.next_push().await,
        Response::End {
            receive_id: mailbox.receive_id
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_notify_names_no_mailbox_and_comes_at_most_once_per_commit() {
    let url = fresh_postgres_database().await;
    let start = |metrics: bool| {
        let url = url.clone();
        async move {
            Relay::start(RelayConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                database: Database::parse(&url).unwrap(),
                metrics_listen: metrics.then(|| "127.0.0.1:0".parse().unwrap()),
                limits: test_limits(),
                ..RelayConfig::default()
            })
            .await
            .unwrap()
        }
    };
    let node_a = start(false).await;
    let node_b = start(true).await;
    // The test listens on the channel like a third node.
    let (listener, mut connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let payloads: Arc<Mutex<Vec<String>>> = Arc::default();
    let heard = payloads.clone();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = message {
                heard.lock().unwrap().push(n.payload().to_owned());
            }
        }
    });
    listener
        .batch_execute("LISTEN sealpost_relay")
        .await
        .unwrap();

    let mut owner = Client::connect(node_a.addr()).await;
    let mailbox = owner.create().await;
    owner.subscribe(&mailbox).await;
    let before = sample(
        &scrape(node_b.metrics_addr().unwrap(), "/metrics").await,
        "sealpost_relay_commit_operations_count",
    );
    let heard_before = payloads.lock().unwrap().len();
    // 300 SENDs pipelined on one connection to node B.
    let mut sender = Client::connect(node_b.addr()).await;
    let total = 300u32;
    for i in 0..total {
        let id = sender.fresh_id();
        sender
            .send_frame(id, Client::send_request(&mailbox, &i.to_be_bytes()))
            .await;
    }
    let mut oks = 0;
    while oks < total {
        let frame = sender.recv_frame().await.unwrap();
        assert_eq!(frame.body, Response::Ok {});
        oks += 1;
    }
    let after = sample(
        &scrape(node_b.metrics_addr().unwrap(), "/metrics").await,
        "sealpost_relay_commit_operations_count",
    );
    // Everything arrives on node A.
    let mut received = 0;
    while received < total {
        let (_, message_id, _) = owner.next_message().await;
        owner.ack(&mailbox, message_id).await;
        received += 1;
    }
    let payloads = payloads.lock().unwrap()[heard_before..].to_vec();
    let storing: Vec<&String> = payloads
        .iter()
        .filter(|p| p.split(' ').nth(2) == Some("a"))
        .collect();
    let commits = after - before;
    eprintln!(
        "{} NOTIFYs announcing stored envelopes for {commits} commits of {total} SENDs",
        storing.len()
    );
    assert!(!storing.is_empty(), "node B announced its commits");
    assert!(
        storing.len() as f64 <= commits,
        "{} NOTIFYs for {commits} commits",
        storing.len()
    );
    for payload in &payloads {
        for id in [
            mailbox.receive_id.as_bytes().as_slice(),
            mailbox.send_id.as_bytes().as_slice(),
        ] {
            assert!(
                !payload.contains(&hex::encode(id)),
                "a NOTIFY names the mailbox: {payload}"
            );
        }
        assert!(payload.len() < 8000);
    }
    node_a.shutdown().await.unwrap();
    node_b.shutdown().await.unwrap();
}

const TOTAL: u32 = 10_000;
const CONNECTIONS: u32 = 4;
const KILL_AFTER_OKS: usize = 3_000;

/// Records one delivery: the envelope is whole, was not delivered after its ACK got OK, and
/// has the same message id every time it comes (stored once). Returns its index.
fn check(
    delivered: &mut HashMap<u32, MessageId>,
    acked: &HashSet<u32>,
    message_id: MessageId,
    envelope: &[u8],
) -> u32 {
    let index = u32::from_be_bytes(envelope[..4].try_into().unwrap());
    assert_eq!(envelope, payload(index), "envelope {index} is stored whole");
    assert!(
        !acked.contains(&index),
        "envelope {index} delivered again after its ACK got OK"
    );
    let first = *delivered.entry(index).or_insert(message_id);
    assert_eq!(first, message_id, "envelope {index} stored twice");
    index
}

/// Senders burst 10k envelopes, half through node A and half through node B; the mailbox's
/// subscriber is on node A and ACKs as it goes. Node A is killed with SIGKILL mid-burst; the
/// subscriber reconnects to node B and drains. Every SEND that got OK is delivered; no envelope
/// is stored twice (one message id per envelope) and none comes back after its ACK got OK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kill_9_of_a_node_mid_burst_loses_nothing_and_delivers_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_postgres_database().await;
    let (mut node_a, addr_a) = start_node(dir.path(), &url);
    let (_node_b, addr_b) = start_node(dir.path(), &url);
    let mut owner = Client::connect(addr_a).await;
    let mailbox = Arc::new(owner.create().await);
    owner.subscribe(&mailbox).await;
    let mailbox_for_acks = mailbox.clone();
    let oked: Arc<Mutex<HashSet<u32>>> = Arc::default();
    let ok_count = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for connection in 0..CONNECTIONS {
        let mailbox = mailbox.clone();
        let oked = oked.clone();
        let ok_count = ok_count.clone();
        let addr = if connection % 2 == 0 { addr_a } else { addr_b };
        senders.push(tokio::spawn(async move {
            let client = Client::connect(addr).await;
            let (sink, mut source) = client.ws.split();
            let writer = spawn_burst_writer(sink, mailbox, connection, CONNECTIONS, TOTAL);
            // Until every SEND is answered (node B) or the connection dies (node A).
            let mut answered = 0;
            let sent = (connection..TOTAL).step_by(CONNECTIONS as usize).count();
            while answered < sent {
                let Some(Ok(message)) = source.next().await else {
                    break;
                };
                let Message::Binary(bytes) = message else {
                    continue;
                };
                let frame = decode_relay_frame(&bytes).unwrap();
                if frame.id != 0 {
                    answered += 1;
                }
                record_burst_reply(&frame, &oked, &ok_count);
            }
            writer.abort();
        }));
    }

    // Phase 1: the subscriber receives and ACKs (pipelined) on node A until A dies.
    let receiver = tokio::spawn(async move {
        let nonce = owner.nonce;
        let (mut sink, mut source) = owner.ws.split();
        let mut delivered: HashMap<u32, MessageId> = HashMap::new();
        let mut acked: HashSet<u32> = HashSet::new();
        let mut pending_acks: HashMap<u64, u32> = HashMap::new();
        let mut next_id = 1_000_000u64;
        while let Some(Ok(message)) = source.next().await {
            let Message::Binary(bytes) = message else {
                continue;
            };
            let frame = decode_relay_frame(&bytes).unwrap();
            match frame.body {
                Response::Message {
                    message_id,
                    envelope,
                    ..
                } => {
                    let index = check(&mut delivered, &acked, message_id, &envelope);
                    next_id += 1;
                    let ack = owner_ack_frame(&nonce, &mailbox_for_acks, message_id, next_id);
                    pending_acks.insert(next_id, index);
                    // The socket may already be gone (node A killed): phase 2 redelivers.
                    let _ = sink.send(Message::Binary(ack.into())).await;
                }
                Response::Ok {} => {
                    if let Some(index) = pending_acks.remove(&frame.id) {
                        acked.insert(index);
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        (delivered, acked)
    });
    while ok_count.load(Ordering::SeqCst) < KILL_AFTER_OKS {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    node_a.0.kill().unwrap();
    node_a.0.wait().unwrap();
    let (mut delivered, mut acked) = receiver.await.unwrap();
    assert!(
        !delivered.is_empty(),
        "node A delivered live before the kill"
    );
    for sender in senders {
        sender.await.unwrap();
    }
    let oked = oked.lock().unwrap().clone();
    assert!(
        oked.len() < TOTAL as usize,
        "the kill must land mid-burst (node A's senders lose their connection)"
    );

    // Phase 2: the subscriber moves to node B and drains.
    let mut owner = Client::connect(addr_b).await;
    owner.subscribe(&mailbox).await;
    owner
        .drain(&mailbox, |message_id, envelope| {
            let index = check(&mut delivered, &acked, message_id, envelope);
            acked.insert(index);
        })
        .await;
    assert_burst_kept(&oked, &delivered, TOTAL);
    // Node B's senders were never cut off: all their envelopes arrived.
    let from_b = (0..TOTAL).filter(|i| i % CONNECTIONS % 2 == 1).count();
    assert!(
        delivered
            .keys()
            .filter(|i| *i % CONNECTIONS % 2 == 1)
            .count()
            == from_b
    );
}

/// An ACK frame signed over the connection's nonce, with correlation id `id`.
fn owner_ack_frame(
    nonce: &sealpost_wire::Nonce,
    mailbox: &Mailbox,
    message_id: MessageId,
    id: u64,
) -> Vec<u8> {
    let input = sealpost_wire::owner_signature_input(
        nonce,
        sealpost_wire::OwnerCommand::Ack(&[message_id]),
        &mailbox.receive_id,
    );
    let body = sealpost_wire::Request::Ack {
        receive_id: mailbox.receive_id,
        message_ids: vec![message_id],
        signature: Some(sealpost_wire::sign(&mailbox.auth, &input)),
    };
    encode_client_frame(&ClientFrame {
        v: PROTOCOL_VERSION,
        id,
        body,
    })
    .unwrap()
}

/// Two nodes sweep one database every 20 ms while envelopes age out as they arrive: every
/// envelope goes, and each is subtracted from its mailbox's quota usage exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sweepers_on_two_nodes_remove_each_envelope_once() {
    let url = fresh_postgres_database().await;
    let mut limits = test_limits();
    // Stored times are whole hours, so a one-second TTL expires every envelope at the next sweep.
    limits.envelope_ttl_secs = 1;
    limits.sweep_interval_ms = 20;
    let start = || {
        let url = url.clone();
        let limits = limits.clone();
        async move {
            Relay::start(RelayConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                database: Database::parse(&url).unwrap(),
                limits,
                ..RelayConfig::default()
            })
            .await
            .unwrap()
        }
    };
    let node_a = start().await;
    let node_b = start().await;
    let mut owner = Client::connect(node_a.addr()).await;
    let mut mailboxes = Vec::new();
    for _ in 0..10 {
        mailboxes.push(owner.create().await);
    }
    let mut to_a = Client::connect(node_a.addr()).await;
    let mut to_b = Client::connect(node_b.addr()).await;
    for round in 0..20u32 {
        for mailbox in &mailboxes {
            let body = round.to_be_bytes().repeat(16);
            assert_eq!(to_a.send(mailbox, &body).await, Response::Ok {});
            assert_eq!(to_b.send(mailbox, &body).await, Response::Ok {});
        }
    }
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left: i64 = db
            .query_one("SELECT count(*) FROM envelope", &[])
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{left} envelopes never expired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let usage: Vec<(i64, i64)> = db
        .query("SELECT envelope_count, envelope_bytes FROM mailbox", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(usage.len(), mailboxes.len());
    assert!(
        usage.iter().all(|&(count, bytes)| count == 0 && bytes == 0),
        "quota usage after every envelope expired: {usage:?}"
    );
    node_a.shutdown().await.unwrap();
    node_b.shutdown().await.unwrap();
}
