//! The send path: `send_message` stores, seals and queues in one transaction; the outbox task
//! sends the exact sealed bytes and retries with jittered backoff (`docs/engine.md` § Sending).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use futures_util::FutureExt;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use sealpost_relay_client::{RelayUrl as WireUrl, Retry, SendSecret};

use super::disappearing::outgoing_body;
use super::error::EngineError;
use super::state::{Engine, Inner, array32, backoff_delay, lock, parse_contact};
use super::views::*;
use crate::content::{CONTENT_VERSION, Content, MAX_TEXT_BYTES};
use crate::store::UnixMillis;
use crate::store::{ContactId, OutgoingContent, PeerAddress};

const OUTBOX_BATCH: u32 = 256;

/// Most SENDs in flight at once from the outbox.
const SEND_IN_FLIGHT: usize = 32;

const IDLE_WAIT: Duration = Duration::from_millis(1000);

impl Engine {
    /// `send_message`: stores, seals once and queues the message; returns it `queued`.
    pub async fn send_message(
        &self,
        contact_id: &str,
        text: &str,
    ) -> Result<MessageView, EngineError> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(EngineError::MessageTooLong);
        }
        if text.trim().is_empty() {
            return Err(EngineError::InvalidInput("empty message".into()));
        }
        let contact = parse_contact(contact_id)?;
        let now = self.inner.clock.now();
        // Store, seal once and queue in ONE transaction (seal once, `docs/engine.md` § Sending; one
        // fsync before the SEND).
        // Pending delivery receipts for this contact ride inside this message (`docs/engine.md`
        // § Inside a ratchet message): they are
        // taken out of the queue, under the store lock, before sealing, so the receipt timer
        // finds nothing to send alone; if the transaction fails they are queued again.
        let text = text.to_owned();
        let (result, riding) = self
            .inner
            .blocking(move |inner| {
                let mut riding: Vec<u64> = Vec::new();
                let mut store = lock(&inner.store);
                // Sent with the chat's disappearing timer (`docs/engine.md` § Disappearing
                // messages); what expired goes first.
                let timer = inner
                    .sweep_expired(&mut store)
                    .and_then(|()| Ok(store.chat_timer(contact)?.timer));
                let timer = match timer {
                    Ok(timer) => timer,
                    Err(error) => return Ok((Err(error), riding)),
                };
                let outgoing = OutgoingContent::Text { body: &text, timer };
                let result = store.insert_and_seal_outgoing_content(
                    contact,
                    outgoing,
                    now,
                    |store, message| {
                        riding = lock(&inner.receipts).remove(&contact).unwrap_or_default();
                        let content = Content {
                            v: CONTENT_VERSION,
                            seq: message.seq.get(),
                            sent_at_ms: u64::try_from(now.0).unwrap_or(0),
                            body: outgoing_body(message),
                            receipts: riding
                                .iter()
                                .map(|seq| crate::content::Receipt {
                                    kind: crate::content::ReceiptKindWire::Delivered,
                                    seq: *seq,
                                })
                                .collect(),
                        };
                        inner.seal_for(store, contact, Some(message.id), &content)
                    },
                );
                Ok((result, riding))
            })
            .await?;
        let (message, _) = match result {
            Ok(done) => done,
            Err(error) => {
                for seq in riding {
                    self.inner.queue_delivery_receipt(contact, seq);
                }
                return Err(error);
            }
        };
        self.inner.outbox_wake.notify_one();
        Ok(MessageView::from(&message))
    }
}

