//! Fixed-length byte newtypes used in frames: mailbox ids, keys, nonces, signatures, secrets.
//!
//! The mailbox ids ([`SendId`], [`ReceiveId`]) and the relay's [`MessageId`] are defined once in
//! `sealpost-ids` (shared with the crypto crate and the client store) and re-exported here.
//! Each fixed-length value is encoded as a CBOR byte string of exactly its length; any other
//! length is refused when decoding.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop};

use sealpost_ids::deserialize_fixed;
pub use sealpost_ids::{MessageId, ReceiveId, SendId};

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
