//! `EndReason`: why a connection ended, told once to its session (`Session::handle_end`) and
//! kept by its `Connection` for the driver to log. `EndKind` is the same answer without the
//! attached error, cheap to copy and compare (transcripts, tests, metrics).

use std::fmt;
use std::sync::Arc;

use crate::SessionError;

/// Why a connection ended. Delivered exactly once, to
/// [`Session::handle_end`](crate::Session::handle_end), when the connection finishes.
///
/// Whether the session's replies reached the peer follows from the reason: after
/// [`Closed`](Self::Closed) and [`PeerClosed`](Self::PeerClosed) everything the session wrote
/// was handed to the network. A [`Session`](Self::Session) error still sends the replies
/// written before it; the error is kept as the reason even if the peer then resets or the
/// linger runs out (`Connection::unsent` tells what was lost). After the other reasons, output
/// still pending was dropped ([`LingerTimeout`](Self::LingerTimeout) says how much).
///
/// Cloning shares the attached error; two reasons are equal when they are of the same kind and
/// their attached errors (if any) have the same kind and message.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum EndReason {
    /// We ended it: the session said `Close` (or `CloseWrite`) before the peer's end of
    /// stream, and everything it wrote was sent.
    Closed,
    /// The peer ended it: its end of stream came first, and everything the session wrote
    /// afterwards was sent.
    PeerClosed,
    /// The peer reset the connection (or vanished: broken pipe). Pending output is lost.
    Reset,
    /// Nothing was received or sent for the idle timeout (`ConnectionConfig::idle_timeout`).
    IdleTimeout,
    /// A frame started arriving and did not complete within `ConnectionConfig::frame_timeout`
    /// (a peer trickling its request: slowloris).
    FrameTimeout,
    /// Closing, the peer did not take the last output within `ConnectionConfig::linger`.
    LingerTimeout {
        /// Bytes the session wrote that were never sent.
        unsent: usize,
    },
    /// A client connection was refused (nobody listens there; for a Unix path, no socket file).
    ConnectRefused,
    /// A client connection did not complete within `ConnectionConfig::connect_timeout`.
    ConnectTimedOut,
    /// The driver stopped the connection (server shutdown past its grace period).
    Shutdown,
    /// The session can never make progress: it left the reader full without consuming, has
    /// nothing to send and no deadline (and there is no idle timeout to end it). A session
    /// bug; the connection is closed instead of held forever.
    Stalled,
    /// The session said `Abort`: closed at once with a reset, output dropped.
    Aborted,
    /// The session returned an error. Replies written before it were still sent (unless the
    /// peer reset or the linger ran out meanwhile: see `Connection::unsent`).
    Session(Arc<SessionError>),
    /// The socket failed in another way.
    Io(Arc<std::io::Error>),
}

/// The kind of an [`EndReason`], without its attached error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EndKind {
    /// [`EndReason::Closed`].
    Closed,
    /// [`EndReason::PeerClosed`].
    PeerClosed,
    /// [`EndReason::Reset`].
    Reset,
    /// [`EndReason::IdleTimeout`].
    IdleTimeout,
    /// [`EndReason::FrameTimeout`].
    FrameTimeout,
    /// [`EndReason::LingerTimeout`].
    LingerTimeout,
    /// [`EndReason::ConnectRefused`].
    ConnectRefused,
    /// [`EndReason::ConnectTimedOut`].
    ConnectTimedOut,
    /// [`EndReason::Shutdown`].
    Shutdown,
    /// [`EndReason::Stalled`].
    Stalled,
    /// [`EndReason::Aborted`].
    Aborted,
    /// [`EndReason::Session`].
    Session,
    /// [`EndReason::Io`].
    Io,
}

impl EndReason {
    /// The kind of this reason.
    #[must_use]
    pub fn kind(&self) -> EndKind {
        match self {
            EndReason::Closed => EndKind::Closed,
            EndReason::PeerClosed => EndKind::PeerClosed,
            EndReason::Reset => EndKind::Reset,
            EndReason::IdleTimeout => EndKind::IdleTimeout,
            EndReason::FrameTimeout => EndKind::FrameTimeout,
            EndReason::LingerTimeout { .. } => EndKind::LingerTimeout,
            EndReason::ConnectRefused => EndKind::ConnectRefused,
            EndReason::ConnectTimedOut => EndKind::ConnectTimedOut,
            EndReason::Shutdown => EndKind::Shutdown,
            EndReason::Stalled => EndKind::Stalled,
            EndReason::Aborted => EndKind::Aborted,
            EndReason::Session(_) => EndKind::Session,
            EndReason::Io(_) => EndKind::Io,
        }
    }

    /// True for an orderly end (`Closed`, `PeerClosed`): both sides finished and nothing was lost.
    #[must_use]
    pub fn is_graceful(&self) -> bool {
        matches!(self, EndReason::Closed | EndReason::PeerClosed)
    }

    /// True when the connection never got established (refused, timed out, or failed while
    /// connecting).
    #[must_use]
    pub fn is_connect_failure(&self) -> bool {
        matches!(self, EndReason::ConnectRefused | EndReason::ConnectTimedOut)
    }

    /// The reason a failed socket operation gives, while connecting or once connected.
    pub(crate) fn from_io(error: std::io::Error, connecting: bool) -> EndReason {
        use std::io::ErrorKind;
        match error.kind() {
            ErrorKind::ConnectionRefused | ErrorKind::NotFound if connecting => {
                EndReason::ConnectRefused
            }
            ErrorKind::TimedOut if connecting => EndReason::ConnectTimedOut,
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
                if !connecting =>
            {
                EndReason::Reset
            }
            _ => EndReason::Io(Arc::new(error)),
        }
    }
}

impl PartialEq for EndReason {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (EndReason::Session(a), EndReason::Session(b)) => a.to_string() == b.to_string(),
            (EndReason::Io(a), EndReason::Io(b)) => {
                a.kind() == b.kind() && a.to_string() == b.to_string()
            }
            (EndReason::LingerTimeout { unsent: a }, EndReason::LingerTimeout { unsent: b }) => {
                a == b
            }
            (a, b) => {
                a.kind() == b.kind() && a.kind() != EndKind::Session && a.kind() != EndKind::Io
            }
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::Closed => f.write_str("closed by us"),
            EndReason::PeerClosed => f.write_str("closed by the peer"),
            EndReason::Reset => f.write_str("reset by the peer"),
            EndReason::IdleTimeout => f.write_str("idle timeout"),
            EndReason::FrameTimeout => {
                f.write_str("a request took too long to arrive (frame timeout)")
            }
            EndReason::LingerTimeout { unsent } => write!(
                f,
                "the peer did not take the last {unsent} bytes within the linger time"
            ),
            EndReason::ConnectRefused => f.write_str("connection refused"),
            EndReason::ConnectTimedOut => f.write_str("connect timed out"),
            EndReason::Shutdown => f.write_str("stopped by the driver's shutdown"),
            EndReason::Stalled => f.write_str(
                "the session stalled: reader full, nothing consumed, nothing to send, no deadline",
            ),
            EndReason::Aborted => f.write_str("aborted by the session"),
            EndReason::Session(error) => write!(f, "session error: {error}"),
            EndReason::Io(error) => write!(f, "socket error: {error}"),
        }
    }
}

impl fmt::Display for EndKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A finished connection, as a client driver returns it: the session (with whatever state it
/// kept) and why the connection ended (also told to `Session::handle_end`).
#[derive(Debug)]
pub struct Ended<S> {
    /// The session.
    pub session: S,
    /// Why the connection ended.
    pub reason: EndReason,
}
