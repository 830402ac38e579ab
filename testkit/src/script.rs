//! `Script`: a scripted peer, as a `Session`, for driving a session under test in a [`Pair`].
//!
//! It sends bytes, waits virtual time, and closes, in the order given, while recording
//! everything it receives: the transcript a test asserts on.
//!
//! [`Pair`]: crate::Pair

use std::collections::VecDeque;
use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use concurrence_core::{
    EndKind, EndReason, Next, Session, SessionError, StreamReader, StreamWriter, Timestamp,
};

/// One step of a [`Script`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScriptStep {
    /// Send these bytes.
    Send(Vec<u8>),
    /// Let this much virtual time pass before the next step.
    Wait(Duration),
    /// Wait until the received bytes end with this (e.g. a prompt or `b"\r\n"`).
    AwaitSuffix(Vec<u8>),
    /// Half-close: shut down the sending side after what is pending (`Next::CloseWrite`) and
    /// keep receiving. The script goes on with its next step at the next input or timeout.
    CloseWrite,
    /// Close the connection (after sending what is pending).
    Close,
    /// Reset the connection at once (`Next::Abort`): pending bytes are dropped.
    Reset,
}

/// A peer that follows a fixed list of steps and records what it receives.
#[derive(Debug, Clone, Default)]
pub struct Script {
    steps: VecDeque<ScriptStep>,
    received: Vec<u8>,
    wake_at: Option<Timestamp>,
    peer_closed: bool,
    end: Option<EndKind>,
}

impl Script {
    /// An empty script: it only records.
    #[must_use]
    pub fn new() -> Self {
        Script::default()
    }

    /// Adds a step that sends `bytes`.
    #[must_use]
    pub fn send(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.steps
            .push_back(ScriptStep::Send(bytes.as_ref().to_vec()));
        self
    }

    /// Adds a step that waits `duration` of virtual time.
    #[must_use]
    pub fn wait(mut self, duration: Duration) -> Self {
        self.steps.push_back(ScriptStep::Wait(duration));
        self
    }

    /// Adds a step that waits until what was received ends with `suffix`.
    #[must_use]
    pub fn await_suffix(mut self, suffix: impl AsRef<[u8]>) -> Self {
        self.steps
            .push_back(ScriptStep::AwaitSuffix(suffix.as_ref().to_vec()));
        self
    }

    /// Adds a step that half-closes: no more sending, receiving goes on.
    #[must_use]
    pub fn close_write(mut self) -> Self {
        self.steps.push_back(ScriptStep::CloseWrite);
        self
    }

    /// Adds a step that closes the connection.
    #[must_use]
    pub fn close(mut self) -> Self {
        self.steps.push_back(ScriptStep::Close);
        self
    }

    /// Adds a step that resets the connection.
    #[must_use]
    pub fn reset(mut self) -> Self {
        self.steps.push_back(ScriptStep::Reset);
        self
    }

    /// How the connection ended, once it did.
    #[must_use]
    pub fn end_kind(&self) -> Option<EndKind> {
        self.end
    }

    /// Everything received so far (compares with byte strings; shows as escaped text).
    #[must_use]
    pub fn received(&self) -> Received<'_> {
        Received(&self.received)
    }

    /// True when every step has run.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.steps.is_empty()
    }

    /// True once the other side closed its sending side.
    #[must_use]
    pub fn saw_peer_close(&self) -> bool {
        self.peer_closed
    }

    /// Runs steps until one has to wait.
    fn advance(&mut self, now: Timestamp, writer: &mut StreamWriter) -> Result<Next, SessionError> {
        if self.wake_at.is_some_and(|t| t > now) {
            return Ok(Next::Continue);
        }
        self.wake_at = None;
        while let Some(step) = self.steps.pop_front() {
            match step {
                ScriptStep::Send(mut bytes) => {
                    // Below the writer's high-water mark, so that the connection keeps
                    // delivering input while a long send goes out (two peers that both send
                    // more than their buffers before reading would otherwise wait on each
                    // other forever); the rest goes out as the writer drains.
                    let room = writer
                        .config()
                        .high_water
                        .saturating_sub(writer.pending_len() + 1)
                        .max(usize::from(!writer.has_pending()));
                    let n = bytes.len().min(room);
                    writer.write_bytes(&bytes[..n])?;
                    bytes.drain(..n);
                    if !bytes.is_empty() {
                        self.steps.push_front(ScriptStep::Send(bytes));
                        // Look again at once (the connection retries a deadline that finds
                        // no room a millisecond later: no spinning).
                        self.wake_at = Some(now);
                        return Ok(Next::Continue);
                    }
                }
                ScriptStep::Wait(duration) => {
                    self.wake_at = Some(now + duration);
                    return Ok(Next::Continue);
                }
                ScriptStep::AwaitSuffix(suffix) => {
                    if !self.received.ends_with(&suffix) {
                        self.steps.push_front(ScriptStep::AwaitSuffix(suffix));
                        return Ok(Next::Continue);
                    }
                }
                ScriptStep::CloseWrite => return Ok(Next::CloseWrite),
                ScriptStep::Close => return Ok(Next::Close),
                ScriptStep::Reset => return Ok(Next::Abort),
            }
        }
        Ok(Next::Continue)
    }
}

impl Session for Script {
    fn handle_start(
        &mut self,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        self.advance(now, writer)
    }

    fn handle_input(
        &mut self,
        now: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        self.received.extend_from_slice(reader.read_available());
        self.advance(now, writer)
    }

    fn handle_timeout(
        &mut self,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        self.advance(now, writer)
    }

    fn handle_eof(
        &mut self,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        self.peer_closed = true;
        // Finish the script (its sends still go out on the half-closed connection), then close.
        match self.advance(now, writer)? {
            Next::Continue if self.wake_at.is_some() => Ok(Next::Continue),
            Next::Continue => Ok(Next::Close),
            other => Ok(other),
        }
    }

    fn handle_end(&mut self, _: Timestamp, reason: &EndReason) {
        self.end = Some(reason.kind());
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        self.wake_at
    }
}

/// What a [`Script`] received: compares with byte strings and vectors, and prints as escaped
/// text (`b"hello\r\n"`), not as a list of numbers, when an assertion fails.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Received<'a>(&'a [u8]);

impl Received<'_> {
    /// The bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.0
    }
}

impl Deref for Received<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0
    }
}

impl AsRef<[u8]> for Received<'_> {
    fn as_ref(&self) -> &[u8] {
        self.0
    }
}

impl fmt::Debug for Received<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

impl fmt::Display for Received<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.escape_ascii())
    }
}

impl PartialEq<[u8]> for Received<'_> {
    fn eq(&self, other: &[u8]) -> bool {
        self.0 == other
    }
}

impl PartialEq<&[u8]> for Received<'_> {
    fn eq(&self, other: &&[u8]) -> bool {
        self.0 == *other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Received<'_> {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.0 == other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Received<'_> {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.0 == *other
    }
}

impl PartialEq<Vec<u8>> for Received<'_> {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.0 == other.as_slice()
    }
}

impl PartialEq<&str> for Received<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}
