//! `Buffer` against the usual alternatives, each on the same input in the same run:
//! std `BufRead::read_until` on a `Cursor`, `bytes::BytesMut` + `memchr`, and a bare
//! `memchr_iter` count (the scanning limit). Run: `cargo bench -p concurrence-core --bench buffer`.

use std::hint::black_box;
use std::io::{BufRead, Cursor};

use bytes::{Buf, BufMut, BytesMut};
use concurrence_core::Buffer;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const INPUT: usize = 16 << 20;
const SMALL: usize = 1 << 20;
/// Line lengths (with the LF): short and long lines must both win.
const LINES: [usize; 4] = [8, 40, 200, 2000];

/// 16 MiB of `line`-byte lines: text and an LF.
fn lines_input(line: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(INPUT);
    let mut k = 0u32;
    while data.len() + line <= INPUT {
        let start = data.len();
        let label = format!("{k:08} ");
        data.extend_from_slice(&label.as_bytes()[..label.len().min(line - 1)]);
        while data.len() < start + line - 1 {
            data.push(b"abcdefghijklmnopqrstuvwxyz"[data.len() % 26]);
        }
        data.push(b'\n');
        k += 1;
    }
    data
}

/// The floor of a line reader on the instructions our scans use, in safe stable Rust: 64-byte
/// blocks masked through `wide` (SSE2 on x86-64), each line end found with `trailing_zeros`,
/// each line handed to `black_box` as a slice; no state kept between calls, no error path, no
/// CR handling. (The scratch program.)
fn mask_walk(data: &[u8]) -> usize {
    let newline = wide::u8x16::splat(b'\n');
    let (mut total, mut start, mut base) = (0, 0, 0);
    let mut blocks = data.chunks_exact(64);
    for block in &mut blocks {
        let mut mask = 0u64;
        for (i, lane) in block.chunks_exact(16).enumerate() {
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(lane);
            let [lo, hi, _, _] = wide::u8x16::new(bytes)
                .cmp_eq(newline)
                .move_mask()
                .to_le_bytes();
            mask |= u64::from(u16::from_le_bytes([lo, hi])) << (16 * i);
        }
        while mask != 0 {
            let end = base + mask.trailing_zeros() as usize;
            total += black_box(&data[start..end]).len();
            start = end + 1;
            mask &= mask - 1;
        }
        base += 64;
    }
    for (i, &byte) in blocks.remainder().iter().enumerate() {
        if byte == b'\n' {
            total += black_box(&data[start..base + i]).len();
            start = base + i + 1;
        }
    }
    total
}

/// The floor of a *stateful* reader with `Buffer::read_line`'s shape: a `&mut self` method
/// keeping its position and the current block's mask in the struct between calls (captured by
/// the bench closure, as the `Buffer` is), stripping a CR, returning `Result<Cow<[u8]>, _>`,
/// on the same `wide` masks. What it leaves out: shared storage, a limit other than the end,
/// the linear-rescan accounting, the check that the position was not moved by another read.
struct MinimalLineReader {
    data: Vec<u8>,
    pos: usize,
    /// Start of the block `mask` describes; `mask` has the block's unread LF bits.
    base: usize,
    mask: u64,
}

impl MinimalLineReader {
    fn new(data: &[u8]) -> Self {
        let mut reader = MinimalLineReader {
            data: data.to_vec(),
            pos: 0,
            base: 0,
            mask: 0,
        };
        reader.rewind();
        reader
    }

    fn rewind(&mut self) {
        self.pos = 0;
        self.base = 0;
        self.mask = self.block_mask(0);
    }

    #[inline]
    fn block_mask(&self, base: usize) -> u64 {
        let newline = wide::u8x16::splat(b'\n');
        if let Some(full) = self.data.get(base..).and_then(<[u8]>::first_chunk::<64>) {
            let lane = |at: usize| {
                let mut bytes = [0u8; 16];
                bytes.copy_from_slice(&full[at..at + 16]);
                let [lo, hi, _, _] = wide::u8x16::new(bytes)
                    .cmp_eq(newline)
                    .move_mask()
                    .to_le_bytes();
                u64::from(u16::from_le_bytes([lo, hi]))
            };
            return lane(0) | (lane(16) << 16) | (lane(32) << 32) | (lane(48) << 48);
        }
        let block = &self.data[base..self.data.len().min(base + 64)];
        let mut mask = 0u64;
        for (i, lane) in block.chunks(16).enumerate() {
            let mut bytes = [0u8; 16];
            bytes[..lane.len()].copy_from_slice(lane);
            let [lo, hi, _, _] = wide::u8x16::new(bytes)
                .cmp_eq(newline)
                .move_mask()
                .to_le_bytes();
            let real = if lane.len() == 16 {
                u16::MAX
            } else {
                (1u16 << lane.len()) - 1
            };
            mask |= u64::from(u16::from_le_bytes([lo, hi]) & real) << (16 * i);
        }
        mask
    }

    #[inline]
    fn read_line(&mut self) -> Result<std::borrow::Cow<'_, [u8]>, ()> {
        while self.mask == 0 {
            self.base += 64;
            if self.base >= self.data.len() {
                return Err(());
            }
            self.mask = self.block_mask(self.base);
        }
        let lf = self.base + self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        let start = self.pos;
        self.pos = lf + 1;
        let line = &self.data[start..lf];
        Ok(std::borrow::Cow::Borrowed(match line {
            [head @ .., b'\r'] => head,
            _ => line,
        }))
    }
}

