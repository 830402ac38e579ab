//! Unit tests for `StreamReader` and `StreamWriter`: frames, bounds, end of stream, memory.

use super::*;

fn reader() -> StreamReader {
    StreamReader::new(ReaderConfig::default())
}

#[test]
fn lines_across_feeds_with_lf_and_crlf() {
    let mut r = reader();
    assert_eq!(
        r.read_line(false),
        Ok(None),
        "empty reader: need more input"
    );
    r.feed(b"hello wor");
    assert_eq!(r.read_line(false), Ok(None));
    r.feed(b"ld!\r");
    assert_eq!(r.read_line(false), Ok(None), "CR alone does not end a line");
    r.feed(b"\n\r\nlone\rcr\n");
    assert_eq!(r.read_line(false).unwrap(), Some(&b"hello world!"[..]));
    assert_eq!(
        r.read_line(false).unwrap(),
        Some(&b""[..]),
        "empty CRLF line"
    );
    assert_eq!(r.read_line(true).unwrap(), Some(&b"lone\rcr\n"[..]));
    assert!(r.is_empty());
}

#[test]
fn blocks_integers_and_delimiters() {
    let mut r = reader();
    r.feed(&[1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(r.read_short().unwrap(), Some(0x0201));
    assert_eq!(r.read_int().unwrap(), Some(0x0605_0403));
    assert_eq!(r.read_int().unwrap(), None, "one byte of four");
    assert_eq!(r.read_byte().unwrap(), Some(7));
    r.feed(&[0, 9, 0, 0, 0, 9]);
    assert_eq!(r.read_u16_be().unwrap(), Some(9));
    assert_eq!(r.read_u32_be().unwrap(), Some(9));
    r.feed(b"key=value;abc");
    assert_eq!(r.read_bytes_until(b'=').unwrap(), Some(&b"key"[..]));
    assert_eq!(r.read_bytes_until(b';').unwrap(), Some(&b"value"[..]));
    assert_eq!(r.read_bytes(4).unwrap(), None);
    assert_eq!(r.read_bytes(3).unwrap(), Some(&b"abc"[..]));
}

#[test]
fn spare_and_filled_receive_in_place() {
    let mut r = reader();
    let spare = r.spare();
    assert_eq!(spare.len(), DEFAULT_BUFFER_SIZE);
    spare[..4].copy_from_slice(b"ok\nx");
    r.filled(4);
    assert_eq!(r.read_line(false).unwrap(), Some(&b"ok"[..]));
    assert_eq!(r.buffered(), b"x");
    r.filled(usize::MAX); // clamped to the spare room
    assert_eq!(r.len(), DEFAULT_BUFFER_SIZE - 3, "\"ok\\n\" was consumed");
}

#[test]
fn line_past_max_line_is_a_typed_error_split_or_whole() {
    let config = ReaderConfig::default().with_max_line(8);
    let mut whole = StreamReader::new(config);
    whole.feed(b"123456789\n");
    assert_eq!(
        whole.read_line(false),
        Err(FramingError::LineTooLong { limit: 8 })
    );
    let mut split = StreamReader::new(config);
    split.feed(b"12345678");
    assert_eq!(
        split.read_line(false),
        Ok(None),
        "8 bytes may still be a line"
    );
    split.feed(b"\r");
    assert_eq!(
        split.read_line(false),
        Ok(None),
        "the CR may be a separator"
    );
    split.feed(b"9");
    assert_eq!(
        split.read_line(false),
        Err(FramingError::LineTooLong { limit: 8 })
    );
    // Exactly max_line with CRLF is fine; the error consumed nothing.
    let mut exact = StreamReader::new(config);
    exact.feed(b"12345678\r\n");
    assert_eq!(exact.read_line(false).unwrap(), Some(&b"12345678"[..]));
    assert_eq!(split.len(), 10, "a failed read consumes nothing");
    let mut until = StreamReader::new(config);
    until.feed(b"123456789");
    assert_eq!(
        until.read_bytes_until(b';'),
        Err(FramingError::LineTooLong { limit: 8 })
    );
}

#[test]
fn block_past_max_block_fails_at_once_and_nothing_is_reserved() {
    let config = ReaderConfig::default().with_max_block(1 << 20);
    let mut r = StreamReader::new(config);
    r.feed(b"abc");
    assert_eq!(
        r.read_bytes((1 << 20) + 1),
        Err(FramingError::BlockTooLarge {
            requested: (1 << 20) + 1,
            limit: 1 << 20
        })
    );
    // A declared large block reserves nothing until bytes arrive.
    assert_eq!(r.read_bytes(1 << 20), Ok(None));
    assert_eq!(r.capacity(), DEFAULT_BUFFER_SIZE);
}

#[test]
fn big_block_grows_then_memory_returns_to_buffer_size() {
    let mut r = StreamReader::new(ReaderConfig::default().with_buffer_size(64));
    let block: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    for piece in block.chunks(1000) {
        assert_eq!(r.feed(piece), piece.len());
        assert!(r.capacity() <= 2 * block.len());
    }
    r.feed(b"tail\n");
    assert_eq!(r.read_bytes(block.len()).unwrap(), Some(&block[..]));
    assert!(r.capacity() >= block.len());
    let _ = r.spare();
    assert_eq!(r.capacity(), 64, "shrunk back after the large frame");
    assert_eq!(r.read_line(false).unwrap(), Some(&b"tail"[..]));
}

#[test]
fn full_reader_stops_taking_input_and_reports_why() {
    let config = ReaderConfig::default()
        .with_buffer_size(4)
        .with_max_line(6)
        .with_max_block(4);
    assert_eq!(config.max_buffered(), 8);
    let mut r = StreamReader::new(config);
    assert_eq!(r.feed(b"0123456789abc"), 8, "bounded by max_buffered");
    assert!(!r.wants_input());
    assert!(r.spare().is_empty());
    assert_eq!(
        r.read_line(false),
        Err(FramingError::LineTooLong { limit: 6 })
    );
}

#[test]
fn end_of_stream_mid_frame_keeps_the_tail() {
    let mut r = reader();
    r.feed(b"complete\npartial");
    r.close();
    assert_eq!(r.feed(b"ignored"), 0);
    assert_eq!(r.read_line(false).unwrap(), Some(&b"complete"[..]));
    assert_eq!(
        r.read_line(false),
        Err(FramingError::UnexpectedEof {
            op: "read_line",
            buffered: 7
        })
    );
    assert_eq!(
        r.read_bytes(8),
        Err(FramingError::UnexpectedEof {
            op: "read_bytes",
            buffered: 7
        })
    );
    assert!(!r.is_finished());
    assert_eq!(r.read_available(), b"partial");
    assert!(r.is_finished());
    assert_eq!(r.read_line(false), Ok(None), "clean end between frames");
}

#[test]
fn ten_mib_line_one_byte_at_a_time_scans_linearly() {
    const LEN: usize = 10 << 20;
    let config = ReaderConfig::default().with_max_line(LEN);
    let mut r = StreamReader::new(config);
    for _ in 0..LEN {
        assert_eq!(r.feed(b"x"), 1);
        assert_eq!(r.read_line(false), Ok(None));
    }
    r.feed(b"\n");
    assert_eq!(r.read_line(false).unwrap().map(<[u8]>::len), Some(LEN));
    // Each byte is examined once (plus the LF); a rescan from the start would be ~LEN²/2.
    assert_eq!(r.scanned_bytes(), LEN as u64 + 1);
}

#[test]
fn chunks_larger_than_the_buffer_move_only_leftovers() {
    // A socket's 16 KiB reads into a default (8 KiB) reader, 200-byte lines read between
    // feeds: the reader grows once, then only partial lines move. (Filling the short tail
    // first and compacting afterwards moved 14.8 MB per 16 MiB of input.)
    let line: Vec<u8> = b"0123456789"
        .iter()
        .copied()
        .cycle()
        .take(198)
        .chain(*b"\r\n")
        .collect();
    let input: Vec<u8> = line.iter().copied().cycle().take(2 << 20).collect();
    let mut r = StreamReader::new(ReaderConfig::default());
    let mut lines = 0;
    for chunk in input.chunks(16 << 10) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let n = r.feed(rest);
            assert!(n > 0, "a reader with room takes input");
            rest = &rest[n..];
            while let Some(got) = r.read_line(false).unwrap() {
                assert_eq!(got, &line[..198]);
                lines += 1;
            }
        }
    }
    assert_eq!(lines, input.len() / 200);
    // Growth copies at most one buffer's worth; then each chunk moves one partial line.
    let bound = (32 << 10) + input.chunks(16 << 10).count() as u64 * 200;
    assert!(
        r.moved_bytes() <= bound,
        "moved {} bytes (bound {bound})",
        r.moved_bytes()
    );
}

