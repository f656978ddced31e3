//! Attachments (`docs/engine.md` § Attachments): a file is encrypted once with its own key into
//! 64 KiB STREAM chunks (`sealpost_crypto::attachment`), kept as chunk files of ciphertext in the
//! profile, uploaded once as a blob with one download grant per recipient, and announced by a
//! pointer inside the ratchet message. A received file is downloaded chunk by chunk, every chunk
//! checked as it arrives and the digest over all of them before the file counts as received;
//! it stays ciphertext in the profile until the user saves it. Transfers resume at their next
//! chunk after a restart (the rows and `done_chunks` are in the store); one task runs them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sealpost_crypto::attachment::{
    AttachmentError, AttachmentKey, CHUNK_CIPHERTEXT_BYTES, ChunkOpener, ChunkSealer,
    CiphertextDigest, DigestBuilder, KeyCommitment, MAX_ATTACHMENT_BYTES, chunk_count,
};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::error::EngineError;
use super::settings::read_settings;
use super::state::{Engine, Inner, array32, backoff_delay, lock, parse_contact};
use super::views::{AttachmentView, EngineEvent, OutgoingFile, is_image_type};
use crate::content::{
    AttachmentLocation, AttachmentPointer, Body, CONTENT_VERSION, Content, MAX_INLINE_BYTES,
};
use crate::images::PREVIEW_SIDE;
use crate::store::{
    AttachmentId, AttachmentRow, AttachmentSecretBytes, AttachmentState, Direction,
    DisappearingTimer, OutgoingContent, UnixMillis,
};

/// The largest file this build sends (the relay may accept less: `attachment_too_large`).
pub const MAX_SEND_BYTES: u64 = 1024 * 1024 * 1024;

/// How often the progress of a transfer is written to the store (chunks); a restart repeats at
/// most this many.
const PROGRESS_EVERY: u32 = 8;

/// How long the transfer task sleeps when it has nothing to do.
const IDLE_WAIT: Duration = Duration::from_millis(1000);

fn parse_attachment(id: &str) -> Result<AttachmentId, EngineError> {
    id.parse().map_err(|_| EngineError::AttachmentNotFound)
}

/// The directory holding an attachment's chunk files.
fn chunk_dir(inner: &Inner, id: AttachmentId) -> PathBuf {
    inner.attachment_dir(id)
}

fn chunk_path(dir: &Path, index: u32) -> PathBuf {
    dir.join(crate::store::chunk_file_name(index))
}

fn io(error: std::io::Error) -> EngineError {
    EngineError::AttachmentIo(error)
}

impl Engine {
    /// `send_attachment`: the file goes to `contact_id`. An image is re-encoded first (no EXIF,
    /// no GPS) and gets a thumbnail. A file of at most [`MAX_INLINE_BYTES`] rides in the message
    /// and is sent at once; a larger one is encrypted to chunk files now and uploaded by the
    /// transfer task, which sends the message when the upload is complete.
    pub async fn send_attachment(
        &self,
        contact_id: &str,
        file: OutgoingFile,
    ) -> Result<AttachmentView, EngineError> {
        let contact = parse_contact(contact_id)?;
        if file.bytes.len() as u64 > MAX_SEND_BYTES.min(MAX_ATTACHMENT_BYTES) {
            return Err(EngineError::AttachmentTooLarge);
        }
        let file_name = super::receive_step::safe_file_name(&file.file_name);
        let row = self
            .inner
            .blocking(move |inner| {
                let bytes = Zeroizing::new(file.bytes);
                // An image is sent as we re-encoded it: its metadata stays here.
                let (bytes, media_type, thumbnail) = match crate::images::strip_metadata(&bytes) {
                    Ok((kind, clean)) => {
                        let thumbnail = crate::images::thumbnail(&clean).ok();
                        (
                            Zeroizing::new(clean),
                            kind.media_type().to_owned(),
                            thumbnail,
                        )
                    }
                    Err(_) => (bytes, non_image_type(&file.media_type), None),
                };
                let size = bytes.len() as u64;
                let mut row = AttachmentRow {
                    id: AttachmentId::generate()?,
                    direction: Direction::Outgoing,
                    contact,
                    message: None,
                    file_name,
                    media_type,
                    size,
                    thumbnail,
                    inline_bytes: None,
                    relay_url: None,
                    capability: None,
                    grants: Vec::new(),
                    file_key: None,
                    commitment: None,
                    digest: None,
                    chunks: 0,
                    done_chunks: 0,
                    state: AttachmentState::Transferring,
                    error: None,
                    created_at: UnixMillis::now(),
                };
                if bytes.len() <= MAX_INLINE_BYTES {
                    row.inline_bytes = Some(bytes);
                    let mut store = lock(&inner.store);
                    store
                        .contact(contact)?
                        .ok_or(EngineError::ContactNotFound)?;
                    store.insert_attachment(&row)?;
                    drop(store);
                    inner.send_pointer(&row)?;
                    return Ok(row);
                }
                let relay = read_settings(&lock(&inner.store))?
                    .relays
                    .first()
                    .cloned()
                    .ok_or(EngineError::NotOnboarded)?;
                let key = AttachmentKey::generate().map_err(EngineError::Attachment)?;
                let dir = chunk_dir(inner, row.id);
                let digest = write_chunks(&dir, &key, &bytes)?;
                row.relay_url = Some(relay);
                row.file_key = Some(AttachmentSecretBytes::new(key.expose().to_vec()));
                row.commitment = Some(key.commitment().0.to_vec());
                row.digest = Some(digest.0.to_vec());
                row.chunks = chunk_count(size).map_err(EngineError::Attachment)?;
                let mut store = lock(&inner.store);
                if store.contact(contact)?.is_none() {
                    drop(store);
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(EngineError::ContactNotFound);
                }
                store.insert_attachment(&row)?;
                Ok(row)
            })
            .await?;
        self.inner.attachment_wake.notify_one();
        let view = AttachmentView::from(&row);
        self.inner.emit(EngineEvent::AttachmentUpdated {
            attachment: view.clone(),
        });
        Ok(view)
    }

