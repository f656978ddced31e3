//! The frozen backup file layout (`docs/formats.md` § Backup file, `docs/backup.md`): a whole
//! small backup made with a fixed salt, passphrase and payload, committed in
//! `tests/vectors/backup.json`. Today's code must write exactly those bytes, parse the header to
//! the committed fields and open the file to the committed payload, so a change of the header,
//! the key schedule or the chunk sealing fails here and needs `FORMAT_VERSION` bumped. After a
//! deliberate change: `SEALPOST_WRITE_VECTORS=1 cargo test -p sealpost-client --test
//! backup_vectors`, then review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use sealpost_client::backup::format::{
    FORMAT_VERSION, HEADER_LEN, Header, KdfParams, header_with_salt, open_header, read_sealed,
    write_sealed,
};
use sealpost_client::backup::{BackupError, Passphrase};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct BackupVector {
    passphrase: String,
    format_version: u16,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    /// Lowercase hex.
    salt: String,
    /// The payload, lowercase hex.
    payload: String,
    /// The header (79 bytes), lowercase hex.
    header: String,
    /// SHA-256 of the whole file (a chunk is 64 KiB even for a short payload), lowercase hex.
    file_sha256: String,
}

fn vector_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/backup.json")
}

fn built() -> (BackupVector, Vec<u8>) {
    let passphrase = "correct horse battery staple é";
    let kdf = KdfParams {
        memory_kib: KdfParams::MIN_MEMORY_KIB,
        iterations: 1,
        parallelism: 1,
    };
    let salt = [0x5a; 16];
    let mut payload = vec![0x11; 32];
    payload.extend_from_slice(&[0x22; 32]);
    payload.extend_from_slice(b"a SQLCipher snapshot would follow here");
    let (header, keys) = header_with_salt(
        &Passphrase::new(passphrase),
        kdf,
        salt,
        payload.len() as u64,
    )
    .unwrap();
    let mut file = Vec::new();
    write_sealed(&header, &keys, &mut &payload[..], &mut file, &mut |_, _| {}).unwrap();
    let vector = BackupVector {
        passphrase: passphrase.to_owned(),
        format_version: FORMAT_VERSION,
        memory_kib: kdf.memory_kib,
        iterations: kdf.iterations,
        parallelism: kdf.parallelism,
        salt: hex::encode(salt),
        payload: hex::encode(&payload),
        header: hex::encode(header.to_bytes()),
        file_sha256: hex::encode(Sha256::digest(&file)),
    };
    (vector, file)
}

#[test]
fn the_backup_layout_is_frozen() {
    let (vector, file) = built();
    if std::env::var_os("SEALPOST_WRITE_VECTORS").is_some() {
        let json = serde_json::to_string_pretty(&vector).unwrap();
        std::fs::write(vector_path(), json + "\n").unwrap();
    }
    let committed: BackupVector =
        serde_json::from_str(&std::fs::read_to_string(vector_path()).unwrap()).unwrap();
    assert_eq!(
        vector, committed,
        "the backup layout changed: bump FORMAT_VERSION"
    );

    // The file (byte for byte the committed one, by its hash) parses to the committed fields and
    // opens to the committed payload.
    assert_eq!(hex::encode(&file[..HEADER_LEN]), committed.header);
    let header_bytes: [u8; HEADER_LEN] = file[..HEADER_LEN].try_into().unwrap();
    let header = Header::parse(&header_bytes).unwrap();
    assert_eq!(header.kdf.memory_kib, committed.memory_kib);
    assert_eq!(header.kdf.iterations, committed.iterations);
    assert_eq!(header.kdf.parallelism, committed.parallelism);
    assert_eq!(hex::encode(header.salt), committed.salt);
    let mut input = &file[..];
    let (header, keys) = open_header(
        &mut input,
        file.len() as u64,
        &Passphrase::new(&committed.passphrase),
    )
    .unwrap();
    let mut payload = Vec::new();
    read_sealed(
        &header,
        &keys,
        &mut input,
        &mut |plain| {
            payload.extend_from_slice(plain);
            Ok(())
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(hex::encode(payload), committed.payload);
    let mut input = &file[..];
    assert!(matches!(
        open_header(&mut input, file.len() as u64, &Passphrase::new("wrong")),
        Err(BackupError::WrongPassphrase)
    ));
}

/// The header of a version-1 file (the committed vector before version 2 added the attachment
/// files to the payload): this build still parses it and its MAC still checks.
#[test]
fn a_version_1_header_still_opens() {
    const V1_HEADER: &str = "53504241434b55500001010000200000000001000000015a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a00000000000000666b7a677ede0de1d6ed698a365c1df956d6eaed0b0f588dbb702df38ceab9cf8f";
    let bytes: [u8; HEADER_LEN] = hex::decode(V1_HEADER).unwrap().try_into().unwrap();
    let header = Header::parse(&bytes).unwrap();
    assert_eq!(header.version, 1);
    assert_eq!(header.to_bytes(), bytes, "re-encoded as version 1");
    let mut file = bytes.to_vec();
    file.resize(header.file_len().unwrap() as usize, 0);
    let (opened, _) = open_header(
        &mut &file[..],
        file.len() as u64,
        &Passphrase::new("correct horse battery staple é"),
    )
    .unwrap();
    assert_eq!(opened.version, 1);
}
