//! The inbound path per relay: batch the pushed deliveries, open them, commit them (via
//! `receive_run`), then ACK; and what follows a commit (`docs/engine.md` § Receiving).

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sealpost_crypto::{MailboxSealingKey, OpenedEnvelope, open_envelope};
use sealpost_relay_client::{AckHandle, Delivery, Inbound};
use tokio::sync::mpsc;

use super::envelope::refuse;
use super::error::EngineError;
use super::first_contact::{FirstMessage, accept_first_message, peer_mismatch};
use super::receipts::emit_receipt_states;
use super::receive_run::{Locked, receive_run};
use super::secure::secure_mailboxes;
use super::state::{Inner, array32, lock, store_url};
use super::views::*;
use crate::content::SenderKey;
use crate::store::{ContactId, OwnMailbox, ReceiveOutcome};

/// Most envelopes committed in one store transaction. The relay's window (8 per mailbox by
/// default) usually bounds a batch first; several busy mailboxes fill it further.
const RECEIVE_BATCH: usize = 256;

/// Handles one relay's deliveries: open, commit, then ACK — in batches. Whatever the relay has
/// pushed by the time the loop looks (up to [`RECEIVE_BATCH`]) is opened, committed in ONE
/// transaction and then ACKed together (`docs/engine.md` § Receiving).
pub(super) async fn inbound_loop(
    weak: Weak<Inner>,
    url: String,
    mut inbound: mpsc::Receiver<Inbound>,
    acks: AckHandle,
) {
    while let Some(first) = inbound.recv().await {
        let Some(inner) = weak.upgrade() else { return };
        let mut deliveries = Vec::new();
        let mut next = Some(first);
        while let Some(item) = next.take() {
            if let Inbound::Message(delivery) = item {
                deliveries.push(delivery);
            }
            if deliveries.len() < RECEIVE_BATCH {
                next = inbound.try_recv().ok();
            }
        }
        if deliveries.is_empty() {
            continue;
        }
        let ids: Vec<_> = deliveries
            .iter()
            .map(|delivery| (delivery.receive_id, delivery.message_id))
            .collect();
        let acknowledged = receive_batch(&inner, &url, deliveries).await;
        // After the commit: one signed ACK per mailbox for the whole batch.
        let mut by_mailbox: HashMap<_, Vec<_>> = HashMap::new();
        for ((receive_id, message_id), ack) in ids.into_iter().zip(acknowledged) {
            if ack {
                by_mailbox.entry(receive_id).or_default().push(message_id);
            }
        }
        for (receive_id, message_ids) in by_mailbox {
            let _ = acks.ack_many(receive_id, message_ids);
        }
    }
}

/// One pushed envelope after the HPKE open, before the ratchet.
enum Prepared {
    /// Decided already (refused, unknown mailbox): whether to ACK.
    Done(bool),
    /// Opened with the mailbox's sealing key.
    Opened(Arc<Opened>),
}

/// An envelope opened with the sealing key of our mailbox it came on (shared with the blocking
/// work that steps and commits it).
type Opened = (Arc<OwnMailbox>, OpenedEnvelope);

/// Opens, commits and decides the ACK of each delivery, in order. Envelopes on contacts'
/// mailboxes are committed together ([`receive_run`]); initial messages on invite mailboxes
/// (and key changes) take their own path between runs. Returns one ACK decision per delivery.
async fn receive_batch(inner: &Arc<Inner>, url: &str, deliveries: Vec<Delivery>) -> Vec<bool> {
    let count = deliveries.len();
    let url = url.to_owned();
    // The HPKE opening (and the mailbox lookups) run on the blocking pool.
    let prepared = inner
        .blocking(move |inner| {
            let mut mailboxes = MailboxCache::new();
            let mut prepared = Vec::with_capacity(deliveries.len());
            for delivery in &deliveries {
                prepared.push(match prepare(inner, &url, delivery, &mut mailboxes) {
                    Ok(item) => item,
                    Err(error) => {
                        tracing::warn!(
                            %error,
                            "delivery not prepared; left for the relay to push again"
                        );
                        Prepared::Done(false)
                    }
                });
            }
            Ok(prepared)
        })
        .await;
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            tracing::warn!(%error, "batch not prepared; left for the relay to push again");
            return vec![false; count];
        }
    };
    let mut acks = vec![false; count];
    let mut run: Vec<(usize, ContactId)> = Vec::new();
    for index in 0..prepared.len() {
        let first_message = match prepared.get(index) {
            Some(Prepared::Done(ack)) => {
                if let Some(slot) = acks.get_mut(index) {
                    *slot = *ack;
                }
                continue;
            }
            Some(Prepared::Opened(opened)) => {
                // A Hello earlier in this batch may have made the invite's mailbox a contact's
                // (the batch's mailbox cache predates it): look again before treating the
                // envelope as another first message (which would be refused as a misuse).
                let contact = match opened.0.contact {
                    Some(contact) => Some(contact),
                    None => {
                        let opened = Arc::clone(opened);
                        inner
                            .on_store(move |store| {
                                Ok(store.own_mailbox_by_receive_id(
                                    &opened.0.relay_url,
                                    &opened.0.receive_id,
                                )?)
                            })
                            .await
                            .ok()
                            .flatten()
                            .and_then(|mailbox| mailbox.contact)
                    }
                };
                match contact {
                    Some(contact) => {
                        run.push((index, contact));
                        continue;
                    }
                    None => true,
                }
            }
            None => continue,
        };
        if first_message {
            flush_run(inner, &prepared, &mut run, &mut acks).await;
            if let Some(Prepared::Opened(opened)) = prepared.get(index) {
                let first = with_retries(|| {
                    let opened = Arc::clone(opened);
                    inner.blocking(move |inner| accept_first_message(inner, &opened.0, &opened.1))
                })
                .await;
                match first {
                    Some(FirstMessage::Contact(contact)) => run.push((index, contact)),
                    Some(FirstMessage::Decided(ack)) => {
                        if let Some(slot) = acks.get_mut(index) {
                            *slot = ack;
                        }
                    }
                    None => {}
                }
            }
        }
    }
    flush_run(inner, &prepared, &mut run, &mut acks).await;
    acks
}

