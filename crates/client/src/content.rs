//! What travels inside a ratchet message: one [`Content`], CBOR-encoded with an explicit
//! version (`docs/engine.md` § Inside a ratchet message). Decoding is bounded and never panics.

use serde::{Deserialize, Serialize};

use crate::group::{GroupId, MemberKey, RosterMessage};

/// The content format version.
pub const CONTENT_VERSION: u8 = 1;
/// Longest text message, bytes (fits the 64 KiB padding bucket with room for the rest).
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// One plaintext inside a ratchet message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    /// Format version ([`CONTENT_VERSION`]).
    pub v: u8,
    /// The sender's per-conversation sequence number (0 for control plaintexts).
    pub seq: u64,
    /// The sender's clock, Unix milliseconds (display only).
    pub sent_at_ms: u64,
    /// What it carries.
    pub body: Body,
    /// Receipts for the recipient's messages.
    pub receipts: Vec<Receipt>,
}

/// The body of a [`Content`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// The accepter's first message: who they are and where to answer.
    Hello {
        /// The accepter's display name.
        display_name: String,
        /// The accepter's mailboxes to write to, one per relay.
        reply: Vec<ReplyAddress>,
        /// The keys the accepter signs SENDs with, per inviter mailbox.
        sender_keys: Vec<SenderKey>,
        /// The accepter's signed prekey (sealpost-crypto encoding).
        #[serde(with = "serde_bytes")]
        signed_prekey: Vec<u8>,
    },
    /// The inviter's first message back.
    Welcome {
        /// The inviter's display name.
        display_name: String,
        /// The keys the inviter signs SENDs with, per accepter mailbox.
        sender_keys: Vec<SenderKey>,
    },
    /// A text message.
    Text {
        /// The text.
        text: String,
    },
    /// A refreshed signed prekey (`docs/engine.md` § Inside a ratchet message).
    PrekeyUpdate {
        /// The new signed prekey.
        #[serde(with = "serde_bytes")]
        signed_prekey: Vec<u8>,
    },
    /// Nothing but the receipts.
    ReceiptsOnly,
    /// The first message of a session restarted with X3DH after the old one broke beyond
    /// MAX_SKIP (`docs/engine.md` § Session restart). `generation` grows with each restart by this
    /// sender for this contact; the receiver refuses one not newer than the last it saw (replay
    /// guard).
    Restart {
        /// This sender's restart counter for the contact, from 1.
        generation: u64,
    },
    /// A group message (`docs/engine.md` § Groups), one copy sealed per member over that
    /// member's own session. It has **no author field**: the author is the peer of the session
    /// it arrived on. The group id binds it to its group inside the ratchet encryption.
    GroupText {
        /// The group.
        group_id: GroupId,
        /// The author's sequence number in the group (a Lamport clock over the group's
        /// messages; with the author it orders and deduplicates).
        seq: u64,
        /// The text.
        text: String,
    },
    /// A roster change: an admin's whole roster after its change, or a member's own leave.
    /// The author (whose role is checked) is the session's peer.
    GroupRoster {
        /// The group.
        group_id: GroupId,
        /// The change.
        change: RosterMessage,
    },
    /// Delivery and read receipts for the recipient's group messages (their group `seq`).
    GroupReceipts {
        /// The group.
        group_id: GroupId,
        /// The receipts.
        receipts: Vec<Receipt>,
    },
    /// A one-use introduction invite between two members who are not contacts yet: the member
    /// who made it sends it to an admin naming the member it is for, and the admin passes it on
    /// to that member, who accepts it; the pair then has its own session and mailboxes.
    GroupIntroduction {
        /// The group both are members of.
        group_id: GroupId,
        /// The member the invite is for.
        member: MemberKey,
        /// The invite text (`sealpost:…`), made for this introduction only.
        invite: String,
    },
    /// A text message sent while the chat's disappearing timer was on (`docs/engine.md` §
    /// Disappearing messages): it carries the timer it was sent with, and each side deletes it
    /// that long after it sent or received it. `seq` as for [`Body::Text`].
    TimedText {
        /// The text.
        text: String,
        /// The timer, seconds (one of the allowed settings; other values are refused).
        timer_secs: u32,
    },
    /// The sender changed the chat's disappearing timer (0 = off). A sequenced plaintext like a
    /// text (`Content::seq` is the change's Lamport clock): the highest `(seq, shorter timer)`
    /// wins on both sides (`docs/engine.md` § Disappearing messages).
    TimerChange {
        /// The new timer, seconds; 0 turns it off.
        timer_secs: u32,
    },
    /// A file or an image (`docs/engine.md` § Attachments): a pointer to a blob on a relay,
    /// encrypted once with its own key (`docs/crypto.md` § Attachments), or, for a small file,
    /// the file itself.
    Attachment {
        /// What the recipient needs to fetch, check and open it.
        pointer: AttachmentPointer,
    },
    /// A file or an image sent to a group (`docs/engine.md` § Attachments, § Groups): encrypted
    /// and uploaded ONCE, the blob made with one download grant per member; each member's copy,
    /// sealed over that member's own session like a [`Body::GroupText`], carries that member's
    /// own grant. No author field: the author is the session's peer.
    GroupAttachment {
        /// The group.
        group_id: GroupId,
        /// The author's sequence number in the group (as for [`Body::GroupText`]).
        seq: u64,
        /// What this member needs to fetch, check and open it (its own grant).
        pointer: AttachmentPointer,
    },
    /// A group text sent while the group's disappearing timer was on (`docs/engine.md` §
    /// Disappearing messages): [`Body::GroupText`] with the timer it was sent with; each member
    /// deletes it that long after it stored it. A new variant rather than an optional field, so
    /// a build that does not know timers refuses it instead of keeping it for ever.
    GroupTimedText {
        /// The group.
        group_id: GroupId,
        /// As in [`Body::GroupText`].
        seq: u64,
        /// The text.
        text: String,
        /// The timer, seconds (one of the allowed settings; other values are refused).
        timer_secs: u32,
    },
}

