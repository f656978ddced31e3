//! Receipts we send (delivery receipts after a random delay, read receipts on `mark_read`) and
//! the events for receipts we receive.

use std::sync::Arc;
use std::time::Duration;

use super::error::EngineError;
use super::seal::receipts_only;
use super::settings::read_settings;
use super::state::{Engine, Inner, lock, parse_contact};
use super::views::*;
use crate::store::{ContactId, ConversationSeq, Direction, MessagePosition};

impl Engine {
    /// `mark_read`: marks incoming messages up to `up_to_seq` read and, if the setting is on,
    /// queues a read receipt.
    pub async fn mark_read(&self, contact_id: &str, up_to_seq: u64) -> Result<(), EngineError> {
        let contact = parse_contact(contact_id)?;
        let seq = ConversationSeq::new(up_to_seq)
            .ok_or_else(|| EngineError::InvalidInput("upToSeq".into()))?;
        let mut store = lock(&self.inner.store);
        let read = store.mark_read(
            contact,
            MessagePosition {
                seq,
                direction: Direction::Outgoing,
            },
        )?;
        if !read.is_empty() && read_settings(&store)?.read_receipts {
            let receipts = read
                .iter()
                .map(|seq| crate::content::Receipt {
                    kind: crate::content::ReceiptKindWire::Read,
                    seq: seq.get(),
                })
                .collect();
            let contact_row = store
                .contact(contact)?
                .ok_or(EngineError::ContactNotFound)?;
            if contact_row.sending_blocked_reason().is_none() {
                self.inner
                    .seal_and_commit(&mut store, contact, None, &receipts_only(receipts))?;
                drop(store);
                self.inner.outbox_wake.notify_one();
            }
        }
        Ok(())
    }
}

impl Inner {
    /// Queues a delivery receipt for `seq`, sent alone after a random delay (§3a.7).
    pub(crate) fn queue_delivery_receipt(self: &Arc<Self>, contact: ContactId, seq: u64) {
        if !self.delivery_receipts {
            return;
        }
        let first = {
            let mut receipts = lock(&self.receipts);
            let entry = receipts.entry(contact).or_default();
            entry.push(seq);
            entry.len() == 1
        };
        if !first {
            return;
        }
        let (low, high) = self.receipt_delay;
        let spread = high.saturating_sub(low).as_millis();
        let mut random = [0u8; 8];
        let _ = getrandom::fill(&mut random);
        let jitter = if spread == 0 {
            0
        } else {
            u128::from(u64::from_le_bytes(random)) % spread
        };
        let delay = low + Duration::from_millis(u64::try_from(jitter).unwrap_or(0));
        let weak = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let Some(inner) = weak.upgrade() else { return };
            let seqs = lock(&inner.receipts).remove(&contact).unwrap_or_default();
            if seqs.is_empty() {
                return;
            }
            let receipts = seqs
                .into_iter()
                .map(|seq| crate::content::Receipt {
                    kind: crate::content::ReceiptKindWire::Delivered,
                    seq,
                })
                .collect();
            let result = {
                let mut store = lock(&inner.store);
                inner.seal_and_commit(&mut store, contact, None, &receipts_only(receipts))
            };
            match result {
                Ok(()) => inner.outbox_wake.notify_one(),
                Err(error) => tracing::debug!(%error, "delivery receipt not sent"),
            }
        });
        self.track(task);
    }
}

/// Emits the new state of each of our messages a receipt moved.
pub(super) fn emit_receipt_states(
    inner: &Inner,
    contact: ContactId,
    updated: Vec<crate::store::MessageId>,
) {
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
