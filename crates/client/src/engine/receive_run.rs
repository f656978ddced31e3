//! The locked part of receiving: stepping the ratchet for a run of envelopes on contacts'
//! mailboxes and committing them in one transaction (`docs/engine.md` § Receiving).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sealpost_crypto::{OpenedEnvelope, Session};

use super::envelope::refuse;
use super::error::EngineError;
use super::state::{Inner, identity_from_bytes, lock};
use crate::content::{Body, Content, ReceiptKindWire, SenderKey};
use crate::store::{
    Contact, ContactId, ConversationSeq, EnvelopeId, ReceiptKind, ReceiveOutcome, Received,
    ReceivedContent, SessionStateBytes, SignedPrekeyBytes, StoreError, UnixMillis,
};

/// Most receipts read from one text message (a peer's pending receipts fit far below it).
const MAX_RIDING_RECEIPTS: usize = 4096;

/// What the locked part of receiving decided for one envelope on a contact's mailbox.
pub(super) enum Locked {
    /// Finished (a duplicate, or refused): whether to ACK.
    Done(bool),
    /// The sealed sender is not the contact: a key change, an invite misuse or a reflection.
    PeerMismatch,
    /// The contact offers a new session (an X3DH initial message with a new base key): a
    /// session restart to check (§3a rule 6).
    RestartOffered,
    /// An authentic message of the contact's lies beyond MAX_SKIP: our session cannot follow
    /// the contact's, restart it.
    Broken,
    /// Committed; SECURE our mailboxes with these keys if a Welcome carried them.
    Stored(ReceiveOutcome, Option<Vec<SenderKey>>),
}

/// One envelope after the ratchet, inside [`receive_run`].
enum Step {
    /// Nothing to commit.
    Decided(Locked),
    /// Commit this (with the Welcome's sender keys, if any).
    Commit(Box<Received>, Option<Vec<SenderKey>>),
}

/// A contact's row and session as a run steps them, in memory until the commit.
type RunSessions = HashMap<ContactId, Option<(Contact, Option<Session>)>>;

/// Steps the ratchet for every envelope of a run and commits them all in ONE transaction
/// ([`Store::commit_received_batch`](crate::store::Store::commit_received_batch)), under ONE
/// hold of the store lock: a seal for one of these contacts in between (a send, a receipt)
/// would otherwise be overwritten by a stale session, and the next seal would reuse its
/// message key. Returns one decision per item, in order.
///
/// The invariants of the one-envelope path hold per item: the dedupe row is written only for
/// an envelope the ratchet opened; a refused envelope changes no session (the ratchet leaves it
/// unchanged on failure) and is not committed; an item the store refuses on its own (a reused
/// sequence number) is rolled back alone in its savepoint. An `Err` means nothing was committed.
pub(super) fn receive_run(
    inner: &Arc<Inner>,
    items: &[(usize, ContactId, &OpenedEnvelope)],
) -> Result<Vec<Locked>, EngineError> {
    let now = UnixMillis::now();
    let mut store = lock(&inner.store);
    let mut sessions: RunSessions = HashMap::new();
    let mut seen: HashSet<(ContactId, EnvelopeId)> = HashSet::new();
    let mut decisions = Vec::with_capacity(items.len());
    let mut batch = Vec::new();
    let mut slots = Vec::new();
    for (_, contact, opened) in items {
        match step_one(
            inner,
            &mut store,
            &mut sessions,
            &mut seen,
            *contact,
            opened,
            now,
        )? {
            Step::Decided(decision) => decisions.push(decision),
            Step::Commit(received, secure_with) => {
                slots.push((decisions.len(), secure_with));
                decisions.push(Locked::Done(false));
                batch.push(*received);
            }
        }
    }
    if batch.is_empty() {
        return Ok(decisions);
    }
    let results = store.commit_received_batch(&batch)?;
    let mut second_copies = Vec::new();
    for ((slot, secure_with), (result, received)) in
        slots.into_iter().zip(results.into_iter().zip(&batch))
    {
        let decision = match result {
            Ok(outcome) => Locked::Stored(outcome, secure_with),
            // The same message over a second relay (its own seal): keep the session step and
            // the dedupe row only, below.
            Err(StoreError::Conflict { .. }) => {
                second_copies.push((slot, received.contact, received.envelope_id));
                Locked::Stored(ReceiveOutcome::SessionUpdated, secure_with)
            }
            Err(error) => {
                refuse(inner, format!("the store refused it: {error}"))?;
                Locked::Done(true)
            }
        };
        if let Some(entry) = decisions.get_mut(slot) {
            *entry = decision;
        }
    }
    if !second_copies.is_empty() {
        // Each contact's latest session (it includes the rolled-back item's step).
        let mut fixes = Vec::new();
        for (_, contact, envelope_id) in &second_copies {
            let state = match sessions.get(contact) {
                Some(Some((_, Some(session)))) => session.to_bytes()?,
                _ => continue,
            };
            fixes.push(Received {
                contact: *contact,
                envelope_id: *envelope_id,
                session_state: SessionStateBytes::new(state.to_vec()),
                content: ReceivedContent::SessionOnly,
                received_at: now,
            });
        }
        if let Err(error) = store.commit_received_batch(&fixes) {
            // The relay pushes them again; the ratchet then refuses the used key and they are
            // ACKed as refused.
            tracing::warn!(%error, "second copies not recorded");
            for (slot, _, _) in &second_copies {
                if let Some(entry) = decisions.get_mut(*slot) {
                    *entry = Locked::Done(false);
                }
            }
        }
    }
    Ok(decisions)
}

