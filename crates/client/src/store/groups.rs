//! Groups in the store (schema V6, `docs/engine.md` § Groups): the group and its roster replica,
//! the effective members, group messages and their per-member copies, and the transaction that
//! commits one member's sealed copy.
//!
//! A group message is sealed once per member over that member's own session. The engine stores
//! the message and every copy's sealed bytes and advanced session state in ONE transaction
//! (`Store::transaction` around [`Store::insert_outgoing_group_text`] and one
//! [`Store::commit_group_copy_sealed`] per member), so a crash leaves the message with all its
//! copies or none of it.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::contacts::{CONTACT_COLUMNS, contact_from_row, write_session};
use super::expiry::DisappearingTimer;
use super::messages::{OutboxItem, SealedOutgoing};
use super::types::{ContactId, Direction, MessageId, MessageState, OutboxItemId, UnixMillis};
use super::{Missing, Store, StoreError};
use crate::group::{GroupId, GroupReplica, MemberKey, Role};

/// How far past the group's clock a peer's sequence number may jump (as for 1:1 chats,
/// `engine/sequence.rs`): a member cannot push the clock to the end of the range.
pub const MAX_GROUP_SEQ_ADVANCE: u64 = 1 << 20;

/// A group as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Its id.
    pub id: GroupId,
    /// Its name (from the replica's name register).
    pub name: String,
    /// Its description (from the replica's name register).
    pub description: String,
    /// The roster replica.
    pub replica: GroupReplica,
    /// The greatest message sequence number seen in the group.
    pub last_seq: u64,
    /// Incoming texts not read yet.
    pub unread_count: u32,
    /// When we created or joined it.
    pub created_at: UnixMillis,
    /// The last message or change.
    pub last_activity_at: UnixMillis,
}

/// One effective member, with the contact that holds its delivery addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMember {
    /// The member's identity key.
    pub key: MemberKey,
    /// Its role.
    pub role: Role,
    /// The contact with this identity key, if it is one (else it awaits its introduction).
    pub contact: Option<ContactId>,
    /// That contact's display name.
    pub display_name: Option<String>,
}

/// What a group message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupMessageKind {
    /// A text. Stored as 0.
    Text,
    /// A roster change, shown as a system line. Stored as 1.
    RosterChange,
}

impl GroupMessageKind {
    fn to_i64(self) -> i64 {
        match self {
            GroupMessageKind::Text => 0,
            GroupMessageKind::RosterChange => 1,
        }
    }
}

impl rusqlite::types::FromSql for GroupMessageKind {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        match i64::column_result(value)? {
            0 => Ok(GroupMessageKind::Text),
            1 => Ok(GroupMessageKind::RosterChange),
            other => Err(rusqlite::types::FromSqlError::OutOfRange(other)),
        }
    }
}

/// A group message as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMessage {
    /// Its id.
    pub id: MessageId,
    /// The group.
    pub group: GroupId,
    /// The author: the peer of the session it arrived on (our own key for ours).
    pub author: MemberKey,
    /// Ours or someone else's.
    pub direction: Direction,
    /// Text or roster change.
    pub kind: GroupMessageKind,
    /// Its sequence number in the group (display order, with the author).
    pub seq: u64,
    /// The text (for a roster change, the engine's description of it).
    pub body: String,
    /// Ours: when we queued it. Theirs: the sender's claimed clock (display only).
    pub sent_at: UnixMillis,
    /// Theirs: when we stored it.
    pub received_at: Option<UnixMillis>,
    /// Ours: queued until a copy is sealed and sent; theirs: received or read.
    pub state: MessageState,
    /// The disappearing timer it was sent with (`docs/engine.md` § Disappearing messages).
    pub timer: Option<DisappearingTimer>,
    /// When it expires by our clock (sent or stored, plus the timer).
    pub expires_at: Option<UnixMillis>,
}

/// One member's copy of one of our group messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupCopy {
    /// The member.
    pub member: MemberKey,
    /// Queued, on relay, delivered, read or failed.
    pub state: MessageState,
}

/// How far one of our group messages got, for "delivered to 3 of 4".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupDeliverySummary {
    /// Copies made (one per member it was sent to).
    pub total: u32,
    /// Copies delivered or read.
    pub delivered: u32,
    /// Copies read.
    pub read: u32,
}

/// Where one of our group messages stands after some of its copies moved (for the
/// `group-message-state` event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupMessageProgress {
    /// The group.
    pub group: GroupId,
    /// The message.
    pub message: MessageId,
    /// Its stored state (see [`Store::refresh_group_message_states`]).
    pub state: MessageState,
    /// Its copies' counts.
    pub summary: GroupDeliverySummary,
}

/// The state of one of our group messages, from its copies: the least advanced copy that did
/// not fail (so "delivered" means every member's device has it, "read" that every member read
/// it; the counts say how many); failed if every copy failed; `None` with no copy (a group
/// whose other members all await their introduction: nothing was sent, it stays queued).
fn aggregate_state(copies: &[GroupCopy]) -> Option<MessageState> {
    let rank = |state: MessageState| match state {
        MessageState::Queued => 0,
        MessageState::OnRelay => 1,
        MessageState::Delivered | MessageState::Received => 2,
        MessageState::Read => 3,
        MessageState::Failed => 4,
    };
    if copies.is_empty() {
        return None;
    }
    Some(
        copies
            .iter()
            .map(|copy| copy.state)
            .filter(|state| *state != MessageState::Failed)
            .min_by_key(|state| rank(*state))
            .unwrap_or(MessageState::Failed),
    )
}

