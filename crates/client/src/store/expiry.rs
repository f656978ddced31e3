//! Disappearing messages in the store (`docs/engine.md` § Disappearing messages): the per-chat
//! timer, the timer each message was sent with, and deleting what has expired, in 1:1 chats and
//! in groups (a group's timer is a register of its roster, `group/roster.rs`; its texts carry
//! theirs in `group_messages`, schema V10).
//!
//! ## The chat's timer
//!
//! `chat_timers` holds, per contact, the timer the chat is set to and the `(seq, timer)` of the
//! change that set it. A change is a sequenced plaintext (`Body::TimerChange`), so `seq` is a
//! Lamport clock over the conversation. A change replaces the stored one when its `seq` is
//! higher, or equal and its timer shorter (off counts as the longest): both sides see the same
//! changes and keep the same maximum, so concurrent changes converge without either side's key.
//! Every change, applied or not, is kept as a system line of the conversation (a message row
//! with `timer_change` set and an empty body).
//!
//! ## Expiry
//!
//! A message sent or received while a timer applies stores that timer (`expire_after_s`) and
//! `expires_at`: our clock when we sent it (outgoing) or stored it (incoming), plus the timer.
//! The timer starts at delivery to this device, not at reading: an unread message disappears
//! too (as WhatsApp's do; Signal starts at reading).
//!
//! [`Store::delete_expired`] deletes every message whose `expires_at` has passed, in one
//! transaction: out of the search index first (FTS5 `delete` with its text, so its tokens leave
//! the index pages), then the row (its outbox rows and its attachment row go with it; the
//! attachment ids are returned so the engine removes their chunk files after the commit); expired
//! group texts go in the same transaction (with their copies and outbox rows). `secure_delete`
//! zeroes the freed bytes, and a `wal_checkpoint(TRUNCATE)` afterwards copies the zeroed pages into the main file
//! and empties the WAL, so neither file keeps the text.

use rusqlite::{Connection, OptionalExtension, Row, ToSql, params};

use super::types::{AttachmentId, ContactId, ConversationSeq, MessageId, UnixMillis};
use super::{Store, StoreError};
use crate::group::GroupId;

/// The settings a chat's disappearing timer can take besides off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DisappearingTimer {
    /// 5 minutes.
    FiveMinutes,
    /// 1 hour.
    OneHour,
    /// 1 day.
    OneDay,
    /// 1 week.
    OneWeek,
}

impl DisappearingTimer {
    /// Every setting, shortest first.
    pub const ALL: [DisappearingTimer; 4] = [
        DisappearingTimer::FiveMinutes,
        DisappearingTimer::OneHour,
        DisappearingTimer::OneDay,
        DisappearingTimer::OneWeek,
    ];

    /// The timer in seconds (what travels in `Body::TimedText` and `Body::TimerChange`).
    pub fn seconds(self) -> u32 {
        match self {
            DisappearingTimer::FiveMinutes => 5 * 60,
            DisappearingTimer::OneHour => 3600,
            DisappearingTimer::OneDay => 24 * 3600,
            DisappearingTimer::OneWeek => 7 * 24 * 3600,
        }
    }

    /// The setting of exactly `seconds`, or `None` for any other value.
    pub fn from_seconds(seconds: u32) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|timer| timer.seconds() == seconds)
    }

    /// A chat setting from its seconds: 0 is off (`Some(None)`); a value that is no setting is
    /// `None`.
    pub fn setting_from_seconds(seconds: u32) -> Option<Option<Self>> {
        if seconds == 0 {
            Some(None)
        } else {
            Self::from_seconds(seconds).map(Some)
        }
    }

    /// The seconds of a chat setting (0 = off).
    pub fn setting_seconds(setting: Option<Self>) -> u32 {
        setting.map_or(0, Self::seconds)
    }
}

/// Whether the change `(seq, timer)` wins over the stored `(seq, timer)`: a higher Lamport clock,
/// or the same and a shorter timer (off is the longest).
pub fn timer_change_wins(
    new: (u64, Option<DisappearingTimer>),
    stored: (u64, Option<DisappearingTimer>),
) -> bool {
    let rank =
        |timer: Option<DisappearingTimer>| timer.map_or(u32::MAX, DisappearingTimer::seconds);
    (new.0, std::cmp::Reverse(rank(new.1))) > (stored.0, std::cmp::Reverse(rank(stored.1)))
}

