//! The one error type of the framing layer (`StreamReader` / `StreamWriter`).
//!
//! "Not enough input yet" is not an error (it is `Ok(None)`); these are things that are wrong:
//! a frame past its configured bound, a stream that ended mid-frame, a writer that is full.

/// Why a framing operation failed. The reader or writer is unchanged by a failed call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// A line (or a frame ended by `read_bytes_until`'s delimiter) is longer than the reader's
    /// `max_line` setting. Raise `ReaderConfig::max_line` if such lines are legitimate.
    #[error("line longer than the limit of {limit} bytes (ReaderConfig::max_line)")]
    LineTooLong {
        /// The configured `max_line`.
        limit: usize,
    },
    /// `read_bytes(n)` asked for more than the reader's `max_block` setting allows.
    #[error(
        "block of {requested} bytes is larger than the limit of {limit} bytes (ReaderConfig::max_block)"
    )]
    BlockTooLarge {
        /// Bytes requested.
        requested: usize,
        /// The configured `max_block`.
        limit: usize,
    },
    /// The stream ended in the middle of a frame. The partial bytes stay in the reader
    /// (`read_available` returns them).
    #[error("stream ended in the middle of {op}: {buffered} bytes of an incomplete frame remain")]
    UnexpectedEof {
        /// The read that could not complete, e.g. `"read_line"`.
        op: &'static str,
        /// Bytes left in the reader.
        buffered: usize,
    },
    /// A write would take the writer's pending bytes past its `max_pending` setting: the peer
    /// is not reading, or the session ignored back-pressure.
    #[error(
        "write of {additional} bytes refused: {pending} bytes are already pending and the limit is {limit} (WriterConfig::max_pending)"
    )]
    WriteBufferFull {
        /// Bytes already waiting to be sent.
        pending: usize,
        /// Bytes the refused write carried.
        additional: usize,
        /// The configured `max_pending`.
        limit: usize,
    },
    /// A write after the write side was closed (the session said `CloseWrite`, `Close`, or
    /// failed): nothing more can be sent on this connection.
    #[error(
        "write refused: the write side is closed (the session already said CloseWrite or Close)"
    )]
    WriterClosed,
    /// A frame read with `read_frame` needs more bytes than the reader ever holds
    /// (`ReaderConfig::max_buffered`): it could never complete.
    #[error(
        "frame needs {needed} bytes, more than the reader holds ({limit}, ReaderConfig::max_buffered)"
    )]
    FrameTooLarge {
        /// Bytes the frame needs at least.
        needed: usize,
        /// The reader's `max_buffered()`.
        limit: usize,
    },
    /// `read_until_any` was given no delimiter, or more than three.
    #[error("read_until_any takes 1 to 3 delimiter bytes, got {given}")]
    InvalidDelimiters {
        /// How many were given.
        given: usize,
    },
}
