//! The engine's view of a relay's blob store (`docs/engine.md` § Attachments,
//! `docs/relay-protocol.md` § Blobs): create a blob with one download grant per recipient, upload
//! its chunks in order, ask how many the relay holds (to resume), download a chunk with a grant.
//!
//! [`BlobTransport`] is what the attachment engine needs and nothing more; [`RelayBlobs`] is it
//! over `sealpost-relay-client`'s blob connections (one per transfer, never a message
//! connection), [`MemoryBlobs`] an in-process store for tests (it counts the
//! bytes it holds and can tamper with a chunk). Capabilities — the upload token, each grant — are
//! opaque bytes here: the relay defines them, the engine stores them in SQLCipher and puts a
//! recipient's grant in that recipient's pointer only.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use futures_util::future::BoxFuture;
use sealpost_relay_client::{
    BlobConnection, BlobDownload, BlobDownloadAuth, BlobDownloadId, BlobUpload, BlobUploadAuth,
    BlobUploadId, ClientError, Connector, RelayUrl, Retry,
};
use zeroize::Zeroizing;

/// Why a blob operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// The blob is gone: expired (past its time-to-live), deleted, or never existed.
    #[error("the blob is gone (expired or deleted)")]
    Gone,
    /// The file is larger than the relay accepts.
    #[error("the relay refuses a file this large")]
    TooLarge,
    /// The relay's quota for this connection or address is used up.
    #[error("the relay's quota is used up")]
    Quota,
    /// The capability was refused.
    #[error("the relay refused the capability")]
    Unauthorized,
    /// The relay has no blob store.
    #[error("the relay does not store files")]
    Unsupported,
    /// Not reachable now (network, relay restarting): try again later.
    #[error("the relay is unreachable: {0}")]
    Unavailable(String),
    /// The relay refused the request for another reason (out of order, malformed).
    #[error("the relay refused the request: {0}")]
    Refused(String),
}

impl BlobError {
    /// Whether trying the same request again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// A blob the relay made: the uploader's token and one download grant per recipient.
pub struct CreatedBlob {
    /// What authorises the uploads (kept by the sender only).
    pub upload: Vec<u8>,
    /// One grant per recipient, unlinkable to each other.
    pub grants: Vec<Vec<u8>>,
}

/// A relay's blob store as the attachment engine uses it.
pub trait BlobTransport: Send + Sync + 'static {
    /// Creates a blob of `chunks` chunks with `recipients` download grants on `relay_url`
    /// (`password`: the relay's, if it has one).
    fn create<'a>(
        &'a self,
        relay_url: &'a str,
        chunks: u32,
        recipients: u32,
        password: Option<&'a str>,
    ) -> BoxFuture<'a, Result<CreatedBlob, BlobError>>;

    /// Uploads chunk `index` (chunks go in order, from the relay's count on).
    fn upload_chunk<'a>(
        &'a self,
        relay_url: &'a str,
        upload: &'a [u8],
        index: u32,
        chunk: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), BlobError>>;

    /// How many chunks the relay holds for the blob (where an upload resumes).
    fn uploaded_chunks<'a>(
        &'a self,
        relay_url: &'a str,
        upload: &'a [u8],
    ) -> BoxFuture<'a, Result<u32, BlobError>>;

    /// Downloads chunk `index` with a recipient's grant.
    fn download_chunk<'a>(
        &'a self,
        relay_url: &'a str,
        grant: &'a [u8],
        index: u32,
    ) -> BoxFuture<'a, Result<Vec<u8>, BlobError>>;

    /// Gives a recipient's grant back once its download is stored and verified: the relay
    /// deletes the blob when every grant was released (`docs/relay-protocol.md` § 13.3). Best
    /// effort: a relay from before releases refuses it, and the blob then waits for its expiry.
    fn release<'a>(
        &'a self,
        relay_url: &'a str,
        grant: &'a [u8],
        chunk_count: u32,
    ) -> BoxFuture<'a, Result<(), BlobError>>;

    /// The transfer using `capability` (an upload token or a grant) is over: a transport may
    /// close what it kept open for it.
    fn finished(&self, _capability: &[u8]) {}
}

/// A transport for relays without a blob store: every call is [`BlobError::Unsupported`].
pub struct NoBlobStore;

/// What every call of [`NoBlobStore`] answers.
fn unsupported<'a, T: Send + 'a>() -> BoxFuture<'a, Result<T, BlobError>> {
    Box::pin(async { Err(BlobError::Unsupported) })
}

impl BlobTransport for NoBlobStore {
    fn create<'a>(
        &'a self,
        _: &'a str,
        _: u32,
        _: u32,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, Result<CreatedBlob, BlobError>> {
        unsupported()
    }

