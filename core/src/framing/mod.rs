//! Framing: the two halves of the seed's `BufferedStream` as sans-IO state machines.
//!
//! [`StreamReader`] is fed bytes and answers framed reads; [`StreamWriter`] buffers writes and
//! hands out bytes to send. Both are bounded by named settings ([`ReaderConfig`],
//! [`WriterConfig`]).

mod config;
mod error;
mod frame;
mod reader;
mod writer;

pub use config::{DEFAULT_BUFFER_SIZE, ReaderConfig, WriterConfig};
pub use error::FramingError;
pub use frame::FrameCursor;
pub(crate) use frame::FrameNotes;
#[cfg(feature = "futures-io")]
pub(crate) use reader::Found;
pub(crate) use reader::FrameKind;
pub use reader::StreamReader;
pub use writer::StreamWriter;

#[cfg(test)]
mod tests;