    /// `get_attachments`: every attachment of a conversation, oldest first.
    pub async fn get_attachments(
        &self,
        contact_id: &str,
    ) -> Result<Vec<AttachmentView>, EngineError> {
        let contact = parse_contact(contact_id)?;
        let rows = self
            .inner
            .on_store(move |store| Ok(store.attachments_of_contact(contact)?))
            .await?;
        Ok(rows.iter().map(AttachmentView::from).collect())
    }

    /// `download_attachment`: fetch a received file (again, after a failure or a cancel).
    pub async fn download_attachment(
        &self,
        attachment_id: &str,
    ) -> Result<AttachmentView, EngineError> {
        let id = parse_attachment(attachment_id)?;
        let row = self
            .inner
            .on_store(move |store| {
                let changed = store.set_attachment_state(
                    id,
                    &[
                        AttachmentState::Offered,
                        AttachmentState::Failed,
                        AttachmentState::Cancelled,
                    ],
                    AttachmentState::Transferring,
                    None,
                )?;
                let row = store
                    .attachment(id)?
                    .ok_or(EngineError::AttachmentNotFound)?;
                if !changed && row.state != AttachmentState::Transferring {
                    return Err(EngineError::InvalidInput("nothing to download".into()));
                }
                if row.direction != Direction::Incoming {
                    return Err(EngineError::InvalidInput("not a received file".into()));
                }
                Ok(row)
            })
            .await?;
        self.inner.attachment_wake.notify_one();
        Ok(AttachmentView::from(&row))
    }

    /// `cancel_attachment`: stops an upload or a download after its current chunk. A cancelled
    /// upload sends nothing; a cancelled download can be started again.
    pub async fn cancel_attachment(
        &self,
        attachment_id: &str,
    ) -> Result<AttachmentView, EngineError> {
        let id = parse_attachment(attachment_id)?;
        let row = self
            .inner
            .on_store(move |store| {
                store.set_attachment_state(
                    id,
                    &[AttachmentState::Transferring, AttachmentState::Offered],
                    AttachmentState::Cancelled,
                    None,
                )?;
                store.attachment(id)?.ok_or(EngineError::AttachmentNotFound)
            })
            .await?;
        let view = AttachmentView::from(&row);
        self.inner.emit(EngineEvent::AttachmentUpdated {
            attachment: view.clone(),
        });
        Ok(view)
    }

    /// The file's plaintext, for saving or opening: every chunk is opened again (its tag and the
    /// digest checked). Only for complete attachments.
    pub async fn attachment_bytes(
        &self,
        attachment_id: &str,
    ) -> Result<Zeroizing<Vec<u8>>, EngineError> {
        let id = parse_attachment(attachment_id)?;
        self.inner
            .blocking(move |inner| read_plaintext(inner, id))
            .await
    }

