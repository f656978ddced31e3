//! A relay in this process on 127.0.0.1:0 that can be stopped and started again on the same
//! port and database.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sealpost_relay::{Relay, RelayConfig, RelayHandle};

/// A relay on loopback in this process, with its database in a temporary directory.
pub struct TestRelay {
    handle: Option<RelayHandle>,
    /// Where it listens (kept across restarts).
    pub addr: SocketAddr,
    config: RelayConfig,
    _dir: tempfile::TempDir,
}

impl TestRelay {
    /// A relay with the default configuration.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// [`TestRelay::start`] with `adjust` applied to the config (limits, a password).
    pub async fn start_with(adjust: impl FnOnce(&mut RelayConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = RelayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database: dir.path().join("relay.db").into(),
            ..RelayConfig::default()
        };
        adjust(&mut config);
        let handle = Relay::start(config.clone()).await.unwrap();
        Self {
            addr: handle.addr(),
            handle: Some(handle),
            config,
            _dir: dir,
        }
    }

    /// `ws://ADDR`.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The relay's database file (an in-process test relay is always on SQLite, unless `adjust`
    /// chose PostgreSQL: then `None`).
    pub fn database(&self) -> Option<PathBuf> {
        match &self.config.database {
            sealpost_relay::Database::Sqlite(path) => Some(path.clone()),
            sealpost_relay::Database::Postgres(_) => None,
        }
    }

    /// Stops it gracefully (a second call does nothing).
    pub async fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await.unwrap();
        }
    }

    /// Stops it and starts it again on the same address, database and configuration (retrying
    /// while the port is still held).
    pub async fn restart(&mut self) {
        self.stop().await;
        let mut last = None;
        for _ in 0..50 {
            let config = RelayConfig {
                listen: self.addr,
                ..self.config.clone()
            };
            match Relay::start(config).await {
                Ok(handle) => {
                    self.handle = Some(handle);
                    return;
                }
                Err(error) => last = Some(error),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("relay did not restart: {last:?}");
    }
}
