//! The blob commands of one connection (`docs/relay-protocol.md` § Blobs): BLOB-CREATE,
//! BLOB-PUT, BLOB-STATUS, BLOB-GET and BLOB-DELETE. A BLOB-GET one past the last chunk is the
//! recipient's release of its grant; the last release deletes the blob (§ 13.3).
//!
//! Secrets are bearer secrets chosen by the uploader; the relay keeps only their hashes and
//! compares in constant time. An unknown id is compared against an impossible hash, so it costs
//! the same work and gets the same answer (`BlobGone`) as a wrong secret. A download row names
//! its blob only sealed: the blob's row key XOR a pad derived from the download secret, which
//! the relay does not keep.

use std::num::NonZeroU32;
use std::sync::Arc;

use sealpost_wire::{
    BLOB_CHUNK_BYTES, BlobDownloadAuth, BlobUploadAuth, BlobUploadId, ErrorCode, Request, Response,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Connection, Stop, error, reply};
use crate::blob_secret_hash;
use crate::metrics::Refusal;
use crate::store::{
    BlobCreateOutcome, BlobRef, BlobUploadRow, ChunkFetch, NewBlob, NewBlobDownload, PutOutcome,
    ReleaseOutcome,
};
use crate::unix_now;

/// Context of the stored upload-secret hash.
const UPLOAD_AUTH_CONTEXT: &[u8] = b"sealpost/v1/relay/blob-upload-auth";
/// Context of the stored download-secret hash.
const DOWNLOAD_AUTH_CONTEXT: &[u8] = b"sealpost/v1/relay/blob-download-auth";
/// Context of the pad that seals a download row's blob reference.
const BLOB_REF_CONTEXT: &[u8] = b"sealpost/v1/relay/blob-ref";

fn upload_auth_hash(auth: &BlobUploadAuth) -> [u8; 32] {
    blob_secret_hash(UPLOAD_AUTH_CONTEXT, auth.expose())
}

fn download_auth_hash(auth: &BlobDownloadAuth) -> [u8; 32] {
    blob_secret_hash(DOWNLOAD_AUTH_CONTEXT, auth.expose())
}

/// The first 8 bytes of `SHA-256(lp(context) ‖ lp(download secret))`: XORed with the blob's
/// row key (big-endian) it seals and unseals a download row's reference.
fn ref_pad(auth: &BlobDownloadAuth) -> [u8; 8] {
    let digest = blob_secret_hash(BLOB_REF_CONTEXT, auth.expose());
    let mut pad = [0u8; 8];
    pad.copy_from_slice(&digest[..8]);
    pad
}

fn seal_ref(blob_ref: BlobRef, auth: &BlobDownloadAuth) -> [u8; 8] {
    let pad = ref_pad(auth);
    let mut sealed = blob_ref.0.to_be_bytes();
    for (byte, key) in sealed.iter_mut().zip(pad) {
        *byte ^= key;
    }
    sealed
}

fn unseal_ref(sealed: [u8; 8], auth: &BlobDownloadAuth) -> BlobRef {
    let pad = ref_pad(auth);
    let mut bytes = sealed;
    for (byte, key) in bytes.iter_mut().zip(pad) {
        *byte ^= key;
    }
    BlobRef(u64::from_be_bytes(bytes))
}

/// A random blob row key: positive 63 bits.
fn random_blob_ref() -> Option<BlobRef> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).ok()?;
    Some(BlobRef((u64::from_le_bytes(bytes) >> 1).max(1)))
}

