//! The relay's own WebSocket server side (RFC 6455): the HTTP upgrade and the frame layer, built
//! so that an idle connection costs as little memory as possible (issue 15; the figures are in
//! `docs/benchmarks.md` § Relay).
//!
//! Each connection is served by one task that reads and writes through one [`ServerSocket`]: no
//! writer task of its own, no channel between reader and writer. Buffers exist only while they
//! hold bytes. Reads go into a buffer on the worker thread's stack; only the bytes of a frame not
//! yet complete are kept on the heap, and that buffer is freed as soon as it is empty. Writes go
//! through an [`Outbox`] of encoded frames, which is unallocated when empty. tungstenite, which
//! the relay used before, keeps a 4 KiB read buffer and a split stream with a lock per connection
//! for as long as the connection lives.
//!
//! Only what a relay needs is here: binary data messages (fragmented or not), ping, pong and
//! close; text messages are reported so the caller can refuse them; no extensions, no
//! subprotocols. Client frames must be masked (RFC 6455 § 5.1), server frames never are.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Largest HTTP upgrade request the relay reads, bytes.
const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// Bytes read from the socket at once, into a buffer on the stack.
const READ_CHUNK_BYTES: usize = 4 * 1024;
/// Most queued frames handed to one vectored write.
const WRITE_SLICES: usize = 32;
/// Most payload bytes of a control frame (RFC 6455 § 5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

const OPCODE_CONTINUATION: u8 = 0x0;
const OPCODE_TEXT: u8 = 0x1;
const OPCODE_BINARY: u8 = 0x2;
const OPCODE_CLOSE: u8 = 0x8;
const OPCODE_PING: u8 = 0x9;
const OPCODE_PONG: u8 = 0xA;

/// Close codes the relay sends (RFC 6455 § 7.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseCode {
    /// 1000: the purpose of the connection is fulfilled (idle, or the client closed).
    Normal,
    /// 1001: the relay is shutting down.
    Away,
    /// 1003: a text message (the protocol is binary only).
    Unsupported,
    /// 1009: a message over `max_frame_bytes`.
    Size,
    /// 1013: try again later (the partial-message budget is exhausted).
    Again,
}

impl CloseCode {
    fn number(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::Away => 1001,
            CloseCode::Unsupported => 1003,
            CloseCode::Size => 1009,
            CloseCode::Again => 1013,
        }
    }
}

/// Why the HTTP upgrade failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandshakeError {
    /// Reading or writing the socket failed.
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    /// The client closed before a whole request arrived.
    #[error("closed before the upgrade request was complete")]
    Closed,
    /// The request was longer than [`MAX_REQUEST_BYTES`].
    #[error("upgrade request too long")]
    TooLong,
    /// Not an HTTP/1.1 WebSocket upgrade request (answered `400 Bad Request`).
    #[error("not a WebSocket upgrade request: {0}")]
    BadRequest(&'static str),
}

/// What the relay takes from a client's upgrade request.
pub(crate) struct Upgraded {
    /// Every `X-Forwarded-For` value, in order (read only from trusted proxies).
    pub(crate) forwarded_for: Vec<Vec<u8>>,
    /// Bytes the client sent after the request (frames it did not wait to send).
    pub(crate) early_bytes: Vec<u8>,
}

