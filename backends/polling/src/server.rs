//! Serving sessions: `serve` and the seed's `SocketServer` start event loops on threads and
//! hand back a `ServerHandle` to find the address, shut down and join.

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use concurrence_core::{Address, Session};
use polling::Poller;

use concurrence_os::sockaddr::address_of;
use concurrence_socket::{ServerConfig, SocketError};

use crate::event_loop::EventLoop;
use crate::socket::Socket;

/// State the loops and the handle share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) stop: AtomicBool,
    pub(crate) live: AtomicUsize,
    pollers: Mutex<Vec<Arc<Poller>>>,
    reads: AtomicU64,
    empty_reads: AtomicU64,
    sends: AtomicU64,
}

/// How many receive and send system calls a server's loops made on connections, and how many
/// receives found nothing (`EAGAIN`): a check that the loops do not make calls that cannot
/// succeed. Published before each wait for events.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct IoCounts {
    /// `recv` calls on connections.
    pub reads: u64,
    /// Of those, the ones that found nothing to read.
    pub empty_reads: u64,
    /// `send` calls on connections.
    pub sends: u64,
}

impl Shared {
    /// Adds one loop's counts since its last report, and clears them.
    pub(crate) fn add_calls(&self, calls: &mut crate::transfer::Calls) {
        if calls.reads + calls.sends > 0 {
            self.reads.fetch_add(calls.reads, Ordering::Relaxed);
            self.empty_reads
                .fetch_add(calls.empty_reads, Ordering::Relaxed);
            self.sends.fetch_add(calls.sends, Ordering::Relaxed);
            *calls = crate::transfer::Calls::default();
        }
    }

    pub(crate) fn add_poller(&self, poller: Arc<Poller>) {
        self.pollers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(poller);
    }

    /// Takes a connection slot if fewer than `cap` are live (one atomic step: several loops
    /// accepting at once never overshoot the cap).
    pub(crate) fn reserve(&self, cap: usize) -> bool {
        self.live
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < cap).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives a connection slot back; one freed at the cap wakes every loop, so that a
    /// newcomer waiting on another loop's listener is let in promptly.
    pub(crate) fn release(&self, cap: usize) {
        if self.live.fetch_sub(1, Ordering::SeqCst) == cap {
            self.wake_all();
        }
    }

    pub(crate) fn wake_all(&self) {
        for poller in self
            .pollers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = poller.notify();
        }
    }
}

/// A running server: where it listens, and how to stop it.
///
/// Dropping the handle shuts the server down and waits for its loops.
#[derive(Debug)]
pub struct ServerHandle {
    address: Address,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<Result<(), SocketError>>>,
    unix_path_to_remove: Option<std::path::PathBuf>,
}

impl ServerHandle {
    pub(crate) fn new(
        address: Address,
        shared: Arc<Shared>,
        threads: Vec<JoinHandle<Result<(), SocketError>>>,
    ) -> Self {
        let unix_path_to_remove = address.as_unix().map(std::path::Path::to_path_buf);
        ServerHandle {
            address,
            shared,
            threads,
            unix_path_to_remove,
        }
    }

    /// The address the server listens on (with the real port when port 0 was asked for).
    #[must_use]
    pub fn local_address(&self) -> &Address {
        &self.address
    }

    /// Receive and send system calls on connections so far, across the server's loops.
    #[must_use]
    pub fn io_counts(&self) -> IoCounts {
        IoCounts {
            reads: self.shared.reads.load(Ordering::Relaxed),
            empty_reads: self.shared.empty_reads.load(Ordering::Relaxed),
            sends: self.shared.sends.load(Ordering::Relaxed),
        }
    }

    /// Connections open right now, over all loops.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.shared.live.load(Ordering::SeqCst)
    }

    /// Stops accepting; live connections get `shutdown_grace` to finish, then are closed.
    /// Returns at once; [`join`](ServerHandle::join) waits.
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake_all();
    }

    /// Waits for every loop to end (after [`shutdown`](ServerHandle::shutdown)).
    ///
    /// # Errors
    /// The first error a loop ended with.
    pub fn join(mut self) -> Result<(), SocketError> {
        self.join_threads()
    }

    fn join_threads(&mut self) -> Result<(), SocketError> {
        let mut first = Ok(());
        for thread in self.threads.drain(..) {
            let result = thread.join().unwrap_or_else(|_| {
                Err(SocketError::io(
                    "event loop",
                    "server",
                    std::io::Error::other("an event loop panicked"),
                ))
            });
            if first.is_ok() {
                first = result;
            }
        }
        if let Some(path) = self.unix_path_to_remove.take() {
            let _ = std::fs::remove_file(path);
        }
        first
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.shutdown();
            let _ = self.join_threads();
        }
    }
}

