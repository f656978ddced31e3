//! Attachment encryption: a file is encrypted once, with its own random key, into fixed-size
//! chunks that can be uploaded, downloaded and checked one at a time, and resumed at any chunk.
//!
//! The construction (`docs/crypto.md` § Attachments gives the byte layout):
//!
//! - A random 32-byte [`AttachmentKey`] per file. From it, with HMAC-SHA256 under fixed labels,
//!   the chunk-encryption key and the [`KeyCommitment`]. The commitment travels in the pointer
//!   next to the key and is checked (in constant time) before any chunk is decrypted, so a
//!   pointer whose key does not match its commitment is refused: ChaCha20-Poly1305 alone is not
//!   key-committing.
//! - STREAM (Hoang, Reyhanitabar, Rogaway, Vizár, "Online Authenticated-Encryption and its
//!   Nonce-Reuse Misuse-Resistance", 2015) over ChaCha20-Poly1305, from the maintained
//!   `aead-stream` crate: nonce = 7 zero bytes ‖ 32-bit big-endian chunk index ‖ last-chunk flag.
//!   The key is used for one file only, so the fixed prefix never repeats under a key. A chunk
//!   moved, repeated, dropped from the end or flipped fails its tag.
//! - Every chunk holds exactly [`CHUNK_PLAINTEXT_BYTES`]; the last is padded with zero bytes,
//!   which the opener checks. The relay learns the size in whole chunks, not in bytes.
//! - A [`CiphertextDigest`] over the size and every chunk's tag, in order, names the exact
//!   ciphertext a pointer refers to; it is checked over the whole download before anything is
//!   shown. The tags are what is hashed (not every byte) so that encryption costs what the AEAD
//!   costs; under a committed key the tags authenticate the chunks. What this does and does not
//!   bind is in `docs/crypto.md` § Attachments.

use aead_stream::{NewStream, StreamBE32, StreamPrimitive};
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::KeyInit;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::primitives::{AEAD_TAG_LEN, hmac_sha256, random_bytes};

/// Plaintext bytes in every chunk (the last one is padded up to it).
pub const CHUNK_PLAINTEXT_BYTES: usize = 64 * 1024;
/// Bytes of every encrypted chunk: the plaintext chunk and its Poly1305 tag.
pub const CHUNK_CIPHERTEXT_BYTES: usize = CHUNK_PLAINTEXT_BYTES + AEAD_TAG_LEN;
/// The largest attachment this construction describes: the STREAM counter is 32 bits.
pub const MAX_ATTACHMENT_BYTES: u64 = (u32::MAX as u64) * (CHUNK_PLAINTEXT_BYTES as u64);

const ENCRYPTION_LABEL: &[u8] = b"sealpost attachment v1 encryption";
const COMMITMENT_LABEL: &[u8] = b"sealpost attachment v1 commitment";
const DIGEST_LABEL: &[u8] = b"sealpost attachment v1 digest";
/// The 7 bytes of nonce STREAM leaves to the caller: fixed, as every key encrypts one file.
const NONCE_PREFIX: [u8; 7] = [0; 7];

/// Why an attachment could not be sealed or opened. Nothing is returned on any of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentError {
    /// The key does not match the pointer's commitment: nothing was decrypted.
    #[error("the attachment key does not match its commitment")]
    CommitmentMismatch,
    /// A chunk failed authentication: tampered, moved, repeated, or not the last one where the
    /// last was expected (a truncated download).
    #[error("attachment chunk {index} failed authentication")]
    ChunkRefused {
        /// The chunk's position.
        index: u32,
    },
    /// A chunk has the wrong length for its position.
    #[error("attachment chunk {index} has the wrong length")]
    ChunkLength {
        /// The chunk's position.
        index: u32,
    },
    /// A chunk position at or past the attachment's chunk count.
    #[error("attachment chunk {index} is past the end")]
    ChunkOutOfRange {
        /// The chunk's position.
        index: u32,
    },
    /// The padding after the last chunk's data is not all zero bytes.
    #[error("the attachment's padding is not zero")]
    Padding,
    /// The download has a different number of chunks than the size implies.
    #[error("the attachment has {found} chunks, {expected} expected")]
    ChunkCount {
        /// Chunks the size implies.
        expected: u32,
        /// Chunks given.
        found: usize,
    },
    /// The chunks' digest is not the pointer's.
    #[error("the attachment's digest does not match")]
    DigestMismatch,
    /// The size is larger than [`MAX_ATTACHMENT_BYTES`].
    #[error("the attachment is too large")]
    TooLarge,
    /// The operating system's random generator failed.
    #[error("no randomness for the attachment key")]
    Randomness,
}

