//! Binding mailboxes to a contact's sender keys: the sender keys we make for a peer's addresses,
//! and the queue of SECUREs sent to our relays (`docs/engine.md` § SECURE).

use std::sync::Weak;

use ed25519_dalek::SigningKey;
use sealpost_relay_client::{AuthPublicKey, RelayUrl as WireUrl};

use super::error::EngineError;
use super::state::{Inner, array32, backoff_delay, lock, random32, store_url};
use crate::content::SenderKey;
use crate::store::{
    ContactId, PeerAddress, SealingPublicKeyBytes, SendId, SendSecretBytes, SenderAuthSecretBytes,
    Store, UnixMillis,
};

/// A peer's address (where we send to a contact) as received in an invite or a Hello.
pub(crate) struct PeerAddressParts<'a> {
    pub(crate) url: &'a str,
    pub(crate) send_id: &'a [u8],
    pub(crate) send_secret: &'a [u8],
    pub(crate) sealing_public_key: &'a [u8],
}

/// Stores a peer's address for `contact` with a fresh sender auth key of ours (the key SECURE
/// binds the mailbox to), and returns its public half to announce in Hello/Welcome.
pub(crate) fn store_peer_address_with_new_sender_key(
    store: &mut Store,
    contact: ContactId,
    address: &PeerAddressParts<'_>,
    now: UnixMillis,
) -> Result<SenderKey, EngineError> {
    let key = SigningKey::from_bytes(&random32()?);
    store.upsert_peer_address(&PeerAddress {
        contact,
        relay_url: store_url(address.url)?,
        send_id: SendId::new(address.send_id.to_vec()),
        send_secret: SendSecretBytes::new(address.send_secret.to_vec()),
        sealing_public_key: SealingPublicKeyBytes::new(address.sealing_public_key.to_vec()),
        sender_auth_secret_key: SenderAuthSecretBytes::new(key.to_bytes().to_vec()),
        created_at: now,
    })?;
    Ok(SenderKey {
        url: address.url.to_owned(),
        send_id: address.send_id.to_vec(),
        public_key: key.verifying_key().to_bytes().to_vec(),
    })
}

/// Queues the SECURE that binds each of our mailboxes for `contact` to the sender key the peer
/// announced for it, and wakes [`secure_loop`], which sends it (and retries it until the relay
/// has it, across restarts).
///
/// The Hello path queues inside its first-contact transaction instead ([`queue_secures`]); the
/// Welcome path queues right after its batch commit, so a crash in between can lose that
/// SECURE (`docs/engine.md` § SECURE).
pub(super) async fn secure_mailboxes(inner: &Inner, contact: ContactId, keys: &[SenderKey]) {
    queue_secures(&mut lock(&inner.store), contact, keys);
    inner.secure_wake.notify_one();
}

/// Queues the SECUREs of [`secure_mailboxes`] in `store` (inside the caller's transaction, if
/// any); a key naming an unknown mailbox or relay is skipped.
pub(super) fn queue_secures(
    store: &mut crate::store::Store,
    contact: ContactId,
    keys: &[SenderKey],
) {
    for key in keys {
        let Ok(url) = store_url(&key.url) else {
            continue;
        };
        let send_id = crate::store::SendId::new(key.send_id.clone());
        if let Err(error) = store.queue_secure(contact, &url, &send_id, &key.public_key) {
            tracing::warn!(%error, "could not queue a SECURE");
        }
    }
}

/// Sends every queued SECURE, each over a fresh owner connection, until none is left. After a
/// pass in which one failed it waits a jittered backoff; a new SECURE or a relay that comes
/// back online ([`Inner::secure_wake`]) starts a pass at once. Started on open, so SECUREs
/// queued before a restart go out after it.
pub(super) async fn secure_loop(weak: Weak<Inner>) {
    // The waits below hold only this Notify, not the engine, so a dropped engine is freed.
    let Some(wake) = weak.upgrade().map(|inner| inner.secure_wake.clone()) else {
        return;
    };
    let mut failures: u32 = 0;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let pending = match lock(&inner.store).pending_secures() {
            Ok(pending) => pending,
            Err(error) => {
                tracing::warn!(%error, "reading queued SECUREs failed");
                Vec::new()
            }
        };
        let mut failed = false;
        for item in pending {
            match secure_one(&inner, &item).await {
                Ok(()) => {
                    if let Err(error) = lock(&inner.store).complete_secure(
                        &item.relay_url,
                        &item.receive_id,
                        &item.sender_key,
                    ) {
                        tracing::warn!(%error, "could not record a SECURE as done");
                    }
                }
                Err(error) => {
                    tracing::info!(%error, "SECURE failed; retrying later");
                    failed = true;
                }
            }
        }
        let notified = wake.notified();
        if failed {
            failures = failures.saturating_add(1);
            let wait = backoff_delay(&inner, failures, false);
            drop(inner);
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(wait) => {}
            }
        } else {
            failures = 0;
            drop(inner);
            notified.await;
        }
    }
}

/// One SECURE over its own owner connection. `Ok` also when the relay says the mailbox is
/// already secured (an earlier try got through before its reply was lost) or unknown (it was
/// deleted or expired): nothing is left to do for it then.
async fn secure_one(
    inner: &Inner,
    item: &crate::store::PendingSecure,
) -> Result<(), sealpost_relay_client::ClientError> {
    use sealpost_relay_client::ClientError;
    let (Ok(public), Ok(receive_id), Ok(auth)) = (
        array32(&item.sender_key),
        array32(item.receive_id.as_bytes()),
        array32(item.auth_secret_key.expose_secret()),
    ) else {
        // Bytes that cannot be a key never will be: drop the SECURE.
        return Ok(());
    };
    let url = WireUrl::parse(item.relay_url.as_str())?;
    let auth = SigningKey::from_bytes(&auth);
    let connection = inner.connector.connect_owner(&url).await?;
    let result = connection
        .secure(
            sealpost_relay_client::ReceiveId(receive_id),
            AuthPublicKey(public),
            &auth,
        )
        .await;
    connection.close();
    match result {
        Ok(()) | Err(ClientError::AlreadySecured | ClientError::Unauthorized) => Ok(()),
        Err(error) => Err(error),
    }
}
