//! The vault against the real OS keychain (the Secret Service under `scripts/with-keyring.sh`).
//!
//! These tests fail, never skip, when no keychain is reachable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use sealpost_client::engine::RelayChoice;
use sealpost_client::vault::{
    ENCODING_PREFIX, SERVICE, SecretKind, VaultError, with_keychain_lock as locked,
};
use sealpost_client::{Engine, EngineConfig, ProfileName, ProfilesConfig, Vault};
use sealpost_test_support::{KeychainCleanup, open_real_vault, unique_profile};

#[test]
fn secrets_round_trip_through_the_keychain_per_profile() {
    let alice = unique_profile("alice");
    let bob = unique_profile("bob");
    let _cleanup = (KeychainCleanup(alice.clone()), KeychainCleanup(bob.clone()));

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
    let _cleanup = KeychainCleanup(profile.clone());
    let vault = open_real_vault(&profile);
    let key = vault.load_or_create_database_key().unwrap();

    let entry = keyring::Entry::new(SERVICE, &format!("{profile}/database-key")).unwrap();
    let stored = locked(|| entry.get_password()).unwrap();
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
    let _cleanup = KeychainCleanup(profile.clone());
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
        locked(|| seed_entry.set_secret(bytes)).unwrap();
        locked(|| key_entry.set_secret(bytes)).unwrap();
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
        assert_eq!(locked(|| key_entry.get_secret()).unwrap(), bytes);
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

/// The engine's configuration for `profile` under `data_root`, on the native OS keychain.
fn engine_config(profile: &ProfileName, data_root: &Path) -> EngineConfig {
    let mut config = EngineConfig::new(profile.clone());
    config.profiles = ProfilesConfig {
        data_root: Some(data_root.to_path_buf()),
    };
    config
}

/// Opens and onboards `profile` on the real keychain; returns its public identity key bytes.
async fn onboard_real_profile(profile: &ProfileName, data_root: &Path) -> Vec<u8> {
    let (engine, _events) = Engine::open(engine_config(profile, data_root))
        .await
        .unwrap();
    engine
        .onboard(
            "Alice",
            RelayChoice::Remote {
                url: "ws://127.0.0.1:9".into(),
                password: None,
            },
        )
        .await
        .unwrap();
    let identity = engine.identity_key().to_bytes().to_vec();
    engine.shutdown().await;
    identity
}

/// An onboarded profile on the real keychain whose `kind` entry was then taken out: the guard
/// that removes its entries, its data root, its public identity key bytes, the entry and the
/// secret it held.
async fn onboarded_without(
    prefix: &str,
    kind: SecretKind,
) -> (
    KeychainCleanup,
    tempfile::TempDir,
    Vec<u8>,
    keyring::Entry,
    Vec<u8>,
) {
    let profile = unique_profile(prefix);
    let cleanup = KeychainCleanup(profile.clone());
    let root = tempfile::tempdir().unwrap();
    let identity = onboard_real_profile(&profile, root.path()).await;
    let entry = keyring::Entry::new(SERVICE, &kind.account(&profile)).unwrap();
    let stored = locked(|| entry.get_secret()).unwrap();
    locked(|| entry.delete_credential()).unwrap();
    (cleanup, root, identity, entry, stored)
}

/// A keychain that lost the identity seed of an existing profile (reset, or a Secret Service that
/// came back with another, empty collection after a crash) must not give the profile a new
/// identity: the engine refuses with `identity_missing`, writes no seed, and opens with the old
/// identity once the entry is back (the UI's "Try again").
#[tokio::test]
async fn an_onboarded_profile_without_its_identity_seed_is_refused_never_given_a_new_identity() {
    let (cleanup, root, identity, seed_entry, stored) =
        onboarded_without("seedless", SecretKind::IdentitySeed).await;
    let profile = cleanup.0.clone();

    let error = Engine::open(engine_config(&profile, root.path()))
        .await
        .err()
        .expect("the profile opened with a new identity");
    assert_eq!(error.kind(), "identity_missing", "{error}");
    assert!(
        error.to_string().contains("did not create a new identity"),
        "{error}"
    );
    assert!(
        matches!(
            locked(|| seed_entry.get_secret()),
            Err(keyring::Error::NoEntry)
        ),
        "a new identity seed was stored for an existing profile"
    );

    // The keychain is back (unlocked, restored): the retry opens the same identity.
    locked(|| seed_entry.set_secret(&stored)).unwrap();
    let (engine, _events) = Engine::open(engine_config(&profile, root.path()))
        .await
        .unwrap();
    assert_eq!(engine.identity_key().to_bytes().to_vec(), identity);
    assert!(engine.is_onboarded().unwrap());
    engine.shutdown().await;
}

/// The same for the database key: a typed, retryable `database_key_missing`, and no key minted.
#[tokio::test]
async fn an_existing_database_without_its_key_is_a_typed_retryable_error() {
    let (cleanup, root, identity, key_entry, stored) =
        onboarded_without("keyless", SecretKind::DatabaseKey).await;
    let profile = cleanup.0.clone();

    let error = Engine::open(engine_config(&profile, root.path()))
        .await
        .err()
        .expect("the profile opened without its database key");
    assert_eq!(error.kind(), "database_key_missing", "{error}");
    assert!(matches!(
        locked(|| key_entry.get_secret()),
        Err(keyring::Error::NoEntry)
    ));

    locked(|| key_entry.set_secret(&stored)).unwrap();
    let (engine, _events) = Engine::open(engine_config(&profile, root.path()))
        .await
        .unwrap();
    assert_eq!(engine.identity_key().to_bytes().to_vec(), identity);
    engine.shutdown().await;
}

/// Many threads using the keychain at once, as engines of several profiles in one process do.
/// gnome-keyring aborts when one client negotiates several Secret Service sessions concurrently
/// (the suite's old flake: the daemon died with SIGTRAP and the tests got D-Bus `NoReply`); the
/// vault serializes its keychain calls so every one of these succeeds.
#[test]
fn concurrent_keychain_use_from_many_threads_always_succeeds() {
    const THREADS: usize = 12;
    const ROUNDS: usize = 4;
    let profiles: Vec<ProfileName> = (0..THREADS).map(|_| unique_profile("parallel")).collect();
    let _cleanup: Vec<KeychainCleanup> = profiles.iter().cloned().map(KeychainCleanup).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = profiles
            .iter()
            .map(|profile| {
                scope.spawn(move || -> Result<(), VaultError> {
                    for _ in 0..ROUNDS {
                        let vault = Vault::open(profile)?;
                        let seed = vault.load_or_create_identity_seed()?;
                        let again = vault.load_identity_seed()?;
                        assert!(again.is_some_and(|again| again == seed));
                        vault.load_or_create_database_key()?;
                        assert_eq!(vault.delete_profile_secrets()?, 2);
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            if let Err(error) = worker.join().unwrap() {
                panic!("a keychain call failed under concurrent use: {error}");
            }
        }
    });
}

const ENGINE_CHILD_ENV: &str = "SEALPOST_TEST_ENGINE_NO_SECRET_SERVICE_ROOT";
const ENGINE_CHILD_MARKER: &str = "ENGINE-NO-SECRET-SERVICE-KIND:";

/// A bus on which no Secret Service runs and none can be started (no service activation).
struct PrivateBus {
    daemon: std::process::Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl PrivateBus {
    fn start() -> Self {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                dir.path().join("bus").display()
            ),
        )
        .unwrap();
        let mut daemon = std::process::Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("dbus-daemon (package dbus) is needed for this test");
        let mut address = String::new();
        std::io::BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_owned();
        assert!(address.starts_with("unix:"), "no bus address: {address:?}");
        Self {
            daemon,
            address,
            _dir: dir,
        }
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// With no Secret Service on the session bus (a bus without one, or an address that leads
/// nowhere), opening a profile is the typed, retryable `keychain_unavailable`, never "no key
/// stored": no seed, no database key, no database and no profile directory are created.
/// Runs the engine in a child process of this test binary with the bus address changed.
#[test]
fn without_a_secret_service_the_engine_reports_keychain_unavailable_and_creates_nothing() {
    if let Some(root) = std::env::var_os(ENGINE_CHILD_ENV) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let profile = ProfileName::new("no_secret_service").unwrap();
        let kind = match runtime.block_on(Engine::open(engine_config(&profile, Path::new(&root)))) {
            Err(error) => error.kind().to_owned(),
            Ok(_) => "opened".to_owned(),
        };
        println!("{ENGINE_CHILD_MARKER}{kind}");
        return;
    }

    let run = |bus_address: &str| {
        let root = tempfile::tempdir().unwrap();
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "without_a_secret_service_the_engine_reports_keychain_unavailable_and_creates_nothing",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENGINE_CHILD_ENV, root.path())
            .env("DBUS_SESSION_BUS_ADDRESS", bus_address)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "child failed: {stdout}");
        let kind = stdout
            .lines()
            .find_map(|line| line.split_once(ENGINE_CHILD_MARKER).map(|(_, kind)| kind))
            .unwrap_or_else(|| panic!("child printed no result: {stdout}"))
            .to_owned();
        let created: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        (kind, created)
    };

    let bus = PrivateBus::start();
    for address in [
        bus.address.as_str(),
        "unix:path=/nonexistent/sealpost-no-bus",
    ] {
        let (kind, created) = run(address);
        assert_eq!(kind, "keychain_unavailable", "bus {address}");
        assert!(created.is_empty(), "bus {address}: created {created:?}");
    }
}