/// Steps one envelope of a run through its contact's in-memory session.
fn step_one(
    inner: &Arc<Inner>,
    store: &mut crate::store::Store,
    sessions: &mut RunSessions,
    seen: &mut HashSet<(ContactId, EnvelopeId)>,
    contact: ContactId,
    opened: &OpenedEnvelope,
    now: UnixMillis,
) -> Result<Step, EngineError> {
    let decided =
        |result: Result<bool, EngineError>| result.map(|ack| Step::Decided(Locked::Done(ack)));
    let envelope_id = EnvelopeId::from_bytes(opened.envelope_id().0);
    if let std::collections::hash_map::Entry::Vacant(slot) = sessions.entry(contact) {
        let entry = match store.contact(contact)? {
            None => None,
            Some(row) => {
                let session = match store.session_state(contact)? {
                    Some(state) => Some(Session::from_bytes(state.expose_secret())?),
                    None => None,
                };
                Some((row, session))
            }
        };
        slot.insert(entry);
    }
    let Some(Some((row, session))) = sessions.get_mut(&contact) else {
        return decided(refuse(inner, "the contact is gone"));
    };
    if seen.contains(&(contact, envelope_id)) || store.is_envelope_seen(contact, envelope_id)? {
        // T5: a replay. Nothing is shown twice.
        return Ok(Step::Decided(Locked::Done(true)));
    }
    if row.blocked {
        return decided(refuse(inner, "the contact is blocked"));
    }
    if row.identity_key.as_bytes() != opened.sender().to_bytes().as_slice() {
        return Ok(Step::Decided(Locked::PeerMismatch));
    }
    let Some(session) = session else {
        return decided(refuse(inner, "no session with this contact"));
    };
    let plaintext = match session.receive(opened) {
        Ok(plaintext) => plaintext,
        Err(sealpost_crypto::CryptoError::NewSessionOffered) => {
            return Ok(Step::Decided(Locked::RestartOffered));
        }
        Err(sealpost_crypto::CryptoError::AuthenticGapBeyondMaxSkip { .. }) => {
            // Authentic (the ratchet opened it on a scratch chain) but beyond MAX_SKIP: refused
            // (and reported) after the restart is committed, in `flush_run`. Every other
            // refusal, a forged far counter included, is unauthenticated and restarts nothing.
            return Ok(Step::Decided(Locked::Broken));
        }
        Err(error) => return decided(refuse(inner, format!("ratchet refused: {error}"))),
    };
    seen.insert((contact, envelope_id));
    let mut secure_with = None;
    let content = match Content::from_bytes(&plaintext) {
        Ok(content) => Some(content),
        Err(error) => {
            // The ratchet step is kept (the message key is spent); the content is dropped.
            refuse(inner, format!("content: {error}"))?;
            None
        }
    };
    let received_content = match content {
        None => ReceivedContent::SessionOnly,
        Some(content) => match content.body {
            Body::Text { text } => match super::sequence::accept_incoming_seq(
                content.seq,
                store.conversation_last_seq(contact)?,
            ) {
                Ok(seq) => {
                    let sent_at = UnixMillis(i64::try_from(content.sent_at_ms).unwrap_or(0));
                    // Receipts riding on the message (§3a.7), applied in its savepoint.
                    let receipts: Vec<(ReceiptKind, ConversationSeq)> = content
                        .receipts
                        .iter()
                        .take(MAX_RIDING_RECEIPTS)
                        .filter_map(|receipt| {
                            let kind = match receipt.kind {
                                ReceiptKindWire::Delivered => ReceiptKind::Delivered,
                                ReceiptKindWire::Read => ReceiptKind::Read,
                            };
                            ConversationSeq::new(receipt.seq).map(|seq| (kind, seq))
                        })
                        .collect();
                    if receipts.is_empty() {
                        ReceivedContent::Message {
                            seq,
                            body: text,
                            sent_at,
                        }
                    } else {
                        ReceivedContent::MessageWithReceipts {
                            seq,
                            body: text,
                            sent_at,
                            receipts,
                        }
                    }
                }
                Err(error) => {
                    // The ratchet step is kept; the text is dropped and sending goes on.
                    refuse(inner, format!("content: {error}"))?;
                    ReceivedContent::SessionOnly
                }
            },
            Body::ReceiptsOnly => {
                let kind = match content.receipts.first().map(|r| r.kind) {
                    Some(ReceiptKindWire::Read) => ReceiptKind::Read,
                    _ => ReceiptKind::Delivered,
                };
                let seqs = content
                    .receipts
                    .iter()
                    .filter_map(|r| ConversationSeq::new(r.seq))
                    .collect();
                ReceivedContent::Receipt { kind, seqs }
            }
            Body::Welcome { sender_keys, .. } => {
                secure_with = Some(sender_keys);
                ReceivedContent::SessionOnly
            }
            Body::PrekeyUpdate { signed_prekey } => {
                // Kept only if it is a signed prekey of this contact's identity.
                let verified = identity_from_bytes(row.identity_key.as_bytes())
                    .ok()
                    .and_then(|identity| {
                        let prekey =
                            sealpost_crypto::SignedPrekey::from_bytes(&signed_prekey).ok()?;
                        prekey.verify(&identity).ok()
                    })
                    .is_some();
                if verified {
                    store
                        .set_peer_signed_prekey(contact, &SignedPrekeyBytes::new(signed_prekey))?;
                } else {
                    refuse(inner, "a prekey update that does not verify")?;
                }
                ReceivedContent::SessionOnly
            }
            Body::Hello { .. } | Body::Restart { .. } => ReceivedContent::SessionOnly,
            // Groups (`docs/engine.md` § Groups): the author is this session's peer.
            body @ (Body::GroupText { .. }
            | Body::GroupRoster { .. }
            | Body::GroupReceipts { .. }
            | Body::GroupIntroduction { .. }) => {
                super::groups::receive_group_body(inner, store, row, body, content.sent_at_ms)?;
                ReceivedContent::SessionOnly
            }
        },
    };
    Ok(Step::Commit(
        Box::new(Received {
            contact,
            envelope_id,
            session_state: SessionStateBytes::new(session.to_bytes()?.to_vec()),
            content: received_content,
            received_at: now,
        }),
        secure_with,
    ))
}