impl Connection {
    /// The blob of `upload_id` if `auth` is its upload secret; the refusal is the code to
    /// answer with (`BlobGone` for unknown and wrong alike, `Internal` on a storage failure).
    async fn authorize_upload(
        &mut self,
        upload_id: BlobUploadId,
        auth: &BlobUploadAuth,
    ) -> Result<BlobUploadRow, ErrorCode> {
        let row = self
            .shared
            .store
            .blob_upload(upload_id)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "blob lookup failed");
                ErrorCode::Internal
            })?;
        let presented = upload_auth_hash(auth);
        let expected = row.as_ref().map_or([0xff; 32], |row| row.upload_auth_hash);
        let matches = bool::from(presented.ct_eq(&expected));
        row.filter(|_| matches).ok_or(ErrorCode::BlobGone)
    }

    /// Whether BLOB-CREATE may go on: the relay password when one is configured.
    fn blob_password_ok(&self, password: Option<&str>) -> bool {
        let Some(expected) = &self.shared.password_hash else {
            return true;
        };
        let presented: [u8; 32] = match password {
            Some(password) => Sha256::digest(password.as_bytes()).into(),
            None => [0u8; 32],
        };
        bool::from(presented.ct_eq(expected)) && password.is_some()
    }

    pub(super) async fn on_blob_request(&mut self, id: u64, request: Request) -> Result<(), Stop> {
        match request {
            Request::BlobCreate {
                upload_id,
                upload_auth,
                chunk_count,
                downloads,
                password,
            } => {
                if !self.blob_password_ok(password.as_deref()) {
                    return self.send(id, error(ErrorCode::Password));
                }
                if chunk_count == 0 || downloads.is_empty() {
                    return self.send(id, error(ErrorCode::Malformed));
                }
                if downloads.len() > self.shared.limits.blob_max_downloads {
                    return self.send(id, error(ErrorCode::LimitExceeded));
                }
                let bytes = u64::from(chunk_count) * BLOB_CHUNK_BYTES as u64;
                if bytes > self.shared.limits.blob_max_bytes {
                    self.shared.metrics.refused(Refusal::TooLarge);
                    return self.send(id, error(ErrorCode::TooLarge));
                }
                let upload_auth_hash = upload_auth_hash(&upload_auth);
                let existing = match self.shared.store.blob_upload(upload_id).await {
                    Ok(existing) => existing,
                    Err(store_error) => {
                        tracing::warn!(%store_error, "blob lookup failed");
                        return self.send(id, error(ErrorCode::Internal));
                    }
                };
                if let Some(existing) = existing {
                    // A retry of the same BLOB-CREATE is answered like the first (and charged
                    // once); any other use of the id is refused.
                    let same = bool::from(existing.upload_auth_hash.ct_eq(&upload_auth_hash))
                        && existing.chunk_count == chunk_count;
                    let body = if same {
                        Response::Ok {}
                    } else {
                        error(ErrorCode::IdInUse)
                    };
                    return self.send(id, body);
                }
                let declared = self.blob_bytes.saturating_add(bytes);
                if declared > self.shared.limits.blob_quota_per_connection_bytes {
                    return self.send(id, error(ErrorCode::QuotaExceeded));
                }
                let chunks = NonZeroU32::new(chunk_count).unwrap_or(NonZeroU32::MIN);
                if !matches!(
                    self.shared.blob_ip_limiter.check_key_n(&self.ip, chunks),
                    Ok(Ok(()))
                ) {
                    return self.send(id, error(ErrorCode::QuotaExceeded));
                }
                self.blob_bytes = declared;
                let Some(blob_ref) = random_blob_ref() else {
                    return self.send(id, error(ErrorCode::Internal));
                };
                let downloads = downloads
                    .iter()
                    .map(|download| NewBlobDownload {
                        download_id: download.download_id,
                        auth_hash: download_auth_hash(&download.download_auth),
                        sealed_ref: seal_ref(blob_ref, &download.download_auth),
                    })
                    .collect();
                let blob = NewBlob {
                    blob_ref,
                    upload_id,
                    upload_auth_hash,
                    chunk_count,
                    downloads,
                    now: unix_now(),
                };
                let created = self.shared.store.create_blob(blob);
                self.pending.push(Box::pin(async move {
                    match created.await {
                        Ok(BlobCreateOutcome::Created | BlobCreateOutcome::AlreadyExists) => {
                            reply(id, Response::Ok {})
                        }
                        Ok(BlobCreateOutcome::IdInUse) => reply(id, error(ErrorCode::IdInUse)),
                        Err(store_error) => {
                            tracing::warn!(%store_error, "blob create failed");
                            reply(id, error(ErrorCode::Internal))
                        }
                    }
                }));
                Ok(())
            }
            Request::BlobPut {
                upload_id,
                upload_auth,
                index,
                chunk,
            } => {
                if chunk.len() != BLOB_CHUNK_BYTES {
                    return self.send(id, error(ErrorCode::ChunkSize));
                }
                let blob = match self.authorize_upload(upload_id, &upload_auth).await {
                    Ok(blob) => blob,
                    Err(code) => return self.send(id, error(code)),
                };
                if index >= blob.chunk_count {
                    return self.send(id, error(ErrorCode::ChunkIndex));
                }
                // Queued now (before the next frame is read), so a connection's puts are
                // applied in the order they arrived.
                let stored = self
                    .shared
                    .store
                    .put_blob_chunk(upload_id, index, Arc::from(chunk));
                self.pending.push(Box::pin(async move {
                    let body = match stored.await {
                        Ok(PutOutcome::Stored | PutOutcome::AlreadyStored) => Response::Ok {},
                        Ok(PutOutcome::OutOfOrder) => error(ErrorCode::OutOfOrder),
                        Ok(PutOutcome::IndexOutOfRange) => error(ErrorCode::ChunkIndex),
                        Ok(PutOutcome::Gone) => error(ErrorCode::BlobGone),
                        Err(store_error) => {
                            tracing::warn!(%store_error, "blob put failed");
                            error(ErrorCode::Internal)
                        }
                    };
                    reply(id, body)
                }));
                Ok(())
            }
            Request::BlobStatus {
                upload_id,
                upload_auth,
            } => match self.authorize_upload(upload_id, &upload_auth).await {
                Ok(blob) => self.send(
                    id,
                    Response::BlobState {
                        chunk_count: blob.chunk_count,
                        stored: blob.stored,
                    },
                ),
                Err(code) => self.send(id, error(code)),
            },
            Request::BlobGet {
                download_id,
                download_auth,
                index,
            } => {
                let row = match self.shared.store.blob_download(download_id).await {
                    Ok(row) => row,
                    Err(store_error) => {
                        tracing::warn!(%store_error, "blob download lookup failed");
                        return self.send(id, error(ErrorCode::Internal));
                    }
                };
                let presented = download_auth_hash(&download_auth);
                let expected = row.as_ref().map_or([0xff; 32], |row| row.auth_hash);
                let matches = bool::from(presented.ct_eq(&expected));
                let Some(row) = row.filter(|_| matches) else {
                    return self.send(id, error(ErrorCode::BlobGone));
                };
                let blob_ref = unseal_ref(row.sealed_ref, &download_auth);
                let fetched = self.shared.store.blob_chunk(blob_ref, index);
                let store = self.shared.store.clone();
                self.pending.push(Box::pin(async move {
                    let body = match fetched.await {
                        Ok(ChunkFetch::Chunk(chunk)) => Response::BlobChunk { index, chunk },
                        Ok(ChunkFetch::Missing) => error(ErrorCode::ChunkMissing),
                        // One past the last chunk: the recipient has every chunk and releases
                        // its grant (§ 13.3); any other index past the end is an error.
                        Ok(ChunkFetch::IndexOutOfRange) => {
                            match store
                                .release_blob_download(download_id, blob_ref, index)
                                .await
                            {
                                Ok(ReleaseOutcome::Released | ReleaseOutcome::BlobDeleted) => {
                                    Response::Ok {}
                                }
                                // Before the upload is complete the index is past the end,
                                // as it always was.
                                Ok(
                                    ReleaseOutcome::IndexOutOfRange | ReleaseOutcome::Incomplete,
                                ) => error(ErrorCode::ChunkIndex),
                                Ok(ReleaseOutcome::Gone) => error(ErrorCode::BlobGone),
                                Err(store_error) => {
                                    tracing::warn!(%store_error, "blob release failed");
                                    error(ErrorCode::Internal)
                                }
                            }
                        }
                        Ok(ChunkFetch::Gone) => error(ErrorCode::BlobGone),
                        Err(store_error) => {
                            tracing::warn!(%store_error, "blob chunk read failed");
                            error(ErrorCode::Internal)
                        }
                    };
                    reply(id, body)
                }));
                Ok(())
            }
            Request::BlobDelete {
                upload_id,
                upload_auth,
            } => {
                if let Err(code) = self.authorize_upload(upload_id, &upload_auth).await {
                    // Already gone (or never there) and a wrong secret look the same.
                    return self.send(id, error(code));
                }
                let deleted = self.shared.store.delete_blob(upload_id);
                self.pending.push(Box::pin(async move {
                    match deleted.await {
                        Ok(()) => reply(id, Response::Ok {}),
                        Err(store_error) => {
                            tracing::warn!(%store_error, "blob delete failed");
                            reply(id, error(ErrorCode::Internal))
                        }
                    }
                }));
                Ok(())
            }
            // Only blob commands are routed here.
            _ => self.send(id, error(ErrorCode::Malformed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_reference_opens_only_with_its_own_download_secret() {
        let blob_ref = BlobRef(0x0123_4567_89ab_cdef);
        let mine = BlobDownloadAuth::new([1; 32]);
        let theirs = BlobDownloadAuth::new([2; 32]);
        let sealed = seal_ref(blob_ref, &mine);
        assert_ne!(sealed, blob_ref.0.to_be_bytes());
        assert_eq!(unseal_ref(sealed, &mine), blob_ref);
        assert_ne!(unseal_ref(sealed, &theirs), blob_ref);
        // Two recipients of one blob store unrelated bytes.
        assert_ne!(seal_ref(blob_ref, &theirs), sealed);
    }
}
