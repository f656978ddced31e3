//! Reliable delivery: the outbox task (send the exact sealed bytes, retry with jittered backoff)
//! and the inbound path (open → check the sender is the mailbox's peer → ratchet → commit →
//! only then ACK). `docs/engine.md` § Sending, § Receiving.

use std::sync::{Arc, Weak};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use sealpost_crypto::{
    MailboxSealingKey, OneTimePrekeyPair, OpenedEnvelope, Session, SessionMessage,
    SignedPrekeyPair, open_envelope,
};
use sealpost_relay_client::{
    AckHandle, AuthPublicKey, Inbound, RelayUrl as WireUrl, Retry, SendSecret,
};
use tokio::sync::mpsc;

use super::views::{EngineEvent, MessageStateView, MessageView};
use super::{EngineError, Inner, array32, hex_bytes, lock, random32, store_url};
use crate::content::{Body, CONTENT_VERSION, Content, ReceiptKindWire, SenderKey};
use crate::store::{
    ContactId, ConversationSeq, EnvelopeId, IdentityKeyBytes, KeyChangeOutcome, NewContact,
    OwnMailbox, PeerAddress, ReceiptKind, ReceiveId, ReceiveOutcome, Received, ReceivedContent,
    SealingPublicKeyBytes, SendId, SendSecretBytes, SenderAuthSecretBytes, SessionStateBytes,
    SignedPrekeyBytes, StoreError, UnixMillis,
};

const OUTBOX_BATCH: u32 = 256;
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
        let mut failed_urls: Vec<String> = Vec::new();
        for item in due {
            let url = item.relay_url.as_str().to_owned();
            if failed_urls.contains(&url) {
                continue;
            }
            let result = send_item(&inner, &item).await;
            match result {
                Ok(()) => {
                    let sent = lock(&inner.store).mark_outbox_sent(item.id);
                    if let Ok(Some(message)) = sent {
                        inner.emit(EngineEvent::MessageState {
                            contact_id: item.contact.to_string(),
                            message_id: message.to_string(),
                            state: MessageStateView::OnRelay,
                        });
                    }
                }
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
                    failed_urls.push(url);
                    let delay = backoff_delay(&inner, item.attempts, slow);
                    let at = UnixMillis(
                        UnixMillis::now()
                            .0
                            .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
                    );
                    let _ = lock(&inner.store).reschedule_outbox(item.id, at);
                }
            }
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

/// Handles one relay's deliveries: open, commit, then ACK.
pub(super) async fn inbound_loop(
    weak: Weak<Inner>,
    url: String,
    mut inbound: mpsc::Receiver<Inbound>,
    acks: AckHandle,
) {
    while let Some(item) = inbound.recv().await {
        let Some(inner) = weak.upgrade() else { return };
        if let Inbound::Message(delivery) = item {
            // A local failure (a busy disk, a lost race) is retried a few times before the
            // envelope is left unacknowledged for the relay to push again after a reconnect.
            let mut ack = false;
            for attempt in 0..4u64 {
                match handle_delivery(&inner, &url, &delivery.receive_id.0, &delivery.envelope)
                    .await
                {
                    Ok(done) => {
                        ack = done;
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(%error, attempt, "delivery not committed");
                        inner.emit(EngineEvent::EnvelopeRefused {
                            reason: format!("local failure, will retry: {error}"),
                        });
                        tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await;
                    }
                }
            }
            if ack {
                let _ = acks.ack(delivery.receive_id, delivery.message_id);
            }
        }
    }
}

fn refuse(inner: &Inner, reason: impl Into<String>) -> Result<bool, EngineError> {
    let reason = reason.into();
    tracing::info!(%reason, "envelope refused");
    inner.emit(EngineEvent::EnvelopeRefused { reason });
    Ok(true)
}

/// Returns whether to ACK: true once the envelope is committed, a duplicate, or refused for
/// good; false on a local failure (the relay pushes it again).
async fn handle_delivery(
    inner: &Arc<Inner>,
    url: &str,
    receive_id: &[u8; 32],
    envelope: &[u8],
) -> Result<bool, EngineError> {
    let store_relay = store_url(url)?;
    let mailbox = lock(&inner.store)
        .own_mailbox_by_receive_id(&store_relay, &ReceiveId::new(receive_id.to_vec()))?;
    let Some(mailbox) = mailbox else {
        return refuse(inner, "an envelope for an unknown mailbox");
    };
    let sealing = MailboxSealingKey::from_secret_bytes(&array32(
        mailbox.sealing_secret_key.expose_secret(),
    )?)?;
    let send_id = sealpost_crypto::SendId(array32(mailbox.send_id.as_bytes())?);
    let opened = match open_envelope(&sealing, &send_id, envelope) {
        Ok(opened) => opened,
        Err(error) => return refuse(inner, format!("did not open: {error}")),
    };
    match mailbox.contact {
        None => accept_first_message(inner, &mailbox, &opened).await,
        Some(contact) => contact_message(inner, contact, &mailbox, &opened).await,
    }
}

