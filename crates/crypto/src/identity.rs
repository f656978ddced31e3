//! Long-term identity: a 32-byte seed, the Ed25519 + X25519 key pair derived from it, and the
//! 64-byte public [`IdentityKey`] = Ed25519_pub ‖ X25519_pub used everywhere (X3DH AD, safety
//! numbers, invites).
//!
//! Derivation (RFC 5869 HKDF-SHA256, salt absent, IKM = seed):
//! - Ed25519 secret key (RFC 8032 §5.1.5 seed) = HKDF(info = `"sealpost/v1/identity/ed25519"`, 32 bytes)
//! - X25519 secret key (RFC 7748 §5, clamped on use) = HKDF(info = `"sealpost/v1/identity/x25519"`, 32 bytes)
//!
//! Identity signatures cover `len(label) as u8 ‖ label ‖ len(message) as u32 BE ‖ message`
//! where the label comes from a closed [`SignatureContext`]: the identity key signs only
//! prekeys and invites, never messages, so that messages stay deniable (`docs/crypto.md` § Identity
//! signatures).

use core::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{CryptoError, DecodeError};
use crate::primitives::{Secret32, hkdf_sha256, random_bytes};

/// HKDF info for the Ed25519 half of the identity.
pub const IDENTITY_ED25519_INFO: &[u8] = b"sealpost/v1/identity/ed25519";
/// HKDF info for the X25519 half of the identity.
pub const IDENTITY_X25519_INFO: &[u8] = b"sealpost/v1/identity/x25519";

/// Length of the public identity key: Ed25519 public key (32) ‖ X25519 public key (32).
pub const IDENTITY_KEY_LEN: usize = 64;
/// Length of an identity signature (Ed25519, RFC 8032).
pub const SIGNATURE_LEN: usize = 64;

/// The 32-byte identity seed, the only long-term secret. Kept in the OS keychain by the client.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct IdentitySeed(Box<[u8; 32]>);

impl IdentitySeed {
    /// A fresh seed from the OS CSPRNG.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut seed = Self(Box::new([0u8; 32]));
        random_bytes(seed.0.as_mut())?;
        Ok(seed)
    }

    /// Rebuilds a seed from its 32 bytes (as read back from the keychain).
    pub fn from_bytes(bytes: Zeroizing<[u8; 32]>) -> Self {
        Self(Box::new(*bytes))
    }

    /// The seed bytes, for storing in the keychain. Never log or display them.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

impl ConstantTimeEq for IdentitySeed {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.ct_eq(other.0.as_ref())
    }
}

/// The closed set of things an identity key may sign. Each has a distinct label, so a signature
/// made for one can never verify as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureContext {
    /// A signed prekey: message = prekey id (u32 BE) ‖ X25519 public key (32).
    SignedPrekey,
    /// An invite: message = the invite's canonical bytes, as the client defines them.
    Invite,
}

impl SignatureContext {
    /// The label bytes prepended to the message.
    pub fn label(self) -> &'static [u8] {
        match self {
            Self::SignedPrekey => b"sealpost/v1/sig/signed-prekey",
            Self::Invite => b"sealpost/v1/sig/invite",
        }
    }

    /// Builds the exact signed bytes: `len(label) u8 ‖ label ‖ len(message) u32 BE ‖ message`.
    pub fn signature_input(self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let label = self.label();
        let label_len = u8::try_from(label.len()).map_err(|_| DecodeError::LengthOutOfRange)?;
        let mut input = Vec::with_capacity(1 + label.len() + 4 + message.len());
        input.push(label_len);
        input.extend_from_slice(label);
        crate::codec::put_u32_prefixed(&mut input, message)?;
        Ok(input)
    }
}

/// An Ed25519 signature made by an identity key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IdentitySignature([u8; SIGNATURE_LEN]);

impl IdentitySignature {
    /// Wraps 64 signature bytes (validity is checked when verifying).
    pub fn from_bytes(bytes: [u8; SIGNATURE_LEN]) -> Self {
        Self(bytes)
    }

    /// The 64 signature bytes.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_LEN] {
        self.0
    }
}

impl fmt::Debug for IdentitySignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentitySignature({:02x?}…)", &self.0[..4])
    }
}