/// Longest file name in a pointer, bytes.
pub const MAX_FILE_NAME_BYTES: usize = 255;
/// Longest media type in a pointer, bytes.
pub const MAX_MEDIA_TYPE_BYTES: usize = 127;
/// Largest thumbnail in a pointer, bytes.
pub const MAX_THUMBNAIL_BYTES: usize = 16 * 1024;
/// Largest file that rides inside the message instead of a blob, bytes.
pub const MAX_INLINE_BYTES: usize = 16 * 1024;
/// Largest download grant, bytes (the relay's capability, opaque here).
pub const MAX_GRANT_BYTES: usize = 512;

/// An attachment as it travels inside a ratchet message. Holds the file's key: its `Debug`
/// prints neither the key nor the grant.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentPointer {
    /// The file name the sender gave (bidi controls removed on receipt, `crate::names`).
    pub file_name: String,
    /// The media type the sender claims (`image/png`, …); a hint only, never trusted to render.
    pub media_type: String,
    /// The file's size in bytes.
    pub size: u64,
    /// Where the encrypted file is, or the file itself.
    pub location: AttachmentLocation,
    /// A small JPEG made by the sender (metadata-free), if the file is an image.
    #[serde(with = "serde_bytes")]
    pub thumbnail: Option<Vec<u8>>,
    /// The disappearing timer the message was sent with, seconds (`docs/engine.md` §
    /// Disappearing messages); absent when the chat's timer was off, so a pointer without a
    /// timer encodes exactly as before the field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer_secs: Option<u32>,
}

/// Where an attachment's bytes are.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttachmentLocation {
    /// The file itself, for files of at most [`MAX_INLINE_BYTES`] (the ratchet message protects it).
    Inline {
        /// The file's bytes.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// A blob on a relay, encrypted in 64 KiB STREAM chunks (`docs/crypto.md` § Attachments).
    Blob {
        /// The relay holding it.
        relay_url: String,
        /// This recipient's own download capability (`docs/relay-protocol.md` § Blobs): opaque
        /// here, unlinkable to other recipients' grants.
        #[serde(with = "serde_bytes")]
        grant: Vec<u8>,
        /// The file's key.
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        /// The key's commitment, checked before any chunk is decrypted.
        #[serde(with = "serde_bytes")]
        commitment: Vec<u8>,
        /// The ciphertext digest, checked over the whole download.
        #[serde(with = "serde_bytes")]
        digest: Vec<u8>,
    },
}

