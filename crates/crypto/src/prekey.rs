//! Prekeys (X3DH §2.5, §3.1): a medium-term signed prekey (signed by the identity key under
//! [`SignatureContext::SignedPrekey`]), single-use one-time prekeys, and the verified
//! [`PrekeyBundle`] an initiator runs X3DH against.
//!
//! Sealpost's relay serves no prekeys (`docs/engine.md` § Key change (T8)): a bundle is built from
//! an invite (identity key + signed prekey + one one-time prekey) or, when a broken session
//! restarts, from the peer's latest signed prekey alone (`docs/engine.md` § Session restart).

use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::codec::Reader;
use crate::error::{CryptoError, DecodeError};
use crate::identity::{IdentityKey, IdentityKeyPair, IdentitySignature, SignatureContext};
use crate::primitives::random_bytes;

/// Version byte of the stored (secret) prekey layouts.
const PREKEY_STORAGE_VERSION: u8 = 1;

/// Identifies a prekey so that the responder can find its secret half (X3DH §3.3 "identifiers").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PrekeyId(pub u32);

impl PrekeyId {
    /// A random identifier from the OS CSPRNG.
    pub fn random() -> Result<Self, CryptoError> {
        let mut bytes = [0u8; 4];
        random_bytes(&mut bytes)?;
        Ok(Self(u32::from_be_bytes(bytes)))
    }
}

fn random_static_secret() -> Result<StaticSecret, CryptoError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    random_bytes(bytes.as_mut())?;
    Ok(StaticSecret::from(*bytes))
}

/// The bytes an identity signs for a signed prekey: id (u32 BE) ‖ X25519 public key (32).
fn signed_prekey_message(id: PrekeyId, public: &PublicKey) -> [u8; 36] {
    let mut message = [0u8; 36];
    message[..4].copy_from_slice(&id.0.to_be_bytes());
    message[4..].copy_from_slice(public.as_bytes());
    message
}

/// The methods both secret prekey halves share (`$pair` holds `secret` and `public: $public`,
/// whose `id` and `public` fields are its identifier and X25519 public key): the public half,
/// the identifier, the secret, and the storage layout of [`to_storage`] and [`from_storage`].
macro_rules! prekey_pair_methods {
    ($pair:ident, $public:ident, $public_doc:literal) => {
        impl $pair {
            #[doc = $public_doc]
            pub fn public(&self) -> &$public {
                &self.public
            }

            /// The prekey's identifier.
            pub fn id(&self) -> PrekeyId {
                self.public.id
            }

            pub(crate) fn secret(&self) -> &StaticSecret {
                &self.secret
            }

            /// Storage layout: version (1) ‖ the public half's layout ‖ X25519 secret (32). Keep
            /// it in the encrypted store only.
            pub fn to_secret_bytes(&self) -> Zeroizing<Vec<u8>> {
                to_storage(&self.public.to_bytes(), &self.secret)
            }

            /// Reads [`Self::to_secret_bytes`] back; checks that the secret matches the public
            /// key.
            pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
                let (public, secret) =
                    from_storage(bytes, $public::LEN, $public::from_bytes, |public| {
                        public.public
                    })?;
                Ok(Self { secret, public })
            }
        }
    };
}

/// The public half of a signed prekey, with the identity signature over it.
/// Wire layout (100 bytes): id u32 BE ‖ X25519 public (32) ‖ Ed25519 signature (64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedPrekey {
    id: PrekeyId,
    public: [u8; 32],
    signature: IdentitySignature,
}

impl SignedPrekey {
    /// Encoded length.
    pub const LEN: usize = 100;

    /// The prekey's identifier.
    pub fn id(&self) -> PrekeyId {
        self.id
    }

    /// The X25519 public key (SPK).
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from(self.public)
    }

    /// Checks the identity signature over this prekey.
    pub fn verify(&self, identity: &IdentityKey) -> Result<(), CryptoError> {
        identity.verify(
            SignatureContext::SignedPrekey,
            &signed_prekey_message(self.id, &self.public_key()),
            &self.signature,
        )
    }

    /// Encodes the 100-byte layout.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..4].copy_from_slice(&self.id.0.to_be_bytes());
        out[4..36].copy_from_slice(&self.public);
        out[36..].copy_from_slice(&self.signature.to_bytes());
        out
    }

    /// Decodes the 100-byte layout (the signature is checked by [`PrekeyBundle::new`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let id = PrekeyId(reader.u32()?);
        let public = reader.array::<32>()?;
        let signature = IdentitySignature::from_bytes(reader.array::<64>()?);
        reader.finish()?;
        Ok(Self {
            id,
            public,
            signature,
        })
    }
}

/// A signed prekey's secret half, kept by its owner (the client stores [`Self::to_secret_bytes`]).
#[derive(Clone)]
pub struct SignedPrekeyPair {
    secret: StaticSecret,
    public: SignedPrekey,
}

