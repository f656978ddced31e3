//! One version source for the whole project: `[workspace.package] version` in the root
//! `Cargo.toml`. Every member inherits it (`version.workspace = true`), the desktop bundle takes it
//! from the app crate (tauri.conf.json has no `version` of its own; scripts/package-check.sh checks
//! that and the built .deb's version), and `sealpost-relay --version` prints it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_sealpost-relay");

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn read_toml(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    toml::from_str(&text).unwrap_or_else(|error| panic!("parsing {}: {error}", path.display()))
}

fn workspace_version() -> String {
    let root = read_toml(&repository_root().join("Cargo.toml"));
    root["workspace"]["package"]["version"]
        .as_str()
        .expect("[workspace.package] version is a string")
        .to_owned()
}

#[test]
fn relay_version_flag_prints_the_workspace_version() {
    let output = Command::new(BINARY).arg("--version").output().unwrap();
    assert!(output.status.success(), "--version exits 0");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout, format!("sealpost-relay {}\n", workspace_version()));
    assert_eq!(env!("CARGO_PKG_VERSION"), workspace_version());
}

#[test]
fn every_workspace_member_inherits_the_workspace_version() {
    let root_dir = repository_root();
    let root = read_toml(&root_dir.join("Cargo.toml"));
    let members = root["workspace"]["members"]
        .as_array()
        .expect("workspace.members is a list");
    assert!(!members.is_empty());
    for member in members {
        let member = member.as_str().expect("member path is a string");
        let manifest = read_toml(&root_dir.join(member).join("Cargo.toml"));
        let version = &manifest["package"]["version"];
        let inherited = version
            .as_table()
            .and_then(|table| table.get("workspace"))
            .and_then(toml::Value::as_bool);
        assert_eq!(
            inherited,
            Some(true),
            "{member}/Cargo.toml must say `version.workspace = true`, not {version}"
        );
    }
}
