//! A replay harness for `StreamReader`: feed one byte stream split at given boundaries, run a
//! fixed program of framed reads, and record what came out.
//!
//! The property (checked by proptest and by the `stream_reader` fuzz target): however the
//! stream is split, the transcript is the one the unsplit stream gives.

use concurrence_core::{FramingError, ReaderConfig, StreamReader};

/// One framed read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ReadOp {
    Line {
        include_separator: bool,
    },
    Until {
        delimiter: u8,
    },
    /// `read_until_any` with two delimiters; the frame is followed by the delimiter found.
    UntilAny {
        delimiters: [u8; 2],
    },
    /// At least one byte: a zero-byte block would never consume anything.
    Bytes {
        n: usize,
    },
    Byte,
    Short,
    Int,
    /// `read_frame` over the first `count` (1 to 3) of `parts`, all or nothing; the frame is
    /// the parts' bytes in order.
    Frame {
        /// The parts, read through the frame cursor in order.
        parts: [FramePart; 3],
        /// How many of them.
        count: usize,
    },
}

/// One part of a [`ReadOp::Frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramePart {
    /// A line, with its separator.
    Line,
    /// A block of at least one byte.
    Bytes(usize),
}

/// Everything a run produced, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    /// Each complete frame, as bytes (integers as their little-endian bytes).
    pub frames: Vec<Vec<u8>>,
    /// The error that ended the run, if one did.
    pub error: Option<FramingError>,
    /// What `read_available` returned at the end (empty when an error ended the run before
    /// end of stream).
    pub tail: Vec<u8>,
    /// True if the reader stopped taking input while no read could progress: a contract bug.
    pub stuck: bool,
}

fn step(reader: &mut StreamReader, op: ReadOp) -> Result<Option<Vec<u8>>, FramingError> {
    Ok(match op {
        ReadOp::Line { include_separator } => {
            reader.read_line(include_separator)?.map(<[u8]>::to_vec)
        }
        ReadOp::Until { delimiter } => reader.read_bytes_until(delimiter)?.map(<[u8]>::to_vec),
        ReadOp::UntilAny { delimiters } => {
            reader.read_until_any(&delimiters)?.map(|(frame, which)| {
                let mut out = frame.to_vec();
                out.push(which);
                out
            })
        }
        ReadOp::Bytes { n } => reader.read_bytes(n.max(1))?.map(<[u8]>::to_vec),
        ReadOp::Byte => reader.read_byte()?.map(|b| vec![b]),
        ReadOp::Short => reader.read_short()?.map(|v| v.to_le_bytes().to_vec()),
        ReadOp::Int => reader.read_int()?.map(|v| v.to_le_bytes().to_vec()),
        ReadOp::Frame { parts, count } => reader.read_frame(|frame| {
            let mut out = Vec::new();
            for part in &parts[..count.clamp(1, 3)] {
                let bytes = match part {
                    FramePart::Line => frame.read_line(true)?,
                    FramePart::Bytes(n) => frame.read_bytes((*n).max(1))?,
                };
                let Some(bytes) = bytes else {
                    return Ok(None);
                };
                out.extend_from_slice(bytes);
            }
            Ok::<_, FramingError>(Some(out))
        })?,
    })
}

/// Feeds `input` in chunks whose sizes cycle through `chunks` (0 counts as 1; an empty list
/// means "all at once"), reading frames with `program` (cycled) after every chunk, then closes
/// the stream and reads what remains.
#[must_use]
pub fn replay(
    input: &[u8],
    chunks: &[usize],
    config: ReaderConfig,
    program: &[ReadOp],
) -> Transcript {
    let mut reader = StreamReader::new(config);
    let mut transcript = Transcript {
        frames: Vec::new(),
        error: None,
        tail: Vec::new(),
        stuck: false,
    };
    let program = if program.is_empty() {
        &[ReadOp::Line {
            include_separator: true,
        }][..]
    } else {
        program
    };
    let (mut fed, mut chunk, mut op) = (0, 0, 0);
    loop {
        loop {
            match step(&mut reader, program[op % program.len()]) {
                Ok(Some(frame)) => {
                    transcript.frames.push(frame);
                    op += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    // Before end of stream, how much had arrived when the error showed depends
                    // on the split, so only a closed reader's tail is part of the transcript.
                    transcript.error = Some(e);
                    if reader.is_closed() {
                        transcript.tail = reader.read_available().to_vec();
                    }
                    return transcript;
                }
            }
        }
        if reader.is_closed() {
            break;
        }
        if fed == input.len() {
            reader.close();
            continue;
        }
        let size = chunks
            .get(chunk % chunks.len().max(1))
            .copied()
            .unwrap_or(usize::MAX);
        chunk += 1;
        let end = fed + size.max(1).min(input.len() - fed);
        let taken = reader.feed(&input[fed..end]);
        if taken == 0 {
            transcript.stuck = true;
            break;
        }
        fed += taken;
    }
    transcript.tail = reader.read_available().to_vec();
    transcript
}
