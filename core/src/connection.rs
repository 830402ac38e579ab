//! `Connection`: one session with its reader and writer, implementing the `Session` driving
//! contract once, so that every backend only moves bytes and waits.
//!
//! Input goes in through `handle_*` (bytes received, bytes sent, peer closed, time passed);
//! output comes out through `poll_*` (bytes to send, next deadline) and `wants_*`.

use std::time::Duration;

use crate::{
    Next, ReaderConfig, Session, SessionError, StreamReader, StreamWriter, Timestamp, WriterConfig,
};

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Created; `handle_start` not yet called.
    New,
    /// Running.
    Open,
    /// The session said `Close`: flushing what is pending, then closed.
    Closing,
    /// Done. Nothing more to send or receive.
    Closed,
}

/// End-of-stream bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eof {
    NotSeen,
    /// The peer closed while the writer was back-pressured: deliver once it drains.
    Pending,
    Delivered,
}

/// A session plus its reader and writer, driven through the sans-IO contract.
///
/// # Driving contract (for backend authors)
///
/// ```text
///   backend                                  Connection                     Session
///   ───────                                  ──────────                     ───────
///   connected ───────── handle_start(now) ──────────────────────────────▶ handle_start
///   readable  ─ recv_buffer() ◀─ read(fd) ─▶ handle_received(now, n) ───▶ handle_input
///   read == 0 ───────── handle_peer_closed(now) ───────────────────────▶ handle_input, handle_eof
///   writable  ─ poll_transmit() ─ write(fd) ─▶ handle_sent(now, n) ─────▶ (handle_input after
///                                                                          back-pressure)
///   timer     ───────── handle_timeout(now) ───────────────────────────▶ handle_timeout
///   after every call: poll_transmit(), poll_timeout(), wants_read(), is_closed()
/// ```
///
/// - Receive only while [`wants_read`](Self::wants_read) (that is the back-pressure: it is
///   false while the writer is above its high-water mark or the reader is full).
///   [`recv_buffer`](Self::recv_buffer) is empty exactly when `wants_read` is false.
/// - Send from [`poll_transmit`](Self::poll_transmit) while it is non-empty and the socket
///   takes bytes, reporting each write with [`handle_sent`](Self::handle_sent).
/// - Re-read [`poll_timeout`](Self::poll_timeout) after every call and wake at that time; call
///   [`handle_timeout`](Self::handle_timeout) then (an early or spurious call does nothing).
/// - When [`is_closed`](Self::is_closed), close the socket. A session error is available
///   from [`take_error`](Self::take_error) for logging. A connection whose peer has closed,
///   with nothing left to send and no session deadline, closes by itself: nothing could ever
///   happen on it again.
/// - To bound the work per connection per turn (no starvation), a backend may receive and
///   hand over a limited number of bytes per turn; the connection does not care.
#[derive(Debug)]
pub struct Connection<S> {
    session: S,
    reader: StreamReader,
    writer: StreamWriter,
    phase: Phase,
    eof: Eof,
    error: Option<SessionError>,
    now: Timestamp,
    /// Close after this long without a byte received or sent (`None`: never).
    idle_timeout: Option<Duration>,
    last_active: Timestamp,
    idled_out: bool,
}

impl<S: Session> Connection<S> {
    /// A connection for `session` with the given reader and writer bounds.
    pub fn new(session: S, reader: ReaderConfig, writer: WriterConfig) -> Self {
        Connection {
            session,
            reader: StreamReader::new(reader),
            writer: StreamWriter::new(writer),
            phase: Phase::New,
            eof: Eof::NotSeen,
            error: None,
            now: Timestamp::ZERO,
            idle_timeout: None,
            last_active: Timestamp::ZERO,
            idled_out: false,
        }
    }

    /// Closes the connection once `idle` passes without a byte received or sent (a peer that
    /// stops reading while output is pending included). `None`, the default, never does. The
    /// idle deadline is part of [`poll_timeout`](Self::poll_timeout), so drivers need no timer
    /// of their own for it.
    pub fn set_idle_timeout(&mut self, idle: Option<Duration>) {
        self.idle_timeout = idle;
    }

