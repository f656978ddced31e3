//! Shared helpers for the relay's integration tests: a relay on 127.0.0.1:0 and a small
//! protocol client built from `sealpost-wire` alone (as an independent client would be).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use futures_util::{SinkExt, StreamExt};
use sealpost_relay::{Database, Limits, Relay, RelayConfig, RelayHandle};
use sealpost_wire::{
    AuthPublicKey, ClientFrame, ErrorCode, MessageId, Nonce, OwnerCommand, PROTOCOL_VERSION,
    ReceiveId, RelayFrame, Request, Response, SendId, SendSecret, create_signature_input,
    decode_relay_frame, encode_client_frame, owner_signature_input, public_key, sign,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const WAIT: Duration = Duration::from_secs(20);

/// Limits for tests: defaults with generous rates so only the test under study trips a limit.
pub fn test_limits() -> Limits {
    let generous = sealpost_relay::Rate {
        per_second: 100_000,
        burst: 100_000,
    };
    Limits {
        // The window these tests count pushes against (the default is larger).
        window: 8,
        rate_per_connection: generous,
        rate_per_ip: generous,
        create_rate_per_ip: generous,
        connect_rate_per_ip: generous,
        ..Limits::default()
    }
}

/// Which store a test relay runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the test's temporary directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server of `SEALPOST_TEST_POSTGRES_URL`.
    Postgres,
}

/// The URL of the test PostgreSQL server (its maintenance database). There is no skipping:
/// without it every PostgreSQL test fails, in CI and elsewhere.
pub fn postgres_server_url() -> String {
    match std::env::var("SEALPOST_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "SEALPOST_TEST_POSTGRES_URL is not set: the PostgreSQL tests need a real server. \
             Run them through `bash scripts/with-postgres.sh <command>` (scripts/test.sh does), \
             or leave them out explicitly with `-- --skip postgres`."
        ),
    }
}

/// Creates an empty database on the test server and returns its URL.
pub async fn fresh_postgres_database() -> String {
    let server = postgres_server_url();
    let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .expect("connect to the test PostgreSQL server");
    tokio::spawn(connection);
    let name = format!("sealpost_test_{}", hex::encode(&random32()[..8]));
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (base, _) = server.rsplit_once('/').expect("URL with a database name");
    format!("{base}/{name}")
}

/// The store of a new test relay on `backend`, as the `database` setting would spell it.
pub async fn test_database(backend: Backend, dir: &std::path::Path) -> String {
    match backend {
        Backend::Sqlite => dir.join("relay.db").display().to_string(),
        Backend::Postgres => fresh_postgres_database().await,
    }
}

pub struct TestRelay {
    pub handle: Option<RelayHandle>,
    pub dir: tempfile::TempDir,
    pub database: Database,
    /// The `database` setting (a path or a postgres:// URL).
    pub database_setting: String,
}

