//! The crate's typed errors. Every failure on attacker-supplied bytes maps to one of these; nothing panics.

use thiserror::Error;

/// Why bytes could not be decoded. Decoders never panic; they return one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ended before the structure was complete.
    #[error("input is truncated")]
    Truncated,
    /// Bytes were left over after the structure ended.
    #[error("input has trailing bytes")]
    TrailingBytes,
    /// The version byte names a version this build does not accept (unknown, or older than allowed).
    #[error("unsupported version {found}")]
    UnsupportedVersion {
        /// The version byte that was found.
        found: u8,
    },
    /// A type/tag byte has a value that this version does not define.
    #[error("unknown tag {found}")]
    UnknownTag {
        /// The tag byte that was found.
        found: u8,
    },
    /// A length field is out of the allowed range.
    #[error("length out of range")]
    LengthOutOfRange,
    /// The padding after the payload is not all zero bytes.
    #[error("invalid padding")]
    InvalidPadding,
    /// A public key or signature field is not a valid encoding.
    #[error("invalid key or signature encoding")]
    InvalidKeyEncoding,
}

/// Everything that can go wrong in the sealing core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CryptoError {
    /// Untrusted bytes were malformed or of a refused version.
    #[error("decode error: {0}")]
    Decode(#[from] DecodeError),
    /// The operating system's random number generator failed.
    #[error("the OS random number generator failed")]
    Randomness,
    /// An identity signature (over a prekey or an invite) did not verify.
    #[error("invalid identity signature")]
    InvalidSignature,
    /// An X25519 result was all zeros (a low-order point was supplied): refused per X3DH §3.3 / RFC 7748 §6.1.
    #[error("non-contributory X25519 result")]
    NonContributory,
    /// HKDF was asked for more output than it can give (RFC 5869 §2.3), or HMAC refused its key.
    #[error("HKDF/HMAC parameters out of range")]
    KdfOutputLength,
    /// HPKE setup or sealing failed.
    #[error("sealing failed")]
    SealFailed,
    /// The sealed envelope did not open with this mailbox's key, send ID and header.
    #[error("envelope did not open")]
    EnvelopeOpenFailed,
    /// The plaintext is larger than the largest padding bucket allows.
    #[error("payload too large: {len} bytes (max {max})")]
    PayloadTooLarge {
        /// The length that was offered.
        len: usize,
        /// The largest length that fits.
        max: usize,
    },
    /// The envelope was sealed by someone other than this session's peer (reflection, forgery).
    #[error("the sealed sender is not this session's peer")]
    SenderNotPeer,
    /// A ratchet message failed authentication. The session state is unchanged.
    #[error("message did not decrypt; session unchanged")]
    DecryptFailed,
    /// The message is authentic (its AEAD opened on a scratch copy of the chain) but lies more
    /// than MAX_SKIP keys past the chain position (Double Ratchet §3.5 `SkipMessageKeys`): the
    /// session cannot follow without dropping keys. Its plaintext is discarded and the session
    /// state is unchanged; the caller may restart the session with X3DH (`docs/crypto.md`).
    #[error(
        "authentic message {skipped} keys ahead (more than MAX_SKIP = {max_skip}); restart with X3DH"
    )]
    AuthenticGapBeyondMaxSkip {
        /// How many message keys would have to be skipped.
        skipped: u64,
        /// The limit (MAX_SKIP).
        max_skip: u64,
    },
    /// The header asks for a gap beyond the authentication cap (`ratchet::MAX_CHECKED_GAP`), so
    /// the message was refused without checking it: unauthenticated input. The session state is
    /// unchanged; nothing should be restarted on the strength of it.
    #[error(
        "message claims a gap of {requested} keys, beyond the {limit} checked; refused unchecked"
    )]
    GapBeyondCheckLimit {
        /// How many chain steps the header asks for.
        requested: u64,
        /// The cap.
        limit: u64,
    },
    /// The message was already decrypted (a replay) or its skipped key expired.
    #[error("message already received or its key expired")]
    DuplicateOrExpired,
    /// An X3DH initial message refers to a prekey that the caller did not supply.
    #[error("initial message refers to a prekey that was not supplied")]
    PrekeyMismatch,
    /// An X3DH initial message arrived that belongs to a different (newer) session: the caller
    /// should run [`crate::Session::respond`] and, if it succeeds, replace this session.
    #[error("initial message for a new session")]
    NewSessionOffered,
    /// An X3DH initial message arrived where only a normal ratchet message is allowed.
    #[error("unexpected initial message")]
    UnexpectedInitialMessage,
    /// A normal ratchet message arrived where an X3DH initial message was required.
    #[error("expected an initial message")]
    ExpectedInitialMessage,
    /// The session has no sending chain (only possible for a corrupted stored state).
    #[error("session cannot send")]
    NotReadyToSend,
    /// The sending chain's counter would overflow.
    #[error("message counter exhausted")]
    CounterExhausted,
}
