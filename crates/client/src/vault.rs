//! The vault: a profile's two root secrets, kept in the OS keychain and nowhere else.
//!
//! | secret | keychain account | what it protects |
//! |---|---|---|
//! | [`IdentitySeedBytes`] | `<profile>/identity-seed` | the identity: `sealpost-crypto` derives the Ed25519 and X25519 identity keys from it (`docs/crypto.md` § Identity) |
//! | [`DatabaseKey`] | `<profile>/database-key` | the SQLCipher database of the profile ([`crate::store`]) |
//!
//! Both live under the keychain service [`SERVICE`] (`"sealpost"`), one entry set per profile, so
//! two profiles never see each other's secrets. The native store is chosen per OS at build time:
//! the Secret Service on Linux (gnome-keyring, KWallet, KeePassXC …), the login Keychain on
//! macOS and the Credential Manager on Windows.
//!
//! **There is no fallback.** If the keychain cannot be reached, [`Vault::open`] fails with
//! [`VaultError::KeychainUnavailable`], whose message tells the user what to do. Secrets are never
//! written to a file (`docs/threat-model.md` § A thief of the user's data directory).
//!
//! ## Stored encoding
//!
//! Each entry holds the ASCII text `sealpost-secret-v1:` followed by 64 lowercase hex digits (the
//! 32 secret bytes). Text keeps the entry printable in keychain tools (`secret-tool lookup`), and
//! the version prefix lets a later release change the format. Anything else in an entry is
//! reported as [`VaultError::CorruptEntry`]; decoding never panics.
//!
//! ## Missing is not "new"
//!
//! A missing entry means "create one" only for a profile that does not exist yet. Whether a
//! profile exists is decided by [`crate::open::open_profile`] from its database, never here: a
//! keychain that was reset, a Secret Service that restarted with another (empty) collection, or a
//! profile copied from another machine all look like "no entry", and minting a new identity
//! seed then would silently replace who the user is for every contact. So
//! [`Vault::load_or_create_identity_seed`] and [`Vault::load_or_create_database_key`] are for a
//! profile with no database only; opening an existing one goes through
//! [`crate::open::open_profile`], which refuses with a typed error instead.
//!
//! ## Concurrency
//!
//! `load_or_create_*` reads, and creates only when the entry is missing. Two processes of the
//! *same* profile racing on first start could each create a secret; the app's per-profile
//! single-instance lock (`docs/engine.md` § Profiles) rules that out.
//!
//! Within one process every keychain operation of every [`KeyringStore`] is serialized by one
//! process-wide lock, so engines of several profiles in one process (the tests) and the async
//! runtime's worker threads never interleave Secret Service calls.
//!
//! On Linux the Secret Service sessions are **plain** (no `crypto-rust` feature of `keyring`).
//! With the Diffie-Hellman/AES session kind, every keyring call negotiates a new AES session, and
//! gnome-keyring 42 aborted under a run of them even when serialized (`aes_negotiate: assertion
//! 'client' failed`, then `GLib-ERROR` and SIGTRAP): the test suite's flake, reproduced in 3 of 8
//! runs of `vault_keychain` and in 0 of 10 with plain sessions, which are also four times faster.
//! Session encryption protects the secret only on the user's own session bus; whoever can read
//! that bus runs as the user and can ask the Secret Service for the secret directly, which is
//! outside the threat model (`docs/threat-model.md` § A thief of the user's data directory).
//! libsecret itself falls back to plain sessions. A dead or missing
//! Secret Service is [`VaultError::KeychainUnavailable`], never "no entry".

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::profile::ProfileName;

/// The keychain service name under which every Sealpost entry is stored.
pub const SERVICE: &str = "sealpost";
/// Prefix of the stored text form of a secret (see the module docs).
pub const ENCODING_PREFIX: &str = "sealpost-secret-v1:";
/// Length in bytes of each vault secret.
pub const SECRET_LEN: usize = 32;

