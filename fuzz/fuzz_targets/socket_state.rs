//! Arbitrary event sequences on the socket state machine: never a panic, a failed call changes
//! nothing, a successful one lands where `transition` says, and `Closed` only allows `close`.

#![no_main]

use std::time::Duration;

use concurrence_core::{SocketEvent, SocketState, SocketStateMachine, Timestamp, transition};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut machine = SocketStateMachine::new();
    let mut now = Timestamp::ZERO;
    for pair in data.chunks(2) {
        let event = SocketEvent::ALL[usize::from(pair[0] % 11)];
        let arg = pair.get(1).copied().unwrap_or(0);
        now += Duration::from_millis(u64::from(arg));
        let before = machine;
        let expected = transition(before.state(), event);
        let result = if arg % 2 == 0 {
            let timeout = (arg % 3 != 0).then(|| Duration::from_millis(u64::from(arg) * 7));
            machine.begin(event, now, timeout).map(|_| machine.state())
        } else {
            machine.apply(event)
        };
        match (result, expected) {
            (Ok(state), Ok(want)) => assert_eq!(state, want),
            (Err(got), Err(want)) => {
                assert_eq!(got, want);
                assert_eq!(machine, before, "a refused event changed the machine");
            }
            (got, want) => panic!("{event:?} in {before:?}: {got:?} vs {want:?}"),
        }
        if before.state() == SocketState::Closed {
            assert_eq!(machine.state(), SocketState::Closed, "closed is final");
        }
    }
});
