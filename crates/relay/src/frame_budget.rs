//! A relay-wide memory budget for partly received WebSocket messages.
//!
//! tungstenite reserves a frame's whole declared length as soon as it has read the frame's
//! header, and keeps the fragments of a message until its last one arrives. A client that sends
//! the head of a large message and then stalls therefore holds up to `max_frame_bytes` of relay
//! memory; at `max_connections` that adds up to gigabytes. [`BudgetedStream`] sits between the
//! socket (or TLS) and tungstenite, follows the client's WebSocket frame headers as the bytes pass
//! (it never changes them), and charges every message's declared size beyond a small free
//! allowance (`read_buffer_bytes`) to one shared [`FrameBudget`]. When the budget cannot cover a
//! new message, the read fails with [`budget_exhausted`] and the connection closes with code 1013
//! (try again later). Messages within the allowance (1 KiB by default: every request but a SEND
//! of a larger envelope and BLOB-PUT) never need budget; a larger one holds its excess only while
//! it is being received, so ordinary traffic charges the budget for moments at a time.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes of partly received messages the relay holds for all connections together.
pub(crate) struct FrameBudget {
    limit: usize,
    used: AtomicUsize,
}

impl FrameBudget {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// Takes `bytes` if they fit.
    fn try_take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Bytes currently charged.
    #[cfg(test)]
    fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// The error a read fails with when the budget cannot hold a new partial message.
#[derive(Debug, thiserror::Error)]
#[error("relay-wide budget for partly received messages exhausted")]
pub(crate) struct BudgetExhausted;

/// The I/O error carrying [`BudgetExhausted`].
fn budget_exhausted() -> io::Error {
    io::Error::other(BudgetExhausted)
}

/// Whether an I/O error is the budget refusal.
pub(crate) fn is_budget_exhausted(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<BudgetExhausted>())
}

/// Where the scanner is in the client's byte stream.
enum Scan {
    /// In the HTTP upgrade request; counts the matched bytes of `\r\n\r\n`.
    Head(u8),
    /// Collecting a frame header (at most 14 bytes).
    Header { bytes: [u8; 14], have: usize },
    /// Inside a frame's payload; `last` marks the final frame of a data message.
    Payload { remaining: u64, last: bool },
}

/// A stream that charges partly received WebSocket messages to a [`FrameBudget`].
pub(crate) struct BudgetedStream<S> {
    inner: S,
    budget: Arc<FrameBudget>,
    /// Message bytes a connection may hold without charge.
    allowance: u64,
    /// Larger messages are left to tungstenite, which refuses them (close 1009).
    max_message: u64,
    scan: Scan,
    /// Declared payload bytes of the data message being received.
    message: u64,
    /// Bytes charged to the budget for it.
    held: usize,
    /// The budget refused a message; the connection is being closed.
    refused: bool,
}

impl<S> BudgetedStream<S> {
    pub(crate) fn new(
        inner: S,
        budget: Arc<FrameBudget>,
        allowance: usize,
        max_message: usize,
    ) -> Self {
        Self {
            inner,
            budget,
            allowance: allowance as u64,
            max_message: max_message as u64,
            scan: Scan::Head(0),
            message: 0,
            held: 0,
            refused: false,
        }
    }

    fn release(&mut self) {
        if self.held > 0 {
            self.budget.give_back(self.held);
            self.held = 0;
        }
    }

    /// A data frame of `length` payload bytes begins; `Err` if the budget cannot hold it.
    fn charge(&mut self, length: u64) -> Result<(), BudgetExhausted> {
        self.message = self.message.saturating_add(length);
        if self.message > self.max_message {
            return Ok(());
        }
        let needed =
            usize::try_from(self.message.saturating_sub(self.allowance)).unwrap_or(usize::MAX);
        if needed > self.held {
            if !self.budget.try_take(needed - self.held) {
                self.refused = true;
                return Err(BudgetExhausted);
            }
            self.held = needed;
        }
        Ok(())
    }

