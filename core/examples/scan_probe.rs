//! One pass of one delimiter-scan variant over 16 MiB of lines, for `perf` and `valgrind
//! --tool=callgrind` (instruction counts do not drift with machine load, as bench times do).
//! `scan_probe <variant> <line bytes> <passes>`; 0 passes measures the set-up alone.
//! Variants: buffer_read_line, std_read_until, memchr_count, reader_read_line,
//! reader_read_until_any, lines_codec, any_codec, read_byte, bytes_get_u8.

use std::hint::black_box;
use std::io::{BufRead, Cursor};

use bytes::BytesMut;
use concurrence_core::{Buffer, ReaderConfig, StreamReader};
use tokio_util::codec::{AnyDelimiterCodec, Decoder, LinesCodec};

const INPUT: usize = 16 << 20;
const CHUNK: usize = 16 << 10;

/// 16 MiB of `line`-byte lines ending in CRLF (the framing bench's input).
fn input(line: usize) -> Vec<u8> {
    let text = b"set key:000000 0 0 5 some-payload-here ";
    let mut one: Vec<u8> = text.iter().copied().cycle().take(line - 2).collect();
    one.extend_from_slice(b"\r\n");
    one.iter().copied().cycle().take(INPUT).collect()
}

fn reader_pass(data: &[u8], any: bool) -> usize {
    let mut reader = StreamReader::new(ReaderConfig::default());
    let mut total = 0;
    for chunk in data.chunks(CHUNK) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let n = reader.feed(rest);
            rest = &rest[n..];
            if any {
                while let Ok(Some((frame, _))) = reader.read_until_any(b"\n;") {
                    total += black_box(frame).len();
                }
            } else {
                while let Ok(Some(line)) = reader.read_line(false) {
                    total += black_box(line).len();
                }
            }
        }
    }
    total
}

fn codec_pass<D: Decoder>(mut codec: D, data: &[u8]) -> usize
where
    D::Item: AsRef<[u8]>,
{
    let mut buf = BytesMut::with_capacity(8192);
    let mut total = 0;
    for chunk in data.chunks(CHUNK) {
        buf.extend_from_slice(chunk);
        while let Ok(Some(frame)) = codec.decode(&mut buf) {
            total += black_box(frame).as_ref().len();
        }
    }
    total
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let variant = args.get(1).map_or("buffer_read_line", String::as_str);
    let line: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(40);
    let passes: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let data = input(line);
    let mut buf = Buffer::new(data.len());
    buf.write_bytes(&data).expect("fits");
    buf.flip();
    let mut total = 0usize;
    for _ in 0..passes {
        total += match variant {
            "buffer_read_line" => {
                buf.rewind();
                let mut t = 0;
                while let Ok(line) = buf.read_line(false) {
                    t += black_box(&line).len();
                }
                t
            }
            "std_read_until" => {
                let mut cursor = Cursor::new(&data[..]);
                let mut line = Vec::with_capacity(128);
                let mut t = 0;
                loop {
                    line.clear();
                    match cursor.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => t += black_box(n),
                    }
                }
                t
            }
            "read_byte" => {
                buf.rewind();
                let mut sum = 0usize;
                while let Ok(byte) = buf.read_byte() {
                    sum = sum.wrapping_add(usize::from(black_box(byte)));
                }
                sum
            }
            "bytes_get_u8" => {
                let mut src = bytes::Bytes::from(data.clone());
                let mut sum = 0usize;
                while bytes::Buf::has_remaining(&src) {
                    sum = sum.wrapping_add(usize::from(black_box(bytes::Buf::get_u8(&mut src))));
                }
                sum
            }
            "memchr_count" => memchr::memchr_iter(b'\n', black_box(&data)).count(),
            "reader_read_line" => reader_pass(&data, false),
            "reader_read_until_any" => reader_pass(&data, true),
            "lines_codec" => codec_pass(LinesCodec::new_with_max_length(64 * 1024), &data),
            "any_codec" => codec_pass(
                AnyDelimiterCodec::new_with_max_length(b"\n;".to_vec(), b"\n".to_vec(), 64 * 1024),
                &data,
            ),
            other => panic!("no variant {other}"),
        };
    }
    black_box(total);
}
