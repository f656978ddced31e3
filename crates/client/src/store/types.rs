//! Typed values the store reads and writes: ids, opaque byte newtypes, times and states.
//!
//! - **Local ids** ([`ContactId`], [`MessageId`], [`InviteId`], [`MailboxId`], [`OutboxItemId`])
//!   are 16 random bytes, so nothing about creation order leaks if an id is ever shown or
//!   exported. Their text form is 32 lowercase hex digits ([`std::fmt::Display`] /
//!   [`std::str::FromStr`]), which is what crosses the app's IPC.
//! - **[`EnvelopeId`]** is the random 16-byte id that travels *inside* the seal (`docs/crypto.md` §
//!   Sealed envelope); the client deduplicates on it and never on anything a relay assigns. It is
//!   `sealpost-ids`' type, the one `sealpost-crypto` opens, re-exported here.
//! - **Opaque public bytes** ([`IdentityKeyBytes`], [`SealedEnvelopeBytes`],
//!   [`SealingPublicKeyBytes`], [`SignedPrekeyBytes`]) are produced and interpreted by
//!   `sealpost-crypto` and `sealpost-wire`; the store only keeps them.
//! - **Relay names** ([`ReceiveId`], [`SendId`], [`RelayUrl`]) are the shared types of
//!   `sealpost-ids`, re-exported here; their column impls live with them.
//! - **Opaque secret bytes** ([`SessionStateBytes`], [`MailboxAuthSecretBytes`],
//!   [`SealingSecretBytes`], [`SendSecretBytes`], [`SenderAuthSecretBytes`],
//!   [`OneTimePrekeySecretBytes`], [`SignedPrekeySecretBytes`]) have no `Debug`, are zeroized on
//!   drop and compare in constant time. They are stored only inside SQLCipher.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of every random id, in bytes.
pub const ID_LEN: usize = 16;

/// Why a text id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdParseError {
    /// The text is not exactly 32 characters.
    #[error("an id is 32 hex digits, got {0} characters")]
    WrongLength(usize),
    /// The text holds a character that is not a hex digit.
    #[error("an id holds only hex digits")]
    NotHex,
}

macro_rules! random_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; ID_LEN]);

        impl $name {
            /// A fresh random id from the operating system's generator.
            pub fn generate() -> Result<Self, getrandom::Error> {
                let mut bytes = [0u8; ID_LEN];
                getrandom::fill(&mut bytes)?;
                Ok(Self(bytes))
            }

            /// Wraps 16 bytes (e.g. decoded from a sealed plaintext).
            pub const fn from_bytes(bytes: [u8; ID_LEN]) -> Self {
                Self(bytes)
            }

            /// The id's bytes.
            pub const fn as_bytes(&self) -> &[u8; ID_LEN] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                if text.len() != 2 * ID_LEN {
                    return Err(IdParseError::WrongLength(text.chars().count()));
                }
                let mut bytes = [0u8; ID_LEN];
                hex::decode_to_slice(text, &mut bytes).map_err(|_| IdParseError::NotHex)?;
                Ok(Self(bytes))
            }
        }

        crate::byte_array_column!($name, ID_LEN);
    };
}

random_id! {
    /// A contact (and, in round 1, its 1:1 conversation).
    ContactId
}
random_id! {
    /// A message in a conversation.
    MessageId
}
random_id! {
    /// An invite this profile made.
    InviteId
}
random_id! {
    /// One of this profile's own receive mailboxes (local id; the relay knows it by [`ReceiveId`]).
    MailboxId
}
random_id! {
    /// One row of the outbox: one sealed envelope bound for one relay.
    OutboxItemId
}
random_id! {
    /// A file we send or received (`docs/engine.md` § Attachments); names its chunk directory.
    AttachmentId
}

/// Stores a `$name(Vec<u8>)` newtype as a BLOB column holding its bytes, as they are: for
/// `public_bytes!` and `secret_bytes!`.
macro_rules! blob_column {
    ($name:ident) => {
        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::Borrowed(ValueRef::Blob(&self.0)))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                Ok(Self(value.as_blob()?.to_vec()))
            }
        }
    };
}

macro_rules! public_bytes {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name(Vec<u8>);

        impl $name {
            /// Wraps the bytes.
            pub fn new(bytes: Vec<u8>) -> Self {
                Self(bytes)
            }

            /// The bytes.
            pub fn as_bytes(&self) -> &[u8] {
                &self.0
            }

            /// Unwraps the bytes.
            pub fn into_bytes(self) -> Vec<u8> {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Public, but possibly long: show length and a short prefix.
                let prefix = self.0.get(..8).unwrap_or(&self.0);
                write!(f, concat!(stringify!($name), "({} bytes, {}…)"), self.0.len(), hex::encode(prefix))
            }
        }

        blob_column!($name);
    };
}

