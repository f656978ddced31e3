//! Disappearing messages (`docs/engine.md` § Disappearing messages): the `set_chat_timer`
//! command, the body a stored outgoing message is sent as, and the expiry task.
//!
//! The store keeps the timer and deletes what expired (`store/expiry.rs`); the engine decides
//! *when*: every store access through `Inner::on_store` (and the search command) first deletes
//! what expired by [`Inner`]'s clock, `resume` does it before anything else on open, and
//! [`expiry_loop`] wakes at the next expiry (at least every [`MAX_EXPIRY_WAIT`], so a suspended
//! machine or a clock that jumped forward is caught up quickly even with the app idle).

use std::sync::Weak;
use std::time::Duration;

use super::error::EngineError;
use super::state::{Engine, Inner, lock, parse_contact};
use super::views::*;
use crate::content::{Body, CONTENT_VERSION, Content};
use crate::store::{DisappearingTimer, Message, OutgoingContent};

/// The longest the expiry task sleeps between looks (the tokio timer does not run while the
/// machine sleeps; the wall clock does).
pub const MAX_EXPIRY_WAIT: Duration = Duration::from_secs(30);

/// What a stored outgoing message is sent as: a text (timed when it has a timer), or a timer
/// change for a system line.
pub(super) fn outgoing_body(message: &Message) -> Body {
    match (message.timer_change, message.timer) {
        (Some(setting), _) => Body::TimerChange {
            timer_secs: DisappearingTimer::setting_seconds(setting),
        },
        (None, Some(timer)) => Body::TimedText {
            text: message.body.clone(),
            timer_secs: timer.seconds(),
        },
        (None, None) => Body::Text {
            text: message.body.clone(),
        },
    }
}

impl Engine {
    /// `set_chat_timer`: sets the chat's disappearing timer (`seconds`: 0 = off, or 300, 3600,
    /// 86400, 604800) for both sides: stored and applied here, sealed once and queued for the
    /// contact, who applies it on arrival (the later change wins on both sides). Returns the
    /// system line.
    pub async fn set_chat_timer(
        &self,
        contact_id: &str,
        seconds: u32,
    ) -> Result<MessageView, EngineError> {
        let contact = parse_contact(contact_id)?;
        let timer = DisappearingTimer::setting_from_seconds(seconds)
            .ok_or_else(|| EngineError::InvalidInput("timer seconds".into()))?;
        let now = self.inner.clock.now();
        let (message, _) = self
            .inner
            .blocking(move |inner| {
                let mut store = lock(&inner.store);
                inner.sweep_expired(&mut store)?;
                store.insert_and_seal_outgoing_content(
                    contact,
                    OutgoingContent::TimerChange(timer),
                    now,
                    |store, message| {
                        let content = Content {
                            v: CONTENT_VERSION,
                            seq: message.seq.get(),
                            sent_at_ms: u64::try_from(now.0).unwrap_or(0),
                            body: outgoing_body(message),
                            receipts: Vec::new(),
                        };
                        inner.seal_for(store, contact, Some(message.id), &content)
                    },
                )
            })
            .await?;
        self.inner.outbox_wake.notify_one();
        self.inner.emit(EngineEvent::ContactUpdated {
            contact_id: contact.to_string(),
        });
        Ok(MessageView::from(&message))
    }
}

/// Deletes expired messages at their expiry time until the engine goes away.
pub(super) async fn expiry_loop(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let next = inner
            .on_store(|store| Ok(store.next_expiry()?))
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "expired messages not deleted");
                None
            });
        let wait = next
            .map(|at| {
                Duration::from_millis(
                    u64::try_from(at.0.saturating_sub(inner.clock.now().0)).unwrap_or(0),
                )
            })
            .unwrap_or(MAX_EXPIRY_WAIT)
            .min(MAX_EXPIRY_WAIT)
            // At most one sweep per 100 ms when many expire together.
            .max(Duration::from_millis(100));
        drop(inner);
        tokio::time::sleep(wait).await;
    }
}
