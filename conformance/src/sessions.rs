//! The sessions the scenarios serve and connect: a line echo with failure and panic triggers,
//! a length-prefixed block protocol, a server that half-closes first, and a wrapper that
//! reports each session's end (and what it saw) to the scenario over a channel.

use concurrence_core::{
    EndReason, FramingError, Next, Session, SessionError, StreamReader, StreamWriter, Timestamp,
};
use concurrence_testkit::Script;

use crate::steps::{describe_end, show};

/// Where sessions send their report lines; the scenario receives them in order.
pub type Reports = async_channel::Sender<String>;

/// Echoes each line as it came (LF or CRLF kept). `QUIT` closes; `bad` is a protocol error
/// (the session fails); `boom` panics (a bug in user code the backend must contain).
#[derive(Debug, Default, Clone, Copy)]
pub struct ScenarioEcho;

impl Session for ScenarioEcho {
    fn handle_input(
        &mut self,
        _: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        while !writer.is_backpressured() {
            match reader.read_line(true)? {
                Some(b"QUIT\n" | b"QUIT\r\n") => return Ok(Next::Close),
                Some(b"bad\n") => return Err(SessionError::Protocol("the line was `bad`".into())),
                Some(b"boom\n") => panic!("boom: the scenario asked this session to panic"),
                Some(line) => writer.write_bytes(line)?,
                None => break,
            }
        }
        Ok(Next::Continue)
    }
}

/// Length-prefixed blocks: a 4-byte big-endian length, then that many bytes; each block is
/// answered with `block <len> <sum of its bytes>\n`. A length past
/// `ReaderConfig::max_block` fails the session with `BlockTooLarge`.
#[derive(Debug, Default, Clone, Copy)]
pub struct BlockSum;

impl Session for BlockSum {
    fn handle_input(
        &mut self,
        _: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        loop {
            let Some(header) = reader.buffered().get(..4) else {
                return Ok(Next::Continue);
            };
            let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len > reader.config().max_block {
                return Err(FramingError::BlockTooLarge {
                    requested: len,
                    limit: reader.config().max_block,
                }
                .into());
            }
            let Some(frame) = reader.read_bytes(4 + len)? else {
                return Ok(Next::Continue);
            };
            let sum: u64 = frame[4..].iter().map(|&b| u64::from(b)).sum();
            writer.write_bytes(format!("block {len} {sum}\n").as_bytes())?;
        }
    }
}

/// Sends a greeting and half-closes at once, then records what the peer sends until its end
/// of stream.
#[derive(Debug, Default, Clone)]
pub struct GreetAndHalfClose {
    /// Everything received.
    pub received: Vec<u8>,
}

impl Session for GreetAndHalfClose {
    fn handle_start(
        &mut self,
        _: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        writer.write_bytes(b"greeting\n")?;
        Ok(Next::CloseWrite)
    }

    fn handle_input(
        &mut self,
        _: Timestamp,
        reader: &mut StreamReader,
        _: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        self.received.extend_from_slice(reader.read_available());
        Ok(Next::Continue)
    }
}

/// What a [`Reported`] session adds to its end line.
pub trait Observed {
    /// Extra text for the report ("received 'x'"), or nothing.
    fn observed(&self) -> Option<String> {
        None
    }
}

impl Observed for ScenarioEcho {}
impl Observed for BlockSum {}

impl Observed for GreetAndHalfClose {
    fn observed(&self) -> Option<String> {
        Some(format!("received {}", show(&self.received)))
    }
}

impl Observed for Script {
    fn observed(&self) -> Option<String> {
        Some(format!("received {}", show(&self.received())))
    }
}

/// Wraps a session and, when its connection ends, sends `<label> end: <reason>[; <what it
/// observed>]` to the scenario.
#[derive(Debug)]
pub struct Reported<S> {
    label: String,
    inner: S,
    reports: Reports,
}

impl<S> Reported<S> {
    /// `inner`, reporting under `label` to `reports`.
    pub fn new(label: impl Into<String>, inner: S, reports: Reports) -> Self {
        Reported {
            label: label.into(),
            inner,
            reports,
        }
    }
}

impl<S: Session + Observed> Session for Reported<S> {
    fn handle_start(
        &mut self,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        self.inner.handle_start(now, writer)
    }

    fn handle_input(
        &mut self,
        now: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        self.inner.handle_input(now, reader, writer)
    }

    fn handle_timeout(
        &mut self,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        self.inner.handle_timeout(now, writer)
    }

    fn handle_eof(
        &mut self,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        self.inner.handle_eof(now, writer)
    }

    fn handle_end(&mut self, now: Timestamp, reason: &EndReason) {
        self.inner.handle_end(now, reason);
        let mut line = format!("{} end: {}", self.label, describe_end(reason));
        if let Some(extra) = self.inner.observed() {
            line.push_str("; ");
            line.push_str(&extra);
        }
        let _ = self.reports.try_send(line);
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        self.inner.poll_timeout()
    }
}

/// The producer's bound: at most the writer's high-water mark plus one 16 KiB chunk buffered.
impl Observed for concurrence_testkit::Producer {
    fn observed(&self) -> Option<String> {
        let bound = concurrence_core::WriterConfig::default().high_water.max(1) + 16 * 1024;
        let most = self.max_pending.load(std::sync::atomic::Ordering::SeqCst);
        Some(format!(
            "sent {} bytes, never more than high water + one chunk buffered: {}",
            self.sent,
            most <= bound
        ))
    }
}
