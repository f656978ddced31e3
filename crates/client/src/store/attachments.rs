//! Attachment rows (schema V9, V11 for groups, `docs/engine.md` § Attachments): what we know of
//! each file we send or received, in a 1:1 chat or a group, its key, and how far its upload or download got, so a transfer resumes at its
//! next chunk after a restart. The chunk files themselves (STREAM ciphertext) live under the
//! profile's `attachments/` directory, outside the database.

use rusqlite::{Connection, OptionalExtension, Row, ToSql, params};
use zeroize::Zeroizing;

use super::Store;
use super::types::{
    AttachmentId, AttachmentSecretBytes, ContactId, Direction, MessageId, UnixMillis,
};
use super::{Missing, StoreError};
use crate::group::GroupId;

/// The conversation an attachment belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachmentChat {
    /// A 1:1 chat; the message that carries it is one of `messages`.
    Contact(ContactId),
    /// A group (schema V11): uploaded once, one grant per member; the message that carries it
    /// is one of `group_messages`.
    Group(GroupId),
}

impl AttachmentChat {
    /// The contact, for a 1:1 attachment.
    pub fn contact(self) -> Option<ContactId> {
        match self {
            Self::Contact(contact) => Some(contact),
            Self::Group(_) => None,
        }
    }

    /// The group, for a group attachment.
    pub fn group(self) -> Option<GroupId> {
        match self {
            Self::Contact(_) => None,
            Self::Group(group) => Some(group),
        }
    }
}

/// The name of an attachment's chunk file `index` in its directory
/// (`<profile>/attachments/<id>/`).
pub fn chunk_file_name(index: u32) -> String {
    format!("{index:08}.chunk")
}

/// Where an attachment is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachmentState {
    /// Received, not fetched yet (the user has not asked for it).
    Offered,
    /// Uploading or downloading; resumed on start.
    Transferring,
    /// Uploaded and sent, or downloaded and checked.
    Complete,
    /// Given up (the row's `error` says why).
    Failed,
    /// Cancelled by the user.
    Cancelled,
}

impl AttachmentState {
    fn to_i64(self) -> i64 {
        match self {
            Self::Offered => 0,
            Self::Transferring => 1,
            Self::Complete => 2,
            Self::Failed => 3,
            Self::Cancelled => 4,
        }
    }

    fn from_i64(value: i64) -> Result<Self, StoreError> {
        Ok(match value {
            0 => Self::Offered,
            1 => Self::Transferring,
            2 => Self::Complete,
            3 => Self::Failed,
            4 => Self::Cancelled,
            other => {
                return Err(StoreError::CorruptRow {
                    detail: format!("attachment state {other}"),
                });
            }
        })
    }
}

/// One attachment. Holds the file key and relay capabilities: no `Debug`.
#[derive(Clone)]
pub struct AttachmentRow {
    /// Its local id.
    pub id: AttachmentId,
    /// Sent or received.
    pub direction: Direction,
    /// The conversation.
    pub chat: AttachmentChat,
    /// The message that carries it (an outgoing one exists once the upload finished): a 1:1
    /// message, or a group message for a group attachment.
    pub message: Option<MessageId>,
    /// The file name (bidi controls already removed from a received one).
    pub file_name: String,
    /// The claimed media type.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// The sender's thumbnail (a JPEG), if any.
    pub thumbnail: Option<Vec<u8>>,
    /// The file itself, when it rode inline.
    pub inline_bytes: Option<Zeroizing<Vec<u8>>>,
    /// The relay holding the blob.
    pub relay_url: Option<String>,
    /// Incoming: our download grant; outgoing: the upload token.
    pub capability: Option<AttachmentSecretBytes>,
    /// Outgoing: the recipients' download grants.
    pub grants: Vec<AttachmentSecretBytes>,
    /// The file key.
    pub file_key: Option<AttachmentSecretBytes>,
    /// The key commitment.
    pub commitment: Option<Vec<u8>>,
    /// The ciphertext digest.
    pub digest: Option<Vec<u8>>,
    /// Chunks of the blob (0 for an inline file).
    pub chunks: u32,
    /// Chunks uploaded or downloaded (and checked) so far.
    pub done_chunks: u32,
    /// Its state.
    pub state: AttachmentState,
    /// Why it failed (an error kind).
    pub error: Option<String>,
    /// When the row was made.
    pub created_at: UnixMillis,
}

