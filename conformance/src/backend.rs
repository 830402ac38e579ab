//! The backend trait the suite runs against: what a backend must offer (listen, connect,
//! accept, read, write, spawn, sleep, serve and connect a `Session`) as small object-safe
//! traits, so that every scenario is written once and a third-party backend plugs in.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use concurrence_core::{Address, ConnectionConfig, Ended, Session, SocketState, Timestamp};
use concurrence_socket::{ServerConfig, SocketError};

use crate::Transcript;

/// A future a scenario awaits; backends need not make it `Send` (the simulator's are not).
pub type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// A session as the suite hands it to a backend.
pub type BoxSession = Box<dyn Session + Send>;

/// Makes the server's session for each accepted connection, given the peer's address.
pub type SessionFactory = Arc<dyn Fn(&Address) -> BoxSession + Send + Sync>;

/// A scenario's body: given the network of one run, produce its transcript.
pub type ScenarioBody = Box<dyn FnOnce(Rc<dyn Net>) -> LocalFuture<'static, Transcript>>;

/// The two kinds of stream address the seed knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddressKind {
    /// `ip:port`.
    Tcp,
    /// A filesystem path (a name on the simulator).
    Unix,
}

impl std::fmt::Display for AddressKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AddressKind::Tcp => "tcp",
            AddressKind::Unix => "unix",
        })
    }
}

/// What a backend supports; scenarios that need more are reported as not applicable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// `ip:port` addresses.
    pub tcp: bool,
    /// Unix socket paths.
    pub unix: bool,
    /// Passing a connected socket over a Unix socket ([`Stream::send_stream`]).
    pub fd_passing: bool,
    /// The seed's handler server (`SocketServer::serve`, [`Net::serve_echo_handler`]).
    pub handler_server: bool,
    /// The seed's socket API is the backend's own: [`Net::socket`] and [`Net::connect`] give
    /// its sockets. A backend that serves sessions only lends plain peer sockets there, and the
    /// scenarios about the socket API itself do not apply.
    pub seed_socket: bool,
}

/// A backend the suite can run: it makes a fresh network (runtime, executor, simulated world)
/// for each scenario and runs the scenario's body on it to completion.
pub trait Backend {
    /// How the backend is named in reports ("polling", "sim seed 3").
    fn name(&self) -> String;

    /// What it supports.
    fn capabilities(&self) -> Capabilities;

    /// Runs `scenario` to completion on a fresh network and returns its transcript.
    ///
    /// # Errors
    /// The run could not finish: it hung past the backend's own bound, deadlocked (the
    /// simulator proves it), or the runtime failed; the text says which.
    fn run(&mut self, scenario: ScenarioBody) -> Result<Transcript, String>;
}

/// One run's network, as the scenario sees it. Every future it returns runs on the
/// backend's executor; spawned tasks run beside the scenario until it finishes.
pub trait Net {
    /// A fresh address of `kind` to listen on: port 0 for TCP (the OS or simulator picks),
    /// a path no other run uses for Unix.
    fn address(&self, kind: AddressKind) -> Address;

    /// A new socket for `address`, not yet bound (state `Init`).
    ///
    /// # Errors
    /// The backend could not create it.
    fn socket(&self, address: &Address) -> Result<Box<dyn Listener>, SocketError>;

    /// Connects to `address`, waiting at most `timeout`.
    fn connect(
        &self,
        address: &Address,
        timeout: Option<Duration>,
    ) -> LocalFuture<'static, Result<Box<dyn Stream>, SocketError>>;

