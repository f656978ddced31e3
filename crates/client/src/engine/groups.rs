//! Groups (`docs/engine.md` § Groups): pairwise fan-out over the 1:1 sessions. A group body is
//! sealed once per member over that member's own session and mailbox, all copies and the
//! stored message in ONE store transaction; the author of what arrives is the peer of the
//! session it arrived on. The roster rules and the merge live in [`crate::group`].

use std::sync::Arc;

use sealpost_relay_client::ClientError;

use super::envelope::refuse;
use super::error::EngineError;
use super::settings::read_settings;
use super::state::{Engine, Inner, backoff_delay, group_progress_event, lock, parse_contact};
use super::views::{
    AttachmentView, EngineEvent, GroupMemberView, GroupMessageView, GroupView, MessageStateView,
};

use crate::content::{
    AttachmentPointer, Body, CONTENT_VERSION, Content, MAX_TEXT_BYTES, Receipt, ReceiptKindWire,
};
use crate::group::{
    GroupError, GroupId, GroupReplica, MemberKey, Role, RosterMessage, RosterOutcome, RosterState,
};
use crate::store::{
    AttachmentChat, Contact, Direction, DisappearingTimer, Group, GroupMessage, GroupMessageKind,
    HeldIntroduction, IdentityKeyBytes, MessageId, MessageState, PENDING_GROUP_WORK_PREFIX, Store,
    StoreError, UnixMillis,
};

pub(super) fn own_key(inner: &Inner) -> MemberKey {
    MemberKey::from_bytes(inner.identity.public().to_bytes())
}

pub(super) fn parse_group(id: &str) -> Result<GroupId, EngineError> {
    id.parse().map_err(|_| EngineError::GroupNotFound)
}

fn parse_member(key: &str) -> Result<MemberKey, EngineError> {
    hex::decode(key)
        .ok()
        .and_then(|bytes| MemberKey::from_slice(&bytes))
        .ok_or_else(|| EngineError::InvalidInput("member key".into()))
}

fn contact_of(store: &Store, key: &MemberKey) -> Result<Option<Contact>, StoreError> {
    store.contact_by_identity_key(&IdentityKeyBytes::new(key.as_bytes().to_vec()))
}

pub(super) fn load_group(store: &Store, id: GroupId) -> Result<Group, EngineError> {
    store.group(id)?.ok_or(EngineError::GroupNotFound)
}

fn group_content(body: Body) -> Content {
    Content {
        v: CONTENT_VERSION,
        seq: 0,
        sent_at_ms: u64::try_from(UnixMillis::now().0).unwrap_or(0),
        body,
        receipts: Vec::new(),
    }
}

/// Seals `body` once for each recipient that is a contact we can send to, over that contact's
/// own session, and commits each copy (inside the caller's transaction). Returns the members
/// sealed to; a member without a session yet (awaiting its introduction) or blocked gets none.
pub(super) fn fan_out(
    inner: &Inner,
    store: &mut Store,
    recipients: &[MemberKey],
    body: &Body,
    message: Option<MessageId>,
) -> Result<Vec<MemberKey>, EngineError> {
    let content = group_content(body.clone());
    let mut sealed_to = Vec::with_capacity(recipients.len());
    for member in recipients {
        let Some(contact) = contact_of(store, member)? else {
            continue;
        };
        if contact.sending_blocked_reason().is_some() {
            continue;
        }
        let sealed = inner.seal_for(store, contact.id, None, &content)?;
        store.commit_group_copy_sealed(message, &sealed)?;
        sealed_to.push(*member);
    }
    Ok(sealed_to)
}

/// The members who can get a copy now (contacts we can send to).
pub(super) fn reachable(
    store: &Store,
    recipients: &[MemberKey],
) -> Result<Vec<MemberKey>, StoreError> {
    let mut out = Vec::with_capacity(recipients.len());
    for member in recipients {
        if contact_of(store, member)?.is_some_and(|c| c.sending_blocked_reason().is_none()) {
            out.push(*member);
        }
    }
    Ok(out)
}

/// The members a copy of a new text is counted for: those reachable now and those awaiting
/// their introduction (no contact yet). The latter get no envelope now; their copy stays queued
/// until the pair's session exists, then it is sealed ([`send_missed_texts`]).
fn copy_holders(store: &Store, recipients: &[MemberKey]) -> Result<Vec<MemberKey>, StoreError> {
    let mut out = Vec::with_capacity(recipients.len());
    for member in recipients {
        match contact_of(store, member)? {
            None => out.push(*member),
            Some(contact) if contact.sending_blocked_reason().is_none() => out.push(*member),
            Some(_) => {}
        }
    }
    Ok(out)
}

/// Refuses sending to group `id` unless we are one of its members.
pub(super) fn check_group_sender(
    inner: &Inner,
    store: &Store,
    id: GroupId,
) -> Result<(), EngineError> {
    load_group(store, id)?
        .replica
        .check_message(&own_key(inner))?;
    Ok(())
}

/// How many download grants a file for group `id` gets: one per member we can send to now (at
/// least one, so the blob is valid even when nobody is reachable yet).
pub(super) fn grant_count(inner: &Inner, id: GroupId) -> Result<u32, EngineError> {
    let me = own_key(inner);
    let store = lock(&inner.store);
    let group = load_group(&store, id)?;
    group.replica.check_message(&me)?;
    let recipients = reachable(&store, &group.replica.recipients(&me))?;
    Ok(u32::try_from(recipients.len()).unwrap_or(u32::MAX).max(1))
}

fn group_view(inner: &Inner, store: &Store, group: &Group) -> Result<GroupView, EngineError> {
    let me = own_key(inner);
    let members = store
        .group_members(group.id)?
        .into_iter()
        .map(|member| GroupMemberView {
            key: hex::encode(member.key.as_bytes()),
            is_admin: member.role == Role::Admin,
            contact_id: member.contact.map(|id| id.to_string()),
            display_name: member.display_name,
            is_me: member.key == me,
        })
        .collect();
    Ok(GroupView {
        id: group.id.to_string(),
        name: group.name.clone(),
        description: group.description.clone(),
        members,
        is_member: group.replica.state.is_member(&me),
        is_admin: group.replica.state.is_admin(&me),
        unread_count: group.unread_count,
        timer_seconds: DisappearingTimer::setting_seconds(group.replica.state.timer_setting()),
    })
}

