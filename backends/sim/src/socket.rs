//! `Socket`: the seed's socket API on the simulated network. The same type as the smol
//! backend's `Socket` ([`AsyncSocket`], written once in `concurrence-socket`) over
//! [`SimTransport`], for async code running as a simulated task: reads and writes are short,
//! delayed, refused or reset as the faults say; timeouts run on virtual time.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use concurrence_core::{Address, Timestamp};
use concurrence_socket::{AcceptFailure, AsyncSocket, Endpoint, Transport, not_connected};
use futures_lite::future::poll_fn;

use crate::executor::{Scope, Sleep, current, sleep};
use crate::world::{PassedFd, World};

/// A socket on the simulated network, usable inside a simulated task: `connect`,
/// `from_address`, `bind`, `listen`, `accept`, `read`, `write`, `write_socket`, `read_socket`,
/// `shutdown_write`, `abort`, `close`, `set_timeouts`, and `futures_io::AsyncRead +
/// AsyncWrite`, with the smol backend's names and signatures by construction.
pub type Socket = AsyncSocket<SimTransport>;

/// The simulated network's transport of [`Socket`].
#[derive(Debug, Clone, Copy)]
pub struct SimTransport;

/// Endpoint `side` of simulated connection `id`; closing (dropping) the last handle to it
/// closes it in the world.
pub struct SimStream {
    world: Rc<RefCell<World>>,
    id: usize,
    side: usize,
}

/// A simulated listener; dropping the last handle to it stops it accepting.
pub struct SimListener {
    world: Rc<RefCell<World>>,
    index: usize,
}

/// A simulated socket made for an address, not yet listening (it holds nothing).
#[derive(Debug)]
pub struct SimUnbound;

impl std::fmt::Debug for SimStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SimStream(c{} side {})", self.id, self.side)
    }
}

impl std::fmt::Debug for SimListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SimListener({})", self.index)
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        if let Ok(mut world) = self.world.try_borrow_mut() {
            world.close_socket(self.id, self.side);
        }
    }
}

impl Drop for SimListener {
    fn drop(&mut self) {
        if let Ok(mut world) = self.world.try_borrow_mut() {
            world.close_listener(self.index);
        }
    }
}

fn scope(op: &str) -> io::Result<Scope> {
    current().ok_or_else(|| {
        io::Error::other(format!(
            "{op}: a simulated socket is used outside a simulated task"
        ))
    })
}

impl Transport for SimTransport {
    type Stream = SimStream;
    type Listener = SimListener;
    type Unbound = SimUnbound;
    type Timer = Sleep;

    fn now() -> Timestamp {
        current().map_or(Timestamp::ZERO, |s| s.world.borrow().now())
    }

    fn timer(after: Duration) -> Sleep {
        sleep(after)
    }

    fn unbound(_address: &Address) -> io::Result<SimUnbound> {
        Ok(SimUnbound)
    }

    /// Port 0 becomes a port of the simulator's choosing.
    fn bind(_socket: &mut SimUnbound, address: &Address) -> io::Result<Address> {
        match address {
            Address::Tcp(ip) if ip.port() == 0 => {
                let port = scope("bind")?.world.borrow_mut().ephemeral_port();
                Ok(Address::Tcp(SocketAddr::new(ip.ip(), port)))
            }
            other => Ok(other.clone()),
        }
    }

    /// At most `backlog` established connections wait (past it, connects are refused).
    fn listen(_socket: SimUnbound, address: &Address, backlog: i32) -> io::Result<SimListener> {
        let scope = scope("listen")?;
        let limit = usize::try_from(backlog).unwrap_or(0).max(1);
        let index = scope
            .world
            .borrow_mut()
            .raw_listen(scope.host, address.clone(), limit)?;
        Ok(SimListener {
            world: scope.world,
            index,
        })
    }

    async fn connect(address: &Address) -> io::Result<SimStream> {
        let scope = scope("connect")?;
        let id = scope.world.borrow_mut().raw_connect(scope.host, address);
        // Closes the attempt if it fails or is abandoned (a timeout drops this future).
        let stream = SimStream {
            world: scope.world,
            id,
            side: 0,
        };
        poll_fn(|cx| stream.world.borrow_mut().poll_connected(id, cx)).await?;
        Ok(stream)
    }

    fn local_address(_endpoint: &Endpoint<Self>, known: &Address) -> io::Result<Address> {
        Ok(known.clone())
    }

    fn poll_accept(
        listener: &SimListener,
        _address: &Address,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(SimStream, Address)>> {
        let (id, peer) = ready!(listener.world.borrow_mut().poll_accept(listener.index, cx))?;
        let stream = SimStream {
            world: Rc::clone(&listener.world),
            id,
            side: 1,
        };
        Poll::Ready(Ok((stream, peer)))
    }

    /// The listener is closed or its host is down: serving stops. Anything else rests.
    fn accept_failure(error: &io::Error) -> AcceptFailure {
        match error.kind() {
            io::ErrorKind::NotConnected | io::ErrorKind::InvalidInput => AcceptFailure::Fatal,
            _ => AcceptFailure::Rest,
        }
    }

    fn poll_read(
        stream: &SimStream,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        stream
            .world
            .borrow_mut()
            .poll_read(stream.id, stream.side, buf, cx)
    }

    fn poll_write(stream: &SimStream, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        stream
            .world
            .borrow_mut()
            .poll_write(stream.id, stream.side, buf, cx)
    }

    fn shutdown_write(stream: &SimStream) -> io::Result<()> {
        stream
            .world
            .borrow_mut()
            .shutdown_write(stream.id, stream.side);
        Ok(())
    }

    fn reset_on_close(stream: &SimStream) {
        stream
            .world
            .borrow_mut()
            .abort_socket(stream.id, stream.side);
    }

    fn poll_send_socket(
        channel: &SimStream,
        other: &Endpoint<Self>,
        other_address: &Address,
        _cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let passed = match other {
            Endpoint::Stream(s) => PassedFd::Stream {
                id: s.id,
                side: s.side,
                address: other_address.clone(),
            },
            Endpoint::Listener(l) => PassedFd::Listener {
                index: l.index,
                address: other_address.clone(),
            },
            Endpoint::Unbound { .. } | Endpoint::Closed => {
                return Poll::Ready(Err(not_connected()));
            }
        };
        Poll::Ready(
            channel
                .world
                .borrow_mut()
                .send_fd(channel.id, channel.side, passed),
        )
    }

    fn poll_recv_socket(
        channel: &SimStream,
        _address: &Address,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<Option<(Endpoint<Self>, Address)>>> {
        let received = ready!(channel.world.borrow_mut().poll_recv_fd(
            channel.id,
            channel.side,
            cx
        ))?;
        let world = Rc::clone(&channel.world);
        Poll::Ready(Ok(received.map(|passed| match passed {
            PassedFd::Stream { id, side, address } => {
                (Endpoint::Stream(SimStream { world, id, side }), address)
            }
            PassedFd::Listener { index, address } => {
                (Endpoint::Listener(SimListener { world, index }), address)
            }
        })))
    }
}
