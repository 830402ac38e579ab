//! The named bounds of the framing layer, with the seed's sizes as defaults.
//!
//! Every buffer the reader and writer keep is bounded by one of these settings.

/// The seed's default buffer size (`BufferedStream(stream, buffer_size=8192)`).
pub const DEFAULT_BUFFER_SIZE: usize = 8192;

/// Bounds for a [`StreamReader`](crate::StreamReader).
///
/// Fields are public: start from `ReaderConfig::default()` and set what you need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReaderConfig {
    /// The buffer a reader starts with and shrinks back to after a large frame (the seed's
    /// `read_buffer_size`). Default 8192; 0 is treated as 1.
    pub buffer_size: usize,
    /// The longest line `read_line` (and frame `read_bytes_until`) accepts, not counting the
    /// separator. Default 64 KiB. Past it: `FramingError::LineTooLong`.
    pub max_line: usize,
    /// The largest block `read_bytes(n)` accepts. Default 8 MiB. Past it:
    /// `FramingError::BlockTooLarge`. The reader grows toward it only as bytes arrive.
    pub max_block: usize,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            buffer_size: DEFAULT_BUFFER_SIZE,
            max_line: 64 * 1024,
            max_block: 8 * 1024 * 1024,
        }
    }
}

impl ReaderConfig {
    /// This configuration with `buffer_size` set.
    #[must_use]
    pub fn with_buffer_size(mut self, buffer_size: usize) -> Self {
        self.buffer_size = buffer_size;
        self
    }

    /// This configuration with `max_line` set.
    #[must_use]
    pub fn with_max_line(mut self, max_line: usize) -> Self {
        self.max_line = max_line;
        self
    }

    /// This configuration with `max_block` set.
    #[must_use]
    pub fn with_max_block(mut self, max_block: usize) -> Self {
        self.max_block = max_block;
        self
    }

    /// The most bytes a reader with this configuration ever holds: the largest of the buffer
    /// size, the longest line with its CRLF, the largest block, and 8 (the widest integer).
    #[must_use]
    pub fn max_buffered(&self) -> usize {
        self.buffer_size
            .max(8)
            .max(self.max_line.saturating_add(2))
            .max(self.max_block)
    }
}

/// Bounds for a [`StreamWriter`](crate::StreamWriter).
///
/// Fields are public: start from `WriterConfig::default()` and set what you need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterConfig {
    /// The buffer a writer keeps between flushes and shrinks back to after a burst (the seed's
    /// `write_buffer_size`). Default 8192; `BufferedStream` flushes when this much is pending.
    pub buffer_size: usize,
    /// Back-pressure threshold: with this many bytes or more pending, the writer reports
    /// `is_backpressured()` and drivers stop feeding input until it drains. Default 64 KiB.
    pub high_water: usize,
    /// Hard cap on pending bytes: a write past it fails with
    /// `FramingError::WriteBufferFull`. Default 16 MiB.
    pub max_pending: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            buffer_size: DEFAULT_BUFFER_SIZE,
            high_water: 64 * 1024,
            max_pending: 16 * 1024 * 1024,
        }
    }
}

impl WriterConfig {
    /// This configuration with `buffer_size` set.
    #[must_use]
    pub fn with_buffer_size(mut self, buffer_size: usize) -> Self {
        self.buffer_size = buffer_size;
        self
    }

    /// This configuration with `high_water` set.
    #[must_use]
    pub fn with_high_water(mut self, high_water: usize) -> Self {
        self.high_water = high_water;
        self
    }

    /// This configuration with `max_pending` set.
    #[must_use]
    pub fn with_max_pending(mut self, max_pending: usize) -> Self {
        self.max_pending = max_pending;
        self
    }
}
