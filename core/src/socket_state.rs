//! The seed's socket states as a transition function, with per-call deadlines.
//!
//! `Init -> Connecting -> Connected -> Closing -> Closed` and `Init -> Listening -> Closed`.
//! Backends keep one [`SocketStateMachine`] per socket and ask it before every operation; an
//! operation in the wrong state is an error value, never a panic.

use std::fmt;
use std::time::Duration;

use crate::{Timestamp, deadline};

/// Where a socket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SocketState {
    /// Created, neither connecting nor listening.
    Init,
    /// A connect is in progress.
    Connecting,
    /// Connected: reads and writes allowed.
    Connected,
    /// Accepting connections.
    Listening,
    /// Close started (or the peer closed): pending writes may still drain; no reads.
    Closing,
    /// Closed; only `close` (a no-op) is allowed.
    Closed,
}

impl SocketState {
    /// Every state, for tables and tests.
    pub const ALL: [SocketState; 6] = [
        SocketState::Init,
        SocketState::Connecting,
        SocketState::Connected,
        SocketState::Listening,
        SocketState::Closing,
        SocketState::Closed,
    ];
}

impl fmt::Display for SocketState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            SocketState::Init => "init",
            SocketState::Connecting => "connecting",
            SocketState::Connected => "connected",
            SocketState::Listening => "listening",
            SocketState::Closing => "closing",
            SocketState::Closed => "closed",
        };
        f.write_str(name)
    }
}

/// Something that happens to a socket: an operation started or an outcome observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SocketEvent {
    /// `connect` was called.
    ConnectStarted,
    /// The connect finished.
    ConnectCompleted,
    /// The connect failed (refused, unreachable, reset).
    ConnectFailed,
    /// `listen` was called.
    Listen,
    /// `accept` was called on a listening socket.
    Accept,
    /// `read` was called.
    Read,
    /// `write` was called.
    Write,
    /// A read returned end of stream.
    PeerClosed,
    /// `close` was called.
    Close,
    /// The close finished (pending output drained or dropped).
    CloseCompleted,
    /// The deadline of the operation in progress passed.
    Timeout,
}

impl SocketEvent {
    /// Every event, for tables and tests.
    pub const ALL: [SocketEvent; 11] = [
        SocketEvent::ConnectStarted,
        SocketEvent::ConnectCompleted,
        SocketEvent::ConnectFailed,
        SocketEvent::Listen,
        SocketEvent::Accept,
        SocketEvent::Read,
        SocketEvent::Write,
        SocketEvent::PeerClosed,
        SocketEvent::Close,
        SocketEvent::CloseCompleted,
        SocketEvent::Timeout,
    ];

    /// The operation's name, as errors show it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            SocketEvent::ConnectStarted => "connect",
            SocketEvent::ConnectCompleted => "connect completion",
            SocketEvent::ConnectFailed => "connect failure",
            SocketEvent::Listen => "listen",
            SocketEvent::Accept => "accept",
            SocketEvent::Read => "read",
            SocketEvent::Write => "write",
            SocketEvent::PeerClosed => "end of stream",
            SocketEvent::Close => "close",
            SocketEvent::CloseCompleted => "close completion",
            SocketEvent::Timeout => "timeout",
        }
    }
}

/// Why a socket operation was refused by the state machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SocketStateError {
    /// The operation is not allowed in the socket's current state.
    #[error("cannot {op} a socket that is {state}")]
    InvalidState {
        /// The operation, e.g. `"read"`.
        op: &'static str,
        /// The state the socket was in.
        state: SocketState,
    },
}

