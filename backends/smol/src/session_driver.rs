//! Drives one core `Connection` (a `Session` with its reader and writer) over an async socket
//! with the core's one driving rule: drain `Connection::poll_output`, doing each receive and
//! send as one non-blocking system call, and when it says `Wait`, await readability,
//! writability, the deadline or an application wake-up, whichever comes first.
//!
//! Reading and writing are awaited together, so two peers that both write a lot before
//! reading cannot deadlock on each other; back-pressure is the connection's (no `Receive` while
//! its writer is over the high-water mark).

use std::io::ErrorKind;

use async_io::Timer;
use concurrence_core::{Connection, Direction, EndReason, Output, Session, Timestamp};
use futures_lite::future::{or, pending, yield_now};

use concurrence_os::clock;

use crate::socket::SmolStream;

/// What one wait costs against the per-turn budget at least: a task woken again and again
/// (deadlines, tiny reads, application events) also yields.
const WAKE_COST: usize = 1024;

/// What ended a wait.
enum Wake {
    Readable(std::io::Result<()>),
    Writable(std::io::Result<()>),
    Deadline,
    Event,
    /// The server stopped: the connection has its grace period left.
    Stopping,
}

/// A served connection's view of its server's shutdown: the server's stop channel (closed on
/// `close()`) and how long a connection may go on after it (`ServerConfig::shutdown_grace`).
#[derive(Debug, Clone)]
pub(crate) struct ServerStop {
    pub(crate) stopped: async_channel::Receiver<()>,
    pub(crate) grace: std::time::Duration,
}

/// Runs `conn` over `socket` until it finishes (starting it first) and returns why it ended.
///
/// async-io tries a read or write before it registers a waker, so on a socket that stays
/// ready this task would never return `Pending` and would starve every other task of its
/// executor. After moving `turn_budget` bytes (waits count [`WAKE_COST`] at least) it yields.
///
/// A served connection gets its server's `stop`: once the server is closed it may go on for
/// the grace period, then it ends with `EndReason::Shutdown`.
pub(crate) async fn drive<S: Session>(
    socket: &SmolStream,
    conn: &mut Connection<S>,
    turn_budget: usize,
    stop: Option<&ServerStop>,
) -> EndReason {
    let events = conn.takes_events().then(|| {
        let (wake, woken) = async_channel::bounded::<()>(1);
        conn.set_waker(move || {
            let _ = wake.try_send(());
        });
        woken
    });
    conn.handle_start(clock::now());
    // One receive of the server's stop for the connection's life, kept across waits: a new
    // one per wait registers a listener on the channel every time (echo bench, depth 16:
    // smol / tokio 1.26 with a new one per wait, 1.18 with this).
    let mut stopped = stop.map(|stop| Box::pin(stop.stopped.recv()));
    let budget = turn_budget.max(1);
    let mut spent = 0usize;
    // Whether a read may find bytes: false after one that did not fill its room (the socket
    // is drained; wait for readability before the next), true again once readable.
    let mut readable = true;
    // One timer for the task's life, moved only when the deadline comes earlier: a deadline
    // that moved later (the idle deadline moves with every byte) lets the armed one fire,
    // the turn finds nothing due, and the timer is set again then.
    let mut timer = Timer::never();
    let mut armed: Option<Timestamp> = None;
    // Set once the server stopped: when the grace period ends.
    let mut shutdown_at: Option<Timestamp> = None;
    loop {
        let now = clock::now();
        if shutdown_at.is_some_and(|at| at <= now) {
            conn.handle_shutdown(now);
        }
        match conn.poll_output(now) {
            Output::Receive(room) => {
                if !readable {
                    conn.handle_blocked(Direction::Read);
                    continue;
                }
                let asked = room.len();
                match socket.try_read(room) {
                    Ok(0) => conn.handle_peer_closed(now),
                    Ok(n) => {
                        readable = n == asked;
                        spent += n;
                        conn.handle_received(now, n);
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        readable = false;
                        conn.handle_blocked(Direction::Read);
                    }
                    Err(e) => conn.handle_io_error(now, e),
                }
            }
            Output::Transmit(bytes) => match socket.try_send(bytes) {
                Ok(n) => {
                    spent += n;
                    conn.handle_sent(now, n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    conn.handle_blocked(Direction::Write);
                }
                Err(e) => conn.handle_io_error(now, e),
            },
            Output::ShutdownWrite => {
                if let Err(e) = socket.shutdown_write() {
                    if e.kind() != ErrorKind::NotConnected {
                        conn.handle_io_error(now, e);
                    }
                }
            }
            Output::Close { reset, reason } => {
                if reset {
                    socket.reset_on_close();
                }
                return reason.clone();
            }
            Output::Ended(reason) => return reason.clone(),
            Output::Wait { read, write, until } => {
                let until = match (until, shutdown_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                if !read && !write && until.is_none() && events.is_none() {
                    // The connection ends itself before this can happen (`EndReason::Stalled`);
                    // never wait forever on nothing.
                    conn.handle_shutdown(now);
                    continue;
                }
                if let Some(at) = until {
                    if armed.is_none_or(|a| at < a) {
                        timer.set_at(clock::instant(at));
                        armed = Some(at);
                    }
                }
                // Waiting: an idle connection holds no buffers.
                conn.release_idle_buffers();
                let timer = &mut timer;
                let deadline = async {
                    if armed.is_some() {
                        timer.await;
                        Wake::Deadline
                    } else {
                        pending().await
                    }
                };
                let readability = async {
                    if read {
                        Wake::Readable(socket.readable().await)
                    } else {
                        pending().await
                    }
                };
                let writability = async {
                    if write {
                        Wake::Writable(socket.writable().await)
                    } else {
                        pending().await
                    }
                };
                let event = async {
                    match &events {
                        Some(woken) => {
                            let _ = woken.recv().await;
                            Wake::Event
                        }
                        None => pending().await,
                    }
                };
                let stopping = async {
                    match &mut stopped {
                        Some(stopped) if shutdown_at.is_none() => {
                            let _ = stopped.as_mut().await;
                            Wake::Stopping
                        }
                        _ => pending().await,
                    }
                };
                let wake = or(
                    or(readability, writability),
                    or(deadline, or(event, stopping)),
                );
                match wake.await {
                    Wake::Stopping => {
                        if let Some(stop) = stop {
                            shutdown_at = Some(clock::now().saturating_add(stop.grace));
                        }
                    }
                    Wake::Readable(Ok(())) => readable = true,
                    Wake::Writable(Ok(())) | Wake::Event => {}
                    Wake::Readable(Err(e)) | Wake::Writable(Err(e)) => {
                        conn.handle_io_error(clock::now(), e);
                    }
                    Wake::Deadline => {
                        armed = None;
                        // Try a read next time: a deadline that is always due (or a burst of
                        // them) must not starve input that is waiting.
                        readable = true;
                    }
                }
                spent += WAKE_COST;
            }
            // An output this driver does not know (a newer core): stop the connection rather
            // than ignore what it asks.
            _ => conn.handle_shutdown(now),
        }
        if spent >= budget {
            spent = 0;
            yield_now().await;
        }
    }
}
