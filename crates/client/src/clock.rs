//! The engine's clock: the system clock, shifted by an offset tests set. Disappearing messages
//! (`docs/engine.md` § Disappearing messages) compare expiry times with it on every store access,
//! so a test can move time forward (a clock jump, a long sleep) without waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::store::UnixMillis;

/// The time source of an engine ([`crate::EngineConfig::clock`]). Cheap to clone; clones share
/// the offset.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Milliseconds added to the system clock (0 in the app).
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// The system clock moved `ahead` into the future (a clock jump, for tests).
    pub fn ahead_by(ahead: Duration) -> Self {
        let clock = Self::default();
        clock.advance(ahead);
        clock
    }

    /// Moves this clock (and its clones) `by` further into the future.
    pub fn advance(&self, by: Duration) {
        let millis = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let _ = self
            .offset_ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |offset| {
                Some(offset.saturating_add(millis))
            });
    }

    /// Now, by this clock.
    pub fn now(&self) -> UnixMillis {
        UnixMillis(
            UnixMillis::now()
                .0
                .saturating_add(self.offset_ms.load(Ordering::SeqCst)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_advanced_clock_runs_ahead_of_the_system_clock() {
        let clock = Clock::system();
        let twin = clock.clone();
        twin.advance(Duration::from_secs(3600));
        assert!(clock.now().0 >= UnixMillis::now().0 + 3_600_000 - 1_000);
        assert!(Clock::ahead_by(Duration::from_secs(60)).now().0 > UnixMillis::now().0 + 30_000);
    }
}
