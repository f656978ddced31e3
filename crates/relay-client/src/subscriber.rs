//! [`Subscriber`]: one long-lived task per relay that keeps ONE subscription connection up,
//! subscribes a changing set of mailboxes, reconnects with jittered backoff, reports its
//! [`ConnectionState`], and hands pushed envelopes to the engine with back-pressure.
//!
//! Delivery contract with the engine:
//!
//! 1. Envelopes arrive as [`Inbound::Message`] on a bounded channel. While the engine does not
//!    read it, the subscriber stops reading the socket and the relay holds further pushes back
//!    (its window), so nothing piles up in memory.
//! 2. The engine commits the envelope (or its refusal) and only then calls [`AckHandle::ack`].
//!    ACKs go out on whatever connection is current; an ACK made while offline, or lost to a
//!    reconnect, is simply dropped: the relay re-pushes the envelope after the next SUBSCRIBE
//!    and the engine's envelope-id dedupe drops the repeat.
//! 3. An envelope can therefore arrive more than once. Never rely on the relay's message id or
//!    time for ordering or dedupe.
//!
//! Its connection is a [`SubscribeConnection`]: no SEND and no owner command can go over it
//! (`docs/threat-model.md`); use [`crate::Sender`] and [`crate::Connector::connect_owner`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use sealpost_wire::{MessageId, ReceiveId};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::backoff::{Backoff, BackoffConfig};
use crate::connection::{Connector, Pushed, Pushes};
use crate::error::ClientError;
use crate::roles::SubscribeConnection;
use crate::url::RelayUrl;

/// Settings of a [`Subscriber`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriberConfig {
    /// Reconnect backoff.
    pub backoff: BackoffConfig,
    /// Capacity of the channel of [`Inbound`] items to the engine. Default 64.
    pub delivery_capacity: usize,
}

impl Default for SubscriberConfig {
    fn default() -> Self {
        Self {
            backoff: BackoffConfig::default(),
            delivery_capacity: 64,
        }
    }
}

/// The state of a subscriber's connection, for the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Opening the connection (TCP, TLS, WebSocket, HELLO).
    Connecting,
    /// Connected; SUBSCRIBEs for every mailbox were sent.
    Connected,
    /// Not connected; the next attempt starts after `retry_in`.
    Offline {
        /// Delay before the next attempt.
        retry_in: Duration,
        /// Why the last connection or attempt failed.
        error: ClientError,
    },
}

/// An envelope pushed by the relay for one of the subscribed mailboxes.
#[derive(Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The mailbox.
    pub receive_id: ReceiveId,
    /// The relay's id: pass it to [`AckHandle::ack`] after the commit.
    pub message_id: MessageId,
    /// The relay's storage time (Unix seconds); informative only.
    pub received_at: u64,
    /// The sealed envelope bytes.
    pub envelope: Vec<u8>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("receive_id", &self.receive_id)
            .field("message_id", &self.message_id)
            .field("received_at", &self.received_at)
            .field("envelope_len", &self.envelope.len())
            .finish()
    }
}

/// What a subscriber hands to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// An envelope to open, commit and then ACK.
    Message(Delivery),
    /// Another connection (another running copy of this profile?) subscribed the mailbox; this
    /// subscriber gets no more of it until it reconnects.
    Ended {
        /// The mailbox.
        receive_id: ReceiveId,
    },
    /// The relay refused SUBSCRIBE for a mailbox for a reason other than a lost connection,
    /// e.g. [`ClientError::Unauthorized`] for a mailbox that expired or was deleted. It stays in
    /// the set (and is retried on the next reconnect) until [`Subscriber::remove`].
    SubscribeFailed {
        /// The mailbox.
        receive_id: ReceiveId,
        /// The refusal.
        error: ClientError,
    },
}

/// The subscriber task is gone (shut down, or the engine dropped the delivery receiver).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the relay subscriber has stopped")]
pub struct SubscriberGone;

