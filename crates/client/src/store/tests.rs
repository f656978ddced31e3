//! Store unit tests. They live inside the crate so they can reach the raw connection to inject
//! failures (temporary triggers, a page limit for a full disk, `query_only` for a read-only file).

use super::*;
use crate::vault::DatabaseKey;

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    key: DatabaseKey,
    store: Store,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    let key = DatabaseKey::generate().unwrap();
    let store = Store::open(&path, &key).unwrap();
    Fixture {
        _dir: dir,
        path,
        key,
        store,
    }
}

fn t(millis: i64) -> UnixMillis {
    UnixMillis(millis)
}

fn seq(value: u64) -> ConversationSeq {
    ConversationSeq::new(value).unwrap()
}

fn relay(n: u8) -> RelayUrl {
    RelayUrl::parse(&format!("ws://127.0.0.1:{}", 7000 + u16::from(n))).unwrap()
}

fn add_contact(store: &mut Store, name: &str) -> Contact {
    store
        .insert_contact(&NewContact {
            display_name: name.to_owned(),
            identity_key: IdentityKeyBytes::new(format!("ik-of-{name}").into_bytes()),
            created_at: t(1),
        })
        .unwrap()
}

fn session(tag: &str) -> SessionStateBytes {
    SessionStateBytes::new(tag.as_bytes().to_vec())
}

fn envelope(n: u8, bytes: &[u8]) -> SealedEnvelopeForRelay {
    SealedEnvelopeForRelay {
        relay_url: relay(n),
        send_id: SendId([n; 32]),
        sealed: SealedEnvelopeBytes::new(bytes.to_vec()),
    }
}

fn received_message(contact: ContactId, n: u64, body: &str, state: &str) -> Received {
    Received {
        contact,
        envelope_id: EnvelopeId::random().unwrap(),
        session_state: session(state),
        content: ReceivedContent::Message {
            seq: seq(n),
            body: body.to_owned(),
            sent_at: t(100),
        },
        received_at: t(200),
    }
}

/// The stored session state with `contact`, byte for byte.
fn stored_session(store: &Store, contact: ContactId) -> Vec<u8> {
    let state = store.session_state(contact).unwrap().unwrap();
    state.expose_secret().to_vec()
}

/// The session state held with `contact`'s pending key change, byte for byte.
fn held_session(store: &Store, contact: ContactId) -> Vec<u8> {
    let state = store.pending_session_state(contact).unwrap().unwrap();
    state.expose_secret().to_vec()
}

/// Adds the contact `name` with the stored session state `state`.
fn contact_with_session(store: &mut Store, name: &str, state: &str) -> Contact {
    let contact = add_contact(store, name);
    store
        .save_session_state(contact.id, &session(state), t(1))
        .unwrap();
    contact
}

/// Limits the database to the pages it has now (after a checkpoint) and `spare` more, as a
/// full disk would.
fn fill_the_disk(store: &Store, spare: i64) {
    store
        .connection_for_tests()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let pages: i64 = store
        .connection_for_tests()
        .query_row("PRAGMA page_count", [], |row| row.get(0))
        .unwrap();
    store
        .connection_for_tests()
        .query_row(
            &format!("PRAGMA max_page_count = {}", pages + spare),
            [],
            |_| Ok(()),
        )
        .unwrap();
}

fn fail_inserts_into(store: &Store, table: &str, when: &str) {
    store
        .connection_for_tests()
        .execute_batch(&format!(
            "CREATE TEMP TRIGGER fail_{table} BEFORE INSERT ON main.{table} {when}
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
        ))
        .unwrap();
}

fn count(store: &Store, table: &str) -> i64 {
    store
        .connection_for_tests()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
            row.get(0)
        })
        .unwrap()
}

#[test]
fn the_start_up_unsealed_message_query_uses_its_index_not_a_scan() {
    let f = fixture();
    let plan: Vec<String> = f
        .store
        .connection_for_tests()
        .prepare(
            "EXPLAIN QUERY PLAN SELECT id FROM messages WHERE direction = 1 AND state = 0
             AND sealed_at IS NULL ORDER BY contact_id, seq",
        )
        .unwrap()
        .query_map([], |row| row.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        plan.iter()
            .any(|step| step.contains("USING INDEX messages_awaiting_seal")),
        "{plan:?}"
    );
}

#[test]
fn new_database_is_encrypted_and_at_latest_schema() {
    let f = fixture();
    assert_eq!(f.store.schema_version().unwrap(), SCHEMA_VERSION);
    f.store.close().unwrap();
    assert!(!crate::scan::starts_with_plain_sqlite_header(&f.path).unwrap());
}

#[test]
fn pragmas_are_set() {
    let f = fixture();
    let connection = f.store.connection_for_tests();
    let get = |name: &str| -> String {
        connection
            .query_row(&format!("PRAGMA {name}"), [], |row| {
                row.get::<_, rusqlite::types::Value>(0)
            })
            .map(|value| format!("{value:?}"))
            .unwrap()
    };
    assert!(get("journal_mode").to_lowercase().contains("wal"));
    assert_eq!(get("foreign_keys"), "Integer(1)");
    assert_eq!(get("secure_delete"), "Integer(1)");
    assert_eq!(get("synchronous"), "Integer(2)"); // FULL
    assert_eq!(get("temp_store"), "Integer(2)"); // MEMORY
    assert_ne!(get("cipher_version"), "");
    // Off by default. (SQLCipher's setting is process-wide and cannot be turned off again, so no
    // test in this binary may turn it on.)
    assert_eq!(get("cipher_memory_security"), "Text(\"0\")");
}

#[test]
fn wrong_key_gives_typed_error() {
    let f = fixture();
    f.store.close().unwrap();
    let other = DatabaseKey::generate().unwrap();
    assert!(matches!(
        Store::open(&f.path, &other),
        Err(StoreError::WrongKeyOrCorrupt)
    ));
    // The right key still opens it: the failed attempt changed nothing.
    Store::open(&f.path, &f.key).unwrap().close().unwrap();
}

#[test]
fn garbage_file_gives_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let key = DatabaseKey::generate().unwrap();
    assert!(matches!(
        Store::open(&path, &key),
        Err(StoreError::WrongKeyOrCorrupt)
    ));
}

#[test]
fn missing_file_without_create_is_an_error_not_a_new_database() {
    let dir = tempfile::tempdir().unwrap();
    let key = DatabaseKey::generate().unwrap();
    let config = StoreConfig {
        create_if_missing: false,
        ..StoreConfig::default()
    };
    assert!(Store::open_with(&dir.path().join("absent.db"), &key, &config).is_err());
    assert!(!dir.path().join("absent.db").exists());
}

#[test]
fn migrates_a_version_1_database_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let key = DatabaseKey::generate().unwrap();
    {
        let mut connection = Connection::open(&path).unwrap();
        apply_key(&connection, &key).unwrap();
        schema::migrate_to(&mut connection, 1).unwrap();
        assert_eq!(schema::schema_version(&connection).unwrap(), 1);
        connection
            .execute(
                "INSERT INTO contacts (id, display_name, identity_key, created_at, last_activity_at)
                 VALUES (?1, 'old friend', x'0102', 5, 5)",
                params![ContactId::from_bytes([9; 16])],
            )
            .unwrap();
        let has_v2_table: i64 = connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'mailbox_deletions'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(has_v2_table, 0);
    }
    let store = Store::open(&path, &key).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let contact = store
        .contact(ContactId::from_bytes([9; 16]))
        .unwrap()
        .unwrap();
    assert_eq!(contact.display_name, "old friend");
    assert!(store.pending_mailbox_deletions().unwrap().is_empty());
}

