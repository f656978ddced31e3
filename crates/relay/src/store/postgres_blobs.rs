//! Blobs on the PostgreSQL store (`docs/relay-protocol.md` § Blobs): the same three tables as on
//! SQLite, with random row keys and download rows that name their blob only sealed.
//!
//! Blob writes go through one task per node ([`BlobWriter`]) that applies them one after
//! another in the order they were queued, each in its own transaction on a pooled connection:
//! a connection's pipelined BLOB-PUTs therefore arrive in order (the mailbox writer sorts its
//! batches by receive id, which would reorder them). A chunk write locks its blob row
//! (`FOR UPDATE`), so writers and sweepers of several nodes serialise on it; the sweeper skips
//! blob rows locked at that moment (`SKIP LOCKED`) and takes them next time.

use std::sync::{Arc, Mutex};

use sealpost_wire::{BlobDownloadId, BlobUploadId};
use tokio::sync::{mpsc, oneshot};

use super::postgres::PostgresStore;
use super::sqlite::{as_i64, as_u64, bucket, random_row_id, to_id};
use super::{
    BlobCreateOutcome, BlobDownloadRow, BlobRef, BlobStore, BlobUploadRow, ChunkFetch, NewBlob,
    PutOutcome, ReleaseOutcome, StoreError, StoreFuture, take_slot,
};

/// The blob tables in PostgreSQL types (schema version 2). Chunks are ciphertext, so TOAST
/// does not try to compress them.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS blob (
    bid bigint PRIMARY KEY,
    upload_id bytea NOT NULL UNIQUE,
    upload_auth_hash bytea NOT NULL,
    chunk_count bigint NOT NULL,
    stored bigint NOT NULL DEFAULT 0,
    created bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS blob_by_age ON blob(created);
CREATE TABLE IF NOT EXISTS blob_chunk (
    cid bigint PRIMARY KEY,
    bid bigint NOT NULL,
    idx bigint NOT NULL,
    body bytea NOT NULL
);
ALTER TABLE blob_chunk ALTER COLUMN body SET STORAGE EXTERNAL;
CREATE UNIQUE INDEX IF NOT EXISTS blob_chunk_by_blob ON blob_chunk(bid, idx);
CREATE TABLE IF NOT EXISTS blob_download (
    download_id bytea PRIMARY KEY,
    auth_hash bytea NOT NULL,
    sealed_ref bytea NOT NULL,
    created bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS blob_download_by_age ON blob_download(created);
";

/// Schema version 3: a blob counts the grants not yet released (`docs/relay-protocol.md`
/// § 13.3); the last release deletes it. A blob made before has 0 and waits for its expiry.
pub(super) const RELEASE_SCHEMA: &str = "
ALTER TABLE blob ADD COLUMN IF NOT EXISTS downloads_left bigint NOT NULL DEFAULT 0;
";

/// Most blobs one sweep removes (the next sweep takes the rest).
const SWEEP_BLOBS: i64 = 1_000;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Job {
    Create(NewBlob, Reply<BlobCreateOutcome>),
    Put(BlobUploadId, u32, Arc<[u8]>, Reply<PutOutcome>),
    Delete(BlobUploadId, Reply<()>),
    Release(BlobDownloadId, BlobRef, u32, Reply<ReleaseOutcome>),
}

/// The task that applies blob writes in arrival order.
pub(crate) struct BlobWriter {
    sender: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl BlobWriter {
    /// Starts the task on the current runtime.
    pub(super) fn start(pool: deadpool_postgres::Pool) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(pool, receiver));
        Self {
            sender: Mutex::new(Some(sender)),
            task: Mutex::new(Some(task)),
        }
    }

    fn submit<T: Send + 'static>(
        &self,
        make: impl FnOnce(Reply<T>) -> Job,
    ) -> StoreFuture<'static, T> {
        let (reply, receiver) = oneshot::channel();
        let sent = match self
            .sender
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
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

    /// Lets the task finish what is queued, then stops it.
    pub(super) async fn close(&self) {
        drop(take_slot(&self.sender));
        if let Some(task) = take_slot(&self.task) {
            let _ = task.await;
        }
    }
}

