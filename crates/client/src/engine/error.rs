//! Every way an engine command can fail ([`EngineError`]) and the error kind the UI maps
//! (`ui/CONTRACT.md` § Errors).

use sealpost_crypto::{CryptoError, DecodeError};
use sealpost_relay_client::{ClientError, SubscriberGone, TlsSetupError};

use crate::content::{ContentError, MAX_TEXT_BYTES};
use crate::invite::InviteError;
use crate::open::OpenProfileError;
use crate::profile::ProfileError;
use crate::store::{ContactId, InviteStatus, Missing, SendingBlockedReason, StoreError};
use crate::vault::VaultError;

/// Every way a command can fail. [`EngineError::kind`] is the contract's error kind.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A malformed argument.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Display name empty after trim or longer than 64 bytes.
    #[error("the display name must be 1 to 64 characters")]
    DisplayNameInvalid,
    /// A relay URL that is not `wss://…` (or `ws://` to loopback).
    #[error("invalid relay URL: {0}")]
    RelayUrlInvalid(String),
    /// A relay could not be reached when it had to be.
    #[error("relay unreachable: {0}")]
    RelayUnreachable(ClientError),
    /// The relay refused CREATE: it needs a password, or the stored one is wrong.
    #[error("the relay needs a password, or the stored one is wrong")]
    RelayPasswordRequired,
    /// The invite does not decode or its signature is bad.
    #[error("invite corrupt: {0}")]
    InviteCorrupt(#[from] InviteError),
    /// The invite expired.
    #[error("the invite has expired")]
    InviteExpired,
    /// The user's own invite.
    #[error("this is your own invite")]
    InviteOwn,
    /// The invite was already used.
    #[error("the invite was already used")]
    InviteUsed,
    /// The invite was revoked (or is unknown).
    #[error("the invite was revoked or is unknown")]
    InviteRevoked,
    /// The identity is already a contact.
    #[error("this person is already a contact")]
    ContactExists,
    /// Unknown contact id.
    #[error("no such contact")]
    ContactNotFound,
    /// The contact is blocked.
    #[error("the contact is blocked")]
    ContactBlocked,
    /// A key change awaits the user's decision (T8).
    #[error("the contact's key changed; accept the change before sending")]
    KeyChangePending,
    /// The text is too long.
    #[error("the message is longer than {MAX_TEXT_BYTES} bytes")]
    MessageTooLong,
    /// The OS keychain is missing or locked.
    #[error("keychain unavailable: {0}")]
    KeychainUnavailable(VaultError),
    /// The profile is onboarded but the keychain has no identity key for it (locked, reset or
    /// another keychain). Retryable; Sealpost never makes a new identity for it.
    #[error("identity key missing: {0}")]
    IdentityMissing(OpenProfileError),
    /// The profile's database exists but the keychain has no key for it. Retryable.
    #[error("database key missing: {0}")]
    DatabaseKeyMissing(OpenProfileError),
    /// SQLCipher or disk failure.
    #[error("storage: {0}")]
    Storage(StoreError),
    /// The profile is not onboarded yet.
    #[error("the profile is not set up yet")]
    NotOnboarded,
    /// The profile is already onboarded.
    #[error("the profile is already set up")]
    AlreadyOnboarded,
    /// Unknown group id.
    #[error("no such group")]
    GroupNotFound,
    /// A group rule refused it: the role, membership, the size cap, the name (`docs/engine.md`
    /// § Groups).
    #[error("group: {0}")]
    Group(#[from] crate::group::GroupError),
    /// Store or crypto work on the blocking pool panicked, or the runtime dropped it while
    /// shutting down.
    #[error("background work failed: {0}")]
    BlockingTask(tokio::task::JoinError),
    /// The keychain answered but an entry could not be read or written (not
    /// [`EngineError::KeychainUnavailable`]).
    #[error("keychain: {0}")]
    Keychain(VaultError),
    /// The profile's directory could not be found or made.
    #[error("profile directory: {0}")]
    ProfileDirectory(ProfileError),
    /// The profile could not be opened for another reason than a missing key or store failure.
    #[error("profile: {0}")]
    ProfileOpen(OpenProfileError),
    /// A backup could not be written (`docs/backup.md`).
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
    /// The TLS setup for relay connections failed (e.g. an extra CA that does not parse).
    #[error("TLS setup: {0}")]
    TlsSetup(TlsSetupError),
    /// A relay's subscriber task has stopped (the engine is shutting down).
    #[error("the relay subscription has stopped")]
    SubscriberGone(SubscriberGone),
    /// A sealing, opening or key operation failed.
    #[error("crypto: {0}")]
    Crypto(CryptoError),
    /// Key or session bytes of ours (from the store) do not decode.
    #[error("decode: {0}")]
    Decode(DecodeError),
    /// Key bytes of ours (from the store) have the wrong length.
    #[error("expected {expected} bytes of key material, found {found}")]
    KeyLength {
        /// The length the key needs.
        expected: usize,
        /// The length stored.
        found: usize,
    },
    /// The operating system's random number generator failed.
    #[error("random: {0}")]
    Random(getrandom::Error),
    /// A ratchet plaintext of ours could not be encoded.
    #[error("content: {0}")]
    Content(ContentError),
    /// The stored settings object does not parse or could not be written.
    #[error("settings: {0}")]
    Settings(serde_json::Error),
    /// There is no session with the contact to seal with.
    #[error("no session with this contact")]
    NoSession {
        /// The contact.
        contact: ContactId,
    },
    /// The contact has no address to send to.
    #[error("the contact has no address")]
    NoAddress {
        /// The contact.
        contact: ContactId,
    },
    /// The file is larger than this build sends.
    #[error("the file is too large")]
    AttachmentTooLarge,
    /// Unknown attachment id.
    #[error("no such attachment")]
    AttachmentNotFound,
    /// The attachment is not downloaded (or uploaded) yet.
    #[error("the attachment is not ready")]
    AttachmentNotReady,
    /// The attachment's encryption refused it: a tampered, reordered, truncated or duplicated
    /// chunk, a key that does not match its commitment, or a digest that does not match.
    #[error("attachment: {0}")]
    Attachment(sealpost_crypto::attachment::AttachmentError),
    /// The relay's blob store refused or could not be reached.
    #[error("blob store: {0}")]
    Blob(#[from] crate::blobs::BlobError),
    /// An attachment's chunk files could not be read or written, or a saved file not written.
    #[error("attachment file: {0}")]
    AttachmentIo(std::io::Error),
    /// An image that does not decode within the limits (`crate::images`).
    #[error("image: {0}")]
    Image(crate::images::ImageError),
    /// A session restart needs the contact's signed prekey, and none is known.
    #[error("no signed prekey of the contact to restart with")]
    NoPeerPrekey {
        /// The contact.
        contact: ContactId,
    },
}

impl EngineError {
    /// The contract's error kind (`ui/CONTRACT.md` § Errors).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "invalid_input",
            Self::DisplayNameInvalid => "display_name_invalid",
            Self::RelayUrlInvalid(_) => "relay_url_invalid",
            Self::RelayUnreachable(_) => "relay_unreachable",
            Self::RelayPasswordRequired => "relay_password_required",
            Self::InviteCorrupt(_) => "invite_corrupt",
            Self::InviteExpired => "invite_expired",
            Self::InviteOwn => "invite_own",
            Self::InviteUsed => "invite_used",
            Self::InviteRevoked => "invite_revoked",
            Self::ContactExists => "contact_exists",
            Self::ContactNotFound => "contact_not_found",
            Self::ContactBlocked => "contact_blocked",
            Self::KeyChangePending => "key_change_pending",
            Self::MessageTooLong => "message_too_long",
            Self::KeychainUnavailable(_) => "keychain_unavailable",
            Self::IdentityMissing(_) => "identity_missing",
            Self::DatabaseKeyMissing(_) => "database_key_missing",
            Self::Storage(_) => "storage",
            Self::NotOnboarded => "not_onboarded",
            Self::AlreadyOnboarded => "already_onboarded",
            Self::GroupNotFound => "group_not_found",
            Self::Group(error) => error.kind(),
            Self::Backup(error) => error.kind(),
            Self::AttachmentTooLarge => "attachment_too_large",
            Self::AttachmentNotFound => "attachment_not_found",
            Self::AttachmentNotReady => "attachment_not_ready",
            Self::Attachment(sealpost_crypto::attachment::AttachmentError::TooLarge) => {
                "attachment_too_large"
            }
            Self::Attachment(sealpost_crypto::attachment::AttachmentError::Randomness) => {
                "internal"
            }
            Self::Attachment(_) => "attachment_tampered",
            Self::Blob(crate::blobs::BlobError::Gone) => "attachment_expired",
            Self::Blob(crate::blobs::BlobError::TooLarge | crate::blobs::BlobError::Quota) => {
                "attachment_too_large"
            }
            Self::Blob(crate::blobs::BlobError::Unavailable(_)) => "relay_unreachable",
            Self::Blob(_) => "internal",
            Self::AttachmentIo(_) => "storage",
            Self::Image(_) => "invalid_input",
            Self::BlockingTask(_)
            | Self::Keychain(_)
            | Self::ProfileDirectory(_)
            | Self::ProfileOpen(_)
            | Self::TlsSetup(_)
            | Self::SubscriberGone(_)
            | Self::Crypto(_)
            | Self::Decode(_)
            | Self::KeyLength { .. }
            | Self::Random(_)
            | Self::Content(_)
            | Self::Settings(_)
            | Self::NoSession { .. }
            | Self::NoAddress { .. }
            | Self::NoPeerPrekey { .. } => "internal",
        }
    }
}

