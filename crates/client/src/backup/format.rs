//! The backup file's bytes: the header (frozen by `docs/formats.md`), the key schedule from the
//! passphrase, and the body sealed in STREAM chunks (`docs/backup.md` § File layout).
//!
//! ```text
//! offset size  field
//!  0      8    magic "SPBACKUP"
//!  8      2    format version, u16 big-endian (2; 1 is still read)
//! 10      1    KDF id (1 = Argon2id, version 0x13)
//! 11      4    Argon2id memory cost in KiB, u32 BE
//! 15      4    Argon2id time cost (passes), u32 BE
//! 19      4    Argon2id parallelism (lanes), u32 BE
//! 23     16    salt (random per backup)
//! 39      8    payload length in bytes, u64 BE
//! 47     32    header MAC: HMAC-SHA256(header key, bytes 0..47)
//! 79      …    the payload in STREAM chunks of `CHUNK_CIPHERTEXT_BYTES` each
//! ```
//!
//! Key schedule: `master = Argon2id(NFC(passphrase), salt, m, t, p)` (32 bytes); the header key
//! is `HMAC-SHA256(master, "sealpost backup v1 header")` and the body key
//! `HMAC-SHA256(master, "sealpost backup v1 body")`, used as the key of the attachment STREAM
//! construction of `sealpost_crypto::attachment` (ChaCha20-Poly1305, 64 KiB chunks, a last-chunk
//! flag in the nonce). Every backup has a fresh salt, so every body key seals one file only.
//!
//! Reading checks, in this order, and stops at the first failure with its typed error: the magic
//! and version, the KDF parameters against [`KdfParams::check`] (before any memory is spent), the
//! file length against the payload length (truncation or trailing bytes), the header MAC (a wrong
//! passphrase, or a header that was changed), then every chunk's tag.

use std::io::{Read, Write};

use sealpost_crypto::attachment::{
    AttachmentKey, CHUNK_CIPHERTEXT_BYTES, CHUNK_PLAINTEXT_BYTES, ChunkOpener, ChunkSealer,
    chunk_count,
};
use sealpost_crypto::primitives::hmac_sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::BackupError;
use super::passphrase::Passphrase;

/// The first eight bytes of every backup file.
pub const MAGIC: &[u8; 8] = b"SPBACKUP";
/// The format version this build writes. Version 2 added the attachment files after the
/// snapshot (`docs/backup.md` § Payload); the header layout is the same in both.
pub const FORMAT_VERSION: u16 = 2;
/// The oldest format version this build still reads (its payload has no attachment files).
pub const OLDEST_READ_VERSION: u16 = 1;
/// KDF id 1: Argon2id, version 0x13 (RFC 9106).
pub const KDF_ARGON2ID: u8 = 1;
/// Bytes of the salt.
pub const SALT_LEN: usize = 16;
/// Bytes of the header before its MAC.
pub const HEADER_BODY_LEN: usize = 8 + 2 + 1 + 4 + 4 + 4 + SALT_LEN + 8;
/// Bytes of the whole header, MAC included.
pub const HEADER_LEN: usize = HEADER_BODY_LEN + 32;

const HEADER_LABEL: &[u8] = b"sealpost backup v1 header";
const BODY_LABEL: &[u8] = b"sealpost backup v1 body";

/// Argon2id's cost parameters as the header carries them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// What this build writes: 64 MiB, 3 passes, 1 lane (RFC 9106's second recommended option,
    /// at about a second on a laptop core).
    pub const DEFAULT: Self = Self {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };
    /// The least memory accepted: 8 MiB. Less would make guessing the passphrase cheap.
    pub const MIN_MEMORY_KIB: u32 = 8 * 1024;
    /// The most memory accepted: 1 GiB. More would let a file exhaust the restoring machine.
    pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
    /// The most passes accepted (a file must not make a restore take hours).
    pub const MAX_ITERATIONS: u32 = 16;
    /// The most lanes accepted.
    pub const MAX_PARALLELISM: u32 = 16;

    /// Refuses parameters outside the bounds above, before anything is derived with them.
    pub fn check(&self) -> Result<(), BackupError> {
        let memory = (Self::MIN_MEMORY_KIB..=Self::MAX_MEMORY_KIB).contains(&self.memory_kib);
        let iterations = (1..=Self::MAX_ITERATIONS).contains(&self.iterations);
        let parallelism = (1..=Self::MAX_PARALLELISM).contains(&self.parallelism);
        // Argon2 needs at least 8 KiB of memory per lane.
        let per_lane = u64::from(self.memory_kib) >= 8 * u64::from(self.parallelism);
        if memory && iterations && parallelism && per_lane {
            Ok(())
        } else {
            Err(BackupError::KdfParamsRefused {
                memory_kib: self.memory_kib,
                iterations: self.iterations,
                parallelism: self.parallelism,
            })
        }
    }
}