    /// `save_attachment`: writes the file's plaintext into `directory` under its (safe) name,
    /// made unique; returns the path. The only place an attachment's plaintext reaches disk.
    pub async fn save_attachment(
        &self,
        attachment_id: &str,
        directory: &Path,
    ) -> Result<PathBuf, EngineError> {
        let id = parse_attachment(attachment_id)?;
        let directory = directory.to_path_buf();
        self.inner
            .blocking(move |inner| {
                let name = lock(&inner.store)
                    .attachment(id)?
                    .ok_or(EngineError::AttachmentNotFound)?
                    .file_name;
                let bytes = read_plaintext(inner, id)?;
                std::fs::create_dir_all(&directory).map_err(io)?;
                let path = unique_path(&directory, &name);
                std::fs::write(&path, bytes.as_slice()).map_err(io)?;
                Ok(path)
            })
            .await
    }

    /// `attachment_preview`: a PNG we encoded from a complete image (or, before that, from the
    /// sender's thumbnail), decoded within the limits of `crate::images`. The webview never
    /// parses the peer's bytes.
    pub async fn attachment_preview(&self, attachment_id: &str) -> Result<Vec<u8>, EngineError> {
        let id = parse_attachment(attachment_id)?;
        self.inner
            .blocking(move |inner| {
                let row = lock(&inner.store)
                    .attachment(id)?
                    .ok_or(EngineError::AttachmentNotFound)?;
                if !is_image_type(&row.media_type) {
                    return Err(EngineError::InvalidInput("not an image".into()));
                }
                let source = if row.state == AttachmentState::Complete {
                    read_plaintext(inner, id)?
                } else {
                    Zeroizing::new(row.thumbnail.ok_or(EngineError::AttachmentNotReady)?)
                };
                crate::images::preview(&source, PREVIEW_SIDE).map_err(EngineError::Image)
            })
            .await
    }
}

/// The claimed media type of a file that is not an image we decode: kept as a hint unless it
/// claims to be an image (or SVG), which the bytes did not confirm.
fn non_image_type(claimed: &str) -> String {
    let claimed = crate::names::neutralise_bidi(claimed);
    if claimed.starts_with("image/") || claimed.len() > crate::content::MAX_MEDIA_TYPE_BYTES {
        "application/octet-stream".to_owned()
    } else {
        claimed
    }
}

/// `directory/name`, or `directory/name (n)` for the first free `n`.
fn unique_path(directory: &Path, name: &str) -> PathBuf {
    let first = directory.join(name);
    if !first.exists() {
        return first;
    }
    let (stem, extension) = match name.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() => (stem, Some(extension)),
        _ => (name, None),
    };
    for n in 1u32.. {
        let candidate = match extension {
            Some(extension) => format!("{stem} ({n}).{extension}"),
            None => format!("{stem} ({n})"),
        };
        let path = directory.join(candidate);
        if !path.exists() {
            return path;
        }
    }
    first
}

/// Encrypts `bytes` into chunk files under `dir`; returns their digest.
fn write_chunks(
    dir: &Path,
    key: &AttachmentKey,
    bytes: &[u8],
) -> Result<CiphertextDigest, EngineError> {
    let size = bytes.len() as u64;
    let sealer = ChunkSealer::new(key, size).map_err(EngineError::Attachment)?;
    let mut digest = DigestBuilder::new(size).map_err(EngineError::Attachment)?;
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut offset = 0usize;
    for index in 0..sealer.chunk_count() {
        let take = sealer.data_bytes(index).map_err(EngineError::Attachment)?;
        let data = bytes
            .get(offset..offset + take)
            .ok_or(EngineError::Attachment(AttachmentError::ChunkLength {
                index,
            }))?;
        let chunk = sealer
            .seal_chunk(index, data)
            .map_err(EngineError::Attachment)?;
        digest.push(&chunk).map_err(EngineError::Attachment)?;
        std::fs::write(chunk_path(dir, index), &chunk).map_err(io)?;
        offset += take;
    }
    digest.finish().map_err(EngineError::Attachment)
}

