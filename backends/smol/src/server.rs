//! The seed's `SocketServer`, async: accept connections and run one task per connection, either
//! an async handler (`serve`) or a core `Session` (`serve_session`), on the executor of your
//! choice. A handler that fails or panics is logged and the server keeps serving.

use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use concurrence_core::{Address, Connection, Session};
use futures_lite::FutureExt;

use concurrence_os::log_end;
use concurrence_socket::{
    AcceptGate, ServerConfig, ServerListener, SocketError, accept_until_stopped, panic_message,
};

use crate::session_driver::{ServerStop, drive};
use crate::socket::{SmolTransport, Socket};
use crate::spawn::{SmolGlobal, Spawn};

/// One live connection, counted while its task runs (also if the task is dropped unfinished);
/// its end wakes an accept loop waiting at `max_connections`.
struct LiveSlot {
    live: Arc<AtomicUsize>,
    freed: async_channel::Sender<()>,
}

impl LiveSlot {
    fn take(live: &Arc<AtomicUsize>, freed: &async_channel::Sender<()>) -> LiveSlot {
        live.fetch_add(1, Ordering::SeqCst);
        LiveSlot {
            live: Arc::clone(live),
            freed: freed.clone(),
        }
    }
}

impl Drop for LiveSlot {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
        let _ = self.freed.try_send(());
    }
}

/// A server's stop signal: a channel that `close()` closes (every waiter wakes at once). A
/// serve call that ended on a close consumes it, so that the next serve call starts on a fresh
/// channel: a server serves again after `close()`, as the polling backend's does.
#[derive(Debug)]
struct StopSwitch {
    /// The channel, and whether a serve call already ended on its close.
    state: Mutex<(async_channel::Sender<()>, async_channel::Receiver<()>, bool)>,
}

impl StopSwitch {
    fn new() -> Self {
        let (tx, rx) = async_channel::bounded(1);
        StopSwitch {
            state: Mutex::new((tx, rx, false)),
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, (async_channel::Sender<()>, async_channel::Receiver<()>, bool)>
    {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn close(&self) {
        self.lock().0.close();
    }

    /// For a serve call starting now: the receiver that tells it to stop (a fresh channel if
    /// the last close was already consumed by an earlier serve call).
    fn begin_serve(&self) -> async_channel::Receiver<()> {
        let mut state = self.lock();
        if state.2 {
            let (tx, rx) = async_channel::bounded(1);
            *state = (tx, rx, false);
        }
        state.1.clone()
    }

    /// A serve call ended on the close.
    fn consume(&self) {
        let mut state = self.lock();
        if state.0.is_closed() {
            state.2 = true;
        }
    }
}

/// Stops a running server's accept loop from anywhere (clone it freely).
#[derive(Debug, Clone)]
pub struct CloseHandle {
    stop: Arc<StopSwitch>,
    live: Arc<AtomicUsize>,
}

impl CloseHandle {
    /// Stops accepting (the serve call running now, or the next one if none runs).
    /// Session connections get `ServerConfig::shutdown_grace`; handler tasks run on.
    pub fn close(&self) {
        self.stop.close();
    }

    /// Connections whose tasks are running right now.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }
}

/// The seed's `SocketServer`: an endpoint and a handler; `bind`/`listen`, `serve`, `close`.
///
/// ```no_run
/// use concurrence_smol::{Socket, SocketServer};
///
/// smol::block_on(async {
///     let mut server = SocketServer::new("127.0.0.1:7000".parse()?);
///     server.listen(255)?;
///     server
///         .serve(|mut socket: Socket| async move {
///             let mut buffer = concurrence_core::Buffer::new(1024);
///             let n = socket.read(&mut buffer, None).await?;
///             buffer.flip();
///             socket.write(&mut buffer, None).await?;
///             Ok::<_, concurrence_socket::SocketError>(n)
///         })
///         .await?;
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })
/// # .unwrap();
/// ```
pub struct SocketServer {
    listener: ServerListener<SmolTransport>,
    config: ServerConfig,
    spawner: Arc<dyn Spawn>,
    stop: Arc<StopSwitch>,
    live: Arc<AtomicUsize>,
}

impl std::fmt::Debug for SocketServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketServer")
            .field("endpoint", self.listener.endpoint())
            .field("config", &self.config)
            .field("listening", &self.listener.is_bound())
            .finish_non_exhaustive()
    }
}

impl SocketServer {
    /// A server for `endpoint` on smol's global executor with default settings.
    #[must_use]
    pub fn new(endpoint: Address) -> Self {
        SocketServer::with_config(endpoint, ServerConfig::default())
    }

