//! The named, documented settings of a server, the same on every backend (both socket
//! backends and the simulator's `SocketServer`).

use std::time::Duration;

use concurrence_core::{
    ConnectionConfig, DEFAULT_LINGER, DEFAULT_SERVER_FRAME_TIMEOUT, DEFAULT_SERVER_IDLE_TIMEOUT,
    ReaderConfig, WriterConfig,
};

/// The seed's default `listen` backlog.
pub const DEFAULT_BACKLOG: i32 = 255;

/// Settings for a server on either socket backend (`concurrence_polling::serve` /
/// `SocketServer`, `concurrence_smol::SocketServer`). The same fields mean the same on both;
/// where a backend has no use for one, its doc says so.
///
/// Fields are public: start from `ServerConfig::default()` and set what you need, or chain the
/// `with_*` methods.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ServerConfig {
    /// polling: event loops, each on its own thread. TCP loops each own a listener bound to
    /// the same port with `SO_REUSEPORT` (the kernel spreads connections); Unix loops share
    /// one listener. smol: not used (the executor you run the server on decides). Default 1.
    pub threads: usize,
    /// The `listen` backlog. Default 255, as in the seed.
    pub backlog: i32,
    /// Connections open at once, over all loops. At the cap the loops stop accepting: new
    /// connections wait in the kernel's backlog (and past it, their connects time out)
    /// until a connection ends. Default 10,000.
    pub max_connections: usize,
    /// polling's blocking handler server (`SocketServer::serve`): at most this many handler
    /// threads at once (each is an OS thread with its own stack); newcomers past it wait in
    /// the backlog, as at `max_connections`. Default 512.
    pub max_handler_threads: usize,
    /// Close a connection after this long without a byte read or written, so that peers that
    /// connect and go quiet cannot hold `max_connections` forever. Default 60 s
    /// (`concurrence_core::DEFAULT_SERVER_IDLE_TIMEOUT`); raise it (or set `None`) for protocols whose clients keep
    /// pooled connections quiet for long.
    pub idle_timeout: Option<Duration>,
    /// Close a connection whose request (frame) started arriving and did not complete
    /// within this long: peers that trickle bytes (slowloris) are not idle, so only this
    /// stops them. Default 30 s (`concurrence_core::DEFAULT_SERVER_FRAME_TIMEOUT`); raise it
    /// for protocols whose frames are large and may cross slow links.
    pub frame_timeout: Option<Duration>,
    /// After an accept fails (`EMFILE`, `ENFILE`, `ENOBUFS`...), the listener rests this long
    /// before it is watched again (a level-triggered listener would report the same error at
    /// once and spin the loop). Logged once per run of failures. Default 100 ms.
    pub accept_error_pause: Duration,
    /// Once a session is done (`Close` or an error), how long its connection may take to send
    /// what is pending and see the peer's end of stream (input meanwhile is discarded, so that
    /// closing does not reset the connection and destroy the last reply). Default 5 s
    /// (`concurrence_core::DEFAULT_LINGER`).
    pub linger: Duration,
    /// polling: after `shutdown()`; smol: after `close()` (for `serve_session` connections):
    /// how long live connections may take to finish before they are ended with
    /// `EndReason::Shutdown`. Default 5 s.
    pub shutdown_grace: Duration,
    /// Bytes one connection moves per turn (polling: per loop turn; smol: before its task
    /// yields to the executor), so that one busy peer cannot starve the others. Default 64 KiB.
    pub read_budget: usize,
    /// polling: connections accepted per loop turn (smol accepts one per wake-up). Default 64.
    pub accept_budget: usize,
    /// polling: buffers of each kind (read, write) an event loop keeps from idle connections
    /// for the next request, so that a warm server neither allocates nor zeroes per request
    /// ([`BufferPool`](concurrence_core::BufferPool)). Default 64 (with 8 KiB buffers, at most 1 MiB per
    /// loop); 0 gives every idle buffer back to the allocator.
    pub pooled_buffers: usize,
    /// Each connection's reader bounds.
    pub reader: ReaderConfig,
    /// Each connection's writer bounds (the high-water mark is the back-pressure threshold).
    pub writer: WriterConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            threads: 1,
            backlog: DEFAULT_BACKLOG,
            max_connections: 10_000,
            max_handler_threads: 512,
            idle_timeout: Some(DEFAULT_SERVER_IDLE_TIMEOUT),
            frame_timeout: Some(DEFAULT_SERVER_FRAME_TIMEOUT),
            accept_error_pause: Duration::from_millis(100),
            linger: DEFAULT_LINGER,
            shutdown_grace: Duration::from_secs(5),
            read_budget: 64 * 1024,
            accept_budget: 64,
            pooled_buffers: 64,
            reader: ReaderConfig::default(),
            writer: WriterConfig::default(),
        }
    }
}

impl ServerConfig {
    /// This configuration with `threads` event loops (at least 1).
    #[must_use]
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// This configuration with `max_handler_threads` set.
    #[must_use]
    pub fn with_max_handler_threads(mut self, threads: usize) -> Self {
        self.max_handler_threads = threads;
        self
    }

    /// This configuration with `max_connections` set.
    #[must_use]
    pub fn with_max_connections(mut self, max_connections: usize) -> Self {
        self.max_connections = max_connections;
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

    /// The settings of each connection this server accepts.
    #[must_use]
    pub fn connection_config(&self) -> ConnectionConfig {
        ConnectionConfig::default()
            .with_buffers(self.reader, self.writer)
            .with_idle_timeout(self.idle_timeout)
            .with_frame_timeout(self.frame_timeout)
            .with_linger(self.linger)
    }

    /// This configuration with `shutdown_grace` set.
    #[must_use]
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// This configuration with `backlog` set.
    #[must_use]
    pub fn with_backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }

    /// This configuration with the connections' reader and writer bounds set.
    #[must_use]
    pub fn with_buffers(mut self, reader: ReaderConfig, writer: WriterConfig) -> Self {
        self.reader = reader;
        self.writer = writer;
        self
    }
}
