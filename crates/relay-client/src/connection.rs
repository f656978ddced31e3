//! One WebSocket connection to a relay: connect, read HELLO, then typed requests and pushes.
//!
//! [`Connector::connect`] checks the [`TransportPolicy`], opens TCP (+ TLS for `wss://`), upgrades
//! to WebSocket with small buffers, and reads the relay's HELLO within the handshake timeout. A
//! background task then owns the socket:
//!
//! * requests from any [`Connection`] clone get a fresh non-zero correlation id and a oneshot for
//!   the reply (replies may come out of order; the id matches them up);
//! * pushed frames (correlation id 0: MESSAGE, END) go to the [`Pushes`] receiver through a bounded
//!   channel. When it is full the task stops reading the socket, so a slow consumer slows the
//!   relay down instead of growing memory. Replies queued behind an unread push wait too: never
//!   await a request while not draining [`Pushes`] on a connection that subscribes;
//! * WebSocket pings go out every `ping_interval`; silence longer than `idle` drops the link;
//! * any frame the relay should never send (bytes that do not decode, a text frame, an
//!   unexpected reply, a reply to an unknown id, a second HELLO) ends the connection with
//!   [`ClientError::Protocol`]. Nothing a relay sends can make this code panic.
//!
//! Every request and the push stream fail with the same terminal error once the task ends.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use sealpost_wire::{
    AuthPublicKey, ClientFrame, MessageId, Nonce, PUSH_CORRELATION_ID, ReceiveId, RelayFrame,
    Request, Response, SendId, SendSecret, decode_relay_frame, encode_client_frame, requests,
};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, client_async_tls_with_config, connect_async_tls_with_config,
};

use crate::error::{ClientError, TlsSetupError};
use crate::roles::{OwnerConnection, Role, SendConnection, SubscribeConnection};
use crate::tls::{LazyClientConfig, TlsRoots};
use crate::url::{RelayUrl, TransportPolicy};

/// Largest WebSocket message or frame accepted from a relay: the relay's 128 KiB frame limit.
pub const MAX_FRAME_BYTES: usize = 128 * 1024;

/// tungstenite read and write buffer per connection (4–8 KiB, so 10k idle connections fit the
/// memory target; `docs/relay-protocol.md` § 8 Limits).
pub const BUFFER_BYTES: usize = 8 * 1024;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The WebSocket settings every client connection uses: 8 KiB buffers, 128 KiB messages.
pub fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(BUFFER_BYTES)
        .write_buffer_size(BUFFER_BYTES)
        .max_write_buffer_size(BUFFER_BYTES + 2 * MAX_FRAME_BYTES + 1024)
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES))
}

/// Time limits of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect + TLS + WebSocket upgrade + HELLO. Default 10 s.
    pub handshake: Duration,
    /// From queuing a request to its reply. Default 30 s. On expiry the connection is dropped.
    pub request: Duration,
    /// How often to send a WebSocket ping. Default 30 s.
    pub ping_interval: Duration,
    /// Drop the connection when nothing (not even a pong) arrived for this long. Default 75 s.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            handshake: Duration::from_secs(10),
            request: Duration::from_secs(30),
            ping_interval: Duration::from_secs(30),
            idle: Duration::from_secs(75),
        }
    }
}

/// A SOCKS5 proxy every relay connection goes through (Tor: `127.0.0.1:9050`).
///
/// With a proxy set, nothing connects directly: relay names go to the proxy unresolved (SOCKS5
/// ATYP domain, no local DNS), a proxy that is down fails the connection with
/// [`ClientError::Proxy`], and each connection role uses its own SOCKS credentials so Tor
/// (IsolateSOCKSAuth, on by default) keeps the roles on separate circuits: one random pair per
/// connector for the send pool, another for subscriptions, and a fresh pair for every owner
/// connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocksProxy {
    /// The proxy's address: an IP literal and port (the proxy itself is never looked up).
    pub address: SocketAddr,
}

/// Everything a [`Connector`] needs.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// Whether plain `ws://` may go beyond loopback.
    pub policy: TransportPolicy,
    /// TLS trust anchors: system roots plus an optional extra CA.
    pub roots: TlsRoots,
    /// Time limits.
    pub timeouts: Timeouts,
    /// Pushed frames buffered per connection before reading the socket pauses. Default 64.
    pub push_capacity: usize,
    /// Route every connection through this SOCKS5 proxy (changeable later with
    /// [`Connector::set_proxy`]). Default none: direct connections.
    pub proxy: Option<SocksProxy>,
}

impl Default for ConnectorConfig {
    fn default() -> Self {
        Self {
            policy: TransportPolicy::default(),
            roots: TlsRoots::default(),
            timeouts: Timeouts::default(),
            push_capacity: 64,
            proxy: None,
        }
    }
}