fn group_copies_in(
    connection: &Connection,
    message: MessageId,
) -> Result<Vec<GroupCopy>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT member_key, state FROM group_copies WHERE message_id = ?1 ORDER BY member_key",
    )?;
    let copies = statement
        .query_map(params![message], |row| {
            Ok(GroupCopy {
                member: row.get(0)?,
                state: row.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(copies)
}

fn summarise(copies: &[GroupCopy]) -> GroupDeliverySummary {
    let count = |f: &dyn Fn(MessageState) -> bool| {
        u32::try_from(copies.iter().filter(|c| f(c.state)).count()).unwrap_or(u32::MAX)
    };
    GroupDeliverySummary {
        total: count(&|_| true),
        delivered: count(&|s| matches!(s, MessageState::Delivered | MessageState::Read)),
        read: count(&|s| s == MessageState::Read),
    }
}

const GROUP_COLUMNS: &str =
    "id, name, description, replica, last_seq, unread_count, created_at, last_activity_at";

fn group_from_row(row: &Row<'_>) -> rusqlite::Result<Group> {
    let bytes: Vec<u8> = row.get(3)?;
    let replica: GroupReplica = ciborium::from_reader(bytes.as_slice()).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(
            3,
            rusqlite::types::Type::Blob,
            Box::new(std::io::Error::other(error.to_string())),
        )
    })?;
    let last_seq: i64 = row.get(4)?;
    Ok(Group {
        id: row.get(0)?,
        name: row.get(1)?,
        description: row.get(2)?,
        replica,
        last_seq: u64::try_from(last_seq).unwrap_or(0),
        unread_count: row.get(5)?,
        created_at: row.get(6)?,
        last_activity_at: row.get(7)?,
    })
}

const GROUP_MESSAGE_COLUMNS: &str = "id, group_id, author_key, direction, kind, seq, body, \
    sent_at, received_at, state, expire_after_s, expires_at";

fn group_message_from_row(row: &Row<'_>) -> rusqlite::Result<GroupMessage> {
    let seq: i64 = row.get(5)?;
    Ok(GroupMessage {
        id: row.get(0)?,
        group: row.get(1)?,
        author: row.get(2)?,
        direction: row.get(3)?,
        kind: row.get(4)?,
        seq: u64::try_from(seq).unwrap_or(0),
        body: row.get(6)?,
        sent_at: row.get(7)?,
        received_at: row.get(8)?,
        state: row.get(9)?,
        timer: row
            .get::<_, Option<u32>>(10)?
            .and_then(DisappearingTimer::from_seconds),
        expires_at: row.get(11)?,
    })
}

/// When a message stored at `start` under `timer` expires.
fn expiry_time(start: UnixMillis, timer: DisappearingTimer) -> UnixMillis {
    UnixMillis(
        start
            .0
            .saturating_add(i64::from(timer.seconds()).saturating_mul(1000)),
    )
}

fn encode_replica(replica: &GroupReplica) -> Result<Vec<u8>, StoreError> {
    let mut bytes = Vec::with_capacity(512);
    ciborium::into_writer(replica, &mut bytes).map_err(|_| StoreError::InvalidInput {
        what: "the group replica does not encode",
    })?;
    Ok(bytes)
}

fn role_to_i64(role: Role) -> i64 {
    match role {
        Role::Member => 0,
        Role::Admin => 1,
    }
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Writes the replica, the name and description, and the effective members.
fn write_replica_in(
    transaction: &Connection,
    id: GroupId,
    replica: &GroupReplica,
    now: UnixMillis,
) -> Result<(), StoreError> {
    let info = replica.state.info();
    let indexed_name: Option<String> = transaction
        .prepare_cached("SELECT name FROM groups WHERE id = ?1")?
        .query_row(params![id], |row| row.get(0))
        .optional()?;
    if let Some(old) = indexed_name {
        super::search::reindex_group_name_in(transaction, id, &old, &info.name, now)?;
    }
    let changed = transaction
        .prepare_cached(
            "UPDATE groups SET replica = ?2, name = ?3, description = ?4, last_activity_at = ?5
             WHERE id = ?1",
        )?
        .execute(params![
            id,
            encode_replica(replica)?,
            info.name,
            info.description,
            now
        ])?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            what: Missing::Group,
        });
    }
    transaction
        .prepare_cached("DELETE FROM group_members WHERE group_id = ?1")?
        .execute(params![id])?;
    let mut insert = transaction.prepare_cached(
        "INSERT INTO group_members (group_id, identity_key, role) VALUES (?1, ?2, ?3)",
    )?;
    for (key, role) in replica.state.members() {
        insert.execute(params![id, key, role_to_i64(role)])?;
    }
    Ok(())
}

fn group_last_seq(transaction: &Connection, id: GroupId) -> Result<u64, StoreError> {
    let raw: i64 = transaction
        .prepare_cached("SELECT last_seq FROM groups WHERE id = ?1")?
        .query_row(params![id], |row| row.get(0))
        .optional()?
        .ok_or(StoreError::NotFound {
            what: Missing::Group,
        })?;
    u64::try_from(raw).map_err(|_| StoreError::CorruptRow {
        detail: "negative group last_seq".to_owned(),
    })
}

/// Inserts a group message and advances the group's clock and activity.
fn insert_group_message_in(
    transaction: &Connection,
    message: &GroupMessage,
    unread: bool,
) -> Result<bool, StoreError> {
    let inserted = transaction
        .prepare_cached(
            "INSERT OR IGNORE INTO group_messages (id, group_id, author_key, direction, kind, seq,
             body, sent_at, received_at, state, expire_after_s, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute(params![
            message.id,
            message.group,
            message.author,
            message.direction.to_i64(),
            message.kind.to_i64(),
            to_i64(message.seq),
            message.body,
            message.sent_at,
            message.received_at,
            message.state.to_i64(),
            message.timer.map(DisappearingTimer::seconds),
            message.expires_at
        ])?;
    if inserted == 0 {
        return Ok(false);
    }
    if message.kind == GroupMessageKind::Text {
        super::search::index_document_in(
            transaction,
            super::search::SearchDocument::GroupMessage(message.id),
            message.received_at.unwrap_or(message.sent_at),
            &message.body,
        )?;
    }
    transaction
        .prepare_cached(
            "UPDATE groups SET last_seq = max(last_seq, ?2), last_activity_at = ?3,
             unread_count = unread_count + ?4 WHERE id = ?1",
        )?
        .execute(params![
            message.group,
            to_i64(message.seq),
            message.received_at.unwrap_or(message.sent_at),
            i64::from(unread)
        ])?;
    Ok(true)
}

/// Settings key prefix of a group introduction held until a roster makes it valid
/// (`docs/engine.md` § Introductions): `<prefix><group>.<sender hex>.<member hex>`.
const HELD_INTRODUCTION_PREFIX: &str = "engine.group-intro-held.";

/// The most group introductions held at once (all groups, all senders): past it one is refused
/// as before, so a contact cannot grow the store without bound with introductions for groups
/// that never come.
pub const MAX_HELD_INTRODUCTIONS: usize = 256;

/// A group introduction that arrived before the roster that makes it valid, kept to be decided
/// again when the group's roster changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldIntroduction {
    /// The member whose session it arrived on.
    pub sender: MemberKey,
    /// The member it names.
    pub member: MemberKey,
    /// The invite it carries (text form).
    pub invite: String,
}