public_bytes! {
    /// A contact's public identity key, `IK = Ed25519_pub ‖ X25519_pub` (`docs/crypto.md` §
    /// Identity), as `sealpost-crypto` encodes it. Unique per contact (`docs/engine.md` § Making a
    /// contact).
    IdentityKeyBytes
}
public_bytes! {
    /// A sealed envelope exactly as it goes to the relay. Written once, resent unchanged
    /// (`docs/engine.md` § Sending).
    SealedEnvelopeBytes
}
public_bytes! {
    /// The X25519 public key a peer's mailbox is sealed to (`docs/crypto.md` § Sealed envelope).
    SealingPublicKeyBytes
}
public_bytes! {
    /// A peer's latest signed prekey (id, key and signature, as `sealpost-crypto` encodes them).
    SignedPrekeyBytes
}

macro_rules! secret_bytes {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        ///
        /// Secret: no `Debug`, zeroized on drop, constant-time equality.
        #[derive(Clone, Zeroize, ZeroizeOnDrop)]
        pub struct $name(Vec<u8>);

        impl $name {
            /// Takes ownership of the secret bytes.
            pub fn new(bytes: Vec<u8>) -> Self {
                Self(bytes)
            }

            /// The secret bytes. Keep the borrow short; never log them.
            pub fn expose_secret(&self) -> &[u8] {
                &self.0
            }
        }

        crate::constant_time_eq!($name);

        blob_column!($name);
    };
}

secret_bytes! {
    /// An attachment's own file key, or a relay capability for its blob (an upload token or a
    /// download grant, `docs/engine.md` § Attachments).
    AttachmentSecretBytes
}
secret_bytes! {
    /// A Double Ratchet session's serialized state (from `sealpost-crypto`).
    SessionStateBytes
}
secret_bytes! {
    /// The Ed25519 secret key that authenticates SUBSCRIBE/ACK/DELETE on one own mailbox.
    MailboxAuthSecretBytes
}
secret_bytes! {
    /// The X25519 secret key one own mailbox's envelopes are sealed to (`docs/crypto.md` § Sealed
    /// envelope).
    SealingSecretBytes
}
secret_bytes! {
    /// The per-mailbox send secret a peer gave us for SENDs to their mailbox.
    SendSecretBytes
}
secret_bytes! {
    /// Our secret key that the peer's mailbox was bound to by our first message (`docs/engine.md` §
    /// Making a contact).
    SenderAuthSecretBytes
}
secret_bytes! {
    /// The one-time prekey secret of one invite (`docs/engine.md` § Invites).
    OneTimePrekeySecretBytes
}
secret_bytes! {
    /// One of our own signed prekey secrets.
    SignedPrekeySecretBytes
}

/// A mailbox's ids on a relay and the relay's URL: defined once in `sealpost-ids` (shared with
/// the crypto crate, the wire protocol and the relay client), stored as 32-byte blobs and as the
/// URL text as written.
pub use sealpost_ids::{ReceiveId, RelayUrl, SendId};

/// The random id inside every seal, used for deduplication (`docs/engine.md` § Receiving):
/// defined once in `sealpost-ids`, the same type `sealpost-crypto` opens; a 16-byte blob.
pub use sealpost_ids::EnvelopeId;

/// A point in time: milliseconds since the Unix epoch (UTC). Local clock; never trusted for order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    /// The current time from the system clock (0 if the clock is before 1970).
    pub fn now() -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Self(millis)
    }
}

impl ToSql for UnixMillis {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl FromSql for UnixMillis {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(Self)
    }
}

/// A per-conversation sequence number carried in every plaintext (`docs/engine.md` § Inside a
/// ratchet message). The UI orders by it, never by relay order. Stored as SQLite INTEGER, so it is
/// at most `i64::MAX`; larger values from a peer are refused ([`ConversationSeq::new`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConversationSeq(u64);

impl ConversationSeq {
    /// The largest representable sequence number.
    pub const MAX: u64 = i64::MAX as u64;

    /// Accepts `1..=i64::MAX` (0 is reserved for "nothing yet").
    pub fn new(value: u64) -> Option<Self> {
        (1..=Self::MAX).contains(&value).then_some(Self(value))
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }

    pub(crate) fn to_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }
}

impl FromSql for ConversationSeq {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let raw = i64::column_result(value)?;
        u64::try_from(raw)
            .ok()
            .and_then(Self::new)
            .ok_or(FromSqlError::OutOfRange(raw))
    }
}

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// From the contact to us. Stored as 0.
    Incoming,
    /// From us to the contact. Stored as 1.
    Outgoing,
}