fn message_view(store: &Store, message: &GroupMessage) -> Result<GroupMessageView, StoreError> {
    let summary = store.group_delivery_summary(message.id)?;
    Ok(GroupMessageView {
        id: message.id.to_string(),
        author_key: hex::encode(message.author.as_bytes()),
        author_name: contact_of(store, &message.author)?.map(|c| c.display_name),
        outgoing: message.direction == Direction::Outgoing,
        is_roster_change: message.kind == GroupMessageKind::RosterChange,
        seq: message.seq,
        text: message.body.clone(),
        sent_at: message.sent_at.0,
        state: MessageStateView::from(message.state),
        recipients: summary.total,
        delivered_to: summary.delivered,
        read_by: summary.read,
        timer_seconds: message.timer.map(DisappearingTimer::seconds),
        expires_at: message.expires_at.map(|at| at.0),
    })
}

/// A roster change by `actor`, as a system line's text (the UI words it; this is its key).
fn roster_line(before: &RosterState, after: &RosterState) -> String {
    let mut parts = Vec::new();
    for (key, role) in after.members() {
        match before.role(&key) {
            None => parts.push(format!("added:{}", hex::encode(key.as_bytes()))),
            Some(Role::Member) if role == Role::Admin => {
                parts.push(format!("promoted:{}", hex::encode(key.as_bytes())));
            }
            _ => {}
        }
    }
    for (key, _) in before.members() {
        if !after.is_member(&key) {
            parts.push(format!("removed:{}", hex::encode(key.as_bytes())));
        }
    }
    if before.info() != after.info() {
        parts.push("renamed".to_owned());
    }
    if before.timer() != after.timer() {
        let seconds = DisappearingTimer::setting_seconds(after.timer_setting());
        parts.push(format!("timer:{seconds}"));
    }
    parts.join(" ")
}

impl Engine {
    /// `create_group`: a new group with us as its admin and these contacts as members; the
    /// roster goes to each of them over their own session, in one transaction with the group.
    pub async fn create_group(
        &self,
        name: &str,
        description: &str,
        contact_ids: &[String],
    ) -> Result<GroupView, EngineError> {
        let (name, description) = (name.to_owned(), description.to_owned());
        let contact_ids = contact_ids.to_vec();
        self.inner
            .blocking(move |inner| {
                let me = own_key(inner);
                let now = UnixMillis::now();
                let mut store = lock(&inner.store);
                let mut members = Vec::with_capacity(contact_ids.len());
                for id in &contact_ids {
                    let contact = store
                        .contact(parse_contact(id)?)?
                        .ok_or(EngineError::ContactNotFound)?;
                    members.push(
                        MemberKey::from_slice(contact.identity_key.as_bytes()).ok_or(
                            EngineError::KeyLength {
                                expected: crate::group::MEMBER_KEY_LEN,
                                found: contact.identity_key.as_bytes().len(),
                            },
                        )?,
                    );
                }
                let state = RosterState::genesis(me, name.trim(), description.trim(), &members)?;
                let id = GroupId::generate()?;
                let replica = GroupReplica::new(state.clone());
                let group = store.transaction(|store| -> Result<Group, EngineError> {
                    let group = store.insert_group(id, &replica, now)?;
                    store.insert_group_roster_line(id, me, Direction::Outgoing, "created", now)?;
                    let body = Body::GroupRoster {
                        group_id: id,
                        change: RosterMessage::State(state),
                    };
                    fan_out(inner, store, &members, &body, None)?;
                    Ok(group)
                })?;
                let view = group_view(inner, &store, &group)?;
                drop(store);
                inner.outbox_wake.notify_one();
                Ok(view)
            })
            .await
    }

    /// `list_groups`: every group, most recent activity first.
    pub async fn list_groups(&self) -> Result<Vec<GroupView>, EngineError> {
        self.inner
            .blocking(|inner| {
                let store = lock(&inner.store);
                store
                    .groups()?
                    .iter()
                    .map(|group| group_view(inner, &store, group))
                    .collect()
            })
            .await
    }

    /// `get_group`: one group with its members.
    pub async fn get_group(&self, group_id: &str) -> Result<GroupView, EngineError> {
        let id = parse_group(group_id)?;
        self.inner
            .blocking(move |inner| {
                let store = lock(&inner.store);
                let group = load_group(&store, id)?;
                group_view(inner, &store, &group)
            })
            .await
    }

