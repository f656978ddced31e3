//! Attachment encryption (`docs/crypto.md` § Attachments): round trips at the chunk
//! boundaries and at 100 MiB, every tampering case refused with a typed error and nothing
//! returned, a wrong key refused by the commitment before any decryption, and the layout frozen
//! by `tests/frozen/attachment.json` (`docs/formats.md`).
//!
//! To record the vectors anew after a deliberate change (which needs a new label version):
//! `SEALPOST_WRITE_VECTORS=1 cargo test -p sealpost-crypto --test attachment`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use proptest::prelude::*;
use sealpost_crypto::attachment::{
    AttachmentError, AttachmentKey, CHUNK_CIPHERTEXT_BYTES, CHUNK_PLAINTEXT_BYTES, ChunkOpener,
    ChunkSealer, CiphertextDigest, DigestBuilder, KeyCommitment, open_attachment, seal_attachment,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use test_case::test_case;

/// A `size`-byte file: the byte at `i` is `7i mod 253` (one 253-byte period, repeated with
/// memcpy so that 100 MiB is quick to make in a debug build).
fn file(size: usize) -> Vec<u8> {
    let period: Vec<u8> = (0..253usize).map(|i| (i * 7 % 253) as u8).collect();
    let mut out = period.repeat(size / 253 + 1);
    out.truncate(size);
    out
}

fn round_trip(size: usize) {
    let key = AttachmentKey::generate().unwrap();
    let plain = file(size);
    let (chunks, digest) = seal_attachment(&key, &plain).unwrap();
    assert_eq!(chunks.len(), size.div_ceil(CHUNK_PLAINTEXT_BYTES).max(1));
    assert!(chunks.iter().all(|c| c.len() == CHUNK_CIPHERTEXT_BYTES));
    let opened = open_attachment(&key, &key.commitment(), size as u64, &digest, &chunks).unwrap();
    assert!(*opened == plain, "the file comes back byte for byte");
}

#[test_case(0 ; "empty")]
#[test_case(1 ; "one byte")]
#[test_case(65_535 ; "one short of a chunk")]
#[test_case(65_536 ; "exactly one chunk")]
#[test_case(65_537 ; "one past a chunk")]
fn round_trips_at_the_chunk_boundaries(size: usize) {
    round_trip(size);
}

#[test]
fn round_trips_100_mib() {
    round_trip(100 * 1024 * 1024);
}

/// Three chunks of a 150,000-byte file, with their key and digest.
fn three_chunks() -> (AttachmentKey, Vec<Vec<u8>>, CiphertextDigest) {
    let key = AttachmentKey::generate().unwrap();
    let (chunks, digest) = seal_attachment(&key, &file(150_000)).unwrap();
    assert_eq!(chunks.len(), 3);
    (key, chunks, digest)
}

fn open(
    key: &AttachmentKey,
    chunks: &[Vec<u8>],
    digest: &CiphertextDigest,
) -> Result<usize, AttachmentError> {
    open_attachment(key, &key.commitment(), 150_000, digest, chunks).map(|plain| plain.len())
}

#[test]
fn a_truncated_download_is_refused() {
    let (key, chunks, digest) = three_chunks();
    assert_eq!(
        open(&key, &chunks[..2], &digest),
        Err(AttachmentError::ChunkCount {
            expected: 3,
            found: 2
        })
    );
    // Chunk by chunk (a resumed download): chunk 1 offered as the last one fails its tag.
    let opener = ChunkOpener::new(&key, &key.commitment(), 100_000).unwrap();
    assert_eq!(
        opener.open_chunk(1, &chunks[1]).err(),
        Some(AttachmentError::ChunkRefused { index: 1 })
    );
}

#[test]
fn reordered_chunks_are_refused() {
    let (key, mut chunks, digest) = three_chunks();
    chunks.swap(0, 1);
    assert_eq!(
        open(&key, &chunks, &digest),
        Err(AttachmentError::DigestMismatch)
    );
    let opener = ChunkOpener::new(&key, &key.commitment(), 150_000).unwrap();
    assert_eq!(
        opener.open_chunk(0, &chunks[0]).err(),
        Some(AttachmentError::ChunkRefused { index: 0 })
    );
}

#[test]
fn a_duplicated_chunk_is_refused() {
    let (key, mut chunks, digest) = three_chunks();
    chunks[1] = chunks[0].clone();
    assert_eq!(
        open(&key, &chunks, &digest),
        Err(AttachmentError::DigestMismatch)
    );
    let opener = ChunkOpener::new(&key, &key.commitment(), 150_000).unwrap();
    assert_eq!(
        opener.open_chunk(1, &chunks[1]).err(),
        Some(AttachmentError::ChunkRefused { index: 1 })
    );
}

#[test]
fn a_flipped_bit_anywhere_is_refused() {
    let (key, chunks, digest) = three_chunks();
    for (chunk, byte) in [(0, 0), (1, 40_000), (2, CHUNK_CIPHERTEXT_BYTES - 1)] {
        let mut tampered = chunks.clone();
        tampered[chunk][byte] ^= 0x01;
        assert!(
            open(&key, &tampered, &digest).is_err(),
            "bit flip in chunk {chunk} byte {byte}"
        );
        let opener = ChunkOpener::new(&key, &key.commitment(), 150_000).unwrap();
        assert_eq!(
            opener.open_chunk(chunk as u32, &tampered[chunk]).err(),
            Some(AttachmentError::ChunkRefused {
                index: chunk as u32
            })
        );
    }
}

#[test]
fn a_wrong_key_is_refused_by_the_commitment_before_decrypting() {
    let (key, chunks, digest) = three_chunks();
    let other = AttachmentKey::generate().unwrap();
    assert_eq!(
        open_attachment(&other, &key.commitment(), 150_000, &digest, &chunks).err(),
        Some(AttachmentError::CommitmentMismatch)
    );
    assert_eq!(
        ChunkOpener::new(&other, &key.commitment(), 150_000).err(),
        Some(AttachmentError::CommitmentMismatch)
    );
    let forged = KeyCommitment([0; 32]);
    assert_eq!(
        ChunkOpener::new(&key, &forged, 150_000).err(),
        Some(AttachmentError::CommitmentMismatch)
    );
}

#[test]
fn a_wrong_digest_is_refused_before_anything_is_returned() {
    let (key, chunks, mut digest) = three_chunks();
    digest.0[0] ^= 1;
    assert_eq!(
        open(&key, &chunks, &digest),
        Err(AttachmentError::DigestMismatch)
    );
}

#[test]
fn an_upload_resumes_at_any_chunk() {
    // A sealer made again after a restart seals chunk 2 exactly as the first one did.
    let key = AttachmentKey::generate().unwrap();
    let plain = file(150_000);
    let (chunks, digest) = seal_attachment(&key, &plain).unwrap();
    let again = ChunkSealer::new(&AttachmentKey::from_bytes(*key.expose()), 150_000).unwrap();
    let start = 2 * CHUNK_PLAINTEXT_BYTES;
    assert_eq!(again.seal_chunk(2, &plain[start..]).unwrap(), chunks[2]);
    let mut builder = DigestBuilder::new(150_000).unwrap();
    for chunk in &chunks {
        builder.push(chunk).unwrap();
    }
    assert_eq!(builder.finish().unwrap(), digest);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn any_file_round_trips(plain in proptest::collection::vec(any::<u8>(), 0..200_000)) {
        let key = AttachmentKey::generate().unwrap();
        let (chunks, digest) = seal_attachment(&key, &plain).unwrap();
        let opened = open_attachment(&key, &key.commitment(), plain.len() as u64, &digest, &chunks).unwrap();
        prop_assert_eq!(&*opened, &plain);
    }
}

// ---- Frozen vectors -------------------------------------------------------------------------

/// One recorded file: its key and what the layout makes of it. Chunks are recorded by their
/// SHA-256 (a chunk is 64 KiB) plus the first 32 bytes in full.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Recorded {
    size: u64,
    key: String,
    commitment: String,
    digest: String,
    chunk_sha256: Vec<String>,
    first_chunk_prefix: String,
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/frozen/attachment.json")
}

