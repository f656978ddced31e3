//! The primitives exactly as the protocol layers call them: HKDF-SHA256 (RFC 5869), HMAC-SHA256,
//! ChaCha20-Poly1305 (RFC 8439) and X25519 (RFC 7748) with the all-zero check.
//!
//! This module is public (but hidden from the docs) only so that the Wycheproof vector tests in
//! `tests/` can drive the very functions the protocol uses. Callers outside the crate should not use it.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::CryptoError;

/// Length of a ChaCha20-Poly1305 key.
pub const AEAD_KEY_LEN: usize = 32;
/// Length of a ChaCha20-Poly1305 nonce.
pub const AEAD_NONCE_LEN: usize = 12;
/// Length of a Poly1305 tag.
pub const AEAD_TAG_LEN: usize = 16;

/// A 32-byte secret (chain key, root key, message key, shared secret). Zeroized on drop,
/// compared in constant time, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Secret32(pub(crate) [u8; 32]);

impl Secret32 {
    /// Wraps raw bytes (the caller is responsible for the source zeroizing its copy).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Borrows the secret bytes.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl ConstantTimeEq for Secret32 {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.ct_eq(&other.0)
    }
}

/// Fills `out` from the operating system's CSPRNG.
pub fn random_bytes(out: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(out).map_err(|_| CryptoError::Randomness)
}

/// A fresh random 32-byte secret from the OS CSPRNG.
pub fn random_secret() -> Result<Secret32, CryptoError> {
    let mut secret = Secret32([0u8; 32]);
    random_bytes(&mut secret.0)?;
    Ok(secret)
}

/// HKDF-SHA256 (RFC 5869 §2.2 extract + §2.3 expand) into `okm`.
/// An absent or empty salt means a string of HashLen zero bytes (RFC 5869 §2.2).
pub fn hkdf_sha256(
    salt: Option<&[u8]>,
    ikm: &[u8],
    info: &[u8],
    okm: &mut [u8],
) -> Result<(), CryptoError> {
    Hkdf::<Sha256>::new(salt, ikm)
        .expand(info, okm)
        .map_err(|_| CryptoError::KdfOutputLength)
}

/// HMAC-SHA256(key, data) (RFC 2104), as used by the Double Ratchet's KDF_CK.
/// (HMAC accepts any key length, so the error path is unreachable; it is mapped, not unwrapped.)
pub fn hmac_sha256(key: &[u8; 32], data: &[u8]) -> Result<Secret32, CryptoError> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(|_| CryptoError::KdfOutputLength)?;
    mac.update(data);
    let mut out = Secret32([0u8; 32]);
    out.0.copy_from_slice(&mac.finalize().into_bytes());
    Ok(out)
}

/// ChaCha20-Poly1305 encryption (RFC 8439 §2.8): returns ciphertext ‖ 16-byte tag.
pub fn aead_seal(
    key: &[u8; AEAD_KEY_LEN],
    nonce: &[u8; AEAD_NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    ChaCha20Poly1305::new(&Key::from(*key))
        .encrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| CryptoError::SealFailed)
}

/// ChaCha20-Poly1305 decryption (RFC 8439 §2.8) of ciphertext ‖ tag. Any failure is [`CryptoError::DecryptFailed`].
pub fn aead_open(
    key: &[u8; AEAD_KEY_LEN],
    nonce: &[u8; AEAD_NONCE_LEN],
    aad: &[u8],
    ciphertext_and_tag: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    ChaCha20Poly1305::new(&Key::from(*key))
        .decrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: ciphertext_and_tag,
                aad,
            },
        )
        .map_err(|_| CryptoError::DecryptFailed)
}

/// X25519(secret, public) (RFC 7748 §5), refusing an all-zero, non-contributory result
/// (RFC 7748 §6.1), checked with `was_contributory()`.
pub fn x25519(secret: &StaticSecret, public: &PublicKey) -> Result<Secret32, CryptoError> {
    let shared = secret.diffie_hellman(public);
    if !shared.was_contributory() {
        return Err(CryptoError::NonContributory);
    }
    Ok(Secret32(shared.to_bytes()))
}
