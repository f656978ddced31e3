//! Reliable delivery: the outbox task (send the exact sealed bytes, retry with jittered backoff)
//! and the inbound path (open → check the sender is the mailbox's peer → ratchet → commit →
//! only then ACK). `docs/engine.md` § Sending, § Receiving.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use futures_util::FutureExt;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use sealpost_crypto::{
    MailboxSealingKey, OneTimePrekeyPair, OpenedEnvelope, Session, SessionMessage,
    SignedPrekeyPair, open_envelope,
};
use sealpost_relay_client::{
    AckHandle, AuthPublicKey, Delivery, Inbound, RelayUrl as WireUrl, Retry, SendSecret,
};
use tokio::sync::mpsc;

use super::views::{EngineEvent, MessageStateView, MessageView};
use super::{EngineError, Inner, array32, lock, store_url};
use crate::content::{Body, CONTENT_VERSION, Content, ReceiptKindWire, SenderKey};
use crate::store::{
    Contact, ContactId, ConversationSeq, EnvelopeId, IdentityKeyBytes, KeyChangeOutcome,
    NewContact, OwnMailbox, ReceiptKind, ReceiveId, ReceiveOutcome, Received, ReceivedContent,
    SessionStateBytes, SignedPrekeyBytes, StoreError, UnixMillis,
};

const OUTBOX_BATCH: u32 = 256;
/// Most receipts read from one text message (a peer's pending receipts fit far below it).
const MAX_RIDING_RECEIPTS: usize = 4096;
/// Most SENDs in flight at once from the outbox.
const SEND_IN_FLIGHT: usize = 32;
const IDLE_WAIT: Duration = Duration::from_millis(1000);

/// Sends due outbox items until the engine goes away.
pub(super) async fn outbox_loop(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let now = UnixMillis::now();
        let due = lock(&inner.store).due_outbox(now, OUTBOX_BATCH);
        let due = match due {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "outbox read failed");
                Vec::new()
            }
        };
        if due.is_empty() {
            let next = lock(&inner.store).next_outbox_attempt_at().ok().flatten();
            let wait = next
                .map(|at| {
                    Duration::from_millis(u64::try_from(at.0.saturating_sub(now.0)).unwrap_or(0))
                })
                .unwrap_or(IDLE_WAIT)
                .min(IDLE_WAIT);
            let notified = inner.outbox_wake.notified();
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        send_due(&inner, due).await;
    }
}

/// SENDs the due items, up to [`SEND_IN_FLIGHT`] pipelined at once (the relay protocol
/// pipelines requests on one connection), and marks each window of OKs sent in one store
/// transaction. After a failure on a relay, the rest of its items wait for their next attempt.
/// Everything runs inside the outbox task (no spawned task holds the engine or the store).
async fn send_due(inner: &Arc<Inner>, due: Vec<crate::store::OutboxItem>) {
    let mut pending = due.into_iter();
    let mut in_flight = FuturesUnordered::new();
    let mut failed_urls: HashSet<String> = HashSet::new();
    loop {
        while in_flight.len() < SEND_IN_FLIGHT {
            let Some(item) = pending.next() else { break };
            if failed_urls.contains(item.relay_url.as_str()) {
                continue;
            }
            in_flight.push(async move {
                let result = send_item(inner, &item).await;
                (item, result)
            });
        }
        let Some(first) = in_flight.next().await else {
            return;
        };
        let mut finished = vec![first];
        while let Some(Some(more)) = in_flight.next().now_or_never() {
            finished.push(more);
        }
        let mut sent = Vec::new();
        for (item, result) in finished {
            match result {
                Ok(()) => sent.push(item),
                Err(SendFailure::Never(reason)) => {
                    tracing::warn!(%reason, "outbox item given up");
                    let failed = lock(&inner.store).give_up_outbox(item.id);
                    if let Ok(Some(message)) = failed {
                        inner.emit(EngineEvent::MessageState {
                            contact_id: item.contact.to_string(),
                            message_id: message.to_string(),
                            state: MessageStateView::Failed,
                        });
                    }
                }
                Err(SendFailure::Retry(slow)) => {
                    failed_urls.insert(item.relay_url.as_str().to_owned());
                    let delay = backoff_delay(inner, item.attempts, slow);
                    let at = UnixMillis(
                        UnixMillis::now()
                            .0
                            .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
                    );
                    let _ = lock(&inner.store).reschedule_outbox(item.id, at);
                }
            }
        }
        if sent.is_empty() {
            continue;
        }
        let ids: Vec<_> = sent.iter().map(|item| item.id).collect();
        let changed = lock(&inner.store).mark_outbox_sent_batch(&ids);
        match changed {
            Ok(changed) => {
                for message in changed {
                    let contact = sent
                        .iter()
                        .find(|item| item.message == Some(message))
                        .map(|item| item.contact.to_string())
                        .unwrap_or_default();
                    inner.emit(EngineEvent::MessageState {
                        contact_id: contact,
                        message_id: message.to_string(),
                        state: MessageStateView::OnRelay,
                    });
                }
            }
            // The relay has them; they are sent again later and the receiver's dedupe drops
            // the repeats.
            Err(error) => tracing::warn!(%error, "could not mark sent items"),
        }
    }
}

