//! The blocking handler server behind `SocketServer::serve`: one accept thread watching the
//! listener with a `Poller`, and one thread per connection running the user's handler over a
//! blocking `Socket`, at most `max_connections` at once (newcomers wait in the backlog).

use std::fmt::Display;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use concurrence_core::{Address, SocketState};
use concurrence_os::sockaddr::{address_of, set_nodelay};
use concurrence_os::{LoopShared, ServerHandle, accept_failure, clock};
use concurrence_socket::{AcceptGate, AcceptStep, ServerConfig, SocketError, panic_message};
use polling::{Event, Events, Poller};

use crate::registration::Registered;
use crate::socket::Socket;

/// The listener's key in the accept thread's poller.
const LISTENER: usize = 0;

/// Starts the accept thread for `listener` and returns the running server's handle.
pub(crate) fn start<H, E>(
    listener: socket2::Socket,
    address: Address,
    config: ServerConfig,
    handler: Arc<H>,
) -> Result<ServerHandle, SocketError>
where
    H: Fn(Socket) -> Result<(), E> + Send + Sync + 'static,
    E: Display,
{
    listener
        .set_nonblocking(true)
        .map_err(|e| SocketError::io("serve", &address, e))?;
    let shared = Arc::new(LoopShared::default());
    let poller =
        Arc::new(Poller::new().map_err(|e| SocketError::io("create poller", &address, e))?);
    let notified = Arc::clone(&poller);
    shared.add_waker(Box::new(move || {
        let _ = notified.notify();
    }));
    let acceptor = Acceptor {
        listener: Some(listener),
        address: address.clone(),
        config,
        handler,
        shared: Arc::clone(&shared),
        poller,
    };
    let thread = std::thread::Builder::new()
        .name("concurrence-accept".into())
        .spawn(move || acceptor.run())
        .map_err(|e| SocketError::io("spawn accept thread", &address, e))?;
    Ok(ServerHandle::new(address, shared, vec![thread]))
}

struct Acceptor<H> {
    /// Until `run` registers it with the poller.
    listener: Option<socket2::Socket>,
    address: Address,
    config: ServerConfig,
    handler: Arc<H>,
    shared: Arc<LoopShared>,
    poller: Arc<Poller>,
}

impl<H, E> Acceptor<H>
where
    H: Fn(Socket) -> Result<(), E> + Send + Sync + 'static,
    E: Display,
{
    fn run(mut self) -> Result<(), SocketError> {
        let Some(listener) = self.listener.take() else {
            return Ok(());
        };
        let fail = |op, e| SocketError::io(op, &self.address, e);
        // Deleted from the poller, then closed, when `run` returns.
        let listener = Registered::new(&self.poller, listener, Event::none(LISTENER))
            .map_err(|(_, e)| fail("register listener", e))?;
        let mut armed = false;
        let mut gate = AcceptGate::new(&self.config).with_max_connections(self.cap());
        let mut events = Events::new();
        while !self.shared.stop.load(Ordering::SeqCst) {
            let now = clock::now();
            // Watch the listener only below the cap and outside an error pause.
            let live = self.shared.live.load(Ordering::SeqCst);
            let want = gate.may_accept(now, live);
            if want != armed {
                let interest = if want {
                    Event::readable(LISTENER)
                } else {
                    Event::none(LISTENER)
                };
                listener
                    .modify(interest)
                    .map_err(|e| fail("watch listener", e))?;
                armed = want;
            }
            events.clear();
            let timeout = gate.resting(now).map(|t| t.saturating_duration_since(now));
            match self.poller.wait(&mut events, timeout) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(fail("wait", e)),
            }
            if !armed || events.is_empty() {
                continue;
            }
            for _ in 0..self.config.accept_budget.max(1) {
                if !self.shared.reserve(self.cap()) {
                    break;
                }
                match listener.accept() {
                    Ok((socket, peer)) => {
                        gate.accepted();
                        let peer = address_of(&peer, &self.address);
                        self.spawn_handler(socket, peer);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.shared.release(self.cap());
                        break;
                    }
                    Err(e) => {
                        self.shared.release(self.cap());
                        match gate.failed(accept_failure(&e), &e, clock::now()) {
                            AcceptStep::Retry => {}
                            AcceptStep::Rest { .. } | AcceptStep::Stop => break,
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Handler threads at once: `max_connections`, bounded by `max_handler_threads`.
    fn cap(&self) -> usize {
        self.config
            .max_connections
            .min(self.config.max_handler_threads)
            .max(1)
    }

    /// Runs `handler` for an accepted connection on a thread of its own; the connection's
    /// slot (reserved by the caller) is given back when the thread ends.
    fn spawn_handler(&self, socket: socket2::Socket, peer: Address) {
        if let Err(e) = socket.set_nonblocking(true) {
            self.shared.release(self.cap());
            tracing::warn!(%peer, error = %e, "could not set up an accepted connection");
            return;
        }
        // Not an accept failure: the connection works without it.
        if let Err(e) = set_nodelay(&socket, &peer) {
            tracing::debug!(error = %e, "TCP_NODELAY not set on an accepted connection");
        }
        let socket = Socket::wrap(socket, peer.clone(), SocketState::Connected);
        let (handler, shared) = (Arc::clone(&self.handler), Arc::clone(&self.shared));
        let max = self.cap();
        let spawned = std::thread::Builder::new()
            .name("concurrence-handler".into())
            .spawn(move || {
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(socket)));
                match outcome {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        tracing::warn!(%peer, %error, "connection handler failed");
                    }
                    Err(panic) => {
                        tracing::error!(%peer, panic = %panic_message(&*panic), "connection handler panicked");
                    }
                }
                shared.release(max);
            });
        if let Err(e) = spawned {
            // The closure (and the socket in it) was dropped: the connection is closed.
            self.shared.release(max);
            tracing::warn!(error = %e, "could not start a handler thread; connection closed");
        }
    }
}
