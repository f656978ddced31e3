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
use crate::group::GroupId;
use crate::images::PREVIEW_SIDE;
use crate::store::{
    AttachmentChat, AttachmentId, AttachmentRow, AttachmentSecretBytes, AttachmentState, Direction,
    DisappearingTimer, OutgoingContent, Store, StoreError, UnixMillis,
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
        self.send_file(AttachmentChat::Contact(contact), file.into())
            .await
    }

    /// `send_group_attachment`: the file goes to every member of `group_id` (`docs/engine.md`
    /// § Attachments, § Groups): encrypted once and uploaded ONCE, the blob made with one
    /// download grant per member we can send to; each member's pointer, with its own grant, is
    /// sealed over that member's own session when the upload is complete, like a group text.
    /// Refused if we are not a member.
    pub async fn send_group_attachment(
        &self,
        group_id: &str,
        file: OutgoingFile,
    ) -> Result<AttachmentView, EngineError> {
        let group = super::groups::parse_group(group_id)?;
        self.send_file(AttachmentChat::Group(group), file.into())
            .await
    }

    /// `send_attachment` of the file at `path` to `contact_id` (named as the file is), read
    /// as it is encrypted: a file that is not an image is never whole in memory
    /// (`docs/benchmarks.md` § Attachments). An image is read whole (its decoder needs it).
    pub async fn send_attachment_from_path(
        &self,
        contact_id: &str,
        path: &Path,
        media_type: &str,
    ) -> Result<AttachmentView, EngineError> {
        let contact = parse_contact(contact_id)?;
        let file_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let source = FileSource::Path {
            file_name,
            media_type: media_type.to_owned(),
            path: path.to_path_buf(),
        };
        self.send_file(AttachmentChat::Contact(contact), source)
            .await
    }

    /// Prepares an outgoing file for `chat` (see [`Self::send_attachment`]).
    async fn send_file(
        &self,
        chat: AttachmentChat,
        source: FileSource,
    ) -> Result<AttachmentView, EngineError> {
        let row = self
            .inner
            .blocking(move |inner| {
                check_chat(inner, &lock(&inner.store), chat)?;
                let file_name = super::receive_step::safe_file_name(source.file_name());
                let (plain, media_type, thumbnail) = source.open()?;
                let size = plain.size();
                let mut row = AttachmentRow {
                    file_name,
                    media_type,
                    size,
                    thumbnail,
                    ..AttachmentRow::blank(
                        AttachmentId::generate()?,
                        Direction::Outgoing,
                        chat,
                        AttachmentState::Transferring,
                    )
                };
                if size <= MAX_INLINE_BYTES as u64 {
                    row.inline_bytes = Some(plain.into_bytes()?);
                    let mut store = lock(&inner.store);
                    check_chat(inner, &store, chat)?;
                    store.insert_attachment(&row)?;
                    drop(store);
                    inner.send_pointer(&row)?;
                    // As it is now: sent, with its message (the update below must not undo the
                    // one `send_pointer` emitted).
                    let sent = lock(&inner.store).attachment(row.id)?;
                    return Ok(sent.unwrap_or(row));
                }
                let relay = read_settings(&lock(&inner.store))?
                    .relays
                    .first()
                    .cloned()
                    .ok_or(EngineError::NotOnboarded)?;
                let key = AttachmentKey::generate().map_err(EngineError::Attachment)?;
                let dir = chunk_dir(inner, row.id);
                let digest = match plain {
                    Plaintext::Bytes(bytes) => {
                        write_chunks(&dir, &key, size, &mut bytes.as_slice())
                    }
                    Plaintext::File { mut file, .. } => write_chunks(&dir, &key, size, &mut file),
                };
                let digest = match digest {
                    Ok(digest) => digest,
                    Err(error) => {
                        let _ = std::fs::remove_dir_all(&dir);
                        return Err(error);
                    }
                };
                row.relay_url = Some(relay);
                row.file_key = Some(AttachmentSecretBytes::new(key.expose().to_vec()));
                row.commitment = Some(key.commitment().0.to_vec());
                row.digest = Some(digest.0.to_vec());
                row.chunks = chunk_count(size).map_err(EngineError::Attachment)?;
                let mut store = lock(&inner.store);
                if let Err(error) = check_chat(inner, &store, chat) {
                    drop(store);
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(error);
                }
                store.insert_attachment(&row)?;
                Ok(row)
            })
            .await?;
        self.inner.attachment_wake.notify_one();
        Ok(self.inner.emit_attachment(&row))
    }

    /// `get_attachments`: every attachment of a conversation, oldest first.
    pub async fn get_attachments(
        &self,
        contact_id: &str,
    ) -> Result<Vec<AttachmentView>, EngineError> {
        let contact = parse_contact(contact_id)?;
        self.attachment_views(move |store| store.attachments_of_contact(contact))
            .await
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
        Ok(self.inner.emit_attachment(&row))
    }

    /// `get_group_attachments`: every attachment of a group, oldest first.
    pub async fn get_group_attachments(
        &self,
        group_id: &str,
    ) -> Result<Vec<AttachmentView>, EngineError> {
        let group = super::groups::parse_group(group_id)?;
        self.attachment_views(move |store| store.attachments_of_group(group))
            .await
    }

    /// The attachments `list` reads from the store, as views (one chat's, oldest first).
    async fn attachment_views(
        &self,
        list: impl FnOnce(&Store) -> Result<Vec<AttachmentRow>, StoreError> + Send + 'static,
    ) -> Result<Vec<AttachmentView>, EngineError> {
        let rows = self.inner.on_store(move |store| Ok(list(store)?)).await?;
        Ok(rows.iter().map(AttachmentView::from).collect())
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
                std::fs::create_dir_all(&directory).map_err(io)?;
                let path = unique_path(&directory, &name);
                // Written chunk by chunk as each is opened (never the whole file in memory);
                // whatever was written goes again if a chunk is refused.
                let written = std::fs::File::create(&path).map_err(io).and_then(|file| {
                    let mut out = std::io::BufWriter::new(file);
                    write_plaintext(inner, id, &mut out)?;
                    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
                    file.sync_all().map_err(io)
                });
                if let Err(error) = written {
                    let _ = std::fs::remove_file(&path);
                    return Err(error);
                }
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

/// Whether we can send a file to `chat` now: the contact exists, or we are a member of the group.
fn check_chat(inner: &Inner, store: &Store, chat: AttachmentChat) -> Result<(), EngineError> {
    match chat {
        AttachmentChat::Contact(contact) => {
            store
                .contact(contact)?
                .ok_or(EngineError::ContactNotFound)?;
        }
        AttachmentChat::Group(group) => super::groups::check_group_sender(inner, store, group)?,
    }
    Ok(())
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

/// What an outgoing file is read from: bytes the UI handed over, or a file on disk.
enum FileSource {
    /// The file's bytes.
    Bytes(OutgoingFile),
    /// A file to read as it is encrypted.
    Path {
        /// The name it is sent under.
        file_name: String,
        /// The claimed media type.
        media_type: String,
        /// Where it is.
        path: PathBuf,
    },
}

impl From<OutgoingFile> for FileSource {
    fn from(file: OutgoingFile) -> Self {
        Self::Bytes(file)
    }
}

/// An outgoing file's plaintext, ready to encrypt.
enum Plaintext {
    /// In memory (a small file, an image we re-encoded).
    Bytes(Zeroizing<Vec<u8>>),
    /// On disk, read chunk by chunk.
    File {
        /// The open file.
        file: std::fs::File,
        /// Its length when opened.
        size: u64,
    },
}

impl Plaintext {
    fn size(&self) -> u64 {
        match self {
            Self::Bytes(bytes) => bytes.len() as u64,
            Self::File { size, .. } => *size,
        }
    }

    /// The whole plaintext (only for a file small enough to ride inline).
    fn into_bytes(self) -> Result<Zeroizing<Vec<u8>>, EngineError> {
        match self {
            Self::Bytes(bytes) => Ok(bytes),
            Self::File { mut file, size } => {
                let mut bytes =
                    Zeroizing::new(Vec::with_capacity(usize::try_from(size).unwrap_or(0)));
                std::io::Read::read_to_end(&mut file, &mut bytes).map_err(io)?;
                Ok(bytes)
            }
        }
    }
}

impl FileSource {
    fn file_name(&self) -> &str {
        match self {
            Self::Bytes(file) => &file.file_name,
            Self::Path { file_name, .. } => file_name,
        }
    }

    /// The plaintext to send, its media type and thumbnail. An image (recognised by its bytes)
    /// is decoded and encoded again, so its metadata stays here; anything else is sent as it is.
    fn open(self) -> Result<(Plaintext, String, Option<Vec<u8>>), EngineError> {
        let (bytes, claimed) = match self {
            Self::Bytes(file) => (Zeroizing::new(file.bytes), file.media_type),
            Self::Path {
                media_type, path, ..
            } => {
                let mut file = std::fs::File::open(&path).map_err(io)?;
                let size = file.metadata().map_err(io)?.len();
                if size > MAX_SEND_BYTES.min(MAX_ATTACHMENT_BYTES) {
                    return Err(EngineError::AttachmentTooLarge);
                }
                let mut head = [0u8; 32];
                let read = read_up_to(&mut file, &mut head)?;
                let is_image = crate::images::ImageKind::sniff(&head[..read]).is_some();
                std::io::Seek::rewind(&mut file).map_err(io)?;
                if !is_image {
                    let media_type = non_image_type(&media_type);
                    return Ok((Plaintext::File { file, size }, media_type, None));
                }
                let mut bytes =
                    Zeroizing::new(Vec::with_capacity(usize::try_from(size).unwrap_or(0)));
                std::io::Read::read_to_end(&mut file, &mut bytes).map_err(io)?;
                (bytes, media_type)
            }
        };
        if bytes.len() as u64 > MAX_SEND_BYTES.min(MAX_ATTACHMENT_BYTES) {
            return Err(EngineError::AttachmentTooLarge);
        }
        Ok(match crate::images::strip_metadata(&bytes) {
            Ok((kind, clean)) => {
                let thumbnail = crate::images::thumbnail(&clean).ok();
                (
                    Plaintext::Bytes(Zeroizing::new(clean)),
                    kind.media_type().to_owned(),
                    thumbnail,
                )
            }
            Err(_) => (Plaintext::Bytes(bytes), non_image_type(&claimed), None),
        })
    }
}

/// Reads into `buffer` until it is full or the reader ends; returns how many bytes were read.
fn read_up_to(reader: &mut impl std::io::Read, buffer: &mut [u8]) -> Result<usize, EngineError> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(io(error)),
        }
    }
    Ok(filled)
}