enum SendFailure {
    Retry(bool),
    Never(String),
}

fn backoff_delay(inner: &Inner, attempts: u32, slow: bool) -> Duration {
    let base = if slow {
        inner.backoff.max
    } else {
        inner.backoff.base
    };
    let factor = 1u32.checked_shl(attempts.min(16)).unwrap_or(u32::MAX);
    let ceiling = base.saturating_mul(factor).min(inner.backoff.max);
    let mut random = [0u8; 4];
    let _ = getrandom::fill(&mut random);
    // Full jitter between half and the whole ceiling.
    let fraction = f64::from(u32::from_le_bytes(random)) / f64::from(u32::MAX);
    ceiling.mul_f64(0.5 + 0.5 * fraction)
}

async fn send_item(inner: &Inner, item: &crate::store::OutboxItem) -> Result<(), SendFailure> {
    let address = {
        let store = lock(&inner.store);
        store
            .peer_addresses(item.contact)
            .map_err(|e| SendFailure::Never(e.to_string()))?
            .into_iter()
            .find(|a| a.relay_url == item.relay_url && a.send_id == item.send_id)
    };
    let Some(address) = address else {
        return Err(SendFailure::Never("the address is gone".into()));
    };
    let parse = || -> Result<_, EngineError> {
        Ok((
            WireUrl::parse(item.relay_url.as_str())
                .map_err(|e| EngineError::RelayUrlInvalid(e.to_string()))?,
            sealpost_relay_client::SendId(array32(item.send_id.as_bytes())?),
            SendSecret::new(array32(address.send_secret.expose_secret())?),
            SigningKey::from_bytes(&array32(address.sender_auth_secret_key.expose_secret())?),
        ))
    };
    let (url, send_id, secret, key) = parse().map_err(|e| SendFailure::Never(e.to_string()))?;
    match inner
        .sender
        .send(&url, send_id, &secret, item.sealed.as_bytes(), Some(&key))
        .await
    {
        Ok(()) => Ok(()),
        // Our SENDs are always signed with the key we announced; a SenderAuth refusal on the
        // first attempts is the relay's SEND racing the peer's SECURE (its lookup saw the
        // mailbox unsecured, its append saw it secured). Retrying the same bytes succeeds.
        Err(sealpost_relay_client::ClientError::SenderUnauthorized) if item.attempts < 5 => {
            Err(SendFailure::Retry(false))
        }
        Err(error) => match error.retry() {
            Retry::Soon => Err(SendFailure::Retry(false)),
            Retry::Later => Err(SendFailure::Retry(true)),
            Retry::Never => Err(SendFailure::Never(error.to_string())),
        },
    }
}

