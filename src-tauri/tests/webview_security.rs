//! Pins what the webview may load and call in the production configuration: the CSP in
//! `tauri.conf.json` and the capability in `capabilities/` (ARCHITECTURE.md § Invariants: "the
//! webview may call only what its capability lists", "the CSP allows no remote content").
//!
//! The CSP must be exactly the directives below: only the app's own origin and the IPC channel,
//! no remote `http(s)` origin, no scheme-wide source, and no `unsafe-inline`/`unsafe-eval` for
//! scripts. The capability must allow exactly one `allow-<command>` per command declared in
//! `build.rs` (which must also be exactly the commands registered in `lib.rs`), event listening,
//! and the few plugin permissions listed here, for the main window only, with no remote URLs.
//! Loosening either file makes this test fail, so a change has to be made here on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The production CSP, directive by directive.
const EXPECTED_CSP: &[(&str, &[&str])] = &[
    ("default-src", &["'self'"]),
    ("script-src", &["'self'"]),
    ("style-src", &["'self'"]),
    ("img-src", &["'self'", "data:"]),
    // Tauri's IPC: the `ipc:` custom protocol, and its http form where custom protocols are
    // served over http (Windows). Neither leaves the machine.
    ("connect-src", &["ipc:", "http://ipc.localhost"]),
    ("object-src", &["'none'"]),
    ("frame-ancestors", &["'none'"]),
    ("base-uri", &["'none'"]),
];

/// Everything the capability allows besides the app's own commands.
const PLUGIN_PERMISSIONS: &[&str] = &[
    "core:event:allow-listen",
    "core:event:allow-unlisten",
    "deep-link:allow-get-current",
    "window-state:default",
    "notification:allow-is-permission-granted",
    "notification:allow-request-permission",
];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn conf() -> Value {
    read_json(&crate_dir().join("tauri.conf.json"))
}

/// The CSP string's directives as name → sources.
fn parse_csp(csp: &str) -> BTreeMap<String, Vec<String>> {
    let mut directives = BTreeMap::new();
    for directive in csp.split(';').map(str::trim).filter(|d| !d.is_empty()) {
        let mut parts = directive.split_whitespace();
        let name = parts.next().unwrap().to_ascii_lowercase();
        let sources: Vec<String> = parts.map(str::to_owned).collect();
        assert!(
            directives.insert(name.clone(), sources).is_none(),
            "directive {name} appears twice"
        );
    }
    directives
}

/// The quoted strings of the Rust array that follows `marker` in `text` (up to its `]`).
fn quoted_list_after(text: &str, marker: &str) -> Vec<String> {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not found"));
    let rest = &text[start + marker.len()..];
    let body = &rest[..rest.find(']').expect("unterminated list")];
    body.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The commands `build.rs` declares in the app manifest.
fn declared_commands() -> Vec<String> {
    let build = std::fs::read_to_string(crate_dir().join("build.rs")).unwrap();
    let commands = quoted_list_after(&build, "const COMMANDS: &[&str] = &[");
    assert!(!commands.is_empty(), "no commands found in build.rs");
    commands
}

#[test]
fn the_csp_is_exactly_the_pinned_directives() {
    let conf = conf();
    let csp = conf["app"]["security"]["csp"]
        .as_str()
        .expect("app.security.csp must be one string");
    let expected: BTreeMap<String, Vec<String>> = EXPECTED_CSP
        .iter()
        .map(|(name, sources)| {
            (
                (*name).to_owned(),
                sources.iter().map(|s| (*s).to_owned()).collect(),
            )
        })
        .collect();
    assert_eq!(parse_csp(csp), expected, "CSP changed: {csp}");
}

#[test]
fn the_csp_allows_no_remote_origin_and_no_unsafe_script() {
    let conf = conf();
    let directives = parse_csp(conf["app"]["security"]["csp"].as_str().unwrap());
    for (name, sources) in &directives {
        for source in sources {
            let lower = source.to_ascii_lowercase();
            assert!(
                !lower.contains('*'),
                "{name} has a wildcard source {source}"
            );
            assert!(
                !matches!(
                    lower.as_str(),
                    "http:" | "https:" | "ws:" | "wss:" | "blob:"
                ),
                "{name} allows a whole scheme: {source}"
            );
            if lower.starts_with("http://") || lower.starts_with("https://") {
                assert!(
                    name == "connect-src" && lower == "http://ipc.localhost",
                    "{name} allows a remote origin {source}"
                );
            }
            assert!(
                !lower.starts_with("ws://") && !lower.starts_with("wss://"),
                "{name} allows a WebSocket origin {source}: relays are reached from Rust, never the webview"
            );
        }
    }
    for name in ["script-src", "default-src"] {
        let sources = &directives[name];
        for unsafe_source in ["'unsafe-inline'", "'unsafe-eval'", "'wasm-unsafe-eval'"] {
            assert!(
                !sources
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(unsafe_source)),
                "{name} allows {unsafe_source}"
            );
        }
    }
}