/// A file's own random key. Zeroized on drop, compared in constant time, never printed.
#[derive(Clone)]
pub struct AttachmentKey(Box<[u8; 32]>);

impl AttachmentKey {
    /// A fresh random key from the OS CSPRNG.
    pub fn generate() -> Result<Self, AttachmentError> {
        let mut key = Box::new([0u8; 32]);
        random_bytes(key.as_mut_slice()).map_err(|_| AttachmentError::Randomness)?;
        Ok(Self(key))
    }

    /// Wraps key bytes (from a pointer that arrived in a ratchet message).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Box::new(bytes))
    }

    /// The key bytes, to put in a pointer.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key's commitment, which travels in the pointer beside it.
    pub fn commitment(&self) -> KeyCommitment {
        let mac = hmac_sha256(&self.0, COMMITMENT_LABEL);
        KeyCommitment(mac.map(|secret| *secret.expose()).unwrap_or([0; 32]))
    }

    fn stream(&self) -> StreamBE32<ChaCha20Poly1305> {
        // HMAC accepts any key length: the error is unreachable and maps to an all-zero key,
        // which then fails every tag rather than panicking.
        let mut key = hmac_sha256(&self.0, ENCRYPTION_LABEL)
            .map(|secret| *secret.expose())
            .unwrap_or([0; 32]);
        let cipher = ChaCha20Poly1305::new(&key.into());
        key.zeroize();
        StreamBE32::from_aead(cipher, &NONCE_PREFIX.into())
    }
}

impl Drop for AttachmentKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ConstantTimeEq for AttachmentKey {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.ct_eq(&*other.0)
    }
}

/// HMAC-SHA256 of the key under a fixed label: binds a pointer to one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCommitment(pub [u8; 32]);

/// SHA-256 over the label, the size and every chunk's tag in order: names one exact ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CiphertextDigest(pub [u8; 32]);

/// How many chunks an attachment of `size` bytes has (at least one: an empty file is one chunk
/// of padding).
pub fn chunk_count(size: u64) -> Result<u32, AttachmentError> {
    if size > MAX_ATTACHMENT_BYTES {
        return Err(AttachmentError::TooLarge);
    }
    let chunk = CHUNK_PLAINTEXT_BYTES as u64;
    let count = size.div_ceil(chunk).max(1);
    u32::try_from(count).map_err(|_| AttachmentError::TooLarge)
}

/// Plaintext bytes of the file in chunk `index` of a file of `size` bytes.
fn data_bytes(size: u64, chunks: u32, index: u32) -> usize {
    if index + 1 < chunks {
        CHUNK_PLAINTEXT_BYTES
    } else {
        let before = u64::from(index) * CHUNK_PLAINTEXT_BYTES as u64;
        // At most one chunk: fits in usize.
        usize::try_from(size.saturating_sub(before)).unwrap_or(CHUNK_PLAINTEXT_BYTES)
    }
}

/// The stream cipher and chunk layout of one file, shared by [`ChunkSealer`] and
/// [`ChunkOpener`].
struct ChunkStream {
    stream: StreamBE32<ChaCha20Poly1305>,
    size: u64,
    chunks: u32,
}

impl ChunkStream {
    fn new(key: &AttachmentKey, size: u64) -> Result<Self, AttachmentError> {
        Ok(Self {
            stream: key.stream(),
            size,
            chunks: chunk_count(size)?,
        })
    }

    /// How many bytes of the file chunk `index` holds; refuses an index past the last chunk.
    fn data_bytes(&self, index: u32) -> Result<usize, AttachmentError> {
        if index >= self.chunks {
            return Err(AttachmentError::ChunkOutOfRange { index });
        }
        Ok(data_bytes(self.size, self.chunks, index))
    }

    /// Whether chunk `index` is the last (the stream's final-block flag).
    fn is_last(&self, index: u32) -> bool {
        index + 1 == self.chunks
    }
}

