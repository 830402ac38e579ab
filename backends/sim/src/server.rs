//! `SocketServer`: the seed's socket server on the simulated network, with the smol backend's
//! names and signatures (`new`, `with_config`, `bind`, `listen`, `local_address`,
//! `close_handle`, `connections`, `close`, `serve`, `serve_session`), run as a simulated task.
//! A handler that fails or panics ends its own connection only; the failure is in the trace.

use std::cell::{Cell, RefCell};
use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};

use concurrence_core::{Address, Session};
use concurrence_socket::{
    AcceptGate, ServerConfig, ServerListener, SocketError, accept_until_stopped,
};
use futures_lite::FutureExt;
use futures_lite::future::poll_fn;

use crate::executor::{current, sleep, spawn};
use crate::socket::{SimTransport, Socket};
use crate::world::World;

#[derive(Default)]
struct Stop {
    closed: bool,
    waker: Option<Waker>,
}

/// Where a `serve_session` call's connections live: the world's session engine, for the
/// address served.
type SessionsServed = Rc<RefCell<Option<(Weak<RefCell<World>>, Address)>>>;

/// Stops a running server's accept loop from another task (clone it freely).
#[derive(Clone, Default)]
pub struct CloseHandle {
    stop: Rc<RefCell<Stop>>,
    /// Handler tasks running now.
    live: Rc<Cell<usize>>,
    /// While `serve_session` runs: whom to ask for its live sessions.
    sessions: SessionsServed,
}

impl std::fmt::Debug for CloseHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloseHandle")
            .field("closed", &self.stop.borrow().closed)
            .field("connections", &self.connections())
            .finish()
    }
}

impl CloseHandle {
    /// Stops accepting. Connections already handed to tasks run on.
    pub fn close(&self) {
        let mut stop = self.stop.borrow_mut();
        stop.closed = true;
        if let Some(waker) = stop.waker.take() {
            waker.wake();
        }
    }

    /// Connections being served right now: handler tasks running, or sessions the world
    /// serves for `serve_session` (not counting newcomers waiting in the backlog).
    #[must_use]
    pub fn connections(&self) -> usize {
        let sessions = self
            .sessions
            .borrow()
            .as_ref()
            .and_then(|(world, address)| {
                let world = world.upgrade()?;
                // Asked from inside a session callback (the world is busy): no answer there.
                let world = world.try_borrow().ok()?;
                Some(world.live_sessions(address))
            });
        self.live.get() + sessions.unwrap_or(0)
    }

