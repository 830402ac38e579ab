//! Arbitrary `Buffer` operation sequences checked against the same model as the proptest
//! (`concurrence_testkit::model::buffer`): any difference, or any panic, is a crash.

#![no_main]

use arbitrary::{Result, Unstructured};
use concurrence_testkit::model::buffer::{BufferHarness, BufferOp};
use libfuzzer_sys::fuzz_target;

fn size(u: &mut Unstructured<'_>) -> Result<usize> {
    Ok(match u.int_in_range(0u8..=9)? {
        0 => usize::MAX,
        1..=5 => usize::from(u.int_in_range(0u8..=8)?),
        _ => usize::from(u.int_in_range(0u8..=100)?),
    })
}

fn op(u: &mut Unstructured<'_>) -> Result<BufferOp> {
    use BufferOp as O;
    let buf = usize::from(u.int_in_range(0u8..=7)?);
    Ok(match u.int_in_range(0u8..=35)? {
        0 => O::New { capacity: size(u)? },
        1 => O::Duplicate { buf },
        2 => O::Clone { buf },
        3 => O::Drop { buf },
        4 => O::SetPosition {
            buf,
            position: size(u)?,
        },
        5 => O::SetLimit {
            buf,
            limit: size(u)?,
        },
        6 => O::Clear { buf },
        7 => O::Flip { buf },
        8 => O::Rewind { buf },
        9 => O::Compact { buf },
        10 => O::CopyFrom {
            dst: buf,
            src: usize::from(u.int_in_range(0u8..=7)?),
            src_start: size(u)?,
            dst_start: size(u)?,
            len: size(u)?,
        },
        11 => O::Skip { buf, n: size(u)? },
        12 => O::ReadByte { buf },
        13 => O::ReadBytes { buf, n: size(u)? },
        14 => O::ReadRemaining { buf },
        15 => O::ReadBytesUntil {
            buf,
            byte: u.arbitrary()?,
        },
        16 => O::ReadLine {
            buf,
            include_separator: u.arbitrary()?,
        },
        17 => O::ReadShort { buf },
        18 => O::ReadInt { buf },
        19 => O::ReadU64 { buf },
        20 => O::ReadU16Be { buf },
        21 => O::ReadU32Be { buf },
        22 => O::ReadU64Be { buf },
        23 => O::WriteByte {
            buf,
            byte: u.arbitrary()?,
        },
        24 => O::WriteBytes {
            buf,
            bytes: bytes(u)?,
        },
        25 => O::WriteShort {
            buf,
            value: u.arbitrary()?,
        },
        26 => O::WriteInt {
            buf,
            value: u.arbitrary()?,
        },
        27 => O::WriteU64 {
            buf,
            value: u.arbitrary()?,
        },
        28 => O::WriteU16Be {
            buf,
            value: u.arbitrary()?,
        },
        29 => O::WriteU32Be {
            buf,
            value: u.arbitrary()?,
        },
        30 => O::WriteU64Be {
            buf,
            value: u.arbitrary()?,
        },
        31 => O::WriteBuffer {
            dst: buf,
            src: usize::from(u.int_in_range(0u8..=7)?),
        },
        32 => O::Get {
            buf,
            index: size(u)?,
        },
        33 => O::Set {
            buf,
            index: size(u)?,
            byte: u.arbitrary()?,
        },
        34 => O::GetRange {
            buf,
            start: size(u)?,
            end: size(u)?,
        },
        _ => {
            let start = size(u)?;
            let bytes = bytes(u)?;
            let end = if u.arbitrary()? {
                start.saturating_add(bytes.len())
            } else {
                size(u)?
            };
            O::SetRange {
                buf,
                start,
                bytes,
                end,
            }
        }
    })
}

fn bytes(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let len = u.int_in_range(0u8..=24)?;
    (0..len)
        .map(|_| {
            Ok(match u.int_in_range(0u8..=3)? {
                0 => b'\n',
                1 => b'\r',
                _ => u.arbitrary()?,
            })
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(capacity) = size(&mut u) else { return };
    let mut harness = BufferHarness::new(capacity);
    while !u.is_empty() {
        let Ok(op) = op(&mut u) else { return };
        if let Err(difference) = harness.apply(&op) {
            panic!("Buffer differs from the model: {difference}");
        }
    }
});
