//! The default store: one SQLite file in WAL mode with `synchronous=FULL`.
//!
//! One writer thread owns the only writing connection and batches commits (group commit): it
//! takes every operation queued so far (up to `group_commit_max`), applies them in one
//! transaction, commits (one fsync), and only then answers each of them and notifies the append
//! listener. Reads (auth keys, send targets, fetches) use a small pool of read-only connections;
//! WAL lets them run beside the writer. SQLCipher is linked workspace-wide but never keyed here:
//! the relay's file is plain SQLite holding only opaque ciphertext and random ids.
//!
//! Nothing at rest counts relay-wide: mailbox and envelope row ids are random, a message id
//! counts per mailbox from a random start, and stored times are whole hours (all expiry needs).
//! Schema version 1 (`PRAGMA user_version`); a version-0 database (row numbers, one
//! AUTOINCREMENT envelope counter, times in seconds) is migrated in place when opened.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use sealpost_wire::{AuthPublicKey, MessageId, ReceiveId, SendId};
use tokio::sync::mpsc;

use sealpost_wire::{BlobDownloadId, BlobUploadId};

use super::{
    AppendListener, AppendOutcome, BlobCreateOutcome, BlobDownloadRow, BlobRef, BlobStore,
    BlobUploadRow, ChunkFetch, CommitObserver, Expired, FIRST_MESSAGE_ID_BELOW, NewBlob,
    NewMailbox, PendingAppend, PutOutcome, Quota, ReleaseOutcome, Reply, SecureOutcome, SendTarget,
    Store, StoreError, StoreFuture, StoredEnvelope, as_i64, as_u64, bucket, queue_write,
    random_below, random_row_id, sender_changed, take_slot, to_id,
};

pub use super::TIME_BUCKET_SECS;

/// The schema this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 3;

/// Schema version 3: a blob counts the grants not yet released (`docs/relay-protocol.md`
/// § 13.3); the last release deletes it. A blob made before has 0 and waits for its expiry.
const BLOB_RELEASE_SCHEMA: &str = "
ALTER TABLE blob ADD COLUMN downloads_left INTEGER NOT NULL DEFAULT 0;
";