#[test]
fn every_byte_is_examined_exactly_once_across_blocks_and_chunks() {
    // Lines from 0 to 700 bytes (inside one block, across whole blocks, into the memchr
    // stretch), fed in uneven chunks: the scans examine each input byte once, no more.
    let mut input = Vec::new();
    let mut len = 0usize;
    while input.len() < 200_000 {
        input.extend(std::iter::repeat_n(b'x', len));
        input.push(b'\n');
        len = (len * 7 + 13) % 701;
    }
    for chunk in [1000, 4096, 16 << 10] {
        let mut r = StreamReader::new(ReaderConfig::default());
        let mut lines = 0;
        for piece in input.chunks(chunk) {
            let mut rest = piece;
            while !rest.is_empty() {
                let n = r.feed(rest);
                rest = &rest[n..];
                while r.read_line(false).unwrap().is_some() {
                    lines += 1;
                }
            }
        }
        assert_eq!(lines, input.iter().filter(|&&b| b == b'\n').count());
        assert_eq!(r.scanned_bytes(), input.len() as u64, "chunks of {chunk}");
    }
}

#[test]
fn switching_delimiters_rescans_only_what_is_needed() {
    let mut r = reader();
    r.feed(b"a;b\n");
    assert_eq!(r.read_bytes_until(b';').unwrap(), Some(&b"a"[..]));
    assert_eq!(r.read_line(false).unwrap(), Some(&b"b"[..]));
    // Scans go a block at a time: the ';' search covered all 4 bytes, the '\n' search starts
    // again at the unconsumed "b\n" (2), not at the front.
    assert_eq!(r.scanned_bytes(), 4 + 2);
}

