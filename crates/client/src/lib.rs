//! The Sealpost client engine: everything the app does except drawing.
//!
//! This crate knows nothing of Tauri. Its foundation, built here, is the local half of the
//! messenger's security promise (`docs/threat-model.md` § A thief of the user's data directory,
//! `docs/engine.md`):
//!
//! - [`profile`]: a [`ProfileName`] and the data directory it owns, so two
//!   profiles run side by side on one machine.
//! - [`vault`]: the identity seed and the database key in the OS keychain (Secret Service, macOS
//!   Keychain, Windows Credential Manager) through the `keyring` crate. Never a file.
//! - [`store`]: the SQLCipher database keyed from the vault: contacts, mailboxes, invites,
//!   sessions, messages, the outbox and the dedupe table, with the two transactions that make
//!   delivery safe ([`Store::commit_sealed`](store::Store::commit_sealed) and
//!   [`Store::commit_received`](store::Store::commit_received)).
//! - [`open`]: [`open_profile`] joins the two without ever minting a key for an existing
//!   database or a new identity for an onboarded profile.
//! - [`scan`]: the data-at-rest scanner that proves no plaintext and no key byte lies on disk
//!   outside SQLCipher.
//!
//! - [`engine`]: the async engine the app drives (commands in, [`EngineEvent`]s out), with
//!   [`invite`] (the signed single-use invite) and [`content`] (what a ratchet message carries).
//! - [`blobs`]: the relay blob store as the attachment engine uses it.
//! - [`images`]: attachment images: metadata stripped and thumbnails at the sender, decoding
//!   with limits at the receiver.
//! - [`group`]: groups as pairwise fan-out over the 1:1 sessions: the group id, the roster CRDT
//!   and the refusal decisions (pure; the engine's `groups` module drives them).
//! - [`local_relay`]: the embedded local test relay shared by every profile of one user, and
//!   [`app`]: the facade the desktop shell holds (engine + local relay + `app_status`).
//! - [`backup`]: one passphrase-encrypted file holding the whole profile, and restoring it into a
//!   new profile whose sessions all restart (`docs/backup.md`).
//!
//! The storage layer is synchronous. The async engine (invites, delivery, relay connections) owns
//! one [`Store`] on a blocking thread or actor and talks to it with messages; the
//! store is `Send` but deliberately not `Sync`.
//!
//! Cryptographic values that belong to `sealpost-crypto` and `sealpost-wire` (identity keys,
//! ratchet session state, sealed envelopes, relay ids) are opaque byte newtypes here, so those
//! crates plug in without this crate depending on them.

/// Implements `subtle::ConstantTimeEq`, `PartialEq` and `Eq` for a newtype over secret bytes
/// (its field `.0` has `as_slice`), so `==` on secrets runs in constant time. Shared by the
/// secret newtypes of `store::types` and `vault`.
macro_rules! constant_time_eq {
    ($name:ident) => {
        impl subtle::ConstantTimeEq for $name {
            fn ct_eq(&self, other: &Self) -> subtle::Choice {
                subtle::ConstantTimeEq::ct_eq(self.0.as_slice(), other.0.as_slice())
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                subtle::ConstantTimeEq::ct_eq(self, other).into()
            }
        }

        impl Eq for $name {}
    };
}
pub(crate) use constant_time_eq;

/// Stores a newtype over a fixed-length byte array (`$name([u8; $len])`) as a BLOB column of its
/// bytes; reading a BLOB of another length is `FromSqlError::InvalidBlobSize`. Shared by the ids
/// of `store::types` and the group ids and member keys of `group`.
macro_rules! byte_array_column {
    ($name:ident, $len:expr) => {
        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::Borrowed(
                    rusqlite::types::ValueRef::Blob(&self.0),
                ))
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                let blob = value.as_blob()?;
                <[u8; $len]>::try_from(blob).map(Self).map_err(|_| {
                    rusqlite::types::FromSqlError::InvalidBlobSize {
                        expected_size: $len,
                        blob_size: blob.len(),
                    }
                })
            }
        }
    };
}
pub(crate) use byte_array_column;

pub mod app;
pub mod backup;
pub mod blobs;
pub mod clock;
pub mod content;
pub mod engine;
pub mod group;
pub mod images;
pub mod invite;
pub mod local_relay;
pub mod names;
pub mod open;
pub mod profile;
pub mod scan;
pub mod store;
pub mod vault;

pub use app::{App, AppConfig, AppError, AppStatus, LocalRelayMode};
pub use clock::Clock;
pub use engine::{Engine, EngineConfig, EngineError, EngineEvent};
pub use open::{OpenProfileError, OpenedProfile, open_profile, open_profile_store};
pub use profile::{ProfileDirs, ProfileError, ProfileName, ProfilesConfig};
pub use store::{Store, StoreConfig, StoreError};
pub use vault::{DatabaseKey, IdentitySeedBytes, Vault, VaultError};
