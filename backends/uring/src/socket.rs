//! The seed's `Socket` on the uring backend: [`AsyncSocket`] (written once in
//! `concurrence-socket`) over [`UringTransport`], which makes the non-blocking system calls and
//! waits for readiness on the io_uring reactor (`reactor.rs`). Usable under any executor.

use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use concurrence_core::{Address, Timestamp};
use concurrence_os::sockaddr::{address_of, new_socket, sock_addr};
use concurrence_os::{RetryPause, clock, fd_passing};
use concurrence_socket::{
    AcceptFailure, AsyncSocket, Endpoint, Transport, not_connected, poll_until_done,
};

use crate::reactor::{Interest, UringTimer, reactor};

/// A TCP or Unix socket with the seed's API as `async fn`s, waiting on io_uring: the same type
/// as the smol backend's and the simulator's `Socket` (`AsyncSocket`), on this transport.
///
/// Every call takes a timeout (`None` waits forever, the seed's `-1`); a read, write or accept
/// that times out returns `SocketError::TimedOut` and leaves the socket usable. Where io_uring
/// is unavailable, the first wait fails with an `Unsupported` error that says why.
pub type Socket = AsyncSocket<UringTransport>;

/// The io_uring transport of [`Socket`].
#[derive(Debug, Clone, Copy)]
pub struct UringTransport;

/// An open socket whose readiness the reactor watches, closed through the reactor (which
/// cancels its pending polls first).
#[derive(Debug)]
pub struct Watched {
    socket: Option<socket2::Socket>,
    unix: bool,
    readable: Interest,
    writable: Interest,
}

/// A connected TCP or Unix stream.
pub type UringStream = Watched;
/// A listening TCP or Unix socket.
pub type UringListener = Watched;

impl Watched {
    pub(crate) fn new(socket: socket2::Socket, unix: bool) -> io::Result<Watched> {
        socket.set_nonblocking(true)?;
        Ok(Watched {
            socket: Some(socket),
            unix,
            readable: Interest::default(),
            writable: Interest::default(),
        })
    }

    fn socket(&self) -> &socket2::Socket {
        self.socket.as_ref().expect("only Drop takes the socket")
    }

    fn raw(&self) -> RawFd {
        self.socket().as_raw_fd()
    }

    fn poll_readable(&self, cx: &Context<'_>) -> Poll<io::Result<()>> {
        self.readable
            .poll_ready(self.raw(), libc::POLLIN as u32, cx)
    }

    fn poll_writable(&self, cx: &Context<'_>) -> Poll<io::Result<()>> {
        self.writable
            .poll_ready(self.raw(), libc::POLLOUT as u32, cx)
    }
}

impl AsFd for Watched {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket().as_fd()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let Some(socket) = self.socket.take() else {
            return;
        };
        match reactor() {
            // Its polls hold the file open: the reactor cancels them, then closes it.
            Ok(reactor) => reactor.close(OwnedFd::from(socket)),
            Err(_) => drop(socket),
        }
    }
}

fn endpoint_fd(endpoint: &Endpoint<UringTransport>) -> Option<BorrowedFd<'_>> {
    match endpoint {
        Endpoint::Unbound { socket, .. } => Some(socket.as_fd()),
        Endpoint::Stream(watched) | Endpoint::Listener(watched) => Some(watched.as_fd()),
        Endpoint::Closed => None,
    }
}

impl Transport for UringTransport {
    type Stream = UringStream;
    type Listener = UringListener;
    type Unbound = socket2::Socket;
    type Timer = UringTimer;

    fn now() -> Timestamp {
        clock::now()
    }

    fn timer(after: Duration) -> UringTimer {
        UringTimer::at(clock::now() + after)
    }

    fn unbound(address: &Address) -> io::Result<socket2::Socket> {
        new_socket(address, "create socket").map_err(io::Error::from)
    }

    fn bind(socket: &mut socket2::Socket, address: &Address) -> io::Result<Address> {
        concurrence_os::sockaddr::bind_to(socket, address)
    }

    fn listen(socket: socket2::Socket, address: &Address, backlog: i32) -> io::Result<Watched> {
        socket.listen(backlog)?;
        Watched::new(socket, matches!(address, Address::Unix(_)))
    }

