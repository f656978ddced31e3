//! Messages, the outbox, and the two delivery transactions.
//!
//! ## Sending ("seal once", `docs/engine.md` § Sending)
//!
//! 1. [`Store::insert_outgoing_message`]: the message is durable (`Queued`, unsealed) and gets its
//!    conversation sequence number.
//! 2. The engine seals it with the current session state (from [`Store::session_state`]) once per
//!    relay of the contact, then calls [`Store::commit_sealed`]: the advanced session state and
//!    every sealed envelope are written in ONE transaction, before the first SEND.
//! 3. [`Store::due_outbox`] yields those exact bytes, on start and after every backoff;
//!    [`Store::mark_outbox_sent`] on the relay's OK, [`Store::reschedule_outbox`] on failure,
//!    [`Store::give_up_outbox`] at the end. Nothing is ever sealed twice: a sealed message is
//!    refused by `commit_sealed`.
//!
//! ## Receiving (`docs/engine.md` § Receiving)
//!
//! The engine opens an envelope (HPKE, then the ratchet) and only then calls
//! [`Store::commit_received`], which stores the content, the new session state and the
//! (contact, envelope id) dedupe row in one transaction, or reports a duplicate and changes
//! nothing. Only after it returns does the engine ACK the relay.
//!
//! ## Order
//!
//! Every plaintext carries a per-conversation [`ConversationSeq`]. Ours is one more than the
//! highest number seen in either direction (a Lamport clock), so each side's numbers strictly
//! increase and (seq, direction) is unique; the UI orders by [`MessagePosition`], never by relay
//! order or clocks.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::contacts::{CONTACT_COLUMNS, Contact, contact_from_row, write_session};
use super::expiry::{
    DisappearingTimer, apply_timer_change_in, set_message_timer_in, set_timer_change_in,
};
use super::types::{
    ContactId, ConversationSeq, Direction, EnvelopeId, MessageId, MessagePosition, MessageState,
    OutboxItemId, RelayUrl, SealedEnvelopeBytes, SendId, SessionStateBytes, UnixMillis,
};
use super::{Missing, Store, StoreError};

/// A message as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Its id.
    pub id: MessageId,
    /// The conversation.
    pub contact: ContactId,
    /// Who wrote it.
    pub direction: Direction,
    /// Its conversation sequence number.
    pub seq: ConversationSeq,
    /// The text.
    pub body: String,
    /// Outgoing: when we queued it. Incoming: the sender's claimed clock (display only).
    pub sent_at: UnixMillis,
    /// Incoming: when we stored it.
    pub received_at: Option<UnixMillis>,
    /// Delivery or read state.
    pub state: MessageState,
    /// The disappearing timer it was sent with (`docs/engine.md` § Disappearing messages).
    pub timer: Option<DisappearingTimer>,
    /// When it expires, by our clock (with `timer`).
    pub expires_at: Option<UnixMillis>,
    /// A system line, not a text: the chat's timer was changed to this (`Some(None)`: off).
    /// The body is empty.
    pub timer_change: Option<Option<DisappearingTimer>>,
}

impl Message {
    /// Its place in the conversation (the paging cursor).
    pub fn position(&self) -> MessagePosition {
        MessagePosition {
            seq: self.seq,
            direction: self.direction,
        }
    }
}

/// One relay's sealed envelope for [`SealedOutgoing`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedEnvelopeForRelay {
    /// The relay.
    pub relay_url: RelayUrl,
    /// The contact's send id there (the seal is bound to it through HPKE `info`).
    pub send_id: SendId,
    /// The sealed bytes, sent unchanged on every retry.
    pub sealed: SealedEnvelopeBytes,
}

/// The result of sealing one plaintext, for [`Store::commit_sealed`]. Holds the session state:
/// no `Debug`.
pub struct SealedOutgoing {
    /// The conversation.
    pub contact: ContactId,
    /// The message sealed, or `None` for receipts and other control plaintexts.
    pub message: Option<MessageId>,
    /// The session state after the ratchet step that produced the envelopes.
    pub session_state: SessionStateBytes,
    /// One envelope per relay of the contact (at least one).
    pub envelopes: Vec<SealedEnvelopeForRelay>,
    /// Now: the outbox rows' creation time and first attempt time.
    pub now: UnixMillis,
}

/// One sealed envelope waiting for a relay's OK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxItem {
    /// Its id.
    pub id: OutboxItemId,
    /// The conversation.
    pub contact: ContactId,
    /// The message it carries, if any.
    pub message: Option<MessageId>,
    /// The relay.
    pub relay_url: RelayUrl,
    /// The send id to SEND to.
    pub send_id: SendId,
    /// The sealed bytes.
    pub sealed: SealedEnvelopeBytes,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not before this time.
    pub next_attempt_at: UnixMillis,
    /// When it was sealed.
    pub created_at: UnixMillis,
}

/// Which receipt a peer sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptKind {
    /// Our messages reached the peer's device.
    Delivered,
    /// The peer read them.
    Read,
}

