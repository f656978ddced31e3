//! `packaging/relay/relay.example.toml` cannot rot: it is parsed with the relay's own config type
//! (the same `toml::from_str::<RelayConfig>` that `sealpost-relay --config` uses), every limit in
//! it must equal the built-in default it claims to show, its paths must match the systemd unit,
//! and the real binary must start from it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sealpost_relay::{Limits, RelayConfig};

const BINARY: &str = env!("CARGO_BIN_EXE_sealpost-relay");

fn packaging_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging/relay")
        .join(name)
}

fn example_config() -> RelayConfig {
    let path = packaging_file("relay.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    toml::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn example_parses_and_shows_the_default_limits() {
    let config = example_config();
    // Limits has no PartialEq; its derived Debug lists every field, which is what matters here.
    assert_eq!(
        format!("{:?}", config.limits),
        format!("{:?}", Limits::default()),
        "relay.example.toml says its [limits] are the defaults: update the example"
    );
    assert_eq!(config.listen.port(), 443);
    assert!(config.password.is_none(), "no password in the example file");
    assert!(config.tls.is_some(), "the example shows the [tls] table");
    assert_eq!(
        config.client_address,
        sealpost_relay::ClientAddressConfig::default(),
        "the example's [client_address] is the default (the TCP peer)"
    );
}

#[test]
fn example_paths_match_the_systemd_unit() {
    let config = example_config();
    let unit = std::fs::read_to_string(packaging_file("sealpost-relay.service")).unwrap();
    let lines: Vec<&str> = unit.lines().map(str::trim).collect();
    assert!(lines.contains(&"StateDirectory=sealpost-relay"));
    assert!(
        matches!(&config.database, sealpost_relay::Database::Sqlite(path)
            if path.starts_with("/var/lib/sealpost-relay")),
        "the database lives in the unit's StateDirectory"
    );
    assert!(lines.contains(
        &"ExecStart=/usr/local/bin/sealpost-relay --config /etc/sealpost-relay/relay.toml"
    ));
    // The TLS files are the unit's credentials, under $CREDENTIALS_DIRECTORY.
    let tls = config.tls.unwrap();
    let credentials = Path::new("/run/credentials/sealpost-relay.service");
    for (path, credential) in [(&tls.cert, "tls-cert.pem"), (&tls.key, "tls-key.pem")] {
        assert_eq!(path, &credentials.join(credential));
        assert!(
            lines
                .iter()
                .any(|line| line.starts_with(&format!("LoadCredential={credential}:"))),
            "the unit loads the credential {credential}"
        );
    }
    assert!(lines.contains(&"LimitNOFILE=65536"));
    let max_connections = u64::try_from(config.limits.max_connections).unwrap();
    assert!(
        max_connections < 65_536,
        "room for every connection's socket"
    );
}

#[test]
fn real_binary_starts_from_the_example() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    // The example's own listen address, database and credential paths belong to a real server;
    // flags override exactly those, so every other setting comes from the file.
    let mut child = Command::new(BINARY)
        .arg("--config")
        .arg(packaging_file("relay.example.toml"))
        .args(["--listen", "127.0.0.1:0", "--log", "warn", "--database"])
        .arg(dir.path().join("relay.db"))
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .env_remove("SEALPOST_RELAY_CONFIG")
        .env_remove("SEALPOST_RELAY_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        line.starts_with("listening on wss://127.0.0.1:"),
        "expected the wss:// listening line, got {line:?}; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