#[test]
fn newer_schema_is_refused() {
    let f = fixture();
    f.store
        .connection_for_tests()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    f.store.close().unwrap();
    assert!(matches!(
        Store::open(&f.path, &f.key),
        Err(StoreError::SchemaTooNew {
            found: 99,
            supported: SCHEMA_VERSION
        })
    ));
}

#[test]
fn profile_and_settings() {
    let mut f = fixture();
    assert!(f.store.profile().unwrap().is_none());
    f.store.init_profile("Alice", t(3)).unwrap();
    assert!(matches!(
        f.store.init_profile("Again", t(4)),
        Err(StoreError::Conflict { .. })
    ));
    f.store.set_profile_display_name("Alice B").unwrap();
    assert_eq!(f.store.profile().unwrap().unwrap().display_name, "Alice B");
    assert_eq!(f.store.setting("notifications.preview").unwrap(), None);
    f.store.set_setting("notifications.preview", "off").unwrap();
    f.store.set_setting("notifications.preview", "on").unwrap();
    assert_eq!(
        f.store.setting("notifications.preview").unwrap().as_deref(),
        Some("on")
    );
}

#[test]
fn identity_keys_are_unique_per_contact() {
    let mut f = fixture();
    let alice = add_contact(&mut f.store, "alice");
    assert_eq!(
        f.store
            .contact_by_identity_key(&alice.identity_key)
            .unwrap()
            .unwrap()
            .id,
        alice.id
    );
    assert!(matches!(
        f.store.insert_contact(&NewContact {
            display_name: "imposter".to_owned(),
            identity_key: alice.identity_key.clone(),
            created_at: t(2),
        }),
        Err(StoreError::Conflict { .. })
    ));
}

#[test]
fn key_change_blocks_sending_until_the_user_decides() {
    let mut f = fixture();
    let bob = add_contact(&mut f.store, "bob");
    f.store.set_contact_verified(bob.id, true).unwrap();
    let message = f
        .store
        .insert_outgoing_message(bob.id, "before", t(10))
        .unwrap();
    let new_key = IdentityKeyBytes::new(b"swapped".to_vec());
    assert_eq!(
        f.store
            .record_key_change(bob.id, &bob.identity_key, &session("same"), t(11))
            .unwrap(),
        KeyChangeOutcome::Unchanged
    );
    assert!(f.store.pending_session_state(bob.id).unwrap().is_none());
    assert_eq!(
        f.store
            .record_key_change(bob.id, &new_key, &session("held"), t(11))
            .unwrap(),
        KeyChangeOutcome::Held
    );
    assert_eq!(
        f.store
            .record_key_change(bob.id, &new_key, &session("later"), t(12))
            .unwrap(),
        KeyChangeOutcome::AlreadyPending
    );
    let held = f.store.contact(bob.id).unwrap().unwrap();
    assert!(!held.verified);
    assert_eq!(held.pending_identity_key.as_ref(), Some(&new_key));
    assert_eq!(
        held_session(&f.store, bob.id),
        b"held",
        "the session is held with the key, and kept from the first message"
    );
    assert!(matches!(
        f.store.insert_outgoing_message(bob.id, "blocked", t(13)),
        Err(StoreError::SendingBlocked { .. })
    ));
    assert!(matches!(
        f.store.commit_sealed(&SealedOutgoing {
            contact: bob.id,
            message: Some(message.id),
            session_state: session("s"),
            envelopes: vec![envelope(1, b"x")],
            now: t(14),
        }),
        Err(StoreError::SendingBlocked { .. })
    ));
    f.store
        .save_session_state(bob.id, &session("old"), t(14))
        .unwrap();
    f.store.reject_key_change(bob.id).unwrap();
    let rejected = f.store.contact(bob.id).unwrap().unwrap();
    assert_eq!(rejected.identity_key, bob.identity_key);
    assert!(rejected.pending_identity_key.is_none());
    assert!(f.store.pending_session_state(bob.id).unwrap().is_none());
    assert_eq!(
        stored_session(&f.store, bob.id),
        b"old",
        "rejecting keeps the old session"
    );
    assert!(matches!(
        f.store.reject_key_change(bob.id),
        Err(StoreError::NotFound { .. })
    ));
    f.store
        .record_key_change(bob.id, &new_key, &session("new"), t(15))
        .unwrap();
    f.store.accept_key_change(bob.id, t(16)).unwrap();
    let accepted = f.store.contact(bob.id).unwrap().unwrap();
    assert_eq!(accepted.identity_key, new_key);
    assert!(accepted.pending_identity_key.is_none());
    assert!(f.store.pending_session_state(bob.id).unwrap().is_none());
    assert_eq!(
        stored_session(&f.store, bob.id),
        b"new",
        "accepting installs the session the new key's initial message started"
    );
    f.store
        .insert_outgoing_message(bob.id, "after", t(16))
        .unwrap();
}

/// Accepting a key change is ONE transaction: a failure injected at its last step (writing the
/// held session as the contact's session) leaves the change pending exactly as before — the old
/// key, the old session, the held key and the held session — never a new key without a session.
/// (A store-level injected failure; the engine's `accept_key_change` is this one call.)
#[test]
fn a_failed_accept_of_a_key_change_leaves_it_pending_unchanged() {
    let mut f = fixture();
    let bob = add_contact(&mut f.store, "bob");
    let new_key = IdentityKeyBytes::new(b"swapped".to_vec());
    f.store
        .save_session_state(bob.id, &session("old"), t(10))
        .unwrap();
    f.store
        .record_key_change(bob.id, &new_key, &session("held"), t(11))
        .unwrap();
    f.store
        .connection_for_tests()
        .execute_batch(
            "CREATE TEMP TRIGGER fail_sessions BEFORE UPDATE ON main.sessions
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
    assert!(f.store.accept_key_change(bob.id, t(12)).is_err());
    let row = f.store.contact(bob.id).unwrap().unwrap();
    assert_eq!(row.identity_key, bob.identity_key);
    assert_eq!(row.pending_identity_key.as_ref(), Some(&new_key));
    assert_eq!(held_session(&f.store, bob.id), b"held");
    assert_eq!(stored_session(&f.store, bob.id), b"old");
    f.store
        .connection_for_tests()
        .execute_batch("DROP TRIGGER temp.fail_sessions")
        .unwrap();
    f.store.accept_key_change(bob.id, t(13)).unwrap();
    assert_eq!(stored_session(&f.store, bob.id), b"held");
}

/// Holding and rejecting a key change are single writes too: a failure injected into the write
/// leaves the contact as it was (no held key without its session, and no half-cleared change).
#[test]
fn a_failed_hold_or_reject_of_a_key_change_changes_nothing() {
    let mut f = fixture();
    let bob = add_contact(&mut f.store, "bob");
    let new_key = IdentityKeyBytes::new(b"swapped".to_vec());
    let fail_contact_updates = |store: &Store| {
        store
            .connection_for_tests()
            .execute_batch(
                "CREATE TEMP TRIGGER fail_contacts AFTER UPDATE ON main.contacts
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
            )
            .unwrap();
    };
    let allow_contact_updates = |store: &Store| {
        store
            .connection_for_tests()
            .execute_batch("DROP TRIGGER temp.fail_contacts")
            .unwrap();
    };
    fail_contact_updates(&f.store);
    assert!(
        f.store
            .record_key_change(bob.id, &new_key, &session("held"), t(11))
            .is_err()
    );
    assert!(
        f.store
            .contact(bob.id)
            .unwrap()
            .unwrap()
            .pending_identity_key
            .is_none()
    );
    assert!(f.store.pending_session_state(bob.id).unwrap().is_none());
    allow_contact_updates(&f.store);
    f.store
        .record_key_change(bob.id, &new_key, &session("held"), t(11))
        .unwrap();
    fail_contact_updates(&f.store);
    assert!(f.store.reject_key_change(bob.id).is_err());
    assert_eq!(
        f.store
            .contact(bob.id)
            .unwrap()
            .unwrap()
            .pending_identity_key,
        Some(new_key)
    );
    assert!(f.store.pending_session_state(bob.id).unwrap().is_some());
}

/// A version-3 database at `path`, for the version 4 migration tests.
fn version_3_database(path: &std::path::Path, key: &DatabaseKey) -> Connection {
    let mut connection = Connection::open(path).unwrap();
    apply_key(&connection, key).unwrap();
    connection
        .pragma_update(None, "foreign_keys", true)
        .unwrap();
    schema::migrate_to(&mut connection, 3).unwrap();
    assert_eq!(schema::schema_version(&connection).unwrap(), 3);
    connection
}

/// Version 4 moves a key change held by an older version (hex in `settings`) into the typed
/// column; hex that does not decode becomes no session (accepting is then refused, not
/// turned into an empty state), and the settings rows are deleted.
#[test]
fn migration_4_moves_held_key_change_sessions_out_of_settings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.db");
    let key = DatabaseKey::generate().unwrap();
    let (good, bad) = (
        ContactId::from_bytes([1; 16]),
        ContactId::from_bytes([2; 16]),
    );
    {
        let connection = version_3_database(&path, &key);
        for (contact, value) in [(good, "0a0b0c"), (bad, "not hex")] {
            connection
                .execute(
                    "INSERT INTO contacts (id, display_name, identity_key, pending_identity_key,
                     created_at, last_activity_at) VALUES (?1, 'c', ?2, ?3, 5, 5)",
                    params![
                        contact,
                        format!("old-{contact}").into_bytes(),
                        format!("new-{contact}").into_bytes()
                    ],
                )
                .unwrap();
            connection
                .execute(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2)",
                    params![format!("engine.pending-session.{contact}"), value],
                )
                .unwrap();
        }
    }
    let mut store = Store::open(&path, &key).unwrap();
    assert_eq!(held_session(&store, good), &[0x0a, 0x0b, 0x0c]);
    assert!(store.pending_session_state(bad).unwrap().is_none());
    assert!(
        store
            .setting(&format!("engine.pending-session.{good}"))
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        store.accept_key_change(bad, t(5)),
        Err(StoreError::NotFound { .. })
    ));
    store.reject_key_change(bad).unwrap();
    store.accept_key_change(good, t(5)).unwrap();
    assert_eq!(stored_session(&store, good), &[0x0a, 0x0b, 0x0c]);
}