/// Encrypts the `size` bytes `reader` yields into chunk files under `dir`, one chunk in memory
/// at a time; returns their digest. A reader that ends early or has more is refused (the file
/// changed while it was read).
fn write_chunks(
    dir: &Path,
    key: &AttachmentKey,
    size: u64,
    reader: &mut impl std::io::Read,
) -> Result<CiphertextDigest, EngineError> {
    let sealer = ChunkSealer::new(key, size).map_err(EngineError::Attachment)?;
    let mut digest = DigestBuilder::new(size).map_err(EngineError::Attachment)?;
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut data = Zeroizing::new(vec![0u8; CHUNK_CIPHERTEXT_BYTES]);
    for index in 0..sealer.chunk_count() {
        let take = sealer.data_bytes(index).map_err(EngineError::Attachment)?;
        let buffer =
            data.get_mut(..take)
                .ok_or(EngineError::Attachment(AttachmentError::ChunkLength {
                    index,
                }))?;
        if read_up_to(reader, buffer)? != take {
            return Err(EngineError::AttachmentIo(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file got shorter while it was read",
            )));
        }
        let chunk = sealer
            .seal_chunk(index, buffer)
            .map_err(EngineError::Attachment)?;
        digest.push(&chunk).map_err(EngineError::Attachment)?;
        std::fs::write(chunk_path(dir, index), &chunk).map_err(io)?;
    }
    if read_up_to(reader, &mut [0u8; 1])? != 0 {
        return Err(EngineError::AttachmentIo(std::io::Error::other(
            "the file got longer while it was read",
        )));
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

/// The plaintext of a complete attachment, in memory: inline bytes, or every chunk file opened
/// (commitment, digest and every tag checked).
fn read_plaintext(inner: &Arc<Inner>, id: AttachmentId) -> Result<Zeroizing<Vec<u8>>, EngineError> {
    let mut out = Zeroizing::new(Vec::new());
    write_plaintext(inner, id, &mut *out)?;
    Ok(out)
}

/// Writes the plaintext of a complete attachment to `out`: inline bytes, or, after the digest
/// over every chunk file was checked, each chunk as it is opened (commitment and tag checked),
/// one chunk in memory at a time.
fn write_plaintext(
    inner: &Arc<Inner>,
    id: AttachmentId,
    out: &mut impl std::io::Write,
) -> Result<(), EngineError> {
    let row = lock(&inner.store)
        .attachment(id)?
        .ok_or(EngineError::AttachmentNotFound)?;
    if row.direction == Direction::Incoming && row.state != AttachmentState::Complete {
        return Err(EngineError::AttachmentNotReady);
    }
    if let Some(bytes) = &row.inline_bytes {
        return out.write_all(bytes).map_err(io);
    }
    let (key, commitment, _) = blob_secrets(&row)?;
    let opener = ChunkOpener::new(&key, &commitment, row.size).map_err(EngineError::Attachment)?;
    let dir = chunk_dir(inner, id);
    verify_chunk_files(&dir, &row)?;
    for index in 0..row.chunks {
        let chunk = std::fs::read(chunk_path(&dir, index)).map_err(io)?;
        let plain = opener
            .open_chunk(index, &chunk)
            .map_err(EngineError::Attachment)?;
        out.write_all(&plain).map_err(io)?;
    }
    Ok(())
}

/// The pointer of an outgoing attachment with download grant number `grant` of its blob (each
/// recipient gets its own; ignored for an inline file) and the disappearing timer `timer_secs`.
pub(super) fn outgoing_pointer(
    row: &AttachmentRow,
    grant: usize,
    timer_secs: Option<u32>,
) -> Result<AttachmentPointer, EngineError> {
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
                    .get(grant)
                    .ok_or(EngineError::AttachmentNotReady)?
                    .expose_secret()
                    .to_vec(),
                key: key.expose().to_vec(),
                commitment: commitment.0.to_vec(),
                digest: digest.0.to_vec(),
            }
        }
    };
    Ok(AttachmentPointer {
        file_name: row.file_name.clone(),
        media_type: row.media_type.clone(),
        size: row.size,
        location,
        thumbnail: row.thumbnail.clone(),
        timer_secs,
    })
}

