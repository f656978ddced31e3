//! The locked part of receiving: stepping the ratchet for a run of envelopes on contacts'
//! mailboxes and committing them in one transaction (`docs/engine.md` § Receiving).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sealpost_crypto::{OpenedEnvelope, Session};

use super::envelope::refuse;
use super::error::EngineError;
use super::receive_step::read_plaintext;
use super::state::{Inner, lock};
use crate::content::SenderKey;
use crate::store::{
    Contact, ContactId, EnvelopeId, ReceiveOutcome, Received, ReceivedContent, SessionStateBytes,
    StoreError, UnixMillis,
};

/// What the locked part of receiving decided for one envelope on a contact's mailbox.
pub(super) enum Locked {
    /// Finished (a duplicate, or refused): whether to ACK.
    Done(bool),
    /// The sealed sender is not the contact: a key change, an invite misuse or a reflection.
    PeerMismatch,
    /// The contact offers a new session (an X3DH initial message with a new base key): a
    /// session restart to check (`docs/engine.md` § Session restart).
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
    let envelope_id = opened.envelope_id();
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
    let last_seq = store.conversation_last_seq(contact)?;
    let step = read_plaintext(&plaintext, &row.identity_key, last_seq);
    if let Some(refusal) = &step.refusal {
        refuse(inner, refusal.to_string())?;
    }
    if let Some(prekey) = &step.peer_prekey {
        store.set_peer_signed_prekey(contact, prekey)?;
    }
    if let Some((body, sent_at_ms)) = step.group.clone() {
        // Groups (`docs/engine.md` § Groups): the author is this session's peer.
        super::groups::receive_group_body(inner, store, row, body, sent_at_ms)?;
    }
    Ok(Step::Commit(
        Box::new(Received {
            contact,
            envelope_id,
            session_state: SessionStateBytes::new(session.to_bytes()?.to_vec()),
            content: step.content,
            received_at: now,
        }),
        step.secure_with,
    ))
}
