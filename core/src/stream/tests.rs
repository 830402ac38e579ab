//! Tests for both `BufferedStream` flavours over an in-memory stream that hands out input in
//! chunks of a chosen size and can fail on cue (the seed framework's stream tests, restated).

use std::collections::VecDeque;
use std::io::{self, Cursor, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::*;
use crate::{AsyncBufferedStream, BufferedStream, FramingError};

/// Input in chunks of at most `chunk` bytes (optionally with errors queued before reads),
/// output collected, at most `write_chunk` bytes per write.
struct Chunked {
    input: Cursor<Vec<u8>>,
    chunk: usize,
    read_errors: VecDeque<io::ErrorKind>,
    output: Vec<u8>,
    write_chunk: usize,
}

impl Chunked {
    fn new(input: &[u8], chunk: usize) -> Self {
        Chunked {
            input: Cursor::new(input.to_vec()),
            chunk,
            read_errors: VecDeque::new(),
            output: Vec::new(),
            write_chunk: usize::MAX,
        }
    }
}

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(kind) = self.read_errors.pop_front() {
            return Err(io::Error::new(kind, "injected"));
        }
        let n = buf.len().min(self.chunk);
        self.input.read(&mut buf[..n])
    }
}

impl Write for Chunked {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.write_chunk);
        self.output.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl futures_io::AsyncRead for Chunked {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Read::read(self.get_mut(), buf))
    }
}

impl futures_io::AsyncWrite for Chunked {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Write::write(self.get_mut(), buf))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

const SEED_LINES: [&[u8]; 6] = [
    b"hello world!",
    b"Test",
    b"",
    b"Piet",
    b"Klaas",
    b"PietBlaat",
];

fn seed_stream() -> Vec<u8> {
    let mut stream = Vec::new();
    for (i, line) in SEED_LINES.iter().enumerate() {
        stream.extend_from_slice(line);
        stream.extend_from_slice(if i % 2 == 0 { b"\r\n" } else { b"\n" });
    }
    stream
}

#[test]
fn seed_lines_in_chunks_of_4_to_128() {
    let want: Vec<Vec<u8>> = SEED_LINES.iter().map(|l| l.to_vec()).collect();
    for chunk in 4..=128 {
        let mut stream = BufferedStream::with_sizes(Chunked::new(&seed_stream(), chunk), 16, 0, 0);
        let got: Vec<Vec<u8>> = stream.lines().collect::<Result<_, _>>().unwrap();
        assert_eq!(got, want, "chunk {chunk}");
        let mut stream =
            AsyncBufferedStream::with_sizes(Chunked::new(&seed_stream(), chunk), 16, 0, 0);
        let got: Vec<Vec<u8>> = futures_lite::future::block_on(async {
            use futures_lite::StreamExt;
            stream.lines().try_collect().await
        })
        .unwrap();
        assert_eq!(got, want, "async, chunk {chunk}");
    }
}

#[test]
fn read_n_matches_a_cursor_for_every_buffer_and_chunk_size() {
    let data: Vec<u8> = (0..200u8).collect();
    for buffer_size in 1..=1024 {
        for chunk in 1..=16 {
            let mut stream =
                BufferedStream::with_sizes(Chunked::new(&data, chunk), buffer_size, 0, 0);
            let mut cursor = Cursor::new(&data);
            let mut got = Vec::new();
            let mut want = Vec::new();
            for n in (1..=7).cycle() {
                let piece = stream.read(n).unwrap().to_vec();
                assert!(piece.len() <= n);
                let mut expected = vec![0; piece.len()];
                cursor.read_exact(&mut expected).unwrap();
                want.extend_from_slice(&expected);
                if piece.is_empty() {
                    break;
                }
                got.extend_from_slice(&piece);
            }
            assert_eq!(got, data, "buffer {buffer_size}, chunk {chunk}");
            assert_eq!(want, data);
        }
    }
}

#[test]
fn framed_reads_and_file_compat_reads() {
    let mut input = b"key;".to_vec();
    input.extend_from_slice(&7u16.to_le_bytes());
    input.extend_from_slice(&9u32.to_le_bytes());
    input.extend_from_slice(b"blockline\r\ntail");
    let mut stream = BufferedStream::new(Chunked::new(&input, 3));
    assert_eq!(stream.read_bytes_until(b';').unwrap(), Some(&b"key"[..]));
    assert_eq!(stream.read_short().unwrap(), Some(7));
    assert_eq!(stream.read_int().unwrap(), Some(9));
    assert_eq!(stream.read_bytes(5).unwrap(), Some(&b"block"[..]));
    assert_eq!(stream.readline().unwrap(), b"line\r\n");
    assert_eq!(
        stream.readline().unwrap(),
        b"tail",
        "the tail at end of stream"
    );
    assert_eq!(stream.readline().unwrap(), b"");
    assert_eq!(stream.read_line().unwrap(), None);

    let mut short = BufferedStream::new(Chunked::new(b"abc", 1));
    assert!(matches!(
        short.read_bytes(4),
        Err(StreamError::Framing(FramingError::UnexpectedEof {
            buffered: 3,
            ..
        }))
    ));
    let mut all = BufferedStream::new(Chunked::new(&input, 5));
    assert_eq!(all.read_to_end().unwrap(), input);
}