/// Sends an outgoing group attachment (`docs/engine.md` § Attachments): stores the group
/// message (its text is the file name) with one copy per member we can send to now, links the
/// attachment to it, and seals each member's pointer, with that member's OWN download grant of
/// the one blob, over that member's own session: all in ONE transaction, like a group text. A
/// member removed while the file uploaded gets nothing; one reachable only since then gets no
/// grant (there is none left for it). Refused once we are no longer a member.
fn send_group_pointer(
    inner: &Arc<Inner>,
    row: &AttachmentRow,
    id: GroupId,
) -> Result<(), EngineError> {
    let me = super::groups::own_key(inner);
    let now = UnixMillis::now();
    let mut store = lock(&inner.store);
    let group = super::groups::load_group(&store, id)?;
    group.replica.check_message(&me)?;
    let mut recipients = super::groups::reachable(&store, &group.replica.recipients(&me))?;
    if row.inline_bytes.is_none() {
        recipients.truncate(row.grants.len());
    }
    // The file carries the group's timer as it is now, like a group text (`docs/engine.md`
    // § Disappearing messages): every member deletes it, chunk files included, when it expires.
    let timer = group.replica.state.timer_setting();
    store.transaction(|store| -> Result<(), EngineError> {
        let message = store.insert_outgoing_timed_group_text(
            id,
            me,
            &row.file_name,
            &recipients,
            timer,
            now,
        )?;
        store.link_attachment_group_message(row.id, message.id)?;
        for (grant, member) in recipients.iter().enumerate() {
            let body = Body::GroupAttachment {
                group_id: id,
                seq: message.seq,
                pointer: outgoing_pointer(row, grant, timer.map(DisappearingTimer::seconds))?,
            };
            super::groups::fan_out(inner, store, &[*member], &body, Some(message.id))?;
        }
        Ok(())
    })?;
    let attachment = store.attachment(row.id)?;
    drop(store);
    inner.outbox_wake.notify_one();
    inner.after_pointer_sent(attachment);
    Ok(())
}

