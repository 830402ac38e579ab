//! `Pair`: a tiny in-memory driver that connects two sessions and runs them on virtual time.
//!
//! Bytes move between the two [`Connection`]s in chunks of a chosen size (to exercise every
//! split), time jumps straight to the earliest deadline, and a step cap turns a livelock into
//! an error instead of a hang. Tests, examples and docs use it; it has no I/O of its own.

use std::time::Duration;

use crate::{Connection, EndKind, EndReason, ReaderConfig, Session, Timestamp, WriterConfig};

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
    /// Whether each side's close has reached the other: `(a's, b's)`.
    close_told: (bool, bool),
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
        // Bytes for a closed socket: a real stack answers with a reset.
        from.handle_io_error(now, std::io::ErrorKind::ConnectionReset.into());
        return 0;
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

/// A write-side shutdown travels as end of stream (everything before it was delivered: a
/// connection asks for it only once nothing is pending); a finished side's close travels
/// once, as end of stream or, for an abort, as a reset.
fn propagate_close<X: Session, Y: Session>(
    now: Timestamp,
    from: &mut Connection<X>,
    to: &mut Connection<Y>,
    told: &mut bool,
) -> bool {
    let mut changed = false;
    if from.poll_shutdown_write() {
        to.handle_peer_closed(now);
        changed = true;
    }
    if from.is_closed() && !*told {
        *told = true;
        changed = true;
        if from.wants_reset() {
            to.handle_io_error(now, std::io::ErrorKind::ConnectionReset.into());
        } else {
            to.handle_peer_closed(now);
        }
    }
    changed
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
            close_told: (false, false),
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

    /// Why each side ended, once it did: `(a's, b's)`.
    #[must_use]
    pub fn end_reasons(&self) -> (Option<&EndReason>, Option<&EndReason>) {
        (self.a.end_reason(), self.b.end_reason())
    }

    /// The kinds of [`end_reasons`](Self::end_reasons): `(a's, b's)`.
    #[must_use]
    pub fn end_kinds(&self) -> (Option<EndKind>, Option<EndKind>) {
        (self.a.end_kind(), self.b.end_kind())
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
            let closes = propagate_close(now, &mut self.a, &mut self.b, &mut self.close_told.0)
                | propagate_close(now, &mut self.b, &mut self.a, &mut self.close_told.1);
            if moved > 0 || closes {
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
