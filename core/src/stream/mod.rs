//! `BufferedStream`: the seed's buffered stream over any byte stream, built on the framing
//! halves, in a blocking flavour (`std::io::Read + Write`) and an async one
//! (`futures_io::AsyncRead + AsyncWrite`, feature `futures-io`). Backends reuse these; none
//! writes framing of its own.

#[cfg(feature = "futures-io")]
mod async_stream;
mod blocking;
mod error;

#[cfg(feature = "futures-io")]
pub use async_stream::{AsyncBufferedStream, AsyncLines};
pub use blocking::{BufferedStream, Lines};
pub use error::StreamError;

use crate::{ReaderConfig, WriterConfig};

/// The seed's sizes: `buffer_size` for both halves unless a half's own size is non-zero.
fn seed_configs(
    buffer_size: usize,
    read_buffer_size: usize,
    write_buffer_size: usize,
) -> (ReaderConfig, WriterConfig) {
    let pick = |own: usize| if own == 0 { buffer_size } else { own };
    (
        ReaderConfig::default().with_buffer_size(pick(read_buffer_size)),
        WriterConfig::default().with_buffer_size(pick(write_buffer_size)),
    )
}

#[cfg(test)]
mod tests;
