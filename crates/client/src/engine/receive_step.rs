//! The pure part of receiving one of a contact's ratchet messages: opened plaintext in, what to
//! store and what to do about it out (`docs/engine.md` § Receiving). No store, no engine state,
//! no I/O: [`receive_run`](super::receive_run) reads what it needs (the contact's identity key,
//! the conversation's highest sequence number) before, and acts on the [`ReceiveStep`] after.

use sealpost_crypto::{IdentityKey, SignedPrekey};

use super::sequence::{IncomingSeqError, accept_incoming_seq};
use zeroize::Zeroizing;

use crate::content::{
    AttachmentLocation, AttachmentPointer, Body, Content, ContentError, ReceiptKindWire, SenderKey,
};
use crate::store::{
    AttachmentChat, AttachmentId, AttachmentRow, AttachmentSecretBytes, AttachmentState, ContactId,
    ConversationSeq, Direction, DisappearingTimer, IdentityKeyBytes, IncomingAttachment,
    ReceiptKind, ReceivedContent, SignedPrekeyBytes, UnixMillis,
};

/// Most receipts read from one text message (a peer's pending receipts fit far below it).
pub(super) const MAX_RIDING_RECEIPTS: usize = 4096;

/// What one opened plaintext of a contact's means. The ratchet step that opened it is kept in
/// every case (its message key is spent); only what it carries may be dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ReceiveStep {
    /// What to store with the session step.
    pub(super) content: ReceivedContent,
    /// Why what it carried was dropped (reported as an `EnvelopeRefused` event), if it was.
    pub(super) refusal: Option<ContentRefusal>,
    /// A `Welcome`'s sender keys: SECURE our mailboxes for this contact with them.
    pub(super) secure_with: Option<Vec<SenderKey>>,
    /// A `PrekeyUpdate`'s signed prekey, verified against the contact's identity key: store it as
    /// the contact's latest (a session restart uses it).
    pub(super) peer_prekey: Option<SignedPrekeyBytes>,
    /// A group body and its `sent_at_ms`: handed to the group engine in the same transaction
    /// (`docs/engine.md` § Groups); the author is this session's peer.
    pub(super) group: Option<(Body, u64)>,
}

/// Why the content of an opened ratchet message was dropped. The texts are the
/// `EnvelopeRefused` reasons the engine has always shown.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum ContentRefusal {
    /// The plaintext is not a [`Content`] this version reads.
    #[error("content: {0}")]
    Undecodable(ContentError),
    /// A text whose sequence number is refused (`docs/engine.md` § Inside a ratchet message).
    #[error("content: {0}")]
    Sequence(IncomingSeqError),
    /// An attachment pointer out of its bounds (`AttachmentPointer::is_well_formed`).
    #[error("a malformed attachment pointer")]
    Attachment,
    /// A `PrekeyUpdate` whose signed prekey is not signed by the contact's identity key.
    #[error("a prekey update that does not verify")]
    UnverifiedPrekey,
    /// A disappearing timer that is none of the settings (`docs/engine.md` § Disappearing
    /// messages).
    #[error("a disappearing timer of {0} s")]
    UnknownTimer(u32),
}