/// Binds `address` and serves one `Session` per connection (from `factory`, given the peer's
/// address) on `config.threads` event loops.
///
/// ```no_run
/// use concurrence_core::{Next, Session, SessionError, StreamReader, StreamWriter, Timestamp};
/// use concurrence_polling::{serve};
/// use concurrence_socket::{ServerConfig};
///
/// struct Echo;
/// impl Session for Echo {
///     fn handle_input(&mut self, _: Timestamp, r: &mut StreamReader, w: &mut StreamWriter)
///         -> Result<Next, SessionError> {
///         w.write_bytes(r.read_available())?;
///         Ok(Next::Continue)
///     }
/// }
///
/// let server = serve(&"127.0.0.1:0".parse()?, ServerConfig::default(), |_peer| Echo)?;
/// println!("listening on {}", server.local_address());
/// server.shutdown();
/// server.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// The address could not be bound or listened on.
pub fn serve<S, F>(
    address: &Address,
    config: ServerConfig,
    factory: F,
) -> Result<ServerHandle, SocketError>
where
    S: Session + 'static,
    F: Fn(&Address) -> S + Send + Sync + 'static,
{
    let mut server = SocketServer::with_config(address.clone(), config);
    server.listen(config.backlog)?;
    server.start_sessions(Arc::new(factory))
}

/// The seed's `SocketServer`: an endpoint, then `bind`, `listen(backlog)`, and either
/// [`serve`](Self::serve) (a blocking handler per connection, each on its own thread, at most
/// `max_connections` at once) or [`serve_session`](Self::serve_session) (core `Session`s on
/// the event loops); [`close`](Self::close) stops it. Both serve calls return at once; the
/// server runs on its own threads.
///
/// ```no_run
/// use std::time::Duration;
/// use concurrence_core::Buffer;
/// use concurrence_polling::{Socket, SocketServer};
/// use concurrence_socket::{SocketError};
///
/// let mut server = SocketServer::new("127.0.0.1:7000".parse()?);
/// server.listen(255)?;
/// server.serve(|mut socket: Socket| {
///     let mut buffer = Buffer::new(1024);
///     socket.read(&mut buffer, Some(Duration::from_secs(5)))?;
///     buffer.flip();
///     socket.write(&mut buffer, Some(Duration::from_secs(5)))?;
///     Ok::<_, SocketError>(())
/// })?;
/// // ... later:
/// server.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SocketServer {
    endpoint: Address,
    config: ServerConfig,
    listeners: Vec<socket2::Socket>,
    listening: bool,
    handle: Option<ServerHandle>,
}

impl SocketServer {
    /// A server for `endpoint` with default settings.
    #[must_use]
    pub fn new(endpoint: Address) -> Self {
        SocketServer::with_config(endpoint, ServerConfig::default())
    }

    /// A server with explicit settings.
    #[must_use]
    pub fn with_config(endpoint: Address, config: ServerConfig) -> Self {
        SocketServer {
            endpoint,
            config,
            listeners: Vec::new(),
            listening: false,
            handle: None,
        }
    }

    /// Creates the listening sockets if needed and binds them (`SO_REUSEADDR` always;
    /// `SO_REUSEPORT` with more than one TCP loop; a stale Unix socket file removed first).
    ///
    /// # Errors
    /// The address is in use or not available.
    pub fn bind(&mut self) -> Result<(), SocketError> {
        if !self.listeners.is_empty() {
            return Ok(());
        }
        let threads = self.config.threads.max(1);
        let mut address = self.endpoint.clone();
        let tcp = matches!(address, Address::Tcp(_));
        let loops = if tcp { threads } else { 1 };
        for _ in 0..loops {
            let socket = concurrence_os::sockaddr::bind(&address, tcp && threads > 1)?;
            // Port 0: the first bind picked a port; the other loops share it.
            let local = socket
                .local_addr()
                .map_err(|e| SocketError::io("bind", &address, e))?;
            address = address_of(&local, &address);
            self.listeners.push(socket);
        }
        self.endpoint = address;
        Ok(())
    }

    /// Binds if needed, then listens with `backlog` (the seed's default is 255).
    ///
    /// # Errors
    /// As [`bind`](SocketServer::bind), or the OS refused to listen.
    pub fn listen(&mut self, backlog: i32) -> Result<(), SocketError> {
        self.bind()?;
        if !self.listening {
            for listener in &self.listeners {
                listener
                    .listen(backlog)
                    .map_err(|e| SocketError::io("listen", &self.endpoint, e))?;
            }
            self.listening = true;
        }
        Ok(())
    }