/// A parsed header (its MAC not checked yet: that needs the passphrase).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The format version (decides the payload layout, `docs/backup.md` § Payload).
    pub version: u16,
    /// The KDF parameters.
    pub kdf: KdfParams,
    /// The salt.
    pub salt: [u8; SALT_LEN],
    /// Payload length in bytes.
    pub payload_len: u64,
    /// The MAC over the header's first [`HEADER_BODY_LEN`] bytes.
    pub mac: [u8; 32],
}

impl Header {
    /// The first [`HEADER_BODY_LEN`] bytes.
    pub fn body_bytes(&self) -> [u8; HEADER_BODY_LEN] {
        let mut out = [0u8; HEADER_BODY_LEN];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            if let Some(slot) = out.get_mut(at..at + bytes.len()) {
                slot.copy_from_slice(bytes);
            }
            at += bytes.len();
        };
        put(MAGIC);
        put(&self.version.to_be_bytes());
        put(&[KDF_ARGON2ID]);
        put(&self.kdf.memory_kib.to_be_bytes());
        put(&self.kdf.iterations.to_be_bytes());
        put(&self.kdf.parallelism.to_be_bytes());
        put(&self.salt);
        put(&self.payload_len.to_be_bytes());
        out
    }

    /// The whole header, MAC included.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..HEADER_BODY_LEN].copy_from_slice(&self.body_bytes());
        out[HEADER_BODY_LEN..].copy_from_slice(&self.mac);
        out
    }

    /// Parses a header: magic, version and KDF id must be known, and the KDF parameters within
    /// bounds ([`KdfParams::check`]).
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<Self, BackupError> {
        if &bytes[..8] != MAGIC {
            return Err(BackupError::NotABackup);
        }
        let version = u16::from_be_bytes([bytes[8], bytes[9]]);
        if !(OLDEST_READ_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(BackupError::UnsupportedVersion { version });
        }
        if bytes[10] != KDF_ARGON2ID {
            return Err(BackupError::UnsupportedKdf { kdf: bytes[10] });
        }
        let u32_at = |at: usize| {
            let mut word = [0u8; 4];
            word.copy_from_slice(&bytes[at..at + 4]);
            u32::from_be_bytes(word)
        };
        let kdf = KdfParams {
            memory_kib: u32_at(11),
            iterations: u32_at(15),
            parallelism: u32_at(19),
        };
        kdf.check()?;
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&bytes[23..23 + SALT_LEN]);
        let mut length = [0u8; 8];
        length.copy_from_slice(&bytes[39..47]);
        let mut mac = [0u8; 32];
        mac.copy_from_slice(&bytes[HEADER_BODY_LEN..]);
        Ok(Self {
            version,
            kdf,
            salt,
            payload_len: u64::from_be_bytes(length),
            mac,
        })
    }

    /// Bytes of the whole file this header describes.
    pub fn file_len(&self) -> Result<u64, BackupError> {
        let chunks = chunk_count(self.payload_len).map_err(|_| BackupError::Damaged)?;
        Ok(HEADER_LEN as u64 + u64::from(chunks) * CHUNK_CIPHERTEXT_BYTES as u64)
    }
}

/// The two keys derived from the passphrase.
pub struct BackupKeys {
    header: Zeroizing<[u8; 32]>,
    body: AttachmentKey,
}

impl BackupKeys {
    /// Argon2id over the passphrase, then the header and body keys. Checks the parameters
    /// first (a caller cannot derive with absurd ones).
    pub fn derive(
        passphrase: &Passphrase,
        kdf: &KdfParams,
        salt: &[u8; SALT_LEN],
    ) -> Result<Self, BackupError> {
        kdf.check()?;
        let params = argon2::Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(32))
            .map_err(|_| BackupError::KdfParamsRefused {
                memory_kib: kdf.memory_kib,
                iterations: kdf.iterations,
                parallelism: kdf.parallelism,
            })?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut master = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(passphrase.as_bytes(), salt, master.as_mut())
            .map_err(|_| BackupError::KdfFailed)?;
        let header = hmac_sha256(&master, HEADER_LABEL).map_err(|_| BackupError::KdfFailed)?;
        let body = hmac_sha256(&master, BODY_LABEL).map_err(|_| BackupError::KdfFailed)?;
        Ok(Self {
            header: Zeroizing::new(*header.expose()),
            body: AttachmentKey::from_bytes(*body.expose()),
        })
    }

    /// The header MAC for `header_body`.
    pub fn header_mac(&self, header_body: &[u8]) -> Result<[u8; 32], BackupError> {
        let mac = hmac_sha256(&self.header, header_body).map_err(|_| BackupError::KdfFailed)?;
        Ok(*mac.expose())
    }
}