impl AttachmentRow {
    /// A row made now with only its id, direction, chat and state: no file yet (empty name and
    /// type, 0 bytes, no thumbnail), no message and nothing of a transfer (no inline bytes, blob,
    /// keys or chunks). Callers fill in the rest with struct update syntax
    /// (`AttachmentRow { file_name, ..AttachmentRow::blank(…) }`).
    pub fn blank(
        id: AttachmentId,
        direction: Direction,
        chat: AttachmentChat,
        state: AttachmentState,
    ) -> Self {
        Self {
            id,
            direction,
            chat,
            message: None,
            file_name: String::new(),
            media_type: String::new(),
            size: 0,
            thumbnail: None,
            inline_bytes: None,
            relay_url: None,
            capability: None,
            grants: Vec::new(),
            file_key: None,
            commitment: None,
            digest: None,
            chunks: 0,
            done_chunks: 0,
            state,
            error: None,
            created_at: UnixMillis::now(),
        }
    }
}

const COLUMNS: &str = "id, direction, contact_id, message_id, file_name, media_type, size, \
    thumbnail, inline_bytes, relay_url, capability, grants, file_key, commitment, digest, chunks, \
    done_chunks, state, error, created_at, group_id, group_message_id";

fn encode_grants(
    grants: &[AttachmentSecretBytes],
) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
    if grants.is_empty() {
        return Ok(None);
    }
    let list: Vec<serde_bytes::ByteBuf> = grants
        .iter()
        .map(|g| serde_bytes::ByteBuf::from(g.expose_secret().to_vec()))
        .collect();
    let mut out = Zeroizing::new(Vec::new());
    ciborium::into_writer(&list, &mut *out).map_err(|_| StoreError::InvalidInput {
        what: "attachment grants",
    })?;
    Ok(Some(out))
}

fn decode_grants(bytes: Option<Vec<u8>>) -> Result<Vec<AttachmentSecretBytes>, StoreError> {
    let Some(bytes) = bytes.map(Zeroizing::new) else {
        return Ok(Vec::new());
    };
    let list: Vec<serde_bytes::ByteBuf> =
        ciborium::from_reader(bytes.as_slice()).map_err(|_| StoreError::CorruptRow {
            detail: "attachment grants".into(),
        })?;
    Ok(list
        .into_iter()
        .map(|g| AttachmentSecretBytes::new(g.into_vec()))
        .collect())
}

fn row_to_attachment(row: &Row<'_>) -> rusqlite::Result<(AttachmentRow, i64, Option<Vec<u8>>)> {
    let size: i64 = row.get(6)?;
    let chunks: i64 = row.get(15)?;
    let done: i64 = row.get(16)?;
    let contact: Option<ContactId> = row.get(2)?;
    let group: Option<GroupId> = row.get(20)?;
    let (chat, message) = match (contact, group) {
        (Some(contact), _) => (AttachmentChat::Contact(contact), row.get(3)?),
        (None, Some(group)) => (AttachmentChat::Group(group), row.get(21)?),
        (None, None) => {
            return Err(rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Null,
                "an attachment of no conversation".into(),
            ));
        }
    };
    Ok((
        AttachmentRow {
            id: row.get(0)?,
            direction: row.get(1)?,
            chat,
            message,
            file_name: row.get(4)?,
            media_type: row.get(5)?,
            size: u64::try_from(size).unwrap_or(0),
            thumbnail: row.get(7)?,
            inline_bytes: row.get::<_, Option<Vec<u8>>>(8)?.map(Zeroizing::new),
            relay_url: row.get(9)?,
            capability: row.get(10)?,
            grants: Vec::new(),
            file_key: row.get(12)?,
            commitment: row.get(13)?,
            digest: row.get(14)?,
            chunks: u32::try_from(chunks).unwrap_or(0),
            done_chunks: u32::try_from(done).unwrap_or(0),
            state: AttachmentState::Offered,
            error: row.get(18)?,
            created_at: row.get(19)?,
        },
        row.get(17)?,
        row.get(11)?,
    ))
}

