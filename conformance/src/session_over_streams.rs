//! Sessions for a backend that offers only streams: a reference driver of the core's
//! `Connection` over the suite's own [`Stream`] and [`Net`] (listen, accept, read and write
//! with timeouts, sleep, now), so that a third-party backend implements a handful of
//! primitives and gets `serve_session` / `connect_session` from here.
//!
//! It is a reference, not a fast path: one stream operation at a time, each bounded by
//! [`DRIVER_SLICE`] (or the connection's next deadline), so a peer that never reads cannot
//! stop it from reading, and deadlines fire on time. Real backends drive sessions natively.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use concurrence_core::{
    Address, Connection, ConnectionConfig, Direction, Ended, Output, SocketStateError, Timestamp,
};
use concurrence_socket::{AcceptFailure, AcceptGate, AcceptStep, ServerConfig, SocketError};
use futures_lite::FutureExt;

use crate::backend::{BoxSession, LocalFuture, Net, SessionFactory, SessionServer, Stream};

/// The longest one read or write waits before the driver looks at the connection again.
pub const DRIVER_SLICE: Duration = Duration::from_millis(20);

/// How long the accept loop waits per attempt, so that a close is noticed.
const ACCEPT_SLICE: Duration = Duration::from_millis(50);

/// The I/O error inside a socket error (or one carrying its text).
fn into_io(error: SocketError) -> std::io::Error {
    match error {
        SocketError::Io { source, .. } => source,
        SocketError::TimedOut { .. } => std::io::ErrorKind::TimedOut.into(),
        other => std::io::Error::other(other.to_string()),
    }
}

/// A served connection's view of its server's shutdown: when the server closed (unset while
/// it serves) and how long connections may go on after it (`ServerConfig::shutdown_grace`).
#[derive(Debug, Clone)]
pub struct ServerStop {
    /// Set when the server is closed.
    pub closed_at: Rc<Cell<Option<Timestamp>>>,
    /// The grace period after the close.
    pub grace: Duration,
}

impl ServerStop {
    /// Whether the grace period is over at `now`.
    fn over(&self, now: Timestamp) -> bool {
        self.closed_at
            .get()
            .is_some_and(|at| now >= at + self.grace)
    }
}

/// Runs `conn` over `stream` until it finishes (starting it first), then closes the stream
/// (with a reset if the session aborted): the core's driving rule over blocking-style stream
/// operations, each bounded by [`DRIVER_SLICE`] or the connection's next deadline. A served
/// connection gets its server's `stop`: once the server closed it may go on for the grace
/// period, then it ends with `EndReason::Shutdown`.
pub async fn drive_session(
    net: &dyn Net,
    stream: &mut dyn Stream,
    conn: &mut Connection<BoxSession>,
    stop: Option<&ServerStop>,
) {
    let events = conn.takes_events().then(|| {
        let (wake, woken) = async_channel::bounded::<()>(1);
        conn.set_waker(move || {
            let _ = wake.try_send(());
        });
        woken
    });
    conn.handle_start(net.now());
    // Set by a `Wait` that asked for input: how long the next receive may wait for it.
    let mut read_within: Option<Duration> = None;
    let reset = loop {
        let now = net.now();
        if stop.is_some_and(|stop| stop.over(now)) {
            conn.handle_shutdown(now);
        }
        match conn.poll_output(now) {
            Output::Receive(room) => {
                let Some(wait) = read_within.take() else {
                    conn.handle_blocked(Direction::Read);
                    continue;
                };
                match stream.read(room.len(), Some(wait)).await {
                    Ok(bytes) if bytes.is_empty() => conn.handle_peer_closed(net.now()),
                    Ok(bytes) => {
                        let n = bytes.len().min(room.len());
                        room[..n].copy_from_slice(&bytes[..n]);
                        conn.handle_received(net.now(), n);
                    }
                    Err(e) if e.is_timeout() => conn.handle_blocked(Direction::Read),
                    Err(e) => conn.handle_io_error(net.now(), into_io(e)),
                }
            }
            Output::Transmit(bytes) => {
                match stream.write(bytes.to_vec(), Some(DRIVER_SLICE)).await {
                    Ok(n) => conn.handle_sent(net.now(), n),
                    Err(e) if e.is_timeout() => conn.handle_blocked(Direction::Write),
                    Err(e) => conn.handle_io_error(net.now(), into_io(e)),
                }
            }
            Output::ShutdownWrite => match stream.shutdown_write() {
                Ok(()) | Err(SocketError::State(SocketStateError::InvalidState { .. })) => {}
                Err(e) => conn.handle_io_error(net.now(), into_io(e)),
            },
            Output::Close { reset, .. } => break reset,
            Output::Ended(_) => break false,
            Output::Wait { read, write, until } => {
                let wait = until
                    .map_or(DRIVER_SLICE, |at| {
                        at.saturating_duration_since(now).min(DRIVER_SLICE)
                    })
                    .max(Duration::from_millis(1));
                if read {
                    read_within = Some(wait);
                } else if !write {
                    if until.is_none() && events.is_none() {
                        // Nothing to send, nothing wanted, no deadline: the connection ends
                        // itself before this (`EndReason::Stalled`); never wait on nothing.
                        conn.handle_shutdown(net.now());
                        continue;
                    }
                    let woken = async {
                        match &events {
                            Some(woken) => {
                                let _ = woken.recv().await;
                            }
                            None => futures_lite::future::pending().await,
                        }
                    };
                    net.sleep(wait).or(woken).await;
                }
            }
            _ => conn.handle_shutdown(net.now()),
        }
    };
    let _ = if reset {
        stream.abort()
    } else {
        stream.close()
    };
}

