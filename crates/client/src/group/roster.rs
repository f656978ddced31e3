//! The roster: a state-based CRDT (a join-semilattice) of per-member entries plus the group's
//! name and description, with the local roster operations and their role checks.
//!
//! ## The merge rule (`docs/engine.md` § Groups, "Merge rule")
//!
//! - Each member entry has a **presence register** `(stamp, presence)` ordered lexicographically,
//!   presence ordered `Present < Removed < Left`: the later stamp wins, and on a tie removal wins
//!   (and a member's own leave wins over a removal).
//! - Each entry has an **admin flag** that only grows (logical OR). An admin cannot be removed by
//!   someone else: an entry whose register says `Removed` but whose flag is set is still a member
//!   (a promotion concurrent with a removal keeps the member, as admin). Admins leave on their own
//!   (`Left`), and a later add brings them back.
//! - The name and description are one register `(stamp, name, description)`, the greatest wins.
//! - The disappearing timer is one register `(stamp, seconds)` (absent: never set, off): the later
//!   stamp wins, on a tie the **shorter** timer (off counts as the longest), the rule of 1:1
//!   chats (`store::timer_change_wins`). Only an admin sets it, like the name.
//! - The clock is the greatest stamp seen; a local operation stamps `clock + 1` (Lamport).
//!
//! Every operation only moves the state up this order and [`RosterState::join`] is the least
//! upper bound, so joining states in any order, any number of times, gives the same state.
//!
//! The **cap**: at most [`MAX_GROUP_MEMBERS`] effective members. A local add past it is
//! [`GroupError::Full`]. Two admins adding concurrently can overshoot it; then the members are
//! every admin plus the non-admins with the smallest `(stamp, key)` until the cap — a function of
//! the state alone, so every member trims the same way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{GroupError, MemberKey};
use crate::store::DisappearingTimer;

/// At most this many members in a group.
pub const MAX_GROUP_MEMBERS: usize = 100;
/// At most this many roster entries, removed and departed members included (their entries are
/// kept so a late add cannot undo a removal).
pub const MAX_ROSTER_ENTRIES: usize = 4 * MAX_GROUP_MEMBERS;
/// The largest stamp accepted: a peer cannot push the clock to the end of `u64`.
pub const MAX_STAMP: u64 = 1 << 48;
/// Longest group name, bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 128;
/// Longest group description, bytes of UTF-8.
pub const MAX_DESCRIPTION_BYTES: usize = 1024;

/// A member's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Sends and reads group messages; may leave.
    Member,
    /// Also adds, removes, renames and promotes.
    Admin,
}

/// The value of a member's presence register; the order is the tie-break.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Presence {
    /// Added by an admin (or the creator).
    Present,
    /// Removed by an admin.
    Removed,
    /// Left on their own.
    Left,
}

/// One member's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEntry {
    /// The member.
    pub key: MemberKey,
    /// The presence register's value.
    pub presence: Presence,
    /// The presence register's stamp.
    pub stamp: u64,
    /// Promoted to admin (only grows).
    pub admin: bool,
}

impl MemberEntry {
    /// Whether the entry makes its member part of the group (before the cap).
    pub fn is_present(&self) -> bool {
        match self.presence {
            Presence::Present => true,
            Presence::Removed => self.admin,
            Presence::Left => false,
        }
    }

    fn join(&mut self, other: &MemberEntry) {
        if (other.stamp, other.presence) > (self.stamp, self.presence) {
            self.stamp = other.stamp;
            self.presence = other.presence;
        }
        self.admin |= other.admin;
    }
}

/// The group's name and description, one register.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupInfo {
    /// The register's stamp.
    pub stamp: u64,
    /// The name (1..=[`MAX_NAME_BYTES`] bytes).
    pub name: String,
    /// The description (may be empty).
    pub description: String,
}

/// The group's disappearing timer, one register (`docs/engine.md` § Disappearing messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerRegister {
    /// The register's stamp.
    pub stamp: u64,
    /// The timer, seconds (0 = off; otherwise one of the [`DisappearingTimer`] settings).
    pub seconds: u32,
}

