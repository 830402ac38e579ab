//! The socket state machine against a table model: every (state, event) pair, and random
//! sequences with deadlines, including calls in the wrong state.

use std::time::Duration;

use concurrence_core::{
    SocketEvent as E, SocketState as S, SocketStateError, SocketStateMachine, Timestamp, transition,
};
use proptest::prelude::*;

/// The allowed transitions, written out as data. Anything not listed is `InvalidState`.
const TABLE: &[(S, E, S)] = &[
    (S::Init, E::ConnectStarted, S::Connecting),
    (S::Init, E::Listen, S::Listening),
    (S::Init, E::Close, S::Closed),
    (S::Connecting, E::ConnectCompleted, S::Connected),
    (S::Connecting, E::ConnectFailed, S::Closed),
    (S::Connecting, E::Timeout, S::Closed),
    (S::Connecting, E::Close, S::Closed),
    (S::Connected, E::Read, S::Connected),
    (S::Connected, E::Write, S::Connected),
    (S::Connected, E::Timeout, S::Connected),
    (S::Connected, E::PeerClosed, S::Closing),
    (S::Connected, E::Close, S::Closing),
    (S::Listening, E::Accept, S::Listening),
    (S::Listening, E::Timeout, S::Listening),
    (S::Listening, E::Close, S::Closed),
    (S::Closing, E::Write, S::Closing),
    (S::Closing, E::CloseCompleted, S::Closed),
    (S::Closing, E::Close, S::Closed),
    (S::Closing, E::Timeout, S::Closed),
    (S::Closed, E::Close, S::Closed),
];

fn model(state: S, event: E) -> Option<S> {
    TABLE
        .iter()
        .find(|(s, e, _)| *s == state && *e == event)
        .map(|(_, _, next)| *next)
}

#[test]
fn every_pair_matches_the_table() {
    for state in S::ALL {
        for event in E::ALL {
            match (transition(state, event), model(state, event)) {
                (Ok(next), Some(want)) => assert_eq!(next, want, "{state} + {event:?}"),
                (Err(SocketStateError::InvalidState { op, state: s }), None) => {
                    assert_eq!((op, s), (event.name(), state));
                }
                (got, want) => panic!("{state} + {event:?}: got {got:?}, table says {want:?}"),
            }
        }
    }
    let message = transition(S::Closed, E::Read).unwrap_err().to_string();
    assert_eq!(message, "cannot read a socket that is closed");
}

fn event() -> impl Strategy<Value = E> {
    prop::sample::select(E::ALL.to_vec())
}

proptest! {
    #[test]
    fn sequences_match_the_model_and_failures_change_nothing(
        steps in prop::collection::vec(
            (event(), any::<bool>(), prop::option::of(0u64..5_000), 0u64..1_000),
            1..40,
        ),
    ) {
        let mut machine = SocketStateMachine::new();
        let mut state = S::Init;
        let mut now = Timestamp::ZERO;
        for (event, begin, timeout_ms, advance) in steps {
            now += Duration::from_millis(advance);
            let before = machine;
            let want = model(state, event);
            if begin {
                let timeout = timeout_ms.map(Duration::from_millis);
                match machine.begin(event, now, timeout) {
                    Ok(deadline) => {
                        prop_assert_eq!(Some(machine.state()), want);
                        prop_assert_eq!(deadline, timeout.map(|t| now + t));
                        prop_assert_eq!(machine.deadline(), deadline);
                        if let Some(t) = timeout {
                            if !t.is_zero() {
                                let just_before = now + (t - Duration::from_nanos(1));
                                prop_assert!(!machine.is_expired(just_before));
                            }
                            prop_assert!(machine.is_expired(now + t));
                            prop_assert_eq!(machine.remaining(now), Some(t));
                        } else {
                            prop_assert!(!machine.is_expired(Timestamp::MAX));
                        }
                    }
                    Err(_) => {
                        prop_assert_eq!(want, None);
                        prop_assert_eq!(machine, before);
                    }
                }
            } else {
                match machine.apply(event) {
                    Ok(next) => {
                        prop_assert_eq!(Some(next), want);
                        prop_assert_eq!(machine.deadline(), None);
                    }
                    Err(_) => {
                        prop_assert_eq!(want, None);
                        prop_assert_eq!(machine, before);
                    }
                }
            }
            state = machine.state();
        }
    }
}
