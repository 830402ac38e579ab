//! `StreamReader::read_line` and `read_until_any` against tokio-util's `LinesCodec` and
//! `AnyDelimiterCodec`, all decoding the same 16 MiB of lines (8, 40, 200 and 2,000 bytes)
//! delivered in 16 KiB chunks, as a socket would. Run: `cargo bench -p concurrence-core --bench framing`.

use std::hint::black_box;

use bytes::BytesMut;
use concurrence_core::{ReaderConfig, StreamReader};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio_util::codec::{AnyDelimiterCodec, Decoder, LinesCodec};

const INPUT: usize = 16 << 20;
const CHUNK: usize = 16 << 10;

const LINES: [usize; 4] = [8, 40, 200, 2000];

/// 16 MiB of `line`-byte lines ending in CRLF.
fn input(line: usize) -> Vec<u8> {
    let text = b"set key:000000 0 0 5 some-payload-here ";
    let mut one: Vec<u8> = text.iter().copied().cycle().take(line - 2).collect();
    one.extend_from_slice(b"\r\n");
    one.iter().copied().cycle().take(INPUT).collect()
}

/// Feeds `data` to a tokio-util decoder in socket-sized chunks and decodes every frame.
fn decode_all<D: Decoder>(mut codec: D, data: &[u8]) -> usize
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

/// Feeds `data` to a fresh `StreamReader` in socket-sized chunks; after each feed, `drain`
/// takes the frames (returning their total length).
fn feed_chunks(data: &[u8], mut drain: impl FnMut(&mut StreamReader) -> usize) -> usize {
    let mut reader = StreamReader::new(ReaderConfig::default());
    let mut total = 0;
    for chunk in data.chunks(CHUNK) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let n = reader.feed(rest);
            rest = &rest[n..];
            total += drain(&mut reader);
        }
    }
    total
}

fn framing(c: &mut Criterion) {
    for line in LINES {
        framing_lines(c, line);
    }
}

fn framing_lines(c: &mut Criterion, line: usize) {
    let data = input(line);
    let mut group = c.benchmark_group(format!("lines_16MiB_{line}B_in_16KiB_chunks"));
    group.sample_size(20);
    group.throughput(Throughput::Bytes(data.len() as u64));

    group.bench_function("StreamReader::read_line", |b| {
        b.iter(|| {
            feed_chunks(&data, |reader| {
                let mut total = 0;
                while let Ok(Some(line)) = reader.read_line(false) {
                    total += black_box(line).len();
                }
                total
            })
        })
    });
    group.bench_function("StreamReader::read_until_any", |b| {
        b.iter(|| {
            feed_chunks(&data, |reader| {
                let mut total = 0;
                while let Ok(Some((frame, _))) = reader.read_until_any(b"\n;") {
                    total += black_box(frame).len();
                }
                total
            })
        })
    });
    // The floor of any reader fed by copies: `feed` each chunk and take it all back out, no
    // scan. Both sides of the ratio pay this copy (`LinesCodec` into its `BytesMut`), so
    // `LinesCodec`'s time over this one bounds what any scan can reach.
    group.bench_function("floor: StreamReader::feed + read_available", |b| {
        b.iter(|| feed_chunks(&data, |reader| black_box(reader.read_available()).len()))
    });
    group.bench_function("tokio_util::LinesCodec", |b| {
        b.iter(|| decode_all(LinesCodec::new_with_max_length(64 * 1024), &data))
    });
    group.bench_function("tokio_util::AnyDelimiterCodec", |b| {
        b.iter(|| {
            let codec =
                AnyDelimiterCodec::new_with_max_length(b"\n;".to_vec(), b"\n".to_vec(), 64 * 1024);
            decode_all(codec, &data)
        })
    });
    group.finish();
}

criterion_group!(benches, framing);
criterion_main!(benches);
