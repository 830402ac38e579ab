//! `Connection` driving a line-echo session against an arbitrary hostile peer: arbitrary
//! payloads, short reads and writes, early and late end of stream, half-close, resets and
//! jumps in time. Every invariant of `concurrence_testkit::model::connection::run` must hold and
//! nothing may panic.

#![no_main]

use arbitrary::{Result, Unstructured};
use concurrence_testkit::model::connection::{COMMANDS, ModelConfig, PeerOp, run};
use libfuzzer_sys::fuzz_target;

/// Lines of commands and words (no CR: the model echoes lines split at LF only).
fn payload(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..u.int_in_range(1u8..=6)? {
        match u.int_in_range(0u8..=3)? {
            0 => out.extend_from_slice(u.choose(&COMMANDS)?.as_bytes()),
            1 => {
                let len = u.int_in_range(10u8..=40)?;
                out.extend(std::iter::repeat_n(b'x', usize::from(len)));
            }
            _ => {
                let len = u.int_in_range(0u8..=6)?;
                for _ in 0..len {
                    out.push(u.int_in_range(b'a'..=b'z')?);
                }
            }
        }
        if u.ratio(7u8, 8u8)? {
            out.push(b'\n');
        }
    }
    Ok(out)
}

fn op(u: &mut Unstructured<'_>) -> Result<PeerOp> {
    Ok(match u.int_in_range(0u8..=20)? {
        0..=5 => PeerOp::Send(payload(u)?),
        6..=11 => PeerOp::Deliver(usize::from(u.int_in_range(1u8..=80)?)),
        12..=16 => PeerOp::Read(usize::from(u.int_in_range(1u8..=80)?)),
        17 => PeerOp::HalfClose,
        18 => PeerOp::Reset,
        _ => PeerOp::Advance(*u.choose(&[1u64, 400, 1_000, 6_000])?),
    })
}

fn input(u: &mut Unstructured<'_>) -> Result<(ModelConfig, Vec<PeerOp>)> {
    let config = ModelConfig::small(
        usize::from(u.int_in_range(4u8..=40)?),
        usize::from(u.int_in_range(1u8..=64)?),
        if u.arbitrary()? {
            Some(*u.choose(&[500u64, 3_000])?)
        } else {
            None
        },
        *u.choose(&[0u64, 700, 5_000])?,
    );
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < 200 {
        ops.push(op(u)?);
    }
    Ok((config, ops))
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    if let Ok((config, ops)) = input(&mut u) {
        if let Err(violation) = run(config, &ops) {
            panic!("{violation}\nconfig: {config:?}\nops: {ops:?}");
        }
    }
});
