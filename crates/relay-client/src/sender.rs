//! [`Sender`]: SENDs over [`SendConnection`]s, which can do nothing else: never SUBSCRIBE,
//! never an owner command (`docs/threat-model.md`), so the relay cannot tie what a client sends
//! to the mailboxes it reads or owns.
//!
//! One lazily opened connection per relay URL, shared by concurrent callers (the protocol
//! pipelines requests). A connection that failed is dropped and the next call opens a new one.
//! Retrying is the caller's job (the engine's outbox); [`ClientError::retry`] says whether a
//! retry can help.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ed25519_dalek::SigningKey;
use sealpost_wire::{SendId, SendSecret};

use crate::connection::Connector;
use crate::error::ClientError;
use crate::roles::SendConnection;
use crate::url::RelayUrl;

type Slot = Arc<tokio::sync::Mutex<Option<SendConnection>>>;

/// A pool of send-only connections, one per relay.
pub struct Sender {
    connector: Connector,
    slots: Mutex<HashMap<RelayUrl, Slot>>,
}

impl Sender {
    /// An empty pool; connections open on first use.
    pub fn new(connector: Connector) -> Self {
        Self {
            connector,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, url: &RelayUrl) -> Slot {
        // A poisoned lock only means another caller panicked mid-insert; the map is still valid.
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.entry(url.clone()).or_default().clone()
    }

    /// The pooled send connection to `url`, opened if absent or closed.
    pub async fn connection(&self, url: &RelayUrl) -> Result<SendConnection, ClientError> {
        let slot = self.slot(url);
        let mut guard = slot.lock().await;
        if let Some(connection) = guard.as_ref().filter(|c| !c.is_closed()) {
            return Ok(connection.clone());
        }
        *guard = None;
        let connection = self.connector.connect_send(url).await?;
        *guard = Some(connection.clone());
        Ok(connection)
    }

    /// SENDs `envelope` to the mailbox `send_id` on `url`. `Ok(())` means the relay stored it
    /// durably. On error, [`ClientError::retry`] tells the outbox whether to try again; nothing
    /// is retried here.
    pub async fn send(
        &self,
        url: &RelayUrl,
        send_id: SendId,
        send_secret: &SendSecret,
        envelope: &[u8],
        sender_key: Option<&SigningKey>,
    ) -> Result<(), ClientError> {
        let connection = self.connection(url).await?;
        let result = connection
            .send(send_id, send_secret, envelope, sender_key)
            .await;
        if let Err(error) = &result
            && error.is_connection_lost()
        {
            // Only if the slot still holds this connection (another caller may have replaced it).
            let slot = self.slot(url);
            if let Ok(mut guard) = slot.try_lock()
                && guard
                    .as_ref()
                    .is_some_and(|pooled| pooled.same_as(&connection))
            {
                *guard = None;
            }
        }
        result
    }

    /// Closes and forgets the pooled connection to `url`, if any.
    pub fn forget(&self, url: &RelayUrl) {
        let slot = {
            let mut slots = self
                .slots
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            slots.remove(url)
        };
        if let Some(slot) = slot
            && let Ok(mut guard) = slot.try_lock()
            && let Some(connection) = guard.take()
        {
            connection.close();
        }
    }

    /// Closes every pooled connection.
    pub fn close_all(&self) {
        let slots: Vec<Slot> = {
            let mut slots = self
                .slots
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            slots.drain().map(|(_, slot)| slot).collect()
        };
        for slot in slots {
            if let Ok(mut guard) = slot.try_lock()
                && let Some(connection) = guard.take()
            {
                connection.close();
            }
        }
    }
}