impl std::fmt::Debug for AttachmentPointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentPointer")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AttachmentLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Inline { .. } => f.write_str("Inline"),
            Self::Blob { relay_url, .. } => f
                .debug_struct("Blob")
                .field("relay_url", relay_url)
                .finish_non_exhaustive(),
        }
    }
}

impl AttachmentPointer {
    /// Whether every field is within its bound (checked on receipt; a pointer that is not is
    /// dropped like an undecodable content).
    pub fn is_well_formed(&self) -> bool {
        let bounded = self.file_name.len() <= MAX_FILE_NAME_BYTES
            && self.media_type.len() <= MAX_MEDIA_TYPE_BYTES
            && self
                .thumbnail
                .as_ref()
                .is_none_or(|t| t.len() <= MAX_THUMBNAIL_BYTES);
        let located = match &self.location {
            AttachmentLocation::Inline { bytes } => {
                bytes.len() <= MAX_INLINE_BYTES && bytes.len() as u64 == self.size
            }
            AttachmentLocation::Blob {
                grant,
                key,
                commitment,
                digest,
                ..
            } => {
                grant.len() <= MAX_GRANT_BYTES
                    && key.len() == 32
                    && commitment.len() == 32
                    && digest.len() == 32
                    && self.size <= sealpost_crypto::attachment::MAX_ATTACHMENT_BYTES
            }
        };
        bounded && located
    }
}

/// A mailbox of the sender's that the recipient writes to.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyAddress {
    /// The relay URL.
    pub url: String,
    /// The send id.
    #[serde(with = "serde_bytes")]
    pub send_id: Vec<u8>,
    /// The send secret.
    #[serde(with = "serde_bytes")]
    pub send_secret: Vec<u8>,
    /// The X25519 key the mailbox is sealed to.
    #[serde(with = "serde_bytes")]
    pub sealing_public_key: Vec<u8>,
}

impl std::fmt::Debug for ReplyAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyAddress")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The Ed25519 key the sender signs SENDs with on one of the recipient's mailboxes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderKey {
    /// The relay URL.
    pub url: String,
    /// The recipient mailbox's send id.
    #[serde(with = "serde_bytes")]
    pub send_id: Vec<u8>,
    /// The Ed25519 public key.
    #[serde(with = "serde_bytes")]
    pub public_key: Vec<u8>,
}

/// A receipt for one of the recipient's messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Which receipt.
    pub kind: ReceiptKindWire,
    /// The recipient's sequence number it covers.
    pub seq: u64,
}

/// Receipt kinds on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReceiptKindWire {
    /// Reached the device.
    Delivered,
    /// Read.
    Read,
}

/// Why a plaintext did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// Not valid CBOR for a [`Content`].
    #[error("malformed content")]
    Malformed,
    /// A version this build does not read.
    #[error("unsupported content version {0}")]
    Version(u8),
    /// Encoding failed.
    #[error("content encoding failed")]
    Encode,
}

impl Content {
    /// Encodes to CBOR.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ContentError> {
        let mut out = Vec::with_capacity(128);
        ciborium::into_writer(self, &mut out).map_err(|_| ContentError::Encode)?;
        Ok(out)
    }

    /// Decodes from CBOR (bounded by ciborium's recursion limit) and checks the version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ContentError> {
        let content: Self = ciborium::from_reader(bytes).map_err(|_| ContentError::Malformed)?;
        if content.v != CONTENT_VERSION {
            return Err(ContentError::Version(content.v));
        }
        Ok(content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn text_round_trips(text in ".{0,200}", seq in any::<u64>(), at in any::<u64>()) {
            let content = Content { v: 1, seq, sent_at_ms: at, body: Body::Text { text }, receipts: vec![Receipt { kind: ReceiptKindWire::Read, seq: 3 }] };
            prop_assert_eq!(Content::from_bytes(&content.to_bytes().unwrap()).unwrap(), content);
        }

        #[test]
        fn group_text_round_trips_and_names_no_author(text in ".{0,200}", seq in any::<u64>(), id in any::<[u8; 16]>()) {
            let content = Content { v: 1, seq: 0, sent_at_ms: 1, body: Body::GroupText { group_id: crate::group::GroupId::from_bytes(id), seq, text }, receipts: Vec::new() };
            let bytes = content.to_bytes().unwrap();
            prop_assert_eq!(Content::from_bytes(&bytes).unwrap(), content);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Content::from_bytes(&bytes);
        }
    }
}
