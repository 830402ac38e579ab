//! `SocketError`: the one error type of every backend's sockets and servers (the two socket
//! backends and the simulator): every error names the operation and the address.

use std::io;
use std::time::Duration;

use concurrence_core::{AddressError, BufferError, SocketStateError};

/// Why a socket or server operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SocketError {
    /// The operating system refused the operation.
    #[error("{op} on {address} failed: {source}")]
    Io {
        /// The operation, e.g. `"connect"`.
        op: &'static str,
        /// The address involved, as text.
        address: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The operation did not complete within its timeout. A read, write or accept that timed
    /// out leaves the socket usable; a connect that timed out leaves it closed.
    #[error("{op} on {address} timed out after {timeout:?}")]
    TimedOut {
        /// The operation, e.g. `"read"`.
        op: &'static str,
        /// The address involved.
        address: String,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// The socket is in the wrong state for the operation.
    #[error(transparent)]
    State(#[from] SocketStateError),
    /// An address could not be parsed.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// A `Buffer` could not take the bytes.
    #[error(transparent)]
    Buffer(#[from] BufferError),
    /// `read_socket` received a message without a file descriptor.
    #[error("read_socket on {address}: the message carried no file descriptor")]
    NoDescriptor {
        /// The address involved.
        address: String,
    },
    /// The operation needs the other kind of socket (e.g. `write_socket` on TCP).
    #[error("{op} needs a {needs} socket, but {address} is not one")]
    WrongKind {
        /// The operation.
        op: &'static str,
        /// What it needs, e.g. "connected Unix".
        needs: &'static str,
        /// The address involved.
        address: String,
    },
}

impl SocketError {
    /// True for [`SocketError::TimedOut`].
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, SocketError::TimedOut { .. })
    }

    /// The OS error kind, for `Io` and `TimedOut` errors.
    #[must_use]
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            SocketError::Io { source, .. } => Some(source.kind()),
            SocketError::TimedOut { .. } => Some(io::ErrorKind::TimedOut),
            _ => None,
        }
    }

    /// An [`Io`](SocketError::Io) error for `op` on `address`.
    pub fn io(op: &'static str, address: impl ToString, source: io::Error) -> Self {
        SocketError::Io {
            op,
            address: address.to_string(),
            source,
        }
    }
}

impl From<SocketError> for io::Error {
    fn from(error: SocketError) -> io::Error {
        match error {
            SocketError::Io { source, .. } => source,
            SocketError::TimedOut { .. } => io::Error::new(io::ErrorKind::TimedOut, error),
            other => io::Error::other(other),
        }
    }
}
