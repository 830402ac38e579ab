//! Drives one core `Connection` (a `Session` with its reader and writer) over an async socket:
//! in one task, send what is pending, receive what the connection wants, and wake for the
//! connection's next deadline (the session's, or the idle timeout).
//!
//! Reading and writing run at the same time (through `&Socket`), so two peers that both write
//! a lot before reading cannot deadlock on each other; back-pressure is the connection's
//! `wants_read`, false while the writer is above its high-water mark.

use async_io::Timer;
use concurrence_core::{Connection, Session};
use futures_lite::future::{or, pending};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use crate::clock;
use crate::socket::Socket;

/// Bytes received per read, copied into the connection's reader (the read runs beside a
/// write that borrows the connection's pending bytes).
const RECEIVE_CHUNK: usize = 16 * 1024;

/// What woke the loop.
enum Wake {
    Wrote(std::io::Result<usize>),
    Read(std::io::Result<usize>),
    Deadline,
}

/// Runs `conn` over `socket` until the session closes or the peer goes away.
pub(crate) async fn drive<S: Session>(socket: Socket, mut conn: Connection<S>) {
    let peer = socket.address().clone();
    let mut inbox = vec![0u8; RECEIVE_CHUNK];
    conn.handle_start(clock::now());
    loop {
        if let Some(error) = conn.take_error() {
            tracing::info!(%peer, %error, "session ended with an error");
        }
        if conn.is_closed() {
            break;
        }
        let deadline = conn.poll_timeout();
        let (wants_read, wants_write) = (conn.wants_read(), conn.wants_write());
        if !wants_read && !wants_write && deadline.is_none() {
            // Nothing to send, nothing wanted, no deadline: nothing can happen any more.
            break;
        }
        let room = if wants_read {
            conn.recv_buffer().len().min(inbox.len())
        } else {
            0
        };
        let outgoing = conn.poll_transmit();
        let (mut rx, mut tx) = (&socket, &socket);
        let write = async {
            if wants_write {
                Wake::Wrote(tx.write(outgoing).await)
            } else {
                pending().await
            }
        };
        let read = async {
            if wants_read {
                Wake::Read(rx.read(&mut inbox[..room]).await)
            } else {
                pending().await
            }
        };
        let sleep = async {
            match deadline {
                Some(at) => {
                    Timer::at(clock::instant(at)).await;
                    Wake::Deadline
                }
                None => pending().await,
            }
        };
        let wake = or(write, or(read, sleep)).await;
        let now = clock::now();
        match wake {
            Wake::Wrote(Ok(0)) => conn.abort(),
            Wake::Wrote(Ok(n)) => conn.handle_sent(now, n),
            Wake::Read(Ok(0)) => conn.handle_peer_closed(now),
            Wake::Read(Ok(n)) => {
                let taken = conn.feed(now, &inbox[..n]);
                debug_assert_eq!(taken, n, "read no more than the connection had room for");
            }
            Wake::Wrote(Err(e)) | Wake::Read(Err(e)) => {
                tracing::debug!(%peer, error = %e, "socket failed; closing");
                conn.abort();
            }
            Wake::Deadline => {
                conn.handle_timeout(now);
                if conn.closed_by_idle_timeout() {
                    tracing::debug!(%peer, "idle timeout; closing");
                }
            }
        }
    }
    let mut socket = socket;
    let _ = AsyncWriteExt::close(&mut socket).await;
}