enum Control {
    Add(ReceiveId, Arc<SigningKey>),
    Remove(ReceiveId),
    Ack(ReceiveId, Vec<MessageId>),
    Shutdown,
}

/// Lets the engine ACK delivered envelopes after its commit. Cheap to clone.
#[derive(Clone)]
pub struct AckHandle {
    control: mpsc::UnboundedSender<Control>,
}

impl AckHandle {
    /// Queues an ACK for the current connection. Never blocks. If offline, it is dropped and the
    /// relay re-pushes the envelope later (harmless: the engine dedupes by envelope id).
    pub fn ack(&self, receive_id: ReceiveId, message_id: MessageId) -> Result<(), SubscriberGone> {
        self.ack_many(receive_id, vec![message_id])
    }

    /// Queues one ACK of several envelopes of one mailbox (split into frames of at most
    /// [`sealpost_wire::MAX_ACK_IDS`] ids); on the subscribing connection it carries no
    /// signature (protocol version 4), so the relay checks none.
    /// Call it only after the envelopes are durably stored. Never blocks; offline, it is
    /// dropped as [`AckHandle::ack`] is.
    pub fn ack_many(
        &self,
        receive_id: ReceiveId,
        message_ids: Vec<MessageId>,
    ) -> Result<(), SubscriberGone> {
        if message_ids.is_empty() {
            return Ok(());
        }
        self.control
            .send(Control::Ack(receive_id, message_ids))
            .map_err(|_| SubscriberGone)
    }
}

/// One relay's subscription supervisor. See the module docs.
pub struct Subscriber {
    url: RelayUrl,
    control: mpsc::UnboundedSender<Control>,
    state: watch::Receiver<ConnectionState>,
    events: broadcast::Sender<ConnectionState>,
    task: JoinHandle<()>,
}

impl Subscriber {
    /// Starts the supervisor task for `url` on the current Tokio runtime. Returns the handle and
    /// the receiver of [`Inbound`] items. Dropping that receiver stops the subscriber.
    pub fn spawn(
        connector: Connector,
        url: RelayUrl,
        config: SubscriberConfig,
    ) -> (Self, mpsc::Receiver<Inbound>) {
        let (control, control_receiver) = mpsc::unbounded_channel();
        let (state_sender, state) = watch::channel(ConnectionState::Connecting);
        let (events, _) = broadcast::channel(64);
        let (deliveries, delivery_receiver) = mpsc::channel(config.delivery_capacity.max(1));
        let task = SubscriberTask {
            connector,
            url: url.clone(),
            control: control_receiver,
            deliveries,
            state: state_sender,
            events: events.clone(),
            mailboxes: HashMap::new(),
            backoff: Backoff::new(config.backoff),
        };
        let task = tokio::spawn(task.run());
        (
            Self {
                url,
                control,
                state,
                events,
                task,
            },
            delivery_receiver,
        )
    }

    /// The relay this subscriber serves.
    pub fn url(&self) -> &RelayUrl {
        &self.url
    }

    /// Adds a mailbox (or replaces its key) and subscribes it now if connected.
    pub fn add(&self, receive_id: ReceiveId, auth_key: SigningKey) -> Result<(), SubscriberGone> {
        self.control
            .send(Control::Add(receive_id, Arc::new(auth_key)))
            .map_err(|_| SubscriberGone)
    }

    /// Removes a mailbox: nothing more of it is delivered, and it is not subscribed again. (The
    /// relay protocol has no UNSUBSCRIBE; the current connection may still receive its pushes,
    /// which are dropped unacknowledged.)
    pub fn remove(&self, receive_id: ReceiveId) -> Result<(), SubscriberGone> {
        self.control
            .send(Control::Remove(receive_id))
            .map_err(|_| SubscriberGone)
    }

    /// A handle to ACK deliveries.
    pub fn ack_handle(&self) -> AckHandle {
        AckHandle {
            control: self.control.clone(),
        }
    }

