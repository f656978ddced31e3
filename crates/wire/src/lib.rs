//! The Sealpost relay protocol: every frame a client and a relay exchange, and their binary codec.
//!
//! This crate is shared by the relay and the client engine. It holds only pure types, the CBOR
//! codec and the fixed, length-prefixed signature-input layouts; it does no IO and has no async
//! runtime. `docs/relay-protocol.md` is the byte-exact description of everything here.
//!
//! * [`frame`]: the frames ([`ClientFrame`], [`RelayFrame`]), their bodies and typed error codes.
//! * [`codec`]: encoding and decoding frames; decoding never panics on any input.
//! * [`auth`]: signature-input layouts for CREATE, owner commands and the sender session that
//!   authorises SENDs to a secured mailbox, and helpers to sign and verify them with Ed25519.
//! * [`requests`]: ready-made, signed requests for clients.

pub mod auth;
pub mod codec;
pub mod frame;
pub mod ids;
pub mod requests;

pub use auth::{
    OwnerCommand, create_signature_input, owner_signature_input, public_key,
    sender_session_signature_input, sign, verify, verify_with,
};
pub use codec::{
    DecodeError, EncodeError, decode_client_frame, decode_relay_frame, encode_client_frame,
    encode_relay_frame,
};
pub use frame::{ClientFrame, ErrorCode, RelayFrame, Request, Response};
pub use ids::{
    AuthPublicKey, BlobDownload, BlobDownloadAuth, BlobDownloadId, BlobUploadAuth, BlobUploadId,
    MessageId, Nonce, ReceiveId, SendId, SendSecret, SignatureBytes,
};

/// The protocol version this crate speaks; carried in every frame as `v`. Version 2 made ACK
/// carry a list of message ids under one signature; version 3 replaced the per-SEND sender
/// signature with a sender session proven once per connection ([`Request::SenderSession`]);
/// version 4 lets an ACK on the connection that subscribes its mailbox go unsigned (the
/// SUBSCRIBE proved the owner, [`requests::ack_subscribed`]). A relay answers a frame of any
/// other version with [`ErrorCode::UnsupportedVersion`].
pub const PROTOCOL_VERSION: u16 = 4;

/// Most message ids one ACK may list. The relay answers a longer list with
/// [`ErrorCode::LimitExceeded`] and an empty one with [`ErrorCode::Malformed`].
pub const MAX_ACK_IDS: usize = 1024;

/// Correlation id the relay uses on frames it pushes unasked (HELLO, MESSAGE, END).
pub const PUSH_CORRELATION_ID: u64 = 0;

/// Length of every blob chunk in BLOB-PUT and BLOB-GET, bytes: one sealed attachment chunk of
/// `docs/crypto.md` § Attachments (64 KiB of padded plaintext and a 16-byte Poly1305 tag).
pub const BLOB_CHUNK_BYTES: usize = 64 * 1024 + 16;
