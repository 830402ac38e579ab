//! `Pair`: a tiny in-memory driver that connects two sessions and runs them on virtual time.
//!
//! Bytes move between the two [`Connection`]s in chunks of a chosen size (to exercise every
//! split), time jumps straight to the earliest deadline, and a step cap turns a livelock into
//! an error instead of a hang. Tests, examples and docs use it; it has no I/O of its own.

use std::time::Duration;

use crate::{Connection, ReaderConfig, Session, SessionError, Timestamp, WriterConfig};

/// Why [`Pair::run`] stopped without the pair settling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PairError {
    /// More steps than the cap: the sessions keep each other busy forever (or the cap is too
    /// low for the scenario; raise it with [`Pair::with_max_steps`]).
    #[error("no quiescence after {steps} steps (Pair::with_max_steps); virtual time {now:?}")]
    StepLimit {
        /// The cap that was hit.
        steps: usize,
        /// Virtual time when it was hit.
        now: Timestamp,
    },
}

/// Two sessions, `a` and `b`, connected by an in-memory byte stream each way.
#[derive(Debug)]
pub struct Pair<A, B> {
    a: Connection<A>,
    b: Connection<B>,
    now: Timestamp,
    chunk: usize,
    max_steps: usize,
    started: bool,
    bytes_moved: u64,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Both connections closed.
    Closed,
    /// Nothing more will happen by itself: no bytes in flight, no deadline.
    Idle,
    /// The time bound of [`Pair::run_for`] was reached.
    TimeUp,
}

fn transfer<X: Session, Y: Session>(
    now: Timestamp,
    chunk: usize,
    from: &mut Connection<X>,
    to: &mut Connection<Y>,
) -> usize {
    let data = from.poll_transmit();
    if data.is_empty() {
        return 0;
    }
    if to.is_closed() {
        // Nobody will ever read it: the peer is gone (a real stack would reset).
        let n = data.len();
        from.handle_sent(now, n);
        return n;
    }
    let room = to.recv_buffer();
    let n = data.len().min(room.len()).min(chunk.max(1));
    if n == 0 {
        return 0;
    }
    room[..n].copy_from_slice(&data[..n]);
    to.handle_received(now, n);
    from.handle_sent(now, n);
    n
}

/// End of stream travels once the closed side has nothing left in flight.
fn propagate_close<X: Session, Y: Session>(
    now: Timestamp,
    from: &Connection<X>,
    to: &mut Connection<Y>,
) {
    if from.is_closed() {
        to.handle_peer_closed(now);
    }
}

impl<A: Session, B: Session> Pair<A, B> {
    /// Connects `a` and `b` with default bounds, whole-buffer transfers and a cap of 100,000
    /// steps.
    pub fn new(a: A, b: B) -> Self {
        Pair::with_configs(a, b, ReaderConfig::default(), WriterConfig::default())
    }

    /// Connects `a` and `b`, each with the given reader and writer bounds.
    pub fn with_configs(a: A, b: B, reader: ReaderConfig, writer: WriterConfig) -> Self {
        Pair::from_connections(
            Connection::new(a, reader, writer),
            Connection::new(b, reader, writer),
        )
    }

    /// Connects two prepared connections (each with its own bounds).
    pub fn from_connections(a: Connection<A>, b: Connection<B>) -> Self {
        Pair {
            a,
            b,
            now: Timestamp::ZERO,
            chunk: usize::MAX,
            max_steps: 100_000,
            started: false,
            bytes_moved: 0,
        }
    }

    /// Moves at most `chunk` bytes per transfer (1 delivers byte by byte).
    #[must_use]
    pub fn with_chunk_size(mut self, chunk: usize) -> Self {
        self.chunk = chunk.max(1);
        self
    }

    /// Caps the steps of one `run` call.
    #[must_use]
    pub fn with_max_steps(mut self, steps: usize) -> Self {
        self.max_steps = steps;
        self
    }

    /// Virtual time now.
    #[must_use]
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Bytes moved between the two sides so far.
    #[must_use]
    pub fn bytes_moved(&self) -> u64 {
        self.bytes_moved
    }

    /// Side `a`.
    pub fn a(&self) -> &Connection<A> {
        &self.a
    }

    /// Side `a`, mutably.
    pub fn a_mut(&mut self) -> &mut Connection<A> {
        &mut self.a
    }

    /// Side `b`.
    pub fn b(&self) -> &Connection<B> {
        &self.b
    }

    /// Side `b`, mutably.
    pub fn b_mut(&mut self) -> &mut Connection<B> {
        &mut self.b
    }

    /// Session errors that closed either side, taken once: `(a's, b's)`.
    pub fn take_errors(&mut self) -> (Option<SessionError>, Option<SessionError>) {
        (self.a.take_error(), self.b.take_error())
    }

    /// Runs until both sides closed or nothing more can happen.
    ///
    /// # Errors
    /// [`PairError::StepLimit`] if the cap is hit.
    pub fn run(&mut self) -> Result<Settled, PairError> {
        self.run_until(Timestamp::MAX)
    }

    /// Runs for `duration` of virtual time (or until settled).
    ///
    /// # Errors
    /// [`PairError::StepLimit`] if the cap is hit.
    pub fn run_for(&mut self, duration: Duration) -> Result<Settled, PairError> {
        let end = self.now + duration;
        self.run_until(end)
    }

    fn run_until(&mut self, end: Timestamp) -> Result<Settled, PairError> {
        if !self.started {
            self.started = true;
            self.a.handle_start(self.now);
            self.b.handle_start(self.now);
        }
        for _ in 0..self.max_steps {
            let now = self.now;
            let moved = transfer(now, self.chunk, &mut self.a, &mut self.b)
                + transfer(now, self.chunk, &mut self.b, &mut self.a);
            self.bytes_moved += moved as u64;
            propagate_close(now, &self.a, &mut self.b);
            propagate_close(now, &self.b, &mut self.a);
            if moved > 0 {
                continue;
            }
            if self.a.is_closed() && self.b.is_closed() {
                return Ok(Settled::Closed);
            }
            let next = match (self.a.poll_timeout(), self.b.poll_timeout()) {
                (Some(x), Some(y)) => x.min(y),
                (Some(x), None) | (None, Some(x)) => x,
                (None, None) => return Ok(Settled::Idle),
            };
            if next > end {
                self.now = self.now.max(end);
                return Ok(Settled::TimeUp);
            }
            self.now = self.now.max(next);
            self.a.handle_timeout(self.now);
            self.b.handle_timeout(self.now);
        }
        Err(PairError::StepLimit {
            steps: self.max_steps,
            now: self.now,
        })
    }
}