/// Opens connections. Cheap to clone; build it once (it loads the system roots on its first `wss://`
/// connection, then keeps them).
#[derive(Clone)]
pub struct Connector {
    inner: Arc<ConnectorInner>,
}

struct ConnectorInner {
    policy: TransportPolicy,
    timeouts: Timeouts,
    push_capacity: usize,
    /// Built on the first `wss://` connection (`docs/benchmarks.md`, Desktop app).
    tls: LazyClientConfig,
    proxy: RwLock<Option<SocksProxy>>,
    /// SOCKS password of the send pool's connections (random per connector).
    send_isolation: String,
    /// SOCKS password of the subscription connections (random per connector).
    subscribe_isolation: String,
}

/// A random token for SOCKS stream isolation (not a secret: it only has to differ).
fn isolation_token() -> String {
    let mut bytes = [0u8; 16];
    // Without randomness every token is zeros: the roles then share credentials, which only
    // weakens circuit isolation, never the connection itself.
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The relay's HELLO: the per-connection challenge and its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// The challenge CREATE and owner signatures on this connection cover.
    pub nonce: Nonce,
    /// Largest envelope the relay accepts in SEND, bytes.
    pub max_envelope: u32,
    /// Unacknowledged envelopes the relay pushes per subscribed mailbox.
    pub window: u16,
}

/// A frame the relay pushed unasked.
#[derive(Clone, PartialEq, Eq)]
pub enum Pushed {
    /// A stored envelope of a mailbox subscribed on this connection. ACK it after it is safe.
    Message {
        /// The mailbox.
        receive_id: ReceiveId,
        /// The relay's id for it, used only to ACK.
        message_id: MessageId,
        /// When the relay stored it (Unix seconds, relay clock; never trust it for ordering).
        received_at: u64,
        /// The envelope bytes as the sender sent them.
        envelope: Vec<u8>,
    },
    /// Another connection subscribed this mailbox; no more of it arrives here.
    End {
        /// The mailbox.
        receive_id: ReceiveId,
    },
}

impl std::fmt::Debug for Pushed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pushed::Message {
                receive_id,
                message_id,
                received_at,
                envelope,
            } => f
                .debug_struct("Message")
                .field("receive_id", receive_id)
                .field("message_id", message_id)
                .field("received_at", received_at)
                .field("envelope_len", &envelope.len())
                .finish(),
            Pushed::End { receive_id } => f
                .debug_struct("End")
                .field("receive_id", receive_id)
                .finish(),
        }
    }
}

/// The receiving end of a connection's pushes.
pub struct Pushes {
    receiver: mpsc::Receiver<Pushed>,
    terminal: Arc<OnceLock<ClientError>>,
}

impl Pushes {
    /// The next push; after the connection ends, its terminal error (every call).
    pub async fn next(&mut self) -> Result<Pushed, ClientError> {
        match self.receiver.recv().await {
            Some(pushed) => Ok(pushed),
            None => Err(terminal_error(&self.terminal)),
        }
    }
}

fn terminal_error(terminal: &OnceLock<ClientError>) -> ClientError {
    terminal
        .get()
        .cloned()
        .unwrap_or(ClientError::Closed { reason: None })
}

enum Command {
    Request {
        body: Request,
        reply: oneshot::Sender<Result<Response, ClientError>>,
    },
    Ping {
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
}

/// A live connection to one relay. Cheap to clone; all clones share the socket. The socket
/// closes when every clone is dropped, on [`Connection::close`], or on any error that leaves
/// the connection's state unknown.
///
/// It offers only what every role shares (its URL, HELLO, ping, close); the relay commands
/// live on the role types [`SendConnection`], [`OwnerConnection`] and [`SubscribeConnection`],
/// which dereference to it.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<ConnectionInner>,
}

struct ConnectionInner {
    url: RelayUrl,
    hello: Hello,
    request_timeout: Duration,
    commands: mpsc::Sender<Command>,
    close: watch::Sender<bool>,
    terminal: Arc<OnceLock<ClientError>>,
    /// Sender sessions the relay accepted on this connection (`docs/relay-protocol.md` § 4.4):
    /// send id → the public sender key proven for it. SENDs to these need no signature.
    sender_sessions: std::sync::Mutex<HashMap<SendId, AuthPublicKey>>,
    /// Mailboxes this connection subscribes, as the relay sees it: shared with the socket task,
    /// which adds one when the relay answers its SUBSCRIBE `Ok` and removes it when `End`
    /// arrives, in the order the relay sent them. ACKs of these go unsigned
    /// (`docs/relay-protocol.md` § 4.3, protocol version 4).
    subscribed: Subscribed,
}

/// The mailboxes a connection subscribes (see [`ConnectionInner`]).
type Subscribed = Arc<std::sync::Mutex<HashSet<ReceiveId>>>;

