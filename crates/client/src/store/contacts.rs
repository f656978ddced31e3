//! Contacts, their identity keys (with the T8 key-change hold), session state and signed prekeys.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::mailboxes::{MailboxDeletion, queue_mailbox_deletions};
use super::types::{
    ContactId, IdentityKeyBytes, SessionStateBytes, SignedPrekeyBytes, SignedPrekeySecretBytes,
    UnixMillis,
};
use super::{Missing, Store, StoreError};

/// What is needed to add a contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewContact {
    /// The name the user sees (from the invite or typed by the user).
    pub display_name: String,
    /// The contact's identity key, `Ed25519_pub ‖ X25519_pub`.
    pub identity_key: IdentityKeyBytes,
    /// When the contact was added.
    pub created_at: UnixMillis,
}

/// A contact as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    /// Its id.
    pub id: ContactId,
    /// The name the user sees.
    pub display_name: String,
    /// The identity key sessions are bound to.
    pub identity_key: IdentityKeyBytes,
    /// The user compared safety numbers and marked it verified (reset by a key change).
    pub verified: bool,
    /// T8: a different identity key that arrived on this contact's mailbox, held until the user
    /// accepts or rejects it. While set, sending is blocked.
    pub pending_identity_key: Option<IdentityKeyBytes>,
    /// When the pending key arrived.
    pub key_changed_at: Option<UnixMillis>,
    /// The user blocked the contact: nothing is sent to it.
    pub blocked: bool,
    /// The contact's latest signed prekey, for restarting a broken session (`docs/engine.md` §
    /// Session restart).
    pub peer_signed_prekey: Option<SignedPrekeyBytes>,
    /// When it was added.
    pub created_at: UnixMillis,
}

impl Contact {
    /// Whether a message may be queued to this contact now, and if not, why.
    pub fn sending_blocked_reason(&self) -> Option<SendingBlockedReason> {
        if self.pending_identity_key.is_some() {
            Some(SendingBlockedReason::KeyChangePending)
        } else if self.blocked {
            Some(SendingBlockedReason::ContactBlocked)
        } else {
            None
        }
    }
}

/// Why nothing may be sealed for a contact ([`StoreError::SendingBlocked`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendingBlockedReason {
    /// A different identity key arrived and awaits the user's accept or reject (T8).
    #[error("the contact's identity key changed; accept or reject the change first")]
    KeyChangePending,
    /// The user blocked the contact.
    #[error("the contact is blocked")]
    ContactBlocked,
}

/// What [`Store::record_key_change`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyChangeOutcome {
    /// The key equals the contact's current key: nothing changed.
    Unchanged,
    /// The key is now held as pending; sending is blocked until the user decides.
    Held,
    /// The same key was already pending.
    AlreadyPending,
}

pub(crate) const CONTACT_COLUMNS: &str = "id, display_name, identity_key, verified, pending_identity_key, key_changed_at, \
     blocked, peer_signed_prekey, created_at";

pub(crate) fn contact_from_row(row: &Row<'_>) -> rusqlite::Result<Contact> {
    Ok(Contact {
        id: row.get(0)?,
        display_name: row.get(1)?,
        identity_key: row.get(2)?,
        verified: row.get(3)?,
        pending_identity_key: row.get(4)?,
        key_changed_at: row.get(5)?,
        blocked: row.get(6)?,
        peer_signed_prekey: row.get(7)?,
        created_at: row.get(8)?,
    })
}

impl Store {
    /// Adds a contact with a fresh random id. [`StoreError::Conflict`] if the identity key is
    /// already a contact's: a known identity key joins its existing contact (`docs/engine.md` §
    /// Making a contact), so look it up with [`Store::contact_by_identity_key`] first.
    pub fn insert_contact(&mut self, new: &NewContact) -> Result<Contact, StoreError> {
        let id = ContactId::generate()?;
        let transaction = self.write()?;
        let known: Option<ContactId> = transaction
            .query_row(
                "SELECT id FROM contacts WHERE identity_key = ?1",
                params![new.identity_key],
                |row| row.get(0),
            )
            .optional()?;
        if known.is_some() {
            return Err(StoreError::Conflict {
                what: "the identity key already belongs to a contact",
            });
        }
        transaction.execute(
            "INSERT INTO contacts (id, display_name, identity_key, created_at, last_activity_at)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![id, new.display_name, new.identity_key, new.created_at],
        )?;
        transaction.commit()?;
        Ok(Contact {
            id,
            display_name: new.display_name.clone(),
            identity_key: new.identity_key.clone(),
            verified: false,
            pending_identity_key: None,
            key_changed_at: None,
            blocked: false,
            peer_signed_prekey: None,
            created_at: new.created_at,
        })
    }

