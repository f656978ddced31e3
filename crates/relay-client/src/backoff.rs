//! Jittered exponential backoff for reconnects: `base · 2^attempt`, capped at `max`, with the
//! delay drawn uniformly from the upper half of that ("equal jitter"), so clients that lost one
//! relay together do not come back together, yet never retry at once.

use std::time::Duration;

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// First delay (before jitter). Default 500 ms.
    pub base: Duration,
    /// Largest delay (before jitter). Default 60 s.
    pub max: Duration,
    /// A connection that stayed up this long resets the backoff to `base`. Default 30 s.
    pub stable_after: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            max: Duration::from_secs(60),
            stable_after: Duration::from_secs(30),
        }
    }
}

/// Backoff state: how many failures in a row.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    attempt: u32,
}

impl Backoff {
    /// Starts at attempt 0.
    pub fn new(config: BackoffConfig) -> Self {
        Self { config, attempt: 0 }
    }

    /// The settings.
    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }

    /// Back to the first delay (after a stable connection).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The ceiling for the current attempt: `min(max, base · 2^attempt)`.
    fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(30)).unwrap_or(u32::MAX);
        self.config
            .base
            .saturating_mul(factor)
            .min(self.config.max.max(self.config.base))
    }

    /// The next delay, in `[ceiling/2, ceiling]`, and one more attempt counted.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        let span = u64::try_from((ceiling - half).as_micros()).unwrap_or(u64::MAX);
        // Jitter needs no cryptographic quality; if the OS source fails, no jitter.
        let random = getrandom::u64().unwrap_or(0);
        let offset = if span == 0 { 0 } else { random % (span + 1) };
        half + Duration::from_micros(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_jitters_and_resets() {
        let config = BackoffConfig {
            base: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            stable_after: Duration::from_secs(1),
        };
        let mut backoff = Backoff::new(config);
        let ceilings = [100u64, 200, 400, 800, 1000, 1000, 1000];
        for ceiling in ceilings {
            let delay = backoff.next_delay();
            let ceiling = Duration::from_millis(ceiling);
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{delay:?} vs {ceiling:?}"
            );
        }
        for _ in 0..100 {
            backoff.next_delay();
        }
        assert!(backoff.next_delay() <= Duration::from_millis(1000));
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }
}
