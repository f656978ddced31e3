//! The mailbox ids ([`SendId`], [`ReceiveId`]) and the relay's message id ([`MessageId`]).
//!
//! With the `serde` feature each 32-byte id is a byte string of exactly its length (any other
//! length is refused when decoding) and [`MessageId`] is a bare unsigned integer: the frozen
//! wire vectors (`docs/formats.md`) pin these bytes.

use core::fmt;

macro_rules! mailbox_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = 32;

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl From<[u8; 32]> for $name {
            fn from(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }
        }

        impl TryFrom<&[u8]> for $name {
            type Error = core::array::TryFromSliceError;

            /// Exactly 32 bytes, else an error.
            fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
                <[u8; 32]>::try_from(bytes).map(Self)
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

        #[cfg(feature = "serde")]
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_bytes(&self.0)
            }
        }

        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserialize_fixed::<D, 32>(deserializer).map(Self)
            }
        }
    };
}

mailbox_id!(
    /// The owner's 32-byte mailbox id: SUBSCRIBE, ACK, DELETE and SECURE name a mailbox by it.
    ReceiveId
);
mailbox_id!(
    /// The senders' 32-byte mailbox id: SEND names a mailbox by it. Unrelated to the receive id.
    /// Bound into HPKE `info`, so an envelope only opens for the mailbox it was sealed to
    /// (`docs/crypto.md`).
    SendId
);

/// A relay-assigned message id: an opaque unsigned 64-bit number, strictly increasing within one
/// mailbox from a random start (never a relay-wide counter; `docs/relay-protocol.md`). Clients
/// use it only to ACK; they never trust it for ordering or de-duplication of conversation content.
///
/// Not the client store's `MessageId`, which is the local id of a conversation message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct MessageId(pub u64);

/// Serde visitor that accepts a byte string of exactly `N` bytes.
#[cfg(feature = "serde")]
struct FixedBytesVisitor<const N: usize>;

#[cfg(feature = "serde")]
impl<const N: usize> serde::de::Visitor<'_> for FixedBytesVisitor<N> {
    type Value = [u8; N];

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "a byte string of exactly {N} bytes")
    }

    fn visit_bytes<E: serde::de::Error>(self, value: &[u8]) -> Result<Self::Value, E> {
        <[u8; N]>::try_from(value).map_err(|_| E::invalid_length(value.len(), &self))
    }

    fn visit_byte_buf<E: serde::de::Error>(self, value: Vec<u8>) -> Result<Self::Value, E> {
        self.visit_bytes(&value)
    }
}

/// Deserializes a byte string of exactly `N` bytes; any other length is refused. The wire crate
/// uses it for its other fixed-length fields (nonces, keys, signatures).
#[cfg(feature = "serde")]
pub fn deserialize_fixed<'de, D: serde::Deserializer<'de>, const N: usize>(
    deserializer: D,
) -> Result<[u8; N], D::Error> {
    deserializer.deserialize_bytes(FixedBytesVisitor::<N>)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_take_exactly_32_bytes_from_a_slice() {
        assert_eq!(SendId::try_from(&[7u8; 32][..]).ok(), Some(SendId([7; 32])));
        assert!(ReceiveId::try_from(&[7u8; 31][..]).is_err());
        assert!(ReceiveId::try_from(&[7u8; 33][..]).is_err());
    }

    #[test]
    fn debug_shows_only_a_prefix() {
        assert_eq!(format!("{:?}", SendId([0xab; 32])), "SendId(abababab…)");
    }

    #[cfg(feature = "serde")]
    #[test]
    fn cbor_is_a_byte_string_of_exactly_32_bytes() {
        let mut out = Vec::new();
        ciborium::into_writer(&ReceiveId([1; 32]), &mut out).unwrap();
        assert_eq!(&out[..2], &[0x58, 32]);
        let back: ReceiveId = ciborium::from_reader(out.as_slice()).unwrap();
        assert_eq!(back, ReceiveId([1; 32]));
        let mut short = Vec::new();
        ciborium::into_writer(&serde_bytes_like(&[1; 31]), &mut short).unwrap();
        assert!(ciborium::from_reader::<ReceiveId, _>(short.as_slice()).is_err());
    }

    #[cfg(feature = "serde")]
    fn serde_bytes_like(bytes: &[u8]) -> ciborium::Value {
        ciborium::Value::Bytes(bytes.to_vec())
    }
}
