//! Our signed prekey: its lifetime, the refresh that tells every contact (`PrekeyUpdate`) and the
//! pruning of old prekey secrets (`docs/engine.md` § Prekey lifetimes).

use std::time::Duration;

use sealpost_crypto::{SignedPrekey, SignedPrekeyPair};

use super::error::EngineError;
use super::state::{Engine, Inner, lock};
use crate::content::{Body, CONTENT_VERSION, Content};
use crate::store::{SignedPrekeySecretBytes, Store, UnixMillis};

/// How long our signed prekey is used before the engine makes a new one (on open).
pub const SIGNED_PREKEY_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long a retired signed prekey is kept to answer late initial messages (an invite or a
/// restart sealed to it shortly before the refresh) before its secret is deleted (forward
/// secrecy, T7: `docs/crypto.md` § What is kept how long). Longer than [`INVITE_LIFETIME`](super::INVITE_LIFETIME), so
/// an invite made just before a refresh can still be accepted until it expires.
pub const RETIRED_SIGNED_PREKEY_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

impl Engine {
    /// Makes a new signed prekey, retires the current one (kept to answer late initial messages
    /// that name it) and tells every contact it can send to, inside a ratchet message
    /// (`PrekeyUpdate`, §3a.6), so a session broken beyond MAX_SKIP can restart X3DH with the
    /// latest one. Everything is one store transaction. Returns how many contacts were told.
    /// The engine calls it on open when the current prekey is older than
    /// [`SIGNED_PREKEY_LIFETIME`].
    pub async fn refresh_signed_prekey(&self) -> Result<usize, EngineError> {
        let told = self.inner.refresh_signed_prekey()?;
        self.inner.prune_prekey_secrets(UnixMillis::now())?;
        self.inner.outbox_wake.notify_one();
        Ok(told)
    }
}

impl Inner {
    pub(super) fn current_signed_prekey(&self, store: &Store) -> Result<SignedPrekey, EngineError> {
        let (_, secret) = store
            .current_signed_prekey()?
            .ok_or(EngineError::NotOnboarded)?;
        let pair = SignedPrekeyPair::from_secret_bytes(secret.expose_secret())?;
        Ok(*pair.public())
    }

    /// See [`Engine::refresh_signed_prekey`].
    pub(super) fn refresh_signed_prekey(&self) -> Result<usize, EngineError> {
        let fresh = SignedPrekeyPair::generate(&self.identity)?;
        let update = Content {
            v: CONTENT_VERSION,
            seq: 0,
            sent_at_ms: u64::try_from(UnixMillis::now().0).unwrap_or(0),
            body: Body::PrekeyUpdate {
                signed_prekey: fresh.public().to_bytes().to_vec(),
            },
            receipts: Vec::new(),
        };
        lock(&self.store).transaction(|store| -> Result<usize, EngineError> {
            let now = UnixMillis::now();
            if let Some((old, _)) = store.current_signed_prekey()? {
                store.retire_signed_prekey(old, now)?;
            }
            store.insert_signed_prekey(
                fresh.id().0,
                &SignedPrekeySecretBytes::new(fresh.to_secret_bytes().to_vec()),
                now,
            )?;
            let mut told = 0;
            for chat in store.chat_list()? {
                let contact = chat.contact;
                if contact.sending_blocked_reason().is_some()
                    || store.session_state(contact.id)?.is_none()
                    || store.peer_addresses(contact.id)?.is_empty()
                {
                    continue;
                }
                self.seal_and_commit(store, contact.id, None, &update)?;
                told += 1;
            }
            Ok(told)
        })
    }

    /// Deletes prekey secrets that can no longer be needed (forward secrecy, T7): signed
    /// prekeys retired more than [`RETIRED_SIGNED_PREKEY_GRACE`] before `now`, and the one-time
    /// prekey secrets of expired invites. Runs on open and after each refresh.
    pub(super) fn prune_prekey_secrets(&self, now: UnixMillis) -> Result<(), EngineError> {
        let grace = i64::try_from(RETIRED_SIGNED_PREKEY_GRACE.as_millis()).unwrap_or(i64::MAX);
        let cutoff = UnixMillis(now.0.saturating_sub(grace));
        let mut store = lock(&self.store);
        let signed = store.delete_signed_prekeys_retired_before(cutoff)?;
        let one_time = store.forget_expired_invite_secrets(now)?;
        if signed > 0 || one_time > 0 {
            tracing::info!(signed, one_time, "old prekey secrets deleted");
        }
        Ok(())
    }

    /// Whether our current signed prekey is older than [`SIGNED_PREKEY_LIFETIME`].
    pub(super) fn signed_prekey_expired(&self) -> Result<bool, EngineError> {
        let store = lock(&self.store);
        let Some((id, _)) = store.current_signed_prekey()? else {
            return Ok(false);
        };
        let Some(created_at) = store.signed_prekey_created_at(id)? else {
            return Ok(false);
        };
        let lifetime = i64::try_from(SIGNED_PREKEY_LIFETIME.as_millis()).unwrap_or(i64::MAX);
        Ok(UnixMillis::now().0.saturating_sub(created_at.0) > lifetime)
    }
}
