//! A hostile scripted peer for `Connection`: it sends, delivers in short reads, reads in short
//! writes, half-closes, resets and lets time jump, while a line-echo session runs on the other
//! side; then it checks the lifecycle invariants.
//!
//! The invariants (checked by the proptest in `core/tests/connection_props.rs` and the
//! `connection` fuzz target): what the peer receives is always a prefix of the replies a plain
//! model computes from the input the connection took; it is all of them when the connection
//! ended in order or by a session error with nothing unsent; no byte follows our FIN; memory
//! stays within the configured bounds; the session is told its end exactly once; and, once the
//! peer behaves, the connection finishes within a step bound.

use std::collections::VecDeque;
use std::time::Duration;

use concurrence_core::{
    BufferPool, Connection, ConnectionConfig, Direction, EndKind, EndReason, Next, Output,
    ReaderConfig, Session, SessionError, StreamReader, StreamWriter, Timestamp, WriterConfig,
};

/// One move of the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerOp {
    /// Put these bytes on the wire (they reach the connection with `Deliver`).
    Send(Vec<u8>),
    /// Up to this many bytes on the wire reach the connection (a short read).
    Deliver(usize),
    /// Read up to this many bytes of the connection's output (a short write).
    Read(usize),
    /// Half-close: end of stream follows the bytes already on the wire.
    HalfClose,
    /// Reset the connection.
    Reset,
    /// Let this many milliseconds pass.
    Advance(u64),
}

/// The commands the session under test knows, one per line; any other line is echoed.
pub const COMMANDS: [&str; 5] = ["CLOSE", "HALF", "ERR", "ABORT", "WAIT"];

/// The bounds a run uses.
#[derive(Debug, Clone, Copy)]
pub struct ModelConfig {
    /// The connection's settings.
    pub connection: ConnectionConfig,
}

impl ModelConfig {
    /// Small buffers, so that back-pressure and full readers happen often.
    #[must_use]
    pub fn small(max_line: usize, high_water: usize, idle_ms: Option<u64>, linger_ms: u64) -> Self {
        let max_line = max_line.max(1);
        let reader = ReaderConfig::default()
            .with_buffer_size(16)
            .with_max_line(max_line)
            .with_max_block(16);
        let high_water = high_water.max(1);
        // Room for one whole reply past the high-water mark: an honest session never fails
        // with a full writer.
        let writer = WriterConfig::default()
            .with_buffer_size(16)
            .with_high_water(high_water)
            .with_max_pending(high_water + max_line + 8);
        let connection = ConnectionConfig::default()
            .with_buffers(reader, writer)
            .with_idle_timeout(idle_ms.map(Duration::from_millis))
            .with_linger(Duration::from_millis(linger_ms));
        ModelConfig { connection }
    }
}

/// The session under test: echoes each line with `\n`; `CLOSE` answers `BYE` and closes;
/// `HALF` answers `HALF` and half-closes (later lines are read silently); `ERR` answers `ERR`
/// and fails; `ABORT` aborts; `WAIT` sets a deadline one second out. Honours back-pressure and
/// fails on a partial last line (`?` on `UnexpectedEof`), as real sessions do.
#[derive(Debug, Default)]
pub struct ModelEcho {
    half_closed: bool,
    deadline: Option<Timestamp>,
    /// How often `handle_end` was called.
    pub ends_told: usize,
    /// The reason it was told.
    pub end: Option<EndKind>,
}

impl Session for ModelEcho {
    fn handle_input(
        &mut self,
        now: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        while !writer.is_backpressured() {
            let Some(line) = reader.read_line(false)? else {
                break;
            };
            if self.half_closed {
                continue;
            }
            match line {
                b"CLOSE" => {
                    writer.write_bytes(b"BYE\n")?;
                    return Ok(Next::Close);
                }
                b"HALF" => {
                    writer.write_bytes(b"HALF\n")?;
                    self.half_closed = true;
                    return Ok(Next::CloseWrite);
                }
                b"ERR" => {
                    writer.write_bytes(b"ERR\n")?;
                    return Err(SessionError::Protocol("ERR requested".into()));
                }
                b"ABORT" => return Ok(Next::Abort),
                b"WAIT" => self.deadline = Some(now + Duration::from_secs(1)),
                other => {
                    writer.write_bytes(other)?;
                    writer.write_bytes(b"\n")?;
                }
            }
        }
        Ok(Next::Continue)
    }

    fn handle_timeout(&mut self, _: Timestamp, _: &mut StreamWriter) -> Result<Next, SessionError> {
        self.deadline = None;
        Ok(Next::Continue)
    }

    fn handle_end(&mut self, _: Timestamp, reason: &EndReason) {
        self.ends_told += 1;
        self.end = Some(reason.kind());
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        self.deadline
    }
}

