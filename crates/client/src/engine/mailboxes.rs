//! Our mailboxes on relays: CREATE, storing and subscribing them, the per-relay subscriber and its
//! connection state, and DELETE of mailboxes no longer needed.

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use sealpost_crypto::MailboxSealingKey;
use sealpost_relay_client::{
    ClientError, ConnectionState, RelayUrl as WireUrl, SendSecret, Subscriber, SubscriberConfig,
};

use super::error::EngineError;
use super::inbound::inbound_loop;
use super::settings::relay_password;
use super::state::{Engine, Inner, array32, lock, random32, store_url};
use super::views::*;
use crate::store::{
    MailboxAuthSecretBytes, MailboxOwner, NewOwnMailbox, OwnMailbox, ReceiveId, SealingSecretBytes,
    SendId, Store, UnixMillis,
};

/// A mailbox just CREATEd on a relay, before it is stored.
pub(crate) struct CreatedMailbox {
    pub(super) url: String,
    pub(super) receive_id: [u8; 32],
    pub(super) send_id: [u8; 32],
    pub(super) send_secret: SendSecret,
    pub(super) auth: SigningKey,
    pub(super) sealing: MailboxSealingKey,
}

impl Inner {
    pub(super) async fn create_mailbox(
        self: &Arc<Self>,
        url: &str,
    ) -> Result<CreatedMailbox, EngineError> {
        let wire_url = self.check_relay_url(url)?;
        let auth = SigningKey::from_bytes(&random32()?);
        let send_secret = SendSecret::new(random32()?);
        let sealing = MailboxSealingKey::generate()?;
        let password = {
            let url = url.to_owned();
            self.on_store(move |store| relay_password(store, &url))
                .await?
        };
        // A fresh owner connection per CREATE (`docs/threat-model.md` § connection roles).
        let connection = self.connector.connect_owner(&wire_url).await?;
        let (receive_id, send_id) = connection
            .create(
                &auth,
                &send_secret,
                password.as_ref().map(RelayPassword::expose_secret),
            )
            .await?;
        connection.close();
        Ok(CreatedMailbox {
            url: url.to_owned(),
            receive_id: receive_id.0,
            send_id: send_id.0,
            send_secret,
            auth,
            sealing,
        })
    }

    pub(super) fn store_own_mailbox(
        self: &Arc<Self>,
        store: &mut Store,
        owner: MailboxOwner,
        mailbox: CreatedMailbox,
        now: UnixMillis,
    ) -> Result<(), EngineError> {
        store.insert_own_mailbox(NewOwnMailbox {
            owner,
            relay_url: store_url(&mailbox.url)?,
            receive_id: ReceiveId(mailbox.receive_id),
            send_id: SendId(mailbox.send_id),
            auth_secret_key: MailboxAuthSecretBytes::new(mailbox.auth.to_bytes().to_vec()),
            sealing_secret_key: SealingSecretBytes::new(mailbox.sealing.to_secret_bytes().to_vec()),
            created_at: now,
        })?;
        self.subscribe(&mailbox.url, mailbox.receive_id, mailbox.auth)
    }

    /// [`Inner::subscribe`] for a stored own mailbox (on open and on a new route).
    pub(super) fn subscribe_own(self: &Arc<Self>, mailbox: &OwnMailbox) -> Result<(), EngineError> {
        let auth = SigningKey::from_bytes(&array32(mailbox.auth_secret_key.expose_secret())?);
        self.subscribe(
            mailbox.relay_url.as_str(),
            array32(mailbox.receive_id.as_bytes())?,
            auth,
        )
    }

    /// Adds a mailbox to its relay's subscriber (starting the subscriber if needed).
    pub(super) fn subscribe(
        self: &Arc<Self>,
        url: &str,
        receive_id: [u8; 32],
        auth: SigningKey,
    ) -> Result<(), EngineError> {
        let mut subscribers = lock(&self.subscribers);
        if !subscribers.contains_key(url) {
            let wire_url = self.check_relay_url(url)?;
            let config = SubscriberConfig {
                backoff: self.backoff,
                ..SubscriberConfig::default()
            };
            let (subscriber, inbound) = Subscriber::spawn(self.connector.clone(), wire_url, config);
            let states = subscriber.state_events();
            let acks = subscriber.ack_handle();
            let weak = Arc::downgrade(self);
            let url_owned = url.to_owned();
            let inbound_task =
                tokio::spawn(inbound_loop(weak.clone(), url_owned.clone(), inbound, acks));
            let state_task = tokio::spawn(state_loop(weak, url_owned.clone(), states));
            self.track(inbound_task);
            self.track(state_task);
            lock(&self.connections).insert(
                url_owned,
                RelayConnection {
                    relay_url: url.to_owned(),
                    state: ConnectionStateView::Connecting,
                    retry_in_seconds: None,
                },
            );
            subscribers.insert(url.to_owned(), subscriber);
        }
        if let Some(subscriber) = subscribers.get(url) {
            subscriber
                .add(sealpost_relay_client::ReceiveId(receive_id), auth)
                .map_err(EngineError::SubscriberGone)?;
        }
        Ok(())
    }

