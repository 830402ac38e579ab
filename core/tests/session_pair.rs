//! The `Session` contract end to end on the in-memory driver: `Connection` + `Pair` + `Script`.
//! Framing under every split, timeouts on virtual time, back-pressure, end of stream, errors.

use std::time::Duration;

use concurrence_core::{
    Connection, ConnectionConfig, Direction, EndKind, EndReason, FramingError, Next, Output,
    ReaderConfig, Session, SessionError, StreamReader, StreamWriter, Timestamp, WriterConfig,
};
use concurrence_testkit::{Pair, PairError, Script, Settled};

/// What a connection asks of its driver at `now`, found by draining `poll_output` while the
/// socket is neither readable nor writable (no I/O is done).
#[derive(Debug, Default)]
struct Look {
    /// Room offered to receive into (0: no input wanted now).
    receive: usize,
    /// Bytes offered for sending.
    transmit: Vec<u8>,
    shutdown: bool,
    closed: bool,
    reset: bool,
    until: Option<Timestamp>,
}

/// The time a test looks at a connection with: a connection ignores time that goes backwards,
/// so looking never moves its clock (nor fires a deadline the test has not reached itself).
const NOW: Timestamp = Timestamp::ZERO;

fn look<S: Session>(conn: &mut Connection<S>, now: Timestamp) -> Look {
    let mut seen = Look::default();
    loop {
        match conn.poll_output(now) {
            Output::Receive(room) => {
                seen.receive = room.len();
                conn.handle_blocked(Direction::Read);
            }
            Output::Transmit(bytes) => {
                seen.transmit = bytes.to_vec();
                conn.handle_blocked(Direction::Write);
            }
            Output::ShutdownWrite => seen.shutdown = true,
            Output::Close { reset, .. } => {
                seen.closed = true;
                seen.reset = reset;
                return seen;
            }
            Output::Wait { until, .. } => {
                seen.until = until;
                return seen;
            }
            _ => {
                seen.closed = true;
                return seen;
            }
        }
    }
}

/// Greets with `hello`, echoes lines as they came; closes on "QUIT", after `idle` without input.
#[derive(Default)]
struct GreetingEcho {
    idle: Option<Duration>,
    deadline: Option<Timestamp>,
    eof_tail: Option<Vec<u8>>,
    max_pending_seen: usize,
    inputs: usize,
}

impl Session for GreetingEcho {
    fn handle_start(
        &mut self,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        writer.write_bytes(b"hello\r\n")?;
        self.deadline = self.idle.map(|d| now + d);
        Ok(Next::Continue)
    }