/// Most envelopes committed in one store transaction. The relay's window (8 per mailbox by
/// default) usually bounds a batch first; several busy mailboxes fill it further.
pub(super) const RECEIVE_BATCH: usize = 256;

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
        let acknowledged = receive_batch(&inner, &url, &deliveries).await;
        for (delivery, ack) in deliveries.iter().zip(acknowledged) {
            if ack {
                let _ = acks.ack(delivery.receive_id, delivery.message_id);
            }
        }
    }
}

/// One pushed envelope after the HPKE open, before the ratchet.
enum Prepared {
    /// Decided already (refused, unknown mailbox): whether to ACK.
    Done(bool),
    /// Opened with the mailbox's sealing key.
    Opened(Box<(Arc<OwnMailbox>, OpenedEnvelope)>),
}

/// Opens, commits and decides the ACK of each delivery, in order. Envelopes on contacts'
/// mailboxes are committed together ([`receive_run`]); initial messages on invite mailboxes
/// (and key changes) take their own path between runs. Returns one ACK decision per delivery.
async fn receive_batch(inner: &Arc<Inner>, url: &str, deliveries: &[Delivery]) -> Vec<bool> {
    let mut prepared = Vec::with_capacity(deliveries.len());
    let mut mailboxes = MailboxCache::new();
    for delivery in deliveries {
        prepared.push(match prepare(inner, url, delivery, &mut mailboxes) {
            Ok(item) => item,
            Err(error) => {
                tracing::warn!(%error, "delivery not prepared; left for the relay to push again");
                Prepared::Done(false)
            }
        });
    }
    let mut acks = vec![false; deliveries.len()];
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
                    None => lock(&inner.store)
                        .own_mailbox_by_receive_id(&opened.0.relay_url, &opened.0.receive_id)
                        .ok()
                        .flatten()
                        .and_then(|mailbox| mailbox.contact),
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
                let (mailbox, envelope) = opened.as_ref();
                let ack = with_retries(|| accept_first_message(inner, mailbox, envelope)).await;
                if let Some(slot) = acks.get_mut(index) {
                    *slot = ack;
                }
            }
        }
    }
    flush_run(inner, &prepared, &mut run, &mut acks).await;
    acks
}

