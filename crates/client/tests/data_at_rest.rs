//! The data-at-rest test (`docs/threat-model.md` § A thief of the user's data directory): after
//! writing a conversation and key material through the real vault (OS keychain) and the real store,
//! no file in the profile directory (including SQLite's `-wal` and `-shm`, and the webview folder)
//! holds a plaintext message, a name, or any key byte, raw or in hex.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sealpost_client::group::{GroupId, GroupReplica, MemberKey, RosterState};
use sealpost_client::scan::{
    Needle, export_decrypted_copy, scan_dir_for_needles, starts_with_plain_sqlite_header,
};
use sealpost_client::store::{
    ConversationSeq, EnvelopeId, IdentityKeyBytes, MailboxAuthSecretBytes, MailboxOwner,
    NewContact, NewInvite, NewOwnMailbox, OneTimePrekeySecretBytes, PeerAddress, ReceiveId,
    ReceiveOutcome, Received, ReceivedContent, RelayUrl, SealedEnvelopeBytes,
    SealedEnvelopeForRelay, SealedOutgoing, SealingPublicKeyBytes, SealingSecretBytes, SendId,
    SendSecretBytes, SenderAuthSecretBytes, SessionStateBytes, SignedPrekeySecretBytes, UnixMillis,
};
use sealpost_client::{ProfileDirs, ProfilesConfig, Store, StoreConfig, Vault, open_profile_store};
use sealpost_test_support::{KeychainCleanup, open_real_vault, unique_profile};

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).unwrap();
    bytes
}

/// A new profile under a temporary data root: the root (removed on drop), the guard that removes
/// the profile's keychain entries, its directories and its real keychain vault.
fn new_profile(prefix: &str) -> (tempfile::TempDir, KeychainCleanup, ProfileDirs, Vault) {
    let root = tempfile::tempdir().unwrap();
    let config = ProfilesConfig {
        data_root: Some(root.path().to_path_buf()),
    };
    let profile = unique_profile(prefix);
    let cleanup = KeychainCleanup(profile.clone());
    let dirs = ProfileDirs::create(&config, &profile).unwrap();
    let vault = open_real_vault(&profile);
    (root, cleanup, dirs, vault)
}

fn marker(label: &str) -> String {
    format!("{label}-{}", hex::encode(random_bytes(12)))
}

