//! Sealpost's sealing core: identities, X3DH, the Double Ratchet and HPKE sealed envelopes. No IO, no async.
//!
//! The layers, from the outside in (see `docs/crypto.md` for every byte layout):
//!
//! 1. [`envelope`]: an RFC 9180 HPKE Base-mode seal to the recipient *mailbox's* own X25519 key.
//!    It hides the sender's identity, the envelope ID, the message type and (through bucket
//!    padding) most of the size from the relay.
//! 2. [`x3dh`]: Signal's X3DH key agreement, which starts a session from a [`PrekeyBundle`].
//! 3. [`ratchet`]: Signal's Double Ratchet with ChaCha20-Poly1305, which gives every message
//!    forward secrecy and post-compromise security and is the only layer that authenticates the sender.
//!
//! [`identity`] holds the long-term identity (a 32-byte seed), [`prekey`] the signed and one-time
//! prekeys, [`safety_number`] the 60-digit number and QR payload users compare.
//!
//! Typical receive path: [`envelope::open_envelope`] with the mailbox's [`MailboxSealingKey`] →
//! [`Session::receive`] (refuses any sender but the session's peer) or, on a fresh mailbox,
//! [`Session::respond`].
#![forbid(unsafe_code)]

pub mod attachment;
mod codec;
pub mod envelope;
pub mod error;
pub mod identity;
pub mod prekey;
#[doc(hidden)]
pub mod primitives;
pub mod ratchet;
pub mod safety_number;
pub mod x3dh;

pub use envelope::{
    EnvelopeId, MailboxSealingKey, MailboxSealingPublicKey, OpenedEnvelope, SealedEnvelope, SendId,
    open_envelope, seal_envelope,
};
pub use error::{CryptoError, DecodeError};
pub use identity::{
    IdentityKey, IdentityKeyPair, IdentitySeed, IdentitySignature, SignatureContext,
};
pub use prekey::{
    OneTimePrekey, OneTimePrekeyPair, PrekeyBundle, PrekeyId, SignedPrekey, SignedPrekeyPair,
};
pub use ratchet::{RatchetMessage, Session, SessionMessage};
pub use safety_number::SafetyNumber;
pub use x3dh::InitialMessage;