/// What an opened plaintext contained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReceivedContent {
    /// A text message.
    Message {
        /// The sender's conversation sequence number.
        seq: ConversationSeq,
        /// The text.
        body: String,
        /// The sender's clock at sending.
        sent_at: UnixMillis,
    },
    /// A delivery or read receipt for our messages with these sequence numbers.
    Receipt {
        /// Which receipt.
        kind: ReceiptKind,
        /// Our outgoing sequence numbers it covers.
        seqs: Vec<ConversationSeq>,
    },
    /// Only the session changed (e.g. a prekey refresh with no content).
    SessionOnly,
    /// A text message that also carries receipts for our messages (a delivery receipt riding
    /// on the peer's next message, `docs/engine.md` § Inside a ratchet message): both are applied
    /// in the same savepoint.
    MessageWithReceipts {
        /// The sender's conversation sequence number.
        seq: ConversationSeq,
        /// The text.
        body: String,
        /// The sender's clock at sending.
        sent_at: UnixMillis,
        /// Each receipt: its kind and the outgoing sequence number it covers.
        receipts: Vec<(ReceiptKind, ConversationSeq)>,
    },
    /// A text sent with a disappearing timer (`docs/engine.md` § Disappearing messages); it
    /// expires `timer` after it is stored. Receipts as in [`ReceivedContent::MessageWithReceipts`].
    TimedMessage {
        /// The sender's conversation sequence number.
        seq: ConversationSeq,
        /// The text.
        body: String,
        /// The sender's clock at sending.
        sent_at: UnixMillis,
        /// The timer it was sent with.
        timer: DisappearingTimer,
        /// Receipts riding on it.
        receipts: Vec<(ReceiptKind, ConversationSeq)>,
    },
    /// The peer changed the chat's disappearing timer: stored as a system line, and applied if
    /// it wins (`store/expiry.rs`).
    TimerChange {
        /// The sender's conversation sequence number (the change's Lamport clock).
        seq: ConversationSeq,
        /// The new setting (`None`: off).
        timer: Option<DisappearingTimer>,
        /// The sender's clock at sending.
        sent_at: UnixMillis,
    },
    /// A file or an image (`docs/engine.md` § Attachments): its message (the text is the file
    /// name) and its attachment row, stored together.
    Attachment {
        /// The sender's conversation sequence number.
        seq: ConversationSeq,
        /// The message text shown for it (the file name).
        body: String,
        /// The sender's clock at sending.
        sent_at: UnixMillis,
        /// The attachment row (its message id is set here).
        attachment: super::IncomingAttachment,
        /// The disappearing timer it was sent with, if any: it expires that long after it is
        /// stored, its chunk files with it.
        timer: Option<DisappearingTimer>,
    },
}

/// What an outgoing message holds (for [`Store::insert_and_seal_outgoing_content`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutgoingContent<'a> {
    /// A text, with the chat's timer when it is on.
    Text {
        /// The text.
        body: &'a str,
        /// The disappearing timer it is sent with.
        timer: Option<DisappearingTimer>,
    },
    /// A change of the chat's disappearing timer (`None`: off), applied at once.
    TimerChange(Option<DisappearingTimer>),
}

/// An opened envelope, for [`Store::commit_received`]. Holds the session state: no `Debug`.
pub struct Received {
    /// The contact whose session opened it.
    pub contact: ContactId,
    /// The envelope id from inside the seal.
    pub envelope_id: EnvelopeId,
    /// The session state after the successful open.
    pub session_state: SessionStateBytes,
    /// What it contained.
    pub content: ReceivedContent,
    /// Our clock now.
    pub received_at: UnixMillis,
}

/// What [`Store::commit_received`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReceiveOutcome {
    /// A new message was stored.
    Stored(Message),
    /// A receipt advanced these of our messages.
    ReceiptApplied {
        /// The messages whose state changed.
        updated: Vec<MessageId>,
    },
    /// Only the session state changed.
    SessionUpdated,
    /// A new message was stored, and the receipts it carried advanced these of our messages.
    StoredWithReceipts {
        /// The stored message.
        message: Message,
        /// Our messages whose state changed.
        updated: Vec<MessageId>,
    },
    /// This envelope id was already committed for this contact: nothing was written. ACK it.
    Duplicate,
}

/// One row of the chat list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatSummary {
    /// The contact.
    pub contact: Contact,
    /// The newest message, if any.
    pub last_message: Option<Message>,
    /// Incoming messages not yet read.
    pub unread_count: u32,
    /// The chat's disappearing timer (`None`: off).
    pub timer: Option<DisappearingTimer>,
}

const MESSAGE_COLUMNS: &str = "id, contact_id, direction, seq, body, sent_at, received_at, state, \
     expire_after_s, expires_at, timer_change";

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<Message> {
    let timer: Option<u32> = row.get(8)?;
    let timer_change: Option<u32> = row.get(10)?;
    let bad = |column: usize, what: u32| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Integer,
            format!("{what} s is not a disappearing timer").into(),
        )
    };
    Ok(Message {
        timer: match timer {
            None => None,
            Some(seconds) => {
                Some(DisappearingTimer::from_seconds(seconds).ok_or_else(|| bad(8, seconds))?)
            }
        },
        expires_at: row.get(9)?,
        timer_change: match timer_change {
            None => None,
            Some(seconds) => Some(
                DisappearingTimer::setting_from_seconds(seconds).ok_or_else(|| bad(10, seconds))?,
            ),
        },
        id: row.get(0)?,
        contact: row.get(1)?,
        direction: row.get(2)?,
        seq: row.get(3)?,
        body: row.get(4)?,
        sent_at: row.get(5)?,
        received_at: row.get(6)?,
        state: row.get(7)?,
    })
}

