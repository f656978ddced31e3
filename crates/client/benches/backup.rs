//! Backup benchmark (`docs/benchmarks.md` § Backup; not run in CI): export and restore of a
//! profile of 100,000 messages in the real encrypted store, and the backup file's size relative
//! to the database.
//!
//! Run (release): `cargo bench -p sealpost-client --bench backup`.
//! `SEALPOST_BACKUP_MESSAGES` changes the size. The Argon2id cost is the app's
//! (`KdfParams::DEFAULT`: 64 MiB, 3 passes), included in both timings. The keychain is the
//! `keyring` crate's in-memory mock (the real one only adds two entry writes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::time::Instant;

use common::{Rng, fill_messages};

use sealpost_client::backup::{
    BackupProgress, KdfParams, Passphrase, RestoreTarget, export_backup, verify_backup,
};
use sealpost_client::store::{Store, UnixMillis};
use sealpost_client::vault::KeyringStore;
use sealpost_client::{
    DatabaseKey, IdentitySeedBytes, ProfileDirs, ProfileName, ProfilesConfig, Vault,
};

const WORDS: &[&str] = &[
    "meet", "tomorrow", "station", "coffee", "photo", "train", "late", "call", "dinner", "weekend",
    "東京", "会議", "写真", "café", "lunch", "project", "draft", "review", "ok", "thanks",
];

/// Deterministic text, about 80 bytes a message.
fn text(rng: &mut Rng) -> String {
    let words = 8 + rng.next() % 10;
    (0..words)
        .map(|_| WORDS[(rng.next() % WORDS.len() as u64) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

fn database_bytes(path: &std::path::Path) -> u64 {
    ["", "-wal"]
        .iter()
        .map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            std::fs::metadata(std::path::PathBuf::from(name))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum()
}

fn main() {
    let count: usize = std::env::var("SEALPOST_BACKUP_MESSAGES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("source.db");
    let key = DatabaseKey::generate().unwrap();
    let mut store = Store::open(&db_path, &key).unwrap();
    store.init_profile("bench", UnixMillis(1)).unwrap();
    let mut rng = Rng(0x00BA_C40F);
    fill_messages(&mut store, count, || text(&mut rng));
    // The search index is built, as in a profile that has been running.
    while store.index_search_backlog(5_000).unwrap() > 0 {}
    store.close().unwrap();
    let store = Store::open(&db_path, &key).unwrap();
    let db_bytes = database_bytes(&db_path);

    let seed = IdentitySeedBytes::generate().unwrap();
    let passphrase = Passphrase::generate().unwrap();
    let output = dir.path().join("profile.sealpost-backup");
    let mut last = None;
    let started = Instant::now();
    let summary = export_backup(
        &store,
        &seed,
        &passphrase,
        KdfParams::DEFAULT,
        dir.path(),
        &output,
        &mut |progress: BackupProgress| last = Some(progress),
    )
    .unwrap();
    let export = started.elapsed();
    assert_eq!(last.map(|p| p.done), last.map(|p| p.total));

    let config = ProfilesConfig {
        data_root: Some(dir.path().join("restored")),
    };
    let name = ProfileName::new("restored").unwrap();
    let dirs = ProfileDirs::resolve(&config, &name).unwrap();
    let vault = Vault::open_with_store(&name, Box::new(KeyringStore::in_memory())).unwrap();
    let started = Instant::now();
    let verified = verify_backup(dirs.data_root(), &output, &passphrase, &mut |_| {}).unwrap();
    verified
        .commit(&RestoreTarget {
            dirs: &dirs,
            vault: &vault,
        })
        .unwrap();
    let restore = started.elapsed();
    let restored = Store::open(&dirs.database_path(), &DatabaseKey::from_bytes([0; 32]));
    assert!(restored.is_err(), "the restored database has its own key");

    println!(
        "backup of {count} messages: database {:.1} MiB, backup file {:.1} MiB ({:.3}x); export {:.2} s; restore {:.2} s (Argon2id 64 MiB x3 in each)",
        db_bytes as f64 / 1048576.0,
        summary.bytes as f64 / 1048576.0,
        summary.bytes as f64 / db_bytes as f64,
        export.as_secs_f64(),
        restore.as_secs_f64(),
    );
}