fn held_introduction_key(id: GroupId, sender: &MemberKey, member: &MemberKey) -> String {
    format!(
        "{HELD_INTRODUCTION_PREFIX}{id}.{}.{}",
        hex::encode(sender.as_bytes()),
        hex::encode(member.as_bytes())
    )
}

impl Store {
    /// Holds a group introduction until the group's roster makes it valid (idempotent: the same
    /// sender and member in the same group are held once). Returns `false`, holding nothing,
    /// when [`MAX_HELD_INTRODUCTIONS`] are held already.
    pub fn hold_group_introduction(
        &mut self,
        id: GroupId,
        introduction: &HeldIntroduction,
    ) -> Result<bool, StoreError> {
        let key = held_introduction_key(id, &introduction.sender, &introduction.member);
        let transaction = self.write()?;
        let held: i64 = transaction.query_row(
            "SELECT count(*) FROM settings WHERE substr(key, 1, ?1) = ?2 AND key != ?3",
            params![
                i64::try_from(HELD_INTRODUCTION_PREFIX.len()).unwrap_or(i64::MAX),
                HELD_INTRODUCTION_PREFIX,
                key
            ],
            |row| row.get(0),
        )?;
        if usize::try_from(held).unwrap_or(usize::MAX) >= MAX_HELD_INTRODUCTIONS {
            return Ok(false);
        }
        transaction.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, introduction.invite],
        )?;
        transaction.commit()?;
        Ok(true)
    }

    /// The introductions held for a group.
    pub fn held_group_introductions(
        &self,
        id: GroupId,
    ) -> Result<Vec<HeldIntroduction>, StoreError> {
        let prefix = format!("{HELD_INTRODUCTION_PREFIX}{id}.");
        let mut statement = self.connection.prepare(
            "SELECT key, value FROM settings WHERE substr(key, 1, ?1) = ?2 ORDER BY key",
        )?;
        let rows = statement
            .query_map(
                params![i64::try_from(prefix.len()).unwrap_or(i64::MAX), prefix],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
            )?
            .collect::<Result<Vec<_>, _>>()?;
        let member_of = |text: &str| {
            hex::decode(text)
                .ok()
                .and_then(|bytes| MemberKey::from_slice(&bytes))
        };
        Ok(rows
            .into_iter()
            .filter_map(|(key, invite)| {
                let (sender, member) = key.get(prefix.len()..)?.split_once('.')?;
                Some(HeldIntroduction {
                    sender: member_of(sender)?,
                    member: member_of(member)?,
                    invite,
                })
            })
            .collect())
    }

    /// Forgets a held introduction (applied, or refused for good).
    pub fn drop_held_group_introduction(
        &mut self,
        id: GroupId,
        sender: &MemberKey,
        member: &MemberKey,
    ) -> Result<(), StoreError> {
        let transaction = self.write()?;
        transaction.execute(
            "DELETE FROM settings WHERE key = ?1",
            params![held_introduction_key(id, sender, member)],
        )?;
        transaction.commit()?;
        Ok(())
    }
}

/// Settings key prefix of group work not done yet (`docs/engine.md` § Groups, "Nothing is
/// lost"): `<prefix><kind>.<group>.<member hex>` → what the work needs. Written in the
/// transaction that decides the work, deleted when it is done, replayed when the engine starts.
pub const PENDING_GROUP_WORK_PREFIX: &str = "engine.group-pending.";

/// The most of our group texts sealed to one member when its introduction completes (the
/// newest first): a member added long ago and never introduced gets no unbounded backlog.
pub const MAX_MISSED_GROUP_TEXTS: u32 = 200;

impl Store {
    /// Keeps a piece of group work (see [`PENDING_GROUP_WORK_PREFIX`]) until
    /// [`Store::finish_group_work`]. `key` starts with the prefix.
    pub fn pend_group_work(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        if !key.starts_with(PENDING_GROUP_WORK_PREFIX) {
            return Err(StoreError::InvalidInput {
                what: "a pending group work key",
            });
        }
        self.set_setting(key, value)
    }