/// The public identity: Ed25519 verifying key ‖ X25519 public key (64 bytes).
#[derive(Clone, Copy)]
pub struct IdentityKey {
    signing: VerifyingKey,
    dh: PublicKey,
}

impl IdentityKey {
    /// Parses 64 bytes. Fails if the Ed25519 half is not a valid point encoding or is of small order.
    pub fn from_bytes(bytes: &[u8; IDENTITY_KEY_LEN]) -> Result<Self, DecodeError> {
        let mut ed = [0u8; 32];
        let mut x = [0u8; 32];
        ed.copy_from_slice(&bytes[..32]);
        x.copy_from_slice(&bytes[32..]);
        let signing = VerifyingKey::from_bytes(&ed).map_err(|_| DecodeError::InvalidKeyEncoding)?;
        if signing.is_weak() {
            return Err(DecodeError::InvalidKeyEncoding);
        }
        Ok(Self {
            signing,
            dh: PublicKey::from(x),
        })
    }

    /// The 64 bytes Ed25519_pub ‖ X25519_pub.
    pub fn to_bytes(&self) -> [u8; IDENTITY_KEY_LEN] {
        let mut out = [0u8; IDENTITY_KEY_LEN];
        out[..32].copy_from_slice(self.signing.as_bytes());
        out[32..].copy_from_slice(self.dh.as_bytes());
        out
    }

    /// The X25519 half (IK in X3DH's DH computations).
    pub(crate) fn dh_public(&self) -> &PublicKey {
        &self.dh
    }

    /// Verifies an identity signature over `context` ‖ `message` (strict RFC 8032 verification).
    pub fn verify(
        &self,
        context: SignatureContext,
        message: &[u8],
        signature: &IdentitySignature,
    ) -> Result<(), CryptoError> {
        let input = context.signature_input(message)?;
        let signature = Signature::from_bytes(&signature.0);
        self.signing
            .verify_strict(&input, &signature)
            .map_err(|_| CryptoError::InvalidSignature)
    }
}

impl ConstantTimeEq for IdentityKey {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.to_bytes().ct_eq(&other.to_bytes())
    }
}

impl PartialEq for IdentityKey {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for IdentityKey {}

impl core::hash::Hash for IdentityKey {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.to_bytes().hash(state);
    }
}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.to_bytes();
        write!(f, "IdentityKey({:02x?}…)", &bytes[..6])
    }
}

/// The private identity: Ed25519 signing key + X25519 static secret, derived from an [`IdentitySeed`].
/// Zeroized on drop (both dalek types zeroize themselves).
#[derive(Clone)]
pub struct IdentityKeyPair {
    signing: SigningKey,
    dh: StaticSecret,
    public: IdentityKey,
}

impl IdentityKeyPair {
    /// Derives both halves from the seed with HKDF-SHA256 (see the module docs for the info strings).
    pub fn from_seed(seed: &IdentitySeed) -> Result<Self, CryptoError> {
        let mut ed_seed = Secret32::from_bytes([0u8; 32]);
        hkdf_sha256(
            None,
            seed.expose_secret(),
            IDENTITY_ED25519_INFO,
            &mut ed_seed.0,
        )?;
        let mut x_seed = Secret32::from_bytes([0u8; 32]);
        hkdf_sha256(
            None,
            seed.expose_secret(),
            IDENTITY_X25519_INFO,
            &mut x_seed.0,
        )?;
        let signing = SigningKey::from_bytes(ed_seed.expose());
        let dh = StaticSecret::from(*x_seed.expose());
        let public = IdentityKey {
            signing: signing.verifying_key(),
            dh: PublicKey::from(&dh),
        };
        Ok(Self {
            signing,
            dh,
            public,
        })
    }

    /// The public identity key.
    pub fn public(&self) -> &IdentityKey {
        &self.public
    }

    /// Signs `context` ‖ `message` (layout in the module docs). Only prekeys and invites are signable.
    pub fn sign(
        &self,
        context: SignatureContext,
        message: &[u8],
    ) -> Result<IdentitySignature, CryptoError> {
        let input = context.signature_input(message)?;
        Ok(IdentitySignature(self.signing.sign(&input).to_bytes()))
    }

    /// The X25519 secret (IK_A / IK_B in X3DH).
    pub(crate) fn dh_secret(&self) -> &StaticSecret {
        &self.dh
    }
}

impl ZeroizeOnDrop for IdentityKeyPair {}
