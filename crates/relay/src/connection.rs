//! One client connection: handshake, request handling, subscriptions and the outgoing frames.
//!
//! Each connection is one task: it reads frames, handles them, and writes replies and pushes
//! through its tungstenite `WebSocketStream` (reads and writes driven from the same task, no split),
//! with no writer task or channel of its own, so an idle connection holds little more than its
//! socket (`docs/benchmarks.md` § Relay).
//! Requests that wait for the store (SEND, ACK, CREATE, DELETE, SECURE) are pipelined: up to
//! `max_pipelined_requests` run at once and their replies may arrive out of order (the
//! correlation id matches them up). A client that does not read its replies fills its outbox
//! and is disconnected as a slow reader; nobody else waits for it.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use futures_util::stream::FuturesUnordered;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use governor::{DefaultDirectRateLimiter, RateLimiter};
use sealpost_wire::{
    AuthPublicKey, ErrorCode, MAX_ACK_IDS, MessageId, Nonce, OwnerCommand, PROTOCOL_VERSION,
    PUSH_CORRELATION_ID, ReceiveId, RelayFrame, Request, Response, SendId, SendSecret,
    SignatureBytes, create_signature_input, decode_client_frame, encode_relay_frame,
    owner_signature_input, sender_session_signature_input, verify, verify_with,
};
use sha2::Digest;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::Error as WsError;
use tokio_tungstenite::tungstenite::handshake::server::{
    ErrorResponse as HandshakeErrorResponse, Request as HandshakeRequest,
    Response as HandshakeResponse,
};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::{WebSocketStream, accept_hdr_async_with_config};

mod blobs;

use crate::client_address::{ClientAddressSource, forwarded_for, read_proxy_v2};
use crate::frame_budget::{BudgetedStream, is_budget_exhausted};
use crate::hub::ConnectionEvent;
use crate::metrics::{Command, Refusal};
use crate::store::{AppendOutcome, NewMailbox, Quota, SecureOutcome, SendTarget, StoredEnvelope};
use crate::{Limits, Shared, send_secret_hash, unix_now};

type Pending = Pin<Box<dyn Future<Output = RelayFrame> + Send>>;

