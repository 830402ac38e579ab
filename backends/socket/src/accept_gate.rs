//! `AcceptGate`: the accept policy, written once for every accept loop (the polling event
//! loop, the blocking handler server, smol, the simulator, the conformance stream driver).
//! It decides, without I/O, whether a loop may accept now (below `max_connections`, not
//! resting) and what a failed accept means: retry at once when that one connection went away,
//! rest the listener when a resource is exhausted (logged once until an accept succeeds), stop
//! when the listener itself is gone.

use std::time::Duration;

use concurrence_core::Timestamp;

use crate::ServerConfig;

/// What an `accept` error means for the loop (each backend classifies its own errors: the
/// socket backends by `errno`, as accept(2) says; the simulator by its host's state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcceptFailure {
    /// Interrupted, or that one connection failed before it was accepted: accept again now.
    Retry,
    /// Out of a resource (descriptors, buffers, memory), or a failure not known to be
    /// transient: rest the listener for `ServerConfig::accept_error_pause`, log once.
    Rest,
    /// The listener cannot accept any more (closed under the loop, its host down): stop
    /// serving with the error.
    Fatal,
}

/// What the loop does after a failed accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptStep {
    /// Accept again now.
    Retry,
    /// Do not accept before `until` (the loop keeps serving its connections meanwhile).
    Rest {
        /// When accepting may start again.
        until: Timestamp,
        /// The rest's length (`ServerConfig::accept_error_pause`).
        pause: Duration,
    },
    /// Stop serving; return the error.
    Stop,
}

/// One accept loop's policy state: the rest in progress and whether its failure was logged.
#[derive(Debug, Clone)]
pub struct AcceptGate {
    max_connections: usize,
    pause: Duration,
    resting_until: Option<Timestamp>,
    logged: bool,
}

impl AcceptGate {
    /// The policy of `config` (`max_connections`, `accept_error_pause`).
    #[must_use]
    pub fn new(config: &ServerConfig) -> Self {
        AcceptGate {
            max_connections: config.max_connections.max(1),
            pause: config.accept_error_pause,
            resting_until: None,
            logged: false,
        }
    }

    /// The same policy with another cap (the blocking handler server's is also bounded by
    /// its thread limit).
    #[must_use]
    pub fn with_max_connections(mut self, max_connections: usize) -> Self {
        self.max_connections = max_connections.max(1);
        self
    }

    /// Whether `live` connections leave room for one more.
    #[must_use]
    pub fn has_room(&self, live: usize) -> bool {
        live < self.max_connections
    }

    /// The end of the rest in progress at `now`, if any (a rest that is over is forgotten).
    pub fn resting(&mut self, now: Timestamp) -> Option<Timestamp> {
        match self.resting_until {
            Some(until) if until > now => Some(until),
            _ => {
                self.resting_until = None;
                None
            }
        }
    }

    /// Whether the loop may accept at `now` with `live` connections.
    pub fn may_accept(&mut self, now: Timestamp, live: usize) -> bool {
        self.has_room(live) && self.resting(now).is_none()
    }

    /// An accept succeeded: the next failure is logged again.
    pub fn accepted(&mut self) {
        self.logged = false;
    }

    /// An accept failed at `now` with `error`, classified as `failure`; logs it (a rest once
    /// until an accept succeeds, a retry at debug level) and says what to do.
    pub fn failed(
        &mut self,
        failure: AcceptFailure,
        error: &dyn std::fmt::Display,
        now: Timestamp,
    ) -> AcceptStep {
        match failure {
            AcceptFailure::Retry => {
                tracing::debug!(%error, "accept failed for one connection; accepting on");
                AcceptStep::Retry
            }
            AcceptFailure::Fatal => {
                tracing::warn!(%error, "the listener cannot accept any more; serving stops");
                AcceptStep::Stop
            }
            AcceptFailure::Rest => {
                if !self.logged {
                    tracing::warn!(%error, pause = ?self.pause,
                        "accept failed; pausing accepts (logged once until an accept succeeds)");
                    self.logged = true;
                }
                let until = now + self.pause;
                self.resting_until = Some(until);
                AcceptStep::Rest {
                    until,
                    pause: self.pause,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rest_blocks_accepts_until_its_end_and_the_cap_blocks_them_until_a_slot_frees() {
        let config = ServerConfig {
            max_connections: 2,
            accept_error_pause: Duration::from_millis(100),
            ..ServerConfig::default()
        };
        let mut gate = AcceptGate::new(&config);
        let t0 = Timestamp::ZERO;
        assert!(gate.may_accept(t0, 1));
        assert!(!gate.may_accept(t0, 2), "at the cap");
        let step = gate.failed(AcceptFailure::Rest, &"EMFILE", t0);
        let until = t0 + Duration::from_millis(100);
        assert_eq!(
            step,
            AcceptStep::Rest {
                until,
                pause: Duration::from_millis(100)
            }
        );
        assert!(!gate.may_accept(t0 + Duration::from_millis(99), 0));
        assert_eq!(gate.resting(t0 + Duration::from_millis(99)), Some(until));
        assert!(gate.may_accept(until, 0), "the rest ends at its deadline");
        assert_eq!(
            gate.failed(AcceptFailure::Retry, &"ECONNABORTED", until),
            AcceptStep::Retry
        );
        assert!(gate.may_accept(until, 0), "a retry does not rest");
        assert_eq!(
            gate.failed(AcceptFailure::Fatal, &"host down", until),
            AcceptStep::Stop
        );
    }
}
