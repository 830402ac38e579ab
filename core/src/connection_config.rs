//! `ConnectionConfig`: the named, documented bounds of one `Connection` (buffers, idle time,
//! lingering close, connect time). Every backend builds its connections from one of these.

use std::time::Duration;

use crate::{ReaderConfig, WriterConfig};

/// How long a closing connection may take to hand over its last output and see the peer's
/// end of stream: 5 s.
pub const DEFAULT_LINGER: Duration = Duration::from_secs(5);

/// The servers' default idle timeout (both socket backends): 60 s. Peers that connect and go
/// quiet cannot hold a server's connection slots forever.
pub const DEFAULT_SERVER_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The servers' default frame timeout (both socket backends): 30 s for a request to arrive
/// once its first byte did.
pub const DEFAULT_SERVER_FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client connection may take to be established: 10 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings for a [`Connection`](crate::Connection).
///
/// Fields are public: start from `ConnectionConfig::default()` and set what you need, or
/// chain the `with_*` methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// The reader's bounds (line, block and buffer sizes).
    pub reader: ReaderConfig,
    /// The writer's bounds (the high-water mark is the back-pressure threshold).
    pub writer: WriterConfig,
    /// End the connection ([`EndReason::IdleTimeout`](crate::EndReason::IdleTimeout)) after
    /// this long without a byte received or sent while the session runs. Default: none
    /// (servers set their own default).
    pub idle_timeout: Option<Duration>,
    /// End the connection ([`EndReason::FrameTimeout`](crate::EndReason::FrameTimeout)) when
    /// input sits unconsumed this long: a frame (a request) started arriving and the session
    /// could not complete it, while it was free to (not back-pressured). Stops peers that
    /// trickle a request a byte at a time (slowloris), which an idle timeout never catches.
    /// Default: none (servers set their own default).
    pub frame_timeout: Option<Duration>,
    /// Once the session is done (`Close` or an error), how long the connection may take to
    /// send what is pending, shut down its write side and read the peer's end of stream
    /// (input meanwhile is discarded: closing with unread input would reset the connection
    /// and could destroy the last reply in flight). Default [`DEFAULT_LINGER`].
    pub linger: Duration,
    /// For client connections: how long connecting may take before
    /// [`EndReason::ConnectTimedOut`](crate::EndReason::ConnectTimedOut). `None`: no bound.
    /// Default [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Option<Duration>,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            reader: ReaderConfig::default(),
            writer: WriterConfig::default(),
            idle_timeout: None,
            frame_timeout: None,
            linger: DEFAULT_LINGER,
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
        }
    }
}

impl ConnectionConfig {
    /// This configuration with the reader and writer bounds set.
    #[must_use]
    pub fn with_buffers(mut self, reader: ReaderConfig, writer: WriterConfig) -> Self {
        self.reader = reader;
        self.writer = writer;
        self
    }

    /// This configuration with an idle timeout.
    #[must_use]
    pub fn with_idle_timeout(mut self, idle_timeout: Option<Duration>) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// This configuration with a frame timeout.
    #[must_use]
    pub fn with_frame_timeout(mut self, frame_timeout: Option<Duration>) -> Self {
        self.frame_timeout = frame_timeout;
        self
    }

    /// This configuration with the linger time set.
    #[must_use]
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// This configuration with the connect timeout set.
    #[must_use]
    pub fn with_connect_timeout(mut self, connect_timeout: Option<Duration>) -> Self {
        self.connect_timeout = connect_timeout;
        self
    }
}