/// Schema version 2 adds the blob tables (`docs/relay-protocol.md` § Blobs). `bid` and `cid`
/// are random; a download row names its blob only sealed under the download secret; `created`
/// is rounded down to the hour.
const BLOB_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS blob (
    bid INTEGER PRIMARY KEY,
    upload_id BLOB NOT NULL UNIQUE,
    upload_auth_hash BLOB NOT NULL,
    chunk_count INTEGER NOT NULL,
    stored INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS blob_chunk (
    cid INTEGER PRIMARY KEY,
    bid INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS blob_chunk_by_blob ON blob_chunk(bid, idx);
CREATE TABLE IF NOT EXISTS blob_download (
    download_id BLOB PRIMARY KEY,
    auth_hash BLOB NOT NULL,
    sealed_ref BLOB NOT NULL,
    created INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Schema version 1. `mid` and `eid` are random (never a row counter); `next_message_id` is the
/// mailbox's own counter, started at a random value; `last_used` and `received_at` are Unix
/// seconds rounded down to the hour ([`TIME_BUCKET_SECS`]).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS mailbox (
    mid INTEGER PRIMARY KEY,
    receive_id BLOB NOT NULL UNIQUE,
    send_id BLOB NOT NULL UNIQUE,
    auth_key BLOB NOT NULL,
    send_secret_hash BLOB NOT NULL,
    sender_key BLOB,
    envelope_count INTEGER NOT NULL DEFAULT 0,
    envelope_bytes INTEGER NOT NULL DEFAULT 0,
    next_message_id INTEGER NOT NULL,
    last_used INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS envelope (
    eid INTEGER PRIMARY KEY,
    mid INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS envelope_by_mailbox ON envelope(mid, message_id);
";

/// Brings the database to [`SCHEMA_VERSION`]: creates it, or migrates version 0.
fn ensure_schema(connection: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Open(format!(
            "database schema {version} is newer than this relay ({SCHEMA_VERSION})"
        )));
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    let has_v0_envelopes: bool = connection.query_row(
        "SELECT count(*) > 0 FROM pragma_table_info('envelope') WHERE name = 'id'",
        [],
        |row| row.get(0),
    )?;
    let transaction = connection.transaction()?;
    if version == 0 {
        if has_v0_envelopes {
            migrate_v0(&transaction)?;
        } else {
            transaction.execute_batch(SCHEMA)?;
        }
    }
    if version < 2 {
        // Version 1 → 2: the blob tables.
        transaction.execute_batch(BLOB_SCHEMA)?;
    }
    // Version 2 → 3: the count of grants not yet released.
    transaction.execute_batch(BLOB_RELEASE_SCHEMA)?;
    transaction.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    transaction.commit()?;
    Ok(())
}

/// One version-0 mailbox row: mid, receive id, send id, auth key, send-secret hash, sender key,
/// envelope count, envelope bytes, last used.
type MailboxV0 = (
    i64,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    Option<Vec<u8>>,
    i64,
    i64,
    i64,
);

/// Version 0 → 1: random row ids, per-mailbox message ids, hour-rounded times, no
/// `sqlite_sequence` rows. Envelopes keep their order and bytes. A migrated mailbox's message
/// ids start at a random value at or above 2^62, above every id version 0 ever gave out, so an
/// ACK sent before the upgrade can never remove a different envelope after it.
fn migrate_v0(c: &Connection) -> Result<(), StoreError> {
    c.execute_batch(
        "ALTER TABLE mailbox RENAME TO mailbox_v0;
         ALTER TABLE envelope RENAME TO envelope_v0;
         DROP INDEX IF EXISTS envelope_by_mailbox;",
    )?;
    c.execute_batch(SCHEMA)?;
    let mailboxes: Vec<MailboxV0> = c
        .prepare(
            "SELECT mid, receive_id, send_id, auth_key, send_secret_hash, sender_key,
                    envelope_count, envelope_bytes, last_used FROM mailbox_v0",
        )?
        .query_map([], |row| row.try_into())?
        .collect::<Result<_, _>>()?;
    let mut envelopes_of =
        c.prepare("SELECT received_at, body FROM envelope_v0 WHERE mid = ?1 ORDER BY id")?;
    let mut insert_envelope = c.prepare(
        "INSERT INTO envelope (eid, mid, message_id, received_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (old_mid, receive_id, send_id, auth_key, hash, sender_key, count, bytes, last_used) in
        mailboxes
    {
        let mid = random_row_id()?;
        let mut next = (1u64 << 62) + random_below(1 << 60)?;
        let envelopes: Vec<(i64, Vec<u8>)> = envelopes_of
            .query_map(params![old_mid], |row| row.try_into())?
            .collect::<Result<_, _>>()?;
        for (received_at, body) in envelopes {
            insert_envelope.execute(params![
                random_row_id()?,
                mid,
                as_i64(next),
                as_i64(bucket(as_u64(received_at))),
                body
            ])?;
            next += 1;
        }
        c.execute(
            "INSERT INTO mailbox (mid, receive_id, send_id, auth_key, send_secret_hash,
                 sender_key, envelope_count, envelope_bytes, next_message_id, last_used)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                mid,
                receive_id,
                send_id,
                auth_key,
                hash,
                sender_key,
                count,
                bytes,
                as_i64(next),
                as_i64(bucket(as_u64(last_used)))
            ],
        )?;
    }
    c.execute_batch(
        "DROP TABLE envelope_v0;
         DROP TABLE mailbox_v0;
         DELETE FROM sqlite_sequence;",
    )?;
    Ok(())
}

/// mid, sender_key, envelope_count, envelope_bytes, next_message_id as stored.
type AppendRow = (i64, Option<Vec<u8>>, i64, i64, i64);

/// receive_id, send_secret_hash, sender_key as stored.
type SendTargetRow = (Vec<u8>, Vec<u8>, Option<Vec<u8>>);

enum WriteOp {
    Create(NewMailbox, Reply<bool>),
    Append(PendingAppend, Reply<AppendOutcome>),
    Ack(ReceiveId, MessageId, u64, Reply<()>),
    Secure(ReceiveId, AuthPublicKey, u64, Reply<SecureOutcome>),
    Delete(ReceiveId, Reply<()>),
    Touch(ReceiveId, u64, Reply<()>),
    Expire(u64, u64, Reply<Expired>),
    CreateBlob(NewBlob, Reply<BlobCreateOutcome>),
    PutChunk(BlobUploadId, u32, Arc<[u8]>, Reply<PutOutcome>),
    DeleteBlob(BlobUploadId, Reply<()>),
    ReleaseDownload(BlobDownloadId, BlobRef, u32, Reply<ReleaseOutcome>),
    ExpireBlobs(u64, Reply<u64>),
}

/// An answered operation waiting for its transaction to commit.
enum Done {
    Bool(Reply<bool>, Result<bool, StoreError>),
    Append(
        Reply<AppendOutcome>,
        Result<AppendOutcome, StoreError>,
        Option<(ReceiveId, StoredEnvelope)>,
    ),
    Unit(Reply<()>, Result<(), StoreError>),
    Secure(Reply<SecureOutcome>, Result<SecureOutcome, StoreError>),
    Expire(Reply<Expired>, Result<Expired, StoreError>),
    BlobCreate(
        Reply<BlobCreateOutcome>,
        Result<BlobCreateOutcome, StoreError>,
    ),
    Put(Reply<PutOutcome>, Result<PutOutcome, StoreError>),
    Count(Reply<u64>, Result<u64, StoreError>),
    Release(Reply<ReleaseOutcome>, Result<ReleaseOutcome, StoreError>),
}

/// The SQLite store.
pub struct SqliteStore {
    writer: Mutex<Option<mpsc::UnboundedSender<WriteOp>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    checkpointer: Mutex<Option<(Arc<std::sync::atomic::AtomicBool>, JoinHandle<()>)>>,
    readers: Mutex<Vec<Connection>>,
    path: std::path::PathBuf,
}

fn open_connection(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let mut connection = Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    if !read_only {
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        // Zero every deleted cell and freed page (FAST would leave freelist pages readable), so
        // acknowledged envelopes and deleted mailboxes do not linger in the main file. Their
        // older copies in the WAL go when `checkpoint_loop` truncates it.
        connection.pragma_update(None, "secure_delete", "ON")?;
        // Checkpoints run on their own thread (see `checkpoint_loop`), off the commit path.
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        ensure_schema(&mut connection)?;
    }
    Ok(connection)
}

impl SqliteStore {
    /// Opens (or creates) the database at `path` and starts the writer thread.
    pub fn open(
        path: &Path,
        group_commit_max: usize,
        listener: AppendListener,
        observer: CommitObserver,
    ) -> Result<Self, StoreError> {
        let connection = open_connection(path, false)?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let batch_max = group_commit_max.max(1);
        let thread = std::thread::Builder::new()
            .name("sealpost-store-writer".into())
            .spawn(move || writer_loop(connection, receiver, batch_max, listener, observer))
            .map_err(|e| StoreError::Open(e.to_string()))?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let checkpoint_connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        checkpoint_connection.busy_timeout(std::time::Duration::from_secs(5))?;
        let checkpoint_stop = stop.clone();
        let checkpointer = std::thread::Builder::new()
            .name("sealpost-store-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoint_connection, checkpoint_stop))
            .map_err(|e| StoreError::Open(e.to_string()))?;
        Ok(Self {
            writer: Mutex::new(Some(sender)),
            writer_thread: Mutex::new(Some(thread)),
            checkpointer: Mutex::new(Some((stop, checkpointer))),
            readers: Mutex::new(Vec::new()),
            path: path.to_path_buf(),
        })
    }

    fn submit<T: Send + 'static>(
        &self,
        make: impl FnOnce(Reply<T>) -> WriteOp,
    ) -> StoreFuture<'static, T> {
        queue_write(&self.writer, make)
    }

    /// Runs a read on a pooled read-only connection now (not when the future is polled).
    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> StoreFuture<'static, T> {
        let result = self.read_now(f);
        Box::pin(async move { result })
    }

    fn read_now<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let connection = match pooled {
            Some(connection) => connection,
            None => open_connection(&self.path, true)?,
        };
        let result = f(&connection);
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < 16 {
            pool.push(connection);
        }
        result
    }
}

