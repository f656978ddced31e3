//! Shared helpers for the integration tests: a real relay on loopback, keys, bounded waits.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use sealpost_relay::{Relay, RelayConfig, RelayHandle, TlsConfig};
use sealpost_relay_client::{Connector, ConnectorConfig, RelayUrl, Timeouts, TlsRoots};

/// Every wait in these tests is bounded by this; nothing asserts on timing.
pub const BOUND: Duration = Duration::from_secs(30);

/// Awaits `future` or fails the test after [`BOUND`].
pub async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(BOUND, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// Starts a real relay with its database in `dir`.
pub async fn start_relay(dir: &Path, listen: SocketAddr, tls: Option<TlsConfig>) -> RelayHandle {
    let config = RelayConfig {
        listen,
        database: dir.join("relay.db").into(),
        tls,
        ..RelayConfig::default()
    };
    Relay::start(config).await.expect("relay starts")
}

/// Starts a relay on 127.0.0.1:0.
pub async fn start_loopback_relay(dir: &Path) -> RelayHandle {
    start_relay(dir, "127.0.0.1:0".parse().unwrap(), None).await
}

/// The ws:// URL of a relay.
pub fn ws_url(relay: &RelayHandle) -> RelayUrl {
    RelayUrl::parse(&format!("ws://{}", relay.addr())).unwrap()
}

/// A connector that trusts no system roots (tests never reach the internet).
pub fn connector() -> Connector {
    connector_with_timeouts(Timeouts::default())
}

/// [`connector`] with other timeouts.
pub fn connector_with_timeouts(timeouts: Timeouts) -> Connector {
    Connector::new(ConnectorConfig {
        roots: TlsRoots {
            skip_system_roots: true,
            extra_ca_pem: None,
        },
        timeouts,
        ..ConnectorConfig::default()
    })
    .unwrap()
}

/// A deterministic Ed25519 key.
pub fn key(byte: u8) -> SigningKey {
    SigningKey::from_bytes(&[byte; 32])
}
