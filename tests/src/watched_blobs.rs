//! A blob transport that watches the one it wraps, for the attachment crash tests
//! (`tests/tests/attachment_crash.rs`): it records the index of every chunk that went up or came
//! down, and may pause before each one, so that a transfer of a few MiB over loopback is still
//! under way when the test kills the process (`docs/engine.md` § Attachments, Resume).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use sealpost_client::EngineConfig;
use sealpost_client::blobs::RelayBlobs;
use sealpost_relay_client::Connector;

use crate::hooked_blobs::{ChunkHooks, HookedBlobs};

/// [`RelayBlobs`] with a pause before every chunk and a record of the chunks moved.
pub type WatchedBlobs = HookedBlobs<RelayBlobs, Watch>;

/// The hooks of [`WatchedBlobs`]: the pause, and the chunks moved each way.
pub struct Watch {
    pause: Duration,
    uploaded: Mutex<Vec<u32>>,
    downloaded: Mutex<Vec<u32>>,
}

impl Watch {
    fn record(list: &Mutex<Vec<u32>>, index: u32) {
        list.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(index);
    }

    fn recorded(list: &Mutex<Vec<u32>>) -> Vec<u32> {
        list.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl ChunkHooks for Watch {
    fn before_upload(&self, _index: u32) -> BoxFuture<'_, ()> {
        Box::pin(tokio::time::sleep(self.pause))
    }

    fn uploaded(&self, index: u32) {
        Self::record(&self.uploaded, index);
    }

    fn before_download<'a>(&'a self, _grant: &'a [u8], _index: u32) -> BoxFuture<'a, ()> {
        Box::pin(tokio::time::sleep(self.pause))
    }

    fn downloaded(&self, index: u32) {
        Self::record(&self.downloaded, index);
    }
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
            hooks: Watch {
                pause,
                uploaded: Mutex::new(Vec::new()),
                downloaded: Mutex::new(Vec::new()),
            },
        }))
    }

    /// The index of every chunk the relay accepted from this transport, in order.
    pub fn uploaded(&self) -> Vec<u32> {
        Watch::recorded(&self.hooks.uploaded)
    }

    /// The index of every chunk this transport downloaded, in order.
    pub fn downloaded(&self) -> Vec<u32> {
        Watch::recorded(&self.hooks.downloaded)
    }
}