impl SignedPrekeyPair {
    /// Makes a fresh signed prekey with a random id, signed by `identity`.
    pub fn generate(identity: &IdentityKeyPair) -> Result<Self, CryptoError> {
        let id = PrekeyId::random()?;
        let secret = random_static_secret()?;
        let public_key = PublicKey::from(&secret);
        let signature = identity.sign(
            SignatureContext::SignedPrekey,
            &signed_prekey_message(id, &public_key),
        )?;
        Ok(Self {
            secret,
            public: SignedPrekey {
                id,
                public: public_key.to_bytes(),
                signature,
            },
        })
    }
}

prekey_pair_methods!(
    SignedPrekeyPair,
    SignedPrekey,
    "The public, signed half to put in invites."
);

/// The public half of a one-time prekey. Wire layout (36 bytes): id u32 BE ‖ X25519 public (32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OneTimePrekey {
    id: PrekeyId,
    public: [u8; 32],
}

impl OneTimePrekey {
    /// Encoded length.
    pub const LEN: usize = 36;

    /// The prekey's identifier.
    pub fn id(&self) -> PrekeyId {
        self.id
    }

    /// The X25519 public key (OPK).
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from(self.public)
    }

    /// Encodes the 36-byte layout.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..4].copy_from_slice(&self.id.0.to_be_bytes());
        out[4..].copy_from_slice(&self.public);
        out
    }

    /// Decodes the 36-byte layout.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let id = PrekeyId(reader.u32()?);
        let public = reader.array::<32>()?;
        reader.finish()?;
        Ok(Self { id, public })
    }
}

/// A one-time prekey's secret half. Delete it after its first use (X3DH §3.4).
#[derive(Clone)]
pub struct OneTimePrekeyPair {
    secret: StaticSecret,
    public: OneTimePrekey,
}

impl OneTimePrekeyPair {
    /// Makes a fresh one-time prekey with a random id.
    pub fn generate() -> Result<Self, CryptoError> {
        let id = PrekeyId::random()?;
        let secret = random_static_secret()?;
        let public = PublicKey::from(&secret).to_bytes();
        Ok(Self {
            secret,
            public: OneTimePrekey { id, public },
        })
    }
}

prekey_pair_methods!(
    OneTimePrekeyPair,
    OneTimePrekey,
    "The public half to put in an invite."
);

/// The storage layout both prekey kinds share: version (1) ‖ public layout ‖ X25519 secret (32).
fn to_storage(public_layout: &[u8], secret: &StaticSecret) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(1 + public_layout.len() + 32));
    out.push(PREKEY_STORAGE_VERSION);
    out.extend_from_slice(public_layout);
    out.extend_from_slice(secret.as_bytes());
    out
}

/// Reads [`to_storage`]'s layout: the public half (`public_len` bytes, read by `parse_public`)
/// and the secret, which must match the public key `public_key_of` names.
fn from_storage<Public>(
    bytes: &[u8],
    public_len: usize,
    parse_public: impl FnOnce(&[u8]) -> Result<Public, DecodeError>,
    public_key_of: impl FnOnce(&Public) -> [u8; 32],
) -> Result<(Public, StaticSecret), DecodeError> {
    let mut reader = Reader::new(bytes);
    let version = reader.u8()?;
    if version != PREKEY_STORAGE_VERSION {
        return Err(DecodeError::UnsupportedVersion { found: version });
    }
    let public = parse_public(reader.take(public_len)?)?;
    let raw_secret = Zeroizing::new(reader.array::<32>()?);
    let secret = StaticSecret::from(*raw_secret);
    reader.finish()?;
    if !bool::from(
        PublicKey::from(&secret)
            .as_bytes()
            .ct_eq(&public_key_of(&public)),
    ) {
        return Err(DecodeError::InvalidKeyEncoding);
    }
    Ok((public, secret))
}

/// A peer's prekey bundle (X3DH §3.2) whose signed prekey signature has been verified.
/// The only way to get one is [`PrekeyBundle::new`], so an unverified bundle cannot reach X3DH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrekeyBundle {
    identity: IdentityKey,
    signed_prekey: SignedPrekey,
    one_time_prekey: Option<OneTimePrekey>,
}

impl PrekeyBundle {
    /// Verifies the signed prekey's signature under `identity` (X3DH §3.3: "Alice verifies the
    /// prekey signature and aborts the protocol if verification fails").
    /// `one_time_prekey` is `None` when restarting a broken session from the latest signed prekey alone.
    pub fn new(
        identity: IdentityKey,
        signed_prekey: SignedPrekey,
        one_time_prekey: Option<OneTimePrekey>,
    ) -> Result<Self, CryptoError> {
        signed_prekey.verify(&identity)?;
        Ok(Self {
            identity,
            signed_prekey,
            one_time_prekey,
        })
    }

    /// The peer's identity key (IK_B).
    pub fn identity(&self) -> &IdentityKey {
        &self.identity
    }

    /// The verified signed prekey (SPK_B).
    pub fn signed_prekey(&self) -> &SignedPrekey {
        &self.signed_prekey
    }

    /// The one-time prekey (OPK_B), if any.
    pub fn one_time_prekey(&self) -> Option<&OneTimePrekey> {
        self.one_time_prekey.as_ref()
    }
}