/// Locks a [`Subscribed`] set. A poisoned lock only means another holder panicked mid-insert;
/// the set is still valid.
fn lock_subscribed(set: &Subscribed) -> std::sync::MutexGuard<'_, HashSet<ReceiveId>> {
    set.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Drop for ConnectionInner {
    fn drop(&mut self) {
        let _ = self.close.send(true);
    }
}

fn rustls_error(error: &WsError) -> Option<&rustls::Error> {
    match error {
        WsError::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        _ => None,
    }
}

fn map_connect_error(error: WsError) -> ClientError {
    if let Some(tls) = rustls_error(&error) {
        return match tls {
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                ClientError::Certificate(tls.to_string())
            }
            other => ClientError::Connect(format!("TLS: {other}")),
        };
    }
    match error {
        WsError::Url(url) => ClientError::Connect(format!("URL: {url}")),
        WsError::Tls(tls) => ClientError::Connect(format!("TLS: {tls}")),
        WsError::Http(response) => ClientError::Connect(format!(
            "HTTP {} instead of a WebSocket upgrade",
            response.status()
        )),
        other => ClientError::Connect(other.to_string()),
    }
}

/// The proxy's own failures are [`ClientError::Proxy`]; a proxy that works but cannot reach the
/// relay (host unreachable, refused, Tor's TTL expired) is [`ClientError::Connect`].
fn map_socks_error(error: tokio_socks::Error) -> ClientError {
    use tokio_socks::Error as Socks;
    match error {
        Socks::NetworkUnreachable
        | Socks::HostUnreachable
        | Socks::ConnectionRefused
        | Socks::TtlExpired
        | Socks::ConnectionNotAllowedByRuleset
        | Socks::GeneralSocksServerFailure => {
            ClientError::Connect(format!("through the SOCKS5 proxy: {error}"))
        }
        other => ClientError::Proxy(other.to_string()),
    }
}

fn map_read_error(error: WsError) -> ClientError {
    match error {
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            ClientError::Protocol(format!("frame of {size} bytes exceeds {max_size}"))
        }
        WsError::Capacity(other) => ClientError::Protocol(other.to_string()),
        WsError::Protocol(protocol) => ClientError::Protocol(protocol.to_string()),
        WsError::Utf8(_) => ClientError::Protocol("invalid UTF-8 in a text frame".into()),
        WsError::ConnectionClosed | WsError::AlreadyClosed => ClientError::Closed { reason: None },
        other => ClientError::Transport(other.to_string()),
    }
}

pub(crate) fn response_name(response: &Response) -> &'static str {
    match response {
        Response::Hello { .. } => "HELLO",
        Response::Ok {} => "OK",
        Response::Created { .. } => "CREATED",
        Response::Message { .. } => "MESSAGE",
        Response::End { .. } => "END",
        Response::Error { .. } => "ERROR",
        Response::BlobState { .. } => "BLOB-STATE",
        Response::BlobChunk { .. } => "BLOB-CHUNK",
    }
}