#[test]
fn seed_lines_in_every_chunk_size() {
    let lines: [&[u8]; 6] = [
        b"hello world!",
        b"Test",
        b"",
        b"Piet",
        b"Klaas",
        b"PietBlaat",
    ];
    let mut stream = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        stream.extend_from_slice(line);
        stream.extend_from_slice(if i % 2 == 0 { b"\r\n" } else { b"\n" });
    }
    for chunk in 4..=128 {
        let mut r = StreamReader::new(ReaderConfig::default().with_buffer_size(16));
        let mut got = Vec::new();
        for piece in stream.chunks(chunk) {
            assert_eq!(r.feed(piece), piece.len());
            while let Some(line) = r.read_line(false).unwrap() {
                got.push(line.to_vec());
            }
        }
        assert_eq!(got, lines.map(<[u8]>::to_vec), "chunk size {chunk}");
    }
}

#[test]
fn writer_buffers_drains_and_shrinks() {
    let mut w = StreamWriter::new(WriterConfig::default().with_buffer_size(16));
    assert!(!w.has_pending());
    w.write_bytes(b"abc").unwrap();
    w.write_byte(b'd').unwrap();
    w.write_short(0x0201).unwrap();
    w.write_int(0x0605_0403).unwrap();
    w.write_u16_be(0x0102).unwrap();
    w.write_u32_be(0x0304_0506).unwrap();
    assert_eq!(
        w.pending(),
        b"abcd\x01\x02\x03\x04\x05\x06\x01\x02\x03\x04\x05\x06"
    );
    w.consume(2);
    assert_eq!(&w.pending()[..2], b"cd");
    w.write_bytes(&[0; 1000]).unwrap();
    assert_eq!(w.pending_len(), 1014);
    w.consume(usize::MAX);
    assert!(!w.has_pending());
    // Within twice high_water: kept while busy (no reallocation for the next reply).
    assert!(w.capacity() >= 1014, "kept: {}", w.capacity());
    w.release_if_empty();
    assert_eq!(w.capacity(), 0, "given back when idle");
    // Past twice high_water (one reply larger than back-pressure allows): shrunk once drained.
    let mut w = StreamWriter::new(
        WriterConfig::default()
            .with_buffer_size(16)
            .with_high_water(64),
    );
    w.write_bytes(&[0; 1000]).unwrap();
    w.consume(usize::MAX);
    assert!(
        w.capacity() <= 16,
        "shrunk back to buffer_size: {}",
        w.capacity()
    );
    use std::io::Write;
    let key = "k";
    write!(w, "VALUE {key} {}\r\n", 5).unwrap();
    assert_eq!(w.pending(), b"VALUE k 5\r\n");
}

