//! The seed's `Socket` as `async fn`s on `async-io`: connect, accept, read and write a
//! `Buffer`, pass descriptors, each with a timeout from `async_io::Timer`. State and deadlines
//! come from the core's `SocketStateMachine`.

use std::future::Future;
use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::{Async, Timer};
use concurrence_core::{
    Address, Buffer, SocketEvent, SocketState, SocketStateError, SocketStateMachine,
};
use futures_io::{AsyncRead, AsyncWrite};

use concurrence_os::{clock, fd_passing};
use concurrence_socket::{CoopBudget, SocketError, bytes_moved};

/// The OS socket behind a `Socket`.
#[derive(Debug)]
enum Inner {
    /// Created by `from_address`, maybe bound, not yet listening.
    Init {
        socket: socket2::Socket,
        bound: bool,
    },
    Tcp(Async<TcpStream>),
    Unix(Async<UnixStream>),
    TcpListener(Async<TcpListener>),
    UnixListener(Async<UnixListener>),
    Closed,
}

/// A TCP or Unix socket with the seed's API as `async fn`s, usable under any executor
/// (async-io runs its own reactor thread when no smol runtime drives it).
///
/// Every call takes a timeout (`None` waits forever, the seed's `-1`); a read, write or accept
/// that times out returns [`SocketError::TimedOut`] and leaves the socket usable.
/// `TCP_NODELAY` is on for TCP connections. `Socket` implements `futures_io::AsyncRead +
/// AsyncWrite`, so the core's `AsyncBufferedStream` runs over it.
#[derive(Debug)]
pub struct Socket {
    inner: Inner,
    address: Address,
    state: SocketStateMachine,
    timeouts: IoTimeouts,
    /// After `COOP_BUDGET` of work that completed at once, the task yields once.
    coop: CoopBudget,
}

/// The timeouts of the `AsyncRead` / `AsyncWrite` implementations, and the timers of the
/// read and write in progress.
#[derive(Debug, Default)]
struct IoTimeouts {
    read: Option<Duration>,
    write: Option<Duration>,
    read_timer: Option<Timer>,
    write_timer: Option<Timer>,
}

/// Runs `work` with a timeout; `None` when the timeout passed first.
pub(crate) async fn within<T>(
    timeout: Option<Duration>,
    work: impl Future<Output = T>,
) -> Option<T> {
    match timeout {
        None => Some(work.await),
        Some(limit) => {
            futures_lite::future::or(async { Some(work.await) }, async {
                Timer::after(limit).await;
                None
            })
            .await
        }
    }
}

/// Connects a stream to `address`, with no timeout of its own.
async fn open_stream(address: &Address) -> io::Result<Inner> {
    match address {
        Address::Tcp(addr) => {
            let stream = Async::<TcpStream>::connect(*addr).await?;
            stream.get_ref().set_nodelay(true)?;
            Ok(Inner::Tcp(stream))
        }
        Address::Unix(path) => Ok(Inner::Unix(Async::<UnixStream>::connect(path).await?)),
    }
}

impl Socket {
    /// Connects to `address` with no timeout of its own (the caller races it against one),
    /// reporting the OS error as it is.
    pub(crate) async fn connect_stream(address: &Address) -> io::Result<Socket> {
        let inner = open_stream(address).await?;
        Ok(Socket {
            inner,
            address: address.clone(),
            state: SocketStateMachine::in_state(SocketState::Connected),
            timeouts: IoTimeouts::default(),
            coop: CoopBudget::new(),
        })
    }

    /// Shuts down the write side (a TCP FIN); reading goes on.
    pub(crate) fn shutdown_write_raw(&self) -> io::Result<()> {
        match self.borrowed_fd() {
            Some(fd) => {
                rustix::net::shutdown(fd, rustix::net::Shutdown::Write).map_err(io::Error::from)
            }
            None => Err(not_connected()),
        }
    }

