//! The inbound path per relay, as two stages that overlap: one opens the HPKE seals of pushed
//! deliveries as they arrive while the other commits the batch before them (via `receive_run`)
//! and ACKs it; and what follows a commit (`docs/engine.md` § Receiving).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sealpost_crypto::{MailboxSealingKey, OpenedEnvelope, SendId, open_envelope};
use sealpost_relay_client::{AckHandle, Delivery, Inbound, MessageId};
use tokio::sync::{mpsc, oneshot};

use super::envelope::refuse;
use super::error::EngineError;
use super::first_contact::{FirstMessage, accept_first_message, peer_mismatch};
use super::receipts::emit_receipt_states;
use super::receive_run::{Locked, receive_run};
use super::secure::secure_mailboxes;
use super::state::{Inner, array32, lock, store_url};
use super::views::*;
use crate::content::SenderKey;
use crate::store::{ContactId, OwnMailbox, ReceiveId, ReceiveOutcome};

/// Most envelopes in one batch (one store transaction, one ACK per mailbox).
const RECEIVE_BATCH: usize = 256;

/// Mailboxes whose sealing keys the opening stage keeps between batches; past this many it
/// forgets them all and looks them up again.
const CACHED_SEALING_KEYS: usize = 1024;

/// Handles one relay's deliveries in two overlapping stages (`docs/engine.md` § Receiving):
/// [`open_stage`] opens the seals of whatever the relay pushes, as it arrives, and gathers the
/// opened envelopes while [`commit_stage`] commits the batch before them; when the commit stage
/// asks for more, it gets everything gathered so far (up to [`RECEIVE_BATCH`]) as its next
/// batch, commits it in ONE transaction and then ACKs it. A busy commit stage thus gets big
/// batches (one fsync each) and an idle one gets each envelope at once; batches are committed
/// and ACKed in the order they arrived.
pub(super) async fn inbound_loop(
    weak: Weak<Inner>,
    url: String,
    inbound: mpsc::Receiver<Inbound>,
    acks: AckHandle,
) {
    let (requests, asked) = mpsc::channel(1);
    tokio::join!(
        open_stage(weak.clone(), url.clone(), inbound, asked),
        commit_stage(weak, url, requests, acks),
    );
}

/// The commit stage asking for its next batch.
type BatchRequest = oneshot::Sender<OpenedBatch>;

/// A batch of deliveries after the HPKE open, on its way to the commit.
struct OpenedBatch {
    /// Each delivery's mailbox and relay id, for the ACK.
    ids: Vec<(ReceiveId, MessageId)>,
    /// Each delivery after the open, in the same order.
    items: Vec<Unsealed>,
}

impl OpenedBatch {
    /// Appends `later` (opened after `self`), keeping the order.
    fn append(&mut self, later: OpenedBatch) {
        self.ids.extend(later.ids);
        self.items.extend(later.items);
    }
}

/// One pushed envelope after the HPKE open, before its mailbox is resolved under the store lock.
enum Unsealed {
    /// Decided already (refused, unknown mailbox): whether to ACK.
    Done(bool),
    /// Opened with the sealing key of our mailbox `ReceiveId`.
    Opened(ReceiveId, Box<OpenedEnvelope>),
}

/// The sealing key and send id of each of our mailboxes the opening stage has met. Both are
/// fixed for a mailbox's life, so they stay valid across batches; which contact the mailbox
/// serves (which changes) is looked up again for every batch by the commit stage.
type SealingKeys = HashMap<[u8; 32], (SendId, MailboxSealingKey)>;

