//! Moving bytes between one non-blocking socket and its core `Connection`, following the
//! core's drain rule (receive, send, shut down the write side, finish). The event loop and the
//! client driver both use it, so the rule is written once in this backend.

use std::io::{self, Read};
use std::net::Shutdown;

use concurrence_core::{BufferPool, Connection, Session, Timestamp};

use concurrence_os::send;

/// System calls one loop made moving bytes, for [`IoCounts`](crate::IoCounts).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Calls {
    pub(crate) reads: u64,
    pub(crate) empty_reads: u64,
    pub(crate) sends: u64,
}

/// One turn for one connection: receive up to `read_budget` bytes while it wants input, send
/// while it has output and the socket takes it, and shut down the write side when asked. The
/// connection borrows buffers from `pool` for the turn and gives back what it holds idle.
/// Reads again only when sending lifted back-pressure (no read that is sure to find nothing).
pub(crate) fn pump<S: Session>(
    socket: &socket2::Socket,
    conn: &mut Connection<S>,
    now: Timestamp,
    read_budget: usize,
    calls: &mut Calls,
    pool: &mut BufferPool,
) {
    conn.take_buffers_from(pool);
    let mut budget = read_budget.max(1);
    loop {
        while budget > 0 && conn.wants_read() {
            let room = conn.recv_buffer();
            let cap = room.len().min(budget);
            calls.reads += 1;
            match (&*socket).read(&mut room[..cap]) {
                Ok(0) => {
                    conn.handle_peer_closed(now);
                    break;
                }
                Ok(n) => {
                    budget -= n;
                    conn.handle_received(now, n);
                    if n < cap {
                        // Short read: the socket is (very likely) drained. Level mode reports
                        // it again if more arrived; skip the EAGAIN syscall.
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    calls.empty_reads += 1;
                    break;
                }
                Err(e) => {
                    conn.handle_io_error(now, e);
                    break;
                }
            }
        }
        let was_reading = conn.wants_read();
        while conn.wants_write() {
            calls.sends += 1;
            match send(socket, conn.poll_transmit()) {
                Ok(n) => conn.handle_sent(now, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    conn.handle_io_error(now, e);
                    break;
                }
            }
        }
        if conn.poll_shutdown_write() {
            if let Err(e) = socket.shutdown(Shutdown::Write) {
                if e.kind() != io::ErrorKind::NotConnected {
                    conn.handle_io_error(now, e);
                }
            }
        }
        // Sending lifted back-pressure: input may be waiting, read it in this turn.
        if was_reading || !conn.wants_read() || budget == 0 {
            break;
        }
    }
    // The loop waits for the next event now: an idle connection holds no buffers (they go
    // to the loop's pool, for the next request of any of its connections).
    conn.release_idle_buffers_to(pool);
}

/// Closes a finished connection's socket: with a reset when the session aborted.
pub(crate) fn close<S: Session>(socket: socket2::Socket, conn: &Connection<S>) {
    if conn.wants_reset() {
        let _ = socket.set_linger(Some(std::time::Duration::ZERO));
    }
    drop(socket);
}