async fn run(pool: deadpool_postgres::Pool, mut receiver: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = receiver.recv().await {
        let mut client = match pool.get().await {
            Ok(client) => client,
            Err(error) => {
                let error = StoreError::Pool(error.to_string());
                match job {
                    Job::Create(_, reply) => drop(reply.send(Err(error))),
                    Job::Put(_, _, _, reply) => drop(reply.send(Err(error))),
                    Job::Delete(_, reply) => drop(reply.send(Err(error))),
                    Job::Release(_, _, _, reply) => drop(reply.send(Err(error))),
                }
                continue;
            }
        };
        match job {
            Job::Create(blob, reply) => drop(reply.send(create(&mut client, &blob).await)),
            Job::Put(upload_id, index, chunk, reply) => {
                drop(reply.send(put(&mut client, &upload_id, index, &chunk).await))
            }
            Job::Delete(upload_id, reply) => {
                drop(reply.send(delete(&mut client, &upload_id).await))
            }
            Job::Release(download_id, blob_ref, index, reply) => {
                drop(reply.send(release(&mut client, &download_id, blob_ref, index).await))
            }
        }
    }
}

async fn create(
    client: &mut deadpool_postgres::Object,
    blob: &NewBlob,
) -> Result<BlobCreateOutcome, StoreError> {
    let transaction = client.transaction().await?;
    let existing = transaction
        .query_opt(
            "SELECT upload_auth_hash, chunk_count FROM blob WHERE upload_id = $1 FOR UPDATE",
            &[&blob.upload_id.as_bytes().as_slice()],
        )
        .await?;
    if let Some(row) = existing {
        let hash: Vec<u8> = row.get(0);
        let count: i64 = row.get(1);
        let same = hash.as_slice() == blob.upload_auth_hash.as_slice()
            && count == i64::from(blob.chunk_count);
        return Ok(if same {
            BlobCreateOutcome::AlreadyExists
        } else {
            BlobCreateOutcome::IdInUse
        });
    }
    let ids: Vec<&[u8]> = blob
        .downloads
        .iter()
        .map(|d| d.download_id.as_bytes().as_slice())
        .collect();
    let taken: i64 = transaction
        .query_one(
            "SELECT count(*) FROM blob_download WHERE download_id = ANY($1)",
            &[&ids],
        )
        .await?
        .get(0);
    if taken > 0 {
        return Ok(BlobCreateOutcome::IdInUse);
    }
    let created = as_i64(bucket(blob.now));
    let inserted = transaction
        .execute(
            "INSERT INTO blob (bid, upload_id, upload_auth_hash, chunk_count, created,
             downloads_left) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[
                &as_i64(blob.blob_ref.0),
                &blob.upload_id.as_bytes().as_slice(),
                &blob.upload_auth_hash.as_slice(),
                &i64::from(blob.chunk_count),
                &created,
                &i64::try_from(blob.downloads.len()).unwrap_or(i64::MAX),
            ],
        )
        .await?;
    if inserted != 1 {
        return Ok(BlobCreateOutcome::IdInUse);
    }
    for download in &blob.downloads {
        transaction
            .execute(
                "INSERT INTO blob_download (download_id, auth_hash, sealed_ref, created)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[
                    &download.download_id.as_bytes().as_slice(),
                    &download.auth_hash.as_slice(),
                    &download.sealed_ref.as_slice(),
                    &created,
                ],
            )
            .await?;
    }
    transaction.commit().await?;
    Ok(BlobCreateOutcome::Created)
}

