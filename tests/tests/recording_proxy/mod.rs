//! A WebSocket proxy on loopback in front of a real relay that records, per client TCP
//! connection, which relay commands went over it — what a relay itself could log — and can
//! refuse chosen commands (by dropping the connection, as an unreachable relay would).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use sealpost_wire::{Request, decode_client_frame};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// A relay command's name, as the recorder logs it.
pub type Command = &'static str;

/// The proxy. Dropping it stops accepting (open connections go on until either side closes).
pub struct RecordingProxy {
    pub addr: SocketAddr,
    connections: Arc<Mutex<Vec<Vec<Command>>>>,
    refuse_secure: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

fn name(request: &Request) -> Command {
    match request {
        Request::Create { .. } => "CREATE",
        Request::Subscribe { .. } => "SUBSCRIBE",
        Request::Ack { .. } => "ACK",
        Request::Delete { .. } => "DELETE",
        Request::Secure { .. } => "SECURE",
        Request::SenderSession { .. } => "SENDER-SESSION",
        Request::Send { .. } => "SEND",
        Request::BlobCreate { .. } => "BLOB-CREATE",
        Request::BlobPut { .. } => "BLOB-PUT",
        Request::BlobStatus { .. } => "BLOB-STATUS",
        Request::BlobGet { .. } => "BLOB-GET",
        Request::BlobDelete { .. } => "BLOB-DELETE",
    }
}

impl RecordingProxy {
    /// Listens on 127.0.0.1:0 and forwards each connection to the relay at `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), upstream).await
    }

    /// [`RecordingProxy::start`] on a chosen address (to come back on the same port).
    pub async fn start_on(listen: SocketAddr, upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind(listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(Mutex::new(Vec::new()));
        let refuse_secure = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(accept_loop(
            listener,
            upstream,
            connections.clone(),
            (refuse_secure.clone(), refused.clone()),
        ));
        Self {
            addr,
            connections,
            refuse_secure,
            refused,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// While set, a connection that carries SECURE is cut before the SECURE reaches the relay.
    pub fn refuse_secure(&self, refuse: bool) {
        self.refuse_secure.store(refuse, Ordering::SeqCst);
    }

    /// How many SECUREs were cut while [`RecordingProxy::refuse_secure`] was set.
    pub fn refused_secures(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// The commands seen on each connection so far, one list per TCP connection.
    pub fn connections(&self) -> Vec<Vec<Command>> {
        self.connections.lock().unwrap().clone()
    }

    /// Every command seen, on any connection.
    pub fn all_commands(&self) -> Vec<Command> {
        self.connections().into_iter().flatten().collect()
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    connections: Arc<Mutex<Vec<Vec<Command>>>>,
    refuse: (Arc<AtomicBool>, Arc<AtomicUsize>),
) {
    while let Ok((stream, _)) = listener.accept().await {
        let index = {
            let mut connections = connections.lock().unwrap();
            connections.push(Vec::new());
            connections.len() - 1
        };
        tokio::spawn(forward(
            stream,
            upstream,
            index,
            connections.clone(),
            refuse.clone(),
        ));
    }
}

async fn forward(
    stream: TcpStream,
    upstream: SocketAddr,
    index: usize,
    connections: Arc<Mutex<Vec<Vec<Command>>>>,
    (refuse_secure, refused): (Arc<AtomicBool>, Arc<AtomicUsize>),
) {
    let Ok(client) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let Ok((relay, _)) = tokio_tungstenite::connect_async(format!("ws://{upstream}")).await else {
        return;
    };
    let (mut client_sink, mut client_stream) = client.split();
    let (mut relay_sink, mut relay_stream) = relay.split();
    let up = async {
        while let Some(Ok(message)) = client_stream.next().await {
            if let Message::Binary(bytes) = &message
                && let Ok(frame) = decode_client_frame(bytes)
            {
                let command = name(&frame.body);
                if command == "SECURE" && refuse_secure.load(Ordering::SeqCst) {
                    refused.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                connections.lock().unwrap()[index].push(command);
            }
            if relay_sink.send(message).await.is_err() {
                return;
            }
        }
    };
    let down = async {
        while let Some(Ok(message)) = relay_stream.next().await {
            if client_sink.send(message).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}
