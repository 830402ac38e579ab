//! `StreamWriter`: the write half of the seed's `BufferedStream`, as a sans-IO state machine.
//!
//! Writes are buffered; a driver sends [`StreamWriter::pending`] bytes and reports them with
//! [`StreamWriter::consume`]. A high-water mark tells the driver when to apply back-pressure.

use std::io;

use super::{FramingError, WriterConfig};

/// The write half of a buffered stream: protocols write, drivers send.
///
/// # Driving contract
///
/// 1. The protocol writes with `write_*` (or `std::io::Write`, e.g. `write!`).
/// 2. The driver sends from [`pending`](Self::pending) and reports what the socket took with
///    [`consume`](Self::consume), until nothing is pending or the socket would block.
/// 3. Back-pressure: while [`is_backpressured`](Self::is_backpressured) (pending bytes at or
///    above `high_water`), the driver stops feeding the protocol new input, and the protocol
///    should stop producing; once the peer reads and pending falls below the mark, input
///    resumes. A peer that never reads therefore cannot grow memory past roughly
///    `high_water` plus one reply; `max_pending` is the hard cap, enforced with
///    [`FramingError::WriteBufferFull`].
///
/// A failed write writes nothing. A buffer that grew past twice `high_water` (a reply larger
/// than back-pressure lets pile up, such as one large value) shrinks back to `buffer_size`
/// once drained; a smaller one is kept while the connection is busy (no reallocation per
/// reply) and given back when it goes idle.
///
/// ```
/// use concurrence_core::{StreamWriter, WriterConfig};
///
/// let mut writer = StreamWriter::new(WriterConfig::default());
/// writer.write_bytes(b"VALUE k 0 2\r\n")?;
/// writer.write_short(0x0a0d)?;
/// assert_eq!(writer.pending(), b"VALUE k 0 2\r\n\r\n");
/// writer.consume(6);
/// assert_eq!(writer.pending(), b"k 0 2\r\n\r\n");
/// # Ok::<(), concurrence_core::FramingError>(())
/// ```
#[derive(Debug)]
pub struct StreamWriter {
    config: WriterConfig,
    buf: Vec<u8>,
    start: usize,
    closed: bool,
}

impl StreamWriter {
    /// An empty writer with the given bounds. Allocates nothing until the first write.
    #[must_use]
    pub fn new(config: WriterConfig) -> Self {
        StreamWriter {
            config,
            buf: Vec::new(),
            start: 0,
            closed: false,
        }
    }

    /// The bounds this writer enforces.
    #[must_use]
    pub fn config(&self) -> &WriterConfig {
        &self.config
    }

    /// The bytes waiting to be sent, oldest first.
    #[must_use]
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// How many bytes are waiting to be sent.
    #[must_use]
    pub fn pending_len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// True when bytes wait to be sent.
    #[must_use]
    pub fn has_pending(&self) -> bool {
        self.pending_len() > 0
    }

    /// True when pending bytes reached `high_water`: stop feeding input until it drains.
    #[must_use]
    pub fn is_backpressured(&self) -> bool {
        self.pending_len() >= self.config.high_water.max(1)
    }

    /// Bytes currently allocated for buffering.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Records that the first `n` pending bytes were sent (clamped to what is pending).
    pub fn consume(&mut self, n: usize) {
        self.start += n.min(self.pending_len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            if self.buf.capacity() > self.burst_capacity() {
                self.buf.shrink_to(self.config.buffer_size);
            }
        }
    }

    /// Gives the buffer back when nothing is pending, so an idle connection holds none; the
    /// next write allocates `buffer_size` again. Drivers call it (through
    /// `Connection::release_idle_buffers`) before they wait.
    pub fn release_if_empty(&mut self) {
        if self.pending_len() == 0 && self.buf.capacity() > 0 {
            self.buf = Vec::new();
            self.start = 0;
        }
    }

    /// The most a drained buffer keeps: twice `high_water` (what back-pressure lets pending
    /// bytes reach, with room for one reply past it), and at least twice `buffer_size`.
    fn burst_capacity(&self) -> usize {
        self.config
            .high_water
            .saturating_mul(2)
            .max(self.config.buffer_size.saturating_mul(2))
    }

