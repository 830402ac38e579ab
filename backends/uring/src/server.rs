//! Serving sessions on io_uring: `serve` and `SocketServer` start one event loop per thread
//! (each with its own ring) and hand back the OS layer's `ServerHandle`, the same type the
//! polling backend returns.

use std::sync::Arc;

use concurrence_core::{Address, Session};

use concurrence_os::{LoopListeners, LoopShared, ServerHandle};
use concurrence_socket::{ServerConfig, SocketError};

use crate::event_loop::{EventLoop, Factory, LoopWake};
use crate::ring::{Ring, RingSize};
use crate::unavailable::unavailable_error;

/// Submission queue entries of a server loop's ring (its completion queue has eight times
/// as many; the kernel keeps overflowing completions rather than drop them).
pub const RING_ENTRIES: u32 = 512;
/// Provided receive buffers per server loop: receives in flight take one only once data
/// arrives, so idle connections hold none. A power of two.
pub const RECV_BUFFERS: u16 = 256;
/// Bytes per provided receive buffer: the most one receive completion delivers.
pub const RECV_BUFFER_SIZE: usize = 16 * 1024;

/// Binds `address` and serves one `Session` per connection (from `factory`, given the peer's
/// address) on `config.threads` io_uring event loops.
///
/// ```no_run
/// use concurrence_core::{Next, Session, SessionError, StreamReader, StreamWriter, Timestamp};
/// use concurrence_socket::ServerConfig;
/// use concurrence_uring::serve;
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
/// io_uring is unavailable here (the error says why: `SocketError::Io` with the operation
/// `"start io_uring"` and an `Unsupported` cause), or the address could not be bound or
/// listened on.
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

/// The seed's `SocketServer` on io_uring: an endpoint, then `bind`, `listen(backlog)` and
/// either [`serve`](Self::serve) (an async handler per connection, on the server's own thread)
/// or [`serve_session`](Self::serve_session) (core `Session`s on the event loops);
/// [`close`](Self::close) stops it. Both serve calls return at once.
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

    /// Listens if needed, then serves `handler(socket)` per connection: each an async task on
    /// the server's own thread (a local executor, so handlers need not be `Send`), at most
    /// `max_connections` at once (newcomers wait in the backlog). A handler that returns `Err`
    /// or panics is logged and ends only its connection. Returns at once; the server runs
    /// until [`close`](Self::close), which gives live handlers `shutdown_grace`.
    ///
    /// # Errors
    /// As [`listen`](SocketServer::listen), io_uring is unavailable, or the thread could not
    /// be started.
    pub fn serve<H, Fut, E>(&mut self, handler: H) -> Result<(), SocketError>
    where
        H: Fn(crate::Socket) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), E>> + 'static,
        E: std::fmt::Display,
    {
        if self.handle.is_none() {
            self.listen(self.config.backlog)?;
            let address = self.local_address().clone();
            let listener = self.listeners.take_one()?;
            self.handle = Some(crate::handler_server::start(
                listener,
                address,
                self.config,
                handler,
            )?);
        }
        Ok(())
    }

    /// Listens if needed, then serves one `Session` per connection (from `factory`, given the
    /// peer's address) on `config.threads` event loops. Returns at once; the server runs until
    /// [`close`](Self::close).
    ///
    /// # Errors
    /// As [`listen`](SocketServer::listen), or io_uring is unavailable, or a thread could not
    /// be started.
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
        let endpoint = self.local_address().clone();
        // A ring is made on its loop's thread (it is single-issuer); one made here first
        // tells the caller at once, with the reason, when io_uring cannot run at all.
        Ring::new(server_ring()).map_err(|e| unavailable_error(&endpoint, &e))?;
        let shared = Arc::new(LoopShared::default());
        let listeners = self.listeners.take_per_loop(self.config.threads.max(1))?;
        let mut handles = Vec::new();
        for (index, listener) in listeners.into_iter().enumerate() {
            let wake =
                LoopWake::new().map_err(|e| SocketError::io("create event fd", &endpoint, e))?;
            let woken = wake.clone();
            shared.add_waker(Box::new(move || woken.wake()));
            listener
                .set_nonblocking(true)
                .map_err(|e| SocketError::io("listen", &endpoint, e))?;
            let (address, config) = (endpoint.clone(), self.config);
            let (shared, factory) = (Arc::clone(&shared), Arc::clone(&factory));
            // The loop (and so every session) is built on its own thread: sessions need not
            // be `Send`.
            let thread = std::thread::Builder::new()
                .name(format!("concurrence-uring-{index}"))
                .spawn(move || {
                    let ring =
                        Ring::new(server_ring()).map_err(|e| unavailable_error(&address, &e))?;
                    let factory: Factory<S> = Arc::new(move |peer: &Address| factory(peer));
                    EventLoop::new(
                        ring,
                        Some(listener),
                        Some(factory),
                        address,
                        config,
                        shared,
                        wake,
                    )
                    .run()
                })
                .map_err(|e| SocketError::io("spawn event loop", &endpoint, e))?;
            handles.push(thread);
        }
        Ok(ServerHandle::new(endpoint, shared, handles))
    }

    /// Stops accepting, lets live connections finish within the grace period, closes them,
    /// and waits for the server's threads. A later serve call binds and listens again.
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

fn server_ring() -> RingSize {
    RingSize {
        entries: RING_ENTRIES,
        buffers: RECV_BUFFERS,
        buffer_size: RECV_BUFFER_SIZE,
    }
}