/// `Net::serve_session` from streams: listens on `address`, accepts until closed (at most
/// `config.max_connections` at once; newcomers wait in the backlog), and drives one session
/// per connection as its own task; a session that panics ends only its connection.
///
/// # Errors
/// The address could not be bound or listened on.
pub fn serve_session_over_streams(
    net: Rc<dyn Net>,
    address: &Address,
    config: ServerConfig,
    factory: SessionFactory,
) -> Result<Box<dyn SessionServer>, SocketError> {
    let mut listener = net.socket(address)?;
    listener.listen(config.backlog)?;
    let local = listener.local_address()?;
    let live = Rc::new(Cell::new(0usize));
    let closed = Rc::new(Cell::new(None));
    let (freed_tx, freed_rx) = async_channel::unbounded::<()>();
    let server = StreamSessionServer {
        local: local.clone(),
        live: Rc::clone(&live),
        closed: Rc::clone(&closed),
        net: Rc::clone(&net),
        wake: freed_tx.clone(),
    };
    let accept_net = Rc::clone(&net);
    net.spawn(Box::pin(async move {
        let connection_config = config.connection_config();
        let mut gate = AcceptGate::new(&config);
        let stop = ServerStop {
            closed_at: Rc::clone(&closed),
            grace: config.shutdown_grace,
        };
        while closed.get().is_none() {
            if !gate.has_room(live.get()) {
                let _ = freed_rx.recv().await;
                continue;
            }
            match listener.accept(Some(ACCEPT_SLICE)).await {
                Ok(mut stream) => {
                    gate.accepted();
                    live.set(live.get() + 1);
                    let (net, live, freed, stop) = (
                        Rc::clone(&accept_net),
                        Rc::clone(&live),
                        freed_tx.clone(),
                        stop.clone(),
                    );
                    // The factory is user code: a panic there ends only this connection.
                    let made =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| factory(&local)));
                    let Ok(session) = made else {
                        let _ = stream.close();
                        live.set(live.get() - 1);
                        let _ = freed.try_send(());
                        continue;
                    };
                    let mut conn = Connection::with_config(session, connection_config);
                    accept_net.spawn(Box::pin(async move {
                        let driven = std::panic::AssertUnwindSafe(drive_session(
                            &*net,
                            &mut *stream,
                            &mut conn,
                            Some(&stop),
                        ));
                        if driven.catch_unwind().await.is_err() {
                            let _ = stream.close();
                        }
                        live.set(live.get() - 1);
                        let _ = freed.try_send(());
                    }));
                }
                Err(e) if e.is_timeout() => {}
                // The stream API carries no errno: every failure rests the listener.
                Err(e) => {
                    if let AcceptStep::Rest { pause, .. } =
                        gate.failed(AcceptFailure::Rest, &e, accept_net.now())
                    {
                        accept_net.sleep(pause).await;
                    }
                }
            }
        }
        let _ = listener.close();
    }));
    Ok(Box::new(server))
}

/// `Net::connect_session` from streams: connects within `config.connect_timeout` (refusal
/// and timeout are end reasons) and drives `session` as the client.
pub fn connect_session_over_streams(
    net: Rc<dyn Net>,
    address: &Address,
    session: BoxSession,
    config: ConnectionConfig,
) -> LocalFuture<'static, Ended<BoxSession>> {
    let address = address.clone();
    Box::pin(async move {
        let mut conn = Connection::with_config(session, config);
        conn.handle_connecting(net.now());
        let timeout = match conn.poll_output(net.now()) {
            Output::Wait { until, .. } => until.map(|at| at.saturating_duration_since(net.now())),
            _ => None,
        };
        match net.connect(&address, timeout).await {
            Ok(mut stream) => drive_session(&*net, &mut *stream, &mut conn, None).await,
            Err(e) if e.is_timeout() => {
                // The connect took its whole deadline: the next look ends it as timed out.
                let _ = conn.poll_output(net.now());
            }
            Err(e) => conn.handle_io_error(net.now(), into_io(e)),
        }
        let (session, reason) = conn.into_parts();
        let reason = reason.unwrap_or(concurrence_core::EndReason::Shutdown);
        Ended { session, reason }
    })
}

/// The server [`serve_session_over_streams`] returns.
struct StreamSessionServer {
    local: Address,
    live: Rc<Cell<usize>>,
    closed: Rc<Cell<Option<Timestamp>>>,
    net: Rc<dyn Net>,
    wake: async_channel::Sender<()>,
}

impl SessionServer for StreamSessionServer {
    fn local_address(&self) -> Address {
        self.local.clone()
    }

    fn connections(&self) -> usize {
        self.live.get()
    }

    fn close(&mut self) {
        if self.closed.get().is_none() {
            self.closed.set(Some(self.net.now()));
        }
        let _ = self.wake.try_send(());
    }
}
