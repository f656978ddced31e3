//! Encrypted backup and restore (`docs/backup.md`): a restored profile keeps its identity,
//! contacts and history and restarts every session (no message key of the backup is used
//! again); the file shows no text, name or seed; a wrong passphrase, a flipped bit, a cut-off
//! file or absurd KDF parameters are typed errors that leave no profile behind. Run as
//! `scripts/with-keyring.sh cargo test -p sealpost-tests --test backup`.
//!
//! Every wait is bounded ([`sealpost_test_support::WAIT`]); nothing asserts on timing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use sealpost_client::backup::format::HEADER_LEN;
use sealpost_client::backup::{BackupError, KdfParams, Passphrase, RestoreTarget, restore_profile};
use sealpost_client::engine::AttachmentStateView;
use sealpost_client::scan::{Needle, scan_bytes};
use sealpost_client::{
    App, AppConfig, EngineEvent, LocalRelayMode, ProfileDirs, ProfileName, ProfilesConfig,
};
use sealpost_test_support::{
    Client, KeychainCleanup, TestRelay, TwoClients, engine_config, find_attachment, memory_blobs,
    open_real_vault, receive_attachment, send_file, two_clients_exchanged,
    two_clients_on_new_relay, unique_profile, wait_until,
};

/// Cheap Argon2id parameters (the least the format accepts), so the tests stay fast.
const TEST_KDF: KdfParams = KdfParams {
    memory_kib: KdfParams::MIN_MEMORY_KIB,
    iterations: 1,
    parallelism: 1,
};

const PASSPHRASE: &str = "velvet orbit maple crane tundra pilot";

async fn export(client: &Client, output: &Path) {
    client
        .engine
        .export_backup(
            output.to_path_buf(),
            Passphrase::checked(PASSPHRASE).unwrap(),
            TEST_KDF,
            |_| {},
        )
        .await
        .unwrap();
}

/// A new profile name under a new data root, with its keychain clean-up guard.
struct Elsewhere {
    root: tempfile::TempDir,
    name: ProfileName,
    _cleanup: KeychainCleanup,
}

impl Elsewhere {
    fn new() -> Self {
        let name = unique_profile("restored");
        Self {
            root: tempfile::tempdir().unwrap(),
            _cleanup: KeychainCleanup(name.clone()),
            name,
        }
    }

    fn dirs(&self) -> ProfileDirs {
        let config = ProfilesConfig {
            data_root: Some(self.root.path().to_path_buf()),
        };
        ProfileDirs::resolve(&config, &self.name).unwrap()
    }

    fn restore(&self, backup: &Path, passphrase: &str) -> Result<(), BackupError> {
        let dirs = self.dirs();
        let vault = open_real_vault(&self.name);
        restore_profile(
            &RestoreTarget {
                dirs: &dirs,
                vault: &vault,
            },
            backup,
            &Passphrase::new(passphrase),
            &mut |_| {},
        )
        .map(|_| ())
    }

    /// Nothing of a profile exists: no profile directory, no keychain entry, no work files.
    fn assert_no_profile(&self, case: &str) {
        let dirs = self.dirs();
        assert!(
            !dirs.profile_dir().exists(),
            "{case}: a profile directory was created"
        );
        let vault = open_real_vault(&self.name);
        assert!(
            vault.load_identity_seed().unwrap().is_none(),
            "{case}: an identity seed was stored"
        );
        assert!(
            vault.load_database_key().unwrap().is_none(),
            "{case}: a database key was stored"
        );
        if let Ok(entries) = std::fs::read_dir(self.root.path()) {
            let left: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
            assert!(left.is_empty(), "{case}: files left behind: {left:?}");
        }
    }
}

/// Alice and Bob on a new relay after a message each way, and Alice's backup: (the relay, the
/// data root, the clients, the backup's path, its bytes).
async fn backed_up() -> (TestRelay, tempfile::TempDir, TwoClients, PathBuf, Vec<u8>) {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let clients = two_clients_exchanged(root.path(), &relay.url(), "hello", "hi").await;
    let backup = root.path().join("alice.sealpost-backup");
    export(&clients.0, &backup).await;
    let good = std::fs::read(&backup).unwrap();
    (relay, root, clients, backup, good)
}

