//! Properties of the framing halves: any split of a byte stream yields the frames of the
//! unsplit stream (checked by `concurrence_testkit::model::framing::replay`, shared with the
//! `stream_reader` fuzz target); the writer's output, however drained, is what was written.

use concurrence_core::{ReaderConfig, StreamWriter, WriterConfig};
use concurrence_testkit::model::framing::{ReadOp, replay};
use proptest::prelude::*;

fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => Just(b'\n'),
            2 => Just(b'\r'),
            1 => Just(b';'),
            8 => any::<u8>(),
        ],
        0..600,
    )
}

fn program() -> impl Strategy<Value = Vec<ReadOp>> {
    prop::collection::vec(
        prop_oneof![
            4 => any::<bool>().prop_map(|include_separator| ReadOp::Line { include_separator }),
            1 => Just(ReadOp::Until { delimiter: b';' }),
            2 => Just(ReadOp::UntilAny { delimiters: [b';', b'\n'] }),
            2 => (1usize..40).prop_map(|n| ReadOp::Bytes { n }),
            1 => Just(ReadOp::Byte),
            1 => Just(ReadOp::Short),
            1 => Just(ReadOp::Int),
        ],
        1..6,
    )
}

fn config() -> impl Strategy<Value = ReaderConfig> {
    (1usize..64, 0usize..80, 1usize..64).prop_map(|(buffer, line, block)| {
        ReaderConfig::default()
            .with_buffer_size(buffer)
            .with_max_line(line)
            .with_max_block(block)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn any_split_yields_the_unsplit_frames(
        input in stream(),
        chunks in prop::collection::vec(0usize..50, 1..8),
        program in program(),
        config in config(),
    ) {
        let whole = replay(&input, &[], config, &program);
        prop_assert!(!whole.stuck);
        for split in [&[1][..], &chunks[..]] {
            let parts = replay(&input, split, config, &program);
            prop_assert!(!parts.stuck, "reader stopped taking input without an error");
            prop_assert_eq!(&parts, &whole, "split {:?}", split);
        }
        // Without an error every byte comes out, as frames or as the tail.
        if whole.error.is_none() {
            let total: usize = whole.frames.iter().map(Vec::len).sum::<usize>() + whole.tail.len();
            prop_assert!(total <= input.len());
        }
    }

    #[test]
    fn writer_output_is_what_was_written(
        pieces in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..100), 0..40),
        drains in prop::collection::vec(0usize..300, 1..10),
        buffer_size in 1usize..64,
    ) {
        let mut writer = StreamWriter::new(WriterConfig::default().with_buffer_size(buffer_size));
        let mut sent = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            writer.write_bytes(piece).unwrap();
            let n = drains[i % drains.len()].min(writer.pending_len());
            sent.extend_from_slice(&writer.pending()[..n]);
            writer.consume(n);
        }
        sent.extend_from_slice(writer.pending());
        writer.consume(usize::MAX);
        prop_assert_eq!(sent, pieces.concat());
        // Drained, it keeps at most a burst's worth (twice high_water), and none once idle.
        let config = WriterConfig::default().with_buffer_size(buffer_size);
        prop_assert!(writer.capacity() <= (2 * config.high_water).max(2 * buffer_size));
        writer.release_if_empty();
        prop_assert_eq!(writer.capacity(), 0);
    }
}

#[test]
fn replay_sees_errors_and_eof_tails() {
    let config = ReaderConfig::default().with_max_line(4);
    let line = ReadOp::Line {
        include_separator: false,
    };
    let long = replay(b"ok\ntoo long\n", &[2], config, &[line]);
    assert_eq!(long.frames, vec![b"ok".to_vec()]);
    assert!(long.error.is_some());
    let tail = replay(b"ok\nrest", &[], config, &[line]);
    assert_eq!(tail.tail, b"rest");
    assert!(matches!(
        tail.error,
        Some(concurrence_core::FramingError::UnexpectedEof { buffered: 4, .. })
    ));
}