const OUTBOX_COLUMNS: &str = "id, contact_id, message_id, relay_url, send_id, sealed, attempts, \
     next_attempt_at, created_at";

fn outbox_from_row(row: &Row<'_>) -> rusqlite::Result<OutboxItem> {
    Ok(OutboxItem {
        id: row.get(0)?,
        contact: row.get(1)?,
        message: row.get(2)?,
        relay_url: row.get(3)?,
        send_id: row.get(4)?,
        sealed: row.get(5)?,
        attempts: row.get(6)?,
        next_attempt_at: row.get(7)?,
        created_at: row.get(8)?,
    })
}

fn load_contact(transaction: &Connection, id: ContactId) -> Result<Contact, StoreError> {
    transaction
        .prepare_cached(&format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = ?1"
        ))?
        .query_row(params![id], contact_from_row)
        .optional()?
        .ok_or(StoreError::NotFound {
            what: Missing::Contact,
        })
}

fn last_seq(transaction: &Connection, contact: ContactId) -> Result<u64, StoreError> {
    let raw: i64 = transaction
        .prepare_cached("SELECT last_seq FROM contacts WHERE id = ?1")?
        .query_row(params![contact], |row| row.get(0))?;
    u64::try_from(raw).map_err(|_| StoreError::CorruptRow {
        detail: "negative last_seq".to_owned(),
    })
}

/// The body of [`Store::commit_sealed`], inside an open transaction or savepoint.
fn seal_in(
    transaction: &Connection,
    sealed: &SealedOutgoing,
) -> Result<Vec<OutboxItem>, StoreError> {
    if sealed.envelopes.is_empty() {
        return Err(StoreError::InvalidInput {
            what: "commit_sealed needs at least one envelope",
        });
    }
    let contact = load_contact(transaction, sealed.contact)?;
    if let Some(reason) = contact.sending_blocked_reason() {
        return Err(StoreError::SendingBlocked { reason });
    }
    if let Some(message) = sealed.message {
        let marked = transaction
            .prepare_cached(
                "UPDATE messages SET sealed_at = ?3 WHERE id = ?1 AND contact_id = ?2
             AND direction = 1 AND state = 0 AND sealed_at IS NULL",
            )?
            .execute(params![message, sealed.contact, sealed.now])?;
        if marked == 0 {
            return Err(StoreError::Conflict {
                what: "the message is not an unsealed queued message of this contact",
            });
        }
    }
    write_session(
        transaction,
        sealed.contact,
        &sealed.session_state,
        sealed.now,
    )?;
    let mut items = Vec::with_capacity(sealed.envelopes.len());
    for envelope in &sealed.envelopes {
        let id = OutboxItemId::generate()?;
        transaction
            .prepare_cached(
                "INSERT INTO outbox (id, contact_id, message_id, relay_url, send_id, sealed,
             attempts, next_attempt_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?7)",
            )?
            .execute(params![
                id,
                sealed.contact,
                sealed.message,
                envelope.relay_url,
                envelope.send_id,
                envelope.sealed,
                sealed.now
            ])?;
        items.push(OutboxItem {
            id,
            contact: sealed.contact,
            message: sealed.message,
            relay_url: envelope.relay_url.clone(),
            send_id: envelope.send_id,
            sealed: envelope.sealed.clone(),
            attempts: 0,
            next_attempt_at: sealed.now,
            created_at: sealed.now,
        });
    }
    Ok(items)
}

/// [`StoreError::Conflict`] if the peer already used `seq` in this chat (a replay under a new
/// envelope, or a peer that reuses numbers): the second message is not stored.
fn refuse_reused_seq(
    transaction: &Connection,
    contact: ContactId,
    seq: ConversationSeq,
) -> Result<(), StoreError> {
    let reused = transaction
        .prepare_cached(
            "SELECT 1 FROM messages WHERE contact_id = ?1 AND direction = 0 AND seq = ?2",
        )?
        .query_row(params![contact, seq.to_i64()], |_| Ok(()))
        .optional()?
        .is_some();
    if reused {
        return Err(StoreError::Conflict {
            what: "the peer reused a sequence number",
        });
    }
    Ok(())
}

/// Inserts an incoming text message (inside [`receive_in`]'s savepoint).
fn store_message_in(
    transaction: &Connection,
    received: &Received,
    message_id: MessageId,
    seq: ConversationSeq,
    body: &str,
    sent_at: UnixMillis,
) -> Result<Message, StoreError> {
    refuse_reused_seq(transaction, received.contact, seq)?;
    let seq = &seq;
    let sent_at = &sent_at;
    transaction
        .prepare_cached(
            "INSERT INTO messages (id, contact_id, direction, seq, body, sent_at,
                 received_at, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            message_id,
            received.contact,
            Direction::Incoming.to_i64(),
            seq.to_i64(),
            body,
            sent_at,
            received.received_at,
            MessageState::Received.to_i64()
        ])?;
    super::search::index_message_in(transaction, message_id, received.received_at, body)?;
    transaction
        .prepare_cached(
            "UPDATE contacts SET last_seq = max(last_seq, ?2),
                     unread_count = unread_count + 1, last_activity_at = ?3 WHERE id = ?1",
        )?
        .execute(params![
            received.contact,
            seq.to_i64(),
            received.received_at
        ])?;
    Ok(Message {
        id: message_id,
        contact: received.contact,
        direction: Direction::Incoming,
        seq: *seq,
        body: body.to_owned(),
        sent_at: *sent_at,
        received_at: Some(received.received_at),
        state: MessageState::Received,
        timer: None,
        expires_at: None,
        timer_change: None,
    })
}

