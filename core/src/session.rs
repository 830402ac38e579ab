//! `Session`: a protocol written once as a sans-IO state machine, run by every backend.
//!
//! A session never touches a socket or a clock. A driver (the polling loop, the smol task, the
//! simulator, the in-memory [`Pair`](crate::Pair), a fuzz target) feeds it input and time
//! through `handle_*` and asks it for its next deadline through [`Session::poll_timeout`].

use std::error::Error;

use crate::{EndReason, FramingError, Notify, StreamReader, StreamWriter, Timestamp};

/// What a session wants after handling something.
#[must_use = "a session's verdict decides whether the connection stays open"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Next {
    /// Keep the connection open.
    Continue,
    /// Half-close: "I am done sending". What is pending is sent, then the write side is shut
    /// down (a TCP FIN); input keeps coming (`handle_input`, then `handle_eof`). Writes after
    /// it fail with `FramingError::WriterClosed`.
    CloseWrite,
    /// Send everything pending, then close. No further input is delivered; input that still
    /// arrives is read and discarded for up to the linger time, so that closing does not
    /// reset the connection and destroy the last reply in flight.
    Close,
    /// Close at once with a reset: pending output is dropped and the peer sees
    /// "connection reset". For protocols that must tear a connection down abortively.
    Abort,
}

/// Why a session gave up on its connection. Like `Next::Close`, replies written before the
/// error are still sent (within the linger time); the error then reaches `handle_end` as
/// [`EndReason::Session`](crate::EndReason::Session).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The peer's bytes broke a framing bound or ended mid-frame.
    #[error(transparent)]
    Framing(#[from] FramingError),
    /// The peer broke the protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// Anything else the session ran into.
    #[error(transparent)]
    Other(Box<dyn Error + Send + Sync>),
}

/// A protocol, as a state machine over one connection.
///
/// # Lifecycle
///
/// ```text
///  (client) connecting ──refused / timed out──────────────────────────────┐
///        │ connected                                                       │
///        ▼                                                                 ▼
///   handle_start ─▶ handle_input* / handle_timeout* ─▶ handle_eof ─▶ ... ─▶ handle_end(reason)
///                        │ Next::CloseWrite: our FIN after pending output; input continues
///                        │ Next::Close / Err: pending output sent, then closed
///                        │ Next::Abort: reset at once
/// ```
///
/// A [`Connection`](crate::Connection) implements this contract; a backend only moves its
/// bytes. It calls:
///
/// 1. [`handle_start`](Session::handle_start) once, when the connection is established (an
///    accepted server connection, or a client connection whose connect succeeded).
/// 2. [`handle_input`](Session::handle_input) after new bytes were added to the reader, and
///    again whenever the writer drains below its high-water mark after back-pressure (input
///    may be waiting that the session left unread, or the session may have more to produce:
///    a session that streams a large reply writes until `is_backpressured()` and continues
///    on the next call). The session consumes every complete frame it is willing to handle
///    and writes its replies; it should stop consuming while `writer.is_backpressured()`.
///    Leaving a partial frame in the reader is normal; so is a call with nothing new to read.
/// 3. [`handle_timeout`](Session::handle_timeout) once `now >= poll_timeout()`.
/// 4. At the peer's end of stream: the reader is closed and `handle_input` is called (partial
///    frames now fail with `UnexpectedEof`, and the tail is readable), again after each
///    back-pressure drain if needed, until a call leaves the writer below its high-water
///    mark; then [`handle_eof`](Session::handle_eof) once. So a session that honours
///    back-pressure has answered every complete request before `handle_eof`.
/// 5. [`handle_event`](Session::handle_event) when the application woke the session through
///    the [`Notify`] it gave out with [`notify_handle`](Session::notify_handle).
/// 6. [`handle_end`](Session::handle_end) exactly once, with the [`EndReason`], when the
///    connection is finished, whatever ended it (including a connect that failed before
///    `handle_start`). No call follows it. The one exception: a session that **panics** (in any
///    callback, or its factory) is dropped without `handle_end`, since its state cannot be
///    trusted after a panic; every backend contains the panic to that one connection (its
///    socket is closed, a reset if input was left unread) and logs it.
///
/// After every `handle_*` call the connection re-reads
/// [`poll_timeout`](Session::poll_timeout): a deadline at or before `now` is due at once.
/// `now` never goes backwards for one session.
///
/// `Ok(Next::Close)` and `Err` both stop the session (only `handle_end` follows) and still
/// send what it wrote before; `Ok(Next::Abort)` drops it. A session that has answered
/// complete requests can therefore use `?` on a framing error at end of stream without
/// losing those answers.
///
/// ```
/// use concurrence_core::{Next, Session, SessionError, StreamReader, StreamWriter, Timestamp};
///
/// /// Echoes each line back, as it came (LF or CRLF kept).
/// struct LineEcho;
///
/// impl Session for LineEcho {
///     fn handle_input(
///         &mut self,
///         _now: Timestamp,
///         reader: &mut StreamReader,
///         writer: &mut StreamWriter,
///     ) -> Result<Next, SessionError> {
///         while !writer.is_backpressured() {
///             let Some(line) = reader.read_line(true)? else { break };
///             writer.write_bytes(line)?;
///         }
///         Ok(Next::Continue)
///     }
/// }
/// ```
pub trait Session {
    /// The connection is up; a client protocol may write its first request here.
    ///
    /// # Errors
    /// A [`SessionError`] ends the session (pending output is still sent).
    fn handle_start(
        &mut self,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        let _ = (now, writer);
        Ok(Next::Continue)
    }

