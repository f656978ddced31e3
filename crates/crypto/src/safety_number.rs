//! Safety numbers: the 60-digit number and QR payload two users compare to verify each other's
//! [`IdentityKey`], following Signal's published numeric fingerprint construction
//! (libsignal `NumericFingerprintGenerator`, version 0, 5200 iterations; Signal's
//! "Safety number updates" blog post, 2016):
//!
//! - per side: `h = SHA-512(version u16 BE (0) ‖ IK (64) ‖ stable id)`, then 5200 times
//!   `h = SHA-512(h ‖ IK)`. Sealpost has no phone numbers or account ids: keys are the identity,
//!   so the stable id is empty.
//! - display: the first 30 bytes of `h` as six 5-byte big-endian integers, each mod 100000 as 5
//!   digits → 30 digits per side; the two 30-digit strings are sorted and concatenated → 60
//!   digits, identical on both sides.
//! - QR payload: `version u8 (1) ‖ first 32 bytes of the shower's h ‖ first 32 bytes of the
//!   peer's h` (65 bytes). The scanner checks that the halves match its own, swapped.

use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use crate::codec::Reader;
use crate::error::DecodeError;
use crate::identity::IdentityKey;

/// Signal's fingerprint iteration count.
pub const FINGERPRINT_ITERATIONS: u32 = 5200;
/// Signal's fingerprint version (the u16 prefixed to the first hash input).
pub const FINGERPRINT_VERSION: u16 = 0;
/// Version byte of the QR payload.
pub const QR_PAYLOAD_VERSION: u8 = 1;
/// Length of the QR payload.
pub const QR_PAYLOAD_LEN: usize = 65;

fn fingerprint(identity: &IdentityKey) -> [u8; 64] {
    let key = identity.to_bytes();
    let mut hasher = Sha512::new();
    hasher.update(FINGERPRINT_VERSION.to_be_bytes());
    hasher.update(key);
    let mut hash: [u8; 64] = hasher.finalize().into();
    for _ in 0..FINGERPRINT_ITERATIONS {
        let mut hasher = Sha512::new();
        hasher.update(hash);
        hasher.update(key);
        hash = hasher.finalize().into();
    }
    hash
}

fn display_digits(hash: &[u8; 64]) -> String {
    let mut out = String::with_capacity(30);
    for chunk in hash[..30].chunks_exact(5) {
        let value = chunk
            .iter()
            .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte));
        out.push_str(&format!("{:05}", value % 100_000));
    }
    out
}

/// The safety number of a pair of identities, as seen from `local`'s side.
#[derive(Clone, PartialEq, Eq)]
pub struct SafetyNumber {
    digits: String,
    local_fingerprint: [u8; 32],
    peer_fingerprint: [u8; 32],
}

impl SafetyNumber {
    /// Computes the safety number for `local` and `peer` (about 10k SHA-512 blocks).
    pub fn new(local: &IdentityKey, peer: &IdentityKey) -> Self {
        let local_hash = fingerprint(local);
        let peer_hash = fingerprint(peer);
        let local_digits = display_digits(&local_hash);
        let peer_digits = display_digits(&peer_hash);
        let digits = if local_digits <= peer_digits {
            local_digits + &peer_digits
        } else {
            peer_digits + &local_digits
        };
        let mut local_fingerprint = [0u8; 32];
        let mut peer_fingerprint = [0u8; 32];
        local_fingerprint.copy_from_slice(&local_hash[..32]);
        peer_fingerprint.copy_from_slice(&peer_hash[..32]);
        Self {
            digits,
            local_fingerprint,
            peer_fingerprint,
        }
    }

    /// The 60 digits (show them in 12 groups of 5).
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// The bytes to encode in the QR code shown to the peer.
    pub fn qr_payload(&self) -> [u8; QR_PAYLOAD_LEN] {
        let mut out = [0u8; QR_PAYLOAD_LEN];
        out[0] = QR_PAYLOAD_VERSION;
        out[1..33].copy_from_slice(&self.local_fingerprint);
        out[33..].copy_from_slice(&self.peer_fingerprint);
        out
    }

    /// Checks a payload scanned from the peer's screen: true if it shows the same two
    /// identities (theirs first). Malformed or other-version payloads are errors.
    pub fn matches_scanned(&self, scanned: &[u8]) -> Result<bool, DecodeError> {
        let mut reader = Reader::new(scanned);
        let version = reader.u8()?;
        if version != QR_PAYLOAD_VERSION {
            return Err(DecodeError::UnsupportedVersion { found: version });
        }
        let theirs = reader.array::<32>()?;
        let mine = reader.array::<32>()?;
        reader.finish()?;
        let matches = theirs.ct_eq(&self.peer_fingerprint) & mine.ct_eq(&self.local_fingerprint);
        Ok(matches.into())
    }
}

impl core::fmt::Debug for SafetyNumber {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SafetyNumber({})", self.digits)
    }
}
