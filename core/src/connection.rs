//! `Connection`: one session with its reader and writer, implementing the `Session` driving
//! contract and the whole connection lifecycle once (connect, start, input and output with
//! back-pressure, half-close both ways, lingering close, one end reason), so that every
//! backend only moves bytes and waits.

use std::time::Duration;

use crate::{
    BufferPool, ConnectionConfig, EndKind, EndReason, Next, ReaderConfig, Session, SessionError,
    StreamReader, StreamWriter, Timestamp, WriterConfig,
};

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Created; neither `handle_connecting` nor `handle_start` called yet.
    New,
    /// A client connect is under way.
    Connecting,
    /// The session runs.
    Open,
    /// The session is done (`Close` or an error): sending what is pending, shutting down the
    /// write side, discarding input until the peer's end of stream or the linger deadline.
    Ending,
    /// Finished; the end reason was told.
    Closed,
}

/// The peer's end of stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eof {
    NotSeen,
    /// Seen; the session has not yet had a `handle_input` without back-pressure after it.
    Pending,
    /// `handle_eof` was called (or the session no longer runs).
    Delivered,
}

/// Our write side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteSide {
    Open,
    /// Shut it down once nothing is pending (`poll_shutdown_write`).
    ShutdownWanted,
    /// The driver shut it down.
    Shut,
}

/// A session plus its reader and writer, driven through the sans-IO contract.
///
/// # Driving contract (for backend authors)
///
/// ```text
///   backend                                   Connection                  Session
///   ───────                                   ──────────                  ───────
///   (client) connect started ─ handle_connecting(now)
///   connected / accepted ───── handle_start(now) ───────────────────────▶ handle_start
///   readable ─ recv_buffer() ◀ read(fd) ▶ handle_received(now, n) ─────▶ handle_input
///   read == 0 ──────────────── handle_peer_closed(now) ─────────────────▶ handle_input, handle_eof
///   writable ─ poll_transmit() ─ send(fd) ─▶ handle_sent(now, n) ───────▶ (handle_input after
///                                                                          back-pressure)
///   poll_shutdown_write() ─▶ shutdown(fd, Write)
///   timer ──────────────────── handle_timeout(now) ─────────────────────▶ handle_timeout
///   socket error ───────────── handle_io_error(now, error)
///   driver stops it ────────── handle_shutdown(now)
///   finished (is_closed) ◀──────────────────────────────────────────────── handle_end(reason)
/// ```
///
/// **The drain rule.** A driver does the following, in this order, on every turn (after it
/// was woken, and right after `handle_start`):
///
/// 1. **Receive** while [`wants_read`](Self::wants_read): read into
///    [`recv_buffer`](Self::recv_buffer) and report [`handle_received`](Self::handle_received);
///    a read of 0 is [`handle_peer_closed`](Self::handle_peer_closed). A driver may stop
///    early to bound the work per connection per turn (then it must come back to it soon,
///    as the socket is still readable).
/// 2. **Send** while [`poll_transmit`](Self::poll_transmit) is non-empty and the socket takes
///    bytes, reporting each write with [`handle_sent`](Self::handle_sent).
/// 3. **Shut down** the write side when [`poll_shutdown_write`](Self::poll_shutdown_write)
///    returns true (it does so once).
/// 4. **Finish**: when [`is_closed`](Self::is_closed), close the socket (with a reset, i.e.
///    `SO_LINGER` 0, when [`wants_reset`](Self::wants_reset)); [`end_reason`](Self::end_reason)
///    says why, for logging. The session has been told already.
/// 5. **Wait** for readability if `wants_read`, writability if
///    [`wants_write`](Self::wants_write), and until [`poll_timeout`](Self::poll_timeout),
///    re-read now (a deadline kept from before may be stale: waiting on one in the past
///    busy-loops). At that time call [`handle_timeout`](Self::handle_timeout) (an early or
///    spurious call does nothing), then start the turn again.
///
/// Any socket error is reported with [`handle_io_error`](Self::handle_io_error) and a driver
/// that stops a connection for its own reasons calls [`handle_shutdown`](Self::handle_shutdown).
/// The connection itself decides that nothing can happen any more (both directions done,
/// nothing pending, no deadline) and finishes: a driver never needs to guess.
///
/// Every `handle_*` call may finish the connection; calls after that do nothing.
#[derive(Debug)]
pub struct Connection<S> {
    session: S,
    reader: StreamReader,
    writer: StreamWriter,
    config: ConnectionConfig,
    phase: Phase,
    eof: Eof,
    write_side: WriteSide,
    /// The session half-closed (or closed) before the peer's end of stream.
    closed_first: bool,
    /// While ending: the reason to report once done. Once closed: the reason told.
    reason: Option<EndReason>,
    now: Timestamp,
    last_active: Timestamp,
    /// While connecting: when the connect times out.
    connect_deadline: Option<Timestamp>,
    /// While ending: when the connection is closed whatever is left.
    linger_deadline: Option<Timestamp>,
    /// Bytes the session wrote that were dropped unsent when the connection finished.
    unsent: usize,
    /// Since when unconsumed input has waited for the session to complete a frame.
    frame_started: Option<Timestamp>,
    /// `reader.consumed_bytes()` when last looked at.
    consumed_seen: u64,
}

