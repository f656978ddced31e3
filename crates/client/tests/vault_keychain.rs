//! The vault against the real OS keychain (the Secret Service under `scripts/with-keyring.sh`).
//!
//! These tests fail, never skip, when no keychain is reachable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{CleanupSecrets, open_real_vault, unique_profile};
use sealpost_client::vault::{ENCODING_PREFIX, SERVICE, SecretKind, VaultError};
use sealpost_client::{ProfileName, Vault};

#[test]
fn secrets_round_trip_through_the_keychain_per_profile() {
    let alice = unique_profile("alice");
    let bob = unique_profile("bob");
    let _cleanup = (CleanupSecrets(alice.clone()), CleanupSecrets(bob.clone()));

    let alice_vault = open_real_vault(&alice);
    assert!(alice_vault.load_identity_seed().unwrap().is_none());
    assert!(alice_vault.load_database_key().unwrap().is_none());
    let alice_seed = alice_vault.load_or_create_identity_seed().unwrap();
    let alice_key = alice_vault.load_or_create_database_key().unwrap();

    // A fresh handle (as after a restart) reads the same secrets back from the keychain.
    let reopened = open_real_vault(&alice);
    assert!(reopened.load_or_create_identity_seed().unwrap() == alice_seed);
    assert!(reopened.load_database_key().unwrap().unwrap() == alice_key);

    // Another profile sees none of them and gets its own.
    let bob_vault = open_real_vault(&bob);
    assert!(bob_vault.load_identity_seed().unwrap().is_none());
    let bob_seed = bob_vault.load_or_create_identity_seed().unwrap();
    let bob_key = bob_vault.load_or_create_database_key().unwrap();
    assert!(bob_seed != alice_seed);
    assert!(bob_key != alice_key);

    // Deleting one profile's secrets leaves the other's alone.
    assert_eq!(alice_vault.delete_profile_secrets().unwrap(), 2);
    assert!(alice_vault.load_identity_seed().unwrap().is_none());
    assert!(alice_vault.load_database_key().unwrap().is_none());
    assert!(bob_vault.load_identity_seed().unwrap().unwrap() == bob_seed);
    assert_eq!(alice_vault.delete_profile_secrets().unwrap(), 0);
}

#[test]
fn entries_use_service_sealpost_and_the_versioned_text_form() {
    let profile = unique_profile("layout");
    let _cleanup = CleanupSecrets(profile.clone());
    let vault = open_real_vault(&profile);
    let key = vault.load_or_create_database_key().unwrap();

    let entry = keyring::Entry::new(SERVICE, &format!("{profile}/database-key")).unwrap();
    let stored = entry.get_password().unwrap();
    assert_eq!(
        stored,
        format!("{ENCODING_PREFIX}{}", hex::encode(key.expose_secret()))
    );
    assert_eq!(
        SecretKind::DatabaseKey.account(&profile),
        format!("{profile}/database-key")
    );
}

#[test]
fn corrupt_keychain_entries_are_typed_errors() {
    let profile = unique_profile("corrupt");
    let _cleanup = CleanupSecrets(profile.clone());
    let vault = open_real_vault(&profile);
    let seed_entry = keyring::Entry::new(SERVICE, &format!("{profile}/identity-seed")).unwrap();
    let key_entry = keyring::Entry::new(SERVICE, &format!("{profile}/database-key")).unwrap();

    let cases: [&[u8]; 5] = [
        b"not a sealpost secret",
        b"sealpost-secret-v1:abcd",
        b"sealpost-secret-v1:zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
        &[0xff; 32],
        b"",
    ];
    for bytes in cases {
        seed_entry.set_secret(bytes).unwrap();
        key_entry.set_secret(bytes).unwrap();
        let seed_error = vault
            .load_identity_seed()
            .err()
            .expect("corrupt seed accepted");
        assert!(
            matches!(
                &seed_error,
                VaultError::CorruptEntry {
                    kind: SecretKind::IdentitySeed,
                    ..
                }
            ),
            "{seed_error:?}"
        );
        // load_or_create must not overwrite a corrupt entry (that would destroy an identity).
        assert!(matches!(
            vault.load_or_create_database_key(),
            Err(VaultError::CorruptEntry {
                kind: SecretKind::DatabaseKey,
                ..
            })
        ));
        assert_eq!(key_entry.get_secret().unwrap(), bytes);
        // The message names the problem without echoing the entry's bytes.
        assert!(!seed_error.to_string().contains("zzzz"));
    }
}

const CHILD_ENV: &str = "SEALPOST_TEST_NO_KEYCHAIN_CHILD";
const CHILD_MARKER: &str = "NO-KEYCHAIN-CHILD-RESULT:";

/// Runs this very test in a child process whose D-Bus session is unreachable, and checks the
/// typed error the child reports. In the child, it performs the check itself.
#[test]
fn missing_keychain_gives_a_typed_error_that_says_what_to_do() {
    if std::env::var_os(CHILD_ENV).is_some() {
        let profile = ProfileName::new("no_keychain_probe").unwrap();
        match Vault::open(&profile) {
            Err(error @ VaultError::KeychainUnavailable { .. }) => {
                println!("{CHILD_MARKER}{error}");
            }
            Err(other) => panic!("wrong error kind: {other:?}"),
            Ok(_) => panic!("the vault opened although the keychain is unreachable"),
        }
        return;
    }

    let exe = std::env::current_exe().unwrap();
    let run = |configure: &dyn Fn(&mut std::process::Command)| {
        let mut command = std::process::Command::new(&exe);
        command
            .args([
                "--exact",
                "missing_keychain_gives_a_typed_error_that_says_what_to_do",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1");
        configure(&mut command);
        let output = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "child failed: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
            .lines()
            .find_map(|line| {
                line.split_once(CHILD_MARKER)
                    .map(|(_, message)| message.to_owned())
            })
            .unwrap_or_else(|| panic!("child printed no result: {stdout}"))
    };

    // A session bus address that points nowhere.
    let nowhere = run(&|command| {
        command.env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/sealpost-no-bus",
        );
    });
    // No session bus at all (and no X display to autolaunch one): "Unable to autolaunch …".
    let unset = run(&|command| {
        command
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("DISPLAY");
    });
    for message in [&nowhere, &unset] {
        assert!(
            message.contains("OS keychain is not available"),
            "{message}"
        );
        assert!(message.contains("gnome-keyring"), "{message}");
        assert!(message.contains("D-Bus"), "{message}");
        assert!(message.contains("never in a file"), "{message}");
    }
    assert!(unset.to_lowercase().contains("autolaunch"), "{unset}");
}