impl Store for SqliteStore {
    fn create_mailbox(&self, mailbox: NewMailbox) -> StoreFuture<'_, bool> {
        self.submit(|reply| WriteOp::Create(mailbox, reply))
    }

    fn auth_key(&self, receive_id: ReceiveId) -> StoreFuture<'_, Option<AuthPublicKey>> {
        self.read(|c| {
            let row: Option<Vec<u8>> = c
                .prepare_cached("SELECT auth_key FROM mailbox WHERE receive_id = ?1")?
                .query_row(params![receive_id.as_bytes().as_slice()], |row| row.get(0))
                .optional()?;
            Ok(row.and_then(to_id::<32>).map(AuthPublicKey))
        })
    }

    fn send_target(&self, send_id: SendId) -> StoreFuture<'_, Option<SendTarget>> {
        self.read(|c| {
            let row: Option<SendTargetRow> = c
                .prepare_cached(
                    "SELECT receive_id, send_secret_hash, sender_key FROM mailbox WHERE send_id = ?1",
                )?
                .query_row(params![send_id.as_bytes().as_slice()], |row| row.try_into())
                .optional()?;
            Ok(row.and_then(|(receive_id, hash, sender_key)| {
                SendTarget::from_row(receive_id, hash, sender_key)
            }))
        })
    }

    fn append(
        &self,
        receive_id: ReceiveId,
        expected_sender_key: Option<AuthPublicKey>,
        envelope: Arc<[u8]>,
        now: u64,
        quota: Quota,
    ) -> StoreFuture<'_, AppendOutcome> {
        let append = PendingAppend {
            receive_id,
            expected_sender_key,
            envelope,
            now,
            quota,
        };
        self.submit(|reply| WriteOp::Append(append, reply))
    }

    fn fetch(
        &self,
        receive_id: ReceiveId,
        after: MessageId,
        limit: usize,
    ) -> StoreFuture<'_, Vec<StoredEnvelope>> {
        self.read(|c| {
            let mut statement = c.prepare_cached(
                "SELECT e.message_id, e.received_at, e.body FROM envelope e
                 WHERE e.mid = (SELECT mid FROM mailbox WHERE receive_id = ?1)
                   AND e.message_id > ?2
                 ORDER BY e.message_id LIMIT ?3",
            )?;
            let rows = statement.query_map(
                params![
                    receive_id.as_bytes().as_slice(),
                    as_i64(after.0),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |row| {
                    Ok(StoredEnvelope::from_row(
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                    ))
                },
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn ack(&self, receive_id: ReceiveId, message_id: MessageId, now: u64) -> StoreFuture<'_, ()> {
        self.submit(|reply| WriteOp::Ack(receive_id, message_id, now, reply))
    }

    fn secure(
        &self,
        receive_id: ReceiveId,
        sender_key: AuthPublicKey,
        now: u64,
    ) -> StoreFuture<'_, SecureOutcome> {
        self.submit(|reply| WriteOp::Secure(receive_id, sender_key, now, reply))
    }

    fn delete_mailbox(&self, receive_id: ReceiveId) -> StoreFuture<'_, ()> {
        self.submit(|reply| WriteOp::Delete(receive_id, reply))
    }

    fn touch(&self, receive_id: ReceiveId, now: u64) -> StoreFuture<'_, ()> {
        self.submit(|reply| WriteOp::Touch(receive_id, now, reply))
    }

    fn expire(&self, envelopes_before: u64, mailboxes_before: u64) -> StoreFuture<'_, Expired> {
        self.submit(|reply| WriteOp::Expire(envelopes_before, mailboxes_before, reply))
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        // Dropping the only sender lets the writer drain what is queued, commit and exit.
        drop(take_slot(&self.writer));
        let thread = take_slot(&self.writer_thread);
        let checkpointer = take_slot(&self.checkpointer);
        Box::pin(async move {
            if let Some((stop, checkpointer)) = checkpointer {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                tokio::task::spawn_blocking(move || checkpointer.join())
                    .await
                    .map_err(|_| StoreError::WriterGone)?
                    .map_err(|_| StoreError::WriterGone)?;
            }
            if let Some(thread) = thread {
                tokio::task::spawn_blocking(move || thread.join())
                    .await
                    .map_err(|_| StoreError::WriterGone)?
                    .map_err(|_| StoreError::WriterGone)?;
            }
            self.readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
            Ok(())
        })
    }
}

