//! `Socket`: the seed's socket API on the simulated network, with the smol backend's names
//! and signatures (`connect`, `from_address`, `bind`, `listen`, `accept`, `read`, `write`,
//! `close`, `set_timeouts`) and `futures_io::AsyncRead + AsyncWrite`, for async code running
//! as a simulated task. Reads and writes are short, delayed, refused or reset as the faults
//! say; timeouts run on virtual time.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use concurrence_core::{
    Address, Buffer, BufferError, SocketEvent, SocketState, SocketStateError, SocketStateMachine,
    transition,
};
use concurrence_socket::{CoopBudget, SocketError, bytes_moved};
use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::future::{or, poll_fn};

use crate::executor::{Scope, Sleep, current, sleep};
use crate::world::{PassedFd, World};

enum Inner {
    /// From `from_address`, maybe bound, not listening.
    Init {
        bound: bool,
    },
    /// A connected stream: endpoint `side` of connection `id`.
    Stream {
        world: Rc<RefCell<World>>,
        id: usize,
        side: usize,
    },
    /// A listener.
    Listener {
        world: Rc<RefCell<World>>,
        index: usize,
    },
    Closed,
}

/// Timeouts of the `AsyncRead` / `AsyncWrite` implementations, with their running timers.
#[derive(Default)]
struct IoTimeouts {
    read: Option<Duration>,
    write: Option<Duration>,
    read_timer: Option<Sleep>,
    write_timer: Option<Sleep>,
}

/// A socket on the simulated network, usable inside a simulated task.
pub struct Socket {
    inner: Inner,
    address: Address,
    state: SocketStateMachine,
    timeouts: IoTimeouts,
    /// After `COOP_BUDGET` of work that completed at once, the task yields once (as on smol).
    coop: CoopBudget,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("address", &self.address)
            .field("state", &self.state.state())
            .finish_non_exhaustive()
    }
}

fn scope(op: &'static str, address: &Address) -> Result<Scope, SocketError> {
    current().ok_or_else(|| {
        SocketError::io(
            op,
            address,
            io::Error::other("a simulated socket is used outside a simulated task"),
        )
    })
}

/// Runs `attempt` for at most `timeout` of virtual time; `None` when the time ran out.
async fn within<T>(timeout: Option<Duration>, attempt: impl Future<Output = T>) -> Option<T> {
    match timeout {
        None => Some(attempt.await),
        Some(limit) => {
            or(async { Some(attempt.await) }, async {
                sleep(limit).await;
                None
            })
            .await
        }
    }
}

impl Socket {
    /// Connects to `address`, waiting at most `timeout` (virtual time).
    ///
    /// # Errors
    /// [`SocketError::TimedOut`] (the attempt is abandoned), or [`SocketError::Io`] with
    /// `ConnectionRefused` when nobody listens (or the network refused).
    pub async fn connect(
        address: &Address,
        timeout: Option<Duration>,
    ) -> Result<Socket, SocketError> {
        let scope = scope("connect", address)?;
        let mut state = SocketStateMachine::new();
        state.begin(
            SocketEvent::ConnectStarted,
            scope.world.borrow().now(),
            timeout,
        )?;
        let id = scope.world.borrow_mut().raw_connect(scope.host, address);
        let world = Rc::clone(&scope.world);
        let attempt = poll_fn(|cx| world.borrow_mut().poll_connected(id, cx));
        match within(timeout, attempt).await {
            None => {
                scope.world.borrow_mut().close_socket(id, 0);
                state.apply(SocketEvent::Timeout)?;
                Err(SocketError::TimedOut {
                    op: "connect",
                    address: address.to_string(),
                    timeout: timeout.unwrap_or_default(),
                })
            }
            Some(Err(source)) => {
                scope.world.borrow_mut().close_socket(id, 0);
                state.apply(SocketEvent::ConnectFailed)?;
                Err(SocketError::io("connect", address, source))
            }
            Some(Ok(())) => {
                state.apply(SocketEvent::ConnectCompleted)?;
                Ok(Socket {
                    inner: Inner::Stream {
                        world: scope.world,
                        id,
                        side: 0,
                    },
                    address: address.clone(),
                    state,
                    timeouts: IoTimeouts::default(),
                    coop: CoopBudget::new(),
                })
            }
        }
    }

