//! The seed's `Socket`, blocking: connect, bind, listen, accept, read and write a `Buffer`,
//! each with a timeout, over TCP or Unix sockets. State and deadlines come from the core's
//! `SocketStateMachine`; this file only makes the system calls.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use concurrence_core::{Address, Buffer, SocketEvent, SocketState};

use concurrence_os::sockaddr::{address_of, new_socket, set_nodelay, sock_addr};
use concurrence_os::{clock, fd_passing, send};
use concurrence_socket::{SocketError, SocketLedger};

use crate::wait::{Readiness, wait_ready};

/// A TCP or Unix stream socket with the seed's blocking API.
///
/// The descriptor is non-blocking underneath; every blocking call waits with `poll(2)` until
/// its own deadline (`None` waits forever, the seed's `-1`). A read, write or accept that
/// times out returns [`SocketError::TimedOut`] and leaves the socket usable. `TCP_NODELAY` is
/// on for TCP connections, as in the seed.
///
/// `Socket` also implements `std::io::Read + Write` (with the timeouts set by
/// [`set_timeouts`](Socket::set_timeouts)), so the core's `BufferedStream` runs over it:
///
/// ```no_run
/// use std::time::Duration;
/// use concurrence_core::BufferedStream;
/// use concurrence_polling::Socket;
///
/// let socket = Socket::connect(&"127.0.0.1:11211".parse()?, Some(Duration::from_secs(1)))?;
/// let mut stream = BufferedStream::new(socket);
/// stream.write_bytes(b"version\r\n")?;
/// stream.flush()?;
/// println!("{:?}", stream.read_line()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Socket {
    inner: Option<socket2::Socket>,
    /// The address and state, and the seed's rules for both (shared with smol and the
    /// simulator).
    ledger: SocketLedger,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    bound: bool,
}

impl Socket {
    /// A new, unconnected socket for `address` (TCP for `ip:port`, Unix for a path), in
    /// state `Init`: ready for [`bind`](Socket::bind) and [`listen`](Socket::listen).
    ///
    /// # Errors
    /// The OS refused to create the socket.
    pub fn from_address(address: &Address) -> Result<Socket, SocketError> {
        Ok(Socket::wrap(
            new_socket(address, "create socket")?,
            address.clone(),
            SocketState::Init,
        ))
    }

    /// Creates a socket and connects it to `address`, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`SocketError::TimedOut`] when the connect did not finish in time (the socket is
    /// closed); [`SocketError::Io`] with `ConnectionRefused` when nobody listens.
    pub fn connect(address: &Address, timeout: Option<Duration>) -> Result<Socket, SocketError> {
        let mut socket = Socket::from_address(address)?;
        socket.connect_to(timeout)?;
        Ok(socket)
    }

    pub(crate) fn wrap(inner: socket2::Socket, address: Address, state: SocketState) -> Socket {
        Socket {
            inner: Some(inner),
            ledger: SocketLedger::new(address, state),
            read_timeout: None,
            write_timeout: None,
            bound: state != SocketState::Init,
        }
    }

    fn raw(&self, op: &'static str) -> Result<&socket2::Socket, SocketError> {
        self.inner.as_ref().ok_or(SocketLedger::closed(op))
    }