/// The key, commitment and digest of a blob attachment's row.
fn blob_secrets(
    row: &AttachmentRow,
) -> Result<(AttachmentKey, KeyCommitment, CiphertextDigest), EngineError> {
    let key = row
        .file_key
        .as_ref()
        .ok_or(EngineError::AttachmentNotReady)?;
    let commitment = row
        .commitment
        .as_deref()
        .ok_or(EngineError::AttachmentNotReady)?;
    let digest = row
        .digest
        .as_deref()
        .ok_or(EngineError::AttachmentNotReady)?;
    Ok((
        AttachmentKey::from_bytes(array32(key.expose_secret())?),
        KeyCommitment(array32(commitment)?),
        CiphertextDigest(array32(digest)?),
    ))
}

/// Checks every chunk file's length and the digest over them against the row.
fn verify_chunk_files(dir: &Path, row: &AttachmentRow) -> Result<(), EngineError> {
    let (_, _, expected) = blob_secrets(row)?;
    let mut digest = DigestBuilder::new(row.size).map_err(EngineError::Attachment)?;
    for index in 0..row.chunks {
        let chunk = std::fs::read(chunk_path(dir, index)).map_err(io)?;
        digest.push(&chunk).map_err(EngineError::Attachment)?;
    }
    let found = digest.finish().map_err(EngineError::Attachment)?;
    if !bool::from(found.0.ct_eq(&expected.0)) {
        return Err(EngineError::Attachment(AttachmentError::DigestMismatch));
    }
    Ok(())
}

/// The plaintext of a complete attachment: inline bytes, or every chunk file opened (commitment,
/// digest and every tag checked).
fn read_plaintext(inner: &Arc<Inner>, id: AttachmentId) -> Result<Zeroizing<Vec<u8>>, EngineError> {
    let row = lock(&inner.store)
        .attachment(id)?
        .ok_or(EngineError::AttachmentNotFound)?;
    if row.direction == Direction::Incoming && row.state != AttachmentState::Complete {
        return Err(EngineError::AttachmentNotReady);
    }
    if let Some(bytes) = row.inline_bytes {
        return Ok(bytes);
    }
    let (key, commitment, _) = blob_secrets(&row)?;
    let opener = ChunkOpener::new(&key, &commitment, row.size).map_err(EngineError::Attachment)?;
    let dir = chunk_dir(inner, id);
    verify_chunk_files(&dir, &row)?;
    let mut out = Zeroizing::new(Vec::with_capacity(usize::try_from(row.size).unwrap_or(0)));
    for index in 0..row.chunks {
        let chunk = std::fs::read(chunk_path(&dir, index)).map_err(io)?;
        out.extend_from_slice(
            &opener
                .open_chunk(index, &chunk)
                .map_err(EngineError::Attachment)?,
        );
    }
    Ok(out)
}

impl Inner {
    /// Seals the pointer of an outgoing attachment for its contact and queues it, linking the
    /// attachment to the new message in the same transaction (seal once).
    fn send_pointer(self: &Arc<Self>, row: &AttachmentRow) -> Result<(), EngineError> {
        let location = match &row.inline_bytes {
            Some(bytes) => AttachmentLocation::Inline {
                bytes: bytes.to_vec(),
            },
            None => {
                let (key, commitment, digest) = blob_secrets(row)?;
                AttachmentLocation::Blob {
                    relay_url: row
                        .relay_url
                        .clone()
                        .ok_or(EngineError::AttachmentNotReady)?,
                    grant: row
                        .grants
                        .first()
                        .ok_or(EngineError::AttachmentNotReady)?
                        .expose_secret()
                        .to_vec(),
                    key: key.expose().to_vec(),
                    commitment: commitment.0.to_vec(),
                    digest: digest.0.to_vec(),
                }
            }
        };
        let now = self.clock.now();
        let id = row.id;
        let contact = row.contact;
        let mut store = lock(&self.store);
        // The message carries the chat's timer as it is now, like a text
        // (`docs/engine.md` § Disappearing messages): it expires here and at the recipient.
        let timer = store.chat_timer(contact)?.timer;
        let pointer = AttachmentPointer {
            file_name: row.file_name.clone(),
            media_type: row.media_type.clone(),
            size: row.size,
            location,
            thumbnail: row.thumbnail.clone(),
            timer_secs: timer.map(DisappearingTimer::seconds),
        };
        let (_message, _) = store.insert_and_seal_outgoing_content(
            contact,
            OutgoingContent::Text {
                body: &row.file_name,
                timer,
            },
            now,
            |store, message| {
                store.link_attachment_message(id, message.id)?;
                let content = Content {
                    v: CONTENT_VERSION,
                    seq: message.seq.get(),
                    sent_at_ms: u64::try_from(now.0).unwrap_or(0),
                    body: Body::Attachment {
                        pointer: pointer.clone(),
                    },
                    receipts: Vec::new(),
                };
                self.seal_for(store, contact, Some(message.id), &content)
            },
        )?;
        let row = store.attachment(id)?;
        drop(store);
        self.outbox_wake.notify_one();
        // No `message-received` (that one means a peer's message): the UI reloads the
        // conversation when an attachment gets its `messageId`.
        if let Some(row) = row {
            self.emit(EngineEvent::AttachmentUpdated {
                attachment: AttachmentView::from(&row),
            });
        }
        Ok(())
    }

