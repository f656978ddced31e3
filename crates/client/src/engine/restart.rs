//! Restarting a session with X3DH to the peer's latest signed prekey (`docs/engine.md`
//! § Session restart). Only authenticated input replaces a session: an
//! authentic message of the contact's that lies beyond MAX_SKIP (the ratchet opened it on a
//! scratch chain, `CryptoError::AuthenticGapBeyondMaxSkip`), the user's own "repair session"
//! action, or the contact's X3DH-authenticated `Restart` (accepted here if it comes from the
//! same identity key, is newer than any restart it saw, and wins the tie-break). A forged or
//! garbled envelope never gets here.

use std::sync::Arc;

use sealpost_crypto::{OpenedEnvelope, PrekeyBundle, Session, SessionMessage, SignedPrekey};

use super::envelope::{refuse, responder_session};
use super::error::EngineError;
use super::state::{Inner, identity_from_bytes, lock};
use crate::content::{Body, CONTENT_VERSION, Content};
use crate::store::{ContactId, Received, ReceivedContent, SessionStateBytes, Store, UnixMillis};

/// Setting: the last restart generation we sent to a contact (suffix: the contact id).
const RESTART_SENT_KEY: &str = "engine.restart-sent.";
/// Setting: the highest authentic restart generation a contact sent us (suffix: contact id).
const RESTART_SEEN_KEY: &str = "engine.restart-seen.";

fn generation(store: &Store, key: &str) -> Result<u64, EngineError> {
    Ok(store
        .setting(key)?
        .and_then(|value| value.parse::<u64>().ok())
        .unwrap_or(0))
}

/// What authenticated a restart of ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RestartCause {
    /// The contact's ratchet message opened (on a scratch chain) but lies beyond MAX_SKIP.
    AuthenticGap,
    /// The user asked to repair the session (`Engine::repair_session`).
    UserRepair,
    /// The profile was restored from a backup: its sessions were deleted and every contact is
    /// restarted on the first open (`engine/backup.rs`, `docs/backup.md`).
    Restored,
}

/// Starts a new session with X3DH to the contact's latest signed prekey (no one-time prekey)
/// and seals a `Restart` on it, all in one transaction. Call it only on authenticated grounds
/// ([`RestartCause`]). For an authentic gap it does nothing while a restart of ours still
/// awaits its reply or while sending is blocked; the user's repair restarts even then (the
/// earlier `Restart` may be lost) and refuses a blocked contact with its typed error.
pub(super) fn restart_session(
    inner: &Arc<Inner>,
    contact: ContactId,
    cause: RestartCause,
) -> Result<(), EngineError> {
    let by_user = cause == RestartCause::UserRepair;
    {
        let mut store = lock(&inner.store);
        let Some(row) = store.contact(contact)? else {
            return if by_user {
                Err(EngineError::ContactNotFound)
            } else {
                Ok(())
            };
        };
        if let Some(reason) = row.sending_blocked_reason() {
            return if by_user {
                Err(crate::store::StoreError::SendingBlocked { reason }.into())
            } else {
                Ok(())
            };
        }
        if !by_user
            && let Some(state) = store.session_state(contact)?
            && Session::from_bytes(state.expose_secret())?.is_awaiting_reply()
        {
            return Ok(());
        }
        let Some(prekey) = row.peer_signed_prekey.as_ref() else {
            return Err(EngineError::NoPeerPrekey { contact });
        };
        let identity = identity_from_bytes(row.identity_key.as_bytes())?;
        let prekey = SignedPrekey::from_bytes(prekey.as_bytes())?;
        let bundle = PrekeyBundle::new(identity, prekey, None)?;
        let session = Session::initiate(&inner.identity, &bundle)?;
        let state = SessionStateBytes::new(session.to_bytes()?.to_vec());
        let sent_key = format!("{RESTART_SENT_KEY}{contact}");
        store.transaction(|store| -> Result<(), EngineError> {
            let next = generation(store, &sent_key)?.saturating_add(1);
            store.save_session_state(contact, &state, UnixMillis::now())?;
            store.set_setting(&sent_key, &next.to_string())?;
            let content = Content {
                v: CONTENT_VERSION,
                seq: 0,
                sent_at_ms: u64::try_from(UnixMillis::now().0).unwrap_or(0),
                body: Body::Restart { generation: next },
                receipts: Vec::new(),
            };
            inner.seal_and_commit(store, contact, None, &content)
        })?;
    }
    tracing::info!(?cause, "session restarted with X3DH");
    inner.outbox_wake.notify_one();
    Ok(())
}

/// An X3DH initial message from the contact's own identity key with a base key other than our
/// session's: accepted as a session restart if it names no one-time prekey (a restart uses the
/// signed prekey alone; this also keeps an old invite `Hello` out), opens against one of our
/// signed prekeys, carries a `Restart` newer than any we saw from this contact (replay guard),
/// and wins the tie-break against a restart of ours that awaits its reply (the session whose
/// initiator has the lexicographically smaller identity key wins). Returns whether to ACK.
pub(super) fn accept_restart(
    inner: &Arc<Inner>,
    contact: ContactId,
    opened: &OpenedEnvelope,
) -> Result<bool, EngineError> {
    let SessionMessage::Initial(initial) = opened.payload() else {
        return refuse(inner, "a new session offered without an initial message");
    };
    if initial.one_time_prekey_id().is_some() {
        return refuse(
            inner,
            "an initial message naming a one-time prekey is no restart",
        );
    }
    let (session, content) = match responder_session(inner, opened, None) {
        Ok(pair) => pair,
        Err(reason) => return refuse(inner, format!("session restart did not open: {reason}")),
    };
    let Body::Restart {
        generation: offered,
    } = content.body
    else {
        // A later message of a restart we did not accept (or lost the tie-break to ours).
        return refuse(inner, "a message of a session that was not accepted");
    };
    let seen_key = format!("{RESTART_SEEN_KEY}{contact}");
    let mut store = lock(&inner.store);
    if generation(&store, &seen_key)? >= offered {
        return refuse(inner, "a replayed or outdated session restart");
    }
    let ours_wins = match store.session_state(contact)? {
        Some(state) => {
            let current = Session::from_bytes(state.expose_secret())?;
            current.is_awaiting_reply()
                && inner.identity.public().to_bytes() < opened.sender().to_bytes()
        }
        None => false,
    };
    let envelope_id = opened.envelope_id();
    let now = UnixMillis::now();
    let state = SessionStateBytes::new(session.to_bytes()?.to_vec());
    store.transaction(|store| -> Result<(), EngineError> {
        // Authentic: never accept this generation (or an older one) again, won or lost.
        store.set_setting(&seen_key, &offered.to_string())?;
        // Losing the tie-break keeps our session: the envelope is only recorded as seen.
        let session_state = if ours_wins {
            store
                .session_state(contact)?
                .ok_or(EngineError::NoSession { contact })?
        } else {
            state
        };
        store.commit_received(&Received {
            contact,
            envelope_id,
            session_state,
            content: ReceivedContent::SessionOnly,
            received_at: now,
        })?;
        Ok(())
    })?;
    drop(store);
    if ours_wins {
        return refuse(
            inner,
            "both sides restarted; our restart wins the tie-break",
        );
    }
    lock(&inner.fresh_restarts).insert(contact);
    tracing::info!("the contact restarted the session with X3DH");
    Ok(true)
}