impl From<ClientError> for EngineError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::PasswordRequired => Self::RelayPasswordRequired,
            other => Self::RelayUnreachable(other),
        }
    }
}

impl From<StoreError> for EngineError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::SendingBlocked {
                reason: SendingBlockedReason::ContactBlocked,
            } => Self::ContactBlocked,
            StoreError::SendingBlocked {
                reason: SendingBlockedReason::KeyChangePending,
            } => Self::KeyChangePending,
            StoreError::NotFound {
                what: Missing::Contact,
            } => Self::ContactNotFound,
            StoreError::InviteUnavailable { status } => match status {
                InviteStatus::Consumed => Self::InviteUsed,
                InviteStatus::Expired => Self::InviteExpired,
                InviteStatus::Revoked | InviteStatus::Open => Self::InviteRevoked,
            },
            other => Self::Storage(other),
        }
    }
}

impl From<VaultError> for EngineError {
    fn from(error: VaultError) -> Self {
        if error.is_keychain_unavailable() {
            Self::KeychainUnavailable(error)
        } else {
            Self::Keychain(error)
        }
    }
}

impl From<OpenProfileError> for EngineError {
    fn from(error: OpenProfileError) -> Self {
        match error {
            OpenProfileError::Vault(vault) => vault.into(),
            OpenProfileError::Store(store) => Self::Storage(store),
            missing @ OpenProfileError::IdentitySeedMissing { .. } => {
                Self::IdentityMissing(missing)
            }
            missing @ OpenProfileError::DatabaseKeyMissing { .. } => {
                Self::DatabaseKeyMissing(missing)
            }
            other => Self::ProfileOpen(other),
        }
    }
}