    fn emit_attachment(&self, row: &AttachmentRow) {
        self.emit(EngineEvent::AttachmentUpdated {
            attachment: AttachmentView::from(row),
        });
    }

    /// Records a transfer's end in failure (`kind`), deleting a download's chunk files: nothing
    /// of a refused file stays.
    async fn fail_transfer(self: &Arc<Self>, row: &AttachmentRow, error: &EngineError) {
        tracing::warn!(%error, "attachment transfer failed");
        let id = row.id;
        let kind = error.kind();
        if row.direction == Direction::Incoming {
            let _ = std::fs::remove_dir_all(chunk_dir(self, id));
        }
        let updated = self
            .on_store(move |store| {
                store.set_attachment_progress(id, 0)?;
                store.set_attachment_state(
                    id,
                    &[AttachmentState::Transferring],
                    AttachmentState::Failed,
                    Some(kind),
                )?;
                Ok(store.attachment(id)?)
            })
            .await;
        if let Ok(Some(row)) = updated {
            self.emit_attachment(&row);
        }
    }

    async fn still_transferring(self: &Arc<Self>, id: AttachmentId) -> bool {
        matches!(
            self.on_store(move |store| Ok(store.attachment(id)?)).await,
            Ok(Some(row)) if row.state == AttachmentState::Transferring
        )
    }

    async fn record_progress(self: &Arc<Self>, row: &mut AttachmentRow, done: u32) {
        row.done_chunks = done;
        let id = row.id;
        let _ = self
            .on_store(move |store| Ok(store.set_attachment_progress(id, done)?))
            .await;
        self.emit_attachment(row);
    }

    /// Uploads the rest of an outgoing blob and then sends its pointer.
    async fn upload(self: &Arc<Self>, mut row: AttachmentRow) -> Result<(), EngineError> {
        let relay = row
            .relay_url
            .clone()
            .ok_or(EngineError::AttachmentNotReady)?;
        if row.capability.is_none() {
            let url = relay.clone();
            let password = self
                .on_store(move |store| super::settings::relay_password(store, &url))
                .await?;
            let created = self
                .blobs
                .create(
                    &relay,
                    row.chunks,
                    1,
                    password.as_ref().map(|p| p.expose_secret()),
                )
                .await?;
            let capability = AttachmentSecretBytes::new(created.upload);
            let grants: Vec<AttachmentSecretBytes> = created
                .grants
                .into_iter()
                .map(AttachmentSecretBytes::new)
                .collect();
            let (id, url, cap, list) = (row.id, relay.clone(), capability.clone(), grants.clone());
            self.on_store(move |store| Ok(store.set_attachment_blob(id, &url, &cap, &list)?))
                .await?;
            row.capability = Some(capability);
            row.grants = grants;
        }
        let upload = row
            .capability
            .clone()
            .ok_or(EngineError::AttachmentNotReady)?;
        // The relay's count is the truth: a crash may fall between an upload and its record.
        let mut next = self
            .blobs
            .uploaded_chunks(&relay, upload.expose_secret())
            .await?;
        let dir = chunk_dir(self, row.id);
        while next < row.chunks {
            if !self.still_transferring(row.id).await {
                return Ok(());
            }
            let chunk = tokio::fs::read(chunk_path(&dir, next)).await.map_err(io)?;
            if chunk.len() != CHUNK_CIPHERTEXT_BYTES {
                return Err(EngineError::Attachment(AttachmentError::ChunkLength {
                    index: next,
                }));
            }
            self.blobs
                .upload_chunk(&relay, upload.expose_secret(), next, chunk)
                .await?;
            next += 1;
            if next.is_multiple_of(PROGRESS_EVERY) || next == row.chunks {
                self.record_progress(&mut row, next).await;
            }
        }
        self.blobs.finished(upload.expose_secret());
        if !self.still_transferring(row.id).await {
            return Ok(());
        }
        self.blocking(move |inner| inner.send_pointer(&row)).await
    }