fn finish(parts: (AttachmentRow, i64, Option<Vec<u8>>)) -> Result<AttachmentRow, StoreError> {
    let (mut row, state, grants) = parts;
    row.state = AttachmentState::from_i64(state)?;
    row.grants = decode_grants(grants)?;
    Ok(row)
}

/// Inserts `row` on `connection` (inside the caller's transaction, if any).
pub(crate) fn insert_attachment_on(
    connection: &Connection,
    row: &AttachmentRow,
) -> Result<(), StoreError> {
    let grants = encode_grants(&row.grants)?;
    connection
        .prepare_cached(&format!(
            "INSERT INTO attachments ({COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, \
             ?21, ?22)"
        ))?
        .execute(params![
            row.id,
            row.direction.to_i64(),
            row.chat.contact(),
            row.message.filter(|_| row.chat.contact().is_some()),
            row.file_name,
            row.media_type,
            i64::try_from(row.size).map_err(|_| StoreError::InvalidInput {
                what: "attachment size"
            })?,
            row.thumbnail,
            row.inline_bytes.as_ref().map(|b| b.as_slice()),
            row.relay_url,
            row.capability,
            grants.as_ref().map(|g| g.as_slice()),
            row.file_key,
            row.commitment,
            row.digest,
            i64::from(row.chunks),
            i64::from(row.done_chunks),
            row.state.to_i64(),
            row.error,
            row.created_at,
            row.chat.group(),
            row.message.filter(|_| row.chat.group().is_some()),
        ])?;
    Ok(())
}

impl Store {
    /// Stores a new attachment row.
    pub fn insert_attachment(&mut self, row: &AttachmentRow) -> Result<(), StoreError> {
        insert_attachment_on(&self.connection, row)
    }

    /// One attachment.
    pub fn attachment(&self, id: AttachmentId) -> Result<Option<AttachmentRow>, StoreError> {
        self.attachment_where("id", id)
    }

    /// The attachment a message carries, if any.
    pub fn attachment_of_message(
        &self,
        message: MessageId,
    ) -> Result<Option<AttachmentRow>, StoreError> {
        self.attachment_where("message_id", message)
    }

    /// Every attachment of a conversation, oldest first.
    pub fn attachments_of_contact(
        &self,
        contact: ContactId,
    ) -> Result<Vec<AttachmentRow>, StoreError> {
        self.attachments_where("contact_id", contact)
    }

    /// Every attachment of a group, oldest first.
    pub fn attachments_of_group(&self, group: GroupId) -> Result<Vec<AttachmentRow>, StoreError> {
        self.attachments_where("group_id", group)
    }

    /// The attachment a group message carries, if any.
    pub fn attachment_of_group_message(
        &self,
        message: MessageId,
    ) -> Result<Option<AttachmentRow>, StoreError> {
        self.attachment_where("group_message_id", message)
    }