async fn put(
    client: &mut deadpool_postgres::Object,
    upload_id: &BlobUploadId,
    index: u32,
    chunk: &Arc<[u8]>,
) -> Result<PutOutcome, StoreError> {
    let transaction = client.transaction().await?;
    let row = transaction
        .query_opt(
            "SELECT bid, chunk_count, stored FROM blob WHERE upload_id = $1 FOR UPDATE",
            &[&upload_id.as_bytes().as_slice()],
        )
        .await?;
    let Some(row) = row else {
        return Ok(PutOutcome::Gone);
    };
    let (bid, count, stored): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    let index = i64::from(index);
    if index >= count {
        return Ok(PutOutcome::IndexOutOfRange);
    }
    if index < stored {
        return Ok(PutOutcome::AlreadyStored);
    }
    if index > stored {
        return Ok(PutOutcome::OutOfOrder);
    }
    transaction
        .execute(
            "INSERT INTO blob_chunk (cid, bid, idx, body) VALUES ($1, $2, $3, $4)",
            &[&random_row_id()?, &bid, &index, &&chunk[..]],
        )
        .await?;
    transaction
        .execute(
            "UPDATE blob SET stored = stored + 1 WHERE bid = $1",
            &[&bid],
        )
        .await?;
    transaction.commit().await?;
    Ok(PutOutcome::Stored)
}

async fn delete(
    client: &mut deadpool_postgres::Object,
    upload_id: &BlobUploadId,
) -> Result<(), StoreError> {
    let transaction = client.transaction().await?;
    let row = transaction
        .query_opt(
            "DELETE FROM blob WHERE upload_id = $1 RETURNING bid",
            &[&upload_id.as_bytes().as_slice()],
        )
        .await?;
    if let Some(row) = row {
        let bid: i64 = row.get(0);
        transaction
            .execute("DELETE FROM blob_chunk WHERE bid = $1", &[&bid])
            .await?;
    }
    transaction.commit().await?;
    Ok(())
}

async fn release(
    client: &mut deadpool_postgres::Object,
    download_id: &BlobDownloadId,
    blob_ref: BlobRef,
    index: u32,
) -> Result<ReleaseOutcome, StoreError> {
    let bid = as_i64(blob_ref.0);
    let transaction = client.transaction().await?;
    let row = transaction
        .query_opt(
            "SELECT chunk_count, stored FROM blob WHERE bid = $1 FOR UPDATE",
            &[&bid],
        )
        .await?;
    let Some(row) = row else {
        return Ok(ReleaseOutcome::Gone);
    };
    let (count, stored): (i64, i64) = (row.get(0), row.get(1));
    if i64::from(index) != count {
        return Ok(ReleaseOutcome::IndexOutOfRange);
    }
    if stored < count {
        return Ok(ReleaseOutcome::Incomplete);
    }
    let released = transaction
        .execute(
            "DELETE FROM blob_download WHERE download_id = $1",
            &[&download_id.as_bytes().as_slice()],
        )
        .await?;
    if released == 0 {
        return Ok(ReleaseOutcome::Gone);
    }
    // A blob made before schema 3 has 0 here and stays until it expires.
    let left: Option<i64> = transaction
        .query_opt(
            "UPDATE blob SET downloads_left = downloads_left - 1
             WHERE bid = $1 AND downloads_left > 0 RETURNING downloads_left",
            &[&bid],
        )
        .await?
        .map(|row| row.get(0));
    let outcome = if left == Some(0) {
        transaction
            .execute("DELETE FROM blob_chunk WHERE bid = $1", &[&bid])
            .await?;
        transaction
            .execute("DELETE FROM blob WHERE bid = $1", &[&bid])
            .await?;
        ReleaseOutcome::BlobDeleted
    } else {
        ReleaseOutcome::Released
    };
    transaction.commit().await?;
    Ok(outcome)
}