    /// Runs `task` beside the scenario (detached).
    fn spawn(&self, task: LocalFuture<'static, ()>);

    /// The backend's clock now (virtual on the simulator): what sessions are told as `now`.
    fn now(&self) -> Timestamp;

    /// Waits `duration` on the backend's clock (virtual on the simulator).
    fn sleep(&self, duration: Duration) -> LocalFuture<'static, ()>;

    /// Serves one session from `factory` per connection to `address`, with `config`'s
    /// limits, until the returned server is closed (or the run ends).
    ///
    /// # Errors
    /// The address could not be bound or listened on.
    fn serve_session(
        &self,
        address: &Address,
        config: ServerConfig,
        factory: SessionFactory,
    ) -> Result<Box<dyn SessionServer>, SocketError>;

    /// Serves the seed's handler API (`SocketServer::serve(handler)`) on `address` with an
    /// echo handler written as a user would (read into a `Buffer`, write it back, until end of
    /// stream), until the returned server is closed.
    ///
    /// # Errors
    /// The address could not be bound or listened on, or the backend has no handler server
    /// (`Capabilities::handler_server` is false).
    fn serve_echo_handler(
        &self,
        address: &Address,
        config: ServerConfig,
    ) -> Result<Box<dyn SessionServer>, SocketError> {
        let _ = (address, config);
        Err(unsupported("serve"))
    }

    /// A peer that floods `address` from outside this backend's executor (pipelined lines as
    /// fast as the server takes them, the echoes read meanwhile) until `stop` is set, then
    /// half-closes; the future gives the bytes echoed. The default, for real sockets: two OS
    /// threads with blocking std sockets (a real client is another process). A backend whose
    /// peers are all its own tasks (the simulator) answers `None`, and the scenario floods
    /// from a task beside it.
    fn flood(
        &self,
        address: &Address,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Option<LocalFuture<'static, Result<usize, SocketError>>> {
        Some(crate::thread_flood::flood_from_threads(address, stop))
    }

    /// Connects to `address` and runs `session` as the client until the connection ends.
    fn connect_session(
        &self,
        address: &Address,
        session: BoxSession,
        config: ConnectionConfig,
    ) -> LocalFuture<'static, Ended<BoxSession>>;
}

/// A socket that is not a connection: new, bound, listening, or closed.
pub trait Listener {
    /// Binds to the socket's address.
    ///
    /// # Errors
    /// As the backend's `Socket::bind`.
    fn bind(&mut self) -> Result<(), SocketError>;

    /// Listens with `backlog` (binds first if needed).
    ///
    /// # Errors
    /// As the backend's `Socket::listen`.
    fn listen(&mut self, backlog: i32) -> Result<(), SocketError>;

    /// The bound address (the port picked, for port 0).
    ///
    /// # Errors
    /// The socket is closed.
    fn local_address(&self) -> Result<Address, SocketError>;

    /// Waits at most `timeout` for a connection.
    fn accept(
        &mut self,
        timeout: Option<Duration>,
    ) -> LocalFuture<'_, Result<Box<dyn Stream>, SocketError>>;

    /// Closes it (idempotent).
    ///
    /// # Errors
    /// As the backend's `Socket::close`.
    fn close(&mut self) -> Result<(), SocketError>;
}

/// A connected socket.
pub trait Stream {
    /// Reads at most `max` bytes, waiting at most `timeout`; empty means end of stream.
    fn read(
        &mut self,
        max: usize,
        timeout: Option<Duration>,
    ) -> LocalFuture<'_, Result<Vec<u8>, SocketError>>;

    /// Writes a prefix of `bytes` (as many as the socket takes), waiting at most `timeout`
    /// for room; returns how many.
    fn write(
        &mut self,
        bytes: Vec<u8>,
        timeout: Option<Duration>,
    ) -> LocalFuture<'_, Result<usize, SocketError>>;

    /// Half-closes: the peer reads end of stream after what was written.
    ///
    /// # Errors
    /// Not connected, or the OS refused.
    fn shutdown_write(&mut self) -> Result<(), SocketError>;

    /// Closes it (idempotent).
    ///
    /// # Errors
    /// As the backend's `Socket::close`.
    fn close(&mut self) -> Result<(), SocketError>;

    /// Closes it with a reset: unsent output is dropped, the peer reads `ConnectionReset`.
    ///
    /// # Errors
    /// As the backend's `Socket::abort`.
    fn abort(&mut self) -> Result<(), SocketError>;

    /// The socket's state.
    fn state(&self) -> SocketState;

    /// Passes `other` (a stream of the same backend) over this Unix socket.
    fn send_stream<'a>(
        &'a mut self,
        other: &'a dyn Stream,
        timeout: Option<Duration>,
    ) -> LocalFuture<'a, Result<(), SocketError>> {
        let _ = (other, timeout);
        Box::pin(async { Err(unsupported("write_socket")) })
    }

    /// Receives a stream passed with [`send_stream`](Stream::send_stream).
    fn recv_stream(
        &mut self,
        timeout: Option<Duration>,
    ) -> LocalFuture<'_, Result<Box<dyn Stream>, SocketError>> {
        let _ = timeout;
        Box::pin(async { Err(unsupported("read_socket")) })
    }

    /// The concrete stream, for `send_stream` to find the other stream's descriptor.
    fn as_any(&self) -> &dyn Any;
}

/// A running session server.
pub trait SessionServer {
    /// Where it listens (the port picked, for port 0).
    fn local_address(&self) -> Address;

    /// Connections being served now.
    fn connections(&self) -> usize;

    /// Stops accepting.
    fn close(&mut self);
}

/// The error a backend answers for what it does not offer.
fn unsupported(op: &'static str) -> SocketError {
    SocketError::io(
        op,
        "-",
        std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "this backend does not offer it (see its Capabilities)",
        ),
    )
}