    fn handle_input(
        &mut self,
        now: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        self.inputs += 1;
        self.deadline = self.idle.map(|d| now + d);
        while !writer.is_backpressured() {
            match reader.read_line(true) {
                Ok(Some(b"QUIT\r\n" | b"QUIT\n")) => return Ok(Next::Close),
                Ok(Some(line)) => writer.write_bytes(line)?,
                Ok(None) => break,
                Err(FramingError::UnexpectedEof { .. }) => {
                    self.eof_tail = Some(reader.read_available().to_vec());
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.max_pending_seen = self.max_pending_seen.max(writer.pending_len());
        Ok(Next::Continue)
    }

    fn handle_timeout(
        &mut self,
        _now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        writer.write_bytes(b"idle, bye\r\n")?;
        Ok(Next::Close)
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        self.deadline
    }
}

#[test]
fn echo_transcript_is_the_same_for_every_chunk_size() {
    let input = b"one\r\ntwo\nthree\r\nQUIT\r\n";
    for chunk in [1, 2, 3, 7, usize::MAX] {
        let script = Script::new().send(input).await_suffix("three\r\n");
        let mut pair = Pair::new(GreetingEcho::default(), script).with_chunk_size(chunk);
        assert_eq!(pair.run().unwrap(), Settled::Closed, "chunk {chunk}");
        assert_eq!(
            pair.b().session().received(),
            b"hello\r\none\r\ntwo\nthree\r\n",
            "chunk {chunk}"
        );
        assert!(pair.b().session().saw_peer_close());
    }
}

#[test]
fn idle_timeout_fires_on_virtual_time() {
    let echo = GreetingEcho {
        idle: Some(Duration::from_secs(5)),
        ..GreetingEcho::default()
    };
    let script = Script::new().wait(Duration::from_secs(3)).send("ping\n");
    let mut pair = Pair::new(echo, script);
    assert_eq!(pair.run().unwrap(), Settled::Closed);
    // Input at t=3s pushed the deadline to t=8s.
    assert_eq!(pair.now(), Timestamp::from_millis(8000));
    assert_eq!(
        pair.b().session().received(),
        b"hello\r\nping\nidle, bye\r\n"
    );
}

#[test]
fn run_for_stops_at_the_time_bound() {
    let echo = GreetingEcho {
        idle: Some(Duration::from_secs(60)),
        ..GreetingEcho::default()
    };
    let mut pair = Pair::new(echo, Script::new());
    assert_eq!(
        pair.run_for(Duration::from_secs(10)).unwrap(),
        Settled::TimeUp
    );
    assert_eq!(pair.now(), Timestamp::from_millis(10_000));
    assert_eq!(pair.end_kinds().0, None);
    assert_eq!(pair.run().unwrap(), Settled::Closed);
    assert_eq!(pair.now(), Timestamp::from_millis(60_000));
}

#[test]
fn end_of_stream_mid_line_reaches_the_session_with_its_tail() {
    let script = Script::new()
        .await_suffix("hello\r\n")
        .send("full\npart")
        .close();
    let mut pair = Pair::new(GreetingEcho::default(), script);
    assert_eq!(pair.run().unwrap(), Settled::Closed);
    assert_eq!(pair.a().session().eof_tail.as_deref(), Some(&b"part"[..]));
    // The script closed both directions, so the echo of "full" was never read.
    assert_eq!(pair.b().session().received(), b"hello\r\n");
    assert!(pair.end_kinds().0.is_some());
}

#[test]
fn backpressure_stops_input_until_the_writer_drains() {
    // 40 requests arrive at once; each reply is 1000 bytes; high water is 4000 bytes.
    let writer = WriterConfig::default().with_high_water(4000);
    let mut conn = Connection::new(GreetingEcho::default(), ReaderConfig::default(), writer);
    let now = Timestamp::ZERO;
    conn.handle_start(now);
    let line = [vec![b'x'; 999], b"\n".to_vec()].concat();
    let requests: Vec<u8> = line.iter().copied().cycle().take(line.len() * 40).collect();
    let taken = conn.feed(now, &requests);
    assert!(taken < requests.len(), "input refused while back-pressured");
    assert!(!look(&mut conn, NOW).receive > 0);
    let pending = look(&mut conn, NOW).transmit.len();
    assert!(
        pending < 4000 + 1000 + 7,
        "pending {pending} stays near the high-water mark"
    );
    // The peer reads everything, slowly; the rest of the input goes in as room appears.
    let mut received = Vec::new();
    let mut fed = taken;
    for _ in 0..10_000 {
        let out = look(&mut conn, NOW).transmit;
        let n = out.len().min(1500);
        received.extend_from_slice(&out[..n]);
        conn.handle_sent(now, n);
        fed += conn.feed(now, &requests[fed..]);
        assert!(conn.writer().pending_len() < 4000 + 1000 + 7);
        if fed == requests.len() && look(&mut conn, NOW).transmit.is_empty() {
            break;
        }
    }
    assert_eq!(fed, requests.len());
    assert_eq!(&received[..7], b"hello\r\n");
    assert_eq!(
        &received[7..],
        &requests[..],
        "every request answered, in order"
    );
    assert!(conn.session().max_pending_seen < 4000 + 1000 + 7);
}

#[test]
fn a_pair_with_a_slow_path_keeps_memory_flat() {
    let writer = WriterConfig::default().with_high_water(2048);
    let request = [vec![b'y'; 511], b"\n".to_vec()].concat();
    let mut script = Script::new();
    for _ in 0..200 {
        script = script.send(&request);
    }
    // The script writes all 200 requests up front and must keep reading meanwhile: give its
    // side a high-water mark above what it sends.
    let roomy = WriterConfig::default().with_high_water(1 << 20);
    let mut pair = Pair::from_connections(
        Connection::new(GreetingEcho::default(), ReaderConfig::default(), writer),
        Connection::new(script, ReaderConfig::default(), roomy),
    )
    .with_chunk_size(100);
    pair.run().unwrap();
    assert_eq!(pair.b().session().received().len(), 7 + 200 * 512);
    assert!(pair.a().session().max_pending_seen < 2048 + 512 + 7);
}

#[test]
fn a_session_error_still_sends_earlier_replies_and_is_reported() {
    let reader = ReaderConfig::default().with_max_line(8);
    let script = Script::new().send("ok\nthis line is too long\n");
    let mut pair = Pair::with_configs(
        GreetingEcho::default(),
        script,
        reader,
        WriterConfig::default(),
    );
    assert_eq!(pair.run().unwrap(), Settled::Closed);
    let (a, b) = pair.end_reasons();
    assert!(
        matches!(
            a.map(|a| match a {
                EndReason::Session(e) => Some(&**e),
                _ => None,
            }),
            Some(Some(SessionError::Framing(FramingError::LineTooLong {
                limit: 8
            })))
        ),
        "{a:?}"
    );
    assert_eq!(b.map(EndReason::kind), Some(EndKind::PeerClosed));
    assert_eq!(pair.b().session().received(), b"hello\r\nok\n");
    assert_eq!(pair.b().session().end_kind(), Some(EndKind::PeerClosed));
}

/// A session whose deadline never moves: a driver that does not re-read it would spin.
struct StaleDeadline;

impl Session for StaleDeadline {
    fn handle_input(
        &mut self,
        _: Timestamp,
        _: &mut StreamReader,
        _: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        Ok(Next::Continue)
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        Some(Timestamp::ZERO)
    }
}

#[test]
fn a_livelock_hits_the_step_cap_instead_of_hanging() {
    let mut pair = Pair::new(StaleDeadline, Script::new()).with_max_steps(1000);
    let err = pair.run().unwrap_err();
    assert!(matches!(err, PairError::StepLimit { steps: 1000, .. }));
    assert!(err.to_string().contains("with_max_steps"));
}

#[test]
fn connection_ignores_calls_in_the_wrong_phase() {
    let mut conn = Connection::with_defaults(GreetingEcho::default());
    let now = Timestamp::from_millis(10);
    assert!(!look(&mut conn, NOW).receive > 0, "not started");
    assert_eq!(conn.feed(now, b"x\n"), 0);
    conn.handle_start(now);
    conn.handle_start(now); // once only
    assert_eq!(look(&mut conn, NOW).transmit, b"hello\r\n");
    assert_eq!(conn.feed(now, b"QUIT\n"), 5);
    assert!(!look(&mut conn, NOW).closed, "flushing the greeting first");
    assert!(
        !look(&mut conn, NOW).shutdown,
        "not before the greeting is sent"
    );
    conn.handle_sent(now, 7);
    assert!(look(&mut conn, NOW).shutdown, "then our FIN");
    assert!(!look(&mut conn, NOW).shutdown, "once");
    // Lingering: input is read and discarded until the peer's end of stream.
    assert_eq!(conn.feed(now, b"more\n"), 5);
    assert!(!look(&mut conn, NOW).closed);
    conn.handle_peer_closed(now);
    assert!(look(&mut conn, NOW).closed);
    assert_eq!(conn.end_kind(), Some(EndKind::Closed));
    assert_eq!(conn.feed(now, b"more\n"), 0);
    conn.handle_timeout(Timestamp::ZERO); // time going backwards is ignored
    assert_eq!(look(&mut conn, NOW).until, None);
    assert_eq!(conn.into_session().inputs, 1);
}

/// Keeps the connection open after end of stream (half-close), with no deadline.
struct KeepsHalfOpen;

impl Session for KeepsHalfOpen {
    fn handle_input(
        &mut self,
        _: Timestamp,
        r: &mut StreamReader,
        _: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        let _ = r.read_available();
        Ok(Next::Continue)
    }
    fn handle_eof(&mut self, _: Timestamp, w: &mut StreamWriter) -> Result<Next, SessionError> {
        w.write_bytes(b"bye")?;
        Ok(Next::Continue)
    }
}

#[test]
fn a_half_closed_connection_with_nothing_left_to_do_closes_itself() {
    let mut conn = Connection::with_defaults(KeepsHalfOpen);
    let now = Timestamp::ZERO;
    conn.handle_start(now);
    conn.feed(now, b"x");
    conn.handle_peer_closed(now);
    assert!(!look(&mut conn, NOW).closed, "\"bye\" is still to be sent");
    assert_eq!(look(&mut conn, NOW).transmit, b"bye");
    conn.handle_sent(now, 3);
    assert!(
        look(&mut conn, NOW).closed,
        "nothing to send, nothing to read, no deadline"
    );
}

#[test]
fn the_idle_timeout_lives_in_the_connection() {
    let mut conn = Connection::with_defaults(GreetingEcho::default());
    conn.set_idle_timeout(Some(Duration::from_secs(10)));
    conn.handle_start(Timestamp::ZERO);
    assert_eq!(
        look(&mut conn, NOW).until,
        Some(Timestamp::from_millis(10_000))
    );
    // Traffic pushes the idle deadline out.
    conn.feed(Timestamp::from_millis(4_000), b"ping\n");
    assert_eq!(
        look(&mut conn, NOW).until,
        Some(Timestamp::from_millis(14_000))
    );
    conn.handle_timeout(Timestamp::from_millis(13_999));
    assert!(!look(&mut conn, NOW).closed);
    // A peer that stops reading: output stays pending, no byte moves, the deadline passes.
    conn.handle_timeout(Timestamp::from_millis(14_000));
    assert!(look(&mut conn, NOW).closed);
    assert_eq!(conn.end_kind(), Some(EndKind::IdleTimeout));
    assert_eq!(
        conn.unsent(),
        12,
        "the unread greeting and reply were dropped"
    );
    assert_eq!(
        look(&mut conn, NOW).transmit,
        b"",
        "nothing more is sent once closed"
    );
}

/// Records every end it is told.
#[derive(Default)]
struct EndRecorder {
    ends: Vec<EndKind>,
    started: bool,
}

impl Session for EndRecorder {
    fn handle_start(&mut self, _: Timestamp, w: &mut StreamWriter) -> Result<Next, SessionError> {
        self.started = true;
        w.write_bytes(b"GET\n")?;
        Ok(Next::Continue)
    }
    fn handle_input(
        &mut self,
        _: Timestamp,
        r: &mut StreamReader,
        _: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        let _ = r.read_available();
        Ok(Next::Continue)
    }
    fn handle_end(&mut self, _: Timestamp, reason: &EndReason) {
        self.ends.push(reason.kind());
    }
}

#[test]
fn a_peer_close_before_the_start_is_delivered_after_it() {
    let mut conn = Connection::with_defaults(EndRecorder::default());
    conn.handle_peer_closed(Timestamp::ZERO);
    assert!(!look(&mut conn, NOW).closed);
    conn.handle_start(Timestamp::ZERO);
    assert_eq!(
        look(&mut conn, NOW).transmit,
        b"GET\n",
        "the greeting still goes out"
    );
    conn.handle_sent(Timestamp::ZERO, 4);
    assert!(look(&mut conn, NOW).closed, "the default handle_eof closes");
    assert_eq!(conn.session().ends, [EndKind::PeerClosed]);
}

#[test]
fn a_client_connect_that_times_out_is_told_to_the_session() {
    let config = ConnectionConfig::default().with_connect_timeout(Some(Duration::from_secs(2)));
    let mut conn = Connection::with_config(EndRecorder::default(), config);
    conn.handle_connecting(Timestamp::from_millis(1_000));
    assert_eq!(
        look(&mut conn, NOW).until,
        Some(Timestamp::from_millis(3_000))
    );
    let seen = look(&mut conn, NOW);
    assert!(seen.receive == 0 && seen.transmit.is_empty());
    conn.handle_timeout(Timestamp::from_millis(2_999));
    assert!(!look(&mut conn, NOW).closed);
    conn.handle_timeout(Timestamp::from_millis(3_000));
    assert_eq!(conn.end_kind(), Some(EndKind::ConnectTimedOut));
    let (session, reason) = conn.into_parts();
    assert!(!session.started, "never started");
    assert_eq!(session.ends, [EndKind::ConnectTimedOut]);
    assert!(matches!(reason, Some(EndReason::ConnectTimedOut)));
}

#[test]
fn a_refused_connect_is_told_to_the_session() {
    for (kind, expected) in [
        (
            std::io::ErrorKind::ConnectionRefused,
            EndKind::ConnectRefused,
        ),
        (std::io::ErrorKind::NotFound, EndKind::ConnectRefused),
        (std::io::ErrorKind::TimedOut, EndKind::ConnectTimedOut),
        (std::io::ErrorKind::PermissionDenied, EndKind::Io),
    ] {
        let mut conn = Connection::with_defaults(EndRecorder::default());
        conn.handle_connecting(Timestamp::ZERO);
        conn.handle_io_error(Timestamp::ZERO, kind.into());
        conn.handle_io_error(Timestamp::ZERO, kind.into()); // told once only
        assert_eq!(conn.session().ends, [expected], "{kind:?}");
    }
}

#[test]
fn a_connected_client_starts_and_a_reset_loses_what_is_pending() {
    let mut conn = Connection::with_defaults(EndRecorder::default());
    conn.handle_connecting(Timestamp::ZERO);
    conn.handle_start(Timestamp::from_millis(5));
    assert!(conn.session().started);
    assert_eq!(
        look(&mut conn, NOW).until,
        None,
        "no connect deadline once connected"
    );
    assert_eq!(look(&mut conn, NOW).transmit, b"GET\n");
    conn.handle_io_error(
        Timestamp::from_millis(6),
        std::io::ErrorKind::ConnectionReset.into(),
    );
    assert_eq!(conn.end_kind(), Some(EndKind::Reset));
    assert_eq!(conn.unsent(), 4);
    assert_eq!(conn.session().ends, [EndKind::Reset]);
}

#[test]
fn shutdown_and_abort_end_at_once() {
    let mut conn = Connection::with_defaults(EndRecorder::default());
    conn.handle_start(Timestamp::ZERO);
    conn.handle_shutdown(Timestamp::ZERO);
    assert_eq!(conn.end_kind(), Some(EndKind::Shutdown));
    assert!(!look(&mut conn, NOW).reset);

    let script = Script::new().send("x").reset();
    let mut pair = Pair::new(EndRecorder::default(), script);
    assert_eq!(pair.run().unwrap(), Settled::Closed);
    assert_eq!(
        pair.end_kinds(),
        (Some(EndKind::Reset), Some(EndKind::Aborted))
    );
}

#[test]
fn script_half_close_both_ways_in_a_pair() {
    // The script half-closes after its request; the echo still answers, then closes.
    let script = Script::new().send("one\ntwo\n").close_write();
    let mut pair = Pair::new(GreetingEcho::default(), script).with_chunk_size(3);
    assert_eq!(pair.run().unwrap(), Settled::Closed);
    assert_eq!(pair.b().session().received(), b"hello\r\none\ntwo\n");
    assert!(pair.b().session().saw_peer_close());
    // The script closed its side first, the echo ended on the script's end of stream.
    assert_eq!(
        pair.end_kinds(),
        (Some(EndKind::PeerClosed), Some(EndKind::Closed))
    );
}

/// Never consumes anything: once the reader is full, nothing can ever happen.
struct NeverReads;

impl Session for NeverReads {
    fn handle_input(
        &mut self,
        _: Timestamp,
        _: &mut StreamReader,
        _: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        Ok(Next::Continue)
    }
}

#[test]
fn a_session_that_stops_consuming_a_full_reader_is_ended_as_stalled() {
    let reader = ReaderConfig::default()
        .with_buffer_size(8)
        .with_max_line(8)
        .with_max_block(8);
    let mut conn = Connection::new(NeverReads, reader, WriterConfig::default());
    conn.handle_start(Timestamp::ZERO);
    assert_eq!(conn.feed(Timestamp::ZERO, b"0123456789abcdef"), 10);
    assert_eq!(conn.end_kind(), Some(EndKind::Stalled));

    // With an idle timeout, the idle timeout ends it instead.
    let mut conn = Connection::new(NeverReads, reader, WriterConfig::default());
    conn.set_idle_timeout(Some(Duration::from_secs(1)));
    conn.handle_start(Timestamp::ZERO);
    conn.feed(Timestamp::ZERO, b"0123456789abcdef");
    assert!(!look(&mut conn, NOW).closed);
    conn.handle_timeout(Timestamp::from_millis(1_000));
    assert_eq!(conn.end_kind(), Some(EndKind::IdleTimeout));
}

#[test]
fn a_request_trickled_a_byte_at_a_time_hits_the_frame_timeout() {
    let config = ConnectionConfig::default()
        .with_idle_timeout(Some(Duration::from_secs(10)))
        .with_frame_timeout(Some(Duration::from_secs(3)));
    let mut slowloris = Script::new();
    for byte in ["G", "E", "T", " ", "/", "x", "y", "z"] {
        slowloris = slowloris.send(byte).wait(Duration::from_secs(1));
    }
    let server = Connection::with_config(GreetingEcho::default(), config);
    let client = Connection::with_defaults(slowloris);
    let mut pair = Pair::from_connections(server, client);
    pair.run().unwrap();
    assert_eq!(pair.a().end_kind(), Some(EndKind::FrameTimeout));
    // The first byte came at 0 s; the idle timeout (10 s) never fired: bytes kept coming.
    assert!(pair.now() >= Timestamp::from_millis(3_000));

    // Whole lines at the same pace are progress: no frame timeout.
    let mut steady = Script::new();
    for _ in 0..8 {
        steady = steady.send("line\n").wait(Duration::from_secs(2));
    }
    let server = Connection::with_config(GreetingEcho::default(), config);
    let mut pair = Pair::from_connections(server, Connection::with_defaults(steady.close()));
    pair.run().unwrap();
    assert_eq!(pair.a().end_kind(), Some(EndKind::PeerClosed));
}

#[test]
fn an_idle_connection_gives_its_buffers_back() {
    use concurrence_core::{Connection, Timestamp};
    let mut conn = Connection::with_defaults(concurrence_testkit::LineEcho);
    let now = Timestamp::ZERO;
    conn.handle_start(now);
    assert_eq!(conn.feed(now, b"hello\n"), 6);
    assert!(conn.reader().capacity() > 0 && conn.writer().capacity() > 0);
    // A partial line and an unsent reply are kept.
    conn.feed(now, b"par");
    conn.release_idle_buffers();
    assert_eq!(look(&mut conn, NOW).transmit, b"hello\n");
    assert_eq!(conn.reader().buffered(), b"par");
    // Sent and consumed: nothing is held any more.
    conn.handle_sent(now, 6);
    conn.feed(now, b"tial\n");
    conn.handle_sent(now, 8);
    conn.release_idle_buffers();
    assert_eq!(conn.reader().capacity(), 0);
    assert_eq!(conn.writer().capacity(), 0);
    // And the next input allocates again.
    conn.feed(now, b"again\n");
    assert_eq!(look(&mut conn, NOW).transmit, b"again\n");
}

#[test]
fn idle_buffers_go_to_a_pool_and_the_next_connection_reuses_them() {
    use concurrence_core::{BufferPool, Connection, Timestamp};
    let now = Timestamp::ZERO;
    let mut pool = BufferPool::new(1);
    let mut first = Connection::with_defaults(concurrence_testkit::LineEcho);
    first.handle_start(now);
    first.feed(now, b"hello\n");
    // A reply is pending: the writer keeps its buffer; the consumed reader gives its back.
    first.release_idle_buffers_to(&mut pool);
    assert_eq!(pool.len(), 1);
    assert!(first.writer().capacity() > 0);
    first.handle_sent(now, 6);
    first.release_idle_buffers_to(&mut pool);
    assert_eq!(pool.len(), 2, "one read and one write buffer");
    assert_eq!(
        (first.reader().capacity(), first.writer().capacity()),
        (0, 0)
    );

    // Another connection borrows both: no new allocation, and it works as before.
    let mut second = Connection::with_defaults(concurrence_testkit::LineEcho);
    second.handle_start(now);
    second.take_buffers_from(&mut pool);
    assert!(pool.is_empty());
    assert!(second.reader().capacity() > 0 && second.writer().capacity() > 0);
    assert_eq!(second.feed(now, b"hi\r\n"), 4);
    assert_eq!(look(&mut second, NOW).transmit, b"hi\r\n");

    // The pool keeps at most its bound; the rest goes back to the allocator.
    second.handle_sent(now, 4);
    first.take_buffers_from(&mut pool);
    let mut third = Connection::with_defaults(concurrence_testkit::LineEcho);
    third.handle_start(now);
    third.feed(now, b"x\n");
    third.handle_sent(now, 2);
    second.release_idle_buffers_to(&mut pool);
    third.release_idle_buffers_to(&mut pool);
    assert_eq!(pool.len(), 2, "a bound of one of each kind");
    assert_eq!(
        (third.reader().capacity(), third.writer().capacity()),
        (0, 0)
    );
}

/// Writes `size` bytes at start, in one go (its writer allows it), then echoes nothing.
struct Blurts(usize);

impl Session for Blurts {
    fn handle_start(&mut self, _: Timestamp, w: &mut StreamWriter) -> Result<Next, SessionError> {
        w.write_bytes(&vec![b'x'; self.0])?;
        Ok(Next::Continue)
    }
    fn handle_input(
        &mut self,
        _: Timestamp,
        r: &mut StreamReader,
        _: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        let _ = r.read_available();
        Ok(Next::Continue)
    }
}

#[test]
fn two_sessions_that_both_send_past_their_bounds_before_reading_are_reported_as_stalled() {
    let writer = WriterConfig::default()
        .with_high_water(8 * 1024)
        .with_max_pending(1 << 20);
    let size = 300 * 1024;
    let mut pair = Pair::with_configs(Blurts(size), Blurts(size), ReaderConfig::default(), writer);
    let settled = pair.run().unwrap();
    let Settled::Stalled { a_unsent, b_unsent } = settled else {
        panic!("expected a stall, got {settled:?}");
    };
    // Neither read anything: each is over its high-water mark, so takes no input.
    assert_eq!((a_unsent, b_unsent), (size, size), "{settled:?}");
    assert_eq!(pair.end_kinds(), (None, None), "a stall is not an end");
}

#[test]
fn scripts_keep_reading_while_they_send_more_than_their_buffers() {
    // Both sides send 1 MiB before reading anything: a script writes up to its high-water
    // mark at a time, so it keeps taking the other's bytes and neither stalls.
    let mut big = vec![b'y'; 1 << 20];
    big.extend_from_slice(b"END\n");
    let a = Script::new().send(&big).await_suffix("END\n").close();
    let b = Script::new().send(&big).await_suffix("END\n");
    let mut pair = Pair::new(a, b).with_max_steps(1_000_000);
    assert_eq!(pair.run().unwrap(), Settled::Closed);
    assert_eq!(pair.a().session().received().len(), big.len());
    assert_eq!(pair.b().session().received().len(), big.len());
}

#[test]
fn a_script_transcript_prints_as_escaped_text() {
    let mut pair = Pair::new(
        GreetingEcho::default(),
        Script::new().send("a\tb\n").await_suffix("b\n").close(),
    );
    pair.run().unwrap();
    let received = pair.b().session().received();
    assert_eq!(received, b"hello\r\na\tb\n");
    assert_eq!(format!("{received:?}"), r#"b"hello\r\na\tb\n""#);
}
