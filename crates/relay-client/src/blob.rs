//! Blob transfers (`docs/relay-protocol.md` § Blobs): a file's sealed chunks uploaded once to a
//! relay and downloaded by each recipient with its own random id and secret.
//!
//! Every id and secret is drawn by the uploader ([`BlobUpload::random`],
//! [`BlobDownload`] via [`random_download`]) before anything is sent, so the pointer that
//! travels in the message can be built first. The relay stores only hashes of the secrets and
//! nothing that ties a download id to another one, to the upload, or to a mailbox.
//!
//! A [`BlobConnection`] is its own WebSocket connection, never the send, owner or subscribe
//! connection: a 100 MiB upload then never delays message delivery (replies on one socket are
//! read in order behind every chunk before them), and the relay cannot tie the file to the
//! mailboxes this client reads or writes by connection. Open one per blob transfer
//! ([`crate::Connector::connect_blob`]) and drop it after.
//!
//! # Upload and resume
//!
//! 1. [`BlobConnection::create`] with the chunk count and the recipients' [`BlobDownload`]s.
//!    Idempotent: the same call again (after a lost reply or a restart) is `Ok`.
//! 2. [`BlobConnection::put_chunk`] for index 0, 1, 2 … in order. Each `Ok` means the chunk is
//!    durable on the relay. Puts may be pipelined (clone the connection, issue them in index
//!    order, e.g. `futures::stream::iter(..).buffered(n)`): the relay applies them in the order
//!    they arrive. A put of an index already stored is `Ok` and changes nothing.
//! 3. After a restart, a lost connection or any error of a put: [`BlobConnection::status`]
//!    says how many chunks are stored (`stored`); continue with index `stored`.
//!
//! Downloads: [`BlobConnection::get_chunk`] per index, in any order; [`ClientError::ChunkMissing`]
//! means the uploader has not got that far yet, [`ClientError::BlobGone`] that the blob expired,
//! was deleted, or the secret is wrong. Once every chunk is stored and checked on the device,
//! [`BlobConnection::release`] gives the grant back; the relay deletes the blob when the last
//! recipient has (`docs/relay-protocol.md` § 13.3).

use sealpost_wire::requests;
pub use sealpost_wire::{
    BLOB_CHUNK_BYTES, BlobDownload, BlobDownloadAuth, BlobDownloadId, BlobUploadAuth, BlobUploadId,
    Response,
};

use crate::connection::{Connection, response_name};
use crate::error::ClientError;

/// The uploader's credentials of one blob: its upload id and upload secret.
#[derive(Clone, PartialEq, Eq)]
pub struct BlobUpload {
    /// Names the blob in every uploader command.
    pub upload_id: BlobUploadId,
    /// Proves the caller is the uploader.
    pub upload_auth: BlobUploadAuth,
}

impl std::fmt::Debug for BlobUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hand-written: the upload secret never reaches a log.
        f.debug_struct("BlobUpload")
            .field("upload_id", &self.upload_id)
            .finish_non_exhaustive()
    }
}

fn random32() -> Result<[u8; 32], getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes)
}

impl BlobUpload {
    /// Fresh random upload credentials (64 bytes from the operating system).
    pub fn random() -> Result<Self, getrandom::Error> {
        Ok(Self {
            upload_id: BlobUploadId(random32()?),
            upload_auth: BlobUploadAuth::new(random32()?),
        })
    }
}

/// Fresh random download credentials for one recipient (64 bytes from the operating system).
pub fn random_download() -> Result<BlobDownload, getrandom::Error> {
    Ok(BlobDownload {
        download_id: BlobDownloadId(random32()?),
        download_auth: BlobDownloadAuth::new(random32()?),
    })
}

/// How far an upload got (BLOB-STATUS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobProgress {
    /// Chunks declared at create.
    pub chunk_count: u32,
    /// Chunks `0..stored` are stored durably; the next put is index `stored`.
    pub stored: u32,
}

impl BlobProgress {
    /// True when every declared chunk is stored.
    pub fn is_complete(&self) -> bool {
        self.stored >= self.chunk_count
    }
}

/// A connection for blob transfers only (see the module docs). Cheap to clone; clones share
/// the socket, so puts can be pipelined.
#[derive(Clone)]
pub struct BlobConnection(pub(crate) Connection);

impl std::ops::Deref for BlobConnection {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0
    }
}

impl BlobConnection {
    /// BLOB-CREATE: declares a blob of `chunk_count` chunks that each of `downloads` may fetch.
    /// `password` is the relay password, if the relay has one. Idempotent for the same values.
    ///
    /// Errors: [`ClientError::TooLarge`] (over the relay's size limit per file),
    /// [`ClientError::QuotaFull`] (this connection's or this address's blob quota),
    /// [`ClientError::LimitExceeded`] (too many recipients), [`ClientError::IdInUse`],
    /// [`ClientError::PasswordRequired`], [`ClientError::RejectedAsMalformed`] (zero chunks or
    /// no download).
    pub async fn create(
        &self,
        upload: &BlobUpload,
        chunk_count: u32,
        downloads: &[BlobDownload],
        password: Option<&str>,
    ) -> Result<(), ClientError> {
        self.0
            .request_ok(requests::blob_create(
                upload.upload_id,
                upload.upload_auth.clone(),
                chunk_count,
                downloads.to_vec(),
                password.map(str::to_owned),
            ))
            .await
    }

