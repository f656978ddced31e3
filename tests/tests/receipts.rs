//! Delivery receipts ride on the next message (`docs/engine.md` § Inside a ratchet message): a
//! pending delivery receipt travels inside the next text to that contact instead of going alone
//! after its delay. Run as `scripts/with-keyring.sh cargo test -p sealpost-tests --test receipts`.
//!
//! Every wait is bounded ([`sealpost_test_support::WAIT`]); nothing asserts on timing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sealpost_client::engine::MessageStateView;
use sealpost_client::{EngineConfig, EngineEvent};
use sealpost_test_support::{TestRelay, two_clients_with, wait_until};

/// Far longer than any wait of the tests ([`sealpost_test_support::WAIT`] is 60 s): a receipt that arrives
/// during the test cannot have gone alone after its delay.
fn long_receipt_delay(config: &mut EngineConfig) {
    config.delivery_receipt_delay = (Duration::from_secs(3600), Duration::from_secs(3600));
}

/// B receives A's message and replies before its receipt delay expires: A's message becomes
/// "delivered" in the same commit that stores B's reply (the state event comes before the
/// reply's MessageReceived event), long before the standalone receipt could have gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_receipt_rides_on_the_reply() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (mut alice, bob, alice_bob, bob_alice, _, _secrets) =
        two_clients_with(root.path(), &relay.url(), long_receipt_delay).await;

    let first = alice.send(&alice_bob, "are you there?").await;
    let second = alice.send(&alice_bob, "hello?").await;
    bob.wait_incoming_count(&bob_alice, 2).await;
    // Alice's messages reached the relay, but no receipt has come back (it waits for a reply).
    wait_until("Alice's messages are on the relay", || async {
        alice
            .messages(&alice_bob)
            .await
            .iter()
            .filter(|m| m.outgoing && m.state == MessageStateView::OnRelay)
            .count()
            == 2
    })
    .await;

    bob.send(&bob_alice, "yes, here").await;

    // The receipts' state changes arrive before (in the same commit as) the reply itself.
    let mut delivered = Vec::new();
    loop {
        match alice
            .wait_event(|event| {
                matches!(
                    event,
                    EngineEvent::MessageState { .. } | EngineEvent::MessageReceived { .. }
                )
            })
            .await
        {
            EngineEvent::MessageState {
                message_id,
                state: MessageStateView::Delivered,
                ..
            } => delivered.push(message_id),
            EngineEvent::MessageReceived { message, .. } => {
                assert_eq!(message.text, "yes, here");
                break;
            }
            _ => {}
        }
    }
    delivered.sort();
    let mut expected = vec![first.id.clone(), second.id.clone()];
    expected.sort();
    assert_eq!(delivered, expected, "both receipts rode on the reply");
    let states: Vec<_> = alice
        .messages(&alice_bob)
        .await
        .into_iter()
        .filter(|m| m.outgoing)
        .map(|m| m.state)
        .collect();
    assert_eq!(
        states,
        vec![MessageStateView::Delivered, MessageStateView::Delivered]
    );
    // Bob's reply is still waiting for its own receipt (Alice has not answered).
    assert!(
        bob.messages(&bob_alice)
            .await
            .iter()
            .filter(|m| m.outgoing)
            .all(|m| m.state != MessageStateView::Delivered)
    );
}
