//! Durable storage behind a trait, so a PostgreSQL backend can replace the default SQLite one.
//!
//! The store keeps exactly two kinds of rows (see `docs/relay-protocol.md`, "What the relay
//! stores"): mailboxes (receive id, send id, auth public key, send-secret hash, optional sender
//! key, quota usage, next message id, last-used hour) and envelopes (mailbox, relay message id,
//! received-at hour, ciphertext). No addresses, no names, no plaintext, no relay-wide counter.
//!
//! Every write is durable when its future resolves. After an append commits, the store calls
//! its [`AppendListener`] in commit order; the relay uses it to push to live subscribers.
//! Two backends: SQLite ([`sqlite`], one node, the default) and PostgreSQL ([`postgres`],
//! several relay nodes on one database), which also tells this node through [`Cluster`] what
//! the other nodes did (envelopes stored there, subscriptions taken over there).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sealpost_wire::{AuthPublicKey, BlobDownloadId, BlobUploadId, MessageId, ReceiveId, SendId};
use tokio::sync::{mpsc, oneshot};

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "postgres")]
mod postgres_blobs;
pub mod sqlite;

/// Takes what a shutdown slot (the writer's sender, a task or thread handle) holds. A lock
/// poisoned by a panicking holder still yields it: the store is closing either way.
fn take_slot<T>(slot: &std::sync::Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// A boxed store future (keeps [`Store`] object-safe).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where a writer sends the answer to one queued write.
type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// Queues the write that `make` builds around a fresh reply channel on a writer's queue (empty
/// once the store is closing). The write is queued now, not when the future is first polled;
/// the future resolves to the writer's answer, or [`StoreError::WriterGone`].
fn queue_write<W, T: Send + 'static>(
    writer: &std::sync::Mutex<Option<mpsc::UnboundedSender<W>>>,
    make: impl FnOnce(Reply<T>) -> W,
) -> StoreFuture<'static, T> {
    let (reply, receiver) = oneshot::channel();
    let sent = match writer.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        Some(sender) => sender.send(make(reply)).is_ok(),
        None => false,
    };
    Box::pin(async move {
        if !sent {
            return Err(StoreError::WriterGone);
        }
        receiver.await.map_err(|_| StoreError::WriterGone)?
    })
}

/// Stored times are rounded down to this many seconds: expiry (days) needs no more.
pub const TIME_BUCKET_SECS: u64 = 3600;

/// Message ids of a new mailbox start at a random value below this (and above 0).
const FIRST_MESSAGE_ID_BELOW: u64 = 1 << 62;

/// Unix seconds rounded down to the hour.
fn bucket(unix: u64) -> u64 {
    unix - unix % TIME_BUCKET_SECS
}

/// A random positive 63-bit value (row ids, message-id starts).
fn random_below(limit: u64) -> Result<u64, StoreError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Randomness(e.to_string()))?;
    Ok(u64::from_le_bytes(bytes) % limit.max(2))
}

/// A random row id: positive and never a counter.
fn random_row_id() -> Result<i64, StoreError> {
    Ok(as_i64(random_below(u64::MAX >> 1)?.max(1)))
}

/// A stored id column as a fixed-size id (`None` if its length is not `N`).
fn to_id<const N: usize>(bytes: Vec<u8>) -> Option<[u8; N]> {
    <[u8; N]>::try_from(bytes.as_slice()).ok()
}

/// A stored integer column as an unsigned value (a negative one, never written, reads as 0).
fn as_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// An unsigned value as a stored integer column (saturating at `i64::MAX`).
fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Whether the sender key stored on a mailbox is not the one a SEND was checked against
/// ([`AppendOutcome::SenderChanged`]).
fn sender_changed(stored: Option<Vec<u8>>, expected: &Option<AuthPublicKey>) -> bool {
    stored.and_then(to_id::<32>).map(AuthPublicKey) != *expected
}

/// Called after every committed append, in commit order.
pub type AppendListener = Arc<dyn Fn(ReceiveId, StoredEnvelope) + Send + Sync>;

/// Called after every group commit with its operation count and how long it took.
pub type CommitObserver = Arc<dyn Fn(usize, std::time::Duration) + Send + Sync>;

