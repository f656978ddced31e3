//! Sealed envelopes: RFC 9180 HPKE in Base mode (§5.1.1) with DHKEM(X25519, HKDF-SHA256),
//! HKDF-SHA256 and ChaCha20Poly1305 (suite 0x0020/0x0001/0x0003), through the `hpke` crate.
//!
//! Each mailbox has its own X25519 sealing key pair ([`MailboxSealingKey`]); senders learn the
//! public half from the invite or the X3DH reply (`docs/crypto.md` § Sealed envelope). Layouts:
//!
//! ```text
//! envelope  = version u8 (1) ‖ enc (32) ‖ HPKE ciphertext (bucket + 16)
//! aad       = version u8 (1) ‖ enc (32)                       -- the cleartext header
//! info      = "sealpost/v1/envelope" (20) ‖ version u8 (1) ‖ send ID (32)
//! plaintext = sender IdentityKey (64) ‖ EnvelopeId (16) ‖ len u32 BE ‖ session message (len)
//!             ‖ zero bytes up to the bucket size
//! ```
//!
//! The plaintext (all of it: sender, id, type and body) is padded to the smallest of
//! [`PADDING_BUCKETS`] that fits, so the relay sees only the bucket. The opener refuses
//! ciphertexts whose length is not a bucket + 16, non-zero padding, and any other version.
//!
//! HPKE Base does not authenticate the sender: anyone holding the mailbox's public key can seal
//! with any claimed sender identity. The claimed sender is only trustworthy after
//! [`crate::Session::receive`] has checked it against the session's peer and the ratchet message
//! has opened under AD = IK_A ‖ IK_B.

use core::fmt;

use hpke::aead::{AeadCtxR, AeadCtxS, ChaCha20Poly1305};
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::codec::Reader;
use crate::error::{CryptoError, DecodeError};
use crate::identity::{IDENTITY_KEY_LEN, IdentityKey};
use crate::primitives::{AEAD_TAG_LEN, random_bytes};
use crate::ratchet::SessionMessage;

/// The envelope format version, first byte of every envelope.
pub const ENVELOPE_VERSION: u8 = 1;
/// The label at the start of HPKE `info`.
pub const ENVELOPE_INFO_LABEL: &[u8] = b"sealpost/v1/envelope";
/// Plaintext sizes the whole HPKE plaintext is padded to: 256 B, 1, 4, 16 and 64 KiB.
pub const PADDING_BUCKETS: [usize; 5] = [256, 1024, 4096, 16384, 65536];
/// Length of the cleartext header (version ‖ enc).
pub const ENVELOPE_HEADER_LEN: usize = 33;
/// Bytes of the plaintext before the session message: sender (64) ‖ envelope id (16) ‖ len (4).
pub const PLAINTEXT_OVERHEAD: usize = IDENTITY_KEY_LEN + EnvelopeId::LEN + 4;
/// The largest encoded session message that fits the largest bucket.
pub const MAX_SESSION_MESSAGE_LEN: usize = 65536 - PLAINTEXT_OVERHEAD;
/// The largest envelope on the wire.
pub const MAX_ENVELOPE_LEN: usize = ENVELOPE_HEADER_LEN + 65536 + AEAD_TAG_LEN;

/// The mailbox's send ID (32 bytes, from the relay protocol; defined once in `sealpost-ids`):
/// bound into HPKE `info`, so an envelope only opens for the mailbox it was sealed to.
pub use sealpost_ids::SendId;

/// The random 16-byte envelope identifier chosen by the sender, inside the seal (defined once
/// in `sealpost-ids`). Clients deduplicate on (contact, EnvelopeId) after a successful open
/// (`docs/engine.md` § Receiving).
pub use sealpost_ids::EnvelopeId;

/// A mailbox's public sealing key (X25519), shared in invites and X3DH replies.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MailboxSealingPublicKey([u8; 32]);

impl MailboxSealingPublicKey {
    /// Wraps 32 bytes (all X25519 encodings are accepted; an all-zero DH aborts sealing).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }
}

impl fmt::Debug for MailboxSealingPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MailboxSealingPublicKey({:02x?}…)", &self.0[..4])
    }
}

/// A mailbox's secret sealing key. One per mailbox; never the identity key.
#[derive(Clone)]
pub struct MailboxSealingKey {
    secret: <X25519HkdfSha256 as hpke::Kem>::PrivateKey,
    public: MailboxSealingPublicKey,
}