    /// Waits until the connected socket is readable (data, end of stream or an error), without
    /// reading: how the session driver waits while holding no receive buffer.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        match &self.inner {
            Inner::Tcp(stream) => stream.readable().await,
            Inner::Unix(stream) => stream.readable().await,
            _ => Err(not_connected()),
        }
    }

    /// One non-blocking read on the connected socket (`WouldBlock` when it has nothing): how
    /// the session driver reads straight into a connection's receive room.
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        use std::io::Read;
        match &self.inner {
            Inner::Tcp(stream) => stream.get_ref().read(buf),
            Inner::Unix(stream) => stream.get_ref().read(buf),
            _ => Err(not_connected()),
        }
    }

    /// One non-blocking send on the connected socket (`WouldBlock` when it takes nothing; no
    /// `SIGPIPE` on a reset peer).
    pub(crate) fn try_send(&self, bytes: &[u8]) -> io::Result<usize> {
        match &self.inner {
            Inner::Tcp(_) | Inner::Unix(_) => match self.borrowed_fd() {
                Some(fd) => concurrence_os::send(fd, bytes),
                None => Err(not_connected()),
            },
            _ => Err(not_connected()),
        }
    }

    /// Waits until the connected socket is writable, without writing.
    pub(crate) async fn writable(&self) -> io::Result<()> {
        match &self.inner {
            Inner::Tcp(stream) => stream.writable().await,
            Inner::Unix(stream) => stream.writable().await,
            _ => Err(not_connected()),
        }
    }

    /// Makes the coming close send a reset (`SO_LINGER` 0) instead of a FIN.
    pub(crate) fn reset_on_close(&self) {
        if let Some(fd) = self.borrowed_fd() {
            let _ = rustix::net::sockopt::set_socket_linger(fd, Some(Duration::ZERO));
        }
    }

    /// Connects to `address` (TCP for `ip:port`, Unix for a path), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`SocketError::TimedOut`] (the attempt is abandoned), or [`SocketError::Io`] with
    /// `ConnectionRefused` when nobody listens.
    pub async fn connect(
        address: &Address,
        timeout: Option<Duration>,
    ) -> Result<Socket, SocketError> {
        let mut state = SocketStateMachine::new();
        state.begin(SocketEvent::ConnectStarted, clock::now(), timeout)?;
        let attempt = open_stream(address);
        match within(timeout, attempt).await {
            None => {
                state.apply(SocketEvent::Timeout)?;
                Err(SocketError::TimedOut {
                    op: "connect",
                    address: address.to_string(),
                    timeout: timeout.unwrap_or_default(),
                })
            }
            Some(Err(source)) => {
                state.apply(SocketEvent::ConnectFailed)?;
                Err(SocketError::io("connect", address, source))
            }
            Some(Ok(inner)) => {
                state.apply(SocketEvent::ConnectCompleted)?;
                Ok(Socket {
                    inner,
                    address: address.clone(),
                    state,
                    timeouts: IoTimeouts::default(),
                    coop: CoopBudget::new(),
                })
            }
        }
    }

    /// A new, unconnected socket for `address` (TCP for `ip:port`, Unix for a path), in
    /// state `Init`: ready for [`bind`](Socket::bind) and [`listen`](Socket::listen).
    ///
    /// # Errors
    /// The OS refused to create the socket.
    pub fn from_address(address: &Address) -> Result<Socket, SocketError> {
        let socket = concurrence_os::sockaddr::new_socket(address, "create socket")?;
        Ok(Socket {
            inner: Inner::Init {
                socket,
                bound: false,
            },
            address: address.clone(),
            state: SocketStateMachine::new(),
            timeouts: IoTimeouts::default(),
            coop: CoopBudget::new(),
        })
    }

    /// Binds to the socket's address (`SO_REUSEADDR` on; a stale Unix socket file removed
    /// first, a live one an error). With port 0 the address becomes the port picked.
    ///
    /// # Errors
    /// The address is in use or not available, or the socket is not new.
    pub fn bind(&mut self) -> Result<(), SocketError> {
        let Inner::Init { socket, bound } = &mut self.inner else {
            return Err(SocketError::State(
                concurrence_core::SocketStateError::InvalidState {
                    op: "bind",
                    state: self.state.state(),
                },
            ));
        };
        if *bound {
            return Ok(());
        }
        let fail = |e| SocketError::io("bind", &self.address, e);
        socket.set_reuse_address(true).map_err(fail)?;
        if let Address::Unix(path) = &self.address {
            concurrence_os::unix_path::clear_stale_socket(path).map_err(fail)?;
        }
        let target = concurrence_os::sockaddr::sock_addr(&self.address).map_err(fail)?;
        socket.bind(&target).map_err(fail)?;
        *bound = true;
        if let Ok(local) = socket.local_addr() {
            self.address = concurrence_os::sockaddr::address_of(&local, &self.address);
        }
        Ok(())
    }

    /// Starts listening with `backlog` pending connections (the seed's default is 255).
    /// Binds first if [`bind`](Socket::bind) was not called.
    ///
    /// # Errors
    /// Wrong state (not `Init`), the address is in use, or the OS refused.
    pub fn listen(&mut self, backlog: i32) -> Result<(), SocketError> {
        concurrence_core::transition(self.state.state(), SocketEvent::Listen)?;
        self.bind()?;
        let Inner::Init { socket, .. } = std::mem::replace(&mut self.inner, Inner::Closed) else {
            return Err(SocketError::State(
                concurrence_core::SocketStateError::InvalidState {
                    op: "listen",
                    state: self.state.state(),
                },
            ));
        };
        let fail = |e| SocketError::io("listen", &self.address, e);
        socket.listen(backlog).map_err(fail)?;
        self.inner = match self.address {
            Address::Tcp(_) => Inner::TcpListener(
                Async::new(TcpListener::from(OwnedFd::from(socket))).map_err(fail)?,
            ),
            Address::Unix(_) => Inner::UnixListener(
                Async::new(UnixListener::from(OwnedFd::from(socket))).map_err(fail)?,
            ),
        };
        self.state.begin(SocketEvent::Listen, clock::now(), None)?;
        Ok(())
    }

    /// The address this socket is bound to (the real port once bound).
    ///
    /// # Errors
    /// The socket is closed, or the OS refused.
    pub fn local_address(&self) -> Result<Address, SocketError> {
        let fd = self.borrowed_fd().ok_or(SocketError::State(
            concurrence_core::SocketStateError::InvalidState {
                op: "local_address",
                state: SocketState::Closed,
            },
        ))?;
        let local = socket2::SockRef::from(&fd)
            .local_addr()
            .map_err(|e| SocketError::io("local_address", &self.address, e))?;
        Ok(concurrence_os::sockaddr::address_of(&local, &self.address))
    }

    /// Waits at most `timeout` for a connection and returns it, connected.
    ///
    /// # Errors
    /// [`SocketError::TimedOut`] (the listener stays usable), wrong state, or the OS refused.
    pub async fn accept(&mut self, timeout: Option<Duration>) -> Result<Socket, SocketError> {
        self.state
            .begin(SocketEvent::Accept, clock::now(), timeout)?;
        let listen_address = self.address.clone();
        let attempt = async {
            match &self.inner {
                Inner::TcpListener(listener) => {
                    let (stream, peer) = listener.accept().await?;
                    // Not an accept failure: the connection works without it.
                    if let Err(e) = stream.get_ref().set_nodelay(true) {
                        tracing::debug!(%peer, error = %e, "TCP_NODELAY not set on an accepted connection");
                    }
                    Ok((Inner::Tcp(stream), Address::Tcp(peer)))
                }
                Inner::UnixListener(listener) => {
                    let (stream, _) = listener.accept().await?;
                    Ok((Inner::Unix(stream), listen_address.clone()))
                }
                _ => Err(io::Error::other("not a listener")),
            }
        };
        let accepted = self.coop.budgeted(within(timeout, attempt), |_| 0).await;
        match accepted {
            None => {
                self.state.apply(SocketEvent::Timeout)?;
                Err(self.timed_out("accept", timeout))
            }
            Some(Err(e)) => Err(SocketError::io("accept", &self.address, e)),
            Some(Ok((inner, peer))) => Ok(Socket {
                inner,
                address: peer,
                state: SocketStateMachine::in_state(SocketState::Connected),
                timeouts: IoTimeouts::default(),
                coop: CoopBudget::new(),
            }),
        }
    }

    /// Waits until readable, then reads as many bytes as fit between the buffer's position
    /// and limit; the position moves by the count returned. `0` means end of stream (the
    /// socket moves to `Closing`).
    ///
    /// # Errors
    /// [`SocketError::TimedOut`] (the socket stays usable), a full buffer, wrong state, or
    /// the OS refused (e.g. `ConnectionReset`).
    pub async fn read(
        &mut self,
        buffer: &mut Buffer,
        timeout: Option<Duration>,
    ) -> Result<usize, SocketError> {
        if buffer.remaining() == 0 {
            return Err(concurrence_core::BufferError::Overflow {
                op: "Socket::read",
                needed: 1,
                remaining: 0,
            }
            .into());
        }
        self.state.begin(SocketEvent::Read, clock::now(), timeout)?;
        let attempt = async {
            match &self.inner {
                Inner::Tcp(s) => {
                    s.read_with(|io| buffer.fill_with(|room| (&*io).read(room)))
                        .await
                }
                Inner::Unix(s) => {
                    s.read_with(|io| buffer.fill_with(|room| (&*io).read(room)))
                        .await
                }
                _ => Err(io::Error::other("not connected")),
            }
        };
        let outcome = self
            .coop
            .budgeted(within(timeout, attempt), bytes_moved)
            .await;
        let n = self.finish("read", timeout, outcome)?;
        if n == 0 {
            self.state.apply(SocketEvent::PeerClosed)?;
        }
        Ok(n)
    }

    /// Waits until writable, then writes as many bytes as the socket takes from the buffer's
    /// position up to its limit; the position moves by the count returned.
    ///
    /// # Errors
    /// [`SocketError::TimedOut`] (the socket stays usable), wrong state, or the OS refused.
    pub async fn write(
        &mut self,
        buffer: &mut Buffer,
        timeout: Option<Duration>,
    ) -> Result<usize, SocketError> {
        self.state
            .begin(SocketEvent::Write, clock::now(), timeout)?;
        let attempt = async {
            match &self.inner {
                Inner::Tcp(s) => {
                    s.write_with(|io| buffer.drain_with(|bytes| concurrence_os::send(io, bytes)))
                        .await
                }
                Inner::Unix(s) => {
                    s.write_with(|io| buffer.drain_with(|bytes| concurrence_os::send(io, bytes)))
                        .await
                }
                _ => Err(io::Error::other("not connected")),
            }
        };
        let outcome = self
            .coop
            .budgeted(within(timeout, attempt), bytes_moved)
            .await;
        self.finish("write", timeout, outcome)
    }

    /// Passes `other`'s descriptor over this Unix socket (`SCM_RIGHTS`). `other` stays open
    /// here too.
    ///
    /// # Errors
    /// Not a connected Unix socket, a timeout, or the OS refused.
    pub async fn write_socket(
        &mut self,
        other: &Socket,
        timeout: Option<Duration>,
    ) -> Result<(), SocketError> {
        self.state
            .begin(SocketEvent::Write, clock::now(), timeout)?;
        let fd = other.borrowed_fd().ok_or_else(|| SocketError::WrongKind {
            op: "write_socket",
            needs: "open",
            address: other.address.to_string(),
        })?;
        let Inner::Unix(channel) = &self.inner else {
            return Err(self.wrong_kind("write_socket"));
        };
        let attempt = channel.write_with(|io| fd_passing::send_fd(io, fd));
        self.finish("write_socket", timeout, within(timeout, attempt).await)
            .map(drop)
    }

    /// Receives a descriptor sent with [`write_socket`](Socket::write_socket), as a connected
    /// `Socket`.
    ///
    /// # Errors
    /// Not a connected Unix socket, a timeout, end of stream or a message without a
    /// descriptor, or the OS refused.
    pub async fn read_socket(&mut self, timeout: Option<Duration>) -> Result<Socket, SocketError> {
        self.state.begin(SocketEvent::Read, clock::now(), timeout)?;
        let Inner::Unix(channel) = &self.inner else {
            return Err(self.wrong_kind("read_socket"));
        };
        let attempt = channel.read_with(|io| fd_passing::recv_fd(io));
        let received = self.finish("read_socket", timeout, within(timeout, attempt).await)?;
        let Some(fd) = received else {
            return Err(SocketError::NoDescriptor {
                address: self.address.to_string(),
            });
        };
        self.adopt(fd)
    }

    /// Wraps a received descriptor: a listener (told by `SO_ACCEPTCONN`) in state
    /// `Listening`, else a connected TCP or Unix stream.
    fn adopt(&self, fd: OwnedFd) -> Result<Socket, SocketError> {
        use concurrence_os::fd_passing::{FdKind, fd_kind};
        let fail = |e| SocketError::io("read_socket", &self.address, e);
        let kind = fd_kind(&fd).map_err(fail)?;
        let local = |fd: &OwnedFd| {
            socket2::SockRef::from(fd)
                .local_addr()
                .map(|a| concurrence_os::sockaddr::address_of(&a, &self.address))
        };
        let (inner, address, state) = match kind {
            FdKind::Listener { unix } => {
                let address = local(&fd).map_err(fail)?;
                let inner = if unix {
                    Inner::UnixListener(Async::new(UnixListener::from(fd)).map_err(fail)?)
                } else {
                    Inner::TcpListener(Async::new(TcpListener::from(fd)).map_err(fail)?)
                };
                (inner, address, SocketState::Listening)
            }
            FdKind::Stream { unix: true } => {
                let stream = UnixStream::from(fd);
                (
                    Inner::Unix(Async::new(stream).map_err(fail)?),
                    self.address.clone(),
                    SocketState::Connected,
                )
            }
            FdKind::Stream { .. } => {
                let stream = TcpStream::from(fd);
                let peer = stream.peer_addr().map_err(fail)?;
                stream.set_nodelay(true).map_err(fail)?;
                (
                    Inner::Tcp(Async::new(stream).map_err(fail)?),
                    Address::Tcp(peer),
                    SocketState::Connected,
                )
            }
        };
        Ok(Socket {
            inner,
            address,
            state: SocketStateMachine::in_state(state),
            timeouts: IoTimeouts::default(),
            coop: CoopBudget::new(),
        })
    }

    /// Shuts down the write side of a connected socket (half-close: the peer reads end of
    /// stream after the bytes already written); reading goes on until the peer closes too.
    ///
    /// # Errors
    /// The socket is not connected (wrong state), or the OS refused.
    pub fn shutdown_write(&self) -> Result<(), SocketError> {
        if self.state.state() != SocketState::Connected {
            return Err(SocketError::State(SocketStateError::InvalidState {
                op: "shutdown_write",
                state: self.state.state(),
            }));
        }
        shutdown_ignoring_not_connected(self)
            .map_err(|e| SocketError::io("shutdown_write", &self.address, e))
    }

    /// Closes the socket with a reset (`SO_LINGER` 0): output not yet sent is dropped and
    /// the peer reads `ConnectionReset`. A listener or a closed socket just closes.
    ///
    /// # Errors
    /// Never in practice; kept for the seed's signature.
    pub fn abort(&mut self) -> Result<(), SocketError> {
        self.reset_on_close();
        self.close()
    }

    /// Closes the socket (idempotent).
    ///
    /// # Errors
    /// Never in practice; kept for the seed's signature.
    pub fn close(&mut self) -> Result<(), SocketError> {
        self.state.apply(SocketEvent::Close)?;
        if self.state.state() == SocketState::Closing {
            self.state.apply(SocketEvent::CloseCompleted)?;
        }
        self.inner = Inner::Closed;
        Ok(())
    }

    /// Timeouts for the `futures_io::AsyncRead` / `AsyncWrite` implementations, and so for an
    /// `AsyncBufferedStream` over this socket (default: none). A read or write that makes no
    /// progress for that long fails with `ErrorKind::TimedOut`; the socket stays usable.
    pub fn set_timeouts(&mut self, read: Option<Duration>, write: Option<Duration>) {
        self.timeouts.read = read;
        self.timeouts.write = write;
    }

    /// The socket's state.
    #[must_use]
    pub fn state(&self) -> SocketState {
        self.state.state()
    }

    /// The address: the peer for a connection, the bound address for a listener.
    #[must_use]
    pub fn address(&self) -> &Address {
        &self.address
    }

    fn borrowed_fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.inner {
            Inner::Tcp(s) => Some(s.as_fd()),
            Inner::Unix(s) => Some(s.as_fd()),
            Inner::TcpListener(s) => Some(s.as_fd()),
            Inner::UnixListener(s) => Some(s.as_fd()),
            Inner::Init { socket, .. } => Some(socket.as_fd()),
            Inner::Closed => None,
        }
    }

    fn wrong_kind(&self, op: &'static str) -> SocketError {
        SocketError::WrongKind {
            op,
            needs: "connected Unix",
            address: self.address.to_string(),
        }
    }

    fn timed_out(&self, op: &'static str, timeout: Option<Duration>) -> SocketError {
        SocketError::TimedOut {
            op,
            address: self.address.to_string(),
            timeout: timeout.unwrap_or_default(),
        }
    }

    /// Maps a timed attempt's outcome to the socket's state and error types.
    fn finish<T>(
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
}