impl Inner {
    /// Seals the pointer of an outgoing attachment for its contact (or, for a group's file, for
    /// each member: [`send_group_pointer`]) and queues it, linking the attachment to the
    /// new message in the same transaction (seal once).
    fn send_pointer(self: &Arc<Self>, row: &AttachmentRow) -> Result<(), EngineError> {
        let contact = match row.chat {
            AttachmentChat::Contact(contact) => contact,
            AttachmentChat::Group(group) => return send_group_pointer(self, row, group),
        };
        let now = self.clock.now();
        let id = row.id;
        let mut store = lock(&self.store);
        // The message carries the chat's timer as it is now, like a text
        // (`docs/engine.md` § Disappearing messages): it expires here and at the recipient.
        let timer = store.chat_timer(contact)?.timer;
        let pointer = outgoing_pointer(row, 0, timer.map(DisappearingTimer::seconds))?;
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
        self.after_pointer_sent(row);
        Ok(())
    }

    /// After an attachment's message was sealed: tells the UI, which reloads the conversation
    /// when an attachment gets its `messageId`.
    pub(super) fn after_pointer_sent(&self, row: Option<AttachmentRow>) {
        // No `message-received` (that one means a peer's message): the UI reloads the
        // conversation when an attachment gets its `messageId`.
        if let Some(row) = row {
            self.emit_attachment(&row);
        }
    }