    /// The current state (a watch: intermediate states can be skipped by a slow reader).
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }

    /// Every state change from now on, in order (a broadcast of capacity 64; a reader that falls
    /// further behind sees `Lagged`).
    pub fn state_events(&self) -> broadcast::Receiver<ConnectionState> {
        self.events.subscribe()
    }

    /// Stops the task and closes the connection. Waits up to 2 s, then aborts it.
    pub async fn shutdown(self) {
        let _ = self.control.send(Control::Shutdown);
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(2), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// First wait before an ACK the relay refused as rate-limited is sent again; it doubles up to
/// [`ACK_RETRY_MAX`].
const ACK_RETRY_FIRST: Duration = Duration::from_millis(10);
/// Longest wait between two tries of a rate-limited ACK.
const ACK_RETRY_MAX: Duration = Duration::from_secs(1);

/// ACKs, sending the ACK again while the relay refuses it as rate-limited. A refused ACK keeps
/// its envelope in the relay's window (it is not pushed again before a new SUBSCRIBE), so
/// dropping it would stall the mailbox: a drain of a large backlog outruns the relay's
/// per-connection request rate on ACKs alone.
async fn ack_until_not_rate_limited(
    connection: &SubscribeConnection,
    receive_id: ReceiveId,
    message_ids: Vec<MessageId>,
    key: &SigningKey,
) -> Result<(), ClientError> {
    let mut wait = ACK_RETRY_FIRST;
    loop {
        match connection.ack(receive_id, message_ids.clone(), key).await {
            Err(ClientError::RateLimited) => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(ACK_RETRY_MAX);
            }
            other => return other,
        }
    }
}

type Pending = Pin<Box<dyn Future<Output = (ReceiveId, bool, Result<(), ClientError>)> + Send>>;

/// Whether the supervisor keeps going.
enum Flow {
    Continue(ClientError),
    Stop,
}

struct SubscriberTask {
    connector: Connector,
    url: RelayUrl,
    control: mpsc::UnboundedReceiver<Control>,
    deliveries: mpsc::Sender<Inbound>,
    state: watch::Sender<ConnectionState>,
    events: broadcast::Sender<ConnectionState>,
    mailboxes: HashMap<ReceiveId, Arc<SigningKey>>,
    backoff: Backoff,
}

impl SubscriberTask {
    fn set_state(&self, state: ConnectionState) {
        let _ = self.events.send(state.clone());
        self.state.send_replace(state);
    }

    /// Applies a control message while not connected; false means stop.
    fn apply_offline(&mut self, control: Option<Control>) -> bool {
        match control {
            None | Some(Control::Shutdown) => false,
            Some(Control::Add(receive_id, key)) => {
                self.mailboxes.insert(receive_id, key);
                true
            }
            Some(Control::Remove(receive_id)) => {
                self.mailboxes.remove(&receive_id);
                true
            }
            // Offline: the relay will re-push it; the engine dedupes.
            Some(Control::Ack(..)) => true,
        }
    }

    async fn run(mut self) {
        loop {
            self.set_state(ConnectionState::Connecting);
            let connector = self.connector.clone();
            let url = self.url.clone();
            let connecting = connector.connect_subscribe(&url);
            tokio::pin!(connecting);
            let attempt = loop {
                tokio::select! {
                    result = &mut connecting => break result,
                    control = self.control.recv() => {
                        if !self.apply_offline(control) {
                            return;
                        }
                    }
                }
            };
            let error = match attempt {
                Ok((connection, pushes)) => {
                    let started = Instant::now();
                    let flow = self.session(connection, pushes).await;
                    if started.elapsed() >= self.backoff.config().stable_after {
                        self.backoff.reset();
                    }
                    match flow {
                        Flow::Continue(error) => error,
                        Flow::Stop => return,
                    }
                }
                Err(error) => error,
            };
            let retry_in = self.backoff.next_delay();
            tracing::debug!(url = %self.url, %error, ?retry_in, "relay subscription offline");
            self.set_state(ConnectionState::Offline { retry_in, error });
            let wake = tokio::time::sleep(retry_in);
            tokio::pin!(wake);
            loop {
                tokio::select! {
                    _ = &mut wake => break,
                    control = self.control.recv() => {
                        if !self.apply_offline(control) {
                            return;
                        }
                    }
                }
            }
        }
    }