    /// The attachment whose `column` is `key`, if any (`column` is one of this module's names,
    /// never input).
    fn attachment_where(
        &self,
        column: &str,
        key: impl ToSql,
    ) -> Result<Option<AttachmentRow>, StoreError> {
        self.connection
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM attachments WHERE {column} = ?1"
            ))?
            .query_row(params![key], row_to_attachment)
            .optional()?
            .map(finish)
            .transpose()
    }

    /// Every attachment whose `column` is `key`, oldest first (`column` as in
    /// [`Store::attachment_where`]).
    fn attachments_where(
        &self,
        column: &str,
        key: impl ToSql,
    ) -> Result<Vec<AttachmentRow>, StoreError> {
        let mut statement = self.connection.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM attachments WHERE {column} = ?1 ORDER BY created_at, id"
        ))?;
        let rows = statement.query_map(params![key], row_to_attachment)?;
        rows.map(|r| finish(r?)).collect()
    }

    /// Attachments being uploaded or downloaded (resumed on start), oldest first.
    pub fn attachment_transfers(&self) -> Result<Vec<AttachmentRow>, StoreError> {
        let mut statement = self.connection.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM attachments WHERE state = 1 ORDER BY created_at, id"
        ))?;
        let rows = statement.query_map([], row_to_attachment)?;
        rows.map(|r| finish(r?)).collect()
    }

    /// Records the blob an upload made: the relay, the upload token and the recipients' grants.
    pub fn set_attachment_blob(
        &mut self,
        id: AttachmentId,
        relay_url: &str,
        capability: &AttachmentSecretBytes,
        grants: &[AttachmentSecretBytes],
    ) -> Result<(), StoreError> {
        let grants = encode_grants(grants)?;
        self.connection
            .prepare_cached(
                "UPDATE attachments SET relay_url = ?2, capability = ?3, grants = ?4 WHERE id = ?1",
            )?
            .execute(params![
                id,
                relay_url,
                capability,
                grants.as_ref().map(|g| g.as_slice())
            ])?;
        Ok(())
    }

    /// Records how many chunks are uploaded or downloaded (and checked).
    pub fn set_attachment_progress(
        &mut self,
        id: AttachmentId,
        done_chunks: u32,
    ) -> Result<(), StoreError> {
        self.connection
            .prepare_cached("UPDATE attachments SET done_chunks = ?2 WHERE id = ?1")?
            .execute(params![id, i64::from(done_chunks)])?;
        Ok(())
    }

    /// Moves an attachment to `state` (with `error` for a failure). Returns whether it was in
    /// one of `from`.
    pub fn set_attachment_state(
        &mut self,
        id: AttachmentId,
        from: &[AttachmentState],
        state: AttachmentState,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let Some(current) = self.attachment(id)? else {
            return Err(StoreError::NotFound {
                what: Missing::Attachment,
            });
        };
        if !from.contains(&current.state) {
            return Ok(false);
        }
        self.connection
            .prepare_cached("UPDATE attachments SET state = ?2, error = ?3 WHERE id = ?1")?
            .execute(params![id, state.to_i64(), error])?;
        Ok(true)
    }

    /// Ties an outgoing attachment to the message that carries it. Runs on the open
    /// transaction of [`Store::insert_and_seal_outgoing`]'s `seal` callback, so the message, its
    /// envelopes and this link commit together.
    pub fn link_attachment_message(
        &self,
        id: AttachmentId,
        message: MessageId,
    ) -> Result<(), StoreError> {
        self.link_attachment(
            "UPDATE attachments SET message_id = ?2, state = 2 WHERE id = ?1 AND message_id IS NULL",
            id,
            message,
        )
    }

    /// Ties an outgoing group attachment to the group message that carries it, inside the
    /// caller's transaction with the message and its sealed copies.
    pub fn link_attachment_group_message(
        &self,
        id: AttachmentId,
        message: MessageId,
    ) -> Result<(), StoreError> {
        self.link_attachment(
            "UPDATE attachments SET group_message_id = ?2, state = 2
                 WHERE id = ?1 AND group_id IS NOT NULL AND group_message_id IS NULL",
            id,
            message,
        )
    }

    /// Runs `update` (`?1` the attachment, `?2` the message) to tie an attachment not yet sent
    /// to its message; [`StoreError::Conflict`] when it changed nothing (already sent). What the
    /// two `link_attachment_*` share.
    fn link_attachment(
        &self,
        update: &str,
        id: AttachmentId,
        message: MessageId,
    ) -> Result<(), StoreError> {
        let changed = self
            .connection
            .prepare_cached(update)?
            .execute(params![id, message])?;
        if changed == 0 {
            return Err(StoreError::Conflict {
                what: "attachment already sent",
            });
        }
        Ok(())
    }
}

/// A received attachment row, stored with its message in the receive transaction
/// ([`ReceivedContent::Attachment`](super::ReceivedContent::Attachment)). Its `Debug` shows the
/// id only; two are equal when their ids are.
#[derive(Clone)]
pub struct IncomingAttachment(pub Box<AttachmentRow>);

impl std::fmt::Debug for IncomingAttachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IncomingAttachment({})", self.0.id)
    }
}

impl PartialEq for IncomingAttachment {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for IncomingAttachment {}