/// Sends due outbox items until the engine goes away.
pub(super) async fn outbox_loop(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let now = UnixMillis::now();
        let due = inner
            .on_store(move |store| Ok(store.due_outbox(now, OUTBOX_BATCH)?))
            .await;
        let due = match due {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "outbox read failed");
                Vec::new()
            }
        };
        if due.is_empty() {
            let next = inner
                .on_store(|store| Ok(store.next_outbox_attempt_at()?))
                .await
                .ok()
                .flatten();
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
    // Every item's address, looked up in one store call before the first SEND. With one lookup
    // per SEND, each on the blocking pool, the SENDs started in whatever order those lookups
    // ended, so quick successive messages could reach the relay out of order (`docs/engine.md`
    // § Sending).
    let contacts: HashSet<ContactId> = due.iter().map(|item| item.contact).collect();
    let addresses = inner
        .on_store(move |store| {
            let mut addresses = HashMap::with_capacity(contacts.len());
            for contact in contacts {
                addresses.insert(contact, store.peer_addresses(contact)?);
            }
            Ok(addresses)
        })
        .await;
    let addresses = match addresses {
        Ok(addresses) => addresses,
        // Not the items' fault (a store read failed, or the runtime is going away): they stay
        // due and are tried again on the next pass.
        Err(error) => {
            tracing::warn!(%error, "outbox addresses not read; the items stay due");
            // Not at once again: the outbox loop reads the due items right after this.
            tokio::time::sleep(IDLE_WAIT).await;
            return;
        }
    };
    let mut pending = due.into_iter();
    let mut in_flight = FuturesUnordered::new();
    let mut failed_urls: HashSet<String> = HashSet::new();
    loop {
        while in_flight.len() < SEND_IN_FLIGHT {
            let Some(item) = pending.next() else { break };
            if failed_urls.contains(item.relay_url.as_str()) {
                continue;
            }
            let address = addresses.get(&item.contact).and_then(|list| {
                list.iter()
                    .find(|a| a.relay_url == item.relay_url && a.send_id == item.send_id)
            });
            in_flight.push(async move {
                let result = send_item(inner, &item, address).await;
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
                    let id = item.id;
                    let failed = inner
                        .on_store(move |store| {
                            store.transaction(|store| -> Result<_, EngineError> {
                                // A group copy given up may settle its message (`store/groups.rs`).
                                let groups = store.group_messages_of_outbox(&[id])?;
                                let failed = store.give_up_outbox(id)?;
                                Ok((failed, store.refresh_group_message_states(&groups)?))
                            })
                        })
                        .await;
                    if let Ok((failed, progress)) = failed {
                        if let Some(message) = failed {
                            inner.emit(EngineEvent::MessageState {
                                contact_id: item.contact.to_string(),
                                message_id: message.to_string(),
                                state: MessageStateView::Failed,
                            });
                        }
                        inner.emit_group_progress(&progress);
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
                    let id = item.id;
                    let _ = inner
                        .on_store(move |store| Ok(store.reschedule_outbox(id, at)?))
                        .await;
                }
            }
        }
        if sent.is_empty() {
            continue;
        }
        let ids: Vec<_> = sent.iter().map(|item| item.id).collect();
        let changed = inner
            .on_store(move |store| {
                store.transaction(|store| -> Result<_, EngineError> {
                    // The relay's OK moves a group copy to on relay (a trigger); its message's
                    // state follows its copies (`store/groups.rs`).
                    let groups = store.group_messages_of_outbox(&ids)?;
                    let changed = store.mark_outbox_sent_batch(&ids)?;
                    Ok((changed, store.refresh_group_message_states(&groups)?))
                })
            })
            .await;
        match changed {
            Ok((changed, progress)) => {
                inner.emit_group_progress(&progress);
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

/// SENDs one item to `address`: its contact's address on the item's relay, `None` when that is
/// gone (looked up by [`send_due`] for the whole pass).
async fn send_item(
    inner: &Arc<Inner>,
    item: &crate::store::OutboxItem,
    address: Option<&PeerAddress>,
) -> Result<(), SendFailure> {
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
        // Our SENDs always come with the key we announced (the relay client proves it once per
        // connection and mailbox, a sender session, docs/relay-protocol.md § 4.4); a SenderAuth
        // refusal on the first attempts is the relay's SEND racing the peer's SECURE (its lookup
        // saw the mailbox unsecured, its append saw it secured). Retrying the same bytes succeeds.
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