/// What a store on a database shared by several relay nodes reports about the other nodes.
/// The relay's subscription hub implements it; a single-node store never calls it.
pub trait Cluster: Send + Sync + 'static {
    /// The mailboxes with a live subscriber on this node.
    fn subscribed(&self) -> Vec<ReceiveId>;
    /// These mailboxes may hold envelopes that another node stored.
    fn appended_elsewhere(&self, receive_ids: &[ReceiveId]);
    /// This node's own announcement of a subscription to the mailbox was committed (every
    /// later announcement from another node takes the subscription away).
    fn announced_here(&self, receive_id: &ReceiveId);
    /// Another node's subscription to the mailbox committed after this node's announcement:
    /// the subscription here ends.
    fn subscribed_elsewhere(&self, receive_id: &ReceiveId);
}

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// The PostgreSQL server reported an error (or the connection to it broke).
    #[cfg(feature = "postgres")]
    #[error("postgres error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// Two relay nodes' transactions conflicted (deadlock or serialization failure); the writer
    /// tries the batch again.
    #[error("conflict between relay nodes: {0}")]
    Conflict(String),
    /// A statement of a batch failed, which rolled the whole batch back.
    #[error("statement failed: {0}")]
    Statement(String),
    /// No PostgreSQL connection could be had from the pool.
    #[error("postgres pool: {0}")]
    Pool(String),
    /// The writer thread is gone (the store was closed or crashed).
    #[error("store writer is not running")]
    WriterGone,
    /// Opening the store failed.
    #[error("cannot open store: {0}")]
    Open(String),
    /// The operating system gave no randomness for a row id (or random row ids kept clashing).
    #[error("no random row id: {0}")]
    Randomness(String),
}

/// A mailbox to create.
#[derive(Clone, Debug)]
pub struct NewMailbox {
    /// Owner's id.
    pub receive_id: ReceiveId,
    /// Senders' id.
    pub send_id: SendId,
    /// Owner's Ed25519 auth public key.
    pub auth_key: AuthPublicKey,
    /// Hash of the send secret (see [`crate::send_secret_hash`]).
    pub send_secret_hash: [u8; 32],
    /// Unix seconds.
    pub now: u64,
}

/// What SEND needs to know about a mailbox.
#[derive(Clone, Debug)]
pub struct SendTarget {
    /// The mailbox's receive id (where the envelope is appended).
    pub receive_id: ReceiveId,
    /// Hash of its send secret.
    pub send_secret_hash: [u8; 32],
    /// The sender key, once the owner SECUREd the mailbox.
    pub sender_key: Option<AuthPublicKey>,
}

impl SendTarget {
    /// From the stored receive id, send-secret hash and sender key (`None` if a column has not
    /// the length of its id).
    fn from_row(
        receive_id: Vec<u8>,
        send_secret_hash: Vec<u8>,
        sender_key: Option<Vec<u8>>,
    ) -> Option<Self> {
        Some(SendTarget {
            receive_id: ReceiveId(to_id::<32>(receive_id)?),
            send_secret_hash: to_id::<32>(send_secret_hash)?,
            sender_key: match sender_key {
                Some(key) => Some(AuthPublicKey(to_id::<32>(key)?)),
                None => None,
            },
        })
    }
}

/// A stored envelope as delivered.
#[derive(Clone, Debug)]
pub struct StoredEnvelope {
    /// Relay message id.
    pub message_id: MessageId,
    /// Unix seconds when stored.
    pub received_at: u64,
    /// The envelope bytes.
    pub envelope: Arc<[u8]>,
}

impl StoredEnvelope {
    /// From the stored message id, received-at hour and body.
    fn from_row(message_id: i64, received_at: i64, body: Vec<u8>) -> Self {
        StoredEnvelope {
            message_id: MessageId(as_u64(message_id)),
            received_at: as_u64(received_at),
            envelope: Arc::from(body),
        }
    }
}

/// Per-mailbox quota applied by an append.
#[derive(Clone, Copy, Debug)]
pub struct Quota {
    /// Most envelopes.
    pub max_envelopes: u64,
    /// Most bytes.
    pub max_bytes: u64,
}

