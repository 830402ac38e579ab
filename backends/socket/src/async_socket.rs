//! `AsyncSocket<T>`: the seed's socket API as `async fn`s, written once over a backend's
//! [`Transport`]: connect, bind, listen, accept, read and write a `Buffer`, pass sockets, each
//! with a timeout on the backend's clock; `futures_io::AsyncRead + AsyncWrite` with the timeouts
//! of `set_timeouts`; and the cooperative budget, so that a task whose socket stays ready still
//! yields to its executor. `concurrence_smol::Socket` and `concurrence_sim::Socket` are this
//! type on their transports.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::Duration;

use concurrence_core::{Address, Buffer, SocketEvent, SocketState};
use futures_io::{AsyncRead, AsyncWrite};

use crate::ledger::not_connected;
use crate::transport::{Endpoint, Transport};
use crate::{CoopBudget, SocketError, SocketLedger, bytes_moved};

/// A TCP or Unix socket with the seed's API as `async fn`s, on the backend `T`.
///
/// Every call takes a timeout (`None` waits forever, the seed's `-1`); a read, write or accept
/// that times out returns [`SocketError::TimedOut`] and leaves the socket usable. After
/// [`COOP_BUDGET`](crate::COOP_BUDGET) of work that completed at once, an operation makes its
/// task yield once (as tokio's coop budget), so one busy connection cannot hold an executor.
pub struct AsyncSocket<T: Transport> {
    endpoint: Endpoint<T>,
    ledger: SocketLedger,
    timeouts: IoTimeouts<T>,
    coop: CoopBudget,
}

/// The timeouts of the `AsyncRead` / `AsyncWrite` implementations, with the timers of the
/// read and write in progress.
struct IoTimeouts<T: Transport> {
    read: Option<Duration>,
    write: Option<Duration>,
    read_timer: Option<T::Timer>,
    write_timer: Option<T::Timer>,
}

impl<T: Transport> Default for IoTimeouts<T> {
    fn default() -> Self {
        IoTimeouts {
            read: None,
            write: None,
            read_timer: None,
            write_timer: None,
        }
    }
}

impl<T: Transport> std::fmt::Debug for AsyncSocket<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("address", self.ledger.address())
            .field("state", &self.ledger.state())
            .finish_non_exhaustive()
    }
}

