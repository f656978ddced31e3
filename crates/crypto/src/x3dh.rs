//! X3DH key agreement, following Signal's "The X3DH Key Agreement Protocol" (Marlinspike &
//! Perrin, revision 1, 2016-11-04) exactly, with these parameters (X3DH §2.1):
//!
//! - curve: X25519; hash: SHA-256; info: `"sealpost/v1/x3dh"`;
//! - `Encode(PK)`: the 32-byte X25519 public key. Sealpost's identity key is the 64-byte
//!   Ed25519_pub ‖ X25519_pub pair ([`IdentityKey`]); its X25519 half takes part in DH1/DH2 and
//!   its Ed25519 half signs the prekey, instead of XEdDSA over one key (the X3DH §2.3 note allows
//!   either as long as both are bound: the whole 64-byte value is in AD).
//!
//! Computation (X3DH §3.3): DH1 = DH(IK_A, SPK_B), DH2 = DH(EK_A, IK_B), DH3 = DH(EK_A, SPK_B),
//! optional DH4 = DH(EK_A, OPK_B); SK = KDF(DH1 ‖ DH2 ‖ DH3 [‖ DH4]) with
//! KDF(KM) = HKDF-SHA256(salt = 32 zero bytes, IKM = 0xFF×32 ‖ KM, info, L = 32) (X3DH §2.2).
//! Every DH result is checked with `was_contributory()` and an all-zero result aborts.
//! AD = Encode(IK_A) ‖ Encode(IK_B) = the two 64-byte identity keys (128 bytes, X3DH §3.3).
//!
//! The initial message (X3DH §3.3) carries EK_A, the prekey identifiers and the first Double
//! Ratchet message; IK_A is the envelope's sealed sender (it is inside the same HPKE seal, so it
//! is not repeated). Layout:
//!
//! ```text
//! suite u8 (1 = X25519 X3DH) ‖ EK_A (32) ‖ SPK id u32 BE ‖ has_OPK u8 (0|1) ‖ [OPK id u32 BE]
//!   ‖ ratchet message (rest)
//! ```
//!
//! PQXDH plan: suite 2 will be PQXDH (X25519 + ML-KEM-768, Signal's PQXDH spec): after the OPK
//! fields it adds `KEM prekey id u32 BE ‖ ML-KEM ciphertext (1088)`, the KEM shared secret is
//! appended to KM, and the bundle gains a signed KEM prekey. Suite 1 decoders refuse suite 2 with
//! a typed error, and a peer advertises PQXDH support in its invite before anyone sends suite 2.

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::codec::Reader;
use crate::error::{CryptoError, DecodeError};
use crate::identity::{IDENTITY_KEY_LEN, IdentityKey, IdentityKeyPair};
use crate::prekey::{OneTimePrekeyPair, PrekeyBundle, PrekeyId, SignedPrekeyPair};
use crate::primitives::{Secret32, hkdf_sha256, x25519};
use crate::ratchet::RatchetMessage;

/// HKDF info for the X3DH shared secret.
pub const X3DH_INFO: &[u8] = b"sealpost/v1/x3dh";
/// Suite byte of the initial message: classic X3DH over X25519.
pub const X3DH_SUITE_X25519: u8 = 1;
/// Length of AD = IK_A ‖ IK_B.
pub const ASSOCIATED_DATA_LEN: usize = 2 * IDENTITY_KEY_LEN;

/// AD = IK_A ‖ IK_B (X3DH §3.3), initiator first.
pub(crate) fn associated_data(
    initiator: &IdentityKey,
    responder: &IdentityKey,
) -> [u8; ASSOCIATED_DATA_LEN] {
    let mut ad = [0u8; ASSOCIATED_DATA_LEN];
    ad[..IDENTITY_KEY_LEN].copy_from_slice(&initiator.to_bytes());
    ad[IDENTITY_KEY_LEN..].copy_from_slice(&responder.to_bytes());
    ad
}

/// KDF(KM) of X3DH §2.2.
fn kdf(dh_outputs: &[&Secret32]) -> Result<Secret32, CryptoError> {
    let mut km = Zeroizing::new(Vec::with_capacity(32 * (dh_outputs.len() + 1)));
    km.extend_from_slice(&[0xFF; 32]);
    for dh in dh_outputs {
        km.extend_from_slice(dh.expose());
    }
    let mut sk = Secret32::from_bytes([0u8; 32]);
    hkdf_sha256(Some(&[0u8; 32]), &km, X3DH_INFO, &mut sk.0)?;
    Ok(sk)
}