impl BlobStore for SqliteStore {
    fn create_blob(&self, blob: NewBlob) -> StoreFuture<'static, BlobCreateOutcome> {
        self.submit(|reply| WriteOp::CreateBlob(blob, reply))
    }

    fn blob_upload(&self, upload_id: BlobUploadId) -> StoreFuture<'static, Option<BlobUploadRow>> {
        self.read(|c| {
            let row: Option<(i64, Vec<u8>, i64, i64)> = c
                .prepare_cached(
                    "SELECT bid, upload_auth_hash, chunk_count, stored FROM blob
                     WHERE upload_id = ?1",
                )?
                .query_row(params![upload_id.as_bytes().as_slice()], |row| {
                    row.try_into()
                })
                .optional()?;
            Ok(row.and_then(|(bid, hash, count, stored)| {
                BlobUploadRow::from_row(bid, hash, count, stored)
            }))
        })
    }

    fn put_blob_chunk(
        &self,
        upload_id: BlobUploadId,
        index: u32,
        chunk: Arc<[u8]>,
    ) -> StoreFuture<'static, PutOutcome> {
        self.submit(|reply| WriteOp::PutChunk(upload_id, index, chunk, reply))
    }

    fn blob_download(
        &self,
        download_id: BlobDownloadId,
    ) -> StoreFuture<'static, Option<BlobDownloadRow>> {
        self.read(|c| {
            let row: Option<(Vec<u8>, Vec<u8>)> = c
                .prepare_cached(
                    "SELECT auth_hash, sealed_ref FROM blob_download WHERE download_id = ?1",
                )?
                .query_row(params![download_id.as_bytes().as_slice()], |row| {
                    row.try_into()
                })
                .optional()?;
            Ok(row.and_then(|(hash, sealed)| BlobDownloadRow::from_row(hash, sealed)))
        })
    }

    fn blob_chunk(&self, blob_ref: BlobRef, index: u32) -> StoreFuture<'static, ChunkFetch> {
        self.read(|c| {
            let blob: Option<(i64, i64)> = c
                .prepare_cached("SELECT chunk_count, stored FROM blob WHERE bid = ?1")?
                .query_row(params![as_i64(blob_ref.0)], |row| row.try_into())
                .optional()?;
            let Some((count, _stored)) = blob else {
                return Ok(ChunkFetch::Gone);
            };
            if i64::from(index) >= count {
                return Ok(ChunkFetch::IndexOutOfRange);
            }
            let body: Option<Vec<u8>> = c
                .prepare_cached("SELECT body FROM blob_chunk WHERE bid = ?1 AND idx = ?2")?
                .query_row(params![as_i64(blob_ref.0), i64::from(index)], |row| {
                    row.get(0)
                })
                .optional()?;
            Ok(match body {
                Some(body) => ChunkFetch::Chunk(body),
                None => ChunkFetch::Missing,
            })
        })
    }

    fn delete_blob(&self, upload_id: BlobUploadId) -> StoreFuture<'static, ()> {
        self.submit(|reply| WriteOp::DeleteBlob(upload_id, reply))
    }

    fn release_blob_download(
        &self,
        download_id: BlobDownloadId,
        blob_ref: BlobRef,
        index: u32,
    ) -> StoreFuture<'static, ReleaseOutcome> {
        self.submit(|reply| WriteOp::ReleaseDownload(download_id, blob_ref, index, reply))
    }

    fn expire_blobs(&self, created_before: u64) -> StoreFuture<'static, u64> {
        self.submit(|reply| WriteOp::ExpireBlobs(created_before, reply))
    }
}

