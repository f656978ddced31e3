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

use deadpool_postgres::Transaction;
use sealpost_wire::{BlobDownloadId, BlobUploadId};
use tokio::sync::mpsc;

use super::postgres::{PostgresStore, delete_with_rows, lockable_ids, pooled};
use super::{
    BlobCreateOutcome, BlobDownloadRow, BlobRef, BlobStore, BlobUploadRow, ChunkFetch, NewBlob,
    PutOutcome, ReleaseOutcome, Reply, StoreError, StoreFuture, as_i64, bucket, queue_write,
    random_row_id, take_slot,
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

enum Job {
    Create(NewBlob, Reply<BlobCreateOutcome>),
    Put(BlobUploadId, u32, Arc<[u8]>, Reply<PutOutcome>),
    Delete(BlobUploadId, Reply<()>),
    Release(BlobDownloadId, BlobRef, u32, Reply<ReleaseOutcome>),
}

impl Job {
    /// Answers the job with `error` (no connection or transaction could be had).
    fn fail(self, error: StoreError) {
        match self {
            Job::Create(_, reply) => drop(reply.send(Err(error))),
            Job::Put(_, _, _, reply) => drop(reply.send(Err(error))),
            Job::Delete(_, reply) => drop(reply.send(Err(error))),
            Job::Release(_, _, _, reply) => drop(reply.send(Err(error))),
        }
    }
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
        queue_write(&self.sender, make)
    }

    /// Lets the task finish what is queued, then stops it.
    pub(super) async fn close(&self) {
        drop(take_slot(&self.sender));
        if let Some(task) = take_slot(&self.task) {
            let _ = task.await;
        }
    }
}

/// Applies each job in its own transaction on a pooled connection.
async fn run(pool: deadpool_postgres::Pool, mut receiver: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = receiver.recv().await {
        let mut client = match pooled(&pool).await {
            Ok(client) => client,
            Err(error) => {
                job.fail(error);
                continue;
            }
        };
        let transaction = match client.transaction().await {
            Ok(transaction) => transaction,
            Err(error) => {
                job.fail(error.into());
                continue;
            }
        };
        match job {
            Job::Create(blob, reply) => {
                let result = create(&transaction, &blob).await;
                finish(transaction, result, reply).await;
            }
            Job::Put(upload_id, index, chunk, reply) => {
                let result = put(&transaction, &upload_id, index, &chunk).await;
                finish(transaction, result, reply).await;
            }
            Job::Delete(upload_id, reply) => {
                let result = delete(&transaction, &upload_id).await;
                finish(transaction, result, reply).await;
            }
            Job::Release(download_id, blob_ref, index, reply) => {
                let result = release(&transaction, &download_id, blob_ref, index).await;
                finish(transaction, result, reply).await;
            }
        }
    }
}

/// Commits a job's transaction if the job succeeded, then answers it. An answer that wrote
/// nothing (a refusal) commits an empty transaction, which changes nothing; a failed job's
/// transaction is rolled back when dropped.
async fn finish<T>(transaction: Transaction<'_>, result: Result<T, StoreError>, reply: Reply<T>) {
    let result = match result {
        Ok(value) => transaction
            .commit()
            .await
            .map(|()| value)
            .map_err(StoreError::from),
        Err(error) => Err(error),
    };
    drop(reply.send(result));
}

async fn create(
    transaction: &Transaction<'_>,
    blob: &NewBlob,
) -> Result<BlobCreateOutcome, StoreError> {
    let existing = transaction
        .query_opt(
            "SELECT upload_auth_hash, chunk_count FROM blob WHERE upload_id = $1 FOR UPDATE",
            &[&blob.upload_id.as_bytes().as_slice()],
        )
        .await?;
    if let Some(row) = existing {
        let hash: Vec<u8> = row.get(0);
        return Ok(BlobCreateOutcome::of_existing(blob, &hash, row.get(1)));
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
    Ok(BlobCreateOutcome::Created)
}

async fn put(
    transaction: &Transaction<'_>,
    upload_id: &BlobUploadId,
    index: u32,
    chunk: &Arc<[u8]>,
) -> Result<PutOutcome, StoreError> {
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
    if let Some(refusal) = PutOutcome::refusal(index, count, stored) {
        return Ok(refusal);
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
    Ok(PutOutcome::Stored)
}

async fn delete(transaction: &Transaction<'_>, upload_id: &BlobUploadId) -> Result<(), StoreError> {
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
    Ok(())
}

async fn release(
    transaction: &Transaction<'_>,
    download_id: &BlobDownloadId,
    blob_ref: BlobRef,
    index: u32,
) -> Result<ReleaseOutcome, StoreError> {
    let bid = as_i64(blob_ref.0);
    let row = transaction
        .query_opt(
            "SELECT chunk_count, stored FROM blob WHERE bid = $1 FOR UPDATE",
            &[&bid],
        )
        .await?;
    let Some(row) = row else {
        return Ok(ReleaseOutcome::Gone);
    };
    if let Some(refusal) = ReleaseOutcome::refusal(index, row.get(0), row.get(1)) {
        return Ok(refusal);
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
    if left != Some(0) {
        return Ok(ReleaseOutcome::Released);
    }
    transaction
        .execute("DELETE FROM blob_chunk WHERE bid = $1", &[&bid])
        .await?;
    transaction
        .execute("DELETE FROM blob WHERE bid = $1", &[&bid])
        .await?;
    Ok(ReleaseOutcome::BlobDeleted)
}

impl BlobStore for PostgresStore {
    fn create_blob(&self, blob: NewBlob) -> StoreFuture<'static, BlobCreateOutcome> {
        self.blob_writer.submit(|reply| Job::Create(blob, reply))
    }

    fn blob_upload(&self, upload_id: BlobUploadId) -> StoreFuture<'static, Option<BlobUploadRow>> {
        self.read(move |client| async move {
            let row = client
                .query_opt(
                    "SELECT bid, upload_auth_hash, chunk_count, stored FROM blob
                     WHERE upload_id = $1",
                    &[&upload_id.as_bytes().as_slice()],
                )
                .await?;
            Ok(row.and_then(|row| {
                BlobUploadRow::from_row(row.get(0), row.get(1), row.get(2), row.get(3))
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
        self.read(move |client| async move {
            let row = client
                .query_opt(
                    "SELECT auth_hash, sealed_ref FROM blob_download WHERE download_id = $1",
                    &[&download_id.as_bytes().as_slice()],
                )
                .await?;
            Ok(row.and_then(|row| BlobDownloadRow::from_row(row.get(0), row.get(1))))
        })
    }

    fn blob_chunk(&self, blob_ref: BlobRef, index: u32) -> StoreFuture<'static, ChunkFetch> {
        self.read(move |client| async move {
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
        self.read(move |mut client| async move {
            let transaction = client.transaction().await?;
            let before = as_i64(created_before);
            let old = lockable_ids(
                &transaction,
                "SELECT bid FROM blob WHERE created < $1 LIMIT $2 FOR UPDATE SKIP LOCKED",
                before,
                SWEEP_BLOBS,
            )
            .await?;
            let blobs = delete_with_rows(
                &transaction,
                "DELETE FROM blob_chunk WHERE bid = ANY($1)",
                "DELETE FROM blob WHERE bid = ANY($1)",
                &old,
            )
            .await?;
            transaction
                .execute("DELETE FROM blob_download WHERE created < $1", &[&before])
                .await?;
            transaction.commit().await?;
            Ok(blobs)
        })
    }
}
