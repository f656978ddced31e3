//! The local test relay (`ARCHITECTURE.md` § Local test relay mode): an embedded `sealpost-relay`
//! on loopback, shared by every profile of one user, so that two profiles chat on one desktop with
//! no server anywhere.
//!
//! How profiles share it:
//! - It listens on a fixed, configurable port on `127.0.0.1` ([`DEFAULT_LOCAL_RELAY_PORT`]), with
//!   one database per user: `<data root>/local-relay/relay.db`.
//! - Whoever holds the exclusive OS lock on `<data root>/local-relay/relay.lock` hosts it and
//!   writes the port it listens on to `relay.port` beside the lock. Any other profile that starts
//!   local mode finds the lock taken, reads the port and joins: it only connects.
//! - A profile that joined keeps trying the lock. When the host quits (or crashes: the OS drops
//!   the lock with the process), the first profile to get the lock starts the relay on the same
//!   port and database, so the invites already shared (which carry the URL) keep working.
//!
//! Nothing here is desktop-specific: the app and the tests use the same code.

use std::fs::{File, OpenOptions, TryLockError};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sealpost_relay::{Relay, RelayConfig, RelayHandle};
use tokio::task::JoinHandle;

/// The local relay's port unless the user picks another (settings → local relay).
pub const DEFAULT_LOCAL_RELAY_PORT: u16 = 47474;

/// Folder under the data root that holds the local relay's lock, port file and database.
pub const LOCAL_RELAY_DIR_NAME: &str = "local-relay";

/// How often a profile that joined someone else's relay tries to take over hosting.
const TAKEOVER_INTERVAL: Duration = Duration::from_millis(750);

/// Errors from starting or joining the local relay.
#[derive(Debug, thiserror::Error)]
pub enum LocalRelayError {
    /// The local relay folder or its lock/port file could not be created or read.
    #[error("the local relay's files in {path} cannot be used: {source}")]
    Files {
        /// The file or folder.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Port 0 was asked for: the port must be fixed so that invites stay valid.
    #[error("the local relay needs a fixed port (1-65535), not 0")]
    PortZero,
    /// Another program already listens on the port (not a Sealpost local relay).
    #[error(
        "port {port} on 127.0.0.1 is taken by another program; choose another local relay port in Settings ({detail})"
    )]
    PortTaken {
        /// The port.
        port: u16,
        /// The bind error.
        detail: String,
    },
    /// Another profile hosts the local relay but its port file is unreadable.
    #[error(
        "another Sealpost profile runs the local relay, but its port file {path} is unreadable"
    )]
    PortFileCorrupt {
        /// The port file.
        path: PathBuf,
    },
    /// The embedded relay failed to start for another reason.
    #[error("the local relay could not start: {0}")]
    Relay(String),
}

/// Where and how the local relay runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalRelayConfig {
    /// The Sealpost data root (the folder that holds `profiles/`); the relay's files go under it.
    pub data_root: PathBuf,
    /// The loopback port to host on ([`DEFAULT_LOCAL_RELAY_PORT`] by default).
    pub port: u16,
}

impl LocalRelayConfig {
    /// The folder holding the lock, the port file and the database.
    pub fn dir(&self) -> PathBuf {
        self.data_root.join(LOCAL_RELAY_DIR_NAME)
    }
}

/// Whether this process runs the relay or uses one another profile runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalRelayRole {
    /// This process holds the lock and serves the relay.
    Hosting,
    /// Another process serves it; this one connects (and takes over if that one stops).
    Joined,
}

struct Hosted {
    handle: RelayHandle,
    // Held for as long as the relay runs: the OS lock is the "someone hosts it" signal.
    _lock: File,
}

struct Shared {
    config: LocalRelayConfig,
    port: u16,
    hosted: tokio::sync::Mutex<Option<Hosted>>,
    role: Mutex<LocalRelayRole>,
    takeover: Mutex<Option<JoinHandle<()>>>,
}

/// A running (hosted or joined) local relay. Dropping it without [`LocalRelay::stop`] stops a
/// hosted relay without waiting for it.
pub struct LocalRelay {
    shared: Arc<Shared>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn files_error(path: &Path) -> impl FnOnce(std::io::Error) -> LocalRelayError + '_ {
    move |source| LocalRelayError::Files {
        path: path.to_owned(),
        source,
    }
}

