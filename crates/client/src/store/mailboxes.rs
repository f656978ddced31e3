//! Own receive mailboxes, the peers' send addresses, invites and the relay deletion queue.
//!
//! One own mailbox per contact per relay (`docs/threat-model.md` § A malicious relay), so a relay
//! cannot tell that two contacts write to one person. A mailbox is first made for an invite (owner
//! [`MailboxOwner::Invite`]); consuming the invite hands it to the new contact in the same
//! transaction.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::types::{
    ContactId, InviteId, MailboxAuthSecretBytes, MailboxId, OneTimePrekeySecretBytes, ReceiveId,
    RelayUrl, SealingPublicKeyBytes, SealingSecretBytes, SendId, SendSecretBytes,
    SenderAuthSecretBytes, UnixMillis,
};
use super::{Missing, Store, StoreError};

/// Whom an own mailbox serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailboxOwner {
    /// A contact.
    Contact(ContactId),
    /// An open invite (no contact yet).
    Invite(InviteId),
}

/// A new own mailbox, just CREATEd on a relay.
pub struct NewOwnMailbox {
    /// Whom it serves.
    pub owner: MailboxOwner,
    /// The relay.
    pub relay_url: RelayUrl,
    /// Our receive id (SUBSCRIBE/ACK/DELETE).
    pub receive_id: ReceiveId,
    /// The send id we hand out.
    pub send_id: SendId,
    /// The mailbox's Ed25519 auth secret key.
    pub auth_secret_key: MailboxAuthSecretBytes,
    /// The mailbox's X25519 sealing secret key.
    pub sealing_secret_key: SealingSecretBytes,
    /// When it was made.
    pub created_at: UnixMillis,
}

/// An own mailbox as stored. Holds secrets: no `Debug`.
pub struct OwnMailbox {
    /// Local id.
    pub id: MailboxId,
    /// The contact it serves, once known.
    pub contact: Option<ContactId>,
    /// The invite it was made for, if any.
    pub invite: Option<InviteId>,
    /// The relay.
    pub relay_url: RelayUrl,
    /// Our receive id.
    pub receive_id: ReceiveId,
    /// The send id we handed out.
    pub send_id: SendId,
    /// The auth secret key.
    pub auth_secret_key: MailboxAuthSecretBytes,
    /// The sealing secret key.
    pub sealing_secret_key: SealingSecretBytes,
    /// When it was made.
    pub created_at: UnixMillis,
}

/// A contact's mailbox on one relay, where we SEND. Holds secrets: no `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerAddress {
    /// The contact.
    pub contact: ContactId,
    /// The relay.
    pub relay_url: RelayUrl,
    /// The contact's send id there.
    pub send_id: SendId,
    /// The send secret from their invite or reply.
    pub send_secret: SendSecretBytes,
    /// The X25519 key that mailbox is sealed to.
    pub sealing_public_key: SealingPublicKeyBytes,
    /// Our secret key the mailbox is bound to by our first message.
    pub sender_auth_secret_key: SenderAuthSecretBytes,
    /// When we learned it.
    pub created_at: UnixMillis,
}

/// A new invite's stored half.
pub struct NewInvite {
    /// The invite's own one-time prekey secret (`docs/engine.md` § Invites).
    pub one_time_prekey_secret: OneTimePrekeySecretBytes,
    /// When it was made.
    pub created_at: UnixMillis,
    /// When it stops being accepted.
    pub expires_at: UnixMillis,
}

/// Where an invite stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InviteStatus {
    /// Usable.
    Open,
    /// A contact accepted it; later attempts are refused and shown to the user.
    Consumed,
    /// The user revoked it.
    Revoked,
    /// Past its expiry.
    Expired,
}

/// An invite as stored. Holds a secret: no `Debug`.
pub struct InviteRecord {
    /// Its id.
    pub id: InviteId,
    /// The one-time prekey secret while the invite is open; `None` once it is consumed, revoked
    /// or expired (deleted for forward secrecy, `docs/crypto.md` § What is kept how long).
    pub one_time_prekey_secret: Option<OneTimePrekeySecretBytes>,
    /// When it was made.
    pub created_at: UnixMillis,
    /// When it expires.
    pub expires_at: UnixMillis,
    /// The contact that consumed it (None after that contact is deleted, or if unconsumed).
    pub consumed_by: Option<ContactId>,
    /// When it was consumed.
    pub consumed_at: Option<UnixMillis>,
    /// When it was revoked.
    pub revoked_at: Option<UnixMillis>,
}