    /// Downloads the rest of a received blob, checking each chunk as it arrives and the digest
    /// at the end; only then is it complete.
    async fn download(self: &Arc<Self>, mut row: AttachmentRow) -> Result<(), EngineError> {
        let relay = row
            .relay_url
            .clone()
            .ok_or(EngineError::AttachmentNotReady)?;
        let grant = row
            .capability
            .clone()
            .ok_or(EngineError::AttachmentNotReady)?;
        let (key, commitment, _) = blob_secrets(&row)?;
        // The commitment is checked before anything is fetched or decrypted.
        let opener =
            ChunkOpener::new(&key, &commitment, row.size).map_err(EngineError::Attachment)?;
        let dir = chunk_dir(self, row.id);
        tokio::fs::create_dir_all(&dir).await.map_err(io)?;
        let mut next = row.done_chunks.min(row.chunks);
        while next < row.chunks {
            if !self.still_transferring(row.id).await {
                return Ok(());
            }
            let chunk = self
                .blobs
                .download_chunk(&relay, grant.expose_secret(), next)
                .await?;
            // Checked now (tag, position, last-chunk flag, padding); the plaintext is dropped.
            opener
                .open_chunk(next, &chunk)
                .map_err(EngineError::Attachment)?;
            tokio::fs::write(chunk_path(&dir, next), &chunk)
                .await
                .map_err(io)?;
            next += 1;
            if next.is_multiple_of(PROGRESS_EVERY) || next == row.chunks {
                self.record_progress(&mut row, next).await;
            }
        }
        self.blobs.finished(grant.expose_secret());
        let checked = row.clone();
        let check_dir = dir.clone();
        self.blocking(move |_| verify_chunk_files(&check_dir, &checked))
            .await?;
        let id = row.id;
        let done = self
            .on_store(move |store| {
                store.set_attachment_state(
                    id,
                    &[AttachmentState::Transferring],
                    AttachmentState::Complete,
                    None,
                )?;
                Ok(store.attachment(id)?)
            })
            .await?;
        if let Some(done) = done {
            self.emit_attachment(&done);
        }
        Ok(())
    }
}

/// Whether a transfer error is worth retrying later (the relay is unreachable now).
fn transient(error: &EngineError) -> bool {
    matches!(error, EngineError::Blob(error) if error.is_transient())
}

/// Runs the store's transfers, one at a time, until the engine goes away; a transfer that hits
/// an unreachable relay waits with backoff and resumes at its next chunk.
pub(super) async fn transfer_loop(weak: Weak<Inner>) {
    let mut attempts: std::collections::HashMap<AttachmentId, (u32, tokio::time::Instant)> =
        std::collections::HashMap::new();
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let due = inner
            .on_store(|store| Ok(store.attachment_transfers()?))
            .await
            .unwrap_or_default();
        let now = tokio::time::Instant::now();
        let ready: Vec<AttachmentRow> = due
            .into_iter()
            .filter(|row| attempts.get(&row.id).is_none_or(|(_, at)| *at <= now))
            .collect();
        if ready.is_empty() {
            let notified = inner.attachment_wake.notified();
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(IDLE_WAIT) => {}
            }
            continue;
        }
        for row in ready {
            let id = row.id;
            let result = match row.direction {
                Direction::Outgoing => inner.upload(row.clone()).await,
                Direction::Incoming => inner.download(row.clone()).await,
            };
            // A transfer whose row went while it ran (its message expired, its contact was
            // deleted) stopped at its next chunk: what it wrote since the files were removed
            // goes too.
            let gone = matches!(
                inner.on_store(move |store| Ok(store.attachment(id)?)).await,
                Ok(None)
            );
            if gone {
                attempts.remove(&id);
                inner.remove_attachment_files([id]);
                continue;
            }
            match result {
                Ok(()) => {
                    attempts.remove(&id);
                }
                Err(error) if transient(&error) => {
                    let tries = attempts.get(&id).map_or(0, |(n, _)| *n);
                    let delay = backoff_delay(&inner, tries, false);
                    attempts.insert(id, (tries + 1, tokio::time::Instant::now() + delay));
                }
                Err(error) => {
                    attempts.remove(&id);
                    inner.fail_transfer(&row, &error).await;
                }
            }
        }
    }
}