    /// `get_group_messages`: at most `limit` messages with `seq < before_seq`, oldest first.
    pub async fn get_group_messages(
        &self,
        group_id: &str,
        before_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<GroupMessageView>, EngineError> {
        let id = parse_group(group_id)?;
        self.inner
            .on_store(move |store| {
                load_group(store, id)?;
                store
                    .group_messages_page(id, before_seq, limit.clamp(1, 500))?
                    .iter()
                    .map(|message| Ok(message_view(store, message)?))
                    .collect()
            })
            .await
    }

    /// `send_group_message`: stores the text, seals one copy per member over that member's own
    /// session and queues them, all in ONE transaction (§3a.1). A removed member gets none.
    pub async fn send_group_message(
        &self,
        group_id: &str,
        text: &str,
    ) -> Result<GroupMessageView, EngineError> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(EngineError::MessageTooLong);
        }
        if text.trim().is_empty() {
            return Err(EngineError::InvalidInput("empty message".into()));
        }
        let id = parse_group(group_id)?;
        let text = text.to_owned();
        self.inner
            .blocking(move |inner| {
                let me = own_key(inner);
                // The engine's clock: a timed text expires by it (`engine/disappearing.rs`).
                let now = inner.clock.now();
                let mut store = lock(&inner.store);
                inner.sweep_expired(&mut store)?;
                let group = load_group(&store, id)?;
                group.replica.check_message(&me)?;
                let members = group.replica.recipients(&me);
                let recipients = reachable(&store, &members)?;
                // Members awaiting their introduction count too (§ Nothing is lost).
                let holders = copy_holders(&store, &members)?;
                // Every text carries the group's timer as it is when it is sent.
                let timer = group.replica.state.timer_setting();
                let message = store.transaction(|store| -> Result<GroupMessage, EngineError> {
                    let message = store
                        .insert_outgoing_timed_group_text(id, me, &text, &holders, timer, now)?;
                    let body = match timer {
                        None => Body::GroupText {
                            group_id: id,
                            seq: message.seq,
                            text: text.clone(),
                        },
                        Some(timer) => Body::GroupTimedText {
                            group_id: id,
                            seq: message.seq,
                            text: text.clone(),
                            timer_secs: timer.seconds(),
                        },
                    };
                    fan_out(inner, store, &recipients, &body, Some(message.id))?;
                    Ok(message)
                })?;
                let view = message_view(&store, &message)?;
                drop(store);
                inner.outbox_wake.notify_one();
                Ok(view)
            })
            .await
    }

    /// `add_group_member` (admin): adds a contact; the new roster goes to every member, the new
    /// one included.
    pub async fn add_group_member(
        &self,
        group_id: &str,
        contact_id: &str,
    ) -> Result<GroupView, EngineError> {
        let contact = parse_contact(contact_id)?;
        let target = self
            .inner
            .on_store(move |store| {
                let contact = store
                    .contact(contact)?
                    .ok_or(EngineError::ContactNotFound)?;
                MemberKey::from_slice(contact.identity_key.as_bytes()).ok_or(
                    EngineError::KeyLength {
                        expected: crate::group::MEMBER_KEY_LEN,
                        found: contact.identity_key.as_bytes().len(),
                    },
                )
            })
            .await?;
        self.change_roster(group_id, move |state, me| state.add(me, target))
            .await
    }

    /// `remove_group_member` (admin): the removed member gets no envelope of this change or any
    /// later one; the others get the new roster.
    pub async fn remove_group_member(
        &self,
        group_id: &str,
        member_key: &str,
    ) -> Result<GroupView, EngineError> {
        self.change_member(group_id, member_key, RosterState::remove)
            .await
    }

    /// `promote_group_member` (admin): makes a member an admin.
    pub async fn promote_group_member(
        &self,
        group_id: &str,
        member_key: &str,
    ) -> Result<GroupView, EngineError> {
        self.change_member(group_id, member_key, RosterState::promote)
            .await
    }

    /// `rename_group` (admin): a new name and description.
    pub async fn rename_group(
        &self,
        group_id: &str,
        name: &str,
        description: &str,
    ) -> Result<GroupView, EngineError> {
        let (name, description) = (name.trim().to_owned(), description.trim().to_owned());
        self.change_roster(group_id, move |state, me| {
            state.rename(me, &name, &description)
        })
        .await
    }

    /// `set_group_timer` (admin): sets the group's disappearing timer (`seconds`: 0 = off, or
    /// 300, 3600, 86400, 604800) for every member. It is a register of the roster, so it travels
    /// and merges like a rename: a non-admin's change is refused here (`group_not_admin`) and
    /// held, never applied, by the members (`docs/engine.md` § Disappearing messages).
    pub async fn set_group_timer(
        &self,
        group_id: &str,
        seconds: u32,
    ) -> Result<GroupView, EngineError> {
        let timer = DisappearingTimer::setting_from_seconds(seconds)
            .ok_or_else(|| EngineError::InvalidInput("timer seconds".into()))?;
        self.change_roster(group_id, move |state, me| state.set_timer(me, timer))
            .await
    }

    /// `leave_group`: we leave; every other member is told (an admin sends its whole roster).
    pub async fn leave_group(&self, group_id: &str) -> Result<GroupView, EngineError> {
        let id = parse_group(group_id)?;
        self.inner
            .blocking(move |inner| {
                let me = own_key(inner);
                let now = UnixMillis::now();
                let mut store = lock(&inner.store);
                let mut group = load_group(&store, id)?;
                let recipients = group.replica.recipients(&me);
                let change = group.replica.leave(&me)?;
                store.transaction(|store| -> Result<(), EngineError> {
                    store.save_group_replica(id, &group.replica, now)?;
                    store.insert_group_roster_line(id, me, Direction::Outgoing, "left", now)?;
                    let body = Body::GroupRoster {
                        group_id: id,
                        change,
                    };
                    fan_out(inner, store, &recipients, &body, None)?;
                    Ok(())
                })?;
                let group = load_group(&store, id)?;
                let view = group_view(inner, &store, &group)?;
                drop(store);
                inner.outbox_wake.notify_one();
                Ok(view)
            })
            .await
    }

    /// `mark_group_read`: every incoming text read; read receipts go to their authors if the
    /// setting is on.
    pub async fn mark_group_read(&self, group_id: &str) -> Result<(), EngineError> {
        let id = parse_group(group_id)?;
        self.inner
            .blocking(move |inner| {
                let mut store = lock(&inner.store);
                load_group(&store, id)?;
                let read = store.mark_group_read(id)?;
                if read.is_empty() || !read_settings(&store)?.read_receipts {
                    return Ok(());
                }
                let mut by_author: std::collections::BTreeMap<MemberKey, Vec<u64>> =
                    Default::default();
                for (author, seq) in read {
                    by_author.entry(author).or_default().push(seq);
                }
                store.transaction(|store| -> Result<(), EngineError> {
                    for (author, seqs) in by_author {
                        let body = Body::GroupReceipts {
                            group_id: id,
                            receipts: seqs
                                .into_iter()
                                .map(|seq| Receipt {
                                    kind: ReceiptKindWire::Read,
                                    seq,
                                })
                                .collect(),
                        };
                        fan_out(inner, store, &[author], &body, None)?;
                    }
                    Ok(())
                })?;
                drop(store);
                inner.outbox_wake.notify_one();
                Ok(())
            })
            .await
    }

    /// An admin's roster operation on one existing member, named by its hex key (see
    /// [`Self::change_roster`]).
    async fn change_member(
        &self,
        group_id: &str,
        member_key: &str,
        op: impl FnOnce(&mut RosterState, &MemberKey, &MemberKey) -> Result<(), GroupError>
        + Send
        + 'static,
    ) -> Result<GroupView, EngineError> {
        let target = parse_member(member_key)?;
        self.change_roster(group_id, move |state, me| op(state, me, &target))
            .await
    }

    /// An admin's roster operation: applied to our replica (with its role check), saved, and
    /// the new roster sealed to every member after the change, in ONE transaction.
    async fn change_roster(
        &self,
        group_id: &str,
        op: impl FnOnce(&mut RosterState, &MemberKey) -> Result<(), GroupError> + Send + 'static,
    ) -> Result<GroupView, EngineError> {
        let id = parse_group(group_id)?;
        self.inner
            .blocking(move |inner| {
                let me = own_key(inner);
                let now = UnixMillis::now();
                let mut store = lock(&inner.store);
                let mut group = load_group(&store, id)?;
                let before = group.replica.state.clone();
                op(&mut group.replica.state, &me)?;
                let line = roster_line(&before, &group.replica.state);
                let mut follow_ups = Vec::new();
                // Everyone before and after the change: a removed member learns of its removal from
                // this envelope, the last one sealed to it.
                let mut recipients = group.replica.recipients(&me);
                for (member, _) in before.members() {
                    if member != me && !recipients.contains(&member) {
                        recipients.push(member);
                    }
                }
                store.transaction(|store| -> Result<(), EngineError> {
                    store.save_group_replica(id, &group.replica, now)?;
                    store.insert_group_roster_line(id, me, Direction::Outgoing, &line, now)?;
                    let body = Body::GroupRoster {
                        group_id: id,
                        change: RosterMessage::State(group.replica.state.clone()),
                    };
                    fan_out(inner, store, &recipients, &body, None)?;
                    // Our own change can make a held introduction valid (a member we added).
                    release_held_introductions(store, me, id, &mut follow_ups)?;
                    let moved = store.fail_missed_copies_of_former_members(id)?;
                    store.refresh_group_message_states(&moved)?;
                    Ok(())
                })?;
                let group = load_group(&store, id)?;
                let view = group_view(inner, &store, &group)?;
                drop(store);
                inner.outbox_wake.notify_one();
                spawn_follow_ups(inner, follow_ups);
                Ok(view)
            })
            .await
    }
}