fn create_blob(c: &Connection, blob: &NewBlob) -> Result<BlobCreateOutcome, StoreError> {
    let existing: Option<(Vec<u8>, i64)> = c
        .prepare_cached("SELECT upload_auth_hash, chunk_count FROM blob WHERE upload_id = ?1")?
        .query_row(params![blob.upload_id.as_bytes().as_slice()], |row| {
            row.try_into()
        })
        .optional()?;
    if let Some((hash, count)) = existing {
        return Ok(BlobCreateOutcome::of_existing(blob, &hash, count));
    }
    let mut taken = c.prepare_cached("SELECT 1 FROM blob_download WHERE download_id = ?1")?;
    for download in &blob.downloads {
        if taken
            .query_row(params![download.download_id.as_bytes().as_slice()], |_| {
                Ok(())
            })
            .optional()?
            .is_some()
        {
            return Ok(BlobCreateOutcome::IdInUse);
        }
    }
    let created = as_i64(bucket(blob.now));
    let inserted = c
        .prepare_cached(
            "INSERT OR IGNORE INTO blob
             (bid, upload_id, upload_auth_hash, chunk_count, created, downloads_left)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            as_i64(blob.blob_ref.0),
            blob.upload_id.as_bytes().as_slice(),
            blob.upload_auth_hash.as_slice(),
            i64::from(blob.chunk_count),
            created,
            i64::try_from(blob.downloads.len()).unwrap_or(i64::MAX),
        ])?;
    if inserted != 1 {
        return Ok(BlobCreateOutcome::IdInUse);
    }
    let mut insert = c.prepare_cached(
        "INSERT OR IGNORE INTO blob_download (download_id, auth_hash, sealed_ref, created)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for download in &blob.downloads {
        // Two equal download ids in one request: the second is ignored (its secret is the
        // first's or it is useless); a random id never repeats.
        insert.execute(params![
            download.download_id.as_bytes().as_slice(),
            download.auth_hash.as_slice(),
            download.sealed_ref.as_slice(),
            created
        ])?;
    }
    Ok(BlobCreateOutcome::Created)
}

fn put_chunk(
    c: &Connection,
    upload_id: &BlobUploadId,
    index: u32,
    chunk: &Arc<[u8]>,
) -> Result<PutOutcome, StoreError> {
    let row: Option<(i64, i64, i64)> = c
        .prepare_cached("SELECT bid, chunk_count, stored FROM blob WHERE upload_id = ?1")?
        .query_row(params![upload_id.as_bytes().as_slice()], |row| {
            row.try_into()
        })
        .optional()?;
    let Some((bid, count, stored)) = row else {
        return Ok(PutOutcome::Gone);
    };
    let index = i64::from(index);
    if let Some(refusal) = PutOutcome::refusal(index, count, stored) {
        return Ok(refusal);
    }
    let mut insert = c.prepare_cached(
        "INSERT OR IGNORE INTO blob_chunk (cid, bid, idx, body) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut inserted = 0;
    for _ in 0..4 {
        inserted = insert.execute(params![random_row_id()?, bid, index, &chunk[..]])?;
        if inserted == 1 {
            break;
        }
    }
    if inserted != 1 {
        return Err(StoreError::Randomness("four chunk row ids clashed".into()));
    }
    c.prepare_cached("UPDATE blob SET stored = stored + 1 WHERE bid = ?1")?
        .execute(params![bid])?;
    Ok(PutOutcome::Stored)
}

fn delete_blob(c: &Connection, upload_id: &BlobUploadId) -> Result<(), StoreError> {
    delete_with_rows(
        c,
        "DELETE FROM blob WHERE upload_id = ?1 RETURNING bid",
        upload_id.as_bytes(),
        "DELETE FROM blob_chunk WHERE bid = ?1",
    )
}

fn release_download(
    c: &Connection,
    download_id: &BlobDownloadId,
    blob_ref: BlobRef,
    index: u32,
) -> Result<ReleaseOutcome, StoreError> {
    let bid = as_i64(blob_ref.0);
    let blob: Option<(i64, i64)> = c
        .prepare_cached("SELECT chunk_count, stored FROM blob WHERE bid = ?1")?
        .query_row(params![bid], |row| row.try_into())
        .optional()?;
    let Some((count, stored)) = blob else {
        return Ok(ReleaseOutcome::Gone);
    };
    if let Some(refusal) = ReleaseOutcome::refusal(index, count, stored) {
        return Ok(refusal);
    }
    let released = c
        .prepare_cached("DELETE FROM blob_download WHERE download_id = ?1")?
        .execute(params![download_id.as_bytes().as_slice()])?;
    if released == 0 {
        return Ok(ReleaseOutcome::Gone);
    }
    // A blob made before schema 3 has 0 here and stays until it expires.
    let left: Option<i64> = c
        .prepare_cached(
            "UPDATE blob SET downloads_left = downloads_left - 1
             WHERE bid = ?1 AND downloads_left > 0 RETURNING downloads_left",
        )?
        .query_row(params![bid], |row| row.get(0))
        .optional()?;
    if left != Some(0) {
        return Ok(ReleaseOutcome::Released);
    }
    c.prepare_cached("DELETE FROM blob_chunk WHERE bid = ?1")?
        .execute(params![bid])?;
    c.prepare_cached("DELETE FROM blob WHERE bid = ?1")?
        .execute(params![bid])?;
    Ok(ReleaseOutcome::BlobDeleted)
}

fn expire_blobs(c: &Connection, created_before: u64) -> Result<u64, StoreError> {
    let before = as_i64(created_before);
    c.execute(
        "DELETE FROM blob_chunk WHERE bid IN (SELECT bid FROM blob WHERE created < ?1)",
        params![before],
    )?;
    let blobs = c.execute("DELETE FROM blob WHERE created < ?1", params![before])?;
    c.execute(
        "DELETE FROM blob_download WHERE created < ?1",
        params![before],
    )?;
    Ok(blobs as u64)
}

/// How often `checkpoint_loop` copies WAL frames into the main file without blocking anyone.
const PASSIVE_CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);
/// Every this many passive checkpoints, one TRUNCATE checkpoint empties the WAL file.
const TRUNCATE_EVERY_N_CHECKPOINTS: u32 = 5;