/// A tampering case: its name, the file, the passphrase tried, and the error expected.
type Case = (
    &'static str,
    PathBuf,
    &'static str,
    fn(&BackupError) -> bool,
);

fn refusals(events: &[EngineEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            EngineEvent::EnvelopeRefused { reason } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// Alice backs up, then keeps chatting with Bob (her sending chain and sequence numbers move on
/// past the backup), then her disk dies. Restored elsewhere, she has the same identity, Bob
/// and the history up to the backup; her next message reaches Bob and Bob's reply reaches her,
/// and Bob refuses nothing: no ratchet state or sequence number of the backup sealed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_never_reuses_a_message_key() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, mut bob, alice_bob, bob_alice, _, _secrets) =
        two_clients_exchanged(root.path(), &relay.url(), "before", "reply").await;
    let backup = root.path().join("alice.sealpost-backup");
    export(&alice, &backup).await;

    // Keep chatting after the backup: both chains and Alice's sequence numbers move on.
    alice.send(&alice_bob, "after the backup 1").await;
    alice.send(&alice_bob, "after the backup 2").await;
    bob.wait_incoming_count(&bob_alice, 3).await;
    bob.send(&bob_alice, "Bob after the backup").await;
    alice
        .wait_incoming_text(&alice_bob, "Bob after the backup")
        .await;
    wait_until("everything delivered", || async {
        alice.all_delivered(&alice_bob).await && bob.all_delivered(&bob_alice).await
    })
    .await;
    let identity = alice.engine.identity_key().to_bytes();
    // The disk dies.
    let _ = alice.stop().await;

    let elsewhere = Elsewhere::new();
    elsewhere.restore(&backup, PASSPHRASE).unwrap();
    let restored = Client::reopen(&elsewhere.name, elsewhere.root.path()).await;
    assert_eq!(
        restored.engine.identity_key().to_bytes(),
        identity,
        "same identity"
    );
    assert_eq!(restored.incoming_texts(&alice_bob).await, vec!["reply"]);

    restored.send(&alice_bob, "from the restored profile").await;
    bob.wait_incoming_text(&bob_alice, "from the restored profile")
        .await;
    bob.send(&bob_alice, "Bob to the restored profile").await;
    restored
        .wait_incoming_text(&alice_bob, "Bob to the restored profile")
        .await;
    restored.send(&alice_bob, "and again").await;
    bob.wait_incoming_text(&bob_alice, "and again").await;

    assert_eq!(
        bob.incoming_texts(&bob_alice).await,
        vec![
            "before",
            "after the backup 1",
            "after the backup 2",
            "from the restored profile",
            "and again"
        ]
    );
    let refused = refusals(&bob.drain_events());
    assert!(refused.is_empty(), "Bob refused: {refused:?}");
}

/// The backup file holds no message text, no display name and no form of the identity seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scan_finds_no_text_name_or_seed_in_a_backup() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, bob, alice_bob, _, _, _secrets) = two_clients_exchanged(
        root.path(),
        &relay.url(),
        "quartz-needle-first",
        "quartz-needle-reply",
    )
    .await;
    alice
        .engine
        .rename_contact(&alice_bob, "Quartzbob Renamed")
        .await
        .unwrap();
    let backup = root.path().join("alice.sealpost-backup");
    export(&alice, &backup).await;

    let seed = open_real_vault(&alice.profile)
        .load_identity_seed()
        .unwrap()
        .unwrap();
    let mut needles = Needle::with_encodings("identity seed", seed.expose_secret());
    for text in [
        "quartz-needle-first",
        "quartz-needle-reply",
        "Quartzbob Renamed",
        alice.profile.as_str(),
        bob.profile.as_str(),
    ] {
        needles.push(Needle::new(
            format!("text {text:?}"),
            text.as_bytes().to_vec(),
        ));
    }
    needles.push(Needle::new("a display name", b"Alice".to_vec()));
    let bytes = std::fs::read(&backup).unwrap();
    assert!(bytes.len() > HEADER_LEN);
    let findings = scan_bytes(&backup, &bytes, &needles);
    assert!(findings.is_empty(), "found in the backup: {findings:?}");

    // And the file does restore: the needles are inside, sealed.
    let elsewhere = Elsewhere::new();
    elsewhere.restore(&backup, PASSPHRASE).unwrap();
    assert!(elsewhere.dirs().database_path().exists());
}