/// A chat's disappearing timer as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChatTimer {
    /// The setting (`None`: off).
    pub timer: Option<DisappearingTimer>,
    /// The sequence number of the change that set it (0: never changed).
    pub seq: u64,
}

/// The chat of an expired message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExpiredChat {
    /// A 1:1 conversation.
    Contact(ContactId),
    /// A group.
    Group(GroupId),
}

/// A message [`Store::delete_expired`] deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpiredMessage {
    /// The message.
    pub id: MessageId,
    /// Its chat.
    pub chat: ExpiredChat,
    /// The attachment it carried (its row went with it; the caller removes its chunk files).
    pub attachment: Option<AttachmentId>,
}

/// The chat timer of `contact` (off when never set).
pub(super) fn chat_timer_in(
    connection: &Connection,
    contact: ContactId,
) -> Result<ChatTimer, StoreError> {
    let row: Option<(u32, i64)> = connection
        .prepare_cached("SELECT seconds, seq FROM chat_timers WHERE contact_id = ?1")?
        .query_row(params![contact], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let Some((seconds, seq)) = row else {
        return Ok(ChatTimer {
            timer: None,
            seq: 0,
        });
    };
    let timer =
        DisappearingTimer::setting_from_seconds(seconds).ok_or_else(|| StoreError::CorruptRow {
            detail: format!("chat timer of {seconds} s"),
        })?;
    Ok(ChatTimer {
        timer,
        seq: u64::try_from(seq).unwrap_or(0),
    })
}

/// Applies a timer change with sequence number `seq` to the chat if it wins
/// ([`timer_change_wins`]); returns whether it did.
pub(super) fn apply_timer_change_in(
    connection: &Connection,
    contact: ContactId,
    seq: ConversationSeq,
    timer: Option<DisappearingTimer>,
) -> Result<bool, StoreError> {
    let stored = chat_timer_in(connection, contact)?;
    if !timer_change_wins((seq.get(), timer), (stored.seq, stored.timer)) {
        return Ok(false);
    }
    connection
        .prepare_cached(
            "INSERT INTO chat_timers (contact_id, seconds, seq) VALUES (?1, ?2, ?3)
             ON CONFLICT (contact_id) DO UPDATE SET seconds = excluded.seconds, seq = excluded.seq",
        )?
        .execute(params![
            contact,
            DisappearingTimer::setting_seconds(timer),
            seq.to_i64()
        ])?;
    Ok(true)
}

/// Gives the stored message `message` its timer, expiring `timer` after `start` (our clock).
pub(super) fn set_message_timer_in(
    connection: &Connection,
    message: MessageId,
    timer: DisappearingTimer,
    start: UnixMillis,
) -> Result<UnixMillis, StoreError> {
    let expires_at = UnixMillis(
        start
            .0
            .saturating_add(i64::from(timer.seconds()).saturating_mul(1000)),
    );
    connection
        .prepare_cached("UPDATE messages SET expire_after_s = ?2, expires_at = ?3 WHERE id = ?1")?
        .execute(params![message, timer.seconds(), expires_at])?;
    Ok(expires_at)
}

/// Marks the stored message `message` as the system line of a timer change to `timer`.
pub(super) fn set_timer_change_in(
    connection: &Connection,
    message: MessageId,
    timer: Option<DisappearingTimer>,
) -> Result<(), StoreError> {
    connection
        .prepare_cached("UPDATE messages SET timer_change = ?2 WHERE id = ?1")?
        .execute(params![message, DisappearingTimer::setting_seconds(timer)])?;
    Ok(())
}

/// An expired message as read before its deletion: the message, its search rowid (if indexed)
/// and its text (to take its tokens out of the index).
type ExpiredRow = (ExpiredMessage, Option<i64>, String);

/// The rows `select` lists as expired at `now` (`?1`): columns id, chat, search rowid, text,
/// attachment, with `chat` reading the chat out of the row. What both halves of
/// [`Store::delete_expired`] read first.
fn expired_rows_in(
    connection: &Connection,
    select: &str,
    now: UnixMillis,
    chat: fn(&Row<'_>) -> rusqlite::Result<ExpiredChat>,
) -> Result<Vec<ExpiredRow>, StoreError> {
    let mut statement = connection.prepare_cached(select)?;
    let rows = statement.query_map(params![now], |row| {
        Ok((
            ExpiredMessage {
                id: row.get(0)?,
                chat: chat(row)?,
                attachment: row.get(4)?,
            },
            row.get(2)?,
            row.get(3)?,
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Takes each of the `expired` rows out of the search index (when indexed), then runs each of
/// `deletes` on it (`?1` the message id), in order.
fn delete_expired_rows_in(
    connection: &Connection,
    expired: &[ExpiredRow],
    deletes: &[&str],
) -> Result<(), StoreError> {
    for (message, rowid, body) in expired {
        if let Some(rowid) = rowid {
            super::search::unindex_row_in(connection, *rowid, body)?;
        }
        for delete in deletes {
            connection
                .prepare_cached(delete)?
                .execute(params![message.id])?;
        }
    }
    Ok(())
}

/// Runs `update` (`?1` the chat) once for each chat of the `expired` rows that `chat_of` picks
/// (a contact, or a group), to recount its unread messages after the deletion.
fn recount_unread_in<K: Ord + ToSql>(
    connection: &Connection,
    expired: &[ExpiredRow],
    chat_of: fn(ExpiredChat) -> Option<K>,
    update: &str,
) -> Result<(), StoreError> {
    let mut chats: Vec<K> = expired
        .iter()
        .filter_map(|(message, _, _)| chat_of(message.chat))
        .collect();
    chats.sort_unstable();
    chats.dedup();
    for chat in chats {
        connection.prepare_cached(update)?.execute(params![chat])?;
    }
    Ok(())
}

/// The group half of [`Store::delete_expired`], in its transaction: every group text whose
/// `expires_at` has passed leaves the search index (its tokens out of the pages), then its row
/// (its copies and outbox rows with it: an expired text not yet sent is not sent), and the
/// groups' unread counts are recounted.
fn delete_expired_group_messages_in(
    connection: &Connection,
    now: UnixMillis,
) -> Result<Vec<ExpiredMessage>, StoreError> {
    let expired = expired_rows_in(
        connection,
        "SELECT m.id, m.group_id, d.rowid, m.body, a.id FROM group_messages m
             LEFT JOIN search_documents d ON d.group_message_id = m.id
             LEFT JOIN attachments a ON a.group_message_id = m.id
             WHERE m.expires_at IS NOT NULL AND m.expires_at <= ?1",
        now,
        |row| Ok(ExpiredChat::Group(row.get(1)?)),
    )?;
    delete_expired_rows_in(
        connection,
        &expired,
        &["DELETE FROM group_messages WHERE id = ?1"],
    )?;
    recount_unread_in(
        connection,
        &expired,
        |chat| match chat {
            ExpiredChat::Group(group) => Some(group),
            ExpiredChat::Contact(_) => None,
        },
        "UPDATE groups SET unread_count = (SELECT count(*) FROM group_messages
                 WHERE group_id = ?1 AND direction = 0 AND kind = 0 AND state = 5) WHERE id = ?1",
    )?;
    Ok(expired.into_iter().map(|(message, _, _)| message).collect())
}

impl Store {
    /// The disappearing timer of the chat with `contact` (off when never set).
    pub fn chat_timer(&self, contact: ContactId) -> Result<ChatTimer, StoreError> {
        chat_timer_in(&self.connection, contact)
    }

    /// The earliest time a stored message expires, for the engine's sweep timer.
    pub fn next_expiry(&self) -> Result<Option<UnixMillis>, StoreError> {
        Ok(self
            .connection
            .prepare_cached(
                "SELECT min(at) FROM (
                     SELECT min(expires_at) AS at FROM messages WHERE expires_at IS NOT NULL
                     UNION ALL
                     SELECT min(expires_at) FROM group_messages WHERE expires_at IS NOT NULL)",
            )?
            .query_row([], |row| row.get(0))?)
    }

    /// Deletes every message that expired at or before `now` (see the module docs): out of the
    /// search index, out of the messages (with their outbox rows), the unread counts recounted,
    /// then the WAL checkpointed and truncated. Cheap when nothing expired (one index lookup).
    pub fn delete_expired(&mut self, now: UnixMillis) -> Result<Vec<ExpiredMessage>, StoreError> {
        let any = self
            .connection
            .prepare_cached(
                "SELECT 1 FROM messages WHERE expires_at IS NOT NULL AND expires_at <= ?1
                 UNION ALL
                 SELECT 1 FROM group_messages WHERE expires_at IS NOT NULL AND expires_at <= ?1
                 LIMIT 1",
            )?
            .query_row(params![now], |_| Ok(()))
            .optional()?
            .is_some();
        if !any {
            return Ok(Vec::new());
        }
        let transaction = self.write()?;
        let expired = expired_rows_in(
            &transaction,
            "SELECT m.id, m.contact_id, d.rowid, m.body, a.id FROM messages m
                 LEFT JOIN search_documents d ON d.message_id = m.id
                 LEFT JOIN attachments a ON a.message_id = m.id
                 WHERE m.expires_at IS NOT NULL AND m.expires_at <= ?1",
            now,
            |row| Ok(ExpiredChat::Contact(row.get(1)?)),
        )?;
        delete_expired_rows_in(
            &transaction,
            &expired,
            &[
                "DELETE FROM search_backlog WHERE message_id = ?1",
                "DELETE FROM messages WHERE id = ?1",
            ],
        )?;
        recount_unread_in(
            &transaction,
            &expired,
            |chat| match chat {
                ExpiredChat::Contact(contact) => Some(contact),
                ExpiredChat::Group(_) => None,
            },
            "UPDATE contacts SET unread_count = (SELECT count(*) FROM messages
                     WHERE contact_id = ?1 AND direction = 0 AND state = 5) WHERE id = ?1",
        )?;
        let expired_in_groups = delete_expired_group_messages_in(&transaction, now)?;
        transaction.commit()?;
        self.checkpoint_truncate()?;
        Ok(expired
            .into_iter()
            .map(|(message, _, _)| message)
            .chain(expired_in_groups)
            .collect())
    }

    /// Copies the WAL into the main file and truncates it to zero bytes, so deleted text lingers
    /// in neither (`PRAGMA wal_checkpoint(TRUNCATE)`).
    pub fn checkpoint_truncate(&mut self) -> Result<(), StoreError> {
        let busy: i64 =
            self.connection
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
        if busy != 0 {
            return Err(StoreError::Busy);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_change_wins_and_a_tie_goes_to_the_shorter_timer() {
        use DisappearingTimer::*;
        assert!(timer_change_wins((5, None), (4, Some(FiveMinutes))));
        assert!(!timer_change_wins((4, Some(FiveMinutes)), (5, None)));
        assert!(timer_change_wins((5, Some(OneHour)), (5, Some(OneDay))));
        assert!(!timer_change_wins((5, Some(OneDay)), (5, Some(OneHour))));
        assert!(timer_change_wins((5, Some(OneWeek)), (5, None)));
        assert!(!timer_change_wins((5, None), (5, Some(OneWeek))));
        assert!(!timer_change_wins((5, Some(OneHour)), (5, Some(OneHour))));
        assert!(timer_change_wins((1, None), (0, None)));
    }

    #[test]
    fn only_the_five_settings_parse() {
        assert_eq!(DisappearingTimer::setting_from_seconds(0), Some(None));
        assert_eq!(
            DisappearingTimer::setting_from_seconds(3600),
            Some(Some(DisappearingTimer::OneHour))
        );
        assert_eq!(DisappearingTimer::setting_from_seconds(3601), None);
        for timer in DisappearingTimer::ALL {
            assert_eq!(
                DisappearingTimer::from_seconds(timer.seconds()),
                Some(timer)
            );
        }
    }
}