impl TimerRegister {
    /// The register's order: the stamp, then the shorter timer (off is the longest).
    fn order(&self) -> (u64, std::cmp::Reverse<u32>) {
        let rank = if self.seconds == 0 {
            u32::MAX
        } else {
            self.seconds
        };
        (self.stamp, std::cmp::Reverse(rank))
    }

    /// The setting (`None`: off).
    pub fn setting(&self) -> Option<DisappearingTimer> {
        DisappearingTimer::from_seconds(self.seconds)
    }
}

/// What a roster looks like on the wire (inside a `GroupRoster` body): entries as a list. The
/// timer is absent until someone sets it, so a roster without one encodes exactly as before the
/// field existed (`crates/client/tests/vectors/content.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct RosterWire {
    clock: u64,
    info: GroupInfo,
    members: Vec<MemberEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timer: Option<TimerRegister>,
}

/// A group's roster: the members' entries, the name register and the clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RosterWire", into = "RosterWire")]
pub struct RosterState {
    clock: u64,
    info: GroupInfo,
    entries: BTreeMap<MemberKey, MemberEntry>,
    timer: Option<TimerRegister>,
}

impl TryFrom<RosterWire> for RosterState {
    type Error = GroupError;
    fn try_from(wire: RosterWire) -> Result<Self, GroupError> {
        if wire.members.len() > MAX_ROSTER_ENTRIES
            || wire.clock > MAX_STAMP
            || wire.info.stamp > wire.clock
            || !info_is_valid(&wire.info.name, &wire.info.description)
            || wire.timer.is_some_and(|timer| {
                timer.stamp > wire.clock
                    || DisappearingTimer::setting_from_seconds(timer.seconds).is_none()
            })
        {
            return Err(GroupError::MalformedRoster);
        }
        let mut entries = BTreeMap::new();
        for entry in wire.members {
            if entry.stamp > wire.clock || entries.insert(entry.key, entry).is_some() {
                return Err(GroupError::MalformedRoster);
            }
        }
        Ok(Self {
            clock: wire.clock,
            info: wire.info,
            entries,
            timer: wire.timer,
        })
    }
}

impl From<RosterState> for RosterWire {
    fn from(state: RosterState) -> Self {
        Self {
            clock: state.clock,
            info: state.info,
            members: state.entries.into_values().collect(),
            timer: state.timer,
        }
    }
}

fn info_is_valid(name: &str, description: &str) -> bool {
    !name.trim().is_empty()
        && name.len() <= MAX_NAME_BYTES
        && description.len() <= MAX_DESCRIPTION_BYTES
}

impl RosterState {
    /// A new group: `creator` is its first admin, `members` its other members, all stamped 1.
    pub fn genesis(
        creator: MemberKey,
        name: &str,
        description: &str,
        members: &[MemberKey],
    ) -> Result<Self, GroupError> {
        if !info_is_valid(name, description) {
            return Err(GroupError::InvalidInfo);
        }
        let mut entries = BTreeMap::new();
        for key in std::iter::once(&creator).chain(members) {
            entries.insert(
                *key,
                MemberEntry {
                    key: *key,
                    presence: Presence::Present,
                    stamp: 1,
                    admin: *key == creator,
                },
            );
        }
        if entries.len() > MAX_GROUP_MEMBERS {
            return Err(GroupError::Full {
                max: MAX_GROUP_MEMBERS,
            });
        }
        Ok(Self {
            clock: 1,
            info: GroupInfo {
                stamp: 1,
                name: name.to_owned(),
                description: description.to_owned(),
            },
            entries,
            timer: None,
        })
    }

    /// The greatest stamp seen.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// The name and description.
    pub fn info(&self) -> &GroupInfo {
        &self.info
    }

    /// The disappearing timer's register (`None`: never set, off).
    pub fn timer(&self) -> Option<TimerRegister> {
        self.timer
    }

    /// The disappearing timer's setting (`None`: off).
    pub fn timer_setting(&self) -> Option<DisappearingTimer> {
        self.timer.and_then(|timer| timer.setting())
    }