impl InviteRecord {
    /// Its status at time `now`.
    pub fn status(&self, now: UnixMillis) -> InviteStatus {
        if self.consumed_at.is_some() {
            InviteStatus::Consumed
        } else if self.revoked_at.is_some() {
            InviteStatus::Revoked
        } else if now >= self.expires_at {
            InviteStatus::Expired
        } else {
            InviteStatus::Open
        }
    }
}

/// A mailbox to DELETE on its relay (after its contact was deleted or its invite revoked).
/// Holds a secret: no `Debug`.
pub struct MailboxDeletion {
    /// The relay.
    pub relay_url: RelayUrl,
    /// The mailbox's receive id.
    pub receive_id: ReceiveId,
    /// The auth key that signs the DELETE.
    pub auth_secret_key: MailboxAuthSecretBytes,
    /// When it was queued.
    pub queued_at: UnixMillis,
}

const MAILBOX_COLUMNS: &str = "id, contact_id, invite_id, relay_url, receive_id, send_id, auth_secret_key, \
     sealing_secret_key, created_at";

fn mailbox_from_row(row: &Row<'_>) -> rusqlite::Result<OwnMailbox> {
    Ok(OwnMailbox {
        id: row.get(0)?,
        contact: row.get(1)?,
        invite: row.get(2)?,
        relay_url: row.get(3)?,
        receive_id: row.get(4)?,
        send_id: row.get(5)?,
        auth_secret_key: row.get(6)?,
        sealing_secret_key: row.get(7)?,
        created_at: row.get(8)?,
    })
}

fn peer_address_from_row(row: &Row<'_>) -> rusqlite::Result<PeerAddress> {
    Ok(PeerAddress {
        contact: row.get(0)?,
        relay_url: row.get(1)?,
        send_id: row.get(2)?,
        send_secret: row.get(3)?,
        sealing_public_key: row.get(4)?,
        sender_auth_secret_key: row.get(5)?,
        created_at: row.get(6)?,
    })
}

fn invite_from_row(row: &Row<'_>) -> rusqlite::Result<InviteRecord> {
    Ok(InviteRecord {
        id: row.get(0)?,
        one_time_prekey_secret: row.get(1)?,
        created_at: row.get(2)?,
        expires_at: row.get(3)?,
        consumed_by: row.get(4)?,
        consumed_at: row.get(5)?,
        revoked_at: row.get(6)?,
    })
}

const INVITE_COLUMNS: &str =
    "id, one_time_prekey_secret, created_at, expires_at, consumed_by, consumed_at, revoked_at";

/// Moves the own mailboxes matching `filter` into `mailbox_deletions` and deletes them.
pub(crate) fn queue_mailbox_deletions(
    transaction: &Connection,
    filter: &str,
    parameters: impl rusqlite::Params + Copy,
    now: UnixMillis,
) -> Result<Vec<MailboxDeletion>, StoreError> {
    let mut queued = Vec::new();
    {
        let mut statement = transaction.prepare(&format!(
            "SELECT relay_url, receive_id, auth_secret_key FROM own_mailboxes WHERE {filter}"
        ))?;
        let rows = statement.query_map(parameters, |row| {
            Ok(MailboxDeletion {
                relay_url: row.get(0)?,
                receive_id: row.get(1)?,
                auth_secret_key: row.get(2)?,
                queued_at: now,
            })
        })?;
        for row in rows {
            queued.push(row?);
        }
    }
    for deletion in &queued {
        transaction.execute(
            "INSERT OR REPLACE INTO mailbox_deletions (relay_url, receive_id, auth_secret_key, queued_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                deletion.relay_url,
                deletion.receive_id,
                deletion.auth_secret_key,
                now
            ],
        )?;
    }
    transaction.execute(
        &format!("DELETE FROM own_mailboxes WHERE {filter}"),
        parameters,
    )?;
    Ok(queued)
}

