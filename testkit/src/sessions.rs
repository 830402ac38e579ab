//! Small sessions every backend's tests and benchmarks share (hidden from the docs): one copy
//! of each, so a test on the polling loop and the same test on smol exercise the same protocol.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use concurrence_core::{Next, Session, SessionError, StreamReader, StreamWriter, Timestamp};

/// Echoes each line back as it came (LF or CRLF kept); a `QUIT` line closes.
#[derive(Debug, Default, Clone, Copy)]
pub struct LineEcho;

impl Session for LineEcho {
    fn handle_input(
        &mut self,
        _: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        while !writer.is_backpressured() {
            match reader.read_line(true)? {
                Some(b"QUIT\r\n" | b"QUIT\n") => return Ok(Next::Close),
                Some(line) => writer.write_bytes(line)?,
                None => break,
            }
        }
        Ok(Next::Continue)
    }
}

/// Echoes raw bytes, honouring back-pressure, and records the most bytes it ever left pending
/// (for tests that memory stays flat).
#[derive(Debug, Default, Clone)]
pub struct ByteEcho {
    /// The largest `pending_len()` seen after any call.
    pub max_pending: Arc<AtomicUsize>,
}

impl Session for ByteEcho {
    fn handle_input(
        &mut self,
        _: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        while !writer.is_backpressured() && !reader.is_empty() {
            let chunk = reader.read_up_to(16 * 1024);
            writer.write_bytes(chunk)?;
        }
        self.max_pending
            .fetch_max(writer.pending_len(), Ordering::SeqCst);
        Ok(Next::Continue)
    }
}

/// The byte at offset `i` of every test stream.
#[must_use]
pub fn pattern(i: usize) -> u8 {
    u8::try_from(i % 251).unwrap_or(0)
}

/// Streams `total` bytes of [`pattern`] as fast as the peer reads, then closes.
#[derive(Debug, Default, Clone)]
pub struct Producer {
    /// Bytes to send in all.
    pub total: usize,
    /// Bytes written so far.
    pub sent: usize,
    /// The largest `pending_len()` seen after any call.
    pub max_pending: Arc<AtomicUsize>,
}

impl Producer {
    fn produce(&mut self, writer: &mut StreamWriter) -> Result<Next, SessionError> {
        let mut chunk = [0u8; 16 * 1024];
        while self.sent < self.total && !writer.is_backpressured() {
            let n = chunk.len().min(self.total - self.sent);
            for (k, b) in chunk[..n].iter_mut().enumerate() {
                *b = pattern(self.sent + k);
            }
            writer.write_bytes(&chunk[..n])?;
            self.sent += n;
        }
        self.max_pending
            .fetch_max(writer.pending_len(), Ordering::SeqCst);
        Ok(if self.sent == self.total {
            Next::Close
        } else {
            Next::Continue
        })
    }
}

impl Session for Producer {
    fn handle_start(
        &mut self,
        _: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        self.produce(writer)
    }

    fn handle_input(
        &mut self,
        _: Timestamp,
        _: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        self.produce(writer)
    }
}

/// Wraps a session and reports how its connection ended on a channel: tests wait for that
/// event instead of sleeping.
#[derive(Debug)]
pub struct ReportEnd<S> {
    /// The wrapped session.
    pub inner: S,
    /// Where the end is reported.
    pub ends: std::sync::mpsc::Sender<concurrence_core::EndKind>,
}

impl<S: Session> Session for ReportEnd<S> {
    fn handle_start(&mut self, now: Timestamp, w: &mut StreamWriter) -> Result<Next, SessionError> {
        self.inner.handle_start(now, w)
    }
    fn handle_input(
        &mut self,
        now: Timestamp,
        r: &mut StreamReader,
        w: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        self.inner.handle_input(now, r, w)
    }
    fn handle_timeout(
        &mut self,
        now: Timestamp,
        w: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        self.inner.handle_timeout(now, w)
    }
    fn handle_eof(&mut self, now: Timestamp, w: &mut StreamWriter) -> Result<Next, SessionError> {
        self.inner.handle_eof(now, w)
    }
    fn handle_end(&mut self, now: Timestamp, reason: &concurrence_core::EndReason) {
        self.inner.handle_end(now, reason);
        let _ = self.ends.send(reason.kind());
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        self.inner.poll_timeout()
    }
}

