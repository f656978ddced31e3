//! Sealing a plaintext for a contact: one ratchet step, one HPKE seal per relay address, and the
//! commit of the envelopes with the advanced session (`docs/engine.md` § Sending).

use sealpost_crypto::Session;
use zeroize::Zeroizing;

use super::error::EngineError;
use super::state::{Inner, array32};
use crate::content::{Body, CONTENT_VERSION, Content};
use crate::store::{
    ContactId, SealedEnvelopeBytes, SealedEnvelopeForRelay, SealedOutgoing, SessionStateBytes,
    Store, UnixMillis,
};

impl Inner {
    /// Seals `content` for `contact` once per relay address and commits the envelopes and the
    /// advanced session in one transaction (§3a.1).
    pub(crate) fn seal_and_commit(
        &self,
        store: &mut Store,
        contact: ContactId,
        message: Option<crate::store::MessageId>,
        content: &Content,
    ) -> Result<(), EngineError> {
        let sealed = self.seal_for(store, contact, message, content)?;
        store.commit_sealed(&sealed)?;
        Ok(())
    }

    pub(crate) fn seal_for(
        &self,
        store: &Store,
        contact: ContactId,
        message: Option<crate::store::MessageId>,
        content: &Content,
    ) -> Result<SealedOutgoing, EngineError> {
        let state = store
            .session_state(contact)?
            .ok_or_else(|| EngineError::Internal("no session with this contact".into()))?;
        let mut session = Session::from_bytes(state.expose_secret())?;
        let plaintext = Zeroizing::new(
            content
                .to_bytes()
                .map_err(|e| EngineError::Internal(e.to_string()))?,
        );
        let addresses = store.peer_addresses(contact)?;
        if addresses.is_empty() {
            return Err(EngineError::Internal("the contact has no address".into()));
        }
        let mut envelopes = Vec::with_capacity(addresses.len());
        for address in &addresses {
            let recipient = sealpost_crypto::MailboxSealingPublicKey::from_bytes(array32(
                address.sealing_public_key.as_bytes(),
            )?);
            let send_id = sealpost_crypto::SendId(array32(address.send_id.as_bytes())?);
            let sealed = session.seal(&recipient, &send_id, &plaintext)?;
            envelopes.push(SealedEnvelopeForRelay {
                relay_url: address.relay_url.clone(),
                send_id: address.send_id.clone(),
                sealed: SealedEnvelopeBytes::new(sealed.into_bytes()),
            });
        }
        Ok(SealedOutgoing {
            contact,
            message,
            session_state: SessionStateBytes::new(session.to_bytes()?.to_vec()),
            envelopes,
            now: UnixMillis::now(),
        })
    }
}

pub(super) fn receipts_only(receipts: Vec<crate::content::Receipt>) -> Content {
    Content {
        v: CONTENT_VERSION,
        seq: 0,
        sent_at_ms: u64::try_from(UnixMillis::now().0).unwrap_or(0),
        body: Body::ReceiptsOnly,
        receipts,
    }
}
