//! The Sealpost relay: a blind store-and-forward service for sealed envelopes.
//!
//! It speaks the protocol of `sealpost-wire` (see `docs/relay-protocol.md`) over binary
//! WebSocket messages, on ws:// or wss:// (rustls). Mailboxes are one-way queues with random
//! receive and send ids; envelopes are opaque bytes. Storage sits behind [`store::Store`]; the
//! default is SQLite with group commit ([`store::sqlite::SqliteStore`]); a `postgres://`
//! database ([`store::postgres::PostgresStore`]) lets several relay nodes share one database.
//!
//! Embed it with [`Relay::start`]:
//!
//! ```no_run
//! # async fn demo() -> Result<(), sealpost_relay::RelayError> {
//! let mut config = sealpost_relay::RelayConfig::default();
//! config.listen = "127.0.0.1:0".parse().expect("address");
//! config.database = std::path::PathBuf::from("/tmp/relay.db").into();
//! let relay = sealpost_relay::Relay::start(config).await?;
//! println!("listening on ws://{}", relay.addr());
//! relay.shutdown().await?;
//! # Ok(()) }
//! ```

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor::{DefaultKeyedRateLimiter, Quota as RateQuota, RateLimiter};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

mod client_address;
pub mod config;
mod connection;
mod frame_budget;
mod hub;
mod metrics;
pub mod store;
mod tls;

pub use client_address::{ClientAddressConfig, ClientAddressSource};
#[cfg(feature = "postgres")]
pub use config::PostgresUrl;
pub use config::{Database, Limits, Rate, RelayConfig, TlsConfig};
pub use sealpost_wire as wire;

use hub::Hub;
#[cfg(feature = "postgres")]
use store::postgres::PostgresStore;
use store::sqlite::SqliteStore;
use store::{AppendListener, Store};

/// Why the relay could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Binding the listen address failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Opening or closing the store failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Loading the TLS certificate or key failed.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// A limit in the configuration is unusable (e.g. a zero rate).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A relay task failed to finish.
    #[error("relay task failed: {0}")]
    Task(String),
}

/// Context label of the stored send-secret hash.
const SEND_SECRET_CONTEXT: &[u8] = b"sealpost/v1/relay/send-secret";

/// The hash the relay stores instead of a send secret:
/// `SHA-256(u32_be(29) ‖ "sealpost/v1/relay/send-secret" ‖ u32_be(32) ‖ secret)`.
pub fn send_secret_hash(secret: &sealpost_wire::SendSecret) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update((SEND_SECRET_CONTEXT.len() as u32).to_be_bytes());
    hasher.update(SEND_SECRET_CONTEXT);
    hasher.update(32u32.to_be_bytes());
    hasher.update(secret.expose());
    hasher.finalize().into()
}

/// Hash of a blob secret as the relay stores it:
/// `SHA-256(u32_be(len(context)) ‖ context ‖ u32_be(32) ‖ secret)`.
pub(crate) fn blob_secret_hash(context: &[u8], secret: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update((context.len() as u32).to_be_bytes());
    hasher.update(context);
    hasher.update(32u32.to_be_bytes());
    hasher.update(secret);
    hasher.finalize().into()
}

/// Unix time in seconds.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn rate_quota(rate: Rate, name: &str) -> Result<RateQuota, RelayError> {
    let per_second = NonZeroU32::new(rate.per_second)
        .ok_or_else(|| RelayError::Config(format!("{name}.per_second must be at least 1")))?;
    let burst = NonZeroU32::new(rate.burst)
        .ok_or_else(|| RelayError::Config(format!("{name}.burst must be at least 1")))?;
    Ok(RateQuota::per_second(per_second).allow_burst(burst))
}

/// State every connection shares.
pub(crate) struct Shared {
    pub(crate) limits: Limits,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) password_hash: Option<[u8; 32]>,
    pub(crate) per_connection_quota: RateQuota,
    pub(crate) ip_limiter: DefaultKeyedRateLimiter<IpAddr>,
    pub(crate) create_limiter: DefaultKeyedRateLimiter<IpAddr>,
    pub(crate) connect_limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Which peers are trusted proxies, and what they tell the client address with.
    pub(crate) client_address: ClientAddressConfig,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) next_connection_id: AtomicU64,
    /// A valid public key nobody holds the secret of; unknown mailboxes are verified against it
    /// so they cost the same time as a wrong signature.
    pub(crate) dummy_key: sealpost_wire::AuthPublicKey,
    /// Memory for partly received messages, shared by all connections.
    pub(crate) frame_budget: Arc<frame_budget::FrameBudget>,
    /// Operator metrics.
    pub(crate) metrics: Arc<metrics::Metrics>,
    /// Blob bytes per client address (`blob_quota_per_ip_bytes`), in chunks.
    pub(crate) blob_ip_limiter: DefaultKeyedRateLimiter<IpAddr>,
}