/// Why the read loop stopped.
enum Stop {
    /// Close politely with this code after flushing.
    Close(CloseCode, &'static str),
    /// The peer closed or the socket broke: flush what we can.
    PeerGone,
    /// The peer does not read: drop it at once.
    SlowReader,
}

fn websocket_config(limits: &Limits) -> WebSocketConfig {
    let write_buffer = limits.write_buffer_bytes.max(1024);
    WebSocketConfig::default()
        .read_buffer_size(limits.read_buffer_bytes.max(1024))
        .write_buffer_size(write_buffer)
        .max_write_buffer_size(write_buffer + 2 * limits.max_frame_bytes + 1024)
        .max_message_size(Some(limits.max_frame_bytes))
        .max_frame_size(Some(limits.max_frame_bytes))
}

/// Serves one accepted TCP connection to the end. `peer` is the TCP peer's address; behind a
/// trusted proxy the client address comes from its PROXY header or `X-Forwarded-For`
/// ([`crate::client_address`]), and the per-IP connection rate is checked here on it.
pub(crate) async fn serve(
    mut stream: TcpStream,
    peer: IpAddr,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
) {
    let config = websocket_config(&shared.limits);
    let budget = shared.frame_budget.clone();
    let allowance = shared.limits.read_buffer_bytes.max(1024);
    let max_message = shared.limits.max_frame_bytes;
    let deadline = Instant::now() + shared.limits.handshake_timeout();
    let source = shared.client_address.for_peer(peer);
    let mut ip = peer;
    if source == ClientAddressSource::ProxyProtocolV2 {
        match tokio::time::timeout_at(deadline, read_proxy_v2(&mut stream)).await {
            Ok(Ok(client)) => ip = client.unwrap_or(peer),
            Ok(Err(error)) => {
                tracing::debug!(%error, "a trusted proxy sent no valid PROXY header; closing");
                return;
            }
            Err(_) => return,
        }
        if !crate::admit(&shared, ip) {
            return;
        }
    }
    // Read only from a trusted proxy's upgrade request: anyone else's header is not believed.
    let mut forwarded = None;
    // The error type is tungstenite's `Callback` contract, never built here.
    #[allow(clippy::result_large_err)]
    let read_forwarded = |request: &HandshakeRequest, response: HandshakeResponse| {
        if source == ClientAddressSource::XForwardedFor {
            forwarded = Some(forwarded_for(request.headers()));
        }
        Ok::<_, HandshakeErrorResponse>(response)
    };
    // The states below are boxed so that each connection's task holds only what its current
    // phase needs (TLS state is large; request handling is large): this keeps idle connections
    // small.
    let websocket = match tls {
        Some(acceptor) => {
            let handshake = async {
                let tls_stream = acceptor.accept(stream).await.ok()?;
                let budgeted = BudgetedStream::new(tls_stream, budget, allowance, max_message);
                accept_hdr_async_with_config(budgeted, read_forwarded, Some(config))
                    .await
                    .ok()
            };
            match tokio::time::timeout_at(deadline, Box::pin(handshake)).await {
                Ok(Some(websocket)) => Handshaken::Tls(Box::new(websocket)),
                _ => {
                    tracing::debug!("TLS/WebSocket handshake failed or timed out");
                    return;
                }
            }
        }
        None => {
            let budgeted = BudgetedStream::new(stream, budget, allowance, max_message);
            let handshake = Box::pin(accept_hdr_async_with_config(
                budgeted,
                read_forwarded,
                Some(config),
            ));
            match tokio::time::timeout_at(deadline, handshake).await {
                Ok(Ok(websocket)) => Handshaken::Plain(Box::new(websocket)),
                _ => {
                    tracing::debug!("WebSocket handshake failed or timed out");
                    return;
                }
            }
        }
    };
    if source == ClientAddressSource::XForwardedFor {
        // A trusted proxy that named no client: its own address (all such clients share it).
        ip = forwarded.flatten().unwrap_or(peer);
        if !crate::admit(&shared, ip) {
            return;
        }
    }
    match websocket {
        Handshaken::Tls(websocket) => Box::pin(run(*websocket, ip, shared)).await,
        Handshaken::Plain(websocket) => Box::pin(run(*websocket, ip, shared)).await,
    }
}

/// A connection after its WebSocket handshake, on TLS or plain TCP.
enum Handshaken {
    Tls(Box<WebSocketStream<BudgetedStream<tokio_rustls::server::TlsStream<TcpStream>>>>),
    Plain(Box<WebSocketStream<BudgetedStream<TcpStream>>>),
}

/// Per-subscription delivery state.
struct Subscription {
    auth_key: AuthPublicKey,
    /// `auth_key` decompressed once, for this subscription's ACKs (a point decompression less
    /// per signature check).
    verifying_key: ed25519_dalek::VerifyingKey,
    /// Pushed, not yet acknowledged.
    in_flight: BTreeSet<u64>,
    /// Highest message id pushed so far.
    max_sent: u64,
    /// The store may hold envelopes above `max_sent` not yet pushed.
    more_in_store: bool,
}

struct Connection {
    shared: Arc<Shared>,
    ip: IpAddr,
    id: u64,
    nonce: Nonce,
    /// Encoded frames waiting for the socket.
    outbox: Outbox,
    limiter: DefaultDirectRateLimiter,
    subscriptions: HashMap<ReceiveId, Subscription>,
    /// The hub's channel to this connection, made by its first SUBSCRIBE (a connection that
    /// never subscribes, i.e. most, never allocates one).
    events: Option<(
        mpsc::UnboundedSender<ConnectionEvent>,
        mpsc::UnboundedReceiver<ConnectionEvent>,
    )>,
    pending: LazyPending,
    /// Deliveries were held back because the outbox was over half full.
    stalled: bool,
    /// Blob bytes declared by this connection's BLOB-CREATEs (`blob_quota_per_connection_bytes`).
    blob_bytes: u64,
    /// Sender sessions proven on this connection (`docs/relay-protocol.md` § 4.4): send id →
    /// the sender key whose holder signed for it over this connection's nonce.
    sender_sessions: HashMap<SendId, AuthPublicKey>,
}

/// Messages waiting for the socket, oldest first. Empty, it allocates nothing.
#[derive(Default)]
struct Outbox {
    messages: VecDeque<Message>,
    /// Payload bytes of `messages`.
    bytes: usize,
}

impl Outbox {
    fn push(&mut self, message: Message) {
        self.bytes += message.len();
        self.messages.push_back(message);
    }

    fn pop(&mut self) -> Option<Message> {
        let message = self.messages.pop_front()?;
        self.bytes -= message.len();
        if self.messages.is_empty() {
            // Give the ring buffer back: most connections are idle between bursts.
            self.messages = VecDeque::new();
        }
        Some(message)
    }

    fn bytes(&self) -> usize {
        self.bytes
    }

    fn frames(&self) -> usize {
        self.messages.len()
    }

    fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

/// What driving the socket once produced.
enum Incoming {
    /// The next message from the peer, its end (`None`), or a read or write error.
    Message(Option<Result<Message, WsError>>),
    /// The outbox emptied while deliveries were held back.
    Drained,
}

/// The connection's socket and what it still has to write: one task writes the outbox into
/// the tungstenite stream and reads from it (no split, no writer task).
struct Socket<S> {
    websocket: WebSocketStream<S>,
    /// Messages were handed to tungstenite since its last successful flush.
    unflushed: bool,
}

impl<S> Socket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Writes what the outbox holds as far as the socket takes it, flushes, and then reads one
    /// message when `can_read`. `progress` counts the messages handed to tungstenite.
    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        outbox: &mut Outbox,
        can_read: bool,
        report_drained: bool,
        progress: &mut usize,
    ) -> Poll<Incoming> {
        while !outbox.is_empty() {
            match Pin::new(&mut self.websocket).poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    let Some(message) = outbox.pop() else { break };
                    if let Err(error) = Pin::new(&mut self.websocket).start_send(message) {
                        return Poll::Ready(Incoming::Message(Some(Err(error))));
                    }
                    self.unflushed = true;
                    *progress += 1;
                }
                Poll::Ready(Err(error)) => return Poll::Ready(Incoming::Message(Some(Err(error)))),
                Poll::Pending => break,
            }
        }
        if self.unflushed {
            match Pin::new(&mut self.websocket).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(error)) => return Poll::Ready(Incoming::Message(Some(Err(error)))),
                Poll::Pending => {}
            }
        }
        if report_drained && outbox.is_empty() {
            return Poll::Ready(Incoming::Drained);
        }
        if can_read && let Poll::Ready(message) = Pin::new(&mut self.websocket).poll_next(cx) {
            return Poll::Ready(Incoming::Message(message));
        }
        Poll::Pending
    }

    /// Writes the outbox (ending with the close frame) and waits up to `linger` for the peer's
    /// close reply.
    async fn finish(&mut self, outbox: &mut Outbox, linger: std::time::Duration) {
        while let Some(message) = outbox.pop() {
            if self.websocket.feed(message).await.is_err() {
                return;
            }
        }
        if self.websocket.flush().await.is_err() {
            return;
        }
        let _ = timeout(linger, async {
            while let Some(Ok(_)) = self.websocket.next().await {}
        })
        .await;
    }
}

/// Requests waiting for the store. The set exists only while it holds one: a `FuturesUnordered`
/// allocates its queue up front, and most connections sit idle with nothing pending.
#[derive(Default)]
struct LazyPending(Option<FuturesUnordered<Pending>>);

impl LazyPending {
    fn push(&mut self, request: Pending) {
        self.0
            .get_or_insert_with(FuturesUnordered::new)
            .push(request);
    }

    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, FuturesUnordered::len)
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next reply ready; `None` at once when nothing is pending.
    async fn next(&mut self) -> Option<RelayFrame> {
        let set = self.0.as_mut()?;
        let frame = set.next().await;
        if set.is_empty() {
            self.0 = None;
        }
        frame
    }
}

/// The next event of the hub for this connection; never, before its first SUBSCRIBE.
async fn next_event(
    events: &mut Option<(
        mpsc::UnboundedSender<ConnectionEvent>,
        mpsc::UnboundedReceiver<ConnectionEvent>,
    )>,
) -> Option<ConnectionEvent> {
    match events {
        Some((_, receiver)) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

async fn run<S>(websocket: WebSocketStream<S>, ip: IpAddr, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut socket = Socket {
        websocket,
        unflushed: false,
    };
    shared.metrics.connection_opened();
    let _open = OpenConnection(shared.clone());
    // Borrowed, not cloned: a copy of the limits would sit in every idle connection's task.
    let limits = &shared.limits;
    let mut nonce = [0u8; 32];
    if getrandom::fill(&mut nonce).is_err() {
        tracing::error!("no randomness for the connection nonce; closing");
        return;
    }
    let mut connection = Connection {
        id: shared.next_connection_id.fetch_add(1, Ordering::Relaxed),
        limiter: RateLimiter::direct(shared.per_connection_quota),
        shared: shared.clone(),
        ip,
        nonce: Nonce(nonce),
        outbox: Outbox::default(),
        subscriptions: HashMap::new(),
        events: None,
        pending: LazyPending::default(),
        stalled: false,
        blob_bytes: 0,
        sender_sessions: HashMap::new(),
    };
    let max_envelope = u32::try_from(limits.max_envelope_bytes).unwrap_or(u32::MAX);
    let hello = Response::Hello {
        nonce: connection.nonce,
        max_envelope,
        window: limits.window,
    };
    let mut stop = connection.send(PUSH_CORRELATION_ID, hello).err();
    let mut shutdown = shared.shutdown.clone();
    let mut idle_deadline = Instant::now() + limits.idle_timeout();
    let mut next_ping = Instant::now() + limits.ping_interval();
    // When the outbox last made progress (or became non-empty): a write blocked for
    // `write_timeout` marks a slow reader.
    let mut last_write = Instant::now();
    while stop.is_none() {
        // ACKs of pushed envelopes never count against the pipelining cap: a subscriber may
        // always acknowledge its whole window.
        let ack_allowance = (connection.subscriptions.len() * usize::from(limits.window))
            .min(limits.write_queue_frames / 4);
        let can_read =
            connection.pending.len() < limits.max_pipelined_requests.max(1) + ack_allowance;
        let waiting_to_write = !connection.outbox.is_empty();
        let report_drained = connection.stalled;
        // One timer for the idle close, the ping and the write timeout (one timer entry per
        // connection instead of three).
        let write_deadline = last_write + limits.write_timeout();
        let mut deadline = idle_deadline.min(next_ping);
        if waiting_to_write {
            deadline = deadline.min(write_deadline);
        }
        let mut progress = 0;
        let result = tokio::select! {
            biased;
            _ = crate::stopped(&mut shutdown) => Err(Stop::Close(CloseCode::Away, "relay shutting down")),
            Some(frame) = connection.pending.next(), if !connection.pending.is_empty() => {
                connection.send_frame(frame)
            }
            incoming = std::future::poll_fn(|cx| {
                socket.poll_next(cx, &mut connection.outbox, can_read, report_drained, &mut progress)
            }) => {
                match incoming {
                    Incoming::Drained => Box::pin(connection.resume()).await,
                    Incoming::Message(message) => {
                        idle_deadline = Instant::now() + limits.idle_timeout();
                        // Boxed: the request-handling state is large and needed only while a
                        // frame is being handled, not while the connection sits idle.
                        Box::pin(connection.on_message(message)).await
                    }
                }
            }
            Some(event) = next_event(&mut connection.events) => Box::pin(connection.on_event(event)).await,
            _ = sleep_until(deadline) => {
                let now = Instant::now();
                if waiting_to_write && now >= write_deadline {
                    Err(Stop::SlowReader)
                } else if now >= idle_deadline {
                    Err(Stop::Close(CloseCode::Normal, "idle"))
                } else {
                    if now >= next_ping {
                        next_ping = now + limits.ping_interval();
                        connection.outbox.push(Message::Ping(Default::default()));
                    }
                    Ok(())
                }
            }
        };
        if progress > 0 || !waiting_to_write {
            last_write = Instant::now();
        }
        if let Err(reason) = result {
            stop = Some(reason);
        }
    }
    for receive_id in connection.subscriptions.keys() {
        shared.hub.unsubscribe(receive_id, connection.id);
    }
    match stop.unwrap_or(Stop::PeerGone) {
        Stop::SlowReader => {
            shared.metrics.refused(Refusal::SlowReader);
            tracing::debug!("slow reader disconnected");
        }
        Stop::PeerGone => {}
        Stop::Close(code, reason) => {
            // Answer what is in flight (those writes are durable either way), then close.
            let grace = limits.shutdown_grace();
            let _ = timeout(grace, async {
                while let Some(frame) = connection.pending.next().await {
                    if connection.send_frame(frame).is_err() {
                        break;
                    }
                }
            })
            .await;
            connection.outbox.push(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })));
            let linger = limits
                .write_timeout()
                .min(std::time::Duration::from_secs(1));
            let finish = socket.finish(&mut connection.outbox, linger);
            let _ = timeout(limits.write_timeout() + linger, finish).await;
        }
    }
}

