//! Every way an engine command can fail ([`EngineError`]) and the error kind the UI maps
//! (`ui/CONTRACT.md` § Errors).

use sealpost_relay_client::ClientError;

use crate::content::MAX_TEXT_BYTES;
use crate::invite::InviteError;
use crate::open::OpenProfileError;
use crate::store::{InviteStatus, SendingBlockedReason, StoreError};
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
    /// Anything else.
    #[error("internal error: {0}")]
    Internal(String),
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
            Self::Internal(_) => "internal",
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
            StoreError::NotFound { what: "contact" } => Self::ContactNotFound,
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
            Self::Internal(error.to_string())
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
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<sealpost_crypto::CryptoError> for EngineError {
    fn from(error: sealpost_crypto::CryptoError) -> Self {
        Self::Internal(format!("crypto: {error}"))
    }
}

impl From<sealpost_crypto::DecodeError> for EngineError {
    fn from(error: sealpost_crypto::DecodeError) -> Self {
        Self::Internal(format!("decode: {error}"))
    }
}

impl From<getrandom::Error> for EngineError {
    fn from(error: getrandom::Error) -> Self {
        Self::Internal(format!("random: {error}"))
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
}