/// Stage one: opens what the relay pushes on the blocking pool, outside the store lock (the
/// costly part), and hands what it has gathered to [`commit_stage`] whenever that asks.
async fn open_stage(
    weak: Weak<Inner>,
    url: String,
    mut inbound: mpsc::Receiver<Inbound>,
    mut asked: mpsc::Receiver<BatchRequest>,
) {
    let mut keys = SealingKeys::new();
    let mut gathered: Option<OpenedBatch> = None;
    let mut inbound_open = true;
    loop {
        let room = RECEIVE_BATCH - gathered.as_ref().map_or(0, |batch| batch.ids.len());
        tokio::select! {
            biased;
            request = asked.recv(), if gathered.is_some() => {
                let (Some(request), Some(batch)) = (request, gathered.take()) else { return };
                // A commit stage gone away drops the batch: nothing of it was ACKed, so the
                // relay pushes it again after a reconnect.
                let _ = request.send(batch);
            }
            first = inbound.recv(), if inbound_open && room > 0 => {
                let Some(first) = first else {
                    inbound_open = false;
                    continue;
                };
                let mut deliveries = Vec::new();
                let mut next = Some(first);
                while let Some(item) = next.take() {
                    if let Inbound::Message(delivery) = item {
                        deliveries.push(delivery);
                    }
                    if deliveries.len() < room {
                        next = inbound.try_recv().ok();
                    }
                }
                if deliveries.is_empty() {
                    continue;
                }
                let Some(inner) = weak.upgrade() else { return };
                let batch = open_batch(&inner, &url, deliveries, &mut keys).await;
                drop(inner);
                match gathered.as_mut() {
                    Some(earlier) => earlier.append(batch),
                    None => gathered = Some(batch),
                }
            }
            // The relay's deliveries have ended and everything gathered was handed over.
            else => return,
        }
    }
}

/// Stage two: asks [`open_stage`] for what it has opened, commits it, then sends one ACK per
/// mailbox for what may go.
async fn commit_stage(
    weak: Weak<Inner>,
    url: String,
    requests: mpsc::Sender<BatchRequest>,
    acks: AckHandle,
) {
    loop {
        let (request, reply) = oneshot::channel();
        if requests.send(request).await.is_err() {
            return;
        }
        let Ok(batch) = reply.await else { return };
        let Some(inner) = weak.upgrade() else { return };
        let acknowledged = receive_batch(&inner, &url, batch.items).await;
        drop(inner);
        // After the commit: one ACK per mailbox for the whole batch.
        let mut by_mailbox: HashMap<_, Vec<_>> = HashMap::new();
        for ((receive_id, message_id), ack) in batch.ids.into_iter().zip(acknowledged) {
            if ack {
                by_mailbox.entry(receive_id).or_default().push(message_id);
            }
        }
        for (receive_id, message_ids) in by_mailbox {
            let _ = acks.ack_many(receive_id, message_ids);
        }
    }
}

/// Opens every delivery of a batch on the blocking pool. A delivery that could not be looked
/// at (a local failure) is left unacknowledged for the relay to push again.
async fn open_batch(
    inner: &Arc<Inner>,
    url: &str,
    deliveries: Vec<Delivery>,
    keys: &mut SealingKeys,
) -> OpenedBatch {
    let ids: Vec<_> = deliveries
        .iter()
        .map(|delivery| (delivery.receive_id, delivery.message_id))
        .collect();
    let count = deliveries.len();
    let url = url.to_owned();
    let mut cache = std::mem::take(keys);
    if cache.len() > CACHED_SEALING_KEYS {
        cache.clear();
    }
    let opened = inner
        .blocking(move |inner| {
            let mut unknown = HashSet::new();
            let items = deliveries
                .iter()
                .map(|delivery| {
                    open_one(inner, &url, delivery, &mut cache, &mut unknown).unwrap_or_else(
                        |error| {
                            tracing::warn!(
                                %error,
                                "delivery not opened; left for the relay to push again"
                            );
                            Unsealed::Done(false)
                        },
                    )
                })
                .collect();
            Ok((cache, items))
        })
        .await;
    match opened {
        Ok((cache, items)) => {
            *keys = cache;
            OpenedBatch { ids, items }
        }
        Err(error) => {
            tracing::warn!(%error, "batch not opened; left for the relay to push again");
            let items = (0..count).map(|_| Unsealed::Done(false)).collect();
            OpenedBatch { ids, items }
        }
    }
}