    /// BLOB-PUT: stores chunk `index` (exactly [`BLOB_CHUNK_BYTES`] bytes, checked before
    /// sending: [`ClientError::ChunkSize`]). `Ok` means it is durable on the relay.
    ///
    /// Errors: [`ClientError::OutOfOrder`] (index beyond the next one to store: ask
    /// [`Self::status`]), [`ClientError::ChunkIndex`] (index ≥ chunk count),
    /// [`ClientError::BlobGone`].
    pub async fn put_chunk(
        &self,
        upload: &BlobUpload,
        index: u32,
        chunk: &[u8],
    ) -> Result<(), ClientError> {
        if chunk.len() != BLOB_CHUNK_BYTES {
            return Err(ClientError::ChunkSize);
        }
        self.0
            .request_ok(requests::blob_put(
                upload.upload_id,
                upload.upload_auth.clone(),
                index,
                chunk.to_vec(),
            ))
            .await
    }

    /// BLOB-STATUS: how many chunks are stored; resume uploading at `stored`.
    /// Errors: [`ClientError::BlobGone`].
    pub async fn status(&self, upload: &BlobUpload) -> Result<BlobProgress, ClientError> {
        let body = requests::blob_status(upload.upload_id, upload.upload_auth.clone());
        match self.0.request(body).await? {
            Response::BlobState {
                chunk_count,
                stored,
            } => Ok(BlobProgress {
                chunk_count,
                stored,
            }),
            Response::Error { code } => Err(ClientError::from_code(code)),
            other => Err(self.0.fail(ClientError::Protocol(format!(
                "expected BLOB-STATE, got {}",
                response_name(&other)
            )))),
        }
    }

    /// BLOB-GET: chunk `index` as the recipient `download`, exactly [`BLOB_CHUNK_BYTES`] bytes
    /// (a relay that sends another length or another index breaks the protocol). Verifying and
    /// opening it is the caller's job (`sealpost_crypto::attachment`).
    ///
    /// Errors: [`ClientError::ChunkMissing`] (not uploaded yet), [`ClientError::ChunkIndex`],
    /// [`ClientError::BlobGone`] (expired, deleted, never created, or wrong secret).
    pub async fn get_chunk(
        &self,
        download: &BlobDownload,
        index: u32,
    ) -> Result<Vec<u8>, ClientError> {
        let body = requests::blob_get(download.download_id, download.download_auth.clone(), index);
        match self.0.request(body).await? {
            Response::BlobChunk {
                index: answered,
                chunk,
            } if answered == index && chunk.len() == BLOB_CHUNK_BYTES => Ok(chunk),
            Response::BlobChunk { .. } => Err(self.0.fail(ClientError::Protocol(
                "BLOB-CHUNK of another index or length".into(),
            ))),
            Response::Error { code } => Err(ClientError::from_code(code)),
            other => Err(self.0.fail(ClientError::Protocol(format!(
                "expected BLOB-CHUNK, got {}",
                response_name(&other)
            )))),
        }
    }

    /// The release: a BLOB-GET at `chunk_count` (one past the last chunk) says this recipient
    /// has every chunk. The relay deletes the grant and, with the last one, the blob
    /// (`docs/relay-protocol.md` § 13.3). Only after the file is stored and verified: the grant
    /// fetches nothing afterwards.
    ///
    /// Errors: [`ClientError::ChunkIndex`] (the upload is not complete, `chunk_count` is not the
    /// blob's, or a relay from before releases), [`ClientError::BlobGone`] (released before,
    /// expired or deleted).
    pub async fn release(
        &self,
        download: &BlobDownload,
        chunk_count: u32,
    ) -> Result<(), ClientError> {
        self.0
            .request_ok(requests::blob_get(
                download.download_id,
                download.download_auth.clone(),
                chunk_count,
            ))
            .await
    }

    /// BLOB-DELETE: removes the blob and every chunk; recipients then get
    /// [`ClientError::BlobGone`]. `Ok` also when it was already gone.
    pub async fn delete(&self, upload: &BlobUpload) -> Result<(), ClientError> {
        let deleted = self
            .0
            .request_ok(requests::blob_delete(
                upload.upload_id,
                upload.upload_auth.clone(),
            ))
            .await;
        match deleted {
            // Already gone is what the caller wanted.
            Err(ClientError::BlobGone) => Ok(()),
            other => other,
        }
    }
}