/// The arguments of one [`Store::append`], as a backend queues them for its writer.
#[derive(Clone, Debug)]
struct PendingAppend {
    /// The mailbox.
    receive_id: ReceiveId,
    /// The sender key the SEND was checked against.
    expected_sender_key: Option<AuthPublicKey>,
    /// The envelope bytes.
    envelope: Arc<[u8]>,
    /// Unix seconds.
    now: u64,
    /// The mailbox's quota.
    quota: Quota,
}

/// Result of an append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Durably stored.
    Stored {
        /// The id it got.
        message_id: MessageId,
    },
    /// The mailbox is full.
    QuotaExceeded,
    /// The mailbox no longer exists.
    Gone,
    /// The mailbox's sender key is not the one the SEND was checked against (secured meanwhile).
    SenderChanged,
}

/// Result of SECURE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecureOutcome {
    /// The sender key is now bound.
    Secured,
    /// A sender key was already bound; nothing changed.
    AlreadySecured,
    /// The mailbox does not exist.
    Gone,
}

/// What a sweep removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expired {
    /// Envelopes removed for age (not counting those of removed mailboxes).
    pub envelopes: u64,
    /// Mailboxes removed for disuse.
    pub mailboxes: u64,
}

/// A blob's row key: random 63 bits, drawn by the relay. Download rows hold it only sealed
/// (XORed with a pad derived from the download secret), so nothing at rest ties a download id
/// to its blob or to another download id (`docs/relay-protocol.md` § Blobs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlobRef(pub u64);

/// One recipient's row of a new blob.
#[derive(Clone, Debug)]
pub struct NewBlobDownload {
    /// The recipient's download id.
    pub download_id: BlobDownloadId,
    /// Hash of its download secret.
    pub auth_hash: [u8; 32],
    /// The blob's [`BlobRef`] sealed under the download secret.
    pub sealed_ref: [u8; 8],
}

/// A blob to create.
#[derive(Clone, Debug)]
pub struct NewBlob {
    /// Row key (random).
    pub blob_ref: BlobRef,
    /// The uploader's id.
    pub upload_id: BlobUploadId,
    /// Hash of the upload secret.
    pub upload_auth_hash: [u8; 32],
    /// Declared chunks (≥ 1).
    pub chunk_count: u32,
    /// One row per recipient.
    pub downloads: Vec<NewBlobDownload>,
    /// Unix seconds.
    pub now: u64,
}

/// Result of creating a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobCreateOutcome {
    /// Stored.
    Created,
    /// The same upload id with the same secret hash and chunk count exists already (a retry).
    AlreadyExists,
    /// The upload id exists with other values, a download id exists, or the row key clashed.
    IdInUse,
}

impl BlobCreateOutcome {
    /// The answer when `blob`'s upload id is stored already, with `hash` and `count`: a retry
    /// of the same BLOB-CREATE (its reply was lost) is answered like the first.
    fn of_existing(blob: &NewBlob, hash: &[u8], count: i64) -> Self {
        if hash == blob.upload_auth_hash.as_slice() && count == i64::from(blob.chunk_count) {
            BlobCreateOutcome::AlreadyExists
        } else {
            BlobCreateOutcome::IdInUse
        }
    }
}

/// What the uploader's commands need to know about a blob.
#[derive(Clone, Debug)]
pub struct BlobUploadRow {
    /// Row key.
    pub blob_ref: BlobRef,
    /// Hash of the upload secret.
    pub upload_auth_hash: [u8; 32],
    /// Declared chunks.
    pub chunk_count: u32,
    /// Chunks `0..stored` are stored.
    pub stored: u32,
}

impl BlobUploadRow {
    /// From the stored row key, upload-secret hash, chunk count and stored count (`None` if a
    /// column is out of range).
    fn from_row(
        bid: i64,
        upload_auth_hash: Vec<u8>,
        chunk_count: i64,
        stored: i64,
    ) -> Option<Self> {
        Some(BlobUploadRow {
            blob_ref: BlobRef(as_u64(bid)),
            upload_auth_hash: to_id::<32>(upload_auth_hash)?,
            chunk_count: u32::try_from(chunk_count).ok()?,
            stored: u32::try_from(stored).ok()?,
        })
    }
}