/// Inserts a peer's timer change as a system line (read at once: it never counts as unread)
/// and applies it to the chat if it wins.
fn store_timer_change_in(
    transaction: &Connection,
    received: &Received,
    message_id: MessageId,
    seq: ConversationSeq,
    timer: Option<DisappearingTimer>,
    sent_at: UnixMillis,
) -> Result<Message, StoreError> {
    refuse_reused_seq(transaction, received.contact, seq)?;
    transaction
        .prepare_cached(
            "INSERT INTO messages (id, contact_id, direction, seq, body, sent_at,
                 received_at, state, timer_change) VALUES (?1, ?2, 0, ?3, '', ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            message_id,
            received.contact,
            seq.to_i64(),
            sent_at,
            received.received_at,
            MessageState::Read.to_i64(),
            DisappearingTimer::setting_seconds(timer)
        ])?;
    apply_timer_change_in(transaction, received.contact, seq, timer)?;
    transaction
        .prepare_cached(
            "UPDATE contacts SET last_seq = max(last_seq, ?2), last_activity_at = ?3 WHERE id = ?1",
        )?
        .execute(params![
            received.contact,
            seq.to_i64(),
            received.received_at
        ])?;
    Ok(Message {
        id: message_id,
        contact: received.contact,
        direction: Direction::Incoming,
        seq,
        body: String::new(),
        sent_at,
        received_at: Some(received.received_at),
        state: MessageState::Read,
        timer: None,
        expires_at: None,
        timer_change: Some(timer),
    })
}

/// Applies riding receipts of both kinds; returns our messages whose state changed.
fn apply_riding_receipts_in(
    transaction: &Connection,
    contact: ContactId,
    receipts: &[(ReceiptKind, ConversationSeq)],
) -> Result<Vec<MessageId>, StoreError> {
    let mut updated = Vec::new();
    for kind in [ReceiptKind::Delivered, ReceiptKind::Read] {
        let seqs: Vec<ConversationSeq> = receipts
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, seq)| *seq)
            .collect();
        if !seqs.is_empty() {
            updated.extend(apply_receipt_in(transaction, contact, kind, &seqs)?);
        }
    }
    Ok(updated)
}

/// Moves our outgoing messages `seqs` forward to the receipt's state; returns those that changed.
fn apply_receipt_in(
    transaction: &Connection,
    contact: ContactId,
    kind: ReceiptKind,
    seqs: &[ConversationSeq],
) -> Result<Vec<MessageId>, StoreError> {
    let received_contact = contact;
    let new_state = match kind {
        ReceiptKind::Delivered => MessageState::Delivered,
        ReceiptKind::Read => MessageState::Read,
    };
    // Only forward: queued/on-relay/failed → delivered → read.
    let allowed_from: &str = match kind {
        ReceiptKind::Delivered => "(0, 1, 4)",
        ReceiptKind::Read => "(0, 1, 2, 4)",
    };
    let mut updated = Vec::new();
    let mut statement = transaction.prepare(&format!(
        "UPDATE messages SET state = ?3 WHERE contact_id = ?1 AND direction = 1
                 AND seq = ?2 AND state IN {allowed_from} RETURNING id"
    ))?;
    for seq in seqs {
        let changed: Option<MessageId> = statement
            .query_row(
                params![received_contact, seq.to_i64(), new_state.to_i64()],
                |row| row.get(0),
            )
            .optional()?;
        updated.extend(changed);
    }
    drop(statement);
    Ok(updated)
}