/// How often a CREATE for an introduction is tried while the relay refuses it for its rate.
const INTRODUCTION_ATTEMPTS: u32 = 120;

/// The longest wait between two such tries.
const INTRODUCTION_BACKOFF_CAP: std::time::Duration = std::time::Duration::from_secs(8);

/// Settings key prefix: an introduction invite's id → the member (hex identity key) it is for.
const INTRODUCTION_FOR: &str = "engine.group-introduction-for.";

/// Whether `record` is an introduction invite made for a member other than `sender`.
pub(super) fn introduction_for_someone_else(
    inner: &Inner,
    record: &crate::store::InviteRecord,
    sender: &IdentityKeyBytes,
) -> Result<bool, EngineError> {
    let made_for = lock(&inner.store).setting(&format!("{INTRODUCTION_FOR}{}", record.id))?;
    Ok(made_for.is_some_and(|member| member != hex::encode(sender.as_bytes())))
}

/// Work to do after the receive run that carried a group body commits (it seals, so it must not
/// run inside the run, whose sessions are held in memory until the commit).
enum FollowUp {
    /// A delivery receipt for `seq` to `author`.
    Delivered {
        group: GroupId,
        author: MemberKey,
        seq: u64,
    },
    /// Make a one-use introduction invite for `member` and send it to the admin `via`.
    Introduce {
        group: GroupId,
        member: MemberKey,
        via: MemberKey,
    },
    /// Pass `invite` (made by a member for `member`) on to `member`.
    Forward {
        group: GroupId,
        member: MemberKey,
        invite: String,
    },
    /// Accept an introduction invite (made by `inviter`) passed to us.
    Accept {
        group: GroupId,
        inviter: MemberKey,
        invite: String,
    },
    /// (We are an admin and our roster just changed by someone else's message.) Send our whole
    /// roster to every other member but `except`.
    Gossip { group: GroupId, except: MemberKey },
}

impl FollowUp {
    /// The settings row that keeps this work until it is done (`docs/engine.md` § Groups,
    /// "Nothing is lost"); `None` for work that is not kept (receipts, gossip).
    fn pending_row(&self) -> Option<(String, String)> {
        let (kind, group, member, value) = match self {
            Self::Introduce { group, member, via } => {
                ("introduce", group, member, hex::encode(via.as_bytes()))
            }
            Self::Forward {
                group,
                member,
                invite,
            } => ("forward", group, member, invite.clone()),
            Self::Accept {
                group,
                inviter,
                invite,
            } => ("accept", group, inviter, invite.clone()),
            Self::Delivered { .. } | Self::Gossip { .. } => return None,
        };
        Some((
            format!(
                "{PENDING_GROUP_WORK_PREFIX}{kind}.{group}.{}",
                hex::encode(member.as_bytes())
            ),
            value,
        ))
    }

    /// The work a kept row describes (`None`: a row this version does not understand).
    fn from_pending_row(key: &str, value: &str) -> Option<Self> {
        let rest = key.strip_prefix(PENDING_GROUP_WORK_PREFIX)?;
        let mut parts = rest.splitn(3, '.');
        let (kind, group, member) = (parts.next()?, parts.next()?, parts.next()?);
        let group: GroupId = group.parse().ok()?;
        let key_of = |text: &str| {
            hex::decode(text)
                .ok()
                .and_then(|bytes| MemberKey::from_slice(&bytes))
        };
        let member = key_of(member)?;
        match kind {
            "introduce" => Some(Self::Introduce {
                group,
                member,
                via: key_of(value)?,
            }),
            "forward" => Some(Self::Forward {
                group,
                member,
                invite: value.to_owned(),
            }),
            "accept" => Some(Self::Accept {
                group,
                inviter: member,
                invite: value.to_owned(),
            }),
            _ => None,
        }
    }
}

/// Queues `follow_up`, keeping it in the store first when it is work that must survive a
/// restart (inside the caller's transaction, with the decision that made it).
fn pend(
    store: &mut Store,
    follow_ups: &mut Vec<FollowUp>,
    follow_up: FollowUp,
) -> Result<(), StoreError> {
    if let Some((key, value)) = follow_up.pending_row() {
        store.pend_group_work(&key, &value)?;
    }
    follow_ups.push(follow_up);
    Ok(())
}

/// How often kept group work that could not finish for now runs again, and missed texts are
/// looked for (`docs/engine.md` § Groups, "Nothing is lost").
pub const GROUP_WORK_SWEEP: std::time::Duration = std::time::Duration::from_secs(20);

/// Whether a follow-up that failed with `error` may succeed if run again later: the relay was
/// unreachable or refused it for its rate, or the store or runtime was busy. Anything else (a
/// corrupt, expired or used invite, a group we left) fails for good.
fn may_succeed_later(error: &EngineError) -> bool {
    matches!(
        error,
        EngineError::RelayUnreachable(_)
            | EngineError::Storage(_)
            | EngineError::BlockingTask(_)
            | EngineError::SubscriberGone(_)
    )
}