impl BlobStore for PostgresStore {
    fn create_blob(&self, blob: NewBlob) -> StoreFuture<'static, BlobCreateOutcome> {
        self.blob_writer.submit(|reply| Job::Create(blob, reply))
    }

    fn blob_upload(&self, upload_id: BlobUploadId) -> StoreFuture<'static, Option<BlobUploadRow>> {
        let pool = self.pool.clone();
        Box::pin(async move {
            let client = pool
                .get()
                .await
                .map_err(|e| StoreError::Pool(e.to_string()))?;
            let row = client
                .query_opt(
                    "SELECT bid, upload_auth_hash, chunk_count, stored FROM blob
                     WHERE upload_id = $1",
                    &[&upload_id.as_bytes().as_slice()],
                )
                .await?;
            Ok(row.and_then(|row| {
                Some(BlobUploadRow {
                    blob_ref: BlobRef(as_u64(row.get(0))),
                    upload_auth_hash: to_id::<32>(row.get(1))?,
                    chunk_count: u32::try_from(row.get::<_, i64>(2)).ok()?,
                    stored: u32::try_from(row.get::<_, i64>(3)).ok()?,
                })
            }))
        })
    }

    fn put_blob_chunk(
        &self,
        upload_id: BlobUploadId,
        index: u32,
        chunk: Arc<[u8]>,
    ) -> StoreFuture<'static, PutOutcome> {
        self.blob_writer
            .submit(|reply| Job::Put(upload_id, index, chunk, reply))
    }

    fn blob_download(
        &self,
        download_id: BlobDownloadId,
    ) -> StoreFuture<'static, Option<BlobDownloadRow>> {
        let pool = self.pool.clone();
        Box::pin(async move {
            let client = pool
                .get()
                .await
                .map_err(|e| StoreError::Pool(e.to_string()))?;
            let row = client
                .query_opt(
                    "SELECT auth_hash, sealed_ref FROM blob_download WHERE download_id = $1",
                    &[&download_id.as_bytes().as_slice()],
                )
                .await?;
            Ok(row.and_then(|row| {
                Some(BlobDownloadRow {
                    auth_hash: to_id::<32>(row.get(0))?,
                    sealed_ref: to_id::<8>(row.get(1))?,
                })
            }))
        })
    }

    fn blob_chunk(&self, blob_ref: BlobRef, index: u32) -> StoreFuture<'static, ChunkFetch> {
        let pool = self.pool.clone();
        Box::pin(async move {
            let client = pool
                .get()
                .await
                .map_err(|e| StoreError::Pool(e.to_string()))?;
            let blob = client
                .query_opt(
                    "SELECT chunk_count FROM blob WHERE bid = $1",
                    &[&as_i64(blob_ref.0)],
                )
                .await?;
            let Some(blob) = blob else {
                return Ok(ChunkFetch::Gone);
            };
            let count: i64 = blob.get(0);
            if i64::from(index) >= count {
                return Ok(ChunkFetch::IndexOutOfRange);
            }
            let body = client
                .query_opt(
                    "SELECT body FROM blob_chunk WHERE bid = $1 AND idx = $2",
                    &[&as_i64(blob_ref.0), &i64::from(index)],
                )
                .await?;
            Ok(match body {
                Some(row) => ChunkFetch::Chunk(row.get(0)),
                None => ChunkFetch::Missing,
            })
        })
    }

    fn delete_blob(&self, upload_id: BlobUploadId) -> StoreFuture<'static, ()> {
        self.blob_writer
            .submit(|reply| Job::Delete(upload_id, reply))
    }

    fn release_blob_download(
        &self,
        download_id: BlobDownloadId,
        blob_ref: BlobRef,
        index: u32,
    ) -> StoreFuture<'static, ReleaseOutcome> {
        self.blob_writer
            .submit(|reply| Job::Release(download_id, blob_ref, index, reply))
    }

    fn expire_blobs(&self, created_before: u64) -> StoreFuture<'static, u64> {
        let pool = self.pool.clone();
        Box::pin(async move {
            let mut client = pool
                .get()
                .await
                .map_err(|e| StoreError::Pool(e.to_string()))?;
            let transaction = client.transaction().await?;
            let before = as_i64(created_before);
            let old: Vec<i64> = transaction
                .query(
                    "SELECT bid FROM blob WHERE created < $1 LIMIT $2 FOR UPDATE SKIP LOCKED",
                    &[&before, &SWEEP_BLOBS],
                )
                .await?
                .iter()
                .map(|row| row.get(0))
                .collect();
            transaction
                .execute("DELETE FROM blob_chunk WHERE bid = ANY($1)", &[&old])
                .await?;
            let blobs = transaction
                .execute("DELETE FROM blob WHERE bid = ANY($1)", &[&old])
                .await?;
            transaction
                .execute("DELETE FROM blob_download WHERE created < $1", &[&before])
                .await?;
            transaction.commit().await?;
            Ok(blobs)
        })
    }
}
