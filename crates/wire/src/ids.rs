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

public_bytes!(
    /// A blob's upload id (32 random bytes chosen by the uploader): names the blob in
    /// BLOB-CREATE, BLOB-PUT, BLOB-STATUS and BLOB-DELETE. Never given to recipients.
    BlobUploadId,
    32
);
public_bytes!(
    /// One recipient's download id of a blob (32 random bytes chosen by the uploader, one per
    /// recipient): names the blob in BLOB-GET. Unrelated to the upload id and to every other
    /// download id of the same blob.
    BlobDownloadId,
    32
);

macro_rules! secret_bytes {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
        pub struct $name(Box<[u8; 32]>);

        impl $name {
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

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_bytes(self.0.as_slice())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let mut bytes = deserialize_fixed::<D, 32>(deserializer)?;
                let secret = Self::new(bytes);
                bytes.zeroize();
                Ok(secret)
            }
        }
    };
}

secret_bytes!(
    /// The uploader's 32-byte secret for a blob: whoever holds it (and the upload id) may
    /// upload, query and delete the blob. A secret: no `Debug`, zeroized on drop; the relay
    /// stores only a hash of it.
    BlobUploadAuth
);
secret_bytes!(
    /// One recipient's 32-byte secret for a blob: with its download id, it lets that recipient
    /// download the chunks. A secret: no `Debug`, zeroized on drop; the relay stores only a hash.
    BlobDownloadAuth
);

/// One recipient's way to a blob: a download id and its secret, both random, chosen by the
/// uploader and carried to that recipient inside the (end-to-end encrypted) message.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobDownload {
    /// The id this recipient names the blob by.
    pub download_id: BlobDownloadId,
    /// The secret that proves this recipient may download.
    pub download_auth: BlobDownloadAuth,
}

impl fmt::Debug for BlobDownload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hand-written: the download auth never reaches a log.
        f.debug_struct("BlobDownload")
            .field("download_id", &self.download_id)
            .finish_non_exhaustive()
    }
}