fn record(size: u64, key_byte: u8) -> Recorded {
    let key = AttachmentKey::from_bytes([key_byte; 32]);
    let (chunks, digest) = seal_attachment(&key, &file(size as usize)).unwrap();
    Recorded {
        size,
        key: hex::encode(key.expose()),
        commitment: hex::encode(key.commitment().0),
        digest: hex::encode(digest.0),
        chunk_sha256: chunks
            .iter()
            .map(|chunk| hex::encode(Sha256::digest(chunk)))
            .collect(),
        first_chunk_prefix: hex::encode(&chunks[0][..32]),
    }
}

fn recorded_now() -> Vec<Recorded> {
    vec![record(0, 0x11), record(5, 0x22), record(70_000, 0x33)]
}

fn committed() -> Vec<Recorded> {
    if std::env::var_os("SEALPOST_WRITE_VECTORS").is_some() {
        let temporary = path().with_extension("json.tmp");
        let text = serde_json::to_string_pretty(&recorded_now()).unwrap();
        std::fs::write(&temporary, text + "\n").unwrap();
        std::fs::rename(&temporary, path()).unwrap();
    }
    serde_json::from_str(&std::fs::read_to_string(path()).expect("the vector file is committed"))
        .expect("the vector file parses")
}

#[test]
fn recorded_attachments_seal_and_open_byte_for_byte() {
    for recorded in committed() {
        let key =
            AttachmentKey::from_bytes(hex::decode(&recorded.key).unwrap().try_into().unwrap());
        assert_eq!(
            hex::encode(key.commitment().0),
            recorded.commitment,
            "the commitment of a {}-byte file",
            recorded.size
        );
        // Today's code seals the same bytes...
        let plain = file(recorded.size as usize);
        let (chunks, digest) = seal_attachment(&key, &plain).unwrap();
        assert_eq!(hex::encode(digest.0), recorded.digest);
        let hashes: Vec<String> = chunks
            .iter()
            .map(|chunk| hex::encode(Sha256::digest(chunk)))
            .collect();
        assert_eq!(hashes, recorded.chunk_sha256);
        assert_eq!(hex::encode(&chunks[0][..32]), recorded.first_chunk_prefix);
        // ...and opens them under the recorded commitment and digest.
        let commitment = KeyCommitment(
            hex::decode(&recorded.commitment)
                .unwrap()
                .try_into()
                .unwrap(),
        );
        let digest = CiphertextDigest(hex::decode(&recorded.digest).unwrap().try_into().unwrap());
        let opened = open_attachment(&key, &commitment, recorded.size, &digest, &chunks).unwrap();
        assert!(*opened == plain);
    }
}
