//! The client driver: `connect_session` connects to an address through an io_uring connect
//! and runs a core `Session` as the client on the calling thread (a one-connection event
//! loop with a ring of its own), blocking until the connection ends. Connect failures,
//! timeouts and a kernel without io_uring reach the session as end reasons.

use std::sync::Arc;

use concurrence_core::{Address, Connection, ConnectionConfig, EndReason, Ended, Session};

use concurrence_os::sockaddr::{new_socket, sock_addr};
use concurrence_os::{LoopShared, clock};
use concurrence_socket::ServerConfig;

use crate::event_loop::{EventLoop, LoopWake};
use crate::ring::{Ring, RingSize};
use crate::unavailable::unavailable;

/// Provided receive buffers of a client's ring.
const CLIENT_RECV_BUFFERS: u16 = 8;

/// Connects to `address` (TCP for `ip:port`, Unix for a path) and runs `session` as the client
/// of the connection until it ends, on the calling thread; returns the session and why the
/// connection ended (also told to [`Session::handle_end`]).
///
/// As the polling backend's function of the same name: the connect is bounded by
/// `config.connect_timeout` ([`EndReason::ConnectTimedOut`]); nobody listening is
/// [`EndReason::ConnectRefused`]; once connected the session runs as a served one. A kernel
/// that refuses io_uring ends the connection with an `Unsupported` I/O error that says why.
///
/// # Panics
/// Never: the loop returns only once its one connection finished.
pub fn connect_session<S: Session>(
    address: &Address,
    session: S,
    config: ConnectionConfig,
) -> Ended<S> {
    let mut conn = Connection::with_config(session, config);
    conn.handle_connecting(clock::now());
    let prepared = Ring::new(RingSize {
        entries: 16,
        buffers: CLIENT_RECV_BUFFERS,
        buffer_size: crate::RECV_BUFFER_SIZE,
    })
    .map_err(|e| unavailable(&e))
    .and_then(|ring| Ok((ring, LoopWake::new()?)))
    .and_then(|parts| {
        let socket = new_socket(address, "connect").map_err(std::io::Error::other)?;
        Ok((parts, socket, sock_addr(address)?))
    });
    let ((ring, wake), socket, target) = match prepared {
        Ok(prepared) => prepared,
        Err(e) => {
            conn.handle_io_error(clock::now(), e);
            return finished(conn);
        }
    };
    let mut event_loop = EventLoop::new(
        ring,
        None,
        None,
        address.clone(),
        ServerConfig::default(),
        Arc::new(LoopShared::default()),
        wake,
    );
    event_loop.keep_finished();
    let key = event_loop.insert(socket, address.clone(), conn);
    event_loop.connect(key, target, clock::now());
    if let Err(e) = event_loop.run() {
        // The ring failed under the connection: it ends with that error.
        event_loop.fail_all(&e);
    }
    let (conn, reason) = event_loop
        .take_finished()
        .pop()
        .expect("the loop returns only once its one connection finished, or fail_all ended it");
    let (session, _) = conn.into_parts();
    Ended { session, reason }
}

fn finished<S: Session>(conn: Connection<S>) -> Ended<S> {
    let (session, reason) = conn.into_parts();
    Ended {
        session,
        reason: reason.unwrap_or(EndReason::Shutdown),
    }
}