    /// One contact.
    pub fn contact(&self, id: ContactId) -> Result<Option<Contact>, StoreError> {
        Ok(self
            .connection
            .query_row(
                &format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = ?1"),
                params![id],
                contact_from_row,
            )
            .optional()?)
    }

    /// The contact whose current identity key is `key`.
    pub fn contact_by_identity_key(
        &self,
        key: &IdentityKeyBytes,
    ) -> Result<Option<Contact>, StoreError> {
        Ok(self
            .connection
            .query_row(
                &format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE identity_key = ?1"),
                params![key],
                contact_from_row,
            )
            .optional()?)
    }

    /// All contacts, by display name.
    pub fn contacts(&self) -> Result<Vec<Contact>, StoreError> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts ORDER BY display_name COLLATE NOCASE, id"
        ))?;
        let rows = statement.query_map([], contact_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Renames a contact locally.
    pub fn rename_contact(&mut self, id: ContactId, display_name: &str) -> Result<(), StoreError> {
        self.update_contact(
            "UPDATE contacts SET display_name = ?2 WHERE id = ?1",
            params![id, display_name],
        )
    }

    /// Marks a contact verified (safety numbers compared) or not.
    pub fn set_contact_verified(
        &mut self,
        id: ContactId,
        verified: bool,
    ) -> Result<(), StoreError> {
        self.update_contact(
            "UPDATE contacts SET verified = ?2 WHERE id = ?1",
            params![id, verified],
        )
    }

    /// Blocks or unblocks a contact.
    pub fn set_contact_blocked(&mut self, id: ContactId, blocked: bool) -> Result<(), StoreError> {
        self.update_contact(
            "UPDATE contacts SET blocked = ?2 WHERE id = ?1",
            params![id, blocked],
        )
    }

    /// Stores the contact's latest signed prekey (refreshed inside ratchet messages).
    pub fn set_peer_signed_prekey(
        &mut self,
        id: ContactId,
        prekey: &SignedPrekeyBytes,
    ) -> Result<(), StoreError> {
        self.update_contact(
            "UPDATE contacts SET peer_signed_prekey = ?2 WHERE id = ?1",
            params![id, prekey],
        )
    }

    /// T8: an initial message on this contact's mailbox carried `new_key`, and answering its
    /// X3DH gave `session`. If the key differs from the contact's it is held as pending together
    /// with that session (one write), the verified flag is cleared, and sending is blocked until
    /// [`Store::accept_key_change`] or [`Store::reject_key_change`]. A key already pending keeps
    /// the session it was first held with.
    pub fn record_key_change(
        &mut self,
        id: ContactId,
        new_key: &IdentityKeyBytes,
        session: &SessionStateBytes,
        now: UnixMillis,
    ) -> Result<KeyChangeOutcome, StoreError> {
        let transaction = self.write()?;
        let (current, pending): (IdentityKeyBytes, Option<IdentityKeyBytes>) = transaction
            .query_row(
                "SELECT identity_key, pending_identity_key FROM contacts WHERE id = ?1",
                params![id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?
            .ok_or(StoreError::NotFound {
                what: Missing::Contact,
            })?;
        if &current == new_key {
            return Ok(KeyChangeOutcome::Unchanged);
        }
        if pending.as_ref() == Some(new_key) {
            return Ok(KeyChangeOutcome::AlreadyPending);
        }
        transaction.execute(
            "UPDATE contacts SET pending_identity_key = ?2, pending_session_state = ?3,
             key_changed_at = ?4, verified = 0 WHERE id = ?1",
            params![id, new_key, session, now],
        )?;
        transaction.commit()?;
        Ok(KeyChangeOutcome::Held)
    }

    /// The session held with a pending key change, if any.
    pub fn pending_session_state(
        &self,
        id: ContactId,
    ) -> Result<Option<SessionStateBytes>, StoreError> {
        Ok(self
            .connection
            .query_row(
                "SELECT pending_session_state FROM contacts WHERE id = ?1",
                params![id],
                |row| row.get(0),
            )
            .optional()?
            .flatten())
    }

    /// The user accepts the pending key: in ONE transaction it becomes the contact's identity key
    /// (unverified), and the session its initial message started replaces the contact's session.
    /// [`StoreError::NotFound`] if no key is pending, or if the held session is missing (a change
    /// held by an older version whose stored session did not decode: reject it instead).
    pub fn accept_key_change(&mut self, id: ContactId, now: UnixMillis) -> Result<(), StoreError> {
        let transaction = self.write()?;
        let (pending, session): (Option<IdentityKeyBytes>, Option<SessionStateBytes>) = transaction
            .query_row(
                "SELECT pending_identity_key, pending_session_state FROM contacts WHERE id = ?1",
                params![id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?
            .ok_or(StoreError::NotFound {
                what: Missing::Contact,
            })?;
        let Some(pending) = pending else {
            return Err(StoreError::NotFound {
                what: Missing::PendingIdentityKey,
            });
        };
        let Some(session) = session else {
            return Err(StoreError::NotFound {
                what: Missing::HeldSession,
            });
        };
        let clash: Option<ContactId> = transaction
            .query_row(
                "SELECT id FROM contacts WHERE identity_key = ?1 AND id != ?2",
                params![pending, id],
                |row| row.get(0),
            )
            .optional()?;
        if clash.is_some() {
            return Err(StoreError::Conflict {
                what: "the new identity key already belongs to another contact",
            });
        }
        transaction.execute(
            "UPDATE contacts SET identity_key = pending_identity_key, pending_identity_key = NULL,
             pending_session_state = NULL, key_changed_at = NULL, verified = 0 WHERE id = ?1",
            params![id],
        )?;
        write_session(&transaction, id, &session, now)?;
        transaction.commit()?;
        Ok(())
    }

    /// The user rejects the pending key: the old key and session stay, the held session (and
    /// with it the held first messages) is dropped, and sending is allowed again. One write.
    /// [`StoreError::NotFound`] if no key is pending.
    pub fn reject_key_change(&mut self, id: ContactId) -> Result<(), StoreError> {
        let transaction = self.write()?;
        let changed = transaction.execute(
            "UPDATE contacts SET pending_identity_key = NULL, pending_session_state = NULL,
             key_changed_at = NULL WHERE id = ?1 AND pending_identity_key IS NOT NULL",
            params![id],
        )?;
        if changed == 0 {
            let exists: Option<i64> = transaction
                .query_row("SELECT 1 FROM contacts WHERE id = ?1", params![id], |row| {
                    row.get(0)
                })
                .optional()?;
            return Err(StoreError::NotFound {
                what: if exists.is_some() {
                    Missing::PendingIdentityKey
                } else {
                    Missing::Contact
                },
            });
        }
        transaction.commit()?;
        Ok(())
    }

    /// Deletes a contact with its messages, sessions, outbox and addresses. Its own mailboxes
    /// move to the relay deletion queue in the same transaction (`docs/engine.md` § Blocking and
    /// deleting a contact); they are returned so the engine can DELETE them on each relay now, and
    /// [`Store::pending_mailbox_deletions`] has them after a restart.
    pub fn delete_contact(
        &mut self,
        id: ContactId,
        now: UnixMillis,
    ) -> Result<Vec<MailboxDeletion>, StoreError> {
        let transaction = self.write()?;
        let queued = queue_mailbox_deletions(&transaction, "contact_id = ?1", params![id], now)?;
        super::search::unindex_contact_in(&transaction, id)?;
        let deleted = transaction.execute("DELETE FROM contacts WHERE id = ?1", params![id])?;
        if deleted == 0 {
            return Err(StoreError::NotFound {
                what: Missing::Contact,
            });
        }
        transaction.commit()?;
        Ok(queued)
    }

    /// The contact's current ratchet session state, if a session exists.
    pub fn session_state(
        &self,
        contact: ContactId,
    ) -> Result<Option<SessionStateBytes>, StoreError> {
        Ok(self
            .connection
            .query_row(
                "SELECT state FROM sessions WHERE contact_id = ?1",
                params![contact],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Stores a session state outside the delivery transactions (e.g. right after X3DH, before
    /// any message). Sealing and opening use [`Store::commit_sealed`] / [`Store::commit_received`].
    pub fn save_session_state(
        &mut self,
        contact: ContactId,
        state: &SessionStateBytes,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let transaction = self.write()?;
        write_session(&transaction, contact, state, now)?;
        transaction.commit()?;
        Ok(())
    }

    /// Stores one of our signed prekey secrets under its 32-bit id.
    pub fn insert_signed_prekey(
        &mut self,
        key_id: u32,
        secret: &SignedPrekeySecretBytes,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let transaction = self.write()?;
        let inserted = transaction.execute(
            "INSERT OR IGNORE INTO signed_prekeys (key_id, secret, created_at) VALUES (?1, ?2, ?3)",
            params![i64::from(key_id), secret, now],
        )?;
        if inserted == 0 {
            return Err(StoreError::Conflict {
                what: "signed prekey id already used",
            });
        }
        transaction.commit()?;
        Ok(())
    }

    /// One of our signed prekey secrets by id (retired ones still answer, for late messages).
    pub fn signed_prekey(
        &self,
        key_id: u32,
    ) -> Result<Option<SignedPrekeySecretBytes>, StoreError> {
        Ok(self
            .connection
            .query_row(
                "SELECT secret FROM signed_prekeys WHERE key_id = ?1",
                params![i64::from(key_id)],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// When one of our signed prekeys was made.
    pub fn signed_prekey_created_at(&self, key_id: u32) -> Result<Option<UnixMillis>, StoreError> {
        Ok(self
            .connection
            .query_row(
                "SELECT created_at FROM signed_prekeys WHERE key_id = ?1",
                params![i64::from(key_id)],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Our newest signed prekey that is not retired.
    pub fn current_signed_prekey(
        &self,
    ) -> Result<Option<(u32, SignedPrekeySecretBytes)>, StoreError> {
        let row: Option<(i64, SignedPrekeySecretBytes)> = self
            .connection
            .query_row(
                "SELECT key_id, secret FROM signed_prekeys WHERE retired_at IS NULL
                 ORDER BY created_at DESC, key_id DESC LIMIT 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        match row {
            None => Ok(None),
            Some((key_id, secret)) => u32::try_from(key_id)
                .map(|key_id| Some((key_id, secret)))
                .map_err(|_| StoreError::CorruptRow {
                    detail: "signed prekey id out of range".to_owned(),
                }),
        }
    }

    /// Every signed prekey secret we hold, current and retired, by id.
    pub fn signed_prekeys(&self) -> Result<Vec<(u32, SignedPrekeySecretBytes)>, StoreError> {
        let mut statement = self
            .connection
            .prepare("SELECT key_id, secret FROM signed_prekeys ORDER BY key_id")?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, SignedPrekeySecretBytes>(1)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (key_id, secret) = row?;
            let key_id = u32::try_from(key_id).map_err(|_| StoreError::CorruptRow {
                detail: "signed prekey id out of range".to_owned(),
            })?;
            out.push((key_id, secret));
        }
        Ok(out)
    }

    /// Deletes the signed prekeys retired before `cutoff` (their grace period for late initial
    /// messages is over; the engine's policy is `RETIRED_SIGNED_PREKEY_GRACE`). The current one
    /// is never retired, so never deleted here. Returns how many were deleted.
    pub fn delete_signed_prekeys_retired_before(
        &mut self,
        cutoff: UnixMillis,
    ) -> Result<usize, StoreError> {
        let transaction = self.write()?;
        let deleted = transaction.execute(
            "DELETE FROM signed_prekeys WHERE retired_at IS NOT NULL AND retired_at < ?1",
            params![cutoff],
        )?;
        transaction.commit()?;
        Ok(deleted)
    }

    /// Retires a signed prekey (kept for late messages until deleted by the engine's policy).
    pub fn retire_signed_prekey(&mut self, key_id: u32, now: UnixMillis) -> Result<(), StoreError> {
        let transaction = self.write()?;
        transaction.execute(
            "UPDATE signed_prekeys SET retired_at = ?2 WHERE key_id = ?1 AND retired_at IS NULL",
            params![i64::from(key_id), now],
        )?;
        transaction.commit()?;
        Ok(())
    }

    fn update_contact(
        &mut self,
        sql: &str,
        parameters: impl rusqlite::Params,
    ) -> Result<(), StoreError> {
        let transaction = self.write()?;
        let changed = transaction.execute(sql, parameters)?;
        if changed == 0 {
            return Err(StoreError::NotFound {
                what: Missing::Contact,
            });
        }
        transaction.commit()?;
        Ok(())
    }
}

/// Writes (inserts or replaces) a contact's session state inside the open transaction.
pub(crate) fn write_session(
    transaction: &Connection,
    contact: ContactId,
    state: &SessionStateBytes,
    now: UnixMillis,
) -> Result<(), StoreError> {
    transaction
        .prepare_cached(
            "INSERT INTO sessions (contact_id, state, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (contact_id) DO UPDATE SET state = excluded.state,
             updated_at = excluded.updated_at",
        )?
        .execute(params![contact, state, now])?;
    Ok(())
}