#[test]
fn read_to_end_and_lines_are_bounded() {
    let data = vec![b'x'; 100];
    let reader = ReaderConfig::default().with_max_block(64).with_max_line(10);
    let mut stream =
        BufferedStream::with_config(Chunked::new(&data, 16), reader, WriterConfig::default());
    assert!(matches!(
        stream.read_to_end(),
        Err(StreamError::Framing(FramingError::BlockTooLarge {
            limit: 64,
            ..
        }))
    ));
    let mut lines =
        BufferedStream::with_config(Chunked::new(&data, 16), reader, WriterConfig::default());
    let mut iter = lines.lines();
    assert!(matches!(
        iter.next(),
        Some(Err(StreamError::Framing(FramingError::LineTooLong {
            limit: 10
        })))
    ));
    assert!(iter.next().is_none(), "the iterator ends after an error");
}

#[test]
fn io_errors_are_typed_and_leave_the_stream_usable() {
    let mut chunked = Chunked::new(b"after\n", 64);
    chunked.read_errors.push_back(io::ErrorKind::TimedOut);
    chunked.read_errors.push_back(io::ErrorKind::Interrupted);
    let mut stream = BufferedStream::new(chunked);
    let err = stream.read_line().unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(err.to_string().contains("read_line"));
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::TimedOut);
    // Interrupted is retried; the line arrives.
    assert_eq!(stream.read_line().unwrap(), Some(&b"after"[..]));
}

#[test]
fn writes_are_buffered_then_sent_in_pieces() {
    let mut chunked = Chunked::new(b"", 1);
    chunked.write_chunk = 3;
    let mut stream = BufferedStream::with_sizes(chunked, 8, 0, 0);
    stream.write_bytes(b"abc").unwrap();
    stream.write_byte(b'd').unwrap();
    assert!(
        stream.get_ref().output.is_empty(),
        "buffered below the write size"
    );
    stream.write_short(0x3231).unwrap();
    stream.write_int(0x3635_3433).unwrap();
    assert_eq!(
        stream.get_ref().output,
        b"abcd12",
        "sent when the buffer filled"
    );
    let big = vec![b'z'; 100];
    stream.write_bytes(&big).unwrap();
    assert!(
        stream.writer().pending_len() <= 8,
        "large writes stay bounded"
    );
    stream.flush().unwrap();
    let mut want = b"abcd123456".to_vec();
    want.extend_from_slice(&big);
    assert_eq!(stream.get_ref().output, want);

    let mut zero = Chunked::new(b"", 1);
    zero.write_chunk = 0;
    let mut stuck = BufferedStream::new(zero);
    stuck.write_bytes(b"x").unwrap();
    assert!(matches!(
        stuck.flush(),
        Err(StreamError::WriteZero { op: "flush" })
    ));
}

#[test]
fn async_flavour_reads_writes_and_closes() {
    futures_lite::future::block_on(async {
        let mut chunked = Chunked::new(b"one\r\ntwo\npartial", 2);
        chunked.write_chunk = 2;
        let mut stream = AsyncBufferedStream::with_sizes(chunked, 4, 0, 0);
        assert_eq!(stream.read_line().await.unwrap(), Some(&b"one"[..]));
        assert_eq!(stream.next_line().await.unwrap(), Some(b"two".to_vec()));
        assert_eq!(stream.readline().await.unwrap(), b"partial");
        assert_eq!(stream.read_line().await.unwrap(), None);
        assert_eq!(stream.read(3).await.unwrap(), b"");
        stream.write_bytes(b"reply one\r\n").await.unwrap();
        stream.write_byte(b'!').await.unwrap();
        stream.write_short(0x3231).await.unwrap();
        stream.write_int(0x3635_3433).await.unwrap();
        stream.close().await.unwrap();
        assert_eq!(stream.get_ref().output, b"reply one\r\n!123456");

        let mut ints =
            AsyncBufferedStream::new(Chunked::new(&[1, 0, 2, 0, 0, 0, 0xaa, b';', 9], 1));
        assert_eq!(ints.read_short().await.unwrap(), Some(1));
        assert_eq!(ints.read_int().await.unwrap(), Some(2));
        assert_eq!(
            ints.read_bytes_until(b';').await.unwrap(),
            Some(&[0xaa][..])
        );
        assert_eq!(ints.read_bytes(1).await.unwrap(), Some(&[9][..]));
        assert_eq!(ints.read_to_end().await.unwrap(), b"");
    });
}

#[test]
fn seed_sizes_pick_the_halves() {
    let (r, w) = seed_configs(100, 0, 7);
    assert_eq!((r.buffer_size, w.buffer_size), (100, 7));
    let stream = BufferedStream::with_sizes(Chunked::new(b"", 1), 8192, 16, 0);
    assert_eq!(stream.reader().config().buffer_size, 16);
    assert_eq!(stream.writer().config().buffer_size, 8192);
}
