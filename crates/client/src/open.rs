//! Opening a profile — its store with the database key, and its identity seed — from the vault,
//! without ever minting a secret for a profile that already exists.
//!
//! If the database file exists, its key must already be in the keychain: a missing entry is
//! [`OpenProfileError::DatabaseKeyMissing`] (the keychain was reset or the profile copied to
//! another machine), never a fresh key. Only a profile without a database gets a new key.
//!
//! Likewise the identity seed: a profile that is onboarded (its database holds the profile
//! record) has told its identity to contacts and relays, so a missing seed is
//! [`OpenProfileError::IdentitySeedMissing`], never a new identity that would silently replace
//! the user for every contact. Only a profile that is not onboarded yet gets a new seed (nothing
//! depends on its identity before onboarding). A keychain that cannot be reached at all is
//! [`VaultError::KeychainUnavailable`]; all three are retryable once the keychain is back
//! (`docs/engine.md` § Opening a profile).

use std::path::PathBuf;

use crate::profile::{ProfileDirs, ProfileError};
use crate::store::{Store, StoreConfig, StoreError};
use crate::vault::{IdentitySeedBytes, Vault, VaultError};

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
    /// The profile is onboarded but the keychain holds no identity seed for it.
    #[error(
        "profile {profile} exists but the OS keychain has no identity key for it; the keychain \
         may be locked, reset, or a different keychain than before, or this profile comes from \
         another machine. Sealpost did not create a new identity. Unlock or restore the keychain \
         and try again"
    )]
    IdentitySeedMissing {
        /// The profile.
        profile: String,
    },
}

/// An open profile: its store and its identity seed.
pub struct OpenedProfile {
    /// The profile's SQLCipher store.
    pub store: Store,
    /// The identity seed from the keychain (new only for a profile not onboarded yet).
    pub identity_seed: IdentitySeedBytes,
}

/// Creates the profile directory if needed and opens its store with the key from `vault`
/// (creating the key only when there is no database yet).
pub fn open_profile_store(
    dirs: &ProfileDirs,
    vault: &Vault,
    config: &StoreConfig,
) -> Result<Store, OpenProfileError> {
    let path = dirs.database_path();
    // The key first: a keychain that cannot be reached or written leaves nothing on disk.
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
    dirs.ensure_created()?;
    Ok(Store::open_with(&path, &key, config)?)
}

/// Opens the profile's store ([`open_profile_store`]) and its identity seed: an onboarded
/// profile must find its seed in the keychain ([`OpenProfileError::IdentitySeedMissing`]
/// otherwise, with nothing written); only a profile not onboarded yet gets a new one.
pub fn open_profile(
    dirs: &ProfileDirs,
    vault: &Vault,
    config: &StoreConfig,
) -> Result<OpenedProfile, OpenProfileError> {
    let store = open_profile_store(dirs, vault, config)?;
    let identity_seed = if store.profile()?.is_some() {
        vault
            .load_identity_seed()?
            .ok_or_else(|| OpenProfileError::IdentitySeedMissing {
                profile: vault.profile().to_string(),
            })?
    } else {
        vault.load_or_create_identity_seed()?
    };
    Ok(OpenedProfile {
        store,
        identity_seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{ProfileName, ProfilesConfig};
    use crate::store::UnixMillis;
    use crate::vault::{KeyStore, KeyringStore, SecretKind};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use zeroize::Zeroizing;

    /// The profile `name`'s directories under a new temporary data root (kept while the
    /// returned directory lives).
    fn profile_in_temp_dir(name: &str) -> (tempfile::TempDir, ProfileName, ProfileDirs) {
        let root = tempfile::tempdir().unwrap();
        let config = ProfilesConfig {
            data_root: Some(root.path().to_path_buf()),
        };
        let name = ProfileName::new(name).unwrap();
        let dirs = ProfileDirs::resolve(&config, &name).unwrap();
        (root, name, dirs)
    }

    /// A key store whose entries outlive each vault (like a real keychain) and whose reads and
    /// writes can be made to fail as an unreachable Secret Service does.
    #[derive(Clone, Default)]
    struct SharedStore {
        entries: Arc<Mutex<HashMap<String, Vec<u8>>>>,
        unavailable: Arc<Mutex<bool>>,
    }

    impl SharedStore {
        fn check(&self) -> Result<(), VaultError> {
            if *self.unavailable.lock().unwrap() {
                return Err(VaultError::KeychainUnavailable {
                    detail: "org.freedesktop.DBus.Error.NoReply".into(),
                });
            }
            Ok(())
        }
    }

    impl KeyStore for SharedStore {
        fn get(&self, account: &str) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
            self.check()?;
            Ok(self
                .entries
                .lock()
                .unwrap()
                .get(account)
                .map(|v| Zeroizing::new(v.clone())))
        }
        fn set(&self, account: &str, value: &[u8]) -> Result<(), VaultError> {
            self.check()?;
            self.entries
                .lock()
                .unwrap()
                .insert(account.to_owned(), value.to_vec());
            Ok(())
        }
        fn delete(&self, account: &str) -> Result<bool, VaultError> {
            self.check()?;
            Ok(self.entries.lock().unwrap().remove(account).is_some())
        }
    }

    #[test]
    fn an_onboarded_profile_never_gets_a_new_identity_seed() {
        let (_root, name, dirs) = profile_in_temp_dir("seeded");
        let keychain = SharedStore::default();
        let vault = || Vault::open_with_store(&name, Box::new(keychain.clone())).unwrap();

        // Not onboarded: the seed is made once and then read back.
        let opened = open_profile(&dirs, &vault(), &StoreConfig::default()).unwrap();
        let first = opened.identity_seed;
        opened.store.close().unwrap();
        let mut opened = open_profile(&dirs, &vault(), &StoreConfig::default()).unwrap();
        assert!(opened.identity_seed == first);
        opened.store.init_profile("me", UnixMillis(1)).unwrap();
        opened.store.close().unwrap();

        // Onboarded and the seed is gone: refused, and nothing is written.
        let account = SecretKind::IdentitySeed.account(&name);
        keychain.entries.lock().unwrap().remove(&account);
        assert!(matches!(
            open_profile(&dirs, &vault(), &StoreConfig::default()),
            Err(OpenProfileError::IdentitySeedMissing { .. })
        ));
        assert!(!keychain.entries.lock().unwrap().contains_key(&account));
    }

    #[test]
    fn an_unreachable_keychain_is_unavailable_and_creates_nothing() {
        let (_root, name, dirs) = profile_in_temp_dir("unreachable");
        let keychain = SharedStore::default();
        let vault = Vault::open_with_store(&name, Box::new(keychain.clone())).unwrap();
        *keychain.unavailable.lock().unwrap() = true;
        match open_profile(&dirs, &vault, &StoreConfig::default()) {
            Err(OpenProfileError::Vault(error)) => assert!(error.is_keychain_unavailable()),
            Err(other) => panic!("wrong error: {other:?}"),
            Ok(_) => panic!("opened without a keychain"),
        }
        assert!(!dirs.profile_dir().exists(), "nothing may be created");
        assert!(keychain.entries.lock().unwrap().is_empty());
    }

    #[test]
    fn creates_then_reopens_and_refuses_to_mint_a_key_for_an_existing_database() {
        let (_root, name, dirs) = profile_in_temp_dir("opener");
        // The keyring mock keeps values for the life of this store; the real keychain is
        // covered by tests/vault_keychain.rs and tests/data_at_rest.rs.
        let vault = Vault::open_with_store(&name, Box::new(KeyringStore::in_memory())).unwrap();

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
