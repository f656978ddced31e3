//! The data-at-rest scanner: search every file below a directory for forbidden byte strings.
//!
//! No plaintext message and no key byte touches disk outside SQLCipher, and that covers the
//! webview's data directory inside the profile (`docs/threat-model.md` § A thief of the user's
//! data directory). Tests prove it by
//! writing through the real code, closing everything, and scanning the profile directory
//! (including SQLite's `-wal` and `-shm` files) for the plaintext, the key bytes and their
//! common text encodings ([`Needle::with_encodings`]).
//!
//! The scanner reads each regular file whole (profile test directories are small), never follows
//! symbolic links, and reports unreadable files instead of skipping them silently.

use std::path::{Path, PathBuf};

/// A byte string that must not appear on disk, with a label for reports.
#[derive(Clone, PartialEq, Eq)]
pub struct Needle {
    /// What the bytes are, for the report (e.g. `"database key (hex)"`). Never the bytes.
    pub label: String,
    /// The bytes to look for. Must not be empty.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Needle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The bytes may be a secret: show only the label and the length.
        f.debug_struct("Needle")
            .field("label", &self.label)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Needle {
    /// One needle for exactly `bytes`.
    pub fn new(label: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            label: label.into(),
            bytes: bytes.into(),
        }
    }

    /// Needles for `bytes` raw, as lowercase and uppercase hex, and as standard and URL-safe
    /// base64 without padding (the forms a key would take in a config file, a log line, an SQL
    /// statement or a JSON value; without padding, so a padded copy is found too).
    pub fn with_encodings(label: &str, bytes: &[u8]) -> Vec<Needle> {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
        vec![
            Needle::new(format!("{label} (raw)"), bytes.to_vec()),
            Needle::new(format!("{label} (hex)"), hex::encode(bytes).into_bytes()),
            Needle::new(
                format!("{label} (HEX)"),
                hex::encode_upper(bytes).into_bytes(),
            ),
            Needle::new(
                format!("{label} (base64)"),
                STANDARD_NO_PAD.encode(bytes).into_bytes(),
            ),
            Needle::new(
                format!("{label} (base64url)"),
                URL_SAFE_NO_PAD.encode(bytes).into_bytes(),
            ),
        ]
    }
}

/// One place where a needle was found, or a file that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The file.
    pub path: PathBuf,
    /// The label of the needle found, or `"<unreadable>"`.
    pub label: String,
    /// Byte offset of the first occurrence in the file (0 for unreadable files).
    pub offset: u64,
    /// How the file could not be read, if it could not.
    pub error: Option<String>,
}

/// Scans every regular file below `dir` (recursively, no symlinks followed) for each needle.
///
/// Returns one [`Finding`] per (file, needle) pair found, plus one per file or directory that
/// could not be read, so an unreadable file can never hide a leak. Empty needles are ignored.
pub fn scan_dir_for_needles(dir: &Path, needles: &[Needle]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for item in walkdir::WalkDir::new(dir).follow_links(false) {
        let entry = match item {
            Ok(entry) => entry,
            Err(error) => {
                findings.push(Finding {
                    path: error.path().map(Path::to_path_buf).unwrap_or_default(),
                    label: "<unreadable>".to_owned(),
                    offset: 0,
                    error: Some(error.to_string()),
                });
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let contents = match std::fs::read(entry.path()) {
            Ok(contents) => contents,
            // Removed between listing and reading (SQLite deletes its -shm and -wal files when
            // the last connection closes): a file that no longer exists holds nothing on disk.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => {
                findings.push(Finding {
                    path: entry.path().to_path_buf(),
                    label: "<unreadable>".to_owned(),
                    offset: 0,
                    error: Some(error.to_string()),
                });
                continue;
            }
        };
        findings.extend(scan_bytes(entry.path(), &contents, needles));
    }
    findings
}

/// Scans one in-memory buffer (the contents of `path`) for each needle.
pub fn scan_bytes(path: &Path, contents: &[u8], needles: &[Needle]) -> Vec<Finding> {
    needles
        .iter()
        .filter(|needle| !needle.bytes.is_empty())
        .filter_map(|needle| {
            memchr::memmem::find(contents, &needle.bytes).map(|offset| Finding {
                path: path.to_path_buf(),
                label: needle.label.clone(),
                offset: offset as u64,
                error: None,
            })
        })
        .collect()
}

/// Writes a decrypted copy of the SQLCipher database at `database` (opened with `key`) as a
/// plain SQLite file at `plain_copy`, with `sqlcipher_export`: what someone who holds the file
/// AND the keychain's database key reads. Scanning that copy checks which secrets the store
/// still keeps (forward secrecy, T7), which a scan of the encrypted files cannot. For tests
/// only: the copy is plaintext; put it in a temporary directory outside the profile.
pub fn export_decrypted_copy(
    database: &Path,
    key: &crate::vault::DatabaseKey,
    plain_copy: &Path,
) -> Result<(), crate::store::StoreError> {
    if !database.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no database file").into());
    }
    // CREATE is for the attached copy (an ATTACH opens with the main connection's flags).
    let connection = rusqlite::Connection::open_with_flags(
        database,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
            | rusqlite::OpenFlags::SQLITE_OPEN_CREATE
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let hex_key = zeroize::Zeroizing::new(hex::encode(key.expose_secret()));
    let statement = zeroize::Zeroizing::new(format!("PRAGMA key = \"x'{}'\";", hex_key.as_str()));
    connection.execute_batch(&statement)?;
    connection.execute(
        "ATTACH DATABASE ?1 AS plaintext KEY ''",
        rusqlite::params![plain_copy.to_string_lossy()],
    )?;
    connection.query_row("SELECT sqlcipher_export('plaintext')", [], |_| Ok(()))?;
    connection.execute_batch("DETACH DATABASE plaintext")?;
    Ok(())
}

/// The header every unencrypted SQLite database file starts with.
pub const SQLITE_PLAIN_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// True when the file at `path` starts with the plain SQLite header (i.e. is NOT encrypted).
pub fn starts_with_plain_sqlite_header(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut header = [0u8; 16];
    let mut file = std::fs::File::open(path)?;
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..])? {
            0 => break,
            n => read += n,
        }
    }
    Ok(read == header.len() && &header == SQLITE_PLAIN_HEADER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_needles_in_nested_files_and_reports_offsets() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/file-wal"), b"xxxxSECRETyyyy").unwrap();
        std::fs::write(dir.path().join("clean"), b"nothing here").unwrap();
        let findings = scan_dir_for_needles(
            dir.path(),
            &[
                Needle::new("secret", b"SECRET".to_vec()),
                Needle::new("empty", Vec::new()),
            ],
        );
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].offset, 4);
        assert!(findings[0].path.ends_with("a/b/file-wal"));
    }

    #[test]
    fn encodings_cover_hex_forms() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("log"), b"key=0A0B\n").unwrap();
        let needles = Needle::with_encodings("key", &[0x0a, 0x0b]);
        let findings = scan_dir_for_needles(dir.path(), &needles);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].label, "key (HEX)");
    }

    #[test]
    fn plain_header_detection() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"SQLite format 3\0rest").unwrap();
        let short = dir.path().join("short");
        std::fs::write(&short, b"SQLite").unwrap();
        assert!(starts_with_plain_sqlite_header(&plain).unwrap());
        assert!(!starts_with_plain_sqlite_header(&short).unwrap());
    }

    #[test]
    fn needle_debug_hides_bytes() {
        let text = format!("{:?}", Needle::new("k", b"TOPSECRET".to_vec()));
        assert!(!text.contains("TOPSECRET"));
    }
}
