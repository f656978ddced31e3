//! Groups as pairwise fan-out over the existing 1:1 sessions (`docs/engine.md` § Groups): the
//! group's id, its roster (a state-based CRDT that converges under loss, duplication and
//! reordering) and the refusal decisions. Pure: no IO, no clock, no randomness except
//! [`GroupId::generate`].
//!
//! There is no group key. A group message is sealed once per member over that member's own
//! session, and its author is the peer of the session it arrived on; nothing in group content
//! names an author (LINE's T4 forgery "from B" has nothing to forge).

mod replica;
mod roster;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use replica::{GroupReplica, HeldReason, RosterMessage, RosterOutcome};
pub use roster::{
    GroupInfo, MAX_DESCRIPTION_BYTES, MAX_GROUP_MEMBERS, MAX_NAME_BYTES, MAX_ROSTER_ENTRIES,
    MAX_STAMP, MemberEntry, Presence, Role, RosterState, TimerRegister,
};

use crate::store::types::IdParseError;

/// Length of a group id, bytes.
pub const GROUP_ID_LEN: usize = 16;
/// Length of a member key (a whole identity key: Ed25519 ‖ X25519 public), bytes.
pub const MEMBER_KEY_LEN: usize = 64;

/// A group's random id. It travels only inside ratchet-encrypted content, so the relay never
/// sees it; every group body carries it, which binds each message to its group.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "serde_bytes::ByteBuf", into = "serde_bytes::ByteBuf")]
pub struct GroupId([u8; GROUP_ID_LEN]);

impl GroupId {
    /// A fresh random id from the operating system's generator.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; GROUP_ID_LEN];
        getrandom::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// Wraps 16 bytes.
    pub const fn from_bytes(bytes: [u8; GROUP_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The id's bytes.
    pub const fn as_bytes(&self) -> &[u8; GROUP_ID_LEN] {
        &self.0
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupId({self})")
    }
}

impl FromStr for GroupId {
    type Err = IdParseError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() != 2 * GROUP_ID_LEN {
            return Err(IdParseError::WrongLength(text.chars().count()));
        }
        let mut bytes = [0u8; GROUP_ID_LEN];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| IdParseError::NotHex)?;
        Ok(Self(bytes))
    }
}

impl TryFrom<serde_bytes::ByteBuf> for GroupId {
    type Error = &'static str;
    fn try_from(bytes: serde_bytes::ByteBuf) -> Result<Self, Self::Error> {
        <[u8; GROUP_ID_LEN]>::try_from(bytes.as_slice())
            .map(Self)
            .map_err(|_| "a group id is 16 bytes")
    }
}

impl From<GroupId> for serde_bytes::ByteBuf {
    fn from(id: GroupId) -> Self {
        serde_bytes::ByteBuf::from(id.0.to_vec())
    }
}

crate::byte_array_column!(GroupId, GROUP_ID_LEN);

/// A member's identity key (64 bytes, Ed25519 ‖ X25519 public), the member's identity in every
/// roster. Its delivery addresses are the contact's addresses in the local store, so a second
/// device later adds addresses, not a new group format.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "serde_bytes::ByteBuf", into = "serde_bytes::ByteBuf")]
pub struct MemberKey([u8; MEMBER_KEY_LEN]);

impl MemberKey {
    /// Wraps 64 bytes.
    pub const fn from_bytes(bytes: [u8; MEMBER_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// From a slice; `None` unless it is exactly 64 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; MEMBER_KEY_LEN]>::try_from(bytes).ok().map(Self)
    }

    /// The key's bytes.
    pub const fn as_bytes(&self) -> &[u8; MEMBER_KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for MemberKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Public; a short prefix is enough to tell members apart in a report.
        write!(f, "MemberKey({}…)", hex::encode(&self.0[..8]))
    }
}

impl TryFrom<serde_bytes::ByteBuf> for MemberKey {
    type Error = &'static str;
    fn try_from(bytes: serde_bytes::ByteBuf) -> Result<Self, Self::Error> {
        Self::from_slice(bytes.as_slice()).ok_or("a member key is 64 bytes")
    }
}

impl From<MemberKey> for serde_bytes::ByteBuf {
    fn from(key: MemberKey) -> Self {
        serde_bytes::ByteBuf::from(key.0.to_vec())
    }
}

crate::byte_array_column!(MemberKey, MEMBER_KEY_LEN);

/// Why a roster operation or a group message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// The operation needs the admin role and the actor does not have it.
    #[error("only an admin can change the roster")]
    NotAdmin,
    /// The actor or sender is not a member of the group (never was, was removed, or left).
    #[error("not a member of the group")]
    NotMember,
    /// The member to add is already a member.
    #[error("already a member of the group")]
    AlreadyMember,
    /// An admin cannot be removed by someone else; admins leave on their own.
    #[error("an admin cannot be removed")]
    CannotRemoveAdmin,
    /// The group would have more than [`MAX_GROUP_MEMBERS`] members (or its roster more than
    /// [`MAX_ROSTER_ENTRIES`] entries, removed members included).
    #[error("a group holds at most {max} members")]
    Full {
        /// The cap.
        max: usize,
    },
    /// The name is empty or longer than [`MAX_NAME_BYTES`], or the description longer than
    /// [`MAX_DESCRIPTION_BYTES`].
    #[error("the group name or description is empty or too long")]
    InvalidInfo,
    /// The logical clock reached [`MAX_STAMP`]: no further roster change can be ordered.
    #[error("the roster clock is exhausted")]
    ClockExhausted,
    /// A roster from a peer is malformed (duplicate entries, out-of-range stamps, too long).
    #[error("malformed roster")]
    MalformedRoster,
}

impl GroupError {
    /// The error kind the app maps (`ui/CONTRACT.md` § Errors).
    pub fn kind(&self) -> &'static str {
        match self {
            GroupError::NotAdmin => "group_not_admin",
            GroupError::NotMember => "group_not_member",
            GroupError::AlreadyMember => "group_already_member",
            GroupError::CannotRemoveAdmin => "group_cannot_remove_admin",
            GroupError::Full { .. } => "group_full",
            GroupError::InvalidInfo => "group_name_invalid",
            GroupError::ClockExhausted | GroupError::MalformedRoster => "internal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_id_text_round_trips_and_refuses_bad_text() {
        let id = GroupId::from_bytes([0xab; 16]);
        assert_eq!(id.to_string().parse::<GroupId>(), Ok(id));
        assert_eq!("ab".parse::<GroupId>(), Err(IdParseError::WrongLength(2)));
        assert_eq!(
            "zz".repeat(16).parse::<GroupId>(),
            Err(IdParseError::NotHex)
        );
    }

    #[test]
    fn ids_refuse_wrong_lengths_on_decode() {
        assert!(GroupId::try_from(serde_bytes::ByteBuf::from(vec![0; 15])).is_err());
        assert!(MemberKey::try_from(serde_bytes::ByteBuf::from(vec![0; 63])).is_err());
        assert!(MemberKey::try_from(serde_bytes::ByteBuf::from(vec![0; 64])).is_ok());
    }
}