/// Shuts the write side down; a peer that already went away is not an error here.
fn shutdown_ignoring_not_connected(socket: &Socket) -> io::Result<()> {
    match socket.shutdown_write_raw() {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    }
}

fn not_connected() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "socket is not a connected stream",
    )
}

/// Bounds a pending I/O poll by `timeout`: the timer starts with the first `Pending` and is
/// dropped once the operation completes; a timer that fires first is a `TimedOut` error.
fn with_timeout<T>(
    cx: &mut Context<'_>,
    timeout: Option<Duration>,
    timer: &mut Option<Timer>,
    op: impl FnOnce(&mut Context<'_>) -> Poll<io::Result<T>>,
) -> Poll<io::Result<T>> {
    match op(cx) {
        Poll::Ready(result) => {
            *timer = None;
            Poll::Ready(result)
        }
        Poll::Pending => {
            let Some(limit) = timeout else {
                return Poll::Pending;
            };
            let running = timer.get_or_insert_with(|| Timer::after(limit));
            if Pin::new(running).poll(cx).is_ready() {
                *timer = None;
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no progress within {limit:?} (Socket::set_timeouts)"),
                )));
            }
            Poll::Pending
        }
    }
}

/// Reads honour the read timeout of [`Socket::set_timeouts`] (a `TimedOut` error; the socket
/// stays usable) and move the socket's state at end of stream, as `read` does.
impl AsyncRead for Socket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.coop.poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        let inner = &mut this.inner;
        let timeouts = &mut this.timeouts;
        let polled = with_timeout(
            cx,
            timeouts.read,
            &mut timeouts.read_timer,
            |cx| match inner {
                Inner::Tcp(s) => Pin::new(s).poll_read(cx, buf),
                Inner::Unix(s) => Pin::new(s).poll_read(cx, buf),
                _ => Poll::Ready(Err(not_connected())),
            },
        );
        this.coop.account(&polled, |n| *n);
        if let Poll::Ready(Ok(0)) = polled {
            if !buf.is_empty() && this.state.state() == SocketState::Connected {
                let _ = this.state.apply(SocketEvent::PeerClosed);
            }
        }
        polled
    }
}