/// The body of [`Store::commit_received`], inside an open transaction or savepoint.
fn receive_in(transaction: &Connection, received: &Received) -> Result<ReceiveOutcome, StoreError> {
    let message_id = MessageId::generate()?;
    load_contact(transaction, received.contact)?;
    let seen = transaction
        .prepare_cached("SELECT 1 FROM seen_envelopes WHERE contact_id = ?1 AND envelope_id = ?2")?
        .query_row(params![received.contact, received.envelope_id], |_| Ok(()))
        .optional()?
        .is_some();
    if seen {
        return Ok(ReceiveOutcome::Duplicate);
    }
    let outcome = match &received.content {
        ReceivedContent::Message { seq, body, sent_at } => ReceiveOutcome::Stored(
            store_message_in(transaction, received, message_id, *seq, body, *sent_at)?,
        ),
        ReceivedContent::MessageWithReceipts {
            seq,
            body,
            sent_at,
            receipts,
        } => {
            let message =
                store_message_in(transaction, received, message_id, *seq, body, *sent_at)?;
            let mut updated = Vec::new();
            for kind in [ReceiptKind::Delivered, ReceiptKind::Read] {
                let seqs: Vec<ConversationSeq> = receipts
                    .iter()
                    .filter(|(k, _)| *k == kind)
                    .map(|(_, seq)| *seq)
                    .collect();
                if !seqs.is_empty() {
                    updated.extend(apply_receipt_in(
                        transaction,
                        received.contact,
                        kind,
                        &seqs,
                    )?);
                }
            }
            if updated.is_empty() {
                ReceiveOutcome::Stored(message)
            } else {
                ReceiveOutcome::StoredWithReceipts { message, updated }
            }
        }
        ReceivedContent::TimedMessage {
            seq,
            body,
            sent_at,
            timer,
            receipts,
        } => {
            let mut message =
                store_message_in(transaction, received, message_id, *seq, body, *sent_at)?;
            message.expires_at = Some(set_message_timer_in(
                transaction,
                message_id,
                *timer,
                received.received_at,
            )?);
            message.timer = Some(*timer);
            let updated = apply_riding_receipts_in(transaction, received.contact, receipts)?;
            if updated.is_empty() {
                ReceiveOutcome::Stored(message)
            } else {
                ReceiveOutcome::StoredWithReceipts { message, updated }
            }
        }
        ReceivedContent::TimerChange {
            seq,
            timer,
            sent_at,
        } => ReceiveOutcome::Stored(store_timer_change_in(
            transaction,
            received,
            message_id,
            *seq,
            *timer,
            *sent_at,
        )?),
        ReceivedContent::Receipt { kind, seqs } => ReceiveOutcome::ReceiptApplied {
            updated: apply_receipt_in(transaction, received.contact, *kind, seqs)?,
        },
        ReceivedContent::SessionOnly => ReceiveOutcome::SessionUpdated,
        ReceivedContent::Attachment {
            seq,
            body,
            sent_at,
            attachment,
            timer,
        } => {
            let mut message =
                store_message_in(transaction, received, message_id, *seq, body, *sent_at)?;
            if let Some(timer) = timer {
                message.expires_at = Some(set_message_timer_in(
                    transaction,
                    message_id,
                    *timer,
                    received.received_at,
                )?);
                message.timer = Some(*timer);
            }
            let mut row = (*attachment.0).clone();
            row.chat = super::AttachmentChat::Contact(received.contact);
            row.message = Some(message_id);
            super::attachments::insert_attachment_on(transaction, &row)?;
            ReceiveOutcome::Stored(message)
        }
    };
    write_session(
        transaction,
        received.contact,
        &received.session_state,
        received.received_at,
    )?;
    transaction
        .prepare_cached(
            "INSERT INTO seen_envelopes (contact_id, envelope_id, seen_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![
            received.contact,
            received.envelope_id,
            received.received_at
        ])?;
    Ok(outcome)
}

/// The body of [`Store::mark_outbox_sent`]: `None` if the item is not in the outbox, else the
/// message whose state changed (if any).
fn mark_sent_in(
    transaction: &Connection,
    id: OutboxItemId,
) -> Result<Option<Option<MessageId>>, StoreError> {
    let Some(message): Option<Option<MessageId>> = transaction
        .prepare_cached("SELECT message_id FROM outbox WHERE id = ?1")?
        .query_row(params![id], |row| row.get(0))
        .optional()?
    else {
        return Ok(None);
    };
    transaction
        .prepare_cached("DELETE FROM outbox WHERE id = ?1")?
        .execute(params![id])?;
    let mut changed = None;
    if let Some(message) = message {
        let updated = transaction
            .prepare_cached("UPDATE messages SET state = ?2 WHERE id = ?1 AND state IN (0, 4)")?
            .execute(params![message, MessageState::OnRelay.to_i64()])?;
        if updated > 0 {
            changed = Some(message);
        }
    }
    Ok(Some(changed))
}

/// The body of [`Store::insert_outgoing_message`], inside an open transaction.
fn insert_outgoing_in(
    transaction: &Connection,
    contact: ContactId,
    body: &str,
    now: UnixMillis,
) -> Result<Message, StoreError> {
    insert_outgoing_content_in(
        transaction,
        contact,
        OutgoingContent::Text { body, timer: None },
        now,
    )
}

/// Stores an outgoing text or timer change (see [`OutgoingContent`]), inside an open
/// transaction.
fn insert_outgoing_content_in(
    transaction: &Connection,
    contact: ContactId,
    content: OutgoingContent<'_>,
    now: UnixMillis,
) -> Result<Message, StoreError> {
    let body = match content {
        OutgoingContent::Text { body, .. } => body,
        OutgoingContent::TimerChange(_) => "",
    };
    let id = MessageId::generate()?;
    let stored_contact = load_contact(transaction, contact)?;
    if let Some(reason) = stored_contact.sending_blocked_reason() {
        return Err(StoreError::SendingBlocked { reason });
    }
    let seq = last_seq(transaction, contact)?
        .checked_add(1)
        .and_then(ConversationSeq::new)
        .ok_or(StoreError::Conflict {
            what: "the conversation's sequence numbers are exhausted",
        })?;
    transaction.execute(
        "INSERT INTO messages (id, contact_id, direction, seq, body, sent_at, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id,
            contact,
            Direction::Outgoing.to_i64(),
            seq.to_i64(),
            body,
            now,
            MessageState::Queued.to_i64()
        ],
    )?;
    let mut message = Message {
        id,
        contact,
        direction: Direction::Outgoing,
        seq,
        body: body.to_owned(),
        sent_at: now,
        received_at: None,
        state: MessageState::Queued,
        timer: None,
        expires_at: None,
        timer_change: None,
    };
    match content {
        OutgoingContent::Text { timer, .. } => {
            super::search::index_message_in(transaction, id, now, body)?;
            if let Some(timer) = timer {
                message.expires_at = Some(set_message_timer_in(transaction, id, timer, now)?);
                message.timer = Some(timer);
            }
        }
        OutgoingContent::TimerChange(timer) => {
            set_timer_change_in(transaction, id, timer)?;
            apply_timer_change_in(transaction, contact, seq, timer)?;
            message.timer_change = Some(timer);
        }
    }
    transaction.execute(
        "UPDATE contacts SET last_seq = ?2, last_activity_at = ?3 WHERE id = ?1",
        params![contact, seq.to_i64(), now],
    )?;
    Ok(message)
}