    /// Every entry, removed and departed members included.
    pub fn entries(&self) -> impl Iterator<Item = &MemberEntry> {
        self.entries.values()
    }

    /// One member's entry.
    pub fn entry(&self, key: &MemberKey) -> Option<&MemberEntry> {
        self.entries.get(key)
    }

    /// The effective members with their roles, in key order, the cap applied (module docs).
    pub fn members(&self) -> Vec<(MemberKey, Role)> {
        let present: Vec<&MemberEntry> = self.entries.values().filter(|e| e.is_present()).collect();
        let admins = present.iter().filter(|e| e.admin).count();
        let mut others: Vec<&MemberEntry> = present.iter().copied().filter(|e| !e.admin).collect();
        others.sort_by_key(|e| (e.stamp, e.key));
        others.truncate(MAX_GROUP_MEMBERS.saturating_sub(admins));
        let mut out: Vec<(MemberKey, Role)> = present
            .iter()
            .filter(|e| e.admin)
            .map(|e| (e.key, Role::Admin))
            .chain(others.iter().map(|e| (e.key, Role::Member)))
            .collect();
        out.sort();
        out
    }

    /// The member's role, if it is an effective member.
    pub fn role(&self, key: &MemberKey) -> Option<Role> {
        let entry = self.entries.get(key)?;
        if entry.admin {
            return entry.is_present().then_some(Role::Admin);
        }
        self.members()
            .iter()
            .find(|(member, _)| member == key)
            .map(|(_, role)| *role)
    }

    /// Whether `key` is an effective member.
    pub fn is_member(&self, key: &MemberKey) -> bool {
        self.role(key).is_some()
    }

    /// Whether `key` is an effective member with the admin role.
    pub fn is_admin(&self, key: &MemberKey) -> bool {
        self.role(key) == Some(Role::Admin)
    }

    fn require_admin(&self, actor: &MemberKey) -> Result<(), GroupError> {
        match self.role(actor) {
            Some(Role::Admin) => Ok(()),
            Some(Role::Member) => Err(GroupError::NotAdmin),
            None => Err(GroupError::NotMember),
        }
    }

    fn next_stamp(&self) -> Result<u64, GroupError> {
        let next = self.clock.saturating_add(1);
        if next > MAX_STAMP {
            return Err(GroupError::ClockExhausted);
        }
        Ok(next)
    }

    /// `actor` (an admin) adds `target`.
    pub fn add(&mut self, actor: &MemberKey, target: MemberKey) -> Result<(), GroupError> {
        self.require_admin(actor)?;
        if self.is_member(&target) {
            return Err(GroupError::AlreadyMember);
        }
        let full = GroupError::Full {
            max: MAX_GROUP_MEMBERS,
        };
        if self.members().len() >= MAX_GROUP_MEMBERS {
            return Err(full);
        }
        if !self.entries.contains_key(&target) && self.entries.len() >= MAX_ROSTER_ENTRIES {
            return Err(full);
        }
        let stamp = self.next_stamp()?;
        let admin = self.entries.get(&target).is_some_and(|e| e.admin);
        self.put(MemberEntry {
            key: target,
            presence: Presence::Present,
            stamp,
            admin,
        });
        Ok(())
    }

    /// `actor` (an admin) removes `target` (a member without the admin role).
    pub fn remove(&mut self, actor: &MemberKey, target: &MemberKey) -> Result<(), GroupError> {
        self.require_admin(actor)?;
        match self.role(target) {
            None => return Err(GroupError::NotMember),
            Some(Role::Admin) => return Err(GroupError::CannotRemoveAdmin),
            Some(Role::Member) => {}
        }
        let stamp = self.next_stamp()?;
        self.put(MemberEntry {
            key: *target,
            presence: Presence::Removed,
            stamp,
            admin: false,
        });
        Ok(())
    }

