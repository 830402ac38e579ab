//! The one error type of the `BufferedStream` layer: framing errors plus the I/O underneath.

use std::io;

use crate::FramingError;

/// Why a [`BufferedStream`](crate::BufferedStream) (or its async twin) call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The underlying stream failed (a timeout from a backend socket arrives here too, with
    /// `ErrorKind::TimedOut`; the stream stays usable after it).
    #[error("I/O error during {op}: {source}")]
    Io {
        /// The stream operation, e.g. `"read_line"`.
        op: &'static str,
        /// What the underlying stream reported.
        #[source]
        source: io::Error,
    },
    /// A frame broke a bound, or the stream ended mid-frame.
    #[error(transparent)]
    Framing(#[from] FramingError),
    /// The underlying stream accepted zero bytes: the peer no longer takes data.
    #[error("the stream accepted no bytes during {op}: the peer is gone")]
    WriteZero {
        /// The stream operation, e.g. `"flush"`.
        op: &'static str,
    },
}

impl StreamError {
    /// True for an I/O error of kind `TimedOut` or `WouldBlock` (a backend's timeout).
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, StreamError::Io { source, .. }
            if matches!(source.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock))
    }
}

impl From<StreamError> for io::Error {
    fn from(error: StreamError) -> io::Error {
        match error {
            StreamError::Io { source, .. } => source,
            StreamError::Framing(FramingError::UnexpectedEof { .. }) => {
                io::Error::new(io::ErrorKind::UnexpectedEof, error)
            }
            StreamError::WriteZero { .. } => io::Error::new(io::ErrorKind::WriteZero, error),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}