impl Direction {
    pub(crate) fn to_i64(self) -> i64 {
        match self {
            Direction::Incoming => 0,
            Direction::Outgoing => 1,
        }
    }
}

impl FromSql for Direction {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match i64::column_result(value)? {
            0 => Ok(Direction::Incoming),
            1 => Ok(Direction::Outgoing),
            other => Err(FromSqlError::OutOfRange(other)),
        }
    }
}

/// A message's state. Outgoing: `Queued → OnRelay → Delivered → Read`, or `Failed`.
/// Incoming: `Received → Read`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageState {
    /// Outgoing, stored, not yet accepted by any relay. Stored as 0.
    Queued,
    /// Outgoing, a relay answered OK to the SEND. Stored as 1.
    OnRelay,
    /// Outgoing, the contact's delivery receipt arrived. Stored as 2.
    Delivered,
    /// Outgoing: the contact's read receipt arrived. Incoming: we read it. Stored as 3.
    Read,
    /// Outgoing, every relay gave up. Stored as 4.
    Failed,
    /// Incoming, not read yet (counts as unread). Stored as 5.
    Received,
}

impl MessageState {
    pub(crate) fn to_i64(self) -> i64 {
        match self {
            MessageState::Queued => 0,
            MessageState::OnRelay => 1,
            MessageState::Delivered => 2,
            MessageState::Read => 3,
            MessageState::Failed => 4,
            MessageState::Received => 5,
        }
    }
}

impl FromSql for MessageState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match i64::column_result(value)? {
            0 => Ok(MessageState::Queued),
            1 => Ok(MessageState::OnRelay),
            2 => Ok(MessageState::Delivered),
            3 => Ok(MessageState::Read),
            4 => Ok(MessageState::Failed),
            5 => Ok(MessageState::Received),
            other => Err(FromSqlError::OutOfRange(other)),
        }
    }
}

/// Where a message sits in its conversation: ordered by `seq`, then incoming before outgoing.
/// Unique per conversation, so it is the paging cursor of
/// [`Store::messages_page`](super::Store::messages_page).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessagePosition {
    /// The conversation sequence number.
    pub seq: ConversationSeq,
    /// The tie-breaker between the two writers (each side's own numbers are strictly increasing).
    pub direction: Direction,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn ids_round_trip_through_text(bytes in any::<[u8; 16]>()) {
            let id = ContactId::from_bytes(bytes);
            prop_assert_eq!(id.to_string().parse::<ContactId>().unwrap(), id);
            let id = MessageId::from_bytes(bytes);
            prop_assert_eq!(id.to_string().parse::<MessageId>().unwrap(), id);
            let id = EnvelopeId::from_bytes(bytes);
            prop_assert_eq!(id.to_string().parse::<EnvelopeId>().unwrap(), id);
            let id = InviteId::from_bytes(bytes);
            prop_assert_eq!(id.to_string().to_uppercase().parse::<InviteId>().unwrap(), id);
        }

        #[test]
        fn id_parsing_never_panics(text in "\\PC{0,40}") {
            if let Ok(id) = text.parse::<MessageId>() {
                prop_assert_eq!(id.to_string(), text.to_lowercase());
            }
        }

        #[test]
        fn id_parsing_of_hexlike_text(text in "[0-9a-fA-F]{0,40}") {
            let parsed = text.parse::<OutboxItemId>();
            prop_assert_eq!(parsed.is_ok(), text.len() == 32);
        }

        #[test]
        fn seq_accepts_exactly_the_sqlite_range(value in any::<u64>()) {
            prop_assert_eq!(ConversationSeq::new(value).is_some(), value >= 1 && value <= i64::MAX as u64);
        }
    }

    #[test]
    fn id_errors_are_typed() {
        assert_eq!("ab".parse::<ContactId>(), Err(IdParseError::WrongLength(2)));
        assert_eq!(
            "zz".repeat(16).parse::<ContactId>(),
            Err(IdParseError::NotHex)
        );
        // 32 bytes but multi-byte characters: refused without slicing inside a character.
        assert!("é".repeat(16).parse::<ContactId>().is_err());
    }

    #[test]
    fn generated_ids_differ() {
        assert_ne!(
            ContactId::generate().unwrap(),
            ContactId::generate().unwrap()
        );
    }

    #[test]
    fn positions_order_by_seq_then_direction() {
        let p = |seq, direction| MessagePosition {
            seq: ConversationSeq::new(seq).unwrap(),
            direction,
        };
        assert!(p(1, Direction::Outgoing) < p(2, Direction::Incoming));
        assert!(p(2, Direction::Incoming) < p(2, Direction::Outgoing));
    }
}
