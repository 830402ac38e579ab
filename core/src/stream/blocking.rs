//! The blocking `BufferedStream`, over any `std::io::Read + Write` (a backend's socket, a
//! `TcpStream`, a `UnixStream`, or an in-memory stream in tests).

use std::io::{self, Read, Write};

use super::{StreamError, seed_configs};
use crate::framing::{FrameKind, FramingError};
use crate::{ReaderConfig, StreamReader, StreamWriter, WriterConfig};

/// The seed's `BufferedStream`: framed reads and buffered writes over a blocking stream.
///
/// Reads block until a whole frame is buffered; `Ok(None)` means the stream ended cleanly
/// between frames, `Err(Framing(UnexpectedEof))` that it ended inside one. Writes are buffered
/// up to the write buffer size, then sent; [`flush`](Self::flush) sends the rest. Every bound
/// is the reader's and writer's ([`ReaderConfig`], [`WriterConfig`]).
///
/// ```
/// use std::io::Cursor;
/// use concurrence_core::BufferedStream;
///
/// // Any Read + Write works; a Cursor over a Vec stands in for a socket here.
/// let mut stream = BufferedStream::new(Cursor::new(b"hello\r\nworld\n".to_vec()));
/// assert_eq!(stream.read_line()?, Some(&b"hello"[..]));
/// assert_eq!(stream.read_line()?, Some(&b"world"[..]));
/// assert_eq!(stream.read_line()?, None);
/// # Ok::<(), concurrence_core::StreamError>(())
/// ```
#[derive(Debug)]
pub struct BufferedStream<S> {
    stream: S,
    reader: StreamReader,
    writer: StreamWriter,
}

impl<S> BufferedStream<S> {
    /// A buffered stream with the seed's default sizes (8192 bytes each way).
    pub fn new(stream: S) -> Self {
        BufferedStream::with_sizes(stream, crate::DEFAULT_BUFFER_SIZE, 0, 0)
    }

    /// The seed's constructor: `buffer_size` for both halves unless `read_buffer_size` or
    /// `write_buffer_size` is non-zero.
    pub fn with_sizes(
        stream: S,
        buffer_size: usize,
        read_buffer_size: usize,
        write_buffer_size: usize,
    ) -> Self {
        let (reader, writer) = seed_configs(buffer_size, read_buffer_size, write_buffer_size);
        BufferedStream::with_config(stream, reader, writer)
    }

    /// A buffered stream with full control of the bounds.
    pub fn with_config(stream: S, reader: ReaderConfig, writer: WriterConfig) -> Self {
        BufferedStream {
            stream,
            reader: StreamReader::new(reader),
            writer: StreamWriter::new(writer),
        }
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The underlying stream, mutably (reading from it directly skips the buffer).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The read half (what is buffered).
    pub fn reader(&self) -> &StreamReader {
        &self.reader
    }

    /// The write half (what is pending).
    pub fn writer(&self) -> &StreamWriter {
        &self.writer
    }
}

impl<S: Read + Write> BufferedStream<S> {
    /// Receives once into the reader; end of stream closes it.
    fn fill(&mut self, op: &'static str) -> Result<(), StreamError> {
        loop {
            let spare = self.reader.spare();
            if spare.is_empty() {
                // Only a frame past its bound fills the reader, and the search reports that
                // first; reaching here means the stream is closed.
                return Ok(());
            }
            match self.stream.read(spare) {
                Ok(0) => {
                    self.reader.close();
                    return Ok(());
                }
                Ok(n) => {
                    self.reader.filled(n);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(StreamError::Io { op, source }),
            }
        }
    }

    /// Blocks until a frame of `kind` is complete or the stream ends.
    fn next_frame(
        &mut self,
        kind: FrameKind,
        op: &'static str,
    ) -> Result<Option<&[u8]>, StreamError> {
        loop {
            if let Some(found) = self.reader.find(kind)? {
                return Ok(Some(self.reader.take_found(found)));
            }
            if self.reader.is_closed() {
                return Ok(None);
            }
            self.fill(op)?;
        }
    }

    fn next_array<const N: usize>(
        &mut self,
        op: &'static str,
    ) -> Result<Option<[u8; N]>, StreamError> {
        Ok(self.next_frame(FrameKind::Block(N), op)?.map(|bytes| {
            let mut out = [0; N];
            out.copy_from_slice(bytes);
            out
        }))
    }

    /// Reads one line (LF or CRLF), without its separator.
    ///
    /// # Errors
    /// `LineTooLong` past `max_line`, `UnexpectedEof` inside a line, or an I/O error.
    pub fn read_line(&mut self) -> Result<Option<&[u8]>, StreamError> {
        self.next_frame(
            FrameKind::Line {
                include_separator: false,
            },
            "read_line",
        )
    }

    /// An iterator over the remaining lines (owned, without separators).
    pub fn lines(&mut self) -> Lines<'_, S> {
        Lines {
            stream: self,
            failed: false,
        }
    }

    /// Reads exactly `n` bytes.
    ///
    /// # Errors
    /// `BlockTooLarge` past `max_block`, `UnexpectedEof` if the stream ends first, or I/O.
    pub fn read_bytes(&mut self, n: usize) -> Result<Option<&[u8]>, StreamError> {
        self.next_frame(FrameKind::Block(n), "read_bytes")
    }