/// The replies [`ModelEcho`] owes for `input` (what the connection took), by the plain rules.
#[must_use]
pub fn expected_replies(input: &[u8], max_line: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut half_closed = false;
    let mut rest = input;
    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..end];
        rest = &rest[end + 1..];
        if line.len() > max_line {
            return out;
        }
        if half_closed {
            continue;
        }
        match line {
            b"CLOSE" => {
                out.extend_from_slice(b"BYE\n");
                return out;
            }
            b"HALF" => {
                out.extend_from_slice(b"HALF\n");
                half_closed = true;
            }
            b"ERR" => {
                out.extend_from_slice(b"ERR\n");
                return out;
            }
            b"ABORT" => return out,
            b"WAIT" => {}
            other => {
                out.extend_from_slice(other);
                out.push(b'\n');
            }
        }
    }
    out
}

/// What a run ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// How the connection ended.
    pub end: EndKind,
    /// What the peer received.
    pub received: Vec<u8>,
    /// What the connection took from the wire.
    pub taken: Vec<u8>,
    /// Steps the final, well-behaved phase needed.
    pub settle_steps: usize,
}

/// The most steps the final phase may take before the run counts as a livelock.
pub const SETTLE_STEP_LIMIT: usize = 100_000;

struct Harness {
    conn: Connection<ModelEcho>,
    /// The connection gives its idle buffers here and borrows them back, as the polling loop
    /// does: a reused buffer must never change what the peer gets.
    pool: BufferPool,
    config: ModelConfig,
    now: Timestamp,
    wire: VecDeque<u8>,
    fin_queued: bool,
    fin_delivered: bool,
    reset: bool,
    taken: Vec<u8>,
    received: Vec<u8>,
    got_fin: bool,
    /// `Output::Close` was given.
    closed: bool,
    /// The connection's deadline, from its last `Wait`.
    until: Option<Timestamp>,
    /// A deadline fired while the connection was ending and the hostile peer was not reading:
    /// its linger may have run out.
    advanced_while_ending: bool,
    /// When the connection was first seen ending (its linger runs from then).
    ending_since: Option<Timestamp>,
}

impl Harness {
    /// True when the connection is ending and its linger deadline has come (the connection
    /// started its linger at the harness time it was first seen ending: time moves only
    /// between drives).
    fn linger_due(&mut self) -> bool {
        if !self.conn.is_ending() || self.closed {
            return false;
        }
        let since = *self.ending_since.get_or_insert(self.now);
        self.now >= since.saturating_add(self.config.connection.linger)
    }

    fn check(&mut self) -> Result<(), String> {
        let max_line = self.config.connection.reader.max_line;
        let expected = expected_replies(&self.taken, max_line);
        if !expected.starts_with(&self.received) {
            return Err(format!(
                "received {:?} is not a prefix of the replies owed, {:?}",
                String::from_utf8_lossy(&self.received),
                String::from_utf8_lossy(&expected)
            ));
        }
        let reader = self.conn.reader();
        if reader.capacity() > self.config.connection.reader.max_buffered() {
            return Err(format!(
                "reader holds {} bytes, bound {}",
                reader.capacity(),
                self.config.connection.reader.max_buffered()
            ));
        }
        if self.conn.writer().pending_len() > self.config.connection.writer.max_pending {
            return Err("writer past max_pending".into());
        }
        let told = self.conn.session().ends_told;
        match (self.closed, told) {
            (false, 0) | (true, 1) => {}
            (closed, n) => return Err(format!("closed={closed} but the end was told {n} times")),
        }
        if self.closed && !matches!(self.conn.poll_output(self.now), Output::Ended(_)) {
            return Err("a closed connection still asks for I/O".into());
        }
        Ok(())
    }

    /// Drains `poll_output` with the peer ready to deliver up to `deliver` wire bytes and to
    /// take up to `take` bytes of output; returns how many bytes moved either way.
    fn drive(&mut self, deliver: usize, take: usize) -> Result<usize, String> {
        self.conn.take_buffers_from(&mut self.pool);
        let (mut delivered, mut took) = (0, 0);
        loop {
            if self.linger_due() {
                // The linger runs out in this poll while the hostile peer was not reading.
                self.advanced_while_ending = true;
            }
            match self.conn.poll_output(self.now) {
                Output::Receive(room) => {
                    let n = room.len().min(self.wire.len()).min(deliver - delivered);
                    if n > 0 {
                        for (slot, byte) in room[..n].iter_mut().zip(self.wire.drain(..n)) {
                            *slot = byte;
                            self.taken.push(byte);
                        }
                        self.conn.handle_received(self.now, n);
                        delivered += n;
                    } else if self.wire.is_empty() && self.fin_queued && !self.fin_delivered {
                        self.fin_delivered = true;
                        self.conn.handle_peer_closed(self.now);
                    } else {
                        self.conn.handle_blocked(Direction::Read);
                    }
                }
                Output::Transmit(data) => {
                    if self.got_fin {
                        return Err("bytes offered for sending after our FIN".into());
                    }
                    let n = data.len().min(take - took);
                    if n > 0 {
                        self.received.extend_from_slice(&data[..n]);
                        self.conn.handle_sent(self.now, n);
                        took += n;
                    } else {
                        self.conn.handle_blocked(Direction::Write);
                    }
                }
                Output::ShutdownWrite => {
                    if self.got_fin {
                        return Err("the write side was shut down twice".into());
                    }
                    self.got_fin = true;
                }
                Output::Close { .. } => {
                    self.closed = true;
                    self.until = None;
                    break;
                }
                Output::Ended(_) => {
                    if !self.closed {
                        return Err("Ended before Close".into());
                    }
                    break;
                }
                Output::Wait { until, .. } => {
                    if until.is_some_and(|t| t <= self.now) {
                        return Err(format!(
                            "Wait until {until:?}, not after now {:?}",
                            self.now
                        ));
                    }
                    self.until = until;
                    if self.conn.is_ending() {
                        self.ending_since.get_or_insert(self.now);
                    }
                    break;
                }
                _ => return Err("an output the model does not know".into()),
            }
        }
        self.conn.release_idle_buffers_to(&mut self.pool);
        Ok(delivered + took)
    }