    async fn closed(&self) {
        poll_fn(|cx| {
            let mut stop = self.stop.borrow_mut();
            if stop.closed {
                Poll::Ready(())
            } else {
                stop.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }
}

/// The seed's `SocketServer` on the simulated network.
#[derive(Debug)]
pub struct SocketServer {
    listener: ServerListener<SimTransport>,
    config: ServerConfig,
    handle: CloseHandle,
}

/// Counts a live connection for as long as it is held.
struct LiveSlot(Rc<Cell<usize>>);

impl LiveSlot {
    fn new(live: &Rc<Cell<usize>>) -> Self {
        live.set(live.get() + 1);
        LiveSlot(Rc::clone(live))
    }
}

impl Drop for LiveSlot {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

impl SocketServer {
    /// A server for `endpoint` with default settings.
    #[must_use]
    pub fn new(endpoint: Address) -> Self {
        SocketServer::with_config(endpoint, ServerConfig::default())
    }

    /// A server for `endpoint` with `config` (`backlog`, `max_connections`,
    /// `accept_error_pause` and the per-connection settings apply; `threads` does not: the
    /// simulator is one thread).
    #[must_use]
    pub fn with_config(endpoint: Address, config: ServerConfig) -> Self {
        SocketServer {
            listener: ServerListener::new(endpoint),
            config,
            handle: CloseHandle::default(),
        }
    }

    /// Binds the endpoint (port 0 becomes a port of the simulator's choosing).
    ///
    /// # Errors
    /// As [`Socket::bind`].
    pub fn bind(&mut self) -> Result<(), SocketError> {
        self.listener.bind()
    }

    /// Starts listening (binding first if needed).
    ///
    /// # Errors
    /// The address is in use, or called outside a simulated task.
    pub fn listen(&mut self, backlog: i32) -> Result<(), SocketError> {
        self.listener.listen(backlog)
    }

    /// The address served (the real port once bound).
    #[must_use]
    pub fn local_address(&self) -> &Address {
        self.listener.endpoint()
    }

    /// A handle that stops the accept loop from another task.
    #[must_use]
    pub fn close_handle(&self) -> CloseHandle {
        self.handle.clone()
    }

    /// Connections whose tasks are running right now.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.handle.connections()
    }

    /// Stops accepting (as [`CloseHandle::close`]).
    pub fn close(&self) {
        self.handle.close();
    }

    /// Accepts until closed, running `handler(socket)` as one task per connection, at most
    /// `max_connections` at once (newcomers wait in the backlog). A handler that returns `Err`
    /// or panics ends its connection only and is recorded in the trace.
    ///
    /// # Errors
    /// The listener could not be created, or accepting failed for good (its host went down).
    pub async fn serve<H, Fut, T, E>(&mut self, mut handler: H) -> Result<(), SocketError>
    where
        H: FnMut(Socket) -> Fut,
        Fut: Future<Output = Result<T, E>> + 'static,
        T: 'static,
        E: Display + 'static,
    {
        self.listen(self.config.backlog)?;
        let Some(listener) = self.listener.socket_mut() else {
            return Ok(());
        };
        let handle = self.handle.clone();
        let pause = self.config.accept_error_pause;
        let mut gate = AcceptGate::new(&self.config);
        let served = accept_until_stopped(
            listener,
            &mut gate,
            || handle.connections(),
            // Full: look again after a pause of virtual time.
            || sleep(pause),
            || handle.closed(),
            |socket| {
                let peer = socket.address().clone();
                let slot = LiveSlot::new(&handle.live);
                let task = handler(socket);
                spawn(async move {
                    let _slot = slot;
                    let outcome = AssertUnwindSafe(task).catch_unwind().await;
                    let failure = match outcome {
                        Ok(Ok(_)) => None,
                        Ok(Err(error)) => Some(format!("failed: {error}")),
                        Err(_) => Some("panicked".to_owned()),
                    };
                    if let (Some(failure), Some(scope)) = (failure, current()) {
                        scope
                            .world
                            .borrow_mut()
                            .record(format_args!("handler for {peer} {failure}"));
                    }
                })
                .detach();
            },
        )
        .await;
        // Stop listening: later connects are refused, as on the socket backends.
        self.listener.release();
        served
    }

    /// Serves one `Session` from `factory` per connection, driven by the core's `Connection`
    /// as on every backend (the simulator's own engine runs it), until closed.
    ///
    /// # Errors
    /// Called outside a simulated task, or the address is in use.
    pub async fn serve_session<S, F>(&mut self, factory: F) -> Result<(), SocketError>
    where
        S: Session + 'static,
        F: Fn(&Address) -> S + 'static,
    {
        // The session engine listens itself: give the address back first.
        self.bind()?;
        self.listener.release();
        let Some(scope) = current() else {
            return Err(SocketError::io(
                "serve_session",
                self.listener.endpoint(),
                std::io::Error::other("a simulated server is used outside a simulated task"),
            ));
        };
        let index = scope.world.borrow_mut().serve_session(
            scope.host,
            self.listener.endpoint().clone(),
            self.config.connection_config(),
            self.config.max_connections,
            usize::try_from(self.config.backlog).unwrap_or(1),
            factory,
        );
        *self.handle.sessions.borrow_mut() = Some((
            Rc::downgrade(&scope.world),
            self.listener.endpoint().clone(),
        ));
        self.handle.closed().await;
        let mut world = scope.world.borrow_mut();
        world.close_listener(index);
        world.shut_down_sessions_after(index, self.config.shutdown_grace);
        drop(world);
        *self.handle.sessions.borrow_mut() = None;
        Ok(())
    }
}
