//! `Connection`: one session with its reader and writer, implementing the `Session` driving
//! contract and the whole connection lifecycle once (connect, start, input and output with
//! back-pressure, half-close both ways, lingering close, one end reason), so that every
//! backend only moves bytes and waits.

use std::time::Duration;

use crate::{
    BufferPool, ConnectionConfig, Direction, EndKind, EndReason, Next, Notify, Output,
    ReaderConfig, Session, SessionError, StreamReader, StreamWriter, Timestamp, WriterConfig,
};

/// What [`Output::Ended`] and [`Output::Close`] report if a finished connection somehow kept no
/// reason (it always keeps one; this only spares a panic path).
static NO_REASON: EndReason = EndReason::Shutdown;

/// How long after a session's `handle_timeout` left its own deadline in the past the
/// connection calls it again (a stale deadline must not spin the driver).
const STALE_DEADLINE_RETRY: Duration = Duration::from_millis(1);

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
/// # The driving rule (for backend authors)
///
/// A driver tells the connection what happened through a few `handle_*` methods and learns
/// what to do from one method, [`poll_output`](Self::poll_output), which it calls until it
/// answers [`Output::Wait`] or [`Output::Close`]:
///
/// ```text
///   connection established ─ handle_start(now)          (a client calls handle_connecting first)
///   loop {
///     match poll_output(now) {
///       Receive(room)   ─ read(fd, room): n > 0 ──▶ handle_received(now, n)
///                                         0     ──▶ handle_peer_closed(now)
///                                         would block (or read budget spent) ──▶ handle_blocked(Read)
///       Transmit(bytes) ─ send(fd, bytes): n ──▶ handle_sent(now, n)
///                                         would block ──▶ handle_blocked(Write)
///       ShutdownWrite   ─ shutdown(fd, Write)
///       Close{reset,..} ─ close(fd) (SO_LINGER 0 when reset); stop
///       Wait{read, write, until} ─ sleep until readable / writable / until / woken; then loop
///     }                                                  (any socket error: handle_io_error)
///   }
/// ```
///
/// `poll_output(now)` also runs whatever is due at `now` (the session's deadline, the idle,
/// frame, connect and linger timeouts, application events from [`Notify`]), so a driver that
/// woke for any reason only calls it again: `Wait::until` is always later than `now`, and a
/// stale deadline can never spin a driver. Receive comes before Transmit, Transmit before the
/// shutdown, so every driver does the same work in the same order.
/// [`handle_blocked`](Self::handle_blocked) lasts until the next `Wait`: after waiting, the
/// driver may be offered the same output again.
///
/// A driver that stops a connection for its own reasons (server shutdown) calls
/// [`handle_shutdown`](Self::handle_shutdown); every `handle_*` call may finish the
/// connection, and calls after that do nothing. A session woken from outside (see
/// [`Notify`]) needs the driver to pass its own wake-up to [`set_waker`](Self::set_waker).
///
/// A whole driver, over an in-memory "socket" (a byte queue each way), is a loop of a few
/// lines; the backends' loops have the same shape with system calls in the arms:
///
/// ```
/// use std::collections::VecDeque;
/// use concurrence_core::{
///     Connection, Direction, Next, Output, Session, SessionError, StreamReader, StreamWriter,
///     Timestamp,
/// };
///
/// struct Upper;
/// impl Session for Upper {
///     fn handle_input(&mut self, _: Timestamp, r: &mut StreamReader, w: &mut StreamWriter)
///         -> Result<Next, SessionError> {
///         while let Some(line) = r.read_line(true)? {
///             w.write_bytes(&line.to_ascii_uppercase())?;
///         }
///         Ok(Next::Continue)
///     }
/// }
///
/// let (mut inbound, mut outbound) = (VecDeque::from(b"hello\nworld\n".to_vec()), Vec::new());
/// let mut peer_closed = false;
/// let now = Timestamp::ZERO;
/// let mut conn = Connection::with_defaults(Upper);
/// conn.handle_start(now);
/// loop {
///     match conn.poll_output(now) {
///         Output::Receive(room) => {
///             let n = room.len().min(inbound.len());
///             if n > 0 {
///                 for (slot, byte) in room.iter_mut().zip(inbound.drain(..n)) {
///                     *slot = byte;
///                 }
///                 conn.handle_received(now, n);
///             } else if !peer_closed {
///                 peer_closed = true; // a read of 0: the peer's end of stream
///                 conn.handle_peer_closed(now);
///             } else {
///                 conn.handle_blocked(Direction::Read);
///             }
///         }
///         Output::Transmit(bytes) => {
///             outbound.extend_from_slice(bytes);
///             let n = bytes.len();
///             conn.handle_sent(now, n);
///         }
///         Output::ShutdownWrite => {} // shutdown(fd, Write)
///         Output::Close { reset, reason } => {
///             assert!(!reset);
///             println!("closed: {reason}");
///             break;
///         }
///         // `Wait`: sleep until readable, writable, `until` or a wake-up. This peer has
///         // nothing more to give, so the example stops here.
///         _ => break,
///     }
/// }
/// assert_eq!(outbound, b"HELLO\nWORLD\n");
/// ```
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
    /// The driver said reading (writing) is not possible until its next wait.
    read_blocked: bool,
    write_blocked: bool,
    /// `Output::Close` was given.
    close_told: bool,
    /// When the session's `handle_timeout` last ran and left its deadline due.
    stale_since: Option<Timestamp>,
    /// The session's wake-up flag, if it takes application events.
    notify: Option<Notify>,
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
        let session_notify = session.notify_handle().cloned();
        Connection {
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
            read_blocked: false,
            write_blocked: false,
            close_told: false,
            stale_since: None,
            notify: session_notify,
            session,
        }
    }

    /// The settings this connection runs with.
    #[must_use]
    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    /// Sets the idle timeout (see [`ConnectionConfig::idle_timeout`]). The idle deadline is
    /// part of [`Output::Wait`]'s deadline: drivers need no timer of their own.
    pub fn set_idle_timeout(&mut self, idle: Option<Duration>) {
        self.config.idle_timeout = idle;
    }

    /// What the driver must do next (see the driving rule above); first runs whatever is due
    /// at `now`: an application event, then a deadline. Drain it until it answers
    /// [`Output::Wait`] or [`Output::Close`].
    pub fn poll_output(&mut self, now: Timestamp) -> Output<'_> {
        let now = self.tick(now);
        if self.phase == Phase::Open && self.notify.as_ref().is_some_and(Notify::take) {
            let verdict = self.session.handle_event(now, &mut self.writer);
            self.apply(now, verdict);
            self.track_frame(now);
            self.settle(now);
        }
        // I/O first, deadlines when there is nothing else to do: input that arrived at the
        // idle deadline still counts, and output written before a zero linger still goes out.
        let mut deadline_run = false;
        loop {
            match self.phase {
                Phase::Closed => {
                    let reason = self.reason.as_ref().unwrap_or(&NO_REASON);
                    if self.close_told {
                        return Output::Ended(reason);
                    }
                    self.close_told = true;
                    return Output::Close {
                        reset: matches!(reason, EndReason::Aborted),
                        reason,
                    };
                }
                Phase::New | Phase::Connecting => {}
                Phase::Open | Phase::Ending => {
                    if !self.read_blocked && self.wants_read() {
                        return Output::Receive(self.reader.spare());
                    }
                    if !self.write_blocked && self.writer.has_pending() {
                        return Output::Transmit(self.writer.pending());
                    }
                    if self.poll_shutdown_write() {
                        return Output::ShutdownWrite;
                    }
                }
            }
            if deadline_run || self.poll_timeout().is_none_or(|at| at > now) {
                break;
            }
            deadline_run = true;
            self.handle_timeout(now);
        }
        self.read_blocked = false;
        self.write_blocked = false;
        Output::Wait {
            read: self.wants_read(),
            write: matches!(self.phase, Phase::Open | Phase::Ending) && self.writer.has_pending(),
            until: self.poll_timeout(),
        }
    }

    /// The socket cannot do `direction` now (the operation would block), or the driver will not
    /// do it for this connection in this turn (its budget is spent): `poll_output` stops
    /// offering it until it has answered [`Output::Wait`].
    pub fn handle_blocked(&mut self, direction: Direction) {
        match direction {
            Direction::Read => self.read_blocked = true,
            Direction::Write => self.write_blocked = true,
        }
    }

    /// Binds the driver's wake-up to the session's [`Notify`] (if its
    /// [`Session::notify_handle`] gives one): `wake` runs, from whichever thread notifies,
    /// when the session should get a turn; the driver then calls
    /// [`poll_output`](Self::poll_output), which runs [`Session::handle_event`]. Call it once,
    /// before the first `poll_output`; it does nothing for sessions without events.
    pub fn set_waker<W: Fn() + Send + Sync + 'static>(&mut self, wake: W) {
        if let Some(notify) = &self.notify {
            notify.bind(Box::new(wake));
        }
    }

    /// True when the session takes application events (the driver should give it a waker
    /// with [`set_waker`](Self::set_waker)).
    #[must_use]
    pub fn takes_events(&self) -> bool {
        self.notify.is_some()
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
    pub(crate) fn recv_buffer(&mut self) -> &mut [u8] {
        if self.wants_read() {
            self.reader.spare()
        } else {
            &mut []
        }
    }

    /// `n` bytes were received into [`Output::Receive`]'s room: hand them to the
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

    /// `n` bytes of [`Output::Transmit`] were sent.
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
    pub(crate) fn poll_shutdown_write(&mut self) -> bool {
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
                if let Some(deadline) = self.session_deadline() {
                    if deadline <= now {
                        let verdict = self.session.handle_timeout(now, &mut self.writer);
                        self.stale_since = self
                            .session
                            .poll_timeout()
                            .is_some_and(|again| again <= now)
                            .then_some(now);
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

    /// When [`handle_timeout`](Self::handle_timeout) should next be called: the connect
    /// deadline, the session's deadline or the idle deadline, or the linger deadline,
    /// whichever applies and comes first; `None` for never.
    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        match self.phase {
            Phase::Connecting => self.connect_deadline,
            Phase::Open => [
                self.session_deadline(),
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

    /// The session's deadline; one still due right after its `handle_timeout` ran is retried
    /// [`STALE_DEADLINE_RETRY`] later rather than at once (a stale deadline must not spin).
    fn session_deadline(&self) -> Option<Timestamp> {
        let deadline = self.session.poll_timeout()?;
        match self.stale_since {
            Some(fired) if deadline <= fired => Some(fired.saturating_add(STALE_DEADLINE_RETRY)),
            _ => Some(deadline),
        }
    }

    fn idle_deadline(&self) -> Option<Timestamp> {
        self.config
            .idle_timeout
            .map(|d| self.last_active.saturating_add(d))
    }

    /// True when the backend should receive for this connection now.
    #[must_use]
    pub(crate) fn wants_read(&self) -> bool {
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

    /// True once the session is done (it said `Close`, failed, or the connection finished):
    /// the connection may still be sending and lingering. An observation for tests and
    /// metrics; drivers learn what to do from [`poll_output`](Self::poll_output).
    #[must_use]
    pub fn is_ending(&self) -> bool {
        matches!(self.phase, Phase::Ending | Phase::Closed)
    }

    /// Why the connection ended, once it is closed.
    #[must_use]
    pub(crate) fn end_reason(&self) -> Option<&EndReason> {
        if self.phase == Phase::Closed {
            self.reason.as_ref()
        } else {
            None
        }
    }

    /// How the connection ended, once it did (the reason itself comes with [`Output::Close`]).
    #[must_use]
    pub fn end_kind(&self) -> Option<EndKind> {
        self.end_reason().map(EndReason::kind)
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
            Err(error) => self.begin_ending(now, EndReason::Session(std::sync::Arc::new(error))),
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
        if let Some(notify) = &self.notify {
            notify.unbind();
        }
        self.session.handle_end(now, &reason);
        self.reason = Some(reason);
    }
}