fn filled_buffer(data: &[u8]) -> Buffer {
    let mut buf = Buffer::new(data.len());
    buf.write_bytes(data).expect("capacity equals the data");
    buf.flip();
    buf
}

fn scanning(c: &mut Criterion) {
    for line in LINES {
        scanning_lines(c, line);
    }
}

fn scanning_lines(c: &mut Criterion, line: usize) {
    let data = lines_input(line);
    let mut group = c.benchmark_group(format!("scan_16MiB_{line}B_lines"));
    group.sample_size(10);
    group.throughput(Throughput::Bytes(data.len() as u64));

    let mut buf = filled_buffer(&data);
    group.bench_function("Buffer::read_line", |b| {
        b.iter(|| {
            buf.rewind();
            let mut total = 0;
            while let Ok(line) = buf.read_line(false) {
                total += black_box(&line).len();
            }
            total
        })
    });
    group.bench_function("Buffer::read_bytes_until", |b| {
        b.iter(|| {
            buf.rewind();
            let mut total = 0;
            while let Ok(line) = buf.read_bytes_until(b'\n') {
                total += black_box(&line).len();
            }
            total
        })
    });
    group.bench_function("std::BufRead::read_until", |b| {
        let mut line = Vec::with_capacity(128);
        b.iter(|| {
            let mut cursor = Cursor::new(&data[..]);
            let mut total = 0;
            loop {
                line.clear();
                match cursor.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += black_box(&line).len() + n,
                }
            }
            total
        })
    });
    let template = BytesMut::from(&data[..]);
    group.bench_function("BytesMut+memchr::split_to", |b| {
        b.iter_batched(
            || template.clone(),
            |mut bytes| {
                let mut total = 0;
                while let Some(i) = memchr::memchr(b'\n', &bytes) {
                    let line = bytes.split_to(i + 1);
                    total += black_box(&line).len();
                }
                total
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("memchr_iter_count", |b| {
        b.iter(|| memchr::memchr_iter(b'\n', black_box(&data)).count())
    });
    group.bench_function("floor: wide mask walk", |b| {
        b.iter(|| mask_walk(black_box(&data)))
    });
    let mut minimal = MinimalLineReader::new(&data);
    group.bench_function("floor: minimal stateful read_line", |b| {
        b.iter(|| {
            minimal.rewind();
            let mut total = 0;
            while let Ok(line) = minimal.read_line() {
                total += black_box(&line).len();
            }
            total
        })
    });
    group.finish();
}

fn writing(c: &mut Criterion) {
    let piece = [7u8; 16];
    let mut group = c.benchmark_group("write_1MiB_in_16B_pieces");
    group.throughput(Throughput::Bytes(SMALL as u64));
    let mut buf = Buffer::new(SMALL);
    group.bench_function("Buffer::write_bytes", |b| {
        b.iter(|| {
            buf.clear();
            while buf.write_bytes(black_box(&piece)).is_ok() {}
            buf.position()
        })
    });
    let mut bytes = BytesMut::with_capacity(SMALL);
    group.bench_function("BytesMut::put_slice", |b| {
        b.iter(|| {
            bytes.clear();
            while bytes.len() + piece.len() <= SMALL {
                bytes.put_slice(black_box(&piece));
            }
            bytes.len()
        })
    });
    let mut vec = Vec::with_capacity(SMALL);
    group.bench_function("Vec::extend_from_slice", |b| {
        b.iter(|| {
            vec.clear();
            while vec.len() + piece.len() <= SMALL {
                vec.extend_from_slice(black_box(&piece));
            }
            vec.len()
        })
    });
    group.finish();
}

fn single_bytes(c: &mut Criterion) {
    let mut group = c.benchmark_group("single_byte_1MiB");
    group.throughput(Throughput::Bytes(SMALL as u64));
    let mut buf = Buffer::new(SMALL);
    group.bench_function("Buffer::write_byte", |b| {
        b.iter(|| {
            buf.clear();
            let mut k = 0u8;
            while buf.write_byte(black_box(k)).is_ok() {
                k = k.wrapping_add(1);
            }
            buf.position()
        })
    });
    let mut bytes = BytesMut::with_capacity(SMALL);
    group.bench_function("BytesMut::put_u8", |b| {
        b.iter(|| {
            bytes.clear();
            let mut k = 0u8;
            while bytes.len() < SMALL {
                bytes.put_u8(black_box(k));
                k = k.wrapping_add(1);
            }
            bytes.len()
        })
    });
    let data = vec![5u8; SMALL];
    let mut full = filled_buffer(&data);
    group.bench_function("Buffer::read_byte", |b| {
        b.iter(|| {
            full.rewind();
            let mut sum = 0u32;
            while let Ok(byte) = full.read_byte() {
                sum = sum.wrapping_add(u32::from(black_box(byte)));
            }
            sum
        })
    });
    let frozen = bytes::Bytes::from(data.clone());
    group.bench_function("Bytes::get_u8", |b| {
        b.iter(|| {
            let mut src = frozen.clone();
            let mut sum = 0u32;
            while src.has_remaining() {
                sum = sum.wrapping_add(u32::from(black_box(src.get_u8())));
            }
            sum
        })
    });
    group.finish();
}

criterion_group!(benches, scanning, writing, single_bytes);
criterion_main!(benches);
