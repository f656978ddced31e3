//! [`EnvelopeId`]: the random id a sender puts inside every seal, shared by `sealpost-crypto`
//! (which seals and opens it) and the client store (which deduplicates on it).

use core::fmt;
use core::str::FromStr;

/// A random 16-byte envelope identifier chosen by the sender and carried *inside* the seal
/// (`docs/crypto.md` § Sealed envelope). Clients deduplicate on (contact, `EnvelopeId`) after a
/// successful open (`docs/engine.md` § Receiving), never on anything a relay assigns. Its text
/// form is 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnvelopeId(pub [u8; 16]);

impl EnvelopeId {
    /// Length in bytes.
    pub const LEN: usize = 16;

    /// Wraps 16 bytes (e.g. decoded from a sealed plaintext).
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// A fresh random id from the operating system's generator (feature `random`).
    #[cfg(feature = "random")]
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; Self::LEN];
        getrandom::fill(&mut bytes)?;
        Ok(Self(bytes))
    }
}

impl fmt::Display for EnvelopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for EnvelopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnvelopeId({self})")
    }
}

/// Why a text envelope id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeIdParseError {
    /// The text is not exactly 32 characters.
    #[error("an envelope id is 32 hex digits, got {0} characters")]
    WrongLength(usize),
    /// The text holds a character that is not a hex digit.
    #[error("an envelope id holds only hex digits")]
    NotHex,
}

impl FromStr for EnvelopeId {
    type Err = EnvelopeIdParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() != 2 * Self::LEN {
            return Err(EnvelopeIdParseError::WrongLength(text.chars().count()));
        }
        let mut bytes = [0u8; Self::LEN];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| EnvelopeIdParseError::NotHex)?;
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_32_lowercase_hex_digits_and_parses_back() {
        let id = EnvelopeId([0xab; 16]);
        assert_eq!(id.to_string(), "ab".repeat(16));
        assert_eq!(id.to_string().to_uppercase().parse::<EnvelopeId>(), Ok(id));
        assert_eq!(
            "ab".parse::<EnvelopeId>(),
            Err(EnvelopeIdParseError::WrongLength(2))
        );
        assert_eq!(
            "zz".repeat(16).parse::<EnvelopeId>(),
            Err(EnvelopeIdParseError::NotHex)
        );
    }
}
