//! `LoopListeners`: the listening sockets of a server with one event loop per thread: one
//! `SO_REUSEPORT` listener per loop for TCP (the kernel spreads connections), one listener
//! shared by every loop for Unix. Bind, listen, and hand each loop its listener.

use concurrence_core::Address;
use concurrence_socket::SocketError;

use crate::sockaddr::{address_of, bind};

/// A server's listening sockets, bound and listening on demand.
#[derive(Debug)]
pub struct LoopListeners {
    endpoint: Address,
    loops: usize,
    listeners: Vec<socket2::Socket>,
    listening: bool,
}

impl LoopListeners {
    /// Listeners for `endpoint`, for `loops` event loops (at least one).
    #[must_use]
    pub fn new(endpoint: Address, loops: usize) -> Self {
        LoopListeners {
            endpoint,
            loops: loops.max(1),
            listeners: Vec::new(),
            listening: false,
        }
    }

    /// The address bound (the real port once bound, for port 0).
    #[must_use]
    pub fn endpoint(&self) -> &Address {
        &self.endpoint
    }

    /// Creates and binds the sockets if needed (`SO_REUSEADDR` always; `SO_REUSEPORT` with
    /// more than one TCP loop; a stale Unix socket file removed first).
    ///
    /// # Errors
    /// The address is in use or not available.
    pub fn bind(&mut self) -> Result<(), SocketError> {
        if !self.listeners.is_empty() {
            return Ok(());
        }
        let mut address = self.endpoint.clone();
        let tcp = matches!(address, Address::Tcp(_));
        let sockets = if tcp { self.loops } else { 1 };
        for _ in 0..sockets {
            let socket = bind(&address, tcp && self.loops > 1)?;
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

    /// Binds if needed, then listens with `backlog`.
    ///
    /// # Errors
    /// As [`bind`](Self::bind), or the OS refused to listen.
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

    /// Takes the one listener (for a single accept thread); a later bind starts anew.
    ///
    /// # Errors
    /// Nothing was bound.
    pub fn take_one(&mut self) -> Result<socket2::Socket, SocketError> {
        self.take_per_loop(1)?
            .pop()
            .ok_or_else(|| self.nothing_bound())
    }

    /// Takes a listener for each of `loops` loops (copies of the one Unix listener); a later
    /// bind starts anew.
    ///
    /// # Errors
    /// Nothing was bound, or a listener could not be duplicated.
    pub fn take_per_loop(&mut self, loops: usize) -> Result<Vec<socket2::Socket>, SocketError> {
        let mut listeners = std::mem::take(&mut self.listeners);
        self.listening = false;
        if listeners.is_empty() {
            return Err(self.nothing_bound());
        }
        listeners.truncate(loops.max(1));
        while listeners.len() < loops {
            let copy = listeners[0]
                .try_clone()
                .map_err(|e| SocketError::io("clone listener", &self.endpoint, e))?;
            listeners.push(copy);
        }
        Ok(listeners)
    }

    /// Closes the listeners not handed out yet.
    pub fn clear(&mut self) {
        self.listeners.clear();
        self.listening = false;
    }

    fn nothing_bound(&self) -> SocketError {
        SocketError::io(
            "serve",
            &self.endpoint,
            std::io::Error::other("no listener was created"),
        )
    }
}