/// Opens one delivery's HPKE seal with its mailbox's sealing key (looked up once, then kept in
/// `keys`). A mailbox found not to be ours is remembered in `unknown` for the rest of the batch
/// (only for the batch: it may be created later), so a relay pushing many envelopes for it costs
/// one store lookup, not one each. A refusal here is final: ACK it.
fn open_one(
    inner: &Inner,
    url: &str,
    delivery: &Delivery,
    keys: &mut SealingKeys,
    unknown: &mut HashSet<[u8; 32]>,
) -> Result<Unsealed, EngineError> {
    if unknown.contains(&delivery.receive_id.0) {
        return refuse(inner, "an envelope for an unknown mailbox").map(Unsealed::Done);
    }
    let (send_id, sealing) = match keys.entry(delivery.receive_id.0) {
        std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
        std::collections::hash_map::Entry::Vacant(entry) => {
            let store_relay = store_url(url)?;
            let mailbox =
                lock(&inner.store).own_mailbox_by_receive_id(&store_relay, &delivery.receive_id)?;
            let Some(mailbox) = mailbox else {
                unknown.insert(delivery.receive_id.0);
                return refuse(inner, "an envelope for an unknown mailbox").map(Unsealed::Done);
            };
            let sealing = MailboxSealingKey::from_secret_bytes(&array32(
                mailbox.sealing_secret_key.expose_secret(),
            )?)?;
            entry.insert((SendId(array32(mailbox.send_id.as_bytes())?), sealing))
        }
    };
    match open_envelope(sealing, send_id, &delivery.envelope) {
        Ok(opened) => Ok(Unsealed::Opened(delivery.receive_id, Box::new(opened))),
        Err(error) => refuse(inner, format!("did not open: {error}")).map(Unsealed::Done),
    }
}

/// One envelope of a batch with its mailbox resolved, as the commit handles it.
enum Prepared {
    /// Decided already (refused, unknown mailbox): whether to ACK.
    Done(bool),
    /// Opened on this mailbox of ours.
    Opened(Arc<Opened>),
}

/// An envelope opened with the sealing key of our mailbox it came on (shared with the blocking
/// work that steps and commits it).
type Opened = (Arc<OwnMailbox>, OpenedEnvelope);

/// Looks up, under one hold of the store lock, the mailbox of each opened envelope of a batch
/// as it is now (which contact it serves), once per mailbox. A mailbox gone since the opening
/// stage saw it is an unknown mailbox: refused.
async fn resolve_mailboxes(
    inner: &Arc<Inner>,
    url: &str,
    items: Vec<Unsealed>,
) -> Result<Vec<Prepared>, EngineError> {
    let url = url.to_owned();
    inner
        .blocking(move |inner| {
            let store_relay = store_url(&url)?;
            let mut mailboxes: HashMap<[u8; 32], Option<Arc<OwnMailbox>>> = HashMap::new();
            {
                let store = lock(&inner.store);
                for item in &items {
                    if let Unsealed::Opened(receive_id, _) = item
                        && let std::collections::hash_map::Entry::Vacant(slot) =
                            mailboxes.entry(receive_id.0)
                    {
                        slot.insert(
                            store
                                .own_mailbox_by_receive_id(&store_relay, receive_id)?
                                .map(Arc::new),
                        );
                    }
                }
            }
            items
                .into_iter()
                .map(|item| match item {
                    Unsealed::Done(ack) => Ok(Prepared::Done(ack)),
                    Unsealed::Opened(receive_id, opened) => {
                        match mailboxes.get(&receive_id.0).cloned().flatten() {
                            Some(mailbox) => Ok(Prepared::Opened(Arc::new((mailbox, *opened)))),
                            None => refuse(inner, "an envelope for an unknown mailbox")
                                .map(Prepared::Done),
                        }
                    }
                })
                .collect()
        })
        .await
}

/// Commits and decides the ACK of each delivery of an opened batch, in order. Envelopes on
/// contacts' mailboxes are committed together ([`receive_run`]); initial messages on invite
/// mailboxes (and key changes) take their own path between runs. Returns one ACK decision per
/// delivery.
async fn receive_batch(inner: &Arc<Inner>, url: &str, items: Vec<Unsealed>) -> Vec<bool> {
    let count = items.len();
    let prepared = match resolve_mailboxes(inner, url, items).await {
        Ok(prepared) => prepared,
        Err(error) => {
            tracing::warn!(%error, "batch not resolved; left for the relay to push again");
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