    fn subscribe_future(
        connection: &SubscribeConnection,
        receive_id: ReceiveId,
        key: Arc<SigningKey>,
    ) -> Pending {
        let connection = connection.clone();
        Box::pin(async move {
            (
                receive_id,
                true,
                connection.subscribe(receive_id, &key).await,
            )
        })
    }

    async fn deliver(&self, item: Inbound) -> bool {
        self.deliveries.send(item).await.is_ok()
    }

    /// Runs one connected session until the connection is lost or the subscriber stops.
    async fn session(&mut self, connection: SubscribeConnection, mut pushes: Pushes) -> Flow {
        let mut pending: FuturesUnordered<Pending> = FuturesUnordered::new();
        for (receive_id, key) in &self.mailboxes {
            pending.push(Self::subscribe_future(
                &connection,
                *receive_id,
                key.clone(),
            ));
        }
        self.set_state(ConnectionState::Connected);
        loop {
            tokio::select! {
                control = self.control.recv() => match control {
                    None | Some(Control::Shutdown) => {
                        connection.close();
                        return Flow::Stop;
                    }
                    Some(Control::Add(receive_id, key)) => {
                        self.mailboxes.insert(receive_id, key.clone());
                        pending.push(Self::subscribe_future(&connection, receive_id, key));
                    }
                    Some(Control::Remove(receive_id)) => {
                        self.mailboxes.remove(&receive_id);
                    }
                    Some(Control::Ack(receive_id, message_ids)) => {
                        if let Some(key) = self.mailboxes.get(&receive_id).cloned() {
                            for chunk in message_ids.chunks(sealpost_wire::MAX_ACK_IDS) {
                                let connection = connection.clone();
                                let key = key.clone();
                                let chunk = chunk.to_vec();
                                pending.push(Box::pin(async move {
                                    (receive_id, false, ack_until_not_rate_limited(&connection, receive_id, chunk, &key).await)
                                }));
                            }
                        }
                    }
                },
                pushed = pushes.next() => match pushed {
                    Ok(Pushed::Message { receive_id, message_id, received_at, envelope }) => {
                        if self.mailboxes.contains_key(&receive_id) {
                            let delivery = Delivery { receive_id, message_id, received_at, envelope };
                            if !self.deliver(Inbound::Message(delivery)).await {
                                connection.close();
                                return Flow::Stop;
                            }
                        }
                    }
                    Ok(Pushed::End { receive_id }) => {
                        if self.mailboxes.contains_key(&receive_id)
                            && !self.deliver(Inbound::Ended { receive_id }).await
                        {
                            connection.close();
                            return Flow::Stop;
                        }
                    }
                    Err(error) => return Flow::Continue(error),
                },
                Some((receive_id, is_subscribe, result)) = pending.next(), if !pending.is_empty() => {
                    match result {
                        Ok(()) => {}
                        Err(error) if error.is_connection_lost() => {
                            connection.close();
                            return Flow::Continue(error);
                        }
                        Err(error) if is_subscribe => {
                            if self.mailboxes.contains_key(&receive_id)
                                && !self.deliver(Inbound::SubscribeFailed { receive_id, error }).await
                            {
                                connection.close();
                                return Flow::Stop;
                            }
                        }
                        Err(error) => tracing::debug!(%error, "ACK refused; the relay will re-push"),
                    }
                }
            }
        }
    }
}