impl MailboxSealingKey {
    /// A fresh key pair from the OS CSPRNG.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        random_bytes(bytes.as_mut())?;
        Self::from_secret_bytes(&bytes)
    }

    /// RFC 9180 §7.1.3 DeriveKeyPair(ikm), for the RFC's test vectors.
    #[doc(hidden)]
    pub fn derive_from_ikm(ikm: &[u8]) -> Self {
        let (secret, public) = X25519HkdfSha256::derive_keypair(ikm);
        let mut public_bytes = [0u8; 32];
        public_bytes.copy_from_slice(&public.to_bytes());
        Self {
            secret,
            public: MailboxSealingPublicKey(public_bytes),
        }
    }

    /// Rebuilds the key from its 32 secret bytes (as stored by the client).
    pub fn from_secret_bytes(bytes: &[u8; 32]) -> Result<Self, CryptoError> {
        let secret = <X25519HkdfSha256 as hpke::Kem>::PrivateKey::from_bytes(bytes)
            .map_err(|_| DecodeError::InvalidKeyEncoding)?;
        let public = X25519HkdfSha256::sk_to_pk(&secret);
        let mut public_bytes = [0u8; 32];
        public_bytes.copy_from_slice(&public.to_bytes());
        Ok(Self {
            secret,
            public: MailboxSealingPublicKey(public_bytes),
        })
    }

    /// The 32 secret bytes, for the encrypted store only.
    pub fn to_secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        let mut bytes = self.secret.to_bytes();
        out.copy_from_slice(&bytes);
        bytes.as_mut_slice().zeroize();
        out
    }

    /// The public half.
    pub fn public(&self) -> &MailboxSealingPublicKey {
        &self.public
    }
}

impl ConstantTimeEq for MailboxSealingKey {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.secret.ct_eq(&other.secret)
    }
}

/// The exact HPKE wiring the envelopes use. Hidden: public only so that the RFC 9180 vector tests
/// can drive the same functions with the RFC's `info` and ephemeral IKM.
#[doc(hidden)]
pub mod hpke_wiring {
    use super::*;

    /// RFC 9180 KEM 0x0020.
    pub type Kem = X25519HkdfSha256;
    /// RFC 9180 KDF 0x0001.
    pub type Kdf = HkdfSha256;
    /// RFC 9180 AEAD 0x0003.
    pub type Aead = ChaCha20Poly1305;
    /// Sender context.
    pub type SenderContext = AeadCtxS<Aead, Kdf, Kem>;
    /// Receiver context.
    pub type ReceiverContext = AeadCtxR<Aead, Kdf, Kem>;

    /// Most `info` bytes accepted (the crate panics at 2^16 - 5; stay far below).
    const MAX_INFO_LEN: usize = 1024;

    /// An RNG that hands out exactly the 32 bytes of ephemeral IKM once. HPKE's DHKEM
    /// GenerateKeyPair is DeriveKeyPair(random(32)) (RFC 9180 §7.1.3), so feeding it the IKM
    /// makes `enc` deterministic, which is what the RFC vectors need and what production uses
    /// with IKM from the OS CSPRNG.
    struct OneShotRng {
        ikm: [u8; 32],
        served: usize,
        over_requested: bool,
    }

    impl Drop for OneShotRng {
        fn drop(&mut self) {
            self.ikm.zeroize();
        }
    }

    impl OneShotRng {
        fn fill(&mut self, dst: &mut [u8]) {
            for byte in dst.iter_mut() {
                match self.ikm.get(self.served) {
                    Some(value) => {
                        *byte = *value;
                        self.served += 1;
                    }
                    None => {
                        *byte = 0;
                        self.over_requested = true;
                    }
                }
            }
        }
    }

