//! `Connection` against a hostile peer: arbitrary sends, short reads and writes, early and late
//! end of stream, half-close both ways, resets and jumps in time. The harness and its
//! invariants live in `concurrence_testkit::model::connection` (shared with the `connection` fuzz
//! target); this file generates the peers.

use concurrence_core::EndKind;
use concurrence_testkit::model::connection::{COMMANDS, ModelConfig, PeerOp, run};
use proptest::prelude::*;

/// A burst of lines (and sometimes a partial one) made of commands, short words and long words.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    let word = prop_oneof![
        3 => "[a-z]{1,6}".prop_map(String::into_bytes),
        1 => "[a-z]{10,40}".prop_map(String::into_bytes),
        1 => prop::sample::select(COMMANDS.to_vec()).prop_map(|c| c.as_bytes().to_vec()),
    ];
    (prop::collection::vec(word, 1..6), any::<bool>()).prop_map(|(words, partial)| {
        let mut out = Vec::new();
        for (i, w) in words.iter().enumerate() {
            out.extend_from_slice(w);
            if !(partial && i + 1 == words.len()) {
                out.push(b'\n');
            }
        }
        out
    })
}

fn op() -> impl Strategy<Value = PeerOp> {
    prop_oneof![
        6 => payload().prop_map(PeerOp::Send),
        6 => (1usize..64).prop_map(PeerOp::Deliver),
        5 => (1usize..64).prop_map(PeerOp::Read),
        1 => Just(PeerOp::HalfClose),
        1 => Just(PeerOp::Reset),
        2 => prop_oneof![Just(1u64), Just(400), Just(1_000), Just(6_000)].prop_map(PeerOp::Advance),
    ]
}

fn config() -> impl Strategy<Value = ModelConfig> {
    (
        4usize..40,
        1usize..64,
        prop::option::of(prop_oneof![Just(500u64), Just(3_000)]),
        prop_oneof![Just(0u64), Just(700), Just(5_000)],
    )
        .prop_map(|(max_line, high_water, idle, linger)| {
            ModelConfig::small(max_line, high_water, idle, linger)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn connection_keeps_its_promises_against_any_peer(
        config in config(),
        ops in prop::collection::vec(op(), 0..60),
    ) {
        if let Err(violation) = run(config, &ops) {
            return Err(TestCaseError::fail(violation));
        }
    }
}

/// The data-loss case from the field, in memory: complete lines plus a partial tail that fill
/// the reader, then end of stream. The replies to the complete lines must all arrive.
#[test]
fn replies_survive_an_error_on_the_partial_last_frame() {
    let config = ModelConfig::small(64, 32, None, 5_000);
    let mut input = Vec::new();
    for i in 0..40 {
        input.extend_from_slice(format!("line{i}\n").as_bytes());
    }
    input.extend_from_slice(b"PARTIAL");
    let ops = [
        PeerOp::Send(input),
        PeerOp::HalfClose,
        PeerOp::Deliver(usize::MAX),
    ];
    let outcome = run(config, &ops).unwrap();
    assert_eq!(outcome.end, EndKind::Session, "UnexpectedEof on the tail");
    let expected: String = (0..40).map(|i| format!("line{i}\n")).collect();
    assert_eq!(String::from_utf8(outcome.received).unwrap(), expected);
}

/// A peer that closes at once, before anything was delivered, still gets a clean end.
#[test]
fn an_immediate_peer_close_ends_in_order() {
    let outcome = run(
        ModelConfig::small(16, 16, None, 1_000),
        &[PeerOp::HalfClose],
    )
    .unwrap();
    assert_eq!(outcome.end, EndKind::PeerClosed);
    assert!(outcome.received.is_empty());
}

/// Our half-close: "HALF" is answered, our FIN follows, and the connection keeps reading until
/// the peer closes too; the end is ours (we closed first).
#[test]
fn a_session_half_close_keeps_reading_until_the_peer_closes() {
    let ops = [
        PeerOp::Send(b"a\nHALF\nb\nc\n".to_vec()),
        PeerOp::Deliver(usize::MAX),
        PeerOp::Read(usize::MAX),
    ];
    let outcome = run(ModelConfig::small(16, 64, None, 1_000), &ops).unwrap();
    assert_eq!(outcome.received, b"a\nHALF\n");
    assert_eq!(outcome.end, EndKind::Closed);
    assert_eq!(outcome.taken, b"a\nHALF\nb\nc\n");
}

/// A peer that never reads: the idle timeout ends it, and the replies are the only loss.
#[test]
fn a_peer_that_never_reads_is_ended_by_the_idle_timeout() {
    let ops = [
        PeerOp::Send(b"hello\n".repeat(40)),
        PeerOp::Deliver(usize::MAX),
        PeerOp::Advance(6_000),
    ];
    let outcome = run(ModelConfig::small(16, 16, Some(500), 1_000), &ops).unwrap();
    assert_eq!(outcome.end, EndKind::IdleTimeout);
    assert!(outcome.received.is_empty());
}