impl Store {
    /// Stores a new outgoing message as `Queued` (unsealed) with the next sequence number.
    ///
    /// Refused with [`StoreError::SendingBlocked`] while the contact has a pending key change
    /// (T8) or is blocked.
    pub fn insert_outgoing_message(
        &mut self,
        contact: ContactId,
        body: &str,
        now: UnixMillis,
    ) -> Result<Message, StoreError> {
        let transaction = self.write()?;
        let message = insert_outgoing_in(&transaction, contact, body, now)?;
        transaction.commit()?;
        Ok(message)
    }

    /// [`Store::insert_outgoing_message`] for any [`OutgoingContent`] (a timed text, a timer
    /// change), unsealed.
    pub fn insert_outgoing_content(
        &mut self,
        contact: ContactId,
        content: OutgoingContent<'_>,
        now: UnixMillis,
    ) -> Result<Message, StoreError> {
        let transaction = self.write()?;
        let message = insert_outgoing_content_in(&transaction, contact, content, now)?;
        transaction.commit()?;
        Ok(message)
    }

    /// Steps 1 and 2 of sending in ONE transaction (one fsync on the send path): stores a new
    /// outgoing message with the next sequence number, calls `seal` with the store (which sees
    /// the uncommitted message) and the stored message, and commits what it returns exactly as
    /// [`Store::commit_sealed`] does. Any error — from the store or from `seal` — rolls the whole
    /// thing back: no message, no session step, no outbox row.
    ///
    /// Refused like [`Store::insert_outgoing_message`] while sending to the contact is blocked.
    pub fn insert_and_seal_outgoing<E, F>(
        &mut self,
        contact: ContactId,
        body: &str,
        now: UnixMillis,
        seal: F,
    ) -> Result<(Message, Vec<OutboxItem>), E>
    where
        E: From<StoreError>,
        F: FnOnce(&Self, &Message) -> Result<SealedOutgoing, E>,
    {
        self.insert_and_seal_outgoing_content(
            contact,
            OutgoingContent::Text { body, timer: None },
            now,
            seal,
        )
    }

    /// [`Store::insert_and_seal_outgoing`] for any [`OutgoingContent`]: a text with its
    /// disappearing timer, or a change of the chat's timer (stored as a system line and applied
    /// to the chat in the same transaction).
    pub fn insert_and_seal_outgoing_content<E, F>(
        &mut self,
        contact: ContactId,
        content: OutgoingContent<'_>,
        now: UnixMillis,
        seal: F,
    ) -> Result<(Message, Vec<OutboxItem>), E>
    where
        E: From<StoreError>,
        F: FnOnce(&Self, &Message) -> Result<SealedOutgoing, E>,
    {
        self.connection
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(StoreError::from)?;
        let result = (|| {
            let message = insert_outgoing_content_in(&self.connection, contact, content, now)?;
            let sealed = seal(self, &message)?;
            let items = seal_in(&self.connection, &sealed)?;
            self.connection
                .execute_batch("COMMIT")
                .map_err(StoreError::from)?;
            Ok((message, items))
        })();
        if result.is_err() && !self.connection.is_autocommit() {
            let _ = self.connection.execute_batch("ROLLBACK");
        }
        result
    }