/// The invite's one-time prekey pair, if the mailbox came from an invite.
fn invite_prekey(
    inner: &Inner,
    mailbox: &OwnMailbox,
) -> Result<Option<(crate::store::InviteRecord, OneTimePrekeyPair)>, EngineError> {
    let Some(invite_id) = mailbox.invite else {
        return Ok(None);
    };
    let Some(record) = lock(&inner.store).invite(invite_id)? else {
        return Ok(None);
    };
    let pair = OneTimePrekeyPair::from_secret_bytes(record.one_time_prekey_secret.expose_secret())?;
    Ok(Some((record, pair)))
}

fn responder_session(
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
    let Some((record, one_time)) = invite_prekey(inner, mailbox)? else {
        return refuse(inner, "a mailbox with neither contact nor invite");
    };
    let now = UnixMillis::now();
    if record.status(now) != crate::store::InviteStatus::Open {
        inner.emit(EngineEvent::InviteMisuse {
            invite_id: record.id.to_string(),
        });
        return refuse(inner, "a closed invite was tried");
    }
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
    let (contact, welcome_keys) = {
        let mut store = lock(&inner.store);
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
            Err(StoreError::InviteUnavailable { .. }) => {
                inner.emit(EngineEvent::InviteMisuse {
                    invite_id: record.id.to_string(),
                });
                return refuse(inner, "the invite was used meanwhile");
            }
            Err(other) => return Err(other.into()),
        }
        if !signed_prekey.is_empty() {
            store.set_peer_signed_prekey(contact, &SignedPrekeyBytes::new(signed_prekey))?;
        }
        let mut welcome_keys = Vec::new();
        for address in &reply {
            let key = SigningKey::from_bytes(&random32()?);
            welcome_keys.push(SenderKey {
                url: address.url.clone(),
                send_id: address.send_id.clone(),
                public_key: key.verifying_key().to_bytes().to_vec(),
            });
            store.upsert_peer_address(&PeerAddress {
                contact,
                relay_url: store_url(&address.url)?,
                send_id: SendId::new(address.send_id.clone()),
                send_secret: SendSecretBytes::new(address.send_secret.clone()),
                sealing_public_key: SealingPublicKeyBytes::new(address.sealing_public_key.clone()),
                sender_auth_secret_key: SenderAuthSecretBytes::new(key.to_bytes().to_vec()),
                created_at: now,
            })?;
        }
        store.commit_received(&Received {
            contact,
            envelope_id: EnvelopeId::from_bytes(opened.envelope_id().0),
            session_state: SessionStateBytes::new(session.to_bytes()?.to_vec()),
            content: ReceivedContent::SessionOnly,
            received_at: now,
        })?;
        (contact, welcome_keys)
    };
    secure_mailboxes(inner, contact, &sender_keys).await;
    let our_name = lock(&inner.store)
        .profile()?
        .map(|p| p.display_name)
        .unwrap_or_default();
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
    {
        let mut store = lock(&inner.store);
        inner.seal_and_commit(&mut store, contact, None, &welcome)?;
    }
    inner.outbox_wake.notify_one();
    inner.emit(EngineEvent::ContactUpdated {
        contact_id: contact.to_string(),
    });
    Ok(true)
}

/// Binds each of our mailboxes for `contact` to the sender key the peer announced for it.
async fn secure_mailboxes(inner: &Inner, contact: ContactId, keys: &[SenderKey]) {
    let mailboxes = match lock(&inner.store).own_mailboxes_for_contact(contact) {
        Ok(mailboxes) => mailboxes,
        Err(_) => return,
    };
    for mailbox in mailboxes {
        let Some(key) = keys.iter().find(|key| {
            key.url == mailbox.relay_url.as_str() && key.send_id == mailbox.send_id.as_bytes()
        }) else {
            continue;
        };
        let (Ok(public), Ok(receive_id), Ok(auth), Ok(url)) = (
            array32(&key.public_key),
            array32(mailbox.receive_id.as_bytes()),
            array32(mailbox.auth_secret_key.expose_secret()),
            WireUrl::parse(mailbox.relay_url.as_str()),
        ) else {
            continue;
        };
        let auth = SigningKey::from_bytes(&auth);
        let result = match inner.sender.connection(&url).await {
            Ok(connection) => {
                connection
                    .secure(
                        sealpost_relay_client::ReceiveId(receive_id),
                        AuthPublicKey(public),
                        &auth,
                    )
                    .await
            }
            Err(error) => Err(error),
        };
        if let Err(error) = result {
            tracing::info!(%error, "SECURE failed (already secured, or relay offline)");
        }
    }
}