/// What a download needs: the secret's hash and the sealed blob reference.
#[derive(Clone, Debug)]
pub struct BlobDownloadRow {
    /// Hash of the download secret.
    pub auth_hash: [u8; 32],
    /// The blob's row key, sealed under the download secret.
    pub sealed_ref: [u8; 8],
}

impl BlobDownloadRow {
    /// From the stored download-secret hash and sealed reference (`None` if a length is off).
    fn from_row(auth_hash: Vec<u8>, sealed_ref: Vec<u8>) -> Option<Self> {
        Some(BlobDownloadRow {
            auth_hash: to_id::<32>(auth_hash)?,
            sealed_ref: to_id::<8>(sealed_ref)?,
        })
    }
}

/// Result of storing a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// Stored durably.
    Stored,
    /// That index was stored before; nothing changed.
    AlreadyStored,
    /// The index is beyond the next chunk to store.
    OutOfOrder,
    /// The index is not below the declared chunk count.
    IndexOutOfRange,
    /// No such blob (deleted or expired meanwhile).
    Gone,
}

impl PutOutcome {
    /// Why chunk `index` is not stored on a blob of `count` chunks of which `stored` are, or
    /// `None` when it is the next one to store.
    fn refusal(index: i64, count: i64, stored: i64) -> Option<Self> {
        if index >= count {
            Some(PutOutcome::IndexOutOfRange)
        } else if index < stored {
            Some(PutOutcome::AlreadyStored)
        } else if index > stored {
            Some(PutOutcome::OutOfOrder)
        } else {
            None
        }
    }
}

/// Result of reading a chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkFetch {
    /// The chunk's bytes.
    Chunk(Vec<u8>),
    /// Not uploaded yet.
    Missing,
    /// The index is not below the declared chunk count.
    IndexOutOfRange,
    /// No such blob.
    Gone,
}

/// Result of a recipient's release of its grant (the "done" BLOB-GET,
/// `docs/relay-protocol.md` § 13.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// The grant is gone; other recipients' grants keep the blob.
    Released,
    /// It was the last grant: the blob and every chunk of it are deleted too.
    BlobDeleted,
    /// The index is not the blob's chunk count (only a GET one past the last chunk releases).
    IndexOutOfRange,
    /// The upload is not complete, so no recipient can have fetched every chunk yet.
    Incomplete,
    /// No such blob or grant (expired, deleted, or released before).
    Gone,
}

impl ReleaseOutcome {
    /// Why a GET at `index` releases nothing on a blob of `count` chunks of which `stored` are,
    /// or `None` when it may release its grant.
    fn refusal(index: u32, count: i64, stored: i64) -> Option<Self> {
        if i64::from(index) != count {
            Some(ReleaseOutcome::IndexOutOfRange)
        } else if stored < count {
            Some(ReleaseOutcome::Incomplete)
        } else {
            None
        }
    }
}

/// Blob storage (`docs/relay-protocol.md` § Blobs): chunks live in the relay's database, beside
/// the mailboxes but in tables that name no mailbox. Writes are durable when their future
/// resolves; the writes of one caller are applied in the order the calls were made (so a
/// connection's pipelined BLOB-PUTs arrive in order: a write is queued when the method is
/// called, not when its future is first polled, which is why these futures borrow nothing).
pub trait BlobStore: Send + Sync + 'static {
    /// Creates a blob and its download rows.
    fn create_blob(&self, blob: NewBlob) -> StoreFuture<'static, BlobCreateOutcome>;
    /// The uploader's view of a blob, by upload id.
    fn blob_upload(&self, upload_id: BlobUploadId) -> StoreFuture<'static, Option<BlobUploadRow>>;
    /// Stores chunk `index` if it is the next one.
    fn put_blob_chunk(
        &self,
        upload_id: BlobUploadId,
        index: u32,
        chunk: Arc<[u8]>,
    ) -> StoreFuture<'static, PutOutcome>;
    /// One recipient's row, by download id.
    fn blob_download(
        &self,
        download_id: BlobDownloadId,
    ) -> StoreFuture<'static, Option<BlobDownloadRow>>;
    /// Reads chunk `index` of the blob `blob_ref`.
    fn blob_chunk(&self, blob_ref: BlobRef, index: u32) -> StoreFuture<'static, ChunkFetch>;
    /// Deletes a blob and every chunk of it (no-op if absent).
    fn delete_blob(&self, upload_id: BlobUploadId) -> StoreFuture<'static, ()>;
    /// A recipient fetched every chunk of `blob_ref` and says so with a GET at `index` = the
    /// chunk count: its download row `download_id` is deleted and the blob's count of
    /// outstanding grants goes down by one; at zero the blob and every chunk are deleted
    /// (`docs/relay-protocol.md` § 13.3). The caller checked the download secret.
    fn release_blob_download(
        &self,
        download_id: BlobDownloadId,
        blob_ref: BlobRef,
        index: u32,
    ) -> StoreFuture<'static, ReleaseOutcome>;
    /// Deletes blobs (with their chunks) and download rows created before `created_before`
    /// (Unix seconds); returns how many blobs went.
    fn expire_blobs(&self, created_before: u64) -> StoreFuture<'static, u64>;
}

