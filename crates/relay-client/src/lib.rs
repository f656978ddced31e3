//! `sealpost-relay-client`: the typed async client for any Sealpost relay over WebSocket.
//!
//! The client engine (`sealpost-client`) says everything it says to relays through this crate.
//! It speaks the frames of `sealpost-wire` (see `docs/relay-protocol.md`) and builds every
//! request with the wire crate's `requests` builders, which sign the fixed signature-input
//! layouts over each connection's HELLO nonce: this crate never assembles a request or a
//! signature input itself. It has no
//! dependency on the crypto or engine crates: envelopes are opaque bytes here.
//!
//! # Layers
//!
//! * [`RelayUrl`] and [`TransportPolicy`] ([`url`](mod@crate::url)): `wss://host[:port][/path]`, and
//!   plain `ws://` only to loopback unless the user allows it; `.onion` only through a proxy.
//! * [`SocksProxy`]: optionally every connection through a SOCKS5 proxy (Tor), names resolved by
//!   the proxy, separate credentials per connection role, no direct fallback.
//! * [`Connector`] / [`Connection`] / [`Pushes`] ([`connection`]): one socket, typed requests
//!   with correlation ids, and the push stream ([`Pushed::Message`], [`Pushed::End`]).
//! * [`SendConnection`] / [`OwnerConnection`] / [`SubscribeConnection`] ([`roles`]): the
//!   connection roles. Each offers only its commands (`send`; `create`, `secure`, `delete`;
//!   `subscribe`, `ack`), so no connection mixes them. TLS is rustls on ring with the
//!   system roots plus an optional extra CA ([`TlsRoots`], [`tls`]). Buffers are 8 KiB and
//!   messages at most 128 KiB, like the relay.
//! * [`Subscriber`] ([`subscriber`]): per relay, one supervised subscription connection with
//!   jittered exponential reconnect ([`BackoffConfig`]), state events ([`ConnectionState`]),
//!   a changing mailbox set and back-pressured delivery ([`Inbound`], [`AckHandle`]).
//! * [`Sender`] ([`sender`]): a pool of [`SendConnection`]s, one per relay.
//! * [`BlobConnection`] ([`blob`]): file transfers (create, put, status, get, delete) on their
//!   own connection, one per transfer, so a large upload never delays message delivery.
//! * [`ClientError`] ([`error`]): one variant per relay error code and per transport failure;
//!   [`ClientError::retry`] says whether to retry ([`Retry`]).
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use sealpost_relay_client::{Connector, ConnectorConfig, RelayUrl};
//! let connector = Connector::new(ConnectorConfig::default())?;
//! let url = RelayUrl::parse("wss://relay.example")?;
//! let auth_key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
//! let secret = sealpost_wire::SendSecret::new([9; 32]);
//! let owner = connector.connect_owner(&url).await?;
//! let (receive_id, send_id) = owner.create(&auth_key, &secret, None).await?;
//! drop(owner);
//! let (connection, mut pushes) = connector.connect_subscribe(&url).await?;
//! connection.subscribe(receive_id, &auth_key).await?;
//! let pushed = pushes.next().await?;
//! # let _ = (send_id, pushed);
//! # Ok(()) }
//! ```
//!
//! # Rules for callers
//!
//! * SEND, owner commands and SUBSCRIBE never share a connection: the role types make mixing
//!   them impossible to write. Open an [`OwnerConnection`] per owner operation.
//! * On a connection that subscribes, keep draining [`Pushes`]: replies are read from the same
//!   socket, behind pushes (the [`Subscriber`] does this for you).
//! * A SEND that failed with a transport error or timeout may have been stored: resend the
//!   exact same bytes; the receiver dedupes by envelope id.
//! * Never trust a relay's message id or time for ordering or dedupe.

pub mod backoff;
pub mod blob;
pub mod connection;
pub mod error;
pub mod roles;
pub mod sender;
pub mod subscriber;
pub mod tls;
pub mod url;

pub use backoff::{Backoff, BackoffConfig};
pub use blob::{
    BLOB_CHUNK_BYTES, BlobConnection, BlobDownload, BlobDownloadAuth, BlobDownloadId, BlobProgress,
    BlobUpload, BlobUploadAuth, BlobUploadId, random_download,
};
pub use connection::{
    BUFFER_BYTES, Connection, Connector, ConnectorConfig, Hello, MAX_FRAME_BYTES, Pushed, Pushes,
    SocksProxy, Timeouts, websocket_config,
};
pub use error::{ClientError, Retry, TlsSetupError};
pub use roles::{OwnerConnection, SendConnection, SubscribeConnection};
pub use sealpost_wire::{AuthPublicKey, MessageId, ReceiveId, SendId, SendSecret, public_key};
pub use sender::Sender;
pub use subscriber::{
    AckHandle, ConnectionState, Delivery, Inbound, Subscriber, SubscriberConfig, SubscriberGone,
};
pub use tls::TlsRoots;
pub use url::{RelayUrl, TransportPolicy, UrlError};