/// Version 4 rebuilds `invites` with a nullable one-time prekey secret: the secrets of invites
/// already consumed or revoked are not copied, open ones are, and every link survives the
/// rebuild (the mailboxes' `invite_id`, the invites' `consumed_by`) — foreign-key actions must
/// not fire on the DROP of the old table.
#[test]
fn migration_4_drops_closed_invites_secrets_and_keeps_every_link() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.db");
    let key = DatabaseKey::generate().unwrap();
    let bob = ContactId::from_bytes([1; 16]);
    let (open, consumed, revoked) = (
        InviteId::from_bytes([3; 16]),
        InviteId::from_bytes([4; 16]),
        InviteId::from_bytes([5; 16]),
    );
    {
        let connection = version_3_database(&path, &key);
        connection
            .execute(
                "INSERT INTO contacts (id, display_name, identity_key, created_at, last_activity_at)
                 VALUES (?1, 'bob', x'0102', 5, 5)",
                params![bob],
            )
            .unwrap();
        for (invite, consumed_by, consumed_at, revoked_at) in [
            (open, None, None, None),
            (consumed, Some(bob), Some(6), None),
            (revoked, None, None, Some(7)),
        ] {
            connection
                .execute(
                    "INSERT INTO invites (id, one_time_prekey_secret, created_at, expires_at,
                     consumed_by, consumed_at, revoked_at) VALUES (?1, x'0707', 1, 1000, ?2, ?3, ?4)",
                    params![invite, consumed_by, consumed_at, revoked_at],
                )
                .unwrap();
        }
        connection
            .execute(
                "INSERT INTO own_mailboxes (id, contact_id, invite_id, relay_url, receive_id,
                 send_id, auth_secret_key, sealing_secret_key, created_at)
                 VALUES (?1, ?2, ?3, 'ws://127.0.0.1:7001', zeroblob(32), zeroblob(32), x'03', x'04', 5)",
                params![MailboxId::from_bytes([8; 16]), bob, consumed],
            )
            .unwrap();
    }
    let store = Store::open(&path, &key).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let secret = |id| store.invite(id).unwrap().unwrap().one_time_prekey_secret;
    assert!(secret(open).is_some());
    assert!(secret(consumed).is_none());
    assert!(secret(revoked).is_none());
    assert_eq!(
        store.invite(consumed).unwrap().unwrap().consumed_by,
        Some(bob)
    );
    let mailboxes = store.own_mailboxes_for_contact(bob).unwrap();
    assert_eq!(mailboxes.len(), 1);
    assert_eq!(mailboxes[0].invite, Some(consumed));
    let enforced: bool = store
        .connection_for_tests()
        .pragma_query_value(None, "foreign_keys", |row| row.get(0))
        .unwrap();
    assert!(
        enforced,
        "foreign keys are enforced again after the migration"
    );
    let strict: String = store
        .connection_for_tests()
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'invites'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(
        strict.contains("STRICT") && strict.contains("length(id) = 16"),
        "{strict}"
    );
}

/// Retired signed prekeys are deleted once retired before the cutoff; the current one and
/// those retired later are kept.
#[test]
fn retired_signed_prekeys_are_deleted_after_the_cutoff() {
    let mut f = fixture();
    for id in 1..=3u32 {
        f.store
            .insert_signed_prekey(
                id,
                &SignedPrekeySecretBytes::new(vec![id as u8; 32]),
                t(i64::from(id)),
            )
            .unwrap();
    }
    f.store.retire_signed_prekey(1, t(10)).unwrap();
    f.store.retire_signed_prekey(2, t(20)).unwrap();
    assert_eq!(
        f.store.delete_signed_prekeys_retired_before(t(15)).unwrap(),
        1
    );
    let ids: Vec<u32> = f
        .store
        .signed_prekeys()
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, vec![2, 3]);
    assert!(f.store.signed_prekey(1).unwrap().is_none());
    assert_eq!(f.store.current_signed_prekey().unwrap().unwrap().0, 3);
}

#[test]
fn blocked_contacts_get_nothing_sent() {
    let mut f = fixture();
    let carol = add_contact(&mut f.store, "carol");
    let message = f
        .store
        .insert_outgoing_message(carol.id, "hi", t(1))
        .unwrap();
    f.store
        .commit_sealed(&SealedOutgoing {
            contact: carol.id,
            message: Some(message.id),
            session_state: session("s1"),
            envelopes: vec![envelope(1, b"sealed")],
            now: t(2),
        })
        .unwrap();
    assert_eq!(f.store.due_outbox(t(2), 10).unwrap().len(), 1);
    f.store.set_contact_blocked(carol.id, true).unwrap();
    assert!(f.store.due_outbox(t(2), 10).unwrap().is_empty());
    assert!(matches!(
        f.store.insert_outgoing_message(carol.id, "no", t(3)),
        Err(StoreError::SendingBlocked { .. })
    ));
}