/// Reads `plaintext`, opened on the session with the contact whose identity key is
/// `peer_identity`; `last_seq` is the highest sequence number the conversation holds.
pub(super) fn read_plaintext(
    plaintext: &[u8],
    peer_identity: &IdentityKeyBytes,
    last_seq: u64,
) -> ReceiveStep {
    let mut step = ReceiveStep {
        content: ReceivedContent::SessionOnly,
        refusal: None,
        secure_with: None,
        peer_prekey: None,
        group: None,
    };
    let content = match Content::from_bytes(plaintext) {
        Ok(content) => content,
        Err(error) => {
            step.refusal = Some(ContentRefusal::Undecodable(error));
            return step;
        }
    };
    match content.body {
        Body::Text { text } => match accept_incoming_seq(content.seq, last_seq) {
            Ok(seq) => {
                let sent_at = UnixMillis(i64::try_from(content.sent_at_ms).unwrap_or(0));
                // Receipts riding on the message (`docs/engine.md` § Inside a ratchet message),
                // applied in its savepoint.
                let receipts: Vec<(ReceiptKind, ConversationSeq)> = content
                    .receipts
                    .iter()
                    .take(MAX_RIDING_RECEIPTS)
                    .filter_map(|receipt| {
                        ConversationSeq::new(receipt.seq)
                            .map(|seq| (receipt_kind(receipt.kind), seq))
                    })
                    .collect();
                step.content = if receipts.is_empty() {
                    ReceivedContent::Message {
                        seq,
                        body: text,
                        sent_at,
                    }
                } else {
                    ReceivedContent::MessageWithReceipts {
                        seq,
                        body: text,
                        sent_at,
                        receipts,
                    }
                };
            }
            // The text is dropped and sending goes on.
            Err(error) => step.refusal = Some(ContentRefusal::Sequence(error)),
        },
        Body::TimedText { text, timer_secs } => {
            match (
                accept_incoming_seq(content.seq, last_seq),
                DisappearingTimer::from_seconds(timer_secs),
            ) {
                (Ok(seq), Some(timer)) => {
                    step.content = ReceivedContent::TimedMessage {
                        seq,
                        body: text,
                        sent_at: UnixMillis(i64::try_from(content.sent_at_ms).unwrap_or(0)),
                        timer,
                        receipts: riding_receipts(&content.receipts),
                    };
                }
                (Err(error), _) => step.refusal = Some(ContentRefusal::Sequence(error)),
                (Ok(_), None) => step.refusal = Some(ContentRefusal::UnknownTimer(timer_secs)),
            }
        }
        Body::TimerChange { timer_secs } => {
            match (
                accept_incoming_seq(content.seq, last_seq),
                DisappearingTimer::setting_from_seconds(timer_secs),
            ) {
                (Ok(seq), Some(timer)) => {
                    step.content = ReceivedContent::TimerChange {
                        seq,
                        timer,
                        sent_at: UnixMillis(i64::try_from(content.sent_at_ms).unwrap_or(0)),
                    };
                }
                (Err(error), _) => step.refusal = Some(ContentRefusal::Sequence(error)),
                (Ok(_), None) => step.refusal = Some(ContentRefusal::UnknownTimer(timer_secs)),
            }
        }
        Body::Attachment { pointer } => match accept_incoming_seq(content.seq, last_seq) {
            Ok(seq) => match (
                incoming_attachment(&pointer),
                pointer.timer_secs.map(DisappearingTimer::from_seconds),
            ) {
                (Some(row), None | Some(Some(_))) => {
                    step.content = ReceivedContent::Attachment {
                        seq,
                        body: row.file_name.clone(),
                        sent_at: UnixMillis(i64::try_from(content.sent_at_ms).unwrap_or(0)),
                        attachment: IncomingAttachment(Box::new(row)),
                        timer: pointer.timer_secs.and_then(DisappearingTimer::from_seconds),
                    };
                }
                (Some(_), Some(None)) => {
                    step.refusal = Some(ContentRefusal::UnknownTimer(
                        pointer.timer_secs.unwrap_or(0),
                    ));
                }
                (None, _) => step.refusal = Some(ContentRefusal::Attachment),
            },
            Err(error) => step.refusal = Some(ContentRefusal::Sequence(error)),
        },
        Body::ReceiptsOnly => {
            let kind = match content.receipts.first().map(|r| r.kind) {
                Some(ReceiptKindWire::Read) => ReceiptKind::Read,
                _ => ReceiptKind::Delivered,
            };
            let seqs = content
                .receipts
                .iter()
                .filter_map(|r| ConversationSeq::new(r.seq))
                .collect();
            step.content = ReceivedContent::Receipt { kind, seqs };
        }
        Body::Welcome { sender_keys, .. } => step.secure_with = Some(sender_keys),
        Body::PrekeyUpdate { signed_prekey } => {
            // Kept only if it is a signed prekey of this contact's identity.
            if prekey_verifies(&signed_prekey, peer_identity) {
                step.peer_prekey = Some(SignedPrekeyBytes::new(signed_prekey));
            } else {
                step.refusal = Some(ContentRefusal::UnverifiedPrekey);
            }
        }
        Body::Hello { .. } | Body::Restart { .. } => {}
        body @ (Body::GroupText { .. }
        | Body::GroupTimedText { .. }
        | Body::GroupRoster { .. }
        | Body::GroupReceipts { .. }
        | Body::GroupIntroduction { .. }
        | Body::GroupAttachment { .. }) => step.group = Some((body, content.sent_at_ms)),
    }
    step
}

