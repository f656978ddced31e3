//! The encrypted local store: one SQLCipher database per profile, keyed from the vault.
//!
//! ## Opening
//!
//! [`Store::open`] runs, in this order (`docs/threat-model.md` § A thief of the user's data
//! directory):
//!
//! 1. `PRAGMA key = "x'<64 hex>'"` as the very first statement: a raw 256-bit key, so SQLCipher
//!    skips PBKDF2 (the key is already uniformly random from the OS keychain).
//! 2. `PRAGMA cipher_version` must answer, proving SQLCipher (not plain SQLite, which would
//!    silently ignore the key and write plaintext) is linked.
//! 3. `SELECT count(*) FROM sqlite_master` verifies the key: a wrong key or a damaged file gives
//!    [`StoreError::WrongKeyOrCorrupt`].
//! 4. `cipher_memory_security` as configured (off by default, see [`StoreConfig::memory_security`]), `secure_delete = ON`, `foreign_keys = ON`,
//!    `temp_store = MEMORY`, `journal_mode = WAL`, `synchronous = FULL`, a busy timeout.
//! 5. Schema migrations ([`schema`]).
//!
//! The `-wal` and `-shm` files are encrypted page by page like the main file, and the file does
//! not begin with the plain `SQLite format 3` header (SQLCipher's default plaintext header size 0).
//!
//! ## Transactions
//!
//! Every write runs in one `BEGIN IMMEDIATE` transaction that is rolled back on any error, so a
//! full disk ([`StoreError::DiskFull`]) or a read-only file ([`StoreError::ReadOnly`]) leaves
//! nothing half-written. The two delivery transactions are:
//!
//! - [`Store::commit_sealed`]: the advanced session state and the sealed bytes for every relay
//!   together ("seal once", `docs/engine.md` § Sending). Retries resend those bytes and never
//!   re-seal.
//! - [`Store::commit_received`]: the message (or receipt), the new session state and the dedupe row
//!   together, recorded only after a successful open (`docs/engine.md` § Receiving); duplicates are
//!   reported and change nothing.
//!
//! ## Threads
//!
//! [`Store`] is `Send` and not `Sync`: the async engine owns it on one blocking thread (an actor)
//! and sends it requests. Writes take `&mut self`.

mod attachments;
pub mod backup;
mod contacts;
mod expiry;
mod groups;
mod mailboxes;
mod messages;
pub mod schema;
mod search;
pub mod types;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, ffi::ErrorCode, params};
use zeroize::Zeroizing;

use crate::profile::ProfileDirs;
use crate::vault::DatabaseKey;

pub use attachments::{
    AttachmentChat, AttachmentRow, AttachmentState, IncomingAttachment, chunk_file_name,
};
pub use contacts::{Contact, KeyChangeOutcome, NewContact, SendingBlockedReason};
pub use expiry::{ChatTimer, DisappearingTimer, ExpiredChat, ExpiredMessage, timer_change_wins};
pub use groups::{
    Group, GroupCopy, GroupDeliverySummary, GroupMember, GroupMessage, GroupMessageKind,
    GroupMessageProgress, HeldIntroduction, MAX_GROUP_SEQ_ADVANCE, MAX_HELD_INTRODUCTIONS,
    MAX_MISSED_GROUP_TEXTS, PENDING_GROUP_WORK_PREFIX,
};
pub use mailboxes::{
    InviteRecord, InviteStatus, MailboxDeletion, MailboxOwner, NewInvite, NewOwnMailbox,
    OwnMailbox, PeerAddress, PendingSecure,
};
pub use messages::{
    ChatSummary, Message, OutboxItem, OutgoingContent, ReceiptKind, ReceiveOutcome, Received,
    ReceivedContent, SealedEnvelopeForRelay, SealedOutgoing,
};
pub use schema::SCHEMA_VERSION;
pub use search::{
    MAX_QUERY_TERMS, SearchCursor, SearchFound, SearchHit, SearchPage, SearchQuery, Snippet,
    TextRange,
};
pub use types::*;

