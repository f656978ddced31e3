//! Operational metrics in the Prometheus (OpenMetrics) text format, for the relay's operator.
//!
//! Counted always (atomic adds), served only when `metrics_listen` is set: a tiny HTTP/1.1
//! listener on its own address answers `GET /metrics` and nothing else. No label carries a
//! mailbox id, an address or anything else per user: the only labels are the command name and
//! the refusal reason, both from fixed lists.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A client frame, by what it asked for.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub(crate) enum Command {
    /// CREATE.
    Create,
    /// SUBSCRIBE.
    Subscribe,
    /// ACK.
    Ack,
    /// DELETE.
    Delete,
    /// SECURE.
    Secure,
    /// SENDER-SESSION.
    SenderSession,
    /// SEND.
    Send,
    /// Any blob command (BLOB-CREATE, -PUT, -STATUS, -GET, -DELETE).
    Blob,
    /// A binary message that did not decode as a frame.
    Undecodable,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabel {
    command: Command,
}

/// Why the relay refused something under a quota or limit.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub(crate) enum Refusal {
    /// SEND to a full mailbox (`QuotaExceeded`).
    MailboxFull,
    /// A request over the per-connection or per-address rate (`RateLimited`).
    RateLimited,
    /// A CREATE over the per-address CREATE rate.
    CreateRateLimited,
    /// SUBSCRIBE over `max_subscriptions_per_connection`.
    SubscriptionLimit,
    /// A connection over `max_connections`.
    ConnectionLimit,
    /// A connection over the per-address connect rate.
    ConnectRateLimited,
    /// A message over `max_frame_bytes` or an envelope over `max_envelope_bytes`.
    TooLarge,
    /// A partial message the relay-wide budget could not hold.
    PartialMessageBudget,
    /// A reader too slow for its write queue.
    SlowReader,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabel {
    reason: Refusal,
}

/// Every metric the relay keeps.
pub(crate) struct Metrics {
    registry: Registry,
    connections_open: Gauge,
    connections: Counter,
    frames: Family<CommandLabel, Counter>,
    envelopes_stored: Counter,
    envelopes_delivered: Counter,
    commit_operations: Histogram,
    commit_seconds: Histogram,
    refusals: Family<RefusalLabel, Counter>,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("sealpost_relay");
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "WebSocket connections open now",
            connections_open.clone(),
        );
        let connections = Counter::default();
        registry.register(
            "connections",
            "WebSocket connections accepted",
            connections.clone(),
        );
        let frames = Family::<CommandLabel, Counter>::default();
        registry.register(
            "frames",
            "Client frames received, by command",
            frames.clone(),
        );
        let envelopes_stored = Counter::default();
        registry.register(
            "envelopes_stored",
            "Envelopes durably stored (SEND answered Ok)",
            envelopes_stored.clone(),
        );
        let envelopes_delivered = Counter::default();
        registry.register(
            "envelopes_delivered",
            "Envelopes pushed to subscribers (MESSAGE frames, redeliveries included)",
            envelopes_delivered.clone(),
        );
        let commit_operations = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        registry.register(
            "commit_operations",
            "Store operations per group commit (one transaction, one fsync)",
            commit_operations.clone(),
        );
        let commit_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "commit_seconds",
            "Time to apply and commit one group commit",
            commit_seconds.clone(),
        );
        let refusals = Family::<RefusalLabel, Counter>::default();
        registry.register(
            "refusals",
            "Requests or connections refused by a quota or limit, by reason",
            refusals.clone(),
        );
        Self {
            registry,
            connections_open,
            connections,
            frames,
            envelopes_stored,
            envelopes_delivered,
            commit_operations,
            commit_seconds,
            refusals,
        }
    }

    pub(crate) fn connection_opened(&self) {
        self.connections.inc();
        self.connections_open.inc();
    }

    pub(crate) fn connection_closed(&self) {
        self.connections_open.dec();
    }

    pub(crate) fn frame(&self, command: Command) {
        self.frames.get_or_create(&CommandLabel { command }).inc();
    }

    pub(crate) fn stored(&self) {
        self.envelopes_stored.inc();
    }

    pub(crate) fn delivered(&self) {
        self.envelopes_delivered.inc();
    }

    pub(crate) fn commit(&self, operations: usize, took: Duration) {
        self.commit_operations.observe(operations as f64);
        self.commit_seconds.observe(took.as_secs_f64());
    }

    pub(crate) fn refused(&self, reason: Refusal) {
        self.refusals.get_or_create(&RefusalLabel { reason }).inc();
    }

    /// The text exposition.
    fn render(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!(%error, "cannot encode metrics");
        }
        text
    }
}

/// Largest request head the metrics endpoint reads.
const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// Serves `GET /metrics` on `listener` until shutdown; one request per connection.
pub(crate) async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = crate::stopped(&mut shutdown) => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), answer(stream, &metrics)).await;
        });
    }
}

async fn answer(mut stream: tokio::net::TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut chunk).await?;
        if read == 0 || head.len() + read > MAX_REQUEST_BYTES {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..read]);
    }
    let response = if head.starts_with(b"GET /metrics ") {
        let body = metrics.render();
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; \
             charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    } else {
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
    };
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Binds the metrics listener.
pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, crate::RelayError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| crate::RelayError::Bind { addr, source })
}
