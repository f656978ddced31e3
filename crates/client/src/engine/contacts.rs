//! Contact commands: safety numbers and verification, accepting or rejecting a key change (T8),
//! blocking, renaming, deleting, and repairing a session.

use sealpost_crypto::SafetyNumber;

use super::error::EngineError;
use super::state::{Engine, check_display_name, identity_from_bytes, parse_contact};
use super::views::*;
use crate::invite::qr_svg;
use crate::store::{ContactId, Store, StoreError, UnixMillis};

impl Engine {
    /// `get_safety_number`: 60 digits and a QR code. While a key change is pending (T8) they
    /// are the NEW key's — the key `accept_key_change` would install — with the current key's
    /// digits as `previous_digits`, so comparing numbers checks the key that was offered.
    pub async fn get_safety_number(
        &self,
        contact_id: &str,
    ) -> Result<SafetyNumberView, EngineError> {
        let contact = parse_contact(contact_id)?;
        let row = self
            .inner
            .on_store(move |store| store.contact(contact)?.ok_or(EngineError::ContactNotFound))
            .await?;
        let ours = self.inner.identity.public();
        let current = SafetyNumber::new(ours, &identity_from_bytes(row.identity_key.as_bytes())?);
        let (shown, previous_digits) = match &row.pending_identity_key {
            Some(pending) => {
                let offered = SafetyNumber::new(ours, &identity_from_bytes(pending.as_bytes())?);
                (offered, Some(current.digits().to_owned()))
            }
            None => (current, None),
        };
        Ok(SafetyNumberView {
            digits: shown.digits().to_owned(),
            qr_svg: qr_svg(&shown.qr_payload())?,
            is_pending_key: previous_digits.is_some(),
            previous_digits,
        })
    }

    /// `set_verified`.
    pub async fn set_verified(&self, contact_id: &str, verified: bool) -> Result<(), EngineError> {
        let contact = parse_contact(contact_id)?;
        self.inner
            .on_store(move |store| Ok(store.set_contact_verified(contact, verified)?))
            .await?;
        self.inner.emit(EngineEvent::ContactUpdated {
            contact_id: contact.to_string(),
        });
        Ok(())
    }

    /// `accept_key_change` (T8): the held identity key becomes the contact's, with the session
    /// its initial message started, in one store transaction; sending resumes.
    pub async fn accept_key_change(&self, contact_id: &str) -> Result<(), EngineError> {
        self.decide_key_change(contact_id, |store, contact| {
            store.accept_key_change(contact, UnixMillis::now())
        })
        .await
    }

    /// `reject_key_change` (T8): the contact keeps its old identity key and session; the held
    /// session and the messages that came with it are dropped (one store write); sending
    /// resumes. The contact stays unverified (the change cleared it).
    pub async fn reject_key_change(&self, contact_id: &str) -> Result<(), EngineError> {
        self.decide_key_change(contact_id, |store, contact| {
            store.reject_key_change(contact)
        })
        .await
    }

    /// The user's decision on a held key change (accept or reject, each one store write): refused
    /// unless a change is pending; afterwards sending resumes and the contact is re-read.
    async fn decide_key_change(
        &self,
        contact_id: &str,
        decide: impl FnOnce(&mut Store, ContactId) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<(), EngineError> {
        let contact = parse_contact(contact_id)?;
        self.inner
            .on_store(move |store| {
                pending_key_change(store, contact)?;
                Ok(decide(store, contact)?)
            })
            .await?;
        self.inner.outbox_wake.notify_one();
        self.inner.emit(EngineEvent::ContactUpdated {
            contact_id: contact.to_string(),
        });
        Ok(())
    }

    /// `block_contact`.
    pub async fn block_contact(&self, contact_id: &str, blocked: bool) -> Result<(), EngineError> {
        let contact = parse_contact(contact_id)?;
        self.inner
            .on_store(move |store| Ok(store.set_contact_blocked(contact, blocked)?))
            .await?;
        if !blocked {
            self.inner.outbox_wake.notify_one();
        }
        self.inner.emit(EngineEvent::ContactUpdated {
            contact_id: contact.to_string(),
        });
        Ok(())
    }

    /// `delete_contact`: deletes it locally and DELETEs its mailboxes on every relay
    /// (`docs/engine.md` § Blocking and deleting a contact).
    pub async fn delete_contact(&self, contact_id: &str) -> Result<(), EngineError> {
        let contact = parse_contact(contact_id)?;
        let (deletions, attachments) = self
            .inner
            .on_store(move |store| {
                let attachments: Vec<_> = store
                    .attachments_of_contact(contact)?
                    .into_iter()
                    .map(|row| row.id)
                    .collect();
                Ok((
                    store.delete_contact(contact, UnixMillis::now())?,
                    attachments,
                ))
            })
            .await?;
        // The rows went with the contact (cascade, committed): their chunk files go now.
        self.inner.remove_attachment_files(attachments);
        self.inner.unsubscribe(&deletions);
        self.inner.clone().spawn_deletions();
        self.inner.emit(EngineEvent::ContactUpdated {
            contact_id: contact.to_string(),
        });
        Ok(())
    }

    /// `rename_contact`.
    pub async fn rename_contact(
        &self,
        contact_id: &str,
        display_name: &str,
    ) -> Result<(), EngineError> {
        let contact = parse_contact(contact_id)?;
        let name = check_display_name(display_name)?;
        self.inner
            .on_store(move |store| Ok(store.rename_contact(contact, &name)?))
            .await?;
        self.inner.emit(EngineEvent::ContactUpdated {
            contact_id: contact.to_string(),
        });
        Ok(())
    }

    /// `repair_session`: the user's own way out of a session that no longer opens (messages
    /// refused as out of sync, or a restart that went missing). Starts a new session with X3DH
    /// to the contact's latest signed prekey and seals a `Restart` to it, exactly as an
    /// authentic gap beyond MAX_SKIP does (`docs/engine.md` § Session restart). Messages the
    /// contact sealed on the old session and we have not opened yet are lost.
    pub async fn repair_session(&self, contact_id: &str) -> Result<(), EngineError> {
        let contact = parse_contact(contact_id)?;
        self.inner
            .blocking(move |inner| {
                super::restart::restart_session(
                    inner,
                    contact,
                    super::restart::RestartCause::UserRepair,
                )
            })
            .await?;
        self.inner.emit(EngineEvent::ContactUpdated {
            contact_id: contact.to_string(),
        });
        Ok(())
    }
}

/// [`EngineError::InvalidInput`] unless a key change awaits the user's decision for `contact`.
fn pending_key_change(store: &Store, contact: ContactId) -> Result<(), EngineError> {
    let row = store
        .contact(contact)?
        .ok_or(EngineError::ContactNotFound)?;
    if row.pending_identity_key.is_none() {
        return Err(EngineError::InvalidInput(
            "no key change is pending for this contact".into(),
        ));
    }
    Ok(())
}