/// Runs `follow_ups` in order on a tracked task. Each kept one is forgotten when done, or when
/// it failed for good; one that may succeed later stays kept and is parked: the group-work sweep
/// ([`group_work_loop`]) runs it again, and so does the next start.
fn spawn_follow_ups(inner: &Arc<Inner>, follow_ups: Vec<FollowUp>) {
    if follow_ups.is_empty() {
        return;
    }
    let engine = Engine {
        inner: inner.clone(),
    };
    let task = tokio::spawn(async move {
        for follow_up in follow_ups {
            let row = follow_up.pending_row();
            let result = engine.follow_up(follow_up).await;
            if let Err(error) = &result {
                tracing::warn!(%error, "group follow-up failed");
            }
            let Some((key, _)) = row else { continue };
            if result.as_ref().is_err_and(may_succeed_later) {
                lock(&engine.inner.parked_group_work).insert(key);
                continue;
            }
            if let Err(error) = engine
                .inner
                .on_store(move |store| Ok(store.finish_group_work(&key)?))
                .await
            {
                tracing::warn!(%error, "group follow-up not forgotten");
            }
        }
    });
    inner.track(task);
}

/// On start (`docs/engine.md` § Groups, "Nothing is lost"): the group work kept but not done
/// when the app stopped runs again, and our texts that members missed while they awaited an
/// introduction that has completed meanwhile are sealed to them.
pub(super) fn resume_group_work(inner: &Arc<Inner>) -> Result<(), EngineError> {
    resume_kept_work(inner, |_| true)?;
    send_missed_texts(inner)
}

/// Spawns the kept group work whose key `chosen` accepts; forgets rows this version cannot read.
fn resume_kept_work(inner: &Arc<Inner>, chosen: impl Fn(&str) -> bool) -> Result<(), EngineError> {
    let rows = lock(&inner.store).pending_group_work()?;
    let mut follow_ups = Vec::new();
    for (key, value) in rows.into_iter().filter(|(key, _)| chosen(key)) {
        match FollowUp::from_pending_row(&key, &value) {
            Some(follow_up) => follow_ups.push(follow_up),
            None => lock(&inner.store).finish_group_work(&key)?,
        }
    }
    spawn_follow_ups(inner, follow_ups);
    Ok(())
}

/// Every [`GROUP_WORK_SWEEP`] while the engine runs: the parked group work runs again, and our
/// texts a newly introduced member missed are sealed to it, so no missed wake-up (a relay that
/// refused for its rate for longer than the retries last, a trigger lost to a race) can keep a
/// group text from a member for longer than one sweep.
pub(super) async fn group_work_loop(weak: std::sync::Weak<Inner>) {
    loop {
        tokio::time::sleep(GROUP_WORK_SWEEP).await;
        let Some(inner) = weak.upgrade() else { return };
        let parked = std::mem::take(&mut *lock(&inner.parked_group_work));
        let swept = inner
            .blocking(move |inner| {
                if !parked.is_empty() {
                    resume_kept_work(inner, |key| parked.contains(key))?;
                }
                send_missed_texts(inner)
            })
            .await;
        if let Err(error) = swept {
            tracing::warn!(%error, "group work sweep failed");
        }
    }
}

/// Seals to each member with copies of our group texts never sealed (it awaited its
/// introduction when they were sent) and a session now, the newest
/// [`crate::store::MAX_MISSED_GROUP_TEXTS`] of them, in ONE transaction; the copies then move
/// with the relay's OK and the member's receipts like any other, and so do the messages' states.
/// Called when a pair's session is made (either side) and on start.
pub(super) fn send_missed_texts(inner: &Inner) -> Result<(), EngineError> {
    let mut store = lock(&inner.store);
    let mut sealed_any = false;
    for member in store.members_with_missed_group_texts()? {
        let Some(contact) = contact_of(&store, &member)? else {
            continue;
        };
        if contact.sending_blocked_reason().is_some() {
            continue;
        }
        let missed = store.missed_group_texts(&member, contact.id)?;
        if missed.is_empty() {
            continue;
        }
        store.transaction(|store| -> Result<(), EngineError> {
            for message in &missed {
                let content = Content {
                    v: CONTENT_VERSION,
                    seq: 0,
                    sent_at_ms: u64::try_from(message.sent_at.0).unwrap_or(0),
                    // The timer it was sent with, as when it was sent.
                    body: match message.timer {
                        None => Body::GroupText {
                            group_id: message.group,
                            seq: message.seq,
                            text: message.body.clone(),
                        },
                        Some(timer) => Body::GroupTimedText {
                            group_id: message.group,
                            seq: message.seq,
                            text: message.body.clone(),
                            timer_secs: timer.seconds(),
                        },
                    },
                    receipts: Vec::new(),
                };
                let sealed = inner.seal_for(store, contact.id, None, &content)?;
                store.commit_group_copy_sealed(Some(message.id), &sealed)?;
            }
            Ok(())
        })?;
        sealed_any = true;
    }
    drop(store);
    if sealed_any {
        inner.outbox_wake.notify_one();
    }
    Ok(())
}

/// The group bodies' receive path, called from the receive run with the store lock held, after
/// the ratchet opened the envelope from `peer` (the session's peer: the author, whatever the
/// content says). Refusals are reported and change nothing; only storage errors return `Err`.
/// Everything it writes is idempotent (a group message is unique per author and seq, the roster
/// merge is a join, receipts only move forward), so a run whose commit fails and is delivered
/// again writes nothing twice.
pub(super) fn receive_group_body(
    inner: &Arc<Inner>,
    store: &mut Store,
    peer: &Contact,
    body: Body,
    sent_at_ms: u64,
) -> Result<(), EngineError> {
    let Some(sender) = MemberKey::from_slice(peer.identity_key.as_bytes()) else {
        refuse(inner, "group: the peer's identity key has the wrong length")?;
        return Ok(());
    };
    let me = own_key(inner);
    // The engine's clock: a timed text expires by it (`engine/disappearing.rs`).
    let now = inner.clock.now();
    let mut follow_ups = Vec::new();
    let mut events = Vec::new();
    let result = match body {
        Body::GroupText {
            group_id,
            seq,
            text,
        } => receive_text(
            store,
            group_id,
            sender,
            ReceivedText {
                seq,
                text: &text,
                timer: None,
                sent_at_ms,
            },
            now,
            &mut follow_ups,
            &mut events,
        ),
        Body::GroupTimedText {
            group_id,
            seq,
            text,
            timer_secs,
        } => match DisappearingTimer::from_seconds(timer_secs) {
            None => Ok(Err(format!(
                "a text with an unknown timer of {timer_secs} s"
            ))),
            Some(timer) => receive_text(
                store,
                group_id,
                sender,
                ReceivedText {
                    seq,
                    text: &text,
                    timer: Some(timer),
                    sent_at_ms,
                },
                now,
                &mut follow_ups,
                &mut events,
            ),
        },
        Body::GroupRoster { group_id, change } => receive_roster(
            store,
            me,
            group_id,
            sender,
            change,
            now,
            &mut follow_ups,
            &mut events,
        ),
        Body::GroupReceipts { group_id, receipts } => {
            receive_receipts(store, group_id, sender, &receipts, &mut events)
        }
        Body::GroupIntroduction {
            group_id,
            member,
            invite,
        } => receive_introduction(store, me, group_id, sender, member, invite, &mut follow_ups),
        Body::GroupAttachment {
            group_id,
            seq,
            pointer,
        } => receive_attachment(
            store,
            group_id,
            sender,
            seq,
            &pointer,
            sent_at_ms,
            now,
            &mut follow_ups,
            &mut events,
        ),
        _ => Ok(Ok(())),
    };
    match result {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => {
            refuse(inner, format!("group: {reason}"))?;
        }
        Err(error) if error.is_item_level() => {
            refuse(inner, format!("group: {error}"))?;
        }
        Err(error) => return Err(error.into()),
    }
    // What was stored is committed already (each group write is its own transaction), so the
    // UI that reacts to these events reads it.
    for event in events {
        if matches!(event, EngineEvent::AttachmentUpdated { .. }) {
            // A small image downloads at once: the transfer task looks now.
            inner.attachment_wake.notify_one();
        }
        inner.emit(event);
    }
    spawn_follow_ups(inner, follow_ups);
    Ok(())
}

