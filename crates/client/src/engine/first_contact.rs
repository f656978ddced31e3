//! Initial messages outside a contact's session: the invitee's `Hello` on an invite's mailbox,
//! invite misuse, and a key change (T8) (`docs/engine.md` § Making a contact, § Key change).

use std::sync::Arc;

use sealpost_crypto::{OneTimePrekeyPair, OpenedEnvelope, SessionMessage};

use super::envelope::{refuse, responder_session};
use super::error::EngineError;
use super::secure::{PeerAddressParts, queue_secures, store_peer_address_with_new_sender_key};
use super::state::{Inner, invite_name, lock};
use super::views::*;
use crate::content::{Body, CONTENT_VERSION, Content};
use crate::store::{
    ContactId, IdentityKeyBytes, KeyChangeOutcome, NewContact, OwnMailbox, Received,
    ReceivedContent, SessionStateBytes, SignedPrekeyBytes, StoreError, UnixMillis,
};

/// The invite the mailbox was made for, if any.
fn mailbox_invite(
    inner: &Inner,
    mailbox: &OwnMailbox,
) -> Result<Option<crate::store::InviteRecord>, EngineError> {
    let Some(invite_id) = mailbox.invite else {
        return Ok(None);
    };
    Ok(lock(&inner.store).invite(invite_id)?)
}

/// What became of an initial message on an invite's mailbox.
pub(super) enum FirstMessage {
    /// Decided here: whether to ACK.
    Decided(bool),
    /// The invite was consumed, by this very sender, after the batch looked the mailbox up (its
    /// `Hello` over another relay won the race): the mailbox is now this contact's, and the
    /// envelope is received as the contact's, exactly as if it had come a moment later.
    Contact(ContactId),
}

