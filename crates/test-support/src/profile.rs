//! Test profiles on the real OS keychain: names nobody else uses, and a guard that deletes a
//! profile's keychain entries even when the test fails.

use std::path::Path;

use sealpost_client::{
    ProfileDirs, ProfileName, ProfilesConfig, Store, StoreConfig, Vault, open_profile_store,
};

/// A profile name nobody else uses (`PREFIX_` and 12 random hex digits), so parallel tests and
/// earlier runs never collide in the shared keychain.
pub fn unique_profile(prefix: &str) -> ProfileName {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).unwrap();
    ProfileName::new(&format!("{prefix}_{}", hex::encode(bytes))).unwrap()
}

/// Deletes a profile's keychain entries when dropped, even if the test fails.
pub struct KeychainCleanup(pub ProfileName);

impl Drop for KeychainCleanup {
    fn drop(&mut self) {
        if let Ok(vault) = Vault::open(&self.0) {
            let _ = vault.delete_profile_secrets();
        }
    }
}

/// Opens the real keychain vault or fails loudly: these tests must never skip.
pub fn open_real_vault(profile: &ProfileName) -> Vault {
    Vault::open(profile).unwrap_or_else(|error| {
        panic!(
            "these tests need a real OS keychain; run them under \
             `scripts/with-keyring.sh`: {error}"
        )
    })
}

/// The store of a profile whose engine is stopped, opened with its keychain key (a test hook,
/// and what someone holding the profile and the keychain gets).
pub fn open_stopped_store(profile: &ProfileName, data_root: &Path) -> Store {
    let dirs = ProfileDirs::resolve(
        &ProfilesConfig {
            data_root: Some(data_root.to_path_buf()),
        },
        profile,
    )
    .unwrap();
    open_profile_store(&dirs, &open_real_vault(profile), &StoreConfig::default()).unwrap()
}