/// The relay's storage. All writes are durable when their future resolves `Ok`.
pub trait Store: BlobStore + Send + Sync + 'static {
    /// Creates a mailbox; `Ok(false)` if either id already exists (caller retries new ids).
    fn create_mailbox(&self, mailbox: NewMailbox) -> StoreFuture<'_, bool>;
    /// The auth key of a mailbox, by receive id.
    fn auth_key(&self, receive_id: ReceiveId) -> StoreFuture<'_, Option<AuthPublicKey>>;
    /// What SEND needs, by send id.
    fn send_target(&self, send_id: SendId) -> StoreFuture<'_, Option<SendTarget>>;
    /// Appends an envelope if the mailbox exists, still has `expected_sender_key`, and has room.
    fn append(
        &self,
        receive_id: ReceiveId,
        expected_sender_key: Option<AuthPublicKey>,
        envelope: Arc<[u8]>,
        now: u64,
        quota: Quota,
    ) -> StoreFuture<'_, AppendOutcome>;
    /// Up to `limit` envelopes with ids greater than `after`, oldest first.
    fn fetch(
        &self,
        receive_id: ReceiveId,
        after: MessageId,
        limit: usize,
    ) -> StoreFuture<'_, Vec<StoredEnvelope>>;
    /// Deletes one envelope (no-op if absent) and marks the mailbox used.
    fn ack(&self, receive_id: ReceiveId, message_id: MessageId, now: u64) -> StoreFuture<'_, ()>;
    /// Deletes the envelopes of one ACK frame (absent ones are no-ops) and marks the mailbox
    /// used. Every delete is queued when this is called, so they share a group commit. The
    /// default queues one [`Store::ack`] per id; a backend may do it in one statement.
    fn ack_many(
        &self,
        receive_id: ReceiveId,
        message_ids: Vec<MessageId>,
        now: u64,
    ) -> StoreFuture<'_, ()> {
        let deletes: Vec<_> = message_ids
            .iter()
            .map(|message_id| self.ack(receive_id, *message_id, now))
            .collect();
        Box::pin(async move {
            futures_util::future::try_join_all(deletes).await?;
            Ok(())
        })
    }
    /// Binds a sender key once.
    fn secure(
        &self,
        receive_id: ReceiveId,
        sender_key: AuthPublicKey,
        now: u64,
    ) -> StoreFuture<'_, SecureOutcome>;
    /// Deletes a mailbox and all its envelopes (no-op if absent).
    fn delete_mailbox(&self, receive_id: ReceiveId) -> StoreFuture<'_, ()>;
    /// Marks the mailbox used by its owner on SUBSCRIBE. The write is queued when this is
    /// called, so the caller may drop the future. On a shared database the commit also
    /// announces to the other nodes that this node now holds the mailbox's subscription.
    fn touch(&self, receive_id: ReceiveId, now: u64) -> StoreFuture<'_, ()>;
    /// Deletes envelopes received before `envelopes_before` and mailboxes last used before
    /// `mailboxes_before` (Unix seconds).
    fn expire(&self, envelopes_before: u64, mailboxes_before: u64) -> StoreFuture<'_, Expired>;
    /// Commits everything queued and stops the writer.
    fn close(&self) -> StoreFuture<'_, ()>;
}
