//! Opening a profile's store with its key from the vault, without ever minting a key that
//! cannot open the existing database.
//!
//! If the database file exists, its key must already be in the keychain: a missing entry is
//! [`OpenProfileError::DatabaseKeyMissing`] (the keychain was reset or the profile copied to
//! another machine), never a fresh key. Only a profile without a database gets a new key.

use std::path::PathBuf;

use crate::profile::{ProfileDirs, ProfileError};
use crate::store::{Store, StoreConfig, StoreError};
use crate::vault::{Vault, VaultError};

/// Why a profile's store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenProfileError {
    /// The profile directory could not be prepared.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The keychain failed (unavailable, corrupt entry, …).
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The database failed (wrong key, disk full, …).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database exists but the keychain holds no key for it.
    #[error(
        "the database {path} exists but the OS keychain has no database key for profile {profile}; \
         the keychain entry was removed or this profile comes from another machine. Restore the \
         keychain entry, or delete the profile directory to start over"
    )]
    DatabaseKeyMissing {
        /// The database file.
        path: PathBuf,
        /// The profile.
        profile: String,
    },
}

/// Creates the profile directory if needed and opens its store with the key from `vault`
/// (creating the key only when there is no database yet).
pub fn open_profile_store(
    dirs: &ProfileDirs,
    vault: &Vault,
    config: &StoreConfig,
) -> Result<Store, OpenProfileError> {
    dirs.ensure_created()?;
    let path = dirs.database_path();
    let key = if path.exists() {
        vault
            .load_database_key()?
            .ok_or_else(|| OpenProfileError::DatabaseKeyMissing {
                path: path.clone(),
                profile: vault.profile().to_string(),
            })?
    } else {
        vault.load_or_create_database_key()?
    };
    Ok(Store::open_with(&path, &key, config)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{ProfileName, ProfilesConfig};
    use crate::store::UnixMillis;
    use crate::vault::KeyringStore;

    #[test]
    fn creates_then_reopens_and_refuses_to_mint_a_key_for_an_existing_database() {
        let root = tempfile::tempdir().unwrap();
        let config = ProfilesConfig {
            data_root: Some(root.path().to_path_buf()),
        };
        let name = ProfileName::new("opener").unwrap();
        let dirs = ProfileDirs::resolve(&config, &name).unwrap();
        // The keyring mock keeps values for the life of this store; the real keychain is
        // covered by tests/vault_keychain.rs and tests/data_at_rest.rs.
        let vault = Vault::open_with_store(
            &name,
            Box::new(KeyringStore::with_builder(
                keyring::mock::default_credential_builder(),
            )),
        )
        .unwrap();

        let mut store = open_profile_store(&dirs, &vault, &StoreConfig::default()).unwrap();
        store.init_profile("me", UnixMillis(1)).unwrap();
        store.close().unwrap();

        let store = open_profile_store(&dirs, &vault, &StoreConfig::default()).unwrap();
        assert_eq!(store.profile().unwrap().unwrap().display_name, "me");
        store.close().unwrap();

        vault.delete_profile_secrets().unwrap();
        assert!(matches!(
            open_profile_store(&dirs, &vault, &StoreConfig::default()),
            Err(OpenProfileError::DatabaseKeyMissing { .. })
        ));
        assert!(
            vault.load_database_key().unwrap().is_none(),
            "no key was minted"
        );
    }
}