/// Writes honour the write timeout of [`Socket::set_timeouts`].
impl AsyncWrite for Socket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.coop.poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        let inner = &mut this.inner;
        let timeouts = &mut this.timeouts;
        let polled = with_timeout(
            cx,
            timeouts.write,
            &mut timeouts.write_timer,
            |cx| match inner {
                Inner::Tcp(s) => Pin::new(s).poll_write(cx, buf),
                Inner::Unix(s) => Pin::new(s).poll_write(cx, buf),
                _ => Poll::Ready(Err(not_connected())),
            },
        );
        this.coop.account(&polled, |n| *n);
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Inner::Tcp(s) => Pin::new(s).poll_flush(cx),
            Inner::Unix(s) => Pin::new(s).poll_flush(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    /// Flushes, then shuts the write side down (a FIN), as closing a stream means everywhere
    /// (async-io's own `poll_close` only flushes). Reading goes on.
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = match &mut self.inner {
            Inner::Tcp(s) => Pin::new(s).poll_flush(cx),
            Inner::Unix(s) => Pin::new(s).poll_flush(cx),
            _ => return Poll::Ready(Ok(())),
        };
        match flushed {
            Poll::Ready(Ok(())) => Poll::Ready(shutdown_ignoring_not_connected(&self)),
            other => other,
        }
    }
}
