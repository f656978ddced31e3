//! T10: a dump of the relay's data holds no name, no phone, no email, no plaintext, no identity
//! key and no contact graph beyond random mailbox ids.
//!
//! The relay must not depend on sealpost-crypto, so the "sealed" envelopes here are made with a
//! stand-in (SHA-256 in counter mode under a key the relay never sees); what matters is that
//! the relay stores what it was given and nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use ed25519_dalek::SigningKey;
use sealpost_wire::{OwnerCommand, Request, Response, public_key};
use sha2::{Digest, Sha256};

fn stand_in_seal(key: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(plaintext.len());
    for (block, chunk) in plaintext.chunks(32).enumerate() {
        let mut hasher = Sha256::new();
        hasher.update(key);
        hasher.update((block as u64).to_be_bytes());
        let pad = hasher.finalize();
        out.extend(chunk.iter().zip(pad.iter()).map(|(a, b)| a ^ b));
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file of the data directory (database, WAL, shared memory), concatenated.
fn dump_dir(dir: &std::path::Path) -> Vec<u8> {
    let mut dump = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        // A file may vanish between listing and reading (the WAL at checkpoint time).
        if let Ok(bytes) = std::fs::read(entry.unwrap().path()) {
            dump.extend(bytes);
        }
    }
    dump
}

#[tokio::test]
async fn relay_dump_holds_no_plaintext_identity_or_personal_data() {
    let mut relay = TestRelay::start(test_limits(), None).await;
    let addr = relay.addr();
    let identity_alice = random32();
    let identity_bob = random32();
    let session_key = random32();
    let personal: Vec<&[u8]> = vec![
        b"Alice Example",
        b"+81-90-1234-5678",
        b"alice@example.com",
        b"Bob Builder",
        b"bob@example.org",
    ];
    let plaintexts: Vec<Vec<u8>> = (0..40)
        .map(|i| format!("message {i} from Alice Example (alice@example.com, +81-90-1234-5678) to Bob Builder").into_bytes())
        .collect();

    let mut bob = Client::connect(addr).await;
    let bob_mailbox = bob.create().await;
    let mut alice = Client::connect(addr).await;
    let alice_mailbox = alice.create().await;
    // Bob secures his mailbox to Alice's per-mailbox sender key (not her identity key).
    let sender = SigningKey::from_bytes(&random32());
    let sender_key = public_key(&sender);
    let secure = Request::Secure {
        receive_id: bob_mailbox.receive_id,
        sender_key,
        signature: bob.owner_signature(&bob_mailbox, OwnerCommand::Secure(sender_key)),
    };
    assert_eq!(bob.request(secure).await, Response::Ok {});
    let mut sender_connection = Client::connect(addr).await;
    for plaintext in &plaintexts {
        // Inside the seal: the sender's identity key and the text.
        let mut inner = identity_alice.to_vec();
        inner.extend_from_slice(plaintext);
        let sealed = stand_in_seal(&session_key, &inner);
        let request = Client::signed_send_request(&bob_mailbox, &sender, &sealed);
        assert_eq!(sender_connection.request(request).await, Response::Ok {});
        let mut reply = identity_bob.to_vec();
        reply.extend_from_slice(plaintext);
        let sealed = stand_in_seal(&session_key, &reply);
        assert_eq!(
            sender_connection.send(&alice_mailbox, &sealed).await,
            Response::Ok {}
        );
    }
    // Bob reads and acknowledges half; the rest stays stored.
    bob.subscribe(&bob_mailbox).await;
    let mut acked = Vec::new();
    for _ in 0..20 {
        let (_, message_id, envelope) = bob.next_message().await;
        bob.ack(&bob_mailbox, message_id).await;
        acked.push(envelope);
    }
    // A third mailbox receives envelopes and is then deleted by its owner.
    let mut carol = Client::connect(addr).await;
    let carol_mailbox = carol.create().await;
    let mut deleted = Vec::new();
    for i in 0..10 {
        let sealed = stand_in_seal(&random32(), format!("to carol {i}").repeat(40).as_bytes());
        assert_eq!(
            sender_connection.send(&carol_mailbox, &sealed).await,
            Response::Ok {}
        );
        deleted.push(sealed);
    }
    let delete = sealpost_wire::Request::Delete {
        receive_id: carol_mailbox.receive_id,
        signature: carol.owner_signature(&carol_mailbox, OwnerCommand::Delete),
    };
    assert_eq!(carol.request(delete).await, Response::Ok {});
    let gone: Vec<Vec<u8>> = acked
        .iter()
        .chain(&deleted)
        .cloned()
        .chain([
            carol_mailbox.receive_id.as_bytes().to_vec(),
            carol_mailbox.send_id.as_bytes().to_vec(),
            auth_key_of(&carol_mailbox).as_bytes().to_vec(),
        ])
        .collect();
    // While the relay runs: gone from the database, its WAL and every other file within the
    // WAL-truncation cadence (polled, not timed).
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let dump = dump_dir(relay.dir.path());
        let lingering = gone.iter().filter(|item| contains(&dump, item)).count();
        if lingering == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{lingering} acknowledged or deleted items still readable in the running relay's files"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    relay.stop().await;

    let dump = dump_dir(relay.dir.path());
    for (index, item) in gone.iter().enumerate() {
        assert!(
            !contains(&dump, item),
            "item {index} of the acknowledged envelopes / deleted mailbox is still at rest"
        );
    }
    // Positive control: the scan does see what the relay must store.
    assert!(contains(&dump, bob_mailbox.receive_id.as_bytes()));
    let stored_sealed = stand_in_seal(
        &session_key,
        &[identity_bob.as_slice(), &plaintexts[39]].concat(),
    );
    assert!(contains(&dump, &stored_sealed));

    for plaintext in &plaintexts {
        assert!(!contains(&dump, plaintext), "plaintext at rest");
    }
    for item in &personal {
        assert!(
            !contains(&dump, item),
            "personal data at rest: {}",
            String::from_utf8_lossy(item)
        );
    }
    assert!(!contains(&dump, &identity_alice), "identity key at rest");
    assert!(!contains(&dump, &identity_bob), "identity key at rest");
    assert!(
        !contains(&dump, &bob_mailbox.secret),
        "raw send secret at rest"
    );
    assert!(!contains(&dump, b"127.0.0.1"), "client address at rest");

    // The schema holds only the documented rows.
    let db = rusqlite::Connection::open(relay.dir.path().join("relay.db")).unwrap();
    let mut columns = Vec::new();
    for table in ["mailbox", "envelope"] {
        let mut statement = db.prepare(&format!("PRAGMA table_info({table})")).unwrap();
        let names: Vec<String> = statement
            .query_map([], |row| row.get::<_, String>(1))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        columns.push((table, names));
    }
    assert_eq!(
        columns,
        vec![
            (
                "mailbox",
                [
                    "mid",
                    "receive_id",
                    "send_id",
                    "auth_key",
                    "send_secret_hash",
                    "sender_key",
                    "envelope_count",
                    "envelope_bytes",
                    "created_at",
                    "last_used"
                ]
                .map(String::from)
                .to_vec()
            ),
            (
                "envelope",
                ["id", "mid", "received_at", "body"]
                    .map(String::from)
                    .to_vec()
            ),
        ]
    );
    let mut tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    tables.sort();
    assert_eq!(tables, ["envelope", "mailbox", "sqlite_sequence"]);
}
