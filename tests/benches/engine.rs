//! Client engine benchmarks (not run in CI): run under a keychain as
//! `scripts/with-keyring.sh cargo bench -p sealpost-tests --bench engine -- [DRAIN_COUNT]
//! [LATENCY_COUNT] [--memory-security=on|off] [--window=N]`.
//!
//! Two engines (two profiles on the real keychain, SQLCipher stores) and one in-process relay
//! on 127.0.0.1, all in this process. Delivery receipts use the production delay (5–60 s, so
//! they do not land inside the measured path, as in real use).
//!
//! * **latency**: one message at a time, Alice → Bob. Each sample starts just before Alice's
//!   `send_message` call and stops when Bob's engine emits `message-received` for it (after the
//!   HPKE open, the ratchet and the SQLCipher commit). Also reported, per sample: until
//!   `send_message` returned (Alice's one store transaction: store + seal once), and until
//!   Alice's engine emitted `on-relay` (the relay's durable OK and Alice's outbox commit).
//! * **drain**: Alice sends DRAIN_COUNT (default 10,000) messages while Bob's engine is stopped;
//!   the clock starts when Bob's `Engine::open` is called and stops when his engine emits
//!   `message-received` for the last of them (each event follows its commit).
//!
//! `--memory-security` sets `StoreConfig::memory_security` for both engines (SQLCipher's
//! setting is process-wide and cannot be turned off again once on, so one value per run);
//! `--window` sets the relay's push window per mailbox (the relay's default is 64). The relay's
//! mailbox quota is raised to hold the backlog (its default is 1,000 envelopes), and its request
//! rates to 100,000/s per connection and per IP unless `--default-rates` (500/s per connection
//! would bound the drain by its ACKs alone).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use sealpost_client::engine::MessageStateView;
use sealpost_client::{EngineConfig, EngineEvent};
use sealpost_test_support::bench::{fdatasync_samples, machine, percentile};
use sealpost_test_support::{Client, TestRelay, connect};

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "  {name}: p50={:?} p99={:?} max={:?}",
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples.last().unwrap()
    );
}

/// fdatasync latency of a 4 KiB write in `dir` right now (p50, p99 of 200): the floor under
/// every durable commit on the measured paths, which other load on the disk moves a lot.
fn fdatasync_probe(dir: &std::path::Path) -> String {
    let samples = fdatasync_samples(dir, 200);
    format!(
        "fdatasync(4 KiB) p50={:?} p99={:?}",
        percentile(&samples, 0.50),
        percentile(&samples, 0.99)
    )
}

static MEMORY_SECURITY: std::sync::OnceLock<Option<bool>> = std::sync::OnceLock::new();

