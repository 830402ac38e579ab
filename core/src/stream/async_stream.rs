//! The async `BufferedStream`, over any `futures_io::AsyncRead + AsyncWrite` (smol's and
//! async-io's sockets, the simulator's streams, tokio's through `tokio-util`'s compat layer).
//! Executor-agnostic: it only polls the stream it was given.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use super::{StreamError, seed_configs};
use crate::framing::{FrameKind, FramingError};
use crate::{ReaderConfig, StreamReader, StreamWriter, WriterConfig};

/// The seed's `BufferedStream` for async code: the same framing and bounds as
/// [`BufferedStream`](crate::BufferedStream), with `async fn`s.
///
/// ```
/// use concurrence_core::AsyncBufferedStream;
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// # struct Mem(std::io::Cursor<Vec<u8>>);
/// # impl futures_io::AsyncRead for Mem {
/// #     fn poll_read(mut self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>, buf: &mut [u8]) -> std::task::Poll<std::io::Result<usize>> {
/// #         std::task::Poll::Ready(std::io::Read::read(&mut self.0, buf))
/// #     }
/// # }
/// # impl futures_io::AsyncWrite for Mem {
/// #     fn poll_write(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>, buf: &[u8]) -> std::task::Poll<std::io::Result<usize>> { std::task::Poll::Ready(Ok(buf.len())) }
/// #     fn poll_flush(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> { std::task::Poll::Ready(Ok(())) }
/// #     fn poll_close(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> { std::task::Poll::Ready(Ok(())) }
/// # }
/// # let socket = Mem(std::io::Cursor::new(b"PING\r\n".to_vec()));
/// block_on(async {
///     let mut stream = AsyncBufferedStream::new(socket);
///     assert_eq!(stream.read_line().await?, Some(&b"PING"[..]));
///     stream.write_bytes(b"PONG\r\n").await?;
///     stream.flush().await
/// })?;
/// # Ok::<(), concurrence_core::StreamError>(())
/// ```
#[derive(Debug)]
pub struct AsyncBufferedStream<S> {
    stream: S,
    reader: StreamReader,
    writer: StreamWriter,
}

impl<S> AsyncBufferedStream<S> {
    /// A buffered stream with the seed's default sizes (8192 bytes each way).
    pub fn new(stream: S) -> Self {
        AsyncBufferedStream::with_sizes(stream, crate::DEFAULT_BUFFER_SIZE, 0, 0)
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
        AsyncBufferedStream::with_config(stream, reader, writer)
    }

    /// A buffered stream with full control of the bounds.
    pub fn with_config(stream: S, reader: ReaderConfig, writer: WriterConfig) -> Self {
        AsyncBufferedStream {
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

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncBufferedStream<S> {
    /// Receives once into the reader; end of stream closes it.
    fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        op: &'static str,
    ) -> Poll<Result<(), StreamError>> {
        loop {
            let spare = self.reader.spare();
            if spare.is_empty() {
                return Poll::Ready(Ok(()));
            }
            return match Pin::new(&mut self.stream).poll_read(cx, spare) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    self.reader.close();
                    Poll::Ready(Ok(()))
                }
                Poll::Ready(Ok(n)) => {
                    self.reader.filled(n);
                    Poll::Ready(Ok(()))
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Poll::Ready(Err(source)) => Poll::Ready(Err(StreamError::Io { op, source })),
            };
        }
    }

    /// Polls until a frame of `kind` is complete (its location) or the stream ends (`None`).
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
        kind: FrameKind,
        op: &'static str,
    ) -> Poll<Result<Option<crate::framing::Found>, StreamError>> {
        loop {
            if let Some(found) = self.reader.find(kind)? {
                return Poll::Ready(Ok(Some(found)));
            }
            if self.reader.is_closed() {
                return Poll::Ready(Ok(None));
            }
            if let Err(e) = std::task::ready!(self.poll_fill(cx, op)) {
                return Poll::Ready(Err(e));
            }
        }
    }