    /// Outgoing messages stored but not sealed yet (after a crash between steps 1 and 2), in
    /// conversation order.
    pub fn messages_awaiting_seal(&self) -> Result<Vec<Message>, StoreError> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE direction = 1 AND state = 0
             AND sealed_at IS NULL ORDER BY contact_id, seq"
        ))?;
        let rows = statement.query_map([], message_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Seal once (`docs/engine.md` § Sending): writes the advanced session state and every relay's
    /// sealed envelope in ONE transaction, and marks the message sealed.
    ///
    /// Refused, with nothing written, when the message is already sealed or not a queued
    /// outgoing message of this contact ([`StoreError::Conflict`]), when sending is blocked
    /// ([`StoreError::SendingBlocked`]), or when there is no envelope.
    pub fn commit_sealed(
        &mut self,
        sealed: &SealedOutgoing,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let transaction = self.write()?;
        let items = seal_in(&transaction, sealed)?;
        transaction.commit()?;
        Ok(items)
    }

    /// [`Store::commit_sealed`] for many plaintexts in ONE transaction (one fsync), for draining a
    /// backlog. Each item runs in its own savepoint: an item refused for its own reasons
    /// (conflict, blocked, not found, invalid) is rolled back alone and reported in its slot; a
    /// storage failure (disk full, read-only, …) rolls back the whole batch and is returned as the
    /// outer error.
    pub fn commit_sealed_batch(
        &mut self,
        batch: &[SealedOutgoing],
    ) -> Result<Vec<Result<Vec<OutboxItem>, StoreError>>, StoreError> {
        self.write_batch(batch, seal_in)
    }

    /// Outbox items due at `now`, oldest sealed first, skipping contacts whose sending is blocked.
    pub fn due_outbox(&self, now: UnixMillis, limit: u32) -> Result<Vec<OutboxItem>, StoreError> {
        let columns = OUTBOX_COLUMNS
            .split(", ")
            .map(|column| format!("o.{}", column.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let mut statement = self.connection.prepare(&format!(
            "SELECT {columns} FROM outbox o JOIN contacts c ON c.id = o.contact_id
             WHERE o.next_attempt_at <= ?1 AND c.pending_identity_key IS NULL AND c.blocked = 0
             ORDER BY o.rowid LIMIT ?2"
        ))?;
        let rows = statement.query_map(params![now, i64::from(limit)], outbox_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Every outbox item, oldest first (for inspection and tests).
    pub fn outbox(&self) -> Result<Vec<OutboxItem>, StoreError> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY rowid"
        ))?;
        let rows = statement.query_map([], outbox_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The earliest `next_attempt_at` in the outbox, for the engine's timer.
    pub fn next_outbox_attempt_at(&self) -> Result<Option<UnixMillis>, StoreError> {
        Ok(self
            .connection
            .query_row("SELECT min(next_attempt_at) FROM outbox", [], |row| {
                row.get(0)
            })?)
    }

    /// A relay answered OK: the item leaves the outbox and its message becomes `OnRelay` (if it
    /// was still `Queued`). Returns the message whose state changed.
    pub fn mark_outbox_sent(&mut self, id: OutboxItemId) -> Result<Option<MessageId>, StoreError> {
        let transaction = self.write()?;
        let changed = mark_sent_in(&transaction, id)?.ok_or(StoreError::NotFound {
            what: Missing::OutboxItem,
        })?;
        transaction.commit()?;
        Ok(changed)
    }

    /// [`Store::mark_outbox_sent`] for many items in ONE transaction (one fsync), for a window of
    /// pipelined SENDs. Items no longer in the outbox are skipped. Returns the messages whose
    /// state changed to `OnRelay`, in the order given.
    pub fn mark_outbox_sent_batch(
        &mut self,
        ids: &[OutboxItemId],
    ) -> Result<Vec<MessageId>, StoreError> {
        let transaction = self.write()?;
        let mut changed = Vec::new();
        for id in ids {
            if let Some(Some(message)) = mark_sent_in(&transaction, *id)? {
                changed.push(message);
            }
        }
        transaction.commit()?;
        Ok(changed)
    }

    /// A SEND failed: count the attempt and wait until `next_attempt_at`. Returns the attempts.
    pub fn reschedule_outbox(
        &mut self,
        id: OutboxItemId,
        next_attempt_at: UnixMillis,
    ) -> Result<u32, StoreError> {
        let transaction = self.write()?;
        let attempts: Option<u32> = transaction
            .query_row(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2 WHERE id = ?1
                 RETURNING attempts",
                params![id, next_attempt_at],
                |row| row.get(0),
            )
            .optional()?;
        let attempts = attempts.ok_or(StoreError::NotFound {
            what: Missing::OutboxItem,
        })?;
        transaction.commit()?;
        Ok(attempts)
    }

    /// Stop retrying this item. If its message reached no relay and has no other item left, the
    /// message becomes `Failed`, which is returned.
    pub fn give_up_outbox(&mut self, id: OutboxItemId) -> Result<Option<MessageId>, StoreError> {
        let transaction = self.write()?;
        let message: Option<MessageId> = transaction
            .query_row(
                "SELECT message_id FROM outbox WHERE id = ?1",
                params![id],
                |row| row.get(0),
            )
            .optional()?
            .ok_or(StoreError::NotFound {
                what: Missing::OutboxItem,
            })?;
        // A group copy that reached no relay is failed for its member (before the DELETE, whose
        // trigger moves only queued copies to on relay; `store/groups.rs`).
        transaction.execute(
            "UPDATE group_copies SET state = 4 WHERE state = 0 AND (message_id, member_key) =
             (SELECT o.group_message_id, c.identity_key FROM outbox o JOIN contacts c
              ON c.id = o.contact_id WHERE o.id = ?1 AND NOT EXISTS (SELECT 1 FROM outbox r
              WHERE r.group_message_id = o.group_message_id AND r.contact_id = o.contact_id
              AND r.id != o.id))",
            params![id],
        )?;
        transaction.execute("DELETE FROM outbox WHERE id = ?1", params![id])?;
        let mut failed = None;
        if let Some(message) = message {
            let updated = transaction.execute(
                "UPDATE messages SET state = ?2 WHERE id = ?1 AND state = 0
                 AND NOT EXISTS (SELECT 1 FROM outbox WHERE message_id = ?1)",
                params![message, MessageState::Failed.to_i64()],
            )?;
            if updated > 0 {
                failed = Some(message);
            }
        }
        transaction.commit()?;
        Ok(failed)
    }

    /// The highest sequence number of the conversation with `contact`, either direction (0 if
    /// none): the next outgoing message gets the one after it.
    pub fn conversation_last_seq(&self, contact: ContactId) -> Result<u64, StoreError> {
        last_seq(&self.connection, contact)
    }

    /// Whether this envelope id was already committed for this contact (a cheap early check; the
    /// authoritative one is inside [`Store::commit_received`]).
    pub fn is_envelope_seen(
        &self,
        contact: ContactId,
        envelope_id: EnvelopeId,
    ) -> Result<bool, StoreError> {
        Ok(self
            .connection
            .query_row(
                "SELECT 1 FROM seen_envelopes WHERE contact_id = ?1 AND envelope_id = ?2",
                params![contact, envelope_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Stores an opened envelope: its content, the new session state and the dedupe row, in one
    /// transaction. A known envelope id gives [`ReceiveOutcome::Duplicate`] and writes nothing.
    ///
    /// A message whose sequence number this peer already used is refused with
    /// [`StoreError::Conflict`] and nothing is written (the session state stays as it was).
    pub fn commit_received(&mut self, received: &Received) -> Result<ReceiveOutcome, StoreError> {
        let transaction = self.write()?;
        let outcome = receive_in(&transaction, received)?;
        if outcome != ReceiveOutcome::Duplicate {
            transaction.commit()?;
        }
        Ok(outcome)
    }

    /// [`Store::commit_received`] for many opened envelopes in ONE transaction (one fsync), for
    /// draining a mailbox backlog; ACK them all after it returns. Each item runs in its own
    /// savepoint: an item refused for its own reasons (e.g. a reused sequence number) is rolled
    /// back alone and reported in its slot; a storage failure rolls back the whole batch and is
    /// returned as the outer error. Duplicates inside the batch are detected too.
    pub fn commit_received_batch(
        &mut self,
        batch: &[Received],
    ) -> Result<Vec<Result<ReceiveOutcome, StoreError>>, StoreError> {
        self.write_batch(batch, receive_in)
    }

    /// Forgets dedupe rows older than `older_than` (keep them longer than any relay's TTL).
    pub fn prune_seen_envelopes(&mut self, older_than: UnixMillis) -> Result<usize, StoreError> {
        let transaction = self.write()?;
        let removed = transaction.execute(
            "DELETE FROM seen_envelopes WHERE seen_at < ?1",
            params![older_than],
        )?;
        transaction.commit()?;
        Ok(removed)
    }

    /// One message.
    pub fn message(&self, id: MessageId) -> Result<Option<Message>, StoreError> {
        Ok(self
            .connection
            .query_row(
                &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1"),
                params![id],
                message_from_row,
            )
            .optional()?)
    }

    /// A page of history: up to `limit` messages strictly before `before` (or the newest when
    /// `None`), returned oldest first. The next older page uses the first message's
    /// [`Message::position`] as `before`; an empty or short page means the start was reached
    /// (for `limit > 0`; a `limit` of 0 always returns an empty page).
    pub fn messages_page(
        &self,
        contact: ContactId,
        before: Option<MessagePosition>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let (seq, direction) = match before {
            Some(position) => (position.seq.to_i64(), position.direction.to_i64()),
            // Past every stored position.
            None => (i64::MAX, 2),
        };
        let mut statement = self.connection.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE contact_id = ?1
             AND (seq < ?2 OR (seq = ?2 AND direction < ?3))
             ORDER BY seq DESC, direction DESC LIMIT ?4"
        ))?;
        let rows = statement.query_map(
            params![contact, seq, direction, i64::from(limit)],
            message_from_row,
        )?;
        let mut page = rows.collect::<Result<Vec<_>, _>>()?;
        page.reverse();
        Ok(page)
    }

    /// Marks incoming messages up to and including `up_to` read. Returns the sequence numbers
    /// newly read (for a read receipt, if the user enabled them).
    pub fn mark_read(
        &mut self,
        contact: ContactId,
        up_to: MessagePosition,
    ) -> Result<Vec<ConversationSeq>, StoreError> {
        let transaction = self.write()?;
        load_contact(&transaction, contact)?;
        let mut newly_read = Vec::new();
        {
            let mut statement = transaction.prepare(
                "UPDATE messages SET state = 3 WHERE contact_id = ?1 AND direction = 0 AND state = 5
                 AND (seq < ?2 OR (seq = ?2 AND direction <= ?3)) RETURNING seq",
            )?;
            let rows = statement.query_map(
                params![contact, up_to.seq.to_i64(), up_to.direction.to_i64()],
                |row| row.get::<_, ConversationSeq>(0),
            )?;
            for row in rows {
                newly_read.push(row?);
            }
        }
        transaction.execute(
            "UPDATE contacts SET unread_count = (SELECT count(*) FROM messages
             WHERE contact_id = ?1 AND direction = 0 AND state = 5) WHERE id = ?1",
            params![contact],
        )?;
        transaction.commit()?;
        newly_read.sort();
        Ok(newly_read)
    }

    /// The chat list: every contact with its newest message and unread count, most recent first.
    pub fn chat_list(&self) -> Result<Vec<ChatSummary>, StoreError> {
        let mut contacts = self.connection.prepare(&format!(
            "SELECT {CONTACT_COLUMNS}, unread_count FROM contacts
             ORDER BY last_activity_at DESC, id"
        ))?;
        let rows = contacts.query_map([], |row| {
            Ok((contact_from_row(row)?, row.get::<_, u32>(9)?))
        })?;
        // The newest text: a timer change's system line has no text to show in the list.
        let mut last = self.connection.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE contact_id = ?1
             AND timer_change IS NULL ORDER BY seq DESC, direction DESC LIMIT 1"
        ))?;
        let mut list = Vec::new();
        for row in rows {
            let (contact, unread_count) = row?;
            let last_message = last
                .query_row(params![contact.id], message_from_row)
                .optional()?;
            let timer = super::expiry::chat_timer_in(&self.connection, contact.id)?.timer;
            list.push(ChatSummary {
                contact,
                last_message,
                unread_count,
                timer,
            });
        }
        Ok(list)
    }
}