/// Reads frames until the HELLO; anything but control frames before it is a protocol error.
async fn read_hello(socket: &mut Socket) -> Result<Hello, ClientError> {
    loop {
        let message = match socket.next().await {
            None => {
                return Err(ClientError::Closed {
                    reason: Some("before HELLO".into()),
                });
            }
            Some(Err(error)) => return Err(map_read_error(error)),
            Some(Ok(message)) => message,
        };
        match message {
            Message::Binary(bytes) => {
                let frame = decode_relay_frame(&bytes)
                    .map_err(|e| ClientError::Protocol(format!("undecodable HELLO: {e}")))?;
                return match frame.body {
                    Response::Hello {
                        nonce,
                        max_envelope,
                        window,
                    } if frame.id == PUSH_CORRELATION_ID => Ok(Hello {
                        nonce,
                        max_envelope,
                        window,
                    }),
                    Response::Error { code } => Err(ClientError::from_code(code)),
                    other => Err(ClientError::Protocol(format!(
                        "expected HELLO, got {}",
                        response_name(&other)
                    ))),
                };
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            Message::Text(_) => return Err(ClientError::Protocol("text frame".into())),
            Message::Close(frame) => {
                return Err(ClientError::Closed {
                    reason: frame.map(|f| f.reason.as_str().to_owned()),
                });
            }
        }
    }
}

impl Connector {
    /// Builds a connector: checks the extra CA now; the system roots (unless skipped) are read on
    /// the first `wss://` connection.
    pub fn new(config: ConnectorConfig) -> Result<Self, TlsSetupError> {
        let tls = LazyClientConfig::new(&config.roots)?;
        Ok(Self {
            inner: Arc::new(ConnectorInner {
                policy: config.policy,
                timeouts: config.timeouts,
                push_capacity: config.push_capacity.max(1),
                tls,
                proxy: RwLock::new(config.proxy),
                send_isolation: isolation_token(),
                subscribe_isolation: isolation_token(),
            }),
        })
    }

    /// The SOCKS5 proxy connections go through, if any.
    pub fn proxy(&self) -> Option<SocksProxy> {
        *self
            .inner
            .proxy
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Routes connections opened from now on (by every clone of this connector) through
    /// `proxy`, or directly with `None`. Open connections are not touched: close them.
    pub fn set_proxy(&self, proxy: Option<SocksProxy>) {
        *self
            .inner
            .proxy
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = proxy;
    }

    /// Whether `url` may be used now: the [`TransportPolicy`], and `.onion` only through a
    /// proxy.
    pub fn check(&self, url: &RelayUrl) -> Result<(), crate::url::UrlError> {
        self.inner.policy.check_routed(url, self.proxy().is_some())
    }

    /// The SOCKS credentials of a connection of `role` (see [`SocksProxy`]).
    fn socks_credentials(&self, role: Role) -> (&'static str, String) {
        match role {
            Role::Send => ("sealpost-send", self.inner.send_isolation.clone()),
            Role::Subscribe => ("sealpost-subscribe", self.inner.subscribe_isolation.clone()),
            Role::Owner => ("sealpost-owner", isolation_token()),
            Role::Blob => ("sealpost-blob", isolation_token()),
        }
    }

    /// TCP to the relay through the proxy: the proxy resolves the name.
    async fn socks_stream(
        &self,
        proxy: SocksProxy,
        url: &RelayUrl,
        role: Role,
    ) -> Result<TcpStream, ClientError> {
        let (user, password) = self.socks_credentials(role);
        let (host, port) = url.socks_target();
        let stream = tokio_socks::tcp::Socks5Stream::connect_with_password(
            proxy.address,
            (host.as_str(), port),
            user,
            &password,
        )
        .await
        .map_err(map_socks_error)?
        .into_inner();
        // Small request/response frames: do not wait to fill a segment.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// The time limits connections from this connector use.
    pub fn timeouts(&self) -> Timeouts {
        self.inner.timeouts
    }

    /// Opens a connection for SENDs only ([`SendConnection`]); it never subscribes, so its
    /// pushes are discarded.
    pub async fn connect_send(&self, url: &RelayUrl) -> Result<SendConnection, ClientError> {
        let (connection, _pushes) = self.connect(url, Role::Send).await?;
        Ok(SendConnection(connection))
    }

    /// Opens a connection for owner commands (CREATE, SECURE, DELETE) only
    /// ([`OwnerConnection`]). Open one per operation and drop it after: see the module docs of
    /// [`crate::roles`] for what a relay can link otherwise.
    pub async fn connect_owner(&self, url: &RelayUrl) -> Result<OwnerConnection, ClientError> {
        let (connection, _pushes) = self.connect(url, Role::Owner).await?;
        Ok(OwnerConnection(connection))
    }

    /// Opens a connection for SUBSCRIBE and ACK only ([`SubscribeConnection`]) and its push
    /// stream. Keep draining the [`Pushes`] (replies queue behind unread pushes).
    pub async fn connect_subscribe(
        &self,
        url: &RelayUrl,
    ) -> Result<(SubscribeConnection, Pushes), ClientError> {
        let (connection, pushes) = self.connect(url, Role::Subscribe).await?;
        Ok((SubscribeConnection(connection), pushes))
    }

    /// Opens a connection for blob transfers only ([`crate::BlobConnection`]): its own socket,
    /// so a large upload or download never queues message delivery behind it. Open one per
    /// blob transfer and drop it after (see [`crate::blob`]).
    pub async fn connect_blob(&self, url: &RelayUrl) -> Result<crate::BlobConnection, ClientError> {
        let (connection, _pushes) = self.connect(url, Role::Blob).await?;
        Ok(crate::BlobConnection(connection))
    }

    /// Connects, reads HELLO, and starts the connection's task on the current Tokio runtime.
    ///
    /// Refuses `ws://` beyond loopback unless the policy allows it, before any network IO.
    async fn connect(
        &self,
        url: &RelayUrl,
        role: Role,
    ) -> Result<(Connection, Pushes), ClientError> {
        let proxy = self.proxy();
        self.inner.policy.check_routed(url, proxy.is_some())?;
        let timeouts = self.inner.timeouts;
        let connector = if url.is_tls() {
            tokio_tungstenite::Connector::Rustls(
                self.inner
                    .tls
                    .get()
                    .map_err(|e| ClientError::Connect(format!("TLS setup: {e}")))?,
            )
        } else {
            tokio_tungstenite::Connector::Plain
        };
        let handshake = async {
            let (mut socket, _response) = match proxy {
                // Through the proxy only: if it is down, the connection fails; never direct.
                Some(proxy) => {
                    let stream = self.socks_stream(proxy, url, role).await?;
                    client_async_tls_with_config(
                        url.normalized(),
                        stream,
                        Some(websocket_config()),
                        Some(connector),
                    )
                    .await
                }
                None => {
                    connect_async_tls_with_config(
                        url.normalized(),
                        Some(websocket_config()),
                        true,
                        Some(connector),
                    )
                    .await
                }
            }
            .map_err(map_connect_error)?;
            let hello = read_hello(&mut socket).await?;
            Ok::<_, ClientError>((socket, hello))
        };
        let (socket, hello) = timeout(timeouts.handshake, handshake)
            .await
            .map_err(|_| ClientError::HandshakeTimeout(timeouts.handshake))??;
        let (commands, command_receiver) = mpsc::channel(64);
        let (pushes, push_receiver) = mpsc::channel(self.inner.push_capacity);
        let (close, close_receiver) = watch::channel(false);
        let terminal = Arc::new(OnceLock::new());
        let subscribed = Subscribed::default();
        let (sink, stream) = socket.split();
        let task = SocketTask {
            sink,
            stream,
            commands: command_receiver,
            close: close_receiver,
            pushes: Some(pushes),
            permit: None,
            pending: HashMap::new(),
            subscribing: HashMap::new(),
            subscribed: subscribed.clone(),
            pings: HashMap::new(),
            next_id: 1,
            timeouts,
            terminal: terminal.clone(),
        };
        tokio::spawn(task.run());
        let connection = Connection {
            inner: Arc::new(ConnectionInner {
                url: url.clone(),
                hello,
                request_timeout: timeouts.request,
                commands,
                close,
                terminal: terminal.clone(),
                sender_sessions: std::sync::Mutex::new(HashMap::new()),
                subscribed,
            }),
        };
        Ok((
            connection,
            Pushes {
                receiver: push_receiver,
                terminal,
            },
        ))
    }
}

impl Connection {
    /// The relay this connection goes to.
    pub fn url(&self) -> &RelayUrl {
        &self.inner.url
    }

    /// The relay's HELLO on this connection.
    pub fn hello(&self) -> &Hello {
        &self.inner.hello
    }

    /// True when `other` is a clone of this same connection.
    pub fn same_as(&self, other: &Connection) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// True once the connection has ended (its task stopped).
    pub fn is_closed(&self) -> bool {
        self.inner.commands.is_closed() || self.inner.terminal.get().is_some()
    }

    /// Why the connection ended, once it has.
    pub fn close_reason(&self) -> Option<ClientError> {
        self.inner.terminal.get().cloned()
    }

    /// Closes the connection politely (a WebSocket close frame); pending requests fail.
    pub fn close(&self) {
        let _ = self.inner.terminal.set(ClientError::Closed {
            reason: Some("closed by the client".into()),
        });
        let _ = self.inner.close.send(true);
    }

    pub(crate) fn fail(&self, error: ClientError) -> ClientError {
        let _ = self.inner.terminal.set(error.clone());
        let _ = self.inner.close.send(true);
        error
    }

    fn closed_error(&self) -> ClientError {
        terminal_error(&self.inner.terminal)
    }

    pub(crate) async fn request(&self, body: Request) -> Result<Response, ClientError> {
        let limit = self.inner.request_timeout;
        let (reply, receiver) = oneshot::channel();
        let exchange = async {
            self.inner
                .commands
                .send(Command::Request { body, reply })
                .await
                .map_err(|_| self.closed_error())?;
            receiver.await.map_err(|_| self.closed_error())?
        };
        match timeout(limit, exchange).await {
            Ok(result) => result,
            Err(_) => Err(self.fail(ClientError::RequestTimeout(limit))),
        }
    }

    /// Sends a request whose success is `Ok {}`.
    pub(crate) async fn request_ok(&self, body: Request) -> Result<(), ClientError> {
        match self.request(body).await? {
            Response::Ok {} => Ok(()),
            Response::Error { code } => Err(ClientError::from_code(code)),
            other => Err(self.fail(ClientError::Protocol(format!(
                "expected OK, got {}",
                response_name(&other)
            )))),
        }
    }

    /// CREATE: makes a mailbox owned by `auth_key` (its public half is sent; the signature covers
    /// this connection's nonce). `password` is the relay password, if the relay has one.
    pub(crate) async fn create(
        &self,
        auth_key: &SigningKey,
        send_secret: &SendSecret,
        password: Option<&str>,
    ) -> Result<(ReceiveId, SendId), ClientError> {
        let body = requests::create(
            &self.inner.hello.nonce,
            auth_key,
            send_secret.clone(),
            password.map(str::to_owned),
        );
        match self.request(body).await? {
            Response::Created {
                receive_id,
                send_id,
            } => Ok((receive_id, send_id)),
            Response::Error { code } => Err(ClientError::from_code(code)),
            other => Err(self.fail(ClientError::Protocol(format!(
                "expected CREATED, got {}",
                response_name(&other)
            )))),
        }
    }

    /// SUBSCRIBE: the relay starts pushing this mailbox's envelopes here (a repeat starts over
    /// and re-pushes every unacknowledged envelope). Pushes may arrive right after the OK.
    pub(crate) async fn subscribe(
        &self,
        receive_id: ReceiveId,
        auth_key: &SigningKey,
    ) -> Result<(), ClientError> {
        self.request_ok(requests::subscribe(
            &self.inner.hello.nonce,
            auth_key,
            receive_id,
        ))
        .await
    }

    /// ACK: deletes delivered envelopes of one mailbox (1 to [`sealpost_wire::MAX_ACK_IDS`]
    /// ids in one frame) and lets the relay push the next. Idempotent; valid on any
    /// connection, not only the one they were pushed on. On the connection that subscribes the
    /// mailbox the ACK carries no signature (protocol version 4: the SUBSCRIBE proved the
    /// owner); elsewhere, or if the relay ended that subscription meanwhile, it is signed with
    /// `auth_key`.
    pub(crate) async fn ack(
        &self,
        receive_id: ReceiveId,
        message_ids: Vec<MessageId>,
        auth_key: &SigningKey,
    ) -> Result<(), ClientError> {
        if self.subscribes(receive_id) {
            let unsigned = requests::ack_subscribed(receive_id, message_ids.clone());
            match self.request_ok(unsigned).await {
                // The relay ended the subscription (its `End` crossed this ACK): sign it.
                Err(ClientError::Unauthorized) => {}
                result => return result,
            }
        }
        self.request_ok(requests::ack(
            &self.inner.hello.nonce,
            auth_key,
            receive_id,
            message_ids,
        ))
        .await
    }

    /// Whether the relay answered this connection's SUBSCRIBE of `receive_id` `Ok` and has not
    /// ended that subscription (`End`) since.
    pub(crate) fn subscribes(&self, receive_id: ReceiveId) -> bool {
        lock_subscribed(&self.inner.subscribed).contains(&receive_id)
    }

    /// DELETE: removes the mailbox and every envelope in it.
    pub(crate) async fn delete(
        &self,
        receive_id: ReceiveId,
        auth_key: &SigningKey,
    ) -> Result<(), ClientError> {
        self.request_ok(requests::delete(
            &self.inner.hello.nonce,
            auth_key,
            receive_id,
        ))
        .await
    }

    /// SECURE: binds the mailbox's send side to `sender_key`, once; later SENDs must be signed
    /// by it.
    pub(crate) async fn secure(
        &self,
        receive_id: ReceiveId,
        sender_key: AuthPublicKey,
        auth_key: &SigningKey,
    ) -> Result<(), ClientError> {
        self.request_ok(requests::secure(
            &self.inner.hello.nonce,
            auth_key,
            receive_id,
            sender_key,
        ))
        .await
    }

    /// SEND: stores `envelope` in the mailbox named by `send_id`. `Ok(())` means the relay has
    /// durably committed it. With `sender_key` (required once the mailbox is secured), the
    /// connection first proves the key to the relay with one SENDER-SESSION per mailbox
    /// (`docs/relay-protocol.md` § 4.4); later SENDs to that mailbox on this connection carry
    /// no signature. A session the relay no longer holds (it replaced it) is proven again once.
    ///
    /// An envelope larger than the HELLO's `max_envelope` fails with [`ClientError::TooLarge`]
    /// before anything is sent.
    pub(crate) async fn send(
        &self,
        send_id: SendId,
        send_secret: &SendSecret,
        envelope: &[u8],
        sender_key: Option<&SigningKey>,
    ) -> Result<(), ClientError> {
        let too_large = !u32::try_from(envelope.len())
            .is_ok_and(|length| length <= self.inner.hello.max_envelope);
        if too_large {
            return Err(ClientError::TooLarge);
        }
        let Some(sender_key) = sender_key else {
            let body = requests::send(send_id, send_secret.clone(), envelope.to_vec());
            return self.request_ok(body).await;
        };
        let had_session = self.has_sender_session(send_id, sender_key);
        if !had_session {
            self.open_sender_session(send_id, send_secret, sender_key)
                .await?;
        }
        let body = requests::send(send_id, send_secret.clone(), envelope.to_vec());
        match self.request_ok(body).await {
            Err(ClientError::SenderUnauthorized) if had_session => {
                // The relay dropped our session (its per-connection limit): prove it again.
                self.forget_sender_session(send_id);
                self.open_sender_session(send_id, send_secret, sender_key)
                    .await?;
                let body = requests::send(send_id, send_secret.clone(), envelope.to_vec());
                self.request_ok(body).await
            }
            result => result,
        }
    }

    fn sender_sessions(&self) -> std::sync::MutexGuard<'_, HashMap<SendId, AuthPublicKey>> {
        // A poisoned lock only means another caller panicked mid-insert; the map is still valid.
        self.inner
            .sender_sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn has_sender_session(&self, send_id: SendId, sender_key: &SigningKey) -> bool {
        let key = sealpost_wire::public_key(sender_key);
        self.sender_sessions().get(&send_id) == Some(&key)
    }

    fn forget_sender_session(&self, send_id: SendId) {
        self.sender_sessions().remove(&send_id);
    }

    /// SENDER-SESSION: proves `sender_key` for `send_id` over this connection's nonce.
    async fn open_sender_session(
        &self,
        send_id: SendId,
        send_secret: &SendSecret,
        sender_key: &SigningKey,
    ) -> Result<(), ClientError> {
        let body = requests::sender_session(
            &self.inner.hello.nonce,
            send_id,
            send_secret.clone(),
            sender_key,
        );
        self.request_ok(body).await?;
        self.sender_sessions()
            .insert(send_id, sealpost_wire::public_key(sender_key));
        Ok(())
    }

    /// Sends a WebSocket ping and waits for its pong (within the request timeout).
    pub async fn ping(&self) -> Result<(), ClientError> {
        let limit = self.inner.request_timeout;
        let (reply, receiver) = oneshot::channel();
        let exchange = async {
            self.inner
                .commands
                .send(Command::Ping { reply })
                .await
                .map_err(|_| self.closed_error())?;
            receiver.await.map_err(|_| self.closed_error())?
        };
        match timeout(limit, exchange).await {
            Ok(result) => result,
            Err(_) => Err(self.fail(ClientError::RequestTimeout(limit))),
        }
    }
}

/// The task that owns the socket.
struct SocketTask {
    sink: SplitSink<Socket, Message>,
    stream: SplitStream<Socket>,
    commands: mpsc::Receiver<Command>,
    close: watch::Receiver<bool>,
    /// `None` once the [`Pushes`] receiver was dropped: pushes are then discarded.
    pushes: Option<mpsc::Sender<Pushed>>,
    /// Room for one push, reserved before the socket is read.
    permit: Option<mpsc::OwnedPermit<Pushed>>,
    pending: HashMap<u64, oneshot::Sender<Result<Response, ClientError>>>,
    /// Correlation ids of SUBSCRIBEs waiting for their reply, and their mailbox.
    subscribing: HashMap<u64, ReceiveId>,
    /// The connection's [`Subscribed`] set, kept in the order of the relay's frames.
    subscribed: Subscribed,
    pings: HashMap<u64, oneshot::Sender<Result<(), ClientError>>>,
    next_id: u64,
    timeouts: Timeouts,
    terminal: Arc<OnceLock<ClientError>>,
}

/// How a loop step ended the connection.
enum End {
    /// Close politely: the client asked, or every handle is gone.
    Polite(ClientError),
    /// The connection failed; just drop the socket.
    Failed(ClientError),
}

impl SocketTask {
    async fn run(mut self) {
        let end = self.serve().await;
        let (error, polite) = match end {
            End::Polite(error) => (error, true),
            End::Failed(error) => (error, false),
        };
        // A reason set by a handle (timeout, close) wins over what the loop saw.
        let _ = self.terminal.set(error);
        let error = terminal_error(&self.terminal);
        if polite {
            let close = CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            };
            let _ = timeout(
                Duration::from_secs(1),
                self.sink.send(Message::Close(Some(close))),
            )
            .await;
        }
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(error.clone()));
        }
        for (_, reply) in self.pings.drain() {
            let _ = reply.send(Err(error.clone()));
        }
        tracing::debug!(%error, "relay connection ended");
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        id
    }

    async fn write(&mut self, message: Message) -> Result<(), End> {
        match timeout(self.timeouts.request, self.sink.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(End::Failed(map_read_error(error))),
            Err(_) => Err(End::Failed(ClientError::Transport(
                "write timed out".into(),
            ))),
        }
    }

    async fn serve(&mut self) -> End {
        let ping_every = self.timeouts.ping_interval.max(Duration::from_millis(10));
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        let mut idle_deadline = Instant::now() + self.timeouts.idle;
        loop {
            let want_permit = self.permit.is_none() && self.pushes.is_some();
            let can_read = self.permit.is_some() || self.pushes.is_none();
            let reserve = {
                let pushes = self.pushes.clone();
                async move {
                    match pushes {
                        Some(pushes) => pushes.reserve_owned().await.ok(),
                        None => std::future::pending().await,
                    }
                }
            };
            let step = tokio::select! {
                biased;
                changed = self.close.changed() => {
                    let _ = changed;
                    Err(End::Polite(ClientError::Closed { reason: Some("closed by the client".into()) }))
                }
                command = self.commands.recv() => self.on_command(command).await,
                reserved = reserve, if want_permit => {
                    match reserved {
                        Some(permit) => self.permit = Some(permit),
                        None => self.pushes = None,
                    }
                    Ok(())
                }
                message = self.stream.next(), if can_read => {
                    idle_deadline = Instant::now() + self.timeouts.idle;
                    self.on_message(message).await
                }
                _ = ping.tick() => {
                    let id = self.take_id();
                    self.write(Message::Ping(id.to_be_bytes().to_vec().into())).await
                }
                _ = sleep_until(idle_deadline) => Err(End::Failed(ClientError::Idle(self.timeouts.idle))),
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    async fn on_command(&mut self, command: Option<Command>) -> Result<(), End> {
        match command {
            None => Err(End::Polite(ClientError::Closed {
                reason: Some("every handle was dropped".into()),
            })),
            Some(Command::Request { body, reply }) => {
                let id = self.take_id();
                let subscribing = match &body {
                    Request::Subscribe { receive_id, .. } => Some(*receive_id),
                    _ => None,
                };
                let frame = ClientFrame::new(id, body);
                let bytes = match encode_client_frame(&frame) {
                    Ok(bytes) => bytes,
                    Err(error) => {
                        let _ = reply.send(Err(ClientError::Protocol(error.to_string())));
                        return Ok(());
                    }
                };
                if bytes.len() > MAX_FRAME_BYTES {
                    let _ = reply.send(Err(ClientError::TooLarge));
                    return Ok(());
                }
                self.pending.insert(id, reply);
                if let Some(receive_id) = subscribing {
                    self.subscribing.insert(id, receive_id);
                }
                self.write(Message::Binary(bytes.into())).await
            }
            Some(Command::Ping { reply }) => {
                let id = self.take_id();
                self.pings.insert(id, reply);
                self.write(Message::Ping(id.to_be_bytes().to_vec().into()))
                    .await
            }
        }
    }

    async fn on_message(&mut self, message: Option<Result<Message, WsError>>) -> Result<(), End> {
        let message = match message {
            None => return Err(End::Failed(ClientError::Closed { reason: None })),
            Some(Err(error)) => return Err(End::Failed(map_read_error(error))),
            Some(Ok(message)) => message,
        };
        match message {
            Message::Binary(bytes) => match decode_relay_frame(&bytes) {
                Ok(frame) => self.on_frame(frame),
                Err(error) => Err(End::Failed(ClientError::Protocol(format!(
                    "undecodable frame: {error}"
                )))),
            },
            Message::Text(_) => Err(End::Failed(ClientError::Protocol("text frame".into()))),
            Message::Ping(_) => {
                // tungstenite queued the pong; flush it out now.
                match timeout(self.timeouts.request, self.sink.flush()).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(error)) => Err(End::Failed(map_read_error(error))),
                    Err(_) => Err(End::Failed(ClientError::Transport(
                        "write timed out".into(),
                    ))),
                }
            }
            Message::Pong(payload) => {
                let id = <[u8; 8]>::try_from(payload.as_ref())
                    .map(u64::from_be_bytes)
                    .ok();
                if let Some(reply) = id.and_then(|id| self.pings.remove(&id)) {
                    let _ = reply.send(Ok(()));
                }
                Ok(())
            }
            Message::Close(frame) => Err(End::Failed(ClientError::Closed {
                reason: frame.map(|f| format!("{} {}", u16::from(f.code), f.reason.as_str())),
            })),
            Message::Frame(_) => Ok(()),
        }
    }

    fn on_frame(&mut self, frame: RelayFrame) -> Result<(), End> {
        if frame.id == PUSH_CORRELATION_ID {
            let pushed = match frame.body {
                Response::Message {
                    receive_id,
                    message_id,
                    received_at,
                    envelope,
                } => Pushed::Message {
                    receive_id,
                    message_id,
                    received_at,
                    envelope,
                },
                Response::End { receive_id } => {
                    lock_subscribed(&self.subscribed).remove(&receive_id);
                    Pushed::End { receive_id }
                }
                // A connection-level refusal (e.g. our frame could not be read at all).
                Response::Error { code } => return Err(End::Failed(ClientError::from_code(code))),
                other => {
                    return Err(End::Failed(ClientError::Protocol(format!(
                        "unexpected pushed {}",
                        response_name(&other)
                    ))));
                }
            };
            if let Some(permit) = self.permit.take() {
                permit.send(pushed);
            }
            return Ok(());
        }
        let Some(reply) = self.pending.remove(&frame.id) else {
            return Err(End::Failed(ClientError::Protocol(format!(
                "reply to unknown request {}",
                frame.id
            ))));
        };
        if let Some(receive_id) = self.subscribing.remove(&frame.id)
            && frame.body == (Response::Ok {})
        {
            // Before the caller hears of it, and before any later frame (an `End`) is read.
            lock_subscribed(&self.subscribed).insert(receive_id);
        }
        match frame.body {
            body @ (Response::Ok {}
            | Response::Created { .. }
            | Response::Error { .. }
            | Response::BlobState { .. }
            | Response::BlobChunk { .. }) => {
                let _ = reply.send(Ok(body));
                Ok(())
            }
            other => {
                let error = ClientError::Protocol(format!("{} as a reply", response_name(&other)));
                let _ = reply.send(Err(error.clone()));
                Err(End::Failed(error))
            }
        }
    }
}