    fn upload_chunk<'a>(
        &'a self,
        _: &'a str,
        _: &'a [u8],
        _: u32,
        _: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), BlobError>> {
        unsupported()
    }

    fn uploaded_chunks<'a>(
        &'a self,
        _: &'a str,
        _: &'a [u8],
    ) -> BoxFuture<'a, Result<u32, BlobError>> {
        unsupported()
    }

    fn download_chunk<'a>(
        &'a self,
        _: &'a str,
        _: &'a [u8],
        _: u32,
    ) -> BoxFuture<'a, Result<Vec<u8>, BlobError>> {
        unsupported()
    }

    fn release<'a>(
        &'a self,
        _: &'a str,
        _: &'a [u8],
        _: u32,
    ) -> BoxFuture<'a, Result<(), BlobError>> {
        unsupported()
    }
}

struct MemoryBlob {
    chunks: Vec<Vec<u8>>,
    expected: u32,
}

/// An in-process blob store for tests: several engines share one through `Arc`. It counts
/// every chunk uploaded and every grant released, can refuse uploads after a number of them (a
/// dead uploader), can flip a bit of a stored chunk (a hostile relay) and can forget a blob
/// (expiry). A released grant fetches nothing more; the blob itself stays (the relay's deletion
/// after the last release is the relay's, tested in `crates/relay/tests/blobs.rs`).
#[derive(Default)]
pub struct MemoryBlobs {
    blobs: Mutex<HashMap<Vec<u8>, MemoryBlob>>,
    /// Grant → upload token.
    grants: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    counter: AtomicU64,
    uploads: AtomicU32,
    downloads: AtomicU32,
    releases: AtomicU32,
    /// Uploads (and downloads) fail as unreachable once this many were made (0: never).
    stall_after: AtomicU32,
}

impl MemoryBlobs {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Chunk uploads accepted so far.
    pub fn uploads(&self) -> u32 {
        self.uploads.load(Ordering::SeqCst)
    }

    /// Chunk downloads served so far.
    pub fn downloads(&self) -> u32 {
        self.downloads.load(Ordering::SeqCst)
    }

    /// Grants released so far (downloads stored and verified).
    pub fn releases(&self) -> u32 {
        self.releases.load(Ordering::SeqCst)
    }

    /// Grants made and not released, over every blob.
    pub fn open_grants(&self) -> usize {
        self.lock_grants().len()
    }

    /// Number of blobs stored.
    pub fn blob_count(&self) -> usize {
        self.lock_blobs().len()
    }

    /// Bytes of every chunk stored.
    pub fn stored_bytes(&self) -> u64 {
        self.lock_blobs()
            .values()
            .flat_map(|b| b.chunks.iter())
            .map(|c| c.len() as u64)
            .sum()
    }

    /// Every transfer fails as unreachable once `transfers` uploads plus downloads were made
    /// (`0` lifts it).
    pub fn stall_after(&self, transfers: u32) {
        self.stall_after.store(transfers, Ordering::SeqCst);
    }

    /// Flips one bit of chunk `index` of every blob.
    pub fn flip_bit(&self, index: usize) {
        for blob in self.lock_blobs().values_mut() {
            if let Some(byte) = blob.chunks.get_mut(index).and_then(|c| c.get_mut(7)) {
                *byte ^= 1;
            }
        }
    }

    /// Swaps chunks `a` and `b` of every blob.
    pub fn swap_chunks(&self, a: usize, b: usize) {
        for blob in self.lock_blobs().values_mut() {
            if a < blob.chunks.len() && b < blob.chunks.len() {
                blob.chunks.swap(a, b);
            }
        }
    }

    /// Forgets every blob (as the relay's sweeper does at expiry).
    pub fn expire_all(&self) {
        self.lock_blobs().clear();
    }

