//! What a relay can link by connection (`docs/threat-model.md` § What a relay sees per
//! connection): real engines talk to a real relay through a recording proxy that logs, per TCP
//! connection, the commands it carried. Owner commands (CREATE, SECURE, DELETE) never share a
//! connection with SENDs or SUBSCRIBEs, and each owner operation has a connection of its own.
//! A SECURE the relay missed is retried until it lands, across restarts.
//!
//! Run under `scripts/with-keyring.sh` (the engines use the real OS keychain).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod recording_proxy;

use recording_proxy::RecordingProxy;
use sealpost_relay_client::ClientError;
use sealpost_test_support::hostile::send_raw;
use sealpost_test_support::{Client, TestRelay, two_clients, wait_until};

const OWNER: [&str; 3] = ["CREATE", "SECURE", "DELETE"];
const SUBSCRIBING: [&str; 2] = ["SUBSCRIBE", "ACK"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_commands_never_share_a_connection_with_sends_or_subscriptions() {
    let relay = TestRelay::start().await;
    let proxy = RecordingProxy::start(relay.addr).await;
    let root = tempfile::tempdir().unwrap();
    // CREATE (invite, reply mailboxes), SECURE (both sides), SEND, SUBSCRIBE/ACK.
    let (alice, bob, alice_bob, bob_alice, _, _secrets) =
        two_clients(root.path(), &proxy.url()).await;
    bob.send(&bob_alice, "hello").await;
    wait_until("Alice receives Bob's message", || async {
        !alice.incoming(&alice_bob).await.is_empty()
    })
    .await;
    alice.send(&alice_bob, "hi").await;
    wait_until("Bob receives Alice's message", || async {
        !bob.incoming(&bob_alice).await.is_empty()
    })
    .await;
    // Both SECUREs have reached the relay (Bob's runs after the Welcome he has now opened).
    wait_until("both SECUREs", || async {
        proxy
            .all_commands()
            .iter()
            .filter(|c| **c == "SECURE")
            .count()
            >= 2
    })
    .await;
    // DELETE: Alice deletes the contact; its mailboxes go from the relay.
    alice.engine.delete_contact(&alice_bob).await.unwrap();
    wait_until("the DELETE", || async {
        proxy.all_commands().contains(&"DELETE")
    })
    .await;

    let connections = proxy.connections();
    let all: Vec<&str> = connections.iter().flatten().copied().collect();
    for command in ["CREATE", "SECURE", "DELETE", "SEND", "SUBSCRIBE"] {
        assert!(all.contains(&command), "no {command} seen: {connections:?}");
    }
    for commands in &connections {
        let owner = commands.iter().filter(|c| OWNER.contains(c)).count();
        // A sender session belongs to the send role: it names only the mailbox written to.
        let sends = commands
            .iter()
            .filter(|c| **c == "SEND" || **c == "SENDER-SESSION")
            .count();
        let subscribing = commands.iter().filter(|c| SUBSCRIBING.contains(c)).count();
        let roles = [owner, sends, subscribing]
            .iter()
            .filter(|n| **n > 0)
            .count();
        assert!(roles <= 1, "a connection mixed roles: {commands:?}");
        // A fresh owner connection per owner operation: the relay cannot tie two mailboxes'
        // CREATE/SECURE/DELETE together by connection.
        assert!(
            owner <= 1,
            "owner commands shared a connection: {commands:?}"
        );
    }
    alice.stop().await;
    bob.stop().await;
}

/// Sends an unsigned envelope straight to the relay into the mailbox Bob writes to for Alice.
async fn unsigned_send(
    relay: &TestRelay,
    address: &sealpost_client::store::PeerAddress,
) -> Result<(), ClientError> {
    send_raw(
        &relay.url(),
        *address.send_id.as_bytes(),
        address.send_secret.expose_secret().try_into().unwrap(),
        None,
        b"not from Bob",
    )
    .await
}

/// SECURE is kept until the relay has it: a relay that cuts every SECURE at the first attempt
/// still gets it after the client restarts, and the mailbox then refuses unsigned SENDs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_the_relay_missed_is_sent_after_a_restart() {
    let relay = TestRelay::start().await;
    let proxy = RecordingProxy::start(relay.addr).await;
    proxy.refuse_secure(true);
    let root = tempfile::tempdir().unwrap();
    let (alice, bob, _, bob_alice, _, _secrets) = two_clients(root.path(), &proxy.url()).await;
    // Alice opened Bob's Hello and tried to bind her mailbox to Bob's sender key.
    wait_until("Alice's SECURE was cut", || async {
        proxy.refused_secures() >= 1
    })
    .await;
    let contact: sealpost_client::store::ContactId = bob_alice.parse().unwrap();
    let address = bob
        .engine
        .with_store(|store| store.peer_addresses(contact))
        .unwrap()
        .remove(0);
    // Not bound: anyone holding the send secret can still write into it.
    unsigned_send(&relay, &address).await.unwrap();

    let (alice_profile, _) = alice.stop().await;
    let (bob_profile, _) = bob.stop().await;
    proxy.refuse_secure(false);
    let alice = Client::reopen(&alice_profile, root.path()).await;
    let bob = Client::reopen(&bob_profile, root.path()).await;
    wait_until("Alice's mailbox refuses unsigned SENDs", || async {
        matches!(
            unsigned_send(&relay, &address).await,
            Err(ClientError::SenderUnauthorized)
        )
    })
    .await;
    // And Bob's signed SENDs still get through.
    bob.send(&bob_alice, "still here").await;
    let alice_bob = alice.engine.list_chats().await.unwrap()[0]
        .contact_id
        .clone();
    alice.wait_incoming_text(&alice_bob, "still here").await;
    alice.stop().await;
    bob.stop().await;
}