    /// Follows the frame structure through `bytes` (just read from the client).
    fn observe(&mut self, mut bytes: &[u8]) -> Result<(), BudgetExhausted> {
        if self.refused {
            return Err(BudgetExhausted);
        }
        while !bytes.is_empty() {
            match &mut self.scan {
                Scan::Head(matched) => {
                    let byte = bytes[0];
                    bytes = &bytes[1..];
                    *matched = match (*matched, byte) {
                        (0 | 2, b'\r') => *matched + 1,
                        (1 | 3, b'\n') => *matched + 1,
                        (_, b'\r') => 1,
                        _ => 0,
                    };
                    if *matched == 4 {
                        self.scan = Scan::Header {
                            bytes: [0; 14],
                            have: 0,
                        };
                    }
                }
                Scan::Header {
                    bytes: header,
                    have,
                } => {
                    header[*have] = bytes[0];
                    *have += 1;
                    bytes = &bytes[1..];
                    if *have < 2 {
                        continue;
                    }
                    let length7 = header[1] & 0x7f;
                    let extended = match length7 {
                        126 => 2,
                        127 => 8,
                        _ => 0,
                    };
                    let masked = if header[1] & 0x80 != 0 { 4 } else { 0 };
                    if *have < 2 + extended + masked {
                        continue;
                    }
                    let length = match extended {
                        2 => u64::from(u16::from_be_bytes([header[2], header[3]])),
                        8 => u64::from_be_bytes([
                            header[2], header[3], header[4], header[5], header[6], header[7],
                            header[8], header[9],
                        ]),
                        _ => u64::from(length7),
                    };
                    let fin = header[0] & 0x80 != 0;
                    let opcode = header[0] & 0x0f;
                    let data = opcode < 8;
                    if data {
                        self.charge(length)?;
                    }
                    self.scan = Scan::Payload {
                        remaining: length,
                        last: data && fin,
                    };
                    self.finish_frame_if_empty();
                }
                Scan::Payload { remaining, .. } => {
                    let take = usize::try_from(*remaining)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    *remaining -= take as u64;
                    bytes = &bytes[take..];
                    self.finish_frame_if_empty();
                }
            }
        }
        Ok(())
    }

    fn finish_frame_if_empty(&mut self) {
        if let Scan::Payload { remaining: 0, last } = self.scan {
            if last {
                self.message = 0;
                self.release();
            }
            self.scan = Scan::Header {
                bytes: [0; 14],
                have: 0,
            };
        }
    }
}

impl<S> Drop for BudgetedStream<S> {
    fn drop(&mut self) {
        self.release();
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for BudgetedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let observed = this.observe(&buf.filled()[before..]);
                match observed {
                    Ok(()) => Poll::Ready(Ok(())),
                    Err(BudgetExhausted) => {
                        // The bytes are withheld: tungstenite never reserves for this message.
                        buf.set_filled(before);
                        Poll::Ready(Err(budget_exhausted()))
                    }
                }
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for BudgetedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(fin: bool, opcode: u8, length: u64) -> Vec<u8> {
        let mut bytes = vec![if fin { 0x80 } else { 0 } | opcode];
        match length {
            0..=125 => bytes.push(0x80 | length as u8),
            126..=65535 => {
                bytes.push(0x80 | 126);
                bytes.extend((length as u16).to_be_bytes());
            }
            _ => {
                bytes.push(0x80 | 127);
                bytes.extend(length.to_be_bytes());
            }
        }
        bytes.extend([1, 2, 3, 4]);
        bytes
    }

    #[test]
    fn charges_large_messages_beyond_the_allowance_until_their_last_byte() {
        let budget = Arc::new(FrameBudget::new(100_000));
        let mut stream = BudgetedStream::new((), budget.clone(), 4096, 1 << 20);
        stream
            .observe(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        // A small message: free.
        stream.observe(&header(true, 2, 100)).unwrap();
        stream.observe(&[0; 100]).unwrap();
        assert_eq!(budget.used(), 0);
        // A fragmented large message, header split across reads.
        let first = header(false, 2, 30_000);
        stream.observe(&first[..3]).unwrap();
        stream.observe(&first[3..]).unwrap();
        assert_eq!(budget.used(), 30_000 - 4096);
        stream.observe(&[0; 30_000]).unwrap();
        stream.observe(&header(true, 0x9, 4)).unwrap(); // a ping between fragments
        stream.observe(&[0; 4]).unwrap();
        stream.observe(&header(true, 0, 20_000)).unwrap();
        assert_eq!(budget.used(), 50_000 - 4096);
        stream.observe(&[0; 19_999]).unwrap();
        assert_eq!(budget.used(), 50_000 - 4096);
        stream.observe(&[0; 1]).unwrap();
        assert_eq!(budget.used(), 0, "released with the message's last byte");
        // Over the budget: refused; a dropped stream gives back what it held.
        let mut other = BudgetedStream::new((), budget.clone(), 4096, 1 << 20);
        other.observe(b"\r\n\r\n").unwrap();
        stream.observe(&header(true, 2, 90_000)).unwrap();
        assert!(other.observe(&header(true, 2, 60_000)).is_err());
        assert!(other.observe(&[0; 10]).is_err(), "a refusal sticks");
        drop(stream);
        drop(other);
        assert_eq!(budget.used(), 0);
        let mut third = BudgetedStream::new((), budget.clone(), 4096, 1 << 20);
        third.observe(b"\r\n\r\n").unwrap();
        third.observe(&header(true, 2, 60_000)).unwrap();
        assert_eq!(budget.used(), 60_000 - 4096);
        // Larger than a message may be: left to tungstenite (close 1009), never charged.
        let mut huge = BudgetedStream::new((), budget.clone(), 4096, 1 << 20);
        huge.observe(b"\r\n\r\n").unwrap();
        huge.observe(&header(true, 2, 1 << 40)).unwrap();
        assert_eq!(budget.used(), 60_000 - 4096);
    }
}