    /// `actor` (an admin) makes `target` (a member) an admin.
    pub fn promote(&mut self, actor: &MemberKey, target: &MemberKey) -> Result<(), GroupError> {
        self.require_admin(actor)?;
        if !self.is_member(target) {
            return Err(GroupError::NotMember);
        }
        if let Some(entry) = self.entries.get_mut(target) {
            entry.admin = true;
        }
        Ok(())
    }

    /// `actor` (an admin) renames the group and sets its description.
    pub fn rename(
        &mut self,
        actor: &MemberKey,
        name: &str,
        description: &str,
    ) -> Result<(), GroupError> {
        self.require_admin(actor)?;
        if !info_is_valid(name, description) {
            return Err(GroupError::InvalidInfo);
        }
        let stamp = self.next_stamp()?;
        self.info = GroupInfo {
            stamp,
            name: name.to_owned(),
            description: description.to_owned(),
        };
        self.clock = stamp;
        Ok(())
    }

    /// `actor` (an admin) sets the group's disappearing timer (`None`: off).
    pub fn set_timer(
        &mut self,
        actor: &MemberKey,
        timer: Option<DisappearingTimer>,
    ) -> Result<(), GroupError> {
        self.require_admin(actor)?;
        let stamp = self.next_stamp()?;
        self.timer = Some(TimerRegister {
            stamp,
            seconds: DisappearingTimer::setting_seconds(timer),
        });
        self.clock = stamp;
        Ok(())
    }

    /// `actor` (any member) leaves; returns the stamp of its leave.
    pub fn leave(&mut self, actor: &MemberKey) -> Result<u64, GroupError> {
        if !self.is_member(actor) {
            return Err(GroupError::NotMember);
        }
        let stamp = self.next_stamp()?;
        self.apply_leave(actor, stamp);
        Ok(stamp)
    }

    /// Writes `key`'s own leave at `stamp` into its entry (which must exist). Returns whether the
    /// state changed.
    pub(super) fn apply_leave(&mut self, key: &MemberKey, stamp: u64) -> bool {
        let Some(entry) = self.entries.get(key) else {
            return false;
        };
        let before = *entry;
        let admin = before.admin;
        self.put(MemberEntry {
            key: *key,
            presence: Presence::Left,
            stamp,
            admin,
        });
        self.entries.get(key) != Some(&before)
    }

    fn put(&mut self, entry: MemberEntry) {
        self.clock = self.clock.max(entry.stamp);
        self.entries
            .entry(entry.key)
            .and_modify(|existing| existing.join(&entry))
            .or_insert(entry);
    }