/// A refusal reason, or a storage error.
type Decision = Result<Result<(), String>, StoreError>;

/// A group text as it arrived (plain or timed).
struct ReceivedText<'a> {
    /// The author's sequence number in the group.
    seq: u64,
    /// The text.
    text: &'a str,
    /// The disappearing timer it was sent with.
    timer: Option<DisappearingTimer>,
    /// The sender's claimed clock.
    sent_at_ms: u64,
}

fn receive_text(
    store: &mut Store,
    id: GroupId,
    sender: MemberKey,
    received: ReceivedText<'_>,
    now: UnixMillis,
    follow_ups: &mut Vec<FollowUp>,
    events: &mut Vec<EngineEvent>,
) -> Decision {
    let ReceivedText {
        seq,
        text,
        timer,
        sent_at_ms,
    } = received;
    let Some(group) = store.group(id)? else {
        return Ok(Err("a message for a group we are not in".into()));
    };
    if let Err(error) = group.replica.check_message(&sender) {
        return Ok(Err(format!("a message from a non-member refused: {error}")));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Ok(Err("a message too long".into()));
    }
    let sent_at = UnixMillis(i64::try_from(sent_at_ms).unwrap_or(0));
    if let Some(message) =
        store.store_incoming_timed_group_text(id, sender, seq, text, timer, sent_at, now)?
    {
        events.push(EngineEvent::GroupMessageReceived {
            group_id: id.to_string(),
            message: message_view(store, &message)?,
        });
        follow_ups.push(FollowUp::Delivered {
            group: id,
            author: sender,
            seq,
        });
    }
    Ok(Ok(()))
}

/// A member's file for the group: stored as a group message (its text is the file name, the
/// author the session's peer) with the attachment row, in one transaction; fetched like a 1:1
/// file. Refused from a non-member, for a group we are not in, or out of its bounds.
#[allow(clippy::too_many_arguments)]
fn receive_attachment(
    store: &mut Store,
    id: GroupId,
    sender: MemberKey,
    seq: u64,
    pointer: &AttachmentPointer,
    sent_at_ms: u64,
    now: UnixMillis,
    follow_ups: &mut Vec<FollowUp>,
    events: &mut Vec<EngineEvent>,
) -> Decision {
    let Some(group) = store.group(id)? else {
        return Ok(Err("a file for a group we are not in".into()));
    };
    if let Err(error) = group.replica.check_message(&sender) {
        return Ok(Err(format!("a file from a non-member refused: {error}")));
    }
    let Some(mut row) = super::receive_step::incoming_attachment(pointer) else {
        return Ok(Err("a file pointer out of its bounds".into()));
    };
    row.chat = AttachmentChat::Group(id);
    // The timer the author sent it with (§ Disappearing messages): it expires with its text.
    let timer = match pointer.timer_secs {
        None => None,
        Some(seconds) => match DisappearingTimer::from_seconds(seconds) {
            Some(timer) => Some(timer),
            None => return Ok(Err(format!("a file with an unknown timer of {seconds} s"))),
        },
    };
    let sent_at = UnixMillis(i64::try_from(sent_at_ms).unwrap_or(0));
    let stored = store.transaction(|store| -> Result<Option<GroupMessage>, StoreError> {
        let Some(message) = store.store_incoming_timed_group_text(
            id,
            sender,
            seq,
            &row.file_name,
            timer,
            sent_at,
            now,
        )?
        else {
            return Ok(None);
        };
        row.message = Some(message.id);
        store.insert_attachment(&row)?;
        Ok(Some(message))
    })?;
    if let Some(message) = stored {
        events.push(EngineEvent::GroupMessageReceived {
            group_id: id.to_string(),
            message: message_view(store, &message)?,
        });
        events.push(EngineEvent::AttachmentUpdated {
            attachment: AttachmentView::from(&row),
        });
        follow_ups.push(FollowUp::Delivered {
            group: id,
            author: sender,
            seq,
        });
    }
    Ok(Ok(()))
}