/// What the user is told to do when the keychain cannot be reached.
pub const KEYCHAIN_HELP: &str = "Sealpost keeps its keys only in the OS keychain and never in a file. \
Linux: install and unlock a Secret Service provider such as gnome-keyring (or KWallet, KeePassXC) \
and run Sealpost inside a desktop session that has a D-Bus session bus (DBUS_SESSION_BUS_ADDRESS); \
headless, use `dbus-run-session` with `gnome-keyring-daemon --unlock`. \
macOS: unlock the login Keychain. Windows: make sure Credential Manager is available to your account.";

/// Which vault secret an error or an account name refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SecretKind {
    /// The 32-byte identity seed.
    IdentitySeed,
    /// The 32-byte SQLCipher database key.
    DatabaseKey,
}

impl SecretKind {
    /// The suffix of the keychain account name: `<profile>/<suffix>`.
    pub fn account_suffix(self) -> &'static str {
        match self {
            SecretKind::IdentitySeed => "identity-seed",
            SecretKind::DatabaseKey => "database-key",
        }
    }

    /// The keychain account name of this secret for `profile`.
    pub fn account(self, profile: &ProfileName) -> String {
        format!("{}/{}", profile.as_str(), self.account_suffix())
    }
}

impl fmt::Display for SecretKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecretKind::IdentitySeed => "identity seed",
            SecretKind::DatabaseKey => "database key",
        })
    }
}

/// Errors from the vault and its key stores.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The OS keychain could not be reached or is locked. The message says what to do.
    #[error("the OS keychain is not available ({detail}). {help}", help = KEYCHAIN_HELP)]
    KeychainUnavailable {
        /// The platform's own error text (e.g. D-Bus "Unable to autolaunch a dbus-daemon …").
        detail: String,
    },
    /// A keychain entry exists but does not hold a well-formed secret.
    #[error(
        "the keychain entry for the {kind} of profile {profile} is corrupt ({reason}); \
         Sealpost did not change it. Restore it from a backup or delete the profile's secrets"
    )]
    CorruptEntry {
        /// Which secret.
        kind: SecretKind,
        /// The profile.
        profile: ProfileName,
        /// What is wrong, without any of the entry's bytes.
        reason: &'static str,
    },
    /// The keychain found more than one entry for one account and cannot choose.
    #[error(
        "the keychain holds several entries for account {account:?} of service \"sealpost\"; remove the extra ones"
    )]
    AmbiguousEntry {
        /// The account name.
        account: String,
    },
    /// The keychain rejected the entry's attributes (e.g. a name too long for the platform).
    #[error("the keychain rejected the entry for account {account:?}: {detail}")]
    Rejected {
        /// The account name.
        account: String,
        /// The platform's reason.
        detail: String,
    },
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

impl VaultError {
    /// True when the keychain itself is missing or locked (as opposed to a bad entry).
    pub fn is_keychain_unavailable(&self) -> bool {
        matches!(self, VaultError::KeychainUnavailable { .. })
    }
}

macro_rules! secret_32 {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        ///
        /// No `Debug`, no `Display`, no `Clone`: the bytes leave only through
        /// [`expose_secret`](Self::expose_secret). Boxed so moves don't leave copies on the stack,
        /// zeroized on drop, compared in constant time.
        pub struct $name(Box<[u8; SECRET_LEN]>);

        impl $name {
            /// Wraps existing secret bytes (e.g. from a backup or a test vector).
            pub fn from_bytes(bytes: [u8; SECRET_LEN]) -> Self {
                let mut boxed = Box::new([0u8; SECRET_LEN]);
                boxed.copy_from_slice(&bytes);
                let mut bytes = bytes;
                bytes.zeroize();
                Self(boxed)
            }

            /// Fresh secret bytes from the operating system's random number generator.
            pub fn generate() -> Result<Self, VaultError> {
                let mut boxed = Box::new([0u8; SECRET_LEN]);
                getrandom::fill(boxed.as_mut_slice())
                    .map_err(|error| VaultError::Random(error.to_string()))?;
                Ok(Self(boxed))
            }

            /// The secret bytes. Keep the borrow short and never log or persist them.
            pub fn expose_secret(&self) -> &[u8; SECRET_LEN] {
                &self.0
            }
        }

        impl Zeroize for $name {
            fn zeroize(&mut self) {
                self.0.as_mut_slice().zeroize();
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                self.zeroize();
            }
        }

        impl ZeroizeOnDrop for $name {}

        crate::constant_time_eq!($name);
    };
}

