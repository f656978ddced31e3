//! Accepting a contact's per-conversation sequence number (`docs/engine.md` § Inside a ratchet
//! message). The `seq` inside a contact's `Content` is chosen by the contact; our own next
//! `seq` is one past the highest the conversation holds in either direction. A contact (or a
//! bug) sending a `seq` near `i64::MAX` would leave us no number to send with, so a received
//! `seq` may run at most [`MAX_SEQ_ADVANCE`] past the conversation's highest: reaching the end
//! of the range then takes more than 2^43 accepted messages.

use thiserror::Error;

use crate::store::ConversationSeq;

/// How far past the conversation's highest sequence number a received one may go. A contact's
/// numbers run ahead of ours only by its messages we have not stored yet (lost or in flight).
pub const MAX_SEQ_ADVANCE: u64 = 1 << 20;

/// Why a contact's sequence number was refused (the message's text is dropped; its ratchet step
/// is kept, the message key being spent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum IncomingSeqError {
    /// Zero (reserved for control plaintexts) or beyond `i64::MAX` (what the store holds).
    #[error("sequence number {seq} is out of range")]
    OutOfRange {
        /// The number the contact sent.
        seq: u64,
    },
    /// More than [`MAX_SEQ_ADVANCE`] past the conversation's highest sequence number.
    #[error("sequence number {seq} is more than {max_advance} past the conversation's {last}")]
    TooFarAhead {
        /// The number the contact sent.
        seq: u64,
        /// The conversation's highest sequence number.
        last: u64,
        /// [`MAX_SEQ_ADVANCE`].
        max_advance: u64,
    },
}

/// Checks a text's sequence number against the conversation's highest (`last`).
pub fn accept_incoming_seq(seq: u64, last: u64) -> Result<ConversationSeq, IncomingSeqError> {
    let checked = ConversationSeq::new(seq).ok_or(IncomingSeqError::OutOfRange { seq })?;
    if seq > last.saturating_add(MAX_SEQ_ADVANCE) {
        return Err(IncomingSeqError::TooFarAhead {
            seq,
            last,
            max_advance: MAX_SEQ_ADVANCE,
        });
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_near_the_end_of_the_range_are_refused_with_their_reason() {
        assert_eq!(
            accept_incoming_seq(0, 5),
            Err(IncomingSeqError::OutOfRange { seq: 0 })
        );
        assert_eq!(
            accept_incoming_seq(u64::MAX, 5),
            Err(IncomingSeqError::OutOfRange { seq: u64::MAX })
        );
        let near_end = i64::MAX.unsigned_abs();
        assert_eq!(
            accept_incoming_seq(near_end, 5),
            Err(IncomingSeqError::TooFarAhead {
                seq: near_end,
                last: 5,
                max_advance: MAX_SEQ_ADVANCE
            })
        );
        assert_eq!(
            accept_incoming_seq(5 + MAX_SEQ_ADVANCE + 1, 5),
            Err(IncomingSeqError::TooFarAhead {
                seq: 5 + MAX_SEQ_ADVANCE + 1,
                last: 5,
                max_advance: MAX_SEQ_ADVANCE
            })
        );
    }

    #[test]
    fn ordinary_numbers_are_accepted() {
        assert_eq!(accept_incoming_seq(1, 0).map(ConversationSeq::get), Ok(1));
        assert_eq!(
            accept_incoming_seq(5 + MAX_SEQ_ADVANCE, 5).map(ConversationSeq::get),
            Ok(5 + MAX_SEQ_ADVANCE)
        );
        // Behind the conversation's highest (our own later messages) is fine too.
        assert_eq!(accept_incoming_seq(3, 40).map(ConversationSeq::get), Ok(3));
    }
}
