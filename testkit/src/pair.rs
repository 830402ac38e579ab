//! `Pair`: a tiny in-memory driver that connects two sessions and runs them on virtual time.
//!
//! Bytes move between the two [`Connection`]s in chunks of a chosen size (to exercise every
//! split), time jumps straight to the earliest deadline, and a step cap turns a livelock into
//! an error instead of a hang. Tests, examples and docs use it; it has no I/O of its own.

use std::collections::VecDeque;
use std::time::Duration;

use concurrence_core::{
    Connection, Direction, EndKind, EndReason, Output, ReaderConfig, Session, Timestamp,
    WriterConfig,
};

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
    /// `a` to `b`, `b` to `a`.
    pipes: [Pipe; 2],
    /// Each side's next deadline and why it closed, from its drains.
    until: [Option<Timestamp>; 2],
    reasons: [Option<EndReason>; 2],
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settled {
    /// Both connections closed.
    Closed,
    /// Nothing more will happen by itself: no bytes held anywhere, no deadline.
    Idle,
    /// Nothing more will happen by itself, yet bytes are held: both sides wait for the other
    /// to read (typically two sessions that each send more than their writer's high-water mark
    /// before reading). The counts are the bytes each side has written and the other has not
    /// taken (still in its writer or in flight).
    Stalled {
        /// Bytes `a` wrote that `b` has not taken.
        a_unsent: usize,
        /// Bytes `b` wrote that `a` has not taken.
        b_unsent: usize,
    },
    /// The time bound of [`Pair::run_for`] was reached.
    TimeUp,
}

/// How many bytes one direction holds in flight, as a socket's buffers would: past it, the
/// sender is told its socket is full.
pub const PAIR_IN_FLIGHT: usize = 64 * 1024;

/// One direction between the two sides: bytes in flight and what follows them.
#[derive(Debug, Default)]
struct Pipe {
    bytes: VecDeque<u8>,
    /// The sender shut down its write side (or closed): end of stream after the bytes.
    fin: bool,
    /// The end of stream was told to the receiver.
    fin_told: bool,
    /// The sender reset: the receiver is told at once.
    reset: bool,
    reset_told: bool,
    /// The receiver closed: bytes sent now are answered with a reset, as a real stack does.
    receiver_gone: bool,
}

/// What one side's drain found.
struct Drained {
    progress: bool,
    until: Option<Timestamp>,
    /// Why it closed, when this drain saw its `Close`.
    closed: Option<EndReason>,
}

/// One side's drain of `poll_output`: receive from `inbound`, transmit into `outbound`, at
/// most `chunk` bytes per operation, until the connection waits or closes.
fn drain<S: Session>(
    now: Timestamp,
    chunk: usize,
    conn: &mut Connection<S>,
    inbound: &mut Pipe,
    outbound: &mut Pipe,
    moved: &mut u64,
) -> Drained {
    let mut progress = false;
    if inbound.reset && !inbound.reset_told {
        inbound.reset_told = true;
        conn.handle_io_error(now, std::io::ErrorKind::ConnectionReset.into());
        progress = true;
    }
    loop {
        match conn.poll_output(now) {
            Output::Receive(room) => {
                let n = room.len().min(inbound.bytes.len()).min(chunk);
                if n > 0 {
                    for (slot, byte) in room.iter_mut().zip(inbound.bytes.drain(..n)) {
                        *slot = byte;
                    }
                    conn.handle_received(now, n);
                    progress = true;
                } else if inbound.bytes.is_empty() && inbound.fin && !inbound.fin_told {
                    inbound.fin_told = true;
                    conn.handle_peer_closed(now);
                    progress = true;
                } else {
                    conn.handle_blocked(Direction::Read);
                }
            }
            Output::Transmit(data) => {
                if outbound.receiver_gone {
                    conn.handle_io_error(now, std::io::ErrorKind::ConnectionReset.into());
                    progress = true;
                    continue;
                }
                let room = PAIR_IN_FLIGHT.saturating_sub(outbound.bytes.len());
                let n = data.len().min(room).min(chunk);
                if n == 0 {
                    conn.handle_blocked(Direction::Write);
                } else {
                    outbound.bytes.extend(&data[..n]);
                    conn.handle_sent(now, n);
                    *moved += n as u64;
                    progress = true;
                }
            }
            Output::ShutdownWrite => {
                outbound.fin = true;
                progress = true;
            }
            Output::Close { reset, reason } => {
                let reason = reason.clone();
                if reset {
                    outbound.reset = true;
                    outbound.bytes.clear();
                } else {
                    outbound.fin = true;
                }
                inbound.receiver_gone = true;
                return Drained {
                    progress: true,
                    until: None,
                    closed: Some(reason),
                };
            }
            Output::Ended(_) => {
                return Drained {
                    progress,
                    until: None,
                    closed: None,
                };
            }
            Output::Wait { until, .. } => {
                return Drained {
                    progress,
                    until,
                    closed: None,
                };
            }
            // An output this driver does not know (a newer core): stop the connection.
            _ => {
                conn.handle_shutdown(now);
                progress = true;
            }
        }
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
            pipes: [Pipe::default(), Pipe::default()],
            until: [None, None],
            reasons: [None, None],
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
        (self.reasons[0].as_ref(), self.reasons[1].as_ref())
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

    /// Drains both sides once; true if anything moved or changed.
    fn step(&mut self) -> bool {
        let now = self.now;
        let [ab, ba] = &mut self.pipes;
        let a = drain(now, self.chunk, &mut self.a, ba, ab, &mut self.bytes_moved);
        let b = drain(now, self.chunk, &mut self.b, ab, ba, &mut self.bytes_moved);
        self.until = [a.until, b.until];
        for (slot, closed) in self.reasons.iter_mut().zip([a.closed, b.closed]) {
            if closed.is_some() {
                *slot = closed;
            }
        }
        a.progress || b.progress
    }

    fn run_until(&mut self, end: Timestamp) -> Result<Settled, PairError> {
        if !self.started {
            self.started = true;
            self.a.handle_start(self.now);
            self.b.handle_start(self.now);
        }
        for _ in 0..self.max_steps {
            if self.step() {
                continue;
            }
            if self.reasons.iter().all(Option::is_some) {
                return Ok(Settled::Closed);
            }
            let next = match self.until {
                [Some(x), Some(y)] => x.min(y),
                [Some(x), None] | [None, Some(x)] => x,
                [None, None] => {
                    let a_unsent = self.a.writer().pending_len() + self.pipes[0].bytes.len();
                    let b_unsent = self.b.writer().pending_len() + self.pipes[1].bytes.len();
                    if a_unsent + b_unsent == 0 {
                        return Ok(Settled::Idle);
                    }
                    return Ok(Settled::Stalled { a_unsent, b_unsent });
                }
            };
            if next > end {
                self.now = self.now.max(end);
                return Ok(Settled::TimeUp);
            }
            // The next drain runs what is due at `next`.
            self.now = self.now.max(next);
        }
        Err(PairError::StepLimit {
            steps: self.max_steps,
            now: self.now,
        })
    }
}