    async fn connect(address: &Address) -> io::Result<Watched> {
        let target = sock_addr(address)?;
        let unix = matches!(address, Address::Unix(_));
        // Wrapped at once: a connect abandoned while it waits closes through the reactor.
        let stream = Watched::new(
            new_socket(address, "connect").map_err(io::Error::from)?,
            unix,
        )?;
        let mut retry = RetryPause::new();
        loop {
            match stream.socket().connect(&target) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                    std::future::poll_fn(|cx| stream.poll_writable(cx)).await?;
                    if let Some(e) = stream.socket().take_error()? {
                        return Err(e);
                    }
                    break;
                }
                // A Unix listener's full backlog: no readiness announces room; try again
                // after a pause (the caller's timeout bounds the attempts).
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    UringTimer::at(clock::now() + retry.next_pause()).await;
                }
                Err(e) => return Err(e),
            }
        }
        if !unix {
            stream.socket().set_tcp_nodelay(true)?;
        }
        Ok(stream)
    }

    fn local_address(endpoint: &Endpoint<Self>, known: &Address) -> io::Result<Address> {
        let fd = endpoint_fd(endpoint).ok_or_else(not_connected)?;
        let local = socket2::SockRef::from(&fd).local_addr()?;
        Ok(address_of(&local, known))
    }

    fn poll_accept(
        listener: &Watched,
        address: &Address,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Watched, Address)>> {
        poll_until_done(
            cx,
            || {
                let (stream, peer) = listener.socket().accept()?;
                if !listener.unix {
                    // Not an accept failure: the connection works without it.
                    if let Err(e) = stream.set_tcp_nodelay(true) {
                        tracing::debug!(error = %e, "TCP_NODELAY not set on an accepted connection");
                    }
                }
                let peer = if listener.unix {
                    address.clone()
                } else {
                    address_of(&peer, address)
                };
                Ok((Watched::new(stream, listener.unix)?, peer))
            },
            |cx| listener.poll_readable(cx),
        )
    }

    fn accept_failure(error: &io::Error) -> AcceptFailure {
        concurrence_os::accept_failure(error)
    }

    fn poll_read(
        stream: &Watched,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        poll_until_done(
            cx,
            || stream.socket().read(buf),
            |cx| stream.poll_readable(cx),
        )
    }

    fn poll_write(stream: &Watched, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        poll_until_done(
            cx,
            || concurrence_os::send(stream.as_fd(), buf),
            |cx| stream.poll_writable(cx),
        )
    }

    fn shutdown_write(stream: &Watched) -> io::Result<()> {
        match stream.socket().shutdown(std::net::Shutdown::Write) {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        }
    }

    fn reset_on_close(stream: &Watched) {
        let _ = stream.socket().set_linger(Some(Duration::ZERO));
    }

    fn poll_send_socket(
        channel: &Watched,
        other: &Endpoint<Self>,
        _other_address: &Address,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let fd = endpoint_fd(other).ok_or_else(not_connected)?;
        poll_until_done(
            cx,
            || fd_passing::send_fd(channel, fd),
            |cx| channel.poll_writable(cx),
        )
        .map(|sent| sent.map(drop))
    }

    fn poll_recv_socket(
        channel: &Watched,
        address: &Address,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<Option<(Endpoint<Self>, Address)>>> {
        let received = ready!(poll_until_done(
            cx,
            || fd_passing::recv_fd(channel),
            |cx| channel.poll_readable(cx),
        ))?;
        Poll::Ready(received.map(|fd| adopt(fd, address)).transpose())
    }
}

/// Wraps a received descriptor: a listener (told by `SO_ACCEPTCONN`) with its bound address,
/// else a connected TCP stream with its peer's address or a Unix stream with `channel`'s.
fn adopt(fd: OwnedFd, channel: &Address) -> io::Result<(Endpoint<UringTransport>, Address)> {
    use concurrence_os::fd_passing::{FdKind, fd_kind};
    let socket = socket2::Socket::from(fd);
    match fd_kind(&socket)? {
        FdKind::Listener { unix } => {
            let address = address_of(&socket.local_addr()?, channel);
            Ok((Endpoint::Listener(Watched::new(socket, unix)?), address))
        }
        FdKind::Stream { unix } => {
            let address = if unix {
                channel.clone()
            } else {
                address_of(&socket.peer_addr()?, channel)
            };
            Ok((Endpoint::Stream(Watched::new(socket, unix)?), address))
        }
    }
}
