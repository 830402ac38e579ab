//! The one module of this crate allowed `unsafe` (docs/architecture.md lists it): registering
//! a socket with a `polling` 3 `Poller`. `Poller::add` is `unsafe` because the source must be
//! deleted from the poller before it is dropped (a poller that outlives a closed descriptor
//! would report, or on some systems keep watching, a number the process may reuse).
//!
//! [`Registered`] makes that invariant structural: it owns the socket and the poller, is the
//! only way this crate registers a descriptor, and deletes the descriptor from the poller
//! before the socket can close (in `Drop`, or in [`Registered::into_inner`]).
#![allow(unsafe_code)]

use std::io;
use std::ops::Deref;
use std::os::fd::AsFd;
use std::sync::Arc;

use polling::{Event, PollMode, Poller};

/// A socket registered with a poller (level-triggered), deleted from it before it closes.
#[derive(Debug)]
pub(crate) struct Registered<S: AsFd> {
    /// `None` only after `into_inner` took it (then `Drop` has nothing to do).
    socket: Option<S>,
    poller: Arc<Poller>,
}

impl<S: AsFd> Registered<S> {
    /// Registers `socket` with `poller` under `interest`, level-triggered.
    ///
    /// # Errors
    /// The poller refused (the socket is handed back with the error, unregistered).
    pub(crate) fn new(
        poller: &Arc<Poller>,
        socket: S,
        interest: Event,
    ) -> Result<Self, (S, io::Error)> {
        // SAFETY: `polling` requires the source to be deleted from the poller before it is
        // dropped. The socket moves into the returned `Registered`, which owns it from now on
        // and deletes it from this same poller in `Drop` and in `into_inner`, before the
        // socket can be dropped; nothing else can take the socket out. On error nothing was
        // registered. Exercised by every event-loop server check on polling
        // (`conformance/tests/event_loop_servers.rs`: connections opened and closed by the
        // thousand on one poller, `two_loops_serve_a_thousand_concurrent_clients`,
        // and `shutdown_lets_live_connections_finish_then_closes_them` for the listener).
        let added = unsafe { poller.add_with_mode(&socket.as_fd(), interest, PollMode::Level) };
        match added {
            Ok(()) => Ok(Registered {
                socket: Some(socket),
                poller: Arc::clone(poller),
            }),
            Err(e) => Err((socket, e)),
        }
    }

    /// Changes what the poller watches for.
    ///
    /// # Errors
    /// The poller refused.
    pub(crate) fn modify(&self, interest: Event) -> io::Result<()> {
        match &self.socket {
            Some(socket) => self
                .poller
                .modify_with_mode(socket, interest, PollMode::Level),
            None => Ok(()),
        }
    }

    /// Deletes the socket from the poller and gives it back (to close it as the caller wants).
    pub(crate) fn into_inner(mut self) -> S {
        let socket = self.socket.take();
        if let Some(socket) = &socket {
            let _ = self.poller.delete(socket);
        }
        // `Drop` runs next with nothing to delete.
        socket.expect("only into_inner takes the socket, and it consumes the Registered")
    }
}

impl<S: AsFd> Deref for Registered<S> {
    type Target = S;
    fn deref(&self) -> &S {
        self.socket
            .as_ref()
            .expect("the socket is taken only by into_inner, which consumes the Registered")
    }
}

impl<S: AsFd> Drop for Registered<S> {
    fn drop(&mut self) {
        if let Some(socket) = &self.socket {
            let _ = self.poller.delete(socket);
        }
    }
}
