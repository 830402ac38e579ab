//! Drives one core `Connection` (a `Session` with its reader and writer) over an async socket,
//! following the core's drain rule: in one task, send what is pending, receive what the
//! connection wants, shut down the write side when asked, and wake for the connection's next
//! deadline (the session's, the idle timeout, the linger, the connect timeout).
//!
//! Reading and writing run at the same time (through `&Socket`), so two peers that both write
//! a lot before reading cannot deadlock on each other; back-pressure is the connection's
//! `wants_read`, false while the writer is above its high-water mark.

use async_io::Timer;
use concurrence_core::{Connection, Session};
use futures_lite::future::{or, pending, yield_now};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use concurrence_os::clock;

use crate::socket::Socket;

/// The inbox for reads that run beside a write (which borrows the connection's pending
/// bytes); copied into the connection's reader. Other reads go straight into the reader.
const RECEIVE_CHUNK: usize = 16 * 1024;

/// What one wake-up costs against the per-turn budget at least: a deadline or a tiny read
/// counts as this many bytes, so a task woken again and again also yields.
const WAKE_COST: usize = 1024;

/// What woke the loop.
enum Wake {
    Wrote(std::io::Result<usize>),
    /// Read straight into the connection's receive buffer (with how much room was offered).
    Read(std::io::Result<usize>, usize),
    /// Read into the task's inbox (while a write was in flight).
    ReadInbox(std::io::Result<usize>),
    /// The socket became readable (after a read found nothing).
    Readable(std::io::Result<()>),
    Deadline,
}

/// Runs `conn` over `socket` until it finishes (starting it first if needed).
///
/// async-io tries a read or write before it registers a waker, so on a socket that stays
/// ready this task would never return `Pending` and would starve every other task of its
/// executor. After moving `turn_budget` bytes (wake-ups count [`WAKE_COST`] at least) it
/// yields.
pub(crate) async fn drive<S: Session>(
    socket: &Socket,
    conn: &mut Connection<S>,
    turn_budget: usize,
) {
    let mut inbox: Option<Vec<u8>> = None;
    // Whether the last read emptied the socket: then wait for readability before reading.
    let mut drained = true;
    conn.handle_start(clock::now());
    let mut spent = 0usize;
    // One timer for the task's life, moved only when the deadline comes earlier: a deadline
    // that moved later (the idle deadline moves with every byte) lets the armed one fire,
    // `handle_timeout` finds nothing due, and the timer is set again then.
    let mut timer = Timer::never();
    let mut armed: Option<concurrence_core::Timestamp> = None;
    loop {
        if conn.poll_shutdown_write() {
            if let Err(e) = socket.shutdown_write_raw() {
                if e.kind() != std::io::ErrorKind::NotConnected {
                    conn.handle_io_error(clock::now(), e);
                }
            }
        }
        if conn.is_closed() {
            break;
        }
        let deadline = conn.poll_timeout();
        let (wants_read, wants_write) = (conn.wants_read(), conn.wants_write());
        if !wants_read && !wants_write && deadline.is_none() {
            // The connection ends itself before this can happen (`EndReason::Stalled`);
            // never wait forever on nothing.
            conn.handle_shutdown(clock::now());
            break;
        }
        if let Some(at) = deadline {
            if armed.is_none_or(|a| at < a) {
                timer.set_at(clock::instant(at));
                armed = Some(at);
            }
        }
        let timer = &mut timer;
        let sleep = async {
            if armed.is_some() {
                timer.await;
                Wake::Deadline
            } else {
                pending().await
            }
        };
        let (mut rx, mut tx) = (socket, socket);
        // Most writes complete at once (the socket buffer has room): try that first, so
        // that only a write that has to wait needs a read beside it.
        let immediate = if wants_write {
            futures_lite::future::poll_once(tx.write(conn.poll_transmit())).await
        } else {
            None
        };
        let wake = if let Some(written) = immediate {
            Wake::Wrote(written)
        } else if wants_write {
            // Reading while writing: the pending bytes and the receive buffer both belong to
            // the connection, so the read lands in the inbox (allocated on first need).
            let inbox = inbox.get_or_insert_with(|| vec![0u8; RECEIVE_CHUNK]);
            let room = if wants_read {
                conn.recv_buffer().len().min(inbox.len())
            } else {
                0
            };
            let outgoing = conn.poll_transmit();
            let write = async { Wake::Wrote(tx.write(outgoing).await) };
            let read = async {
                if wants_read {
                    Wake::ReadInbox(rx.read(&mut inbox[..room]).await)
                } else {
                    pending().await
                }
            };
            or(write, or(read, sleep)).await
        } else if wants_read && drained {
            // The last read drained the socket: wait for readability without holding a
            // receive buffer (an idle connection costs no buffers), then read.
            conn.release_idle_buffers();
            inbox = None;
            let readable = async { Wake::Readable(socket.readable().await) };
            or(readable, sleep).await
        } else if wants_read {
            // More may be waiting: read straight into the connection's receive buffer.
            let room = conn.recv_buffer();
            let asked = room.len();
            let read = async { Wake::Read(rx.read(room).await, asked) };
            or(read, sleep).await
        } else {
            sleep.await
        };
        let now = clock::now();
        let moved = match wake {
            Wake::Wrote(Ok(0)) => {
                conn.handle_io_error(now, std::io::ErrorKind::WriteZero.into());
                0
            }
            Wake::Wrote(Ok(n)) => {
                conn.handle_sent(now, n);
                n
            }
            Wake::Read(Ok(0), _) => {
                conn.handle_peer_closed(now);
                0
            }
            Wake::Read(Ok(n), asked) => {
                // A read that did not fill the room drained the socket (as the polling loop
                // reasons): wait for readability next time instead of reading blindly.
                drained = n < asked;
                conn.handle_received(now, n);
                n
            }
            Wake::ReadInbox(Ok(0)) => {
                conn.handle_peer_closed(now);
                0
            }
            Wake::ReadInbox(Ok(n)) => {
                if let Some(inbox) = &inbox {
                    let taken = conn.feed(now, &inbox[..n]);
                    debug_assert_eq!(taken, n, "read no more than the connection had room for");
                }
                n
            }
            Wake::Readable(Ok(())) => {
                drained = false;
                0
            }
            Wake::Wrote(Err(e))
            | Wake::Read(Err(e), _)
            | Wake::ReadInbox(Err(e))
            | Wake::Readable(Err(e)) => {
                conn.handle_io_error(now, e);
                0
            }
            Wake::Deadline => {
                // Try a read next time before waiting for readability again: a deadline that
                // is always due (or a burst of them) must not starve input that is waiting.
                drained = false;
                armed = None;
                conn.handle_timeout(now);
                0
            }
        };
        spent += moved.max(WAKE_COST);
        if spent >= turn_budget.max(1) {
            spent = 0;
            yield_now().await;
        }
    }
    if conn.wants_reset() {
        socket.reset_on_close();
    }
}