    fn connect_to(&mut self, timeout: Option<Duration>) -> Result<(), SocketError> {
        let deadline = self
            .ledger
            .begin(SocketEvent::ConnectStarted, clock::now(), timeout)?;
        let target = sock_addr(self.ledger.address())
            .map_err(|e| SocketError::io("connect", self.ledger.address(), e))?;
        let raw = self.raw("connect")?;
        let unix = matches!(self.ledger.address(), Address::Unix(_));
        let mut retry = concurrence_os::RetryPause::new();
        let outcome = loop {
            match raw.connect(&target) {
                Ok(()) => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A Unix connect with a full backlog is not "in progress": retry until the
                // deadline, backing off between attempts.
                Err(e) if unix && e.kind() == io::ErrorKind::WouldBlock => {
                    if !retry.pause(deadline) {
                        break Err(None);
                    }
                }
                Err(e)
                    if e.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error()) =>
                {
                    match wait_ready(raw, Readiness::Writable, deadline) {
                        Ok(false) => break Err(None),
                        Ok(true) => match raw.take_error() {
                            Ok(None) => break Ok(()),
                            Ok(Some(e)) | Err(e) => break Err(Some(e)),
                        },
                        Err(e) => break Err(Some(e)),
                    }
                }
                Err(e) => break Err(Some(e)),
            }
        };
        match outcome {
            Ok(()) => {
                set_nodelay(raw, self.ledger.address())?;
                self.ledger.apply(SocketEvent::ConnectCompleted)
            }
            Err(error) => {
                self.inner = None;
                if error.is_some() {
                    self.ledger.apply(SocketEvent::ConnectFailed)?;
                }
                self.ledger.finish("connect", timeout, error.map(Err))
            }
        }
    }

    /// Sets `SO_REUSEADDR` (servers set it by default).
    ///
    /// # Errors
    /// The OS refused, or the socket is closed.
    pub fn set_reuse_address(&mut self, reuse: bool) -> Result<(), SocketError> {
        self.raw("set_reuse_address")?
            .set_reuse_address(reuse)
            .map_err(|e| SocketError::io("set_reuse_address", self.ledger.address(), e))
    }

    /// Binds to the socket's address.
    ///
    /// # Errors
    /// The address is in use or not available, or the socket is closed.
    pub fn bind(&mut self) -> Result<(), SocketError> {
        if let Address::Unix(path) = self.ledger.address() {
            concurrence_os::unix_path::clear_stale_socket(path)
                .map_err(|e| SocketError::io("bind", self.ledger.address(), e))?;
        }
        let target = sock_addr(self.ledger.address())
            .map_err(|e| SocketError::io("bind", self.ledger.address(), e))?;
        self.raw("bind")?
            .bind(&target)
            .map_err(|e| SocketError::io("bind", self.ledger.address(), e))?;
        self.bound = true;
        // Port 0 picks a port: remember which.
        if let Ok(local) = self.local_address() {
            self.ledger.set_address(local);
        }
        Ok(())
    }

    /// Starts listening with `backlog` pending connections (the seed's default is
    /// `DEFAULT_BACKLOG`). Binds first if [`bind`](Socket::bind) was not called.
    ///
    /// # Errors
    /// Wrong state (not `Init`), or the OS refused.
    pub fn listen(&mut self, backlog: i32) -> Result<(), SocketError> {
        self.ledger.check(SocketEvent::Listen)?;
        if !self.bound {
            self.bind()?;
        }
        self.raw("listen")?
            .listen(backlog)
            .map_err(|e| SocketError::io("listen", self.ledger.address(), e))?;
        self.ledger.begin(SocketEvent::Listen, clock::now(), None)?;
        Ok(())
    }

    /// Waits at most `timeout` (`None`: forever, the seed's `-1`) for a connection and
    /// returns it, connected.
    ///
    /// # Errors
    /// [`SocketError::TimedOut`] (the listener stays usable), wrong state, or the OS refused.
    pub fn accept(&mut self, timeout: Option<Duration>) -> Result<Socket, SocketError> {
        let deadline = self
            .ledger
            .begin(SocketEvent::Accept, clock::now(), timeout)?;
        let raw = self.raw("accept")?;
        loop {
            match raw.accept() {
                Ok((socket, peer)) => {
                    let peer = address_of(&peer, self.ledger.address());
                    socket
                        .set_nonblocking(true)
                        .map_err(|e| SocketError::io("accept", &peer, e))?;
                    set_nodelay(&socket, &peer)?;
                    return Ok(Socket::wrap(socket, peer, SocketState::Connected));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !wait_ready(raw, Readiness::Readable, deadline)
                        .map_err(|e| SocketError::io("accept", self.ledger.address(), e))?
                    {
                        return self.ledger.finish("accept", timeout, None);
                    }
                }
                Err(e) => return self.ledger.finish("accept", timeout, Some(Err(e))),
            }
        }
    }

    /// Waits until readable, then reads as many bytes as fit between the buffer's position
    /// and limit; the position moves by the count returned. `0` means end of stream: the
    /// socket moves to `Closing` (writes still allowed, further reads are a state error).
    ///
    /// # Errors
    /// [`SocketError::TimedOut`] (the socket stays usable), a full buffer
    /// ([`SocketError::Buffer`]), wrong state, or the OS refused (e.g. `ConnectionReset`).
    pub fn read(
        &mut self,
        buffer: &mut Buffer,
        timeout: Option<Duration>,
    ) -> Result<usize, SocketError> {
        SocketLedger::check_room(buffer)?;
        let n = self.read_with(timeout, |mut raw| buffer.fill_with(|room| raw.read(room)))?;
        self.ledger.after_read(n)
    }

    /// Waits until writable, then writes as many bytes as the socket takes from the buffer's
    /// position up to its limit; the position moves by the count returned.
    ///
    /// # Errors
    /// [`SocketError::TimedOut`] (the socket stays usable), wrong state, or the OS refused
    /// (e.g. `BrokenPipe` once the peer is gone).
    pub fn write(
        &mut self,
        buffer: &mut Buffer,
        timeout: Option<Duration>,
    ) -> Result<usize, SocketError> {
        self.write_with(timeout, |raw| buffer.drain_with(|bytes| send(raw, bytes)))
    }

    /// Passes `other`'s descriptor over this Unix socket (`SCM_RIGHTS`). `other` stays open
    /// here too; close it once the receiver has it.
    ///
    /// # Errors
    /// Not a connected Unix socket, a timeout, or the OS refused.
    pub fn write_socket(
        &mut self,
        other: &Socket,
        timeout: Option<Duration>,
    ) -> Result<(), SocketError> {
        self.ledger.require_unix_channel("write_socket")?;
        let fd = other.raw("write_socket")?.as_fd();
        self.write_with(timeout, |raw| fd_passing::send_fd(raw, fd))
            .map(drop)
    }

    /// Receives a descriptor sent with [`write_socket`](Socket::write_socket) and returns it
    /// as a `Socket` (connected, or listening if it was a listener).
    ///
    /// # Errors
    /// A timeout, end of stream or a message without a descriptor, or the OS refused.
    pub fn read_socket(&mut self, timeout: Option<Duration>) -> Result<Socket, SocketError> {
        self.ledger.require_unix_channel("read_socket")?;
        let fallback = self.ledger.address().clone();
        let received = self.read_with(timeout, |raw| fd_passing::recv_fd(raw))?;
        let Some(fd) = received else {
            return Err(self.ledger.no_descriptor());
        };
        Socket::from_received(fd, &fallback)
    }

    fn from_received(fd: OwnedFd, fallback: &Address) -> Result<Socket, SocketError> {
        let listening = matches!(
            fd_passing::fd_kind(&fd).map_err(|e| SocketError::io("read_socket", fallback, e))?,
            fd_passing::FdKind::Listener { .. }
        );
        let socket = socket2::Socket::from(fd);
        socket
            .set_nonblocking(true)
            .map_err(|e| SocketError::io("read_socket", fallback, e))?;
        let address = if listening {
            socket.local_addr().map(|a| address_of(&a, fallback))
        } else {
            socket.peer_addr().map(|a| address_of(&a, fallback))
        }
        .unwrap_or_else(|_| fallback.clone());
        let state = if listening {
            SocketState::Listening
        } else {
            SocketState::Connected
        };
        Ok(Socket::wrap(socket, address, state))
    }

    /// Shuts down the write side of a connected socket (half-close: the peer reads end of
    /// stream after the bytes already written); reading goes on until the peer closes too.
    ///
    /// # Errors
    /// The socket is not connected (wrong state), or the OS refused.
    pub fn shutdown_write(&self) -> Result<(), SocketError> {
        self.ledger.require_connected("shutdown_write")?;
        match self
            .raw("shutdown_write")?
            .shutdown(std::net::Shutdown::Write)
        {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => {
                Err(SocketError::io("shutdown_write", self.ledger.address(), e))
            }
            _ => Ok(()),
        }
    }

    /// Closes the socket with a reset (`SO_LINGER` 0): output not yet sent is dropped and
    /// the peer reads `ConnectionReset`. A listener or a closed socket just closes.
    ///
    /// # Errors
    /// Never in practice; kept for the seed's signature.
    pub fn abort(&mut self) -> Result<(), SocketError> {
        if let Some(socket) = &self.inner {
            let _ = socket.set_linger(Some(Duration::ZERO));
        }
        self.close()
    }

    /// Closes the socket (idempotent). Pending kernel output is still delivered.
    ///
    /// # Errors
    /// Never in practice; kept for the seed's signature.
    pub fn close(&mut self) -> Result<(), SocketError> {
        self.ledger.close()?;
        self.inner = None;
        Ok(())
    }

    /// The socket's state.
    #[must_use]
    pub fn state(&self) -> SocketState {
        self.ledger.state()
    }

    /// The address: the peer for a connection, the bound address for a listener.
    #[must_use]
    pub fn address(&self) -> &Address {
        self.ledger.address()
    }

    /// The local address, as the OS reports it.
    ///
    /// # Errors
    /// The socket is closed or the OS refused.
    pub fn local_address(&self) -> Result<Address, SocketError> {
        let local = self
            .raw("local_address")?
            .local_addr()
            .map_err(|e| SocketError::io("local_address", self.ledger.address(), e))?;
        Ok(address_of(&local, self.ledger.address()))
    }

    /// Timeouts used by the `std::io::Read` / `Write` implementations (default: none).
    pub fn set_timeouts(&mut self, read: Option<Duration>, write: Option<Duration>) {
        self.read_timeout = read;
        self.write_timeout = write;
    }

    /// Runs `attempt` until it does not would-block, waiting for readability in between.
    fn read_with<T>(
        &mut self,
        timeout: Option<Duration>,
        attempt: impl FnMut(&socket2::Socket) -> io::Result<T>,
    ) -> Result<T, SocketError> {
        self.blocking(
            "read",
            SocketEvent::Read,
            Readiness::Readable,
            timeout,
            attempt,
        )
    }

    /// Runs `attempt` until it does not would-block, waiting for writability in between.
    fn write_with<T>(
        &mut self,
        timeout: Option<Duration>,
        attempt: impl FnMut(&socket2::Socket) -> io::Result<T>,
    ) -> Result<T, SocketError> {
        self.blocking(
            "write",
            SocketEvent::Write,
            Readiness::Writable,
            timeout,
            attempt,
        )
    }

    /// Begins `event`, then runs `attempt` until it does not would-block, waiting for
    /// `readiness` until the deadline in between; the ledger turns the outcome into the seed's
    /// errors and state.
    fn blocking<T>(
        &mut self,
        op: &'static str,
        event: SocketEvent,
        readiness: Readiness,
        timeout: Option<Duration>,
        mut attempt: impl FnMut(&socket2::Socket) -> io::Result<T>,
    ) -> Result<T, SocketError> {
        let deadline = self.ledger.begin(event, clock::now(), timeout)?;
        let raw = self.raw(op)?;
        let outcome = loop {
            match attempt(raw) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    match wait_ready(raw, readiness, deadline) {
                        Ok(true) => {}
                        Ok(false) => break None,
                        Err(e) => break Some(Err(e)),
                    }
                }
                done => break Some(done),
            }
        };
        self.ledger.finish(op, timeout, outcome)
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let timeout = self.read_timeout;
        let n = self.read_with(timeout, |mut raw| raw.read(buf))?;
        self.ledger.after_stream_read(n, buf.len());
        Ok(n)
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let timeout = self.write_timeout;
        Ok(self.write_with(timeout, |raw| send(raw, buf))?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for Socket {
    /// The raw descriptor, or -1 once closed.
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }
}
