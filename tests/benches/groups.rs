//! Group benchmarks (issue 12; not run in CI): run under a keychain, in the release profile, as
//! `scripts/with-keyring.sh cargo bench -p sealpost-tests --bench groups -- [MEMBERS] [SENDS]
//! [JOIN_MEMBERS]` (defaults 50, 41, 6; MEMBERS 0 or JOIN_MEMBERS < 2 skips that part). Figures and what they mean: `docs/benchmarks.md`
//! § Groups.
//!
//! * **fan-out**: Alice's engine sends a 100-byte text to a group of MEMBERS members, SENDS
//!   times. Each sample runs from the `send_group_message` call until it returns: by then the
//!   message, one copy per member (a ratchet step and an HPKE seal over that member's own
//!   session) and the copies' outbox rows are committed in ONE store transaction. The members'
//!   engines are shut down after first contact, so nothing else runs in the process (no
//!   receipts, no introductions); between samples the bench waits until Alice's outbox is empty,
//!   so her outbox task does not hold the store during a sample. The relay's CREATE and connect
//!   rates are raised so that making the 50 contacts is not throttled (not measured).
//! * **join**: an admin makes a group of JOIN_MEMBERS contacts who are not contacts of each
//!   other, on a relay with its **default limits**; the clock runs from `create_group` until
//!   every member has every other member as a contact (every pair introduced: one CREATE by
//!   each member of a pair). All clients share one IP here (loopback), so the relay's
//!   `create_rate_per_ip` (1/s, burst 20) applies to all of them together; the bench waits
//!   21 s after the contacts were made so the burst is full again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use sealpost_relay::Rate;
use sealpost_test_support::bench::{fdatasync_samples, machine, percentile};
use sealpost_test_support::{Client, KeychainCleanup, TestRelay, connect};

/// fdatasync latency of a 4 KiB write in `dir` right now (p50 of 100): the floor under the one
/// commit of a sample.
fn fdatasync_probe(dir: &std::path::Path) -> Duration {
    percentile(&fdatasync_samples(dir, 100), 0.5)
}

async fn wait_outbox_empty(client: &Client) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !client.engine.with_store(|s| s.outbox().unwrap().is_empty()) {
        assert!(Instant::now() < deadline, "the outbox did not drain");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Alice and `count` contacts (each made by invite and acceptance), the contacts' engines
/// stopped unless `keep_running`. Returns Alice, her contact ids, the running members.
async fn admin_with_contacts(
    root: &std::path::Path,
    url: &str,
    count: usize,
    keep_running: bool,
    secrets: &mut Vec<KeychainCleanup>,
) -> (Client, Vec<String>, Vec<Client>) {
    let (alice, secret) = Client::new("Alice", root, url).await;
    secrets.push(secret);
    let mut contacts = Vec::with_capacity(count);
    let mut members = Vec::new();
    for i in 0..count {
        let name = format!("Member{i:02}");
        let (member, secret) = Client::new(&name, root, url).await;
        secrets.push(secret);
        let (contact, _, _) = connect(&alice, &member, &name).await;
        contacts.push(contact);
        if keep_running {
            members.push(member);
        } else {
            member.stop().await;
        }
    }
    (alice, contacts, members)
}

async fn fan_out(members: usize, sends: usize) {
    let relay = TestRelay::start_with(|config| {
        let fast = Rate {
            per_second: 100_000,
            burst: 100_000,
        };
        config.limits.create_rate_per_ip = fast;
        config.limits.connect_rate_per_ip = fast;
    })
    .await;
    let root = tempfile::tempdir().unwrap();
    let mut secrets = Vec::new();
    let (alice, contacts, _) =
        admin_with_contacts(root.path(), &relay.url(), members, false, &mut secrets).await;
    let start = Instant::now();
    let group = alice
        .engine
        .create_group("Bench", "", &contacts)
        .await
        .unwrap();
    let created = start.elapsed();
    assert_eq!(group.members.len(), members + 1);
    wait_outbox_empty(&alice).await;
    let text = "x".repeat(100);
    let mut samples = Vec::with_capacity(sends);
    for _ in 0..sends {
        let start = Instant::now();
        let sent = alice
            .engine
            .send_group_message(&group.id, &text)
            .await
            .unwrap();
        samples.push(start.elapsed());
        assert_eq!(sent.recipients as usize, members, "one copy per member");
        wait_outbox_empty(&alice).await;
    }
    samples.sort();
    println!(
        "fan-out: {members} members, 100-byte text, {sends} sends: p50={:?} p90={:?} min={:?} max={:?} \
         (create_group with {members} roster copies: {created:?}); fdatasync p50 now {:?}; {}",
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        samples[0],
        samples[samples.len() - 1],
        fdatasync_probe(root.path()),
        machine()
    );
    alice.stop().await;
    drop(secrets);
}

async fn join(members: usize) {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let mut secrets = Vec::new();
    let (alice, contacts, clients) =
        admin_with_contacts(root.path(), &relay.url(), members, true, &mut secrets).await;
    // The contacts' 2 × MEMBERS CREATEs used the burst: let it fill again (1/s, 20).
    tokio::time::sleep(Duration::from_secs(21)).await;
    let start = Instant::now();
    alice
        .engine
        .create_group("Join", "", &contacts)
        .await
        .unwrap();
    let pairs = members * (members - 1) / 2;
    let deadline = start + Duration::from_secs(900);
    let mut introduced = 0;
    while Instant::now() < deadline {
        introduced = 0;
        for client in &clients {
            // Alice plus every other member.
            introduced += client.engine.list_chats().await.unwrap().len() - 1;
        }
        introduced /= 2;
        if introduced == pairs {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = start.elapsed();
    println!(
        "join: {members} members through introductions, default relay limits, one IP: \
         {introduced} of {pairs} pairs introduced after {elapsed:?} ({} CREATEs); {}",
        2 * introduced,
        machine()
    );
    for client in clients {
        client.stop().await;
    }
    alice.stop().await;
    drop(secrets);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let members = args.first().copied().unwrap_or(50);
    let sends = args.get(1).copied().unwrap_or(41);
    let join_members = args.get(2).copied().unwrap_or(6);
    println!("groups bench: {}", machine());
    if members > 0 {
        fan_out(members, sends).await;
    }
    if join_members >= 2 {
        join(join_members).await;
    }
}