    fn lock_blobs(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, MemoryBlob>> {
        self.blobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The grant → upload token map, whether or not a panicking test poisoned it.
    fn lock_grants(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Vec<u8>>> {
        self.grants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// [`BlobError::Unavailable`] once the uploads and downloads made reach the stall limit.
    fn check_stalled(&self) -> Result<(), BlobError> {
        let limit = self.stall_after.load(Ordering::SeqCst);
        if limit != 0 && self.uploads() + self.downloads() >= limit {
            return Err(BlobError::Unavailable("stalled".into()));
        }
        Ok(())
    }

    fn token(&self, kind: u8) -> Vec<u8> {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let mut token = vec![kind];
        token.extend_from_slice(&n.to_be_bytes());
        let mut random = [0u8; 16];
        let _ = getrandom::fill(&mut random);
        token.extend_from_slice(&random);
        token
    }
}

impl BlobTransport for MemoryBlobs {
    fn create<'a>(
        &'a self,
        _: &'a str,
        chunks: u32,
        recipients: u32,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, Result<CreatedBlob, BlobError>> {
        Box::pin(async move {
            let upload = self.token(b'u');
            let grants: Vec<Vec<u8>> = (0..recipients).map(|_| self.token(b'g')).collect();
            self.lock_blobs().insert(
                upload.clone(),
                MemoryBlob {
                    chunks: Vec::new(),
                    expected: chunks,
                },
            );
            let mut map = self.lock_grants();
            for grant in &grants {
                map.insert(grant.clone(), upload.clone());
            }
            Ok(CreatedBlob { upload, grants })
        })
    }

    fn upload_chunk<'a>(
        &'a self,
        _: &'a str,
        upload: &'a [u8],
        index: u32,
        chunk: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            self.check_stalled()?;
            let mut blobs = self.lock_blobs();
            let blob = blobs.get_mut(upload).ok_or(BlobError::Gone)?;
            if index as usize != blob.chunks.len() || index >= blob.expected {
                return Err(BlobError::Refused("out of order".into()));
            }
            blob.chunks.push(chunk);
            self.uploads.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }

    fn uploaded_chunks<'a>(
        &'a self,
        _: &'a str,
        upload: &'a [u8],
    ) -> BoxFuture<'a, Result<u32, BlobError>> {
        Box::pin(async move {
            let blobs = self.lock_blobs();
            let blob = blobs.get(upload).ok_or(BlobError::Gone)?;
            Ok(u32::try_from(blob.chunks.len()).unwrap_or(u32::MAX))
        })
    }

    fn download_chunk<'a>(
        &'a self,
        _: &'a str,
        grant: &'a [u8],
        index: u32,
    ) -> BoxFuture<'a, Result<Vec<u8>, BlobError>> {
        Box::pin(async move {
            self.check_stalled()?;
            let upload = self
                .lock_grants()
                .get(grant)
                .cloned()
                .ok_or(BlobError::Unauthorized)?;
            let blobs = self.lock_blobs();
            let blob = blobs.get(&upload).ok_or(BlobError::Gone)?;
            let chunk = blob
                .chunks
                .get(index as usize)
                .cloned()
                .ok_or(BlobError::Refused("no such chunk".into()))?;
            self.downloads.fetch_add(1, Ordering::SeqCst);
            Ok(chunk)
        })
    }

    fn release<'a>(
        &'a self,
        _: &'a str,
        grant: &'a [u8],
        chunk_count: u32,
    ) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            let mut grants = self.lock_grants();
            let upload = grants.get(grant).cloned().ok_or(BlobError::Gone)?;
            let complete = self.lock_blobs().get(&upload).is_some_and(|b| {
                b.expected == chunk_count && b.chunks.len() == chunk_count as usize
            });
            if !complete {
                return Err(BlobError::Refused("not every chunk is stored".into()));
            }
            grants.remove(grant);
            self.releases.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }
}

/// [`BlobTransport`] over the relay client's blob connections (`docs/relay-protocol.md`
/// § Blobs). Every id and secret is drawn here; an upload token is the upload id and secret
/// (64 bytes), a grant a download id and secret (64 bytes). One connection per transfer, kept
/// until [`BlobTransport::finished`] or an error.
pub struct RelayBlobs {
    connector: Connector,
    open: Mutex<HashMap<Vec<u8>, BlobConnection>>,
}

impl RelayBlobs {
    /// Blob transfers over `connector` (the engine's: same proxy, same transport policy).
    pub fn new(connector: Connector) -> Self {
        Self {
            connector,
            open: Mutex::new(HashMap::new()),
        }
    }