secret_32! {
    /// The 32-byte identity seed from which `sealpost-crypto` derives the identity key pair.
    IdentitySeedBytes
}

secret_32! {
    /// The 32-byte raw SQLCipher key of a profile's database.
    DatabaseKey
}

/// Where secrets are kept: the OS keychain in the app, keyring's mock store in some tests.
///
/// Implementations map their own failures onto [`VaultError`]: an unreachable store must become
/// [`VaultError::KeychainUnavailable`].
pub trait KeyStore: Send + Sync {
    /// The stored bytes of `account`, or `None` when no entry exists.
    fn get(&self, account: &str) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError>;
    /// Creates or replaces the entry of `account`.
    fn set(&self, account: &str, value: &[u8]) -> Result<(), VaultError>;
    /// Deletes the entry of `account`; `Ok(false)` when there was none.
    fn delete(&self, account: &str) -> Result<bool, VaultError>;
}

/// Serializes every keychain operation of this process (see the module docs, "Concurrency"):
/// gnome-keyring crashes when one client negotiates several Secret Service sessions at once.
static KEYCHAIN_LOCK: Mutex<()> = Mutex::new(());

/// Runs `action` while holding the process-wide keychain lock that every [`KeyringStore`] call
/// holds. For code that must use the `keyring` crate directly next to a vault (tests that write
/// raw entries): unserialized, it would race the vault's Secret Service sessions.
pub fn with_keychain_lock<T>(action: impl FnOnce() -> T) -> T {
    let _serialized = KEYCHAIN_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    action()
}

/// A [`KeyStore`] over the `keyring` crate: the OS keychain, or any keyring credential builder.
pub struct KeyringStore {
    builder: Option<Box<keyring::CredentialBuilder>>,
    entries: Mutex<HashMap<String, keyring::Entry>>,
}