/// Reads the client's HTTP upgrade request and answers `101 Switching Protocols` (or
/// `400 Bad Request`, then the error).
pub(crate) async fn accept<S>(stream: &mut S) -> Result<Upgraded, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut request = Vec::with_capacity(512);
    let end = loop {
        let searched_from = request.len().saturating_sub(3);
        if request.len() == request.capacity() {
            if request.len() >= MAX_REQUEST_BYTES {
                return Err(HandshakeError::TooLong);
            }
            request.reserve((2 * request.len()).min(MAX_REQUEST_BYTES) - request.len());
        }
        let read = stream.read_buf(&mut request).await?;
        if read == 0 {
            return Err(HandshakeError::Closed);
        }
        if let Some(at) = find(&request[searched_from..], b"\r\n\r\n") {
            break searched_from + at + 4;
        }
    };
    match parse_upgrade(&request[..end]) {
        Ok((accept_key, forwarded_for)) => {
            let response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Accept: {accept_key}\r\n\r\n"
            );
            stream.write_all(response.as_bytes()).await?;
            stream.flush().await?;
            Ok(Upgraded {
                forwarded_for,
                early_bytes: request[end..].to_vec(),
            })
        }
        Err(reason) => {
            let refusal =
                b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
            let _ = stream.write_all(refusal).await;
            let _ = stream.flush().await;
            Err(HandshakeError::BadRequest(reason))
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Whether a comma-separated header value lists `token` (ASCII case-insensitive).
fn lists_token(value: &[u8], token: &str) -> bool {
    value
        .split(|byte| *byte == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Checks an upgrade request (RFC 6455 § 4.2.1); returns the `Sec-WebSocket-Accept` value and the
/// `X-Forwarded-For` values.
fn parse_upgrade(bytes: &[u8]) -> Result<(String, Vec<Vec<u8>>), &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err("unparsable HTTP request"),
    }
    if request.method != Some("GET") {
        return Err("method is not GET");
    }
    if request.version != Some(1) {
        return Err("not HTTP/1.1");
    }
    let mut upgrade = false;
    let mut connection = false;
    let mut version = false;
    let mut key = None;
    let mut forwarded_for = Vec::new();
    for header in request.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade |= lists_token(header.value, "websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection |= lists_token(header.value, "upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            version = header.value.trim_ascii() == b"13";
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            key = Some(header.value.trim_ascii());
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            forwarded_for.push(header.value.to_vec());
        }
    }
    if !upgrade || !connection {
        return Err("no WebSocket upgrade");
    }
    if !version {
        return Err("Sec-WebSocket-Version is not 13");
    }
    let key = key
        .filter(|key| !key.is_empty())
        .ok_or("no Sec-WebSocket-Key")?;
    let accept_key = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key);
    Ok((accept_key, forwarded_for))
}

/// Encoded frames waiting to be written to one connection.
#[derive(Default)]
pub(crate) struct Outbox {
    frames: VecDeque<Vec<u8>>,
    /// Bytes of the front frame already written.
    written: usize,
    /// Bytes queued and not yet written.
    bytes: usize,
    /// Written but not yet flushed (TLS keeps records until flushed).
    unflushed: bool,
}

impl Outbox {
    /// Queues one binary message.
    pub(crate) fn push_binary(&mut self, payload: &[u8]) {
        self.push(OPCODE_BINARY, payload);
    }

    /// Queues a ping (empty payload).
    pub(crate) fn push_ping(&mut self) {
        self.push(OPCODE_PING, &[]);
    }

    /// Queues a close frame with `code` and a reason (cut to what a control frame may carry).
    pub(crate) fn push_close(&mut self, code: CloseCode, reason: &str) {
        let mut payload = code.number().to_be_bytes().to_vec();
        let room = MAX_CONTROL_PAYLOAD - payload.len();
        let mut cut = reason.len().min(room);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        payload.extend_from_slice(&reason.as_bytes()[..cut]);
        self.push(OPCODE_CLOSE, &payload);
    }