    /// A new, unconnected socket for `address`, in state `Init`: ready for
    /// [`bind`](Socket::bind) and [`listen`](Socket::listen).
    ///
    /// # Errors
    /// Never on the simulator; kept for the socket backends' signature.
    pub fn from_address(address: &Address) -> Result<Socket, SocketError> {
        Ok(Socket {
            inner: Inner::Init { bound: false },
            address: address.clone(),
            state: SocketStateMachine::new(),
            timeouts: IoTimeouts::default(),
            coop: CoopBudget::new(),
        })
    }

    /// Binds to the socket's address. Port 0 becomes a port of the simulator's choosing.
    ///
    /// # Errors
    /// The socket is not new.
    pub fn bind(&mut self) -> Result<(), SocketError> {
        let Inner::Init { bound } = &mut self.inner else {
            return Err(SocketError::State(SocketStateError::InvalidState {
                op: "bind",
                state: self.state.state(),
            }));
        };
        if !*bound {
            *bound = true;
            if let Address::Tcp(address) = &self.address {
                if address.port() == 0 {
                    let scope = scope("bind", &self.address)?;
                    let port = scope.world.borrow_mut().ephemeral_port();
                    self.address = Address::Tcp(SocketAddr::new(address.ip(), port));
                }
            }
        }
        Ok(())
    }

    /// Starts listening with `backlog` established connections waiting at most (past it,
    /// connects are refused). Binds first if [`bind`](Socket::bind) was not called.
    ///
    /// # Errors
    /// Wrong state (not `Init`), the address is in use, or called outside a simulated task.
    pub fn listen(&mut self, backlog: i32) -> Result<(), SocketError> {
        transition(self.state.state(), SocketEvent::Listen)?;
        self.bind()?;
        let scope = scope("listen", &self.address)?;
        let limit = usize::try_from(backlog).unwrap_or(0).max(1);
        let index = scope
            .world
            .borrow_mut()
            .raw_listen(scope.host, self.address.clone(), limit)
            .map_err(|e| SocketError::io("listen", &self.address, e))?;
        self.inner = Inner::Listener {
            world: scope.world,
            index,
        };
        let now = self.now();
        self.state.begin(SocketEvent::Listen, now, None)?;
        Ok(())
    }

    /// The address this socket is bound to.
    ///
    /// # Errors
    /// The socket is closed.
    pub fn local_address(&self) -> Result<Address, SocketError> {
        match self.inner {
            Inner::Closed => Err(SocketError::State(SocketStateError::InvalidState {
                op: "local_address",
                state: SocketState::Closed,
            })),
            _ => Ok(self.address.clone()),
        }
    }

    /// Waits at most `timeout` for a connection and returns it, connected.
    ///
    /// # Errors
    /// [`SocketError::TimedOut`] (the listener stays usable), wrong state, or the listener's
    /// host went down.
    pub async fn accept(&mut self, timeout: Option<Duration>) -> Result<Socket, SocketError> {
        let now = self.now();
        self.state.begin(SocketEvent::Accept, now, timeout)?;
        let Inner::Listener { world, index } = &self.inner else {
            return Err(SocketError::io(
                "accept",
                &self.address,
                io::Error::other("not a listener"),
            ));
        };
        let (world, index) = (Rc::clone(world), *index);
        let attempt = poll_fn(|cx| world.borrow_mut().poll_accept(index, cx));
        let accepted = self.coop.budgeted(within(timeout, attempt), |_| 0).await;
        match accepted {
            None => {
                self.state.apply(SocketEvent::Timeout)?;
                Err(self.timed_out("accept", timeout))
            }
            Some(Err(e)) => Err(SocketError::io("accept", &self.address, e)),
            Some(Ok((id, peer))) => Ok(Socket {
                inner: Inner::Stream { world, id, side: 1 },
                address: peer,
                state: SocketStateMachine::in_state(SocketState::Connected),
                timeouts: IoTimeouts::default(),
                coop: CoopBudget::new(),
            }),
        }
    }

