//! Schema migrations: an ordered list of SQL scripts, tracked in `PRAGMA user_version`.
//!
//! Migration `n` (1-based) brings the schema from version `n - 1` to `n`. Each one runs in its own
//! `BEGIN IMMEDIATE` transaction together with the `user_version` bump, so a crash leaves the
//! database at a whole version. A database newer than this build is refused
//! ([`StoreError::SchemaTooNew`]) rather than written to.
//!
//! `rusqlite_migration` does the same, but its current release pins rusqlite 0.40 while the
//! workspace is on 0.43 (two `libsqlite3-sys` cannot link), so the loop lives here; it is short.
//!
//! Design rules of the tables:
//! - Every table is `STRICT`; ids are random 16-byte BLOBs (`CHECK (length(id) = 16)`), so row
//!   order is never inferable from an id. Only the outbox keeps a rowid, as a local FIFO order.
//! - Secrets (mailbox keys, prekey secrets, session state) live here because SQLCipher encrypts
//!   the whole file with the keychain key; nothing in these tables is ever written elsewhere.
//! - Foreign keys are enforced (`PRAGMA foreign_keys = ON` at open).

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::StoreError;

/// Version 1: the round-1 schema.
const V1: &str = r#"
CREATE TABLE profile (
    singleton INTEGER PRIMARY KEY NOT NULL CHECK (singleton = 1),
    display_name TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE settings (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- One row per contact; in round 1 a contact is also its 1:1 conversation (last_seq, unread_count).
CREATE TABLE contacts (
    id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    display_name TEXT NOT NULL,
    identity_key BLOB NOT NULL UNIQUE,
    verified INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1)),
    -- T8: a different identity key arrived on this contact's mailbox; held until the user decides.
    pending_identity_key BLOB,
    key_changed_at INTEGER,
    blocked INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
    peer_signed_prekey BLOB,
    created_at INTEGER NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    unread_count INTEGER NOT NULL DEFAULT 0 CHECK (unread_count >= 0),
    last_activity_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE invites (
    id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    one_time_prekey_secret BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    consumed_by BLOB REFERENCES contacts(id) ON DELETE SET NULL,
    consumed_at INTEGER,
    revoked_at INTEGER
) STRICT, WITHOUT ROWID;

-- Our own receive mailboxes: one per contact per relay, created for an invite first.
CREATE TABLE own_mailboxes (
    id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    contact_id BLOB REFERENCES contacts(id) ON DELETE CASCADE,
    invite_id BLOB REFERENCES invites(id) ON DELETE SET NULL,
    relay_url TEXT NOT NULL,
    receive_id BLOB NOT NULL,
    send_id BLOB NOT NULL,
    auth_secret_key BLOB NOT NULL,
    sealing_secret_key BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (relay_url, receive_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX own_mailboxes_contact ON own_mailboxes (contact_id);
CREATE INDEX own_mailboxes_invite ON own_mailboxes (invite_id);

-- Where we send to a contact: their mailbox on each relay (§3a rule 10).
CREATE TABLE peer_addresses (
    contact_id BLOB NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    relay_url TEXT NOT NULL,
    send_id BLOB NOT NULL,
    send_secret BLOB NOT NULL,
    sealing_public_key BLOB NOT NULL,
    sender_auth_secret_key BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (contact_id, relay_url)
) STRICT, WITHOUT ROWID;

CREATE TABLE signed_prekeys (
    key_id INTEGER PRIMARY KEY NOT NULL CHECK (key_id BETWEEN 0 AND 4294967295),
    secret BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
) STRICT;

CREATE TABLE sessions (
    contact_id BLOB PRIMARY KEY NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    state BLOB NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- direction: 0 incoming, 1 outgoing. state: 0 queued, 1 on_relay, 2 delivered, 3 read, 4 failed,
-- 5 received. (seq, direction) is unique per conversation and is the display order.
CREATE TABLE messages (
    id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    contact_id BLOB NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    direction INTEGER NOT NULL CHECK (direction IN (0, 1)),
    seq INTEGER NOT NULL CHECK (seq >= 1),
    body TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    received_at INTEGER,
    state INTEGER NOT NULL CHECK (state BETWEEN 0 AND 5),
    -- Outgoing: when commit_sealed wrote its envelopes. Set once; a sealed message is never re-sealed.
    sealed_at INTEGER,
    UNIQUE (contact_id, seq, direction)
) STRICT, WITHOUT ROWID;

-- Sealed envelopes waiting for a relay's OK. Written in the same transaction as the advanced
-- session state (§3a rule 1); resent byte for byte, never re-sealed. The rowid is local FIFO order.
CREATE TABLE outbox (
    id BLOB NOT NULL UNIQUE CHECK (length(id) = 16),
    contact_id BLOB NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    message_id BLOB REFERENCES messages(id) ON DELETE CASCADE,
    relay_url TEXT NOT NULL,
    send_id BLOB NOT NULL,
    sealed BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX outbox_due ON outbox (next_attempt_at);
CREATE INDEX outbox_message ON outbox (message_id);

-- Envelope ids already opened, per contact; recorded only after a successful open (§3a rule 6).
CREATE TABLE seen_envelopes (
    contact_id BLOB NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    envelope_id BLOB NOT NULL CHECK (length(envelope_id) = 16),
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (contact_id, envelope_id)
) STRICT, WITHOUT ROWID;
"#;

/// Version 2: the relay deletion queue (`docs/engine.md` § Blocking and deleting a contact) and
/// pruning of old dedupe rows.
///
/// Deleting a contact or revoking an invite must DELETE its mailboxes on every relay, which may
/// be offline. The mailbox's relay, receive id and auth key move here in the same transaction as
/// the local delete, and the engine drains the queue when it can reach each relay.
const V2: &str = r#"
CREATE TABLE mailbox_deletions (
    relay_url TEXT NOT NULL,
    receive_id BLOB NOT NULL,
    auth_secret_key BLOB NOT NULL,
    queued_at INTEGER NOT NULL,
    PRIMARY KEY (relay_url, receive_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX seen_envelopes_age ON seen_envelopes (seen_at);
"#;

/// Version 3: a partial index for the start-up question "which outgoing messages were stored but
/// never sealed?" (asked on every open). Without it that question scans every message: 1.6 s on a
/// 100k-message profile, most of the app's cold start. The index holds only such messages, so it
/// stays tiny.
const V3: &str = r#"
CREATE INDEX messages_awaiting_seal ON messages (contact_id, seq)
    WHERE direction = 1 AND state = 0 AND sealed_at IS NULL;
"#;

/// Version 4: a held key change keeps its session in a typed column of its contact (T8,
/// `docs/engine.md` § Key change), written in the same transaction as the held key; and an
/// invite's one-time prekey secret can be deleted (T7, below).
///
/// Before, the held session was a hex string in `settings` (`engine.pending-session.<contact>`),
/// written in a separate transaction: a crash in between left a held key with no session, and
/// corrupt hex silently became an empty state. Those rows move into the column here (hex that
/// does not decode becomes NULL: accepting that change is then refused, rejecting still works)
/// and are deleted.
const V4: &str = r#"
ALTER TABLE contacts ADD COLUMN pending_session_state BLOB
    CHECK (pending_session_state IS NULL OR pending_identity_key IS NOT NULL);
UPDATE contacts SET pending_session_state = (
    SELECT unhex(value) FROM settings
    WHERE key = 'engine.pending-session.' || lower(hex(contacts.id)) AND value != ''
) WHERE pending_identity_key IS NOT NULL;
DELETE FROM settings WHERE key LIKE 'engine.pending-session.%';

-- Forward secrecy in storage (T7, docs/crypto.md § What is kept how long): an invite's one-time
-- prekey secret is deleted when the invite is consumed or revoked (or after it expired), so the
-- column becomes nullable. SQLite cannot drop NOT NULL in place: rebuild the table with every
-- other constraint as it was (migrate_to turns foreign keys off around the rebuild and checks
-- them before committing). Secrets of invites already closed are not copied.
CREATE TABLE invites_v4 (
    id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    -- NULL once the invite is consumed, revoked or expired.
    one_time_prekey_secret BLOB,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    consumed_by BLOB REFERENCES contacts(id) ON DELETE SET NULL,
    consumed_at INTEGER,
    revoked_at INTEGER
) STRICT, WITHOUT ROWID;
INSERT INTO invites_v4 (id, one_time_prekey_secret, created_at, expires_at, consumed_by,
                        consumed_at, revoked_at)
    SELECT id,
           CASE WHEN consumed_at IS NULL AND revoked_at IS NULL THEN one_time_prekey_secret END,
           created_at, expires_at, consumed_by, consumed_at, revoked_at
    FROM invites;
DROP TABLE invites;
ALTER TABLE invites_v4 RENAME TO invites;
"#;

/// Version 5: SECUREs not yet done. The peer's sender key for one of our mailboxes is kept on
/// the mailbox until its relay answers the SECURE (OK, or already secured, or gone), so a
/// SECURE that met a relay down is retried, across restarts (`docs/engine.md` § SECURE).
const V5: &str = r#"
ALTER TABLE own_mailboxes ADD COLUMN pending_sender_key BLOB;
"#;

/// Version 6: groups (`docs/engine.md` § Groups) as pairwise fan-out over the 1:1 sessions.
///
/// - `groups`: one row per group; `replica` is the roster CRDT with anything held
///   (`group::GroupReplica`, CBOR); name and description are copies of its name register, for
///   lists. `last_seq` is the group's Lamport clock over its messages.
/// - `group_members`: the effective members with their role, rewritten with the replica. A member
///   is an identity key; its delivery addresses are those of the contact with that key (none yet:
///   awaiting its introduction).
/// - `group_messages`: texts (kind 0) and roster-change system lines (kind 1). The author is the
///   peer of the session a message arrived on (ours for outgoing). (group, author, kind, seq) is
///   unique: a copy that arrives twice is stored once.
/// - `group_copies`: per member, the state of one of our group messages (queued, on relay,
///   delivered, read, failed), for "delivered to 3 of 4".
/// - `outbox.group_message_id`: the group message an envelope carries; when the relay's OK
///   deletes the row, a trigger moves that member's copy to on relay.
const V6: &str = r#"
CREATE TABLE groups (
    id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    replica BLOB NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    unread_count INTEGER NOT NULL DEFAULT 0 CHECK (unread_count >= 0),
    created_at INTEGER NOT NULL,
    last_activity_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- role: 0 member, 1 admin.
CREATE TABLE group_members (
    group_id BLOB NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    identity_key BLOB NOT NULL CHECK (length(identity_key) = 64),
    role INTEGER NOT NULL CHECK (role IN (0, 1)),
    PRIMARY KEY (group_id, identity_key)
) STRICT, WITHOUT ROWID;
CREATE INDEX group_members_key ON group_members (identity_key);

-- direction: 0 incoming, 1 outgoing. kind: 0 text, 1 roster change. state as in messages.
CREATE TABLE group_messages (
    id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    group_id BLOB NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    author_key BLOB NOT NULL CHECK (length(author_key) = 64),
    direction INTEGER NOT NULL CHECK (direction IN (0, 1)),
    kind INTEGER NOT NULL CHECK (kind IN (0, 1)),
    seq INTEGER NOT NULL CHECK (seq >= 1),
    body TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    received_at INTEGER,
    state INTEGER NOT NULL CHECK (state BETWEEN 0 AND 5),
    UNIQUE (group_id, author_key, kind, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX group_messages_order ON group_messages (group_id, seq);

-- state: 0 queued, 1 on relay, 2 delivered, 3 read, 4 failed.
CREATE TABLE group_copies (
    message_id BLOB NOT NULL REFERENCES group_messages(id) ON DELETE CASCADE,
    member_key BLOB NOT NULL CHECK (length(member_key) = 64),
    state INTEGER NOT NULL CHECK (state BETWEEN 0 AND 4),
    PRIMARY KEY (message_id, member_key)
) STRICT, WITHOUT ROWID;

ALTER TABLE outbox ADD COLUMN group_message_id BLOB REFERENCES group_messages(id) ON DELETE CASCADE;
CREATE INDEX outbox_group_message ON outbox (group_message_id);

CREATE TRIGGER group_copy_on_relay AFTER DELETE ON outbox
WHEN OLD.group_message_id IS NOT NULL
BEGIN
    UPDATE group_copies SET state = 1
    WHERE message_id = OLD.group_message_id AND state = 0
      AND member_key = (SELECT identity_key FROM contacts WHERE id = OLD.contact_id);
END;
"#;

/// Version 7: full-text search of message text (`store/search.rs`, `docs/engine.md` § Search).
///
/// A contentless FTS5 table (tokens only, no second copy of the text) with FTS5's
/// `secure-delete` on: a message is removed with the FTS5 `delete` command and its own tokens,
/// which takes them out of the index pages at once (a `contentless_delete` table would only add a
/// tombstone and keep the words on disk until a merge). `search_documents` maps the FTS rowid to
/// the message; a message still in it cannot be deleted (the trigger below), so no deletion path
/// can leave its words behind: `search::unindex_contact_in` runs first. Messages already stored
/// are listed in `search_backlog` and indexed in the background (CJK text needs Rust to split
/// it, which SQL cannot do).
const V7: &str = r#"
CREATE VIRTUAL TABLE message_search USING fts5(
    body, content = '', tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO message_search (message_search, rank) VALUES ('secure-delete', 1);
-- rowid: the message's local time << 20 | n (newest first = descending rowid).
CREATE TABLE search_documents (
    rowid INTEGER PRIMARY KEY NOT NULL,
    message_id BLOB NOT NULL UNIQUE REFERENCES messages(id)
) STRICT;
CREATE TRIGGER messages_leave_the_search_index_first BEFORE DELETE ON messages
WHEN EXISTS (SELECT 1 FROM search_documents WHERE message_id = old.id) BEGIN
    SELECT RAISE(ABORT, 'a message must leave the search index before it is deleted');
END;
CREATE TABLE search_backlog (
    message_id BLOB PRIMARY KEY NOT NULL REFERENCES messages(id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
INSERT INTO search_backlog (message_id) SELECT id FROM messages;
"#;

/// Version 8: disappearing messages (`store/expiry.rs`, `docs/engine.md` § Disappearing
/// messages).
///
/// - `messages.expire_after_s`: the timer a message was sent with (NULL: none);
///   `messages.expires_at`: when it expires by our clock (sent or stored, plus the timer); a
///   partial index finds the expired ones without scanning history.
/// - `messages.timer_change`: set on a system line "the timer was set to N seconds" (0 = off);
///   such a row has an empty body.
/// - `chat_timers`: per chat, the timer and the sequence number of the change that set it.
///
/// And search speed (`docs/benchmarks.md` § Search): the FTS5 table is made again with prefix
/// indexes of 2 and 3 characters, so the as-you-type prefix of a query's last word reads one
/// doclist newest first and stops after a page, instead of merging the doclists of every word
/// it starts. Every message goes back into `search_backlog` and is indexed again in the
/// background (the old pages are zeroed by `secure_delete` as the table is dropped).
const V8: &str = r#"
DROP TABLE message_search;
CREATE VIRTUAL TABLE message_search USING fts5(
    body, content = '', tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
);
INSERT INTO message_search (message_search, rank) VALUES ('secure-delete', 1);
DELETE FROM search_documents;
INSERT INTO search_backlog (message_id) SELECT id FROM messages WHERE true ON CONFLICT DO NOTHING;
ALTER TABLE messages ADD COLUMN expire_after_s INTEGER CHECK (expire_after_s IS NULL OR expire_after_s > 0);
ALTER TABLE messages ADD COLUMN expires_at INTEGER
    CHECK ((expires_at IS NULL) = (expire_after_s IS NULL));
ALTER TABLE messages ADD COLUMN timer_change INTEGER CHECK (timer_change IS NULL OR timer_change >= 0);
CREATE INDEX messages_expiry ON messages (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE chat_timers (
    contact_id BLOB PRIMARY KEY NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    seconds INTEGER NOT NULL CHECK (seconds >= 0),
    seq INTEGER NOT NULL CHECK (seq >= 1)
) STRICT, WITHOUT ROWID;
"#;

/// Version 9: attachments (`store/attachments.rs`,
/// `docs/engine.md` § Attachments). One row per file sent or received. The file's bytes never lie
/// here in the clear outside SQLCipher: a blob's chunks are files of STREAM ciphertext under the
/// profile's `attachments/<id>/`, their key is in this row; a small file rides inline and its
/// bytes are in this row. `state`: 0 offered (received, not fetched), 1 transferring, 2 complete,
/// 3 failed (`error` says why), 4 cancelled. `done_chunks` is how far an upload or download got,
/// so it resumes at that chunk after a restart.
const V9: &str = r#"
CREATE TABLE attachments (
    id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    direction INTEGER NOT NULL CHECK (direction IN (0, 1)),
    contact_id BLOB NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    message_id BLOB UNIQUE REFERENCES messages(id) ON DELETE CASCADE,
    file_name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL CHECK (size >= 0),
    thumbnail BLOB,
    inline_bytes BLOB,
    relay_url TEXT,
    -- Incoming: our download grant. Outgoing: the upload token, once the blob exists.
    capability BLOB,
    -- Outgoing: the download grants made for the recipients (CBOR list), once the blob exists.
    grants BLOB,
    file_key BLOB,
    commitment BLOB,
    digest BLOB,
    chunks INTEGER NOT NULL CHECK (chunks >= 0),
    done_chunks INTEGER NOT NULL DEFAULT 0 CHECK (done_chunks >= 0),
    state INTEGER NOT NULL CHECK (state BETWEEN 0 AND 4),
    error TEXT,
    created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX attachments_contact ON attachments (contact_id);
CREATE INDEX attachments_state ON attachments (state);
"#;

/// Version 10: search covers groups (`store/search.rs`, `docs/engine.md` § Search), and group
/// messages can disappear (`docs/engine.md` § Disappearing messages).
///
/// - `search_documents` is rebuilt (same rowids, so the FTS5 table is untouched): a document is
///   now exactly one of a 1:1 message, a group message (`group_message_id`) or a group
///   (`group_id`: its name). Like messages, a group message or a group still in the index cannot
///   be deleted (the triggers), so deleting a group or expiring a group message must unindex
///   first or fail.
/// - The group texts and group names already stored are listed in two backlogs and indexed in
///   the background with the 1:1 backlog (`Store::index_search_backlog`), as V7 and V8 did.
/// - `group_messages.expire_after_s` / `expires_at`: the timer a group text was sent with and
///   when it expires by our clock (as for `messages`, V8); `timer_change` marks a system line
///   "the group's timer was set to N seconds" (0 = off). The group's timer itself is a register
///   of the roster replica (`group/roster.rs`), so it needs no table.
const V10: &str = r#"
DROP TRIGGER messages_leave_the_search_index_first;
CREATE TABLE search_documents_v10 (
    rowid INTEGER PRIMARY KEY NOT NULL,
    message_id BLOB UNIQUE REFERENCES messages(id),
    group_message_id BLOB UNIQUE REFERENCES group_messages(id),
    group_id BLOB UNIQUE REFERENCES groups(id),
    CHECK ((message_id IS NOT NULL) + (group_message_id IS NOT NULL) + (group_id IS NOT NULL) = 1)
) STRICT;
INSERT INTO search_documents_v10 (rowid, message_id) SELECT rowid, message_id FROM search_documents;
DROP TABLE search_documents;
ALTER TABLE search_documents_v10 RENAME TO search_documents;
CREATE TRIGGER messages_leave_the_search_index_first BEFORE DELETE ON messages
WHEN EXISTS (SELECT 1 FROM search_documents WHERE message_id = old.id) BEGIN
    SELECT RAISE(ABORT, 'a message must leave the search index before it is deleted');
END;
CREATE TRIGGER group_messages_leave_the_search_index_first BEFORE DELETE ON group_messages
WHEN EXISTS (SELECT 1 FROM search_documents WHERE group_message_id = old.id) BEGIN
    SELECT RAISE(ABORT, 'a group message must leave the search index before it is deleted');
END;
CREATE TRIGGER groups_leave_the_search_index_first BEFORE DELETE ON groups
WHEN EXISTS (SELECT 1 FROM search_documents WHERE group_id = old.id) BEGIN
    SELECT RAISE(ABORT, 'a group must leave the search index before it is deleted');
END;
CREATE TABLE search_backlog_groups (
    group_id BLOB PRIMARY KEY NOT NULL REFERENCES groups(id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE TABLE search_backlog_group_messages (
    group_message_id BLOB PRIMARY KEY NOT NULL REFERENCES group_messages(id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
INSERT INTO search_backlog_groups (group_id) SELECT id FROM groups;
INSERT INTO search_backlog_group_messages (group_message_id)
    SELECT id FROM group_messages WHERE kind = 0;
ALTER TABLE group_messages ADD COLUMN expire_after_s INTEGER
    CHECK (expire_after_s IS NULL OR expire_after_s > 0);
ALTER TABLE group_messages ADD COLUMN expires_at INTEGER
    CHECK ((expires_at IS NULL) = (expire_after_s IS NULL));
ALTER TABLE group_messages ADD COLUMN timer_change INTEGER
    CHECK (timer_change IS NULL OR timer_change >= 0);
CREATE INDEX group_messages_expiry ON group_messages (expires_at) WHERE expires_at IS NOT NULL;
"#;

/// Version 11: group attachments (`docs/engine.md` § Attachments, § Groups). An attachment
/// belongs to a 1:1 chat (`contact_id`, carried by `message_id`) or to a group (`group_id`,
/// carried by `group_message_id`, a group text whose body is the file name), never both. SQLite
/// cannot drop a `NOT NULL`, so the table is made again with the same rows (foreign keys are off
/// while migrating, `migrate_to`).
const V11: &str = r#"
CREATE TABLE attachments_v11 (
    id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    direction INTEGER NOT NULL CHECK (direction IN (0, 1)),
    contact_id BLOB REFERENCES contacts(id) ON DELETE CASCADE,
    message_id BLOB UNIQUE REFERENCES messages(id) ON DELETE CASCADE,
    file_name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL CHECK (size >= 0),
    thumbnail BLOB,
    inline_bytes BLOB,
    relay_url TEXT,
    capability BLOB,
    grants BLOB,
    file_key BLOB,
    commitment BLOB,
    digest BLOB,
    chunks INTEGER NOT NULL CHECK (chunks >= 0),
    done_chunks INTEGER NOT NULL DEFAULT 0 CHECK (done_chunks >= 0),
    state INTEGER NOT NULL CHECK (state BETWEEN 0 AND 4),
    error TEXT,
    created_at INTEGER NOT NULL,
    group_id BLOB REFERENCES groups(id) ON DELETE CASCADE,
    group_message_id BLOB UNIQUE REFERENCES group_messages(id) ON DELETE CASCADE,
    CHECK ((contact_id IS NULL) <> (group_id IS NULL)),
    CHECK (message_id IS NULL OR contact_id IS NOT NULL),
    CHECK (group_message_id IS NULL OR group_id IS NOT NULL)
) STRICT, WITHOUT ROWID;
INSERT INTO attachments_v11 (id, direction, contact_id, message_id, file_name, media_type, size,
    thumbnail, inline_bytes, relay_url, capability, grants, file_key, commitment, digest, chunks,
    done_chunks, state, error, created_at)
SELECT id, direction, contact_id, message_id, file_name, media_type, size, thumbnail,
    inline_bytes, relay_url, capability, grants, file_key, commitment, digest, chunks,
    done_chunks, state, error, created_at FROM attachments;
DROP TABLE attachments;
ALTER TABLE attachments_v11 RENAME TO attachments;
CREATE INDEX attachments_contact ON attachments (contact_id);
CREATE INDEX attachments_group ON attachments (group_id);
CREATE INDEX attachments_state ON attachments (state);
"#;

/// All migrations in order; the schema version is the number applied.
pub(crate) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The database's current `user_version`.
pub(crate) fn schema_version(connection: &Connection) -> Result<i64, StoreError> {
    Ok(connection.pragma_query_value(None, "user_version", |row| row.get::<_, i64>(0))?)
}

/// Applies the migrations after the current version, up to `target` (normally [`SCHEMA_VERSION`]).
pub(crate) fn migrate_to(connection: &mut Connection, target: i64) -> Result<(), StoreError> {
    let current = schema_version(connection)?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    if current >= target {
        return Ok(());
    }
    // A table rebuild (create new, copy, drop old, rename) must not fire the foreign-key actions
    // of the DROP (it would null `own_mailboxes.invite_id`): foreign keys are off while migrating
    // (the pragma cannot change inside a transaction) and checked before each commit.
    let enforced: bool = connection.pragma_query_value(None, "foreign_keys", |row| row.get(0))?;
    connection.pragma_update(None, "foreign_keys", false)?;
    let result = apply_migrations(connection, current, target);
    connection.pragma_update(None, "foreign_keys", enforced)?;
    result
}

fn apply_migrations(
    connection: &mut Connection,
    current: i64,
    target: i64,
) -> Result<(), StoreError> {
    for (index, script) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(index).unwrap_or(i64::MAX).saturating_add(1);
        if version <= current || version > target {
            continue;
        }
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        transaction.execute_batch(script)?;
        let violation: Option<String> = transaction
            .query_row("PRAGMA foreign_key_check", [], |row| row.get(0))
            .optional()?;
        if let Some(table) = violation {
            return Err(StoreError::CorruptRow {
                detail: format!("migration {version} broke a foreign key of {table}"),
            });
        }
        transaction.pragma_update(None, "user_version", version)?;
        transaction.commit()?;
    }
    Ok(())
}
