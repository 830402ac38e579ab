//! `ServerListener<T>`: the listening half of the seed's async `SocketServer` (smol's and the
//! simulator's), written once: the endpoint served, bound on `bind`, listening on `listen`,
//! the real port once bound.

use concurrence_core::{Address, SocketState};

use crate::{AsyncSocket, SocketError, Transport};

/// A server's endpoint and, once bound, its listening socket.
#[derive(Debug)]
pub struct ServerListener<T: Transport> {
    endpoint: Address,
    socket: Option<AsyncSocket<T>>,
}

impl<T: Transport> ServerListener<T> {
    /// For `endpoint`, not yet bound.
    #[must_use]
    pub fn new(endpoint: Address) -> Self {
        ServerListener {
            endpoint,
            socket: None,
        }
    }

    /// Creates the socket if needed and binds it (the seed's `bind`); port 0 becomes the
    /// port picked.
    ///
    /// # Errors
    /// The address is in use or not available.
    pub fn bind(&mut self) -> Result<(), SocketError> {
        if self.socket.is_none() {
            let mut socket = AsyncSocket::<T>::from_address(&self.endpoint)?;
            socket.bind()?;
            self.endpoint = socket.address().clone();
            self.socket = Some(socket);
        }
        Ok(())
    }

    /// Binds if needed, then listens with `backlog`; a socket already listening stays so.
    ///
    /// # Errors
    /// The address is in use or not available, or the backend refused to listen.
    pub fn listen(&mut self, backlog: i32) -> Result<(), SocketError> {
        self.bind()?;
        match self.socket.as_mut() {
            Some(socket) if socket.state() == SocketState::Init => socket.listen(backlog),
            _ => Ok(()),
        }
    }

    /// The address served (the real port once bound).
    #[must_use]
    pub fn endpoint(&self) -> &Address {
        &self.endpoint
    }

    /// Whether a socket is bound.
    #[must_use]
    pub fn is_bound(&self) -> bool {
        self.socket.is_some()
    }

    /// The listening socket, for the accept loop.
    pub fn socket_mut(&mut self) -> Option<&mut AsyncSocket<T>> {
        self.socket.as_mut()
    }

    /// Closes the socket (a later `bind` or `listen` makes a new one); a Unix socket's file is
    /// removed by the backend.
    pub fn release(&mut self) {
        self.socket = None;
    }
}