/// A header for a new backup of `payload_len` bytes (fresh salt), with its MAC under `keys`.
pub fn new_header(
    passphrase: &Passphrase,
    kdf: KdfParams,
    payload_len: u64,
) -> Result<(Header, BackupKeys), BackupError> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|_| BackupError::Randomness)?;
    header_with_salt(passphrase, kdf, salt, payload_len)
}

/// [`new_header`] with a given salt (the committed vector uses a fixed one).
pub fn header_with_salt(
    passphrase: &Passphrase,
    kdf: KdfParams,
    salt: [u8; SALT_LEN],
    payload_len: u64,
) -> Result<(Header, BackupKeys), BackupError> {
    let keys = BackupKeys::derive(passphrase, &kdf, &salt)?;
    let mut header = Header {
        version: FORMAT_VERSION,
        kdf,
        salt,
        payload_len,
        mac: [0; 32],
    };
    header.mac = keys.header_mac(&header.body_bytes())?;
    Ok((header, keys))
}

/// Writes the header, then the payload read from `payload` (exactly `header.payload_len` bytes)
/// in sealed chunks. `progress(done, total)` is called after every chunk.
pub fn write_sealed(
    header: &Header,
    keys: &BackupKeys,
    payload: &mut impl Read,
    out: &mut impl Write,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), BackupError> {
    let sealer =
        ChunkSealer::new(&keys.body, header.payload_len).map_err(|_| BackupError::Damaged)?;
    out.write_all(&header.to_bytes())?;
    let mut buffer = Zeroizing::new(vec![0u8; CHUNK_PLAINTEXT_BYTES]);
    let mut done = 0u64;
    for index in 0..sealer.chunk_count() {
        let want = sealer.data_bytes(index).map_err(|_| BackupError::Damaged)?;
        let slice = buffer.get_mut(..want).ok_or(BackupError::Damaged)?;
        payload.read_exact(slice)?;
        let sealed = sealer
            .seal_chunk(index, slice)
            .map_err(|_| BackupError::Damaged)?;
        out.write_all(&sealed)?;
        done += want as u64;
        progress(done, header.payload_len);
    }
    Ok(())
}

/// Reads and checks the header of `input`, whose total length is `file_len`: everything up to
/// and including the MAC (so a wrong passphrase is found before any chunk is read).
pub fn open_header(
    input: &mut impl Read,
    file_len: u64,
    passphrase: &Passphrase,
) -> Result<(Header, BackupKeys), BackupError> {
    let mut bytes = [0u8; HEADER_LEN];
    if file_len < HEADER_LEN as u64 {
        return Err(BackupError::Truncated);
    }
    input.read_exact(&mut bytes)?;
    let header = Header::parse(&bytes)?;
    let expected = header.file_len()?;
    if file_len < expected {
        return Err(BackupError::Truncated);
    }
    if file_len > expected {
        return Err(BackupError::Damaged);
    }
    let keys = BackupKeys::derive(passphrase, &header.kdf, &header.salt)?;
    let mac = keys.header_mac(&bytes[..HEADER_BODY_LEN])?;
    if !bool::from(mac.ct_eq(&header.mac)) {
        return Err(BackupError::WrongPassphrase);
    }
    Ok((header, keys))
}