    async fn next_frame(
        &mut self,
        kind: FrameKind,
        op: &'static str,
    ) -> Result<Option<&[u8]>, StreamError> {
        let found = poll_fn(|cx| self.poll_frame(cx, kind, op)).await?;
        Ok(found.map(|f| self.reader.take_found(f)))
    }

    async fn next_array<const N: usize>(
        &mut self,
        op: &'static str,
    ) -> Result<Option<[u8; N]>, StreamError> {
        Ok(self
            .next_frame(FrameKind::Block(N), op)
            .await?
            .map(|bytes| {
                let mut out = [0; N];
                out.copy_from_slice(bytes);
                out
            }))
    }

    /// Reads one line (LF or CRLF), without its separator; `None` at a clean end of stream.
    ///
    /// # Errors
    /// `LineTooLong` past `max_line`, `UnexpectedEof` inside a line, or an I/O error.
    pub async fn read_line(&mut self) -> Result<Option<&[u8]>, StreamError> {
        self.next_frame(
            FrameKind::Line {
                include_separator: false,
            },
            "read_line",
        )
        .await
    }

    /// The next line, owned (for loops that also write between lines).
    ///
    /// # Errors
    /// As [`read_line`](Self::read_line).
    pub async fn next_line(&mut self) -> Result<Option<Vec<u8>>, StreamError> {
        Ok(self.read_line().await?.map(<[u8]>::to_vec))
    }

