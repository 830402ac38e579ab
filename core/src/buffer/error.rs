//! The one error type of the `Buffer` layer.
//!
//! Every failing `Buffer` call returns one of these and leaves the buffer exactly as it was.

/// Why a [`Buffer`](crate::Buffer) operation failed. The buffer is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BufferError {
    /// A write needed more room than `limit - position` offers.
    #[error(
        "buffer overflow: {op} needs {needed} bytes but only {remaining} remain before the limit"
    )]
    Overflow {
        /// The operation that failed, e.g. `"write_int"`.
        op: &'static str,
        /// Bytes the operation needed.
        needed: usize,
        /// Bytes between position and limit.
        remaining: usize,
    },
    /// A read (or skip, or delimiter search) needed more bytes than `limit - position` holds.
    #[error(
        "buffer underflow: {op} needs {needed} bytes but only {remaining} remain before the limit"
    )]
    Underflow {
        /// The operation that failed, e.g. `"read_line"`.
        op: &'static str,
        /// Bytes the operation needed (for a delimiter search: one more than remain).
        needed: usize,
        /// Bytes between position and limit.
        remaining: usize,
    },
    /// An index, range or size outside what the buffer allows.
    #[error("invalid argument to {op}: {reason}")]
    InvalidArgument {
        /// The operation that failed, e.g. `"set_limit"`.
        op: &'static str,
        /// What was wrong, with the numbers involved.
        reason: String,
    },
}
