//! The seed's `Socket` on `async-io`: [`AsyncSocket`] (written once in `concurrence-socket`)
//! over [`SmolTransport`], which only makes the non-blocking system calls and waits on
//! async-io's reactor. Timers are `async_io::Timer`s, the clock the OS's.

use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use async_io::{Async, Timer};
use concurrence_core::{Address, Timestamp};
use concurrence_os::{clock, fd_passing};
use concurrence_socket::{
    AcceptFailure, AsyncSocket, Endpoint, Transport, not_connected, poll_until_done,
};

/// A TCP or Unix socket with the seed's API as `async fn`s, usable under any executor
/// (async-io runs its own reactor thread when no smol runtime drives it).
///
/// Every call takes a timeout (`None` waits forever, the seed's `-1`); a read, write or accept
/// that times out returns `SocketError::TimedOut` and leaves the socket usable. `TCP_NODELAY`
/// is on for TCP connections. `Socket` implements `futures_io::AsyncRead + AsyncWrite`, so the
/// core's `AsyncBufferedStream` runs over it. The same type as the simulator's `Socket`, on
/// another transport.
pub type Socket = AsyncSocket<SmolTransport>;

/// The async-io transport of [`Socket`].
#[derive(Debug, Clone, Copy)]
pub struct SmolTransport;

/// A connected TCP or Unix stream, registered with async-io's reactor.
#[derive(Debug)]
pub enum SmolStream {
    /// A TCP connection (`TCP_NODELAY` on).
    Tcp(Async<TcpStream>),
    /// A Unix stream connection.
    Unix(Async<UnixStream>),
}

/// A listening TCP or Unix socket, registered with async-io's reactor.
#[derive(Debug)]
pub enum SmolListener {
    /// Listens on `ip:port`.
    Tcp(Async<TcpListener>),
    /// Listens on a path.
    Unix(Async<UnixListener>),
}

/// A socket made for an address, not yet listening.
#[derive(Debug)]
pub struct SmolUnbound(socket2::Socket);

impl SmolStream {
    /// Wraps a connected stream descriptor (non-blocking from here on).
    fn adopt(fd: OwnedFd, unix: bool) -> io::Result<SmolStream> {
        Ok(if unix {
            SmolStream::Unix(Async::new(UnixStream::from(fd))?)
        } else {
            let stream = TcpStream::from(fd);
            stream.set_nodelay(true)?;
            SmolStream::Tcp(Async::new(stream)?)
        })
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            SmolStream::Tcp(s) => s.as_fd(),
            SmolStream::Unix(s) => s.as_fd(),
        }
    }

    /// Waits until readable (data, end of stream or an error), without reading: how the
    /// session driver waits while it holds no receive buffer.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        match self {
            SmolStream::Tcp(s) => s.readable().await,
            SmolStream::Unix(s) => s.readable().await,
        }
    }

    /// Waits until writable, without writing.
    pub(crate) async fn writable(&self) -> io::Result<()> {
        match self {
            SmolStream::Tcp(s) => s.writable().await,
            SmolStream::Unix(s) => s.writable().await,
        }
    }

    /// One non-blocking read (`WouldBlock` when it has nothing).
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            SmolStream::Tcp(s) => s.get_ref().read(buf),
            SmolStream::Unix(s) => s.get_ref().read(buf),
        }
    }

    /// One non-blocking send (`WouldBlock` when it takes nothing; no `SIGPIPE`).
    pub(crate) fn try_send(&self, bytes: &[u8]) -> io::Result<usize> {
        concurrence_os::send(self.fd(), bytes)
    }

    /// Shuts the write side down (a FIN); reading goes on.
    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        rustix::net::shutdown(self.fd(), rustix::net::Shutdown::Write).map_err(io::Error::from)
    }

    /// Makes the coming close send a reset (`SO_LINGER` 0) instead of a FIN.
    pub(crate) fn reset_on_close(&self) {
        let _ = rustix::net::sockopt::set_socket_linger(self.fd(), Some(Duration::ZERO));
    }

    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            SmolStream::Tcp(s) => s.poll_readable(cx),
            SmolStream::Unix(s) => s.poll_readable(cx),
        }
    }

    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            SmolStream::Tcp(s) => s.poll_writable(cx),
            SmolStream::Unix(s) => s.poll_writable(cx),
        }
    }
}

fn endpoint_fd(endpoint: &Endpoint<SmolTransport>) -> Option<BorrowedFd<'_>> {
    match endpoint {
        Endpoint::Unbound { socket, .. } => Some(socket.0.as_fd()),
        Endpoint::Stream(stream) => Some(stream.fd()),
        Endpoint::Listener(SmolListener::Tcp(l)) => Some(l.as_fd()),
        Endpoint::Listener(SmolListener::Unix(l)) => Some(l.as_fd()),
        Endpoint::Closed => None,
    }
}

impl Transport for SmolTransport {
    type Stream = SmolStream;
    type Listener = SmolListener;
    type Unbound = SmolUnbound;
    type Timer = Timer;

    fn now() -> Timestamp {
        clock::now()
    }

    fn timer(after: Duration) -> Timer {
        Timer::after(after)
    }