/// An envelope on a contact's mailbox.
async fn contact_message(
    inner: &Arc<Inner>,
    contact: ContactId,
    mailbox: &OwnMailbox,
    opened: &OpenedEnvelope,
) -> Result<bool, EngineError> {
    let (outcome, secure_with) = match receive_locked(inner, contact, opened)? {
        Locked::Done(ack) => return Ok(ack),
        Locked::Stored(outcome, secure_with) => (outcome, secure_with),
        Locked::PeerMismatch => {
            if let SessionMessage::Initial(initial) = opened.payload() {
                let invite = invite_prekey(inner, mailbox)?;
                if let Some((record, pair)) = &invite
                    && initial.one_time_prekey_id() == Some(pair.id())
                {
                    inner.emit(EngineEvent::InviteMisuse {
                        invite_id: record.id.to_string(),
                    });
                    return refuse(inner, "a second initial message for a used invite");
                }
                return key_change(inner, contact, opened).await;
            }
            // T1 reflection or forgery: the sealed sender is not this mailbox's peer.
            return refuse(inner, "the sealed sender is not this mailbox's peer");
        }
    };
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
        ReceiveOutcome::ReceiptApplied { updated } => {
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
        ReceiveOutcome::SessionUpdated | ReceiveOutcome::Duplicate => {}
    }
    Ok(true)
}

/// T8: an initial message with another identity key on an existing contact's mailbox. It is
/// held: the contact is marked, sending is blocked, and the new session waits for the user.
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
    let outcome = {
        let mut store = lock(&inner.store);
        let outcome = store.record_key_change(contact, &new_key, UnixMillis::now())?;
        if outcome == KeyChangeOutcome::Held {
            let state = session.to_bytes()?;
            store.set_setting(
                &format!("{}{contact}", super::PENDING_SESSION_KEY),
                &hex::encode(state.as_slice()),
            )?;
        }
        outcome
    };
    let _ = hex_bytes;
    if outcome == KeyChangeOutcome::Held {
        inner.emit(EngineEvent::KeyChanged {
            contact_id: contact.to_string(),
        });
    }
    Ok(true)
}

/// What the locked part of [`contact_message`] decided.
enum Locked {
    /// Finished (a duplicate, or refused): whether to ACK.
    Done(bool),
    /// The sealed sender is not the contact: a key change, an invite misuse or a reflection.
    PeerMismatch,
    /// Committed; SECURE our mailboxes with these keys if a Welcome carried them.
    Stored(ReceiveOutcome, Option<Vec<SenderKey>>),
}

/// Reads the contact's session, steps the ratchet and commits, under ONE hold of the store
/// lock: a seal for this contact in between (a send, a receipt) would otherwise be overwritten
/// by the stale state, and the next seal would reuse its message key.
fn receive_locked(
    inner: &Arc<Inner>,
    contact: ContactId,
    opened: &OpenedEnvelope,
) -> Result<Locked, EngineError> {
    let done = |result: Result<bool, EngineError>| result.map(Locked::Done);
    let now = UnixMillis::now();
    let envelope_id = EnvelopeId::from_bytes(opened.envelope_id().0);
    let mut store = lock(&inner.store);
    let Some(row) = store.contact(contact)? else {
        return done(refuse(inner, "the contact is gone"));
    };
    if store.is_envelope_seen(contact, envelope_id)? {
        // T5: a replay. Nothing is shown twice.
        return Ok(Locked::Done(true));
    }
    if row.blocked {
        return done(refuse(inner, "the contact is blocked"));
    }
    if row.identity_key.as_bytes() != opened.sender().to_bytes().as_slice() {
        return Ok(Locked::PeerMismatch);
    }
    let Some(state) = store.session_state(contact)? else {
        return done(refuse(inner, "no session with this contact"));
    };
    let mut session = Session::from_bytes(state.expose_secret())?;
    let plaintext = match session.receive(opened) {
        Ok(plaintext) => plaintext,
        Err(error) => return done(refuse(inner, format!("ratchet refused: {error}"))),
    };
    let content = match Content::from_bytes(&plaintext) {
        Ok(content) => content,
        Err(error) => return done(refuse(inner, format!("content: {error}"))),
    };
    let mut secure_with = None;
    let received_content = match &content.body {
        Body::Text { text } => match ConversationSeq::new(content.seq) {
            Some(seq) => ReceivedContent::Message {
                seq,
                body: text.clone(),
                sent_at: UnixMillis(i64::try_from(content.sent_at_ms).unwrap_or(0)),
            },
            None => ReceivedContent::SessionOnly,
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
            secure_with = Some(sender_keys.clone());
            ReceivedContent::SessionOnly
        }
        Body::PrekeyUpdate { signed_prekey } => {
            store
                .set_peer_signed_prekey(contact, &SignedPrekeyBytes::new(signed_prekey.clone()))?;
            ReceivedContent::SessionOnly
        }
        Body::Hello { .. } => ReceivedContent::SessionOnly,
    };
    let mut received = Received {
        contact,
        envelope_id,
        session_state: SessionStateBytes::new(session.to_bytes()?.to_vec()),
        content: received_content,
        received_at: now,
    };
    let outcome = match store.commit_received(&received) {
        // The same message over a second relay (its own seal): keep the session step only.
        Err(StoreError::Conflict { .. }) => {
            received.content = ReceivedContent::SessionOnly;
            store.commit_received(&received)?
        }
        other => other?,
    };
    Ok(Locked::Stored(outcome, secure_with))
}