    /// True if the idle timeout closed the connection (for logging).
    #[must_use]
    pub fn closed_by_idle_timeout(&self) -> bool {
        self.idled_out
    }

    /// A connection with the default bounds.
    pub fn with_defaults(session: S) -> Self {
        Connection::new(session, ReaderConfig::default(), WriterConfig::default())
    }

    /// The connection is established: runs the session's `handle_start` (once; later calls do
    /// nothing).
    pub fn handle_start(&mut self, now: Timestamp) {
        if self.phase != Phase::New {
            return;
        }
        let now = self.tick(now);
        self.last_active = now;
        self.phase = Phase::Open;
        let verdict = self.session.handle_start(now, &mut self.writer);
        self.apply(verdict);
    }

    /// Room to receive into: the reader's spare space, or empty when no input is wanted now.
    pub fn recv_buffer(&mut self) -> &mut [u8] {
        if self.wants_read() {
            self.reader.spare()
        } else {
            &mut []
        }
    }

    /// `n` bytes were received into [`recv_buffer`](Self::recv_buffer): hand them to the
    /// session. `n == 0` is not end of stream (use [`handle_peer_closed`](Self::handle_peer_closed)).
    pub fn handle_received(&mut self, now: Timestamp, n: usize) {
        if !self.wants_read() || n == 0 {
            return;
        }
        self.last_active = self.tick(now);
        self.reader.filled(n);
        self.run_input(now);
    }

    /// Copies in as much of `data` as the connection wants now, hands it to the session, and
    /// returns how much was taken. For drivers without a receive buffer of their own
    /// (simulator, fuzzer, tests).
    pub fn feed(&mut self, now: Timestamp, data: &[u8]) -> usize {
        let mut taken = 0;
        while taken < data.len() {
            let room = self.recv_buffer();
            let n = room.len().min(data.len() - taken);
            if n == 0 {
                break;
            }
            room[..n].copy_from_slice(&data[taken..taken + n]);
            self.handle_received(now, n);
            taken += n;
        }
        taken
    }

    /// The peer closed its sending side (a read returned 0).
    pub fn handle_peer_closed(&mut self, now: Timestamp) {
        if self.eof != Eof::NotSeen || self.phase == Phase::Closed {
            return;
        }
        self.reader.close();
        self.eof = Eof::Pending;
        if self.phase == Phase::Open && !self.writer.is_backpressured() {
            self.deliver_eof(now);
        }
    }

    /// `n` bytes of [`poll_transmit`](Self::poll_transmit) were sent.
    pub fn handle_sent(&mut self, now: Timestamp, n: usize) {
        let was_backpressured = self.writer.is_backpressured();
        if n > 0 {
            self.last_active = self.tick(now);
        }
        self.writer.consume(n);
        if self.phase == Phase::Closing && !self.writer.has_pending() {
            self.phase = Phase::Closed;
            return;
        }
        if self.phase == Phase::Open && was_backpressured && !self.writer.is_backpressured() {
            // Room to write again: the session may have input waiting, or more to produce.
            if self.eof != Eof::Pending {
                self.run_input(now);
            }
            if self.eof == Eof::Pending && self.phase == Phase::Open {
                self.deliver_eof(now);
            }
        }
        self.settle();
    }