    impl hpke::rand_core::TryRng for OneShotRng {
        type Error = core::convert::Infallible;

        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            let mut bytes = [0u8; 4];
            self.fill(&mut bytes);
            Ok(u32::from_le_bytes(bytes))
        }

        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            let mut bytes = [0u8; 8];
            self.fill(&mut bytes);
            Ok(u64::from_le_bytes(bytes))
        }

        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            self.fill(dst);
            Ok(())
        }
    }

    impl hpke::rand_core::TryCryptoRng for OneShotRng {}

    /// SetupBaseS(pkR, info) (RFC 9180 §5.1.1) with the ephemeral key DeriveKeyPair(ikm_e).
    /// Returns `enc` and the sender context.
    pub fn setup_sender(
        recipient: &MailboxSealingPublicKey,
        info: &[u8],
        ikm_e: &[u8; 32],
    ) -> Result<([u8; 32], SenderContext), CryptoError> {
        if info.len() > MAX_INFO_LEN {
            return Err(CryptoError::SealFailed);
        }
        let public = <Kem as hpke::Kem>::PublicKey::from_bytes(&recipient.0)
            .map_err(|_| CryptoError::SealFailed)?;
        let mut rng = OneShotRng {
            ikm: *ikm_e,
            served: 0,
            over_requested: false,
        };
        let (encapped, context) =
            hpke::setup_sender_with_rng::<Aead, Kdf, Kem>(&OpModeS::Base, &public, info, &mut rng)
                .map_err(|_| CryptoError::SealFailed)?;
        if rng.over_requested || rng.served != 32 {
            return Err(CryptoError::SealFailed);
        }
        let mut enc = [0u8; 32];
        enc.copy_from_slice(&encapped.to_bytes());
        Ok((enc, context))
    }

    /// SetupBaseR(enc, skR, info) (RFC 9180 §5.1.1).
    pub fn setup_receiver(
        mailbox: &MailboxSealingKey,
        enc: &[u8; 32],
        info: &[u8],
    ) -> Result<ReceiverContext, CryptoError> {
        if info.len() > MAX_INFO_LEN {
            return Err(CryptoError::EnvelopeOpenFailed);
        }
        let encapped = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc)
            .map_err(|_| CryptoError::EnvelopeOpenFailed)?;
        hpke::setup_receiver::<Aead, Kdf, Kem>(&OpModeR::Base, &mailbox.secret, &encapped, info)
            .map_err(|_| CryptoError::EnvelopeOpenFailed)
    }
}

/// HPKE `info` = "sealpost/v1/envelope" ‖ version ‖ send ID (53 bytes).
pub fn envelope_info(version: u8, send_id: &SendId) -> [u8; 53] {
    let mut info = [0u8; 53];
    info[..20].copy_from_slice(ENVELOPE_INFO_LABEL);
    info[20] = version;
    info[21..].copy_from_slice(&send_id.0);
    info
}

/// The smallest bucket that holds `len` plaintext bytes.
pub fn bucket_for(len: usize) -> Option<usize> {
    PADDING_BUCKETS
        .iter()
        .copied()
        .find(|bucket| *bucket >= len)
}

/// A sealed envelope ready to SEND, with the id the sender chose.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedEnvelope {
    envelope_id: EnvelopeId,
    bytes: Vec<u8>,
}

impl SealedEnvelope {
    /// The random id inside the seal (keep it with the outbox row).
    pub fn envelope_id(&self) -> EnvelopeId {
        self.envelope_id
    }

    /// The envelope bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The envelope bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl fmt::Debug for SealedEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedEnvelope")
            .field("envelope_id", &self.envelope_id)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// An envelope that opened with the mailbox key. Its sender is only *claimed* until
/// [`crate::Session::receive`] or [`crate::Session::respond`] accepts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedEnvelope {
    sender: IdentityKey,
    envelope_id: EnvelopeId,
    payload: SessionMessage,
}

impl OpenedEnvelope {
    /// The claimed sender's identity key (from inside the seal).
    pub fn sender(&self) -> &IdentityKey {
        &self.sender
    }

    /// The sender-chosen envelope id (deduplicate on it after a successful receive).
    pub fn envelope_id(&self) -> EnvelopeId {
        self.envelope_id
    }

    /// The session message inside.
    pub fn payload(&self) -> &SessionMessage {
        &self.payload
    }
}

/// Builds the padded HPKE plaintext: sender ‖ id ‖ len u32 ‖ message ‖ zeros to the bucket.
fn padded_plaintext(
    sender: &IdentityKey,
    envelope_id: &EnvelopeId,
    message: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let used = PLAINTEXT_OVERHEAD + message.len();
    let bucket = bucket_for(used).ok_or(CryptoError::PayloadTooLarge {
        len: message.len(),
        max: MAX_SESSION_MESSAGE_LEN,
    })?;
    let len = u32::try_from(message.len()).map_err(|_| DecodeError::LengthOutOfRange)?;
    let mut plaintext = Vec::with_capacity(bucket + AEAD_TAG_LEN);
    plaintext.extend_from_slice(&sender.to_bytes());
    plaintext.extend_from_slice(&envelope_id.0);
    plaintext.extend_from_slice(&len.to_be_bytes());
    plaintext.extend_from_slice(message);
    plaintext.resize(bucket, 0);
    Ok(plaintext)
}