/// Encrypts the chunks of one file. Stateless per chunk, so an upload resumes at any chunk.
pub struct ChunkSealer {
    chunks: ChunkStream,
}

impl ChunkSealer {
    /// A sealer for a file of `size` bytes under `key`.
    pub fn new(key: &AttachmentKey, size: u64) -> Result<Self, AttachmentError> {
        Ok(Self {
            chunks: ChunkStream::new(key, size)?,
        })
    }

    /// The number of chunks.
    pub fn chunk_count(&self) -> u32 {
        self.chunks.chunks
    }

    /// How many bytes of the file chunk `index` holds (what [`Self::seal_chunk`] expects).
    pub fn data_bytes(&self, index: u32) -> Result<usize, AttachmentError> {
        self.chunks.data_bytes(index)
    }

    /// Encrypts chunk `index`: exactly [`Self::data_bytes`] of the file, padded to a whole
    /// chunk if it is the last. Returns [`CHUNK_CIPHERTEXT_BYTES`] bytes.
    pub fn seal_chunk(&self, index: u32, data: &[u8]) -> Result<Vec<u8>, AttachmentError> {
        if data.len() != self.data_bytes(index)? {
            return Err(AttachmentError::ChunkLength { index });
        }
        let mut buffer = Vec::with_capacity(CHUNK_CIPHERTEXT_BYTES);
        buffer.extend_from_slice(data);
        buffer.resize(CHUNK_PLAINTEXT_BYTES, 0);
        self.chunks
            .stream
            .encrypt_in_place(index, self.chunks.is_last(index), &[], &mut buffer)
            .map_err(|_| AttachmentError::ChunkRefused { index })?;
        Ok(buffer)
    }
}

/// Decrypts the chunks of one file, after checking the key against the pointer's commitment.
pub struct ChunkOpener {
    chunks: ChunkStream,
}

impl ChunkOpener {
    /// An opener for a file of `size` bytes, refused unless `key` matches `commitment`.
    pub fn new(
        key: &AttachmentKey,
        commitment: &KeyCommitment,
        size: u64,
    ) -> Result<Self, AttachmentError> {
        if !bool::from(key.commitment().0.ct_eq(&commitment.0)) {
            return Err(AttachmentError::CommitmentMismatch);
        }
        Ok(Self {
            chunks: ChunkStream::new(key, size)?,
        })
    }

    /// The number of chunks.
    pub fn chunk_count(&self) -> u32 {
        self.chunks.chunks
    }

    /// Decrypts chunk `index` and returns the file's bytes in it (padding checked and removed).
    pub fn open_chunk(
        &self,
        index: u32,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AttachmentError> {
        let data = self.chunks.data_bytes(index)?;
        if ciphertext.len() != CHUNK_CIPHERTEXT_BYTES {
            return Err(AttachmentError::ChunkLength { index });
        }
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        self.chunks
            .stream
            .decrypt_in_place(index, self.chunks.is_last(index), &[], &mut *buffer)
            .map_err(|_| AttachmentError::ChunkRefused { index })?;
        if buffer
            .get(data..)
            .is_some_and(|pad| pad.iter().any(|&b| b != 0))
        {
            return Err(AttachmentError::Padding);
        }
        buffer.truncate(data);
        Ok(buffer)
    }
}

/// Builds a [`CiphertextDigest`] chunk by chunk, in order.
pub struct DigestBuilder {
    hash: Sha256,
    chunks: u32,
    seen: u32,
}

impl DigestBuilder {
    /// A digest of a file of `size` bytes.
    pub fn new(size: u64) -> Result<Self, AttachmentError> {
        let mut hash = Sha256::new();
        hash.update(DIGEST_LABEL);
        hash.update(size.to_be_bytes());
        Ok(Self {
            hash,
            chunks: chunk_count(size)?,
            seen: 0,
        })
    }

    /// Adds the next encrypted chunk (only its tag is hashed).
    pub fn push(&mut self, ciphertext: &[u8]) -> Result<(), AttachmentError> {
        let index = self.seen;
        if index >= self.chunks {
            return Err(AttachmentError::ChunkOutOfRange { index });
        }
        let tag = match ciphertext.len().checked_sub(AEAD_TAG_LEN) {
            Some(start) if ciphertext.len() == CHUNK_CIPHERTEXT_BYTES => &ciphertext[start..],
            _ => return Err(AttachmentError::ChunkLength { index }),
        };
        self.hash.update(tag);
        self.seen += 1;
        Ok(())
    }