#[test]
fn the_security_settings_keep_tauri_s_protections_on() {
    let conf = conf();
    let security = &conf["app"]["security"];
    // Tauri adds nonces/hashes for its own scripts only while this stays off.
    assert!(
        security
            .get("dangerousDisableAssetCspModification")
            .is_none(),
        "{security}"
    );
    assert!(security.get("devCsp").is_none(), "a dev CSP would ship");
    assert_eq!(security["freezePrototype"], Value::Bool(true));
    assert_eq!(conf["app"]["withGlobalTauri"], Value::Bool(false));
    assert_eq!(security["capabilities"], serde_json::json!(["main-window"]));
    // No remote page or dev server in the production build.
    assert!(conf["build"].get("devUrl").is_none() || conf["build"]["devUrl"].is_null());
    assert_eq!(conf["build"]["frontendDist"], Value::from("../ui/dist"));
}

#[test]
fn the_capability_allows_exactly_the_commands_and_event_listening() {
    let dir = crate_dir().join("capabilities");
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        files,
        BTreeSet::from(["main-window.json".to_owned()]),
        "another capability file would grant more"
    );
    let capability = read_json(&dir.join("main-window.json"));
    assert_eq!(capability["identifier"], Value::from("main-window"));
    assert_eq!(capability["windows"], serde_json::json!(["main"]));
    assert!(
        capability.get("remote").is_none(),
        "no remote URL may use the IPC"
    );
    assert!(
        capability.get("webviews").is_none() && capability.get("platforms").is_none(),
        "{capability}"
    );

    let granted: Vec<String> = capability["permissions"]
        .as_array()
        .expect("permissions must be a list of identifiers")
        .iter()
        .map(|permission| {
            permission
                .as_str()
                .unwrap_or_else(|| {
                    panic!("scoped permission objects are not allowed: {permission}")
                })
                .to_owned()
        })
        .collect();
    let granted_set: BTreeSet<String> = granted.iter().cloned().collect();
    assert_eq!(
        granted_set.len(),
        granted.len(),
        "a permission is listed twice"
    );

    let mut expected: BTreeSet<String> = declared_commands()
        .iter()
        .map(|command| format!("allow-{}", command.replace('_', "-")))
        .collect();
    expected.extend(PLUGIN_PERMISSIONS.iter().map(|p| (*p).to_owned()));
    assert_eq!(granted_set, expected);
}

#[test]
fn the_declared_commands_are_exactly_the_registered_ones() {
    let lib = std::fs::read_to_string(crate_dir().join("src/lib.rs")).unwrap();
    let start = lib
        .find("generate_handler![")
        .expect("generate_handler! in lib.rs");
    let rest = &lib[start..];
    let registered: BTreeSet<String> = rest[..rest.find(']').unwrap()]
        .split("commands::")
        .skip(1)
        .map(|item| {
            item.trim_end_matches(|c: char| c == ',' || c.is_whitespace())
                .to_owned()
        })
        .collect();
    let declared: BTreeSet<String> = declared_commands().into_iter().collect();
    assert_eq!(registered, declared);
}
