//! A blob transport that watches the one it wraps, for the attachment crash tests
//! (`tests/tests/attachment_crash.rs`): it records the index of every chunk that went up or came
//! down, and may pause before each one, so that a transfer of a few MiB over loopback is still
//! under way when the test kills the process (`docs/engine.md` § Attachments, Resume).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use sealpost_client::EngineConfig;
use sealpost_client::blobs::{BlobError, BlobTransport, CreatedBlob, RelayBlobs};
use sealpost_relay_client::Connector;

/// [`RelayBlobs`] with a pause before every chunk and a record of the chunks moved.
pub struct WatchedBlobs {
    inner: RelayBlobs,
    pause: Duration,
    uploaded: Mutex<Vec<u32>>,
    downloaded: Mutex<Vec<u32>>,
}

impl WatchedBlobs {
    /// The relays' blob stores as the engine of `config` would reach them, pausing `pause`
    /// before each chunk.
    pub fn over_relay(
        config: &EngineConfig,
        pause: Duration,
    ) -> Result<Arc<Self>, sealpost_relay_client::TlsSetupError> {
        Ok(Arc::new(Self {
            inner: RelayBlobs::new(Connector::new(config.connector.clone())?),
            pause,
            uploaded: Mutex::new(Vec::new()),
            downloaded: Mutex::new(Vec::new()),
        }))
    }

    /// The index of every chunk the relay accepted from this transport, in order.
    pub fn uploaded(&self) -> Vec<u32> {
        self.uploaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The index of every chunk this transport downloaded, in order.
    pub fn downloaded(&self) -> Vec<u32> {
        self.downloaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record(list: &Mutex<Vec<u32>>, index: u32) {
        list.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(index);
    }
}

impl BlobTransport for WatchedBlobs {
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
            tokio::time::sleep(self.pause).await;
            self.inner
                .upload_chunk(relay_url, upload, index, chunk)
                .await?;
            Self::record(&self.uploaded, index);
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
            tokio::time::sleep(self.pause).await;
            let chunk = self.inner.download_chunk(relay_url, grant, index).await?;
            Self::record(&self.downloaded, index);
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
