//! The client driver: `connect_session` connects to an address and runs a core `Session` as
//! the client of that connection on the calling thread, blocking until it ends. Connect
//! failures and timeouts reach the session as end reasons, like every other end.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use concurrence_core::{
    Address, BufferPool, Connection, ConnectionConfig, EndReason, Ended, Output, Session, Timestamp,
};

use concurrence_os::sockaddr::{new_socket, set_nodelay, sock_addr};
use concurrence_os::{RetryPause, clock, log_end};

use crate::transfer::{Turn, close, pump, shut};
use crate::wait::{Readiness, wait_ready, wait_ready_or_woken};

/// Connects to `address` (TCP for `ip:port`, Unix for a path) and runs `session` as the client
/// of the connection until it ends, on the calling thread; returns the session and why the
/// connection ended (also told to [`Session::handle_end`]).
///
/// The connect is bounded by `config.connect_timeout`
/// ([`EndReason::ConnectTimedOut`]); nobody listening is [`EndReason::ConnectRefused`]. Once
/// connected, the session runs exactly as a served one: the same `Connection`, the same
/// back-pressure, deadlines, half-close and lingering close. The smol backend has the same
/// function, as an `async fn`.
///
/// ```no_run
/// use concurrence_core::{ConnectionConfig, EndKind};
/// use concurrence_testkit::{Script};
/// use concurrence_polling::connect_session;
///
/// let request = Script::new().send("version\r\n").await_suffix("\r\n").close();
/// let ended = connect_session(&"127.0.0.1:11211".parse()?, request, ConnectionConfig::default());
/// assert_eq!(ended.reason.kind(), EndKind::Closed);
/// println!("{}", String::from_utf8_lossy(&ended.session.received()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn connect_session<S: Session>(
    address: &Address,
    session: S,
    config: ConnectionConfig,
) -> Ended<S> {
    let mut conn = Connection::with_config(session, config);
    conn.handle_connecting(clock::now());
    if let Some(socket) = connect(address, &mut conn) {
        let (reset, reason) = run(&socket, &mut conn);
        log_end(address, Some(&reason));
        close(socket, reset);
    }
    let (session, reason) = conn.into_parts();
    Ended {
        session,
        // `run` and `connect` return only once the connection finished.
        reason: reason.unwrap_or(EndReason::Shutdown),
    }
}

/// Connects without blocking past the connection's connect deadline. `None` when the connect
/// failed (the connection has finished with the reason).
fn connect<S: Session>(address: &Address, conn: &mut Connection<S>) -> Option<socket2::Socket> {
    let fail = |conn: &mut Connection<S>, e: io::Error| {
        conn.handle_io_error(clock::now(), e);
        None
    };
    let socket = match new_socket(address, "connect") {
        Ok(socket) => socket,
        Err(e) => return fail(conn, io::Error::other(e)),
    };
    let target = match sock_addr(address) {
        Ok(target) => target,
        Err(e) => return fail(conn, e),
    };
    let mut retry = RetryPause::new();
    loop {
        match socket.connect(&target) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A Unix connect with a full backlog is not "in progress": retry until the
            // deadline, pausing briefly between attempts.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !pause_until_deadline(conn, &mut retry) {
                    return None;
                }
            }
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error()) => {
                loop {
                    // A look at the connection ends a connect past its deadline.
                    let deadline = connect_deadline(conn)?;
                    match wait_ready(&socket, Readiness::Writable, deadline) {
                        Ok(true) => match socket.take_error() {
                            Ok(None) => break,
                            Ok(Some(e)) | Err(e) => return fail(conn, e),
                        },
                        Ok(false) => {}
                        Err(e) => return fail(conn, e),
                    }
                }
                break;
            }
            Err(e) => return fail(conn, e),
        }
    }
    if let Err(e) = set_nodelay(&socket, address) {
        return fail(conn, io::Error::other(e));
    }
    conn.handle_start(clock::now());
    Some(socket)
}

/// While connecting: the connect deadline, or `None` once the connection finished (the
/// deadline passed: `poll_output` ended it).
#[allow(clippy::option_option)]
fn connect_deadline<S: Session>(conn: &mut Connection<S>) -> Option<Option<Timestamp>> {
    match conn.poll_output(clock::now()) {
        Output::Wait { until, .. } => Some(until),
        _ => None,
    }
}

/// Backs off before the next connect attempt (up to the deadline); false once the connect
/// timed out.
fn pause_until_deadline<S: Session>(conn: &mut Connection<S>, retry: &mut RetryPause) -> bool {
    let Some(deadline) = connect_deadline(conn) else {
        return false;
    };
    // Past the deadline: the next look at the connection ends it as timed out.
    retry.pause(deadline) || connect_deadline(conn).is_some()
}

/// Runs a connected `conn` over `socket` until it finishes: a turn of the driving rule, then a
/// wait on the socket and the connection's deadline. Returns what to close the socket with.
fn run<S: Session>(socket: &socket2::Socket, conn: &mut Connection<S>) -> (bool, EndReason) {
    // Its own two buffers, kept across waits (a client has no other connection to share with).
    let mut pool = BufferPool::new(1);
    // A session that takes application events wakes this thread through a socket pair.
    let woken = conn.takes_events().then(UnixStream::pair).transpose();
    let woken = match woken {
        Ok(Some((wake, woken))) => {
            let _ = wake.set_nonblocking(true);
            let _ = woken.set_nonblocking(true);
            conn.set_waker(move || {
                // A full pair already holds a wake-up: nothing is lost.
                let _ = (&wake).write(&[1]);
            });
            Some(woken)
        }
        Ok(None) => None,
        Err(e) => {
            conn.handle_io_error(clock::now(), e);
            None
        }
    };
    loop {
        let now = clock::now();
        let turn = pump(
            socket,
            conn,
            now,
            usize::MAX,
            &mut Default::default(),
            &mut pool,
        );
        let (read, write, deadline) = match turn {
            Turn::Closed { reset, reason } => return (reset, reason),
            Turn::Wait { read, write, until } => (read, write, until),
        };
        if let Some(woken) = &woken {
            // Woken by the socket, the deadline or the application: the next turn finds out
            // which. (Waiting on neither side of the socket still waits for the wake-up.)
            let waited = if read || write {
                wait_ready_or_woken(
                    socket,
                    Readiness::Either(read, write),
                    deadline,
                    Some(woken.as_fd()),
                )
            } else {
                // Not on the socket: a hang-up there would wake `poll` again and again.
                wait_ready(woken, Readiness::Readable, deadline)
            };
            let mut drain = [0u8; 64];
            while matches!((&*woken).read(&mut drain), Ok(n) if n > 0) {}
            if let Err(e) = waited {
                conn.handle_io_error(clock::now(), e);
            }
            continue;
        }
        if !read && !write {
            // Only time can move it (an error or hang-up on the socket would wake `poll` at
            // once, again and again, with nothing to do about it).
            match deadline {
                Some(deadline) => std::thread::sleep(clock::until(deadline)),
                // The connection ends itself before this can happen (`EndReason::Stalled`);
                // never wait forever on nothing.
                None => return shut(conn, clock::now()),
            }
            continue;
        }
        // Woken by the socket or the deadline: the next turn finds out which.
        if let Err(e) = wait_ready(socket, Readiness::Either(read, write), deadline) {
            conn.handle_io_error(clock::now(), e);
        }
    }
}
