//! One member's copy of a group's roster and the decisions on what peers send: which roster
//! messages are applied, which are held until their author's role is known, and which group
//! messages are refused (`docs/engine.md` § Groups, "Refusal rules").
//!
//! The sender passed to every decision is the **peer of the session the message arrived on**,
//! never anything the content says.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::roster::{MAX_STAMP, RosterState};
use super::{GroupError, MemberKey};

/// A roster change as it travels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RosterMessage {
    /// An admin's whole roster after its change (create, add, remove, promote, rename, or its
    /// own leave). Each admin's states only grow, so its latest supersedes every earlier one.
    State(RosterState),
    /// The sender (a member without the admin role) leaves, at this stamp.
    Leave {
        /// The leave's stamp.
        stamp: u64,
    },
}

/// Why a roster message was held rather than applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeldReason {
    /// The sender is a member here but not (yet) an admin: a roster op needs the role.
    NotAdmin,
    /// The sender is not a member here (not yet added, removed, or left).
    NotMember,
}

/// What [`GroupReplica::receive_roster`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RosterOutcome {
    /// Applied; `changed` says whether the roster changed (false for a duplicate).
    Applied {
        /// Whether the roster changed (held messages released by it included).
        changed: bool,
    },
    /// Not applied: the sender lacks the role here. It is kept (joined with anything held from
    /// the same sender) and applied if and when a later change makes the sender an admin, so
    /// the order in which changes arrive cannot make members disagree.
    Held(HeldReason),
}

/// One member's copy of a group: the roster and the roster messages held per sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupReplica {
    /// The roster as this member knows it.
    pub state: RosterState,
    /// Per sender, the join of its states not applied yet.
    held_states: BTreeMap<MemberKey, RosterState>,
    /// Per sender without an entry yet, the greatest stamp of its leaves.
    held_leaves: BTreeMap<MemberKey, u64>,
}

impl GroupReplica {
    /// A replica starting from `state`.
    pub fn new(state: RosterState) -> Self {
        Self {
            state,
            held_states: BTreeMap::new(),
            held_leaves: BTreeMap::new(),
        }
    }

    /// Whether anything is held.
    pub fn has_held(&self) -> bool {
        !self.held_states.is_empty() || !self.held_leaves.is_empty()
    }

    /// Decides on a roster message from `sender` (the session's peer). A state is applied only
    /// if the sender is an admin here; otherwise it is held. A leave always applies to the
    /// sender's own entry (it can only take the sender out), or is held until the entry exists.
    pub fn receive_roster(
        &mut self,
        sender: &MemberKey,
        message: RosterMessage,
    ) -> Result<RosterOutcome, GroupError> {
        let outcome = match message {
            RosterMessage::State(state) => {
                if self.state.is_admin(sender) {
                    RosterOutcome::Applied {
                        changed: self.state.join(&state),
                    }
                } else {
                    let reason = if self.state.is_member(sender) {
                        HeldReason::NotAdmin
                    } else {
                        HeldReason::NotMember
                    };
                    self.held_states
                        .entry(*sender)
                        .and_modify(|held| {
                            held.join(&state);
                        })
                        .or_insert(state);
                    RosterOutcome::Held(reason)
                }
            }
            RosterMessage::Leave { stamp } => {
                if stamp == 0 || stamp > MAX_STAMP {
                    return Err(GroupError::MalformedRoster);
                }
                if self.state.entry(sender).is_some() {
                    RosterOutcome::Applied {
                        changed: self.state.apply_leave(sender, stamp),
                    }
                } else {
                    let held = self.held_leaves.entry(*sender).or_insert(stamp);
                    *held = (*held).max(stamp);
                    RosterOutcome::Held(HeldReason::NotMember)
                }
            }
        };
        if let RosterOutcome::Applied { changed: true } = outcome {
            self.release_held();
            return Ok(RosterOutcome::Applied { changed: true });
        }
        Ok(outcome)
    }

