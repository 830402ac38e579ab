//! `Transport`: the little a backend supplies so that the seed's async `Socket`
//! ([`AsyncSocket`](crate::AsyncSocket)) runs on it: its endpoint types, non-blocking polls on
//! them, a clock and a timer. `concurrence-smol` implements it on `async-io`, the simulator on
//! its simulated network; the bookkeeping above it is written once.

use std::future::Future;
use std::io;
use std::task::{Context, Poll};
use std::time::Duration;

use concurrence_core::{Address, Timestamp};

use crate::AcceptFailure;

/// One of a socket's endpoints, as the backend holds it.
pub enum Endpoint<T: Transport> {
    /// Created by `from_address`, maybe bound, not listening.
    Unbound {
        /// The backend's socket.
        socket: T::Unbound,
        /// Whether `bind` ran.
        bound: bool,
    },
    /// A connected stream.
    Stream(T::Stream),
    /// A listener.
    Listener(T::Listener),
    /// Closed: nothing is held.
    Closed,
}

impl<T: Transport> std::fmt::Debug for Endpoint<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Endpoint::Unbound { bound: false, .. } => "Unbound",
            Endpoint::Unbound { bound: true, .. } => "Bound",
            Endpoint::Stream(_) => "Stream",
            Endpoint::Listener(_) => "Listener",
            Endpoint::Closed => "Closed",
        })
    }
}

/// A backend's sockets, polled without blocking. Every poll registers `cx`'s waker when it
/// answers `Pending` and retries internally on spurious readiness.
pub trait Transport: Sized + 'static {
    /// A connected stream (closed when dropped).
    type Stream: Unpin;
    /// A listening socket (closed when dropped).
    type Listener: Unpin;
    /// A socket made for an address, not yet listening.
    type Unbound: Unpin;
    /// A timer that completes once, `after` from when it was made.
    type Timer: Future + Unpin;

    /// The backend's clock now (virtual time on the simulator).
    fn now() -> Timestamp;

    /// A timer that fires `after` from now.
    fn timer(after: Duration) -> Self::Timer;

    /// A new socket for `address` (TCP for `ip:port`, Unix for a path).
    ///
    /// # Errors
    /// The backend refused to create it.
    fn unbound(address: &Address) -> io::Result<Self::Unbound>;

    /// Binds `socket` to `address`; returns the address bound (the port picked, for port 0).
    ///
    /// # Errors
    /// The address is in use or not available.
    fn bind(socket: &mut Self::Unbound, address: &Address) -> io::Result<Address>;

    /// Starts listening on a bound socket with `backlog` pending connections.
    ///
    /// # Errors
    /// The backend refused.
    fn listen(socket: Self::Unbound, address: &Address, backlog: i32)
    -> io::Result<Self::Listener>;

    /// Connects to `address`, with no timeout of its own (the caller races it against one;
    /// dropping the future abandons the attempt).
    fn connect(address: &Address) -> impl Future<Output = io::Result<Self::Stream>>;

    /// The address an endpoint is bound to; `known` is the address the socket was made for.
    ///
    /// # Errors
    /// The backend refused.
    fn local_address(endpoint: &Endpoint<Self>, known: &Address) -> io::Result<Address>;

    /// Accepts one connection on `listener` (bound to `address`), with the peer's address
    /// (for a Unix listener, its own address).
    fn poll_accept(
        listener: &Self::Listener,
        address: &Address,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Self::Stream, Address)>>;

    /// How an accept loop treats an accept error (rest, retry, or stop serving).
    fn accept_failure(error: &io::Error) -> AcceptFailure;

    /// Reads into `buf`; `0` is end of stream.
    fn poll_read(
        stream: &Self::Stream,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>>;

    /// Writes a prefix of `buf` (no `SIGPIPE` on a reset peer).
    fn poll_write(
        stream: &Self::Stream,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>>;

    /// Shuts the write side down (a FIN after what is written); a peer already gone is not
    /// an error.
    ///
    /// # Errors
    /// The backend refused.
    fn shutdown_write(stream: &Self::Stream) -> io::Result<()>;

    /// Makes the coming close a reset (`SO_LINGER` 0): unsent output is dropped.
    fn reset_on_close(stream: &Self::Stream);

    /// Passes `other` (an open stream or listener at `other_address`) over the Unix stream
    /// `channel`; `other` stays open here too.
    fn poll_send_socket(
        channel: &Self::Stream,
        other: &Endpoint<Self>,
        other_address: &Address,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>>;

    /// Receives a socket passed over the Unix stream `channel` (at `address`): a stream or
    /// a listener with its address, or `None` for a message (or end of stream) without one.
    #[allow(clippy::type_complexity)] // the shape is the answer: maybe an endpoint and its address
    fn poll_recv_socket(
        channel: &Self::Stream,
        address: &Address,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<Option<(Endpoint<Self>, Address)>>>;
}

/// Retries a non-blocking `attempt` until it does not would-block (or is interrupted), waiting
/// on `ready` between tries: how a readiness transport implements its `poll_*` functions.
///
/// # Errors
/// The attempt's own error, or the wait's.
pub fn poll_until_done<R>(
    cx: &mut Context<'_>,
    mut attempt: impl FnMut() -> io::Result<R>,
    mut ready: impl FnMut(&mut Context<'_>) -> Poll<io::Result<()>>,
) -> Poll<io::Result<R>> {
    loop {
        match attempt() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => match ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            done => return Poll::Ready(done),
        }
    }
}