    /// A `futures_core::Stream` of the remaining lines (owned, without separators).
    pub fn lines(&mut self) -> AsyncLines<'_, S> {
        AsyncLines {
            stream: self,
            failed: false,
        }
    }

    /// Reads exactly `n` bytes.
    ///
    /// # Errors
    /// `BlockTooLarge` past `max_block`, `UnexpectedEof` if the stream ends first, or I/O.
    pub async fn read_bytes(&mut self, n: usize) -> Result<Option<&[u8]>, StreamError> {
        self.next_frame(FrameKind::Block(n), "read_bytes").await
    }

    /// Reads up to (and consumes) `delimiter`, returning what came before it.
    ///
    /// # Errors
    /// `LineTooLong` past `max_line`, `UnexpectedEof`, or I/O.
    pub async fn read_bytes_until(&mut self, delimiter: u8) -> Result<Option<&[u8]>, StreamError> {
        self.next_frame(FrameKind::Until(delimiter), "read_bytes_until")
            .await
    }

    /// Reads a little-endian `u16`.
    ///
    /// # Errors
    /// `UnexpectedEof` inside it, or I/O.
    pub async fn read_short(&mut self) -> Result<Option<u16>, StreamError> {
        Ok(self.next_array("read_short").await?.map(u16::from_le_bytes))
    }

    /// Reads a little-endian `u32`.
    ///
    /// # Errors
    /// `UnexpectedEof` inside it, or I/O.
    pub async fn read_int(&mut self) -> Result<Option<u32>, StreamError> {
        Ok(self.next_array("read_int").await?.map(u32::from_le_bytes))
    }

    /// File-compat `read(n)`: up to `n` bytes, at least one unless the stream ended.
    ///
    /// # Errors
    /// I/O errors.
    pub async fn read(&mut self, n: usize) -> Result<&[u8], StreamError> {
        Ok(self
            .next_frame(FrameKind::UpTo(n), "read")
            .await?
            .unwrap_or_default())
    }

    /// File-compat `readline()`: one line with its separator, the unterminated tail at end of
    /// stream, or empty once finished.
    ///
    /// # Errors
    /// `LineTooLong` past `max_line`, or I/O.
    pub async fn readline(&mut self) -> Result<Vec<u8>, StreamError> {
        match self
            .next_frame(
                FrameKind::Line {
                    include_separator: true,
                },
                "readline",
            )
            .await
        {
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
    pub async fn read_to_end(&mut self) -> Result<Vec<u8>, StreamError> {
        let limit = self.reader.config().max_block;
        let mut out = Vec::new();
        loop {
            let chunk = self.read(usize::MAX).await?;
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

    /// Buffers `bytes`, sending whenever a write buffer's worth is pending.
    ///
    /// # Errors
    /// I/O errors while sending.
    pub async fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        let size = self.writer.config().buffer_size.max(1);
        for piece in bytes.chunks(size) {
            if self.writer.pending_len() + piece.len() > size {
                poll_fn(|cx| self.poll_send_pending(cx, "write_bytes")).await?;
            }
            self.writer.write_bytes(piece)?;
        }
        Ok(())
    }

    /// Buffers one byte.
    ///
    /// # Errors
    /// I/O errors while sending.
    pub async fn write_byte(&mut self, byte: u8) -> Result<(), StreamError> {
        self.write_bytes(&[byte]).await
    }

    /// Buffers a little-endian `u16`.
    ///
    /// # Errors
    /// I/O errors while sending.
    pub async fn write_short(&mut self, value: u16) -> Result<(), StreamError> {
        self.write_bytes(&value.to_le_bytes()).await
    }

    /// Buffers a little-endian `u32`.
    ///
    /// # Errors
    /// I/O errors while sending.
    pub async fn write_int(&mut self, value: u32) -> Result<(), StreamError> {
        self.write_bytes(&value.to_le_bytes()).await
    }

    /// Sends everything pending and flushes the underlying stream.
    ///
    /// # Errors
    /// I/O errors, or `WriteZero` if the stream takes no bytes.
    pub async fn flush(&mut self) -> Result<(), StreamError> {
        poll_fn(|cx| self.poll_send_pending(cx, "flush")).await?;
        poll_fn(|cx| Pin::new(&mut self.stream).poll_flush(cx))
            .await
            .map_err(|source| StreamError::Io {
                op: "flush",
                source,
            })
    }

    /// Flushes, then closes the underlying stream (`poll_close`).
    ///
    /// # Errors
    /// As [`flush`](Self::flush), or the close's I/O error.
    pub async fn close(&mut self) -> Result<(), StreamError> {
        self.flush().await?;
        poll_fn(|cx| Pin::new(&mut self.stream).poll_close(cx))
            .await
            .map_err(|source| StreamError::Io {
                op: "close",
                source,
            })
    }

    fn poll_send_pending(
        &mut self,
        cx: &mut Context<'_>,
        op: &'static str,
    ) -> Poll<Result<(), StreamError>> {
        while self.writer.has_pending() {
            match std::task::ready!(
                Pin::new(&mut self.stream).poll_write(cx, self.writer.pending())
            ) {
                Ok(0) => return Poll::Ready(Err(StreamError::WriteZero { op })),
                Ok(n) => self.writer.consume(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Poll::Ready(Err(StreamError::Io { op, source })),
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// The lines of an [`AsyncBufferedStream`] as a `futures_core::Stream`, from
/// [`AsyncBufferedStream::lines`]. Ends at end of stream, or after yielding an error.
#[derive(Debug)]
pub struct AsyncLines<'a, S> {
    stream: &'a mut AsyncBufferedStream<S>,
    failed: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> futures_core::Stream for AsyncLines<'_, S> {
    type Item = Result<Vec<u8>, StreamError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.failed {
            return Poll::Ready(None);
        }
        let kind = FrameKind::Line {
            include_separator: false,
        };
        let this = &mut *self;
        match std::task::ready!(this.stream.poll_frame(cx, kind, "lines")) {
            Ok(Some(found)) => Poll::Ready(Some(Ok(this.stream.reader.take_found(found).to_vec()))),
            Ok(None) => Poll::Ready(None),
            Err(e) => {
                this.failed = true;
                Poll::Ready(Some(Err(e)))
            }
        }
    }
}