/// An initial message on an invite's mailbox: the invitee's `Hello` (`docs/engine.md` § Making a
/// contact; an invite is single-use, § Invites).
pub(super) fn accept_first_message(
    inner: &Arc<Inner>,
    mailbox: &OwnMailbox,
    opened: &OpenedEnvelope,
) -> Result<FirstMessage, EngineError> {
    let decided = |ack: Result<bool, EngineError>| ack.map(FirstMessage::Decided);
    let Some(record) = mailbox_invite(inner, mailbox)? else {
        return decided(refuse(inner, "a mailbox with neither contact nor invite"));
    };
    let now = UnixMillis::now();
    // Decided on the record alone: a closed invite's one-time prekey secret is deleted.
    let secret = match &record.one_time_prekey_secret {
        Some(secret) if record.status(now) == crate::store::InviteStatus::Open => secret,
        _ => return closed_invite_tried(inner, &record, opened),
    };
    let one_time = OneTimePrekeyPair::from_secret_bytes(secret.expose_secret())?;
    let (session, content) = match responder_session(inner, opened, Some(&one_time)) {
        Ok(pair) => pair,
        Err(reason) => return decided(refuse(inner, reason)),
    };
    let Body::Hello {
        display_name,
        reply,
        sender_keys,
        signed_prekey,
    } = content.body
    else {
        return decided(refuse(inner, "the first message is not a Hello"));
    };
    if reply.is_empty() {
        return decided(refuse(inner, "a Hello without a reply address"));
    }
    let identity_bytes = IdentityKeyBytes::new(opened.sender().to_bytes().to_vec());
    // An introduction invite (`docs/engine.md` § Groups) opens only for the member it was made for.
    if super::groups::introduction_for_someone_else(inner, &record, &identity_bytes)? {
        return decided(refuse(
            inner,
            "an introduction invite used by someone it was not made for",
        ));
    }
    // The contact (or the existing one it joins, `docs/engine.md` § Key change), the consumed invite, the peer's
    // addresses, the new session with its dedupe row, and our sealed Welcome: ONE transaction,
    // so a crash leaves either all of it or nothing (the relay then delivers the Hello again).
    let accepted = lock(&inner.store).transaction(|store| -> Result<ContactId, FirstContact> {
        let contact = match store.contact_by_identity_key(&identity_bytes)? {
            Some(existing) => existing.id,
            None => {
                // The accepter chose this name: no bidirectional control may disguise it (names.rs).
                let name = crate::names::neutralise_bidi(&display_name);
                let name = if name.is_empty() {
                    "Contact".to_owned()
                } else {
                    name
                };
                store
                    .insert_contact(&NewContact {
                        display_name: name,
                        identity_key: identity_bytes,
                        created_at: now,
                    })?
                    .id
            }
        };
        match store.consume_invite(record.id, contact, now) {
            Ok(()) => {}
            Err(StoreError::InviteUnavailable { .. }) => return Err(FirstContact::InviteUsed),
            Err(other) => return Err(other.into()),
        }
        if !signed_prekey.is_empty() {
            store.set_peer_signed_prekey(contact, &SignedPrekeyBytes::new(signed_prekey))?;
        }
        let mut welcome_keys = Vec::new();
        for address in &reply {
            let parts = PeerAddressParts {
                url: &address.url,
                send_id: &address.send_id,
                send_secret: &address.send_secret,
                sealing_public_key: &address.sealing_public_key,
            };
            welcome_keys.push(store_peer_address_with_new_sender_key(
                store, contact, &parts, now,
            )?);
        }
        store.commit_received(&Received {
            contact,
            envelope_id: opened.envelope_id(),
            session_state: SessionStateBytes::new(session.to_bytes()?.to_vec()),
            content: ReceivedContent::SessionOnly,
            received_at: now,
        })?;
        let our_name = store.profile()?.map(|p| p.display_name).unwrap_or_default();
        let welcome = Content {
            v: CONTENT_VERSION,
            seq: 0,
            sent_at_ms: u64::try_from(now.0).unwrap_or(0),
            body: Body::Welcome {
                display_name: invite_name(&our_name),
                sender_keys: welcome_keys,
            },
            receipts: Vec::new(),
        };
        inner.seal_and_commit(store, contact, None, &welcome)?;
        // The SECUREs binding our mailboxes to the accepter's sender keys are queued in the same
        // transaction: a crash cannot leave the contact made and its mailboxes never secured.
        queue_secures(store, contact, &sender_keys);
        Ok(contact)
    });
    let contact = match accepted {
        Ok(contact) => contact,
        Err(FirstContact::InviteUsed) => {
            // Re-read: the record above predates the transaction that consumed the invite.
            let Some(record) = mailbox_invite(inner, mailbox)? else {
                return decided(refuse(inner, "the invite was deleted meanwhile"));
            };
            return closed_invite_tried(inner, &record, opened);
        }
        Err(FirstContact::Engine(error)) => return Err(error),
    };
    // A group introduction completed (`docs/engine.md` § Groups): our texts it missed go now.
    if let Err(error) = super::groups::send_missed_texts(inner) {
        tracing::warn!(%error, "missed group texts not sealed");
    }
    inner.secure_wake.notify_one();
    inner.outbox_wake.notify_one();
    inner.emit(EngineEvent::ContactUpdated {
        contact_id: contact.to_string(),
    });
    Ok(FirstMessage::Decided(true))
}

/// A first message on the mailbox of an invite that is no longer open. A copy of the very `Hello`
/// that consumed it (the accepter sends it once per relay of the invite, and the copies race
/// on separate relay connections, `docs/engine.md` § Misuse versus key change) is a duplicate:
/// ACKed, nothing shown, no warning. Anything else is an invite misuse. Returns whether to ACK.
///
/// A first message from the very contact that consumed the invite, but not yet seen, went
/// through the batch's first-message path only because the consuming commit came after the
/// batch looked the mailbox up (two relays' copies of one `Hello` race on two inbound tasks):
/// it is handed back as the contact's ([`FirstMessage::Contact`]), as it would have been a
/// moment later.
fn closed_invite_tried(
    inner: &Inner,
    record: &crate::store::InviteRecord,
    opened: &OpenedEnvelope,
) -> Result<FirstMessage, EngineError> {
    if let Some(contact) = record.consumed_by {
        let store = lock(&inner.store);
        let same_sender = store.contact(contact)?.is_some_and(|row| {
            row.identity_key.as_bytes() == opened.sender().to_bytes().as_slice()
        });
        let envelope_id = opened.envelope_id();
        if same_sender && store.is_envelope_seen(contact, envelope_id)? {
            return Ok(FirstMessage::Decided(true));
        }
        if same_sender {
            return Ok(FirstMessage::Contact(contact));
        }
    }
    inner.emit(EngineEvent::InviteMisuse {
        invite_id: record.id.to_string(),
    });
    refuse(inner, "a closed invite was tried").map(FirstMessage::Decided)
}