    /// Hands out the (empty) buffer when nothing is pending and it is no larger than
    /// [`burst_capacity`](Self::burst_capacity) (for a [`BufferPool`](crate::BufferPool): the
    /// next connection's large reply then needs no reallocation); the writer then holds none,
    /// as after [`release_if_empty`](Self::release_if_empty).
    pub(crate) fn lend_buffer(&mut self) -> Option<Vec<u8>> {
        let size = self.config.buffer_size.max(1);
        if self.pending_len() != 0
            || self.buf.capacity() < size
            || self.buf.capacity() > self.burst_capacity()
        {
            return None;
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        self.start = 0;
        Some(buf)
    }

    /// Takes `buf` (a lent, empty buffer) as its buffer if it holds none; otherwise gives it
    /// back.
    pub(crate) fn adopt_buffer(&mut self, mut buf: Vec<u8>) -> Option<Vec<u8>> {
        if self.buf.capacity() != 0 {
            return Some(buf);
        }
        buf.clear();
        self.buf = buf;
        self.start = 0;
        None
    }

    /// True while it holds a buffer.
    pub(crate) fn has_buffer(&self) -> bool {
        self.buf.capacity() != 0
    }

    /// Refuses further writes (the write side is being shut down); what is pending can still
    /// be sent and consumed.
    pub fn close(&mut self) {
        self.closed = true;
    }

    /// True after [`close`](Self::close).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Buffers `bytes`.
    ///
    /// # Errors
    /// [`FramingError::WriteBufferFull`] if pending bytes would exceed `max_pending`;
    /// [`FramingError::WriterClosed`] after [`close`](Self::close). Nothing is written then.
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), FramingError> {
        if self.closed {
            return Err(FramingError::WriterClosed);
        }
        let pending = self.pending_len();
        if pending.saturating_add(bytes.len()) > self.config.max_pending {
            return Err(FramingError::WriteBufferFull {
                pending,
                additional: bytes.len(),
                limit: self.config.max_pending,
            });
        }
        if self.start > 0 && self.buf.capacity() - self.buf.len() < bytes.len() {
            // Reuse the sent prefix before growing.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.capacity() == 0 {
            self.buf.reserve(self.config.buffer_size.max(bytes.len()));
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Buffers one byte.
    ///
    /// # Errors
    /// [`FramingError::WriteBufferFull`] past `max_pending`.
    pub fn write_byte(&mut self, byte: u8) -> Result<(), FramingError> {
        self.write_bytes(&[byte])
    }

    /// Buffers a little-endian `u16` (the seed's `write_short`).
    ///
    /// # Errors
    /// [`FramingError::WriteBufferFull`] past `max_pending`.
    pub fn write_short(&mut self, value: u16) -> Result<(), FramingError> {
        self.write_bytes(&value.to_le_bytes())
    }

    /// Buffers a little-endian `u32` (the seed's `write_int`).
    ///
    /// # Errors
    /// [`FramingError::WriteBufferFull`] past `max_pending`.
    pub fn write_int(&mut self, value: u32) -> Result<(), FramingError> {
        self.write_bytes(&value.to_le_bytes())
    }

    /// Buffers a big-endian (network order) `u16`.
    ///
    /// # Errors
    /// [`FramingError::WriteBufferFull`] past `max_pending`.
    pub fn write_u16_be(&mut self, value: u16) -> Result<(), FramingError> {
        self.write_bytes(&value.to_be_bytes())
    }

    /// Buffers a big-endian (network order) `u32`.
    ///
    /// # Errors
    /// [`FramingError::WriteBufferFull`] past `max_pending`.
    pub fn write_u32_be(&mut self, value: u32) -> Result<(), FramingError> {
        self.write_bytes(&value.to_be_bytes())
    }
}

/// `write!` support. A write past `max_pending` fails with `ErrorKind::OutOfMemory` carrying
/// the [`FramingError`]; `flush` does nothing (sending is the driver's job).
impl io::Write for StreamWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_bytes(buf)
            .map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
