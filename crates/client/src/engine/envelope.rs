//! What every receive path shares: refusing an envelope (log + event), and opening an X3DH
//! initial message as the responder.

use sealpost_crypto::{
    OneTimePrekeyPair, OpenedEnvelope, Session, SessionMessage, SignedPrekeyPair,
};

use super::error::EngineError;
use super::state::{Inner, lock};
use super::views::*;
use crate::content::Content;

pub(super) fn refuse(inner: &Inner, reason: impl Into<String>) -> Result<bool, EngineError> {
    let reason = reason.into();
    tracing::info!(%reason, "envelope refused");
    inner.emit(EngineEvent::EnvelopeRefused { reason });
    Ok(true)
}

pub(super) fn responder_session(
    inner: &Inner,
    opened: &OpenedEnvelope,
    one_time: Option<&OneTimePrekeyPair>,
) -> Result<(Session, Content), String> {
    let SessionMessage::Initial(initial) = opened.payload() else {
        return Err("not an initial message".into());
    };
    let signed = lock(&inner.store)
        .signed_prekey(initial.signed_prekey_id().0)
        .map_err(|e| e.to_string())?
        .ok_or("unknown signed prekey")?;
    let signed =
        SignedPrekeyPair::from_secret_bytes(signed.expose_secret()).map_err(|e| e.to_string())?;
    let one_time = one_time.filter(|pair| Some(pair.id()) == initial.one_time_prekey_id());
    let (session, plaintext) =
        Session::respond(&inner.identity, &signed, one_time, opened).map_err(|e| e.to_string())?;
    let content = Content::from_bytes(&plaintext).map_err(|e| e.to_string())?;
    Ok((session, content))
}