/// Why accepting a first message rolled back.
enum FirstContact {
    /// The invite was consumed (or closed) meanwhile: a misuse.
    InviteUsed,
    /// Anything else.
    Engine(EngineError),
}

impl From<StoreError> for FirstContact {
    fn from(error: StoreError) -> Self {
        Self::Engine(error.into())
    }
}

impl From<EngineError> for FirstContact {
    fn from(error: EngineError) -> Self {
        Self::Engine(error)
    }
}

impl From<sealpost_crypto::CryptoError> for FirstContact {
    fn from(error: sealpost_crypto::CryptoError) -> Self {
        Self::Engine(error.into())
    }
}

/// An envelope whose sealed sender is not the contact of the mailbox it came on: a reuse of a
/// consumed invite (misuse), another identity key (T8), or a reflection or forgery (T1).
/// Returns whether to ACK.
///
/// An initial message on a mailbox that was made for an invite is ALWAYS an invite misuse,
/// whether or not it names the invite's one-time prekey: that mailbox's address was in the
/// invite text, so anyone who saw the text can write to it (until SECURE, or through a hostile
/// relay), and such a message must not be able to raise a key change and block sending to the
/// real contact. This needs no secret (the one-time prekey secret is deleted on consumption).
/// A key change can only arrive on a mailbox whose address travelled inside a sealed `Hello`
/// (`docs/engine.md` § Misuse versus key change).
pub(super) fn peer_mismatch(
    inner: &Arc<Inner>,
    contact: ContactId,
    mailbox: &OwnMailbox,
    opened: &OpenedEnvelope,
) -> Result<bool, EngineError> {
    if let SessionMessage::Initial(_) = opened.payload() {
        if let Some(invite) = mailbox.invite {
            inner.emit(EngineEvent::InviteMisuse {
                invite_id: invite.to_string(),
            });
            return refuse(inner, "an initial message on a used invite's mailbox");
        }
        return key_change(inner, contact, opened);
    }
    // T1 reflection or forgery: the sealed sender is not this mailbox's peer.
    refuse(inner, "the sealed sender is not this mailbox's peer")
}

/// T8: an initial message with another identity key on an existing contact's mailbox (one
/// whose address travelled only inside a sealed `Hello`, see [`peer_mismatch`]). It is held:
/// the contact is marked, sending is blocked, and the new session waits for the user, stored
/// with the held key in one write.
fn key_change(
    inner: &Arc<Inner>,
    contact: ContactId,
    opened: &OpenedEnvelope,
) -> Result<bool, EngineError> {
    let (session, _content) = match responder_session(inner, opened, None) {
        Ok(pair) => pair,
        Err(reason) => return refuse(inner, format!("key change did not open: {reason}")),
    };
    let new_key = IdentityKeyBytes::new(opened.sender().to_bytes().to_vec());
    // The held key and its session: one write (`docs/engine.md` § Key change).
    let held = SessionStateBytes::new(session.to_bytes()?.to_vec());
    let outcome =
        lock(&inner.store).record_key_change(contact, &new_key, &held, UnixMillis::now())?;
    if outcome == KeyChangeOutcome::Held {
        inner.emit(EngineEvent::KeyChanged {
            contact_id: contact.to_string(),
        });
    }
    Ok(true)
}
