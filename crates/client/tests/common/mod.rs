//! Helpers shared by the integration tests that use the real OS keychain.
#![allow(dead_code)]

use sealpost_client::{ProfileName, Vault};

/// A profile name nobody else uses, so parallel tests and earlier runs never collide.
pub fn unique_profile(prefix: &str) -> ProfileName {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).unwrap();
    ProfileName::new(&format!("{prefix}_{}", hex::encode(bytes))).unwrap()
}

/// Opens the real keychain vault or fails loudly: these tests must never skip.
pub fn open_real_vault(profile: &ProfileName) -> Vault {
    match Vault::open(profile) {
        Ok(vault) => vault,
        Err(error) => panic!(
            "these tests need a real OS keychain; run them as \
             `scripts/with-keyring.sh cargo test -p sealpost-client`: {error}"
        ),
    }
}

/// Deletes a profile's keychain entries when dropped, even if the test fails.
pub struct CleanupSecrets(pub ProfileName);

impl Drop for CleanupSecrets {
    fn drop(&mut self) {
        if let Ok(vault) = Vault::open(&self.0) {
            let _ = vault.delete_profile_secrets();
        }
    }
}