    /// Every piece of group work not done yet, as (key, value), oldest key order.
    pub fn pending_group_work(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut statement = self.connection.prepare(
            "SELECT key, value FROM settings WHERE substr(key, 1, ?1) = ?2 ORDER BY key",
        )?;
        let rows = statement
            .query_map(
                params![
                    i64::try_from(PENDING_GROUP_WORK_PREFIX.len()).unwrap_or(i64::MAX),
                    PENDING_GROUP_WORK_PREFIX
                ],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Forgets a piece of group work (done, or never doable).
    pub fn finish_group_work(&mut self, key: &str) -> Result<(), StoreError> {
        let transaction = self.write()?;
        transaction.execute("DELETE FROM settings WHERE key = ?1", params![key])?;
        transaction.commit()?;
        Ok(())
    }

    /// The members (still in the group) with copies of our group texts that were never sealed:
    /// queued, with no outbox row for them (they awaited their introduction when sent).
    pub fn members_with_missed_group_texts(&self) -> Result<Vec<MemberKey>, StoreError> {
        let mut statement = self.connection.prepare(
            "SELECT DISTINCT c.member_key FROM group_copies c
             JOIN group_messages m ON m.id = c.message_id
             WHERE c.state = 0 AND m.direction = 1 AND m.kind = 0
               AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.group_message_id = m.id)
               AND EXISTS (SELECT 1 FROM group_members g
                           WHERE g.group_id = m.group_id AND g.identity_key = c.member_key)
               AND NOT EXISTS (SELECT 1 FROM outbox o JOIN contacts k ON k.id = o.contact_id
                               WHERE o.group_message_id = m.id AND k.identity_key = c.member_key)",
        )?;
        let members = statement
            .query_map([], |row| row.get(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(members)
    }

    /// After group `id`'s roster changed: the never-sealed copies of our texts for members no
    /// longer in it fail (they will never be sent them), so those messages' states move on.
    /// Returns the messages whose copy moved (each once), for
    /// [`Store::refresh_group_message_states`].
    pub fn fail_missed_copies_of_former_members(
        &mut self,
        id: GroupId,
    ) -> Result<Vec<MessageId>, StoreError> {
        let transaction = self.write()?;
        let mut moved = transaction
            .prepare(
                "UPDATE group_copies SET state = 4 WHERE state = 0
                   AND message_id IN (SELECT id FROM group_messages
                                      WHERE group_id = ?1 AND direction = 1 AND kind = 0)
                   AND NOT EXISTS (SELECT 1 FROM group_members g WHERE g.group_id = ?1
                                   AND g.identity_key = group_copies.member_key)
                   AND NOT EXISTS (SELECT 1 FROM outbox o JOIN contacts k ON k.id = o.contact_id
                                   WHERE o.group_message_id = group_copies.message_id
                                     AND k.identity_key = group_copies.member_key)
                 RETURNING message_id",
            )?
            .query_map(params![id], |row| row.get::<_, MessageId>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        transaction.commit()?;
        moved.sort_by_key(|message| message.to_string());
        moved.dedup();
        Ok(moved)
    }

    /// Our group texts `member` missed: its copy is queued and was never sealed (no outbox row
    /// for `contact`, its contact now), in groups it is still a member of; at most
    /// [`MAX_MISSED_GROUP_TEXTS`], the newest, returned oldest first.
    pub fn missed_group_texts(
        &self,
        member: &MemberKey,
        contact: ContactId,
    ) -> Result<Vec<GroupMessage>, StoreError> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT {GROUP_MESSAGE_COLUMNS} FROM group_messages m
             WHERE m.direction = 1 AND m.kind = 0
               AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.group_message_id = m.id)
               AND EXISTS (SELECT 1 FROM group_copies c
                           WHERE c.message_id = m.id AND c.member_key = ?1 AND c.state = 0)
               AND EXISTS (SELECT 1 FROM group_members g
                           WHERE g.group_id = m.group_id AND g.identity_key = ?1)
               AND NOT EXISTS (SELECT 1 FROM outbox o
                               WHERE o.group_message_id = m.id AND o.contact_id = ?2)
             ORDER BY m.sent_at DESC, m.seq DESC LIMIT ?3"
        ))?;
        let mut messages = statement
            .query_map(
                params![member, contact, i64::from(MAX_MISSED_GROUP_TEXTS)],
                group_message_from_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        messages.reverse();
        Ok(messages)
    }
}

impl Store {
    /// Stores a new group (created here, or joined from an admin's roster). Returns it.
    /// [`StoreError::Conflict`] if a group with this id exists.
    pub fn insert_group(
        &mut self,
        id: GroupId,
        replica: &GroupReplica,
        now: UnixMillis,
    ) -> Result<Group, StoreError> {
        let transaction = self.write()?;
        let info = replica.state.info();
        let inserted = transaction.execute(
            "INSERT OR IGNORE INTO groups (id, name, description, replica, created_at,
             last_activity_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![
                id,
                info.name,
                info.description,
                encode_replica(replica)?,
                now
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::Conflict {
                what: "the group already exists",
            });
        }
        super::search::index_document_in(
            &transaction,
            super::search::SearchDocument::Group(id),
            now,
            &info.name,
        )?;
        write_replica_in(&transaction, id, replica, now)?;
        transaction.commit()?;
        self.group(id)?.ok_or(StoreError::NotFound {
            what: Missing::Group,
        })
    }

    /// One group.
    pub fn group(&self, id: GroupId) -> Result<Option<Group>, StoreError> {
        Ok(self
            .connection
            .query_row(
                &format!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = ?1"),
                params![id],
                group_from_row,
            )
            .optional()?)
    }