    /// A server with explicit settings.
    #[must_use]
    pub fn with_config(endpoint: Address, config: ServerConfig) -> Self {
        SocketServer {
            listener: ServerListener::new(endpoint),
            config,
            spawner: Arc::new(SmolGlobal),
            stop: Arc::new(StopSwitch::new()),
            live: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Runs connection tasks on `spawner` instead of smol's global executor.
    #[must_use]
    pub fn with_spawner(mut self, spawner: impl Spawn) -> Self {
        self.spawner = Arc::new(spawner);
        self
    }

    /// Creates the socket if needed and binds it (the seed's `bind`).
    ///
    /// # Errors
    /// The address is in use or not available.
    pub fn bind(&mut self) -> Result<(), SocketError> {
        self.listener.bind()
    }

    /// Binds if needed, then listens with `backlog` (the seed's default is 255).
    ///
    /// # Errors
    /// The address is in use or not available, or the OS refused to listen.
    pub fn listen(&mut self, backlog: i32) -> Result<(), SocketError> {
        self.listener.listen(backlog)
    }

    /// The address the server is bound to (the real port once bound).
    #[must_use]
    pub fn local_address(&self) -> &Address {
        self.listener.endpoint()
    }

    /// A handle that stops [`serve`](Self::serve) from elsewhere.
    #[must_use]
    pub fn close_handle(&self) -> CloseHandle {
        CloseHandle {
            stop: Arc::clone(&self.stop),
            live: Arc::clone(&self.live),
        }
    }

    /// Connections whose tasks are running right now.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Stops accepting (as [`CloseHandle::close`]); a later serve call listens again.
    pub fn close(&self) {
        self.stop.close();
    }

    /// Accepts until closed, running `handler(socket)` as one task per connection. The
    /// socket is closed when the handler's future ends, unless the handler kept it (moved it
    /// elsewhere). A handler that returns `Err` or panics is logged; the server keeps serving.
    ///
    /// # Errors
    /// The listener could not be created, or accepting failed for good.
    pub async fn serve<H, Fut, T, E>(&mut self, mut handler: H) -> Result<(), SocketError>
    where
        H: FnMut(Socket) -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        E: Display,
    {
        self.accept_loop(|socket| {
            let peer = socket.address().clone();
            let task = handler(socket);
            Box::pin(async move {
                if let Err(error) = task.await {
                    tracing::warn!(%peer, %error, "connection handler failed");
                }
            })
        })
        .await
    }

    /// Accepts until closed, driving one `Session` from `factory` per connection with the
    /// core's `Connection` (back-pressure, deadlines, close after flush): the same sessions
    /// the polling backend serves.
    ///
    /// # Errors
    /// The listener could not be created, or accepting failed for good.
    pub async fn serve_session<S, F>(&mut self, factory: F) -> Result<(), SocketError>
    where
        S: Session + Send + 'static,
        F: Fn(&Address) -> S,
    {
        let (config, budget) = (self.config.connection_config(), self.config.read_budget);
        let stop = ServerStop {
            stopped: self.stop.begin_serve(),
            grace: self.config.shutdown_grace,
        };
        self.accept_loop(|socket| {
            // The factory is user code: a panic there ends only this connection (the socket
            // closes when the task drops it), as on the polling backend.
            let made = std::panic::catch_unwind(AssertUnwindSafe(|| factory(socket.address())));
            let stop = stop.clone();
            Box::pin(async move {
                let session = match made {
                    Ok(session) => session,
                    Err(panic) => {
                        let what = panic_message(&*panic);
                        tracing::error!(peer = %socket.address(), panic = %what,
                            "the session factory panicked; closing the connection");
                        return;
                    }
                };
                let Some(stream) = socket.transport_stream() else {
                    return;
                };
                let mut conn = Connection::with_config(session, config);
                let reason = drive(stream, &mut conn, budget, Some(&stop)).await;
                log_end(socket.address(), Some(&reason));
            })
        })
        .await
    }

    async fn accept_loop(
        &mut self,
        mut task_for: impl FnMut(Socket) -> crate::spawn::Task,
    ) -> Result<(), SocketError> {
        self.listen(self.config.backlog)?;
        let stop = self.stop.begin_serve();
        let Some(listener) = self.listener.socket_mut() else {
            return Ok(());
        };
        let live = Arc::clone(&self.live);
        let (freed_tx, freed_rx) = async_channel::bounded::<()>(1);
        let mut gate = AcceptGate::new(&self.config);
        let spawner = Arc::clone(&self.spawner);
        spawner.start();
        let served = accept_until_stopped(
            listener,
            &mut gate,
            || live.load(Ordering::SeqCst),
            || async {
                let _ = freed_rx.recv().await;
            },
            || async {
                let _ = stop.recv().await;
            },
            |socket| {
                let peer = socket.address().clone();
                let task = task_for(socket);
                let slot = LiveSlot::take(&live, &freed_tx);
                // A panicking connection task is logged and contained: the server and the
                // executor's other tasks go on.
                spawner.spawn(Box::pin(async move {
                    let _slot = slot;
                    if let Err(panic) = AssertUnwindSafe(task).catch_unwind().await {
                        let what = panic_message(&*panic);
                        tracing::error!(%peer, panic = %what, "connection task panicked");
                    }
                }));
            },
        )
        .await;
        self.listener.release();
        if let Address::Unix(path) = self.listener.endpoint() {
            let _ = std::fs::remove_file(path);
        }
        self.stop.consume();
        served
    }
}