    /// Stops every subscriber and subscribes every own mailbox again (a new route: proxy set,
    /// changed or removed). The old subscribers' tasks end with their channels.
    pub(super) async fn resubscribe_all(self: &Arc<Self>) -> Result<(), EngineError> {
        let subscribers: Vec<Subscriber> =
            lock(&self.subscribers).drain().map(|(_, s)| s).collect();
        for subscriber in subscribers {
            subscriber.shutdown().await;
        }
        lock(&self.connections).clear();
        let mailboxes = self.on_store(|store| Ok(store.own_mailboxes()?)).await?;
        for mailbox in &mailboxes {
            self.subscribe_own(mailbox)?;
        }
        self.connection_event();
        Ok(())
    }

    pub(super) fn unsubscribe(&self, deletions: &[crate::store::MailboxDeletion]) {
        let subscribers = lock(&self.subscribers);
        for deletion in deletions {
            if let (Some(subscriber), Ok(id)) = (
                subscribers.get(deletion.relay_url.as_str()),
                array32(deletion.receive_id.as_bytes()),
            ) {
                let _ = subscriber.remove(sealpost_relay_client::ReceiveId(id));
            }
        }
    }

    /// DELETEs queued mailboxes on their relays in the background (retried on the next start).
    pub(super) fn spawn_deletions(self: Arc<Self>) {
        let weak = Arc::downgrade(&self);
        let task = tokio::spawn(async move {
            let Some(inner) = weak.upgrade() else { return };
            let pending = match inner
                .on_store(|store| Ok(store.pending_mailbox_deletions()?))
                .await
            {
                Ok(pending) => pending,
                Err(_) => return,
            };
            for deletion in pending {
                let Ok(url) = WireUrl::parse(deletion.relay_url.as_str()) else {
                    continue;
                };
                let (Ok(id), Ok(auth)) = (
                    array32(deletion.receive_id.as_bytes()),
                    array32(deletion.auth_secret_key.expose_secret()),
                ) else {
                    continue;
                };
                let auth = SigningKey::from_bytes(&auth);
                // A fresh owner connection per DELETE: deleting several mailboxes (a contact's
                // on each relay, an invite's) must not tie them together on one connection.
                let result = match inner.connector.connect_owner(&url).await {
                    Ok(connection) => {
                        let result = connection
                            .delete(sealpost_relay_client::ReceiveId(id), &auth)
                            .await;
                        connection.close();
                        result
                    }
                    Err(error) => Err(error),
                };
                let done = match result {
                    Ok(()) => true,
                    Err(error) => matches!(error, ClientError::Unauthorized),
                };
                if done {
                    let (relay_url, receive_id) = (deletion.relay_url, deletion.receive_id);
                    let _ = inner
                        .on_store(move |store| {
                            Ok(store.complete_mailbox_deletion(&relay_url, &receive_id)?)
                        })
                        .await;
                }
            }
        });
        self.track(task);
    }

    fn connection_event(&self) {
        let connections = lock(&self.connections).values().cloned().collect();
        self.emit(EngineEvent::ConnectionState { connections });
    }
}

async fn state_loop(
    weak: std::sync::Weak<Inner>,
    url: String,
    mut states: tokio::sync::broadcast::Receiver<ConnectionState>,
) {
    loop {
        let state = match states.recv().await {
            Ok(state) => state,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let Some(inner) = weak.upgrade() else { return };
        let view = match state {
            ConnectionState::Connecting => (ConnectionStateView::Connecting, None),
            ConnectionState::Connected => (ConnectionStateView::Connected, None),
            ConnectionState::Offline {
                retry_in,
                error: ClientError::Proxy(_),
            } => (
                ConnectionStateView::ProxyUnreachable,
                Some(retry_in.as_secs()),
            ),
            ConnectionState::Offline { retry_in, .. } => {
                (ConnectionStateView::Offline, Some(retry_in.as_secs()))
            }
        };
        if view.0 == ConnectionStateView::Connected {
            inner.outbox_wake.notify_one();
            inner.secure_wake.notify_one();
        }
        lock(&inner.connections).insert(
            url.clone(),
            RelayConnection {
                relay_url: url.clone(),
                state: view.0,
                retry_in_seconds: view.1,
            },
        );
        inner.connection_event();
    }
}

impl Engine {
    /// The current relay connections.
    pub fn connections(&self) -> Vec<RelayConnection> {
        lock(&self.inner.connections).values().cloned().collect()
    }
}