    /// Time passed: closes the connection if its idle timeout passed, else runs the
    /// session's `handle_timeout` if its deadline is due.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let now = self.tick(now);
        if self.idle_deadline().is_some_and(|d| d <= now) {
            self.idled_out = true;
            self.phase = Phase::Closed;
            return;
        }
        if self.phase != Phase::Open {
            return;
        }
        match self.session.poll_timeout() {
            Some(deadline) if deadline <= now => {
                let verdict = self.session.handle_timeout(now, &mut self.writer);
                self.apply(verdict);
            }
            _ => {}
        }
    }

    /// The bytes to send now (empty when none, or once closed).
    #[must_use]
    pub fn poll_transmit(&self) -> &[u8] {
        if self.phase == Phase::Closed {
            &[]
        } else {
            self.writer.pending()
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called (the session's
    /// deadline or the idle deadline, whichever is first); `None` for never.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let session = if self.phase == Phase::Open {
            self.session.poll_timeout()
        } else {
            None
        };
        match (session, self.idle_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The idle deadline, while the connection is running or flushing.
    fn idle_deadline(&self) -> Option<Timestamp> {
        match self.phase {
            Phase::Open | Phase::Closing => self.idle_timeout.map(|d| self.last_active + d),
            Phase::New | Phase::Closed => None,
        }
    }

    /// True when the backend should receive for this connection now.
    #[must_use]
    pub fn wants_read(&self) -> bool {
        self.phase == Phase::Open
            && self.eof == Eof::NotSeen
            && !self.writer.is_backpressured()
            && self.reader.wants_input()
    }

    /// True when bytes wait to be sent.
    #[must_use]
    pub fn wants_write(&self) -> bool {
        !self.poll_transmit().is_empty()
    }

    /// True once the connection is finished: close the socket.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// True once the session asked to close (it may still be flushing).
    #[must_use]
    pub fn is_closing(&self) -> bool {
        matches!(self.phase, Phase::Closing | Phase::Closed)
    }

    /// The error that closed the connection, if a session error did (taken once).
    pub fn take_error(&mut self) -> Option<SessionError> {
        self.error.take()
    }

    /// Closes from the driver's side (shutdown, idle timeout, reset): nothing more is sent or
    /// delivered.
    pub fn abort(&mut self) {
        self.phase = Phase::Closed;
    }

    /// The session.
    pub fn session(&self) -> &S {
        &self.session
    }

    /// The session, mutably.
    pub fn session_mut(&mut self) -> &mut S {
        &mut self.session
    }

    /// The session, giving up the connection.
    pub fn into_session(self) -> S {
        self.session
    }

    /// The reader (to inspect what is buffered).
    pub fn reader(&self) -> &StreamReader {
        &self.reader
    }

    /// The writer (to inspect what is pending).
    pub fn writer(&self) -> &StreamWriter {
        &self.writer
    }

    fn tick(&mut self, now: Timestamp) -> Timestamp {
        // Time that goes backwards is ignored.
        self.now = self.now.max(now);
        self.now
    }

    fn run_input(&mut self, now: Timestamp) {
        let now = self.tick(now);
        if self.phase != Phase::Open {
            return;
        }
        if self.writer.is_backpressured() {
            // Called again once the writer drains (see handle_sent).
            return;
        }
        let verdict = self
            .session
            .handle_input(now, &mut self.reader, &mut self.writer);
        self.apply(verdict);
    }

    fn deliver_eof(&mut self, now: Timestamp) {
        let now = self.tick(now);
        self.eof = Eof::Delivered;
        let verdict = self
            .session
            .handle_input(now, &mut self.reader, &mut self.writer);
        // Not `apply`: the connection must not settle before `handle_eof` has had its say.
        self.apply_verdict(verdict);
        if self.phase == Phase::Open {
            let verdict = self.session.handle_eof(now, &mut self.writer);
            self.apply(verdict);
        }
    }

    /// A half-closed connection (end of stream delivered) with nothing to send and no
    /// deadline can never make progress again: it is finished.
    fn settle(&mut self) {
        if self.phase == Phase::Open
            && self.eof == Eof::Delivered
            && !self.writer.has_pending()
            && self.session.poll_timeout().is_none()
        {
            self.phase = Phase::Closed;
        }
    }

    fn apply(&mut self, verdict: Result<Next, SessionError>) {
        self.apply_verdict(verdict);
        self.settle();
    }

    fn apply_verdict(&mut self, verdict: Result<Next, SessionError>) {
        match verdict {
            Ok(Next::Continue) => {}
            Ok(Next::Close) => {
                self.phase = if self.writer.has_pending() {
                    Phase::Closing
                } else {
                    Phase::Closed
                };
            }
            Err(error) => {
                self.error = Some(error);
                self.phase = Phase::Closed;
            }
        }
    }
}