    /// Tells the UI that `row` changed (`attachment-updated`); its view, for a command's answer.
    fn emit_attachment(&self, row: &AttachmentRow) -> AttachmentView {
        let view = AttachmentView::from(row);
        self.emit(EngineEvent::AttachmentUpdated {
            attachment: view.clone(),
        });
        view
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
            // One grant per recipient: the contact, or each member we can send to now (a
            // member reachable only later gets none, as for a text; `docs/engine.md` § Groups).
            let chat = row.chat;
            let recipients = self
                .blocking(move |inner| match chat {
                    AttachmentChat::Contact(_) => Ok(1),
                    AttachmentChat::Group(group) => super::groups::grant_count(inner, group),
                })
                .await?;
            let created = self
                .blobs
                .create(
                    &relay,
                    row.chunks,
                    recipients,
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
        let checked = row.clone();
        let check_dir = dir.clone();
        let verified = self
            .blocking(move |_| verify_chunk_files(&check_dir, &checked))
            .await;
        // Every chunk is stored and checked here: the grant goes back, and the relay deletes the
        // blob once every recipient's has (`docs/relay-protocol.md` § 13.3). Best effort: a
        // refusal (an older relay, released before a restart) leaves it to the blob's expiry.
        if verified.is_ok()
            && let Err(error) = self
                .blobs
                .release(&relay, grant.expose_secret(), row.chunks)
                .await
        {
            tracing::debug!(%error, "blob grant not released");
        }
        self.blobs.finished(grant.expose_secret());
        verified?;
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
