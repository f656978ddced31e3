//! Crash durability: the relay binary as a child process, 10k envelopes sent in a burst, the
//! relay killed with SIGKILL mid-burst and restarted on the same database. Every envelope that
//! got OK is delivered, each exactly once after ACKs, and nothing un-OK'd is half-stored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use futures_util::StreamExt;
use sealpost_wire::{MessageId, Response, decode_relay_frame};
use tokio_tungstenite::tungstenite::Message;

const TOTAL: u32 = 10_000;
const CONNECTIONS: u32 = 4;
const KILL_AFTER_OKS: usize = 3_000;

fn start_relay(dir: &std::path::Path) -> (Child, SocketAddr) {
    spawn_relay_process(dir, &dir.join("relay.db").display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_oked_envelope_survives_kill_9_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = start_relay(dir.path());
    let mut owner = Client::connect(addr).await;
    let mailbox = Arc::new(owner.create().await);
    drop(owner);

    let oked: Arc<Mutex<HashSet<u32>>> = Arc::default();
    let ok_count = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for connection in 0..CONNECTIONS {
        let mailbox = mailbox.clone();
        let oked = oked.clone();
        let ok_count = ok_count.clone();
        tasks.push(tokio::spawn(async move {
            let client = Client::connect(addr).await;
            let (sink, mut source) = client.ws.split();
            let writer = spawn_burst_writer(sink, mailbox, connection, CONNECTIONS, TOTAL);
            while let Some(Ok(message)) = source.next().await {
                let Message::Binary(bytes) = message else {
                    continue;
                };
                let frame = decode_relay_frame(&bytes).unwrap();
                record_burst_reply(&frame, &oked, &ok_count);
            }
            writer.abort();
        }));
    }
    // Kill mid-burst.
    while ok_count.load(Ordering::SeqCst) < KILL_AFTER_OKS {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    let oked = oked.lock().unwrap().clone();
    assert!(oked.len() >= KILL_AFTER_OKS);
    assert!(oked.len() < TOTAL as usize, "the kill must land mid-burst");

    // Restart on the same database and drain.
    let (mut child, addr) = start_relay(dir.path());
    let mut owner = Client::connect(addr).await;
    owner.subscribe(&mailbox).await;
    let mut delivered: HashMap<u32, MessageId> = HashMap::new();
    owner
        .drain(&mailbox, |message_id, envelope| {
            let index = u32::from_be_bytes(envelope[..4].try_into().unwrap());
            assert_eq!(envelope, payload(index), "envelope {index} is stored whole");
            assert!(
                delivered.insert(index, message_id).is_none(),
                "envelope {index} delivered twice"
            );
        })
        .await;
    assert_burst_kept(&oked, &delivered, TOTAL);

    // After the ACKs nothing comes back: a fresh subscriber's first push is a new envelope.
    drop(owner);
    let mut owner = Client::connect(addr).await;
    owner.subscribe(&mailbox).await;
    assert_eq!(owner.send(&mailbox, b"marker").await, Response::Ok {});
    let (_, _, envelope) = owner.next_message().await;
    assert_eq!(envelope, b"marker");
    child.kill().unwrap();
    child.wait().unwrap();
}