    fn lock_open(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, BlobConnection>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn connection(&self, relay_url: &str, key: &[u8]) -> Result<BlobConnection, BlobError> {
        if let Some(open) = self.lock_open().get(key).filter(|c| !c.is_closed()) {
            return Ok(open.clone());
        }
        let url = RelayUrl::parse(relay_url).map_err(|e| BlobError::Refused(e.to_string()))?;
        let connection = self.connector.connect_blob(&url).await.map_err(map_error)?;
        self.lock_open().insert(key.to_vec(), connection.clone());
        Ok(connection)
    }

    fn forget(&self, key: &[u8]) {
        if let Some(connection) = self.lock_open().remove(key) {
            connection.close();
        }
    }

    /// A transfer call's `result` as a [`BlobError`]; on an error the connection of `key` is
    /// closed and forgotten first (the next call dials a new one).
    fn forget_on_error<T>(
        &self,
        key: &[u8],
        result: Result<T, ClientError>,
    ) -> Result<T, BlobError> {
        result.map_err(|error| {
            self.forget(key);
            map_error(error)
        })
    }
}

fn map_error(error: ClientError) -> BlobError {
    match error {
        ClientError::BlobGone => BlobError::Gone,
        ClientError::TooLarge => BlobError::TooLarge,
        ClientError::QuotaFull | ClientError::LimitExceeded => BlobError::Quota,
        ClientError::PasswordRequired => BlobError::Unauthorized,
        other => match other.retry() {
            Retry::Soon | Retry::Later => BlobError::Unavailable(other.to_string()),
            Retry::Never => BlobError::Refused(other.to_string()),
        },
    }
}

fn split64(bytes: &[u8]) -> Result<([u8; 32], [u8; 32]), BlobError> {
    let id = bytes
        .get(..32)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or(BlobError::Unauthorized)?;
    let secret = bytes
        .get(32..64)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .filter(|_| bytes.len() == 64)
        .ok_or(BlobError::Unauthorized)?;
    Ok((id, secret))
}

fn upload_of(token: &[u8]) -> Result<BlobUpload, BlobError> {
    let (id, secret) = split64(token)?;
    Ok(BlobUpload {
        upload_id: BlobUploadId(id),
        upload_auth: BlobUploadAuth::new(secret),
    })
}

fn download_of(grant: &[u8]) -> Result<BlobDownload, BlobError> {
    let (id, secret) = split64(grant)?;
    Ok(BlobDownload {
        download_id: BlobDownloadId(id),
        download_auth: BlobDownloadAuth::new(secret),
    })
}

fn randomness(_: getrandom::Error) -> BlobError {
    BlobError::Refused("no randomness".into())
}

impl BlobTransport for RelayBlobs {
    fn create<'a>(
        &'a self,
        relay_url: &'a str,
        chunks: u32,
        recipients: u32,
        password: Option<&'a str>,
    ) -> BoxFuture<'a, Result<CreatedBlob, BlobError>> {
        Box::pin(async move {
            let upload = BlobUpload::random().map_err(randomness)?;
            let downloads = (0..recipients)
                .map(|_| sealpost_relay_client::random_download().map_err(randomness))
                .collect::<Result<Vec<_>, _>>()?;
            let mut token = Zeroizing::new(upload.upload_id.0.to_vec());
            token.extend_from_slice(upload.upload_auth.expose());
            let connection = self.connection(relay_url, &token).await?;
            let created = connection
                .create(&upload, chunks, &downloads, password)
                .await;
            self.forget_on_error(&token, created)?;
            let grants = downloads
                .iter()
                .map(|d| {
                    let mut grant = d.download_id.0.to_vec();
                    grant.extend_from_slice(d.download_auth.expose());
                    grant
                })
                .collect();
            Ok(CreatedBlob {
                upload: token.to_vec(),
                grants,
            })
        })
    }

    fn upload_chunk<'a>(
        &'a self,
        relay_url: &'a str,
        upload: &'a [u8],
        index: u32,
        chunk: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            let credentials = upload_of(upload)?;
            let connection = self.connection(relay_url, upload).await?;
            let put = connection.put_chunk(&credentials, index, &chunk).await;
            self.forget_on_error(upload, put)
        })
    }

    fn uploaded_chunks<'a>(
        &'a self,
        relay_url: &'a str,
        upload: &'a [u8],
    ) -> BoxFuture<'a, Result<u32, BlobError>> {
        Box::pin(async move {
            let credentials = upload_of(upload)?;
            let connection = self.connection(relay_url, upload).await?;
            let status = connection.status(&credentials).await;
            Ok(self.forget_on_error(upload, status)?.stored)
        })
    }

    fn download_chunk<'a>(
        &'a self,
        relay_url: &'a str,
        grant: &'a [u8],
        index: u32,
    ) -> BoxFuture<'a, Result<Vec<u8>, BlobError>> {
        Box::pin(async move {
            let credentials = download_of(grant)?;
            let connection = self.connection(relay_url, grant).await?;
            let chunk = connection.get_chunk(&credentials, index).await;
            self.forget_on_error(grant, chunk)
        })
    }

    fn release<'a>(
        &'a self,
        relay_url: &'a str,
        grant: &'a [u8],
        chunk_count: u32,
    ) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            let credentials = download_of(grant)?;
            let connection = self.connection(relay_url, grant).await?;
            let released = connection.release(&credentials, chunk_count).await;
            self.forget_on_error(grant, released)
        })
    }

    fn finished(&self, capability: &[u8]) {
        self.forget(capability);
    }
}
