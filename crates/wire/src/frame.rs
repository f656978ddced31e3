//! Frames: what travels in one binary WebSocket message, in either direction.
//!
//! A frame is a CBOR map `{"v": version, "id": correlation id, "body": {VARIANT: {fields}}}`.
//! Clients send [`ClientFrame`]s carrying a [`Request`]; the relay sends [`RelayFrame`]s carrying
//! a [`Response`]. A reply repeats the request's correlation id; frames the relay pushes unasked
//! use [`crate::PUSH_CORRELATION_ID`] (0).

use serde::{Deserialize, Serialize};

use crate::ids::{
    AuthPublicKey, BlobDownload, BlobDownloadAuth, BlobDownloadId, BlobUploadAuth, BlobUploadId,
    MessageId, Nonce, ReceiveId, SendId, SendSecret, SignatureBytes,
};

/// A frame sent by a client to the relay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientFrame {
    /// Protocol version; must be [`crate::PROTOCOL_VERSION`].
    pub v: u16,
    /// Correlation id chosen by the client; the reply carries the same value. Use non-zero ids.
    pub id: u64,
    /// The command.
    pub body: Request,
}

/// A frame sent by the relay to a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayFrame {
    /// Protocol version; [`crate::PROTOCOL_VERSION`].
    pub v: u16,
    /// The correlation id of the request this answers, or 0 for a push.
    pub id: u64,
    /// The reply or push.
    pub body: Response,
}