/// Retries a local failure (a busy disk, a lost race) a few times; after that the envelope is
/// left unacknowledged for the relay to push again after a reconnect.
async fn with_retries<F, Fut>(mut attempt: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, EngineError>>,
{
    for round in 0..4u64 {
        match attempt().await {
            Ok(ack) => return ack,
            Err(error) => {
                tracing::warn!(%error, round, "delivery not committed");
                tokio::time::sleep(Duration::from_millis(50 * (round + 1))).await;
            }
        }
    }
    false
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
            let mailbox = lock(&inner.store).own_mailbox_by_receive_id(
                &store_relay,
                &ReceiveId::new(delivery.receive_id.0.to_vec()),
            )?;
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
        Ok(opened) => Ok(Prepared::Opened(Box::new((mailbox.clone(), opened)))),
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
    let items: Vec<(usize, ContactId, &OpenedEnvelope)> = run
        .drain(..)
        .filter_map(|(index, contact)| match prepared.get(index) {
            Some(Prepared::Opened(opened)) => Some((index, contact, &opened.1)),
            _ => None,
        })
        .collect();
    let mut decided = None;
    for round in 0..4u64 {
        match receive_run(inner, &items) {
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
                let (mailbox, envelope) = opened.as_ref();
                with_retries(|| peer_mismatch(inner, *contact, mailbox, envelope)).await
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
                restart_offered(inner, *contact, &opened.1).await
            }
            Locked::Broken => {
                if lock(&inner.fresh_restarts).contains(contact) {
                    // A straggler of the session the contact's restart replaced.
                    let _ = refuse(inner, "a message of the session before the restart");
                } else {
                    if let Err(error) = super::restart::restart_session(
                        inner,
                        *contact,
                        super::restart::RestartCause::AuthenticGap,
                    ) {
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
async fn restart_offered(
    inner: &Arc<Inner>,
    contact: ContactId,
    envelope: &OpenedEnvelope,
) -> bool {
    let again = with_retries(|| async {
        match receive_run(inner, &[(0, contact, envelope)])?.pop() {
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
    .await;
    if again {
        return true;
    }
    with_retries(|| async { super::restart::accept_restart(inner, contact, envelope) }).await
}

pub(super) fn refuse(inner: &Inner, reason: impl Into<String>) -> Result<bool, EngineError> {
    let reason = reason.into();
    tracing::info!(%reason, "envelope refused");
    inner.emit(EngineEvent::EnvelopeRefused { reason });
    Ok(true)
}

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

pub(super) fn responder_session(
    inner: &Inner,
    opened: &OpenedEnvelope,
    one_time: Option<&OneTimePrekeyPair>,
) -> Result<(Session, Content), String> {
    let SessionMessage::Initial(initial) = opened.payload() else {
        return Err("not an initial message".into());
    };
    let signed = lock(&inner.store)
        .signed_prekey(initial.signed_prekey_id().0)
        .map_err(|e| e.to_string())?
        .ok_or("unknown signed prekey")?;
    let signed =
        SignedPrekeyPair::from_secret_bytes(signed.expose_secret()).map_err(|e| e.to_string())?;
    let one_time = one_time.filter(|pair| Some(pair.id()) == initial.one_time_prekey_id());
    let (session, plaintext) =
        Session::respond(&inner.identity, &signed, one_time, opened).map_err(|e| e.to_string())?;
    let content = Content::from_bytes(&plaintext).map_err(|e| e.to_string())?;
    Ok((session, content))
}

/// An initial message on an invite's mailbox: the invitee's `Hello` (§3a.3).
async fn accept_first_message(
    inner: &Arc<Inner>,
    mailbox: &OwnMailbox,
    opened: &OpenedEnvelope,
) -> Result<bool, EngineError> {
    let Some(record) = mailbox_invite(inner, mailbox)? else {
        return refuse(inner, "a mailbox with neither contact nor invite");
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
        Err(reason) => return refuse(inner, reason),
    };
    let Body::Hello {
        display_name,
        reply,
        sender_keys,
        signed_prekey,
    } = content.body
    else {
        return refuse(inner, "the first message is not a Hello");
    };
    if reply.is_empty() {
        return refuse(inner, "a Hello without a reply address");
    }
    let identity_bytes = IdentityKeyBytes::new(opened.sender().to_bytes().to_vec());
    // The contact (or the existing one it joins, §3a.5), the consumed invite, the peer's
    // addresses, the new session with its dedupe row, and our sealed Welcome: ONE transaction,
    // so a crash leaves either all of it or nothing (the relay then delivers the Hello again).
    let accepted = lock(&inner.store).transaction(|store| -> Result<ContactId, FirstContact> {
        let contact = match store.contact_by_identity_key(&identity_bytes)? {
            Some(existing) => existing.id,
            None => {
                let name = if display_name.trim().is_empty() {
                    "Contact".to_owned()
                } else {
                    display_name.trim().to_owned()
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
            let parts = super::PeerAddressParts {
                url: &address.url,
                send_id: &address.send_id,
                send_secret: &address.send_secret,
                sealing_public_key: &address.sealing_public_key,
            };
            welcome_keys.push(super::store_peer_address_with_new_sender_key(
                store, contact, &parts, now,
            )?);
        }
        store.commit_received(&Received {
            contact,
            envelope_id: EnvelopeId::from_bytes(opened.envelope_id().0),
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
                display_name: super::invite_name(&our_name),
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
                return refuse(inner, "the invite was deleted meanwhile");
            };
            return closed_invite_tried(inner, &record, opened);
        }
        Err(FirstContact::Engine(error)) => return Err(error),
    };
    inner.secure_wake.notify_one();
    inner.outbox_wake.notify_one();
    inner.emit(EngineEvent::ContactUpdated {
        contact_id: contact.to_string(),
    });
    Ok(true)
}

/// A first message on the mailbox of an invite that is no longer open. A copy of the very `Hello`
/// that consumed it (the accepter sends it once per relay of the invite, and the copies race
/// on separate relay connections, `docs/engine.md` § Misuse versus key change) is a duplicate:
/// ACKed, nothing shown, no warning. Anything else is an invite misuse. Returns whether to ACK.
fn closed_invite_tried(
    inner: &Inner,
    record: &crate::store::InviteRecord,
    opened: &OpenedEnvelope,
) -> Result<bool, EngineError> {
    if let Some(contact) = record.consumed_by {
        let store = lock(&inner.store);
        let same_sender = store.contact(contact)?.is_some_and(|row| {
            row.identity_key.as_bytes() == opened.sender().to_bytes().as_slice()
        });
        let envelope_id = EnvelopeId::from_bytes(opened.envelope_id().0);
        if same_sender && store.is_envelope_seen(contact, envelope_id)? {
            return Ok(true);
        }
    }
    inner.emit(EngineEvent::InviteMisuse {
        invite_id: record.id.to_string(),
    });
    refuse(inner, "a closed invite was tried")
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

/// Queues the SECURE that binds each of our mailboxes for `contact` to the sender key the peer
/// announced for it, and wakes [`secure_loop`], which sends it (and retries it until the relay
/// has it, across restarts).
///
/// The Hello path queues inside its first-contact transaction instead ([`queue_secures`]); the
/// Welcome path queues right after its batch commit, so a crash in between can lose that
/// SECURE (`docs/engine.md` § SECURE).
async fn secure_mailboxes(inner: &Inner, contact: ContactId, keys: &[SenderKey]) {
    queue_secures(&mut lock(&inner.store), contact, keys);
    inner.secure_wake.notify_one();
}

/// Queues the SECUREs of [`secure_mailboxes`] in `store` (inside the caller's transaction, if
/// any); a key naming an unknown mailbox or relay is skipped.
fn queue_secures(store: &mut crate::store::Store, contact: ContactId, keys: &[SenderKey]) {
    for key in keys {
        let Ok(url) = store_url(&key.url) else {
            continue;
        };
        let send_id = crate::store::SendId::new(key.send_id.clone());
        if let Err(error) = store.queue_secure(contact, &url, &send_id, &key.public_key) {
            tracing::warn!(%error, "could not queue a SECURE");
        }
    }
}

/// Sends every queued SECURE, each over a fresh owner connection, until none is left. After a
/// pass in which one failed it waits a jittered backoff; a new SECURE or a relay that comes
/// back online ([`Inner::secure_wake`]) starts a pass at once. Started on open, so SECUREs
/// queued before a restart go out after it.
pub(super) async fn secure_loop(weak: Weak<Inner>) {
    // The waits below hold only this Notify, not the engine, so a dropped engine is freed.
    let Some(wake) = weak.upgrade().map(|inner| inner.secure_wake.clone()) else {
        return;
    };
    let mut failures: u32 = 0;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let pending = match lock(&inner.store).pending_secures() {
            Ok(pending) => pending,
            Err(error) => {
                tracing::warn!(%error, "reading queued SECUREs failed");
                Vec::new()
            }
        };
        let mut failed = false;
        for item in pending {
            match secure_one(&inner, &item).await {
                Ok(()) => {
                    if let Err(error) = lock(&inner.store).complete_secure(
                        &item.relay_url,
                        &item.receive_id,
                        &item.sender_key,
                    ) {
                        tracing::warn!(%error, "could not record a SECURE as done");
                    }
                }
                Err(error) => {
                    tracing::info!(%error, "SECURE failed; retrying later");
                    failed = true;
                }
            }
        }
        let notified = wake.notified();
        if failed {
            failures = failures.saturating_add(1);
            let wait = backoff_delay(&inner, failures, false);
            drop(inner);
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(wait) => {}
            }
        } else {
            failures = 0;
            drop(inner);
            notified.await;
        }
    }
}

/// One SECURE over its own owner connection. `Ok` also when the relay says the mailbox is
/// already secured (an earlier try got through before its reply was lost) or unknown (it was
/// deleted or expired): nothing is left to do for it then.
async fn secure_one(
    inner: &Inner,
    item: &crate::store::PendingSecure,
) -> Result<(), sealpost_relay_client::ClientError> {
    use sealpost_relay_client::ClientError;
    let (Ok(public), Ok(receive_id), Ok(auth)) = (
        array32(&item.sender_key),
        array32(item.receive_id.as_bytes()),
        array32(item.auth_secret_key.expose_secret()),
    ) else {
        // Bytes that cannot be a key never will be: drop the SECURE.
        return Ok(());
    };
    let url = WireUrl::parse(item.relay_url.as_str())?;
    let auth = SigningKey::from_bytes(&auth);
    let connection = inner.connector.connect_owner(&url).await?;
    let result = connection
        .secure(
            sealpost_relay_client::ReceiveId(receive_id),
            AuthPublicKey(public),
            &auth,
        )
        .await;
    connection.close();
    match result {
        Ok(()) | Err(ClientError::AlreadySecured | ClientError::Unauthorized) => Ok(()),
        Err(error) => Err(error),
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
async fn peer_mismatch(
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
        return key_change(inner, contact, opened).await;
    }
    // T1 reflection or forgery: the sealed sender is not this mailbox's peer.
    refuse(inner, "the sealed sender is not this mailbox's peer")
}

/// What follows a committed envelope: SECURE for a Welcome, events, the delivery receipt.
async fn after_commit(
    inner: &Arc<Inner>,
    contact: ContactId,
    outcome: ReceiveOutcome,
    secure_with: Option<Vec<SenderKey>>,
) {
    if let Some(keys) = secure_with {
        secure_mailboxes(inner, contact, &keys).await;
    }
    match outcome {
        ReceiveOutcome::Stored(message) => {
            inner.emit(EngineEvent::MessageReceived {
                contact_id: contact.to_string(),
                message: MessageView::from(&message),
            });
            inner.queue_delivery_receipt(contact, message.seq.get());
        }
        ReceiveOutcome::ReceiptApplied { updated } => emit_receipt_states(inner, contact, updated),
        ReceiveOutcome::StoredWithReceipts { message, updated } => {
            emit_receipt_states(inner, contact, updated);
            inner.emit(EngineEvent::MessageReceived {
                contact_id: contact.to_string(),
                message: MessageView::from(&message),
            });
            inner.queue_delivery_receipt(contact, message.seq.get());
        }
        ReceiveOutcome::SessionUpdated | ReceiveOutcome::Duplicate => {}
    }
}

/// Emits the new state of each of our messages a receipt moved.
fn emit_receipt_states(inner: &Inner, contact: ContactId, updated: Vec<crate::store::MessageId>) {
    let store = lock(&inner.store);
    for id in updated {
        if let Ok(Some(message)) = store.message(id) {
            inner.emit(EngineEvent::MessageState {
                contact_id: contact.to_string(),
                message_id: id.to_string(),
                state: message.state.into(),
            });
        }
    }
}

/// T8: an initial message with another identity key on an existing contact's mailbox (one
/// whose address travelled only inside a sealed `Hello`, see [`peer_mismatch`]). It is held:
/// the contact is marked, sending is blocked, and the new session waits for the user, stored
/// with the held key in one write.
async fn key_change(
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

/// What the locked part of receiving decided for one envelope on a contact's mailbox.
enum Locked {
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
fn receive_run(
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
                let verified = super::identity_from_bytes(row.identity_key.as_bytes())
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
            // Groups are not wired into receiving yet (`docs/engine.md` § Groups).
            Body::GroupText { .. }
            | Body::GroupRoster { .. }
            | Body::GroupReceipts { .. }
            | Body::GroupIntroduction { .. } => ReceivedContent::SessionOnly,
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