#[test]
fn writer_backpressure_and_hard_cap() {
    let config = WriterConfig::default()
        .with_high_water(10)
        .with_max_pending(20);
    let mut w = StreamWriter::new(config);
    w.write_bytes(&[1; 9]).unwrap();
    assert!(!w.is_backpressured());
    w.write_byte(1).unwrap();
    assert!(w.is_backpressured());
    w.write_bytes(&[2; 10]).unwrap();
    assert_eq!(
        w.write_byte(3),
        Err(FramingError::WriteBufferFull {
            pending: 20,
            additional: 1,
            limit: 20
        })
    );
    assert_eq!(w.pending_len(), 20, "a refused write writes nothing");
    let err = std::io::Write::write(&mut w, b"x").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory);
    w.consume(11);
    assert!(!w.is_backpressured());
    assert!(
        FramingError::WriteBufferFull {
            pending: 1,
            additional: 2,
            limit: 3
        }
        .to_string()
        .contains("max_pending")
    );
}

#[test]
fn integer_reads_fit_even_with_tiny_bounds() {
    // Found by the stream_reader fuzz target: bounds smaller than an integer must not leave
    // the reader unable to take the bytes a read_int needs.
    let config = ReaderConfig::default()
        .with_buffer_size(1)
        .with_max_line(0)
        .with_max_block(1);
    let mut r = StreamReader::new(config);
    assert_eq!(r.feed(&[2, 59, 253, 0]), 4);
    assert_eq!(r.read_int().unwrap(), Some(0x00fd_3b02));
}

#[test]
fn read_until_any_splits_on_any_of_up_to_three_bytes() {
    let mut r = reader();
    r.feed(b"key=value;next,last");
    assert_eq!(r.read_until_any(b";,=").unwrap(), Some((&b"key"[..], b'=')));
    assert_eq!(
        r.read_until_any(b";,=").unwrap(),
        Some((&b"value"[..], b';'))
    );
    assert_eq!(r.read_until_any(b";,").unwrap(), Some((&b"next"[..], b',')));
    assert_eq!(r.read_until_any(b";,").unwrap(), None, "need more input");
    assert_eq!(
        r.read_until_any(b""),
        Err(FramingError::InvalidDelimiters { given: 0 })
    );
    assert_eq!(
        r.read_until_any(b"abcd"),
        Err(FramingError::InvalidDelimiters { given: 4 })
    );
    r.close();
    assert!(matches!(
        r.read_until_any(b";"),
        Err(FramingError::UnexpectedEof { .. })
    ));
    assert_eq!(r.read_available(), b"last");
}

#[test]
fn feeding_nothing_allocates_nothing() {
    let mut r = StreamReader::new(ReaderConfig::default());
    assert_eq!(r.feed(b""), 0);
    assert_eq!(r.capacity(), 0);
}
