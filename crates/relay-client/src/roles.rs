//! Connection roles (`docs/threat-model.md` § What a relay sees per connection): every
//! connection to a relay does one kind of work, and its type offers only that work.
//!
//! * [`SendConnection`]: SEND. Pooled per relay by [`crate::Sender`]. Carries send ids only,
//!   never a mailbox this client owns.
//! * [`OwnerConnection`]: CREATE, SECURE, DELETE — the commands signed with a mailbox's owner
//!   key. Opened fresh for each operation and dropped after it, so a relay sees each as its own
//!   short connection: it cannot tie the mailboxes created, secured or deleted together by
//!   connection, nor tie any of them to the SENDs (the mailboxes this user writes to) or to the
//!   subscription (it still sees the source address, unless a proxy hides it).
//! * [`SubscribeConnection`]: SUBSCRIBE and ACK, one per relay, held by [`crate::Subscriber`].
//!   It names every mailbox the client reads; that set is what a relay learns from it anyway.
//!
//! The roles are types, not a flag checked at run time: a `SendConnection` has no `subscribe`
//! or `create` method to call. Each of these fails to compile:
//!
//! ```compile_fail
//! # async fn f(c: sealpost_relay_client::SendConnection, k: ed25519_dalek::SigningKey) {
//! c.subscribe(sealpost_relay_client::ReceiveId([0; 32]), &k).await;
//! # }
//! ```
//! ```compile_fail
//! # async fn f(c: sealpost_relay_client::SendConnection, k: ed25519_dalek::SigningKey) {
//! c.create(&k, &sealpost_relay_client::SendSecret::new([0; 32]), None).await;
//! # }
//! ```
//! ```compile_fail
//! # async fn f(c: sealpost_relay_client::SubscribeConnection, k: ed25519_dalek::SigningKey) {
//! c.send(sealpost_relay_client::SendId([0; 32]), &sealpost_relay_client::SendSecret::new([0; 32]), b"", None).await;
//! # }
//! ```
//! ```compile_fail
//! # async fn f(c: sealpost_relay_client::OwnerConnection, k: ed25519_dalek::SigningKey) {
//! c.subscribe(sealpost_relay_client::ReceiveId([0; 32]), &k).await;
//! # }
//! ```
//!
//! while the commands of each role compile:
//!
//! ```no_run
//! # async fn f(
//! #     s: sealpost_relay_client::SendConnection,
//! #     o: sealpost_relay_client::OwnerConnection,
//! #     c: sealpost_relay_client::SubscribeConnection,
//! #     k: ed25519_dalek::SigningKey,
//! # ) {
//! let secret = sealpost_relay_client::SendSecret::new([0; 32]);
//! let _ = s.send(sealpost_relay_client::SendId([0; 32]), &secret, b"", None).await;
//! let _ = o.create(&k, &secret, None).await;
//! let _ = c.subscribe(sealpost_relay_client::ReceiveId([0; 32]), &k).await;
//! # }
//! ```

use std::ops::Deref;

use ed25519_dalek::SigningKey;
use sealpost_wire::{AuthPublicKey, MessageId, ReceiveId, SendId, SendSecret};

use crate::connection::Connection;
use crate::error::ClientError;

/// Which role a connection is opened for (chooses its SOCKS credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Role {
    /// [`SendConnection`].
    Send,
    /// [`OwnerConnection`].
    Owner,
    /// [`SubscribeConnection`].
    Subscribe,
    /// [`crate::BlobConnection`].
    Blob,
}

/// A connection that only SENDs (see the module docs).
#[derive(Clone)]
pub struct SendConnection(pub(crate) Connection);

impl SendConnection {
    /// SEND: stores `envelope` in the mailbox named by `send_id`. `Ok(())` means the relay has
    /// durably committed it. `sender_key` signs the SEND (required once the mailbox is secured).
    ///
    /// An envelope larger than the HELLO's `max_envelope` fails with [`ClientError::TooLarge`]
    /// before anything is sent.
    pub async fn send(
        &self,
        send_id: SendId,
        send_secret: &SendSecret,
        envelope: &[u8],
        sender_key: Option<&SigningKey>,
    ) -> Result<(), ClientError> {
        self.0
            .send(send_id, send_secret, envelope, sender_key)
            .await
    }
}

/// A connection for the owner commands CREATE, SECURE and DELETE (see the module docs).
pub struct OwnerConnection(pub(crate) Connection);

impl OwnerConnection {
    /// CREATE: makes a mailbox owned by `auth_key` (its public half is sent; the signature covers
    /// this connection's nonce). `password` is the relay password, if the relay has one.
    pub async fn create(
        &self,
        auth_key: &SigningKey,
        send_secret: &SendSecret,
        password: Option<&str>,
    ) -> Result<(ReceiveId, SendId), ClientError> {
        self.0.create(auth_key, send_secret, password).await
    }

    /// SECURE: binds the mailbox's send side to `sender_key`, once; later SENDs must be signed
    /// by it.
    pub async fn secure(
        &self,
        receive_id: ReceiveId,
        sender_key: AuthPublicKey,
        auth_key: &SigningKey,
    ) -> Result<(), ClientError> {
        self.0.secure(receive_id, sender_key, auth_key).await
    }

    /// DELETE: removes the mailbox and every envelope in it.
    pub async fn delete(
        &self,
        receive_id: ReceiveId,
        auth_key: &SigningKey,
    ) -> Result<(), ClientError> {
        self.0.delete(receive_id, auth_key).await
    }
}

/// A connection that SUBSCRIBEs and ACKs (see the module docs). Its pushes come on the
/// [`crate::Pushes`] returned with it.
#[derive(Clone)]
pub struct SubscribeConnection(pub(crate) Connection);

impl SubscribeConnection {
    /// SUBSCRIBE: the relay starts pushing this mailbox's envelopes here (a repeat starts over
    /// and re-pushes every unacknowledged envelope). Pushes may arrive right after the OK.
    pub async fn subscribe(
        &self,
        receive_id: ReceiveId,
        auth_key: &SigningKey,
    ) -> Result<(), ClientError> {
        self.0.subscribe(receive_id, auth_key).await
    }

    /// ACK: deletes delivered envelopes of one mailbox (1 to [`sealpost_wire::MAX_ACK_IDS`]
    /// ids in one frame) and lets the relay push the next. Idempotent. Unsigned while this
    /// connection subscribes the mailbox (protocol version 4), else signed with `auth_key`.
    pub async fn ack(
        &self,
        receive_id: ReceiveId,
        message_ids: Vec<MessageId>,
        auth_key: &SigningKey,
    ) -> Result<(), ClientError> {
        self.0.ack(receive_id, message_ids, auth_key).await
    }
}

impl Deref for SendConnection {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0
    }
}

impl Deref for OwnerConnection {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0
    }
}

impl Deref for SubscribeConnection {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0
    }
}
