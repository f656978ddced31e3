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

/// What the T10 scenario left on a relay: what must be gone, what must stay, and what must
/// never reach it.
struct T10 {
    gone: Vec<Vec<u8>>,
    bob_receive_id: Vec<u8>,
    stored_sealed: Vec<u8>,
    plaintexts: Vec<Vec<u8>>,
    personal: Vec<&'static [u8]>,
    identities: [[u8; 32]; 2],
    bob_secret: [u8; 32],
    /// The upload and download secrets of both blobs (only their hashes may be stored).
    blob_secrets: Vec<[u8; 32]>,
    /// A chunk of the blob that stays (positive control).
    kept_chunk: Vec<u8>,
}

/// Alice and Bob exchange sealed messages (Bob's mailbox secured to a per-mailbox sender key),
/// Bob acknowledges half of his, and Carol's mailbox receives envelopes and is deleted.
async fn t10_scenario(addr: std::net::SocketAddr) -> T10 {
    let identity_alice = random32();
    let identity_bob = random32();
    let session_key = random32();
    let personal: Vec<&'static [u8]> = vec![
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
    sender_connection
        .open_sender_session(&bob_mailbox, &sender)
        .await;
    for plaintext in &plaintexts {
        // Alice's message to Bob, then Bob's reply to Alice.
        for (identity, mailbox) in [
            (&identity_alice, &bob_mailbox),
            (&identity_bob, &alice_mailbox),
        ] {
            // Inside the seal: the sender's identity key and the text.
            let mut inner = identity.to_vec();
            inner.extend_from_slice(plaintext);
            let sealed = stand_in_seal(&session_key, &inner);
            assert_eq!(
                sender_connection.send(mailbox, &sealed).await,
                Response::Ok {}
            );
        }
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
    // A file for three recipients stays; another one is deleted by its uploader.
    let mut uploader = Client::connect(addr).await;
    let kept = TestBlob::random(3, 3);
    kept.upload(&mut uploader, 0, 3).await;
    for recipient in 0..3 {
        let mut downloader = Client::connect(addr).await;
        kept.assert_downloads(&mut downloader, recipient).await;
    }
    let dropped = TestBlob::random(2, 2);
    dropped.upload(&mut uploader, 0, 2).await;
    assert_eq!(
        uploader.request(dropped.delete_request()).await,
        Response::Ok {}
    );
    let blob_secrets: Vec<[u8; 32]> = [&kept, &dropped]
        .iter()
        .flat_map(|blob| {
            std::iter::once(blob.upload_auth).chain(blob.downloads.iter().map(|(_, auth)| *auth))
        })
        .collect();
    let dropped_items: Vec<Vec<u8>> = (0..2)
        .map(|index| dropped.chunk(index)[..64].to_vec())
        .chain([dropped.upload_id.as_bytes().to_vec()])
        .collect();
    let gone: Vec<Vec<u8>> = acked
        .iter()
        .chain(&deleted)
        .cloned()
        .chain([
            carol_mailbox.receive_id.as_bytes().to_vec(),
            carol_mailbox.send_id.as_bytes().to_vec(),
            auth_key_of(&carol_mailbox).as_bytes().to_vec(),
        ])
        .chain(dropped_items)
        .collect();
    let stored_sealed = stand_in_seal(
        &session_key,
        &[identity_bob.as_slice(), &plaintexts[39]].concat(),
    );
    T10 {
        gone,
        bob_receive_id: bob_mailbox.receive_id.as_bytes().to_vec(),
        stored_sealed,
        plaintexts,
        personal,
        identities: [identity_alice, identity_bob],
        bob_secret: bob_mailbox.secret,
        blob_secrets,
        kept_chunk: kept.chunk(1)[..64].to_vec(),
    }
}

/// Is `needle` in the dump, as raw bytes or as the hex text `pg_dump` writes for bytea?
fn at_rest(dump: &[u8], needle: &[u8]) -> bool {
    contains(dump, needle) || contains(dump, hex::encode(needle).as_bytes())
}

/// The T10 checks on a dump taken after the scenario.
fn assert_blind(t: &T10, dump: &[u8]) {
    for (index, item) in t.gone.iter().enumerate() {
        assert!(
            !at_rest(dump, item),
            "item {index} of the acknowledged envelopes / deleted mailbox is still at rest"
        );
    }
    // Positive control: the scan does see what the relay must store.
    assert!(at_rest(dump, &t.bob_receive_id));
    assert!(at_rest(dump, &t.stored_sealed));
    assert!(at_rest(dump, &t.kept_chunk));
    for secret in &t.blob_secrets {
        assert!(!at_rest(dump, secret), "raw blob secret at rest");
    }
    for plaintext in &t.plaintexts {
        assert!(!at_rest(dump, plaintext), "plaintext at rest");
    }
    for item in &t.personal {
        assert!(
            !at_rest(dump, item),
            "personal data at rest: {}",
            String::from_utf8_lossy(item)
        );
    }
    for identity in &t.identities {
        assert!(!at_rest(dump, identity), "identity key at rest");
    }
    assert!(!at_rest(dump, &t.bob_secret), "raw send secret at rest");
    assert!(!contains(dump, b"127.0.0.1"), "client address at rest");
}

#[tokio::test]
async fn relay_dump_holds_no_plaintext_identity_or_personal_data() {
    let mut relay = TestRelay::start(test_limits(), None).await;
    let t = t10_scenario(relay.addr()).await;
    let gone = &t.gone;
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
    assert_blind(&t, &dump);
    // The schema holds only the documented rows.
    let db = rusqlite::Connection::open(relay.dir.path().join("relay.db")).unwrap();
    assert_eq!(
        sqlite_columns(&db, &["mailbox", "envelope"]),
        documented_columns()
    );
    let mut tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    tables.sort();
    assert_eq!(
        tables,
        ["blob", "blob_chunk", "blob_download", "envelope", "mailbox"]
    );
    // No column names a mailbox, a recipient or an address.
    assert_eq!(
        sqlite_columns(&db, &["blob", "blob_chunk", "blob_download"]),
        blob_columns()
    );
}

/// The columns of each of `tables` in the SQLite database, in order.
fn sqlite_columns(
    db: &rusqlite::Connection,
    tables: &[&'static str],
) -> Vec<(&'static str, Vec<String>)> {
    tables
        .iter()
        .map(|&table| {
            let mut statement = db.prepare(&format!("PRAGMA table_info({table})")).unwrap();
            let names: Vec<String> = statement
                .query_map([], |row| row.get::<_, String>(1))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            (table, names)
        })
        .collect()
}

/// download_id, auth_hash, sealed_ref, created as stored.
type DownloadRow = (Vec<u8>, Vec<u8>, Vec<u8>, i64);

/// A dump after one upload for three recipients: the download rows name their blob only sealed
/// under each recipient's secret, so nothing at rest ties one recipient's download id to
/// another's, to the upload id or to a mailbox.
#[tokio::test]
async fn blob_rows_link_no_recipient_to_another_nor_to_the_upload_or_a_mailbox() {
    let mut relay = TestRelay::start(test_limits(), None).await;
    let addr = relay.addr();
    let mut owner = Client::connect(addr).await;
    let mailbox = owner.create().await;
    let blob = TestBlob::random(2, 3);
    // The uploader sends the pointer on the same connection, the worst case for linking.
    let mut uploader = Client::connect(addr).await;
    blob.upload(&mut uploader, 0, 2).await;
    assert_eq!(uploader.send(&mailbox, b"pointer").await, Response::Ok {});
    for recipient in 0..3 {
        let mut downloader = Client::connect(addr).await;
        blob.assert_downloads(&mut downloader, recipient).await;
    }
    relay.stop().await;

    let db = rusqlite::Connection::open(relay.dir.path().join("relay.db")).unwrap();
    let (bid, upload_id, upload_hash): (i64, Vec<u8>, Vec<u8>) = db
        .query_row(
            "SELECT bid, upload_id, upload_auth_hash FROM blob",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    let upload_row = [upload_id, upload_hash].concat();
    let rows: Vec<DownloadRow> = db
        .prepare("SELECT download_id, auth_hash, sealed_ref, created FROM blob_download")
        .unwrap()
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 3);
    let (receive_id, send_id, mid): (Vec<u8>, Vec<u8>, i64) = db
        .query_row("SELECT receive_id, send_id, mid FROM mailbox", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .unwrap();
    assert_ne!(mid, bid);
    let mailbox_bytes = [receive_id, send_id].concat();
    for (index, (download_id, auth_hash, sealed_ref, created)) in rows.iter().enumerate() {
        let row_bytes = [download_id.as_slice(), auth_hash, sealed_ref].concat();
        // Not the blob's row key in any byte order, nor anything of the upload or a mailbox.
        assert_ne!(sealed_ref.as_slice(), bid.to_be_bytes().as_slice());
        assert_ne!(sealed_ref.as_slice(), bid.to_le_bytes().as_slice());
        assert!(
            !contains(&row_bytes, &upload_row[..32]),
            "upload id in a download row"
        );
        assert!(
            !contains(&mailbox_bytes, download_id),
            "download id in a mailbox row"
        );
        assert!(
            !contains(&upload_row, download_id),
            "download id in the blob row"
        );
        assert_eq!(created % 3600, 0, "whole hours");
        for (other_id, other_hash, other_ref, _) in &rows[index + 1..] {
            // Two recipients' rows share no value but the creation hour.
            assert_ne!(download_id, other_id);
            assert_ne!(auth_hash, other_hash);
            assert_ne!(sealed_ref, other_ref);
            let xor: Vec<u8> = sealed_ref
                .iter()
                .zip(other_ref)
                .map(|(a, b)| a ^ b)
                .collect();
            assert!(xor.iter().any(|&byte| byte != 0));
        }
    }
    let chunk_columns: i64 = db
        .query_row(
            "SELECT count(*) FROM pragma_table_info('blob_chunk') WHERE name IN ('mid', 'receive_id')",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(chunk_columns, 0);
}

/// The columns of the relay's two tables, in order, the same on SQLite and PostgreSQL: nothing
/// but what `docs/relay-protocol.md` documents the relay keeping.
fn documented_columns() -> Vec<(&'static str, Vec<String>)> {
    vec![
        (
            "mailbox",
            strings(&[
                "mid",
                "receive_id",
                "send_id",
                "auth_key",
                "send_secret_hash",
                "sender_key",
                "envelope_count",
                "envelope_bytes",
                "next_message_id",
                "last_used",
            ]),
        ),
        (
            "envelope",
            strings(&["eid", "mid", "message_id", "received_at", "body"]),
        ),
    ]
}

/// The blob store's tables and columns (`docs/relay-protocol.md` § Blobs): none names a mailbox, a
/// recipient or an address.
fn blob_columns() -> Vec<(&'static str, Vec<String>)> {
    vec![
        (
            "blob",
            strings(&[
                "bid",
                "upload_id",
                "upload_auth_hash",
                "chunk_count",
                "stored",
                "created",
                // How many grants are not released yet: a count, naming no recipient
                // (`docs/relay-protocol.md` § 13.3).
                "downloads_left",
            ]),
        ),
        ("blob_chunk", strings(&["cid", "bid", "idx", "body"])),
        (
            "blob_download",
            strings(&["download_id", "auth_hash", "sealed_ref", "created"]),
        ),
    ]
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

fn is_increasing(values: &[i64]) -> bool {
    values.windows(2).all(|pair| pair[0] < pair[1])
}

#[tokio::test]
async fn nothing_at_rest_counts_relay_wide_and_times_are_whole_hours() {
    let mut relay = TestRelay::start(test_limits(), None).await;
    let addr = relay.addr();
    let mut owner = Client::connect(addr).await;
    let mut sender = Client::connect(addr).await;
    // Twelve mailboxes created one after the other, then one envelope to each in that order,
    // then a second round.
    let mut mailboxes = Vec::new();
    for _ in 0..12 {
        mailboxes.push(owner.create().await);
    }
    for round in 0..2u8 {
        for (index, mailbox) in mailboxes.iter().enumerate() {
            let body = [round, index as u8].repeat(64);
            assert_eq!(sender.send(mailbox, &body).await, Response::Ok {});
        }
    }
    // The message ids the owner sees, in arrival order across mailboxes.
    let mut pushed_ids = Vec::new();
    for mailbox in &mailboxes {
        owner.subscribe(mailbox).await;
        let (_, first, _) = owner.next_message().await;
        let (_, second, _) = owner.next_message().await;
        assert!(first.0 < second.0, "per-mailbox ids increase");
        pushed_ids.push(first.0 as i64);
    }
    relay.stop().await;

    let db = rusqlite::Connection::open(relay.dir.path().join("relay.db")).unwrap();
    let schema: String = db
        .query_row(
            "SELECT group_concat(sql, ' ') FROM sqlite_master",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(!schema.to_uppercase().contains("AUTOINCREMENT"), "{schema}");
    let sequence_table: i64 = db
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(sequence_table, 0, "no sqlite_sequence");
    // Row ids in creation order and in arrival order are not a counter (a random order is
    // increasing with probability 1/12!).
    let mids: Vec<i64> = mailboxes
        .iter()
        .map(|m| {
            db.query_row(
                "SELECT mid FROM mailbox WHERE receive_id = ?1",
                [m.receive_id.as_bytes().as_slice()],
                |row| row.get(0),
            )
            .unwrap()
        })
        .collect();
    assert!(
        !is_increasing(&mids),
        "mailbox row ids follow creation order: {mids:?}"
    );
    let eids: Vec<i64> = (0..2u8)
        .flat_map(|round| (0..12u8).map(move |index| [round, index].repeat(64)))
        .map(|body| {
            db.query_row("SELECT eid FROM envelope WHERE body = ?1", [body], |row| {
                row.get(0)
            })
            .unwrap()
        })
        .collect();
    assert!(
        !is_increasing(&eids),
        "envelope row ids follow arrival order: {eids:?}"
    );
    assert!(
        !is_increasing(&pushed_ids),
        "message ids count across mailboxes: {pushed_ids:?}"
    );
    let unrounded: i64 = db
        .query_row(
            "SELECT (SELECT count(*) FROM envelope WHERE received_at % 3600 != 0)
                  + (SELECT count(*) FROM mailbox WHERE last_used % 3600 != 0)",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(unrounded, 0, "stored times are whole hours");
}

#[tokio::test]
async fn a_version_0_database_is_migrated_and_keeps_its_envelopes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.db");
    let auth = SigningKey::from_bytes(&random32());
    let receive_id = random32();
    let send_id = random32();
    let secret = random32();
    {
        // The version-0 schema, as relays before schema versions wrote it.
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE mailbox (
                 mid INTEGER PRIMARY KEY, receive_id BLOB NOT NULL UNIQUE,
                 send_id BLOB NOT NULL UNIQUE, auth_key BLOB NOT NULL,
                 send_secret_hash BLOB NOT NULL, sender_key BLOB,
                 envelope_count INTEGER NOT NULL DEFAULT 0,
                 envelope_bytes INTEGER NOT NULL DEFAULT 0,
                 created_at INTEGER NOT NULL, last_used INTEGER NOT NULL);
             CREATE TABLE envelope (
                 id INTEGER PRIMARY KEY AUTOINCREMENT, mid INTEGER NOT NULL,
                 received_at INTEGER NOT NULL, body BLOB NOT NULL);
             CREATE INDEX envelope_by_mailbox ON envelope(mid, id);",
        )
        .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let hash = sealpost_relay::send_secret_hash(&sealpost_wire::SendSecret::new(secret));
        db.execute(
            "INSERT INTO mailbox VALUES (7, ?1, ?2, ?3, ?4, NULL, 3, 12, ?5, ?5)",
            rusqlite::params![
                receive_id.as_slice(),
                send_id.as_slice(),
                public_key(&auth).as_bytes().as_slice(),
                hash.as_slice(),
                now
            ],
        )
        .unwrap();
        for (id, body) in [(40, b"old1"), (41, b"old2"), (45, b"old3")] {
            db.execute(
                "INSERT INTO envelope VALUES (?1, 7, ?2, ?3)",
                rusqlite::params![id, now, &body[..]],
            )
            .unwrap();
        }
    }
    let config = sealpost_relay::RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: path.clone().into(),
        tls: None,
        password: None,
        metrics_listen: None,
        client_address: Default::default(),
        limits: test_limits(),
    };
    let relay = sealpost_relay::Relay::start(config).await.unwrap();
    let mailbox = Mailbox {
        auth,
        receive_id: sealpost_wire::ReceiveId(receive_id),
        send_id: sealpost_wire::SendId(send_id),
        secret,
    };
    let mut sender = Client::connect(relay.addr()).await;
    assert_eq!(sender.send(&mailbox, b"new").await, Response::Ok {});
    let mut owner = Client::connect(relay.addr()).await;
    owner.subscribe(&mailbox).await;
    let mut received = Vec::new();
    for _ in 0..4 {
        let (_, message_id, envelope) = owner.next_message().await;
        assert!(message_id.0 > 45, "above every version-0 id");
        owner.ack(&mailbox, message_id).await;
        received.push(envelope);
    }
    assert_eq!(received, [&b"old1"[..], b"old2", b"old3", b"new"]);
    relay.shutdown().await.unwrap();
    let db = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, 3);
    let counters: i64 = db
        .query_row("SELECT count(*) FROM sqlite_sequence", [], |row| row.get(0))
        .unwrap();
    assert_eq!(counters, 0, "the old relay-wide counter is gone");
    let (count, bytes): (i64, i64) = db
        .query_row(
            "SELECT envelope_count, envelope_bytes FROM mailbox",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (count, bytes),
        (0, 0),
        "quota usage carried over and released"
    );
}

/// `pg_dump` of a database, plain SQL (bytea as hex text).
fn pg_dump(url: &str) -> Vec<u8> {
    let bin = std::env::var("SEALPOST_TEST_PG_BIN").unwrap_or_else(|_| "/usr/bin".into());
    let output = std::process::Command::new(std::path::Path::new(&bin).join("pg_dump"))
        .arg("--dbname")
        .arg(url)
        .output()
        .expect("run pg_dump");
    assert!(
        output.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// T10 on the PostgreSQL store: a `pg_dump` of its database passes the same checks as the SQLite
/// files, the schema holds the same rows (plus the one-row schema version), and nothing at rest
/// counts relay-wide (no sequence, whole-hour times).
#[tokio::test]
async fn postgres_dump_holds_no_plaintext_identity_or_personal_data() {
    let mut relay = TestRelay::start_on(Backend::Postgres, test_limits(), None).await;
    let t = t10_scenario(relay.addr()).await;
    // While the relay runs: ACKed and deleted rows are gone from the dump at once.
    assert_blind(&t, &pg_dump(&relay.database_setting));
    relay.stop().await;
    let dump = pg_dump(&relay.database_setting);
    assert_blind(&t, &dump);

    let (db, connection) = tokio_postgres::connect(&relay.database_setting, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let tables: Vec<String> = db
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' ORDER BY table_name",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        tables,
        [
            "blob",
            "blob_chunk",
            "blob_download",
            "envelope",
            "mailbox",
            "relay_schema"
        ]
    );
    let mut columns = Vec::new();
    for table in [
        "mailbox",
        "envelope",
        "relay_schema",
        "blob",
        "blob_chunk",
        "blob_download",
    ] {
        let names: Vec<String> = db
            .query(
                "SELECT column_name::text FROM information_schema.columns
                 WHERE table_name = $1 ORDER BY ordinal_position",
                &[&table],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        columns.push((table, names));
    }
    let mut expected = documented_columns();
    expected.push(("relay_schema", strings(&["version"])));
    expected.extend(blob_columns());
    assert_eq!(columns, expected);
    let sequences: i64 = db
        .query_one("SELECT count(*) FROM pg_class WHERE relkind = 'S'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sequences, 0, "no sequence counts anything");
    let unrounded: i64 = db
        .query_one(
            "SELECT (SELECT count(*) FROM envelope WHERE received_at % 3600 != 0)
                  + (SELECT count(*) FROM mailbox WHERE last_used % 3600 != 0)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(unrounded, 0, "stored times are whole hours");
}

/// Every regular file under `dir`, recursively, concatenated (files that vanish meanwhile are
/// skipped: PostgreSQL removes WAL segments and temporary files as it runs).
fn dump_tree(dir: &std::path::Path, dump: &mut Vec<u8>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => dump_tree(&path, dump),
            Ok(kind) if kind.is_file() => {
                if let Ok(bytes) = std::fs::read(&path) {
                    dump.extend(bytes);
                }
            }
            _ => {}
        }
    }
}

/// The PostgreSQL store's data directory after the maintenance `docs/self-hosting.md` (§ Several
/// nodes on PostgreSQL, "Deleted data on disk") gives: `VACUUM FULL` of the relay's two tables,
/// then, with `wal_recycle = off`, a WAL switch and a checkpoint (twice). Acknowledged envelopes
/// and the deleted mailbox are then in none of the files that hold the relay's database or the
/// server's WAL; the positive controls show the scan reads the right files.
#[tokio::test]
async fn postgres_acked_and_deleted_rows_leave_the_data_directory_after_the_documented_maintenance()
{
    let mut relay = TestRelay::start_on(Backend::Postgres, test_limits(), None).await;
    let t = t10_scenario(relay.addr()).await;
    relay.stop().await;
    let (db, connection) = tokio_postgres::connect(&relay.database_setting, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    // One statement per call: VACUUM and ALTER SYSTEM refuse to run inside a transaction block.
    let mut maintenance = vec![
        "VACUUM FULL envelope",
        "VACUUM FULL mailbox",
        "VACUUM FULL blob",
        "VACUUM FULL blob_chunk",
        "VACUUM FULL blob_download",
        "ALTER SYSTEM SET wal_recycle = off",
        "SELECT pg_reload_conf()",
    ];
    for _ in 0..2 {
        maintenance.extend(["SELECT pg_switch_wal()", "CHECKPOINT"]);
    }
    for statement in maintenance {
        db.batch_execute(statement).await.unwrap();
    }
    let data: String = db
        .query_one("SHOW data_directory", &[])
        .await
        .unwrap()
        .get(0);
    let oid: u32 = db
        .query_one(
            "SELECT oid FROM pg_database WHERE datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let data = std::path::Path::new(&data);
    let mut dump = Vec::new();
    dump_tree(&data.join("base").join(oid.to_string()), &mut dump);
    dump_tree(&data.join("pg_wal"), &mut dump);
    dump_tree(&data.join("global"), &mut dump);
    for (index, item) in t.gone.iter().enumerate() {
        assert!(
            memchr::memmem::find(&dump, item).is_none(),
            "item {index} of the acknowledged envelopes / deleted mailbox is still in the data directory"
        );
    }
    assert!(memchr::memmem::find(&dump, &t.bob_receive_id).is_some());
    assert!(memchr::memmem::find(&dump, &t.stored_sealed).is_some());
}