/// A wrong passphrase, a flipped bit (body or header), a cut-off file: each a typed error, and
/// no profile directory, keychain entry or work file is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_passphrase_a_flipped_bit_or_truncation_creates_no_profile() {
    let (_relay, root, (_alice, _bob, _, _, _, _secrets), backup, good) = backed_up().await;

    let write = |name: &str, bytes: &[u8]| {
        let path = root.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let mut body_flip = good.clone();
    let middle = HEADER_LEN + (good.len() - HEADER_LEN) / 2;
    body_flip[middle] ^= 0x04;
    let mut last_flip = good.clone();
    *last_flip.last_mut().unwrap() ^= 0x01;
    let mut salt_flip = good.clone();
    salt_flip[30] ^= 0x80;

    let wrong: fn(&BackupError) -> bool = |e| matches!(e, BackupError::WrongPassphrase);
    let damaged: fn(&BackupError) -> bool = |e| matches!(e, BackupError::Damaged);
    let truncated: fn(&BackupError) -> bool = |e| matches!(e, BackupError::Truncated);
    let pilots = "velvet orbit maple crane tundra pilots";
    let body = write("body.bak", &body_flip);
    let last = write("last.bak", &last_flip);
    let salt = write("salt.bak", &salt_flip);
    let short = write("short.bak", &good[..good.len() - 1]);
    let half = write("half.bak", &good[..good.len() / 2]);
    let header = write("header.bak", &good[..HEADER_LEN]);
    let empty = write("empty.bak", &[]);
    let cases: Vec<Case> = vec![
        ("wrong passphrase", backup.clone(), pilots, wrong),
        ("flipped body bit", body, PASSPHRASE, damaged),
        ("flipped last bit", last, PASSPHRASE, damaged),
        ("flipped salt bit", salt, PASSPHRASE, wrong),
        ("truncated by a byte", short, PASSPHRASE, truncated),
        ("truncated to half", half, PASSPHRASE, truncated),
        ("header only", header, PASSPHRASE, truncated),
        ("empty", empty, PASSPHRASE, truncated),
    ];
    for (case, path, passphrase, expected) in cases {
        let elsewhere = Elsewhere::new();
        match elsewhere.restore(&path, passphrase) {
            Err(error) => assert!(expected(&error), "{case}: wrong error {error:?}"),
            Ok(()) => panic!("{case}: restored"),
        }
        elsewhere.assert_no_profile(case);
    }

    // The untouched file restores, so the cases above failed for their own reason.
    let elsewhere = Elsewhere::new();
    elsewhere.restore(&backup, PASSPHRASE).unwrap();
}

/// A header asking for absurd Argon2id parameters is refused before any key is derived, and
/// an export with them is refused too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_kdf_parameters_are_refused() {
    let (_relay, root, (alice, _bob, _, _, _, _secrets), _, good) = backed_up().await;

    // Offsets from docs/formats.md § Backup file header: memory 11..15, passes 15..19, lanes 19..23.
    for (case, offset, value) in [
        ("4 TiB of memory", 11, u32::MAX),
        ("1 KiB of memory", 11, 1),
        ("a million passes", 15, 1_000_000),
        ("zero passes", 15, 0),
        ("a million lanes", 19, 1_000_000),
    ] {
        let mut bytes = good.clone();
        bytes[offset..offset + 4].copy_from_slice(&value.to_be_bytes());
        let path = root.path().join("absurd.bak");
        std::fs::write(&path, &bytes).unwrap();
        let elsewhere = Elsewhere::new();
        match elsewhere.restore(&path, PASSPHRASE) {
            Err(BackupError::KdfParamsRefused { .. }) => {}
            other => panic!("{case}: {other:?}"),
        }
        elsewhere.assert_no_profile(case);
    }

    let absurd = KdfParams {
        memory_kib: u32::MAX,
        iterations: 3,
        parallelism: 1,
    };
    let error = alice
        .engine
        .export_backup(
            root.path().join("never.bak"),
            Passphrase::new(PASSPHRASE),
            absurd,
            |_| {},
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "backup_unsupported");
    assert!(!root.path().join("never.bak").exists());
}

