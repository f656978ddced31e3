//! Invites: create, list, revoke, preview and accept (`docs/engine.md` § Invites, § Making a
//! contact).

use std::time::Duration;

use sealpost_crypto::{OneTimePrekeyPair, PrekeyBundle, SafetyNumber, Session};

use super::error::EngineError;
use super::secure::{PeerAddressParts, store_peer_address_with_new_sender_key};
use super::settings::read_settings;
use super::state::{Engine, Inner, check_display_name, hex_bytes, invite_name, lock, now_secs};
use super::views::*;
use crate::content::{Body, CONTENT_VERSION, Content, ReplyAddress};
use crate::invite::{Invite, InviteRelay, qr_svg};
use crate::store::{
    IdentityKeyBytes, InviteId, MailboxOwner, NewContact, NewInvite, OneTimePrekeySecretBytes,
    SessionStateBytes, StoreError, UnixMillis,
};

/// How long a new invite stays valid.
pub const INVITE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

const INVITE_TEXT_KEY: &str = "engine.invite-text.";

impl Engine {
    /// `create_invite`: fresh mailboxes on each of our relays, a one-time prekey, signed.
    pub async fn create_invite(&self) -> Result<InviteView, EngineError> {
        let (display_name, settings, signed) = {
            let store = lock(&self.inner.store);
            let record = store.profile()?.ok_or(EngineError::NotOnboarded)?;
            (
                record.display_name,
                read_settings(&store)?,
                self.inner.current_signed_prekey(&store)?,
            )
        };
        let one_time = OneTimePrekeyPair::generate()?;
        let now = UnixMillis::now();
        let lifetime_ms = i64::try_from(INVITE_LIFETIME.as_millis()).unwrap_or(i64::MAX);
        let expires_at = UnixMillis(now.0.saturating_add(lifetime_ms));
        let mut created = Vec::new();
        for url in &settings.relays {
            created.push(self.inner.create_mailbox(url).await?);
        }
        let record = lock(&self.inner.store).insert_invite(NewInvite {
            one_time_prekey_secret: OneTimePrekeySecretBytes::new(
                one_time.to_secret_bytes().to_vec(),
            ),
            created_at: now,
            expires_at,
        })?;
        let mut relays = Vec::new();
        for mailbox in &created {
            relays.push(InviteRelay {
                url: mailbox.url.clone(),
                send_id: mailbox.send_id,
                send_secret: *mailbox.send_secret.expose(),
                sealing_public_key: mailbox.sealing.public().to_bytes(),
            });
        }
        let mut invite_id = [0u8; 16];
        invite_id.copy_from_slice(
            hex_bytes(&record.id.to_string())
                .get(..16)
                .ok_or_else(|| EngineError::Internal("invite id".into()))?,
        );
        let invite = Invite {
            invite_id,
            identity: *self.inner.identity.public(),
            signed_prekey: signed,
            one_time_prekey: *one_time.public(),
            expires_at_secs: u64::try_from(expires_at.0 / 1000).unwrap_or(0),
            display_name: invite_name(&display_name),
            relays,
        };
        let text = invite.sign_to_text(&self.inner.identity)?;
        {
            let mut store = lock(&self.inner.store);
            for mailbox in created {
                self.inner.store_own_mailbox(
                    &mut store,
                    MailboxOwner::Invite(record.id),
                    mailbox,
                    now,
                )?;
            }
            store.set_setting(&format!("{INVITE_TEXT_KEY}{}", record.id), &text)?;
        }
        Ok(InviteView {
            id: record.id.to_string(),
            qr_svg: qr_svg(text.as_bytes())?,
            text,
            created_at: now.0,
            expires_at: expires_at.0,
        })
    }

    /// `list_invites`: open ones, newest first.
    pub async fn list_invites(&self) -> Result<Vec<InviteView>, EngineError> {
        let store = lock(&self.inner.store);
        let mut out = Vec::new();
        for record in store.open_invites(UnixMillis::now())? {
            let Some(text) = store.setting(&format!("{INVITE_TEXT_KEY}{}", record.id))? else {
                continue;
            };
            out.push(InviteView {
                id: record.id.to_string(),
                qr_svg: qr_svg(text.as_bytes())?,
                text,
                created_at: record.created_at.0,
                expires_at: record.expires_at.0,
            });
        }
        Ok(out)
    }

    /// `revoke_invite`: closes it and DELETEs its mailboxes on their relays.
    pub async fn revoke_invite(&self, id: &str) -> Result<(), EngineError> {
        let id: InviteId = id.parse().map_err(|_| EngineError::InviteRevoked)?;
        let deletions = {
            let mut store = lock(&self.inner.store);
            let deletions = store
                .revoke_invite(id, UnixMillis::now())
                .map_err(|e| match e {
                    StoreError::NotFound { .. } | StoreError::InviteUnavailable { .. } => {
                        EngineError::InviteRevoked
                    }
                    other => other.into(),
                })?;
            let _ = store.set_setting(&format!("{INVITE_TEXT_KEY}{id}"), "");
            deletions
        };
        self.inner.unsubscribe(&deletions);
        self.inner.clone().spawn_deletions();
        Ok(())
    }