/// Copies committed WAL frames into the main file every 200 ms (PASSIVE: never blocks the
/// writer or readers), so a commit only ever waits for its own WAL fsync. Every fifth time
/// (once a second) it checkpoints with TRUNCATE instead: that waits for readers, holds the
/// writer back for the rest of the copy (little is left after the passive rounds) and cuts the
/// WAL file to zero bytes. Old frames hold earlier copies of pages, i.e. envelopes already
/// acknowledged and mailboxes already deleted; truncating is what removes them from disk.
fn checkpoint_loop(connection: Connection, stop: Arc<std::sync::atomic::AtomicBool>) {
    let mut round = 0u32;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(PASSIVE_CHECKPOINT_EVERY);
        round = (round + 1) % TRUNCATE_EVERY_N_CHECKPOINTS;
        let mode = if round == 0 { "TRUNCATE" } else { "PASSIVE" };
        let result = connection.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
            row.get::<_, i64>(0)
        });
        match result {
            Ok(0) => {}
            Ok(_) => tracing::debug!(mode, "checkpoint could not finish (busy)"),
            Err(error) => tracing::debug!(%error, mode, "checkpoint failed"),
        }
    }
}

fn writer_loop(
    mut connection: Connection,
    mut receiver: mpsc::UnboundedReceiver<WriteOp>,
    batch_max: usize,
    listener: AppendListener,
    observer: CommitObserver,
) {
    let mut batch = Vec::with_capacity(batch_max);
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < batch_max {
            match receiver.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let mut done = Vec::with_capacity(batch.len());
        let batch_started = std::time::Instant::now();
        let batch_len = batch.len();
        // IMMEDIATE: take the write lock at BEGIN, waiting (busy timeout) while a TRUNCATE
        // checkpoint holds it. A deferred transaction would first read, then fail with
        // SQLITE_BUSY_SNAPSHOT when the checkpoint reset the WAL under it.
        let committed =
            match connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
                Ok(transaction) => {
                    for op in batch.drain(..) {
                        done.push(apply(&transaction, op));
                    }
                    transaction.commit().map_err(StoreError::from)
                }
                Err(error) => Err(StoreError::from(error)),
            };
        batch.clear();
        tracing::trace!(
            operations = batch_len,
            micros = batch_started.elapsed().as_micros() as u64,
            "group commit"
        );
        observer(batch_len, batch_started.elapsed());
        match committed {
            Ok(()) => {
                for item in &done {
                    if let Done::Append(_, Ok(_), Some((receive_id, stored))) = item {
                        listener(*receive_id, stored.clone());
                    }
                }
                for item in done {
                    answer(item, None);
                }
            }
            Err(error) => {
                tracing::error!(%error, "store commit failed; answering the batch with errors");
                for item in done {
                    answer(item, Some(()));
                }
            }
        }
    }
    // Merge the WAL into the main file on a clean stop (crash recovery does it otherwise).
    if let Err(error) = connection.pragma_update(None, "wal_checkpoint", "TRUNCATE") {
        tracing::warn!(%error, "final WAL checkpoint failed");
    }
}

/// Sends one answer; with `failed` set the commit failed, so every answer is an error.
fn answer(item: Done, failed: Option<()>) {
    macro_rules! send {
        ($reply:expr, $result:expr) => {{
            let result = if failed.is_some() {
                Err(StoreError::WriterGone)
            } else {
                $result
            };
            let _ = $reply.send(result);
        }};
    }
    match item {
        Done::Bool(reply, result) => send!(reply, result),
        Done::Append(reply, result, _) => send!(reply, result),
        Done::Unit(reply, result) => send!(reply, result),
        Done::Secure(reply, result) => send!(reply, result),
        Done::Expire(reply, result) => send!(reply, result),
        Done::BlobCreate(reply, result) => send!(reply, result),
        Done::Put(reply, result) => send!(reply, result),
        Done::Count(reply, result) => send!(reply, result),
        Done::Release(reply, result) => send!(reply, result),
    }
}