    fn unbound(address: &Address) -> io::Result<SmolUnbound> {
        concurrence_os::sockaddr::new_socket(address, "create socket")
            .map(SmolUnbound)
            .map_err(io::Error::from)
    }

    fn bind(socket: &mut SmolUnbound, address: &Address) -> io::Result<Address> {
        concurrence_os::sockaddr::bind_to(&socket.0, address)
    }

    fn listen(socket: SmolUnbound, address: &Address, backlog: i32) -> io::Result<SmolListener> {
        socket.0.listen(backlog)?;
        let fd = OwnedFd::from(socket.0);
        Ok(match address {
            Address::Tcp(_) => SmolListener::Tcp(Async::new(TcpListener::from(fd))?),
            Address::Unix(_) => SmolListener::Unix(Async::new(UnixListener::from(fd))?),
        })
    }

    async fn connect(address: &Address) -> io::Result<SmolStream> {
        match address {
            Address::Tcp(addr) => {
                let stream = Async::<TcpStream>::connect(*addr).await?;
                stream.get_ref().set_nodelay(true)?;
                Ok(SmolStream::Tcp(stream))
            }
            Address::Unix(path) => Ok(SmolStream::Unix(Async::<UnixStream>::connect(path).await?)),
        }
    }

    fn local_address(endpoint: &Endpoint<Self>, known: &Address) -> io::Result<Address> {
        let fd = endpoint_fd(endpoint).ok_or_else(not_connected)?;
        let local = socket2::SockRef::from(&fd).local_addr()?;
        Ok(concurrence_os::sockaddr::address_of(&local, known))
    }

    fn poll_accept(
        listener: &SmolListener,
        address: &Address,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(SmolStream, Address)>> {
        match listener {
            SmolListener::Tcp(l) => poll_until_done(
                cx,
                || {
                    let (stream, peer) = l.get_ref().accept()?;
                    // Not an accept failure: the connection works without it.
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, error = %e, "TCP_NODELAY not set on an accepted connection");
                    }
                    Ok((SmolStream::Tcp(Async::new(stream)?), Address::Tcp(peer)))
                },
                |cx| l.poll_readable(cx),
            ),
            SmolListener::Unix(l) => poll_until_done(
                cx,
                || {
                    let (stream, _) = l.get_ref().accept()?;
                    Ok((SmolStream::Unix(Async::new(stream)?), address.clone()))
                },
                |cx| l.poll_readable(cx),
            ),
        }
    }

    fn accept_failure(error: &io::Error) -> AcceptFailure {
        concurrence_os::accept_failure(error)
    }

    fn poll_read(
        stream: &SmolStream,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        poll_until_done(cx, || stream.try_read(buf), |cx| stream.poll_readable(cx))
    }

    fn poll_write(
        stream: &SmolStream,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_until_done(cx, || stream.try_send(buf), |cx| stream.poll_writable(cx))
    }

    fn shutdown_write(stream: &SmolStream) -> io::Result<()> {
        match stream.shutdown_write() {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        }
    }

    fn reset_on_close(stream: &SmolStream) {
        stream.reset_on_close();
    }

    fn poll_send_socket(
        channel: &SmolStream,
        other: &Endpoint<Self>,
        _other_address: &Address,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let fd = endpoint_fd(other).ok_or_else(not_connected)?;
        poll_until_done(
            cx,
            || fd_passing::send_fd(channel.fd(), fd),
            |cx| channel.poll_writable(cx),
        )
        .map(|sent| sent.map(drop))
    }

    fn poll_recv_socket(
        channel: &SmolStream,
        address: &Address,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<Option<(Endpoint<Self>, Address)>>> {
        let received = ready!(poll_until_done(
            cx,
            || fd_passing::recv_fd(channel.fd()),
            |cx| channel.poll_readable(cx),
        ))?;
        Poll::Ready(received.map(|fd| adopt(fd, address)).transpose())
    }
}

/// Wraps a received descriptor: a listener (told by `SO_ACCEPTCONN`) with its bound address,
/// else a connected TCP stream with its peer's address or a Unix stream with `channel`'s.
fn adopt(fd: OwnedFd, channel: &Address) -> io::Result<(Endpoint<SmolTransport>, Address)> {
    use concurrence_os::fd_passing::{FdKind, fd_kind};
    let kind = fd_kind(&fd)?;
    match kind {
        FdKind::Listener { unix } => {
            let local = socket2::SockRef::from(&fd).local_addr()?;
            let address = concurrence_os::sockaddr::address_of(&local, channel);
            let listener = if unix {
                SmolListener::Unix(Async::new(UnixListener::from(fd))?)
            } else {
                SmolListener::Tcp(Async::new(TcpListener::from(fd))?)
            };
            Ok((Endpoint::Listener(listener), address))
        }
        FdKind::Stream { unix } => {
            let address = if unix {
                channel.clone()
            } else {
                let peer = socket2::SockRef::from(&fd).peer_addr()?;
                concurrence_os::sockaddr::address_of(&peer, channel)
            };
            Ok((Endpoint::Stream(SmolStream::adopt(fd, unix)?), address))
        }
    }
}