/// The initiator's side of X3DH §3.3. `ephemeral` is EK_A (fresh per run).
pub(crate) fn initiate(
    local: &IdentityKeyPair,
    bundle: &PrekeyBundle,
    ephemeral: &StaticSecret,
) -> Result<Secret32, CryptoError> {
    let signed_prekey = bundle.signed_prekey().public_key();
    let dh1 = x25519(local.dh_secret(), &signed_prekey)?;
    let dh2 = x25519(ephemeral, bundle.identity().dh_public())?;
    let dh3 = x25519(ephemeral, &signed_prekey)?;
    match bundle.one_time_prekey() {
        Some(one_time) => {
            let dh4 = x25519(ephemeral, &one_time.public_key())?;
            kdf(&[&dh1, &dh2, &dh3, &dh4])
        }
        None => kdf(&[&dh1, &dh2, &dh3]),
    }
}

/// The responder's side of X3DH §3.4 (same DH values, computed with the secret halves).
pub(crate) fn respond(
    local: &IdentityKeyPair,
    signed_prekey: &SignedPrekeyPair,
    one_time_prekey: Option<&OneTimePrekeyPair>,
    initiator: &IdentityKey,
    ephemeral_public: &PublicKey,
) -> Result<Secret32, CryptoError> {
    let dh1 = x25519(signed_prekey.secret(), initiator.dh_public())?;
    let dh2 = x25519(local.dh_secret(), ephemeral_public)?;
    let dh3 = x25519(signed_prekey.secret(), ephemeral_public)?;
    match one_time_prekey {
        Some(one_time) => {
            let dh4 = x25519(one_time.secret(), ephemeral_public)?;
            kdf(&[&dh1, &dh2, &dh3, &dh4])
        }
        None => kdf(&[&dh1, &dh2, &dh3]),
    }
}

/// The X3DH initial message (X3DH §3.3) with the first Double Ratchet message inside.
/// Until the initiator hears back, every message it sends is an initial message, so a lost
/// first envelope does not strand the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMessage {
    pub(crate) ephemeral_key: [u8; 32],
    pub(crate) signed_prekey_id: PrekeyId,
    pub(crate) one_time_prekey_id: Option<PrekeyId>,
    pub(crate) ratchet_message: RatchetMessage,
}

impl InitialMessage {
    /// EK_A, the initiator's ephemeral public key (also the session's "base key").
    pub fn ephemeral_key(&self) -> PublicKey {
        PublicKey::from(self.ephemeral_key)
    }

    /// Which of the responder's signed prekeys was used.
    pub fn signed_prekey_id(&self) -> PrekeyId {
        self.signed_prekey_id
    }

    /// Which one-time prekey was used, if any.
    pub fn one_time_prekey_id(&self) -> Option<PrekeyId> {
        self.one_time_prekey_id
    }

    /// The Double Ratchet message inside.
    pub fn ratchet_message(&self) -> &RatchetMessage {
        &self.ratchet_message
    }

    /// Encodes the layout in the module docs.
    pub fn to_bytes(&self) -> Vec<u8> {
        let ratchet = self.ratchet_message.to_bytes();
        let mut out = Vec::with_capacity(42 + ratchet.len());
        out.push(X3DH_SUITE_X25519);
        out.extend_from_slice(&self.ephemeral_key);
        out.extend_from_slice(&self.signed_prekey_id.0.to_be_bytes());
        match self.one_time_prekey_id {
            Some(id) => {
                out.push(1);
                out.extend_from_slice(&id.0.to_be_bytes());
            }
            None => out.push(0),
        }
        out.extend_from_slice(&ratchet);
        out
    }

    /// Decodes the layout in the module docs; an unknown suite is [`DecodeError::UnsupportedVersion`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let suite = reader.u8()?;
        if suite != X3DH_SUITE_X25519 {
            return Err(DecodeError::UnsupportedVersion { found: suite });
        }
        let ephemeral_key = reader.array::<32>()?;
        let signed_prekey_id = PrekeyId(reader.u32()?);
        let one_time_prekey_id = match reader.u8()? {
            0 => None,
            1 => Some(PrekeyId(reader.u32()?)),
            other => return Err(DecodeError::UnknownTag { found: other }),
        };
        let ratchet_message = RatchetMessage::from_bytes(reader.rest())?;
        Ok(Self {
            ephemeral_key,
            signed_prekey_id,
            one_time_prekey_id,
            ratchet_message,
        })
    }
}