impl Store {
    /// Stores a new own mailbox. [`StoreError::Conflict`] if (relay, receive id) is already stored.
    pub fn insert_own_mailbox(&mut self, new: NewOwnMailbox) -> Result<OwnMailbox, StoreError> {
        let id = MailboxId::generate()?;
        let (contact, invite) = match new.owner {
            MailboxOwner::Contact(contact) => (Some(contact), None),
            MailboxOwner::Invite(invite) => (None, Some(invite)),
        };
        let transaction = self.write()?;
        let inserted = transaction.execute(
            "INSERT OR IGNORE INTO own_mailboxes (id, contact_id, invite_id, relay_url, receive_id,
             send_id, auth_secret_key, sealing_secret_key, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                id,
                contact,
                invite,
                new.relay_url,
                new.receive_id,
                new.send_id,
                new.auth_secret_key,
                new.sealing_secret_key,
                new.created_at
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::Conflict {
                what: "this relay's receive id is already stored",
            });
        }
        transaction.commit()?;
        Ok(OwnMailbox {
            id,
            contact,
            invite,
            relay_url: new.relay_url,
            receive_id: new.receive_id,
            send_id: new.send_id,
            auth_secret_key: new.auth_secret_key,
            sealing_secret_key: new.sealing_secret_key,
            created_at: new.created_at,
        })
    }

    /// Every own mailbox (to SUBSCRIBE on start), by relay.
    pub fn own_mailboxes(&self) -> Result<Vec<OwnMailbox>, StoreError> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT {MAILBOX_COLUMNS} FROM own_mailboxes ORDER BY relay_url, created_at, id"
        ))?;
        let rows = statement.query_map([], mailbox_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The own mailbox an envelope arrived on: the receiver picks the session by mailbox
    /// (`docs/engine.md` § Receiving).
    pub fn own_mailbox_by_receive_id(
        &self,
        relay_url: &RelayUrl,
        receive_id: &ReceiveId,
    ) -> Result<Option<OwnMailbox>, StoreError> {
        Ok(self
            .connection
            .query_row(
                &format!(
                    "SELECT {MAILBOX_COLUMNS} FROM own_mailboxes WHERE relay_url = ?1 AND receive_id = ?2"
                ),
                params![relay_url, receive_id],
                mailbox_from_row,
            )
            .optional()?)
    }

    /// The own mailboxes that serve `contact`.
    pub fn own_mailboxes_for_contact(
        &self,
        contact: ContactId,
    ) -> Result<Vec<OwnMailbox>, StoreError> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT {MAILBOX_COLUMNS} FROM own_mailboxes WHERE contact_id = ?1 ORDER BY relay_url"
        ))?;
        let rows = statement.query_map(params![contact], mailbox_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Stores or replaces the contact's address on one relay.
    pub fn upsert_peer_address(&mut self, address: &PeerAddress) -> Result<(), StoreError> {
        let transaction = self.write()?;
        transaction.execute(
            "INSERT INTO peer_addresses (contact_id, relay_url, send_id, send_secret,
             sealing_public_key, sender_auth_secret_key, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (contact_id, relay_url) DO UPDATE SET send_id = excluded.send_id,
             send_secret = excluded.send_secret, sealing_public_key = excluded.sealing_public_key,
             sender_auth_secret_key = excluded.sender_auth_secret_key, created_at = excluded.created_at",
            params![
                address.contact,
                address.relay_url,
                address.send_id,
                address.send_secret,
                address.sealing_public_key,
                address.sender_auth_secret_key,
                address.created_at
            ],
        )?;
        transaction.commit()?;
        Ok(())
    }

    /// The contact's addresses on every relay.
    pub fn peer_addresses(&self, contact: ContactId) -> Result<Vec<PeerAddress>, StoreError> {
        let mut statement = self.connection.prepare(
            "SELECT contact_id, relay_url, send_id, send_secret, sealing_public_key,
             sender_auth_secret_key, created_at FROM peer_addresses WHERE contact_id = ?1
             ORDER BY relay_url",
        )?;
        let rows = statement.query_map(params![contact], peer_address_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Stores a new invite with a fresh random id.
    pub fn insert_invite(&mut self, new: NewInvite) -> Result<InviteRecord, StoreError> {
        let id = InviteId::generate()?;
        let transaction = self.write()?;
        transaction.execute(
            "INSERT INTO invites (id, one_time_prekey_secret, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                id,
                new.one_time_prekey_secret,
                new.created_at,
                new.expires_at
            ],
        )?;
        transaction.commit()?;
        Ok(InviteRecord {
            id,
            one_time_prekey_secret: Some(new.one_time_prekey_secret),
            created_at: new.created_at,
            expires_at: new.expires_at,
            consumed_by: None,
            consumed_at: None,
            revoked_at: None,
        })
    }

    /// One invite.
    pub fn invite(&self, id: InviteId) -> Result<Option<InviteRecord>, StoreError> {
        Ok(self
            .connection
            .query_row(
                &format!("SELECT {INVITE_COLUMNS} FROM invites WHERE id = ?1"),
                params![id],
                invite_from_row,
            )
            .optional()?)
    }

    /// Invites still open at `now`, newest first (the "open invites" list the user can revoke).
    pub fn open_invites(&self, now: UnixMillis) -> Result<Vec<InviteRecord>, StoreError> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT {INVITE_COLUMNS} FROM invites WHERE consumed_at IS NULL AND revoked_at IS NULL
             AND expires_at > ?1 ORDER BY created_at DESC, id"
        ))?;
        let rows = statement.query_map(params![now], invite_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Single use (`docs/engine.md` § Invites): marks the invite consumed by `contact`, deletes its
    /// one-time prekey secret (forward secrecy, T7) and hands its mailboxes to that contact, in one
    /// transaction. [`StoreError::InviteUnavailable`] if it is consumed, revoked or expired;
    /// nothing changes then.
    pub fn consume_invite(
        &mut self,
        id: InviteId,
        contact: ContactId,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let transaction = self.write()?;
        let invite = transaction
            .query_row(
                &format!("SELECT {INVITE_COLUMNS} FROM invites WHERE id = ?1"),
                params![id],
                invite_from_row,
            )
            .optional()?
            .ok_or(StoreError::NotFound {
                what: Missing::Invite,
            })?;
        let status = invite.status(now);
        if status != InviteStatus::Open {
            return Err(StoreError::InviteUnavailable { status });
        }
        transaction.execute(
            "UPDATE invites SET consumed_by = ?2, consumed_at = ?3, one_time_prekey_secret = NULL
             WHERE id = ?1",
            params![id, contact, now],
        )?;
        transaction.execute(
            "UPDATE own_mailboxes SET contact_id = ?2 WHERE invite_id = ?1 AND contact_id IS NULL",
            params![id, contact],
        )?;
        transaction.commit()?;
        Ok(())
    }

    /// Revokes an open invite and deletes its one-time prekey secret; its mailboxes (never used
    /// by a contact) go to the deletion queue.
    pub fn revoke_invite(
        &mut self,
        id: InviteId,
        now: UnixMillis,
    ) -> Result<Vec<MailboxDeletion>, StoreError> {
        let transaction = self.write()?;
        let invite = transaction
            .query_row(
                &format!("SELECT {INVITE_COLUMNS} FROM invites WHERE id = ?1"),
                params![id],
                invite_from_row,
            )
            .optional()?
            .ok_or(StoreError::NotFound {
                what: Missing::Invite,
            })?;
        let status = invite.status(now);
        if matches!(status, InviteStatus::Consumed | InviteStatus::Revoked) {
            return Err(StoreError::InviteUnavailable { status });
        }
        transaction.execute(
            "UPDATE invites SET revoked_at = ?2, one_time_prekey_secret = NULL WHERE id = ?1",
            params![id, now],
        )?;
        let queued = queue_mailbox_deletions(
            &transaction,
            "invite_id = ?1 AND contact_id IS NULL",
            params![id],
            now,
        )?;
        transaction.commit()?;
        Ok(queued)
    }

    /// Deletes the one-time prekey secrets of invites that expired by `now` (consumed and
    /// revoked ones lose theirs when they close). Returns how many were deleted.
    pub fn forget_expired_invite_secrets(&mut self, now: UnixMillis) -> Result<usize, StoreError> {
        let transaction = self.write()?;
        let deleted = transaction.execute(
            "UPDATE invites SET one_time_prekey_secret = NULL
             WHERE one_time_prekey_secret IS NOT NULL AND expires_at <= ?1",
            params![now],
        )?;
        transaction.commit()?;
        Ok(deleted)
    }

    /// Mailboxes still to DELETE on their relays (`docs/engine.md` § Blocking and deleting a
    /// contact), oldest first.
    pub fn pending_mailbox_deletions(&self) -> Result<Vec<MailboxDeletion>, StoreError> {
        let mut statement = self.connection.prepare(
            "SELECT relay_url, receive_id, auth_secret_key, queued_at FROM mailbox_deletions
             ORDER BY queued_at, relay_url",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(MailboxDeletion {
                relay_url: row.get(0)?,
                receive_id: row.get(1)?,
                auth_secret_key: row.get(2)?,
                queued_at: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The relay confirmed the DELETE (or said the mailbox is gone): forget the queued row.
    pub fn complete_mailbox_deletion(
        &mut self,
        relay_url: &RelayUrl,
        receive_id: &ReceiveId,
    ) -> Result<(), StoreError> {
        let transaction = self.write()?;
        transaction.execute(
            "DELETE FROM mailbox_deletions WHERE relay_url = ?1 AND receive_id = ?2",
            params![relay_url, receive_id],
        )?;
        transaction.commit()?;
        Ok(())
    }

    /// Records that our mailbox (`relay_url`, `send_id`) serving `contact` must be bound to
    /// the peer's `sender_key` with SECURE (`docs/engine.md` § SECURE). Kept until
    /// [`Store::complete_secure`], so a SECURE the relay did not get is retried, also after a
    /// restart. Returns whether a mailbox matched.
    pub fn queue_secure(
        &mut self,
        contact: ContactId,
        relay_url: &RelayUrl,
        send_id: &SendId,
        sender_key: &[u8],
    ) -> Result<bool, StoreError> {
        let transaction = self.write()?;
        let changed = transaction.execute(
            "UPDATE own_mailboxes SET pending_sender_key = ?4
             WHERE contact_id = ?1 AND relay_url = ?2 AND send_id = ?3",
            params![contact, relay_url, send_id, sender_key],
        )?;
        transaction.commit()?;
        Ok(changed > 0)
    }

    /// Our mailboxes still waiting for their SECURE.
    pub fn pending_secures(&self) -> Result<Vec<PendingSecure>, StoreError> {
        let mut statement = self.connection.prepare(
            "SELECT relay_url, receive_id, auth_secret_key, pending_sender_key FROM own_mailboxes
             WHERE pending_sender_key IS NOT NULL ORDER BY relay_url, created_at",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(PendingSecure {
                relay_url: row.get(0)?,
                receive_id: row.get(1)?,
                auth_secret_key: row.get(2)?,
                sender_key: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The relay bound the mailbox (or said it is bound already, or gone): the SECURE is done,
    /// unless a newer key was queued meanwhile.
    pub fn complete_secure(
        &mut self,
        relay_url: &RelayUrl,
        receive_id: &ReceiveId,
        sender_key: &[u8],
    ) -> Result<(), StoreError> {
        let transaction = self.write()?;
        transaction.execute(
            "UPDATE own_mailboxes SET pending_sender_key = NULL
             WHERE relay_url = ?1 AND receive_id = ?2 AND pending_sender_key = ?3",
            params![relay_url, receive_id, sender_key],
        )?;
        transaction.commit()?;
        Ok(())
    }
}

/// An own mailbox whose SECURE has not reached its relay yet.
pub struct PendingSecure {
    /// The relay.
    pub relay_url: RelayUrl,
    /// The mailbox.
    pub receive_id: ReceiveId,
    /// Our owner key of the mailbox (signs the SECURE).
    pub auth_secret_key: MailboxAuthSecretBytes,
    /// The peer's Ed25519 sender key to bind (public).
    pub sender_key: Vec<u8>,
}