    /// `preview_invite`: checks an invite without accepting it.
    pub async fn preview_invite(&self, text: &str) -> Result<InvitePreview, EngineError> {
        let invite = self.inner.check_invite(text)?;
        let safety = SafetyNumber::new(self.inner.identity.public(), &invite.identity);
        let digits = safety.digits();
        let preview = [0..5, 5..10, 10..15]
            .into_iter()
            .filter_map(|range| digits.get(range))
            .collect::<Vec<_>>()
            .join(" ");
        Ok(InvitePreview {
            display_name: invite.display_name.clone(),
            safety_preview: preview,
            relays: invite.relays.iter().map(|r| r.url.clone()).collect(),
            expires_at: i64::try_from(invite.expires_at_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX),
        })
    }

    /// `accept_invite`: makes the contact, our reply mailboxes and the X3DH `Hello`.
    pub async fn accept_invite(
        &self,
        text: &str,
        display_name: &str,
    ) -> Result<ChatView, EngineError> {
        let invite = self.inner.check_invite(text)?;
        let contact_name = if display_name.trim().is_empty() {
            if invite.display_name.trim().is_empty() {
                "Contact".to_owned()
            } else {
                invite.display_name.clone()
            }
        } else {
            check_display_name(display_name)?
        };
        let (our_name, settings, our_signed) = {
            let store = lock(&self.inner.store);
            let record = store.profile()?.ok_or(EngineError::NotOnboarded)?;
            (
                record.display_name,
                read_settings(&store)?,
                self.inner.current_signed_prekey(&store)?,
            )
        };
        let mut created = Vec::new();
        for url in &settings.relays {
            created.push(self.inner.create_mailbox(url).await?);
        }
        let bundle = PrekeyBundle::new(
            invite.identity,
            invite.signed_prekey,
            Some(invite.one_time_prekey),
        )?;
        let session = Session::initiate(&self.inner.identity, &bundle)?;
        let now = UnixMillis::now();
        // The contact, its session and addresses, our reply mailboxes and the sealed Hello: ONE
        // transaction, so a failure leaves no half-made contact.
        let contact_id =
            lock(&self.inner.store).transaction(|store| -> Result<_, EngineError> {
                let identity_bytes = IdentityKeyBytes::new(invite.identity.to_bytes().to_vec());
                if store.contact_by_identity_key(&identity_bytes)?.is_some() {
                    return Err(EngineError::ContactExists);
                }
                let contact = store.insert_contact(&NewContact {
                    display_name: contact_name,
                    identity_key: identity_bytes,
                    created_at: now,
                })?;
                store.set_peer_signed_prekey(
                    contact.id,
                    &crate::store::SignedPrekeyBytes::new(invite.signed_prekey.to_bytes().to_vec()),
                )?;
                let state = session.to_bytes()?;
                store.save_session_state(
                    contact.id,
                    &SessionStateBytes::new(state.to_vec()),
                    now,
                )?;
                let mut sender_keys = Vec::new();
                for relay in &invite.relays {
                    let parts = PeerAddressParts {
                        url: &relay.url,
                        send_id: &relay.send_id,
                        send_secret: &relay.send_secret,
                        sealing_public_key: &relay.sealing_public_key,
                    };
                    sender_keys.push(store_peer_address_with_new_sender_key(
                        store, contact.id, &parts, now,
                    )?);
                }
                let reply = created
                    .iter()
                    .map(|mailbox| ReplyAddress {
                        url: mailbox.url.clone(),
                        send_id: mailbox.send_id.to_vec(),
                        send_secret: mailbox.send_secret.expose().to_vec(),
                        sealing_public_key: mailbox.sealing.public().to_bytes().to_vec(),
                    })
                    .collect();
                for mailbox in created {
                    self.inner.store_own_mailbox(
                        store,
                        MailboxOwner::Contact(contact.id),
                        mailbox,
                        now,
                    )?;
                }
                let hello = Content {
                    v: CONTENT_VERSION,
                    seq: 0,
                    sent_at_ms: u64::try_from(now.0).unwrap_or(0),
                    body: Body::Hello {
                        display_name: invite_name(&our_name),
                        reply,
                        sender_keys,
                        signed_prekey: our_signed.to_bytes().to_vec(),
                    },
                    receipts: Vec::new(),
                };
                self.inner
                    .seal_and_commit(store, contact.id, None, &hello)?;
                Ok(contact.id)
            })?;
        self.inner.outbox_wake.notify_one();
        self.inner.emit(EngineEvent::ContactUpdated {
            contact_id: contact_id.to_string(),
        });
        self.chat(contact_id)
    }
}

impl Inner {
    fn check_invite(&self, text: &str) -> Result<Invite, EngineError> {
        let invite = Invite::parse(text)?;
        if invite.identity == *self.identity.public() {
            return Err(EngineError::InviteOwn);
        }
        if invite.expires_at_secs <= now_secs() {
            return Err(EngineError::InviteExpired);
        }
        let store = lock(&self.store);
        let identity_bytes = IdentityKeyBytes::new(invite.identity.to_bytes().to_vec());
        if store.contact_by_identity_key(&identity_bytes)?.is_some() {
            return Err(EngineError::InviteUsed);
        }
        Ok(invite)
    }
}