fn apply(c: &Connection, op: WriteOp) -> Done {
    match op {
        WriteOp::Create(mailbox, reply) => Done::Bool(reply, create(c, &mailbox)),
        WriteOp::Append(pending, reply) => match append(c, &pending) {
            Ok((outcome, stored)) => {
                Done::Append(reply, Ok(outcome), stored.map(|s| (pending.receive_id, s)))
            }
            Err(error) => Done::Append(reply, Err(error), None),
        },
        WriteOp::Ack(receive_id, message_id, now, reply) => {
            Done::Unit(reply, ack(c, &receive_id, message_id, now))
        }
        WriteOp::Secure(receive_id, sender_key, now, reply) => {
            Done::Secure(reply, secure(c, &receive_id, &sender_key, now))
        }
        WriteOp::Delete(receive_id, reply) => Done::Unit(reply, delete(c, &receive_id)),
        WriteOp::Touch(receive_id, now, reply) => Done::Unit(
            reply,
            c.prepare_cached("UPDATE mailbox SET last_used = ?2 WHERE receive_id = ?1")
                .and_then(|mut s| {
                    s.execute(params![
                        receive_id.as_bytes().as_slice(),
                        as_i64(bucket(now))
                    ])
                })
                .map(|_| ())
                .map_err(StoreError::from),
        ),
        WriteOp::Expire(envelopes_before, mailboxes_before, reply) => {
            Done::Expire(reply, expire(c, envelopes_before, mailboxes_before))
        }
        WriteOp::CreateBlob(blob, reply) => Done::BlobCreate(reply, create_blob(c, &blob)),
        WriteOp::PutChunk(upload_id, index, chunk, reply) => {
            Done::Put(reply, put_chunk(c, &upload_id, index, &chunk))
        }
        WriteOp::DeleteBlob(upload_id, reply) => Done::Unit(reply, delete_blob(c, &upload_id)),
        WriteOp::ReleaseDownload(download_id, blob_ref, index, reply) => {
            Done::Release(reply, release_download(c, &download_id, blob_ref, index))
        }
        WriteOp::ExpireBlobs(created_before, reply) => {
            Done::Count(reply, expire_blobs(c, created_before))
        }
    }
}

fn create(c: &Connection, m: &NewMailbox) -> Result<bool, StoreError> {
    // A clash of the random row id (or of the random receive/send ids) inserts nothing; the
    // caller retries with new ids.
    let inserted = c
        .prepare_cached(
            "INSERT OR IGNORE INTO mailbox
             (mid, receive_id, send_id, auth_key, send_secret_hash, next_message_id, last_used)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            random_row_id()?,
            m.receive_id.as_bytes().as_slice(),
            m.send_id.as_bytes().as_slice(),
            m.auth_key.as_bytes().as_slice(),
            m.send_secret_hash.as_slice(),
            as_i64(random_below(FIRST_MESSAGE_ID_BELOW)?.max(1)),
            as_i64(bucket(m.now)),
        ])?;
    Ok(inserted == 1)
}