/// Opens every chunk after the header, in order, handing the plaintext to `sink`. A chunk that
/// fails its tag is [`BackupError::Damaged`]; nothing after it is read.
pub fn read_sealed(
    header: &Header,
    keys: &BackupKeys,
    input: &mut impl Read,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), BackupError>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), BackupError> {
    // A stand-in commitment: the header MAC already proved the key (`open_header`).
    let commitment = keys.body.commitment();
    let opener = ChunkOpener::new(&keys.body, &commitment, header.payload_len)
        .map_err(|_| BackupError::Damaged)?;
    let mut buffer = vec![0u8; CHUNK_CIPHERTEXT_BYTES];
    let mut done = 0u64;
    for index in 0..opener.chunk_count() {
        input.read_exact(&mut buffer).map_err(|error| {
            if error.kind() == std::io::ErrorKind::UnexpectedEof {
                BackupError::Truncated
            } else {
                BackupError::Io(error)
            }
        })?;
        let plain = opener
            .open_chunk(index, &buffer)
            .map_err(|_| BackupError::Damaged)?;
        sink(&plain)?;
        done += plain.len() as u64;
        progress(done, header.payload_len);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weak_fast() -> KdfParams {
        KdfParams {
            memory_kib: KdfParams::MIN_MEMORY_KIB,
            iterations: 1,
            parallelism: 1,
        }
    }

    fn sealed(payload: &[u8], passphrase: &str) -> Vec<u8> {
        let passphrase = Passphrase::new(passphrase);
        let (header, keys) = new_header(&passphrase, weak_fast(), payload.len() as u64).unwrap();
        let mut out = Vec::new();
        write_sealed(&header, &keys, &mut &payload[..], &mut out, &mut |_, _| {}).unwrap();
        out
    }

    fn opened(file: &[u8], passphrase: &str) -> Result<Vec<u8>, BackupError> {
        let passphrase = Passphrase::new(passphrase);
        let mut input = file;
        let (header, keys) = open_header(&mut input, file.len() as u64, &passphrase)?;
        let mut out = Vec::new();
        read_sealed(
            &header,
            &keys,
            &mut input,
            &mut |plain| {
                out.extend_from_slice(plain);
                Ok(())
            },
            &mut |_, _| {},
        )?;
        Ok(out)
    }

    #[test]
    fn round_trips_and_refuses_tampering() {
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let file = sealed(&payload, "correct horse");
        assert_eq!(opened(&file, "correct horse").unwrap(), payload);
        assert!(matches!(
            opened(&file, "wrong horse"),
            Err(BackupError::WrongPassphrase)
        ));
        let mut flipped = file.clone();
        let last = flipped.len() - 1;
        flipped[HEADER_LEN + 10] ^= 1;
        assert!(matches!(
            opened(&flipped, "correct horse"),
            Err(BackupError::Damaged)
        ));
        let mut flipped = file.clone();
        flipped[last] ^= 0x80;
        assert!(matches!(
            opened(&flipped, "correct horse"),
            Err(BackupError::Damaged)
        ));
        let truncated = &file[..file.len() - CHUNK_CIPHERTEXT_BYTES];
        assert!(matches!(
            opened(truncated, "correct horse"),
            Err(BackupError::Truncated)
        ));
        assert!(matches!(
            opened(&file[..40], "correct horse"),
            Err(BackupError::Truncated)
        ));
        // Two chunks swapped: both fail their tag at their new position.
        let mut swapped = file.clone();
        let (a, b) = (HEADER_LEN, HEADER_LEN + CHUNK_CIPHERTEXT_BYTES);
        let first = swapped[a..b].to_vec();
        let second = swapped[b..b + CHUNK_CIPHERTEXT_BYTES].to_vec();
        swapped[a..b].copy_from_slice(&second);
        swapped[b..b + CHUNK_CIPHERTEXT_BYTES].copy_from_slice(&first);
        assert!(matches!(
            opened(&swapped, "correct horse"),
            Err(BackupError::Damaged)
        ));
        // A flipped bit in the length field: refused by the MAC or the length check.
        let mut length = file.clone();
        length[46] ^= 1;
        assert!(opened(&length, "correct horse").is_err());
    }

    #[test]
    fn every_header_bit_flip_is_refused() {
        let file = sealed(b"small", "pass phrase");
        for byte in 0..HEADER_LEN {
            let mut flipped = file.clone();
            flipped[byte] ^= 0x01;
            assert!(opened(&flipped, "pass phrase").is_err(), "byte {byte}");
        }
    }

    #[test]
    fn absurd_kdf_parameters_are_refused_before_deriving() {
        for (memory_kib, iterations, parallelism) in [
            (u32::MAX, 3, 1),
            (KdfParams::MAX_MEMORY_KIB + 1, 3, 1),
            (KdfParams::MIN_MEMORY_KIB - 1, 3, 1),
            (65536, 0, 1),
            (65536, u32::MAX, 1),
            (65536, 3, 0),
            (65536, 3, 0xFF_FFFF),
        ] {
            let kdf = KdfParams {
                memory_kib,
                iterations,
                parallelism,
            };
            assert!(matches!(
                kdf.check(),
                Err(BackupError::KdfParamsRefused { .. })
            ));
            let mut header = Header {
                version: FORMAT_VERSION,
                kdf,
                salt: [7; SALT_LEN],
                payload_len: 5,
                mac: [0; 32],
            }
            .to_bytes();
            // parse() refuses it before any key is derived.
            assert!(matches!(
                Header::parse(&header),
                Err(BackupError::KdfParamsRefused { .. })
            ));
            header[0] = b'X';
            assert!(matches!(
                Header::parse(&header),
                Err(BackupError::NotABackup)
            ));
        }
        assert!(KdfParams::DEFAULT.check().is_ok());
    }
}