    /// Reads up to (and consumes) `delimiter`, returning what came before it.
    ///
    /// # Errors
    /// `LineTooLong` past `max_line`, `UnexpectedEof`, or I/O.
    pub fn read_bytes_until(&mut self, delimiter: u8) -> Result<Option<&[u8]>, StreamError> {
        self.next_frame(FrameKind::Until(delimiter), "read_bytes_until")
    }

    /// Reads a little-endian `u16`.
    ///
    /// # Errors
    /// `UnexpectedEof` inside it, or I/O.
    pub fn read_short(&mut self) -> Result<Option<u16>, StreamError> {
        Ok(self.next_array("read_short")?.map(u16::from_le_bytes))
    }

    /// Reads a little-endian `u32`.
    ///
    /// # Errors
    /// `UnexpectedEof` inside it, or I/O.
    pub fn read_int(&mut self) -> Result<Option<u32>, StreamError> {
        Ok(self.next_array("read_int")?.map(u32::from_le_bytes))
    }

    /// File-compat `read(n)`: up to `n` bytes, at least one unless the stream ended (then
    /// empty).
    ///
    /// # Errors
    /// I/O errors.
    pub fn read(&mut self, n: usize) -> Result<&[u8], StreamError> {
        Ok(self
            .next_frame(FrameKind::UpTo(n), "read")?
            .unwrap_or_default())
    }

    /// File-compat `readline()`: one line with its separator, or the unterminated tail at end
    /// of stream, or empty once the stream is finished.
    ///
    /// # Errors
    /// `LineTooLong` past `max_line`, or I/O.
    pub fn readline(&mut self) -> Result<Vec<u8>, StreamError> {
        match self.next_frame(
            FrameKind::Line {
                include_separator: true,
            },
            "readline",
        ) {
            Ok(line) => Ok(line.map(<[u8]>::to_vec).unwrap_or_default()),
            Err(StreamError::Framing(FramingError::UnexpectedEof { .. })) => {
                Ok(self.reader.read_available().to_vec())
            }
            Err(e) => Err(e),
        }
    }

    /// File-compat `read()`: everything until end of stream, bounded by `max_block`.
    ///
    /// # Errors
    /// `BlockTooLarge` if more than `max_block` bytes arrive, or I/O.
    pub fn read_to_end(&mut self) -> Result<Vec<u8>, StreamError> {
        let limit = self.reader.config().max_block;
        let mut out = Vec::new();
        loop {
            let chunk = self.read(usize::MAX)?;
            if chunk.is_empty() {
                return Ok(out);
            }
            if out.len() + chunk.len() > limit {
                return Err(FramingError::BlockTooLarge {
                    requested: out.len() + chunk.len(),
                    limit,
                }
                .into());
            }
            out.extend_from_slice(chunk);
        }
    }

    /// Buffers `bytes`, sending whenever a write buffer's worth is pending. Large writes go out
    /// in write-buffer-sized pieces: memory stays bounded.
    ///
    /// # Errors
    /// I/O errors while sending.
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        let size = self.writer.config().buffer_size.max(1);
        for piece in bytes.chunks(size) {
            if self.writer.pending_len() + piece.len() > size {
                self.send_pending("write_bytes")?;
            }
            self.writer.write_bytes(piece)?;
        }
        Ok(())
    }

    /// Buffers one byte.
    ///
    /// # Errors
    /// I/O errors while sending.
    pub fn write_byte(&mut self, byte: u8) -> Result<(), StreamError> {
        self.write_bytes(&[byte])
    }

    /// Buffers a little-endian `u16`.
    ///
    /// # Errors
    /// I/O errors while sending.
    pub fn write_short(&mut self, value: u16) -> Result<(), StreamError> {
        self.write_bytes(&value.to_le_bytes())
    }

    /// Buffers a little-endian `u32`.
    ///
    /// # Errors
    /// I/O errors while sending.
    pub fn write_int(&mut self, value: u32) -> Result<(), StreamError> {
        self.write_bytes(&value.to_le_bytes())
    }

    /// Sends everything pending and flushes the underlying stream.
    ///
    /// # Errors
    /// I/O errors, or `WriteZero` if the stream takes no bytes.
    pub fn flush(&mut self) -> Result<(), StreamError> {
        self.send_pending("flush")?;
        self.stream.flush().map_err(|source| StreamError::Io {
            op: "flush",
            source,
        })
    }

    /// Flushes, then closes the underlying stream by dropping it.
    ///
    /// # Errors
    /// As [`flush`](Self::flush); the stream is dropped either way.
    pub fn close(mut self) -> Result<(), StreamError> {
        self.flush()
    }

    fn send_pending(&mut self, op: &'static str) -> Result<(), StreamError> {
        while self.writer.has_pending() {
            match self.stream.write(self.writer.pending()) {
                Ok(0) => return Err(StreamError::WriteZero { op }),
                Ok(n) => self.writer.consume(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(StreamError::Io { op, source }),
            }
        }
        Ok(())
    }
}

/// Iterator over a [`BufferedStream`]'s lines, from [`BufferedStream::lines`]. Ends at end of
/// stream; yields an error (and then ends) on a framing or I/O error.
#[derive(Debug)]
pub struct Lines<'a, S> {
    stream: &'a mut BufferedStream<S>,
    failed: bool,
}

impl<S: Read + Write> Iterator for Lines<'_, S> {
    type Item = Result<Vec<u8>, StreamError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.stream.read_line().map(|line| line.map(<[u8]>::to_vec));
        self.failed = next.is_err();
        next.transpose()
    }
}