    /// The digest, once every chunk was pushed.
    pub fn finish(self) -> Result<CiphertextDigest, AttachmentError> {
        if self.seen != self.chunks {
            return Err(AttachmentError::ChunkCount {
                expected: self.chunks,
                found: self.seen as usize,
            });
        }
        Ok(CiphertextDigest(self.hash.finalize().into()))
    }
}

/// A whole file sealed in memory (small files, tests): the chunks and their digest.
pub fn seal_attachment(
    key: &AttachmentKey,
    file: &[u8],
) -> Result<(Vec<Vec<u8>>, CiphertextDigest), AttachmentError> {
    let size = file.len() as u64;
    let sealer = ChunkSealer::new(key, size)?;
    let mut digest = DigestBuilder::new(size)?;
    let mut chunks = Vec::with_capacity(sealer.chunk_count() as usize);
    let mut offset = 0usize;
    for index in 0..sealer.chunk_count() {
        let take = sealer.data_bytes(index)?;
        let data = file
            .get(offset..offset + take)
            .ok_or(AttachmentError::ChunkLength { index })?;
        let chunk = sealer.seal_chunk(index, data)?;
        digest.push(&chunk)?;
        chunks.push(chunk);
        offset += take;
    }
    Ok((chunks, digest.finish()?))
}

/// A whole file opened in memory: the commitment, the chunk count and the digest are checked
/// before any chunk is decrypted, and every chunk before anything is returned.
pub fn open_attachment(
    key: &AttachmentKey,
    commitment: &KeyCommitment,
    size: u64,
    digest: &CiphertextDigest,
    chunks: &[Vec<u8>],
) -> Result<Zeroizing<Vec<u8>>, AttachmentError> {
    let opener = ChunkOpener::new(key, commitment, size)?;
    if chunks.len() != opener.chunk_count() as usize {
        return Err(AttachmentError::ChunkCount {
            expected: opener.chunk_count(),
            found: chunks.len(),
        });
    }
    let mut builder = DigestBuilder::new(size)?;
    for chunk in chunks {
        builder.push(chunk)?;
    }
    if !bool::from(builder.finish()?.0.ct_eq(&digest.0)) {
        return Err(AttachmentError::DigestMismatch);
    }
    let mut file = Zeroizing::new(Vec::with_capacity(usize::try_from(size).unwrap_or(0)));
    for (index, chunk) in (0u32..).zip(chunks) {
        file.extend_from_slice(&opener.open_chunk(index, chunk)?);
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn chunk_counts_at_the_boundaries() {
        assert_eq!(chunk_count(0), Ok(1));
        assert_eq!(chunk_count(1), Ok(1));
        assert_eq!(chunk_count(65_535), Ok(1));
        assert_eq!(chunk_count(65_536), Ok(1));
        assert_eq!(chunk_count(65_537), Ok(2));
        assert_eq!(
            chunk_count(MAX_ATTACHMENT_BYTES + 1),
            Err(AttachmentError::TooLarge)
        );
    }

    #[test]
    fn a_chunk_of_the_wrong_length_is_refused_when_sealing() {
        let key = AttachmentKey::generate().unwrap();
        let sealer = ChunkSealer::new(&key, 70_000).unwrap();
        assert_eq!(
            sealer.seal_chunk(0, &file(10)),
            Err(AttachmentError::ChunkLength { index: 0 })
        );
        assert_eq!(
            sealer.seal_chunk(2, &file(10)),
            Err(AttachmentError::ChunkOutOfRange { index: 2 })
        );
    }

    #[test]
    fn non_zero_padding_is_refused() {
        // Seal a "file" of a whole chunk, then open it as a 10-byte file: the tag holds (same
        // key, same position, last flag), but the bytes after the 10th are not zero.
        let key = AttachmentKey::generate().unwrap();
        let (chunks, _) = seal_attachment(&key, &file(CHUNK_PLAINTEXT_BYTES)).unwrap();
        let opener = ChunkOpener::new(&key, &key.commitment(), 10).unwrap();
        assert_eq!(
            opener.open_chunk(0, &chunks[0]).err(),
            Some(AttachmentError::Padding)
        );
    }
}