/// Counts a connection as open while it lives.
struct OpenConnection(Arc<Shared>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.metrics.connection_closed();
    }
}

/// The metrics label of a request.
fn command_of(request: &Request) -> Command {
    match request {
        Request::Create { .. } => Command::Create,
        Request::Subscribe { .. } => Command::Subscribe,
        Request::Ack { .. } => Command::Ack,
        Request::Delete { .. } => Command::Delete,
        Request::Secure { .. } => Command::Secure,
        Request::SenderSession { .. } => Command::SenderSession,
        Request::Send { .. } => Command::Send,
        Request::BlobCreate { .. }
        | Request::BlobPut { .. }
        | Request::BlobStatus { .. }
        | Request::BlobGet { .. }
        | Request::BlobDelete { .. } => Command::Blob,
    }
}

/// A sender key SECURE may bind: a valid Ed25519 point that is not of small order.
fn usable_sender_key(key: &AuthPublicKey) -> bool {
    ed25519_dalek::VerifyingKey::from_bytes(key.as_bytes()).is_ok_and(|key| !key.is_weak())
}

fn error(code: ErrorCode) -> Response {
    Response::Error { code }
}

fn reply(id: u64, body: Response) -> RelayFrame {
    RelayFrame {
        v: PROTOCOL_VERSION,
        id,
        body,
    }
}

impl Connection {
    /// Queues one frame; a full outbox means the peer does not read.
    fn send(&mut self, id: u64, body: Response) -> Result<(), Stop> {
        self.send_frame(reply(id, body))
    }