/// Errors from the store. Each write that fails has been rolled back completely.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key does not open this file, or the file is not an (intact) SQLCipher database.
    #[error(
        "the database could not be opened with the key from the keychain: wrong key or corrupt file"
    )]
    WrongKeyOrCorrupt,
    /// The linked SQLite is not SQLCipher; refusing to write anything unencrypted.
    #[error("this build's SQLite has no SQLCipher; refusing to store data unencrypted")]
    NotEncrypted,
    /// The disk (or the database's size limit) is full. Nothing was written.
    #[error("the disk is full; nothing was written")]
    DiskFull,
    /// The database file or its directory is read-only. Nothing was written.
    #[error("the database is read-only; nothing was written")]
    ReadOnly,
    /// Another process holds the database lock for longer than the busy timeout.
    #[error("the database is locked by another process")]
    Busy,
    /// The database was written by a newer Sealpost.
    #[error("the database has schema version {found}, newer than this build's {supported}")]
    SchemaTooNew {
        /// Version found in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// The row the operation needs does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked up (typed, so callers can tell a missing contact from the rest).
        what: Missing,
    },
    /// The write would break a uniqueness rule (e.g. the identity key belongs to another contact,
    /// or a peer reused a sequence number).
    #[error("conflict: {what}")]
    Conflict {
        /// Which rule.
        what: &'static str,
    },
    /// The caller passed a value the operation cannot use.
    #[error("invalid input: {what}")]
    InvalidInput {
        /// What was wrong.
        what: &'static str,
    },
    /// Sending to this contact is blocked (T8 key change pending, or the contact is blocked).
    #[error("sending to this contact is blocked: {reason}")]
    SendingBlocked {
        /// Why.
        reason: SendingBlockedReason,
    },
    /// The invite can no longer be used.
    #[error("the invite cannot be used: it is {status:?}")]
    InviteUnavailable {
        /// Its state.
        status: InviteStatus,
    },
    /// A value read from the database is out of range or malformed.
    #[error("malformed value in the database: {detail}")]
    CorruptRow {
        /// What was wrong.
        detail: String,
    },
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    /// The database file's directory could not be prepared.
    #[error("cannot prepare the database directory: {0}")]
    Io(#[from] std::io::Error),
    /// Any other SQLite error.
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
}

/// Which record a [`StoreError::NotFound`] looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// The contact (or its 1:1 conversation).
    Contact,
    /// The profile record.
    Profile,
    /// The group.
    Group,
    /// The invite.
    Invite,
    /// The outbox row.
    OutboxItem,
    /// A contact's pending (changed) identity key.
    PendingIdentityKey,
    /// The session held back with a pending key change.
    HeldSession,
    /// The attachment.
    Attachment,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Missing::Contact => "contact",
            Missing::Profile => "profile",
            Missing::Group => "group",
            Missing::Invite => "invite",
            Missing::OutboxItem => "outbox item",
            Missing::PendingIdentityKey => "pending identity key",
            Missing::HeldSession => "the session held with the key change",
            Missing::Attachment => "attachment",
        })
    }
}

impl StoreError {
    /// True for errors about one item's own content (conflict, not found, blocked, invalid),
    /// after which other writes can go on; false for storage failures that stop every write.
    pub fn is_item_level(&self) -> bool {
        matches!(
            self,
            StoreError::Conflict { .. }
                | StoreError::NotFound { .. }
                | StoreError::InvalidInput { .. }
                | StoreError::SendingBlocked { .. }
                | StoreError::InviteUnavailable { .. }
        )
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        match error.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                StoreError::WrongKeyOrCorrupt
            }
            Some(ErrorCode::DiskFull) => StoreError::DiskFull,
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly,
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
            _ => match error {
                rusqlite::Error::FromSqlConversionFailure(column, _, inner) => {
                    StoreError::CorruptRow {
                        detail: format!("column {column}: {inner}"),
                    }
                }
                rusqlite::Error::IntegralValueOutOfRange(column, value) => StoreError::CorruptRow {
                    detail: format!("column {column}: {value} out of range"),
                },
                rusqlite::Error::InvalidColumnType(column, name, kind) => StoreError::CorruptRow {
                    detail: format!("column {column} ({name}) has type {kind}"),
                },
                other => StoreError::Sqlite(other),
            },
        }
    }
}

impl From<getrandom::Error> for StoreError {
    fn from(error: getrandom::Error) -> Self {
        StoreError::Random(error.to_string())
    }
}

/// Options for [`Store::open_with`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// How long a statement waits for another connection's lock before [`StoreError::Busy`].
    pub busy_timeout: Duration,
    /// Create the file if it does not exist (false: opening a missing file is an error).
    pub create_if_missing: bool,
    /// `PRAGMA cipher_memory_security`: SQLCipher wipes (and locks) every buffer SQLite frees,
    /// so decrypted pages do not linger in freed heap memory. **Off by default**, as in SQLCipher
    /// itself since 4.5.0, for three reasons:
    ///
    /// - It is process-wide and one-way: once any connection turns it on, it stays on for every
    ///   SQLCipher connection of the process until exit (checked here: a later `OFF` still reads
    ///   back `1`), including an embedded local relay's database.
    /// - It is costly: the engine's offline drain and send→receive latency benchmarks
    ///   (`docs/benchmarks.md` § Client engine) measure the difference.
    /// - What it protects against — someone reading this process's freed heap (a memory dump,
    ///   swap, a debugger) — is a compromised device, which the threat model excludes
    ///   (`docs/threat-model.md`): such an attacker reads the live database key, session states
    ///   and open pages from the same process anyway. Our own secret types still zeroize on drop.
    ///
    /// Turn it on for a process that wants the extra wiping regardless of cost.
    pub memory_security: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            create_if_missing: true,
            memory_security: false,
        }
    }
}

