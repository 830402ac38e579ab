//! `StreamReader` under arbitrary bytes, arbitrary chunking, arbitrary bounds and an arbitrary
//! read program (framed reads and `read_frame` over several parts): the transcript must equal the unsplit stream's, and nothing may panic.

#![no_main]

use arbitrary::{Result, Unstructured};
use concurrence_core::ReaderConfig;
use concurrence_testkit::model::framing::{FramePart, ReadOp, replay};
use libfuzzer_sys::fuzz_target;

fn frame_part(u: &mut Unstructured<'_>) -> Result<FramePart> {
    Ok(if u.arbitrary()? {
        FramePart::Line
    } else {
        FramePart::Bytes(usize::from(u.int_in_range(1u16..=300)?))
    })
}

fn read_op(u: &mut Unstructured<'_>) -> Result<ReadOp> {
    Ok(match u.int_in_range(0u8..=7)? {
        7 => ReadOp::Frame {
            parts: [frame_part(u)?, frame_part(u)?, frame_part(u)?],
            count: usize::from(u.int_in_range(1u8..=3)?),
        },
        0 => ReadOp::Line {
            include_separator: u.arbitrary()?,
        },
        1 => ReadOp::Until {
            delimiter: u.arbitrary()?,
        },
        2 => ReadOp::Bytes {
            n: usize::from(u.int_in_range(1u16..=600)?),
        },
        3 => ReadOp::Byte,
        4 => ReadOp::Short,
        5 => ReadOp::Int,
        _ => ReadOp::UntilAny {
            delimiters: [u.arbitrary()?, u.arbitrary()?],
        },
    })
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let config = ReaderConfig::default()
        .with_buffer_size(usize::from(u.int_in_range(1u16..=256)?))
        .with_max_line(usize::from(u.int_in_range(0u16..=512)?))
        .with_max_block(usize::from(u.int_in_range(1u16..=512)?));
    let program: Vec<ReadOp> = (0..u.int_in_range(1u8..=6)?)
        .map(|_| read_op(u))
        .collect::<Result<_>>()?;
    let chunks: Vec<usize> = (0..u.int_in_range(1u8..=8)?)
        .map(|_| u.int_in_range(0u16..=300).map(usize::from))
        .collect::<Result<_>>()?;
    let input = u.bytes(u.len())?;
    let whole = replay(input, &[], config, &program);
    let split = replay(input, &chunks, config, &program);
    let bytewise = replay(input, &[1], config, &program);
    assert!(
        !whole.stuck && !split.stuck && !bytewise.stuck,
        "reader stopped taking input: {config:?} {program:?}"
    );
    assert_eq!(split, whole, "chunks {chunks:?} changed the frames");
    assert_eq!(bytewise, whole, "byte-by-byte feeding changed the frames");
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