/// Starts the relay binary on `database` (a path or a postgres:// URL) with generous limits;
/// returns the child and its address (read from its `listening on` line).
pub fn spawn_relay_process(
    dir: &std::path::Path,
    database: &str,
) -> (std::process::Child, SocketAddr) {
    let config = format!(
        "listen = \"127.0.0.1:0\"\ndatabase = \"{database}\"\n[limits]\nmailbox_max_envelopes = 100000\n\
         mailbox_max_bytes = 1000000000\nrate_per_connection = {{ per_second = 1000000, burst = 1000000 }}\n\
         rate_per_ip = {{ per_second = 1000000, burst = 1000000 }}\n\
         connect_rate_per_ip = {{ per_second = 1000000, burst = 1000000 }}\n"
    );
    let config_path = dir.join(format!("relay-{}.toml", hex::encode(&random32()[..4])));
    std::fs::write(&config_path, config).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sealpost-relay"))
        .arg("--config")
        .arg(&config_path)
        .arg("--log")
        .arg("warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let addr = listening_addr(&mut child);
    (child, addr)
}

/// Reads a relay process's first stdout line (`listening on ws://ADDR`; stdout must be piped)
/// and returns the address.
pub fn listening_addr(child: &mut std::process::Child) -> SocketAddr {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("listening on ws://")
        .expect("listening line")
        .parse()
        .unwrap()
}

/// Rows in the blob tables of a relay's database: (blobs, chunks, download rows).
pub async fn blob_rows(relay: &TestRelay) -> (i64, i64, i64) {
    const COUNTS: &str = "SELECT (SELECT count(*) FROM blob), (SELECT count(*) FROM blob_chunk), \
                          (SELECT count(*) FROM blob_download)";
    match relay.database {
        Database::Sqlite(ref path) => {
            let db = rusqlite::Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .unwrap();
            db.query_row(COUNTS, [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .unwrap()
        }
        Database::Postgres(_) => {
            let (db, connection) =
                tokio_postgres::connect(&relay.database_setting, tokio_postgres::NoTls)
                    .await
                    .unwrap();
            tokio::spawn(connection);
            let row = db.query_one(COUNTS, &[]).await.unwrap();
            (row.get(0), row.get(1), row.get(2))
        }
    }
}

impl TestRelay {
    pub async fn start(limits: Limits, password: Option<&str>) -> Self {
        Self::start_on(Backend::Sqlite, limits, password).await
    }

    pub async fn start_on(backend: Backend, limits: Limits, password: Option<&str>) -> Self {
        Self::start_with(backend, limits, password, Default::default()).await
    }

    /// A relay that takes client addresses as `client_address` says (behind a proxy).
    pub async fn start_with(
        backend: Backend,
        limits: Limits,
        password: Option<&str>,
        client_address: sealpost_relay::ClientAddressConfig,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database_setting = test_database(backend, dir.path()).await;
        let database = Database::parse(&database_setting).unwrap();
        let config = RelayConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            database: database.clone(),
            tls: None,
            password: password.map(str::to_owned),
            metrics_listen: None,
            client_address,
            limits,
        };
        let handle = Relay::start(config).await.unwrap();
        Self {
            handle: Some(handle),
            dir,
            database,
            database_setting,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.as_ref().unwrap().addr()
    }

    pub async fn stop(&mut self) {
        self.handle.take().unwrap().shutdown().await.unwrap();
    }
}

pub fn random32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap();
    bytes
}

/// The owner's and a sender's view of one mailbox.
#[derive(Clone)]
pub struct Mailbox {
    pub auth: SigningKey,
    pub receive_id: ReceiveId,
    pub send_id: SendId,
    pub secret: [u8; 32],
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub nonce: Nonce,
    pub window: u16,
    pub max_envelope: u32,
    next_id: u64,
    pushes: VecDeque<Response>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        let (ws, _) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::connect_async(format!("ws://{addr}")),
        )
        .await
        .expect("connect timed out")
        .expect("connect");
        Self::after_handshake(ws).await
    }

    /// Connects as a proxy would: `prefix` (e.g. a PROXY protocol header) first on the TCP
    /// stream, then the WebSocket upgrade, with `X-Forwarded-For: forwarded_for` if given. Err
    /// when the relay does not complete the handshake.
    pub async fn connect_through_proxy(
        addr: SocketAddr,
        prefix: &[u8],
        forwarded_for: Option<&str>,
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        use tokio::io::AsyncWriteExt;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(prefix).await.unwrap();
        let mut request = format!("ws://{addr}").into_client_request().unwrap();
        if let Some(forwarded_for) = forwarded_for {
            request
                .headers_mut()
                .insert("x-forwarded-for", forwarded_for.parse().unwrap());
        }
        let (ws, _) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)),
        )
        .await
        .expect("connect timed out")?;
        Ok(Self::after_handshake(ws).await)
    }

    async fn after_handshake(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        let mut client = Self {
            ws,
            nonce: Nonce([0; 32]),
            window: 0,
            max_envelope: 0,
            next_id: 1,
            pushes: VecDeque::new(),
        };
        let hello = client.recv_frame().await.expect("hello");
        assert_eq!(hello.id, 0);
        match hello.body {
            Response::Hello {
                nonce,
                window,
                max_envelope,
            } => {
                client.nonce = nonce;
                client.window = window;
                client.max_envelope = max_envelope;
            }
            other => panic!("expected Hello, got {other:?}"),
        }
        client
    }

    /// Next frame from the relay; None when the connection closed.
    pub async fn recv_frame(&mut self) -> Option<RelayFrame> {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("recv timed out");
            match message {
                Some(Ok(Message::Binary(bytes))) => {
                    return Some(decode_relay_frame(&bytes).unwrap());
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    pub async fn send_frame(&mut self, id: u64, body: Request) {
        let bytes = encode_client_frame(&ClientFrame {
            v: PROTOCOL_VERSION,
            id,
            body,
        })
        .unwrap();
        self.ws.send(Message::Binary(bytes.into())).await.unwrap();
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.unwrap();
    }

    pub fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Sends a request and returns its reply, keeping pushes that arrive meanwhile.
    pub async fn request(&mut self, body: Request) -> Response {
        let id = self.fresh_id();
        self.send_frame(id, body).await;
        self.reply_to(id).await
    }

    pub async fn reply_to(&mut self, id: u64) -> Response {
        loop {
            let frame = self
                .recv_frame()
                .await
                .expect("connection closed before reply");
            if frame.id == id {
                return frame.body;
            }
            assert_eq!(frame.id, 0, "unexpected correlation id");
            self.pushes.push_back(frame.body);
        }
    }

    /// Next push (MESSAGE or END).
    pub async fn next_push(&mut self) -> Response {
        if let Some(push) = self.pushes.pop_front() {
            return push;
        }
        let frame = self
            .recv_frame()
            .await
            .expect("connection closed before push");
        assert_eq!(frame.id, 0, "expected a push");
        frame.body
    }

    /// Pushes received so far without waiting (after a request round trip they are all in).
    pub fn take_pushes(&mut self) -> Vec<Response> {
        self.pushes.drain(..).collect()
    }

    pub fn create_request(
        &self,
        auth: &SigningKey,
        secret: [u8; 32],
        password: Option<&str>,
    ) -> Request {
        let auth_key = public_key(auth);
        Request::Create {
            auth_key,
            send_secret: SendSecret::new(secret),
            password: password.map(str::to_owned),
            signature: sign(auth, &create_signature_input(&self.nonce, &auth_key)),
        }
    }

    pub async fn create(&mut self) -> Mailbox {
        self.create_with_password(None).await
    }

    pub async fn create_with_password(&mut self, password: Option<&str>) -> Mailbox {
        let auth = SigningKey::from_bytes(&random32());
        let secret = random32();
        let request = self.create_request(&auth, secret, password);
        match self.request(request).await {
            Response::Created {
                receive_id,
                send_id,
            } => {
                assert_ne!(receive_id.0, send_id.0);
                Mailbox {
                    auth,
                    receive_id,
                    send_id,
                    secret,
                }
            }
            other => panic!("expected Created, got {other:?}"),
        }
    }

    pub fn owner_signature(
        &self,
        mailbox: &Mailbox,
        command: OwnerCommand<'_>,
    ) -> sealpost_wire::SignatureBytes {
        sign(
            &mailbox.auth,
            &owner_signature_input(&self.nonce, command, &mailbox.receive_id),
        )
    }

    pub fn subscribe_request(&self, mailbox: &Mailbox) -> Request {
        Request::Subscribe {
            receive_id: mailbox.receive_id,
            signature: self.owner_signature(mailbox, OwnerCommand::Subscribe),
        }
    }

    pub async fn subscribe(&mut self, mailbox: &Mailbox) {
        let request = self.subscribe_request(mailbox);
        assert_eq!(self.request(request).await, Response::Ok {});
    }

    /// Drains a subscribed mailbox: an ACK of id 0 as a barrier (its reply follows every push
    /// queued before it), then each pushed envelope goes to `on_message` and is ACKed, until a
    /// barrier finds nothing pushed.
    pub async fn drain(&mut self, mailbox: &Mailbox, mut on_message: impl FnMut(MessageId, &[u8])) {
        loop {
            self.ack(mailbox, MessageId(0)).await;
            let pushes = self.take_pushes();
            if pushes.is_empty() {
                break;
            }
            for push in pushes {
                let Response::Message {
                    message_id,
                    envelope,
                    ..
                } = push
                else {
                    panic!("{push:?}")
                };
                on_message(message_id, &envelope);
                self.ack(mailbox, message_id).await;
            }
        }
    }

    pub fn ack_request(&self, mailbox: &Mailbox, message_id: MessageId) -> Request {
        self.ack_many_request(mailbox, vec![message_id])
    }

    /// One ACK of several ids under one signature.
    pub fn ack_many_request(&self, mailbox: &Mailbox, message_ids: Vec<MessageId>) -> Request {
        Request::Ack {
            receive_id: mailbox.receive_id,
            signature: Some(self.owner_signature(mailbox, OwnerCommand::Ack(&message_ids))),
            message_ids,
        }
    }

    /// One ACK with no signature (protocol version 4): valid only on the connection that
    /// subscribes the mailbox.
    pub fn unsigned_ack_request(mailbox: &Mailbox, message_ids: Vec<MessageId>) -> Request {
        sealpost_wire::requests::ack_subscribed(mailbox.receive_id, message_ids)
    }

    pub async fn ack(&mut self, mailbox: &Mailbox, message_id: MessageId) {
        let request = self.ack_request(mailbox, message_id);
        assert_eq!(self.request(request).await, Response::Ok {});
    }

    pub fn send_request(mailbox: &Mailbox, envelope: &[u8]) -> Request {
        Request::Send {
            send_id: mailbox.send_id,
            send_secret: SendSecret::new(mailbox.secret),
            envelope: envelope.to_vec(),
        }
    }

    /// SENDER-SESSION for `mailbox` with `sender`, signed over this connection's nonce.
    pub fn sender_session_request(&self, mailbox: &Mailbox, sender: &SigningKey) -> Request {
        sealpost_wire::requests::sender_session(
            &self.nonce,
            mailbox.send_id,
            SendSecret::new(mailbox.secret),
            sender,
        )
    }

    /// Opens a sender session for `mailbox` on this connection; panics unless the relay says `Ok`.
    pub async fn open_sender_session(&mut self, mailbox: &Mailbox, sender: &SigningKey) {
        let request = self.sender_session_request(mailbox, sender);
        assert_eq!(self.request(request).await, Response::Ok {});
    }

    pub async fn send(&mut self, mailbox: &Mailbox, envelope: &[u8]) -> Response {
        self.request(Self::send_request(mailbox, envelope)).await
    }

    /// Next pushed MESSAGE: (message id, envelope).
    pub async fn next_message(&mut self) -> (ReceiveId, MessageId, Vec<u8>) {
        match self.next_push().await {
            Response::Message {
                receive_id,
                message_id,
                envelope,
                ..
            } => (receive_id, message_id, envelope),
            other => panic!("expected Message, got {other:?}"),
        }
    }
}

pub fn err(code: ErrorCode) -> Response {
    Response::Error { code }
}

/// A well-behaved client still gets full service: create, send, subscribe, receive, ack.
pub async fn assert_served(addr: SocketAddr) {
    let mut owner = Client::connect(addr).await;
    let mailbox = owner.create().await;
    let mut sender = Client::connect(addr).await;
    assert_eq!(
        sender.send(&mailbox, b"still served").await,
        Response::Ok {}
    );
    owner.subscribe(&mailbox).await;
    let (_, message_id, envelope) = owner.next_message().await;
    assert_eq!(envelope, b"still served");
    owner.ack(&mailbox, message_id).await;
}

pub fn auth_key_of(mailbox: &Mailbox) -> AuthPublicKey {
    public_key(&mailbox.auth)
}

/// The envelope of burst index `index`: its index, then 252 bytes derived from it, so a torn or
/// mixed-up envelope is caught on delivery.
pub fn payload(index: u32) -> Vec<u8> {
    let mut bytes = index.to_be_bytes().to_vec();
    bytes.extend((0..252u32).map(|k| (index.wrapping_mul(7).wrapping_add(k)) as u8));
    bytes
}

/// Pipelines this connection's share of a burst of `total` SENDs to `mailbox` (every
/// `connections`-th index from `connection`; frame id = index + 1) without waiting for replies;
/// stops when the socket closes.
pub fn spawn_burst_writer(
    mut sink: futures_util::stream::SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>,
    mailbox: std::sync::Arc<Mailbox>,
    connection: u32,
    connections: u32,
    total: u32,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for index in (connection..total).step_by(connections as usize) {
            let body = Client::send_request(&mailbox, &payload(index));
            let frame = ClientFrame {
                v: PROTOCOL_VERSION,
                id: u64::from(index) + 1,
                body,
            };
            let bytes = encode_client_frame(&frame).unwrap();
            if sink.send(Message::Binary(bytes.into())).await.is_err() {
                return;
            }
        }
    })
}