#[test]
fn commit_sealed_writes_state_and_envelopes_together_and_only_once() {
    let mut f = fixture();
    let bob = contact_with_session(&mut f.store, "bob", "s0");
    let message = f
        .store
        .insert_outgoing_message(bob.id, "hello", t(2))
        .unwrap();
    assert_eq!(
        f.store.messages_awaiting_seal().unwrap(),
        vec![message.clone()]
    );

    // Failure while writing the second relay's envelope: everything rolls back.
    fail_inserts_into(
        &f.store,
        "outbox",
        "WHEN NEW.relay_url = 'ws://127.0.0.1:7002'",
    );
    let sealed = SealedOutgoing {
        contact: bob.id,
        message: Some(message.id),
        session_state: session("s1"),
        envelopes: vec![envelope(1, b"sealed-1"), envelope(2, b"sealed-2")],
        now: t(3),
    };
    assert!(f.store.commit_sealed(&sealed).is_err());
    assert!(f.store.session_state(bob.id).unwrap().unwrap() == session("s0"));
    assert_eq!(count(&f.store, "outbox"), 0);
    assert_eq!(f.store.messages_awaiting_seal().unwrap().len(), 1);

    f.store
        .connection_for_tests()
        .execute_batch("DROP TRIGGER temp.fail_outbox")
        .unwrap();
    let items = f.store.commit_sealed(&sealed).unwrap();
    assert_eq!(items.len(), 2);
    assert!(f.store.session_state(bob.id).unwrap().unwrap() == session("s1"));
    assert!(f.store.messages_awaiting_seal().unwrap().is_empty());
    // The outbox holds exactly the sealed bytes, in seal order.
    let due = f.store.due_outbox(t(3), 10).unwrap();
    assert_eq!(due, items);
    assert_eq!(due[0].sealed.as_bytes(), b"sealed-1");

    // Seal once: a second seal of the same message is refused and changes nothing.
    let again = SealedOutgoing {
        session_state: session("s2"),
        ..sealed
    };
    assert!(matches!(
        f.store.commit_sealed(&again),
        Err(StoreError::Conflict { .. })
    ));
    assert!(f.store.session_state(bob.id).unwrap().unwrap() == session("s1"));
    assert_eq!(count(&f.store, "outbox"), 2);

    // Receipts and control plaintexts seal with no message.
    f.store
        .commit_sealed(&SealedOutgoing {
            contact: bob.id,
            message: None,
            session_state: session("s3"),
            envelopes: vec![envelope(1, b"receipt")],
            now: t(4),
        })
        .unwrap();
    assert_eq!(count(&f.store, "outbox"), 3);
    assert!(matches!(
        f.store.commit_sealed(&SealedOutgoing {
            contact: bob.id,
            message: None,
            session_state: session("s4"),
            envelopes: vec![],
            now: t(5),
        }),
        Err(StoreError::InvalidInput { .. })
    ));
}