/// The transition function: the state after `event` in `state`, or `InvalidState`.
///
/// A read timeout leaves a connected socket connected (usable); a connect timeout closes it.
///
/// # Errors
/// [`SocketStateError::InvalidState`] when `event` cannot happen in `state`.
pub fn transition(state: SocketState, event: SocketEvent) -> Result<SocketState, SocketStateError> {
    use SocketEvent as E;
    use SocketState as S;
    let next = match (state, event) {
        (S::Init, E::ConnectStarted) => S::Connecting,
        (S::Init, E::Listen) => S::Listening,
        (S::Connecting, E::ConnectCompleted) => S::Connected,
        (S::Connecting, E::ConnectFailed | E::Timeout) => S::Closed,
        (S::Connected, E::Read | E::Write | E::Timeout) => S::Connected,
        (S::Connected, E::PeerClosed) => S::Closing,
        (S::Connected, E::Close) => S::Closing,
        (S::Listening, E::Accept | E::Timeout) => S::Listening,
        (S::Closing, E::Write) => S::Closing,
        (S::Closing, E::CloseCompleted | E::Close | E::Timeout) => S::Closed,
        (S::Init | S::Connecting | S::Listening | S::Closed, E::Close) => S::Closed,
        (state, event) => {
            return Err(SocketStateError::InvalidState {
                op: event.name(),
                state,
            });
        }
    };
    Ok(next)
}

/// A socket's state plus the deadline of the operation in progress.
///
/// ```
/// use std::time::Duration;
/// use concurrence_core::{SocketEvent, SocketState, SocketStateMachine, Timestamp};
///
/// let mut socket = SocketStateMachine::new();
/// let t0 = Timestamp::ZERO;
/// let deadline = socket.begin(SocketEvent::ConnectStarted, t0, Some(Duration::from_secs(1)))?;
/// assert_eq!(deadline, Some(Timestamp::from_millis(1000)));
/// assert!(!socket.is_expired(Timestamp::from_millis(999)));
/// socket.apply(SocketEvent::ConnectCompleted)?;
/// assert_eq!(socket.state(), SocketState::Connected);
/// assert!(socket.begin(SocketEvent::Listen, t0, None).is_err()); // wrong state
/// # Ok::<(), concurrence_core::SocketStateError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketStateMachine {
    state: SocketState,
    deadline: Option<Timestamp>,
}

impl Default for SocketStateMachine {
    fn default() -> Self {
        SocketStateMachine::new()
    }
}

impl SocketStateMachine {
    /// A socket in `Init`.
    #[must_use]
    pub fn new() -> Self {
        SocketStateMachine::in_state(SocketState::Init)
    }

    /// A socket already in `state` (e.g. `Connected` for an accepted socket).
    #[must_use]
    pub fn in_state(state: SocketState) -> Self {
        SocketStateMachine {
            state,
            deadline: None,
        }
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> SocketState {
        self.state
    }

    /// The deadline of the operation in progress, if it has one.
    #[must_use]
    pub fn deadline(&self) -> Option<Timestamp> {
        self.deadline
    }

    /// Starts an operation at `now` with `timeout` (`None` waits forever, the seed's -1):
    /// checks it is allowed, applies its transition, and returns its deadline.
    ///
    /// # Errors
    /// [`SocketStateError::InvalidState`]; the state and deadline stay as they were.
    pub fn begin(
        &mut self,
        op: SocketEvent,
        now: Timestamp,
        timeout: Option<Duration>,
    ) -> Result<Option<Timestamp>, SocketStateError> {
        self.state = transition(self.state, op)?;
        self.deadline = deadline(now, timeout);
        Ok(self.deadline)
    }

    /// Applies an outcome (completion, failure, end of stream); clears the deadline.
    ///
    /// # Errors
    /// [`SocketStateError::InvalidState`]; nothing changes.
    pub fn apply(&mut self, event: SocketEvent) -> Result<SocketState, SocketStateError> {
        self.state = transition(self.state, event)?;
        self.deadline = None;
        Ok(self.state)
    }

    /// True when the operation in progress has a deadline at or before `now`.
    #[must_use]
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.deadline.is_some_and(|d| d <= now)
    }

    /// How long until the deadline (zero once passed); `None` without one.
    #[must_use]
    pub fn remaining(&self, now: Timestamp) -> Option<Duration> {
        self.deadline.map(|d| d.saturating_duration_since(now))
    }
}
