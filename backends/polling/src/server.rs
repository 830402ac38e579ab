//! Serving sessions: `serve` and the seed's `SocketServer` start event loops on threads and
//! hand back a `ServerHandle` to find the address, shut down and join.

use std::fmt::Display;
use std::sync::Arc;

use concurrence_core::{Address, Session};
use polling::Poller;

use concurrence_os::{LoopListeners, LoopShared, ServerHandle};
use concurrence_socket::{ServerConfig, SocketError};

use crate::event_loop::EventLoop;
use crate::socket::Socket;

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
    listeners: LoopListeners,
    config: ServerConfig,
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
            listeners: LoopListeners::new(endpoint, config.threads),
            config,
            handle: None,
        }
    }

    /// Creates the listening sockets if needed and binds them (`SO_REUSEADDR` always;
    /// `SO_REUSEPORT` with more than one TCP loop; a stale Unix socket file removed first).
    ///
    /// # Errors
    /// The address is in use or not available.
    pub fn bind(&mut self) -> Result<(), SocketError> {
        self.listeners.bind()
    }

    /// Binds if needed, then listens with `backlog` (the seed's default is 255).
    ///
    /// # Errors
    /// As [`bind`](SocketServer::bind), or the OS refused to listen.
    pub fn listen(&mut self, backlog: i32) -> Result<(), SocketError> {
        self.listeners.listen(backlog)
    }

    /// The address the server is bound to (the real port once bound).
    #[must_use]
    pub fn local_address(&self) -> &Address {
        self.listeners.endpoint()
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
                self.listeners.take_one()?,
                self.local_address().clone(),
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

    fn start_sessions<S, F>(&mut self, factory: Arc<F>) -> Result<ServerHandle, SocketError>
    where
        S: Session + 'static,
        F: Fn(&Address) -> S + Send + Sync + 'static,
    {
        self.listen(self.config.backlog)?;
        let shared = Arc::new(LoopShared::default());
        let endpoint = self.local_address().clone();
        // Serving consumes the listeners: a later serve after close binds and listens anew.
        // Unix servers: every loop shares the one listener.
        let listeners = self.listeners.take_per_loop(self.config.threads.max(1))?;
        let mut handles = Vec::new();
        for (index, listener) in listeners.into_iter().enumerate() {
            let poller = Arc::new(
                Poller::new().map_err(|e| SocketError::io("create poller", &endpoint, e))?,
            );
            let notified = Arc::clone(&poller);
            shared.add_waker(Box::new(move || {
                let _ = notified.notify();
            }));
            let (address, config) = (endpoint.clone(), self.config);
            let (shared, factory) = (Arc::clone(&shared), Arc::clone(&factory));
            // The loop (and so every session) is built on its own thread: sessions need not
            // be `Send`.
            let thread = std::thread::Builder::new()
                .name(format!("concurrence-loop-{index}"))
                .spawn(move || {
                    EventLoop::new(poller, listener, address, config, shared, factory).run()
                })
                .map_err(|e| SocketError::io("spawn event loop", &endpoint, e))?;
            handles.push(thread);
        }
        Ok(ServerHandle::new(endpoint, shared, handles))
    }

    /// Stops accepting, lets live connections finish within the grace period (session
    /// servers), closes them, and waits for the server's threads. A later serve call binds
    /// and listens again.
    ///
    /// # Errors
    /// The first error a server thread ended with.
    pub fn close(&mut self) -> Result<(), SocketError> {
        self.listeners.clear();
        match self.handle.take() {
            Some(handle) => {
                handle.shutdown();
                handle.join()
            }
            None => Ok(()),
        }
    }
}