#[test]
fn outbox_lifecycle_sets_message_states() {
    let mut f = fixture();
    let bob = add_contact(&mut f.store, "bob");
    let first = f
        .store
        .insert_outgoing_message(bob.id, "one", t(1))
        .unwrap();
    let second = f
        .store
        .insert_outgoing_message(bob.id, "two", t(1))
        .unwrap();
    assert_eq!(first.seq, seq(1));
    assert_eq!(second.seq, seq(2));
    let items = f
        .store
        .commit_sealed(&SealedOutgoing {
            contact: bob.id,
            message: Some(first.id),
            session_state: session("a"),
            envelopes: vec![envelope(1, b"1a"), envelope(2, b"1b")],
            now: t(2),
        })
        .unwrap();
    let second_items = f
        .store
        .commit_sealed(&SealedOutgoing {
            contact: bob.id,
            message: Some(second.id),
            session_state: session("b"),
            envelopes: vec![envelope(1, b"2a")],
            now: t(2),
        })
        .unwrap();

    // Backoff: a rescheduled item is not due until its time.
    assert_eq!(f.store.reschedule_outbox(items[0].id, t(100)).unwrap(), 1);
    assert_eq!(f.store.reschedule_outbox(items[0].id, t(200)).unwrap(), 2);
    assert_eq!(f.store.due_outbox(t(50), 10).unwrap().len(), 2);
    assert_eq!(f.store.next_outbox_attempt_at().unwrap(), Some(t(2)));

    // First relay OK → on relay; the other relay's copy still goes out.
    assert_eq!(
        f.store.mark_outbox_sent(items[1].id).unwrap(),
        Some(first.id)
    );
    assert_eq!(
        f.store.message(first.id).unwrap().unwrap().state,
        MessageState::OnRelay
    );
    assert_eq!(f.store.give_up_outbox(items[0].id).unwrap(), None);
    assert_eq!(
        f.store.message(first.id).unwrap().unwrap().state,
        MessageState::OnRelay
    );

    // Every relay gave up → failed.
    assert_eq!(
        f.store.give_up_outbox(second_items[0].id).unwrap(),
        Some(second.id)
    );
    assert_eq!(
        f.store.message(second.id).unwrap().unwrap().state,
        MessageState::Failed
    );
    assert!(matches!(
        f.store.mark_outbox_sent(second_items[0].id),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(count(&f.store, "outbox"), 0);
}

#[test]
fn commit_received_is_atomic_and_deduplicates() {
    let mut f = fixture();
    let bob = contact_with_session(&mut f.store, "bob", "r0");
    let received = received_message(bob.id, 1, "hi there", "r1");

    // Failure at the last step (the dedupe row): no message, no state, no unread.
    fail_inserts_into(&f.store, "seen_envelopes", "");
    assert!(f.store.commit_received(&received).is_err());
    assert_eq!(count(&f.store, "messages"), 0);
    assert!(f.store.session_state(bob.id).unwrap().unwrap() == session("r0"));
    assert!(
        !f.store
            .is_envelope_seen(bob.id, received.envelope_id)
            .unwrap()
    );
    assert_eq!(f.store.chat_list().unwrap()[0].unread_count, 0);
    f.store
        .connection_for_tests()
        .execute_batch("DROP TRIGGER temp.fail_seen_envelopes")
        .unwrap();

    let ReceiveOutcome::Stored(message) = f.store.commit_received(&received).unwrap() else {
        panic!("expected a stored message");
    };
    assert_eq!(message.body, "hi there");
    assert!(f.store.session_state(bob.id).unwrap().unwrap() == session("r1"));
    assert!(
        f.store
            .is_envelope_seen(bob.id, received.envelope_id)
            .unwrap()
    );

    // The same envelope again (a replay): reported, nothing written.
    let replay = Received {
        session_state: session("r-replayed"),
        ..received
    };
    assert_eq!(
        f.store.commit_received(&replay).unwrap(),
        ReceiveOutcome::Duplicate
    );
    assert_eq!(count(&f.store, "messages"), 1);
    assert!(f.store.session_state(bob.id).unwrap().unwrap() == session("r1"));

    // A new envelope that reuses the sequence number: refused, nothing written.
    let reused = received_message(bob.id, 1, "again", "r2");
    assert!(matches!(
        f.store.commit_received(&reused),
        Err(StoreError::Conflict { .. })
    ));
    assert!(f.store.session_state(bob.id).unwrap().unwrap() == session("r1"));
    assert!(
        !f.store
            .is_envelope_seen(bob.id, reused.envelope_id)
            .unwrap()
    );
}

#[test]
fn a_message_with_riding_receipts_stores_both_or_neither() {
    let mut f = fixture();
    let bob = add_contact(&mut f.store, "bob");
    let m1 = f.store.insert_outgoing_message(bob.id, "1", t(1)).unwrap();
    let with_receipts = |n: u64, body: &str, receipts: Vec<(ReceiptKind, u64)>| Received {
        contact: bob.id,
        envelope_id: EnvelopeId::random().unwrap(),
        session_state: session("w"),
        content: ReceivedContent::MessageWithReceipts {
            seq: seq(n),
            body: body.to_owned(),
            sent_at: t(100),
            receipts: receipts.into_iter().map(|(k, s)| (k, seq(s))).collect(),
        },
        received_at: t(200),
    };
    let outcome = f
        .store
        .commit_received(&with_receipts(
            1,
            "reply",
            vec![(ReceiptKind::Delivered, 1), (ReceiptKind::Delivered, 7)],
        ))
        .unwrap();
    let ReceiveOutcome::StoredWithReceipts { message, updated } = outcome else {
        panic!("expected a stored message with receipts, got {outcome:?}");
    };
    assert_eq!(message.body, "reply");
    assert_eq!(updated, vec![m1.id]);
    assert_eq!(
        f.store.message(m1.id).unwrap().unwrap().state,
        MessageState::Delivered
    );
    // A reused sequence number refuses the whole item: its receipts are not applied either.
    let reused = with_receipts(1, "again", vec![(ReceiptKind::Read, 1)]);
    assert!(matches!(
        f.store.commit_received(&reused),
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(
        f.store.message(m1.id).unwrap().unwrap().state,
        MessageState::Delivered
    );
    // Receipts that change nothing leave a plain stored message.
    assert!(matches!(
        f.store
            .commit_received(&with_receipts(2, "more", vec![(ReceiptKind::Delivered, 1)]))
            .unwrap(),
        ReceiveOutcome::Stored(_)
    ));
}

#[test]
fn receipts_only_move_states_forward() {
    let mut f = fixture();
    let bob = add_contact(&mut f.store, "bob");
    let m1 = f.store.insert_outgoing_message(bob.id, "1", t(1)).unwrap();
    let m2 = f.store.insert_outgoing_message(bob.id, "2", t(1)).unwrap();
    let receipt = |kind, seqs: Vec<u64>| Received {
        contact: bob.id,
        envelope_id: EnvelopeId::random().unwrap(),
        session_state: session("x"),
        content: ReceivedContent::Receipt {
            kind,
            seqs: seqs.into_iter().map(seq).collect(),
        },
        received_at: t(5),
    };
    assert_eq!(
        f.store
            .commit_received(&receipt(ReceiptKind::Read, vec![1]))
            .unwrap(),
        ReceiveOutcome::ReceiptApplied {
            updated: vec![m1.id]
        }
    );
    // A late delivery receipt must not move "read" back to "delivered".
    assert_eq!(
        f.store
            .commit_received(&receipt(ReceiptKind::Delivered, vec![1, 2, 99]))
            .unwrap(),
        ReceiveOutcome::ReceiptApplied {
            updated: vec![m2.id]
        }
    );
    assert_eq!(
        f.store.message(m1.id).unwrap().unwrap().state,
        MessageState::Read
    );
    assert_eq!(
        f.store.message(m2.id).unwrap().unwrap().state,
        MessageState::Delivered
    );
    assert_eq!(
        f.store
            .commit_received(&Received {
                content: ReceivedContent::SessionOnly,
                ..receipt(ReceiptKind::Read, vec![])
            })
            .unwrap(),
        ReceiveOutcome::SessionUpdated
    );
}

#[test]
fn sequence_numbers_follow_the_lamport_rule_and_paging_is_complete() {
    let mut f = fixture();
    let bob = add_contact(&mut f.store, "bob");
    // Interleave: the peer's numbers jump ahead, ours follow the highest seen; ties happen when
    // both sides write concurrently.
    let mut expected = Vec::new();
    for round in 0..12u64 {
        let mine = f
            .store
            .insert_outgoing_message(bob.id, &format!("out {round}"), t(1))
            .unwrap();
        expected.push(mine.position());
        // The peer sends with the same number we just used (concurrent write) every other round.
        let theirs = if round % 2 == 0 {
            mine.seq.get()
        } else {
            mine.seq.get() + 3
        };
        let ReceiveOutcome::Stored(message) = f
            .store
            .commit_received(&received_message(
                bob.id,
                theirs,
                &format!("in {round}"),
                "s",
            ))
            .unwrap()
        else {
            panic!("expected a stored message");
        };
        expected.push(message.position());
    }
    expected.sort();
    // Our numbers strictly increase; positions are unique.
    let mut dedup = expected.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), expected.len());

    for page_size in [1u32, 5, 7, 24, 100] {
        let mut pages = Vec::new();
        let mut before = None;
        loop {
            let page = f.store.messages_page(bob.id, before, page_size).unwrap();
            assert!(page.len() <= page_size as usize);
            assert!(page.windows(2).all(|w| w[0].position() < w[1].position()));
            if page.is_empty() {
                break;
            }
            before = Some(page[0].position());
            pages.insert(0, page);
        }
        let all: Vec<MessagePosition> = pages.into_iter().flatten().map(|m| m.position()).collect();
        assert_eq!(all, expected, "page size {page_size}");
    }
    let newest = f.store.messages_page(bob.id, None, 1).unwrap();
    assert_eq!(newest[0].position(), *expected.last().unwrap());
}

#[test]
fn chat_list_unread_counts_and_mark_read() {
    let mut f = fixture();
    let bob = add_contact(&mut f.store, "bob");
    let carol = add_contact(&mut f.store, "carol");
    for n in 1..=3 {
        f.store
            .commit_received(&received_message(bob.id, n, &format!("b{n}"), "s"))
            .unwrap();
    }
    f.store
        .commit_received(&Received {
            received_at: t(900),
            ..received_message(carol.id, 1, "c1", "s")
        })
        .unwrap();
    let list = f.store.chat_list().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].contact.id, carol.id, "most recent activity first");
    assert_eq!(list[0].unread_count, 1);
    assert_eq!(list[1].unread_count, 3);
    assert_eq!(list[1].last_message.as_ref().unwrap().body, "b3");

    let page = f.store.messages_page(bob.id, None, 10).unwrap();
    let read = f.store.mark_read(bob.id, page[1].position()).unwrap();
    assert_eq!(read, vec![seq(1), seq(2)]);
    assert!(
        f.store
            .mark_read(bob.id, page[1].position())
            .unwrap()
            .is_empty()
    );
    let list = f.store.chat_list().unwrap();
    assert_eq!(list[1].unread_count, 1);
    assert_eq!(
        f.store.message(page[0].id).unwrap().unwrap().state,
        MessageState::Read
    );
}

fn new_mailbox(owner: MailboxOwner, n: u8) -> NewOwnMailbox {
    NewOwnMailbox {
        owner,
        relay_url: relay(n),
        receive_id: ReceiveId([n; 32]),
        send_id: SendId([n + 100; 32]),
        auth_secret_key: MailboxAuthSecretBytes::new(vec![0xa0 + n; 32]),
        sealing_secret_key: SealingSecretBytes::new(vec![0xb0 + n; 32]),
        created_at: t(1),
    }
}

