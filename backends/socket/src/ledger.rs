//! `SocketLedger`: what a seed socket keeps beside its descriptor (its address and state
//! machine) and the rules, written once for every backend, that turn an operation's outcome
//! into the seed's state changes and errors: the timeout on every blocking step, end of
//! stream, a closed or wrong-kind socket.

use std::io;
use std::time::Duration;

use concurrence_core::{
    Address, Buffer, BufferError, SocketEvent, SocketState, SocketStateError, SocketStateMachine,
    Timestamp,
};

use crate::SocketError;

/// A seed socket's address and state, and how its operations begin and end.
#[derive(Debug, Clone)]
pub struct SocketLedger {
    address: Address,
    state: SocketStateMachine,
}

impl SocketLedger {
    /// A ledger for a socket at `address` in `state`.
    #[must_use]
    pub fn new(address: Address, state: SocketState) -> Self {
        SocketLedger {
            address,
            state: SocketStateMachine::in_state(state),
        }
    }

    /// The address: the peer for a connection, the bound address for a listener.
    #[must_use]
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The address changed (a port picked at bind time).
    pub fn set_address(&mut self, address: Address) {
        self.address = address;
    }

    /// The socket's state.
    #[must_use]
    pub fn state(&self) -> SocketState {
        self.state.state()
    }

    /// Starts an operation at `now`: checks the state allows it and returns its deadline.
    ///
    /// # Errors
    /// The state does not allow `event` (e.g. a read after end of stream).
    pub fn begin(
        &mut self,
        event: SocketEvent,
        now: Timestamp,
        timeout: Option<Duration>,
    ) -> Result<Option<Timestamp>, SocketError> {
        Ok(self.state.begin(event, now, timeout)?)
    }

    /// Checks that a state allows `event` without changing anything (`listen` before it binds).
    ///
    /// # Errors
    /// The state does not allow `event`.
    pub fn check(&self, event: SocketEvent) -> Result<(), SocketError> {
        concurrence_core::transition(self.state.state(), event)?;
        Ok(())
    }

    /// Applies an event that needs no deadline (connect completed or failed).
    ///
    /// # Errors
    /// The state does not allow `event`.
    pub fn apply(&mut self, event: SocketEvent) -> Result<(), SocketError> {
        self.state.apply(event)?;
        Ok(())
    }

    /// A read into `buffer` needs room: a full buffer is an error, not end of stream.
    ///
    /// # Errors
    /// [`SocketError::Buffer`] when `buffer` has no room between position and limit.
    pub fn check_room(buffer: &Buffer) -> Result<(), SocketError> {
        if buffer.remaining() == 0 {
            return Err(BufferError::Overflow {
                op: "Socket::read",
                needed: 1,
                remaining: 0,
            }
            .into());
        }
        Ok(())
    }

    /// Ends a timed operation: `None` (the timeout passed first) is a
    /// [`SocketError::TimedOut`] and a `Timeout` event (the socket stays usable); an OS error
    /// names `op` and the address.
    ///
    /// # Errors
    /// As said: a timeout or the OS error.
    pub fn finish<T>(
        &mut self,
        op: &'static str,
        timeout: Option<Duration>,
        outcome: Option<io::Result<T>>,
    ) -> Result<T, SocketError> {
        match outcome {
            None => {
                self.state.apply(SocketEvent::Timeout)?;
                Err(self.timed_out(op, timeout))
            }
            Some(Err(e)) => Err(SocketError::io(op, &self.address, e)),
            Some(Ok(value)) => Ok(value),
        }
    }

    /// After a `read` returned `n`: `0` is end of stream, and the socket moves to `Closing`.
    ///
    /// # Errors
    /// The state does not allow end of stream (never after a read began).
    pub fn after_read(&mut self, n: usize) -> Result<usize, SocketError> {
        if n == 0 {
            self.state.apply(SocketEvent::PeerClosed)?;
        }
        Ok(n)
    }

    /// After a stream-trait read (`Read` / `AsyncRead`) of `n` bytes into `asked` bytes of
    /// room: end of stream moves a connected socket to `Closing`, as `read` does.
    pub fn after_stream_read(&mut self, n: usize, asked: usize) {
        if n == 0 && asked > 0 && self.state.state() == SocketState::Connected {
            let _ = self.state.apply(SocketEvent::PeerClosed);
        }
    }

    /// `shutdown_write` needs a connected socket.
    ///
    /// # Errors
    /// [`SocketError::State`] in any other state.
    pub fn require_connected(&self, op: &'static str) -> Result<(), SocketError> {
        if self.state.state() == SocketState::Connected {
            Ok(())
        } else {
            Err(self.invalid(op))
        }
    }

    /// Descriptors pass over connected Unix sockets only.
    ///
    /// # Errors
    /// [`SocketError::WrongKind`] otherwise.
    pub fn require_unix_channel(&self, op: &'static str) -> Result<(), SocketError> {
        if matches!(self.address, Address::Unix(_)) && self.state.state() == SocketState::Connected
        {
            Ok(())
        } else {
            Err(SocketError::WrongKind {
                op,
                needs: "connected Unix",
                address: self.address.to_string(),
            })
        }
    }

    /// Closes (idempotent): `Closing` completes, anything else goes to `Closed`.
    ///
    /// # Errors
    /// Never in practice (every state may close).
    pub fn close(&mut self) -> Result<(), SocketError> {
        self.state.apply(SocketEvent::Close)?;
        if self.state.state() == SocketState::Closing {
            self.state.apply(SocketEvent::CloseCompleted)?;
        }
        Ok(())
    }

    /// `op` cannot run in the present state.
    #[must_use]
    pub fn invalid(&self, op: &'static str) -> SocketError {
        SocketError::State(SocketStateError::InvalidState {
            op,
            state: self.state.state(),
        })
    }

    /// `op` needs an open socket, and this one is closed.
    #[must_use]
    pub fn closed(op: &'static str) -> SocketError {
        SocketError::State(SocketStateError::InvalidState {
            op,
            state: SocketState::Closed,
        })
    }

    /// `op` passed no socket that is open (`write_socket` of a closed or unbound one).
    #[must_use]
    pub fn not_passable(&self, op: &'static str) -> SocketError {
        SocketError::WrongKind {
            op,
            needs: "open",
            address: self.address.to_string(),
        }
    }

    /// `op` timed out after `timeout`.
    #[must_use]
    pub fn timed_out(&self, op: &'static str, timeout: Option<Duration>) -> SocketError {
        SocketError::TimedOut {
            op,
            address: self.address.to_string(),
            timeout: timeout.unwrap_or_default(),
        }
    }

    /// `read_socket` got a message without a descriptor.
    #[must_use]
    pub fn no_descriptor(&self) -> SocketError {
        SocketError::NoDescriptor {
            address: self.address.to_string(),
        }
    }
}

/// The error a stream operation on a socket that is not a connected stream gets.
#[must_use]
pub fn not_connected() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "socket is not a connected stream",
    )
}