/// Seals raw session-message bytes. Hidden: tests use it to build tampered inner contents
/// (wrong type byte, wrong sender) that a real sender could seal too.
#[doc(hidden)]
pub fn seal_raw(
    recipient: &MailboxSealingPublicKey,
    send_id: &SendId,
    sender: &IdentityKey,
    envelope_id: EnvelopeId,
    message: &[u8],
) -> Result<SealedEnvelope, CryptoError> {
    let plaintext = Zeroizing::new(padded_plaintext(sender, &envelope_id, message)?);
    let mut ikm_e = Zeroizing::new([0u8; 32]);
    random_bytes(ikm_e.as_mut())?;
    let info = envelope_info(ENVELOPE_VERSION, send_id);
    let (enc, mut context) = hpke_wiring::setup_sender(recipient, &info, &ikm_e)?;
    let mut header = [0u8; ENVELOPE_HEADER_LEN];
    header[0] = ENVELOPE_VERSION;
    header[1..].copy_from_slice(&enc);
    let sealed = context
        .seal(&plaintext, &header)
        .map_err(|_| CryptoError::SealFailed)?;
    let mut bytes = Vec::with_capacity(ENVELOPE_HEADER_LEN + sealed.len());
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&sealed);
    Ok(SealedEnvelope { envelope_id, bytes })
}

/// Seals `message` from `sender` to the mailbox with public key `recipient` and send ID
/// `send_id`, with a fresh random [`EnvelopeId`]. Most callers want [`crate::Session::seal`].
pub fn seal_envelope(
    recipient: &MailboxSealingPublicKey,
    send_id: &SendId,
    sender: &IdentityKey,
    message: &SessionMessage,
) -> Result<SealedEnvelope, CryptoError> {
    seal_raw(
        recipient,
        send_id,
        sender,
        EnvelopeId::random().map_err(|_| CryptoError::Randomness)?,
        &message.to_bytes(),
    )
}

/// Opens an envelope that arrived on the mailbox whose sealing key is `mailbox` and whose send
/// ID is `send_id`. Never panics; every malformed, tampered, reflected or misdirected envelope
/// is an error. The sender is still only claimed: hand the result to [`crate::Session::receive`].
pub fn open_envelope(
    mailbox: &MailboxSealingKey,
    send_id: &SendId,
    envelope: &[u8],
) -> Result<OpenedEnvelope, CryptoError> {
    let mut reader = Reader::new(envelope);
    let version = reader.u8()?;
    if version != ENVELOPE_VERSION {
        return Err(DecodeError::UnsupportedVersion { found: version }.into());
    }
    let enc = reader.array::<32>()?;
    let sealed = reader.rest();
    let Some(plaintext_len) = sealed.len().checked_sub(AEAD_TAG_LEN) else {
        return Err(DecodeError::Truncated.into());
    };
    if !PADDING_BUCKETS.contains(&plaintext_len) {
        return Err(DecodeError::LengthOutOfRange.into());
    }
    let info = envelope_info(version, send_id);
    let mut context = hpke_wiring::setup_receiver(mailbox, &enc, &info)?;
    let header = envelope
        .get(..ENVELOPE_HEADER_LEN)
        .ok_or(DecodeError::Truncated)?;
    let plaintext = Zeroizing::new(
        context
            .open(sealed, header)
            .map_err(|_| CryptoError::EnvelopeOpenFailed)?,
    );
    decode_plaintext(&plaintext)
}

/// Parses an opened HPKE plaintext (sender ‖ id ‖ len ‖ message ‖ zero padding). Hidden: public
/// only so that the fuzz target can reach the parser behind the AEAD.
#[doc(hidden)]
pub fn decode_plaintext(plaintext: &[u8]) -> Result<OpenedEnvelope, CryptoError> {
    let mut reader = Reader::new(plaintext);
    let sender = IdentityKey::from_bytes(&reader.array::<IDENTITY_KEY_LEN>()?)?;
    let envelope_id = EnvelopeId(reader.array()?);
    let len = usize::try_from(reader.u32()?).map_err(|_| DecodeError::LengthOutOfRange)?;
    let message = reader.take(len)?;
    if reader.rest().iter().any(|byte| *byte != 0) {
        return Err(DecodeError::InvalidPadding.into());
    }
    let payload = SessionMessage::from_bytes(message)?;
    Ok(OpenedEnvelope {
        sender,
        envelope_id,
        payload,
    })
}

impl ZeroizeOnDrop for MailboxSealingKey {}