/// Records a reply to a burst SEND: an OK adds its index to `oked` and counts it; anything else
/// must be a push (id 0).
pub fn record_burst_reply(
    frame: &RelayFrame,
    oked: &std::sync::Mutex<std::collections::HashSet<u32>>,
    ok_count: &std::sync::atomic::AtomicUsize,
) {
    if frame.body == (Response::Ok {}) {
        oked.lock().unwrap().insert((frame.id - 1) as u32);
        ok_count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    } else {
        assert_eq!(frame.id, 0, "unexpected reply {frame:?}");
    }
}

/// After a burst of `total` SENDs: every envelope the relay OK'd (`oked`) was delivered, and
/// nothing was delivered that the burst did not send.
pub fn assert_burst_kept<V>(
    oked: &std::collections::HashSet<u32>,
    delivered: &std::collections::HashMap<u32, V>,
    total: u32,
) {
    for index in oked {
        assert!(
            delivered.contains_key(index),
            "OK'd envelope {index} was lost"
        );
    }
    assert!(delivered.keys().all(|index| *index < total));
}

/// GETs `path` from a metrics endpoint and returns the raw HTTP response.
pub async fn scrape(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: relay\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    response
}

/// The value of the sample named `name` (with its label set, if any) in the exposition.
pub fn sample(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == name).then(|| value.parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no sample {name} in:\n{body}"))
}