#[test]
fn invites_are_single_use_and_hand_their_mailboxes_to_the_contact() {
    let mut f = fixture();
    let invite = f
        .store
        .insert_invite(NewInvite {
            one_time_prekey_secret: OneTimePrekeySecretBytes::new(vec![7; 32]),
            created_at: t(1),
            expires_at: t(1000),
        })
        .unwrap();
    let mailbox = f
        .store
        .insert_own_mailbox(new_mailbox(MailboxOwner::Invite(invite.id), 1))
        .unwrap();
    assert!(matches!(
        f.store
            .insert_own_mailbox(new_mailbox(MailboxOwner::Invite(invite.id), 1)),
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(f.store.open_invites(t(2)).unwrap().len(), 1);
    assert!(f.store.open_invites(t(1000)).unwrap().is_empty());

    let bob = add_contact(&mut f.store, "bob");
    let secret_kept = |store: &Store| {
        let invite = store.invite(invite.id).unwrap().unwrap();
        invite.one_time_prekey_secret.is_some()
    };
    assert!(secret_kept(&f.store));
    f.store.consume_invite(invite.id, bob.id, t(3)).unwrap();
    assert!(
        !secret_kept(&f.store),
        "consuming deletes the one-time prekey secret (T7)"
    );
    let owned = f.store.own_mailboxes_for_contact(bob.id).unwrap();
    assert_eq!(owned.len(), 1);
    assert_eq!(owned[0].id, mailbox.id);
    let routed = f
        .store
        .own_mailbox_by_receive_id(&relay(1), &ReceiveId([1; 32]))
        .unwrap()
        .unwrap();
    assert_eq!(routed.contact, Some(bob.id));
    assert!(routed.sealing_secret_key == SealingSecretBytes::new(vec![0xb1; 32]));

    let eve = add_contact(&mut f.store, "eve");
    assert!(matches!(
        f.store.consume_invite(invite.id, eve.id, t(4)),
        Err(StoreError::InviteUnavailable {
            status: InviteStatus::Consumed
        })
    ));
    assert_eq!(
        f.store.invite(invite.id).unwrap().unwrap().consumed_by,
        Some(bob.id)
    );
}

#[test]
fn revoked_and_expired_invites_are_refused_and_revoking_queues_relay_deletes() {
    let mut f = fixture();
    let make = |store: &mut Store| {
        store
            .insert_invite(NewInvite {
                one_time_prekey_secret: OneTimePrekeySecretBytes::new(vec![1; 32]),
                created_at: t(1),
                expires_at: t(50),
            })
            .unwrap()
    };
    let revoked = make(&mut f.store);
    f.store
        .insert_own_mailbox(new_mailbox(MailboxOwner::Invite(revoked.id), 3))
        .unwrap();
    let queued = f.store.revoke_invite(revoked.id, t(2)).unwrap();
    assert!(
        f.store
            .invite(revoked.id)
            .unwrap()
            .unwrap()
            .one_time_prekey_secret
            .is_none(),
        "revoking deletes the one-time prekey secret"
    );
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].relay_url, relay(3));
    assert!(f.store.own_mailboxes().unwrap().is_empty());
    let bob = add_contact(&mut f.store, "bob");
    assert!(matches!(
        f.store.consume_invite(revoked.id, bob.id, t(3)),
        Err(StoreError::InviteUnavailable {
            status: InviteStatus::Revoked
        })
    ));
    let expired = make(&mut f.store);
    assert!(matches!(
        f.store.consume_invite(expired.id, bob.id, t(50)),
        Err(StoreError::InviteUnavailable {
            status: InviteStatus::Expired
        })
    ));
    assert_eq!(f.store.forget_expired_invite_secrets(t(49)).unwrap(), 0);
    assert_eq!(f.store.forget_expired_invite_secrets(t(50)).unwrap(), 1);
    assert!(
        f.store
            .invite(expired.id)
            .unwrap()
            .unwrap()
            .one_time_prekey_secret
            .is_none()
    );
    assert_eq!(f.store.pending_mailbox_deletions().unwrap().len(), 1);
    f.store
        .complete_mailbox_deletion(&relay(3), &ReceiveId([3; 32]))
        .unwrap();
    assert!(f.store.pending_mailbox_deletions().unwrap().is_empty());
}

