//! A blob transport that passes every call on to another and lets a test act around each chunk
//! ([`ChunkHooks`]): pause or hold a chunk, record which chunks moved. The one delegating
//! wrapper of the attachment tests (`tests/tests/attachment_crash.rs` through
//! [`WatchedBlobs`](crate::watched_blobs::WatchedBlobs), `tests/tests/disappearing.rs`), so each
//! test writes only what it does differently (`docs/engine.md` § Attachments).

use futures_util::future::BoxFuture;
use sealpost_client::blobs::{BlobError, BlobTransport, CreatedBlob};

/// What a test does around the chunks a [`HookedBlobs`] moves. Every hook does nothing unless
/// the test says otherwise.
pub trait ChunkHooks: Send + Sync + 'static {
    /// Runs before chunk `index` goes up.
    fn before_upload(&self, _index: u32) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// Chunk `index` went up (the relay accepted it).
    fn uploaded(&self, _index: u32) {}

    /// Runs before chunk `index` is downloaded with `grant`.
    fn before_download<'a>(&'a self, _grant: &'a [u8], _index: u32) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// Chunk `index` came down.
    fn downloaded(&self, _index: u32) {}
}

/// The transport `inner`, with `hooks` run around each chunk it moves; every other call goes to
/// `inner` as it is.
pub struct HookedBlobs<T, H> {
    /// The transport that does the work.
    pub inner: T,
    /// What the test does around each chunk.
    pub hooks: H,
}

impl<T: BlobTransport, H: ChunkHooks> BlobTransport for HookedBlobs<T, H> {
    fn create<'a>(
        &'a self,
        relay_url: &'a str,
        chunks: u32,
        recipients: u32,
        password: Option<&'a str>,
    ) -> BoxFuture<'a, Result<CreatedBlob, BlobError>> {
        self.inner.create(relay_url, chunks, recipients, password)
    }

    fn upload_chunk<'a>(
        &'a self,
        relay_url: &'a str,
        upload: &'a [u8],
        index: u32,
        chunk: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            self.hooks.before_upload(index).await;
            self.inner
                .upload_chunk(relay_url, upload, index, chunk)
                .await?;
            self.hooks.uploaded(index);
            Ok(())
        })
    }

    fn uploaded_chunks<'a>(
        &'a self,
        relay_url: &'a str,
        upload: &'a [u8],
    ) -> BoxFuture<'a, Result<u32, BlobError>> {
        self.inner.uploaded_chunks(relay_url, upload)
    }

    fn download_chunk<'a>(
        &'a self,
        relay_url: &'a str,
        grant: &'a [u8],
        index: u32,
    ) -> BoxFuture<'a, Result<Vec<u8>, BlobError>> {
        Box::pin(async move {
            self.hooks.before_download(grant, index).await;
            let chunk = self.inner.download_chunk(relay_url, grant, index).await?;
            self.hooks.downloaded(index);
            Ok(chunk)
        })
    }

    fn release<'a>(
        &'a self,
        relay_url: &'a str,
        grant: &'a [u8],
        chunk_count: u32,
    ) -> BoxFuture<'a, Result<(), BlobError>> {
        self.inner.release(relay_url, grant, chunk_count)
    }

    fn finished(&self, capability: &[u8]) {
        self.inner.finished(capability);
    }
}