fn production_receipts(config: &mut EngineConfig) {
    config.delivery_receipt_delay = (Duration::from_secs(5), Duration::from_secs(60));
    if let Some(Some(on)) = MEMORY_SECURITY.get() {
        config.store.memory_security = *on;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<usize> = all.iter().filter_map(|a| a.parse().ok()).collect();
    let flag = |name: &str| {
        all.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")).map(str::to_owned))
    };
    let drain_count = args.first().copied().unwrap_or(10_000);
    let latency_count = args.get(1).copied().unwrap_or(500);
    let memory_security = flag("memory-security").map(|v| v == "on");
    MEMORY_SECURITY.set(memory_security).unwrap();
    let window: Option<u16> = flag("window").map(|v| v.parse().unwrap());
    println!(
        "engine bench: drain={drain_count} latency={latency_count} memory_security={} window={} relay_rates={} {}",
        memory_security.map_or("default".to_owned(), |on| on.to_string()),
        window.map_or("default".to_owned(), |w| w.to_string()),
        if all.iter().any(|a| a == "--default-rates") {
            "default"
        } else {
            "raised"
        },
        machine()
    );

    let default_rates = all.iter().any(|a| a == "--default-rates");
    let relay = TestRelay::start_with(|config| {
        if let Some(window) = window {
            config.limits.window = window;
        }
        // A default relay keeps at most 1,000 envelopes per mailbox: the backlog must fit.
        config.limits.mailbox_max_envelopes = config
            .limits
            .mailbox_max_envelopes
            .max(drain_count as u64 + 1000);
        if !default_rates {
            // 500 requests/s per connection would bound the drain by its ACKs alone.
            let rate = sealpost_relay::Rate {
                per_second: 100_000,
                burst: 100_000,
            };
            config.limits.rate_per_connection = rate;
            config.limits.rate_per_ip = rate;
        }
    })
    .await;
    let root = tempfile::tempdir().unwrap();
    let (mut alice, _a) =
        Client::new_with("Alice", root.path(), &relay.url(), production_receipts).await;
    let (mut bob, _b) =
        Client::new_with("Bob", root.path(), &relay.url(), production_receipts).await;
    let (alice_bob, bob_alice, _) = connect(&alice, &bob, "Bob").await;
    alice.send(&alice_bob, "warm-up").await;
    bob.wait_incoming_count(&bob_alice, 1).await;

    // Latency.
    while bob.events.try_recv().is_ok() {}
    while alice.events.try_recv().is_ok() {}
    let mut total = Vec::with_capacity(latency_count);
    let mut stored = Vec::with_capacity(latency_count);
    let mut on_relay = Vec::with_capacity(latency_count);
    for index in 0..latency_count {
        let text = format!("latency {index}");
        let start = Instant::now();
        let sent = alice.send(&alice_bob, &text).await;
        stored.push(start.elapsed());
        let message_id = sent.id.clone();
        let (relay_ok, received) = tokio::join!(
            async {
                alice
                    .wait_event(|e| {
                        matches!(e, EngineEvent::MessageState { message_id: id, state, .. }
                            if *id == message_id && *state == MessageStateView::OnRelay)
                    })
                    .await;
                start.elapsed()
            },
            async {
                bob.wait_event(|e| {
                    matches!(e, EngineEvent::MessageReceived { message, .. } if message.text == text)
                })
                .await;
                start.elapsed()
            }
        );
        on_relay.push(relay_ok);
        total.push(received);
    }
    println!(
        "latency: n={latency_count}, {}, {}",
        machine(),
        fdatasync_probe(root.path())
    );
    summary("send_message returned (stored + sealed)", stored);
    summary("Alice saw on-relay", on_relay);
    summary("Bob emitted message-received (the figure)", total);

    // Drain.
    let (bob_profile, bob_root) = bob.stop().await;
    let queued = Instant::now();
    for index in 0..drain_count {
        alice.send(&alice_bob, &format!("drain {index}")).await;
    }
    // Setup, not timed.
    while !alice.engine.with_store(|s| s.outbox().unwrap().is_empty()) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "queued {drain_count} on the relay in {:?} (setup, not the figure)",
        queued.elapsed()
    );
    let start = Instant::now();
    let mut bob = Client::reopen_with(&bob_profile, &bob_root, production_receipts).await;
    // The clock stops when every message has arrived. Not "when the last one sent arrives": the
    // outbox keeps up to 32 SENDs in flight, so the relay may store a few of them out of order
    // (the ratchet and the conversation's sequence numbers put them back in order).
    let mut arrived = std::collections::HashSet::new();
    let mut events = 0usize;
    bob.wait_event(|e| match e {
        EngineEvent::MessageReceived { message, .. } => {
            events += 1;
            arrived.insert(message.text.clone());
            arrived.len() == drain_count
        }
        _ => false,
    })
    .await;
    let drained = start.elapsed();
    assert_eq!(events, drain_count, "each message once");
    println!(
        "drain: {drain_count} messages stored in {drained:?} ({:.0} msg/s), {}, {}",
        drain_count as f64 / drained.as_secs_f64(),
        machine(),
        fdatasync_probe(root.path())
    );
}
