//! One turn of the core's driving rule for one non-blocking socket: drain
//! `Connection::poll_output` (receive, transmit, shut down, close) until it says to wait. The
//! event loop and the client driver both use it, so the rule is written once in this backend.

use std::io::{self, Read};
use std::net::Shutdown;

use concurrence_core::{BufferPool, Connection, Direction, EndReason, Output, Session, Timestamp};

use concurrence_os::{IoCounts, send};

/// How a turn ended.
#[derive(Debug)]
pub(crate) enum Turn {
    /// Wait for the socket (readable, writable) and until the deadline.
    Wait {
        read: bool,
        write: bool,
        until: Option<Timestamp>,
    },
    /// The connection finished: close the socket (with a reset if asked).
    Closed { reset: bool, reason: EndReason },
}

/// One turn for one connection: drains `poll_output`, reading at most `read_budget` bytes.
/// The connection borrows buffers from `pool` for the turn and gives back what it holds idle.
/// A read that did not fill its room drained the socket (level mode reports it again if more
/// arrived), so the turn reads again only after sending lifted back-pressure and never makes a
/// read that is sure to find nothing.
pub(crate) fn pump<S: Session>(
    socket: &socket2::Socket,
    conn: &mut Connection<S>,
    now: Timestamp,
    read_budget: usize,
    calls: &mut IoCounts,
    pool: &mut BufferPool,
) -> Turn {
    conn.take_buffers_from(pool);
    let mut budget = read_budget.max(1);
    let mut readable = true;
    let turn = loop {
        match conn.poll_output(now) {
            Output::Receive(room) => {
                if !readable || budget == 0 {
                    conn.handle_blocked(Direction::Read);
                    continue;
                }
                let cap = room.len().min(budget);
                calls.reads += 1;
                match (&*socket).read(&mut room[..cap]) {
                    Ok(0) => conn.handle_peer_closed(now),
                    Ok(n) => {
                        budget -= n;
                        readable = n == cap;
                        conn.handle_received(now, n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        calls.empty_reads += 1;
                        readable = false;
                        conn.handle_blocked(Direction::Read);
                    }
                    Err(e) => conn.handle_io_error(now, e),
                }
            }
            Output::Transmit(bytes) => {
                calls.sends += 1;
                match send(socket, bytes) {
                    Ok(n) => conn.handle_sent(now, n),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        conn.handle_blocked(Direction::Write);
                    }
                    Err(e) => conn.handle_io_error(now, e),
                }
            }
            Output::ShutdownWrite => {
                if let Err(e) = socket.shutdown(Shutdown::Write) {
                    if e.kind() != io::ErrorKind::NotConnected {
                        conn.handle_io_error(now, e);
                    }
                }
            }
            Output::Wait { read, write, until } => break Turn::Wait { read, write, until },
            Output::Close { reset, reason } => {
                break Turn::Closed {
                    reset,
                    reason: reason.clone(),
                };
            }
            Output::Ended(reason) => {
                break Turn::Closed {
                    reset: false,
                    reason: reason.clone(),
                };
            }
            // An output this driver does not know (a newer core): stop the connection rather
            // than ignore what it asks.
            _ => conn.handle_shutdown(now),
        }
    };
    // The loop waits for the next event now: an idle connection holds no buffers (they go
    // to the loop's pool, for the next request of any of its connections).
    conn.release_idle_buffers_to(pool);
    turn
}

/// Closes a finished connection's socket: with a reset when the session aborted.
pub(crate) fn close(socket: socket2::Socket, reset: bool) {
    if reset {
        let _ = socket.set_linger(Some(std::time::Duration::ZERO));
    }
    drop(socket);
}

/// Ends `conn` for the driver's own reason (shutdown) and returns what to close with.
pub(crate) fn shut<S: Session>(conn: &mut Connection<S>, now: Timestamp) -> (bool, EndReason) {
    conn.handle_shutdown(now);
    match conn.poll_output(now) {
        Output::Close { reset, reason } => (reset, reason.clone()),
        Output::Ended(reason) => (false, reason.clone()),
        _ => (false, EndReason::Shutdown),
    }
}