/// One blob as its uploader knows it: random ids and secrets for the uploader and for each
/// recipient, as a client draws them before uploading.
pub struct TestBlob {
    pub upload_id: sealpost_wire::BlobUploadId,
    pub upload_auth: [u8; 32],
    pub chunk_count: u32,
    /// (download id, download secret) per recipient.
    pub downloads: Vec<([u8; 32], [u8; 32])>,
    /// Distinguishes this blob's chunk contents from every other blob's.
    pub seed: [u8; 32],
}

impl TestBlob {
    pub fn random(chunk_count: u32, recipients: usize) -> Self {
        Self {
            upload_id: sealpost_wire::BlobUploadId(random32()),
            upload_auth: random32(),
            chunk_count,
            downloads: (0..recipients).map(|_| (random32(), random32())).collect(),
            seed: random32(),
        }
    }

    /// Chunk `index` of this blob: `BLOB_CHUNK_BYTES` bytes that look random (a stand-in for
    /// ciphertext) and differ per blob and index.
    pub fn chunk(&self, index: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(sealpost_wire::BLOB_CHUNK_BYTES);
        let mut block = 0u64;
        while out.len() < sealpost_wire::BLOB_CHUNK_BYTES {
            let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
            sha2::Digest::update(&mut hasher, self.seed);
            sha2::Digest::update(&mut hasher, index.to_be_bytes());
            sha2::Digest::update(&mut hasher, block.to_be_bytes());
            out.extend_from_slice(&sha2::Digest::finalize(hasher));
            block += 1;
        }
        out.truncate(sealpost_wire::BLOB_CHUNK_BYTES);
        out
    }