impl<S: Session> Connection<S> {
    /// A connection for `session` with the given reader and writer bounds (other settings
    /// default, see [`ConnectionConfig`]).
    pub fn new(session: S, reader: ReaderConfig, writer: WriterConfig) -> Self {
        Connection::with_config(
            session,
            ConnectionConfig::default().with_buffers(reader, writer),
        )
    }

    /// A connection with the default bounds.
    pub fn with_defaults(session: S) -> Self {
        Connection::with_config(session, ConnectionConfig::default())
    }

    /// A connection for `session` with the given settings.
    pub fn with_config(session: S, config: ConnectionConfig) -> Self {
        Connection {
            session,
            reader: StreamReader::new(config.reader),
            writer: StreamWriter::new(config.writer),
            config,
            phase: Phase::New,
            eof: Eof::NotSeen,
            write_side: WriteSide::Open,
            closed_first: false,
            reason: None,
            now: Timestamp::ZERO,
            last_active: Timestamp::ZERO,
            connect_deadline: None,
            linger_deadline: None,
            unsent: 0,
            frame_started: None,
            consumed_seen: 0,
        }
    }

    /// The settings this connection runs with.
    #[must_use]
    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    /// Sets the idle timeout (see [`ConnectionConfig::idle_timeout`]). The idle deadline is
    /// part of [`poll_timeout`](Self::poll_timeout): drivers need no timer of their own.
    pub fn set_idle_timeout(&mut self, idle: Option<Duration>) {
        self.config.idle_timeout = idle;
    }

    /// A client connect was started: the connect deadline
    /// ([`ConnectionConfig::connect_timeout`]) runs from `now`. Follow with
    /// [`handle_start`](Self::handle_start) once connected, or
    /// [`handle_io_error`](Self::handle_io_error) if the connect failed.
    pub fn handle_connecting(&mut self, now: Timestamp) {
        if self.phase != Phase::New {
            return;
        }
        let now = self.tick(now);
        self.phase = Phase::Connecting;
        self.connect_deadline = self.config.connect_timeout.map(|t| now.saturating_add(t));
    }

    /// The connection is established (accepted, or connected as a client): runs the
    /// session's `handle_start` (once; later calls do nothing).
    pub fn handle_start(&mut self, now: Timestamp) {
        if !matches!(self.phase, Phase::New | Phase::Connecting) {
            return;
        }
        let now = self.tick(now);
        self.last_active = now;
        self.connect_deadline = None;
        self.phase = Phase::Open;
        let verdict = self.session.handle_start(now, &mut self.writer);
        self.apply(now, verdict);
        // A peer that closed before the start is told now.
        self.pump_eof(now);
        self.settle(now);
    }

