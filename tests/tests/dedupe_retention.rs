//! Received envelopes' dedupe rows are kept for `SEEN_ENVELOPE_RETENTION` and deleted when the
//! engine opens after that (`docs/engine.md` § Inside a ratchet message): the table does not grow
//! for the life of a profile, and rows younger than the retention survive a restart. Run as
//! `scripts/with-keyring.sh cargo test -p sealpost-tests --test dedupe_retention`.
//!
//! Every wait is bounded ([`sealpost_test_support::WAIT`]); nothing asserts on timing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sealpost_client::engine::SEEN_ENVELOPE_RETENTION;
use sealpost_client::store::UnixMillis;
use sealpost_client::{Clock, EngineConfig};
use sealpost_test_support::{Client, TestRelay, two_clients_exchanged};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// The clock a day before the retention of today's rows ends.
fn a_day_before_the_retention_ends(config: &mut EngineConfig) {
    config.clock = Clock::ahead_by(SEEN_ENVELOPE_RETENTION - DAY);
}

/// The clock a day after the retention of today's rows ended.
fn a_day_after_the_retention_ended(config: &mut EngineConfig) {
    config.clock = Clock::ahead_by(SEEN_ENVELOPE_RETENTION + DAY);
}

/// Reopens `client` with its clock set by `clock` and returns how many dedupe rows the open left
/// (counted by deleting all of them afterwards).
async fn rows_left_after_reopen(client: Client, clock: fn(&mut EngineConfig)) -> usize {
    let (profile, root) = client.stop().await;
    let client = Client::reopen_with(&profile, &root, clock).await;
    let left = client
        .engine
        .with_store(|s| s.prune_seen_envelopes(UnixMillis(i64::MAX)))
        .unwrap();
    client.stop().await;
    left
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedupe_rows_older_than_the_retention_are_deleted_on_open_and_younger_ones_kept() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    // Each has received at least one envelope (the text and its receipts).
    let (alice, bob, _, _, _, _secrets) =
        two_clients_exchanged(root.path(), &relay.url(), "hi", "hello").await;
    let kept = rows_left_after_reopen(bob, a_day_before_the_retention_ends).await;
    assert!(
        kept >= 1,
        "a day before the retention ends the rows are kept"
    );
    let left = rows_left_after_reopen(alice, a_day_after_the_retention_ended).await;
    assert_eq!(left, 0, "a day after it, the open deleted every row");
}