#[test]
fn no_plaintext_or_key_bytes_in_the_profile_directory() {
    let (_root, cleanup, dirs, vault) = new_profile("scan");
    let seed = vault.load_or_create_identity_seed().unwrap();
    let database_key = vault.load_or_create_database_key().unwrap();

    let mut needles = Vec::new();
    needles.extend(Needle::with_encodings(
        "identity seed",
        seed.expose_secret(),
    ));
    needles.extend(Needle::with_encodings(
        "database key",
        database_key.expose_secret(),
    ));

    // The webview's folder lives inside the profile (`docs/engine.md` § Profiles); put a harmless
    // file there so the scan demonstrably walks it.
    std::fs::create_dir_all(dirs.webview_dir()).unwrap();
    std::fs::write(dirs.webview_dir().join("LocalStorage.leveldb"), b"ui state").unwrap();

    let mut store = Store::open_profile(&dirs, &database_key).unwrap();
    let own_name = marker("OwnDisplayName");
    needles.push(Needle::new(
        "own display name",
        own_name.clone().into_bytes(),
    ));
    store.init_profile(&own_name, UnixMillis::now()).unwrap();

    let contact_name = marker("ContactName");
    needles.push(Needle::new(
        "contact name",
        contact_name.clone().into_bytes(),
    ));
    let contact = store
        .insert_contact(&NewContact {
            display_name: contact_name,
            identity_key: IdentityKeyBytes::new(random_bytes(64)),
            created_at: UnixMillis::now(),
        })
        .unwrap();

    // Key material the engine keeps inside SQLCipher.
    let auth = random_bytes(32);
    let sealing = random_bytes(32);
    let send_secret = random_bytes(32);
    let sender_auth = random_bytes(32);
    let prekey = random_bytes(32);
    for (label, bytes) in [
        ("mailbox auth key", &auth),
        ("mailbox sealing key", &sealing),
        ("send secret", &send_secret),
        ("sender auth key", &sender_auth),
        ("one-time prekey", &prekey),
    ] {
        needles.extend(Needle::with_encodings(label, bytes));
    }
    let relay = RelayUrl::parse("ws://127.0.0.1:7777").unwrap();
    store
        .insert_own_mailbox(NewOwnMailbox {
            owner: MailboxOwner::Contact(contact.id),
            relay_url: relay.clone(),
            receive_id: ReceiveId::try_from(random_bytes(32).as_slice()).unwrap(),
            send_id: SendId::try_from(random_bytes(32).as_slice()).unwrap(),
            auth_secret_key: MailboxAuthSecretBytes::new(auth),
            sealing_secret_key: SealingSecretBytes::new(sealing),
            created_at: UnixMillis::now(),
        })
        .unwrap();
    store
        .upsert_peer_address(&PeerAddress {
            contact: contact.id,
            relay_url: relay.clone(),
            send_id: SendId::try_from(random_bytes(32).as_slice()).unwrap(),
            send_secret: SendSecretBytes::new(send_secret),
            sealing_public_key: SealingPublicKeyBytes::new(random_bytes(32)),
            sender_auth_secret_key: SenderAuthSecretBytes::new(sender_auth),
            created_at: UnixMillis::now(),
        })
        .unwrap();
    store
        .insert_invite(NewInvite {
            one_time_prekey_secret: OneTimePrekeySecretBytes::new(prekey),
            created_at: UnixMillis::now(),
            expires_at: UnixMillis(i64::MAX),
        })
        .unwrap();

    // A conversation both ways, with session states advancing through both transactions.
    for round in 0..20u64 {
        let outgoing_text = marker(&format!("OutgoingPlaintext{round}"));
        needles.push(Needle::new(
            format!("outgoing message {round}"),
            outgoing_text.clone().into_bytes(),
        ));
        let message = store
            .insert_outgoing_message(contact.id, &outgoing_text, UnixMillis::now())
            .unwrap();
        let sent_state = random_bytes(96);
        needles.extend(Needle::with_encodings(
            &format!("session state after send {round}"),
            &sent_state,
        ));
        store
            .commit_sealed(&SealedOutgoing {
                contact: contact.id,
                message: Some(message.id),
                session_state: SessionStateBytes::new(sent_state),
                envelopes: vec![SealedEnvelopeForRelay {
                    relay_url: relay.clone(),
                    send_id: SendId::try_from(random_bytes(32).as_slice()).unwrap(),
                    sealed: SealedEnvelopeBytes::new(random_bytes(256)),
                }],
                now: UnixMillis::now(),
            })
            .unwrap();

        let incoming_text = marker(&format!("IncomingPlaintext{round}"));
        needles.push(Needle::new(
            format!("incoming message {round}"),
            incoming_text.clone().into_bytes(),
        ));
        let received_state = random_bytes(96);
        needles.extend(Needle::with_encodings(
            &format!("session state after receive {round}"),
            &received_state,
        ));
        let outcome = store
            .commit_received(&Received {
                contact: contact.id,
                envelope_id: EnvelopeId::random().unwrap(),
                session_state: SessionStateBytes::new(received_state),
                content: ReceivedContent::Message {
                    seq: ConversationSeq::new(message.seq.get() + 1).unwrap(),
                    body: incoming_text,
                    sent_at: UnixMillis::now(),
                },
                received_at: UnixMillis::now(),
            })
            .unwrap();
        assert!(matches!(outcome, ReceiveOutcome::Stored(_)));
    }

    // A group: its name and description exist only inside E2E content and this store
    // (`docs/engine.md` § Groups), and so do its texts.
    let group_name = marker("GroupName");
    let group_description = marker("GroupDescription");
    let group_text = marker("GroupPlaintext");
    needles.push(Needle::new("group name", group_name.clone().into_bytes()));
    needles.push(Needle::new(
        "group description",
        group_description.clone().into_bytes(),
    ));
    needles.push(Needle::new("group text", group_text.clone().into_bytes()));
    let own_key = MemberKey::from_bytes([0x11; 64]);
    let member = MemberKey::from_bytes([0x22; 64]);
    let group_id = GroupId::generate().unwrap();
    let replica = GroupReplica::new(
        RosterState::genesis(own_key, &group_name, &group_description, &[member]).unwrap(),
    );
    store
        .insert_group(group_id, &replica, UnixMillis::now())
        .unwrap();
    store
        .insert_outgoing_group_text(group_id, own_key, &group_text, &[member], UnixMillis::now())
        .unwrap();

    // While the store is open the newest pages sit in the WAL: scan that state too.
    let wal = dirs.profile_dir().join("sealpost.db-wal");
    assert!(wal.exists(), "expected a WAL file while the store is open");
    let findings = scan_dir_for_needles(dirs.profile_dir(), &needles);
    assert!(findings.is_empty(), "found while open: {findings:#?}");

    store.close().unwrap();
    let findings = scan_dir_for_needles(dirs.profile_dir(), &needles);
    assert!(findings.is_empty(), "found after close: {findings:#?}");
    assert!(
        !starts_with_plain_sqlite_header(&dirs.database_path()).unwrap(),
        "the database file starts with the plain SQLite header"
    );

    // The data is really there: reopen with the key read back from the keychain.
    let reopened_vault = open_real_vault(&cleanup.0);
    let store = open_profile_store(&dirs, &reopened_vault, &StoreConfig::default()).unwrap();
    let page = store.messages_page(contact.id, None, 100).unwrap();
    assert_eq!(page.len(), 40);
    assert!(page[0].body.starts_with("OutgoingPlaintext0-"));
    assert_eq!(store.group(group_id).unwrap().unwrap().name, group_name);
    store.close().unwrap();
}