    /// The address the server is bound to (the real port once bound).
    #[must_use]
    pub fn local_address(&self) -> &Address {
        &self.endpoint
    }

    /// Listens if needed, then serves a blocking `handler(socket)` per connection, each on a
    /// thread of its own, at most `max_connections` at once (newcomers wait in the backlog).
    /// The socket is closed when the handler returns, unless the handler kept it (moved it
    /// elsewhere). A handler that returns `Err` or panics is logged; the server goes on.
    /// Returns at once; the server runs until [`close`](Self::close).
    ///
    /// # Errors
    /// As [`listen`](SocketServer::listen), or the accept thread could not be started.
    pub fn serve<H, E>(&mut self, handler: H) -> Result<(), SocketError>
    where
        H: Fn(Socket) -> Result<(), E> + Send + Sync + 'static,
        E: Display,
    {
        if self.handle.is_none() {
            self.listen(self.config.backlog)?;
            let handle = crate::handler_server::start(
                self.take_listener()?,
                self.endpoint.clone(),
                self.config,
                Arc::new(handler),
            )?;
            self.handle = Some(handle);
        }
        Ok(())
    }

    /// Listens if needed, then serves one `Session` per connection (from `factory`, given the
    /// peer's address) on `config.threads` event loops. Returns at once; the server runs until
    /// [`close`](Self::close).
    ///
    /// # Errors
    /// As [`listen`](SocketServer::listen), or a poller or thread could not be created.
    pub fn serve_session<S, F>(&mut self, factory: F) -> Result<(), SocketError>
    where
        S: Session + 'static,
        F: Fn(&Address) -> S + Send + Sync + 'static,
    {
        if self.handle.is_none() {
            self.handle = Some(self.start_sessions(Arc::new(factory))?);
        }
        Ok(())
    }

    /// The running server, after a serve call: its address and live connection count.
    #[must_use]
    pub fn handle(&self) -> Option<&ServerHandle> {
        self.handle.as_ref()
    }

    /// The one listener (handler servers run one accept thread).
    fn take_listener(&mut self) -> Result<socket2::Socket, SocketError> {
        let mut listeners = std::mem::take(&mut self.listeners);
        self.listening = false;
        let first = listeners.drain(..).next();
        first.ok_or_else(|| {
            SocketError::io(
                "serve",
                &self.endpoint,
                std::io::Error::other("no listener was created"),
            )
        })
    }

    fn start_sessions<S, F>(&mut self, factory: Arc<F>) -> Result<ServerHandle, SocketError>
    where
        S: Session + 'static,
        F: Fn(&Address) -> S + Send + Sync + 'static,
    {
        self.listen(self.config.backlog)?;
        let shared = Arc::new(Shared::default());
        let mut listeners = std::mem::take(&mut self.listeners);
        // Serving consumes the listeners: a later serve after close binds and listens anew.
        self.listening = false;
        let threads = self.config.threads.max(1);
        // Unix servers: every loop shares the one listener.
        while listeners.len() < threads {
            let copy = listeners[0]
                .try_clone()
                .map_err(|e| SocketError::io("clone listener", &self.endpoint, e))?;
            listeners.push(copy);
        }
        let mut handles = Vec::new();
        for (index, listener) in listeners.into_iter().enumerate() {
            let poller = Arc::new(
                Poller::new().map_err(|e| SocketError::io("create poller", &self.endpoint, e))?,
            );
            shared.add_poller(Arc::clone(&poller));
            let (endpoint, config) = (self.endpoint.clone(), self.config);
            let (shared, factory) = (Arc::clone(&shared), Arc::clone(&factory));
            // The loop (and so every session) is built on its own thread: sessions need not
            // be `Send`.
            let thread = std::thread::Builder::new()
                .name(format!("concurrence-loop-{index}"))
                .spawn(move || {
                    EventLoop::new(poller, listener, endpoint, config, shared, factory).run()
                })
                .map_err(|e| SocketError::io("spawn event loop", &self.endpoint, e))?;
            handles.push(thread);
        }
        Ok(ServerHandle::new(self.endpoint.clone(), shared, handles))
    }

    /// Stops accepting, lets live connections finish within the grace period (session
    /// servers), closes them, and waits for the server's threads. A later serve call binds
    /// and listens again.
    ///
    /// # Errors
    /// The first error a server thread ended with.
    pub fn close(&mut self) -> Result<(), SocketError> {
        self.listeners.clear();
        self.listening = false;
        match self.handle.take() {
            Some(handle) => {
                handle.shutdown();
                handle.join()
            }
            None => Ok(()),
        }
    }
}