#[test]
fn deleting_a_contact_removes_its_data_and_queues_relay_deletes() {
    let mut f = fixture();
    let bob = add_contact(&mut f.store, "bob");
    f.store
        .insert_own_mailbox(new_mailbox(MailboxOwner::Contact(bob.id), 1))
        .unwrap();
    f.store
        .insert_own_mailbox(new_mailbox(MailboxOwner::Contact(bob.id), 2))
        .unwrap();
    f.store
        .upsert_peer_address(&PeerAddress {
            contact: bob.id,
            relay_url: relay(1),
            send_id: SendId([1; 32]),
            send_secret: SendSecretBytes::new(vec![2]),
            sealing_public_key: SealingPublicKeyBytes::new(vec![3]),
            sender_auth_secret_key: SenderAuthSecretBytes::new(vec![4]),
            created_at: t(1),
        })
        .unwrap();
    assert_eq!(f.store.peer_addresses(bob.id).unwrap().len(), 1);
    let message = f
        .store
        .insert_outgoing_message(bob.id, "bye", t(2))
        .unwrap();
    f.store
        .commit_sealed(&SealedOutgoing {
            contact: bob.id,
            message: Some(message.id),
            session_state: session("s"),
            envelopes: vec![envelope(1, b"x")],
            now: t(3),
        })
        .unwrap();
    f.store
        .commit_received(&received_message(bob.id, 5, "hi", "s2"))
        .unwrap();

    let queued = f.store.delete_contact(bob.id, t(4)).unwrap();
    assert_eq!(queued.len(), 2);
    assert!(f.store.contact(bob.id).unwrap().is_none());
    for table in [
        "messages",
        "outbox",
        "sessions",
        "peer_addresses",
        "seen_envelopes",
        "own_mailboxes",
    ] {
        assert_eq!(count(&f.store, table), 0, "{table}");
    }
    assert_eq!(f.store.pending_mailbox_deletions().unwrap().len(), 2);
    assert!(matches!(
        f.store.delete_contact(bob.id, t(5)),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn signed_prekeys() {
    let mut f = fixture();
    assert!(f.store.current_signed_prekey().unwrap().is_none());
    f.store
        .insert_signed_prekey(7, &SignedPrekeySecretBytes::new(vec![7; 32]), t(1))
        .unwrap();
    f.store
        .insert_signed_prekey(u32::MAX, &SignedPrekeySecretBytes::new(vec![9; 32]), t(2))
        .unwrap();
    assert!(matches!(
        f.store
            .insert_signed_prekey(7, &SignedPrekeySecretBytes::new(vec![0; 32]), t(3)),
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(
        f.store.current_signed_prekey().unwrap().unwrap().0,
        u32::MAX
    );
    f.store.retire_signed_prekey(u32::MAX, t(4)).unwrap();
    assert_eq!(f.store.current_signed_prekey().unwrap().unwrap().0, 7);
    assert!(
        f.store.signed_prekey(u32::MAX).unwrap().unwrap()
            == SignedPrekeySecretBytes::new(vec![9; 32])
    );
}

#[test]
fn full_disk_is_typed_and_writes_nothing() {
    let mut f = fixture();
    let bob = contact_with_session(&mut f.store, "bob", "before");
    fill_the_disk(&f.store, 0);
    let big = "x".repeat(256 * 1024);
    let result = f
        .store
        .commit_received(&received_message(bob.id, 1, &big, "after"));
    assert!(matches!(result, Err(StoreError::DiskFull)), "{result:?}");
    assert_eq!(count(&f.store, "messages"), 0);
    assert_eq!(count(&f.store, "seen_envelopes"), 0);
    assert!(f.store.session_state(bob.id).unwrap().unwrap() == session("before"));
    // Small writes still fit afterwards: the store stays usable.
    f.store.set_setting("k", "v").unwrap();
}

#[test]
fn read_only_database_is_typed_and_writes_nothing() {
    let mut f = fixture();
    let bob = add_contact(&mut f.store, "bob");
    f.store
        .connection_for_tests()
        .pragma_update(None, "query_only", "ON")
        .unwrap();
    let result = f.store.insert_outgoing_message(bob.id, "nope", t(1));
    assert!(matches!(result, Err(StoreError::ReadOnly)), "{result:?}");
    f.store
        .connection_for_tests()
        .pragma_update(None, "query_only", "OFF")
        .unwrap();
    assert!(f.store.messages_page(bob.id, None, 10).unwrap().is_empty());
}

#[test]
fn read_only_file_is_typed() {
    let f = fixture();
    f.store.close().unwrap();
    let uri = format!("file:{}?mode=ro", f.path.display());
    let result = Store::open(Path::new(&uri), &f.key);
    // Opening read-only either fails at the WAL switch or on the first write; both are typed.
    match result {
        Err(StoreError::ReadOnly) => {}
        Ok(mut store) => assert!(matches!(
            store.set_setting("a", "b"),
            Err(StoreError::ReadOnly)
        )),
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn corrupt_rows_are_typed_errors_not_panics() {
    let f = fixture();
    f.store
        .connection_for_tests()
        .execute(
            "INSERT INTO contacts (id, display_name, identity_key, created_at, last_activity_at)
             VALUES (?1, 'x', x'01', 1, 1)",
            params![ContactId::from_bytes([1; 16])],
        )
        .unwrap();
    // The CHECK constraints keep most bad values out; a relay URL is only checked on read.
    f.store
        .connection_for_tests()
        .execute(
            "INSERT INTO peer_addresses (contact_id, relay_url, send_id, send_secret,
             sealing_public_key, sender_auth_secret_key, created_at)
             VALUES (?1, 'not a url', x'', x'', x'', x'', 1)",
            params![ContactId::from_bytes([1; 16])],
        )
        .unwrap();
    assert!(matches!(
        f.store.peer_addresses(ContactId::from_bytes([1; 16])),
        Err(StoreError::CorruptRow { .. })
    ));
}

#[test]
fn batches_commit_together_and_isolate_item_errors() {
    let mut f = fixture();
    let bob = add_contact(&mut f.store, "bob");
    let first = received_message(bob.id, 1, "one", "b1");
    let replay = Received {
        session_state: session("b-replay"),
        ..received_message(bob.id, 9, "replayed", "unused")
    };
    let replay = Received {
        envelope_id: first.envelope_id,
        ..replay
    };
    let reused_seq = received_message(bob.id, 1, "reuse", "b-reuse");
    let unknown_contact = received_message(ContactId::from_bytes([3; 16]), 2, "who", "x");
    let last = received_message(bob.id, 2, "two", "b2");
    let results = f
        .store
        .commit_received_batch(&[first, replay, reused_seq, unknown_contact, last])
        .unwrap();
    assert!(matches!(results[0], Ok(ReceiveOutcome::Stored(_))));
    assert!(matches!(results[1], Ok(ReceiveOutcome::Duplicate)));
    assert!(matches!(results[2], Err(StoreError::Conflict { .. })));
    assert!(matches!(results[3], Err(StoreError::NotFound { .. })));
    assert!(matches!(results[4], Ok(ReceiveOutcome::Stored(_))));
    assert_eq!(count(&f.store, "messages"), 2);
    assert_eq!(count(&f.store, "seen_envelopes"), 2);
    assert!(f.store.session_state(bob.id).unwrap().unwrap() == session("b2"));

    let m1 = f.store.insert_outgoing_message(bob.id, "a", t(1)).unwrap();
    let m2 = f.store.insert_outgoing_message(bob.id, "b", t(1)).unwrap();
    let seal = |message, state: &str| SealedOutgoing {
        contact: bob.id,
        message: Some(message),
        session_state: session(state),
        envelopes: vec![envelope(1, state.as_bytes())],
        now: t(2),
    };
    let results = f
        .store
        .commit_sealed_batch(&[
            seal(m1.id, "s1"),
            seal(m1.id, "s1-again"),
            seal(m2.id, "s2"),
        ])
        .unwrap();
    assert!(results[0].is_ok());
    assert!(matches!(results[1], Err(StoreError::Conflict { .. })));
    assert!(results[2].is_ok());
    assert_eq!(count(&f.store, "outbox"), 2);
    assert!(f.store.session_state(bob.id).unwrap().unwrap() == session("s2"));
}

#[test]
fn a_storage_failure_rolls_back_the_whole_batch() {
    let mut f = fixture();
    let bob = add_contact(&mut f.store, "bob");
    fill_the_disk(&f.store, 4);
    let big = "y".repeat(64 * 1024);
    let batch: Vec<Received> = (1..=8)
        .map(|n| received_message(bob.id, n, &big, "s"))
        .collect();
    let result = f.store.commit_received_batch(&batch);
    assert!(matches!(result, Err(StoreError::DiskFull)), "{result:?}");
    assert_eq!(count(&f.store, "messages"), 0);
    assert_eq!(count(&f.store, "seen_envelopes"), 0);
    assert!(f.store.session_state(bob.id).unwrap().is_none());
}

#[test]
fn store_can_move_to_a_blocking_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Store>();
    assert_send::<StoreError>();
    let f = fixture();
    let handle = std::thread::spawn(move || f.store.schema_version().unwrap());
    assert_eq!(handle.join().unwrap(), SCHEMA_VERSION);
}

#[test]
fn contact_edits_and_dedupe_pruning() {
    let mut f = fixture();
    let bob = add_contact(&mut f.store, "bob");
    let alice = add_contact(&mut f.store, "alice");
    f.store.rename_contact(bob.id, "Bobby").unwrap();
    f.store
        .set_peer_signed_prekey(bob.id, &SignedPrekeyBytes::new(vec![5; 100]))
        .unwrap();
    let names: Vec<String> = f
        .store
        .contacts()
        .unwrap()
        .into_iter()
        .map(|c| c.display_name)
        .collect();
    assert_eq!(names, vec!["alice".to_owned(), "Bobby".to_owned()]);
    assert_eq!(
        f.store.contact(bob.id).unwrap().unwrap().peer_signed_prekey,
        Some(SignedPrekeyBytes::new(vec![5; 100]))
    );
    assert!(matches!(
        f.store.rename_contact(ContactId::from_bytes([0; 16]), "x"),
        Err(StoreError::NotFound { .. })
    ));

    let old = Received {
        received_at: t(1_000),
        ..received_message(bob.id, 1, "old", "s")
    };
    let new = Received {
        received_at: t(5_000),
        ..received_message(alice.id, 1, "new", "s")
    };
    f.store.commit_received(&old).unwrap();
    f.store.commit_received(&new).unwrap();
    assert_eq!(f.store.prune_seen_envelopes(t(2_000)).unwrap(), 1);
    assert!(!f.store.is_envelope_seen(bob.id, old.envelope_id).unwrap());
    assert!(f.store.is_envelope_seen(alice.id, new.envelope_id).unwrap());
}

#[test]
fn insert_and_seal_outgoing_is_one_transaction() {
    let mut f = fixture();
    let bob = contact_with_session(&mut f.store, "bob", "s0");

    // The seal sees the uncommitted message; the whole send lands at once.
    let (message, items) = f
        .store
        .insert_and_seal_outgoing::<StoreError, _>(bob.id, "hello", t(2), |store, message| {
            assert_eq!(store.message(message.id).unwrap().as_ref(), Some(message));
            Ok(SealedOutgoing {
                contact: bob.id,
                message: Some(message.id),
                session_state: session("s1"),
                envelopes: vec![envelope(1, b"sealed-1"), envelope(2, b"sealed-2")],
                now: t(2),
            })
        })
        .unwrap();
    assert_eq!(message.seq, seq(1));
    assert_eq!(items.len(), 2);
    assert!(f.store.session_state(bob.id).unwrap().unwrap() == session("s1"));
    assert!(f.store.messages_awaiting_seal().unwrap().is_empty());
    assert_eq!(f.store.due_outbox(t(2), 10).unwrap(), items);

    // A failing seal rolls back the message too: nothing of this send remains.
    let refused =
        f.store
            .insert_and_seal_outgoing::<StoreError, _>(bob.id, "lost", t(3), |_, _| {
                Err(StoreError::InvalidInput { what: "test" })
            });
    assert!(matches!(refused, Err(StoreError::InvalidInput { .. })));
    // A store failure inside (the second relay's envelope) rolls everything back too.
    fail_inserts_into(
        &f.store,
        "outbox",
        "WHEN NEW.relay_url = 'ws://127.0.0.1:7002'",
    );
    let failed = f.store.insert_and_seal_outgoing::<StoreError, _>(
        bob.id,
        "lost too",
        t(4),
        |_, message| {
            Ok(SealedOutgoing {
                contact: bob.id,
                message: Some(message.id),
                session_state: session("s2"),
                envelopes: vec![envelope(1, b"x"), envelope(2, b"y")],
                now: t(4),
            })
        },
    );
    assert!(failed.is_err());
    assert_eq!(count(&f.store, "messages"), 1);
    assert_eq!(count(&f.store, "outbox"), 2);
    assert!(f.store.session_state(bob.id).unwrap().unwrap() == session("s1"));
    // Still usable: the next send gets the next sequence number.
    f.store
        .connection_for_tests()
        .execute_batch("DROP TRIGGER temp.fail_outbox")
        .unwrap();
    let (next, _) = f
        .store
        .insert_and_seal_outgoing::<StoreError, _>(bob.id, "next", t(5), |_, message| {
            Ok(SealedOutgoing {
                contact: bob.id,
                message: Some(message.id),
                session_state: session("s3"),
                envelopes: vec![envelope(1, b"z")],
                now: t(5),
            })
        })
        .unwrap();
    assert_eq!(next.seq, seq(2));
    // Blocked sending is refused before any seal.
    f.store.set_contact_blocked(bob.id, true).unwrap();
    let blocked = f
        .store
        .insert_and_seal_outgoing::<StoreError, _>(bob.id, "no", t(6), |_, _| {
            panic!("sealed for a blocked contact")
        });
    assert!(matches!(blocked, Err(StoreError::SendingBlocked { .. })));
}

#[test]
fn mark_outbox_sent_batch_moves_each_message_once() {
    let mut f = fixture();
    let bob = contact_with_session(&mut f.store, "bob", "s0");
    let mut items = Vec::new();
    let mut messages = Vec::new();
    for n in 0..3u8 {
        let (message, sealed) = f
            .store
            .insert_and_seal_outgoing::<StoreError, _>(bob.id, "m", t(2), |_, message| {
                Ok(SealedOutgoing {
                    contact: bob.id,
                    message: Some(message.id),
                    session_state: session("s"),
                    envelopes: vec![envelope(1, &[n]), envelope(2, &[n])],
                    now: t(2),
                })
            })
            .unwrap();
        messages.push(message.id);
        items.extend(sealed);
    }
    // Both relays' items of message 0, one of message 1; an unknown id is skipped.
    let gone = items[0].id;
    let ids = [items[0].id, items[1].id, items[2].id, gone];
    let changed = f.store.mark_outbox_sent_batch(&ids).unwrap();
    assert_eq!(changed, vec![messages[0], messages[1]]);
    assert_eq!(count(&f.store, "outbox"), 3);
    assert_eq!(
        f.store.message(messages[0]).unwrap().unwrap().state,
        MessageState::OnRelay
    );
    assert_eq!(
        f.store.message(messages[2]).unwrap().unwrap().state,
        MessageState::Queued
    );
}

#[test]
fn transaction_commits_every_write_together_or_none() {
    let mut f = fixture();
    // Err: nothing of it stays.
    let failed: Result<(), StoreError> = f.store.transaction(|store| {
        let bob = add_contact(store, "bob");
        store.save_session_state(bob.id, &session("s0"), t(1))?;
        Err(StoreError::InvalidInput { what: "test" })
    });
    assert!(failed.is_err());
    assert_eq!(count(&f.store, "contacts"), 0);
    assert_eq!(count(&f.store, "sessions"), 0);

    // Ok: all of it; a write refused inside rolls back alone and the rest goes on.
    let bob = f
        .store
        .transaction(|store| -> Result<Contact, StoreError> {
            let bob = add_contact(store, "bob");
            let duplicate = store.insert_contact(&NewContact {
                display_name: "again".to_owned(),
                identity_key: IdentityKeyBytes::new(b"ik-of-bob".to_vec()),
                created_at: t(1),
            });
            assert!(duplicate.is_err());
            store.save_session_state(bob.id, &session("s0"), t(1))?;
            // Nested: joins the outer transaction.
            store.transaction(|store| store.set_setting("k", "v"))?;
            Ok(bob)
        })
        .unwrap();
    assert_eq!(count(&f.store, "contacts"), 1);
    assert!(f.store.session_state(bob.id).unwrap().unwrap() == session("s0"));
    assert_eq!(f.store.setting("k").unwrap().as_deref(), Some("v"));
    // Writes outside a transaction work as before.
    f.store.set_setting("k", "w").unwrap();
    assert_eq!(f.store.setting("k").unwrap().as_deref(), Some("w"));
}

/// Version 11 rebuilds `attachments` so that an attachment belongs to a contact or a group: a
/// 1:1 attachment of version 9 keeps every column and its link to its message, and a group's
/// attachment can then be stored, linked once to its group message and listed with its group.
#[test]
fn migration_11_keeps_attachments_and_adds_group_attachments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v9.db");
    let key = DatabaseKey::generate().unwrap();
    let contact = ContactId::from_bytes([3; 16]);
    let attachment = AttachmentId::from_bytes([4; 16]);
    {
        let mut connection = Connection::open(&path).unwrap();
        apply_key(&connection, &key).unwrap();
        connection
            .pragma_update(None, "foreign_keys", true)
            .unwrap();
        schema::migrate_to(&mut connection, 9).unwrap();
        connection
            .execute(
                "INSERT INTO contacts (id, display_name, identity_key, created_at,
                 last_activity_at) VALUES (?1, 'c', ?2, 5, 5)",
                params![contact, vec![7u8; 64]],
            )
            .unwrap();
        connection
            .execute(
                "INSERT INTO attachments (id, direction, contact_id, file_name, media_type, size,
                 inline_bytes, chunks, state, created_at)
                 VALUES (?1, 0, ?2, 'a.txt', 'text/plain', 3, x'616263', 0, 2, 9)",
                params![attachment, contact],
            )
            .unwrap();
    }
    let mut store = Store::open(&path, &key).unwrap();
    let kept = store.attachment(attachment).unwrap().unwrap();
    assert_eq!(kept.chat, AttachmentChat::Contact(contact));
    assert_eq!(kept.file_name, "a.txt");
    assert_eq!(
        kept.inline_bytes.as_deref().map(Vec::as_slice),
        Some(&b"abc"[..])
    );
    assert_eq!(store.attachments_of_contact(contact).unwrap().len(), 1);

    let me = crate::group::MemberKey::from_bytes([8; 64]);
    let group = crate::group::GroupId::from_bytes([5; 16]);
    let replica = crate::group::GroupReplica::new(
        crate::group::RosterState::genesis(me, "g", "", &[]).unwrap(),
    );
    store.insert_group(group, &replica, t(5)).unwrap();
    let mut row = kept.clone();
    row.id = AttachmentId::from_bytes([6; 16]);
    row.chat = AttachmentChat::Group(group);
    row.direction = Direction::Outgoing;
    store.insert_attachment(&row).unwrap();
    let message = store
        .insert_outgoing_group_text(group, me, "a.txt", &[], t(6))
        .unwrap();
    store
        .link_attachment_group_message(row.id, message.id)
        .unwrap();
    assert!(
        store
            .link_attachment_group_message(row.id, message.id)
            .is_err(),
        "linked once"
    );
    let listed = store.attachments_of_group(group).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].message, Some(message.id));
    assert_eq!(
        store
            .attachment_of_group_message(message.id)
            .unwrap()
            .map(|a| a.id),
        Some(row.id)
    );
    assert_eq!(store.attachments_of_contact(contact).unwrap().len(), 1);
    // The group's attachment goes with the group.
    store.delete_group(group).unwrap();
    assert!(store.attachment(row.id).unwrap().is_none());
    assert!(store.attachment(attachment).unwrap().is_some());
}