    fn push(&mut self, opcode: u8, payload: &[u8]) {
        let mut frame = Vec::with_capacity(payload.len() + 10);
        frame.push(0x80 | opcode);
        match payload.len() {
            0..=125 => frame.push(payload.len() as u8),
            126..=0xFFFF => {
                frame.push(126);
                frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            }
            _ => {
                frame.push(127);
                frame.extend_from_slice(&(payload.len() as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(payload);
        self.bytes += frame.len();
        self.frames.push_back(frame);
    }

    /// Frames queued.
    pub(crate) fn frames(&self) -> usize {
        self.frames.len()
    }

    /// Bytes queued.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Nothing left to write.
    pub(crate) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// `written` bytes went out.
    fn advance(&mut self, mut written: usize) {
        self.bytes -= written;
        while written > 0 {
            let Some(front) = self.frames.front() else {
                break;
            };
            let left = front.len() - self.written;
            if written < left {
                self.written += written;
                return;
            }
            written -= left;
            self.written = 0;
            self.frames.pop_front();
        }
        if self.frames.is_empty() {
            // Give the queue's memory back while the connection is idle.
            self.frames = VecDeque::new();
        }
    }
}

/// What arrived from the client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// A whole binary message.
    Binary(Vec<u8>),
    /// A whole text message (the relay refuses it).
    Text,
    /// A ping (already answered with a pong) or a pong.
    Control,
    /// The client's close frame.
    Close,
    /// A message over the size limit (its header or its fragments declared too many bytes).
    TooLarge,
    /// The outbox was written out completely (asked for with `report_drained`).
    Drained,
}

/// Why the connection cannot go on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SocketError {
    /// Reading or writing failed.
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    /// The client closed the TCP connection.
    #[error("closed by the client")]
    Closed,
    /// The client broke RFC 6455 (an unmasked frame, reserved bits, a bad opcode, …).
    #[error("WebSocket protocol violation: {0}")]
    Protocol(&'static str),
}

/// A data message arriving in fragments.
struct Partial {
    text: bool,
    bytes: Vec<u8>,
}

/// One connection's WebSocket after the upgrade.
pub(crate) struct ServerSocket<S> {
    stream: S,
    /// Received bytes not yet parsed: the start of a frame. Unallocated when empty.
    input: Vec<u8>,
    /// The data message being received in fragments.
    partial: Option<Partial>,
    /// Largest message (all its fragments), bytes.
    max_message: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ServerSocket<S> {
    /// Wraps an upgraded stream; `early_bytes` are what the client sent after its request.
    pub(crate) fn new(stream: S, early_bytes: Vec<u8>, max_message: usize) -> Self {
        Self {
            stream,
            input: early_bytes,
            partial: None,
            max_message,
        }
    }

    /// Writes as much of `outbox` as the socket takes now; `Ready(Ok)` once it is all written
    /// and flushed. Returns how many bytes went out in `progress`.
    pub(crate) fn poll_write_outbox(
        &mut self,
        cx: &mut Context<'_>,
        outbox: &mut Outbox,
        progress: &mut usize,
    ) -> Poll<io::Result<()>> {
        while !outbox.frames.is_empty() {
            let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
            let mut count = 0;
            for (index, frame) in outbox.frames.iter().take(WRITE_SLICES).enumerate() {
                let start = if index == 0 { outbox.written } else { 0 };
                slices[count] = IoSlice::new(&frame[start..]);
                count += 1;
            }
            let written =
                ready!(Pin::new(&mut self.stream).poll_write_vectored(cx, &slices[..count]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            outbox.advance(written);
            outbox.unflushed = true;
            *progress += written;
        }
        if outbox.unflushed {
            ready!(Pin::new(&mut self.stream).poll_flush(cx))?;
            outbox.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }

    /// Writes what it can of `outbox`, then returns the next thing that arrived. Reads only when
    /// `read` is set (the caller's pipelining limit); with `report_drained`, an outbox written
    /// out completely is reported as [`Incoming::Drained`]. A ping is answered here.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        outbox: &mut Outbox,
        read: bool,
        report_drained: bool,
        progress: &mut usize,
    ) -> Poll<Result<Incoming, SocketError>> {
        loop {
            if let Poll::Ready(result) = self.poll_write_outbox(cx, outbox, progress) {
                result?;
                if report_drained {
                    return Poll::Ready(Ok(Incoming::Drained));
                }
            }
            if !read {
                // The caller's pipelining limit: not even frames already received are taken.
                return Poll::Pending;
            }
            if let Some(incoming) = self.parse(outbox)? {
                return Poll::Ready(Ok(incoming));
            }
            let mut chunk = [0u8; READ_CHUNK_BYTES];
            let mut buffer = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut self.stream).poll_read(cx, &mut buffer))?;
            if buffer.filled().is_empty() {
                return Poll::Ready(Err(SocketError::Closed));
            }
            self.input.extend_from_slice(buffer.filled());
        }
    }

    /// Takes one frame off `input` if it is complete; returns what it makes arrive.
    fn parse(&mut self, outbox: &mut Outbox) -> Result<Option<Incoming>, SocketError> {
        loop {
            let Some(header) = FrameHeader::read(&self.input)? else {
                return Ok(None);
            };
            // Refuse an oversized message on its header, before its payload arrives.
            let control = header.opcode >= OPCODE_CLOSE;
            if !control {
                let before = self.partial.as_ref().map_or(0, |p| p.bytes.len() as u64);
                if before.saturating_add(header.length) > self.max_message as u64 {
                    return Ok(Some(Incoming::TooLarge));
                }
            }
            let Ok(length) = usize::try_from(header.length) else {
                return Ok(Some(Incoming::TooLarge));
            };
            let total = header.size + length;
            if self.input.len() < total {
                // The frame is not complete: keep room for exactly the rest of it.
                self.input.reserve_exact(total - self.input.len());
                return Ok(None);
            }
            let mut payload = self.input[header.size..total].to_vec();
            for (index, byte) in payload.iter_mut().enumerate() {
                *byte ^= header.mask[index % 4];
            }
            self.input.drain(..total);
            if self.input.is_empty() {
                // Idle again: hold no read buffer.
                self.input = Vec::new();
            }
            match header.opcode {
                OPCODE_PING => {
                    outbox.push(OPCODE_PONG, &payload);
                    return Ok(Some(Incoming::Control));
                }
                OPCODE_PONG => return Ok(Some(Incoming::Control)),
                OPCODE_CLOSE => return Ok(Some(Incoming::Close)),
                OPCODE_CONTINUATION => {
                    let Some(partial) = self.partial.as_mut() else {
                        return Err(SocketError::Protocol("continuation without a message"));
                    };
                    partial.bytes.extend_from_slice(&payload);
                    if header.fin {
                        let Some(done) = self.partial.take() else {
                            continue;
                        };
                        return Ok(Some(message(done.text, done.bytes)));
                    }
                }
                OPCODE_TEXT | OPCODE_BINARY => {
                    if self.partial.is_some() {
                        return Err(SocketError::Protocol("new message inside a fragmented one"));
                    }
                    let text = header.opcode == OPCODE_TEXT;
                    if header.fin {
                        return Ok(Some(message(text, payload)));
                    }
                    self.partial = Some(Partial {
                        text,
                        bytes: payload,
                    });
                }
                _ => return Err(SocketError::Protocol("reserved opcode")),
            }
        }
    }

    /// Ends the connection after the caller's close frame: writes out `outbox`, shuts the
    /// sending side, then reads what the client still sends, for at most `linger`, until its
    /// close frame or end of stream, so that the TCP close does not reset the connection before
    /// the client has read everything (a close with unread incoming bytes sends a reset).
    pub(crate) async fn finish(&mut self, outbox: &mut Outbox, linger: std::time::Duration) {
        let mut progress = 0;
        let written =
            std::future::poll_fn(|cx| self.poll_write_outbox(cx, outbox, &mut progress)).await;
        if written.is_err() || self.stream.shutdown().await.is_err() {
            return;
        }
        let mut ignored = Outbox::default();
        let mut frames_readable = true;
        let _ = tokio::time::timeout(linger, async {
            let mut chunk = vec![0u8; 1024];
            loop {
                let read = match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(read) => read,
                };
                if !frames_readable {
                    continue;
                }
                self.input.extend_from_slice(&chunk[..read]);
                loop {
                    match self.parse(&mut ignored) {
                        Ok(Some(Incoming::Close)) => return,
                        Ok(Some(Incoming::TooLarge)) | Err(_) => {
                            // Past a frame it will not take: drop the rest unread.
                            frames_readable = false;
                            self.input = Vec::new();
                            break;
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                    }
                }
            }
        })
        .await;
    }
}

fn message(text: bool, bytes: Vec<u8>) -> Incoming {
    if text {
        Incoming::Text
    } else {
        Incoming::Binary(bytes)
    }
}

/// A client frame's header (RFC 6455 § 5.2).
struct FrameHeader {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    length: u64,
    /// Header bytes, mask included.
    size: usize,
}

impl FrameHeader {
    /// The header at the start of `bytes`, if all of it has arrived.
    fn read(bytes: &[u8]) -> Result<Option<Self>, SocketError> {
        let [first, second, ..] = *bytes else {
            return Ok(None);
        };
        if first & 0x70 != 0 {
            return Err(SocketError::Protocol("reserved bits set"));
        }
        if second & 0x80 == 0 {
            return Err(SocketError::Protocol("unmasked client frame"));
        }
        let fin = first & 0x80 != 0;
        let opcode = first & 0x0F;
        let (length, at) = match second & 0x7F {
            126 => {
                let Some(extended) = bytes.get(2..4) else {
                    return Ok(None);
                };
                (u64::from(u16::from_be_bytes([extended[0], extended[1]])), 4)
            }
            127 => {
                let Some(extended) = bytes.get(2..10) else {
                    return Ok(None);
                };
                let mut length = [0u8; 8];
                length.copy_from_slice(extended);
                (u64::from_be_bytes(length), 10)
            }
            short => (u64::from(short), 2),
        };
        if opcode >= OPCODE_CLOSE && (!fin || length > MAX_CONTROL_PAYLOAD as u64) {
            return Err(SocketError::Protocol("fragmented or long control frame"));
        }
        let Some(mask) = bytes.get(at..at + 4) else {
            return Ok(None);
        };
        Ok(Some(Self {
            fin,
            opcode,
            mask: [mask[0], mask[1], mask[2], mask[3]],
            length,
            size: at + 4,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            0..=125 => frame.push(0x80 | payload.len() as u8),
            126..=0xFFFF => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            }
            _ => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(payload.len() as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        frame
    }

    fn socket(bytes: Vec<u8>, max_message: usize) -> ServerSocket<tokio::io::DuplexStream> {
        let (stream, _other) = tokio::io::duplex(64);
        ServerSocket::new(stream, bytes, max_message)
    }

    #[test]
    fn the_rfc_6455_example_key_gets_its_accept_value() {
        // RFC 6455 § 1.3.
        let request = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
            Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
            Sec-WebSocket-Version: 13\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n";
        let (accept, forwarded) = parse_upgrade(request).unwrap();
        assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(forwarded, vec![b"203.0.113.7".to_vec()]);
        let not_websocket = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(parse_upgrade(not_websocket).is_err());
    }

    #[test]
    fn frames_split_anywhere_reassemble_and_the_read_buffer_is_freed_between_them() {
        let mut bytes = client_frame(false, OPCODE_BINARY, b"hello ");
        bytes.extend(client_frame(true, OPCODE_PING, b"p"));
        bytes.extend(client_frame(true, OPCODE_CONTINUATION, &[7u8; 300]));
        let mut expected = b"hello ".to_vec();
        expected.extend([7u8; 300]);
        for split in 1..bytes.len() {
            let mut socket = socket(bytes[..split].to_vec(), 1 << 20);
            let mut outbox = Outbox::default();
            let mut seen = Vec::new();
            while let Some(incoming) = socket.parse(&mut outbox).unwrap() {
                seen.push(incoming);
            }
            socket.input.extend_from_slice(&bytes[split..]);
            while let Some(incoming) = socket.parse(&mut outbox).unwrap() {
                seen.push(incoming);
            }
            assert_eq!(
                seen,
                vec![Incoming::Control, Incoming::Binary(expected.clone())]
            );
            assert_eq!(socket.input.capacity(), 0, "no read buffer while idle");
            assert_eq!(outbox.frames(), 1, "the ping was answered");
            assert_eq!(outbox.frames[0], vec![0x80 | OPCODE_PONG, 1, b'p']);
        }
    }

    #[test]
    fn an_oversized_message_is_refused_on_its_header_and_protocol_errors_are_errors() {
        let mut outbox = Outbox::default();
        // A single frame over the limit: refused before its payload arrives.
        let frame = client_frame(true, OPCODE_BINARY, &[0u8; 2000]);
        let mut refused = socket(frame[..8].to_vec(), 1000);
        assert_eq!(
            refused.parse(&mut outbox).unwrap(),
            Some(Incoming::TooLarge)
        );
        // Fragments adding up to more than the limit.
        let mut fragments = client_frame(false, OPCODE_BINARY, &[0u8; 600]);
        fragments.extend(client_frame(true, OPCODE_CONTINUATION, &[0u8; 600]));
        let mut refused = socket(fragments, 1000);
        assert_eq!(
            refused.parse(&mut outbox).unwrap(),
            Some(Incoming::TooLarge)
        );
        // A text message is reported as such; an unmasked frame is a protocol error.
        let mut text = socket(client_frame(true, OPCODE_TEXT, b"hi"), 1000);
        assert_eq!(text.parse(&mut outbox).unwrap(), Some(Incoming::Text));
        let mut unmasked = socket(vec![0x82, 0x01, 0x00], 1000);
        assert!(matches!(
            unmasked.parse(&mut outbox),
            Err(SocketError::Protocol(_))
        ));
    }

    #[test]
    fn server_frames_use_the_shortest_length_and_the_outbox_frees_its_memory() {
        let mut outbox = Outbox::default();
        outbox.push_binary(&[1u8; 125]);
        outbox.push_binary(&[2u8; 126]);
        outbox.push_binary(&[3u8; 70_000]);
        outbox.push_close(CloseCode::Size, "frame too large");
        assert_eq!(&outbox.frames[0][..2], &[0x82, 125]);
        assert_eq!(&outbox.frames[1][..4], &[0x82, 126, 0, 126]);
        assert_eq!(
            &outbox.frames[2][..10],
            &[0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]
        );
        assert_eq!(&outbox.frames[3][..4], &[0x88, 17, 0x03, 0xF1]);
        let total = outbox.bytes();
        outbox.advance(total - 3);
        assert_eq!(outbox.frames(), 1);
        outbox.advance(3);
        assert!(outbox.is_empty());
        assert_eq!(outbox.bytes(), 0);
        assert_eq!(outbox.frames.capacity(), 0);
    }
}