    fn send_frame(&mut self, frame: RelayFrame) -> Result<(), Stop> {
        let bytes = match encode_relay_frame(&frame) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::error!(%error, "cannot encode a relay frame");
                return Ok(());
            }
        };
        let limits = &self.shared.limits;
        if self.outbox.bytes() + bytes.len() > limits.write_queue_bytes
            || self.outbox.frames() >= limits.write_queue_frames.max(4)
        {
            return Err(Stop::SlowReader);
        }
        self.outbox.push(Message::Binary(bytes.into()));
        Ok(())
    }

    async fn on_message(&mut self, message: Option<Result<Message, WsError>>) -> Result<(), Stop> {
        match message {
            None => Err(Stop::PeerGone),
            Some(Ok(Message::Binary(bytes))) => match decode_client_frame(&bytes) {
                Ok(frame) => {
                    self.shared.metrics.frame(command_of(&frame.body));
                    if self.limiter.check().is_err()
                        || self.shared.ip_limiter.check_key(&self.ip).is_err()
                    {
                        self.shared.metrics.refused(Refusal::RateLimited);
                        return self.send(frame.id, error(ErrorCode::RateLimited));
                    }
                    self.on_request(frame.id, frame.body).await
                }
                Err(decode_error) => {
                    self.shared.metrics.frame(Command::Undecodable);
                    let code = match decode_error {
                        sealpost_wire::DecodeError::UnsupportedVersion { .. } => {
                            ErrorCode::UnsupportedVersion
                        }
                        sealpost_wire::DecodeError::Malformed { .. } => ErrorCode::Malformed,
                    };
                    let id = decode_error.correlation_id().unwrap_or(PUSH_CORRELATION_ID);
                    // Garbage still costs the sender rate budget.
                    let _ = self.limiter.check();
                    self.send(id, error(code))
                }
            },
            Some(Ok(Message::Text(_))) => {
                self.send(PUSH_CORRELATION_ID, error(ErrorCode::Malformed))?;
                Err(Stop::Close(CloseCode::Unsupported, "binary frames only"))
            }
            Some(Ok(Message::Close(_))) => Err(Stop::Close(CloseCode::Normal, "")),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Ok(()),
            Some(Err(WsError::Capacity(_))) => {
                self.shared.metrics.refused(Refusal::TooLarge);
                self.send(PUSH_CORRELATION_ID, error(ErrorCode::TooLarge))?;
                Err(Stop::Close(CloseCode::Size, "frame too large"))
            }
            Some(Err(WsError::Io(io_error))) if is_budget_exhausted(&io_error) => {
                self.shared.metrics.refused(Refusal::PartialMessageBudget);
                tracing::debug!("partial-message budget exhausted; closing a connection");
                Err(Stop::Close(
                    CloseCode::Again,
                    "relay busy: partial-message budget exhausted",
                ))
            }
            Some(Err(_)) => Err(Stop::PeerGone),
        }
    }

    /// Checks an owner signature; unknown mailboxes are checked against a dummy key so both
    /// failures take the same time and give the same answer.
    fn owner_signature_valid(
        &self,
        auth_key: Option<AuthPublicKey>,
        command: OwnerCommand<'_>,
        receive_id: &ReceiveId,
        signature: &SignatureBytes,
    ) -> bool {
        let input = owner_signature_input(&self.nonce, command, receive_id);
        let (key, exists) = match auth_key {
            Some(key) => (key, true),
            None => (self.shared.dummy_key, false),
        };
        let valid = verify(&key, &input, signature);
        valid && exists
    }

    /// Authorizes an owner command: looks up the mailbox's auth key and checks `signature` over
    /// this connection's nonce. The refusal is the error code to answer with: `Internal` when
    /// the lookup failed, `Auth` for a bad signature or an unknown mailbox (indistinguishable).
    async fn authorize_owner(
        &mut self,
        receive_id: ReceiveId,
        command: OwnerCommand<'_>,
        signature: &SignatureBytes,
    ) -> Result<AuthPublicKey, ErrorCode> {
        if let Some(subscription) = self.subscriptions.get(&receive_id) {
            // Subscribed here: the key is known and already decompressed.
            let input = owner_signature_input(&self.nonce, command, &receive_id);
            return if verify_with(&subscription.verifying_key, &input, signature) {
                Ok(subscription.auth_key)
            } else {
                Err(ErrorCode::Auth)
            };
        }
        let Ok(auth_key) = self.auth_key(receive_id).await else {
            return Err(ErrorCode::Internal);
        };
        if !self.owner_signature_valid(auth_key, command, &receive_id, signature) {
            return Err(ErrorCode::Auth);
        }
        auth_key.ok_or(ErrorCode::Auth)
    }

    /// The mailbox a SEND or SENDER-SESSION names, if `send_secret` is its secret. The refusal
    /// is the code to answer: `Auth` for an unknown send id or a wrong secret (the same answer
    /// and the same work: unknown ids are compared against an impossible hash), `Internal` when
    /// the lookup failed.
    async fn send_target(
        &mut self,
        send_id: SendId,
        send_secret: &SendSecret,
    ) -> Result<SendTarget, ErrorCode> {
        let target = match self.shared.store.send_target(send_id).await {
            Ok(target) => target,
            Err(store_error) => {
                tracing::warn!(%store_error, "send target lookup failed");
                return Err(ErrorCode::Internal);
            }
        };
        let presented = send_secret_hash(send_secret);
        let expected = target
            .as_ref()
            .map_or([0xff; 32], |target| target.send_secret_hash);
        let secret_matches = bool::from(presented.ct_eq(&expected));
        target.filter(|_| secret_matches).ok_or(ErrorCode::Auth)
    }

    /// The auth key of a mailbox: from this connection's subscription, else from the store.
    async fn auth_key(&mut self, receive_id: ReceiveId) -> Result<Option<AuthPublicKey>, ()> {
        if let Some(subscription) = self.subscriptions.get(&receive_id) {
            return Ok(Some(subscription.auth_key));
        }
        self.shared
            .store
            .auth_key(receive_id)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "auth key lookup failed");
            })
    }

    async fn on_request(&mut self, id: u64, request: Request) -> Result<(), Stop> {
        match request {
            blob @ (Request::BlobCreate { .. }
            | Request::BlobPut { .. }
            | Request::BlobStatus { .. }
            | Request::BlobGet { .. }
            | Request::BlobDelete { .. }) => self.on_blob_request(id, blob).await,
            Request::Create {
                auth_key,
                send_secret,
                password,
                signature,
            } => {
                if self.shared.create_limiter.check_key(&self.ip).is_err() {
                    self.shared.metrics.refused(Refusal::CreateRateLimited);
                    return self.send(id, error(ErrorCode::RateLimited));
                }
                if let Some(expected) = &self.shared.password_hash {
                    let presented: [u8; 32] = match &password {
                        Some(password) => sha2::Sha256::digest(password.as_bytes()).into(),
                        None => [0u8; 32],
                    };
                    if !bool::from(presented.ct_eq(expected)) || password.is_none() {
                        return self.send(id, error(ErrorCode::Password));
                    }
                }
                let input = create_signature_input(&self.nonce, &auth_key);
                if !verify(&auth_key, &input, &signature) {
                    return self.send(id, error(ErrorCode::Auth));
                }
                let send_secret_hash = send_secret_hash(&send_secret);
                let store = self.shared.store.clone();
                self.pending.push(Box::pin(async move {
                    for _ in 0..4 {
                        let mut ids = [0u8; 64];
                        if getrandom::fill(&mut ids).is_err() {
                            break;
                        }
                        let (receive, send) = ids.split_at(32);
                        let (Ok(receive), Ok(send)) =
                            (<[u8; 32]>::try_from(receive), <[u8; 32]>::try_from(send))
                        else {
                            break;
                        };
                        let mailbox = NewMailbox {
                            receive_id: ReceiveId(receive),
                            send_id: SendId(send),
                            auth_key,
                            send_secret_hash,
                            now: unix_now(),
                        };
                        match store.create_mailbox(mailbox).await {
                            Ok(true) => {
                                let body = Response::Created {
                                    receive_id: ReceiveId(receive),
                                    send_id: SendId(send),
                                };
                                return reply(id, body);
                            }
                            Ok(false) => continue,
                            Err(store_error) => {
                                tracing::warn!(%store_error, "create failed");
                                break;
                            }
                        }
                    }
                    reply(id, error(ErrorCode::Internal))
                }));
                Ok(())
            }
            Request::Subscribe {
                receive_id,
                signature,
            } => {
                if !self.subscriptions.contains_key(&receive_id)
                    && self.subscriptions.len()
                        >= self.shared.limits.max_subscriptions_per_connection
                {
                    self.shared.metrics.refused(Refusal::SubscriptionLimit);
                    return self.send(id, error(ErrorCode::LimitExceeded));
                }
                let auth_key = match self
                    .authorize_owner(receive_id, OwnerCommand::Subscribe, &signature)
                    .await
                {
                    Ok(auth_key) => auth_key,
                    Err(code) => return self.send(id, error(code)),
                };
                // A key that just verified a signature is a valid point.
                let Ok(verifying_key) =
                    ed25519_dalek::VerifyingKey::from_bytes(auth_key.as_bytes())
                else {
                    return self.send(id, error(ErrorCode::Auth));
                };
                let events = self
                    .events
                    .get_or_insert_with(mpsc::unbounded_channel)
                    .0
                    .clone();
                self.shared.hub.subscribe(receive_id, self.id, events);
                // A repeated SUBSCRIBE starts over: every unacknowledged envelope is pushed again.
                self.subscriptions.insert(
                    receive_id,
                    Subscription {
                        auth_key,
                        verifying_key,
                        in_flight: BTreeSet::new(),
                        max_sent: 0,
                        more_in_store: true,
                    },
                );
                // Best effort: the write is queued now; its completion is not awaited.
                drop(self.shared.store.touch(receive_id, unix_now()));
                self.send(id, Response::Ok {})?;
                self.refill(receive_id).await
            }
            Request::Ack {
                receive_id,
                message_ids,
                signature,
            } => {
                if message_ids.is_empty() {
                    return self.send(id, error(ErrorCode::Malformed));
                }
                if message_ids.len() > MAX_ACK_IDS {
                    return self.send(id, error(ErrorCode::LimitExceeded));
                }
                let authorized = match &signature {
                    // One signature check for the whole list (protocol version 2).
                    Some(signature) => self
                        .authorize_owner(receive_id, OwnerCommand::Ack(&message_ids), signature)
                        .await
                        .map(|_auth_key| ()),
                    // Protocol version 4: this connection's verified SUBSCRIBE of the mailbox
                    // proved the owner over its nonce (`docs/relay-protocol.md` § 4.3); no
                    // signature to check. Not subscribed here (never, or ended): `Auth`.
                    None if self.subscriptions.contains_key(&receive_id) => Ok(()),
                    None => Err(ErrorCode::Auth),
                };
                if let Err(code) = authorized {
                    return self.send(id, error(code));
                }
                if let Some(subscription) = self.subscriptions.get_mut(&receive_id) {
                    for message_id in &message_ids {
                        subscription.in_flight.remove(&message_id.0);
                    }
                }
                let store = self.shared.store.clone();
                let mut deleting: Pending = Box::pin(async move {
                    // All of them in one group commit; `Ok` only once all are durable.
                    match store.ack_many(receive_id, message_ids, unix_now()).await {
                        Ok(()) => reply(id, Response::Ok {}),
                        Err(store_error) => {
                            tracing::warn!(%store_error, "ack failed");
                            reply(id, error(ErrorCode::Internal))
                        }
                    }
                });
                // Polled once here, so the deletes are queued to the store's writer before the
                // window is refilled (and before anything this connection does next).
                match std::future::poll_fn(|cx| Poll::Ready(deleting.as_mut().poll(cx))).await {
                    Poll::Ready(frame) => self.send_frame(frame)?,
                    Poll::Pending => self.pending.push(deleting),
                }
                self.refill(receive_id).await
            }
            Request::Delete {
                receive_id,
                signature,
            } => {
                if let Err(code) = self
                    .authorize_owner(receive_id, OwnerCommand::Delete, &signature)
                    .await
                {
                    return self.send(id, error(code));
                }
                self.subscriptions.remove(&receive_id);
                self.shared.hub.remove(&receive_id);
                let store = self.shared.store.clone();
                self.pending.push(Box::pin(async move {
                    match store.delete_mailbox(receive_id).await {
                        Ok(()) => reply(id, Response::Ok {}),
                        Err(store_error) => {
                            tracing::warn!(%store_error, "delete failed");
                            reply(id, error(ErrorCode::Internal))
                        }
                    }
                }));
                Ok(())
            }
            Request::Secure {
                receive_id,
                sender_key,
                signature,
            } => {
                if let Err(code) = self
                    .authorize_owner(receive_id, OwnerCommand::Secure(sender_key), &signature)
                    .await
                {
                    return self.send(id, error(code));
                }
                if !usable_sender_key(&sender_key) {
                    // A small-order key verifies no strict signature, so binding it would make
                    // the mailbox refuse every SEND.
                    return self.send(id, error(ErrorCode::Malformed));
                }
                let store = self.shared.store.clone();
                self.pending.push(Box::pin(async move {
                    match store.secure(receive_id, sender_key, unix_now()).await {
                        Ok(SecureOutcome::Secured) => reply(id, Response::Ok {}),
                        Ok(SecureOutcome::AlreadySecured) => {
                            reply(id, error(ErrorCode::AlreadySecured))
                        }
                        Ok(SecureOutcome::Gone) => reply(id, error(ErrorCode::Auth)),
                        Err(store_error) => {
                            tracing::warn!(%store_error, "secure failed");
                            reply(id, error(ErrorCode::Internal))
                        }
                    }
                }));
                Ok(())
            }
            Request::SenderSession {
                send_id,
                send_secret,
                sender_key,
                signature,
            } => {
                let target = match self.send_target(send_id, &send_secret).await {
                    Ok(target) => target,
                    Err(code) => return self.send(id, error(code)),
                };
                // One verification per connection and mailbox, instead of one per SEND.
                let input = sender_session_signature_input(&self.nonce, &send_id, &sender_key);
                let proven = verify(&sender_key, &input, &signature);
                let bound_elsewhere = target.sender_key.is_some_and(|bound| {
                    !bool::from(bound.as_bytes().ct_eq(sender_key.as_bytes()))
                });
                if !proven || bound_elsewhere {
                    self.sender_sessions.remove(&send_id);
                    return self.send(id, error(ErrorCode::SenderAuth));
                }
                let limit = self.shared.limits.max_sender_sessions_per_connection.max(1);
                if self.sender_sessions.len() >= limit
                    && !self.sender_sessions.contains_key(&send_id)
                    && let Some(older) = self.sender_sessions.keys().next().copied()
                {
                    // Full: an older session makes room; its sender proves itself again.
                    self.sender_sessions.remove(&older);
                }
                self.sender_sessions.insert(send_id, sender_key);
                self.send(id, Response::Ok {})
            }
            Request::Send {
                send_id,
                send_secret,
                envelope,
            } => {
                if envelope.len() > self.shared.limits.max_envelope_bytes {
                    self.shared.metrics.refused(Refusal::TooLarge);
                    return self.send(id, error(ErrorCode::TooLarge));
                }
                let target = match self.send_target(send_id, &send_secret).await {
                    Ok(target) => target,
                    Err(code) => return self.send(id, error(code)),
                };
                if let Some(sender_key) = &target.sender_key {
                    // A secured mailbox: only after a sender session with its key (no signature
                    // check here; that was done once, by SENDER-SESSION).
                    let in_session = self.sender_sessions.get(&send_id).is_some_and(|proven| {
                        bool::from(proven.as_bytes().ct_eq(sender_key.as_bytes()))
                    });
                    if !in_session {
                        return self.send(id, error(ErrorCode::SenderAuth));
                    }
                }
                let store = self.shared.store.clone();
                let quota = Quota {
                    max_envelopes: self.shared.limits.mailbox_max_envelopes,
                    max_bytes: self.shared.limits.mailbox_max_bytes,
                };
                let envelope: Arc<[u8]> = Arc::from(envelope);
                let metrics = self.shared.metrics.clone();
                self.pending.push(Box::pin(async move {
                    let outcome = store
                        .append(
                            target.receive_id,
                            target.sender_key,
                            envelope,
                            unix_now(),
                            quota,
                        )
                        .await;
                    match outcome {
                        Ok(AppendOutcome::Stored { .. }) => {
                            metrics.stored();
                            reply(id, Response::Ok {})
                        }
                        Ok(AppendOutcome::QuotaExceeded) => {
                            metrics.refused(Refusal::MailboxFull);
                            reply(id, error(ErrorCode::QuotaExceeded))
                        }
                        Ok(AppendOutcome::Gone) => reply(id, error(ErrorCode::Auth)),
                        Ok(AppendOutcome::SenderChanged) => reply(id, error(ErrorCode::SenderAuth)),
                        Err(store_error) => {
                            tracing::warn!(%store_error, "append failed");
                            reply(id, error(ErrorCode::Internal))
                        }
                    }
                }));
                Ok(())
            }
        }
    }

    /// Deliveries wait while the outbox is over half full, so pushes alone never make a reader
    /// that is merely behind look like a slow reader.
    fn queue_busy(&self) -> bool {
        let limits = &self.shared.limits;
        self.outbox.bytes() > limits.write_queue_bytes / 2
            || self.outbox.frames() > limits.write_queue_frames.max(4) / 2
    }

    /// Retries held-back deliveries after the writer drained its queue.
    async fn resume(&mut self) -> Result<(), Stop> {
        self.stalled = false;
        let waiting: Vec<ReceiveId> = self
            .subscriptions
            .iter()
            .filter(|(_, s)| s.more_in_store)
            .map(|(id, _)| *id)
            .collect();
        for receive_id in waiting {
            self.refill(receive_id).await?;
        }
        Ok(())
    }

    fn push(&mut self, receive_id: ReceiveId, stored: &StoredEnvelope) -> Result<(), Stop> {
        let body = Response::Message {
            receive_id,
            message_id: stored.message_id,
            received_at: stored.received_at,
            envelope: stored.envelope.to_vec(),
        };
        self.shared.metrics.delivered();
        self.send(PUSH_CORRELATION_ID, body)
    }

    /// Pushes stored envelopes while the window has room and the store may hold more.
    async fn refill(&mut self, receive_id: ReceiveId) -> Result<(), Stop> {
        let window = usize::from(self.shared.limits.window.max(1));
        let Some(subscription) = self.subscriptions.get(&receive_id) else {
            return Ok(());
        };
        if !subscription.more_in_store || subscription.in_flight.len() >= window {
            return Ok(());
        }
        if self.queue_busy() {
            self.stalled = true;
            return Ok(());
        }
        let room = window - subscription.in_flight.len();
        let after = MessageId(subscription.max_sent);
        let fetched = match self.shared.store.fetch(receive_id, after, room).await {
            Ok(fetched) => fetched,
            Err(store_error) => {
                tracing::warn!(%store_error, "fetch failed");
                return Ok(());
            }
        };
        let mut pushed = 0;
        let mut held_back = false;
        for stored in &fetched {
            if self.queue_busy() {
                held_back = true;
                break;
            }
            self.push(receive_id, stored)?;
            pushed += 1;
        }
        if held_back {
            self.stalled = true;
        }
        let Some(subscription) = self.subscriptions.get_mut(&receive_id) else {
            return Ok(());
        };
        subscription.more_in_store = held_back || fetched.len() == room;
        for stored in fetched.iter().take(pushed) {
            subscription.in_flight.insert(stored.message_id.0);
            subscription.max_sent = subscription.max_sent.max(stored.message_id.0);
        }
        Ok(())
    }

    async fn on_event(&mut self, event: ConnectionEvent) -> Result<(), Stop> {
        let window = usize::from(self.shared.limits.window.max(1));
        match event {
            ConnectionEvent::Appended(appended) => {
                let (receive_id, stored) = *appended;
                let Some(subscription) = self.subscriptions.get_mut(&receive_id) else {
                    return Ok(());
                };
                if stored.message_id.0 <= subscription.max_sent {
                    return Ok(());
                }
                let busy = self.outbox.bytes() > self.shared.limits.write_queue_bytes / 2
                    || self.outbox.frames() > self.shared.limits.write_queue_frames.max(4) / 2;
                if subscription.more_in_store || subscription.in_flight.len() >= window || busy {
                    subscription.more_in_store = true;
                    return self.refill(receive_id).await;
                }
                subscription.in_flight.insert(stored.message_id.0);
                subscription.max_sent = stored.message_id.0;
                self.push(receive_id, &stored)
            }
            ConnectionEvent::MaybeNew(receive_id) => {
                let receive_id = *receive_id;
                let Some(subscription) = self.subscriptions.get_mut(&receive_id) else {
                    return Ok(());
                };
                subscription.more_in_store = true;
                self.refill(receive_id).await
            }
            ConnectionEvent::Ended(receive_id) => {
                let receive_id = *receive_id;
                if self.subscriptions.remove(&receive_id).is_some() {
                    self.send(PUSH_CORRELATION_ID, Response::End { receive_id })?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_connection_event_entries_stay_small() {
        // A subscribing connection's event channel allocates 32 entries up front.
        assert!(std::mem::size_of::<ConnectionEvent>() <= 16);
    }
}
