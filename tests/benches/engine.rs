//! Client engine benchmarks (not run in CI): run under a keychain as
//! `scripts/with-keyring.sh cargo bench -p sealpost-tests --bench engine -- [DRAIN_COUNT] [LATENCY_COUNT]`.
//!
//! * **drain**: Alice sends DRAIN_COUNT (default 10,000) messages while Bob's engine is stopped;
//!   the clock starts when Bob's `Engine::open` is called and stops when his store holds all of
//!   them (polled every 5 ms, so the figure is at most 5 ms late).
//! * **latency**: one message at a time, Alice → Bob on loopback; each sample starts just before
//!   Alice's `send_message` call and stops when Bob's engine emits `message-received` for it
//!   (after open, ratchet and the SQLCipher commit).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Client, TestRelay, connect, wait_until};
use sealpost_client::EngineEvent;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let drain_count = args.first().copied().unwrap_or(10_000);
    let latency_count = args.get(1).copied().unwrap_or(500);

    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, _a) = Client::new("Alice", root.path(), &relay.url()).await;
    let (mut bob, _b) = Client::new("Bob", root.path(), &relay.url()).await;
    let (alice_bob, bob_alice, _) = connect(&alice, &bob, "Bob").await;
    alice
        .engine
        .send_message(&alice_bob, "warm-up")
        .await
        .unwrap();
    wait_until("warm-up arrives", || async {
        bob.incoming(&bob_alice).await.len() == 1
    })
    .await;

    // Latency.
    while bob.events.try_recv().is_ok() {}
    let mut samples = Vec::with_capacity(latency_count);
    for index in 0..latency_count {
        let text = format!("latency {index}");
        let start = Instant::now();
        alice.engine.send_message(&alice_bob, &text).await.unwrap();
        bob.wait_event(
            |e| matches!(e, EngineEvent::MessageReceived { message, .. } if message.text == text),
        )
        .await;
        samples.push(start.elapsed());
    }
    samples.sort();
    println!(
        "latency: n={latency_count} p50={:?} p99={:?} max={:?}",
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples.last().unwrap()
    );

    // Drain.
    let already = bob.incoming(&bob_alice).await.len();
    let (bob_profile, bob_root) = bob.stop().await;
    let queued = Instant::now();
    for index in 0..drain_count {
        alice
            .engine
            .send_message(&alice_bob, &format!("drain {index}"))
            .await
            .unwrap();
    }
    // Setup, not timed: no bound here, the queueing itself takes minutes at 10k.
    while !alice.engine.with_store(|s| s.outbox().unwrap().is_empty()) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "queued {drain_count} on the relay in {:?} (setup, not the figure)",
        queued.elapsed()
    );
    let start = Instant::now();
    let bob = Client::reopen(&bob_profile, &bob_root).await;
    let contact = bob_alice.parse().unwrap();
    loop {
        let count = bob.engine.with_store(|s| {
            s.chat_list()
                .unwrap()
                .into_iter()
                .find(|c| c.contact.id == contact)
                .map(|c| c.unread_count as usize)
                .unwrap_or(0)
        });
        if count >= drain_count + already {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drained = start.elapsed();
    println!(
        "drain: {drain_count} messages stored in {drained:?} ({:.0} msg/s)",
        drain_count as f64 / drained.as_secs_f64()
    );
}