    /// New input is in `reader` (or the writer drained after back-pressure): consume what is
    /// complete, write replies.
    ///
    /// # Errors
    /// A [`SessionError`] ends the session (pending output is still sent).
    fn handle_input(
        &mut self,
        now: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError>;

    /// The deadline from [`poll_timeout`](Session::poll_timeout) has passed.
    ///
    /// # Errors
    /// A [`SessionError`] ends the session (pending output is still sent).
    fn handle_timeout(
        &mut self,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        let _ = (now, writer);
        Ok(Next::Continue)
    }

    /// The peer closed its sending side and the final `handle_input` has run (see the
    /// lifecycle above). The default closes (after flushing); return `Continue` to keep
    /// writing on a half-closed connection (it ends by itself once nothing is pending and no
    /// deadline is set).
    ///
    /// # Errors
    /// A [`SessionError`] ends the session (pending output is still sent).
    fn handle_eof(
        &mut self,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        let _ = (now, writer);
        Ok(Next::Close)
    }

    /// The connection is finished, for `reason`; called exactly once, last. Nothing can be
    /// sent any more: a client learns here that requests in flight are lost.
    fn handle_end(&mut self, now: Timestamp, reason: &EndReason) {
        let _ = (now, reason);
    }

    /// When the session next wants [`handle_timeout`](Session::handle_timeout); `None` for
    /// never. Re-read after every `handle_*` call.
    #[must_use]
    fn poll_timeout(&self) -> Option<Timestamp> {
        None
    }

    /// The application woke this session through its [`Notify`] (for example a
    /// [`Mailbox`](crate::Mailbox) got an event): drain what the application sent and write
    /// what it means for the peer. Notifications coalesce, so drain everything queued. A
    /// session that must not block the application should drop (and count) what does not fit
    /// while `writer.is_backpressured()`.
    ///
    /// # Errors
    /// A [`SessionError`] ends the session (pending output is still sent).
    fn handle_event(
        &mut self,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        let _ = (now, writer);
        Ok(Next::Continue)
    }

    /// The wake-up flag through which the application reaches this session, if it takes
    /// application events; read once, when its connection is created. The default, `None`,
    /// is a session driven only by its peer and its deadlines.
    fn notify_handle(&self) -> Option<&Notify> {
        None
    }
}

impl<S: Session + ?Sized> Session for Box<S> {
    fn handle_start(
        &mut self,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        (**self).handle_start(now, writer)
    }
    fn handle_input(
        &mut self,
        now: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        (**self).handle_input(now, reader, writer)
    }
    fn handle_timeout(
        &mut self,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        (**self).handle_timeout(now, writer)
    }
    fn handle_eof(
        &mut self,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        (**self).handle_eof(now, writer)
    }
    fn handle_end(&mut self, now: Timestamp, reason: &EndReason) {
        (**self).handle_end(now, reason);
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        (**self).poll_timeout()
    }
    fn handle_event(
        &mut self,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        (**self).handle_event(now, writer)
    }
    fn notify_handle(&self) -> Option<&Notify> {
        (**self).notify_handle()
    }
}