/// Retries a local failure (a busy disk, a lost race) a few times; after that (`None`) the
/// envelope is left unacknowledged for the relay to push again after a reconnect.
async fn with_retries<T, F, Fut>(mut attempt: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, EngineError>>,
{
    for round in 0..4u64 {
        match attempt().await {
            Ok(decided) => return Some(decided),
            Err(error) => {
                tracing::warn!(%error, round, "delivery not committed");
                tokio::time::sleep(Duration::from_millis(50 * (round + 1))).await;
            }
        }
    }
    None
}

/// Each mailbox of a batch, looked up and its sealing key derived once (deriving the key
/// computes its public half: an X25519 scalar multiplication). `None`: not ours.
type MailboxCache = HashMap<[u8; 32], Option<(Arc<OwnMailbox>, MailboxSealingKey)>>;

/// Looks the mailbox up and opens the HPKE seal (outside the store lock: this is the costly
/// part). A refusal here is final: ACK it.
fn prepare(
    inner: &Inner,
    url: &str,
    delivery: &Delivery,
    mailboxes: &mut MailboxCache,
) -> Result<Prepared, EngineError> {
    let entry = match mailboxes.get(&delivery.receive_id.0) {
        Some(entry) => entry,
        None => {
            let store_relay = store_url(url)?;
            let mailbox =
                lock(&inner.store).own_mailbox_by_receive_id(&store_relay, &delivery.receive_id)?;
            let entry = match mailbox {
                Some(mailbox) => {
                    let sealing = MailboxSealingKey::from_secret_bytes(&array32(
                        mailbox.sealing_secret_key.expose_secret(),
                    )?)?;
                    Some((Arc::new(mailbox), sealing))
                }
                None => None,
            };
            mailboxes.entry(delivery.receive_id.0).or_insert(entry)
        }
    };
    let Some((mailbox, sealing)) = entry else {
        return refuse(inner, "an envelope for an unknown mailbox").map(Prepared::Done);
    };
    let send_id = sealpost_crypto::SendId(array32(mailbox.send_id.as_bytes())?);
    match open_envelope(sealing, &send_id, &delivery.envelope) {
        Ok(opened) => Ok(Prepared::Opened(Arc::new((mailbox.clone(), opened)))),
        Err(error) => refuse(inner, format!("did not open: {error}")).map(Prepared::Done),
    }
}

/// Commits a run of envelopes on contacts' mailboxes (one transaction), then does what each
/// needs afterwards (events, receipts, SECURE, the key-change path). Empties `run`.
async fn flush_run(
    inner: &Arc<Inner>,
    prepared: &[Prepared],
    run: &mut Vec<(usize, ContactId)>,
    acks: &mut [bool],
) {
    if run.is_empty() {
        return;
    }
    let items: Vec<(usize, ContactId, Arc<Opened>)> = run
        .drain(..)
        .filter_map(|(index, contact)| match prepared.get(index) {
            Some(Prepared::Opened(opened)) => Some((index, contact, Arc::clone(opened))),
            _ => None,
        })
        .collect();
    let mut decided = None;
    for round in 0..4u64 {
        let run = items.clone();
        let committed = inner
            .blocking(move |inner| {
                let run: Vec<(usize, ContactId, &OpenedEnvelope)> = run
                    .iter()
                    .map(|(index, contact, opened)| (*index, *contact, &opened.1))
                    .collect();
                receive_run(inner, &run)
            })
            .await;
        match committed {
            Ok(decisions) => {
                decided = Some(decisions);
                break;
            }
            Err(error) => {
                tracing::warn!(%error, round, "received batch not committed");
                inner.emit(EngineEvent::EnvelopeRefused {
                    reason: format!("local failure, will retry: {error}"),
                });
                tokio::time::sleep(Duration::from_millis(50 * (round + 1))).await;
            }
        }
    }
    // Still failing: nothing was committed; leave the run unacknowledged.
    let Some(decisions) = decided else { return };
    for ((index, contact, _), decision) in items.iter().zip(decisions) {
        let ack = match decision {
            Locked::Done(ack) => ack,
            Locked::PeerMismatch => {
                let Some(Prepared::Opened(opened)) = prepared.get(*index) else {
                    continue;
                };
                let contact = *contact;
                with_retries(|| {
                    let opened = Arc::clone(opened);
                    inner.blocking(move |inner| peer_mismatch(inner, contact, &opened.0, &opened.1))
                })
                .await
                .unwrap_or(false)
            }
            Locked::Stored(outcome, secure_with) => {
                lock(&inner.fresh_restarts).remove(contact);
                after_commit(inner, *contact, outcome, secure_with).await;
                true
            }
            Locked::RestartOffered => {
                let Some(Prepared::Opened(opened)) = prepared.get(*index) else {
                    continue;
                };
                restart_offered(inner, *contact, opened).await
            }
            Locked::Broken => {
                if lock(&inner.fresh_restarts).contains(contact) {
                    // A straggler of the session the contact's restart replaced.
                    let _ = refuse(inner, "a message of the session before the restart");
                } else {
                    let contact = *contact;
                    let restarted = inner
                        .blocking(move |inner| {
                            super::restart::restart_session(
                                inner,
                                contact,
                                super::restart::RestartCause::AuthenticGap,
                            )
                        })
                        .await;
                    if let Err(error) = restarted {
                        tracing::warn!(%error, "session restart not started");
                    }
                    let _ = refuse(
                        inner,
                        "ratchet refused: too many skipped messages; session restarted",
                    );
                }
                true
            }
        };
        if let Some(slot) = acks.get_mut(*index) {
            *slot = ack;
        }
    }
}

/// An envelope whose session the contact's current one did not know. A restart accepted
/// earlier in the same batch may know it now (the restart's later messages): it is received
/// again through the current session first, and only otherwise checked as a restart.
async fn restart_offered(inner: &Arc<Inner>, contact: ContactId, opened: &Arc<Opened>) -> bool {
    let again = with_retries(|| async {
        let envelope = Arc::clone(opened);
        let decided = inner
            .blocking(move |inner| receive_run(inner, &[(0, contact, &envelope.1)]))
            .await?;
        match decided.into_iter().next_back() {
            Some(Locked::Stored(outcome, secure_with)) => {
                lock(&inner.fresh_restarts).remove(&contact);
                after_commit(inner, contact, outcome, secure_with).await;
                Ok(true)
            }
            Some(Locked::Done(ack)) => Ok(ack),
            // Still a new session, or another decision: the restart path decides.
            _ => Ok(false),
        }
    })
    .await
    .unwrap_or(false);
    if again {
        return true;
    }
    with_retries(|| {
        let envelope = Arc::clone(opened);
        inner.blocking(move |inner| super::restart::accept_restart(inner, contact, &envelope.1))
    })
    .await
    .unwrap_or(false)
}

/// What follows a committed envelope: SECURE for a Welcome, events, the delivery receipt.
async fn after_commit(
    inner: &Arc<Inner>,
    contact: ContactId,
    outcome: ReceiveOutcome,
    secure_with: Option<Vec<SenderKey>>,
) {
    if let Some(keys) = secure_with {
        secure_mailboxes(inner, contact, keys).await;
    }
    match outcome {
        ReceiveOutcome::Stored(message) => {
            inner.emit(EngineEvent::MessageReceived {
                contact_id: contact.to_string(),
                message: MessageView::from(&message),
            });
            if message.timer_change.is_some() {
                // The chat's disappearing timer may have changed: the header reads it again.
                inner.emit(EngineEvent::ContactUpdated {
                    contact_id: contact.to_string(),
                });
            }
            inner.queue_delivery_receipt(contact, message.seq.get());
        }
        ReceiveOutcome::ReceiptApplied { updated } => {
            receipt_states(inner, contact, updated).await;
        }
        ReceiveOutcome::StoredWithReceipts { message, updated } => {
            receipt_states(inner, contact, updated).await;
            inner.emit(EngineEvent::MessageReceived {
                contact_id: contact.to_string(),
                message: MessageView::from(&message),
            });
            inner.queue_delivery_receipt(contact, message.seq.get());
        }
        ReceiveOutcome::SessionUpdated | ReceiveOutcome::Duplicate => {}
    }
}

/// [`emit_receipt_states`], reading the messages on the blocking pool.
async fn receipt_states(
    inner: &Arc<Inner>,
    contact: ContactId,
    updated: Vec<crate::store::MessageId>,
) {
    let emitted = inner
        .blocking(move |inner| {
            emit_receipt_states(inner, contact, updated);
            Ok(())
        })
        .await;
    if let Err(error) = emitted {
        tracing::warn!(%error, "receipt states not emitted");
    }
}