/// The profile's own record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileRecord {
    /// The name shown to contacts (stays local until sent to a contact).
    pub display_name: String,
    /// When the profile was made.
    pub created_at: UnixMillis,
}

/// One profile's SQLCipher database.
pub struct Store {
    connection: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if missing) the database of a profile at
    /// [`ProfileDirs::database_path`], creating the profile directory privately first.
    pub fn open_profile(dirs: &ProfileDirs, key: &DatabaseKey) -> Result<Self, StoreError> {
        dirs.ensure_created().map_err(|error| match error {
            crate::profile::ProfileError::Io { source, .. } => StoreError::Io(source),
            other => StoreError::Io(std::io::Error::other(other.to_string())),
        })?;
        Self::open(&dirs.database_path(), key)
    }

    /// Opens (creating if missing) the database at `path` with default options.
    pub fn open(path: &Path, key: &DatabaseKey) -> Result<Self, StoreError> {
        Self::open_with(path, key, &StoreConfig::default())
    }

    /// Opens the database at `path` with `key`; see the module docs for the exact sequence.
    pub fn open_with(
        path: &Path,
        key: &DatabaseKey,
        config: &StoreConfig,
    ) -> Result<Self, StoreError> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        if config.create_if_missing {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let mut connection = Connection::open_with_flags(path, flags)?;
        apply_key(&connection, key)?;
        let cipher_version: Option<String> = connection
            .query_row("PRAGMA cipher_version", [], |row| row.get(0))
            .optional()?;
        if cipher_version.is_none_or(|version| version.is_empty()) {
            return Err(StoreError::NotEncrypted);
        }
        // Verify the key before anything else touches the file.
        connection.query_row("SELECT count(*) FROM sqlite_master", [], |row| {
            row.get::<_, i64>(0)
        })?;
        // cipher_memory_security answers with no row on builds where it is a no-op.
        let memory_security = if config.memory_security { "ON" } else { "OFF" };
        connection
            .query_row(
                &format!("PRAGMA cipher_memory_security = {memory_security}"),
                [],
                |_| Ok(()),
            )
            .optional()?;
        connection.pragma_update(None, "secure_delete", "ON")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.pragma_update(None, "temp_store", "MEMORY")?;
        let mode: String =
            connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::CorruptRow {
                detail: format!("journal_mode stayed {mode}"),
            });
        }
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.busy_timeout(config.busy_timeout)?;
        schema::migrate_to(&mut connection, SCHEMA_VERSION)?;
        Ok(Self {
            connection,
            path: path.to_path_buf(),
        })
    }

    /// Closes the database, checkpointing the WAL into the main file.
    pub fn close(self) -> Result<(), StoreError> {
        self.connection
            .close()
            .map_err(|(_, error)| StoreError::from(error))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database (always [`SCHEMA_VERSION`] after open).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        schema::schema_version(&self.connection)
    }

    /// Creates the profile record. [`StoreError::Conflict`] if it exists.
    pub fn init_profile(
        &mut self,
        display_name: &str,
        now: UnixMillis,
    ) -> Result<ProfileRecord, StoreError> {
        let transaction = self.write()?;
        let inserted = transaction.execute(
            "INSERT OR IGNORE INTO profile (singleton, display_name, created_at) VALUES (1, ?1, ?2)",
            params![display_name, now],
        )?;
        if inserted == 0 {
            return Err(StoreError::Conflict {
                what: "the profile record already exists",
            });
        }
        transaction.commit()?;
        Ok(ProfileRecord {
            display_name: display_name.to_owned(),
            created_at: now,
        })
    }

    /// The profile record, if [`Store::init_profile`] ran.
    pub fn profile(&self) -> Result<Option<ProfileRecord>, StoreError> {
        Ok(self
            .connection
            .query_row(
                "SELECT display_name, created_at FROM profile WHERE singleton = 1",
                [],
                |row| {
                    Ok(ProfileRecord {
                        display_name: row.get(0)?,
                        created_at: row.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    /// Changes the profile's display name.
    pub fn set_profile_display_name(&mut self, display_name: &str) -> Result<(), StoreError> {
        let transaction = self.write()?;
        let changed = transaction.execute(
            "UPDATE profile SET display_name = ?1 WHERE singleton = 1",
            params![display_name],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound {
                what: Missing::Profile,
            });
        }
        transaction.commit()?;
        Ok(())
    }

    /// A setting's value (settings are text key/value pairs the engine defines).
    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .connection
            .query_row(
                "SELECT value FROM settings WHERE key = ?1",
                params![key],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Sets a setting.
    pub fn set_setting(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        let transaction = self.write()?;
        transaction.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        transaction.commit()?;
        Ok(())
    }

    /// Starts a write: its own `BEGIN IMMEDIATE` transaction, or a savepoint when it runs inside
    /// [`Store::transaction`]. Dropping it uncommitted rolls it back.
    fn write(&mut self) -> Result<Write<'_>, StoreError> {
        if self.connection.is_autocommit() {
            Ok(Write::Top(self.connection.transaction_with_behavior(
                rusqlite::TransactionBehavior::Immediate,
            )?))
        } else {
            Ok(Write::Nested(self.connection.savepoint()?))
        }
    }

    /// Runs `item` on each of `batch` in ONE write (one fsync), each in its own savepoint: an
    /// item refused for its own reasons ([`StoreError::is_item_level`]) is rolled back alone and
    /// reported in its slot; any other error rolls back the whole batch and is returned as the
    /// outer error. What [`Store::commit_sealed_batch`] and [`Store::commit_received_batch`]
    /// share.
    fn write_batch<T, R>(
        &mut self,
        batch: &[T],
        item: impl Fn(&Connection, &T) -> Result<R, StoreError>,
    ) -> Result<Vec<Result<R, StoreError>>, StoreError> {
        let mut transaction = self.write()?;
        let mut results = Vec::with_capacity(batch.len());
        for each in batch {
            let savepoint = transaction.savepoint()?;
            match item(&savepoint, each) {
                Ok(result) => {
                    savepoint.commit()?;
                    results.push(Ok(result));
                }
                Err(error) if error.is_item_level() => results.push(Err(error)),
                Err(error) => return Err(error),
            }
        }
        transaction.commit()?;
        Ok(results)
    }

    /// Runs `f` inside ONE `BEGIN IMMEDIATE` transaction: every write `f` makes through this
    /// store (each becomes a savepoint of it) is committed together when `f` returns `Ok` — one
    /// fsync — or not at all when it returns `Err`. Inside, a write that fails for its own
    /// reasons rolls back only itself; `f` decides whether to go on. Called inside another
    /// `transaction`, it joins that one.
    pub fn transaction<R, E, F>(&mut self, f: F) -> Result<R, E>
    where
        E: From<StoreError>,
        F: FnOnce(&mut Self) -> Result<R, E>,
    {
        if !self.connection.is_autocommit() {
            return f(self);
        }
        self.connection
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(StoreError::from)?;
        let result = f(self).and_then(|value| {
            self.connection
                .execute_batch("COMMIT")
                .map_err(StoreError::from)?;
            Ok(value)
        });
        if result.is_err() && !self.connection.is_autocommit() {
            let _ = self.connection.execute_batch("ROLLBACK");
        }
        result
    }

    /// The raw connection, for tests that inject failures (triggers, size limits, query_only).
    #[cfg(test)]
    pub(crate) fn connection_for_tests(&self) -> &Connection {
        &self.connection
    }
}

/// A write in progress (see `Store::write`).
enum Write<'a> {
    /// A transaction of its own.
    Top(rusqlite::Transaction<'a>),
    /// A savepoint inside [`Store::transaction`].
    Nested(rusqlite::Savepoint<'a>),
}

impl std::ops::Deref for Write<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            Write::Top(transaction) => transaction,
            Write::Nested(savepoint) => savepoint,
        }
    }
}

impl Write<'_> {
    /// Commits (a transaction) or releases (a savepoint) the write.
    fn commit(self) -> rusqlite::Result<()> {
        match self {
            Write::Top(transaction) => transaction.commit(),
            Write::Nested(savepoint) => savepoint.commit(),
        }
    }

    /// A savepoint inside this write, for one item of a batch.
    fn savepoint(&mut self) -> rusqlite::Result<rusqlite::Savepoint<'_>> {
        match self {
            Write::Top(transaction) => transaction.savepoint(),
            Write::Nested(savepoint) => savepoint.savepoint(),
        }
    }
}

/// Runs `PRAGMA key = "x'<hex>'"`; the statement text is zeroized after use.
fn apply_key(connection: &Connection, key: &DatabaseKey) -> Result<(), StoreError> {
    let hex_key = Zeroizing::new(hex::encode(key.expose_secret()));
    let mut statement = Zeroizing::new(String::with_capacity(80));
    statement.push_str("PRAGMA key = \"x'");
    statement.push_str(&hex_key);
    statement.push_str("'\";");
    connection.execute_batch(&statement)?;
    Ok(())
}

#[cfg(test)]
mod tests;