/// The scan can fail: the same kind of data written to an unencrypted SQLite file is found.
#[test]
fn the_scan_finds_plaintext_in_an_unencrypted_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.db");
    let text = marker("PlainText");
    let key = random_bytes(32);
    {
        // No PRAGMA key: SQLCipher behaves as plain SQLite.
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (body TEXT, key BLOB);")
            .unwrap();
        connection
            .execute(
                "INSERT INTO t (body, key) VALUES (?1, ?2)",
                rusqlite::params![text, key],
            )
            .unwrap();
        let mut needles = vec![Needle::new("text", text.clone().into_bytes())];
        needles.extend(Needle::with_encodings("key", &key));
        let findings = scan_dir_for_needles(dir.path(), &needles);
        assert!(
            findings.iter().any(|f| f.path.ends_with("plain.db-wal")),
            "{findings:#?}"
        );
    }
    let findings = scan_dir_for_needles(dir.path(), &[Needle::new("text", text.into_bytes())]);
    assert!(!findings.is_empty());
    assert!(starts_with_plain_sqlite_header(&path).unwrap());
}

/// Forward secrecy in storage (T7, `docs/crypto.md` § What is kept how long): after first
/// contact, someone holding the database AND the keychain's database key finds none of the
/// prekey secrets that were used: the consumed invite's one-time prekey secret (deleted in the
/// consuming transaction), the revoked invite's, and a signed prekey retired longer ago than
/// the grace period (deleted by the pruning). The scan runs on a decrypted copy of the database
/// (raw, hex and base64); the secrets still needed — an open invite's one-time prekey and the
/// current signed prekey — are found there, which proves the scan sees secrets at all.
#[test]
fn used_prekey_secrets_are_gone_from_the_decrypted_database() {
    let (_root, _cleanup, dirs, vault) = new_profile("fs");
    let database_key = vault.load_or_create_database_key().unwrap();
    let mut store = Store::open_profile(&dirs, &database_key).unwrap();
    let now = UnixMillis::now();
    let day = 24 * 3600 * 1000;

    let contact = store
        .insert_contact(&NewContact {
            display_name: "Bob".to_owned(),
            identity_key: IdentityKeyBytes::new(random_bytes(64)),
            created_at: now,
        })
        .unwrap();
    let (consumed_secret, revoked_secret, open_secret) =
        (random_bytes(32), random_bytes(32), random_bytes(32));
    let mut invite = |secret: &Vec<u8>| {
        store
            .insert_invite(NewInvite {
                one_time_prekey_secret: OneTimePrekeySecretBytes::new(secret.clone()),
                created_at: now,
                expires_at: UnixMillis(now.0 + 7 * day),
            })
            .unwrap()
            .id
    };
    let consumed = invite(&consumed_secret);
    let revoked = invite(&revoked_secret);
    let _open = invite(&open_secret);
    store.consume_invite(consumed, contact.id, now).unwrap();
    store.revoke_invite(revoked, now).unwrap();

    let (old_signed, current_signed) = (random_bytes(32), random_bytes(32));
    store
        .insert_signed_prekey(
            1,
            &SignedPrekeySecretBytes::new(old_signed.clone()),
            UnixMillis(now.0 - 40 * day),
        )
        .unwrap();
    store
        .retire_signed_prekey(1, UnixMillis(now.0 - 31 * day))
        .unwrap();
    store
        .insert_signed_prekey(
            2,
            &SignedPrekeySecretBytes::new(current_signed.clone()),
            now,
        )
        .unwrap();
    assert_eq!(
        store
            .delete_signed_prekeys_retired_before(UnixMillis(now.0 - 30 * day))
            .unwrap(),
        1
    );
    store.close().unwrap();

    let plain_dir = tempfile::tempdir().unwrap();
    let plain = plain_dir.path().join("decrypted.db");
    export_decrypted_copy(&dirs.database_path(), &database_key, &plain).unwrap();
    let mut gone = Vec::new();
    gone.extend(Needle::with_encodings(
        "consumed invite's one-time prekey",
        &consumed_secret,
    ));
    gone.extend(Needle::with_encodings(
        "revoked invite's one-time prekey",
        &revoked_secret,
    ));
    gone.extend(Needle::with_encodings("retired signed prekey", &old_signed));
    let findings = scan_dir_for_needles(plain_dir.path(), &gone);
    assert!(
        findings.is_empty(),
        "used prekey secrets still stored: {findings:#?}"
    );

    let kept = [
        Needle::new("open invite's one-time prekey", open_secret),
        Needle::new("current signed prekey", current_signed),
    ];
    let findings = scan_dir_for_needles(plain_dir.path(), &kept);
    assert_eq!(
        findings.len(),
        2,
        "the decrypted copy holds the live secrets: {findings:#?}"
    );
    // And the encrypted profile directory holds none of them.
    assert!(scan_dir_for_needles(dirs.profile_dir(), &kept).is_empty());
}