    /// Every group, most recent activity first.
    pub fn groups(&self) -> Result<Vec<Group>, StoreError> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT {GROUP_COLUMNS} FROM groups ORDER BY last_activity_at DESC, id"
        ))?;
        let groups = statement
            .query_map([], group_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(groups)
    }

    /// Saves the replica after a roster change (ours or a peer's), with the name, description
    /// and effective members it implies.
    pub fn save_group_replica(
        &mut self,
        id: GroupId,
        replica: &GroupReplica,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let transaction = self.write()?;
        write_replica_in(&transaction, id, replica, now)?;
        transaction.commit()?;
        Ok(())
    }

    /// The effective members, with the contact holding each one's delivery addresses.
    pub fn group_members(&self, id: GroupId) -> Result<Vec<GroupMember>, StoreError> {
        let mut statement = self.connection.prepare(
            "SELECT m.identity_key, m.role, c.id, c.display_name FROM group_members m
             LEFT JOIN contacts c ON c.identity_key = m.identity_key
             WHERE m.group_id = ?1 ORDER BY m.identity_key",
        )?;
        let members = statement
            .query_map(params![id], |row| {
                let role: i64 = row.get(1)?;
                Ok(GroupMember {
                    key: row.get(0)?,
                    role: if role == 1 { Role::Admin } else { Role::Member },
                    contact: row.get(2)?,
                    display_name: row.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(members)
    }

    /// Stores our text for the group (state queued) with the next sequence number and one
    /// queued copy per recipient. Run it inside [`Store::transaction`] with the copies' seals.
    pub fn insert_outgoing_group_text(
        &mut self,
        id: GroupId,
        own_key: MemberKey,
        body: &str,
        recipients: &[MemberKey],
        now: UnixMillis,
    ) -> Result<GroupMessage, StoreError> {
        self.insert_outgoing_timed_group_text(id, own_key, body, recipients, None, now)
    }

    /// [`Store::insert_outgoing_group_text`] under the group's disappearing timer, if any: the
    /// message carries it and expires `timer` after `now` (`docs/engine.md` § Disappearing
    /// messages).
    pub fn insert_outgoing_timed_group_text(
        &mut self,
        id: GroupId,
        own_key: MemberKey,
        body: &str,
        recipients: &[MemberKey],
        timer: Option<DisappearingTimer>,
        now: UnixMillis,
    ) -> Result<GroupMessage, StoreError> {
        let transaction = self.write()?;
        let seq = group_last_seq(&transaction, id)?.saturating_add(1);
        let message = GroupMessage {
            id: MessageId::generate()?,
            group: id,
            author: own_key,
            direction: Direction::Outgoing,
            kind: GroupMessageKind::Text,
            seq,
            body: body.to_owned(),
            sent_at: now,
            received_at: None,
            state: MessageState::Queued,
            timer,
            expires_at: timer.map(|timer| expiry_time(now, timer)),
        };
        insert_group_message_in(&transaction, &message, false)?;
        let mut insert = transaction.prepare_cached(
            "INSERT INTO group_copies (message_id, member_key, state) VALUES (?1, ?2, 0)",
        )?;
        for member in recipients {
            insert.execute(params![message.id, member])?;
        }
        drop(insert);
        transaction.commit()?;
        Ok(message)
    }

    /// Stores a system line for a roster change made by `actor` (ours: `direction` outgoing).
    pub fn insert_group_roster_line(
        &mut self,
        id: GroupId,
        actor: MemberKey,
        direction: Direction,
        body: &str,
        now: UnixMillis,
    ) -> Result<GroupMessage, StoreError> {
        let transaction = self.write()?;
        let seq = group_last_seq(&transaction, id)?.saturating_add(1);
        let message = GroupMessage {
            id: MessageId::generate()?,
            group: id,
            author: actor,
            direction,
            kind: GroupMessageKind::RosterChange,
            seq,
            body: body.to_owned(),
            sent_at: now,
            received_at: Some(now),
            state: MessageState::Read,
            timer: None,
            expires_at: None,
        };
        insert_group_message_in(&transaction, &message, false)?;
        transaction.commit()?;
        Ok(message)
    }

    /// Stores a member's text. `None` if this (author, seq) is already stored (the same message
    /// again): nothing changes. [`StoreError::InvalidInput`] for a sequence number that is 0,
    /// beyond `i64::MAX`, or more than [`MAX_GROUP_SEQ_ADVANCE`] past the group's clock.
    pub fn store_incoming_group_text(
        &mut self,
        id: GroupId,
        author: MemberKey,
        seq: u64,
        body: &str,
        sent_at: UnixMillis,
        now: UnixMillis,
    ) -> Result<Option<GroupMessage>, StoreError> {
        self.store_incoming_timed_group_text(id, author, seq, body, None, sent_at, now)
    }

    /// [`Store::store_incoming_group_text`] for a text sent under a disappearing timer: it
    /// expires `timer` after `now` (when we stored it, by our clock; never the sender's claim).
    #[allow(clippy::too_many_arguments)]
    pub fn store_incoming_timed_group_text(
        &mut self,
        id: GroupId,
        author: MemberKey,
        seq: u64,
        body: &str,
        timer: Option<DisappearingTimer>,
        sent_at: UnixMillis,
        now: UnixMillis,
    ) -> Result<Option<GroupMessage>, StoreError> {
        let transaction = self.write()?;
        let last = group_last_seq(&transaction, id)?;
        if seq == 0
            || i64::try_from(seq).is_err()
            || seq > last.saturating_add(MAX_GROUP_SEQ_ADVANCE)
        {
            return Err(StoreError::InvalidInput {
                what: "group sequence number out of range",
            });
        }
        let message = GroupMessage {
            id: MessageId::generate()?,
            group: id,
            author,
            direction: Direction::Incoming,
            kind: GroupMessageKind::Text,
            seq,
            body: body.to_owned(),
            sent_at,
            received_at: Some(now),
            state: MessageState::Received,
            timer,
            expires_at: timer.map(|timer| expiry_time(now, timer)),
        };
        let stored = insert_group_message_in(&transaction, &message, true)?;
        transaction.commit()?;
        Ok(stored.then_some(message))
    }

    /// Commits one member's sealed copy of `message` (or, with `message` `None`, a roster change
    /// or receipts): the advanced session state and one outbox row per relay, bound to the group
    /// message so the relay's OK moves the copy to on relay. `sealed.message` must be `None`.
    pub fn commit_group_copy_sealed(
        &mut self,
        message: Option<MessageId>,
        sealed: &SealedOutgoing,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        if sealed.envelopes.is_empty() || sealed.message.is_some() {
            return Err(StoreError::InvalidInput {
                what: "a group copy needs envelopes and no 1:1 message",
            });
        }
        let transaction = self.write()?;
        let contact = transaction
            .prepare_cached(&format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = ?1"
            ))?
            .query_row(params![sealed.contact], contact_from_row)
            .optional()?
            .ok_or(StoreError::NotFound {
                what: Missing::Contact,
            })?;
        if let Some(reason) = contact.sending_blocked_reason() {
            return Err(StoreError::SendingBlocked { reason });
        }
        write_session(
            &transaction,
            sealed.contact,
            &sealed.session_state,
            sealed.now,
        )?;
        let mut items = Vec::with_capacity(sealed.envelopes.len());
        let mut insert = transaction.prepare_cached(
            "INSERT INTO outbox (id, contact_id, message_id, relay_url, send_id, sealed, attempts,
             next_attempt_at, created_at, group_message_id)
             VALUES (?1, ?2, NULL, ?3, ?4, ?5, 0, ?6, ?6, ?7)",
        )?;
        for envelope in &sealed.envelopes {
            let id = OutboxItemId::generate()?;
            insert.execute(params![
                id,
                sealed.contact,
                envelope.relay_url,
                envelope.send_id,
                envelope.sealed,
                sealed.now,
                message
            ])?;
            items.push(OutboxItem {
                id,
                contact: sealed.contact,
                message: None,
                relay_url: envelope.relay_url.clone(),
                send_id: envelope.send_id,
                sealed: envelope.sealed.clone(),
                attempts: 0,
                next_attempt_at: sealed.now,
                created_at: sealed.now,
            });
        }
        drop(insert);
        transaction.commit()?;
        Ok(items)
    }

    /// A member's receipts for our group messages `seqs`: moves that member's copies forward
    /// (never back). Returns the messages whose copy changed.
    pub fn apply_group_receipts(
        &mut self,
        id: GroupId,
        member: MemberKey,
        state: MessageState,
        seqs: &[u64],
    ) -> Result<Vec<MessageId>, StoreError> {
        let allowed_from = match state {
            MessageState::Delivered => "(0, 1, 4)",
            MessageState::Read => "(0, 1, 2, 4)",
            _ => {
                return Err(StoreError::InvalidInput {
                    what: "a receipt is delivered or read",
                });
            }
        };
        let transaction = self.write()?;
        let mut updated = Vec::new();
        let mut statement = transaction.prepare(&format!(
            "UPDATE group_copies SET state = ?4 WHERE member_key = ?2 AND state IN {allowed_from}
             AND message_id = (SELECT id FROM group_messages WHERE group_id = ?1 AND direction = 1
                               AND kind = 0 AND seq = ?3)
             RETURNING message_id"
        ))?;
        for seq in seqs {
            let changed: Option<MessageId> = statement
                .query_row(params![id, member, to_i64(*seq), state.to_i64()], |row| {
                    row.get(0)
                })
                .optional()?;
            updated.extend(changed);
        }
        drop(statement);
        transaction.commit()?;
        Ok(updated)
    }

    /// The per-member copies of one of our group messages.
    pub fn group_copies(&self, message: MessageId) -> Result<Vec<GroupCopy>, StoreError> {
        group_copies_in(&self.connection, message)
    }

    /// How many copies of one of our group messages were delivered and read.
    pub fn group_delivery_summary(
        &self,
        message: MessageId,
    ) -> Result<GroupDeliverySummary, StoreError> {
        Ok(summarise(&self.group_copies(message)?))
    }

    /// The group messages the given outbox items carry (look them up before the items are
    /// marked sent or given up: both delete the rows). Each message once.
    pub fn group_messages_of_outbox(
        &self,
        items: &[OutboxItemId],
    ) -> Result<Vec<MessageId>, StoreError> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT group_message_id FROM outbox WHERE id = ?1")?;
        let mut messages: Vec<MessageId> = Vec::new();
        for item in items {
            let found: Option<Option<MessageId>> = statement
                .query_row(params![item], |row| row.get(0))
                .optional()?;
            if let Some(Some(message)) = found
                && !messages.contains(&message)
            {
                messages.push(message);
            }
        }
        Ok(messages)
    }

    /// After copies of our group `messages` moved (a relay's OK, a member's receipt, a copy
    /// given up): stores each message's state as its copies imply (the least advanced copy that
    /// did not fail; failed if all failed; see `docs/engine.md` § Groups) and returns where each
    /// one stands. Messages that are not our group texts are skipped.
    pub fn refresh_group_message_states(
        &mut self,
        messages: &[MessageId],
    ) -> Result<Vec<GroupMessageProgress>, StoreError> {
        let transaction = self.write()?;
        let mut progress = Vec::with_capacity(messages.len());
        for message in messages {
            let row: Option<(GroupId, MessageState)> = transaction
                .prepare_cached(
                    "SELECT group_id, state FROM group_messages
                     WHERE id = ?1 AND direction = 1 AND kind = 0",
                )?
                .query_row(params![message], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            let Some((group, stored)) = row else {
                continue;
            };
            let copies = group_copies_in(&transaction, *message)?;
            let state = aggregate_state(&copies).unwrap_or(stored);
            if state != stored {
                transaction
                    .prepare_cached("UPDATE group_messages SET state = ?2 WHERE id = ?1")?
                    .execute(params![message, state.to_i64()])?;
            }
            progress.push(GroupMessageProgress {
                group,
                message: *message,
                state,
                summary: summarise(&copies),
            });
        }
        transaction.commit()?;
        Ok(progress)
    }

    /// The newest `limit` messages of a group before `before_seq` (all if `None`), oldest first.
    pub fn group_messages_page(
        &self,
        id: GroupId,
        before_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<GroupMessage>, StoreError> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT {GROUP_MESSAGE_COLUMNS} FROM group_messages
             WHERE group_id = ?1 AND seq < ?2 ORDER BY seq DESC, author_key DESC LIMIT ?3"
        ))?;
        let mut page = statement
            .query_map(
                params![id, to_i64(before_seq.unwrap_or(u64::MAX)), limit],
                group_message_from_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        page.reverse();
        Ok(page)
    }

    /// Marks every incoming text of the group read; returns (author, seq) of those that were
    /// unread, for read receipts.
    pub fn mark_group_read(&mut self, id: GroupId) -> Result<Vec<(MemberKey, u64)>, StoreError> {
        let transaction = self.write()?;
        let mut statement = transaction.prepare(
            "UPDATE group_messages SET state = 3 WHERE group_id = ?1 AND direction = 0
             AND state = 5 RETURNING author_key, seq",
        )?;
        let read = statement
            .query_map(params![id], |row| {
                let seq: i64 = row.get(1)?;
                Ok((row.get(0)?, u64::try_from(seq).unwrap_or(0)))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        drop(statement);
        transaction.execute(
            "UPDATE groups SET unread_count = 0 WHERE id = ?1",
            params![id],
        )?;
        transaction.commit()?;
        Ok(read)
    }

    /// Deletes a group, its members, messages and copies (outbox rows of its messages too), out
    /// of the search index first (its name and texts).
    pub fn delete_group(&mut self, id: GroupId) -> Result<(), StoreError> {
        let transaction = self.write()?;
        super::search::unindex_group_in(&transaction, id)?;
        let deleted = transaction.execute("DELETE FROM groups WHERE id = ?1", params![id])?;
        if deleted == 0 {
            return Err(StoreError::NotFound {
                what: Missing::Group,
            });
        }
        transaction.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::RosterState;
    use crate::store::NewContact;
    use crate::store::SealedEnvelopeForRelay;
    use crate::store::types::{
        IdentityKeyBytes, RelayUrl, SealedEnvelopeBytes, SendId, SessionStateBytes,
    };
    use crate::vault::DatabaseKey;

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Store,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("test.db"),
            &DatabaseKey::generate().unwrap(),
        )
        .unwrap();
        Fixture { _dir: dir, store }
    }

    fn key(n: u8) -> MemberKey {
        MemberKey::from_bytes([n; 64])
    }

    fn t(millis: i64) -> UnixMillis {
        UnixMillis(millis)
    }

    fn contact(store: &mut Store, n: u8, name: &str) -> ContactId {
        store
            .insert_contact(&NewContact {
                display_name: name.to_owned(),
                identity_key: IdentityKeyBytes::new(vec![n; 64]),
                created_at: t(1),
            })
            .unwrap()
            .id
    }

    /// We are key 1 (admin); 2 and 3 are contacts, 4 is not yet.
    fn group(store: &mut Store) -> (GroupId, GroupReplica) {
        let id = GroupId::generate().unwrap();
        let replica = GroupReplica::new(
            RosterState::genesis(key(1), "Climbing", "Tuesdays", &[key(2), key(3), key(4)])
                .unwrap(),
        );
        store.insert_group(id, &replica, t(10)).unwrap();
        (id, replica)
    }

    fn sealed(contact: ContactId, bytes: &[u8]) -> SealedOutgoing {
        SealedOutgoing {
            contact,
            message: None,
            session_state: SessionStateBytes::new(b"advanced".to_vec()),
            envelopes: vec![SealedEnvelopeForRelay {
                relay_url: RelayUrl::parse("ws://127.0.0.1:7001").unwrap(),
                send_id: SendId([9; 32]),
                sealed: SealedEnvelopeBytes::new(bytes.to_vec()),
            }],
            now: t(20),
        }
    }

    /// Our text `body` to the group `id` (key 1's) for `recipients`, with its copies for Bob and
    /// Carol sealed, in one transaction as the engine sends one; the message and its outbox items.
    fn send_to_bob_and_carol(
        store: &mut Store,
        id: GroupId,
        body: &str,
        recipients: &[MemberKey],
        bob: ContactId,
        carol: ContactId,
    ) -> (GroupMessage, Vec<OutboxItem>) {
        store
            .transaction(|store| -> Result<_, StoreError> {
                let message =
                    store.insert_outgoing_group_text(id, key(1), body, recipients, t(20))?;
                let mut items =
                    store.commit_group_copy_sealed(Some(message.id), &sealed(bob, b"to bob"))?;
                items.extend(
                    store
                        .commit_group_copy_sealed(Some(message.id), &sealed(carol, b"to carol"))?,
                );
                Ok((message, items))
            })
            .unwrap()
    }

    /// A held introduction is listed for its group only, held once per sender and member,
    /// dropped on demand, and no more than [`MAX_HELD_INTRODUCTIONS`] are held in all.
    #[test]
    fn held_introductions_are_per_group_idempotent_and_capped() {
        let mut f = fixture();
        let (one, two) = (GroupId::from_bytes([1; 16]), GroupId::from_bytes([2; 16]));
        let held = |sender: u8, member: u8, invite: &str| HeldIntroduction {
            sender: key(sender),
            member: key(member),
            invite: invite.to_owned(),
        };
        assert!(
            f.store
                .hold_group_introduction(one, &held(1, 2, "a"))
                .unwrap()
        );
        assert!(
            f.store
                .hold_group_introduction(one, &held(1, 2, "b"))
                .unwrap()
        );
        assert!(
            f.store
                .hold_group_introduction(two, &held(3, 4, "c"))
                .unwrap()
        );
        assert_eq!(
            f.store.held_group_introductions(one).unwrap(),
            vec![held(1, 2, "b")]
        );
        f.store
            .drop_held_group_introduction(one, &key(1), &key(2))
            .unwrap();
        assert!(f.store.held_group_introductions(one).unwrap().is_empty());
        assert_eq!(f.store.held_group_introductions(two).unwrap().len(), 1);
        for n in 1..MAX_HELD_INTRODUCTIONS {
            let group = GroupId::from_bytes(u128::try_from(n + 10).unwrap().to_be_bytes());
            assert!(
                f.store
                    .hold_group_introduction(group, &held(5, 6, "d"))
                    .unwrap()
            );
        }
        assert!(
            !f.store
                .hold_group_introduction(one, &held(1, 2, "e"))
                .unwrap()
        );
        assert!(f.store.held_group_introductions(one).unwrap().is_empty());
    }

    #[test]
    fn a_group_round_trips_with_its_members_and_their_contacts() {
        let mut f = fixture();
        let bob = contact(&mut f.store, 2, "Bob");
        let (id, replica) = group(&mut f.store);
        let stored = f.store.group(id).unwrap().unwrap();
        assert_eq!(stored.name, "Climbing");
        assert_eq!(stored.description, "Tuesdays");
        assert_eq!(stored.replica, replica);
        assert!(matches!(
            f.store.insert_group(id, &replica, t(11)),
            Err(StoreError::Conflict { .. })
        ));
        let members = f.store.group_members(id).unwrap();
        assert_eq!(members.len(), 4);
        assert_eq!(members[0].role, Role::Admin);
        assert_eq!(members[1].contact, Some(bob));
        assert_eq!(members[1].display_name.as_deref(), Some("Bob"));
        assert_eq!(members[3].contact, None, "key 4 awaits its introduction");
    }

    #[test]
    fn saving_a_roster_change_rewrites_name_and_members() {
        let mut f = fixture();
        let (id, mut replica) = group(&mut f.store);
        replica.state.remove(&key(1), &key(3)).unwrap();
        replica.state.rename(&key(1), "Bouldering", "").unwrap();
        f.store.save_group_replica(id, &replica, t(30)).unwrap();
        let stored = f.store.group(id).unwrap().unwrap();
        assert_eq!(stored.name, "Bouldering");
        assert_eq!(stored.replica, replica);
        let keys: Vec<MemberKey> = f
            .store
            .group_members(id)
            .unwrap()
            .iter()
            .map(|m| m.key)
            .collect();
        assert_eq!(keys, vec![key(1), key(2), key(4)]);
    }

    #[test]
    fn an_incoming_text_is_stored_once_and_bounded() {
        let mut f = fixture();
        let (id, _) = group(&mut f.store);
        let first = f
            .store
            .store_incoming_group_text(id, key(2), 1, "hi", t(5), t(6))
            .unwrap();
        assert!(first.is_some());
        let again = f
            .store
            .store_incoming_group_text(id, key(2), 1, "hi", t(5), t(7))
            .unwrap();
        assert_eq!(again, None, "the same (author, seq) is a duplicate");
        // Another author may use the same number.
        assert!(
            f.store
                .store_incoming_group_text(id, key(3), 1, "yo", t(5), t(8))
                .unwrap()
                .is_some()
        );
        for bad in [0, MAX_GROUP_SEQ_ADVANCE + 2, u64::MAX] {
            assert!(matches!(
                f.store
                    .store_incoming_group_text(id, key(2), bad, "x", t(5), t(9)),
                Err(StoreError::InvalidInput { .. })
            ));
        }
        let group = f.store.group(id).unwrap().unwrap();
        assert_eq!(group.unread_count, 2);
        assert_eq!(group.last_seq, 1);
        let read = f.store.mark_group_read(id).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(f.store.group(id).unwrap().unwrap().unread_count, 0);
        // Our next message comes after everything seen (Lamport).
        let ours = f
            .store
            .insert_outgoing_group_text(id, key(1), "hello all", &[key(2), key(3)], t(10))
            .unwrap();
        assert_eq!(ours.seq, 2);
        let page = f.store.group_messages_page(id, None, 10).unwrap();
        assert_eq!(page.len(), 3);
        assert_eq!(page.last().unwrap().id, ours.id);
    }

    #[test]
    fn a_copy_awaiting_an_introduction_is_missed_until_sealed_and_fails_on_removal() {
        let mut f = fixture();
        let bob = contact(&mut f.store, 2, "Bob");
        let carol = contact(&mut f.store, 3, "Carol");
        let (id, mut replica) = group(&mut f.store);
        // Key 4 awaits its introduction: a copy is counted, none sealed.
        let (message, items) = send_to_bob_and_carol(
            &mut f.store,
            id,
            "early",
            &[key(2), key(3), key(4)],
            bob,
            carol,
        );
        assert_eq!(
            f.store.members_with_missed_group_texts().unwrap(),
            vec![key(4)]
        );
        for item in &items {
            f.store.mark_outbox_sent(item.id).unwrap();
        }
        let progress = f.store.refresh_group_message_states(&[message.id]).unwrap();
        assert_eq!(
            progress[0].state,
            MessageState::Queued,
            "key 4's copy waits"
        );
        assert_eq!(progress[0].summary.total, 3);
        // Key 4 is removed before its introduction completed: its copy fails, the message moves.
        replica.state.remove(&key(1), &key(4)).unwrap();
        f.store.save_group_replica(id, &replica, t(30)).unwrap();
        let moved = f.store.fail_missed_copies_of_former_members(id).unwrap();
        assert_eq!(moved, vec![message.id]);
        assert!(
            f.store
                .members_with_missed_group_texts()
                .unwrap()
                .is_empty()
        );
        let progress = f.store.refresh_group_message_states(&moved).unwrap();
        assert_eq!(progress[0].state, MessageState::OnRelay);
    }

    #[test]
    fn copies_go_on_relay_then_delivered_per_member() {
        let mut f = fixture();
        let bob = contact(&mut f.store, 2, "Bob");
        let carol = contact(&mut f.store, 3, "Carol");
        let (id, _) = group(&mut f.store);
        let (message, items) = send_to_bob_and_carol(
            &mut f.store,
            id,
            "one transaction",
            &[key(2), key(3)],
            bob,
            carol,
        );
        assert_eq!(items.len(), 2);
        assert_eq!(f.store.group_delivery_summary(message.id).unwrap().total, 2);
        // Bob's relay answers OK: his copy is on relay, Carol's still queued.
        f.store.mark_outbox_sent(items[0].id).unwrap();
        let copies = f.store.group_copies(message.id).unwrap();
        assert_eq!(
            copies[0],
            GroupCopy {
                member: key(2),
                state: MessageState::OnRelay
            }
        );
        assert_eq!(
            copies[1],
            GroupCopy {
                member: key(3),
                state: MessageState::Queued
            }
        );
        // Receipts move only that member's copy, and never back.
        let changed = f
            .store
            .apply_group_receipts(id, key(3), MessageState::Read, &[message.seq])
            .unwrap();
        assert_eq!(changed, vec![message.id]);
        f.store
            .apply_group_receipts(id, key(3), MessageState::Delivered, &[message.seq])
            .unwrap();
        f.store
            .apply_group_receipts(id, key(2), MessageState::Delivered, &[message.seq])
            .unwrap();
        assert_eq!(
            f.store.group_delivery_summary(message.id).unwrap(),
            GroupDeliverySummary {
                total: 2,
                delivered: 2,
                read: 1
            }
        );
        // A receipt from someone who got no copy changes nothing.
        assert!(
            f.store
                .apply_group_receipts(id, key(4), MessageState::Read, &[message.seq])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn our_message_state_follows_its_least_advanced_live_copy() {
        let mut f = fixture();
        let bob = contact(&mut f.store, 2, "Bob");
        let carol = contact(&mut f.store, 3, "Carol");
        let (id, _) = group(&mut f.store);
        let (message, items) =
            send_to_bob_and_carol(&mut f.store, id, "hi", &[key(2), key(3)], bob, carol);
        let state = |store: &Store| {
            store
                .group_messages_page(id, None, 10)
                .unwrap()
                .into_iter()
                .find(|m| m.id == message.id)
                .unwrap()
                .state
        };
        let ids: Vec<OutboxItemId> = items.iter().map(|i| i.id).collect();
        assert_eq!(
            f.store.group_messages_of_outbox(&ids).unwrap(),
            vec![message.id]
        );
        f.store.mark_outbox_sent(items[0].id).unwrap();
        let progress = f.store.refresh_group_message_states(&[message.id]).unwrap();
        assert_eq!(
            progress[0].state,
            MessageState::Queued,
            "Carol's copy is queued"
        );
        f.store.mark_outbox_sent(items[1].id).unwrap();
        f.store.refresh_group_message_states(&[message.id]).unwrap();
        assert_eq!(state(&f.store), MessageState::OnRelay);
        f.store
            .apply_group_receipts(id, key(2), MessageState::Read, &[message.seq])
            .unwrap();
        let progress = f.store.refresh_group_message_states(&[message.id]).unwrap();
        assert_eq!(
            (
                progress[0].state,
                progress[0].summary.delivered,
                progress[0].summary.read
            ),
            (MessageState::OnRelay, 1, 1)
        );
        f.store
            .apply_group_receipts(id, key(3), MessageState::Delivered, &[message.seq])
            .unwrap();
        f.store.refresh_group_message_states(&[message.id]).unwrap();
        assert_eq!(state(&f.store), MessageState::Delivered);
        f.store
            .apply_group_receipts(id, key(3), MessageState::Read, &[message.seq])
            .unwrap();
        f.store.refresh_group_message_states(&[message.id]).unwrap();
        assert_eq!(state(&f.store), MessageState::Read);
    }

    #[test]
    fn a_failed_copy_seal_rolls_back_the_whole_message() {
        let mut f = fixture();
        let bob = contact(&mut f.store, 2, "Bob");
        let (id, _) = group(&mut f.store);
        let result = f.store.transaction(|store| -> Result<(), StoreError> {
            let message =
                store.insert_outgoing_group_text(id, key(1), "all or nothing", &[key(2)], t(20))?;
            store.commit_group_copy_sealed(Some(message.id), &sealed(bob, b"to bob"))?;
            // A copy for a contact that does not exist fails the transaction.
            store.commit_group_copy_sealed(
                Some(message.id),
                &sealed(ContactId::generate().unwrap(), b"x"),
            )?;
            Ok(())
        });
        assert!(result.is_err());
        assert!(
            f.store
                .group_messages_page(id, None, 10)
                .unwrap()
                .is_empty()
        );
        assert!(f.store.outbox().unwrap().is_empty());
    }

    #[test]
    fn deleting_a_group_deletes_its_messages_and_envelopes() {
        let mut f = fixture();
        let bob = contact(&mut f.store, 2, "Bob");
        let (id, _) = group(&mut f.store);
        let message = f
            .store
            .insert_outgoing_group_text(id, key(1), "bye", &[key(2)], t(20))
            .unwrap();
        f.store
            .commit_group_copy_sealed(Some(message.id), &sealed(bob, b"to bob"))
            .unwrap();
        f.store.delete_group(id).unwrap();
        assert_eq!(f.store.group(id).unwrap(), None);
        assert!(f.store.outbox().unwrap().is_empty());
        assert!(f.store.group_copies(message.id).unwrap().is_empty());
    }
}
