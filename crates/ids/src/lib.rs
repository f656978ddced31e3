//! `sealpost-ids`: the identifiers several Sealpost crates share, defined once.
//!
//! * [`SendId`] and [`ReceiveId`]: a relay mailbox's two 32-byte names (`docs/relay-protocol.md`).
//!   The relay protocol carries them, `sealpost-crypto` binds the send id into every sealed
//!   envelope, and the client store keeps both.
//! * [`MessageId`]: the relay-assigned id of one stored envelope, used only to ACK it.
//! * [`EnvelopeId`]: the random id inside every seal; `sealpost-crypto` seals and opens it and
//!   the client store deduplicates on it (feature `random` makes fresh ones).
//! * [`RelayUrl`] (feature `url`): a relay's `wss://` / `ws://` address, parsed once and kept
//!   exactly as written, so the store keeps the same text and the relay client connects to it.
//!
//! Why a crate of its own: `sealpost-crypto` needs [`SendId`] but stays a pure crate over bytes
//! that knows nothing of the relay protocol, while `sealpost-wire`, `sealpost-relay-client` and
//! the client store need all of them (`ARCHITECTURE.md`). The features keep it small for each
//! user: `serde` (the wire codec), `url` and `rusqlite` (the client store's columns), `random`.
//! No IO, no async.

mod bytes;
mod envelope_id;
#[cfg(feature = "url")]
mod relay_url;
#[cfg(feature = "rusqlite")]
mod sql;

#[cfg(feature = "serde")]
pub use bytes::deserialize_fixed;
pub use bytes::{MessageId, ReceiveId, SendId};
pub use envelope_id::{EnvelopeId, EnvelopeIdParseError};
#[cfg(feature = "url")]
pub use relay_url::{RelayUrl, UrlError};
