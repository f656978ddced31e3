//! Desktop-app benchmark of issue 5: cold start to interactive UI and idle memory (PSS of every
//! process the app runs, WebKit's included) of the real Sealpost app with a 100k-message history,
//! against a bare Tauri app built in the same run (`benches/bare-tauri`).
//!
//! Two binaries, both run by `scripts/bench-app.sh` (never by CI):
//!
//! - `seed-history`: creates profile `bench` (and a throwaway peer profile) under
//!   `$SEALPOST_DATA_DIR`, exchanges a real invite through an in-process relay, and writes a long
//!   history into the real encrypted store through `sealpost-client`'s public API. The relay's
//!   database and address stay in `$SEALPOST_DATA_DIR/bench-relay/` ([`BenchRelayFiles`]) so the
//!   benchmark can bring the same relay back while the app runs.
//! - `app-startup`: launches each app N times, alternating, through `tauri-driver`, and reports
//!   the figures.
//!
//! This library holds the parts worth testing on their own: reading `/proc` ([`proc`]) and the
//! statistics ([`stats`]).

pub mod proc;
pub mod stats;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Name of the benchmark's profile: the one the app is started with (`--profile bench`).
pub const BENCH_PROFILE: &str = "bench";

/// Name of the throwaway peer profile that sends the invite.
pub const PEER_PROFILE: &str = "bench_peer";

/// The bench relay's files under the data root: `DATA/bench-relay/relay.db` and
/// `DATA/bench-relay/address` (one line, `127.0.0.1:PORT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchRelayFiles {
    dir: PathBuf,
}

/// Why the bench relay's address file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BenchRelayError {
    /// Reading or writing the file failed.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file does not hold a socket address.
    #[error("{path} does not hold an address like 127.0.0.1:7443: {text:?}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What it holds (trimmed, at most 64 characters).
        text: String,
    },
}

impl BenchRelayFiles {
    /// The files under `data_root`.
    pub fn under(data_root: &Path) -> Self {
        Self {
            dir: data_root.join("bench-relay"),
        }
    }

    /// The directory holding both files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The relay's SQLite database.
    pub fn database(&self) -> PathBuf {
        self.dir.join("relay.db")
    }

    /// The file holding the relay's listen address.
    pub fn address_file(&self) -> PathBuf {
        self.dir.join("address")
    }

    /// Writes the relay's address (creating the directory).
    pub fn write_address(&self, address: SocketAddr) -> Result<(), BenchRelayError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| BenchRelayError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let path = self.address_file();
        std::fs::write(&path, format!("{address}\n"))
            .map_err(|source| BenchRelayError::Io { path, source })
    }

    /// Reads the relay's address.
    pub fn read_address(&self) -> Result<SocketAddr, BenchRelayError> {
        let path = self.address_file();
        let text = std::fs::read_to_string(&path).map_err(|source| BenchRelayError::Io {
            path: path.clone(),
            source,
        })?;
        parse_address(&text).ok_or_else(|| BenchRelayError::Malformed {
            path,
            text: text.trim().chars().take(64).collect(),
        })
    }
}

/// Parses the address file's text: one socket address, surrounding whitespace ignored.
pub fn parse_address(text: &str) -> Option<SocketAddr> {
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test_case("127.0.0.1:7443\n", Some("127.0.0.1:7443") ; "with newline")]
    #[test_case("  [::1]:9 ", Some("[::1]:9") ; "ipv6 with spaces")]
    #[test_case("127.0.0.1", None ; "no port")]
    #[test_case("", None ; "empty")]
    #[test_case("ws://127.0.0.1:1", None ; "a url is not an address")]
    fn address_text(text: &str, expected: Option<&str>) {
        assert_eq!(
            parse_address(text),
            expected.map(|a| a.parse::<SocketAddr>().unwrap())
        );
    }

    #[test]
    fn address_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = BenchRelayFiles::under(dir.path());
        let address: SocketAddr = "127.0.0.1:40123".parse().unwrap();
        files.write_address(address).unwrap();
        assert_eq!(files.read_address().unwrap(), address);
        std::fs::write(files.address_file(), "nonsense").unwrap();
        assert!(matches!(
            files.read_address(),
            Err(BenchRelayError::Malformed { .. })
        ));
    }
}