impl KeyringStore {
    /// The native OS keychain for this platform (keyring's default credential builder).
    pub fn native() -> Self {
        Self {
            builder: None,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// A store over another keyring credential builder, e.g. `keyring::mock::default_credential_builder()`
    /// for tests where a real keychain is not the point. Entries are cached per account, so the
    /// mock (whose credentials live inside the entry) keeps values for the life of this store.
    pub fn with_builder(builder: Box<keyring::CredentialBuilder>) -> Self {
        Self {
            builder: Some(builder),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// A store over keyring's in-memory mock, for tests and benches where a real keychain is not
    /// the point: its values live as long as this store ([`KeyringStore::with_builder`]).
    pub fn in_memory() -> Self {
        Self::with_builder(keyring::mock::default_credential_builder())
    }

    /// Runs `action` on the cached entry of `account`. The outer error is a failure to create the
    /// entry; the inner result is keyring's own, so callers can treat `NoEntry` as "absent".
    fn with_entry<T>(
        &self,
        account: &str,
        action: impl FnOnce(&keyring::Entry) -> keyring::Result<T>,
    ) -> Result<keyring::Result<T>, VaultError> {
        // Held across entry creation and the operation: both talk to the Secret Service.
        let _serialized = KEYCHAIN_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = match entries.entry(account.to_owned()) {
            std::collections::hash_map::Entry::Occupied(occupied) => occupied.into_mut(),
            std::collections::hash_map::Entry::Vacant(vacant) => {
                let entry = match &self.builder {
                    None => keyring::Entry::new(SERVICE, account),
                    Some(builder) => builder
                        .build(None, SERVICE, account)
                        .map(keyring::Entry::new_with_credential),
                }
                .map_err(|error| map_keyring_error(account, error))?;
                vacant.insert(entry)
            }
        };
        Ok(action(entry))
    }
}

impl KeyStore for KeyringStore {
    fn get(&self, account: &str) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        match self.with_entry(account, |entry| entry.get_secret())? {
            Ok(bytes) => Ok(Some(Zeroizing::new(bytes))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(error) => Err(map_keyring_error(account, error)),
        }
    }

    fn set(&self, account: &str, value: &[u8]) -> Result<(), VaultError> {
        self.with_entry(account, |entry| entry.set_secret(value))?
            .map_err(|error| map_keyring_error(account, error))
    }

    fn delete(&self, account: &str) -> Result<bool, VaultError> {
        match self.with_entry(account, |entry| entry.delete_credential())? {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(error) => Err(map_keyring_error(account, error)),
        }
    }
}

fn map_keyring_error(account: &str, error: keyring::Error) -> VaultError {
    match error {
        keyring::Error::PlatformFailure(inner) | keyring::Error::NoStorageAccess(inner) => {
            VaultError::KeychainUnavailable {
                detail: inner.to_string(),
            }
        }
        keyring::Error::NoEntry => VaultError::Rejected {
            account: account.to_owned(),
            detail: "no such entry".to_owned(),
        },
        keyring::Error::Ambiguous(_) => VaultError::AmbiguousEntry {
            account: account.to_owned(),
        },
        keyring::Error::BadEncoding(mut bytes) => {
            // Only produced by get_password, which we never call; never echo the bytes.
            bytes.zeroize();
            VaultError::Rejected {
                account: account.to_owned(),
                detail: "the entry is not valid text".to_owned(),
            }
        }
        keyring::Error::TooLong(attribute, limit) => VaultError::Rejected {
            account: account.to_owned(),
            detail: format!("attribute {attribute} is longer than the platform limit {limit}"),
        },
        keyring::Error::Invalid(attribute, reason) => VaultError::Rejected {
            account: account.to_owned(),
            detail: format!("attribute {attribute} is invalid: {reason}"),
        },
        other => VaultError::KeychainUnavailable {
            detail: other.to_string(),
        },
    }
}

/// One profile's secrets in a [`KeyStore`] (by default the OS keychain).
pub struct Vault {
    profile: ProfileName,
    store: Box<dyn KeyStore>,
}

impl Vault {
    /// Opens the vault of `profile` in the OS keychain and checks that the keychain answers.
    ///
    /// Fails with [`VaultError::KeychainUnavailable`] when there is no keychain (on Linux: no
    /// D-Bus session bus, or no Secret Service provider, or a locked collection that cannot be
    /// unlocked).
    pub fn open(profile: &ProfileName) -> Result<Self, VaultError> {
        Self::open_with_store(profile, Box::new(KeyringStore::native()))
    }

    /// Opens the vault of `profile` in another [`KeyStore`] and checks that it answers.
    pub fn open_with_store(
        profile: &ProfileName,
        store: Box<dyn KeyStore>,
    ) -> Result<Self, VaultError> {
        let vault = Self {
            profile: profile.clone(),
            store,
        };
        // A read of our own entry proves the keychain is reachable; its value is checked later.
        vault
            .store
            .get(&SecretKind::IdentitySeed.account(&vault.profile))?;
        Ok(vault)
    }

    /// The profile this vault belongs to.
    pub fn profile(&self) -> &ProfileName {
        &self.profile
    }

    /// The identity seed, if this profile has one.
    pub fn load_identity_seed(&self) -> Result<Option<IdentitySeedBytes>, VaultError> {
        Ok(self
            .load(SecretKind::IdentitySeed)?
            .map(IdentitySeedBytes::from_bytes))
    }

    /// The identity seed, created from the OS random generator and stored if missing.
    ///
    /// Only for a profile that does not exist yet (no database): for an existing profile a
    /// missing seed must be an error, not a new identity. [`crate::open::open_profile`] makes
    /// that choice; the engine never calls this directly.
    pub fn load_or_create_identity_seed(&self) -> Result<IdentitySeedBytes, VaultError> {
        if let Some(seed) = self.load_identity_seed()? {
            return Ok(seed);
        }
        let seed = IdentitySeedBytes::generate()?;
        self.store_secret(SecretKind::IdentitySeed, seed.expose_secret())?;
        Ok(seed)
    }

    /// The database key, if this profile has one.
    pub fn load_database_key(&self) -> Result<Option<DatabaseKey>, VaultError> {
        Ok(self
            .load(SecretKind::DatabaseKey)?
            .map(DatabaseKey::from_bytes))
    }

    /// The database key, created from the OS random generator and stored if missing.
    pub fn load_or_create_database_key(&self) -> Result<DatabaseKey, VaultError> {
        if let Some(key) = self.load_database_key()? {
            return Ok(key);
        }
        let key = DatabaseKey::generate()?;
        self.store_secret(SecretKind::DatabaseKey, key.expose_secret())?;
        Ok(key)
    }

    /// Stores a restored profile's seed and database key (`crate::backup::restore_profile`,
    /// which calls it only for a profile with no identity yet, after the backup is verified).
    pub fn store_restored_secrets(
        &self,
        seed: &IdentitySeedBytes,
        key: &DatabaseKey,
    ) -> Result<(), VaultError> {
        self.store_secret(SecretKind::IdentitySeed, seed.expose_secret())?;
        self.store_secret(SecretKind::DatabaseKey, key.expose_secret())
    }

    /// Deletes every keychain entry of this profile. Returns how many entries existed.
    ///
    /// After this the profile's database can never be opened again: delete its directory too.
    pub fn delete_profile_secrets(&self) -> Result<usize, VaultError> {
        let mut deleted = 0;
        for kind in [SecretKind::IdentitySeed, SecretKind::DatabaseKey] {
            if self.store.delete(&kind.account(&self.profile))? {
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    fn load(&self, kind: SecretKind) -> Result<Option<[u8; SECRET_LEN]>, VaultError> {
        let Some(stored) = self.store.get(&kind.account(&self.profile))? else {
            return Ok(None);
        };
        decode_secret(&stored)
            .map(Some)
            .map_err(|reason| VaultError::CorruptEntry {
                kind,
                profile: self.profile.clone(),
                reason,
            })
    }

    fn store_secret(&self, kind: SecretKind, secret: &[u8; SECRET_LEN]) -> Result<(), VaultError> {
        let encoded = encode_secret(secret);
        self.store
            .set(&kind.account(&self.profile), encoded.as_bytes())
    }
}

/// The stored text form: [`ENCODING_PREFIX`] ‖ 64 lowercase hex digits.
fn encode_secret(secret: &[u8; SECRET_LEN]) -> Zeroizing<String> {
    let mut text = Zeroizing::new(String::with_capacity(
        ENCODING_PREFIX.len() + 2 * SECRET_LEN,
    ));
    text.push_str(ENCODING_PREFIX);
    let hex = Zeroizing::new(hex::encode(secret));
    text.push_str(&hex);
    text
}

/// Parses the stored text form; the error says what is wrong without echoing any byte.
fn decode_secret(stored: &[u8]) -> Result<[u8; SECRET_LEN], &'static str> {
    let Some(hex_part) = stored.strip_prefix(ENCODING_PREFIX.as_bytes()) else {
        return Err("unknown format: missing the sealpost-secret-v1 prefix");
    };
    if hex_part.len() != 2 * SECRET_LEN {
        return Err("wrong length: expected 32 bytes as 64 hex digits");
    }
    let mut out = [0u8; SECRET_LEN];
    match hex::decode_to_slice(hex_part, &mut out) {
        Ok(()) => Ok(out),
        Err(_) => {
            out.zeroize();
            Err("bad encoding: not hexadecimal")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use subtle::ConstantTimeEq;

    fn mock_vault(profile: &str) -> Vault {
        Vault::open_with_store(
            &ProfileName::new(profile).unwrap(),
            Box::new(KeyringStore::in_memory()),
        )
        .unwrap()
    }

    #[test]
    fn encoding_round_trips() {
        let secret = [0xa5u8; SECRET_LEN];
        let text = encode_secret(&secret);
        assert!(text.starts_with(ENCODING_PREFIX));
        assert_eq!(decode_secret(text.as_bytes()).unwrap(), secret);
    }

    #[test]
    fn corrupt_encodings_are_refused() {
        assert!(decode_secret(b"").is_err());
        assert!(decode_secret(&[0u8; 32]).is_err());
        let short = format!("{ENCODING_PREFIX}{}", "ab".repeat(31));
        assert!(decode_secret(short.as_bytes()).is_err());
        let bad = format!("{ENCODING_PREFIX}{}", "zz".repeat(32));
        assert!(decode_secret(bad.as_bytes()).is_err());
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_secret(&bytes);
        }

        #[test]
        fn decoding_prefixed_arbitrary_bytes_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..100)) {
            let mut bytes = ENCODING_PREFIX.as_bytes().to_vec();
            bytes.extend_from_slice(&tail);
            let _ = decode_secret(&bytes);
        }
    }

    #[test]
    fn secrets_compare_in_constant_time_and_by_value() {
        let a = DatabaseKey::from_bytes([1; 32]);
        let b = DatabaseKey::from_bytes([1; 32]);
        let c = DatabaseKey::from_bytes([2; 32]);
        assert!(a == b);
        assert!(a != c);
        assert!(bool::from(a.ct_eq(&b)));
    }

    #[test]
    fn generated_secrets_differ() {
        let a = IdentitySeedBytes::generate().unwrap();
        let b = IdentitySeedBytes::generate().unwrap();
        assert!(a != b);
    }

    #[test]
    fn zeroize_clears_the_bytes() {
        let mut key = DatabaseKey::from_bytes([7; 32]);
        key.zeroize();
        assert_eq!(key.expose_secret(), &[0u8; 32]);
    }

    #[test]
    fn mock_store_round_trip_and_delete() {
        let vault = mock_vault("mocked");
        assert!(vault.load_database_key().unwrap().is_none());
        let key = vault.load_or_create_database_key().unwrap();
        assert!(vault.load_or_create_database_key().unwrap() == key);
        let seed = vault.load_or_create_identity_seed().unwrap();
        assert!(vault.load_identity_seed().unwrap().unwrap() == seed);
        assert_eq!(vault.delete_profile_secrets().unwrap(), 2);
        assert!(vault.load_identity_seed().unwrap().is_none());
        assert_eq!(vault.delete_profile_secrets().unwrap(), 0);
    }

    #[test]
    fn platform_errors_become_keychain_unavailable_with_help() {
        let error = map_keyring_error(
            "p/identity-seed",
            keyring::Error::PlatformFailure("Unable to autolaunch a dbus-daemon".into()),
        );
        assert!(error.is_keychain_unavailable());
        let text = error.to_string();
        assert!(text.contains("Unable to autolaunch"), "{text}");
        assert!(text.contains("gnome-keyring"), "{text}");
        assert!(text.contains("D-Bus"), "{text}");
        assert!(text.contains("never in a file"), "{text}");
    }

    #[test]
    fn account_names_are_per_profile() {
        let a = ProfileName::new("a").unwrap();
        assert_eq!(SecretKind::IdentitySeed.account(&a), "a/identity-seed");
        assert_eq!(SecretKind::DatabaseKey.account(&a), "a/database-key");
    }
}