    /// Waits until readable, then reads as many bytes as fit between the buffer's position
    /// and limit (fewer when the faults cut the read short); the position moves by the count
    /// returned. `0` means end of stream (the socket moves to `Closing`).
    ///
    /// # Errors
    /// [`SocketError::TimedOut`] (the socket stays usable), a full buffer, wrong state, or a
    /// reset (`ConnectionReset`).
    pub async fn read(
        &mut self,
        buffer: &mut Buffer,
        timeout: Option<Duration>,
    ) -> Result<usize, SocketError> {
        if buffer.remaining() == 0 {
            return Err(BufferError::Overflow {
                op: "Socket::read",
                needed: 1,
                remaining: 0,
            }
            .into());
        }
        let now = self.now();
        self.state.begin(SocketEvent::Read, now, timeout)?;
        let (world, id, side) = self.stream("read")?;
        let attempt = poll_fn(|cx| {
            let mut world = world.borrow_mut();
            pending_aware(|pending| {
                buffer.fill_with(|room| pending(world.poll_read(id, side, room, cx)))
            })
        });
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

    /// Waits until the send buffer has room, then writes as many bytes as it takes from the
    /// buffer's position up to its limit (fewer when the faults cut the write short); the
    /// position moves by the count returned.
    ///
    /// # Errors
    /// [`SocketError::TimedOut`] (the socket stays usable), wrong state, or a reset.
    pub async fn write(
        &mut self,
        buffer: &mut Buffer,
        timeout: Option<Duration>,
    ) -> Result<usize, SocketError> {
        let now = self.now();
        self.state.begin(SocketEvent::Write, now, timeout)?;
        let (world, id, side) = self.stream("write")?;
        let attempt = poll_fn(|cx| {
            let mut world = world.borrow_mut();
            pending_aware(|pending| {
                buffer.drain_with(|bytes| pending(world.poll_write(id, side, bytes, cx)))
            })
        });
        let outcome = self
            .coop
            .budgeted(within(timeout, attempt), bytes_moved)
            .await;
        self.finish("write", timeout, outcome)
    }

    /// Passes `other` over this connected Unix socket (the simulated `SCM_RIGHTS`); the peer
    /// gets it from [`read_socket`](Socket::read_socket), usable there. `other` stays open
    /// here too: the endpoint closes when its last socket does.
    ///
    /// # Errors
    /// This is not a connected Unix socket ([`SocketError::WrongKind`]), `other` is not open,
    /// wrong state, or the channel was reset or shut down.
    pub async fn write_socket(
        &mut self,
        other: &Socket,
        timeout: Option<Duration>,
    ) -> Result<(), SocketError> {
        let now = self.now();
        self.state.begin(SocketEvent::Write, now, timeout)?;
        let passed = match &other.inner {
            Inner::Stream { id, side, .. } => PassedFd::Stream {
                id: *id,
                side: *side,
                address: other.address.clone(),
            },
            Inner::Listener { index, .. } => PassedFd::Listener {
                index: *index,
                address: other.address.clone(),
            },
            Inner::Init { .. } | Inner::Closed => {
                return Err(SocketError::WrongKind {
                    op: "write_socket",
                    needs: "open",
                    address: other.address.to_string(),
                });
            }
        };
        let (world, id, side) = self.unix_channel("write_socket")?;
        let sent = world.borrow_mut().send_fd(id, side, passed);
        self.finish("write_socket", timeout, Some(sent))
    }

    /// Receives a socket sent with [`write_socket`](Socket::write_socket): a connected stream,
    /// or a listener in state `Listening`.
    ///
    /// # Errors
    /// Not a connected Unix socket, a timeout, end of stream without a socket
    /// ([`SocketError::NoDescriptor`]), or a reset.
    pub async fn read_socket(&mut self, timeout: Option<Duration>) -> Result<Socket, SocketError> {
        let now = self.now();
        self.state.begin(SocketEvent::Read, now, timeout)?;
        let (world, id, side) = self.unix_channel("read_socket")?;
        let attempt = poll_fn(|cx| world.borrow_mut().poll_recv_fd(id, side, cx));
        let received = self.finish("read_socket", timeout, within(timeout, attempt).await)?;
        let Some(passed) = received else {
            return Err(SocketError::NoDescriptor {
                address: self.address.to_string(),
            });
        };
        let (inner, address, state) = match passed {
            PassedFd::Stream { id, side, address } => (
                Inner::Stream { world, id, side },
                address,
                SocketState::Connected,
            ),
            PassedFd::Listener { index, address } => (
                Inner::Listener { world, index },
                address,
                SocketState::Listening,
            ),
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
    /// The socket is not connected (wrong state).
    pub fn shutdown_write(&self) -> Result<(), SocketError> {
        match &self.inner {
            Inner::Stream { world, id, side } if self.state.state() == SocketState::Connected => {
                world.borrow_mut().shutdown_write(*id, *side);
                Ok(())
            }
            _ => Err(SocketError::State(SocketStateError::InvalidState {
                op: "shutdown_write",
                state: self.state.state(),
            })),
        }
    }

    /// Closes the socket with a reset (`SO_LINGER` 0): output not yet sent is dropped and
    /// the peer reads `ConnectionReset`. A listener or a closed socket just closes.
    ///
    /// # Errors
    /// Never in practice; kept for the socket backends' signature.
    pub fn abort(&mut self) -> Result<(), SocketError> {
        if let Inner::Stream { world, id, side } = &self.inner {
            world.borrow_mut().abort_socket(*id, *side);
        }
        self.close()
    }

    /// Closes the socket (idempotent): buffered bytes are still sent, then a FIN (a reset if
    /// input was left unread); a listener stops accepting.
    ///
    /// # Errors
    /// Never in practice; kept for the seed's signature.
    pub fn close(&mut self) -> Result<(), SocketError> {
        self.state.apply(SocketEvent::Close)?;
        if self.state.state() == SocketState::Closing {
            self.state.apply(SocketEvent::CloseCompleted)?;
        }
        self.release();
        Ok(())
    }

    /// Timeouts for the `AsyncRead` / `AsyncWrite` implementations (default: none). A read or
    /// write that makes no progress for that long (virtual time) fails with
    /// `ErrorKind::TimedOut`; the socket stays usable.
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

    fn now(&self) -> concurrence_core::Timestamp {
        match &self.inner {
            Inner::Stream { world, .. } | Inner::Listener { world, .. } => world.borrow().now(),
            _ => current().map_or(concurrence_core::Timestamp::ZERO, |s| {
                s.world.borrow().now()
            }),
        }
    }

    fn stream(&self, op: &'static str) -> Result<(Rc<RefCell<World>>, usize, usize), SocketError> {
        match &self.inner {
            Inner::Stream { world, id, side } => Ok((Rc::clone(world), *id, *side)),
            _ => Err(SocketError::io(op, &self.address, not_connected())),
        }
    }

    fn unix_channel(
        &self,
        op: &'static str,
    ) -> Result<(Rc<RefCell<World>>, usize, usize), SocketError> {
        match (&self.inner, &self.address) {
            (Inner::Stream { world, id, side }, Address::Unix(_)) => {
                Ok((Rc::clone(world), *id, *side))
            }
            _ => Err(SocketError::WrongKind {
                op,
                needs: "connected Unix",
                address: self.address.to_string(),
            }),
        }
    }

    fn timed_out(&self, op: &'static str, timeout: Option<Duration>) -> SocketError {
        SocketError::TimedOut {
            op,
            address: self.address.to_string(),
            timeout: timeout.unwrap_or_default(),
        }
    }

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

    /// Hands the endpoint back to the world (close or drop).
    fn release(&mut self) {
        match std::mem::replace(&mut self.inner, Inner::Closed) {
            Inner::Stream { world, id, side } => {
                if let Ok(mut world) = world.try_borrow_mut() {
                    world.close_socket(id, side);
                }
            }
            Inner::Listener { world, index } => {
                if let Ok(mut world) = world.try_borrow_mut() {
                    world.close_listener(index);
                }
            }
            Inner::Init { .. } | Inner::Closed => {}
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.release();
    }
}

/// Runs a `Buffer::fill_with` / `drain_with` step whose inner poll may be pending: `op` gets a
/// function that turns the poll into the count the buffer wants (0 while pending, which moves
/// nothing), and a pending poll makes the whole step pending.
fn pending_aware(
    op: impl FnOnce(&mut dyn FnMut(Poll<io::Result<usize>>) -> io::Result<usize>) -> io::Result<usize>,
) -> Poll<io::Result<usize>> {
    let mut was_pending = false;
    let result = op(&mut |polled| match polled {
        Poll::Ready(result) => result,
        Poll::Pending => {
            was_pending = true;
            Ok(0)
        }
    });
    if was_pending {
        Poll::Pending
    } else {
        Poll::Ready(result)
    }
}

fn not_connected() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "socket is not a connected stream",
    )
}

/// Bounds a pending poll by `timeout` of virtual time: the timer starts with the first
/// `Pending` and is dropped once the operation completes.
fn with_timeout<T>(
    cx: &mut Context<'_>,
    timeout: Option<Duration>,
    timer: &mut Option<Sleep>,
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
            let running = timer.get_or_insert_with(|| sleep(limit));
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

/// Reads honour the read timeout of [`Socket::set_timeouts`] and move the socket's state at
/// end of stream, as `read` does.
impl AsyncRead for Socket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let Inner::Stream { world, id, side } = &this.inner else {
            return Poll::Ready(Err(not_connected()));
        };
        if this.coop.poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        let (id, side) = (*id, *side);
        let timeouts = &mut this.timeouts;
        let polled = with_timeout(cx, timeouts.read, &mut timeouts.read_timer, |cx| {
            world.borrow_mut().poll_read(id, side, buf, cx)
        });
        this.coop.account(&polled, |n| *n);
        if let Poll::Ready(Ok(0)) = polled {
            if !buf.is_empty() && this.state.state() == SocketState::Connected {
                let _ = this.state.apply(SocketEvent::PeerClosed);
            }
        }
        polled
    }
}

/// Writes honour the write timeout of [`Socket::set_timeouts`]; closing shuts the write side
/// down (a FIN after what is buffered).
impl AsyncWrite for Socket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let Inner::Stream { world, id, side } = &this.inner else {
            return Poll::Ready(Err(not_connected()));
        };
        if this.coop.poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        let (id, side) = (*id, *side);
        let timeouts = &mut this.timeouts;
        let polled = with_timeout(cx, timeouts.write, &mut timeouts.write_timer, |cx| {
            world.borrow_mut().poll_write(id, side, buf, cx)
        });
        this.coop.account(&polled, |n| *n);
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Written bytes are in the (simulated) kernel's hands already.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Inner::Stream { world, id, side } = &self.inner {
            world.borrow_mut().shutdown_write(*id, *side);
        }
        Poll::Ready(Ok(()))
    }
}