impl LocalRelay {
    /// Hosts the local relay, or joins the one another profile hosts. Needs a Tokio runtime.
    pub async fn start(config: LocalRelayConfig) -> Result<Self, LocalRelayError> {
        if config.port == 0 {
            return Err(LocalRelayError::PortZero);
        }
        let dir = config.dir();
        create_private_dir(&dir).map_err(files_error(&dir))?;
        let (port, role, hosted) = match try_host(&config, config.port).await? {
            Some(hosted) => (config.port, LocalRelayRole::Hosting, Some(hosted)),
            None => (read_port(&dir)?, LocalRelayRole::Joined, None),
        };
        let shared = Arc::new(Shared {
            config,
            port,
            hosted: tokio::sync::Mutex::new(hosted),
            role: Mutex::new(role),
            takeover: Mutex::new(None),
        });
        if role == LocalRelayRole::Joined {
            let task = tokio::spawn(take_over_when_free(shared.clone()));
            *lock(&shared.takeover) = Some(task);
        }
        tracing::info!(port, ?role, "local relay ready");
        Ok(Self { shared })
    }

    /// `ws://127.0.0.1:PORT`: what invites made in local mode carry.
    pub fn url(&self) -> String {
        url_for_port(self.shared.port)
    }

    /// The port the relay listens on (the host's, when joined).
    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// Hosting or joined, right now.
    pub fn role(&self) -> LocalRelayRole {
        *lock(&self.shared.role)
    }

    /// Stops hosting (letting in-flight requests finish and committing everything) or stops
    /// watching. Another profile that joined takes over within a second.
    pub async fn stop(self) {
        let takeover = lock(&self.shared.takeover).take();
        if let Some(task) = takeover {
            task.abort();
            let _ = task.await;
        }
        let hosted = self.shared.hosted.lock().await.take();
        // The lock file is dropped after the store is closed.
        if let Some(hosted) = hosted
            && let Err(error) = hosted.handle.shutdown().await
        {
            tracing::warn!(%error, "the local relay did not stop cleanly");
        }
    }
}

impl Drop for LocalRelay {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.shared.takeover).take() {
            task.abort();
        }
    }
}

/// `ws://127.0.0.1:PORT`.
pub fn url_for_port(port: u16) -> String {
    format!("ws://127.0.0.1:{port}")
}

/// Takes the lock and starts the relay on `port`, or returns `None` when another process holds
/// the lock.
async fn try_host(config: &LocalRelayConfig, port: u16) -> Result<Option<Hosted>, LocalRelayError> {
    let dir = config.dir();
    let lock_path = dir.join("relay.lock");
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(files_error(&lock_path))?;
    match lock_file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(None),
        Err(TryLockError::Error(source)) => {
            return Err(LocalRelayError::Files {
                path: lock_path,
                source,
            });
        }
    }
    let relay_config = RelayConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        database: dir.join("relay.db").into(),
        ..RelayConfig::default()
    };
    let handle = Relay::start(relay_config)
        .await
        .map_err(|error| match error {
            sealpost_relay::RelayError::Bind { source, .. } => LocalRelayError::PortTaken {
                port,
                detail: source.to_string(),
            },
            other => LocalRelayError::Relay(other.to_string()),
        })?;
    // The port file is written only by the lock holder, and read by everyone else.
    let port_path = dir.join("relay.port");
    std::fs::write(&port_path, port.to_string()).map_err(files_error(&port_path))?;
    Ok(Some(Hosted {
        handle,
        _lock: lock_file,
    }))
}

fn read_port(dir: &Path) -> Result<u16, LocalRelayError> {
    let path = dir.join("relay.port");
    let text = std::fs::read_to_string(&path).map_err(files_error(&path))?;
    match text.trim().parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(LocalRelayError::PortFileCorrupt { path }),
    }
}

async fn take_over_when_free(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(TAKEOVER_INTERVAL).await;
        match try_host(&shared.config, shared.port).await {
            Ok(Some(hosted)) => {
                *shared.hosted.lock().await = Some(hosted);
                *lock(&shared.role) = LocalRelayRole::Hosting;
                tracing::info!(
                    port = shared.port,
                    "took over the local relay from a profile that stopped"
                );
                return;
            }
            Ok(None) => {}
            Err(error) => {
                // e.g. the old host's port is still in TIME_WAIT or taken: keep trying.
                tracing::warn!(%error, "could not take over the local relay yet");
            }
        }
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}