impl From<CryptoError> for EngineError {
    fn from(error: CryptoError) -> Self {
        Self::Crypto(error)
    }
}

impl From<DecodeError> for EngineError {
    fn from(error: DecodeError) -> Self {
        Self::Decode(error)
    }
}

impl From<getrandom::Error> for EngineError {
    fn from(error: getrandom::Error) -> Self {
        Self::Random(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each reason sending is blocked reaches the UI as its own error kind, told apart by type
    /// (not by the reason's text, which is for people and may change).
    #[test]
    fn each_sending_blocked_reason_has_its_own_error_kind() {
        for (reason, kind) in [
            (SendingBlockedReason::ContactBlocked, "contact_blocked"),
            (SendingBlockedReason::KeyChangePending, "key_change_pending"),
        ] {
            let error = EngineError::from(StoreError::SendingBlocked { reason });
            assert_eq!(error.kind(), kind, "{reason:?}");
        }
    }

    /// Crypto, decode, keychain and key-length failures keep their typed cause (a caller can
    /// match it) instead of becoming an `Internal` string; the UI's kind stays `internal`.
    #[test]
    fn crypto_keychain_and_key_failures_keep_their_typed_cause() {
        let crypto = EngineError::from(CryptoError::SealFailed);
        assert!(matches!(
            crypto,
            EngineError::Crypto(CryptoError::SealFailed)
        ));
        let decode = EngineError::from(DecodeError::Truncated);
        assert!(matches!(
            decode,
            EngineError::Decode(DecodeError::Truncated)
        ));
        let keychain = EngineError::from(VaultError::AmbiguousEntry {
            account: "a".into(),
        });
        assert!(matches!(
            keychain,
            EngineError::Keychain(VaultError::AmbiguousEntry { .. })
        ));
        let short = crate::engine::state::array32(&[0; 31]);
        assert!(matches!(
            short,
            Err(EngineError::KeyLength {
                expected: 32,
                found: 31
            })
        ));
        for error in [crypto, decode, keychain] {
            assert_eq!(error.kind(), "internal");
        }
    }
}