/// The receipts riding on a text (at most [`MAX_RIDING_RECEIPTS`]).
fn riding_receipts(receipts: &[crate::content::Receipt]) -> Vec<(ReceiptKind, ConversationSeq)> {
    receipts
        .iter()
        .take(MAX_RIDING_RECEIPTS)
        .filter_map(|receipt| {
            ConversationSeq::new(receipt.seq).map(|seq| (receipt_kind(receipt.kind), seq))
        })
        .collect()
}

/// Received images up to this size are downloaded without being asked (`docs/engine.md`
/// § Attachments); everything else waits for the user.
pub(super) const AUTO_DOWNLOAD_IMAGE_BYTES: u64 = 8 * 1024 * 1024;

/// A received file name made safe to show and to save: no bidirectional control (`crate::names`),
/// no path separator or control character, never empty.
pub(super) fn safe_file_name(name: &str) -> String {
    let cleaned: String = crate::names::neutralise_bidi(name)
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches(|c: char| c == '.' || c.is_whitespace());
    if trimmed.is_empty() {
        "file".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The attachment row a received pointer becomes (chat and message are set by the store), or
/// `None` for a pointer out of its bounds. A small image is fetched at once; an inline file is
/// complete on arrival.
pub(super) fn incoming_attachment(pointer: &AttachmentPointer) -> Option<AttachmentRow> {
    if !pointer.is_well_formed() {
        return None;
    }
    let id = AttachmentId::generate().ok()?;
    let media_type = crate::names::neutralise_bidi(&pointer.media_type);
    let mut row = AttachmentRow {
        file_name: safe_file_name(&pointer.file_name),
        media_type: media_type.clone(),
        size: pointer.size,
        thumbnail: pointer.thumbnail.clone(),
        ..AttachmentRow::blank(
            id,
            Direction::Incoming,
            AttachmentChat::Contact(ContactId::from_bytes([0; 16])),
            AttachmentState::Complete,
        )
    };
    match &pointer.location {
        AttachmentLocation::Inline { bytes } => {
            row.inline_bytes = Some(Zeroizing::new(bytes.clone()));
        }
        AttachmentLocation::Blob {
            relay_url,
            grant,
            key,
            commitment,
            digest,
        } => {
            row.relay_url = Some(relay_url.clone());
            row.capability = Some(AttachmentSecretBytes::new(grant.clone()));
            row.file_key = Some(AttachmentSecretBytes::new(key.clone()));
            row.commitment = Some(commitment.clone());
            row.digest = Some(digest.clone());
            row.chunks = sealpost_crypto::attachment::chunk_count(pointer.size).ok()?;
            row.state =
                if media_type.starts_with("image/") && pointer.size <= AUTO_DOWNLOAD_IMAGE_BYTES {
                    AttachmentState::Transferring
                } else {
                    AttachmentState::Offered
                };
        }
    }
    Some(row)
}

fn receipt_kind(kind: ReceiptKindWire) -> ReceiptKind {
    match kind {
        ReceiptKindWire::Delivered => ReceiptKind::Delivered,
        ReceiptKindWire::Read => ReceiptKind::Read,
    }
}

/// Whether `signed_prekey` decodes and is signed by the identity key `peer_identity`.
fn prekey_verifies(signed_prekey: &[u8], peer_identity: &IdentityKeyBytes) -> bool {
    let Ok(identity) = <[u8; 64]>::try_from(peer_identity.as_bytes()) else {
        return false;
    };
    let Ok(identity) = IdentityKey::from_bytes(&identity) else {
        return false;
    };
    SignedPrekey::from_bytes(signed_prekey)
        .ok()
        .is_some_and(|prekey| prekey.verify(&identity).is_ok())
}

#[cfg(test)]
mod tests {
    use sealpost_crypto::{IdentityKeyPair, IdentitySeed, SignedPrekeyPair};
    use zeroize::Zeroizing;

    use super::*;
    use crate::content::{CONTENT_VERSION, Receipt};
    use crate::engine::sequence::MAX_SEQ_ADVANCE;

    fn identity(byte: u8) -> IdentityKeyPair {
        IdentityKeyPair::from_seed(&IdentitySeed::from_bytes(Zeroizing::new([byte; 32])))
            .expect("identity")
    }

    fn identity_bytes(pair: &IdentityKeyPair) -> IdentityKeyBytes {
        IdentityKeyBytes::new(pair.public().to_bytes().to_vec())
    }

    fn plaintext(seq: u64, body: Body, receipts: Vec<Receipt>) -> Vec<u8> {
        Content {
            v: CONTENT_VERSION,
            seq,
            sent_at_ms: 1_700_000_000_000,
            body,
            receipts,
        }
        .to_bytes()
        .expect("encode")
    }

    fn seq(n: u64) -> ConversationSeq {
        ConversationSeq::new(n).expect("seq")
    }

    fn step(content: ReceivedContent) -> ReceiveStep {
        ReceiveStep {
            content,
            refusal: None,
            secure_with: None,
            peer_prekey: None,
            group: None,
        }
    }

    fn text(body: &str) -> Body {
        Body::Text {
            text: body.to_owned(),
        }
    }

    #[test]
    fn a_text_is_stored_as_a_message_with_its_sequence_number_and_clock() {
        let peer = identity_bytes(&identity(1));
        let got = read_plaintext(&plaintext(4, text("hello"), Vec::new()), &peer, 3);
        assert_eq!(
            got,
            step(ReceivedContent::Message {
                seq: seq(4),
                body: "hello".into(),
                sent_at: UnixMillis(1_700_000_000_000),
            })
        );
    }

    #[test]
    fn receipts_riding_on_a_text_are_stored_with_it_and_invalid_numbers_are_skipped() {
        let peer = identity_bytes(&identity(1));
        let receipts = vec![
            Receipt {
                kind: ReceiptKindWire::Delivered,
                seq: 2,
            },
            Receipt {
                kind: ReceiptKindWire::Read,
                seq: 0,
            },
            Receipt {
                kind: ReceiptKindWire::Read,
                seq: 3,
            },
        ];
        let got = read_plaintext(&plaintext(9, text("hi"), receipts), &peer, 8);
        assert_eq!(
            got,
            step(ReceivedContent::MessageWithReceipts {
                seq: seq(9),
                body: "hi".into(),
                sent_at: UnixMillis(1_700_000_000_000),
                receipts: vec![
                    (ReceiptKind::Delivered, seq(2)),
                    (ReceiptKind::Read, seq(3))
                ],
            })
        );
    }

    #[test]
    fn at_most_max_riding_receipts_are_read_from_one_text() {
        let peer = identity_bytes(&identity(1));
        let count = u64::try_from(MAX_RIDING_RECEIPTS).expect("fits") + 10;
        let receipts = (1..=count)
            .map(|seq| Receipt {
                kind: ReceiptKindWire::Delivered,
                seq,
            })
            .collect();
        let got = read_plaintext(&plaintext(1, text("x"), receipts), &peer, 0);
        let ReceivedContent::MessageWithReceipts { receipts, .. } = got.content else {
            panic!("not a message with receipts: {got:?}");
        };
        assert_eq!(receipts.len(), MAX_RIDING_RECEIPTS);
    }

    #[test]
    fn a_receipts_only_message_is_one_receipt_of_the_first_kind() {
        let peer = identity_bytes(&identity(1));
        let receipts = vec![
            Receipt {
                kind: ReceiptKindWire::Read,
                seq: 5,
            },
            Receipt {
                kind: ReceiptKindWire::Delivered,
                seq: 6,
            },
        ];
        let got = read_plaintext(&plaintext(0, Body::ReceiptsOnly, receipts), &peer, 0);
        assert_eq!(
            got,
            step(ReceivedContent::Receipt {
                kind: ReceiptKind::Read,
                seqs: vec![seq(5), seq(6)],
            })
        );
    }

    #[test]
    fn a_welcome_asks_to_secure_our_mailboxes_with_its_sender_keys() {
        let peer = identity_bytes(&identity(1));
        let keys = vec![SenderKey {
            url: "wss://relay.example".into(),
            send_id: vec![7; 32],
            public_key: vec![8; 32],
        }];
        let body = Body::Welcome {
            display_name: "Ann".into(),
            sender_keys: keys.clone(),
        };
        let got = read_plaintext(&plaintext(0, body, Vec::new()), &peer, 0);
        assert_eq!(
            got,
            ReceiveStep {
                secure_with: Some(keys),
                ..step(ReceivedContent::SessionOnly)
            }
        );
    }

    #[test]
    fn a_prekey_update_signed_by_the_contact_is_kept() {
        let contact = identity(1);
        let prekey = SignedPrekeyPair::generate(&contact).expect("prekey");
        let bytes = prekey.public().to_bytes().to_vec();
        let body = Body::PrekeyUpdate {
            signed_prekey: bytes.clone(),
        };
        let got = read_plaintext(
            &plaintext(0, body, Vec::new()),
            &identity_bytes(&contact),
            0,
        );
        assert_eq!(
            got,
            ReceiveStep {
                peer_prekey: Some(SignedPrekeyBytes::new(bytes)),
                ..step(ReceivedContent::SessionOnly)
            }
        );
    }

    #[test]
    fn a_prekey_update_signed_by_another_identity_is_refused() {
        let stranger = identity(2);
        let prekey = SignedPrekeyPair::generate(&stranger).expect("prekey");
        for signed_prekey in [prekey.public().to_bytes().to_vec(), vec![1, 2, 3]] {
            let body = Body::PrekeyUpdate { signed_prekey };
            let got = read_plaintext(
                &plaintext(0, body, Vec::new()),
                &identity_bytes(&identity(1)),
                0,
            );
            assert_eq!(
                got,
                ReceiveStep {
                    refusal: Some(ContentRefusal::UnverifiedPrekey),
                    ..step(ReceivedContent::SessionOnly)
                }
            );
            assert_eq!(
                got.refusal.map(|r| r.to_string()).as_deref(),
                Some("a prekey update that does not verify")
            );
        }
    }

    #[test]
    fn a_text_with_a_refused_sequence_number_keeps_only_the_session_step() {
        let peer = identity_bytes(&identity(1));
        let far = 5 + MAX_SEQ_ADVANCE + 1;
        for (sent, reason) in [
            (0, IncomingSeqError::OutOfRange { seq: 0 }),
            (
                far,
                IncomingSeqError::TooFarAhead {
                    seq: far,
                    last: 5,
                    max_advance: MAX_SEQ_ADVANCE,
                },
            ),
        ] {
            let got = read_plaintext(&plaintext(sent, text("late"), Vec::new()), &peer, 5);
            assert_eq!(
                got,
                ReceiveStep {
                    refusal: Some(ContentRefusal::Sequence(reason)),
                    ..step(ReceivedContent::SessionOnly)
                }
            );
            assert_eq!(
                got.refusal.map(|r| r.to_string()),
                Some(format!("content: {reason}"))
            );
        }
    }

    #[test]
    fn undecodable_content_keeps_only_the_session_step() {
        let peer = identity_bytes(&identity(1));
        let got = read_plaintext(&[0xff, 0x00, 0x13], &peer, 0);
        assert_eq!(got.content, ReceivedContent::SessionOnly);
        assert!(
            matches!(got.refusal, Some(ContentRefusal::Undecodable(_))),
            "{got:?}"
        );
        assert!(
            got.refusal
                .map(|r| r.to_string())
                .is_some_and(|reason| reason.starts_with("content: "))
        );
    }

    #[test]
    fn a_group_body_is_handed_to_the_group_engine_with_its_sent_time() {
        let peer = identity_bytes(&identity(1));
        let body = Body::GroupText {
            group_id: crate::group::GroupId::from_bytes([7; 16]),
            seq: 3,
            text: "hi all".into(),
        };
        let got = read_plaintext(&plaintext(0, body.clone(), Vec::new()), &peer, 0);
        assert_eq!(got.group, Some((body, 1_700_000_000_000)));
        assert_eq!(got.content, ReceivedContent::SessionOnly);
        assert_eq!(got.refusal, None);
    }

    #[test]
    fn hello_and_restart_bodies_inside_a_session_change_only_the_session() {
        let peer = identity_bytes(&identity(1));
        let hello = Body::Hello {
            display_name: "Bob".into(),
            reply: Vec::new(),
            sender_keys: Vec::new(),
            signed_prekey: Vec::new(),
        };
        for body in [hello, Body::Restart { generation: 3 }] {
            let got = read_plaintext(&plaintext(0, body, Vec::new()), &peer, 0);
            assert_eq!(got, step(ReceivedContent::SessionOnly));
        }
    }
}
