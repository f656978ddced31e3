//! Relay configuration: where to listen, where to store, TLS, the optional relay password and
//! every limit. Loadable from TOML (all fields optional; defaults below) and overridable by
//! command-line flags in the binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Everything [`crate::Relay::start`] needs.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// Address to listen on; port 0 picks a free port (see [`crate::RelayHandle::addr`]).
    pub listen: SocketAddr,
    /// Where envelopes are stored: a SQLite file path, or a `postgres://` URL shared by several
    /// relay nodes (see [`Database`]).
    pub database: Database,
    /// Certificate chain and private key (PEM) for wss://; plain ws:// when absent.
    pub tls: Option<TlsConfig>,
    /// Relay password CREATE must present (like SMP basic auth); anyone may CREATE when absent.
    pub password: Option<String>,
    /// Address of the Prometheus metrics endpoint (`GET /metrics`, plain HTTP); off when absent.
    pub metrics_listen: Option<SocketAddr>,
    /// Where per-IP limits take the client address from behind a load balancer (`[client_address]`);
    /// by default the TCP peer.
    pub client_address: crate::ClientAddressConfig,
    /// All limits.
    pub limits: Limits,
}

impl std::fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hand-written so the relay password never reaches a log.
        f.debug_struct("RelayConfig")
            .field("listen", &self.listen)
            .field("database", &self.database)
            .field("tls", &self.tls)
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("metrics_listen", &self.metrics_listen)
            .field("client_address", &self.client_address)
            .field("limits", &self.limits)
            .finish()
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7443)),
            database: Database::Sqlite(PathBuf::from("sealpost-relay.db")),
            tls: None,
            password: None,
            metrics_listen: None,
            client_address: crate::ClientAddressConfig::default(),
            limits: Limits::default(),
        }
    }
}

/// The store: parsed from one string (TOML key `database`, flag `--database`). A value starting
/// with `postgres://` or `postgresql://` is a PostgreSQL connection URL; anything else is the
/// path of a SQLite file (created if absent; `-wal`/`-shm` files beside it).
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub enum Database {
    /// One SQLite file: one relay node.
    Sqlite(PathBuf),
    /// A PostgreSQL database: any number of relay nodes may share it.
    #[cfg(feature = "postgres")]
    Postgres(PostgresUrl),
}

/// A parsed PostgreSQL connection URL. Its password never reaches Debug output or logs.
#[cfg(feature = "postgres")]
#[derive(Clone)]
pub struct PostgresUrl(Box<tokio_postgres::Config>);

#[cfg(feature = "postgres")]
impl PostgresUrl {
    /// The driver's connection settings.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.0
    }
}

#[cfg(feature = "postgres")]
impl std::fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hand-written: host, port and database name only, never user or password.
        let hosts: Vec<String> = self
            .0
            .get_hosts()
            .iter()
            .map(|host| match host {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        f.debug_struct("PostgresUrl")
            .field("hosts", &hosts)
            .field("ports", &self.0.get_ports())
            .field("dbname", &self.0.get_dbname())
            .finish()
    }
}

/// A `database` value that starts like a PostgreSQL URL but does not parse as one.
#[derive(Debug, thiserror::Error)]
#[error("invalid postgres:// database URL: {0}")]
pub struct DatabaseUrlError(String);

impl Database {
    /// Parses a `database` value (see [`Database`]).
    pub fn parse(value: &str) -> Result<Self, DatabaseUrlError> {
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            {
                let config = value
                    .parse::<tokio_postgres::Config>()
                    .map_err(|error| DatabaseUrlError(error.to_string()))?;
                Ok(Self::Postgres(PostgresUrl(Box::new(config))))
            }
            #[cfg(not(feature = "postgres"))]
            Err(DatabaseUrlError(
                "this build has no PostgreSQL backend (the `postgres` feature is off)".to_owned(),
            ))
        } else {
            Ok(Self::Sqlite(PathBuf::from(value)))
        }
    }
}

impl TryFrom<String> for Database {
    type Error = DatabaseUrlError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl std::str::FromStr for Database {
    type Err = DatabaseUrlError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::parse(value)
    }
}

impl From<PathBuf> for Database {
    fn from(path: PathBuf) -> Self {
        Self::Sqlite(path)
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            #[cfg(feature = "postgres")]
            Self::Postgres(url) => f.debug_tuple("Postgres").field(url).finish(),
        }
    }
}

/// PEM files for TLS.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A token-bucket rate: `per_second` sustained, up to `burst` at once.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Sustained requests per second (at least 1).
    pub per_second: u32,
    /// Largest burst (at least 1).
    pub burst: u32,
}

