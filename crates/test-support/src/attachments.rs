//! Files between clients, for the attachment tests (`docs/engine.md` § Attachments): a file to
//! send, a shared in-memory blob store for both engines of a test ([`memory_blobs!`]), and the
//! bounded waits for an attachment of a conversation or a group to reach a state.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use sealpost_client::engine::{AttachmentStateView, AttachmentView, OutgoingFile};

use crate::client::Client;
use crate::wait::WAIT;

#[doc(hidden)]
pub use sealpost_client::{EngineConfig as __EngineConfig, blobs::MemoryBlobs as __MemoryBlobs};

/// One [`MemoryBlobs`](sealpost_client::blobs::MemoryBlobs) store for every engine of a test:
/// evaluates to `(Arc<MemoryBlobs>, fn(&mut EngineConfig))`, the store and the config
/// adjustment that gives it to an engine (for [`two_clients_with`](crate::two_clients_with) and
/// [`Client::reopen_with`], which take a plain `fn`, hence a static per call site).
#[macro_export]
macro_rules! memory_blobs {
    () => {{
        static BLOBS: ::std::sync::OnceLock<::std::sync::Arc<$crate::attachments::__MemoryBlobs>> =
            ::std::sync::OnceLock::new();
        fn blobs() -> ::std::sync::Arc<$crate::attachments::__MemoryBlobs> {
            BLOBS
                .get_or_init(|| ::std::sync::Arc::new($crate::attachments::__MemoryBlobs::new()))
                .clone()
        }
        fn adjust(config: &mut $crate::attachments::__EngineConfig) {
            config.blobs = Some(blobs());
        }
        (
            blobs(),
            adjust as fn(&mut $crate::attachments::__EngineConfig),
        )
    }};
}

/// A file named `name` of type `media_type` holding `bytes`, to send.
pub fn outgoing(name: &str, media_type: &str, bytes: Vec<u8>) -> OutgoingFile {
    OutgoingFile {
        file_name: name.into(),
        media_type: media_type.into(),
        bytes,
    }
}

/// `client` sends `bytes` to `contact` as the file `name` (`application/octet-stream`); returns
/// the sender's view of it.
pub async fn send_file(
    client: &Client,
    contact: &str,
    name: &str,
    bytes: Vec<u8>,
) -> AttachmentView {
    client
        .engine
        .send_attachment(contact, outgoing(name, "application/octet-stream", bytes))
        .await
        .unwrap()
}

/// `client`'s attachment of conversation `contact` named `name`, if there is one now.
pub async fn find_attachment(client: &Client, contact: &str, name: &str) -> Option<AttachmentView> {
    client
        .engine
        .get_attachments(contact)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.file_name == name)
}

/// Waits (at most [`WAIT`]) until `client` has an attachment of conversation `contact` named
/// `name`, in any state; returns it.
pub async fn wait_attachment(client: &Client, contact: &str, name: &str) -> AttachmentView {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(found) = find_attachment(client, contact, name).await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no attachment named {name}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Polls `list` (the attachments of a conversation or of a group) every 25 ms until the one
/// named `name` is in `state`, and returns it; fails the test after [`WAIT`], saying where the
/// attachment was (state, error, chunks done).
async fn wait_listed<F, Fut>(name: &str, state: AttachmentStateView, list: F) -> AttachmentView
where
    F: Fn() -> Fut,
    Fut: Future<Output = Vec<AttachmentView>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let named: Vec<AttachmentView> = list()
            .await
            .into_iter()
            .filter(|a| a.file_name == name)
            .collect();
        if let Some(found) = named.iter().find(|a| a.state == state) {
            return found.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {name} to be {state:?}: {:?}",
            named
                .iter()
                .map(|a| (a.state, a.error, a.done_chunks))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits (at most [`WAIT`]) until `client`'s attachment of conversation `contact` named `name`
/// is in `state`; returns it.
pub async fn wait_attachment_state(
    client: &Client,
    contact: &str,
    name: &str,
    state: AttachmentStateView,
) -> AttachmentView {
    wait_listed(name, state, || async {
        client.engine.get_attachments(contact).await.unwrap()
    })
    .await
}

/// Waits (at most [`WAIT`]) until `client`'s attachment of group `group` named `name` is in
/// `state`; returns it.
pub async fn wait_group_attachment(
    client: &Client,
    group: &str,
    name: &str,
    state: AttachmentStateView,
) -> AttachmentView {
    wait_listed(name, state, || async {
        client.engine.get_group_attachments(group).await.unwrap()
    })
    .await
}

/// Asks `client` to download `attachment` if it is offered (a small image downloads by itself).
pub async fn download_if_offered(client: &Client, attachment: &AttachmentView) {
    if attachment.state == AttachmentStateView::Offered {
        client
            .engine
            .download_attachment(&attachment.id)
            .await
            .unwrap();
    }
}

/// What a receiver does with a file in conversation `contact`: waits until it is there named
/// `name`, downloads it if it is offered, and waits until it is complete; returns it.
pub async fn receive_attachment(client: &Client, contact: &str, name: &str) -> AttachmentView {
    let offered = wait_attachment(client, contact, name).await;
    download_if_offered(client, &offered).await;
    wait_attachment_state(client, contact, name, AttachmentStateView::Complete).await
}

/// Where `client` keeps the chunk files of attachment `id` (`attachments/ID` in its profile).
pub fn chunk_dir(client: &Client, id: &str) -> PathBuf {
    client
        .engine
        .profile_dirs()
        .profile_dir()
        .join("attachments")
        .join(id)
}

/// The plaintext of `client`'s complete attachment `id`.
pub async fn bytes_of(client: &Client, id: &str) -> Vec<u8> {
    client.engine.attachment_bytes(id).await.unwrap().to_vec()
}
