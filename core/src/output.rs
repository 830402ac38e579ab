//! `Output`: what [`Connection::poll_output`](crate::Connection::poll_output) tells a driver to
//! do next, and `Direction`, the side of a socket a driver reports as not ready. Together with
//! the connection's `handle_*` methods they are the whole driving contract.

use crate::{EndReason, Timestamp};

/// The next thing a driver must do for a connection. Drain
/// [`Connection::poll_output`](crate::Connection::poll_output) until it answers
/// [`Wait`](Output::Wait) or [`Close`](Output::Close).
#[must_use = "a driver must act on every output (a dropped transmit is lost data)"]
#[derive(Debug, PartialEq)]
#[non_exhaustive]
pub enum Output<'a> {
    /// Read from the socket into this room (the reader's spare space: no copy), then report
    /// it: [`handle_received`](crate::Connection::handle_received) with the count, a read of 0
    /// as [`handle_peer_closed`](crate::Connection::handle_peer_closed), a failure as
    /// [`handle_io_error`](crate::Connection::handle_io_error). If the socket has nothing now
    /// (or the driver will not read for this connection in this turn), report
    /// [`handle_blocked(Direction::Read)`](crate::Connection::handle_blocked).
    Receive(&'a mut [u8]),
    /// Send these bytes (a prefix is fine) and report how many with
    /// [`handle_sent`](crate::Connection::handle_sent); if the socket takes none now, report
    /// [`handle_blocked(Direction::Write)`](crate::Connection::handle_blocked).
    Transmit(&'a [u8]),
    /// Shut down the socket's write side now (a TCP FIN): everything before it was sent.
    /// Given once.
    ShutdownWrite,
    /// The connection is finished: close the socket, with a reset (`SO_LINGER` 0) when
    /// `reset` is true. `reason` says why, for logging; the session has been told already.
    /// Given once; every later call answers [`Ended`](Output::Ended).
    Close {
        /// Close with a reset (the session aborted).
        reset: bool,
        /// Why the connection ended.
        reason: &'a EndReason,
    },
    /// Nothing to do until the socket is readable (if `read`), writable (if `write`), the
    /// application wakes the session, or `until` (later than the `now` passed in; `None` for
    /// no deadline). Then call `poll_output` again with the new time: a deadline that passed
    /// is handled there, no separate call is needed.
    Wait {
        /// Wake when the socket is readable.
        read: bool,
        /// Wake when the socket is writable.
        write: bool,
        /// Wake at this time at the latest.
        until: Option<Timestamp>,
    },
    /// The connection finished earlier (after [`Close`](Output::Close)); nothing is left to do.
    Ended(&'a EndReason),
}

/// A side of the socket, for [`Connection::handle_blocked`](crate::Connection::handle_blocked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Reading: the socket has no input now, or the driver spent this connection's read
    /// budget for the turn.
    Read,
    /// Writing: the socket takes no more bytes now.
    Write,
}