/// Complete lines followed by the partial line `PARTIAL` (no newline), `total` bytes in all,
/// and what a line echo owes for them: the complete lines. The data-loss case of a session
/// that fails on the partial last frame at end of stream (`total` at least 16).
#[must_use]
pub fn lines_with_a_partial_tail(total: usize) -> (Vec<u8>, Vec<u8>) {
    const TAIL: &[u8] = b"PARTIAL";
    let body = total.saturating_sub(TAIL.len()).max(2);
    let mut lines = Vec::with_capacity(body);
    let mut n = 0usize;
    while lines.len() < body {
        let left = body - lines.len();
        let line = format!("line{n:05}");
        if left <= line.len() + 1 + 2 {
            // The last line takes what is left exactly.
            lines.extend(std::iter::repeat_n(b'z', left - 1));
            lines.push(b'\n');
        } else {
            lines.extend_from_slice(line.as_bytes());
            lines.push(b'\n');
        }
        n += 1;
    }
    let mut input = lines.clone();
    input.extend_from_slice(TAIL);
    (input, lines)
}

/// A line echo that panics on the line `boom`: a bug in user code, which a backend must
/// contain to this one connection.
#[derive(Debug, Default, Clone, Copy)]
pub struct PanicsOnBoom;

impl Session for PanicsOnBoom {
    fn handle_input(
        &mut self,
        now: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        if reader.buffered().starts_with(b"boom") {
            panic!("boom, as the test asked");
        }
        LineEcho.handle_input(now, reader, writer)
    }
}

/// A line echo whose deadline is always in the past and never moves: a driver that fires a
/// due deadline in a loop without serving anything else would spin on it forever.
#[derive(Debug, Default, Clone, Copy)]
pub struct StaleDeadline;

impl Session for StaleDeadline {
    fn handle_input(
        &mut self,
        now: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        LineEcho.handle_input(now, reader, writer)
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        Some(Timestamp::ZERO)
    }
}

/// Writes `input` to a connected stream, half-closes it with `half_close` (a socket's
/// `shutdown(Write)`), and returns everything read until the peer's end of stream: one
/// request/response exchange as a client that sends everything first sees it.
///
/// # Errors
/// What the stream or `half_close` reported.
pub fn send_all_then_read_to_end<S: std::io::Read + std::io::Write>(
    stream: &mut S,
    input: &[u8],
    half_close: impl FnOnce(&mut S) -> std::io::Result<()>,
) -> std::io::Result<Vec<u8>> {
    stream.write_all(input)?;
    half_close(stream)?;
    let mut got = Vec::new();
    stream.read_to_end(&mut got)?;
    Ok(got)
}

/// A client that sends what the application puts in its mailbox (application events) and
/// records what it receives, telling the test how much after every input; it closes once it
/// has received `expect` bytes.
#[derive(Debug)]
pub struct Relay {
    mailbox: concurrence_core::Mailbox<Vec<u8>>,
    /// Everything received so far.
    pub received: Vec<u8>,
    expect: usize,
    progress: std::sync::mpsc::Sender<usize>,
}

impl Relay {
    /// A relay that closes after `expect` bytes, the sender the application uses, and the
    /// receiver of its progress (bytes received so far, after each input).
    #[must_use]
    pub fn new(
        expect: usize,
    ) -> (
        Relay,
        concurrence_core::MailboxSender<Vec<u8>>,
        std::sync::mpsc::Receiver<usize>,
    ) {
        let mailbox = concurrence_core::Mailbox::new(64);
        let sender = mailbox.sender();
        let (progress, report) = std::sync::mpsc::channel();
        (
            Relay {
                mailbox,
                received: Vec::new(),
                expect,
                progress,
            },
            sender,
            report,
        )
    }
}

impl Session for Relay {
    fn handle_input(
        &mut self,
        _: Timestamp,
        reader: &mut StreamReader,
        _: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        self.received.extend_from_slice(reader.read_available());
        let _ = self.progress.send(self.received.len());
        if self.received.len() >= self.expect {
            return Ok(Next::Close);
        }
        Ok(Next::Continue)
    }

    fn handle_event(
        &mut self,
        _: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        while let Some(message) = self.mailbox.try_recv() {
            writer.write_bytes(&message)?;
        }
        Ok(Next::Continue)
    }

    fn notify_handle(&self) -> Option<&concurrence_core::Notify> {
        Some(self.mailbox.notify_handle())
    }
}