/// Commands a client sends.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Create a mailbox. Answered by [`Response::Created`].
    Create {
        /// The new mailbox's Ed25519 auth public key (never the identity key).
        auth_key: AuthPublicKey,
        /// The send secret senders must present; the relay keeps only its hash.
        send_secret: SendSecret,
        /// The relay password, if the relay requires one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
        /// Signature by `auth_key` over [`crate::create_signature_input`].
        signature: SignatureBytes,
    },
    /// Start receiving a mailbox's envelopes on this connection. Answered by `Ok`, then pushes.
    Subscribe {
        /// The mailbox.
        receive_id: ReceiveId,
        /// Owner signature over [`crate::owner_signature_input`] with `OwnerCommand::Subscribe`.
        signature: SignatureBytes,
    },
    /// Acknowledge (and delete) delivered envelopes of one mailbox: 1 to
    /// [`crate::MAX_ACK_IDS`] ids in one frame. Idempotent. Answered by `Ok`. (Protocol
    /// version 2 made one signature cover a list; version 4 made the signature optional on the
    /// connection that subscribes the mailbox.)
    Ack {
        /// The mailbox.
        receive_id: ReceiveId,
        /// The relay message ids from the pushed [`Response::Message`]s.
        message_ids: Vec<MessageId>,
        /// Owner signature over [`crate::owner_signature_input`] with `OwnerCommand::Ack` of
        /// exactly these ids in this order. Left out (`None`) on a connection that currently
        /// subscribes the mailbox: its verified SUBSCRIBE already proved the owner over this
        /// connection's nonce (`docs/relay-protocol.md` § 4.3). When present it is always
        /// checked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<SignatureBytes>,
    },
    /// Delete the mailbox and every envelope in it. Answered by `Ok`.
    Delete {
        /// The mailbox.
        receive_id: ReceiveId,
        /// Owner signature over [`crate::owner_signature_input`] with `OwnerCommand::Delete`.
        signature: SignatureBytes,
    },
    /// Bind the mailbox's send side to one sender key, once. Answered by `Ok`.
    Secure {
        /// The mailbox.
        receive_id: ReceiveId,
        /// The sender's Ed25519 public key that must sign every later SEND.
        sender_key: AuthPublicKey,
        /// Owner signature over [`crate::owner_signature_input`] with `OwnerCommand::Secure`.
        signature: SignatureBytes,
    },
    /// Prove, once per connection and mailbox, that this connection holds the sender key: every
    /// later SEND of this connection to `send_id` is then accepted as that key's, with no
    /// signature of its own (protocol version 3). Answered by `Ok` at once (nothing is stored).
    SenderSession {
        /// The mailbox's send id.
        send_id: SendId,
        /// The mailbox's send secret.
        send_secret: SendSecret,
        /// The sender's Ed25519 public key: the key the mailbox is secured to (or will be).
        sender_key: AuthPublicKey,
        /// Signature by `sender_key` over [`crate::sender_session_signature_input`].
        signature: SignatureBytes,
    },
    /// Store an envelope in a mailbox. Anonymous. Answered by `Ok` after a durable commit. To a
    /// secured mailbox only after a [`Request::SenderSession`] with its sender key on this
    /// connection.
    Send {
        /// The mailbox's send id.
        send_id: SendId,
        /// The mailbox's send secret.
        send_secret: SendSecret,
        /// The sealed envelope: opaque bytes to the relay.
        #[serde(with = "serde_bytes")]
        envelope: Vec<u8>,
    },
    /// Create a blob of `chunk_count` fixed-size chunks (`docs/relay-protocol.md` § Blobs).
    /// Every id and secret is chosen by the uploader. Idempotent: the same request again is
    /// `Ok` too. Answered by `Ok`.
    BlobCreate {
        /// The uploader's id of the blob.
        upload_id: BlobUploadId,
        /// The uploader's secret; the relay keeps only its hash.
        upload_auth: BlobUploadAuth,
        /// How many chunks of [`crate::BLOB_CHUNK_BYTES`] the blob has (at least 1).
        chunk_count: u32,
        /// One random download id and secret per recipient (at least 1).
        downloads: Vec<BlobDownload>,
        /// The relay password, if the relay requires one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
    },
    /// Store chunk `index` of a blob. Chunks go in order: `index` must be the number of chunks
    /// stored so far (a lower index is already stored and answers `Ok` without change).
    /// Answered by `Ok` after a durable commit.
    BlobPut {
        /// The blob.
        upload_id: BlobUploadId,
        /// The uploader's secret.
        upload_auth: BlobUploadAuth,
        /// The chunk's position, from 0.
        index: u32,
        /// Exactly [`crate::BLOB_CHUNK_BYTES`] bytes.
        #[serde(with = "serde_bytes")]
        chunk: Vec<u8>,
    },
    /// How far the upload of a blob got (to resume it). Answered by
    /// [`Response::BlobState`].
    BlobStatus {
        /// The blob.
        upload_id: BlobUploadId,
        /// The uploader's secret.
        upload_auth: BlobUploadAuth,
    },
    /// Fetch chunk `index` of a blob as one recipient. Answered by [`Response::BlobChunk`].
    BlobGet {
        /// This recipient's download id.
        download_id: BlobDownloadId,
        /// This recipient's secret.
        download_auth: BlobDownloadAuth,
        /// The chunk's position, from 0.
        index: u32,
    },
    /// Delete a blob and every chunk of it. Answered by `Ok`; `BlobGone` when there is no such
    /// blob with that secret (e.g. already deleted).
    BlobDelete {
        /// The blob.
        upload_id: BlobUploadId,
        /// The uploader's secret.
        upload_auth: BlobUploadAuth,
    },
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hand-written so a send secret or a relay password can never reach a log line.
        match self {
            Request::Create { auth_key, .. } => f
                .debug_struct("Create")
                .field("auth_key", auth_key)
                .finish_non_exhaustive(),
            Request::Subscribe { receive_id, .. } => f
                .debug_struct("Subscribe")
                .field("receive_id", receive_id)
                .finish_non_exhaustive(),
            Request::Ack {
                receive_id,
                message_ids,
                signature,
            } => f
                .debug_struct("Ack")
                .field("receive_id", receive_id)
                .field("message_ids", &message_ids.len())
                .field("signed", &signature.is_some())
                .finish_non_exhaustive(),
            Request::Delete { receive_id, .. } => f
                .debug_struct("Delete")
                .field("receive_id", receive_id)
                .finish_non_exhaustive(),
            Request::Secure {
                receive_id,
                sender_key,
                ..
            } => f
                .debug_struct("Secure")
                .field("receive_id", receive_id)
                .field("sender_key", sender_key)
                .finish_non_exhaustive(),
            Request::SenderSession {
                send_id,
                sender_key,
                ..
            } => f
                .debug_struct("SenderSession")
                .field("send_id", send_id)
                .field("sender_key", sender_key)
                .finish_non_exhaustive(),
            Request::Send {
                send_id, envelope, ..
            } => f
                .debug_struct("Send")
                .field("send_id", send_id)
                .field("envelope_len", &envelope.len())
                .finish_non_exhaustive(),
            Request::BlobCreate {
                upload_id,
                chunk_count,
                downloads,
                ..
            } => f
                .debug_struct("BlobCreate")
                .field("upload_id", upload_id)
                .field("chunk_count", chunk_count)
                .field("downloads", downloads)
                .finish_non_exhaustive(),
            Request::BlobPut {
                upload_id,
                index,
                chunk,
                ..
            } => f
                .debug_struct("BlobPut")
                .field("upload_id", upload_id)
                .field("index", index)
                .field("chunk_len", &chunk.len())
                .finish_non_exhaustive(),
            Request::BlobStatus { upload_id, .. } => f
                .debug_struct("BlobStatus")
                .field("upload_id", upload_id)
                .finish_non_exhaustive(),
            Request::BlobGet {
                download_id, index, ..
            } => f
                .debug_struct("BlobGet")
                .field("download_id", download_id)
                .field("index", index)
                .finish_non_exhaustive(),
            Request::BlobDelete { upload_id, .. } => f
                .debug_struct("BlobDelete")
                .field("upload_id", upload_id)
                .finish_non_exhaustive(),
        }
    }
}

