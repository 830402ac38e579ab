//! Drives one core `Connection` (a `Session` with its reader and writer) over an async socket:
//! send what is pending, then wait for input or the session's deadline, whichever first.
//!
//! Back-pressure is the order of the loop: while output is pending the task is busy writing
//! and does not read, so a peer that never reads holds the connection at its high-water mark.

use std::time::Duration;

use async_io::Timer;
use concurrence_core::{Connection, Session};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use crate::clock;
use crate::socket::Socket;

/// What woke the loop.
enum Wake {
    Read(std::io::Result<usize>),
    Deadline,
}

/// Runs `conn` over `socket` until the session closes or the peer goes away. `idle` closes a
/// connection that moved no byte for that long.
pub(crate) async fn drive<S: Session>(
    mut socket: Socket,
    mut conn: Connection<S>,
    idle: Option<Duration>,
) {
    conn.handle_start(clock::now());
    let mut last_active = clock::now();
    loop {
        while conn.wants_write() {
            match AsyncWriteExt::write(&mut socket, conn.poll_transmit()).await {
                Ok(0) | Err(_) => conn.abort(),
                Ok(n) => {
                    last_active = clock::now();
                    conn.handle_sent(clock::now(), n);
                }
            }
        }
        if let Some(error) = conn.take_error() {
            tracing::info!(peer = %socket.address(), %error, "session ended with an error");
        }
        if conn.is_closed() {
            break;
        }
        let idle_deadline = idle.map(|d| last_active + d);
        let deadline = match (conn.poll_timeout(), idle_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let sleep = async {
            match deadline {
                Some(at) => {
                    Timer::at(clock::instant(at)).await;
                }
                None => futures_lite::future::pending::<()>().await,
            }
            Wake::Deadline
        };
        let wake = if conn.wants_read() {
            let room = conn.recv_buffer();
            futures_lite::future::or(
                async { Wake::Read(AsyncReadExt::read(&mut socket, room).await) },
                sleep,
            )
            .await
        } else if deadline.is_some() {
            sleep.await
        } else {
            // Nothing to send, nothing wanted, no deadline: nothing can happen any more.
            break;
        };
        let now = clock::now();
        match wake {
            Wake::Read(Ok(0)) => conn.handle_peer_closed(now),
            Wake::Read(Ok(n)) => {
                last_active = now;
                conn.handle_received(now, n);
            }
            Wake::Read(Err(e)) => {
                tracing::debug!(peer = %socket.address(), error = %e, "read failed; closing");
                conn.abort();
            }
            Wake::Deadline => {
                if idle_deadline.is_some_and(|d| d <= now) {
                    tracing::debug!(peer = %socket.address(), "idle timeout; closing");
                    conn.abort();
                } else {
                    conn.handle_timeout(now);
                }
            }
        }
    }
    let _ = AsyncWriteExt::close(&mut socket).await;
}