fn append(
    c: &Connection,
    pending: &PendingAppend,
) -> Result<(AppendOutcome, Option<StoredEnvelope>), StoreError> {
    let PendingAppend {
        receive_id,
        expected_sender_key,
        envelope,
        now,
        quota,
    } = pending;
    let row: Option<AppendRow> = c
        .prepare_cached(
            "SELECT mid, sender_key, envelope_count, envelope_bytes, next_message_id
             FROM mailbox WHERE receive_id = ?1",
        )?
        .query_row(params![receive_id.as_bytes().as_slice()], |row| {
            row.try_into()
        })
        .optional()?;
    let Some((mid, sender_key, count, bytes, next_message_id)) = row else {
        return Ok((AppendOutcome::Gone, None));
    };
    if sender_changed(sender_key, expected_sender_key) {
        return Ok((AppendOutcome::SenderChanged, None));
    }
    let length = envelope.len() as u64;
    if as_u64(count) >= quota.max_envelopes
        || as_u64(bytes).saturating_add(length) > quota.max_bytes
    {
        return Ok((AppendOutcome::QuotaExceeded, None));
    }
    let received_at = bucket(*now);
    let mut insert = c.prepare_cached(
        "INSERT OR IGNORE INTO envelope (eid, mid, message_id, received_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    // A random row id clashes with probability ~ rows / 2^63; draw again if it ever does.
    let mut inserted = 0;
    for _ in 0..4 {
        inserted = insert.execute(params![
            random_row_id()?,
            mid,
            next_message_id,
            as_i64(received_at),
            &envelope[..]
        ])?;
        if inserted == 1 {
            break;
        }
    }
    if inserted != 1 {
        return Err(StoreError::Randomness(
            "four envelope row ids clashed".into(),
        ));
    }
    let message_id = MessageId(as_u64(next_message_id));
    c.prepare_cached(
        "UPDATE mailbox SET envelope_count = envelope_count + 1,
         envelope_bytes = envelope_bytes + ?2, next_message_id = next_message_id + 1
         WHERE mid = ?1",
    )?
    .execute(params![mid, as_i64(length)])?;
    let stored = StoredEnvelope {
        message_id,
        received_at,
        envelope: envelope.clone(),
    };
    Ok((AppendOutcome::Stored { message_id }, Some(stored)))
}

fn ack(
    c: &Connection,
    receive_id: &ReceiveId,
    message_id: MessageId,
    now: u64,
) -> Result<(), StoreError> {
    let Some(mid) = mailbox_mid(c, receive_id)? else {
        return Ok(());
    };
    let removed: Option<i64> = c
        .prepare_cached(
            "DELETE FROM envelope WHERE mid = ?2 AND message_id = ?1 RETURNING length(body)",
        )?
        .query_row(params![as_i64(message_id.0), mid], |row| row.get(0))
        .optional()?;
    let (count, bytes) = match removed {
        Some(length) => (1, length),
        None => (0, 0),
    };
    c.prepare_cached(
        "UPDATE mailbox SET envelope_count = envelope_count - ?2,
         envelope_bytes = envelope_bytes - ?3, last_used = ?4 WHERE mid = ?1",
    )?
    .execute(params![mid, count, bytes, as_i64(bucket(now))])?;
    Ok(())
}

fn secure(
    c: &Connection,
    receive_id: &ReceiveId,
    sender_key: &AuthPublicKey,
    now: u64,
) -> Result<SecureOutcome, StoreError> {
    let changed = c
        .prepare_cached(
            "UPDATE mailbox SET sender_key = ?2, last_used = ?3
             WHERE receive_id = ?1 AND sender_key IS NULL",
        )?
        .execute(params![
            receive_id.as_bytes().as_slice(),
            sender_key.as_bytes().as_slice(),
            as_i64(bucket(now))
        ])?;
    if changed == 1 {
        return Ok(SecureOutcome::Secured);
    }
    Ok(if mailbox_mid(c, receive_id)?.is_some() {
        SecureOutcome::AlreadySecured
    } else {
        SecureOutcome::Gone
    })
}

fn delete(c: &Connection, receive_id: &ReceiveId) -> Result<(), StoreError> {
    delete_with_rows(
        c,
        "DELETE FROM mailbox WHERE receive_id = ?1 RETURNING mid",
        receive_id.as_bytes(),
        "DELETE FROM envelope WHERE mid = ?1",
    )
}

/// Deletes the row `delete_owner` finds by `id` (a mailbox, a blob), then the rows
/// `delete_rows` finds by the row id it returned (its envelopes, its chunks). No-op if absent.
fn delete_with_rows(
    c: &Connection,
    delete_owner: &str,
    id: &[u8],
    delete_rows: &str,
) -> Result<(), StoreError> {
    let row_id: Option<i64> = c
        .prepare_cached(delete_owner)?
        .query_row(params![id], |row| row.get(0))
        .optional()?;
    if let Some(row_id) = row_id {
        c.prepare_cached(delete_rows)?.execute(params![row_id])?;
    }
    Ok(())
}

/// The row id (`mid`) of the mailbox `receive_id`, if it exists.
fn mailbox_mid(c: &Connection, receive_id: &ReceiveId) -> Result<Option<i64>, StoreError> {
    Ok(
        c.prepare_cached("SELECT mid FROM mailbox WHERE receive_id = ?1")?
            .query_row(params![receive_id.as_bytes().as_slice()], |row| row.get(0))
            .optional()?,
    )
}

fn expire(
    c: &Connection,
    envelopes_before: u64,
    mailboxes_before: u64,
) -> Result<Expired, StoreError> {
    let mailboxes = c
        .execute(
            "DELETE FROM envelope WHERE mid IN (SELECT mid FROM mailbox WHERE last_used < ?1)",
            params![as_i64(mailboxes_before)],
        )
        .and_then(|_| {
            c.execute(
                "DELETE FROM mailbox WHERE last_used < ?1",
                params![as_i64(mailboxes_before)],
            )
        })?;
    c.execute(
        "UPDATE mailbox SET
           envelope_count = envelope_count - (SELECT count(*) FROM envelope e
               WHERE e.mid = mailbox.mid AND e.received_at < ?1),
           envelope_bytes = envelope_bytes - (SELECT coalesce(sum(length(e.body)), 0) FROM envelope e
               WHERE e.mid = mailbox.mid AND e.received_at < ?1)
         WHERE mid IN (SELECT DISTINCT mid FROM envelope WHERE received_at < ?1)",
        params![as_i64(envelopes_before)],
    )?;
    let envelopes = c.execute(
        "DELETE FROM envelope WHERE received_at < ?1",
        params![as_i64(envelopes_before)],
    )?;
    Ok(Expired {
        envelopes: envelopes as u64,
        mailboxes: mailboxes as u64,
    })
}