/// Onboarding's "Restore from a backup" through the `App` facade: with the new, not yet
/// onboarded profile open, a wrong passphrase changes nothing and the app goes on; the right one
/// replaces the open profile, which then opens as the restored identity and chats with Bob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_restores_at_onboarding() {
    let relay = TestRelay::start().await;
    let root = tempfile::tempdir().unwrap();
    let (alice, bob, alice_bob, bob_alice, _, _secrets) =
        two_clients_exchanged(root.path(), &relay.url(), "before", "reply").await;
    let backup = root.path().join("alice.sealpost-backup");
    export(&alice, &backup).await;
    let identity = alice.engine.identity_key().to_bytes();
    let _ = alice.stop().await;

    let elsewhere = Elsewhere::new();
    let (app, _events) = App::open(AppConfig {
        engine: engine_config(&elsewhere.name, elsewhere.root.path()),
        local_relay: LocalRelayMode::FromSettings,
        local_relay_port: None,
    })
    .await
    .unwrap();
    let error = app
        .restore_backup(
            backup.clone(),
            Passphrase::new("not the passphrase"),
            |_| {},
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "backup_wrong_passphrase");
    assert!(!app.status().await.unwrap().onboarded, "the app goes on");
    app.restore_backup(backup, Passphrase::new(PASSPHRASE), |_| {})
        .await
        .unwrap();
    drop(app);

    let restored = Client::reopen(&elsewhere.name, elsewhere.root.path()).await;
    assert_eq!(restored.engine.identity_key().to_bytes(), identity);
    assert_eq!(restored.incoming_texts(&alice_bob).await, vec!["reply"]);
    restored.send(&alice_bob, "restored at onboarding").await;
    bob.wait_incoming_text(&bob_alice, "restored at onboarding")
        .await;
}

/// A received file travels in the backup: restored elsewhere, the new profile has it complete
/// and saves exactly its bytes (the chunk files came with the payload, their key with the
/// snapshot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_received_file_is_in_the_backup_and_saves_equal_after_a_restore() {
    let (_blobs, adjust) = memory_blobs!();
    let (_relay, root, (alice, bob, alice_bob, bob_alice, _, _secrets)) =
        two_clients_on_new_relay(adjust).await;
    let name = "field-notes.bin";
    // Three blob chunks and a bit.
    let bytes: Vec<u8> = (0..200_000usize).map(|i| (i * 13 % 253) as u8).collect();
    send_file(&alice, &alice_bob, name, bytes.clone()).await;
    receive_attachment(&bob, &bob_alice, name).await;

    let backup = root.path().join("bob.sealpost-backup");
    export(&bob, &backup).await;
    let _ = bob.stop().await;

    let elsewhere = Elsewhere::new();
    elsewhere.restore(&backup, PASSPHRASE).unwrap();
    let restored = Client::reopen(&elsewhere.name, elsewhere.root.path()).await;
    let file = find_attachment(&restored, &bob_alice, name).await.unwrap();
    assert_eq!(
        file.state,
        AttachmentStateView::Complete,
        "{:?}",
        file.error
    );
    let saved_dir = tempfile::tempdir().unwrap();
    let path = restored
        .engine
        .save_attachment(&file.id, saved_dir.path())
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the saved file is the file"
    );
    drop(alice);
}