/// Every limit the relay enforces. Times are in milliseconds or seconds as named.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest WebSocket message (and frame) accepted, bytes. Default 128 KiB.
    pub max_frame_bytes: usize,
    /// Largest envelope accepted in SEND, bytes. Default 120 KiB.
    pub max_envelope_bytes: usize,
    /// Memory for partly received messages of all connections together, bytes: a message's
    /// declared size beyond `read_buffer_bytes` is charged from its first frame header to its
    /// last byte; a connection whose new message does not fit is closed (code 1013). Default
    /// 128 MiB.
    pub partial_messages_budget_bytes: usize,
    /// tungstenite read buffer per connection, bytes, and the bytes of a message a connection
    /// may hold while receiving it without charge to `partial_messages_budget_bytes`. Default
    /// 1 KiB (grows for larger frames): the buffer is kept for the connection's life, so it is
    /// most of an idle connection's memory (`docs/benchmarks.md` § Protocol version 4).
    pub read_buffer_bytes: usize,
    /// tungstenite write buffer per connection, bytes. Default 4 KiB.
    pub write_buffer_bytes: usize,
    /// Frames queued for one connection before it counts as a slow reader (deliveries pause at
    /// half of it). Default 4 096.
    pub write_queue_frames: usize,
    /// Bytes queued for one connection before it counts as a slow reader (deliveries pause at
    /// half of it). Default 4 MiB.
    pub write_queue_bytes: usize,
    /// A single write blocked longer than this disconnects the reader, ms. Default 10 s.
    pub write_timeout_ms: u64,
    /// TCP accept to finished TLS + WebSocket handshake, ms. Default 10 s.
    pub handshake_timeout_ms: u64,
    /// Close a connection that sent nothing (not even a pong) for this long, ms. Default 90 s.
    pub idle_timeout_ms: u64,
    /// Send a WebSocket ping this often, ms. Default 30 s.
    pub ping_interval_ms: u64,
    /// Most simultaneous connections; more are closed at once. Default 20 000.
    pub max_connections: usize,
    /// Most mailboxes one connection may subscribe. Default 1 024.
    pub max_subscriptions_per_connection: usize,
    /// Most sender sessions (SENDER-SESSION, `docs/relay-protocol.md` § 4.4) one connection
    /// holds; a new one beyond it replaces an older one. Default 128.
    pub max_sender_sessions_per_connection: usize,
    /// Most requests of one connection being processed at once (pipelining). Default 64.
    pub max_pipelined_requests: usize,
    /// Unacknowledged envelopes pushed per subscribed mailbox. Default 256 (was 8, then 64: the
    /// engine commits one batch while it opens the next, and the bigger the window, the more it
    /// has opened when a commit ends; a 10,000-envelope backlog drains in 1.4-1.8 s instead of
    /// 2.2 s, `docs/benchmarks.md` § Client engine). What is pushed stays bounded by the
    /// connection's write queue (`write_queue_bytes`, `write_queue_frames`).
    pub window: u16,
    /// Requests per connection. Default 500/s, burst 1 000.
    pub rate_per_connection: Rate,
    /// Requests per client IP address (all its connections). Default 5 000/s, burst 10 000.
    pub rate_per_ip: Rate,
    /// CREATEs per client IP address. Default 1/s, burst 20.
    pub create_rate_per_ip: Rate,
    /// New connections per client IP address. Default 50/s, burst 200.
    pub connect_rate_per_ip: Rate,
    /// Most envelopes stored per mailbox. Default 1 000.
    pub mailbox_max_envelopes: u64,
    /// Most envelope bytes stored per mailbox. Default 64 MiB.
    pub mailbox_max_bytes: u64,
    /// Envelopes older than this are deleted, seconds. Default 21 days.
    pub envelope_ttl_secs: u64,
    /// Mailboxes whose owner did nothing (CREATE, SUBSCRIBE, ACK, SECURE) for this long are
    /// deleted with their envelopes, seconds. Default 90 days.
    pub mailbox_idle_ttl_secs: u64,
    /// How often the sweeper runs, ms. Default 60 s.
    pub sweep_interval_ms: u64,
    /// Most operations the writer commits in one transaction (group commit). Default 2 048.
    pub group_commit_max: usize,
    /// How long shutdown waits for connections to flush, ms. Default 5 s.
    pub shutdown_grace_ms: u64,
    /// Largest blob, bytes: BLOB-CREATE with `chunk_count` × 65 552 above it is `TooLarge`.
    /// Default 128 MiB.
    pub blob_max_bytes: u64,
    /// Most recipients (download ids) of one blob. Default 1 000.
    pub blob_max_downloads: usize,
    /// Blobs (whole or partly uploaded) are deleted this long after BLOB-CREATE, seconds.
    /// Default 28 days.
    pub blob_ttl_secs: u64,
    /// Blob bytes one connection may declare in BLOB-CREATEs. Default 1 GiB.
    pub blob_quota_per_connection_bytes: u64,
    /// Blob bytes one client IP address may declare per `blob_quota_per_ip_window_secs`
    /// (a token bucket in memory, refilling evenly). Default 4 GiB.
    pub blob_quota_per_ip_bytes: u64,
    /// The window of `blob_quota_per_ip_bytes`, seconds. Default 1 day.
    pub blob_quota_per_ip_window_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 128 * 1024,
            max_envelope_bytes: 120 * 1024,
            partial_messages_budget_bytes: 128 * 1024 * 1024,
            read_buffer_bytes: 1024,
            write_buffer_bytes: 4 * 1024,
            write_queue_frames: 4096,
            write_queue_bytes: 4 * 1024 * 1024,
            write_timeout_ms: 10_000,
            handshake_timeout_ms: 10_000,
            idle_timeout_ms: 90_000,
            ping_interval_ms: 30_000,
            max_connections: 20_000,
            max_subscriptions_per_connection: 1024,
            max_sender_sessions_per_connection: 128,
            max_pipelined_requests: 64,
            window: 256,
            rate_per_connection: Rate {
                per_second: 500,
                burst: 1000,
            },
            rate_per_ip: Rate {
                per_second: 5000,
                burst: 10_000,
            },
            create_rate_per_ip: Rate {
                per_second: 1,
                burst: 20,
            },
            connect_rate_per_ip: Rate {
                per_second: 50,
                burst: 200,
            },
            mailbox_max_envelopes: 1000,
            mailbox_max_bytes: 64 * 1024 * 1024,
            envelope_ttl_secs: 21 * 24 * 3600,
            mailbox_idle_ttl_secs: 90 * 24 * 3600,
            sweep_interval_ms: 60_000,
            group_commit_max: 2048,
            shutdown_grace_ms: 5_000,
            blob_max_bytes: 128 * 1024 * 1024,
            blob_max_downloads: 1000,
            blob_ttl_secs: 28 * 24 * 3600,
            blob_quota_per_connection_bytes: 1024 * 1024 * 1024,
            blob_quota_per_ip_bytes: 4 * 1024 * 1024 * 1024,
            blob_quota_per_ip_window_secs: 24 * 3600,
        }
    }
}