    fn apply(&mut self, op: &PeerOp) -> Result<(), String> {
        if self.reset {
            return Ok(());
        }
        match op {
            PeerOp::Send(bytes) => {
                if !self.fin_queued {
                    self.wire.extend(bytes.iter().copied());
                }
            }
            PeerOp::Deliver(n) => {
                self.drive(*n, 0)?;
            }
            PeerOp::Read(n) => {
                self.drive(0, *n)?;
            }
            PeerOp::HalfClose => {
                self.fin_queued = true;
                self.drive(0, 0)?;
            }
            PeerOp::Reset => {
                self.reset = true;
                self.wire.clear();
                self.conn
                    .handle_io_error(self.now, std::io::ErrorKind::ConnectionReset.into());
                self.drive(0, 0)?;
            }
            PeerOp::Advance(ms) => {
                if self.conn.is_ending() && !self.closed {
                    self.advanced_while_ending = true;
                }
                self.now = self.now.saturating_add(Duration::from_millis(*ms));
                self.drive(0, 0)?;
            }
        }
        Ok(())
    }
}

/// Runs `ops` against a fresh, started connection, then lets the peer behave (deliver
/// everything, read everything, half-close, let deadlines pass) until the connection
/// finishes; checks every invariant after every step.
///
/// # Errors
/// A description of the first invariant broken.
pub fn run(config: ModelConfig, ops: &[PeerOp]) -> Result<Outcome, String> {
    let mut h = Harness {
        conn: Connection::with_config(ModelEcho::default(), config.connection),
        pool: BufferPool::new(2),
        config,
        now: Timestamp::ZERO,
        wire: VecDeque::new(),
        fin_queued: false,
        fin_delivered: false,
        reset: false,
        taken: Vec::new(),
        received: Vec::new(),
        got_fin: false,
        closed: false,
        until: None,
        advanced_while_ending: false,
        ending_since: None,
    };
    h.conn.handle_start(h.now);
    h.drive(0, 0)?;
    h.check()?;
    for op in ops {
        h.apply(op)?;
        h.check()?;
    }
    // The peer now behaves.
    let mut steps = 0;
    while !h.closed {
        steps += 1;
        if steps > SETTLE_STEP_LIMIT {
            return Err(format!(
                "no end after {SETTLE_STEP_LIMIT} well-behaved steps"
            ));
        }
        if !h.reset {
            h.fin_queued = true;
        }
        let (deliver, take) = if h.reset {
            (0, 0)
        } else {
            (usize::MAX, usize::MAX)
        };
        let moved = h.drive(deliver, take)?;
        h.check()?;
        if moved == 0 && !h.closed {
            match h.until {
                Some(t) => {
                    h.now = h.now.max(t);
                    h.drive(0, 0)?;
                    h.check()?;
                }
                None => {
                    return Err(format!(
                        "stuck: not closed, nothing moves and no deadline (reader {} bytes, \
                         writer {} bytes)",
                        h.conn.reader().len(),
                        h.conn.writer().pending_len()
                    ));
                }
            }
        }
    }
    h.check()?;
    let end = h
        .conn
        .end_kind()
        .ok_or_else(|| "closed without a reason".to_owned())?;
    let max_line = config.connection.reader.max_line;
    let expected = expected_replies(&h.taken, max_line);
    // An orderly end or a session error owes every reply, unless the peer reset or the linger
    // ran out while the hostile peer was not reading.
    let complete = matches!(
        end,
        EndKind::Closed | EndKind::PeerClosed | EndKind::Session
    ) && !h.advanced_while_ending
        && !h.reset;
    if complete && h.conn.unsent() != 0 {
        return Err(format!(
            "ended {end:?} with {} bytes unsent and no linger run out",
            h.conn.unsent()
        ));
    }
    if complete && h.received != expected {
        return Err(format!(
            "ended {end:?} with nothing unsent, yet received {:?} of the replies owed, {:?}",
            String::from_utf8_lossy(&h.received),
            String::from_utf8_lossy(&expected)
        ));
    }
    if !h.reset && matches!(end, EndKind::Reset) {
        return Err("ended by a reset nobody sent".into());
    }
    Ok(Outcome {
        end,
        received: h.received,
        taken: h.taken,
        settle_steps: steps,
    })
}