    /// Applies whatever became applicable, until nothing more does. Returns whether anything
    /// was applied.
    fn release_held(&mut self) -> bool {
        let mut any = false;
        loop {
            let mut progressed = false;
            let ready: Vec<MemberKey> = self
                .held_states
                .keys()
                .filter(|sender| self.state.is_admin(sender))
                .copied()
                .collect();
            for sender in ready {
                if let Some(state) = self.held_states.remove(&sender) {
                    self.state.join(&state);
                    progressed = true;
                }
            }
            let ready: Vec<MemberKey> = self
                .held_leaves
                .keys()
                .filter(|sender| self.state.entry(sender).is_some())
                .copied()
                .collect();
            for sender in ready {
                if let Some(stamp) = self.held_leaves.remove(&sender) {
                    self.state.apply_leave(&sender, stamp);
                    progressed = true;
                }
            }
            if !progressed {
                return any;
            }
            any = true;
        }
    }

    /// Decides on a group message (a text, receipts or an introduction) from `sender`: refused
    /// unless the sender is a member now. A removed or departed member is refused whatever it
    /// claims to have known: refusing one sent before it learned of its removal is the safe
    /// side, since a removed member can always claim not to have known.
    pub fn check_message(&self, sender: &MemberKey) -> Result<(), GroupError> {
        if self.state.is_member(sender) {
            Ok(())
        } else {
            Err(GroupError::NotMember)
        }
    }

    /// The members a message from `me` goes to: every member but `me`. A removed member is not
    /// among them, so nothing is sealed to it after its removal.
    pub fn recipients(&self, me: &MemberKey) -> Vec<MemberKey> {
        self.state
            .members()
            .into_iter()
            .map(|(key, _)| key)
            .filter(|key| key != me)
            .collect()
    }

