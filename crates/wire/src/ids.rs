//! Fixed-length byte newtypes used in frames: mailbox ids, keys, nonces, signatures, secrets.
//!
//! Each is encoded as a CBOR byte string of exactly its length; any other length is refused
//! when decoding.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Serde visitor that accepts a byte string of exactly `N` bytes (or an array of `N` u8s).
struct FixedBytesVisitor<const N: usize>;

impl<'de, const N: usize> Visitor<'de> for FixedBytesVisitor<N> {
    type Value = [u8; N];

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "a byte string of exactly {N} bytes")
    }

    fn visit_bytes<E: de::Error>(self, value: &[u8]) -> Result<Self::Value, E> {
        <[u8; N]>::try_from(value).map_err(|_| E::invalid_length(value.len(), &self))
    }

    fn visit_byte_buf<E: de::Error>(self, value: Vec<u8>) -> Result<Self::Value, E> {
        self.visit_bytes(&value)
    }
}

fn deserialize_fixed<'de, D: Deserializer<'de>, const N: usize>(
    deserializer: D,
) -> Result<[u8; N], D::Error> {
    deserializer.deserialize_bytes(FixedBytesVisitor::<N>)
}

macro_rules! public_bytes {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl From<[u8; $len]> for $name {
            fn from(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Only a short prefix: enough to tell values apart in test output.
                write!(f, concat!(stringify!($name), "("))?;
                for byte in self.0.iter().take(4) {
                    write!(f, "{byte:02x}")?;
                }
                write!(f, "…)")
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_bytes(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserialize_fixed::<D, $len>(deserializer).map(Self)
            }
        }
    };
}

public_bytes!(
    /// The owner's 32-byte mailbox id: SUBSCRIBE, ACK, DELETE and SECURE name a mailbox by it.
    ReceiveId,
    32
);
public_bytes!(
    /// The senders' 32-byte mailbox id: SEND names a mailbox by it. Unrelated to the receive id.
    SendId,
    32
);
public_bytes!(
    /// The relay's 32-byte per-connection challenge, sent in HELLO and covered by owner signatures.
    Nonce,
    32
);
public_bytes!(
    /// An Ed25519 public key (32 bytes, RFC 8032 encoding): a mailbox auth key or a sender key.
    AuthPublicKey,
    32
);
public_bytes!(
    /// An Ed25519 signature (64 bytes, RFC 8032 encoding).
    SignatureBytes,
    64
);

/// The mailbox's 32-byte send secret: whoever holds it (and the send id) may SEND.
///
/// A secret: no `Debug`, zeroized on drop. The relay stores only a hash of it.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SendSecret(Box<[u8; 32]>);

impl SendSecret {
    /// Length in bytes.
    pub const LEN: usize = 32;

    /// Wraps raw secret bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(Box::new(bytes))
    }

    /// The raw secret bytes.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Serialize for SendSecret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0.as_slice())
    }
}

impl<'de> Deserialize<'de> for SendSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut bytes = deserialize_fixed::<D, 32>(deserializer)?;
        let secret = Self::new(bytes);
        bytes.zeroize();
        Ok(secret)
    }
}

/// A relay-assigned message id: an opaque unsigned 64-bit number, strictly increasing within one
/// mailbox from a random start (never a relay-wide counter; `docs/relay-protocol.md`). Clients
/// use it only to ACK; they never trust it for ordering or de-duplication of conversation content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(pub u64);