/// Runs `work` for at most `timeout` on `T`'s clock; `None` when the time ran out first.
pub async fn within<T: Transport, F: Future>(
    timeout: Option<Duration>,
    work: F,
) -> Option<F::Output> {
    let mut work = pin!(work);
    let Some(limit) = timeout else {
        return Some(work.await);
    };
    let mut timer = T::timer(limit);
    poll_fn(|cx| {
        if let Poll::Ready(output) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        match Pin::new(&mut timer).poll(cx) {
            Poll::Ready(_) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

impl<T: Transport> AsyncSocket<T> {
    fn with(endpoint: Endpoint<T>, address: Address, state: SocketState) -> Self {
        AsyncSocket {
            endpoint,
            ledger: SocketLedger::new(address, state),
            timeouts: IoTimeouts::default(),
            coop: CoopBudget::new(),
        }
    }

    /// A listening socket around a listener the backend made itself (a server's, bound and
    /// listening on `address`).
    #[must_use]
    pub fn from_listener(listener: T::Listener, address: Address) -> Self {
        Self::with(
            Endpoint::Listener(listener),
            address,
            SocketState::Listening,
        )
    }

    /// A connected socket around a stream the backend opened itself (its session client).
    #[must_use]
    pub fn from_stream(stream: T::Stream, peer: Address) -> Self {
        Self::with(Endpoint::Stream(stream), peer, SocketState::Connected)
    }

    /// Connects to `address` (TCP for `ip:port`, Unix for a path), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`SocketError::TimedOut`] (the attempt is abandoned), or [`SocketError::Io`] with
    /// `ConnectionRefused` when nobody listens.
    pub async fn connect(
        address: &Address,
        timeout: Option<Duration>,
    ) -> Result<Self, SocketError> {
        let mut ledger = SocketLedger::new(address.clone(), SocketState::Init);
        ledger.begin(SocketEvent::ConnectStarted, T::now(), timeout)?;
        match within::<T, _>(timeout, T::connect(address)).await {
            Some(Ok(stream)) => {
                ledger.apply(SocketEvent::ConnectCompleted)?;
                Ok(Self::with(
                    Endpoint::Stream(stream),
                    address.clone(),
                    SocketState::Connected,
                ))
            }
            Some(Err(source)) => {
                ledger.apply(SocketEvent::ConnectFailed)?;
                Err(SocketError::io("connect", address, source))
            }
            None => ledger.finish("connect", timeout, None),
        }
    }

    /// A new, unconnected socket for `address` (TCP for `ip:port`, Unix for a path), in state
    /// `Init`: ready for [`bind`](Self::bind) and [`listen`](Self::listen).
    ///
    /// # Errors
    /// The backend refused to create the socket.
    pub fn from_address(address: &Address) -> Result<Self, SocketError> {
        let socket = T::unbound(address).map_err(|e| SocketError::io("socket", address, e))?;
        Ok(Self::with(
            Endpoint::Unbound {
                socket,
                bound: false,
            },
            address.clone(),
            SocketState::Init,
        ))
    }

    /// Binds to the socket's address (`SO_REUSEADDR` on; a stale Unix socket file removed
    /// first, a live one an error). With port 0 the address becomes the port picked.
    ///
    /// # Errors
    /// The address is in use or not available, or the socket is not new.
    pub fn bind(&mut self) -> Result<(), SocketError> {
        let Endpoint::Unbound { socket, bound } = &mut self.endpoint else {
            return Err(self.ledger.invalid("bind"));
        };
        if !*bound {
            let address = T::bind(socket, self.ledger.address())
                .map_err(|e| SocketError::io("bind", self.ledger.address(), e))?;
            *bound = true;
            self.ledger.set_address(address);
        }
        Ok(())
    }

    /// Starts listening with `backlog` pending connections (the seed's default is 255).
    /// Binds first if [`bind`](Self::bind) was not called.
    ///
    /// # Errors
    /// Wrong state (not `Init`), the address is in use, or the backend refused.
    pub fn listen(&mut self, backlog: i32) -> Result<(), SocketError> {
        self.ledger.check(SocketEvent::Listen)?;
        self.bind()?;
        let Endpoint::Unbound { socket, .. } =
            std::mem::replace(&mut self.endpoint, Endpoint::Closed)
        else {
            return Err(self.ledger.invalid("listen"));
        };
        let listener = T::listen(socket, self.ledger.address(), backlog)
            .map_err(|e| SocketError::io("listen", self.ledger.address(), e))?;
        self.endpoint = Endpoint::Listener(listener);
        self.ledger.begin(SocketEvent::Listen, T::now(), None)?;
        Ok(())
    }

    /// The address this socket is bound to (the real port once bound).
    ///
    /// # Errors
    /// The socket is closed, or the backend refused.
    pub fn local_address(&self) -> Result<Address, SocketError> {
        if matches!(self.endpoint, Endpoint::Closed) {
            return Err(SocketLedger::closed("local_address"));
        }
        T::local_address(&self.endpoint, self.ledger.address())
            .map_err(|e| SocketError::io("local_address", self.ledger.address(), e))
    }

    /// Waits at most `timeout` for a connection and returns it, connected.
    ///
    /// # Errors
    /// [`SocketError::TimedOut`] (the listener stays usable), wrong state, or the backend
    /// refused.
    pub async fn accept(&mut self, timeout: Option<Duration>) -> Result<Self, SocketError> {
        self.ledger.begin(SocketEvent::Accept, T::now(), timeout)?;
        let Endpoint::Listener(listener) = &self.endpoint else {
            return Err(SocketError::io(
                "accept",
                self.ledger.address(),
                io::Error::other("not a listener"),
            ));
        };
        let address = self.ledger.address();
        let attempt = poll_fn(|cx| T::poll_accept(listener, address, cx));
        let accepted = self
            .coop
            .budgeted(within::<T, _>(timeout, attempt), |_| 0)
            .await;
        let (stream, peer) = self.ledger.finish("accept", timeout, accepted)?;
        Ok(Self::with(
            Endpoint::Stream(stream),
            peer,
            SocketState::Connected,
        ))
    }

    /// Waits until readable, then reads as many bytes as fit between the buffer's position
    /// and limit; the position moves by the count returned. `0` means end of stream (the
    /// socket moves to `Closing`).
    ///
    /// # Errors
    /// [`SocketError::TimedOut`] (the socket stays usable), a full buffer, wrong state, or the
    /// backend refused (e.g. `ConnectionReset`).
    pub async fn read(
        &mut self,
        buffer: &mut Buffer,
        timeout: Option<Duration>,
    ) -> Result<usize, SocketError> {
        SocketLedger::check_room(buffer)?;
        self.ledger.begin(SocketEvent::Read, T::now(), timeout)?;
        let stream = self.stream("read")?;
        let attempt = poll_fn(|cx| {
            pending_aware(|pending| {
                buffer.fill_with(|room| pending(T::poll_read(stream, cx, room)))
            })
        });
        let outcome = self
            .coop
            .budgeted(within::<T, _>(timeout, attempt), bytes_moved)
            .await;
        let n = self.ledger.finish("read", timeout, outcome)?;
        self.ledger.after_read(n)
    }

    /// Waits until writable, then writes as many bytes as the socket takes from the buffer's
    /// position up to its limit; the position moves by the count returned.
    ///
    /// # Errors
    /// [`SocketError::TimedOut`] (the socket stays usable), wrong state, or the backend
    /// refused.
    pub async fn write(
        &mut self,
        buffer: &mut Buffer,
        timeout: Option<Duration>,
    ) -> Result<usize, SocketError> {
        self.ledger.begin(SocketEvent::Write, T::now(), timeout)?;
        let stream = self.stream("write")?;
        let attempt = poll_fn(|cx| {
            pending_aware(|pending| {
                buffer.drain_with(|bytes| pending(T::poll_write(stream, cx, bytes)))
            })
        });
        let outcome = self
            .coop
            .budgeted(within::<T, _>(timeout, attempt), bytes_moved)
            .await;
        self.ledger.finish("write", timeout, outcome)
    }

    /// Passes `other` (an open stream or listener) over this connected Unix socket
    /// (`SCM_RIGHTS`); the peer gets it from [`read_socket`](Self::read_socket). `other`
    /// stays open here too.
    ///
    /// # Errors
    /// This is not a connected Unix socket ([`SocketError::WrongKind`]), `other` is not open,
    /// a timeout, or the backend refused.
    pub async fn write_socket(
        &mut self,
        other: &Self,
        timeout: Option<Duration>,
    ) -> Result<(), SocketError> {
        self.ledger.require_unix_channel("write_socket")?;
        if !matches!(other.endpoint, Endpoint::Stream(_) | Endpoint::Listener(_)) {
            return Err(other.ledger.not_passable("write_socket"));
        }
        self.ledger.begin(SocketEvent::Write, T::now(), timeout)?;
        let channel = self.stream("write_socket")?;
        let attempt =
            poll_fn(|cx| T::poll_send_socket(channel, &other.endpoint, other.ledger.address(), cx));
        let outcome = within::<T, _>(timeout, attempt).await;
        self.ledger.finish("write_socket", timeout, outcome)
    }

    /// Receives a socket sent with [`write_socket`](Self::write_socket): a connected stream,
    /// or a listener in state `Listening`.
    ///
    /// # Errors
    /// Not a connected Unix socket, a timeout, end of stream or a message without a socket
    /// ([`SocketError::NoDescriptor`]), or the backend refused.
    pub async fn read_socket(&mut self, timeout: Option<Duration>) -> Result<Self, SocketError> {
        self.ledger.require_unix_channel("read_socket")?;
        self.ledger.begin(SocketEvent::Read, T::now(), timeout)?;
        let channel = self.stream("read_socket")?;
        let address = self.ledger.address();
        let attempt = poll_fn(|cx| T::poll_recv_socket(channel, address, cx));
        let outcome = within::<T, _>(timeout, attempt).await;
        let Some((endpoint, address)) = self.ledger.finish("read_socket", timeout, outcome)? else {
            return Err(self.ledger.no_descriptor());
        };
        let state = match endpoint {
            Endpoint::Listener(_) => SocketState::Listening,
            _ => SocketState::Connected,
        };
        Ok(Self::with(endpoint, address, state))
    }

    /// Shuts down the write side of a connected socket (half-close: the peer reads end of
    /// stream after the bytes already written); reading goes on until the peer closes too.
    ///
    /// # Errors
    /// The socket is not connected (wrong state), or the backend refused.
    pub fn shutdown_write(&self) -> Result<(), SocketError> {
        self.ledger.require_connected("shutdown_write")?;
        let stream = self.stream("shutdown_write")?;
        T::shutdown_write(stream)
            .map_err(|e| SocketError::io("shutdown_write", self.ledger.address(), e))
    }

    /// Closes the socket with a reset (`SO_LINGER` 0): output not yet sent is dropped and
    /// the peer reads `ConnectionReset`. A listener or a closed socket just closes.
    ///
    /// # Errors
    /// Never in practice; kept for the seed's signature.
    pub fn abort(&mut self) -> Result<(), SocketError> {
        if let Endpoint::Stream(stream) = &self.endpoint {
            T::reset_on_close(stream);
        }
        self.close()
    }

    /// Closes the socket (idempotent): what is written is still delivered, then a FIN.
    ///
    /// # Errors
    /// Never in practice; kept for the seed's signature.
    pub fn close(&mut self) -> Result<(), SocketError> {
        self.ledger.close()?;
        self.endpoint = Endpoint::Closed;
        Ok(())
    }

    /// Timeouts for the `futures_io::AsyncRead` / `AsyncWrite` implementations, and so for an
    /// `AsyncBufferedStream` over this socket (default: none). A read or write that makes no
    /// progress for that long fails with `ErrorKind::TimedOut`; the socket stays usable.
    pub fn set_timeouts(&mut self, read: Option<Duration>, write: Option<Duration>) {
        self.timeouts.read = read;
        self.timeouts.write = write;
    }

    /// The cooperative budget: after `bytes` of work that completed at once (each operation
    /// counts [`COOP_OPERATION_COST`](crate::COOP_OPERATION_COST) at least) the task yields
    /// once. Default [`COOP_BUDGET`](crate::COOP_BUDGET); `usize::MAX` never yields (as
    /// tokio's `unconstrained`: for a task that yields by itself, or to measure the budget's
    /// cost; one busy connection can then hold its executor).
    pub fn set_coop_budget(&mut self, bytes: usize) {
        self.coop = CoopBudget::with_limit(bytes.max(1));
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

    /// The backend's stream under a connected socket (how a backend's own session driver
    /// reaches it); `None` for a listener or a closed socket.
    #[must_use]
    pub fn transport_stream(&self) -> Option<&T::Stream> {
        match &self.endpoint {
            Endpoint::Stream(stream) => Some(stream),
            _ => None,
        }
    }

    /// The backend's endpoint (for its own uses, e.g. a descriptor).
    #[must_use]
    pub fn endpoint(&self) -> &Endpoint<T> {
        &self.endpoint
    }

    /// One stream-trait read (`reading`) or write: the cooperative budget first, then `op`
    /// under the `set_timeouts` timeout of its direction; the budget is charged or renewed by
    /// how it ended.
    fn poll_budgeted(
        &mut self,
        cx: &mut Context<'_>,
        reading: bool,
        op: impl FnOnce(&T::Stream, &mut Context<'_>) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        let Endpoint::Stream(stream) = &self.endpoint else {
            return Poll::Ready(Err(not_connected()));
        };
        if self.coop.poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        let timeouts = &mut self.timeouts;
        let (timeout, timer) = if reading {
            (timeouts.read, &mut timeouts.read_timer)
        } else {
            (timeouts.write, &mut timeouts.write_timer)
        };
        let polled = with_timeout::<T, _>(cx, timeout, timer, |cx| op(stream, cx));
        self.coop.account(&polled, |n| *n);
        polled
    }

    fn stream(&self, op: &'static str) -> Result<&T::Stream, SocketError> {
        self.transport_stream()
            .ok_or_else(|| SocketError::io(op, self.ledger.address(), not_connected()))
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

/// Bounds a pending I/O poll by `timeout`: the timer starts with the first `Pending` and is
/// dropped once the operation completes; a timer that fires first is a `TimedOut` error.
fn with_timeout<T: Transport, R>(
    cx: &mut Context<'_>,
    timeout: Option<Duration>,
    timer: &mut Option<T::Timer>,
    op: impl FnOnce(&mut Context<'_>) -> Poll<io::Result<R>>,
) -> Poll<io::Result<R>> {
    match op(cx) {
        Poll::Ready(result) => {
            *timer = None;
            Poll::Ready(result)
        }
        Poll::Pending => {
            let Some(limit) = timeout else {
                return Poll::Pending;
            };
            let running = timer.get_or_insert_with(|| T::timer(limit));
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

/// Reads honour the read timeout of [`AsyncSocket::set_timeouts`] (a `TimedOut` error; the
/// socket stays usable), spend the cooperative budget, and move the socket's state at end of
/// stream, as `read` does.
impl<T: Transport> AsyncRead for AsyncSocket<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let asked = buf.len();
        let polled = this.poll_budgeted(cx, true, |stream, cx| T::poll_read(stream, cx, buf));
        if let Poll::Ready(Ok(n)) = polled {
            this.ledger.after_stream_read(n, asked);
        }
        polled
    }
}

/// Writes honour the write timeout of [`AsyncSocket::set_timeouts`] and spend the
/// cooperative budget; closing shuts the write side down (a FIN after what is written), as
/// closing a stream means everywhere. Reading goes on.
impl<T: Transport> AsyncWrite for AsyncSocket<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_budgeted(cx, false, |stream, cx| T::poll_write(stream, cx, buf))
    }

    /// Written bytes are in the kernel's (or the simulated kernel's) hands already.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &self.endpoint {
            Endpoint::Stream(stream) => Poll::Ready(T::shutdown_write(stream)),
            _ => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The cooperative budget of the written-once socket, on a transport whose stream is always
    //! ready (the case a real flood produces and a unit test can pin down exactly).

    use super::*;
    use crate::{AcceptFailure, COOP_BUDGET};
    use concurrence_core::Timestamp;
    use std::future::Pending;
    use std::task::Waker;

    /// A transport whose one stream always has bytes and always has room.
    struct AlwaysReady;

    fn unsupported<T>() -> io::Result<T> {
        Err(io::ErrorKind::Unsupported.into())
    }

    impl Transport for AlwaysReady {
        type Stream = ();
        type Listener = ();
        type Unbound = ();
        type Timer = Pending<()>;

        fn now() -> Timestamp {
            Timestamp::ZERO
        }
        fn timer(_: Duration) -> Pending<()> {
            std::future::pending()
        }
        fn unbound(_: &Address) -> io::Result<()> {
            Ok(())
        }
        fn bind(_: &mut (), address: &Address) -> io::Result<Address> {
            Ok(address.clone())
        }
        fn listen(_: (), _: &Address, _: i32) -> io::Result<()> {
            Ok(())
        }
        async fn connect(_: &Address) -> io::Result<()> {
            Ok(())
        }
        fn local_address(_: &Endpoint<Self>, known: &Address) -> io::Result<Address> {
            Ok(known.clone())
        }
        fn poll_accept(
            (): &(),
            address: &Address,
            _: &mut Context<'_>,
        ) -> Poll<io::Result<((), Address)>> {
            Poll::Ready(Ok(((), address.clone())))
        }
        fn accept_failure(_: &io::Error) -> AcceptFailure {
            AcceptFailure::Rest
        }
        fn poll_read((): &(), _: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_write((): &(), _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }
        fn shutdown_write((): &()) -> io::Result<()> {
            Ok(())
        }
        fn reset_on_close((): &()) {}
        fn poll_send_socket(
            (): &(),
            _: &Endpoint<Self>,
            _: &Address,
            _: &mut Context<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Ready(unsupported())
        }
        fn poll_recv_socket(
            (): &(),
            _: &Address,
            _: &mut Context<'_>,
        ) -> Poll<io::Result<Option<(Endpoint<Self>, Address)>>> {
            Poll::Ready(unsupported())
        }
    }

    /// Polls `future` once.
    fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
        let mut cx = Context::from_waker(Waker::noop());
        pin!(future).poll(&mut cx)
    }

    #[test]
    fn a_socket_that_stays_ready_makes_its_task_yield_once_per_budget() {
        let peer: Address = "127.0.0.1:1".parse().unwrap();
        let mut socket = AsyncSocket::<AlwaysReady>::from_stream((), peer);
        let chunk = 16 * 1024;
        let mut buffer = Buffer::new(chunk);
        let mut ready_in_a_row = Vec::new();
        let mut run = 0;
        for _ in 0..40 {
            buffer.clear();
            match poll_once(socket.read(&mut buffer, None)) {
                Poll::Ready(n) => {
                    assert_eq!(n.unwrap(), chunk);
                    run += 1;
                }
                Poll::Pending => {
                    ready_in_a_row.push(run);
                    run = 0;
                }
            }
        }
        // Every run of reads that completed at once is exactly one budget long.
        assert!(ready_in_a_row.len() >= 4, "{ready_in_a_row:?}");
        assert!(
            ready_in_a_row.iter().all(|&n| n == COOP_BUDGET / chunk),
            "{ready_in_a_row:?}"
        );
    }

    #[test]
    fn the_async_read_path_spends_the_same_budget() {
        use futures_io::AsyncRead;
        let peer: Address = "127.0.0.1:1".parse().unwrap();
        let mut socket = AsyncSocket::<AlwaysReady>::from_stream((), peer);
        let mut cx = Context::from_waker(Waker::noop());
        let mut buf = [0u8; 4096];
        let mut ready = 0;
        while Pin::new(&mut socket)
            .poll_read(&mut cx, &mut buf)
            .is_ready()
        {
            ready += 1;
            assert!(ready <= COOP_BUDGET, "never yielded");
        }
        assert_eq!(ready, COOP_BUDGET / buf.len());
    }
}