/// Frames the relay sends: replies and pushes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Pushed first on every connection (correlation id 0): the challenge and the relay's limits.
    Hello {
        /// Fresh random 32 bytes for this connection; owner and CREATE signatures cover it.
        nonce: Nonce,
        /// Largest envelope the relay accepts in SEND, in bytes.
        max_envelope: u32,
        /// How many unacknowledged envelopes the relay pushes per subscribed mailbox.
        window: u16,
    },
    /// Success of SUBSCRIBE, ACK, DELETE, SECURE, SENDER-SESSION or SEND.
    Ok {},
    /// Success of CREATE.
    Created {
        /// The owner's id of the new mailbox.
        receive_id: ReceiveId,
        /// The senders' id of the new mailbox.
        send_id: SendId,
    },
    /// A stored envelope pushed to a subscriber (correlation id 0).
    Message {
        /// The mailbox it was stored in.
        receive_id: ReceiveId,
        /// The relay's id for it; ACK with this.
        message_id: MessageId,
        /// When the relay stored it, Unix time in seconds.
        received_at: u64,
        /// The envelope bytes exactly as sent.
        #[serde(with = "serde_bytes")]
        envelope: Vec<u8>,
    },
    /// Pushed (correlation id 0) when another connection subscribed this mailbox: this
    /// connection receives no more of it.
    End {
        /// The mailbox no longer subscribed here.
        receive_id: ReceiveId,
    },
    /// The request failed.
    Error {
        /// What went wrong.
        code: ErrorCode,
    },
    /// Answer to BLOB-STATUS: the blob's declared size and how many chunks are stored.
    BlobState {
        /// Chunks declared at BLOB-CREATE.
        chunk_count: u32,
        /// Chunks stored durably: exactly chunks `0..stored`; the next BLOB-PUT is `stored`.
        stored: u32,
    },
    /// Answer to BLOB-GET: one chunk.
    BlobChunk {
        /// The chunk's position.
        index: u32,
        /// The chunk's bytes exactly as uploaded ([`crate::BLOB_CHUNK_BYTES`] bytes).
        #[serde(with = "serde_bytes")]
        chunk: Vec<u8>,
    },
}

/// Typed error codes, encoded as their names (CBOR text strings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The frame could not be decoded, or was a text frame, or is not a client command.
    Malformed,
    /// The frame's `v` is not a version this relay speaks.
    UnsupportedVersion,
    /// Unknown mailbox, wrong owner signature, or wrong send id/secret. One code for all, so
    /// a mailbox's existence is not revealed.
    Auth,
    /// CREATE: the relay password is missing or wrong.
    Password,
    /// SEND to a secured mailbox without a sender session for its key on this connection; or a
    /// SENDER-SESSION whose signature is wrong or whose key is not the mailbox's sender key.
    SenderAuth,
    /// SECURE on a mailbox that is already secured.
    AlreadySecured,
    /// The envelope is larger than the relay accepts.
    TooLarge,
    /// The mailbox holds as many envelopes or bytes as its quota allows.
    QuotaExceeded,
    /// Too many requests from this connection or address; retry later.
    RateLimited,
    /// A per-connection limit other than rate was reached (e.g. subscriptions per connection).
    LimitExceeded,
    /// The relay is shutting down; reconnect later.
    ShuttingDown,
    /// The relay failed internally (e.g. storage error); retry later.
    Internal,
    /// Blob commands: no blob with this id and secret (never created, expired, deleted, or the
    /// secret is wrong). One code for all, so a blob's existence is not revealed.
    BlobGone,
    /// BLOB-PUT: the chunk is not exactly [`crate::BLOB_CHUNK_BYTES`] bytes long.
    ChunkSize,
    /// BLOB-PUT or BLOB-GET: the index is not below the blob's declared chunk count.
    ChunkIndex,
    /// BLOB-PUT: the index is beyond the next chunk to store (chunks go in order; ask
    /// BLOB-STATUS where to resume).
    OutOfOrder,
    /// BLOB-GET: that chunk has not been uploaded (yet).
    ChunkMissing,
    /// BLOB-CREATE: the upload id is in use with other values, or a download id is in use;
    /// draw new random ids.
    IdInUse,
    /// A code this version does not know (decoding only).
    #[serde(other)]
    Unknown,
}