#[allow(clippy::too_many_arguments)]
fn receive_roster(
    store: &mut Store,
    me: MemberKey,
    id: GroupId,
    sender: MemberKey,
    change: RosterMessage,
    now: UnixMillis,
    follow_ups: &mut Vec<FollowUp>,
    events: &mut Vec<EngineEvent>,
) -> Decision {
    let Some(mut group) = store.group(id)? else {
        // Joining: an admin's roster naming us, from the admin itself.
        let RosterMessage::State(state) = change else {
            return Ok(Err("a leave for a group we are not in".into()));
        };
        if !state.is_admin(&sender) || !state.is_member(&me) {
            return Ok(Err("a roster for an unknown group not from an admin".into()));
        }
        let replica = GroupReplica::new(state);
        store.insert_group(id, &replica, now)?;
        store.insert_group_roster_line(id, sender, Direction::Incoming, "joined", now)?;
        events.push(EngineEvent::GroupRosterChanged {
            group_id: id.to_string(),
            is_member: true,
        });
        introductions(store, me, id, sender, &replica.state, follow_ups)?;
        release_held_introductions(store, me, id, follow_ups)?;
        return Ok(Ok(()));
    };
    let before = group.replica.state.clone();
    let had_held = group.replica.has_held();
    let outcome = match group.replica.receive_roster(&sender, change) {
        Ok(outcome) => outcome,
        Err(error) => return Ok(Err(format!("a malformed roster change: {error}"))),
    };
    match outcome {
        RosterOutcome::Applied { changed: false } => Ok(Ok(())),
        RosterOutcome::Applied { changed: true } => {
            store.save_group_replica(id, &group.replica, now)?;
            let line = roster_line(&before, &group.replica.state);
            if !line.is_empty() {
                store.insert_group_roster_line(id, sender, Direction::Incoming, &line, now)?;
            }
            events.push(EngineEvent::GroupRosterChanged {
                group_id: id.to_string(),
                is_member: group.replica.state.is_member(&me),
            });
            if group.replica.state.is_admin(&sender) {
                introductions(store, me, id, sender, &group.replica.state, follow_ups)?;
            }
            release_held_introductions(store, me, id, follow_ups)?;
            // A member removed before its introduction completed never gets our texts.
            let moved = store.fail_missed_copies_of_former_members(id)?;
            let progress = store.refresh_group_message_states(&moved)?;
            events.extend(progress.iter().map(group_progress_event));
            if group.replica.state.is_admin(&me) {
                // Anti-entropy: our merged roster to every other member, so one who joined
                // after the author's message, or missed it, still gets it.
                follow_ups.push(FollowUp::Gossip {
                    group: id,
                    except: sender,
                });
            }
            Ok(Ok(()))
        }
        RosterOutcome::Held(reason) => {
            if had_held || group.replica.has_held() {
                store.save_group_replica(id, &group.replica, now)?;
            }
            Ok(Err(format!(
                "a roster change without the role, held: {reason:?}"
            )))
        }
    }
}

/// For each member who is not our contact and whose key is greater than ours, make an
/// introduction invite (the smaller key of a pair makes it, so a pair gets one session).
fn introductions(
    store: &mut Store,
    me: MemberKey,
    id: GroupId,
    via: MemberKey,
    state: &RosterState,
    follow_ups: &mut Vec<FollowUp>,
) -> Result<(), StoreError> {
    if !state.is_member(&me) {
        return Ok(());
    }
    for (member, _) in state.members() {
        if member <= me || contact_of(store, &member)?.is_some() {
            continue;
        }
        let key = format!(
            "engine.group-intro.{id}.{}",
            hex::encode(&member.as_bytes()[..16])
        );
        if store.setting(&key)?.is_some() {
            continue;
        }
        store.transaction(|store| -> Result<(), StoreError> {
            store.set_setting(&key, "requested")?;
            pend(
                store,
                follow_ups,
                FollowUp::Introduce {
                    group: id,
                    member,
                    via,
                },
            )
        })?;
    }
    Ok(())
}

fn receive_receipts(
    store: &mut Store,
    id: GroupId,
    sender: MemberKey,
    receipts: &[Receipt],
    events: &mut Vec<EngineEvent>,
) -> Decision {
    if store.group(id)?.is_none() {
        return Ok(Err("receipts for a group we are not in".into()));
    }
    let mut moved: Vec<MessageId> = Vec::new();
    for kind in [ReceiptKindWire::Delivered, ReceiptKindWire::Read] {
        let seqs: Vec<u64> = receipts
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.seq)
            .take(4096)
            .collect();
        if seqs.is_empty() {
            continue;
        }
        let state = match kind {
            ReceiptKindWire::Delivered => MessageState::Delivered,
            ReceiptKindWire::Read => MessageState::Read,
        };
        for message in store.apply_group_receipts(id, sender, state, &seqs)? {
            if !moved.contains(&message) {
                moved.push(message);
            }
        }
    }
    // The messages' states follow their copies; "delivered to N of M" moved.
    let progress = store.refresh_group_message_states(&moved)?;
    events.extend(progress.iter().map(group_progress_event));
    Ok(Ok(()))
}