    /// `me` authors a leave: an admin sends its whole state (so everything it ever changed
    /// travels with its departure), a member only its stamp.
    pub fn leave(&mut self, me: &MemberKey) -> Result<RosterMessage, GroupError> {
        let was_admin = self.state.is_admin(me);
        let stamp = self.state.leave(me)?;
        Ok(if was_admin {
            RosterMessage::State(self.state.clone())
        } else {
            RosterMessage::Leave { stamp }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(n: u8) -> MemberKey {
        MemberKey::from_bytes([n; 64])
    }

    fn genesis() -> RosterState {
        let mut state =
            RosterState::genesis(key(1), "Team", "", &[key(2), key(3), key(4), key(5)]).unwrap();
        state.promote(&key(1), &key(2)).unwrap();
        state
    }

    #[test]
    fn a_state_from_a_member_without_the_role_is_held_not_applied() {
        let mut replica = GroupReplica::new(genesis());
        let mut forged = genesis();
        forged.promote(&key(1), &key(3)).unwrap(); // member 3 pretends to be admin
        forged.remove(&key(3), &key(4)).unwrap();
        let outcome = replica
            .receive_roster(&key(3), RosterMessage::State(forged))
            .unwrap();
        assert_eq!(outcome, RosterOutcome::Held(HeldReason::NotAdmin));
        assert_eq!(replica.state, genesis());
        let outcome = replica
            .receive_roster(&key(9), RosterMessage::State(genesis()))
            .unwrap();
        assert_eq!(outcome, RosterOutcome::Held(HeldReason::NotMember));
        assert_eq!(replica.state, genesis());
    }

    #[test]
    fn a_held_state_is_applied_once_its_author_is_promoted() {
        let mut admin1 = genesis();
        admin1.promote(&key(1), &key(3)).unwrap();
        let mut admin3 = admin1.clone();
        admin3.add(&key(3), key(7)).unwrap();
        let mut replica = GroupReplica::new(genesis());
        // The promotion is late; the new admin's change arrives first.
        assert_eq!(
            replica
                .receive_roster(&key(3), RosterMessage::State(admin3.clone()))
                .unwrap(),
            RosterOutcome::Held(HeldReason::NotAdmin)
        );
        assert!(!replica.state.is_member(&key(7)));
        replica
            .receive_roster(&key(1), RosterMessage::State(admin1))
            .unwrap();
        assert!(replica.state.is_member(&key(7)));
        assert_eq!(replica.state, admin3);
        assert!(!replica.has_held());
    }

    #[test]
    fn a_leave_touches_only_the_senders_entry() {
        let mut replica = GroupReplica::new(genesis());
        replica
            .receive_roster(&key(4), RosterMessage::Leave { stamp: 2 })
            .unwrap();
        assert!(!replica.state.is_member(&key(4)));
        assert!(replica.state.is_member(&key(5)));
        assert_eq!(
            replica.receive_roster(
                &key(4),
                RosterMessage::Leave {
                    stamp: MAX_STAMP + 1
                }
            ),
            Err(GroupError::MalformedRoster)
        );
    }

    #[test]
    fn messages_from_non_members_are_refused_and_removed_members_get_nothing() {
        let mut admin = genesis();
        admin.remove(&key(1), &key(5)).unwrap();
        let mut replica = GroupReplica::new(genesis());
        assert_eq!(replica.check_message(&key(5)), Ok(()));
        replica
            .receive_roster(&key(1), RosterMessage::State(admin))
            .unwrap();
        assert_eq!(replica.check_message(&key(5)), Err(GroupError::NotMember));
        assert_eq!(replica.check_message(&key(9)), Err(GroupError::NotMember));
        assert!(!replica.recipients(&key(3)).contains(&key(5)));
        assert!(!replica.recipients(&key(3)).contains(&key(3)));
    }

    // ---- group_membership_converges ----------------------------------------------------------

    /// Participants: 1 and 2 start as admins, 3..=6 as members, 7..=9 can be added.
    const PARTICIPANTS: u8 = 9;

    #[derive(Clone, Debug)]
    enum Action {
        Add {
            actor: u8,
            target: u8,
        },
        Remove {
            actor: u8,
            target: u8,
        },
        Promote {
            actor: u8,
            target: u8,
        },
        Rename {
            actor: u8,
            name: u8,
        },
        Leave {
            actor: u8,
        },
        /// Set the disappearing timer to setting `setting` (0 = off).
        SetTimer {
            actor: u8,
            setting: u8,
        },
        /// Deliver the pending message picked by the index; keep a copy if `duplicate`.
        Deliver {
            pick: usize,
            duplicate: bool,
        },
        /// Lose the pending message picked by the index (unless it is the last one from its
        /// sender to its recipient: each author's latest state always arrives in the end).
        Lose {
            pick: usize,
        },
    }

    fn action() -> impl Strategy<Value = Action> {
        let who = 1..=PARTICIPANTS;
        prop_oneof![
            (who.clone(), who.clone()).prop_map(|(actor, target)| Action::Add { actor, target }),
            (who.clone(), who.clone()).prop_map(|(actor, target)| Action::Remove { actor, target }),
            (who.clone(), who.clone())
                .prop_map(|(actor, target)| Action::Promote { actor, target }),
            (who.clone(), 0u8..4).prop_map(|(actor, name)| Action::Rename { actor, name }),
            who.clone().prop_map(|actor| Action::Leave { actor }),
            (who, 0u8..5).prop_map(|(actor, setting)| Action::SetTimer { actor, setting }),
            (any::<usize>(), any::<bool>())
                .prop_map(|(pick, duplicate)| Action::Deliver { pick, duplicate }),
            (any::<usize>(), any::<bool>())
                .prop_map(|(pick, duplicate)| Action::Deliver { pick, duplicate }),
            any::<usize>().prop_map(|pick| Action::Lose { pick }),
        ]
    }

    struct Pending {
        from: u8,
        to: u8,
        /// Per (from, to), increasing: the largest is the last sent.
        order: u64,
        message: RosterMessage,
    }

    struct World {
        replicas: Vec<GroupReplica>,
        pending: Vec<Pending>,
        sent: u64,
    }

    impl World {
        fn new() -> Self {
            let start = genesis();
            Self {
                replicas: (0..PARTICIPANTS)
                    .map(|_| GroupReplica::new(start.clone()))
                    .collect(),
                pending: Vec::new(),
                sent: 0,
            }
        }

        fn replica(&mut self, who: u8) -> &mut GroupReplica {
            &mut self.replicas[usize::from(who - 1)]
        }

        fn broadcast(&mut self, from: u8, message: RosterMessage) {
            for to in 1..=PARTICIPANTS {
                if to != from {
                    self.sent += 1;
                    self.pending.push(Pending {
                        from,
                        to,
                        order: self.sent,
                        message: message.clone(),
                    });
                }
            }
        }

        fn admin_op(
            &mut self,
            actor: u8,
            op: impl FnOnce(&mut RosterState) -> Result<(), GroupError>,
        ) {
            let replica = self.replica(actor);
            if op(&mut replica.state).is_ok() {
                let state = replica.state.clone();
                self.broadcast(actor, RosterMessage::State(state));
            }
        }

        fn is_last(&self, index: usize) -> bool {
            let item = &self.pending[index];
            !self.pending.iter().any(|other| {
                other.from == item.from && other.to == item.to && other.order > item.order
            })
        }

        fn deliver(&mut self, index: usize, duplicate: bool) {
            let item = if duplicate {
                let item = &self.pending[index];
                Pending {
                    from: item.from,
                    to: item.to,
                    order: item.order,
                    message: item.message.clone(),
                }
            } else {
                self.pending.remove(index)
            };
            let sender = key(item.from);
            self.replica(item.to)
                .receive_roster(&sender, item.message)
                .unwrap();
        }

        fn run(&mut self, action: Action) {
            match action {
                Action::Add { actor, target } => {
                    self.admin_op(actor, |s| s.add(&key(actor), key(target)))
                }
                Action::Remove { actor, target } => {
                    self.admin_op(actor, |s| s.remove(&key(actor), &key(target)))
                }
                Action::Promote { actor, target } => {
                    self.admin_op(actor, |s| s.promote(&key(actor), &key(target)))
                }
                Action::Rename { actor, name } => {
                    let name = ["Team", "Crew", "チーム", "Band"][usize::from(name)];
                    self.admin_op(actor, |s| s.rename(&key(actor), name, ""));
                }
                Action::SetTimer { actor, setting } => {
                    let timer = usize::from(setting)
                        .checked_sub(1)
                        .and_then(|index| crate::store::DisappearingTimer::ALL.get(index).copied());
                    self.admin_op(actor, |s| s.set_timer(&key(actor), timer));
                }
                Action::Leave { actor } => {
                    if let Ok(message) = self.replica(actor).leave(&key(actor)) {
                        self.broadcast(actor, message);
                    }
                }
                Action::Deliver { pick, duplicate } => {
                    if !self.pending.is_empty() {
                        let index = pick % self.pending.len();
                        self.deliver(index, duplicate);
                    }
                }
                Action::Lose { pick } => {
                    if !self.pending.is_empty() {
                        let index = pick % self.pending.len();
                        if !self.is_last(index) {
                            self.pending.remove(index);
                        }
                    }
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Two admins (and members they promote) change the roster concurrently while the relay
        /// loses, duplicates and reorders messages: once each author's latest message has
        /// arrived, every member holds the same roster (entries, name, disappearing timer and
        /// clock).
        #[test]
        fn group_membership_converges(
            actions in proptest::collection::vec(action(), 1..120),
            drain in proptest::collection::vec(any::<usize>(), 0..64),
        ) {
            let mut world = World::new();
            for action in actions {
                world.run(action);
            }
            // The rest arrives in a random order.
            let mut picks = drain.into_iter();
            while !world.pending.is_empty() {
                let index = picks.next().unwrap_or(0) % world.pending.len();
                world.deliver(index, false);
            }
            let first = world.replicas[0].state.clone();
            for (index, replica) in world.replicas.iter().enumerate() {
                prop_assert_eq!(&replica.state, &first, "replica {} differs", index + 1);
            }
            prop_assert!(first.members().len() <= super::super::MAX_GROUP_MEMBERS);
        }
    }
}