    /// The least upper bound of `self` and `other` (the merge). Returns whether `self` changed.
    pub fn join(&mut self, other: &RosterState) -> bool {
        let before = self.clone();
        for entry in other.entries.values() {
            self.put(*entry);
        }
        if other.info > self.info {
            self.info = other.info.clone();
        }
        if let Some(theirs) = other.timer
            && self.timer.is_none_or(|ours| theirs.order() > ours.order())
        {
            self.timer = Some(theirs);
        }
        self.clock = self.clock.max(other.clock);
        *self != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> MemberKey {
        MemberKey::from_bytes([n; 64])
    }

    fn group() -> RosterState {
        RosterState::genesis(key(1), "Team", "", &[key(2), key(3)]).unwrap()
    }

    #[test]
    fn the_timer_is_an_admins_and_a_tie_goes_to_the_shorter_timer() {
        use crate::store::DisappearingTimer::{OneDay, OneHour};
        let mut state = group();
        assert_eq!(state.timer_setting(), None);
        assert_eq!(
            state.set_timer(&key(2), Some(OneHour)),
            Err(GroupError::NotAdmin)
        );
        assert_eq!(
            state.set_timer(&key(9), Some(OneHour)),
            Err(GroupError::NotMember)
        );
        let mut other = state.clone();
        state.set_timer(&key(1), Some(OneDay)).unwrap();
        other.promote(&key(1), &key(2)).unwrap();
        other.set_timer(&key(2), Some(OneHour)).unwrap();
        other.set_timer(&key(2), None).unwrap();
        // `other` is one stamp ahead: its "off" wins everywhere, in either order.
        let (mut left, mut right) = (state.clone(), other.clone());
        left.join(&other);
        right.join(&state);
        assert_eq!(left, right);
        assert_eq!(left.timer_setting(), None);
        // The same stamp: the shorter timer wins, in either order.
        let mut day = group();
        day.set_timer(&key(1), Some(OneDay)).unwrap();
        let mut hour = group();
        hour.set_timer(&key(1), Some(OneHour)).unwrap();
        let mut off = group();
        off.set_timer(&key(1), None).unwrap();
        for (a, b) in [(&day, &hour), (&hour, &day), (&off, &day), (&hour, &off)] {
            let mut joined = a.clone();
            joined.join(b);
            assert_ne!(joined.timer_setting(), None, "off never wins a tie");
            if a == &hour || b == &hour {
                assert_eq!(joined.timer_setting(), Some(OneHour));
            }
        }
    }

    #[test]
    fn a_roster_with_a_timer_that_is_no_setting_is_malformed() {
        let mut state = group();
        state
            .set_timer(&key(1), Some(crate::store::DisappearingTimer::OneWeek))
            .unwrap();
        let mut bytes = Vec::new();
        ciborium::into_writer(&state, &mut bytes).unwrap();
        let decoded: RosterState = ciborium::from_reader(bytes.as_slice()).unwrap();
        assert_eq!(decoded, state);
        let mut wire = RosterWire::from(state);
        wire.timer = Some(TimerRegister {
            stamp: 1,
            seconds: 301,
        });
        assert_eq!(
            RosterState::try_from(wire),
            Err(GroupError::MalformedRoster)
        );
    }

    #[test]
    fn roster_ops_need_the_admin_role() {
        let mut state = group();
        assert_eq!(state.add(&key(2), key(9)), Err(GroupError::NotAdmin));
        assert_eq!(state.remove(&key(2), &key(3)), Err(GroupError::NotAdmin));
        assert_eq!(state.promote(&key(2), &key(2)), Err(GroupError::NotAdmin));
        assert_eq!(state.rename(&key(2), "Mine", ""), Err(GroupError::NotAdmin));
        assert_eq!(state.add(&key(9), key(8)), Err(GroupError::NotMember));
        assert_eq!(state, group(), "a refused op changes nothing");
        state.promote(&key(1), &key(2)).unwrap();
        state.add(&key(2), key(9)).unwrap();
        assert_eq!(state.role(&key(9)), Some(Role::Member));
    }

    #[test]
    fn an_admin_cannot_be_removed_but_can_leave() {
        let mut state = group();
        state.promote(&key(1), &key(2)).unwrap();
        assert_eq!(
            state.remove(&key(1), &key(2)),
            Err(GroupError::CannotRemoveAdmin)
        );
        state.leave(&key(2)).unwrap();
        assert!(!state.is_member(&key(2)));
        assert_eq!(state.leave(&key(2)), Err(GroupError::NotMember));
    }

    #[test]
    fn concurrent_add_and_remove_with_equal_stamps_removal_wins() {
        let mut a = group();
        let mut b = group();
        a.promote(&key(1), &key(2)).unwrap();
        b.promote(&key(1), &key(2)).unwrap();
        a.remove(&key(1), &key(3)).unwrap();
        b.remove(&key(2), &key(3)).unwrap();
        b.add(&key(2), key(4)).unwrap();
        // Re-add at the same stamp as a removal elsewhere: removal wins the tie.
        let mut c = group();
        c.promote(&key(1), &key(2)).unwrap();
        c.remove(&key(1), &key(3)).unwrap();
        let mut readd = c.clone();
        readd.add(&key(1), key(3)).unwrap();
        let mut ab = a.clone();
        ab.join(&b);
        let mut ba = b.clone();
        ba.join(&a);
        assert_eq!(ab, ba);
        assert!(!ab.is_member(&key(3)));
        assert!(ab.is_member(&key(4)));
        let mut tie = group();
        tie.put(MemberEntry {
            key: key(3),
            presence: Presence::Present,
            stamp: 7,
            admin: false,
        });
        tie.put(MemberEntry {
            key: key(3),
            presence: Presence::Removed,
            stamp: 7,
            admin: false,
        });
        assert!(!tie.is_member(&key(3)));
        assert!(
            readd.is_member(&key(3)),
            "a later add undoes an earlier removal"
        );
    }

    #[test]
    fn a_promotion_concurrent_with_a_removal_keeps_the_member() {
        let mut a = group();
        let mut b = group();
        b.promote(&key(1), &key(2)).unwrap();
        a.promote(&key(1), &key(3)).unwrap();
        b.remove(&key(2), &key(3)).unwrap();
        a.join(&b);
        assert_eq!(a.role(&key(3)), Some(Role::Admin));
    }

    #[test]
    fn the_size_cap_is_a_typed_error_and_trimming_is_deterministic() {
        let members: Vec<MemberKey> = (2..=100).map(key).collect();
        let mut state = RosterState::genesis(key(1), "Big", "", &members).unwrap();
        assert_eq!(state.members().len(), 100);
        assert_eq!(
            state.add(&key(1), key(200)),
            Err(GroupError::Full {
                max: MAX_GROUP_MEMBERS
            })
        );
        let too_many: Vec<MemberKey> = (2..=101).map(key).collect();
        assert_eq!(
            RosterState::genesis(key(1), "Big", "", &too_many),
            Err(GroupError::Full {
                max: MAX_GROUP_MEMBERS
            })
        );
        // Two admins add concurrently at 99 members: the join trims the same way everywhere.
        let mut base = RosterState::genesis(key(1), "Big", "", &members[..98]).unwrap();
        base.promote(&key(1), &key(2)).unwrap();
        let mut a = base.clone();
        let mut b = base.clone();
        a.add(&key(1), key(201)).unwrap();
        b.add(&key(2), key(202)).unwrap();
        let mut ab = a.clone();
        ab.join(&b);
        let mut ba = b;
        ba.join(&a);
        assert_eq!(ab.members(), ba.members());
        assert_eq!(ab.members().len(), MAX_GROUP_MEMBERS);
        assert!(ab.is_member(&key(201)) != ab.is_member(&key(202)));
    }

    #[test]
    fn rename_validates_and_the_greater_stamp_wins() {
        let mut a = group();
        assert_eq!(a.rename(&key(1), " ", ""), Err(GroupError::InvalidInfo));
        assert_eq!(
            a.rename(&key(1), &"x".repeat(MAX_NAME_BYTES + 1), ""),
            Err(GroupError::InvalidInfo)
        );
        let mut b = a.clone();
        a.rename(&key(1), "First", "").unwrap();
        b.rename(&key(1), "Second", "").unwrap();
        b.rename(&key(1), "Third", "about").unwrap();
        a.join(&b);
        assert_eq!(a.info().name, "Third");
        assert_eq!(a.info().description, "about");
    }

    #[test]
    fn the_wire_form_round_trips_and_refuses_bad_rosters() {
        let state = group();
        let mut bytes = Vec::new();
        ciborium::into_writer(&state, &mut bytes).unwrap();
        let back: RosterState = ciborium::from_reader(bytes.as_slice()).unwrap();
        assert_eq!(back, state);
        let entry = *state.entry(&key(1)).unwrap();
        let bad = [
            RosterWire {
                clock: 1,
                info: state.info.clone(),
                members: vec![entry, entry],
                timer: None,
            },
            RosterWire {
                clock: 0,
                info: state.info.clone(),
                members: vec![entry],
                timer: None,
            },
            RosterWire {
                clock: MAX_STAMP + 1,
                info: state.info.clone(),
                members: vec![],
                timer: None,
            },
            RosterWire {
                clock: 1,
                info: GroupInfo {
                    stamp: 1,
                    name: String::new(),
                    description: String::new(),
                },
                members: vec![],
                timer: None,
            },
        ];
        for wire in bad {
            assert_eq!(
                RosterState::try_from(wire),
                Err(GroupError::MalformedRoster)
            );
        }
    }
}