    pub fn download(&self, recipient: usize) -> sealpost_wire::BlobDownload {
        let (id, auth) = self.downloads[recipient];
        sealpost_wire::BlobDownload {
            download_id: sealpost_wire::BlobDownloadId(id),
            download_auth: sealpost_wire::BlobDownloadAuth::new(auth),
        }
    }

    pub fn create_request(&self) -> Request {
        Request::BlobCreate {
            upload_id: self.upload_id,
            upload_auth: sealpost_wire::BlobUploadAuth::new(self.upload_auth),
            chunk_count: self.chunk_count,
            downloads: (0..self.downloads.len())
                .map(|r| self.download(r))
                .collect(),
            password: None,
        }
    }

    pub fn put_request(&self, index: u32, chunk: Vec<u8>) -> Request {
        Request::BlobPut {
            upload_id: self.upload_id,
            upload_auth: sealpost_wire::BlobUploadAuth::new(self.upload_auth),
            index,
            chunk,
        }
    }

    pub fn status_request(&self) -> Request {
        Request::BlobStatus {
            upload_id: self.upload_id,
            upload_auth: sealpost_wire::BlobUploadAuth::new(self.upload_auth),
        }
    }

    pub fn get_request(&self, recipient: usize, index: u32) -> Request {
        let download = self.download(recipient);
        Request::BlobGet {
            download_id: download.download_id,
            download_auth: download.download_auth,
            index,
        }
    }

    pub fn delete_request(&self) -> Request {
        Request::BlobDelete {
            upload_id: self.upload_id,
            upload_auth: sealpost_wire::BlobUploadAuth::new(self.upload_auth),
        }
    }

    /// BLOB-STATE `(chunk_count, stored)` as `client` sees it.
    pub async fn state(&self, client: &mut Client) -> Response {
        client.request(self.status_request()).await
    }

    /// Creates the blob and uploads chunks `from..to`, each acknowledged with OK.
    pub async fn upload(&self, client: &mut Client, from: u32, to: u32) {
        assert_eq!(client.request(self.create_request()).await, Response::Ok {});
        for index in from..to {
            let put = self.put_request(index, self.chunk(index));
            assert_eq!(client.request(put).await, Response::Ok {}, "chunk {index}");
        }
    }

    /// Recipient `recipient` downloads every chunk and checks each one.
    pub async fn assert_downloads(&self, client: &mut Client, recipient: usize) {
        for index in 0..self.chunk_count {
            match client.request(self.get_request(recipient, index)).await {
                Response::BlobChunk {
                    index: answered,
                    chunk,
                } => {
                    assert_eq!(answered, index);
                    assert!(chunk == self.chunk(index), "chunk {index} differs");
                }
                other => panic!("chunk {index}: expected BlobChunk, got {other:?}"),
            }
        }
    }
}
