//! `sealpost-ids`: the identifiers several Sealpost crates share, defined once.
//!
//! * [`SendId`] and [`ReceiveId`]: a relay mailbox's two 32-byte names (`docs/relay-protocol.md`).
//!   The relay protocol carries them, `sealpost-crypto` binds the send id into every sealed
//!   envelope, and the client store keeps both.
//! * [`MessageId`]: the relay-assigned id of one stored envelope, used only to ACK it.
//! * [`RelayUrl`] (feature `url`): a relay's `wss://` / `ws://` address, parsed once and kept
//!   exactly as written, so the store keeps the same text and the relay client connects to it.
//!
//! Why a crate of its own: `sealpost-crypto` needs [`SendId`] but stays a pure crate over bytes
//! that knows nothing of the relay protocol, while `sealpost-wire`, `sealpost-relay-client` and
//! the client store need all of them (`ARCHITECTURE.md`). The features keep it small for each
//! user: `serde` (the wire codec), `url` and `rusqlite` (the client store's columns).
//! No IO, no async.

mod bytes;
#[cfg(feature = "url")]
mod relay_url;
#[cfg(feature = "rusqlite")]
mod sql;

#[cfg(feature = "serde")]
pub use bytes::deserialize_fixed;
pub use bytes::{MessageId, ReceiveId, SendId};
#[cfg(feature = "url")]
pub use relay_url::{RelayUrl, UrlError};