impl Limits {
    /// `write_timeout_ms` as a duration.
    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }
    /// `handshake_timeout_ms` as a duration.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }
    /// `idle_timeout_ms` as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
    /// `ping_interval_ms` as a duration.
    pub fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.ping_interval_ms.max(1))
    }
    /// `sweep_interval_ms` as a duration.
    pub fn sweep_interval(&self) -> Duration {
        Duration::from_millis(self.sweep_interval_ms.max(1))
    }
    /// `shutdown_grace_ms` as a duration.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "postgres")]
    #[test]
    fn a_postgres_url_selects_postgres_and_its_password_stays_out_of_debug() {
        let text = "database = \"postgres://relay:hunter2@db.internal:5433/sealpost\"";
        let config: RelayConfig = toml::from_str(text).unwrap();
        let Database::Postgres(url) = &config.database else {
            panic!("expected PostgreSQL, got {:?}", config.database);
        };
        assert_eq!(url.config().get_dbname(), Some("sealpost"));
        assert_eq!(url.config().get_ports(), &[5433]);
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("relay:"), "{debug}");
        assert!(toml::from_str::<RelayConfig>("database = \"postgres://h/d?bogus=1\"").is_err());
        let sqlite: RelayConfig = toml::from_str("database = \"/var/lib/r.db\"").unwrap();
        assert!(
            matches!(sqlite.database, Database::Sqlite(p) if p == std::path::Path::new("/var/lib/r.db"))
        );
    }

    #[test]
    fn toml_overrides_defaults_and_rejects_unknown_keys() {
        let text = r#"
            listen = "0.0.0.0:443"
            database = "/var/lib/sealpost/relay.db"
            password = "s3cret"
            [tls]
            cert = "/etc/sealpost/cert.pem"
            key = "/etc/sealpost/key.pem"
            [limits]
            window = 16
            rate_per_ip = { per_second = 10, burst = 20 }
        "#;
        let config: RelayConfig = toml::from_str(text).unwrap();
        assert_eq!(config.listen.port(), 443);
        assert_eq!(config.limits.window, 16);
        assert_eq!(
            config.limits.rate_per_ip,
            Rate {
                per_second: 10,
                burst: 20
            }
        );
        assert_eq!(config.limits.max_frame_bytes, 128 * 1024);
        assert!(config.tls.is_some());
        assert!(
            !format!("{config:?}").contains("s3cret"),
            "password never in Debug output"
        );
        assert!(toml::from_str::<RelayConfig>("lisen = \"127.0.0.1:1\"").is_err());
        assert!(matches!(config.database, Database::Sqlite(_)));
        assert!(toml::from_str::<RelayConfig>("[limits]\nwindw = 3").is_err());
    }
}
