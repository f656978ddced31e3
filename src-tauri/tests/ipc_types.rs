//! The UI's TypeScript types are generated from the Rust types that cross Tauri IPC (ts-rs):
//! the views and events of `sealpost_client::engine`, `AppStatus`, the command error
//! `{ kind, message }` with its closed set of kinds, and the `open-invite` payload. The files
//! are committed under `ui/src/api/generated/`; this test regenerates them and fails when the
//! committed ones differ, so the contract cannot drift.
//!
//! After changing one of these types, regenerate deliberately:
//! `SEALPOST_WRITE_TS=1 <this test binary>` (or `cargo test -p sealpost --test ipc_types`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sealpost_client::AppStatus;
use sealpost_client::backup::{BackupProgress, BackupSummary};
use sealpost_client::engine::{
    AttachmentView, ChatView, EngineEvent, ErrorKind, GroupView, InvitePreview, InviteView,
    MessagePage, OutgoingFile, ProfileView, RelayChoice, SafetyNumberView, Settings,
};
use sealpost_lib::commands::CommandError;
use sealpost_lib::deep_link::OpenInvite;
use ts_rs::{Config, TS};

/// The committed files.
fn committed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/api/generated")
}

/// Writes every IPC type (and each type it names) into `dir`, one file per type.
fn generate(dir: &Path) {
    // Integers that cross IPC are below 2^53 (`ui/CONTRACT.md`), so they are JS numbers.
    let config = Config::new().with_large_int("number").with_out_dir(dir);
    AppStatus::export_all(&config).unwrap();
    ProfileView::export_all(&config).unwrap();
    RelayChoice::export_all(&config).unwrap();
    ChatView::export_all(&config).unwrap();
    MessagePage::export_all(&config).unwrap();
    InviteView::export_all(&config).unwrap();
    InvitePreview::export_all(&config).unwrap();
    SafetyNumberView::export_all(&config).unwrap();
    Settings::export_all(&config).unwrap();
    EngineEvent::export_all(&config).unwrap();
    GroupView::export_all(&config).unwrap();
    ErrorKind::export_all(&config).unwrap();
    AttachmentView::export_all(&config).unwrap();
    OutgoingFile::export_all(&config).unwrap();
    CommandError::export_all(&config).unwrap();
    OpenInvite::export_all(&config).unwrap();
    BackupProgress::export_all(&config).unwrap();
    BackupSummary::export_all(&config).unwrap();
    // ts-rs opens each file with a note that links its project; the UI holds no remote URL
    // (`ui/src/security.test.ts`), so the note names this test instead.
    for (name, text) in read_dir(dir) {
        let body = text.split_once('\n').map_or("", |(_, rest)| rest);
        std::fs::write(dir.join(name), format!("{HEADER}\n{body}")).unwrap();
    }
}

/// The first line of every generated file.
const HEADER: &str = "// Generated from the Rust types by src-tauri/tests/ipc_types.rs (ts-rs). Do not edit: \
     change the Rust type and run that test with SEALPOST_WRITE_TS=1.";

/// File name → contents of every `.ts` file in `dir`.
fn read_dir(dir: &Path) -> BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "ts"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}

#[test]
fn committed_typescript_types_match_the_rust_types() {
    if std::env::var_os("SEALPOST_WRITE_TS").is_some() {
        let dir = committed_dir();
        for name in read_dir(&dir).keys() {
            std::fs::remove_file(dir.join(name)).unwrap();
        }
        generate(&dir);
    }
    let fresh = tempfile::tempdir().unwrap();
    generate(fresh.path());
    let expected = read_dir(fresh.path());
    let committed = read_dir(&committed_dir());
    assert!(!expected.is_empty());
    let names = |map: &BTreeMap<String, String>| map.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&committed),
        names(&expected),
        "ui/src/api/generated/ holds other files than the Rust types generate: \
         regenerate with SEALPOST_WRITE_TS=1"
    );
    for (name, text) in &expected {
        assert_eq!(
            committed.get(name),
            Some(text),
            "ui/src/api/generated/{name} differs from the Rust types: regenerate with \
             SEALPOST_WRITE_TS=1"
        );
    }
}