    /// Gives back the reader's and the writer's buffers where they hold nothing. A driver calls
    /// it when it is about to wait (its socket had nothing more to read), so that an idle
    /// connection costs no buffers; the next receive or write allocates them again.
    pub fn release_idle_buffers(&mut self) {
        self.reader.release_if_empty();
        self.writer.release_if_empty();
    }

    /// [`release_idle_buffers`](Self::release_idle_buffers) into `pool` (up to its bound)
    /// instead of the allocator, for the next connection of the same driver to reuse.
    pub fn release_idle_buffers_to(&mut self, pool: &mut BufferPool) {
        if let Some(buf) = self.reader.lend_buffer() {
            pool.put_read(buf);
        }
        if let Some(buf) = self.writer.lend_buffer() {
            pool.put_write(buf);
        }
        self.release_idle_buffers();
    }

    /// Lends this connection buffers from `pool` where it holds none: a driver calls it before
    /// it receives for the connection or hands it a turn, so that a warm server allocates
    /// nothing per request.
    pub fn take_buffers_from(&mut self, pool: &mut BufferPool) {
        if !self.reader.has_buffer() {
            if let Some(back) = pool.take_read().and_then(|b| self.reader.adopt_buffer(b)) {
                pool.put_read(back);
            }
        }
        if !self.writer.has_buffer() {
            if let Some(back) = pool.take_write().and_then(|b| self.writer.adopt_buffer(b)) {
                pool.put_write(back);
            }
        }
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
    /// session (or, once the session is done, discard them). `n == 0` is not end of stream
    /// (use [`handle_peer_closed`](Self::handle_peer_closed)).
    pub fn handle_received(&mut self, now: Timestamp, n: usize) {
        if !self.wants_read() || n == 0 {
            return;
        }
        let now = self.tick(now);
        self.last_active = now;
        self.reader.filled(n);
        match self.phase {
            Phase::Open => {
                self.run_input(now);
                self.track_frame(now);
                self.settle(now);
            }
            Phase::Ending => {
                // Lingering: the session is done; input is read only so that closing does
                // not reset the connection.
                let _ = self.reader.read_available();
            }
            Phase::New | Phase::Connecting | Phase::Closed => {}
        }
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

    /// The peer closed its sending side (a read returned 0). Valid before `handle_start` too:
    /// the session is told once it has started.
    pub fn handle_peer_closed(&mut self, now: Timestamp) {
        if self.eof != Eof::NotSeen || self.phase == Phase::Closed {
            return;
        }
        let now = self.tick(now);
        self.reader.close();
        self.eof = Eof::Pending;
        match self.phase {
            Phase::Open => {
                self.pump_eof(now);
                self.settle(now);
            }
            Phase::Ending => {
                self.eof = Eof::Delivered;
                self.progress_ending(now);
            }
            Phase::New | Phase::Connecting | Phase::Closed => {}
        }
    }

    /// `n` bytes of [`poll_transmit`](Self::poll_transmit) were sent.
    pub fn handle_sent(&mut self, now: Timestamp, n: usize) {
        if !matches!(self.phase, Phase::Open | Phase::Ending) {
            return;
        }
        let now = self.tick(now);
        let was_backpressured = self.writer.is_backpressured();
        if n > 0 {
            self.last_active = now;
        }
        self.writer.consume(n);
        match self.phase {
            Phase::Open => {
                if was_backpressured && !self.writer.is_backpressured() {
                    // Room to write again: the session may have input waiting, or more to
                    // produce; a pending end of stream is delivered once it keeps up.
                    if self.eof == Eof::NotSeen {
                        self.run_input(now);
                        // The frame clock ran only while the session was free to consume.
                        self.frame_started = None;
                        self.track_frame(now);
                    } else {
                        self.pump_eof(now);
                    }
                }
                self.settle(now);
            }
            Phase::Ending => self.progress_ending(now),
            Phase::New | Phase::Connecting | Phase::Closed => {}
        }
    }

    /// Returns true exactly once, when the driver must shut down the socket's write side now
    /// (everything pending was sent after the session said `CloseWrite`, or the session is
    /// done and the connection lingers for the peer's end of stream).
    #[must_use = "when true, the driver must shut down the write side"]
    pub fn poll_shutdown_write(&mut self) -> bool {
        if self.write_side != WriteSide::ShutdownWanted
            || self.writer.has_pending()
            || !matches!(self.phase, Phase::Open | Phase::Ending)
        {
            return false;
        }
        self.write_side = WriteSide::Shut;
        let now = self.now;
        if self.phase == Phase::Open {
            self.settle(now);
        }
        true
    }

    /// Time passed: ends a connect that took too long, a connection idle for too long, or a
    /// linger that ran out; else runs the session's `handle_timeout` if its deadline is due.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let now = self.tick(now);
        match self.phase {
            Phase::Connecting => {
                if self.connect_deadline.is_some_and(|d| d <= now) {
                    self.finish(now, EndReason::ConnectTimedOut);
                }
            }
            Phase::Open => {
                if self.idle_deadline().is_some_and(|d| d <= now) {
                    self.finish(now, EndReason::IdleTimeout);
                    return;
                }
                if self.frame_deadline().is_some_and(|d| d <= now) {
                    self.finish(now, EndReason::FrameTimeout);
                    return;
                }
                if let Some(deadline) = self.session.poll_timeout() {
                    if deadline <= now {
                        let verdict = self.session.handle_timeout(now, &mut self.writer);
                        self.apply(now, verdict);
                        self.settle(now);
                    }
                }
            }
            Phase::Ending => {
                if self.linger_deadline.is_some_and(|d| d <= now) {
                    let unsent = self.writer.pending_len();
                    let reason = match self.reason.take() {
                        Some(reason) if unsent > 0 && reason.is_graceful() => {
                            EndReason::LingerTimeout { unsent }
                        }
                        Some(reason) => reason,
                        None => EndReason::LingerTimeout { unsent },
                    };
                    self.finish(now, reason);
                }
            }
            Phase::New | Phase::Closed => {}
        }
    }

    /// A socket operation failed. While connecting this ends the connection as refused
    /// (`ConnectionRefused`, or `NotFound` for a Unix path), timed out (`TimedOut`) or
    /// [`EndReason::Io`]; once connected, a reset or broken pipe is [`EndReason::Reset`].
    /// An error after all output was handed over and the write side shut (a peer that
    /// resets instead of closing) does not change the reason of an ending connection.
    pub fn handle_io_error(&mut self, now: Timestamp, error: std::io::Error) {
        let now = self.tick(now);
        match self.phase {
            Phase::New | Phase::Connecting => {
                let reason = EndReason::from_io(error, true);
                self.finish(now, reason);
            }
            Phase::Open => {
                let reason = EndReason::from_io(error, false);
                self.finish(now, reason);
            }
            Phase::Ending => {
                let delivered = !self.writer.has_pending()
                    && (self.write_side == WriteSide::Shut || self.eof != Eof::NotSeen);
                let reason = match self.reason.take() {
                    Some(reason) if delivered || !reason.is_graceful() => reason,
                    _ => EndReason::from_io(error, false),
                };
                self.finish(now, reason);
            }
            Phase::Closed => {}
        }
    }

    /// The driver stops the connection (server shutdown): it ends at once with
    /// [`EndReason::Shutdown`]; pending output is dropped.
    pub fn handle_shutdown(&mut self, now: Timestamp) {
        let now = self.tick(now);
        self.finish(now, EndReason::Shutdown);
    }

    /// The bytes to send now (empty when none, or once closed).
    #[must_use]
    pub fn poll_transmit(&self) -> &[u8] {
        if matches!(self.phase, Phase::Open | Phase::Ending) {
            self.writer.pending()
        } else {
            &[]
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called: the connect
    /// deadline, the session's deadline or the idle deadline, or the linger deadline,
    /// whichever applies and comes first; `None` for never.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        match self.phase {
            Phase::Connecting => self.connect_deadline,
            Phase::Open => [
                self.session.poll_timeout(),
                self.idle_deadline(),
                self.frame_deadline(),
            ]
            .into_iter()
            .flatten()
            .min(),
            Phase::Ending => self.linger_deadline,
            Phase::New | Phase::Closed => None,
        }
    }

    /// While unconsumed input waits for the session to complete a frame (and the session is
    /// free to consume it), when the frame timeout ends the connection.
    fn frame_deadline(&self) -> Option<Timestamp> {
        if self.eof != Eof::NotSeen || self.writer.is_backpressured() {
            return None;
        }
        let timeout = self.config.frame_timeout?;
        self.frame_started.map(|t| t.saturating_add(timeout))
    }

    /// Restarts the frame clock whenever the session consumed something; starts it when input
    /// waits unconsumed.
    fn track_frame(&mut self, now: Timestamp) {
        let consumed = self.reader.consumed_bytes();
        if consumed != self.consumed_seen {
            self.consumed_seen = consumed;
            self.frame_started = None;
        }
        if self.reader.is_empty() {
            self.frame_started = None;
        } else if self.frame_started.is_none() {
            self.frame_started = Some(now);
        }
    }

    fn idle_deadline(&self) -> Option<Timestamp> {
        self.config
            .idle_timeout
            .map(|d| self.last_active.saturating_add(d))
    }

    /// True when the backend should receive for this connection now.
    #[must_use]
    pub fn wants_read(&self) -> bool {
        match self.phase {
            Phase::Open => {
                self.eof == Eof::NotSeen
                    && !self.writer.is_backpressured()
                    && self.reader.wants_input()
            }
            // Lingering: read (and discard) until the peer's end of stream.
            Phase::Ending => self.eof == Eof::NotSeen,
            Phase::New | Phase::Connecting | Phase::Closed => false,
        }
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

    /// True once the session is done (it said `Close`, failed, or the connection finished):
    /// the connection may still be sending and lingering.
    #[must_use]
    pub fn is_ending(&self) -> bool {
        matches!(self.phase, Phase::Ending | Phase::Closed)
    }

    /// True while a client connect is under way.
    #[must_use]
    pub fn is_connecting(&self) -> bool {
        self.phase == Phase::Connecting
    }

    /// Why the connection ended, once [`is_closed`](Self::is_closed).
    #[must_use]
    pub fn end_reason(&self) -> Option<&EndReason> {
        if self.phase == Phase::Closed {
            self.reason.as_ref()
        } else {
            None
        }
    }

    /// The kind of [`end_reason`](Self::end_reason).
    #[must_use]
    pub fn end_kind(&self) -> Option<EndKind> {
        self.end_reason().map(EndReason::kind)
    }

    /// True when the driver should close the socket with a reset (the session said `Abort`).
    #[must_use]
    pub fn wants_reset(&self) -> bool {
        matches!(self.end_reason(), Some(EndReason::Aborted))
    }

    /// Bytes the session wrote that were dropped unsent when the connection finished (0 for
    /// a graceful end).
    #[must_use]
    pub fn unsent(&self) -> usize {
        self.unsent
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

    /// The session and the end reason (`None` if the connection did not finish).
    pub fn into_parts(self) -> (S, Option<EndReason>) {
        let reason = if self.phase == Phase::Closed {
            self.reason
        } else {
            None
        };
        (self.session, reason)
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
        if self.phase != Phase::Open || self.writer.is_backpressured() {
            // Called again once the writer drains (see handle_sent).
            return;
        }
        let verdict = self
            .session
            .handle_input(now, &mut self.reader, &mut self.writer);
        self.apply(now, verdict);
    }

    /// Delivers a pending end of stream: `handle_input` until a call leaves the writer below
    /// its high-water mark, then `handle_eof`.
    fn pump_eof(&mut self, now: Timestamp) {
        if self.phase != Phase::Open || self.eof != Eof::Pending || self.writer.is_backpressured() {
            return;
        }
        let verdict = self
            .session
            .handle_input(now, &mut self.reader, &mut self.writer);
        self.apply(now, verdict);
        if self.phase == Phase::Open && !self.writer.is_backpressured() {
            self.eof = Eof::Delivered;
            let verdict = self.session.handle_eof(now, &mut self.writer);
            self.apply(now, verdict);
        }
    }

    /// An open connection that can never make progress again finishes: the peer's end of
    /// stream was delivered and either our write side is shut too, or nothing is pending
    /// and the session has no deadline. One whose session stopped consuming a full reader
    /// with nothing to send and no deadline at all is [`EndReason::Stalled`].
    fn settle(&mut self, now: Timestamp) {
        if self.phase != Phase::Open || self.writer.has_pending() {
            return;
        }
        if self.eof == Eof::NotSeen {
            if !self.wants_read()
                && self.write_side != WriteSide::ShutdownWanted
                && self.poll_timeout().is_none()
            {
                self.finish(now, EndReason::Stalled);
            }
            return;
        }
        if self.eof != Eof::Delivered {
            return;
        }
        let done_writing = match self.write_side {
            WriteSide::Shut => true,
            // Shut down first, then finish (the peer deserves the FIN before the close).
            WriteSide::ShutdownWanted => false,
            WriteSide::Open => self.session.poll_timeout().is_none(),
        };
        if done_writing {
            let reason = self.graceful_reason();
            self.finish(now, reason);
        }
    }

    fn graceful_reason(&self) -> EndReason {
        if self.closed_first {
            EndReason::Closed
        } else {
            EndReason::PeerClosed
        }
    }

    fn apply(&mut self, now: Timestamp, verdict: Result<Next, SessionError>) {
        if self.phase != Phase::Open {
            return;
        }
        match verdict {
            Ok(Next::Continue) => {}
            Ok(Next::CloseWrite) => {
                if self.eof == Eof::NotSeen {
                    self.closed_first = true;
                }
                self.writer.close();
                if self.write_side == WriteSide::Open {
                    self.write_side = WriteSide::ShutdownWanted;
                }
            }
            Ok(Next::Close) => {
                if self.eof == Eof::NotSeen {
                    self.closed_first = true;
                }
                let reason = self.graceful_reason();
                self.begin_ending(now, reason);
            }
            Ok(Next::Abort) => self.finish(now, EndReason::Aborted),
            Err(error) => self.begin_ending(now, EndReason::Session(error)),
        }
    }

    fn begin_ending(&mut self, now: Timestamp, reason: EndReason) {
        self.phase = Phase::Ending;
        self.reason = Some(reason);
        self.writer.close();
        if self.eof == Eof::Pending {
            // The session no longer runs: nothing is left to deliver.
            self.eof = Eof::Delivered;
        }
        self.linger_deadline = Some(now.saturating_add(self.config.linger));
        // Input the session left unread is dropped.
        let _ = self.reader.read_available();
        self.progress_ending(now);
    }

    /// Ending: once everything is sent, finish if the peer already closed, else ask for the
    /// write side to be shut down and wait (discarding input) for its end of stream.
    fn progress_ending(&mut self, now: Timestamp) {
        if self.phase != Phase::Ending || self.writer.has_pending() {
            return;
        }
        if self.eof != Eof::NotSeen {
            let reason = self.reason.take().unwrap_or_else(|| self.graceful_reason());
            self.finish(now, reason);
        } else if self.write_side == WriteSide::Open {
            self.write_side = WriteSide::ShutdownWanted;
        }
    }

    /// Finishes the connection with `reason` and tells the session (once).
    fn finish(&mut self, now: Timestamp, reason: EndReason) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        self.unsent = self.writer.pending_len();
        self.writer.consume(self.unsent);
        self.writer.close();
        self.reader.close();
        self.connect_deadline = None;
        self.linger_deadline = None;
        self.session.handle_end(now, &reason);
        self.reason = Some(reason);
    }
}
