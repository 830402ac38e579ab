//! Property test: random `Buffer` operation sequences (with duplicates, clones and failing
//! calls) against the plain model in `concurrence_testkit::model::buffer`, checking bytes,
//! position and limit after every step.

use concurrence_testkit::model::buffer::{BufferHarness, BufferOp};
use proptest::prelude::*;

fn idx() -> impl Strategy<Value = usize> {
    0usize..8
}

/// Sizes around the interesting edges of a buffer of up to 96 bytes.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![0usize..8, 0usize..100, Just(usize::MAX)]
}

/// Bytes rich in delimiters, so lines and `read_bytes_until` hit often.
fn data() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![Just(b'\n'), Just(b'\r'), Just(b';'), any::<u8>()],
        0..24,
    )
}

fn op() -> impl Strategy<Value = BufferOp> {
    use BufferOp as O;
    prop_oneof![
        (0usize..100).prop_map(|capacity| O::New { capacity }),
        idx().prop_map(|buf| O::Duplicate { buf }),
        idx().prop_map(|buf| O::Clone { buf }),
        idx().prop_map(|buf| O::Drop { buf }),
        (idx(), size()).prop_map(|(buf, position)| O::SetPosition { buf, position }),
        (idx(), size()).prop_map(|(buf, limit)| O::SetLimit { buf, limit }),
        idx().prop_map(|buf| O::Clear { buf }),
        idx().prop_map(|buf| O::Flip { buf }),
        idx().prop_map(|buf| O::Rewind { buf }),
        idx().prop_map(|buf| O::Compact { buf }),
        (idx(), idx(), size(), size(), size()).prop_map(|(dst, src, src_start, dst_start, len)| {
            O::CopyFrom {
                dst,
                src,
                src_start,
                dst_start,
                len,
            }
        }),
        (idx(), size()).prop_map(|(buf, n)| O::Skip { buf, n }),
        idx().prop_map(|buf| O::ReadByte { buf }),
        (idx(), size()).prop_map(|(buf, n)| O::ReadBytes { buf, n }),
        idx().prop_map(|buf| O::ReadRemaining { buf }),
        (idx(), prop_oneof![Just(b';'), any::<u8>()])
            .prop_map(|(buf, byte)| O::ReadBytesUntil { buf, byte }),
        (idx(), any::<bool>()).prop_map(|(buf, include_separator)| O::ReadLine {
            buf,
            include_separator
        }),
        idx().prop_map(|buf| O::ReadShort { buf }),
        idx().prop_map(|buf| O::ReadInt { buf }),
        idx().prop_map(|buf| O::ReadU64 { buf }),
        idx().prop_map(|buf| O::ReadU16Be { buf }),
        idx().prop_map(|buf| O::ReadU32Be { buf }),
        idx().prop_map(|buf| O::ReadU64Be { buf }),
        (idx(), any::<u8>()).prop_map(|(buf, byte)| O::WriteByte { buf, byte }),
        (idx(), data()).prop_map(|(buf, bytes)| O::WriteBytes { buf, bytes }),
        (idx(), any::<u16>()).prop_map(|(buf, value)| O::WriteShort { buf, value }),
        (idx(), any::<u32>()).prop_map(|(buf, value)| O::WriteInt { buf, value }),
        (idx(), any::<u64>()).prop_map(|(buf, value)| O::WriteU64 { buf, value }),
        (idx(), any::<u16>()).prop_map(|(buf, value)| O::WriteU16Be { buf, value }),
        (idx(), any::<u32>()).prop_map(|(buf, value)| O::WriteU32Be { buf, value }),
        (idx(), any::<u64>()).prop_map(|(buf, value)| O::WriteU64Be { buf, value }),
        (idx(), idx()).prop_map(|(dst, src)| O::WriteBuffer { dst, src }),
        (idx(), size()).prop_map(|(buf, index)| O::Get { buf, index }),
        (idx(), size(), any::<u8>()).prop_map(|(buf, index, byte)| O::Set { buf, index, byte }),
        (idx(), size(), size()).prop_map(|(buf, start, end)| O::GetRange { buf, start, end }),
        (idx(), 0usize..100, data(), any::<bool>()).prop_map(|(buf, start, bytes, fit)| {
            let end = if fit {
                start + bytes.len()
            } else {
                start + bytes.len() / 2
            };
            O::SetRange {
                buf,
                start,
                bytes,
                end,
            }
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn buffer_matches_model(capacity in 0usize..100, ops in prop::collection::vec(op(), 1..80)) {
        let mut harness = BufferHarness::new(capacity);
        for op in &ops {
            if let Err(difference) = harness.apply(op) {
                prop_assert!(false, "{}", difference);
            }
        }
    }
}
