//! The subscription hub: which connection currently receives which mailbox.
//!
//! The store's append listener calls [`Hub::notify`] in commit order; the hub forwards the new
//! envelope to the subscribed connection's event queue, if any. One mailbox has at most one
//! subscriber; a new SUBSCRIBE takes it over and the old connection gets [`ConnectionEvent::Ended`].
//!
//! With several nodes on one PostgreSQL database the hub is also the store's [`Cluster`]: an
//! envelope stored by another node becomes [`ConnectionEvent::MaybeNew`] (the connection
//! fetches it), and a SUBSCRIBE on another node, committed after this node announced its own,
//! ends the subscription here as a local takeover would.

use std::collections::HashMap;
use std::sync::Mutex;

use sealpost_wire::ReceiveId;
use tokio::sync::mpsc;

use crate::store::{Cluster, StoredEnvelope};

/// Events a connection receives from outside its own request handling. Each payload is boxed
/// so the event is 16 bytes: every connection's event channel allocates room for 32 of them up
/// front, idle or not.
#[derive(Debug)]
pub(crate) enum ConnectionEvent {
    /// An envelope was committed to a mailbox this connection subscribes.
    Appended(Box<(ReceiveId, StoredEnvelope)>),
    /// Another connection took over (or the mailbox was deleted).
    Ended(Box<ReceiveId>),
    /// Another relay node may have stored envelopes for this mailbox: fetch from the store.
    MaybeNew(Box<ReceiveId>),
}

struct Subscriber {
    connection_id: u64,
    events: mpsc::UnboundedSender<ConnectionEvent>,
    /// This node's announcement of the subscription was committed to the shared database;
    /// until then, announcements from other nodes predate it and do not end it.
    announced: bool,
}

/// Mailbox → subscribed connection.
#[derive(Default)]
pub(crate) struct Hub {
    subscribers: Mutex<HashMap<ReceiveId, Subscriber>>,
}

impl Hub {
    /// Makes `connection_id` the subscriber of `receive_id`, ending any other one.
    pub(crate) fn subscribe(
        &self,
        receive_id: ReceiveId,
        connection_id: u64,
        events: mpsc::UnboundedSender<ConnectionEvent>,
    ) {
        let previous = self
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                receive_id,
                Subscriber {
                    connection_id,
                    events,
                    announced: false,
                },
            );
        if let Some(previous) = previous
            && previous.connection_id != connection_id
        {
            let _ = previous
                .events
                .send(ConnectionEvent::Ended(Box::new(receive_id)));
        }
    }

    /// Removes the subscription if `connection_id` still holds it.
    pub(crate) fn unsubscribe(&self, receive_id: &ReceiveId, connection_id: u64) {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        if subscribers
            .get(receive_id)
            .is_some_and(|s| s.connection_id == connection_id)
        {
            subscribers.remove(receive_id);
        }
    }

    /// Removes any subscription of a deleted mailbox, telling its connection.
    pub(crate) fn remove(&self, receive_id: &ReceiveId) {
        let removed = self
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(receive_id);
        if let Some(subscriber) = removed {
            let _ = subscriber
                .events
                .send(ConnectionEvent::Ended(Box::new(*receive_id)));
        }
    }

    /// Forwards a committed envelope to the mailbox's subscriber, if any.
    pub(crate) fn notify(&self, receive_id: ReceiveId, stored: StoredEnvelope) {
        let subscribers = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(subscriber) = subscribers.get(&receive_id) {
            let _ = subscriber
                .events
                .send(ConnectionEvent::Appended(Box::new((receive_id, stored))));
        }
    }
}

impl Cluster for Hub {
    fn subscribed(&self) -> Vec<ReceiveId> {
        let subscribers = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        subscribers.keys().copied().collect()
    }

    fn appended_elsewhere(&self, receive_ids: &[ReceiveId]) {
        let subscribers = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        for receive_id in receive_ids {
            if let Some(subscriber) = subscribers.get(receive_id) {
                let _ = subscriber
                    .events
                    .send(ConnectionEvent::MaybeNew(Box::new(*receive_id)));
            }
        }
    }

    fn announced_here(&self, receive_id: &ReceiveId) {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(subscriber) = subscribers.get_mut(receive_id) {
            subscriber.announced = true;
        }
    }

    fn subscribed_elsewhere(&self, receive_id: &ReceiveId) {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        if subscribers.get(receive_id).is_some_and(|s| s.announced)
            && let Some(subscriber) = subscribers.remove(receive_id)
        {
            let _ = subscriber
                .events
                .send(ConnectionEvent::Ended(Box::new(*receive_id)));
        }
    }
}