/// The per-address blob quota as a token bucket of chunks: `blob_quota_per_ip_bytes` at once,
/// refilled evenly over `blob_quota_per_ip_window_secs`.
fn blob_ip_quota(limits: &Limits) -> Result<RateQuota, RelayError> {
    let chunk = sealpost_wire::BLOB_CHUNK_BYTES as u64;
    let chunks = (limits.blob_quota_per_ip_bytes / chunk).clamp(1, u64::from(u32::MAX));
    let burst =
        NonZeroU32::new(u32::try_from(chunks).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
    let window = Duration::from_secs(limits.blob_quota_per_ip_window_secs.max(1));
    let period = window / burst.get();
    RateQuota::with_period(period.max(Duration::from_nanos(1)))
        .map(|quota| quota.allow_burst(burst))
        .ok_or_else(|| RelayError::Config("blob_quota_per_ip_window_secs is unusable".into()))
}

/// The relay. See [`Relay::start`].
pub struct Relay;

/// A running relay: its address and its shutdown.
pub struct RelayHandle {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept_task: tokio::task::JoinHandle<()>,
    sweeper_task: tokio::task::JoinHandle<()>,
    store: Arc<dyn Store>,
    metrics_addr: Option<SocketAddr>,
}

impl Relay {
    /// Opens the store, binds the listener and starts serving on the current Tokio runtime.
    pub async fn start(config: RelayConfig) -> Result<RelayHandle, RelayError> {
        let limits = config.limits.clone();
        let tls_acceptor = match &config.tls {
            Some(tls) => Some(tls::acceptor(tls)?),
            None => None,
        };
        let hub = Arc::new(Hub::default());
        let listener_hub = hub.clone();
        let listener: AppendListener =
            Arc::new(move |receive_id, stored| listener_hub.notify(receive_id, stored));
        let metrics = Arc::new(metrics::Metrics::new());
        let commit_metrics = metrics.clone();
        let observer: store::CommitObserver =
            Arc::new(move |operations, took| commit_metrics.commit(operations, took));
        let group_commit_max = limits.group_commit_max;
        let store: Arc<dyn Store> = match config.database.clone() {
            Database::Sqlite(path) => Arc::new(
                tokio::task::spawn_blocking(move || {
                    SqliteStore::open(&path, group_commit_max, listener, observer)
                })
                .await
                .map_err(|e| RelayError::Task(e.to_string()))??,
            ),
            #[cfg(feature = "postgres")]
            Database::Postgres(url) => {
                let cluster: Arc<dyn store::Cluster> = hub.clone();
                Arc::new(
                    PostgresStore::open(
                        url.config(),
                        group_commit_max,
                        listener,
                        observer,
                        cluster,
                    )
                    .await?,
                )
            }
        };
        let tcp = TcpListener::bind(config.listen)
            .await
            .map_err(|source| RelayError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = tcp.local_addr().map_err(|source| RelayError::Bind {
            addr: config.listen,
            source,
        })?;
        let (shutdown_sender, shutdown_receiver) = watch::channel(false);
        let metrics_addr = match config.metrics_listen {
            Some(metrics_listen) => {
                let listener = metrics::bind(metrics_listen).await?;
                let bound = listener.local_addr().map_err(|source| RelayError::Bind {
                    addr: metrics_listen,
                    source,
                })?;
                tokio::spawn(metrics::serve(
                    listener,
                    metrics.clone(),
                    shutdown_receiver.clone(),
                ));
                Some(bound)
            }
            None => None,
        };
        let dummy_signing = ed25519_dalek::SigningKey::from_bytes(
            &Sha256::digest(b"sealpost relay dummy key").into(),
        );
        let shared = Arc::new(Shared {
            password_hash: config
                .password
                .as_ref()
                .map(|p| Sha256::digest(p.as_bytes()).into()),
            per_connection_quota: rate_quota(limits.rate_per_connection, "rate_per_connection")?,
            ip_limiter: RateLimiter::keyed(rate_quota(limits.rate_per_ip, "rate_per_ip")?),
            create_limiter: RateLimiter::keyed(rate_quota(
                limits.create_rate_per_ip,
                "create_rate_per_ip",
            )?),
            connect_limiter: RateLimiter::keyed(rate_quota(
                limits.connect_rate_per_ip,
                "connect_rate_per_ip",
            )?),
            frame_budget: Arc::new(frame_budget::FrameBudget::new(
                limits.partial_messages_budget_bytes,
            )),
            metrics,
            blob_ip_limiter: RateLimiter::keyed(blob_ip_quota(&limits)?),
            limits,
            client_address: config.client_address.clone(),
            store: store.clone(),
            hub,
            shutdown: shutdown_receiver,
            next_connection_id: AtomicU64::new(1),
            dummy_key: sealpost_wire::public_key(&dummy_signing),
        });
        let accept_task = tokio::spawn(accept_loop(tcp, tls_acceptor, shared.clone()));
        let sweeper_task = tokio::spawn(sweeper(shared));
        Ok(RelayHandle {
            addr,
            shutdown: shutdown_sender,
            accept_task,
            sweeper_task,
            store,
            metrics_addr,
        })
    }
}

impl RelayHandle {
    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound metrics address, when `metrics_listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Stops accepting, lets every connection finish its in-flight requests and flush its
    /// replies (up to `shutdown_grace_ms`), commits everything queued and closes the store.
    pub async fn shutdown(mut self) -> Result<(), RelayError> {
        let _ = self.shutdown.send(true);
        let accept = std::mem::replace(&mut self.accept_task, tokio::spawn(async {}));
        accept.await.map_err(|e| RelayError::Task(e.to_string()))?;
        self.sweeper_task.abort();
        self.store.close().await?;
        Ok(())
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        // A dropped handle stops the relay (without waiting).
        let _ = self.shutdown.send(true);
    }
}

/// The per-IP connection rate: false (and counted) when `ip` opens connections too fast.
pub(crate) fn admit(shared: &Shared, ip: IpAddr) -> bool {
    if shared.connect_limiter.check_key(&ip).is_err() {
        shared.metrics.refused(metrics::Refusal::ConnectRateLimited);
        tracing::debug!("connection rate limit reached; closing new connection");
        return false;
    }
    true
}

async fn accept_loop(
    tcp: TcpListener,
    tls_acceptor: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
) {
    let permits = Arc::new(Semaphore::new(shared.limits.max_connections));
    let mut connections = JoinSet::new();
    let mut shutdown = shared.shutdown.clone();
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            accepted = tcp.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            shared.metrics.refused(metrics::Refusal::ConnectionLimit);
            tracing::debug!("connection limit reached; closing new connection");
            drop(stream);
            continue;
        };
        // A trusted proxy's connections are counted once their client address is known.
        let behind_proxy = shared.client_address.for_peer(peer.ip()) != ClientAddressSource::Peer;
        if !behind_proxy && !admit(&shared, peer.ip()) {
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let tls_acceptor = tls_acceptor.clone();
        connections.spawn(async move {
            connection::serve(stream, peer.ip(), tls_acceptor, shared).await;
            drop(permit);
        });
    }
    drop(tcp);
    let grace = shared.limits.shutdown_grace();
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("shutdown grace elapsed; aborting remaining connections");
        connections.shutdown().await;
    }
}

/// Resolves once shutdown was requested (or the handle is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await.map(|_| ());
}

async fn sweeper(shared: Arc<Shared>) {
    let mut interval = tokio::time::interval(shared.limits.sweep_interval());
    let mut shutdown = shared.shutdown.clone();
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => return,
            _ = interval.tick() => {}
        }
        let now = unix_now();
        let envelopes_before = now.saturating_sub(shared.limits.envelope_ttl_secs);
        let mailboxes_before = now.saturating_sub(shared.limits.mailbox_idle_ttl_secs);
        match shared
            .store
            .expire(envelopes_before, mailboxes_before)
            .await
        {
            Ok(expired) if expired.envelopes > 0 || expired.mailboxes > 0 => tracing::info!(
                envelopes = expired.envelopes,
                mailboxes = expired.mailboxes,
                "expired old data"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "sweep failed"),
        }
        let blobs_before = now.saturating_sub(shared.limits.blob_ttl_secs);
        match shared.store.expire_blobs(blobs_before).await {
            Ok(blobs) if blobs > 0 => tracing::info!(blobs, "expired old blobs"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "blob sweep failed"),
        }
        shared.blob_ip_limiter.retain_recent();
        shared.ip_limiter.retain_recent();
        shared.create_limiter.retain_recent();
        shared.connect_limiter.retain_recent();
    }
}
