//! `Session`: a protocol written once as a sans-IO state machine, run by every backend.
//!
//! A session never touches a socket or a clock. A driver (the polling loop, the smol task, the
//! simulator, the in-memory [`Pair`](crate::Pair), a fuzz target) feeds it input and time
//! through `handle_*` and asks it for its next deadline through [`Session::poll_timeout`].

use std::error::Error;

use crate::{FramingError, StreamReader, StreamWriter, Timestamp};

/// What a session wants after handling something.
#[must_use = "a session's verdict decides whether the connection stays open"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Keep the connection open.
    Continue,
    /// Send everything pending, then close. No further input is delivered.
    Close,
}

/// Why a session gave up on its connection. The driver closes at once (pending output is
/// dropped): to send an error reply first, write it and return `Ok(Next::Close)` instead.
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
/// # Driving contract
///
/// A driver owns a [`StreamReader`], a [`StreamWriter`] and the session (the
/// [`Connection`](crate::Connection) type bundles all three and implements this contract; a
/// backend only moves its bytes). It calls:
///
/// 1. [`handle_start`](Session::handle_start) once, when the connection is established.
/// 2. [`handle_input`](Session::handle_input) after new bytes were added to the reader, and
///    again whenever the writer drains below its high-water mark after back-pressure (input
///    may be waiting that the session left unread, or the session may have more to produce:
///    a session that streams a large reply writes until `is_backpressured()` and continues
///    on the next call). The session consumes every complete frame it is willing to handle
///    and writes its replies; it should stop consuming while `writer.is_backpressured()`.
///    Leaving a partial frame in the reader is normal; so is a call with nothing new to read.
/// 3. [`handle_timeout`](Session::handle_timeout) once `now >= poll_timeout()`.
/// 4. At end of stream: the reader is closed, `handle_input` is called once more (partial
///    frames now fail with `UnexpectedEof`, and the tail is readable), then
///    [`handle_eof`](Session::handle_eof).
///
/// After **every** `handle_*` call the driver sends what the writer holds and re-reads
/// [`poll_timeout`](Session::poll_timeout): a deadline kept from before the call may be stale,
/// and waiting on a stale deadline in the past busy-loops. A deadline at or before `now` is due
/// at once. `now` never goes backwards for one session; a driver that sees its clock do so
/// passes the last value again.
///
/// `Ok(Next::Close)` closes after the writer is flushed; `Err` closes at once. Either way no
/// `handle_*` call follows.
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
    /// A [`SessionError`] closes the connection at once.
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
    /// A [`SessionError`] closes the connection at once.
    fn handle_input(
        &mut self,
        now: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError>;

    /// The deadline from [`poll_timeout`](Session::poll_timeout) has passed.
    ///
    /// # Errors
    /// A [`SessionError`] closes the connection at once.
    fn handle_timeout(
        &mut self,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        let _ = (now, writer);
        Ok(Next::Continue)
    }

    /// The peer closed its sending side and the final `handle_input` has run. The default
    /// closes (after flushing); return `Continue` to keep writing on a half-closed connection.
    ///
    /// # Errors
    /// A [`SessionError`] closes the connection at once.
    fn handle_eof(
        &mut self,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        let _ = (now, writer);
        Ok(Next::Close)
    }

    /// When the session next wants [`handle_timeout`](Session::handle_timeout); `None` for
    /// never. Re-read after every `handle_*` call.
    #[must_use]
    fn poll_timeout(&self) -> Option<Timestamp> {
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
    fn poll_timeout(&self) -> Option<Timestamp> {
        (**self).poll_timeout()
    }
}