/// What becomes of a group introduction under our copy of its group.
enum IntroductionVerdict {
    /// Valid: this is the work it asks for (none if it is done already).
    Apply(Option<FollowUp>),
    /// Not valid YET: the roster that makes it valid (the group itself, a member in it, the
    /// sender's admin role) may still be on its way. Held and decided again on the next roster.
    Hold(&'static str),
    /// Never valid, whatever roster comes.
    Refuse(&'static str),
}

/// Decides a group introduction from `sender` naming `member` (`docs/engine.md`
/// § Introductions). Only the rules that a later roster can satisfy hold it; the others refuse.
fn judge_introduction(
    store: &Store,
    me: MemberKey,
    id: GroupId,
    sender: MemberKey,
    member: MemberKey,
    invite: String,
) -> Result<IntroductionVerdict, StoreError> {
    use IntroductionVerdict::{Apply, Hold, Refuse};
    let Ok(parsed) = crate::invite::Invite::parse(&invite) else {
        return Ok(Refuse("an introduction with a corrupt invite"));
    };
    let now_secs = u64::try_from(UnixMillis::now().0 / 1000).unwrap_or(0);
    if parsed.expires_at_secs <= now_secs {
        return Ok(Refuse("an introduction with an expired invite"));
    }
    let inviter = MemberKey::from_bytes(parsed.identity.to_bytes());
    if member == me && inviter == me {
        return Ok(Refuse("an introduction not passed on by an admin"));
    }
    if member != me && inviter != sender {
        return Ok(Refuse("an introduction to pass on that we cannot"));
    }
    let Some(group) = store.group(id)? else {
        return Ok(Hold("an introduction for a group we are not in"));
    };
    let state = &group.replica.state;
    if !state.is_member(&me) {
        return Ok(Refuse("an introduction for a group we are not in"));
    }
    if !state.is_member(&sender) || !state.is_member(&member) {
        return Ok(Hold("an introduction naming a non-member"));
    }
    if member == me {
        // Passed on to us by an admin: accept it if it comes from another member.
        if !state.is_admin(&sender) || !state.is_member(&inviter) {
            return Ok(Hold("an introduction not passed on by an admin"));
        }
        if contact_of(store, &inviter)?.is_some() {
            return Ok(Apply(None));
        }
        Ok(Apply(Some(FollowUp::Accept {
            group: id,
            inviter,
            invite,
        })))
    } else {
        // A member asks us, an admin, to pass its invite on.
        if !state.is_admin(&me) {
            return Ok(Hold("an introduction to pass on while we are not an admin"));
        }
        Ok(Apply(Some(FollowUp::Forward {
            group: id,
            member,
            invite,
        })))
    }
}

fn receive_introduction(
    store: &mut Store,
    me: MemberKey,
    id: GroupId,
    sender: MemberKey,
    member: MemberKey,
    invite: String,
    follow_ups: &mut Vec<FollowUp>,
) -> Decision {
    let held = HeldIntroduction {
        sender,
        member,
        invite: invite.clone(),
    };
    match judge_introduction(store, me, id, sender, member, invite)? {
        IntroductionVerdict::Apply(follow_up) => {
            if let Some(follow_up) = follow_up {
                pend(store, follow_ups, follow_up)?;
            }
            Ok(Ok(()))
        }
        IntroductionVerdict::Refuse(reason) => Ok(Err(reason.into())),
        IntroductionVerdict::Hold(reason) => {
            // The forward can overtake the roster that makes it valid (it is a later envelope of
            // a different author's chain of events); refusing it would lose the introduction for
            // good, so it waits for the roster (`docs/engine.md` § Introductions).
            if store.hold_group_introduction(id, &held)? {
                tracing::debug!(reason, "group introduction held until the roster allows it");
                Ok(Ok(()))
            } else {
                Ok(Err(format!("{reason} (too many held)")))
            }
        }
    }
}

/// Decides again every introduction held for group `id` after its roster changed: the valid
/// ones are applied, the ones never valid dropped, the rest stay held.
fn release_held_introductions(
    store: &mut Store,
    me: MemberKey,
    id: GroupId,
    follow_ups: &mut Vec<FollowUp>,
) -> Result<(), StoreError> {
    for held in store.held_group_introductions(id)? {
        let verdict = judge_introduction(store, me, id, held.sender, held.member, held.invite)?;
        if let IntroductionVerdict::Hold(_) = verdict {
            continue;
        }
        // The held row and the work it becomes change together.
        store.transaction(|store| -> Result<(), StoreError> {
            match verdict {
                IntroductionVerdict::Apply(Some(follow_up)) => pend(store, follow_ups, follow_up)?,
                IntroductionVerdict::Refuse(reason) => {
                    tracing::info!(reason, "a held group introduction dropped");
                }
                IntroductionVerdict::Apply(None) | IntroductionVerdict::Hold(_) => {}
            }
            store.drop_held_group_introduction(id, &held.sender, &held.member)
        })?;
    }
    Ok(())
}

impl Engine {
    async fn follow_up(&self, follow_up: FollowUp) -> Result<(), EngineError> {
        let inner = &self.inner;
        match follow_up {
            FollowUp::Delivered { group, author, seq } => {
                if !inner.delivery_receipts {
                    return Ok(());
                }
                tokio::time::sleep(inner.receipt_delay.0).await;
                let body = Body::GroupReceipts {
                    group_id: group,
                    receipts: vec![Receipt {
                        kind: ReceiptKindWire::Delivered,
                        seq,
                    }],
                };
                self.seal_group_body(&[author], &body).await?;
            }
            FollowUp::Introduce { group, member, via } => {
                let invite = self.retry_rate_limited(|| self.create_invite()).await?;
                let (key, value) = (
                    format!("{INTRODUCTION_FOR}{}", invite.id),
                    hex::encode(member.as_bytes()),
                );
                inner
                    .on_store(move |store| Ok(store.set_setting(&key, &value)?))
                    .await?;
                let body = Body::GroupIntroduction {
                    group_id: group,
                    member,
                    invite: invite.text,
                };
                self.seal_group_body(&[via], &body).await?;
            }
            FollowUp::Forward {
                group,
                member,
                invite,
            } => {
                let body = Body::GroupIntroduction {
                    group_id: group,
                    member,
                    invite,
                };
                self.seal_group_body(&[member], &body).await?;
            }
            FollowUp::Gossip { group, except } => {
                let me = own_key(inner);
                let (recipients, state) = inner
                    .on_store(move |store| {
                        let group = load_group(store, group)?;
                        let recipients: Vec<MemberKey> = group
                            .replica
                            .recipients(&me)
                            .into_iter()
                            .filter(|member| *member != except)
                            .collect();
                        Ok((recipients, group.replica.state))
                    })
                    .await?;
                let body = Body::GroupRoster {
                    group_id: group,
                    change: RosterMessage::State(state),
                };
                self.seal_group_body(&recipients, &body).await?;
            }
            FollowUp::Accept { invite, .. } => {
                match self
                    .retry_rate_limited(|| self.accept_invite(&invite, ""))
                    .await
                {
                    Ok(_) | Err(EngineError::ContactExists) => {}
                    Err(error) => return Err(error),
                }
                // The pair's session exists now: what the inviter missed from us goes to it.
                inner.blocking(|inner| send_missed_texts(inner)).await?;
            }
        }
        Ok(())
    }

    /// Runs `attempt` (a CREATE: making or accepting an introduction invite) again after a
    /// jittered backoff (at most [`INTRODUCTION_BACKOFF_CAP`] apart) while the relay refuses it
    /// for its rate, up to [`INTRODUCTION_ATTEMPTS`] times. A member joining a group of N
    /// strangers makes N − 1 CREATEs at once, past the relay's default burst of 20 per address
    /// (`create_rate_per_ip`, 1/s); without this, the introductions past the burst were lost
    /// (`docs/benchmarks.md` § Groups).
    async fn retry_rate_limited<T, F, Fut>(&self, mut attempt: F) -> Result<T, EngineError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, EngineError>>,
    {
        let mut tries = 0u32;
        loop {
            match attempt().await {
                Err(EngineError::RelayUnreachable(ClientError::RateLimited))
                    if tries + 1 < INTRODUCTION_ATTEMPTS =>
                {
                    let delay =
                        backoff_delay(&self.inner, tries, false).min(INTRODUCTION_BACKOFF_CAP);
                    tries += 1;
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
    }

    async fn seal_group_body(
        &self,
        recipients: &[MemberKey],
        body: &Body,
    ) -> Result<(), EngineError> {
        let (recipients, body) = (recipients.to_vec(), body.clone());
        self.inner
            .blocking(move |inner| {
                lock(&inner.store).transaction(|store| -> Result<(), EngineError> {
                    fan_out(inner, store, &recipients, &body, None)?;
                    Ok(())
                })?;
                inner.outbox_wake.notify_one();
                Ok(())
            })
            .await
    }
}
