//! Bounded waits: every wait in the tests ends, and a test that waits too long fails with what
//! it waited for. Nothing asserts on timing.

use std::future::Future;
use std::time::Duration;

/// The longest any wait in the tests lasts before the test fails.
pub const WAIT: Duration = Duration::from_secs(60);

/// Polls `check` every 25 ms until it returns true; fails the test after [`WAIT`].
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
